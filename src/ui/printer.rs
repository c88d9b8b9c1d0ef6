//! One printer that knows quiet, verbose and JSON: status to stderr, data to stdout.
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Printer {
    format: OutputFormat,
    quiet: bool,
    verbose: u8,
    color: bool,
    /// Set for commands run inside `mlambda up`: their results are collected, not printed.
    captured: Option<Arc<Mutex<Vec<Captured>>>>,
}

/// One command's result as `mlambda up` collects it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub json: serde_json::Value,
    pub text: String,
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8) -> Printer {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer { format, quiet, verbose, color, captured: None }
    }

    /// A printer that collects results instead of printing them; status lines still go to stderr.
    pub fn capturing(&self) -> Printer {
        Printer { captured: Some(Arc::default()), ..self.clone() }
    }

    /// The results collected since the last call.
    pub fn take_captured(&self) -> Vec<Captured> {
        self.captured.as_ref().and_then(|c| c.lock().ok().map(|mut v| std::mem::take(&mut *v))).unwrap_or_default()
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

    /// A command's result: its `Display` as text, or the value as one JSON document.
    pub fn data<T: Serialize + Display>(&self, value: &T) {
        if let Some(sink) = &self.captured {
            let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
            if let Ok(mut v) = sink.lock() {
                v.push(Captured { json, text: value.to_string() });
            }
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            OutputFormat::Json => match serde_json::to_string_pretty(value) {
                Ok(text) => writeln!(out, "{text}"),
                Err(e) => writeln!(std::io::stderr(), "error: cannot encode the result as json: {e}"),
            },
            OutputFormat::Text => write!(out, "{value}"),
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
