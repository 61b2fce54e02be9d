//! The one error type commands return, and its mapping to exit codes.
//!
//! Every boundary (store, Graph, sign-in, bridge, portal, keyring) has its own `thiserror` type;
//! a command turns those into a `CommandError` that carries one sentence for the technician,
//! the cause, and the next thing to do. `main` prints it and exits with its code.

use std::fmt;

/// Exit codes are a public contract (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done.
    Ok = 0,
    /// Failed.
    Failed = 1,
    /// Bad usage or bad input.
    Usage = 2,
    /// Waiting on Microsoft (for example UAL propagation): try again later.
    Waiting = 3,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
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

pub type CommandResult<T = ()> = Result<T, CommandError>;

impl From<crate::store::StoreError> for CommandError {
    /// A bad home is bad input (2); anything else about the store is a failure (1).
    fn from(e: crate::store::StoreError) -> Self {
        let status = match e {
            crate::store::StoreError::Home { .. } => ExitStatus::Usage,
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
impl From<crate::store::LookupError> for CommandError {
    fn from(e: crate::store::LookupError) -> Self {
        let hint = e.hint();
        user_error(e.to_string()).hint(hint)
    }
}

/// A portal error in the technician's words, with the next action.
pub fn portal_error(e: crate::portal::PortalError, tenant: Option<&str>) -> CommandError {
    use crate::portal::PortalError;
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

/// A sign-in that failed, with what to do about it.
pub fn sign_in_failed(e: &crate::microsoft::signin::SignInError) -> CommandError {
    let mut c = failed(format!("the sign-in failed: {e}"));
    if let Some(h) = e.hint() {
        c = c.hint(h);
    }
    c
}
