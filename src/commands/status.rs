//! `mlambda status`: where the function, its versions, aliases, alarms and rollout stand.
use std::collections::BTreeMap;
use std::fmt;
use std::time::UNIX_EPOCH;

use mlambda_runtime::shadow::{control_key, Control};

use serde::Serialize;

use super::Ctx;
use crate::aws::{cloudwatch, lambda, s3};
use crate::domain::{PackageType, Version};
use crate::error::{Error, Result};
use crate::ledger;
use crate::plan::lambda::ZIP_RUNTIME;
use crate::plan::record::{AliasRecord, Lease, StepRecord};
use crate::plan::{alarms, alias};
use crate::report::Report;
use crate::settings::Project;
use crate::state;
use crate::ui::table;

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: String,
    pub model_version: Option<String>,
    pub last_modified: String,
    pub description: String,
    pub code_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AliasRow {
    pub name: String,
    pub primary: String,
    /// Additional version → weight.
    pub routing: BTreeMap<String, f64>,
    /// `3 90% · 4 10%`.
    pub rendered: String,
    pub description: String,
    /// `None` when the alias has no provisioned concurrency.
    pub provisioned_concurrency: Option<lambda::Provisioned>,
    /// The alias's function URL and its auth type (`mlambda url`); the alias's weights apply to it.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlarmRow {
    pub name: String,
    pub state: String,
    pub reason: String,
}

/// The configured alias's rollout, all read from the cloud, so every operator sees the same one.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    /// The primary before the last promote, which `--rollback` returns to (from the alias description).
    pub previous_primary: Option<Version>,
    /// The candidate the alias routes to, and its weight.
    pub candidate: Option<String>,
    pub weight: Option<f64>,
    /// When the candidate's current weight began, by whom, in which steps.
    pub step: Option<StepRecord>,
    /// Who holds the alias's lease (a stepped rollout running), live or not.
    pub lease: Option<Lease>,
    pub looks: Option<state::Looks>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub function: String,
    pub arn: String,
    /// `image` or `zip`, as Lambda reports it.
    pub package: Option<PackageType>,
    /// `$LATEST`'s image, by digest (image functions).
    pub image_uri: Option<String>,
    /// `$LATEST`'s `CodeSha256`: a zip's base64 sha256, an image's digest.
    pub code_sha256: String,
    pub state: String,
    pub versions: Vec<VersionRow>,
    pub aliases: Vec<AliasRow>,
    pub alarms: Vec<AlarmRow>,
    /// The rollout as the cloud holds it: the configured alias's routing and record, and the looks taken.
    pub rollout: Option<RolloutView>,
    /// The last verdict `report` or a rollout computed.
    pub last_verdict: Option<state::LastVerdict>,
    /// What `mlambda shadow` copies now, if anything.
    pub shadow: Option<Control>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "function  {}", self.function)?;
        match self.package {
            Some(PackageType::Zip) => writeln!(f, "package   zip on {ZIP_RUNTIME}, CodeSha256 {}", self.code_sha256)?,
            _ => writeln!(f, "image     {}", self.image_uri.as_deref().unwrap_or("-"))?,
        }
        writeln!(f, "state     {}", self.state)?;
        writeln!(f)?;
        let rows: Vec<Vec<String>> = self
            .versions
            .iter()
            .map(|v| {
                vec![
                    v.version.clone(),
                    v.model_version.clone().unwrap_or_else(|| "-".into()),
                    v.last_modified.clone(),
                    v.description.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            writeln!(f, "no published versions; run `mlambda deploy`")?;
        } else {
            write!(f, "{}", table::render(&["version", "model", "last modified", "description"], &rows))?;
        }
        writeln!(f)?;
        let rows: Vec<Vec<String>> = self
            .aliases
            .iter()
            .map(|a| {
                let pc = a
                    .provisioned_concurrency
                    .as_ref()
                    .map(|p| format!("{} ({}/{} ready)", p.status, p.available, p.requested))
                    .unwrap_or_else(|| "none".into());
                vec![a.name.clone(), a.rendered.clone(), pc, a.url.clone().unwrap_or_else(|| "none".into())]
            })
            .collect();
        if rows.is_empty() {
            writeln!(f, "no aliases; run `mlambda deploy`")?;
        } else {
            write!(f, "{}", table::render(&["alias", "routing", "provisioned concurrency", "url"], &rows))?;
        }
        writeln!(f)?;
        if self.alarms.is_empty() {
            writeln!(f, "no alarms; run `mlambda alarms`")?;
        } else {
            let rows: Vec<Vec<String>> =
                self.alarms.iter().map(|a| vec![a.name.clone(), a.state.clone(), a.reason.clone()]).collect();
            write!(f, "{}", table::render(&["alarm", "state", "reason"], &rows))?;
        }
        if let Some(r) = &self.rollout {
            if let (Some(c), Some(w)) = (&r.candidate, r.weight) {
                writeln!(f, "\nrollout in progress: version {c} at {}", alias::Percent(w))?;
            }
            if let Some(st) = r.step.as_ref().filter(|st| Some(st.candidate.to_string()) == r.candidate) {
                let every = st.every.map_or(String::new(), |e| format!(", {} each", humantime::format_duration(e)));
                let steps: Vec<String> = st.steps.iter().map(f64::to_string).collect();
                let plan =
                    if steps.is_empty() { String::new() } else { format!(" of steps {}{every}", steps.join(",")) };
                writeln!(
                    f,
                    "  at {} since {}{plan}, by {}",
                    alias::Percent(st.weight),
                    humantime::format_rfc3339_seconds(st.since),
                    st.by
                )?;
            }
            if let Some(l) = &r.lease {
                let live = if l.live(std::time::SystemTime::now()) { "held" } else { "expired" };
                writeln!(f, "lease: {live} by {l}")?;
            }
            if let Some(l) = &r.looks {
                writeln!(
                    f,
                    "looks at version {}'s evidence: {} of {} planned taken (each spends its share of α)",
                    l.candidate, l.taken, l.planned
                )?;
            }
            if let Some(p) = &r.previous_primary {
                writeln!(f, "previous primary: {p} (`mlambda rollout --rollback` returns to it)")?;
            }
        }
        if let Some(c) = &self.shadow {
            writeln!(
                f,
                "\nshadow: {}% of version {}'s requests are copied to version {} since {}, until {}",
                c.sample * 100.0,
                c.sources.join(", "),
                c.target_version,
                c.since,
                humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(c.until))
            )?;
        }
        if let Some(v) = &self.last_verdict {
            writeln!(
                f,
                "\nlast verdict: {} for version {} against {} ({})",
                v.verdict.as_str(),
                v.candidate,
                v.baseline,
                v.time
            )?;
            for r in &v.reasons {
                writeln!(f, "  - {r}")?;
            }
        }
        Ok(())
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project) -> Result<Report> {
    let function = p.config().function.name.as_str();
    let aws = ctx.aws().await?;
    let st = ledger::load(&aws, p.config(), &p.state_dir, ctx.printer).await?;
    let (latest, image_uri) = lambda::get_function(&aws, function).await?.ok_or_else(|| {
        Error::user(format!("function `{function}` does not exist"))
            .help("run `mlambda deploy` first (or `mlambda up` for the whole flow)")
    })?;
    let versions = lambda::list_versions(&aws, function).await?;
    let mut aliases = Vec::new();
    for a in lambda::list_aliases(&aws, function).await? {
        let provisioned = lambda::get_provisioned_concurrency(&aws, function, &a.name).await?;
        let url = lambda::get_function_url(&aws, function, &a.name).await?.map(|(url, auth)| format!("{url} ({auth})"));
        aliases.push(AliasRow {
            rendered: alias::render(&a.primary, &a.routing),
            name: a.name,
            primary: a.primary,
            routing: a.routing,
            description: a.description,
            provisioned_concurrency: provisioned,
            url,
        });
    }
    let control = s3::get_small(&aws, &p.config().model.bucket, &control_key(function)).await.ok().flatten();
    let shadow = control.and_then(|bytes| serde_json::from_slice::<Control>(&bytes).ok());
    let alarms = cloudwatch::describe_alarms(&aws, &alarms::function_prefix(function))
        .await?
        .into_iter()
        .map(|a| AlarmRow { name: a.spec.name, state: a.state.to_string(), reason: a.reason })
        .collect();
    let configured = aliases.iter().find(|a| a.name == p.config().function.alias);
    let rollout = configured.map(|a| {
        let record = AliasRecord::parse(&a.description);
        let routed = a.routing.iter().next();
        RolloutView {
            previous_primary: record.previous,
            candidate: routed.map(|(v, _)| v.clone()),
            weight: routed.map(|(_, w)| *w),
            step: record.step,
            lease: record.lease,
            looks: st.rollout.as_ref().and_then(|r| r.looks.clone()),
        }
    });
    Ok(Report::done(Outcome {
        function: latest.name.clone(),
        arn: latest.arn.clone(),
        package: latest.package_type,
        image_uri,
        code_sha256: latest.code_sha256.clone(),
        state: latest.state.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        versions: versions
            .iter()
            .map(|v| VersionRow {
                version: v.version.clone(),
                model_version: v.model_version(),
                last_modified: v.last_modified.clone(),
                description: v.description.clone(),
                code_sha256: v.code_sha256.clone(),
            })
            .collect(),
        aliases,
        alarms,
        rollout,
        last_verdict: st.verdict,
        shadow,
    }))
}
