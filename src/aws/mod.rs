//! Thin async functions over the AWS SDK clients: the only module that imports `aws_sdk_*`.
use std::fmt::Display;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::error::Error;

pub mod cloudwatch;
pub mod ecr;
pub mod events;
pub mod iam;
pub mod invoke;
pub mod lambda;
pub mod logs;
pub mod s3;

/// Which AWS account and region to talk to; `None` leaves it to aws-config's default chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub profile: Option<String>,
    pub region: Option<String>,
}

impl Target {
    /// aws-config's default chain with this profile and region, over one HTTPS client: rustls on ring, the
    /// crypto the runtime already uses, so the SDK brings no second TLS stack (and no aws-lc C build).
    async fn load(&self) -> aws_config::SdkConfig {
        let https =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https);
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &self.region {
            loader = loader.region(Region::new(r.clone()));
        }
        loader.load().await
    }
}

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
    pub async fn connect(target: &Target) -> Result<Aws, Error> {
        let sdk = target.load().await;
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

/// Why an AWS call failed, by what a caller or a person can do about it. Built from the SDK's error shapes
/// (the HTTP status and the transport), never from parsing messages; calls whose callers branch use the
/// operation's own `is_*` methods first.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("failed to {what}: {code}: {message}")]
    NotFound { what: String, code: String, message: String },
    #[error("failed to {what}: {code}: {message}")]
    Conflict { what: String, code: String, message: String },
    #[error("failed to {what}: {code}: {message}")]
    PreconditionFailed { what: String, code: String, message: String },
    #[error("failed to {what}: {code}: {message}")]
    Throttled { what: String, code: String, message: String },
    #[error("failed to {what}: {code}: {message}")]
    Denied { what: String, code: String, message: String },
    #[error("failed to {what}: AWS is unreachable ({detail})")]
    Unreachable { what: String, detail: String },
    #[error("failed to {what}: {code}: {message}")]
    Service { what: String, code: String, message: String },
    #[error("failed to {what}: {detail}")]
    Other { what: String, detail: String },
}

impl AwsError {
    fn help(&self) -> Option<&'static str> {
        match self {
            AwsError::Unreachable { .. } => Some(
                "check the network, the region and `AWS_ENDPOINT_URL`; the failed call changed nothing, so re-run when AWS is reachable",
            ),
            AwsError::Denied { .. } => {
                Some("check your AWS credentials; `mlambda iam-policy` prints the permissions mlambda needs")
            }
            AwsError::Throttled { .. } => Some("AWS is throttling this account's requests; wait a minute and re-run"),
            _ => None,
        }
    }
}

/// Every AWS failure is a cloud error (exit 2), with the fix when one is known.
impl From<AwsError> for Error {
    fn from(e: AwsError) -> Error {
        let help = e.help();
        let err = Error::cloud(e);
        match help {
            Some(h) => err.help(h),
            None => err,
        }
    }
}

/// Codes that mean "your credentials", whatever HTTP status the service chose for them.
const CREDENTIAL_CODES: [&str; 6] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
];

/// Classifies an SDK error for "failed to <what>": transport failures are unreachable, service answers go
/// by their HTTP status.
pub(crate) fn fail<E>(what: impl Display, err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let what = what.to_string();
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            AwsError::Unreachable { what, detail: DisplayErrorContext(&err).to_string() }
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown error").to_string();
            let message = se.err().message().unwrap_or("no message").to_string();
            match se.raw().status().as_u16() {
                _ if CREDENTIAL_CODES.contains(&code.as_str()) => AwsError::Denied { what, code, message },
                403 => AwsError::Denied { what, code, message },
                404 => AwsError::NotFound { what, code, message },
                409 => AwsError::Conflict { what, code, message },
                412 => AwsError::PreconditionFailed { what, code, message },
                429 => AwsError::Throttled { what, code, message },
                _ => AwsError::Service { what, code, message },
            }
        }
        _ => AwsError::Other { what, detail: DisplayErrorContext(&err).to_string() },
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
