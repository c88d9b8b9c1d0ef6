//! `mlambda model push` and `mlambda model list`.
use super::Ctx;
use crate::cli::ModelPushArgs;
use crate::error::{Error, Result};

pub async fn push(_ctx: &Ctx<'_>, _args: &ModelPushArgs) -> Result<()> {
    Err(Error::user("`mlambda model push` is not built yet"))
}

pub async fn list(_ctx: &Ctx<'_>) -> Result<()> {
    Err(Error::user("`mlambda model list` is not built yet"))
}
