//! `mlambda runtime build` and `mlambda runtime path`: compile the runtime into the user cache ahead of
//! `mlambda build`, and show where `build` takes it from.
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::Ctx;
use crate::bootstrap::{self, compile};
use crate::cli::{RuntimeArch, RuntimeBuildArgs, RuntimeCommand, RuntimePathArgs};
use crate::config::Architecture;
use crate::error::Result;
use crate::report::Report;

pub async fn run(ctx: &Ctx<'_>, cmd: &RuntimeCommand) -> Result<Report> {
    match cmd {
        RuntimeCommand::Path(a) => path(ctx, a),
        RuntimeCommand::Build(a) => build(ctx, a),
    }
}

/// The flag, else the project's `function.architecture` when there is a project file, else x86_64.
fn arch(ctx: &Ctx<'_>, flag: Option<RuntimeArch>) -> Result<Architecture> {
    Ok(match flag {
        Some(RuntimeArch::X86_64) => Architecture::X86_64,
        Some(RuntimeArch::Arm64) => Architecture::Arm64,
        None if ctx.global.config.is_file() => ctx.project()?.config().function.architecture,
        None => Architecture::X86_64,
    })
}

fn path(ctx: &Ctx<'_>, args: &RuntimePathArgs) -> Result<Report> {
    let found = bootstrap::locate(args.runtime.clone(), arch(ctx, args.arch)?)?;
    Ok(Report::done(found))
}

/// What `runtime build` did.
#[derive(Debug, Serialize)]
struct Built {
    path: PathBuf,
    cache_key: String,
    target: &'static str,
    /// False when the cache already had it and `--force` was not given.
    compiled: bool,
    seconds: Option<f64>,
    crates: Option<usize>,
}

impl fmt::Display for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seconds {
            Some(s) if self.compiled => writeln!(
                f,
                "compiled the runtime for {} in {}: {}",
                self.target,
                compile::elapsed(std::time::Duration::from_secs_f64(s)),
                self.path.display()
            ),
            _ => writeln!(
                f,
                "the runtime for {} is already in the cache: {} (`--force` compiles it again)",
                self.target,
                self.path.display()
            ),
        }
    }
}

fn build(ctx: &Ctx<'_>, args: &RuntimeBuildArgs) -> Result<Report> {
    let (key, paths) = bootstrap::cache_paths(arch(ctx, args.arch)?)?;
    let mut outcome = Built {
        path: paths.bootstrap.clone(),
        cache_key: key.name(),
        target: key.target,
        compiled: false,
        seconds: None,
        crates: None,
    };
    if !args.force && paths.bootstrap.is_file() {
        return Ok(Report::done(outcome));
    }
    let done = compile::compile(ctx.printer, &key, &paths, args.force)?;
    outcome.compiled = true;
    outcome.seconds = Some(done.elapsed.as_secs_f64());
    outcome.crates = Some(done.crates);
    Ok(Report::done(outcome))
}
