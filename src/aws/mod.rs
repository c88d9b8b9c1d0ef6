//! Thin async functions over the AWS SDK clients: the only module that imports `aws_sdk_*`.
use std::fmt::{Debug, Display};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::cli::GlobalArgs;
use crate::error::Error;

pub mod cloudwatch;
pub mod ecr;
pub mod events;
pub mod iam;
pub mod invoke;
pub mod lambda;
pub mod s3;

/// One SDK client per service, all from the same resolved AWS config.
#[derive(Clone, Debug)]
pub struct Aws {
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) cloudwatch: aws_sdk_cloudwatch::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) events: aws_sdk_eventbridge::Client,
    pub region: String,
}

impl Aws {
    /// Loads aws-config's default chain (env, profile, SSO, IMDS), honouring `AWS_ENDPOINT_URL`.
    pub async fn connect(global: &GlobalArgs) -> Result<Aws, Error> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &global.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &global.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            Error::user("no AWS region is configured")
                .help("pass `--region eu-west-1`, set `AWS_REGION`, or set a region in your AWS profile")
        })?;
        // Path-style addressing, because a custom endpoint (moto, LocalStack) has no per-bucket DNS.
        let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        Ok(Aws {
            lambda: aws_sdk_lambda::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            region,
        })
    }
}

/// The service's error code (`ResourceNotFoundException`), when the service answered.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Turns an SDK error into "failed to <what>: <code>: <message>", with a fix when we know one.
pub(crate) fn fail<E, R>(what: impl Display, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            Error::cloud(format!("failed to {what}: AWS is unreachable ({})", DisplayErrorContext(&err))).help(
                "check the network, the region and `AWS_ENDPOINT_URL`; the failed call changed nothing, so re-run when AWS is reachable",
            )
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown error");
            let msg = se.err().message().unwrap_or("no message");
            let e = Error::cloud(format!("failed to {what}: {code}: {msg}"));
            match code {
                "AccessDenied" | "AccessDeniedException" | "UnrecognizedClientException" | "InvalidClientTokenId"
                | "ExpiredToken" | "ExpiredTokenException" => {
                    e.help("check your AWS credentials; `mlambda iam-policy` prints the permissions mlambda needs")
                }
                _ => e,
            }
        }
        _ => Error::cloud(format!("failed to {what}: {}", DisplayErrorContext(&err))),
    }
}

/// An `Aws` whose Lambda client answers from `aws-smithy-mocks` rules, in order; the other clients are
/// unconfigured and fail if called. For what moto cannot do (Pending states, failed updates, timeouts).
#[cfg(test)]
pub(crate) fn mock_lambda(rules: &[&aws_smithy_mocks::Rule]) -> Aws {
    let interceptor = rules.iter().fold(
        aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(aws_smithy_mocks::RuleMode::Sequential),
        |i, r| i.with_rule(r),
    );
    let lambda = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new("test", "test", None, None, "mock"))
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .stalled_stream_protection(aws_sdk_lambda::config::StalledStreamProtectionConfig::disabled())
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(interceptor)
        .build();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build();
    Aws {
        lambda: aws_sdk_lambda::Client::from_conf(lambda),
        ecr: aws_sdk_ecr::Client::new(&sdk),
        s3: aws_sdk_s3::Client::new(&sdk),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
        iam: aws_sdk_iam::Client::new(&sdk),
        events: aws_sdk_eventbridge::Client::new(&sdk),
        region: "us-east-1".into(),
    }
}
