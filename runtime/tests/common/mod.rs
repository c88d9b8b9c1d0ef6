//! Test plumbing: free ports, child processes that die with the test, a tiny HTTP/1.1 client, and
//! cargo-lambda's Runtime API emulator. The CLI's zip test includes this file too, for the emulator.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FEATURES: &str = "tenure_months,monthly_charges,total_charges,num_products,has_tech_support,\
contract_type_encoded,payment_method_encoded";

/// The checkout's root, from the runtime crate's tests or the CLI's.
pub fn repo() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("runtime").is_dir() {
        manifest.to_path_buf()
    } else {
        manifest.parent().unwrap().to_path_buf()
    }
}

pub fn churn_model() -> PathBuf {
    repo().join("examples/churn/model.onnx")
}

pub fn payload(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("examples/churn/payloads").join(name)).unwrap_or_else(|e| panic!("payload {name}: {e}"))
}

pub fn reference() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(repo().join("examples/churn/reference.json")).unwrap()).unwrap()
}

/// A model of `tests/fixtures/tabular/`.
pub fn tabular(name: &str) -> PathBuf {
    repo().join("runtime/tests/fixtures/tabular").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process killed (and reaped) when dropped; its stdout/stderr are collected as they arrive.
pub struct Proc {
    pub child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub name: String,
}

fn drain(mut r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

impl Proc {
    pub fn spawn(mut cmd: Command, name: &str) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (stdout, stderr) = (Arc::new(Mutex::new(String::new())), Arc::new(Mutex::new(String::new())));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        Proc { child, stdout, stderr, name: name.to_string() }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for exit up to `limit`; None if still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // let the drain threads catch the last output
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap().success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits until `port` accepts connections, failing with the child's output if it exits or stalls.
    pub fn wait_port(&mut self, port: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited ({status}) before listening:\n{}\n{}", self.name, self.stdout(), self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not listen on {port} within {limit:?}:\n{}\n{}", self.name, self.stdout(), self.stderr());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This crate's own `bootstrap`.
pub fn bootstrap() -> Command {
    match option_env!("CARGO_BIN_EXE_bootstrap") {
        Some(bin) => bootstrap_at(Path::new(bin)),
        None => panic!("`bootstrap()` is the runtime crate's own binary; other crates' tests use `bootstrap_at`"),
    }
}

/// A `bootstrap` binary with none of the developer's shell's model or mode variables.
pub fn bootstrap_at(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    // start from a clean slate: nothing from the developer's shell may change the mode or the model
    for var in [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "MODEL_PATH",
        "MODEL_BUCKET",
        "MODEL_KEY",
        "MODEL_SHA256",
        "MODEL_VERSION",
        "MODEL_FEATURES",
        "MODEL_ID_FIELD",
        "LOG_PREDICTIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The proxy envelope's statusCode and parsed body.
    pub fn envelope(&self) -> (u64, serde_json::Value) {
        let env = self.json();
        let body = env["body"].as_str().unwrap_or_else(|| panic!("no string body in {env}"));
        (env["statusCode"].as_u64().unwrap(), serde_json::from_str(body).unwrap())
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn http(method: &str, port: u16, path: &str, body: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // the server may answer (and close) before reading a refused oversized body
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no HTTP response head: {}", String::from_utf8_lossy(&raw));
    });
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    HttpResponse { status, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

pub fn post(port: u16, path: &str, body: &[u8]) -> HttpResponse {
    http("POST", port, path, body)
}

/// cargo-lambda's Runtime API emulator on `port`. It runs in a throwaway cargo project: it reads the manifest
/// but builds nothing with `--only-lambda-apis`.
pub fn emulator(port: u16, dir: &Path) -> Proc {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    let mut cmd = Command::new(require_tool("CARGO_LAMBDA", "cargo-lambda"));
    cmd.args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()]).current_dir(dir);
    let mut p = Proc::spawn(cmd, "cargo-lambda watch");
    p.wait_port(port, Duration::from_secs(60));
    p
}

/// `bootstrap` in Lambda mode against the emulator on `port`, serving the churn model at `model`.
pub fn lambda_function(mut cmd: Command, port: u16, model: &Path) -> Proc {
    cmd.env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("MODEL_PATH", model)
        .env("MODEL_FEATURES", FEATURES)
        .env("MODEL_VERSION", "v-lambda");
    Proc::spawn(cmd, "bootstrap (lambda mode)")
}

/// The emulator's invoke path for the function `_`.
pub const INVOKE: &str = "/2015-03-31/functions/_/invocations";

/// A program the tests need: `$VAR` if set, else the name on PATH. Missing means failure, not a skip.
pub fn require_tool(var: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is required for this test but is not on PATH and {var} is unset: install it (the project venv has it) or set {var}");
}
