//! `mlambda report --batch` against moto: two batch runs over the same 20,000 labeled rows, written in the real
//! layout (`run.json`, `out/part-NNNNN.jsonl` of the runtime's prediction lines, `failures/part-NNNNN.jsonl` of
//! its failed rows) through the AWS CLI, not mlambda. Each AUC is checked against scikit-learn and the paired
//! DeLong test against an independent numpy implementation (`backtest_expected.py`); the worse candidate's
//! `rollback` verdict then stops `mlambda rollout --weight` from sending it traffic.
use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

use mlambda_runtime::batch::{slice_name, FailedRow};
use mlambda_runtime::logline::{LabelKeys, Line, Prediction, PredictionLine, Probabilities};
use serde_json::{json, Value};

use crate::common::{aws_cli, repo, unwrap_lines};
use crate::report::{python, sigmoid, Rng};
use crate::rollout::Fixture;

const ROWS: usize = 20_000;
const SLICE_ROWS: usize = 5_000;
const LABELS: [i64; 2] = [0, 1];

/// One row of the labeled history: the customer's id, whether they churned, and the two versions' scores.
struct Row {
    id: String,
    churned: bool,
    /// Version 1 sees the customer's risk through a little noise, version 2 through a lot.
    scores: [f64; 2],
}

/// 20,000 customers, the same on every run; scores rounded to 4 decimals, so both versions have many ties.
fn history() -> Vec<Row> {
    let mut rng = Rng(0x0bac_7e57);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    (0..ROWS)
        .map(|i| {
            let risk = 1.5 * rng.normal() - 1.0;
            let churned = rng.unif() < sigmoid(risk);
            let good = round(sigmoid(risk + 0.5 * rng.normal()));
            let bad = round(sigmoid(risk + 2.5 * rng.normal()));
            Row { id: format!("C-{i:05}"), churned, scores: [good, bad] }
        })
        .collect()
}

/// Whether version 2 refused the row (1 in 1,000): it goes to `failures/`, not `out/`, and has no partner.
fn refused(i: usize, version: usize) -> bool {
    version == 1 && i % 1000 == 7
}

/// Writes one run of `function` version `version + 1` in the batch layout under `dir`: `run.json`, and per slice
/// of 5,000 rows an `out/` part (version 1's lines tagged as the log writes them, version 2's bare, as a reader
/// must take both) and a `failures/` part when the slice refused rows.
fn write_run(dir: &Path, function: &str, bucket: &str, run: &str, version: usize, rows: &[Row]) {
    let fv = (version + 1).to_string();
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    std::fs::create_dir_all(dir.join("failures")).expect("failures dir");
    let record = json!({"run": run, "function": function, "version": fv, "bucket": bucket, "prefix": "scores/"});
    std::fs::write(dir.join("run.json"), record.to_string()).expect("write run.json");
    for (s, slice) in rows.chunks(SLICE_ROWS).enumerate() {
        let name = slice_name(s);
        let (mut out, mut failures) = (Vec::new(), Vec::new());
        for (k, row) in slice.iter().enumerate() {
            let i = s * SLICE_ROWS + k;
            if refused(i, version) {
                let failed = FailedRow {
                    id: Some(json!(row.id)),
                    slice: name.clone(),
                    row: k as u64,
                    status: 400,
                    error_type: "InvalidInput".into(),
                    reason: "feature \"tenure_months\" must be a number, got a string".into(),
                };
                serde_json::to_writer(&mut failures, &failed).expect("failed row");
                failures.push(b'\n');
                continue;
            }
            let p = row.scores[version];
            let probs = [(1.0 - p) as f32, p as f32];
            let line = PredictionLine {
                request_id: Cow::Borrowed(&name),
                function_version: Cow::Borrowed(&fv),
                model_version: Some(Cow::Owned(format!("v{fv}"))),
                id: Some(Cow::Owned(json!(row.id))),
                correlation_id: None,
                shadow: false,
                row: k,
                rows: slice.len(),
                prediction: Some(Prediction::Int(i64::from(p >= 0.5))),
                probability: Some(p),
                probabilities: Some(Probabilities::Row { labels: LabelKeys::Int(&LABELS), probs: &probs }),
                score: None,
                latency_ms: Some(3.5),
            };
            if version == 0 {
                Line::Prediction(line).write_to(&mut out);
            } else {
                serde_json::to_writer(&mut out, &line).expect("prediction line");
                out.push(b'\n');
            }
        }
        std::fs::write(dir.join(format!("out/{name}.jsonl")), out).expect("write out part");
        if !failures.is_empty() {
            std::fs::write(dir.join(format!("failures/{name}.jsonl")), failures).expect("write failures part");
        }
    }
}

/// numpy's and scikit-learn's figures for the two runs (`backtest_expected.py`).
pub fn expected(base: &Path, cand: &Path, outcomes: &Path) -> Value {
    let out = std::process::Command::new(python())
        .arg(repo().join("tests/it/backtest_expected.py"))
        .args([base, cand, outcomes])
        .arg("0.05")
        .output()
        .expect("run backtest_expected.py with the venv's python");
    assert!(out.status.success(), "backtest_expected.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("expected values are json")
}

fn close(got: &Value, want: &Value, what: &str) -> f64 {
    let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap_or(f64::NAN));
    assert!((g - w).abs() <= 1e-9, "{what}: mlambda says {g}, numpy/scikit-learn say {w}");
    (g - w).abs()
}

#[test]
fn a_backtest_of_a_clearly_worse_candidate_matches_sklearn_and_numpy_and_stops_its_rollout() {
    // version 1 is the alias's primary (the baseline), version 2 the candidate
    let f = Fixture::new("backtest");
    assert_eq!(f.publish("v2", None), "2");
    let bucket = f.name().to_string();
    aws_cli(&["s3api", "create-bucket", "--bucket", &bucket]);
    let rows = history();
    let local = f.p.path("runs");
    for (version, run) in [(0, "runA"), (1, "runB")] {
        write_run(&local.join(run), f.name(), &bucket, run, version, &rows);
    }
    let dest = format!("s3://{bucket}/scores/");
    aws_cli(&["s3", "cp", "--recursive", "--only-show-errors", local.to_str().expect("utf-8"), &dest]);
    // outcomes for 9 in 10 customers, and one nobody scored
    let mut outcomes = String::from("id,label\n");
    for row in rows.iter().enumerate().filter(|(i, _)| i % 10 != 3).map(|(_, r)| r) {
        let _ = writeln!(outcomes, "{},{}", row.id, u8::from(row.churned));
    }
    outcomes.push_str("C-nobody,1\n");
    std::fs::write(f.p.path("outcomes.csv"), outcomes).expect("write outcomes");
    let want = expected(&local.join("runA"), &local.join("runB"), &f.p.path("outcomes.csv"));

    let (run_a, run_b) = (format!("{dest}runA/"), format!("{dest}runB/"));
    let r = f.p.json(&["report", "--batch", &run_a, "--batch", &run_b, "--outcomes", "outcomes.csv"]);
    assert_eq!((r["baseline"].as_str(), r["candidate"].as_str()), (Some("1"), Some("2")), "{r}");
    let mut deltas = vec![];
    for (i, side) in ["baseline", "candidate"].iter().enumerate() {
        let (v, e) = (&r["versions"][i], &want[side]);
        assert_eq!(v["rows"], e["rows"], "{side}");
        assert_eq!(v["labeled"], e["labeled"], "{side}");
        for k in ["auc", "log_loss", "brier", "accuracy", "positive_rate"] {
            deltas.push((format!("{side} {k}"), close(&v[k], &e[k], &format!("{side} {k}"))));
        }
        let ci = v["auc_ci"].as_array().expect("auc_ci");
        assert!(ci[0].as_f64() < v["auc"].as_f64() && v["auc"].as_f64() < ci[1].as_f64(), "{ci:?}");
    }
    assert_eq!(r["versions"][1]["client_errors"], 20, "the candidate's refused rows are counted");
    assert_eq!(r["versions"][1]["requests"], ROWS, "rows in: scored and refused");
    let (p, e) = (&r["paired"], &want["paired"]);
    for k in ["rows", "positives", "negatives"] {
        assert_eq!(p[k], e[k], "paired {k}");
    }
    // 18,000 labeled rows, less the 20 the candidate refused (all of them have an outcome)
    assert_eq!(p["rows"], 17_980);
    assert_eq!((p["unpaired_baseline"].as_u64(), p["unpaired_candidate"].as_u64()), (Some(20), Some(0)), "{p}");
    for k in ["baseline_auc", "candidate_auc", "difference", "standard_error", "correlation", "z", "p_value"] {
        deltas.push((format!("paired {k}"), close(&p[k], &e[k], &format!("paired {k}"))));
    }
    close(&p["baseline_auc"], &e["sklearn_baseline_auc"], "paired baseline AUC against roc_auc_score");
    close(&p["candidate_auc"], &e["sklearn_candidate_auc"], "paired candidate AUC against roc_auc_score");
    for j in 0..2 {
        close(&p["interval"][j], &e["interval"][j], "paired interval");
    }
    // shown with --nocapture: the figures, and how far each is from numpy's and scikit-learn's
    eprintln!(
        "baseline AUC {} (sklearn {}), candidate AUC {} (sklearn {}); paired z {} (numpy {}), p {}, difference {} \
         interval {}; |mlambda - reference|: {deltas:?}",
        r["versions"][0]["auc"],
        want["baseline"]["auc"],
        r["versions"][1]["auc"],
        want["candidate"]["auc"],
        p["z"],
        e["z"],
        p["p_value"],
        p["difference"],
        p["interval"]
    );
    assert!(p["z"].as_f64().is_some_and(|z| z < -10.0), "clearly worse: {p}");
    assert_eq!(r["verdict"], "rollback", "{:#}", r["reasons"]);
    let auc = r["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "auc")).expect("auc check");
    assert_eq!(auc["status"], "worse", "{auc}");
    assert!(auc["detail"].as_str().is_some_and(|d| d.contains("on the same")), "{auc}");
    let state = f.p.state();
    let recorded = &state["backtests"]["2"];
    assert_eq!((&recorded["verdict"], &recorded["baseline"]), (&json!("rollback"), &json!("1")), "{state}");
    assert_eq!(recorded["runs"], json!([run_a, run_b]));

    // the runs in the other order: the alias's primary is still the baseline
    let args = ["report", "--batch", &run_b, "--batch", &run_a, "--outcomes", "outcomes.csv"];
    let out = f.p.cmd().args(args).output().expect("run mlambda report");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("version 2 (") && text.contains("against baseline 1 ("), "{text}");
    assert!(text.contains("backtest verdict: ROLLBACK") && text.contains("z = "), "{text}");

    // the candidate gets no traffic: refused, nothing changed, unless forced
    let stderr = unwrap_lines(&f.p.fails(&["rollout", "--weight", "0.1"], 1));
    assert!(stderr.contains("refusing to send traffic to version 2"), "{stderr}");
    assert!(stderr.contains("its backtest against version 1") && stderr.contains("says rollback"), "{stderr}");
    assert!(stderr.contains("mlambda report --batch") && stderr.contains("--force"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})), "a refused rollout changes nothing");
    let forced = f.p.json(&["rollout", "--weight", "0.1", "--force"]);
    assert_eq!(forced["candidate"], "2");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})));
}

#[test]
fn a_batch_report_refuses_what_it_cannot_read_with_the_fix() {
    let f = Fixture::new("backtest-bad");
    std::fs::write(f.p.path("outcomes.csv"), "id,label\nC-1,1\n").expect("write outcomes");
    let e = f.p.fails(&["report", "--batch", "scores/run/", "--outcomes", "outcomes.csv"], 1);
    assert!(e.contains("--batch `scores/run/` is not an `s3://` address") && e.contains("s3://"), "{e}");
    let e = f.p.fails(&["report", "--batch", "s3://x/r/"], 1);
    assert!(e.contains("--batch needs --outcomes"), "{e}");
    let bucket = f.name().to_string();
    aws_cli(&["s3api", "create-bucket", "--bucket", &bucket]);
    let e = f.p.fails(&["report", "--batch", &format!("s3://{bucket}/scores/none/"), "--outcomes", "outcomes.csv"], 1);
    assert!(e.contains("holds no batch run: it has no `run.json`"), "{e}");
}
