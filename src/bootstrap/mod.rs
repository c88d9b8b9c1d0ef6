//! Where `mlambda build` gets the static `bootstrap` its image carries, in order: `--runtime` or
//! `MLAMBDA_RUNTIME`, the one a wheel installed beside this binary, the user cache (one binary per mlambda
//! version, target and embedded source), an mlambda source checkout, or a one-time compile of the runtime source
//! embedded in this binary.
pub mod compile;
pub mod embedded;
pub mod key;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use serde::Serialize;

use crate::config::Architecture;
use crate::ui::Printer;
use key::{CacheKey, CachePaths};

/// How `bootstrap` is compiled for a `FROM scratch` image (static, not position-independent); the same file
/// the checkout's scripts use, and part of the embedded archive, so of the cache key.
pub const RUSTFLAGS: &str = include_str!("../../runtime/rustflags").trim_ascii();

/// Which source gave the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Flag,
    Env,
    /// Installed by the wheel beside this binary (`pip install mlambda`).
    Bundled,
    Cache,
    Checkout,
    /// The runtime source inside this binary, compiled into the cache.
    #[serde(rename = "embedded-source")]
    Embedded,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Bundled => "bundled",
            Source::Cache => "cache",
            Source::Checkout => "checkout",
            Source::Embedded => "embedded-source",
        })
    }
}

/// Where the runtime is (or will be, once built) and which source gave it; `runtime path`'s JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub path: PathBuf,
    pub source: Source,
    pub exists: bool,
    /// The cache key for this mlambda, target and embedded source, whatever the source.
    pub cache_key: String,
    #[serde(skip)]
    pub target: &'static str,
    /// Why a source that should have been there was passed over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = match (self.source, self.exists) {
            (Source::Embedded, _) => " (not built yet: `mlambda build` or `mlambda runtime build` compiles it once)",
            (Source::Checkout, false) => " (not built yet: `mlambda build` builds it with cargo)",
            (_, false) => " (missing)",
            _ => "",
        };
        writeln!(f, "path:   {}", self.path.display())?;
        writeln!(f, "source: {}{note}", self.source)?;
        writeln!(f, "key:    {}", self.cache_key)?;
        if let Some(n) = &self.note {
            writeln!(f, "note:   {n}")?;
        }
        Ok(())
    }
}

/// Where a wheel put the bootstrap for `target`, given the `mlambda` it installed as `<prefix>/bin/mlambda`:
/// `<prefix>/lib/python3.X/site-packages/mlambda_bootstrap/<target>` (`lib64` and Debian's `dist-packages` too;
/// a `--user` install keeps the same shape under `~/.local`). It sits alone in its own package directory, so
/// `pip uninstall` removes the directory with it and leaves nothing behind.
pub fn bundled_path(exe: &Path, target: &str) -> Option<PathBuf> {
    let prefix = exe.parent()?.parent()?;
    let mut candidates = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib)) else { continue };
        for python in entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("python")) {
            for packages in ["site-packages", "dist-packages"] {
                candidates.push(python.path().join(packages).join(BUNDLE_DIR).join(target));
            }
        }
    }
    candidates.sort();
    candidates
        .iter()
        .find(|c| c.is_file())
        .or_else(|| candidates.iter().find(|c| c.parent().is_some_and(Path::is_dir)))
        .cloned()
}

/// The wheel's package directory that holds the bootstrap per target.
pub const BUNDLE_DIR: &str = "mlambda_bootstrap";

/// The cache key of this binary's embedded runtime for `arch`.
pub fn cache_key(arch: Architecture) -> CacheKey {
    CacheKey {
        version: env!("CARGO_PKG_VERSION").to_string(),
        target: key::target_triple(arch),
        source_sha256: embedded::sha256().to_string(),
    }
}

/// The cache files for `arch`, under `$XDG_CACHE_HOME/mlambda` or the platform's cache directory.
pub fn cache_paths(arch: Architecture) -> Result<(CacheKey, CachePaths), Error> {
    let key = cache_key(arch);
    let root = key::cache_root(|name| std::env::var_os(name)).ok_or(Error::NoCacheDir)?;
    let paths = CachePaths::new(&root, &key);
    Ok((key, paths))
}

/// Finds the runtime for `arch` without building anything. `explicit` is `--runtime`, which clap also fills
/// from `MLAMBDA_RUNTIME`; the environment tells the two apart.
pub fn locate(explicit: Option<PathBuf>, arch: Architecture) -> Result<Located, Error> {
    let key = cache_key(arch);
    let target = key.target;
    let root = key::cache_root(|name| std::env::var_os(name));
    let paths = root.as_deref().map(|r| CachePaths::new(r, &key));
    let found = |path: PathBuf, source, note| Located {
        exists: path.is_file(),
        path,
        source,
        cache_key: key.name(),
        target,
        note,
    };
    if let Some(path) = explicit {
        let from_env = std::env::var_os("MLAMBDA_RUNTIME").is_some_and(|v| Path::new(&v) == path);
        return Ok(found(path, if from_env { Source::Env } else { Source::Flag }, None));
    }
    let bundled = std::env::current_exe().ok().and_then(|exe| bundled_path(&exe, target));
    if let Some(b) = bundled.as_ref().filter(|b| b.is_file()) {
        return Ok(found(b.clone(), Source::Bundled, None));
    }
    // the wheel's package directory without its bootstrap: deleted after install
    let note = bundled.map(|b| {
        format!(
            "the bundled bootstrap `{}` is missing, so the next source is used; \
             `pip install --force-reinstall mlambda` puts it back",
            b.display()
        )
    });
    if let Some(p) = paths.as_ref().filter(|p| p.bootstrap.is_file()) {
        return Ok(found(p.bootstrap.clone(), Source::Cache, note));
    }
    let cwd = std::env::current_dir().ok();
    if let Some(ws) = cwd.as_deref().and_then(checkout) {
        let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| ws.join("target"));
        let binary = target_dir.join(target).join("lambda").join("bootstrap");
        return Ok(found(binary, Source::Checkout, note));
    }
    let paths = paths.ok_or(Error::NoCacheDir)?;
    Ok(found(paths.bootstrap, Source::Embedded, note))
}

/// The mlambda source checkout `dir` is in, if any.
pub fn checkout(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|text| crate::image::context::is_mlambda_workspace(&text))
        })
        .map(Path::to_path_buf)
}

/// The runtime's path for `mlambda build`, compiling it from the embedded source when that is where it comes
/// from (a dry run refuses instead: it must not spend minutes). `Source::Checkout` is returned as located:
/// the build command runs cargo in the checkout itself.
pub fn ensure(printer: &Printer, found: &Located, arch: Architecture, dry_run: bool) -> Result<PathBuf, Error> {
    if found.source != Source::Embedded {
        printer.detail(format!("runtime: `{}` ({})", found.path.display(), found.source));
        return Ok(found.path.clone());
    }
    if dry_run {
        return Err(Error::NotBuilt { target: found.target, path: found.path.clone() });
    }
    let (key, paths) = cache_paths(arch)?;
    Ok(compile::compile(printer, &key, &paths, false)?.path)
}

/// Why the runtime cannot be found or made, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot compile the runtime: `cargo` is not on PATH")]
    NoCargo,
    #[error("cannot compile the runtime: the Rust target `{target}` is not installed")]
    MissingTarget { target: &'static str },
    #[error("cannot compile the runtime for `{target}`: its linker `{linker}` is not on PATH")]
    MissingLinker { target: &'static str, linker: String, var: String },
    #[error("cannot find a cache directory for the runtime: neither `XDG_CACHE_HOME` nor `HOME` is set")]
    NoCacheDir,
    #[error("the runtime for {target} is not built yet (`{}`), so the dry run cannot hash it", path.display())]
    NotBuilt { target: &'static str, path: PathBuf },
    #[error("cannot {what} `{}`: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("cannot run `{}`: {source}", cargo.to_string_lossy())]
    Spawn { cargo: OsString, source: std::io::Error },
    #[error("`{step}` failed for the runtime ({status}):{}", tail.iter().map(|l| format!("\n  | {l}")).collect::<String>())]
    CargoFailed { step: &'static str, target: &'static str, status: ExitStatus, tail: Vec<String> },
    #[error("cargo would change the runtime's pinned dependencies: {}", packages.join(", "))]
    LockChanged { packages: Vec<String> },
}

const INSTALL_RUST: &str = "install Rust with `curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh`, \
    open a new shell and run `mlambda runtime build`";
const OR_PREBUILT: &str = "or pass `--runtime PATH` (or set `MLAMBDA_RUNTIME`) to a prebuilt static `bootstrap`";

impl Error {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            Error::NoCargo | Error::Spawn { .. } => format!("{INSTALL_RUST}; {OR_PREBUILT}"),
            Error::MissingTarget { target } if target.starts_with("aarch64") => {
                let linker = if cfg!(target_arch = "aarch64") {
                    ""
                } else {
                    " and install a linker for it (on Debian or Ubuntu: `sudo apt-get install gcc-aarch64-linux-gnu`)"
                };
                format!("run `rustup target add {target}`{linker}, then `mlambda runtime build --arch arm64`; {OR_PREBUILT}")
            }
            Error::MissingTarget { target } => {
                format!("run `rustup target add {target}`, then `mlambda runtime build`; {OR_PREBUILT}")
            }
            Error::MissingLinker { target, linker, var } => format!(
                "install it (on Debian or Ubuntu: `sudo apt-get install gcc-{}`), or set `{var}` to a linker for \
                 {target}; {OR_PREBUILT}",
                linker.trim_end_matches("-gcc").replace('_', "-")
            ),
            Error::NoCacheDir => format!("set `XDG_CACHE_HOME` to a writable directory; {OR_PREBUILT}"),
            Error::NotBuilt { .. } => {
                "run `mlambda runtime build` once (a few minutes), or `mlambda build` without `--dry-run`; \
                 or pass `--runtime PATH`"
                    .into()
            }
            Error::Io { .. } => {
                format!(
                    "the runtime cache must be writable: fix its permissions or set `XDG_CACHE_HOME`; {OR_PREBUILT}"
                )
            }
            Error::CargoFailed { target, tail, .. } => cargo_hint(target, tail),
            Error::LockChanged { .. } => format!(
                "the `Cargo.lock` inside this mlambda does not pin the runtime's dependencies; reinstall mlambda with \
                 `cargo install --locked`, or report it; {OR_PREBUILT}"
            ),
        }
    }
}

/// The likely fix for a failed cargo run, from its last lines.
fn cargo_hint(target: &str, tail: &[String]) -> String {
    let said = |s: &str| tail.iter().any(|l| l.contains(s));
    if said("can't find crate for `std`") || said("target may not be installed") {
        format!("run `rustup target add {target}`, then `mlambda runtime build`; {OR_PREBUILT}")
    } else if said("linker") && (said("not found") || said("No such file")) {
        format!("install a C linker for {target} (on Debian or Ubuntu: `sudo apt-get install gcc`); {OR_PREBUILT}")
    } else if said("requires rustc") || said("is not supported by") || said("feature `edition") {
        format!("this Rust is too old for the runtime: `rustup update`, then `mlambda runtime build`; {OR_PREBUILT}")
    } else if said("failed to download") || said("failed to get") || said("Couldn't resolve host") {
        format!("cargo needs crates.io once to fetch the runtime's dependencies: check the network; {OR_PREBUILT}")
    } else {
        format!("cargo's last lines are above; `rustup update` fixes an old toolchain; {OR_PREBUILT}")
    }
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        let help = e.help();
        crate::error::Error::user(e).help(help)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_toolchain_gap_says_what_to_install() {
        let no_cargo = Error::NoCargo;
        assert!(no_cargo.help().contains("https://sh.rustup.rs"), "{}", no_cargo.help());
        let arm = Error::MissingTarget { target: "aarch64-unknown-linux-gnu" };
        assert!(arm.help().contains("rustup target add aarch64-unknown-linux-gnu"), "{}", arm.help());
        if !cfg!(target_arch = "aarch64") {
            assert!(arm.help().contains("gcc-aarch64-linux-gnu"), "{}", arm.help());
        }
        let x86 = Error::MissingTarget { target: "x86_64-unknown-linux-gnu" };
        assert!(x86.help().contains("rustup target add x86_64-unknown-linux-gnu"), "{}", x86.help());
    }

    #[test]
    fn cargo_failures_get_a_hint_from_their_output() {
        let t = |lines: &[&str]| {
            cargo_hint("aarch64-unknown-linux-gnu", &lines.iter().map(|l| l.to_string()).collect::<Vec<_>>())
        };
        assert!(
            t(&["error[E0463]: can't find crate for `std`"]).contains("rustup target add aarch64-unknown-linux-gnu")
        );
        assert!(t(&["error: package `x v1` cannot be built because it requires rustc 1.99"]).contains("rustup update"));
        assert!(t(&["error: boom"]).contains("cargo's last lines"));
    }

    #[test]
    fn the_json_shape_is_path_source_exists_key() {
        let l = Located {
            path: "/c/bootstrap".into(),
            source: Source::Embedded,
            exists: false,
            cache_key: "k".into(),
            target: "x86_64-unknown-linux-gnu",
            note: None,
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"path": "/c/bootstrap", "source": "embedded-source", "exists": false, "cache_key": "k"})
        );
        assert!(l.to_string().contains("source: embedded-source (not built yet"), "{l}");
    }

    #[test]
    fn a_wheels_bootstrap_is_found_in_the_site_packages_of_the_binarys_prefix() {
        let prefix = tempfile::tempdir().unwrap();
        let exe = prefix.path().join("bin/mlambda");
        let target = "x86_64-unknown-linux-gnu";
        assert_eq!(bundled_path(&exe, target), None);
        let dir = prefix.path().join("lib/python3.12/site-packages").join(BUNDLE_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        // the package directory without the file: found, so the caller can say it is missing
        assert_eq!(bundled_path(&exe, target), Some(dir.join(target)));
        std::fs::write(dir.join(target), b"elf").unwrap();
        assert_eq!(bundled_path(&exe, target), Some(dir.join(target)));
        assert_eq!(bundled_path(Path::new("mlambda"), target), None);
    }

    #[test]
    fn this_binarys_key_carries_its_version_and_source_hash() {
        let k = cache_key(Architecture::Arm64);
        assert!(k.name().starts_with(&format!("{}-aarch64-unknown-linux-gnu-", env!("CARGO_PKG_VERSION"))));
        assert!(k.name().ends_with(&embedded::sha256()[..16]));
        assert_eq!(RUSTFLAGS, String::from_utf8(embedded::file("runtime/rustflags").unwrap()).unwrap().trim());
    }

    #[test]
    fn the_checkout_is_found_from_inside_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(checkout(&here.join("src/bootstrap")).as_deref(), Some(here));
        assert_eq!(checkout(Path::new("/")), None);
    }
}
