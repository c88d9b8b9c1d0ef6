//! Every tabular fixture (`tests/fixtures/tabular/manifest.json`) through the real request path: each row as
//! its own JSON request and all rows as one `instances` batch, against onnxruntime's outputs on the same
//! `.onnx` file (and scikit-learn's, where the manifest says so): zero label flips, probabilities and values
//! within the fixture's tolerance.
use std::path::{Path, PathBuf};

use mlambda_runtime::config::Config;
use mlambda_runtime::handler::App;
use mlambda_runtime::model::{Kind, Labels, Model};
use serde_json::{json, Value};

/// The fixture sets, each a directory with its own manifest: tables (`examples/fixtures_tabular.py`) and
/// text (`examples/fixtures_text.py`) and the families beyond tables (`examples/fixtures_families.py`).
const FAMILIES: [&str; 3] = ["tabular", "text", "families"];

fn dir(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(family)
}

/// Every fixture of every family, with its family.
fn fixtures() -> Vec<(&'static str, Value)> {
    let mut all = Vec::new();
    for family in FAMILIES {
        let manifest = read_json(family, "manifest.json");
        let list = manifest["fixtures"].as_array().expect("manifest.json has a fixtures list");
        assert!(!list.is_empty(), "{family}: no fixtures");
        all.extend(list.iter().map(|f| (family, f.clone())));
    }
    all
}

fn read_json(family: &str, name: &str) -> Value {
    let path = dir(family).join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn app(family: &str, fixture: &Value) -> App {
    let model_path = dir(family).join(fixture["model"].as_str().unwrap());
    let features = fixture["features"].as_array().map(|f| f.iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>());
    let name = fixture["name"].as_str().unwrap();
    let model = Model::from_path(&model_path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cfg = Config::from_lookup(|k| match k {
        "MODEL_PATH" => Some(model_path.display().to_string()),
        "MODEL_FEATURES" => features.as_ref().map(|f| f.join(",")),
        "MODEL_VERSION" => Some("fixture".into()),
        "LOG_PREDICTIONS" => Some("none".into()),
        _ => None,
    })
    .unwrap();
    App::new(model, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The answer body of an envelope that must be a 200.
fn ok_body(envelope: &Value, what: &str) -> Value {
    let body: Value = serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["statusCode"], 200, "{what}: {body}");
    body
}

#[derive(Default)]
struct Diff {
    flips: usize,
    max: f64,
    worst: usize,
}

impl Diff {
    fn number(&mut self, row: usize, got: &Value, want: &Value) {
        let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap_or(f64::NAN));
        let d = (g - w).abs();
        if d.is_nan() || d > self.max {
            self.max = if d.is_nan() { f64::INFINITY } else { d };
            self.worst = row;
        }
    }
}

/// One answer against a reference output (`ort` or `sklearn` of the fixture file) for row `i`.
fn compare(diff: &mut Diff, i: usize, answer: &Value, reference: &Value, labels: &[Value]) {
    if let Some(values) = reference.get("value") {
        diff.number(i, &answer["prediction"], &values[i]);
        return;
    }
    if answer["prediction"] != reference["label"][i] {
        diff.flips += 1;
    }
    if let Some(scores) = reference.get("score") {
        // an anomaly detector: -1/1 and its score, no probabilities
        diff.number(i, &answer["score"], &scores[i]);
        assert!(answer.get("probabilities").is_none(), "{answer}");
        return;
    }
    let probs = &reference["probabilities"][i];
    for (j, label) in labels.iter().enumerate() {
        let key = match label {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        diff.number(i, &answer["probabilities"][&key], &probs[j]);
    }
    if labels.len() == 2 {
        diff.number(i, &answer["probability"], &probs[1]);
    } else {
        assert!(answer.get("probability").is_none(), "multiclass answers have no `probability`: {answer}");
    }
}

#[test]
fn every_tabular_fixture_matches_onnxruntime_through_the_request_path() {
    let mut failures = Vec::new();
    for (family, fixture) in fixtures() {
        let fixture = &fixture;
        let name = fixture["name"].as_str().unwrap();
        let app = app(family, fixture);
        let data = read_json(family, fixture["rows"].as_str().unwrap());
        let rows = data["rows"].as_array().unwrap();
        let tolerance = fixture["tolerance"].as_f64().unwrap();
        let labels: Vec<Value> = fixture["labels"].as_array().cloned().unwrap_or_default();
        match (fixture["task"].as_str().unwrap(), app.model().kind()) {
            ("classifier", Kind::Classifier { labels: got }) => {
                let got: Vec<Value> = match got {
                    Labels::Int(v) => v.iter().map(|l| json!(l)).collect(),
                    Labels::Str(v) => v.iter().map(|l| json!(l)).collect(),
                };
                assert_eq!(got, labels, "{name}: labels");
            }
            ("regressor", Kind::Regressor) | ("anomaly", Kind::Anomaly) => {}
            (task, kind) => panic!("{name}: manifest says {task}, model is {kind:?}"),
        }
        let batch = ok_body(&app.handle(json!({ "instances": rows })), name);
        let batch = batch["predictions"].as_array().unwrap();
        assert_eq!(batch.len(), rows.len(), "{name}");
        let mut references = vec![("onnxruntime", &data["ort"])];
        if fixture["compare_sklearn"] == true {
            references.push(("sklearn", &data["sklearn"]));
        }
        for (who, reference) in references {
            let (mut one, mut all) = (Diff::default(), Diff::default());
            for (i, row) in rows.iter().enumerate() {
                let answer = ok_body(&app.handle(row.clone()), &format!("{name} row {i}"));
                compare(&mut one, i, &answer, reference, &labels);
                compare(&mut all, i, &batch[i], reference, &labels);
            }
            for (how, d) in [("row by row", one), ("as one batch", all)] {
                println!("{name} vs {who} {how}: max |diff| {:.3e} (row {}), label flips {}", d.max, d.worst, d.flips);
                if d.max > tolerance || d.flips > 0 {
                    failures.push(format!(
                        "{name} vs {who} {how}: max diff {:e} at row {} (tolerance {tolerance:e}), {} flips",
                        d.max, d.worst, d.flips
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "accuracy failures:\n{}", failures.join("\n"));
}

#[test]
fn the_json_row_api_answers_like_the_request_path() {
    for (family, fixture) in fixtures() {
        let name = fixture["name"].as_str().unwrap();
        let model = Model::from_path(&dir(family).join(fixture["model"].as_str().unwrap())).unwrap();
        let features: Option<Vec<String>> =
            fixture["features"].as_array().map(|f| f.iter().map(|v| v.as_str().unwrap().to_string()).collect());
        let data = read_json(family, fixture["rows"].as_str().unwrap());
        let rows: Vec<serde_json::Map<String, Value>> =
            data["rows"].as_array().unwrap().iter().take(20).map(|r| r.as_object().unwrap().clone()).collect();
        let answers = model.predict_rows(&rows, features.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answers.len(), rows.len());
        for (i, a) in answers.iter().enumerate() {
            let got = serde_json::to_value(&a.prediction).unwrap();
            match data["ort"].get("value") {
                Some(values) => assert!((got.as_f64().unwrap() - values[i].as_f64().unwrap()).abs() < 1e-4, "{name}"),
                None => assert_eq!(got, data["ort"]["label"][i], "{name} row {i}"),
            }
        }
    }
}

/// A text field's bad inputs are each a 400 naming the field; long and emoji-only texts are served; the app
/// answers the next request after every one of them.
#[test]
fn a_text_field_refuses_what_is_not_text_and_serves_any_text() {
    let fixture = fixtures().into_iter().find(|(_, f)| f["name"] == "text_tfidf_lr").expect("text_tfidf_lr").1;
    let app = app("text", &fixture);
    let status = |body: Value| {
        let env = app.handle(body);
        let answer: Value = serde_json::from_str(env["body"].as_str().unwrap()).unwrap();
        (env["statusCode"].as_u64().unwrap(), answer)
    };
    let too_long = "a".repeat(mlambda_runtime::rows::MAX_TEXT_BYTES + 1);
    for (body, says) in [
        (json!({"text": 42}), "feature \"text\" must be a string, got a number"),
        (json!({"text": null}), "feature \"text\" must be a string, got null"),
        (json!({"subject": "refund"}), "missing required features: text"),
        (json!({"text": too_long}), "feature \"text\" is 101 KB of text, over the 100 KB a string field takes"),
    ] {
        let (code, answer) = status(body);
        assert_eq!(code, 400, "{answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.contains(says)), "{answer}");
        assert_eq!(status(json!({"text": "refund please"})).0, 200, "served after a refusal");
    }
    let fifty_kb = "refund my order please ".repeat(50 * 1024 / 23);
    for text in [fifty_kb.as_str(), "🎉😍👍", "", "日本語のテキスト"] {
        let (code, answer) = status(json!({ "text": text }));
        assert_eq!(code, 200, "{answer}");
        assert!(answer["prediction"].is_string() && answer["probabilities"].is_object(), "{answer}");
    }
}

/// A batch split across threads answers every row exactly as one thread does, in order, for every family.
#[test]
fn a_batch_split_across_threads_answers_as_one_thread_does() {
    for (family, fixture) in fixtures() {
        let name = fixture["name"].as_str().unwrap();
        let path = dir(family).join(fixture["model"].as_str().unwrap());
        let features: Option<Vec<String>> =
            fixture["features"].as_array().map(|f| f.iter().map(|v| v.as_str().unwrap().to_string()).collect());
        let data = read_json(family, fixture["rows"].as_str().unwrap());
        let rows: Vec<serde_json::Map<String, Value>> = data["rows"]
            .as_array()
            .unwrap()
            .iter()
            .cycle()
            .take(1000)
            .map(|r| r.as_object().unwrap().clone())
            .collect();
        let one = Model::from_path(&path).unwrap().with_threads(1);
        let four = Model::from_path(&path).unwrap().with_threads(4);
        let a = one.predict_rows(&rows, features.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = four.predict_rows(&rows, features.as_deref()).unwrap_or_else(|e| panic!("{name}: {e}"));
        // labels exactly; numbers within float32 rounding, since an optimized MatMul (MLPs) blocks a batch of
        // 500 rows differently from one of 1000
        assert_eq!(a.len(), b.len(), "{name}");
        let mut worst = 0f64;
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (serde_json::to_value(x).unwrap(), serde_json::to_value(y).unwrap());
            match (&x["prediction"], &y["prediction"]) {
                (Value::Number(p), Value::Number(q)) if fixture["task"] == "regressor" => {
                    worst = worst.max((p.as_f64().unwrap() - q.as_f64().unwrap()).abs())
                }
                (p, q) => assert_eq!(p, q, "{name}"),
            }
            let numbers = |v: &Value| -> Vec<f64> {
                let mut out: Vec<f64> = v["probabilities"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                out.extend(v["score"].as_f64());
                out
            };
            for (p, q) in numbers(&x).iter().zip(numbers(&y)) {
                worst = worst.max((p - q).abs());
            }
        }
        assert!(worst <= 1e-5, "{name}: threads moved an answer by {worst:e}, over the fixtures' tolerance");
    }
}
