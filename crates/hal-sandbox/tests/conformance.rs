//! What real Microsoft clients (MSAL, azure-identity) need from the sandbox, each checked against
//! Microsoft's documentation: `@odata.context` with `$select` and the real entity set.
//! tests/conformance/ drives the sandbox with the unmodified Python clients.

use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use uuid::Uuid;

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
