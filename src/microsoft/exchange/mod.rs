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
/// Compliance Administrator role template ID (Microsoft Entra built-in roles reference).
pub const ROLE_COMPLIANCE_ADMIN: &str = "17315797-102d-40b4-93e0-432062caca18";

/// The roles that hold Exchange Online's Audit Logs role, which `Set-AdminAuditLogConfig`
/// needs ("Turn auditing on or off": the Audit Logs role is in the Organization Management
/// and Compliance Management role groups; learn.microsoft.com/exchange/permissions-exo maps
/// Global and Exchange Administrator to the first, Compliance Administrator to the second).
/// Hydrating (`Enable-OrganizationCustomization`) changes the organization's configuration,
/// which only Organization Management holds: the first two.
pub const UAL_ROLES: [(&str, &str); 3] = [
    (ROLE_GLOBAL_ADMIN, "Global Administrator"),
    (ROLE_EXCHANGE_ADMIN, "Exchange Administrator"),
    (ROLE_COMPLIANCE_ADMIN, "Compliance Administrator"),
];

/// The role (of [`UAL_ROLES`], most powerful first) a token's `wids` claim carries.
pub fn ual_role(wids: &[String]) -> Option<&'static str> {
    UAL_ROLES
        .iter()
        .find(|(id, _)| wids.iter().any(|w| w.eq_ignore_ascii_case(id)))
        .map(|(_, name)| *name)
}

/// The oldest ExchangeOnlineManagement with `Connect-ExchangeOnline -AccessToken`.
pub const MODULE_MINIMUM: &str = "3.1.0";

/// ExchangeOnlineManagement releases publicly reported to break `Connect-ExchangeOnline`,
/// what breaks, and the report (`hal-onboard doctor` warns about them; docs/powershell-bridge.md,
/// "Which PowerShell"):
/// - 3.5.0: non-interactive (app-only) connections fail while 3.4.0 works
///   (https://github.com/cisagov/ScubaGear/issues/1115); 3.6.0's release notes fix a
///   compatibility issue with the Microsoft.Graph module found in 3.5.x.
/// - 3.9.2: "unable to connect at all with this version", downgrading to 3.9.0 works
///   (https://github.com/maester365/maester/issues/1400).
///
/// Not listed: 3.7.0 and 3.7.1 break interactive sign-in through WAM on Windows
/// (https://github.com/PowerShell/PowerShell/issues/25125; 3.7.2 added `-DisableWAM`), which
/// hal-onboard's `-AccessToken` and `-Device` connections do not use.
pub const KNOWN_BAD_MODULES: &[(&str, &str, &str)] = &[
    (
        "3.5.0",
        "non-interactive connections are reported to fail with it (3.4.0 works)",
        "https://github.com/cisagov/ScubaGear/issues/1115",
    ),
    (
        "3.9.2",
        "connections are reported to fail with it (3.9.0 works)",
        "https://github.com/maester365/maester/issues/1400",
    ),
];

/// What is known to be wrong with an ExchangeOnlineManagement release, and the report.
pub fn known_bad_module(version: &str) -> Option<(&'static str, &'static str)> {
    KNOWN_BAD_MODULES
        .iter()
        .find(|(v, _, _)| *v == version.trim())
        .map(|(_, what, source)| (*what, *source))
}

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
    #[error("{}", match found {
        Some(v) => format!("ExchangeOnlineManagement {v} is older than {MODULE_MINIMUM}"),
        None => format!("ExchangeOnlineManagement {MODULE_MINIMUM} or later is not installed"),
    })]
    ModuleMissing { found: Option<String> },
    /// `Connect-ExchangeOnline -Device` exists only in PowerShell 7.
    #[error(
        "`--exchange-auth device` needs PowerShell 7 (Connect-ExchangeOnline -Device exists only there), and this is Windows PowerShell {found}"
    )]
    NeedsPowerShell7 { found: String },
    #[error("installing ExchangeOnlineManagement failed: {message}")]
    InstallFailed { message: String },
    #[error("cannot get a token for Exchange Online")]
    Token(#[source] azure_core::Error),
    #[error("Exchange Online did not accept the sign-in: {message}")]
    NotSignedIn { message: String },
    /// Partner mode: the session with `-DelegatedOrganization` acts on another organization
    /// (reported: silently the partner's own); stopped before any change.
    #[error(
        "the Exchange Online session acts on {found}, not on {expected} (Connect-ExchangeOnline -DelegatedOrganization); nothing was changed"
    )]
    WrongOrganization { found: String, expected: String },
    #[error(
        "the signed-in account may not run {cmdlet}: it needs {} ({message})",
        roles_for(cmdlet)
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

/// Who may run `cmdlet`, in words.
fn roles_for(cmdlet: &str) -> &'static str {
    if cmdlet.eq_ignore_ascii_case("Enable-OrganizationCustomization") {
        "the Exchange Administrator or Global Administrator role (hydrating changes the organization's configuration)"
    } else {
        "the Audit Logs role: Compliance Administrator, Exchange Administrator or Global Administrator"
    }
}

impl ExchangeError {
    /// Something about this machine (PowerShell, its module), not the tenant: found before any
    /// Exchange sign-in, and it does not stop the Graph steps.
    pub fn is_prerequisite(&self) -> bool {
        matches!(
            self,
            ExchangeError::PwshNotFound { .. }
                | ExchangeError::Spawn { .. }
                | ExchangeError::ModuleMissing { .. }
                | ExchangeError::NeedsPowerShell7 { .. }
        )
    }

    /// The one command that fixes a prerequisite, for the step's recorded reason.
    pub fn fix_command(&self) -> Option<&'static str> {
        match self {
            ExchangeError::ModuleMissing { .. } => Some("hal-onboard doctor --install-module"),
            ExchangeError::PwshNotFound { .. }
            | ExchangeError::Spawn { .. }
            | ExchangeError::NeedsPowerShell7 { .. } => Some("hal-onboard doctor"),
            _ => None,
        }
    }

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
            ExchangeError::NeedsPowerShell7 { .. } => "needsPowerShell7",
            ExchangeError::InstallFailed { .. } => "installFailed",
            ExchangeError::Token(_) => "token",
            ExchangeError::NotSignedIn { .. } => "notSignedIn",
            ExchangeError::WrongOrganization { .. } => "wrongOrganization",
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
            ExchangeError::ModuleMissing { .. } | ExchangeError::InstallFailed { .. } => format!("Run `hal-onboard doctor --install-module` (or in PowerShell: `Install-Module ExchangeOnlineManagement -Scope CurrentUser`), then `hal-onboard ual retry {domain}`."),
            ExchangeError::NeedsPowerShell7 { .. } => format!("Run `hal-onboard ual retry {domain}` without `--exchange-auth device` (hal-onboard signs in and hands Windows PowerShell the token), or install PowerShell 7 (https://aka.ms/powershell)."),
            ExchangeError::Token(_) | ExchangeError::NotSignedIn { .. } => format!("Sign in again as a Compliance, Exchange or Global Administrator of {domain}: run `hal-onboard ual retry {domain}` (or add `--exchange-auth device` to sign in with a code)."),
            ExchangeError::MissingRole { cmdlet, .. } if cmdlet.eq_ignore_ascii_case("Enable-OrganizationCustomization") => format!("Sign in as an Exchange Administrator or Global Administrator of {domain} (a Compliance Administrator may turn on audit logging but not hydrate the organization), then run `hal-onboard ual retry {domain}`."),
            ExchangeError::MissingRole { .. } => format!("Sign in as a Compliance Administrator, Exchange Administrator or Global Administrator of {domain}, then run `hal-onboard ual retry {domain}`."),
            ExchangeError::Dehydrated { .. } => format!("Microsoft is still propagating the organization's customization; run `hal-onboard ual retry {domain} --watch` to finish it."),
            ExchangeError::WrongOrganization { .. } => format!("Nothing was changed in either organization. Run `hal-onboard ual retry {domain}` again later; if it keeps happening, sign in as an Exchange Administrator of {domain} itself: `hal-onboard ual retry {domain} --exchange-auth device`."),
            ExchangeError::Timeout { .. } => format!("Run `hal-onboard ual retry {domain}` again; set HAL_ONBOARD_PWSH_TIMEOUT (seconds) if your connection is slow."),
            ExchangeError::Interrupted => format!("Nothing was left half-done; run `hal-onboard ual retry {domain}` to continue."),
            ExchangeError::Cmdlet { .. } | ExchangeError::NoResult { .. } | ExchangeError::Protocol { .. } => format!("Run `hal-onboard -v ual retry {domain}` to see PowerShell's output, and `hal-onboard doctor` to check the setup."),
        }
    }

    /// Builds the error for a failed report of `op`.
    pub fn from_report(op: &str, e: &protocol::ReportError) -> ExchangeError {
        let cmdlet = cmdlet_of(op).to_string();
        let message = first_line(&e.message);
        if let Some((found, expected)) = protocol::wrong_organization(&e.message) {
            return ExchangeError::WrongOrganization { found, expected };
        }
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
