//! `mlambda warm`.
use super::Ctx;
use crate::cli::WarmArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &WarmArgs) -> Result<()> {
    Err(Error::user("`mlambda warm` is not built yet"))
}
