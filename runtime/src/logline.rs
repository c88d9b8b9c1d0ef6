//! The runtime's log lines as one schema: `bootstrap` writes them, `mlambda report` reads them back.
//!
//! Every invocation but a warmup leaves an EMF line whose counts ([`ROWS`], [`CLIENT_ERRORS`],
//! [`MODEL_ERRORS`]) alarms watch, and JSON lines tagged by their `mlambda` key:
//! * `prediction`, one per row answered (sampled by `LOG_PREDICTIONS`):
//!   `{"mlambda":"prediction","request_id":"…","function_version":"3","model_version":"v4","id":"C-1001",
//!   "row":0,"rows":1,"prediction":1,"probability":0.81,"probabilities":{"0":0.19,"1":0.81},"latency_ms":0.41}`;
//! * `error`, one per failed invocation (never sampled):
//!   `{"mlambda":"error","request_id":"…","function_version":"3","model_version":"v4","status":400,
//!   "error_type":"InvalidInput","reason":"missing required features: tenure"}`.
//!
//! Neither carries a feature value. Keys serialize in the order above. Reading is tolerant of older lines:
//! `model_version`, `id`, `row`, `rows`, `prediction`, `probability`, `probabilities` and `latency_ms` may be
//! missing. Pure serde, so the CLI uses it without the model or the server.
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// EMF count of the rows an invocation answered (0 when it failed).
pub const ROWS: &str = "Rows";
/// EMF count of invocations answered 400 (the caller's mistake): 1 or 0 per invocation.
pub const CLIENT_ERRORS: &str = "ClientErrors";
/// EMF count of invocations answered 500 (the model failed): 1 or 0 per invocation.
pub const MODEL_ERRORS: &str = "ModelErrors";
/// EMF metric of the model's run time, on lines where the model ran.
pub const INFERENCE_LATENCY_MS: &str = "InferenceLatencyMs";
/// EMF property (not a dimension) of a failed invocation's error type, e.g. `InvalidInput`.
pub const ERROR_TYPE: &str = "ErrorType";

/// The value of the `mlambda` key that tags a prediction line.
pub const PREDICTION: &str = "prediction";
/// The value of the `mlambda` key that tags an error line.
pub const ERROR: &str = "error";
/// The value of the `mlambda` key that tags a failed shadow copy.
pub const SHADOW_ERROR: &str = "shadow_error";
/// EMF count of shadow copies that failed (on the primary's line) or that the shadow failed to answer.
pub const SHADOW_ERRORS: &str = "ShadowErrors";
/// EMF dimension on a shadow copy's metrics (`Traffic: shadow`), which keeps them out of the live alarms and
/// the live report: those read the `[FunctionName, FunctionVersion]` and `[ModelVersion]` streams only.
pub const TRAFFIC: &str = "Traffic";

/// One line the runtime writes, tagged by its `mlambda` key (serialized first).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mlambda", rename_all = "lowercase")]
pub enum Line<'a> {
    Prediction(PredictionLine<'a>),
    Error(ErrorLine<'a>),
    /// A shadow copy the primary could not deliver; the caller never saw it.
    #[serde(rename = "shadow_error")]
    ShadowError(ShadowErrorLine<'a>),
}

impl Line<'_> {
    /// Appends the line and a newline to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // strings, numbers and JSON values always serialize; a failure would leave half a line, so drop it
        match serde_json::to_writer(&mut *out, self) {
            Ok(()) => out.push(b'\n'),
            Err(_) => out.truncate(start),
        }
    }
}

/// One answered row. `prediction` is the label in the model's own type or the regressor's value;
/// `probability` is P(second class) for binary classifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionLine<'a> {
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    #[serde(borrow)]
    pub function_version: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<Cow<'a, str>>,
    /// The row's `MODEL_ID_FIELD` value (a string or a number), which outcomes are joined on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, Value>>,
    /// Set on both sides of a shadowed request: the primary's line and the shadow's carry the same id (the
    /// primary's request id), which pairs their answers row by row.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Cow<'a, str>>,
    /// True on the line of a shadow copy's answer, which no caller saw.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    #[serde(default)]
    pub row: usize,
    #[serde(default)]
    pub rows: usize,
    /// `None` when missing, or `null` (a regressor's NaN).
    #[serde(default)]
    pub prediction: Option<Prediction<'a>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Probabilities<'a>>,
    /// An anomaly detector's score (below 0 is an outlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The request's model run time, the same on every row of a batch.
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

/// One failed invocation: the status the caller saw and why. `reason` is the caller's 400 message in full,
/// or a 500's internal detail (which only the log sees).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorLine<'a> {
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    #[serde(borrow)]
    pub function_version: Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<Cow<'a, str>>,
    pub status: u16,
    #[serde(borrow)]
    pub error_type: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
}

/// A shadow copy that failed on the primary's side (throttled, refused, Invoke unreachable), or that the shadow
/// could not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowErrorLine<'a> {
    #[serde(borrow)]
    pub correlation_id: Cow<'a, str>,
    #[serde(borrow)]
    pub function_version: Cow<'a, str>,
    /// The shadow target's qualified ARN.
    #[serde(borrow)]
    pub target: Cow<'a, str>,
    #[serde(borrow)]
    pub reason: Cow<'a, str>,
}

/// A row's prediction: an integer or string label, or a regressor's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Prediction<'a> {
    Int(i64),
    Str(Cow<'a, str>),
    Value(f64),
}

impl Prediction<'_> {
    /// The same prediction, borrowing nothing.
    pub fn into_owned(self) -> Prediction<'static> {
        match self {
            Prediction::Int(i) => Prediction::Int(i),
            Prediction::Str(s) => Prediction::Str(Cow::Owned(s.into_owned())),
            Prediction::Value(v) => Prediction::Value(v),
        }
    }

    /// The prediction as text: labels as they are, values as JSON writes them.
    pub fn text(&self) -> String {
        match self {
            Prediction::Int(i) => i.to_string(),
            Prediction::Str(s) => s.to_string(),
            // as JSON writes it, so `1.0` stays `1.0`
            Prediction::Value(v) => serde_json::Number::from_f64(*v).map_or_else(|| v.to_string(), |n| n.to_string()),
        }
    }
}

// By hand rather than `untagged`, which would buffer every value and never borrow a string label.
impl<'de: 'a, 'a> Deserialize<'de> for Prediction<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Prediction<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a label (string or integer) or a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Prediction::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Prediction::Value(v as f64), Prediction::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Prediction::Value(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Prediction::Str(Cow::Borrowed(if v { "true" } else { "false" })))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Prediction::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Prediction::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Prediction::Str(Cow::Owned(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A classifier's labels in its probability columns' order, borrowed from the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKeys<'a> {
    Int(&'a [i64]),
    Str(&'a [String]),
}

/// Class → probability in the model's label order (a JSON map would sort its keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Probabilities<'a> {
    /// What the runtime writes: one row's probabilities beside the labels, nothing copied.
    Row { labels: LabelKeys<'a>, probs: &'a [f32] },
    /// What a reader gets back, in the order the line lists them.
    Read(Vec<(String, f64)>),
}

impl Probabilities<'_> {
    pub fn len(&self) -> usize {
        match self {
            Probabilities::Row { labels: LabelKeys::Int(l), probs } => l.len().min(probs.len()),
            Probabilities::Row { labels: LabelKeys::Str(l), probs } => l.len().min(probs.len()),
            Probabilities::Read(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label (as written) and probability, in order.
    pub fn pairs(&self) -> Cow<'_, [(String, f64)]> {
        match self {
            Probabilities::Read(v) => Cow::Borrowed(v),
            Probabilities::Row { labels: LabelKeys::Int(l), probs } => {
                Cow::Owned(l.iter().zip(*probs).map(|(k, p)| (k.to_string(), f64::from(*p))).collect())
            }
            Probabilities::Row { labels: LabelKeys::Str(l), probs } => {
                Cow::Owned(l.iter().zip(*probs).map(|(k, p)| (k.clone(), f64::from(*p))).collect())
            }
        }
    }
}

impl Serialize for Probabilities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        match self {
            // JSON writes integer keys as strings, without a String per key
            Probabilities::Row { labels: LabelKeys::Int(l), probs } => {
                for (k, p) in l.iter().zip(*probs) {
                    map.serialize_entry(k, &f64::from(*p))?;
                }
            }
            Probabilities::Row { labels: LabelKeys::Str(l), probs } => {
                for (k, p) in l.iter().zip(*probs) {
                    map.serialize_entry(k, &f64::from(*p))?;
                }
            }
            Probabilities::Read(v) => {
                for (k, p) in v {
                    map.serialize_entry(k, p)?;
                }
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Probabilities<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, f64)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of class probabilities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(2));
                // a NaN probability is written as `null`; it stays NaN rather than losing the line
                while let Some((k, v)) = map.next_entry::<String, Option<f64>>()? {
                    out.push((k, v.unwrap_or(f64::NAN)));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V).map(Probabilities::Read)
    }
}

/// Why a log message is not a line of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// START/END/REPORT, EMF, the function's own output, an `mlambda` line of another kind.
    Other,
    /// Tagged as a prediction or an error line, and did not parse.
    Unreadable,
}

/// Just the tag, to pick the line type before parsing the rest.
#[derive(Deserialize)]
struct Tag<'a> {
    /// Missing on JSON that merely mentions `"mlambda"`, such as an EMF line in the default namespace.
    #[serde(default, borrow)]
    mlambda: Option<Cow<'a, str>>,
}

/// Classifies one CloudWatch log message. Lambda may prefix a line or add a newline, so the JSON starts at
/// the first `{`.
pub fn parse(message: &str) -> Result<Line<'_>, Skip> {
    let start = message.find('{').ok_or(Skip::Other)?;
    let json = message[start..].trim_end();
    if !json.contains("\"mlambda\"") {
        return Err(Skip::Other);
    }
    let tag = serde_json::from_str::<Tag>(json).map_err(|_| Skip::Unreadable)?;
    match tag.mlambda.as_deref().unwrap_or_default() {
        PREDICTION => serde_json::from_str(json).map(Line::Prediction).map_err(|_| Skip::Unreadable),
        ERROR => serde_json::from_str(json).map(Line::Error).map_err(|_| Skip::Unreadable),
        SHADOW_ERROR => serde_json::from_str(json).map(Line::ShadowError).map_err(|_| Skip::Unreadable),
        _ => Err(Skip::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(line: &Line) -> String {
        let mut out = Vec::new();
        line.write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn prediction(probabilities: Option<Probabilities<'_>>) -> PredictionLine<'_> {
        PredictionLine {
            request_id: "req-1".into(),
            function_version: "3".into(),
            model_version: Some("v4".into()),
            id: None,
            correlation_id: None,
            shadow: false,
            row: 0,
            rows: 1,
            prediction: Some(Prediction::Int(1)),
            probability: Some(0.75),
            probabilities,
            score: None,
            latency_ms: Some(0.5),
        }
    }

    #[test]
    fn error_lines_keep_their_key_order_and_read_back() {
        let line = Line::Error(ErrorLine {
            request_id: "req-9".into(),
            function_version: "3".into(),
            model_version: Some("v4".into()),
            status: 400,
            error_type: "InvalidInput".into(),
            reason: "feature \"tenure\" must be a number, got a string".into(),
        });
        let written = text(&line);
        assert_eq!(
            written,
            r#"{"mlambda":"error","request_id":"req-9","function_version":"3","model_version":"v4","status":400,"error_type":"InvalidInput","reason":"feature \"tenure\" must be a number, got a string"}"#
                .to_string()
                + "\n"
        );
        assert_eq!(parse(&written), Ok(line));
    }

    #[test]
    fn prediction_lines_round_trip_with_probabilities_in_label_order() {
        let labels = ["z".to_string(), "a".to_string()];
        let probs = [0.25_f32, 0.75];
        let row = Probabilities::Row { labels: LabelKeys::Str(&labels), probs: &probs };
        let line = Line::Prediction(PredictionLine { id: Some(Cow::Owned(json!(7))), ..prediction(Some(row)) });
        let written = text(&line);
        assert_eq!(
            written.trim_end(),
            r#"{"mlambda":"prediction","request_id":"req-1","function_version":"3","model_version":"v4","id":7,"row":0,"rows":1,"prediction":1,"probability":0.75,"probabilities":{"z":0.25,"a":0.75},"latency_ms":0.5}"#
        );
        let Ok(Line::Prediction(read)) = parse(&written) else { panic!("{written}") };
        let pairs = vec![("z".to_string(), 0.25), ("a".to_string(), 0.75)];
        assert_eq!(read.probabilities, Some(Probabilities::Read(pairs.clone())));
        assert_eq!(read.probabilities.as_ref().map(|p| p.pairs().into_owned()), Some(pairs));
        assert_eq!((read.id.as_deref(), read.request_id.as_ref()), (Some(&json!(7)), "req-1"));
        // integer labels are written as string keys
        let ints = [0_i64, 1];
        let row = Probabilities::Row { labels: LabelKeys::Int(&ints), probs: &probs };
        assert!(text(&Line::Prediction(prediction(Some(row)))).contains(r#""probabilities":{"0":0.25,"1":0.75}"#));
    }

    #[test]
    fn predictions_keep_their_json_type() {
        let read = |p: &str| {
            let msg = format!(r#"{{"mlambda":"prediction","request_id":"r","function_version":"1","prediction":{p}}}"#);
            match parse(&msg) {
                Ok(Line::Prediction(l)) => l.prediction.map(Prediction::into_owned),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read("3"), Some(Prediction::Int(3)));
        assert_eq!(read("\"gold\""), Some(Prediction::Str("gold".into())));
        assert_eq!(read("2.5"), Some(Prediction::Value(2.5)));
        assert_eq!(read("null"), None);
        assert_eq!(read("1.0").map(|p| p.text()).as_deref(), Some("1.0"));
        assert_eq!(read("\"a\\\"b\"").map(|p| p.text()).as_deref(), Some("a\"b"));
    }

    #[test]
    fn old_and_partial_lines_are_read() {
        let Ok(Line::Prediction(l)) =
            parse(r#"2024-05-01T10:00:00Z	r1	INFO	{"mlambda":"prediction","request_id":"r1","function_version":"2"}"#)
        else {
            panic!()
        };
        assert_eq!((l.model_version, l.id, l.prediction, l.latency_ms, l.rows), (None, None, None, None, 0));
        let Ok(Line::Prediction(l)) = parse(
            r#"{"mlambda":"prediction","request_id":"r","function_version":"2","probabilities":{"0":null,"1":1.0}}"#,
        ) else {
            panic!()
        };
        assert!(l.probabilities.unwrap().pairs()[0].1.is_nan());
    }

    #[test]
    fn messages_are_classified() {
        assert_eq!(parse("START RequestId: r1 Version: 3"), Err(Skip::Other));
        assert_eq!(parse(r#"{"_aws":{"CloudWatchMetrics":[]},"Rows":1}"#), Err(Skip::Other));
        // the default EMF namespace is `mlambda`
        assert_eq!(parse(r#"{"_aws":{"CloudWatchMetrics":[{"Namespace":"mlambda"}]},"Rows":1}"#), Err(Skip::Other));
        assert_eq!(parse(r#"{"mlambda":"audit","x":1}"#), Err(Skip::Other));
        assert_eq!(parse(r#"{"mlambda":"prediction","request_id":1}"#), Err(Skip::Unreadable));
        assert_eq!(parse(r#"{"mlambda":"error","request_id":"r","function_version":"1"}"#), Err(Skip::Unreadable));
        assert_eq!(parse(r#"{"mlambda":"prediction", truncated"#), Err(Skip::Unreadable));
    }
}
