//! Reading an access token's claims.
//!
//! Only the payload is decoded; signatures are never checked. That is all a client may do with
//! Microsoft's access tokens (they are meant for the resource, and Microsoft Graph's are not
//! even verifiable outside Microsoft), and it works the same against the sandbox's tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use uuid::Uuid;

/// The claims hal-onboard reads. Unknown claims are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenClaims {
    /// The tenant the token was issued in.
    #[serde(default)]
    pub tid: Option<String>,
    /// Object ID of the user or service principal.
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub upn: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub unique_name: Option<String>,
    /// The audience (resource).
    #[serde(default)]
    pub aud: Option<String>,
    /// Delegated scopes, space separated.
    #[serde(default)]
    pub scp: Option<String>,
    /// Application roles (app-only tokens).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Directory role template IDs of the signed-in user.
    #[serde(default)]
    pub wids: Vec<String>,
    /// How the user authenticated (`pwd`, `mfa`, `rsa`, ...: the identity platform's access
    /// token reference, "The amr claim").
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default)]
    pub exp: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    #[error("the access token is not a JWT")]
    NotJwt,
    #[error("the access token's claims cannot be read")]
    Payload(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TokenClaims {
    /// Decodes the payload of `token` without verifying it.
    pub fn decode(token: &str) -> Result<TokenClaims, ClaimsError> {
        let mut parts = token.split('.');
        let (_h, p) = match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(_)) => (h, p),
            _ => return Err(ClaimsError::NotJwt),
        };
        let bytes = B64
            .decode(p.trim_end_matches('='))
            .map_err(|e| ClaimsError::Payload(Box::new(e)))?;
        serde_json::from_slice(&bytes).map_err(|e| ClaimsError::Payload(Box::new(e)))
    }

    pub fn tenant_id(&self) -> Option<Uuid> {
        self.tid.as_deref().and_then(|t| Uuid::parse_str(t).ok())
    }

    /// Who signed in, as Microsoft shows it (UPN, else preferred username).
    pub fn user(&self) -> Option<&str> {
        self.upn
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.unique_name.as_deref())
    }

    /// The sign-in used multi-factor authentication: `amr` holds `mfa`, or `ngcmfa`, which
    /// Microsoft documents as equivalent. (`wiaormfa` may be Windows authentication alone.)
    pub fn mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa" || m == "ngcmfa")
    }

    pub fn scopes(&self) -> Vec<&str> {
        self.scp
            .as_deref()
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sandbox_tokens_without_the_key() {
        let signer = hal_sandbox::token::Signer::random();
        let t = signer.sign(&hal_sandbox::token::Claims {
            aud: "https://graph.microsoft.com".into(),
            tid: "6b1c1f0e-8c1d-4d8e-9a3f-2f2b8e1d0c11".into(),
            upn: Some("admin@contoso.onmicrosoft.com".into()),
            wids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
            scp: Some("Application.ReadWrite.All Directory.Read.All".into()),
            exp: 10,
            ..Default::default()
        });
        let c = TokenClaims::decode(&t).unwrap();
        assert_eq!(
            c.tenant_id().unwrap().to_string(),
            "6b1c1f0e-8c1d-4d8e-9a3f-2f2b8e1d0c11"
        );
        assert_eq!(c.user(), Some("admin@contoso.onmicrosoft.com"));
        assert_eq!(c.scopes().len(), 2);
        assert_eq!(c.wids.len(), 1);
        assert!(TokenClaims::decode("nope").is_err());
    }

    #[test]
    fn mfa_is_mfa_or_its_documented_equivalent() {
        let with = |amr: &[&str]| TokenClaims {
            amr: amr.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(with(&["pwd", "mfa"]).mfa());
        assert!(with(&["ngcmfa"]).mfa());
        assert!(!with(&["pwd"]).mfa());
        assert!(!with(&["wiaormfa"]).mfa());
        assert!(!with(&[]).mfa());
    }
}
