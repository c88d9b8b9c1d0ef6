//! Domain values parsed once at the edge (flags, mlambda.yaml, the state file): each validation rule lives here.
//!
//! clap's `value_parser`s and serde build these types; everything behind the edge carries them, so a value is
//! checked once and never re-validated or re-parsed on its way to AWS.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a function's code is packaged (`function.package`): a container image from ECR, or a zip on
/// `provided.al2023` from S3. Lambda cannot change it on an existing function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    #[default]
    Image,
    Zip,
}

impl PackageType {
    /// The word in mlambda.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Image => "image",
            PackageType::Zip => "zip",
        }
    }
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who owns the function, its alias and its execution role (`function.managed_by`). `Mlambda` creates and
/// configures them. `Terraform` creates them: mlambda then sets only the code, the model's environment
/// variables, the published versions and the alias's routing, because Terraform's next apply resets the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    #[default]
    Mlambda,
    Terraform,
}

impl ManagedBy {
    /// The word in mlambda.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::Mlambda => "mlambda",
            ManagedBy::Terraform => "terraform",
        }
    }
}

impl fmt::Display for ManagedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a value from a flag, mlambda.yaml or the state file is refused; [`DomainError::help`] says how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("weight {0} is out of range: the candidate's weight must be greater than 0 and less than 1")]
    WeightRange(f64),
    #[error(
        "`{0}` cannot be routed by an alias with weights: Lambda only routes weighted traffic to published versions"
    )]
    Latest(String),
    #[error("`{0}` is not a version number")]
    NotANumber(String),
    #[error("model version `{0}` must be non-empty and contain no `/`")]
    ModelVersion(String),
    #[error("unknown preset `{0}`")]
    Preset(String),
    #[error(
        "unknown rollout strategy `{0}`; use weight, steps, promote, canary10-5m, linear10-1m or shadow-then-canary"
    )]
    Strategy(String),
    #[error("`{0}` is not a duration like `5m`")]
    Duration(String),
    #[error("`{0}` is not an image digest like `sha256:<64 hex digits>`")]
    Digest(String),
    #[error("--sample `{0}` is out of range: the share of requests copied must be greater than 0 and at most 1")]
    Sample(String),
    #[error("--tolerated-failure `{0}` is not a percentage from 0 to 100")]
    Percent(String),
}

impl DomainError {
    pub fn help(&self) -> String {
        match self {
            DomainError::WeightRange(_) => {
                "pass a weight like `--weight 0.1`; use `--promote` to send 100% and `--rollback` to send 0%".into()
            }
            DomainError::Latest(_) => "publish a version with `mlambda deploy` and pass its number with `--version`".into(),
            DomainError::NotANumber(v) => format!("pass a published version number, e.g. `--version 4`, not `{v}`"),
            DomainError::ModelVersion(_) => "use a version like `v4` (it becomes part of the S3 key)".into(),
            DomainError::Preset(_) => {
                "use `--preset canary10-5m` (10%, then 100% after 5 minutes) or `--preset linear10-1m` (+10% every minute)"
                    .into()
            }
            DomainError::Strategy(_) => "set `rollout.strategy` to one of the names above".into(),
            DomainError::Duration(_) => "use a duration like `5m`, `30s` or `1h`".into(),
            DomainError::Digest(_) => "re-run `mlambda push`; it records the digest the registry serves".into(),
            DomainError::Sample(_) => "pass e.g. `--sample 0.2` to copy one request in five, `--sample 1` for all".into(),
            DomainError::Percent(_) => "pass e.g. `--tolerated-failure 5` to let up to 5% of the rows fail".into(),
        }
    }
}

/// The candidate's share of the alias's traffic, strictly between 0 and 1: the one range check for weights.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Weight(f64);

impl Weight {
    /// The default canary weight (`rollout.weight`).
    pub const TEN_PERCENT: Weight = Weight(0.1);

    pub fn new(w: f64) -> Result<Weight, DomainError> {
        // `!(..)` so NaN is refused too.
        if !(w > 0.0 && w < 1.0) {
            return Err(DomainError::WeightRange(w));
        }
        Ok(Weight(w))
    }

    /// `--weight`: a number that is not a float stays clap's own error (exit 2); one out of range is ours.
    pub fn parse_flag(s: &str) -> Result<Weight, Box<dyn std::error::Error + Send + Sync>> {
        let w: f64 = s.trim().parse()?;
        Ok(Weight::new(w)?)
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Weight {
    type Error = DomainError;
    fn try_from(w: f64) -> Result<Weight, DomainError> {
        Weight::new(w)
    }
}

impl From<Weight> for f64 {
    fn from(w: Weight) -> f64 {
        w.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A published version number; `$LATEST` is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Version(u64);

impl Version {
    pub fn parse(s: &str) -> Result<Version, DomainError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("$LATEST") {
            return Err(DomainError::Latest(s.to_string()));
        }
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Version(n)),
            _ => Err(DomainError::NotANumber(s.to_string())),
        }
    }

    pub fn number(self) -> u64 {
        self.0
    }
}

impl FromStr for Version {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Version, DomainError> {
        Version::parse(s)
    }
}

impl TryFrom<String> for Version {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Version, DomainError> {
        Version::parse(&s)
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A model version (`v4`): part of the S3 key, so non-empty and without `/`. The one rule for config and flags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ModelVersion(String);

impl ModelVersion {
    pub fn new(s: impl Into<String>) -> Result<ModelVersion, DomainError> {
        let s = s.into();
        if s.is_empty() || s.contains('/') {
            return Err(DomainError::ModelVersion(s));
        }
        Ok(ModelVersion(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ModelVersion {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<ModelVersion, DomainError> {
        ModelVersion::new(s)
    }
}

impl TryFrom<String> for ModelVersion {
    type Error = DomainError;
    fn try_from(s: String) -> Result<ModelVersion, DomainError> {
        ModelVersion::new(s)
    }
}

impl From<ModelVersion> for String {
    fn from(v: ModelVersion) -> String {
        v.0
    }
}

impl fmt::Display for ModelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A CodeDeploy-like rollout preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Preset {
    /// 10%, then 100% after 5 minutes.
    Canary10_5m,
    /// +10% every minute.
    Linear10_1m,
}

impl Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Canary10_5m => "canary10-5m",
            Preset::Linear10_1m => "linear10-1m",
        }
    }
}

impl FromStr for Preset {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Preset, DomainError> {
        match s {
            "canary10-5m" => Ok(Preset::Canary10_5m),
            "linear10-1m" => Ok(Preset::Linear10_1m),
            other => Err(DomainError::Preset(other.to_string())),
        }
    }
}

impl TryFrom<String> for Preset {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Preset, DomainError> {
        s.parse()
    }
}

impl From<Preset> for String {
    fn from(p: Preset) -> String {
        p.as_str().to_string()
    }
}

/// What `up` does with a new version once the alias exists (`rollout.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum RolloutStrategy {
    Weight,
    Steps,
    Promote,
    Preset(Preset),
    /// Shadow the candidate for `rollout.shadow_window`, then the canary10 steps, each gated on its verdict.
    ShadowThenCanary,
}

impl RolloutStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStrategy::Weight => "weight",
            RolloutStrategy::Steps => "steps",
            RolloutStrategy::Promote => "promote",
            RolloutStrategy::Preset(p) => p.as_str(),
            RolloutStrategy::ShadowThenCanary => "shadow-then-canary",
        }
    }
}

impl FromStr for RolloutStrategy {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<RolloutStrategy, DomainError> {
        match s {
            "weight" => Ok(RolloutStrategy::Weight),
            "steps" => Ok(RolloutStrategy::Steps),
            "promote" => Ok(RolloutStrategy::Promote),
            "shadow-then-canary" => Ok(RolloutStrategy::ShadowThenCanary),
            other => other.parse().map(RolloutStrategy::Preset).map_err(|_| DomainError::Strategy(other.to_string())),
        }
    }
}

impl TryFrom<String> for RolloutStrategy {
    type Error = DomainError;
    fn try_from(s: String) -> Result<RolloutStrategy, DomainError> {
        s.parse()
    }
}

impl From<RolloutStrategy> for String {
    fn from(s: RolloutStrategy) -> String {
        s.as_str().to_string()
    }
}

/// A humantime duration (`5m`, `30s`), kept as the text it was written as so config round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(std::time::Duration);

impl Duration {
    pub fn from_std(d: std::time::Duration) -> Duration {
        Duration(d)
    }

    /// A flag's value; humantime's own error keeps clap's usage error (exit 2) as before.
    pub fn parse_flag(s: &str) -> Result<Duration, humantime::DurationError> {
        humantime::parse_duration(s).map(Duration)
    }

    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Duration, DomainError> {
        humantime::parse_duration(s).map(Duration).map_err(|_| DomainError::Duration(s.to_string()))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `sha256:<64 hex>`, as a registry serves it: what pins an image's exact bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ImageDigest(String);

impl ImageDigest {
    pub fn parse(s: &str) -> Result<ImageDigest, DomainError> {
        let ok = s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(DomainError::Digest(s.to_string()));
        }
        Ok(ImageDigest(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ImageDigest {
    type Error = DomainError;
    fn try_from(s: String) -> Result<ImageDigest, DomainError> {
        ImageDigest::parse(&s)
    }
}

impl From<ImageDigest> for String {
    fn from(d: ImageDigest) -> String {
        d.0
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_live_strictly_between_zero_and_one() {
        assert_eq!(Weight::new(0.1).unwrap().get(), 0.1);
        for w in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let e = Weight::new(w).unwrap_err();
            assert!(e.to_string().contains("greater than 0 and less than 1"), "{e}");
            assert!(e.help().contains("--promote"));
        }
        assert!(Weight::parse_flag("abc").unwrap_err().downcast_ref::<DomainError>().is_none());
        assert!(Weight::parse_flag("1.5").unwrap_err().downcast_ref::<DomainError>().is_some());
        assert!(serde_json::from_str::<Weight>("1.5").is_err());
        assert_eq!(serde_json::to_string(&Weight::new(0.25).unwrap()).unwrap(), "0.25");
    }

    #[test]
    fn versions_are_published_numbers() {
        assert_eq!(Version::parse(" 4 ").unwrap().number(), 4);
        assert_eq!(Version::parse("$LATEST"), Err(DomainError::Latest("$LATEST".into())));
        assert!(matches!(Version::parse("abc"), Err(DomainError::NotANumber(_))));
        assert!(matches!(Version::parse("0"), Err(DomainError::NotANumber(_))));
        assert_eq!(serde_json::to_string(&Version::parse("3").unwrap()).unwrap(), "\"3\"");
    }

    #[test]
    fn model_versions_fit_an_s3_key() {
        assert_eq!(ModelVersion::new("v4").unwrap().as_str(), "v4");
        assert!(ModelVersion::new("").is_err());
        assert!(ModelVersion::new("a/b").unwrap_err().to_string().contains("no `/`"));
    }

    #[test]
    fn strategies_presets_durations_and_digests_parse_from_their_text() {
        assert_eq!("weight".parse(), Ok(RolloutStrategy::Weight));
        assert_eq!("canary10-5m".parse(), Ok(RolloutStrategy::Preset(Preset::Canary10_5m)));
        assert!("fast".parse::<RolloutStrategy>().unwrap_err().to_string().contains("canary10-5m"));
        assert!("fast".parse::<Preset>().unwrap_err().help().contains("canary10-5m"));
        assert_eq!("5m".parse::<Duration>().unwrap().get(), std::time::Duration::from_secs(300));
        assert_eq!(serde_json::to_string(&"90s".parse::<Duration>().unwrap()).unwrap(), "\"1m 30s\"");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ImageDigest::parse(&d).unwrap().as_str(), d);
        assert!(ImageDigest::parse("sha256:xyz").is_err());
    }
}
