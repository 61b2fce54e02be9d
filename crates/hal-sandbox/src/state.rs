//! The sandbox's memory: every tenant's directory objects, pending sign-ins, and the request
//! log, behind one mutex. Handlers lock, change, unlock; nothing awaits while holding it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

use super::catalog;
use super::scenario::{Scenario, TenantScenario};
use super::token::Signer;

/// Shared by every route (and, later, the Exchange and portal simulators).
#[derive(Debug)]
pub struct State {
    pub signer: Signer,
    /// `https://127.0.0.1:{port}/`.
    pub base: Url,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
pub struct Inner {
    pub tenants: Vec<TenantState>,
    pub device_codes: HashMap<String, DeviceCode>,
    pub auth_codes: HashMap<String, AuthCode>,
    pub requests: Vec<RequestLogEntry>,
    /// The MSP's GDAP side, when the scenario has one (gdap.rs).
    pub partner: Option<super::gdap::Partner>,
}

impl State {
    pub fn new(scenario: &Scenario, signer: Signer, base: Url) -> State {
        let mut tenants: Vec<TenantState> = scenario
            .tenants
            .iter()
            .cloned()
            .map(TenantState::new)
            .collect();
        // A technician signed into the wrong tenant needs that tenant to exist somewhere.
        for t in &scenario.tenants {
            if let Some(home) = t.signed_in_user.home_tenant
                && !tenants.iter().any(|x| x.scenario.id == home)
            {
                let short = home.simple().to_string()[..6].to_string();
                let mut ts = TenantScenario {
                    id: home,
                    display_name: format!("MSP home tenant ({short})"),
                    domains: vec![format!("msp{short}.onmicrosoft.com")],
                    signed_in_user: t.signed_in_user.clone(),
                    licenses: vec![],
                    ..TenantScenario::default()
                };
                ts.signed_in_user.home_tenant = None;
                tenants.push(TenantState::new(ts));
            }
        }
        // Microsoft Graph answers to the sandbox's own Graph URL too, so that a client which
        // derives its token scope from the Graph root it calls (`{graph root}/.default`) works.
        let graph_url = base.join("graph/").expect("joins");
        for t in &mut tenants {
            if let Some(sp) = t
                .service_principals
                .iter_mut()
                .find(|s| s.app_id == catalog::GRAPH_APP_ID)
            {
                let with_slash = graph_url.to_string();
                let without = with_slash.trim_end_matches('/').to_string();
                sp.service_principal_names.extend([without, with_slash]);
            }
        }
        State {
            signer,
            base,
            inner: Mutex::new(Inner {
                tenants,
                ..Inner::default()
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks an `Authorization: Bearer ...` header value for a resource (by its first-party
    /// app id, e.g. [`catalog::EXCHANGE_APP_ID`]): signature, expiry, audience, known tenant.
    /// Returns the token's tenant and claims. Graph uses it; so can the Exchange simulator.
    pub fn check_bearer(
        &self,
        authorization: Option<&str>,
        resource_app_id: &str,
    ) -> Result<(Uuid, super::token::Claims), TokenProblem> {
        let raw = authorization.unwrap_or("");
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            return Err(TokenProblem::Missing);
        }
        if token.split('.').count() != 3 {
            return Err(TokenProblem::Malformed);
        }
        let claims = self
            .signer
            .verify_signature(token)
            .ok_or(TokenProblem::BadSignature)?;
        if claims.exp <= self.signer.clock().now_unix() {
            return Err(TokenProblem::Expired);
        }
        if self.resource_app_id(&claims.aud) != Some(resource_app_id) {
            return Err(TokenProblem::WrongAudience);
        }
        let tenant = Uuid::parse_str(&claims.tid).map_err(|_| TokenProblem::UnknownTenant)?;
        if self.lock().tenant(tenant).is_none() {
            return Err(TokenProblem::UnknownTenant);
        }
        Ok((tenant, claims))
    }

    /// The first-party application a resource identifier names (`https://graph.microsoft.com`,
    /// an app ID, …), including the sandbox's own Graph root for Microsoft Graph.
    pub fn resource_app_id(&self, resource: &str) -> Option<&'static str> {
        catalog::resource_app_id(resource).or_else(|| {
            let graph = self.url("graph");
            let trimmed = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
            (trimmed(resource) == trimmed(graph.as_str())).then_some(catalog::GRAPH_APP_ID)
        })
    }

    /// `https://127.0.0.1:{port}/{prefix}/`.
    pub fn url(&self, prefix: &str) -> Url {
        self.base.join(&format!("{prefix}/")).expect("prefix joins")
    }
}

/// Why [`State::check_bearer`] refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Malformed,
    BadSignature,
    Expired,
    WrongAudience,
    UnknownTenant,
}

impl Inner {
    pub fn tenant(&self, id: Uuid) -> Option<&TenantState> {
        self.tenants.iter().find(|t| t.scenario.id == id)
    }

    pub fn tenant_mut(&mut self, id: Uuid) -> Option<&mut TenantState> {
        self.tenants.iter_mut().find(|t| t.scenario.id == id)
    }

    /// A tenant by GUID or any of its domains; `organizations`/`common` mean the first tenant.
    pub fn resolve_tenant(&self, name: &str) -> Option<Uuid> {
        let lower = name.to_ascii_lowercase();
        if lower == "organizations" || lower == "common" {
            return self.tenants.first().map(|t| t.scenario.id);
        }
        if let Ok(id) = Uuid::parse_str(name) {
            return self.tenant(id).map(|t| t.scenario.id);
        }
        self.tenants
            .iter()
            .find(|t| {
                t.scenario
                    .domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(name))
            })
            .map(|t| t.scenario.id)
    }
}

/// One tenant's directory.
#[derive(Debug)]
pub struct TenantState {
    pub scenario: TenantScenario,
    pub applications: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    pub assignments: Vec<AppRoleAssignment>,
    /// keyId → the secret text and how many token requests it still fails (replication).
    pub secrets: HashMap<Uuid, SecretState>,
    /// Object id → how many more references answer "not found" (replication delay).
    pub replicating: HashMap<Uuid, u32>,
    /// Graph requests seen, for `throttle_every`.
    pub graph_requests: u64,
    /// `$batch` envelopes seen, for `throttle_batch_every`.
    pub batch_requests: u64,
    /// Resource app ids whose principal was created here → token requests still refused.
    pub resource_delay: HashMap<String, u32>,
    pub created: String,
    /// Application object id → its owners (`/applications/{id}/owners`). Entra makes the
    /// user who creates an app with a delegated token its owner.
    pub app_owners: HashMap<Uuid, Vec<Owner>>,
    /// Delegated permission grants (`/oauth2PermissionGrants`).
    pub oauth2_grants: Vec<OAuth2Grant>,
}

/// Graph's `oAuth2PermissionGrant`: delegated permissions of a client on one resource, for
/// every user (`AllPrincipals`) or one (`Principal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Grant {
    pub id: String,
    pub client_id: Uuid,
    pub consent_type: String,
    pub principal_id: Option<Uuid>,
    pub resource_id: Uuid,
    pub scope: String,
}

/// An owner of an application, as `directoryObject` (a user here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Owner {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SecretState {
    pub text: String,
    pub failures_left: u32,
}

impl TenantState {
    pub fn new(scenario: TenantScenario) -> TenantState {
        let mut t = TenantState {
            applications: vec![],
            service_principals: vec![],
            assignments: vec![],
            secrets: HashMap::new(),
            replicating: HashMap::new(),
            graph_requests: 0,
            batch_requests: 0,
            resource_delay: HashMap::new(),
            created: iso(OffsetDateTime::now_utc() - time::Duration::days(900)),
            app_owners: HashMap::new(),
            oauth2_grants: vec![],
            scenario,
        };
        t.service_principals.push(first_party_sp(
            catalog::GRAPH_APP_ID,
            "Microsoft Graph",
            catalog::GRAPH_APP_ROLES,
            &[
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/",
                catalog::GRAPH_APP_ID,
            ],
            &t.created,
        ));
        t.service_principals.push(first_party_sp(
            catalog::EXCHANGE_APP_ID,
            "Office 365 Exchange Online",
            &[],
            &["https://outlook.office365.com", catalog::EXCHANGE_APP_ID],
            &t.created,
        ));
        t.service_principals.push(first_party_sp(
            catalog::ARM_APP_ID,
            "Windows Azure Service Management API",
            &[],
            &[
                "https://management.core.windows.net/",
                "https://management.azure.com/",
                catalog::ARM_APP_ID,
            ],
            &t.created,
        ));
        if !t.scenario.o365_management_sp_missing {
            t.service_principals.push(o365_management_sp(&t.created));
        }
        t
    }

    pub fn upn(&self) -> String {
        let u = &self.scenario.signed_in_user;
        if u.upn.is_empty() {
            format!("admin@{}", self.scenario.default_domain())
        } else {
            u.upn.clone()
        }
    }

    /// Directory role template ids of the signed-in user.
    pub fn user_role_ids(&self) -> Vec<String> {
        self.scenario
            .signed_in_user
            .roles
            .iter()
            .filter_map(|r| catalog::role_template_id(r))
            .map(str::to_string)
            .collect()
    }

    /// Counts one reference to an object; true when it is still "not replicated".
    pub fn still_replicating(&mut self, id: Uuid) -> bool {
        match self.replicating.get_mut(&id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub fn has_plan(&self, plan: &str) -> bool {
        self.scenario.licenses.iter().any(|sku| {
            catalog::SKUS
                .iter()
                .find(|(p, _, _)| p.eq_ignore_ascii_case(sku))
                .is_some_and(|(_, _, plans)| plans.contains(&plan))
        })
    }
}

pub fn o365_management_sp(created: &str) -> ServicePrincipal {
    first_party_sp(
        catalog::O365_MANAGEMENT_APP_ID,
        "Office 365 Management APIs",
        catalog::O365_MANAGEMENT_APP_ROLES,
        &["https://manage.office.com", catalog::O365_MANAGEMENT_APP_ID],
        created,
    )
}

/// Microsoft Partner Center's principal (no app roles; `user_impersonation` delegated).
pub fn partner_center_sp(created: &str) -> ServicePrincipal {
    first_party_sp(
        catalog::PARTNER_CENTER_APP_ID,
        "Microsoft Partner Center",
        &[],
        &[
            "https://api.partnercenter.microsoft.com",
            catalog::PARTNER_CENTER_APP_ID,
        ],
        created,
    )
}

fn first_party_sp(
    app_id: &str,
    name: &str,
    roles: &[(&str, &str, &str)],
    names: &[&str],
    created: &str,
) -> ServicePrincipal {
    ServicePrincipal {
        id: Uuid::new_v4(),
        app_id: app_id.to_string(),
        display_name: name.to_string(),
        app_display_name: name.to_string(),
        service_principal_type: "Application".into(),
        account_enabled: true,
        app_owner_organization_id: Some("f8cdef31-a31e-4b4a-93e4-5f571e91255a".into()),
        app_roles: roles
            .iter()
            .map(|(value, id, display)| AppRole {
                allowed_member_types: vec!["Application".into()],
                description: format!(
                    "Allows the app to {} without a signed-in user.",
                    display.to_lowercase()
                ),
                display_name: display.to_string(),
                id: id.to_string(),
                is_enabled: true,
                origin: "Application".into(),
                value: value.to_string(),
            })
            .collect(),
        service_principal_names: names.iter().map(|s| s.to_string()).collect(),
        tags: vec![],
        created_date_time: created.to_string(),
    }
}

/// Graph's `application` (the subset an onboarding wizard touches).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub sign_in_audience: String,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub publisher_domain: String,
    pub created_date_time: String,
    pub deleted_date_time: Option<String>,
    pub required_resource_access: Vec<RequiredResourceAccess>,
    pub password_credentials: Vec<PasswordCredential>,
    pub key_credentials: Vec<Value>,
    /// Other writable properties (web, api, publicClient, info, ...) kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ResourceAccess {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Metadata only: the secret text is returned once by addPassword and never stored here.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub custom_key_identifier: Option<String>,
    pub display_name: Option<String>,
    pub end_date_time: String,
    pub hint: String,
    pub key_id: Uuid,
    pub secret_text: Option<String>,
    pub start_date_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub app_id: String,
    pub display_name: String,
    pub app_display_name: String,
    pub service_principal_type: String,
    pub account_enabled: bool,
    pub app_owner_organization_id: Option<String>,
    pub app_roles: Vec<AppRole>,
    pub service_principal_names: Vec<String>,
    pub tags: Vec<String>,
    pub created_date_time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub allowed_member_types: Vec<String>,
    pub description: String,
    pub display_name: String,
    pub id: String,
    pub is_enabled: bool,
    pub origin: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: String,
    pub app_role_id: Uuid,
    pub created_date_time: String,
    pub deleted_date_time: Option<String>,
    pub principal_display_name: String,
    pub principal_id: Uuid,
    pub principal_type: String,
    pub resource_display_name: String,
    pub resource_id: Uuid,
}

/// A device code sign-in in progress.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub tenant: Uuid,
    pub client_id: String,
    pub scope: String,
    pub user_code: String,
    /// By the sandbox clock (unix seconds).
    pub issued: i64,
    pub expires_in: u64,
    pub interval: u64,
    pub last_poll: Option<Instant>,
    pub polls: u32,
    pub approve_after: u32,
    pub outcome: DeviceOutcome,
    pub redeemed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOutcome {
    Pending,
    Approved,
    Declined,
}

/// An authorization code waiting to be redeemed (PKCE).
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub tenant: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub challenge: Option<String>,
    /// The authorization request's `nonce`, for the id token.
    pub nonce: Option<String>,
    /// By the sandbox clock (unix seconds).
    pub issued: i64,
}

/// One HTTP request the sandbox answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLogEntry {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub status: u16,
    pub tenant: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// What tests see of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    pub tenant: Uuid,
    pub applications: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    pub app_role_assignments: Vec<AppRoleAssignment>,
    /// Graph requests this tenant has seen (each `$batch` sub-request counts).
    pub graph_requests: u64,
    pub oauth2_grants: Vec<OAuth2Grant>,
}

impl TenantSnapshot {
    pub fn application_named(&self, name: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.display_name == name)
    }

    pub fn service_principal_for(&self, app_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .iter()
            .find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    }

    /// Values of the app roles granted to `principal` on the resource with `resource_app_id`.
    pub fn granted_roles(&self, principal: Uuid, resource_app_id: &str) -> Vec<String> {
        let Some(resource) = self.service_principal_for(resource_app_id) else {
            return vec![];
        };
        let mut v: Vec<String> = self
            .app_role_assignments
            .iter()
            .filter(|a| a.principal_id == principal && a.resource_id == resource.id)
            .filter_map(|a| {
                resource
                    .app_roles
                    .iter()
                    .find(|r| r.id == a.app_role_id.to_string())
                    .map(|r| r.value.clone())
            })
            .collect();
        v.sort();
        v
    }
}

impl TenantState {
    pub fn snapshot(&self) -> TenantSnapshot {
        TenantSnapshot {
            tenant: self.scenario.id,
            applications: self.applications.clone(),
            service_principals: self.service_principals.clone(),
            app_role_assignments: self.assignments.clone(),
            graph_requests: self.graph_requests,
            oauth2_grants: self.oauth2_grants.clone(),
        }
    }
}

/// `2026-11-25T00:40:00Z`, Graph's timestamp form.
pub fn iso(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .expect("timestamp formats")
}
