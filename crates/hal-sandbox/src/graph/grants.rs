//! `/oauth2PermissionGrants`: delegated permission grants ("oAuth2PermissionGrant resource
//! type", "Create oAuth2PermissionGrant", "Update a delegated permission grant" in the
//! Microsoft Graph v1.0 reference). A grant names the client's and the resource's service
//! principals, `consentType` (`AllPrincipals`: admin consent for every user, `principalId`
//! null; `Principal`: one user) and `scope`, the space-separated delegated permission values,
//! each one the resource's service principal exposes in `oauth2PermissionScopes`.
//!
//! Creating or changing one needs `DelegatedPermissionGrant.ReadWrite.All` (or
//! `Directory.ReadWrite.All`) and, for a signed-in user, a role that may grant tenant-wide
//! consent to delegated permissions: Global Administrator, Privileged Role Administrator,
//! Cloud Application Administrator or Application Administrator ("Grant tenant-wide admin
//! consent to an application", Microsoft Entra docs). A second grant for the same client,
//! resource and consent type is refused with 409 (the existing one is PATCHed instead).

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Caller, Ctx, GResp, TenantState, bad_prop, catalog, denied, filter_error, gerr, matches,
    method_not_allowed, not_found, parse_filter, to_json,
};
use crate::state::OAuth2Grant;

/// A resource's `oauth2PermissionScopes` as Graph shows them.
pub(super) fn scopes_json(scopes: &[(&str, &str)]) -> Value {
    Value::Array(
        scopes
            .iter()
            .map(|(value, id)| {
                json!({
                    "adminConsentDescription": format!("Allows the app to {value} on behalf of the signed-in user."),
                    "adminConsentDisplayName": value,
                    "id": id,
                    "isEnabled": true,
                    "type": "Admin",
                    "userConsentDescription": null,
                    "userConsentDisplayName": null,
                    "value": value,
                })
            })
            .collect(),
    )
}

pub(super) fn route(
    ctx: &Ctx,
    t: &mut TenantState,
    rest: &[&str],
    m: Method,
    body: Option<Value>,
) -> GResp {
    let caller = ctx.caller;
    if m == Method::GET
        && caller.delegated()
        && !caller.has_scope(&[
            "DelegatedPermissionGrant.Read.All",
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ])
    {
        return denied();
    }
    match (rest, m) {
        ([], Method::GET) => list(ctx, t),
        ([], Method::POST) => create(caller, t, body),
        ([id], Method::GET) => match t.oauth2_grants.iter().find(|g| g.id == *id) {
            Some(g) => ctx.one("oauth2PermissionGrants/$entity", to_json(g)),
            None => not_found(id),
        },
        ([id], Method::PATCH) => update(caller, t, id, body),
        ([id], Method::DELETE) => {
            if !can_write(caller) {
                return denied();
            }
            let before = t.oauth2_grants.len();
            t.oauth2_grants.retain(|g| g.id != *id);
            if t.oauth2_grants.len() == before {
                not_found(id)
            } else {
                GResp {
                    status: 204,
                    body: None,
                    headers: vec![],
                }
            }
        }
        _ => method_not_allowed(),
    }
}

fn list(ctx: &Ctx, t: &TenantState) -> GResp {
    let clauses = match ctx.q.get("$filter").map(|f| parse_filter(f)) {
        None => vec![],
        Some(Ok(c)) => c,
        Some(Err(e)) => return filter_error(e, "OAuth2PermissionGrant"),
    };
    let mut out = vec![];
    for g in &t.oauth2_grants {
        let v = to_json(g);
        match matches(
            &v,
            &clauses,
            &["clientId", "resourceId", "consentType", "principalId", "id"],
            &[],
        ) {
            Err(e) => return filter_error(e, "OAuth2PermissionGrant"),
            Ok(true) => out.push(v),
            Ok(false) => {}
        }
    }
    ctx.list("oauth2PermissionGrants", out)
}

fn can_write(caller: &Caller) -> bool {
    if caller.delegated() {
        caller.has_scope(&[
            "DelegatedPermissionGrant.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ]) && caller.has_role(&[
            catalog::GLOBAL_ADMINISTRATOR,
            catalog::PRIVILEGED_ROLE_ADMINISTRATOR,
            catalog::CLOUD_APPLICATION_ADMINISTRATOR,
            catalog::APPLICATION_ADMINISTRATOR,
        ])
    } else {
        caller.has_app_role(&["DelegatedPermissionGrant.ReadWrite.All"])
    }
}

/// Every value in `scope` is one the resource exposes.
fn valid_scope(t: &TenantState, resource: Uuid, scope: &str) -> bool {
    let Some(sp) = t.service_principals.iter().find(|s| s.id == resource) else {
        return false;
    };
    let known = catalog::delegated_scopes(&sp.app_id);
    scope
        .split_whitespace()
        .all(|s| known.iter().any(|(v, _)| v.eq_ignore_ascii_case(s)))
}

fn sp_id(t: &TenantState, body: &Value, prop: &str) -> Result<Uuid, GResp> {
    let id = body
        .get(prop)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| bad_prop(prop, "OAuth2PermissionGrant"))?;
    if t.service_principals.iter().any(|s| s.id == id) {
        Ok(id)
    } else {
        Err(not_found(&id.to_string()))
    }
}

fn create(caller: &Caller, t: &mut TenantState, body: Option<Value>) -> GResp {
    if !can_write(caller) {
        return denied();
    }
    let Some(body @ Value::Object(_)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let client = match sp_id(t, &body, "clientId") {
        Ok(id) => id,
        Err(e) => return e,
    };
    let resource = match sp_id(t, &body, "resourceId") {
        Ok(id) => id,
        Err(e) => return e,
    };
    let consent_type = body["consentType"].as_str().unwrap_or_default().to_string();
    let principal = body["principalId"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    match (consent_type.as_str(), principal) {
        ("AllPrincipals", None) | ("Principal", Some(_)) => {}
        _ => return bad_prop("consentType", "OAuth2PermissionGrant"),
    }
    let scope = body["scope"].as_str().unwrap_or_default().to_string();
    if scope.trim().is_empty() || !valid_scope(t, resource, &scope) {
        return bad_prop("scope", "OAuth2PermissionGrant");
    }
    if t.oauth2_grants.iter().any(|g| {
        g.client_id == client
            && g.resource_id == resource
            && g.consent_type == consent_type
            && g.principal_id == principal
    }) {
        return gerr(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "Permission entry already exists.",
        );
    }
    let g = OAuth2Grant {
        // Graph's grant ids are opaque base64url strings, not GUIDs.
        id: super::B64.encode(Uuid::new_v4().as_bytes()),
        client_id: client,
        consent_type,
        principal_id: principal,
        resource_id: resource,
        scope,
    };
    let mut v = to_json(&g);
    v["@odata.context"] = json!(format!("{}oauth2PermissionGrants/$entity", super::CONTEXT));
    t.oauth2_grants.push(g);
    GResp::with(201, v)
}

fn update(caller: &Caller, t: &mut TenantState, id: &str, body: Option<Value>) -> GResp {
    if !can_write(caller) {
        return denied();
    }
    let Some(i) = t.oauth2_grants.iter().position(|g| g.id == id) else {
        return not_found(id);
    };
    let Some(Value::Object(body)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    for (k, v) in &body {
        if k != "scope" {
            return gerr(
                400,
                "Request_BadRequest",
                &format!("Property '{k}' is read-only and cannot be set."),
            );
        }
        let scope = v.as_str().unwrap_or_default();
        if !valid_scope(t, t.oauth2_grants[i].resource_id, scope) {
            return bad_prop("scope", "OAuth2PermissionGrant");
        }
        t.oauth2_grants[i].scope = scope.to_string();
    }
    GResp {
        status: 204,
        body: None,
        headers: vec![],
    }
}
