//! `ai.onnx.ml` SVMClassifier / SVMRegressor (scikit-learn's SVC, NuSVC, SVR, OneClassSVM), computed the
//! way onnxruntime's `svmclassifier.cc` / `svmregressor.cc` do: float32 kernels, one-vs-one votes for the
//! label, and libsvm's pairwise coupling (`multiclass_probability`) when `prob_a`/`prob_b` are present.
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{class_labels, err, floats, ints, post_transform, slice, string_or, ClassLabels, PostTransform};
use super::kernel::{rows_of, tensor_of, Fact, Kernel, KernelOp};
use super::scoring::{apply, logistic, probit};

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("SVMClassifier", classifier);
    reg.insert("SVMRegressor", regressor);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum KernelType {
    Linear,
    Poly,
    Rbf,
    Sigmoid,
}

/// The kernel function with its parameters (`kernel_params` = gamma, coef0, degree).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SvmKernel {
    kind: KernelType,
    gamma: f32,
    coef0: f32,
    degree: f32,
}

impl SvmKernel {
    fn parse(node: &NodeProto) -> TractResult<SvmKernel> {
        // onnxruntime maps any unknown name to SIGMOID; refusing it is kinder than guessing
        let kind = match string_or(node, "kernel_type", "LINEAR")?.as_str() {
            "LINEAR" => KernelType::Linear,
            "POLY" => KernelType::Poly,
            "RBF" => KernelType::Rbf,
            "SIGMOID" => KernelType::Sigmoid,
            other => {
                return Err(err(node, "kernel_type", format!("is {other:?}; LINEAR, POLY, RBF or SIGMOID are known")))
            }
        };
        let p = floats(node, "kernel_params")?;
        if !p.is_empty() && p.len() < 3 {
            return Err(err(node, "kernel_params", "must hold gamma, coef0 and degree: re-export the model"));
        }
        let at = |i: usize| p.get(i).copied().unwrap_or(0.0);
        Ok(SvmKernel { kind, gamma: at(0), coef0: at(1), degree: at(2) })
    }

    /// `K(x, v)` in float32, as onnxruntime's `batched_kernel_dot` (plus `c` added to a plain LINEAR dot).
    fn eval(&self, x: &[f32], v: &[f32], c: f32) -> f32 {
        if self.kind == KernelType::Rbf {
            let sum: f32 = x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum();
            return (-self.gamma * sum).exp();
        }
        // the GEMM's dot product: accumulated wide, rounded once (MLAS's own order is not reproducible)
        let dot = x.iter().zip(v).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() as f32;
        match self.kind {
            KernelType::Linear => dot + c,
            KernelType::Poly => {
                let y = self.gamma * dot + self.coef0;
                if self.degree == 2.0 {
                    y * y
                } else if self.degree == 3.0 {
                    y * y * y
                } else {
                    y.powf(self.degree)
                }
            }
            KernelType::Sigmoid => (self.gamma * dot + self.coef0).tanh(),
            KernelType::Rbf => unreachable!("handled above"),
        }
    }
}

/// Support-vector mode (SVC) or liblinear mode (one coefficient row per class, no support vectors).
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Svc { vectors_per_class: Vec<usize>, starts: Vec<usize>, support_vectors: Vec<f32> },
    Linear,
}

#[derive(Debug, Clone)]
struct SvmClassifier {
    node: String,
    kernel: SvmKernel,
    mode: Mode,
    n_features: usize,
    coefficients: Vec<f32>,
    rho: Vec<f32>,
    prob_a: Vec<f32>,
    prob_b: Vec<f32>,
    labels: ClassLabels,
    post: PostTransform,
    all_positive: bool,
}

fn usizes(node: &NodeProto, name: &str) -> TractResult<Vec<usize>> {
    ints(node, name)?
        .iter()
        .map(|&v| usize::try_from(v).map_err(|_| err(node, name, format!("has a negative entry {v}"))))
        .collect()
}

fn classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let labels = class_labels(node, "classlabels_ints")?;
    let c = labels.len();
    if c < 2 {
        return Err(err(node, "classlabels_ints", "has fewer than two classes: re-export the classifier"));
    }
    let mut kernel = SvmKernel::parse(node)?;
    let vectors_per_class = usizes(node, "vectors_per_class")?;
    let support_vectors = floats(node, "support_vectors")?;
    let coefficients = floats(node, "coefficients")?;
    let rho = floats(node, "rho")?;
    let (prob_a, prob_b) = (floats(node, "prob_a")?, floats(node, "prob_b")?);
    if prob_a.len() != prob_b.len() {
        return Err(err(node, "prob_a", "and `prob_b` differ in length: re-export the model"));
    }
    if coefficients.is_empty() {
        return Err(err(node, "coefficients", "is empty: re-export the model"));
    }
    let pairs = c * (c - 1) / 2;
    let n_vectors: usize = vectors_per_class.iter().sum();
    let (mode, n_features) = if n_vectors > 0 {
        if vectors_per_class.len() != c {
            return Err(err(
                node,
                "vectors_per_class",
                format!("has {} entries for {c} classes", vectors_per_class.len()),
            ));
        }
        if support_vectors.is_empty() || support_vectors.len() % n_vectors != 0 {
            return Err(err(node, "support_vectors", format!("do not split into {n_vectors} vectors")));
        }
        if coefficients.len() < (c - 1) * n_vectors {
            return Err(err(
                node,
                "coefficients",
                format!("has {} values; ({c} - 1) x {n_vectors} needed", coefficients.len()),
            ));
        }
        if rho.len() < pairs {
            return Err(err(node, "rho", format!("has {} values; {pairs} class pairs need one each", rho.len())));
        }
        if !prob_a.is_empty() && prob_a.len() < pairs {
            return Err(err(node, "prob_a", format!("has {} values; {pairs} class pairs need one each", prob_a.len())));
        }
        let starts = vectors_per_class.iter().scan(0, |acc, n| Some(std::mem::replace(acc, *acc + n))).collect();
        let n_features = support_vectors.len() / n_vectors;
        (Mode::Svc { vectors_per_class, starts, support_vectors }, n_features)
    } else {
        if rho.is_empty() {
            return Err(err(node, "rho", "is empty: re-export the model"));
        }
        if coefficients.len() % c != 0 {
            return Err(err(node, "coefficients", format!("do not split into {c} class rows")));
        }
        kernel.kind = KernelType::Linear;
        (Mode::Linear, coefficients.len() / c)
    };
    let all_positive = coefficients.iter().all(|v| *v >= 0.0);
    let op = SvmClassifier {
        node: node.name.clone(),
        kernel,
        mode,
        n_features,
        coefficients,
        rho,
        prob_a,
        prob_b,
        labels,
        post: post_transform(node)?,
        all_positive,
    };
    Ok((KernelOp::boxed(op), vec![]))
}

/// libsvm's pairwise coupling (onnxruntime's `multiclass_probability`), in float32 like it.
fn multiclass_probability(k: usize, r: &[f32], p: &mut [f32]) {
    let mut q = vec![0f32; k * k];
    let mut qp = vec![0f32; k];
    let eps = 0.005 / k as f32;
    for i in 0..k {
        p[i] = 1.0 / k as f32;
        for j in 0..i {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for j in i + 1..k {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    for _ in 0..100 {
        let mut pqp = 0f32;
        for i in 0..k {
            qp[i] = 0.0;
            for j in 0..k {
                qp[i] += q[i * k + j] * p[j];
            }
            pqp += p[i] * qp[i];
        }
        let max_error = qp.iter().map(|v| (v - pqp).abs()).fold(0f32, |m, e| if e > m { e } else { m });
        if max_error < eps {
            break;
        }
        for i in 0..k {
            let diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2.0 * qp[i])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}

/// onnxruntime's `ComputeLogistic` in float32.
fn logistic_f32(x: f32) -> f32 {
    let v = 1.0 / (1.0 + (-x.abs()).exp());
    if x < 0.0 {
        1.0 - v
    } else {
        v
    }
}

impl SvmClassifier {
    fn have_proba(&self) -> bool {
        !self.prob_a.is_empty()
    }

    fn n_classes(&self) -> usize {
        self.labels.len()
    }

    /// Score columns per row: classes, or (SVC without probabilities) one per class pair, at least 2.
    fn width(&self) -> usize {
        let c = self.n_classes();
        match self.mode {
            Mode::Svc { .. } if !self.have_proba() => (c * (c - 1) / 2).max(2),
            _ => c,
        }
    }

    /// One row: writes `out` (`width()` values) and returns the label's index.
    fn row(&self, x: &[f32], kernels: &mut Vec<f32>, votes: &mut Vec<u32>, out: &mut [f32]) -> usize {
        let c = self.n_classes();
        let Mode::Svc { vectors_per_class, starts, support_vectors } = &self.mode else {
            // liblinear mode: one dot product per class, plus rho[0]
            for (k, o) in out.iter_mut().enumerate() {
                let w = &self.coefficients[k * self.n_features..(k + 1) * self.n_features];
                *o = self.kernel.eval(x, w, self.rho[0]);
            }
            let mut best = 0;
            for k in 1..c {
                if out[k] > out[best] {
                    best = k;
                }
            }
            let max = out[best];
            let label = if c == 2 && !self.have_proba() {
                if (self.all_positive && max >= 0.5) || (max > 0.0 && !self.all_positive) {
                    1
                } else {
                    best
                }
            } else {
                best
            };
            self.transform(out, c);
            return label;
        };
        kernels.clear();
        kernels.extend(support_vectors.chunks_exact(self.n_features).map(|v| self.kernel.eval(x, v, 0.0)));
        votes.clear();
        votes.resize(c, 0);
        let n_vectors = kernels.len();
        let mut pair_scores = Vec::with_capacity(c * (c - 1) / 2);
        for i in 0..c - 1 {
            for j in i + 1..c {
                let mut sum = 0f64;
                let (si, sj) = (starts[i], starts[j]);
                let ci = &self.coefficients[(j - 1) * n_vectors + si..][..vectors_per_class[i]];
                for (w, k) in ci.iter().zip(&kernels[si..]) {
                    sum += f64::from(w * k);
                }
                let cj = &self.coefficients[i * n_vectors + sj..][..vectors_per_class[j]];
                for (w, k) in cj.iter().zip(&kernels[sj..]) {
                    sum += f64::from(w * k);
                }
                sum += f64::from(self.rho[pair_scores.len()]);
                pair_scores.push(sum as f32);
                votes[if sum > 0.0 { i } else { j }] += 1;
            }
        }
        // first maximum, as std::max_element
        let mut label = 0;
        for k in 1..c {
            if votes[k] > votes[label] {
                label = k;
            }
        }
        if self.have_proba() {
            let mut r = vec![0f32; c * c];
            let mut idx = 0;
            for i in 0..c - 1 {
                for j in i + 1..c {
                    let v = 1.0 - logistic_f32(pair_scores[idx] * self.prob_a[idx] + self.prob_b[idx]);
                    let v = v.clamp(1e-7, 1.0 - 1e-7);
                    r[i * c + j] = v;
                    r[j * c + i] = 1.0 - v;
                    idx += 1;
                }
            }
            multiclass_probability(c, &r, out);
            self.transform(out, c);
        } else if pair_scores.len() == 1 {
            // onnxruntime's binary layout: NONE gives [-s, s], any other transform [1 - s, s]
            let s = pair_scores[0];
            match self.post {
                PostTransform::Probit => {
                    out[0] = probit(s);
                    out[1] = 0.0;
                }
                PostTransform::None => {
                    out[0] = -s;
                    out[1] = s;
                }
                _ => {
                    out[0] = 1.0 - s;
                    out[1] = s;
                }
            }
        } else {
            out.copy_from_slice(&pair_scores);
            self.transform(out, pair_scores.len());
        }
        label
    }

    /// onnxruntime's `batched_update_scores_inplace` over `n` > 1 scores.
    fn transform(&self, out: &mut [f32], n: usize) {
        if n < 2 {
            return;
        }
        match self.post {
            PostTransform::None => {}
            PostTransform::Logistic => out.iter_mut().for_each(|v| *v = logistic(f64::from(*v)) as f32),
            post => {
                let mut wide: Vec<f64> = out.iter().map(|v| f64::from(*v)).collect();
                apply(post, &mut wide);
                out.iter_mut().zip(wide).for_each(|(o, v)| *o = v as f32);
            }
        }
    }
}

impl Kernel for SvmClassifier {
    fn name(&self) -> &'static str {
        "MlambdaSVMClassifier"
    }

    fn n_outputs(&self) -> usize {
        2
    }

    fn outputs(&self, inputs: &[Fact]) -> TractResult<TVec<(DatumType, TVec<TDim>)>> {
        let shape = inputs[0].shape;
        ensure!(
            inputs[0].dt.is_number() && !shape.is_empty() && shape.len() <= 2,
            "node {:?} (SVMClassifier): input must be numeric [N, features], got {:?} {shape:?}",
            self.node,
            inputs[0].dt
        );
        let n = if shape.len() == 1 { 1.to_dim() } else { shape[0].clone() };
        Ok(tvec![(self.labels.datum_type(), tvec![n.clone()]), (DatumType::F32, tvec![n, self.width().to_dim()])])
    }

    fn eval_all(&self, inputs: &[&Tensor]) -> TractResult<TVec<Tensor>> {
        let x = inputs[0].cast_to::<f32>()?;
        let (n, width) = rows_of(x.shape());
        ensure!(
            width == self.n_features,
            "node {:?} (SVMClassifier): rows have {width} features, the model {}",
            self.node,
            self.n_features
        );
        let data = slice::<f32>(&x)?;
        let w = self.width();
        let mut scores = vec![0f32; n * w];
        let mut picks = vec![0usize; n];
        let (mut kernels, mut votes) = (Vec::new(), Vec::new());
        for r in 0..n {
            picks[r] =
                self.row(&data[r * width..(r + 1) * width], &mut kernels, &mut votes, &mut scores[r * w..(r + 1) * w]);
        }
        Ok(tvec![self.labels.tensor(&picks), tensor_of(&[n, w], scores)?])
    }
}

#[derive(Debug, Clone)]
struct SvmRegressor {
    node: String,
    kernel: SvmKernel,
    /// empty in liblinear mode
    support_vectors: Vec<f32>,
    n_features: usize,
    coefficients: Vec<f32>,
    rho: f32,
    one_class: bool,
}

fn regressor(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let mut kernel = SvmKernel::parse(node)?;
    let n_supports = node.get_attr_opt::<i64>("n_supports")?.unwrap_or(0);
    let n_supports = usize::try_from(n_supports).map_err(|_| err(node, "n_supports", "is negative"))?;
    let support_vectors = floats(node, "support_vectors")?;
    let coefficients = floats(node, "coefficients")?;
    let rho = floats(node, "rho")?;
    let Some(&rho) = rho.first() else {
        return Err(err(node, "rho", "is empty: re-export the model"));
    };
    if coefficients.is_empty() {
        return Err(err(node, "coefficients", "is empty: re-export the model"));
    }
    let n_features = if n_supports > 0 {
        if support_vectors.is_empty() || support_vectors.len() % n_supports != 0 || coefficients.len() < n_supports {
            return Err(err(node, "support_vectors", format!("do not match n_supports = {n_supports}: re-export")));
        }
        support_vectors.len() / n_supports
    } else {
        kernel.kind = KernelType::Linear;
        coefficients.len()
    };
    let one_class = node.get_attr_opt::<i64>("one_class")?.unwrap_or(0) != 0;
    let op = SvmRegressor {
        node: node.name.clone(),
        kernel,
        support_vectors: if n_supports > 0 { support_vectors } else { vec![] },
        n_features,
        coefficients,
        rho,
        one_class,
    };
    Ok((KernelOp::boxed(op), vec![]))
}

impl SvmRegressor {
    fn row(&self, x: &[f32]) -> f32 {
        let y = if self.support_vectors.is_empty() {
            self.kernel.eval(x, &self.coefficients, self.rho)
        } else {
            let sum: f64 = self
                .support_vectors
                .chunks_exact(self.n_features)
                .zip(&self.coefficients)
                .map(|(v, w)| f64::from(self.kernel.eval(x, v, 0.0)) * f64::from(*w))
                .sum();
            (sum + f64::from(self.rho)) as f32
        };
        if self.one_class {
            if y > 0.0 {
                1.0
            } else {
                -1.0
            }
        } else {
            y
        }
    }
}

impl Kernel for SvmRegressor {
    fn name(&self) -> &'static str {
        "MlambdaSVMRegressor"
    }

    fn output(&self, inputs: &[Fact]) -> TractResult<(DatumType, TVec<TDim>)> {
        let shape = inputs[0].shape;
        ensure!(
            inputs[0].dt == DatumType::F32 && !shape.is_empty() && shape.len() <= 2,
            "node {:?} (SVMRegressor): input must be float32 [N, features], got {:?} {shape:?}",
            self.node,
            inputs[0].dt
        );
        let n = if shape.len() == 1 { 1.to_dim() } else { shape[0].clone() };
        Ok((DatumType::F32, tvec![n, 1.to_dim()]))
    }

    fn eval(&self, inputs: &[&Tensor]) -> TractResult<Tensor> {
        let (n, width) = rows_of(inputs[0].shape());
        ensure!(
            width == self.n_features,
            "node {:?} (SVMRegressor): rows have {width} features, the model {}",
            self.node,
            self.n_features
        );
        let data = slice::<f32>(inputs[0])?;
        let out = (0..n).map(|r| self.row(&data[r * width..(r + 1) * width])).collect();
        tensor_of(&[n, 1], out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbf(gamma: f32) -> SvmKernel {
        SvmKernel { kind: KernelType::Rbf, gamma, coef0: 0.0, degree: 0.0 }
    }

    #[test]
    fn kernels_follow_their_formulas() {
        let (x, v) = ([1.0f32, 2.0], [0.0f32, 1.0]);
        assert_eq!(rbf(0.5).eval(&x, &v, 0.0), (-1.0f32).exp());
        let poly = SvmKernel { kind: KernelType::Poly, gamma: 2.0, coef0: 1.0, degree: 3.0 };
        assert_eq!(poly.eval(&x, &v, 0.0), 125.0);
        let sig = SvmKernel { kind: KernelType::Sigmoid, gamma: 0.5, coef0: 0.0, degree: 0.0 };
        assert_eq!(sig.eval(&x, &v, 0.0), 1f32.tanh());
        let lin = SvmKernel { kind: KernelType::Linear, gamma: 0.0, coef0: 0.0, degree: 0.0 };
        assert_eq!(lin.eval(&x, &v, 0.5), 2.5);
    }

    #[test]
    fn pairwise_coupling_of_a_consistent_matrix_recovers_it() {
        // r[i][j] = p_i / (p_i + p_j) for p = (0.5, 0.3, 0.2)
        let p = [0.5f32, 0.3, 0.2];
        let mut r = [0f32; 9];
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    r[i * 3 + j] = p[i] / (p[i] + p[j]);
                }
            }
        }
        let mut out = [0f32; 3];
        multiclass_probability(3, &r, &mut out);
        for (a, b) in out.iter().zip(p) {
            assert!((a - b).abs() < 2e-3, "{out:?}");
        }
    }

    fn two_class_svc(prob: bool) -> SvmClassifier {
        // one support vector per class at -1 and +1, linear kernel: score = -x * 1 + ... (coefs: [1, -1])
        SvmClassifier {
            node: "svc".into(),
            kernel: SvmKernel { kind: KernelType::Linear, gamma: 0.0, coef0: 0.0, degree: 0.0 },
            mode: Mode::Svc { vectors_per_class: vec![1, 1], starts: vec![0, 1], support_vectors: vec![-1.0, 1.0] },
            n_features: 1,
            coefficients: vec![1.0, -1.0],
            rho: vec![0.0],
            prob_a: if prob { vec![-2.0] } else { vec![] },
            prob_b: if prob { vec![0.0] } else { vec![] },
            labels: ClassLabels::Str(vec!["neg".into(), "pos".into()]),
            post: PostTransform::None,
            all_positive: false,
        }
    }

    #[test]
    fn binary_svc_votes_and_scores_like_onnxruntime() {
        // score = 1 * K(x, -1) + (-1) * K(x, 1) = -2x: positive (class 0) for x < 0
        let op = two_class_svc(false);
        let out = op.eval_all(&[&tensor2(&[[-0.5f32], [0.25]])]).unwrap();
        assert_eq!(slice::<String>(&out[0]).unwrap(), ["neg", "pos"]);
        assert_eq!(slice::<f32>(&out[1]).unwrap(), [-1.0, 1.0, 0.5, -0.5]);
        let op = two_class_svc(true);
        let out = op.eval_all(&[&tensor2(&[[-0.5f32]])]).unwrap();
        let p = slice::<f32>(&out[1]).unwrap();
        // pairwise P(class 0) = 1 - logistic(score * A + B) = 1 - logistic(-2); coupling stops near it
        assert!((p[0] - (1.0 - logistic_f32(-2.0))).abs() < 1e-2 && (p[0] + p[1] - 1.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn one_class_regressor_signs_the_score() {
        let op = SvmRegressor {
            node: "oc".into(),
            kernel: rbf(1.0),
            support_vectors: vec![0.0],
            n_features: 1,
            coefficients: vec![1.0],
            rho: -0.5,
            one_class: true,
        };
        let y = op.eval(&[&tensor2(&[[0.0f32], [3.0]])]).unwrap();
        assert_eq!(slice::<f32>(&y).unwrap(), [1.0, -1.0]);
    }
}
