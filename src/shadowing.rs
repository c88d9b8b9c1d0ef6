//! Starting and stopping a shadow: the control object the alias's primary reads and its role's permission to
//! invoke exactly the candidate. `mlambda shadow` and the `shadow-then-canary` rollout both go through here; the
//! copying itself is the runtime's (`mlambda_runtime::shadow`).
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use mlambda_runtime::env;
use mlambda_runtime::shadow::{control_key, Control};
use serde::Serialize;

use crate::aws::{self, Aws};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::lambda::FunctionInfo;
use crate::plan::shadow::{self as plan, Cost};

#[derive(Debug, Serialize)]
pub struct Started {
    pub function: String,
    pub primary: String,
    pub target: String,
    pub target_arn: String,
    pub sample: f64,
    pub since: String,
    pub until: String,
    /// Where the primary's instances read what to copy.
    pub control: String,
    /// The role allowed to invoke the target, and the inline policy that allows it.
    pub role: String,
    pub cost: Cost,
}

impl fmt::Display for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "shadowing: version {} copies {:.0}% of its requests to version {} until {}",
            self.primary,
            self.sample * 100.0,
            self.target,
            self.until
        )?;
        writeln!(f, "  control  {} (read by new instances at once, by warm ones within a minute)", self.control)?;
        writeln!(f, "  role     {} may invoke {} ({})", self.role, self.target_arn, plan::POLICY_NAME)?;
        let c = &self.cost;
        if c.alias_invocations_per_day > 0.0 {
            writeln!(
                f,
                "  cost     {:.0} extra invocations and {:.1} GB-seconds a day at the last 24 h's {:.0} requests",
                c.extra_invocations_per_day, c.extra_gb_seconds_per_day, c.alias_invocations_per_day
            )?;
        } else {
            writeln!(f, "  cost     no traffic measured on the alias in the last 24 h: nothing extra yet")?;
        }
        writeln!(f, "  compare  mlambda report --shadow [--outcomes FILE]")
    }
}

#[derive(Debug, Serialize)]
pub struct Stopped {
    pub function: String,
    /// What was being shadowed, if anything.
    pub was: Option<Control>,
    pub role: Option<String>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.was {
            None => writeln!(f, "nothing is being shadowed for {}", self.function),
            Some(c) => writeln!(
                f,
                "stopped shadowing version {} (since {}); {} may no longer invoke it",
                c.target_version,
                c.since,
                self.role.as_deref().unwrap_or("the primary's role")
            ),
        }
    }
}

/// The model bucket the primary reads its control from (beside its model).
fn control_bucket(info: &FunctionInfo) -> Result<String> {
    info.env.get(env::MODEL_BUCKET).cloned().ok_or_else(|| {
        Error::user(format!(
            "version {} serves a model baked into its package: it has no S3 bucket to read a shadow setting from",
            info.version
        ))
        .help("deploy with the model in S3 (`model.bake: false`, the default), then shadow")
    })
}

/// The shadow running now for `function`, from its control object in `bucket`.
pub async fn current(aws: &Aws, function: &str, bucket: &str) -> Result<Option<Control>> {
    let Some(bytes) = aws::s3::get_small(aws, bucket, &control_key(function)).await? else { return Ok(None) };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// A shadow ready to start: what `mlambda shadow` prints, and the control it writes.
pub struct Plan {
    pub started: Started,
    control: Control,
    bucket: String,
}

/// Checks that `target` can shadow the alias's primary now, and plans it; nothing is written.
pub async fn prepare(
    aws: &Aws,
    config: &Config,
    target: &str,
    sample: f64,
    until: std::time::Duration,
) -> Result<Plan> {
    let function = &config.function.name;
    let alias = aws::lambda::get_alias(aws, function, &config.function.alias).await?.ok_or_else(|| {
        Error::user(format!("alias `{}` of function `{function}` does not exist", config.function.alias))
            .help("deploy first (`mlambda deploy`): shadowing copies the alias's traffic")
    })?;
    let primary = aws::lambda::get_version(aws, function, &alias.primary)
        .await?
        .ok_or_else(|| Error::cloud(format!("the alias's primary version {} does not exist", alias.primary)))?;
    let bucket = control_bucket(&primary)?;
    let found = aws::lambda::get_version(aws, function, target).await?;
    if let Some((why, fix)) = plan::refuse(&alias, target, found.is_some()) {
        let why = why.replace("of function", &format!("of function `{function}`"));
        return Err(Error::user(why).help(fix));
    }
    let info = found.ok_or_else(|| Error::user(format!("version {target} does not exist")))?;
    let target_arn = info.qualified_arn(target);
    let now = SystemTime::now();
    let until = now + until;
    let since = humantime::format_rfc3339_seconds(now).to_string();
    let until_s = until.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let control = plan::control(&target_arn, target, &alias.primary, sample, until_s, &since);
    let cost = measured_cost(aws, function, &config.function.alias, info.memory, sample).await;
    let started = Started {
        function: function.clone(),
        primary: alias.primary.clone(),
        target: target.to_string(),
        target_arn,
        sample,
        since,
        until: humantime::format_rfc3339_seconds(until).to_string(),
        control: format!("s3://{bucket}/{}", control_key(function)),
        role: primary.role_name().to_string(),
        cost,
    };
    Ok(Plan { started, control, bucket })
}

/// Starts the planned shadow: the permission first (a copy sent before it exists would only be counted as a
/// shadow error), then the control the primary's instances read.
pub async fn start(aws: &Aws, plan: &Plan) -> Result<()> {
    let policy = plan::invoke_policy(&plan.started.target_arn).to_string();
    aws::iam::put_role_policy(aws, &plan.started.role, plan::POLICY_NAME, &policy).await?;
    let body = serde_json::to_vec_pretty(&plan.control).map_err(|e| Error::local(e.to_string()))?;
    aws::s3::put_json(aws, &plan.bucket, &control_key(&plan.started.function), body).await
}

/// Where the alias's primary reads its shadow control: beside its model.
pub async fn control_location(aws: &Aws, config: &Config) -> Result<String> {
    let function = &config.function.name;
    let alias = aws::lambda::get_alias(aws, function, &config.function.alias).await?.ok_or_else(|| {
        Error::user(format!("alias `{}` of function `{function}` does not exist", config.function.alias))
            .help("deploy first (`mlambda deploy`)")
    })?;
    let primary = aws::lambda::get_version(aws, function, &alias.primary)
        .await?
        .ok_or_else(|| Error::cloud(format!("the alias's primary version {} does not exist", alias.primary)))?;
    control_bucket(&primary)
}

/// Stops the shadow running for `function` (nothing when none runs): the control first, so instances stop
/// copying, then the permission, so a stale instance can no longer invoke the target.
pub async fn stop(aws: &Aws, function: &str, bucket: &str, dry_run: bool) -> Result<Stopped> {
    let was = current(aws, function, bucket).await?;
    let Some(control) = &was else {
        return Ok(Stopped { function: function.to_string(), was: None, role: None });
    };
    let source = control.sources.first().cloned().unwrap_or_default();
    let role = aws::lambda::get_version(aws, function, &source).await?.map(|info| info.role_name().to_string());
    let out = Stopped { function: function.to_string(), was: was.clone(), role: role.clone() };
    if dry_run {
        return Ok(out);
    }
    aws::s3::delete_object(aws, bucket, &control_key(function)).await?;
    if let Some(role) = &role {
        aws::iam::delete_role_policy(aws, role, plan::POLICY_NAME).await?;
    }
    Ok(out)
}

/// The copies' daily cost at the alias's last 24 hours of traffic; nothing measured is zero (and said so).
async fn measured_cost(aws: &Aws, function: &str, alias: &str, memory: i32, sample: f64) -> Cost {
    let end = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let start = end - 24 * 3600;
    let resource = format!("{function}:{alias}");
    let dims = [("FunctionName", function), ("Resource", resource.as_str())];
    let sum = |metric: &'static str| async move {
        aws::cloudwatch::metric_sum(aws, "AWS/Lambda", metric, &dims, start, end, 3600).await
    };
    let invocations = sum("Invocations").await.ok().flatten().unwrap_or(0.0);
    let duration = sum("Duration").await.ok().flatten().unwrap_or(0.0);
    let mean_ms = if invocations > 0.0 { duration / invocations } else { 0.0 };
    plan::cost(invocations, mean_ms, memory, sample)
}
