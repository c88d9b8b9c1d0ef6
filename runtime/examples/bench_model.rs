//! Benchmarks `mlambda_runtime::model` in process (used by scripts/bench-runtime).
//!
//! `bench_model MODEL.onnx` prints one-row p50/p99, batch-1000 throughput, load time and peak RSS as JSON.
//! `bench_model --oneshot MODEL.onnx` loads, predicts one row, prints it and exits: the whole-process
//! figure (exec → model loaded → first prediction) is timed from outside.
use std::time::Instant;

use mlambda_runtime::model::Model;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (oneshot, path) = match args.as_slice() {
        [flag, path] if flag == "--oneshot" => (true, path),
        [path] => (false, path),
        _ => return Err("usage: bench_model [--oneshot] MODEL.onnx".into()),
    };
    let t0 = Instant::now();
    let model = Model::from_path(path.as_ref())?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
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
