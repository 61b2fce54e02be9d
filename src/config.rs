//! What this run was told by its environment and global flags, read once at start.
//!
//! Nothing below `commands` reads environment variables: they are gathered here so tests and
//! the sandbox configure a run exactly as a technician would, and so the list is documented
//! in one place (README "Environment").

use std::path::PathBuf;

use url::Url;

use crate::cloud::{Cloud, Endpoints};

pub const ENV_HOME: &str = "HAL_ONBOARD_HOME";
pub const ENV_LOGIN_URL: &str = "HAL_ONBOARD_LOGIN_URL";
pub const ENV_GRAPH_URL: &str = "HAL_ONBOARD_GRAPH_URL";
/// The Office 365 Management Activity API root (tests, proxies); tokens keep the cloud's audience.
pub const ENV_MANAGE_URL: &str = "HAL_ONBOARD_MANAGE_URL";
pub const ENV_PORTAL_URL: &str = "HAL_PORTAL_URL";
/// Partner Center's API root (partner mode's consent calls); tokens keep Partner Center's
/// audience.
pub const ENV_PARTNER_CENTER_URL: &str = "HAL_ONBOARD_PARTNER_CENTER_URL";
/// Partner Center's API root unless HAL_ONBOARD_PARTNER_CENTER_URL says otherwise.
pub const PARTNER_CENTER_URL: &str = "https://api.partnercenter.microsoft.com";
pub const ENV_PORTAL_TOKEN: &str = "HAL_PORTAL_TOKEN";
pub const ENV_PWSH: &str = "HAL_ONBOARD_PWSH";
pub const ENV_CA_CERT: &str = "HAL_ONBOARD_CA_CERT";
pub const ENV_CLIENT_ID: &str = "HAL_ONBOARD_CLIENT_ID";
/// Seconds one PowerShell session may take before it is ended (default 600).
pub const ENV_PWSH_TIMEOUT: &str = "HAL_ONBOARD_PWSH_TIMEOUT";
/// Seconds a browser sign-in (`--auth browser`) may take before it is given up (default 300).
pub const ENV_BROWSER_TIMEOUT: &str = "HAL_ONBOARD_BROWSER_TIMEOUT";
/// Exchange Online access tokens minted elsewhere (automation, tests); one per tenant,
/// separated by whitespace or commas. Never logged.
pub const ENV_EXCHANGE_TOKEN: &str = "HAL_ONBOARD_EXCHANGE_TOKEN";

/// Scales every retry wait (tests and the benchmark run the same logic faster). For tests and
/// benchmarks (README lists it as such): technicians never need it.
pub const ENV_RETRY_SCALE: &str = "HAL_ONBOARD_RETRY_SCALE";

/// The retry scale from the environment (1.0 unless set to a positive number).
pub fn retry_scale() -> f64 {
    std::env::var(ENV_RETRY_SCALE)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|f: &f64| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// Where a setting came from (the portal's URL and token, for `portal status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    Environment,
    Config,
    Keyring,
    Memory,
    Missing,
}

/// Overrides from the environment. Empty values count as unset.
#[derive(Clone, Default)]
pub struct EnvOverrides {
    pub login_url: Option<Url>,
    pub graph_url: Option<Url>,
    pub manage_url: Option<Url>,
    pub portal_url: Option<Url>,
    pub partner_center_url: Option<Url>,
    /// Never logged or printed.
    pub portal_token: Option<crate::secrets::SecretText>,
    pub pwsh: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub client_id: Option<String>,
    pub pwsh_timeout: Option<std::time::Duration>,
    pub browser_timeout: Option<std::time::Duration>,
    /// Never logged or printed.
    pub exchange_token: Option<crate::secrets::SecretText>,
}

/// Shows which tokens are set, never their values.
impl std::fmt::Debug for EnvOverrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<crate::secrets::SecretText>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("EnvOverrides")
            .field("login_url", &self.login_url)
            .field("graph_url", &self.graph_url)
            .field("manage_url", &self.manage_url)
            .field("portal_url", &self.portal_url)
            .field("partner_center_url", &self.partner_center_url)
            .field("portal_token", &set(&self.portal_token))
            .field("pwsh", &self.pwsh)
            .field("ca_cert", &self.ca_cert)
            .field("client_id", &self.client_id)
            .field("pwsh_timeout", &self.pwsh_timeout)
            .field("exchange_token", &set(&self.exchange_token))
            .finish()
    }
}

#[cfg(test)]
mod https_tests {
    use super::*;

    #[test]
    fn every_endpoint_override_must_be_https() {
        for k in [
            ENV_LOGIN_URL,
            ENV_GRAPH_URL,
            ENV_MANAGE_URL,
            ENV_PORTAL_URL,
            ENV_PARTNER_CENTER_URL,
        ] {
            let e: crate::error::CommandError =
                EnvOverrides::from_lookup(|q| (q == k).then(|| "http://127.0.0.1:8080/".into()))
                    .unwrap_err()
                    .into();
            assert_eq!(e.status, crate::error::ExitStatus::Usage, "{k}");
            assert!(
                e.message.contains("must be an https:// URL"),
                "{k}: {}",
                e.message
            );
            EnvOverrides::from_lookup(|q| (q == k).then(|| "https://127.0.0.1:8080/".into()))
                .unwrap();
        }
    }

    #[test]
    fn partner_center_defaults_to_microsofts_and_takes_the_override() {
        let none = EnvOverrides::from_lookup(|_| None).unwrap();
        assert_eq!(
            none.partner_center().as_str(),
            "https://api.partnercenter.microsoft.com/"
        );
        let set = EnvOverrides::from_lookup(|q| {
            (q == ENV_PARTNER_CENTER_URL).then(|| "https://127.0.0.1:9/partnercenter/".into())
        })
        .unwrap();
        assert_eq!(
            set.partner_center().as_str(),
            "https://127.0.0.1:9/partnercenter/"
        );
    }
}

#[cfg(test)]
mod debug_tests {
    #[test]
    fn debug_never_shows_tokens() {
        let e = super::EnvOverrides {
            portal_token: Some("portal-secret-value".into()),
            exchange_token: Some("eyJexchange.token.value".into()),
            ..Default::default()
        };
        let shown = format!("{e:?}");
        assert!(!shown.contains("portal-secret-value") && !shown.contains("eyJexchange"));
        assert!(shown.contains("[redacted]"));
    }
}

/// An environment variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{var} is not a URL: {value:?}")]
    NotAUrl {
        var: &'static str,
        value: String,
        #[source]
        source: url::ParseError,
    },
    #[error("{var} must be an https:// URL, not {scheme}://")]
    NotHttps { var: &'static str, scheme: String },
    #[error("{var} is not a number of seconds: {value:?}")]
    NotSeconds { var: &'static str, value: String },
}

impl EnvError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            EnvError::NotAUrl { var, .. } => {
                format!("Set {var} to a full URL such as https://host:port, or unset it.")
            }
            EnvError::NotHttps { var, .. } => format!(
                "Set {var} to the https:// address, or unset it; tokens and secrets are never sent in clear text."
            ),
            EnvError::NotSeconds { var, .. } => format!("Set {var} to e.g. 600, or unset it."),
        }
    }
}

impl EnvOverrides {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let url = |var: &'static str| -> Result<Option<Url>, EnvError> {
            get(var)
                .map(|value| {
                    let u = Url::parse(value.trim()).map_err(|source| EnvError::NotAUrl {
                        var,
                        value: value.clone(),
                        source,
                    })?;
                    // A Global Administrator's token and new client secrets travel to these
                    // hosts: never in clear text, whatever the endpoint.
                    if u.scheme() != "https" {
                        return Err(EnvError::NotHttps {
                            var,
                            scheme: u.scheme().to_string(),
                        });
                    }
                    Ok(u)
                })
                .transpose()
        };
        let seconds = |var: &'static str| {
            get(var)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .map(std::time::Duration::from_secs)
                        .ok_or(EnvError::NotSeconds { var, value: v })
                })
                .transpose()
        };
        Ok(EnvOverrides {
            login_url: url(ENV_LOGIN_URL)?,
            graph_url: url(ENV_GRAPH_URL)?,
            manage_url: url(ENV_MANAGE_URL)?,
            portal_url: url(ENV_PORTAL_URL)?,
            partner_center_url: url(ENV_PARTNER_CENTER_URL)?,
            portal_token: get(ENV_PORTAL_TOKEN).map(crate::secrets::SecretText::new),
            pwsh: get(ENV_PWSH).map(PathBuf::from),
            ca_cert: get(ENV_CA_CERT).map(PathBuf::from),
            client_id: get(ENV_CLIENT_ID),
            pwsh_timeout: seconds(ENV_PWSH_TIMEOUT)?,
            browser_timeout: seconds(ENV_BROWSER_TIMEOUT)?,
            exchange_token: get(ENV_EXCHANGE_TOKEN).map(crate::secrets::SecretText::new),
        })
    }

    /// Partner Center's API root: HAL_ONBOARD_PARTNER_CENTER_URL, else Microsoft's.
    pub fn partner_center(&self) -> Url {
        self.partner_center_url
            .clone()
            .unwrap_or_else(|| Url::parse(PARTNER_CENTER_URL).expect("built-in"))
    }

    pub fn endpoints(&self, cloud: Cloud) -> Endpoints {
        Endpoints::new(cloud, self.login_url.as_ref(), self.graph_url.as_ref())
            .with_manage(self.manage_url.as_ref())
    }
}

/// The default home: the OS config dir (`~/.config/hal-onboard` on Linux).
pub fn default_home() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("hal-onboard"))
}

/// `config.json` in the home: settings that are not secrets (the portal token is in the keyring).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HomeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_url: Option<Url>,
    /// Partner mode's app and the MSP's tenant (`partner setup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<crate::partner::PartnerConfig>,
}

pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid hal-onboard configuration: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HomeConfig {
    pub fn load(home: &std::path::Path) -> Result<HomeConfig, ConfigError> {
        let path = home.join(CONFIG_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| ConfigError::Corrupt {
                path,
                detail: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HomeConfig::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Written like the tenant store: temp file in the same directory, fsync, rename.
    pub fn save(&self, home: &std::path::Path) -> Result<(), ConfigError> {
        use std::io::Write;
        let path = home.join(CONFIG_FILE);
        let werr = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        crate::store::create_private_dir(home).map_err(werr)?;
        let mut tmp = tempfile::NamedTempFile::new_in(home).map_err(werr)?;
        let mut json = serde_json::to_vec_pretty(self).expect("config serializes");
        json.push(b'\n');
        tmp.write_all(&json).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&path).map_err(|e| werr(e.error))?;
        Ok(())
    }
}
