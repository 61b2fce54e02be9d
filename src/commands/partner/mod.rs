//! `hal-onboard partner …`: partner mode (GDAP), set up once per MSP, then one sign-in in the
//! MSP's own tenant for every customer (docs/partner.md).

pub mod customers;
pub mod login;
pub mod setup;

use clap::{Subcommand, ValueEnum};

use crate::commands::Ctx;
use crate::error::CommandResult;
use crate::microsoft::signin::AuthMethod;

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Register (or find and repair) the partner app in your MSP's own tenant, with admin
    /// consent there; once per MSP, by an administrator of that tenant. Asks first.
    Setup(setup::SetupArgs),
    Login(login::LoginArgs),
    /// Every customer GDAP reaches: your roles there, the relationship's end, whether
    /// hal-onboard onboarded it, and READY, EXPIRING or BLOCKED with the fix.
    Customers(customers::CustomersArgs),
}

pub fn cmd_partner(ctx: &Ctx, command: &PartnerCommand) -> CommandResult {
    match command {
        PartnerCommand::Setup(a) => setup::cmd_partner_setup(ctx, a),
        PartnerCommand::Login(a) => login::cmd_partner_login(ctx, a),
        PartnerCommand::Customers(a) => customers::cmd_partner_customers(ctx, a),
    }
}

/// How the partner sign-in signs in (`partner login`, and the partner commands when nothing is
/// saved): the partner app signs in itself, so the Azure CLI's sign-in (another app's) is not
/// offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartnerAuth {
    /// Device code: a code to enter at microsoft.com/devicelogin on any device.
    DeviceCode,
    /// A browser on this machine (authorization code + PKCE, loopback redirect).
    Browser,
}

impl PartnerAuth {
    pub fn method(self) -> AuthMethod {
        match self {
            PartnerAuth::DeviceCode => AuthMethod::DeviceCode,
            PartnerAuth::Browser => AuthMethod::Browser,
        }
    }
}
