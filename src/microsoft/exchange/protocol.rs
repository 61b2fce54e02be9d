//! The protocol between hal-onboard and the PowerShell scripts it runs (docs/powershell-bridge.md).
//!
//! A script reports each step as one line on stdout: the marker [`MARKER`] followed by a
//! compact JSON object `{"op":…,"ok":true,"data":{…}}` or
//! `{"op":…,"ok":false,"error":{"kind":…,"message":…,"category":…,"reason":…,"errorId":…}}`.
//! Every other line is the module talking to the person (a device-code prompt, a warning) and
//! is passed through. Classification of failures happens here, on our side, from the error
//! record's fields, so the scripts stay dumb and the rules live in one tested place.

use serde::{Deserialize, Serialize};

/// Starts every result line. Chosen so no module output starts with it by accident.
pub const MARKER: &str = "##hal-result ";

/// Operation names: one per cmdlet the scripts run, plus `host` and `done`.
pub mod op {
    /// `$PSVersionTable`: `{"psVersion":"7.4.6","edition":"Core"}`.
    pub const HOST: &str = "host";
    /// `Get-Module -ListAvailable ExchangeOnlineManagement`: `{"version":"3.7.1","path":…}`.
    pub const MODULE: &str = "module";
    /// `Install-Module ExchangeOnlineManagement -Scope CurrentUser`.
    pub const INSTALL: &str = "install";
    /// `Connect-ExchangeOnline`.
    pub const CONNECT: &str = "connect";
    /// `Get-OrganizationConfig`: `{"isDehydrated":true}`.
    pub const ORG_CONFIG: &str = "orgConfig";
    /// `Enable-OrganizationCustomization`.
    pub const ENABLE_CUSTOMIZATION: &str = "enableCustomization";
    /// `Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true`.
    pub const SET_UAL: &str = "setUal";
    /// `Get-AdminAuditLogConfig`: `{"unifiedAuditLogIngestionEnabled":true}`.
    pub const GET_UAL: &str = "getUal";
    /// The script reached its end.
    pub const DONE: &str = "done";

    /// Every operation hal-onboard knows, in the order a session reports them (the contract
    /// test holds docs/powershell-bridge.md and the scripts to this list).
    pub const ALL: [&str; 9] = [
        HOST,
        MODULE,
        INSTALL,
        CONNECT,
        ORG_CONFIG,
        ENABLE_CUSTOMIZATION,
        SET_UAL,
        GET_UAL,
        DONE,
    ];
}

/// Error kinds a script sets (where it failed); [`classify`] refines them.
pub mod kind {
    pub const MODULE_MISSING: &str = "moduleMissing";
    pub const CONNECT: &str = "connect";
    pub const CMDLET: &str = "cmdlet";

    /// Every kind a script sets.
    pub const ALL: [&str; 3] = [MODULE_MISSING, CONNECT, CMDLET];
}

/// One result line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub op: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
}

/// A PowerShell error record, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReportError {
    pub kind: String,
    pub message: String,
    /// `$_.CategoryInfo.Category`, e.g. `InvalidOperation`.
    pub category: String,
    /// `$_.CategoryInfo.Reason`, usually the exception's type name.
    pub reason: String,
    /// `$_.FullyQualifiedErrorId`.
    pub error_id: String,
    /// With `moduleMissing`: the too-old version found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl Report {
    pub fn success(op: &str, data: serde_json::Value) -> Report {
        Report {
            op: op.into(),
            ok: true,
            data,
            error: None,
        }
    }

    pub fn failure(op: &str, error: ReportError) -> Report {
        Report {
            op: op.into(),
            ok: false,
            data: serde_json::Value::Null,
            error: Some(error),
        }
    }

    /// The line a script prints for this report.
    pub fn to_line(&self) -> String {
        format!(
            "{MARKER}{}",
            serde_json::to_string(self).expect("reports serialize")
        )
    }

    /// A boolean field of `data`, looked up case-insensitively (PowerShell is case-insensitive).
    pub fn data_bool(&self, field: &str) -> Option<bool> {
        self.data.as_object().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .and_then(|(_, v)| v.as_bool())
        })
    }

    pub fn data_str(&self, field: &str) -> Option<&str> {
        self.data.as_object().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(field))
                .and_then(|(_, v)| v.as_str())
        })
    }
}

/// What a line of stdout is.
#[derive(Debug, PartialEq)]
pub enum Line {
    Report(Report),
    /// Marker present but the rest is not a report.
    Malformed(String),
    /// Anything else: for the person.
    Text(String),
}

pub fn parse_line(raw: &str) -> Line {
    let line = raw
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n']);
    match line.trim_start().strip_prefix(MARKER.trim_end()) {
        Some(rest) => match serde_json::from_str::<Report>(rest.trim()) {
            Ok(r) => Line::Report(r),
            Err(e) => Line::Malformed(format!("{e}")),
        },
        None => Line::Text(line.to_string()),
    }
}

/// What went wrong, in the terms the step and the technician care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorClass {
    /// The organization is dehydrated, or its customization has not propagated yet.
    Dehydrated,
    /// `Enable-OrganizationCustomization` on an organization already customized: success.
    AlreadyCustomized,
    /// Not signed in, or Exchange Online rejected the token.
    NotSignedIn,
    /// The account lacks the Exchange Administrator or Global Administrator role.
    MissingRole,
    /// ExchangeOnlineManagement 3.x is not installed.
    ModuleMissing,
    Other,
}

/// Sorts an error record into an [`ErrorClass`] by its kind, text and ids.
///
/// The texts are Exchange Online's as documented and reported: the dehydration error names
/// `Enable-OrganizationCustomization` ("The command you tried to run isn't currently allowed in
/// your organization. To run this command, you first need to run the command:
/// Enable-OrganizationCustomization.") and its exception is
/// `InvalidOperationInDehydratedContextException`; cmdlets a role does not grant are not
/// loaded at all in module 3.x, so a missing role shows as "The term 'Set-AdminAuditLogConfig'
/// is not recognized".
/// The organizations named by the delegated connect's check ("connected to the wrong
/// organization: <found>, not <expected>; nothing was changed"): (found, expected).
pub fn wrong_organization(message: &str) -> Option<(String, String)> {
    let rest = message
        .split("connected to the wrong organization: ")
        .nth(1)?;
    let (found, rest) = rest.split_once(", not ")?;
    let expected = rest.split("; nothing was changed").next()?;
    let clean = |s: &str| {
        let s: String = s
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        if s.is_empty() {
            "(none)".to_string()
        } else {
            s
        }
    };
    Some((clean(found), clean(expected)))
}

pub fn classify(e: &ReportError) -> ErrorClass {
    let all = format!("{} {} {} {}", e.message, e.reason, e.error_id, e.category).to_lowercase();
    let has = |s: &str| all.contains(s);
    if e.kind == kind::MODULE_MISSING {
        return ErrorClass::ModuleMissing;
    }
    if has("already enabled for customization")
        || has("organization is already customized")
        || has("operation is not required")
    {
        return ErrorClass::AlreadyCustomized;
    }
    // Before "dehydrated": a cmdlet the roles do not load is named in its own error
    // ("The term 'Enable-OrganizationCustomization' is not recognized as …").
    if has("is not recognized as") || has("commandnotfoundexception") {
        return ErrorClass::MissingRole;
    }
    if has("access denied")
        || has("accessdenied")
        || has("isn't assigned to any management roles")
        || has("does not have permission")
        || has("insufficient permissions")
    {
        return ErrorClass::MissingRole;
    }
    if has("enable-organizationcustomization") || has("dehydrated") {
        return ErrorClass::Dehydrated;
    }
    if e.kind == kind::CONNECT
        || has("unauthorized")
        || has("(401)")
        || has("aadsts")
        || has("access token")
        || has("not connected")
        || has("connect-exchangeonline")
    {
        return ErrorClass::NotSignedIn;
    }
    ErrorClass::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: &str, message: &str) -> ReportError {
        ReportError {
            kind: kind.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn lines_round_trip() {
        let r = Report::success(op::ORG_CONFIG, serde_json::json!({"isDehydrated": true}));
        let line = r.to_line();
        assert!(line.starts_with("##hal-result {"));
        assert_eq!(parse_line(&format!("{line}\r\n")), Line::Report(r.clone()));
        assert_eq!(r.data_bool("IsDehydrated"), Some(true));
        assert_eq!(parse_line("hello"), Line::Text("hello".into()));
        assert!(matches!(
            parse_line("##hal-result {nope"),
            Line::Malformed(_)
        ));
        assert!(matches!(parse_line("##hal-result"), Line::Malformed(_)));
    }

    #[test]
    fn classification() {
        let dehydrated = "The command you tried to run isn't currently allowed in your organization. To run this command, you first need to run the command: Enable-OrganizationCustomization.";
        assert_eq!(classify(&err("cmdlet", dehydrated)), ErrorClass::Dehydrated);
        let mut e = err("cmdlet", "Exception of type ... was thrown");
        e.reason = "InvalidOperationInDehydratedContextException".into();
        assert_eq!(classify(&e), ErrorClass::Dehydrated);
        assert_eq!(
            classify(&err(
                "cmdlet",
                "This operation is not required. Organization is already enabled for customization."
            )),
            ErrorClass::AlreadyCustomized
        );
        assert_eq!(
            classify(&err(
                "cmdlet",
                "The term 'Set-AdminAuditLogConfig' is not recognized as a name of a cmdlet"
            )),
            ErrorClass::MissingRole
        );
        assert_eq!(
            classify(&err("connect", "UnAuthorized")),
            ErrorClass::NotSignedIn
        );
        assert_eq!(
            classify(&err("moduleMissing", "x")),
            ErrorClass::ModuleMissing
        );
        assert_eq!(classify(&err("cmdlet", "boom")), ErrorClass::Other);
    }
}
