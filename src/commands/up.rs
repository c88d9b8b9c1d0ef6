//! `mlambda up`: build → push → model push → deploy → rollout → alarms, resuming after the step that failed.
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{alarms, build, deploy, model, push, rollout, Ctx};
use crate::aws;
use crate::config::Loaded;
use crate::domain::Version;
use crate::error::{Error, Result};
use crate::hash;
use crate::plan::up::{self, PlannedStep};
use crate::report::Report;
use crate::settings::{Project, RolloutSettings, UpSettings};
use crate::state;

#[derive(Debug, Serialize)]
struct Outcome {
    dry_run: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    /// `done`, `skipped` (finished by an earlier run), `planned` (dry run) or `nothing to do`.
    status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    results: Vec<serde_json::Value>,
    #[serde(skip)]
    text: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mlambda up:")?;
        for s in &self.steps {
            writeln!(f, "── {} ({})", s.step, s.status)?;
            for line in s.text.lines() {
                writeln!(f, "   {line}")?;
            }
        }
        Ok(())
    }
}

/// What the finished steps were run for; when it changes, `up` starts over instead of resuming.
/// Both files are streamed into the hash, so a large model is never read whole.
fn fingerprint(loaded: &Loaded) -> Result<String> {
    let mut h = Sha256::new();
    hash::update_from_file(&mut h, &loaded.path).map_err(|e| crate::error::io_error(&loaded.path, "read", e))?;
    // A missing model is hashed as nothing: the step that needs it says so.
    let _ = hash::update_from_file(&mut h, &loaded.resolve(&loaded.config.model.path));
    Ok(hex::encode(h.finalize()))
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, args: &UpSettings) -> Result<Report> {
    let print = fingerprint(&p.loaded)?;
    let saved = ctx.state(p)?.up.unwrap_or_default();
    let the_plan = up::plan(&print, &saved.fingerprint, &saved.done, args.restart);
    // Local inputs before the first AWS call, image build or compile: a first run without a model (or with
    // one that does not load or fit `model.features`) fails in a second instead of minutes later.
    let mut checked = None;
    if the_plan.reads_model() {
        let s = args.model_push(p);
        ctx.printer.status(format!("checking `{}` with the runtime's loader, before any step", super::shown(&s.path)));
        checked = Some(model::check(p, &s)?);
    }
    deploy::preflight(&ctx.aws().await?, p.config(), args.create_role).await?;
    let mut done = the_plan.done();
    if the_plan.resumed && !args.dry_run {
        ctx.printer.status(format!("resuming after `{}` (pass --restart to start over)", done.join("`, `")));
    }
    let mut steps = Vec::new();
    for PlannedStep { step, skip } in the_plan.steps {
        if skip {
            steps.push(Step { step, status: "skipped".into(), results: vec![], text: String::new() });
            continue;
        }
        ctx.printer.status(format!("── {step}"));
        match run_step(ctx, p, args, step, &mut checked).await {
            Ok(report) => {
                let results: Vec<_> = report.outcome.iter().filter_map(|o| o.to_json().ok()).collect();
                let status = match (args.dry_run, report.outcome.is_some()) {
                    (true, _) => "planned",
                    (false, false) => "nothing to do",
                    (false, true) => "done",
                };
                steps.push(Step { step, status: status.into(), results, text: report.text() });
                if !args.dry_run {
                    done.push(step.to_string());
                    state::update(&p.state_dir, |s| {
                        s.up = Some(state::Up { fingerprint: print.clone(), done: done.clone() });
                    })?;
                }
            }
            // A dry run cannot plan a step whose input an earlier step would produce; say so instead of failing.
            Err(e) if args.dry_run && e.kind == crate::error::Kind::User && step != "build" => {
                let text = format!("depends on the steps before it: {}\n", e.message);
                steps.push(Step { step, status: "planned".into(), results: vec![], text });
            }
            Err(e) => return Err(failed(step, e)),
        }
    }
    Ok(Report::new(Outcome { dry_run: args.dry_run, steps }, args.dry_run))
}

/// One step, run as its command would run with the settings `up` derives from mlambda.yaml. `checked` is the
/// model `up` checked before any step, which `model push` takes instead of loading it again.
async fn run_step(
    ctx: &Ctx<'_>,
    p: &Project,
    args: &UpSettings,
    step: &str,
    checked: &mut Option<model::Checked>,
) -> Result<Report> {
    match step {
        "build" => build::run(ctx, p, &args.build(p)).await,
        "push" => push::run(ctx, p, &args.push(p)).await,
        "model push" => match checked.take() {
            Some(c) => model::push_checked(ctx, p, &args.model_push(p), c).await,
            None => model::push(ctx, p, &args.model_push(p)).await,
        },
        "deploy" => deploy::run(ctx, p, &args.deploy(p)).await,
        "rollout" => rollout_step(ctx, p, args.dry_run).await,
        _ => alarms::run(ctx, p, &args.alarms()).await,
    }
}

/// The step's error, saying that a re-run resumes there.
fn failed(step: &str, e: Error) -> Error {
    let help = e.help.clone().map(|h| format!("{h}; then ")).unwrap_or_default();
    Error {
        message: format!("`{step}` failed: {}", e.message),
        help: Some(format!("{help}re-run `mlambda up`: it resumes at `{step}`")),
        kind: e.kind,
    }
}

/// First deploy: the alias already serves the new version. Later: shift traffic by the configured strategy.
async fn rollout_step(ctx: &Ctx<'_>, p: &Project, dry_run: bool) -> Result<Report> {
    let c = p.config();
    let Some(deployed) = ctx.state(p)?.deploy else {
        return Err(Error::user("nothing is deployed yet").help("run `mlambda deploy` first"));
    };
    let aws = ctx.aws().await?;
    if let Some(alias) = aws::lambda::get_alias(&aws, &c.function.name, &c.function.alias).await? {
        if alias.primary == deployed.version || alias.routing.contains_key(&deployed.version) {
            ctx.printer.status(format!("alias `{}` already serves version {}", c.function.alias, deployed.version));
            return Ok(Report::nothing());
        }
    }
    let settings = RolloutSettings::from_strategy(p, Version::parse(&deployed.version)?, dry_run)?;
    rollout::run(ctx, p, &settings).await
}
