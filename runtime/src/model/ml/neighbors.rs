//! Nearest-neighbour distances: the `Scan` that skl2onnx writes for a `KNeighbors*` model's squared euclidean
//! distances, fused at load into one op. tract runs the `Scan` body once per training row (a `Sub` and a
//! `ReduceSumSquare` of a few values each time); the fused op makes the same sums in one pass.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::{GraphProto, NodeProto};
use tract_onnx::tract_hir::internal::*;

use super::attrs::slice;
use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

const FUSED: &str = "MlambdaSquaredDistances";

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert(FUSED, squared_distances);
}

fn squared_distances(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((KernelOp::boxed(SquaredDistances { node: node.name.clone() }), vec![]))
}

/// Inputs: the rows `X [N, K]` (the `Scan`'s state) and the training rows `T [M, K]` (its scanned input).
/// Outputs: `X` (the state the `Scan` hands back) and `D [M, N]`, `D[m, n] = Σₖ (X[n, k] - T[m, k])²`.
#[derive(Debug, Clone)]
struct SquaredDistances {
    node: String,
}

impl Kernel for SquaredDistances {
    fn name(&self) -> &'static str {
        FUSED
    }

    fn arity(&self) -> Option<usize> {
        Some(2)
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn outputs(&self, inputs: &[Fact]) -> TractResult<TVec<(DatumType, TVec<TDim>)>> {
        let (x, t) = (inputs[0].shape, inputs[1].shape);
        ensure!(
            x.len() == 2 && t.len() == 2 && inputs[0].dt == DatumType::F32 && inputs[1].dt == DatumType::F32,
            "node {:?} (Scan): expected float [N, K] rows and [M, K] training rows",
            self.node
        );
        Ok(tvec!((DatumType::F32, x.into()), (DatumType::F32, tvec!(t[0].clone(), x[0].clone()))))
    }

    fn eval_all(&self, inputs: &[&Tensor]) -> TractResult<TVec<Tensor>> {
        let (x, t) = (inputs[0], inputs[1]);
        let (n, k, m) = (x.shape()[0], x.shape()[1], t.shape()[0]);
        ensure!(
            t.shape()[1] == k,
            "node {:?} (Scan): rows have {k} columns, training rows {}",
            self.node,
            t.shape()[1]
        );
        let (xs, ts) = (slice::<f32>(x)?, slice::<f32>(t)?);
        let mut d = Vec::with_capacity(m * n);
        for train in ts.chunks(k.max(1)).take(m) {
            for row in xs.chunks(k.max(1)).take(n) {
                // in column order, in float32, as the Sub + ReduceSumSquare it replaces
                let mut sum = 0f32;
                for (a, b) in row.iter().zip(train) {
                    let diff = a - b;
                    sum += diff * diff;
                }
                d.push(sum);
            }
        }
        Ok(tvec!(x.clone(), tensor_of(&[m, n], d)?))
    }
}

/// The body skl2onnx writes for squared euclidean distances, exactly: the state passed through, `Sub` of the
/// state and the scanned row, `ReduceSumSquare` over axis 1 without keeping it, that sum scanned out.
fn is_squared_distance_body(body: &GraphProto) -> bool {
    let [state, row] = body.input.as_slice() else { return false };
    let [state_out, scan_out] = body.output.as_slice() else { return false };
    let ops: Vec<&str> = body.node.iter().map(|n| n.op_type.as_str()).collect();
    if ops != ["Identity", "Sub", "ReduceSumSquare", "Identity"] {
        return false;
    }
    let (pass, sub, reduce, out) = (&body.node[0], &body.node[1], &body.node[2], &body.node[3]);
    let attr = |n: &NodeProto, name: &str| n.attribute.iter().find(|a| a.name == name).cloned();
    let axes_one = attr(reduce, "axes").is_some_and(|a| a.ints == [1]);
    let no_keep = attr(reduce, "keepdims").is_some_and(|a| a.i == 0);
    pass.input == [state.name.clone()]
        && pass.output == [state_out.name.clone()]
        && sub.input == [state.name.clone(), row.name.clone()]
        && reduce.input == sub.output
        && reduce.input.len() == 1
        && axes_one
        && no_keep
        && out.input == reduce.output
        && out.output == [scan_out.name.clone()]
}

/// Replaces each `Scan` whose body is [`is_squared_distance_body`], over one scanned initializer along axis
/// 0, by a [`FUSED`] node with the same inputs and outputs. Other graphs are untouched.
pub fn fuse(graph: &mut GraphProto) {
    let initializers: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Scan") {
        let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
        let Some(body) = attr("body").and_then(|a| a.g.as_ref()) else { continue };
        let one_scanned = attr("num_scan_inputs").is_some_and(|a| a.i == 1);
        let default_axes = ["scan_input_axes", "scan_output_axes", "scan_input_directions", "scan_output_directions"]
            .iter()
            .all(|name| attr(name).is_none_or(|a| a.ints.iter().all(|v| *v == 0)));
        let scanned_constant = node.input.get(1).is_some_and(|i| initializers.contains(i));
        if one_scanned && default_axes && scanned_constant && node.input.len() == 2 && is_squared_distance_body(body) {
            node.op_type = FUSED.to_string();
            node.domain = String::new();
            node.attribute.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squared_distances_are_sums_over_columns_per_training_row() {
        let x = tensor_of(&[2, 2], vec![1f32, 0., 0., 2.]).unwrap();
        let t = tensor_of(&[3, 2], vec![0f32, 0., 1., 1., 2., 0.]).unwrap();
        let out = SquaredDistances { node: "s".into() }.eval_all(&[&x, &t]).unwrap();
        assert_eq!(out[0], x);
        assert_eq!(out[1].shape(), &[3, 2]);
        // what onnxruntime computed for the same Scan: [[1, 4], [1, 2], [1, 8]]
        assert_eq!(slice::<f32>(&out[1]).unwrap(), &[1., 4., 1., 2., 1., 8.]);
    }
}
