//! `hal-onboard ual …`: unified audit logging, after the wizard.

pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::commands::Ctx;
use crate::error::{CommandResult, failed};
use crate::microsoft::exchange::auth::{EnvTokens, UserSignIn};
use crate::microsoft::exchange::{AuthChoice, Passthrough, Pwsh, PwshOpsFactory, bridge};
use crate::microsoft::signin::{AuthMethod, DeviceCodePrompt, SignInObserver};
use crate::secrets::{KeyringStore, SecretStore};
use crate::store::TenantRecord;
use crate::ui::Ui;

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

/// How Exchange Online PowerShell signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ExchangeAuthMode {
    /// hal-onboard signs in (or reuses the kept refresh token) and hands PowerShell the token.
    #[default]
    Token,
    /// `Connect-ExchangeOnline -Device`: the module shows a code to enter in a browser.
    Device,
}

/// The Exchange sessions for this run: PowerShell located (`HAL_ONBOARD_PWSH`, else `pwsh`),
/// signing in per `mode`, module output shown on stderr prefixed with the tenant's domain.
/// `ual retry` uses it, and `tenant add` hands it to the wizard as
/// `ExchangeStep::new(factory)`. With token sign-in, tokens come from
/// `HAL_ONBOARD_EXCHANGE_TOKEN` when set, else from the technician's own sign-in (the refresh
/// token kept in `secrets` (opened here when `None` and needed), else a device code).
pub fn exchange_factory(
    ctx: &Ctx,
    mode: ExchangeAuthMode,
    secrets: Option<Arc<dyn SecretStore>>,
    http: reqwest::Client,
    pwsh_timeout: Option<Duration>,
    method: AuthMethod,
) -> CommandResult<Arc<PwshOpsFactory>> {
    let exe = bridge::locate(ctx.env.pwsh.as_deref()).map_err(|e| {
        let hint = e.hint("");
        failed("cannot run Exchange Online PowerShell")
            .with_source(e)
            .hint(hint)
            .hint("Or leave out step 1 with --skip-exchange and turn on audit logging by hand.")
    })?;
    let timeout = pwsh_timeout
        .or(ctx.env.pwsh_timeout)
        .unwrap_or(bridge::DEFAULT_TIMEOUT);
    let auth = match mode {
        ExchangeAuthMode::Device => AuthChoice::Device,
        ExchangeAuthMode::Token => AuthChoice::Token(match &ctx.env.exchange_token {
            Some(t) => Arc::new(EnvTokens::new(t)),
            None => Arc::new(UserSignIn::new(
                http,
                ctx.env
                    .login_url
                    .as_ref()
                    .map(|_| ctx.env.endpoints(ctx.cloud()).login),
                secrets.unwrap_or_else(|| secret_store(ctx)),
                Arc::new(UiSignIn { ui: ctx.ui.clone() }),
                // The Azure CLI holds no Exchange Online PowerShell sign-in: a device code then.
                match method {
                    AuthMethod::AzureCli => AuthMethod::DeviceCode,
                    m => m,
                },
            )),
        }),
    };
    let ui = ctx.ui.clone();
    Ok(Arc::new(PwshOpsFactory {
        pwsh: Pwsh::new(exe, timeout),
        auth,
        out: Arc::new(move |t: &TenantRecord| {
            Arc::new(Prefixed {
                ui: ui.clone(),
                domain: t.primary_domain.clone(),
            }) as Arc<dyn Passthrough>
        }),
    }))
}

/// The run's secret store (the OS keyring, or memory for this run).
pub fn secret_store(ctx: &Ctx) -> Arc<dyn SecretStore> {
    ctx.secrets()
}

/// The OS keyring, if it answers within `wait`.
pub(crate) fn probe_keyring(wait: Duration) -> Result<KeyringStore, String> {
    KeyringStore::probe_within(wait).map_err(|e| e.to_string())
}

/// Module output, prefixed with the tenant, to the technician (stderr).
struct Prefixed {
    ui: Ui,
    domain: String,
}

impl Passthrough for Prefixed {
    fn line(&self, line: &str) {
        if !line.trim().is_empty() {
            self.ui.status(format!("[{}] {line}", self.domain));
        }
    }
}

/// Shows an Exchange sign-in's device code.
struct UiSignIn {
    ui: Ui,
}

impl SignInObserver for UiSignIn {
    fn device_code(&self, p: &DeviceCodePrompt) {
        let ui = &self.ui;
        ui.status(format!(
            "To sign in to Exchange Online, open {} and enter the code {}",
            ui.bold(&p.verification_uri),
            ui.bold(ui.yellow(&p.user_code))
        ));
        ui.status(
            ui.dim("Sign in as a Global Administrator or Exchange Administrator of that tenant."),
        );
    }

    fn browser_url(&self, url: &url::Url) -> bool {
        self.ui
            .status(format!("To sign in to Exchange Online, open {url}"));
        false
    }

    fn signed_in(&self, user: Option<&str>) {
        self.ui.success(format!(
            "Signed in to Exchange Online{}",
            user.map(|u| format!(" as {u}")).unwrap_or_default()
        ));
    }
}
