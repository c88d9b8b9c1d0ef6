//! Resolves flags > `MLAMBDA_*` environment > mlambda.yaml into the values a command uses.
use std::path::PathBuf;

use crate::config::Loaded;
use crate::domain::ModelVersion;

/// The registry host images are pushed to: `MLAMBDA_REGISTRY`, then `image.registry`;
/// `None` means the ECR endpoint from the authorization token.
pub fn registry(loaded: &Loaded) -> Option<String> {
    std::env::var("MLAMBDA_REGISTRY").ok().filter(|s| !s.is_empty()).or_else(|| loaded.config.image.registry.clone())
}

/// Where `.mlambda/state.json` lives: beside the config file.
pub fn state_dir(loaded: &Loaded) -> PathBuf {
    loaded.dir.join(".mlambda")
}

/// The model version a command works on: its flag, else `model.version`.
pub fn model_version(loaded: &Loaded, flag: Option<&ModelVersion>) -> ModelVersion {
    flag.cloned().unwrap_or_else(|| loaded.config.model.version.clone())
}
