//! The image: build context (pure) and the bollard engine.
pub mod context;
pub mod engine;
