//! The ONNX op table models are parsed with: the ops scikit-learn exports use, not all of ONNX.
//!
//! tract-onnx's own table registers every op it knows (convolutions, FFT, attention, ...), and since ops
//! are looked up by name at run time, the linker keeps them all: about 10 MB of a Lambda binary that
//! serves tabular models. This table lists what skl2onnx and onnxmltools emit for tabular pipelines
//! (trees, linear models, MLPs, SVMs, `ColumnTransformer`s), with tract's implementations for core ops
//! and ours for `ai.onnx.ml` ([`super::ml`]). Build with the `full-onnx` feature to parse with tract's
//! whole table instead.
use tract_onnx::model::{Onnx, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::nn::Reducer;
use tract_onnx::tract_hir::ops::{self, array, binary::Nary, identity::Identity, konst::Const};

use super::expansions as x;
use super::ml;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// tract's whole table, plus ours over it.
#[cfg(feature = "full-onnx")]
pub fn onnx() -> Onnx {
    let mut onnx = tract_onnx::onnx();
    ml::register(&mut onnx.op_register);
    onnx
}

/// The parser with mlambda's op table (or tract's whole table plus ours, with `full-onnx`).
#[cfg(not(feature = "full-onnx"))]
pub fn onnx() -> Onnx {
    let mut reg = tract_onnx::model::OnnxOpRegister::default();
    for (name, build) in CORE {
        reg.insert(name, *build);
    }
    ml::register(&mut reg);
    Onnx { op_register: reg, ..Onnx::default() }
}

/// Every op tract-onnx 0.23.9's own table registers (its `transformers` feature off, as we build it):
/// the ops `--features full-onnx` adds. A unit test keeps this list equal to `tract_onnx::onnx()`'s, so
/// refusals can say which ops that feature would bring without linking the table into `bootstrap`.
pub const TRACT_ONNX_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "ArrayFeatureExtractor",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "BiasGelu",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "CategoryMapper",
    "Ceil",
    "Celu",
    "Clip",
    "Compress",
    "Concat",
    "Constant",
    "ConstantLike",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DFT",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "FastGelu",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherBlockQuantized",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "LinearClassifier",
    "LinearRegressor",
    "Log",
    "LogSoftmax",
    "LpNormalization",
    "MatMul",
    "MatMulInteger",
    "MatMulNBits",
    "Max",
    "MaxPool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Normalizer",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "ParametricSoftplus",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "QuickGelu",
    "RMSNormalization",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "RotaryEmbedding",
    "Round",
    "Rsqrt",
    "STFT",
    "ScaledTanh",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "SimplifiedLayerNormalization",
    "Sin",
    "Sinh",
    "Size",
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "TreeEnsembleClassifier",
    "Trilu",
    "Unsqueeze",
    "Where",
    "Xor",
];

/// What to do about an op no table here has: true advice per op, never a feature that would not help.
fn fix_for(op: &str) -> String {
    if !cfg!(feature = "full-onnx") && TRACT_ONNX_OPS.contains(&op) {
        return "tract has it: build the runtime with `--features full-onnx` (a larger binary)".into();
    }
    let specific = match op {
        "TreeEnsemble" | "TreeEnsembleRegressor" | "TreeEnsembleClassifier" => {
            "it is the unified tree op of ai.onnx.ml opset 5: export with `target_opset={\"\": 17, \"ai.onnx.ml\": 3}`"
        }
        "RegexFullMatch" | "StringSplit" | "StringConcat" => {
            "these string ops are not served; the runtime serves scikit-learn's text features \
             (`StringNormalizer`, `Tokenizer`, `TfIdfVectorizer`): export with `CountVectorizer` or `TfidfVectorizer`"
        }
        "Loop" | "Scan" | "If" | "SequenceAt" | "SequenceConstruct" | "SplitToSequence" | "ConcatFromSequence" => {
            "control flow and sequences are not served: export a plain tensor graph (for a classifier, \
             `options={'zipmap': False}` if the exporter added sequence ops)"
        }
        "DictVectorizer" => "dict inputs are not served: send one field per feature (a `ColumnTransformer` export)",
        _ => "no tract build has it: export the pipeline without the step that emits it",
    };
    specific.into()
}

/// Lists every op of the graph the table cannot parse, each with its nodes and a fix that is true for it.
pub fn check_supported(onnx: &Onnx, graph: &tract_onnx::pb::GraphProto) -> Result<(), String> {
    // op -> node names, in order of first appearance
    let mut missing: Vec<(&str, Vec<&str>)> = Vec::new();
    for node in graph.node.iter().filter(|n| !onnx.op_register.0.contains_key(&n.op_type)) {
        let name = if node.name.is_empty() { "(unnamed)" } else { node.name.as_str() };
        match missing.iter_mut().find(|(op, _)| *op == node.op_type) {
            Some((_, nodes)) => nodes.push(name),
            None => missing.push((&node.op_type, vec![name])),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let core: Vec<&str> = CORE.iter().map(|(name, _)| *name).collect();
    let mut ml: Vec<&str> = onnx.op_register.0.keys().map(String::as_str).filter(|k| !core.contains(k)).collect();
    ml.sort_unstable();
    let lines: Vec<String> = missing
        .iter()
        .map(|(op, nodes)| {
            let nodes = nodes.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            let plural = if nodes.contains(',') { "s" } else { "" };
            format!("  `{op}` (node{plural} {nodes}): {}", fix_for(op))
        })
        .collect();
    let table = if cfg!(feature = "full-onnx") {
        "tract's whole onnx table and mlambda's ai.onnx.ml ops".to_string()
    } else {
        format!("core {} and ai.onnx.ml {}", core.join(", "), ml.join(", "))
    };
    Err(format!(
        "the model uses {} onnx op{} mlambda's runtime does not carry:\n{}\nthe runtime carries {table}",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        lines.join("\n"),
    ))
}

type Builder = fn(&ParsingContext, &NodeProto) -> Built;

/// The core ONNX ops the table carries, with tract's implementations (wired in [`super::expansions`]
/// where tract-onnx keeps its builder private). `ArrayFeatureExtractor` is tract's, for MLP label
/// outputs; [`ml::register`] may replace it, as it may any entry here.
const CORE: &[(&str, Builder)] = &[
    ("Abs", |_, _| Ok((ops::math::abs().into_hir(), vec![]))),
    ("Add", |_, _| Ok((ops::math::Add.into_hir(), vec![]))),
    ("And", |_, _| Ok((ops::logic::And.into_hir(), vec![]))),
    ("ArrayFeatureExtractor", |_, _| Ok((expand(array::ArrayFeatureExtractor), vec![]))),
    ("Cast", |_, node| Ok((Box::new(ops::cast::cast(node.get_attr::<DatumType>("to")?)), vec![]))),
    ("Ceil", |_, _| Ok((ops::math::ceil().into_hir(), vec![]))),
    ("Clip", x::clip),
    ("Concat", |_, node| Ok((expand(array::Concat::new(node.get_attr("axis")?)), vec![]))),
    ("Constant", constant),
    ("ConstantOfShape", x::constant_of_shape),
    ("Div", |_, _| Ok((ops::math::Div.into_hir(), vec![]))),
    ("Equal", |_, _| Ok((ops::logic::CompEq.into_hir(), vec![]))),
    ("Erf", |_, _| Ok((ops::math::erf().into_hir(), vec![]))),
    ("Exp", |_, _| Ok((ops::math::exp().into_hir(), vec![]))),
    ("Flatten", x::flatten),
    ("Floor", |_, _| Ok((ops::math::floor().into_hir(), vec![]))),
    ("Gather", |_, node| Ok((expand(array::Gather::new(node.get_attr_opt("axis")?.unwrap_or(0))), vec![]))),
    ("Gemm", x::gemm),
    ("Greater", |_, _| Ok((ops::logic::CompGT.into_hir(), vec![]))),
    ("GreaterOrEqual", |_, _| Ok((ops::logic::CompGTE.into_hir(), vec![]))),
    ("Identity", |_, _| Ok((Box::<Identity>::default(), vec![]))),
    ("IsNaN", |_, _| Ok((ops::math::is_nan().into_hir(), vec![]))),
    ("LeakyRelu", |_, node| {
        Ok((expand(ops::activations::LeakyRelu(node.get_attr_opt("alpha")?.unwrap_or(0.01))), vec![]))
    }),
    ("Less", |_, _| Ok((ops::logic::CompLT.into_hir(), vec![]))),
    ("LessOrEqual", |_, _| Ok((ops::logic::CompLTE.into_hir(), vec![]))),
    ("Log", |_, _| Ok((ops::math::ln().into_hir(), vec![]))),
    ("LogSoftmax", x::log_softmax),
    ("MatMul", |_, _| Ok((expand(ops::matmul::MatMulInference::default()), vec![]))),
    ("Max", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Max), false)), vec![]))),
    ("Mean", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Add), true)), vec![]))),
    ("Min", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Min), false)), vec![]))),
    ("Mul", |_, _| Ok((ops::math::Mul.into_hir(), vec![]))),
    ("Neg", |_, _| Ok((ops::math::neg().into_hir(), vec![]))),
    ("Not", |_, _| Ok((ops::logic::not().into_hir(), vec![]))),
    ("Or", |_, _| Ok((ops::logic::Or.into_hir(), vec![]))),
    ("Pow", x::pow),
    ("Reciprocal", |_, _| Ok((ops::math::recip().into_hir(), vec![]))),
    ("ReduceL2", |c, node| x::reduce(c, node, Reducer::L2)),
    ("ReduceLogSumExp", |c, node| x::reduce(c, node, Reducer::LogSumExp)),
    ("ReduceMax", |c, node| x::reduce(c, node, Reducer::Max)),
    ("ReduceMean", |c, node| x::reduce(c, node, Reducer::Mean)),
    ("ReduceMin", |c, node| x::reduce(c, node, Reducer::Min)),
    ("ReduceProd", |c, node| x::reduce(c, node, Reducer::Prod)),
    ("ReduceSum", |c, node| x::reduce(c, node, Reducer::Sum)),
    ("ReduceSumSquare", |c, node| x::reduce(c, node, Reducer::SumSquare)),
    ("Relu", |_, _| Ok((expand(ops::activations::Clip::new(Some(0.0), None)), vec![]))),
    ("Reshape", |_, node| {
        let allowzero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) != 0;
        Ok((expand(array::Reshape::new(allowzero)), vec![]))
    }),
    ("Round", |_, _| Ok((ops::math::round_half_to_even().into_hir(), vec![]))),
    // the body of a `KNeighbors*` export's distance loop; parsed with this same table
    ("Scan", tract_onnx::ops::rec::scan::scan),
    ("Shape", x::shape),
    ("Sigmoid", |_, _| Ok((ops::nn::sigmoid().into_hir(), vec![]))),
    ("Sign", |_, _| Ok((ops::math::sign().into_hir(), vec![]))),
    ("Sqrt", |_, _| Ok((ops::math::sqrt().into_hir(), vec![]))),
    ("Squeeze", x::squeeze),
    ("Sub", |_, _| Ok((ops::math::Sub.into_hir(), vec![]))),
    ("Sum", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Add), false)), vec![]))),
    ("Tanh", |_, _| Ok((ops::math::tanh().into_hir(), vec![]))),
    ("Transpose", |_, node| {
        let perm = node.get_attr_opt_vec("perm")?;
        Ok((expand(array::PermuteAxes::new(perm.map(|t| t.into()))), vec![]))
    }),
    ("Unsqueeze", x::unsqueeze),
    ("Where", |_, _| Ok((expand(ops::logic::Iff), vec![]))),
];

fn constant(ctx: &ParsingContext, node: &NodeProto) -> Built {
    let value = if let Some(v) = node.get_attr_opt("value")? {
        ctx.load_tensor(v)?
    } else if let Some(v) = node.get_attr_opt::<f32>("value_float")? {
        tensor0(v)
    } else if let Some(v) = node.get_attr_opt_slice::<f32>("value_floats")? {
        tensor1(v)
    } else if let Some(v) = node.get_attr_opt::<i64>("value_int")? {
        tensor0(v)
    } else if let Some(v) = node.get_attr_opt_slice::<i64>("value_ints")? {
        tensor1(v)
    } else {
        bail!("Constant node {:?} has no numeric value", node.name)
    };
    Ok((Box::new(Const::new(value.into_arc_tensor())?), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_core_and_ml_ops_but_not_the_rest_of_onnx() {
        let reg = onnx().op_register;
        let core = CORE.iter().map(|(name, _)| *name);
        for op in core.chain(["TreeEnsembleClassifier", "LinearClassifier", "Scaler", "ZipMap", "MatMul", "Gemm"]) {
            assert!(reg.0.contains_key(op), "{op} missing");
        }
        assert_eq!(reg.0.contains_key("Conv"), cfg!(feature = "full-onnx"));
    }

    #[test]
    fn the_tract_op_list_is_tracts_table() {
        let mut theirs: Vec<String> = tract_onnx::onnx().op_register.0.keys().cloned().collect();
        theirs.sort_unstable();
        let mut ours: Vec<String> = TRACT_ONNX_OPS.iter().map(|s| s.to_string()).collect();
        ours.sort_unstable();
        assert_eq!(ours, theirs, "update TRACT_ONNX_OPS to tract-onnx's table");
    }

    fn graph(ops: &[(&str, &str)]) -> tract_onnx::pb::GraphProto {
        let node = |(op, name): &(&str, &str)| NodeProto {
            op_type: op.to_string(),
            name: name.to_string(),
            ..Default::default()
        };
        tract_onnx::pb::GraphProto { node: ops.iter().map(node).collect(), ..Default::default() }
    }

    #[test]
    fn every_unsupported_op_is_listed_with_a_true_fix() {
        let onnx = onnx();
        assert!(check_supported(&onnx, &graph(&[("Sub", "s"), ("Scaler", "sc"), ("MatMul", "mm")])).is_ok());
        let err = check_supported(
            &onnx,
            &graph(&[("Conv", "c1"), ("Sub", "s"), ("FancyOp", "f1"), ("Conv", "c2"), ("StringSplit", "t")]),
        )
        .unwrap_err();
        let full = cfg!(feature = "full-onnx");
        assert!(err.contains(if full { "2 onnx ops" } else { "3 onnx ops" }), "{err}");
        let line = |op: &str| err.lines().find(|l| l.contains(&format!("`{op}`"))).unwrap_or_default().to_string();
        // tract's whole table has Conv: listed with the feature that brings it, or not missing at all
        if full {
            assert!(line("Conv").is_empty(), "{err}");
        } else {
            assert!(line("Conv").contains("nodes `c1`, `c2`") && line("Conv").contains("full-onnx"), "{err}");
            assert!(err.contains("Gemm") && err.contains("TreeEnsembleClassifier"), "{err}");
        }
        assert!(line("FancyOp").contains("node `f1`") && line("FancyOp").contains("no tract build has it"), "{err}");
        assert!(line("StringSplit").contains("TfidfVectorizer"), "{err}");
        // scikit-learn's text features are carried
        assert!(check_supported(
            &onnx,
            &graph(&[("StringNormalizer", "n"), ("Tokenizer", "t"), ("TfIdfVectorizer", "v")])
        )
        .is_ok());
        // advice to rebuild only for an op tract's table has; none at all under full-onnx
        assert!(!line("FancyOp").contains("full-onnx") && !line("StringSplit").contains("full-onnx"), "{err}");
        if full {
            assert!(!err.contains("full-onnx"), "{err}");
        }
    }
}
