//! `mlambda rollout`.
use super::Ctx;
use crate::cli::RolloutArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &RolloutArgs) -> Result<()> {
    Err(Error::user("`mlambda rollout` is not built yet"))
}
