//! `mlambda report` as a value: per-version evidence from the folded log and Lambda's metrics, PSI, the AUC test
//! and the verdict; and `mlambda report --batch`, the same evidence on batch runs' output, with the paired test
//! of two versions scored on the same rows. Pure; the command gathers the inputs and the ui renders the result.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::evidence::{
    self, Calibration, Check, Decision, Evidence, Look, LookReport, Paired, Side, Thresholds, Verdict,
};
use super::predlog::{Answer, Collector, ErrorReason, Pair, ShadowErrorReason, Shadowed, VersionAcc, BINS};
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

/// The quantiles of ascending latencies.
fn latency_of(sorted: &[f64]) -> Latency {
    let q = |p: f64| stats::quantile_sorted(sorted, p);
    Latency {
        count: sorted.len() as u64,
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        mean: mean(sorted.iter().sum(), sorted.len() as u64),
        max: sorted.last().copied(),
    }
}

fn version_report(version: &str, acc: Option<VersionAcc>, given: Given<'_>, outcomes: bool) -> VersionReport {
    let acc = acc.unwrap_or_default();
    let m = given.metrics;
    let logged_requests = acc.requests();
    let mut latencies = acc.latencies.clone();
    latencies.sort_by(f64::total_cmp);
    let latency_ms = latency_of(&latencies);
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
fn paired_test(pairs: &Pairs, unpaired: (u64, u64), t: &Thresholds) -> (Paired, PairedTest) {
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
        unpaired_baseline: unpaired.0,
        unpaired_candidate: unpaired.1,
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
        let n = pairs.rows();
        let unpaired = |a: &VersionAcc| (a.labeled.len() as u64).saturating_sub(n);
        paired_test(&pairs, (unpaired(&b_acc), unpaired(c)), t)
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

/// What `report --shadow` found out before computing anything.
#[derive(Debug, Clone)]
pub struct ShadowInputs {
    pub function: String,
    pub alias: String,
    /// RFC 3339.
    pub since: String,
    pub until: String,
    /// The primary whose copied requests are compared, and the shadow target that answered the copies.
    pub baseline: String,
    pub candidate: String,
    /// Other versions that answered shadow copies in the window, left out.
    pub other_shadow_versions: Vec<String>,
    pub thresholds: Thresholds,
}

/// At most this many pairs are drawn in the HTML page's scatter.
pub const SCATTER_POINTS: usize = 2_000;
/// At most this many disagreements are listed.
pub const DISAGREEMENTS: usize = 20;

/// |candidate − baseline| over the rows both answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Deltas {
    /// Pairs whose two answers both carried the compared score.
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// The candidate's failed shadow copies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowErrorReport {
    /// Every failed copy: `answer_failures + delivery_failures`.
    pub count: u64,
    /// Copies the candidate could not answer; the verdict's error rate counts these.
    pub answer_failures: u64,
    /// Copies the primary could not deliver (throttled, refused, Invoke unreachable): not the candidate's answers.
    pub delivery_failures: u64,
    /// Failed answers over the copies that reached the candidate.
    pub answer_failure_rate: Option<f64>,
    pub top_reasons: Vec<ShadowErrorReason>,
}

/// A row the two versions labeled differently (for a regressor, one of the largest differences).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Disagreement {
    /// The row's id (`MODEL_ID_FIELD`), when the lines carry one.
    pub id: Option<String>,
    /// The row's index in its request.
    pub row: u64,
    /// Each version's prediction: its label, or a regressor's value.
    pub baseline: Option<String>,
    pub candidate: Option<String>,
    pub baseline_probability: Option<f64>,
    pub candidate_probability: Option<f64>,
    /// |Δ| of the compared score (`delta_of`).
    pub delta: f64,
}

/// `mlambda report --shadow`: the primary's answers to the requests it copied against the shadow's answers to
/// the copies, row by row, and the verdict on the shadow before any caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowReport {
    pub function: String,
    pub alias: String,
    pub since: String,
    pub until: String,
    /// The primary that copied its requests, and the version that answered the copies.
    pub baseline: String,
    pub candidate: String,
    pub baseline_model: Option<String>,
    pub candidate_model: Option<String>,
    /// Rows both versions answered, paired on (correlation id, row).
    pub pairs: u64,
    /// The baseline's copied rows without a shadow answer in the window, and of those, the ones whose copy failed.
    pub primary_unmatched: u64,
    pub primary_unmatched_with_error: u64,
    /// The candidate's answers whose primary line is not in the window.
    pub shadow_unmatched: u64,
    /// Rows paired between other versions (another primary or shadow target in the window), left out.
    pub other_pairs: u64,
    /// Lines seen twice for the same row on the same side (a retried copy), the first kept.
    pub duplicates: u64,
    /// Distinct copied requests the baseline logged, and distinct copies the candidate answered.
    pub baseline_requests: u64,
    pub candidate_requests: u64,
    /// Other versions that answered shadow copies in the window.
    pub other_shadow_versions: Vec<String>,
    /// Pairs where both answers carry a label, and the share of them with the same label; `null` for regressors.
    pub labeled_pairs: u64,
    pub agreement: Option<f64>,
    pub disagreeing: u64,
    /// What |Δ| compares: `probability` (binary), `class_probabilities` (multiclass: the largest difference in
    /// any class's probability) or `value` (regressors).
    pub delta_of: Option<&'static str>,
    pub delta: Option<Deltas>,
    /// PSI of the candidate's scores against the baseline's over the same rows: `probability`,
    /// `top_probability` or `value_deciles` (bins at the baseline's deciles).
    pub psi: Option<f64>,
    pub psi_of: Option<&'static str>,
    /// Model latency per request: the baseline's on the requests it copied, the candidate's on the copies.
    pub baseline_latency_ms: Latency,
    pub candidate_latency_ms: Latency,
    pub shadow_errors: ShadowErrorReport,
    /// Pairs joined to an outcome; `null` without `--outcomes`.
    pub labeled: Option<u64>,
    /// DeLong's paired test on the labeled pairs; `null` without `--outcomes`.
    pub paired: Option<PairedTest>,
    /// The pairs whose labels differ, largest |Δ| first (at most 20).
    pub disagreements: Vec<Disagreement>,
    pub verdict: Decision,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub thresholds: Thresholds,
    /// Log lines that looked like ours but did not parse.
    pub unreadable_lines: u64,
    /// Outcome labels that were neither the positive nor the negative class.
    pub unreadable_labels: u64,
    /// For the HTML page: (baseline, candidate) scores of at most [`SCATTER_POINTS`] pairs.
    #[serde(skip)]
    pub scatter: Vec<[f64; 2]>,
}

/// The score a pair is compared on, `(kind, baseline, candidate, |Δ|)`: P(positive) for binary classifiers, the
/// top class's probability and the largest difference in any class's probability for multiclass ones, the value
/// for regressors. `None` when the two answers do not both carry it.
fn compared(p: &Pair) -> Option<(&'static str, f64, f64, f64)> {
    let (b, c) = (&p.baseline, &p.candidate);
    if let (true, true, Some(x), Some(y)) = (b.binary, c.binary, b.probability, c.probability) {
        return Some(("probability", x, y, (y - x).abs()));
    }
    if let (Some(xs), Some(ys), Some(x), Some(y)) = (&b.probabilities, &c.probabilities, b.probability, c.probability) {
        let of = |v: &[(String, f64)], k: &str| v.iter().find(|(l, _)| l == k).map_or(0.0, |(_, p)| *p);
        let most = xs.iter().chain(ys.iter()).map(|(k, _)| (of(ys, k) - of(xs, k)).abs()).fold(0.0, f64::max);
        return Some(("class_probabilities", x, y, most));
    }
    match (b.value, c.value) {
        (Some(x), Some(y)) => Some(("value", x, y, (y - x).abs())),
        _ => None,
    }
}

/// The quantiles of |Δ| (ascending).
fn deltas(sorted: &[f64]) -> Option<Deltas> {
    let q = |p: f64| stats::quantile_sorted(sorted, p);
    Some(Deltas {
        count: sorted.len() as u64,
        mean: sorted.iter().sum::<f64>() / sorted.len().max(1) as f64,
        p50: q(0.5)?,
        p90: q(0.9)?,
        p99: q(0.99)?,
        max: *sorted.last()?,
    })
}

/// PSI of the candidate's compared scores against the baseline's, on the same rows.
fn shadow_psi(kind: &str, scores: &[(f64, f64)]) -> (Option<f64>, Option<&'static str>) {
    let histogram = |k: usize| {
        let mut h = [0u64; BINS];
        for s in scores {
            h[super::predlog::bin(if k == 0 { s.0 } else { s.1 })] += 1;
        }
        h
    };
    match kind {
        "probability" => (stats::psi(&histogram(0), &histogram(1)), Some("probability")),
        "class_probabilities" => (stats::psi(&histogram(0), &histogram(1)), Some("top_probability")),
        "value" => {
            let mut b: Vec<f64> = scores.iter().map(|s| s.0).collect();
            b.sort_by(f64::total_cmp);
            let c: Vec<f64> = scores.iter().map(|s| s.1).collect();
            (stats::psi_by_quantiles(&b, &c, BINS), Some("value_deciles"))
        }
        _ => (None, None),
    }
}

/// Every `k`-th point, so at most `n`: the pairs are in the order of their correlation ids' hashes, which is
/// as good as random and the same on every run.
fn sample<T: Copy>(all: &[T], n: usize) -> Vec<T> {
    let step = all.len().div_ceil(n.max(1)).max(1);
    all.iter().step_by(step).copied().collect()
}

/// One side of a shadow for the verdict: its requests (copies), failed answers, latency and labeled rows.
fn shadow_side(version: &str, requests: u64, failed: u64, top_error: Option<String>, l: &Latency) -> Side {
    Side {
        version: version.to_string(),
        requests: Some(requests),
        errors: Some(failed),
        client_errors: Some(0),
        top_client_error: None,
        top_error,
        latency_samples: l.count,
        p99_ms: l.p99,
        labeled: None,
        auc: None,
        calibration: None,
    }
}

/// Computes `report --shadow` from the paired rows (a [`ShadowCollector::pair`] of the two versions).
pub fn build_shadow(inputs: &ShadowInputs, shadowed: Shadowed, outcomes: bool, unreadable_lines: u64) -> ShadowReport {
    let t = &inputs.thresholds;
    let s = shadowed;
    // what the pairs are compared on: the kind most pairs carry
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for p in &s.pairs {
        if let Some((k, ..)) = compared(p) {
            *kinds.entry(k).or_default() += 1;
        }
    }
    let kind = kinds.iter().max_by_key(|(_, n)| **n).map(|(k, _)| *k);
    let mut scored: Vec<(f64, f64)> = Vec::new();
    let mut diffs: Vec<f64> = Vec::new();
    let (mut labeled_pairs, mut agree) = (0u64, 0u64);
    let mut disagreements: Vec<(f64, &Pair)> = Vec::new();
    let mut rows = Pairs::default();
    for p in &s.pairs {
        let score = compared(p).filter(|c| Some(c.0) == kind);
        if let Some((_, x, y, d)) = score {
            scored.push((x, y));
            diffs.push(d);
        }
        let delta = score.map_or(0.0, |c| c.3);
        if let (Some(x), Some(y)) = (&p.baseline.label, &p.candidate.label) {
            labeled_pairs += 1;
            match x == y {
                true => agree += 1,
                false => disagreements.push((delta, p)),
            }
        } else if kind == Some("value") && score.is_some() {
            disagreements.push((delta, p));
        }
        if let (Some(y), Some(pb), Some(pc)) = (p.outcome, p.baseline.probability, p.candidate.probability) {
            if y {
                rows.positives.push([pb, pc]);
            } else {
                rows.negatives.push([pb, pc]);
            }
            rows.losses.push([loss(t.calibration, pb, y), loss(t.calibration, pc, y)]);
        }
    }
    diffs.sort_by(f64::total_cmp);
    // largest |Δ| first; pairs are already in a fixed order, which a stable sort keeps among equals
    disagreements.sort_by(|a, b| b.0.total_cmp(&a.0));
    let text = |a: &Answer| a.label.clone().or_else(|| a.value.map(|v| v.to_string()));
    let probability = |a: &Answer| a.probability.filter(|_| a.value.is_none());
    let disagreements = disagreements
        .iter()
        .take(DISAGREEMENTS)
        .map(|(d, p)| Disagreement {
            id: p.id.clone(),
            row: p.key.1,
            baseline: text(&p.baseline),
            candidate: text(&p.candidate),
            baseline_probability: probability(&p.baseline),
            candidate_probability: probability(&p.candidate),
            delta: *d,
        })
        .collect();
    let (psi, psi_of) = kind.map_or((None, None), |k| shadow_psi(k, &scored));
    let (baseline_latency_ms, candidate_latency_ms) =
        (latency_of(&s.baseline_latencies), latency_of(&s.candidate_latencies));
    let e = &s.errors;
    let reached = s.candidate_requests + e.answer_failures;
    let top = e.top(5);
    let shadow_errors = ShadowErrorReport {
        count: e.count(),
        answer_failures: e.answer_failures,
        delivery_failures: e.delivery_failures,
        answer_failure_rate: (reached > 0).then(|| e.answer_failures as f64 / reached as f64),
        top_reasons: top.clone(),
    };
    let top_failure = top
        .iter()
        .find(|r| r.side == "candidate")
        .map(|r| format!("the shadow could not answer: {} ({})", r.reason, evidence::thousands(r.count)));
    let labeled = outcomes.then_some(rows.rows());
    let (paired, test) = paired_test(&rows, s.unpaired_labeled, t);
    let mut b = shadow_side(&inputs.baseline, s.baseline_requests, 0, None, &baseline_latency_ms);
    let mut c = shadow_side(&inputs.candidate, reached, e.answer_failures, top_failure, &candidate_latency_ms);
    (b.labeled, c.labeled) = (labeled, labeled);
    // a shadow is one decision before any exposure, so it spends the whole α
    let evidence = Evidence { baseline: b, candidate: c, traffic_share: None, window_hours: 0.0, look: Look::ONLY };
    let v = evidence::shadow_verdict(&evidence, &paired, t);
    ShadowReport {
        function: inputs.function.clone(),
        alias: inputs.alias.clone(),
        since: inputs.since.clone(),
        until: inputs.until.clone(),
        baseline: inputs.baseline.clone(),
        candidate: inputs.candidate.clone(),
        baseline_model: s.baseline_model.clone(),
        candidate_model: s.candidate_model.clone(),
        pairs: s.pairs.len() as u64,
        primary_unmatched: s.primary_unmatched,
        primary_unmatched_with_error: s.primary_unmatched_errored,
        shadow_unmatched: s.shadow_unmatched,
        other_pairs: s.other_pairs,
        duplicates: s.duplicates,
        baseline_requests: s.baseline_requests,
        candidate_requests: s.candidate_requests,
        other_shadow_versions: inputs.other_shadow_versions.clone(),
        labeled_pairs,
        agreement: (labeled_pairs > 0).then(|| agree as f64 / labeled_pairs as f64),
        disagreeing: labeled_pairs - agree,
        delta_of: kind,
        delta: deltas(&diffs),
        psi,
        psi_of,
        baseline_latency_ms,
        candidate_latency_ms,
        shadow_errors,
        labeled,
        paired: outcomes.then_some(test),
        disagreements,
        verdict: v.verdict,
        reasons: v.reasons,
        checks: v.checks,
        thresholds: t.clone(),
        unreadable_lines,
        unreadable_labels: s.unreadable_labels,
        scatter: sample(&scored, SCATTER_POINTS).into_iter().map(|(x, y)| [x, y]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::predlog::{Outcomes, ShadowCollector};

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

    fn shadow_inputs() -> ShadowInputs {
        ShadowInputs {
            function: "churn".into(),
            alias: "production".into(),
            since: "2026-12-01T00:00:00Z".into(),
            until: "2026-12-02T00:00:00Z".into(),
            baseline: "3".into(),
            candidate: "4".into(),
            other_shadow_versions: vec![],
            thresholds: Thresholds::default(),
        }
    }

    /// 1,000 single-row requests answered by version 3 and copied to shadow 4, which scores row `i` with
    /// `shadow(i, p)` where version 3 scored `p`; outcomes for every row but every tenth. Returns the collector
    /// and the labeled rows' `[baseline, candidate]` scores by outcome.
    fn shadowed(shadow: impl Fn(u32, f64) -> f64) -> (ShadowCollector, Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let mut outcomes = String::from("id,label\n");
        let (mut pos, mut neg) = (vec![], vec![]);
        let mut lines = vec![];
        for i in 0..1000u32 {
            let y = (i * 7919 % 13) < 5;
            let jitter = f64::from(i * 104_729 % 1000) / 1000.0;
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            let good = round(((if y { 0.55 } else { 0.3 }) + 0.3 * jitter).min(1.0));
            let other = round(shadow(i, good));
            let (id, k) = (format!("c{i}"), format!("k{i}"));
            let copy = |l: String, shadow: bool| {
                l.replacen(r#""row":0"#, &format!(r#""correlation_id":"{k}","shadow":{shadow},"row":0"#), 1)
            };
            lines.push(copy(line("3", &format!("r{i}"), &id, good, 2.0), false));
            lines.push(copy(line("4", &format!("s{i}"), &id, other, 2.0 + f64::from(i % 3)), true));
            if i % 10 != 0 {
                outcomes += &format!("{id},{}\n", u8::from(y));
                if y {
                    pos.push([good, other]);
                } else {
                    neg.push([good, other]);
                }
            }
        }
        let mut c = ShadowCollector::new(Some(Outcomes::parse(&outcomes).unwrap()));
        for l in lines.iter().rev() {
            c.add(l);
        }
        (c, pos, neg)
    }

    #[test]
    fn a_worse_shadow_is_paired_row_by_row_and_rolled_back() {
        let (c, pos, neg) =
            shadowed(|i, p| (0.5 + 0.4 * (f64::from(i * 31 % 100) / 100.0 - 0.5) + 0.01 * p).clamp(0.0, 1.0));
        let r = build_shadow(&shadow_inputs(), c.pair("3", "4"), true, 0);
        assert_eq!((r.pairs, r.primary_unmatched, r.shadow_unmatched, r.labeled), (1000, 0, 0, Some(900)));
        assert_eq!((r.baseline_requests, r.candidate_requests), (1000, 1000));
        // the same rows through the stats directly
        let want = stats::auc_delong_paired(&pos, &neg).unwrap();
        let z = stats::auc_difference_paired(want).unwrap();
        let t = r.paired.as_ref().unwrap();
        assert_eq!((t.rows, t.positives, t.negatives), (900, pos.len() as u64, neg.len() as u64));
        assert_eq!((t.baseline_auc, t.candidate_auc), (Some(want.baseline.auc), Some(want.candidate.auc)));
        assert_eq!((t.z, t.p_value, t.difference), (Some(z.z), Some(z.p_value), Some(z.difference)));
        assert!(z.z < -10.0, "{z:?}");
        assert_eq!(r.verdict, Decision::Rollback, "{:?}", r.reasons);
        let names: Vec<&str> = r.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["error_rate", "client_error_rate", "latency_p99", "auc", "brier"]);
        assert!(r.reasons.iter().any(|x| x.contains("on the same 900 rows")), "{:?}", r.reasons);
        // agreement and |Δp| from the pairs
        let (mut agree, mut d) = (0, vec![]);
        for i in 0..1000u32 {
            let y = (i * 7919 % 13) < 5;
            let jitter = f64::from(i * 104_729 % 1000) / 1000.0;
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            let good = round(((if y { 0.55 } else { 0.3 }) + 0.3 * jitter).min(1.0));
            let bad = round((0.5 + 0.4 * (f64::from(i * 31 % 100) / 100.0 - 0.5) + 0.01 * good).clamp(0.0, 1.0));
            agree += usize::from((good >= 0.5) == (bad >= 0.5));
            d.push((bad - good).abs());
        }
        d.sort_by(f64::total_cmp);
        assert_eq!(r.agreement, Some(agree as f64 / 1000.0));
        assert_eq!((r.labeled_pairs, r.disagreeing), (1000, 1000 - agree as u64));
        let deltas = r.delta.unwrap();
        assert_eq!((r.delta_of, deltas.count), (Some("probability"), 1000));
        assert_eq!(
            (deltas.p50, deltas.p90, deltas.p99, deltas.max),
            (
                stats::quantile_sorted(&d, 0.5).unwrap(),
                stats::quantile_sorted(&d, 0.9).unwrap(),
                stats::quantile_sorted(&d, 0.99).unwrap(),
                d[999]
            )
        );
        assert!(r.psi.is_some_and(|p| p > 0.1) && r.psi_of == Some("probability"), "{:?}", r.psi);
        // the disagreements: labels differ, largest |Δ| first, at most 20
        assert_eq!(r.disagreements.len(), DISAGREEMENTS);
        assert!(r.disagreements.windows(2).all(|w| w[0].delta >= w[1].delta));
        assert!(r.disagreements.iter().all(|x| x.baseline != x.candidate && x.id.is_some()));
        assert_eq!(r.disagreements[0].delta, d[999]);
        assert_eq!((r.candidate_latency_ms.p50, r.baseline_latency_ms.p99), (Some(3.0), Some(2.0)));
        // 1,000 pairs are all drawn; more are thinned evenly to at most 2,000
        assert_eq!(r.scatter.len(), 1000);
        let many: Vec<u32> = (0..4999).collect();
        assert_eq!((sample(&many, SCATTER_POINTS).len(), sample(&many, SCATTER_POINTS)[1]), (1667, 3));
        let json = serde_json::to_value(&r).unwrap();
        for key in ["pairs", "agreement", "delta", "psi", "candidate_latency_ms", "shadow_errors", "paired", "verdict"]
        {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert!(json.get("scatter").is_none());
        assert_eq!(json["verdict"], "rollback");
        assert!(r.to_string().contains("shadow verdict: ROLLBACK"), "{r}");
    }

    #[test]
    fn an_identical_shadow_agrees_everywhere_and_is_promoted() {
        let (c, _, _) = shadowed(|_, p| p);
        let mut inputs = shadow_inputs();
        inputs.thresholds.max_p99_regression = 2.0;
        let r = build_shadow(&inputs, c.pair("3", "4"), true, 0);
        assert_eq!((r.pairs, r.agreement, r.disagreeing), (1000, Some(1.0), 0));
        let d = r.delta.unwrap();
        assert_eq!((d.p50, d.p90, d.p99, d.max, d.mean), (0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(r.psi, Some(0.0));
        assert!(r.disagreements.is_empty());
        let t = r.paired.as_ref().unwrap();
        assert_eq!((t.difference, t.z, t.p_value), (Some(0.0), Some(0.0), Some(1.0)));
        assert_eq!(r.verdict, Decision::Promote, "{:?}", r.reasons);
    }

    #[test]
    fn a_shadow_that_fails_its_copies_is_rolled_back_without_outcomes() {
        let mut c = ShadowCollector::new(None);
        for i in 0..600 {
            let k = format!("k{i}");
            let primary = line("3", &format!("r{i}"), &format!("c{i}"), 0.7, 2.0).replacen(
                r#""row":0"#,
                &format!(r#""correlation_id":"{k}","row":0"#),
                1,
            );
            c.add(&primary);
            if i % 10 == 0 {
                c.add(
                    &primary
                        .replace(r#""function_version":"3""#, r#""function_version":"4""#)
                        .replace(r#""row":0"#, r#""shadow":true,"row":0"#),
                );
            } else {
                c.add(&format!(
                    r#"{{"mlambda":"shadow_error","correlation_id":"{k}","function_version":"4","target":"arn:aws:lambda:us-east-1:1:function:churn:4","reason":"the model failed: tensor shape"}}"#
                ));
            }
        }
        let r = build_shadow(&shadow_inputs(), c.pair("3", "4"), false, 0);
        assert_eq!((r.pairs, r.primary_unmatched, r.primary_unmatched_with_error), (60, 540, 540));
        assert_eq!((r.shadow_errors.answer_failures, r.shadow_errors.answer_failure_rate), (540, Some(0.9)));
        assert_eq!((r.labeled, r.paired.is_none()), (None, true));
        assert_eq!(r.verdict, Decision::Rollback, "{:?}", r.reasons);
        assert!(
            r.reasons[0].contains("the shadow could not answer: the model failed: tensor shape (540)"),
            "{:?}",
            r.reasons
        );
        let skipped: Vec<&str> =
            r.checks.iter().filter(|c| c.status == evidence::Status::Skipped).map(|c| c.name).collect();
        assert_eq!(skipped, ["auc", "brier"]);
    }

    #[test]
    fn a_regressors_shadow_compares_values() {
        let mut c = ShadowCollector::new(None);
        for i in 0..100 {
            let v = f64::from(i);
            c.add(&format!(r#"{{"mlambda":"prediction","request_id":"r{i}","function_version":"3","id":"c{i}","correlation_id":"k{i}","row":0,"prediction":{v}.5}}"#));
            c.add(&format!(r#"{{"mlambda":"prediction","request_id":"s{i}","function_version":"4","id":"c{i}","correlation_id":"k{i}","shadow":true,"row":0,"prediction":{}.5}}"#, v + 2.0));
        }
        let r = build_shadow(&shadow_inputs(), c.pair("3", "4"), false, 0);
        assert_eq!((r.pairs, r.agreement, r.delta_of, r.psi_of), (100, None, Some("value"), Some("value_deciles")));
        assert_eq!(r.delta.map(|d| (d.p50, d.max)), Some((2.0, 2.0)));
        assert_eq!(r.disagreements.len(), DISAGREEMENTS, "the largest differences stand in for disagreements");
        assert_eq!(r.disagreements[0].baseline_probability, None);
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
