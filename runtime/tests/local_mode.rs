//! The real `bootstrap` in local mode: good and bad payloads over HTTP, EMF on stdout, SIGTERM exits cleanly.
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const INVOKE: &str = "/2015-03-31/functions/function/invocations";

fn start(port: u16) -> Proc {
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", churn_model())
        .env("MODEL_FEATURES", FEATURES)
        .env("MODEL_VERSION", "v-test")
        .env("METRICS_NAMESPACE", "mlambda-test")
        .env("MLAMBDA_LISTEN", format!("127.0.0.1:{port}"));
    let mut p = Proc::spawn(cmd, "bootstrap (local mode)");
    p.wait_port(port, Duration::from_secs(30));
    p
}

fn invoke(port: u16, body: &[u8]) -> (u64, Value) {
    let resp = post(port, INVOKE, body);
    assert_eq!(resp.status, 200, "http status for {}", String::from_utf8_lossy(body));
    let env = resp.json();
    assert_eq!(env["headers"]["Content-Type"], "application/json");
    resp.envelope()
}

fn error_of(port: u16, body: &[u8]) -> String {
    let (status, body) = invoke(port, body);
    assert_eq!(status, 400, "{body}");
    body["error"].as_str().unwrap().to_string()
}

#[test]
fn serves_predictions_refuses_bad_input_and_stops_on_sigterm() {
    let port = free_port();
    let mut p = start(port);
    let reference = reference();

    // one row, direct object: the reference's expected (onnxruntime) answer, unrounded
    let (status, body) = invoke(port, &payload("one.json"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version"], "v-test");
    assert_eq!(body["prediction"], reference["expected"][0]["prediction"]);
    let p0 = body["probability"].as_f64().unwrap();
    assert!((p0 - reference["expected"][0]["probability"].as_f64().unwrap()).abs() < 1e-5, "{body}");
    assert!(body["probability"].to_string().len() > 8, "probability looks rounded: {body}");

    // API Gateway proxy event
    let (status, body) = invoke(port, &payload("proxy.json"));
    assert_eq!(status, 200, "{body}");
    assert!(
        (body["probability"].as_f64().unwrap() - reference["expected"][1]["probability"].as_f64().unwrap()).abs()
            < 1e-5
    );

    // batch
    let (status, body) = invoke(port, &payload("batch.json"));
    assert_eq!(status, 200, "{body}");
    let preds = body["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 5);
    for (i, pr) in preds.iter().enumerate() {
        let want = &reference["expected"][i];
        assert_eq!(pr["prediction"], want["prediction"]);
        assert!((pr["probability"].as_f64().unwrap() - want["probability"].as_f64().unwrap()).abs() < 1e-5);
    }
    assert_eq!(body["model_version"], "v-test");

    // warmup never touches the model
    assert_eq!(invoke(port, &payload("warmup.json")), (200, json!({"status": "warm"})));

    // bad input: 400 with a message naming the problem
    let missing = error_of(port, &payload("bad-missing.json"));
    assert!(missing.contains("num_products") && missing.contains("has_tech_support"), "{missing}");
    assert!(error_of(port, &payload("bad-string.json")).contains("monthly_charges"));
    assert!(error_of(port, &payload("bad-null.json")).contains("tenure_months"));
    assert!(error_of(port, &payload("bad-nested.json")).contains("contract_type_encoded"));
    assert!(error_of(port, &payload("bad-nan.json")).contains("total_charges"));
    assert!(error_of(port, &payload("bad-empty-batch.json")).contains("empty"));
    assert!(error_of(port, &payload("bad-not-object.json")).contains("object"));
    assert!(error_of(port, &payload("bad-invalid.json")).contains("not valid JSON"));
    assert!(error_of(port, b"").contains("empty request body"));
    let row: Value = serde_json::from_slice(&payload("one.json")).unwrap();
    let too_many = json!({"instances": vec![row.clone(); 10_001]}).to_string();
    assert!(error_of(port, too_many.as_bytes()).contains("10000"));
    let max = json!({"instances": vec![row; 10_000]}).to_string();
    let (status, body) = invoke(port, max.as_bytes());
    assert_eq!((status, body["predictions"].as_array().unwrap().len()), (200, 10_000));
    let huge = vec![b' '; 6 * 1024 * 1024 + 10];
    assert!(error_of(port, &huge).contains("6 MB"));

    // wrong route / method
    assert_eq!(post(port, "/nope", b"{}").status, 404);
    assert_eq!(http("GET", port, INVOKE, b"").status, 405);

    // it is still serving after all that
    assert_eq!(invoke(port, &payload("one.json")).0, 200);

    // one EMF line per prediction on stdout
    let stdout = p.stdout();
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 5, "one per successful prediction (one, proxy, batch, 10k batch, one):\n{stdout}");
    let first = &emf[0];
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "mlambda-test");
    assert_eq!(first["ModelVersion"], "v-test");
    assert!(first["InferenceLatencyMs"].as_f64().unwrap() >= 0.0);
    assert!((first["PredictionProbability"].as_f64().unwrap() - p0).abs() < 1e-12);

    p.sigterm();
    let status = p.wait_exit(Duration::from_secs(10)).expect("bootstrap did not stop on SIGTERM");
    assert!(status.success(), "exit {status}: {}", p.stderr());
}

#[test]
fn init_errors_name_the_problem_and_exit_nonzero() {
    // MODEL_FEATURES with the wrong count
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", churn_model())
        .env("MODEL_FEATURES", "a,b,c")
        .env("MLAMBDA_LISTEN", format!("127.0.0.1:{}", free_port()));
    let mut p = Proc::spawn(cmd, "bootstrap");
    let status = p.wait_exit(Duration::from_secs(30)).expect("bootstrap kept running with a bad config");
    assert!(!status.success());
    let err = p.stderr();
    assert!(err.contains("MODEL_FEATURES lists 3 features") && err.contains("takes 7 inputs"), "{err}");

    // a file that is not a model
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", &junk).env("MODEL_FEATURES", FEATURES);
    let mut p = Proc::spawn(cmd, "bootstrap");
    assert!(!p.wait_exit(Duration::from_secs(30)).expect("still running").success());
    assert!(p.stderr().contains("junk.onnx"), "{}", p.stderr());

    // a sha256 that does not match
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", churn_model()).env("MODEL_FEATURES", FEATURES).env("MODEL_SHA256", "0".repeat(64));
    let mut p = Proc::spawn(cmd, "bootstrap");
    assert!(!p.wait_exit(Duration::from_secs(30)).expect("still running").success());
    assert!(p.stderr().contains("refusing to serve"), "{}", p.stderr());
}
