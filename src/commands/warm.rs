//! `mlambda warm`: provisioned concurrency on the alias, or an EventBridge schedule that pings it.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::events::{self, Schedule};
use crate::aws::lambda::{self, Provisioned};
use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::plan::alias;
use crate::plan::lambda::Alias;
use crate::report::Report;
use crate::settings::{Project, WarmSettings};

/// The payload the runtime answers without running the model.
const WARMUP: &str = r#"{"_warmup": true}"#;

#[derive(Debug, Clone, Serialize)]
pub struct ProvisionedOutcome {
    pub requested: i32,
    /// What Lambda reported back (absent for a dry run or a removal).
    pub config: Option<Provisioned>,
    /// For `--provisioned 0`: whether there was a config to remove.
    pub removed: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleOutcome {
    pub rule: String,
    pub rule_arn: Option<String>,
    pub expression: Schedule,
    pub target: String,
    pub input: String,
    /// False when EventBridge already had permission to invoke the alias.
    pub permission_added: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub function: String,
    pub alias: String,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<ProvisionedOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleOutcome>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = format!("{}:{}", self.function, self.alias);
        let would = if self.dry_run { "would " } else { "" };
        if let Some(p) = &self.provisioned {
            match (p.requested, p.removed) {
                (0, Some(false)) => writeln!(f, "`{target}` had no provisioned concurrency")?,
                (0, _) => writeln!(f, "{would}remove the provisioned concurrency of `{target}`")?,
                (n, _) => {
                    let status = p.config.as_ref().map(|c| format!(" ({})", c.status)).unwrap_or_default();
                    writeln!(f, "{would}keep {n} environments of `{target}` initialised{status}")?
                }
            }
        }
        if let Some(s) = &self.schedule {
            writeln!(f, "{would}ping `{target}` with {} on `{}` (rule `{}`)", s.input, s.expression.as_str(), s.rule)?;
        }
        Ok(())
    }
}

async fn read_alias(aws: &Aws, function: &str, alias: &str) -> Result<Alias> {
    lambda::get_alias(aws, function, alias).await?.ok_or_else(|| {
        Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
            .help("run `mlambda deploy` first; it publishes a version and creates the alias")
    })
}

/// Sets (or with 0 removes) the alias's provisioned concurrency; refused while the alias splits traffic.
pub(crate) async fn provisioned(
    aws: &Aws,
    function: &str,
    alias_name: &str,
    n: i32,
    dry_run: bool,
) -> Result<ProvisionedOutcome> {
    if n < 0 {
        return Err(Error::user(format!("`--provisioned {n}` is negative"))
            .help("pass a count of environments, or 0 to remove it"));
    }
    let a = read_alias(aws, function, alias_name).await?;
    if n > 0 && !a.routing.is_empty() {
        return Err(Error::user(format!(
            "alias `{alias_name}` splits its traffic ({}), and Lambda does not allow provisioned concurrency on an alias with weighted routing",
            alias::render(&a.primary, &a.routing)
        ))
        .help("finish the rollout with `mlambda rollout --promote` (or undo it with `--rollback`), then run `mlambda warm --provisioned N` again"));
    }
    if dry_run {
        return Ok(ProvisionedOutcome { requested: n, config: None, removed: None });
    }
    if n == 0 {
        let removed = lambda::delete_provisioned_concurrency(aws, function, alias_name).await?;
        return Ok(ProvisionedOutcome { requested: 0, config: None, removed: Some(removed) });
    }
    let config = lambda::put_provisioned_concurrency(aws, function, alias_name, n).await?;
    Ok(ProvisionedOutcome { requested: n, config: Some(config), removed: None })
}

/// The rule name for the warm-up schedule; EventBridge caps rule names at 64 characters.
fn rule_name(function: &str) -> Result<String> {
    let name = format!("mlambda-{function}-warm");
    if name.len() > 64 {
        return Err(Error::user(format!("the warm-up rule name `{name}` is longer than EventBridge's 64 characters"))
            .help("use a `function.name` of at most 51 characters, or use `--provisioned N` instead"));
    }
    Ok(name)
}

async fn schedule(
    aws: &Aws,
    function: &str,
    alias_name: &str,
    expression: Schedule,
    dry_run: bool,
) -> Result<ScheduleOutcome> {
    let rule = rule_name(function)?;
    let a = read_alias(aws, function, alias_name).await?;
    let mut out = ScheduleOutcome {
        rule: rule.clone(),
        rule_arn: None,
        expression,
        target: a.arn.clone(),
        input: WARMUP.into(),
        permission_added: None,
    };
    if dry_run {
        return Ok(out);
    }
    let description = format!("mlambda: keeps `{function}:{alias_name}` warm");
    let arn = events::put_schedule_rule(aws, &rule, &out.expression, &description).await?;
    events::put_target(aws, &rule, "mlambda-warm", &a.arn, WARMUP).await?;
    let added = lambda::add_invoke_permission(aws, function, alias_name, &rule, "events.amazonaws.com", &arn).await?;
    out.rule_arn = Some(arn);
    out.permission_added = Some(added);
    Ok(out)
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &WarmSettings) -> Result<Report> {
    let (function, alias_name) = (p.config().function.name.as_str(), p.config().function.alias.as_str());
    let dry_run = s.dry_run;
    // Flags are checked before AWS is asked anything.
    let expression = s.schedule.as_deref().map(Schedule::parse).transpose()?;
    if s.provisioned.is_none() && expression.is_none() {
        return Err(Error::user("`mlambda warm` needs to know how to keep the alias warm")
            .help("pass `--provisioned 5` for provisioned concurrency, or `--schedule 'rate(5 minutes)'` for a scheduled ping"));
    }
    let aws = ctx.aws().await?;
    let mut out =
        Outcome { function: function.into(), alias: alias_name.into(), dry_run, provisioned: None, schedule: None };
    if let Some(n) = s.provisioned {
        out.provisioned = Some(provisioned(&aws, function, alias_name, n, dry_run).await?);
    }
    if let Some(expression) = expression {
        out.schedule = Some(schedule(&aws, function, alias_name, expression, dry_run).await?);
    }
    Ok(Report::new(out, dry_run))
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::delete_provisioned_concurrency_config::DeleteProvisionedConcurrencyConfigOutput;
    use aws_sdk_lambda::operation::get_alias::GetAliasOutput;
    use aws_sdk_lambda::operation::put_provisioned_concurrency_config::PutProvisionedConcurrencyConfigOutput;
    use aws_sdk_lambda::types::{AliasRoutingConfiguration, ProvisionedConcurrencyStatusEnum};
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::aws::mock;

    fn alias_output(weights: &[(&str, f64)]) -> GetAliasOutput {
        let routing = AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(weights.iter().map(|(k, v)| (k.to_string(), *v)).collect()))
            .build();
        GetAliasOutput::builder()
            .name("production")
            .function_version("3")
            .alias_arn("arn:aws:lambda:us-east-1:123456789012:function:churn:production")
            .routing_config(routing)
            .revision_id("r1")
            .build()
    }

    #[tokio::test]
    async fn provisioned_concurrency_is_put_on_the_alias() {
        let get = mock!(Client::get_alias).then_output(|| alias_output(&[]));
        let put = mock!(Client::put_provisioned_concurrency_config)
            .match_requests(|r| {
                r.function_name() == Some("churn")
                    && r.qualifier() == Some("production")
                    && r.provisioned_concurrent_executions() == Some(5)
            })
            .then_output(|| {
                PutProvisionedConcurrencyConfigOutput::builder()
                    .requested_provisioned_concurrent_executions(5)
                    .status(ProvisionedConcurrencyStatusEnum::InProgress)
                    .build()
            });
        let aws = mock::aws(&[&get, &put], &[]);
        let out = provisioned(&aws, "churn", "production", 5, false).await.unwrap();
        assert_eq!(put.num_calls(), 1);
        let c = out.config.unwrap();
        assert_eq!((c.requested, c.status.as_str()), (5, "IN_PROGRESS"));
    }

    #[tokio::test]
    async fn provisioned_concurrency_is_refused_while_the_alias_is_weighted() {
        let get = mock!(Client::get_alias).then_output(|| alias_output(&[("4", 0.1)]));
        let put = mock!(Client::put_provisioned_concurrency_config)
            .then_output(|| PutProvisionedConcurrencyConfigOutput::builder().build());
        let aws = mock::aws(&[&get, &put], &[]);
        let e = provisioned(&aws, "churn", "production", 5, false).await.unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message.contains("3 90% · 4 10%"), "{}", e.message);
        assert!(e.message.contains("does not allow provisioned concurrency on an alias with weighted routing"));
        assert!(e.help.unwrap().contains("--promote"));
        assert_eq!(put.num_calls(), 0);
    }

    #[tokio::test]
    async fn zero_removes_it_and_a_dry_run_writes_nothing() {
        let get = mock!(Client::get_alias).then_output(|| alias_output(&[]));
        let del = mock!(Client::delete_provisioned_concurrency_config)
            .then_output(|| DeleteProvisionedConcurrencyConfigOutput::builder().build());
        let put = mock!(Client::put_provisioned_concurrency_config)
            .then_output(|| PutProvisionedConcurrencyConfigOutput::builder().build());
        let aws = mock::aws(&[&get, &del, &put], &[]);
        let out = provisioned(&aws, "churn", "production", 0, false).await.unwrap();
        assert_eq!((out.removed, del.num_calls()), (Some(true), 1));
        provisioned(&aws, "churn", "production", 3, true).await.unwrap();
        assert_eq!(put.num_calls(), 0);
        assert!(provisioned(&aws, "churn", "production", -1, false).await.is_err());
    }

    #[test]
    fn long_function_names_do_not_fit_a_rule_name() {
        assert_eq!(rule_name("churn").unwrap(), "mlambda-churn-warm");
        assert!(rule_name(&"x".repeat(60)).unwrap_err().message.contains("64 characters"));
    }
}
