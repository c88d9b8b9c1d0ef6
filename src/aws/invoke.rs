//! Synchronous Lambda invocations for `mlambda invoke`.
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::LogType;
use base64::Engine;

use super::{fail, Aws};
use crate::error::Result;

/// What Lambda answered, without SDK types.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub status: i32,
    /// The version that actually ran: with weighted routing it tells which side of the A/B split answered.
    pub executed_version: Option<String>,
    /// `Unhandled` when the function itself failed.
    pub function_error: Option<String>,
    pub payload: Vec<u8>,
    /// The last 4 KB of the function's log.
    pub log_tail: Option<String>,
}

pub async fn invoke(aws: &Aws, function: &str, qualifier: &str, payload: Vec<u8>) -> Result<Invocation> {
    let out = aws
        .lambda
        .invoke()
        .function_name(function)
        .qualifier(qualifier)
        .log_type(LogType::Tail)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| fail(format!("invoke `{function}:{qualifier}`"), e))?;
    let log_tail = out
        .log_result()
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).to_string());
    Ok(Invocation {
        status: out.status_code(),
        executed_version: out.executed_version().map(str::to_string),
        function_error: out.function_error().map(str::to_string),
        payload: out.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default(),
        log_tail,
    })
}
