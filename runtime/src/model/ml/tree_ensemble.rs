//! `ai.onnx.ml` TreeEnsembleClassifier / TreeEnsembleRegressor, evaluated the way onnxruntime does.
//!
//! Stock tract 0.23.9 rejects skl2onnx's binary classifiers, lacks the regressor, mis-decodes
//! `BRANCH_GTE` and walks leaves in O(trees × leaves) per row. Every tree here is a flat array of nodes
//! (children are absolute indices), so a row costs O(depth) per tree; [`super::scoring`] finishes the
//! scores the way onnxruntime does.
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use tract_onnx::model::{OnnxOpRegister, ParsingContext};
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::attrs::{class_labels, err, floats, ints, post_transform, string_or};
use super::scoring::{score_op, Head, Layout, Scores, BLOCK};

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

/// `(tree, node id)` → flat index, built once per load. Exporters write each tree's nodes as one run numbered
/// 0, 1, 2, … in order, with tree ids 0, 1, 2, …: that layout is indexed by arithmetic, anything else through a
/// hash map (a 6,000-node GBM's cold start spent a quarter of a millisecond hashing).
enum NodeIndex {
    /// `runs[tree] = (first flat index, node count)`.
    Runs(Vec<(usize, usize)>),
    Map(FxHashMap<(i64, i64), usize>),
}

impl NodeIndex {
    /// The index, and the tree ids in first-seen order (how onnxruntime sums the trees).
    fn new(tree_ids: &[i64], node_ids: &[i64]) -> Result<(NodeIndex, Vec<i64>), String> {
        if let Some(runs) = NodeIndex::runs(tree_ids, node_ids) {
            let order = (0..runs.len() as i64).collect();
            return Ok((NodeIndex::Runs(runs), order));
        }
        let n = node_ids.len();
        let mut index: FxHashMap<(i64, i64), usize> = FxHashMap::with_capacity_and_hasher(n, Default::default());
        let mut tree_order: Vec<i64> = Vec::new();
        let mut seen_trees: FxHashSet<i64> = FxHashSet::default();
        for i in 0..n {
            if index.insert((tree_ids[i], node_ids[i]), i).is_some() {
                return Err(format!("tree {} has node id {} twice", tree_ids[i], node_ids[i]));
            }
            if seen_trees.insert(tree_ids[i]) {
                tree_order.push(tree_ids[i]);
            }
        }
        Ok((NodeIndex::Map(index), tree_order))
    }

    /// The runs when trees 0, 1, 2, … each come as one block of nodes 0, 1, 2, …; `None` otherwise.
    fn runs(tree_ids: &[i64], node_ids: &[i64]) -> Option<Vec<(usize, usize)>> {
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for (i, (&t, &id)) in tree_ids.iter().zip(node_ids).enumerate() {
            if id == 0 && t == runs.len() as i64 {
                runs.push((i, 0));
            }
            if t != runs.len() as i64 - 1 {
                return None;
            }
            let run = runs.last_mut()?;
            if id != run.1 as i64 {
                return None;
            }
            run.1 += 1;
        }
        Some(runs)
    }

    fn get(&self, tree: i64, node: i64) -> Option<usize> {
        match self {
            NodeIndex::Runs(runs) => {
                let &(start, len) = runs.get(usize::try_from(tree).ok()?)?;
                usize::try_from(node).ok().filter(|id| *id < len).map(|id| start + id)
            }
            NodeIndex::Map(map) => map.get(&(tree, node)).copied(),
        }
    }
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
        let (index, tree_order) = NodeIndex::new(raw.tree_ids, raw.node_ids)?;
        // leaf weights grouped by node in their own order: node i's are `by_node[first[i]..first[i + 1]]`
        let mut owner = Vec::with_capacity(nw);
        let mut first = vec![0usize; n + 1];
        for j in 0..nw {
            let i = index.get(raw.w_tree_ids[j], raw.w_node_ids[j]).ok_or_else(|| {
                format!("leaf weight refers to missing node {} of tree {}", raw.w_node_ids[j], raw.w_tree_ids[j])
            })?;
            let target = to_u32(raw.w_targets[j], "leaf target id")?;
            if target as usize >= n_outputs {
                return Err(format!("leaf target id {target} is out of range for {n_outputs} outputs"));
            }
            owner.push((i, target));
            first[i + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut by_node = vec![(0u32, 0f32); nw];
        let mut next = first.clone();
        for (j, &(i, target)) in owner.iter().enumerate() {
            by_node[next[i]] = (target, raw.w_values[j]);
            next[i] += 1;
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
                for &(t, w) in &by_node[first[i]..first[i + 1]] {
                    leaf_target.push(t);
                    leaf_weight.push(w);
                }
                Node { feature: 0, threshold: 0.0, t: start, f: leaf_target.len() as u32, mode, nan_true: false }
            } else {
                let child = |id: i64| {
                    index.get(raw.tree_ids[i], id).map(|c| c as u32).ok_or_else(|| {
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
            .map(|&t| index.get(t, 0).map(|i| i as u32).ok_or_else(|| format!("tree {t} has no node 0 (root)")))
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
                // walk BLOCK trees at once: each walk is a chain of dependent loads from a node array
                // that outgrows L1, and independent chains overlap; leaves are still added in tree
                // order, so the sum is bit-identical to walking tree by tree
                for roots in self.roots.chunks(BLOCK) {
                    let mut lanes = [0u32; BLOCK];
                    let at = &mut lanes[..roots.len()];
                    at.copy_from_slice(roots);
                    loop {
                        let mut moved = false;
                        for a in at.iter_mut() {
                            let node = &self.nodes[*a as usize];
                            if node.mode != Mode::Leaf {
                                *a = Ensemble::step(node, row);
                                moved = true;
                            }
                        }
                        if !moved {
                            break;
                        }
                    }
                    for a in at.iter() {
                        let leaf = &self.nodes[*a as usize];
                        for k in leaf.t as usize..leaf.f as usize {
                            let t = self.leaf_target[k] as usize;
                            out[t] += self.leaf_weight[k] as f64;
                            has[t] = true;
                        }
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

impl Scores for Ensemble {
    fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    fn n_features(&self) -> usize {
        self.n_features
    }

    /// [`Ensemble::scores`] for up to [`BLOCK`] rows at once (`out`/`has` hold `n_outputs` per row).
    /// The rows' walks down one tree are independent, so the CPU overlaps them; each row still sums
    /// its trees in order, so the results are bit-identical to `scores`. [`BLOCK`] trees are also walked
    /// together for one row.
    fn scores_block(&self, rows: &[f32], width: usize, out: &mut [f64], has: &mut [bool]) {
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

fn build(node: &NodeProto, prefix: &str, n_outputs: usize, aggregate: Aggregate) -> TractResult<Ensemble> {
    // read in place: one String per node would be a malloc per node at every cold start
    let modes = node
        .get_attr_opt_slice::<Vec<u8>>("nodes_modes")?
        .unwrap_or_default()
        .iter()
        .map(|s| Mode::parse(&String::from_utf8_lossy(s)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(node, "nodes_modes", e))?;
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
    Ensemble::build(&raw, n_outputs, aggregate).map_err(|e| {
        format_err!("node {:?} ({}): {e}: re-export the model with skl2onnx or onnxmltools", node.name, node.op_type)
    })
}

fn classifier(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let labels = class_labels(node, "classlabels_int64s")?;
    let ensemble = build(node, "class", labels.len(), Aggregate::Sum)?;
    let base_values = floats(node, "base_values")?;
    let first = ensemble.leaf_target.first().copied();
    let layout = if labels.len() != 2 {
        Layout::Multi
    } else if ensemble.leaf_target.iter().all(|t| Some(*t) == first) {
        Layout::TreesBinary { all_positive: ensemble.leaf_weight.iter().all(|w| *w >= 0.0) }
    } else {
        Layout::TreesTwoClass
    };
    let head = Head::Classifier { labels, base_values, post: post_transform(node)?, layout };
    Ok((score_op(Arc::new(ensemble), head), vec![]))
}

fn regressor(_ctx: &ParsingContext, node: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let n_targets: i64 = node.get_attr_opt("n_targets")?.unwrap_or(1);
    if n_targets < 1 {
        return Err(err(node, "n_targets", format!("is {n_targets}; it must be at least 1: re-export the model")));
    }
    let aggregate = match string_or(node, "aggregate_function", "SUM")?.as_str() {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => {
            return Err(err(node, "aggregate_function", format!("is {other:?}; SUM, AVERAGE, MIN or MAX are known")))
        }
    };
    let ensemble = build(node, "target", n_targets as usize, aggregate)?;
    let mut base_values = floats(node, "base_values")?;
    base_values.resize(n_targets as usize, 0.0);
    let head = Head::Regressor { base_values, post: post_transform(node)? };
    Ok((score_op(Arc::new(ensemble), head), vec![]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ml::scoring::{logistic, PostTransform, ScoreOp};

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

    /// The two-stump ensembles' scores for rows `[-1, 11]` and `[1, 0]`.
    fn two_rows(e: &Ensemble) -> [f64; 2] {
        let (mut out, mut has) = ([0.0], [false]);
        e.scores(&[-1.0, 11.0], &mut out, &mut has);
        let first = out[0];
        e.scores(&[1.0, 0.0], &mut out, &mut has);
        [first, out[0]]
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
        assert_eq!(two_rows(&e), [11.0, 22.0]);
        let (mut out, mut has) = ([0.0], [false]);
        let avg = Ensemble { aggregate: Aggregate::Average, ..e.clone() };
        avg.scores(&[1.0, 0.0], &mut out, &mut has);
        assert_eq!(out[0], 11.0);
        let max = Ensemble { aggregate: Aggregate::Max, ..e };
        max.scores(&[1.0, 0.0], &mut out, &mut has);
        assert_eq!(out[0], 20.0);
    }

    #[test]
    fn nodes_are_indexed_by_runs_when_numbered_in_order_and_by_map_otherwise() {
        let runs = NodeIndex::runs(&[0, 0, 0, 1, 1], &[0, 1, 2, 0, 1]);
        assert_eq!(runs, Some(vec![(0, 3), (3, 2)]));
        assert_eq!(NodeIndex::runs(&[0, 0, 1], &[0, 2, 0]), None, "a gap in the ids");
        assert_eq!(NodeIndex::runs(&[1, 1, 0], &[0, 1, 0]), None, "trees out of order");
        assert_eq!(NodeIndex::runs(&[0, 1, 0], &[0, 0, 1]), None, "a tree in two blocks");
        // the same two stumps, trees 7 and 3, nodes shuffled: the map finds them, and trees sum in first-seen order
        let raw = RawTrees {
            tree_ids: &[7, 7, 3, 7, 3, 3],
            node_ids: &[2, 0, 0, 1, 2, 1],
            feature_ids: &[0, 0, 1, 0, 0, 0],
            modes: &[Mode::Leaf, Mode::Leq, Mode::Gt, Mode::Leaf, Mode::Leaf, Mode::Leaf],
            values: &[0.0, 0.0, 10.0, 0.0, 0.0, 0.0],
            true_ids: &[0, 1, 1, 0, 0, 0],
            false_ids: &[0, 2, 2, 0, 0, 0],
            nan_true: &[],
            w_tree_ids: &[7, 7, 3, 3],
            w_node_ids: &[1, 2, 1, 2],
            w_targets: &[0, 0, 0, 0],
            w_values: &[1.0, 2.0, 10.0, 20.0],
        };
        assert_eq!(two_rows(&Ensemble::build(&raw, 1, Aggregate::Sum).unwrap()), [11.0, 22.0]);
        let twice = RawTrees { node_ids: &[2, 0, 0, 2, 2, 1], ..raw };
        assert!(Ensemble::build(&twice, 1, Aggregate::Sum).unwrap_err().contains("twice"));
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

    #[test]
    fn binary_gbm_layout_matches_onnxruntime() {
        // skl2onnx's GradientBoostingClassifier: weights on class 0, one base value, LOGISTIC
        let stump = Arc::new(stump(Mode::Leq, false));
        let layout = Layout::TreesBinary { all_positive: false };
        let op = ScoreOp::binary_classifier(stump, vec![-0.5], PostTransform::Logistic, layout);
        let (mut p, mut has) = ([0.0; 2], [false; 2]);
        let label = op.row(&[0.0], &mut p, &mut has); // leaf 1.0 + base -0.5 = 0.5
        assert_eq!(label, 1);
        assert!((p[1] - logistic(0.5)).abs() < 1e-15 && (p[0] - logistic(-0.5)).abs() < 1e-15);
    }

    #[test]
    fn binary_forest_layout_matches_onnxruntime() {
        // skl2onnx's RandomForestClassifier: P(class 1) summed on class id 0, post NONE
        let forest = Ensemble { leaf_weight: vec![0.25, 0.75], ..stump(Mode::Leq, false) };
        let layout = Layout::TreesBinary { all_positive: true };
        let op = ScoreOp::binary_classifier(Arc::new(forest), vec![], PostTransform::None, layout);
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
        assert!(PostTransform::parse("BOGUS").is_err());
    }
}
