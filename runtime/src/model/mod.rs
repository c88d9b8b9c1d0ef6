//! Loading and running ONNX models: the only module that touches tract.
//!
//! Models are parsed with tract-onnx plus our own `ai.onnx.ml` ops (see [`ml`]) and run as a plain typed
//! graph: no declutter/optimize passes, because those rewrite `Div(x, c)` into `Mul(x, 1/c)` and move
//! predictions away from onnxruntime's and scikit-learn's.
//!
//! A model takes its inputs as the graph declares them: one float `[rows, k]` tensor, or several named
//! inputs (what a `ColumnTransformer` export looks like), each float32, int64 or string. It answers as a
//! classifier (the graph's label output plus `[rows, classes]` probabilities, labels read from the ONNX
//! file) or as a single-target regressor.
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

#[cfg(test)]
mod e2e;
mod expansions;
pub mod ml;
pub mod ops;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file is not a model this runtime serves; the message says why and what to do.
    #[error("{0}")]
    Load(String),
    /// A prediction failed (a bug or a batch the graph cannot take), never a client mistake.
    #[error("{0}")]
    Run(String),
}

fn load_err(msg: impl std::fmt::Display) -> ModelError {
    ModelError::Load(msg.to_string())
}

fn run_err(msg: impl std::fmt::Display) -> ModelError {
    ModelError::Run(msg.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classifier,
    Regressor,
    Anomaly,
}

/// One prediction of a single-float-input binary classifier or regressor (the original API).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Output {
    /// The class label (classifiers) or the predicted value (regressors).
    pub prediction: f64,
    /// P(second class) for binary classifiers; `None` for regressors and multiclass models.
    pub probability: Option<f64>,
}

/// The element type of a graph input, and so the JSON type its request field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    F32,
    /// A `tensor(double)` input (`DoubleTensorType` exports): JSON numbers at full precision.
    F64,
    I64,
    Str,
}

impl InputKind {
    /// A float input (single or double precision): request fields are its columns, named by MODEL_FEATURES.
    pub fn is_float(self) -> bool {
        matches!(self, InputKind::F32 | InputKind::F64)
    }

    /// The JSON type a request field of this kind needs, for messages.
    pub fn json_type(self) -> &'static str {
        match self {
            InputKind::F32 | InputKind::F64 => "a number",
            InputKind::I64 => "an integer",
            InputKind::Str => "a string",
        }
    }
}

/// A graph input: `[rows, width]` (or `[rows]`, width 1) of one element kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputSpec {
    pub name: String,
    pub kind: InputKind,
    pub width: usize,
    /// The input feeds an `Imputer` (through Cast/Concat/FeatureVectorizer/...): a missing value (JSON
    /// `null`) becomes NaN and is imputed. Only float inputs.
    pub imputed: bool,
    #[serde(skip)]
    rank: usize,
}

/// A classifier's labels, in the model's own type and in the order of its probability columns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Labels {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Int(v) => v.len(),
            Labels::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label `i` written as a string: the key of the `probabilities` object.
    pub fn key(&self, i: usize) -> String {
        match self {
            Labels::Int(v) => v[i].to_string(),
            Labels::Str(v) => v[i].clone(),
        }
    }
}

/// What the model predicts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Classifier {
        labels: Labels,
    },
    Regressor,
    /// An anomaly detector (`IsolationForest`, `OneClassSVM`): a label, -1 for an outlier and 1 for an inlier,
    /// and the model's score (scikit-learn's `decision_function`: below 0 is an outlier).
    Anomaly,
}

/// One predicted class label in the model's own type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum Label {
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Int(i) => write!(f, "{i}"),
            Label::Str(s) => f.write_str(s),
        }
    }
}

/// A borrowed [`Label`], as [`Answers`] hands them out without cloning strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelRef<'a> {
    Int(i64),
    Str(&'a str),
}

impl LabelRef<'_> {
    pub fn to_owned(self) -> Label {
        match self {
            LabelRef::Int(i) => Label::Int(i),
            LabelRef::Str(s) => Label::Str(s.to_string()),
        }
    }
}

/// One graph input's values for a batch, row-major (`rows × width`).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Str(Vec<String>),
}

impl Column {
    pub fn with_capacity(kind: InputKind, n: usize) -> Column {
        match kind {
            InputKind::F32 => Column::F32(Vec::with_capacity(n)),
            InputKind::F64 => Column::F64(Vec::with_capacity(n)),
            InputKind::I64 => Column::I64(Vec::with_capacity(n)),
            InputKind::Str => Column::Str(Vec::with_capacity(n)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn truncate(&mut self, n: usize) {
        match self {
            Column::F32(v) => v.truncate(n),
            Column::F64(v) => v.truncate(n),
            Column::I64(v) => v.truncate(n),
            Column::Str(v) => v.truncate(n),
        }
    }

    fn kind(&self) -> InputKind {
        match self {
            Column::F32(_) => InputKind::F32,
            Column::F64(_) => InputKind::F64,
            Column::I64(_) => InputKind::I64,
            Column::Str(_) => InputKind::Str,
        }
    }
}

/// A batch runs on one thread below twice this many rows: a thread's start and its state cost more than a
/// share of fewer rows saves (`scripts/bench-runtime` measures the batch of 1000 both ways).
pub const PARALLEL_MIN_ROWS: usize = 128;

/// ... or when it is expected to take less than this on one thread. Starting a thread and its run state cost
/// this 2-core VM about 0.15 ms a batch: a small MLP's 1000 rows (0.34 ms on one thread) ran slower split in
/// two, a GBM's (0.9 ms and up) faster (`bench_model --threads 1|2`).
pub const SPLIT_MIN_NS: u64 = 500_000;

/// `n` rows for the model: one [`Column`] per graph input, in [`Model::inputs`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub n: usize,
    pub columns: Vec<Column>,
}

impl Column {
    /// Splits off the values of the rows from `row` on (each row `width` values), keeping the rest.
    fn split_rows(&mut self, row: usize, width: usize) -> Column {
        let at = row * width;
        match self {
            Column::F32(v) => Column::F32(v.split_off(at)),
            Column::F64(v) => Column::F64(v.split_off(at)),
            Column::I64(v) => Column::I64(v.split_off(at)),
            Column::Str(v) => Column::Str(v.split_off(at)),
        }
    }
}

impl Batch {
    /// `parts` batches of consecutive rows, in order, as even as the rows allow.
    fn split(mut self, parts: usize, widths: &[usize]) -> Vec<Batch> {
        let mut out = Vec::with_capacity(parts);
        for part in (1..parts).rev() {
            let start = self.n * part / parts;
            let columns = self.columns.iter_mut().zip(widths).map(|(c, w)| c.split_rows(start, *w)).collect();
            out.push(Batch { n: self.n - start, columns });
            self.n = start;
        }
        out.push(self);
        out.reverse();
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
enum LabelColumn {
    Int(Vec<i64>),
    Str(Vec<String>),
}

/// A batch's predictions, read row by row without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    n: usize,
    labels: Option<LabelColumn>,
    /// `n × width`: probabilities (classifiers) or the value (regressors, width 1) or the score (anomaly
    /// detectors, width 1).
    values: Vec<f32>,
    width: usize,
    /// The values are an anomaly detector's scores beside its labels.
    scored: bool,
}

impl Answers {
    /// The answers of consecutive parts of one batch, in order, as one.
    fn concat(parts: Vec<Answers>) -> Result<Answers, ModelError> {
        let mut parts = parts.into_iter();
        let Some(mut all) = parts.next() else { return Err(run_err("a batch split into no parts")) };
        for part in parts {
            all.n += part.n;
            all.values.extend(part.values);
            match (all.labels.as_mut(), part.labels) {
                (Some(LabelColumn::Int(a)), Some(LabelColumn::Int(b))) => a.extend(b),
                (Some(LabelColumn::Str(a)), Some(LabelColumn::Str(b))) => a.extend(b),
                (None, None) => {}
                _ => return Err(run_err("the parts of a batch answered with different label types")),
            }
        }
        Ok(all)
    }

    /// A regressor's answers (tests and tools; models make them with [`Model::run`]).
    pub fn from_values(values: Vec<f32>) -> Answers {
        Answers { n: values.len(), labels: None, values, width: 1, scored: false }
    }

    /// A classifier's answers: one label per row and `classes` probabilities per row.
    pub fn from_int_labels(labels: Vec<i64>, probabilities: Vec<f32>, classes: usize) -> Answers {
        let n = labels.len();
        Answers { n, labels: Some(LabelColumn::Int(labels)), values: probabilities, width: classes, scored: false }
    }

    /// [`Answers::from_int_labels`] for string labels.
    pub fn from_str_labels(labels: Vec<String>, probabilities: Vec<f32>, classes: usize) -> Answers {
        let n = labels.len();
        Answers { n, labels: Some(LabelColumn::Str(labels)), values: probabilities, width: classes, scored: false }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The predicted label of row `i` (classifiers).
    pub fn label(&self, i: usize) -> Option<LabelRef<'_>> {
        match self.labels.as_ref()? {
            LabelColumn::Int(v) => Some(LabelRef::Int(v[i])),
            LabelColumn::Str(v) => Some(LabelRef::Str(&v[i])),
        }
    }

    /// Row `i`'s probabilities in label order (classifiers).
    pub fn probabilities(&self, i: usize) -> Option<&[f32]> {
        self.labels.as_ref().filter(|_| !self.scored).map(|_| &self.values[i * self.width..(i + 1) * self.width])
    }

    /// P(second class) of row `i` (binary classifiers).
    pub fn probability(&self, i: usize) -> Option<f64> {
        (self.labels.is_some() && !self.scored && self.width == 2).then(|| f64::from(self.values[i * 2 + 1]))
    }

    /// The score of row `i` (anomaly detectors).
    pub fn score(&self, i: usize) -> Option<f64> {
        self.scored.then(|| f64::from(self.values[i]))
    }

    /// The predicted value of row `i` (regressors).
    pub fn value(&self, i: usize) -> Option<f64> {
        self.labels.is_none().then(|| f64::from(self.values[i]))
    }

    /// Row `i` as an owned value.
    pub fn row(&self, i: usize) -> RowAnswer {
        match self.label(i) {
            Some(label) => RowAnswer {
                prediction: Prediction::Label(label.to_owned()),
                probability: self.probability(i),
                probabilities: self.probabilities(i).map(|p| p.iter().map(|x| f64::from(*x)).collect()),
                score: self.score(i),
            },
            None => RowAnswer {
                prediction: Prediction::Value(f64::from(self.values[i])),
                probability: None,
                probabilities: None,
                score: None,
            },
        }
    }
}

/// A classifier's label or a regressor's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Prediction {
    Label(Label),
    Value(f64),
}

/// One row's answer: `probabilities` in the order of the model's labels ([`Model::kind`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RowAnswer {
    pub prediction: Prediction,
    /// P(second class), binary classifiers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<f64>>,
    /// An anomaly detector's score (below 0 is an outlier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A request field: a column of the single float input (named by `MODEL_FEATURES`), or a whole named input
/// (a scalar when its width is 1, else an array of `width` values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// Index into [`Model::inputs`].
    pub input: usize,
    /// First column this field fills in that input.
    pub column: usize,
    /// 1 for a scalar field; the input's width for an array field.
    pub width: usize,
    pub kind: InputKind,
    /// `null` accepted (becomes NaN for the graph's `Imputer`).
    pub nullable: bool,
}

pub struct Model {
    inputs: Vec<InputSpec>,
    kind: Kind,
    plan: Arc<TypedSimplePlan>,
    /// Run states kept between calls: spawning one per call costs about as much as a small model's inference.
    states: std::sync::Mutex<Vec<TypedSimpleState>>,
    /// tract 0.23.9's `Scan` keeps its loop state from one run to the next, so a run with another batch size
    /// reads the last one's: graphs with a loop (`KNeighbors*` exports) get a fresh state every run.
    pool_states: bool,
    /// How many threads a batch of at least 2 × [`PARALLEL_MIN_ROWS`] rows is split over; read on the first such
    /// batch, because reading the cgroup's quota costs a cold start that never sees one.
    threads: std::sync::OnceLock<usize>,
    /// Nanoseconds a row took in the graph the last time a thread ran at least [`PARALLEL_MIN_ROWS`] rows (a
    /// whole batch or one part of a split one; 0: none yet), which decides whether the next large batch is worth
    /// splitting.
    row_ns: std::sync::atomic::AtomicU64,
    /// Which graph output holds the labels (classifiers).
    label_output: Option<usize>,
    /// Which graph output holds the probabilities (classifier) or values (regressor).
    values_output: usize,
    /// Columns of `values_output` per row.
    width: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("inputs", &self.inputs).field("kind", &self.kind).finish()
    }
}

/// ONNX `TensorProto.DataType` codes.
const ONNX_FLOAT: i32 = 1;
const ONNX_DOUBLE: i32 = 11;
const ONNX_STRING: i32 = 8;
const ONNX_INT64: i32 = 7;

/// Ops a missing value passes through unchanged on its way to an `Imputer`.
const PASS_THROUGH: &[&str] =
    &["Cast", "Concat", "FeatureVectorizer", "Identity", "Reshape", "Flatten", "Gather", "ArrayFeatureExtractor"];

/// True when `name` reaches an `Imputer` node through [`PASS_THROUGH`] ops only.
fn feeds_imputer(graph: &pb::GraphProto, name: &str) -> bool {
    let mut frontier = vec![name.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(tensor) = frontier.pop() {
        if !seen.insert(tensor.clone()) {
            continue;
        }
        for node in graph.node.iter().filter(|n| n.input.contains(&tensor)) {
            if node.op_type == "Imputer" {
                return true;
            }
            if PASS_THROUGH.contains(&node.op_type.as_str()) {
                frontier.extend(node.output.iter().cloned());
            }
        }
    }
    false
}

/// The graph's real inputs (initializers excluded), each `[rows, width]` or `[rows]`.
fn graph_inputs(graph: &pb::GraphProto) -> Result<Vec<InputSpec>, ModelError> {
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())).collect();
    if inputs.is_empty() {
        return Err(load_err("model has no inputs"));
    }
    inputs
        .into_iter()
        .map(|input| {
            let Some(pb::type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref())
            else {
                return Err(load_err(format!("model input {:?} is not a tensor", input.name)));
            };
            let kind = match tensor.elem_type {
                ONNX_FLOAT => InputKind::F32,
                ONNX_DOUBLE => InputKind::F64,
                ONNX_INT64 => InputKind::I64,
                ONNX_STRING => InputKind::Str,
                other => {
                    return Err(load_err(format!(
                        "model input {:?} has onnx element type {other}; mlambda serves float, double, int64 and \
                         string inputs: export with FloatTensorType, DoubleTensorType, Int64TensorType or \
                         StringTensorType",
                        input.name
                    )))
                }
            };
            let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
            let fixed = |d: &pb::tensor_shape_proto::Dimension| match d.value {
                Some(pb::tensor_shape_proto::dimension::Value::DimValue(w)) if w > 0 => usize::try_from(w).ok(),
                _ => None,
            };
            let (rank, width) = match dims {
                [_] => (1, Some(1)),
                [_, last] => (2, fixed(last)),
                _ => (dims.len(), None),
            };
            let width = width.ok_or_else(|| {
                load_err(format!(
                    "model input {:?} must have shape [rows, features] with a fixed feature count: export with \
                     FloatTensorType([None, n_features]) (or [None, 1] per column)",
                    input.name
                ))
            })?;
            let imputed = kind.is_float() && feeds_imputer(graph, &input.name);
            Ok(InputSpec { name: input.name.clone(), kind, width, imputed, rank })
        })
        .collect()
}

fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn strings(raw: &[Vec<u8>]) -> Vec<String> {
    raw.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
}

/// A classifier's labels as the ONNX file states them: ZipMap's, else the classifier node's, else (MLP
/// exports) the constant `ArrayFeatureExtractor` indexes to make the label output.
fn proto_labels(graph: &pb::GraphProto) -> Option<Labels> {
    let from_attrs = |node: &pb::NodeProto| -> Option<Labels> {
        for name in ["classlabels_int64s", "classlabels_ints"] {
            if let Some(a) = attr(node, name).filter(|a| !a.ints.is_empty()) {
                return Some(Labels::Int(a.ints.clone()));
            }
        }
        attr(node, "classlabels_strings").filter(|a| !a.strings.is_empty()).map(|a| Labels::Str(strings(&a.strings)))
    };
    let by_op = |op: &'static str| graph.node.iter().filter(move |n| n.op_type == op);
    if let Some(labels) = by_op("ZipMap").find_map(from_attrs) {
        return Some(labels);
    }
    for op in ["TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier", "TreeEnsemble"] {
        if let Some(labels) = by_op(op).find_map(from_attrs) {
            return Some(labels);
        }
    }
    let constant_labels = |n: &pb::NodeProto| {
        let source = n.input.first()?;
        let tensor = graph.initializer.iter().find(|t| &t.name == source).or_else(|| {
            let node = graph.node.iter().find(|c| c.op_type == "Constant" && c.output.first() == Some(source))?;
            attr(node, "value")?.t.as_ref()
        })?;
        tensor_labels(tensor)
    };
    // the extractor that makes the label output: a KNN export has another, over its training rows' labels
    label_extractor(graph)
        .and_then(constant_labels)
        .or_else(|| by_op("ArrayFeatureExtractor").find_map(constant_labels))
}

/// The `ArrayFeatureExtractor` the first graph output (the label) comes from, through shape-only ops.
fn label_extractor(graph: &pb::GraphProto) -> Option<&pb::NodeProto> {
    let mut name = &graph.output.first()?.name;
    for _ in 0..graph.node.len() {
        let node = graph.node.iter().find(|n| n.output.first() == Some(name))?;
        match node.op_type.as_str() {
            "ArrayFeatureExtractor" => return Some(node),
            "Cast" | "Reshape" | "Identity" | "Squeeze" | "Unsqueeze" | "Flatten" => name = node.input.first()?,
            _ => return None,
        }
    }
    None
}

fn tensor_labels(t: &pb::TensorProto) -> Option<Labels> {
    const INT32: i32 = 6;
    if !t.string_data.is_empty() {
        return Some(Labels::Str(strings(&t.string_data)));
    }
    if !t.int64_data.is_empty() {
        return Some(Labels::Int(t.int64_data.clone()));
    }
    if !t.int32_data.is_empty() {
        return Some(Labels::Int(t.int32_data.iter().map(|i| i64::from(*i)).collect()));
    }
    match t.data_type {
        ONNX_INT64 if !t.raw_data.is_empty() => Some(Labels::Int(
            t.raw_data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(),
        )),
        INT32 if !t.raw_data.is_empty() => Some(Labels::Int(
            t.raw_data.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))).collect(),
        )),
        _ => None,
    }
}

/// A value each input's encoder knows (the probe must not trip a `handle_unknown='error'` encoder).
fn probe_batch(graph: &pb::GraphProto, inputs: &[InputSpec]) -> Batch {
    let known = |name: &str, attr_names: &[&str]| -> Option<pb::AttributeProto> {
        let mut tensor = name.to_string();
        // follow the input through shape-only ops to the node that reads its values
        for _ in 0..8 {
            let node = graph.node.iter().find(|n| n.input.first() == Some(&tensor))?;
            if let Some(a) = attr_names.iter().find_map(|a| attr(node, a)) {
                return Some(a.clone());
            }
            tensor = node.output.first()?.clone();
        }
        None
    };
    let columns = inputs
        .iter()
        .map(|spec| match spec.kind {
            InputKind::F32 => Column::F32(vec![0.0; spec.width]),
            InputKind::F64 => Column::F64(vec![0.0; spec.width]),
            InputKind::I64 => {
                let v = known(&spec.name, &["cats_int64s", "keys_int64s"]).and_then(|a| a.ints.first().copied());
                Column::I64(vec![v.unwrap_or(0); spec.width])
            }
            InputKind::Str => {
                let v = known(&spec.name, &["cats_strings", "keys_strings", "classes_strings"])
                    .and_then(|a| a.strings.first().map(|s| String::from_utf8_lossy(s).into_owned()));
                Column::Str(vec![v.unwrap_or_default(); spec.width])
            }
        })
        .collect();
    Batch { n: 1, columns }
}

/// Optimizes graphs with matrix products (MLPs): an unoptimized tract plan re-plans every `MatMul` on every
/// call (`EinSum::eval`), which costs ~0.5 ms a row. Other graphs stay unoptimized, because the passes trade
/// exactness for speed (see module docs); `tests/tabular.rs` holds the optimized MLPs to 1e-5 of onnxruntime.
/// A graph the optimizer cannot take runs unoptimized, as before.
fn optimize_matmuls(typed: TypedModel) -> TypedModel {
    if !typed.nodes().iter().any(|n| n.op.name().starts_with("EinSum")) {
        return typed;
    }
    match typed.clone().into_optimized() {
        Ok(optimized) => optimized,
        Err(e) => {
            eprintln!("note: the graph runs unoptimized ({e:#})");
            typed
        }
    }
}

impl Model {
    pub fn from_path(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Load(format!("cannot read model file {}: {e}", path.display())))?;
        Model::from_bytes(&bytes).map_err(|e| match e {
            ModelError::Load(m) => ModelError::Load(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
        let onnx = ops::onnx();
        let mut proto = onnx
            .proto_model_for_read(&mut &*bytes)
            .map_err(|e| load_err(format!("not a readable onnx model ({e:#}); is this the .onnx file?")))?;
        if let Some(graph) = proto.graph.as_mut() {
            ml::text::fuse(graph);
            ml::neighbors::fuse(graph);
        }
        let graph = proto.graph.as_ref().ok_or_else(|| load_err("onnx file has no graph"))?;
        ops::check_supported(&onnx, graph).map_err(load_err)?;
        let inputs = graph_inputs(graph)?;
        let labels = proto_labels(graph);
        let probe = probe_batch(graph, &inputs);
        let mut model =
            onnx.model_for_proto_model(&proto).map_err(|e| load_err(format!("unsupported onnx graph: {e:#}")))?;
        let batch = model.symbols.sym("N");
        for (ix, spec) in inputs.iter().enumerate() {
            let shape: TVec<TDim> =
                if spec.rank == 1 { tvec![batch.to_dim()] } else { tvec![batch.to_dim(), spec.width.to_dim()] };
            let fact = match spec.kind {
                InputKind::F32 => f32::fact(shape),
                InputKind::F64 => f64::fact(shape),
                InputKind::I64 => i64::fact(shape),
                InputKind::Str => String::fact(shape),
            };
            model
                .set_input_fact(ix, fact.into())
                .map_err(|e| load_err(format!("cannot set model input {:?} to {spec:?}: {e:#}", spec.name)))?;
        }
        // analyse + translate only: declutter/optimize would trade exactness for speed (see module docs)
        let typed = model.into_typed().map_err(|e| load_err(format!("unsupported onnx graph: {e:#}")))?;
        let (kind, label_output, values_output, width) = Model::outputs(&typed, labels)?;
        let typed = optimize_matmuls(typed);
        let plan = typed.into_runnable().map_err(|e| load_err(format!("cannot plan the onnx graph: {e:#}")))?;
        let pool_states = !plan.model().nodes().iter().any(|n| n.op.name().contains("Scan"));
        let threads = std::sync::OnceLock::new();
        let states = Default::default();
        let row_ns = Default::default();
        let model =
            Model { inputs, kind, plan, states, pool_states, threads, row_ns, label_output, values_output, width };
        // prove the graph evaluates before anyone relies on it (init must fail, not the first request)
        model.run(probe).map_err(|e| load_err(format!("model loaded but fails on a probe row of zeros: {e}")))?;
        Ok(model)
    }

    /// Classifier: a non-float label output plus float `[N, classes]` probabilities. Regressor: one float output.
    fn outputs(typed: &TypedModel, labels: Option<Labels>) -> Result<(Kind, Option<usize>, usize, usize), ModelError> {
        let facts = typed
            .output_outlets()
            .and_then(|o| o.iter().map(|o| typed.outlet_fact(*o).cloned()).collect::<TractResult<Vec<_>>>())
            .map_err(|e| load_err(format!("cannot read the graph outputs: {e:#}")))?;
        // labels are int64 or strings (TDim after some casts): anything not float is the label
        let label_output = facts.iter().position(|f| !f.datum_type.is_float());
        let floats: Vec<usize> = (0..facts.len())
            .filter(|&i| [f32::datum_type(), f64::datum_type()].contains(&facts[i].datum_type))
            .collect();
        let [ix] = floats.as_slice() else {
            return Err(load_err(format!(
                "model has {} float32 outputs; expected one (probabilities or predicted values)",
                floats.len()
            )));
        };
        let shape = &facts[*ix].shape;
        let width = if shape.rank() == 2 { shape[1].to_usize().ok() } else { Some(1) };
        match (label_output, width) {
            (Some(_), Some(classes)) if classes >= 2 => {
                let labels = labels.unwrap_or_else(|| Labels::Int((0..classes as i64).collect()));
                if labels.len() != classes {
                    return Err(load_err(format!(
                        "the model lists {} class labels but outputs {classes} probability columns",
                        labels.len()
                    )));
                }
                Ok((Kind::Classifier { labels }, label_output, *ix, classes))
            }
            // a label beside one float column: an anomaly detector's -1/1 and its score
            (Some(_), Some(1)) if labels.is_none() || labels.as_ref().is_some_and(|l| l.len() <= 2) => {
                Ok((Kind::Anomaly, label_output, *ix, 1))
            }
            (Some(_), other) => Err(load_err(format!(
                "classifier outputs {} probability columns; expected one per class (at least 2)",
                other.map_or("an unknown number of".to_string(), |w| w.to_string())
            ))),
            (None, Some(1)) if shape.rank() <= 2 => Ok((Kind::Regressor, None, *ix, 1)),
            (None, _) => {
                Err(load_err(format!("regressor output has shape {shape:?}; mlambda serves single-target regressors")))
            }
        }
    }

    /// The graph's inputs, in the order a [`Batch`] carries them.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    pub fn task(&self) -> Task {
        match self.kind {
            Kind::Classifier { .. } => Task::Classifier,
            Kind::Regressor => Task::Regressor,
            Kind::Anomaly => Task::Anomaly,
        }
    }

    /// The class labels (classifiers).
    pub fn labels(&self) -> Option<&Labels> {
        match &self.kind {
            Kind::Classifier { labels } => Some(labels),
            Kind::Regressor | Kind::Anomaly => None,
        }
    }

    /// True for a classifier with exactly two classes.
    pub fn is_binary(&self) -> bool {
        self.labels().is_some_and(|l| l.len() == 2)
    }

    /// How many request fields a row has: the columns of a single float input, else one per named input.
    pub fn n_features(&self) -> usize {
        match self.inputs.as_slice() {
            [only] if only.kind.is_float() => only.width,
            many => many.len(),
        }
    }

    /// The request fields, resolved against `MODEL_FEATURES` (`features`).
    ///
    /// One float `[rows, k]` input: `features` names its k columns (optional when k is 1: the input's
    /// name). Otherwise the fields are the graph's input names, and `features`, when given, must list
    /// exactly those names in order.
    pub fn fields(&self, features: Option<&[String]>) -> Result<Vec<Field>, String> {
        let names: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
        match (self.inputs.as_slice(), features) {
            ([only], Some(features)) if only.kind.is_float() => {
                if features.len() != only.width {
                    return Err(format!(
                        "MODEL_FEATURES lists {} features but the model takes {} inputs: list exactly the model's \
                         columns, in order",
                        features.len(),
                        only.width
                    ));
                }
                Ok(features
                    .iter()
                    .enumerate()
                    .map(|(column, name)| Field {
                        name: name.clone(),
                        input: 0,
                        column,
                        width: 1,
                        kind: only.kind,
                        nullable: only.imputed,
                    })
                    .collect())
            }
            ([only], None) if only.kind.is_float() && only.width > 1 => Err(format!(
                "MODEL_FEATURES is not set: the model takes one float input {:?} of {} columns; list their names in \
                 order, comma-separated",
                only.name, only.width
            )),
            (_, Some(features)) if features.iter().map(String::as_str).ne(names.iter().copied()) => Err(format!(
                "MODEL_FEATURES lists {} but the model's inputs are {} (in this order): list the model's input names \
                 in order, or leave MODEL_FEATURES unset",
                features.join(","),
                names.join(",")
            )),
            _ => Ok(self
                .inputs
                .iter()
                .enumerate()
                .map(|(input, spec)| Field {
                    name: spec.name.clone(),
                    input,
                    column: 0,
                    width: spec.width,
                    kind: spec.kind,
                    nullable: spec.imputed,
                })
                .collect()),
        }
    }

    /// Runs the plan on a pooled state; a state whose run failed is dropped, not reused.
    fn run_graph(&self, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let pooled = self.states.lock().ok().and_then(|mut pool| pool.pop());
        let mut state = match pooled {
            Some(state) => state,
            None => self.plan.spawn()?,
        };
        let outputs = state.run(inputs)?;
        if self.pool_states {
            if let Ok(mut pool) = self.states.lock() {
                pool.push(state);
            }
        }
        Ok(outputs)
    }

    /// Runs a batch, split across this function's vCPUs when it is large enough to gain from it (see
    /// [`PARALLEL_MIN_ROWS`]); a row's answer is the same either way, since rows never see each other.
    pub fn run(&self, batch: Batch) -> Result<Answers, ModelError> {
        let parts = batch.n / PARALLEL_MIN_ROWS;
        let parts = if parts >= 2 && !self.quick(batch.n) { self.threads().min(parts) } else { 1 };
        if parts <= 1 || batch.columns.len() != self.inputs.len() {
            return self.run_part(batch);
        }
        let widths: Vec<usize> = self.inputs.iter().map(|i| i.width).collect();
        let answers: Vec<Result<Answers, ModelError>> = std::thread::scope(|s| {
            let mut parts = batch.split(parts, &widths).into_iter();
            let first = parts.next();
            let running: Vec<_> = parts.map(|part| s.spawn(move || self.run_part(part))).collect();
            // the calling thread takes the first part: one thread fewer to start
            let mut answers: Vec<_> = first.map(|part| self.run_part(part)).into_iter().collect();
            answers.extend(
                running.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(run_err("a batch thread panicked")))),
            );
            answers
        });
        Answers::concat(answers.into_iter().collect::<Result<Vec<_>, _>>()?)
    }

    /// Whether `n` rows are expected to run in less than [`SPLIT_MIN_NS`] on one thread (from the last large
    /// batch this model ran), too little for starting threads to pay: a small MLP's 1000 rows take 0.3 ms.
    fn quick(&self, n: usize) -> bool {
        let per_row = self.row_ns.load(std::sync::atomic::Ordering::Relaxed);
        per_row != 0 && per_row.saturating_mul(n as u64) < SPLIT_MIN_NS
    }

    /// The threads a large batch may use, `available_parallelism` (the cgroup's CPU quota included) unless set.
    pub fn threads(&self) -> usize {
        *self.threads.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Sets how many threads a large batch may use (1: one thread, as a small Lambda has).
    pub fn with_threads(mut self, n: usize) -> Model {
        self.threads = std::sync::OnceLock::from(n.max(1));
        self
    }

    /// Runs a batch on this thread.
    fn run_part(&self, batch: Batch) -> Result<Answers, ModelError> {
        let n = batch.n;
        if n == 0 {
            return Ok(Answers { n: 0, labels: None, values: Vec::new(), width: self.width, scored: false });
        }
        if batch.columns.len() != self.inputs.len() {
            return Err(run_err(format!(
                "got {} input columns for a model with {} inputs",
                batch.columns.len(),
                self.inputs.len()
            )));
        }
        let run = |e: TractError| run_err(format!("inference failed: {e:#}"));
        let mut tensors: TVec<TValue> = TVec::with_capacity(self.inputs.len());
        for (spec, column) in self.inputs.iter().zip(batch.columns) {
            if column.kind() != spec.kind || column.len() != n * spec.width {
                return Err(run_err(format!(
                    "input {:?} got {} {:?} values for {n} rows of width {}",
                    spec.name,
                    column.len(),
                    column.kind(),
                    spec.width
                )));
            }
            let shape =
                if spec.rank == 1 { tract_ndarray::IxDyn(&[n]) } else { tract_ndarray::IxDyn(&[n, spec.width]) };
            let tensor = match column {
                Column::F32(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v).map(Tensor::from),
                Column::F64(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v).map(Tensor::from),
                Column::I64(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v).map(Tensor::from),
                Column::Str(v) => tract_ndarray::ArrayD::from_shape_vec(shape, v).map(Tensor::from),
            }
            .map_err(|e| run_err(format!("input {:?}: {e}", spec.name)))?;
            tensors.push(tensor.into_tvalue());
        }
        let started = (n >= PARALLEL_MIN_ROWS).then(std::time::Instant::now);
        let outputs = self.run_graph(tensors).map_err(run)?;
        if let Some(started) = started {
            let per_row = u64::try_from(started.elapsed().as_nanos() / n as u128).unwrap_or(u64::MAX);
            self.row_ns.store(per_row.max(1), std::sync::atomic::Ordering::Relaxed);
        }
        // the graph may end in a tract kernel; the request's code after it is baseline x86-64
        ml::kernel::after_tract();
        let output =
            |ix: usize| outputs.get(ix).ok_or_else(|| run_err("the graph produced fewer outputs than planned"));
        // a double export's probabilities or values are read as f32, as every answer is written
        let values_tensor = output(self.values_output)?.cast_to::<f32>().map_err(run)?;
        let view = values_tensor.to_plain_array_view::<f32>().map_err(run)?;
        let values: Vec<f32> = view.iter().copied().collect();
        if values.len() != n * self.width {
            return Err(run_err(format!("the graph produced {} values for {n} rows", values.len())));
        }
        let labels = match self.label_output {
            None => None,
            Some(ix) => {
                let t = output(ix)?;
                let column = if t.datum_type() == String::datum_type() {
                    LabelColumn::Str(t.to_plain_array_view::<String>().map_err(run)?.iter().cloned().collect())
                } else if t.datum_type() == i64::datum_type() {
                    LabelColumn::Int(t.to_plain_array_view::<i64>().map_err(run)?.iter().copied().collect())
                } else {
                    let cast = t.cast_to::<i64>().map_err(run)?;
                    LabelColumn::Int(cast.to_plain_array_view::<i64>().map_err(run)?.iter().copied().collect())
                };
                let len = match &column {
                    LabelColumn::Int(v) => v.len(),
                    LabelColumn::Str(v) => v.len(),
                };
                if len != n {
                    return Err(run_err(format!("the graph produced {len} labels for {n} rows")));
                }
                Some(column)
            }
        };
        let scored = self.kind == Kind::Anomaly;
        Ok(Answers { n, labels, values, width: self.width, scored })
    }

    /// The original API for models with one float input: `rows` is row-major, `n_features()` values per
    /// row. Binary classifiers answer their label (integer labels only) and P(second class); multiclass
    /// classifiers their label and no probability; regressors their value.
    pub fn predict(&self, rows: &[f32]) -> Result<Vec<Output>, ModelError> {
        let [spec] = self.inputs.as_slice() else {
            return Err(run_err("this model has several inputs: use Model::predict_rows"));
        };
        if spec.kind != InputKind::F32 {
            return Err(run_err("this model's input is not float: use Model::predict_rows"));
        }
        if matches!(self.labels(), Some(Labels::Str(_))) {
            return Err(run_err("this model has string labels: use Model::predict_rows"));
        }
        let nf = spec.width;
        if !rows.len().is_multiple_of(nf) {
            return Err(run_err(format!("got {} values, not a multiple of the model's {nf} features", rows.len())));
        }
        let answers = self.run(Batch { n: rows.len() / nf, columns: vec![Column::F32(rows.to_vec())] })?;
        Ok((0..answers.len())
            .map(|i| match answers.label(i) {
                Some(LabelRef::Int(label)) => Output { prediction: label as f64, probability: answers.probability(i) },
                // string labels were refused above
                Some(LabelRef::Str(_)) | None => {
                    Output { prediction: answers.value(i).unwrap_or(f64::NAN), probability: None }
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn with_attr(mut n: pb::NodeProto, name: &str, ints: &[i64], strings: &[&str]) -> pb::NodeProto {
        n.attribute.push(pb::AttributeProto {
            name: name.into(),
            ints: ints.to_vec(),
            strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
            ..Default::default()
        });
        n
    }

    #[test]
    fn a_large_batch_is_split_only_when_the_last_one_was_slow_enough() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tabular/mlp_multi.onnx");
        let model = Model::from_path(&path).unwrap().with_threads(2);
        // nothing measured yet (the load's probe is one row): split
        assert!(!model.quick(1000));
        let batch = |n| Batch { n, columns: vec![Column::F32(vec![0.5; n * 6])] };
        model.run(batch(PARALLEL_MIN_ROWS - 1)).unwrap();
        assert_eq!(model.row_ns.load(std::sync::atomic::Ordering::Relaxed), 0, "small batches are not timed");
        assert_eq!(model.run(batch(300)).unwrap().len(), 300);
        assert!(model.row_ns.load(std::sync::atomic::Ordering::Relaxed) > 0);
        model.row_ns.store(100, std::sync::atomic::Ordering::Relaxed);
        assert!(model.quick(1000), "0.1 ms expected: one thread");
        model.row_ns.store(1_000, std::sync::atomic::Ordering::Relaxed);
        assert!(!model.quick(1000), "1 ms expected: split");
    }

    #[test]
    fn nulls_are_accepted_only_on_inputs_that_reach_an_imputer() {
        // a ColumnTransformer export: Concat(a, b) -> Imputer; c -> Gather -> OneHotEncoder; d -> Scaler
        let graph = pb::GraphProto {
            node: vec![
                node("Concat", &["a", "b"], &["ab"]),
                node("Cast", &["ab"], &["ab32"]),
                node("Imputer", &["ab32"], &["imputed"]),
                node("Gather", &["c", "c0"], &["c01"]),
                node("OneHotEncoder", &["c01"], &["hot"]),
                node("Scaler", &["d"], &["scaled"]),
                node("Imputer", &["scaled"], &["late"]),
            ],
            ..Default::default()
        };
        assert!(feeds_imputer(&graph, "a") && feeds_imputer(&graph, "b"));
        assert!(!feeds_imputer(&graph, "c"));
        // imputing after a transform does not make a missing value valid before it
        assert!(!feeds_imputer(&graph, "d"));
    }

    #[test]
    fn labels_come_from_zipmap_then_the_classifier_then_the_label_constant() {
        let zip = with_attr(node("ZipMap", &["p"], &["z"]), "classlabels_strings", &[], &["bronze", "gold"]);
        let clf = with_attr(node("LinearClassifier", &["x"], &["l", "p"]), "classlabels_ints", &[3, 7], &[]);
        let mut graph = pb::GraphProto { node: vec![clf.clone(), zip], ..Default::default() };
        assert_eq!(proto_labels(&graph), Some(Labels::Str(vec!["bronze".into(), "gold".into()])));
        graph.node.truncate(1);
        assert_eq!(proto_labels(&graph), Some(Labels::Int(vec![3, 7])));
        // an MLP: ArgMax indexes an int32 initializer of classes
        let graph = pb::GraphProto {
            node: vec![node("ArrayFeatureExtractor", &["classes", "argmax"], &["label"])],
            initializer: vec![pb::TensorProto {
                name: "classes".into(),
                data_type: 6,
                int32_data: vec![0, 5],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(proto_labels(&graph), Some(Labels::Int(vec![0, 5])));
        assert_eq!(proto_labels(&pb::GraphProto::default()), None);
    }
}
