//! A throwaway project per test: its own mlambda.yaml with unique names, so tests share one stack safely.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use assert_cmd::Command;
use serde_json::Value;

pub const CHURN_FEATURES: [&str; 7] = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_products",
    "has_tech_support",
    "contract_type_encoded",
    "payment_method_encoded",
];

static ENGINE: Mutex<()> = Mutex::new(());

/// One image build or push at a time across all tests: dockerd on vfs copies whole layers per build, and
/// parallel builds on a small CI machine are what made them fail before.
pub fn engine() -> MutexGuard<'static, ()> {
    ENGINE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Panics with the fix when the stack's environment is missing: integration tests never skip.
pub fn require_stack() {
    for var in ["AWS_ENDPOINT_URL", "MLAMBDA_REGISTRY", "DOCKER_HOST"] {
        assert!(
            std::env::var(var).is_ok_and(|v| !v.is_empty()),
            "{var} is not set: run the suite with `scripts/test`, or `scripts/stack up && eval \"$(scripts/stack env)\"`"
        );
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The static bootstrap `scripts/test` builds.
pub fn runtime_binary() -> PathBuf {
    let p = PathBuf::from(std::env::var("MLAMBDA_RUNTIME").expect("MLAMBDA_RUNTIME is not set: run `scripts/test`"));
    assert!(p.is_file(), "MLAMBDA_RUNTIME={} does not exist: run `scripts/test`", p.display());
    p
}

/// A name no other test (or earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{:x}-{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

pub struct Project {
    pub dir: tempfile::TempDir,
    /// Unique base name used for the function, repository and bucket.
    pub name: String,
}

impl Project {
    /// A churn project: the committed example model and reference rows, and a config with unique names.
    pub fn churn(prefix: &str) -> Project {
        require_stack();
        let dir = tempfile::tempdir().expect("tempdir");
        let name = unique(prefix);
        let example = repo().join("examples/churn");
        for f in ["model.onnx", "reference.json"] {
            std::fs::copy(example.join(f), dir.path().join(f)).expect("copy example file");
        }
        let p = Project { dir, name };
        p.write_config(&p.default_config());
        p
    }

    pub fn default_config(&self) -> String {
        let n = &self.name;
        format!(
            "function:\n  name: {n}\n  memory: 512\n  timeout: 10\n  role: arn:aws:iam::123456789012:role/{n}\n  alias: production\n\
             image:\n  repository: {n}\n\
             model:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: {n}\n  prefix: models\n  reference: reference.json\n  features: [{}]\n\
             alarms:\n  namespace: ChurnModel\n\
             rollout:\n  strategy: weight\n  weight: 0.1\n  interval: 1s\n",
            CHURN_FEATURES.join(", ")
        )
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.path("mlambda.yaml"), text).expect("write mlambda.yaml");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `mlambda` in the project directory, with the stack's environment inherited.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("mlambda").expect("mlambda binary");
        c.current_dir(self.root()).env("NO_COLOR", "1").timeout(std::time::Duration::from_secs(300));
        c
    }

    /// Runs `mlambda ARGS --output json`, asserts success and returns stdout's JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_with(args, &[])
    }

    /// `json` with extra environment variables.
    pub fn json_with(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut cmd = self.cmd();
        cmd.envs(env.iter().copied());
        json_of(cmd, args)
    }

    /// Runs `mlambda ARGS`, asserts it fails with `code`, returns stderr with miette's wrapping undone.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        self.fails_with(args, &[], code)
    }

    /// `fails` with extra environment variables.
    pub fn fails_with(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
        let mut cmd = self.cmd();
        cmd.envs(env.iter().copied());
        fails_of(cmd, args, code)
    }

    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.path(".mlambda/state.json")).expect("read state.json");
        serde_json::from_str(&text).expect("state.json is json")
    }
}

/// Runs `cmd ARGS --output json`, asserts success and returns stdout's JSON.
pub fn json_of(mut cmd: Command, args: &[&str]) -> Value {
    let out = cmd.args(args).args(["--output", "json"]).output().expect("run mlambda");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "mlambda {args:?} failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("mlambda {args:?}: stdout is not json ({e}):\n{stdout}"))
}

/// Runs `cmd ARGS`, asserts it fails with `code`, returns stderr with miette's wrapping undone.
pub fn fails_of(mut cmd: Command, args: &[&str], code: i32) -> String {
    let out = cmd.args(args).output().expect("run mlambda");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "mlambda {args:?}: expected exit {code}\nstderr:\n{stderr}");
    unwrap_lines(&stderr)
}

/// Joins the lines miette wraps, so assertions can look for whole phrases.
pub fn unwrap_lines(text: &str) -> String {
    text.lines()
        .map(|l| l.trim_start_matches(|c: char| c.is_whitespace() || "│×╰─├┬┴┼╭╮╯".contains(c)).trim_end())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the AWS CLI (v1, from the venv) against moto, as a third-party check of what mlambda did.
pub fn aws_cli(args: &[&str]) -> Value {
    let out = std::process::Command::new("aws").args(args).args(["--output", "json"]).output().expect("run aws cli");
    assert!(out.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).expect("aws cli output is json")
}

/// Puts `bytes` at `s3://{project bucket}/{key}` with `sha256` metadata through the AWS CLI (bucket created
/// if missing): an object that mlambda did not write.
pub fn put_object(p: &Project, key: &str, bytes: &[u8], sha256: &str) {
    let _ = std::process::Command::new("aws").args(["s3api", "create-bucket", "--bucket", &p.name]).output();
    let file = p.path("seeded.bin");
    std::fs::write(&file, bytes).expect("write seed object");
    let body = file.to_str().expect("utf-8 path");
    let meta = format!("sha256={sha256}");
    aws_cli(&["s3api", "put-object", "--bucket", &p.name, "--key", key, "--body", body, "--metadata", &meta]);
}

/// Creates an image function straight through awscli (moto does not pull the image), with `extra` arguments.
pub fn create_image_function(name: &str, image_uri: &str, role: &str, extra: &[&str]) {
    let code = format!("ImageUri={image_uri}");
    let mut args = vec![
        "lambda",
        "create-function",
        "--function-name",
        name,
        "--package-type",
        "Image",
        "--code",
        &code,
        "--role",
        role,
    ];
    args.extend_from_slice(extra);
    aws_cli(&args);
}

/// Asserts every step of an `up --output json` finished (`done`, or `nothing to do`).
pub fn assert_up_finished(up: &Value) {
    let steps: Vec<(&str, &str)> = up["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["step"].as_str().unwrap_or(""), s["status"].as_str().unwrap_or("")))
        .collect();
    assert!(steps.iter().all(|(_, s)| *s == "done" || *s == "nothing to do"), "{up}");
}
