//! `mlambda batch`: a whole dataset scored by a published zip version through a real Step Functions
//! Distributed Map on the local stack (moto executes the state machine and runs the function's own `bootstrap`
//! in Docker for every slice). awscli checks the execution and the state machine; every row is accounted for.
use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use super::common::{aws_cli, fails_of, CHURN_FEATURES};
use super::zip_package::ZipProject;

/// One deterministic churn-like row (the features' ranges as in the reference recipe's data).
fn row(i: u64) -> [f64; 7] {
    let mut x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = |m: u64| {
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (x >> 17) % m
    };
    let tenure = next(72) as f64;
    let monthly = 18.0 + next(10_000) as f64 / 100.0;
    let total = (tenure * monthly * 100.0).round() / 100.0;
    [tenure, monthly, total, 1.0 + next(6) as f64, next(2) as f64, next(3) as f64, next(4) as f64]
}

fn id(i: u64) -> String {
    format!("C-{i:06}")
}

/// `rows` rows with a `customer_id` column first and a column the model ignores last; `bad(i)` rows carry a
/// word where `tenure_months` goes.
fn write_csv(path: &Path, rows: u64, bad: impl Fn(u64) -> bool) {
    let mut text = format!("customer_id,{},region\n", CHURN_FEATURES.join(","));
    for i in 0..rows {
        let r = row(i);
        let tenure = if bad(i) { "unknown".to_string() } else { r[0].to_string() };
        let rest: Vec<String> = r[1..].iter().map(f64::to_string).collect();
        text.push_str(&format!("{},{tenure},{},north\n", id(i), rest.join(",")));
    }
    std::fs::write(path, text).expect("write the dataset");
}

/// Every JSON line under `s3://bucket/prefix/` (or in the one object `s3://bucket/key`), fetched by awscli.
fn lines_under(bucket: &str, prefix: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().to_str().expect("utf-8").to_string();
    // a directory's parts, or one object
    let recursive = if prefix.ends_with('/') { "--recursive" } else { "--no-progress" };
    let to = if prefix.ends_with('/') { to } else { format!("{to}/one.jsonl") };
    let out = std::process::Command::new("aws")
        .args(["s3", "cp", recursive, "--quiet", &format!("s3://{bucket}/{prefix}"), &to])
        .output()
        .expect("run aws s3 cp");
    assert!(out.status.success(), "aws s3 cp: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines = Vec::new();
    for entry in walk(dir.path()) {
        let text = std::fs::read_to_string(&entry).expect("read a part");
        lines.extend(
            text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")),
        );
    }
    lines
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

fn s3_json(bucket: &str, key: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("o.json");
    let out = std::process::Command::new("aws")
        .args(["s3", "cp", "--quiet", &format!("s3://{bucket}/{key}"), to.to_str().expect("utf-8")])
        .output()
        .expect("aws s3 cp");
    assert!(out.status.success(), "aws s3 cp s3://{bucket}/{key}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&std::fs::read(&to).expect("read")).expect("json")
}

/// The run's prefix inside the bucket, from the summary's output address.
fn run_prefix(summary: &Value, bucket: &str) -> String {
    let output = summary["output"].as_str().expect("output");
    output.trim_start_matches(&format!("s3://{bucket}/")).trim_end_matches("out/").to_string()
}

fn executions(p: &ZipProject) -> Vec<Value> {
    let machines = aws_cli(&["stepfunctions", "list-state-machines"]);
    let name = format!("mlambda-{}-batch", p.name);
    let Some(arn) = machines["stateMachines"]
        .as_array()
        .expect("machines")
        .iter()
        .find(|m| m["name"] == name.as_str())
        .and_then(|m| m["stateMachineArn"].as_str())
    else {
        return Vec::new();
    };
    aws_cli(&["stepfunctions", "list-executions", "--state-machine-arn", arn])["executions"]
        .as_array()
        .expect("executions")
        .clone()
}

/// `batch run INPUT --out OUT` with version 1, the `customer_id` ids and the role created, then `extra`.
fn run_args<'a>(input: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["batch", "run", input, "--out", out, "--version", "1", "--id-field", "customer_id", "--create-role"];
    args.extend_from_slice(extra);
    args
}

/// The project, deployed: version 1 of a zip function on the local stack.
fn deployed(prefix: &str) -> ZipProject {
    let p = ZipProject::new(prefix);
    p.json(&["up", "--create-bucket", "--create-role"]);
    p
}

#[test]
fn a_hundred_thousand_rows_are_scored_once_each_as_invoke_local_scores_them() {
    let p = deployed("batch");
    let rows = 100_000;
    write_csv(&p.path("customers.csv"), rows, |_| false);
    let out = format!("s3://{}/scores/", p.name);
    let args = run_args("customers.csv", &out, &["--wait"]);
    let s = p.json(&args);
    assert_eq!(
        (&s["status"], &s["rows_in"], &s["rows_out"], &s["rows_failed"], &s["slices"], &s["action"]),
        (&json!("succeeded"), &json!(rows), &json!(rows), &json!(0), &json!(10), &json!("started")),
        "{s}"
    );
    assert_eq!((&s["function_version"], &s["model_versions"]), (&json!("1"), &json!(["v1"])), "{s}");

    // awscli: the execution succeeded, and the state machine holds the snapshot-tested definition
    let execution = s["executions"][0].as_str().expect("execution arn");
    let described = aws_cli(&["stepfunctions", "describe-execution", "--execution-arn", execution]);
    assert_eq!(described["status"], "SUCCEEDED", "{described}");
    let machine = aws_cli(&[
        "stepfunctions",
        "describe-state-machine",
        "--state-machine-arn",
        described["stateMachineArn"].as_str().expect("arn"),
    ]);
    let mut stored: Value = serde_json::from_str(machine["definition"].as_str().expect("definition")).expect("json");
    let snap = std::fs::read_to_string(
        super::common::repo().join("src/plan/snapshots/mlambda__plan__batch__tests__batch_definition.snap"),
    )
    .expect("the definition's snapshot");
    let mut expected: Value = serde_json::from_str(snap.splitn(3, "---").nth(2).expect("snapshot body")).expect("json");
    for d in [&mut stored, &mut expected] {
        d.as_object_mut().expect("object").remove("Comment");
    }
    assert_eq!(stored, expected, "the deployed definition is the snapshot's");

    // every id exactly once, and the same probability `invoke --local` gives for that row
    let prefix = run_prefix(&s, &p.name);
    let mut scored: HashMap<String, (f64, usize)> = HashMap::new();
    for line in lines_under(&p.name, &format!("{prefix}out/")) {
        assert_eq!((&line["function_version"], &line["model_version"]), (&json!("1"), &json!("v1")), "{line}");
        let entry = scored.entry(line["id"].as_str().expect("id").to_string()).or_insert((0.0, 0));
        entry.0 = line["probability"].as_f64().expect("probability");
        entry.1 += 1;
    }
    assert_eq!(scored.len(), rows as usize);
    assert!(scored.values().all(|(_, n)| *n == 1), "an id appeared twice");
    let mut worst = 0f64;
    for start in (0..rows).step_by(10_000) {
        let instances: Vec<Value> = (start..start + 10_000)
            .map(|i| Value::Object(CHURN_FEATURES.iter().zip(row(i)).map(|(f, v)| (f.to_string(), json!(v))).collect()))
            .collect();
        let payload = p.path("chunk.json");
        std::fs::write(&payload, json!({ "instances": instances }).to_string()).expect("write payload");
        let local = p.json(&["invoke", "--local", "--payload", payload.to_str().expect("utf-8")]);
        for (k, pred) in local["body"]["predictions"].as_array().expect("predictions").iter().enumerate() {
            let (batch, _) = scored[&id(start + k as u64)];
            worst = worst.max((batch - pred["probability"].as_f64().expect("probability")).abs());
        }
    }
    assert!(worst <= 1e-6, "batch and invoke --local differ by {worst}");

    // summary.json in S3 says what the command printed; no failures
    let summary = s3_json(&p.name, &format!("{prefix}summary.json"));
    assert_eq!(
        (&summary["rows_in"], &summary["rows_out"], &summary["status"]),
        (&s["rows_in"], &s["rows_out"], &s["status"])
    );
    assert!(lines_under(&p.name, &format!("{prefix}failures.jsonl")).is_empty());

    // the same command again finds the run: no second execution, no doubled output
    let again = p.json(&args);
    assert_eq!((&again["action"], &again["rows_out"]), (&json!("found"), &json!(rows)), "{again}");
    assert_eq!(executions(&p).len(), 1);
    let listed = p.json(&["batch", "list"]);
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
    let status = p.json(&["batch", "status"]);
    assert_eq!((&status["run"], &status["status"]), (&s["run"], &json!("succeeded")), "{status}");
}

#[test]
fn bad_rows_fail_alone_with_the_runtime_message_and_the_tolerance_decides() {
    let p = deployed("batchbad");
    let rows = 10_000;
    let bad = |i: u64| i % 100 == 37;
    write_csv(&p.path("customers.csv"), rows, bad);
    let common = ["--version", "1", "--id-field", "customer_id", "--slice-rows", "2500", "--wait", "--create-role"];
    let out = format!("s3://{}/lenient/", p.name);
    let s =
        p.json(&[&["batch", "run", "customers.csv", "--out", &out, "--tolerated-failure", "5"][..], &common].concat());
    assert_eq!(
        (&s["status"], &s["rows_in"], &s["rows_out"], &s["rows_failed"]),
        (&json!("succeeded"), &json!(rows), &json!(9_900), &json!(100)),
        "{s}"
    );
    let prefix = run_prefix(&s, &p.name);
    let failures = lines_under(&p.name, &format!("{prefix}failures.jsonl"));
    let mut ids: Vec<&str> = failures.iter().map(|f| f["id"].as_str().expect("id")).collect();
    ids.sort();
    let expected: Vec<String> = (0..rows).filter(|i| bad(*i)).map(id).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    for f in &failures {
        assert_eq!(
            (&f["status"], &f["reason"]),
            (&json!(400), &json!("feature \"tenure_months\" must be a number, got a string")),
            "{f}"
        );
    }
    let out_ids: usize = lines_under(&p.name, &format!("{prefix}out/")).len();
    assert_eq!(out_ids, 9_900);

    // the same rows under 0%: the run fails on our own accounting (moto does not enforce the Map's tolerance)
    let strict = format!("s3://{}/strict/", p.name);
    let err = fails_of(p.cmd(), &[&["batch", "run", "customers.csv", "--out", &strict][..], &common].concat(), 1);
    assert!(err.contains("1.000% of rows failed, over the 0% tolerated"), "{err}");
    let runs = aws_cli(&["s3api", "list-objects-v2", "--bucket", &p.name, "--prefix", "strict/"]);
    let summary_key = runs["Contents"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .find(|k| k.ends_with("summary.json"))
        .expect("a summary.json")
        .to_string();
    let summary = s3_json(&p.name, &summary_key);
    assert_eq!((&summary["status"], &summary["within_tolerance"]), (&json!("failed"), &json!(false)), "{summary}");
}

#[test]
fn a_stopped_run_resumes_and_a_slice_the_function_fails_twice_lands_in_the_summary() {
    let p = deployed("batchfault");
    let rows = 6_000;
    write_csv(&p.path("customers.csv"), rows, |_| false);
    let out = format!("s3://{}/faults/", p.name);
    let args = run_args("customers.csv", &out, &["--slice-rows", "500", "--max-concurrency", "1"]);
    let started = p.json(&args);
    assert_eq!((&started["status"], &started["action"]), (&json!("running"), &json!("started")), "{started}");
    let run = started["run"].as_str().expect("run").to_string();
    // stop it once a few slices are done
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let s = p.json(&["batch", "status", &run]);
        if s["progress"]["succeeded"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no slice finished in 120 s: {s}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let stopped = p.json(&["batch", "stop", &run]);
    assert_eq!(stopped["stopped"], true, "{stopped}");
    let err = fails_of(p.cmd(), &["batch", "status", &run], 1);
    assert!(err.contains("was stopped") && err.contains("resume"), "{err}");

    // resumed by the same command: every row exactly once
    let resumed = p.json(&[&args[..], &["--wait"]].concat());
    assert_eq!(
        (&resumed["status"], &resumed["action"], &resumed["rows_out"]),
        (&json!("succeeded"), &json!("resumed"), &json!(rows)),
        "{resumed}"
    );
    assert_eq!(resumed["executions"].as_array().map(Vec::len), Some(2), "{resumed}");
    let prefix = run_prefix(&resumed, &p.name);
    let mut ids: Vec<String> = lines_under(&p.name, &format!("{prefix}out/"))
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..rows).map(id).collect::<Vec<_>>(), "every row exactly once after the resume");

    // a slice the function fails on every attempt: a corrupt completion marker it refuses to trust
    let out2 = format!("s3://{}/broken/", p.name);
    let args2 = run_args("customers.csv", &out2, &["--slice-rows", "1000", "--max-concurrency", "1"]);
    let started = p.json(&args2);
    let prefix = run_prefix(&started, &p.name);
    let marker = p.path("garbage.json");
    std::fs::write(&marker, "not a marker").expect("write");
    aws_cli(&[
        "s3api",
        "put-object",
        "--bucket",
        &p.name,
        "--key",
        &format!("{prefix}done/part-00005.json"),
        "--body",
        marker.to_str().expect("utf-8"),
    ]);
    let err = fails_of(p.cmd(), &["batch", "status", started["run"].as_str().expect("run"), "--wait"], 2);
    assert!(err.contains("slices were never scored (part-00005)"), "{err}");
    let summary = s3_json(&p.name, &format!("{prefix}summary.json"));
    assert_eq!(
        (&summary["failed_slices"], &summary["rows_out"], &summary["rows_failed"]),
        (&json!(["part-00005"]), &json!(5_000), &json!(1_000)),
        "{summary}"
    );
    // its rows are in the failures file by id; the definition retried it once (two attempts in the log)
    let failures = lines_under(&p.name, &format!("{prefix}failures.jsonl"));
    assert_eq!(failures.len(), 1_000);
    assert!(failures.iter().all(|f| f["error_type"] == "SliceFailed"), "{:?}", failures.first());
    let group = format!("/aws/lambda/{}", p.name);
    let events = aws_cli(&["logs", "filter-log-events", "--log-group-name", &group]);
    let attempts = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("slice part-00005") && m.contains("failed") && m.contains(&prefix))
        })
        .count();
    assert_eq!(attempts, 2, "one attempt and one retry");
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let p = deployed("batchin");
    write_csv(&p.path("customers.csv"), 100, |_| false);
    let out = format!("s3://{}/in/", p.name);
    let run = |extra: &[&str]| -> String {
        let args = [&["batch", "run"][..], extra].concat();
        fails_of(p.cmd(), &args, 1)
    };
    let missing = run(&[&format!("s3://{}/nope.csv", p.name), "--out", &out, "--version", "1", "--create-role"]);
    assert!(missing.contains(&format!("input s3://{}/nope.csv does not exist", p.name)), "{missing}");

    let text = std::fs::read_to_string(p.path("customers.csv")).expect("read");
    std::fs::write(p.path("narrow.csv"), text.replace("tenure_months", "tenure").replace(",num_products", ",products"))
        .expect("write");
    let header = run(&["narrow.csv", "--out", &out, "--version", "1", "--create-role"]);
    assert!(header.contains("lacks the model's fields tenure_months, num_products"), "{header}");

    let version = run(&["customers.csv", "--out", &out, "--version", "99", "--create-role"]);
    assert!(version.contains("version 99 of function") && version.contains("does not exist"), "{version}");

    // a prefix holding another dataset's run
    let first = p.json(&["batch", "run", "customers.csv", "--out", &out, "--version", "1", "--wait", "--create-role"]);
    assert_eq!(first["status"], "succeeded", "{first}");
    write_csv(&p.path("other.csv"), 50, |_| false);
    let other = run(&["other.csv", "--out", &out, "--version", "1", "--create-role"]);
    assert!(other.contains("already holds runs of another input") && other.contains("--overwrite"), "{other}");

    // an image function cannot run on the local stack
    let image = format!("{}-img", p.name);
    let role = aws_cli(&["lambda", "get-function-configuration", "--function-name", &p.name])["Role"]
        .as_str()
        .expect("role")
        .to_string();
    aws_cli(&[
        "lambda", "create-function", "--function-name", &image, "--package-type", "Image", "--code",
        "ImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "--role", &role,
    ]);
    aws_cli(&["lambda", "publish-version", "--function-name", &image]);
    let yaml = std::fs::read_to_string(p.path("mlambda.yaml")).expect("read config");
    std::fs::write(
        p.path("mlambda.yaml"),
        yaml.replacen(&format!("name: {}\n", p.name), &format!("name: {image}\n"), 1),
    )
    .expect("write");
    let img = run(&["customers.csv", "--out", &format!("s3://{}/img/", p.name), "--version", "1", "--create-role"]);
    assert!(img.contains("is an image package") && img.contains("function.package: zip"), "{img}");

    // nothing started for any refused run: one execution (the good run), nothing under the image run's prefix
    assert_eq!(executions(&p).len(), 1);
    let listed = aws_cli(&["s3api", "list-objects-v2", "--bucket", &p.name, "--prefix", "img/"]);
    assert!(listed.get("Contents").is_none(), "{listed}");
}

/// A copy of a run's output, as `backtest_expected.py` reads it.
fn download_run(bucket: &str, prefix: &str, to: &Path) {
    let out = std::process::Command::new("aws")
        .args([
            "s3",
            "cp",
            "--recursive",
            "--quiet",
            &format!("s3://{bucket}/{prefix}out/"),
            to.join("out").to_str().expect("utf-8"),
        ])
        .output()
        .expect("aws s3 cp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_backtest_on_real_runs_of_two_versions_matches_sklearn_and_stops_the_worse_rollout() {
    let p = deployed("batchbt");
    let made = std::process::Command::new(super::report::python())
        .arg(super::common::repo().join("tests/it/backtest_models.py"))
        .arg(p.path(""))
        .arg("20000")
        .output()
        .expect("run backtest_models.py");
    assert!(made.status.success(), "backtest_models.py: {}", String::from_utf8_lossy(&made.stderr));
    p.json(&["model", "push", "worse.onnx", "--version", "v2", "--reference", "worse_reference.json"]);
    let deployed = p.json(&["deploy", "--model-version", "v2"]);
    assert_eq!(deployed["version"], "2", "{deployed}");

    let out = format!("s3://{}/backtest/", p.name);
    let mut runs = Vec::new();
    for version in ["1", "2"] {
        let s = p.json(&[
            "batch",
            "run",
            "history.csv",
            "--out",
            &out,
            "--version",
            version,
            "--id-field",
            "customer_id",
            "--wait",
            "--create-role",
        ]);
        assert_eq!((&s["status"], &s["rows_out"]), (&json!("succeeded"), &json!(20_000)), "{s}");
        runs.push(s);
    }
    let local = p.path("runs");
    for (s, name) in runs.iter().zip(["base", "cand"]) {
        download_run(&p.name, &run_prefix(s, &p.name), &local.join(name));
    }
    let want = super::backtest::expected(&local.join("base"), &local.join("cand"), &p.path("outcomes.csv"));

    // the runs by id, as `batch run` printed them
    let (a, b) = (runs[0]["run"].as_str().expect("run"), runs[1]["run"].as_str().expect("run"));
    let r = p.json(&["report", "--batch", a, "--batch", b, "--outcomes", "outcomes.csv"]);
    assert_eq!((r["baseline"].as_str(), r["candidate"].as_str()), (Some("1"), Some("2")), "{r}");
    for (i, side) in ["baseline", "candidate"].iter().enumerate() {
        let (got, exp) = (r["versions"][i]["auc"].as_f64().expect("auc"), want[side]["auc"].as_f64().expect("auc"));
        assert!((got - exp).abs() <= 1e-9, "{side} AUC {got} vs scikit-learn {exp}");
    }
    let (z, z_numpy) = (r["paired"]["z"].as_f64().expect("z"), want["paired"]["z"].as_f64().expect("z"));
    assert!((z - z_numpy).abs() <= 1e-9, "paired z {z} vs numpy {z_numpy}");
    assert_eq!(r["paired"]["rows"], 20_000, "{}", r["paired"]);
    eprintln!(
        "backtest on real runs: AUC v1 {} v2 {} (scikit-learn {} {}), paired z {z} (numpy {z_numpy})",
        r["versions"][0]["auc"], r["versions"][1]["auc"], want["baseline"]["auc"], want["candidate"]["auc"]
    );
    assert_eq!(r["verdict"], "rollback", "{}", r["reasons"]);
    let refused = fails_of(p.cmd(), &["rollout", "--weight", "0.1", "--version", "2"], 1);
    assert!(refused.contains("backtest") && refused.contains("--force"), "{refused}");
}
