//! `mlambda batch run|status|list|stop`: score a whole dataset with one function version through a Step
//! Functions Distributed Map, and account for every row.
//!
//! The CLI cuts the input into slice objects (streamed: memory holds one slice), writes the manifest the Map
//! reads, and starts an execution named after the run. Re-running the same command finds the run by its id
//! (input hash, version, options): a finished run is reported again, a failed or stopped one resumes with a new
//! execution whose children skip the slices already scored, so no row is ever scored into the output twice.
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mlambda_runtime::batch::{Done, FailedRow, Format, Job};
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::aws::{self, Aws};
use crate::cli::{BatchRunArgs, BatchRunRef, BatchStopArgs};
use crate::domain::PackageType;
use crate::error::{Error, Result};
use crate::plan::batch::{
    self as plan, ExecutionInfo, ExecutionInput, ExecutionStatus, RunKey, RunRecord, RunStatus, SliceCounts, Summary,
};
use crate::plan::lambda::FunctionInfo;
use crate::plan::policy;
use crate::report::Report;
use crate::runs;
use crate::settings::Project;
use crate::ui::{progress, table};

/// How often `--wait` polls the execution.
const POLL: Duration = Duration::from_secs(2);
/// How long `batch stop` waits for the slices in flight (each bounded by the function's timeout).
const STOP_WAIT: Duration = Duration::from_secs(900);

/// What `batch run` and `batch status` report: the run's accounting, and how to follow it.
#[derive(Debug, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub summary: Summary,
    /// The Map Run's slice counts while the run goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<SliceCounts>,
    /// What this invocation did: `started`, `resumed`, `found` (an earlier run of the same input) or `status`.
    pub action: &'static str,
    #[serde(skip)]
    pub note: Option<String>,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        let status = match s.status {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Stopped => "stopped",
        };
        writeln!(f, "run {} ({}): {status}", s.run, self.action)?;
        writeln!(f, "  function {}:{} · model {}", s.function, s.function_version, s.model_versions.join(", "))?;
        match (&self.progress, s.status) {
            (Some(p), RunStatus::Running) => {
                writeln!(f, "  slices {}/{} done · {} running · {} failed", p.succeeded, s.slices, p.running, p.failed)?
            }
            _ => writeln!(f, "  slices {}/{} done", s.slices_done, s.slices)?,
        }
        if s.status != RunStatus::Running {
            writeln!(
                f,
                "  rows in {} · scored {} · failed {} ({:.3}% of {:.3}% tolerated)",
                s.rows_in, s.rows_out, s.rows_failed, s.failure_percent, s.tolerated_failure
            )?;
            if !s.failed_slices.is_empty() {
                writeln!(f, "  slices never scored: {}", s.failed_slices.join(", "))?;
            }
            writeln!(f, "  output   {}", s.output)?;
            writeln!(f, "  failures {}", s.failures)?;
        }
        if let Some(note) = &self.note {
            writeln!(f, "  {note}")?;
        }
        Ok(())
    }
}

/// The version a run scores with, resolved from `--version`, `--alias` or `function.alias`.
struct Target {
    info: FunctionInfo,
    qualifier: String,
    /// The qualified ARN the Map invokes.
    arn: String,
}

async fn resolve_target(aws: &Aws, p: &Project, a: &BatchRunArgs) -> Result<Target> {
    let function = &p.config().function.name;
    let (qualifier, version) = match &a.version {
        Some(v) => (v.to_string(), v.to_string()),
        None => {
            let alias = a.alias.clone().unwrap_or_else(|| p.config().function.alias.clone());
            let found = aws::lambda::get_alias(aws, function, &alias).await?.ok_or_else(|| {
                Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
                    .help("pass `--version N`, or deploy first (`mlambda deploy`)")
            })?;
            (alias, found.primary)
        }
    };
    let info = aws::lambda::get_version(aws, function, &version).await?.ok_or_else(|| {
        Error::user(format!("version {version} of function `{function}` does not exist"))
            .help("`mlambda status` lists the published versions")
    })?;
    if info.package_type == Some(PackageType::Image) && std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()) {
        return Err(Error::user(format!(
            "function `{function}` is an image package, and the local stack (AWS_ENDPOINT_URL) cannot run image \
             functions"
        ))
        .help("use `function.package: zip` on the local stack; on AWS, image functions score batches the same way"));
    }
    let arn = info.qualified_arn(&qualifier);
    Ok(Target { info, qualifier, arn })
}

/// The model fields the version's function requires, read from its model (the same resolution as the runtime);
/// `None` when the model is baked into an image (`MODEL_PATH`), which the CLI cannot read.
async fn model_fields(aws: &Aws, info: &FunctionInfo, dir: &Path) -> Result<Option<Vec<String>>> {
    use mlambda_runtime::env;
    let (Some(bucket), Some(key)) = (info.env.get(env::MODEL_BUCKET), info.env.get(env::MODEL_KEY)) else {
        return Ok(None);
    };
    let path = dir.join("model.onnx");
    if aws::s3::download(aws, bucket, key, &path).await?.is_none() {
        return Err(Error::user(format!("version {}'s model s3://{bucket}/{key} does not exist", info.version))
            .help("push the model again with `mlambda model push`"));
    }
    let model = mlambda_runtime::model::Model::from_path(&path)
        .map_err(|e| Error::user(format!("version {}'s model s3://{bucket}/{key} does not load: {e}", info.version)))?;
    let features: Option<Vec<String>> =
        info.env.get(env::MODEL_FEATURES).map(|f| f.split(',').map(|s| s.trim().to_string()).collect());
    let schema = mlambda_runtime::rows::Schema::new(&model, features.as_deref())
        .map_err(|e| Error::user(format!("version {}'s model: {e}", info.version)))?;
    Ok(Some(schema.fields().iter().map(|f| f.name.clone()).collect()))
}

/// The input, as a local file: a local path as is, an `s3://` object streamed into `dir`. Returns the file and
/// its identity (`sha256:…` or `etag:…`).
async fn local_input(aws: &Aws, input: &str, dir: &Path) -> Result<(PathBuf, String)> {
    if let Some((bucket, key)) = plan::parse_s3(input) {
        let head = aws::s3::head_object(aws, &bucket, &key).await?.ok_or_else(|| {
            Error::user(format!("input {input} does not exist")).help("check the bucket and key (`aws s3 ls`)")
        })?;
        let path = dir.join("input");
        aws::s3::download(aws, &bucket, &key, &path).await?;
        let etag = head.etag.unwrap_or_default();
        return Ok((path, format!("etag:{bucket}/{key}:{}:{etag}", head.size)));
    }
    let path = PathBuf::from(input);
    if !path.is_file() {
        return Err(Error::user(format!("input file `{input}` does not exist"))
            .help("pass a local CSV or JSON Lines file, or an `s3://BUCKET/KEY` object"));
    }
    let (sha, _) = crate::hash::file_sha256(&path).map_err(|e| Error::user(format!("cannot read `{input}`: {e}")))?;
    Ok((path, format!("sha256:{sha}")))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    std::fs::File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| Error::user(format!("cannot read `{}`: {e}", path.display())))
}

/// RFC 3339 UTC, second precision.
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Runs of another input already under the output prefix (their ids). Runs of the same input by other versions
/// are a backtest's siblings, and welcome.
async fn other_runs(aws: &Aws, bucket: &str, prefix: &str, key: &RunKey) -> Result<Vec<String>> {
    let mut others = Vec::new();
    for dir in aws::s3::list_prefixes(aws, bucket, prefix).await? {
        if let Some(record) = runs::read_record(aws, bucket, &dir).await? {
            if record.key.input_identity != key.input_identity {
                others.push(record.run);
            }
        }
    }
    Ok(others)
}

/// The state machine's ARN, created or brought up to date with this version of mlambda's definition.
async fn ensure_state_machine(aws: &Aws, function: &str, role: &str) -> Result<(String, &'static str)> {
    let name = plan::state_machine_name(function);
    let (definition, _) = plan::definition_text(function);
    match aws::sfn::find_state_machine(aws, &name).await? {
        None => Ok((aws::sfn::create_state_machine(aws, &name, &definition, role).await?, "created")),
        Some(arn) => {
            let (current, current_role) = aws::sfn::describe_state_machine(aws, &arn).await?;
            let same = serde_json::from_str::<Value>(&current).ok() == serde_json::from_str::<Value>(&definition).ok();
            if same && current_role == role {
                return Ok((arn, "unchanged"));
            }
            aws::sfn::update_state_machine(aws, &arn, &definition, role).await?;
            Ok((arn, "updated"))
        }
    }
}

/// The Step Functions role: `batch.role`, the one `--create-role` made earlier, or a new one.
async fn ensure_role(
    aws: &Aws,
    p: &Project,
    a: &BatchRunArgs,
    target: &Target,
    bucket: &str,
    prefix: &str,
) -> Result<String> {
    if let Some(role) = &p.config().batch.role {
        return Ok(role.clone());
    }
    let function = &p.config().function.name;
    let name = plan::role_name(function);
    let existing = aws::iam::get_role_arn(aws, &name).await?;
    let arn = match (existing, a.create_role) {
        (Some(arn), _) => arn,
        (None, true) => {
            let trust = policy::batch_trust_policy().to_string();
            aws::iam::create_role(aws, &name, &trust, &format!("mlambda batch runs of `{function}`")).await?
        }
        (None, false) => {
            return Err(Error::user(format!("no Step Functions role for `{function}`'s batch runs"))
                .help(format!("pass `--create-role` to create `{name}`, or set `batch.role` in mlambda.yaml")))
        }
    };
    // the machine's ARN before it exists: its name is fixed, its account and region are the function's
    let parts: Vec<&str> = target.info.arn.split(':').collect();
    let (region, account) = (parts.get(3).copied().unwrap_or("*"), parts.get(4).copied().unwrap_or("*"));
    let machine = format!("arn:aws:states:{region}:{account}:stateMachine:{}", plan::state_machine_name(function));
    let unqualified = target.arn.rsplit_once(':').map_or(target.arn.as_str(), |(base, _)| base);
    let doc = policy::batch_state_machine_policy(unqualified, &machine, bucket, prefix).to_string();
    aws::iam::put_role_policy(aws, &name, &policy::batch_function_policy_name(bucket, prefix), &doc).await?;
    Ok(arn)
}

/// Lets the function's own role read and write the run's prefix.
async fn grant_function(aws: &Aws, info: &FunctionInfo, bucket: &str, prefix: &str) -> Result<()> {
    let role = info.role_name();
    if role.is_empty() {
        return Ok(());
    }
    let doc = policy::batch_function_policy(bucket, prefix).to_string();
    aws::iam::put_role_policy(aws, role, &policy::batch_function_policy_name(bucket, prefix), &doc).await
}

/// Cuts the input into slices and uploads them, one in memory at a time.
async fn upload_slices(aws: &Aws, record: &mut RunRecord, input: &Path) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<plan::Slice>(1);
    let reader = open(input)?;
    let (format, rows) = (record.key.format, record.key.slice_rows);
    // csv is synchronous: cut on a blocking thread, upload here; the channel of one keeps memory flat
    let cutter = tokio::task::spawn_blocking(move || {
        plan::cut(reader, format, rows, |s| tx.blocking_send(s).map_err(|e| e.to_string()))
    });
    let mut sizes = Vec::new();
    while let Some(slice) = rx.recv().await {
        let key = record.job(slice.index).input_key();
        let kind = if format == Format::Csv { "text/csv" } else { "application/x-ndjson" };
        aws::s3::put_bytes(aws, &record.bucket, &key, kind, slice.bytes).await?;
        sizes.push(slice.rows);
    }
    let total = cutter
        .await
        .map_err(|e| Error::local(format!("cutting the input failed: {e}")))?
        .map_err(|e| Error::user(format!("input {}: {e}", record.input)))?;
    record.slices = sizes;
    record.rows = total;
    Ok(())
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, a: &BatchRunArgs) -> Result<Report> {
    let c = p.config();
    let (bucket, out_prefix) = plan::parse_s3_prefix(&a.out).ok_or_else(|| {
        Error::user(format!("--out `{}` is not an S3 prefix", a.out)).help("pass `--out s3://BUCKET/PREFIX/`")
    })?;
    let format = plan::format_of(&a.input).ok_or_else(|| {
        Error::user(format!("input `{}` is neither CSV nor JSON Lines", a.input))
            .help("name it `.csv` (with a header row) or `.jsonl`")
    })?;
    let id_field = a.id_field.clone().or_else(|| c.model.id_field.clone());
    let aws = ctx.aws().await?;
    let target = resolve_target(&aws, p, a).await?;
    let scratch = tempfile::tempdir().map_err(|e| Error::local(format!("cannot create a temporary directory: {e}")))?;
    let (input_path, identity) = local_input(&aws, &a.input, scratch.path()).await?;
    let columns =
        plan::columns(open(&input_path)?, format).map_err(|e| Error::user(format!("input {}: {e}", a.input)))?;
    match model_fields(&aws, &target.info, scratch.path()).await? {
        Some(fields) => plan::check_columns(&columns, &fields, id_field.as_deref()).map_err(|e| {
            Error::user(format!("input {} {e}", a.input)).help(format!(
                "version {}'s model needs the columns {}",
                target.info.version,
                fields.join(", ")
            ))
        })?,
        None => ctx.printer.warn("the model is inside the image, so the input's columns are checked by the function"),
    }
    let key = RunKey {
        output: format!("s3://{bucket}/{out_prefix}"),
        function: c.function.name.clone(),
        version: target.info.version.clone(),
        input_identity: identity,
        format,
        id_field: id_field.clone(),
        slice_rows: a.slice_rows as usize,
    };
    let run = key.id();
    let prefix = format!("{out_prefix}{run}/");
    let others = other_runs(&aws, &bucket, &out_prefix, &key).await?;
    if !others.is_empty() && !a.overwrite {
        return Err(Error::user(format!(
            "s3://{bucket}/{out_prefix} already holds runs of another input ({}): a prefix holds one dataset's runs",
            others.join(", ")
        ))
        .help("pick another --out, or pass --overwrite to add this run beside it"));
    }
    let earlier = runs::read_record(&aws, &bucket, &prefix).await?;
    let machine_name = plan::state_machine_name(&c.function.name);
    if a.dry.dry_run {
        let plan = DryRun {
            run: run.clone(),
            output: format!("s3://{bucket}/{prefix}"),
            function: target.arn.clone(),
            version: target.info.version.clone(),
            state_machine: machine_name,
            definition_sha256: plan::definition_text(&c.function.name).1,
            earlier_run: earlier.is_some(),
            slice_rows: a.slice_rows,
            max_concurrency: a.max_concurrency,
            tolerated_failure: a.tolerated_failure,
        };
        return Ok(Report::new(plan, true));
    }

    let role = ensure_role(&aws, p, a, &target, &bucket, &out_prefix).await?;
    grant_function(&aws, &target.info, &bucket, &out_prefix).await?;
    let (machine, _) = ensure_state_machine(&aws, &c.function.name, &role).await?;
    let executions = executions_of(&aws, &machine, &run).await?;
    let (record, action) = match earlier {
        Some(record) => {
            if let Some(last) = executions.first() {
                let last = aws::sfn::describe_execution(&aws, &last.arn).await?;
                if last.status == ExecutionStatus::Running || last.status == ExecutionStatus::Succeeded {
                    let report = follow(ctx, &aws, &record, &executions, a.wait, "found").await?;
                    return Ok(report);
                }
            }
            (record, "resumed")
        }
        None => {
            let (_, sha) = plan::definition_text(&c.function.name);
            let mut record = RunRecord {
                run: run.clone(),
                key,
                input: a.input.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                qualifier: target.qualifier.clone(),
                function_arn: target.arn.clone(),
                model_version: target.info.model_version(),
                slices: Vec::new(),
                rows: 0,
                tolerated_failure: a.tolerated_failure,
                max_concurrency: a.max_concurrency,
                definition_sha256: sha,
                created: now(),
            };
            let spinner = progress::spinner(ctx.printer, format!("cutting {} into slices", a.input));
            upload_slices(&aws, &mut record, &input_path).await?;
            spinner.finish_and_clear();
            ctx.printer.status(format!(
                "{} rows in {} slices under s3://{bucket}/{prefix}",
                record.rows,
                record.slices.len()
            ));
            let manifest = serde_json::to_vec(&record.manifest()).map_err(|e| Error::local(e.to_string()))?;
            aws::s3::put_json(&aws, &bucket, &format!("{prefix}{}", plan::MANIFEST), manifest).await?;
            let bytes = serde_json::to_vec_pretty(&record).map_err(|e| Error::local(e.to_string()))?;
            aws::s3::put_json(&aws, &bucket, &format!("{prefix}{}", plan::RUN_RECORD), bytes).await?;
            (record, "started")
        }
    };
    let input = ExecutionInput {
        bucket: bucket.clone(),
        manifest: format!("{prefix}{}", plan::MANIFEST),
        function: record.function_arn.clone(),
        max_concurrency: a.max_concurrency,
        tolerated_failure: a.tolerated_failure,
    };
    let name = plan::execution_name(&run, executions.len());
    let text = serde_json::to_string(&input).map_err(|e| Error::local(e.to_string()))?;
    let arn = aws::sfn::start_execution(&aws, &machine, &name, &text).await?;
    ctx.printer.status(format!("{action} run {run}: execution {name}"));
    let mut executions = executions;
    executions.insert(
        0,
        ExecutionInfo {
            arn,
            name,
            status: ExecutionStatus::Running,
            input: Some(text),
            started: now(),
            stopped: None,
            error: None,
            cause: None,
        },
    );
    follow(ctx, &aws, &record, &executions, a.wait, action).await
}

#[derive(Debug, Serialize)]
struct DryRun {
    run: String,
    output: String,
    function: String,
    version: String,
    state_machine: String,
    definition_sha256: String,
    earlier_run: bool,
    slice_rows: u64,
    max_concurrency: u32,
    tolerated_failure: f64,
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "run {} → {}", self.run, self.output)?;
        writeln!(f, "  function {} (version {})", self.function, self.version)?;
        writeln!(f, "  state machine {} (definition sha256 {})", self.state_machine, &self.definition_sha256[..12])?;
        writeln!(
            f,
            "  {} rows per slice · {} slices at once · {}% failures tolerated",
            self.slice_rows, self.max_concurrency, self.tolerated_failure
        )?;
        if self.earlier_run {
            writeln!(f, "  an earlier run of this input exists: it would be reported, or resumed if it failed")?;
        }
        Ok(())
    }
}

/// The executions of one run, newest first.
async fn executions_of(aws: &Aws, machine: &str, run: &str) -> Result<Vec<ExecutionInfo>> {
    Ok(aws::sfn::list_executions(aws, machine).await?.into_iter().filter(|e| e.run() == run).collect())
}

/// Waits (if asked) and reports: the summary once the run has ended, its progress while it runs.
async fn follow(
    ctx: &Ctx<'_>,
    aws: &Aws,
    record: &RunRecord,
    executions: &[ExecutionInfo],
    wait: bool,
    action: &'static str,
) -> Result<Report> {
    let latest = executions.first().ok_or_else(|| {
        Error::user(format!("run {} has no execution", record.run))
            .help("run the same `mlambda batch run` command again to start it")
    })?;
    let mut last = aws::sfn::describe_execution(aws, &latest.arn).await?;
    let mut progress_counts = aws::sfn::slice_counts(aws, &last.arn).await?;
    if wait && last.status == ExecutionStatus::Running {
        let bar = progress::slices(ctx.printer, record.slices.len() as u64, format!("run {}", record.run));
        let interrupted = loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break true,
                _ = tokio::time::sleep(POLL) => {}
            }
            last = aws::sfn::describe_execution(aws, &last.arn).await?;
            progress_counts = aws::sfn::slice_counts(aws, &last.arn).await?;
            if let Some(c) = progress_counts {
                bar.set_position(c.succeeded + c.failed);
            }
            if last.status != ExecutionStatus::Running {
                break false;
            }
        };
        bar.finish_and_clear();
        if interrupted {
            let report = RunReport {
                summary: summarise(aws, record, executions, &last).await?,
                progress: progress_counts,
                action,
                note: Some(format!("stopped waiting; the run goes on: `mlambda batch status {} --wait`", record.run)),
            };
            let err = Error::user(format!("stopped waiting for run {}, which is still running", record.run)).help(
                format!("`mlambda batch status {} --wait` waits again; `mlambda batch stop` stops it", record.run),
            );
            return Ok(Report::done(report).failing(err));
        }
    }
    let summary = summarise(aws, record, executions, &last).await?;
    if summary.status != RunStatus::Running {
        finalize(aws, record, &summary).await?;
    }
    let failure = verdict_error(&summary, &last);
    let note = (summary.status == RunStatus::Running)
        .then(|| format!("follow it with `mlambda batch status {} --wait`", record.run));
    let report = Report::done(RunReport { summary, progress: progress_counts, action, note });
    Ok(match failure {
        Some(e) => report.failing(e),
        None => report,
    })
}

/// Exit 0 only for a run that succeeded within its tolerance (or is still running when not waited for).
fn verdict_error(s: &Summary, last: &ExecutionInfo) -> Option<Error> {
    match s.status {
        RunStatus::Running | RunStatus::Succeeded => None,
        RunStatus::Stopped => Some(
            Error::user(format!("run {} was stopped with {} of {} slices scored", s.run, s.slices_done, s.slices))
                .help("run the same `mlambda batch run` command again to resume it"),
        ),
        RunStatus::Failed if !s.failed_slices.is_empty() => Some(
            Error::cloud(format!(
                "run {} failed: {} slices were never scored ({}){}",
                s.run,
                s.failed_slices.len(),
                s.failed_slices.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                last.cause
                    .as_deref()
                    .map(|c| format!(": {}", c.chars().take(300).collect::<String>()))
                    .unwrap_or_default()
            ))
            .help("their rows are in the failures file; run the same command again to rescore only those slices"),
        ),
        RunStatus::Failed => Some(
            Error::user(format!(
                "run {} failed: {:.3}% of rows failed, over the {}% tolerated",
                s.run, s.failure_percent, s.tolerated_failure
            ))
            .help(format!("the rows and the runtime's reasons are in {}", s.failures)),
        ),
    }
}

/// The run's accounting from its markers and its latest execution.
async fn summarise(
    aws: &Aws,
    record: &RunRecord,
    executions: &[ExecutionInfo],
    last: &ExecutionInfo,
) -> Result<Summary> {
    let mut done: Vec<Option<Done>> = vec![None; record.slices.len()];
    for (key, _) in aws::s3::list_keys(aws, &record.bucket, &format!("{}done/", record.prefix)).await? {
        let Some(bytes) = aws::s3::get_small(aws, &record.bucket, &key).await? else { continue };
        if let Ok(d) = serde_json::from_slice::<Done>(&bytes) {
            if let Some(i) = d.slice.strip_prefix("part-").and_then(|n| n.parse::<usize>().ok()) {
                if i < done.len() {
                    done[i] = Some(d);
                }
            }
        }
    }
    let names = executions.iter().map(|e| e.arn.clone()).collect();
    Ok(plan::summarise(record, &done, last.status, names, last.stopped.clone()))
}

/// Writes `failures.jsonl` (every failed row, including the rows of slices never scored) and `summary.json`.
async fn finalize(aws: &Aws, record: &RunRecord, summary: &Summary) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::local(format!("cannot create a temporary directory: {e}")))?;
    let all = dir.path().join(plan::FAILURES);
    let io = |e: std::io::Error| Error::local(format!("cannot write the failures file: {e}"));
    let mut out = BufWriter::new(std::fs::File::create(&all).map_err(io)?);
    for (i, _) in record.slices.iter().enumerate() {
        let job = record.job(i);
        let part = dir.path().join("part");
        let unscored = summary.failed_slices.contains(&job.slice);
        let key = if unscored { job.input_key() } else { job.failures_key() };
        if aws::s3::download(aws, &record.bucket, &key, &part).await?.is_none() {
            continue;
        }
        if unscored {
            unscored_rows(&job, &part, &mut out)?;
        } else {
            std::io::copy(&mut open(&part)?, &mut out).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    drop(out);
    let meta = std::collections::BTreeMap::new();
    aws::s3::upload_file(aws, &record.bucket, &format!("{}{}", record.prefix, plan::FAILURES), &all, &meta, &|_| {})
        .await?;
    let bytes = serde_json::to_vec_pretty(summary).map_err(|e| Error::local(e.to_string()))?;
    aws::s3::put_json(aws, &record.bucket, &format!("{}{}", record.prefix, plan::SUMMARY), bytes).await
}

/// One failure line per row of a slice the function never completed, with its id.
fn unscored_rows(job: &Job, slice: &Path, out: &mut impl Write) -> Result<()> {
    let io = |e: std::io::Error| Error::local(format!("cannot write the failures file: {e}"));
    let reason = format!("slice {} was not scored: the function failed on it after its retries", job.slice);
    let mut line = |row: u64, id: Option<Value>| -> Result<()> {
        let failed = FailedRow {
            id,
            slice: job.slice.clone(),
            row,
            status: 500,
            error_type: "SliceFailed".into(),
            reason: reason.clone(),
        };
        serde_json::to_writer(&mut *out, &failed).map_err(|e| Error::local(e.to_string()))?;
        out.write_all(b"\n").map_err(io)
    };
    match job.format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(open(slice)?);
            let column = match &job.id_field {
                Some(f) => reader.headers().ok().and_then(|h| h.iter().position(|c| c == f)),
                None => None,
            };
            for (row, record) in reader.records().enumerate() {
                let id = record.ok().and_then(|r| column.and_then(|c| r.get(c).map(|v| Value::String(v.to_string()))));
                line(row as u64, id)?;
            }
        }
        Format::Jsonl => {
            let lines = open(slice)?.lines().map_while(std::result::Result::ok).filter(|l| !l.trim().is_empty());
            for (row, text) in lines.enumerate() {
                let id = job
                    .id_field
                    .as_ref()
                    .and_then(|f| serde_json::from_str::<Value>(&text).ok().and_then(|v| v.get(f).cloned()));
                line(row as u64, id)?;
            }
        }
    }
    Ok(())
}

pub async fn status(ctx: &Ctx<'_>, p: &Project, a: &BatchRunRef) -> Result<Report> {
    let aws = ctx.aws().await?;
    let (record, executions) = runs::locate(&aws, &p.config().function.name, a.run.as_deref()).await?;
    follow(ctx, &aws, &record, &executions, a.wait, "status").await
}

#[derive(Debug, Serialize)]
pub struct RunList {
    pub runs: Vec<ExecutionInfo>,
}

impl fmt::Display for RunList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runs.is_empty() {
            return writeln!(f, "no batch runs");
        }
        let rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .map(|e| {
                vec![
                    e.run().to_string(),
                    e.name.clone(),
                    format!("{:?}", e.status).to_lowercase(),
                    e.started.clone(),
                    e.stopped.clone().unwrap_or_default(),
                ]
            })
            .collect();
        write!(f, "{}", table::render(&["RUN", "EXECUTION", "STATUS", "STARTED", "STOPPED"], &rows))
    }
}

pub async fn list(ctx: &Ctx<'_>, p: &Project) -> Result<Report> {
    let aws = ctx.aws().await?;
    let name = plan::state_machine_name(&p.config().function.name);
    let runs = match aws::sfn::find_state_machine(&aws, &name).await? {
        Some(machine) => aws::sfn::list_executions(&aws, &machine).await?,
        None => Vec::new(),
    };
    Ok(Report::done(RunList { runs }))
}

#[derive(Debug, Serialize)]
pub struct Stopped {
    pub run: String,
    pub execution: String,
    pub stopped: bool,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stopped {
            true => {
                writeln!(f, "stopped run {} ({}); the same `batch run` command resumes it", self.run, self.execution)
            }
            false => writeln!(f, "run {} is not running ({}); nothing to stop", self.run, self.execution),
        }
    }
}

pub async fn stop(ctx: &Ctx<'_>, p: &Project, a: &BatchStopArgs) -> Result<Report> {
    let aws = ctx.aws().await?;
    let (record, executions) = runs::locate(&aws, &p.config().function.name, Some(&a.run)).await?;
    let latest = executions.first().ok_or_else(|| Error::user(format!("run {} has no execution", record.run)))?;
    let running = aws::sfn::describe_execution(&aws, &latest.arn).await?.status == ExecutionStatus::Running;
    let out = Stopped { run: record.run.clone(), execution: latest.name.clone(), stopped: running };
    if a.dry.dry_run || !running {
        return Ok(Report::new(out, a.dry.dry_run));
    }
    aws::sfn::stop_execution(&aws, &latest.arn, "stopped by `mlambda batch stop`").await?;
    // the slices in flight finish first; report once the execution has stopped, so a resume never races it
    let spinner = progress::spinner(ctx.printer, format!("stopping run {}", record.run));
    let give_up = std::time::Instant::now() + STOP_WAIT;
    while aws::sfn::describe_execution(&aws, &latest.arn).await?.status == ExecutionStatus::Running {
        if std::time::Instant::now() > give_up {
            spinner.finish_and_clear();
            return Err(Error::cloud(format!(
                "run {} was asked to stop but still runs after {}s",
                record.run,
                STOP_WAIT.as_secs()
            ))
            .help(format!("`mlambda batch status {}` shows when it has stopped", record.run)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    spinner.finish_and_clear();
    Ok(Report::done(out))
}

#[cfg(test)]
mod tests {
    use mlambda_runtime::batch::slice_name;

    use super::*;

    #[test]
    fn unscored_slices_give_one_failure_per_row_with_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, "cid,a\nC-01,1\nC-02,2\n").unwrap();
        let job = Job {
            bucket: "b".into(),
            run: "r/".into(),
            slice: slice_name(3),
            format: Format::Csv,
            id_field: Some("cid".into()),
        };
        let mut out = Vec::new();
        unscored_rows(&job, &path, &mut out).unwrap();
        let rows: Vec<FailedRow> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].id.clone(), rows[1].row, rows[1].status), (Some(Value::String("C-02".into())), 1, 500));
        assert!(rows[0].reason.contains("part-00003"), "{}", rows[0].reason);
    }
}
