//! mlambda's function body as a library: the CLI reuses `model` to check models before upload.
pub mod model;
