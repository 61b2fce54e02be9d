//! `hal-onboard partner …`: partner mode (GDAP), set up once per MSP (docs/partner.md).

pub mod setup;

use clap::Subcommand;

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register (or find and repair) the partner app in your MSP's own tenant, with admin
    /// consent there; once per MSP, by an administrator of that tenant. Asks first.
    Setup(setup::SetupArgs),
}

pub fn cmd_partner(ctx: &Ctx, command: &PartnerCommand) -> CommandResult {
    match command {
        PartnerCommand::Setup(a) => setup::cmd_partner_setup(ctx, a),
    }
}
