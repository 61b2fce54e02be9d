//! `hal-onboard partner …`: partner mode (GDAP), set up once per MSP (docs/partner.md).

pub mod customers;

use clap::Subcommand;

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Every customer GDAP reaches: your roles there, the relationship's end, whether
    /// hal-onboard onboarded it, and READY, EXPIRING or BLOCKED with the fix.
    Customers(customers::CustomersArgs),
}

pub fn cmd_partner(ctx: &Ctx, command: &PartnerCommand) -> CommandResult {
    match command {
        PartnerCommand::Customers(a) => customers::cmd_partner_customers(ctx, a),
    }
}
