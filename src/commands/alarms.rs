//! `mlambda alarms`: create or update the alarms of the alias and each version it routes to, or delete them all.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::cloudwatch::{self, Alarm};
use crate::aws::lambda::{self, FunctionInfo};
use crate::aws::Aws;
use crate::cli::AlarmsArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::alarms::{self, AlarmSpec, Routed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    Deleted,
    /// An mlambda alarm for a version the alias no longer routes to; kept until `--delete`.
    Stale,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Deleted => "deleted",
            Change::Stale => "stale",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmChange {
    pub name: String,
    pub change: Change,
    /// The definition written (absent for deletes and stale alarms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<AlarmSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub function: String,
    pub alias: String,
    pub dry_run: bool,
    pub alarms: Vec<AlarmChange>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing was changed; mlambda would do this:")?;
        }
        if self.alarms.is_empty() {
            writeln!(f, "no mlambda alarms for `{}`", self.function)?;
        }
        for a in &self.alarms {
            match &a.spec {
                Some(s) => writeln!(f, "{:<9}  {s}", a.change.to_string())?,
                None => writeln!(f, "{:<9}  {}", a.change.to_string(), a.name)?,
            }
        }
        Ok(())
    }
}

/// `MODEL_VERSION` from a version's environment, the dimension of its EMF latency metric.
pub(crate) fn model_version(v: &FunctionInfo) -> Option<String> {
    v.env.get(mlambda_runtime::env::MODEL_VERSION).filter(|m| !m.is_empty()).cloned()
}

/// The alarm specs for the alias and the versions it routes to now.
async fn desired(aws: &Aws, config: &Config) -> Result<Vec<AlarmSpec>> {
    let (function, alias) = (&config.function.name, &config.function.alias);
    let a = lambda::get_alias(aws, function, alias).await?.ok_or_else(|| {
        Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
            .help("run `mlambda deploy` first; it publishes a version and creates the alias")
    })?;
    let mut routed = Vec::new();
    for v in std::iter::once(&a.primary).chain(a.routing.keys()) {
        let info = lambda::get_version(aws, function, v).await?;
        routed.push(Routed { version: v.clone(), model_version: info.as_ref().and_then(model_version) });
    }
    let primary_model = routed.first().and_then(|r| r.model_version.clone());
    alarms::specs(function, alias, primary_model.as_deref(), &routed, &config.alarms)
}

/// Writes the specs that are missing or differ; `existing` is what CloudWatch holds under the same prefix.
pub(crate) async fn sync(
    aws: &Aws,
    desired: &[AlarmSpec],
    existing: &[Alarm],
    dry_run: bool,
) -> Result<Vec<AlarmChange>> {
    let mut out = Vec::new();
    for spec in desired {
        let change = match existing.iter().find(|a| a.spec.name == spec.name) {
            Some(a) if a.spec == *spec => Change::Unchanged,
            Some(_) => Change::Updated,
            None => Change::Created,
        };
        if change != Change::Unchanged && !dry_run {
            cloudwatch::put_metric_alarm(aws, spec).await?;
        }
        out.push(AlarmChange { name: spec.name.clone(), change, spec: Some(spec.clone()) });
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx<'_>, args: &AlarmsArgs) -> Result<()> {
    let loaded = ctx.config()?;
    let config = &loaded.config;
    let aws = ctx.aws().await?;
    let prefix = alarms::function_prefix(&config.function.name);
    let existing = cloudwatch::describe_alarms(&aws, &prefix).await?;
    let dry_run = args.dry.dry_run;
    let changes = if args.delete {
        let names: Vec<String> = existing.iter().map(|a| a.spec.name.clone()).collect();
        if !dry_run {
            cloudwatch::delete_alarms(&aws, &names).await?;
        }
        names.into_iter().map(|name| AlarmChange { name, change: Change::Deleted, spec: None }).collect()
    } else {
        let desired = desired(&aws, config).await?;
        let mut changes = sync(&aws, &desired, &existing, dry_run).await?;
        changes.extend(
            existing.iter().filter(|a| !desired.iter().any(|d| d.name == a.spec.name)).map(|a| AlarmChange {
                name: a.spec.name.clone(),
                change: Change::Stale,
                spec: None,
            }),
        );
        changes
    };
    if changes.iter().any(|c| c.change == Change::Stale) {
        ctx.printer.status("stale alarms belong to versions the alias no longer routes to; `mlambda alarms --delete` removes every mlambda alarm of the function");
    }
    ctx.printer.data(&Outcome {
        function: config.function.name.clone(),
        alias: config.function.alias.clone(),
        dry_run,
        alarms: changes,
    });
    Ok(())
}
