//! Our own `ai.onnx.ml` ops (and `Cast` with strings), registered into tract's ONNX op table: stock tract
//! lacks or mis-handles them. Op families depend on [`attrs`] and [`scoring`], never on each other.
use tract_onnx::model::OnnxOpRegister;

pub mod attrs;
pub mod linear;
pub mod scaler;
pub mod scoring;
pub mod tree_ensemble;
pub mod zipmap;

/// Adds (or replaces) the ops skl2onnx and onnxmltools export; called after the core table is inserted,
/// so `Cast` here overrides the core entry.
pub fn register(reg: &mut OnnxOpRegister) {
    tree_ensemble::register(reg);
    linear::register(reg);
    scaler::register(reg);
    zipmap::register(reg);
}
