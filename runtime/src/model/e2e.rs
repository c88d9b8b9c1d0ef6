//! End-to-end checks of the ml ops on real exports: each `testdata/NAME.onnx` (made by `testdata/gen.py`
//! with skl2onnx) runs through tract with our op table, unoptimized like `Model` runs it, and every output
//! is compared with what onnxruntime returned for the same inputs (`testdata/NAME.json`).
use std::path::PathBuf;

use serde_json::Value;
use tract_onnx::prelude::*;

use crate::model::ops;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/model/ml/testdata")
}

fn tensor_from_json(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap();
    let arr = |t: Tensor| t.into_shape(&shape).unwrap();
    match v["dtype"].as_str().unwrap() {
        "float32" => arr(tensor1(
            &data
                .iter()
                .map(|x| match x.as_str() {
                    Some(s) => s.parse::<f32>().unwrap(),
                    None => x.as_f64().map_or(f32::NAN, |f| f as f32),
                })
                .collect::<Vec<_>>(),
        )),
        "int64" => arr(tensor1(&data.iter().map(|x| x.as_i64().unwrap()).collect::<Vec<_>>())),
        "string" => arr(tensor1(&data.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>())),
        other => panic!("dtype {other}"),
    }
}

/// Parses with mlambda's table; a graph that also needs core ops outside it (named in the result) is
/// parsed with tract's whole table plus our ml ops, so the ml ops are still what is under test.
fn parse(bytes: &[u8]) -> (InferenceModel, Option<String>) {
    let onnx = ops::onnx();
    let proto = onnx.proto_model_for_read(&mut &*bytes).unwrap();
    let missing = ops::check_supported(&onnx, proto.graph.as_ref().unwrap()).err();
    let onnx = if missing.is_some() {
        let mut full = tract_onnx::onnx();
        super::ml::register(&mut full.op_register);
        full
    } else {
        onnx
    };
    let model = onnx.model_for_proto_model(&proto).unwrap();
    (model, missing.map(|m| m.split(" (node").next().unwrap_or_default().to_string()))
}

/// Runs case `name` and compares with onnxruntime; floats within `tol` relative (to max(1, |expected|)).
fn check(name: &str, tol: f32) {
    let bytes = std::fs::read(dir().join(format!("{name}.onnx"))).unwrap();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap()).unwrap();
    let (mut model, missing) = parse(&bytes);
    if let Some(m) = missing {
        eprintln!("{name}: parsed with tract's full table because {m}");
    }
    let inputs: Vec<Tensor> = doc["inputs"].as_array().unwrap().iter().map(tensor_from_json).collect();
    for (i, t) in inputs.iter().enumerate() {
        model.set_input_fact(i, InferenceFact::dt_shape(t.datum_type(), t.shape())).unwrap();
    }
    let plan = model.into_typed().unwrap().into_runnable().unwrap();
    let outputs = plan.run(inputs.into_iter().map(|t| t.into_tvalue()).collect()).unwrap();
    let expected = doc["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), expected.len(), "{name}: output count");
    for (got, want) in outputs.iter().zip(expected) {
        let out = want["name"].as_str().unwrap();
        let want = tensor_from_json(want);
        assert_eq!(got.shape(), want.shape(), "{name}.{out}: shape");
        match want.datum_type() {
            DatumType::F32 => {
                let got = got.cast_to::<f32>().unwrap();
                let (g, w) = (got.to_plain_array_view::<f32>().unwrap(), want.to_plain_array_view::<f32>().unwrap());
                for (k, (g, w)) in g.iter().zip(w.iter()).enumerate() {
                    let ok = (g - w).abs() <= tol * w.abs().max(1.0) || (g.is_nan() && w.is_nan());
                    assert!(ok, "{name}.{out}[{k}]: tract {g}, onnxruntime {w}");
                }
            }
            DatumType::I64 => {
                let got = got.cast_to::<i64>().unwrap();
                assert_eq!(
                    got.to_plain_array_view::<i64>().unwrap(),
                    want.to_plain_array_view::<i64>().unwrap(),
                    "{name}.{out}"
                );
            }
            _ => assert_eq!(
                got.to_plain_array_view::<String>().unwrap(),
                want.to_plain_array_view::<String>().unwrap(),
                "{name}.{out}"
            ),
        }
    }
}

#[test]
fn imputer_scaler_multiclass_logistic_regression() {
    check("imputer_logreg_multi", 1e-5);
}

#[test]
fn string_labels_through_zipmap() {
    check("logreg_strings_zipmap", 1e-5);
}

#[test]
fn svc_rbf_with_probabilities_and_string_labels() {
    check("svc_rbf_proba", 1e-5);
}

#[test]
fn svc_linear_binary_with_probabilities() {
    check("svc_linear_proba_binary", 1e-5);
}

#[test]
fn svc_poly_and_sigmoid_one_vs_one_scores() {
    check("svc_poly_multi", 1e-5);
    check("svc_sigmoid_multi", 1e-5);
}

#[test]
fn svr_and_one_class_svm() {
    check("svr_rbf", 1e-5);
    check("one_class_svm", 1e-5);
}

#[test]
fn linear_svc_multiclass() {
    check("linear_svc_multi", 1e-5);
}

#[test]
fn multiclass_and_multi_target_trees() {
    check("gbc_multi_strings", 1e-5);
    check("rf_multi_ints", 1e-5);
    check("rf_two_targets", 1e-5);
}

#[test]
fn one_hot_strings_with_unknowns_into_logistic_regression() {
    check("ohe_strings_logreg", 1e-5);
}

#[test]
fn encoders_normalizers_binarizer() {
    check("label_encoder_strings", 0.0);
    for n in ["normalizer_l1", "normalizer_l2", "normalizer_max", "binarizer"] {
        check(n, 1e-6);
    }
}

#[test]
fn string_casts_mappers_extractor_vectorizer_int_imputer() {
    check("cast_strings", 0.0);
    check("category_mapper_and_extractor", 0.0);
    check("imputer_ints", 0.0);
}

/// The load-time fusions take the real exports' chains: no `Scan` is left in a KNN export, no `Tokenizer` or
/// `TfIdfVectorizer` in a TF-IDF one (the fixtures in `tests/fixtures/` check the answers).
#[test]
fn the_knn_and_text_exports_are_fused_at_load() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let ops_of = |path: PathBuf| -> Vec<String> {
        let mut proto = ops::onnx().proto_model_for_path(path).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        super::ml::text::fuse(graph);
        super::ml::neighbors::fuse(graph);
        graph.node.iter().map(|n| n.op_type.clone()).collect()
    };
    let knn = ops_of(fixtures.join("families/knn_clf.onnx"));
    assert!(knn.contains(&"MlambdaSquaredDistances".to_string()) && !knn.contains(&"Scan".to_string()), "{knn:?}");
    let text = ops_of(fixtures.join("text/text_tfidf_lr.onnx"));
    assert!(text.contains(&"MlambdaTokenizeTfIdf".to_string()), "{text:?}");
    assert!(!text.iter().any(|op| op == "Tokenizer" || op == "TfIdfVectorizer" || op == "Flatten"), "{text:?}");
}
