//! The real `bootstrap` in local mode: good and bad payloads over HTTP, EMF counts and log lines on stdout for
//! every answer (a warmup aside), SIGTERM exits cleanly.
mod common;

use std::time::Duration;

use common::*;
use mlambda_runtime::logline::{self, Line};
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

    // one EMF line per answer, failures included, on stdout (which arrives through a pipe and a drain thread,
    // after the 10,000 prediction log lines of the big batch: wait for the last one): 5 answered, 11 refused
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while p.stdout().matches("\"_aws\"").count() < 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stdout = p.stdout();
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 16, "one per answer but the warmup (5 answered, 11 refused):\n{stdout}");
    let first = &emf[0];
    assert_eq!(first["_aws"]["CloudWatchMetrics"][0]["Namespace"], "mlambda-test");
    assert_eq!(first["ModelVersion"], "v-test");
    assert!(first["InferenceLatencyMs"].as_f64().unwrap() >= 0.0);
    assert!((first["PredictionProbability"].as_f64().unwrap() - p0).abs() < 1e-12);
    let counts = |e: &Value| {
        let get = |k: &str| e[k].as_u64().unwrap_or_else(|| panic!("no {k}: {e}"));
        (get(logline::ROWS), get(logline::CLIENT_ERRORS), get(logline::MODEL_ERRORS))
    };
    // one, proxy, batch, then (the warmup left nothing) bad-missing
    let order: Vec<_> = emf[..4].iter().map(counts).collect();
    assert_eq!(order, [(1, 0, 0), (1, 0, 0), (5, 0, 0), (0, 1, 0)], "{stdout}");
    assert_eq!(emf[3][logline::ERROR_TYPE], "InvalidInput");
    assert!(emf[3].get("InferenceLatencyMs").is_none(), "{}", emf[3]);
    let sum = emf.iter().map(counts).fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    assert_eq!(sum, (1 + 1 + 5 + 10_000 + 1, 11, 0));
    // one error line per refusal, read with the runtime's own type; the 6 MB refusal happens before the
    // handler reads the body, and is logged all the same
    let errors: Vec<_> = stdout
        .lines()
        .filter_map(|l| match logline::parse(l) {
            Ok(Line::Error(e)) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 11, "{stdout}");
    assert!(errors.iter().all(|e| e.status == 400 && e.error_type == "InvalidInput"), "{stdout}");
    assert_eq!((errors[0].reason.as_ref(), errors[0].model_version.as_deref()), (missing.as_str(), Some("v-test")));
    assert!(errors.iter().any(|e| e.reason == "request body is over the 6 MB limit"), "{stdout}");
    let ids: std::collections::HashSet<&str> = errors.iter().map(|e| e.request_id.as_ref()).collect();
    assert_eq!(ids.len(), 11, "each refusal has its own request id");
    let error_text: Vec<&str> = stdout.lines().filter(|l| l.starts_with("{\"mlambda\":\"error\"")).collect();
    assert!(!error_text.iter().any(|l| l.contains("70.5")), "feature values are never logged:\n{error_text:?}");

    p.sigterm();
    let status = p.wait_exit(Duration::from_secs(10)).expect("bootstrap did not stop on SIGTERM");
    assert!(status.success(), "exit {status}: {}", p.stderr());
}

/// Lines of a JSON-lines stdout that are prediction log lines.
fn log_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with("{\"mlambda\":\"prediction\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn named_inputs_multiclass_answers_and_the_prediction_log() {
    let port = free_port();
    let mut cmd = bootstrap();
    // no MODEL_FEATURES: the graph's input names are the fields
    cmd.env("MODEL_PATH", tabular("ct_mlp_multi_int.onnx"))
        .env("MODEL_VERSION", "v4")
        .env("MODEL_ID_FIELD", "customer_id")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "3")
        .env("MLAMBDA_LISTEN", format!("127.0.0.1:{port}"));
    let mut p = Proc::spawn(cmd, "bootstrap (local mode)");
    p.wait_port(port, Duration::from_secs(30));

    let row = json!({"tenure": 12.5, "charges": 70.25, "products": 2, "customer_id": "C-1001"});
    let (status, body) = invoke(port, row.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let label = body["prediction"].as_i64().expect("an integer label");
    assert!([2, 5, 8].contains(&label), "{body}");
    let probs = body["probabilities"].as_object().unwrap();
    assert_eq!(probs.keys().collect::<Vec<_>>(), ["2", "5", "8"]);
    assert!((probs.values().map(|p| p.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-5);
    assert!(body.get("probability").is_none(), "multiclass: no `probability`: {body}");

    let batch = json!({"instances": [row, {"tenure": 70, "charges": 20, "products": 5, "customer_id": 42}, {"tenure": 1, "charges": 110, "products": 1}]});
    let (status, body) = invoke(port, batch.to_string().as_bytes());
    assert_eq!((status, body["predictions"].as_array().unwrap().len()), (200, 3), "{body}");

    // the type each input needs, named
    let bad = json!({"tenure": 12.5, "charges": "high", "products": 2});
    assert_eq!(error_of(port, bad.to_string().as_bytes()), "feature \"charges\" must be a number, got a string");
    let bad = json!({"tenure": 12.5, "charges": 1, "products": 2.5});
    assert!(error_of(port, bad.to_string().as_bytes()).contains("\"products\" must be an integer"));
    let bad = json!({"tenure": null, "charges": 1, "products": 2});
    assert!(error_of(port, bad.to_string().as_bytes()).contains("\"tenure\" must be a number, got null"));

    // stdout arrives through a pipe and a drain thread: give it a moment
    std::thread::sleep(Duration::from_millis(300));
    let stdout = p.stdout();
    let log = log_lines(&stdout);
    assert_eq!(log.len(), 4, "one line per row answered (1 + 3):\n{stdout}");
    let first = &log[0];
    // keys in the agreed order (checked on the raw line: a parsed map may sort them)
    let raw = stdout.lines().find(|l| l.starts_with("{\"mlambda\":\"prediction\"")).unwrap();
    let keys = [
        "mlambda",
        "request_id",
        "function_version",
        "model_version",
        "id",
        "row",
        "rows",
        "prediction",
        "probabilities",
        "latency_ms",
    ];
    let at: Vec<usize> =
        keys.iter().map(|k| raw.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k}: {raw}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
    assert_eq!(first.as_object().unwrap().len(), keys.len(), "{raw}");
    assert_eq!((first["function_version"].as_str(), first["model_version"].as_str()), (Some("3"), Some("v4")));
    assert_eq!(
        (first["id"].as_str(), first["row"].as_u64(), first["rows"].as_u64()),
        (Some("C-1001"), Some(0), Some(1))
    );
    assert_eq!(first["prediction"], label);
    assert!(!stdout.contains("70.25"), "feature values are never logged:\n{stdout}");
    // a batch: one request id, rows numbered, the same latency, ids only where the row has one
    let rows = &log[1..];
    assert!(rows.iter().all(|l| l["request_id"] == rows[0]["request_id"] && l["latency_ms"] == rows[0]["latency_ms"]));
    assert_ne!(rows[0]["request_id"], first["request_id"]);
    assert_eq!(rows.iter().map(|l| l["row"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!((rows[1]["id"].as_u64(), rows[2].get("id")), (Some(42), None));
    // EMF: predicted-class counts and both dimension sets
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 5, "2 answered, 3 refused:\n{stdout}");
    assert_eq!(
        (emf[0]["Rows"].as_u64(), emf[1]["Rows"].as_u64(), emf[2]["ClientErrors"].as_u64()),
        (Some(1), Some(3), Some(1))
    );
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["ModelVersion"], ["FunctionName", "FunctionVersion"]])
    );
    assert_eq!((emf[0]["FunctionName"].as_str(), emf[0]["FunctionVersion"].as_str()), (Some("local"), Some("3")));
    assert_eq!(emf[0][format!("PredictedClass_{label}")], 1, "{}", emf[0]);

    p.sigterm();
    assert!(p.wait_exit(Duration::from_secs(10)).expect("bootstrap did not stop").success());

    // LOG_PREDICTIONS=none: answers and metrics, no log
    let port = free_port();
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", tabular("ct_mlp_multi_int.onnx"))
        .env("LOG_PREDICTIONS", "none")
        .env("MLAMBDA_LISTEN", format!("127.0.0.1:{port}"));
    let mut p = Proc::spawn(cmd, "bootstrap (local mode)");
    p.wait_port(port, Duration::from_secs(30));
    let (status, _) = invoke(port, br#"{"tenure": 1, "charges": 2, "products": 3}"#);
    assert_eq!(status, 200);
    // error lines are never sampled out: they are what the report counts when EMF is missing
    assert_eq!(error_of(port, br#"{"tenure": 1}"#), "missing required features: charges, products");
    std::thread::sleep(Duration::from_millis(200));
    let stdout = p.stdout();
    assert!(log_lines(&stdout).is_empty(), "{stdout}");
    assert_eq!(stdout.matches("\"_aws\"").count(), 2, "{stdout}");
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("{\"mlambda\":\"error\"")).collect();
    assert_eq!(errors.len(), 1, "{stdout}");
    assert!(
        errors[0].ends_with(
            r#""status":400,"error_type":"InvalidInput","reason":"missing required features: charges, products"}"#
        ),
        "{stdout}"
    );
}

#[test]
fn a_function_url_event_with_a_base64_body_is_answered_like_the_plain_body() {
    use base64::Engine as _;
    let port = free_port();
    let _p = start(port);
    let plain = payload("one.json");
    let (status, want) = invoke(port, &plain);
    assert_eq!(status, 200, "{want}");
    // what a Function URL hands over for `curl -d '{...}'`: a form content type, so the body arrives base64-encoded
    let event = |body: &[u8]| {
        json!({
            "version": "2.0",
            "rawPath": "/",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
            "requestContext": {"http": {"method": "POST", "path": "/"}},
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "isBase64Encoded": true,
        })
        .to_string()
    };
    assert_eq!(invoke(port, event(&plain).as_bytes()), (200, want));
    let e = error_of(port, event(b"tenure_months=1&monthly_charges=2").as_bytes());
    assert!(e.starts_with("request body is not valid JSON"), "{e}");
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

    // MODEL_FEATURES that disagree with a named-input graph
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", tabular("ct_mlp_multi_int.onnx")).env("MODEL_FEATURES", "charges,tenure,products");
    let mut p = Proc::spawn(cmd, "bootstrap");
    assert!(!p.wait_exit(Duration::from_secs(30)).expect("still running").success());
    assert!(p.stderr().contains("the model's inputs are tenure,charges,products"), "{}", p.stderr());

    // a sha256 that does not match
    let mut cmd = bootstrap();
    cmd.env("MODEL_PATH", churn_model()).env("MODEL_FEATURES", FEATURES).env("MODEL_SHA256", "0".repeat(64));
    let mut p = Proc::spawn(cmd, "bootstrap");
    assert!(!p.wait_exit(Duration::from_secs(30)).expect("still running").success());
    assert!(p.stderr().contains("refusing to serve"), "{}", p.stderr());
}
