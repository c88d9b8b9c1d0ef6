//! `ai.onnx.ml.Imputer` (scikit-learn's `SimpleImputer`): replaces one marker value (NaN included) with
//! a fill value per column, as onnxruntime's `imputer.cc` does.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{err, floats, ints, slice};
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Imputer", imputer);
}

#[derive(Debug, Clone, PartialEq)]
enum Fill {
    Float { replaced: f32, values: Vec<f32> },
    Int { replaced: i64, values: Vec<i64> },
}

#[derive(Debug, Clone)]
struct Imputer {
    node: String,
    fill: Fill,
}

fn imputer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let f = floats(node, "imputed_value_floats")?;
    let i = ints(node, "imputed_value_int64s")?;
    let fill = match (f.is_empty(), i.is_empty()) {
        (false, true) => {
            let replaced = node.get_attr_opt::<f32>("replaced_value_float")?.unwrap_or(0.0);
            Fill::Float { replaced, values: f }
        }
        (true, false) => {
            let replaced = node.get_attr_opt::<i64>("replaced_value_int64")?.unwrap_or(0);
            Fill::Int { replaced, values: i.to_vec() }
        }
        _ => {
            return Err(err(
                node,
                "imputed_value_floats",
                "and `imputed_value_int64s`: exactly one must be set; re-export the imputer",
            ))
        }
    };
    Ok((KernelOp::boxed(Imputer { node: node.name.clone(), fill }), vec![]))
}

/// onnxruntime: one fill value per column when there are exactly as many as columns, else the first for all.
fn impute<T: Copy>(x: &[T], stride: usize, values: &[T], is_marker: impl Fn(T) -> bool) -> Vec<T> {
    let per_column = values.len() == stride;
    x.iter()
        .enumerate()
        .map(|(i, &v)| if is_marker(v) { values[if per_column { i % stride } else { 0 }] } else { v })
        .collect()
}

impl Kernel for Imputer {
    fn name(&self) -> &'static str {
        "MlambdaImputer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let want = match self.fill {
            Fill::Float { .. } => DatumType::F32,
            Fill::Int { .. } => DatumType::I64,
        };
        ensure!(
            inputs[0].dt == want,
            "node {:?} (Imputer): input is {:?} but the fill values are {want:?}: cast the column first",
            self.node,
            inputs[0].dt
        );
        Ok((want, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let shape = x.shape();
        ensure!(!shape.is_empty(), "node {:?} (Imputer): the input has no dimensions", self.node);
        // onnxruntime's stride is dims[1] (or dims[0] for a vector), whatever the rank
        let stride = if shape.len() == 1 { shape[0] } else { shape[1] };
        match &self.fill {
            Fill::Float { replaced, values } => {
                let r = *replaced;
                let out = impute(slice::<f32>(x)?, stride, values, |v| (v.is_nan() && r.is_nan()) || v == r);
                tensor_of(shape, out)
            }
            Fill::Int { replaced, values } => {
                let out = impute(slice::<i64>(x)?, stride, values, |v| v == *replaced);
                tensor_of(shape, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fill: Fill, x: Tensor) -> Tensor {
        Imputer { node: "imp".into(), fill }.eval(&[&x]).unwrap()
    }

    #[test]
    fn nan_is_replaced_per_column_or_with_one_value() {
        let x = tensor2(&[[f32::NAN, 1.0], [2.0, f32::NAN]]);
        let y = run(Fill::Float { replaced: f32::NAN, values: vec![10.0, 20.0] }, x.clone());
        assert_eq!(slice::<f32>(&y).unwrap(), [10.0, 1.0, 2.0, 20.0]);
        let y = run(Fill::Float { replaced: f32::NAN, values: vec![7.0] }, x.clone());
        assert_eq!(slice::<f32>(&y).unwrap(), [7.0, 1.0, 2.0, 7.0]);
        // a non-NaN marker leaves NaN alone
        let y = run(Fill::Float { replaced: 1.0, values: vec![7.0] }, x);
        let y = slice::<f32>(&y).unwrap();
        assert!(y[0].is_nan() && y[1] == 7.0);
        let y = run(Fill::Int { replaced: -1, values: vec![5, 6] }, tensor2(&[[-1i64, 3], [4, -1]]));
        assert_eq!(slice::<i64>(&y).unwrap(), [5, 3, 4, 6]);
    }
}
