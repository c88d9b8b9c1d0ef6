//! The request/response contract, as pure functions: events in, rows or a 400 out; outputs in, JSON out.
//!
//! Requests (the reference recipe's contract):
//! * an API Gateway proxy event whose `body` is a JSON string (or an object), or a direct JSON object;
//! * the object holds the named features (`MODEL_FEATURES`), or `{"instances": [{...}, ...]}` for a batch
//!   (at most [`MAX_BATCH`] rows, run as one tensor), or `{"_warmup": true}`.
//!
//! Fields are typed as the model's graph declares them ([`crate::rows`] has the decisions: booleans as 1/0,
//! numbers finite and within float32, strings only for string inputs, `null` only where the graph imputes,
//! unknown extra fields ignored). Python's `NaN`/`Infinity` literals, which are not JSON, are refused
//! naming the field. Payloads over [`MAX_BODY_BYTES`] are refused.
//!
//! Answers: `prediction` (the label in the model's own type, or the regressor's value), for classifiers
//! `probabilities` (label written as a string -> probability) and, for binary ones, `probability`
//! (P of the second class).
//!
//! Every answer leaves a count and a line: one EMF line per invocation counts the rows answered, the 400s and
//! the 500s ([`emf_line`]); a 200 adds a prediction line per row ([`log_lines`]), a 400 or a 500 one error
//! line ([`error_line`]). The lines' schema is [`crate::logline`], which `mlambda report` reads.
use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::logline::{
    ErrorLine, LabelKeys, Line, Prediction, PredictionLine, Probabilities, ShadowErrorLine, CLIENT_ERRORS, ERROR_TYPE,
    INFERENCE_LATENCY_MS, MODEL_ERRORS, ROWS, SHADOW_ERRORS, TRAFFIC,
};
use crate::model::{Answers, LabelRef, Labels};
use crate::rows::{kind, Schema, NON_FINITE_MARK};

/// Rows accepted in one `instances` batch.
pub const MAX_BATCH: usize = 10_000;
/// Lambda's synchronous payload limit; bigger bodies are refused before parsing.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Warmup,
    Rows {
        batch: crate::model::Batch,
        /// Sent as `instances` (answered as a list), even of one row.
        batched: bool,
        /// Each row's `MODEL_ID_FIELD` value (string or number), when that field is configured.
        ids: Vec<Option<Value>>,
    },
}

const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// Parses raw bytes (a Lambda payload or an HTTP body) into JSON.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Error> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(bad(format!("request body is {} bytes; the limit is 6 MB", bytes.len())));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad("request body is not valid UTF-8"))?;
    if text.trim().is_empty() {
        return Err(bad("empty request body: send a JSON object of features"));
    }
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => {
            // retry with NaN/Infinity quoted as markers; only if that parses was the literal the problem
            let quoted = quote_non_finite(text);
            match quoted.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => Ok(v),
                _ => Err(bad(format!("request body is not valid JSON: {e}"))),
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

/// A proxy body that Function URLs and API Gateway base64-encode because they take its content type for binary:
/// `curl -d` sends `application/x-www-form-urlencoded`, which they encode. Bounded like any body before decoding.
fn decode_body(encoded: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    let encoded = encoded.trim();
    if encoded.len() / 4 * 3 > MAX_BODY_BYTES {
        return Err(bad(format!("request body is about {} bytes; the limit is 6 MB", encoded.len() / 4 * 3)));
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad("the body is marked base64-encoded (`isBase64Encoded`) but is not valid base64"))
}

/// Unwraps an API Gateway proxy event to the JSON object of features it carries; a base64-encoded body is
/// decoded first.
pub fn unwrap_event(event: Value) -> Result<Map<String, Value>, Error> {
    let Value::Object(mut obj) = event else {
        return Err(bad(format!("request must be a JSON object of features, got {}", kind(&event))));
    };
    let body = match obj.remove("body") {
        None => return Ok(obj),
        Some(Value::String(s)) => {
            if obj.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                parse_json(&decode_body(&s)?)?
            } else {
                parse_json(s.as_bytes())?
            }
        }
        Some(Value::Null) => return Err(bad("empty request body: send a JSON object of features")),
        Some(other) => other,
    };
    match body {
        Value::Object(o) => Ok(o),
        other => Err(bad(format!("request body must be a JSON object of features, got {}", kind(&other)))),
    }
}

/// The row's id for the prediction log: the `MODEL_ID_FIELD` value when it is a string or a number.
pub fn row_id(obj: &Map<String, Value>, id_field: Option<&str>) -> Option<Value> {
    match obj.get(id_field?)? {
        v @ (Value::String(_) | Value::Number(_)) => Some(v.clone()),
        _ => None,
    }
}

/// Turns an already-parsed event into a request.
pub fn parse_request(event: Value, schema: &Schema, id_field: Option<&str>) -> Result<Request, Error> {
    let obj = unwrap_event(event)?;
    if obj.get("_warmup") == Some(&Value::Bool(true)) {
        return Ok(Request::Warmup);
    }
    if let Some(instances) = obj.get("instances") {
        let Value::Array(items) = instances else {
            return Err(bad(format!("\"instances\" must be an array of objects, got {}", kind(instances))));
        };
        if items.is_empty() {
            return Err(bad("\"instances\" is empty: send at least one row"));
        }
        if items.len() > MAX_BATCH {
            return Err(bad(format!("\"instances\" has {} rows; the limit is {MAX_BATCH} per request", items.len())));
        }
        let mut batch = schema.batch(items.len());
        let mut ids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Value::Object(o) = item else {
                return Err(bad(format!("instance {i} must be an object of features, got {}", kind(item))));
            };
            schema.push_row(o, &mut batch).map_err(|e| bad(format!("instance {i}: {e}")))?;
            if id_field.is_some() {
                ids.push(row_id(o, id_field));
            }
        }
        return Ok(Request::Rows { batch, batched: true, ids });
    }
    let mut batch = schema.batch(1);
    schema.push_row(&obj, &mut batch).map_err(bad)?;
    let ids = if id_field.is_some() { vec![row_id(&obj, id_field)] } else { Vec::new() };
    Ok(Request::Rows { batch, batched: false, ids })
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

/// The envelope for a failed request: the caller's mistake in full, or `internal error`.
pub fn failure(err: &Error) -> Value {
    error_response(err.status(), err.public_message())
}

pub fn warm_response() -> Value {
    envelope(200, &json!({"status": "warm"}))
}

fn label_json(label: LabelRef<'_>) -> Value {
    match label {
        LabelRef::Int(i) => Value::from(i),
        LabelRef::Str(s) => Value::from(s),
    }
}

/// Row `i` as JSON: classifiers give the label, `probabilities` and (binary) `probability`, all unrounded.
fn prediction_json(answers: &Answers, i: usize, labels: Option<&Labels>) -> Map<String, Value> {
    let mut out = Map::new();
    if let (Some(label), Some(score)) = (answers.label(i), answers.score(i)) {
        out.insert("prediction".into(), label_json(label));
        out.insert("score".into(), json!(score));
        return out;
    }
    match (answers.label(i), labels) {
        (Some(label), Some(labels)) => {
            out.insert("prediction".into(), label_json(label));
            if let Some(p) = answers.probability(i) {
                out.insert("probability".into(), json!(p));
            }
            let probs = answers.probabilities(i).unwrap_or_default();
            let map: Map<String, Value> =
                probs.iter().enumerate().map(|(j, p)| (labels.key(j), json!(f64::from(*p)))).collect();
            out.insert("probabilities".into(), Value::Object(map));
        }
        _ => {
            out.insert("prediction".into(), json!(answers.value(i).unwrap_or(f64::NAN)));
        }
    }
    out
}

pub fn single_response(answers: &Answers, labels: Option<&Labels>, version: &str) -> Value {
    let mut body = prediction_json(answers, 0, labels);
    body.insert("model_version".into(), Value::String(version.into()));
    envelope(200, &Value::Object(body))
}

pub fn batch_response(answers: &Answers, labels: Option<&Labels>, version: &str) -> Value {
    let predictions: Vec<Value> =
        (0..answers.len()).map(|i| Value::Object(prediction_json(answers, i, labels))).collect();
    envelope(200, &json!({"predictions": predictions, "model_version": version}))
}

/// Who answered, for metrics and the prediction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub namespace: String,
    pub model_version: String,
    /// `AWS_LAMBDA_FUNCTION_NAME` (`local` when unset).
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST` when unset).
    pub function_version: String,
    /// Answering a shadow copy: its EMF line carries the [`TRAFFIC`] dimension, so live alarms and the live
    /// report never see it.
    pub shadow: bool,
}

/// EMF allows 100 metrics per line; the rest of the budget goes to the fixed metrics.
const MAX_CLASS_METRICS: usize = 90;

/// How an invocation ended, as its EMF line counts it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Rows answered: a 200.
    Answered { answers: &'a Answers, labels: Option<&'a Labels>, latency_ms: f64 },
    /// A 400 or a 500; `latency_ms` when the model ran before the answer failed.
    Failed { error: &'a Error, latency_ms: Option<f64> },
}

/// One CloudWatch embedded-metric-format line per invocation (warmups aside), with dimension sets
/// `[ModelVersion]` and `[FunctionName, FunctionVersion]`.
///
/// Every line counts [`ROWS`] (rows answered, 0 on failure), [`CLIENT_ERRORS`] (1 for a 400) and
/// [`MODEL_ERRORS`] (1 for a 500): the function answers failures itself, so Lambda's `Errors` never sees them
/// and alarms need these. A failure names its [`ERROR_TYPE`] as a property (a dimension would split every
/// alarm's series by it). When the model ran, [`INFERENCE_LATENCY_MS`]; when it answered, binary classifiers
/// emit `PredictionProbability` (the batch mean, so alarms on its average stay meaningful), multiclass ones
/// `PredictedClass_<label>` (how many rows got each label), regressors `PredictionValue` (the batch mean).
pub fn emf_line(origin: &Origin, outcome: Outcome<'_>, timestamp_ms: u64) -> String {
    let mut metrics = Vec::with_capacity(8);
    let mut line = Map::new();
    line.insert("ModelVersion".into(), json!(origin.model_version));
    line.insert("FunctionName".into(), json!(origin.function_name));
    line.insert("FunctionVersion".into(), json!(origin.function_version));
    if origin.shadow {
        line.insert(TRAFFIC.into(), json!("shadow"));
    }
    let (rows, status, latency_ms) = match outcome {
        Outcome::Answered { answers, latency_ms, .. } => (answers.len(), 200, Some(latency_ms)),
        Outcome::Failed { error, latency_ms } => (0, error.status(), latency_ms),
    };
    if let Some(latency_ms) = latency_ms {
        metrics.push(json!({"Name": INFERENCE_LATENCY_MS, "Unit": "Milliseconds"}));
        line.insert(INFERENCE_LATENCY_MS.into(), json!(latency_ms));
    }
    match outcome {
        Outcome::Answered { answers, labels, .. } => prediction_metrics(answers, labels, &mut metrics, &mut line),
        Outcome::Failed { error, .. } => {
            line.insert(ERROR_TYPE.into(), json!(error.error_type()));
        }
    }
    let counts = [
        (ROWS, rows),
        (CLIENT_ERRORS, usize::from((400..500).contains(&status))),
        (MODEL_ERRORS, usize::from(status >= 500)),
    ];
    for (name, count) in counts {
        metrics.push(json!({"Name": name, "Unit": "Count"}));
        line.insert(name.into(), json!(count));
    }
    if origin.shadow && status != 200 {
        metrics.push(json!({"Name": SHADOW_ERRORS, "Unit": "Count"}));
        line.insert(SHADOW_ERRORS.into(), json!(1));
    }
    line.insert("_aws".into(), aws_block(origin, timestamp_ms, metrics));
    Value::Object(line).to_string()
}

/// The EMF `_aws` block: the live dimension sets, each with [`TRAFFIC`] added for a shadow copy.
fn aws_block(origin: &Origin, timestamp_ms: u64, metrics: Vec<Value>) -> Value {
    let dimensions = match origin.shadow {
        false => json!([["ModelVersion"], ["FunctionName", "FunctionVersion"]]),
        true => json!([["ModelVersion", TRAFFIC], ["FunctionName", "FunctionVersion", TRAFFIC]]),
    };
    json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{"Namespace": origin.namespace, "Dimensions": dimensions, "Metrics": metrics}],
    })
}

/// The log line of a shadow copy that failed, newline included: on the primary's side (not delivered) or on
/// the shadow's (not answered).
pub fn shadow_error_line(origin: &Origin, correlation_id: &str, target: &str, reason: &str) -> String {
    let mut out = Vec::with_capacity(256);
    Line::ShadowError(ShadowErrorLine {
        correlation_id: Cow::Borrowed(correlation_id),
        function_version: Cow::Borrowed(&origin.function_version),
        target: Cow::Borrowed(target),
        reason: Cow::Borrowed(reason),
    })
    .write_to(&mut out);
    into_text(out)
}

/// A copy that did not reach the shadow, from the primary's side: an EMF line counting one [`SHADOW_ERRORS`]
/// (under the primary's own dimensions, which no alarm reads) and its [`shadow_error_line`].
pub fn shadow_error_lines(
    origin: &Origin,
    correlation_id: &str,
    target: &str,
    reason: &str,
    timestamp_ms: u64,
) -> String {
    let mut line = Map::new();
    line.insert("ModelVersion".into(), json!(origin.model_version));
    line.insert("FunctionName".into(), json!(origin.function_name));
    line.insert("FunctionVersion".into(), json!(origin.function_version));
    line.insert(SHADOW_ERRORS.into(), json!(1));
    let metrics = vec![json!({"Name": SHADOW_ERRORS, "Unit": "Count"})];
    line.insert("_aws".into(), aws_block(origin, timestamp_ms, metrics));
    let mut out = Value::Object(line).to_string();
    out.push('\n');
    out.push_str(&shadow_error_line(origin, correlation_id, target, reason));
    out
}

/// What the answered rows predicted, as EMF metrics.
fn prediction_metrics(
    answers: &Answers,
    labels: Option<&Labels>,
    metrics: &mut Vec<Value>,
    line: &mut Map<String, Value>,
) {
    let n = answers.len();
    let mean = |f: &dyn Fn(usize) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = (0..n).filter_map(f).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    match labels {
        Some(labels) if labels.len() == 2 => {
            if let Some(p) = mean(&|i| answers.probability(i)) {
                metrics.push(json!({"Name": "PredictionProbability", "Unit": "None"}));
                line.insert("PredictionProbability".into(), json!(p));
            }
        }
        Some(_) => {
            // counts in order of first appearance, so a line is stable for a given batch
            let mut counts: Vec<(String, u64)> = Vec::new();
            for i in 0..n {
                let Some(label) = answers.label(i) else { continue };
                let key = match label {
                    LabelRef::Int(v) => v.to_string(),
                    LabelRef::Str(s) => s.to_string(),
                };
                if let Some((_, c)) = counts.iter_mut().find(|(k, _)| *k == key) {
                    *c += 1;
                } else if counts.len() < MAX_CLASS_METRICS {
                    counts.push((key, 1));
                }
            }
            for (key, count) in counts {
                let name = format!("PredictedClass_{key}");
                metrics.push(json!({"Name": name, "Unit": "Count"}));
                line.insert(name, json!(count));
            }
        }
        None if n > 0 && answers.score(0).is_some() => {
            // an anomaly detector: how many rows it calls outliers, and its mean score
            let outliers = (0..n).filter(|&i| answers.label(i) == Some(LabelRef::Int(-1))).count();
            metrics.push(json!({"Name": "Outliers", "Unit": "Count"}));
            line.insert("Outliers".into(), json!(outliers));
            if let Some(v) = mean(&|i| answers.score(i)) {
                metrics.push(json!({"Name": "AnomalyScore", "Unit": "None"}));
                line.insert("AnomalyScore".into(), json!(v));
            }
        }
        None => {
            if let Some(v) = mean(&|i| answers.value(i)) {
                metrics.push(json!({"Name": "PredictionValue", "Unit": "None"}));
                line.insert("PredictionValue".into(), json!(v));
            }
        }
    }
}

impl<'a> From<&'a Labels> for LabelKeys<'a> {
    fn from(labels: &'a Labels) -> LabelKeys<'a> {
        match labels {
            Labels::Int(v) => LabelKeys::Int(v),
            Labels::Str(v) => LabelKeys::Str(v),
        }
    }
}

/// Lines serialized into one buffer are JSON, so UTF-8; the lossy branch never runs.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The prediction log: one JSON line per row answered (a [`logline::PredictionLine`]), never a feature value.
pub fn log_lines(
    origin: &Origin,
    request_id: &str,
    ids: &[Option<Value>],
    answers: &Answers,
    labels: Option<&Labels>,
    latency_ms: f64,
) -> String {
    let mut out = Vec::with_capacity(answers.len() * 160);
    write_prediction_lines(&mut out, origin, request_id, ids, None, answers, labels, latency_ms, None);
    into_text(out)
}

/// Appends one [`logline::PredictionLine`] per answer to `out`. `rows` numbers them (a batch slice's row
/// indices, which skip refused rows); without it they count from 0. `correlation_id` marks a shadowed
/// request's lines on both sides (`origin.shadow` tells which side).
#[allow(clippy::too_many_arguments)]
pub fn write_prediction_lines(
    out: &mut Vec<u8>,
    origin: &Origin,
    request_id: &str,
    ids: &[Option<Value>],
    rows: Option<&[usize]>,
    answers: &Answers,
    labels: Option<&Labels>,
    latency_ms: f64,
    correlation_id: Option<&str>,
) {
    let keys = labels.map(LabelKeys::from);
    for i in 0..answers.len() {
        let prediction = match answers.label(i) {
            Some(LabelRef::Int(v)) => Prediction::Int(v),
            Some(LabelRef::Str(s)) => Prediction::Str(Cow::Borrowed(s)),
            None => Prediction::Value(answers.value(i).unwrap_or(f64::NAN)),
        };
        Line::Prediction(PredictionLine {
            request_id: Cow::Borrowed(request_id),
            function_version: Cow::Borrowed(&origin.function_version),
            model_version: Some(Cow::Borrowed(&origin.model_version)),
            id: ids.get(i).and_then(Option::as_ref).map(Cow::Borrowed),
            correlation_id: correlation_id.map(Cow::Borrowed),
            shadow: origin.shadow,
            row: rows.and_then(|r| r.get(i).copied()).unwrap_or(i),
            rows: answers.len(),
            prediction: Some(prediction),
            probability: answers.probability(i),
            probabilities: keys
                .zip(answers.probabilities(i))
                .map(|(labels, probs)| Probabilities::Row { labels, probs }),
            score: answers.score(i),
            latency_ms: Some(latency_ms),
        })
        .write_to(out);
    }
}

/// The error log line of a failed invocation (a [`logline::ErrorLine`]), newline included. The reason is the
/// caller's 400 message in full, or a 500's internal detail, which only the log sees.
pub fn error_line(origin: &Origin, request_id: &str, error: &Error) -> String {
    let mut out = Vec::with_capacity(256);
    Line::Error(ErrorLine {
        request_id: Cow::Borrowed(request_id),
        function_version: Cow::Borrowed(&origin.function_version),
        model_version: Some(Cow::Borrowed(&origin.model_version)),
        status: error.status(),
        error_type: Cow::Borrowed(error.error_type()),
        reason: Cow::Owned(error.to_string()),
    })
    .write_to(&mut out);
    into_text(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, Column, Field, InputKind};

    fn field(name: &str, input: usize, column: usize, kind: InputKind, nullable: bool) -> Field {
        Field { name: name.into(), input, column, width: 1, kind, nullable }
    }

    /// `MODEL_FEATURES=a,b,c` over one float input.
    fn floats() -> Schema {
        let fields = ["a", "b", "c"].iter().enumerate().map(|(i, n)| field(n, 0, i, InputKind::F32, false)).collect();
        Schema::from_parts(fields, vec![(InputKind::F32, 3)])
    }

    /// A `ColumnTransformer` export: imputed float `age`, string `plan`, int64 `seats`, float pair `xy`.
    fn named() -> Schema {
        let mut xy = field("xy", 3, 0, InputKind::F32, false);
        xy.width = 2;
        let fields = vec![
            field("age", 0, 0, InputKind::F32, true),
            field("plan", 1, 0, InputKind::Str, false),
            field("seats", 2, 0, InputKind::I64, false),
            xy,
        ];
        Schema::from_parts(
            fields,
            vec![(InputKind::F32, 1), (InputKind::Str, 1), (InputKind::I64, 1), (InputKind::F32, 2)],
        )
    }

    fn parse_with(schema: &Schema, text: &str) -> Result<Request, Error> {
        parse_request(parse_json(text.as_bytes())?, schema, None)
    }

    fn parse(text: &str) -> Result<Request, Error> {
        parse_with(&floats(), text)
    }

    fn single(values: Vec<f32>) -> Request {
        Request::Rows { batch: Batch { n: 1, columns: vec![Column::F32(values)] }, batched: false, ids: vec![] }
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn direct_object_in_feature_order() {
        assert_eq!(parse(r#"{"c": 3, "a": 1.5, "b": -2}"#).unwrap(), single(vec![1.5, -2.0, 3.0]));
    }

    #[test]
    fn proxy_event_with_string_body() {
        let ev = json!({"httpMethod": "POST", "body": "{\"a\":1,\"b\":2,\"c\":3}", "isBase64Encoded": false});
        assert_eq!(parse(&ev.to_string()).unwrap(), single(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn base64_proxy_bodies_are_decoded_as_json() {
        use base64::Engine as _;
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        // a Function URL event for `curl -d '{...}'`: form content type, so the body came base64-encoded
        let ev = json!({"headers": {"content-type": "application/x-www-form-urlencoded"},
                        "body": b64(r#"{"a":1,"b":2,"c":3}"#), "isBase64Encoded": true});
        assert_eq!(parse(&ev.to_string()).unwrap(), single(vec![1.0, 2.0, 3.0]));
        let not_json = json!({"body": b64("a=1&b=2"), "isBase64Encoded": true});
        let e = parse(&not_json.to_string()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("request body is not valid JSON"), "{e}");
        let big = json!({"body": "A".repeat(MAX_BODY_BYTES / 3 * 4 + 8), "isBase64Encoded": true});
        assert!(parse(&big.to_string()).unwrap_err().to_string().contains("6 MB"));
    }

    #[test]
    fn proxy_event_with_object_body() {
        assert_eq!(parse(r#"{"body": {"a":1,"b":2,"c":3}}"#).unwrap(), single(vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn booleans_are_one_and_zero_and_extras_ignored() {
        assert_eq!(parse(r#"{"a": true, "b": false, "c": 0, "zzz": "x"}"#).unwrap(), single(vec![1.0, 0.0, 0.0]));
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
        // the message names the field, never the value (it reaches the error log line too)
        assert_eq!(
            err(r#"{"a": 1e300, "b": 2, "c": 3}"#),
            "feature \"a\" is outside the float32 range; send a number within ±3.4e38"
        );
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
        assert!(err(r#"{"body": "!!", "isBase64Encoded": true}"#).contains("not valid base64"));
        assert_eq!(parse("[1]").unwrap_err().status(), 400);
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(parse_json(&big).unwrap_err().to_string().contains("6 MB"));
    }

    #[test]
    fn warmup_skips_features() {
        assert_eq!(parse(r#"{"_warmup": true}"#).unwrap(), Request::Warmup);
        assert_eq!(parse(&json!({"body": "{\"_warmup\": true}"}).to_string()).unwrap(), Request::Warmup);
        // only `true` warms; anything else is an ordinary (here incomplete) request
        assert!(err(r#"{"_warmup": 1}"#).starts_with("missing"));
    }

    #[test]
    fn batches() {
        let r = parse(r#"{"instances": [{"a":1,"b":2,"c":3},{"a":4,"b":5,"c":6}]}"#).unwrap();
        let want = Batch { n: 2, columns: vec![Column::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])] };
        assert_eq!(r, Request::Rows { batch: want, batched: true, ids: vec![] });
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
        assert!(matches!(parse(&max.to_string()), Ok(Request::Rows { batch: Batch { n: MAX_BATCH, .. }, .. })));
    }

    #[test]
    fn named_inputs_take_strings_ints_and_imputed_nulls() {
        let s = named();
        let r = parse_with(&s, r#"{"age": null, "plan": "gold", "seats": 3, "xy": [1.5, true]}"#).unwrap();
        let Request::Rows { batch, .. } = r else { panic!("{r:?}") };
        assert_eq!(batch.n, 1);
        assert!(matches!(&batch.columns[0], Column::F32(v) if v[0].is_nan()));
        assert_eq!(batch.columns[1], Column::Str(vec!["gold".into()]));
        assert_eq!(batch.columns[2], Column::I64(vec![3]));
        assert_eq!(batch.columns[3], Column::F32(vec![1.5, 1.0]));
        let err = |text: &str| parse_with(&s, text).unwrap_err().to_string();
        let row = |over: Value| {
            let mut base = json!({"age": 40, "plan": "gold", "seats": 3, "xy": [1, 2]});
            for (k, v) in over.as_object().unwrap() {
                base[k] = v.clone();
            }
            base.to_string()
        };
        assert_eq!(err(&row(json!({"plan": 7}))), "feature \"plan\" must be a string, got a number");
        assert_eq!(err(&row(json!({"plan": null}))), "feature \"plan\" must be a string, got null");
        assert_eq!(err(&row(json!({"age": "40"}))), "feature \"age\" must be a number, got a string");
        assert_eq!(err(&row(json!({"seats": 2.5}))), "feature \"seats\" must be an integer, got a fractional number");
        assert_eq!(err(&row(json!({"seats": null}))), "feature \"seats\" must be an integer, got null");
        assert_eq!(err(&row(json!({"xy": [1]}))), "feature \"xy\" must be an array of 2 numbers, got 1 values");
        assert_eq!(err(&row(json!({"xy": 1}))), "feature \"xy\" must be an array of 2 numbers, got a number");
        assert_eq!(err(&row(json!({"xy": [1, "a"]}))), "feature \"xy[1]\" must be a number, got a string");
        assert_eq!(
            err(&row(json!({"seats": 2.0})).replace("\"seats\":2.0", "\"seats\":NaN")),
            "feature \"seats\" is NaN; send a finite number"
        );
        assert_eq!(err(r#"{"plan": "x"}"#), "missing required features: age, seats, xy");
        // integral floats are integers
        assert!(parse_with(&s, &row(json!({"seats": 4.0}))).is_ok());
    }

    #[test]
    fn ids_are_taken_from_the_id_field() {
        let ev = parse_json(
            br#"{"instances": [{"a":1,"b":2,"c":3,"id":"C-1"},{"a":1,"b":2,"c":3,"id":7},{"a":1,"b":2,"c":3}]}"#,
        )
        .unwrap();
        let Request::Rows { ids, .. } = parse_request(ev, &floats(), Some("id")).unwrap() else { panic!() };
        assert_eq!(ids, vec![Some(json!("C-1")), Some(json!(7)), None]);
    }

    fn body(envelope: &Value) -> Value {
        serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap()
    }

    fn binary() -> (Answers, Labels) {
        let p = 0.723_456_8_f32;
        (Answers::from_int_labels(vec![1, 0], vec![1.0 - p, p, 0.75, 0.25], 2), Labels::Int(vec![0, 1]))
    }

    #[test]
    fn responses_keep_full_precision() {
        let (answers, labels) = binary();
        let p = f64::from(0.723_456_8_f32);
        let p0 = f64::from(1.0 - 0.723_456_8_f32);
        let r = single_response(&answers, Some(&labels), "v3");
        assert_eq!(r["statusCode"], 200);
        assert_eq!(r["headers"]["Content-Type"], "application/json");
        assert_eq!(
            body(&r),
            json!({"prediction": 1, "probability": p, "probabilities": {"0": p0, "1": p}, "model_version": "v3"})
        );
        let reg = single_response(&Answers::from_values(vec![12.5]), None, "v");
        assert_eq!(body(&reg), json!({"prediction": 12.5, "model_version": "v"}));
        let b = batch_response(&answers, Some(&labels), "v3");
        assert_eq!(
            body(&b),
            json!({"predictions": [{"prediction": 1, "probability": p, "probabilities": {"0": p0, "1": p}},
                                   {"prediction": 0, "probability": 0.25, "probabilities": {"0": 0.75, "1": 0.25}}],
                   "model_version": "v3"})
        );
        assert_eq!(body(&warm_response()), json!({"status": "warm"}));
        let e = error_response(400, "nope");
        assert_eq!((e["statusCode"].as_u64(), body(&e)), (Some(400), json!({"error": "nope"})));
        let internal = failure(&Error::Model(crate::model::ModelError::Run("secret detail".into())));
        assert_eq!((internal["statusCode"].as_u64(), body(&internal)), (Some(500), json!({"error": "internal error"})));
    }

    #[test]
    fn multiclass_string_labels_answer_in_their_type() {
        let labels = Labels::Str(vec!["bronze".into(), "gold".into(), "silver".into()]);
        let answers = Answers::from_str_labels(vec!["gold".into()], vec![0.25, 0.5, 0.25], 3);
        let r = body(&single_response(&answers, Some(&labels), "v"));
        assert_eq!(
            r,
            json!({"prediction": "gold", "probabilities": {"bronze": 0.25, "gold": 0.5, "silver": 0.25}, "model_version": "v"})
        );
        assert!(r.get("probability").is_none());
    }

    fn origin() -> Origin {
        Origin {
            namespace: "mlambda".into(),
            model_version: "v7".into(),
            function_name: "churn".into(),
            function_version: "3".into(),
            shadow: false,
        }
    }

    fn emf(outcome: Outcome<'_>) -> Value {
        serde_json::from_str(&emf_line(&origin(), outcome, 1_700_000_000_000)).unwrap()
    }

    fn metric_names(line: &Value) -> Vec<&str> {
        line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn emf_line_is_valid_embedded_metric_format() {
        let answers = Answers::from_int_labels(vec![1, 0], vec![0.2, 0.8, 0.8, 0.2], 2);
        let labels = Labels::Int(vec![0, 1]);
        let line = emf(Outcome::Answered { answers: &answers, labels: Some(&labels), latency_ms: 0.25 });
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "mlambda");
        assert_eq!(cw["Dimensions"], json!([["ModelVersion"], ["FunctionName", "FunctionVersion"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "InferenceLatencyMs", "Unit": "Milliseconds"}, {"Name": "PredictionProbability", "Unit": "None"},
                   {"Name": "Rows", "Unit": "Count"}, {"Name": "ClientErrors", "Unit": "Count"},
                   {"Name": "ModelErrors", "Unit": "Count"}])
        );
        assert_eq!((line["ModelVersion"].as_str(), line["FunctionName"].as_str()), (Some("v7"), Some("churn")));
        assert_eq!(line["FunctionVersion"], "3");
        assert_eq!(line["InferenceLatencyMs"], 0.25);
        assert_eq!(
            (line["Rows"].as_u64(), line["ClientErrors"].as_u64(), line["ModelErrors"].as_u64()),
            (Some(2), Some(0), Some(0))
        );
        assert!(line.get("ErrorType").is_none());
        assert!((line["PredictionProbability"].as_f64().unwrap() - 0.5).abs() < 1e-7);
        // regressors: the mean prediction
        let values = Answers::from_values(vec![3.0, 5.0]);
        let reg = emf(Outcome::Answered { answers: &values, labels: None, latency_ms: 1.0 });
        assert_eq!(
            reg["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "PredictionValue", "Unit": "None"})
        );
        assert_eq!(reg["PredictionValue"], 4.0);
        assert!(reg.get("PredictionProbability").is_none());
        // multiclass: how many rows got each label
        let labels = Labels::Str(vec!["a".into(), "b".into(), "c".into()]);
        let answers = Answers::from_str_labels(
            vec!["c".into(), "a".into(), "c".into()],
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0],
            3,
        );
        let multi = emf(Outcome::Answered { answers: &answers, labels: Some(&labels), latency_ms: 1.0 });
        assert_eq!(
            metric_names(&multi),
            ["InferenceLatencyMs", "PredictedClass_c", "PredictedClass_a", "Rows", "ClientErrors", "ModelErrors"]
        );
        assert_eq!((multi["PredictedClass_c"].as_u64(), multi["PredictedClass_a"].as_u64()), (Some(2), Some(1)));
    }

    #[test]
    fn failures_are_counted_with_their_error_type() {
        let bad = Error::InvalidInput("missing required features: a".into());
        let line = emf(Outcome::Failed { error: &bad, latency_ms: None });
        assert_eq!(metric_names(&line), ["Rows", "ClientErrors", "ModelErrors"]);
        assert_eq!(
            (line["Rows"].as_u64(), line["ClientErrors"].as_u64(), line["ModelErrors"].as_u64()),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!(line["ErrorType"], "InvalidInput");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ModelVersion"], ["FunctionName", "FunctionVersion"]])
        );
        assert!(line.get("InferenceLatencyMs").is_none());
        // a model that ran and failed keeps its latency
        let broken = Error::Model(crate::model::ModelError::Run("the graph produced 1 values for 2 rows".into()));
        let line = emf(Outcome::Failed { error: &broken, latency_ms: Some(0.5) });
        assert_eq!(metric_names(&line), ["InferenceLatencyMs", "Rows", "ClientErrors", "ModelErrors"]);
        assert_eq!((line["ClientErrors"].as_u64(), line["ModelErrors"].as_u64()), (Some(0), Some(1)));
        assert_eq!(line["ErrorType"], "ModelError");
    }

    #[test]
    fn error_lines_carry_the_status_type_and_reason() {
        let bad = Error::InvalidInput("missing required features: tenure".into());
        assert_eq!(
            error_line(&origin(), "req-2", &bad),
            "{\"mlambda\":\"error\",\"request_id\":\"req-2\",\"function_version\":\"3\",\"model_version\":\"v7\",\"status\":400,\"error_type\":\"InvalidInput\",\"reason\":\"missing required features: tenure\"}\n"
        );
        // a 500's detail is logged, while the caller reads `internal error`
        let broken = Error::Model(crate::model::ModelError::Run("secret detail".into()));
        let text = error_line(&origin(), "req-3", &broken);
        let Ok(crate::logline::Line::Error(line)) = crate::logline::parse(&text) else { panic!("{text}") };
        assert_eq!((line.status, line.error_type.as_ref(), line.reason.as_ref()), (500, "ModelError", "secret detail"));
    }

    #[test]
    fn prediction_log_lines_keep_their_key_order() {
        let (answers, labels) = binary();
        let text = log_lines(&origin(), "req-1", &[Some(json!("C-1001")), None], &answers, Some(&labels), 0.412);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let p = f64::from(0.723_456_8_f32);
        let p0 = f64::from(1.0 - 0.723_456_8_f32);
        assert_eq!(
            lines[0],
            format!(
                r#"{{"mlambda":"prediction","request_id":"req-1","function_version":"3","model_version":"v7","id":"C-1001","row":0,"rows":2,"prediction":1,"probability":{p},"probabilities":{{"0":{p0},"1":{p}}},"latency_ms":0.412}}"#
            )
        );
        assert!(lines[1].contains(r#""model_version":"v7","row":1,"rows":2,"prediction":0,"#), "{}", lines[1]);
        // regressors: the value, no probabilities; multiclass: no `probability`, labels in model order
        let reg = log_lines(&origin(), "r", &[], &Answers::from_values(vec![2.5]), None, 1.0);
        assert!(reg.contains(r#""rows":1,"prediction":2.5,"latency_ms":1.0}"#), "{reg}");
        let labels = Labels::Str(vec!["z".into(), "a".into(), "m".into()]);
        let answers = Answers::from_str_labels(vec!["a".into()], vec![0.25, 0.5, 0.25], 3);
        let multi = log_lines(&origin(), "r", &[], &answers, Some(&labels), 1.0);
        assert!(multi.contains(r#""prediction":"a","probabilities":{"z":0.25,"a":0.5,"m":0.25},"#), "{multi}");
    }
}
