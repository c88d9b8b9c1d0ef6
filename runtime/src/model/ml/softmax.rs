//! `Softmax`, `ArgMax` and `ArgMin` over a classifier's few columns, the head of every MLP and
//! LogisticRegression export. tract's versions are built for long lanes (64 floats at a time, through ndarray
//! views): on three columns a row they took half of a small MLP's batch (`perf`, `bench_model --threads 1`).
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::tract_num_traits::Float;

use super::attrs::slice;
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("Softmax", softmax);
    reg.insert("ArgMax", arg_max_min);
    reg.insert("ArgMin", arg_max_min);
}

fn softmax(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    // before opset 13 the input is read as 2-D, `[d0 × … × d(axis-1), d(axis) × … × dn]`, one softmax a row
    let coerce = ctx.onnx_operator_set_version < 13;
    let axis = node.get_attr_opt::<i64>("axis")?.unwrap_or(if coerce { 1 } else { -1 });
    Ok((KernelOp::boxed(Softmax { node: node.name.clone(), axis, coerce }), vec![]))
}

fn arg_max_min(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let op = ArgExt {
        node: node.name.clone(),
        max: node.op_type == "ArgMax",
        axis: node.get_attr_opt::<i64>("axis")?.unwrap_or(0),
        keep_dims: node.get_attr_opt::<i64>("keepdims")?.unwrap_or(1) != 0,
        last: node.get_attr_opt::<i64>("select_last_index")?.unwrap_or(0) != 0,
    };
    Ok((KernelOp::boxed(op), vec![]))
}

/// `axis` of a rank-`rank` tensor, negative counting from the end, checked.
fn axis_of(node: &str, op: &str, axis: i64, rank: usize) -> TractResult<usize> {
    let at = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(at)
        .ok()
        .filter(|a| *a < rank.max(1))
        .ok_or_else(|| format_err!("node {node:?} ({op}): axis {axis} is outside rank {rank}: re-export the model"))
}

/// `(outer, lane, inner)`: the element `k` of lane `(o, i)` is at `(o * lane + k) * inner + i`.
fn lanes(shape: &[usize], axis: usize, to_end: bool) -> (usize, usize, usize) {
    let outer = shape[..axis.min(shape.len())].iter().product();
    if to_end {
        return (outer, shape[axis.min(shape.len())..].iter().product(), 1);
    }
    (outer, shape.get(axis).copied().unwrap_or(1), shape.get(axis + 1..).map_or(1, |s| s.iter().product()))
}

#[derive(Debug, Clone)]
struct Softmax {
    node: String,
    axis: i64,
    coerce: bool,
}

/// onnxruntime's (MLAS) order: the lane's maximum, `exp(x - max)` summed, then each times `1 / sum`.
fn softmax_lanes<T: Float>(x: &[T], (outer, lane, inner): (usize, usize, usize)) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * lane + k) * inner + i;
            let max = (0..lane).map(|k| x[at(k)]).fold(T::neg_infinity(), |m, v| if v > m { v } else { m });
            let mut sum = T::zero();
            for k in 0..lane {
                let e = (x[at(k)] - max).exp();
                out[at(k)] = e;
                sum = sum + e;
            }
            let scale = T::one() / sum;
            for k in 0..lane {
                out[at(k)] = out[at(k)] * scale;
            }
        }
    }
    out
}

impl Kernel for Softmax {
    fn name(&self) -> &'static str {
        "MlambdaSoftmax"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        ensure!(
            inputs[0].dt.is_float() && inputs[0].dt != DatumType::F16,
            "node {:?} (Softmax): input is {:?}; float32 or float64 are served: cast it first",
            self.node,
            inputs[0].dt
        );
        axis_of(&self.node, "Softmax", self.axis, inputs[0].shape.len())?;
        Ok((inputs[0].dt, inputs[0].shape.into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let shape = x.shape();
        let lanes = lanes(shape, axis_of(&self.node, "Softmax", self.axis, shape.len())?, self.coerce);
        match x.datum_type() {
            DatumType::F64 => tensor_of(shape, softmax_lanes(slice::<f64>(x)?, lanes)),
            _ => tensor_of(shape, softmax_lanes(slice::<f32>(x)?, lanes)),
        }
    }
}

#[derive(Debug, Clone)]
struct ArgExt {
    node: String,
    max: bool,
    axis: i64,
    keep_dims: bool,
    /// `select_last_index`: ties go to the last index instead of the first.
    last: bool,
}

impl ArgExt {
    fn op(&self) -> &'static str {
        if self.max {
            "ArgMax"
        } else {
            "ArgMin"
        }
    }

    fn indices<T: PartialOrd + Copy>(&self, x: &[T], (outer, lane, inner): (usize, usize, usize)) -> Vec<i64> {
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * lane + k) * inner + i;
                let mut best = 0;
                for k in 1..lane {
                    let (v, b) = (x[at(k)], x[at(best)]);
                    let better = match (self.max, self.last) {
                        (true, false) => v > b,
                        (true, true) => v >= b,
                        (false, false) => v < b,
                        (false, true) => v <= b,
                    };
                    if better {
                        best = k;
                    }
                }
                out.push(best as i64);
            }
        }
        out
    }

    fn shape<D: Clone + From<usize>>(&self, shape: &[D], axis: usize) -> Vec<D> {
        let mut out = shape.to_vec();
        if self.keep_dims {
            out[axis] = D::from(1);
        } else {
            out.remove(axis);
        }
        out
    }
}

impl Kernel for ArgExt {
    fn name(&self) -> &'static str {
        if self.max {
            "MlambdaArgMax"
        } else {
            "MlambdaArgMin"
        }
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let shape = inputs[0].shape;
        ensure!(!shape.is_empty(), "node {:?} ({}): input is a scalar; it needs an axis", self.node, self.op());
        let axis = axis_of(&self.node, self.op(), self.axis, shape.len())?;
        Ok((DatumType::I64, self.shape(shape, axis).into()))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let x = inputs[0];
        let shape = x.shape();
        let axis = axis_of(&self.node, self.op(), self.axis, shape.len())?;
        let lanes = lanes(shape, axis, false);
        let out = match x.datum_type() {
            DatumType::F32 => self.indices(slice::<f32>(x)?, lanes),
            DatumType::F64 => self.indices(slice::<f64>(x)?, lanes),
            DatumType::I64 => self.indices(slice::<i64>(x)?, lanes),
            DatumType::I32 => self.indices(slice::<i32>(x)?, lanes),
            other => {
                bail!("node {:?} ({}): input is {other:?}; numbers are served: cast it first", self.node, self.op())
            }
        };
        tensor_of(&self.shape(shape, axis), out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(axis: i64, coerce: bool, x: Tensor) -> Tensor {
        Softmax { node: "s".into(), axis, coerce }.eval(&[&x]).unwrap()
    }

    #[test]
    fn softmax_normalises_each_lane_like_onnxruntime() {
        let y = softmax(-1, false, tensor2(&[[1f32, 2.0, 3.0], [0.0, 0.0, 0.0]]));
        let got = slice::<f32>(&y).unwrap();
        let e = [1f32.exp(), 2f32.exp(), 3f32.exp()];
        let s: f32 = e.iter().sum();
        for (g, want) in got[..3].iter().zip(e.iter().map(|v| v / s)) {
            assert!((g - want).abs() < 1e-7, "{g} vs {want}");
        }
        assert_eq!(&got[3..], &[1.0 / 3.0; 3]);
        // huge logits do not overflow: the maximum is taken out first
        let y = softmax(1, false, tensor2(&[[1000f64, 1000.0]]));
        assert_eq!(slice::<f64>(&y).unwrap(), &[0.5, 0.5]);
    }

    #[test]
    fn softmax_axes_follow_the_opset() {
        let x = tensor3(&[[[0f32, 1.0], [2.0, 3.0]]]);
        // opset 13: along axis 1 only, so each column of the 2×2 is one lane
        let y = softmax(1, false, x.clone());
        let v = slice::<f32>(&y).unwrap();
        assert!((v[0] + v[2] - 1.0).abs() < 1e-6 && (v[1] + v[3] - 1.0).abs() < 1e-6);
        // opset < 13: from axis 1 to the end is one lane of four
        let y = softmax(1, true, x);
        assert!((slice::<f32>(&y).unwrap().iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn arg_max_and_min_break_ties_as_asked_and_keep_or_drop_the_axis() {
        let x = tensor2(&[[1f32, 3.0, 3.0], [2.0, 0.0, 2.0]]);
        let arg = |max, last, keep_dims| {
            let op = ArgExt { node: "a".into(), max, axis: 1, keep_dims, last };
            let y = op.eval(&[&x]).unwrap();
            (y.shape().to_vec(), slice::<i64>(&y).unwrap().to_vec())
        };
        assert_eq!(arg(true, false, true), (vec![2, 1], vec![1, 0]));
        assert_eq!(arg(true, true, false), (vec![2], vec![2, 2]));
        assert_eq!(arg(false, false, false), (vec![2], vec![0, 1]));
        let op = ArgExt { node: "a".into(), max: true, axis: 0, keep_dims: false, last: false };
        assert_eq!(slice::<i64>(&op.eval(&[&x]).unwrap()).unwrap(), &[1, 0, 0]);
    }
}
