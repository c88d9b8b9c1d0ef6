//! Model checks before upload: reference-row parity, the manifest, and whether a version may be (re)written.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A prediction: a number (a regressor's value, an integer class label) or a string class label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Label {
    Number(f64),
    Text(String),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Number(n) => write!(f, "{n}"),
            Label::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// One output, as the reference file and the runtime give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub prediction: Label,
    /// P(second class), binary classifiers.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Each class label, written as a string, to its probability: classifiers of any class count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<BTreeMap<String, f64>>,
    /// An anomaly detector's score (`IsolationForest`, `OneClassSVM`: scikit-learn's `decision_function`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// `reference.json`: rows the model must reproduce, with the outputs it gave when it was exported.
/// Rows hold the request's values in `features` order: numbers, strings for string inputs, `null` for a
/// value the graph imputes. Other keys (the export script's own provenance, e.g. `sklearn`) are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reference {
    pub features: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub expected: Vec<Prediction>,
}

impl Reference {
    /// Shape rules: features are the model's request fields, every row has one value per feature, one
    /// expectation per row.
    pub fn check(&self, model_fields: &[String]) -> Result<(), String> {
        if self.features != model_fields {
            return Err(format!(
                "its features [{}] differ from the model's fields [{}] (`model.features`, or the graph's input names)",
                self.features.join(", "),
                model_fields.join(", ")
            ));
        }
        if self.rows.len() != self.expected.len() {
            return Err(format!("it has {} rows but {} expected outputs", self.rows.len(), self.expected.len()));
        }
        if let Some((i, r)) = self.rows.iter().enumerate().find(|(_, r)| r.len() != self.features.len()) {
            return Err(format!("row {i} has {} values, expected {}", r.len(), self.features.len()));
        }
        Ok(())
    }

    /// The rows as the JSON objects a client would send.
    pub fn objects(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows.iter().map(|r| self.features.iter().cloned().zip(r.iter().cloned()).collect()).collect()
    }
}

/// A reference row the model did not reproduce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub row: usize,
    pub expected: Prediction,
    pub got: Prediction,
    /// The largest absolute difference over prediction and probabilities (infinite for another label, or
    /// when one side lacks a probability the other has).
    pub diff: f64,
}

/// The parity check's result, recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parity {
    pub rows: usize,
    pub max_diff: f64,
    pub tolerance: f64,
}

fn label_diff(expected: &Label, got: &Label) -> f64 {
    match (expected, got) {
        (Label::Number(a), Label::Number(b)) => (a - b).abs(),
        (Label::Text(a), Label::Text(b)) if a == b => 0.0,
        _ => f64::INFINITY,
    }
}

fn diff(expected: &Prediction, got: &Prediction) -> f64 {
    let p = label_diff(&expected.prediction, &got.prediction);
    let q = match (expected.probability, got.probability) {
        (Some(a), Some(b)) => (a - b).abs(),
        (None, None) => 0.0,
        _ => f64::INFINITY,
    };
    // only what the reference holds is compared: references written before multiclass have no map
    let r = match (&expected.probabilities, &got.probabilities) {
        (None, _) => 0.0,
        (Some(e), Some(g)) => {
            e.iter().map(|(k, a)| g.get(k).map_or(f64::INFINITY, |b| (a - b).abs())).fold(0.0, f64::max)
        }
        (Some(_), None) => f64::INFINITY,
    };
    let s = match (expected.score, got.score) {
        (None, _) => 0.0,
        (Some(a), Some(b)) => (a - b).abs(),
        (Some(_), None) => f64::INFINITY,
    };
    // NaN anywhere is a mismatch, never a silent pass.
    if p.is_nan() || q.is_nan() || r.is_nan() || s.is_nan() {
        f64::INFINITY
    } else {
        p.max(q).max(r).max(s)
    }
}

/// Compares outputs row by row; mismatches are those whose difference exceeds `tolerance`.
pub fn compare(expected: &[Prediction], got: &[Prediction], tolerance: f64) -> (Parity, Vec<Mismatch>) {
    let mut max_diff = 0.0f64;
    let mut mismatches = Vec::new();
    for (row, (e, g)) in expected.iter().zip(got).enumerate() {
        let d = diff(e, g);
        max_diff = max_diff.max(d);
        if d > tolerance {
            mismatches.push(Mismatch { row, expected: e.clone(), got: g.clone(), diff: d });
        }
    }
    if got.len() != expected.len() {
        max_diff = f64::INFINITY;
    }
    (Parity { rows: expected.len().min(got.len()), max_diff, tolerance }, mismatches)
}

fn show(p: &Prediction) -> String {
    match p.probability {
        Some(q) => format!("prediction {} probability {q:.6}", p.prediction),
        None => format!("prediction {}", p.prediction),
    }
}

/// The first few mismatches as lines for an error message.
pub fn describe_mismatches(mismatches: &[Mismatch], limit: usize) -> String {
    let mut out: Vec<String> = mismatches
        .iter()
        .take(limit)
        .map(|m| format!("row {}: expected {}, got {} (diff {:.3e})", m.row, show(&m.expected), show(&m.got), m.diff))
        .collect();
    if mismatches.len() > limit {
        out.push(format!("… and {} more", mismatches.len() - limit));
    }
    out.join("; ")
}

/// `manifest.json` beside each model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub features: Vec<String>,
    pub sha256: String,
    pub size: u64,
    /// RFC 3339.
    pub created: String,
    pub mlambda_version: String,
    #[serde(default)]
    pub parity: Option<Parity>,
}

/// What to do with a version key, given what S3 already holds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum PushDecision {
    Upload,
    AlreadyUploaded,
    /// Versions are immutable: different bytes under an existing version are refused.
    Conflict {
        existing_sha256: Option<String>,
    },
}

impl fmt::Display for PushDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushDecision::Upload => write!(f, "upload"),
            PushDecision::AlreadyUploaded => write!(f, "already uploaded"),
            PushDecision::Conflict { .. } => write!(f, "refuse: the version holds different bytes"),
        }
    }
}

/// `existing` is the object's `sha256` metadata (outer `None`: no object; inner `None`: no metadata).
pub fn decide(existing: Option<Option<&str>>, local_sha256: &str) -> PushDecision {
    match existing {
        None => PushDecision::Upload,
        Some(Some(s)) if s.eq_ignore_ascii_case(local_sha256) => PushDecision::AlreadyUploaded,
        Some(other) => PushDecision::Conflict { existing_sha256: other.map(str::to_string) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(prediction: f64, probability: Option<f64>) -> Prediction {
        Prediction { prediction: Label::Number(prediction), probability, probabilities: None, score: None }
    }

    fn classes(label: &str, probs: &[(&str, f64)]) -> Prediction {
        Prediction {
            prediction: Label::Text(label.into()),
            probability: None,
            probabilities: Some(probs.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
            score: None,
        }
    }

    #[test]
    fn an_anomaly_detectors_score_is_compared_when_the_reference_holds_one() {
        let scored = |label: f64, score: f64| Prediction { score: Some(score), ..p(label, None) };
        let (parity, m) = compare(&[scored(-1.0, -0.02)], &[scored(-1.0, -0.0200001)], 1e-5);
        assert!(m.is_empty() && parity.max_diff < 1e-6, "{m:?}");
        let (_, m) = compare(&[scored(1.0, 0.05)], &[scored(1.0, 0.07)], 1e-5);
        assert_eq!(m.len(), 1, "another score never passes");
        let (_, m) = compare(&[scored(1.0, 0.05)], &[p(1.0, None)], 1.0);
        assert_eq!(m.len(), 1, "a missing score never passes");
    }

    #[test]
    fn string_labels_and_class_maps_are_compared_key_by_key() {
        let e = [classes("gold", &[("gold", 0.7), ("silver", 0.3)])];
        let (parity, m) = compare(&e, &[classes("gold", &[("gold", 0.7000001), ("silver", 0.2999999)])], 1e-5);
        assert!(m.is_empty() && parity.max_diff < 1e-6, "{m:?}");
        let (_, m) = compare(&e, &[classes("silver", &[("gold", 0.7), ("silver", 0.3)])], 1.0);
        assert_eq!(m.len(), 1, "another label never passes");
        let (_, m) = compare(&e, &[classes("gold", &[("gold", 0.7)])], 1.0);
        assert_eq!(m.len(), 1, "a missing class never passes");
        let text = describe_mismatches(&m, 1);
        assert!(text.contains("prediction \"gold\""), "{text}");
    }

    #[test]
    fn outputs_within_tolerance_pass_and_report_the_largest_difference() {
        let e = [p(1.0, Some(0.9)), p(0.0, Some(0.2))];
        let g = [p(1.0, Some(0.900001)), p(0.0, Some(0.2))];
        let (parity, mismatches) = compare(&e, &g, 1e-5);
        assert!(mismatches.is_empty());
        assert_eq!(parity.rows, 2);
        assert!((parity.max_diff - 1e-6).abs() < 1e-9, "{}", parity.max_diff);
    }

    #[test]
    fn a_wrong_class_or_probability_is_a_mismatch_with_its_row() {
        let e = [p(1.0, Some(0.9)), p(0.0, Some(0.2)), p(1.0, Some(0.7))];
        let g = [p(1.0, Some(0.9)), p(1.0, Some(0.2)), p(1.0, Some(0.71))];
        let (_, m) = compare(&e, &g, 1e-5);
        assert_eq!(m.iter().map(|m| m.row).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(m[0].diff, 1.0);
        let text = describe_mismatches(&m, 1);
        assert!(text.starts_with("row 1: expected prediction 0 probability 0.200000, got prediction 1"), "{text}");
        assert!(text.contains("and 1 more"), "{text}");
    }

    #[test]
    fn a_missing_probability_or_nan_never_passes() {
        let (_, m) = compare(&[p(1.0, Some(0.9))], &[p(1.0, None)], 1.0);
        assert_eq!(m.len(), 1);
        let (_, m) = compare(&[p(1.0, None)], &[p(f64::NAN, None)], 1.0);
        assert_eq!(m.len(), 1);
        let (parity, m) = compare(&[p(2.5, None)], &[p(2.5, None)], 1e-9);
        assert!(m.is_empty() && parity.max_diff == 0.0);
    }

    #[test]
    fn reference_shape_is_checked_against_the_config() {
        let r: Reference = serde_json::from_str(
            r#"{"features":["a","b"],"rows":[[1,2],[3]],"expected":[{"prediction":1},{"prediction":0}]}"#,
        )
        .unwrap();
        assert!(r.check(&["a".into(), "c".into()]).unwrap_err().contains("differ from the model's fields"));
        assert!(r.check(&["a".into(), "b".into()]).unwrap_err().contains("row 1 has 1 values"));
        let ok: Reference = serde_json::from_str(
            r#"{"features":["a"],"rows":[[1],[2]],"expected":[{"prediction":1,"probability":0.5},{"prediction":0}]}"#,
        )
        .unwrap();
        assert!(ok.check(&["a".into()]).is_ok());
        assert_eq!(ok.objects()[1]["a"], serde_json::json!(2));
    }

    #[test]
    fn versions_are_immutable() {
        assert_eq!(decide(None, "ab"), PushDecision::Upload);
        assert_eq!(decide(Some(Some("AB")), "ab"), PushDecision::AlreadyUploaded);
        assert_eq!(decide(Some(Some("cd")), "ab"), PushDecision::Conflict { existing_sha256: Some("cd".into()) });
        assert_eq!(decide(Some(None), "ab"), PushDecision::Conflict { existing_sha256: None });
    }
}
