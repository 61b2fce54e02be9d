//! `hal-onboard secret …`: the client secret of an onboarded tenant.

pub mod rotate;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Replace a tenant's client secret: add a new one, verify it, send it to the MSP portal,
    /// and only then remove the old one. Safe to run again: it resumes an interrupted rotation.
    Rotate(rotate::RotateArgs),
}

pub fn cmd_secret(ctx: &super::Ctx, cmd: &SecretCommand) -> crate::error::CommandResult {
    match cmd {
        SecretCommand::Rotate(a) => rotate::cmd_secret_rotate(ctx, a),
    }
}
