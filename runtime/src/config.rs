//! The runtime's settings, all from environment variables (that is all a Lambda function gets).
//!
//! | variable | meaning |
//! |---|---|
//! | `MODEL_PATH` | model file, or |
//! | `MODEL_BUCKET` + `MODEL_KEY` | model object in S3 (honours `AWS_ENDPOINT_URL`) |
//! | `MODEL_SHA256` | optional hex sha256 the model bytes must have |
//! | `MODEL_FEATURES` | required, comma-separated input column names in model order |
//! | `MODEL_VERSION` | echoed in every response and the metrics dimension (default `unknown`) |
//! | `METRICS_NAMESPACE` | CloudWatch EMF namespace (default `mlambda`) |
//! | `MLAMBDA_LISTEN` | local mode's listen address (default `127.0.0.1:8080`) |
//! | `AWS_LAMBDA_RUNTIME_API` | set by Lambda: selects Lambda mode |
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Path(PathBuf),
    S3 { bucket: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: ModelSource,
    pub sha256: Option<String>,
    pub features: Vec<String>,
    pub version: String,
    pub namespace: String,
    pub listen: String,
}

/// `get` with values trimmed, and empty ones treated as unset (a Lambda console field left blank).
pub fn non_empty(get: impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> {
    move |k| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, String> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// `get` returns a variable's value; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let get = non_empty(get);
        let source = match (get("MODEL_PATH"), get("MODEL_BUCKET"), get("MODEL_KEY")) {
            (Some(p), None, None) => ModelSource::Path(PathBuf::from(p)),
            (None, Some(bucket), Some(key)) => ModelSource::S3 { bucket, key },
            (None, None, None) => {
                return Err("no model configured: set MODEL_PATH to a file, or MODEL_BUCKET and MODEL_KEY".into())
            }
            (Some(_), _, _) => {
                return Err("both MODEL_PATH and MODEL_BUCKET/MODEL_KEY are set: keep only one model source".into())
            }
            (None, Some(_), None) => return Err("MODEL_BUCKET is set but MODEL_KEY is not: set the object key".into()),
            (None, None, Some(_)) => return Err("MODEL_KEY is set but MODEL_BUCKET is not: set the bucket".into()),
        };
        let sha256 = match get("MODEL_SHA256") {
            None => None,
            Some(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => Some(s.to_ascii_lowercase()),
            Some(s) => return Err(format!("MODEL_SHA256 {s:?} is not a 64-character hex sha256")),
        };
        let features_raw = get("MODEL_FEATURES").ok_or(
            "MODEL_FEATURES is not set: list the model's input columns in order, comma-separated \
             (e.g. MODEL_FEATURES=tenure_months,monthly_charges)",
        )?;
        let features: Vec<String> = features_raw.split(',').map(|f| f.trim().to_string()).collect();
        if let Some(i) = features.iter().position(String::is_empty) {
            return Err(format!("MODEL_FEATURES has an empty name at position {}: remove the stray comma", i + 1));
        }
        for (i, f) in features.iter().enumerate() {
            if features[..i].contains(f) {
                return Err(format!("MODEL_FEATURES lists {f:?} twice: each column needs a unique name"));
            }
        }
        Ok(Config {
            source,
            sha256,
            features,
            version: get("MODEL_VERSION").unwrap_or_else(|| "unknown".into()),
            namespace: get("METRICS_NAMESPACE").unwrap_or_else(|| "mlambda".into()),
            listen: get("MLAMBDA_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_and_file_source() {
        let c = cfg(&[("MODEL_PATH", "/m.onnx"), ("MODEL_FEATURES", "a, b ,c")]).unwrap();
        assert_eq!(c.source, ModelSource::Path("/m.onnx".into()));
        assert_eq!(c.features, ["a", "b", "c"]);
        assert_eq!(
            (c.version.as_str(), c.namespace.as_str(), c.listen.as_str()),
            ("unknown", "mlambda", "127.0.0.1:8080")
        );
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
        assert!(cfg(&[("MODEL_PATH", "m")]).unwrap_err().contains("MODEL_FEATURES is not set"));
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
