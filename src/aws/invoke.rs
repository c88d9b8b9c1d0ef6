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

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::primitives::Blob;
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::mock;
    use base64::Engine;

    use crate::aws::mock;

    // moto answers 500 for Image functions, so the Invoke API path is shown with a mock.
    #[tokio::test]
    async fn an_invocation_reports_the_version_that_ran_and_the_log_tail() {
        let invoke = mock!(Client::invoke)
            .match_requests(|r| {
                r.function_name() == Some("churn")
                    && r.qualifier() == Some("production")
                    && r.payload().map(|p| p.as_ref()) == Some(br#"{"_warmup": true}"#.as_slice())
            })
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .executed_version("4")
                    .log_result(base64::engine::general_purpose::STANDARD.encode("START RequestId: 1\nEND"))
                    .payload(Blob::new(br#"{"statusCode":200,"body":"{\"status\":\"warm\"}"}"#.to_vec()))
                    .build()
            });
        let aws = mock::aws(&[&invoke], &[]);
        let inv = super::invoke(&aws, "churn", "production", br#"{"_warmup": true}"#.to_vec()).await.unwrap();
        assert_eq!(inv.status, 200);
        assert_eq!(inv.executed_version.as_deref(), Some("4"));
        assert_eq!(inv.log_tail.as_deref(), Some("START RequestId: 1\nEND"));
        assert_eq!(inv.function_error, None);
        assert_eq!(inv.payload, br#"{"statusCode":200,"body":"{\"status\":\"warm\"}"}"#.to_vec());
    }
}
