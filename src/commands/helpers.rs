//! What several commands need from the run's context: the HTTPS client, the secret store, the
//! tenant store, the portal. Each is made on first use so `list` stays instant.

use std::sync::Arc;

use crate::config::HomeConfig;
use crate::error::{CommandError, CommandResult, failed, user_error};
use crate::portal::{HttpPortal, PortalError};
use crate::secrets::{KeyringStore, MemoryStore, SecretStore, account};
use crate::store::{StoreError, TenantStore};

use super::Ctx;

/// Where the portal's settings came from, for `portal status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Environment,
    Config,
    Keyring,
    Memory,
    Missing,
}

impl Ctx {
    pub fn http(&self) -> CommandResult<reqwest::Client> {
        crate::http::build_client(self.env.ca_cert.as_deref()).map_err(|e| {
            user_error("cannot set up HTTPS").with_source(e).hint(
                "Check HAL_ONBOARD_CA_CERT: it must name a readable PEM file of CA certificates.",
            )
        })
    }

    /// The OS keyring, or (warned once) memory for this run only.
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        self.secrets_cell()
            .get_or_init(
                || match KeyringStore::probe_within(std::time::Duration::from_secs(5)) {
                    Ok(k) => Arc::new(k),
                    Err(e) => {
                        self.ui.warning(format!(
                            "{e}: secrets and the sign-in are kept in memory for this run only, never written to disk."
                        ));
                        Arc::new(MemoryStore::default())
                    }
                },
            )
            .clone()
    }

    pub fn store(&self) -> CommandResult<TenantStore> {
        TenantStore::open(&self.home).map_err(store_error)
    }

    pub fn home_config(&self) -> CommandResult<HomeConfig> {
        HomeConfig::load(&self.home).map_err(|e| {
            failed(e.to_string())
                .with_source(e)
                .hint("Fix or delete the file, then run `hal-onboard portal login` again.")
        })
    }

    /// The portal URL and where it came from.
    pub fn portal_url(&self) -> CommandResult<(Option<url::Url>, Source)> {
        if let Some(u) = &self.env.portal_url {
            return Ok((Some(u.clone()), Source::Environment));
        }
        match self.home_config()?.portal_url {
            Some(u) => Ok((Some(u), Source::Config)),
            None => Ok((None, Source::Missing)),
        }
    }

    /// The portal token and where it came from (never printed).
    pub fn portal_token(&self, secrets: &dyn SecretStore) -> (Option<String>, Source) {
        if let Some(t) = &self.env.portal_token {
            return (Some(t.clone()), Source::Environment);
        }
        match secrets.get(account::PORTAL_TOKEN) {
            Ok(Some(t)) => (
                Some(t),
                if secrets.is_persistent() {
                    Source::Keyring
                } else {
                    Source::Memory
                },
            ),
            _ => (None, Source::Missing),
        }
    }

    /// A ready portal client, or an error that says how to configure one.
    pub fn portal(&self, secrets: &dyn SecretStore) -> CommandResult<HttpPortal> {
        let (url, _) = self.portal_url()?;
        let url = url.ok_or_else(|| {
            user_error("no MSP portal is configured")
                .hint("Run `hal-onboard portal login`, or set HAL_PORTAL_URL and HAL_PORTAL_TOKEN.")
        })?;
        if url.scheme() != "https" {
            return Err(user_error(format!("the portal URL must use https: {url}")).hint(
                "The API token and client secrets travel to the portal: fix HAL_PORTAL_URL or run `hal-onboard portal login` with its https:// address.",
            ));
        }
        let (token, _) = self.portal_token(secrets);
        let token = token.ok_or_else(|| {
            user_error("no portal API token is available")
                .hint("Run `hal-onboard portal login`, or set HAL_PORTAL_TOKEN.")
        })?;
        Ok(HttpPortal::new(self.http()?, url, token))
    }

    /// Ctrl-C ends the command (exit 130) at any point. Every result is saved as it happens
    /// (atomic store writes), so stopping is always safe; the short grace lets the PowerShell
    /// bridge end its child first. Needed because once the bridge has listened for Ctrl-C the
    /// default action no longer applies to the rest of the run.
    pub fn exit_on_ctrl_c(&self, rt: &tokio::runtime::Runtime) {
        let ui = self.ui.clone();
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                ui.status("");
                ui.warning("interrupted: everything done so far is saved; run the same command again to resume.");
                std::process::exit(130);
            }
        });
    }

    /// A runtime for the async clients; commands that need none never pay for one.
    pub fn runtime(&self) -> CommandResult<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| failed("cannot start the async runtime").with_source(e))
    }
}

pub fn store_error(e: StoreError) -> CommandError {
    e.into()
}

/// A portal error in the technician's words, with the next action.
pub fn portal_error(e: PortalError, tenant: Option<&str>) -> CommandError {
    let resend = match tenant {
        Some(t) => format!("Run `hal-onboard portal submit {t}` once the portal is back."),
        None => "Try again once the portal is back.".into(),
    };
    match &e {
        PortalError::Unauthorized { .. } => failed(e.to_string()).hint(
            "Run `hal-onboard portal login` with a valid API token (or fix HAL_PORTAL_TOKEN).",
        ),
        PortalError::Unavailable { .. } | PortalError::Unreachable { .. } => {
            let msg = e.to_string();
            failed(msg).with_source(e).hint(resend)
        }
        PortalError::Rejected { .. } | PortalError::Protocol(_) => {
            let msg = e.to_string();
            failed(msg).with_source(e).hint(
                "Fix what the portal says, then run `hal-onboard portal submit` for the tenant.",
            )
        }
    }
}
