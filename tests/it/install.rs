//! An installed mlambda in a directory outside this checkout: it finds its runtime in the user cache
//! (`XDG_CACHE_HOME`), says what to do when it cannot, and builds an image with it and runs `up`. The cache is
//! pre-seeded with the suite's static `bootstrap`: the real first compile from the embedded source takes minutes.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use super::common::{self, engine, fails_of, json_of};

/// `mlambda`, installed (copied) under `cache/bin`, away from the workspace's target dir, run in `dir` with its own
/// cache and no `MLAMBDA_RUNTIME`, as on a user's machine.
fn mlambda(dir: &Path, cache: &Path) -> Command {
    let bin = cache.join("bin/mlambda");
    if !bin.is_file() {
        std::fs::create_dir_all(cache.join("bin")).expect("create bin dir");
        std::fs::copy(assert_cmd::cargo::cargo_bin("mlambda"), &bin).expect("install mlambda");
    }
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env("XDG_CACHE_HOME", cache)
        .env("NO_COLOR", "1")
        .env_remove("MLAMBDA_RUNTIME")
        .env_remove("MLAMBDA_CONFIG")
        .timeout(std::time::Duration::from_secs(300));
    c
}

#[test]
fn outside_the_checkout_build_takes_the_runtime_from_the_user_cache() {
    common::require_stack();
    let seed = common::runtime_binary();
    let project = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (dir, xdg) = (project.path(), cache.path());
    assert!(!dir.starts_with(common::repo()), "the project must be outside the checkout: {}", dir.display());

    json_of(mlambda(dir, xdg), &["init"]);
    let scaffold = std::fs::read_to_string(dir.join("mlambda.yaml")).expect("init wrote mlambda.yaml");
    assert!(
        scaffold.contains("# package: image") && scaffold.contains("zip"),
        "the package key, commented: {scaffold}"
    );
    let example = common::repo().join("examples/churn");
    for f in ["model.onnx", "reference.json"] {
        std::fs::copy(example.join(f), dir.join(f)).expect("copy example file");
    }
    let name = common::unique("installed");
    let config = std::fs::read_to_string(example.join("mlambda.yaml")).expect("example config");
    let config = ["churn-prediction", "churn-models", "churn-model"].iter().fold(config, |c, n| c.replace(n, &name));
    std::fs::write(dir.join("mlambda.yaml"), config).expect("write mlambda.yaml");

    let before = json_of(mlambda(dir, xdg), &["runtime", "path"]);
    assert_eq!(before["source"], "embedded-source", "{before}");
    assert_eq!(before["exists"], false, "{before}");
    let key = before["cache_key"].as_str().expect("cache_key").to_string();
    assert!(key.starts_with(&format!("{}-x86_64-unknown-linux-gnu-", env!("CARGO_PKG_VERSION"))), "{key}");
    let cached = PathBuf::from(before["path"].as_str().expect("path"));
    assert_eq!(cached, xdg.join("mlambda/runtime").join(&key).join("bootstrap"));

    let err = fails_of(mlambda(dir, xdg), &["build", "--dry-run"], 1);
    assert!(err.contains("is not built yet") && err.contains("mlambda runtime build"), "{err}");

    // no Rust at all: the error says how to install it, before any minutes are spent
    let mut no_rust = mlambda(dir, xdg);
    no_rust.env("PATH", "/nonexistent").env_remove("CARGO");
    let err = fails_of(no_rust, &["runtime", "build"], 1);
    assert!(err.contains("`cargo` is not on PATH"), "{err}");
    assert!(err.contains("https://sh.rustup.rs") && err.contains("--runtime PATH"), "{err}");

    std::fs::create_dir_all(cached.parent().expect("parent")).expect("create the cache dir");
    std::fs::copy(&seed, &cached).expect("seed the cache");
    let after = json_of(mlambda(dir, xdg), &["runtime", "path"]);
    assert_eq!(after["source"], "cache", "{after}");
    assert_eq!(after["exists"], true, "{after}");
    assert_eq!(after["path"], before["path"]);
    let again = json_of(mlambda(dir, xdg), &["runtime", "build"]);
    assert_eq!(again["compiled"], false, "a cached runtime is not compiled again: {again}");
    let flag = json_of(mlambda(dir, xdg), &["runtime", "path", "--runtime", "/x/bootstrap"]);
    assert_eq!((flag["source"].as_str(), flag["exists"].as_bool()), (Some("flag"), Some(false)), "{flag}");

    let _engine = engine();
    let out = mlambda(dir, xdg).args(["build", "--output", "json"]).output().expect("run mlambda");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mlambda build failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("compiling the mlambda runtime"), "nothing is compiled: {stderr}");
    let built: Value = serde_json::from_str(&stdout).expect("build prints json");
    assert_eq!(built["runtime"], after["path"], "{built}");
    assert_eq!(built["platform"], "linux/amd64");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".mlambda/state.json")).expect("state.json"))
            .expect("json");
    assert_eq!(state["build"]["image"], built["image"], "{state}");
    assert!(built["image"].as_str().is_some_and(|i| i.contains(':')), "repository:tag {built}");

    let up = json_of(mlambda(dir, xdg), &["up", "--create-bucket", "--create-role"]);
    assert!(up["steps"].as_array().is_some_and(|s| s.iter().all(|s| s["status"] != "planned")), "{up}");
    let alias = common::aws_cli(&["lambda", "get-alias", "--function-name", &name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    let latest = common::aws_cli(&["lambda", "get-function", "--function-name", &name]);
    assert_eq!(latest["Configuration"]["PackageType"], "Image", "{latest}");
    assert!(latest["Code"]["ImageUri"].as_str().is_some_and(|u| u.contains("@sha256:")), "by digest: {latest}");
}

#[test]
fn the_runtime_commands_have_help_with_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["build", "path"] {
        let out = mlambda(dir.path(), dir.path()).args(["runtime", sub, "--help"]).output().expect("run mlambda");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Examples:") && text.contains("--arch"), "{text}");
    }
}

/// Stands in for cargo: logs each call (arguments, RUSTFLAGS, directory), then plays `metadata` or `build`;
/// `build` prints two `Compiling` lines and puts `STUB_SEED` where cargo would write `bootstrap`, or fails
/// as a missing target does when `STUB_FAIL` is set.
const STUB_CARGO: &str = r#"#!/bin/sh
printf 'args=%s\nrustflags=%s\npwd=%s\n' "$*" "$RUSTFLAGS" "$PWD" >>"$STUB_LOG"
[ "$1" = metadata ] && exit 0
if [ -n "$STUB_FAIL" ]; then
  echo "error[E0463]: can't find crate for \`std\`" >&2
  exit 101
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift ;;
    --target-dir) dir=$2; shift ;;
  esac
  shift
done
echo "   Compiling serde v1.0.0" >&2
echo "   Compiling tract-core v0.23.9" >&2
mkdir -p "$dir/$target/lambda" && cp "$STUB_SEED" "$dir/$target/lambda/bootstrap"
"#;

#[test]
fn runtime_build_runs_cargo_locked_on_the_embedded_source_and_installs_what_it_built() {
    use std::os::unix::fs::PermissionsExt;
    let project = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let (dir, xdg) = (project.path(), cache.path());
    let stub = xdg.join("stub-cargo");
    std::fs::write(&stub, STUB_CARGO).expect("write stub cargo");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod stub cargo");
    let log = xdg.join("cargo.log");
    let seed = common::runtime_binary();
    let cmd = |fail: bool| {
        let mut c = mlambda(dir, xdg);
        c.env("CARGO", &stub).env("STUB_LOG", &log).env("STUB_SEED", &seed);
        if fail {
            c.env("STUB_FAIL", "1");
        }
        c
    };

    // cargo fails: its own line and what to install, and nothing in the cache
    let err = fails_of(cmd(true), &["runtime", "build"], 1);
    assert!(err.contains("can't find crate for `std`"), "cargo's line: {err}");
    assert!(err.contains("rustup target add x86_64-unknown-linux-gnu"), "the fix: {err}");
    let path = json_of(cmd(false), &["runtime", "path"]);
    assert_eq!(path["exists"], false, "{path}");

    let built = json_of(cmd(false), &["runtime", "build"]);
    assert_eq!((built["compiled"].as_bool(), built["crates"].as_u64()), (Some(true), Some(2)), "{built}");
    assert_eq!(built["path"], path["path"], "{built}");
    let cached = PathBuf::from(path["path"].as_str().expect("path"));
    assert_eq!(std::fs::read(&cached).expect("cached"), std::fs::read(&seed).expect("seed"), "installed as built");
    assert!(!cached.with_file_name(format!("bootstrap.partial-{}", std::process::id())).exists());

    let calls = std::fs::read_to_string(&log).expect("cargo log");
    let args: Vec<&str> = calls.lines().filter_map(|l| l.strip_prefix("args=")).collect();
    assert_eq!(args.len(), 4, "metadata and build, twice: {calls}");
    assert_eq!(args[2], "metadata --format-version 1", "{calls}");
    assert!(
        args[3].starts_with(
            "build --locked --profile lambda --target x86_64-unknown-linux-gnu -p mlambda-runtime --bin bootstrap \
             --target-dir "
        ),
        "{calls}"
    );
    let flags = std::fs::read_to_string(common::repo().join("runtime/rustflags")).expect("rustflags");
    assert!(calls.lines().any(|l| l == format!("rustflags={}", flags.trim())), "runtime/rustflags: {calls}");
    let source = PathBuf::from(calls.lines().find_map(|l| l.strip_prefix("pwd=")).expect("pwd"));
    assert!(source.starts_with(xdg), "extracted into the user cache: {}", source.display());
    for f in ["Cargo.toml", "Cargo.lock", "runtime/Cargo.toml", "runtime/src/main.rs"] {
        assert!(source.join(f).is_file(), "the embedded source has {f}");
    }

    let again = json_of(cmd(false), &["runtime", "build"]);
    assert_eq!(again["compiled"], false, "{again}");
    let forced = json_of(cmd(false), &["runtime", "build", "--force"]);
    assert_eq!(forced["compiled"], true, "{forced}");
}
