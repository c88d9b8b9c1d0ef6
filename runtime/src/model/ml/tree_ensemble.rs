//! `ai.onnx.ml` TreeEnsembleClassifier / TreeEnsembleRegressor, evaluated the way onnxruntime does.
//!
//! Stock tract 0.23.9 rejects skl2onnx's binary classifiers, lacks the regressor, mis-decodes
//! `BRANCH_GTE` and walks leaves in O(trees × leaves) per row. This op keeps every tree as a flat array
//! of nodes (children are absolute indices), so a row costs O(depth) per tree, and reproduces
//! onnxruntime's binary-class and post-transform rules so outputs match it within float rounding.
use std::sync::Arc;

use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

pub fn register(reg: &mut OnnxOpRegister) {
    reg.insert("TreeEnsembleClassifier", classifier);
    reg.insert("TreeEnsembleRegressor", regressor);
}

/// How a branch node compares `x` with its threshold; `true` takes the node's "true" child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            other => return Err(format!("unknown tree node mode {other:?}")),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

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

/// One node. For a leaf, `t..f` is its range in the ensemble's leaf arrays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    pub feature: u32,
    pub threshold: f32,
    pub t: u32,
    pub f: u32,
    pub mode: Mode,
    pub nan_true: bool,
}

/// The flat ensemble: every tree's nodes back to back, roots indexing into them.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub roots: Vec<u32>,
    pub nodes: Vec<Node>,
    pub leaf_target: Vec<u32>,
    pub leaf_weight: Vec<f32>,
    /// Classes (classifier) or targets (regressor).
    pub n_outputs: usize,
    pub n_features: usize,
    pub aggregate: Aggregate,
}

/// Raw attribute columns as ONNX stores them (one entry per node / per leaf weight).
pub struct RawTrees<'a> {
    pub tree_ids: &'a [i64],
    pub node_ids: &'a [i64],
    pub feature_ids: &'a [i64],
    pub modes: &'a [Mode],
    pub values: &'a [f32],
    pub true_ids: &'a [i64],
    pub false_ids: &'a [i64],
    pub nan_true: &'a [i64],
    pub w_tree_ids: &'a [i64],
    pub w_node_ids: &'a [i64],
    pub w_targets: &'a [i64],
    pub w_values: &'a [f32],
}

fn to_u32(v: i64, what: &str) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("{what} {v} is out of range"))
}

impl Ensemble {
    /// Builds the flat form, checking every reference so evaluation can index without panicking.
    pub fn build(raw: &RawTrees, n_outputs: usize, aggregate: Aggregate) -> Result<Ensemble, String> {
        let n = raw.node_ids.len();
        for (name, len) in [
            ("nodes_treeids", raw.tree_ids.len()),
            ("nodes_featureids", raw.feature_ids.len()),
            ("nodes_modes", raw.modes.len()),
            ("nodes_values", raw.values.len()),
            ("nodes_truenodeids", raw.true_ids.len()),
            ("nodes_falsenodeids", raw.false_ids.len()),
        ] {
            if len != n {
                return Err(format!("attribute {name} has {len} entries, nodes_nodeids has {n}"));
            }
        }
        if !raw.nan_true.is_empty() && raw.nan_true.len() != n {
            return Err(format!(
                "attribute nodes_missing_value_tracks_true has {} entries, not {n}",
                raw.nan_true.len()
            ));
        }
        let nw = raw.w_values.len();
        if raw.w_tree_ids.len() != nw || raw.w_node_ids.len() != nw || raw.w_targets.len() != nw {
            return Err("leaf weight attributes (*_treeids, *_nodeids, *_ids, *_weights) differ in length".into());
        }
        if n == 0 {
            return Err("tree ensemble has no nodes".into());
        }
        // (tree, node) -> flat index; trees keep their first-seen order, which is how onnxruntime sums them
        let mut index = std::collections::HashMap::with_capacity(n);
        let mut tree_order: Vec<i64> = Vec::new();
        let mut seen_trees = std::collections::HashSet::new();
        for i in 0..n {
            if index.insert((raw.tree_ids[i], raw.node_ids[i]), i).is_some() {
                return Err(format!("tree {} has node id {} twice", raw.tree_ids[i], raw.node_ids[i]));
            }
            if seen_trees.insert(raw.tree_ids[i]) {
                tree_order.push(raw.tree_ids[i]);
            }
        }
        // group leaf weights by node, keeping their order
        let mut weights_of: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for j in 0..nw {
            let &i = index.get(&(raw.w_tree_ids[j], raw.w_node_ids[j])).ok_or_else(|| {
                format!("leaf weight refers to missing node {} of tree {}", raw.w_node_ids[j], raw.w_tree_ids[j])
            })?;
            let target = to_u32(raw.w_targets[j], "leaf target id")?;
            if target as usize >= n_outputs {
                return Err(format!("leaf target id {target} is out of range for {n_outputs} outputs"));
            }
            weights_of[i].push((target, raw.w_values[j]));
        }
        let mut nodes = Vec::with_capacity(n);
        let mut leaf_target = Vec::with_capacity(nw);
        let mut leaf_weight = Vec::with_capacity(nw);
        let mut n_features = 0usize;
        // `i` indexes a dozen parallel attribute columns; an iterator over one of them would hide that
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let mode = raw.modes[i];
            let node = if mode == Mode::Leaf {
                let start = leaf_target.len() as u32;
                for &(t, w) in &weights_of[i] {
                    leaf_target.push(t);
                    leaf_weight.push(w);
                }
                Node { feature: 0, threshold: 0.0, t: start, f: leaf_target.len() as u32, mode, nan_true: false }
            } else {
                let child = |id: i64| {
                    index.get(&(raw.tree_ids[i], id)).map(|&c| c as u32).ok_or_else(|| {
                        format!("node {} of tree {} points to missing node {id}", raw.node_ids[i], raw.tree_ids[i])
                    })
                };
                let feature = to_u32(raw.feature_ids[i], "feature id")?;
                n_features = n_features.max(feature as usize + 1);
                Node {
                    feature,
                    threshold: raw.values[i],
                    t: child(raw.true_ids[i])?,
                    f: child(raw.false_ids[i])?,
                    mode,
                    nan_true: raw.nan_true.get(i).is_some_and(|&v| v != 0),
                }
            };
            nodes.push(node);
        }
        // a tree's root is its node with id 0 (skl2onnx and onnxmltools number from the root)
        let roots = tree_order
            .iter()
            .map(|&t| index.get(&(t, 0)).map(|&i| i as u32).ok_or_else(|| format!("tree {t} has no node 0 (root)")))
            .collect::<Result<Vec<_>, _>>()?;
        let ensemble = Ensemble { roots, nodes, leaf_target, leaf_weight, n_outputs, n_features, aggregate };
        ensemble.check_acyclic()?;
        Ok(ensemble)
    }

    /// Refuses cycles so evaluation always terminates: each walk from a root must end within `nodes` steps.
    fn check_acyclic(&self) -> Result<(), String> {
        let mut depth = vec![u32::MAX; self.nodes.len()];
        for &root in &self.roots {
            let mut stack = vec![(root, 0u32)];
            while let Some((i, d)) = stack.pop() {
                if d as usize > self.nodes.len() {
                    return Err("tree ensemble contains a cycle".into());
                }
                if depth[i as usize] != u32::MAX && depth[i as usize] >= d {
                    continue;
                }
                depth[i as usize] = d;
                let node = self.nodes[i as usize];
                if node.mode != Mode::Leaf {
                    stack.push((node.t, d + 1));
                    stack.push((node.f, d + 1));
                }
            }
        }
        Ok(())
    }

    /// The child a row goes to from branch `node` (callers stop at leaves).
    #[inline(always)]
    fn step(node: &Node, row: &[f32]) -> u32 {
        let x = row[node.feature as usize];
        // onnxruntime: `cmp(x, threshold) || (missing_value_tracks_true && isnan(x))`, in float32
        let go = match node.mode {
            Mode::Leq => x <= node.threshold,
            Mode::Lt => x < node.threshold,
            Mode::Gte => x >= node.threshold,
            Mode::Gt => x > node.threshold,
            Mode::Eq => x == node.threshold,
            Mode::Neq | Mode::Leaf => x != node.threshold,
        } | (node.nan_true & x.is_nan());
        // non-short-circuit `|`/`&` and a select: random rows make branches here unpredictable
        if go {
            node.t
        } else {
            node.f
        }
    }

    /// The leaf a row lands in for the tree rooted at `root`.
    #[inline]
    fn leaf(&self, root: u32, row: &[f32]) -> &Node {
        let mut node = &self.nodes[root as usize];
        while node.mode != Mode::Leaf {
            node = &self.nodes[Ensemble::step(node, row) as usize];
        }
        node
    }

    /// Raw aggregated scores for one row into `out` (len n_outputs); `has` marks outputs any leaf touched.
    pub fn scores(&self, row: &[f32], out: &mut [f64], has: &mut [bool]) {
        out.fill(0.0);
        has.fill(false);
        match self.aggregate {
            // the hot path (every skl2onnx tree model): a plain sum, accumulated in f64 like sklearn
            Aggregate::Sum | Aggregate::Average => {
                for &root in &self.roots {
                    let leaf = self.leaf(root, row);
                    for k in leaf.t as usize..leaf.f as usize {
                        let t = self.leaf_target[k] as usize;
                        out[t] += self.leaf_weight[k] as f64;
                        has[t] = true;
                    }
                }
                if self.aggregate == Aggregate::Average {
                    let n = self.roots.len() as f64;
                    out.iter_mut().for_each(|v| *v /= n);
                }
            }
            Aggregate::Min | Aggregate::Max => {
                for &root in &self.roots {
                    let leaf = self.leaf(root, row);
                    for k in leaf.t as usize..leaf.f as usize {
                        let (t, w) = (self.leaf_target[k] as usize, self.leaf_weight[k] as f64);
                        out[t] = match (self.aggregate, has[t]) {
                            (_, false) => w,
                            (Aggregate::Min, true) => out[t].min(w),
                            _ => out[t].max(w),
                        };
                        has[t] = true;
                    }
                }
            }
        }
    }
}

/// Rows evaluated together by [`Ensemble::scores_block`].
pub const BLOCK: usize = 8;

impl Ensemble {
    /// [`Ensemble::scores`] for up to [`BLOCK`] rows at once (`out`/`has` hold `n_outputs` per row).
    /// The rows' walks down one tree are independent, so the CPU overlaps them; each row still sums
    /// its trees in order, so the results are bit-identical to `scores`.
    pub fn scores_block(&self, rows: &[f32], width: usize, out: &mut [f64], has: &mut [bool]) {
        let n = rows.len() / width;
        let k = self.n_outputs;
        // one row (the common request) gains nothing from lockstep walking and pays its bookkeeping
        if n == 1 || !matches!(self.aggregate, Aggregate::Sum | Aggregate::Average) {
            for r in 0..n {
                let span = r * k..(r + 1) * k;
                self.scores(&rows[r * width..(r + 1) * width], &mut out[span.clone()], &mut has[span]);
            }
            return;
        }
        out[..n * k].fill(0.0);
        has[..n * k].fill(false);
        for &root in &self.roots {
            // walk all rows down this tree in lockstep: the loads of different rows are independent,
            // so they overlap instead of each waiting on the previous one (the nodes outgrow L1)
            let mut at = [root; BLOCK];
            loop {
                let mut moved = false;
                for (at, row) in at.iter_mut().zip(rows.chunks_exact(width)) {
                    let node = &self.nodes[*at as usize];
                    if node.mode != Mode::Leaf {
                        *at = Ensemble::step(node, row);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
            for (r, at) in at.iter().take(n).enumerate() {
                let leaf = &self.nodes[*at as usize];
                for j in leaf.t as usize..leaf.f as usize {
                    let t = r * k + self.leaf_target[j] as usize;
                    out[t] += self.leaf_weight[j] as f64;
                    has[t] = true;
                }
            }
        }
        if self.aggregate == Aggregate::Average {
            let trees = self.roots.len() as f64;
            out[..n * k].iter_mut().for_each(|v| *v /= trees);
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
pub struct TreeEnsembleOp {
    pub ensemble: Arc<Ensemble>,
    pub head: Arc<Head>,
}

// tract wants `Eq` on ops; float thresholds have no total equality, and two ops are only ever the
// same when they share their (immutable) data, so identity is the honest comparison.
impl PartialEq for TreeEnsembleOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.ensemble, &other.ensemble) && Arc::ptr_eq(&self.head, &other.head)
    }
}
impl Eq for TreeEnsembleOp {}

impl TreeEnsembleOp {
    /// Classifier: fills `probs` (n_classes) and returns the label. Regressor: fills `probs` (n_targets).
    pub fn row(&self, row: &[f32], probs: &mut [f64], has: &mut [bool]) -> i64 {
        self.ensemble.scores(row, probs, has);
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
        self.ensemble.n_outputs
    }
}

impl Op for TreeEnsembleOp {
    fn name(&self) -> StaticName {
        "MlambdaTreeEnsemble".into()
    }
    op_as_typed_op!();
}

impl EvalOp for TreeEnsembleOp {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let input = input.cast_to::<f32>()?;
        let shape = input.shape();
        ensure!(shape.len() == 2, "tree ensemble input must be [rows, features], got {shape:?}");
        let (n_rows, width) = (shape[0], shape[1]);
        ensure!(
            width >= self.ensemble.n_features,
            "tree ensemble reads feature {} but rows have {width} values",
            self.ensemble.n_features.saturating_sub(1)
        );
        let data = input.to_plain_array_view::<f32>()?;
        let data = data.as_slice().context("tree ensemble input is not contiguous")?;
        let k = self.n_outputs();
        let mut values = vec![0f32; n_rows * k];
        let mut labels = vec![0i64; n_rows];
        let mut scratch = vec![0f64; BLOCK * k];
        let mut has = vec![false; BLOCK * k];
        for start in (0..n_rows).step_by(BLOCK) {
            let n = BLOCK.min(n_rows - start);
            self.ensemble.scores_block(&data[start * width..(start + n) * width], width, &mut scratch, &mut has);
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

impl TypedOp for TreeEnsembleOp {
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

/// The inference-time wrapper: shape rules, then wires [`TreeEnsembleOp`] as is.
#[derive(Debug, Clone)]
struct TreeEnsembleExpansion(TreeEnsembleOp);

impl Expansion for TreeEnsembleExpansion {
    fn name(&self) -> StaticName {
        "MlambdaTreeEnsemble".into()
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
        let values = outputs.last().context("tree ensemble has no outputs")?;
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

fn floats(node: &NodeProto, name: &str) -> TractResult<Vec<f32>> {
    if node.get_attr_opt::<&tract_onnx::pb::TensorProto>(&format!("{name}_as_tensor"))?.is_some() {
        bail!("attribute {name}_as_tensor (double precision) is not supported: export with float32 attributes");
    }
    Ok(node.get_attr_opt_vec::<f32>(name)?.unwrap_or_default())
}

fn ints<'a>(node: &'a NodeProto, name: &str) -> TractResult<&'a [i64]> {
    Ok(node.get_attr_opt_slice::<i64>(name)?.unwrap_or(&[]))
}

fn build(node: &NodeProto, prefix: &str, n_outputs: usize, aggregate: Aggregate) -> TractResult<Ensemble> {
    let modes = node
        .get_attr_opt_vec::<String>("nodes_modes")?
        .unwrap_or_default()
        .iter()
        .map(|s| Mode::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format_err!("{e}"))?;
    let values = floats(node, "nodes_values")?;
    let weights = floats(node, &format!("{prefix}_weights"))?;
    let raw = RawTrees {
        tree_ids: ints(node, "nodes_treeids")?,
        node_ids: ints(node, "nodes_nodeids")?,
        feature_ids: ints(node, "nodes_featureids")?,
        modes: &modes,
        values: &values,
        true_ids: ints(node, "nodes_truenodeids")?,
        false_ids: ints(node, "nodes_falsenodeids")?,
        nan_true: ints(node, "nodes_missing_value_tracks_true")?,
        w_tree_ids: ints(node, &format!("{prefix}_treeids"))?,
        w_node_ids: ints(node, &format!("{prefix}_nodeids"))?,
        w_targets: ints(node, &format!("{prefix}_ids"))?,
        w_values: &weights,
    };
    Ensemble::build(&raw, n_outputs, aggregate).map_err(|e| format_err!("{e}"))
}

fn post_transform(node: &NodeProto) -> TractResult<PostTransform> {
    let s: String = node.get_attr_opt("post_transform")?.unwrap_or_else(|| "NONE".to_string());
    PostTransform::parse(&s).map_err(|e| format_err!("{e}"))
}

fn classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    if node.get_attr_opt_tvec::<&str>("classlabels_strings")?.is_some() {
        bail!("string class labels are not supported: train the classifier on integer labels 0/1");
    }
    let labels = node
        .get_attr_opt_slice::<i64>("classlabels_int64s")?
        .context("TreeEnsembleClassifier has no classlabels_int64s")?
        .to_vec();
    ensure!(!labels.is_empty(), "TreeEnsembleClassifier has no class labels");
    let ensemble = build(node, "class", labels.len(), Aggregate::Sum)?;
    let base_values = floats(node, "base_values")?;
    let first = ensemble.leaf_target.first().copied();
    let binary = labels.len() == 2 && ensemble.leaf_target.iter().all(|t| Some(*t) == first);
    let all_positive = ensemble.leaf_weight.iter().all(|w| *w >= 0.0);
    let head = Head::Classifier { labels, base_values, post: post_transform(node)?, binary, all_positive };
    Ok((expand(TreeEnsembleExpansion(TreeEnsembleOp { ensemble: Arc::new(ensemble), head: Arc::new(head) })), vec![]))
}

fn regressor(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let n_targets: i64 = node.get_attr_opt("n_targets")?.unwrap_or(1);
    ensure!(n_targets >= 1, "TreeEnsembleRegressor n_targets must be at least 1, got {n_targets}");
    let aggregate = match node.get_attr_opt::<String>("aggregate_function")?.as_deref().unwrap_or("SUM") {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => bail!("TreeEnsembleRegressor aggregate_function {other:?} is unknown"),
    };
    let ensemble = build(node, "target", n_targets as usize, aggregate)?;
    let mut base_values = floats(node, "base_values")?;
    base_values.resize(n_targets as usize, 0.0);
    let head = Head::Regressor { base_values, post: post_transform(node)? };
    Ok((expand(TreeEnsembleExpansion(TreeEnsembleOp { ensemble: Arc::new(ensemble), head: Arc::new(head) })), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One stump per call: feature 0 against 0.5 with the given mode; true leaf weighs 1, false leaf 2.
    fn stump(mode: Mode, nan_true: bool) -> Ensemble {
        let raw = RawTrees {
            tree_ids: &[0, 0, 0],
            node_ids: &[0, 1, 2],
            feature_ids: &[0, 0, 0],
            modes: &[mode, Mode::Leaf, Mode::Leaf],
            values: &[0.5, 0.0, 0.0],
            true_ids: &[1, 0, 0],
            false_ids: &[2, 0, 0],
            nan_true: &[i64::from(nan_true), 0, 0],
            w_tree_ids: &[0, 0],
            w_node_ids: &[1, 2],
            w_targets: &[0, 0],
            w_values: &[1.0, 2.0],
        };
        Ensemble::build(&raw, 1, Aggregate::Sum).unwrap()
    }

    fn eval(e: &Ensemble, x: f32) -> f64 {
        let mut out = [0.0];
        let mut has = [false];
        e.scores(&[x], &mut out, &mut has);
        out[0]
    }

    #[test]
    fn every_branch_mode_compares_as_named() {
        // (mode, x) -> took the true branch?
        let cases = [
            (Mode::Leq, 0.5, true),
            (Mode::Leq, 0.6, false),
            (Mode::Lt, 0.5, false),
            (Mode::Lt, 0.4, true),
            (Mode::Gte, 0.5, true),
            (Mode::Gte, 0.4, false),
            (Mode::Gt, 0.5, false),
            (Mode::Gt, 0.6, true),
            (Mode::Eq, 0.5, true),
            (Mode::Eq, 0.6, false),
            (Mode::Neq, 0.5, false),
            (Mode::Neq, 0.6, true),
        ];
        for (mode, x, took_true) in cases {
            let want = if took_true { 1.0 } else { 2.0 };
            assert_eq!(eval(&stump(mode, false), x), want, "{mode:?} at {x}");
        }
    }

    #[test]
    fn nan_follows_missing_value_tracks_true() {
        assert_eq!(eval(&stump(Mode::Leq, true), f32::NAN), 1.0);
        assert_eq!(eval(&stump(Mode::Leq, false), f32::NAN), 2.0);
        assert_eq!(eval(&stump(Mode::Gte, true), f32::NAN), 1.0);
        assert_eq!(eval(&stump(Mode::Gte, false), f32::NAN), 2.0);
        // NaN != threshold is true, as in onnxruntime
        assert_eq!(eval(&stump(Mode::Neq, false), f32::NAN), 1.0);
    }

    #[test]
    fn trees_sum_and_average() {
        // two stumps on different features
        let raw = RawTrees {
            tree_ids: &[0, 0, 0, 1, 1, 1],
            node_ids: &[0, 1, 2, 0, 1, 2],
            feature_ids: &[0, 0, 0, 1, 0, 0],
            modes: &[Mode::Leq, Mode::Leaf, Mode::Leaf, Mode::Gt, Mode::Leaf, Mode::Leaf],
            values: &[0.0, 0.0, 0.0, 10.0, 0.0, 0.0],
            true_ids: &[1, 0, 0, 1, 0, 0],
            false_ids: &[2, 0, 0, 2, 0, 0],
            nan_true: &[],
            w_tree_ids: &[0, 0, 1, 1],
            w_node_ids: &[1, 2, 1, 2],
            w_targets: &[0, 0, 0, 0],
            w_values: &[1.0, 2.0, 10.0, 20.0],
        };
        let e = Ensemble::build(&raw, 1, Aggregate::Sum).unwrap();
        let (mut out, mut has) = ([0.0], [false]);
        e.scores(&[-1.0, 11.0], &mut out, &mut has);
        assert_eq!(out[0], 11.0);
        e.scores(&[1.0, 0.0], &mut out, &mut has);
        assert_eq!(out[0], 22.0);
        let avg = Ensemble { aggregate: Aggregate::Average, ..e.clone() };
        avg.scores(&[1.0, 0.0], &mut out, &mut has);
        assert_eq!(out[0], 11.0);
        let max = Ensemble { aggregate: Aggregate::Max, ..e };
        max.scores(&[1.0, 0.0], &mut out, &mut has);
        assert_eq!(out[0], 20.0);
    }

    #[test]
    fn blocks_equal_row_by_row() {
        for aggregate in [Aggregate::Sum, Aggregate::Average, Aggregate::Max] {
            let e = Ensemble { aggregate, ..stump(Mode::Gte, true) };
            let rows: Vec<f32> = (0..11).map(|i| if i == 3 { f32::NAN } else { i as f32 * 0.1 }).collect();
            let (mut out, mut has) = (vec![0.0; BLOCK], vec![false; BLOCK]);
            for chunk in rows.chunks(BLOCK) {
                e.scores_block(chunk, 1, &mut out, &mut has);
                for (r, x) in chunk.iter().enumerate() {
                    assert_eq!(out[r], eval(&e, *x), "{aggregate:?} at {x}");
                }
            }
        }
    }

    #[test]
    fn broken_trees_are_refused() {
        let mut raw = RawTrees {
            tree_ids: &[0, 0, 0],
            node_ids: &[0, 1, 2],
            feature_ids: &[0, 0, 0],
            modes: &[Mode::Leq, Mode::Leaf, Mode::Leaf],
            values: &[0.5, 0.0, 0.0],
            true_ids: &[1, 0, 0],
            false_ids: &[7, 0, 0],
            nan_true: &[],
            w_tree_ids: &[0],
            w_node_ids: &[1],
            w_targets: &[0],
            w_values: &[1.0],
        };
        let err = Ensemble::build(&raw, 1, Aggregate::Sum).unwrap_err();
        assert!(err.contains("missing node 7"), "{err}");
        raw.false_ids = &[0, 0, 0];
        let err = Ensemble::build(&raw, 1, Aggregate::Sum).unwrap_err();
        assert!(err.contains("cycle"), "{err}");
        raw.false_ids = &[2, 0, 0];
        raw.w_targets = &[3];
        assert!(Ensemble::build(&raw, 1, Aggregate::Sum).unwrap_err().contains("out of range"));
    }

    fn op(head: Head) -> TreeEnsembleOp {
        TreeEnsembleOp { ensemble: Arc::new(stump(Mode::Leq, false)), head: Arc::new(head) }
    }

    #[test]
    fn binary_gbm_layout_matches_onnxruntime() {
        // skl2onnx's GradientBoostingClassifier: weights on class 0, one base value, LOGISTIC
        let op = op(Head::Classifier {
            labels: vec![0, 1],
            base_values: vec![-0.5],
            post: PostTransform::Logistic,
            binary: true,
            all_positive: false,
        });
        let (mut p, mut has) = ([0.0; 2], [false; 2]);
        let label = op.row(&[0.0], &mut p, &mut has); // leaf 1.0 + base -0.5 = 0.5
        assert_eq!(label, 1);
        assert!((p[1] - logistic(0.5)).abs() < 1e-15 && (p[0] - logistic(-0.5)).abs() < 1e-15);
    }

    #[test]
    fn binary_forest_layout_matches_onnxruntime() {
        // skl2onnx's RandomForestClassifier: P(class 1) summed on class id 0, post NONE
        let op = TreeEnsembleOp {
            ensemble: Arc::new(Ensemble { leaf_weight: vec![0.25, 0.75], ..stump(Mode::Leq, false) }),
            head: Arc::new(Head::Classifier {
                labels: vec![0, 1],
                base_values: vec![],
                post: PostTransform::None,
                binary: true,
                all_positive: true,
            }),
        };
        let (mut p, mut has) = ([0.0; 2], [false; 2]);
        assert_eq!(op.row(&[0.0], &mut p, &mut has), 0);
        assert_eq!(p, [0.75, 0.25]);
        assert_eq!(op.row(&[1.0], &mut p, &mut has), 1);
        assert_eq!(p, [0.25, 0.75]);
    }

    #[test]
    fn logistic_is_stable_far_out() {
        assert_eq!(logistic(0.0), 0.5);
        assert!(logistic(-800.0) >= 0.0 && logistic(800.0) <= 1.0);
        assert!((logistic(2.0) + logistic(-2.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn modes_parse_and_reject_unknown() {
        assert_eq!(Mode::parse("BRANCH_GTE"), Ok(Mode::Gte));
        assert!(Mode::parse("BRANCH_MEMBER").unwrap_err().contains("BRANCH_MEMBER"));
        assert!(PostTransform::parse("PROBIT").is_err());
    }
}
