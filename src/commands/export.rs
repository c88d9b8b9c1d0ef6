//! `mlambda export terraform`: the HCL for the function, its alias, role, alarms and batch state machine, so a
//! team's Terraform owns them and mlambda moves only what `ignore_changes` leaves it; `import` blocks adopt what
//! already exists in the account.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::Ctx;
use crate::aws::{cloudwatch, iam, lambda, s3, sfn, Aws};
use crate::cli::ExportTerraformArgs;
use crate::config::Config;
use crate::domain::{ManagedBy, PackageType};
use crate::error::{Error, Result};
use crate::gather;
use crate::image;
use crate::plan::alarms::{self, AlarmSpec, Routed};
use crate::plan::deploy::{merge_env, package_change, runtime_env, Current, ModelSource};
use crate::plan::lambda::{Code, FunctionInfo};
use crate::plan::terraform::{self, Existing, Import, Input};
use crate::plan::{batch, naming, policy};
use crate::report::Report;
use crate::settings::Project;
use crate::state::State;

#[derive(Debug, Serialize)]
struct Outcome {
    /// File name → HCL.
    files: BTreeMap<String, String>,
    imports: Vec<Import>,
    /// Where `--dir` wrote the files; without it the HCL went to stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(dir) = &self.dir else {
            // The HCL is the data: `mlambda export terraform > mlambda.tf` must work.
            let t = terraform::Terraform { files: self.files.clone(), imports: self.imports.clone() };
            return f.write_str(&t.one_file());
        };
        for name in self.files.keys() {
            writeln!(f, "wrote {}", dir.join(name).display())?;
        }
        if !self.imports.is_empty() {
            writeln!(f, "{} resources exist already: imports.tf adopts them", self.imports.len())?;
        }
        Ok(())
    }
}

pub async fn terraform(ctx: &Ctx<'_>, p: &Project, a: &ExportTerraformArgs) -> Result<Report> {
    let c = p.config();
    let st = ctx.state(p)?;
    let aws = ctx.aws().await?;
    let f = &c.function;
    let current = lambda::get_function(&aws, &f.name).await?;
    let check = Current { latest: current.clone(), ..Default::default() };
    if let Some(have) = package_change(&check, f.package) {
        return Err(Error::user(format!(
            "function `{}` is packaged as {have}, but `function.package` says {}",
            f.name, f.package
        ))
        .help(format!("set `function.package: {have}` in mlambda.yaml, so the HCL describes the function as it is")));
    }
    let latest = current.as_ref().map(|(info, _)| info);
    let alias = match latest {
        Some(_) => lambda::get_alias(&aws, &f.name, &f.alias).await?,
        None => None,
    };
    let code = code(c, &st, current.as_ref())?;
    let env = env(&aws, c, latest).await?;
    let routed = match &alias {
        Some(a) => gather::routed(&aws, &f.name, a).await?,
        None => Vec::new(),
    };
    // Before the first deploy the alias will serve `model.version`.
    let primary_model =
        routed.first().map_or_else(|| Some(c.model.version.to_string()), |r: &Routed| r.model_version.clone());
    let specs: Vec<AlarmSpec> = alarms::specs(&f.name, &f.alias, primary_model.as_deref(), &routed, &c.alarms)?;
    let existing = existing(&aws, c, latest.is_some(), alias.is_some()).await?;
    let batch = c.batch.role.is_some() || existing.state_machine.is_some() || existing.batch_role;
    let input = Input { config: c, code: &code, env: &env, alarms: &specs, batch, existing: &existing };
    let t = terraform::export(&input)?;

    if alias.is_none() {
        ctx.printer.status(format!(
            "alias `{}` does not exist yet: the error-rate alarms, which count the versions it routes to, come once \
             it does (export again then)",
            f.alias
        ));
    }
    if let Some(l) = latest.filter(|l| (l.memory, l.timeout) != (f.memory, f.timeout)) {
        ctx.printer.status(format!(
            "function `{}` has {} MB and {} s, mlambda.yaml says {} MB and {} s: the HCL follows mlambda.yaml, so \
             `terraform plan` will show the change; edit either one first to keep what you have",
            f.name, l.memory, l.timeout, f.memory, f.timeout
        ));
    }
    if !batch {
        ctx.printer.status(
            "no batch state machine: `mlambda batch run` creates it on first use (or set `batch.role`); export again \
             to have Terraform own it",
        );
    }
    if f.managed_by != ManagedBy::Terraform {
        ctx.printer.status(
            "set `function.managed_by: terraform` in mlambda.yaml once Terraform owns these, so `mlambda deploy` \
             leaves the function's configuration, role and alias to it",
        );
    }
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir).map_err(|e| crate::error::io_error(dir, "create the directory", e))?;
        for (name, text) in &t.files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| crate::error::io_error(&path, "write", e))?;
        }
    }
    Ok(Report::done(Outcome { files: t.files, imports: t.imports, dir: a.dir.clone() }))
}

/// The code Terraform creates the function with: what `push` recorded, else what the function runs now.
fn code(c: &Config, st: &State, current: Option<&(FunctionInfo, Option<String>)>) -> Result<Code> {
    let f = &c.function;
    let pushed = match f.package {
        PackageType::Image => st.push.as_ref().map(|p| Code::Image { image_uri: p.image_uri.clone() }),
        PackageType::Zip => st.package_push.as_ref().map(|p| Code::Zip {
            bucket: p.bucket.clone(),
            key: p.key.clone(),
            code_sha256: p.code_sha256.clone(),
        }),
    };
    let running = current.and_then(|(info, image)| match f.package {
        PackageType::Image => image.clone().map(|image_uri| Code::Image { image_uri }),
        // Lambda does not say where a zip came from; mlambda's keys are content-addressed, so its sha256 does.
        PackageType::Zip => naming::package_key_of_code(c.package_prefix(), &f.name, &info.code_sha256).map(|key| {
            Code::Zip { bucket: c.package_bucket().to_string(), key, code_sha256: info.code_sha256.clone() }
        }),
    });
    pushed.or(running).ok_or_else(|| {
        let what = match f.package {
            PackageType::Image => "no pushed image",
            PackageType::Zip => "no uploaded zip package",
        };
        Error::user(format!(
            "{what} is recorded in `.mlambda/state.json` and function `{}` does not exist, so the HCL has no code \
             to create the function with",
            f.name
        ))
        .help("run `mlambda build` and `mlambda push` first, then export again")
    })
}

/// The environment Terraform creates the function with: the function's own variables when it exists (an import
/// must not drop them), with the model's as `mlambda deploy` would set them now.
async fn env(aws: &Aws, c: &Config, latest: Option<&FunctionInfo>) -> Result<BTreeMap<String, String>> {
    let key = naming::model_key(&c.model.prefix, &c.model.name, c.model.version.as_str());
    // Pinned when the model version is uploaded; otherwise the first `mlambda deploy` pins it.
    let sha256 = s3::head_object(aws, &c.model.bucket, &key).await?.and_then(|h| h.metadata.get("sha256").cloned());
    let baked = image::baked_model_path(c.function.package);
    let source =
        if c.model.bake { ModelSource::File(&baked) } else { ModelSource::S3 { bucket: &c.model.bucket, key: &key } };
    let model = runtime_env(&c.model, &c.alarms.namespace, &c.model.version, source, sha256.as_deref());
    Ok(match latest {
        Some(l) => merge_env(&l.env, &model),
        None => model,
    })
}

/// What the account holds now, for the import blocks.
async fn existing(aws: &Aws, c: &Config, function: bool, alias: bool) -> Result<Existing> {
    let f = &c.function;
    let (mut role, mut role_policy) = (false, false);
    if f.role.is_none() {
        let name = policy::role_name(&f.name);
        role = iam::get_role_arn(aws, &name).await?.is_some();
        role_policy = role && iam::role_policy_exists(aws, &name, policy::EXECUTION_POLICY_NAME).await?;
    }
    let alarms: BTreeSet<String> = cloudwatch::describe_alarms(aws, &alarms::function_prefix(&f.name))
        .await?
        .into_iter()
        .map(|a| a.spec.name)
        .collect();
    let state_machine = sfn::find_state_machine(aws, &batch::state_machine_name(&f.name)).await?;
    let batch_role = match &c.batch.role {
        Some(_) => false,
        None => iam::get_role_arn(aws, &batch::role_name(&f.name)).await?.is_some(),
    };
    Ok(Existing { function, alias, role, role_policy, alarms, state_machine, batch_role })
}
