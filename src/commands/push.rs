//! `mlambda push`.
use super::Ctx;
use crate::cli::PushArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &PushArgs) -> Result<()> {
    Err(Error::user("`mlambda push` is not built yet"))
}
