//! `partner setup`: the partner app in the MSP's own tenant, found or made, and repaired.
//!
//! One multi-tenant public client ([`super::PARTNER_APP_NAME`]) with the delegated permissions
//! partner mode uses, its service principal, and admin consent for every user of the MSP's
//! tenant (one `oauth2PermissionGrant` per resource, `consentType` `AllPrincipals`). Read
//! first ([`survey`]), then what is missing is listed ([`plan`]) and made ([`apply`]); a second
//! run finds everything and plans nothing. An app of that name that is not ours (not tagged as
//! ours, or single-tenant) is never adopted: the run stops before any change.

use crate::microsoft::graph::partner_app::{DelegatedGrant, PublicApp, ScopedPrincipal};
use crate::microsoft::graph::{GraphClient, GraphError, directory::DirectoryApi};
use crate::wizard::APP_TAG;
use serde_json::{Value, json};
use uuid::Uuid;

use super::PARTNER_APP_NAME;

/// The tag that, with [`APP_TAG`], marks the partner app as ours.
pub const PARTNER_TAG: &str = "hal-onboard-partner";
pub const PARTNER_NOTES: &str = "Created by hal-onboard partner setup: the MSP's technicians sign in with it to onboard customers through GDAP. Managed by hal-onboard; do not edit by hand.";
pub const MULTI_TENANT: &str = "AzureADMultipleOrgs";
/// Public client redirect URIs: the loopback the browser sign-in listens on (any port is
/// accepted for `http://localhost` on a public client, Microsoft identity platform "Redirect
/// URI restrictions"); the device code flow needs none, only `isFallbackPublicClient`.
pub const REDIRECT_URIS: &[&str] = &["http://localhost"];

/// A resource the partner app asks delegated permissions of. The ids are Microsoft's
/// published ones, used only when the resource's service principal does not list a value
/// (its `oauth2PermissionScopes` win).
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub app_id: &'static str,
    pub name: &'static str,
    pub scopes: &'static [(&'static str, &'static str)],
}

pub const RESOURCES: &[Resource] = &[
    Resource {
        app_id: "00000003-0000-0000-c000-000000000000",
        name: "Microsoft Graph",
        scopes: &[
            (
                "DelegatedAdminRelationship.Read.All",
                "0c0064ea-477b-4130-82a5-4c2cc4ff68aa",
            ),
            (
                "Application.ReadWrite.All",
                "bdfbf15f-ee85-4955-8675-146e8e5296b5",
            ),
            (
                "AppRoleAssignment.ReadWrite.All",
                "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
            ),
            ("Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"),
            (
                "GroupMember.Read.All",
                "bc024368-1153-4739-b217-4326f2e966d0",
            ),
        ],
    },
    Resource {
        app_id: "00000002-0000-0ff1-ce00-000000000000",
        name: "Office 365 Exchange Online",
        scopes: &[("Exchange.Manage", "ab4f2b77-0b06-4fc1-a9de-02113fc2ab7c")],
    },
    Resource {
        app_id: "fa3d9a0c-3fb0-42cc-9193-47c7ecd2edbd",
        name: "Microsoft Partner Center",
        scopes: &[("user_impersonation", "1cebfa2a-fb4d-419e-b5f9-839b4383e05a")],
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the sign-in is for tenant {got}, not {asked} ({asked_id})")]
    WrongTenant {
        asked: String,
        asked_id: Uuid,
        got: String,
    },
    #[error("an app registration named \"{PARTNER_APP_NAME}\" already exists in this tenant and is not hal-onboard's: {}", .0.join("; "))]
    NotOurs(Vec<String>),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The tenant as the first reads found it.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Our partner app, when there is one.
    pub app: Option<PublicApp>,
    /// Its service principal's object id.
    pub app_sp: Option<String>,
    /// Each of [`RESOURCES`]' service principal in the tenant, in that order.
    pub resources: Vec<Option<ScopedPrincipal>>,
    /// The grants whose client is our principal.
    pub grants: Vec<DelegatedGrant>,
}

/// One change `apply` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateResourcePrincipal {
        resource: &'static str,
    },
    CreateApp,
    RepairApp {
        what: Vec<String>,
    },
    CreateAppPrincipal,
    Grant {
        resource: &'static str,
        scopes: Vec<String>,
    },
    AddScopes {
        resource: &'static str,
        missing: Vec<String>,
    },
}

impl Change {
    /// One line for the plan.
    pub fn describe(&self) -> String {
        match self {
            Change::CreateResourcePrincipal { resource } => {
                format!("add {resource}'s service principal to this tenant")
            }
            Change::CreateApp => format!(
                "register the app \"{PARTNER_APP_NAME}\": multi-tenant ({MULTI_TENANT}), public client (device code and browser sign-in, redirect URI {})",
                REDIRECT_URIS.join(", ")
            ),
            Change::RepairApp { what } => {
                format!("repair the app \"{PARTNER_APP_NAME}\": {}", what.join("; "))
            }
            Change::CreateAppPrincipal => "create the app's service principal".into(),
            Change::Grant { resource, scopes } => format!(
                "grant admin consent for every user of this tenant: {resource} {}",
                scopes.join(", ")
            ),
            Change::AddScopes { resource, missing } => format!(
                "add to the admin consent: {resource} {}",
                missing.join(", ")
            ),
        }
    }
}

/// Ours: tagged by us as the partner app, and multi-tenant.
pub fn is_ours(app: &PublicApp) -> bool {
    app.tags.iter().any(|t| t == APP_TAG)
        && app.tags.iter().any(|t| t == PARTNER_TAG)
        && app.sign_in_audience.as_deref() == Some(MULTI_TENANT)
}

fn why_not_ours(app: &PublicApp) -> String {
    let mut why = vec![];
    if !(app.tags.iter().any(|t| t == APP_TAG) && app.tags.iter().any(|t| t == PARTNER_TAG)) {
        why.push("it does not carry hal-onboard's partner tags".to_string());
    }
    if app.sign_in_audience.as_deref() != Some(MULTI_TENANT) {
        why.push(format!(
            "its signInAudience is {}, not {MULTI_TENANT}",
            app.sign_in_audience.as_deref().unwrap_or("unknown")
        ));
    }
    format!("appId {} ({})", app.app_id, why.join(", "))
}

/// Checks the signed-in token's tenant is `tenant_id`, then reads the app, the principals and
/// the grants (a handful of GETs; nothing is changed).
pub async fn survey(
    graph: &GraphClient,
    asked: &str,
    tenant_id: Uuid,
) -> Result<Found, SetupError> {
    let claims = graph.signed_in().await?;
    let tid = claims.tid.clone().unwrap_or_default();
    if !tid.eq_ignore_ascii_case(&tenant_id.to_string()) {
        return Err(SetupError::WrongTenant {
            asked: asked.to_string(),
            asked_id: tenant_id,
            got: if tid.is_empty() {
                "unknown".into()
            } else {
                tid
            },
        });
    }
    let apps = graph.public_apps_named(PARTNER_APP_NAME).await?;
    let (ours, foreign): (Vec<_>, Vec<_>) = apps.into_iter().partition(is_ours);
    if !foreign.is_empty() {
        return Err(SetupError::NotOurs(
            foreign.iter().map(why_not_ours).collect(),
        ));
    }
    let app = ours.into_iter().next();
    let mut resources = vec![];
    for r in RESOURCES {
        resources.push(graph.scoped_principal(r.app_id).await?);
    }
    let (mut app_sp, mut grants) = (None, vec![]);
    if let Some(a) = &app
        && let Some(sp) = graph.scoped_principal(&a.app_id).await?
    {
        grants = graph.delegated_grants(&sp.id).await?;
        app_sp = Some(sp.id);
    }
    Ok(Found {
        app,
        app_sp,
        resources,
        grants,
    })
}

/// The permission ids to ask for on `r`: the principal's own, else the published ones.
fn scope_ids(r: &Resource, sp: Option<&ScopedPrincipal>) -> Vec<(&'static str, String)> {
    r.scopes
        .iter()
        .map(|(value, id)| {
            let id = sp
                .and_then(|s| s.scope_id(value))
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            (*value, id)
        })
        .collect()
}

/// `requiredResourceAccess` with every permission we need added to what is there.
fn wanted_access(found: &Found) -> Value {
    let mut have: Vec<Value> = found
        .app
        .as_ref()
        .map(|a| {
            a.required_resource_access
                .iter()
                .map(|r| serde_json::to_value(r).expect("serializes"))
                .collect()
        })
        .unwrap_or_default();
    for (r, sp) in RESOURCES.iter().zip(&found.resources) {
        let pos = have.iter().position(|h| {
            h["resourceAppId"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(r.app_id))
        });
        let idx = match pos {
            Some(i) => i,
            None => {
                have.push(json!({"resourceAppId": r.app_id, "resourceAccess": []}));
                have.len() - 1
            }
        };
        let list = have[idx]["resourceAccess"]
            .as_array_mut()
            .expect("resourceAccess is a list");
        for (_, id) in scope_ids(r, sp.as_ref()) {
            let present = list.iter().any(|a| {
                a["type"] == "Scope"
                    && a["id"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(&id))
            });
            if !present {
                list.push(json!({"id": id, "type": "Scope"}));
            }
        }
    }
    Value::Array(have)
}

/// What the app lacks, in words (empty: nothing to repair).
fn app_repairs(app: &PublicApp, found: &Found) -> Vec<String> {
    let mut what = vec![];
    if app.is_fallback_public_client != Some(true) {
        what.push("allow public client flows (isFallbackPublicClient)".to_string());
    }
    let uris = app
        .public_client
        .as_ref()
        .map(|p| p.redirect_uris.clone())
        .unwrap_or_default();
    let missing: Vec<&str> = REDIRECT_URIS
        .iter()
        .copied()
        .filter(|u| !uris.iter().any(|x| x == u))
        .collect();
    if !missing.is_empty() {
        what.push(format!("add the redirect URI {}", missing.join(", ")));
    }
    let current = serde_json::to_value(&app.required_resource_access).expect("serializes");
    let wanted = wanted_access(found);
    if current != wanted {
        let added: Vec<String> = RESOURCES
            .iter()
            .zip(&found.resources)
            .flat_map(|(r, sp)| {
                scope_ids(r, sp.as_ref())
                    .into_iter()
                    .filter(|(_, id)| {
                        !app.required_resource_access.iter().any(|rra| {
                            rra.resource_app_id.eq_ignore_ascii_case(r.app_id)
                                && rra
                                    .resource_access
                                    .iter()
                                    .any(|a| a.kind == "Scope" && a.id.eq_ignore_ascii_case(id))
                        })
                    })
                    .map(move |(v, _)| format!("{} {v}", r.name))
            })
            .collect();
        what.push(format!("ask for {}", added.join(", ")));
    }
    what
}

/// The grant of `resource_sp` to our principal, for every user.
fn grant_for<'a>(found: &'a Found, resource_sp: &str) -> Option<&'a DelegatedGrant> {
    found.grants.iter().find(|g| {
        g.consent_type == "AllPrincipals" && g.resource_id.eq_ignore_ascii_case(resource_sp)
    })
}

/// What is missing, in the order [`apply`] makes it. Empty: nothing to do.
pub fn plan(found: &Found) -> Vec<Change> {
    let mut out = vec![];
    for (r, sp) in RESOURCES.iter().zip(&found.resources) {
        if sp.is_none() {
            out.push(Change::CreateResourcePrincipal { resource: r.name });
        }
    }
    match &found.app {
        None => out.push(Change::CreateApp),
        Some(app) => {
            let what = app_repairs(app, found);
            if !what.is_empty() {
                out.push(Change::RepairApp { what });
            }
        }
    }
    if found.app_sp.is_none() {
        out.push(Change::CreateAppPrincipal);
    }
    for (r, sp) in RESOURCES.iter().zip(&found.resources) {
        let wanted: Vec<String> = r.scopes.iter().map(|(v, _)| v.to_string()).collect();
        match sp.as_ref().and_then(|sp| grant_for(found, &sp.id)) {
            None => out.push(Change::Grant {
                resource: r.name,
                scopes: wanted,
            }),
            Some(g) => {
                let have = g.scopes();
                let missing: Vec<String> = wanted
                    .into_iter()
                    .filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w)))
                    .collect();
                if !missing.is_empty() {
                    out.push(Change::AddScopes {
                        resource: r.name,
                        missing,
                    });
                }
            }
        }
    }
    out
}

/// The app's body when it is created.
fn new_app_body(found: &Found) -> Value {
    json!({
        "displayName": PARTNER_APP_NAME,
        "signInAudience": MULTI_TENANT,
        "isFallbackPublicClient": true,
        "publicClient": { "redirectUris": REDIRECT_URIS },
        "requiredResourceAccess": wanted_access(found),
        "tags": [APP_TAG, "hal-onboard", PARTNER_TAG],
        "notes": PARTNER_NOTES,
    })
}

/// Makes what [`plan`] lists, telling `progress` each change as it starts. Returns the app's
/// client (application) id.
pub async fn apply(
    graph: &GraphClient,
    mut found: Found,
    progress: &(dyn Fn(&Change) + Sync),
) -> Result<String, SetupError> {
    for change in plan(&found) {
        progress(&change);
        match &change {
            Change::CreateResourcePrincipal { resource } => {
                let i = RESOURCES
                    .iter()
                    .position(|r| r.name == *resource)
                    .expect("a listed resource");
                graph.create_service_principal(RESOURCES[i].app_id).await?;
                // Read back with its delegated permissions (their ids, for the app).
                found.resources[i] = graph.scoped_principal(RESOURCES[i].app_id).await?;
            }
            Change::CreateApp => {
                let app = graph.create_public_app(&new_app_body(&found)).await?;
                found.app = Some(app);
            }
            Change::RepairApp { .. } => {
                let app = found.app.as_ref().expect("planned for an app");
                let mut uris = app
                    .public_client
                    .as_ref()
                    .map(|p| p.redirect_uris.clone())
                    .unwrap_or_default();
                for u in REDIRECT_URIS {
                    if !uris.iter().any(|x| x == u) {
                        uris.push(u.to_string());
                    }
                }
                let patch = json!({
                    "isFallbackPublicClient": true,
                    "publicClient": { "redirectUris": uris },
                    "requiredResourceAccess": wanted_access(&found),
                });
                graph.update_application(&app.id, &patch).await?;
            }
            Change::CreateAppPrincipal => {
                let app_id = found.app.as_ref().expect("made above").app_id.clone();
                found.app_sp = Some(graph.create_service_principal(&app_id).await?.id);
            }
            Change::Grant { resource, scopes } => {
                let (client, res) = ids(&found, resource);
                let g = graph
                    .grant_delegated(&client, &res, &scopes.join(" "))
                    .await?;
                found.grants.push(g);
            }
            Change::AddScopes { resource, missing } => {
                let (_, res) = ids(&found, resource);
                let g = grant_for(&found, &res)
                    .expect("planned for a grant")
                    .clone();
                let mut scopes: Vec<String> = g.scopes().iter().map(|s| s.to_string()).collect();
                scopes.extend(missing.iter().cloned());
                graph.set_grant_scope(&g.id, &scopes.join(" ")).await?;
            }
        }
    }
    Ok(found.app.expect("found or made").app_id)
}

/// Our principal's and `resource`'s principal's object ids.
fn ids(found: &Found, resource: &str) -> (String, String) {
    let i = RESOURCES
        .iter()
        .position(|r| r.name == resource)
        .expect("a listed resource");
    (
        found.app_sp.clone().expect("made before the grants"),
        found.resources[i]
            .as_ref()
            .expect("made before the grants")
            .id
            .clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> PublicApp {
        PublicApp {
            id: "o".into(),
            app_id: "a".into(),
            tags: vec![APP_TAG.into(), PARTNER_TAG.into()],
            sign_in_audience: Some(MULTI_TENANT.into()),
            ..PublicApp::default()
        }
    }

    #[test]
    fn only_a_tagged_multi_tenant_app_is_ours() {
        assert!(is_ours(&ours()));
        let mut single = ours();
        single.sign_in_audience = Some("AzureADMyOrg".into());
        assert!(!is_ours(&single));
        assert!(why_not_ours(&single).contains("AzureADMyOrg"));
        let mut untagged = ours();
        untagged.tags = vec![APP_TAG.into()];
        assert!(!is_ours(&untagged));
    }

    #[test]
    fn an_empty_tenant_plans_everything_and_a_partial_app_only_its_repairs() {
        let found = Found {
            resources: vec![None, None, None],
            ..Found::default()
        };
        let p = plan(&found);
        assert_eq!(
            p.iter()
                .filter(|c| matches!(c, Change::Grant { .. }))
                .count(),
            3
        );
        assert!(p.contains(&Change::CreateApp));
        assert!(p.contains(&Change::CreateAppPrincipal));

        let body = new_app_body(&found);
        assert_eq!(body["signInAudience"], MULTI_TENANT);
        assert_eq!(body["isFallbackPublicClient"], true);
        let ids: Vec<&str> = body["requiredResourceAccess"][0]["resourceAccess"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"0c0064ea-477b-4130-82a5-4c2cc4ff68aa"));

        let mut app = ours();
        app.is_fallback_public_client = Some(false);
        let found = Found {
            app: Some(app),
            resources: vec![None, None, None],
            ..Found::default()
        };
        let repairs = app_repairs(found.app.as_ref().unwrap(), &found);
        assert_eq!(repairs.len(), 3, "{repairs:?}");
        assert!(repairs[2].contains("Partner Center user_impersonation"));
    }
}
