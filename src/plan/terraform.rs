//! `mlambda export terraform` as pure logic: the HCL for what mlambda deploys, split into files, with a
//! `lifecycle { ignore_changes }` for exactly what mlambda moves and an `import` block for what already exists.
//!
//! Blocks are built and formatted with `hcl-rs` (escaping included); only the `#` comments above each block are
//! written by hand, since the crate's structures carry none. Arguments keep to terraform-provider-aws's
//! documented ones: Terraform itself cannot run here, so the tests check the output with a real HCL parser.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hcl::expr::{FuncCall, Traversal, TraversalOperator, Variable};
use hcl::{Block, Expression, Identifier};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::alarms::{self, AlarmSpec, Query};
use crate::plan::deploy::MODEL_ENV_KEYS;
use crate::plan::lambda::{Code, ZIP_HANDLER, ZIP_RUNTIME};
use crate::plan::{batch, naming, policy};

/// The description Terraform gives the function; mlambda never writes it under `managed_by: terraform`.
const FUNCTION_DESCRIPTION: &str = "served by mlambda; Terraform owns this function's configuration";
/// The alias's description at creation; rollouts rewrite it with their state and lease.
const ALIAS_DESCRIPTION: &str = "managed by mlambda";

/// What the export is built from: the config, and what the command read from the state file and the account.
pub struct Input<'a> {
    pub config: &'a Config,
    /// The code Terraform creates the function with: what `push` recorded, else what the function runs now.
    pub code: &'a Code,
    /// The function's environment at creation: the model's variables, merged into the function's own when it
    /// exists (so an import keeps them).
    pub env: &'a BTreeMap<String, String>,
    /// Every alarm `mlambda alarms` would write now; the export keeps the alias's own.
    pub alarms: &'a [AlarmSpec],
    /// Write the batch state machine: `batch.role` is set, or the machine or its role already exists.
    pub batch: bool,
    pub existing: &'a Existing,
}

/// What already exists in the account, so Terraform imports it instead of failing to create it.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub function: bool,
    pub alias: bool,
    /// The execution role `mlambda-<function>` (looked up only when `function.role` is not set).
    pub role: bool,
    /// Its inline policy `mlambda-execution`.
    pub role_policy: bool,
    /// Names of the function's alarms.
    pub alarms: BTreeSet<String>,
    /// The batch state machine's ARN (its import ID).
    pub state_machine: Option<String>,
    pub batch_role: bool,
}

/// One `import` block: the resource address and the ID the provider documents for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub to: String,
    pub id: String,
}

/// The export: file name → HCL text, and the imports `imports.tf` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Terraform {
    pub files: BTreeMap<String, String>,
    pub imports: Vec<Import>,
}

impl Terraform {
    /// Every file in one text, each under a `# file.tf` line: what `export terraform` prints without `--dir`.
    pub fn one_file(&self) -> String {
        self.files.iter().map(|(name, text)| format!("# ── {name} ──\n\n{text}")).collect::<Vec<_>>().join("\n")
    }
}

impl fmt::Display for Terraform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_file())
    }
}

/// A Terraform resource label from an AWS name: lowercase letters, digits and `_`, never a leading digit.
pub fn label(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    Identifier::sanitized(s).to_string()
}

/// `resource.name.attr…` as an HCL traversal (a reference, not a string).
fn reference(resource: &str, path: &[&str]) -> Expression {
    let ops: Vec<TraversalOperator> =
        path.iter().map(|p| TraversalOperator::GetAttr(Identifier::sanitized(p))).collect();
    Traversal::new(Variable::sanitized(resource), ops).into()
}

/// `environment[0].variables["KEY"]`: one variable of the function's environment, for `ignore_changes`.
fn env_variable(key: &str) -> Expression {
    Traversal::new(
        Variable::sanitized("environment"),
        [
            TraversalOperator::Index(Expression::from(0u64)),
            TraversalOperator::GetAttr(Identifier::sanitized("variables")),
            TraversalOperator::Index(Expression::from(key)),
        ],
    )
    .into()
}

fn attr_ref(name: &str) -> Expression {
    Variable::sanitized(name).into()
}

/// `jsonencode(local.NAME)`: a function call's arguments are formatted on one line, so the document itself goes
/// in a `locals` block, where it stays readable and diffable.
fn jsonencode(local: &str) -> Expression {
    FuncCall::builder("jsonencode").arg(reference("local", &[local])).build().into()
}

fn bug(message: String) -> Error {
    Error::local(message).help("this is an mlambda bug; please report it with the command you ran")
}

fn lifecycle(ignore: Vec<Expression>) -> Block {
    Block::builder("lifecycle").add_attribute(("ignore_changes", Expression::Array(ignore))).build()
}

fn object<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> Expression {
    pairs.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One block with the comment lines written above it.
struct Commented {
    comment: Vec<String>,
    block: Block,
}

/// The blocks of each file, in order.
#[derive(Default)]
struct Files {
    files: BTreeMap<&'static str, Vec<Commented>>,
    imports: Vec<(Expression, Import)>,
}

impl Files {
    fn add(&mut self, file: &'static str, comment: &[String], block: Block) {
        self.files.entry(file).or_default().push(Commented { comment: comment.to_vec(), block });
    }

    /// A `locals` block holding a JSON document, and `jsonencode` of it for the resource that uses it.
    fn json_local(&mut self, file: &'static str, comment: &str, name: &str, doc: &Value) -> Result<Expression> {
        let value = hcl::to_expression(doc).map_err(|e| bug(format!("cannot express a JSON document in HCL: {e}")))?;
        self.add(file, &lines(comment), Block::builder("locals").add_attribute((name, value)).build());
        Ok(jsonencode(name))
    }

    /// Records an import for `resource.name` when the resource exists.
    fn import_if(&mut self, exists: bool, resource: &str, name: &str, id: &str) {
        if exists {
            let to = format!("{resource}.{name}");
            self.imports.push((reference(resource, &[name]), Import { to, id: id.to_string() }));
        }
    }

    fn render(mut self) -> Result<Terraform> {
        if !self.imports.is_empty() {
            let blocks: Vec<Block> = self
                .imports
                .iter()
                .map(|(to, i)| {
                    Block::builder("import")
                        .add_attribute(("to", to.clone()))
                        .add_attribute(("id", i.id.clone()))
                        .build()
                })
                .collect();
            let comment = lines(
                "Terraform 1.5 or later adopts these: they exist in the account now (found by `mlambda export \
                 terraform`), so `terraform apply` manages them instead of failing to create them. Run `terraform \
                 plan` first to see what it would change; this file can go after the first apply.",
            );
            for (i, block) in blocks.into_iter().enumerate() {
                self.add("imports.tf", if i == 0 { &comment } else { &[] }, block);
            }
        }
        let mut files = BTreeMap::new();
        for (name, blocks) in self.files {
            let mut text = String::new();
            for (i, c) in blocks.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                for line in &c.comment {
                    text.push_str(if line.is_empty() { "#" } else { "# " });
                    text.push_str(line);
                    text.push('\n');
                }
                let block = hcl::format::to_string(&c.block).map_err(|e| bug(format!("cannot format HCL: {e}")))?;
                text.push_str(&block);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
            files.insert(name.to_string(), text);
        }
        Ok(Terraform { files, imports: self.imports.into_iter().map(|(_, i)| i).collect() })
    }
}

/// Wraps prose into comment lines of at most 100 columns.
fn lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 98 {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The whole export.
pub fn export(input: &Input<'_>) -> Result<Terraform> {
    let c = input.config;
    let f = &c.function;
    let fl = label(&f.name);
    let mut files = Files::default();

    let role_arn = match &f.role {
        Some(arn) => Expression::from(arn.as_str()),
        None => reference("aws_iam_role", &[&fl, "arn"]),
    };
    files.add("lambda.tf", &function_comment(input), function_block(input, &fl, role_arn)?);
    files.import_if(input.existing.function, "aws_lambda_function", &fl, &f.name);

    let al = label(&format!("{}_{}", f.name, f.alias));
    let alias = Block::builder("resource")
        .add_label("aws_lambda_alias")
        .add_label(al.as_str())
        .add_attribute(("name", f.alias.as_str()))
        .add_attribute(("function_name", reference("aws_lambda_function", &[&fl, "function_name"])))
        .add_attribute(("function_version", reference("aws_lambda_function", &[&fl, "version"])))
        .add_attribute(("description", ALIAS_DESCRIPTION))
        .add_block(lifecycle(vec![attr_ref("function_version"), attr_ref("routing_config"), attr_ref("description")]))
        .build();
    let comment = lines(&format!(
        "Alias `{}`: what callers invoke. Terraform creates it on the version the function publishes first; from \
         then on mlambda moves it (`mlambda rollout` sets its version and routing weights, and keeps the rollout's \
         state and lease in its description), so Terraform ignores those three.",
        f.alias
    ));
    files.add("lambda.tf", &comment, alias);
    files.import_if(input.existing.alias, "aws_lambda_alias", &al, &format!("{}/{}", f.name, f.alias));

    if f.role.is_none() {
        iam(input, &fl, &mut files)?;
    }
    alarm_blocks(input, &mut files);
    if input.batch {
        batch_blocks(input, &fl, &mut files)?;
    }
    files.render()
}

fn function_comment(input: &Input<'_>) -> Vec<String> {
    let f = &input.config.function;
    let code = match input.code {
        Code::Image { .. } => "the image (`image_uri`, always by digest)",
        Code::Zip { .. } => "the zip in S3 (`s3_bucket`, `s3_key` and its `source_code_hash`)",
    };
    let role = match &f.role {
        Some(_) => "Its role is the team's own (`function.role` in mlambda.yaml): referenced by ARN, not written here.",
        None => "Its role is written in iam.tf, as `mlambda deploy --create-role` would make it.",
    };
    lines(&format!(
        "Function `{}`. Terraform owns its configuration: role, memory, timeout, architecture, description, tags \
         and every environment variable but the model's. mlambda moves what ignore_changes lists, on each `mlambda \
         deploy`: {code} and the model's variables. It publishes versions itself; `publish = true` only gives the \
         alias a published version to start on, as Lambda shifts traffic only between published versions. Set \
         `function.managed_by: terraform` in mlambda.yaml so mlambda leaves the rest alone. {role}",
        f.name
    ))
}

fn function_block(input: &Input<'_>, fl: &str, role: Expression) -> Result<Block> {
    let f = &input.config.function;
    let b = Block::builder("resource")
        .add_label("aws_lambda_function")
        .add_label(fl)
        .add_attribute(("function_name", f.name.as_str()));
    let (b, moved) = match input.code {
        Code::Image { image_uri } => (
            b.add_attribute(("package_type", "Image")).add_attribute(("image_uri", image_uri.as_str())),
            vec![attr_ref("image_uri")],
        ),
        Code::Zip { bucket, key, code_sha256 } => (
            b.add_attribute(("package_type", "Zip"))
                .add_attribute(("s3_bucket", bucket.as_str()))
                .add_attribute(("s3_key", key.as_str()))
                .add_attribute(("source_code_hash", code_sha256.as_str()))
                .add_attribute(("runtime", ZIP_RUNTIME))
                .add_attribute(("handler", ZIP_HANDLER)),
            vec![attr_ref("s3_bucket"), attr_ref("s3_key"), attr_ref("source_code_hash")],
        ),
    };
    let mut ignore = moved;
    ignore.extend(MODEL_ENV_KEYS.iter().map(|k| env_variable(k)));
    ignore.push(attr_ref("publish"));
    let mut b = b
        .add_attribute(("role", role))
        .add_attribute(("memory_size", i64::from(f.memory)))
        .add_attribute(("timeout", i64::from(f.timeout)))
        .add_attribute(("architectures", vec![f.architecture.as_str()]))
        .add_attribute(("description", FUNCTION_DESCRIPTION))
        .add_attribute(("publish", true));
    if !input.env.is_empty() {
        b = b.add_block(Block::builder("environment").add_attribute(("variables", object(input.env))).build());
    }
    Ok(b.add_block(lifecycle(ignore)).build())
}

fn iam(input: &Input<'_>, fl: &str, files: &mut Files) -> Result<()> {
    let c = input.config;
    let name = policy::role_name(&c.function.name);
    let trust = files.json_local(
        "iam.tf",
        "Only Lambda may assume the execution role.",
        &format!("{fl}_trust_policy"),
        &policy::trust_policy(),
    )?;
    let role = Block::builder("resource")
        .add_label("aws_iam_role")
        .add_label(fl)
        .add_attribute(("name", name.as_str()))
        .add_attribute(("description", format!("mlambda execution role for `{}`", c.function.name)))
        .add_attribute(("assume_role_policy", trust))
        .build();
    let comment = lines(&format!(
        "The execution role `mlambda deploy --create-role` makes for `{}`, written because mlambda.yaml names no \
         `function.role`. `mlambda batch run` and `mlambda shadow` add inline policies of their own to it; \
         Terraform leaves inline policies it does not declare alone.",
        c.function.name
    ));
    files.add("iam.tf", &comment, role);
    files.import_if(input.existing.role, "aws_iam_role", fl, &name);

    let root = naming::model_root(&c.model.prefix, &c.model.name);
    let doc = policy::execution_policy(&c.function.name, &c.model.bucket, &root);
    let comment = format!(
        "Least privilege: the function writes only its own log group and reads only the versions of model `{}` \
         in `s3://{}/{root}`.",
        c.model.name, c.model.bucket
    );
    let doc = files.json_local("iam.tf", &comment, &format!("{fl}_execution_policy"), &doc)?;
    let inline = Block::builder("resource")
        .add_label("aws_iam_role_policy")
        .add_label(fl)
        .add_attribute(("name", policy::EXECUTION_POLICY_NAME))
        .add_attribute(("role", reference("aws_iam_role", &[fl, "name"])))
        .add_attribute(("policy", doc))
        .build();
    let comment = lines("The execution role's one inline policy, as `mlambda deploy --create-role` writes it.");
    files.add("iam.tf", &comment, inline);
    files.import_if(
        input.existing.role_policy,
        "aws_iam_role_policy",
        fl,
        &format!("{name}:{}", policy::EXECUTION_POLICY_NAME),
    );
    Ok(())
}

/// The alias's own alarms; `mlambda-<function>-<alias>-…`.
fn alias_alarms<'a>(input: &'a Input<'_>) -> impl Iterator<Item = &'a AlarmSpec> {
    let f = &input.config.function;
    let prefix = format!("{}{}-", alarms::function_prefix(&f.name), f.alias);
    input.alarms.iter().filter(move |a| a.name.starts_with(&prefix))
}

fn alarm_blocks(input: &Input<'_>, files: &mut Files) {
    let f = &input.config.function;
    let mut first = true;
    for spec in alias_alarms(input) {
        let kind = spec.name.strip_prefix(&alarms::function_prefix(&f.name)).unwrap_or(&spec.name);
        let al = label(&format!("{}_{kind}", f.name));
        // What follows the alias's traffic, which `mlambda alarms` rewrites after each rollout.
        let follows_model = spec.dimensions.iter().any(|(k, _)| k == "ModelVersion");
        let mut ignore = Vec::new();
        if follows_model {
            ignore.extend([attr_ref("dimensions"), attr_ref("alarm_description")]);
        }
        if !spec.metrics.is_empty() {
            ignore.push(attr_ref("metric_query"));
        }
        let mut comment = Vec::new();
        if first {
            comment.extend(lines(&format!(
                "The alarms of alias `{}`, as `mlambda alarms` writes them. The per-version alarms \
                 (`{}v<N>-…`) are not here: mlambda creates them for each version a rollout routes to, and they go \
                 with it.",
                f.alias,
                alarms::function_prefix(&f.name)
            )));
            comment.push(String::new());
            first = false;
        }
        comment.extend(lines(&spec.description));
        if follows_model {
            comment.extend(lines(
                "mlambda points it at the model version the alias serves, so its dimensions and description are ignored.",
            ));
        }
        if !spec.metrics.is_empty() {
            comment.extend(lines(
                "It counts every version the alias routes to; mlambda rewrites the metric queries after each rollout.",
            ));
        }
        files.add("alarms.tf", &comment, alarm_block(&al, spec, ignore));
        files.import_if(input.existing.alarms.contains(&spec.name), "aws_cloudwatch_metric_alarm", &al, &spec.name);
    }
}

fn alarm_block(al: &str, s: &AlarmSpec, ignore: Vec<Expression>) -> Block {
    let dims = |d: &[(String, String)]| object(d.iter().map(|(k, v)| (k, v)));
    let mut b = Block::builder("resource")
        .add_label("aws_cloudwatch_metric_alarm")
        .add_label(al)
        .add_attribute(("alarm_name", s.name.as_str()))
        .add_attribute(("alarm_description", s.description.as_str()))
        .add_attribute(("comparison_operator", s.comparison.as_str()))
        .add_attribute(("evaluation_periods", i64::from(s.evaluation_periods)))
        .add_attribute(("threshold", s.threshold))
        .add_attribute(("treat_missing_data", s.treat_missing_data.as_str()));
    if !s.actions.is_empty() {
        b = b.add_attribute(("alarm_actions", s.actions.clone()));
    }
    if s.metrics.is_empty() {
        b = b.add_attribute(("namespace", s.namespace.as_str())).add_attribute(("metric_name", s.metric.as_str()));
        if !s.dimensions.is_empty() {
            b = b.add_attribute(("dimensions", dims(&s.dimensions)));
        }
        if let Some(stat) = &s.statistic {
            b = b.add_attribute(("statistic", stat.as_str()));
        }
        if let Some(stat) = &s.extended_statistic {
            b = b.add_attribute(("extended_statistic", stat.as_str()));
        }
        if let Some(period) = s.period {
            b = b.add_attribute(("period", i64::from(period)));
        }
    }
    for m in &s.metrics {
        let q = Block::builder("metric_query").add_attribute(("id", m.id.as_str()));
        let q = match &m.query {
            Query::Expression(e) => q.add_attribute(("expression", e.as_str())),
            Query::Metric(stat) => {
                let mut metric = Block::builder("metric")
                    .add_attribute(("namespace", stat.namespace.as_str()))
                    .add_attribute(("metric_name", stat.name.as_str()))
                    .add_attribute(("stat", stat.stat.as_str()))
                    .add_attribute(("period", i64::from(stat.period)));
                if !stat.dimensions.is_empty() {
                    metric = metric.add_attribute(("dimensions", dims(&stat.dimensions)));
                }
                q.add_block(metric.build())
            }
        };
        b = b.add_block(q.add_attribute(("return_data", m.return_data)).build());
    }
    if !ignore.is_empty() {
        b = b.add_block(lifecycle(ignore));
    }
    b.build()
}

fn batch_blocks(input: &Input<'_>, fl: &str, files: &mut Files) -> Result<()> {
    let c = input.config;
    let function = &c.function.name;
    let bl = format!("{fl}_batch");
    let role_arn = match &c.batch.role {
        Some(arn) => Expression::from(arn.as_str()),
        None => {
            let name = batch::role_name(function);
            let trust = files.json_local(
                "batch.tf",
                "Only Step Functions may assume the batch role.",
                &format!("{bl}_trust_policy"),
                &policy::batch_trust_policy(),
            )?;
            let role = Block::builder("resource")
                .add_label("aws_iam_role")
                .add_label(bl.as_str())
                .add_attribute(("name", name.as_str()))
                .add_attribute(("description", format!("mlambda batch runs of `{function}`")))
                .add_attribute(("assume_role_policy", trust))
                .build();
            let comment = lines(
                "The Step Functions role `mlambda batch run --create-role` makes: only Step Functions may assume it. \
                 Each `mlambda batch run` adds an inline policy for its own output prefix (invoke this function, \
                 read that prefix), so none is declared here; Terraform leaves inline policies it does not declare \
                 alone.",
            );
            files.add("batch.tf", &comment, role);
            files.import_if(input.existing.batch_role, "aws_iam_role", &bl, &name);
            reference("aws_iam_role", &[&bl, "arn"])
        }
    };
    let name = batch::state_machine_name(function);
    let definition = files.json_local(
        "batch.tf",
        "The state machine's definition, exactly as mlambda writes it (`plan::batch::definition`).",
        &format!("{bl}_definition"),
        &batch::definition(function),
    )?;
    let machine = Block::builder("resource")
        .add_label("aws_sfn_state_machine")
        .add_label(bl.as_str())
        .add_attribute(("name", name.as_str()))
        .add_attribute(("role_arn", role_arn))
        .add_attribute(("definition", definition))
        .add_block(lifecycle(vec![attr_ref("definition")]))
        .build();
    let comment = lines(&format!(
        "The state machine `mlambda batch run` scores datasets with: one Distributed Map over a run's slices, each \
         invoking `{function}`. mlambda brings the definition up to date before each run (a newer mlambda may need \
         a newer one), so Terraform creates it and ignores later changes to it."
    ));
    files.add("batch.tf", &comment, machine);
    if let Some(arn) = &input.existing.state_machine {
        files.import_if(true, "aws_sfn_state_machine", &bl, arn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::alarms::Routed;

    const CONFIG: &str = "function:\n  name: churn-api\n  memory: 512\n  timeout: 10\n  alias: production\n\
        image:\n  repository: churn\nmodel:\n  path: m.onnx\n  name: churn\n  version: v1\n  bucket: models-b\n  \
        features: [a, b]\n";

    fn config(extra: &str) -> Config {
        crate::config::parse(&format!("{CONFIG}{extra}"), std::path::Path::new("m.yaml")).unwrap()
    }

    fn specs(c: &Config) -> Vec<AlarmSpec> {
        let routed = [Routed { version: "1".into(), model_version: Some("v1".into()) }];
        alarms::specs(&c.function.name, &c.function.alias, Some("v1"), &routed, &c.alarms).unwrap()
    }

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("MODEL_VERSION".to_string(), "v1".to_string()), ("TEAM".to_string(), "ml".to_string())])
    }

    fn image() -> Code {
        Code::Image { image_uri: "reg/churn@sha256:aa".into() }
    }

    fn run(c: &Config, code: &Code, batch: bool, existing: &Existing) -> Terraform {
        let specs = specs(c);
        export(&Input { config: c, code, env: &env(), alarms: &specs, batch, existing }).unwrap()
    }

    /// The comments' words, unwrapped.
    fn prose(text: &str) -> String {
        text.lines().filter_map(|l| l.strip_prefix('#')).map(str::trim).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn labels_are_terraform_identifiers() {
        assert_eq!(label("churn-api"), "churn_api");
        assert_eq!(label("9lives"), "_9lives");
        assert_eq!(label("Churn.V2"), "churn_v2");
    }

    #[test]
    fn an_image_function_ignores_the_image_the_model_variables_and_publish() {
        let c = config("");
        let t = run(&c, &image(), false, &Existing::default());
        let lambda = &t.files["lambda.tf"];
        assert!(lambda.contains("resource \"aws_lambda_function\" \"churn_api\" {"), "{lambda}");
        assert!(lambda.contains("package_type = \"Image\""), "{lambda}");
        assert!(lambda.contains("image_uri = \"reg/churn@sha256:aa\""), "{lambda}");
        assert!(lambda.contains("role = aws_iam_role.churn_api.arn"), "a reference, not a string: {lambda}");
        assert!(
            lambda.contains("architectures = [\n    \"x86_64\"\n  ]") || lambda.contains("[\"x86_64\"]"),
            "{lambda}"
        );
        assert!(lambda.contains("environment[0].variables[\"MODEL_VERSION\"]"), "{lambda}");
        assert!(lambda.contains("environment[0].variables[\"LOG_PREDICTIONS\"]"), "{lambda}");
        assert!(!lambda.contains("variables[\"TEAM\"]"), "the team's variable stays Terraform's: {lambda}");
        assert!(lambda.contains("TEAM = \"ml\"") || lambda.contains("\"TEAM\" = \"ml\""), "{lambda}");
        assert!(!lambda.contains("s3_key"), "{lambda}");
        assert!(
            lambda.contains(
                "ignore_changes = [\n      function_version,\n      routing_config,\n      description\n    ]"
            ),
            "{lambda}"
        );
        for line in lambda.lines().filter(|l| l.starts_with('#')) {
            assert!(line.len() <= 100, "comment lines fit 100 columns: {line}");
        }
        assert!(t.imports.is_empty() && !t.files.contains_key("imports.tf"), "nothing exists yet: {t:?}");
        assert!(!t.files.contains_key("batch.tf"));
    }

    #[test]
    fn a_zip_function_ignores_its_bucket_key_and_hash() {
        let c = config("");
        let code = Code::Zip { bucket: "code".into(), key: "packages/churn/ab.zip".into(), code_sha256: "q83=".into() };
        let t = run(&c, &code, false, &Existing::default());
        let lambda = &t.files["lambda.tf"];
        for want in [
            "package_type = \"Zip\"",
            "s3_bucket = \"code\"",
            "s3_key = \"packages/churn/ab.zip\"",
            "source_code_hash = \"q83=\"",
            "runtime = \"provided.al2023\"",
            "handler = \"bootstrap\"",
            "      s3_bucket,\n      s3_key,\n      source_code_hash,\n",
        ] {
            assert!(lambda.contains(want), "{want}: {lambda}");
        }
        assert!(!lambda.contains("image_uri"), "{lambda}");
    }

    #[test]
    fn the_role_is_written_only_when_mlambda_would_make_it() {
        let t = run(&config(""), &image(), false, &Existing::default());
        let iam = &t.files["iam.tf"];
        assert!(iam.contains("name = \"mlambda-churn-api\""), "{iam}");
        assert!(iam.contains("lambda.amazonaws.com") && iam.contains("jsonencode("), "{iam}");
        assert!(iam.contains("role = aws_iam_role.churn_api.name"), "{iam}");
        assert!(iam.contains("arn:aws:s3:::models-b/models/churn/*"), "{iam}");
        let theirs = config("").function.name.clone();
        let mut c = config("");
        c.function.role = Some(format!("arn:aws:iam::1:role/{theirs}-team"));
        let t = run(&c, &image(), false, &Existing::default());
        assert!(!t.files.contains_key("iam.tf"), "{t:?}");
        let lambda = &t.files["lambda.tf"];
        assert!(lambda.contains("role = \"arn:aws:iam::1:role/churn-api-team\""), "{lambda}");
        assert!(
            prose(lambda).contains("the team's own (`function.role` in mlambda.yaml): referenced by ARN"),
            "{lambda}"
        );
    }

    #[test]
    fn only_the_alias_alarms_are_exported_and_what_follows_traffic_is_ignored() {
        let c = config("");
        let t = run(&c, &image(), false, &Existing::default());
        let alarms = &t.files["alarms.tf"];
        assert!(alarms.contains("mlambda-churn-api-production-latency-p99"), "{alarms}");
        assert!(alarms.contains("mlambda-churn-api-production-client-errors"), "{alarms}");
        assert!(!alarms.contains("-v1-"), "no per-version alarm: {alarms}");
        assert!(prose(alarms).contains("The per-version alarms (`mlambda-churn-api-v<N>-…`) are not here"), "{alarms}");
        assert!(alarms.contains("extended_statistic = \"p99\""), "{alarms}");
        assert!(alarms.contains("metric_query {") && alarms.contains("return_data = true"), "{alarms}");
        assert!(alarms.contains("ignore_changes = [\n      dimensions,\n      alarm_description\n    ]"), "{alarms}");
        assert!(alarms.contains("ignore_changes = [\n      metric_query\n    ]"), "{alarms}");
        let errors = alarms.split("\n\n").find(|b| b.contains("production-errors\"")).expect("the errors alarm");
        assert!(!errors.contains("lifecycle"), "nothing of it moves: {errors}");
    }

    #[test]
    fn existing_resources_get_the_import_ids_the_provider_documents() {
        let c = config("");
        let specs = specs(&c);
        let existing = Existing {
            function: true,
            alias: true,
            role: true,
            role_policy: true,
            alarms: specs.iter().map(|s| s.name.clone()).collect(),
            state_machine: Some("arn:aws:states:us-east-1:1:stateMachine:mlambda-churn-api-batch".into()),
            batch_role: true,
        };
        let t = export(&Input {
            config: &c,
            code: &image(),
            env: &env(),
            alarms: &specs,
            batch: true,
            existing: &existing,
        })
        .unwrap();
        let ids: BTreeMap<&str, &str> = t.imports.iter().map(|i| (i.to.as_str(), i.id.as_str())).collect();
        assert_eq!(ids["aws_lambda_function.churn_api"], "churn-api");
        assert_eq!(ids["aws_lambda_alias.churn_api_production"], "churn-api/production");
        assert_eq!(ids["aws_iam_role.churn_api"], "mlambda-churn-api");
        assert_eq!(ids["aws_iam_role_policy.churn_api"], "mlambda-churn-api:mlambda-execution");
        assert_eq!(
            ids["aws_cloudwatch_metric_alarm.churn_api_production_errors"],
            "mlambda-churn-api-production-errors"
        );
        assert_eq!(
            ids["aws_sfn_state_machine.churn_api_batch"],
            "arn:aws:states:us-east-1:1:stateMachine:mlambda-churn-api-batch"
        );
        assert_eq!(ids["aws_iam_role.churn_api_batch"], "mlambda-churn-api-batch-sfn");
        assert_eq!(ids.len(), 4 + 5 + 2, "alias alarms only: {ids:?}");
        let imports = &t.files["imports.tf"];
        assert!(
            imports.contains("import {\n  to = aws_lambda_function.churn_api\n  id = \"churn-api\"\n}"),
            "{imports}"
        );
    }

    #[test]
    fn the_batch_machine_uses_the_configured_role_or_writes_mlambdas() {
        let t = run(&config(""), &image(), true, &Existing::default());
        let batch = &t.files["batch.tf"];
        assert!(batch.contains("name = \"mlambda-churn-api-batch\""), "{batch}");
        assert!(batch.contains("role_arn = aws_iam_role.churn_api_batch.arn"), "{batch}");
        assert!(batch.contains("states.amazonaws.com"), "{batch}");
        // the definition's JSONPath strings survive HCL's template syntax
        assert!(batch.contains("\"$$.Map.Item.Value\"") && batch.contains("\"Bucket.$\""), "{batch}");
        let t = run(&config("batch:\n  role: arn:aws:iam::1:role/sfn\n"), &image(), true, &Existing::default());
        let batch = &t.files["batch.tf"];
        assert!(batch.contains("role_arn = \"arn:aws:iam::1:role/sfn\"") && !batch.contains("aws_iam_role"), "{batch}");
    }

    #[test]
    fn the_plan_parses_back_with_hcl_rs() {
        let t = run(&config(""), &image(), true, &Existing { function: true, ..Default::default() });
        let body = hcl::parse(&t.one_file()).unwrap();
        let resources: Vec<String> = body
            .blocks()
            .filter(|b| b.identifier() == "resource")
            .map(|b| b.labels().iter().map(|l| l.as_str()).collect::<Vec<_>>().join("."))
            .collect();
        assert!(resources.contains(&"aws_lambda_function.churn_api".to_string()), "{resources:?}");
        assert!(resources.contains(&"aws_sfn_state_machine.churn_api_batch".to_string()), "{resources:?}");
        assert_eq!(body.blocks().filter(|b| b.identifier() == "import").count(), 1);
    }
}
