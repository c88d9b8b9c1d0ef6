//! `ai.onnx.ml` LinearClassifier / LinearRegressor (skl2onnx's LogisticRegression, LinearRegression,
//! Ridge, ...): one dot product per target, finished by [`super::scoring`] like onnxruntime does.
use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{class_labels, err, floats, post_transform};
use super::kernel::nonzeros;
use super::scoring::{score_op, Head, Layout, Scores};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("LinearClassifier", classifier);
    reg.insert("LinearRegressor", regressor);
}

/// `coefficients` is `targets × n_features`, row-major, as ONNX stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    pub coefficients: Vec<f32>,
    pub intercepts: Vec<f32>,
    pub targets: usize,
    pub n_features: usize,
    /// Score slots per row: `targets`, or 2 for a binary classifier stored as one target (its score goes
    /// in slot 0, which is where the binary finishing rule reads it).
    pub slots: usize,
}

impl Linear {
    pub fn new(coefficients: Vec<f32>, intercepts: Vec<f32>, targets: usize, slots: usize) -> Result<Linear, String> {
        if targets == 0 || coefficients.is_empty() || !coefficients.len().is_multiple_of(targets) {
            return Err(format!("{} coefficients do not split into {targets} targets", coefficients.len()));
        }
        if !intercepts.is_empty() && intercepts.len() != targets {
            return Err(format!("{} intercepts for {targets} targets", intercepts.len()));
        }
        let n_features = coefficients.len() / targets;
        Ok(Linear { coefficients, intercepts, targets, n_features, slots: slots.max(targets) })
    }
}

impl Scores for Linear {
    fn n_outputs(&self) -> usize {
        self.slots
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    fn scores_block(&self, rows: &[f32], width: usize, out: &mut [f64], has: &mut [bool]) {
        let k = self.slots;
        // A TF-IDF row is mostly zeros, and each f64 sum is one long chain of adds: summing only the row's
        // non-zero features, still in feature order, gives the same bits at a fraction of the cost.
        let mut nz = Vec::with_capacity(width);
        for (r, row) in rows.chunks_exact(width).enumerate() {
            let (out, has) = (&mut out[r * k..(r + 1) * k], &mut has[r * k..(r + 1) * k]);
            nonzeros(row, &mut nz);
            for t in 0..k {
                has[t] = t < self.targets;
                out[t] = if t < self.targets {
                    let w = &self.coefficients[t * self.n_features..(t + 1) * self.n_features];
                    let dot: f64 = nz.iter().map(|&j| f64::from(w[j]) * f64::from(row[j])).sum();
                    dot + self.intercepts.get(t).copied().map_or(0.0, f64::from)
                } else {
                    0.0
                };
            }
        }
    }
}

fn classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let labels = class_labels(node, "classlabels_ints")?;
    let coefficients = floats(node, "coefficients")?;
    let intercepts = floats(node, "intercepts")?;
    // onnxruntime counts scores by intercepts; skl2onnx always writes them, zeros included
    if intercepts.is_empty() {
        return Err(err(node, "intercepts", "is missing, so the score count is unknown: re-export with skl2onnx"));
    }
    // one score for two labels is onnxruntime's `add_second_class` layout; otherwise one score per label
    let layout = match (intercepts.len(), labels.len()) {
        (1, 2) => Layout::LinearOneScore,
        (t, l) if t == l => Layout::Multi,
        (t, l) => {
            return Err(err(
                node,
                "intercepts",
                format!("has {t} scores for {l} class labels; onnxruntime needs one per label (or one for two)"),
            ))
        }
    };
    let targets = intercepts.len();
    let linear =
        Linear::new(coefficients, intercepts, targets, labels.len()).map_err(|e| err(node, "coefficients", e))?;
    let head = Head::Classifier { labels, base_values: vec![], post: post_transform(node)?, layout };
    Ok((score_op(Arc::new(linear), head), vec![]))
}

fn regressor(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let targets: i64 = node.get_attr_opt("targets")?.unwrap_or(1);
    if targets < 1 {
        return Err(err(node, "targets", format!("is {targets}; it must be at least 1: re-export the model")));
    }
    let targets = targets as usize;
    let linear = Linear::new(floats(node, "coefficients")?, floats(node, "intercepts")?, targets, targets)
        .map_err(|e| err(node, "coefficients", e))?;
    // the intercepts are already in the scores
    let head = Head::Regressor { base_values: vec![], post: post_transform(node)? };
    Ok((score_op(Arc::new(linear), head), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ml::scoring::{logistic, PostTransform, ScoreOp};

    #[test]
    fn two_class_rows_match_sklearn_logistic_regression() {
        // skl2onnx's binary LogisticRegression: rows [-w, w], intercepts [-b, b], LOGISTIC per class
        let lin = Linear::new(vec![-0.5, -2.0, 0.5, 2.0], vec![-0.25, 0.25], 2, 2).unwrap();
        let op = ScoreOp::binary_classifier(Arc::new(lin), vec![], PostTransform::Logistic, Layout::Multi);
        let (mut p, mut has) = ([0.0; 2], [false; 2]);
        assert_eq!(op.row(&[1.0, 0.5], &mut p, &mut has), 1);
        let s = 0.5 + 1.0 + 0.25;
        assert!((p[1] - logistic(s)).abs() < 1e-15 && (p[0] - logistic(-s)).abs() < 1e-15, "{p:?}");
    }

    #[test]
    fn one_score_binary_layout_expands_to_two_columns_like_onnxruntime() {
        // onnxruntime 1.32 (measured): NONE gives [1 - s, s]; LOGISTIC gives [1 - p, p], p = logistic(s)
        let lin = Arc::new(Linear::new(vec![1.0], vec![-1.0], 1, 2).unwrap());
        let op = ScoreOp::binary_classifier(lin.clone(), vec![], PostTransform::None, Layout::LinearOneScore);
        let (mut p, mut has) = ([0.0; 2], [false; 2]);
        assert_eq!(op.row(&[0.5], &mut p, &mut has), 0);
        assert_eq!(p, [1.5, -0.5]);
        let op = ScoreOp::binary_classifier(lin, vec![], PostTransform::Logistic, Layout::LinearOneScore);
        op.row(&[0.5], &mut p, &mut has);
        assert!((p[0] - 0.622_459_3).abs() < 1e-6 && (p[1] - 0.377_540_7).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn regressor_is_dot_plus_intercept_and_shapes_are_checked() {
        let lin = Linear::new(vec![2.0, 3.0], vec![1.0], 1, 1).unwrap();
        let (mut out, mut has) = ([0.0; 2], [false; 2]);
        lin.scores_block(&[1.0, 1.0, 0.0, 2.0], 2, &mut out, &mut has);
        assert_eq!(out, [6.0, 7.0]);
        assert!(Linear::new(vec![1.0, 2.0, 3.0], vec![], 2, 2).unwrap_err().contains("3 coefficients"));
        assert!(Linear::new(vec![1.0, 2.0], vec![1.0, 2.0, 3.0], 1, 1).unwrap_err().contains("3 intercepts"));
    }
}
