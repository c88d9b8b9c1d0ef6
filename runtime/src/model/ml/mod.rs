//! Our own `ai.onnx.ml` ops, registered into tract's ONNX op table (stock tract lacks or mis-handles them).
use tract_onnx::model::OnnxOpRegister;

pub mod linear;
pub mod scaler;
pub mod scoring;
pub mod tree_ensemble;
pub mod zipmap;

/// Adds (or replaces) the `ai.onnx.ml` ops skl2onnx exports: tract 0.23.9 lacks them or runs them wrong.
pub fn register(reg: &mut OnnxOpRegister) {
    tree_ensemble::register(reg);
    linear::register(reg);
    scaler::register(reg);
    zipmap::register(reg);
}
