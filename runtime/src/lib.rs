//! mlambda's function body as a library: the CLI reuses `model` to check models before upload.
pub mod env;
pub mod model;

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod contract;
#[cfg(feature = "server")]
pub mod handler;
#[cfg(feature = "server")]
pub mod lambda;
#[cfg(feature = "server")]
pub mod local;
#[cfg(feature = "server")]
pub mod source;

/// Loads, verifies and checks the model against the configuration: everything INIT must prove.
#[cfg(feature = "server")]
pub async fn init(cfg: &config::Config) -> Result<handler::App, String> {
    let fetched = source::fetch(cfg).await?;
    source::verify(&fetched, cfg.sha256.as_deref())?;
    let model = model::Model::from_bytes(&fetched.bytes).map_err(|e| format!("model {}: {e}", fetched.origin))?;
    if model.n_features() != cfg.features.len() {
        return Err(format!(
            "MODEL_FEATURES lists {} features but the model {} takes {} inputs: list exactly the model's columns",
            cfg.features.len(),
            fetched.origin,
            model.n_features()
        ));
    }
    Ok(handler::App {
        model,
        features: cfg.features.clone(),
        version: cfg.version.clone(),
        namespace: cfg.namespace.clone(),
    })
}
