//! `mlambda build` and `mlambda push` against the real dockerd (vfs, legacy builder) and docker-registry.
//! Image builds are slow on vfs and dockerd serialises them badly, so every test that builds holds `ENGINE`.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::{self, engine, Project};

const USER: &str = "AWS";
const PASSWORD: &str = "123456789012-auth-token";
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

fn stack_registry() -> String {
    std::env::var("MLAMBDA_REGISTRY").expect("MLAMBDA_REGISTRY")
}

/// A churn project whose image carries the model.
fn baked_project(prefix: &str) -> Project {
    let p = Project::churn(prefix);
    p.write_config(&p.default_config().replace("  path: model.onnx\n", "  path: model.onnx\n  bake: true\n"));
    p
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// GET on the registry's HTTP API with basic auth, via curl (a third party to bollard and dockerd).
fn registry_get(registry: &str, path: &str, accept: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "-f", "-u", &format!("{USER}:{PASSWORD}"), "-H", &format!("Accept: {accept}")])
        .arg(format!("http://{registry}{path}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "GET {path} on {registry}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The manifest the registry serves for `reference` (tag or digest): (its JSON, the sha256 of its bytes).
fn manifest(registry: &str, repo: &str, reference: &str) -> (Value, String) {
    let body = registry_get(registry, &format!("/v2/{repo}/manifests/{reference}"), MANIFEST_ACCEPT);
    let doc = serde_json::from_slice(&body).expect("manifest is json");
    (doc, format!("sha256:{}", sha256_hex(&body)))
}

fn docker(args: &[&str], config: &Path) -> String {
    let out = Command::new("docker").args(args).env("DOCKER_CONFIG", config).output().expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Removes a container when the test ends, pass or fail.
struct Container {
    id: String,
    config: PathBuf,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.id]).env("DOCKER_CONFIG", &self.config).output();
    }
}

#[test]
fn build_push_records_the_registry_digest_runs_and_a_second_push_uploads_nothing() {
    let p = baked_project("bp");
    let registry = stack_registry();
    let _engine = engine();

    let built = p.json(&["build"]);
    assert_eq!(built["platform"], "linux/amd64");
    assert_eq!(built["single_platform"], true);
    assert_eq!(built["model_baked"], true);
    let tag = built["tag"].as_str().expect("tag").to_string();
    assert!(tag.starts_with("v1-") && tag.len() == 15, "default tag is <model version>-<12 hex>: {tag}");
    assert_eq!(built["image"], format!("{}:{tag}", p.name));
    let model_sha = sha256_hex(&std::fs::read(p.path("model.onnx")).expect("model"));
    assert_eq!(built["labels"]["org.mlambda.model.sha256"], model_sha.as_str());
    assert_eq!(built["labels"]["org.mlambda.model.version"], "v1");
    let state = p.state();
    assert_eq!(state["build"]["tag"], tag.as_str());
    assert_eq!(state["build"]["model_sha256"], model_sha.as_str());
    assert!(state["build"]["image_id"].as_str().is_some_and(|id| id.starts_with("sha256:")), "{state}");

    let pushed = p.json(&["push"]);
    let digest = pushed["digest"].as_str().expect("digest").to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{pushed}");
    // Other tests' repositories may already hold these layers: the registry mounts them instead of an upload.
    let layers =
        pushed["layers_pushed"].as_u64().expect("pushed") + pushed["layers_existing"].as_u64().expect("existing");
    assert_eq!(layers, 2, "bootstrap and model layers: {pushed}");
    assert_eq!(pushed["repository_created"], true);
    let image_uri = format!("{registry}/{}@{digest}", p.name);
    assert_eq!(pushed["image_uri"], image_uri.as_str());

    let state = p.state();
    assert_eq!(state["push"]["digest"], digest.as_str());
    assert_eq!(state["push"]["image_uri"], image_uri.as_str());
    assert_eq!(state["push"]["tag"], tag.as_str());

    // The registry itself: a single-platform manifest whose bytes hash to the recorded digest.
    let (doc, served) = manifest(&registry, &p.name, &tag);
    let media_type = doc["mediaType"].as_str().unwrap_or("");
    assert!(
        media_type == "application/vnd.docker.distribution.manifest.v2+json"
            || media_type == "application/vnd.oci.image.manifest.v1+json",
        "expected a single-platform manifest, got {media_type}: {doc}"
    );
    assert!(doc.get("manifests").is_none(), "an index, not a single image: {doc}");
    assert_eq!(served, digest);
    let config_digest = doc["config"]["digest"].as_str().expect("config digest");
    let config: Value = serde_json::from_slice(&registry_get(
        &registry,
        &format!("/v2/{}/blobs/{config_digest}", p.name),
        "application/octet-stream",
    ))
    .expect("config json");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/bootstrap"]));
    assert_eq!(config["config"]["Labels"]["org.mlambda.model.sha256"], model_sha.as_str());
    let env: Vec<&str> = config["config"]["Env"].as_array().expect("env").iter().filter_map(Value::as_str).collect();
    assert!(env.contains(&format!("MODEL_FEATURES={}", common::CHURN_FEATURES.join(",")).as_str()), "{env:?}");
    assert!(env.contains(&"MODEL_VERSION=v1") && env.contains(&"METRICS_NAMESPACE=ChurnModel"), "{env:?}");
    assert!(env.contains(&"MODEL_PATH=/opt/model.onnx"), "{env:?}");

    // Unchanged image, second push: nothing uploaded, same digest.
    let again = p.json(&["push"]);
    assert_eq!(again["layers_pushed"], 0, "{again}");
    assert!(again["layers_existing"].as_u64().expect("layers_existing") >= 1, "{again}");
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(again["repository_created"], false);
    let text = p.cmd().arg("push").output().expect("push");
    assert!(String::from_utf8_lossy(&text.stdout).contains("0 layers uploaded"), "{text:?}");

    // Pull by digest with the docker CLI and run the image in local mode: it must answer like the reference.
    let config_dir = tempfile::tempdir().expect("docker config dir");
    let mut login = Command::new("docker")
        .args(["login", "-u", USER, "--password-stdin", &registry])
        .env("DOCKER_CONFIG", config_dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker login");
    login.stdin.take().expect("stdin").write_all(PASSWORD.as_bytes()).expect("password");
    assert!(login.wait().expect("docker login").success());
    docker(&["pull", &image_uri], config_dir.path());
    let port = free_port();
    let id = docker(
        &[
            "run",
            "-d",
            "--network",
            "host",
            "-e",
            &format!("MLAMBDA_LISTEN=127.0.0.1:{port}"),
            "-e",
            "MODEL_PATH=/opt/model.onnx",
            &image_uri,
        ],
        config_dir.path(),
    );
    let container = Container { id, config: config_dir.path().to_path_buf() };

    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reference.json")).expect("reference")).expect("json");
    let names = reference["features"].as_array().expect("features");
    let row = reference["rows"][0].as_array().expect("row 0");
    let payload: serde_json::Map<String, Value> =
        names.iter().zip(row).map(|(n, v)| (n.as_str().expect("name").to_string(), v.clone())).collect();
    let payload = Value::Object(payload).to_string();
    let answer = invoke_container(port, &payload, &container.id);
    let expected = &reference["expected"][0];
    assert_eq!(answer["prediction"], expected["prediction"], "answer {answer}, expected {expected}");
    let (got, want) =
        (answer["probability"].as_f64().expect("probability"), expected["probability"].as_f64().expect("p"));
    assert!((got - want).abs() < 1e-3, "probability {got} vs reference {want}");
}

/// POSTs `payload` to a local-mode container until it answers (30 s at most); returns the prediction body.
fn invoke_container(port: u16, payload: &str, container: &str) -> Value {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/function/invocations");
    let started = Instant::now();
    let answer = loop {
        let out = Command::new("curl")
            .args(["-sS", "-f", "-X", "POST", "-H", "Content-Type: application/json", "-d", payload, &url])
            .output()
            .expect("curl");
        if out.status.success() {
            break out.stdout;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let logs = Command::new("docker").args(["logs", container]).output().expect("docker logs");
            panic!(
                "the container never answered on {url}: {}\nlogs:\n{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let answer: Value = serde_json::from_slice(&answer).expect("the function answers json");
    // An API-Gateway-shaped answer carries the prediction as a JSON string in `body`.
    match answer.get("body").and_then(Value::as_str) {
        Some(body) => serde_json::from_str(body).expect("body is json"),
        None => answer,
    }
}

/// The deployed shape: an image without the model, which fetches it from S3 at INIT. The endpoint is a host
/// name that only the container's /etc/hosts knows (dotless, so moto reads the bucket from the path), so the lookup has to work in a `FROM scratch` image
/// (no libc NSS modules) the way S3's real name does on Lambda.
#[test]
fn a_scratch_image_fetches_its_model_from_s3_by_host_name() {
    let p = Project::churn("s3img");
    let pushed = p.json(&["model", "push", "--create-bucket"]);
    let (bucket, key, sha) = (
        pushed["bucket"].as_str().expect("bucket"),
        pushed["key"].as_str().expect("key"),
        pushed["sha256"].as_str().expect("sha256"),
    );
    let built = {
        let _engine = engine();
        p.json(&["build"])
    };
    assert_eq!(built["model_baked"], false);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let port_of_moto = endpoint.rsplit(':').next().expect("endpoint port");
    let host_endpoint = format!("http://mlambda-s3:{port_of_moto}");
    let config_dir = tempfile::tempdir().expect("docker config dir");
    let port = free_port();
    let env = [
        format!("MLAMBDA_LISTEN=127.0.0.1:{port}"),
        format!("AWS_ENDPOINT_URL={host_endpoint}"),
        "AWS_REGION=us-east-1".to_string(),
        "AWS_ACCESS_KEY_ID=testing".to_string(),
        "AWS_SECRET_ACCESS_KEY=testing".to_string(),
        format!("MODEL_BUCKET={bucket}"),
        format!("MODEL_KEY={key}"),
        format!("MODEL_SHA256={sha}"),
        "MODEL_VERSION=v1-from-s3".to_string(),
    ];
    let mut args = vec!["run", "-d", "--network", "host", "--add-host", "mlambda-s3:127.0.0.1"];
    for e in &env {
        args.extend(["-e", e.as_str()]);
    }
    let image = built["image"].as_str().expect("image");
    args.push(image);
    let id = docker(&args, config_dir.path());
    let container = Container { id, config: config_dir.path().to_path_buf() };

    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reference.json")).expect("reference")).expect("json");
    let row: serde_json::Map<String, Value> = reference["features"]
        .as_array()
        .expect("features")
        .iter()
        .zip(reference["rows"][1].as_array().expect("row 1"))
        .map(|(n, v)| (n.as_str().expect("name").to_string(), v.clone()))
        .collect();
    let answer = invoke_container(port, &Value::Object(row).to_string(), &container.id);
    assert_eq!(answer["model_version"], "v1-from-s3", "{answer}");
    let want = reference["expected"][1]["probability"].as_f64().expect("reference probability");
    let got = answer["probability"].as_f64().expect("probability");
    assert!((got - want).abs() < 1e-5, "probability {got} vs reference {want}");
}

/// A docker-registry owned by one test, on its own port and storage, that the test can kill and restart.
struct TestRegistry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl TestRegistry {
    fn start(password: &str) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry dir");
        let htpasswd = dir.path().join("htpasswd");
        let ok = Command::new("htpasswd")
            .args(["-Bbc"])
            .arg(&htpasswd)
            .args([USER, password])
            .stderr(Stdio::null())
            .status()
            .expect("run htpasswd");
        assert!(ok.success(), "htpasswd failed");
        let mut r = TestRegistry { dir, port: free_port(), child: None };
        std::fs::write(
            r.dir.path().join("registry.yml"),
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n\
                 http: {{addr: 127.0.0.1:{}}}\nauth:\n  htpasswd: {{realm: test, path: {}}}\n",
                r.storage().display(),
                r.port,
                htpasswd.display()
            ),
        )
        .expect("write registry.yml");
        r.restart();
        r
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("registry.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "the test registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Layers linked into `repo` (fully landed, visible to a HEAD), and uploads still in progress.
    fn layers_and_uploads(&self, repo: &str) -> (usize, usize) {
        let repo = self.storage().join("docker/registry/v2/repositories").join(repo);
        let layers = walk(&repo.join("_layers")).iter().filter(|p| p.ends_with("link")).count();
        let uploads = std::fs::read_dir(repo.join("_uploads")).map(|d| d.count()).unwrap_or(0);
        (layers, uploads)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A loopback TCP proxy that slows uploads to `rate` bytes/s, so a push is still running when the test
/// kills the registry behind it; `stop` closes it and every connection through it.
struct SlowProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(upstream: u16, rate: usize) -> SlowProxy {
        SlowProxy::start_on(0, upstream, rate)
    }

    /// On a given port, so a re-run can reach "the same registry" as the run that was cut.
    fn start_on(port: u16, upstream: u16, rate: usize) -> SlowProxy {
        // The previous proxy on this port lets go of it once its accept loop sees the stop flag.
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot bind the proxy to 127.0.0.1:{port}: {e}"),
            }
        };
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                        let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                        let (f1, f2) = (flag.clone(), flag.clone());
                        std::thread::spawn(move || pipe(client, server, Some(rate), f1));
                        std::thread::spawn(move || pipe(s2, c2, None, f2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SlowProxy { port, stop }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, rate: Option<usize>, stop: Arc<AtomicBool>) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if let Some(rate) = rate {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Random bytes, so the layer neither compresses nor dedups with anything else.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos() as u64 | 1;
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn a_registry_that_refuses_the_token_is_a_cloud_error_that_says_so() {
    let p = baked_project("bpauth");
    let other = TestRegistry::start("not-the-ecr-token");
    let _engine = engine();
    p.json(&["build"]);
    let err = p.fails_with(&["push"], &[("MLAMBDA_REGISTRY", &other.host())], 2);
    assert!(err.contains(&format!("the registry `{}` refused the ECR token", other.host())), "{err}");
    assert!(err.contains("aws ecr get-authorization-token"), "{err}");
    assert!(p.state().get("push").is_none(), "a refused push records nothing");
}

#[test]
fn a_registry_killed_mid_push_fails_clearly_and_a_rerun_reuses_the_landed_layers() {
    let p = Project::churn("bpkill");
    std::fs::write(p.path("big.onnx"), random_bytes(6 << 20)).expect("write big model");
    p.write_config(&p.default_config().replace("  path: model.onnx\n", "  path: big.onnx\n  bake: true\n"));
    let mut registry = TestRegistry::start(PASSWORD);
    let proxy = SlowProxy::start(registry.port, 2 << 20);
    let _engine = engine();
    p.json(&["build"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_mlambda"))
        .arg("push")
        .current_dir(p.root())
        .env("NO_COLOR", "1")
        .env("MLAMBDA_REGISTRY", format!("127.0.0.1:{}", proxy.port))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mlambda push");
    // Kill the registry once a layer has landed and another is still uploading.
    let started = Instant::now();
    loop {
        let (layers, uploads) = registry.layers_and_uploads(&p.name);
        if layers >= 1 && uploads >= 1 {
            // Give dockerd a moment to take the registry's answer for the landed layer: it only skips
            // layers it knows it pushed to this registry.
            std::thread::sleep(Duration::from_millis(500));
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the push ended ({status}) before the registry could be killed mid-push");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the push never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    registry.kill();
    proxy.stop();
    let out = child.wait_with_output().expect("wait for push");
    let stderr = common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("re-run `mlambda push`"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{}", proxy.port)), "the error names the registry: {stderr}");
    assert!(p.state().get("push").is_none(), "a failed push records nothing");

    let landed = walk(&registry.storage());
    registry.restart();
    // Same host and port as the cut push: dockerd's record of landed layers is per registry.
    let proxy = SlowProxy::start_on(proxy.port, registry.port, 64 << 20);
    let pushed = p.json_with(&["push"], &[("MLAMBDA_REGISTRY", &format!("127.0.0.1:{}", proxy.port))]);
    assert!(
        pushed["layers_existing"].as_u64().expect("layers_existing") >= 1,
        "landed layers are reused: {pushed}\nfirst push: {stderr}\nstorage: {landed:#?}"
    );
    assert!(pushed["layers_pushed"].as_u64().expect("layers_pushed") >= 1, "the cut layer is sent again: {pushed}");
    proxy.stop();
    let (_, served) = manifest(&registry.host(), &p.name, pushed["tag"].as_str().expect("tag"));
    assert_eq!(pushed["digest"], served.as_str());
    assert_eq!(p.state()["push"]["digest"], served.as_str());
}

#[test]
fn unreachable_docker_missing_or_dynamic_runtime_and_no_build_are_clear_errors() {
    let p = Project::churn("bperr");
    let err = p.fails_with(&["build"], &[("DOCKER_HOST", "unix:///nonexistent")], 2);
    assert!(err.contains("DOCKER_HOST=`unix:///nonexistent`"), "{err}");

    let err = p.fails_with(&["build", "--runtime", "/nonexistent/bootstrap"], &[], 1);
    assert!(err.contains("`/nonexistent/bootstrap`") && err.contains("--runtime PATH"), "{err}");

    let err = p.fails_with(&["build", "--runtime", "/bin/true"], &[], 1);
    assert!(
        err.contains("`bootstrap` is dynamically linked") && err.contains("a scratch image has no loader"),
        "{err}"
    );
    assert!(err.contains("crt-static"), "the fix names the static build: {err}");

    let err = p.fails_with(&["push"], &[], 1);
    assert!(err.contains("run `mlambda build` first"), "{err}");
    assert!(!p.path(".mlambda/state.json").exists(), "nothing is recorded");
}

#[test]
fn a_base_image_that_cannot_be_pulled_shows_the_daemons_message_and_points_at_image_base() {
    let p = Project::churn("bpbase");
    p.write_config(
        &p.default_config()
            .replace("image:\n  repository: ", "image:\n  base: 127.0.0.1:9/mlambda/no-such-base:1\n  repository: "),
    );
    let _engine = engine();
    let err = p.fails_with(&["build"], &[], 1);
    assert!(err.contains("the image build failed at `Step 1/"), "{err}");
    assert!(err.contains("FROM 127.0.0.1:9/mlambda/no-such-base:1"), "the step is shown: {err}");
    assert!(err.contains("`image.base`"), "{err}");
    assert!(!p.path(".mlambda/state.json").exists(), "a failed build records nothing");
}

/// Replaces what differs per run (names, the runtime binary) so snapshots hold only what mlambda decides.
fn redact(v: &mut Value, name: &str) {
    match v {
        Value::String(s) => {
            *s = s.replace(name, "[name]");
            if let Ok(rt) = std::env::var("MLAMBDA_RUNTIME") {
                *s = s.replace(&rt, "[runtime]");
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redact(i, name)),
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if matches!(k.as_str(), "context_sha256" | "context_size" | "tag") {
                    *item = Value::String(format!("[{k}]"));
                } else if k == "image" {
                    *item = "[name]:[tag]".into();
                } else {
                    redact(item, name);
                }
            }
            if map.get("path").is_some_and(|p| p == "bootstrap") {
                map.insert("size".into(), "[size]".into());
                map.insert("sha256".into(), "[sha256]".into());
            }
        }
        _ => {}
    }
}

#[test]
fn dry_runs_print_the_plan_touch_nothing_and_match_their_snapshots() {
    let p = baked_project("bpdry");
    let mut plan = p.json(&["build", "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    let files: Vec<&str> =
        plan["context"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    assert_eq!(files, ["Dockerfile", "bootstrap", "model.onnx"]);
    assert!(!p.path(".mlambda/state.json").exists(), "a dry run records nothing");
    redact(&mut plan, &p.name);
    insta::assert_json_snapshot!("build_dry_run", plan);

    std::fs::create_dir_all(p.path(".mlambda")).expect("state dir");
    let state = serde_json::json!({"build": {"image": format!("{}:v1-0123456789ab", p.name), "tag": "v1-0123456789ab",
        "image_id": "sha256:00", "model_version": "v1"}});
    std::fs::write(p.path(".mlambda/state.json"), state.to_string()).expect("state");
    let mut plan = p.json(&["push", "--dry-run"]);
    assert_eq!(plan["repository_created"], true);
    assert_eq!(plan["repository_uri"], format!("{}/{}", stack_registry(), p.name));
    let repos = common::aws_cli(&["ecr", "describe-repositories"]);
    let names: Vec<&str> = repos["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .filter_map(|r| r["repositoryName"].as_str())
        .collect();
    assert!(!names.contains(&p.name.as_str()), "a dry run creates no repository");
    redact(&mut plan, &p.name);
    plan["repository_uri"] =
        plan["repository_uri"].as_str().expect("uri").replace(&stack_registry(), "[registry]").into();
    insta::assert_json_snapshot!("push_dry_run", plan);
}
