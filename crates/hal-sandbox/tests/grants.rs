//! Delegated permission grants (`/oauth2PermissionGrants`) over real HTTPS, as Microsoft Graph
//! documents them: created per client and resource with `consentType` `AllPrincipals`, listed
//! by `clientId`, one per client/resource/consent type (409 for a second), scopes only from the
//! resource's `oauth2PermissionScopes`, changed by PATCH; and Partner Center's principal made
//! in a tenant that lacks it.

use hal_sandbox::{Sandbox, Scenario, TenantScenario, catalog};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

fn scenario(id: Uuid, role: &str) -> Scenario {
    let mut t = TenantScenario {
        id,
        display_name: "Grants".into(),
        domains: vec!["grants.onmicrosoft.com".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.roles = vec![role.into()];
    Scenario {
        tenants: vec![t],
        ..Scenario::default()
    }
}

struct Api {
    http: Client,
    base: url::Url,
    token: String,
}

impl Api {
    fn new(sb: &Sandbox, id: Uuid) -> Api {
        let http = Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(sb.ca_path()).unwrap()).unwrap(),
            )
            .build()
            .unwrap();
        Api {
            http,
            base: sb.graph_url(),
            token: sb
                .user_access_token(id, "https://graph.microsoft.com/.default")
                .unwrap(),
        }
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .request(method, self.base.join(&format!("v1.0/{path}")).unwrap())
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status();
        let text = r.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn sp(&self, app_id: &str) -> Value {
        let (s, v) = self
            .call(
                reqwest::Method::GET,
                &format!("servicePrincipals?$filter=appId eq '{app_id}'&$select=id,appId,oauth2PermissionScopes"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["value"][0].clone()
    }
}

#[tokio::test]
async fn grants_are_made_listed_refused_twice_and_patched_as_graph_documents() {
    let id = Uuid::from_u128(0x6a_0001);
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(scenario(id, "Global Administrator"), dir.path())
        .await
        .unwrap();
    let api = Api::new(&sb, id);
    use reqwest::Method as M;

    // A client: an app and its principal.
    let (s, app) = api
        .call(
            M::POST,
            "applications",
            Some(json!({"displayName": "client"})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, client) = api
        .call(
            M::POST,
            "servicePrincipals",
            Some(json!({"appId": app["appId"]})),
        )
        .await;
    assert_eq!(s, 201, "{client}");
    let client = client["id"].as_str().unwrap().to_string();

    // Graph's principal lists its delegated permissions with Microsoft's ids.
    let graph = api.sp(catalog::GRAPH_APP_ID).await;
    let scopes = graph["oauth2PermissionScopes"].as_array().unwrap();
    assert!(
        scopes
            .iter()
            .any(|s| s["value"] == "DelegatedAdminRelationship.Read.All"
                && s["id"] == "0c0064ea-477b-4130-82a5-4c2cc4ff68aa")
    );
    let graph = graph["id"].as_str().unwrap().to_string();

    // Partner Center's principal is not in an ordinary tenant; it can be added.
    let (s, v) = api
        .call(
            M::GET,
            &format!(
                "servicePrincipals?$filter=appId eq '{}'",
                catalog::PARTNER_CENTER_APP_ID
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["value"].as_array().unwrap().is_empty());
    let (s, pc) = api
        .call(
            M::POST,
            "servicePrincipals",
            Some(json!({"appId": catalog::PARTNER_CENTER_APP_ID})),
        )
        .await;
    assert_eq!(s, 201, "{pc}");
    let pc = api.sp(catalog::PARTNER_CENTER_APP_ID).await;
    assert_eq!(
        pc["oauth2PermissionScopes"][0]["value"],
        "user_impersonation"
    );

    let grant = |resource: &str, scope: &str| json!({"clientId": client, "consentType": "AllPrincipals", "resourceId": resource, "scope": scope});
    // A scope the resource does not expose is refused.
    let (s, v) = api
        .call(
            M::POST,
            "oauth2PermissionGrants",
            Some(grant(&graph, "Made.Up")),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, g) = api
        .call(
            M::POST,
            "oauth2PermissionGrants",
            Some(grant(&graph, "Directory.Read.All")),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert!(g["principalId"].is_null());
    let gid = g["id"].as_str().unwrap().to_string();
    // A second for the same client, resource and consent type: 409.
    let (s, v) = api
        .call(
            M::POST,
            "oauth2PermissionGrants",
            Some(grant(&graph, "GroupMember.Read.All")),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // On another resource it is a grant of its own.
    let (s, _) = api
        .call(
            M::POST,
            "oauth2PermissionGrants",
            Some(grant(pc["id"].as_str().unwrap(), "user_impersonation")),
        )
        .await;
    assert_eq!(s, 201);

    let (s, v) = api
        .call(
            M::PATCH,
            &format!("oauth2PermissionGrants/{gid}"),
            Some(json!({"scope": "Directory.Read.All GroupMember.Read.All"})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = api
        .call(
            M::GET,
            &format!("oauth2PermissionGrants?$filter=clientId eq '{client}'"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let list = v["value"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .any(|g| g["scope"] == "Directory.Read.All GroupMember.Read.All")
    );

    // Deleting the client's app takes its principal and its grants with it.
    let (s, _) = api
        .call(
            M::DELETE,
            &format!("applications/{}", app["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = api
        .call(
            M::GET,
            &format!("oauth2PermissionGrants?$filter=clientId eq '{client}'"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(v["value"].as_array().unwrap().is_empty(), "{v}");
}

#[tokio::test]
async fn a_user_without_an_admin_role_cannot_grant_consent() {
    let id = Uuid::from_u128(0x6a_0002);
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(scenario(id, "Global Reader"), dir.path())
        .await
        .unwrap();
    let api = Api::new(&sb, id);
    let graph = api.sp(catalog::GRAPH_APP_ID).await;
    let exo = api.sp(catalog::EXCHANGE_APP_ID).await;
    let (s, v) = api
        .call(
            reqwest::Method::POST,
            "oauth2PermissionGrants",
            Some(
                json!({"clientId": exo["id"], "consentType": "AllPrincipals",
                        "resourceId": graph["id"], "scope": "Directory.Read.All"}),
            ),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "Authorization_RequestDenied");
}
