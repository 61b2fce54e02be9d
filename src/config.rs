//! What this run was told by its environment and global flags, read once at start.
//!
//! Nothing below `commands` reads environment variables: they are gathered here so tests and
//! the sandbox configure a run exactly as a technician would, and so the list is documented
//! in one place (README "Environment").

use std::path::PathBuf;

use url::Url;

use crate::cloud::{Cloud, Endpoints};
use crate::error::{CommandError, user_error};

pub const ENV_HOME: &str = "HAL_ONBOARD_HOME";
pub const ENV_LOGIN_URL: &str = "HAL_ONBOARD_LOGIN_URL";
pub const ENV_GRAPH_URL: &str = "HAL_ONBOARD_GRAPH_URL";
pub const ENV_PORTAL_URL: &str = "HAL_PORTAL_URL";
pub const ENV_PORTAL_TOKEN: &str = "HAL_PORTAL_TOKEN";
pub const ENV_PWSH: &str = "HAL_ONBOARD_PWSH";
pub const ENV_CA_CERT: &str = "HAL_ONBOARD_CA_CERT";
pub const ENV_CLIENT_ID: &str = "HAL_ONBOARD_CLIENT_ID";
/// Seconds one PowerShell session may take before it is ended (default 600).
pub const ENV_PWSH_TIMEOUT: &str = "HAL_ONBOARD_PWSH_TIMEOUT";
/// Exchange Online access tokens minted elsewhere (automation, tests); one per tenant,
/// separated by whitespace or commas. Never logged.
pub const ENV_EXCHANGE_TOKEN: &str = "HAL_ONBOARD_EXCHANGE_TOKEN";

/// Overrides from the environment. Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    pub login_url: Option<Url>,
    pub graph_url: Option<Url>,
    pub portal_url: Option<Url>,
    /// Never logged or printed.
    pub portal_token: Option<String>,
    pub pwsh: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub client_id: Option<String>,
    pub pwsh_timeout: Option<std::time::Duration>,
    /// Never logged or printed.
    pub exchange_token: Option<String>,
}

impl EnvOverrides {
    pub fn from_env() -> Result<Self, CommandError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, CommandError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let url = |k: &str| -> Result<Option<Url>, CommandError> {
            get(k)
                .map(|v| {
                    Url::parse(v.trim()).map_err(|e| {
                        user_error(format!("{k} is not a URL: {v:?}"))
                            .with_source(e)
                            .hint(format!(
                                "Set {k} to a full URL such as https://host:port, or unset it."
                            ))
                    })
                })
                .transpose()
        };
        Ok(EnvOverrides {
            login_url: url(ENV_LOGIN_URL)?,
            graph_url: url(ENV_GRAPH_URL)?,
            portal_url: url(ENV_PORTAL_URL)?,
            portal_token: get(ENV_PORTAL_TOKEN),
            pwsh: get(ENV_PWSH).map(PathBuf::from),
            ca_cert: get(ENV_CA_CERT).map(PathBuf::from),
            client_id: get(ENV_CLIENT_ID),
            pwsh_timeout: get(ENV_PWSH_TIMEOUT)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .map(std::time::Duration::from_secs)
                        .ok_or_else(|| {
                            user_error(format!(
                                "{ENV_PWSH_TIMEOUT} is not a number of seconds: {v:?}"
                            ))
                            .hint(format!("Set {ENV_PWSH_TIMEOUT} to e.g. 600, or unset it."))
                        })
                })
                .transpose()?,
            exchange_token: get(ENV_EXCHANGE_TOKEN),
        })
    }

    pub fn endpoints(&self, cloud: Cloud) -> Endpoints {
        Endpoints::new(cloud, self.login_url.as_ref(), self.graph_url.as_ref())
    }
}

/// The default home: the OS config dir (`~/.config/hal-onboard` on Linux).
pub fn default_home() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("hal-onboard"))
}
