//! What real Microsoft clients (MSAL, azure-identity) need from the sandbox, each checked against
//! Microsoft's documentation: the authority right after the host, tokens for the sandbox's own
//! Graph URL and for Azure Resource Manager, and `@odata.context` with `$select` and the real
//! entity set. tests/conformance/ drives the sandbox with the unmodified Python clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const ARM: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";

fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com")],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t.signed_in_user.display_name = format!("Admin {n}");
    t
}

async fn start_with(scenario: Scenario) -> (Sandbox, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(scenario, dir.path()).await.unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    (sb, c, dir)
}

async fn start(tenants: Vec<TenantScenario>) -> (Sandbox, Client, tempfile::TempDir) {
    start_with(Scenario {
        tenants,
        ..Scenario::default()
    })
    .await
}

/// `https://127.0.0.1:port` (the authority host, without a trailing slash).
fn host(sb: &Sandbox) -> String {
    sb.login_url().as_str().trim_end_matches('/').to_string()
}

fn oauth(sb: &Sandbox, tenant: &str, endpoint: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/{endpoint}", host(sb))
}

async fn post_form(c: &Client, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = c.post(url).form(form).send().await.unwrap();
    let s = r.status();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"notJson": text})),
    )
}

/// A JWT's payload, read as a client reads it (no signature check).
fn payload(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&B64.decode(p).expect("base64url")).expect("JSON claims")
}

/// Device code sign-in approved at once; `extra` form fields go to the token request.
async fn sign_in(
    sb: &Sandbox,
    c: &Client,
    tenant: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> Value {
    let (s, dc) = post_form(
        c,
        &oauth(sb, tenant, "devicecode"),
        &[("client_id", CLIENT_ID), ("scope", scope)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{dc}");
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", CLIENT_ID),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    form.extend_from_slice(extra);
    let (s, v) = post_form(c, &oauth(sb, tenant, "token"), &form).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn the_authority_is_the_tenant_right_after_the_host() {
    let (sb, c, _d) = start(vec![tenant(1)]).await;
    assert_eq!(sb.login_url().path(), "/", "like login.microsoftonline.com");
    let tid = Uuid::from_u128(1).to_string();
    let v = sign_in(&sb, &c, &tid, "https://graph.microsoft.com/.default", &[]).await;
    assert!(v["access_token"].is_string(), "{v}");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_token_for_the_sandbox_graph_url_works_with_its_graph() {
    let (sb, c, _d) = start(vec![tenant(8)]).await;
    let tid = Uuid::from_u128(8).to_string();
    let graph = sb.graph_url();
    let scope = format!("{graph}.default");
    let v = sign_in(&sb, &c, &tid, &scope, &[]).await;
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(payload(token)["aud"], graph.as_str().trim_end_matches('/'));
    let r = c
        .get(graph.join("v1.0/organization").unwrap())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    sb.shutdown().await;
}

#[tokio::test]
async fn azure_resource_manager_is_a_known_resource() {
    let (sb, c, _d) = start(vec![tenant(9)]).await;
    let tid = Uuid::from_u128(9).to_string();
    let v = sign_in(
        &sb,
        &c,
        &tid,
        "https://management.core.windows.net//.default offline_access",
        &[],
    )
    .await;
    let at = payload(v["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://management.core.windows.net/");
    assert_eq!(at["scp"], "user_impersonation");
    assert_eq!(
        v["scope"],
        "https://management.core.windows.net//user_impersonation"
    );
    // Its principal is in the directory, like every first-party resource.
    let token = sb
        .user_access_token(Uuid::from_u128(9), "https://graph.microsoft.com/.default")
        .unwrap();
    let r: Value = c
        .get(
            sb.graph_url()
                .join(&format!("v1.0/servicePrincipals(appId='{ARM}')"))
                .unwrap(),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["appId"], ARM, "{r}");
    assert_eq!(r["displayName"], "Windows Azure Service Management API");
    sb.shutdown().await;
}

#[tokio::test]
async fn odata_context_reflects_select_and_the_real_entity_set() {
    let (sb, c, _d) = start(vec![tenant(11)]).await;
    let token = sb
        .user_access_token(Uuid::from_u128(11), "https://graph.microsoft.com/.default")
        .unwrap();
    let get = |path: &str| {
        let url = sb.graph_url().join(&format!("v1.0/{path}")).unwrap();
        let c = c.clone();
        let token = token.clone();
        async move {
            let r = c.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    const META: &str = "https://graph.microsoft.com/v1.0/$metadata#";
    let v = get("servicePrincipals?$select=id,appId").await;
    assert_eq!(
        v["@odata.context"],
        format!("{META}servicePrincipals(id,appId)")
    );
    let graph_sp = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["appId"] == "00000003-0000-0000-c000-000000000000")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = get(&format!("servicePrincipals/{graph_sp}?$select=appId")).await;
    assert_eq!(
        v["@odata.context"],
        format!("{META}servicePrincipals(appId)/$entity")
    );
    let v = get("organization?$select=id").await;
    assert_eq!(v["@odata.context"], format!("{META}organization(id)"));
    let v = get(&format!("servicePrincipals/{graph_sp}/appRoleAssignedTo")).await;
    assert_eq!(
        v["@odata.context"],
        format!("{META}servicePrincipals('{graph_sp}')/appRoleAssignedTo")
    );
    let v = get(
        "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')/appRoleAssignedTo?$select=id,principalId",
    )
    .await;
    assert_eq!(
        v["@odata.context"],
        format!("{META}servicePrincipals('{graph_sp}')/appRoleAssignedTo(id,principalId)")
    );
    let v = get(&format!("servicePrincipals/{graph_sp}/appRoleAssignments")).await;
    assert_eq!(
        v["@odata.context"],
        format!("{META}servicePrincipals('{graph_sp}')/appRoleAssignments")
    );
    sb.shutdown().await;
}
