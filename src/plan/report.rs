//! `mlambda report` as a value: per-version evidence from the folded log and Lambda's metrics, PSI, the AUC test
//! and the verdict; and `mlambda report --batch`, the same evidence on batch runs' output, with the paired test
//! of two versions scored on the same rows. Pure; the command gathers the inputs and the ui renders the result.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::evidence::{
    self, Calibration, Check, Decision, Evidence, Look, LookReport, Paired, Side, Thresholds, Verdict,
};
use super::predlog::{Collector, ErrorReason, VersionAcc, BINS};
use super::stats::{self, ZTest};

/// Per-version metric sums over the window: Lambda's, and the runtime's EMF counts of its 400 and 500 answers;
/// `None` where CloudWatch had no datapoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub invocations: Option<u64>,
    pub errors: Option<u64>,
    pub throttles: Option<u64>,
    pub client_errors: Option<u64>,
    pub model_errors: Option<u64>,
}

/// What the command found out before computing anything.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub function: String,
    pub alias: String,
    /// RFC 3339.
    pub since: String,
    pub until: String,
    pub window_hours: f64,
    pub baseline: String,
    pub candidate: String,
    /// The candidate's weight in the alias routing, when it is the routed version.
    pub traffic_share: Option<f64>,
    /// Version → `MODEL_VERSION` from its Lambda configuration, used when the log names none.
    pub model_versions: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, Metrics>,
    pub thresholds: Thresholds,
    /// Which look at the candidate this report is, of how many its rollout planned.
    pub look: Look,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Requests with a logged model latency.
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VersionReport {
    pub version: String,
    pub model_version: Option<String>,
    /// Lambda `Invocations`, else distinct request ids in the log.
    pub requests: u64,
    /// Lambda `Invocations` for this version through the alias.
    pub invocations: Option<u64>,
    /// Distinct request ids in the prediction log (fewer than invocations with `LOG_PREDICTIONS` sampling).
    pub logged_requests: u64,
    /// Prediction lines: one per answered row.
    pub rows: u64,
    /// Lambda `Errors`: invocations that crashed or timed out.
    pub errors: Option<u64>,
    pub throttles: Option<u64>,
    /// Answers the runtime refused with a 400 (the caller's request did not fit the model).
    pub client_errors: Option<u64>,
    /// Answers that failed with a 500 (the model failed).
    pub model_errors: Option<u64>,
    /// `emf` when the runtime's EMF counts were in CloudWatch, else `log` (its error lines).
    pub error_counts_from: &'static str,
    /// Failed answers, 500s and Lambda errors, over requests.
    pub error_rate: Option<f64>,
    /// 400s over requests.
    pub client_error_rate: Option<f64>,
    /// The most frequent failure reasons in the log, most frequent first.
    pub top_errors: Vec<ErrorReason>,
    pub latency_ms: Latency,
    /// Binary classifiers: share of rows predicted as the positive class.
    pub positive_rate: Option<f64>,
    pub positive_label: Option<String>,
    /// Mean positive-class probability (binary) or top-class probability (multiclass).
    pub mean_probability: Option<f64>,
    /// Rows per probability bin [0, 0.1), …, [0.9, 1]; `null` for regressors.
    pub histogram: Option<[u64; BINS]>,
    /// `probability` (binary) or `top_probability` (multiclass).
    pub histogram_of: Option<&'static str>,
    /// Predicted class → share of rows, for classifiers.
    pub class_shares: Option<BTreeMap<String, f64>>,
    /// Rows joined to an outcome; `null` without `--outcomes`.
    pub labeled: Option<u64>,
    pub auc: Option<f64>,
    pub auc_ci: Option<[f64; 2]>,
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
    pub accuracy: Option<f64>,
    /// For the HTML page: ascending latencies and the ROC curve (false, true positive rate).
    #[serde(skip)]
    pub latencies: Vec<f64>,
    #[serde(skip)]
    pub roc: Vec<[f64; 2]>,
    #[serde(skip)]
    auc_value: Option<stats::Auc>,
    #[serde(skip)]
    calibration: Option<stats::Moments>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub function: String,
    pub alias: String,
    pub since: String,
    pub until: String,
    pub baseline: String,
    pub candidate: String,
    pub traffic_share: Option<f64>,
    /// Baseline first, then candidate.
    pub versions: Vec<VersionReport>,
    /// Other versions that logged predictions in the window (e.g. a previous candidate).
    pub other_versions: Vec<String>,
    /// PSI of the candidate's probability histogram (binary), else its class shares, against the baseline's.
    pub psi: Option<f64>,
    pub psi_of: Option<&'static str>,
    /// Candidate − baseline AUC, DeLong z-test for independent samples.
    pub auc_difference: Option<ZTest>,
    pub verdict: evidence::Decision,
    pub reasons: Vec<String>,
    pub checks: Vec<evidence::Check>,
    pub look: LookReport,
    pub thresholds: Thresholds,
    /// Log lines that looked like prediction lines but did not parse.
    pub unreadable_lines: u64,
    /// Outcome labels that were neither the positive nor the negative class.
    pub unreadable_labels: u64,
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

/// What a version's counts are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A live window: requests are Lambda's invocations (else the log's), failures are per request.
    Requests,
    /// A batch run: every input row is a request, answered (`out/`) or failed (`failures/`).
    Rows,
}

/// What one version's figures need besides its folded lines.
struct Given<'a> {
    metrics: Metrics,
    /// The model version its configuration names, for a log that names none.
    model_version: Option<&'a String>,
    thresholds: &'a Thresholds,
    unit: Unit,
}

fn version_report(version: &str, acc: Option<VersionAcc>, given: Given<'_>, outcomes: bool) -> VersionReport {
    let acc = acc.unwrap_or_default();
    let m = given.metrics;
    let logged_requests = acc.requests();
    let mut latencies = acc.latencies.clone();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| stats::quantile_sorted(&latencies, p);
    let latency_ms = Latency {
        count: latencies.len() as u64,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        mean: mean(latencies.iter().sum(), latencies.len() as u64),
        max: latencies.last().copied(),
    };
    // Lambda emits Errors beside Invocations; a missing Errors series with invocations means none failed
    let errors = m.invocations.map(|_| m.errors.unwrap_or(0));
    // EMF counts cover every invocation, sampled prediction logging or not; the error lines are the fallback
    let (client_errors, model_errors, error_counts_from) = match (given.unit, m.client_errors, m.model_errors) {
        (Unit::Rows, _, _) => (acc.client_errors, acc.model_errors, "failures"),
        (Unit::Requests, None, None) => (acc.client_errors, acc.model_errors, "log"),
        (Unit::Requests, c, e) => (c.unwrap_or(0), e.unwrap_or(0), "emf"),
    };
    let requests = match given.unit {
        Unit::Requests => m.invocations.unwrap_or(logged_requests + acc.client_errors + acc.model_errors),
        Unit::Rows => acc.rows + acc.client_errors + acc.model_errors,
    };
    let rate = |n: u64| (requests > 0).then(|| n as f64 / requests as f64);
    let error_rate = rate(errors.unwrap_or(0) + model_errors);
    let client_error_rate = rate(client_errors);
    let binary = acc.positive_label.is_some() && !acc.multiclass;
    let classified: u64 = acc.classes.values().sum();
    let class_shares =
        (classified > 0).then(|| acc.classes.iter().map(|(k, n)| (k.clone(), *n as f64 / classified as f64)).collect());
    let pairs: Vec<(f64, bool)> = acc.labeled.iter().map(|l| (l.probability, l.positive)).collect();
    let positives: Vec<f64> = pairs.iter().filter(|p| p.1).map(|p| p.0).collect();
    let negatives: Vec<f64> = pairs.iter().filter(|p| !p.1).map(|p| p.0).collect();
    let auc = stats::auc_delong(&positives, &negatives);
    let labeled_n = acc.labeled.len() as u64 + acc.labeled_multiclass;
    let correct = acc.labeled.iter().filter(|l| l.correct).count() as u64 + acc.correct_multiclass;
    VersionReport {
        version: version.to_string(),
        model_version: acc.model_version().map(str::to_string).or_else(|| given.model_version.cloned()),
        requests,
        invocations: m.invocations,
        logged_requests,
        rows: acc.rows,
        errors,
        throttles: m.invocations.map(|_| m.throttles.unwrap_or(0)).or(m.throttles),
        client_errors: Some(client_errors),
        model_errors: Some(model_errors),
        error_counts_from,
        error_rate,
        client_error_rate,
        top_errors: acc.top_errors(5),
        latency_ms,
        positive_rate: (binary && acc.scored > 0).then(|| acc.predicted_positive as f64 / acc.scored as f64),
        positive_label: acc.positive_label.clone().filter(|_| binary),
        mean_probability: mean(acc.probability_sum, acc.scored),
        histogram: (acc.scored > 0).then_some(acc.histogram),
        histogram_of: (acc.scored > 0).then_some(if acc.multiclass { "top_probability" } else { "probability" }),
        class_shares,
        labeled: outcomes.then_some(labeled_n),
        auc: auc.map(|a| a.auc),
        auc_ci: auc.and_then(|a| stats::auc_interval(a, given.thresholds.alpha)),
        log_loss: stats::log_loss(&pairs),
        brier: stats::brier(&pairs),
        accuracy: (labeled_n > 0).then(|| correct as f64 / labeled_n as f64),
        latencies,
        roc: stats::roc_curve(&pairs),
        auc_value: auc,
        calibration: stats::Moments::of(pairs.iter().map(|&(p, y)| loss(given.thresholds.calibration, p, y))),
    }
}

/// One row's calibration loss.
fn loss(calibration: Calibration, p: f64, y: bool) -> f64 {
    match calibration {
        Calibration::Brier => stats::brier_row(p, y),
        Calibration::LogLoss => stats::log_loss_row(p, y),
    }
}

/// `400 InvalidInput: missing required features: tenure (200)`.
fn reason_text(r: &ErrorReason) -> String {
    format!("{} {}: {} ({})", r.status, r.error_type, r.reason, evidence::thousands(r.count))
}

fn side(v: &VersionReport) -> Side {
    let top = |client: bool| v.top_errors.iter().find(|r| (r.status < 500) == client).map(reason_text);
    let known = v.requests > 0 || v.invocations.is_some();
    Side {
        version: v.version.clone(),
        requests: known.then_some(v.requests),
        errors: known.then(|| v.errors.unwrap_or(0) + v.model_errors.unwrap_or(0)),
        client_errors: known.then(|| v.client_errors.unwrap_or(0)),
        top_client_error: top(true),
        top_error: top(false),
        latency_samples: v.latency_ms.count,
        p99_ms: v.latency_ms.p99,
        labeled: v.labeled,
        auc: v.auc_value,
        calibration: v.calibration,
    }
}

/// Class-share PSI over the union of classes both versions predicted.
fn class_psi(b: &BTreeMap<String, f64>, c: &BTreeMap<String, f64>, nb: u64, nc: u64) -> Option<f64> {
    let keys: Vec<&String> = b.keys().chain(c.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let counts = |m: &BTreeMap<String, f64>, n: u64| -> Vec<u64> {
        keys.iter().map(|k| (m.get(*k).copied().unwrap_or(0.0) * n as f64).round() as u64).collect()
    };
    stats::psi(&counts(b, nb), &counts(c, nc))
}

/// PSI of the candidate's probability histogram (binary), else its class shares, against the baseline's, and
/// which of the two it is.
fn compare_psi(b: &VersionReport, c: &VersionReport) -> (Option<f64>, Option<&'static str>) {
    match (&b.histogram, &c.histogram, &b.class_shares, &c.class_shares) {
        (Some(hb), Some(hc), _, _) if b.histogram_of == Some("probability") && c.histogram_of == b.histogram_of => {
            (stats::psi(hb, hc), Some("probability"))
        }
        (_, _, Some(sb), Some(sc)) => (class_psi(sb, sc, b.rows, c.rows), Some("class_shares")),
        (Some(hb), Some(hc), _, _) => (stats::psi(hb, hc), b.histogram_of),
        _ => (None, None),
    }
}

/// Computes the report from the folded log and the gathered inputs.
pub fn build(inputs: &Inputs, mut collected: Collector) -> Report {
    let outcomes = collected.has_outcomes();
    let b_acc = collected.versions.remove(&inputs.baseline);
    let c_acc = collected.versions.remove(&inputs.candidate);
    let unreadable_labels = b_acc.iter().chain(c_acc.iter()).map(|a| a.unreadable_labels).sum::<u64>();
    let given = |v: &str| Given {
        metrics: inputs.metrics.get(v).copied().unwrap_or_default(),
        model_version: inputs.model_versions.get(v),
        thresholds: &inputs.thresholds,
        unit: Unit::Requests,
    };
    let b = version_report(&inputs.baseline, b_acc, given(&inputs.baseline), outcomes);
    let c = version_report(&inputs.candidate, c_acc, given(&inputs.candidate), outcomes);
    let (psi, psi_of) = compare_psi(&b, &c);
    let auc_difference = match (b.auc_value, c.auc_value) {
        (Some(x), Some(y)) => stats::auc_difference(x, y),
        _ => None,
    };
    let e = Evidence {
        baseline: side(&b),
        candidate: side(&c),
        traffic_share: inputs.traffic_share,
        window_hours: inputs.window_hours,
        look: inputs.look,
    };
    let Verdict { verdict, reasons, checks, look } = evidence::verdict(&e, &inputs.thresholds);
    Report {
        function: inputs.function.clone(),
        alias: inputs.alias.clone(),
        since: inputs.since.clone(),
        until: inputs.until.clone(),
        baseline: inputs.baseline.clone(),
        candidate: inputs.candidate.clone(),
        traffic_share: inputs.traffic_share,
        versions: vec![b, c],
        other_versions: collected.versions.into_keys().collect(),
        psi,
        psi_of,
        auc_difference,
        verdict,
        reasons,
        checks,
        look,
        thresholds: inputs.thresholds.clone(),
        unreadable_lines: collected.unreadable,
        unreadable_labels,
    }
}

/// One batch run as `report --batch` read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRun {
    /// The run's id, as `run.json` names it.
    pub run: String,
    /// `s3://BUCKET/PREFIX/<run>/`.
    pub address: String,
    /// The function version that scored it.
    pub version: String,
    /// `out/` part files read.
    pub parts: u64,
    /// `failures/` part files read.
    pub failure_parts: u64,
}

/// What `report --batch` found out before computing anything.
#[derive(Debug, Clone)]
pub struct BatchInputs {
    pub function: String,
    /// In the order they were given.
    pub runs: Vec<BatchRun>,
    /// The baseline run's version, and with two runs the candidate's.
    pub baseline: String,
    pub candidate: Option<String>,
    pub thresholds: Thresholds,
}

/// DeLong's paired test of the candidate's AUC against the baseline's, on the labeled rows both versions
/// scored, and the paired difference in calibration loss on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTest {
    /// Labeled rows both versions scored: the rows the test is on.
    pub rows: u64,
    pub positives: u64,
    pub negatives: u64,
    /// Labeled rows only one version scored (or that it scored again under the same id), left out.
    pub unpaired_baseline: u64,
    pub unpaired_candidate: u64,
    pub baseline_auc: Option<f64>,
    pub candidate_auc: Option<f64>,
    /// Candidate − baseline AUC on the paired rows.
    pub difference: Option<f64>,
    /// `√(S_AA + S_BB − 2 S_AB)`, the difference's standard error.
    pub standard_error: Option<f64>,
    /// `S_AB / √(S_AA S_BB)`: how alike the two versions rank the rows; the closer to 1, the sharper the test.
    pub correlation: Option<f64>,
    /// `difference / standard_error`.
    pub z: Option<f64>,
    /// Two-sided.
    pub p_value: Option<f64>,
    /// Two-sided `confidence` interval of the difference.
    pub interval: Option<[f64; 2]>,
    /// `1 − rollout.evidence.alpha`.
    pub confidence: f64,
    /// Both versions' mean calibration loss (`rollout.evidence.calibration`) on the paired rows, and the
    /// moments of the per-row difference.
    pub calibration: Option<evidence::PairedLoss>,
}

/// `mlambda report --batch`: each run's evidence and, with two runs, the paired test and the backtest verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReport {
    pub function: String,
    /// In the order they were given.
    pub runs: Vec<BatchRun>,
    pub baseline: String,
    pub candidate: Option<String>,
    /// Baseline first, then candidate. A batch run's `requests` are its input rows, scored or failed, and its
    /// error rates are per row (`error_counts_from` is `failures`).
    pub versions: Vec<VersionReport>,
    /// Other versions that the runs' lines named.
    pub other_versions: Vec<String>,
    /// PSI of the candidate's scores against the baseline's over the same input.
    pub psi: Option<f64>,
    pub psi_of: Option<&'static str>,
    pub paired: Option<PairedTest>,
    /// With two runs: the backtest's verdict on the candidate.
    pub verdict: Option<Decision>,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub thresholds: Thresholds,
    /// Output lines that did not parse.
    pub unreadable_lines: u64,
    /// Outcome labels that were neither the positive nor the negative class.
    pub unreadable_labels: u64,
}

/// The labeled rows both versions scored, as `[baseline, candidate]` probabilities split by outcome, and their
/// per-row calibration losses.
#[derive(Debug, Default)]
struct Pairs {
    positives: Vec<[f64; 2]>,
    negatives: Vec<[f64; 2]>,
    losses: Vec<[f64; 2]>,
}

impl Pairs {
    fn rows(&self) -> u64 {
        self.losses.len() as u64
    }
}

/// Pairs the two versions' labeled rows by the outcome they joined (the id). An id one version scored twice
/// pairs once.
fn pair(b: &VersionAcc, c: &VersionAcc, calibration: Calibration) -> Pairs {
    let mut first: HashMap<u32, usize> = HashMap::with_capacity(b.labeled_ids.len());
    for (k, id) in b.labeled_ids.iter().enumerate() {
        first.entry(*id).or_insert(k);
    }
    let mut out = Pairs::default();
    for (cl, id) in c.labeled.iter().zip(&c.labeled_ids) {
        let Some(bl) = first.remove(id).and_then(|k| b.labeled.get(k)) else { continue };
        // both read the same outcome, unless their class labels differ; such a row compares nothing
        if bl.positive != cl.positive {
            continue;
        }
        let scores = [bl.probability, cl.probability];
        if bl.positive {
            out.positives.push(scores);
        } else {
            out.negatives.push(scores);
        }
        out.losses
            .push([loss(calibration, bl.probability, bl.positive), loss(calibration, cl.probability, cl.positive)]);
    }
    out
}

/// The paired evidence the verdict weighs and the test people read, from the paired rows.
fn paired_test(pairs: &Pairs, b: &VersionAcc, c: &VersionAcc, t: &Thresholds) -> (Paired, PairedTest) {
    let auc = stats::auc_delong_paired(&pairs.positives, &pairs.negatives);
    let n = pairs.rows();
    let calibration = stats::Moments::of(pairs.losses.iter().map(|l| l[1] - l[0])).map(|difference| {
        let mean = |k: usize| pairs.losses.iter().map(|l| l[k]).sum::<f64>() / n as f64;
        evidence::PairedLoss { baseline: mean(0), candidate: mean(1), difference }
    });
    let variance = auc.and_then(|a| a.difference_variance());
    let z = auc.and_then(stats::auc_difference_paired);
    let correlation = auc.and_then(|a| {
        let (va, vb, cov) = (a.baseline.variance?, a.candidate.variance?, a.covariance?);
        (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
    });
    let difference = auc.map(|a| a.candidate.auc - a.baseline.auc);
    let test = PairedTest {
        rows: n,
        positives: pairs.positives.len() as u64,
        negatives: pairs.negatives.len() as u64,
        unpaired_baseline: (b.labeled.len() as u64).saturating_sub(n),
        unpaired_candidate: (c.labeled.len() as u64).saturating_sub(n),
        baseline_auc: auc.map(|a| a.baseline.auc),
        candidate_auc: auc.map(|a| a.candidate.auc),
        difference,
        standard_error: variance.map(|v| v.max(0.0).sqrt()),
        correlation,
        z: z.map(|z| z.z),
        p_value: z.map(|z| z.p_value),
        interval: difference.zip(variance).map(|(d, v)| stats::difference_interval(d, v, t.alpha)),
        confidence: 1.0 - t.alpha,
        calibration,
    };
    (Paired { rows: n, auc, calibration }, test)
}

/// Computes `report --batch` from the runs' folded output (a [`Collector::pairing`] over the outcomes).
pub fn build_batch(inputs: &BatchInputs, mut collected: Collector) -> BatchReport {
    let outcomes = collected.has_outcomes();
    let t = &inputs.thresholds;
    let given = || Given { metrics: Metrics::default(), model_version: None, thresholds: t, unit: Unit::Rows };
    let b_acc = collected.versions.remove(&inputs.baseline).unwrap_or_default();
    let c_acc = inputs.candidate.as_ref().map(|c| collected.versions.remove(c).unwrap_or_default());
    let unreadable_labels = b_acc.unreadable_labels + c_acc.as_ref().map_or(0, |a| a.unreadable_labels);
    let compared = c_acc.as_ref().map(|c| {
        let pairs = pair(&b_acc, c, t.calibration);
        paired_test(&pairs, &b_acc, c, t)
    });
    let b = version_report(&inputs.baseline, Some(b_acc), given(), outcomes);
    let mut out = BatchReport {
        function: inputs.function.clone(),
        runs: inputs.runs.clone(),
        baseline: inputs.baseline.clone(),
        candidate: inputs.candidate.clone(),
        versions: vec![],
        other_versions: collected.versions.into_keys().collect(),
        psi: None,
        psi_of: None,
        paired: None,
        verdict: None,
        reasons: vec![],
        checks: vec![],
        thresholds: t.clone(),
        unreadable_lines: collected.unreadable,
        unreadable_labels,
    };
    if let (Some(candidate), Some(c_acc), Some((paired, test))) = (&inputs.candidate, c_acc, compared) {
        let c = version_report(candidate, Some(c_acc), given(), outcomes);
        (out.psi, out.psi_of) = compare_psi(&b, &c);
        // a backtest is one decision before any exposure, so it spends the whole α
        let e = Evidence {
            baseline: side(&b),
            candidate: side(&c),
            traffic_share: None,
            window_hours: 0.0,
            look: Look::ONLY,
        };
        let v = evidence::backtest_verdict(&e, &paired, t);
        (out.verdict, out.reasons, out.checks, out.paired) = (Some(v.verdict), v.reasons, v.checks, Some(test));
        out.versions = vec![b, c];
    } else {
        out.versions = vec![b];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::predlog::Outcomes;

    fn inputs() -> Inputs {
        let mut metrics = BTreeMap::new();
        metrics.insert("3".to_string(), Metrics { invocations: Some(4), errors: Some(1), ..Metrics::default() });
        Inputs {
            function: "churn".into(),
            alias: "production".into(),
            since: "2026-12-01T00:00:00Z".into(),
            until: "2026-12-02T00:00:00Z".into(),
            window_hours: 24.0,
            baseline: "3".into(),
            candidate: "4".into(),
            traffic_share: Some(0.1),
            model_versions: [("4".to_string(), "v5".to_string())].into(),
            metrics,
            thresholds: Thresholds::default(),
            look: Look::ONLY,
        }
    }

    fn line(v: &str, req: &str, id: &str, p: f64, latency: f64) -> String {
        let pred = u8::from(p >= 0.5);
        format!(
            r#"{{"mlambda":"prediction","request_id":"{req}","function_version":"{v}","model_version":"v{v}","id":"{id}","row":0,"rows":1,"prediction":{pred},"probability":{p},"probabilities":{{"0":{},"1":{p}}},"latency_ms":{latency}}}"#,
            1.0 - p
        )
    }

    #[test]
    fn a_report_joins_outcomes_and_fills_every_field() {
        let mut c = Collector::new(Some(Outcomes::parse("id,label\na,1\nb,0\nc,1\nd,0\ne,1\nf,0\n").unwrap()));
        for (i, (id, p)) in [("a", 0.9), ("b", 0.2), ("c", 0.6), ("d", 0.7)].iter().enumerate() {
            c.add(&line("3", &format!("r{i}"), id, *p, 1.0 + i as f64));
        }
        c.add(&line("4", "s1", "e", 0.4, 3.0));
        c.add(&line("4", "s2", "f", 0.1, 5.0));
        c.add(&line("2", "t1", "zz", 0.5, 1.0));
        let r = build(&inputs(), c);
        let (b, cand) = (&r.versions[0], &r.versions[1]);
        assert_eq!((b.requests, b.invocations, b.logged_requests, b.rows), (4, Some(4), 4, 4));
        assert_eq!((b.errors, b.throttles, b.error_rate), (Some(1), Some(0), Some(0.25)));
        assert_eq!(b.latency_ms.p50, Some(2.5));
        assert_eq!(b.positive_rate, Some(0.75));
        assert_eq!(b.labeled, Some(4));
        // roc_auc_score([1,0,1,0], [.9,.2,.6,.7]) = 0.75
        assert_eq!(b.auc, Some(0.75));
        assert_eq!(b.accuracy, Some(0.75));
        assert_eq!((cand.requests, cand.invocations, cand.errors), (2, None, None));
        assert_eq!(cand.model_version.as_deref(), Some("v4"));
        assert_eq!(cand.auc, Some(1.0));
        assert_eq!(r.other_versions, ["2"]);
        assert_eq!(r.psi_of, Some("probability"));
        assert!(r.psi.is_some_and(|p| p > 0.0));
        assert_eq!(r.verdict, evidence::Decision::Continue);
        let json = serde_json::to_value(&r).unwrap();
        for key in ["baseline", "candidate", "versions", "psi", "verdict", "reasons"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert!(json["versions"][0].get("latencies").is_none());
    }

    fn batch_inputs(candidate: Option<&str>) -> BatchInputs {
        let run = |v: &str| BatchRun {
            run: format!("r{v}"),
            address: format!("s3://b/scores/r{v}/"),
            version: v.into(),
            parts: 1,
            failure_parts: 0,
        };
        BatchInputs {
            function: "churn".into(),
            runs: std::iter::once("3").chain(candidate).map(run).collect(),
            baseline: "3".into(),
            candidate: candidate.map(str::to_string),
            thresholds: Thresholds::default(),
        }
    }

    /// 600 customers scored by version 3 (close to the truth) and version 4 (mostly noise); ids `c0`… with
    /// outcomes for all but every tenth, and version 4 also scored `extra`, which has an outcome and no partner.
    fn backtest_collector() -> (Collector, Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let mut outcomes = String::from("id,label\nextra,1\n");
        let (mut pos, mut neg) = (vec![], vec![]);
        let mut lines = vec![];
        for i in 0..600u32 {
            let y = (i * 7919 % 13) < 5;
            let jitter = f64::from(i * 104_729 % 1000) / 1000.0;
            // three decimals: ties are ties after the lines' JSON round trip, which may move a value by an ulp
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            let good = round(((if y { 0.55 } else { 0.3 }) + 0.3 * jitter).min(1.0));
            let bad = round((0.5 + 0.4 * (jitter - 0.5) + if y { 0.02 } else { 0.0 }).clamp(0.0, 1.0));
            let id = format!("c{i}");
            lines.push(line("3", "part-00000", &id, good, 1.0));
            lines.push(line("4", "part-00000", &id, bad, 1.0));
            if i % 10 != 0 {
                outcomes += &format!("{id},{}\n", u8::from(y));
                if y {
                    pos.push([good, bad]);
                } else {
                    neg.push([good, bad]);
                }
            }
        }
        lines.push(line("4", "part-00001", "extra", 0.5, 1.0));
        let mut c = Collector::pairing(Outcomes::parse(&outcomes).unwrap());
        for l in &lines {
            c.add_scored(l);
        }
        (c, pos, neg)
    }

    #[test]
    fn a_backtest_pairs_the_rows_both_versions_scored_and_rolls_back_a_worse_candidate() {
        let (c, pos, neg) = backtest_collector();
        let r = build_batch(&batch_inputs(Some("4")), c);
        assert_eq!((r.baseline.as_str(), r.candidate.as_deref()), ("3", Some("4")));
        assert_eq!(r.versions.len(), 2);
        assert_eq!((r.versions[0].rows, r.versions[1].rows), (600, 601));
        assert_eq!((r.versions[0].labeled, r.versions[1].labeled), (Some(540), Some(541)));
        assert_eq!((r.versions[0].requests, r.versions[0].error_counts_from), (600, "failures"));
        let t = r.paired.as_ref().unwrap();
        assert_eq!((t.rows, t.positives + t.negatives, t.unpaired_baseline, t.unpaired_candidate), (540, 540, 0, 1));
        // the same rows through the stats directly
        let want = stats::auc_delong_paired(&pos, &neg).unwrap();
        let z = stats::auc_difference_paired(want).unwrap();
        assert_eq!((t.baseline_auc, t.candidate_auc), (Some(want.baseline.auc), Some(want.candidate.auc)));
        assert_eq!((t.z, t.p_value, t.difference), (Some(z.z), Some(z.p_value), Some(z.difference)));
        let [lo, hi] = t.interval.unwrap();
        assert!(lo < z.difference && z.difference < hi && hi < 0.0, "{lo} {hi}");
        assert!(want.baseline.auc < 1.0 && want.candidate.auc < want.baseline.auc - 0.2, "{want:?}");
        assert_eq!(r.versions[0].auc, Some(want.baseline.auc), "every row of version 3 is paired");
        assert_eq!(r.verdict, Some(evidence::Decision::Rollback), "{:?}", r.reasons);
        let names: Vec<(&str, evidence::Status)> = r.checks.iter().map(|c| (c.name, c.status)).collect();
        assert_eq!(names[2], ("auc", evidence::Status::Worse));
        assert!(r.reasons.iter().any(|x| x.contains("on the same 540 rows")), "{:?}", r.reasons);
        let json = serde_json::to_value(&r).unwrap();
        for key in ["z", "p_value", "difference", "interval", "standard_error", "correlation"] {
            assert!(json["paired"].get(key).is_some(), "{key} missing in {}", json["paired"]);
        }
        assert_eq!(json["verdict"], "rollback");
        assert!(r.to_string().contains("backtest verdict: ROLLBACK"), "{r}");
    }

    #[test]
    fn a_candidate_equal_to_the_baseline_on_the_same_rows_is_promoted_and_one_run_has_no_verdict() {
        // version 3 against itself under another name: identical scores, zero paired variance
        let mut outcomes = String::from("id,label\n");
        for i in 0..600 {
            outcomes += &format!("c{i},{}\n", u8::from(i % 97 > 40 + i % 7));
        }
        let mut c = Collector::pairing(Outcomes::parse(&outcomes).unwrap());
        for i in 0..600 {
            let l = line("3", "p", &format!("c{i}"), f64::from(i % 97) / 97.0, 1.0);
            c.add_scored(&l);
            c.add_scored(&l.replace(r#""function_version":"3""#, r#""function_version":"4""#));
        }
        let r = build_batch(&batch_inputs(Some("4")), c);
        let t = r.paired.as_ref().unwrap();
        assert_eq!((t.difference, t.z, t.p_value, t.standard_error), (Some(0.0), Some(0.0), Some(1.0), Some(0.0)));
        assert_eq!(r.verdict, Some(evidence::Decision::Promote), "{:?}", r.reasons);

        let (c, _, _) = backtest_collector();
        let one = build_batch(&batch_inputs(None), c);
        assert_eq!((one.versions.len(), one.verdict, one.paired.is_none()), (1, None, true));
        assert_eq!(one.other_versions, ["4"]);
        assert!(one.to_string().contains("batch run s3://b/scores/r3/ by version 3"), "{one}");
    }

    #[test]
    fn a_version_without_lines_reports_nulls() {
        let r = build(&inputs(), Collector::new(None));
        let c = &r.versions[1];
        assert_eq!(c.model_version.as_deref(), Some("v5"));
        assert_eq!((c.requests, c.rows, c.labeled, c.auc, c.latency_ms.p99), (0, 0, None, None, None));
        assert_eq!((r.psi, r.auc_difference), (None, None));
    }
}
