//! The runtime's environment contract: the variable names the CLI sets and `bootstrap` reads, defined once.

/// The model file inside the image or on disk (mutually exclusive with [`MODEL_BUCKET`]/[`MODEL_KEY`]).
pub const MODEL_PATH: &str = "MODEL_PATH";
/// The S3 bucket holding the model object.
pub const MODEL_BUCKET: &str = "MODEL_BUCKET";
/// The S3 key of the model object.
pub const MODEL_KEY: &str = "MODEL_KEY";
/// Optional hex sha256 the model bytes must have.
pub const MODEL_SHA256: &str = "MODEL_SHA256";
/// Comma-separated input column names in model order (optional for models with named inputs).
pub const MODEL_FEATURES: &str = "MODEL_FEATURES";
/// Echoed as `model_version` and used as the metrics dimension.
pub const MODEL_VERSION: &str = "MODEL_VERSION";
/// CloudWatch EMF namespace.
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
/// The request field whose value the prediction log carries as `id` (e.g. `customer_id`).
pub const MODEL_ID_FIELD: &str = "MODEL_ID_FIELD";
/// Prediction log sampling: `all`, `none` or a fraction in [0, 1].
pub const LOG_PREDICTIONS: &str = "LOG_PREDICTIONS";
/// Local mode's listen address.
pub const MLAMBDA_LISTEN: &str = "MLAMBDA_LISTEN";
/// Set by Lambda: the published version answering (`$LATEST` or a number).
pub const AWS_LAMBDA_FUNCTION_VERSION: &str = "AWS_LAMBDA_FUNCTION_VERSION";
/// Set by Lambda: the function's name.
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// Set by Lambda: the Runtime API address; selects Lambda mode.
pub const AWS_LAMBDA_RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// Set by Lambda: the region (the S3 model source's).
pub const AWS_REGION: &str = "AWS_REGION";
/// The region when [`AWS_REGION`] is unset (local runs).
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
/// Set by Lambda from the function's role.
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Set by Lambda from the function's role.
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Set by Lambda from the function's role.
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// An S3 endpoint override (moto, MinIO), before [`AWS_ENDPOINT_URL`].
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
/// An endpoint override for every AWS service.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
