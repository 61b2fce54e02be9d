//! `hal-onboard ual …`: unified audit logging, after the wizard.

pub mod retry;

use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, failed};
use crate::microsoft::exchange::SignInFactory;
use crate::microsoft::exchange::auth::{EnvTokens, NoSignIn};

#[derive(Debug, Args)]
pub struct UalArgs {
    #[command(subcommand)]
    pub command: UalCommand,
}

#[derive(Debug, Subcommand)]
pub enum UalCommand {
    /// Finish turning on unified audit logging for tenants waiting on Microsoft's propagation.
    Retry(retry::RetryArgs),
}

pub fn cmd_ual(ctx: &Ctx, args: &UalArgs) -> CommandResult {
    match &args.command {
        UalCommand::Retry(a) => retry::cmd_ual_retry(ctx, a),
    }
}

/// How Exchange Online PowerShell signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ExchangeAuthMode {
    /// hal-onboard signs in (or reuses the kept refresh token) and hands PowerShell the token.
    #[default]
    Token,
    /// `Connect-ExchangeOnline -Device`: the module shows a code to enter in a browser.
    Device,
}

/// Where Exchange credentials come from for this run: `HAL_ONBOARD_EXCHANGE_TOKEN` when set,
/// else the sign-in module's factory (wired at merge: device code, then the keyring's
/// refresh token `tenant:{id}:exchange-refresh-token`).
pub fn exchange_sign_in(ctx: &Ctx) -> Arc<dyn SignInFactory> {
    match &ctx.env.exchange_token {
        Some(t) => Arc::new(EnvTokens::new(t)),
        None => Arc::new(NoSignIn),
    }
}

/// A runtime for commands that drive async clients.
pub(crate) fn runtime() -> CommandResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| failed("cannot start the async runtime").with_source(e))
}

pub(crate) fn store_error(e: crate::store::StoreError) -> CommandError {
    let hint = e.hint();
    let mut err = failed("cannot use the tenant store").with_source(e);
    if let Some(h) = hint {
        err = err.hint(h);
    }
    err
}
