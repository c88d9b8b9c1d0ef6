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
pub mod logs;
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

/// `Aws` clients answering from aws-smithy-mocks rules, for what moto cannot do: Pending states, failed
/// updates, provisioned concurrency, a changed RevisionId. Services without rules fail if called.
#[cfg(test)]
pub(crate) mod mock {
    use aws_smithy_mocks::{create_mock_http_client, MockResponseInterceptor, Rule, RuleMode};

    use super::Aws;

    macro_rules! client {
        ($sdk:ident, $mode:expr, $rules:expr) => {{
            let mut interceptor = MockResponseInterceptor::new().rule_mode($mode);
            for rule in $rules {
                interceptor = interceptor.with_rule(rule);
            }
            let conf = $sdk::Config::builder()
                .behavior_version($sdk::config::BehaviorVersion::latest())
                .region($sdk::config::Region::new("us-east-1"))
                .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "test"))
                .retry_config($sdk::config::retry::RetryConfig::disabled())
                .stalled_stream_protection($sdk::config::StalledStreamProtectionConfig::disabled())
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build();
            $sdk::Client::from_conf(conf)
        }};
    }

    fn build(mode: RuleMode, lambda: &[&Rule], cloudwatch: &[&Rule]) -> Aws {
        let none: [&Rule; 0] = [];
        Aws {
            lambda: client!(aws_sdk_lambda, mode, lambda),
            ecr: client!(aws_sdk_ecr, mode, none),
            s3: client!(aws_sdk_s3, mode, none),
            cloudwatch: client!(aws_sdk_cloudwatch, mode, cloudwatch),
            iam: client!(aws_sdk_iam, mode, none),
            events: client!(aws_sdk_eventbridge, mode, none),
            region: "us-east-1".into(),
        }
    }

    /// Each request answered by the first rule that matches it.
    pub(crate) fn aws(lambda: &[&Rule], cloudwatch: &[&Rule]) -> Aws {
        build(RuleMode::MatchAny, lambda, cloudwatch)
    }

    /// Lambda requests answered by the rules in order: a polling sequence such as Pending, then Active.
    pub(crate) fn lambda_in_order(rules: &[&Rule]) -> Aws {
        build(RuleMode::Sequential, rules, &[])
    }
}
