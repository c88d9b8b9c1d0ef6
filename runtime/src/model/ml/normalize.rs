//! `ai.onnx.ml.Normalizer` (MAX, L1, L2 per row) and `Binarizer`, in float32 like onnxruntime.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{err, slice, string_or};
use super::kernel::{nonzeros, rows_of, tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Normalizer", normalizer);
    reg.insert("Binarizer", binarizer);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Norm {
    Max,
    L1,
    L2,
}

#[derive(Debug, Clone)]
struct Normalizer {
    node: String,
    norm: Norm,
}

fn normalizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let norm = match string_or(node, "norm", "MAX")?.as_str() {
        "MAX" => Norm::Max,
        "L1" => Norm::L1,
        "L2" => Norm::L2,
        other => return Err(err(node, "norm", format!("is {other:?}; MAX, L1 or L2 are known: re-export"))),
    };
    Ok((KernelOp::boxed(Normalizer { node: node.name.clone(), norm }), vec![]))
}

/// One row, as onnxruntime's `NormalizeMax` / `NormalizeL1` / `NormalizeL2` (a zero norm leaves the row);
/// `out` is zeroed, and `nz` is scratch for the row's non-zero positions.
fn normalize_row(norm: Norm, x: &[f32], out: &mut [f32], nz: &mut Vec<usize>) {
    match norm {
        Norm::Max => {
            let max = x.iter().fold(f32::MIN, |m, v| if m < *v { *v } else { m });
            for (o, v) in out.iter_mut().zip(x) {
                *o = if max != 0.0 { v / max } else { *v };
            }
        }
        Norm::L1 => {
            let sum: f32 = x.iter().map(|v| v.abs()).sum();
            for (o, v) in out.iter_mut().zip(x) {
                *o = if sum != 0.0 { v / sum } else { *v };
            }
        }
        Norm::L2 => {
            // zeros add nothing to the sum, in order, and stay zero: a TF-IDF row is mostly zeros, and the
            // sum's chain of adds and each element's sqrt were the cost
            nonzeros(x, nz);
            let sum: f32 = nz.iter().map(|&j| x[j] * x[j]).sum();
            for &j in nz.iter() {
                let v = x[j];
                out[j] = if sum == 0.0 {
                    v
                } else if v < 0.0 {
                    -((v * v) / sum).sqrt()
                } else {
                    ((v * v) / sum).sqrt()
                };
            }
        }
    }
}

impl Kernel for Normalizer {
    fn name(&self) -> &'static str {
        "MlambdaNormalizer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        ensure!(
            inputs[0].shape.len() <= 2 && inputs[0].dt.is_number(),
            "node {:?} (Normalizer): input must be numeric [N, C] or [C], got {:?} of rank {}",
            self.node,
            inputs[0].dt,
            inputs[0].shape.len()
        );
        Ok((DatumType::F32, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0].cast_to::<f32>()?;
        let (_, width) = rows_of(x.shape());
        let data = slice::<f32>(&x)?;
        let mut out = vec![0f32; data.len()];
        if width > 0 {
            let mut nz = Vec::new();
            for (row, o) in data.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
                normalize_row(self.norm, row, o, &mut nz);
            }
        }
        tensor_of(x.shape(), out)
    }
}

#[derive(Debug, Clone)]
struct Binarizer {
    node: String,
    threshold: f32,
}

fn binarizer(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let threshold = node.get_attr_opt::<f32>("threshold")?.unwrap_or(1.0);
    Ok((KernelOp::boxed(Binarizer { node: node.name.clone(), threshold }), vec![]))
}

impl Kernel for Binarizer {
    fn name(&self) -> &'static str {
        "MlambdaBinarizer"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        ensure!(
            inputs[0].dt == DatumType::F32,
            "node {:?} (Binarizer): input is {:?}; onnxruntime binarizes float32 only: cast it first",
            self.node,
            inputs[0].dt
        );
        Ok((DatumType::F32, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = slice::<f32>(inputs[0])?;
        if let Some(i) = x.iter().position(|v| v.is_nan()) {
            bail!("node {:?} (Binarizer): input value {i} is NaN: impute missing values before binarizing", self.node);
        }
        let out = x.iter().map(|v| if *v > self.threshold { 1f32 } else { 0.0 }).collect();
        tensor_of(inputs[0].shape(), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(norm: Norm, x: Tensor) -> Vec<f32> {
        slice::<f32>(&Normalizer { node: "n".into(), norm }.eval(&[&x]).unwrap()).unwrap().to_vec()
    }

    #[test]
    fn norms_per_row_and_zero_rows_pass_through() {
        let x = tensor2(&[[3f32, -4.0], [0.0, 0.0]]);
        assert_eq!(norm(Norm::L2, x.clone()), [0.6, -0.8, 0.0, 0.0]);
        assert_eq!(norm(Norm::L1, x.clone()), [3.0 / 7.0, -4.0 / 7.0, 0.0, 0.0]);
        assert_eq!(norm(Norm::Max, x), [1.0, -4.0 / 3.0, 0.0, 0.0]);
        // integers are normalized as floats; a rank-1 input is one row
        assert_eq!(norm(Norm::L1, tensor1(&[1i64, 3])), [0.25, 0.75]);
    }

    #[test]
    fn binarizer_is_strictly_greater_and_refuses_nan() {
        let b = Binarizer { node: "b".into(), threshold: 0.5 };
        let y = b.eval(&[&tensor1(&[0.5f32, 0.6, -1.0])]).unwrap();
        assert_eq!(slice::<f32>(&y).unwrap(), [0.0, 1.0, 0.0]);
        assert!(b.eval(&[&tensor1(&[f32::NAN])]).unwrap_err().to_string().contains("impute"));
    }
}
