//! The runtime's log lines folded into per-version accumulators for `mlambda report`.
//!
//! The lines' schema is the runtime's own ([`mlambda_runtime::logline`]): a prediction line per answered row,
//! an error line per failed invocation. A batch run's output is folded the same way: its `out/` parts hold the
//! same prediction lines, and each row its `failures/` parts hold counts as one failed answer. Lines are folded
//! as they arrive, so memory grows with requests, labeled rows and (bounded) distinct error reasons only.
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use mlambda_runtime::batch::FailedRow;
use mlambda_runtime::logline::{self, ErrorLine, Line, PredictionLine, Skip};

/// Probability histograms have this many equal-width bins on [0, 1].
pub const BINS: usize = 10;

/// Distinct error reasons kept per version; the rest are counted under [`OTHER_REASONS`].
pub const MAX_REASONS: usize = 1_000;
/// The reason errors are counted under once a version has [`MAX_REASONS`] distinct ones.
pub const OTHER_REASONS: &str = "other reasons";

/// An id as text: strings as they are, numbers and booleans as JSON writes them.
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
    labels: HashMap<String, Outcome>,
}

/// One id's outcome, and its place in the file: a number that stands for the id, so pairing two runs' rows
/// keeps four bytes per row instead of a copy of every id.
#[derive(Debug, Clone)]
struct Outcome {
    index: u32,
    label: String,
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
            let index = u32::try_from(labels.len())
                .map_err(|_| format!("has more than {} ids; split it and report on each part", u32::MAX))?;
            // a repeated id keeps its first index and takes its last label, as a plain map would
            labels
                .entry(id.to_string())
                .and_modify(|o: &mut Outcome| o.label = label.to_string())
                .or_insert(Outcome { index, label: label.to_string() });
        }
        Ok(Outcomes { labels })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The id's label and its index in the file.
    fn get(&self, id: &str) -> Option<(&str, u32)> {
        self.labels.get(id).map(|o| (o.label.as_str(), o.index))
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
    /// With [`Collector::pairing`]: each labeled row's outcome index, beside `labeled`, which is what pairs
    /// the rows of two versions scored on the same ids.
    pub labeled_ids: Vec<u32>,
    /// Rows joined to an outcome whose label did not say yes or no.
    pub unreadable_labels: u64,
    /// Multiclass rows joined to an outcome, and how many the logged prediction got right.
    pub labeled_multiclass: u64,
    pub correct_multiclass: u64,
    /// Error lines with a 4xx status: requests answered as the caller's mistake.
    pub client_errors: u64,
    /// Error lines with a 5xx status: requests the model failed.
    pub model_errors: u64,
    /// Model versions the error lines named, for a version that answered no row at all.
    error_model_versions: BTreeMap<String, u64>,
    /// (status, error type, normalised reason) → errors; at most [`MAX_REASONS`] distinct reasons.
    reasons: HashMap<(u16, String, String), u64>,
}

/// One reason failed requests gave, and how many gave it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErrorReason {
    pub status: u16,
    pub error_type: String,
    pub reason: String,
    pub count: u64,
}

impl VersionAcc {
    pub fn requests(&self) -> u64 {
        self.latencies.len() as u64 + self.requests_without_latency
    }

    /// The model version most rows named, else (a version that only failed) the one most errors named.
    pub fn model_version(&self) -> Option<&str> {
        most_named(&self.model_versions).or_else(|| most_named(&self.error_model_versions))
    }

    /// The `n` most frequent error reasons, most frequent first (ties by reason text).
    pub fn top_errors(&self, n: usize) -> Vec<ErrorReason> {
        let mut all: Vec<ErrorReason> = self
            .reasons
            .iter()
            .map(|((status, error_type, reason), count)| ErrorReason {
                status: *status,
                error_type: error_type.clone(),
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        all.sort_by(|a, b| {
            (b.count, &a.reason, a.status, &a.error_type).cmp(&(a.count, &b.reason, b.status, &b.error_type))
        });
        all.truncate(n);
        all
    }
}

/// The fold over a whole log: per-version accumulators and what could not be read.
#[derive(Debug, Default)]
pub struct Collector {
    pub versions: BTreeMap<String, VersionAcc>,
    /// Lines tagged as prediction or error lines that did not parse.
    pub unreadable: u64,
    /// Lines that are neither (START/END/REPORT, EMF, the function's own output).
    pub other: u64,
    outcomes: Option<Outcomes>,
    /// Whether labeled rows keep their outcome index (`VersionAcc::labeled_ids`).
    pairing: bool,
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

    /// A collector whose labeled rows also keep which outcome they joined, so two versions scored on the same
    /// ids can be compared row by row (a backtest's paired test).
    pub fn pairing(outcomes: Outcomes) -> Collector {
        Collector { outcomes: Some(outcomes), pairing: true, ..Collector::default() }
    }

    pub fn has_outcomes(&self) -> bool {
        self.outcomes.is_some()
    }

    /// Runs `f` on the version's accumulator, creating it (and allocating its key) only on its first line.
    fn fold(&mut self, function_version: &str, f: impl FnOnce(&mut VersionAcc, Option<&Outcomes>)) {
        match self.versions.get_mut(function_version) {
            Some(acc) => f(acc, self.outcomes.as_ref()),
            None => {
                let mut acc = VersionAcc::default();
                f(&mut acc, self.outcomes.as_ref());
                self.versions.insert(function_version.to_string(), acc);
            }
        }
    }

    /// Folds one log message in.
    pub fn add(&mut self, message: &str) {
        match logline::parse(message) {
            Ok(Line::Prediction(line)) if line.shadow => self.other += 1,
            Ok(Line::Prediction(line)) => self.add_prediction(&line),
            Ok(Line::Error(line)) => self.fold(&line.function_version, |acc, _| acc.record_error(&line)),
            // shadow traffic is no caller's: it never counts toward a version's live evidence
            Ok(Line::ShadowError(_)) => self.other += 1,
            Err(Skip::Other) => self.other += 1,
            Err(Skip::Unreadable) => self.unreadable += 1,
        }
    }

    /// Folds one answered row in, joined to its outcome when there is one.
    pub fn add_prediction(&mut self, line: &PredictionLine<'_>) {
        let pairing = self.pairing;
        self.fold(&line.function_version, |acc, outcomes| {
            let prediction = acc.record(line);
            let id = line.id.as_deref().and_then(text);
            if let Some((label, index)) = outcomes.zip(id).and_then(|(o, id)| o.get(&id)) {
                if acc.record_outcome(line, &prediction, label) && pairing {
                    acc.labeled_ids.push(index);
                }
            }
        });
    }

    /// Folds one line of a batch run's `out/` part in: a prediction line, tagged or not (a blank line is
    /// skipped, anything else that does not parse is counted as unreadable).
    pub fn add_scored(&mut self, json: &str) {
        let json = json.trim();
        if json.is_empty() {
            return;
        }
        match serde_json::from_str::<PredictionLine>(json) {
            Ok(line) => self.add_prediction(&line),
            Err(_) => self.unreadable += 1,
        }
    }

    /// Folds one row a batch run of `function_version` failed on in, as one failed answer with its reason.
    pub fn add_failed(&mut self, function_version: &str, row: &FailedRow) {
        let line = ErrorLine {
            request_id: row.slice.as_str().into(),
            function_version: function_version.into(),
            model_version: None,
            status: row.status,
            error_type: row.error_type.as_str().into(),
            reason: row.reason.as_str().into(),
        };
        self.fold(function_version, |acc, _| acc.record_error(&line));
    }
}

/// A shadowed row: the hash of its correlation id (as request ids, 64 bits stand in for the text) and its row.
pub type PairKey = (u64, u64);

/// One version's answer to one row of a shadowed request, as much of it as the pairing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Index into the collector's versions.
    version: u32,
    /// The row's `MODEL_ID_FIELD` value as text, which outcomes are joined on.
    pub id: Option<String>,
    /// The predicted class, for classifiers (a regressor's value is `value`).
    pub label: Option<String>,
    pub value: Option<f64>,
    /// P(positive class) when `binary`, else the top class's probability.
    pub probability: Option<f64>,
    pub binary: bool,
    /// Multiclass only: every class's probability, in the line's order.
    pub probabilities: Option<Box<[(String, f64)]>>,
    /// The request's model run time, the same on each of its rows.
    pub latency_ms: Option<f64>,
}

/// Why copies of requests to one shadow target failed, by the side that failed.
#[derive(Debug, Default)]
pub struct ShadowErrors {
    /// The shadow target could not answer the copy (its `function_version` is the target's).
    pub answer_failures: u64,
    /// The primary could not deliver the copy: throttled, refused, Invoke unreachable.
    pub delivery_failures: u64,
    /// (answered by the target?, reason) → failures; at most [`MAX_REASONS`] distinct reasons.
    reasons: HashMap<(bool, String), u64>,
}

/// One reason shadow copies failed, which side failed, and how many times.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShadowErrorReason {
    /// `candidate` (the shadow could not answer) or `delivery` (the primary could not send the copy).
    pub side: &'static str,
    pub reason: String,
    pub count: u64,
}

impl ShadowErrors {
    fn record(&mut self, answered: bool, reason: &str) {
        if answered {
            self.answer_failures += 1;
        } else {
            self.delivery_failures += 1;
        }
        let key = (answered, reason.to_string());
        if let Some(n) = self.reasons.get_mut(&key) {
            *n += 1;
            return;
        }
        let key = if self.reasons.len() < MAX_REASONS { key } else { (answered, OTHER_REASONS.to_string()) };
        *self.reasons.entry(key).or_default() += 1;
    }

    pub fn count(&self) -> u64 {
        self.answer_failures + self.delivery_failures
    }

    /// The `n` most frequent reasons, most frequent first (ties by reason text), and the most frequent reason
    /// the shadow itself gave.
    pub fn top(&self, n: usize) -> Vec<ShadowErrorReason> {
        let mut all: Vec<ShadowErrorReason> = self
            .reasons
            .iter()
            .map(|((answered, reason), count)| ShadowErrorReason {
                side: if *answered { "candidate" } else { "delivery" },
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        all.sort_by(|a, b| (b.count, &a.reason, a.side).cmp(&(a.count, &b.reason, b.side)));
        all.truncate(n);
        all
    }
}

/// The qualifier of a qualified function ARN (`…:function:churn:4` → `4`), when it is a version.
fn arn_version(arn: &str) -> Option<&str> {
    let (_, q) = arn.rsplit_once(':')?;
    (!q.is_empty() && q.bytes().all(|b| b.is_ascii_digit())).then_some(q)
}

/// The fold of a log for `report --shadow`: every answer that carries a correlation id, on its side (the
/// primary's copied request, or the shadow's answer to the copy), and every failed copy. Lines of either side
/// may arrive first, so both are kept until [`ShadowCollector::pair`]; memory grows with shadowed rows.
#[derive(Debug, Default)]
pub struct ShadowCollector {
    outcomes: Option<Outcomes>,
    /// Versions seen, interned: an answer keeps an index, not a string.
    versions: Vec<String>,
    /// Per version: its binary lines' (negative, positive) class labels, once seen.
    binary_labels: Vec<Option<(String, String)>>,
    /// Per version: how many rows named each model version.
    model_versions: Vec<BTreeMap<String, u64>>,
    primary: HashMap<PairKey, Answer>,
    shadow: HashMap<PairKey, Answer>,
    /// Lines whose (correlation id, row) was already seen on their side, e.g. a retried asynchronous copy;
    /// the first is kept.
    pub duplicates: u64,
    /// Failed copies, by the version of the shadow target they were meant for.
    pub errors: BTreeMap<String, ShadowErrors>,
    /// Correlation ids with a failed copy (hashed), which explains a primary line that found no partner.
    errored: HashSet<u64>,
    /// Lines tagged as ours that did not parse.
    pub unreadable: u64,
    /// Everything else: live answers without a correlation id, error lines, START/END/REPORT, EMF.
    pub other: u64,
}

/// The rows two versions both answered, what found no partner, and what else the pairing knows.
#[derive(Debug, Default)]
pub struct Shadowed {
    /// In a fixed order (the correlation id's hash, then the row), so every figure is the same on every run.
    pub pairs: Vec<Pair>,
    /// The baseline's copied rows that no shadow answered, and how many of them had a failed copy.
    pub primary_unmatched: u64,
    pub primary_unmatched_errored: u64,
    /// The candidate's shadow answers whose primary line is not in the window.
    pub shadow_unmatched: u64,
    /// Rows paired between other versions (another primary or another shadow target in the window), left out.
    pub other_pairs: u64,
    /// Lines seen twice for the same row on the same side (any version), the first kept.
    pub duplicates: u64,
    /// Distinct copied requests: the baseline's (primary lines), and the ones the candidate answered.
    pub baseline_requests: u64,
    pub candidate_requests: u64,
    /// One model latency per request, ascending: the baseline's copied requests, the candidate's answers.
    pub baseline_latencies: Vec<f64>,
    pub candidate_latencies: Vec<f64>,
    pub baseline_model: Option<String>,
    pub candidate_model: Option<String>,
    /// The candidate's failed copies.
    pub errors: ShadowErrors,
    /// Unpaired rows with an outcome, per side.
    pub unpaired_labeled: (u64, u64),
    /// Paired rows whose outcome label was neither the positive nor the negative class.
    pub unreadable_labels: u64,
}

/// One row both versions answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub key: PairKey,
    /// The row's id (the primary's, else the shadow's).
    pub id: Option<String>,
    pub baseline: Answer,
    pub candidate: Answer,
    /// Whether the row's outcome was the positive class, for binary answers joined to an outcome.
    pub outcome: Option<bool>,
}

impl ShadowCollector {
    pub fn new(outcomes: Option<Outcomes>) -> ShadowCollector {
        ShadowCollector { outcomes, ..ShadowCollector::default() }
    }

    pub fn has_outcomes(&self) -> bool {
        self.outcomes.is_some()
    }

    fn intern(&mut self, version: &str) -> u32 {
        if let Some(i) = self.versions.iter().position(|v| v == version) {
            return i as u32;
        }
        self.versions.push(version.to_string());
        self.binary_labels.push(None);
        self.model_versions.push(BTreeMap::new());
        (self.versions.len() - 1) as u32
    }

    /// Folds one log message in.
    pub fn add(&mut self, message: &str) {
        match logline::parse(message) {
            Ok(Line::Prediction(line)) => match line.correlation_id.as_deref() {
                Some(c) => self.add_answer(&line, c),
                // a live answer to a request that was not copied
                None => self.other += 1,
            },
            Ok(Line::ShadowError(line)) => {
                let target = arn_version(&line.target).unwrap_or(&line.function_version);
                let answered = line.function_version == target;
                self.errors.entry(target.to_string()).or_default().record(answered, &line.reason);
                self.errored.insert(hash(&line.correlation_id));
            }
            Ok(Line::Error(_)) | Err(Skip::Other) => self.other += 1,
            Err(Skip::Unreadable) => self.unreadable += 1,
        }
    }

    fn add_answer(&mut self, line: &PredictionLine<'_>, correlation_id: &str) {
        let v = self.intern(&line.function_version);
        let slot = v as usize;
        if let Some(m) = &line.model_version {
            count(&mut self.model_versions[slot], m);
        }
        let pairs = line.probabilities.as_ref().map(|p| p.pairs());
        let probs: &[(String, f64)] = pairs.as_deref().unwrap_or_default();
        let binary = line.probability.is_some();
        if binary && probs.len() == 2 && self.binary_labels[slot].is_none() {
            self.binary_labels[slot] = Some((probs[0].0.clone(), probs[1].0.clone()));
        }
        let probability = match line.probability {
            Some(p) => Some(p),
            None if probs.len() > 2 => probs.iter().map(|p| p.1).reduce(f64::max),
            None => None,
        };
        let (label, value) = match &line.prediction {
            Some(logline::Prediction::Value(x)) if probs.is_empty() => (None, Some(*x)),
            Some(p) => (Some(p.text()), None),
            None => (None, None),
        };
        let answer = Answer {
            version: v,
            id: line.id.as_deref().and_then(text),
            label,
            value: value.filter(|x| x.is_finite()),
            probability: probability.filter(|p| p.is_finite()),
            binary,
            probabilities: (probs.len() > 2).then(|| probs.to_vec().into_boxed_slice()),
            latency_ms: line.latency_ms.filter(|l| l.is_finite()),
        };
        let key = (hash(correlation_id), line.row as u64);
        let side = if line.shadow { &mut self.shadow } else { &mut self.primary };
        match side.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => self.duplicates += 1,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(answer);
            }
        }
    }

    /// The shadow targets in the window, with how many rows they answered and copies to them that failed, most
    /// first.
    pub fn shadow_versions(&self) -> Vec<(String, u64)> {
        let mut n: BTreeMap<&str, u64> = BTreeMap::new();
        for a in self.shadow.values() {
            *n.entry(&self.versions[a.version as usize]).or_default() += 1;
        }
        for (v, e) in &self.errors {
            *n.entry(v).or_default() += e.count();
        }
        let mut out: Vec<(String, u64)> = n.into_iter().filter(|(_, k)| *k > 0).map(|(v, k)| (v.into(), k)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The primary `candidate` shadowed: the version whose copied rows it answered most often, else (it answered
    /// none) the version that wrote the most copied rows.
    pub fn primary_of(&self, candidate: &str) -> Option<String> {
        let c = self.versions.iter().position(|v| v == candidate).map(|i| i as u32);
        let mut partners: BTreeMap<u32, u64> = BTreeMap::new();
        for (key, a) in &self.shadow {
            if Some(a.version) == c {
                if let Some(p) = self.primary.get(key) {
                    *partners.entry(p.version).or_default() += 1;
                }
            }
        }
        if partners.is_empty() {
            for a in self.primary.values() {
                *partners.entry(a.version).or_default() += 1;
            }
        }
        // the most rows; the lowest index (the version seen first) on a tie
        let best = partners.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        self.versions.get(*best.0 as usize).cloned()
    }

    fn model_of(&self, version: Option<u32>) -> Option<String> {
        version.and_then(|v| most_named(&self.model_versions[v as usize])).map(str::to_string)
    }

    /// Pairs the `baseline`'s copied rows with the `candidate`'s answers to them on (correlation id, row), and
    /// joins each pair to its outcome.
    pub fn pair(mut self, baseline: &str, candidate: &str) -> Shadowed {
        let find = |v: &str| self.versions.iter().position(|x| x == v).map(|i| i as u32);
        let (b, c) = (find(baseline), find(candidate));
        let mut out = Shadowed {
            baseline_model: self.model_of(b),
            candidate_model: self.model_of(c),
            errors: self.errors.remove(candidate).unwrap_or_default(),
            duplicates: self.duplicates,
            ..Shadowed::default()
        };
        let has_outcome = |o: &Option<Outcomes>, a: &Answer| {
            o.as_ref().zip(a.id.as_deref()).is_some_and(|(o, id)| o.get(id).is_some())
        };
        let (mut b_requests, mut c_requests) = (HashSet::new(), HashSet::new());
        for (key, a) in &self.primary {
            if Some(a.version) != b {
                continue;
            }
            if b_requests.insert(key.0) {
                out.baseline_latencies.extend(a.latency_ms);
            }
            if !self.shadow.contains_key(key) {
                out.primary_unmatched += 1;
                out.primary_unmatched_errored += u64::from(self.errored.contains(&key.0));
                out.unpaired_labeled.0 += u64::from(has_outcome(&self.outcomes, a));
            }
        }
        let mut shadow = std::mem::take(&mut self.shadow);
        for (key, s) in shadow.drain() {
            if Some(s.version) == c && c_requests.insert(key.0) {
                out.candidate_latencies.extend(s.latency_ms);
            }
            let Some(p) = self.primary.remove(&key) else {
                if Some(s.version) == c {
                    out.shadow_unmatched += 1;
                    out.unpaired_labeled.1 += u64::from(has_outcome(&self.outcomes, &s));
                }
                continue;
            };
            if Some(p.version) != b || Some(s.version) != c {
                out.other_pairs += 1;
                continue;
            }
            let id = p.id.clone().or_else(|| s.id.clone());
            let outcome = self.outcome(&p, &s, id.as_deref(), &mut out.unreadable_labels);
            out.pairs.push(Pair { key, id, baseline: p, candidate: s, outcome });
        }
        out.pairs.sort_by_key(|p| p.key);
        out.baseline_latencies.sort_by(f64::total_cmp);
        out.candidate_latencies.sort_by(f64::total_cmp);
        (out.baseline_requests, out.candidate_requests) = (b_requests.len() as u64, c_requests.len() as u64);
        out
    }

    /// The outcome of a pair of binary answers, by the baseline's positive class.
    fn outcome(&self, b: &Answer, c: &Answer, id: Option<&str>, unreadable: &mut u64) -> Option<bool> {
        let label = self.outcomes.as_ref().zip(id).and_then(|(o, id)| o.get(id))?.0;
        if !(b.binary && c.binary) || b.probability.is_none() || c.probability.is_none() {
            return None;
        }
        let labels = self.binary_labels[b.version as usize].as_ref();
        let positive = labels.map_or("1", |l| l.1.as_str());
        let read = positive_outcome(label, positive, labels.map(|l| l.0.as_str()));
        *unreadable += u64::from(read.is_none());
        read
    }
}

/// A reason without its batch row's prefix (`instance 17: `), so one bad field in many requests is one reason.
fn normalise(reason: &str) -> &str {
    let Some(rest) = reason.strip_prefix("instance ") else { return reason };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return reason;
    }
    match rest[digits..].strip_prefix(": ") {
        Some(tail) => tail,
        None => reason,
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
    fn record(&mut self, line: &PredictionLine<'_>) -> Prediction {
        self.rows += 1;
        if let Some(m) = &line.model_version {
            count(&mut self.model_versions, m);
        }
        // 64-bit hashes stand in for request ids: a collision among 10^6 requests has odds of ~3e-8
        if self.seen.insert(hash(&line.request_id)) {
            match line.latency_ms {
                Some(l) if l.is_finite() => self.latencies.push(l),
                _ => self.requests_without_latency += 1,
            }
        }
        let class = line.prediction.as_ref().map(|p| p.text());
        let pairs = line.probabilities.as_ref().map(|p| p.pairs());
        let probs: &[(String, f64)] = pairs.as_deref().unwrap_or_default();
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
    /// True when the row joined `labeled`.
    fn record_outcome(&mut self, line: &PredictionLine<'_>, prediction: &Prediction, label: &str) -> bool {
        if let Some(p) = line.probability {
            let pos = self.positive_label.as_deref().unwrap_or("1");
            match positive_outcome(label, pos, self.negative_label.as_deref()) {
                Some(positive) => {
                    self.labeled.push(Labeled { probability: p, positive, correct: prediction.positive == positive });
                    return true;
                }
                None => self.unreadable_labels += 1,
            }
        } else if prediction.classified {
            self.labeled_multiclass += 1;
            if prediction.class.as_deref() == Some(label) {
                self.correct_multiclass += 1;
            }
        }
        false
    }

    /// Counts one failed request by its status class and reason; it adds no row, latency or request.
    fn record_error(&mut self, line: &ErrorLine<'_>) {
        match line.status {
            400..=499 => self.client_errors += 1,
            500.. => self.model_errors += 1,
            // not an answer the runtime gives; kept among the reasons, in neither count
            _ => {}
        }
        if let Some(m) = &line.model_version {
            count(&mut self.error_model_versions, m);
        }
        let reason = normalise(&line.reason);
        let key = (line.status, line.error_type.to_string(), reason.to_string());
        if let Some(n) = self.reasons.get_mut(&key) {
            *n += 1;
            return;
        }
        // the overflow buckets are one per status and error type, which the runtime draws from a handful
        let key = if self.reasons.len() < MAX_REASONS { key } else { (key.0, key.1, OTHER_REASONS.to_string()) };
        *self.reasons.entry(key).or_default() += 1;
    }
}

/// The key with the largest count.
fn most_named(counts: &BTreeMap<String, u64>) -> Option<&str> {
    counts.iter().max_by_key(|(_, n)| **n).map(|(m, _)| m.as_str())
}

/// Adds one to `key`'s count, allocating the key only the first time.
fn count(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
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
        assert_eq!(o.get("C-1"), Some(("1", 0)));
        let o = Outcomes::parse("id,label\nA,1\nB,0\nA,0\n").unwrap();
        assert_eq!((o.len(), o.get("A"), o.get("B")), (2, Some(("0", 0)), Some(("0", 1))));
    }

    #[test]
    fn batch_parts_fold_like_log_lines_and_pairing_keeps_the_outcome_index() {
        let mut c = Collector::pairing(Outcomes::parse("id,label\nA,1\nB,0\nC,1\n").unwrap());
        // an `out/` line need not carry the `mlambda` tag
        let bare = |id: &str, p: f64| {
            line("3", "part-00000", id, 0, u8::from(p >= 0.5), p, 2.0).replace(r#""mlambda":"prediction","#, "")
        };
        c.add_scored(&bare("C", 0.7));
        c.add_scored(&line("3", "part-00001", "A", 0, 1, 0.8, 2.0));
        c.add_scored(&bare("Z", 0.1));
        c.add_scored("");
        c.add_scored("{not json");
        let failed = FailedRow {
            id: Some(serde_json::json!("D")),
            slice: "part-00001".into(),
            row: 3,
            status: 400,
            error_type: "InvalidInput".into(),
            reason: "feature \"tenure\" must be a number, got a string".into(),
        };
        c.add_failed("3", &failed);
        assert_eq!((c.unreadable, c.versions.len()), (1, 1));
        let v = &c.versions["3"];
        assert_eq!((v.rows, v.requests(), v.client_errors), (3, 2, 1));
        assert_eq!(v.labeled.len(), 2);
        assert_eq!(v.labeled_ids, [2, 0]);
        assert_eq!(v.top_errors(1)[0].reason, "feature \"tenure\" must be a number, got a string");
        // without pairing, no index is kept
        let mut c = Collector::new(Some(Outcomes::parse("id,label\nA,1\n").unwrap()));
        c.add_scored(&line("3", "r", "A", 0, 1, 0.8, 2.0));
        assert_eq!((c.versions["3"].labeled.len(), c.versions["3"].labeled_ids.len()), (1, 0));
    }

    fn error(version: &str, req: &str, status: u16, error_type: &str, reason: &str) -> String {
        let line = ErrorLine {
            request_id: req.into(),
            function_version: version.into(),
            model_version: Some(format!("v{version}").into()),
            status,
            error_type: error_type.into(),
            reason: reason.into(),
        };
        let mut out = Vec::new();
        Line::Error(line).write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn error_lines_count_per_version_and_group_their_reasons() {
        let mut c = Collector::new(None);
        c.add(&line("3", "r1", "A", 0, 1, 0.8, 2.0));
        for i in 0..3 {
            c.add(&error(
                "3",
                &format!("e{i}"),
                400,
                "InvalidInput",
                &format!("instance {i}: missing required features: tenure"),
            ));
        }
        c.add(&error("3", "e3", 400, "InvalidInput", "missing required features: tenure"));
        c.add(&error("3", "e4", 400, "InvalidInput", "request body is not valid JSON: EOF while parsing"));
        c.add(&error("3", "e5", 500, "ModelError", "the graph produced 1 values for 2 rows"));
        c.add(&error("3", "e6", 400, "InvalidInput", "\"instances\" is empty: send at least one row"));
        // Lambda's prefix, as the log stream carries it
        c.add(&format!("2024-05-01T10:00:00Z\te7\tINFO\t{}", error("4", "e7", 400, "InvalidInput", "x")));
        assert_eq!((c.other, c.unreadable), (0, 0));
        let v3 = &c.versions["3"];
        assert_eq!((v3.client_errors, v3.model_errors), (6, 1));
        // error lines add no row, latency or request
        assert_eq!((v3.rows, v3.requests(), v3.latencies.clone()), (1, 1, vec![2.0]));
        let reason = |status, error_type: &str, reason: &str, count| ErrorReason {
            status,
            error_type: error_type.into(),
            reason: reason.into(),
            count,
        };
        assert_eq!(
            v3.top_errors(3),
            [
                reason(400, "InvalidInput", "missing required features: tenure", 4),
                reason(400, "InvalidInput", "\"instances\" is empty: send at least one row", 1),
                reason(400, "InvalidInput", "request body is not valid JSON: EOF while parsing", 1),
            ]
        );
        assert_eq!(v3.top_errors(10).len(), 4);
        assert_eq!(v3.top_errors(10)[3], reason(500, "ModelError", "the graph produced 1 values for 2 rows", 1));
        // a version that only failed still says which model it served
        let v4 = &c.versions["4"];
        assert_eq!((v4.client_errors, v4.rows, v4.model_version()), (1, 0, Some("v4")));
        assert_eq!(v3.model_version(), Some("v3"));
    }

    #[test]
    fn distinct_reasons_are_bounded() {
        let mut c = Collector::new(None);
        for i in 0..MAX_REASONS + 50 {
            c.add(&error("1", "r", 400, "InvalidInput", &format!("request body is {i} bytes; the limit is 6 MB")));
        }
        c.add(&error("1", "r", 500, "ModelError", "late failure"));
        c.add(&error("1", "r", 400, "InvalidInput", "request body is 0 bytes; the limit is 6 MB"));
        let v = &c.versions["1"];
        assert_eq!(v.reasons.len(), MAX_REASONS + 2, "the kept reasons and one overflow per status and type");
        let top = v.top_errors(2);
        assert_eq!((top[0].reason.as_str(), top[0].status, top[0].count), (OTHER_REASONS, 400, 50));
        assert_eq!((top[1].reason.as_str(), top[1].count), ("request body is 0 bytes; the limit is 6 MB", 2));
        assert!(v.top_errors(usize::MAX).iter().any(|r| r.reason == OTHER_REASONS && r.status == 500 && r.count == 1));
        assert_eq!((v.client_errors, v.model_errors), (MAX_REASONS as u64 + 51, 1));
    }

    #[test]
    fn reasons_lose_only_the_batch_row_prefix() {
        assert_eq!(
            normalise("instance 17: feature \"a\" must be a number, got a string"),
            "feature \"a\" must be a number, got a string"
        );
        assert_eq!(
            normalise("instance 3 must be an object of features, got a string"),
            "instance 3 must be an object of features, got a string"
        );
        assert_eq!(normalise("instance : x"), "instance : x");
        assert_eq!(normalise("missing required features: a"), "missing required features: a");
    }

    #[test]
    fn a_broken_error_line_is_unreadable() {
        let mut c = Collector::new(None);
        c.add(r#"{"mlambda":"error","request_id":"r","function_version":"1","status":"bad"}"#);
        assert_eq!((c.unreadable, c.versions.len()), (1, 0));
    }

    /// A prediction line of a shadowed request: the primary's (`shadow: false`) or the shadow's answer to the copy.
    fn copied(version: &str, correlation: &str, shadow: bool, id: &str, row: u32, p: f64) -> String {
        let base = line(version, &format!("req-{version}-{correlation}"), id, row, u8::from(p >= 0.5), p, 1.5);
        let extra = format!(r#""correlation_id":"{correlation}","shadow":{shadow},"row""#);
        base.replacen(r#""row""#, &extra, 1)
    }

    fn shadow_error(correlation: &str, version: &str, target: &str, reason: &str) -> String {
        let line = logline::ShadowErrorLine {
            correlation_id: correlation.into(),
            function_version: version.into(),
            target: format!("arn:aws:lambda:us-east-1:123456789012:function:churn:{target}").into(),
            reason: reason.into(),
        };
        let mut out = Vec::new();
        Line::ShadowError(line).write_to(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn shadow_lines_and_failed_copies_stay_out_of_the_live_evidence() {
        let mut c = Collector::new(None);
        c.add(&copied("3", "c1", false, "A", 0, 0.8));
        c.add(&copied("4", "c1", true, "A", 0, 0.7));
        c.add(&shadow_error("c2", "3", "4", "throttled"));
        assert_eq!((c.other, c.versions.len(), c.versions["3"].rows), (2, 1, 1));
    }

    #[test]
    fn copies_pair_with_their_shadow_answers_on_correlation_id_and_row() {
        let mut c = ShadowCollector::new(Some(
            Outcomes::parse(
                "id,label
A,1
B,0
C,1
D,0
E,1
",
            )
            .unwrap(),
        ));
        // c1: two rows, both answered (the shadow's second row first, and its first row twice: a retried copy)
        c.add(&copied("4", "c1", true, "B", 1, 0.4));
        c.add(&copied("3", "c1", false, "A", 0, 0.9));
        c.add(&copied("3", "c1", false, "B", 1, 0.2));
        c.add(&copied("4", "c1", true, "A", 0, 0.6));
        c.add(&copied("4", "c1", true, "A", 0, 0.6));
        c.add(&copied("3", "c2", false, "C", 0, 0.7));
        c.add(&copied("4", "c2", true, "C", 0, 0.3));
        // c3: the copy failed on the shadow's side; c5: it was never delivered
        c.add(&copied("3", "c3", false, "D", 0, 0.1));
        c.add(&shadow_error("c3", "4", "4", "ModelError: the graph failed"));
        c.add(&copied("3", "c5", false, "E", 0, 0.5));
        c.add(&shadow_error("c5", "3", "4", "throttled: Rate Exceeded"));
        c.add(&shadow_error("c6", "3", "4", "throttled: Rate Exceeded"));
        // a shadow answer whose primary line is outside the window, and a pair with another shadow target
        c.add(&copied("4", "c9", true, "E", 0, 0.5));
        c.add(&copied("3", "c4", false, "E", 0, 0.5));
        c.add(&copied("5", "c4", true, "E", 0, 0.5));
        // a live answer, which was not copied
        c.add(&line("3", "live", "A", 0, 1, 0.9, 1.0));
        c.add(r#"{"mlambda":"shadow_error","correlation_id":7}"#);
        assert_eq!((c.other, c.unreadable, c.duplicates), (1, 1, 1));
        // version 4: four answered rows and three failed copies
        assert_eq!(c.shadow_versions(), [("4".to_string(), 7), ("5".to_string(), 1)]);
        assert_eq!(c.primary_of("4").as_deref(), Some("3"));
        assert_eq!(c.primary_of("5").as_deref(), Some("3"));
        let s = c.pair("3", "4");
        type Row<'a> = (Option<&'a str>, Option<f64>, Option<f64>, Option<bool>);
        let got: Vec<Row> = s
            .pairs
            .iter()
            .map(|p| (p.id.as_deref(), p.baseline.probability, p.candidate.probability, p.outcome))
            .collect();
        let mut want = vec![
            (Some("A"), Some(0.9), Some(0.6), Some(true)),
            (Some("B"), Some(0.2), Some(0.4), Some(false)),
            (Some("C"), Some(0.7), Some(0.3), Some(true)),
        ];
        want.sort_by_key(|w| s.pairs.iter().position(|p| p.id.as_deref() == w.0));
        assert_eq!(got, want);
        assert!(s.pairs.windows(2).all(|w| w[0].key < w[1].key), "pairs are in key order");
        assert_eq!((s.primary_unmatched, s.primary_unmatched_errored, s.shadow_unmatched), (2, 2, 1));
        assert_eq!((s.other_pairs, s.duplicates, s.unpaired_labeled), (1, 1, (2, 1)));
        // requests: c1, c2, c3, c4's primary was another pair's, c5 → 5 copied by 3 (c4 included); 3 answered by 4
        assert_eq!((s.baseline_requests, s.candidate_requests), (5, 3));
        assert_eq!(
            (s.baseline_latencies.len(), s.candidate_latencies, s.baseline_model.as_deref()),
            (5, vec![1.5; 3], Some("v3"))
        );
        assert_eq!((s.errors.answer_failures, s.errors.delivery_failures, s.errors.count()), (1, 2, 3));
        let top = s.errors.top(5);
        assert_eq!((top[0].side, top[0].reason.as_str(), top[0].count), ("delivery", "throttled: Rate Exceeded", 2));
        assert_eq!((top[1].side, top[1].count), ("candidate", 1));
        let p = &s.pairs[0];
        assert_eq!((p.baseline.binary, p.baseline.label.as_deref().is_some(), p.baseline.value), (true, true, None));
    }

    #[test]
    fn regressors_and_multiclass_answers_keep_what_they_are_compared_on() {
        let mut c = ShadowCollector::new(None);
        c.add(r#"{"mlambda":"prediction","request_id":"a","function_version":"1","correlation_id":"k","row":0,"prediction":2.5,"latency_ms":1}"#);
        c.add(r#"{"mlambda":"prediction","request_id":"b","function_version":"2","correlation_id":"k","shadow":true,"row":0,"prediction":3.0}"#);
        c.add(r#"{"mlambda":"prediction","request_id":"a","function_version":"1","correlation_id":"m","row":0,"prediction":"gold","probabilities":{"bronze":0.1,"silver":0.2,"gold":0.7}}"#);
        c.add(r#"{"mlambda":"prediction","request_id":"b","function_version":"2","correlation_id":"m","shadow":true,"row":0,"prediction":"silver","probabilities":{"bronze":0.1,"silver":0.5,"gold":0.4}}"#);
        let s = c.pair("1", "2");
        assert_eq!(s.pairs.len(), 2);
        let value = s.pairs.iter().find(|p| p.baseline.value.is_some()).unwrap();
        assert_eq!(
            (value.baseline.value, value.candidate.value, value.baseline.label.as_deref()),
            (Some(2.5), Some(3.0), None)
        );
        let class = s.pairs.iter().find(|p| p.baseline.label.is_some()).unwrap();
        assert_eq!(
            (class.baseline.probability, class.candidate.probability, class.baseline.binary),
            (Some(0.7), Some(0.5), false)
        );
        assert_eq!(class.candidate.probabilities.as_deref().map(<[_]>::len), Some(3));
        assert_eq!(
            (s.candidate_requests, s.candidate_latencies.len()),
            (2, 0),
            "a line without latency counts no latency"
        );
    }

    #[test]
    fn an_arn_names_its_version() {
        assert_eq!(arn_version("arn:aws:lambda:us-east-1:1:function:churn:12"), Some("12"));
        assert_eq!(arn_version("arn:aws:lambda:us-east-1:1:function:churn:live"), None);
        assert_eq!(arn_version("churn"), None);
    }

    #[test]
    fn bins_cover_the_closed_unit_interval() {
        assert_eq!((bin(0.0), bin(0.0999), bin(0.1), bin(1.0), bin(-0.5)), (0, 0, 1, 9, 0));
    }
}
