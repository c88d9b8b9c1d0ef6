//! Benchmarks the function body's whole answer in process (used by scripts/bench-handler): one good row through
//! `App::handle_request`, which parses it, runs the model, builds the envelope and writes the EMF line and the
//! prediction log line to stdout, and the same for a request the model refuses (a 400).
//!
//! `bench_handler MODEL.onnx FEATURES` prints p50/p99 in microseconds as JSON on stderr; run it with stdout sent
//! to /dev/null, so the figures include the write but not a terminal.
use std::time::Instant;

use mlambda_runtime::config::Config;
use mlambda_runtime::handler::App;
use mlambda_runtime::model::Model;
use serde_json::{json, Value};

fn pcts(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let p = |q: f64| xs[((xs.len() as f64 - 1.0) * q) as usize];
    (p(0.5), p(0.99))
}

/// p50 and p99 of `n` answers to `event`, after a warm-up of 1,000.
fn time(app: &App, event: &Value, n: usize) -> (f64, f64) {
    for _ in 0..1_000 {
        std::hint::black_box(app.handle_request(event.clone(), "bench"));
    }
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let e = event.clone();
        let t = Instant::now();
        std::hint::black_box(app.handle_request(e, "bench"));
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    pcts(lat)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, features] = args.as_slice() else {
        return Err("usage: bench_handler MODEL.onnx FEATURES (comma-separated)".into());
    };
    let names: Vec<&str> = features.split(',').collect();
    let cfg = Config::from_lookup(|k| match k {
        "MODEL_PATH" => Some(path.clone()),
        "MODEL_FEATURES" => Some(features.clone()),
        "MODEL_VERSION" => Some("v1".into()),
        "MODEL_ID_FIELD" => Some("customer_id".into()),
        "AWS_LAMBDA_FUNCTION_NAME" => Some("churn".into()),
        "AWS_LAMBDA_FUNCTION_VERSION" => Some("1".into()),
        _ => None,
    })?;
    let app = App::new(Model::from_path(path.as_ref())?, &cfg)?;
    let values = [12.0, 70.35, 844.2, 2.0, 1.0, 1.0, 2.0];
    let mut good: serde_json::Map<String, Value> =
        names.iter().zip(values.iter().cycle()).map(|(n, v)| (n.to_string(), json!(v))).collect();
    good.insert("customer_id".into(), json!("C-1"));
    let bad = json!({"customer_id": "C-2"});
    let (g50, g99) = time(&app, &Value::Object(good), 20_000);
    let (b50, b99) = time(&app, &bad, 20_000);
    eprintln!(
        "{{\"good_p50_us\": {g50:.2}, \"good_p99_us\": {g99:.2}, \"bad_p50_us\": {b50:.2}, \"bad_p99_us\": {b99:.2}}}"
    );
    Ok(())
}
