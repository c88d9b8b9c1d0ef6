//! `rollout.evidence` in mlambda.yaml: how much evidence a verdict needs, checked at load.
use serde::{Deserialize, Serialize};

/// Which calibration loss the verdict compares when there are outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    Brier,
    LogLoss,
}

/// How much evidence a verdict needs (`rollout.evidence` in mlambda.yaml).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Requests each version needs before its error rates and p99 latency can clear it for promotion.
    pub min_requests: u64,
    /// Rows joined to an outcome each version needs before its AUC and calibration can clear it for promotion.
    pub min_labeled: u64,
    /// The chance of a wrong promote over a whole rollout, however many looks it takes (one-sided).
    pub alpha: f64,
    /// The candidate's p99 latency may be at most this multiple of the baseline's.
    pub max_p99_regression: f64,
    /// How much higher (absolute, 0.01 = one percentage point) the candidate's error rates may be: 400s and
    /// failed answers (500s and Lambda errors) are each held to it.
    pub error_rate_margin: f64,
    /// How much lower the candidate's AUC may be.
    pub auc_margin: f64,
    /// The calibration loss compared: `brier` (bounded, the default) or `log_loss`.
    pub calibration: Calibration,
    /// How much higher the candidate's Brier score may be.
    pub brier_margin: f64,
    /// How much higher the candidate's log loss may be (nats).
    pub log_loss_margin: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_requests: 500,
            min_labeled: 200,
            alpha: 0.05,
            max_p99_regression: 1.2,
            error_rate_margin: 0.01,
            auc_margin: 0.02,
            calibration: Calibration::Brier,
            brier_margin: 0.01,
            log_loss_margin: 0.03,
        }
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
        let margins = [
            (
                "rollout.evidence.error_rate_margin",
                self.error_rate_margin,
                0.5,
                "0.01 allows one percentage point more errors",
            ),
            ("rollout.evidence.auc_margin", self.auc_margin, 0.5, "0.02 allows an AUC 0.02 lower"),
            ("rollout.evidence.brier_margin", self.brier_margin, 0.25, "0.01 allows a Brier score 0.01 higher"),
            ("rollout.evidence.log_loss_margin", self.log_loss_margin, 1.0, "0.03 allows a log loss 0.03 nats higher"),
        ];
        for (key, m, below, example) in margins {
            if !(m > 0.0 && m < below) {
                return Err((key, format!("is {m}, it must be greater than 0 and less than {below} ({example})")));
            }
        }
        Ok(())
    }
}
