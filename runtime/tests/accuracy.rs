//! Every fixture model (examples/fixtures.py) against onnxruntime's outputs on the same 10,000 rows, and
//! the recommended exports against scikit-learn too (within 1e-5, zero label flips).
use std::path::{Path, PathBuf};

use mlambda_runtime::model::{Model, Task};

const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes =
        std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}; run examples/fixtures.py"));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn read_u8(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

struct Report {
    max_diff: f64,
    worst_row: usize,
    flips: usize,
}

fn compare(got: &[(f64, f64)], want: &[f32], labels: Option<&[u8]>) -> Report {
    let mut r = Report { max_diff: 0.0, worst_row: 0, flips: 0 };
    for (i, ((pred, value), w)) in got.iter().zip(want).enumerate() {
        let d = (value - *w as f64).abs();
        if d > r.max_diff || d.is_nan() {
            r.max_diff = if d.is_nan() { f64::INFINITY } else { d };
            r.worst_row = i;
        }
        if let Some(labels) = labels {
            if *pred != labels[i] as f64 {
                r.flips += 1;
            }
        }
    }
    r
}

#[test]
fn every_fixture_matches_onnxruntime_and_sklearn() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("fixtures.json")).expect("fixtures.json")).unwrap();
    let rows = read_f32(manifest["rows"].as_str().unwrap());
    let n_rows = manifest["n_rows"].as_u64().unwrap() as usize;
    assert!(n_rows >= 10_000);
    let mut failures = Vec::new();
    let list = manifest["fixtures"].as_array().unwrap();
    assert!(list.len() >= 9, "expected all model kinds x exports plus churn");
    for f in list {
        let name = f["name"].as_str().unwrap();
        let model =
            Model::from_path(&fixtures().join(f["model"].as_str().unwrap())).unwrap_or_else(|e| panic!("{name}: {e}"));
        let nf = f["n_features"].as_u64().unwrap() as usize;
        assert_eq!(model.n_features(), nf, "{name}");
        assert_eq!(rows.len(), n_rows * nf);
        let classifier = f["task"] == "classifier";
        assert_eq!(model.task(), if classifier { Task::Classifier } else { Task::Regressor }, "{name}");
        // one tensor for all rows, as a batch request does
        let outs = model.predict(&rows).unwrap();
        assert_eq!(outs.len(), n_rows);
        let got: Vec<(f64, f64)> = outs
            .iter()
            .map(|o| (o.prediction, if classifier { o.probability.unwrap() } else { o.prediction }))
            .collect();
        let ort_labels = classifier.then(|| read_u8(&format!("{name}.ort_label.u8")));
        let ort = compare(&got, &read_f32(&format!("{name}.ort.f32")), ort_labels.as_deref());
        println!(
            "{name}: vs onnxruntime max |diff| {:.3e} (row {}), label flips {}",
            ort.max_diff, ort.worst_row, ort.flips
        );
        if ort.max_diff > TOLERANCE || ort.flips > 0 {
            failures.push(format!(
                "{name} vs onnxruntime: max diff {:e} at row {}, {} flips",
                ort.max_diff, ort.worst_row, ort.flips
            ));
        }
        let sk_labels = classifier.then(|| read_u8(&format!("{name}.sk_label.u8")));
        let sk = compare(&got, &read_f32(&format!("{name}.sk.f32")), sk_labels.as_deref());
        println!(
            "{name}: vs sklearn     max |diff| {:.3e} (row {}), label flips {}",
            sk.max_diff, sk.worst_row, sk.flips
        );
        // the default export's ai.onnx.ml.Scaler stores 1/std in float32 and legitimately drifts from sklearn
        if f["export"] == "recommended" && (sk.max_diff > TOLERANCE || sk.flips > 0) {
            failures.push(format!(
                "{name} vs sklearn: max diff {:e} at row {}, {} flips",
                sk.max_diff, sk.worst_row, sk.flips
            ));
        }
        // row-by-row gives the same answers as the batch
        for i in (0..n_rows).step_by(997) {
            let one = model.predict(&rows[i * nf..(i + 1) * nf]).unwrap();
            assert_eq!(one[0], outs[i], "{name} row {i}: single-row and batch results differ");
        }
    }
    assert!(failures.is_empty(), "accuracy failures:\n{}", failures.join("\n"));
}

#[test]
fn errors_are_actionable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Model::from_path(&dir.path().join("nope.onnx")).unwrap_err().to_string();
    assert!(missing.contains("cannot read model file") && missing.contains("nope.onnx"), "{missing}");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"definitely not protobuf \xff\xff\xff").unwrap();
    let err = Model::from_path(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.onnx"), "{err}");
    let model = Model::from_path(&fixtures().join("gbc_recommended.onnx")).unwrap();
    let err = model.predict(&[1.0; 8]).unwrap_err().to_string();
    assert!(err.contains("not a multiple") && err.contains('7'), "{err}");
    assert!(model.predict(&[]).unwrap().is_empty());
}
