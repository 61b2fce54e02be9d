//! The one error type commands return, and the one map from every other error to it.
//!
//! Every layer keeps its own `thiserror` type (store, lookup, configuration, HTTPS, sign-in,
//! Graph, keyring, Exchange bridge, portal, the wizard). The `From` impls at the end of this
//! file, and only they, turn each into a `CommandError`: one sentence for the technician, the
//! cause, the next thing to do, and the exit status, so `?` in a command reports any of them
//! the same way everywhere. A command adds only what it alone knows: its own sentence on top
//! ([`CommandError::context`]) or a hint naming its own next command. `main` prints the error
//! and exits with its status; Ctrl-C is one of those statuses (130), and so is a bug
//! ([`ExitStatus::Internal`], which says how to report it).

use std::fmt;

/// Exit codes are a public contract (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done.
    Ok,
    /// Failed.
    Failed,
    /// Bad usage or bad input.
    Usage,
    /// Waiting on Microsoft (for example UAL propagation): try again later.
    Waiting,
    /// Ctrl-C: everything done so far is saved; the same command resumes.
    Interrupted,
    /// A bug in hal-onboard (exit 1, like any failure, but the message says how to report it).
    Internal,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Ok => 0,
            ExitStatus::Failed | ExitStatus::Internal => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Waiting => 3,
            ExitStatus::Interrupted => 130,
        }
    }
}

#[derive(Debug)]
pub struct CommandError {
    pub status: ExitStatus,
    /// One clear sentence: what happened.
    pub message: String,
    /// Why, when known (shown under the message; the full chain with `-v`).
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// What to do next, each a line such as "Run `hal-onboard portal login`."
    pub hints: Vec<String>,
}

impl CommandError {
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        CommandError {
            status,
            message: message.into(),
            source: None,
            hints: Vec::new(),
        }
    }

    pub fn with_source(mut self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.source = Some(e.into());
        self
    }

    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hints.push(h.into());
        self
    }

    /// Puts the command's own sentence on top: what the error said becomes its cause, and its
    /// status and hints stay.
    pub fn context(mut self, message: impl Into<String>) -> Self {
        let said = std::mem::replace(&mut self.message, message.into());
        if self.source.is_none() {
            self.source = Some(said.into());
        }
        self
    }

    /// Ctrl-C ended the command (exit 130). One line, the same for every command (`Ui`
    /// prints it without the `error:` prefix: stopping is not a failure).
    pub fn interrupted() -> Self {
        CommandError::new(
            ExitStatus::Interrupted,
            "interrupted: everything done so far is saved; run the same command to resume",
        )
    }

    /// The run ends waiting on Microsoft's unified audit logging propagation (exit 3): the
    /// one status line that says so, naming the command that finishes it.
    pub fn ual_waiting() -> Self {
        CommandError::new(
            ExitStatus::Waiting,
            "unified audit logging is propagating; `hal-onboard ual retry --watch` finishes it",
        )
    }

    /// A status already shown to the technician: the run only ends with it (nothing printed).
    pub fn shown(status: ExitStatus) -> Self {
        CommandError::new(status, "")
    }

    /// A bug: something hal-onboard assumed did not hold. Says how to report it.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        CommandError::new(ExitStatus::Internal, format!("internal error: {what}")).hint(
            "This is a bug in hal-onboard: please report it, with the output of the same command run with -v.",
        )
    }

    /// The causes, outermost first, de-duplicated (many errors repeat their source in Display).
    pub fn causes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cur {
            let s = e.to_string();
            if !out.iter().any(|o| o.contains(&s)) && !self.message.contains(&s) {
                out.push(s);
            }
            cur = e.source();
        }
        out
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Bad usage or input: exit 2.
pub fn user_error(message: impl Into<String>) -> CommandError {
    CommandError::new(ExitStatus::Usage, message)
}

/// Something failed: exit 1.
pub fn failed(message: impl Into<String>) -> CommandError {
    CommandError::new(ExitStatus::Failed, message)
}

/// Microsoft is not done yet: exit 3.
pub fn waiting(message: impl Into<String>) -> CommandError {
    CommandError::new(ExitStatus::Waiting, message)
}

/// A bug: exit 1, with how to report it.
pub fn internal(what: impl std::fmt::Display) -> CommandError {
    CommandError::internal(what)
}

pub type CommandResult<T = ()> = Result<T, CommandError>;

// ---------------------------------------------------------------------------------------------
// The map: every layer's error to the command error, with its message, hints and exit status.

use crate::config::{ConfigError, EnvError};
use crate::http::HttpSetupError;
use crate::microsoft::exchange::ExchangeError;
use crate::microsoft::graph::GraphError;
use crate::microsoft::signin::SignInError;
use crate::portal::PortalError;
use crate::secrets::SecretError;
use crate::store::lock::LockError;
use crate::store::{LookupError, StoreError};
use crate::wizard::WizardError;

/// Another run works on the tenant (exit 1, with how to wait for it), or its lock file cannot
/// be used.
impl From<LockError> for CommandError {
    fn from(e: LockError) -> Self {
        let hint = e.hint();
        let c = match &e {
            LockError::Busy { .. } => failed(e.to_string()),
            LockError::Io { .. } => failed(e.to_string()).with_source(e),
        };
        match hint {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

impl From<StoreError> for CommandError {
    /// A bad home is bad input (2); anything else about the store is a failure (1).
    fn from(e: StoreError) -> Self {
        let status = match e {
            StoreError::Home { .. } | StoreError::HomeNotPrivate { .. } => ExitStatus::Usage,
            _ => ExitStatus::Failed,
        };
        let hints = e.hint().into_iter().collect();
        CommandError {
            status,
            message: e.to_string(),
            source: Some(Box::new(e)),
            hints,
        }
    }
}

/// A tenant name that picks no tenant, or several: bad input (exit 2), with the way out.
impl From<LookupError> for CommandError {
    fn from(e: LookupError) -> Self {
        let hint = e.hint();
        user_error(e.to_string()).hint(hint)
    }
}

/// An environment variable that cannot be used: bad input (exit 2), naming the variable.
impl From<EnvError> for CommandError {
    fn from(e: EnvError) -> Self {
        let hint = e.hint();
        user_error(e.to_string()).with_source(e).hint(hint)
    }
}

/// config.json cannot be read or written.
impl From<ConfigError> for CommandError {
    fn from(e: ConfigError) -> Self {
        let c = failed(e.to_string());
        match e {
            ConfigError::Read { .. } | ConfigError::Corrupt { .. } => c
                .with_source(e)
                .hint("Fix or delete the file, then run `hal-onboard portal login` again."),
            ConfigError::Write { .. } => c.with_source(e),
        }
    }
}

/// The HTTPS client cannot be made: the extra CA file is the usual cause (exit 2).
impl From<HttpSetupError> for CommandError {
    fn from(e: HttpSetupError) -> Self {
        user_error("cannot set up HTTPS")
            .with_source(e)
            .hint("Check HAL_ONBOARD_CA_CERT: it must name a readable PEM file of CA certificates.")
    }
}

/// The technician's sign-in failed, with what to do about it.
impl From<SignInError> for CommandError {
    fn from(e: SignInError) -> Self {
        let c = failed(format!("the sign-in failed: {e}"));
        match e.hint() {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// Partner mode's sign-in: not set up or another MSP tenant is bad input (exit 2); a refused
/// or failed sign-in is a failure, with its fix.
impl From<crate::partner::signin::PartnerError> for CommandError {
    fn from(e: crate::partner::signin::PartnerError) -> Self {
        let c = if e.is_usage() {
            user_error(e.to_string())
        } else {
            failed(e.to_string())
        };
        match e.hint() {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// A partner-onboarded tenant that partner mode cannot reach: not set up here is bad input
/// (exit 2, like an unconfigured portal), a refused partner sign-in a failure. Nothing changed.
impl From<crate::partner::reach::ReachError> for CommandError {
    fn from(e: crate::partner::reach::ReachError) -> Self {
        use crate::partner::reach::ReachError;
        let hints = e.hints();
        let mut c = match &e {
            ReachError::NotSetUp { .. } => user_error(e.to_string()),
            ReachError::SignIn { source, .. } => {
                let cause = source.to_string();
                failed(e.to_string()).with_source(cause)
            }
        };
        c.hints = hints;
        c
    }
}

impl From<crate::partner::reach::SessionError> for CommandError {
    fn from(e: crate::partner::reach::SessionError) -> Self {
        match e {
            crate::partner::reach::SessionError::Reach(e) => e.into(),
            crate::partner::reach::SessionError::SignIn(e) => e.into(),
        }
    }
}

/// The tenant's OpenID configuration: no such tenant, or a `--cloud` Microsoft contradicts, is
/// bad input (exit 2); an unreachable or unreadable sign-in service is a failure.
impl From<crate::microsoft::signin::discovery::DiscoveryError> for CommandError {
    fn from(e: crate::microsoft::signin::discovery::DiscoveryError) -> Self {
        let c = if e.is_usage() {
            user_error(e.to_string())
        } else {
            failed(e.to_string())
        };
        let hint = e.hint();
        let c = match &e {
            crate::microsoft::signin::discovery::DiscoveryError::Unreachable { .. } => {
                c.with_source(e)
            }
            _ => c,
        };
        match hint {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// A Graph request failed (a token failure reads as the sign-in failure it is).
impl From<GraphError> for CommandError {
    fn from(e: GraphError) -> Self {
        let hint = e.hint();
        let c = match (e.sign_in(), e.partner()) {
            (Some(s), _) => failed(format!("the sign-in failed: {s}")),
            (None, Some(p)) => failed(p.to_string()),
            (None, None) => failed(e.to_string()),
        };
        match hint {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// The partner's GDAP state could not be read: no relationship visible (the AdminAgents
/// hint), a permission the partner app lacks (403), or Graph itself; a token failure reads as
/// the sign-in failure it is.
impl From<crate::partner::customers::GdapError> for CommandError {
    fn from(e: crate::partner::customers::GdapError) -> Self {
        use crate::partner::customers::GdapError;
        let hint = e.hint();
        let c = match &e {
            GdapError::Graph { source, .. } if source.sign_in().is_some() => failed(format!(
                "the sign-in failed: {}",
                source.sign_in().expect("checked")
            )),
            GdapError::NoneVisible => failed(e.to_string()),
            _ => {
                let msg = e.to_string();
                failed(msg).with_source(e)
            }
        };
        c.hint(hint)
    }
}

/// `partner setup` stopped before changing anything (a wrong tenant, an app not ours), or
/// Graph refused.
impl From<crate::partner::setup::SetupError> for CommandError {
    fn from(e: crate::partner::setup::SetupError) -> Self {
        use crate::partner::setup::SetupError;
        match e {
            SetupError::Graph(g) => g.into(),
            e @ SetupError::WrongTenant { .. } => failed(e.to_string()).hint(
                "Sign in as an administrator of the MSP's own tenant (the one given to --tenant): nothing was changed.",
            ),
            e @ SetupError::NotOurs(_) => failed(e.to_string()).hint(
                "It was left alone and nothing was changed. Rename or delete that app in the Microsoft Entra admin center if it is not in use, then run `hal-onboard partner setup` again.",
            ),
        }
    }
}

/// The OS keyring failed.
impl From<SecretError> for CommandError {
    fn from(e: SecretError) -> Self {
        let hint = match e {
            SecretError::Locked(_) => {
                "Unlock the OS keyring (log in to the desktop session, or `gnome-keyring-daemon --unlock` over SSH), then run the command again: nothing kept there was lost."
            }
            _ => "Unlock the OS keyring, or run on a machine that has one.",
        };
        failed(e.to_string()).with_source(e).hint(hint)
    }
}

/// The PowerShell bridge: PowerShell missing or not starting, or Ctrl-C while it ran. What
/// happened to one tenant is reported by the command that knows the tenant
/// (`ExchangeError::hint(domain)`).
impl From<ExchangeError> for CommandError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Interrupted => CommandError::interrupted(),
            ExchangeError::PwshNotFound { .. } | ExchangeError::Spawn { .. } => {
                let hint = e.hint("");
                failed("cannot run Exchange Online PowerShell")
                    .with_source(e)
                    .hint(hint)
            }
            ExchangeError::ModuleMissing { .. } | ExchangeError::InstallFailed { .. } => {
                let hint = e.hint("");
                failed(e.to_string()).hint(hint)
            }
            _ => {
                let msg = e.to_string();
                failed(msg).with_source(e)
            }
        }
    }
}

impl From<PortalError> for CommandError {
    fn from(e: PortalError) -> Self {
        portal_error(e, None)
    }
}

/// A portal error in the technician's words, with the next action; `tenant` names the
/// tenant to resend once the portal is back.
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
        PortalError::NotAPortal { .. } => failed(e.to_string()).hint(
            "Check the portal URL (`hal-onboard portal status`; a captive portal or a wrong address answers like this); nothing was forgotten or removed.",
        ),
        PortalError::Rejected { .. } | PortalError::Protocol(_) => {
            let msg = e.to_string();
            failed(msg).with_source(e).hint(
                "Fix what the portal says, then run `hal-onboard portal submit` for the tenant.",
            )
        }
    }
}

/// Partner Center (partner mode's consent API).
impl From<crate::microsoft::partner_center::PartnerCenterError> for CommandError {
    fn from(e: crate::microsoft::partner_center::PartnerCenterError) -> Self {
        let hint = e.hint();
        let c = failed(e.to_string()).with_source(e);
        match hint {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// The partner app's consent in a customer: only Microsoft being slow is "waiting" (3).
impl From<crate::partner::consent::ConsentError> for CommandError {
    fn from(e: crate::partner::consent::ConsentError) -> Self {
        let hint = e.hint();
        let msg = e.to_string();
        let c = if e.is_waiting() {
            waiting(msg)
        } else {
            failed(msg).with_source(e)
        };
        match hint {
            Some(h) => c.hint(h),
            None => c,
        }
    }
}

/// The wizard stopped: waiting on Microsoft (3), a question no one could answer or a name
/// taken (2), anything else (1). A sign-in failure reads as itself. The command adds how to
/// resume (`tenant add` and `secret rotate` resume differently).
impl From<WizardError> for CommandError {
    fn from(e: WizardError) -> Self {
        let status = if e.is_waiting() {
            ExitStatus::Waiting
        } else if e.is_usage() {
            ExitStatus::Usage
        } else {
            ExitStatus::Failed
        };
        let hint = e.hint();
        let sign_in = match &e {
            WizardError::Graph { source, .. } => source.sign_in().map(|s| s.to_string()),
            _ => None,
        };
        let mut c = match sign_in {
            Some(s) => CommandError::new(status, format!("the sign-in failed: {s}")),
            None => {
                let c = CommandError::new(status, e.to_string());
                // The cause as text: a boundary error's Debug may carry more than it shows.
                match std::error::Error::source(&e) {
                    Some(src) => c.with_source(src.to_string()),
                    None => c,
                }
            }
        };
        if let Some(h) = hint {
            c = c.hint(h);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let codes: Vec<i32> = [
            ExitStatus::Ok,
            ExitStatus::Failed,
            ExitStatus::Usage,
            ExitStatus::Waiting,
            ExitStatus::Interrupted,
            ExitStatus::Internal,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 130, 1]);
    }

    #[test]
    fn context_puts_the_command_first_and_keeps_the_rest() {
        let e = CommandError::from(SecretError::Failed("locked".into()))
            .context("cannot save the portal token in the OS keyring");
        assert_eq!(e.message, "cannot save the portal token in the OS keyring");
        assert_eq!(e.status, ExitStatus::Failed);
        assert_eq!(
            e.causes(),
            vec!["the OS keyring refused the operation (locked)"]
        );
        assert_eq!(e.hints.len(), 1);
    }

    #[test]
    fn an_internal_error_says_how_to_report_it() {
        let e = CommandError::internal("the plan lost a step");
        assert_eq!(e.status.code(), 1);
        assert_eq!(e.message, "internal error: the plan lost a step");
        assert!(e.hints[0].contains("report"), "{:?}", e.hints);
    }

    #[test]
    fn a_busy_tenant_is_exit_1_with_the_holder_and_a_hint() {
        let home = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::new_v4();
        let _held = crate::store::lock::acquire(home.path(), id, "Contoso", "tenant add").unwrap();
        let e = CommandError::from(
            crate::store::lock::acquire(home.path(), id, "Contoso", "ual retry").unwrap_err(),
        );
        assert_eq!(e.status.code(), 1);
        assert!(
            e.message.starts_with(&format!(
                "another hal-onboard (pid {}, since ",
                std::process::id()
            )),
            "{}",
            e.message
        );
        assert!(
            e.message.ends_with("is working on Contoso"),
            "{}",
            e.message
        );
        assert!(e.hints[0].contains("in progress"), "{:?}", e.hints);
    }

    #[test]
    fn interrupted_bridge_is_exit_130() {
        let e = CommandError::from(ExchangeError::Interrupted);
        assert_eq!(e.status.code(), 130);
    }
}
