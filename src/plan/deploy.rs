//! The deploy plan (create or update the function, publish, first alias) and prune's version selection.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use mlambda_runtime::env;

use super::lambda::{Alias, Code, FunctionInfo, FunctionSpec};
use crate::domain::{ImageDigest, ManagedBy, ModelVersion, PackageType};
use crate::error::{Error, Result};

/// The description of a published version: which model and which code (`image sha256:…` or `zip sha256:…`).
pub fn version_description(model_version: &ModelVersion, package: PackageType, digest: &ImageDigest) -> String {
    format!("model {model_version} {package} {digest}")
}

/// Where the runtime reads the model at cold start.
#[derive(Debug, Clone, Copy)]
pub enum ModelSource<'a> {
    S3 {
        bucket: &'a str,
        key: &'a str,
    },
    /// A file: baked into the image or zip, or a local file for `invoke --local`.
    File(&'a str),
}

/// The environment the runtime reads at cold start, from `model.*` and `alarms.namespace`: the one place
/// deploy and `invoke --local` get it from.
pub fn runtime_env(
    model: &crate::config::Model,
    namespace: &str,
    version: &ModelVersion,
    source: ModelSource<'_>,
    sha256: Option<&str>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        (env::MODEL_VERSION.to_string(), version.to_string()),
        (env::METRICS_NAMESPACE.to_string(), namespace.to_string()),
    ]);
    match source {
        ModelSource::S3 { bucket, key } => {
            vars.insert(env::MODEL_BUCKET.to_string(), bucket.to_string());
            vars.insert(env::MODEL_KEY.to_string(), key.to_string());
        }
        ModelSource::File(path) => {
            vars.insert(env::MODEL_PATH.to_string(), path.to_string());
        }
    }
    if let Some(sha256) = sha256 {
        vars.insert(env::MODEL_SHA256.to_string(), sha256.to_string());
    }
    // a model with named inputs takes its field names from the graph
    if let Some(features) = &model.features {
        vars.insert(env::MODEL_FEATURES.to_string(), features.join(","));
    }
    if let Some(field) = &model.id_field {
        vars.insert(env::MODEL_ID_FIELD.to_string(), field.clone());
    }
    if let Some(log) = &model.log_predictions {
        vars.insert(env::LOG_PREDICTIONS.to_string(), log.env_value());
    }
    vars
}

/// Every variable [`runtime_env`] may set: the model's part of a function's environment. Under Terraform these
/// are the only variables mlambda writes, and the ones the exported HCL leaves to it.
pub const MODEL_ENV_KEYS: [&str; 9] = [
    env::MODEL_VERSION,
    env::METRICS_NAMESPACE,
    env::MODEL_BUCKET,
    env::MODEL_KEY,
    env::MODEL_PATH,
    env::MODEL_SHA256,
    env::MODEL_FEATURES,
    env::MODEL_ID_FIELD,
    env::LOG_PREDICTIONS,
];

/// `existing` with its model variables replaced by `model`'s: a model key `model` no longer sets goes (a baked
/// model drops `MODEL_BUCKET`), every other variable stays exactly as it was.
pub fn merge_env(existing: &BTreeMap<String, String>, model: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = existing
        .iter()
        .filter(|(k, _)| !MODEL_ENV_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(model.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The spec a deploy writes to a function Terraform owns: its role, memory, timeout, architecture and
/// description as `$LATEST` has them, so writing the spec changes none of them, and its environment with the
/// model's variables merged in.
pub fn under_terraform(spec: FunctionSpec, latest: &FunctionInfo) -> FunctionSpec {
    let architecture = if latest.architecture.is_empty() { spec.architecture } else { latest.architecture.clone() };
    FunctionSpec {
        role: latest.role.clone(),
        memory: latest.memory,
        timeout: latest.timeout,
        architecture,
        env: merge_env(&latest.env, &spec.env),
        description: latest.description.clone(),
        managed_by: ManagedBy::Terraform,
        ..spec
    }
}

/// What must hold before mlambda deploys to a function Terraform owns: Terraform created the function and the
/// alias, the alias serves a published version (Lambda weighs only those), and the code mlambda builds for
/// `architecture` runs on the function.
pub fn check_terraform(function: &str, alias: &str, architecture: &str, current: &Current) -> Result<()> {
    let Some((latest, _)) = &current.latest else {
        return Err(Error::user(format!(
            "function `{function}` does not exist, and `function.managed_by: terraform` says Terraform creates it"
        ))
        .help(
            "run `terraform apply` first (`mlambda export terraform` writes the HCL), or set \
             `function.managed_by: mlambda` to let mlambda create it",
        ));
    };
    let Some(a) = &current.alias else {
        return Err(Error::user(format!(
            "alias `{alias}` of function `{function}` does not exist, and `function.managed_by: terraform` says \
             Terraform creates it"
        ))
        .help(format!(
            "add an `aws_lambda_alias` named `{alias}` to your Terraform and run `terraform apply` (`mlambda export \
             terraform` writes one), or set `function.alias` to the alias Terraform made"
        )));
    };
    if a.primary.eq_ignore_ascii_case("$LATEST") {
        return Err(Error::user(format!(
            "alias `{alias}` of function `{function}` points at `$LATEST`, and Lambda shifts traffic only between \
             published versions"
        ))
        .help(
            "in Terraform, set `publish = true` on the function and `function_version = \
             aws_lambda_function.NAME.version` on the alias (as `mlambda export terraform` writes them), apply, then \
             deploy again",
        ));
    }
    if !latest.architecture.is_empty() && latest.architecture != architecture {
        return Err(Error::user(format!(
            "`function.architecture` is {architecture}, but Terraform's function `{function}` runs on {}: the code \
             mlambda builds would not start there",
            latest.architecture
        ))
        .help(format!(
            "set `function.architecture: {}` in mlambda.yaml, or change `architectures` in Terraform",
            latest.architecture
        )));
    }
    Ok(())
}

/// What a deploy to a function Terraform owns writes, and what it leaves to Terraform.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerraformScope {
    pub mlambda_sets: Vec<String>,
    pub terraform_keeps: Vec<String>,
}

impl TerraformScope {
    fn of(spec: &FunctionSpec, alias: &str) -> TerraformScope {
        let (model, other): (Vec<&String>, Vec<&String>) =
            spec.env.keys().partition(|k| MODEL_ENV_KEYS.contains(&k.as_str()));
        let join = |keys: &[&String]| keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        let mut keeps = vec![
            "the function, its alias and its role: never created, deleted or reconfigured".to_string(),
            format!("role {}", spec.role),
            format!("memory {} MB, timeout {} s, {}", spec.memory, spec.timeout, spec.architecture),
            "the function's description and tags".to_string(),
        ];
        if !other.is_empty() {
            keeps.push(format!("environment {}", join(&other)));
        }
        TerraformScope {
            mlambda_sets: vec![
                format!("code: {}", spec.code),
                format!("environment {}", join(&model)),
                "published versions".to_string(),
                format!("alias `{alias}`: its version and routing weights"),
            ],
            terraform_keeps: keeps,
        }
    }
}

/// Lambda cannot change a function's package type: the change is refused before any call, with the fix.
pub fn package_change(current: &Current, wanted: PackageType) -> Option<PackageType> {
    let (latest, _) = current.latest.as_ref()?;
    latest.package_type.filter(|have| *have != wanted)
}

/// What the cloud holds now.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// `$LATEST` and its image URI; `None` when the function does not exist.
    pub latest: Option<(FunctionInfo, Option<String>)>,
    /// The newest published version.
    pub newest_published: Option<FunctionInfo>,
    pub alias: Option<Alias>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum FunctionStep {
    Create,
    /// Code (image, architecture) and configuration changes; both empty means `$LATEST` is as desired.
    Update {
        code: Vec<FieldDiff>,
        config: Vec<FieldDiff>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum PublishStep {
    Publish { description: String },
    UpToDate { version: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum AliasStep {
    /// The first deploy: the alias takes 100% on the version this deploy publishes (or found up to date).
    Create { name: String },
    /// Later deploys leave traffic to `mlambda rollout`.
    Keep { name: String, primary: String, routing: BTreeMap<String, f64> },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployPlan {
    pub function: String,
    pub spec: FunctionSpec,
    pub function_step: FunctionStep,
    pub publish: PublishStep,
    pub alias: AliasStep,
    /// Set when Terraform owns the function (`function.managed_by: terraform`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terraform: Option<TerraformScope>,
}

impl DeployPlan {
    /// True when the deploy changes nothing but, perhaps, the alias.
    pub fn function_unchanged(&self) -> bool {
        matches!(&self.function_step, FunctionStep::Update { code, config } if code.is_empty() && config.is_empty())
    }
}

fn diff(out: &mut Vec<FieldDiff>, field: &str, from: impl ToString, to: impl ToString) {
    let (from, to) = (from.to_string(), to.to_string());
    if from != to {
        out.push(FieldDiff { field: field.to_string(), from, to });
    }
}

fn env_diffs(out: &mut Vec<FieldDiff>, from: &BTreeMap<String, String>, to: &BTreeMap<String, String>) {
    let keys: BTreeSet<&String> = from.keys().chain(to.keys()).collect();
    for k in keys {
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
        diff(out, &format!("env.{k}"), show(from.get(k)), show(to.get(k)));
    }
}

/// Does a published version serve exactly what `spec` asks for, with `$LATEST`'s code?
fn matches_spec(v: &FunctionInfo, latest: &FunctionInfo, spec: &FunctionSpec) -> bool {
    v.code_sha256 == latest.code_sha256
        && v.description == spec.version_description
        && v.role == spec.role
        && v.memory == spec.memory
        && v.timeout == spec.timeout
        && v.env == spec.env
}

pub fn plan(spec: &FunctionSpec, alias: &str, current: &Current) -> DeployPlan {
    let terraform = (spec.managed_by == ManagedBy::Terraform).then(|| TerraformScope::of(spec, alias));
    let (function_step, publish) = match &current.latest {
        None => (FunctionStep::Create, PublishStep::Publish { description: spec.version_description.clone() }),
        Some((latest, image)) => {
            let mut code = Vec::new();
            match &spec.code {
                Code::Image { image_uri } => diff(&mut code, "image", image.as_deref().unwrap_or("(none)"), image_uri),
                Code::Zip { code_sha256, .. } => diff(&mut code, "code_sha256", &latest.code_sha256, code_sha256),
            }
            // Terraform's function keeps its own architecture, role, memory, timeout and description.
            let ours = spec.managed_by == ManagedBy::Mlambda;
            if ours && !latest.architecture.is_empty() {
                diff(&mut code, "architecture", &latest.architecture, &spec.architecture);
            }
            let mut config = Vec::new();
            if ours {
                diff(&mut config, "role", &latest.role, &spec.role);
                diff(&mut config, "memory", latest.memory, spec.memory);
                diff(&mut config, "timeout", latest.timeout, spec.timeout);
                diff(&mut config, "description", &latest.description, &spec.description);
            }
            env_diffs(&mut config, &latest.env, &spec.env);
            let unchanged = code.is_empty() && config.is_empty();
            let publish = match &current.newest_published {
                Some(v) if unchanged && matches_spec(v, latest, spec) => {
                    PublishStep::UpToDate { version: v.version.clone() }
                }
                _ => PublishStep::Publish { description: spec.version_description.clone() },
            };
            (FunctionStep::Update { code, config }, publish)
        }
    };
    let alias = match &current.alias {
        None => AliasStep::Create { name: alias.to_string() },
        Some(a) => AliasStep::Keep { name: a.name.clone(), primary: a.primary.clone(), routing: a.routing.clone() },
    };
    DeployPlan { function: spec.name.clone(), spec: spec.clone(), function_step, publish, alias, terraform }
}

fn diffs(f: &mut fmt::Formatter<'_>, what: &str, d: &[FieldDiff]) -> fmt::Result {
    for x in d {
        writeln!(f, "  {what} {}: {} → {}", x.field, x.from, x.to)?;
    }
    Ok(())
}

impl fmt::Display for DeployPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.terraform {
            writeln!(f, "function `{}` is managed by Terraform (`function.managed_by: terraform`)", self.function)?;
            for s in &t.mlambda_sets {
                writeln!(f, "  mlambda sets    {s}")?;
            }
            for k in &t.terraform_keeps {
                writeln!(f, "  Terraform keeps {k}")?;
            }
        }
        match &self.function_step {
            FunctionStep::Create => {
                writeln!(f, "create function `{}`", self.function)?;
                writeln!(f, "  {}", self.spec.code)?;
                writeln!(f, "  role {}", self.spec.role)?;
                writeln!(
                    f,
                    "  memory {} MB, timeout {} s, {}",
                    self.spec.memory, self.spec.timeout, self.spec.architecture
                )?;
                for (k, v) in &self.spec.env {
                    writeln!(f, "  env {k}={v}")?;
                }
            }
            FunctionStep::Update { code, config } if code.is_empty() && config.is_empty() => {
                writeln!(f, "function `{}` is up to date", self.function)?;
            }
            FunctionStep::Update { code, config } => {
                writeln!(f, "update function `{}`", self.function)?;
                diffs(f, "code", code)?;
                diffs(f, "config", config)?;
            }
        }
        match &self.publish {
            PublishStep::Publish { description } => writeln!(f, "publish a new version: {description}")?,
            PublishStep::UpToDate { version } => writeln!(f, "publish nothing: version {version} is up to date")?,
        }
        match &self.alias {
            AliasStep::Create { name } => writeln!(f, "create alias `{name}` with 100% on that version"),
            AliasStep::Keep { name, primary, .. } => {
                writeln!(f, "leave alias `{name}` on version {primary} (`mlambda rollout` shifts traffic)")
            }
        }
    }
}

/// Which published versions `prune` deletes and which it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrunePlan {
    pub delete: Vec<String>,
    pub keep: Vec<String>,
    /// Versions kept only because an alias points or routes to them.
    pub protected: Vec<String>,
}

/// Keeps the newest `keep` versions, every version an alias points or routes to, and each alias's recorded
/// previous primary (its `--rollback` returns there); deletes the rest. All of it is read from the aliases, so
/// every operator's prune spares the same versions.
pub fn select_prune(versions: &[String], aliases: &[Alias], keep: usize) -> PrunePlan {
    let mut sorted: Vec<&String> = versions.iter().filter(|v| v.parse::<u64>().is_ok()).collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.parse::<u64>().unwrap_or(0)));
    let previous: Vec<String> = aliases
        .iter()
        .filter_map(|a| super::record::AliasRecord::parse(&a.description).previous.map(|v| v.to_string()))
        .collect();
    let used: BTreeSet<&str> = aliases
        .iter()
        .flat_map(|a| std::iter::once(a.primary.as_str()).chain(a.routing.keys().map(String::as_str)))
        .chain(previous.iter().map(String::as_str))
        .collect();
    let mut plan = PrunePlan::default();
    for (i, v) in sorted.into_iter().enumerate() {
        if i < keep {
            plan.keep.push(v.clone());
        } else if used.contains(v.as_str()) {
            plan.keep.push(v.clone());
            plan.protected.push(v.clone());
        } else {
            plan.delete.push(v.clone());
        }
    }
    plan
}

/// The zip packages (by `CodeSha256`) that only the deleted versions ran: the code of `$LATEST`, of a kept
/// version or of the last push stays, and a package no version ever ran is not this prune's to judge.
pub fn orphaned_packages<'a>(deleted: &[&'a str], in_use: &BTreeSet<&str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = deleted.iter().copied().filter(|c| !c.is_empty() && !in_use.contains(c)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG_GOOD: &str = "function:\n  name: churn\nimage:\n  repository: churn\nmodel:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: b\n  features: [a, b]\n";

    #[test]
    fn the_prediction_log_settings_are_checked_and_become_the_runtimes_env() {
        let bad = CONFIG_GOOD.to_string() + "  log_predictions: 1.5\n";
        let e = crate::error::Error::from(crate::config::parse(&bad, std::path::Path::new("m.yaml")).unwrap_err());
        assert!(e.message.contains("`model.log_predictions`") && e.message.contains("1.5"), "{}", e.message);
        let bad = CONFIG_GOOD.to_string() + "  log_predictions: some\n";
        assert!(crate::config::parse(&bad, std::path::Path::new("m.yaml")).is_err());
        let ok = CONFIG_GOOD.to_string() + "  id_field: customer_id\n  log_predictions: 0.25\n";
        let c = crate::config::parse(&ok, std::path::Path::new("m.yaml")).unwrap();
        let env = |c: &crate::config::Config| {
            let source = ModelSource::File("m");
            runtime_env(&c.model, "ns", &c.model.version, source, None)
        };
        assert_eq!((env(&c)["MODEL_ID_FIELD"].as_str(), env(&c)["LOG_PREDICTIONS"].as_str()), ("customer_id", "0.25"));
        let none = crate::config::parse(
            &(CONFIG_GOOD.to_string() + "  log_predictions: none\n"),
            std::path::Path::new("m.yaml"),
        )
        .unwrap();
        assert_eq!(env(&none)["LOG_PREDICTIONS"], "none");
    }

    #[test]
    fn only_packages_no_standing_version_runs_are_orphaned() {
        let in_use: BTreeSet<&str> = ["latest", "kept", "pushed"].into_iter().collect();
        let deleted = ["old", "kept", "old", "", "older", "pushed"];
        assert_eq!(orphaned_packages(&deleted, &in_use), vec!["old", "older"]);
        assert!(orphaned_packages(&[], &in_use).is_empty());
    }

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn mv(v: &str) -> ModelVersion {
        ModelVersion::new(v).unwrap()
    }

    fn model() -> crate::config::Model {
        let yaml = "path: m.onnx\nname: churn\nversion: v1\nbucket: b\nfeatures: [a, b]\n";
        serde_yaml::from_str(yaml).unwrap()
    }

    fn spec() -> FunctionSpec {
        let source = ModelSource::S3 { bucket: "b", key: "models/churn/v1/model.onnx" };
        FunctionSpec {
            name: "churn".into(),
            code: Code::Image { image_uri: "reg/churn@sha256:aa".into() },
            role: "arn:aws:iam::1:role/r".into(),
            memory: 512,
            timeout: 10,
            architecture: "x86_64".into(),
            env: runtime_env(&model(), "ns", &mv("v1"), source, Some("ff")),
            description: version_description(&mv("v1"), PackageType::Image, &ImageDigest::parse(DIGEST).unwrap()),
            version_description: version_description(
                &mv("v1"),
                PackageType::Image,
                &ImageDigest::parse(DIGEST).unwrap(),
            ),
            managed_by: ManagedBy::Mlambda,
        }
    }

    fn image(s: &FunctionSpec) -> Option<String> {
        Some(s.code.location())
    }

    fn zip(code_sha256: &str) -> Code {
        Code::Zip { bucket: "b".into(), key: "packages/churn/x.zip".into(), code_sha256: code_sha256.into() }
    }

    #[test]
    fn a_zip_is_a_code_change_when_lambdas_code_sha256_differs() {
        let mut s = spec();
        s.code = zip("code1");
        let mut latest = deployed(&s, "$LATEST");
        latest.package_type = Some(PackageType::Zip);
        let cur = Current { latest: Some((latest, None)), newest_published: Some(deployed(&s, "1")), alias: None };
        assert!(plan(&s, "production", &cur).function_unchanged());
        assert_eq!(package_change(&cur, PackageType::Zip), None);
        s.code = zip("code2");
        let p = plan(&s, "production", &cur);
        let FunctionStep::Update { code, .. } = &p.function_step else { panic!() };
        assert_eq!(
            (code[0].field.as_str(), code[0].from.as_str(), code[0].to.as_str()),
            ("code_sha256", "code1", "code2")
        );
        assert_eq!(package_change(&cur, PackageType::Image), Some(PackageType::Zip));
        assert_eq!(package_change(&Current::default(), PackageType::Image), None);
    }

    #[test]
    fn a_baked_model_is_a_file_and_the_log_settings_ride_along() {
        let mut m = model();
        m.features = None;
        m.id_field = Some("customer_id".into());
        let env = runtime_env(&m, "ns", &mv("v2"), ModelSource::File("/var/task/model.onnx"), None);
        assert_eq!(env["MODEL_PATH"], "/var/task/model.onnx");
        assert_eq!(env["MODEL_ID_FIELD"], "customer_id");
        for unset in ["MODEL_BUCKET", "MODEL_KEY", "MODEL_SHA256", "MODEL_FEATURES"] {
            assert!(!env.contains_key(unset), "{unset}: {env:?}");
        }
    }

    fn deployed(s: &FunctionSpec, version: &str) -> FunctionInfo {
        FunctionInfo {
            name: s.name.clone(),
            version: version.into(),
            description: s.description.clone(),
            role: s.role.clone(),
            code_sha256: "code1".into(),
            env: s.env.clone(),
            memory: s.memory,
            timeout: s.timeout,
            architecture: s.architecture.clone(),
            ..Default::default()
        }
    }

    fn alias(primary: &str, routing: &[(&str, f64)]) -> Alias {
        Alias {
            name: "production".into(),
            primary: primary.into(),
            routing: routing.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_first_deploy_creates_publishes_and_creates_the_alias() {
        let p = plan(&spec(), "production", &Current::default());
        assert_eq!(p.function_step, FunctionStep::Create);
        assert_eq!(p.publish, PublishStep::Publish { description: format!("model v1 image {DIGEST}") });
        assert_eq!(p.alias, AliasStep::Create { name: "production".into() });
        let text = p.to_string();
        assert!(text.contains("create function `churn`") && text.contains("env MODEL_FEATURES=a,b"), "{text}");
        assert_eq!(p.spec.env["MODEL_KEY"], "models/churn/v1/model.onnx");
    }

    #[test]
    fn an_unchanged_function_publishes_nothing() {
        let s = spec();
        let cur = Current {
            latest: Some((deployed(&s, "$LATEST"), image(&s))),
            newest_published: Some(deployed(&s, "1")),
            alias: Some(alias("1", &[])),
        };
        let p = plan(&s, "production", &cur);
        assert!(p.function_unchanged());
        assert_eq!(p.publish, PublishStep::UpToDate { version: "1".into() });
        assert!(matches!(p.alias, AliasStep::Keep { ref primary, .. } if primary == "1"));
        assert!(p.to_string().contains("version 1 is up to date"), "{p}");
    }

    #[test]
    fn a_changed_field_is_shown_and_publishes_without_moving_the_alias() {
        let mut s = spec();
        let cur = Current {
            latest: Some((deployed(&s, "$LATEST"), image(&s))),
            newest_published: Some(deployed(&s, "1")),
            alias: Some(alias("1", &[])),
        };
        s.memory = 1024;
        s.env.insert(env::MODEL_VERSION.into(), "v2".into());
        let p = plan(&s, "production", &cur);
        let FunctionStep::Update { code, config } = &p.function_step else { panic!("{p:?}") };
        assert!(code.is_empty());
        assert_eq!(
            config,
            &vec![
                FieldDiff { field: "memory".into(), from: "512".into(), to: "1024".into() },
                FieldDiff { field: "env.MODEL_VERSION".into(), from: "v1".into(), to: "v2".into() },
            ]
        );
        assert!(matches!(p.publish, PublishStep::Publish { .. }));
        assert!(matches!(p.alias, AliasStep::Keep { .. }));
        assert!(p.to_string().contains("config memory: 512 → 1024"), "{p}");
    }

    #[test]
    fn a_new_image_is_a_code_change() {
        let s = spec();
        let cur = Current {
            latest: Some((deployed(&s, "$LATEST"), Some("reg/churn@sha256:00".into()))),
            ..Default::default()
        };
        let p = plan(&s, "production", &cur);
        let FunctionStep::Update { code, .. } = &p.function_step else { panic!() };
        assert_eq!(code[0].field, "image");
    }

    #[test]
    fn an_interrupted_deploy_resumes_where_it_stopped() {
        let s = spec();
        // $LATEST was updated but the publish never happened: the newest version still serves the old config.
        let mut old = deployed(&s, "1");
        old.memory = 256;
        let cur =
            Current { latest: Some((deployed(&s, "$LATEST"), image(&s))), newest_published: Some(old), alias: None };
        let p = plan(&s, "production", &cur);
        assert!(p.function_unchanged());
        assert!(matches!(p.publish, PublishStep::Publish { .. }));
        // Published but the alias was never created: publish nothing, create the alias.
        let cur = Current { newest_published: Some(deployed(&s, "1")), ..cur };
        let p = plan(&s, "production", &cur);
        assert_eq!(p.publish, PublishStep::UpToDate { version: "1".into() });
        assert_eq!(p.alias, AliasStep::Create { name: "production".into() });
    }

    #[test]
    fn prune_keeps_the_newest_and_everything_an_alias_uses() {
        let versions: Vec<String> = (1..=8).map(|v| v.to_string()).collect();
        let p = select_prune(&versions, &[alias("2", &[("5", 0.1)])], 2);
        assert_eq!(p.keep, vec!["8", "7", "5", "2"]);
        assert_eq!(p.protected, vec!["5", "2"]);
        assert_eq!(p.delete, vec!["6", "4", "3", "1"]);
        // Keep 0 still never deletes the alias's versions, and $LATEST is never a candidate.
        let p = select_prune(&["$LATEST".into(), "10".into(), "9".into()], &[alias("9", &[])], 0);
        assert_eq!(p.delete, vec!["10"]);
        assert_eq!(p.keep, vec!["9"]);
    }

    #[test]
    fn prune_spares_the_previous_primary_an_alias_records_for_its_rollback() {
        let versions: Vec<String> = (1..=4).map(|v| v.to_string()).collect();
        let mut a = alias("4", &[]);
        a.description = "managed by mlambda | mlambda: previous=2".into();
        let p = select_prune(&versions, &[a], 1);
        assert_eq!(
            (p.keep, p.protected, p.delete),
            (vec!["4".into(), "2".into()], vec!["2".to_string()], vec!["3".to_string(), "1".into()])
        );
    }

    #[test]
    fn every_variable_runtime_env_sets_is_a_model_key() {
        let mut m = model();
        m.id_field = Some("id".into());
        m.log_predictions = Some(crate::config::LogPredictions::Fraction(0.5));
        let s3 = runtime_env(&m, "ns", &mv("v1"), ModelSource::S3 { bucket: "b", key: "k" }, Some("ff"));
        let file = runtime_env(&m, "ns", &mv("v1"), ModelSource::File("/m"), Some("ff"));
        for k in s3.keys().chain(file.keys()) {
            assert!(MODEL_ENV_KEYS.contains(&k.as_str()), "{k} is set by runtime_env but not a model key");
        }
        assert_eq!(s3.len() + 1, MODEL_ENV_KEYS.len(), "all but MODEL_PATH: {s3:?}");
    }

    #[test]
    fn merging_keeps_every_other_variable_and_drops_model_keys_no_longer_set() {
        let existing: BTreeMap<String, String> = [("TEAM", "ml"), ("MODEL_BUCKET", "old"), ("MODEL_VERSION", "v0")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let model: BTreeMap<String, String> = [("MODEL_PATH", "/opt/model.onnx"), ("MODEL_VERSION", "v2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let merged = merge_env(&existing, &model);
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert_eq!((merged["TEAM"].as_str(), merged["MODEL_VERSION"].as_str()), ("ml", "v2"));
        assert_eq!(merged["MODEL_PATH"], "/opt/model.onnx");
        assert!(!merged.contains_key("MODEL_BUCKET"), "a baked model has no bucket: {merged:?}");
    }

    /// `$LATEST` as Terraform made it: its own role, memory, timeout, description, and a variable of its own.
    fn terraform_latest(s: &FunctionSpec) -> FunctionInfo {
        let mut latest = deployed(s, "$LATEST");
        latest.role = "arn:aws:iam::1:role/team".into();
        latest.memory = 2048;
        latest.timeout = 60;
        latest.description = "owned by the team".into();
        latest.env = BTreeMap::from([("TEAM".to_string(), "ml".to_string())]);
        latest
    }

    #[test]
    fn under_terraform_only_the_code_and_the_model_variables_change() {
        let latest = terraform_latest(&spec());
        let s = under_terraform(spec(), &latest);
        assert_eq!((s.role.as_str(), s.memory, s.timeout), ("arn:aws:iam::1:role/team", 2048, 60));
        assert_eq!((s.description.as_str(), s.managed_by), ("owned by the team", ManagedBy::Terraform));
        assert_eq!(s.version_description, spec().version_description, "versions still say what they serve");
        assert_eq!(s.env["TEAM"], "ml");
        let cur = Current {
            latest: Some((latest, Some("reg/churn@sha256:00".into()))),
            newest_published: None,
            alias: Some(alias("1", &[])),
        };
        let p = plan(&s, "production", &cur);
        let FunctionStep::Update { code, config } = &p.function_step else { panic!("{p:?}") };
        assert_eq!(code.iter().map(|d| d.field.as_str()).collect::<Vec<_>>(), vec!["image"]);
        assert!(
            !config.is_empty()
                && config.iter().all(|d| d.field.starts_with("env.MODEL_") || d.field == "env.METRICS_NAMESPACE"),
            "{config:?}"
        );
        assert!(!config.iter().any(|d| d.field == "env.TEAM"), "{config:?}");
        assert_eq!(p.publish, PublishStep::Publish { description: spec().version_description });
        let t = p.terraform.as_ref().expect("the terraform scope");
        assert!(t.terraform_keeps.iter().any(|k| k.contains("memory 2048 MB, timeout 60 s")), "{t:?}");
        assert!(t.terraform_keeps.iter().any(|k| k == "environment TEAM"), "{t:?}");
        assert!(t.mlambda_sets.iter().any(|k| k.contains("MODEL_VERSION")), "{t:?}");
        let text = p.to_string();
        assert!(
            text.contains("is managed by Terraform") && text.contains("Terraform keeps role arn:aws:iam::1:role/team"),
            "{text}"
        );
        assert!(!text.contains("config memory") && !text.contains("config role"), "{text}");
        assert!(plan(&spec(), "production", &cur).terraform.is_none());
    }

    #[test]
    fn terraform_must_have_made_the_function_and_a_published_alias_on_the_right_architecture() {
        let s = spec();
        let e = check_terraform("churn", "production", "x86_64", &Current::default()).unwrap_err();
        assert!(
            e.message.contains("function `churn` does not exist") && e.message.contains("Terraform creates it"),
            "{}",
            e.message
        );
        assert!(e.help.as_deref().is_some_and(|h| h.contains("terraform apply")), "{:?}", e.help);
        let mut cur = Current { latest: Some((terraform_latest(&s), None)), ..Default::default() };
        let e = check_terraform("churn", "production", "x86_64", &cur).unwrap_err();
        assert!(
            e.message.contains("alias `production`") && e.message.contains("Terraform creates it"),
            "{}",
            e.message
        );
        cur.alias = Some(alias("$LATEST", &[]));
        let e = check_terraform("churn", "production", "x86_64", &cur).unwrap_err();
        assert!(
            e.message.contains("`$LATEST`") && e.help.as_deref().is_some_and(|h| h.contains("publish = true")),
            "{e:?}"
        );
        cur.alias = Some(alias("1", &[]));
        assert!(check_terraform("churn", "production", "x86_64", &cur).is_ok());
        let e = check_terraform("churn", "production", "arm64", &cur).unwrap_err();
        assert!(
            e.message.contains("`function.architecture` is arm64") && e.message.contains("x86_64"),
            "{}",
            e.message
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn the_first_deploy_plan_as_json() {
        insta::assert_json_snapshot!("deploy_first", plan(&spec(), "production", &Current::default()));
    }

    #[test]
    fn an_update_plan_as_json() {
        let mut s = spec();
        let cur = Current {
            latest: Some((deployed(&s, "$LATEST"), image(&s))),
            newest_published: Some(deployed(&s, "1")),
            alias: Some(alias("1", &[("2", 0.1)])),
        };
        s.memory = 1024;
        s.code = Code::Image { image_uri: "reg/churn@sha256:bb".into() };
        insta::assert_json_snapshot!("deploy_update", plan(&s, "production", &cur));
    }
}
