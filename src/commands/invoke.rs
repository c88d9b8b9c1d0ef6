//! `mlambda invoke`.
use super::Ctx;
use crate::cli::InvokeArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &InvokeArgs) -> Result<()> {
    Err(Error::user("`mlambda invoke` is not built yet"))
}
