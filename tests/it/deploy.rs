//! `mlambda deploy` and `mlambda prune` against moto: create, publish, alias, idempotence, IAM and refusals.
use serde_json::Value;

use crate::common::{aws_cli, put_object, require_stack, unique, Project};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A project with a pushed (fake) image in state and model v1 in S3, without needing the example model.
pub fn project(prefix: &str) -> Project {
    require_stack();
    let p = Project { dir: tempfile::tempdir().expect("tempdir"), name: unique(prefix) };
    p.write_config(&p.default_config());
    let state = serde_json::json!({"push": {
        "repository_uri": "127.0.0.1:17500/repo",
        "tag": "v1-abc",
        "digest": DIGEST,
        "image_uri": format!("127.0.0.1:17500/repo@{DIGEST}"),
    }});
    std::fs::create_dir_all(p.path(".mlambda")).unwrap();
    std::fs::write(p.path(".mlambda/state.json"), state.to_string()).unwrap();
    p
}

pub fn seed_model(p: &Project, version: &str) {
    let key = format!("models/churn/{version}/model.onnx");
    put_object(p, &key, b"not really onnx, deploy never loads it", "feedface");
}

pub fn create_role(name: &str) {
    aws_cli(&["iam", "create-role", "--role-name", name, "--assume-role-policy-document", TRUST]);
}

pub fn versions(function: &str) -> Vec<String> {
    let out = aws_cli(&["lambda", "list-versions-by-function", "--function-name", function]);
    out["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Version"].as_str().unwrap().to_string())
        .filter(|v| v != "$LATEST")
        .collect()
}

pub fn alias_version(function: &str) -> String {
    let a = aws_cli(&["lambda", "get-alias", "--function-name", function, "--name", "production"]);
    a["FunctionVersion"].as_str().unwrap().to_string()
}

fn set_memory(p: &Project, mb: u32) {
    p.write_config(&p.default_config().replace("memory: 512", &format!("memory: {mb}")));
}

#[test]
fn deploy_publishes_sets_the_alias_once_and_prune_spares_it() {
    let p = project("dep");
    seed_model(&p, "v1");
    create_role(&p.name);
    let f = p.name.as_str();

    let out = p.json(&["deploy"]);
    assert_eq!(out["version"], "1", "{out}");
    assert_eq!(out["published"], true);
    assert_eq!(out["alias_created"], true);
    assert_eq!(alias_version(f), "1");
    let v1 = aws_cli(&["lambda", "get-function-configuration", "--function-name", f, "--qualifier", "1"]);
    let env = &v1["Environment"]["Variables"];
    assert_eq!(env["MODEL_BUCKET"], f);
    assert_eq!(env["MODEL_KEY"], "models/churn/v1/model.onnx");
    assert_eq!(env["MODEL_VERSION"], "v1");
    assert_eq!(env["MODEL_SHA256"], "feedface");
    assert_eq!(env["MODEL_FEATURES"], crate::common::CHURN_FEATURES.join(","));
    assert_eq!(env["METRICS_NAMESPACE"], "ChurnModel");
    assert_eq!(v1["Description"], format!("model v1 image {DIGEST}"));
    assert_eq!(v1["MemorySize"], 512);
    assert_eq!(p.state()["deploy"]["version"], "1");
    assert_eq!(p.state()["deploy"]["role"], format!("arn:aws:iam::123456789012:role/{f}"));
    // `model list` shows who uses each model version (this one has no manifest: it falls back to the object).
    let list = p.json(&["model", "list"]);
    assert_eq!(list[0]["version"], "v1", "{list}");
    assert_eq!(list[0]["sha256"], "feedface");
    assert_eq!(list[0]["function_versions"], serde_json::json!(["1"]));
    assert_eq!(list[0]["aliases"], serde_json::json!(["production:1:100%"]));

    // Unchanged: nothing new is published.
    let again = p.json(&["deploy"]);
    assert_eq!(again["published"], false, "{again}");
    assert_eq!(again["version"], "1");
    assert_eq!(versions(f), vec!["1"]);

    // A dry run with a change prints the field diff and touches nothing.
    set_memory(&p, 1024);
    let dry = p.json(&["deploy", "--dry-run"]);
    let config = dry["plan"]["function_step"]["config"].as_array().unwrap();
    assert!(config.iter().any(|d| d["field"] == "memory" && d["from"] == "512" && d["to"] == "1024"), "{dry}");
    assert_eq!(versions(f), vec!["1"]);
    let latest = aws_cli(&["lambda", "get-function-configuration", "--function-name", f]);
    assert_eq!(latest["MemorySize"], 512);

    // A real change publishes version 2; the alias stays on 1 (rollout moves it).
    let two = p.json(&["deploy"]);
    assert_eq!(two["version"], "2", "{two}");
    assert_eq!(two["alias_created"], false);
    assert_eq!(alias_version(f), "1");
    let v2 = aws_cli(&["lambda", "get-function-configuration", "--function-name", f, "--qualifier", "2"]);
    assert_eq!(v2["MemorySize"], 1024);

    set_memory(&p, 2048);
    assert_eq!(p.json(&["deploy"])["version"], "3");
    assert_eq!(versions(f), vec!["1", "2", "3"]);

    // Prune keeps the newest and the alias's version, whatever --keep says.
    let dry = p.json(&["prune", "--keep", "1", "--dry-run"]);
    assert_eq!(dry["deleted"], serde_json::json!(["2"]), "{dry}");
    assert_eq!(versions(f), vec!["1", "2", "3"]);
    let pruned = p.json(&["prune", "--keep", "1"]);
    assert_eq!(pruned["deleted"], serde_json::json!(["2"]));
    assert_eq!(pruned["protected"], serde_json::json!(["1"]));
    assert_eq!(versions(f), vec!["1", "3"]);
    let none = p.json(&["prune", "--keep", "0"]);
    assert!(none["kept"].as_array().unwrap().contains(&Value::from("1")), "{none}");
    assert_eq!(alias_version(f), "1");
}

#[test]
fn a_first_dry_run_creates_nothing() {
    let p = project("depdry");
    seed_model(&p, "v1");
    create_role(&p.name);
    let dry = p.json(&["deploy", "--dry-run"]);
    assert_eq!(dry["plan"]["function_step"]["action"], "create", "{dry}");
    assert_eq!(dry["plan"]["alias"]["action"], "create");
    let out = p.cmd().args(["deploy", "--dry-run"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("create function `{}`", p.name)), "{text}");
    let probe = std::process::Command::new("aws")
        .args(["lambda", "get-function", "--function-name", &p.name])
        .output()
        .unwrap();
    assert!(!probe.status.success(), "the dry run must not create the function");
}

#[test]
fn deploy_refuses_without_a_pushed_image_a_model_or_a_role() {
    let p = project("deprefuse");
    std::fs::remove_file(p.path(".mlambda/state.json")).unwrap();
    let err = p.fails(&["deploy"], 1);
    assert!(err.contains("run `mlambda push` first"), "{err}");

    let p = project("deprefuse");
    aws_cli(&["s3api", "create-bucket", "--bucket", &p.name]);
    let err = p.fails(&["deploy"], 1);
    assert!(err.contains("mlambda model push --version v1"), "{err}");

    let p = project("deprefuse");
    seed_model(&p, "v1");
    let no_role: String =
        p.default_config().lines().filter(|l| !l.contains("role:")).map(|l| format!("{l}\n")).collect();
    p.write_config(&no_role);
    let err = p.fails(&["deploy"], 1);
    assert!(err.contains("`function.role`") && err.contains("`--create-role`"), "{err}");
}

#[test]
fn create_role_is_reused_and_remembered() {
    let p = project("deprole");
    seed_model(&p, "v1");
    let no_role: String =
        p.default_config().lines().filter(|l| !l.contains("role:")).map(|l| format!("{l}\n")).collect();
    p.write_config(&no_role);
    let role_name = format!("mlambda-{}", p.name);

    let first = p.json(&["deploy", "--create-role"]);
    let role = aws_cli(&["iam", "get-role", "--role-name", &role_name]);
    let arn = role["Role"]["Arn"].as_str().unwrap().to_string();
    assert_eq!(first["role"], arn.as_str(), "{first}");
    let policy = aws_cli(&["iam", "get-role-policy", "--role-name", &role_name, "--policy-name", "mlambda-execution"]);
    let doc = policy["PolicyDocument"].to_string();
    assert!(doc.contains(&format!("arn:aws:s3:::{}/models/churn/*", p.name)), "{doc}");

    let second = p.json(&["deploy", "--create-role"]);
    assert_eq!(second["role"], arn.as_str());
    assert_eq!(second["published"], false, "{second}");
    assert_eq!(p.state()["deploy"]["role"], arn.as_str());

    // Later deploys reuse the recorded role without the flag.
    let third = p.json(&["deploy"]);
    assert_eq!(third["role"], arn.as_str());
    assert_eq!(third["version"], "1");
}
