//! One printer that knows quiet, verbose and JSON: status to stderr, data to stdout.
use std::fmt::Display;
use std::io::{IsTerminal, Write};

use crate::cli::OutputFormat;
use crate::error::Error;
use crate::report::Report;

/// The one dry-run banner, above every dry run's text.
const DRY_RUN_BANNER: &str = "dry run: nothing was changed; mlambda would do this:";

#[derive(Debug, Clone)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
    verbose: u8,
    color: bool,
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8) -> Printer {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { format, quiet, verbose, color }
    }

    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Progress bars only for a person watching a terminal.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.json() && std::io::stderr().is_terminal()
    }

    /// A step's status line, on stderr.
    pub fn status(&self, msg: impl Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A detail shown with `-v`.
    pub fn detail(&self, msg: impl Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("  {msg}");
        }
    }

    pub fn warn(&self, msg: impl Display) {
        if self.color {
            eprintln!("\x1b[33mwarning\x1b[0m: {msg}");
        } else {
            eprintln!("warning: {msg}");
        }
    }

    /// A command's report, once: its `Display` as text (under the dry-run banner), or one JSON document.
    pub fn report(&self, report: &Report) {
        let Some(outcome) = &report.outcome else { return };
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            OutputFormat::Json => match outcome.to_json().and_then(|v| serde_json::to_string_pretty(&v)) {
                Ok(text) => writeln!(out, "{text}"),
                Err(e) => writeln!(std::io::stderr(), "error: cannot encode the result as json: {e}"),
            },
            OutputFormat::Text if report.dry_run => write!(out, "{DRY_RUN_BANNER}\n{outcome}"),
            OutputFormat::Text => write!(out, "{outcome}"),
        };
    }

    /// The error as a miette report on stderr; with `--output json` also as JSON on stdout.
    pub fn error(&self, err: Error) {
        if self.json() {
            let doc =
                serde_json::json!({"error": {"message": err.message, "help": err.help, "exit_code": err.exit_code()}});
            println!("{doc:#}");
        }
        let handler = miette::GraphicalReportHandler::new_themed(if self.color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        });
        let mut text = String::new();
        match handler.render_report(&mut text, &err) {
            Ok(()) => eprint!("{text}"),
            Err(_) => eprintln!("error: {err}"),
        }
    }
}
