//! `hal-onboard tenant add --partner TENANT… | --all`: placeholder until the partner sign-in lands.
use crate::commands::Ctx;
use crate::commands::tenant::add::AddArgs;
use crate::error::CommandResult;

pub fn cmd_tenant_add_partner(_ctx: &Ctx, _args: &AddArgs) -> CommandResult {
    Err(crate::error::user_error("partner mode is not built yet"))
}
