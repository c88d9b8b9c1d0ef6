//! `mlambda push`: ensure the ECR repository, tag the built image for the registry, push it with per-layer
//! progress, and record the digest the registry serves so deploys always reference the image by digest; or
//! upload the zip package to S3 under its content-addressed key.
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use indicatif::HumanBytes;
use serde::Serialize;

use super::Ctx;
use crate::aws::{ecr, s3};
use crate::config::Config;
use crate::domain::{ImageDigest, PackageType};
use crate::error::{Error, Result};
use crate::image::archive;
use crate::image::engine::{self, PushEvent, PushFailure};
use crate::plan::naming;
use crate::report::Report;
use crate::settings::{Project, PushSettings};
use crate::state;
use crate::ui::progress::{self, LayerBars};

/// What `push` did, or would do with `--dry-run`.
#[derive(Debug, Serialize)]
pub struct PushOutcome {
    pub dry_run: bool,
    pub repository: String,
    /// The repository was missing and is (or would be) created.
    pub repository_created: bool,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    /// `registry/repository`.
    pub repository_uri: String,
    /// The local image pushed, `repository:tag`.
    pub image: String,
    pub tag: String,
    pub digest: Option<String>,
    /// `registry/repository@sha256:…`: what deploy puts on the function.
    pub image_uri: Option<String>,
    pub layers_pushed: u32,
    pub layers_existing: u32,
}

impl PushOutcome {
    /// What the push will do: the repository's rules are ECR's when it exists, else the config's.
    fn planned(c: &Config, build: &state::Build, existing: Option<&ecr::Repository>, dry_run: bool) -> PushOutcome {
        let (scan_on_push, immutable_tags) = match existing {
            Some(r) => (r.scan_on_push, r.immutable_tags),
            None => (c.image.scan_on_push, c.image.immutable_tags),
        };
        PushOutcome {
            dry_run,
            repository: c.image.repository.clone(),
            repository_created: existing.is_none(),
            scan_on_push,
            immutable_tags,
            repository_uri: String::new(),
            image: build.image.clone(),
            tag: build.tag.clone(),
            digest: None,
            image_uri: None,
            layers_pushed: 0,
            layers_existing: 0,
        }
    }
}

impl fmt::Display for PushOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.repository_created { "create" } else { "use" };
        if self.dry_run {
            writeln!(
                f,
                "would {verb} repository {} (scan on push: {}, immutable tags: {})",
                self.repository, self.scan_on_push, self.immutable_tags
            )?;
            return writeln!(f, "would push {} as {}:{}", self.image, self.repository_uri, self.tag);
        }
        writeln!(f, "pushed {}:{}", self.repository_uri, self.tag)?;
        if self.layers_pushed == 0 {
            writeln!(f, "0 layers uploaded, {} already in the registry", self.layers_existing)?;
        } else {
            writeln!(f, "{} layers uploaded, {} already in the registry", self.layers_pushed, self.layers_existing)?;
        }
        writeln!(f, "digest {}", self.digest.as_deref().unwrap_or("?"))?;
        writeln!(f, "image {}", self.image_uri.as_deref().unwrap_or("?"))
    }
}

/// What `push` did with a zip package, or would do with `--dry-run`.
#[derive(Debug, Serialize)]
pub struct PackagePushOutcome {
    pub dry_run: bool,
    pub package: PackageType,
    pub bucket: String,
    pub bucket_created: bool,
    pub key: String,
    pub uri: String,
    pub sha256: String,
    pub code_sha256: String,
    pub size: u64,
    /// `upload`, or `already_uploaded` when the key already holds these bytes.
    pub action: &'static str,
}

impl fmt::Display for PackagePushOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = match (self.dry_run, self.action) {
            (true, "upload") => "would upload",
            (true, _) | (false, "already_uploaded") => "already in the bucket:",
            (false, _) => "uploaded",
        };
        writeln!(f, "{done} {} ({})", self.uri, HumanBytes(self.size))?;
        writeln!(f, "  sha256 {}", self.sha256)?;
        writeln!(f, "  CodeSha256 {}", self.code_sha256)
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &PushSettings) -> Result<Report> {
    if p.config().function.package == PackageType::Zip {
        return push_package(ctx, p, s).await;
    }
    let c = p.config();
    let build = ctx.state(p)?.build.ok_or_else(|| {
        Error::user("no image is built yet").help("run `mlambda build` first; push sends the image it records")
    })?;
    let aws = ctx.aws().await?;
    let name = &c.image.repository;
    let existing = ecr::describe_repository(&aws, name).await?;
    let mut outcome = PushOutcome::planned(c, &build, existing.as_ref(), s.dry_run);
    let (scan_on_push, immutable_tags) = (outcome.scan_on_push, outcome.immutable_tags);
    if s.dry_run {
        let registry = match &s.registry {
            Some(r) => r.clone(),
            None => ecr::authorization(&aws).await?.registry_host(),
        };
        outcome.repository_uri = format!("{registry}/{name}");
        return Ok(Report::new(outcome, true));
    }

    if outcome.repository_created {
        ctx.printer.status(format!(
            "creating ECR repository {name} (scan on push: {scan_on_push}, immutable tags: {immutable_tags})"
        ));
        ecr::create_repository(&aws, name, scan_on_push, immutable_tags).await?;
    }
    let auth = ecr::authorization(&aws).await?;
    let registry = s.registry.clone().unwrap_or_else(|| auth.registry_host());
    let repository_uri = format!("{registry}/{name}");
    let credentials = engine::credentials(&auth.username, &auth.password, &registry);
    let docker = engine::connect().await?;
    let target = Target { registry: &registry, repository_uri: &repository_uri, tag: &build.tag };
    let pushed = upload(ctx, &docker, &build.image, &target, credentials.clone()).await?;
    let digest = confirm_digest(ctx, &docker, &target, credentials, &pushed).await?;
    let image_uri = format!("{repository_uri}@{digest}");
    state::update(&p.state_dir, |st| {
        st.push = Some(state::Push {
            repository_uri: repository_uri.clone(),
            tag: build.tag.clone(),
            digest: digest.clone(),
            image_uri: image_uri.clone(),
        })
    })?;
    outcome.repository_uri = repository_uri;
    outcome.digest = Some(digest.to_string());
    outcome.image_uri = Some(image_uri);
    outcome.layers_pushed = pushed.layers_pushed;
    outcome.layers_existing = pushed.layers_existing;
    Ok(Report::done(outcome))
}

/// Uploads the zip `build` packed to `<package prefix>/<function>/<sha256>.zip`, after checking the file still
/// has the bytes `build` recorded. A key that already holds them is not uploaded again.
async fn push_package(ctx: &Ctx<'_>, p: &Project, s: &PushSettings) -> Result<Report> {
    let c = p.config();
    let built = ctx.state(p)?.package.ok_or_else(|| {
        Error::user("no zip package is built yet").help("run `mlambda build` first; push uploads the zip it records")
    })?;
    let (sha256, size) = verify_package(&built)?;
    let aws = ctx.aws().await?;
    let bucket = c.package_bucket().to_string();
    let key = naming::package_key(c.package_prefix(), &c.function.name, &sha256);
    let bucket_exists = s3::bucket_exists(&aws, &bucket).await?;
    if !bucket_exists && !s.create_bucket {
        return Err(Error::user(format!("bucket `{bucket}` (`package.bucket`, else `model.bucket`) does not exist"))
            .help("create it, or pass `--create-bucket` (`mlambda up --create-bucket` does)"));
    }
    let head = if bucket_exists { s3::head_object(&aws, &bucket, &key).await? } else { None };
    let action = match head.as_ref().map(|h| h.metadata.get("sha256")) {
        None => "upload",
        Some(Some(there)) if *there == sha256 => "already_uploaded",
        Some(there) => {
            return Err(Error::cloud(format!(
                "`s3://{bucket}/{key}` holds other bytes than its name says (sha256 {})",
                there.map_or("unknown", String::as_str)
            ))
            .help("something other than mlambda wrote that key; delete the object and re-run `mlambda push`"))
        }
    };
    let outcome = PackagePushOutcome {
        dry_run: s.dry_run,
        package: PackageType::Zip,
        uri: format!("s3://{bucket}/{key}"),
        bucket_created: !bucket_exists,
        bucket,
        key,
        code_sha256: archive::code_sha256(&sha256).unwrap_or_default(),
        sha256,
        size,
        action,
    };
    if s.dry_run {
        return Ok(Report::new(outcome, true));
    }
    if !bucket_exists {
        ctx.printer.status(format!("creating bucket `{}` with versioning and default encryption", outcome.bucket));
        s3::create_bucket(&aws, &outcome.bucket).await?;
    }
    if action == "upload" {
        ctx.printer.status(format!("uploading {} to {}", HumanBytes(size), outcome.uri));
        let bar = progress::bytes(ctx.printer, size, "zip package".to_string());
        let metadata = BTreeMap::from([("sha256".to_string(), outcome.sha256.clone())]);
        let res = s3::upload_file(&aws, &outcome.bucket, &outcome.key, &built.path, &metadata, &|n| bar.inc(n)).await;
        bar.finish_and_clear();
        res?;
    }
    state::update(&p.state_dir, |st| {
        st.package_push = Some(state::PackagePush {
            bucket: outcome.bucket.clone(),
            key: outcome.key.clone(),
            sha256: outcome.sha256.clone(),
            code_sha256: outcome.code_sha256.clone(),
        })
    })?;
    Ok(Report::done(outcome))
}

/// The zip's sha256 and size, which must still be what `build` recorded.
fn verify_package(built: &state::Package) -> Result<(String, u64)> {
    let (sha256, size) = crate::hash::file_sha256(&built.path).map_err(|e| {
        Error::user(format!("cannot read the zip `{}`: {e}", built.path.display())).help("run `mlambda build` again")
    })?;
    if sha256 != built.sha256 {
        return Err(Error::user(format!(
            "the zip `{}` changed after `mlambda build` (sha256 {sha256}, build recorded {})",
            built.path.display(),
            built.sha256
        ))
        .help("run `mlambda build` again"));
    }
    Ok((sha256, size))
}

/// Where the image goes: `registry/repository:tag`.
struct Target<'a> {
    registry: &'a str,
    repository_uri: &'a str,
    tag: &'a str,
}

impl Target<'_> {
    fn reference(&self) -> String {
        format!("{}:{}", self.repository_uri, self.tag)
    }
}

/// Tags the local image for the registry and pushes it with per-layer progress.
async fn upload(
    ctx: &Ctx<'_>,
    docker: &engine::Docker,
    image: &str,
    to: &Target<'_>,
    credentials: engine::Credentials,
) -> Result<engine::Pushed> {
    engine::tag(docker, image, to.repository_uri, to.tag).await?;
    ctx.printer.status(format!("pushing {image} as {}", to.reference()));
    let registry = to.registry;
    let mut bars = LayerBars::new(ctx.printer);
    let pushed = engine::push(docker, to.repository_uri, to.tag, credentials, async |event| {
        show(&mut bars, event);
        match event {
            // The daemon retries a failed upload for a minute or more; when the registry itself is gone, say so now.
            PushEvent::Retrying(_) if !reachable(registry).await => {
                Err(format!("the registry `{registry}` stopped answering during the push"))
            }
            _ => Ok(()),
        }
    })
    .await;
    bars.finish();
    pushed.map_err(|(failure, done)| push_failed(&failure, &done, registry))
}

/// The registry's word, not the stream's, is what deploys trust.
async fn confirm_digest(
    ctx: &Ctx<'_>,
    docker: &engine::Docker,
    to: &Target<'_>,
    credentials: engine::Credentials,
    pushed: &engine::Pushed,
) -> Result<ImageDigest> {
    let target = to.reference();
    let digest = match engine::registry_digest(docker, &target, credentials).await {
        Ok(d) => {
            if let Some(streamed) = pushed.digest.as_deref().filter(|s| *s != d) {
                return Err(Error::cloud(format!(
                    "the registry serves {d} for `{target}`, but the push reported {streamed}"
                ))
                .help("another push may have moved the tag; use immutable tags (`image.immutable_tags: true`) and re-run `mlambda push`"));
            }
            d
        }
        Err(why) => match pushed.digest.clone() {
            Some(d) => {
                ctx.printer.warn(format!("cannot confirm the digest with the registry ({why}); using the pushed {d}"));
                d
            }
            None => {
                return Err(Error::cloud(format!("the push of `{target}` finished but no digest is known: {why}"))
                    .help("re-run `mlambda push`; nothing is uploaded twice"))
            }
        },
    };
    ImageDigest::parse(&digest)
        .map_err(|e| Error::cloud(format!("the registry served `{digest}` for `{target}`: {e}")).help(e.help()))
}

/// Whether anything answers HTTP at the registry host within a few seconds.
async fn reachable(registry: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = if registry.contains(':') { registry.to_string() } else { format!("{registry}:443") };
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.ok()?;
        s.write_all(b"HEAD /v2/ HTTP/1.0\r\n\r\n").await.ok()?;
        let mut buf = [0u8; 1];
        (s.read(&mut buf).await.ok()? > 0).then_some(())
    };
    matches!(tokio::time::timeout(Duration::from_secs(5), probe).await, Ok(Some(())))
}

/// Maps a failed push to an error that says who refused what and how to recover.
fn push_failed(failure: &PushFailure, done: &engine::Pushed, registry: &str) -> Error {
    let landed = format!(
        "{} layers had landed ({} uploaded, {} already there)",
        done.layers_pushed + done.layers_existing,
        done.layers_pushed,
        done.layers_existing
    );
    let message = match failure {
        PushFailure::Daemon(m) | PushFailure::Aborted(m) => m,
    };
    let lower = message.to_lowercase();
    if lower.contains("unauthorized") || lower.contains("authentication required") || lower.contains("denied") {
        return Error::cloud(format!("the registry `{registry}` refused the ECR token: {message}")).help(
            "check the token with `aws ecr get-authorization-token` for this account and region; \
             when `MLAMBDA_REGISTRY` or `image.registry` is set, check it is the registry that belongs to this ECR",
        );
    }
    if lower.contains("tag invalid") || lower.contains("cannot be overwritten") {
        return Error::user(format!("the registry `{registry}` refused the tag: {message}")).help(
            "the repository has immutable tags; build with a new `--tag` (the default tag changes with the content)",
        );
    }
    Error::cloud(format!("the push to `{registry}` failed: {message}; {landed}")).help(format!(
        "check that the registry `{registry}` is up and reachable, then re-run `mlambda push`: \
         layers that already landed are not uploaded again"
    ))
}

/// The push stream's events on the layer bars.
fn show(bars: &mut LayerBars, event: &PushEvent) {
    match event {
        PushEvent::Progress { current, total } => bars.layer(*current, *total),
        PushEvent::Pushed => bars.pushed(),
        PushEvent::AlreadyExists | PushEvent::Mounted => bars.existing(),
        PushEvent::Retrying(s) => bars.note(s.clone()),
        _ => {}
    }
}
