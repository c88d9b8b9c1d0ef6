//! mlambda's function body as a library: the CLI reuses `model` (and `rows`) to check models before upload, and
//! `logline` to read what the runtime logs.
//!
//! Modules depend one way: `model` (tract) <- `error` <- `rows` <- `contract` <- `handler` <- `lambda`/`local`;
//! `env` <- `config` <- `source`; `logline` (the log lines' schema, which the CLI reads) depends on nothing.
pub mod batch;
pub mod contract;
pub mod env;
pub mod error;
pub mod logline;
pub mod model;
pub mod rows;
pub mod shadow;

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod handler;
#[cfg(feature = "server")]
pub mod lambda;
#[cfg(feature = "server")]
pub mod local;
#[cfg(feature = "server")]
pub mod slice;
#[cfg(feature = "server")]
pub mod source;

pub use error::Error;

/// Loads, verifies and checks the model against the configuration: everything INIT must prove.
#[cfg(feature = "server")]
pub async fn init(cfg: &config::Config) -> Result<handler::App, Error> {
    // the shadow control is read beside the model, so INIT takes no longer for it
    let (fetched, copier) = tokio::join!(source::fetch(cfg), copier(cfg));
    let fetched = fetched.map_err(Error::Source)?;
    source::verify(&fetched, cfg.sha256.as_deref()).map_err(Error::Source)?;
    let model = model::Model::from_bytes(&fetched.bytes)
        .map_err(|e| model::ModelError::Load(format!("model {}: {e}", fetched.origin)))?;
    let app = handler::App::new(model, cfg).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("model {}: {m}", fetched.origin)),
        other => other,
    })?;
    Ok(match copier {
        Some(c) => app.with_copier(c),
        None => app,
    })
}

/// The shadow copier of a function whose models live in S3 (the control object lives beside them). A
/// function without it still serves; it only cannot copy.
#[cfg(feature = "server")]
async fn copier(cfg: &config::Config) -> Option<shadow::Copier> {
    let config::ModelSource::S3 { bucket, .. } = &cfg.source else { return None };
    match shadow::Copier::load(&cfg.function_name, &cfg.function_version, bucket).await {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("mlambda shadow: copies are off on this instance: {e}");
            None
        }
    }
}
