//! `mlambda shadow` end to end on the local stack: two published zip versions, callers invoking the alias
//! through the Lambda API, the primary's real `bootstrap` copying requests to the candidate through moto's
//! Invoke API after answering, and the candidate's log lines in CloudWatch Logs. awscli checks the role.
use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::common::{aws_cli, fails_of};
use super::zip_package::ZipProject;

/// `n` requests to the alias, 8 at a time, each `payload`; the callers' answers.
fn callers(p: &ZipProject, n: usize, payload: &Value) -> Vec<Value> {
    let file = p.path("caller.json");
    std::fs::write(&file, payload.to_string()).expect("write payload");
    let out = std::process::Command::new(super::report::python())
        .arg(super::common::repo().join("tests/it/invoke_many.py"))
        .args([&p.name, "production", &n.to_string(), "8", file.to_str().expect("utf-8")])
        .output()
        .expect("run invoke_many.py");
    assert!(out.status.success(), "invoke_many.py: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect()
}

/// The function's log lines (all versions), parsed where they are JSON.
fn log_lines(p: &ZipProject) -> Vec<Value> {
    let group = format!("/aws/lambda/{}", p.name);
    let mut lines = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["logs", "filter-log-events", "--log-group-name", &group];
        let t;
        if let Some(next) = &token {
            t = next.clone();
            args.extend(["--next-token", &t]);
        }
        let page = aws_cli(&args);
        for e in page["events"].as_array().expect("events") {
            let message = e["message"].as_str().unwrap_or_default();
            if let Some(start) = message.find('{') {
                if let Ok(v) = serde_json::from_str::<Value>(message[start..].trim()) {
                    lines.push(v);
                }
            }
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    lines
}

fn one_row() -> Value {
    json!({"tenure_months": 3, "monthly_charges": 22.39, "total_charges": 65.31, "num_products": 1,
           "has_tech_support": 0, "contract_type_encoded": 1, "payment_method_encoded": 2})
}

/// Version 1 behind the alias, version 2 the same model published as `v2`.
fn two_versions(prefix: &str) -> ZipProject {
    let p = ZipProject::new(prefix);
    p.json(&["up", "--create-bucket", "--create-role"]);
    p.json(&["model", "push", "--version", "v2"]);
    let deployed = p.json(&["deploy", "--model-version", "v2"]);
    assert_eq!(deployed["version"], "2", "{deployed}");
    p
}

fn role_policies(p: &ZipProject) -> Vec<String> {
    let role = aws_cli(&["lambda", "get-function-configuration", "--function-name", &p.name, "--qualifier", "1"])
        ["Role"]
        .as_str()
        .expect("role")
        .rsplit('/')
        .next()
        .expect("role name")
        .to_string();
    aws_cli(&["iam", "list-role-policies", "--role-name", &role])["PolicyNames"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_request_is_copied_after_its_answer_and_stop_ends_it() {
    let p = two_versions("shadow");
    let started = p.json(&["shadow", "--version", "2", "--sample", "1"]);
    assert_eq!((&started["primary"], &started["target"], &started["sample"]), (&json!("1"), &json!("2"), &json!(1.0)));
    assert!(role_policies(&p).contains(&"mlambda-shadow".to_string()), "the primary may invoke the target");
    let status = p.json(&["status"]);
    assert_eq!(status["shadow"]["target_version"], "2", "{}", status["shadow"]);

    let answers = callers(&p, 300, &one_row());
    assert_eq!(answers.len(), 300);
    for a in &answers {
        assert_eq!(
            (&a["status"], &a["body"]["model_version"], &a["error"]),
            (&json!(200), &json!("v1"), &Value::Null),
            "{a}"
        );
    }
    let lines = log_lines(&p);
    let primary: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["mlambda"] == "prediction" && l["function_version"] == "1" && l.get("shadow").is_none())
        .filter_map(|l| l["correlation_id"].as_str())
        .collect();
    let shadow: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["mlambda"] == "prediction" && l["shadow"] == true)
        .inspect(|l| assert_eq!((&l["function_version"], &l["model_version"]), (&json!("2"), &json!("v2")), "{l}"))
        .filter_map(|l| l["correlation_id"].as_str())
        .collect();
    assert_eq!(primary.len(), 300, "the primary marked every copied request");
    assert_eq!(shadow, primary, "the candidate answered every copy, with the primary's correlation ids");
    // the candidate's metrics carry the Traffic dimension, out of the live alarms' series
    let shadow_emf = lines.iter().filter(|l| l["FunctionVersion"] == "2" && l.get("_aws").is_some());
    for emf in shadow_emf {
        assert_eq!(emf["Traffic"], "shadow", "{emf}");
        let dims = &emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(dims, &json!([["ModelVersion", "Traffic"], ["FunctionName", "FunctionVersion", "Traffic"]]));
    }
    assert!(!lines.iter().any(|l| l["mlambda"] == "shadow_error"), "no copy failed");
    // the report pairs every copy with its primary answer: the same model, so they agree exactly
    let r = p.json(&["report", "--shadow"]);
    assert_eq!((&r["baseline"], &r["candidate"]), (&json!("1"), &json!("2")), "{r}");
    assert_eq!(r["pairs"], 300, "{r}");
    assert_eq!(r["agreement"], 1.0, "{r}");
    assert_ne!(r["verdict"], "rollback", "{r}");

    let stopped = p.json(&["shadow", "--stop"]);
    assert_eq!(stopped["was"]["target_version"], "2", "{stopped}");
    assert!(!role_policies(&p).contains(&"mlambda-shadow".to_string()), "the permission is gone");
    let before = log_lines(&p).iter().filter(|l| l["shadow"] == true).count();
    for a in callers(&p, 5, &one_row()) {
        assert_eq!(a["status"], 200, "{a}");
    }
    let after = log_lines(&p).iter().filter(|l| l["shadow"] == true).count();
    assert_eq!(before, after, "nothing is copied after --stop");
    assert!(p.json(&["status"])["shadow"].is_null());
}

/// Version 3: the runtime's broken fixture (a regressor over two features that fails on any batch of two rows),
/// published beside the others with awscli, as no `model push` would accept it.
fn broken_version(p: &ZipProject) -> String {
    use sha2::Digest;
    let model =
        std::fs::read(super::common::repo().join("runtime/tests/fixtures/broken/batch_sum.onnx")).expect("fixture");
    let sha = hex::encode(sha2::Sha256::digest(&model));
    let file = p.path("broken.onnx");
    std::fs::write(&file, &model).expect("write");
    let meta = format!("sha256={sha}");
    aws_cli(&[
        "s3api",
        "put-object",
        "--bucket",
        &p.name,
        "--key",
        "raw/broken.onnx",
        "--body",
        file.to_str().expect("utf-8"),
        "--metadata",
        &meta,
    ]);
    let config = aws_cli(&["lambda", "get-function-configuration", "--function-name", &p.name, "--qualifier", "1"]);
    let mut vars = config["Environment"]["Variables"].clone();
    vars["MODEL_KEY"] = json!("raw/broken.onnx");
    vars["MODEL_SHA256"] = json!(sha);
    vars["MODEL_VERSION"] = json!("broken");
    vars["MODEL_FEATURES"] = json!("tenure_months,monthly_charges");
    let env = json!({ "Variables": vars }).to_string();
    aws_cli(&["lambda", "update-function-configuration", "--function-name", &p.name, "--environment", &env]);
    aws_cli(&["lambda", "publish-version", "--function-name", &p.name])["Version"]
        .as_str()
        .expect("version")
        .to_string()
}

#[test]
fn a_sample_copies_its_share_and_failures_stay_on_the_shadow_path() {
    let p = two_versions("shadowfail");
    p.json(&["shadow", "--version", "2", "--sample", "0.2"]);
    let answers = callers(&p, 300, &one_row());
    assert!(answers.iter().all(|a| a["status"] == 200 && a["body"]["model_version"] == "v1"));
    let copies = log_lines(&p).iter().filter(|l| l["shadow"] == true).count();
    // binomial(300, 0.2): mean 60, sd 6.93; the two-sided 99.9% interval is 60 ± 22.8
    assert!((38..=82).contains(&copies), "{copies} copies of 300 at a 0.2 sample");

    // a candidate whose model fails every request: the callers never see it, its failures are shadow errors
    let broken = broken_version(&p);
    p.json(&["shadow", "--version", &broken, "--sample", "1"]);
    let two = json!({"instances": [one_row(), one_row()]});
    for a in callers(&p, 6, &two) {
        assert_eq!((&a["status"], &a["body"]["model_version"]), (&json!(200), &json!("v1")), "{a}");
        assert_eq!(a["body"]["predictions"].as_array().map(Vec::len), Some(2), "{a}");
    }
    let lines = log_lines(&p);
    let failed: Vec<&Value> =
        lines.iter().filter(|l| l["mlambda"] == "shadow_error" && l["function_version"] == broken.as_str()).collect();
    assert_eq!(failed.len(), 6, "one shadow error per copy the candidate failed");
    assert!(failed[0]["reason"].as_str().is_some_and(|r| r.contains("500")), "{}", failed[0]);
    let counted: i64 = lines
        .iter()
        .filter(|l| l["FunctionVersion"] == broken.as_str() && l["Traffic"] == "shadow")
        .filter_map(|l| l["ShadowErrors"].as_i64())
        .sum();
    assert_eq!(counted, 6, "ShadowErrors counts them under the shadow's Traffic dimension");
    assert!(
        !lines.iter().any(|l| l["mlambda"] == "error" && l["function_version"] == broken.as_str()),
        "no live error line"
    );

    // a target deleted while it is shadowed: callers still get the primary's answer; the copies are counted
    p.json(&["shadow", "--version", "2", "--sample", "1"]);
    aws_cli(&["lambda", "delete-function", "--function-name", &p.name, "--qualifier", "2"]);
    for a in callers(&p, 5, &one_row()) {
        assert_eq!((&a["status"], &a["body"]["model_version"]), (&json!(200), &json!("v1")), "{a}");
    }
    let lines = log_lines(&p);
    let lost: Vec<&Value> =
        lines.iter().filter(|l| l["mlambda"] == "shadow_error" && l["function_version"] == "1").collect();
    assert_eq!(lost.len(), 5, "one shadow error per copy the primary could not deliver");
    assert!(lost[0]["target"].as_str().is_some_and(|t| t.ends_with(":2")), "{}", lost[0]);
    let counted: i64 = lines
        .iter()
        .filter(|l| l["FunctionVersion"] == "1" && l.get("Traffic").is_none())
        .filter_map(|l| l["ShadowErrors"].as_i64())
        .sum();
    assert_eq!(counted, 5);
}

#[test]
fn bad_shadow_requests_are_refused_before_anything_changes() {
    let p = two_versions("shadowbad");
    let refused = |args: &[&str]| fails_of(p.cmd(), &[&["shadow"][..], args].concat(), 1);
    let missing = refused(&["--version", "99"]);
    assert!(missing.contains("version 99 of function") && missing.contains("does not exist"), "{missing}");
    let itself = refused(&["--version", "1"]);
    assert!(itself.contains("cannot shadow itself"), "{itself}");
    for sample in ["--sample=0", "--sample=1.5", "--sample=-0.2"] {
        let e = refused(&["--version", "2", sample]);
        assert!(e.contains("is out of range") && e.contains("--sample"), "{sample}: {e}");
    }
    p.json(&["rollout", "--weight", "0.1", "--version", "2"]);
    let weighted = refused(&["--version", "2"]);
    assert!(weighted.contains("weighted rollout (version 2 at 10%)") && weighted.contains("--rollback"), "{weighted}");
    assert!(!role_policies(&p).contains(&"mlambda-shadow".to_string()), "nothing was granted");
    assert!(p.json(&["status"])["shadow"].is_null(), "nothing was written");
}

#[test]
fn shadow_then_canary_shadows_first_and_goes_live_only_after_its_verdict() {
    let p = two_versions("shadowcanary");
    let config = std::fs::read_to_string(p.path("mlambda.yaml")).expect("read config");
    std::fs::write(p.path("mlambda.yaml"), format!("{config}rollout:\n  shadow_sample: 1\n")).expect("write config");
    let rollout = p.background(&[
        "rollout",
        "--version",
        "2",
        "--steps",
        "0.1,1",
        "--interval",
        "2s",
        "--shadow-first",
        "25s",
        "--output",
        "json",
    ]);
    // while the shadow runs, the alias is untouched and callers' requests are copied
    std::thread::sleep(std::time::Duration::from_secs(3));
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    let weights = alias["RoutingConfig"]["AdditionalVersionWeights"].as_object().map_or(0, |w| w.len());
    assert_eq!((&alias["FunctionVersion"], weights), (&json!("1"), 0), "{alias}");
    for a in callers(&p, 24, &one_row()) {
        assert_eq!((&a["status"], &a["body"]["model_version"]), (&json!(200), &json!("v1")), "{a}");
    }
    let out = rollout.wait_with_output().expect("wait for the rollout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rollout failed: {stderr}");
    assert!(stderr.contains("shadow of version 2: ") && stderr.contains("verdict"), "{stderr}");
    // then the canary steps ran and promoted; the shadow is over
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "2", "{alias}");
    assert!(p.json(&["status"])["shadow"].is_null(), "the shadow stopped");
    assert!(!role_policies(&p).contains(&"mlambda-shadow".to_string()), "its permission is gone");
    let state: Value =
        serde_json::from_slice(&std::fs::read(p.path(".mlambda/state.json")).expect("state")).expect("json");
    let verdict = &state["shadow_verdicts"]["2"];
    assert!(verdict.is_object() && verdict["verdict"] != "rollback", "{state}");
    let copies = log_lines(&p).iter().filter(|l| l["shadow"] == true).count();
    assert!(copies >= 24, "{copies} copies: every request during the window was shadowed");
}

#[test]
fn a_shadow_that_fails_stops_the_rollout_before_any_live_weight() {
    let p = two_versions("shadowstop");
    let broken = broken_version(&p);
    let config = std::fs::read_to_string(p.path("mlambda.yaml")).expect("read config");
    std::fs::write(p.path("mlambda.yaml"), format!("{config}rollout:\n  shadow_sample: 1\n")).expect("write config");
    let rollout = p.background(&[
        "rollout",
        "--version",
        &broken,
        "--steps",
        "0.1,1",
        "--interval",
        "2s",
        "--shadow-first",
        "20s",
    ]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let two = json!({"instances": [one_row(), one_row()]});
    for a in callers(&p, 10, &two) {
        assert_eq!((&a["status"], &a["body"]["model_version"]), (&json!(200), &json!("v1")), "{a}");
    }
    let out = rollout.wait_with_output().expect("wait for the rollout");
    let stderr = super::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("the shadow's verdict on version {broken} is rollback")), "{stderr}");
    assert!(stderr.contains("no live traffic was shifted") && stderr.contains("--force"), "{stderr}");
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    let weights = alias["RoutingConfig"]["AdditionalVersionWeights"].as_object().map_or(0, |w| w.len());
    assert_eq!((&alias["FunctionVersion"], weights), (&json!("1"), 0), "the alias never moved: {alias}");
    assert!(p.json(&["status"])["shadow"].is_null(), "the shadow stopped");
    // the recorded verdict also stops a later canary
    let refused = fails_of(p.cmd(), &["rollout", "--weight", "0.1", "--version", &broken], 1);
    assert!(refused.contains("shadow") && refused.contains("--force"), "{refused}");
}
