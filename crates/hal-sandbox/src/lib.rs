//! The sandbox: a simulated Microsoft cloud (sign-in and Microsoft Graph, with Exchange and the
//! MSP portal mounted beside them) on 127.0.0.1, over real HTTPS with a CA made at start.
//!
//! It behaves like Microsoft's documented endpoints — error codes and bodies, `$filter`
//! syntax, throttling, replication delay — so the client code that passes here is the code
//! that works against Microsoft. See docs/sandbox.md.
//!
//! One port. The sign-in authority is the host itself, as `login.microsoftonline.com` is:
//! `https://127.0.0.1:{port}/{tenant}/…`, so that clients which take the first path segment for
//! the tenant (MSAL, azure-identity) work unchanged. Beside it, static prefixes that no tenant
//! name can take (a tenant is a GUID or a domain): `/graph/` (Graph service root),
//! `/exchange/`, `/portal/`.

pub mod catalog;
pub mod contract;
pub mod discovery;
pub mod exchange;
pub mod gdap;
pub mod graph;
pub mod login;
pub mod manage;
pub mod odata;
pub mod partner_center;
mod persist;
pub mod portal;
pub mod pwsh;
pub mod scenario;
pub mod state;
mod tls;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State as Ax};
use axum::middleware::{self, Next};
use axum::response::Response;
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

pub use scenario::{
    PortalScenario, Scenario, ScenarioError, TenantCloud, TenantScenario, UserScenario,
};
pub use state::{RequestLogEntry, State, TenantSnapshot, TokenProblem};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot make the sandbox's TLS certificates: {0}")]
    Tls(String),
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// Marks a response with the tenant it concerned (for the request log and `latencyMs`).
#[derive(Debug, Clone, Copy)]
pub struct TenantTag(pub Uuid);

pub(crate) fn tagged(mut r: Response, tenant: Uuid) -> Response {
    r.extensions_mut().insert(TenantTag(tenant));
    r
}

/// A running sandbox cloud. [`Sandbox::shutdown`] stops it gracefully; dropping it stops it
/// at once.
pub struct Sandbox {
    state: Arc<State>,
    portal: portal::PortalSim,
    exchange: Arc<exchange::ExchangeSim>,
    ca_path: PathBuf,
    handle: axum_server::Handle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base", &self.state.base.as_str())
            .field("ca_path", &self.ca_path)
            .finish()
    }
}

impl Sandbox {
    /// Makes a CA (written to `dir/ca.pem`), binds 127.0.0.1 on a free port and serves.
    pub async fn start(scenario: Scenario, dir: &Path) -> Result<Sandbox, SandboxError> {
        Self::serve(scenario, dir, false).await
    }

    /// Like [`Sandbox::start`], but the cloud lasts: what an earlier run kept in
    /// `dir/cloud.json` (its scenario, tenants, Exchange, portal and signing key) is served
    /// again, and every request that may change something is saved there. `scenario` is used
    /// only when `dir` holds nothing yet.
    pub async fn start_kept(scenario: Scenario, dir: &Path) -> Result<Sandbox, SandboxError> {
        Self::serve(scenario, dir, true).await
    }

    /// Whether `dir` holds a cloud kept by [`Sandbox::start_kept`].
    pub fn is_kept(dir: &Path) -> bool {
        dir.join(persist::FILE).exists()
    }

    async fn serve(scenario: Scenario, dir: &Path, keep: bool) -> Result<Sandbox, SandboxError> {
        let saved = if keep {
            persist::load(dir).map_err(|source| SandboxError::Write {
                path: dir.join(persist::FILE).display().to_string(),
                source,
            })?
        } else {
            None
        };
        let scenario = match &saved {
            Some(s) => s.scenario.clone(),
            None => scenario,
        };
        scenario.validate()?;
        crate::contract::install_crypto_provider();
        let pki = tls::make().map_err(SandboxError::Tls)?;
        let ca_path = dir.join("ca.pem");
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&ca_path, &pki.ca_pem))
            .map_err(|source| SandboxError::Write {
                path: ca_path.display().to_string(),
                source,
            })?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(SandboxError::Bind)?;
        listener.set_nonblocking(true).map_err(SandboxError::Bind)?;
        let port = listener.local_addr().map_err(SandboxError::Bind)?.port();
        let base = Url::parse(&format!("https://127.0.0.1:{port}/")).expect("base URL");
        let signer = saved
            .as_ref()
            .and_then(|s| persist::decode_key(&s.key))
            .map(|k| token::Signer::from_key(&k))
            .unwrap_or_else(token::Signer::random);
        let state = Arc::new(State::new(&scenario, signer, base));

        let portal = portal::PortalSim::new(&scenario.portal);
        let exchange = Arc::new(exchange::ExchangeSim::new(
            state.signer.clone(),
            state
                .lock()
                .tenants
                .iter()
                .map(|t| (t.scenario.id, t.scenario.exchange.clone()))
                .collect::<Vec<_>>(),
        ));
        // `-Organization` is checked against each tenant's initial `*.onmicrosoft.com` domain.
        for t in &scenario.tenants {
            if let Some(d) = t
                .domains
                .iter()
                .find(|d| d.to_ascii_lowercase().ends_with(".onmicrosoft.com"))
            {
                exchange.set_initial_domain(t.id, d);
            }
        }
        let mut app = router(state.clone(), portal.clone(), exchange.clone());
        // After a restore, so that a kept cloud gets its partner side (and Partner Center's
        // principal) back too, with the consents it had made.
        let install_partner = |kept: Vec<gdap::KeptConsent>| {
            if let Some(p) = &scenario.partner {
                let mut inner = state.lock();
                gdap::install(&mut inner, p, state.signer.clock().now_unix());
                if let Some(partner) = inner.partner.as_mut() {
                    partner.effective = kept;
                }
            }
        };
        if keep {
            let keeper = Arc::new(Keeper {
                dir: dir.to_path_buf(),
                scenario: scenario.clone(),
                state: state.clone(),
                portal: portal.clone(),
                exchange: exchange.clone(),
            });
            let mut kept = vec![];
            if let Some(mut saved) = saved {
                kept = std::mem::take(&mut saved.partner_consents);
                keeper.restore(saved);
            }
            install_partner(kept);
            keeper.save().map_err(|source| SandboxError::Write {
                path: dir.join(persist::FILE).display().to_string(),
                source,
            })?;
            app = app.layer(middleware::from_fn(move |req: Request, next: Next| {
                let keeper = keeper.clone();
                async move {
                    // The admin consent page changes the directory on a GET.
                    let changes = req.method() != axum::http::Method::GET
                        || req.uri().path().ends_with("/adminconsent");
                    let resp = next.run(req).await;
                    if changes && let Err(e) = keeper.save() {
                        eprintln!("sandbox: cannot save the cloud: {e}");
                    }
                    resp
                }
            }));
        } else {
            install_partner(vec![]);
        }
        let handle = axum_server::Handle::new();
        let config = axum_server::tls_rustls::RustlsConfig::from_config(pki.server);
        let server = axum_server::from_tcp_rustls(listener, config).handle(handle.clone());
        let task = tokio::spawn(server.serve(app.into_make_service()));
        handle.listening().await;
        Ok(Sandbox {
            state,
            portal,
            exchange,
            ca_path,
            handle,
            task: Some(task),
        })
    }

    /// The sign-in authority host (`HAL_ONBOARD_LOGIN_URL`), `https://127.0.0.1:{port}/`;
    /// clients append `{tenant}/oauth2/v2.0/token`, and `{tenant}` alone is an authority.
    pub fn login_url(&self) -> Url {
        self.state.base.clone()
    }

    /// The Graph service root (`HAL_ONBOARD_GRAPH_URL`); clients append `v1.0/...`.
    pub fn graph_url(&self) -> Url {
        self.state.url("graph")
    }

    /// The Office 365 Management Activity API root (`HAL_ONBOARD_MANAGE_URL`); clients append
    /// `api/v1.0/{tenant}/activity/feed/...`.
    pub fn manage_url(&self) -> Url {
        self.state.url("manage")
    }

    /// Base of the Exchange simulator's routes.
    pub fn exchange_url(&self) -> Url {
        self.state.url("exchange")
    }

    /// Base of the MSP portal simulator's routes (`HAL_PORTAL_URL`).
    pub fn portal_url(&self) -> Url {
        self.state.url("portal")
    }

    /// Partner Center's API root (`HAL_ONBOARD_PARTNER_CENTER_URL`); clients
    /// append `v1/customers/{customer}/applicationconsents`.
    pub fn partner_center_url(&self) -> Url {
        self.state.url("partnercenter")
    }

    /// The CA certificate (`HAL_ONBOARD_CA_CERT`).
    pub fn ca_path(&self) -> PathBuf {
        self.ca_path.clone()
    }

    /// Exactly the variables a user would export to point hal-onboard here.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HAL_ONBOARD_LOGIN_URL".into(), self.login_url().to_string()),
            ("HAL_ONBOARD_GRAPH_URL".into(), self.graph_url().to_string()),
            (
                "HAL_ONBOARD_MANAGE_URL".into(),
                self.manage_url().to_string(),
            ),
            (
                "HAL_ONBOARD_CA_CERT".into(),
                self.ca_path.display().to_string(),
            ),
            ("HAL_PORTAL_URL".into(), self.portal_url().to_string()),
            ("HAL_PORTAL_TOKEN".into(), self.portal.token()),
            (
                "HAL_ONBOARD_PARTNER_CENTER_URL".into(),
                self.partner_center_url().to_string(),
            ),
        ]
    }

    /// Moves the sandbox's clock forward: tokens, refresh tokens, device and authorization
    /// codes expire as if `by` had passed (the wall clock is not touched).
    pub fn advance(&self, by: Duration) {
        self.state.signer.clock().advance(by);
    }

    /// The Exchange Online simulator: each tenant's organization state and call counters.
    pub fn exchange(&self) -> &exchange::ExchangeSim {
        &self.exchange
    }

    /// The MSP portal simulator: what it received, and knobs to make it fail.
    pub fn portal(&self) -> &portal::PortalSim {
        &self.portal
    }

    pub fn signer(&self) -> &token::Signer {
        &self.state.signer
    }

    /// The shared state, for the Exchange and portal simulators.
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// One tenant's directory as it is now. Panics if the tenant is not in the scenario.
    pub fn snapshot(&self, tenant: Uuid) -> TenantSnapshot {
        self.state
            .lock()
            .tenant(tenant)
            .unwrap_or_else(|| panic!("tenant {tenant} is not in the sandbox scenario"))
            .snapshot()
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.state.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().requests.clear();
    }

    /// The tenants as the scenario set them up (for showing a `--sandbox` user where they are).
    pub fn tenants(&self) -> Vec<TenantScenario> {
        self.state
            .lock()
            .tenants
            .iter()
            .map(|t| t.scenario.clone())
            .collect()
    }

    /// Runs `f` on one tenant's live state (to change a knob mid-test, or plant an object).
    /// Panics if the tenant is not in the sandbox.
    pub fn with_tenant<R>(&self, tenant: Uuid, f: impl FnOnce(&mut state::TenantState) -> R) -> R {
        let mut inner = self.state.lock();
        let t = inner
            .tenant_mut(tenant)
            .unwrap_or_else(|| panic!("tenant {tenant} is not in the sandbox scenario"));
        f(t)
    }

    /// An access token for the tenant's signed-in technician, as a sign-in with `scope` would
    /// give (`scope` e.g. `https://graph.microsoft.com/.default`) — a shortcut for tests and
    /// benchmarks that are not about signing in. None for an unknown tenant or resource.
    pub fn user_access_token(&self, tenant: Uuid, scope: &str) -> Option<String> {
        let inner = self.state.lock();
        inner.tenant(tenant)?;
        let v = login::user_tokens(
            &self.state,
            &inner,
            tenant,
            catalog::GRAPH_CLI_CLIENT_ID,
            scope,
            &login::SignInExtras::default(),
        )
        .ok()?;
        v["access_token"].as_str().map(str::to_string)
    }

    /// Approves a pending device code sign-in by its user code; false if unknown.
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        login::settle_device_code(&mut self.state.lock(), user_code, true)
    }

    /// Declines a pending device code sign-in by its user code; false if unknown.
    pub fn decline_device_code(&self, user_code: &str) -> bool {
        login::settle_device_code(&mut self.state.lock(), user_code, false)
    }

    /// Stops serving (open connections get a second to finish).
    pub async fn shutdown(mut self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Saves a lasting sandbox ([`Sandbox::start_kept`]).
struct Keeper {
    dir: PathBuf,
    scenario: Scenario,
    state: Arc<State>,
    portal: portal::PortalSim,
    exchange: Arc<exchange::ExchangeSim>,
}

impl Keeper {
    fn restore(&self, saved: persist::Saved) {
        {
            let mut inner = self.state.lock();
            for t in saved.tenants {
                if let Some(ts) = inner.tenant_mut(t.scenario.id) {
                    t.restore(ts);
                }
            }
        }
        self.exchange
            .restore(saved.exchange, saved.module_installed);
        self.portal.restore(saved.portal);
    }

    fn save(&self) -> std::io::Result<()> {
        let tenants = self
            .state
            .lock()
            .tenants
            .iter()
            .map(persist::SavedTenant::of)
            .collect();
        let (exchange, module_installed) = self.exchange.saved();
        let saved = persist::Saved {
            version: 1,
            scenario: self.scenario.clone(),
            key: persist::encode_key(self.state.signer.key()),
            tenants,
            exchange,
            module_installed,
            portal: self.portal.saved(),
            partner_consents: self
                .state
                .lock()
                .partner
                .as_ref()
                .map(|p| p.effective.clone())
                .unwrap_or_default(),
        };
        // One writer at a time: requests run concurrently.
        static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        persist::store(&self.dir, &saved)
    }
}

/// All routes on one port: sign-in at the root (`/{tenant}/…`), the others under prefixes.
pub fn router(
    state: Arc<State>,
    portal: portal::PortalSim,
    exchange: Arc<exchange::ExchangeSim>,
) -> Router {
    let app: Router<Arc<State>> = Router::new()
        .merge(login::router())
        .merge(discovery::router())
        .nest("/graph", graph::router())
        .nest("/manage", manage::router())
        .nest("/partnercenter", partner_center::router());
    // The Exchange simulator: self-contained (its own state, the sandbox's signer).
    let app = app.nest_service("/exchange", exchange::router(exchange));
    // ------------------------------------------------------------------------------------
    let app = app.nest("/portal", portal::router(portal));
    app.layer(middleware::from_fn_with_state(state.clone(), log_and_delay))
        .with_state(state)
}

/// Logs every request and adds the tenant's `latencyMs`.
async fn log_and_delay(Ax(state): Ax<Arc<State>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    let tenant = resp.extensions().get::<TenantTag>().map(|t| t.0);
    let latency = {
        let mut inner = state.lock();
        inner.requests.push(RequestLogEntry {
            method,
            path,
            status: resp.status().as_u16(),
            tenant,
            at: OffsetDateTime::now_utc(),
        });
        tenant
            .and_then(|t| inner.tenant(t).map(|t| t.scenario.latency_ms))
            .unwrap_or(0)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    resp
}
