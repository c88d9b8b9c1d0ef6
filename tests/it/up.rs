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
    let out = p.cmd().args(["export", "terraform", "--help"]).output().expect("run mlambda");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("Examples:"), "`mlambda export terraform --help` shows examples:\n{text}");
    insta::assert_snapshot!("help_export_terraform", text);
    let out = p.cmd().args(["completions", "bash"]).output().expect("run mlambda");
    assert!(String::from_utf8_lossy(&out.stdout).contains("_mlambda"), "bash completions");
    let out = p.cmd().arg("man").output().expect("run mlambda");
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH mlambda"), "a roff man page");
}

/// Stands in for cargo in the first-run tests: records that it ran and fails, so any compile shows.
const RECORDING_CARGO: &str = "#!/bin/sh\necho \"$@\" >>\"$STUB_LOG\"\nexit 1\n";

/// `mlambda` in `dir` as a new user runs it: outside this checkout, an empty runtime cache (so a build would
/// compile the runtime, through the recording cargo), no Docker engine and an AWS endpoint that refuses every
/// connection, so whatever `up` reaches past its local checks fails otherwise than they do.
fn first_run(dir: &std::path::Path, home: &std::path::Path) -> assert_cmd::Command {
    use std::os::unix::fs::PermissionsExt;
    let stub = home.join("cargo");
    if !stub.is_file() {
        std::fs::write(&stub, RECORDING_CARGO).expect("write stub cargo");
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod stub cargo");
    }
    let mut c = assert_cmd::Command::cargo_bin("mlambda").expect("mlambda binary");
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("CARGO", &stub)
        .env("STUB_LOG", home.join("cargo.log"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("MLAMBDA_RUNTIME")
        .env_remove("MLAMBDA_CONFIG")
        .timeout(std::time::Duration::from_secs(60));
    c
}

#[test]
fn up_in_a_fresh_project_without_a_model_fails_at_once_naming_the_file_before_any_compile() {
    let project = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let (dir, home) = (project.path(), home.path());
    assert!(!dir.starts_with(common::repo()), "outside the checkout, where a build compiles the runtime");
    common::json_of(first_run(dir, home), &["init"]);

    for args in [&["up"][..], &["up", "--dry-run"], &["build"], &["model", "push"]] {
        let started = std::time::Instant::now();
        let err = common::fails_of(first_run(dir, home), args, 1);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(5), "mlambda {args:?} took {took:?}: {err}");
        assert!(err.contains("model file `model.onnx` does not exist"), "mlambda {args:?}: {err}");
        assert!(err.contains("export_model.py") && err.contains("`model.path`"), "the fix: {err}");
    }
    assert!(!home.join("cargo.log").exists(), "nothing was compiled");
    assert!(!dir.join(".mlambda").exists(), "nothing was recorded");

    // A model that loads but does not fit the scaffold's `model.features` is refused as early.
    std::fs::copy(common::repo().join("examples/churn/model.onnx"), dir.join("model.onnx")).expect("copy model");
    let started = std::time::Instant::now();
    let err = common::fails_of(first_run(dir, home), &["up"], 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{err}");
    assert!(err.contains("takes 7 input features but `model.features` lists 2"), "{err}");
    assert!(!home.join("cargo.log").exists(), "nothing was compiled");
}

/// `mlambda` with no AWS credentials anywhere: an empty `HOME`, no `AWS_*` variable but `keep`, IMDS off
/// unless `keep` points it somewhere, and a region.
fn without_credentials(p: &Project, home: &std::path::Path, keep: &[(&str, &str)]) -> assert_cmd::Command {
    let mut c = p.cmd();
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        c.env_remove(k);
    }
    c.env("HOME", home).env("AWS_REGION", "us-east-1").env("AWS_EC2_METADATA_DISABLED", "true");
    c.envs(keep.iter().copied());
    c
}

/// Answers every request with a 403, as a network that intercepts the instance metadata address does.
fn forbidding_metadata_service() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\nconnection: close\r\n\r\ndenied");
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn without_credentials_status_and_up_say_how_to_provide_them_in_plain_words() {
    let p = Project::churn("nocreds");
    let home = tempfile::tempdir().expect("tempdir");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the stack's endpoint");
    let imds = forbidding_metadata_service();
    let variants: [(&str, Vec<(&str, &str)>); 3] = [
        ("no endpoint", vec![]),
        ("the stack's endpoint", vec![("AWS_ENDPOINT_URL", &endpoint)]),
        (
            "a metadata service that refuses",
            vec![
                ("AWS_ENDPOINT_URL", &endpoint),
                ("AWS_EC2_METADATA_DISABLED", "false"),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds),
            ],
        ),
    ];
    for (variant, keep) in &variants {
        for args in [&["status"][..], &["up"]] {
            let err = common::fails_of(without_credentials(&p, home.path(), keep), args, 1);
            let at = format!("{variant}, mlambda {args:?}");
            assert!(err.contains("no AWS credentials found"), "{at}: {err}");
            for way in ["AWS_PROFILE", "aws configure", "aws sso login", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                assert!(err.contains(way), "{at}: names {way}: {err}");
            }
            for dump in ["DispatchFailure", "ConnectorError", "CredentialsNotLoaded", "Some(", "{ ", "StatusCode("] {
                assert!(!err.contains(dump), "{at}: Debug text `{dump}`: {err}");
            }
            assert!(!err.contains("unreachable"), "{at}: {err}");
            let imds_said = err.contains("the EC2 instance metadata service, failed");
            assert_eq!(imds_said, keep.iter().any(|(k, _)| *k == "AWS_EC2_METADATA_SERVICE_ENDPOINT"), "{at}: {err}");
        }
    }
    assert!(!p.path(".mlambda/state.json").exists(), "up stopped before its first step");

    // Credentials, but nothing listening: still "unreachable", in plain words, and the cloud's failure (exit 2).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}", closed.local_addr().expect("addr").port());
    drop(closed);
    let err = p.fails_with(&["status"], &[("AWS_ENDPOINT_URL", &url)], 2);
    assert!(err.contains("AWS is unreachable") && err.contains("Connection refused"), "{err}");
    assert!(err.contains("check the network"), "{err}");
    assert!(!err.contains("DispatchFailure") && !err.contains("Some("), "{err}");
}
