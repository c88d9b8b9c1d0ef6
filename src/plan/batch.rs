//! Batch runs as pure logic: the Step Functions definition, the run's identity, cutting the input into slices,
//! and the run's accounting (what `summary.json` says and whether the run is within its tolerance).
//!
//! Rows never travel through the state machine: the CLI cuts the input into slice objects, the Distributed Map
//! iterates over a manifest of slice keys, and each child sends the function a small `mlambda_batch` event; the
//! function reads its slice and writes its own output (see `mlambda_runtime::batch`).
use std::io::{BufRead, Write};

use mlambda_runtime::batch::{slice_name, Done, Format, Job, EVENT_KEY};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The Map's default concurrency: well below an account's default 1,000 concurrent executions, so a batch
/// never starves live traffic.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 50;
/// Rows per slice: about a second of the function's time, and a few MB of input.
pub const DEFAULT_SLICE_ROWS: usize = 10_000;
/// Lambda errors that say "try again": throttles and the service's own faults.
pub const TRANSIENT_ERRORS: [&str; 4] = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "Lambda.AWSLambdaException",
];
/// Attempts after the first for a slice whose function failed (it could not read or write S3).
pub const SLICE_RETRIES: u32 = 1;

/// `mlambda-<function>-batch`.
pub fn state_machine_name(function: &str) -> String {
    format!("mlambda-{function}-batch")
}

/// The Step Functions role `--create-role` makes.
pub fn role_name(function: &str) -> String {
    format!("mlambda-{function}-batch-sfn")
}

/// The state machine: one Distributed Map over the manifest's slices, each child invoking the qualified
/// function with its slice's job. Everything per run (function qualifier, manifest, concurrency, tolerance)
/// comes from the execution's input, so one definition serves every run of a function.
pub fn definition(function: &str) -> Value {
    json!({
        "Comment": format!("mlambda batch for {function}: one child per input slice; written by mlambda, \
                            changes are overwritten"),
        "StartAt": "Slices",
        "States": {
            "Slices": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key.$": "$.manifest"}
                },
                "ItemSelector": {"function.$": "$.function", "job.$": "$$.Map.Item.Value"},
                "MaxConcurrencyPath": "$.max_concurrency",
                "ToleratedFailurePercentagePath": "$.tolerated_failure",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Score",
                    "States": {
                        "Score": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName.$": "$.function", "Payload": {format!("{EVENT_KEY}.$"): "$.job"}},
                            // the counts live in S3 (`done/`); the Map's result stays small whatever the run's size
                            "ResultSelector": {"slice.$": "$.Payload.slice", "failed.$": "$.Payload.failed"},
                            "Retry": [
                                {"ErrorEquals": TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 6,
                                 "BackoffRate": 2.0, "JitterStrategy": "FULL"},
                                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": SLICE_RETRIES,
                                 "BackoffRate": 2.0}
                            ],
                            "End": true
                        }
                    }
                },
                "ResultPath": null,
                "End": true
            }
        }
    })
}

/// The definition as Step Functions stores it, and its sha256 (which `summary.json` records).
pub fn definition_text(function: &str) -> (String, String) {
    let text = serde_json::to_string_pretty(&definition(function)).unwrap_or_default();
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    (text, sha)
}

/// An execution's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionInput {
    pub bucket: String,
    /// The manifest's key; the run's prefix is the part before `manifest.json`.
    pub manifest: String,
    /// The qualified function ARN (`…:function:churn:4` or `…:function:churn:live`).
    pub function: String,
    pub max_concurrency: u32,
    /// A percentage of slices, as Step Functions wants it (a float).
    pub tolerated_failure: f64,
}

impl ExecutionInput {
    pub fn run_prefix(&self) -> &str {
        self.manifest.strip_suffix(MANIFEST).unwrap_or(&self.manifest)
    }
}

pub const MANIFEST: &str = "manifest.json";
pub const RUN_RECORD: &str = "run.json";
pub const SUMMARY: &str = "summary.json";
pub const FAILURES: &str = "failures.jsonl";

/// `s3://bucket/prefix/` split, the prefix normalised to end in `/` (or be empty).
pub fn parse_s3_prefix(uri: &str) -> Option<(String, String)> {
    let (bucket, key) = parse_s3(uri)?;
    let prefix = if key.is_empty() || key.ends_with('/') { key } else { format!("{key}/") };
    Some((bucket, prefix))
}

/// `s3://bucket/key`.
pub fn parse_s3(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), key.to_string()))
}

/// The input's format from its name: `.csv`, or JSON Lines (`.jsonl`, `.ndjson`, `.json`), compressed or not.
pub fn format_of(name: &str) -> Option<Format> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Some(Format::Csv)
    } else if [".jsonl", ".ndjson", ".json"].iter().any(|e| lower.ends_with(e)) {
        Some(Format::Jsonl)
    } else {
        None
    }
}

/// What makes two runs the same run: the same input bytes (by hash or S3 ETag) scored by the same version with
/// the same options. Its id names the run's directory and its first execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    /// `s3://bucket/prefix/`: the same input scored into two prefixes is two runs.
    pub output: String,
    pub function: String,
    /// The resolved function version (never an alias: an alias moves).
    pub version: String,
    /// `sha256:<hex>` of a local file, or `etag:…` of an S3 object.
    pub input_identity: String,
    pub format: Format,
    pub id_field: Option<String>,
    pub slice_rows: usize,
}

impl RunKey {
    /// 12 hex characters: unique enough per output prefix, short enough to type.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes()))[..12].to_string()
    }
}

/// What `run.json` records: the run's identity, where it reads and writes, and its slices' sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: String,
    /// Flattened, so `run.json` names `function` and `version` at its top level for any reader.
    #[serde(flatten)]
    pub key: RunKey,
    /// The input as the user named it (`s3://…` or a local path).
    pub input: String,
    pub bucket: String,
    /// The run's own prefix (`PREFIX/<run>/`).
    pub prefix: String,
    /// The qualifier asked for (`4` or `live`), and the function ARN invoked.
    pub qualifier: String,
    pub function_arn: String,
    pub model_version: Option<String>,
    /// Rows per slice, in slice order.
    pub slices: Vec<u64>,
    pub rows: u64,
    pub tolerated_failure: f64,
    pub max_concurrency: u32,
    pub definition_sha256: String,
    pub created: String,
}

impl RunRecord {
    pub fn job(&self, index: usize) -> Job {
        Job {
            bucket: self.bucket.clone(),
            run: self.prefix.clone(),
            slice: slice_name(index),
            format: self.key.format,
            id_field: self.key.id_field.clone(),
        }
    }

    /// The Map's items: one job per slice.
    pub fn manifest(&self) -> Vec<Job> {
        (0..self.slices.len()).map(|i| self.job(i)).collect()
    }

    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// How an execution ended, as far as the accounting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    Stopped,
}

/// One execution of the batch state machine, as Step Functions describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionInfo {
    pub arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    /// `None` when listed (ListExecutions carries no input).
    #[serde(skip)]
    pub input: Option<String>,
    pub started: String,
    pub stopped: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionInfo {
    /// The run an execution belongs to: its name without a resume's `-rN`.
    pub fn run(&self) -> &str {
        run_of(&self.name)
    }
}

/// A run's id from an execution name: `3f9a0c21d4e7` or `3f9a0c21d4e7-r2`.
pub fn run_of(execution: &str) -> &str {
    match execution.rsplit_once("-r") {
        Some((run, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => run,
        _ => execution,
    }
}

/// The `n`th execution's name for a run: the run id, then `-r1`, `-r2` for resumes.
pub fn execution_name(run: &str, n: usize) -> String {
    if n == 0 {
        run.to_string()
    } else {
        format!("{run}-r{n}")
    }
}

/// The Map Run's item counts: the slices' progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SliceCounts {
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub running: u64,
    pub pending: u64,
}

/// The verdict on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every slice scored, and the failed rows within the tolerance.
    Succeeded,
    /// Finished, but some slices were never scored or too many rows failed.
    Failed,
    /// Stopped by `mlambda batch stop` before every slice was scored: resumable.
    Stopped,
}

/// `summary.json`: every input row is in `rows_out` or `rows_failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run: String,
    pub status: RunStatus,
    pub within_tolerance: bool,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_failed: u64,
    /// Failed rows as a percentage of the input, against `tolerated_failure`.
    pub failure_percent: f64,
    pub tolerated_failure: f64,
    pub slices: usize,
    pub slices_done: usize,
    /// Slices the function never completed; their rows are in the failures file as `SliceFailed`.
    pub failed_slices: Vec<String>,
    pub function: String,
    pub function_version: String,
    pub model_versions: Vec<String>,
    pub started: String,
    pub ended: Option<String>,
    pub executions: Vec<String>,
    pub definition_sha256: String,
    pub output: String,
    pub failures: String,
    /// The largest peak RSS any slice's function reported.
    pub peak_rss_kb: Option<u64>,
    /// The function's time over all slices scored by this run's invocations (a cost's GB-seconds, divided by
    /// the memory size).
    pub function_seconds: f64,
}

/// The run's accounting from its record, the slices' markers (by slice index) and its last execution.
pub fn summarise(
    record: &RunRecord,
    done: &[Option<Done>],
    status: ExecutionStatus,
    executions: Vec<String>,
    ended: Option<String>,
) -> Summary {
    let rows_in = record.rows;
    let mut rows_out = 0;
    let mut rows_failed = 0;
    let mut failed_slices = Vec::new();
    let mut model_versions: Vec<String> = Vec::new();
    for (i, rows) in record.slices.iter().enumerate() {
        match done.get(i).and_then(Option::as_ref) {
            Some(d) => {
                rows_out += d.scored;
                rows_failed += d.failed;
                if !model_versions.contains(&d.model_version) {
                    model_versions.push(d.model_version.clone());
                }
            }
            None => {
                if status != ExecutionStatus::Running {
                    rows_failed += rows;
                }
                failed_slices.push(slice_name(i));
            }
        }
    }
    let failure_percent = if rows_in == 0 { 0.0 } else { rows_failed as f64 * 100.0 / rows_in as f64 };
    let within_tolerance = failure_percent <= record.tolerated_failure + 1e-12;
    let all_done = failed_slices.is_empty();
    let run_status = match status {
        ExecutionStatus::Running => RunStatus::Running,
        ExecutionStatus::Stopped if !all_done => RunStatus::Stopped,
        _ if within_tolerance && (all_done || status == ExecutionStatus::Succeeded) => RunStatus::Succeeded,
        _ => RunStatus::Failed,
    };
    Summary {
        run: record.run.clone(),
        status: run_status,
        within_tolerance,
        rows_in,
        rows_out,
        rows_failed,
        failure_percent,
        tolerated_failure: record.tolerated_failure,
        slices: record.slices.len(),
        slices_done: record.slices.len() - failed_slices.len(),
        failed_slices: if status == ExecutionStatus::Running { Vec::new() } else { failed_slices },
        function: record.key.function.clone(),
        function_version: record.key.version.clone(),
        model_versions,
        started: record.created.clone(),
        ended,
        executions,
        definition_sha256: record.definition_sha256.clone(),
        output: format!("{}out/", record.uri()),
        failures: format!("{}{FAILURES}", record.uri()),
        peak_rss_kb: done.iter().flatten().filter_map(|d| d.peak_rss_kb).max(),
        function_seconds: done.iter().flatten().map(|d| d.elapsed_ms as f64 / 1000.0).sum(),
    }
}

/// One slice, ready to upload: its bytes (with the input's header, for CSV) and its row count.
pub struct Slice {
    pub index: usize,
    pub bytes: Vec<u8>,
    pub rows: u64,
}

/// The header's problem with the model's fields, if any: missing fields, or a missing id column.
pub fn check_columns(columns: &[String], fields: &[String], id_field: Option<&str>) -> Result<(), String> {
    let missing: Vec<&str> = fields.iter().filter(|f| !columns.iter().any(|c| c == *f)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(format!("lacks the model's fields {}", missing.join(", ")));
    }
    if let Some(id) = id_field {
        if !columns.iter().any(|c| c == id) {
            return Err(format!("has no id column `{id}`"));
        }
    }
    Ok(())
}

/// Cuts CSV (header kept on every slice) or JSON Lines (blank lines dropped) into slices of `rows` rows,
/// handing each to `each` as soon as it is full: memory holds one slice, whatever the input's size.
pub fn cut<R: BufRead>(
    input: R,
    format: Format,
    rows: usize,
    mut each: impl FnMut(Slice) -> Result<(), String>,
) -> Result<u64, String> {
    let mut total = 0u64;
    let mut index = 0;
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
            let header = reader.byte_headers().map_err(|e| format!("the CSV header is unreadable: {e}"))?.clone();
            let start = |header: &csv::ByteRecord| -> Result<csv::Writer<Vec<u8>>, String> {
                let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
                w.write_byte_record(header).map_err(|e| e.to_string())?;
                Ok(w)
            };
            let mut writer = start(&header)?;
            let mut n = 0u64;
            let mut record = csv::ByteRecord::new();
            loop {
                match reader.read_byte_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => return Err(format!("row {} is not valid CSV: {e}", total + 1)),
                }
                writer.write_byte_record(&record).map_err(|e| e.to_string())?;
                n += 1;
                total += 1;
                if n as usize == rows {
                    let bytes =
                        std::mem::replace(&mut writer, start(&header)?).into_inner().map_err(|e| e.to_string())?;
                    each(Slice { index, bytes, rows: n })?;
                    index += 1;
                    n = 0;
                }
            }
            if n > 0 {
                each(Slice { index, bytes: writer.into_inner().map_err(|e| e.to_string())?, rows: n })?;
            }
        }
        Format::Jsonl => {
            let mut buf = Vec::new();
            let mut n = 0u64;
            for line in input.split(b'\n') {
                let line = line.map_err(|e| format!("reading the input: {e}"))?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                buf.write_all(&line).and_then(|()| buf.write_all(b"\n")).map_err(|e| e.to_string())?;
                n += 1;
                total += 1;
                if n as usize == rows {
                    each(Slice { index, bytes: std::mem::take(&mut buf), rows: n })?;
                    index += 1;
                    n = 0;
                }
            }
            if n > 0 {
                each(Slice { index, bytes: buf, rows: n })?;
            }
        }
    }
    Ok(total)
}

/// The columns of an input: a CSV's header, or the keys of the first JSON line.
pub fn columns<R: BufRead>(mut input: R, format: Format) -> Result<Vec<String>, String> {
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().from_reader(input);
            let header = reader.headers().map_err(|e| format!("the CSV header is unreadable: {e}"))?;
            Ok(header.iter().map(str::to_string).collect())
        }
        Format::Jsonl => {
            let mut line = String::new();
            while line.trim().is_empty() {
                line.clear();
                if input.read_line(&mut line).map_err(|e| format!("reading the input: {e}"))? == 0 {
                    return Err("is empty".into());
                }
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(o)) => Ok(o.keys().cloned().collect()),
                _ => Err("does not start with a JSON object".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_one_distributed_map_over_the_manifest() {
        insta::assert_json_snapshot!("batch_definition", definition("churn"));
        let (_, sha) = definition_text("churn");
        assert_eq!(sha.len(), 64);
        assert_ne!(definition_text("other").1, sha, "the function is named in the comment");
    }

    fn csv_input(rows: usize) -> String {
        let mut s = String::from("id,a,b\n");
        for i in 0..rows {
            // a quoted cell with a comma and a newline stays one row
            s.push_str(&format!("{i},\"x,\ny\",{}\n", i * 2));
        }
        s
    }

    #[test]
    fn csv_slices_keep_the_header_and_every_row_exactly_once() {
        let mut slices = Vec::new();
        let total = cut(csv_input(25).as_bytes(), Format::Csv, 10, |s| {
            slices.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(total, 25);
        assert_eq!(slices.iter().map(|s| (s.index, s.rows)).collect::<Vec<_>>(), [(0, 10), (1, 10), (2, 5)]);
        let mut ids = Vec::new();
        for s in &slices {
            let mut r = csv::Reader::from_reader(s.bytes.as_slice());
            assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), ["id", "a", "b"]);
            for rec in r.records() {
                let rec = rec.unwrap();
                assert_eq!(&rec[1], "x,\ny");
                ids.push(rec[0].parse::<usize>().unwrap());
            }
        }
        assert_eq!(ids, (0..25).collect::<Vec<_>>());
        // exactly full: no empty trailing slice
        let mut n = 0;
        cut(csv_input(20).as_bytes(), Format::Csv, 10, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn json_lines_slices_drop_blank_lines() {
        let input = "{\"a\":1}\n\n{\"a\":2}\n  \n{\"a\":3}";
        let mut slices = Vec::new();
        let total = cut(input.as_bytes(), Format::Jsonl, 2, |s| {
            slices.push(s);
            Ok(())
        });
        assert_eq!(total.unwrap(), 3);
        assert_eq!(String::from_utf8(slices[0].bytes.clone()).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(String::from_utf8(slices[1].bytes.clone()).unwrap(), "{\"a\":3}\n");
    }

    #[test]
    fn columns_are_checked_against_the_model_fields() {
        let cols = columns("id,a,b\n1,2,3\n".as_bytes(), Format::Csv).unwrap();
        let fields = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(check_columns(&cols, &fields, None).unwrap_err(), "lacks the model's fields c");
        assert!(check_columns(&cols, &fields[..2], Some("id")).is_ok());
        assert_eq!(check_columns(&cols, &fields[..2], Some("cid")).unwrap_err(), "has no id column `cid`");
        let cols = columns("\n{\"b\": 1, \"a\": 2}\n".as_bytes(), Format::Jsonl).unwrap();
        assert!(cols.contains(&"a".to_string()) && cols.contains(&"b".to_string()));
        assert!(columns("[1]\n".as_bytes(), Format::Jsonl).is_err());
    }

    #[test]
    fn addresses_and_formats() {
        assert_eq!(parse_s3_prefix("s3://b/scores"), Some(("b".into(), "scores/".into())));
        assert_eq!(parse_s3_prefix("s3://b/"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3("s3://b/k/x.csv"), Some(("b".into(), "k/x.csv".into())));
        assert_eq!(parse_s3("s3:///k"), None);
        assert_eq!(parse_s3("b/k"), None);
        assert_eq!(format_of("x.CSV"), Some(Format::Csv));
        assert_eq!(format_of("x.ndjson"), Some(Format::Jsonl));
        assert_eq!(format_of("x.parquet"), None);
    }

    fn record(slices: Vec<u64>, tolerated: f64) -> RunRecord {
        RunRecord {
            run: "r1".into(),
            key: RunKey {
                output: "s3://b/p/".into(),
                function: "churn".into(),
                version: "4".into(),
                input_identity: "sha256:00".into(),
                format: Format::Csv,
                id_field: Some("id".into()),
                slice_rows: 10,
            },
            input: "in.csv".into(),
            bucket: "b".into(),
            prefix: "p/r1/".into(),
            qualifier: "4".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:churn:4".into(),
            model_version: Some("v2".into()),
            rows: slices.iter().sum(),
            slices,
            tolerated_failure: tolerated,
            max_concurrency: 50,
            definition_sha256: "d".into(),
            created: "2026-12-07T00:00:00Z".into(),
        }
    }

    fn done(i: usize, scored: u64, failed: u64) -> Option<Done> {
        Some(Done {
            slice: slice_name(i),
            rows: scored + failed,
            scored,
            failed,
            model_version: "v2".into(),
            function_version: "4".into(),
            elapsed_ms: 500,
            peak_rss_kb: Some(1000 + i as u64),
            skipped: false,
        })
    }

    #[test]
    fn the_tolerance_is_decided_on_rows_by_our_own_accounting() {
        let markers = [done(0, 9, 1), done(1, 10, 0), done(2, 5, 0)];
        let s = summarise(&record(vec![10, 10, 5], 5.0), &markers, ExecutionStatus::Succeeded, vec![], None);
        assert_eq!((s.rows_in, s.rows_out, s.rows_failed, s.status), (25, 24, 1, RunStatus::Succeeded));
        assert!((s.failure_percent - 4.0).abs() < 1e-12 && s.within_tolerance);
        assert_eq!((s.peak_rss_kb, s.model_versions.clone()), (Some(1002), vec!["v2".to_string()]));
        assert!((s.function_seconds - 1.5).abs() < 1e-12);
        // the same rows under 0%: failed, even though Step Functions said it succeeded
        let s = summarise(&record(vec![10, 10, 5], 0.0), &markers, ExecutionStatus::Succeeded, vec![], None);
        assert_eq!((s.status, s.within_tolerance), (RunStatus::Failed, false));
    }

    #[test]
    fn unscored_slices_fail_their_rows_and_a_stopped_run_is_resumable() {
        let markers = [done(0, 10, 0), None, done(2, 5, 0)];
        let s = summarise(&record(vec![10, 10, 5], 50.0), &markers, ExecutionStatus::Failed, vec![], None);
        assert_eq!((s.rows_out, s.rows_failed, s.failed_slices.clone()), (15, 10, vec!["part-00001".to_string()]));
        assert_eq!(s.status, RunStatus::Failed, "an execution that failed with a slice unscored failed");
        let s = summarise(&record(vec![10, 10, 5], 0.0), &markers, ExecutionStatus::Stopped, vec![], None);
        assert_eq!(s.status, RunStatus::Stopped);
        let s = summarise(&record(vec![10, 10, 5], 0.0), &markers, ExecutionStatus::Running, vec![], None);
        assert_eq!((s.status, s.rows_failed, s.slices_done), (RunStatus::Running, 0, 2));
    }

    #[test]
    fn the_run_id_changes_with_anything_that_changes_the_output() {
        let key = record(vec![1], 0.0).key;
        assert_eq!(key.id(), key.clone().id());
        assert_eq!(key.id().len(), 12);
        assert_ne!(RunKey { version: "5".into(), ..key.clone() }.id(), key.id());
        assert_ne!(RunKey { input_identity: "sha256:01".into(), ..key.clone() }.id(), key.id());
        let input = ExecutionInput {
            bucket: "b".into(),
            manifest: "p/r1/manifest.json".into(),
            function: "f".into(),
            max_concurrency: 1,
            tolerated_failure: 0.0,
        };
        assert_eq!(input.run_prefix(), "p/r1/");
    }
}
