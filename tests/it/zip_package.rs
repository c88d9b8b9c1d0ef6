//! `function.package: zip`: an installed mlambda in a directory outside the checkout packs `bootstrap` into a
//! deterministic zip, uploads it to S3 and runs the whole flow on `provided.al2023`. awscli checks what Lambda
//! holds, and the zip's own `bootstrap` answers through cargo-lambda's Runtime API emulator.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::common::{self, aws_cli, CHURN_FEATURES};

#[path = "../../runtime/tests/common/mod.rs"]
mod rt;

/// A zip project outside the checkout, run by a copy of `mlambda` installed outside the workspace's target
/// dir, with its own user cache seeded with the suite's static `bootstrap` and no `MLAMBDA_RUNTIME`.
pub struct ZipProject {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    pub name: String,
}

impl ZipProject {
    pub fn new(prefix: &str) -> ZipProject {
        ZipProject::named(common::unique(prefix))
    }

    /// Another machine's checkout of the same project: the same files and names, none of this one's
    /// `.mlambda/`, its own mlambda install and user cache.
    pub fn fresh_clone(&self) -> ZipProject {
        ZipProject::named(self.name.clone())
    }

    fn named(name: String) -> ZipProject {
        common::require_stack();
        let (dir, home) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
        assert!(!dir.path().starts_with(common::repo()), "outside the checkout: {}", dir.path().display());
        let bin = home.path().join("bin/mlambda");
        std::fs::create_dir_all(bin.parent().expect("bin dir")).expect("create bin dir");
        std::fs::copy(assert_cmd::cargo::cargo_bin("mlambda"), &bin).expect("install mlambda");
        // A child another test thread forked while the copy was open for writing holds that fd until it execs,
        // and exec of the copy fails with ETXTBSY until then: wait for the first exec to succeed.
        for _ in 0..100 {
            match std::process::Command::new(&bin).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(26) => std::thread::sleep(std::time::Duration::from_millis(20)),
                _ => break,
            }
        }
        let example = common::repo().join("examples/churn");
        for f in ["model.onnx", "reference.json"] {
            std::fs::copy(example.join(f), dir.path().join(f)).expect("copy example file");
        }
        std::fs::create_dir_all(dir.path().join("payloads")).expect("payloads dir");
        for f in ["one.json", "batch.json", "bad-missing.json"] {
            std::fs::copy(example.join("payloads").join(f), dir.path().join("payloads").join(f)).expect("copy payload");
        }
        let p = ZipProject { dir, home, name };
        p.write_config(false);
        let path = p.json(&["runtime", "path"]);
        let cached = PathBuf::from(path["path"].as_str().expect("cache path"));
        assert!(cached.starts_with(p.home.path()), "the user cache: {path}");
        std::fs::create_dir_all(cached.parent().expect("cache dir")).expect("create cache dir");
        std::fs::copy(common::runtime_binary(), &cached).expect("seed the cache");
        p
    }

    fn write_config(&self, bake: bool) {
        let n = &self.name;
        let text = format!(
            "function:\n  name: {n}\n  memory: 512\n  timeout: 10\n  package: zip\n\
             model:\n  path: model.onnx\n  name: churn\n  version: v1\n  bucket: {n}\n  reference: reference.json\n  bake: {bake}\n  features: [{}]\n\
             alarms:\n  namespace: ChurnModel\n",
            CHURN_FEATURES.join(", ")
        );
        std::fs::write(self.path("mlambda.yaml"), text).expect("write mlambda.yaml");
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.home.path().join("bin/mlambda"));
        c.current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("NO_COLOR", "1")
            .env_remove("MLAMBDA_RUNTIME")
            .env_remove("MLAMBDA_CONFIG")
            .timeout(std::time::Duration::from_secs(300));
        c
    }

    /// The same command as [`ZipProject::cmd`], as a std process to run in the background.
    pub fn background(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(self.home.path().join("bin/mlambda"))
            .current_dir(self.dir.path())
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("NO_COLOR", "1")
            .env_remove("MLAMBDA_RUNTIME")
            .env_remove("MLAMBDA_CONFIG")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start mlambda")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        common::json_of(self.cmd(), args)
    }

    fn fails(&self, args: &[&str]) -> String {
        common::fails_of(self.cmd(), args, 1)
    }

    fn zip(&self) -> Vec<u8> {
        std::fs::read(self.path(&format!(".mlambda/{}.zip", self.name))).expect("the zip in .mlambda/")
    }

    /// Lambda's configuration of `qualifier`, read by awscli.
    fn lambda(&self, qualifier: &str) -> Value {
        aws_cli(&["lambda", "get-function-configuration", "--function-name", &self.name, "--qualifier", qualifier])
    }
}

/// `CodeSha256` as Lambda computes it: base64 of the raw sha256 of the zip.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn probability(answer: &Value) -> f64 {
    answer["body"]["probability"].as_f64().unwrap_or_else(|| panic!("no probability in {answer}"))
}

#[test]
fn a_zip_function_goes_up_and_through_a_rollout_from_outside_the_checkout() {
    let p = ZipProject::new("zip-up");
    let up = p.json(&["up", "--create-bucket", "--create-role"]);
    common::assert_up_finished(&up);
    assert!(!p.path("Dockerfile").exists() && !p.path(".mlambda/context.tar").exists(), "no image work");

    let zip = p.zip();
    let (bootstrap, mode) = zip_file(&zip, "bootstrap");
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(bootstrap, std::fs::read(common::runtime_binary()).expect("seed"), "the cached runtime is packed");
    let latest = p.lambda("$LATEST");
    assert_eq!(latest["PackageType"], "Zip", "{latest}");
    assert_eq!(latest["Runtime"], "provided.al2023", "{latest}");
    assert_eq!(latest["Handler"], "bootstrap", "{latest}");
    assert_eq!(latest["CodeSha256"], code_sha256(&zip).as_str(), "{latest}");
    assert_eq!(latest["Environment"]["Variables"]["MODEL_KEY"], "models/churn/v1/model.onnx", "{latest}");
    let sha = hex::encode(Sha256::digest(&zip));
    let key = format!("packages/{}/{sha}.zip", p.name);
    let head = aws_cli(&["s3api", "head-object", "--bucket", &p.name, "--key", &key]);
    assert_eq!(head["Metadata"]["sha256"], sha.as_str(), "{head}");
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");

    let status = p.json(&["status"]);
    assert_eq!(
        (status["package"].as_str(), status["code_sha256"].as_str()),
        (Some("zip"), Some(code_sha256(&zip).as_str()))
    );
    let text = p.cmd().arg("status").output().expect("status");
    assert!(String::from_utf8_lossy(&text.stdout).contains("package   zip on provided.al2023"), "{text:?}");

    // invoke --local runs the zip's own bootstrap
    let reference: Value =
        serde_json::from_slice(&std::fs::read(p.path("reference.json")).expect("reference")).expect("json");
    let local = p.json(&["invoke", "--local", "--payload", "payloads/one.json"]);
    assert!(local["target"].as_str().is_some_and(|t| t.starts_with("local zip ")), "{local}");
    let expected = reference["expected"][0]["probability"].as_f64().expect("expected");
    assert!((probability(&local) - expected).abs() < 1e-5, "{local} vs {expected}");
    let bad = p.json(&["invoke", "--local", "--payload", "payloads/bad-missing.json"]);
    assert_eq!(bad["status_code"], 400, "{bad}");

    // a second model version: same zip, new configuration, version 2 at 10%
    p.json(&["model", "push", "--version", "v2"]);
    let deployed = p.json(&["deploy", "--model-version", "v2"]);
    assert_eq!(
        (deployed["version"].as_str(), deployed["code"]["package"].as_str()),
        (Some("2"), Some("zip")),
        "{deployed}"
    );
    p.json(&["rollout", "--weight", "0.1"]);
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &p.name, "--name", "production"]);
    assert_eq!(alias["RoutingConfig"]["AdditionalVersionWeights"]["2"], 0.1, "{alias}");
    let alarms = p.json(&["alarms"]);
    let names: Vec<&str> =
        alarms["alarms"].as_array().expect("alarms").iter().filter_map(|a| a["name"].as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("-v2-errors")), "{alarms}");
    let pruned = p.json(&["prune", "--keep", "0"]);
    assert_eq!(pruned["deleted"], serde_json::json!([]), "both versions serve the alias: {pruned}");
    assert_eq!(pruned["protected"], serde_json::json!(["2", "1"]), "{pruned}");
    assert_eq!(pruned["deleted_packages"], serde_json::json!([]), "{pruned}");

    // the model baked into the zip: new bytes, a code update checked against CodeSha256, MODEL_PATH in /var/task
    p.write_config(true);
    let built = p.json(&["build"]);
    assert_eq!(built["files"].as_array().map(Vec::len), Some(2), "{built}");
    p.json(&["push"]);
    let deployed = p.json(&["deploy", "--model-version", "v2"]);
    assert_eq!(deployed["version"], "3", "{deployed}");
    let v3 = p.lambda("3");
    assert_eq!(v3["CodeSha256"], code_sha256(&p.zip()).as_str(), "{v3}");
    assert_eq!(v3["Environment"]["Variables"]["MODEL_PATH"], "/var/task/model.onnx", "{v3}");
    assert!(v3["Environment"]["Variables"].get("MODEL_BUCKET").is_none(), "one model source: {v3}");

    // v3 promoted: prune spares version 1, which the alias records as the primary its rollback returns to
    p.json(&["rollout", "--rollback"]);
    p.json(&["rollout", "--weight", "0.5"]);
    p.json(&["rollout", "--promote", "--force"]);
    let dry = p.json(&["prune", "--keep", "0", "--dry-run"]);
    assert_eq!(
        (&dry["deleted"], &dry["protected"]),
        (&serde_json::json!(["2"]), &serde_json::json!(["3", "1"])),
        "{dry}"
    );
    assert_eq!(dry["deleted_packages"], serde_json::json!([]), "version 1 still runs the first zip: {dry}");

    // v4 (v3's zip, model v1) promoted over v3: prune deletes versions 1 and 2 and the zip only they ran; the
    // zip v3 and v4 run stays
    assert_eq!(p.json(&["deploy", "--model-version", "v1"])["version"], "4");
    p.json(&["rollout", "--promote", "--version", "4", "--force"]);
    let first = format!("s3://{}/{key}", p.name);
    let dry = p.json(&["prune", "--keep", "0", "--dry-run"]);
    assert_eq!(dry["deleted_packages"], serde_json::json!([first]), "{dry}");
    aws_cli(&["s3api", "head-object", "--bucket", &p.name, "--key", &key]);
    let pruned = p.json(&["prune", "--keep", "0"]);
    assert_eq!(pruned["deleted"], serde_json::json!(["2", "1"]), "{pruned}");
    assert_eq!(pruned["deleted_packages"], serde_json::json!([first]), "{pruned}");
    let gone = std::process::Command::new("aws")
        .args(["s3api", "head-object", "--bucket", &p.name, "--key", &key])
        .output()
        .expect("run aws cli");
    assert!(!gone.status.success(), "the first zip is deleted");
    let kept = format!("packages/{}/{}.zip", p.name, hex::encode(Sha256::digest(p.zip())));
    aws_cli(&["s3api", "head-object", "--bucket", &p.name, "--key", &kept]);
    let again = p.json(&["prune", "--keep", "0"]);
    assert_eq!((&again["deleted"], &again["deleted_packages"]), (&serde_json::json!([]), &serde_json::json!([])));
}

#[test]
fn up_from_a_fresh_clone_finds_what_another_machine_deployed_and_changes_nothing() {
    let a = ZipProject::new("zip-clone");
    a.json(&["up", "--create-bucket", "--create-role"]);
    let before = aws_cli(&["lambda", "list-versions-by-function", "--function-name", &a.name]);
    let b = a.fresh_clone();
    assert!(!b.path(".mlambda").exists());
    // no --create-role: the function's own role is found in the cloud
    let up = b.json(&["up"]);
    let status = |step: &str| {
        up["steps"].as_array().and_then(|s| s.iter().find(|x| x["step"] == step)).map(|x| x["status"].clone())
    };
    assert_eq!(status("rollout"), Some(Value::from("nothing to do")), "{up}");
    let deployed = up["steps"].as_array().and_then(|s| s.iter().find(|x| x["step"] == "deploy")).expect("deploy");
    assert_eq!(deployed["results"][0]["published"], false, "the same zip and model: nothing new to publish: {up}");
    assert_eq!(deployed["results"][0]["version"], "1", "{up}");
    assert_eq!(aws_cli(&["lambda", "list-versions-by-function", "--function-name", &a.name]), before);
    let alias = aws_cli(&["lambda", "get-alias", "--function-name", &a.name, "--name", "production"]);
    assert_eq!(alias["FunctionVersion"], "1", "{alias}");
}

#[test]
fn the_zip_is_byte_identical_across_builds_and_directories() {
    let a = ZipProject::new("zip-same");
    a.json(&["build"]);
    let first = a.zip();
    std::fs::remove_dir_all(a.path(".mlambda")).expect("remove .mlambda");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let built = a.json(&["build"]);
    assert_eq!(a.zip(), first, "a rebuild gives the same bytes");
    assert_eq!(built["sha256"], hex::encode(Sha256::digest(&first)).as_str(), "{built}");
    assert_eq!(built["code_sha256"], code_sha256(&first).as_str(), "{built}");
    // another checkout of the same project: same name, same inputs, other paths and times
    let b = ZipProject { name: a.name.clone(), ..ZipProject::new("zip-same") };
    b.write_config(false);
    b.json(&["build"]);
    assert_eq!(b.zip(), first, "another directory gives the same bytes");
    let dry = b.json(&["build", "--dry-run"]);
    assert_eq!((dry["dry_run"].as_bool(), dry["sha256"].as_str()), (Some(true), built["sha256"].as_str()));
    // a zip changed after the build is never uploaded
    std::fs::write(b.path(&format!(".mlambda/{}.zip", b.name)), [first, b"x".to_vec()].concat()).expect("tamper");
    let err = b.fails(&["push"]);
    assert!(err.contains("changed after `mlambda build`") && err.contains("run `mlambda build` again"), "{err}");
}

#[test]
fn changing_the_package_of_an_existing_function_is_refused_before_any_call() {
    let p = ZipProject::new("zip-switch");
    p.json(&["up", "--create-bucket", "--create-role"]);
    let before = aws_cli(&["lambda", "list-versions-by-function", "--function-name", &p.name]);
    let config = std::fs::read_to_string(p.path("mlambda.yaml")).expect("config");
    std::fs::write(
        p.path("mlambda.yaml"),
        config
            .replace("  package: zip\n", "  package: image\n")
            .replace("model:\n", &format!("image:\n  repository: {}\nmodel:\n", p.name)),
    )
    .expect("write config");
    for args in [&["deploy"][..], &["up"][..]] {
        let err = p.fails(args);
        assert!(err.contains("packaged as zip") && err.contains("cannot change a function's package type"), "{err}");
        assert!(err.contains("`function.package: zip`") && err.contains("new `function.name`"), "{err}");
    }
    let after = aws_cli(&["lambda", "list-versions-by-function", "--function-name", &p.name]);
    assert_eq!(before["Versions"].as_array().map(Vec::len), after["Versions"].as_array().map(Vec::len));
    assert_eq!(p.lambda("$LATEST")["PackageType"], "Zip");
    // `up` refused before its build step: no image was built or pushed
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path(".mlambda/state.json")).expect("state")).expect("json");
    assert!(state.get("build").is_none() && state.get("push").is_none(), "{state}");
}

#[test]
fn the_zips_bootstrap_answers_through_cargo_lambdas_runtime_api() {
    let p = ZipProject::new("zip-rie");
    p.json(&["build"]);
    let (bootstrap, mode) = zip_file(&p.zip(), "bootstrap");
    let bin = p.path("unzipped/bootstrap");
    write_executable(&bin, &bootstrap, mode);

    let emu_dir = tempfile::tempdir().expect("tempdir");
    let port = rt::free_port();
    let _emu = rt::emulator(port, emu_dir.path());
    let f = rt::lambda_function(rt::bootstrap_at(&bin), port, &p.path("model.onnx"));
    let reference = rt::reference();
    for (i, row) in reference["rows"].as_array().expect("rows").iter().enumerate().take(10) {
        let payload: serde_json::Map<String, Value> =
            CHURN_FEATURES.iter().zip(row.as_array().expect("row")).map(|(k, v)| (k.to_string(), v.clone())).collect();
        let resp = rt::post(port, rt::INVOKE, &serde_json::to_vec(&payload).expect("payload"));
        assert_eq!(resp.status, 200, "{}\n{}", String::from_utf8_lossy(&resp.body), f.stderr());
        let (status, body) = resp.envelope();
        assert_eq!(status, 200, "{body}");
        let expected = reference["expected"][i]["probability"].as_f64().expect("expected");
        let got = body["probability"].as_f64().expect("probability");
        assert!((got - expected).abs() < 1e-5, "row {i}: {got} vs {expected}");
    }
    let (status, body) = rt::post(port, rt::INVOKE, &rt::payload("bad-missing.json")).envelope();
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("num_products")), "{body}");
}

/// One file of a zip and its unix mode, read with the `zip` crate (not mlambda's reader).
pub fn zip_file(bytes: &[u8], name: &str) -> (Vec<u8>, u32) {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let names: Vec<String> = archive.file_names().filter_map(Result::ok).map(|n| n.to_string()).collect();
    let mut file = archive.by_name(name).unwrap_or_else(|e| panic!("{name} in {names:?}: {e}"));
    let mode = file.unix_mode().expect("a unix mode");
    let mut data = Vec::new();
    file.read_to_end(&mut data).expect("read");
    (data, mode)
}

fn write_executable(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777)).expect("chmod");
}
