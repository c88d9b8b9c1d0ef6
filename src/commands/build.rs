//! `mlambda build`: render the Dockerfile, pack the context (Dockerfile, static `bootstrap`, baked model) and
//! build a single-platform image with the engine's legacy builder, recorded in `state.build`; or, for
//! `function.package: zip`, pack `bootstrap` and the baked model into a deterministic zip in `.mlambda/`.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Ctx;

use crate::config::Architecture;
use crate::domain::{ModelVersion, PackageType};
use crate::error::{Error, Result};
use crate::image::archive;
use crate::image::context::{self, DockerfileSpec, Entry, FileSummary};
use crate::image::engine;
use crate::plan::lambda::ZIP_RUNTIME;
use crate::plan::naming;
use crate::report::Report;
use crate::settings::{BuildSettings, Project};
use crate::state;
use crate::ui::progress;

/// What `build` did, or would do with `--dry-run`.
#[derive(Debug, Serialize)]
pub struct BuildOutcome {
    pub dry_run: bool,
    /// `repository:tag` in the local engine.
    pub image: String,
    pub repository: String,
    pub tag: String,
    pub image_id: Option<String>,
    /// The legacy builder makes exactly one platform; no manifest list.
    pub platform: String,
    pub single_platform: bool,
    pub base: String,
    pub model_baked: bool,
    pub model_version: ModelVersion,
    pub model_sha256: String,
    pub runtime: String,
    pub labels: BTreeMap<String, String>,
    pub context_sha256: String,
    pub context_size: u64,
    pub context: Vec<FileSummary>,
    /// The builder's step lines (empty for `--dry-run`).
    pub steps: Vec<String>,
}

impl fmt::Display for BuildOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "would build {} for {} from `{}`", self.image, self.platform, self.base)?;
        } else {
            writeln!(f, "built {} ({}) for {}", self.image, self.image_id.as_deref().unwrap_or("?"), self.platform)?;
        }
        writeln!(f, "context ({} bytes, sha256 {}):", self.context_size, self.context_sha256)?;
        for file in &self.context {
            writeln!(f, "  {:<12} {:>10} bytes  sha256 {}", file.path, file.size, file.sha256)?;
        }
        writeln!(f, "labels:")?;
        for (k, v) in &self.labels {
            writeln!(f, "  {k}={v}")?;
        }
        Ok(())
    }
}

/// What `build` packed for `function.package: zip`, or would pack with `--dry-run`.
#[derive(Debug, Serialize)]
pub struct PackageOutcome {
    pub dry_run: bool,
    pub package: PackageType,
    /// The zip, in `.mlambda/`.
    pub path: String,
    pub sha256: String,
    /// The digest as Lambda will report it (`CodeSha256`).
    pub code_sha256: String,
    pub size: u64,
    pub runtime_family: &'static str,
    pub architecture: &'static str,
    pub model_baked: bool,
    pub model_version: ModelVersion,
    pub model_sha256: String,
    pub runtime: String,
    pub files: Vec<FileSummary>,
}

impl fmt::Display for PackageOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would pack" } else { "packed" };
        writeln!(f, "{verb} {} for {} on {}", self.path, self.architecture, self.runtime_family)?;
        writeln!(f, "zip ({} bytes, sha256 {}):", self.size, self.sha256)?;
        for file in &self.files {
            writeln!(f, "  {:<12} {:>10} bytes  sha256 {}", file.path, file.size, file.sha256)?;
        }
        Ok(())
    }
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &BuildSettings) -> Result<Report> {
    // What is cheap to check goes first: finding `bootstrap` may mean compiling it for minutes.
    super::require_model_file(&s.model_path, true)?;
    if p.config().function.package == PackageType::Zip {
        return package(ctx, p, s);
    }
    // Without an engine, a compiled runtime would be minutes spent for nothing.
    let docker = if s.dry_run { None } else { Some(engine::connect().await?) };
    let (mut outcome, tar) = prepare(ctx, p, s)?;
    let Some(docker) = docker else { return Ok(Report::new(outcome, true)) };
    let c = p.config();
    let platform = c.function.architecture.platform();
    let image = outcome.image.clone();
    ctx.printer.status(format!("building {image} for {platform} (legacy builder, base `{}`)", c.image.base));
    let spinner = progress::spinner(ctx.printer, format!("building {image}"));
    let built = engine::build(&docker, tar, &image, platform, |line| {
        spinner.set_message(line.to_string());
        ctx.printer.detail(line);
    })
    .await;
    spinner.finish_and_clear();
    let built = built.map_err(|f| build_failed(&f, &c.image.base))?;
    let (image_id, os, architecture) = engine::inspect(&docker, &image).await?;
    ctx.printer.detail(format!("image {image_id} is {os}/{architecture}"));
    let image_id = if image_id.is_empty() { built.image_id } else { image_id };

    state::update(&p.state_dir, |st| {
        st.build = Some(state::Build {
            image: image.clone(),
            tag: outcome.tag.clone(),
            image_id: image_id.clone(),
            model_version: outcome.model_version.clone(),
            model_sha256: Some(outcome.model_sha256.clone()),
        })
    })?;
    outcome.image_id = Some(image_id);
    outcome.steps = built.steps.into_iter().filter(|l| l.starts_with("Step ")).collect();
    Ok(Report::done(outcome))
}

/// `function.package: zip`: `bootstrap` (0755) and the baked model in `.mlambda/<function>.zip`, written through
/// a temporary file and a rename, and recorded in `state.package`.
fn package(ctx: &Ctx<'_>, p: &Project, s: &BuildSettings) -> Result<Report> {
    let c = p.config();
    let arch = c.function.architecture;
    let runtime = runtime(ctx, s, arch)?;
    let bootstrap = read_bootstrap(&runtime, arch, Some("the zip runs on `provided.al2023`, not this machine's libc"))?;
    let model_sha256 = model_sha256(&s.model_path)?;
    let mut entries = vec![Entry { path: "bootstrap".into(), mode: 0o755, data: bootstrap }];
    if c.model.bake {
        entries.push(Entry { path: "model.onnx".into(), mode: 0o644, data: read_model(&s.model_path)? });
    }
    let zip = archive::pack(&entries).map_err(|e| Error::local(format!("cannot pack the zip: {e}")))?;
    let path = p.state_dir.join(format!("{}.zip", c.function.name));
    let outcome = PackageOutcome {
        dry_run: s.dry_run,
        package: PackageType::Zip,
        path: path.display().to_string(),
        code_sha256: archive::code_sha256(&zip.sha256).unwrap_or_default(),
        sha256: zip.sha256.clone(),
        size: zip.bytes.len() as u64,
        runtime_family: ZIP_RUNTIME,
        architecture: arch.as_str(),
        model_baked: c.model.bake,
        model_version: s.model_version.clone(),
        model_sha256,
        runtime: runtime.display().to_string(),
        files: zip.files,
    };
    if s.dry_run {
        return Ok(Report::new(outcome, true));
    }
    state::write_atomically(&path, &zip.bytes).map_err(|e| crate::error::io_error(&path, "write", e))?;
    state::update(&p.state_dir, |st| {
        st.package = Some(state::Package {
            path: path.clone(),
            sha256: outcome.sha256.clone(),
            size: outcome.size,
            model_version: outcome.model_version.clone(),
            model_sha256: outcome.model_sha256.clone(),
        })
    })?;
    Ok(Report::done(outcome))
}

/// The `bootstrap` to package: `--runtime`, the user cache, this checkout's build, or compiled from the
/// embedded source.
fn runtime(ctx: &Ctx<'_>, s: &BuildSettings, arch: Architecture) -> Result<PathBuf> {
    match crate::bootstrap::locate(s.runtime.clone(), arch)? {
        found if found.source == crate::bootstrap::Source::Checkout => build_runtime(ctx, arch, s.dry_run),
        found => Ok(crate::bootstrap::ensure(ctx.printer, &found, arch, s.dry_run)?),
    }
}

/// Everything up to the engine: the runtime binary checked, the model hashed, the context packed and named.
/// Returns what `build` reports and the context's tar.
fn prepare(ctx: &Ctx<'_>, p: &Project, s: &BuildSettings) -> Result<(BuildOutcome, Vec<u8>)> {
    let c = p.config();
    let arch = c.function.architecture;
    let runtime = runtime(ctx, s, arch)?;
    let needs_static = (c.image.base == "scratch").then_some("a scratch image has no loader and no libc");
    let bootstrap = read_bootstrap(&runtime, arch, needs_static)?;
    let model_sha256 = model_sha256(&s.model_path)?;
    let labels = labels(p, &s.model_version, &model_sha256);
    let dockerfile = context::render_dockerfile(&DockerfileSpec {
        base: c.image.base.clone(),
        bake_model: c.model.bake,
        features: c.model.features.clone(),
        model_version: s.model_version.to_string(),
        namespace: c.alarms.namespace.clone(),
        labels: labels.clone(),
        mlambda_version: env!("CARGO_PKG_VERSION").to_string(),
    });
    let mut entries = vec![
        Entry { path: "Dockerfile".into(), mode: 0o644, data: dockerfile.into_bytes() },
        Entry { path: "bootstrap".into(), mode: 0o755, data: bootstrap },
    ];
    if c.model.bake {
        entries.push(Entry { path: "model.onnx".into(), mode: 0o644, data: read_model(&s.model_path)? });
    }
    let packed =
        context::assemble(&entries).map_err(|e| Error::local(format!("cannot pack the build context: {e}")))?;
    let tag = s.tag.clone().unwrap_or_else(|| naming::image_tag(s.model_version.as_str(), &packed.sha256));
    let outcome = BuildOutcome {
        dry_run: s.dry_run,
        image: format!("{}:{tag}", c.image.repository),
        repository: c.image.repository.clone(),
        tag,
        image_id: None,
        platform: arch.platform().to_string(),
        single_platform: true,
        base: c.image.base.clone(),
        model_baked: c.model.bake,
        model_version: s.model_version.clone(),
        model_sha256,
        runtime: runtime.display().to_string(),
        labels,
        context_sha256: packed.sha256.clone(),
        context_size: packed.tar.len() as u64,
        context: packed.files.clone(),
        steps: vec![],
    };
    Ok((outcome, packed.tar))
}

fn model_error(path: &Path, e: impl fmt::Display) -> Error {
    Error::user(format!("cannot read the model `{}`: {e}", path.display()))
        .help("set `model.path` in mlambda.yaml to your ONNX file (relative to mlambda.yaml)")
}

/// The model's sha256, read in blocks.
fn model_sha256(path: &Path) -> Result<String> {
    crate::hash::file_sha256(path).map(|(sha, _)| sha).map_err(|e| model_error(path, e))
}

/// The model's bytes, to bake into the image.
fn read_model(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| model_error(path, e))
}

/// The image's labels: which model and mlambda made it, and from which commit.
fn labels(p: &Project, model_version: &ModelVersion, model_sha256: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("org.mlambda.model.version".to_string(), model_version.to_string()),
        ("org.mlambda.model.sha256".to_string(), model_sha256.to_string()),
        ("org.mlambda.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    if let Some(commit) = git_commit(&p.loaded.dir) {
        labels.insert("org.mlambda.git.commit".into(), commit);
    }
    labels
}

/// How `bootstrap` is compiled for a `FROM scratch` image: static (no libc in the image) and not
/// position-independent (a static-pie carries ~1 MB of relocations for nothing). One file, so the scripts
/// that build and bench it use the same flags.
pub const RUNTIME_RUSTFLAGS: &str = include_str!("../../runtime/rustflags").trim_ascii();

/// The cargo command line that builds `bootstrap` for `target`, for messages.
fn runtime_build_command(target: &str) -> String {
    format!("RUSTFLAGS='{RUNTIME_RUSTFLAGS}' cargo build -p mlambda-runtime --bin bootstrap --profile lambda --target {target}")
}

/// Reads `bootstrap` and refuses what could never start where it runs: not an ELF executable, another
/// architecture, or a dynamically linked binary where `needs_static` says why it must be static.
fn read_bootstrap(path: &Path, arch: Architecture, needs_static: Option<&str>) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::user(format!("cannot read the runtime binary `{}`: {e}", path.display())).help(format!(
            "pass `--runtime PATH` (or set `MLAMBDA_RUNTIME`) to a static `bootstrap`, e.g. one built with `{}`",
            runtime_build_command(target_triple(arch))
        ))
    })?;
    let target = target_triple(arch);
    let static_hint = format!("build with `{}`", runtime_build_command(target));
    let elf = context::parse_elf(&bytes).map_err(|why| {
        Error::user(format!("the runtime binary `{}` {why}", path.display()))
            .help(format!("`bootstrap` must be a Linux executable; {static_hint}"))
    })?;
    if elf.arch() != arch.as_str() {
        return Err(Error::user(format!(
            "the runtime binary `{}` is built for {}, but `function.architecture` is {}",
            path.display(),
            elf.arch(),
            arch.as_str()
        ))
        .help(format!("{static_hint}, or change `function.architecture`")));
    }
    if let Some(why) = needs_static.filter(|_| elf.dynamic) {
        return Err(Error::user(format!(
            "`bootstrap` is dynamically linked (`{}` has a PT_INTERP loader), and {why}",
            path.display()
        ))
        .help(format!("{static_hint}, or pass `--runtime` a static `bootstrap`")));
    }
    Ok(bytes)
}

fn target_triple(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// Without `--runtime`: inside an mlambda checkout, build the static `bootstrap` with cargo; elsewhere ask for the flag.
fn build_runtime(ctx: &Ctx<'_>, arch: Architecture, dry_run: bool) -> Result<PathBuf> {
    let cwd = std::env::current_dir().map_err(|e| Error::user(format!("cannot read the current directory: {e}")))?;
    let workspace = cwd
        .ancestors()
        .find(|d| std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|text| context::is_mlambda_workspace(&text)));
    let Some(workspace) = workspace else {
        return Err(Error::user(
            "no runtime binary: `--runtime` is not set and this is not an mlambda source checkout",
        )
        .help("pass `--runtime PATH` (or set `MLAMBDA_RUNTIME`) to a static `bootstrap` binary"));
    };
    let target = target_triple(arch);
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let binary = target_dir.join(target).join("lambda").join("bootstrap");
    let args = ["build", "-p", "mlambda-runtime", "--bin", "bootstrap", "--profile", "lambda", "--target", target];
    if dry_run {
        ctx.printer.status(format!("would run `{}` in {}", runtime_build_command(target), workspace.display()));
        if !binary.is_file() {
            return Err(Error::user(format!("`{}` is not built yet, so the dry run cannot hash it", binary.display()))
                .help("run `mlambda build` without `--dry-run`, or pass `--runtime PATH`"));
        }
        return Ok(binary);
    }
    ctx.printer.status(format!("building the static `bootstrap` for {target} with cargo"));
    let status = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(workspace)
        .env("RUSTFLAGS", RUNTIME_RUSTFLAGS)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            Error::user(format!("cannot run cargo to build `bootstrap`: {e}"))
                .help("install Rust (https://rustup.rs), or pass `--runtime PATH` to a prebuilt static `bootstrap`")
        })?;
    if !status.success() {
        return Err(Error::user(format!("cargo could not build `bootstrap` for {target} ({status})")).help(format!(
            "see cargo's errors above; `rustup target add {target}` may be missing, or pass `--runtime PATH`"
        )));
    }
    Ok(binary)
}

/// The project's commit, when it is in a git checkout.
fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}

/// The failed step, its output and the daemon's words, with help for that kind of failure.
fn build_failed(f: &engine::BuildFailure, base: &str) -> Error {
    let step = f.failed_step().unwrap_or("the first step");
    let from = f.lines.iter().rposition(|l| l.starts_with("Step ")).unwrap_or(0);
    let output: String = f.lines[from..].iter().map(|l| format!("\n  | {l}")).collect();
    let message = format!("the image build failed at `{step}`: {}{output}", f.message);
    if f.is_base_pull() {
        Error::user(message).help(format!(
            "the engine cannot pull `image.base` (`{base}`); use `scratch` (bootstrap is static), \
             or a base image the engine can reach (`docker pull` or `docker load` it first)"
        ))
    } else {
        Error::local(message)
            .help("the daemon's message and the step's output are above; fix that step and re-run `mlambda build`")
    }
}
