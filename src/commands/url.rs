//! `mlambda url`: the alias's function URL, the recipe's "stable API endpoint", created once and shown after.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::lambda;
use crate::cli::UrlArgs;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::settings::Project;

#[derive(Debug, Serialize)]
struct UrlOutcome {
    function: String,
    alias: String,
    /// `None` in a dry run that would create it.
    url: Option<String>,
    /// `AWS_IAM` or `NONE`.
    auth: String,
    /// `created`, `exists`, or `would_create`.
    action: &'static str,
}

impl fmt::Display for UrlOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = format!("`{}:{}`", self.function, self.alias);
        match (&self.url, self.action) {
            (Some(url), "created") => writeln!(f, "created the function URL of {target} ({}): {url}", self.auth)?,
            (Some(url), _) => writeln!(f, "{target} is served at {url} ({})", self.auth)?,
            (None, _) => writeln!(f, "would create a function URL on {target} ({})", self.auth)?,
        }
        if self.auth == "AWS_IAM" {
            writeln!(f, "  callers sign requests with SigV4 (`lambda:InvokeFunctionUrl`); the alias's weights apply")?;
        } else {
            writeln!(f, "  anyone can call it; the alias's weights apply")?;
        }
        Ok(())
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, args: &UrlArgs) -> Result<Report> {
    let c = p.config();
    let (function, alias) = (c.function.name.clone(), c.function.alias.clone());
    let aws = ctx.aws().await?;
    if lambda::get_alias(&aws, &function, &alias).await?.is_none() {
        return Err(Error::user(format!("alias `{alias}` of function `{function}` does not exist"))
            .help("run `mlambda deploy` (or `mlambda up`) first: the URL points at the alias"));
    }
    let wanted = if args.public { "NONE" } else { "AWS_IAM" };
    if let Some((url, auth)) = lambda::get_function_url(&aws, &function, &alias).await? {
        if auth != wanted && (args.public || auth == "NONE") {
            ctx.printer.warn(format!(
                "the URL exists with auth type {auth}; mlambda does not change it (`aws lambda \
                 update-function-url-config --qualifier {alias} --auth-type {wanted}` does)"
            ));
        }
        return Ok(Report::done(UrlOutcome { function, alias, url: Some(url), auth, action: "exists" }));
    }
    let auth = wanted.to_string();
    if args.dry.dry_run {
        return Ok(Report::new(UrlOutcome { function, alias, url: None, auth, action: "would_create" }, true));
    }
    let url = lambda::create_function_url(&aws, &function, &alias, args.public).await?;
    Ok(Report::done(UrlOutcome { function, alias, url: Some(url), auth, action: "created" }))
}
