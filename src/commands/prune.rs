//! `mlambda prune`: delete published versions beyond the newest N, never one an alias points or routes to,
//! and the zip packages only those versions ran.
use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::{lambda, s3};
use crate::domain::PackageType;
use crate::error::{Error, Result};
use crate::plan::deploy::{orphaned_packages, select_prune, PrunePlan};
use crate::plan::naming;
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
    /// Zip packages (`s3://…`) that only the deleted versions ran.
    deleted_packages: Vec<String>,
}

impl fmt::Display for PruneOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would delete" } else { "deleted" };
        if self.deleted.is_empty() {
            writeln!(f, "nothing to prune for `{}`", self.function)?;
        } else {
            writeln!(f, "{verb} versions {} of `{}`", self.deleted.join(", "), self.function)?;
        }
        for package in &self.deleted_packages {
            writeln!(f, "{verb} package {package}")?;
        }
        writeln!(f, "kept versions {}", if self.kept.is_empty() { "-".into() } else { self.kept.join(", ") })?;
        if !self.protected.is_empty() {
            writeln!(f, "  ({} kept because an alias uses them or rolls back to them)", self.protected.join(", "))?;
        }
        Ok(())
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &PruneSettings) -> Result<Report> {
    let c = p.config();
    let name = c.function.name.clone();
    let aws = ctx.aws().await?;
    let Some((latest, _)) = lambda::get_function(&aws, &name).await? else {
        return Err(Error::user(format!("function `{name}` does not exist")).help("run `mlambda deploy` first"));
    };
    let versions = lambda::list_versions(&aws, &name).await?;
    let numbers: Vec<String> = versions.iter().map(|v| v.version.clone()).collect();
    // Read the aliases last, right before deleting, so a concurrent rollout is seen as late as possible.
    let aliases = lambda::list_aliases(&aws, &name).await?;
    let PrunePlan { delete, keep, protected } = select_prune(&numbers, &aliases, s.keep);
    let candidates: Vec<String> = match latest.package_type {
        Some(PackageType::Zip) => {
            let pushed = ctx.state(p)?.package_push.map(|push| push.code_sha256);
            let code = |v: &String| versions.iter().find(|i| &i.version == v).map_or("", |i| i.code_sha256.as_str());
            let mut in_use: BTreeSet<&str> = keep.iter().map(code).collect();
            in_use.insert(&latest.code_sha256);
            in_use.extend(pushed.as_deref());
            let gone: Vec<&str> = delete.iter().map(code).collect();
            orphaned_packages(&gone, &in_use)
                .into_iter()
                .filter_map(|sha| naming::package_key_of_code(c.package_prefix(), &name, sha))
                .collect()
        }
        _ => Vec::new(),
    };
    // Only zips still there: the bucket or prefix may have changed, or a prune cut short already took some.
    let mut packages = Vec::new();
    for key in candidates {
        if s3::head_object(&aws, c.package_bucket(), &key).await?.is_some() {
            packages.push(key);
        }
    }
    if !s.dry_run {
        // Packages first: Lambda keeps its own copy of a version's code, so a version outlives its zip, and a
        // prune cut short here finds the same packages again next time.
        for key in &packages {
            ctx.printer.status(format!("deleting package s3://{}/{key}", c.package_bucket()));
            s3::delete_object(&aws, c.package_bucket(), key).await?;
        }
        for v in &delete {
            ctx.printer.status(format!("deleting version {v} of `{name}`"));
            lambda::delete_version(&aws, &name, v).await?;
        }
    }
    let deleted_packages = packages.iter().map(|key| format!("s3://{}/{key}", c.package_bucket())).collect();
    let outcome =
        PruneOutcome { function: name, dry_run: s.dry_run, deleted: delete, kept: keep, protected, deleted_packages };
    Ok(Report::new(outcome, s.dry_run))
}
