//! `mlambda prune`: delete published versions beyond the newest N, never one an alias points or routes to.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::lambda;
use crate::error::{Error, Result};
use crate::plan::deploy::{select_prune, PrunePlan};
use crate::report::Report;
use crate::settings::{Project, PruneSettings};

#[derive(Debug, Serialize)]
struct PruneOutcome {
    function: String,
    dry_run: bool,
    deleted: Vec<String>,
    kept: Vec<String>,
    /// Kept only because an alias uses them.
    protected: Vec<String>,
}

impl fmt::Display for PruneOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would delete" } else { "deleted" };
        if self.deleted.is_empty() {
            writeln!(f, "nothing to prune for `{}`", self.function)?;
        } else {
            writeln!(f, "{verb} versions {} of `{}`", self.deleted.join(", "), self.function)?;
        }
        writeln!(f, "kept versions {}", if self.kept.is_empty() { "-".into() } else { self.kept.join(", ") })?;
        if !self.protected.is_empty() {
            writeln!(f, "  ({} kept because an alias uses them)", self.protected.join(", "))?;
        }
        Ok(())
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &PruneSettings) -> Result<Report> {
    let name = p.config().function.name.clone();
    let aws = ctx.aws().await?;
    if lambda::get_function(&aws, &name).await?.is_none() {
        return Err(Error::user(format!("function `{name}` does not exist")).help("run `mlambda deploy` first"));
    }
    let versions: Vec<String> = lambda::list_versions(&aws, &name).await?.into_iter().map(|v| v.version).collect();
    // Read the aliases last, right before deleting, so a concurrent rollout is seen as late as possible.
    let aliases = lambda::list_aliases(&aws, &name).await?;
    let PrunePlan { delete, keep, protected } = select_prune(&versions, &aliases, s.keep);
    if !s.dry_run {
        for v in &delete {
            ctx.printer.status(format!("deleting version {v} of `{name}`"));
            lambda::delete_version(&aws, &name, v).await?;
        }
    }
    let outcome = PruneOutcome { function: name, dry_run: s.dry_run, deleted: delete, kept: keep, protected };
    Ok(Report::new(outcome, s.dry_run))
}
