//! `mlambda iam-policy`: the minimal policy the deployer (a person or CI) needs, scoped to this project.
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::error::Result;
use crate::plan::policy;
use crate::report::Report;

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct PolicyDocument(serde_json::Value);

impl fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document is the data in both formats: `mlambda iam-policy > policy.json` must work.
        let text = serde_json::to_string_pretty(&self.0).map_err(|_| fmt::Error)?;
        writeln!(f, "{text}")
    }
}

pub async fn run(ctx: &Ctx<'_>) -> Result<Report> {
    let p = ctx.project()?;
    Ok(Report::done(PolicyDocument(policy::deployer_policy(p.config()))))
}
