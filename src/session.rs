//! What every command that talks to a tenant shares: a Graph client signed in (on first use)
//! to one tenant, with the credential verifier and the request meter on the same HTTPS client
//! (`tenant add`, `tenant remove --delete-app`, `secret rotate`), and the Exchange Online
//! PowerShell sessions (`tenant add` step 1, `ual retry`).
//!
//! Commands decide from their flags ([`SignIn`], [`ExchangeSignIn`]) and hand in what shows
//! things to the technician (observers from `ui`); nothing here prints or reads a flag.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;

use crate::cloud::{Cloud, Endpoints};
use crate::config::EnvOverrides;
use crate::microsoft::exchange::auth::{EnvTokens, SameClientSignIn, UserSignIn};
use crate::microsoft::exchange::{
    AuthChoice, ExchangeError, PassthroughFor, Pwsh, PwshOpsFactory, bridge,
};
use crate::microsoft::graph::meter::RequestMeter;
use crate::microsoft::graph::{GraphClient, RetryPolicy};
use crate::microsoft::signin::discovery::{self, DiscoveryError, TenantCloud};
use crate::microsoft::signin::{
    self, AuthMethod, GRAPH_CLI_CLIENT_ID, SignInError, SignInObserver, SignInOptions,
    UserCredential,
};
use crate::secrets::{SecretError, SecretStore, account};
use crate::store::TenantRecord;
use crate::store::status::TenantStatus;
use crate::tenant::TenantName;
use crate::wizard::verify::AzureVerifier;

/// The tenant's cloud from its OpenID configuration (one GET, before any sign-in): also the
/// check that the tenant exists. Asked at `HAL_ONBOARD_LOGIN_URL` when set, else at
/// Microsoft's public authority (and 21Vianet's when the public one does not know a tenant
/// that may be there). `flag` (`--cloud`) must agree with what Microsoft says.
pub async fn find_cloud(
    env: &EnvOverrides,
    http: &reqwest::Client,
    tenant: &TenantName,
    flag: Option<Cloud>,
) -> Result<TenantCloud, DiscoveryError> {
    let authority = env
        .login_url
        .clone()
        .unwrap_or_else(|| url::Url::parse(discovery::PUBLIC_AUTHORITY).expect("built-in"));
    let china = env.login_url.is_none()
        && (flag == Some(Cloud::China) || tenant.as_str().to_ascii_lowercase().ends_with(".cn"));
    let found = discovery::discover(http, &authority, tenant.as_str(), china).await?;
    discovery::reconcile(tenant.as_str(), &found, flag)?;
    Ok(found)
}

/// How the technician signs in (`--auth`, `--client-id`, `--cloud`).
#[derive(Debug, Clone, Default)]
pub struct SignIn {
    pub method: AuthMethod,
    /// The public client [default: HAL_ONBOARD_CLIENT_ID, else Microsoft Graph Command Line
    /// Tools].
    pub client_id: Option<String>,
    /// The cloud asked for; else the recorded tenant's, else the global cloud.
    pub cloud: Option<Cloud>,
    /// Delegated Graph permissions asked for besides onboarding's (`partner setup` also grants
    /// delegated consent: `DelegatedPermissionGrant.ReadWrite.All`).
    pub extra_scopes: Vec<&'static str>,
}

/// A Graph client signed in (on first use) to one tenant, and what goes with it.
pub struct Session {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub graph: GraphClient,
    pub verifier: AzureVerifier,
    pub meter: Arc<RequestMeter>,
    /// The technician's credential, to keep the sign-in once the tenant is checked (`None`
    /// with the Azure CLI, which keeps its own).
    pub user_cred: Option<Arc<UserCredential>>,
    /// The retry scale (HAL_ONBOARD_RETRY_SCALE; 1 for technicians).
    pub scale: f64,
}

impl Session {
    /// Builds the clients; nothing is sent until the first Graph request.
    pub fn open(
        env: &EnvOverrides,
        http: reqwest::Client,
        tenant: &TenantName,
        known: Option<&TenantRecord>,
        how: &SignIn,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
    ) -> Result<Session, SignInError> {
        let cloud = how.cloud.or(known.map(|r| r.cloud)).unwrap_or_default();
        let endpoints = env.endpoints(cloud);
        let scale = crate::config::retry_scale();
        let client_id = how
            .client_id
            .clone()
            .or_else(|| env.client_id.clone())
            .unwrap_or_else(|| GRAPH_CLI_CLIENT_ID.to_string());
        let tenant = tenant.as_str();
        let mut user_cred: Option<Arc<UserCredential>> = None;
        let (credential, scopes): (
            Arc<dyn azure_core::credentials::TokenCredential>,
            Vec<String>,
        ) =
            match how.method {
                AuthMethod::AzureCli => (
                    signin::azure_cli(tenant)?,
                    vec![format!("{}/.default", endpoints.graph_resource)],
                ),
                method => {
                    let mut opts = SignInOptions::graph(
                        endpoints.login.clone(),
                        tenant,
                        &client_id,
                        &endpoints.graph_resource,
                    );
                    opts.method = method;
                    opts.scopes.extend(how.extra_scopes.iter().map(|s| {
                        format!("{}/{s}", endpoints.graph_resource.trim_end_matches('/'))
                    }));
                    opts.known_tenant = known.map(|r| r.tenant_id);
                    if let Some(w) = env.browser_timeout {
                        opts.browser_wait = w;
                    }
                    let scopes = opts.scopes.clone();
                    let c = UserCredential::new(http.clone(), opts, secrets, observer);
                    user_cred = Some(c.clone());
                    (c, scopes)
                }
            };
        let meter = RequestMeter::new();
        let graph = GraphClient::new(
            http.clone(),
            endpoints.clone(),
            credential,
            scopes,
            RetryPolicy::default().scaled(scale),
            meter.clone(),
        );
        let verifier = AzureVerifier::new(&http, endpoints.login.clone(), meter.clone());
        Ok(Session {
            http,
            endpoints,
            graph,
            verifier,
            meter,
            user_cred,
            scale,
        })
    }
}

impl Session {
    /// The same clients on a credential made elsewhere (partner mode: the partner sign-in's
    /// token for one customer, `PartnerSignIn::customer`). Nothing is kept by the session:
    /// the credential keeps its own sign-in. `scopes` are what Graph requests ask it for.
    pub fn with_credential(
        env: &EnvOverrides,
        http: reqwest::Client,
        cloud: Cloud,
        credential: Arc<dyn azure_core::credentials::TokenCredential>,
        scopes: Vec<String>,
    ) -> Session {
        let endpoints = env.endpoints(cloud);
        let scale = crate::config::retry_scale();
        let meter = RequestMeter::new();
        let graph = GraphClient::new(
            http.clone(),
            endpoints.clone(),
            credential,
            scopes,
            RetryPolicy::default().scaled(scale),
            meter.clone(),
        );
        let verifier = AzureVerifier::new(&http, endpoints.login.clone(), meter.clone());
        Session {
            http,
            endpoints,
            graph,
            verifier,
            meter,
            user_cred: None,
            scale,
        }
    }
}

/// How Exchange Online PowerShell signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ExchangeAuthMode {
    /// hal-onboard signs in (or reuses the kept refresh token) and hands PowerShell the token.
    #[default]
    Token,
    /// `Connect-ExchangeOnline -Device`: the module shows a code to enter in a browser.
    Device,
}

/// How this run's Exchange sessions sign in, and how long one may take.
#[derive(Debug, Clone, Default)]
pub struct ExchangeSignIn {
    pub mode: ExchangeAuthMode,
    /// The technician's Graph sign-in method; the Azure CLI holds no Exchange Online
    /// PowerShell sign-in, so a device code is used then.
    pub method: AuthMethod,
    /// The cloud asked for (`--cloud`), for the sign-in authority when it is overridden.
    pub cloud: Option<Cloud>,
    /// `--pwsh-timeout`; else HAL_ONBOARD_PWSH_TIMEOUT, else the bridge's default.
    pub pwsh_timeout: Option<Duration>,
    /// One sign-in for Graph and Exchange ([`one_sign_in_client`]): Exchange's token from the
    /// same client's refresh token instead of Exchange Online PowerShell's sign-in.
    pub same_client: Option<SameClient>,
}

/// The client that signs in to both Graph and Exchange Online, and the run's Graph
/// credential when there is one (`tenant add`; `ual retry` has none and signs in itself).
#[derive(Debug, Clone)]
pub struct SameClient {
    pub client_id: String,
    pub graph: Option<Arc<UserCredential>>,
}

/// The client (`--client-id`, else HAL_ONBOARD_CLIENT_ID) when it is the partner app recorded
/// by `partner setup` (config.json `partner.clientId`): it holds Graph's delegated permissions
/// and Exchange.Manage, so one sign-in gives both tokens (docs/signin.md, "One sign-in").
/// Any other client keeps the two sign-ins: Exchange.Manage cannot be assumed of it.
pub fn one_sign_in_client(
    env: &EnvOverrides,
    client_id: Option<&str>,
    partner: Option<&crate::partner::PartnerConfig>,
) -> Option<String> {
    let client = client_id.or(env.client_id.as_deref())?;
    partner
        .filter(|p| p.client_id.eq_ignore_ascii_case(client))
        .map(|p| p.client_id.clone())
}

/// What the Exchange sessions show the technician (from `ui`).
pub struct ExchangeDisplay {
    /// The Exchange sign-in's device code.
    pub sign_in: Arc<dyn SignInObserver>,
    /// The module's own output, per tenant.
    pub output: PassthroughFor,
}

/// The Exchange sessions for this run: PowerShell located (`HAL_ONBOARD_PWSH`, else `pwsh`),
/// signing in per `how.mode`. `ual retry` uses it, and `tenant add` hands it to the wizard as
/// `ExchangeStep::new(factory)`. With token sign-in, tokens come from
/// `HAL_ONBOARD_EXCHANGE_TOKEN` when set, else from the technician's own sign-in (the refresh
/// token kept in `secrets()`, asked for only then, else a device code).
pub fn exchange_factory(
    env: &EnvOverrides,
    how: &ExchangeSignIn,
    http: reqwest::Client,
    secrets: impl FnOnce() -> Arc<dyn SecretStore>,
    display: ExchangeDisplay,
) -> Result<Arc<PwshOpsFactory>, ExchangeError> {
    let auth = match how.mode {
        ExchangeAuthMode::Device => AuthChoice::Device,
        ExchangeAuthMode::Token => AuthChoice::Token(match &env.exchange_token {
            Some(t) => Arc::new(EnvTokens::new(t.expose())),
            None if how.same_client.is_some() => {
                let same = how.same_client.clone().expect("checked");
                let login = env
                    .login_url
                    .as_ref()
                    .map(|_| env.endpoints(how.cloud.unwrap_or_default()).login);
                let env = env.clone();
                let client_id = same.client_id.clone();
                Arc::new(SameClientSignIn {
                    graph: same.graph,
                    client_id: same.client_id,
                    consent_url: Box::new(move |rec: &TenantRecord| {
                        crate::partner::consent::admin_consent_url(
                            &env.endpoints(rec.cloud),
                            rec.tenant_id,
                            &client_id,
                        )
                    }),
                    inner: UserSignIn::new(
                        http,
                        login,
                        secrets(),
                        display.sign_in,
                        match how.method {
                            AuthMethod::AzureCli => AuthMethod::DeviceCode,
                            m => m,
                        },
                    ),
                })
            }
            None => Arc::new(UserSignIn::new(
                http,
                env.login_url
                    .as_ref()
                    .map(|_| env.endpoints(how.cloud.unwrap_or_default()).login),
                secrets(),
                display.sign_in,
                match how.method {
                    AuthMethod::AzureCli => AuthMethod::DeviceCode,
                    m => m,
                },
            )),
        }),
    };
    exchange_factory_with(env, how.pwsh_timeout, auth, display.output)
}

/// Exchange sessions that sign in as `auth` says (partner mode: the partner sign-in's customer
/// credential), PowerShell located (`HAL_ONBOARD_PWSH`, else `pwsh`) with its time limit
/// (`--pwsh-timeout`, else HAL_ONBOARD_PWSH_TIMEOUT, else the bridge's default).
pub fn exchange_factory_with(
    env: &EnvOverrides,
    pwsh_timeout: Option<Duration>,
    auth: AuthChoice,
    output: PassthroughFor,
) -> Result<Arc<PwshOpsFactory>, ExchangeError> {
    let exe = bridge::locate(env.pwsh.as_deref())?;
    let timeout = pwsh_timeout
        .or(env.pwsh_timeout)
        .unwrap_or(bridge::DEFAULT_TIMEOUT);
    Ok(Arc::new(PwshOpsFactory::new(
        Pwsh::new(exe, timeout),
        auth,
        output,
    )))
}

/// A Global Administrator's sign-in is kept only while its tenant has work pending (UAL
/// waiting, the portal not done, a step unfinished): once nothing is pending, and unless the
/// technician asked to keep it (`--keep-sign-in`, recorded in the tenant's record), its Graph
/// and Exchange refresh tokens are deleted. True when they were (or there were none).
pub fn forget_sign_in_if_done(
    secrets: &dyn SecretStore,
    rec: &TenantRecord,
) -> Result<bool, SecretError> {
    if rec.keep_sign_in
        || !TenantStatus::of(rec, time::OffsetDateTime::now_utc())
            .pending
            .is_empty()
    {
        return Ok(false);
    }
    secrets.delete(&account::graph_refresh_token(rec.tenant_id))?;
    secrets.delete(&account::exchange_refresh_token(rec.tenant_id))?;
    Ok(true)
}

#[cfg(test)]
mod forget_tests {
    use super::*;
    use crate::secrets::MemoryStore;
    use crate::store::{StepStatus, UalState};

    fn finished() -> TenantRecord {
        let mut rec = TenantRecord::new(
            uuid::Uuid::new_v4(),
            "contoso.onmicrosoft.com",
            "Contoso",
            Cloud::Global,
        );
        for s in [
            &mut rec.steps.exchange,
            &mut rec.steps.app,
            &mut rec.steps.secret,
            &mut rec.steps.consent,
            &mut rec.steps.verify,
            &mut rec.steps.portal,
        ] {
            s.status = StepStatus::Done;
        }
        rec.ual.state = UalState::Enabled;
        rec.app = Some(crate::store::AppRecord {
            object_id: "o".into(),
            app_id: "a".into(),
            display_name: "hal-siem-log-collector".into(),
            service_principal_id: Some("sp".into()),
        });
        let now = time::OffsetDateTime::now_utc();
        rec.secret = Some(crate::store::SecretRecord {
            key_id: "k".into(),
            hint: "abc".into(),
            created_at: now,
            expires_at: now + time::Duration::days(700),
        });
        rec.portal.state = crate::store::PortalState::Submitted;
        rec.portal.secret_key_id = Some("k".into());
        assert!(TenantStatus::of(&rec, now).pending.is_empty());
        rec
    }

    fn kept(store: &MemoryStore, rec: &TenantRecord) -> [bool; 2] {
        [
            store
                .get(&account::graph_refresh_token(rec.tenant_id))
                .unwrap()
                .is_some(),
            store
                .get(&account::exchange_refresh_token(rec.tenant_id))
                .unwrap()
                .is_some(),
        ]
    }

    fn signed_in(rec: &TenantRecord) -> MemoryStore {
        let store = MemoryStore::default();
        store
            .set(&account::graph_refresh_token(rec.tenant_id), "rt-g")
            .unwrap();
        store
            .set(&account::exchange_refresh_token(rec.tenant_id), "rt-x")
            .unwrap();
        store
    }

    #[test]
    fn pending_work_keeps_the_sign_in() {
        let mut rec = finished();
        rec.steps.exchange.status = StepStatus::Waiting;
        rec.ual.state = UalState::WaitingPropagation;
        let store = signed_in(&rec);
        assert!(!forget_sign_in_if_done(&store, &rec).unwrap());
        assert_eq!(kept(&store, &rec), [true, true]);
    }

    #[test]
    fn a_finished_tenant_forgets_it_unless_asked_to_keep_it() {
        let rec = finished();
        let store = signed_in(&rec);
        assert!(forget_sign_in_if_done(&store, &rec).unwrap());
        assert_eq!(kept(&store, &rec), [false, false]);

        let mut rec = finished();
        rec.keep_sign_in = true;
        let store = signed_in(&rec);
        assert!(!forget_sign_in_if_done(&store, &rec).unwrap());
        assert_eq!(kept(&store, &rec), [true, true]);
    }
}

#[cfg(test)]
mod one_sign_in_tests {
    use super::*;

    #[test]
    fn only_the_recorded_partner_app_signs_in_once() {
        let cfg = crate::partner::PartnerConfig {
            client_id: "0A0B0C0D-0000-4000-8000-000000000001".into(),
            tenant_id: uuid::Uuid::nil(),
            domain: "msp.onmicrosoft.com".into(),
            cloud: Cloud::Global,
        };
        let env = EnvOverrides::default();
        let app = "0a0b0c0d-0000-4000-8000-000000000001";
        assert_eq!(
            one_sign_in_client(&env, Some(app), Some(&cfg)).as_deref(),
            Some(cfg.client_id.as_str()),
            "the flag's case does not matter"
        );
        assert_eq!(one_sign_in_client(&env, Some("other"), Some(&cfg)), None);
        assert_eq!(
            one_sign_in_client(&env, None, Some(&cfg)),
            None,
            "the default client"
        );
        assert_eq!(
            one_sign_in_client(&env, Some(app), None),
            None,
            "no partner setup"
        );
        let env = EnvOverrides {
            client_id: Some(app.into()),
            ..EnvOverrides::default()
        };
        assert!(
            one_sign_in_client(&env, None, Some(&cfg)).is_some(),
            "HAL_ONBOARD_CLIENT_ID"
        );
        assert_eq!(
            one_sign_in_client(&env, Some("other"), Some(&cfg)),
            None,
            "the flag wins"
        );
    }
}
