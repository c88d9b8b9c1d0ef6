//! Progress bars that stay silent when nobody is watching a terminal.
use std::collections::HashMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// One bar per layer being uploaded. bollard's typed push stream carries no layer ids, so a layer is
/// recognised by its total size; counts of finished layers go on a summary line.
pub struct LayerBars {
    multi: MultiProgress,
    layers: HashMap<u64, ProgressBar>,
    summary: ProgressBar,
    pushed: u32,
    existing: u32,
}

impl LayerBars {
    pub fn new(printer: &Printer) -> LayerBars {
        let multi = if printer.progress_enabled() {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        let summary = multi.add(ProgressBar::new_spinner());
        summary.set_style(
            ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        summary.set_message("preparing layers");
        summary.enable_steady_tick(Duration::from_millis(120));
        LayerBars { multi, layers: HashMap::new(), summary, pushed: 0, existing: 0 }
    }

    /// `current` of `total` bytes of one layer are up.
    pub fn layer(&mut self, current: u64, total: u64) {
        if total == 0 {
            return;
        }
        let multi = &self.multi;
        let bar = self.layers.entry(total).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template("  layer [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        bar.set_position(current);
    }

    /// A layer finished uploading.
    pub fn pushed(&mut self) {
        self.pushed += 1;
        self.count();
    }

    /// A layer the registry already had.
    pub fn existing(&mut self) {
        self.existing += 1;
        self.count();
    }

    /// A passing remark (the daemon retrying) on the summary line.
    pub fn note(&self, msg: String) {
        self.summary.set_message(msg);
    }

    fn count(&self) {
        self.summary.set_message(format!("{} layers uploaded, {} already there", self.pushed, self.existing));
    }

    pub fn finish(self) {
        for bar in self.layers.values() {
            bar.finish_and_clear();
        }
        self.summary.finish_and_clear();
        let _ = self.multi.clear();
    }
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

/// A bar of slices scored out of the run's total; hidden unless `printer.progress_enabled()`.
pub fn slices(printer: &Printer, total: u64, msg: impl Into<String>) -> ProgressBar {
    if !printer.progress_enabled() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} slices {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.into());
    pb
}
