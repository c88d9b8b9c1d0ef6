//! The GitHub workflows: the one `mlambda init --ci github` writes and this repository's release workflow pass
//! actionlint (the venv's, installed by `scripts/stack up`); an unknown CI writes nothing.
use std::path::PathBuf;

use assert_cmd::Command;

fn actionlint() -> PathBuf {
    let venv = std::env::var_os("MLAMBDA_VENV").map(PathBuf::from).expect("MLAMBDA_VENV: run `scripts/test`");
    let bin = venv.join("bin/actionlint");
    assert!(bin.is_file(), "{} is missing: run `scripts/stack up`", bin.display());
    bin
}

fn mlambda(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("mlambda").expect("mlambda binary");
    c.current_dir(dir).env("NO_COLOR", "1");
    c
}

#[test]
fn init_ci_github_writes_a_workflow_that_passes_actionlint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mlambda(dir.path()).args(["init", "churn", "--ci", "github", "--output", "json"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let paths: Vec<&str> =
        report["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    assert!(paths.iter().any(|p| p.ends_with(".github/workflows/mlambda.yml")), "{paths:?}");
    let workflow = dir.path().join("churn/.github/workflows/mlambda.yml");
    let text = std::fs::read_to_string(&workflow).expect("workflow written");
    for want in ["id-token: write", "contents: read", "pip install mlambda", "run: mlambda up", "mlambda report"] {
        assert!(text.contains(want), "the workflow lacks `{want}`");
    }
    assert!(text.contains("aws-actions/configure-aws-credentials@v4.0.2") && text.contains("role-to-assume"));
    assert!(!text.contains("aws-access-key-id") && !text.contains("AWS_SECRET_ACCESS_KEY"), "no stored keys");
    let lint = std::process::Command::new(actionlint()).arg(&workflow).output().expect("run actionlint");
    assert!(
        lint.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // and actionlint does find mistakes: the same workflow with an undefined context fails
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, text.replace("${{ vars.AWS_REGION }}", "${{ nope.AWS_REGION }}")).expect("write");
    let lint = std::process::Command::new(actionlint()).arg(&broken).output().expect("run actionlint");
    assert!(!lint.status.success() && String::from_utf8_lossy(&lint.stdout).contains("nope"), "{lint:?}");
}

#[test]
fn the_release_workflow_passes_actionlint() {
    let workflow = crate::common::repo().join(".github/workflows/release.yml");
    let lint = std::process::Command::new(actionlint()).arg(&workflow).output().expect("run actionlint");
    assert!(lint.status.success(), "actionlint:\n{}", String::from_utf8_lossy(&lint.stdout));
    let text = std::fs::read_to_string(&workflow).expect("release.yml");
    // trusted publishing: an OIDC token for the publish job only, no stored PyPI token
    assert!(text.contains("id-token: write") && text.contains("pypa/gh-action-pypi-publish"), "{text}");
    assert!(!text.contains("password:") && !text.contains("PYPI_API_TOKEN"), "no stored token");
    for target in
        ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"]
    {
        assert!(text.contains(&format!("target: {target}")), "a wheel for {target}");
    }
}

#[test]
fn init_ci_with_an_unknown_name_exits_1_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mlambda(dir.path()).args(["init", "proj", "--ci", "nope"]).output().expect("run");
    let stderr = crate::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown CI `nope`") && stderr.contains("github"), "{stderr}");
    assert!(!dir.path().join("proj").exists(), "nothing is written");
}
