//! `mlambda model push` (check with the runtime's loader, upload immutably) and `mlambda model list`.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use mlambda_runtime::model::{Label as RuntimeLabel, Model, Prediction as RuntimePrediction, RowAnswer};
use serde::Serialize;

use super::{require_model_file, shown, Ctx};
use crate::aws::{lambda, s3};
use crate::error::{io_error, Error, Result};
use crate::plan::lambda::{Alias, FunctionInfo};
use crate::plan::model::{
    compare, decide, describe_mismatches, Label, Manifest, Parity, Prediction, PushDecision, Reference,
};
use crate::plan::naming;
use crate::report::Report;
use crate::settings::{ModelPushSettings, Project};
use crate::ui::{progress, table, HumanBytes};

/// What the runtime's loader found: the request fields and, when reference rows were given, their parity.
pub(super) struct Checked {
    fields: Vec<String>,
    parity: Option<Parity>,
}

/// Every local check `model push` makes before it calls AWS: the file, the runtime's loader, `model.features`
/// and the reference rows. `up` runs it first of all, so a broken model costs no compile and no AWS call.
pub(super) fn check(p: &Project, s: &ModelPushSettings) -> Result<Checked> {
    let c = p.config();
    require_model_file(&s.path, s.path == p.model_path())?;
    check_model(&s.path, c.model.features.as_deref(), s.reference.as_deref(), c.model.tolerance)
}

/// Loads the model with the runtime's own loader and checks inputs and reference parity.
fn check_model(path: &Path, features: Option<&[String]>, reference: Option<&Path>, tolerance: f64) -> Result<Checked> {
    let model = Model::from_path(path).map_err(|e| {
        Error::user(format!("`{}` is not an ONNX model the runtime can load: {e}", shown(path)))
            .help("export the model to ONNX (skl2onnx, torch.onnx.export); the runtime serves ONNX only")
    })?;
    if let (Some(listed), [only]) = (features, model.inputs()) {
        if only.kind.is_float() && only.width != listed.len() {
            return Err(Error::user(format!(
                "model `{}` takes {} input features but `model.features` lists {}",
                shown(path),
                only.width,
                listed.len()
            ))
            .help("make `model.features` in mlambda.yaml list the model's inputs, in order"));
        }
    }
    let fields: Vec<String> = model
        .fields(features)
        .map_err(|why| {
            let why = why.replace("MODEL_FEATURES", "`model.features`");
            Error::user(format!("model `{}` does not fit `model.features`: {why}", shown(path))).help(
                "list the columns of a single float input in `model.features`, in order; for a model with named \
                 inputs (a ColumnTransformer export) leave `model.features` out or list its input names",
            )
        })?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let Some(reference) = reference else { return Ok(Checked { fields, parity: None }) };
    let text = std::fs::read_to_string(reference).map_err(|e| io_error(reference, "read the reference file", e))?;
    let r: Reference = serde_json::from_str(&text).map_err(|e| {
        Error::user(format!("cannot parse reference `{}`: {e}", shown(reference))).help(
            "the format is {\"features\":[…],\"rows\":[[…]],\"expected\":[{\"prediction\":…,\"probability\":…,\"probabilities\":{…}}]}",
        )
    })?;
    r.check(&fields).map_err(|why| {
        Error::user(format!("reference `{}` does not fit the model: {why}", shown(reference)))
            .help("regenerate the reference rows with the model's export script")
    })?;
    let answers = model.predict_rows(&r.objects(), features).map_err(|e| {
        Error::user(format!("model `{}` cannot run the rows of `{}`: {e}", shown(path), shown(reference)))
    })?;
    let got: Vec<Prediction> = answers.iter().map(|a| prediction(&model, a)).collect();
    if got.len() != r.expected.len() {
        return Err(Error::user(format!(
            "model `{}` returned {} outputs for {} reference rows",
            shown(path),
            got.len(),
            r.expected.len()
        )));
    }
    let (parity, mismatches) = compare(&r.expected, &got, tolerance);
    if !mismatches.is_empty() {
        return Err(Error::user(format!(
            "model `{}` does not reproduce `{}`: {} of {} rows differ by more than {tolerance}: {}",
            shown(path),
            shown(reference),
            mismatches.len(),
            r.expected.len(),
            describe_mismatches(&mismatches, 5)
        ))
        .help("regenerate the reference outputs with this model, or raise `model.tolerance` if the difference is expected"));
    }
    Ok(Checked { fields, parity: Some(parity) })
}

/// The runtime's answer in the reference file's terms: labels in the model's type, probabilities by label.
fn prediction(model: &Model, a: &RowAnswer) -> Prediction {
    let label = match &a.prediction {
        RuntimePrediction::Label(RuntimeLabel::Int(i)) => Label::Number(*i as f64),
        RuntimePrediction::Label(RuntimeLabel::Str(s)) => Label::Text(s.clone()),
        RuntimePrediction::Value(v) => Label::Number(*v),
    };
    let probabilities = a
        .probabilities
        .as_ref()
        .zip(model.labels())
        .map(|(p, labels)| p.iter().enumerate().map(|(i, q)| (labels.key(i), *q)).collect());
    Prediction { prediction: label, probability: a.probability, probabilities, score: a.score }
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

pub async fn push(ctx: &Ctx<'_>, p: &Project, s: &ModelPushSettings) -> Result<Report> {
    ctx.printer.status(format!("checking `{}` with the runtime's loader", shown(&s.path)));
    let checked = check(p, s)?;
    push_checked(ctx, p, s, checked).await
}

/// `push` of a model `check` already passed (`up` checks it before any step, and loads it only once).
pub(super) async fn push_checked(
    ctx: &Ctx<'_>,
    p: &Project,
    s: &ModelPushSettings,
    checked: Checked,
) -> Result<Report> {
    let c = p.config();
    let Checked { fields, parity } = checked;
    let (sha256, size) = crate::hash::file_sha256(&s.path).map_err(|e| io_error(&s.path, "read", e))?;
    let aws = ctx.aws().await?;
    let (mut outcome, decision) = plan_push(&aws, p, s, &sha256, size, parity.clone()).await?;
    let bucket_exists = !outcome.bucket_created;
    if s.dry_run {
        if !bucket_exists {
            ctx.printer
                .status(format!("would create bucket `{}` with versioning and AES256 encryption", outcome.bucket));
        }
        return Ok(Report::new(outcome, true));
    }
    if !bucket_exists {
        ctx.printer.status(format!("creating bucket `{}` with versioning and default encryption", outcome.bucket));
        s3::create_bucket(&aws, &outcome.bucket).await?;
    }
    let manifest = Manifest {
        name: c.model.name.clone(),
        version: s.version.to_string(),
        features: fields,
        sha256,
        size,
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        mlambda_version: env!("CARGO_PKG_VERSION").to_string(),
        parity,
    };
    upload(ctx, &aws, s, &outcome, &manifest, decision).await?;
    outcome.bucket_created = !bucket_exists;
    Ok(Report::done(outcome))
}

/// Where the version goes and whether it may: a missing bucket needs `--create-bucket`, a version that
/// exists with other bytes is refused. The outcome's `bucket_created` says whether the bucket is missing.
async fn plan_push(
    aws: &crate::aws::Aws,
    p: &Project,
    s: &ModelPushSettings,
    sha256: &str,
    size: u64,
    parity: Option<Parity>,
) -> Result<(PushOutcome, PushDecision)> {
    let c = p.config();
    let (bucket, version) = (c.model.bucket.clone(), &s.version);
    let key = naming::model_key(&c.model.prefix, &c.model.name, version.as_str());
    let uri = format!("s3://{bucket}/{key}");
    let bucket_exists = s3::bucket_exists(aws, &bucket).await?;
    if !bucket_exists && !s.create_bucket {
        return Err(Error::user(format!("bucket `{bucket}` (`model.bucket`) does not exist"))
            .help("create it or pass --create-bucket"));
    }
    let existing = if bucket_exists { s3::head_object(aws, &bucket, &key).await? } else { None };
    let decision = decide(existing.as_ref().map(|h| h.metadata.get("sha256").map(String::as_str)), sha256);
    if let PushDecision::Conflict { existing_sha256 } = &decision {
        return Err(Error::user(format!(
            "model version `{version}` already exists at `{uri}` with different bytes (sha256 {} there, {sha256} here)",
            existing_sha256.as_deref().unwrap_or("unknown")
        ))
        .help(format!("model versions are immutable; bump it with `--version` (and `model.version`), e.g. `mlambda model push --version {version}-2`")));
    }
    let outcome = PushOutcome {
        version: version.to_string(),
        uri,
        bucket,
        key,
        manifest_key: naming::manifest_key(&c.model.prefix, &c.model.name, version.as_str()),
        sha256: sha256.to_string(),
        size,
        parity,
        action: if decision == PushDecision::Upload { "upload".into() } else { "already_uploaded".into() },
        bucket_created: !bucket_exists,
        dry_run: s.dry_run,
    };
    Ok((outcome, decision))
}

/// Uploads the model (streamed, with progress) and then its manifest; an upload that already landed only
/// gets its manifest completed.
async fn upload(
    ctx: &Ctx<'_>,
    aws: &crate::aws::Aws,
    s: &ModelPushSettings,
    o: &PushOutcome,
    manifest: &Manifest,
    decision: PushDecision,
) -> Result<()> {
    let manifest_bytes =
        serde_json::to_vec_pretty(manifest).map_err(|e| Error::local(format!("cannot encode the manifest: {e}")))?;
    if decision != PushDecision::Upload {
        ctx.printer.status(format!("model {} is already uploaded to {}", s.version, o.uri));
        // A push interrupted between the model and its manifest is completed here.
        if s3::get_small(aws, &o.bucket, &o.manifest_key).await?.is_none() {
            s3::put_json(aws, &o.bucket, &o.manifest_key, manifest_bytes).await?;
        }
        return Ok(());
    }
    ctx.printer.status(format!("uploading {} to {}", HumanBytes(o.size), o.uri));
    let bar = progress::bytes(ctx.printer, o.size, format!("model {}", s.version));
    let metadata = BTreeMap::from([("sha256".to_string(), o.sha256.clone())]);
    let res = s3::upload_file(aws, &o.bucket, &o.key, &s.path, &metadata, &|n| bar.inc(n)).await;
    bar.finish_and_clear();
    res?;
    s3::put_json(aws, &o.bucket, &o.manifest_key, manifest_bytes).await
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

pub async fn list(ctx: &Ctx<'_>, p: &Project) -> Result<Report> {
    let c = p.config();
    let aws = ctx.aws().await?;
    let mut rows = uploaded(&aws, p).await?;
    if lambda::get_function(&aws, &c.function.name).await?.is_some() {
        let versions = lambda::list_versions(&aws, &c.function.name).await?;
        let aliases = lambda::list_aliases(&aws, &c.function.name).await?;
        mark_usage(&mut rows, &versions, &aliases);
    }
    rows.sort_by(|a, b| {
        (a.created.is_none(), &a.created, &a.version).cmp(&(b.created.is_none(), &b.created, &b.version))
    });
    Ok(Report::done(ModelList(rows)))
}

/// One row per uploaded model version, from its manifest or, without one, from the object itself.
async fn uploaded(aws: &crate::aws::Aws, p: &Project) -> Result<Vec<ModelRow>> {
    let c = p.config();
    let root = naming::model_root(&c.model.prefix, &c.model.name);
    let mut rows = Vec::new();
    for prefix in s3::list_prefixes(aws, &c.model.bucket, &root).await? {
        let version = prefix.trim_start_matches(&root).trim_end_matches('/').to_string();
        let manifest_key = naming::manifest_key(&c.model.prefix, &c.model.name, &version);
        let manifest: Option<Manifest> = s3::get_small(aws, &c.model.bucket, &manifest_key)
            .await?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (size, sha256, created) = match manifest {
            Some(m) => (m.size, m.sha256, Some(m.created)),
            None => {
                // No manifest (an interrupted push, or a model put there by hand): fall back to the object itself.
                let key = naming::model_key(&c.model.prefix, &c.model.name, &version);
                let Some(head) = s3::head_object(aws, &c.model.bucket, &key).await? else { continue };
                (head.size, head.metadata.get("sha256").cloned().unwrap_or_default(), None)
            }
        };
        rows.push(ModelRow { version, size, sha256, created, function_versions: vec![], aliases: vec![] });
    }
    Ok(rows)
}

/// Which function versions serve each model version (by `MODEL_VERSION`) and which aliases route to them.
fn mark_usage(rows: &mut [ModelRow], versions: &[FunctionInfo], aliases: &[Alias]) {
    let model_of: BTreeMap<String, String> =
        versions.iter().filter_map(|v| v.model_version().map(|m| (v.version.clone(), m))).collect();
    for row in rows {
        row.function_versions = model_of.iter().filter(|(_, m)| **m == row.version).map(|(v, _)| v.clone()).collect();
        row.function_versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(0));
        let mine: BTreeSet<&String> = row.function_versions.iter().collect();
        for a in aliases {
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
