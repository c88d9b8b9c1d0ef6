//! The CLI's one error type: what went wrong, how to fix it, and which exit code it maps to.
use std::fmt::Display;

/// Who has to act: the user (exit 1) or nobody we can name (exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad flags, config, input files or a refused plan.
    User,
    /// AWS or the registry failed or went away.
    Cloud,
    /// This machine failed: the Docker engine, a local process, a port, a file mlambda writes.
    Local,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    #[help]
    pub help: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn user(message: impl Display) -> Error {
        Error { kind: Kind::User, message: message.to_string(), help: None }
    }

    pub fn cloud(message: impl Display) -> Error {
        Error { kind: Kind::Cloud, message: message.to_string(), help: None }
    }

    pub fn local(message: impl Display) -> Error {
        Error { kind: Kind::Local, message: message.to_string(), help: None }
    }

    pub fn help(mut self, help: impl Display) -> Error {
        self.help = Some(help.to_string());
        self
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::User => 1,
            Kind::Cloud | Kind::Local => 2,
        }
    }
}

impl From<crate::domain::DomainError> for Error {
    fn from(e: crate::domain::DomainError) -> Error {
        let help = e.help();
        Error::user(e).help(help)
    }
}

/// Adds "while doing X" context to I/O errors on user files.
pub fn io_error(path: &std::path::Path, what: &str, err: std::io::Error) -> Error {
    Error::user(format!("cannot {what} `{}`: {err}", path.display()))
}
