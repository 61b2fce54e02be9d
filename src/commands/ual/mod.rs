//! `hal-onboard ual …`: unified audit logging, after the wizard.

pub mod retry;

use clap::{Args, Subcommand};

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Args)]
pub struct UalArgs {
    #[command(subcommand)]
    pub command: UalCommand,
}

#[derive(Debug, Subcommand)]
pub enum UalCommand {
    /// Finish turning on unified audit logging for tenants waiting on Microsoft's propagation.
    #[command(after_help = "Examples:
  hal-onboard ual retry                          every tenant waiting on UAL, once
  hal-onboard ual retry contoso.onmicrosoft.com  one tenant
  hal-onboard ual retry --watch --interval 30m   keep trying until done (at most --max-wait)

Exit status: 0 every tenant is verified (or none was waiting), 3 some still wait on
Microsoft, 1 an error. --json output is described in docs/powershell-bridge.md.")]
    Retry(retry::RetryArgs),
}

pub fn cmd_ual(ctx: &Ctx, args: &UalArgs) -> CommandResult {
    match &args.command {
        UalCommand::Retry(a) => retry::cmd_ual_retry(ctx, a),
    }
}
