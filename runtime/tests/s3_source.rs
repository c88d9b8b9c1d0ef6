//! The model fetched from S3 (moto server), verified against its `sha256` metadata or `MODEL_SHA256`.
//!
//! Uses `AWS_ENDPOINT_URL` if set, else starts `moto_server` from PATH; fails, not skips, without it.
mod common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
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

async fn put(endpoint: &str, bucket: &str, key: &str, bytes: &[u8], sha: Option<&str>) {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let _ = client.create_bucket().bucket(bucket).send().await;
    let mut req = client.put_object().bucket(bucket).key(key).body(ByteStream::from(bytes.to_vec()));
    if let Some(sha) = sha {
        req = req.metadata("sha256", sha);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
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

#[tokio::test(flavor = "current_thread")]
async fn fetches_verifies_and_serves_a_model_from_s3() {
    let s3 = s3();
    let model = std::fs::read(churn_model()).unwrap();
    let sha = hex::encode(Sha256::digest(&model));
    put(&s3.endpoint, "models", "churn/v1/model.onnx", &model, Some(&sha)).await;
    put(&s3.endpoint, "models", "churn/bad/model.onnx", &model, Some(&"0".repeat(64))).await;
    put(&s3.endpoint, "models", "churn/plain/model.onnx", &model, None).await;

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
