//! `mlambda model push` and `model list` against moto, with the example churn model and the runtime's loader.
use sha2::Digest;

use crate::common::{aws_cli, put_object, Project, CHURN_FEATURES};

fn sha256_of(path: &std::path::Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn head(bucket: &str, key: &str) -> serde_json::Value {
    aws_cli(&["s3api", "head-object", "--bucket", bucket, "--key", key])
}

#[test]
fn push_uploads_once_with_its_sha256_and_a_manifest() {
    let p = Project::churn("mpush");
    aws_cli(&["s3api", "create-bucket", "--bucket", &p.name]);
    let sha = sha256_of(&p.path("model.onnx"));

    let out = p.json(&["model", "push"]);
    assert_eq!(out["action"], "upload", "{out}");
    assert_eq!(out["sha256"], sha.as_str());
    let h = head(&p.name, "models/churn/v1/model.onnx");
    assert_eq!(h["Metadata"]["sha256"], sha.as_str());
    assert_eq!(h["ContentLength"], std::fs::metadata(p.path("model.onnx")).unwrap().len());

    let manifest_file = p.path("manifest.json");
    aws_cli(&[
        "s3api",
        "get-object",
        "--bucket",
        &p.name,
        "--key",
        "models/churn/v1/manifest.json",
        manifest_file.to_str().unwrap(),
    ]);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_file).unwrap()).unwrap();
    assert_eq!(m["sha256"], sha.as_str());
    assert_eq!(m["features"], serde_json::json!(CHURN_FEATURES));
    assert_eq!(m["version"], "v1");
    assert!(m["parity"]["rows"].as_u64().unwrap() > 0, "{m}");
    assert!(m["parity"]["max_diff"].as_f64().unwrap() <= 1e-5, "{m}");
    assert!(humantime::parse_rfc3339(m["created"].as_str().unwrap()).is_ok(), "{m}");

    // Same bytes, same version: a no-op success.
    let again = p.json(&["model", "push"]);
    assert_eq!(again["action"], "already_uploaded", "{again}");

    let list = p.json(&["model", "list"]);
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["version"], "v1");
    assert_eq!(rows[0]["sha256"], sha.as_str());
    assert_eq!(rows[0]["function_versions"], serde_json::json!([]));
}

#[test]
fn different_bytes_under_an_existing_version_are_refused() {
    let p = Project::churn("mpimm");
    let key = "models/churn/v1/model.onnx";
    put_object(&p, key, b"someone else's model", "0000");
    let err = p.fails(&["model", "push"], 1);
    assert!(err.contains("already exists") && err.contains("--version"), "{err}");
    let h = head(&p.name, key);
    assert_eq!(h["Metadata"]["sha256"], "0000", "the object must be unchanged");
    assert_eq!(h["ContentLength"], 20);
}

#[test]
fn a_missing_bucket_is_refused_unless_asked_to_create_it() {
    let p = Project::churn("mpbucket");
    let err = p.fails(&["model", "push"], 1);
    assert!(err.contains(&format!("bucket `{}`", p.name)) && err.contains("--create-bucket"), "{err}");

    let dry = p.json(&["model", "push", "--create-bucket", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    let probe = std::process::Command::new("aws").args(["s3api", "head-bucket", "--bucket", &p.name]).output().unwrap();
    assert!(!probe.status.success(), "a dry run must not create the bucket");

    let out = p.json(&["model", "push", "--create-bucket"]);
    assert_eq!(out["bucket_created"], true, "{out}");
    let v = aws_cli(&["s3api", "get-bucket-versioning", "--bucket", &p.name]);
    assert_eq!(v["Status"], "Enabled");
    let e = aws_cli(&["s3api", "get-bucket-encryption", "--bucket", &p.name]);
    let rule = &e["ServerSideEncryptionConfiguration"]["Rules"][0];
    assert_eq!(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256");
    // Idempotent: the bucket exists now, the flag is harmless.
    assert_eq!(p.json(&["model", "push", "--create-bucket"])["action"], "already_uploaded");
}

#[test]
fn models_the_runtime_would_reject_never_reach_s3() {
    let p = Project::churn("mpbad");
    aws_cli(&["s3api", "create-bucket", "--bucket", &p.name]);

    std::fs::write(p.path("broken.onnx"), b"this is not a protobuf").unwrap();
    let err = p.fails(&["model", "push", "broken.onnx"], 1);
    assert!(err.contains("broken.onnx") && err.contains("ONNX"), "{err}");

    let err = p.fails(&["model", "push", "missing.onnx"], 1);
    assert!(err.contains("missing.onnx") && err.contains("does not exist"), "{err}");

    let three = p.default_config().replace(&CHURN_FEATURES.join(", "), "a, b, c");
    p.write_config(&three);
    let err = p.fails(&["model", "push", "--reference", "none.json"], 1);
    assert!(err.contains("takes 7 input features but `model.features` lists 3"), "{err}");
    p.write_config(&p.default_config());

    let mut reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path("reference.json")).unwrap()).unwrap();
    let first = reference["expected"][0]["prediction"].as_f64().unwrap();
    reference["expected"][0]["prediction"] = serde_json::json!(1.0 - first);
    std::fs::write(p.path("reference.json"), reference.to_string()).unwrap();
    let err = p.fails(&["model", "push"], 1);
    assert!(err.contains("does not reproduce") && err.contains("row 0: expected prediction"), "{err}");

    let objects = aws_cli(&["s3api", "list-objects-v2", "--bucket", &p.name]);
    assert!(objects.get("Contents").is_none(), "nothing was uploaded: {objects}");
}

/// An anomaly detector goes up like any model: its reference rows hold the -1/1 label and the score, and the
/// runtime's loader must reproduce both before anything reaches S3.
#[test]
fn an_anomaly_detector_is_checked_against_its_scores_before_upload() {
    let p = Project::churn("mpanomaly");
    aws_cli(&["s3api", "create-bucket", "--bucket", &p.name]);
    let fixtures = crate::common::repo().join("runtime/tests/fixtures/families");
    std::fs::copy(fixtures.join("iso_forest.onnx"), p.path("iso.onnx")).unwrap();
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("iso_forest.json")).unwrap()).unwrap();
    let features: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let rows: Vec<serde_json::Value> = data["rows"].as_array().unwrap()[..20]
        .iter()
        .map(|r| serde_json::Value::Array(features.iter().map(|f| r[f].clone()).collect()))
        .collect();
    let expected: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"prediction": data["ort"]["label"][i], "score": data["ort"]["score"][i]}))
        .collect();
    let mut reference = serde_json::json!({"features": features, "rows": rows, "expected": expected});
    std::fs::write(p.path("iso_reference.json"), reference.to_string()).unwrap();
    let config = p
        .default_config()
        .replace("path: model.onnx", "path: iso.onnx")
        .replace("reference: reference.json", "reference: iso_reference.json")
        .replace(&CHURN_FEATURES.join(", "), &features.join(", "));
    p.write_config(&config);
    let out = p.json(&["model", "push", "--version", "iso1"]);
    assert_eq!(out["parity"]["rows"], 20, "{out}");
    assert!(out["parity"]["max_diff"].as_f64().is_some_and(|d| d < 1e-5), "{out}");

    reference["expected"][3]["score"] = serde_json::json!(data["ort"]["score"][3].as_f64().unwrap() + 0.01);
    std::fs::write(p.path("iso_reference.json"), reference.to_string()).unwrap();
    let err = p.fails(&["model", "push", "--version", "iso2"], 1);
    assert!(err.contains("does not reproduce") && err.contains("row 3"), "{err}");
}
