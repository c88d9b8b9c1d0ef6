//! Our own `ai.onnx.ml` ops, and the core ops tract runs wrongly or slowly on these models (`Cast` with strings,
//! `TopK`, `Softmax`, `ArgMax`/`ArgMin`), registered into tract's ONNX op table. Op families depend on
//! [`attrs`], [`kernel`] and [`scoring`], never on each other.
use tract_onnx::model::OnnxOpRegister;

pub mod attrs;
pub mod cast;
pub mod encoders;
pub mod features;
pub mod imputer;
pub mod kernel;
pub mod linear;
pub mod neighbors;
pub mod normalize;
pub mod scaler;
pub mod scoring;
pub mod softmax;
pub mod svm;
pub mod text;
pub mod top_k;
pub mod tree_ensemble;
pub mod zipmap;

/// Adds (or replaces) the ops skl2onnx and onnxmltools export; called after the core table is inserted,
/// so `Cast`, `TopK`, `Softmax` and `ArgMax`/`ArgMin` here override the core entries.
pub fn register(reg: &mut OnnxOpRegister) {
    tree_ensemble::register(reg);
    linear::register(reg);
    scaler::register(reg);
    zipmap::register(reg);
    imputer::register(reg);
    encoders::register(reg);
    normalize::register(reg);
    features::register(reg);
    svm::register(reg);
    text::register(reg);
    neighbors::register(reg);
    top_k::register(reg);
    softmax::register(reg);
    cast::register(reg);
}
