//! What the sandbox knows of the product, re-declared from the written contracts only.
//!
//! This crate must not depend on `hal-onboard` (Cargo would refuse the cycle): a fake built from
//! the product's own types would check the product against itself. Everything here is copied
//! from a document, and says which: docs/powershell-bridge.md, docs/portal-api.yaml, or
//! Microsoft's published identifiers.

use serde::{Deserialize, Serialize};

/// Microsoft's well-known identifiers (Entra ID built-in roles and first-party apps).
pub mod microsoft {
    /// The Exchange Online PowerShell module's public client (Microsoft's first-party app).
    pub const EXO_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";
    /// Built-in role template: Exchange Administrator.
    pub const ROLE_EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
    /// Built-in role template: Global Administrator.
    pub const ROLE_GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
    /// Built-in role template: Compliance Administrator (Microsoft Entra built-in roles
    /// reference). In Exchange Online it is the Compliance Management role group, which holds
    /// the Audit Logs role (learn.microsoft.com/exchange/permissions-exo).
    pub const ROLE_COMPLIANCE_ADMIN: &str = "17315797-102d-40b4-93e0-432062caca18";
    /// Exchange Online's resource in the global cloud.
    pub const EXCHANGE_RESOURCE: &str = "https://outlook.office365.com";
}

/// docs/powershell-bridge.md: the result lines a script prints and the environment it reads.
pub mod bridge {
    use super::*;

    /// "Result lines": every result line starts with this marker.
    pub const MARKER: &str = "##hal-result ";

    /// "Operations": the `op` of each result line.
    pub mod op {
        pub const HOST: &str = "host";
        pub const MODULE: &str = "module";
        pub const INSTALL: &str = "install";
        pub const CONNECT: &str = "connect";
        pub const ORG_CONFIG: &str = "orgConfig";
        pub const ENABLE_CUSTOMIZATION: &str = "enableCustomization";
        pub const SET_UAL: &str = "setUal";
        pub const GET_UAL: &str = "getUal";
        pub const DONE: &str = "done";
    }

    /// "Error kinds".
    pub mod kind {
        pub const MODULE_MISSING: &str = "moduleMissing";
        pub const CONNECT: &str = "connect";
        pub const CMDLET: &str = "cmdlet";
    }

    /// "Environment": the tenant the script works on.
    pub const ENV_TENANT_ID: &str = "HAL_EXO_TENANT_ID";

    /// "Which PowerShell": the oldest module with `Connect-ExchangeOnline -AccessToken`.
    pub const MODULE_MINIMUM: &str = "3.1.0";

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

    /// The `error` object of a failed result line.
    #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    pub struct ReportError {
        pub kind: String,
        pub message: String,
        pub category: String,
        pub reason: String,
        pub error_id: String,
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

        pub fn to_line(&self) -> String {
            format!(
                "{MARKER}{}",
                serde_json::to_string(self).expect("reports serialize")
            )
        }
    }
}

/// docs/portal-api.yaml: the `cloud` values of `TenantRegistration` and `TenantStatus`.
pub const CLOUDS: &[&str] = &["global", "gcc", "usgov", "usgov-dod", "china"];

/// docs/portal-api.yaml: `TenantRegistration`, the body of POST and PUT.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    pub tenant_id: String,
    pub tenant_domain: String,
    pub tenant_name: String,
    pub cloud: String,
    pub client_id: String,
    pub client_secret: String,
    pub secret_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub secret_expires_at: time::OffsetDateTime,
    pub ual_status: String,
    pub entra_license: String,
}

/// docs/portal-api.yaml: `StatusUpdate`, the body of PATCH (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusUpdate {
    pub tenant_id: String,
    pub ual_status: String,
    pub entra_license: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ual_verified_at: Option<time::OffsetDateTime>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("secret_key_id", &self.secret_key_id)
            .finish_non_exhaustive()
    }
}

/// A JWT's claims, read without verifying the signature.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// rustls needs one process-wide crypto provider; whoever comes first installs it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTPS client that trusts the sandbox's CA and never follows a redirect, so each answer
/// (a sign-in page's 302 included) is seen as the server gave it.
pub fn client_trusting(ca_pem: &std::path::Path) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let pem = std::fs::read(ca_pem).map_err(|e| format!("{}: {e}", ca_pem.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(cert)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}
