//! `mlambda init`.
use super::Ctx;
use crate::cli::InitArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &InitArgs) -> Result<()> {
    Err(Error::user("`mlambda init` is not built yet"))
}
