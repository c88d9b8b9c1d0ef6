//! A batch run's shape in S3 and on the wire: the job event a Map child sends, where each slice's input,
//! output, failures and completion marker live, and the lines those files hold. The CLI writes slices and
//! reads results with these same types; the runtime ([`crate::slice`]) scores one slice per event.
//!
//! A run lives under one prefix, `s3://BUCKET/PREFIX/<run>/`:
//! * `run.json`: what the CLI started (input, function, version, options);
//! * `manifest.json`: the Distributed Map's items, one [`Job`] per slice;
//! * `slices/part-00012.csv` (or `.jsonl`): the input, cut by the CLI, each slice with its own header;
//! * `out/part-00012.jsonl`: one [`crate::logline::PredictionLine`] per scored row (`request_id` is the slice);
//! * `failures/part-00012.jsonl`: one [`FailedRow`] per refused row, with the runtime's 400 message;
//! * `done/part-00012.json`: the slice's [`Done`] counts, written last, so a slice is complete iff it exists;
//! * `summary.json` and `failures.jsonl`: the whole run's accounting and failures, written by the CLI.
//!
//! Output keys are fixed per slice, so a slice scored twice (a retry, a resumed run) replaces its own output
//! and no row is ever written twice.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key of the event that marks a batch job: `{"mlambda_batch": {…Job}}`.
pub const EVENT_KEY: &str = "mlambda_batch";

/// Rows per model run inside a slice: large enough to amortise the graph, small enough to keep memory flat.
pub const CHUNK_ROWS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated with a header row; cells are typed by the model's fields.
    Csv,
    /// One JSON object per line, typed as a request's rows are.
    Jsonl,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
        }
    }
}

/// One slice to score: the Map item and the function's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub bucket: String,
    /// The run's prefix, ending in `/` (e.g. `scores/2026-12/3f9a0c21d4e7/`).
    pub run: String,
    /// `part-00012`.
    pub slice: String,
    pub format: Format,
    /// The column that identifies a row in the output and the failures.
    #[serde(default)]
    pub id_field: Option<String>,
}

pub fn slice_name(index: usize) -> String {
    format!("part-{index:05}")
}

impl Job {
    pub fn input_key(&self) -> String {
        format!("{}slices/{}.{}", self.run, self.slice, self.format.extension())
    }

    pub fn output_key(&self) -> String {
        format!("{}out/{}.jsonl", self.run, self.slice)
    }

    pub fn failures_key(&self) -> String {
        format!("{}failures/{}.jsonl", self.run, self.slice)
    }

    pub fn done_key(&self) -> String {
        format!("{}done/{}.json", self.run, self.slice)
    }

    /// The job inside an event, if the event is one.
    pub fn from_event(event: &Value) -> Option<Result<Job, String>> {
        let job = event.as_object()?.get(EVENT_KEY)?;
        Some(serde_json::from_value(job.clone()).map_err(|e| {
            format!("{EVENT_KEY} event is malformed ({e}); it is written by `mlambda batch run`, not by hand")
        }))
    }
}

/// A slice's completion marker: what it read and what became of every row (`rows = scored + failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub slice: String,
    pub rows: u64,
    pub scored: u64,
    pub failed: u64,
    pub model_version: String,
    pub function_version: String,
    /// The invocation's time on the slice, from its first read to its last write (billed time, near enough).
    #[serde(default)]
    pub elapsed_ms: u64,
    /// The function's peak resident memory after the slice (`VmHWM`), when the platform reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kb: Option<u64>,
    /// True when an earlier invocation had already scored this slice and this one only read its marker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// A row the runtime refused (400) or the model failed on (500), without its feature values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    pub slice: String,
    /// The row's index in its slice, counted from 0 after the header.
    pub row: u64,
    pub status: u16,
    pub error_type: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_follow_the_layout_and_events_round_trip() {
        let job = Job {
            bucket: "b".into(),
            run: "scores/r1/".into(),
            slice: slice_name(12),
            format: Format::Csv,
            id_field: Some("customer_id".into()),
        };
        assert_eq!(job.input_key(), "scores/r1/slices/part-00012.csv");
        assert_eq!(job.output_key(), "scores/r1/out/part-00012.jsonl");
        assert_eq!(job.failures_key(), "scores/r1/failures/part-00012.jsonl");
        assert_eq!(job.done_key(), "scores/r1/done/part-00012.json");
        let event = json!({ EVENT_KEY: job });
        assert_eq!(Job::from_event(&event), Some(Ok(job)));
        assert_eq!(Job::from_event(&json!({"tenure": 1})), None);
        let bad = Job::from_event(&json!({ EVENT_KEY: {"bucket": "b"} })).unwrap().unwrap_err();
        assert!(bad.contains("mlambda_batch") && bad.contains("run"), "{bad}");
    }
}
