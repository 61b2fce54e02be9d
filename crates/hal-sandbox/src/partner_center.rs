//! Partner Center's application consent API (`{partner center}/v1/customers/{customer}/
//! applicationconsents`, "Get customer consent as a Control Panel Vendor"): a partner's
//! AdminAgent with a GDAP role that may consent (Global Administrator, Privileged Role
//! Administrator or Cloud Application Administrator) consents the partner's multi-tenant app
//! in a customer, which puts its service principal there.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State as Ax};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::catalog;
use super::state::{Inner, ServicePrincipal, State, iso};
use super::tagged;

pub fn router() -> Router<Arc<State>> {
    Router::new().route(
        "/v1/customers/{customer}/applicationconsents",
        post(create_consent),
    )
}

/// Partner Center's error body.
fn pc_error(status: StatusCode, code: u32, description: &str) -> Response {
    (
        status,
        [("ms-correlationid", Uuid::new_v4().to_string())],
        Json(json!({
            "code": code,
            "description": description,
            "data": [],
            "source": "PartnerFD",
        })),
    )
        .into_response()
}

/// The roles Partner Center accepts for the consent call (through GDAP in the customer).
const CONSENT_ROLES: &[&str] = &[
    catalog::GLOBAL_ADMINISTRATOR,
    catalog::PRIVILEGED_ROLE_ADMINISTRATOR,
    catalog::CLOUD_APPLICATION_ADMINISTRATOR,
];

async fn create_consent(
    Ax(state): Ax<Arc<State>>,
    Path(customer): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (tenant, claims) = match state.check_bearer(auth, catalog::PARTNER_CENTER_APP_ID) {
        Ok(c) => c,
        Err(_) => {
            return pc_error(
                StatusCode::UNAUTHORIZED,
                401,
                "The request is not authorized: an access token for the audience https://api.partnercenter.microsoft.com is required.",
            );
        }
    };
    let now = state.signer.clock().now_unix();
    let mut inner = state.lock();
    if let Some(p) = inner.partner.as_mut() {
        p.pc_requests += 1;
        if p.pc_requests <= p.scenario.partner_center_throttle {
            let mut r = pc_error(
                StatusCode::TOO_MANY_REQUESTS,
                429,
                "Rate limit is exceeded. Try again later.",
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            return r;
        }
    }
    let Some(partner) = inner.partner.as_ref() else {
        return pc_error(
            StatusCode::FORBIDDEN,
            403,
            "The signed-in tenant is not a Microsoft partner.",
        );
    };
    if tenant != partner.scenario.tenant {
        return pc_error(
            StatusCode::FORBIDDEN,
            403,
            "The signed-in tenant is not a Microsoft partner.",
        );
    }
    let user = Uuid::parse_str(&claims.oid).unwrap_or_default();
    if !partner.is_admin_agent(user) {
        return tagged(
            pc_error(
                StatusCode::FORBIDDEN,
                403,
                "Access is denied: the user must be a member of the partner's AdminAgents group.",
            ),
            tenant,
        );
    }
    let Ok(customer) = Uuid::parse_str(&customer) else {
        return pc_error(
            StatusCode::BAD_REQUEST,
            400,
            "The customer id must be the customer's tenant id.",
        );
    };
    let related = partner
        .scenario
        .relationships
        .iter()
        .any(|r| r.customer == customer && r.status == "active");
    if !related || inner.tenant(customer).is_none() {
        return tagged(
            pc_error(
                StatusCode::NOT_FOUND,
                600012,
                &format!(
                    "Customer {customer} was not found for this partner (no active delegated admin relationship)."
                ),
            ),
            tenant,
        );
    }
    let roles = partner.roles_in(user, customer, now);
    if !roles.iter().any(|r| CONSENT_ROLES.contains(&r.as_str())) {
        return tagged(
            pc_error(
                StatusCode::FORBIDDEN,
                403,
                "Access is denied: consenting needs Global Administrator, Privileged Role Administrator or Cloud Application Administrator in the customer through a delegated admin relationship.",
            ),
            tenant,
        );
    }
    let Some(req) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(valid_request)
    else {
        return tagged(
            pc_error(
                StatusCode::BAD_REQUEST,
                400,
                "The request body must have applicationId and applicationGrants [{enterpriseApplicationId, scope}].",
            ),
            tenant,
        );
    };
    let app_id = req["applicationId"].as_str().unwrap_or("").to_string();
    let Some((app_name, owner)) = multi_tenant_app(&inner, &app_id) else {
        return tagged(
            pc_error(
                StatusCode::BAD_REQUEST,
                400,
                &format!(
                    "Application {app_id} was not found or is not a multi-tenant application."
                ),
            ),
            tenant,
        );
    };
    if !consent_app(&mut inner, customer, &app_id, &app_name, owner, now) {
        return tagged(
            pc_error(
                StatusCode::CONFLICT,
                409,
                &format!(
                    "Permission entry already exists for application {app_id} in customer {customer}."
                ),
            ),
            tenant,
        );
    }
    if let Some(p) = inner.partner.as_mut() {
        p.consents.push((customer, req.clone()));
    }
    tagged((StatusCode::CREATED, Json(req)).into_response(), tenant)
}

/// A multi-tenant application registered in some sandbox tenant: its name and owner tenant.
pub(crate) fn multi_tenant_app(inner: &Inner, app_id: &str) -> Option<(String, Uuid)> {
    inner.tenants.iter().find_map(|t| {
        t.applications
            .iter()
            .find(|a| {
                a.app_id.to_string().eq_ignore_ascii_case(app_id)
                    && a.sign_in_audience != "AzureADMyOrg"
            })
            .map(|a| (a.display_name.clone(), t.scenario.id))
    })
}

/// Puts the app's service principal in `customer` (a consent), in effect after the
/// scenario's `consentDelaySeconds`, with the tenant's grants to the app's static permissions
/// (admin consent covers what the registration lists). False when it was there already.
pub(crate) fn consent_app(
    inner: &mut Inner,
    customer: Uuid,
    app_id: &str,
    app_name: &str,
    owner: Uuid,
    now: i64,
) -> bool {
    let added = add_service_principal(inner, customer, app_id, app_name, owner, now);
    super::login::grant_static(inner, customer, app_id);
    added
}

/// The app's service principal in `customer`, without grants (a consent prompt's consent
/// grants only what it asked for). False when it was there already.
pub(crate) fn add_service_principal(
    inner: &mut Inner,
    customer: Uuid,
    app_id: &str,
    app_name: &str,
    owner: Uuid,
    now: i64,
) -> bool {
    let Some(t) = inner.tenant_mut(customer) else {
        return false;
    };
    if t.service_principals
        .iter()
        .any(|s| s.app_id.eq_ignore_ascii_case(app_id))
    {
        return false;
    }
    t.service_principals.push(ServicePrincipal {
        id: Uuid::new_v4(),
        app_id: app_id.to_string(),
        display_name: app_name.to_string(),
        app_display_name: app_name.to_string(),
        service_principal_type: "Application".into(),
        account_enabled: true,
        app_owner_organization_id: Some(owner.to_string()),
        app_roles: vec![],
        service_principal_names: vec![app_id.to_string()],
        tags: vec![],
        created_date_time: iso(OffsetDateTime::now_utc()),
    });
    if let Some(p) = inner.partner.as_mut() {
        p.record_consent(customer, app_id, now);
    }
    true
}

fn valid_request(v: &Value) -> bool {
    let app = v["applicationId"]
        .as_str()
        .is_some_and(|s| Uuid::parse_str(s).is_ok());
    let grants = v["applicationGrants"].as_array().is_some_and(|g| {
        !g.is_empty()
            && g.iter().all(|x| {
                x["enterpriseApplicationId"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
                    && x["scope"].as_str().is_some_and(|s| !s.is_empty())
            })
    });
    app && grants
}
