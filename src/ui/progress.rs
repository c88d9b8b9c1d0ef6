//! Progress bars that stay silent when nobody is watching a terminal.
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Printer;

/// A spinner with a message; hidden unless `printer.progress_enabled()`.
pub fn spinner(printer: &Printer, msg: impl Into<String>) -> ProgressBar {
    if !printer.progress_enabled() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.set_message(msg.into());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A byte-counting bar; hidden unless `printer.progress_enabled()`.
pub fn bytes(printer: &Printer, total: u64, msg: impl Into<String>) -> ProgressBar {
    if !printer.progress_enabled() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.into());
    pb
}

/// A spinner that also shows the time since it started, for steps that take minutes; hidden unless
/// `printer.progress_enabled()` (the caller then prints plain lines).
pub fn timed_spinner(printer: &Printer, msg: impl Into<String>) -> ProgressBar {
    let pb = spinner(printer, msg);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb
}
