//! `mlambda model push` (check with the runtime's loader, upload immutably) and `mlambda model list`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use mlambda_runtime::model::Model;
use serde::Serialize;
use sha2::Digest;

use super::Ctx;
use crate::aws::{lambda, s3};
use crate::error::{io_error, Error, Result};
use crate::plan::model::{compare, decide, describe_mismatches, Manifest, Parity, Prediction, PushDecision, Reference};
use crate::plan::naming;
use crate::settings::{ModelPushSettings, Project};
use crate::ui::{progress, table, HumanBytes};

/// The sha256 (hex) and size of a file, read in blocks so large models never sit in memory.
pub(crate) fn file_sha256(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| io_error(path, "open", e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_error(path, "read", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Loads the model with the runtime's own loader and checks inputs and reference parity.
fn check_model(path: &Path, features: &[String], reference: Option<&Path>, tolerance: f64) -> Result<Option<Parity>> {
    if !path.is_file() {
        return Err(Error::user(format!("model file `{}` does not exist", path.display()))
            .help("pass the ONNX file as `mlambda model push PATH`, or set `model.path` in mlambda.yaml"));
    }
    let model = Model::from_path(path).map_err(|e| {
        Error::user(format!("`{}` is not an ONNX model the runtime can load: {e}", path.display()))
            .help("export the model to ONNX (skl2onnx, torch.onnx.export); the runtime serves ONNX only")
    })?;
    if model.n_features() != features.len() {
        return Err(Error::user(format!(
            "model `{}` takes {} input features but `model.features` lists {}",
            path.display(),
            model.n_features(),
            features.len()
        ))
        .help("make `model.features` in mlambda.yaml list the model's inputs, in order"));
    }
    let Some(reference) = reference else { return Ok(None) };
    let text = std::fs::read_to_string(reference).map_err(|e| io_error(reference, "read the reference file", e))?;
    let r: Reference = serde_json::from_str(&text).map_err(|e| {
        Error::user(format!("cannot parse reference `{}`: {e}", reference.display()))
            .help("the format is {\"features\":[…],\"rows\":[[…]],\"expected\":[{\"prediction\":…,\"probability\":…}]}")
    })?;
    r.check(features).map_err(|why| {
        Error::user(format!("reference `{}` does not fit the config: {why}", reference.display()))
            .help("regenerate the reference rows with the model's export script")
    })?;
    let outputs = model.predict(&r.flat()).map_err(|e| {
        Error::user(format!("model `{}` cannot run the rows of `{}`: {e}", path.display(), reference.display()))
    })?;
    let got: Vec<Prediction> =
        outputs.iter().map(|o| Prediction { prediction: o.prediction, probability: o.probability }).collect();
    let (parity, mismatches) = compare(&r.expected, &got, tolerance);
    if got.len() != r.expected.len() {
        return Err(Error::user(format!(
            "model `{}` returned {} outputs for {} reference rows",
            path.display(),
            got.len(),
            r.expected.len()
        )));
    }
    if !mismatches.is_empty() {
        return Err(Error::user(format!(
            "model `{}` does not reproduce `{}`: {} of {} rows differ by more than {tolerance}: {}",
            path.display(),
            reference.display(),
            mismatches.len(),
            r.expected.len(),
            describe_mismatches(&mismatches, 5)
        ))
        .help("regenerate the reference outputs with this model, or raise `model.tolerance` if the difference is expected"));
    }
    Ok(Some(parity))
}

#[derive(Debug, Serialize)]
struct PushOutcome {
    version: String,
    uri: String,
    bucket: String,
    key: String,
    manifest_key: String,
    sha256: String,
    size: u64,
    parity: Option<Parity>,
    /// `upload`, `already_uploaded`.
    action: String,
    bucket_created: bool,
    dry_run: bool,
}

impl fmt::Display for PushOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match (self.dry_run, self.action.as_str()) {
            (_, "already_uploaded") => "already uploaded",
            (true, _) => "would upload",
            (false, _) => "uploaded",
        };
        writeln!(f, "{verb} model {} to {}", self.version, self.uri)?;
        writeln!(f, "  sha256 {}, {}", self.sha256, HumanBytes(self.size))?;
        match &self.parity {
            Some(p) => writeln!(
                f,
                "  parity: {} reference rows, max diff {:.3e} (tolerance {})",
                p.rows, p.max_diff, p.tolerance
            ),
            None => writeln!(f, "  parity: no reference rows checked"),
        }
    }
}

pub async fn push(ctx: &Ctx<'_>, p: &Project, s: &ModelPushSettings) -> Result<()> {
    let c = p.config();
    let version = s.version.clone();
    let path = s.path.clone();
    let reference = s.reference.clone();
    ctx.printer.status(format!("checking `{}` with the runtime's loader", path.display()));
    let parity = check_model(&path, &c.model.features, reference.as_deref(), c.model.tolerance)?;
    let (sha256, size) = file_sha256(&path)?;

    let bucket = c.model.bucket.clone();
    let key = naming::model_key(&c.model.prefix, &c.model.name, version.as_str());
    let manifest_key = naming::manifest_key(&c.model.prefix, &c.model.name, version.as_str());
    let uri = format!("s3://{bucket}/{key}");
    let aws = ctx.aws().await?;
    let bucket_exists = s3::bucket_exists(&aws, &bucket).await?;
    if !bucket_exists && !s.create_bucket {
        return Err(Error::user(format!("bucket `{bucket}` (`model.bucket`) does not exist"))
            .help("create it or pass --create-bucket"));
    }
    let existing = if bucket_exists { s3::head_object(&aws, &bucket, &key).await? } else { None };
    let decision = decide(existing.as_ref().map(|h| h.metadata.get("sha256").map(String::as_str)), &sha256);
    if let PushDecision::Conflict { existing_sha256 } = &decision {
        return Err(Error::user(format!(
            "model version `{version}` already exists at `{uri}` with different bytes (sha256 {} there, {sha256} here)",
            existing_sha256.as_deref().unwrap_or("unknown")
        ))
        .help(format!("model versions are immutable; bump it with `--version` (and `model.version`), e.g. `mlambda model push --version {version}-2`")));
    }
    let mut outcome = PushOutcome {
        version: version.to_string(),
        uri: uri.clone(),
        bucket: bucket.clone(),
        key: key.clone(),
        manifest_key: manifest_key.clone(),
        sha256: sha256.clone(),
        size,
        parity: parity.clone(),
        action: if decision == PushDecision::Upload { "upload".into() } else { "already_uploaded".into() },
        bucket_created: false,
        dry_run: s.dry_run,
    };
    if s.dry_run {
        outcome.bucket_created = !bucket_exists;
        if !bucket_exists {
            ctx.printer.status(format!("would create bucket `{bucket}` with versioning and AES256 encryption"));
        }
        ctx.printer.data(&outcome);
        return Ok(());
    }
    if !bucket_exists {
        ctx.printer.status(format!("creating bucket `{bucket}` with versioning and default encryption"));
        s3::create_bucket(&aws, &bucket).await?;
        outcome.bucket_created = true;
    }
    let manifest = Manifest {
        name: c.model.name.clone(),
        version: version.to_string(),
        features: c.model.features.clone(),
        sha256: sha256.clone(),
        size,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        mlambda_version: env!("CARGO_PKG_VERSION").to_string(),
        parity,
    };
    let manifest_bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::local(format!("cannot encode the manifest: {e}")))?;
    match decision {
        PushDecision::Upload => {
            ctx.printer.status(format!("uploading {} to {uri}", HumanBytes(size)));
            let bar = progress::bytes(ctx.printer, size, format!("model {version}"));
            let metadata = BTreeMap::from([("sha256".to_string(), sha256.clone())]);
            let res = s3::upload_file(&aws, &bucket, &key, &path, &metadata, &|n| bar.inc(n)).await;
            bar.finish_and_clear();
            res?;
            s3::put_json(&aws, &bucket, &manifest_key, manifest_bytes).await?;
        }
        _ => {
            ctx.printer.status(format!("model {version} is already uploaded to {uri}"));
            // A push interrupted between the model and its manifest is completed here.
            if s3::get_small(&aws, &bucket, &manifest_key).await?.is_none() {
                s3::put_json(&aws, &bucket, &manifest_key, manifest_bytes).await?;
            }
        }
    }
    ctx.printer.data(&outcome);
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
struct ModelRow {
    version: String,
    size: u64,
    sha256: String,
    created: Option<String>,
    /// Published function versions whose `MODEL_VERSION` is this version.
    function_versions: Vec<String>,
    /// Aliases serving it, as `name:version:weight`.
    aliases: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ModelList(Vec<ModelRow>);

impl fmt::Display for ModelList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no model versions uploaded yet; run `mlambda model push`");
        }
        let rows: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|r| {
                vec![
                    r.version.clone(),
                    HumanBytes(r.size).to_string(),
                    r.sha256.chars().take(12).collect(),
                    r.created.clone().unwrap_or_else(|| "-".into()),
                    if r.function_versions.is_empty() { "-".into() } else { r.function_versions.join(",") },
                    if r.aliases.is_empty() { "-".into() } else { r.aliases.join(",") },
                ]
            })
            .collect();
        write!(f, "{}", table::render(&["VERSION", "SIZE", "SHA256", "CREATED", "FUNCTION VERSIONS", "ALIASES"], &rows))
    }
}

pub async fn list(ctx: &Ctx<'_>, p: &Project) -> Result<()> {
    let c = p.config();
    let aws = ctx.aws().await?;
    let root = naming::model_root(&c.model.prefix, &c.model.name);
    let mut rows = Vec::new();
    for prefix in s3::list_prefixes(&aws, &c.model.bucket, &root).await? {
        let version = prefix.trim_start_matches(&root).trim_end_matches('/').to_string();
        let manifest_key = naming::manifest_key(&c.model.prefix, &c.model.name, &version);
        let manifest: Option<Manifest> = s3::get_small(&aws, &c.model.bucket, &manifest_key)
            .await?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let row = match manifest {
            Some(m) => ModelRow {
                version,
                size: m.size,
                sha256: m.sha256,
                created: Some(m.created),
                function_versions: vec![],
                aliases: vec![],
            },
            None => {
                // No manifest (an interrupted push, or a model put there by hand): fall back to the object itself.
                let key = naming::model_key(&c.model.prefix, &c.model.name, &version);
                let Some(head) = s3::head_object(&aws, &c.model.bucket, &key).await? else { continue };
                ModelRow {
                    version,
                    size: head.size,
                    sha256: head.metadata.get("sha256").cloned().unwrap_or_default(),
                    created: None,
                    function_versions: vec![],
                    aliases: vec![],
                }
            }
        };
        rows.push(row);
    }
    if lambda::get_function(&aws, &c.function.name).await?.is_some() {
        let versions = lambda::list_versions(&aws, &c.function.name).await?;
        let model_of: BTreeMap<String, String> = versions
            .iter()
            .filter_map(|v| v.env.get(mlambda_runtime::env::MODEL_VERSION).map(|m| (v.version.clone(), m.clone())))
            .collect();
        let aliases = lambda::list_aliases(&aws, &c.function.name).await?;
        for row in &mut rows {
            row.function_versions =
                model_of.iter().filter(|(_, m)| **m == row.version).map(|(v, _)| v.clone()).collect();
            row.function_versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(0));
            let mine: BTreeSet<&String> = row.function_versions.iter().collect();
            for a in &aliases {
                let routed: f64 = a.routing.values().sum();
                let serving = std::iter::once((&a.primary, 1.0 - routed)).chain(a.routing.iter().map(|(v, w)| (v, *w)));
                for (v, w) in serving {
                    if mine.contains(v) {
                        row.aliases.push(format!("{}:{v}:{}%", a.name, (w * 100.0).round()));
                    }
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        (a.created.is_none(), &a.created, &a.version).cmp(&(b.created.is_none(), &b.created, &b.version))
    });
    ctx.printer.data(&ModelList(rows));
    Ok(())
}
