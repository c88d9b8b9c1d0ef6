//! `mlambda iam_policy`.
use super::Ctx;
use crate::error::{Error, Result};

pub async fn run(_ctx: &Ctx<'_>) -> Result<()> {
    Err(Error::user("`mlambda iam_policy` is not built yet"))
}
