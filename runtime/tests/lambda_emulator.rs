//! `bootstrap` under cargo-lambda's Runtime API emulator: the real Lambda protocol, end to end.
//!
//! Needs `cargo-lambda` (env `CARGO_LAMBDA`, else PATH); the test fails, not skips, without it.
mod common;

use std::time::Duration;

use common::*;

fn function(port: u16, model: &std::path::Path) -> Proc {
    lambda_function(bootstrap(), port, model)
}

#[test]
fn serves_invocations_through_the_runtime_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _emu = emulator(port, dir.path());
    let mut f = function(port, &churn_model());
    let reference = reference();

    let resp = post(port, INVOKE, &payload("one.json"));
    assert_eq!(resp.status, 200, "{}\n{}", String::from_utf8_lossy(&resp.body), f.stderr());
    let (status, body) = resp.envelope();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model_version"], "v-lambda");
    assert!(
        (body["probability"].as_f64().unwrap() - reference["expected"][0]["probability"].as_f64().unwrap()).abs()
            < 1e-5
    );

    let (status, body) = post(port, INVOKE, &payload("proxy.json")).envelope();
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(port, INVOKE, &payload("batch.json")).envelope();
    assert_eq!((status, body["predictions"].as_array().map(Vec::len)), (200, Some(5)), "{body}");
    let (status, body) = post(port, INVOKE, &payload("warmup.json")).envelope();
    assert_eq!((status, body), (200, serde_json::json!({"status": "warm"})));
    let (status, body) = post(port, INVOKE, &payload("bad-missing.json")).envelope();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("num_products"));
    let (status, _) = post(port, INVOKE, &payload("bad-nested.json")).envelope();
    assert_eq!(status, 400);
    // still alive and answering
    assert_eq!(post(port, INVOKE, &payload("one.json")).envelope().0, 200);
    assert!(f.child.try_wait().unwrap().is_none(), "function exited: {}", f.stderr());
    assert!(f.stdout().contains("\"InferenceLatencyMs\""), "no EMF line: {}", f.stdout());
    // the prediction log carries Lambda's request id and the function version (stdout comes through a
    // pipe and a drain thread: give it a moment)
    std::thread::sleep(std::time::Duration::from_millis(300));
    let stdout = f.stdout();
    let log: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with("{\"mlambda\":\"prediction\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(log.len(), 1 + 1 + 5 + 1, "one line per row answered:\n{stdout}");
    assert!(log.iter().all(|l| l["function_version"] == "1" && l["model_version"] == "v-lambda"), "{stdout}");
    assert!(log[0]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{stdout}");
    assert_ne!(log[0]["request_id"], log[1]["request_id"]);
    // the two refusals: counted in EMF and logged under Lambda's request id, with the shared line type
    let errors: Vec<_> = stdout
        .lines()
        .filter_map(|l| match mlambda_runtime::logline::parse(l) {
            Ok(mlambda_runtime::logline::Line::Error(e)) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 2, "{stdout}");
    assert!(errors.iter().all(|e| e.status == 400 && e.function_version == "1" && !e.request_id.is_empty()));
    assert_eq!(stdout.matches(r#""ClientErrors":1"#).count(), 2, "{stdout}");
}

#[test]
fn a_bad_model_fails_init_through_the_init_error_call() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let emu = emulator(port, dir.path());
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    let mut f = function(port, &junk);
    let status = f.wait_exit(Duration::from_secs(30)).expect("bootstrap kept running with a broken model");
    assert!(!status.success());
    let err = f.stderr();
    assert!(err.contains("junk.onnx"), "{err}");
    // the Runtime API accepted the /init/error report (2xx), so Lambda sees a failed INIT
    let line = err
        .lines()
        .find(|l| l.contains("reported the init error"))
        .unwrap_or_else(|| panic!("no init error report in:\n{err}\nemulator:\n{}\n{}", emu.stdout(), emu.stderr()));
    assert!(line.contains("http 2"), "{line}");
}
