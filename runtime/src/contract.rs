//! The request/response contract, as pure functions: events in, rows or a 400 out; outputs in, JSON out.
//!
//! Requests (the reference recipe's contract):
//! * an API Gateway proxy event whose `body` is a JSON string (or an object), or a direct JSON object;
//! * the object holds the named features (`MODEL_FEATURES`), or `{"instances": [{...}, ...]}` for a batch
//!   (at most [`MAX_BATCH`] rows, run as one tensor), or `{"_warmup": true}`.
//!
//! Decisions: booleans are accepted as 1/0 (`has_tech_support: true` is 1); unknown extra fields are
//! ignored; numbers must be finite and fit float32; strings (even numeric ones), null, arrays and objects
//! are refused naming the field. Python's `NaN`/`Infinity` literals, which are not JSON, are refused
//! naming the field too. Payloads over [`MAX_BODY_BYTES`] are refused.
use serde_json::{json, Map, Value};

use crate::model::{Output, Task};

/// Rows accepted in one `instances` batch.
pub const MAX_BATCH: usize = 10_000;
/// Lambda's synchronous payload limit; bigger bodies are refused before parsing.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A client mistake, answered with statusCode 400 and `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl BadRequest {
    fn new(msg: impl Into<String>) -> BadRequest {
        BadRequest(msg.into())
    }
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Warmup,
    /// One row, features in `MODEL_FEATURES` order.
    Single(Vec<f32>),
    /// `n` rows, row-major.
    Batch {
        rows: Vec<f32>,
        n: usize,
    },
}

/// Python's `json.dumps` writes NaN/Infinity/-Infinity, which are not JSON. They are rewritten into
/// strings with this prefix (a private-use character no client sends) so the error can name the field.
const NON_FINITE_MARK: &str = "\u{E000}non-finite:";
const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// Parses raw bytes (a Lambda payload or an HTTP body) into JSON.
pub fn parse_json(bytes: &[u8]) -> Result<Value, BadRequest> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BadRequest::new(format!("request body is {} bytes; the limit is 6 MB", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| BadRequest::new("request body is not valid UTF-8"))?;
    if text.trim().is_empty() {
        return Err(BadRequest::new("empty request body: send a JSON object of features"));
    }
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            // retry with NaN/Infinity quoted as markers; only if that parses was the literal the problem
            let quoted = quote_non_finite(text);
            match quoted.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => Ok(v),
                _ => Err(BadRequest::new(format!("request body is not valid JSON: {e}"))),
            }
        }
    }
}

/// Rewrites bare NaN/Infinity/-Infinity tokens (outside strings) into marker strings; None if there are none.
fn quote_non_finite(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(lit) = NON_FINITE.iter().find(|lit| rest.starts_with(*lit)) {
            out.push('"');
            out.push_str(NON_FINITE_MARK);
            out.push_str(lit);
            out.push('"');
            rest = &rest[lit.len()..];
            changed = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

/// Unwraps an API Gateway proxy event to the JSON object of features it carries.
pub fn unwrap_event(event: Value) -> Result<Map<String, Value>, BadRequest> {
    let Value::Object(mut obj) = event else {
        return Err(BadRequest::new(format!("request must be a JSON object of features, got {}", kind(&event))));
    };
    let body = match obj.remove("body") {
        None => return Ok(obj),
        Some(Value::String(s)) => {
            if obj.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                return Err(BadRequest::new(
                    "base64-encoded bodies are not supported: send Content-Type: application/json",
                ));
            }
            parse_json(s.as_bytes())?
        }
        Some(Value::Null) => return Err(BadRequest::new("empty request body: send a JSON object of features")),
        Some(other) => other,
    };
    match body {
        Value::Object(o) => Ok(o),
        other => Err(BadRequest::new(format!("request body must be a JSON object of features, got {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One feature value as float32, or why not.
fn number(name: &str, v: Option<&Value>) -> Result<f32, String> {
    let v = v.ok_or_else(|| format!("missing feature {name:?}"))?;
    let x = match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("feature {name:?} is not a representable number"))?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) if s.starts_with(NON_FINITE_MARK) => {
            return Err(format!("feature {name:?} is {}; send a finite number", &s[NON_FINITE_MARK.len()..]));
        }
        other => return Err(format!("feature {name:?} must be a number, got {}", kind(other))),
    };
    let f = x as f32;
    if !f.is_finite() {
        return Err(format!("feature {name:?} is {x}, outside the float32 range"));
    }
    Ok(f)
}

/// Appends one row in `features` order, listing every missing feature at once.
fn push_row(obj: &Map<String, Value>, features: &[String], out: &mut Vec<f32>) -> Result<(), String> {
    let missing: Vec<&str> = features.iter().filter(|f| !obj.contains_key(*f)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(format!("missing required features: {}", missing.join(", ")));
    }
    for f in features {
        out.push(number(f, obj.get(f))?);
    }
    Ok(())
}

/// Turns an already-parsed event into a request.
pub fn parse_request(event: Value, features: &[String]) -> Result<Request, BadRequest> {
    let obj = unwrap_event(event)?;
    if obj.get("_warmup") == Some(&Value::Bool(true)) {
        return Ok(Request::Warmup);
    }
    if let Some(instances) = obj.get("instances") {
        let Value::Array(items) = instances else {
            return Err(BadRequest::new(format!("\"instances\" must be an array of objects, got {}", kind(instances))));
        };
        if items.is_empty() {
            return Err(BadRequest::new("\"instances\" is empty: send at least one row"));
        }
        if items.len() > MAX_BATCH {
            return Err(BadRequest::new(format!(
                "\"instances\" has {} rows; the limit is {MAX_BATCH} per request",
                items.len()
            )));
        }
        let mut rows = Vec::with_capacity(items.len() * features.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(o) = item else {
                return Err(BadRequest::new(format!("instance {i} must be an object of features, got {}", kind(item))));
            };
            push_row(o, features, &mut rows).map_err(|e| BadRequest::new(format!("instance {i}: {e}")))?;
        }
        return Ok(Request::Batch { rows, n: items.len() });
    }
    let mut row = Vec::with_capacity(features.len());
    push_row(&obj, features, &mut row).map_err(BadRequest)?;
    Ok(Request::Single(row))
}

/// The proxy-integration envelope around a JSON body.
pub fn envelope(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": body.to_string(),
    })
}

pub fn error_response(status: u16, message: &str) -> Value {
    envelope(status, &json!({ "error": message }))
}

pub fn warm_response() -> Value {
    envelope(200, &json!({"status": "warm"}))
}

/// One prediction as JSON: classifiers give an integer label and the unrounded P(class 1).
fn prediction_json(out: &Output, task: Task) -> Value {
    match (task, out.probability) {
        (Task::Classifier, Some(p)) => json!({"prediction": out.prediction as i64, "probability": p}),
        _ => json!({"prediction": out.prediction}),
    }
}

pub fn single_response(out: &Output, task: Task, version: &str) -> Value {
    let mut body = prediction_json(out, task);
    if let Value::Object(o) = &mut body {
        o.insert("model_version".into(), Value::String(version.into()));
    }
    envelope(200, &body)
}

pub fn batch_response(outs: &[Output], task: Task, version: &str) -> Value {
    let predictions: Vec<Value> = outs.iter().map(|o| prediction_json(o, task)).collect();
    envelope(200, &json!({"predictions": predictions, "model_version": version}))
}

/// One CloudWatch embedded-metric-format line. For a batch, `PredictionProbability` is the batch mean
/// (one number per invocation keeps alarms on its average meaningful); regressors emit latency only.
pub fn emf_line(namespace: &str, version: &str, latency_ms: f64, outs: &[Output], timestamp_ms: u64) -> String {
    let probs: Vec<f64> = outs.iter().filter_map(|o| o.probability).collect();
    let mut metrics = vec![json!({"Name": "InferenceLatencyMs", "Unit": "Milliseconds"})];
    let mut line = json!({
        "ModelVersion": version,
        "InferenceLatencyMs": latency_ms,
        "Rows": outs.len(),
    });
    if !probs.is_empty() {
        metrics.push(json!({"Name": "PredictionProbability", "Unit": "None"}));
        line["PredictionProbability"] = json!(probs.iter().sum::<f64>() / probs.len() as f64);
    }
    line["_aws"] = json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [["ModelVersion"]],
            "Metrics": metrics,
        }],
    });
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats() -> Vec<String> {
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    }

    fn parse(text: &str) -> Result<Request, BadRequest> {
        parse_request(parse_json(text.as_bytes())?, &feats())
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().0
    }

    #[test]
    fn direct_object_in_feature_order() {
        assert_eq!(parse(r#"{"c": 3, "a": 1.5, "b": -2}"#), Ok(Request::Single(vec![1.5, -2.0, 3.0])));
    }

    #[test]
    fn proxy_event_with_string_body() {
        let ev = json!({"httpMethod": "POST", "body": "{\"a\":1,\"b\":2,\"c\":3}", "isBase64Encoded": false});
        assert_eq!(parse(&ev.to_string()), Ok(Request::Single(vec![1.0, 2.0, 3.0])));
    }

    #[test]
    fn proxy_event_with_object_body() {
        assert_eq!(parse(r#"{"body": {"a":1,"b":2,"c":3}}"#), Ok(Request::Single(vec![1.0, 2.0, 3.0])));
    }

    #[test]
    fn booleans_are_one_and_zero_and_extras_ignored() {
        assert_eq!(parse(r#"{"a": true, "b": false, "c": 0, "zzz": "x"}"#), Ok(Request::Single(vec![1.0, 0.0, 0.0])));
    }

    #[test]
    fn lists_every_missing_feature() {
        assert_eq!(err(r#"{"b": 1}"#), "missing required features: a, c");
    }

    #[test]
    fn wrong_types_name_the_field() {
        assert_eq!(err(r#"{"a": "1", "b": 2, "c": 3}"#), "feature \"a\" must be a number, got a string");
        assert_eq!(err(r#"{"a": 1, "b": null, "c": 3}"#), "feature \"b\" must be a number, got null");
        assert_eq!(err(r#"{"a": 1, "b": 2, "c": {"x": 1}}"#), "feature \"c\" must be a number, got an object");
        assert_eq!(err(r#"{"a": 1, "b": [2], "c": 3}"#), "feature \"b\" must be a number, got an array");
    }

    #[test]
    fn non_finite_literals_name_the_field() {
        assert_eq!(err(r#"{"a": NaN, "b": 2, "c": 3}"#), "feature \"a\" is NaN; send a finite number");
        assert_eq!(err(r#"{"a": 1, "b": Infinity, "c": 3}"#), "feature \"b\" is Infinity; send a finite number");
        assert_eq!(err(r#"{"a": 1, "b": 2, "c": -Infinity}"#), "feature \"c\" is -Infinity; send a finite number");
        // inside a string it is just a string
        assert_eq!(err(r#"{"a": "NaN", "b": 2, "c": 3}"#), "feature \"a\" must be a number, got a string");
        // and inside an API Gateway body string too
        let ev = json!({"body": "{\"a\": NaN, \"b\": 1, \"c\": 1}"});
        assert_eq!(err(&ev.to_string()), "feature \"a\" is NaN; send a finite number");
    }

    #[test]
    fn out_of_float32_range_is_refused() {
        assert!(err(r#"{"a": 1e300, "b": 2, "c": 3}"#).contains("outside the float32 range"));
    }

    #[test]
    fn empty_invalid_and_non_object_bodies() {
        assert!(err("").starts_with("empty request body"));
        assert!(err("  \n").starts_with("empty request body"));
        assert!(err("{\"a\": ").starts_with("request body is not valid JSON"));
        assert!(err("[1,2,3]").contains("got an array"));
        assert!(err("42").contains("got a number"));
        assert!(err(r#"{"body": ""}"#).starts_with("empty request body"));
        assert!(err(r#"{"body": null}"#).starts_with("empty request body"));
        assert!(err(r#"{"body": "[1]"}"#).contains("got an array"));
        assert!(err(r#"{"body": "{", "x": 1}"#).starts_with("request body is not valid JSON"));
        assert!(err(r#"{"body": "e30=", "isBase64Encoded": true}"#).contains("base64"));
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(parse_json(&big).unwrap_err().0.contains("6 MB"));
    }

    #[test]
    fn warmup_skips_features() {
        assert_eq!(parse(r#"{"_warmup": true}"#), Ok(Request::Warmup));
        assert_eq!(parse(&json!({"body": "{\"_warmup\": true}"}).to_string()), Ok(Request::Warmup));
        // only `true` warms; anything else is an ordinary (here incomplete) request
        assert!(err(r#"{"_warmup": 1}"#).starts_with("missing"));
    }

    #[test]
    fn batches() {
        let r = parse(r#"{"instances": [{"a":1,"b":2,"c":3},{"a":4,"b":5,"c":6}]}"#);
        assert_eq!(r, Ok(Request::Batch { rows: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], n: 2 }));
        assert!(err(r#"{"instances": []}"#).contains("empty"));
        assert!(err(r#"{"instances": {}}"#).contains("must be an array"));
        assert_eq!(
            err(r#"{"instances": [{"a":1,"b":2,"c":3}, 7]}"#),
            "instance 1 must be an object of features, got a number"
        );
        assert_eq!(
            err(r#"{"instances": [{"a":1,"b":2,"c":3}, {"a":1}]}"#),
            "instance 1: missing required features: b, c"
        );
        assert_eq!(
            err(r#"{"instances": [{"a":1,"b":"x","c":3}]}"#),
            "instance 0: feature \"b\" must be a number, got a string"
        );
        let too_many = json!({"instances": vec![json!({"a":1,"b":2,"c":3}); MAX_BATCH + 1]});
        assert!(err(&too_many.to_string()).contains("limit is 10000"));
        let max = json!({"instances": vec![json!({"a":1,"b":2,"c":3}); MAX_BATCH]});
        assert!(matches!(parse(&max.to_string()), Ok(Request::Batch { n: MAX_BATCH, .. })));
    }

    fn body(envelope: &Value) -> Value {
        serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn responses_keep_full_precision() {
        let out = Output { prediction: 1.0, probability: Some(0.723_456_789_012_345_6) };
        let r = single_response(&out, Task::Classifier, "v3");
        assert_eq!(r["statusCode"], 200);
        assert_eq!(r["headers"]["Content-Type"], "application/json");
        assert_eq!(body(&r), json!({"prediction": 1, "probability": 0.723_456_789_012_345_6, "model_version": "v3"}));
        let reg = single_response(&Output { prediction: 12.5, probability: None }, Task::Regressor, "v");
        assert_eq!(body(&reg), json!({"prediction": 12.5, "model_version": "v"}));
        let b = batch_response(&[out, Output { prediction: 0.0, probability: Some(0.25) }], Task::Classifier, "v3");
        assert_eq!(
            body(&b),
            json!({"predictions": [{"prediction": 1, "probability": 0.723_456_789_012_345_6},
                                   {"prediction": 0, "probability": 0.25}], "model_version": "v3"})
        );
        assert_eq!(body(&warm_response()), json!({"status": "warm"}));
        let e = error_response(400, "nope");
        assert_eq!((e["statusCode"].as_u64(), body(&e)), (Some(400), json!({"error": "nope"})));
    }

    #[test]
    fn emf_line_is_valid_embedded_metric_format() {
        let outs =
            [Output { prediction: 1.0, probability: Some(0.8) }, Output { prediction: 0.0, probability: Some(0.2) }];
        let line: Value = serde_json::from_str(&emf_line("mlambda", "v7", 0.25, &outs, 1_700_000_000_000)).unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "mlambda");
        assert_eq!(cw["Dimensions"], json!([["ModelVersion"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "InferenceLatencyMs", "Unit": "Milliseconds"}, {"Name": "PredictionProbability", "Unit": "None"}])
        );
        assert_eq!(line["ModelVersion"], "v7");
        assert_eq!(line["InferenceLatencyMs"], 0.25);
        assert!((line["PredictionProbability"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        // regressors: latency only
        let reg: Value =
            serde_json::from_str(&emf_line("ns", "v", 1.0, &[Output { prediction: 3.0, probability: None }], 0))
                .unwrap();
        assert_eq!(reg["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(), 1);
        assert!(reg.get("PredictionProbability").is_none());
    }
}
