//! The op behind our tree ensembles and linear models: raw scores per row, then onnxruntime's finishing
//! rules (base values, binary layouts, post-transform, label) so outputs match it within float rounding.
use std::sync::Arc;

use tract_onnx::tract_hir::internal::*;

use super::linear::Linear;
use super::tree_ensemble::{Ensemble, BLOCK};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
}

impl PostTransform {
    pub fn parse(s: &str) -> Result<PostTransform, String> {
        match s {
            "NONE" => Ok(PostTransform::None),
            "LOGISTIC" => Ok(PostTransform::Logistic),
            "SOFTMAX" => Ok(PostTransform::Softmax),
            other => Err(format!("post_transform {other:?} is not supported (NONE, LOGISTIC, SOFTMAX are)")),
        }
    }
}

/// Where a row's raw scores come from.
#[derive(Debug, Clone)]
pub enum Scorer {
    Trees(Arc<Ensemble>),
    Linear(Arc<Linear>),
}

impl Scorer {
    /// Score slots per row: classes (classifier) or targets (regressor).
    pub fn n_outputs(&self) -> usize {
        match self {
            Scorer::Trees(e) => e.n_outputs,
            Scorer::Linear(l) => l.slots,
        }
    }

    /// How many leading values of a row the scorer reads.
    pub fn n_features(&self) -> usize {
        match self {
            Scorer::Trees(e) => e.n_features,
            Scorer::Linear(l) => l.n_features,
        }
    }

    /// Raw scores of up to [`BLOCK`] rows of `width` values into `out`/`has` (`n_outputs` per row).
    pub fn scores_block(&self, rows: &[f32], width: usize, out: &mut [f64], has: &mut [bool]) {
        match self {
            Scorer::Trees(e) => e.scores_block(rows, width, out, has),
            Scorer::Linear(l) => l.scores_block(rows, width, out, has),
        }
    }

    fn same(&self, other: &Scorer) -> bool {
        match (self, other) {
            (Scorer::Trees(a), Scorer::Trees(b)) => Arc::ptr_eq(a, b),
            (Scorer::Linear(a), Scorer::Linear(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// onnxruntime's `ComputeLogistic`, written to stay accurate for large |x|.
pub fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

fn apply(post: PostTransform, v: &mut [f64]) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
        PostTransform::Softmax => {
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            v.iter_mut().for_each(|x| *x = (*x - max).exp());
            let sum: f64 = v.iter().sum();
            v.iter_mut().for_each(|x| *x /= sum);
        }
    }
}

/// What the op computes: a classifier (labels + probabilities) or a regressor (values).
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    Classifier {
        labels: Vec<i64>,
        base_values: Vec<f32>,
        post: PostTransform,
        /// onnxruntime's "binary case": two classes, every leaf weight on one class id.
        binary: bool,
        all_positive: bool,
    },
    Regressor {
        base_values: Vec<f32>,
        post: PostTransform,
    },
}

#[derive(Debug, Clone)]
pub struct ScoreOp {
    pub scorer: Scorer,
    pub head: Arc<Head>,
}

// tract wants `Eq` on ops; float thresholds have no total equality, and two ops are only ever the
// same when they share their (immutable) data, so identity is the honest comparison.
impl PartialEq for ScoreOp {
    fn eq(&self, other: &Self) -> bool {
        self.scorer.same(&other.scorer) && Arc::ptr_eq(&self.head, &other.head)
    }
}
impl Eq for ScoreOp {}

impl ScoreOp {
    /// A 0/1 classifier over `scorer`, shaped the way the parsers build one.
    #[cfg(test)]
    pub fn binary_classifier(
        scorer: Scorer,
        base_values: Vec<f32>,
        post: PostTransform,
        binary: bool,
        all_positive: bool,
    ) -> ScoreOp {
        let head = Head::Classifier { labels: vec![0, 1], base_values, post, binary, all_positive };
        ScoreOp { scorer, head: Arc::new(head) }
    }

    /// Classifier: fills `probs` (n_classes) and returns the label. Regressor: fills `probs` (n_targets).
    pub fn row(&self, row: &[f32], probs: &mut [f64], has: &mut [bool]) -> i64 {
        self.scorer.scores_block(row, row.len(), probs, has);
        self.finish(probs, has)
    }

    /// Turns one row's raw scores into outputs in place (base values, post-transform) and returns the label.
    pub fn finish(&self, probs: &mut [f64], has: &[bool]) -> i64 {
        match &*self.head {
            Head::Regressor { base_values, post } => {
                for (v, b) in probs.iter_mut().zip(base_values) {
                    *v += *b as f64;
                }
                apply(*post, probs);
                0
            }
            Head::Classifier { labels, base_values, post, binary, all_positive } => {
                if *binary && probs.len() == 2 {
                    // onnxruntime's binary layout: one score s, expanded into two columns
                    let target = if has[1] { 1 } else { 0 };
                    let s = probs[target] + base_values.first().map_or(0.0, |b| *b as f64);
                    if *all_positive {
                        probs[0] = 1.0 - s;
                        probs[1] = s;
                        apply(*post, probs);
                        return labels[usize::from(s > 0.5)];
                    }
                    if *post == PostTransform::Logistic {
                        probs[0] = logistic(-s);
                        probs[1] = logistic(s);
                    } else {
                        probs[0] = -s;
                        probs[1] = s;
                        apply(*post, probs);
                    }
                    return labels[usize::from(s > 0.0)];
                }
                if base_values.len() == probs.len() {
                    for (v, b) in probs.iter_mut().zip(base_values) {
                        *v += *b as f64;
                    }
                }
                apply(*post, probs);
                // first maximum wins, like numpy's argmax
                let mut best = 0;
                for (k, v) in probs.iter().enumerate() {
                    if *v > probs[best] {
                        best = k;
                    }
                }
                labels[best]
            }
        }
    }

    fn n_outputs(&self) -> usize {
        self.scorer.n_outputs()
    }
}

impl Op for ScoreOp {
    fn name(&self) -> StaticName {
        "MlambdaScore".into()
    }
    op_as_typed_op!();
}

impl EvalOp for ScoreOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let shape = input.shape();
        ensure!(shape.len() == 2, "scoring op input must be [rows, features], got {shape:?}");
        let (n_rows, width) = (shape[0], shape[1]);
        ensure!(
            width >= self.scorer.n_features(),
            "scoring op reads feature {} but rows have {width} values",
            self.scorer.n_features().saturating_sub(1)
        );
        let data = input.to_plain_array_view::<f32>()?;
        let data = data.as_slice().context("scoring op input is not contiguous")?;
        let k = self.n_outputs();
        let mut values = vec![0f32; n_rows * k];
        let mut labels = vec![0i64; n_rows];
        let mut scratch = vec![0f64; BLOCK * k];
        let mut has = vec![false; BLOCK * k];
        for start in (0..n_rows).step_by(BLOCK) {
            let n = BLOCK.min(n_rows - start);
            self.scorer.scores_block(&data[start * width..(start + n) * width], width, &mut scratch, &mut has);
            for r in 0..n {
                let probs = &mut scratch[r * k..(r + 1) * k];
                labels[start + r] = self.finish(probs, &has[r * k..(r + 1) * k]);
                for (o, v) in values[(start + r) * k..(start + r + 1) * k].iter_mut().zip(probs.iter()) {
                    *o = *v as f32;
                }
            }
        }
        let values = tensor1(&values).into_shape(&[n_rows, k])?.into_tvalue();
        match &*self.head {
            Head::Classifier { .. } => Ok(tvec!(tensor1(&labels).into_tvalue(), values)),
            Head::Regressor { .. } => Ok(tvec!(values)),
        }
    }
}

impl TypedOp for ScoreOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = inputs[0].shape[0].clone();
        let values = f32::fact([n.clone(), self.n_outputs().to_dim()]);
        match &*self.head {
            Head::Classifier { .. } => Ok(tvec!(i64::fact([n]), values)),
            Head::Regressor { .. } => Ok(tvec!(values)),
        }
    }
    as_op!();
}

/// The inference-time wrapper: shape rules, then wires [`ScoreOp`] as is.
#[derive(Debug, Clone)]
pub struct ScoreExpansion(pub ScoreOp);

impl Expansion for ScoreExpansion {
    fn name(&self) -> StaticName {
        "MlambdaScore".into()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        Ok(match &*self.0.head {
            Head::Classifier { .. } => 2,
            Head::Regressor { .. } => 1,
        })
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 1)?;
        check_output_arity(outputs, self.nboutputs()?)?;
        s.equals(&inputs[0].rank, 2)?;
        let values = outputs.last().context("scoring op has no outputs")?;
        s.equals(&values.datum_type, DatumType::F32)?;
        s.equals(&values.rank, 2)?;
        s.equals(&values.shape[0], &inputs[0].shape[0])?;
        s.equals(&values.shape[1], self.0.n_outputs().to_dim())?;
        if outputs.len() == 2 {
            s.equals(&outputs[0].datum_type, DatumType::I64)?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.0.clone(), inputs)
    }
}
