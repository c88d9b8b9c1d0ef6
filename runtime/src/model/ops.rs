//! The ONNX op table models are parsed with: the ops scikit-learn exports use, not all of ONNX.
//!
//! tract-onnx's own table registers every op it knows (convolutions, FFT, attention, ...), and since ops
//! are looked up by name at run time, the linker keeps them all: about 10 MB of a Lambda binary that
//! serves tree ensembles and linear models. This table lists what skl2onnx emits for numeric
//! pipelines, with tract's implementations for core ops and ours for `ai.onnx.ml`
//! ([`super::ml`]). Build with the `full-onnx` feature to parse with tract's whole table instead.
use tract_onnx::model::{Onnx, OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::{self, array, binary::Nary, identity::Identity, konst::Const};

use super::ml;

type Built = TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// Core ONNX ops the table carries, for documentation and for the error on anything else.
pub const CORE_OPS: &[&str] = &[
    "Abs",
    "Add",
    "Cast",
    "Ceil",
    "Concat",
    "Constant",
    "Div",
    "Exp",
    "Flatten",
    "Floor",
    "Identity",
    "Log",
    "Max",
    "Min",
    "Mul",
    "Neg",
    "Reciprocal",
    "Reshape",
    "Sigmoid",
    "Sqrt",
    "Sub",
    "Sum",
    "Tanh",
];

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
    let mut reg = OnnxOpRegister::default();
    core(&mut reg);
    ml::register(&mut reg);
    debug_assert!(CORE_OPS.iter().all(|op| reg.0.contains_key(*op)));
    Onnx { op_register: reg, ..Onnx::default() }
}

/// Names the first op of the graph the table cannot parse, with what it can and the way out.
pub fn check_supported(onnx: &Onnx, graph: &tract_onnx::pb::GraphProto) -> Result<(), String> {
    let Some(node) = graph.node.iter().find(|n| !onnx.op_register.0.contains_key(&n.op_type)) else {
        return Ok(());
    };
    let mut ml: Vec<&str> = onnx.op_register.0.keys().map(String::as_str).filter(|k| !CORE_OPS.contains(k)).collect();
    ml.sort_unstable();
    Err(format!(
        "the model uses the ONNX op {:?} (node {:?}), which mlambda's runtime does not carry; it runs {} and \
         ai.onnx.ml {}. Export the pipeline without it, or build the runtime with `--features full-onnx` for \
         all of tract's ops (a larger binary)",
        node.op_type,
        node.name,
        CORE_OPS.join(", "),
        ml.join(", ")
    ))
}

fn core(reg: &mut OnnxOpRegister) {
    reg.insert("Identity", |_, _| Ok((Box::<Identity>::default(), vec![])));
    reg.insert("Constant", constant);
    reg.insert("Cast", |_, node| Ok((Box::new(ops::cast::cast(node.get_attr::<DatumType>("to")?)), vec![])));

    reg.insert("Add", |_, _| Ok((ops::math::Add.into_hir(), vec![])));
    reg.insert("Sub", |_, _| Ok((ops::math::Sub.into_hir(), vec![])));
    reg.insert("Mul", |_, _| Ok((ops::math::Mul.into_hir(), vec![])));
    reg.insert("Div", |_, _| Ok((ops::math::Div.into_hir(), vec![])));
    reg.insert("Sum", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Add), false)), vec![])));
    reg.insert("Max", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Max), false)), vec![])));
    reg.insert("Min", |_, _| Ok((Box::new(Nary(Box::new(ops::math::Min), false)), vec![])));

    reg.insert("Abs", |_, _| Ok((ops::math::abs().into_hir(), vec![])));
    reg.insert("Neg", |_, _| Ok((ops::math::neg().into_hir(), vec![])));
    reg.insert("Exp", |_, _| Ok((ops::math::exp().into_hir(), vec![])));
    reg.insert("Log", |_, _| Ok((ops::math::ln().into_hir(), vec![])));
    reg.insert("Sqrt", |_, _| Ok((ops::math::sqrt().into_hir(), vec![])));
    reg.insert("Reciprocal", |_, _| Ok((ops::math::recip().into_hir(), vec![])));
    reg.insert("Floor", |_, _| Ok((ops::math::floor().into_hir(), vec![])));
    reg.insert("Ceil", |_, _| Ok((ops::math::ceil().into_hir(), vec![])));
    reg.insert("Tanh", |_, _| Ok((ops::math::tanh().into_hir(), vec![])));
    reg.insert("Sigmoid", |_, _| Ok((ops::nn::sigmoid().into_hir(), vec![])));

    reg.insert("Concat", |_, node| Ok((expand(array::Concat::new(node.get_attr("axis")?)), vec![])));
    reg.insert("Flatten", |_, node| Ok((expand(array::Flatten::new(node.get_attr_opt("axis")?.unwrap_or(1))), vec![])));
    reg.insert("Reshape", |_, node| {
        let allowzero = node.get_attr_opt::<i64>("allowzero")?.unwrap_or(0) != 0;
        Ok((expand(array::Reshape::new(allowzero)), vec![]))
    });
}

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
        for op in CORE_OPS.iter().chain(&["TreeEnsembleClassifier", "LinearClassifier", "Scaler", "ZipMap"]) {
            assert!(reg.0.contains_key(*op), "{op} missing");
        }
        assert_eq!(reg.0.contains_key("Conv"), cfg!(feature = "full-onnx"));
    }

    #[test]
    fn an_op_outside_the_table_is_named_with_the_way_out() {
        let onnx = onnx();
        let node = |op: &str| NodeProto { op_type: op.into(), name: format!("n_{op}"), ..Default::default() };
        let mut graph = tract_onnx::pb::GraphProto { node: vec![node("Sub"), node("Scaler")], ..Default::default() };
        assert!(check_supported(&onnx, &graph).is_ok());
        graph.node.push(node("SVMClassifier"));
        let err = check_supported(&onnx, &graph).unwrap_err();
        assert!(
            err.contains("\"SVMClassifier\"") && err.contains("n_SVMClassifier") && err.contains("full-onnx"),
            "{err}"
        );
        assert!(err.contains("TreeEnsembleClassifier") && err.contains("Sigmoid"), "{err}");
    }
}
