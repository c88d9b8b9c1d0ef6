//! `mlambda prune`.
use super::Ctx;
use crate::cli::PruneArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &PruneArgs) -> Result<()> {
    Err(Error::user("`mlambda prune` is not built yet"))
}
