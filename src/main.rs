//! The `mlambda` binary: parse flags, run one command, map the outcome to an exit code.
#![allow(clippy::result_large_err)]

mod aws;
mod bootstrap;
mod cli;
mod commands;
mod config;
mod error;
mod image;
mod plan;
mod settings;
mod state;
mod ui;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let printer = ui::Printer::new(cli.global.output, cli.global.quiet, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli, &printer)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = err.exit_code();
            printer.error(err);
            std::process::ExitCode::from(code)
        }
    }
}
