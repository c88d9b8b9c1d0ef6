//! A deployed zip function answers for real: moto runs the zip's own `bootstrap` in the stack's dockerd
//! (scripts/moto-server, scripts/stack-images), so `mlambda invoke` without `--local` goes through Lambda's
//! Invoke API to the function's code, on the version or alias asked for, and its log lines reach CloudWatch.
use serde_json::Value;

use super::common::aws_cli;
use super::zip_package::ZipProject;

/// What `mlambda invoke` reports the function answered, without the target and timing.
fn answer(outcome: &Value) -> (&Value, &Value) {
    (&outcome["status_code"], &outcome["body"])
}

#[test]
fn a_deployed_zip_function_answers_through_lambda_as_it_does_locally() {
    let p = ZipProject::new("remote");
    p.json(&["up", "--create-bucket", "--create-role"]);
    // version 2 serves another model version, so a qualifier that is ignored shows in the answer
    p.json(&["model", "push", "--version", "v2"]);
    let deployed = p.json(&["deploy", "--model-version", "v2"]);
    assert_eq!(deployed["version"], "2", "{deployed}");

    let reference: Value =
        serde_json::from_slice(&std::fs::read(p.path("reference.json")).expect("reference")).expect("json");
    let expected = reference["expected"][0]["probability"].as_f64().expect("expected");
    let local = p.json(&["invoke", "--local", "--payload", "payloads/one.json"]);
    assert_eq!(local["status_code"], 200, "{local}");
    assert_eq!(local["body"]["model_version"], "v1", "{local}");
    let probability = local["body"]["probability"].as_f64().unwrap_or_else(|| panic!("no probability in {local}"));
    assert!((probability - expected).abs() < 1e-5, "{local} vs {expected}");

    // the alias (function.alias, still on version 1), explicitly and by default, and version 1 itself
    for args in [&["--version", "1"][..], &["--alias", "production"][..], &[][..]] {
        let remote = p.json(&[&["invoke", "--payload", "payloads/one.json"][..], args].concat());
        assert_eq!(answer(&remote), answer(&local), "invoke {args:?}: {remote}\nlocal: {local}");
        assert!(remote["target"].as_str().is_some_and(|t| t.starts_with(&p.name)), "{remote}");
    }
    let v2 = p.json(&["invoke", "--version", "2", "--payload", "payloads/one.json"]);
    assert_eq!(v2["body"]["model_version"], "v2", "--version 2 runs version 2: {v2}");
    assert_eq!(v2["body"]["probability"], local["body"]["probability"], "the same model bytes: {v2}");

    // a payload the handler rejects is the same 400 envelope remotely, not a function error
    let bad_local = p.json(&["invoke", "--local", "--payload", "payloads/bad-missing.json"]);
    let bad = p.json(&["invoke", "--version", "1", "--payload", "payloads/bad-missing.json"]);
    assert_eq!(bad["status_code"], 400, "{bad}");
    assert_eq!(answer(&bad), answer(&bad_local), "{bad}\nlocal: {bad_local}");

    // the runtime's stdout reached the function's log group: EMF for version 1, and the prediction log
    let group = format!("/aws/lambda/{}", p.name);
    let events = aws_cli(&["logs", "filter-log-events", "--log-group-name", &group]);
    let lines: Vec<(String, Value)> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| {
            let stream = e["logStreamName"].as_str()?.to_string();
            Some((stream, serde_json::from_str(e["message"].as_str()?).ok()?))
        })
        .collect();
    let emf = lines.iter().find(|(stream, line)| {
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ChurnModel"
            && line["FunctionName"] == p.name.as_str()
            && line["FunctionVersion"] == "1"
            && stream.contains("[1]")
    });
    let (_, emf) = emf.unwrap_or_else(|| panic!("no EMF line of version 1 in {group}: {events}"));
    assert_eq!((emf["ModelVersion"].as_str(), emf["Rows"].as_i64()), (Some("v1"), Some(1)), "{emf}");
    assert!(
        lines
            .iter()
            .any(|(_, l)| l["mlambda"] == "prediction" && l["function_version"] == "2" && l["model_version"] == "v2"),
        "no prediction log line of version 2 in {group}: {events}"
    );
}
