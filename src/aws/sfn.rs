//! Step Functions for batch runs: the state machine, its executions and their Map Run's progress.
use aws_sdk_sfn::types::ExecutionStatus as SdkStatus;

use super::{fail, Aws};
use crate::error::Result;
use crate::plan::batch::{ExecutionInfo, ExecutionStatus, SliceCounts};

fn status(s: &SdkStatus) -> ExecutionStatus {
    match s {
        SdkStatus::Running | SdkStatus::PendingRedrive => ExecutionStatus::Running,
        SdkStatus::Succeeded => ExecutionStatus::Succeeded,
        SdkStatus::Aborted => ExecutionStatus::Stopped,
        _ => ExecutionStatus::Failed,
    }
}

fn time(t: &aws_smithy_types::DateTime) -> String {
    t.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default()
}

/// The state machine's ARN, or `None` when it does not exist.
pub async fn find_state_machine(aws: &Aws, name: &str) -> Result<Option<String>> {
    let mut token = None;
    loop {
        let page = aws
            .sfn
            .list_state_machines()
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail("list Step Functions state machines", e))?;
        if let Some(m) = page.state_machines().iter().find(|m| m.name() == name) {
            return Ok(Some(m.state_machine_arn().to_string()));
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(None);
        }
    }
}

/// The stored definition and role of a state machine.
pub async fn describe_state_machine(aws: &Aws, arn: &str) -> Result<(String, String)> {
    let out = aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(arn)
        .send()
        .await
        .map_err(|e| fail(format!("read state machine `{arn}`"), e))?;
    Ok((out.definition().to_string(), out.role_arn().to_string()))
}

pub async fn create_state_machine(aws: &Aws, name: &str, definition: &str, role: &str) -> Result<String> {
    let out = aws
        .sfn
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(role)
        .send()
        .await
        .map_err(|e| fail(format!("create state machine `{name}`"), e))?;
    Ok(out.state_machine_arn().to_string())
}

pub async fn update_state_machine(aws: &Aws, arn: &str, definition: &str, role: &str) -> Result<()> {
    aws.sfn
        .update_state_machine()
        .state_machine_arn(arn)
        .definition(definition)
        .role_arn(role)
        .send()
        .await
        .map_err(|e| fail(format!("update state machine `{arn}`"), e))?;
    Ok(())
}

pub async fn start_execution(aws: &Aws, state_machine: &str, name: &str, input: &str) -> Result<String> {
    let out = aws
        .sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(name)
        .input(input)
        .send()
        .await
        .map_err(|e| fail(format!("start execution `{name}` of `{state_machine}`"), e))?;
    Ok(out.execution_arn().to_string())
}

pub async fn describe_execution(aws: &Aws, arn: &str) -> Result<ExecutionInfo> {
    let out = aws
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| fail(format!("read execution `{arn}`"), e))?;
    Ok(ExecutionInfo {
        arn: out.execution_arn().to_string(),
        name: out.name().unwrap_or_default().to_string(),
        status: status(out.status()),
        input: out.input().map(str::to_string),
        started: time(out.start_date()),
        stopped: out.stop_date().map(time),
        error: out.error().map(str::to_string),
        cause: out.cause().map(str::to_string),
    })
}

/// Every execution of the state machine, newest first.
pub async fn list_executions(aws: &Aws, state_machine: &str) -> Result<Vec<ExecutionInfo>> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .sfn
            .list_executions()
            .state_machine_arn(state_machine)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| fail(format!("list the executions of `{state_machine}`"), e))?;
        out.extend(page.executions().iter().map(|e| ExecutionInfo {
            arn: e.execution_arn().to_string(),
            name: e.name().to_string(),
            status: status(e.status()),
            input: None,
            started: time(e.start_date()),
            stopped: e.stop_date().map(time),
            error: None,
            cause: None,
        }));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| b.started.cmp(&a.started));
    Ok(out)
}

pub async fn stop_execution(aws: &Aws, arn: &str, cause: &str) -> Result<()> {
    aws.sfn
        .stop_execution()
        .execution_arn(arn)
        .cause(cause)
        .send()
        .await
        .map_err(|e| fail(format!("stop execution `{arn}`"), e))?;
    Ok(())
}

/// The slices' progress from the execution's Map Run, once it has started one.
pub async fn slice_counts(aws: &Aws, execution: &str) -> Result<Option<SliceCounts>> {
    let runs = aws
        .sfn
        .list_map_runs()
        .execution_arn(execution)
        .send()
        .await
        .map_err(|e| fail(format!("list the map runs of `{execution}`"), e))?;
    let Some(run) = runs.map_runs().first() else { return Ok(None) };
    let out = aws
        .sfn
        .describe_map_run()
        .map_run_arn(run.map_run_arn())
        .send()
        .await
        .map_err(|e| fail(format!("read map run `{}`", run.map_run_arn()), e))?;
    Ok(out.item_counts().map(|c| SliceCounts {
        total: c.total().max(0) as u64,
        succeeded: c.succeeded().max(0) as u64,
        failed: (c.failed() + c.timed_out() + c.aborted()).max(0) as u64,
        running: c.running().max(0) as u64,
        pending: c.pending().max(0) as u64,
    }))
}
