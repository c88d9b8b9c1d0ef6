//! `pip install mlambda` with no Rust: the wheel `scripts/test` built with `scripts/package` from the suite's own
//! binaries (`MLAMBDA_WHEEL`) goes into a fresh venv, and the installed `mlambda`, with no `cargo` or `rustc` on
//! PATH, finds its bundled bootstrap and takes a zip function up on the local stack from outside the checkout.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sha2::{Digest, Sha256};

use super::common::{self, aws_cli, CHURN_FEATURES};
use super::zip_package::{code_sha256, zip_file};

fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Every file and directory below `dir`, relative to it (directories end in `/`).
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            if p.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_wheel_installs_without_rust_and_takes_a_zip_function_up_with_its_bundled_bootstrap() {
    common::require_stack();
    let wheel = PathBuf::from(std::env::var("MLAMBDA_WHEEL").expect("MLAMBDA_WHEEL is not set: run `scripts/test`"));
    assert!(wheel.is_file(), "{} does not exist: run `scripts/test`", wheel.display());
    let name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    assert!(name.starts_with(&format!("mlambda-{}-py3-none-manylinux", env!("CARGO_PKG_VERSION"))), "{name}");

    let tmp = tempfile::tempdir().expect("tempdir");
    let venv = tmp.path().join("venv");
    run(std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv));
    let fresh = files(&venv);
    let pip = venv.join("bin/pip");
    run(std::process::Command::new(&pip).args(["install", "-q", "--no-index", "--no-deps"]).arg(&wheel));
    let bin = venv.join("bin/mlambda");
    let bundled = std::fs::read_dir(venv.join("lib"))
        .expect("venv lib")
        .flatten()
        .map(|python| python.path().join("site-packages/mlambda_bootstrap/x86_64-unknown-linux-gnu"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no bundled bootstrap in {:?}", files(&venv)));
    assert!(bin.is_file() && bundled.is_file(), "pip installed {:?}", files(&venv));

    // a PATH with the venv and the system, and no Rust on it
    let path = format!("{}:/usr/bin:/bin", venv.join("bin").display());
    let no_rust = std::process::Command::new("sh")
        .args(["-c", "command -v cargo || command -v rustc"])
        .env("PATH", &path)
        .output()
        .expect("sh");
    assert!(!no_rust.status.success(), "cargo or rustc is on {path}: {}", String::from_utf8_lossy(&no_rust.stdout));
    // by name, not by IP: the static CLI's own name lookup reaches the stack
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("stack endpoint").replace("127.0.0.1", "localhost");
    let project = tmp.path().join("project");
    let cmd = |dir: &Path| {
        let mut c = Command::new(&bin);
        c.current_dir(dir)
            .env("PATH", &path)
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("NO_COLOR", "1")
            .env_remove("MLAMBDA_RUNTIME")
            .env_remove("MLAMBDA_CONFIG")
            .env_remove("CARGO")
            .timeout(std::time::Duration::from_secs(300));
        c
    };

    let version = cmd(tmp.path()).arg("--version").output().expect("run mlambda --version");
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")), "{version:?}");
    let located = common::json_of(cmd(tmp.path()), &["runtime", "path"]);
    assert_eq!((located["source"].as_str(), located["exists"].as_bool()), (Some("bundled"), Some(true)), "{located}");
    assert_eq!(located["path"], bundled.display().to_string());

    std::fs::create_dir_all(&project).expect("project dir");
    assert!(!project.starts_with(common::repo()), "outside the checkout");
    common::json_of(cmd(&project), &["init"]);
    let example = common::repo().join("examples/churn");
    for f in ["model.onnx", "reference.json"] {
        std::fs::copy(example.join(f), project.join(f)).expect("copy example file");
    }
    let n = common::unique("wheel");
    let config = format!(
        "function:\n  name: {n}\n  memory: 512\n  timeout: 10\n  package: zip\n\
         model:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: {n}\n  reference: reference.json\n  features: [{}]\n\
         alarms:\n  namespace: ChurnModel\n",
        CHURN_FEATURES.join(", ")
    );
    std::fs::write(project.join("mlambda.yaml"), config).expect("write mlambda.yaml");
    let up = common::json_of(cmd(&project), &["up", "--create-bucket", "--create-role"]);
    assert!(up["steps"].as_array().is_some_and(|s| s.iter().all(|s| s["status"] != "planned")), "{up}");
    assert!(!tmp.path().join("cache/mlambda/runtime").exists(), "nothing was compiled into the user cache");

    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &n, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "the alias is on a published version: {alias}");
    let zip = std::fs::read(project.join(format!(".mlambda/{n}.zip"))).expect("the zip in .mlambda/");
    let (packed, _) = zip_file(&zip, "bootstrap");
    let bundled_bytes = std::fs::read(&bundled).expect("bundled bootstrap");
    assert!(packed == bundled_bytes, "the zip carries the bundled bootstrap");
    let v1 = aws_cli(&["lambda", "get-function-configuration", "--function-name", &n, "--qualifier", "1"]);
    assert_eq!(v1["CodeSha256"], code_sha256(&zip).as_str(), "{v1}");
    assert_eq!(hex::encode(Sha256::digest(&bundled_bytes)), hex::encode(Sha256::digest(&packed)));

    // the bundled bootstrap deleted after install: the next source, said so
    std::fs::remove_file(&bundled).expect("delete the bundled bootstrap");
    let fallback = common::json_of(cmd(tmp.path()), &["runtime", "path"]);
    assert_eq!(fallback["source"], "embedded-source", "{fallback}");
    assert!(fallback["note"].as_str().is_some_and(|n| n.contains("bundled bootstrap") && n.contains("missing")));

    // the note's fix puts it back
    let mut reinstall = std::process::Command::new(&pip);
    run(reinstall.args(["install", "-q", "--no-index", "--no-deps", "--force-reinstall"]).arg(&wheel));
    assert_eq!(common::json_of(cmd(tmp.path()), &["runtime", "path"])["source"], "bundled");

    run(std::process::Command::new(&pip).args(["uninstall", "-q", "-y", "mlambda"]));
    let left: Vec<String> = files(&venv).into_iter().filter(|f| !fresh.contains(f)).collect();
    // pip's own byte code, compiled while it ran, is pip's
    let left: Vec<&String> = left.iter().filter(|f| !f.contains("__pycache__")).collect();
    assert!(left.is_empty(), "pip uninstall left {left:?}");
    let dir = bundled.parent().expect("package dir");
    assert!(!dir.exists(), "pip uninstall left {}", dir.display());
}
