//! The rollout verdict from a report's evidence: promote, roll back or keep collecting, and why. Pure.
use serde::{Deserialize, Serialize};

use super::stats::{self, Auc, ZTest};

/// How much evidence a verdict needs (`rollout.evidence` in mlambda.yaml).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Requests each version needs before its error rate and p99 latency can clear it for promotion.
    pub min_requests: u64,
    /// Rows joined to an outcome each version needs before its AUC can clear it for promotion.
    pub min_labeled: u64,
    /// Significance level of the error-rate and AUC tests.
    pub alpha: f64,
    /// The candidate's p99 latency may be at most this multiple of the baseline's.
    pub max_p99_regression: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { min_requests: 500, min_labeled: 200, alpha: 0.05, max_p99_regression: 1.2 }
    }
}

impl Thresholds {
    /// The field and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(("rollout.evidence.alpha", format!("is {}, it must be between 0 and 0.5", self.alpha)));
        }
        if !(self.max_p99_regression >= 1.0 && self.max_p99_regression.is_finite()) {
            return Err((
                "rollout.evidence.max_p99_regression",
                format!("is {}, it must be 1 or more (1.2 allows a 20% slower p99)", self.max_p99_regression),
            ));
        }
        if self.min_requests == 0 {
            return Err(("rollout.evidence.min_requests", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// What the verdict needs to know about one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub version: String,
    /// Invocations from Lambda's metrics; `None` when CloudWatch had no datapoints.
    pub requests: Option<u64>,
    pub errors: Option<u64>,
    /// Requests whose model latency is in the log.
    pub latency_samples: u64,
    pub p99_ms: Option<f64>,
    /// Rows joined to an outcome; `None` without an outcomes file.
    pub labeled: Option<u64>,
    pub auc: Option<Auc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub baseline: Side,
    pub candidate: Side,
    /// The candidate's share of the alias's traffic, in (0, 1).
    pub traffic_share: Option<f64>,
    /// Length of the window the evidence covers.
    pub window_hours: f64,
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
    /// Significantly worse (or, for p99, past the allowed regression).
    Worse,
    /// Enough data and not worse.
    NotWorse,
    /// Not worse so far, but too little data to say so.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<ZTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: Decision,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
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

/// "needs N more X (about M alias requests at 10% traffic, ~H h at the current rate)".
fn shortfall(e: &Evidence, what: &str, have_b: u64, have_c: u64, min: u64, rate_per_hour: Option<f64>) -> String {
    let (b, c) = (&e.baseline, &e.candidate);
    let need_c = min.saturating_sub(have_c);
    let need_b = min.saturating_sub(have_b);
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

fn error_check(e: &Evidence, t: &Thresholds) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (Some(bn), Some(be), Some(cn), Some(ce)) = (b.requests, b.errors, c.requests, c.errors) else {
        return Check {
            name: "error_rate",
            status: Status::Insufficient,
            detail: "no Lambda Invocations metrics for both versions in the window, so error rates are unknown".into(),
            test: None,
        };
    };
    let rate = |err: u64, n: u64| if n == 0 { 0.0 } else { err as f64 / n as f64 };
    let (br, cr) = (rate(be, bn), rate(ce, cn));
    let test = stats::two_proportions(be, bn, ce, cn);
    let p = test.map_or(1.0, |t| t.p_value);
    let compare = format!("error rate {} ({ce}/{cn}) vs {} ({be}/{bn}), {}", pct(cr), pct(br), p_text(p));
    let (status, detail) = if cr > br && p < t.alpha {
        (Status::Worse, format!("candidate {} is significantly worse: {compare}", c.version))
    } else if bn >= t.min_requests && cn >= t.min_requests {
        (Status::NotWorse, format!("{compare}: not significantly worse"))
    } else {
        let need = shortfall(e, "requests", bn, cn, t.min_requests, per_hour(bn + cn, e));
        (Status::Insufficient, format!("{compare}; {need}"))
    };
    Check { name: "error_rate", status, detail, test }
}

fn latency_check(e: &Evidence, t: &Thresholds) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (bn, cn) = (b.latency_samples, c.latency_samples);
    let enough = bn >= t.min_requests && cn >= t.min_requests;
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
                let need = shortfall(e, "logged requests", bn, cn, t.min_requests, per_hour(bn + cn, e));
                (Status::Insufficient, format!("{compare}; {need}"))
            } else if ratio > t.max_p99_regression {
                (Status::Worse, format!("candidate {} is slower: {compare}", c.version))
            } else {
                (Status::NotWorse, compare)
            }
        }
        _ => {
            let need = shortfall(e, "logged requests", bn, cn, t.min_requests, per_hour(bn + cn, e));
            (Status::Insufficient, format!("no model latencies in the log for both versions; {need}"))
        }
    };
    Check { name: "latency_p99", status, detail, test: None }
}

fn auc_check(e: &Evidence, t: &Thresholds) -> Check {
    let (b, c) = (&e.baseline, &e.candidate);
    let (Some(bl), Some(cl)) = (b.labeled, c.labeled) else {
        return Check {
            name: "auc",
            status: Status::Skipped,
            detail: "no outcomes given (`--outcomes FILE`), so AUC was not compared".into(),
            test: None,
        };
    };
    let enough = bl >= t.min_labeled && cl >= t.min_labeled;
    let need = || shortfall(e, "labeled rows", bl, cl, t.min_labeled, None);
    let (Some(ba), Some(ca)) = (b.auc, c.auc) else {
        let why = "AUC needs labeled rows of both outcomes for both versions";
        return Check { name: "auc", status: Status::Insufficient, detail: format!("{why}; {}", need()), test: None };
    };
    let test = stats::auc_difference(ba, ca);
    let compare = match test {
        Some(z) => {
            format!("AUC {:.4} vs {:.4} (difference {:+.4}, {})", ca.auc, ba.auc, z.difference, p_text(z.p_value))
        }
        None => format!("AUC {:.4} vs {:.4} (too few rows of one outcome for a variance)", ca.auc, ba.auc),
    };
    let (status, detail) = match test {
        Some(z) if z.difference < 0.0 && z.p_value < t.alpha => {
            (Status::Worse, format!("candidate {} ranks outcomes significantly worse: {compare}", c.version))
        }
        Some(_) if enough => (Status::NotWorse, format!("{compare}: not significantly worse")),
        _ => (Status::Insufficient, format!("{compare}; {}", need())),
    };
    Check { name: "auc", status, detail, test }
}

/// Rollback when any check finds the candidate worse; promote when every check has enough data and finds it not
/// worse (AUC may be skipped without outcomes); continue otherwise, saying what data is still missing.
pub fn verdict(e: &Evidence, t: &Thresholds) -> Verdict {
    let checks = vec![error_check(e, t), latency_check(e, t), auc_check(e, t)];
    let worse: Vec<String> = checks.iter().filter(|c| c.status == Status::Worse).map(|c| c.detail.clone()).collect();
    let (verdict, reasons) = if !worse.is_empty() {
        (Decision::Rollback, worse)
    } else if checks.iter().all(|c| matches!(c.status, Status::NotWorse | Status::Skipped)) {
        (Decision::Promote, checks.iter().map(|c| c.detail.clone()).collect())
    } else {
        let waiting = checks.iter().filter(|c| c.status == Status::Insufficient).map(|c| c.detail.clone()).collect();
        (Decision::Continue, waiting)
    };
    Verdict { verdict, reasons, checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(version: &str, requests: u64, errors: u64, p99: f64, labeled: Option<u64>, auc: Option<Auc>) -> Side {
        Side {
            version: version.into(),
            requests: Some(requests),
            errors: Some(errors),
            latency_samples: requests,
            p99_ms: Some(p99),
            labeled,
            auc,
        }
    }

    fn evidence(baseline: Side, candidate: Side) -> Evidence {
        Evidence { baseline, candidate, traffic_share: Some(0.1), window_hours: 24.0 }
    }

    const AUC_B: Auc = Auc { auc: 0.80, variance: Some(0.0004) };

    #[test]
    fn a_candidate_as_good_with_enough_data_is_promoted() {
        let e = evidence(
            side("3", 9000, 45, 12.0, Some(2000), Some(AUC_B)),
            side("4", 1000, 4, 12.5, Some(250), Some(Auc { auc: 0.81, variance: Some(0.0016) })),
        );
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn more_errors_roll_back_even_with_little_data() {
        let e = evidence(side("3", 9000, 9, 12.0, None, None), side("4", 200, 12, 12.0, None, None));
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
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
        let mut c = side("4", 600, 0, 10.0, None, None);
        b.requests = None;
        c.errors = None;
        let e = Evidence { traffic_share: None, ..evidence(b, c) };
        insta::assert_json_snapshot!(verdict(&e, &Thresholds::default()));
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(Thresholds::default().validate().is_ok());
        let bad = Thresholds { alpha: 0.0, ..Thresholds::default() };
        assert_eq!(bad.validate().unwrap_err().0, "rollout.evidence.alpha");
        let bad = Thresholds { max_p99_regression: 0.9, ..Thresholds::default() };
        assert_eq!(bad.validate().unwrap_err().0, "rollout.evidence.max_p99_regression");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(
            (thousands(7), thousands(1234), thousands(1234567)),
            ("7".into(), "1,234".into(), "1,234,567".into())
        );
    }
}
