//! The runtime's source as it was when this mlambda was compiled (packed by the crate's `build.rs`): its
//! identity, its files, extracting it as a standalone workspace, and checking cargo kept its pinned versions.
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// A tar of `Cargo.toml` (generated standalone workspace), `Cargo.lock`, `runtime/Cargo.toml`,
/// `runtime/rustflags` and `runtime/src/**`.
pub const ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/runtime-source.tar"));

/// sha256 of `ARCHIVE`, hex; part of the cache key.
pub fn sha256() -> &'static str {
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| hex::encode(Sha256::digest(ARCHIVE)))
}

/// Every file of the archive, path and bytes, in archive order.
pub fn files() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(ARCHIVE);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().to_string();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data)?;
        out.push((path, data));
    }
    Ok(out)
}

/// One file of the archive.
pub fn file(path: &str) -> Option<Vec<u8>> {
    files().ok()?.into_iter().find(|(p, _)| p == path).map(|(_, d)| d)
}

/// Writes the archive into `dir` (created; files already there are overwritten). `tar` refuses entries
/// that would land outside `dir`.
pub fn extract(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tar::Archive::new(ARCHIVE).unpack(dir)
}

/// A locked package: name, version, source and checksum, as `Cargo.lock` records it.
pub type Locked = (String, String, String, String);

/// The `[[package]]` entries of a `Cargo.lock`.
pub fn locked_packages(lock: &str) -> BTreeSet<Locked> {
    let mut out = BTreeSet::new();
    let mut current: Option<Locked> = None;
    for line in lock.lines() {
        if line.trim() == "[[package]]" {
            out.extend(current.take());
            current = Some(Default::default());
            continue;
        }
        let (Some(pkg), Some((key, value))) = (current.as_mut(), line.split_once(" = ")) else { continue };
        let value = value.trim().trim_matches('"').to_string();
        match key.trim() {
            "name" => pkg.0 = value,
            "version" => pkg.1 = value,
            "source" => pkg.2 = value,
            "checksum" => pkg.3 = value,
            _ => {}
        }
    }
    out.extend(current);
    out
}

/// The packages of `pruned` that `pinned` does not hold at the same version, source and checksum: what
/// cargo would have added or changed instead of only dropping the CLI's packages. Workspace members
/// (no source) are not pinned by a lock, so they are left out.
pub fn unpinned(pinned: &str, pruned: &str) -> Vec<String> {
    let pinned = locked_packages(pinned);
    locked_packages(pruned)
        .into_iter()
        .filter(|p| !p.2.is_empty() && !pinned.contains(p))
        .map(|(name, version, ..)| format!("{name} {version}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        files().unwrap().into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn the_archive_holds_the_runtime_crate_the_lock_and_the_flags() {
        let names = names();
        for must in ["Cargo.toml", "Cargo.lock", "runtime/Cargo.toml", "runtime/rustflags", "runtime/src/main.rs"] {
            assert!(names.iter().any(|n| n == must), "{must} missing from {names:?}");
        }
        assert!(names.iter().all(|n| n == "Cargo.toml" || n == "Cargo.lock" || n.starts_with("runtime/")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("target/") || n.starts_with("runtime/tests/")), "{names:?}");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "sorted, so the archive's hash is stable");
    }

    #[test]
    fn the_archive_matches_the_checkout_it_was_built_from() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in ["Cargo.lock", "runtime/Cargo.toml", "runtime/rustflags", "runtime/src/main.rs"] {
            assert_eq!(file(f).unwrap(), std::fs::read(root.join(f)).unwrap(), "{f}");
        }
    }

    #[test]
    fn the_standalone_manifest_has_the_lambda_profile_and_the_resolver() {
        let m = String::from_utf8(file("Cargo.toml").unwrap()).unwrap();
        assert!(m.contains("[workspace]\nmembers = [\"runtime\"]\nresolver = \"2\"\n"), "{m}");
        let lambda = m.split("[profile.lambda]").nth(1).expect("[profile.lambda]");
        let lambda = lambda.split("\n[").next().unwrap();
        assert!(lambda.contains("inherits = \"release\"") && lambda.contains("opt-level = \"s\""), "{m}");
        // the function body keeps its size tuning whatever `release` favours for `cargo install`
        for line in ["lto = true", "codegen-units = 1", "panic = \"abort\""] {
            assert!(lambda.contains(line), "{line} in [profile.lambda] of {m}");
        }
        let release = m.split("[profile.release]").nth(1).expect("[profile.release]");
        let release = release.split("\n[").next().unwrap();
        assert!(release.contains("strip = true"), "{m}");
        assert!(!m.contains("[package]") && !m.contains("[dependencies]"), "{m}");
    }

    #[test]
    fn the_hash_is_of_the_archive() {
        assert_eq!(sha256().len(), 64);
        assert_eq!(sha256(), hex::encode(Sha256::digest(ARCHIVE)));
    }

    #[test]
    fn extracting_writes_a_workspace() {
        let dir = tempfile::tempdir().unwrap();
        extract(dir.path()).unwrap();
        assert!(dir.path().join("runtime/src/main.rs").is_file());
        assert!(dir.path().join("Cargo.lock").is_file());
    }

    const LOCK: &str = "version = 4\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\
        source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"aa\"\ndependencies = [\n \"b 2.0.0\",\n]\n\n\
        [[package]]\nname = \"b\"\nversion = \"2.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"bb\"\n\n\
        [[package]]\nname = \"mlambda-runtime\"\nversion = \"0.1.0\"\n";

    #[test]
    fn the_lock_parser_reads_every_package() {
        let p = locked_packages(LOCK);
        assert_eq!(p.len(), 3);
        assert!(p.contains(&(
            "b".into(),
            "2.0.0".into(),
            "registry+https://github.com/rust-lang/crates.io-index".into(),
            "bb".into()
        )));
    }

    #[test]
    fn pruning_is_fine_and_a_changed_version_is_not() {
        let renamed = LOCK.replace("name = \"a\"", "name = \"x\"");
        assert_eq!(unpinned(LOCK, LOCK), Vec::<String>::new());
        let only_b = "[[package]]\nname = \"b\"\nversion = \"2.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"bb\"\n\n[[package]]\nname = \"mlambda-runtime\"\nversion = \"0.2.0\"\n";
        assert_eq!(unpinned(LOCK, only_b), Vec::<String>::new());
        assert_eq!(unpinned(LOCK, &renamed), ["x 1.0.0"]);
        assert_eq!(unpinned(LOCK, &LOCK.replace("2.0.0", "2.0.1")), ["b 2.0.1"]);
    }

    #[test]
    fn the_real_lock_pins_tract() {
        let lock = String::from_utf8(file("Cargo.lock").unwrap()).unwrap();
        assert!(locked_packages(&lock).iter().any(|p| p.0 == "tract-onnx" && p.1 == "0.23.9"));
    }
}
