//! Lambda reads and alias writes shared by deploy, rollout, status and model list.
use std::collections::BTreeMap;

use aws_sdk_lambda::types::{AliasRoutingConfiguration, FunctionConfiguration};

use super::{error_code, fail, Aws};
use crate::error::Result;

/// One function configuration (`$LATEST` or a published version), without SDK types.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    pub version: String,
    pub description: String,
    pub role: String,
    /// The dead-letter target, which both versions of an alias must share.
    pub dead_letter: Option<String>,
    pub code_sha256: String,
    pub state: String,
    pub last_update_status: String,
    /// Lambda's reason for a Failed state or update.
    pub reason: Option<String>,
    pub env: BTreeMap<String, String>,
    pub memory: i32,
    pub timeout: i32,
    pub architecture: String,
    pub last_modified: String,
    pub revision_id: String,
}

/// An alias: its primary version and the weighted additional version, if any.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub primary: String,
    /// Additional version → weight in (0, 1).
    pub routing: BTreeMap<String, f64>,
    pub description: String,
    pub revision_id: String,
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
        state: c.state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        last_update_status: c.last_update_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
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

/// `$LATEST`'s configuration and its image URI, or `None` when the function does not exist.
pub async fn get_function(aws: &Aws, name: &str) -> Result<Option<(FunctionInfo, Option<String>)>> {
    match aws.lambda.get_function().function_name(name).send().await {
        Ok(out) => {
            let info = out.configuration().map(function_info).unwrap_or_default();
            let image = out.code().and_then(|c| c.resolved_image_uri().or(c.image_uri())).map(str::to_string);
            Ok(Some((info, image)))
        }
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(fail(format!("read function `{name}`"), e)),
    }
}

/// One published version's configuration (`version` may also be `$LATEST`).
pub async fn get_version(aws: &Aws, name: &str, version: &str) -> Result<Option<FunctionInfo>> {
    match aws.lambda.get_function().function_name(name).qualifier(version).send().await {
        Ok(out) => Ok(out.configuration().map(function_info)),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(fail(format!("read version {version} of `{name}`"), e)),
    }
}

/// Published versions, oldest first, without `$LATEST`.
pub async fn list_versions(aws: &Aws, name: &str) -> Result<Vec<FunctionInfo>> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .lambda
            .list_versions_by_function()
            .function_name(name)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| fail(format!("list the versions of `{name}`"), e))?;
        out.extend(page.versions().iter().map(function_info).filter(|v| v.version != "$LATEST"));
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
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
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(fail(format!("read alias `{alias}` of `{function}`"), e)),
    }
}

pub async fn list_aliases(aws: &Aws, function: &str) -> Result<Vec<Alias>> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let page = aws
            .lambda
            .list_aliases()
            .function_name(function)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| fail(format!("list the aliases of `{function}`"), e))?;
        out.extend(page.aliases().iter().map(|a| {
            alias_from(
                a.name(),
                a.alias_arn(),
                a.function_version(),
                a.routing_config(),
                a.description(),
                a.revision_id(),
            )
        }));
        marker = page.next_marker().map(str::to_string);
        if marker.is_none() {
            break;
        }
    }
    Ok(out)
}

/// What an alias should become. `revision_id` guards against a concurrent change.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasWrite<'a> {
    pub function: &'a str,
    pub alias: &'a str,
    pub primary: &'a str,
    pub routing: BTreeMap<String, f64>,
    pub description: &'a str,
    pub revision_id: Option<&'a str>,
}

fn routing_config(w: &AliasWrite<'_>) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(w.routing.iter().map(|(k, v)| (k.clone(), *v)).collect()))
        .build()
}

pub async fn create_alias(aws: &Aws, w: &AliasWrite<'_>) -> Result<Alias> {
    let a = aws
        .lambda
        .create_alias()
        .function_name(w.function)
        .name(w.alias)
        .function_version(w.primary)
        .description(w.description)
        .routing_config(routing_config(w))
        .send()
        .await
        .map_err(|e| fail(format!("create alias `{}` of `{}`", w.alias, w.function), e))?;
    Ok(alias_from(a.name(), a.alias_arn(), a.function_version(), a.routing_config(), a.description(), a.revision_id()))
}

/// Updates the alias; a `PreconditionFailedException` means someone else changed it since it was read.
pub async fn update_alias(aws: &Aws, w: &AliasWrite<'_>) -> Result<Alias> {
    let res = aws
        .lambda
        .update_alias()
        .function_name(w.function)
        .name(w.alias)
        .function_version(w.primary)
        .description(w.description)
        .routing_config(routing_config(w))
        .set_revision_id(w.revision_id.map(str::to_string))
        .send()
        .await;
    match res {
        Ok(a) => Ok(alias_from(
            a.name(),
            a.alias_arn(),
            a.function_version(),
            a.routing_config(),
            a.description(),
            a.revision_id(),
        )),
        Err(e) if error_code(&e) == Some("PreconditionFailedException") => Err(crate::error::Error::cloud(format!(
            "alias `{}` of `{}` was changed by someone else while mlambda was updating it",
            w.alias, w.function
        ))
        .help("nothing was changed by mlambda; run `mlambda status` to see the alias, then re-run the command")),
        Err(e) => Err(fail(format!("update alias `{}` of `{}`", w.alias, w.function), e)),
    }
}
