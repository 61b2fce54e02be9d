//! `hal-onboard partner …`: partner mode (GDAP), one sign-in in the MSP's own tenant for
//! every customer. See docs/partner.md.

pub mod customers;
pub mod login;

use clap::Subcommand;

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    Login(login::LoginArgs),
    /// Every customer GDAP reaches: your roles there, the relationship's end, whether
    /// hal-onboard onboarded it, and READY, EXPIRING or BLOCKED with the fix.
    Customers(customers::CustomersArgs),
}

pub fn cmd_partner(ctx: &Ctx, command: &PartnerCommand) -> CommandResult {
    match command {
        PartnerCommand::Login(a) => login::cmd_partner_login(ctx, a),
        PartnerCommand::Customers(a) => customers::cmd_partner_customers(ctx, a),
    }
}
