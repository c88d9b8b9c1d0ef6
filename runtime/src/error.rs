//! The runtime's one error type: each variant knows the HTTP status a caller sees and Lambda's `errorType`.
use crate::model::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's mistake: answered 400 with the message (which names the field and the fix).
    #[error("{0}")]
    InvalidInput(String),
    /// The model failed to load or to run: 500, details in the log only.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The function's environment is wrong (`MODEL_*` variables): an init error.
    #[error("{0}")]
    Config(String),
    /// The model bytes could not be fetched or failed their sha256 check: an init error.
    #[error("{0}")]
    Source(String),
}

impl Error {
    /// The status of the proxy envelope answering a request that failed this way.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidInput(_) => 400,
            Error::Model(_) | Error::Config(_) | Error::Source(_) => 500,
        }
    }

    /// Lambda's `errorType` (posted with init errors, and logged).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "InvalidInput",
            Error::Model(ModelError::Run(_)) => "ModelError",
            Error::Model(ModelError::Load(_)) => "Runtime.InitError.Model",
            Error::Config(_) => "Runtime.InitError.Config",
            Error::Source(_) => "Runtime.InitError.Source",
        }
    }

    /// What the caller is told: their own mistakes in full, nothing about internals.
    pub fn public_message(&self) -> &str {
        match self {
            Error::InvalidInput(m) => m,
            _ => "internal error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_types_and_messages() {
        let bad = Error::InvalidInput("feature \"a\" must be a number, got a string".into());
        assert_eq!(
            (bad.status(), bad.error_type(), bad.public_message()),
            (400, "InvalidInput", bad.to_string().as_str())
        );
        let run = Error::from(ModelError::Run("tensor shape mismatch in node 7".into()));
        assert_eq!((run.status(), run.error_type(), run.public_message()), (500, "ModelError", "internal error"));
        assert!(Error::Config("x".into()).error_type().starts_with("Runtime.InitError"));
        assert!(Error::Source("x".into()).error_type().starts_with("Runtime.InitError"));
        assert!(Error::from(ModelError::Load("x".into())).error_type().starts_with("Runtime.InitError"));
    }
}
