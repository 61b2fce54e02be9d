//! The partner sign-in (`partner login`): one technician of the MSP, in the MSP's own tenant,
//! with the partner app; its refresh token redeemed at each customer's authority for that
//! customer's tokens (GDAP).
//!
//! Built on the one sign-in machinery ([`UserCredential`]: device code or browser, the
//! observer, the AADSTS table). What partner mode adds is a check before anything is kept:
//! the token's `tid` must be the MSP's tenant (`PartnerConfig.tenant_id`) and its `amr` must
//! show multi-factor authentication, since this one sign-in reaches every customer. The
//! refresh token lives in memory and in the keyring only (`partner:{msp}:refresh-token`);
//! without a keyring the sign-in lasts for this process.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::PartnerConfig;
use crate::cloud::Endpoints;
use crate::config::EnvOverrides;
use crate::microsoft::signin::{
    AuthMethod, SignInError, SignInObserver, SignInOptions, TokenClaims, UserCredential,
    first_sentence,
};
use crate::secrets::{SecretStore, account};

/// Partner Center's resource (tokens keep it whatever HAL_ONBOARD_PARTNER_CENTER_URL says).
pub const PARTNER_CENTER_RESOURCE: &str = "https://api.partnercenter.microsoft.com";
/// The delegated scope Partner Center's API takes.
pub const PARTNER_CENTER_SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation";

/// The partner app's delegated Microsoft Graph permissions (issue 13, `partner setup`): the
/// MSP-side reads (relationships, groups) and the onboarding writes in each customer.
pub const PARTNER_GRAPH_SCOPES: &[&str] = &[
    "DelegatedAdminRelationship.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "GroupMember.Read.All",
];

/// The Graph scopes the partner sign-in asks for, qualified by the cloud's Graph resource.
pub fn partner_graph_scopes(graph_resource: &str) -> Vec<String> {
    PARTNER_GRAPH_SCOPES
        .iter()
        .map(|s| format!("{}/{s}", graph_resource.trim_end_matches('/')))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    #[error("partner mode is not set up")]
    NotSetUp,
    #[error("{given} is not the MSP tenant partner mode was set up for ({domain}, {tenant_id})")]
    OtherMsp {
        given: String,
        domain: String,
        tenant_id: Uuid,
    },
    #[error("there is no saved partner sign-in for {domain}")]
    NotSignedIn { domain: String },
    #[error("the saved partner sign-in for {domain} can no longer be used: {source}")]
    SavedRefused {
        domain: String,
        #[source]
        source: Box<SignInError>,
    },
    #[error("{}", signed_in_elsewhere(.user.as_deref(), .got.as_ref(), .domain, .tenant_id))]
    WrongTenant {
        user: Option<String>,
        got: Option<Uuid>,
        domain: String,
        tenant_id: Uuid,
    },
    #[error("{} did not use multi-factor authentication (the token's amr is [{}]); partner mode needs it, since this one sign-in reaches every customer", .user.as_deref().unwrap_or("the sign-in"), .amr.join(", "))]
    NoMfa {
        user: Option<String>,
        amr: Vec<String>,
        domain: String,
    },
    #[error("the partner sign-in failed: {0}")]
    SignIn(#[source] Box<SignInError>),
    #[error("the partner sign-in's token cannot be read: {0}")]
    Token(String),
    #[error("{customer} refused the partner sign-in: {}", customer_refusal(.source))]
    Customer {
        customer: Uuid,
        /// The MSP's domain, for the fix (`partner setup --tenant`).
        msp_domain: String,
        #[source]
        source: Box<SignInError>,
    },
    #[error("the token for customer {customer} was issued in another tenant ({})", .got.map(|g| g.to_string()).unwrap_or_else(|| "none".into()))]
    CustomerTenant { customer: Uuid, got: Option<Uuid> },
}

fn signed_in_elsewhere(
    user: Option<&str>,
    got: Option<&Uuid>,
    domain: &str,
    tenant_id: &Uuid,
) -> String {
    format!(
        "{} signed in to tenant {}, not to the MSP's tenant {domain} ({tenant_id})",
        user.unwrap_or("the account"),
        got.map(|g| g.to_string())
            .unwrap_or_else(|| "(none named)".into())
    )
}

/// The AADSTS code of a refusal, if any.
fn code(e: &SignInError) -> Option<u64> {
    match e {
        SignInError::Refused { code, .. } => *code,
        _ => None,
    }
}

/// A customer's refusal in plain words (Entra's codes for GDAP sign-ins, docs/partner.md).
fn customer_refusal(e: &SignInError) -> String {
    let words = match code(e) {
        Some(50020) => {
            "no active GDAP access assignment reaches your account there (you are not in a security group the relationship maps, the relationship expired or ended, or the assignment is still pending)"
        }
        Some(65001) => {
            "the partner app has no consent there yet, or the consent has not taken effect"
        }
        Some(700016) => {
            "the partner app is unknown in that directory (it is not a multi-tenant app, or it was deleted from the MSP's tenant)"
        }
        _ => {
            return match e {
                SignInError::Refused { description, .. } => first_sentence(description),
                e => e.to_string(),
            };
        }
    };
    format!("{words} (AADSTS{})", code(e).expect("matched"))
}

impl PartnerError {
    /// What to do about it: the exact command where there is one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PartnerError::NotSetUp => {
                "Run `hal-onboard partner setup --tenant <your MSP domain>` first (once per MSP, by an admin of the MSP's tenant).".into()
            }
            PartnerError::OtherMsp { domain, .. } => format!(
                "Sign in to the MSP's own tenant: `hal-onboard partner login --tenant {domain}` (or leave out --tenant). To set partner mode up for another MSP tenant, run `hal-onboard partner setup --tenant <that domain>`."
            ),
            PartnerError::NotSignedIn { domain } | PartnerError::SavedRefused { domain, .. } => {
                format!(
                    "Run `hal-onboard partner login --tenant {domain}` (without an OS keyring the sign-in lasts for one command only)."
                )
            }
            PartnerError::WrongTenant { domain, .. } => format!(
                "Nothing was kept. Sign in with your account of the MSP's tenant (e.g. you@{domain}), in a private browser window if another account is remembered: `hal-onboard partner login --tenant {domain}`."
            ),
            PartnerError::NoMfa { user, domain, .. } => format!(
                "Nothing was kept. Register a multi-factor method for {} at https://aka.ms/mfasetup (or have the MSP's Conditional Access require MFA for the partner app), then run `hal-onboard partner login --tenant {domain}` again and complete the MFA prompt.",
                user.as_deref().unwrap_or("your account")
            ),
            PartnerError::SignIn(e) => return e.hint(),
            PartnerError::Token(_) => {
                "Run `hal-onboard partner login` again; if it persists, report it with `-v` output.".into()
            }
            PartnerError::Customer {
                customer,
                msp_domain,
                source,
            } => match code(source) {
                Some(50020) => format!(
                    "Run `hal-onboard partner customers` to see your roles in {customer} and why; an admin of the MSP adds you to the relationship's security group (a pending assignment becomes active by itself)."
                ),
                Some(65001) => format!(
                    "`hal-onboard tenant add --partner {customer}` consents the partner app there (Partner Center, or the admin consent link); consent takes a few minutes to take effect, then run it again."
                ),
                Some(700016) => format!(
                    "Run `hal-onboard partner setup --tenant {msp_domain}`: it finds and repairs the partner app (multi-tenant), then consent it in the customer again."
                ),
                _ => return source.hint(),
            },
            PartnerError::CustomerTenant { .. } => {
                "Nothing was changed. Report it with `-v` output: the partner sign-in gave a token for another tenant than the one asked for.".into()
            }
        })
    }

    /// Bad input (exit 2) rather than a failure.
    pub fn is_usage(&self) -> bool {
        matches!(self, PartnerError::NotSetUp | PartnerError::OtherMsp { .. })
    }
}

/// The partner error inside a credential's error (a customer token refused), if that is what
/// it is: Graph and the Exchange bridge carry it as `azure_core::Error`.
pub fn partner_error(e: &azure_core::Error) -> Option<&PartnerError> {
    e.downcast_ref::<PartnerError>()
}

/// The PartnerConfig this run uses, checked against `--tenant` (the MSP's domain or GUID).
pub fn config_for(
    cfg: Option<&PartnerConfig>,
    tenant: Option<&str>,
) -> Result<PartnerConfig, PartnerError> {
    let cfg = cfg.ok_or(PartnerError::NotSetUp)?;
    if let Some(t) = tenant {
        let t = t.trim();
        let same = t.eq_ignore_ascii_case(&cfg.domain)
            || Uuid::parse_str(t).is_ok_and(|id| id == cfg.tenant_id);
        if !same {
            return Err(PartnerError::OtherMsp {
                given: t.to_string(),
                domain: cfg.domain.clone(),
                tenant_id: cfg.tenant_id,
            });
        }
    }
    Ok(cfg.clone())
}

/// What partner mode requires of the MSP sign-in's token: the MSP's tenant, and MFA.
pub fn check_msp_token(cfg: &PartnerConfig, claims: &TokenClaims) -> Result<(), PartnerError> {
    let user = claims.user().map(str::to_string);
    if claims.tenant_id() != Some(cfg.tenant_id) {
        return Err(PartnerError::WrongTenant {
            user,
            got: claims.tenant_id(),
            domain: cfg.domain.clone(),
            tenant_id: cfg.tenant_id,
        });
    }
    if !claims.mfa() {
        return Err(PartnerError::NoMfa {
            user,
            amr: claims.amr.clone(),
            domain: cfg.domain.clone(),
        });
    }
    Ok(())
}

/// The technician's sign-in in the MSP's tenant, shared by every customer of a run.
pub struct PartnerSignIn {
    cfg: PartnerConfig,
    endpoints: Endpoints,
    user: Arc<UserCredential>,
    technician: Option<String>,
    kept: bool,
}

impl std::fmt::Debug for PartnerSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerSignIn")
            .field("msp", &self.cfg.tenant_id)
            .field("technician", &self.technician)
            .finish_non_exhaustive()
    }
}

impl PartnerSignIn {
    /// The saved sign-in (keyring, `partner:{msp}:refresh-token`) or, when `interactive`, a
    /// new one (device code / browser, the partner app's client id, the MSP's authority).
    /// Refuses a token whose `tid` is not `cfg.tenant_id` or whose `amr` shows no MFA, and
    /// then keeps nothing (a saved sign-in that fails the check is forgotten).
    pub async fn open(
        env: &EnvOverrides,
        http: reqwest::Client,
        cfg: &PartnerConfig,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
        method: AuthMethod,
        interactive: bool,
    ) -> Result<Arc<PartnerSignIn>, PartnerError> {
        Self::start(env, http, cfg, secrets, observer, method, true, interactive).await
    }

    /// A new interactive sign-in (`partner login`), whatever is saved: it replaces the saved
    /// one only once it passes the checks (a refused one leaves the saved sign-in as it was).
    pub async fn login(
        env: &EnvOverrides,
        http: reqwest::Client,
        cfg: &PartnerConfig,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
        method: AuthMethod,
    ) -> Result<Arc<PartnerSignIn>, PartnerError> {
        Self::start(env, http, cfg, secrets, observer, method, false, true).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start(
        env: &EnvOverrides,
        http: reqwest::Client,
        cfg: &PartnerConfig,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
        method: AuthMethod,
        use_saved: bool,
        interactive: bool,
    ) -> Result<Arc<PartnerSignIn>, PartnerError> {
        let endpoints = env.endpoints(cfg.cloud);
        let msp = cfg.tenant_id;
        let mut opts = SignInOptions::graph(
            endpoints.login.clone(),
            &msp.to_string(),
            &cfg.client_id,
            &endpoints.graph_resource,
        );
        opts.scopes = partner_graph_scopes(&endpoints.graph_resource);
        opts.refresh_account = account::partner_refresh_token;
        opts.known_tenant = use_saved.then_some(msp);
        // The Azure CLI signs in with its own app, never the partner app.
        opts.method = match method {
            AuthMethod::AzureCli => AuthMethod::DeviceCode,
            m => m,
        };
        opts.silent_only = !interactive;
        if let Some(w) = env.browser_timeout {
            opts.browser_wait = w;
        }
        let kept = secrets.is_persistent();
        let user = UserCredential::new(http, opts, secrets, observer);
        let domain = cfg.domain.clone();
        let token = user.token(&[]).await.map_err(|e| match e {
            SignInError::NoSavedSignIn => PartnerError::NotSignedIn {
                domain: domain.clone(),
            },
            source if !interactive => PartnerError::SavedRefused {
                domain: domain.clone(),
                source: Box::new(source),
            },
            e => PartnerError::SignIn(Box::new(e)),
        })?;
        let claims = TokenClaims::decode(token.token.secret())
            .map_err(|e| PartnerError::Token(e.to_string()))?;
        if let Err(e) = check_msp_token(cfg, &claims) {
            // Nothing of a refused sign-in stays: it was never kept, and it is dropped here
            // with the credential; a saved one that fails the check is deleted.
            if use_saved && let Err(f) = user.forget(msp).await {
                tracing::debug!(error = %f, "forgetting a refused partner sign-in");
            }
            return Err(e);
        }
        user.keep_signed_in(msp)
            .await
            .map_err(|e| PartnerError::SignIn(Box::new(e)))?;
        Ok(Arc::new(PartnerSignIn {
            cfg: cfg.clone(),
            endpoints,
            technician: claims.user().map(str::to_string),
            user,
            kept,
        }))
    }

    pub fn config(&self) -> &PartnerConfig {
        &self.cfg
    }

    /// The technician's UPN in the MSP's tenant.
    pub fn technician(&self) -> Option<&str> {
        self.technician.as_deref()
    }

    /// The refresh token is in the OS keyring (false: this process only).
    pub fn kept(&self) -> bool {
        self.kept
    }

    /// The cloud's endpoints the sign-in uses.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The Graph scopes of the partner sign-in (for a GraphClient on [`Self::msp_graph`] or
    /// [`Self::customer`]).
    pub fn graph_scopes(&self) -> Vec<String> {
        partner_graph_scopes(&self.endpoints.graph_resource)
    }

    /// Graph in the MSP's own tenant (relationships, groups).
    pub fn msp_graph(&self) -> Arc<dyn TokenCredential> {
        self.user.clone()
    }

    /// Partner Center (scope `…/user_impersonation`) in the MSP's tenant, whatever scopes
    /// the caller asks for.
    pub fn partner_center(&self) -> Arc<dyn TokenCredential> {
        Arc::new(FixedScope {
            inner: self.user.clone(),
            scope: PARTNER_CENTER_SCOPE,
        })
    }

    /// A customer's tokens: the partner refresh token redeemed at the customer's authority
    /// (`{login}/{customer}/oauth2/v2.0/token`, the partner app's client id), for any scope.
    /// A token issued in another tenant than `customer` is refused.
    pub fn customer(&self, customer: Uuid) -> Arc<dyn TokenCredential> {
        Arc::new(CustomerCredential {
            user: self.user.clone(),
            default_scopes: self.graph_scopes(),
            customer,
            msp_domain: self.cfg.domain.clone(),
            tokens: Mutex::new(HashMap::new()),
        })
    }
}

fn credential_error(e: impl std::error::Error + Send + Sync + 'static) -> azure_core::Error {
    let msg = e.to_string();
    azure_core::Error::with_error(azure_core::error::ErrorKind::Credential, e, msg)
}

/// A credential that always asks for one scope.
#[derive(Debug)]
struct FixedScope {
    inner: Arc<UserCredential>,
    scope: &'static str,
}

#[async_trait::async_trait]
impl TokenCredential for FixedScope {
    async fn get_token(
        &self,
        _scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.inner.get_token(&[self.scope], options).await
    }
}

/// The partner sign-in in one customer (GDAP).
struct CustomerCredential {
    user: Arc<UserCredential>,
    /// Asked for when the caller names no scope: the partner app's Graph scopes.
    default_scopes: Vec<String>,
    customer: Uuid,
    msp_domain: String,
    /// Access tokens by scope string.
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl std::fmt::Debug for CustomerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerCredential")
            .field("customer", &self.customer)
            .finish_non_exhaustive()
    }
}

impl CustomerCredential {
    async fn token(&self, scopes: &[&str]) -> Result<AccessToken, PartnerError> {
        let defaults: Vec<&str> = self.default_scopes.iter().map(String::as_str).collect();
        let scopes = if scopes.is_empty() {
            &defaults[..]
        } else {
            scopes
        };
        let key = scopes.join(" ");
        // Held while fetching: one customer's concurrent requests share one redemption.
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&key)
            && t.expires_on > time::OffsetDateTime::now_utc() + time::Duration::minutes(2)
        {
            return Ok(t.clone());
        }
        let t = self
            .user
            .redeem_at(&self.customer.to_string(), scopes)
            .await
            .map_err(|source| PartnerError::Customer {
                customer: self.customer,
                msp_domain: self.msp_domain.clone(),
                source: Box::new(source),
            })?;
        let got = TokenClaims::decode(t.token.secret())
            .ok()
            .and_then(|c| c.tenant_id());
        if got != Some(self.customer) {
            return Err(PartnerError::CustomerTenant {
                customer: self.customer,
                got,
            });
        }
        tokens.insert(key, t.clone());
        Ok(t)
    }
}

#[async_trait::async_trait]
impl TokenCredential for CustomerCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await.map_err(credential_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PartnerConfig {
        PartnerConfig {
            client_id: "c".into(),
            tenant_id: Uuid::from_u128(0x100),
            domain: "northwindmsp.onmicrosoft.com".into(),
            cloud: Default::default(),
        }
    }

    #[test]
    fn tenant_must_be_the_recorded_msp_by_domain_or_id() {
        let c = cfg();
        assert!(matches!(
            config_for(None, None),
            Err(PartnerError::NotSetUp)
        ));
        config_for(Some(&c), None).unwrap();
        config_for(Some(&c), Some("NorthwindMSP.onmicrosoft.com")).unwrap();
        config_for(Some(&c), Some(&Uuid::from_u128(0x100).to_string())).unwrap();
        let e = config_for(Some(&c), Some("contoso.onmicrosoft.com")).unwrap_err();
        assert!(e.is_usage());
        assert!(e.to_string().contains("contoso.onmicrosoft.com"), "{e}");
        assert!(config_for(Some(&c), Some(&Uuid::from_u128(0x101).to_string())).is_err());
    }

    #[test]
    fn the_token_must_be_the_msps_and_show_mfa() {
        let c = cfg();
        let claims = |tid: u128, amr: &[&str]| TokenClaims {
            tid: Some(Uuid::from_u128(tid).to_string()),
            upn: Some("tech@northwindmsp.onmicrosoft.com".into()),
            amr: amr.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        check_msp_token(&c, &claims(0x100, &["pwd", "mfa"])).unwrap();
        let e = check_msp_token(&c, &claims(0x200, &["pwd", "mfa"])).unwrap_err();
        assert!(matches!(e, PartnerError::WrongTenant { .. }), "{e}");
        let e = check_msp_token(&c, &claims(0x100, &["pwd"])).unwrap_err();
        assert!(e.to_string().contains("multi-factor"), "{e}");
        assert!(e.hint().unwrap().contains("aka.ms/mfasetup"));
    }
}
