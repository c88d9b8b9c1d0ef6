//! Models beyond binary numeric ones, through the CLI: the string-categorical churn example end to end
//! (`up`, `invoke --local` on the built image and on the bootstrap), and multiclass reference checks.
use serde_json::{json, Value};

use super::common::{self, aws_cli, engine, unique, Project};

/// The churn-categorical example as a project with unique names and no `model.features`.
fn categorical(prefix: &str) -> Project {
    common::require_stack();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique(prefix);
    let example = common::repo().join("examples/churn-categorical");
    for f in ["model.onnx", "reference.json"] {
        std::fs::copy(example.join(f), dir.path().join(f)).expect("copy example file");
    }
    let p = Project { dir, name };
    let n = &p.name;
    p.write_config(&format!(
        "function:\n  name: {n}\n  memory: 512\n  timeout: 10\n  role: arn:aws:iam::123456789012:role/{n}\n\
         image:\n  repository: {n}\n\
         model:\n  path: model.onnx\n  name: churn-categorical\n  version: v1\n  bucket: {n}\n  reference: reference.json\n\
         alarms:\n  namespace: ChurnCategorical\n"
    ));
    p
}

fn reference() -> Value {
    let text = std::fs::read_to_string(common::repo().join("examples/churn-categorical/reference.json"))
        .expect("reference.json");
    serde_json::from_str(&text).expect("reference.json is json")
}

/// Reference row `i` as the request a client sends: strings for the categorical columns.
fn request(r: &Value, i: usize) -> Value {
    let features = r["features"].as_array().expect("features");
    let row = r["rows"][i].as_array().expect("row");
    Value::Object(features.iter().zip(row).map(|(f, v)| (f.as_str().expect("name").to_string(), v.clone())).collect())
}

fn assert_answers(body: &Value, expected: &Value) {
    assert_eq!(body["prediction"], expected["prediction"], "{body}");
    let close = |a: &Value, b: &Value| (a.as_f64().expect("number") - b.as_f64().expect("number")).abs() < 1e-5;
    assert!(close(&body["probability"], &expected["probability"]), "{body} vs {expected}");
    for (label, p) in expected["probabilities"].as_object().expect("probabilities") {
        assert!(close(&body["probabilities"][label], p), "class {label}: {body} vs {expected}");
    }
}

#[test]
fn the_categorical_example_runs_through_up_and_answers_string_requests() {
    let _engine = engine();
    let p = categorical("cat");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_cli(&["iam", "create-role", "--role-name", &p.name, "--assume-role-policy-document", trust]);

    let out = p.json(&["up", "--create-bucket"]);
    let steps = out["steps"].as_array().expect("steps");
    for step in ["build", "push", "model push", "deploy", "alarms"] {
        let s = steps.iter().find(|s| s["step"] == step).expect("step");
        assert_eq!(s["status"], "done", "{step}: {out}");
    }
    // the graph's input names are the fields: the function gets no MODEL_FEATURES
    let cfg = aws_cli(&["lambda", "get-function-configuration", "--function-name", &p.name]);
    let vars = &cfg["Environment"]["Variables"];
    assert!(vars.get("MODEL_FEATURES").is_none(), "{vars}");
    assert_eq!(vars["MODEL_VERSION"], "v1", "{vars}");
    // the manifest records the fields the model push resolved from the graph
    let manifest = aws_cli(&["s3", "cp", &format!("s3://{}/models/churn-categorical/v1/manifest.json", p.name), "-"]);
    assert_eq!(manifest["features"], reference()["features"], "{manifest}");
    assert_eq!(manifest["parity"]["rows"], 50, "{manifest}");

    // the built image answers a request with strings, as the reference says
    let r = reference();
    let out = p.json(&["invoke", "--local", "--payload", &request(&r, 0).to_string()]);
    assert_eq!(out["status_code"], 200, "{out}");
    assert_answers(&out["body"], &r["expected"][0]);
    assert_eq!(out["body"]["model_version"], "v1");
}

#[test]
fn the_bootstrap_answers_batches_of_strings_and_refuses_a_number_for_a_category() {
    let p = categorical("catboot");
    let boot = common::runtime_binary();
    let boot = boot.to_str().expect("utf-8");
    let r = reference();
    let batch = json!({ "instances": (0..5).map(|i| request(&r, i)).collect::<Vec<_>>() });
    let out = p.json(&["invoke", "--local", "--runtime", boot, "--payload", &batch.to_string()]);
    assert_eq!(out["status_code"], 200, "{out}");
    let answers = out["body"]["predictions"].as_array().expect("predictions");
    assert_eq!(answers.len(), 5, "{out}");
    for (i, a) in answers.iter().enumerate() {
        assert_answers(a, &r["expected"][i]);
    }

    let bad = common::repo().join("examples/churn-categorical/payloads/bad-type.json");
    let out = p.json(&["invoke", "--local", "--runtime", boot, "--payload", bad.to_str().expect("utf-8")]);
    assert_eq!(out["status_code"], 400, "{out}");
    let err = out["body"]["error"].as_str().expect("error");
    assert!(err.contains("contract_type") && err.contains("string"), "{err}");
}

/// A reference file for fixture `name` of the runtime's tabular fixtures: its rows and onnxruntime's answers.
fn fixture_reference(name: &str) -> (Vec<String>, Value) {
    let dir = common::repo().join("runtime/tests/fixtures/tabular");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest")).expect("json");
    let entry = manifest["fixtures"].as_array().expect("fixtures").iter().find(|f| f["name"] == name).expect("fixture");
    let features: Vec<String> =
        entry["features"].as_array().expect("features").iter().map(|f| f.as_str().expect("name").into()).collect();
    let labels = entry["labels"].as_array().expect("labels");
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(entry["rows"].as_str().expect("rows"))).expect("rows file"),
    )
    .expect("json");
    let n = 40;
    let rows: Vec<Value> = data["rows"].as_array().expect("rows")[..n]
        .iter()
        .map(|row| Value::Array(features.iter().map(|f| row[f].clone()).collect()))
        .collect();
    let expected: Vec<Value> = (0..n)
        .map(|i| {
            let probs = data["ort"]["probabilities"][i].as_array().expect("probabilities");
            let map: serde_json::Map<String, Value> = labels
                .iter()
                .zip(probs)
                .map(|(l, p)| (l.as_str().map_or_else(|| l.to_string(), str::to_string), p.clone()))
                .collect();
            json!({ "prediction": data["ort"]["label"][i], "probabilities": map })
        })
        .collect();
    (features.clone(), json!({ "features": features, "rows": rows, "expected": expected }))
}

#[test]
fn model_push_checks_multiclass_string_label_references() {
    let p = Project::churn("multi");
    std::fs::copy(common::repo().join("runtime/tests/fixtures/tabular/gbc_multi_str.onnx"), p.path("multi.onnx"))
        .expect("copy fixture");
    let (features, reference) = fixture_reference("gbc_multi_str");
    std::fs::write(p.path("multi.json"), reference.to_string()).expect("write reference");
    let config = p
        .default_config()
        .replace("path: model.onnx", "path: multi.onnx")
        .replace("reference: reference.json", "reference: multi.json")
        .replace(
            &format!("features: [{}]", common::CHURN_FEATURES.join(", ")),
            &format!("features: [{}]", features.join(", ")),
        );
    p.write_config(&config);

    let out = p.json(&["model", "push", "--dry-run", "--create-bucket"]);
    assert_eq!(out["parity"]["rows"], 40, "{out}");
    assert!(out["parity"]["max_diff"].as_f64().expect("max_diff") < 1e-5, "{out}");

    // another label in the reference is caught, named by row and label
    let mut wrong = reference.clone();
    let label = wrong["expected"][3]["prediction"].as_str().expect("string label").to_string();
    let other = if label == "gold" { "bronze" } else { "gold" };
    wrong["expected"][3]["prediction"] = json!(other);
    std::fs::write(p.path("multi.json"), wrong.to_string()).expect("write reference");
    let err = p.fails(&["model", "push", "--dry-run", "--create-bucket"], 1);
    assert!(err.contains("does not reproduce") && err.contains("row 3") && err.contains(other), "{err}");
}
