//! The rollout verdict from a report's evidence: promote, roll back or keep collecting, and why. Pure.
//!
//! Every axis is a non-inferiority test: "how much worse is the candidate" gets one-sided confidence bounds, and
//! the candidate is promoted only when the upper bound of every axis is below its margin (shown to be no worse
//! than the baseline by more than the margin), rolled back when the lower bound of any axis is above its margin
//! (shown worse by more than the margin), and kept collecting otherwise. The promote bound spends the rollout's α
//! over its planned looks (O'Brien–Fleming-type spending, [`stats::alpha_for_look`]); the rollback bound uses
//! the full α at every look, since a wrong rollback costs a redeploy and a missed one costs users.
//!
//! A backtest ([`backtest_verdict`]) judges a candidate before any user sees it, from two batch runs over the same
//! labeled rows: the same non-inferiority axes, but the AUC and calibration bounds come from paired tests on the
//! rows both versions scored (DeLong's paired test; the mean per-row difference in loss), which are far tighter
//! than the independent-sample ones a live A/B test must use. It is one decision, so it uses the whole α. A
//! shadow ([`shadow_verdict`]) is judged the same way on the rows both versions answered, plus p99 latency.
use serde::{Deserialize, Serialize};

use super::stats::{self, Auc, Bounds, Moments, PairedAuc};
pub use crate::config::evidence::{Calibration, Thresholds};

/// Which look at the evidence this is, of how many the rollout planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Look {
    /// 1-based.
    pub index: u32,
    pub planned: u32,
}

impl Look {
    /// A decision taken once: all of α.
    pub const ONLY: Look = Look { index: 1, planned: 1 };
}

/// The α a look spent, for people and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LookReport {
    pub index: u32,
    pub planned: u32,
    /// The one-sided level of this look's promote bounds.
    pub alpha: f64,
    /// The rollout's whole α.
    pub alpha_total: f64,
    pub spending: &'static str,
}

/// What the verdict needs to know about one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub version: String,
    /// Lambda's Invocations, else the requests in the log; `None` when neither is known.
    pub requests: Option<u64>,
    /// Failed answers that are the function's fault: 500s and Lambda `Errors` (crashes, timeouts).
    pub errors: Option<u64>,
    /// 400 answers: requests the version refused.
    pub client_errors: Option<u64>,
    /// The most frequent 400 and failure, as people read them.
    pub top_client_error: Option<String>,
    pub top_error: Option<String>,
    /// Requests whose model latency is in the log.
    pub latency_samples: u64,
    pub p99_ms: Option<f64>,
    /// Rows joined to an outcome; `None` without an outcomes file.
    pub labeled: Option<u64>,
    pub auc: Option<Auc>,
    /// The per-row calibration loss (`Thresholds::calibration`) of the labeled binary rows.
    pub calibration: Option<Moments>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub baseline: Side,
    pub candidate: Side,
    /// The candidate's share of the alias's traffic, in (0, 1).
    pub traffic_share: Option<f64>,
    /// Length of the window the evidence covers.
    pub window_hours: f64,
    pub look: Look,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Promote,
    Rollback,
    Continue,
}

impl Decision {
    /// The word JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Promote => "promote",
            Decision::Rollback => "rollback",
            Decision::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Shown worse by more than the margin (or, for p99, past the allowed regression).
    Worse,
    /// Shown no worse than the margin, with enough data.
    NotWorse,
    /// Neither shown yet.
    Insufficient,
    /// Not measured in this report (no outcomes file).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// One sentence for a person.
    pub detail: String,
    /// How much worse the candidate is, with the lower bound at the full α and the upper at this look's α.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Bounds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: Decision,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub look: LookReport,
}

/// `p = 0.042`, or `p < 0.001` where three decimals would show zero.
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// A share as a percentage, with a third decimal below 1% so a rare error rate does not read as zero.
pub fn pct(x: f64) -> String {
    if x.abs() < 0.01 {
        format!("{:.3}%", x * 100.0)
    } else {
        format!("{:.2}%", x * 100.0)
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// "candidate 4 needs N more X and baseline 3 needs M more (about T more through the alias at 10% candidate
/// traffic, ~H h at the current rate)".
fn shortfall(e: &Evidence, what: &str, need_b: u64, need_c: u64, rate_per_hour: Option<f64>) -> String {
    let (b, c) = (&e.baseline, &e.candidate);
    let mut parts = Vec::new();
    if need_c > 0 {
        parts.push(format!("candidate {} needs {} more {what}", c.version, thousands(need_c)));
    }
    if need_b > 0 {
        parts.push(format!("baseline {} needs {} more {what}", b.version, thousands(need_b)));
    }
    let mut text = parts.join(" and ");
    if let Some(w) = e.traffic_share.filter(|w| *w > 0.0 && *w < 1.0) {
        // less a hair, so 440 / 0.1 is 4,400 and not 4,401 from 0.1's binary rounding
        let total = ((need_c as f64 / w).max(need_b as f64 / (1.0 - w)) - 1e-9).ceil();
        text += &format!(
            " (about {} more {what} through the alias at {:.0}% candidate traffic",
            thousands(total as u64),
            w * 100.0
        );
        if let Some(r) = rate_per_hour.filter(|r| *r > 0.0) {
            text += &format!(", ~{:.1} h at the current {:.0} per hour", total / r, r);
        }
        text += ")";
    }
    text
}

fn per_hour(n: u64, e: &Evidence) -> Option<f64> {
    (e.window_hours > 0.0).then(|| n as f64 / e.window_hours)
}

/// The one-sided quantiles of a look: the rollback bound's at the full α, the promote bound's at the look's α.
struct Quantiles {
    lower: f64,
    upper: f64,
    look_alpha: f64,
}

impl Quantiles {
    fn new(t: &Thresholds, look: Look) -> Quantiles {
        let look_alpha = stats::alpha_for_look(t.alpha, look.index, look.planned);
        let upper = if look_alpha > 0.0 { stats::normal_quantile(1.0 - look_alpha) } else { f64::INFINITY };
        Quantiles { lower: stats::normal_quantile(1.0 - t.alpha), upper, look_alpha }
    }
}

/// One non-inferiority axis, measured.
struct Axis<'a> {
    name: &'static str,
    bounds: Bounds,
    margin: f64,
    /// The comparison in words, e.g. `AUC 0.8120 vs 0.8010`.
    compare: String,
    /// How a difference in this axis's unit reads.
    unit: &'a dyn Fn(f64) -> String,
    /// (baseline, candidate) sample sizes, the floor they must reach, and what they count.
    have: (u64, u64),
    floor: u64,
    what: &'static str,
    rate: Option<f64>,
    /// Appended to a `worse` detail (the top error reason).
    why: Option<String>,
    /// The upper bound if both samples grew by a factor at the current estimates.
    upper_at: &'a dyn Fn(f64) -> f64,
}

/// Worse when the lower bound is past the margin, not worse when the upper bound is inside it and the floors
/// are met, insufficient otherwise, with how much more data the upper bound needs at the current difference.
fn judge(e: &Evidence, a: Axis<'_>) -> Check {
    let Bounds { worse_by, lower, upper } = a.bounds;
    let u = a.unit;
    let upper_text = if upper.is_finite() { u(upper) } else { "unbounded".into() };
    let numbers = format!(
        "{}: worse by {} (lower bound {}, upper bound {}; margin {})",
        a.compare,
        u(worse_by),
        u(lower),
        upper_text,
        u(a.margin).trim_start_matches('+')
    );
    let (b, c) = a.have;
    let floor_b = a.floor.saturating_sub(b);
    let floor_c = a.floor.saturating_sub(c);
    let (status, detail) = if lower > a.margin {
        let why = a.why.map(|w| format!("; {w}")).unwrap_or_default();
        (Status::Worse, format!("candidate {} is worse by more than the margin: {numbers}{why}", e.candidate.version))
    } else if upper < a.margin && floor_b == 0 && floor_c == 0 {
        (Status::NotWorse, format!("{numbers}: no worse than the margin"))
    } else if !upper.is_finite() {
        let spent = format!(
            "this rollout has spent its α (look {} of {}): start a new rollout of the candidate to promote it",
            e.look.index, e.look.planned
        );
        (Status::Insufficient, format!("{numbers}; {spent}"))
    } else {
        match stats::growth_needed(a.upper_at, a.margin) {
            Some(factor) => {
                let grow = |n: u64, floor: u64| ((n as f64 * factor).ceil() as u64).saturating_sub(n).max(floor);
                let need = shortfall(e, a.what, grow(b, floor_b), grow(c, floor_c), a.rate);
                (Status::Insufficient, format!("{numbers}; {need}"))
            }
            None => {
                let more = "more data will not clear the margin unless the difference shrinks";
                (Status::Insufficient, format!("{numbers}; {more}"))
            }
        }
    };
    Check { name: a.name, status, detail, bounds: Some(a.bounds), margin: Some(a.margin) }
}

/// A normal upper bound if both samples grew by `k`: its half-width shrinks with the square root.
fn shrunk(b: Bounds, k: f64) -> f64 {
    b.worse_by + (b.upper - b.worse_by) / k.sqrt()
}

fn points(x: f64) -> String {
    format!("{:+.2} points", x * 100.0)
}

fn error_check(e: &Evidence, t: &Thresholds, q: &Quantiles, client: bool) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (name, what) = if client { ("client_error_rate", "400 rate") } else { ("error_rate", "error rate") };
    let count = |s: &Side| if client { s.client_errors } else { s.errors };
    let (Some(bn), Some(cn)) = (b.requests, c.requests) else {
        let detail = format!("no request counts for both versions in the window, so the {what} is unknown");
        return unbounded(name, Status::Insufficient, detail);
    };
    let (be, ce) = (count(b).unwrap_or(0).min(bn), count(c).unwrap_or(0).min(cn));
    let Some(bounds) = stats::newcombe((be, bn), (ce, cn), q.lower, q.upper) else {
        let need = shortfall(e, "requests", t.min_requests.saturating_sub(bn), t.min_requests.saturating_sub(cn), None);
        let detail = format!("a version has no requests in the window, so the {what} is unknown; {need}");
        return unbounded(name, Status::Insufficient, detail);
    };
    let rate = |k: u64, n: u64| k as f64 / n.max(1) as f64;
    let compare = format!("{what} {} ({ce}/{cn}) vs {} ({be}/{bn})", pct(rate(ce, cn)), pct(rate(be, bn)));
    let top = if client { c.top_client_error.clone() } else { c.top_error.clone() };
    let f = |k: u64, n: u64| (k as f64, n as f64);
    let upper_at = |scale: f64| {
        stats::newcombe_scaled(f(be, bn), f(ce, cn), scale, q.lower, q.upper).map_or(f64::INFINITY, |b| b.upper)
    };
    judge(
        e,
        Axis {
            name,
            bounds,
            margin: t.error_rate_margin,
            compare,
            unit: &points,
            have: (bn, cn),
            floor: t.min_requests,
            what: "requests",
            rate: per_hour(bn + cn, e),
            why: top.map(|r| format!("top reason: {r}")),
            upper_at: &upper_at,
        },
    )
}

fn latency_check(e: &Evidence, t: &Thresholds) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (bn, cn) = (b.latency_samples, c.latency_samples);
    let enough = bn >= t.min_requests && cn >= t.min_requests;
    let need = || {
        let (nb, nc) = (t.min_requests.saturating_sub(bn), t.min_requests.saturating_sub(cn));
        shortfall(e, "logged requests", nb, nc, per_hour(bn + cn, e))
    };
    let (status, detail) = match (b.p99_ms, c.p99_ms) {
        (Some(bp), Some(cp)) => {
            let ratio = if bp > 0.0 {
                cp / bp
            } else if cp > 0.0 {
                f64::INFINITY
            } else {
                1.0
            };
            let compare = format!(
                "p99 latency {cp:.3} ms vs {bp:.3} ms ({ratio:.2}x, at most {:.2}x allowed)",
                t.max_p99_regression
            );
            if !enough {
                (Status::Insufficient, format!("{compare}; {}", need()))
            } else if ratio > t.max_p99_regression {
                (Status::Worse, format!("candidate {} is slower: {compare}", c.version))
            } else {
                (Status::NotWorse, compare)
            }
        }
        _ => (Status::Insufficient, format!("no model latencies in the log for both versions; {}", need())),
    };
    unbounded("latency_p99", status, detail)
}

/// A check without confidence bounds: nothing to bound yet, or (p99) a ratio.
fn unbounded(name: &'static str, status: Status, detail: String) -> Check {
    Check { name, status, detail, bounds: None, margin: None }
}

fn skipped(name: &'static str, what: &str) -> Check {
    unbounded(name, Status::Skipped, format!("no outcomes given (`--outcomes FILE`), so {what} was not compared"))
}

fn labeled_shortfall(e: &Evidence, t: &Thresholds, bl: u64, cl: u64) -> String {
    shortfall(e, "labeled rows", t.min_labeled.saturating_sub(bl), t.min_labeled.saturating_sub(cl), None)
}

fn auc_check(e: &Evidence, t: &Thresholds, q: &Quantiles) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (Some(bl), Some(cl)) = (b.labeled, c.labeled) else {
        return skipped("auc", "AUC");
    };
    let (Some(ba), Some(ca)) = (b.auc, c.auc) else {
        let why = "AUC needs labeled rows of both outcomes for both versions";
        let detail = format!("{why}; {}", labeled_shortfall(e, t, bl, cl));
        return unbounded("auc", Status::Insufficient, detail);
    };
    let compare = format!("AUC {:.4} vs {:.4}", ca.auc, ba.auc);
    let (Some(bv), Some(cv)) = (ba.variance, ca.variance) else {
        let detail =
            format!("{compare} (too few rows of one outcome for a variance); {}", labeled_shortfall(e, t, bl, cl));
        return unbounded("auc", Status::Insufficient, detail);
    };
    let bounds = stats::normal_bounds(ba.auc - ca.auc, (bv + cv).max(0.0).sqrt(), q.lower, q.upper);
    labeled_axis(e, t, ("auc", compare), bounds, t.auc_margin, (bl, cl))
}

/// An outcome axis with normal bounds, judged on labeled rows.
fn labeled_axis(
    e: &Evidence,
    t: &Thresholds,
    (name, compare): (&'static str, String),
    bounds: Bounds,
    margin: f64,
    have: (u64, u64),
) -> Check {
    let unit = |x: f64| format!("{x:+.4}");
    let upper_at = |k: f64| shrunk(bounds, k);
    let axis = Axis {
        name,
        bounds,
        margin,
        compare,
        unit: &unit,
        have,
        floor: t.min_labeled,
        what: "labeled rows",
        rate: None,
        why: None,
        upper_at: &upper_at,
    };
    judge(e, axis)
}

/// The calibration loss `thresholds.calibration` compares: its check's name, how people read it, its margin.
fn calibration_axis(t: &Thresholds) -> (&'static str, &'static str, f64) {
    match t.calibration {
        Calibration::Brier => ("brier", "Brier score", t.brier_margin),
        Calibration::LogLoss => ("log_loss", "log loss", t.log_loss_margin),
    }
}

fn calibration_check(e: &Evidence, t: &Thresholds, q: &Quantiles) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (name, label, margin) = calibration_axis(t);
    let (Some(bl), Some(cl)) = (b.labeled, c.labeled) else {
        return skipped(name, label);
    };
    let (Some(bm), Some(cm)) = (b.calibration, c.calibration) else {
        let why = format!("the {label} needs at least two labeled binary rows per version");
        let detail = format!("{why}; {}", labeled_shortfall(e, t, bl, cl));
        return unbounded(name, Status::Insufficient, detail);
    };
    let bounds = stats::normal_bounds(cm.mean - bm.mean, stats::welch_se(bm, cm), q.lower, q.upper);
    let compare = format!("{label} {:.4} vs {:.4}", cm.mean, bm.mean);
    labeled_axis(e, t, (name, compare), bounds, margin, (bm.n, cm.n))
}

/// Rollback when any check shows the candidate worse by more than its margin; promote when every check shows it
/// no worse than its margin (outcome checks may be skipped without outcomes); continue otherwise, saying what
/// data is still missing.
pub fn verdict(e: &Evidence, t: &Thresholds) -> Verdict {
    let q = Quantiles::new(t, e.look);
    let checks = vec![
        error_check(e, t, &q, false),
        error_check(e, t, &q, true),
        latency_check(e, t),
        auc_check(e, t, &q),
        calibration_check(e, t, &q),
    ];
    decide(e, t, &q, checks)
}

/// What a backtest knows beyond each version's own figures: the rows both versions scored that joined an
/// outcome, compared row by row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Paired {
    /// Labeled rows both runs scored.
    pub rows: u64,
    /// DeLong's paired AUCs on those rows; `None` without both outcomes among them.
    pub auc: Option<PairedAuc>,
    /// The calibration loss (`Thresholds::calibration`) on those rows.
    pub calibration: Option<PairedLoss>,
}

/// Both versions' mean per-row loss on the same rows, and the moments of the per-row difference (candidate −
/// baseline), whose mean is the difference of the means and whose variance is the paired one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedLoss {
    pub baseline: f64,
    pub candidate: f64,
    pub difference: Moments,
}

/// A backtest's verdict: the failure rates of the two runs (each row a request: the share the runtime refused,
/// the share it failed on), and the AUC and calibration on the rows both scored, from paired tests. Latency is
/// not judged: a batch times whole chunks of rows, not answers. Promote here means the candidate is shown no
/// worse on every axis, so exposing it to traffic (`mlambda rollout`) is reasonable; rollback means it is shown
/// worse and should not be exposed.
pub fn backtest_verdict(e: &Evidence, paired: &Paired, t: &Thresholds) -> Verdict {
    paired_verdict(e, paired, t, false)
}

/// A shadow's verdict (`report --shadow`): the candidate answered copies of the primary's requests, so the
/// outcome axes are the backtest's paired tests on the rows both answered, and the error rate is its failed
/// answers among the copies. Unlike a batch, each copy is one request timed on its own, so p99 model latency is
/// judged as in a live rollout. Without outcomes the outcome axes are skipped, as in the live verdict.
pub fn shadow_verdict(e: &Evidence, paired: &Paired, t: &Thresholds) -> Verdict {
    paired_verdict(e, paired, t, true)
}

fn paired_verdict(e: &Evidence, paired: &Paired, t: &Thresholds, latency: bool) -> Verdict {
    let q = Quantiles::new(t, e.look);
    let mut checks = vec![error_check(e, t, &q, false), error_check(e, t, &q, true)];
    if latency {
        checks.push(latency_check(e, t));
    }
    checks.push(paired_auc_check(e, t, &q, paired));
    checks.push(paired_calibration_check(e, t, &q, paired));
    decide(e, t, &q, checks)
}

fn paired_auc_check(e: &Evidence, t: &Thresholds, q: &Quantiles, p: &Paired) -> Check {
    if e.baseline.labeled.is_none() {
        return skipped("auc", "AUC");
    }
    let (Some(a), Some(var)) = (p.auc, p.auc.and_then(|a| a.difference_variance())) else {
        let why = "the paired AUC needs at least two rows of each outcome that both versions scored";
        let detail = format!("{why} ({} paired rows); {}", thousands(p.rows), labeled_shortfall(e, t, p.rows, p.rows));
        return unbounded("auc", Status::Insufficient, detail);
    };
    let compare = format!("AUC {:.4} vs {:.4} on the same {} rows", a.candidate.auc, a.baseline.auc, thousands(p.rows));
    let bounds = stats::normal_bounds(a.baseline.auc - a.candidate.auc, var.max(0.0).sqrt(), q.lower, q.upper);
    labeled_axis(e, t, ("auc", compare), bounds, t.auc_margin, (p.rows, p.rows))
}

fn paired_calibration_check(e: &Evidence, t: &Thresholds, q: &Quantiles, p: &Paired) -> Check {
    let (name, label, margin) = calibration_axis(t);
    if e.baseline.labeled.is_none() {
        return skipped(name, label);
    }
    let Some(l) = p.calibration else {
        let why = format!("the paired {label} needs at least two labeled binary rows that both versions scored");
        let detail = format!("{why}; {}", labeled_shortfall(e, t, p.rows, p.rows));
        return unbounded(name, Status::Insufficient, detail);
    };
    let d = l.difference;
    let se = (d.variance.max(0.0) / d.n as f64).sqrt();
    let bounds = stats::normal_bounds(d.mean, se, q.lower, q.upper);
    let compare = format!("{label} {:.4} vs {:.4} on the same {} rows", l.candidate, l.baseline, thousands(d.n));
    labeled_axis(e, t, (name, compare), bounds, margin, (d.n, d.n))
}

/// The verdict over measured checks: rollback when any is worse, promote when every one is not worse (or
/// skipped), continue otherwise.
fn decide(e: &Evidence, t: &Thresholds, q: &Quantiles, checks: Vec<Check>) -> Verdict {
    let worse: Vec<String> = checks.iter().filter(|c| c.status == Status::Worse).map(|c| c.detail.clone()).collect();
    let (verdict, reasons) = if !worse.is_empty() {
        (Decision::Rollback, worse)
    } else if checks.iter().all(|c| matches!(c.status, Status::NotWorse | Status::Skipped)) {
        (Decision::Promote, checks.iter().map(|c| c.detail.clone()).collect())
    } else {
        let waiting = checks.iter().filter(|c| c.status == Status::Insufficient).map(|c| c.detail.clone()).collect();
        (Decision::Continue, waiting)
    };
    let look = LookReport {
        index: e.look.index,
        planned: e.look.planned,
        alpha: q.look_alpha,
        alpha_total: t.alpha,
        spending: "o'brien-fleming",
    };
    Verdict { verdict, reasons, checks, look }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(version: &str, requests: u64, errors: u64, p99: f64, labeled: Option<u64>, auc: Option<Auc>) -> Side {
        Side {
            version: version.into(),
            requests: Some(requests),
            errors: Some(errors),
            client_errors: Some(0),
            top_client_error: None,
            top_error: None,
            latency_samples: requests,
            p99_ms: Some(p99),
            labeled,
            auc,
            calibration: labeled.map(|n| Moments { n, mean: 0.15, variance: 0.04 }),
        }
    }

    fn evidence(baseline: Side, candidate: Side) -> Evidence {
        Evidence { baseline, candidate, traffic_share: Some(0.1), window_hours: 24.0, look: Look::ONLY }
    }

    const AUC_B: Auc = Auc { auc: 0.80, variance: Some(0.0004) };

    fn statuses(v: &Verdict) -> Vec<(&'static str, Status)> {
        v.checks.iter().map(|c| (c.name, c.status)).collect()
    }

    #[test]
    fn a_candidate_as_good_with_enough_data_is_promoted() {
        let mut c = side("4", 2000, 8, 12.5, Some(1000), Some(Auc { auc: 0.83, variance: Some(0.0001) }));
        c.calibration = Some(Moments { n: 1000, mean: 0.14, variance: 0.04 });
        let e = evidence(side("3", 9000, 45, 12.0, Some(2000), Some(AUC_B)), c);
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn an_equal_brier_score_on_a_thousand_rows_is_not_yet_proof() {
        let e = evidence(
            side("3", 9000, 45, 12.0, Some(2000), Some(AUC_B)),
            side("4", 2000, 8, 12.5, Some(1000), Some(Auc { auc: 0.83, variance: Some(0.0001) })),
        );
        let v = verdict(&e, &Thresholds::default());
        assert_eq!(v.verdict, Decision::Continue);
        assert_eq!(statuses(&v)[4], ("brier", Status::Insufficient));
        assert!(v.reasons[0].contains("more labeled rows"), "{:?}", v.reasons);
    }

    #[test]
    fn more_errors_roll_back_even_with_little_data() {
        let e = evidence(side("3", 9000, 9, 12.0, None, None), side("4", 200, 12, 12.0, None, None));
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn a_candidate_that_refuses_every_request_is_rolled_back_naming_the_reason() {
        let mut c = side("4", 200, 0, 0.0, None, None);
        c.client_errors = Some(200);
        c.latency_samples = 0;
        c.p99_ms = None;
        c.top_client_error = Some("400 InvalidInput: missing required features: tenure (200)".into());
        let v = verdict(&evidence(side("3", 600, 0, 2.0, None, None), c), &Thresholds::default());
        assert_eq!(v.verdict, Decision::Rollback);
        assert_eq!(v.reasons.len(), 1, "{:?}", v.reasons);
        assert!(v.reasons[0].contains("400 rate 100.00% (200/200) vs 0.000% (0/600)"), "{}", v.reasons[0]);
        assert!(v.reasons[0].contains("top reason: 400 InvalidInput: missing required features"), "{}", v.reasons[0]);
    }

    #[test]
    fn a_slower_p99_and_a_worse_auc_roll_back_with_both_reasons() {
        let e = evidence(
            side("3", 9000, 9, 10.0, Some(2000), Some(AUC_B)),
            side("4", 1000, 1, 15.0, Some(300), Some(Auc { auc: 0.70, variance: Some(0.0009) })),
        );
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn too_little_data_continues_and_says_how_much_more() {
        let e = evidence(
            side("3", 2700, 3, 10.0, Some(150), Some(AUC_B)),
            side("4", 300, 0, 10.5, Some(20), Some(Auc { auc: 0.82, variance: Some(0.004) })),
        );
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn without_metrics_or_outcomes_nothing_is_promoted() {
        let mut b = side("3", 900, 0, 10.0, None, None);
        let c = side("4", 600, 0, 10.0, None, None);
        b.requests = None;
        let e = Evidence { traffic_share: None, ..evidence(b, c) };
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn zero_errors_on_both_sides_is_not_proof_on_thin_data() {
        // Wald would give a zero-width interval at 0/600; Wilson's upper bound on 0 of 600 is not zero
        let e = evidence(side("3", 600, 0, 10.0, None, None), side("4", 600, 0, 10.0, None, None));
        let v = verdict(&e, &Thresholds::default());
        let err = &v.checks[0];
        assert!(err.bounds.is_some_and(|b| b.upper > 0.0), "{err:?}");
        assert_eq!(err.status, Status::NotWorse, "{}", err.detail);
        let tight = Thresholds { error_rate_margin: 0.002, ..Thresholds::default() };
        let v = verdict(&e, &tight);
        assert_eq!(v.checks[0].status, Status::Insufficient, "{}", v.checks[0].detail);
        assert!(v.checks[0].detail.contains("more requests"), "{}", v.checks[0].detail);
    }

    #[test]
    fn later_looks_spend_more_and_a_look_past_the_plan_cannot_promote() {
        let mut c = side("4", 2000, 8, 12.5, Some(1000), Some(Auc { auc: 0.83, variance: Some(0.0001) }));
        c.calibration = Some(Moments { n: 1000, mean: 0.14, variance: 0.04 });
        let e = evidence(side("3", 9000, 45, 12.0, Some(2000), Some(AUC_B)), c);
        let t = Thresholds::default();
        let first = verdict(&Evidence { look: Look { index: 1, planned: 3 }, ..e.clone() }, &t);
        let last = verdict(&Evidence { look: Look { index: 3, planned: 3 }, ..e.clone() }, &t);
        assert!(first.look.alpha < last.look.alpha, "{:?} {:?}", first.look, last.look);
        let width = |v: &Verdict| v.checks[3].bounds.map(|b| b.upper - b.worse_by).unwrap_or(f64::NAN);
        assert!(width(&first) > width(&last));
        let past = verdict(&Evidence { look: Look { index: 4, planned: 3 }, ..e }, &t);
        assert_eq!(past.verdict, Decision::Continue);
        assert!(past.reasons.iter().any(|r| r.contains("spent its α (look 4 of 3)")), "{:?}", past.reasons);
        assert_eq!(statuses(&past)[2], ("latency_p99", Status::NotWorse));
    }

    /// A backtest's evidence: 20,000 rows each, none failed, with a paired AUC and calibration difference.
    fn backtest(candidate_auc: f64, covariance: f64, loss_difference: f64) -> (Evidence, Paired) {
        let mut b = side("3", 20_000, 0, 0.0, Some(18_000), Some(AUC_B));
        let mut c = side("4", 20_000, 0, 0.0, Some(18_000), Some(Auc { auc: candidate_auc, variance: Some(0.0004) }));
        for s in [&mut b, &mut c] {
            (s.latency_samples, s.p99_ms) = (0, None);
        }
        let e = Evidence { traffic_share: None, window_hours: 0.0, ..evidence(b, c) };
        let paired = Paired {
            rows: 18_000,
            auc: Some(PairedAuc {
                baseline: AUC_B,
                candidate: Auc { auc: candidate_auc, variance: Some(0.0004) },
                covariance: Some(covariance),
                positives: 6_000,
                negatives: 12_000,
            }),
            calibration: Some(PairedLoss {
                baseline: 0.15,
                candidate: 0.15 + loss_difference,
                difference: Moments { n: 18_000, mean: loss_difference, variance: 0.001 },
            }),
        };
        (e, paired)
    }

    #[test]
    fn a_backtest_uses_the_paired_variance_and_judges_no_latency() {
        // AUC 0.795 vs 0.80 with both variances 0.0004: unpaired, the upper bound is 0.005 + 1.645 · 0.028 ≈ 0.052,
        // past the 0.02 margin; paired with covariance 0.00039, it is 0.005 + 1.645 · √0.00002 ≈ 0.0124
        let (e, paired) = backtest(0.795, 0.00039, 0.0);
        let t = Thresholds::default();
        let v = backtest_verdict(&e, &paired, &t);
        assert_eq!(v.verdict, Decision::Promote, "{:?}", v.reasons);
        let names: Vec<&str> = v.checks.iter().map(|c| c.name).collect();
        assert_eq!(names, ["error_rate", "client_error_rate", "auc", "brier"]);
        let b = v.checks[2].bounds.unwrap();
        let se = 0.00002f64.sqrt();
        assert!((b.upper - (0.005 + stats::normal_quantile(0.95) * se)).abs() < 1e-12, "{b:?}");
        assert!(v.checks[2].detail.contains("AUC 0.7950 vs 0.8000 on the same 18,000 rows"), "{}", v.checks[2].detail);
        let live = verdict(&e, &t);
        assert_eq!(
            live.checks[3].status,
            Status::Insufficient,
            "the unpaired test cannot tell: {}",
            live.checks[3].detail
        );
        assert!((v.look.alpha - t.alpha).abs() < 1e-12, "one look spends the whole α: {:?}", v.look);
    }

    #[test]
    fn a_clearly_worse_backtest_rolls_back_and_thin_paired_data_continues() {
        let t = Thresholds::default();
        let (e, paired) = backtest(0.70, 0.0003, 0.02);
        let v = backtest_verdict(&e, &paired, &t);
        assert_eq!(v.verdict, Decision::Rollback);
        assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
        assert!(
            v.reasons[0].contains("candidate 4 is worse by more than the margin: AUC 0.7000 vs 0.8000"),
            "{:?}",
            v.reasons
        );
        assert!(v.reasons[1].contains("Brier score 0.1700 vs 0.1500"), "{:?}", v.reasons);
        let none = Paired { rows: 1, auc: None, calibration: None };
        let v = backtest_verdict(&e, &none, &t);
        assert_eq!(v.verdict, Decision::Continue);
        assert!(
            v.reasons.iter().any(|r| r.contains("paired AUC needs") && r.contains("199 more labeled rows")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(Thresholds::default().validate().is_ok());
        let bad = Thresholds { alpha: 0.0, ..Thresholds::default() };
        assert_eq!(bad.validate().unwrap_err().0, "rollout.evidence.alpha");
        let bad = Thresholds { max_p99_regression: 0.9, ..Thresholds::default() };
        assert_eq!(bad.validate().unwrap_err().0, "rollout.evidence.max_p99_regression");
        for (t, key) in [
            (Thresholds { error_rate_margin: -0.01, ..Thresholds::default() }, "rollout.evidence.error_rate_margin"),
            (Thresholds { error_rate_margin: 1.0, ..Thresholds::default() }, "rollout.evidence.error_rate_margin"),
            (Thresholds { auc_margin: 1.0, ..Thresholds::default() }, "rollout.evidence.auc_margin"),
            (Thresholds { brier_margin: 0.0, ..Thresholds::default() }, "rollout.evidence.brier_margin"),
            (Thresholds { log_loss_margin: 1.0, ..Thresholds::default() }, "rollout.evidence.log_loss_margin"),
        ] {
            let (field, why) = t.validate().unwrap_err();
            assert_eq!(field, key);
            assert!(why.contains("greater than 0"), "{why}");
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(
            (thousands(7), thousands(1234), thousands(1234567)),
            ("7".into(), "1,234".into(), "1,234,567".into())
        );
    }
}
