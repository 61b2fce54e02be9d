//! Proving the new credentials work the way Hal will use them: client-credentials tokens
//! through azure_identity's `ClientSecretCredential`, on our HTTP client and the run's sign-in
//! host, then one read-only request per API with each token (docs/clouds.md names them).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};

use crate::secrets::SecretText;
use azure_core::http::ClientOptions;
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use url::Url;

use crate::microsoft::graph::meter::{Attempt, MeteredTransport, RequestMeter};
use crate::microsoft::signin::{TokenClaims, aadsts_code, first_sentence};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The credential is not usable yet (Microsoft is still replicating it): retry.
    #[error("Microsoft does not accept the new credentials yet ({0})")]
    NotYet(String),
    #[error("Microsoft refused the new credentials: {0}")]
    Refused(String),
    /// The token was issued but the API refused the read: the grant has not taken (yet).
    #[error("{api} answered {status} to {read}: {permission} has not taken effect ({detail})")]
    ReadDenied {
        api: &'static str,
        read: &'static str,
        permission: &'static str,
        status: u16,
        detail: String,
    },
}

/// An app-only token: its claims, and the token itself for the reads.
#[derive(Clone)]
pub struct AppToken {
    pub claims: TokenClaims,
    pub bearer: SecretText,
}

/// How an API answered a read-only request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadAnswer {
    Ok,
    /// 401 or 403: the token's roles or audience do not allow it (yet).
    Denied {
        status: u16,
        detail: String,
    },
}

/// Gets an app-only token. One attempt; the verify step decides about retrying.
#[async_trait::async_trait]
pub trait CredentialVerifier: Send + Sync {
    async fn app_token(
        &self,
        tenant_id: &str,
        client_id: &str,
        secret: &SecretText,
        scope: &str,
    ) -> Result<AppToken, VerifyError>;
    /// One read-only GET with `bearer`. A 5xx or a dropped connection is "not yet".
    async fn read(&self, bearer: &SecretText, url: &Url) -> Result<ReadAnswer, VerifyError>;
    /// Marks later attempts as retries in the request count.
    fn retrying(&self) {}
}

/// AADSTS codes that mean "not yet": invalid secret (7000215), app not found in the
/// directory (700016), the principal not yet replicated (7000222 is an expired secret, not
/// a delay, so it is not here), and the resource's principal not found (500011: right after
/// the Office 365 Management APIs principal was created in a tenant that lacked it, token
/// issuance does not see it for a while).
pub const NOT_YET: &[u64] = &[7000215, 700016, 70001, 700027, 500011];

/// The verdict on a token request that failed with `text` (the error chain): "not yet"
/// (Microsoft is still replicating something new) or a refusal. Every app-only token request
/// the product makes goes through here.
pub fn classify(text: &str) -> VerifyError {
    let first = match text.find("AADSTS") {
        Some(i) => first_sentence(&text[i..]),
        None => first_sentence(text),
    };
    match aadsts_code(text) {
        Some(c) if NOT_YET.contains(&c) => VerifyError::NotYet(first),
        _ => VerifyError::Refused(first),
    }
}

/// The real verifier: azure_identity against `authority`, through the run's HTTPS client.
pub struct AzureVerifier {
    transport: Arc<MeteredTransport>,
    authority: Url,
}

impl AzureVerifier {
    pub fn new(http: &reqwest::Client, authority: Url, meter: Arc<RequestMeter>) -> Self {
        AzureVerifier {
            transport: Arc::new(MeteredTransport {
                inner: crate::http::AzureTransport(http.clone()),
                meter,
                retrying: AtomicBool::new(false),
                authority_path: authority.path().to_string(),
            }),
            authority,
        }
    }
}

#[async_trait::async_trait]
impl CredentialVerifier for AzureVerifier {
    async fn app_token(
        &self,
        tenant_id: &str,
        client_id: &str,
        secret: &SecretText,
        scope: &str,
    ) -> Result<AppToken, VerifyError> {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = self.authority.as_str().trim_end_matches('/').to_string();
        let mut client_options = ClientOptions {
            transport: Some(azure_core::http::Transport::new(self.transport.clone())),
            cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
            ..Default::default()
        };
        client_options.retry = azure_core::http::RetryOptions::none();
        let cred = ClientSecretCredential::new(
            tenant_id,
            client_id.to_string(),
            // azure_identity takes its own `Secret` (not zeroed): made here, dropped with the
            // credential at the end of this call.
            Secret::new(secret.expose().to_string()),
            Some(ClientSecretCredentialOptions { client_options }),
        )
        .map_err(|e| VerifyError::Refused(e.to_string()))?;
        match cred.get_token(&[scope], None).await {
            Ok(t) => TokenClaims::decode(t.token.secret())
                .map(|claims| AppToken {
                    claims,
                    bearer: SecretText::new(t.token.secret().to_string()),
                })
                .map_err(|e| VerifyError::Refused(format!("unreadable token: {e}"))),
            Err(e) => Err(classify(&chain(&e))),
        }
    }

    async fn read(&self, bearer: &SecretText, url: &Url) -> Result<ReadAnswer, VerifyError> {
        use std::sync::atomic::Ordering;
        let attempt = if self.transport.retrying.load(Ordering::SeqCst) {
            Attempt::Other
        } else {
            Attempt::First
        };
        let _g = self.transport.meter.start(attempt);
        let rsp = self
            .transport
            .inner
            .0
            .get(url.clone())
            .bearer_auth(bearer.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| VerifyError::NotYet(format!("{}: {e}", url.path())))?;
        let status = rsp.status();
        if status.is_success() {
            return Ok(ReadAnswer::Ok);
        }
        let body = rsp.text().await.unwrap_or_default();
        let detail = error_detail(&body).unwrap_or_else(|| status.to_string());
        match status.as_u16() {
            s @ (401 | 403) => Ok(ReadAnswer::Denied { status: s, detail }),
            s => Err(VerifyError::NotYet(format!(
                "{} answered {s} ({detail})",
                url.path()
            ))),
        }
    }

    fn retrying(&self) {
        self.transport
            .retrying
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `{"error": {"code", "message"}}`, as Graph and the Management Activity API both answer.
fn error_detail(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = &v["error"];
    let code = e["code"].as_str().unwrap_or_default();
    let msg = e["message"].as_str().unwrap_or_default();
    let text = format!("{code}: {}", first_sentence(msg));
    (!code.is_empty() || !msg.is_empty()).then(|| text.trim_matches([' ', ':']).to_string())
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push('\n');
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_principal_not_found_is_not_yet() {
        let t = "invalid_resource\nAADSTS500011: The resource principal named https://manage.office.com was not found in the tenant named Contoso. This can happen if the application has not been installed by the administrator of the tenant.";
        match classify(t) {
            VerifyError::NotYet(why) => assert!(why.starts_with("AADSTS500011"), "{why}"),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            classify("AADSTS7000222: The provided client secret keys are expired."),
            VerifyError::Refused(_)
        ));
    }
}
