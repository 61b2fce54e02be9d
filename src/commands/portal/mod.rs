//! `hal-onboard portal …`: the MSP portal's settings and resending credentials to it.

pub mod login;
pub mod status;
pub mod submit;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    Login(login::LoginArgs),
    Status(status::StatusArgs),
    Submit(submit::SubmitArgs),
}

pub fn cmd_portal(ctx: &super::Ctx, cmd: &PortalCommand) -> crate::error::CommandResult {
    match cmd {
        PortalCommand::Login(a) => login::cmd_portal_login(ctx, a),
        PortalCommand::Status(a) => status::cmd_portal_status(ctx, a),
        PortalCommand::Submit(a) => submit::cmd_portal_submit(ctx, a),
    }
}
