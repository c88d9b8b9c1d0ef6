//! What a command hands back: its outcome, printed once by `main` as text or JSON, and whether it was a dry run.
use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// A command's result: `Display` for people, JSON for scripts.
pub trait Outcome: fmt::Display {
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;
}

impl<T: Serialize + fmt::Display> Outcome for T {
    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
}

/// One command's report; `mlambda up` composes the reports of the commands it runs.
pub struct Report {
    /// `None` when the command had nothing to report (`up`'s rollout step when the alias already serves).
    pub outcome: Option<Box<dyn Outcome>>,
    /// Printed under the one dry-run banner.
    pub dry_run: bool,
    /// The command ran and reported, but what it reports is a failure (a function error `invoke` received).
    pub failure: Option<Error>,
}

impl Report {
    pub fn new(outcome: impl Outcome + 'static, dry_run: bool) -> Report {
        Report { outcome: Some(Box::new(outcome)), dry_run, failure: None }
    }

    pub fn done(outcome: impl Outcome + 'static) -> Report {
        Report::new(outcome, false)
    }

    /// Nothing to print: the command wrote its own output (completions, the man page) or had nothing to do.
    pub fn nothing() -> Report {
        Report { outcome: None, dry_run: false, failure: None }
    }

    pub fn failing(mut self, failure: Error) -> Report {
        self.failure = Some(failure);
        self
    }

    /// The outcome as text, without the dry-run banner.
    pub fn text(&self) -> String {
        self.outcome.as_ref().map(|o| o.to_string()).unwrap_or_default()
    }
}
