//! Batch runs found by id: the batch state machine's executions are named after their run, and an execution's
//! input names the run's record (`run.json`) in S3. `batch status|stop` and `report --batch` look runs up here.
use crate::aws::{self, Aws};
use crate::error::{Error, Result};
use crate::plan::batch::{self as plan, ExecutionInfo, ExecutionInput, RunRecord};

pub async fn read_record(aws: &Aws, bucket: &str, prefix: &str) -> Result<Option<RunRecord>> {
    let Some(bytes) = aws::s3::get_small(aws, bucket, &format!("{prefix}{}", plan::RUN_RECORD)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::user(format!("s3://{bucket}/{prefix}{} is not a run record: {e}", plan::RUN_RECORD))
            .help("it is written by `mlambda batch run`; remove the prefix or use another --out")
    })
}

/// The run a `RUN` argument names (or the newest), with its record and executions.
pub async fn locate(aws: &Aws, function: &str, run: Option<&str>) -> Result<(RunRecord, Vec<ExecutionInfo>)> {
    let name = plan::state_machine_name(function);
    let machine = aws::sfn::find_state_machine(aws, &name).await?.ok_or_else(|| {
        Error::user(format!("`{function}` has no batch runs (no state machine `{name}`)"))
            .help("start one with `mlambda batch run INPUT --out s3://BUCKET/PREFIX/`")
    })?;
    let all = aws::sfn::list_executions(aws, &machine).await?;
    let run = match run {
        Some(r) => plan::run_of(r).to_string(),
        None => all.first().map(|e| e.run().to_string()).ok_or_else(|| {
            Error::user(format!("`{function}` has no batch runs")).help("start one with `mlambda batch run`")
        })?,
    };
    let executions: Vec<ExecutionInfo> = all.into_iter().filter(|e| e.run() == run).collect();
    let first = executions.last().ok_or_else(|| {
        Error::user(format!("no batch run `{run}` of `{function}`")).help("`mlambda batch list` shows the runs")
    })?;
    let described = aws::sfn::describe_execution(aws, &first.arn).await?;
    let input: ExecutionInput = described
        .input
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| Error::cloud(format!("execution `{}` has no mlambda input", first.name)))?;
    let record = read_record(aws, &input.bucket, input.run_prefix()).await?.ok_or_else(|| {
        Error::user(format!(
            "run {run}'s record s3://{}/{}{} is gone",
            input.bucket,
            input.run_prefix(),
            plan::RUN_RECORD
        ))
    })?;
    Ok((record, executions))
}

/// Where the run with this id lives: its bucket and its prefix (ending in `/`).
pub async fn location(aws: &Aws, function: &str, run: &str) -> Result<(String, String)> {
    let (record, _) = locate(aws, function, Some(run)).await?;
    Ok((record.bucket, record.prefix))
}
