//! `mlambda alarms`: create or update the alarms of the alias and each version it routes to, or delete them all.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::{cloudwatch, lambda, Aws};
use crate::config::Config;
use crate::domain::ManagedBy;
use crate::error::{Error, Result};
use crate::gather;
use crate::plan::alarms::{self, AlarmChange, AlarmSpec, Change};
use crate::report::Report;
use crate::settings::{AlarmsSettings, Project};

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub function: String,
    pub alias: String,
    pub dry_run: bool,
    pub alarms: Vec<AlarmChange>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// The alarm specs for the alias and the versions it routes to now.
async fn desired(aws: &Aws, config: &Config) -> Result<Vec<AlarmSpec>> {
    let (function, alias) = (&config.function.name, &config.function.alias);
    let a = lambda::get_alias(aws, function, alias).await?.ok_or_else(|| {
        Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
            .help("run `mlambda deploy` first; it publishes a version and creates the alias")
    })?;
    let routed = gather::routed(aws, function, &a).await?;
    let primary_model = routed.first().and_then(|r| r.model_version.clone());
    alarms::specs(function, alias, primary_model.as_deref(), &routed, &config.alarms)
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &AlarmsSettings) -> Result<Report> {
    let config = p.config();
    let aws = ctx.aws().await?;
    let prefix = alarms::function_prefix(&config.function.name);
    let mut existing = cloudwatch::describe_alarms(&aws, &prefix).await?;
    let dry_run = s.dry_run;
    if s.delete && config.function.managed_by == ManagedBy::Terraform {
        // the alias's alarms are in the team's Terraform (`export terraform`); only the versions' are mlambda's
        existing.retain(|a| alarms::is_version_alarm(&config.function.name, &a.spec.name));
        ctx.printer
            .status("`function.managed_by: terraform`: deleting only the versions' alarms; Terraform owns the alias's");
    }
    let changes = if s.delete {
        alarms::delete_plan(&existing)
    } else {
        alarms::sync_plan(&desired(&aws, config).await?, &existing)
    };
    if !dry_run {
        apply(&aws, &changes).await?;
    }
    if changes.iter().any(|c| c.change == Change::Stale) {
        ctx.printer.status("stale alarms belong to versions the alias no longer routes to; `mlambda alarms --delete` removes every mlambda alarm of the function");
    }
    let outcome = Outcome {
        function: config.function.name.clone(),
        alias: config.function.alias.clone(),
        dry_run,
        alarms: changes,
    };
    Ok(Report::new(outcome, dry_run))
}

/// Puts the created and updated alarms and deletes the deleted ones.
async fn apply(aws: &Aws, changes: &[AlarmChange]) -> Result<()> {
    for spec in changes.iter().filter_map(AlarmChange::to_put) {
        cloudwatch::put_metric_alarm(aws, spec).await?;
    }
    let deleted: Vec<String> = changes.iter().filter(|c| c.change == Change::Deleted).map(|c| c.name.clone()).collect();
    if !deleted.is_empty() {
        cloudwatch::delete_alarms(aws, &deleted).await?;
    }
    Ok(())
}
