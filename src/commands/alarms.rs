//! `mlambda alarms`.
use super::Ctx;
use crate::cli::AlarmsArgs;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>, _args: &AlarmsArgs) -> Result<()> {
    Err(Error::user("`mlambda alarms` is not built yet"))
}
