//! `mlambda up`: build → push → model push → deploy → rollout → alarms, resuming after the step that failed.
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{alarms, build, deploy, model, push, rollout, Ctx};
use crate::aws;
use crate::cli::{AlarmsArgs, BuildArgs, DeployArgs, DryRun, ModelPushArgs, PushArgs, RolloutArgs, UpArgs};
use crate::config::Loaded;
use crate::domain::{Duration, RolloutStrategy, Version};
use crate::error::{Error, Result};
use crate::state;

const STEPS: [&str; 6] = ["build", "push", "model push", "deploy", "rollout", "alarms"];

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
        writeln!(f, "{}", if self.dry_run { "mlambda up would run:" } else { "mlambda up:" })?;
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
fn fingerprint(loaded: &Loaded) -> Result<String> {
    let mut h = Sha256::new();
    let config = std::fs::read(&loaded.path).map_err(|e| crate::error::io_error(&loaded.path, "read", e))?;
    h.update(&config);
    let model = loaded.resolve(&loaded.config.model.path);
    if let Ok(bytes) = std::fs::read(&model) {
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

pub async fn run(ctx: &Ctx<'_>, args: &UpArgs) -> Result<()> {
    let loaded = ctx.config()?;
    let dir = ctx.state_dir(&loaded);
    let print = fingerprint(&loaded)?;
    let saved = ctx.state(&loaded)?.up.unwrap_or_default();
    let mut done: Vec<String> =
        if args.restart || saved.fingerprint != print || saved.done.len() == STEPS.len() { vec![] } else { saved.done };
    if !done.is_empty() && !args.dry.dry_run {
        ctx.printer.status(format!("resuming after `{}` (pass --restart to start over)", done.join("`, `")));
    }
    let nested = ctx.printer.capturing();
    let sub = Ctx { printer: &nested, global: ctx.global.clone() };
    let dry = DryRun { dry_run: args.dry.dry_run };
    let mut steps = Vec::new();
    for step in STEPS {
        if done.iter().any(|d| d == step) {
            steps.push(Step { step, status: "skipped".into(), results: vec![], text: String::new() });
            continue;
        }
        ctx.printer.status(format!("── {step}"));
        let res = match step {
            "build" => {
                build::run(&sub, &BuildArgs { runtime: args.runtime.clone(), tag: None, dry: dry.clone() }).await
            }
            "push" => push::run(&sub, &PushArgs { dry: dry.clone() }).await,
            "model push" => {
                let a = ModelPushArgs {
                    path: None,
                    version: None,
                    reference: None,
                    create_bucket: args.create_bucket,
                    dry: dry.clone(),
                };
                model::push(&sub, &a).await
            }
            "deploy" => {
                let a = DeployArgs {
                    model_version: None,
                    create_role: args.create_role,
                    wait: Duration::from_std(std::time::Duration::from_secs(300)),
                    dry: dry.clone(),
                };
                deploy::run(&sub, &a).await
            }
            "rollout" => rollout_step(&sub, &loaded, &dry).await,
            _ => alarms::run(&sub, &AlarmsArgs { delete: false, dry: dry.clone() }).await,
        };
        let captured = nested.take_captured();
        let text = captured.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("");
        let results: Vec<_> = captured.into_iter().map(|c| c.json).collect();
        match res {
            Ok(()) => {
                let status = if args.dry.dry_run {
                    "planned"
                } else if results.is_empty() {
                    "nothing to do"
                } else {
                    "done"
                };
                steps.push(Step { step, status: status.into(), results, text });
                if !args.dry.dry_run {
                    done.push(step.to_string());
                    state::update(&dir, |s| {
                        s.up = Some(state::Up { fingerprint: print.clone(), done: done.clone() });
                    })?;
                }
            }
            // A dry run cannot plan a step whose input an earlier step would produce; say so instead of failing.
            Err(e) if args.dry.dry_run && e.kind == crate::error::Kind::User && step != "build" => {
                let text = format!("depends on the steps before it: {}\n", e.message);
                steps.push(Step { step, status: "planned".into(), results, text });
            }
            Err(e) => {
                let help = e.help.clone().map(|h| format!("{h}; then ")).unwrap_or_default();
                return Err(Error {
                    message: format!("`{step}` failed: {}", e.message),
                    help: Some(format!("{help}re-run `mlambda up`: it resumes at `{step}`")),
                    kind: e.kind,
                });
            }
        }
    }
    ctx.printer.data(&Outcome { dry_run: args.dry.dry_run, steps });
    Ok(())
}

/// First deploy: the alias already serves the new version. Later: shift traffic by the configured strategy.
async fn rollout_step(ctx: &Ctx<'_>, loaded: &Loaded, dry: &DryRun) -> Result<()> {
    let c = &loaded.config;
    let Some(deployed) = ctx.state(loaded)?.deploy else {
        return Err(Error::user("nothing is deployed yet").help("run `mlambda deploy` first"));
    };
    let aws = ctx.aws().await?;
    if let Some(alias) = aws::lambda::get_alias(&aws, &c.function.name, &c.function.alias).await? {
        if alias.primary == deployed.version || alias.routing.contains_key(&deployed.version) {
            ctx.printer.status(format!("alias `{}` already serves version {}", c.function.alias, deployed.version));
            return Ok(());
        }
    }
    let mut args = RolloutArgs {
        weight: None,
        steps: None,
        interval: Some(c.rollout.interval),
        preset: None,
        promote: false,
        rollback: false,
        version: Some(Version::parse(&deployed.version)?),
        dry: dry.clone(),
    };
    match c.rollout.strategy {
        RolloutStrategy::Weight => args.weight = Some(c.rollout.weight),
        RolloutStrategy::Steps => args.steps = Some(c.rollout.steps.clone()),
        RolloutStrategy::Promote => args.steps = Some(vec![1.0]),
        RolloutStrategy::Preset(p) => args.preset = Some(p),
    }
    rollout::run(ctx, &args).await
}
