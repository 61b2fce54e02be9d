//! `hal-onboard partner …`: partner mode (GDAP), one sign-in in the MSP's own tenant for
//! every customer. See docs/partner.md.

pub mod login;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    Login(login::LoginArgs),
}

pub fn cmd_partner(ctx: &super::Ctx, cmd: &PartnerCommand) -> crate::error::CommandResult {
    match cmd {
        PartnerCommand::Login(a) => login::cmd_partner_login(ctx, a),
    }
}
