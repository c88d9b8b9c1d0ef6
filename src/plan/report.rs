//! `mlambda report` as a value: per-version evidence from the folded log and Lambda's metrics, PSI, the AUC test
//! and the verdict. Pure; the command gathers the inputs and the ui renders the result.
use std::collections::BTreeMap;

use serde::Serialize;

use super::evidence::{self, Calibration, Evidence, Look, LookReport, Side, Thresholds, Verdict};
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

fn version_report(version: &str, acc: Option<VersionAcc>, inputs: &Inputs, outcomes: bool) -> VersionReport {
    let acc = acc.unwrap_or_default();
    let m = inputs.metrics.get(version).copied().unwrap_or_default();
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
    let (client_errors, model_errors, error_counts_from) = match (m.client_errors, m.model_errors) {
        (None, None) => (acc.client_errors, acc.model_errors, "log"),
        (c, e) => (c.unwrap_or(0), e.unwrap_or(0), "emf"),
    };
    let requests = m.invocations.unwrap_or(logged_requests + acc.client_errors + acc.model_errors);
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
        model_version: acc.model_version().map(str::to_string).or_else(|| inputs.model_versions.get(version).cloned()),
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
        auc_ci: auc.and_then(|a| stats::auc_interval(a, inputs.thresholds.alpha)),
        log_loss: stats::log_loss(&pairs),
        brier: stats::brier(&pairs),
        accuracy: (labeled_n > 0).then(|| correct as f64 / labeled_n as f64),
        latencies,
        roc: stats::roc_curve(&pairs),
        auc_value: auc,
        calibration: stats::Moments::of(pairs.iter().map(|&(p, y)| match inputs.thresholds.calibration {
            Calibration::Brier => stats::brier_row(p, y),
            Calibration::LogLoss => stats::log_loss_row(p, y),
        })),
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

/// Computes the report from the folded log and the gathered inputs.
pub fn build(inputs: &Inputs, mut collected: Collector) -> Report {
    let outcomes = collected.has_outcomes();
    let b_acc = collected.versions.remove(&inputs.baseline);
    let c_acc = collected.versions.remove(&inputs.candidate);
    let unreadable_labels = b_acc.iter().chain(c_acc.iter()).map(|a| a.unreadable_labels).sum::<u64>();
    let b = version_report(&inputs.baseline, b_acc, inputs, outcomes);
    let c = version_report(&inputs.candidate, c_acc, inputs, outcomes);
    let (psi, psi_of) = match (&b.histogram, &c.histogram, &b.class_shares, &c.class_shares) {
        (Some(hb), Some(hc), _, _) if b.histogram_of == Some("probability") && c.histogram_of == b.histogram_of => {
            (stats::psi(hb, hc), Some("probability"))
        }
        (_, _, Some(sb), Some(sc)) => (class_psi(sb, sc, b.rows, c.rows), Some("class_shares")),
        (Some(hb), Some(hc), _, _) => (stats::psi(hb, hc), b.histogram_of),
        _ => (None, None),
    };
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

    #[test]
    fn a_version_without_lines_reports_nulls() {
        let r = build(&inputs(), Collector::new(None));
        let c = &r.versions[1];
        assert_eq!(c.model_version.as_deref(), Some("v5"));
        assert_eq!((c.requests, c.rows, c.labeled, c.auc, c.latency_ms.p99), (0, 0, None, None, None));
        assert_eq!((r.psi, r.auc_difference), (None, None));
    }
}
