//! Proving the new credentials work: client-credentials tokens through azure_identity's
//! `ClientSecretCredential`, on our HTTP client and the run's sign-in host.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};

use crate::secrets::SecretText;
use azure_core::http::ClientOptions;
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use url::Url;

use crate::microsoft::graph::meter::{MeteredTransport, RequestMeter};
use crate::microsoft::signin::{TokenClaims, aadsts_code, first_sentence};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The credential is not usable yet (Microsoft is still replicating it): retry.
    #[error("Microsoft does not accept the new credentials yet ({0})")]
    NotYet(String),
    #[error("Microsoft refused the new credentials: {0}")]
    Refused(String),
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
    ) -> Result<TokenClaims, VerifyError>;
    /// Marks later attempts as retries in the request count.
    fn retrying(&self) {}
}

/// AADSTS codes that mean "not yet": invalid secret (7000215), app not found in the
/// directory (700016), and the principal not yet replicated (7000222 is an expired secret, not
/// a delay, so it is not here).
const NOT_YET: &[u64] = &[7000215, 700016, 70001, 700027];

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
    ) -> Result<TokenClaims, VerifyError> {
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
                .map_err(|e| VerifyError::Refused(format!("unreadable token: {e}"))),
            Err(e) => {
                let text = chain(&e);
                let first = match text.find("AADSTS") {
                    Some(i) => first_sentence(&text[i..]),
                    None => first_sentence(&text),
                };
                match aadsts_code(&text) {
                    Some(c) if NOT_YET.contains(&c) => Err(VerifyError::NotYet(first)),
                    _ => Err(VerifyError::Refused(first)),
                }
            }
        }
    }

    fn retrying(&self) {
        self.transport
            .retrying
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
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
