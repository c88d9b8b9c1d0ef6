//! Thin async functions over the AWS SDK clients: the only module that imports `aws_sdk_*`.
use std::error::Error as StdError;
use std::fmt::Display;

use aws_config::imds::client::error::ImdsError;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
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
pub mod sfn;

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

/// The region error; a named profile without one is most often a profile that does not exist.
fn no_region(target: &Target) -> Error {
    // clap fills `--profile` from `AWS_PROFILE` too; the environment tells the two apart.
    let named = target.profile.as_ref().map(|p| {
        let from = if std::env::var("AWS_PROFILE").is_ok_and(|e| e == *p) { "AWS_PROFILE" } else { "--profile" };
        format!("`{p}` (`{from}`)")
    });
    match named {
        None => Error::user("no AWS region is configured")
            .help("pass `--region eu-west-1`, set `AWS_REGION`, or set a region in your AWS profile"),
        Some(p) => Error::user(format!("no AWS region is configured: profile {p} sets none, or does not exist"))
            .help("`aws configure list-profiles` lists your profiles; pass `--region eu-west-1`, set `AWS_REGION`, or set a region in the profile"),
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
    pub(crate) sfn: aws_sdk_sfn::Client,
    pub region: String,
}

impl Aws {
    /// Loads aws-config's default chain (env, profile, SSO, IMDS), honouring `AWS_ENDPOINT_URL`.
    pub async fn connect(target: &Target) -> Result<Aws, Error> {
        let sdk = target.load().await;
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| no_region(target))?;
        // Path-style addressing, because a custom endpoint (moto, LocalStack) has no per-bucket DNS.
        let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(sdk.endpoint_url().is_some()).build();
        Ok(Aws {
            lambda: aws_sdk_lambda::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
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
    /// The default chain found nothing: no profile, no environment variables, no SSO, no instance role.
    #[error("failed to {what}: no AWS credentials found{}", if *.imds { " (the last place looked, the EC2 instance metadata service, failed)" } else { "" })]
    NoCredentials { what: String, imds: bool },
    /// Credentials are configured but cannot be loaded: a broken profile, an expired SSO session.
    #[error("failed to {what}: cannot load the AWS credentials: {detail}")]
    Credentials { what: String, detail: String },
    #[error("failed to {what}: {code}: {message}")]
    Service { what: String, code: String, message: String },
    #[error("failed to {what}: {detail}")]
    Other { what: String, detail: String },
}

/// How to give mlambda credentials: the AWS CLI's ways, since mlambda reads the same chain.
const CREDENTIALS_HELP: &str =
    "mlambda reads credentials as the AWS CLI does: set `AWS_PROFILE` (or pass `--profile`) \
     to a profile in ~/.aws/config, create one with `aws configure`, run `aws sso login` for an SSO profile, or set \
     `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`";

impl AwsError {
    fn help(&self) -> Option<&'static str> {
        match self {
            AwsError::NoCredentials { .. } => Some(CREDENTIALS_HELP),
            AwsError::Credentials { .. } => Some(
                "fix the profile `AWS_PROFILE` or `--profile` names (`aws configure list` shows what the AWS CLI \
                 sees), run `aws sso login` if its SSO session expired, or set `AWS_ACCESS_KEY_ID` and \
                 `AWS_SECRET_ACCESS_KEY`",
            ),
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

/// Credentials are the user's to fix (exit 1); every other AWS failure is a cloud error (exit 2). Both carry
/// the fix when one is known.
impl From<AwsError> for Error {
    fn from(e: AwsError) -> Error {
        let help = e.help();
        let err = match e {
            AwsError::NoCredentials { .. } | AwsError::Credentials { .. } => Error::user(e),
            _ => Error::cloud(e),
        };
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

/// Classifies an SDK error for "failed to <what>": credentials that could not be resolved are the user's,
/// other transport failures are unreachable, service answers go by their HTTP status. Only `Display` text
/// reaches the message: the SDK's `Debug` dumps are for its own developers.
pub(crate) fn fail<E>(what: impl Display, err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let what = what.to_string();
    if let SdkError::ServiceError(se) = &err {
        let code = se.err().code().unwrap_or("unknown error").to_string();
        let message = se.err().message().unwrap_or("no message").to_string();
        return match se.raw().status().as_u16() {
            _ if CREDENTIAL_CODES.contains(&code.as_str()) => AwsError::Denied { what, code, message },
            403 => AwsError::Denied { what, code, message },
            404 => AwsError::NotFound { what, code, message },
            409 => AwsError::Conflict { what, code, message },
            412 => AwsError::PreconditionFailed { what, code, message },
            429 => AwsError::Throttled { what, code, message },
            _ => AwsError::Service { what, code, message },
        };
    }
    // The SDK resolves credentials as the request is built or sent, so a missing one arrives as a construction
    // or dispatch failure whose source is the provider chain's error.
    match credentials(&err) {
        Some(CredentialsFailure::Missing { imds }) => return AwsError::NoCredentials { what, imds },
        Some(CredentialsFailure::Unusable(detail)) => return AwsError::Credentials { what, detail },
        None => {}
    }
    match &err {
        // "dispatch failure" says nothing; the connector's kind and what it hit do.
        SdkError::DispatchFailure(d) => {
            let detail = d.as_connector_error().map_or_else(|| display_chain(&err), |c| display_chain(c));
            AwsError::Unreachable { what, detail }
        }
        SdkError::TimeoutError(_) => AwsError::Unreachable { what, detail: display_chain(&err) },
        _ => AwsError::Other { what, detail: display_chain(&err) },
    }
}

/// A credentials failure, as the person at the keyboard sees it.
#[derive(Debug, PartialEq, Eq)]
enum CredentialsFailure {
    /// None were found. `imds`: the chain's last resort, the EC2 instance metadata service, failed rather than
    /// answering "none" (a network that intercepts 169.254.169.254 does that).
    Missing { imds: bool },
    /// Configured but not loadable, with the provider's reason.
    Unusable(String),
}

/// The credentials failure somewhere in `err`'s sources, found by the SDK's own error type.
fn credentials(err: &(dyn StdError + 'static)) -> Option<CredentialsFailure> {
    let found = sources(err).find_map(|e| e.downcast_ref::<CredentialsError>())?;
    Some(match found {
        CredentialsError::CredentialsNotLoaded(_) => CredentialsFailure::Missing { imds: false },
        // IMDS is tried only when nothing before it had credentials; its own text can carry an HTTP dump.
        _ if sources(found).any(|e| e.is::<ImdsError>()) => CredentialsFailure::Missing { imds: true },
        other => CredentialsFailure::Unusable(display_chain(other)),
    })
}

/// `err`, then each error it was caused by.
fn sources<'a>(err: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// An error and its sources as one line, `outer: inner: root`, skipping a source whose text its parent
/// already includes.
pub(crate) fn display_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in sources(err) {
        let text = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
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
            sfn: client!(aws_sdk_sfn, mode, none),
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

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::get_function::GetFunctionError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;

    type Sdk = SdkError<GetFunctionError>;

    fn message(e: AwsError) -> (String, Option<String>, u8) {
        let e = Error::from(e);
        (e.message.clone(), e.help.clone(), e.exit_code())
    }

    fn no_debug(text: &str) {
        for dump in ["DispatchFailure", "ConnectorError", "CredentialsNotLoaded", "Some(", "{ "] {
            assert!(!text.contains(dump), "`{dump}` is Debug text: {text}");
        }
    }

    #[test]
    fn no_credentials_is_the_users_to_fix_and_says_how() {
        let chain = CredentialsError::not_loaded("no credentials found in chain. Attempted:\n  Environment: not set");
        let err = Sdk::dispatch_failure(ConnectorError::other(chain.into(), None));
        assert_eq!(credentials(&err), Some(CredentialsFailure::Missing { imds: false }));
        let (msg, help, code) = message(fail("read function `f`", err));
        assert_eq!(msg, "failed to read function `f`: no AWS credentials found");
        assert_eq!(code, 1);
        let help = help.unwrap_or_default();
        for way in ["AWS_PROFILE", "aws configure", "aws sso login", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert!(help.contains(way), "{way}: {help}");
        }
        no_debug(&msg);
    }

    #[test]
    fn credentials_that_do_not_load_show_the_providers_reason_as_text() {
        let expired = std::io::Error::other("the SSO session has expired");
        let err = Sdk::dispatch_failure(ConnectorError::other(CredentialsError::provider_error(expired).into(), None));
        let (msg, help, code) = message(fail("read function `f`", err));
        assert_eq!(
            msg,
            "failed to read function `f`: cannot load the AWS credentials: an error occurred while loading \
             credentials: the SSO session has expired"
        );
        assert!(help.is_some_and(|h| h.contains("aws sso login")));
        assert_eq!(code, 1);

        let bad = CredentialsError::invalid_configuration("profile `nope` is not defined");
        let (msg, _, code) = message(fail("read function `f`", Sdk::construction_failure(bad)));
        assert!(msg.ends_with("profile `nope` is not defined"), "{msg}");
        assert_eq!(code, 1);
    }

    #[test]
    fn an_unreachable_endpoint_is_a_cloud_failure_in_plain_words() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)");
        let err = Sdk::dispatch_failure(ConnectorError::io(refused.into()));
        let (msg, help, code) = message(fail("read function `f`", err));
        assert_eq!(
            msg,
            "failed to read function `f`: AWS is unreachable (io error: Connection refused (os error 111))"
        );
        assert!(help.is_some_and(|h| h.contains("check the network")));
        assert_eq!(code, 2);
        no_debug(&msg);
        assert_eq!(credentials(&Sdk::dispatch_failure(ConnectorError::io("refused".into()))), None);

        let (msg, _, code) = message(fail("read function `f`", Sdk::timeout_error("operation timed out after 30s")));
        assert_eq!(
            msg,
            "failed to read function `f`: AWS is unreachable (request has timed out: operation timed out after 30s)"
        );
        assert_eq!(code, 2);
    }

    #[test]
    fn the_display_chain_joins_sources_once_each_on_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: {0}")]
        struct Repeats(#[source] std::io::Error);
        let e = Repeats(std::io::Error::other("inner\n  detail"));
        assert_eq!(display_chain(&e), "outer: inner detail");
        let nested = CredentialsError::provider_error(Repeats(std::io::Error::other("root")));
        assert_eq!(display_chain(&nested), "an error occurred while loading credentials: outer: root");
    }
}
