//! The `mlambda` binary: parse flags, run one command, map the outcome to an exit code.
#![allow(clippy::result_large_err)]

mod aws;
mod bootstrap;
mod cli;
mod commands;
mod config;
mod domain;
mod error;
mod gather;
mod hash;
mod image;
mod ledger;
mod plan;
mod report;
mod runs;
mod settings;
mod shadowing;
mod state;
mod ui;

use clap::Parser;

use crate::domain::DomainError;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return refused_flag(e),
    };
    let printer = ui::Printer::new(cli.global.output, cli.global.quiet, cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(cli, &printer)) {
        Ok(report) => {
            printer.report(&report);
            match report.failure {
                None => std::process::ExitCode::SUCCESS,
                Some(err) => {
                    let code = err.exit_code();
                    printer.error(err);
                    std::process::ExitCode::from(code)
                }
            }
        }
        Err(err) => {
            let code = err.exit_code();
            printer.error(err);
            std::process::ExitCode::from(code)
        }
    }
}

/// A flag whose value breaks a domain rule (`--weight 1.5`) is a user error with our message, help and exit
/// code 1, like the same value in mlambda.yaml; everything else is clap's usage error.
fn refused_flag(e: clap::Error) -> std::process::ExitCode {
    let domain = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<DomainError>()).cloned();
    let Some(domain) = domain else { e.exit() };
    // The flags did not parse, so `--output json` is looked for by hand.
    let args: Vec<String> = std::env::args().collect();
    let json =
        args.iter().any(|a| a == "--output=json") || args.windows(2).any(|w| w[0] == "--output" && w[1] == "json");
    let format = if json { cli::OutputFormat::Json } else { cli::OutputFormat::Text };
    let err = error::Error::from(domain);
    let code = err.exit_code();
    ui::Printer::new(format, false, 0).error(err);
    std::process::ExitCode::from(code)
}
