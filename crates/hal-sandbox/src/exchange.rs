//! The sandbox's Exchange Online: per-tenant organization state, reached through the stand-in
//! PowerShell ([`super::pwsh`]) over HTTPS.
//!
//! Routes, relative to where the sandbox mounts [`router`] (its `exchange_url`):
//! - `GET  /module`, `POST /module/install`: whether this "machine" has ExchangeOnlineManagement.
//! - `POST /{tenantId}/connect` with `Authorization: Bearer <token>`, or body `{"device":true}`
//!   (the sandbox signs the device-code user in at once and returns `{"accessToken":…}`).
//! - `POST /{tenantId}/cmdlet` with the Bearer token and `{"cmdlet":…,"parameters":{…}}`,
//!   answering `{"ok":true,"data":{…}}` or `{"ok":false,"error":{"message","category",
//!   "reason","errorId"}}` with Exchange Online's own error texts.
//!
//! Tokens are checked as Exchange Online would: signature ([`Signer::verify`]), audience = the
//! cloud's Exchange resource, `tid` = the tenant in the path; write cmdlets need the Exchange
//! Administrator or Global Administrator role in `wids`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

use super::token::{Claims, Signer};

use crate::contract::microsoft::{
    EXCHANGE_RESOURCE, EXO_CLIENT_ID, ROLE_COMPLIANCE_ADMIN, ROLE_EXCHANGE_ADMIN, ROLE_GLOBAL_ADMIN,
};

/// Per-tenant Exchange knobs in a scenario file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExchangeScenario {
    /// The organization starts dehydrated (Get-OrganizationConfig IsDehydrated = True).
    pub dehydrated: bool,
    /// After hydration, how many Set-AdminAuditLogConfig calls fail with the dehydration error
    /// before one succeeds (Microsoft's propagation delay).
    pub propagation_attempts: u32,
    /// Unified audit log ingestion is already on.
    pub ual_enabled: bool,
    /// The machine has no ExchangeOnlineManagement module until `Install-Module` runs. (The
    /// module is the machine's, not the tenant's: any tenant with this set makes it missing.)
    pub module_missing: bool,
    /// Exchange Online rejects every token for this tenant (Connect-ExchangeOnline fails).
    pub token_rejected: bool,
    /// The signed-in user has neither Exchange Administrator nor Global Administrator.
    pub missing_role: bool,
    /// The stand-in PowerShell never answers after connecting (for timeouts).
    pub hang: bool,
    /// The stand-in PowerShell writes a broken result line.
    pub garbage_stdout: bool,
    /// The ExchangeOnlineManagement version this machine has (default 3.7.1); one older than
    /// 3.1.0 is reported as too old, as the scripts' prelude does. Machine-wide, like
    /// `moduleMissing`.
    pub module_version: Option<String>,
    /// `Enable-OrganizationCustomization` hydrates the organization but answers an error, as
    /// reported in MicrosoftDocs/microsoft-365-docs#7403 (the first run "took some time to run
    /// and then threw an error"; a later run said it had already been completed).
    pub enable_customization_fails_but_hydrates: bool,
    /// A connection with `-DelegatedOrganization` to this organization silently acts on the
    /// token's home organization (the partner's, from the token's `idp`), as has been reported
    /// of `-AccessToken` with `-DelegatedOrganization`: every cmdlet of that session reads and
    /// changes the partner's organization.
    pub delegated_acts_on_partner: bool,
}

/// Calls seen, per tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeCounters {
    pub connects: u32,
    pub rejected: u32,
    pub org_config: u32,
    pub enable_customization: u32,
    pub set_ual: u32,
    /// Set-AdminAuditLogConfig calls refused with the dehydration error.
    pub set_ual_refused: u32,
    pub get_ual: u32,
}

/// One tenant's Exchange Online, as tests see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeSnapshot {
    pub scenario: ExchangeScenario,
    pub dehydrated: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub hydrated_at: Option<OffsetDateTime>,
    /// Set calls still to refuse after hydration.
    pub propagation_remaining: u32,
    pub ual_enabled: bool,
    pub counters: ExchangeCounters,
    /// The initial `*.onmicrosoft.com` domain, the only name (besides the tenant ID)
    /// `Connect-ExchangeOnline -Organization` accepts; `None` when the sandbox was not told
    /// (any `*.onmicrosoft.com` name is accepted then).
    pub initial_domain: Option<String>,
    /// Every `-Organization` value a token connection was accepted with, in order.
    pub organizations_connected: Vec<String>,
}

/// The simulated Exchange Online of every sandbox tenant.
pub struct ExchangeSim {
    signer: Signer,
    audience: String,
    tenants: Mutex<HashMap<Uuid, ExchangeSnapshot>>,
    module_installed: AtomicBool,
    module_version: Mutex<String>,
}

impl std::fmt::Debug for ExchangeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeSim")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The module version the sandbox machine reports once installed.
pub const SANDBOX_MODULE_VERSION: &str = "3.7.1";

impl ExchangeSim {
    /// A simulator for the global cloud's Exchange resource.
    pub fn new(
        signer: Signer,
        tenants: impl IntoIterator<Item = (Uuid, ExchangeScenario)>,
    ) -> Self {
        let sim = ExchangeSim {
            signer,
            audience: EXCHANGE_RESOURCE.to_string(),
            tenants: Mutex::new(HashMap::new()),
            module_installed: AtomicBool::new(true),
            module_version: Mutex::new(SANDBOX_MODULE_VERSION.to_string()),
        };
        for (id, s) in tenants {
            sim.add_tenant(id, s);
        }
        sim
    }

    /// Tokens must be for `resource` (another cloud's Exchange Online).
    pub fn for_audience(mut self, resource: &str) -> Self {
        self.audience = resource.to_string();
        self
    }

    pub fn add_tenant(&self, id: Uuid, scenario: ExchangeScenario) {
        if scenario.module_missing {
            self.module_installed.store(false, Ordering::SeqCst);
        }
        if let Some(v) = &scenario.module_version {
            *self.module_version.lock().unwrap() = v.clone();
        }
        self.tenants.lock().unwrap().insert(
            id,
            ExchangeSnapshot {
                dehydrated: scenario.dehydrated,
                hydrated_at: None,
                propagation_remaining: scenario.propagation_attempts,
                ual_enabled: scenario.ual_enabled,
                counters: ExchangeCounters::default(),
                initial_domain: None,
                organizations_connected: Vec::new(),
                scenario,
            },
        );
    }

    /// Tells the simulator a tenant's initial domain (from its verified domains), so
    /// `-Organization` is checked against it.
    pub fn set_initial_domain(&self, id: Uuid, domain: &str) {
        if let Some(t) = self.tenants.lock().unwrap().get_mut(&id) {
            t.initial_domain = Some(domain.to_string());
        }
    }

    pub fn snapshot(&self, id: Uuid) -> Option<ExchangeSnapshot> {
        self.tenants.lock().unwrap().get(&id).cloned()
    }

    /// Every tenant's Exchange Online and the machine's module, to keep across runs.
    pub fn saved(&self) -> (HashMap<Uuid, ExchangeSnapshot>, bool) {
        (
            self.tenants.lock().unwrap().clone(),
            self.module_installed(),
        )
    }

    /// Puts back what [`ExchangeSim::saved`] returned.
    pub fn restore(&self, tenants: HashMap<Uuid, ExchangeSnapshot>, module_installed: bool) {
        *self.tenants.lock().unwrap() = tenants;
        self.module_installed
            .store(module_installed, Ordering::SeqCst);
    }

    pub fn module_installed(&self) -> bool {
        self.module_installed.load(Ordering::SeqCst)
    }

    fn check_token(
        &self,
        tenant: Uuid,
        headers: &HeaderMap,
    ) -> Result<Claims, (StatusCode, Json<Value>)> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let now = self.signer.clock().now_unix();
        let rejected = self
            .tenants
            .lock()
            .unwrap()
            .get(&tenant)
            .is_some_and(|t| t.scenario.token_rejected);
        let claims = self.signer.verify(token, now).filter(|c| {
            !rejected
                && c.aud.trim_end_matches('/') == self.audience.trim_end_matches('/')
                && c.tid == tenant.to_string()
        });
        match claims {
            Some(c) => Ok(c),
            None => {
                if let Some(t) = self.tenants.lock().unwrap().get_mut(&tenant) {
                    t.counters.rejected += 1;
                }
                // An expired token is refused as Exchange Online refuses one: 401, no cmdlet run.
                let expired = self
                    .signer
                    .verify_signature(token)
                    .is_some_and(|c| c.exp <= now);
                let message = if expired {
                    "UnAuthorized: the access token has expired. Sign in again to get a new one."
                } else {
                    "UnAuthorized: the access token is invalid, expired, or not issued for Exchange Online in this organization."
                };
                Err((
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"ok": false, "error": {
                        "message": message,
                        "category": "AuthenticationError",
                        "reason": "UnauthorizedAccessException",
                        "errorId": "UnAuthorized"
                    }})),
                ))
            }
        }
    }
}

fn unknown_tenant(tenant: Uuid) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"ok": false, "error": {
            "message": format!("The organization {tenant} was not found in Exchange Online."),
            "category": "ObjectNotFound",
            "reason": "ManagementObjectNotFoundException",
            "errorId": "ManagementObjectNotFoundException"
        }})),
    )
        .into_response()
}

/// Exchange Online's answer to a change on a dehydrated organization.
pub const DEHYDRATED_MESSAGE: &str = "The command you tried to run isn't currently allowed in your organization. To run this command, you first need to run the command: Enable-OrganizationCustomization.";
/// What `Enable-OrganizationCustomization` answers when it fails after hydrating (the knob
/// `enableCustomizationFailsButHydrates`): a transient server error.
pub const ENABLE_FAILED_MESSAGE: &str = "Active Directory operation failed on SANDBOX-DC. This error is not retriable. Additional information: the operation timed out.";
/// What `Enable-OrganizationCustomization` says on an organization already customized.
pub const ALREADY_CUSTOMIZED_MESSAGE: &str =
    "This operation is not required. Organization is already enabled for customization.";

fn cmdlet_error(message: &str, category: &str, reason: &str, id: &str) -> Value {
    json!({"ok": false, "error": {"message": message, "category": category, "reason": reason, "errorId": id}})
}

#[derive(Debug, Deserialize)]
struct CmdletCall {
    cmdlet: String,
    #[serde(default)]
    parameters: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ConnectCall {
    #[serde(default)]
    device: bool,
    /// `-Organization`, when the script passed one.
    #[serde(default)]
    organization: Option<String>,
    /// `-DelegatedOrganization`, when the script passed one.
    #[serde(default, rename = "delegatedOrganization")]
    delegated_organization: Option<String>,
}

/// The routes, state applied; mount at the sandbox's `exchange_url`.
pub fn router(sim: Arc<ExchangeSim>) -> axum::Router {
    axum::Router::new()
        .route("/module", get(module))
        .route("/module/install", post(install))
        .route("/{tenant}/connect", post(connect))
        .route("/{tenant}/cmdlet", post(cmdlet))
        .with_state(sim)
}

async fn module(State(sim): State<Arc<ExchangeSim>>) -> Json<Value> {
    let version = sim.module_version.lock().unwrap().clone();
    Json(json!({"installed": sim.module_installed(), "version": version}))
}

async fn install(State(sim): State<Arc<ExchangeSim>>) -> Json<Value> {
    sim.module_installed.store(true, Ordering::SeqCst);
    *sim.module_version.lock().unwrap() = SANDBOX_MODULE_VERSION.to_string();
    Json(json!({"installed": true, "version": SANDBOX_MODULE_VERSION}))
}

async fn connect(
    State(sim): State<Arc<ExchangeSim>>,
    UrlPath(tenant): UrlPath<Uuid>,
    headers: HeaderMap,
    body: Option<Json<ConnectCall>>,
) -> Response {
    // Tagged: the sandbox's request log names the tenant and applies its `latencyMs`.
    super::tagged(connect_inner(&sim, tenant, &headers, body), tenant)
}

fn connect_inner(
    sim: &ExchangeSim,
    tenant: Uuid,
    headers: &HeaderMap,
    body: Option<Json<ConnectCall>>,
) -> Response {
    let call = body.map(|b| b.0).unwrap_or_default();
    let Some(scenario) = sim.snapshot(tenant).map(|t| t.scenario) else {
        return unknown_tenant(tenant);
    };
    let mut answer = json!({"ok": true, "hang": scenario.hang, "garbage": scenario.garbage_stdout});
    if call.device {
        if scenario.token_rejected {
            return (
                StatusCode::UNAUTHORIZED,
                Json(cmdlet_error(
                    "AADSTS50020: the sandbox refused the device sign-in for this tenant.",
                    "AuthenticationError",
                    "MsalServiceException",
                    "AADSTS50020",
                )),
            )
                .into_response();
        }
        let now = sim.signer.clock().now_unix();
        let wids = if scenario.missing_role {
            vec![]
        } else {
            vec![ROLE_GLOBAL_ADMIN.to_string()]
        };
        let token = sim.signer.sign(&Claims {
            aud: sim.audience.clone(),
            iss: format!("https://sts.windows.net/{tenant}/"),
            tid: tenant.to_string(),
            oid: Uuid::new_v4().to_string(),
            appid: EXO_CLIENT_ID.into(),
            upn: Some("admin@sandbox.onmicrosoft.com".into()),
            scp: Some("Exchange.Manage".into()),
            wids,
            iat: now,
            nbf: now,
            exp: now + 3600,
            ..Default::default()
        });
        answer["accessToken"] = json!(token);
    } else if let Err(r) = sim.check_token(tenant, headers) {
        return r.into_response();
    }
    // `-Organization` and `-DelegatedOrganization` are documented as "the primary
    // .onmicrosoft.com domain or tenant ID of the (customer) organization"
    // (Connect-ExchangeOnline): a vanity domain is not accepted.
    if let Some(org) = call
        .organization
        .as_ref()
        .or(call.delegated_organization.as_ref())
    {
        let initial = sim.snapshot(tenant).and_then(|t| t.initial_domain);
        let org_l = org.trim().to_ascii_lowercase();
        let ok = org_l == tenant.to_string()
            || match &initial {
                Some(i) => org_l == i.to_ascii_lowercase(),
                None => org_l.ends_with(".onmicrosoft.com"),
            };
        if !ok {
            return (
                StatusCode::BAD_REQUEST,
                Json(cmdlet_error(
                    &format!(
                        "Cannot connect to the organization {org:?}: -Organization must be the organization's primary .onmicrosoft.com domain or its tenant ID."
                    ),
                    "InvalidArgument",
                    "ArgumentException",
                    "InvalidOrganization",
                )),
            )
                .into_response();
        }
        if let Some(t) = sim.tenants.lock().unwrap().get_mut(&tenant) {
            t.organizations_connected.push(org.clone());
        }
    }
    if let Some(t) = sim.tenants.lock().unwrap().get_mut(&tenant) {
        t.counters.connects += 1;
    }
    if call.delegated_organization.is_some() {
        answer["delegated"] = json!(true);
    }
    Json(answer).into_response()
}

/// The organization a token's cmdlets act on: the path's, unless the path's organization
/// has `delegatedActsOnPartner` and the token is a partner technician's (its `idp` names
/// another tenant Exchange knows).
fn acting_on(sim: &ExchangeSim, tenant: Uuid, claims: &Claims) -> Uuid {
    let tenants = sim.tenants.lock().unwrap();
    if !tenants
        .get(&tenant)
        .is_some_and(|t| t.scenario.delegated_acts_on_partner)
    {
        return tenant;
    }
    claims
        .idp
        .as_deref()
        .and_then(|i| i.trim_end_matches('/').rsplit('/').next())
        .and_then(|p| Uuid::parse_str(p).ok())
        .filter(|p| *p != tenant && tenants.contains_key(p))
        .unwrap_or(tenant)
}

async fn cmdlet(
    State(sim): State<Arc<ExchangeSim>>,
    UrlPath(tenant): UrlPath<Uuid>,
    headers: HeaderMap,
    Json(call): Json<CmdletCall>,
) -> Response {
    super::tagged(cmdlet_inner(&sim, tenant, &headers, call), tenant)
}

fn cmdlet_inner(
    sim: &ExchangeSim,
    tenant: Uuid,
    headers: &HeaderMap,
    call: CmdletCall,
) -> Response {
    if sim.snapshot(tenant).is_none() {
        return unknown_tenant(tenant);
    }
    let claims = match sim.check_token(tenant, headers) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let acting = acting_on(sim, tenant, &claims);
    let mut tenants = sim.tenants.lock().unwrap();
    let t = tenants.get_mut(&acting).expect("checked above");
    // Exchange Online maps Entra roles to role groups (learn.microsoft.com/exchange/
    // permissions-exo): Global and Exchange Administrator to Organization Management, Compliance
    // Administrator to Compliance Management. Both groups hold the Audit Logs role behind
    // Get-/Set-AdminAuditLogConfig ("Turn auditing on or off"); only Organization Management
    // holds the organization-wide configuration that Enable-OrganizationCustomization changes.
    let holds = |ids: &[&str]| {
        !t.scenario.missing_role && claims.wids.iter().any(|w| ids.contains(&w.as_str()))
    };
    let has_role = holds(&[ROLE_EXCHANGE_ADMIN, ROLE_GLOBAL_ADMIN]);
    let has_audit_logs = holds(&[
        ROLE_EXCHANGE_ADMIN,
        ROLE_GLOBAL_ADMIN,
        ROLE_COMPLIANCE_ADMIN,
    ]);
    let not_loaded = |name: &str| {
        cmdlet_error(
            &format!(
                "The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
            ),
            "ObjectNotFound",
            "CommandNotFoundException",
            "CommandNotFoundException",
        )
    };
    let dehydrated_error = || {
        cmdlet_error(
            DEHYDRATED_MESSAGE,
            "NotSpecified",
            "InvalidOperationInDehydratedContextException",
            "[Server=SANDBOX] [FailureCategory=Cmdlet-InvalidOperationInDehydratedContextException]",
        )
    };
    let name = call.cmdlet.as_str();
    let answer = match name.to_ascii_lowercase().as_str() {
        "get-organizationconfig" => {
            t.counters.org_config += 1;
            // Name and Identity: the organization's initial domain (its tenant ID when the
            // sandbox was not told the domain).
            let name = t
                .initial_domain
                .clone()
                .unwrap_or_else(|| acting.to_string());
            json!({"ok": true, "data": {"IsDehydrated": t.dehydrated, "Name": name, "Identity": name}})
        }
        "get-adminauditlogconfig" => {
            t.counters.get_ual += 1;
            json!({"ok": true, "data": {"UnifiedAuditLogIngestionEnabled": t.ual_enabled}})
        }
        "enable-organizationcustomization" => {
            t.counters.enable_customization += 1;
            if !has_role {
                not_loaded(name)
            } else if !t.dehydrated {
                cmdlet_error(
                    ALREADY_CUSTOMIZED_MESSAGE,
                    "InvalidOperation",
                    "InvalidOperationException",
                    "[Server=SANDBOX] [FailureCategory=Cmdlet-InvalidOperationException]",
                )
            } else {
                t.dehydrated = false;
                t.hydrated_at = Some(OffsetDateTime::now_utc());
                if t.scenario.enable_customization_fails_but_hydrates {
                    cmdlet_error(
                        ENABLE_FAILED_MESSAGE,
                        "NotSpecified",
                        "ADTransientException",
                        "[Server=SANDBOX] [FailureCategory=Cmdlet-ADTransientException]",
                    )
                } else {
                    json!({"ok": true})
                }
            }
        }
        "set-adminauditlogconfig" => {
            t.counters.set_ual += 1;
            if !has_audit_logs {
                not_loaded(name)
            } else if t.dehydrated {
                t.counters.set_ual_refused += 1;
                dehydrated_error()
            } else if t.hydrated_at.is_some() && t.propagation_remaining > 0 {
                t.propagation_remaining -= 1;
                t.counters.set_ual_refused += 1;
                dehydrated_error()
            } else {
                if let Some(v) = call
                    .parameters
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("UnifiedAuditLogIngestionEnabled"))
                    .and_then(|(_, v)| v.as_bool())
                {
                    t.ual_enabled = v;
                }
                json!({"ok": true})
            }
        }
        _ => not_loaded(name),
    };
    Json(answer).into_response()
}

/// A running HTTPS server for the router alone, with its own CA: for tests, before (or
/// without) the full sandbox. Stops when dropped.
pub struct Standalone {
    pub url: Url,
    pub ca_path: PathBuf,
    handle: axum_server::Handle,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Serves `router` over HTTPS on 127.0.0.1 with a CA made now, written to `dir/ca.pem`.
pub async fn serve_standalone(router: axum::Router, dir: &Path) -> std::io::Result<Standalone> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    crate::contract::install_crypto_provider();
    let io = |e: rcgen::Error| std::io::Error::other(e.to_string());
    let ca_key = KeyPair::generate().map_err(io)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hal-onboard sandbox Exchange CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(io)?;
    let leaf_key = KeyPair::generate().map_err(io)?;
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).map_err(io)?;
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(io)?;
    std::fs::create_dir_all(dir)?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem())?;
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        leaf.pem().into_bytes(),
        leaf_key.serialize_pem().into_bytes(),
    )
    .await?;
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config)
        .handle(handle.clone());
    tokio::spawn(server.serve(router.into_make_service()));
    let addr = handle
        .listening()
        .await
        .ok_or_else(|| std::io::Error::other("the server did not start"))?;
    let url =
        Url::parse(&format!("https://127.0.0.1:{}/", addr.port())).expect("a loopback URL parses");
    Ok(Standalone {
        url,
        ca_path,
        handle,
    })
}
