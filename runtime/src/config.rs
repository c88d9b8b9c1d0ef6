//! The runtime's settings, all from environment variables (that is all a Lambda function gets).
//!
//! | variable | meaning |
//! |---|---|
//! | `MODEL_PATH` | model file, or |
//! | `MODEL_BUCKET` + `MODEL_KEY` | model object in S3 (honours `AWS_ENDPOINT_URL`) |
//! | `MODEL_SHA256` | optional hex sha256 the model bytes must have |
//! | `MODEL_FEATURES` | comma-separated input column names in model order; required for a model with one `[rows, k>1]` float input, else optional and checked against the graph's input names |
//! | `MODEL_VERSION` | echoed in every response and the metrics dimension (default `unknown`) |
//! | `METRICS_NAMESPACE` | CloudWatch EMF namespace (default `mlambda`) |
//! | `MODEL_ID_FIELD` | the request field the prediction log carries as `id` (optional) |
//! | `LOG_PREDICTIONS` | `all` (default), `none`, or a fraction of invocations in [0, 1] |
//! | `MLAMBDA_LISTEN` | local mode's listen address (default `127.0.0.1:8080`) |
//! | `AWS_LAMBDA_FUNCTION_NAME` / `AWS_LAMBDA_FUNCTION_VERSION` | metrics dimensions and the log's `function_version` (defaults `local` / `$LATEST`) |
//! | `AWS_LAMBDA_RUNTIME_API` | set by Lambda: selects Lambda mode |
use std::path::PathBuf;

use crate::env;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Path(PathBuf),
    S3 { bucket: String, key: String },
}

/// Which invocations write the prediction log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogPredictions {
    All,
    None,
    /// Each invocation is logged (all its rows) with this probability.
    Fraction(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub source: ModelSource,
    pub sha256: Option<String>,
    /// `MODEL_FEATURES`, when set.
    pub features: Option<Vec<String>>,
    pub version: String,
    pub namespace: String,
    pub listen: String,
    pub function_name: String,
    pub function_version: String,
    pub id_field: Option<String>,
    pub log_predictions: LogPredictions,
}

/// `get` with values trimmed, and empty ones treated as unset (a Lambda console field left blank).
pub fn non_empty(get: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |k| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn config(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

fn parse_features(raw: &str) -> Result<Vec<String>, Error> {
    let features: Vec<String> = raw.split(',').map(|f| f.trim().to_string()).collect();
    if let Some(i) = features.iter().position(String::is_empty) {
        return Err(config(format!("MODEL_FEATURES has an empty name at position {}: remove the stray comma", i + 1)));
    }
    for (i, f) in features.iter().enumerate() {
        if features[..i].contains(f) {
            return Err(config(format!("MODEL_FEATURES lists {f:?} twice: each column needs a unique name")));
        }
    }
    Ok(features)
}

fn parse_log(raw: Option<String>) -> Result<LogPredictions, Error> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => Ok(LogPredictions::All),
        Some("none") => Ok(LogPredictions::None),
        Some(other) => match other.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(LogPredictions::Fraction(f)),
            _ => Err(config(format!(
                "LOG_PREDICTIONS is {other:?}: use `all`, `none`, or the fraction of invocations to log (e.g. 0.1)"
            ))),
        },
    }
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// `get` returns a variable's value; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let get = non_empty(get);
        let source = match (get(env::MODEL_PATH), get(env::MODEL_BUCKET), get(env::MODEL_KEY)) {
            (Some(p), None, None) => ModelSource::Path(PathBuf::from(p)),
            (None, Some(bucket), Some(key)) => ModelSource::S3 { bucket, key },
            (None, None, None) => {
                return Err(config("no model configured: set MODEL_PATH to a file, or MODEL_BUCKET and MODEL_KEY"))
            }
            (Some(_), _, _) => {
                return Err(config("both MODEL_PATH and MODEL_BUCKET/MODEL_KEY are set: keep only one model source"))
            }
            (None, Some(_), None) => {
                return Err(config("MODEL_BUCKET is set but MODEL_KEY is not: set the object key"))
            }
            (None, None, Some(_)) => return Err(config("MODEL_KEY is set but MODEL_BUCKET is not: set the bucket")),
        };
        let sha256 = match get(env::MODEL_SHA256) {
            None => None,
            Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => Some(s.to_ascii_lowercase()),
            Some(s) => return Err(config(format!("MODEL_SHA256 {s:?} is not a 64-character hex sha256"))),
        };
        let features = get(env::MODEL_FEATURES).map(|raw| parse_features(&raw)).transpose()?;
        Ok(Config {
            source,
            sha256,
            features,
            version: get(env::MODEL_VERSION).unwrap_or_else(|| "unknown".into()),
            namespace: get(env::METRICS_NAMESPACE).unwrap_or_else(|| "mlambda".into()),
            listen: get(env::MLAMBDA_LISTEN).unwrap_or_else(|| "127.0.0.1:8080".into()),
            function_name: get(env::AWS_LAMBDA_FUNCTION_NAME).unwrap_or_else(|| "local".into()),
            function_version: get(env::AWS_LAMBDA_FUNCTION_VERSION).unwrap_or_else(|| "$LATEST".into()),
            id_field: get(env::MODEL_ID_FIELD),
            log_predictions: parse_log(get(env::LOG_PREDICTIONS))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned()).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_file_source() {
        let c = cfg(&[("MODEL_PATH", "/m.onnx"), ("MODEL_FEATURES", "a, b ,c")]).unwrap();
        assert_eq!(c.source, ModelSource::Path("/m.onnx".into()));
        assert_eq!(c.features.as_deref(), Some(&["a".to_string(), "b".into(), "c".into()][..]));
        assert_eq!(
            (c.version.as_str(), c.namespace.as_str(), c.listen.as_str()),
            ("unknown", "mlambda", "127.0.0.1:8080")
        );
        assert_eq!((c.function_name.as_str(), c.function_version.as_str()), ("local", "$LATEST"));
        assert_eq!((c.id_field, c.log_predictions), (None, LogPredictions::All));
        // MODEL_FEATURES is optional here; the model decides whether it needs it
        assert_eq!(cfg(&[("MODEL_PATH", "m")]).unwrap().features, None);
    }

    #[test]
    fn function_identity_id_field_and_log_sampling() {
        let c = cfg(&[
            ("MODEL_PATH", "m"),
            ("AWS_LAMBDA_FUNCTION_NAME", "churn"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "3"),
            ("MODEL_ID_FIELD", "customer_id"),
            ("LOG_PREDICTIONS", "0.25"),
        ])
        .unwrap();
        assert_eq!((c.function_name.as_str(), c.function_version.as_str()), ("churn", "3"));
        assert_eq!((c.id_field.as_deref(), c.log_predictions), (Some("customer_id"), LogPredictions::Fraction(0.25)));
        assert_eq!(
            cfg(&[("MODEL_PATH", "m"), ("LOG_PREDICTIONS", "NONE")]).unwrap().log_predictions,
            LogPredictions::None
        );
        assert!(cfg(&[("MODEL_PATH", "m"), ("LOG_PREDICTIONS", "1.5")]).unwrap_err().contains("LOG_PREDICTIONS"));
        assert!(cfg(&[("MODEL_PATH", "m"), ("LOG_PREDICTIONS", "some")]).unwrap_err().contains("`all`, `none`"));
    }

    #[test]
    fn s3_source_and_sha() {
        let sha = "AB".repeat(32);
        let c =
            cfg(&[("MODEL_BUCKET", "b"), ("MODEL_KEY", "k/m.onnx"), ("MODEL_FEATURES", "a"), ("MODEL_SHA256", &sha)])
                .unwrap();
        assert_eq!(c.source, ModelSource::S3 { bucket: "b".into(), key: "k/m.onnx".into() });
        assert_eq!(c.sha256, Some("ab".repeat(32)));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(cfg(&[("MODEL_FEATURES", "a")]).unwrap_err().contains("no model configured"));
        assert!(cfg(&[("MODEL_PATH", "m"), ("MODEL_FEATURES", "a,,b")]).unwrap_err().contains("position 2"));
        assert!(cfg(&[("MODEL_PATH", "m"), ("MODEL_FEATURES", "a,a")]).unwrap_err().contains("twice"));
        assert!(cfg(&[("MODEL_BUCKET", "b"), ("MODEL_FEATURES", "a")]).unwrap_err().contains("MODEL_KEY"));
        assert!(cfg(&[("MODEL_PATH", "m"), ("MODEL_BUCKET", "b"), ("MODEL_FEATURES", "a")])
            .unwrap_err()
            .contains("both"));
        let bad_sha = cfg(&[("MODEL_PATH", "m"), ("MODEL_FEATURES", "a"), ("MODEL_SHA256", "xyz")]);
        assert!(bad_sha.unwrap_err().contains("MODEL_SHA256"));
    }
}
