//! `init`, `up`, `invoke` and every command's `--help`: the README's flow, through the real binary.
use serde_json::Value;

use super::common::{self, aws_cli, engine, Project};

fn reference() -> Value {
    let text = std::fs::read_to_string(common::repo().join("examples/churn/reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json is json")
}

/// Row `i` of the reference rows as a request: `{feature: value}`.
fn payload(i: usize) -> String {
    let r = reference();
    let row: serde_json::Map<String, Value> = common::CHURN_FEATURES
        .iter()
        .zip(r["rows"][i].as_array().expect("row"))
        .map(|(f, v)| (f.to_string(), v.clone()))
        .collect();
    Value::Object(row).to_string()
}

fn close(a: &Value, b: &Value) -> bool {
    (a.as_f64().expect("number") - b.as_f64().expect("number")).abs() < 1e-6
}

#[test]
fn init_scaffolds_once_and_overwrites_only_with_force() {
    let p = Project::churn("init");
    let dir = p.path("fresh-model");
    let dir_s = dir.to_str().expect("utf-8 path");

    let plan = p.json(&["init", dir_s, "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    assert!(!dir.exists(), "a dry run writes nothing");

    let out = p.json(&["init", dir_s]);
    assert_eq!(out["name"], "fresh-model");
    for f in ["mlambda.yaml", "payload.json", "export_model.py"] {
        assert!(dir.join(f).is_file(), "{f} is scaffolded");
    }
    let yaml = std::fs::read_to_string(dir.join("mlambda.yaml")).expect("read");
    assert!(yaml.contains("name: fresh-model") && yaml.contains("# "), "named and commented:\n{yaml}");
    // The scaffold is a valid config: a dry-run deploy gets past config loading to the missing push.
    let cfg = dir.join("mlambda.yaml");
    let err = p.fails(&["--config", cfg.to_str().expect("utf-8"), "deploy", "--dry-run"], 1);
    assert!(err.contains("mlambda push"), "{err}");

    std::fs::write(dir.join("payload.json"), "{\"mine\": 1}").expect("edit");
    let err = p.fails(&["init", dir_s], 1);
    assert!(err.contains("already has") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("payload.json")).expect("read"), "{\"mine\": 1}", "untouched");

    let out = p.json(&["init", dir_s, "--force"]);
    assert!(out["files"].as_array().expect("files").iter().all(|f| f["action"] == "overwrite"));
    assert_ne!(std::fs::read_to_string(dir.join("payload.json")).expect("read"), "{\"mine\": 1}");
}

#[test]
fn invoke_local_runs_the_bootstrap_and_reproduces_the_reference() {
    let p = Project::churn("invoke");
    let boot = common::runtime_binary();
    let boot = boot.to_str().expect("utf-8");
    let r = reference();
    let out = p.json(&["invoke", "--local", "--runtime", boot, "--payload", &payload(0)]);
    assert_eq!(out["status_code"], 200, "{out}");
    assert_eq!(out["body"]["prediction"], r["expected"][0]["prediction"], "{out}");
    assert!(close(&out["body"]["probability"], &r["expected"][0]["probability"]), "{out}");
    assert_eq!(out["body"]["model_version"], "v1");
    assert!(out["latency_ms"].as_f64().expect("latency") > 0.0);

    // Bad input is the function's 400, shown as data; the command itself succeeded.
    let out = p.json(&["invoke", "--local", "--runtime", boot, "--payload", "{\"tenure_months\": 3}"]);
    assert_eq!(out["status_code"], 400, "{out}");
    assert!(out["body"]["error"].as_str().expect("error").contains("monthly_charges"), "{out}");

    let err = p.fails(&["invoke", "--local", "--runtime", boot, "--payload", "{oops"], 1);
    assert!(err.contains("not valid JSON"), "{err}");
    let err = p.fails(&["invoke", "--local", "--runtime", "/nonexistent/bootstrap"], 1);
    assert!(err.contains("/nonexistent/bootstrap"), "{err}");
}

#[test]
fn up_dry_run_plans_every_step_and_touches_nothing() {
    let p = Project::churn("updry");
    let out = p.json(&["up", "--dry-run"]);
    let steps: Vec<&str> =
        out["steps"].as_array().expect("steps").iter().map(|s| s["step"].as_str().expect("step")).collect();
    assert_eq!(steps, ["build", "push", "model push", "deploy", "rollout", "alarms"]);
    assert!(out["steps"].as_array().expect("steps").iter().all(|s| s["status"] == "planned"), "{out}");
    assert!(!p.path(".mlambda/state.json").exists(), "a dry run records nothing");
    let buckets = aws_cli(&["s3api", "list-buckets"]);
    assert!(!buckets.to_string().contains(&p.name), "a dry run creates no bucket");
}

#[test]
fn up_runs_the_recipe_resumes_after_a_failure_and_rolls_out_the_next_model() {
    let _engine = engine();
    let p = Project::churn("up");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws_cli(&["iam", "create-role", "--role-name", &p.name, "--assume-role-policy-document", trust]);

    // No bucket and no --create-bucket: fails at `model push`, after build and push landed.
    let err = p.fails(&["up"], 1);
    assert!(err.contains("`model push` failed") && err.contains("resumes at `model push`"), "{err}");
    let done = p.state()["up"]["done"].clone();
    assert_eq!(done, serde_json::json!(["build", "push"]));

    let out = p.json(&["up", "--create-bucket"]);
    let status = |out: &Value, step: &str| {
        out["steps"].as_array().expect("steps").iter().find(|s| s["step"] == step).expect("step")["status"].clone()
    };
    assert_eq!(status(&out, "build"), "skipped", "resumed: {out}");
    assert_eq!(status(&out, "push"), "skipped", "resumed: {out}");
    assert_eq!(status(&out, "model push"), "done", "{out}");
    assert_eq!(status(&out, "deploy"), "done", "{out}");
    assert_eq!(status(&out, "alarms"), "done", "{out}");
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");

    // The next model version: a new function version gets the configured 10%.
    p.write_config(&p.default_config().replace("version: v1", "version: v2"));
    let out = p.json(&["up"]);
    assert_eq!(status(&out, "build"), "done", "a changed project starts over: {out}");
    assert_eq!(status(&out, "rollout"), "done", "{out}");
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
    assert_eq!(alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1, "{alias}");

    // The built image serves the model locally, mounted from the project.
    let r = reference();
    let out = p.json(&["invoke", "--local", "--payload", &payload(1)]);
    assert_eq!(out["status_code"], 200, "{out}");
    assert_eq!(out["body"]["prediction"], r["expected"][1]["prediction"], "{out}");
    assert!(close(&out["body"]["probability"], &r["expected"][1]["probability"]), "{out}");
    assert_eq!(out["body"]["model_version"], "v2");
}

#[test]
fn every_command_has_help_with_examples() {
    let p = Project::churn("help");
    let out = p.cmd().arg("--help").output().expect("run mlambda");
    insta::assert_snapshot!("help", String::from_utf8_lossy(&out.stdout));
    for cmd in [
        "init",
        "build",
        "push",
        "deploy",
        "prune",
        "iam-policy",
        "rollout",
        "alarms",
        "status",
        "warm",
        "invoke",
        "up",
        "completions",
        "man",
    ] {
        let out = p.cmd().args([cmd, "--help"]).output().expect("run mlambda");
        assert!(out.status.success(), "{cmd} --help");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("Examples:"), "`mlambda {cmd} --help` shows examples:\n{text}");
        insta::assert_snapshot!(format!("help_{}", cmd.replace('-', "_")), text);
    }
    for sub in ["push", "list"] {
        let out = p.cmd().args(["model", sub, "--help"]).output().expect("run mlambda");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.contains("Examples:"), "`mlambda model {sub} --help` shows examples:\n{text}");
        insta::assert_snapshot!(format!("help_model_{sub}"), text);
    }
    let out = p.cmd().args(["completions", "bash"]).output().expect("run mlambda");
    assert!(String::from_utf8_lossy(&out.stdout).contains("_mlambda"), "bash completions");
    let out = p.cmd().arg("man").output().expect("run mlambda");
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH mlambda"), "a roff man page");
}
