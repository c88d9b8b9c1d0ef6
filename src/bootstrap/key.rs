//! Where a compiled runtime lives in the user cache, and the key that names it. Pure: the environment comes
//! in as a lookup function, so tests pin every case.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::Architecture;

/// The Rust target `bootstrap` is compiled for on Lambda's Amazon Linux (glibc, linked statically).
pub fn target_triple(arch: Architecture) -> &'static str {
    match arch {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// `$XDG_CACHE_HOME/mlambda` when it is set to an absolute path (the XDG rule), else the platform's cache
/// directory under `HOME`; `None` when neither is known.
pub fn cache_root(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join("mlambda"));
    }
    if cfg!(windows) {
        return set("LOCALAPPDATA").map(|d| d.join("mlambda").join("cache"));
    }
    let home = set("HOME")?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library").join("Caches").join("mlambda")
    } else {
        home.join(".cache").join("mlambda")
    })
}

/// One runtime build: this mlambda version, one target, one embedded source (which holds the rustflags,
/// the profiles and the lock file), so a new mlambda or changed flags never reuse a stale `bootstrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    pub version: String,
    pub target: &'static str,
    /// sha256 of the embedded source archive, hex.
    pub source_sha256: String,
}

impl CacheKey {
    /// `0.1.0-x86_64-unknown-linux-gnu-0123456789abcdef`: readable, and a path component on every OS.
    pub fn name(&self) -> String {
        let short = self.source_sha256.get(..16).unwrap_or(&self.source_sha256);
        format!("{}-{}-{short}", self.version, self.target)
    }
}

/// The files of the cache for one key, all under `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePaths {
    /// The finished binary `mlambda build` reads.
    pub bootstrap: PathBuf,
    /// The standalone runtime workspace, extracted from the embedded archive.
    pub source: PathBuf,
    /// cargo's target dir, shared by every key so a new mlambda version recompiles only what changed.
    pub target_dir: PathBuf,
}

impl CachePaths {
    pub fn new(root: &Path, key: &CacheKey) -> CachePaths {
        let name = key.name();
        CachePaths {
            bootstrap: root.join("runtime").join(&name).join("bootstrap"),
            source: root.join("build").join(&name),
            target_dir: root.join("target"),
        }
    }

    /// Where cargo leaves `bootstrap` for `target` with the `lambda` profile.
    pub fn built(&self, target: &str) -> PathBuf {
        self.target_dir.join(target).join("lambda").join("bootstrap")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn xdg_cache_home_wins_when_absolute() {
        let e = env(&[("XDG_CACHE_HOME", "/tmp/xdg"), ("HOME", "/home/u")]);
        assert_eq!(cache_root(e), Some(PathBuf::from("/tmp/xdg/mlambda")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn home_cache_is_the_fallback_and_a_relative_xdg_is_ignored() {
        let e = env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/home/u")]);
        assert_eq!(cache_root(e), Some(PathBuf::from("/home/u/.cache/mlambda")));
        assert_eq!(
            cache_root(env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "")])),
            cache_root(env(&[("HOME", "/home/u")]))
        );
        assert_eq!(cache_root(env(&[])), None);
        assert_eq!(cache_root(env(&[("HOME", "")])), None);
    }

    fn key(version: &str, target: &'static str, sha: &str) -> CacheKey {
        CacheKey { version: version.into(), target, source_sha256: sha.into() }
    }

    #[test]
    fn the_key_names_version_target_and_source() {
        let sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let k = key("0.1.0", "x86_64-unknown-linux-gnu", sha);
        assert_eq!(k.name(), "0.1.0-x86_64-unknown-linux-gnu-0123456789abcdef");
        let others = [
            key("0.1.1", "x86_64-unknown-linux-gnu", sha),
            key("0.1.0", "aarch64-unknown-linux-gnu", sha),
            key("0.1.0", "x86_64-unknown-linux-gnu", &sha.replace('0', "f")),
        ];
        for other in others {
            assert_ne!(other.name(), k.name(), "{other:?}");
        }
    }

    #[test]
    fn paths_for_a_key_live_under_the_root() {
        let k = key("0.1.0", "aarch64-unknown-linux-gnu", "ab");
        let p = CachePaths::new(Path::new("/c/mlambda"), &k);
        assert_eq!(p.bootstrap, PathBuf::from("/c/mlambda/runtime/0.1.0-aarch64-unknown-linux-gnu-ab/bootstrap"));
        assert_eq!(p.source, PathBuf::from("/c/mlambda/build/0.1.0-aarch64-unknown-linux-gnu-ab"));
        assert_eq!(
            p.built("aarch64-unknown-linux-gnu"),
            PathBuf::from("/c/mlambda/target/aarch64-unknown-linux-gnu/lambda/bootstrap")
        );
    }

    #[test]
    fn triples_follow_the_architecture() {
        assert_eq!(target_triple(Architecture::X86_64), "x86_64-unknown-linux-gnu");
        assert_eq!(target_triple(Architecture::Arm64), "aarch64-unknown-linux-gnu");
    }
}
