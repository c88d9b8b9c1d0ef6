//! What the function runs: the image's build context (pure), the bollard engine, running an image locally, and
//! the zip package.
pub mod archive;
pub mod context;
pub mod engine;
pub mod run;
