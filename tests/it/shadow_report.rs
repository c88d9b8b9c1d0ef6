//! `mlambda report --shadow` against moto: a primary's answers to 2,000 copied requests (3,000 rows) and a shadow's
//! answers to the copies, written into the function's log group the way the runtime writes them (through the AWS
//! CLI, not mlambda), with failed copies and lines that find no partner. The pairing's counts are checked against
//! the construction; agreement, |Δp|, PSI and DeLong's paired test against numpy on the same rows
//! (`backtest_expected.py`, fed the pairs in the batch layout). The worse shadow's `rollback` verdict then stops
//! `mlambda rollout --weight` from sending it traffic; an identical shadow agrees everywhere and is not rolled back.
use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

use mlambda_runtime::logline::{LabelKeys, Line, Prediction, PredictionLine, Probabilities, ShadowErrorLine};
use serde_json::{json, Value};

use crate::backtest::expected;
use crate::common::{aws_cli, unwrap_lines};
use crate::report::{chromium, now_ms, put_log_events, sigmoid, Rng};
use crate::rollout::Fixture;

const LABELS: [i64; 2] = [0, 1];
/// Copied requests: every other one has two rows, so 3,000 rows.
const REQUESTS: usize = 2_000;

/// One row of a copied request: its id, outcome and the two versions' scores.
struct Row {
    correlation: String,
    row: usize,
    id: String,
    churned: bool,
    scores: [f64; 2],
}

/// The copied requests' rows. The primary sees the customer's risk through a little noise; the shadow through a
/// lot (`worse`), or exactly as the primary does.
fn rows(worse: bool) -> Vec<Row> {
    let mut rng = Rng(0x05ad_0e57);
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let mut out = Vec::new();
    for r in 0..REQUESTS {
        let correlation = format!("{:08x}-5ead-4abc-8def-{r:012x}", rng.next() as u32);
        for row in 0..1 + r % 2 {
            let risk = 1.5 * rng.normal() - 1.0;
            let churned = rng.unif() < sigmoid(risk);
            let good = round(sigmoid(risk + 0.5 * rng.normal()));
            let other = if worse { round(sigmoid(risk + 2.5 * rng.normal())) } else { good };
            let id = format!("C-{:05}", out.len());
            out.push(Row { correlation: correlation.clone(), row, id, churned, scores: [good, other] });
        }
    }
    out
}

/// A prediction line as the runtime writes it: the primary's for a copied request, or the shadow's answer.
fn prediction(
    version: &str,
    request_id: &str,
    correlation: &str,
    id: &str,
    row: (usize, usize),
    p: f64,
    ms: f64,
) -> String {
    let fv = version.to_string();
    let probs = [(1.0 - p) as f32, p as f32];
    let line = PredictionLine {
        request_id: Cow::Borrowed(request_id),
        function_version: Cow::Borrowed(&fv),
        model_version: Some(Cow::Owned(format!("v{version}"))),
        id: Some(Cow::Owned(json!(id))),
        correlation_id: Some(Cow::Borrowed(correlation)),
        shadow: version == "2",
        row: row.0,
        rows: row.1,
        prediction: Some(Prediction::Int(i64::from(p >= 0.5))),
        probability: Some(p),
        probabilities: Some(Probabilities::Row { labels: LabelKeys::Int(&LABELS), probs: &probs }),
        score: None,
        latency_ms: Some(ms),
    };
    let mut out = Vec::new();
    Line::Prediction(line).write_to(&mut out);
    String::from_utf8(out).expect("utf-8").trim_end().to_string()
}

fn shadow_error(correlation: &str, version: &str, function: &str, reason: &str) -> String {
    let target = format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:2");
    let line = ShadowErrorLine {
        correlation_id: correlation.into(),
        function_version: version.into(),
        target: target.into(),
        reason: reason.into(),
    };
    let mut out = Vec::new();
    Line::ShadowError(line).write_to(&mut out);
    String::from_utf8(out).expect("utf-8").trim_end().to_string()
}

/// One side's rows in the batch layout `backtest_expected.py` reads: `<dir>/out/part-00000.jsonl`.
fn write_side(dir: &Path, rows: &[(&str, f64)]) {
    std::fs::create_dir_all(dir.join("out")).expect("out dir");
    let mut text = String::new();
    for (id, p) in rows {
        let _ = writeln!(text, "{}", json!({"id": id, "prediction": i64::from(*p >= 0.5), "probability": p}));
    }
    std::fs::write(dir.join("out/part-00000.jsonl"), text).expect("write part");
}

/// What the log holds beside the pairs, in the worse case: copies that found no partner and failed copies.
struct Extras {
    /// Primary rows of requests whose copy the shadow could not answer, and of requests whose copy was throttled.
    failed: usize,
    throttled: usize,
    /// Shadow answers whose primary line is not in the log.
    orphans: usize,
}

/// Writes the log (a primary stream and a shadow stream, and live answers that were not copied) and the outcomes
/// for `rows`, and the pairs in the batch layout under `pairs/`; returns numpy's figures when `numpy`.
fn seed(f: &Fixture, rows: &[Row], extras: &Extras, numpy: bool) -> Option<Value> {
    let group = format!("/aws/lambda/{}", f.name());
    aws_cli(&["logs", "create-log-group", "--log-group-name", &group]);
    let (latency, shadow_latency) = (2.0, if extras.failed > 0 { 3.0 } else { 2.0 });
    let (mut primary, mut shadow) = (Vec::new(), Vec::new());
    let (mut base_side, mut cand_side) = (Vec::new(), Vec::new());
    let mut outcomes = String::from("id,label\n");
    let rows_of = |c: &str| rows.iter().filter(|r| r.correlation == c).count();
    for (i, r) in rows.iter().enumerate() {
        let n = rows_of(&r.correlation);
        if r.row == 0 {
            primary.push(format!("START RequestId: {} Version: 1", r.correlation));
        }
        primary.push(prediction("1", &r.correlation, &r.correlation, &r.id, (r.row, n), r.scores[0], latency));
        let own = format!("{}-copy", r.correlation);
        shadow.push(prediction("2", &own, &r.correlation, &r.id, (r.row, n), r.scores[1], shadow_latency));
        base_side.push((r.id.as_str(), r.scores[0]));
        cand_side.push((r.id.as_str(), r.scores[1]));
        if i % 10 != 3 {
            let _ = writeln!(outcomes, "{},{}", r.id, u8::from(r.churned));
        }
    }
    // copies that found no partner: the shadow failed to answer, the primary was throttled, or the primary's
    // line fell outside the window; each has an outcome
    let (mut unmatched_base, mut unmatched_cand) = (Vec::new(), Vec::new());
    for k in 0..extras.failed + extras.throttled + extras.orphans {
        let (c, id) = (format!("unmatched-{k}"), format!("U-{k:03}"));
        let _ = writeln!(outcomes, "{id},{}", k % 2);
        if k < extras.failed + extras.throttled {
            primary.push(prediction("1", &c, &c, &id, (0, 1), 0.5, latency));
            unmatched_base.push((id, 0.5));
            primary.push(match k < extras.failed {
                true => shadow_error(&c, "2", f.name(), "model failed: the graph produced 0 values"),
                false => shadow_error(&c, "1", f.name(), "throttled: Rate Exceeded"),
            });
        } else {
            shadow.push(prediction("2", &format!("{c}-copy"), &c, &id, (0, 1), 0.5, shadow_latency));
            unmatched_cand.push((id, 0.5));
        }
    }
    // live answers, not copied: no correlation id, so neither side of any pair
    for k in 0..50 {
        let live = prediction("1", &format!("live-{k}"), "x", &format!("L-{k}"), (0, 1), 0.9, latency);
        primary.push(live.replace(r#""correlation_id":"x","#, ""));
    }
    outcomes.push_str("C-nobody,1\n");
    std::fs::write(f.p.path("outcomes.csv"), outcomes).expect("write outcomes");
    let start = now_ms() - 600_000;
    let dir = f.p.root().to_path_buf();
    put_log_events(&group, "2026/12/01/[1]primary", &primary, &dir, start);
    put_log_events(&group, "2026/12/01/[2]shadow", &shadow, &dir, start + 50);

    let (base, cand) = (f.p.path("pairs/base"), f.p.path("pairs/cand"));
    base_side.extend(unmatched_base.iter().map(|(i, p)| (i.as_str(), *p)));
    cand_side.extend(unmatched_cand.iter().map(|(i, p)| (i.as_str(), *p)));
    write_side(&base, &base_side);
    write_side(&cand, &cand_side);
    numpy.then(|| expected(&base, &cand, &f.p.path("outcomes.csv")))
}

fn close(got: &Value, want: &Value, what: &str) -> f64 {
    let (g, w) = (got.as_f64().unwrap_or(f64::NAN), want.as_f64().unwrap_or(f64::NAN));
    assert!((g - w).abs() <= 1e-9, "{what}: mlambda says {g}, numpy says {w}");
    (g - w).abs()
}

#[test]
fn a_clearly_worse_shadow_matches_numpy_is_rolled_back_and_stops_its_rollout() {
    let f = Fixture::new("shadow");
    assert_eq!(f.publish("v2", None), "2");
    // before any shadow line: nothing to pair is the user's to fix
    let e = f.p.fails(&["report", "--shadow"], 1);
    assert!(e.contains("no shadow copy of a request to") && e.contains("mlambda shadow --version N"), "{e}");

    let rows = rows(true);
    assert_eq!(rows.len(), 3000);
    let extras = Extras { failed: 10, throttled: 15, orphans: 5 };
    let want = seed(&f, &rows, &extras, true).expect("numpy's figures");
    let r = f.p.json(&["report", "--shadow", "--outcomes", "outcomes.csv"]);
    assert_eq!((r["baseline"].as_str(), r["candidate"].as_str()), (Some("1"), Some("2")), "{r}");
    assert_eq!((r["baseline_model"].as_str(), r["candidate_model"].as_str()), (Some("v1"), Some("v2")));
    assert_eq!(r["pairs"], 3000, "{r}");
    assert_eq!((r["primary_unmatched"].as_u64(), r["primary_unmatched_with_error"].as_u64()), (Some(25), Some(25)));
    assert_eq!((r["shadow_unmatched"].as_u64(), r["other_pairs"].as_u64()), (Some(5), Some(0)));
    assert_eq!((r["baseline_requests"].as_u64(), r["candidate_requests"].as_u64()), (Some(2025), Some(2005)));
    let errors = &r["shadow_errors"];
    assert_eq!((errors["count"].as_u64(), errors["answer_failures"].as_u64()), (Some(25), Some(10)), "{errors}");
    assert_eq!(errors["delivery_failures"], 15);
    assert_eq!(
        errors["top_reasons"][0],
        json!({"side": "delivery", "reason": "throttled: Rate Exceeded", "count": 15})
    );
    assert_eq!(errors["top_reasons"][1]["side"], "candidate");
    assert_eq!(r["candidate_latency_ms"]["p99"], 3.0);
    assert_eq!(r["baseline_latency_ms"]["p50"], 2.0);

    // agreement, |Δp| and PSI against numpy on the same 3,000 rows
    let mut deltas = vec![];
    let pairs = &want["pairs"];
    assert_eq!(pairs["rows"], 3000);
    deltas.push(("agreement".to_string(), close(&r["agreement"], &pairs["agreement"], "agreement")));
    for k in ["mean", "p50", "p90", "p99", "max"] {
        deltas.push((format!("|Δp| {k}"), close(&r["delta"][k], &pairs["delta"][k], &format!("|Δp| {k}"))));
    }
    deltas.push(("psi".to_string(), close(&r["psi"], &pairs["psi"], "psi")));
    assert_eq!((r["delta_of"].as_str(), r["psi_of"].as_str()), (Some("probability"), Some("probability")));
    let agreeing = rows.iter().filter(|x| (x.scores[0] >= 0.5) == (x.scores[1] >= 0.5)).count();
    assert_eq!(r["disagreeing"].as_u64(), Some(3000 - agreeing as u64), "as constructed");

    // DeLong's paired test on the labeled pairs against numpy
    let (p, e) = (&r["paired"], &want["paired"]);
    for k in ["rows", "positives", "negatives"] {
        assert_eq!(p[k], e[k], "paired {k}");
    }
    assert_eq!(p["rows"], 2700, "9 in 10 of 3,000 rows have an outcome");
    assert_eq!((p["unpaired_baseline"].as_u64(), p["unpaired_candidate"].as_u64()), (Some(25), Some(5)), "{p}");
    for k in ["baseline_auc", "candidate_auc", "difference", "standard_error", "correlation", "z", "p_value"] {
        deltas.push((format!("paired {k}"), close(&p[k], &e[k], &format!("paired {k}"))));
    }
    close(&p["baseline_auc"], &e["sklearn_baseline_auc"], "paired baseline AUC against roc_auc_score");
    close(&p["candidate_auc"], &e["sklearn_candidate_auc"], "paired candidate AUC against roc_auc_score");
    for j in 0..2 {
        deltas.push((format!("interval {j}"), close(&p["interval"][j], &e["interval"][j], "paired interval")));
    }
    // shown with --nocapture: the figures, and how far each is from numpy's
    eprintln!(
        "pairs {}, agreement {}, |Δp| p50 {} p90 {} p99 {} max {}, PSI {}; AUC {} vs {} (numpy {} vs {}), \
         difference {} interval {}, z {} (numpy {}), p {} (numpy {}); |mlambda - numpy|: {deltas:?}",
        r["pairs"],
        r["agreement"],
        r["delta"]["p50"],
        r["delta"]["p90"],
        r["delta"]["p99"],
        r["delta"]["max"],
        r["psi"],
        p["baseline_auc"],
        p["candidate_auc"],
        e["baseline_auc"],
        e["candidate_auc"],
        p["difference"],
        p["interval"],
        p["z"],
        e["z"],
        p["p_value"],
        e["p_value"]
    );
    assert!(p["z"].as_f64().is_some_and(|z| z < -10.0), "clearly worse: {p}");
    assert_eq!(r["verdict"], "rollback", "{:#}", r["reasons"]);
    let auc = r["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == "auc")).expect("auc check");
    assert_eq!(auc["status"], "worse", "{auc}");
    assert!(auc["detail"].as_str().is_some_and(|d| d.contains("on the same 2,700 rows")), "{auc}");
    let disagreements = r["disagreements"].as_array().expect("disagreements");
    assert_eq!(disagreements.len(), 20);
    assert!(disagreements.iter().all(|d| d["baseline"] != d["candidate"] && d["id"].is_string()), "{disagreements:?}");
    let state = f.p.state();
    let recorded = &state["shadow_verdicts"]["2"];
    assert_eq!((&recorded["verdict"], &recorded["baseline"]), (&json!("rollback"), &json!("1")), "{state}");
    assert_eq!((&recorded["pairs"], &recorded["outcomes"]), (&json!(3000), &json!(true)));

    // the same report for people, and its page
    let out = f.p.cmd().args(["report", "--shadow", "--outcomes", "outcomes.csv", "--html", "shadow.html"]).output();
    let out = out.expect("run mlambda report");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("version 2 answered copies of version 1's requests"), "{text}");
    assert!(text.contains("pairs: 3,000 rows") && text.contains("shadow verdict: ROLLBACK"), "{text}");
    let page = std::fs::read_to_string(f.p.path("shadow.html")).expect("read the page");
    assert!(page.contains(r#"<svg id="scatter""#) && page.contains(r#"<table id="disagreements""#));
    assert_eq!(page.matches("<circle").count(), 1500, "3,000 pairs thinned to at most 2,000 points");
    let out = chromium(&["--dump-dom"], &f.p.path("shadow.html"));
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(dom.matches("<circle").count(), 1500, "the scatter renders");
    let table = &dom[dom.find(r#"<table id="disagreements""#).expect("the disagreements render")..];
    assert_eq!(table[..table.find("</table>").expect("a whole table")].matches("<tr>").count(), 21);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("CONSOLE"), "no console messages");

    // the shadow gets no traffic: refused, nothing changed, unless forced
    let stderr = unwrap_lines(&f.p.fails(&["rollout", "--weight", "0.1", "--version", "2"], 1));
    assert!(stderr.contains("refusing to send traffic to version 2"), "{stderr}");
    assert!(stderr.contains("its shadow report against version 1") && stderr.contains("says rollback"), "{stderr}");
    assert!(stderr.contains("mlambda report --shadow --candidate 2") && stderr.contains("--force"), "{stderr}");
    assert_eq!(f.routing(), ("1".to_string(), json!({})), "a refused rollout changes nothing");
    let forced = f.p.json(&["rollout", "--weight", "0.1", "--version", "2", "--force"]);
    assert_eq!(forced["candidate"], "2");
    assert_eq!(f.routing(), ("1".to_string(), json!({"2": 0.1})));
}

#[test]
fn an_identical_shadow_agrees_on_every_row_and_is_not_rolled_back() {
    let f = Fixture::new("shadow-same");
    assert_eq!(f.publish("v2", None), "2");
    let rows = rows(false);
    seed(&f, &rows, &Extras { failed: 0, throttled: 0, orphans: 0 }, false);
    let r = f.p.json(&["report", "--shadow", "--outcomes", "outcomes.csv"]);
    assert_eq!(
        (r["pairs"].as_u64(), r["primary_unmatched"].as_u64(), r["shadow_unmatched"].as_u64()),
        (Some(3000), Some(0), Some(0))
    );
    assert_eq!(r["agreement"], 1.0);
    for k in ["mean", "p50", "p90", "p99", "max"] {
        assert_eq!(r["delta"][k], 0.0, "|Δp| {k}");
    }
    assert_eq!((r["psi"].as_f64(), r["shadow_errors"]["count"].as_u64()), (Some(0.0), Some(0)));
    let p = &r["paired"];
    assert_eq!((p["rows"].as_u64(), p["difference"].as_f64(), p["z"].as_f64()), (Some(2700), Some(0.0), Some(0.0)));
    assert_eq!(p["baseline_auc"], p["candidate_auc"]);
    assert_ne!(r["verdict"], "rollback", "{:#}", r["reasons"]);
    assert_eq!(r["disagreements"], json!([]));
    // nothing recorded against it: a rollout goes ahead
    let out = f.p.json(&["rollout", "--weight", "0.1", "--version", "2"]);
    assert_eq!(out["candidate"], "2");
}
