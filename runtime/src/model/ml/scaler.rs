//! `ai.onnx.ml.Scaler`: `y = (x - offset) * scale` in float32, as onnxruntime computes it.
//!
//! Wired as core Sub and Mul so the arithmetic (and its rounding) is exactly onnxruntime's.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_core::ops::change_axes::wire_with_rank_broadcast;
use tract_onnx::tract_hir::tract_core::ops::{cast::cast, math};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Scaler", scaler);
}

#[derive(Debug, Clone)]
struct Scaler {
    offset: Vec<f32>,
    scale: Vec<f32>,
}

fn scaler(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let offset = node.get_attr_opt_vec::<f32>("offset")?.unwrap_or_else(|| vec![0.0]);
    let scale = node.get_attr_opt_vec::<f32>("scale")?.unwrap_or_else(|| vec![1.0]);
    ensure!(!offset.is_empty() && !scale.is_empty(), "Scaler offset and scale must not be empty");
    Ok((expand(Scaler { offset, scale }), vec![]))
}

impl Expansion for Scaler {
    fn name(&self) -> StaticName {
        "MlambdaScaler".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, 1)?;
        s.equals(&outputs[0].datum_type, DatumType::F32)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        let mut x = inputs[0];
        let fact = model.outlet_fact(x)?.clone();
        if fact.datum_type != f32::datum_type() {
            x = model.wire_node(format!("{prefix}.to_f32"), cast(f32::datum_type()), &[x])?[0];
        }
        let width = fact.shape.last().and_then(|d| d.to_usize().ok());
        for (name, v) in [("offset", &self.offset), ("scale", &self.scale)] {
            ensure!(
                v.len() == 1 || Some(v.len()) == width,
                "Scaler {name} has {} values but the input has {width:?} features",
                v.len()
            );
        }
        let offset = model.add_const(format!("{prefix}.offset"), rctensor1(&self.offset))?;
        let scale = model.add_const(format!("{prefix}.scale"), rctensor1(&self.scale))?;
        let centered = wire_with_rank_broadcast(format!("{prefix}.sub"), model, math::sub(), &[x, offset])?;
        wire_with_rank_broadcast(format!("{prefix}.mul"), model, math::mul(), &[centered[0], scale])
    }
}
