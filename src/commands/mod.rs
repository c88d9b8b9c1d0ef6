//! One file per subcommand, each `run(ctx, project, settings) -> Report`; this module resolves each command's
//! settings, dispatches, and shares the context. Commands never import each other, except `up`, which composes
//! the reports of the commands it runs.
use std::path::Path;

use clap::CommandFactory;

use crate::aws::{Aws, Target};
use crate::cli::{BatchCommand, Cli, Command, ExportCommand, GlobalArgs, ModelCommand};
use crate::config;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::settings::{
    AlarmsSettings, BuildSettings, DeploySettings, InvokeSettings, ModelPushSettings, Project, PruneSettings,
    PushSettings, RolloutSettings, UpSettings, WarmSettings,
};
use crate::state::{self, State};
use crate::ui::Printer;

mod alarms;
pub mod batch;
mod build;
mod deploy;
mod export;
mod iam_policy;
mod init;
mod invoke;
mod model;
mod prune;
mod push;
mod report;
mod rollout;
mod runtime;
mod shadow;
mod status;
mod up;
mod url;
mod warm;

/// What every command gets: the printer, the global flags, and lazy access to the project, its state and AWS.
pub struct Ctx<'a> {
    pub printer: &'a Printer,
    pub global: GlobalArgs,
}

impl Ctx<'_> {
    /// mlambda.yaml, loaded and checked.
    pub fn project(&self) -> Result<Project> {
        Ok(Project::new(config::load(&self.global.config)?))
    }

    pub async fn aws(&self) -> Result<Aws> {
        Aws::connect(&self.target()).await
    }

    /// The AWS account and region the global flags name.
    pub fn target(&self) -> Target {
        Target { profile: self.global.profile.clone(), region: self.global.region.clone() }
    }

    pub fn state(&self, p: &Project) -> Result<State> {
        Ok(state::load(&p.state_dir)?)
    }
}

/// Refuses a missing model file before anything slow or remote starts: `build` hashes it, `model push` loads
/// it, `up` does both, and a first run without one must not compile, build or call AWS first.
/// `from_config`: the path is `model.path`, not a command-line argument.
fn require_model_file(path: &Path, from_config: bool) -> Result<()> {
    if path.is_file() {
        return Ok(());
    }
    let shown = shown(path);
    let what = if path.exists() { "is not a file" } else { "does not exist" };
    let err = Error::user(format!("model file `{shown}` {what}"));
    Err(if from_config {
        err.help(format!(
            "export your model to that file, e.g. `python export_model.py model.joblib {shown}` (the script \
             `mlambda init` wrote, for a scikit-learn pipeline), or point `model.path` in mlambda.yaml at your ONNX file"
        ))
    } else {
        err.help("check the path passed to `mlambda model push PATH`, or leave it out to push `model.path`")
    })
}

/// A path as the user wrote it: mlambda.yaml's `model.onnx` resolves to `./model.onnx`.
fn shown(path: &Path) -> std::path::Display<'_> {
    path.strip_prefix(".").unwrap_or(path).display()
}

/// Resolves the command's settings from its flags and the project, then runs it.
pub async fn run(cli: Cli, printer: &Printer) -> Result<Report> {
    let ctx = Ctx { printer, global: cli.global };
    match cli.command {
        Command::Init(a) => init::run(&a).await,
        Command::Build(a) => {
            let p = ctx.project()?;
            build::run(&ctx, &p, &BuildSettings::resolve(&a, &p)).await
        }
        Command::Push(a) => {
            let p = ctx.project()?;
            push::run(&ctx, &p, &PushSettings::resolve(&a, &p)).await
        }
        Command::Model(ModelCommand::Push(a)) => {
            let p = ctx.project()?;
            model::push(&ctx, &p, &ModelPushSettings::resolve(&a, &p)).await
        }
        Command::Model(ModelCommand::List) => model::list(&ctx, &ctx.project()?).await,
        Command::Deploy(a) => {
            let p = ctx.project()?;
            deploy::run(&ctx, &p, &DeploySettings::resolve(&a, &p)).await
        }
        Command::Prune(a) => prune::run(&ctx, &ctx.project()?, &PruneSettings::resolve(&a)).await,
        Command::IamPolicy => iam_policy::run(&ctx).await,
        Command::Rollout(a) => {
            let p = ctx.project()?;
            rollout::run(&ctx, &p, &RolloutSettings::resolve(&a, &p)?).await
        }
        Command::Alarms(a) => alarms::run(&ctx, &ctx.project()?, &AlarmsSettings::resolve(&a)).await,
        Command::Status => status::run(&ctx, &ctx.project()?).await,
        Command::Warm(a) => warm::run(&ctx, &ctx.project()?, &WarmSettings::resolve(&a)).await,
        Command::Invoke(a) => {
            let p = ctx.project()?;
            invoke::run(&ctx, &p, &InvokeSettings::resolve(&a, &p)).await
        }
        Command::Up(a) => up::run(&ctx, &ctx.project()?, &UpSettings::resolve(&a)).await,
        Command::Export(ExportCommand::Terraform(a)) => export::terraform(&ctx, &ctx.project()?, &a).await,
        Command::Runtime(c) => runtime::run(&ctx, &c).await,
        Command::Url(a) => url::run(&ctx, &ctx.project()?, &a).await,
        Command::Shadow(a) => shadow::run(&ctx, &ctx.project()?, &a).await,
        Command::Batch(BatchCommand::Run(a)) => batch::run(&ctx, &ctx.project()?, &a).await,
        Command::Batch(BatchCommand::Status(a)) => batch::status(&ctx, &ctx.project()?, &a).await,
        Command::Batch(BatchCommand::List) => batch::list(&ctx, &ctx.project()?).await,
        Command::Batch(BatchCommand::Stop(a)) => batch::stop(&ctx, &ctx.project()?, &a).await,
        Command::Report(a) => report::run(&ctx, &ctx.project()?, &a).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mlambda", &mut std::io::stdout());
            Ok(Report::nothing())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| Report::nothing())
            .map_err(|e| Error::local(format!("cannot write the man page: {e}"))),
    }
}
