//! Exchange Online, through PowerShell (the ExchangeOnlineManagement module, 3.1 or later).
//!
//! Microsoft offers no REST API for `Set-AdminAuditLogConfig` or
//! `Enable-OrganizationCustomization`, so hal-onboard drives PowerShell as a technician would,
//! one session per need: connect once, run the cmdlets, report each result on a marked JSON
//! line (docs/powershell-bridge.md). The pieces:
//! - [`bridge`]: find PowerShell, run a script with a timeout, end its process tree.
//! - [`scripts`]: the fixed scripts; values travel in the environment.
//! - [`protocol`]: the result lines and the classification of failures.
//! - [`ops`]: [`ExchangeOps`], the four operations the step needs, and its PowerShell
//!   implementation [`PwshExchange`].
//! - [`auth`]: how a session signs in: a token from our own sign-in, or `-Device`.

pub mod auth;
pub mod bridge;
pub mod ops;
pub mod protocol;
pub mod scripts;

pub use auth::{ExchangeAuth, ExchangeSignIn, SignInFactory, StaticTokenCredential};
pub use bridge::{Passthrough, Pwsh, Quiet};
pub use ops::{
    AuthChoice, Customization, ExchangeOps, ExchangeTarget, ModuleStatus, OpsFactory, OrgConfig,
    PassthroughFor, PwshExchange, PwshOpsFactory,
};
pub use protocol::ErrorClass;

/// The Exchange Online PowerShell module's public client ID (what `Connect-ExchangeOnline`
/// signs in as); our own sign-in asks for Exchange tokens as this client.
pub const EXO_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// Exchange Administrator role template ID.
pub const ROLE_EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
/// Global Administrator role template ID.
pub const ROLE_GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The scope to request for Exchange Online in `cloud`: `{resource}/.default`.
pub fn exchange_scope(cloud: crate::cloud::Cloud) -> String {
    format!("{}/.default", cloud.exchange_resource())
}

/// Everything that can go wrong talking to Exchange Online through PowerShell.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("PowerShell was not found (looked for {})", tried.join(", "))]
    PwshNotFound { tried: Vec<String> },
    #[error("cannot start PowerShell at {path}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ExchangeOnlineManagement module 3.1 or later is not installed{}", found.as_ref().map(|v| format!(" (found {v})")).unwrap_or_default())]
    ModuleMissing { found: Option<String> },
    #[error("installing ExchangeOnlineManagement failed: {message}")]
    InstallFailed { message: String },
    #[error("cannot get a token for Exchange Online")]
    Token(#[source] azure_core::Error),
    #[error("Exchange Online did not accept the sign-in: {message}")]
    NotSignedIn { message: String },
    #[error(
        "the signed-in account may not run {cmdlet}: it needs the Exchange Administrator or Global Administrator role ({message})"
    )]
    MissingRole { cmdlet: String, message: String },
    #[error(
        "{cmdlet} refused: the organization is dehydrated or its customization has not propagated yet ({message})"
    )]
    Dehydrated { cmdlet: String, message: String },
    #[error("{cmdlet} failed: {message}")]
    Cmdlet {
        cmdlet: String,
        message: String,
        category: String,
    },
    #[error("PowerShell did not finish within {secs} s{}", stderr_suffix(stderr))]
    Timeout { secs: u64, stderr: String },
    #[error("interrupted")]
    Interrupted,
    #[error("PowerShell ended without reporting {op} (exit code {}){}", exit_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into()), stderr_suffix(stderr))]
    NoResult {
        op: String,
        exit_code: Option<i32>,
        stderr: String,
    },
    #[error("PowerShell's output did not follow the protocol: {detail}")]
    Protocol { detail: String },
}

fn stderr_suffix(stderr: &str) -> String {
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    match last {
        Some(l) => format!("; its last error line: {}", l.trim()),
        None => String::new(),
    }
}

impl ExchangeError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ExchangeError::ModuleMissing { .. } => ErrorClass::ModuleMissing,
            ExchangeError::NotSignedIn { .. } | ExchangeError::Token(_) => ErrorClass::NotSignedIn,
            ExchangeError::MissingRole { .. } => ErrorClass::MissingRole,
            ExchangeError::Dehydrated { .. } => ErrorClass::Dehydrated,
            _ => ErrorClass::Other,
        }
    }

    /// A short machine name for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::PwshNotFound { .. } => "pwshNotFound",
            ExchangeError::Spawn { .. } => "pwshSpawn",
            ExchangeError::ModuleMissing { .. } => "moduleMissing",
            ExchangeError::InstallFailed { .. } => "installFailed",
            ExchangeError::Token(_) => "token",
            ExchangeError::NotSignedIn { .. } => "notSignedIn",
            ExchangeError::MissingRole { .. } => "missingRole",
            ExchangeError::Dehydrated { .. } => "dehydrated",
            ExchangeError::Cmdlet { .. } => "cmdlet",
            ExchangeError::Timeout { .. } => "timeout",
            ExchangeError::Interrupted => "interrupted",
            ExchangeError::NoResult { .. } => "noResult",
            ExchangeError::Protocol { .. } => "protocol",
        }
    }

    /// The next thing to do, naming the exact command. `domain` names the tenant.
    pub fn hint(&self, domain: &str) -> String {
        match self {
            ExchangeError::PwshNotFound { .. } | ExchangeError::Spawn { .. } => "Install PowerShell 7 (https://aka.ms/powershell), or set HAL_ONBOARD_PWSH to its path; `hal-onboard doctor` checks it.".into(),
            ExchangeError::ModuleMissing { .. } | ExchangeError::InstallFailed { .. } => "Run `hal-onboard doctor --install-module`, or in PowerShell: `Install-Module ExchangeOnlineManagement -Scope CurrentUser`.".into(),
            ExchangeError::Token(_) | ExchangeError::NotSignedIn { .. } => format!("Sign in again as an Exchange or Global administrator of {domain}: run `hal-onboard ual retry {domain}` (or add `--exchange-auth device` to sign in with a code)."),
            ExchangeError::MissingRole { .. } => format!("Sign in as a Global Administrator (or Exchange Administrator) of {domain}, then run `hal-onboard ual retry {domain}`."),
            ExchangeError::Dehydrated { .. } => format!("Microsoft is still propagating the organization's customization; run `hal-onboard ual retry {domain} --watch` to finish it."),
            ExchangeError::Timeout { .. } => format!("Run `hal-onboard ual retry {domain}` again; set HAL_ONBOARD_PWSH_TIMEOUT (seconds) if your connection is slow."),
            ExchangeError::Interrupted => format!("Nothing was left half-done; run `hal-onboard ual retry {domain}` to continue."),
            ExchangeError::Cmdlet { .. } | ExchangeError::NoResult { .. } | ExchangeError::Protocol { .. } => format!("Run `hal-onboard -v ual retry {domain}` to see PowerShell's output, and `hal-onboard doctor` to check the setup."),
        }
    }

    /// Builds the error for a failed report of `op`.
    pub fn from_report(op: &str, e: &protocol::ReportError) -> ExchangeError {
        let cmdlet = cmdlet_of(op).to_string();
        let message = first_line(&e.message);
        match protocol::classify(e) {
            ErrorClass::ModuleMissing => ExchangeError::ModuleMissing {
                found: e.found.clone(),
            },
            ErrorClass::NotSignedIn => ExchangeError::NotSignedIn { message },
            ErrorClass::MissingRole => ExchangeError::MissingRole { cmdlet, message },
            ErrorClass::Dehydrated => ExchangeError::Dehydrated { cmdlet, message },
            ErrorClass::AlreadyCustomized | ErrorClass::Other => ExchangeError::Cmdlet {
                cmdlet,
                message,
                category: e.category.clone(),
            },
        }
    }
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if l.len() > 400 {
        let mut end = 400;
        while !l.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &l[..end])
    } else {
        l.to_string()
    }
}

/// The cmdlet behind an operation name, for messages.
pub fn cmdlet_of(op: &str) -> &'static str {
    use protocol::op;
    match op {
        op::MODULE => "Get-Module ExchangeOnlineManagement",
        op::INSTALL => "Install-Module ExchangeOnlineManagement",
        op::CONNECT => "Connect-ExchangeOnline",
        op::ORG_CONFIG => "Get-OrganizationConfig",
        op::ENABLE_CUSTOMIZATION => "Enable-OrganizationCustomization",
        op::SET_UAL => "Set-AdminAuditLogConfig",
        op::GET_UAL => "Get-AdminAuditLogConfig",
        _ => "PowerShell",
    }
}
