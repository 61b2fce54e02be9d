//! The Office 365 Management Activity API, as far as onboarding reads it:
//! `GET {root}/api/v1.0/{tenant_id}/activity/feed/subscriptions/list` ("Office 365 Management
//! Activity API reference", learn.microsoft.com). Served under `/manage` (the
//! `HAL_ONBOARD_MANAGE_URL` a client is pointed at).
//!
//! Checked as Microsoft documents it: a signed, unexpired bearer token whose audience is the
//! tenant's own cloud's Management root (`https://manage-gcc.office.com` for a GCC tenant, not
//! the commercial `https://manage.office.com`), whose tenant is the one in the path (AF20010)
//! and whose roles hold `ActivityFeed.Read` (AF10001). Errors are `{"error": {"code",
//! "message"}}`; the list is a JSON array of `{contentType, status, webhook}` — empty for a
//! tenant that has started no subscription, as every tenant the sandbox starts.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State as Ax};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::catalog::O365_MANAGEMENT_APP_ID;
use super::scenario::TenantCloud;
use super::state::State;
use super::tagged;

pub fn router() -> Router<Arc<State>> {
    Router::new().route(
        "/api/v1.0/{tenant}/activity/feed/subscriptions/list",
        get(list_subscriptions),
    )
}

/// The Management root (and token audience) of each cloud, per the API's reference.
pub fn manage_root(cloud: TenantCloud) -> &'static str {
    match cloud {
        TenantCloud::Global => "https://manage.office.com",
        TenantCloud::Gcc => "https://manage-gcc.office.com",
        TenantCloud::Usgov => "https://manage.office365.us",
        TenantCloud::UsgovDod => "https://manage.protection.apps.mil",
        TenantCloud::China => "https://manage.office365.cn",
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn list_subscriptions(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (tid, claims) = match state.check_bearer(auth, O365_MANAGEMENT_APP_ID) {
        Ok(c) => c,
        Err(p) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "AF10000",
                &format!("Authentication failed: {p:?}."),
            );
        }
    };
    if !tenant.eq_ignore_ascii_case(&tid.to_string()) {
        return tagged(
            error(
                StatusCode::FORBIDDEN,
                "AF20010",
                &format!(
                    "The tenant ID passed in the URL ({tenant}) does not match the tenant ID passed in the access token ({tid})."
                ),
            ),
            tid,
        );
    }
    let cloud = state
        .lock()
        .tenant(tid)
        .map(|t| t.scenario.cloud)
        .unwrap_or_default();
    let want = manage_root(cloud);
    if !claims.aud.trim_end_matches('/').eq_ignore_ascii_case(want) {
        return tagged(
            error(
                StatusCode::UNAUTHORIZED,
                "AF10000",
                &format!(
                    "Authentication failed: the token's audience {} is not this tenant's Management API ({want}).",
                    claims.aud
                ),
            ),
            tid,
        );
    }
    if !claims.roles.iter().any(|r| r == "ActivityFeed.Read") {
        return tagged(
            error(
                StatusCode::FORBIDDEN,
                "AF10001",
                &format!(
                    "The permission set ({}) sent in the request did not include the expected permission ActivityFeed.Read.",
                    claims.roles.join(",")
                ),
            ),
            tid,
        );
    }
    tagged(Json(json!([])).into_response(), tid)
}
