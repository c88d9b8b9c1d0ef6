//! One file per subcommand, each `run(ctx, args)`; this module dispatches and shares the context.
use std::path::PathBuf;

use clap::CommandFactory;

use crate::aws::Aws;
use crate::cli::{Cli, Command, GlobalArgs, ModelCommand};
use crate::config::{self, Loaded};
use crate::error::{Error, Result};
use crate::settings;
use crate::state::{self, State};
use crate::ui::Printer;

mod alarms;
mod build;
mod deploy;
mod iam_policy;
mod init;
mod invoke;
mod model;
mod prune;
mod push;
mod report;
mod rollout;
mod status;
mod up;
mod warm;

/// What every command gets: the printer, the global flags, and lazy access to config, state and AWS.
pub struct Ctx<'a> {
    pub printer: &'a Printer,
    pub global: GlobalArgs,
}

impl Ctx<'_> {
    pub fn config(&self) -> Result<Loaded> {
        config::load(&self.global.config)
    }

    pub async fn aws(&self) -> Result<Aws> {
        Aws::connect(&self.global).await
    }

    pub fn state_dir(&self, loaded: &Loaded) -> PathBuf {
        settings::state_dir(loaded)
    }

    pub fn state(&self, loaded: &Loaded) -> Result<State> {
        state::load(&self.state_dir(loaded))
    }
}

pub async fn run(cli: Cli, printer: &Printer) -> Result<()> {
    let ctx = Ctx { printer, global: cli.global };
    match cli.command {
        Command::Init(a) => init::run(&ctx, &a).await,
        Command::Build(a) => build::run(&ctx, &a).await,
        Command::Push(a) => push::run(&ctx, &a).await,
        Command::Model(ModelCommand::Push(a)) => model::push(&ctx, &a).await,
        Command::Model(ModelCommand::List) => model::list(&ctx).await,
        Command::Deploy(a) => deploy::run(&ctx, &a).await,
        Command::Prune(a) => prune::run(&ctx, &a).await,
        Command::IamPolicy => iam_policy::run(&ctx).await,
        Command::Rollout(a) => rollout::run(&ctx, &a).await,
        Command::Alarms(a) => alarms::run(&ctx, &a).await,
        Command::Status => status::run(&ctx).await,
        Command::Warm(a) => warm::run(&ctx, &a).await,
        Command::Invoke(a) => invoke::run(&ctx, &a).await,
        Command::Report(a) => report::run(&ctx, &a).await,
        Command::Up(a) => up::run(&ctx, &a).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mlambda", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map_err(|e| Error::cloud(format!("cannot write the man page: {e}"))),
    }
}
