//! `mlambda shadow`: the alias's primary copies a sample of its requests to a candidate version after
//! answering them; `--stop` ends it (see `crate::shadowing`).
use super::Ctx;
use crate::cli::ShadowArgs;
use crate::error::Result;
use crate::report::Report;
use crate::settings::Project;
use crate::shadowing;

pub async fn run(ctx: &Ctx<'_>, p: &Project, a: &ShadowArgs) -> Result<Report> {
    let config = p.config();
    let aws = ctx.aws().await?;
    if a.stop {
        let bucket = shadowing::control_location(&aws, config).await?;
        let out = shadowing::stop(&aws, &config.function.name, &bucket, a.dry.dry_run).await?;
        return Ok(Report::new(out, a.dry.dry_run));
    }
    let target = a.version.map(|v| v.to_string()).unwrap_or_default();
    let plan = shadowing::prepare(&aws, config, &target, a.sample, a.until.get()).await?;
    if !a.dry.dry_run {
        shadowing::start(&aws, &plan).await?;
    }
    Ok(Report::new(plan.started, a.dry.dry_run))
}
