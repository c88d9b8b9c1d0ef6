//! `mlambda rollout` against moto: weights, every alias rule Lambda enforces, promote, rollback and alarm-guarded steps.
//! Fixtures are made straight through the AWS CLI (no image, no model): a function, published versions, an alias.
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{aws_cli, require_stack, unique, Project};

const ACCOUNT: &str = "123456789012";

/// A function with version 1 (model v1) behind alias `production`, and a project whose mlambda.yaml names them.
pub struct Fixture {
    pub p: Project,
}

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

pub fn create_role(name: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_cli(&["iam", "create-role", "--role-name", name, "--assume-role-policy-document", trust]);
}

impl Fixture {
    pub fn new(prefix: &str) -> Fixture {
        require_stack();
        // The project needs no model file: rollout, alarms and status never read it.
        let p = Project { dir: tempfile::tempdir().expect("tempdir"), name: unique(prefix) };
        p.write_config(&p.default_config());
        let n = p.name.clone();
        create_role(&n);
        let image = format!("127.0.0.1:17500/x@sha256:{}", "a".repeat(64));
        crate::common::create_image_function(
            &n,
            &image,
            &role_arn(&n),
            &["--environment", "Variables={MODEL_VERSION=v1}"],
        );
        let f = Fixture { p };
        let v = f.publish_raw();
        assert_eq!(v, "1");
        aws_cli(&["lambda", "create-alias", "--function-name", &n, "--name", "production", "--function-version", "1"]);
        f
    }

    pub fn name(&self) -> &str {
        &self.p.name
    }

    fn publish_raw(&self) -> String {
        let out = aws_cli(&["lambda", "publish-version", "--function-name", self.name()]);
        out["Version"].as_str().expect("version").to_string()
    }

    /// Publishes a new version serving `model`, optionally with another execution role.
    pub fn publish(&self, model: &str, role: Option<&str>) -> String {
        let env = format!("Variables={{MODEL_VERSION={model}}}");
        let mut args =
            vec!["lambda", "update-function-configuration", "--function-name", self.name(), "--environment", &env];
        let role = role.map(role_arn);
        if let Some(r) = &role {
            args.extend(["--role", r.as_str()]);
        }
        aws_cli(&args);
        self.publish_raw()
    }

    pub fn alias(&self) -> Value {
        aws_cli(&["lambda", "get-alias", "--function-name", self.name(), "--name", "production"])
    }

    /// `(primary, AdditionalVersionWeights)` as moto holds them.
    pub fn routing(&self) -> (String, Value) {
        let a = self.alias();
        let weights = a["RoutingConfig"]["AdditionalVersionWeights"].clone();
        let weights = if weights.is_null() { json!({}) } else { weights };
        (a["FunctionVersion"].as_str().unwrap_or_default().to_string(), weights)
    }

    pub fn set_alarm(&self, name: &str, state: &str, reason: &str) {
        aws_cli(&[
            "cloudwatch",
            "set-alarm-state",
            "--alarm-name",
            name,
            "--state-value",
            state,
            "--state-reason",
            reason,
        ]);
    }

    pub fn alarm_name(&self, label: &str, kind: &str) -> String {
        format!("mlambda-{}-{label}-{kind}", self.name())
    }
}

#[test]
fn a_weight_is_applied_and_a_dry_run_changes_nothing() {
    let f = Fixture::new("ro-weight");
    f.publish("v2", None);
    let plan = f.p.json(&["rollout", "--weight", "0.1", "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["from"], "1 100%");
    assert_eq!(plan["to"], "1 90% · 2 10%");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));

    let out = f.p.json(&["rollout", "--weight", "0.1"]);
    assert_eq!(out["candidate"], "2");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})));
    assert_eq!(f.p.state()["rollout"]["candidate"], "2");
    assert_eq!(f.p.state()["rollout"]["weight"], 0.1);

    // Changing the weight of the routed candidate is fine.
    f.p.json(&["rollout", "--weight", "0.25"]);
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.25})));
}

#[test]
fn every_alias_rule_is_enforced_before_any_change() {
    let f = Fixture::new("ro-rules");
    f.publish("v2", None);
    let other = format!("{}-other", f.name());
    create_role(&other);
    let v3 = f.publish("v3", Some(&other));
    assert_eq!(v3, "3");
    let unchanged = || assert_eq!(f.routing(), ("1".to_string(), json!({})), "the alias must be unchanged");

    for w in ["0", "1", "1.5", "-0.1"] {
        let e = f.p.fails(&["rollout", &format!("--weight={w}"), "--version", "2"], 1);
        assert!(e.contains(&format!("weight {w} is out of range")), "{w}: {e}");
        assert!(e.contains("greater than 0 and less than 1"), "{e}");
        unchanged();
    }
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--version", "$LATEST"], 1);
    assert!(e.contains("`$LATEST` cannot be routed") && e.contains("mlambda deploy"), "{e}");
    unchanged();
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--version", "1"], 1);
    assert!(e.contains("version 1 is already the primary"), "{e}");
    unchanged();
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--version", "99"], 1);
    assert!(e.contains(&format!("version 99 of `{}` does not exist", f.name())) && e.contains("1, 2, 3"), "{e}");
    unchanged();
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--version", "3"], 1);
    assert!(e.contains("versions 1 and 3 have different execution roles"), "{e}");
    assert!(e.contains(&role_arn(f.name())) && e.contains(&role_arn(&other)), "{e}");
    unchanged();
    let e = f.p.fails(&["rollout", "--steps", "0.5,0.2", "--version", "2"], 1);
    assert!(e.contains("steps must strictly increase"), "{e}");
    let e = f.p.fails(&["rollout", "--preset", "fast"], 1);
    assert!(e.contains("unknown preset `fast`"), "{e}");
    unchanged();

    // A second candidate while one is routed: at most one additional version.
    f.p.json(&["rollout", "--weight", "0.1", "--version", "2"]);
    let v4 = f.publish("v4", None);
    let e = f.p.fails(&["rollout", "--weight", "0.1", "--version", &v4], 1);
    assert!(e.contains("routes 10% of its traffic to version 2") && e.contains("only one additional version"), "{e}");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})));
    // moto stores no DeadLetterConfig, so the dead-letter rule is covered by the unit tests in plan::alias.
}

#[test]
fn promote_then_rollback_returns_to_the_previous_primary() {
    let f = Fixture::new("ro-promote");
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.2"]);

    // Rollback with routing: the routing goes, the primary stays.
    let out = f.p.json(&["rollout", "--rollback"]);
    assert_eq!(out["to"], "1 100%");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));

    f.p.json(&["rollout", "--weight", "0.2"]);
    let out = f.p.json(&["rollout", "--promote"]);
    assert_eq!(out["to"], "2 100%");
    assert_eq!(out["previous_primary"], "1");
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
    assert!(f.alias()["Description"].as_str().unwrap_or_default().contains("mlambda: previous=1"));
    assert_eq!(f.p.state()["rollout"]["previous_primary"], "1");

    // The record on the alias is enough: the state file is gone.
    std::fs::remove_file(f.p.path(".mlambda/state.json")).expect("remove state");
    let dry = f.p.json(&["rollout", "--rollback", "--dry-run"]);
    assert_eq!(dry["to"], "1 100%");
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
    f.p.json(&["rollout", "--rollback"]);
    assert_eq!(f.routing(), ("1".to_string(), json!({})));
    assert!(!f.alias()["Description"].as_str().unwrap_or_default().contains("previous="));

    let e = f.p.fails(&["rollout", "--rollback"], 1);
    assert!(e.contains("nothing to roll back"), "{e}");
}

/// Waits (bounded) until moto's alias routing is `want`.
fn wait_for_routing(f: &Fixture, want: &Value, within: Duration) {
    let start = Instant::now();
    while f.routing().1 != *want {
        assert!(start.elapsed() < within, "alias never reached {want}: {:?}", f.routing());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_candidate_alarm_during_a_step_rolls_back_and_exits_2() {
    let f = Fixture::new("ro-alarm");
    f.p.json(&["alarms"]);
    f.publish("v2", None);
    let mut child = f.p.cmd();
    child.args(["rollout", "--steps", "0.5,1", "--interval", "6s"]).timeout(Duration::from_secs(60));
    let handle = std::thread::spawn(move || child.output().expect("run mlambda"));
    wait_for_routing(&f, &json!({"2": 0.5}), Duration::from_secs(30));
    let alarm = f.alarm_name("v2", "errors");
    f.set_alarm(&alarm, "ALARM", "Threshold Crossed: 7 errors in 5 minutes");
    let out = handle.join().expect("thread");
    let stderr = crate::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(&format!("alarm `{alarm}` of version 2 is in ALARM")), "{stderr}");
    assert!(stderr.contains("Threshold Crossed: 7 errors in 5 minutes"), "{stderr}");
    assert!(stderr.contains("rolled back: production: 1 100%"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));
}

#[test]
fn an_alarm_on_the_old_version_does_not_block_the_rollout() {
    let f = Fixture::new("ro-oldalarm");
    f.p.json(&["alarms"]);
    f.set_alarm(&f.alarm_name("v1", "errors"), "ALARM", "old version is noisy");
    f.publish("v2", None);
    let out = f.p.json(&["rollout", "--steps", "0.5,1", "--interval", "1s"]);
    assert_eq!(out["to"], "2 100%");
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
    // The rollout put the candidate's alarms before its first step.
    let v2 = aws_cli(&["cloudwatch", "describe-alarms", "--alarm-name-prefix", &format!("mlambda-{}-v2-", f.name())]);
    // latency p99, errors, throttles, client-error rate and model-error rate
    assert_eq!(v2["MetricAlarms"].as_array().map(Vec::len), Some(5));
}

#[test]
fn steps_resume_from_the_current_weight() {
    let f = Fixture::new("ro-resume");
    f.publish("v2", None);
    f.p.json(&["rollout", "--weight", "0.5"]);
    let plan = f.p.json(&["rollout", "--steps", "0.1,0.5,1", "--interval", "1s", "--dry-run"]);
    assert_eq!(plan["skipped"], json!([0.1, 0.5]));
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(1));
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.5})));
    f.p.json(&["rollout", "--steps", "0.1,0.5,1", "--interval", "1s"]);
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
}

#[test]
fn ctrl_c_between_steps_leaves_a_valid_alias_and_says_how_to_resume() {
    let f = Fixture::new("ro-sigint");
    f.publish("v2", None);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlambda"))
        .args(["rollout", "--steps", "0.3,0.6,1", "--interval", "30s"])
        .current_dir(f.p.root())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mlambda");
    wait_for_routing(&f, &json!({"2": 0.3}), Duration::from_secs(30));
    let sent = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "mlambda did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let stderr = crate::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rollout interrupted: alias `production` stays at 1 70% · 2 30%"), "{stderr}");
    assert!(
        stderr.contains("mlambda rollout --steps 0.3,0.6,1 --interval 30s") && stderr.contains("--rollback"),
        "{stderr}"
    );
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.3})));
    // the lease is given back, and the step's start stays for the resume to wait out its window
    let d = f.alias()["Description"].as_str().unwrap_or_default().to_string();
    assert!(!d.contains("lease=") && d.contains("mlambda: rollout=2 at=0.3 since="), "{d}");
}
