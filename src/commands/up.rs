//! `mlambda up`.
use super::Ctx;
use crate::cli::UpArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &UpArgs) -> Result<()> {
    Err(Error::user("`mlambda up` is not built yet"))
}
