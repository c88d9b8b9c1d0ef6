//! `mlambda status` and `mlambda warm --schedule` against moto.
use serde_json::json;

use crate::common::{aws_cli, Project};
use crate::rollout::Fixture;

#[test]
fn status_shows_versions_routing_alarm_states_and_the_rollout() {
    let f = Fixture::new("st-status");
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.1"]);
    f.p.json(&["alarms"]);
    let alarm = f.alarm_name("v2", "errors");
    f.set_alarm(&alarm, "ALARM", "Threshold Crossed: test");

    let s = f.p.json(&["status"]);
    assert_eq!(s["function"], f.name());
    // moto's ResolvedImageUri is mangled (`127.0.0.1@sha256:<other digest>`), so only its shape is checked.
    assert!(s["image_uri"].as_str().is_some_and(|u| u.contains("@sha256:")), "{}", s["image_uri"]);
    let versions: Vec<(String, String)> = s["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (v["version"].as_str().unwrap_or("").into(), v["model_version"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(versions, [("1".to_string(), "v1".to_string()), ("2".to_string(), "v2".to_string())]);
    let alias = &s["aliases"][0];
    assert_eq!(alias["name"], "production");
    assert_eq!(alias["primary"], "1");
    assert_eq!(alias["routing"], json!({"2": 0.1}));
    assert_eq!(alias["rendered"], "1 90% · 2 10%");
    // moto does not implement provisioned concurrency: reported as none, not as a failure.
    assert_eq!(alias["provisioned_concurrency"], json!(null));
    let states: Vec<(String, String)> = s["alarms"]
        .as_array()
        .expect("alarms")
        .iter()
        .map(|a| (a["name"].as_str().unwrap_or("").into(), a["state"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(states.len(), 15, "five alarms each for the alias and both routed versions");
    assert!(states.contains(&(alarm.clone(), "ALARM".to_string())), "{states:?}");
    assert!(states.iter().filter(|(n, _)| *n != alarm).all(|(_, st)| st == "OK"), "{states:?}");
    assert_eq!(s["rollout"]["candidate"], "2");

    let text = f.p.cmd().arg("status").output().expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("production  1 90% · 2 10%"), "{text}");
}

#[test]
fn status_of_a_missing_function_says_to_deploy_first() {
    let p = Project { dir: tempfile::tempdir().expect("tempdir"), name: crate::common::unique("st-missing") };
    crate::common::require_stack();
    p.write_config(&p.default_config());
    let e = p.fails(&["status"], 1);
    assert!(e.contains(&format!("function `{}` does not exist", p.name)) && e.contains("mlambda deploy"), "{e}");
}

#[test]
fn warm_schedule_puts_a_rule_targeting_the_alias_idempotently() {
    let f = Fixture::new("st-warm");
    let rule = format!("mlambda-{}-warm", f.name());
    let dry = f.p.json(&["warm", "--schedule", "rate(5 minutes)", "--dry-run"]);
    assert_eq!(dry["schedule"]["rule"], rule);
    let e = f.p.fails(&["warm", "--schedule", "rate(5 minute)"], 1);
    assert!(e.contains("schedule `rate(5 minute)` is not valid"), "{e}");

    for _ in 0..2 {
        let out = f.p.json(&["warm", "--schedule", "rate(5 minutes)"]);
        assert_eq!(out["schedule"]["rule"], rule);
    }
    let r = aws_cli(&["events", "describe-rule", "--name", &rule]);
    assert_eq!(r["ScheduleExpression"], "rate(5 minutes)");
    let t = aws_cli(&["events", "list-targets-by-rule", "--rule", &rule]);
    let targets = t["Targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["Arn"], f.alias()["AliasArn"]);
    let input: serde_json::Value = serde_json::from_str(targets[0]["Input"].as_str().expect("input")).expect("json");
    assert_eq!(input, json!({"_warmup": true}));
}

#[test]
fn warm_provisioned_is_refused_while_the_alias_is_weighted() {
    let f = Fixture::new("st-pc");
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.1"]);
    let e = f.p.fails(&["warm", "--provisioned", "2"], 1);
    assert!(e.contains("does not allow provisioned concurrency on an alias with weighted routing"), "{e}");
}
