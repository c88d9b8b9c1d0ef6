//! The image: build context (pure) and the bollard engine.
