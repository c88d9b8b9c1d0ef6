//! What the plans know about Lambda: functions, versions and aliases as plain values, free of SDK types.
//!
//! `aws::lambda` converts the SDK's shapes into these; plans and commands reason only about them.
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::domain::{ManagedBy, PackageType};

/// The runtime of a zip function: Amazon Linux 2023 with no language runtime, which runs `bootstrap`.
pub const ZIP_RUNTIME: &str = "provided.al2023";
/// The handler of a zip function; `provided.*` runtimes ignore it, but Lambda shows it.
pub const ZIP_HANDLER: &str = "bootstrap";

/// One function configuration (`$LATEST` or a published version), without SDK types.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    pub version: String,
    pub description: String,
    pub role: String,
    /// The dead-letter target, which both versions of an alias must share.
    pub dead_letter: Option<String>,
    pub code_sha256: String,
    /// `None` when Lambda did not say.
    pub package_type: Option<PackageType>,
    /// `None` when Lambda did not say.
    pub state: Option<LambdaState>,
    pub last_update_status: Option<LastUpdateStatus>,
    /// Lambda's reason for a Failed state or update.
    pub reason: Option<String>,
    pub env: BTreeMap<String, String>,
    pub memory: i32,
    pub timeout: i32,
    pub architecture: String,
    pub last_modified: String,
    pub revision_id: String,
}

/// An alias: its primary version and the weighted additional version, if any.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Alias {
    pub name: String,
    pub arn: String,
    pub primary: String,
    /// Additional version → weight in (0, 1).
    pub routing: BTreeMap<String, f64>,
    pub description: String,
    pub revision_id: String,
}

impl FunctionInfo {
    /// `MODEL_VERSION` from the environment: the model the version serves and the dimension of its latency metric.
    pub fn model_version(&self) -> Option<String> {
        self.env.get(mlambda_runtime::env::MODEL_VERSION).filter(|m| !m.is_empty()).cloned()
    }

    /// The function's ARN qualified by a version or alias, whatever qualifier this version's own ARN carries.
    pub fn qualified_arn(&self, qualifier: &str) -> String {
        let base: Vec<&str> = self.arn.splitn(8, ':').take(7).collect();
        format!("{}:{qualifier}", base.join(":"))
    }

    /// The execution role's name (the last part of its ARN).
    pub fn role_name(&self) -> &str {
        self.role.rsplit('/').next().unwrap_or_default()
    }

    /// An earlier update is still running, so a new one would be refused.
    pub fn busy(&self) -> bool {
        self.state == Some(LambdaState::Pending) || self.last_update_status == Some(LastUpdateStatus::InProgress)
    }
}

/// Lambda's `State` of a function configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LambdaState {
    Pending,
    Active,
    Inactive,
    Failed,
    /// A state this mlambda does not know, by its name.
    Other(String),
}

impl LambdaState {
    pub fn as_str(&self) -> &str {
        match self {
            LambdaState::Pending => "Pending",
            LambdaState::Active => "Active",
            LambdaState::Inactive => "Inactive",
            LambdaState::Failed => "Failed",
            LambdaState::Other(s) => s,
        }
    }
}

impl Serialize for LambdaState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for LambdaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lambda's `LastUpdateStatus` of a function configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastUpdateStatus {
    InProgress,
    Successful,
    Failed,
    Other(String),
}

impl LastUpdateStatus {
    pub fn as_str(&self) -> &str {
        match self {
            LastUpdateStatus::InProgress => "InProgress",
            LastUpdateStatus::Successful => "Successful",
            LastUpdateStatus::Failed => "Failed",
            LastUpdateStatus::Other(s) => s,
        }
    }
}

impl Serialize for LastUpdateStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for LastUpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where waiting for `$LATEST` stands after one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Lambda's reason, when it gave one.
    Failed(Option<String>),
    Waiting,
}

impl FunctionInfo {
    /// Ready means State=Active and LastUpdateStatus=Successful (or absent: a function never updated).
    pub fn readiness(&self) -> Readiness {
        if self.state == Some(LambdaState::Failed) || self.last_update_status == Some(LastUpdateStatus::Failed) {
            return Readiness::Failed(self.reason.clone());
        }
        let updated = matches!(self.last_update_status, None | Some(LastUpdateStatus::Successful));
        if self.state == Some(LambdaState::Active) && updated {
            Readiness::Ready
        } else {
            Readiness::Waiting
        }
    }
}

/// What a function runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "package")]
pub enum Code {
    /// `registry/repository@sha256:…`: always by digest, so a version pins exact bytes.
    Image { image_uri: String },
    /// A zip in S3 on [`ZIP_RUNTIME`]; `code_sha256` (base64, as Lambda reports it) pins its bytes.
    Zip { bucket: String, key: String, code_sha256: String },
}

impl Code {
    pub fn package_type(&self) -> PackageType {
        match self {
            Code::Image { .. } => PackageType::Image,
            Code::Zip { .. } => PackageType::Zip,
        }
    }

    /// The image URI, or `s3://bucket/key`.
    pub fn location(&self) -> String {
        match self {
            Code::Image { image_uri } => image_uri.clone(),
            Code::Zip { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.package_type(), self.location())
    }
}

/// Everything mlambda sets on a function; deploy compares it with `$LATEST` field by field.
///
/// Under `function.managed_by: terraform` the role, memory, timeout, architecture and description are the
/// function's own, read back from Lambda, so writing the spec never changes them; `env` is the function's
/// environment with the model's variables merged in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionSpec {
    pub name: String,
    #[serde(flatten)]
    pub code: Code,
    pub role: String,
    pub memory: i32,
    pub timeout: i32,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    pub env: BTreeMap<String, String>,
    /// The function's description (`$LATEST`'s).
    pub description: String,
    /// What each published version says it serves, `model v1 image sha256:…`; mlambda gives `$LATEST` the same
    /// description unless Terraform owns the function.
    pub version_description: String,
    pub managed_by: ManagedBy,
}
