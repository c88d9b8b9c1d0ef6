//! `ai.onnx.ml.ZipMap` as identity: the graph output becomes the probability tensor it was fed.
//!
//! ZipMap turns `[N, classes]` probabilities into a sequence of `{label: p}` maps, a type tract has no
//! tensor for. The runtime wants the probabilities (and reads the labels, int or string, from the proto),
//! so passing them through loses nothing.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::identity::Identity;

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("ZipMap", zipmap);
}

fn zipmap(_ctx: &ParsingContext, _node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((Box::<Identity>::default(), vec![]))
}
