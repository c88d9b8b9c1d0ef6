//! `TopK`, as a `KNeighbors*` export picks its k nearest training rows with it: a selection of k per lane, not
//! a sort of the whole axis (tract's sorts every lane of 600 distances to keep 5).
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::kernel::{tensor_of, Fact, Kernel, KernelOp};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TopK", top_k);
}

fn top_k(ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let axis = node.get_attr_opt::<i64>("axis")?.unwrap_or(-1);
    let largest = node.get_attr_opt::<i64>("largest")?.unwrap_or(1) != 0;
    // k is an initializer in every export seen; a shape that depends on it must know it while the graph is typed
    let constant = node.input.get(1).and_then(|name| {
        let graph = ctx.model.graph.as_ref()?;
        let t = graph.initializer.iter().find(|t| &t.name == name)?;
        let k = ctx.load_tensor(t).ok()?.cast_to_scalar::<i64>().ok()?;
        usize::try_from(k).ok()
    });
    let k = match constant {
        Some(k) => k.to_dim(),
        None => ctx.template.symbols.new_with_prefix("k").to_dim(),
    };
    Ok((KernelOp::boxed(TopK { node: node.name.clone(), axis, largest, k }), vec![]))
}

#[derive(Debug, Clone)]
struct TopK {
    node: String,
    axis: i64,
    largest: bool,
    /// The kept count along the axis: the second input's constant value, or a symbol the run resolves.
    k: TDim,
}

impl TopK {
    fn axis(&self, rank: usize) -> TractResult<usize> {
        let axis = if self.axis < 0 { self.axis + rank as i64 } else { self.axis };
        usize::try_from(axis)
            .ok()
            .filter(|a| *a < rank)
            .ok_or_else(|| format_err!("node {:?} (TopK): axis {} is outside rank {rank}", self.node, self.axis))
    }

    /// The `k` best of one lane as (value, index), best first; ties go to the lower index, as onnxruntime's.
    fn select(&self, lane: impl Iterator<Item = (f64, usize)>, k: usize, best: &mut Vec<(f64, usize)>) {
        best.clear();
        let better = |a: &(f64, usize), b: &(f64, usize)| {
            let by_value = if self.largest { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) };
            by_value.then(a.1.cmp(&b.1)).is_lt()
        };
        for item in lane {
            if best.len() == k && !better(&item, &best[k - 1]) {
                continue;
            }
            let at = best.partition_point(|b| better(b, &item));
            best.insert(at, item);
            best.truncate(k);
        }
    }
}

impl Kernel for TopK {
    fn name(&self) -> &'static str {
        "MlambdaTopK"
    }

    fn arity(&self) -> Option<usize> {
        Some(2)
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn outputs(&self, inputs: &[Fact]) -> TractResult<TVec<(DatumType, TVec<TDim>)>> {
        let x = &inputs[0];
        ensure!(x.dt.is_float(), "node {:?} (TopK): mlambda selects over float values, got {:?}", self.node, x.dt);
        let mut shape: TVec<TDim> = x.shape.into();
        let axis = self.axis(shape.len())?;
        shape[axis] = self.k.clone();
        Ok(tvec!((x.dt, shape.clone()), (DatumType::I64, shape)))
    }

    fn eval_all(&self, inputs: &[&Tensor]) -> TractResult<TVec<Tensor>> {
        let x = inputs[0];
        let k = usize::try_from(inputs[1].cast_to_scalar::<i64>()?)
            .map_err(|_| format_err!("node {:?} (TopK): k is negative", self.node))?;
        let shape = x.shape();
        let axis = self.axis(shape.len())?;
        let along = shape[axis];
        ensure!(k <= along, "node {:?} (TopK): k = {k} but the axis has {along} values", self.node);
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let values = x.cast_to::<f64>()?;
        let values = values.try_as_plain_ram()?.as_slice::<f64>()?;
        let (mut top, mut idx) = (vec![0f64; outer * k * inner], vec![0i64; outer * k * inner]);
        let mut best = Vec::with_capacity(k + 1);
        for o in 0..outer {
            for i in 0..inner {
                let lane = (0..along).map(|a| (values[(o * along + a) * inner + i], a));
                self.select(lane, k, &mut best);
                for (j, (v, a)) in best.iter().enumerate() {
                    top[(o * k + j) * inner + i] = *v;
                    idx[(o * k + j) * inner + i] = *a as i64;
                }
            }
        }
        let mut out_shape = shape.to_vec();
        out_shape[axis] = k;
        let top = tensor_of(&out_shape, top)?.cast_to_dt(x.datum_type())?.into_owned();
        Ok(tvec!(top, tensor_of(&out_shape, idx)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(largest: bool) -> TopK {
        TopK { node: "t".into(), axis: -1, largest, k: 3.to_dim() }
    }

    #[test]
    fn the_k_best_of_each_lane_best_first_ties_to_the_lower_index() {
        let x = tensor_of(&[2, 5], vec![3f32, 1., 2., 1., 9., 0., 5., 5., 4., 8.]).unwrap();
        let k = tensor1(&[3i64]);
        let out = op(false).eval_all(&[&x, &k]).unwrap();
        assert_eq!(out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap(), &[1., 1., 2., 0., 4., 5.]);
        assert_eq!(out[1].try_as_plain_ram().unwrap().as_slice::<i64>().unwrap(), &[1, 3, 2, 0, 3, 1]);
        let out = op(true).eval_all(&[&x, &k]).unwrap();
        assert_eq!(out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap(), &[9., 3., 2., 8., 5., 5.]);
        assert_eq!(out[1].try_as_plain_ram().unwrap().as_slice::<i64>().unwrap(), &[4, 0, 2, 4, 1, 2]);
        let too_many = tensor1(&[6i64]);
        assert!(op(false).eval_all(&[&x, &too_many]).is_err());
    }
}
