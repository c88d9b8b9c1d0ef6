//! Loading and running ONNX models: the only module that touches tract.
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Load(String),
    #[error("{0}")]
    Run(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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
}

impl Model {
    pub fn from_path(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::Load(format!("{}: {e}", path.display())))?;
        Model::from_bytes(&bytes)
    }

    pub fn from_bytes(_bytes: &[u8]) -> Result<Model, ModelError> {
        Err(ModelError::Load("runtime not built yet".into()))
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn task(&self) -> Task {
        self.task
    }

    /// `rows` is row-major, `n_features()` values per row.
    pub fn predict(&self, _rows: &[f32]) -> Result<Vec<Output>, ModelError> {
        Err(ModelError::Run("runtime not built yet".into()))
    }
}
