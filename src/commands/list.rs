//! `hal-onboard list`: every tenant, where it stands, what is still to do.

use clap::Args;

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Args)]
pub struct ListArgs {}

pub fn cmd_list(ctx: &Ctx, _args: &ListArgs) -> CommandResult {
    let _ = ctx;
    Err(crate::error::failed("list is being built"))
}
