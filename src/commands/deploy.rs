//! `mlambda deploy`.
use super::Ctx;
use crate::cli::DeployArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &DeployArgs) -> Result<()> {
    Err(Error::user("`mlambda deploy` is not built yet"))
}
