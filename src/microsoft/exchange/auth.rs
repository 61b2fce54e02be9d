//! How an Exchange session signs in.
//!
//! By default hal-onboard gets the Exchange Online token itself, with the same sign-in
//! machinery as for Graph (a device-code credential, then the refresh token kept in the keyring
//! under [`crate::secrets::account::exchange_refresh_token`]), and hands it to
//! `Connect-ExchangeOnline -AccessToken` through the child's environment. `--exchange-auth
//! device` instead lets the module sign in on its own with `-Device`, its prompt passed through.
//!
//! Sign-in itself is not built here: commands get credentials from a [`SignInFactory`], which
//! the sign-in module implements; tests and automation use [`EnvTokens`].

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine;
use time::OffsetDateTime;

use super::ExchangeError;
use crate::secrets::SecretText;
use crate::store::TenantRecord;

/// How `Connect-ExchangeOnline` signs in for one tenant.
#[derive(Clone)]
pub enum ExchangeAuth {
    /// We get the token (scope `{exchange_resource}/.default`) and pass it to the module.
    Token(ExchangeSignIn),
    /// `Connect-ExchangeOnline -Device`: the module's own device-code prompt.
    Device,
}

impl std::fmt::Debug for ExchangeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeAuth::Token(s) => write!(f, "Token(upn={:?})", s.upn),
            ExchangeAuth::Device => f.write_str("Device"),
        }
    }
}

/// A credential for one tenant and the account it signs in as.
#[derive(Clone)]
pub struct ExchangeSignIn {
    pub credential: Arc<dyn TokenCredential>,
    /// The technician's account (`-UserPrincipalName`), when known.
    pub upn: Option<String>,
    /// Partner mode (GDAP): the customer's initial `*.onmicrosoft.com` domain or tenant ID for
    /// `-DelegatedOrganization`; the session then checks it acts on that organization before
    /// any change (docs/powershell-bridge.md, "Delegated connections").
    pub delegated_organization: Option<String>,
}

impl ExchangeSignIn {
    /// An Exchange Online access token for `cloud`.
    pub async fn token(
        &self,
        cloud: crate::cloud::Cloud,
    ) -> Result<crate::secrets::SecretText, ExchangeError> {
        let scope = super::exchange_scope(cloud);
        let t = self
            .credential
            .get_token(&[scope.as_str()], None::<TokenRequestOptions<'_>>)
            .await
            .map_err(ExchangeError::Token)?;
        Ok(crate::secrets::SecretText::new(t.token.secret()))
    }
}

/// Makes the credential for a tenant. The sign-in module implements it (device code first,
/// then the keyring's refresh token `tenant:{id}:exchange-refresh-token`); tests inject theirs.
#[async_trait::async_trait]
pub trait SignInFactory: Send + Sync {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<ExchangeSignIn, ExchangeError>;
}

/// An access token obtained elsewhere, used as is until it expires.
pub struct StaticTokenCredential {
    token: SecretText,
    expires_on: OffsetDateTime,
}

impl std::fmt::Debug for StaticTokenCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticTokenCredential(..)")
    }
}

impl StaticTokenCredential {
    pub fn new<T: Into<SecretText>>(token: T) -> StaticTokenCredential {
        let token = token.into();
        let expires_on = jwt_claims(token.expose())
            .and_then(|c| c.get("exp").and_then(|v| v.as_i64()))
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::hours(1));
        StaticTokenCredential { token, expires_on }
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.token.expose().to_string(),
            self.expires_on,
        ))
    }
}

/// A JWT's claims, read without verifying (as Microsoft's clients do: only the resource checks).
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Tokens given in `HAL_ONBOARD_EXCHANGE_TOKEN` (automation and tests): one or more Exchange
/// Online access tokens separated by whitespace or commas; each tenant gets the one whose
/// `tid` claim is its tenant ID.
pub struct EnvTokens {
    tokens: Vec<SecretText>,
}

impl EnvTokens {
    pub fn new(value: &str) -> EnvTokens {
        EnvTokens {
            tokens: value
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(SecretText::new)
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl SignInFactory for EnvTokens {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<ExchangeSignIn, ExchangeError> {
        let want = tenant.tenant_id.to_string();
        for t in &self.tokens {
            let Some(claims) = jwt_claims(t.expose()) else {
                continue;
            };
            if claims.get("tid").and_then(|v| v.as_str()) == Some(want.as_str()) {
                let upn = claims
                    .get("upn")
                    .or_else(|| claims.get("unique_name"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                return Ok(ExchangeSignIn {
                    credential: Arc::new(StaticTokenCredential::new(t.clone())),
                    upn,
                    delegated_organization: None,
                });
            }
        }
        Err(ExchangeError::NotSignedIn {
            message: format!(
                "HAL_ONBOARD_EXCHANGE_TOKEN holds no token for tenant {}",
                tenant.tenant_id
            ),
        })
    }
}

/// The technician's own sign-in (`microsoft::signin::UserCredential`) for Exchange Online
/// PowerShell's client: the refresh token kept in the secret store under
/// `tenant:{id}:exchange-refresh-token` first, else the sign-in method (device code by
/// default), shown through `observer`. Interactive sign-ins happen one at a time.
pub struct UserSignIn {
    pub http: reqwest::Client,
    /// The sign-in authority when overridden (`HAL_ONBOARD_LOGIN_URL`); else each tenant's
    /// own cloud's, so a GCC High tenant signs in at login.microsoftonline.us.
    pub authority: Option<url::Url>,
    pub secrets: Arc<dyn crate::secrets::SecretStore>,
    pub observer: Arc<dyn crate::microsoft::signin::SignInObserver>,
    pub method: crate::microsoft::signin::AuthMethod,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl UserSignIn {
    pub fn new(
        http: reqwest::Client,
        authority: Option<url::Url>,
        secrets: Arc<dyn crate::secrets::SecretStore>,
        observer: Arc<dyn crate::microsoft::signin::SignInObserver>,
        method: crate::microsoft::signin::AuthMethod,
    ) -> UserSignIn {
        UserSignIn {
            http,
            authority,
            secrets,
            observer,
            method,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }
}

#[async_trait::async_trait]
impl SignInFactory for UserSignIn {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<ExchangeSignIn, ExchangeError> {
        use crate::microsoft::signin::{SignInOptions, UserCredential};
        let authority = self
            .authority
            .clone()
            .unwrap_or_else(|| crate::cloud::Endpoints::new(tenant.cloud, None, None).login);
        let mut opts = SignInOptions::exchange(
            authority,
            &tenant.tenant_id.to_string(),
            tenant.cloud.exchange_resource(),
        );
        opts.method = self.method;
        opts.known_tenant = Some(tenant.tenant_id);
        let cred = UserCredential::new(
            self.http.clone(),
            opts,
            self.secrets.clone(),
            self.observer.clone(),
        );
        let not_signed_in = |e: crate::microsoft::signin::SignInError| ExchangeError::NotSignedIn {
            message: e.to_string(),
        };
        // Sign in now, one tenant at a time, so two prompts never interleave; the session
        // gets the cached token.
        let token = {
            let _turn = self.one_at_a_time.lock().await;
            let t = cred.token(&[]).await.map_err(not_signed_in)?;
            cred.keep_signed_in(tenant.tenant_id)
                .await
                .map_err(not_signed_in)?;
            t
        };
        let upn = jwt_claims(token.token.secret()).and_then(|c| {
            c.get("upn")
                .or_else(|| c.get("preferred_username"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        Ok(ExchangeSignIn {
            credential: Arc::new(FreshEachSession {
                cred,
                first: std::sync::atomic::AtomicBool::new(true),
            }),
            upn,
            delegated_organization: None,
        })
    }
}

/// The Exchange credential as sessions use it: the first session gets the token the sign-in
/// just obtained; every later one a newly issued token (refreshed silently), so a late session
/// — the next `ual retry --watch` round, a re-check after a long hydration — never starts with
/// a token that expired meanwhile. Exchange Online judges expiry by its own clock.
struct FreshEachSession {
    cred: Arc<crate::microsoft::signin::UserCredential>,
    first: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for FreshEachSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FreshEachSession(..)")
    }
}

#[async_trait::async_trait]
impl TokenCredential for FreshEachSession {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let r = if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.cred.token(scopes).await
        } else {
            self.cred.fresh_token(scopes).await
        };
        r.map_err(|e| {
            let msg = e.to_string();
            azure_core::Error::with_error(azure_core::error::ErrorKind::Credential, e, msg)
        })
    }
}

/// One sign-in for Graph and Exchange Online: a public client that holds both Graph's delegated
/// permissions and Exchange.Manage (the partner app `partner setup` registers) redeems the
/// Graph sign-in's refresh token for `{exchange_resource}/.default` — Microsoft's refresh
/// tokens are bound to the user and the client, not to a resource ("Refresh tokens in the
/// Microsoft identity platform"). The refresh token stays under the Graph account
/// (`tenant:{id}:graph-refresh-token`); nothing goes under the Exchange one.
pub struct SameClientSignIn {
    /// The run's Graph credential (`tenant add`): its refresh token, no second prompt.
    pub graph: Option<Arc<crate::microsoft::signin::UserCredential>>,
    /// The client (its app id), when signing in afresh (`ual retry`).
    pub client_id: String,
    /// The tenant's admin consent URL for this client (said when consent is missing).
    pub consent_url: Box<dyn Fn(&TenantRecord) -> url::Url + Send + Sync>,
    pub inner: UserSignIn,
}

/// Exchange Online's refusal of the one-client sign-in in plain words: without consent for
/// Exchange.Manage in the tenant (AADSTS65001; a first sign-in's consent prompt covers only
/// the scopes it asked for, Graph's) the admin consent URL, which grants every permission the
/// app lists.
pub fn same_client_refusal(
    e: &crate::microsoft::signin::SignInError,
    consent_url: &url::Url,
    tenant: uuid::Uuid,
    client_id: &str,
) -> ExchangeError {
    use crate::microsoft::signin::SignInError;
    match e {
        SignInError::Refused {
            code: Some(65001), ..
        } => ExchangeError::NotSignedIn {
            message: format!(
                "the app {client_id} has no consent for Exchange Online (Exchange.Manage) in tenant {tenant} (AADSTS65001). Have the tenant's Global Administrator open {consent_url} and accept (it grants the app's Graph permissions and Exchange.Manage for the organization), then run the same command again; or leave out --client-id to sign in to Exchange Online separately"
            ),
        },
        e => ExchangeError::NotSignedIn {
            message: e.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl SignInFactory for SameClientSignIn {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<ExchangeSignIn, ExchangeError> {
        use crate::microsoft::signin::{SignInOptions, UserCredential};
        let login = self
            .inner
            .authority
            .clone()
            .unwrap_or_else(|| crate::cloud::Endpoints::new(tenant.cloud, None, None).login);
        let scope = super::exchange_scope(tenant.cloud);
        let cred = match &self.graph {
            Some(g) => g.clone(),
            None => {
                // A sign-in of the same client whose first scope is Exchange's: the kept
                // Graph refresh token is redeemed for it, else one device code.
                let mut opts = SignInOptions::graph(
                    login.clone(),
                    &tenant.tenant_id.to_string(),
                    &self.client_id,
                    tenant.cloud.exchange_resource(),
                );
                opts.scopes = vec![scope.clone()];
                opts.method = self.inner.method;
                opts.known_tenant = Some(tenant.tenant_id);
                UserCredential::new(
                    self.inner.http.clone(),
                    opts,
                    self.inner.secrets.clone(),
                    self.inner.observer.clone(),
                )
            }
        };
        let refused = |e: crate::microsoft::signin::SignInError| {
            same_client_refusal(
                &e,
                &(self.consent_url)(tenant),
                tenant.tenant_id,
                &self.client_id,
            )
        };
        let token = {
            let _turn = self.inner.one_at_a_time.lock().await;
            if self.graph.is_some() {
                // The Graph sign-in first (cached once done): its refresh token is the one.
                cred.token(&[]).await.map_err(refused)?;
            }
            let t = cred.token(&[scope.as_str()]).await.map_err(refused)?;
            cred.keep_signed_in(tenant.tenant_id)
                .await
                .map_err(refused)?;
            t
        };
        let upn = jwt_claims(token.token.secret()).and_then(|c| {
            c.get("upn")
                .or_else(|| c.get("preferred_username"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        Ok(ExchangeSignIn {
            credential: Arc::new(FreshEachSession {
                cred,
                first: std::sync::atomic::AtomicBool::new(true),
            }),
            upn,
            delegated_organization: None,
        })
    }
}
