//! What the function runs: the image's build context (pure), the bollard engine, running an image locally, and
//! the zip package.
pub mod archive;
pub mod context;
pub mod engine;
pub mod run;

use crate::domain::PackageType;

/// Where a baked model sits at run time: in the image, or where Lambda unpacks a zip.
pub fn baked_model_path(package: PackageType) -> String {
    match package {
        PackageType::Image => context::BAKED_MODEL_PATH.to_string(),
        PackageType::Zip => format!("{}/model.onnx", archive::TASK_ROOT),
    }
}
