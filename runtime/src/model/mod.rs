//! Loading and running ONNX models: the only module that touches tract.
//!
//! Models are parsed with tract-onnx plus our own `ai.onnx.ml` ops (see [`ml`]) and run as a plain typed
//! graph: no declutter/optimize passes, because those rewrite `Div(x, c)` into `Mul(x, 1/c)` and move
//! predictions away from onnxruntime's and scikit-learn's.
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

pub mod ml;
pub mod ops;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Load(String),
    #[error("{0}")]
    Run(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classifier,
    Regressor,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Output {
    /// The class label (classifiers) or the predicted value (regressors).
    pub prediction: f64,
    /// P(class 1) for classifiers; `None` for regressors.
    pub probability: Option<f64>,
}

pub struct Model {
    n_features: usize,
    task: Task,
    plan: Arc<TypedSimplePlan>,
    /// Run states kept between calls: spawning one per call costs about as much as a small model's inference.
    states: std::sync::Mutex<Vec<TypedSimpleState>>,
    /// Which graph output holds the probabilities (classifier) or values (regressor).
    values_output: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("n_features", &self.n_features).field("task", &self.task).finish()
    }
}

fn load_err(msg: impl std::fmt::Display) -> ModelError {
    ModelError::Load(msg.to_string())
}

/// ONNX `TensorProto.DataType.FLOAT`.
const ONNX_FLOAT: i32 = 1;

/// The width of the graph's only real input, which must be float32 `[rows, features]`.
fn input_width(proto: &pb::ModelProto) -> Result<usize, ModelError> {
    let graph = proto.graph.as_ref().ok_or_else(|| load_err("onnx file has no graph"))?;
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())).collect();
    let [input] = inputs.as_slice() else {
        return Err(load_err(format!(
            "model has {} inputs; mlambda serves models with exactly one float input of shape [rows, features]",
            inputs.len()
        )));
    };
    let Some(pb::type_proto::Value::TensorType(tensor)) = input.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(load_err(format!("model input {:?} is not a tensor", input.name)));
    };
    if tensor.elem_type != ONNX_FLOAT {
        return Err(load_err(format!(
            "model input {:?} has onnx element type {}, not float32: export with FloatTensorType",
            input.name, tensor.elem_type
        )));
    }
    let dims = tensor.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or_default();
    let width = match dims {
        [_, last] => match last.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(w)) if w > 0 => usize::try_from(w).ok(),
            _ => None,
        },
        _ => None,
    };
    width.ok_or_else(|| {
        load_err(format!(
            "model input {:?} must have shape [rows, features] with a fixed feature count: export with \
             FloatTensorType([None, n_features])",
            input.name
        ))
    })
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
        let proto = onnx
            .proto_model_for_read(&mut &*bytes)
            .map_err(|e| load_err(format!("not a readable onnx model ({e:#}); is this the .onnx file?")))?;
        if let Some(graph) = &proto.graph {
            ops::check_supported(&onnx, graph).map_err(load_err)?;
        }
        let n_features = input_width(&proto)?;
        let mut model =
            onnx.model_for_proto_model(&proto).map_err(|e| load_err(format!("unsupported onnx graph: {e:#}")))?;
        let batch = model.symbols.sym("N");
        model
            .set_input_fact(0, f32::fact([batch.to_dim(), n_features.to_dim()]).into())
            .map_err(|e| load_err(format!("cannot set the model input to [rows, {n_features}]: {e:#}")))?;
        // analyse + translate only: declutter/optimize would trade exactness for speed (see module docs)
        let typed = model.into_typed().map_err(|e| load_err(format!("unsupported onnx graph: {e:#}")))?;
        let (task, values_output) = Model::outputs(&typed)?;
        let plan = typed.into_runnable().map_err(|e| load_err(format!("cannot plan the onnx graph: {e:#}")))?;
        let model = Model { n_features, task, plan, values_output, states: Default::default() };
        // prove the graph evaluates before anyone relies on it (init must fail, not the first request)
        model
            .predict(&vec![0.0; n_features])
            .map_err(|e| load_err(format!("model loaded but fails on a probe row of zeros: {e}")))?;
        Ok(model)
    }

    /// Runs the plan on a pooled state; a state whose run failed is dropped, not reused.
    fn run_graph(&self, input: Tensor) -> TractResult<TVec<TValue>> {
        let pooled = self.states.lock().ok().and_then(|mut pool| pool.pop());
        let mut state = match pooled {
            Some(state) => state,
            None => self.plan.spawn()?,
        };
        let outputs = state.run(tvec!(input.into_tvalue()))?;
        if let Ok(mut pool) = self.states.lock() {
            pool.push(state);
        }
        Ok(outputs)
    }

    /// Classifier: an integer label output plus float `[N, 2]` probabilities. Regressor: one float output.
    fn outputs(typed: &TypedModel) -> Result<(Task, usize), ModelError> {
        let facts = typed
            .output_outlets()
            .and_then(|o| o.iter().map(|o| typed.outlet_fact(*o).cloned()).collect::<TractResult<Vec<_>>>())
            .map_err(|e| load_err(format!("cannot read the graph outputs: {e:#}")))?;
        // labels are int64, or TDim after tract's Cast-to-int64: anything not float is the label
        let has_label = facts.iter().any(|f| !f.datum_type.is_float());
        let floats: Vec<usize> = (0..facts.len()).filter(|&i| facts[i].datum_type == f32::datum_type()).collect();
        let [ix] = floats.as_slice() else {
            return Err(load_err(format!(
                "model has {} float32 outputs; expected one (probabilities or predicted values)",
                floats.len()
            )));
        };
        let shape = &facts[*ix].shape;
        let width = if shape.rank() == 2 { shape[1].to_usize().ok() } else { Some(1) };
        if has_label {
            match width {
                Some(2) => Ok((Task::Classifier, *ix)),
                other => Err(load_err(format!(
                    "classifier has {} classes; mlambda serves binary classifiers (labels 0/1)",
                    other.map_or("an unknown number of".to_string(), |w| w.to_string())
                ))),
            }
        } else if shape.rank() <= 2 && width == Some(1) {
            Ok((Task::Regressor, *ix))
        } else {
            Err(load_err(format!("regressor output has shape {shape:?}; mlambda serves single-target regressors")))
        }
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn task(&self) -> Task {
        self.task
    }

    /// `rows` is row-major, `n_features()` values per row.
    ///
    /// Classifiers: `prediction` is 1 when P(class 1) > P(class 0), else 0 (ties go to class 0, like
    /// scikit-learn's `predict`). The whole batch runs as one tensor.
    pub fn predict(&self, rows: &[f32]) -> Result<Vec<Output>, ModelError> {
        let nf = self.n_features;
        if !rows.len().is_multiple_of(nf) {
            return Err(ModelError::Run(format!(
                "got {} values, not a multiple of the model's {nf} features",
                rows.len()
            )));
        }
        let n = rows.len() / nf;
        if n == 0 {
            return Ok(Vec::new());
        }
        let run = |e: TractError| ModelError::Run(format!("inference failed: {e:#}"));
        let input = Tensor::from_shape(&[n, nf], rows).map_err(run)?;
        let outputs = self.run_graph(input).map_err(run)?;
        let values = outputs
            .get(self.values_output)
            .ok_or_else(|| ModelError::Run("the graph produced fewer outputs than planned".into()))?;
        let view = values.to_plain_array_view::<f32>().map_err(run)?;
        let flat: Vec<f32> = view.iter().copied().collect();
        let width = flat.len() / n;
        if flat.len() != n * width || width == 0 {
            return Err(ModelError::Run(format!("the graph produced {} values for {n} rows", flat.len())));
        }
        Ok(flat
            .chunks_exact(width)
            .map(|row| match self.task {
                Task::Classifier => {
                    let (p0, p1) = (row[0] as f64, row[width - 1] as f64);
                    Output { prediction: if p1 > p0 { 1.0 } else { 0.0 }, probability: Some(p1) }
                }
                Task::Regressor => Output { prediction: row[0] as f64, probability: None },
            })
            .collect())
    }
}
