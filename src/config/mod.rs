//! The `mlambda.yaml` schema and its loading: the only code that reads YAML.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::{Duration, ManagedBy, ModelVersion, PackageType, RolloutStrategy, Weight};
use crate::error::Error;

pub mod evidence;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub function: Function,
    /// Required for `function.package: image`; a zip function has no image.
    #[serde(default)]
    pub image: Image,
    pub model: Model,
    /// Where `function.package: zip` uploads its zip.
    #[serde(default)]
    pub package: Package,
    #[serde(default)]
    pub alarms: Alarms,
    #[serde(default)]
    pub rollout: Rollout,
    #[serde(default)]
    pub batch: Batch,
}

/// `mlambda batch run`'s settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The Step Functions execution role's ARN; without it, `batch run --create-role` makes one that may invoke
    /// only this function and read only the run's prefix.
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Function {
    /// Lambda function name.
    pub name: String,
    /// MB, 128..=10240.
    #[serde(default = "default_memory")]
    pub memory: i32,
    /// Seconds, 1..=900.
    #[serde(default = "default_timeout")]
    pub timeout: i32,
    #[serde(default)]
    pub architecture: Architecture,
    /// Execution role ARN; without it, `deploy --create-role` makes one.
    #[serde(default)]
    pub role: Option<String>,
    /// The alias callers use.
    #[serde(default = "default_alias")]
    pub alias: String,
    /// `image` (ECR) or `zip` (`provided.al2023` from S3, the fastest cold start and no Docker).
    #[serde(default)]
    pub package: PackageType,
    /// `mlambda` (the default) or `terraform`: Terraform creates the function, its alias and role, and mlambda
    /// moves only the code, the model's environment, versions and traffic (`mlambda export terraform`).
    #[serde(default, deserialize_with = "field::managed_by")]
    pub managed_by: ManagedBy,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The Docker platform string for a single-platform image.
    pub fn platform(self) -> &'static str {
        match self {
            Architecture::X86_64 => "linux/amd64",
            Architecture::Arm64 => "linux/arm64",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// ECR repository name.
    #[serde(default)]
    pub repository: String,
    /// Registry host override (`127.0.0.1:5000`); default is the ECR endpoint.
    #[serde(default)]
    pub registry: Option<String>,
    /// Base image; `scratch` needs nothing else because `bootstrap` is static.
    #[serde(default = "default_base")]
    pub base: String,
    /// Image tag; default `<model version>-<content hash>`.
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default = "yes")]
    pub scan_on_push: bool,
    #[serde(default = "yes")]
    pub immutable_tags: bool,
}

impl Default for Image {
    fn default() -> Self {
        Image {
            repository: String::new(),
            registry: None,
            base: default_base(),
            tag: None,
            scan_on_push: true,
            immutable_tags: true,
        }
    }
}

/// `package:`: where a zip package goes. Its key is content-addressed, `<prefix>/<function>/<sha256>.zip`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// The bucket; default `model.bucket`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// The key prefix; default `packages`.
    #[serde(default)]
    pub prefix: Option<String>,
}

impl Config {
    /// The bucket a zip package goes to: `package.bucket`, else `model.bucket`.
    pub fn package_bucket(&self) -> &str {
        self.package.bucket.as_deref().unwrap_or(&self.model.bucket)
    }

    /// The key prefix of zip packages: `package.prefix`, else `packages`.
    pub fn package_prefix(&self) -> &str {
        self.package.prefix.as_deref().unwrap_or("packages")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The ONNX file, relative to mlambda.yaml.
    pub path: PathBuf,
    /// Model name: the S3 key is `<prefix>/<name>/<version>/model.onnx`.
    pub name: String,
    #[serde(deserialize_with = "field::model_version")]
    pub version: ModelVersion,
    pub bucket: String,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Column names of a model with one float `[rows, k]` input, in order; left out for a model with
    /// named inputs (a `ColumnTransformer` export), whose input names are the request's fields.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// Put the model in the image instead of fetching it from S3 at cold start.
    #[serde(default)]
    pub bake: bool,
    /// Reference rows the model must reproduce before upload.
    #[serde(default)]
    pub reference: Option<PathBuf>,
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The request field whose value each prediction log line carries as `id` (e.g. `customer_id`), so
    /// `mlambda report --outcomes` can join predictions with what happened.
    #[serde(default)]
    pub id_field: Option<String>,
    /// Which invocations write prediction log lines: `all` (the runtime's default), `none`, or a fraction.
    #[serde(default)]
    pub log_predictions: Option<LogPredictions>,
}

/// `model.log_predictions`: a word or a sampling fraction in [0, 1].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LogPredictions {
    Fraction(f64),
    Word(String),
}

impl LogPredictions {
    /// The value of the runtime's `LOG_PREDICTIONS`.
    pub fn env_value(&self) -> String {
        match self {
            LogPredictions::Fraction(f) => f.to_string(),
            LogPredictions::Word(w) => w.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Alarms {
    /// EMF namespace the runtime writes `InferenceLatencyMs` to.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default = "default_latency")]
    pub latency_p99_ms: f64,
    /// Lambda `Errors` over 5 minutes above this fire.
    #[serde(default = "default_errors")]
    pub errors: f64,
    /// Lambda `Throttles` above this fire.
    #[serde(default)]
    pub throttles: f64,
    /// The fraction of answers over 5 minutes that may be 400s (the runtime's `ClientErrors`) before the
    /// `client-errors` alarms fire; in (0, 1]. The function answers these itself, so Lambda's `Errors` never sees them.
    #[serde(default = "default_client_error_rate")]
    pub client_error_rate: f64,
    /// The same for 500s (the runtime's `ModelErrors`) and the `model-errors` alarms.
    #[serde(default = "default_model_error_rate")]
    pub model_error_rate: f64,
    /// Below this many invocations in 5 minutes the error-rate alarms stay quiet, so 1 bad request out of 2 does not
    /// fire them; at least 1.
    #[serde(default = "default_error_rate_min_invocations")]
    pub error_rate_min_invocations: u32,
    /// SNS topic ARN notified on ALARM.
    #[serde(default)]
    pub sns_topic: Option<String>,
}

impl Default for Alarms {
    fn default() -> Self {
        Alarms {
            namespace: default_namespace(),
            latency_p99_ms: default_latency(),
            errors: default_errors(),
            throttles: 0.0,
            client_error_rate: default_client_error_rate(),
            model_error_rate: default_model_error_rate(),
            error_rate_min_invocations: default_error_rate_min_invocations(),
            sns_topic: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// What `up` does with a new version once the alias exists: `weight`, `steps`, a preset or `promote`.
    #[serde(default = "default_strategy", deserialize_with = "field::strategy")]
    pub strategy: RolloutStrategy,
    /// The canary weight for `strategy: weight`.
    #[serde(default = "default_weight", deserialize_with = "field::weight")]
    pub weight: Weight,
    #[serde(default)]
    pub steps: Vec<f64>,
    #[serde(default = "default_interval", deserialize_with = "field::interval")]
    pub interval: Duration,
    /// `strategy: shadow-then-canary`: how long the candidate shadows the primary before any live weight.
    #[serde(default = "default_shadow_window", deserialize_with = "field::interval")]
    pub shadow_window: Duration,
    /// `strategy: shadow-then-canary` (and `rollout --shadow-first`): the share of requests copied, in (0, 1].
    #[serde(default = "default_shadow_sample")]
    pub shadow_sample: f64,
    /// How much evidence `mlambda report` needs before it says promote.
    #[serde(default)]
    pub evidence: evidence::Thresholds,
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            strategy: default_strategy(),
            weight: default_weight(),
            steps: vec![],
            interval: default_interval(),
            shadow_window: default_shadow_window(),
            shadow_sample: default_shadow_sample(),
            evidence: Default::default(),
        }
    }
}

/// The domain-typed keys: each value is checked by its type's own rule while parsing, and the message names
/// the key (serde_yaml would only name the section).
mod field {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    use crate::domain::{Duration, ManagedBy, ModelVersion, RolloutStrategy, Weight};

    pub fn model_version<'de, D: Deserializer<'de>>(d: D) -> Result<ModelVersion, D::Error> {
        ModelVersion::new(String::deserialize(d)?)
            .map_err(|_| D::Error::custom("`model.version` must be non-empty and contain no `/`"))
    }

    pub fn weight<'de, D: Deserializer<'de>>(d: D) -> Result<Weight, D::Error> {
        let w = f64::deserialize(d)?;
        Weight::new(w)
            .map_err(|_| D::Error::custom(format!("`rollout.weight` is {w}, it must be between 0 and 1 (exclusive)")))
    }

    pub fn strategy<'de, D: Deserializer<'de>>(d: D) -> Result<RolloutStrategy, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| {
            D::Error::custom(format!(
                "`rollout.strategy` is `{s}`; use weight, steps, promote, canary10-5m or linear10-1m"
            ))
        })
    }

    pub fn managed_by<'de, D: Deserializer<'de>>(d: D) -> Result<ManagedBy, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "mlambda" => Ok(ManagedBy::Mlambda),
            "terraform" => Ok(ManagedBy::Terraform),
            _ => Err(D::Error::custom(format!(
                "`function.managed_by` is `{s}`; use `mlambda` (mlambda creates and configures the function) or \
                 `terraform` (Terraform does, and mlambda moves only its code, model and traffic)"
            ))),
        }
    }

    pub fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| D::Error::custom(format!("`rollout.interval` `{s}` is not a duration like `5m`")))
    }
}

fn default_memory() -> i32 {
    1024
}
fn default_timeout() -> i32 {
    30
}
fn default_alias() -> String {
    "production".into()
}
fn default_base() -> String {
    "scratch".into()
}
fn default_prefix() -> String {
    "models".into()
}
fn default_tolerance() -> f64 {
    1e-5
}
fn default_namespace() -> String {
    "mlambda".into()
}
fn default_latency() -> f64 {
    500.0
}
fn default_errors() -> f64 {
    5.0
}
fn default_client_error_rate() -> f64 {
    0.05
}
fn default_model_error_rate() -> f64 {
    0.01
}
fn default_error_rate_min_invocations() -> u32 {
    10
}
fn default_strategy() -> RolloutStrategy {
    RolloutStrategy::Weight
}
fn default_weight() -> Weight {
    Weight::TEN_PERCENT
}
fn default_interval() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(300))
}
fn default_shadow_window() -> Duration {
    Duration::from_std(std::time::Duration::from_secs(3600))
}
fn default_shadow_sample() -> f64 {
    0.2
}
fn yes() -> bool {
    true
}

/// A loaded config and the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    pub dir: PathBuf,
}

impl Loaded {
    /// A path from the config, relative to the config file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// Why mlambda.yaml cannot be used; each names the file (and the line, or the key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config `{}{at}`: {source}", path.display())]
    Syntax { path: PathBuf, at: String, source: serde_yaml::Error },
    #[error("invalid config `{}`: `{field}` {why}", path.display())]
    Invalid { path: PathBuf, field: &'static str, why: String },
}

/// Every config error is the user's to fix (exit 1).
impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        let help = match &e {
            ConfigError::Read { .. } => "run `mlambda init` to create one, or pass `--config PATH`".to_string(),
            ConfigError::Syntax { .. } => "fix the key named above; `mlambda init` writes a commented example".into(),
            ConfigError::Invalid { path, field, .. } => format!("edit `{field}` in {}", path.display()),
        };
        Error::user(e).help(help)
    }
}

pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let config = parse(&text, path)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    Ok(Loaded { config, path: path.to_path_buf(), dir })
}

pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let config: Config = serde_yaml::from_str(text).map_err(|source| {
        let at = source.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        ConfigError::Syntax { path: path.into(), at, source }
    })?;
    validate(&config).map_err(|(field, why)| ConfigError::Invalid { path: path.into(), field, why })?;
    Ok(config)
}

/// Rules serde cannot express; moto accepts nearly anything, so they are checked here.
fn validate(c: &Config) -> std::result::Result<(), (&'static str, String)> {
    if c.function.name.is_empty() || c.function.name.len() > 64 {
        return Err(("function.name", "must be 1 to 64 characters".into()));
    }
    if !(128..=10240).contains(&c.function.memory) {
        return Err(("function.memory", format!("is {} MB, Lambda allows 128 to 10240", c.function.memory)));
    }
    if !(1..=900).contains(&c.function.timeout) {
        return Err(("function.timeout", format!("is {} s, Lambda allows 1 to 900", c.function.timeout)));
    }
    if c.function.alias.is_empty() || c.function.alias.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(("function.alias", "must be a name, not a version number".into()));
    }
    if c.function.package == PackageType::Image && c.image.repository.is_empty() {
        return Err((
            "image.repository",
            "is required for `function.package: image`: name the ECR repository, or set `function.package: zip`".into(),
        ));
    }
    if c.image.repository != c.image.repository.to_lowercase() {
        return Err(("image.repository", "must be a lowercase ECR repository name".into()));
    }
    if c.package.bucket.as_deref() == Some("") {
        return Err(("package.bucket", "is empty: name an S3 bucket, or leave it out to use `model.bucket`".into()));
    }
    if let Some(features) = &c.model.features {
        if features.is_empty() {
            return Err((
                "model.features",
                "is empty: list the model's input columns in order, or leave the key out for a model with named \
                 inputs"
                    .into(),
            ));
        }
        if let Some(dup) = features.iter().enumerate().find(|(i, f)| features[..*i].contains(f)) {
            return Err(("model.features", format!("lists `{}` twice", dup.1)));
        }
    }
    match &c.model.log_predictions {
        Some(LogPredictions::Fraction(f)) if !(0.0..=1.0).contains(f) => {
            return Err(("model.log_predictions", format!("is {f}; use all, none or a fraction between 0 and 1")));
        }
        Some(LogPredictions::Word(w)) if w != "all" && w != "none" => {
            return Err(("model.log_predictions", format!("is `{w}`; use all, none or a fraction between 0 and 1")));
        }
        _ => {}
    }
    if c.model.id_field.as_deref().is_some_and(|f| f.trim().is_empty()) {
        return Err((
            "model.id_field",
            "is empty: name the request field that identifies a row, or leave it out".into(),
        ));
    }
    if c.model.name.is_empty() || c.model.name.contains('/') {
        return Err(("model.name", "must be non-empty and contain no `/`".into()));
    }
    if c.model.bucket.is_empty() {
        return Err(("model.bucket", "must name an S3 bucket".into()));
    }
    if c.model.tolerance.is_nan() || c.model.tolerance <= 0.0 {
        return Err(("model.tolerance", "must be greater than 0".into()));
    }
    for (field, rate) in [
        ("alarms.client_error_rate", c.alarms.client_error_rate),
        ("alarms.model_error_rate", c.alarms.model_error_rate),
    ] {
        // NaN fails the range test too, so it is refused with the same words.
        if !(rate > 0.0 && rate <= 1.0) {
            return Err((field, format!("is {rate}; use a fraction of answers above 0 and at most 1, e.g. 0.05")));
        }
    }
    if c.alarms.error_rate_min_invocations == 0 {
        return Err((
            "alarms.error_rate_min_invocations",
            "is 0; use at least 1, or the error-rate alarms fire on a single bad request".into(),
        ));
    }
    if !(c.rollout.shadow_sample > 0.0 && c.rollout.shadow_sample <= 1.0) {
        let sample = c.rollout.shadow_sample;
        return Err((
            "rollout.shadow_sample",
            format!("is {sample}; use a share of requests above 0 and at most 1, e.g. 0.2"),
        ));
    }
    if c.rollout.strategy == RolloutStrategy::Steps && c.rollout.steps.is_empty() {
        return Err(("rollout.steps", "must list the weights to step through, e.g. [0.1, 0.5, 1]".into()));
    }
    c.rollout.evidence.validate()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "function:\n  name: churn\nimage:\n  repository: churn\nmodel:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: b\n  features: [a, b]\n";

    #[test]
    fn a_zip_function_needs_no_image_and_an_image_function_needs_its_repository() {
        let zip = "function:\n  name: churn\n  package: zip\nmodel:\n  path: m.onnx\n  name: churn\n  version: v1\n  bucket: b\n";
        let c = parse(zip, Path::new("m.yaml")).unwrap();
        assert_eq!(c.function.package, PackageType::Zip);
        assert_eq!((c.package_bucket(), c.package_prefix()), ("b", "packages"));
        let c = parse(&(zip.to_string() + "package:\n  bucket: code\n  prefix: zips\n"), Path::new("m.yaml")).unwrap();
        assert_eq!((c.package_bucket(), c.package_prefix()), ("code", "zips"));
        let image = zip.replace("  package: zip\n", "");
        let e = Error::from(parse(&image, Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("`image.repository`") && e.message.contains("package: zip"), "{}", e.message);
        let e = Error::from(parse(&zip.replace("zip", "tarball"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("function.package") || e.message.contains("tarball"), "{}", e.message);
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let c = parse(GOOD, Path::new("mlambda.yaml")).unwrap();
        assert_eq!(c.function.alias, "production");
        assert_eq!(c.function.memory, 1024);
        assert_eq!(c.image.base, "scratch");
        assert_eq!(c.alarms.latency_p99_ms, 500.0);
        assert_eq!(c.rollout.weight.get(), 0.1);
        assert_eq!(c.rollout.interval.get(), std::time::Duration::from_secs(300));
    }

    #[test]
    fn an_unknown_key_names_the_key_the_file_and_the_line() {
        let text = GOOD.replace("  name: churn\nimage", "  name: churn\n  memroy: 512\nimage");
        let e = Error::from(parse(&text, Path::new("cfg/mlambda.yaml")).unwrap_err());
        assert!(e.message.contains("unknown field `memroy`"), "{}", e.message);
        assert!(e.message.contains("cfg/mlambda.yaml:3"), "{}", e.message);
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn a_wrong_type_and_a_missing_field_are_named() {
        let text = GOOD.replace("name: churn\nimage", "name: churn\n  memory: lots\nimage");
        let e = Error::from(parse(&text, Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("memory") && e.message.contains("invalid type"), "{}", e.message);
        let e = Error::from(parse(&GOOD.replace("  bucket: b\n", ""), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("missing field `bucket`"), "{}", e.message);
    }

    #[test]
    fn rules_serde_cannot_express_are_checked() {
        let e =
            Error::from(parse(&GOOD.replace("features: [a, b]", "features: [a, a]"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("`model.features` lists `a` twice"), "{}", e.message);
        let e = Error::from(parse(&format!("{GOOD}rollout:\n  weight: 1.5\n"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("rollout.weight"), "{}", e.message);
        let e = Error::from(parse(&GOOD.replace("version: v1", "version: a/b"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("model.version") && e.message.contains("no `/`"), "{}", e.message);
        let e = Error::from(parse(&format!("{GOOD}rollout:\n  strategy: fast\n"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("rollout.strategy") && e.message.contains("canary10-5m"), "{}", e.message);
        let e = Error::from(parse(&format!("{GOOD}rollout:\n  interval: soon\n"), Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("rollout.interval"), "{}", e.message);
    }

    #[test]
    fn managed_by_is_mlambda_or_terraform_and_anything_else_names_the_key() {
        assert_eq!(parse(GOOD, Path::new("m.yaml")).unwrap().function.managed_by, ManagedBy::Mlambda);
        let with = |v: &str| {
            parse(
                &GOOD.replace("  name: churn\nimage", &format!("  name: churn\n  managed_by: {v}\nimage")),
                Path::new("m.yaml"),
            )
        };
        assert_eq!(with("terraform").unwrap().function.managed_by, ManagedBy::Terraform);
        assert_eq!(with("mlambda").unwrap().function.managed_by, ManagedBy::Mlambda);
        for bad in ["pulumi", "Terraform", "''"] {
            let e = Error::from(with(bad).unwrap_err());
            assert!(e.message.contains("`function.managed_by`"), "{bad}: {}", e.message);
            assert!(e.message.contains("`mlambda`") && e.message.contains("`terraform`"), "{bad}: {}", e.message);
            assert!(e.message.contains("m.yaml:2"), "the file and line: {}", e.message);
            assert_eq!(e.exit_code(), 1);
        }
    }

    #[test]
    fn the_error_rate_keys_default_and_are_checked() {
        let c = parse(GOOD, Path::new("m.yaml")).unwrap();
        assert_eq!(
            (c.alarms.client_error_rate, c.alarms.model_error_rate, c.alarms.error_rate_min_invocations),
            (0.05, 0.01, 10)
        );
        let set = |kv: &str| parse(&format!("{GOOD}alarms:\n  {kv}\n"), Path::new("m.yaml"));
        let c = set("client_error_rate: 1").unwrap();
        assert_eq!(c.alarms.client_error_rate, 1.0);
        for (kv, field) in [
            ("client_error_rate: 0", "`alarms.client_error_rate`"),
            ("client_error_rate: 5", "`alarms.client_error_rate`"),
            ("model_error_rate: -0.1", "`alarms.model_error_rate`"),
            ("model_error_rate: .nan", "`alarms.model_error_rate`"),
            ("error_rate_min_invocations: 0", "`alarms.error_rate_min_invocations`"),
        ] {
            let e = Error::from(set(kv).unwrap_err());
            assert!(e.message.contains(field), "{kv}: {}", e.message);
            assert!(e.help.as_deref().is_some_and(|h| h.contains(&field[1..field.len() - 1])), "{kv}: {:?}", e.help);
        }
        let e = Error::from(set("error_rate_min_invocations: -1").unwrap_err());
        assert!(e.message.contains("error_rate_min_invocations"), "{}", e.message);
    }
}
