//! `mlambda deploy`: update the function by image digest, wait until ready, publish a version, set the first alias.
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::Ctx;
use crate::aws::lambda::{self, AliasWrite};
use crate::aws::{iam, s3, Aws};
use crate::config::Config;
use crate::domain::{ImageDigest, ManagedBy, ModelVersion, PackageType, Version};
use crate::error::{Error, Result};
use crate::image;
use crate::plan::alias::AliasRouting;
use crate::plan::deploy::{
    check_terraform, package_change, plan, runtime_env, under_terraform, version_description, AliasStep, Current,
    DeployPlan, FunctionStep, ModelSource, PublishStep,
};
use crate::plan::lambda::{Code, FunctionInfo, FunctionSpec};
use crate::plan::{naming, policy};
use crate::report::Report;
use crate::settings::{DeploySettings, Project};
use crate::state::{self, State};

/// The execution role and how it was found.
struct Role {
    arn: String,
    /// `--create-role` would make it (dry run only).
    to_create: bool,
}

/// `function.role`, else a `--create-role` role (created or reused, its policy rewritten), else the role the
/// function already runs with (so a fresh clone deploys as the first machine did), else the one state recorded.
async fn resolve_role(aws: &Aws, c: &Config, state: &State, s: &DeploySettings, running: Option<&str>) -> Result<Role> {
    if let Some(role) = &c.function.role {
        return Ok(Role { arn: role.clone(), to_create: false });
    }
    if s.create_role {
        let name = policy::role_name(&c.function.name);
        let existing = iam::get_role_arn(aws, &name).await?;
        if s.dry_run {
            return Ok(match existing {
                Some(arn) => Role { arn, to_create: false },
                None => Role { arn: format!("(new role `{name}`)"), to_create: true },
            });
        }
        let arn = match existing {
            Some(arn) => arn,
            None => {
                let trust = policy::trust_policy().to_string();
                iam::create_role(aws, &name, &trust, &format!("mlambda execution role for `{}`", c.function.name))
                    .await?
            }
        };
        let root = naming::model_root(&c.model.prefix, &c.model.name);
        let doc = policy::execution_policy(&c.function.name, &c.model.bucket, &root).to_string();
        iam::put_role_policy(aws, &name, policy::EXECUTION_POLICY_NAME, &doc).await?;
        return Ok(Role { arn, to_create: false });
    }
    if let Some(role) = running.filter(|r| !r.is_empty()).map(str::to_string) {
        return Ok(Role { arn: role, to_create: false });
    }
    if let Some(role) = state.deploy.as_ref().and_then(|d| d.role.clone()) {
        return Ok(Role { arn: role, to_create: false });
    }
    Err(Error::user(format!("function `{}` has no execution role", c.function.name)).help(
        "set `function.role` to a role ARN in mlambda.yaml, or pass `--create-role` to create a least-privilege one",
    ))
}

async fn read_current(aws: &Aws, function: &str, alias: &str) -> Result<Current> {
    let Some(latest) = lambda::get_function(aws, function).await? else { return Ok(Current::default()) };
    let newest_published = lambda::list_versions(aws, function).await?.pop();
    let alias = lambda::get_alias(aws, function, alias).await?;
    Ok(Current { latest: Some(latest), newest_published, alias })
}

/// `arn:aws:lambda:region:account:function:name`, without a version or alias qualifier.
fn unqualified(arn: &str) -> String {
    arn.split(':').take(7).collect::<Vec<_>>().join(":")
}

#[derive(Debug, Serialize)]
struct DryRunOutcome {
    dry_run: bool,
    plan: DeployPlan,
}

impl fmt::Display for DryRunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plan)
    }
}

#[derive(Debug, Serialize)]
struct DeployOutcome {
    function: String,
    function_arn: String,
    version: String,
    version_arn: String,
    /// False when nothing changed and the existing version was reused.
    published: bool,
    model_version: ModelVersion,
    /// What the version runs: `{package, image_uri}` or `{package, bucket, key, code_sha256}`.
    code: Code,
    role: String,
    alias: String,
    alias_created: bool,
    /// The version the alias sends its primary traffic to.
    alias_primary: String,
}

impl fmt::Display for DeployOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.published {
            writeln!(f, "published version {} of `{}`", self.version, self.function)?;
        } else {
            writeln!(f, "up to date: version {} of `{}`", self.version, self.function)?;
        }
        writeln!(f, "  arn   {}", self.version_arn)?;
        writeln!(f, "  model {}", self.model_version)?;
        writeln!(f, "  {}", self.code)?;
        if self.alias_created {
            writeln!(f, "  alias `{}` created with 100% on version {}", self.alias, self.version)
        } else {
            writeln!(f, "  alias `{}` stays on version {}", self.alias, self.alias_primary)
        }
    }
}

/// The sha256 the uploaded model version carries, which pins the bytes the function loads.
async fn model_sha256(aws: &Aws, c: &Config, key: &str, model_version: &ModelVersion) -> Result<String> {
    let head = s3::head_object(aws, &c.model.bucket, key).await?.ok_or_else(|| {
        Error::user(format!("model version `{model_version}` is not in `s3://{}/{key}`", c.model.bucket))
            .help(format!("run `mlambda model push --version {model_version}` first"))
    })?;
    head.metadata.get("sha256").cloned().ok_or_else(|| {
        Error::user(format!("`s3://{}/{key}` has no sha256 metadata, so its bytes cannot be pinned", c.model.bucket))
            .help("upload models with `mlambda model push`, which records it")
    })
}

/// Everything the plan is made from: the function as it should be, what the cloud holds, the role's origin.
struct Gathered {
    spec: FunctionSpec,
    current: Current,
    role: Role,
    digest: ImageDigest,
}

async fn gather(ctx: &Ctx<'_>, aws: &Aws, p: &Project, s: &DeploySettings) -> Result<Gathered> {
    let c = p.config();
    let terraform = c.function.managed_by == ManagedBy::Terraform;
    if terraform && s.create_role {
        return Err(create_role_refused(&c.function.name));
    }
    let st = ctx.state(p)?;
    // Before any write, the role included: Lambda cannot change a function's package type.
    let current = read_current(aws, &c.function.name, &c.function.alias).await?;
    if terraform {
        check_terraform(&c.function.name, &c.function.alias, c.function.architecture.as_str(), &current)?;
    }
    if let Some(have) = package_change(&current, c.function.package) {
        return Err(package_refused(&c.function.name, have, c.function.package));
    }
    let (code, digest) = code(&st, c.function.package)?;
    let key = naming::model_key(&c.model.prefix, &c.model.name, s.model_version.as_str());
    let sha256 = model_sha256(aws, c, &key, &s.model_version).await?;
    // Terraform's function keeps the role Terraform gave it: nothing to resolve or create.
    let role = match current.latest.as_ref().filter(|_| terraform) {
        Some((latest, _)) => Role { arn: latest.role.clone(), to_create: false },
        None => resolve_role(aws, c, &st, s, current.latest.as_ref().map(|(l, _)| l.role.as_str())).await?,
    };
    let baked = image::baked_model_path(c.function.package);
    let source =
        if c.model.bake { ModelSource::File(&baked) } else { ModelSource::S3 { bucket: &c.model.bucket, key: &key } };
    let spec = FunctionSpec {
        name: c.function.name.clone(),
        code,
        role: role.arn.clone(),
        memory: c.function.memory,
        timeout: c.function.timeout,
        architecture: c.function.architecture.as_str().to_string(),
        env: runtime_env(&c.model, &c.alarms.namespace, &s.model_version, source, Some(&sha256)),
        description: version_description(&s.model_version, c.function.package, &digest),
        version_description: version_description(&s.model_version, c.function.package, &digest),
        managed_by: ManagedBy::Mlambda,
    };
    let spec = match current.latest.as_ref().filter(|_| terraform) {
        Some((latest, _)) => under_terraform(spec, latest),
        None => spec,
    };
    Ok(Gathered { spec, current, role, digest })
}

fn create_role_refused(function: &str) -> Error {
    Error::user(format!(
        "`--create-role` cannot apply to function `{function}`: `function.managed_by: terraform` says Terraform owns \
         its role"
    ))
    .help("drop `--create-role`; the function keeps the role Terraform gave it (`mlambda export terraform` writes one)")
}

/// What `push` recorded for this package type, and its digest (the image's, or the zip's sha256).
fn code(st: &State, package: PackageType) -> Result<(Code, ImageDigest)> {
    match package {
        PackageType::Image => {
            let push = st.push.clone().ok_or_else(|| {
                Error::user("no pushed image is recorded in `.mlambda/state.json`").help("run `mlambda push` first")
            })?;
            Ok((Code::Image { image_uri: push.image_uri }, push.digest))
        }
        PackageType::Zip => {
            let pushed = st.package_push.clone().ok_or_else(|| {
                Error::user("no uploaded zip package is recorded in `.mlambda/state.json`")
                    .help("run `mlambda build` and `mlambda push` first")
            })?;
            let digest = ImageDigest::parse(&format!("sha256:{}", pushed.sha256))?;
            Ok((Code::Zip { bucket: pushed.bucket, key: pushed.key, code_sha256: pushed.code_sha256 }, digest))
        }
    }
}

/// What `deploy` would refuse about the function itself, which `up` asks before it builds anything: a change of
/// `function.package`, and under `function.managed_by: terraform` a function or alias Terraform has not made
/// (or `--create-role`).
pub async fn preflight(aws: &Aws, c: &Config, create_role: bool) -> Result<()> {
    let mut current = Current { latest: lambda::get_function(aws, &c.function.name).await?, ..Default::default() };
    if c.function.managed_by == ManagedBy::Terraform {
        if create_role {
            return Err(create_role_refused(&c.function.name));
        }
        if current.latest.is_some() {
            current.alias = lambda::get_alias(aws, &c.function.name, &c.function.alias).await?;
        }
        check_terraform(&c.function.name, &c.function.alias, c.function.architecture.as_str(), &current)?;
    }
    match package_change(&current, c.function.package) {
        Some(have) => Err(package_refused(&c.function.name, have, c.function.package)),
        None => Ok(()),
    }
}

fn package_refused(function: &str, have: PackageType, want: PackageType) -> Error {
    Error::user(format!(
        "function `{function}` is packaged as {have}, `function.package` says {want}, and Lambda cannot change a \
         function's package type"
    ))
    .help(format!(
        "set `function.package: {have}` back; or, to move to {want}, set a new `function.name` and deploy it as a new \
         function (delete `{function}` once nothing calls it)"
    ))
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &DeploySettings) -> Result<Report> {
    let aws = ctx.aws().await?;
    let Gathered { spec, current, role, digest } = gather(ctx, &aws, p, s).await?;
    let the_plan = plan(&spec, &p.config().function.alias, &current);
    if s.dry_run {
        if role.to_create {
            ctx.printer.status(format!("would create role `{}`", policy::role_name(&spec.name)));
        }
        return Ok(Report::new(DryRunOutcome { dry_run: true, plan: the_plan }, true));
    }
    let exec = Executor { ctx, aws: &aws, spec: &spec, wait: s.wait };
    let guard = exec.update_function(&the_plan, &current).await?;
    let published = exec.publish(&the_plan, &guard).await?;
    exec.tag(&published, &s.model_version, &digest).await?;
    let (alias_created, alias_primary) = exec.alias(&the_plan, &published.version).await?;
    state::update(&p.state_dir, |st| {
        st.deploy = Some(state::Deploy {
            function_arn: published.function_arn.clone(),
            version: published.version.clone(),
            model_version: s.model_version.clone(),
            code: spec.code.location(),
            role: Some(spec.role.clone()),
        })
    })?;
    Ok(Report::done(DeployOutcome {
        function: spec.name.clone(),
        function_arn: published.function_arn,
        version: published.version,
        version_arn: published.version_arn,
        published: published.new,
        model_version: s.model_version.clone(),
        code: spec.code.clone(),
        role: spec.role.clone(),
        alias: p.config().function.alias.clone(),
        alias_created,
        alias_primary,
    }))
}

/// What a publish is guarded by: the `CodeSha256` this deploy's own create or update returned, and the
/// `RevisionId` `$LATEST` had once ready with that code (Lambda changes the revision again when an update
/// finishes, so the update's own would always be refused).
struct Guard {
    code_sha256: String,
    revision_id: String,
}

/// The version the deploy serves: newly published, or found up to date.
struct Served {
    function_arn: String,
    version: String,
    version_arn: String,
    new: bool,
}

/// Runs a deploy plan's steps against Lambda.
struct Executor<'a> {
    ctx: &'a Ctx<'a>,
    aws: &'a Aws,
    spec: &'a FunctionSpec,
    wait: std::time::Duration,
}

impl Executor<'_> {
    fn status(&self, msg: String) {
        self.ctx.printer.status(msg);
    }

    /// Creates or updates `$LATEST`, waiting until Lambda is ready after each write. Returns what the publish
    /// is guarded by: the code this deploy put there (or the plan read, when the code was left alone) and the
    /// revision `$LATEST` had once ready with that code.
    async fn update_function(&self, the_plan: &DeployPlan, current: &Current) -> Result<Guard> {
        let (aws, spec) = (self.aws, self.spec);
        let (code, config) = match &the_plan.function_step {
            FunctionStep::Create => {
                self.status(format!("creating function `{}` from {}", spec.name, spec.code));
                let code_sha256 = lambda::create_function(aws, spec).await?;
                let ready = lambda::wait_until_ready(aws, &spec.name, self.wait).await?;
                self.check_code(&ready)?;
                let revision_id = self.still_ours(&ready, &code_sha256)?;
                return Ok(Guard { code_sha256, revision_id });
            }
            FunctionStep::Update { code, config } => (code, config),
        };
        let read = current.latest.as_ref().map(|(l, _)| l);
        let mut guard = Guard {
            code_sha256: read.map(|l| l.code_sha256.clone()).unwrap_or_default(),
            revision_id: read.map(|l| l.revision_id.clone()).unwrap_or_default(),
        };
        let busy = read.is_some_and(FunctionInfo::busy);
        if busy && !the_plan.function_unchanged() {
            // An earlier deploy's update is still running; a new one would be refused.
            self.status(format!("waiting for an earlier update of `{}` to finish", spec.name));
            lambda::wait_until_ready(aws, &spec.name, self.wait).await?;
        }
        if !code.is_empty() {
            self.status(format!("updating the code of `{}` to {}", spec.name, spec.code));
            guard.code_sha256 = lambda::update_function_code(aws, spec).await?;
            let ready = lambda::wait_until_ready(aws, &spec.name, self.wait).await?;
            self.check_code(&ready)?;
            guard.revision_id = self.still_ours(&ready, &guard.code_sha256)?;
        }
        if !config.is_empty() {
            let fields: Vec<&str> = config.iter().map(|d| d.field.as_str()).collect();
            self.status(format!("updating the configuration of `{}`: {}", spec.name, fields.join(", ")));
            lambda::update_function_configuration(aws, spec).await?;
            let ready = lambda::wait_until_ready(aws, &spec.name, self.wait).await?;
            guard.revision_id = self.still_ours(&ready, &guard.code_sha256)?;
        }
        Ok(guard)
    }

    /// `$LATEST`'s revision once ready, if it still holds `code_sha256`; else another deploy's update landed
    /// between ours and this read, and nothing may be published.
    fn still_ours(&self, ready: &FunctionInfo, code_sha256: &str) -> Result<String> {
        if code_sha256.is_empty() || ready.code_sha256 == code_sha256 {
            return Ok(ready.revision_id.clone());
        }
        Err(Error::cloud(format!(
            "`{}` now runs code `{}`, not the `{code_sha256}` this deploy put there: another deploy got in between",
            self.spec.name, ready.code_sha256
        ))
        .help("nothing was published and the alias was not moved; re-run `mlambda deploy`"))
    }

    /// A zip's bytes as Lambda read them must be the bytes `build` packed: the `CodeSha256` Lambda reports is
    /// compared with the one `push` recorded, before anything is published.
    fn check_code(&self, latest: &FunctionInfo) -> Result<()> {
        let Code::Zip { bucket, key, code_sha256 } = &self.spec.code else { return Ok(()) };
        if latest.code_sha256 == *code_sha256 {
            return Ok(());
        }
        Err(Error::cloud(format!(
            "Lambda reports CodeSha256 `{}` for `{}`, but the zip in `s3://{bucket}/{key}` has `{code_sha256}`",
            latest.code_sha256, self.spec.name
        ))
        .help("the object changed after `mlambda push`; run `mlambda build` and `mlambda push` again, then re-run `mlambda deploy`"))
    }

    /// Publishes `$LATEST` under `guard` (the code and revision this deploy left there), or reuses the version
    /// that is up to date.
    async fn publish(&self, the_plan: &DeployPlan, guard: &Guard) -> Result<Served> {
        let name = &self.spec.name;
        let latest = lambda::get_version(self.aws, name, "$LATEST").await?.ok_or_else(|| {
            Error::cloud(format!("function `{name}` disappeared during the deploy")).help("re-run `mlambda deploy`")
        })?;
        let function_arn = unqualified(&latest.arn);
        Ok(match &the_plan.publish {
            PublishStep::Publish { description } => {
                self.status(format!("publishing a version: {description}"));
                let p = lambda::publish_version(self.aws, name, description, &guard.code_sha256, &guard.revision_id)
                    .await?;
                Served { function_arn, version: p.version, version_arn: p.arn, new: true }
            }
            PublishStep::UpToDate { version } => {
                self.status(format!("up to date: version {version}"));
                let version_arn = format!("{function_arn}:{version}");
                Served { function_arn, version: version.clone(), version_arn, new: false }
            }
        })
    }

    async fn tag(&self, served: &Served, model_version: &ModelVersion, digest: &ImageDigest) -> Result<()> {
        // Terraform owns a managed function's tags: its next apply would strip these again.
        if self.spec.managed_by == ManagedBy::Terraform {
            return Ok(());
        }
        let digest_tag = match self.spec.code.package_type() {
            PackageType::Image => "mlambda:image-digest",
            PackageType::Zip => "mlambda:package-sha256",
        };
        let tags = BTreeMap::from([
            ("mlambda:managed-by".to_string(), "mlambda".to_string()),
            ("mlambda:model-version".to_string(), model_version.to_string()),
            (digest_tag.to_string(), digest.to_string()),
            ("mlambda:version".to_string(), served.version.clone()),
        ]);
        lambda::tag_resource(self.aws, &served.function_arn, &tags).await
    }

    /// Creates the alias on the first deploy; later ones leave traffic to `mlambda rollout`.
    /// Returns whether it was created and the version it sends its primary traffic to.
    async fn alias(&self, the_plan: &DeployPlan, version: &str) -> Result<(bool, String)> {
        match &the_plan.alias {
            // `check_terraform` refused this deploy before any write; Terraform creates its function's alias.
            AliasStep::Create { name } if self.spec.managed_by == ManagedBy::Terraform => Err(Error::user(format!(
                "alias `{name}` of function `{}` does not exist, and `function.managed_by: terraform` says Terraform \
                 creates it",
                self.spec.name
            ))
            .help("add the alias to your Terraform and run `terraform apply` (`mlambda export terraform` writes one)")),
            AliasStep::Create { name } => {
                self.status(format!("creating alias `{name}` with 100% on version {version}"));
                let write = AliasWrite {
                    function: &self.spec.name,
                    alias: name,
                    routing: AliasRouting::all(Version::parse(version)?),
                    description: "managed by mlambda",
                    revision_id: None,
                };
                Ok((true, lambda::create_alias(self.aws, &write).await?.primary))
            }
            AliasStep::Keep { name, primary, routing } => {
                if *primary != version && !routing.contains_key(version) {
                    self.status(format!(
                        "alias `{name}` still sends all traffic to version {primary}; run `mlambda rollout --weight 0.1` to send traffic to version {version}"
                    ));
                }
                Ok((false, primary.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
    use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
    use aws_sdk_lambda::operation::update_function_code::UpdateFunctionCodeOutput;
    use aws_sdk_lambda::types::{FunctionConfiguration, LastUpdateStatus, State};
    use aws_sdk_lambda::Client;
    use aws_smithy_mocks::{mock, Rule};

    use super::*;
    use crate::aws::mock;
    use crate::cli::{GlobalArgs, OutputFormat};
    use crate::plan::deploy::FieldDiff;
    use crate::ui::Printer;

    fn ready(code_sha256: &str, revision: &str) -> GetFunctionOutput {
        let c = FunctionConfiguration::builder()
            .function_name("churn")
            .function_arn("arn:aws:lambda:us-east-1:123456789012:function:churn:$LATEST")
            .version("$LATEST")
            .state(State::Active)
            .last_update_status(LastUpdateStatus::Successful)
            .code_sha256(code_sha256)
            .revision_id(revision)
            .build();
        GetFunctionOutput::builder().configuration(c).build()
    }

    fn code_update() -> DeployPlan {
        let spec = spec();
        DeployPlan {
            function: "churn".into(),
            function_step: FunctionStep::Update {
                code: vec![FieldDiff { field: "image".into(), from: "old".into(), to: "new".into() }],
                config: vec![],
            },
            publish: PublishStep::Publish { description: spec.version_description.clone() },
            alias: AliasStep::Keep { name: "production".into(), primary: "3".into(), routing: BTreeMap::new() },
            spec,
            terraform: None,
        }
    }

    fn spec() -> FunctionSpec {
        FunctionSpec {
            name: "churn".into(),
            code: Code::Image { image_uri: format!("r/churn@sha256:{}", "b".repeat(64)) },
            role: "arn:aws:iam::123456789012:role/churn".into(),
            memory: 512,
            timeout: 10,
            architecture: "x86_64".into(),
            env: BTreeMap::new(),
            description: "model v2".into(),
            version_description: "model v2".into(),
            managed_by: crate::domain::ManagedBy::Mlambda,
        }
    }

    /// What a deploy publishes, and how often Lambda was asked to, when `$LATEST` reads `code` once ready.
    async fn deploy_reading(code: &'static str, publish: &Rule) -> Result<Served> {
        let update = mock!(Client::update_function_code).then_output(|| {
            UpdateFunctionCodeOutput::builder().code_sha256("ours").revision_id("rev-updating").build()
        });
        let get = mock!(Client::get_function).then_output(move || ready(code, "rev-ready"));
        let aws = mock::aws(&[&update, &get, publish], &[]);
        let printer = Printer::new(OutputFormat::Text, true, 0);
        let global = GlobalArgs {
            config: "mlambda.yaml".into(),
            profile: None,
            region: None,
            output: OutputFormat::Text,
            quiet: true,
            verbose: 0,
        };
        let ctx = Ctx { printer: &printer, global };
        let spec = spec();
        let exec = Executor { ctx: &ctx, aws: &aws, spec: &spec, wait: std::time::Duration::from_secs(5) };
        let plan = code_update();
        let guard = exec.update_function(&plan, &Current::default()).await?;
        exec.publish(&plan, &guard).await
    }

    /// moto never returns a RevisionId for a function, so the exact publish request is pinned here; the
    /// CodeSha256 refusal itself runs on moto too (`scripts/moto-server`, patch f).
    #[tokio::test]
    async fn the_publish_is_guarded_by_this_deploys_own_code_and_the_revision_it_settled_at() {
        let publish = mock!(Client::publish_version)
            .match_requests(|r| r.code_sha256() == Some("ours") && r.revision_id() == Some("rev-ready"))
            .then_output(|| PublishVersionOutput::builder().version("4").function_arn("arn:churn:4").build());
        let served = deploy_reading("ours", &publish).await.unwrap();
        assert_eq!((served.version.as_str(), publish.num_calls()), ("4", 1));
    }

    #[tokio::test]
    async fn another_deploys_code_landing_first_publishes_nothing_and_exits_2() {
        let publish =
            mock!(Client::publish_version).then_output(|| PublishVersionOutput::builder().version("4").build());
        let e = deploy_reading("theirs", &publish).await.err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message.contains("now runs code `theirs`, not the `ours` this deploy put there"), "{}", e.message);
        assert!(e.help.unwrap_or_default().contains("re-run `mlambda deploy`"));
        assert_eq!(publish.num_calls(), 0);
    }

    #[test]
    fn arns_lose_their_qualifier() {
        assert_eq!(
            super::unqualified("arn:aws:lambda:us-east-1:123456789012:function:churn:7"),
            "arn:aws:lambda:us-east-1:123456789012:function:churn"
        );
        assert_eq!(
            super::unqualified("arn:aws:lambda:us-east-1:123456789012:function:churn"),
            "arn:aws:lambda:us-east-1:123456789012:function:churn"
        );
    }
}
