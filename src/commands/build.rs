//! `mlambda build`.
use super::Ctx;
use crate::cli::BuildArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &BuildArgs) -> Result<()> {
    Err(Error::user("`mlambda build` is not built yet"))
}
