//! Lambda reads and alias writes shared by deploy, rollout, status and model list.
use std::collections::BTreeMap;

use aws_sdk_lambda::types::{self as sdk, AliasRoutingConfiguration, FunctionConfiguration};

use super::{fail, Aws};
use crate::domain::{ManagedBy, PackageType};
use crate::error::Error;
use crate::error::Result;
use crate::plan::alias::AliasRouting;
use crate::plan::lambda::{
    Alias, Code, FunctionInfo, FunctionSpec, LambdaState, LastUpdateStatus, Readiness, ZIP_HANDLER, ZIP_RUNTIME,
};

fn package_type(p: &sdk::PackageType) -> Option<PackageType> {
    match p {
        sdk::PackageType::Image => Some(PackageType::Image),
        sdk::PackageType::Zip => Some(PackageType::Zip),
        _ => None,
    }
}

fn state(s: &sdk::State) -> LambdaState {
    match s {
        sdk::State::Pending => LambdaState::Pending,
        sdk::State::Active => LambdaState::Active,
        sdk::State::Inactive => LambdaState::Inactive,
        sdk::State::Failed => LambdaState::Failed,
        other => LambdaState::Other(other.as_str().to_string()),
    }
}

fn update_status(s: &sdk::LastUpdateStatus) -> LastUpdateStatus {
    match s {
        sdk::LastUpdateStatus::InProgress => LastUpdateStatus::InProgress,
        sdk::LastUpdateStatus::Successful => LastUpdateStatus::Successful,
        sdk::LastUpdateStatus::Failed => LastUpdateStatus::Failed,
        other => LastUpdateStatus::Other(other.as_str().to_string()),
    }
}

fn function_info(c: &FunctionConfiguration) -> FunctionInfo {
    let reason = c.state_reason().or(c.last_update_status_reason()).map(str::to_string);
    FunctionInfo {
        name: c.function_name().unwrap_or_default().to_string(),
        arn: c.function_arn().unwrap_or_default().to_string(),
        version: c.version().unwrap_or_default().to_string(),
        description: c.description().unwrap_or_default().to_string(),
        role: c.role().unwrap_or_default().to_string(),
        dead_letter: c.dead_letter_config().and_then(|d| d.target_arn()).map(str::to_string),
        code_sha256: c.code_sha256().unwrap_or_default().to_string(),
        package_type: c.package_type().and_then(package_type),
        state: c.state().map(state),
        last_update_status: c.last_update_status().map(update_status),
        reason,
        env: c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        memory: c.memory_size().unwrap_or_default(),
        timeout: c.timeout().unwrap_or_default(),
        architecture: c.architectures().first().map(|a| a.as_str().to_string()).unwrap_or_default(),
        last_modified: c.last_modified().unwrap_or_default().to_string(),
        revision_id: c.revision_id().unwrap_or_default().to_string(),
    }
}

/// `$LATEST`'s configuration and its image URI as it was set (`Code.ImageUri`, always by digest when mlambda set
/// it), or `None` when the function does not exist. The resolved URI is only a fallback: moto mangles it.
pub async fn get_function(aws: &Aws, name: &str) -> Result<Option<(FunctionInfo, Option<String>)>> {
    match aws.lambda.get_function().function_name(name).send().await {
        Ok(out) => {
            let info = out.configuration().map(function_info).unwrap_or_default();
            let image = out.code().and_then(|c| c.image_uri().or(c.resolved_image_uri())).map(str::to_string);
            Ok(Some((info, image)))
        }
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(fail(format!("read function `{name}`"), e).into()),
    }
}

/// One published version's configuration (`version` may also be `$LATEST`).
pub async fn get_version(aws: &Aws, name: &str, version: &str) -> Result<Option<FunctionInfo>> {
    match aws.lambda.get_function().function_name(name).qualifier(version).send().await {
        Ok(out) => Ok(out.configuration().map(function_info)),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(fail(format!("read version {version} of `{name}`"), e).into()),
    }
}

/// Published versions, oldest first, without `$LATEST`.
pub async fn list_versions(aws: &Aws, name: &str) -> Result<Vec<FunctionInfo>> {
    let all = aws
        .lambda
        .list_versions_by_function()
        .function_name(name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| fail(format!("list the versions of `{name}`"), e))?;
    let mut out: Vec<FunctionInfo> = all.iter().map(function_info).filter(|v| v.version != "$LATEST").collect();
    out.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
    Ok(out)
}

fn alias_from(
    name: Option<&str>,
    arn: Option<&str>,
    primary: Option<&str>,
    routing: Option<&AliasRoutingConfiguration>,
    description: Option<&str>,
    revision_id: Option<&str>,
) -> Alias {
    Alias {
        name: name.unwrap_or_default().to_string(),
        arn: arn.unwrap_or_default().to_string(),
        primary: primary.unwrap_or_default().to_string(),
        routing: routing
            .and_then(|r| r.additional_version_weights())
            .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
        description: description.unwrap_or_default().to_string(),
        revision_id: revision_id.unwrap_or_default().to_string(),
    }
}

pub async fn get_alias(aws: &Aws, function: &str, alias: &str) -> Result<Option<Alias>> {
    match aws.lambda.get_alias().function_name(function).name(alias).send().await {
        Ok(a) => Ok(Some(alias_from(
            a.name(),
            a.alias_arn(),
            a.function_version(),
            a.routing_config(),
            a.description(),
            a.revision_id(),
        ))),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(fail(format!("read alias `{alias}` of `{function}`"), e).into()),
    }
}

pub async fn list_aliases(aws: &Aws, function: &str) -> Result<Vec<Alias>> {
    let all = aws
        .lambda
        .list_aliases()
        .function_name(function)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| fail(format!("list the aliases of `{function}`"), e))?;
    Ok(all
        .iter()
        .map(|a| {
            alias_from(
                a.name(),
                a.alias_arn(),
                a.function_version(),
                a.routing_config(),
                a.description(),
                a.revision_id(),
            )
        })
        .collect())
}

/// What an alias should become. `revision_id` guards against a concurrent change.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasWrite<'a> {
    pub function: &'a str,
    pub alias: &'a str,
    pub routing: AliasRouting,
    pub description: &'a str,
    pub revision_id: Option<&'a str>,
}

/// Lambda's `AdditionalVersionWeights`: the candidate and its weight, or empty to clear the routing.
fn routing_config(w: &AliasWrite<'_>) -> AliasRoutingConfiguration {
    let weights = w.routing.additional.iter().map(|(v, weight)| (v.to_string(), weight.get())).collect();
    AliasRoutingConfiguration::builder().set_additional_version_weights(Some(weights)).build()
}

pub async fn create_alias(aws: &Aws, w: &AliasWrite<'_>) -> Result<Alias> {
    let a = aws
        .lambda
        .create_alias()
        .function_name(w.function)
        .name(w.alias)
        .function_version(w.routing.primary.to_string())
        .description(w.description)
        .routing_config(routing_config(w))
        .send()
        .await
        .map_err(|e| fail(format!("create alias `{}` of `{}`", w.alias, w.function), e))?;
    Ok(alias_from(a.name(), a.alias_arn(), a.function_version(), a.routing_config(), a.description(), a.revision_id()))
}

/// An alias write's result: done, or refused because the alias changed since its `RevisionId` was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Done(Alias),
    /// `PreconditionFailedException`: someone else wrote the alias first; nothing was changed.
    Stale,
}

/// Updates the alias, conditioned on `revision_id` when given.
pub async fn update_alias(aws: &Aws, w: &AliasWrite<'_>) -> Result<Written> {
    let res = aws
        .lambda
        .update_alias()
        .function_name(w.function)
        .name(w.alias)
        .function_version(w.routing.primary.to_string())
        .description(w.description)
        .routing_config(routing_config(w))
        .set_revision_id(w.revision_id.map(str::to_string))
        .send()
        .await;
    written(res, || format!("update alias `{}` of `{}`", w.alias, w.function))
}

/// Rewrites only the alias's description (its routing untouched), conditioned on `revision_id`: taking or
/// giving back a lease.
pub async fn update_alias_description(
    aws: &Aws,
    function: &str,
    alias: &str,
    description: &str,
    revision_id: &str,
) -> Result<Written> {
    let res = aws
        .lambda
        .update_alias()
        .function_name(function)
        .name(alias)
        .description(description)
        .set_revision_id(Some(revision_id.to_string()).filter(|r| !r.is_empty()))
        .send()
        .await;
    written(res, || format!("update the description of alias `{alias}` of `{function}`"))
}

fn written(
    res: std::result::Result<
        aws_sdk_lambda::operation::update_alias::UpdateAliasOutput,
        aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::update_alias::UpdateAliasError>,
    >,
    what: impl FnOnce() -> String,
) -> Result<Written> {
    match res {
        Ok(a) => Ok(Written::Done(alias_from(
            a.name(),
            a.alias_arn(),
            a.function_version(),
            a.routing_config(),
            a.description(),
            a.revision_id(),
        ))),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_precondition_failed_exception()) => Ok(Written::Stale),
        Err(e) => Err(fail(what(), e).into()),
    }
}

/// Provisioned concurrency on one alias, as Lambda reports it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Provisioned {
    pub requested: i32,
    pub allocated: i32,
    pub available: i32,
    /// `IN_PROGRESS`, `READY` or `FAILED`.
    pub status: String,
    pub reason: Option<String>,
}

/// True when the service said "there is no such config" (or, like moto, does not implement the call at all).
/// An endpoint without provisioned concurrency (moto) answers 404 or 501 with no error code at all.
fn unimplemented<E: aws_sdk_lambda::error::ProvideErrorMetadata>(err: &aws_sdk_lambda::error::SdkError<E>) -> bool {
    use aws_sdk_lambda::error::SdkError;
    match err {
        SdkError::ServiceError(se) => se.err().code().is_none() && matches!(se.raw().status().as_u16(), 404 | 501),
        _ => false,
    }
}

/// The alias's provisioned concurrency; `None` when there is none (or the endpoint does not implement it).
pub async fn get_provisioned_concurrency(aws: &Aws, function: &str, alias: &str) -> Result<Option<Provisioned>> {
    match aws.lambda.get_provisioned_concurrency_config().function_name(function).qualifier(alias).send().await {
        Ok(o) => Ok(Some(Provisioned {
            requested: o.requested_provisioned_concurrent_executions().unwrap_or_default(),
            allocated: o.allocated_provisioned_concurrent_executions().unwrap_or_default(),
            available: o.available_provisioned_concurrent_executions().unwrap_or_default(),
            status: o.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            reason: o.status_reason().map(str::to_string),
        })),
        Err(e)
            if e.as_service_error().is_some_and(|se| se.is_provisioned_concurrency_config_not_found_exception())
                || unimplemented(&e) =>
        {
            Ok(None)
        }
        Err(e) => Err(fail(format!("read the provisioned concurrency of `{function}:{alias}`"), e).into()),
    }
}

/// Asks Lambda to keep `n` environments of the alias initialised; allocation continues in the background.
pub async fn put_provisioned_concurrency(aws: &Aws, function: &str, alias: &str, n: i32) -> Result<Provisioned> {
    let o = aws
        .lambda
        .put_provisioned_concurrency_config()
        .function_name(function)
        .qualifier(alias)
        .provisioned_concurrent_executions(n)
        .send()
        .await
        .map_err(|e| fail(format!("set provisioned concurrency {n} on `{function}:{alias}`"), e))?;
    Ok(Provisioned {
        requested: o.requested_provisioned_concurrent_executions().unwrap_or(n),
        allocated: o.allocated_provisioned_concurrent_executions().unwrap_or_default(),
        available: o.available_provisioned_concurrent_executions().unwrap_or_default(),
        status: o.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        reason: o.status_reason().map(str::to_string),
    })
}

/// Removes the alias's provisioned concurrency; `false` when there was none.
pub async fn delete_provisioned_concurrency(aws: &Aws, function: &str, alias: &str) -> Result<bool> {
    match aws.lambda.delete_provisioned_concurrency_config().function_name(function).qualifier(alias).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) || unimplemented(&e) => {
            Ok(false)
        }
        Err(e) => Err(fail(format!("remove the provisioned concurrency of `{function}:{alias}`"), e).into()),
    }
}

/// Lets `principal` invoke the alias from `source_arn`; `false` when the statement was already there.
pub async fn add_invoke_permission(
    aws: &Aws,
    function: &str,
    alias: &str,
    statement_id: &str,
    principal: &str,
    source_arn: &str,
) -> Result<bool> {
    let res = aws
        .lambda
        .add_permission()
        .function_name(function)
        .qualifier(alias)
        .statement_id(statement_id)
        .action("lambda:InvokeFunction")
        .principal(principal)
        .source_arn(source_arn)
        .send()
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_conflict_exception()) => Ok(false),
        Err(e) => Err(fail(format!("allow {principal} to invoke `{function}:{alias}`"), e).into()),
    }
}

fn architecture(a: &str) -> aws_sdk_lambda::types::Architecture {
    aws_sdk_lambda::types::Architecture::from(a)
}

fn environment(env: &BTreeMap<String, String>) -> aws_sdk_lambda::types::Environment {
    aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
        .build()
}

/// How long a new role may take to become assumable by Lambda: IAM is eventually consistent.
const ROLE_PROPAGATION_DELAYS: [u64; 7] = [1, 2, 4, 8, 10, 10, 10];

/// Creates an image or zip function, retrying while a freshly created role propagates; returns the
/// `CodeSha256` it was created with.
pub async fn create_function(aws: &Aws, spec: &FunctionSpec) -> Result<String> {
    let mut delays = ROLE_PROPAGATION_DELAYS.iter();
    loop {
        let req = aws
            .lambda
            .create_function()
            .function_name(&spec.name)
            .role(&spec.role)
            .memory_size(spec.memory)
            .timeout(spec.timeout)
            .architectures(architecture(&spec.architecture))
            .environment(environment(&spec.env))
            .description(&spec.description)
            .tags("mlambda:managed-by", "mlambda");
        let req = match &spec.code {
            Code::Image { image_uri } => req
                .package_type(sdk::PackageType::Image)
                .code(sdk::FunctionCode::builder().image_uri(image_uri).build()),
            Code::Zip { bucket, key, .. } => req
                .package_type(sdk::PackageType::Zip)
                .runtime(sdk::Runtime::from(ZIP_RUNTIME))
                .handler(ZIP_HANDLER)
                .code(sdk::FunctionCode::builder().s3_bucket(bucket).s3_key(key).build()),
        };
        let res = req.send().await;
        match res {
            Ok(out) => return Ok(out.code_sha256().unwrap_or_default().to_string()),
            Err(e)
                // Lambda gives this case no code of its own, only its message.
                if e.as_service_error().is_some_and(|se| {
                    se.is_invalid_parameter_value_exception()
                        && aws_sdk_lambda::error::ProvideErrorMetadata::message(se)
                            .is_some_and(|m| m.contains("cannot be assumed"))
                }) =>
            {
                match delays.next() {
                    Some(secs) => tokio::time::sleep(std::time::Duration::from_secs(*secs)).await,
                    None => {
                        return Err(Error::from(fail(format!("create function `{}`", spec.name), e)).help(format!(
                            "Lambda still cannot assume role `{}`; check its trust policy allows `lambda.amazonaws.com`, then re-run",
                            spec.role
                        )))
                    }
                }
            }
            Err(e) => return Err(fail(format!("create function `{}`", spec.name), e).into()),
        }
    }
}

/// Points `$LATEST` at a new image or zip (and architecture); returns the `CodeSha256` it now holds.
pub async fn update_function_code(aws: &Aws, spec: &FunctionSpec) -> Result<String> {
    let req = aws.lambda.update_function_code().function_name(&spec.name);
    let req = match &spec.code {
        Code::Image { image_uri } => req.image_uri(image_uri),
        Code::Zip { bucket, key, .. } => req.s3_bucket(bucket).s3_key(key),
    };
    let out = req
        .architectures(architecture(&spec.architecture))
        .send()
        .await
        .map_err(|e| fail(format!("update the code of `{}`", spec.name), e))?;
    Ok(out.code_sha256().unwrap_or_default().to_string())
}

/// Sets role, memory, timeout, environment and description on `$LATEST`; on a function Terraform owns, only
/// the environment (so the deployer needs no `iam:PassRole` on the team's role, and nothing else is written).
pub async fn update_function_configuration(aws: &Aws, spec: &FunctionSpec) -> Result<()> {
    let req = aws.lambda.update_function_configuration().function_name(&spec.name).environment(environment(&spec.env));
    let req = match spec.managed_by {
        ManagedBy::Terraform => req,
        ManagedBy::Mlambda => {
            req.role(&spec.role).memory_size(spec.memory).timeout(spec.timeout).description(&spec.description)
        }
    };
    req.send().await.map_err(|e| fail(format!("update the configuration of `{}`", spec.name), e))?;
    Ok(())
}

/// Polls `$LATEST` until State=Active and LastUpdateStatus=Successful, backing off up to 5 s between reads.
/// Failed is a cloud error carrying Lambda's reason; running out of `timeout` says a re-run resumes.
pub async fn wait_until_ready(aws: &Aws, name: &str, timeout: std::time::Duration) -> Result<FunctionInfo> {
    let start = tokio::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        let info = get_version(aws, name, "$LATEST").await?.ok_or_else(|| {
            Error::cloud(format!("function `{name}` disappeared while mlambda was waiting for it"))
                .help("someone deleted it; re-run `mlambda deploy` to create it again")
        })?;
        match info.readiness() {
            Readiness::Ready => return Ok(info),
            Readiness::Failed(reason) => {
                let reason = reason.unwrap_or_else(|| "Lambda gave no reason".into());
                return Err(Error::cloud(format!("function `{name}` failed to update: {reason}")).help(
                    "fix the cause above (image, role or configuration), then re-run `mlambda deploy`; the alias was not moved",
                ));
            }
            Readiness::Waiting => {}
        }
        if start.elapsed() >= timeout {
            return Err(Error::cloud(format!(
                "gave up after {} waiting for `{name}` to become ready (State={}, LastUpdateStatus={})",
                humantime::format_duration(timeout),
                info.state.as_ref().map_or("unknown", LambdaState::as_str),
                info.last_update_status.as_ref().map_or("unknown", LastUpdateStatus::as_str),
            ))
            .help("the function may still be updating; re-run `mlambda deploy` (perhaps with a longer `--wait`) to resume"));
        }
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(5));
    }
}

/// A version `publish_version` created (or, when nothing changed, the one it returned again).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    pub version: String,
    pub arn: String,
}

/// Publishes `$LATEST` only if it still holds `code_sha256` at `revision_id` (when given): Lambda refuses to
/// publish anything else, so a deploy racing another never publishes the other's code under its own name.
pub async fn publish_version(
    aws: &Aws,
    name: &str,
    description: &str,
    code_sha256: &str,
    revision_id: &str,
) -> Result<Published> {
    let req = aws
        .lambda
        .publish_version()
        .function_name(name)
        .description(description)
        .set_code_sha256(Some(code_sha256.to_string()).filter(|c| !c.is_empty()))
        .set_revision_id(Some(revision_id.to_string()).filter(|r| !r.is_empty()));
    match req.send().await {
        Ok(out) => Ok(Published {
            version: out.version().unwrap_or_default().to_string(),
            arn: out.function_arn().unwrap_or_default().to_string(),
        }),
        Err(e) if code_changed(&e) => Err(Error::cloud(format!(
            "Lambda refused to publish `{name}`: its code or configuration changed after this deploy updated it"
        ))
        .help(
            "another deploy got in between; nothing was published and the alias was not moved; re-run `mlambda deploy`",
        )),
        Err(e) => Err(fail(format!("publish a version of `{name}`"), e).into()),
    }
}

/// Lambda's answers when `$LATEST` is no longer what we publish against: a stale `RevisionId` is a
/// precondition failure; another `CodeSha256` is an invalid parameter whose message names `CodeSHA256`.
fn code_changed(
    e: &aws_sdk_lambda::error::SdkError<aws_sdk_lambda::operation::publish_version::PublishVersionError>,
) -> bool {
    e.as_service_error().is_some_and(|se| {
        se.is_precondition_failed_exception()
            || (se.is_invalid_parameter_value_exception()
                && aws_sdk_lambda::error::ProvideErrorMetadata::message(se)
                    .is_some_and(|m| m.to_ascii_lowercase().contains("codesha256")))
    })
}

/// Tags the function (tags are per function, not per version).
pub async fn tag_resource(aws: &Aws, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    aws.lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
        .send()
        .await
        .map_err(|e| fail(format!("tag `{arn}`"), e))?;
    Ok(())
}

/// Deletes one published version (never `$LATEST`: callers pass numbers).
pub async fn delete_version(aws: &Aws, name: &str, version: &str) -> Result<()> {
    aws.lambda
        .delete_function()
        .function_name(name)
        .qualifier(version)
        .send()
        .await
        .map_err(|e| fail(format!("delete version {version} of `{name}`"), e))?;
    Ok(())
}

/// The function URL on `qualifier` (an alias) and its auth type (`AWS_IAM` or `NONE`), if there is one.
pub async fn get_function_url(aws: &Aws, function: &str, qualifier: &str) -> Result<Option<(String, String)>> {
    match aws.lambda.get_function_url_config().function_name(function).qualifier(qualifier).send().await {
        Ok(c) => Ok(Some((c.function_url().to_string(), c.auth_type().as_str().to_string()))),
        Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(fail(format!("read the function URL of `{function}:{qualifier}`"), e).into()),
    }
}

/// Creates the function URL on `qualifier`; `public` means auth type NONE plus the resource policy statement
/// that lets anyone invoke it (without it, a NONE URL answers 403).
pub async fn create_function_url(aws: &Aws, function: &str, qualifier: &str, public: bool) -> Result<String> {
    let auth = if public { sdk::FunctionUrlAuthType::None } else { sdk::FunctionUrlAuthType::AwsIam };
    let out = aws
        .lambda
        .create_function_url_config()
        .function_name(function)
        .qualifier(qualifier)
        .auth_type(auth)
        .send()
        .await
        .map_err(|e| fail(format!("create the function URL of `{function}:{qualifier}`"), e))?;
    if public {
        aws.lambda
            .add_permission()
            .function_name(function)
            .qualifier(qualifier)
            .statement_id("mlambda-public-function-url")
            .action("lambda:InvokeFunctionUrl")
            .principal("*")
            .function_url_auth_type(sdk::FunctionUrlAuthType::None)
            .send()
            .await
            .map_err(|e| fail(format!("allow public calls to the function URL of `{function}:{qualifier}`"), e))?;
    }
    Ok(out.function_url().to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
    use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, State};
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock;

    fn config(state: State, update: LastUpdateStatus, reason: Option<&str>) -> GetFunctionOutput {
        let c = FunctionConfiguration::builder()
            .function_name("churn")
            .version("$LATEST")
            .state(state)
            .last_update_status(update)
            .set_last_update_status_reason(reason.map(str::to_string))
            .build();
        GetFunctionOutput::builder().configuration(c).build()
    }

    #[tokio::test(start_paused = true)]
    async fn a_pending_function_is_waited_for_until_active() {
        let pending = mock!(Client::get_function)
            .sequence()
            .output(|| config(State::Pending, LastUpdateStatus::InProgress, None))
            .times(3)
            .output(|| config(State::Active, LastUpdateStatus::InProgress, None))
            .output(|| config(State::Active, LastUpdateStatus::Successful, None))
            .build();
        let aws = mock::lambda_in_order(&[&pending]);
        let start = tokio::time::Instant::now();
        let info = wait_until_ready(&aws, "churn", Duration::from_secs(300)).await.unwrap();
        assert_eq!(info.readiness(), Readiness::Ready);
        assert_eq!(pending.num_calls(), 5);
        // Backoff 0.5 + 1 + 2 + 4 s: polled patiently, well inside the timeout.
        assert_eq!(start.elapsed(), Duration::from_millis(7500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_update_is_a_cloud_error_with_lambdas_reason() {
        let failed = mock!(Client::get_function)
            .sequence()
            .output(|| config(State::Active, LastUpdateStatus::InProgress, None))
            .output(|| config(State::Active, LastUpdateStatus::Failed, Some("image manifest is not supported")))
            .build();
        let aws = mock::lambda_in_order(&[&failed]);
        let e = wait_until_ready(&aws, "churn", Duration::from_secs(300)).await.unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("failed to update: image manifest is not supported"), "{}", e.message);
        assert!(e.help.unwrap().contains("alias was not moved"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_that_never_finishes_times_out_clearly() {
        let stuck = mock!(Client::get_function)
            .sequence()
            .output(|| config(State::Active, LastUpdateStatus::InProgress, None))
            .repeatedly()
            .build();
        let aws = mock::lambda_in_order(&[&stuck]);
        let start = tokio::time::Instant::now();
        let e = wait_until_ready(&aws, "churn", Duration::from_secs(60)).await.unwrap_err();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
            "gives up at the deadline: {waited:?}"
        );
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message.contains("gave up after 1m") && e.message.contains("LastUpdateStatus=InProgress"),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("may still be updating; re-run `mlambda deploy`"));
        assert!(stuck.num_calls() > 5);
    }
}
