//! One batch slice, scored by the function itself: read the slice from S3 into `/tmp`, validate and score it in
//! chunks of [`CHUNK_ROWS`], write its output, failures and completion marker back (see [`crate::batch`]).
//!
//! Memory stays flat: the slice and its output stream through files, and only one chunk of rows is held at a
//! time. Each row is validated like a request's row, so a bad row fails alone with the same 400 message a
//! caller would get. A slice that cannot be read or written fails the invocation, which Step Functions retries.
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Number, Value};

use crate::batch::{Done, FailedRow, Format, Job, CHUNK_ROWS};
use crate::contract;
use crate::error::Error;
use crate::handler::App;
use crate::model::{Batch, InputKind};
use crate::rows::NON_FINITE_MARK;
use crate::source::S3;

/// Scores `job`'s slice, or returns the marker of an earlier invocation that already did.
pub async fn run(app: &App, job: &Job) -> Result<Done, String> {
    let started = Instant::now();
    let s3 = S3::from_env()?;
    if let Some(earlier) = s3.get(&job.bucket, &job.done_key()).await? {
        let mut done: Done = serde_json::from_slice(&earlier.body)
            .map_err(|e| format!("s3://{}/{} is not a completion marker: {e}", job.bucket, job.done_key()))?;
        done.skipped = true;
        return Ok(done);
    }
    let dir = Scratch::new(&job.slice)?;
    let (input, output, failures) = (dir.file("in"), dir.file("out.jsonl"), dir.file("failures.jsonl"));
    let input_key = job.input_key();
    if s3.download(&job.bucket, &input_key, &input).await?.is_none() {
        return Err(format!("slice s3://{}/{input_key} does not exist: was the run's prefix cleaned up?", job.bucket));
    }
    let counts = score_file(app, job, &input, &output, &failures)?;
    s3.upload(&job.bucket, &job.output_key(), &output, "application/x-ndjson").await?;
    s3.upload(&job.bucket, &job.failures_key(), &failures, "application/x-ndjson").await?;
    let origin = app.origin();
    let done = Done {
        slice: job.slice.clone(),
        rows: counts.rows,
        scored: counts.scored,
        failed: counts.failed,
        model_version: origin.model_version.clone(),
        function_version: origin.function_version.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        peak_rss_kb: peak_rss_kb(),
        skipped: false,
    };
    let marker = serde_json::to_vec(&done).map_err(|e| e.to_string())?;
    // written last: a slice is complete exactly when its marker exists
    s3.put(&job.bucket, &job.done_key(), marker, "application/json").await?;
    Ok(done)
}

/// A private directory under the temp dir (Lambda's `/tmp`), removed when the slice is done.
struct Scratch(PathBuf);

impl Scratch {
    fn new(slice: &str) -> Result<Scratch, String> {
        let dir = std::env::temp_dir().join(format!("mlambda-{slice}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub rows: u64,
    pub scored: u64,
    pub failed: u64,
}

fn score_file(app: &App, job: &Job, input: &Path, output: &Path, failures: &Path) -> Result<Counts, String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let create = |p: &Path| std::fs::File::create(p).map_err(|e| format!("cannot write {}: {e}", p.display()));
    let mut out = BufWriter::new(create(output)?);
    let mut bad = BufWriter::new(create(failures)?);
    let counts = score(app, job, BufReader::new(open(input)?), &mut out, &mut bad)?;
    for (w, p) in [(&mut out, output), (&mut bad, failures)] {
        w.flush().map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    Ok(counts)
}

/// Rows parsed so far and waiting for the model.
struct Chunk {
    batch: Batch,
    ids: Vec<Option<Value>>,
    rows: Vec<usize>,
}

/// Scores a slice from `input` into prediction lines (`out`) and [`FailedRow`] lines (`failures`).
pub fn score(
    app: &App,
    job: &Job,
    input: impl BufRead,
    out: &mut impl Write,
    failures: &mut impl Write,
) -> Result<Counts, String> {
    let mut scorer = Scorer { app, job, out, failures, counts: Counts::default(), buf: Vec::new() };
    let mut chunk = scorer.fresh();
    match job.format {
        Format::Jsonl => {
            let mut row = 0;
            for line in input.lines() {
                let line = line.map_err(|e| format!("reading the slice: {e}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = match contract::parse_json(line.as_bytes()) {
                    Ok(Value::Object(obj)) => Ok(obj),
                    Ok(other) => {
                        Err(format!("row must be a JSON object of features, got {}", crate::rows::kind(&other)))
                    }
                    Err(e) => Err(e.to_string()),
                };
                scorer.push(&mut chunk, row, parsed)?;
                row += 1;
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
            let header = reader.headers().map_err(|e| format!("the slice's CSV header is unreadable: {e}"))?.clone();
            let kinds = column_kinds(app, &header);
            for (row, record) in reader.records().enumerate() {
                let parsed = match record {
                    Ok(record) => Ok(csv_row(&header, &kinds, &record)),
                    Err(e) => Err(format!("row is not valid CSV: {e}")),
                };
                scorer.push(&mut chunk, row, parsed)?;
            }
        }
    }
    scorer.flush(chunk)?;
    Ok(scorer.counts)
}

struct Scorer<'a, O: Write, F: Write> {
    app: &'a App,
    job: &'a Job,
    out: &'a mut O,
    failures: &'a mut F,
    counts: Counts,
    buf: Vec<u8>,
}

impl<O: Write, F: Write> Scorer<'_, O, F> {
    /// One parsed (or unparsable) row: into the chunk, or into the failures.
    fn push(
        &mut self,
        chunk: &mut Chunk,
        row: usize,
        parsed: Result<Map<String, Value>, String>,
    ) -> Result<(), String> {
        self.counts.rows += 1;
        let obj = match parsed {
            Ok(obj) => obj,
            Err(reason) => return self.fail(None, row, &Error::InvalidInput(reason)),
        };
        let id = contract::row_id(&obj, self.job.id_field.as_deref());
        if let Err(reason) = self.app.schema().push_row(&obj, &mut chunk.batch) {
            return self.fail(id, row, &Error::InvalidInput(reason));
        }
        chunk.ids.push(id);
        chunk.rows.push(row);
        if chunk.batch.n >= CHUNK_ROWS {
            let full = std::mem::replace(chunk, self.fresh());
            self.flush(full)?;
        }
        Ok(())
    }

    fn fresh(&self) -> Chunk {
        Chunk { batch: self.app.schema().batch(CHUNK_ROWS), ids: Vec::new(), rows: Vec::new() }
    }

    fn fail(&mut self, id: Option<Value>, row: usize, error: &Error) -> Result<(), String> {
        self.counts.failed += 1;
        let line = FailedRow {
            id,
            slice: self.job.slice.clone(),
            row: row as u64,
            status: error.status(),
            error_type: error.error_type().to_string(),
            reason: error.to_string(),
        };
        serde_json::to_writer(&mut *self.failures, &line).map_err(|e| format!("writing the failures: {e}"))?;
        self.failures.write_all(b"\n").map_err(|e| format!("writing the failures: {e}"))
    }

    /// Runs the model on a chunk; if the model fails, every row of the chunk fails with its message.
    fn flush(&mut self, chunk: Chunk) -> Result<(), String> {
        if chunk.batch.n == 0 {
            return Ok(());
        }
        let start = Instant::now();
        match self.app.model().run(chunk.batch) {
            Ok(answers) => {
                let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                self.buf.clear();
                contract::write_prediction_lines(
                    &mut self.buf,
                    self.app.origin(),
                    &self.job.slice,
                    &chunk.ids,
                    Some(&chunk.rows),
                    &answers,
                    self.app.model().labels(),
                    latency_ms,
                    None,
                );
                self.out.write_all(&self.buf).map_err(|e| format!("writing the output: {e}"))?;
                self.counts.scored += answers.len() as u64;
                Ok(())
            }
            Err(e) => {
                let error = Error::from(e);
                for (id, row) in chunk.ids.into_iter().zip(chunk.rows) {
                    self.fail(id, row, &error)?;
                }
                Ok(())
            }
        }
    }
}

/// Per CSV column, the model field's kind (and whether it takes an array), or `None` for other columns.
fn column_kinds(app: &App, header: &csv::StringRecord) -> Vec<Option<(InputKind, bool)>> {
    header
        .iter()
        .map(|name| app.schema().fields().iter().find(|f| f.name == name).map(|f| (f.kind, f.width > 1)))
        .collect()
}

/// A CSV record as the JSON row a caller would send: numeric fields as numbers, string fields as strings, an
/// empty cell as `null` (accepted only where the model imputes), array fields as JSON arrays. Columns that
/// are not model fields stay strings, so an id keeps its leading zeros.
fn csv_row(
    header: &csv::StringRecord,
    kinds: &[Option<(InputKind, bool)>],
    record: &csv::StringRecord,
) -> Map<String, Value> {
    let mut obj = Map::with_capacity(header.len());
    for ((name, kind), cell) in header.iter().zip(kinds).zip(record.iter()) {
        let value = match kind {
            _ if cell.is_empty() && kind.is_some() => Value::Null,
            None => Value::String(cell.to_string()),
            Some((_, true)) => serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_string())),
            Some((InputKind::Str, false)) => Value::String(cell.to_string()),
            Some((InputKind::F32 | InputKind::F64 | InputKind::I64, false)) => number(cell),
        };
        obj.insert(name.to_string(), value);
    }
    obj
}

/// A numeric cell as a JSON number; `nan`/`inf` as the marked string the row parser names; anything else
/// stays a string, which the row parser refuses with "must be a number".
fn number(cell: &str) -> Value {
    let trimmed = cell.trim();
    if let Ok(i) = trimmed.parse::<i64>() {
        return Value::Number(i.into());
    }
    match trimmed.parse::<f64>() {
        Ok(x) => Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(format!("{NON_FINITE_MARK}{trimmed}"))),
        Err(_) => Value::String(cell.to_string()),
    }
}

/// For tests and tools: the whole slice from a reader, without S3.
pub fn score_to_vecs(app: &App, job: &Job, input: impl Read) -> Result<(Counts, Vec<u8>, Vec<u8>), String> {
    let (mut out, mut failures) = (Vec::new(), Vec::new());
    let counts = score(app, job, BufReader::new(input), &mut out, &mut failures)?;
    Ok((counts, out, failures))
}

/// The batch job in `event`, run: `None` when the event is not a batch job, else the slice's [`Done`] as JSON
/// or why it failed. Failures fail the invocation (Lambda's `Unhandled`), so Step Functions retries them.
pub async fn handle(app: &App, event: &Value) -> Option<Result<Value, String>> {
    let job = match Job::from_event(event)? {
        Ok(job) => job,
        Err(e) => return Some(Err(e)),
    };
    let result = run(app, &job).await.and_then(|done| {
        eprintln!(
            "mlambda batch: slice {} of s3://{}/{}: {} rows, {} scored, {} failed{}",
            done.slice,
            job.bucket,
            job.run,
            done.rows,
            done.scored,
            done.failed,
            if done.skipped { " (already done)" } else { "" }
        );
        serde_json::to_value(&done).map_err(|e| e.to_string())
    });
    if let Err(e) = &result {
        eprintln!("mlambda batch: slice {} of s3://{}/{} failed: {e}", job.slice, job.bucket, job.run);
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::batch::{slice_name, Format};
    use crate::config::Config;
    use crate::logline::{self, Line};
    use crate::model::Model;

    const FEATURES: &str = "tenure_months,monthly_charges,total_charges,num_products,has_tech_support,\
contract_type_encoded,payment_method_encoded";

    fn churn() -> App {
        let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/churn/model.onnx");
        let path = model.to_string_lossy().into_owned();
        let cfg = Config::from_lookup(|k| match k {
            "MODEL_PATH" => Some(path.clone()),
            "MODEL_VERSION" => Some("v4".into()),
            "MODEL_FEATURES" => Some(FEATURES.into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        App::new(Model::from_path(&model).unwrap(), &cfg).unwrap()
    }

    fn job(format: Format) -> Job {
        Job { bucket: "b".into(), run: "r/".into(), slice: slice_name(7), format, id_field: Some("customer_id".into()) }
    }

    fn predictions(out: &[u8]) -> Vec<(Value, usize, f64)> {
        let text = std::str::from_utf8(out).unwrap();
        text.lines()
            .map(|l| match logline::parse(l).unwrap() {
                Line::Prediction(p) => {
                    assert_eq!((p.function_version.as_ref(), p.model_version.as_deref()), ("3", Some("v4")));
                    (p.id.unwrap().into_owned(), p.row, p.probability.unwrap())
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn every_csv_row_is_scored_or_failed_alone_with_the_request_message() {
        let app = churn();
        let mut csv = format!("customer_id,{FEATURES},region\n");
        for i in 0..2500 {
            match i {
                // a bad row: a word where a number goes; an empty non-imputed cell; a short row
                17 => csv.push_str("C-0017,lots,1,2,1,0,1,2,north\n"),
                1030 => csv.push_str("C-1030,3,,2,1,0,1,2,north\n"),
                2001 => csv.push_str("C-2001,3\n"),
                _ => csv.push_str(&format!("C-{i:04},{},29.5,{},1,0,1,2,north\n", i % 70, (i % 70) as f64 * 29.5)),
            }
        }
        let (counts, out, failures) = score_to_vecs(&app, &job(Format::Csv), csv.as_bytes()).unwrap();
        assert_eq!(counts, Counts { rows: 2500, scored: 2497, failed: 3 });
        let scored = predictions(&out);
        assert_eq!(scored.len(), 2497);
        // ids stay strings with their zeros, rows count every input row
        assert_eq!((scored[0].0.clone(), scored[0].1), (json!("C-0000"), 0));
        assert_eq!((scored[17].0.clone(), scored[17].1), (json!("C-0018"), 18));
        // the same probability a request for that row gets
        let request = json!({"tenure_months": 18, "monthly_charges": 29.5, "total_charges": 531.0, "num_products": 1,
                             "has_tech_support": 0, "contract_type_encoded": 1, "payment_method_encoded": 2});
        let (envelope, _) = app.answer(request, "r");
        let body: Value = serde_json::from_str(envelope["body"].as_str().unwrap()).unwrap();
        assert_eq!(scored[17].2, body["probability"].as_f64().unwrap());
        let failed: Vec<FailedRow> =
            std::str::from_utf8(&failures).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let summary: Vec<(Option<Value>, u64, u16, &str)> =
            failed.iter().map(|f| (f.id.clone(), f.row, f.status, f.reason.as_str())).collect();
        assert_eq!(
            summary,
            [
                (Some(json!("C-0017")), 17, 400, "feature \"tenure_months\" must be a number, got a string"),
                (Some(json!("C-1030")), 1030, 400, "feature \"monthly_charges\" must be a number, got null"),
                (
                    Some(json!("C-2001")),
                    2001,
                    400,
                    "missing required features: monthly_charges, total_charges, num_products, has_tech_support, \
                     contract_type_encoded, payment_method_encoded"
                ),
            ]
        );
        assert!(failed.iter().all(|f| f.slice == "part-00007" && f.error_type == "InvalidInput"));
    }

    #[test]
    fn json_lines_take_the_request_types_and_refuse_non_objects() {
        let app = churn();
        let row = |id: Value, tenure: Value| {
            json!({"customer_id": id, "tenure_months": tenure, "monthly_charges": 29.5, "total_charges": 100.0,
                   "num_products": 1, "has_tech_support": 0, "contract_type_encoded": 1, "payment_method_encoded": 2})
            .to_string()
        };
        let text = [row(json!(1), json!(5)), "[1, 2]".into(), String::new(), row(json!("x"), json!(NAN_LITERAL))]
            .join("\n")
            .replace("\"NaN\"", "NaN");
        let (counts, out, failures) = score_to_vecs(&app, &job(Format::Jsonl), text.as_bytes()).unwrap();
        assert_eq!(counts, Counts { rows: 3, scored: 1, failed: 2 });
        assert_eq!(predictions(&out)[0].0, json!(1));
        let failures = String::from_utf8(failures).unwrap();
        assert!(failures.contains("must be a JSON object of features, got an array"), "{failures}");
        assert!(failures.contains("\"row\":2") && failures.contains("is NaN"), "{failures}");
    }

    const NAN_LITERAL: &str = "NaN";
}
