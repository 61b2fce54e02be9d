//! `hal-onboard partner …`: partner mode (GDAP), set up once per MSP, then one sign-in in the
//! MSP's own tenant for every customer (docs/partner.md).

pub mod login;
pub mod setup;

use clap::Subcommand;

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register (or find and repair) the partner app in your MSP's own tenant, with admin
    /// consent there; once per MSP, by an administrator of that tenant. Asks first.
    Setup(setup::SetupArgs),
    Login(login::LoginArgs),
}

pub fn cmd_partner(ctx: &Ctx, command: &PartnerCommand) -> CommandResult {
    match command {
        PartnerCommand::Setup(a) => setup::cmd_partner_setup(ctx, a),
        PartnerCommand::Login(a) => login::cmd_partner_login(ctx, a),
    }
}
