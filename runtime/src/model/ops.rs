//! The ONNX op table models are parsed with: the ops scikit-learn exports use, not all of ONNX.
//!
//! tract-onnx's own table registers every op it knows (convolutions, FFT, attention, ...), and since ops
//! are looked up by name at run time, the linker keeps them all: about 10 MB of a Lambda binary that
//! serves tree ensembles and linear models. This table lists what skl2onnx emits for numeric
//! pipelines, with tract's implementations for core ops and ours for `ai.onnx.ml`
//! ([`super::ml`]). Build with the `full-onnx` feature to parse with tract's whole table instead.
use tract_onnx::model::{Onnx, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::{self, array, binary::Nary, identity::Identity, konst::Const};

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

/// Names the first op of the graph the table cannot parse, with what it can and the way out.
pub fn check_supported(onnx: &Onnx, graph: &tract_onnx::pb::GraphProto) -> Result<(), String> {
    let Some(node) = graph.node.iter().find(|n| !onnx.op_register.0.contains_key(&n.op_type)) else {
        return Ok(());
    };
    let core: Vec<&str> = CORE.iter().map(|(name, _)| *name).collect();
    let mut ml: Vec<&str> = onnx.op_register.0.keys().map(String::as_str).filter(|k| !core.contains(k)).collect();
    ml.sort_unstable();
    Err(format!(
        "the model uses the ONNX op {:?} (node {:?}), which mlambda's runtime does not carry; it runs {} and \
         ai.onnx.ml {}. Export the pipeline without it, or build the runtime with `--features full-onnx` for \
         all of tract's ops (a larger binary)",
        node.op_type,
        node.name,
        core.join(", "),
        ml.join(", ")
    ))
}

type Builder = fn(&ParsingContext, &NodeProto) -> Built;

/// The core ONNX ops the table carries, with tract's implementations.
const CORE: &[(&str, Builder)] = &[
    ("Abs", |_, _| Ok((ops::math::abs().into_hir(), vec![]))),
    ("Add", |_, _| Ok((ops::math::Add.into_hir(), vec![]))),
    ("Cast", |_, node| Ok((Box::new(ops::cast::cast(node.get_attr::<DatumType>("to")?)), vec![]))),
    ("Ceil", |_, _| Ok((ops::math::ceil().into_hir(), vec![]))),
    ("Concat", |_, node| Ok((expand(array::Concat::new(node.get_attr("axis")?)), vec![]))),
    ("Constant", constant),
    ("Div", |_, _| Ok((ops::math::Div.into_hir(), vec![]))),
    ("Exp", |_, _| Ok((ops::math::exp().into_hir(), vec![]))),
    ("Flatten", |_, node| Ok((expand(array::Flatten::new(node.get_attr_opt("axis")?.unwrap_or(1))), vec![]))),
    ("Floor", |_, _| Ok((ops::math::floor().into_hir(), vec![]))),
    ("Identity", |_, _| Ok((Box::<Identity>::default(), vec![]))),
    ("Log", |_, _| Ok((ops::math::ln().into_hir(), vec![]))),
    ("Max", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Max), false)), vec![]))),
    ("Min", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Min), false)), vec![]))),
    ("Mul", |_, _| Ok((ops::math::Mul.into_hir(), vec![]))),
    ("Neg", |_, _| Ok((ops::math::neg().into_hir(), vec![]))),
    ("Reciprocal", |_, _| Ok((ops::math::recip().into_hir(), vec![]))),
    ("Reshape", |_, node| {
        let allowzero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) != 0;
        Ok((expand(array::Reshape::new(allowzero)), vec![]))
    }),
    ("Sigmoid", |_, _| Ok((ops::nn::sigmoid().into_hir(), vec![]))),
    ("Sqrt", |_, _| Ok((ops::math::sqrt().into_hir(), vec![]))),
    ("Sub", |_, _| Ok((ops::math::Sub.into_hir(), vec![]))),
    ("Sum", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Add), false)), vec![]))),
    ("Tanh", |_, _| Ok((ops::math::tanh().into_hir(), vec![]))),
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
        for op in core.chain(["TreeEnsembleClassifier", "LinearClassifier", "Scaler", "ZipMap"]) {
            assert!(reg.0.contains_key(op), "{op} missing");
        }
        assert_eq!(reg.0.contains_key("Conv"), cfg!(feature = "full-onnx"));
    }

    #[test]
    fn an_op_outside_the_table_is_named_with_the_way_out() {
        let onnx = onnx();
        let node = |op: &str| NodeProto { op_type: op.into(), name: format!("n_{op}"), ..Default::default() };
        let mut graph = tract_onnx::pb::GraphProto { node: vec![node("Sub"), node("Scaler")], ..Default::default() };
        assert!(check_supported(&onnx, &graph).is_ok());
        graph.node.push(node("Conv"));
        let err = check_supported(&onnx, &graph).unwrap_err();
        assert!(err.contains("\"Conv\"") && err.contains("n_Conv") && err.contains("full-onnx"), "{err}");
        assert!(err.contains("TreeEnsembleClassifier") && err.contains("Sigmoid"), "{err}");
    }
}
