//! The one tract op behind every single-output `ai.onnx.ml` preprocessing op (Imputer, encoders, Cast,
//! ...): an op family implements [`Kernel`] (its output type and shape, and its eval), this module turns
//! that into tract's inference rules, typed facts and eval.
use std::sync::Arc;

use tract_onnx::tract_hir::internal::*;

/// One input's type and shape as a kernel sees them while the graph is typed.
pub struct Fact<'a> {
    pub dt: DatumType,
    pub shape: &'a [TDim],
}

pub trait Kernel: std::fmt::Debug + Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// How many inputs the op takes (`None`: one or more).
    fn arity(&self) -> Option<usize> {
        Some(1)
    }
    /// The output's datum type and shape, or an error that names the node and the fix. Single-output ops
    /// implement this and `eval`; an op with several outputs implements the three below instead.
    fn output(&self, _inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        bail!("{} has several outputs: it answers `outputs`, not `output`", self.name())
    }
    fn eval(&self, _inputs: &[&Tensor]) -> TractResult<Tensor> {
        bail!("{} has several outputs: it answers `eval_all`, not `eval`", self.name())
    }

    /// Ops with several outputs (classifiers) override these three instead of `output` and `eval`.
    fn n_outputs(&self) -> usize {
        1
    }
    fn outputs(&self, inputs: &[Fact]) -> TractResult<TVec<(DatumType, TVec<TDim>)>> {
        Ok(tvec!(self.output(inputs)?))
    }
    fn eval_all(&self, inputs: &[&Tensor]) -> TractResult<TVec<Tensor>> {
        Ok(tvec!(self.eval(inputs)?))
    }
}

#[derive(Debug, Clone)]
pub struct KernelOp(pub Arc<dyn Kernel>);

impl KernelOp {
    pub fn boxed(kernel: impl Kernel) -> Box<dyn InferenceOp> {
        expand(KernelOp(Arc::new(kernel)))
    }
}

// identity, for the same reason as `ScoreOp`: ops are equal only when they share their data
impl PartialEq for KernelOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}
impl Eq for KernelOp {}

impl Op for KernelOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }
    op_as_typed_op!();
}

impl EvalOp for KernelOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        after_tract();
        let tensors: Vec<&Tensor> = inputs.iter().map(|v| &**v).collect();
        Ok(self.0.eval_all(&tensors)?.into_iter().map(|t| t.into_tvalue()).collect())
    }
}

impl TypedOp for KernelOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let shapes: Vec<TVec<TDim>> = inputs.iter().map(|f| f.shape.to_tvec()).collect();
        let facts: Vec<Fact> = inputs.iter().zip(&shapes).map(|(f, s)| Fact { dt: f.datum_type, shape: s }).collect();
        Ok(self.0.outputs(&facts)?.into_iter().map(|(dt, shape)| dt.fact(shape)).collect())
    }
    as_op!();
}

impl Expansion for KernelOp {
    fn name(&self) -> StaticName {
        self.0.name().into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(self.0.n_outputs())
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if let Some(n) = self.0.arity() {
            check_input_arity(inputs, n)?;
        }
        check_output_arity(outputs, self.0.n_outputs())?;
        let n = inputs.len();
        s.given_all((0..n).map(|i| (&inputs[i].datum_type).bex()), move |s, dts: Vec<DatumType>| {
            s.given_all(inputs.iter().map(|i| &i.shape), move |s, shapes: Vec<TVec<TDim>>| {
                let facts: Vec<Fact> = dts.iter().zip(&shapes).map(|(dt, s)| Fact { dt: *dt, shape: s }).collect();
                for (o, (dt, shape)) in outputs.iter().zip(self.0.outputs(&facts)?) {
                    s.equals(&o.datum_type, dt)?;
                    s.equals(&o.shape, ShapeFactoid::from(shape))?;
                }
                Ok(())
            })
        })
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.clone(), inputs)
    }
}

/// Called as our ops take over from tract's. tract's AVX-512 kernels (matrix products, element-wise ops) return
/// with the vector registers' upper halves dirty, no `vzeroupper`; our code is built for baseline x86-64, and
/// each switch between that state and libm's VEX-encoded `expf` stalled: a 3-class softmax after an MLP's
/// matrix products spent 60 ns on each `exp` (`perf annotate`), half the batch.
#[inline]
pub fn after_tract() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked above.
        unsafe { zero_upper() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper()
}

/// The positions of `row`'s non-zero values, in order, into `out` (cleared first). A TF-IDF row is a few
/// counted n-grams among hundreds of columns: each block of 16 becomes a bit mask in one vector compare, and
/// only its set bits are visited.
pub fn nonzeros(row: &[f32], out: &mut Vec<usize>) {
    out.clear();
    let blocks = row.chunks_exact(16);
    let tail = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        let mut mask = mask16(block);
        while mask != 0 {
            out.push(b * 16 + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    }
    let base = row.len() - tail.len();
    out.extend(tail.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(j, _)| base + j));
}

/// Bit `j` set when `block[j] != 0.0` (NaN included), for a block of 16. SSE2, which every x86-64 has, by hand:
/// `bootstrap` is built for size (`opt-level = "s"`), which leaves the plain loop unvectorised.
#[cfg(target_arch = "x86_64")]
fn mask16(block: &[f32]) -> u32 {
    use std::arch::x86_64::{_mm_cmpneq_ps, _mm_loadu_ps, _mm_movemask_ps, _mm_setzero_ps};
    assert_eq!(block.len(), 16);
    let mut mask = 0u32;
    for q in 0..4 {
        // SAFETY: SSE2 is part of x86-64, and the 4 values read are inside `block` (asserted above).
        let bits = unsafe { _mm_movemask_ps(_mm_cmpneq_ps(_mm_loadu_ps(block.as_ptr().add(q * 4)), _mm_setzero_ps())) };
        mask |= (bits as u32) << (q * 4);
    }
    mask
}

#[cfg(not(target_arch = "x86_64"))]
fn mask16(block: &[f32]) -> u32 {
    block.iter().enumerate().fold(0, |mask, (j, v)| mask | (u32::from(*v != 0.0) << j))
}

/// `inputs[0]`'s rows as `(rows, width)`: a `[N, C]` tensor, or `[C]` as one row (onnxruntime's rule).
pub fn rows_of(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [c] => (1, *c),
        [.., c] => (shape.iter().product::<usize>() / (*c).max(1), *c),
    }
}

/// Builds a tensor of `shape` from row-major data of any datum type (String included).
pub fn tensor_of<T: Datum>(shape: &[usize], data: Vec<T>) -> TractResult<Tensor> {
    Ok(tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), data)?.into_tensor())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzeros_are_found_in_order_across_blocks() {
        let mut row = vec![0f32; 40];
        for (j, v) in [(0, 1.0), (15, -2.0), (16, f32::NAN), (39, 3.0)] {
            row[j] = v;
        }
        row[20] = -0.0;
        let mut nz = vec![7];
        nonzeros(&row, &mut nz);
        assert_eq!(nz, [0, 15, 16, 39]);
        nonzeros(&[], &mut nz);
        assert!(nz.is_empty());
    }
}
