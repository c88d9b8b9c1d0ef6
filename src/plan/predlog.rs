//! The runtime's prediction log lines and the per-version accumulators `mlambda report` folds them into.
//!
//! A line is one answered row: `{"mlambda":"prediction","request_id":…,"function_version":"3","model_version":"v4",
//! "id":"C-1001","row":0,"rows":1,"prediction":1,"probability":0.81,"probabilities":{"0":0.19,"1":0.81},
//! "latency_ms":0.41}`. Lines are folded as they arrive, so memory grows with requests and labeled rows only.
use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Probability histograms have this many equal-width bins on [0, 1].
pub const BINS: usize = 10;

/// Class → probability in the order the runtime wrote them (the model's column order).
#[derive(Debug, Default)]
struct Ordered(Vec<(String, f64)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of class probabilities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    mlambda: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(borrow)]
    function_version: Cow<'a, str>,
    #[serde(default, borrow)]
    model_version: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    prediction: Option<serde_json::Value>,
    #[serde(default)]
    probability: Option<f64>,
    #[serde(default)]
    probabilities: Option<Ordered>,
    #[serde(default)]
    latency_ms: Option<f64>,
}

/// A label or id as text: strings as they are, numbers and booleans as JSON writes them.
fn text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `did the customer churn?` per id, from the outcomes CSV.
#[derive(Debug, Default, Clone)]
pub struct Outcomes {
    labels: HashMap<String, String>,
}

impl Outcomes {
    /// Parses `id,label` CSV text (a header line naming `id` and `label` first; no quoting beyond surrounding
    /// double quotes). The error names the line and what is wrong.
    pub fn parse(text: &str) -> Result<Outcomes, String> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or("is empty; it needs a header `id,label` and one row per id")?;
        let cols: Vec<String> = header.split(',').map(|c| unquote(c).to_ascii_lowercase()).collect();
        let (Some(id_col), Some(label_col)) =
            (cols.iter().position(|c| c == "id"), cols.iter().position(|c| c == "label"))
        else {
            return Err(format!("line 1 is `{header}`; the header must name the columns `id` and `label`"));
        };
        let mut labels = HashMap::new();
        for (i, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let (Some(id), Some(label)) = (cells.get(id_col), cells.get(label_col)) else {
                return Err(format!("line {} has {} columns, the header has {}", i + 1, cells.len(), cols.len()));
            };
            let (id, label) = (unquote(id), unquote(label));
            if id.is_empty() || label.is_empty() {
                return Err(format!("line {} has an empty id or label", i + 1));
            }
            labels.insert(id.to_string(), label.to_string());
        }
        Ok(Outcomes { labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, id: &str) -> Option<&str> {
        self.labels.get(id).map(String::as_str)
    }
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

/// Whether an outcome label means the positive class: the positive class's own label, else the usual spellings.
fn positive_outcome(label: &str, positive: &str, negative: Option<&str>) -> Option<bool> {
    if label == positive {
        return Some(true);
    }
    if Some(label) == negative {
        return Some(false);
    }
    match label.to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" | "yes" | "y" | "t" => Some(true),
        "0" | "0.0" | "false" | "no" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// One labeled row: the positive-class probability, the outcome, and whether the logged prediction was right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labeled {
    pub probability: f64,
    pub positive: bool,
    pub correct: bool,
}

/// Everything kept about one function version while the log streams by.
#[derive(Debug, Default)]
pub struct VersionAcc {
    /// How many rows named each model version (a version serves one, but a log can say otherwise).
    pub model_versions: BTreeMap<String, u64>,
    pub rows: u64,
    seen: HashSet<u64>,
    /// Distinct requests whose line had no usable latency.
    pub requests_without_latency: u64,
    /// One model latency per distinct request, in log order.
    pub latencies: Vec<f64>,
    /// Rows with a positive-class probability (binary) or a top-class probability (multiclass).
    pub scored: u64,
    pub histogram: [u64; BINS],
    pub probability_sum: f64,
    /// Binary rows whose prediction is the positive class.
    pub predicted_positive: u64,
    /// The binary positive class label (the second probability column), once seen.
    pub positive_label: Option<String>,
    pub negative_label: Option<String>,
    /// Predicted class → rows, for classifiers.
    pub classes: BTreeMap<String, u64>,
    /// Whether any row carried more than two class probabilities.
    pub multiclass: bool,
    /// Rows joined to an outcome, binary classifiers only.
    pub labeled: Vec<Labeled>,
    /// Rows joined to an outcome whose label did not say yes or no.
    pub unreadable_labels: u64,
    /// Multiclass rows joined to an outcome, and how many the logged prediction got right.
    pub labeled_multiclass: u64,
    pub correct_multiclass: u64,
}

impl VersionAcc {
    pub fn requests(&self) -> u64 {
        self.latencies.len() as u64 + self.requests_without_latency
    }

    /// The model version most rows named.
    pub fn model_version(&self) -> Option<&str> {
        self.model_versions.iter().max_by_key(|(_, n)| **n).map(|(m, _)| m.as_str())
    }
}

/// The fold over a whole log: per-version accumulators and what could not be read.
#[derive(Debug, Default)]
pub struct Collector {
    pub versions: BTreeMap<String, VersionAcc>,
    /// Lines that looked like prediction lines but did not parse.
    pub unreadable: u64,
    /// Lines that are not prediction lines (START/END/REPORT, EMF, the function's own output).
    pub other: u64,
    outcomes: Option<Outcomes>,
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Collector {
    pub fn new(outcomes: Option<Outcomes>) -> Collector {
        Collector { outcomes, ..Collector::default() }
    }

    pub fn has_outcomes(&self) -> bool {
        self.outcomes.is_some()
    }

    /// Folds one log message in.
    pub fn add(&mut self, message: &str) {
        let line = match Line::parse(message) {
            Ok(line) => line,
            Err(Skip::Other) => {
                self.other += 1;
                return;
            }
            Err(Skip::Unreadable) => {
                self.unreadable += 1;
                return;
            }
        };
        let acc = self.versions.entry(line.function_version.to_string()).or_default();
        let prediction = acc.record(&line);
        let id = line.id.as_ref().and_then(text);
        if let Some(label) = self.outcomes.as_ref().zip(id).and_then(|(o, id)| o.get(&id)) {
            acc.record_outcome(&line, &prediction, label);
        }
    }
}

/// Why a log message is not a prediction row.
enum Skip {
    /// START/END/REPORT, EMF, the function's own output, another mlambda line.
    Other,
    /// Looked like a prediction line and did not parse.
    Unreadable,
}

impl<'a> Line<'a> {
    /// Lambda may prefix a line or add a newline, so the JSON starts at the first `{`.
    fn parse(message: &'a str) -> Result<Line<'a>, Skip> {
        let start = message.find('{').ok_or(Skip::Other)?;
        let json = message[start..].trim_end();
        if !json.contains("\"mlambda\"") {
            return Err(Skip::Other);
        }
        match serde_json::from_str::<Line<'a>>(json) {
            Ok(line) if line.mlambda == "prediction" => Ok(line),
            Ok(_) => Err(Skip::Other),
            Err(_) => Err(Skip::Unreadable),
        }
    }
}

/// A row's prediction as the fold read it, which its outcome is then judged against.
struct Prediction {
    class: Option<String>,
    /// Binary rows: whether the prediction is the positive class.
    positive: bool,
    /// Whether the row carried class probabilities.
    classified: bool,
}

impl VersionAcc {
    /// Counts one prediction row: its request, latency, score and predicted class.
    fn record(&mut self, line: &Line<'_>) -> Prediction {
        self.rows += 1;
        if let Some(m) = &line.model_version {
            match self.model_versions.get_mut(m.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    self.model_versions.insert(m.to_string(), 1);
                }
            }
        }
        // 64-bit hashes stand in for request ids: a collision among 10^6 requests has odds of ~3e-8
        if self.seen.insert(hash(&line.request_id)) {
            match line.latency_ms {
                Some(l) if l.is_finite() => self.latencies.push(l),
                _ => self.requests_without_latency += 1,
            }
        }
        let class = line.prediction.as_ref().and_then(text);
        let probs: &[(String, f64)] = line.probabilities.as_ref().map_or(&[], |p| &p.0);
        self.multiclass |= probs.len() > 2;
        let score = match line.probability {
            Some(p) => Some(p),
            None if probs.len() > 2 => probs.iter().map(|p| p.1).reduce(f64::max),
            None => None,
        };
        if let Some(p) = score.filter(|p| p.is_finite()) {
            self.scored += 1;
            self.probability_sum += p;
            self.histogram[bin(p)] += 1;
        }
        if let (false, Some(c)) = (probs.is_empty(), &class) {
            *self.classes.entry(c.clone()).or_default() += 1;
        }
        if line.probability.is_some() && probs.len() == 2 && self.positive_label.is_none() {
            self.negative_label = Some(probs[0].0.clone());
            self.positive_label = Some(probs[1].0.clone());
        }
        let positive = match (&class, &self.positive_label, line.probability) {
            (Some(c), Some(pos), _) => c == pos,
            (_, _, Some(p)) => p >= 0.5,
            _ => false,
        };
        if line.probability.is_some() && positive {
            self.predicted_positive += 1;
        }
        Prediction { class, positive, classified: !probs.is_empty() }
    }

    /// Joins a row to its outcome: binary rows by the positive class, multiclass rows by the class itself.
    fn record_outcome(&mut self, line: &Line<'_>, prediction: &Prediction, label: &str) {
        if let Some(p) = line.probability {
            let pos = self.positive_label.as_deref().unwrap_or("1");
            match positive_outcome(label, pos, self.negative_label.as_deref()) {
                Some(positive) => {
                    self.labeled.push(Labeled { probability: p, positive, correct: prediction.positive == positive })
                }
                None => self.unreadable_labels += 1,
            }
        } else if prediction.classified {
            self.labeled_multiclass += 1;
            if prediction.class.as_deref() == Some(label) {
                self.correct_multiclass += 1;
            }
        }
    }
}

/// The histogram bin of a probability; 1.0 falls in the last bin.
pub fn bin(p: f64) -> usize {
    ((p.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(version: &str, req: &str, id: &str, row: u32, pred: u8, p: f64, latency: f64) -> String {
        format!(
            r#"{{"mlambda":"prediction","request_id":"{req}","function_version":"{version}","model_version":"v{version}","id":"{id}","row":{row},"rows":2,"prediction":{pred},"probability":{p},"probabilities":{{"0":{},"1":{p}}},"latency_ms":{latency}}}"#,
            1.0 - p
        )
    }

    #[test]
    fn rows_fold_per_version_with_one_latency_per_request() {
        let mut c = Collector::new(Some(Outcomes::parse("id,label\nA,1\nB,0\nC,yes\n").unwrap()));
        c.add(&line("3", "r1", "A", 0, 1, 0.8, 2.0));
        c.add(&(line("3", "r1", "B", 1, 1, 0.6, 2.0) + "\n"));
        c.add(&line("4", "r2", "C", 0, 0, 0.3, 1.5));
        c.add("START RequestId: r1 Version: 3");
        c.add(r#"{"_aws":{"CloudWatchMetrics":[]},"InferenceLatencyMs":2.0}"#);
        c.add(r#"{"mlambda":"prediction","request_id":1}"#);
        assert_eq!((c.other, c.unreadable), (2, 1));
        let v3 = &c.versions["3"];
        assert_eq!((v3.rows, v3.requests(), v3.latencies.clone()), (2, 1, vec![2.0]));
        assert_eq!(v3.model_version(), Some("v3"));
        assert_eq!(v3.histogram[8] + v3.histogram[6], 2);
        assert_eq!(v3.predicted_positive, 2);
        assert_eq!(v3.positive_label.as_deref(), Some("1"));
        assert_eq!(
            v3.labeled,
            [
                Labeled { probability: 0.8, positive: true, correct: true },
                Labeled { probability: 0.6, positive: false, correct: false }
            ]
        );
        let v4 = &c.versions["4"];
        assert_eq!(v4.labeled, [Labeled { probability: 0.3, positive: true, correct: false }]);
    }

    #[test]
    fn multiclass_rows_count_class_shares_and_top_probability() {
        let mut c = Collector::new(Some(Outcomes::parse("label,id\ngold,7\n").unwrap()));
        c.add(r#"{"mlambda":"prediction","request_id":"a","function_version":"2","id":7,"row":0,"rows":1,"prediction":"gold","probabilities":{"bronze":0.1,"silver":0.2,"gold":0.7},"latency_ms":1}"#);
        let v = &c.versions["2"];
        assert!(v.multiclass);
        assert_eq!(v.classes.get("gold"), Some(&1));
        assert_eq!(v.histogram[7], 1);
        assert_eq!((v.labeled_multiclass, v.correct_multiclass), (1, 1));
        assert!(v.labeled.is_empty());
    }

    #[test]
    fn outcomes_csv_errors_name_the_line() {
        assert!(Outcomes::parse("").unwrap_err().contains("empty"));
        assert!(Outcomes::parse("customer,churned\n").unwrap_err().contains("`id` and `label`"));
        assert!(Outcomes::parse("id,label\nA\n").unwrap_err().contains("line 2"));
        let o = Outcomes::parse("\"id\",\"label\"\n\"C-1\",\"1\"\n").unwrap();
        assert_eq!(o.get("C-1"), Some("1"));
    }

    #[test]
    fn bins_cover_the_closed_unit_interval() {
        assert_eq!((bin(0.0), bin(0.0999), bin(0.1), bin(1.0), bin(-0.5)), (0, 0, 1, 9, 0));
    }
}
