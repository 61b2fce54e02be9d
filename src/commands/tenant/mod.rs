//! `hal-onboard tenant …`: onboarding one tenant.

pub mod add;
pub mod partner;
pub mod remove;

use clap::{Args, Subcommand};

use crate::commands::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    pub command: TenantCommand,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Onboard a tenant: audit logging, the app registration, its secret and admin consent,
    /// then verify the credentials. Safe to run again: it resumes where it stopped.
    Add(add::AddArgs),
    /// Stop managing a tenant: forget it on this machine (record and keyring entries), and
    /// with --delete-app also delete its app registration. Asks first.
    Remove(remove::RemoveArgs),
}

pub fn cmd_tenant(ctx: &Ctx, args: &TenantArgs) -> CommandResult {
    match &args.command {
        TenantCommand::Add(a) if a.partner => partner::cmd_tenant_add_partner(ctx, a),
        TenantCommand::Add(a) => add::cmd_tenant_add(ctx, a),
        TenantCommand::Remove(a) => remove::cmd_tenant_remove(ctx, a),
    }
}
