//! The model fetched from S3 (moto server), verified against its `sha256` metadata or `MODEL_SHA256`.
//!
//! Uses `AWS_ENDPOINT_URL` if set, else starts `moto_server` from PATH; fails, not skips, without it. Objects
//! are uploaded with the AWS CLI (`aws` on PATH, or `AWS_CLI`).
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};

struct S3 {
    endpoint: String,
    _moto: Option<Proc>,
}

fn s3() -> S3 {
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        return S3 { endpoint, _moto: None };
    }
    let port = free_port();
    let mut cmd = Command::new(require_tool("MOTO_SERVER", "moto_server"));
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let mut moto = Proc::spawn(cmd, "moto_server");
    moto.wait_port(port, Duration::from_secs(60));
    // `localhost`, not an IP, so path-style addressing is exercised
    S3 { endpoint: format!("http://localhost:{port}"), _moto: Some(moto) }
}

fn env_for(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
}

/// Uploads with the AWS CLI: a third party, so the test checks our signing against someone else's.
fn put(endpoint: &str, bucket: &str, key: &str, bytes: &[u8], sha: Option<&str>) {
    let aws = require_tool("AWS_CLI", "aws");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&aws);
        env_for(&mut cmd, endpoint);
        cmd.args(["--endpoint-url", endpoint, "s3api"]).args(args).output().unwrap()
    };
    let _ = run(&["create-bucket", "--bucket", bucket]);
    let body = file.path().to_str().unwrap();
    let mut args = vec!["put-object", "--bucket", bucket, "--key", key, "--body", body];
    let meta = sha.map(|s| format!("sha256={s}"));
    if let Some(meta) = &meta {
        args.extend(["--metadata", meta]);
    }
    let out = run(&args);
    assert!(out.status.success(), "put s3://{bucket}/{key}: {}", String::from_utf8_lossy(&out.stderr));
}

fn run_bootstrap(endpoint: &str, bucket: &str, key: &str, sha_env: Option<&str>, port: u16) -> Proc {
    let mut cmd = bootstrap();
    env_for(&mut cmd, endpoint);
    cmd.env("MODEL_BUCKET", bucket)
        .env("MODEL_KEY", key)
        .env("MODEL_FEATURES", FEATURES)
        .env("MODEL_VERSION", "v-s3")
        .env("MLAMBDA_LISTEN", format!("127.0.0.1:{port}"));
    if let Some(sha) = sha_env {
        cmd.env("MODEL_SHA256", sha);
    }
    Proc::spawn(cmd, "bootstrap (s3 model)")
}

#[test]
fn fetches_verifies_and_serves_a_model_from_s3() {
    let s3 = s3();
    let model = std::fs::read(churn_model()).unwrap();
    let sha = hex::encode(Sha256::digest(&model));
    put(&s3.endpoint, "models", "churn/v1/model.onnx", &model, Some(&sha));
    put(&s3.endpoint, "models", "churn/bad/model.onnx", &model, Some(&"0".repeat(64)));
    put(&s3.endpoint, "models", "churn/plain/model.onnx", &model, None);

    // good: metadata matches, and MODEL_SHA256 agrees
    let port = free_port();
    let mut p = run_bootstrap(&s3.endpoint, "models", "churn/v1/model.onnx", Some(&sha), port);
    p.wait_port(port, Duration::from_secs(60));
    let (status, body) = post(port, "/2015-03-31/functions/function/invocations", &payload("one.json")).envelope();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version"], "v-s3");
    let want = reference()["expected"][0]["probability"].as_f64().unwrap();
    assert!((body["probability"].as_f64().unwrap() - want).abs() < 1e-5, "{body}");
    drop(p);

    // wrong sha256 metadata: init refuses the model
    let mut p = run_bootstrap(&s3.endpoint, "models", "churn/bad/model.onnx", None, free_port());
    let status = p.wait_exit(Duration::from_secs(60)).expect("bootstrap served a model with a wrong sha256");
    assert!(!status.success());
    assert!(p.stderr().contains("refusing to serve") && p.stderr().contains("metadata"), "{}", p.stderr());

    // no metadata, wrong MODEL_SHA256: refused too
    let mut p = run_bootstrap(&s3.endpoint, "models", "churn/plain/model.onnx", Some(&"1".repeat(64)), free_port());
    assert!(!p.wait_exit(Duration::from_secs(60)).expect("still running").success());
    assert!(p.stderr().contains("MODEL_SHA256"), "{}", p.stderr());

    // a missing object names the location
    let mut p = run_bootstrap(&s3.endpoint, "models", "nope.onnx", None, free_port());
    assert!(!p.wait_exit(Duration::from_secs(60)).expect("still running").success());
    assert!(p.stderr().contains("s3://models/nope.onnx"), "{}", p.stderr());
}
