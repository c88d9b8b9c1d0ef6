//! Our own `ai.onnx.ml` ops, registered into tract's ONNX op table (stock tract lacks or mis-handles them).
use tract_onnx::model::OnnxOpRegister;

pub mod scaler;
pub mod tree_ensemble;
pub mod zipmap;

/// Adds (or replaces) the ops skl2onnx exports that tract 0.23.9 cannot run as shipped.
pub fn register(reg: &mut OnnxOpRegister) {
    tree_ensemble::register(reg);
    scaler::register(reg);
    zipmap::register(reg);
}
