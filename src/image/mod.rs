//! The image: build context (pure), the bollard engine, and running an image locally.
pub mod context;
pub mod engine;
pub mod run;
