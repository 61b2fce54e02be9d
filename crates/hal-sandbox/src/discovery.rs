//! How clients find the sign-in service: the OpenID configuration document
//! (`{authority host}/{tenant}/v2.0/.well-known/openid-configuration`), its signing keys and
//! Microsoft's instance discovery (`/common/discovery/instance`), shaped as Microsoft documents
//! them ("OpenID Connect on the Microsoft identity platform", learn.microsoft.com).
//!
//! The region and cloud fields (`tenant_region_scope`, `tenant_region_sub_scope`,
//! `cloud_instance_name`, `cloud_graph_host_name`, `msgraph_host`) come from the tenant's
//! `cloud` in the scenario, with the values Microsoft's documents show per cloud — the ones
//! tools use to tell commercial, GCC, GCC High, DoD and China tenants apart.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State as Ax};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::login::aad_error;
use super::scenario::TenantCloud;
use super::state::State;
use super::tagged;

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/discovery/instance", get(instance_discovery))
}

/// What a tenant's OpenID configuration says about the cloud it lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudMetadata {
    pub tenant_region_scope: &'static str,
    pub tenant_region_sub_scope: Option<&'static str>,
    pub cloud_instance_name: &'static str,
    pub cloud_graph_host_name: &'static str,
    pub msgraph_host: &'static str,
}

/// Microsoft's values per cloud: commercial tenants report their region (`NA` for the sandbox's),
/// GCC `NA`/`GCC`, GCC High `USGov`/`DODCON`, DoD `USGov`/`DOD`; the US Government clouds sign in
/// at `login.microsoftonline.us`, China at `login.partner.microsoftonline.cn`. Microsoft Graph
/// hosts as in Graph's "national cloud deployments" page; Azure AD Graph hosts as in its own.
/// China's region scope (`AS`) is the sandbox's assumption: Microsoft does not document it.
pub fn cloud_metadata(cloud: TenantCloud) -> CloudMetadata {
    let global = CloudMetadata {
        tenant_region_scope: "NA",
        tenant_region_sub_scope: None,
        cloud_instance_name: "microsoftonline.com",
        cloud_graph_host_name: "graph.windows.net",
        msgraph_host: "graph.microsoft.com",
    };
    match cloud {
        TenantCloud::Global => global,
        TenantCloud::Gcc => CloudMetadata {
            tenant_region_sub_scope: Some("GCC"),
            ..global
        },
        TenantCloud::Usgov => CloudMetadata {
            tenant_region_scope: "USGov",
            tenant_region_sub_scope: Some("DODCON"),
            cloud_instance_name: "microsoftonline.us",
            cloud_graph_host_name: "graph.windows.net",
            msgraph_host: "graph.microsoft.us",
        },
        TenantCloud::UsgovDod => CloudMetadata {
            tenant_region_scope: "USGov",
            tenant_region_sub_scope: Some("DOD"),
            cloud_instance_name: "microsoftonline.us",
            cloud_graph_host_name: "graph.windows.net",
            msgraph_host: "dod-graph.microsoft.us",
        },
        TenantCloud::China => CloudMetadata {
            tenant_region_scope: "AS",
            tenant_region_sub_scope: None,
            cloud_instance_name: "partner.microsoftonline.cn",
            cloud_graph_host_name: "graph.chinacloudapi.cn",
            msgraph_host: "microsoftgraph.chinacloudapi.cn",
        },
    }
}

/// `https://127.0.0.1:{port}`: the authority host, as issuers and endpoints spell it.
pub fn authority_host(state: &State) -> String {
    state.base.as_str().trim_end_matches('/').to_string()
}

/// The `iss` of the tenant's id tokens (and the document's `issuer`).
pub fn issuer(state: &State, tenant_id: &str) -> String {
    format!("{}/{tenant_id}/v2.0", authority_host(state))
}

/// Microsoft answers an unknown tenant's discovery with `invalid_tenant` AADSTS90002.
fn unknown_tenant(name: &str) -> Response {
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are \
             signing into the correct cloud. Check with your subscription administrator, this may \
             happen if there are no active subscriptions for the tenant."
        ),
    )
}

async fn openid_configuration(Ax(state): Ax<Arc<State>>, Path(tenant): Path<String>) -> Response {
    let multi = ["common", "organizations"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&tenant));
    let (segment, issuer_tenant, cloud, tid) = if multi {
        // Microsoft's multi-tenant documents keep the literal `{tenantid}` in the issuer and
        // report no region.
        (
            tenant.to_ascii_lowercase(),
            "{tenantid}".to_string(),
            None,
            None,
        )
    } else {
        let inner = state.lock();
        let Some(t) = inner
            .resolve_tenant(&tenant)
            .and_then(|id| inner.tenant(id))
        else {
            return unknown_tenant(&tenant);
        };
        let id = t.scenario.id;
        (
            id.to_string(),
            id.to_string(),
            Some(cloud_metadata(t.scenario.cloud)),
            Some(id),
        )
    };
    let host = authority_host(&state);
    let endpoint = |name: &str| format!("{host}/{segment}/oauth2/v2.0/{name}");
    let mut doc = json!({
        "token_endpoint": endpoint("token"),
        // Only what the sandbox accepts: the secret in the form body.
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "jwks_uri": format!("{host}/{segment}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        // The sandbox signs with a per-run HMAC key (see `token`), not Microsoft's RS256 keys.
        "id_token_signing_alg_values_supported": ["HS256"],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(&state, &issuer_tenant),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": state.url("graph").join("oidc/userinfo").expect("joins").as_str(),
        "authorization_endpoint": endpoint("authorize"),
        "device_authorization_endpoint": endpoint("devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": endpoint("logout"),
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
            "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email",
        ],
        "tenant_region_scope": Value::Null,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    });
    if let Some(m) = cloud {
        doc["tenant_region_scope"] = json!(m.tenant_region_scope);
        if let Some(sub) = m.tenant_region_sub_scope {
            doc["tenant_region_sub_scope"] = json!(sub);
        }
        doc["cloud_instance_name"] = json!(m.cloud_instance_name);
        doc["cloud_graph_host_name"] = json!(m.cloud_graph_host_name);
        doc["msgraph_host"] = json!(m.msgraph_host);
    }
    let r = Json(doc).into_response();
    match tid {
        Some(id) => tagged(r, id),
        None => r,
    }
}

/// The signing keys. Empty: the sandbox's tokens are HMAC-signed with a key it cannot publish,
/// so there is no public key to list (MSAL and azure-identity do not check id_token signatures).
async fn keys(Ax(state): Ax<Arc<State>>, Path(tenant): Path<String>) -> Response {
    let multi = ["common", "organizations"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&tenant));
    if !multi && state.lock().resolve_tenant(&tenant).is_none() {
        return unknown_tenant(&tenant);
    }
    Json(json!({"keys": []})).into_response()
}

/// `GET /common/discovery/instance?authorization_endpoint=…&api-version=1.1`: Microsoft's
/// instance discovery, answering for the sandbox's own host (an MSAL app given this URL as its
/// instance discovery endpoint needs no `instance_discovery=False`).
async fn instance_discovery(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !tenant.eq_ignore_ascii_case("common") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let host = authority_host(&state);
    let own = url::Url::parse(&host).expect("base is a URL");
    let netloc = format!(
        "{}:{}",
        own.host_str().unwrap_or("127.0.0.1"),
        own.port().unwrap_or(443)
    );
    let asked = q
        .get("authorization_endpoint")
        .and_then(|a| url::Url::parse(a).ok());
    // MSAL names the instance by host name alone (it drops the port).
    let Some(asked) = asked.filter(|a| a.scheme() == "https" && a.host_str() == own.host_str())
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_instance",
            50049,
            "Unknown or invalid instance.",
        );
    };
    let tenant = asked
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty())
        .unwrap_or("common")
        .to_string();
    Json(json!({
        "tenant_discovery_endpoint": format!("{host}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": netloc,
            "preferred_cache": netloc,
            "aliases": [netloc],
        }],
    }))
    .into_response()
}
