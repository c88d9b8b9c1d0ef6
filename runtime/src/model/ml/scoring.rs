//! The output head behind tree ensembles and linear models: raw scores per row (from any [`Scores`]), then
//! onnxruntime's finishing rules (base values, binary layouts, post-transform, label) so outputs match it
//! within float rounding. Op families implement [`Scores`]; this module knows none of them.
use std::sync::Arc;

use tract_onnx::tract_hir::internal::*;

use super::attrs::ClassLabels;
pub use super::attrs::PostTransform;

/// Where a row's raw scores come from: an op family (trees, linear) implements it, this module finishes them.
pub trait Scores: std::fmt::Debug + Send + Sync + 'static {
    /// Score slots per row: classes (classifier) or targets (regressor).
    fn n_outputs(&self) -> usize;
    /// How many leading values of a row the scorer reads.
    fn n_features(&self) -> usize;
    /// Raw scores of up to [`BLOCK`] rows of `width` values into `out`/`has` (`n_outputs` per row);
    /// `has` marks the slots a row's scores touched (onnxruntime's `has_score`).
    fn scores_block(&self, rows: &[f32], width: usize, out: &mut [f64], has: &mut [bool]);
}

/// Rows scored together by [`Scores::scores_block`].
pub const BLOCK: usize = 8;

/// onnxruntime's `ComputeLogistic`, written to stay accurate for large |x|.
pub fn logistic(x: f64) -> f64 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// onnxruntime's `ErfInv` (a float approximation, not the exact inverse).
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// onnxruntime's `ComputeProbit`, in float32 like it.
pub fn probit(x: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * x - 1.0)
}

/// The post transform over one row's scores, as onnxruntime's `write_scores` applies it to two or more.
pub fn apply(post: PostTransform, v: &mut [f64]) {
    match post {
        PostTransform::None => {}
        PostTransform::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
        PostTransform::Softmax => {
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            v.iter_mut().for_each(|x| *x = (*x - max).exp());
            let sum: f64 = v.iter().sum();
            v.iter_mut().for_each(|x| *x /= sum);
        }
        PostTransform::SoftmaxZero => {
            // float32 throughout, as onnxruntime: zeros stay (scaled) zeros instead of exp(0)
            let max = v.iter().map(|x| *x as f32).fold(-f32::MAX, f32::max);
            let exp_neg_max = (-max).exp();
            let mut sum = 0f32;
            for x in v.iter_mut() {
                let f = *x as f32;
                let e = if f.abs() > 1e-7 {
                    let e = (f - max).exp();
                    sum += e;
                    e
                } else {
                    f * exp_neg_max
                };
                *x = e as f64;
            }
            v.iter_mut().for_each(|x| *x = ((*x as f32) / sum) as f64);
        }
        PostTransform::Probit => v.iter_mut().for_each(|x| *x = probit(*x as f32) as f64),
    }
}

/// How a classifier's scores become its two outputs (onnxruntime has one rule per exporter layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Any class count: base values, label = first maximum of the raw scores that were touched, then the
    /// post transform over every column (trees with more than two classes, linear with one row per class).
    Multi,
    /// Trees, two classes, every leaf weight on one class id (onnxruntime's `binary_case`): one score,
    /// expanded into two columns.
    TreesBinary { all_positive: bool },
    /// Trees, two classes, weights on both class ids (onnxruntime's two-class rule without `binary_case`;
    /// with integer labels it answers 0 or 1 themselves, whatever the labels are, and so does this).
    TreesTwoClass,
    /// LinearClassifier with one coefficient row and two labels: `[1 - p, p]` (p = s, or logistic(s) for
    /// LOGISTIC), label `s > 0`.
    LinearOneScore,
}

/// What the op computes: a classifier (labels + scores) or a regressor (values).
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    Classifier { labels: ClassLabels, base_values: Vec<f32>, post: PostTransform, layout: Layout },
    Regressor { base_values: Vec<f32>, post: PostTransform },
}

impl Head {
    fn n_outputs(&self) -> usize {
        match self {
            Head::Classifier { .. } => 2,
            Head::Regressor { .. } => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScoreOp {
    pub scorer: Arc<dyn Scores>,
    pub head: Arc<Head>,
}

// tract wants `Eq` on ops; float thresholds have no total equality, and two ops are only ever the
// same when they share their (immutable) data, so identity is the honest comparison.
impl PartialEq for ScoreOp {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.scorer), Arc::as_ptr(&other.scorer)) && Arc::ptr_eq(&self.head, &other.head)
    }
}
impl Eq for ScoreOp {}

/// First maximum among the slots `has` marks (onnxruntime's `get_max_weight`); 0 when none is.
fn argmax_touched(v: &[f64], has: &[bool]) -> usize {
    let mut best: Option<usize> = None;
    for (k, (x, h)) in v.iter().zip(has).enumerate() {
        if *h && best.is_none_or(|b| *x > v[b]) {
            best = Some(k);
        }
    }
    best.unwrap_or(0)
}

impl ScoreOp {
    pub fn new(scorer: Arc<dyn Scores>, head: Head) -> ScoreOp {
        ScoreOp { scorer, head: Arc::new(head) }
    }

    /// A 0/1 classifier over `scorer`, shaped the way the parsers build one.
    #[cfg(test)]
    pub fn binary_classifier(
        scorer: Arc<dyn Scores>,
        base_values: Vec<f32>,
        post: PostTransform,
        layout: Layout,
    ) -> ScoreOp {
        ScoreOp::new(scorer, Head::Classifier { labels: ClassLabels::Int(vec![0, 1]), base_values, post, layout })
    }

    /// Classifier: fills `probs` (n_classes) and returns the label's index. Regressor: fills `probs`.
    pub fn row(&self, row: &[f32], probs: &mut [f64], has: &mut [bool]) -> usize {
        self.scorer.scores_block(row, row.len(), probs, has);
        self.finish(probs, has)
    }

    /// Turns one row's raw scores into outputs in place and returns the label's index (0 for regressors).
    pub fn finish(&self, probs: &mut [f64], has: &mut [bool]) -> usize {
        match &*self.head {
            Head::Regressor { base_values, post } => {
                for (v, b) in probs.iter_mut().zip(base_values) {
                    *v += *b as f64;
                }
                apply(*post, probs);
                0
            }
            Head::Classifier { base_values, post, layout, .. } => match layout {
                Layout::TreesBinary { all_positive } => {
                    // one score s, expanded into two columns
                    let target = if has[1] { 1 } else { 0 };
                    let s = probs[target] + base_values.first().map_or(0.0, |b| *b as f64);
                    if *all_positive {
                        probs[0] = 1.0 - s;
                        probs[1] = s;
                        apply(*post, probs);
                        return usize::from(s > 0.5);
                    }
                    if *post == PostTransform::Logistic {
                        probs[0] = logistic(-s);
                        probs[1] = logistic(s);
                    } else {
                        probs[0] = -s;
                        probs[1] = s;
                        apply(*post, probs);
                    }
                    usize::from(s > 0.0)
                }
                Layout::TreesTwoClass => two_class(base_values, *post, probs, has),
                Layout::LinearOneScore => {
                    let s = probs[0];
                    if *post == PostTransform::Probit {
                        // onnxruntime writes only the first column here
                        probs[0] = probit(s as f32) as f64;
                        probs[1] = 0.0;
                    } else {
                        // onnxruntime's `add_second_class` (measured with 1.32): LOGISTIC squashes s first,
                        // NONE and both SOFTMAXes write the raw score
                        let p = if *post == PostTransform::Logistic { logistic(s) } else { s };
                        probs[0] = 1.0 - p;
                        probs[1] = p;
                    }
                    usize::from(s > 0.0)
                }
                Layout::Multi => {
                    for (k, b) in base_values.iter().enumerate().take(probs.len()) {
                        probs[k] += *b as f64;
                        has[k] = true;
                    }
                    let best = argmax_touched(probs, has);
                    apply(*post, probs);
                    best
                }
            },
        }
    }

    fn n_outputs(&self) -> usize {
        self.scorer.n_outputs()
    }
}

/// onnxruntime's two-class tree rule when weights touch both classes (`FinalizeScores`, not `binary_case`).
fn two_class(base_values: &[f32], post: PostTransform, p: &mut [f64], has: &mut [bool]) -> usize {
    let b = |k: usize| base_values[k] as f64;
    let mut one_score = false;
    let mut mirror = false;
    match base_values.len() {
        2 if has[1] => {
            // onnxruntime assumes base_values[0] == base_values[1] here and reads slot 0's score
            p[1] = b(1) + p[0];
            p[0] = -p[1];
        }
        2 => {
            p[1] += b(1);
            p[0] += b(0);
        }
        1 => {
            p[0] += b(0);
            one_score = !has[1];
        }
        0 => {
            mirror = true;
            one_score = !has[1];
        }
        _ => {}
    }
    // base values do not mark a slot as touched here, unlike the multiclass rule
    let pos = if has[1] {
        p[1]
    } else if has[0] {
        p[0]
    } else {
        0.0
    };
    let label = usize::from(pos > 0.0);
    if !one_score {
        apply(post, p);
        return label;
    }
    let s = p[0];
    match (post, mirror) {
        (PostTransform::Probit, _) => {
            p[0] = probit(s as f32) as f64;
            p[1] = 0.0;
        }
        (PostTransform::Logistic, true) => {
            p[0] = logistic(-s);
            p[1] = logistic(s);
        }
        (_, true) => {
            p[0] = -s;
            p[1] = s;
        }
        // onnxruntime writes the one score and leaves the second column unset
        (_, false) => p[1] = 0.0,
    }
    label
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
        super::kernel::after_tract();
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
        let mut picks = vec![0usize; n_rows];
        let mut scratch = vec![0f64; BLOCK * k];
        let mut has = vec![false; BLOCK * k];
        for start in (0..n_rows).step_by(BLOCK) {
            let n = BLOCK.min(n_rows - start);
            self.scorer.scores_block(&data[start * width..(start + n) * width], width, &mut scratch, &mut has);
            for r in 0..n {
                let probs = &mut scratch[r * k..(r + 1) * k];
                picks[start + r] = self.finish(probs, &mut has[r * k..(r + 1) * k]);
                for (o, v) in values[(start + r) * k..(start + r + 1) * k].iter_mut().zip(probs.iter()) {
                    *o = *v as f32;
                }
            }
        }
        let values = tensor1(&values).into_shape(&[n_rows, k])?.into_tvalue();
        match &*self.head {
            // onnxruntime's two-class tree rule returns 0/1 themselves for integer labels, not labels[0/1]
            Head::Classifier { labels: ClassLabels::Int(_), layout: Layout::TreesTwoClass, .. } => {
                let literal: Vec<i64> = picks.iter().map(|&p| p as i64).collect();
                Ok(tvec!(tensor1(&literal).into_tvalue(), values))
            }
            Head::Classifier { labels, .. } => Ok(tvec!(labels.tensor(&picks).into_tvalue(), values)),
            Head::Regressor { .. } => Ok(tvec!(values)),
        }
    }
}

impl TypedOp for ScoreOp {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let n = inputs[0].shape[0].clone();
        let values = f32::fact([n.clone(), self.n_outputs().to_dim()]);
        match &*self.head {
            Head::Classifier { labels, .. } => Ok(tvec!(labels.datum_type().fact([n]), values)),
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
        Ok(self.0.head.n_outputs())
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
        if let Head::Classifier { labels, .. } = &*self.0.head {
            s.equals(&outputs[0].datum_type, labels.datum_type())?;
            s.equals(&outputs[0].rank, 1)?;
            s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
        }
        Ok(())
    }

    fn wire(&self, prefix: &str, model: &mut TypedModel, inputs: &[OutletId]) -> TractResult<TVec<OutletId>> {
        model.wire_node(prefix, self.0.clone(), inputs)
    }
}

/// Wraps a scorer and head into the op a builder returns.
pub fn score_op(scorer: Arc<dyn Scores>, head: Head) -> Box<dyn InferenceOp> {
    expand(ScoreExpansion(ScoreOp::new(scorer, head)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(Vec<f64>, Vec<bool>);
    impl Scores for Fixed {
        fn n_outputs(&self) -> usize {
            self.0.len()
        }
        fn n_features(&self) -> usize {
            0
        }
        fn scores_block(&self, _: &[f32], _: usize, out: &mut [f64], has: &mut [bool]) {
            out.copy_from_slice(&self.0);
            has.copy_from_slice(&self.1);
        }
    }

    fn run(scores: &[f64], has: &[bool], base: Vec<f32>, post: PostTransform, layout: Layout) -> (usize, Vec<f64>) {
        let op = ScoreOp::new(
            Arc::new(Fixed(scores.to_vec(), has.to_vec())),
            Head::Classifier {
                labels: ClassLabels::Int((0..scores.len() as i64).collect()),
                base_values: base,
                post,
                layout,
            },
        );
        let (mut p, mut h) = (vec![0.0; scores.len()], vec![false; scores.len()]);
        let label = op.row(&[], &mut p, &mut h);
        (label, p)
    }

    #[test]
    fn multiclass_picks_the_first_max_of_raw_touched_scores_then_transforms() {
        let (label, p) = run(&[1.0, 3.0, 3.0], &[true; 3], vec![], PostTransform::Softmax, Layout::Multi);
        assert_eq!(label, 1);
        let z = 1.0 + 2.0 * 2f64.exp();
        assert!((p[0] - 1.0 / z).abs() < 1e-15 && (p[1] - 2f64.exp() / z).abs() < 1e-15, "{p:?}");
        // an untouched slot cannot win, even with the largest (zero) score
        let (label, _) = run(&[0.0, -1.0, -2.0], &[false, true, true], vec![], PostTransform::None, Layout::Multi);
        assert_eq!(label, 1);
        // base values touch their slot
        let (label, p) =
            run(&[0.0, -1.0, -2.0], &[false, true, true], vec![0.5, 0.0, 0.0], PostTransform::None, Layout::Multi);
        assert_eq!((label, p), (0, vec![0.5, -1.0, -2.0]));
    }

    #[test]
    fn linear_one_score_is_one_minus_p_and_p() {
        let (label, p) = run(&[0.25, 0.0], &[true, false], vec![], PostTransform::Softmax, Layout::LinearOneScore);
        assert_eq!((label, p), (1, vec![0.75, 0.25]));
        let (label, p) = run(&[-0.5, 0.0], &[true, false], vec![], PostTransform::Logistic, Layout::LinearOneScore);
        assert_eq!((label, p), (0, vec![1.0 - logistic(-0.5), logistic(-0.5)]));
    }

    #[test]
    fn two_class_trees_follow_onnxruntime() {
        // no base values, both classes touched: post over both columns, label from class 1's score
        let (label, p) = run(&[0.25, 0.75], &[true, true], vec![], PostTransform::None, Layout::TreesTwoClass);
        assert_eq!((label, p), (1, vec![0.25, 0.75]));
        let (label, p) = run(&[0.5, -0.25], &[true, true], vec![], PostTransform::None, Layout::TreesTwoClass);
        assert_eq!((label, p), (0, vec![0.5, -0.25]));
        // measured with onnxruntime 1.32: base values [0.5, 0.25] give [-(b1 + s0), b1 + s0]
        let (label, p) = run(&[0.8, -0.3], &[true, true], vec![0.5, 0.25], PostTransform::None, Layout::TreesTwoClass);
        assert_eq!(label, 1);
        assert!((p[1] - 1.05).abs() < 1e-7 && (p[0] + 1.05).abs() < 1e-7, "{p:?}");
        let (label, p) = run(&[0.8, -0.3], &[true, true], vec![0.5], PostTransform::None, Layout::TreesTwoClass);
        assert_eq!(label, 0);
        assert!((p[0] - 1.3).abs() < 1e-7 && (p[1] + 0.3).abs() < 1e-7, "{p:?}");
    }

    #[test]
    fn probit_and_softmax_zero_match_onnxruntime_formulas() {
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.959_964).abs() < 5e-3);
        let mut v = [0.0, 1.0, 2.0];
        apply(PostTransform::SoftmaxZero, &mut v);
        let z = (-1f32).exp() + 1.0;
        assert_eq!(v[0], 0.0);
        assert!((v[2] - (1.0 / z) as f64).abs() < 1e-7, "{v:?}");
    }
}
