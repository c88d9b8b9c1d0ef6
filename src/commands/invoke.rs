//! `mlambda invoke`: send a payload to the deployed alias or version, or to the runtime running locally.
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlambda_runtime::env;
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use crate::aws;
use crate::domain::PackageType;
use crate::error::{Error, Result};
use crate::image::{archive, engine, run};
use crate::report::Report;
use crate::settings::{InvokeSettings, InvokeTarget, Project};

/// The runtime's local-mode path, the one AWS's Runtime Interface Emulator uses.
pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `production`, `version 4`, `local image …` or `local bootstrap …`.
    pub target: String,
    pub executed_version: Option<String>,
    /// The proxy envelope's `statusCode`.
    pub status_code: Option<i64>,
    /// The envelope's body, decoded; or the raw answer when it is not an envelope.
    pub body: Value,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", serde_json::to_string_pretty(&self.body).unwrap_or_default())?;
        let status = self.status_code.map(|s| format!("status {s} · ")).unwrap_or_default();
        let version = self.executed_version.as_deref().map(|v| format!("version {v} · ")).unwrap_or_default();
        writeln!(f, "{} → {status}{version}{:.1} ms", self.target, self.latency_ms)
    }
}

/// `--payload` is inline JSON or a file holding it; it must parse, so typos fail here and not in Lambda.
fn read_payload(arg: Option<&str>) -> Result<Vec<u8>> {
    let text = match arg {
        None => return Ok(br#"{"_warmup": true}"#.to_vec()),
        Some(s) if s.trim_start().starts_with(['{', '[']) => s.to_string(),
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            Error::user(format!("cannot read payload file `{path}`: {e}"))
                .help("pass a JSON object or a file holding one")
        })?,
    };
    serde_json::from_str::<Value>(&text).map_err(|e| {
        Error::user(format!("the payload is not valid JSON: {e}")).help("check the quoting of `--payload`")
    })?;
    Ok(text.into_bytes())
}

/// Splits the recipe's proxy envelope `{statusCode, body: "<json>"}` into status and decoded body.
pub fn unwrap_envelope(answer: &[u8]) -> (Option<i64>, Value) {
    let value: Value =
        serde_json::from_slice(answer).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(answer).to_string()));
    let status = value.get("statusCode").and_then(Value::as_i64);
    let body = match value.get("body") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        Some(other) => other.clone(),
        None => value.clone(),
    };
    (status, body)
}

pub async fn run(ctx: &Ctx<'_>, p: &Project, s: &InvokeSettings) -> Result<Report> {
    let payload = read_payload(s.payload.as_deref())?;
    let outcome = match &s.target {
        InvokeTarget::LocalBootstrap(bin) => local_bootstrap(p, bin, payload).await?,
        InvokeTarget::LocalImage if p.config().function.package == PackageType::Zip => {
            local_zip(ctx, p, payload).await?
        }
        InvokeTarget::LocalImage => local_image(ctx, p, payload).await?,
        InvokeTarget::Remote { qualifier, version } => remote(ctx, p, qualifier, *version, payload).await?,
    };
    let failure = outcome.function_error.as_ref().map(|err| {
        Error::cloud(format!("the function failed while handling the payload: {err}"))
            .help("the function's log tail is shown with `-v`; `mlambda status` shows which version answered")
    });
    let report = Report::done(outcome);
    Ok(match failure {
        Some(e) => report.failing(e),
        None => report,
    })
}

async fn remote(ctx: &Ctx<'_>, p: &Project, qualifier: &str, version: bool, payload: Vec<u8>) -> Result<Outcome> {
    let function = &p.config().function.name;
    let aws = ctx.aws().await?;
    let started = Instant::now();
    let inv = aws::invoke::invoke(&aws, function, qualifier, payload).await?;
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(tail) = &inv.log_tail {
        ctx.printer.detail(format!("log tail:\n{tail}"));
    }
    let (status_code, body) = unwrap_envelope(&inv.payload);
    let target = if version { format!("version {qualifier}") } else { qualifier.to_string() };
    Ok(Outcome {
        target: format!("{function}:{target}"),
        executed_version: inv.executed_version,
        status_code,
        body,
        latency_ms,
        function_error: inv.function_error,
    })
}

/// The env the runtime reads, as deploy sets it, but with the model from the local file.
pub fn runtime_env(p: &Project, model_path: &str) -> std::collections::BTreeMap<String, String> {
    let c = p.config();
    let source = crate::plan::deploy::ModelSource::File(model_path);
    crate::plan::deploy::runtime_env(&c.model, &c.alarms.namespace, &p.model_version(None), source, None)
}

/// A free loopback port for the runtime's local mode.
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::local(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// POSTs the payload to the runtime's local mode, retrying the connection while it starts.
pub async fn post_local(port: u16, payload: Vec<u8>, deadline: Duration) -> Result<(Vec<u8>, f64)> {
    let url = format!("http://127.0.0.1:{port}{INVOKE_PATH}");
    let client = reqwest::Client::new();
    let give_up = Instant::now() + deadline;
    loop {
        let started = Instant::now();
        match client.post(&url).body(payload.clone()).send().await {
            Ok(resp) => {
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| Error::local(format!("the local runtime dropped the answer: {e}")))?;
                return Ok((bytes.to_vec(), started.elapsed().as_secs_f64() * 1e3));
            }
            Err(e) if e.is_connect() && Instant::now() < give_up => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                return Err(Error::local(format!("the local runtime on 127.0.0.1:{port} did not answer: {e}"))
                    .help("run with `-v` to see the runtime's log"))
            }
        }
    }
}

fn model_file(p: &Project) -> Result<PathBuf> {
    let path = p.model_path();
    if !path.is_file() {
        return Err(Error::user(format!("model file `{}` does not exist", path.display()))
            .help("fix `model.path` in mlambda.yaml"));
    }
    std::fs::canonicalize(&path).map_err(|e| crate::error::io_error(&path, "resolve", e))
}

async fn local_bootstrap(p: &Project, bin: &Path, payload: Vec<u8>) -> Result<Outcome> {
    if !bin.is_file() {
        return Err(Error::user(format!("runtime binary `{}` does not exist", bin.display()))
            .help("pass `--runtime PATH` to a built `bootstrap`"));
    }
    let model = model_file(p)?;
    let port = free_port()?;
    let mut child = tokio::process::Command::new(bin)
        .envs(runtime_env(p, &model.to_string_lossy()))
        .env(env::MLAMBDA_LISTEN, format!("127.0.0.1:{port}"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::user(format!("cannot start `{}`: {e}", bin.display())))?;
    let answer = tokio::select! {
        res = post_local(port, payload, Duration::from_secs(10)) => res,
        status = child.wait() => Err(Error::user(format!(
            "the runtime exited before answering ({})", status.map(|s| s.to_string()).unwrap_or_default()
        )).help("its error is printed above; check `model.path` and `model.features`")),
    };
    let _ = child.kill().await;
    let (bytes, latency_ms) = answer?;
    let (status_code, body) = unwrap_envelope(&bytes);
    Ok(Outcome {
        target: format!("local bootstrap {}", bin.display()),
        executed_version: None,
        status_code,
        body,
        latency_ms,
        function_error: None,
    })
}

/// `function.package: zip`: the `bootstrap` inside the zip `build` packed, unpacked to a temporary directory
/// with the zip's own mode, and run as Lambda would run it (in local mode).
async fn local_zip(ctx: &Ctx<'_>, p: &Project, payload: Vec<u8>) -> Result<Outcome> {
    let Some(built) = ctx.state(p)?.package else {
        return Err(Error::user("no zip package has been built for this project")
            .help("run `mlambda build` first, or pass `--runtime PATH` to run a bootstrap directly"));
    };
    let bytes = std::fs::read(&built.path).map_err(|e| crate::error::io_error(&built.path, "read", e))?;
    let (bootstrap, mode) = archive::read_file(&bytes, "bootstrap").map_err(|e| {
        Error::user(format!("`{}` has no readable `bootstrap`: {e}", built.path.display()))
            .help("run `mlambda build` again")
    })?;
    let dir = tempfile::tempdir().map_err(|e| Error::local(format!("cannot create a temporary directory: {e}")))?;
    let bin = dir.path().join("bootstrap");
    std::fs::write(&bin, bootstrap).map_err(|e| crate::error::io_error(&bin, "write", e))?;
    let mode = mode.unwrap_or(0o644) & 0o777;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(mode))
        .map_err(|e| crate::error::io_error(&bin, "chmod", e))?;
    if mode & 0o111 == 0 {
        return Err(Error::user(format!("`bootstrap` in `{}` is not executable", built.path.display()))
            .help("Lambda could not start it either; run `mlambda build` again"));
    }
    ctx.printer.status(format!("running `bootstrap` from {} locally", built.path.display()));
    let mut outcome = local_bootstrap(p, &bin, payload).await?;
    outcome.target = format!("local zip {}", built.path.display());
    Ok(outcome)
}

/// Where `invoke --local` mounts the configured model inside the container.
const MODEL_IN_CONTAINER: &str = "/opt/mlambda/model.onnx";

async fn local_image(ctx: &Ctx<'_>, p: &Project, payload: Vec<u8>) -> Result<Outcome> {
    let Some(build) = ctx.state(p)?.build else {
        return Err(Error::user("no image has been built for this project")
            .help("run `mlambda build` first, or pass `--runtime PATH` to run a bootstrap directly"));
    };
    let model = model_file(p)?;
    let port = free_port()?;
    let mut vars: Vec<String> =
        runtime_env(p, MODEL_IN_CONTAINER).into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    vars.push(format!("{}=127.0.0.1:{port}", env::MLAMBDA_LISTEN));
    let docker = engine::connect().await?;
    let binds = vec![format!("{}:{MODEL_IN_CONTAINER}:ro", model.display())];
    ctx.printer.status(format!("running {} locally on 127.0.0.1:{port}", build.image));
    let id = run::start(&docker, &build.image, vars, binds).await?;
    let answer = post_local(port, payload, Duration::from_secs(20)).await;
    let answer = match answer {
        Ok(a) => Ok(a),
        Err(e) => {
            let logs = run::logs(&docker, &id).await;
            Err(Error { message: format!("{}\ncontainer log:\n{}", e.message, logs.trim_end()), ..e })
        }
    };
    run::remove(&docker, &id).await;
    let (bytes, latency_ms) = answer?;
    let (status_code, body) = unwrap_envelope(&bytes);
    Ok(Outcome {
        target: format!("local image {}", build.image),
        executed_version: None,
        status_code,
        body,
        latency_ms,
        function_error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_envelope_is_unwrapped() {
        let (s, b) = unwrap_envelope(br#"{"statusCode":400,"body":"{\"error\":\"missing\"}"}"#);
        assert_eq!(s, Some(400));
        assert_eq!(b["error"], "missing");
        let (s, b) = unwrap_envelope(br#"{"status":"warm"}"#);
        assert_eq!((s, b["status"].as_str()), (None, Some("warm")));
    }

    #[test]
    fn a_payload_must_be_json() {
        assert_eq!(read_payload(None).unwrap(), br#"{"_warmup": true}"#);
        assert!(read_payload(Some("{\"a\": 1}")).is_ok());
        let e = read_payload(Some("{oops")).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let e = read_payload(Some("/nonexistent/payload.json")).unwrap_err();
        assert!(e.message.contains("cannot read payload file"));
    }
}
