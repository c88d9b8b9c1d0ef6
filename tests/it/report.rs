//! `mlambda report` against moto: prediction log lines written the way the runtime writes them (through the AWS
//! CLI, not mlambda), Lambda's per-version metrics put beside them, and the figures checked against numpy and
//! scikit-learn (`report_expected.py`) on the same lines.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::{aws_cli, repo};
use crate::rollout::Fixture;

/// xorshift64*: the same lines on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn unif(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unif().max(1e-12), self.unif());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// How one version behaves: requests that logged predictions, failed requests, model quality and speed.
struct Traffic {
    version: &'static str,
    model: &'static str,
    requests: usize,
    errors: u64,
    /// Noise added to the customer's true risk before scoring: more noise, lower AUC.
    noise: f64,
    latency_ms: f64,
}

/// Log lines for `t` (batches of one or two rows, ids `C-<version>-<n>`) and the outcomes of 90% of those ids.
fn lines(t: &Traffic, rng: &mut Rng, outcomes: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    let mut n = 0;
    for r in 0..t.requests {
        let request_id = format!("{:08x}-{r:04}-4abc-8def-{:012x}", rng.next() as u32, rng.next() >> 16);
        out.push(format!("START RequestId: {request_id} Version: {}", t.version));
        let rows = if rng.unif() < 0.2 { 2 } else { 1 };
        let latency = (t.latency_ms * (0.3 * rng.normal()).exp() * 1000.0).round() / 1000.0;
        for row in 0..rows {
            n += 1;
            let id = format!("C-{}-{n}", t.version);
            let risk = 1.5 * rng.normal() - 1.0;
            let churned = rng.unif() < sigmoid(risk);
            let p = (sigmoid(risk + t.noise * rng.normal()) * 10_000.0).round() / 10_000.0;
            let q = ((1.0 - p) * 10_000.0).round() / 10_000.0;
            let pred = u8::from(p >= 0.5);
            out.push(format!(
                r#"{{"mlambda":"prediction","request_id":"{request_id}","function_version":"{}","model_version":"{}","id":"{id}","row":{row},"rows":{rows},"prediction":{pred},"probability":{p},"probabilities":{{"0":{q},"1":{p}}},"latency_ms":{latency}}}"#,
                t.version, t.model
            ));
            if rng.unif() < 0.9 {
                let _ = writeln!(outcomes, "{id},{}", u8::from(churned));
            }
        }
        out.push(format!(
            r#"{{"_aws":{{"Timestamp":0,"CloudWatchMetrics":[{{"Namespace":"ChurnModel","Dimensions":[["ModelVersion"]],"Metrics":[{{"Name":"InferenceLatencyMs","Unit":"Milliseconds"}}]}}]}},"ModelVersion":"{}","InferenceLatencyMs":{latency}}}"#,
            t.model
        ));
        out.push(format!("END RequestId: {request_id}"));
    }
    out
}

/// Writes `messages` to a new stream of the function's log group, in chunks as PutLogEvents allows.
pub fn put_log_events(group: &str, stream: &str, messages: &[String], dir: &Path, start: i64) {
    aws_cli(&["logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", stream]);
    for (k, chunk) in messages.chunks(5000).enumerate() {
        let events: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"timestamp": start + (k * 5000 + i) as i64 / 10, "message": m}))
            .collect();
        let file = dir.join(format!("events-{}-{k}.json", stream.replace(['/', '[', ']'], "_")));
        std::fs::write(&file, serde_json::to_vec(&events).expect("json")).expect("write events");
        let arg = format!("file://{}", file.display());
        aws_cli(&[
            "logs",
            "put-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            stream,
            "--log-events",
            &arg,
        ]);
    }
}

/// Lambda's Invocations and Errors for one version through the alias, as Lambda publishes them.
fn put_metrics(function: &str, version: &str, invocations: u64, errors: u64, dir: &Path, at_ms: i64) {
    let dims = json!([
        {"Name": "FunctionName", "Value": function},
        {"Name": "Resource", "Value": format!("{function}:production")},
        {"Name": "ExecutedVersion", "Value": version},
    ]);
    let data = json!([
        {"MetricName": "Invocations", "Dimensions": dims, "Value": invocations, "Unit": "Count", "Timestamp": at_ms / 1000},
        {"MetricName": "Errors", "Dimensions": dims, "Value": errors, "Unit": "Count", "Timestamp": at_ms / 1000},
    ]);
    let file = dir.join(format!("metrics-{version}.json"));
    std::fs::write(&file, serde_json::to_vec(&data).expect("json")).expect("write metrics");
    let arg = format!("file://{}", file.display());
    aws_cli(&["cloudwatch", "put-metric-data", "--namespace", "AWS/Lambda", "--metric-data", &arg]);
}

/// The venv's python, which has numpy, scipy and scikit-learn.
pub fn python() -> PathBuf {
    match std::env::var_os("MLAMBDA_VENV") {
        Some(v) => PathBuf::from(v).join("bin/python"),
        None => PathBuf::from("python3"),
    }
}

/// A function with version 1 (baseline) and 2 (candidate at 10%), their log lines and metrics, and the outcomes
/// CSV; returns the fixture and numpy/scikit-learn's figures per version.
fn seeded(prefix: &str, baseline: &Traffic, candidate: &Traffic, seed: u64) -> (Fixture, Value) {
    seeded_at(prefix, baseline, candidate, seed, -600_000)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// A function whose alias routes 10% to version 2, which serves `model`.
fn canary(prefix: &str, model: &str) -> Fixture {
    let f = Fixture::new(prefix);
    assert_eq!(f.publish(model, None), "2");
    let routing = r#"{"AdditionalVersionWeights":{"2":0.1}}"#;
    aws_cli(&[
        "lambda",
        "update-alias",
        "--function-name",
        f.name(),
        "--name",
        "production",
        "--routing-config",
        routing,
    ]);
    f
}

/// numpy's and scikit-learn's figures per version (`report_expected.py`) for `lines.txt` and `outcomes.csv` in `f`.
fn expected_figures(f: &Fixture) -> Value {
    expected_with(f, None)
}

/// `expected_figures`, plus with `compare` (see `report_expected.py`) the verdict's bounds and the look's α as
/// numpy and scipy compute them.
fn expected_with(f: &Fixture, compare: Option<&Value>) -> Value {
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/it/report_expected.py"))
        .arg(f.p.path("lines.txt"))
        .arg(f.p.path("outcomes.csv"))
        .args(compare.map(Value::to_string))
        .output()
        .expect("run report_expected.py with the venv's python");
    assert!(out.status.success(), "report_expected.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("expected values are json")
}

/// `seeded`, with the log lines and metrics from `offset_ms` after the function is set up on.
fn seeded_at(prefix: &str, baseline: &Traffic, candidate: &Traffic, seed: u64, offset_ms: i64) -> (Fixture, Value) {
    let f = canary(prefix, candidate.model);
    let start = now_ms() + offset_ms;
    let group = format!("/aws/lambda/{}", f.name());
    aws_cli(&["logs", "create-log-group", "--log-group-name", &group]);
    let mut rng = Rng(seed);
    let mut outcomes = String::from("id,label\n");
    let dir = f.p.root().to_path_buf();
    let mut all = Vec::new();
    for t in [baseline, candidate] {
        let messages = lines(t, &mut rng, &mut outcomes);
        put_log_events(&group, &format!("2026/12/01/[{}]{:016x}", t.version, rng.next()), &messages, &dir, start);
        put_metrics(f.name(), t.version, t.requests as u64 + t.errors, t.errors, &dir, start);
        all.extend(messages);
    }
    // an id nobody predicted for, which the join must ignore
    outcomes.push_str("C-nobody,1\n");
    std::fs::write(f.p.path("outcomes.csv"), outcomes).expect("write outcomes");
    std::fs::write(f.p.path("lines.txt"), all.join("\n") + "\n").expect("write lines");
    let expected = expected_figures(&f);
    (f, expected)
}

/// The comparison `report_expected.py` needs for two seeded versions: their request and error counts.
fn compare_of(traffic: [&Traffic; 2], look: [u32; 2]) -> Value {
    let counts: serde_json::Map<String, Value> = traffic
        .iter()
        .map(|t| {
            let n = t.requests as u64 + t.errors;
            (t.version.to_string(), json!({"requests": n, "errors": t.errors, "client_errors": 0}))
        })
        .collect();
    json!({"baseline": traffic[0].version, "candidate": traffic[1].version, "alpha": 0.05, "look": look, "counts": counts})
}

/// Every bound the verdict used, and the look's α, equal numpy's and scipy's within 1e-9.
fn check_bounds(r: &Value, expected: &Value) {
    close(&r["look"]["alpha"], &expected["look_alpha"], "the look's alpha");
    let mut seen = Vec::new();
    for c in r["checks"].as_array().expect("checks") {
        let Some(b) = c.get("bounds") else { continue };
        let name = c["name"].as_str().expect("name");
        let want = &expected["bounds"][name];
        for k in ["worse_by", "lower", "upper"] {
            close(&b[k], &want[k], &format!("{name} {k}"));
        }
        seen.push(name.to_string());
    }
    let mut want: Vec<String> = expected["bounds"].as_object().expect("bounds").keys().cloned().collect();
    want.sort();
    seen.sort();
    assert_eq!(seen, want, "every bound numpy computed was used by the verdict");
}

fn close(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap_or(f64::NAN));
    assert!((g - w).abs() <= 1e-9, "{what}: mlambda says {g}, numpy/scikit-learn say {w}");
}

/// Every figure of both versions equals what numpy and scikit-learn compute from the same lines.
fn check_figures(r: &Value, expected: &Value, traffic: [&Traffic; 2]) {
    for (i, t) in traffic.iter().enumerate() {
        let v = &r["versions"][i];
        let e = &expected[t.version];
        assert_eq!(v["version"], t.version);
        assert_eq!(v["model_version"], t.model);
        assert_eq!(v["requests"], json!(t.requests as u64 + t.errors), "version {}", t.version);
        assert_eq!(v["invocations"], json!(t.requests as u64 + t.errors));
        assert_eq!(v["errors"], json!(t.errors));
        assert_eq!(v["logged_requests"], json!(t.requests));
        assert_eq!(v["logged_requests"], e["logged_requests"]);
        assert_eq!(v["rows"], e["rows"]);
        assert_eq!(v["labeled"], e["labeled"]);
        for q in ["p50", "p90", "p99"] {
            close(&v["latency_ms"][q], &e[q], &format!("version {} latency {q}", t.version));
        }
        for k in ["positive_rate", "mean_probability", "auc", "log_loss", "brier", "accuracy"] {
            close(&v[k], &e[k], &format!("version {} {k}", t.version));
        }
        let ci = v["auc_ci"].as_array().expect("auc_ci");
        let auc = v["auc"].as_f64().expect("auc");
        assert!(ci[0].as_f64().expect("lo") < auc && auc < ci[1].as_f64().expect("hi"), "{ci:?} around {auc}");
        let hist: u64 = v["histogram"].as_array().expect("histogram").iter().map(|n| n.as_u64().expect("count")).sum();
        assert_eq!(json!(hist), e["rows"]);
    }
}

#[test]
fn a_clearly_better_candidate_is_promoted_with_figures_equal_to_numpy_and_sklearn() {
    let b = Traffic { version: "1", model: "v1", requests: 1500, errors: 8, noise: 1.5, latency_ms: 2.0 };
    let c = Traffic { version: "2", model: "v2", requests: 600, errors: 2, noise: 0.3, latency_ms: 1.8 };
    let (f, expected) = seeded("rep-better", &b, &c, 0x5eed_0001);
    let numpy = expected_with(&f, Some(&compare_of([&b, &c], [1, 1])));
    let html = f.p.path("report.html");
    let r =
        f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv", "--html", html.to_str().expect("utf-8")]);
    assert_eq!((r["baseline"].as_str(), r["candidate"].as_str()), (Some("1"), Some("2")));
    assert_eq!(r["traffic_share"], 0.1);
    check_figures(&r, &expected, [&b, &c]);
    assert!(r["psi"].as_f64().is_some_and(|p| p > 0.0), "{}", r["psi"]);
    let diff = &r["auc_difference"];
    assert!(diff["difference"].as_f64().is_some_and(|d| d > 0.05), "{diff}");
    assert!(diff["p_value"].as_f64().is_some_and(|p| p < 0.05), "{diff}");
    assert_eq!(r["verdict"], "promote", "{:#}", r["reasons"]);
    check_bounds(&r, &numpy);
    assert_eq!(r["unreadable_lines"], 0);

    let page = std::fs::read_to_string(&html).expect("html written");
    for id in [r#"<svg id="histogram""#, r#"<svg id="latency""#, r#"<svg id="roc""#] {
        assert!(page.contains(id), "{id} missing");
    }
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"), "self-contained");

    let text = f.p.cmd().args(["report", "--since", "1h", "--outcomes", "outcomes.csv"]).output().expect("run");
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("baseline 1") && text.contains("candidate 2"), "{text}");
    assert!(text.contains("verdict: PROMOTE"), "{text}");
    assert!(text.contains('█'), "bar histograms:\n{text}");
}

#[test]
fn a_clearly_worse_candidate_is_rolled_back_for_errors_latency_and_auc() {
    let b = Traffic { version: "1", model: "v1", requests: 900, errors: 4, noise: 0.3, latency_ms: 2.0 };
    let c = Traffic { version: "2", model: "v2", requests: 600, errors: 40, noise: 2.5, latency_ms: 4.0 };
    let (f, expected) = seeded("rep-worse", &b, &c, 0x5eed_0002);
    let r = f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv"]);
    check_figures(&r, &expected, [&b, &c]);
    assert_eq!(r["verdict"], "rollback");
    check_bounds(&r, &expected_with(&f, Some(&compare_of([&b, &c], [1, 1]))));
    let checks: Vec<(String, String)> = r["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or("").into(), c["status"].as_str().unwrap_or("").into()))
        .collect();
    let check = |n: &str, s: &str| (n.to_string(), s.to_string());
    assert_eq!(
        checks,
        [
            check("error_rate", "worse"),
            check("client_error_rate", "not_worse"),
            check("latency_p99", "worse"),
            check("auc", "worse"),
            check("brier", "worse")
        ]
    );
    assert_eq!(r["reasons"].as_array().map(Vec::len), Some(4));
}

const WORSE: [Traffic; 2] = [
    Traffic { version: "1", model: "v1", requests: 900, errors: 4, noise: 0.3, latency_ms: 2.0 },
    Traffic { version: "2", model: "v2", requests: 600, errors: 40, noise: 2.5, latency_ms: 4.0 },
];

#[test]
fn promote_is_refused_on_a_rollback_verdict_unless_forced() {
    let (f, _) = seeded("rep-promote", &WORSE[0], &WORSE[1], 0x5eed_0005);
    let stderr = crate::common::unwrap_lines(&f.p.fails(&["rollout", "--promote"], 1));
    assert!(stderr.contains("refusing to promote version 2"), "{stderr}");
    assert!(stderr.contains("verdict over the last 24 hours is rollback"), "{stderr}");
    assert!(stderr.contains("error rate"), "the reasons are named: {stderr}");
    assert!(stderr.contains("`--promote --force`"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})), "a refused promote changes nothing");
    assert_eq!(f.p.state()["verdict"]["verdict"], "rollback");
    let status = f.p.json(&["status"]);
    assert_eq!(status["last_verdict"]["verdict"], "rollback");
    assert_eq!((&status["last_verdict"]["baseline"], &status["last_verdict"]["candidate"]), (&json!("1"), &json!("2")));
    assert!(status["last_verdict"]["reasons"].as_array().is_some_and(|r| !r.is_empty()));
    let text = f.p.cmd().arg("status").output().expect("run mlambda status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("last verdict: rollback for version 2 against 1"), "{text}");

    let out = f.p.cmd().args(["rollout", "--promote", "--force"]).output().expect("run mlambda");
    let stderr = crate::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("promoting version 2 over a rollback verdict (--force)"), "{stderr}");
    assert_eq!(f.routing(), ("2".to_string(), json!({})));
}

/// `mlambda rollout --steps STEPS --interval 25s`, which must roll back at a check and exit 2; its stderr.
fn rollout_rolled_back(f: &Fixture, steps: &str) -> String {
    let out =
        f.p.cmd()
            .args(["rollout", "--steps", steps, "--interval", "25s"])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .expect("run mlambda");
    let stderr = crate::common::unwrap_lines(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("the report's verdict on version 2 is rollback"), "{stderr}");
    stderr
}

#[test]
fn a_step_with_a_rollback_verdict_rolls_back_and_exits_2() {
    // The lines land 15 s ahead, after seeding ends and inside the window of the step the rollout begins.
    let (f, _) = seeded_at("rep-step", &WORSE[0], &WORSE[1], 0x5eed_0006, 15_000);
    let stderr = rollout_rolled_back(&f, "0.2,1");
    assert!(stderr.contains("rolled back: production: 1 100%"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));
}

#[test]
fn too_little_data_continues_and_says_how_many_more_requests() {
    let b = Traffic { version: "1", model: "v1", requests: 700, errors: 1, noise: 1.0, latency_ms: 2.0 };
    let c = Traffic { version: "2", model: "v2", requests: 60, errors: 0, noise: 1.0, latency_ms: 2.0 };
    let (f, expected) = seeded("rep-little", &b, &c, 0x5eed_0003);
    let r = f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv"]);
    check_figures(&r, &expected, [&b, &c]);
    assert_eq!(r["verdict"], "continue");
    let reasons = r["reasons"].to_string();
    // 500 − 60 invocations short; at 10% of the alias's traffic that is 4,400 more alias requests
    assert!(reasons.contains("candidate 2 needs 440 more requests"), "{reasons}");
    assert!(reasons.contains("about 4,400 more requests through the alias at 10% candidate traffic"), "{reasons}");
    assert!(reasons.contains("labeled rows"), "{reasons}");
}

#[test]
fn without_a_candidate_or_with_a_bad_outcomes_file_report_says_what_to_do() {
    let f = Fixture::new("rep-errors");
    let help = f.p.cmd().args(["report", "--help"]).output().expect("run mlambda");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Examples:") && help.contains("--outcomes <OUTCOMES>"), "{help}");
    let e = f.p.fails(&["report"], 1);
    assert!(e.contains("alias `production` sends all traffic to version 1") && e.contains("--candidate"), "{e}");
    std::fs::write(f.p.path("bad.csv"), "customer,churned\nC-1,1\n").expect("write");
    let e = f.p.fails(&["report", "--candidate", "1", "--baseline", "1"], 1);
    assert!(e.contains("baseline and candidate are both version 1"), "{e}");
    let e = f.p.fails(&["report", "--candidate", "2", "--outcomes", "bad.csv"], 1);
    assert!(e.contains("outcomes file `bad.csv` line 1") && e.contains("`id` and `label`"), "{e}");
    let e = f.p.fails(&["report", "--since", "yesterday"], 1);
    assert!(e.contains("--since `yesterday` is neither a duration"), "{e}");

    // No log group and no metrics yet: a report of nulls that says to keep collecting.
    let r = f.p.json(&["report", "--candidate", "2"]);
    assert_eq!(r["verdict"], "continue");
    assert_eq!(r["versions"][1]["requests"], 0);
    assert_eq!(r["versions"][1]["latency_ms"]["p99"], Value::Null);
    assert_eq!(r["versions"][1]["labeled"], Value::Null);
}

/// Headless Chromium (Debian `chromium`) on a flag-free profile: the page's DOM after rendering, its console
/// messages on stderr, and a screenshot.
pub fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let profile = format!("--user-data-dir={}", profile.path().display());
    std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr"])
        .arg(profile)
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium: apt-get install -y chromium")
}

#[test]
fn the_html_page_renders_its_three_charts_in_headless_chromium_without_console_errors() {
    let b = Traffic { version: "1", model: "v1", requests: 400, errors: 2, noise: 1.0, latency_ms: 2.0 };
    let c = Traffic { version: "2", model: "v2", requests: 150, errors: 1, noise: 0.5, latency_ms: 2.4 };
    let (f, _) = seeded("rep-html", &b, &c, 0x5eed_0004);
    let html = f.p.path("report.html");
    f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv", "--html", html.to_str().expect("utf-8")]);

    let out = chromium(&["--dump-dom"], &html);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    for id in ["histogram", "latency", "roc"] {
        assert!(dom.contains(&format!(r#"<svg id="{id}""#)), "svg#{id} missing from the rendered DOM");
    }
    // two overlaid histograms of ten bars, two latency curves, two ROC curves
    assert_eq!(dom.matches("<rect x=").count(), 20 + 3 * 2, "ten bars per version and two legend swatches per chart");
    assert_eq!(dom.matches(r#"class="ecdf "#).count(), 2);
    assert_eq!(dom.matches(r#"class="roc "#).count(), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("CONSOLE"), "console messages:\n{stderr}");

    let shot = f.p.path("report.png");
    let out = chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1280,1500"], &html);
    assert!(out.status.success(), "chromium screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot");
    if let Some(keep) = std::env::var_os("MLAMBDA_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("keep the screenshot");
    }
}

/// Row `i` of the churn example's reference rows as a request, with the customer id `C-<version>-<i>`.
fn churn_request(rows: &[Value], version: &str, i: usize) -> Value {
    let mut row: serde_json::Map<String, Value> = crate::common::CHURN_FEATURES
        .iter()
        .zip(rows[i % rows.len()].as_array().expect("row"))
        .map(|(f, v)| (f.to_string(), v.clone()))
        .collect();
    row.insert("customer_id".into(), json!(format!("C-{version}-{i}")));
    Value::Object(row)
}

/// The real `bootstrap` in local mode, as version `version` of `function` serving `model`: answers every
/// reference row of the churn example as a single request and once as a batch of ten, then returns everything it
/// printed on stdout (prediction lines and EMF lines).
fn bootstrap_lines(function: &str, version: &str, model_version: &str, model: &Path, rows: &[Value]) -> Vec<String> {
    let mut requests: Vec<Value> = (0..rows.len()).map(|i| churn_request(rows, version, i)).collect();
    requests.push(json!({ "instances": (0..10).map(|i| churn_request(rows, version, i)).collect::<Vec<_>>() }));
    let served = Served { function, version, model_version, model };
    let (statuses, lines) = served.answer(&crate::common::CHURN_FEATURES, &requests);
    assert!(statuses.iter().all(|s| *s == 200), "every request is answered: {statuses:?}");
    lines
}

#[test]
fn the_real_runtimes_prediction_lines_give_the_figures_numpy_and_sklearn_give() {
    let f = canary("rep-real", "v2");
    let reference: Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/churn/reference.json")).expect("reference"))
            .expect("json");
    let rows = reference["rows"].as_array().expect("rows");
    let dir = f.p.root().to_path_buf();
    let models = [
        ("1", "v1", repo().join("examples/churn/model.onnx")),
        ("2", "v2", repo().join("runtime/tests/fixtures/gbc_recommended.onnx")),
    ];
    let group = format!("/aws/lambda/{}", f.name());
    aws_cli(&["logs", "create-log-group", "--log-group-name", &group]);
    let start = now_ms() - 60_000;
    let mut all = Vec::new();
    for (version, model_version, model) in &models {
        let lines = bootstrap_lines(f.name(), version, model_version, model, rows);
        let predictions = lines.iter().filter(|l| l.contains(r#""mlambda":"prediction""#)).count();
        assert_eq!(predictions, rows.len() + 10, "one prediction line per row answered");
        assert!(lines.iter().any(|l| l.contains(r#""FunctionVersion""#)), "the EMF lines carry the function version");
        put_log_events(&group, &format!("2026/12/01/[{version}]real"), &lines, &dir, start);
        put_metrics(f.name(), version, rows.len() as u64 + 1, 0, &dir, start);
        all.extend(lines);
    }
    // outcomes for both versions' ids: not the models' own predictions, so the AUCs are not trivial
    let mut outcomes = String::from("id,label\n");
    for (version, _, _) in &models {
        for (i, e) in reference["expected"].as_array().expect("expected").iter().enumerate() {
            let churned = (e["probability"].as_f64().expect("p") > 0.5) != (i % 4 == 0);
            let _ = writeln!(outcomes, "C-{version}-{i},{}", u8::from(churned));
        }
    }
    std::fs::write(f.p.path("outcomes.csv"), outcomes).expect("write outcomes");
    std::fs::write(f.p.path("lines.txt"), all.join("\n") + "\n").expect("write lines");
    let expected = expected_figures(&f);

    let r = f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv"]);
    assert_eq!((r["baseline"].as_str(), r["candidate"].as_str()), (Some("1"), Some("2")), "{r}");
    for (i, (version, model_version, _)) in models.iter().enumerate() {
        let v = &r["versions"][i];
        let e = &expected[*version];
        assert_eq!(v["model_version"], *model_version, "{v}");
        assert_eq!(v["rows"], json!(rows.len() + 10), "{v}");
        assert_eq!(v["logged_requests"], json!(rows.len() + 1), "{v}");
        // the batch re-sends rows 0..10 under the same ids, so they join an outcome too
        assert_eq!(v["labeled"], json!(rows.len() + 10), "{v}");
        assert_eq!(v["labeled"], e["labeled"], "{v}");
        for q in ["p50", "p90", "p99"] {
            close(&v["latency_ms"][q], &e[q], &format!("version {version} latency {q}"));
        }
        for k in ["positive_rate", "mean_probability", "auc", "log_loss", "brier", "accuracy"] {
            close(&v[k], &e[k], &format!("version {version} {k}"));
        }
    }
}

#[test]
fn a_candidate_identical_to_the_baseline_on_300_labeled_rows_each_is_not_promoted() {
    let b = Traffic { version: "1", model: "v1", requests: 600, errors: 0, noise: 1.0, latency_ms: 2.0 };
    let c = Traffic { version: "2", model: "v1", requests: 600, errors: 0, noise: 1.0, latency_ms: 2.0 };
    let (f, _) = seeded("rep-same", &b, &c, 0x5eed_0007);
    // exactly 300 labeled rows per version: the first 300 outcomes of each
    let text = std::fs::read_to_string(f.p.path("outcomes.csv")).expect("outcomes");
    let mut kept = String::from("id,label\n");
    for version in ["1", "2"] {
        let prefix = format!("C-{version}-");
        for line in text.lines().filter(|l| l.starts_with(&prefix)).take(300) {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(f.p.path("outcomes.csv"), kept).expect("write outcomes");
    let numpy = expected_with(&f, Some(&compare_of([&b, &c], [1, 1])));
    let r = f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv"]);
    assert_eq!((r["versions"][0]["labeled"].as_u64(), r["versions"][1]["labeled"].as_u64()), (Some(300), Some(300)));
    check_bounds(&r, &numpy);
    assert_eq!(r["verdict"], "continue", "{:#}", r["reasons"]);
    let auc = r["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "auc")).expect("auc check");
    assert_eq!(auc["status"], "insufficient", "{auc}");
    assert!(auc["bounds"]["upper"].as_f64().expect("upper") > auc["margin"].as_f64().expect("margin"), "{auc}");
    assert!(auc["detail"].as_str().expect("detail").contains("more labeled rows"), "{auc}");

    // a stepped rollout that stops short of 1 plans two looks (its step's check and the promote) and takes one
    f.p.json(&["rollout", "--steps", "0.2", "--interval", "1s"]);
    assert_eq!(f.p.state()["rollout"]["looks"], json!({"candidate": "2", "planned": 2, "taken": 1}));
    let text = f.p.cmd().arg("status").output().expect("run mlambda status");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("looks at version 2's evidence: 1 of 2 planned taken"), "{text}");
    let r = f.p.json(&["report", "--since", "1h", "--outcomes", "outcomes.csv"]);
    assert_eq!((r["look"]["index"].as_u64(), r["look"]["planned"].as_u64()), (Some(2), Some(2)), "{}", r["look"]);
    check_bounds(&r, &expected_with(&f, Some(&compare_of([&b, &c], [2, 2]))));
}

/// POSTs `body` to a local-mode bootstrap on `port` and returns the proxy envelope's `statusCode`.
fn post_status(port: u16, body: &str) -> u64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to bootstrap");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let request = format!(
        "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let json = &response[response.find("\r\n\r\n").expect("http body") + 4..];
    let envelope: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {response}"));
    envelope["statusCode"].as_u64().expect("statusCode")
}

/// The real `bootstrap` in local mode as version `version` of `function`, serving `model`.
struct Served<'a> {
    function: &'a str,
    version: &'a str,
    model_version: &'a str,
    model: &'a Path,
}

impl Served<'_> {
    /// Starts it expecting `features`, answers each of `requests`, stops it; the answers' status codes and
    /// everything it printed on stdout.
    fn answer(&self, features: &[&str], requests: &[Value]) -> (Vec<u64>, Vec<String>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let mut child = std::process::Command::new(crate::common::runtime_binary())
            .env("MODEL_PATH", self.model)
            .env("MODEL_FEATURES", features.join(","))
            .env("MODEL_VERSION", self.model_version)
            .env("MODEL_ID_FIELD", "customer_id")
            .env("METRICS_NAMESPACE", "ChurnModel")
            .env("AWS_LAMBDA_FUNCTION_NAME", self.function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", self.version)
            .env("MLAMBDA_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start bootstrap");
        // drained as it comes: a full pipe would block the bootstrap's next write, and with it its next answer
        let stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<String>>()
        });
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "bootstrap did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let statuses = requests.iter().map(|r| post_status(port, &r.to_string())).collect();
        child.kill().expect("stop bootstrap");
        child.wait().expect("bootstrap exits");
        (statuses, reader.join().expect("stdout reader"))
    }
}

/// The EMF lines' Count metrics summed per namespace, metric and dimension set, put into moto's CloudWatch as
/// CloudWatch would extract them from the log (the Sum statistic of one datapoint per line equals that of the sum).
fn put_emf_metrics(lines: &[String], dir: &Path, at_ms: i64) -> usize {
    // (namespace, metric, dimensions) -> sum
    type Key = (String, String, Vec<(String, String)>);
    let mut sums: std::collections::BTreeMap<Key, f64> = Default::default();
    for line in lines.iter().filter(|l| l.contains("\"_aws\"")) {
        let doc: Value = serde_json::from_str(line).expect("an EMF line is json");
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().expect("directives") {
            let ns = directive["Namespace"].as_str().expect("namespace").to_string();
            for metric in directive["Metrics"].as_array().expect("metrics") {
                if metric["Unit"] != "Count" {
                    continue;
                }
                let name = metric["Name"].as_str().expect("name").to_string();
                for set in directive["Dimensions"].as_array().expect("dimension sets") {
                    let dims = set
                        .as_array()
                        .expect("dimension set")
                        .iter()
                        .map(|d| {
                            let d = d.as_str().expect("dimension");
                            (d.to_string(), doc[d].as_str().expect("dimension value").to_string())
                        })
                        .collect();
                    *sums.entry((ns.clone(), name.clone(), dims)).or_default() += doc[&name].as_f64().expect("value");
                }
            }
        }
    }
    let namespaces: std::collections::BTreeSet<String> = sums.keys().map(|k| k.0.clone()).collect();
    for ns in &namespaces {
        let data: Vec<Value> = sums
            .iter()
            .filter(|((n, _, _), _)| n == ns)
            .map(|((_, metric, dims), value)| {
                let dims: Vec<Value> = dims.iter().map(|(k, v)| json!({"Name": k, "Value": v})).collect();
                json!({"MetricName": metric, "Dimensions": dims, "Value": value, "Unit": "Count", "Timestamp": at_ms / 1000})
            })
            .collect();
        let file = dir.join("emf-metrics.json");
        std::fs::write(&file, serde_json::to_vec(&data).expect("json")).expect("write metrics");
        let arg = format!("file://{}", file.display());
        aws_cli(&["cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data", &arg]);
    }
    sums.len()
}

#[test]
fn a_candidate_that_answers_400_to_everyone_is_alarmed_judged_and_rolled_back() {
    let f = canary("rep-400", "v2");
    // the alarms the recipe asks for, and the error-rate alarms of the routed candidate
    f.p.json(&["alarms"]);
    let alarms =
        aws_cli(&["cloudwatch", "describe-alarms", "--alarm-name-prefix", &format!("mlambda-{}-v2-", f.name())]);
    let names: Vec<&str> =
        alarms["MetricAlarms"].as_array().expect("alarms").iter().filter_map(|a| a["AlarmName"].as_str()).collect();
    assert!(names.contains(&format!("mlambda-{}-v2-client-errors", f.name()).as_str()), "{names:?}");
    assert!(names.contains(&format!("mlambda-{}-v2-model-errors", f.name()).as_str()), "{names:?}");

    let reference: Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/churn/reference.json")).expect("reference"))
            .expect("json");
    let rows = reference["rows"].as_array().expect("rows");
    let request = |version: &str, i: usize| churn_request(rows, version, i);
    // the candidate's model.features renamed `tenure_months` to `tenure`; callers still send `tenure_months`
    let renamed: Vec<&str> =
        crate::common::CHURN_FEATURES.iter().map(|f| if *f == "tenure_months" { "tenure" } else { f }).collect();
    let model = repo().join("examples/churn/model.onnx");
    let base = Served { function: f.name(), version: "1", model_version: "v1", model: &model };
    let cand = Served { function: f.name(), version: "2", model_version: "v2", model: &model };
    let (base_status, base_lines) =
        base.answer(&crate::common::CHURN_FEATURES, &(0..600).map(|i| request("1", i)).collect::<Vec<_>>());
    let (cand_status, cand_lines) = cand.answer(&renamed, &(0..200).map(|i| request("2", i)).collect::<Vec<_>>());
    assert!(base_status.iter().all(|s| *s == 200), "the baseline answers");
    assert!(cand_status.iter().all(|s| *s == 400), "the candidate refuses every request");
    let errors: Vec<&String> = cand_lines.iter().filter(|l| l.contains(r#""mlambda":"error""#)).collect();
    assert_eq!(errors.len(), 200, "one error line per refused request");
    assert!(errors[0].contains("missing required features: tenure"), "{}", errors[0]);

    // Lambda's logs and metrics as CloudWatch would hold them, 15 s ahead: inside the first step's window
    let dir = f.p.root().to_path_buf();
    let group = format!("/aws/lambda/{}", f.name());
    aws_cli(&["logs", "create-log-group", "--log-group-name", &group]);
    let at = now_ms() + 15_000;
    put_log_events(&group, "2026/12/07/[1]base", &base_lines, &dir, at);
    put_log_events(&group, "2026/12/07/[2]cand", &cand_lines, &dir, at);
    put_metrics(f.name(), "1", 600, 0, &dir, at);
    put_metrics(f.name(), "2", 200, 0, &dir, at);
    let all: Vec<String> = base_lines.iter().chain(&cand_lines).cloned().collect();
    assert!(put_emf_metrics(&all, &dir, at) >= 6, "Rows, ClientErrors and ModelErrors per version");

    let stderr = rollout_rolled_back(&f, "0.2,0.5,1");
    assert!(stderr.contains("step 1/3"), "{stderr}");
    assert!(!stderr.contains("step 2/3"), "the first check stops the rollout: {stderr}");
    assert!(stderr.contains("400 rate 100.00% (200/200)"), "{stderr}");
    assert!(stderr.contains("rolled back: production: 1 100%"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})));

    let r = f.p.json(&["report", "--since", "1h", "--candidate", "2"]);
    assert_eq!(r["verdict"], "rollback", "{:#}", r["reasons"]);
    let cand = &r["versions"][1];
    assert_eq!((cand["client_errors"].as_u64(), cand["model_errors"].as_u64()), (Some(200), Some(0)), "{cand}");
    assert_eq!(cand["error_counts_from"], "emf");
    assert_eq!(cand["client_error_rate"], 1.0);
    assert_eq!(cand["top_errors"][0]["count"], 200);
    assert_eq!(cand["top_errors"][0]["status"], 400);
    assert_eq!(r["versions"][0]["client_errors"], 0);
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("400 rate 100.00% (200/200) vs 0.000% (0/600)"), "{reasons}");
    assert!(reasons.contains("top reason: 400 InvalidInput: missing required features: tenure (200)"), "{reasons}");
    let text = f.p.cmd().args(["report", "--since", "1h", "--candidate", "2"]).output().expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("400 answers") && text.contains("verdict: ROLLBACK"), "{text}");
}

#[test]
fn a_margin_outside_its_range_is_refused_at_config_load_naming_the_key() {
    let f = Fixture::new("rep-margin");
    let base = f.p.default_config();
    for (key, value) in [("auc_margin", "1"), ("error_rate_margin", "-0.01"), ("brier_margin", "0")] {
        f.p.write_config(&format!("{base}  evidence:\n    {key}: {value}\n"));
        let e = f.p.fails(&["report", "--candidate", "1"], 1);
        assert!(e.contains(&format!("`rollout.evidence.{key}` is {value}")), "{key}: {e}");
        assert!(e.contains("greater than 0 and less than"), "{e}");
        let e = f.p.fails(&["rollout", "--promote", "--dry-run"], 1);
        assert!(e.contains(&format!("rollout.evidence.{key}")), "{key}: {e}");
    }
}
