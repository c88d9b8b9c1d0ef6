//! Benchmarks `mlambda_runtime::model` in process (used by scripts/bench-runtime).
//!
//! `bench_model MODEL.onnx` prints one-row p50/p99, batch-1000 throughput, load time and peak RSS as JSON.
//! `bench_model --oneshot MODEL.onnx` loads, predicts one row, prints it and exits: the whole-process
//! figure (exec → model loaded → first prediction) is timed from outside.
//! `bench_model --rows ROWS.json [--features a,b,c] MODEL.onnx` times the request path instead: JSON rows
//! (`{"rows": [{...}, ...]}`, the fixtures' format) through `Schema::parse` and `Model::run`, as `bootstrap` does,
//! and splits each one-row call into parsing the row and running the graph. `--threads N` caps the threads a
//! batch is split over (default: the vCPUs this process may use).
use std::time::Instant;

use mlambda_runtime::model::Model;
use mlambda_runtime::rows::Schema;
use serde_json::{Map, Value};

/// Deterministic in-range rows for the churn features (integers where the feature is integer-coded).
fn rows(n: usize, nf: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let ranges = [
        (0.0, 72.0, true),
        (18.25, 118.75, false),
        (18.25, 8700.0, false),
        (1.0, 6.0, true),
        (0.0, 1.0, true),
        (0.0, 2.0, true),
        (0.0, 3.0, true),
    ];
    let mut out = Vec::with_capacity(n * nf);
    for _ in 0..n {
        for j in 0..nf {
            let (lo, hi, int) = ranges[j % ranges.len()];
            let v = lo + next() * (hi - lo);
            out.push(if int { v.round() as f32 } else { v as f32 });
        }
    }
    out
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

type Rows = Vec<Map<String, Value>>;

/// The rows of a fixture file, repeated to 1000 so every figure sees the same 1000 rows.
fn json_rows(path: &str) -> Result<Rows, Box<dyn std::error::Error>> {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?)?;
    let rows: Rows = doc
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{path} has no \"rows\" array: write {{\"rows\": [{{...}}, ...]}}"))?
        .iter()
        .filter_map(|r| r.as_object().cloned())
        .collect();
    if rows.is_empty() {
        return Err(format!("{path} holds no row objects").into());
    }
    Ok(rows.iter().cycle().take(1000).cloned().collect())
}

fn pcts(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let p = |q: f64| xs[((xs.len() as f64 - 1.0) * q) as usize];
    (p(0.5), p(0.99))
}

/// The request path: rows parsed against the schema the handler builds once, the graph run, answers read.
fn bench_rows(model: &Model, schema: &Schema, rows: &Rows, load_ms: f64) -> Result<(), Box<dyn std::error::Error>> {
    let (mut total, mut parse, mut run) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..20_000 {
        let row = &rows[i % rows.len()..i % rows.len() + 1];
        let t = Instant::now();
        let batch = schema.parse(row.iter())?;
        let t1 = Instant::now();
        let answers = model.run(batch)?;
        let out = answers.row(0);
        let t2 = Instant::now();
        std::hint::black_box(out);
        total.push((t2 - t).as_secs_f64() * 1e6);
        parse.push((t1 - t).as_secs_f64() * 1e6);
        run.push((t2 - t1).as_secs_f64() * 1e6);
    }
    let ((p50, p99), (parse50, _), (run50, _)) = (pcts(total), pcts(parse), pcts(run));
    let batch_rate = |with_parse: bool| -> Result<f64, Box<dyn std::error::Error>> {
        let parsed = schema.parse(rows.iter())?;
        let t = Instant::now();
        let mut batches = 0;
        while t.elapsed().as_secs_f64() < 1.0 {
            let batch = if with_parse { schema.parse(rows.iter())? } else { parsed.clone() };
            let answers = model.run(batch)?;
            for i in 0..answers.len() {
                std::hint::black_box(answers.row(i));
            }
            batches += 1;
        }
        Ok((batches * rows.len()) as f64 / t.elapsed().as_secs_f64())
    };
    let (batch, graph_batch) = (batch_rate(true)?, batch_rate(false)?);
    println!(
        "{{\"load_ms\": {load_ms:.2}, \"p50_us\": {p50:.2}, \"p99_us\": {p99:.2}, \"parse_p50_us\": {parse50:.2}, \
         \"run_p50_us\": {run50:.2}, \"batch1000_rows_per_s\": {batch:.0}, \"graph_batch1000_rows_per_s\": \
         {graph_batch:.0}, \"peak_rss_kb\": {}}}",
        peak_rss_kb()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| -> Option<String> {
        let i = args.iter().position(|a| a == flag)?;
        let v = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        v
    };
    let (rows_path, features, threads) = (take("--rows"), take("--features"), take("--threads"));
    let usage = "usage: bench_model [--threads N] [--oneshot | --rows ROWS.json [--features a,b,c]] MODEL.onnx";
    let (oneshot, path) = match args.as_slice() {
        [flag, path] if flag == "--oneshot" => (true, path),
        [path] => (false, path),
        _ => return Err(usage.into()),
    };
    let t0 = Instant::now();
    let mut model = Model::from_path(path.as_ref())?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(n) = threads {
        model = model.with_threads(n.parse().map_err(|_| format!("--threads {n}: not a number"))?);
    }
    if let Some(rows_path) = rows_path {
        let features: Option<Vec<String>> = features.map(|f| f.split(',').map(str::to_string).collect());
        let schema = Schema::new(&model, features.as_deref())?;
        return bench_rows(&model, &schema, &json_rows(&rows_path)?, load_ms);
    }
    let nf = model.n_features();
    if oneshot {
        let out = model.predict(&rows(1, nf))?;
        println!("{}", out[0].probability.unwrap_or(out[0].prediction));
        return Ok(());
    }
    let data = rows(1000, nf);
    // one row at a time, many times
    let mut lat = Vec::with_capacity(20_000);
    for i in 0..20_000 {
        let r = &data[(i % 1000) * nf..(i % 1000 + 1) * nf];
        let t = Instant::now();
        let out = model.predict(r)?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(out);
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    // batches of 1000
    let t = Instant::now();
    let mut batches = 0;
    while t.elapsed().as_secs_f64() < 1.0 {
        std::hint::black_box(model.predict(&data)?);
        batches += 1;
    }
    let rows_per_s = (batches * 1000) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{{\"load_ms\": {load_ms:.2}, \"p50_us\": {:.2}, \"p99_us\": {:.2}, \"batch1000_rows_per_s\": {rows_per_s:.0}, \"peak_rss_kb\": {}}}",
        p(0.5),
        p(0.99),
        peak_rss_kb()
    );
    Ok(())
}
