//! `mlambda status`.
use super::Ctx;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>) -> Result<()> {
    Err(Error::user("`mlambda status` is not built yet"))
}
