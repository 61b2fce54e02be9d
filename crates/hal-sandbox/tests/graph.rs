//! The sandbox's Microsoft Graph over real HTTPS: authentication, directory reads, `$filter`,
//! replication delay, the app management policy, app role assignments, `$batch`, throttling,
//! delegated permission checks, the missing Office 365 Management APIs principal, latency and
//! the request log.

use std::time::{Duration, Instant};

use hal_sandbox::token::{Claims, now_unix};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";

fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com"), format!("t{n}.example.com")],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t
}

struct Env {
    sb: Sandbox,
    c: Client,
    token: String,
    _dir: tempfile::TempDir,
}

/// Starts a sandbox with `t` and signs its technician in through the device code flow.
async fn start(t: TenantScenario) -> Env {
    let tid = t.id.to_string();
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants: vec![t],
            ..Scenario::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let url = |e: &str| {
        sb.login_url()
            .join(&format!("{tid}/oauth2/v2.0/{e}"))
            .unwrap()
    };
    let dc: Value = c
        .post(url("devicecode"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tok: Value = c
        .post(url("token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", CLIENT_ID),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().expect("signed in").to_string();
    Env {
        sb,
        c,
        token,
        _dir: dir,
    }
}

impl Env {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (s, _, v) = self.call_full(method, path, body, Some(&self.token)).await;
        (s, v)
    }

    async fn call_full(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = self.sb.graph_url().join(&format!("v1.0/{path}")).unwrap();
        let mut r = self.c.request(method, url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status();
        let h = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (s, h, v)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn create_app(&self, name: &str, tags: &[&str]) -> Value {
        let (s, v) = self
            .post(
                "applications",
                json!({"displayName": name, "signInAudience": "AzureADMyOrg", "tags": tags}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    fn tenant(&self) -> Uuid {
        self.sb
            .requests()
            .iter()
            .find_map(|r| r.tenant)
            .expect("a tagged request")
    }
}

fn assert_graph_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    let inner = &v["error"]["innerError"];
    assert!(
        inner["request-id"]
            .as_str()
            .is_some_and(|s| Uuid::parse_str(s).is_ok()),
        "{v}"
    );
    assert!(
        inner["date"].is_string() && inner["client-request-id"].is_string(),
        "{v}"
    );
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["displayName"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn graph_rejects_missing_forged_expired_and_wrong_audience_tokens() {
    let e = start(tenant(1)).await;
    let (s, h, v) = e.call_full(Method::GET, "organization", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&v, "InvalidAuthenticationToken");
    assert_eq!(v["error"]["message"], "Access token is empty.");
    assert!(h.get("request-id").is_some() && h.get("www-authenticate").is_some());

    let forged = hal_sandbox::token::Signer::random().sign(&Claims {
        aud: "https://graph.microsoft.com".into(),
        tid: Uuid::from_u128(1).to_string(),
        scp: Some("User.Read".into()),
        exp: now_unix() + 600,
        ..Claims::default()
    });
    let (s, _, v) = e
        .call_full(Method::GET, "organization", None, Some(&forged))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_graph_error(&v, "InvalidAuthenticationToken");

    let mut claims = Claims {
        aud: "https://graph.microsoft.com".into(),
        tid: Uuid::from_u128(1).to_string(),
        scp: Some("User.Read".into()),
        wids: vec![GA.into()],
        exp: now_unix() - 5,
        ..Claims::default()
    };
    let expired = e.sb.signer().sign(&claims);
    let (s, _, v) = e
        .call_full(Method::GET, "organization", None, Some(&expired))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    claims.exp = now_unix() + 600;
    claims.aud = "https://outlook.office365.com".into();
    let exchange = e.sb.signer().sign(&claims);
    let (s, _, v) = e
        .call_full(Method::GET, "organization", None, Some(&exchange))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid audience"),
        "{v}"
    );

    claims.aud = "https://graph.microsoft.com".into();
    let good = e.sb.signer().sign(&claims);
    let (s, h, _) = e
        .call_full(Method::GET, "organization", None, Some(&good))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.get("request-id").is_some());
    e.sb.shutdown().await;
}

#[tokio::test]
async fn directory_reads_describe_the_tenant_and_the_technician() {
    let mut t = tenant(2);
    t.licenses = vec!["ENTERPRISEPREMIUM".into(), "EXCHANGESTANDARD".into()];
    t.signed_in_user.roles = vec![
        "Global Administrator".into(),
        "Privileged Role Administrator".into(),
    ];
    let e = start(t).await;
    let (s, org) = e.get("organization").await;
    assert_eq!(s, StatusCode::OK);
    let org = &org["value"][0];
    assert_eq!(org["id"], Uuid::from_u128(2).to_string());
    assert_eq!(org["displayName"], "Tenant 2");
    assert_eq!(org["tenantType"], "AAD");
    let d = org["verifiedDomains"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["name"], "t2.onmicrosoft.com");
    assert_eq!(d[0]["isDefault"], true);
    assert_eq!(d[0]["isInitial"], true);
    assert_eq!(d[1]["isDefault"], false);

    let (_, me) = e.get("me").await;
    assert_eq!(me["userPrincipalName"], "admin@t2.onmicrosoft.com");
    assert!(Uuid::parse_str(me["id"].as_str().unwrap()).is_ok());

    for path in [
        "me/memberOf",
        "me/transitiveMemberOf/microsoft.graph.directoryRole",
    ] {
        let (s, v) = e.get(path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        let mut templates: Vec<&str> = v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["roleTemplateId"].as_str().unwrap())
            .collect();
        templates.sort();
        assert_eq!(templates, [GA, "e8611ab8-c189-46e8-94e1-60213ab1f814"]);
        assert_eq!(
            v["value"][0]["@odata.type"],
            "#microsoft.graph.directoryRole"
        );
    }

    let (_, v) = e
        .get("me/memberOf?$select=id,displayName,roleTemplateId")
        .await;
    assert_eq!(
        v["value"][0]["@odata.type"],
        "#microsoft.graph.directoryRole"
    );
    assert_eq!(v["value"][0].as_object().unwrap().len(), 4);
    let (s, v) = e.get("applications?$select=id,web,identifierUris").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = e.get("applications?$select=id,colour").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("microsoft.graph.application")
    );
    let (_, skus) = e.get("subscribedSkus").await;
    let skus = skus["value"].as_array().unwrap();
    assert_eq!(skus.len(), 2);
    let e5 = skus
        .iter()
        .find(|s| s["skuPartNumber"] == "ENTERPRISEPREMIUM")
        .unwrap();
    assert_eq!(e5["capabilityStatus"], "Enabled");
    let plans: Vec<&str> = e5["servicePlans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["servicePlanName"].as_str().unwrap())
        .collect();
    assert!(
        plans.contains(&"AAD_PREMIUM") && plans.contains(&"AAD_PREMIUM_P2"),
        "{plans:?}"
    );
    let exo = skus
        .iter()
        .find(|s| s["skuPartNumber"] == "EXCHANGESTANDARD")
        .unwrap();
    assert!(!exo["servicePlans"].to_string().contains("AAD_PREMIUM"));

    let (_, domains) = e.get("domains").await;
    assert_eq!(domains["value"][1]["id"], "t2.example.com");
    assert_eq!(domains["value"][1]["isVerified"], true);

    let (s, v) = e.get("auditLogs/signIns?$top=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = e.get(&format!("organization/{}", Uuid::from_u128(2))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["displayName"], "Tenant 2");
    let beta = e.sb.graph_url().join("beta/organization").unwrap();
    let r = e.c.get(beta).bearer_auth(&e.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (s, v) = e.get("noSuchThing").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "BadRequest");
    e.sb.shutdown().await;
}

#[tokio::test]
async fn sign_in_logs_need_entra_id_p1() {
    let mut t = tenant(3);
    t.licenses = vec!["O365_BUSINESS_PREMIUM".into()];
    let e = start(t).await;
    let (s, v) = e.get("auditLogs/signIns?$top=1").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&v, "Authentication_RequestFromNonPremiumTenantOrB2CTenant");
    let (_, skus) = e.get("subscribedSkus").await;
    assert!(!skus.to_string().contains("AAD_PREMIUM"));
    e.sb.shutdown().await;
}

#[tokio::test]
async fn applications_filter_select_top_and_unsupported_filters() {
    let e = start(tenant(4)).await;
    let hal = e
        .create_app("hal-siem-log-collector", &["hal", "siem"])
        .await;
    e.create_app("hal-other", &["hal"]).await;
    e.create_app("Payroll", &[]).await;
    assert_eq!(hal["signInAudience"], "AzureADMyOrg");
    assert_ne!(hal["id"], hal["appId"]);

    let (s, v) = e
        .get("applications?$filter=displayName eq 'hal-siem-log-collector'")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&v), ["hal-siem-log-collector"]);
    let (_, v) = e.get("applications?$filter=tags/any(t:t eq 'hal')").await;
    assert_eq!(names(&v), ["hal-other", "hal-siem-log-collector"]);
    let (_, v) = e
        .get("applications?$filter=tags/any(t:t eq 'hal') and displayName eq 'hal-other'")
        .await;
    assert_eq!(names(&v), ["hal-other"]);
    let (_, v) = e
        .get("applications?$filter=startswith(displayName,'hal')")
        .await;
    assert_eq!(names(&v).len(), 2);
    let (_, v) = e
        .get(&format!(
            "applications?$filter=appId eq '{}'&$select=id,appId",
            hal["appId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    let obj = v["value"][0].as_object().unwrap();
    assert_eq!(obj.len(), 2, "{obj:?}");
    assert_eq!(obj["id"], hal["id"]);

    let (_, v) = e.get("applications?$top=2").await;
    assert_eq!(v["value"].as_array().unwrap().len(), 2);
    let next = url::Url::parse(v["@odata.nextLink"].as_str().unwrap()).unwrap();
    let r: Value =
        e.c.get(next)
            .bearer_auth(&e.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(r["value"].as_array().unwrap().len(), 1);
    assert!(r.get("@odata.nextLink").is_none());

    let (s, v) = e.get("applications?$filter=notes eq 'x'").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "Request_UnsupportedQuery");
    assert!(v["error"]["message"].as_str().unwrap().contains("'notes'"));
    let (s, v) = e.get("applications?$filter=displayName ne 'x'").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "Request_UnsupportedQuery");
    let (s, v) = e.get("applications?$filter=displayName eq hal").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "BadRequest");
    let (s, _) = e.get("applications?$top=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = e
        .post("applications", json!({"displayName": "x", "colour": "red"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"]["message"].as_str().unwrap().contains("colour"));
    let (s, _) = e.post("applications", json!({"tags": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // PATCH and alternate key, then DELETE.
    let id = hal["id"].as_str().unwrap();
    let (s, _) = e.call(Method::PATCH, &format!("applications/{id}"), Some(json!({"notes": "Managed by hal-onboard",
        "requiredResourceAccess": [{"resourceAppId": O365, "resourceAccess": [{"id": "594c1fb6-4f81-4475-ae41-0c394909246c", "type": "Role"}]}]}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = e
        .get(&format!(
            "applications(appId='{}')",
            hal["appId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["notes"], "Managed by hal-onboard");
    assert_eq!(
        v["requiredResourceAccess"][0]["resourceAccess"][0]["type"],
        "Role"
    );
    let snap = e.sb.snapshot(e.tenant());
    let a = snap.application_named("hal-siem-log-collector").unwrap();
    assert_eq!(a.tags, ["hal", "siem"]);
    assert_eq!(a.required_resource_access[0].resource_app_id, O365);
    let (s, _) = e
        .call(Method::DELETE, &format!("applications/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = e.get(&format!("applications/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&v, "Request_ResourceNotFound");
    assert_eq!(e.sb.snapshot(e.tenant()).applications.len(), 2);
    e.sb.shutdown().await;
}

#[tokio::test]
async fn new_objects_are_not_found_until_replicated() {
    let mut t = tenant(5);
    t.replication_delay_requests = 2;
    let e = start(t).await;
    let app = e.create_app("hal-siem-log-collector", &[]).await;
    let (id, app_id) = (app["id"].as_str().unwrap(), app["appId"].as_str().unwrap());
    let (s, v) = e.get(&format!("applications/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_graph_error(&v, "Request_ResourceNotFound");
    let (s, _) = e.get(&format!("applications(appId='{app_id}')")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = e.get(&format!("applications/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["appId"], app_id);

    let (s, sp) = e.post("servicePrincipals", json!({"appId": app_id})).await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    let (_, v) = e
        .get(&format!("servicePrincipals?$filter=appId eq '{app_id}'"))
        .await;
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        0,
        "not replicated yet"
    );
    // Granting to a principal that has not replicated: 400 like Graph, then success.
    let snap = e.sb.snapshot(e.tenant());
    let graph_sp = snap.service_principal_for(GRAPH).unwrap();
    let role = graph_sp
        .app_roles
        .iter()
        .find(|r| r.value == "Directory.Read.All")
        .unwrap();
    assert_eq!(role.id, "7ab1d382-f21e-4acd-a863-ba3e13f7da61");
    let body = json!({"principalId": sp["id"], "resourceId": graph_sp.id, "appRoleId": role.id});
    let (s, v) = e
        .post(
            &format!("servicePrincipals/{}/appRoleAssignedTo", graph_sp.id),
            body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "Request_BadRequest");
    let (s, v) = e
        .post(
            &format!("servicePrincipals/{}/appRoleAssignedTo", graph_sp.id),
            body,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["principalType"], "ServicePrincipal");
    assert_eq!(v["resourceDisplayName"], "Microsoft Graph");
    e.sb.shutdown().await;
}

#[tokio::test]
async fn add_password_respects_the_app_management_policy() {
    let mut t = tenant(6);
    t.secret_max_lifetime_days = Some(180);
    let e = start(t).await;
    let app = e.create_app("hal-siem-log-collector", &[]).await;
    let id = app["id"].as_str().unwrap();
    let in_days = |d: i64| {
        let t = time::OffsetDateTime::now_utc() + time::Duration::days(d);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (s, v) = e
        .post(
            &format!("applications/{id}/addPassword"),
            json!({"passwordCredential": {"displayName": "hal", "endDateTime": in_days(730)}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "CredentialInvalidLifetimeAsPerAppPolicy");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with(
            "Credential lifetime exceeds the max value allowed as per assigned policy"
        )
    );
    // Without an end date Graph defaults to two years, which the policy refuses too.
    let (s, _) = e
        .post(
            &format!("applications/{id}/addPassword"),
            json!({"passwordCredential": {"displayName": "hal"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, policy) = e.get("policies/defaultAppManagementPolicy").await;
    assert_eq!(s, StatusCode::OK, "{policy}");
    assert_eq!(policy["isEnabled"], true);
    let pol = &policy["applicationRestrictions"]["passwordCredentials"][0];
    assert_eq!(pol["restrictionType"], "passwordLifetime");
    assert_eq!(pol["maxLifetime"], "P180D");
    let (s, pw) = e
        .post(
            &format!("applications/{id}/addPassword"),
            json!({"passwordCredential": {"displayName": "hal", "endDateTime": in_days(90)}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pw}");
    let secret = pw["secretText"].as_str().unwrap();
    assert_eq!(secret.len(), 40);
    assert_eq!(pw["hint"], &secret[..3]);
    assert_eq!(pw["displayName"], "hal");
    assert!(Uuid::parse_str(pw["keyId"].as_str().unwrap()).is_ok());

    let (_, v) = e.get(&format!("applications/{id}")).await;
    let creds = v["passwordCredentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0]["secretText"], Value::Null);
    assert_eq!(creds[0]["hint"], &secret[..3]);
    let snap = e.sb.snapshot(e.tenant());
    assert!(
        !format!("{:?}", snap).contains(secret),
        "the snapshot never holds secret text"
    );

    let (s, _) = e
        .post(
            &format!("applications/{id}/removePassword"),
            json!({"keyId": pw["keyId"]}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        e.sb.snapshot(e.tenant()).applications[0]
            .password_credentials
            .is_empty()
    );
    e.sb.shutdown().await;
}

#[tokio::test]
async fn app_role_assignments_duplicate_unknown_list_and_delete() {
    let e = start(tenant(7)).await;
    let app = e.create_app("hal-siem-log-collector", &[]).await;
    let (_, sp) = e
        .post("servicePrincipals", json!({"appId": app["appId"]}))
        .await;
    let (s, v) = e
        .post("servicePrincipals", json!({"appId": app["appId"]}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_graph_error(&v, "Request_MultipleObjectsWithSameKeyValue");
    let (s, graph) = e.get(&format!("servicePrincipals(appId='{GRAPH}')")).await;
    assert_eq!(s, StatusCode::OK);
    let role = graph["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["value"] == "User.Read.All")
        .unwrap()
        .clone();
    assert_eq!(role["id"], "df021288-bdef-4463-88db-98f22de89214");
    let url = format!(
        "servicePrincipals/{}/appRoleAssignedTo",
        graph["id"].as_str().unwrap()
    );
    let body = json!({"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": role["id"]});
    let (s, a) = e.post(&url, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = e.post(&url, body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "Request_BadRequest");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Permission being assigned already exists on the object")
    );
    let (s, v) = e.post(&url, json!({"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": Uuid::new_v4()})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "Request_BadRequest");

    let (_, v) = e
        .get(&format!(
            "servicePrincipals/{}/appRoleAssignments",
            sp["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    assert_eq!(v["value"][0]["appRoleId"], role["id"]);
    let (_, v) = e.get(&url).await;
    assert_eq!(v["value"].as_array().unwrap().len(), 1);
    let (_, v) = e
        .get(&format!(
            "{url}?$filter=principalId eq '{}'",
            sp["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(v["value"][0]["id"], a["id"]);
    let (_, v) = e
        .get(&format!(
            "{url}?$filter=principalId eq '{}'",
            Uuid::new_v4()
        ))
        .await;
    assert!(v["value"].as_array().unwrap().is_empty());
    let snap = e.sb.snapshot(e.tenant());
    assert_eq!(
        snap.granted_roles(Uuid::parse_str(sp["id"].as_str().unwrap()).unwrap(), GRAPH),
        ["User.Read.All"]
    );

    let (s, _) = e
        .call(
            Method::DELETE,
            &format!("{url}/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(e.sb.snapshot(e.tenant()).app_role_assignments.is_empty());

    // The same grant from the principal's side, and its removal.
    let sp_id = sp["id"].as_str().unwrap();
    let (s, b) = e
        .post(
            &format!("servicePrincipals/{sp_id}/appRoleAssignments"),
            json!({"principalId": sp_id, "resourceId": graph["id"], "appRoleId": role["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["resourceId"], graph["id"]);
    let (s, _) = e
        .post(
            &format!("servicePrincipals/{sp_id}/appRoleAssignments"),
            json!({"principalId": Uuid::new_v4(), "resourceId": graph["id"], "appRoleId": role["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = e
        .call(
            Method::DELETE,
            &format!(
                "servicePrincipals/{sp_id}/appRoleAssignments/{}",
                b["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(e.sb.snapshot(e.tenant()).app_role_assignments.is_empty());
    e.sb.shutdown().await;
}

#[tokio::test]
async fn json_batch_runs_sub_requests_and_reports_each() {
    let mut t = tenant(8);
    t.throttle_every = 0;
    let e = start(t).await;
    e.create_app("hal-siem-log-collector", &["hal"]).await;
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/organization?$select=id,displayName"},
        {"id": "2", "method": "GET", "url": "/applications?$filter=displayName eq 'hal-siem-log-collector'"},
        {"id": "3", "method": "POST", "url": "/applications", "headers": {"Content-Type": "application/json"}, "body": {"displayName": "from-batch"}},
        {"id": "4", "method": "GET", "url": "/applications/not-a-guid"},
        {"id": "5", "method": "GET", "url": "/organization", "dependsOn": ["4"]},
        {"id": "6", "method": "GET", "url": "/"},
    ]});
    let (s, v) = e.post("$batch", batch).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rs = v["responses"].as_array().unwrap();
    let by = |id: &str| rs.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by("1")["status"], 200);
    assert_eq!(by("1")["body"]["value"][0]["displayName"], "Tenant 8");
    assert_eq!(by("2")["status"], 200);
    assert_eq!(by("2")["body"]["value"].as_array().unwrap().len(), 1);
    assert_eq!(by("3")["status"], 201);
    assert_eq!(by("3")["body"]["displayName"], "from-batch");
    assert_eq!(by("4")["status"], 400);
    assert_eq!(by("5")["status"], 424);
    assert_eq!(by("6")["status"], 400);
    assert!(by("1")["headers"]["request-id"].is_string());
    assert!(
        e.sb.snapshot(e.tenant())
            .application_named("from-batch")
            .is_some()
    );

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/organization"}))
        .collect();
    let (s, v) = e.post("$batch", json!({"requests": too_many})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_graph_error(&v, "BadRequest");
    let (s, _) = e.post("$batch", json!({"requests": [{"id": "1", "method": "POST", "url": "/applications", "body": {"displayName": "x"}}]})).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a body needs a Content-Type header"
    );
    e.sb.shutdown().await;
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_alone_and_in_batches() {
    let mut t = tenant(9);
    t.throttle_every = 3;
    let e = start(t).await;
    let (s1, _) = e.get("organization").await;
    let (s2, _) = e.get("organization").await;
    let (s3, h, v) = e
        .call_full(Method::GET, "organization", None, Some(&e.token))
        .await;
    let (s4, _) = e.get("organization").await;
    assert_eq!([s1, s2, s4], [StatusCode::OK; 3]);
    assert_eq!(s3, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["retry-after"], "1");
    assert_graph_error(&v, "TooManyRequests");
    assert_eq!(v["error"]["innerError"]["status"], "429");

    // Requests 5, 6 (throttled) and 7 inside one batch.
    let reqs: Vec<Value> = (1..=3)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/me"}))
        .collect();
    let (s, v) = e.post("$batch", json!({"requests": reqs})).await;
    assert_eq!(s, StatusCode::OK);
    let rs = v["responses"].as_array().unwrap();
    let statuses: Vec<u64> = rs.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 429, 200]);
    assert_eq!(rs[1]["headers"]["Retry-After"], "1");
    assert_eq!(rs[1]["body"]["error"]["code"], "TooManyRequests");
    e.sb.shutdown().await;
}

#[tokio::test]
async fn technicians_without_an_admin_role_cannot_write() {
    let mut reader = tenant(10);
    reader.signed_in_user.roles = vec!["Global Reader".into()];
    let e = start(reader).await;
    let (s, v) = e.get("applications").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = e
        .post(
            "applications",
            json!({"displayName": "hal-siem-log-collector"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&v, "Authorization_RequestDenied");
    assert_eq!(
        v["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let (s, _) = e.post("servicePrincipals", json!({"appId": O365})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    e.sb.shutdown().await;

    // A Cloud Application Administrator can register the app and grant the Management API's
    // roles, but granting Microsoft Graph app roles needs Privileged Role Administrator.
    let mut cloud_admin = tenant(11);
    cloud_admin.signed_in_user.roles = vec!["Cloud Application Administrator".into()];
    let e = start(cloud_admin).await;
    let app = e.create_app("hal-siem-log-collector", &[]).await;
    let (_, sp) = e
        .post("servicePrincipals", json!({"appId": app["appId"]}))
        .await;
    let snap = e.sb.snapshot(e.tenant());
    for (res, value, want) in [
        (GRAPH, "User.Read.All", StatusCode::FORBIDDEN),
        (O365, "ActivityFeed.Read", StatusCode::CREATED),
    ] {
        let r = snap.service_principal_for(res).unwrap();
        let role = r.app_roles.iter().find(|x| x.value == value).unwrap();
        let (s, v) = e
            .post(
                &format!("servicePrincipals/{}/appRoleAssignedTo", r.id),
                json!({"principalId": sp["id"], "resourceId": r.id, "appRoleId": role.id}),
            )
            .await;
        assert_eq!(s, want, "{value}: {v}");
    }
    e.sb.shutdown().await;
}

#[tokio::test]
async fn missing_management_api_principal_can_be_created_with_its_real_roles() {
    let mut t = tenant(12);
    t.o365_management_sp_missing = true;
    let e = start(t).await;
    let (s, v) = e
        .get(&format!("servicePrincipals?$filter=appId eq '{O365}'"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["value"].as_array().unwrap().is_empty());
    let (s, _) = e.get(&format!("servicePrincipals(appId='{O365}')")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // No token for a resource whose principal is not in the tenant.
    let url = |x: &str| {
        e.sb.login_url()
            .join(&format!("t12.onmicrosoft.com/oauth2/v2.0/{x}"))
            .unwrap()
    };
    let dc: Value =
        e.c.post(url("devicecode"))
            .form(&[
                ("client_id", CLIENT_ID),
                ("scope", "https://manage.office.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let r =
        e.c.post(url("token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", CLIENT_ID),
                ("device_code", dc["device_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_resource");
    assert_eq!(v["error_codes"], json!([500011]));

    let (s, sp) = e.post("servicePrincipals", json!({"appId": O365})).await;
    assert_eq!(s, StatusCode::CREATED, "{sp}");
    assert_eq!(sp["displayName"], "Office 365 Management APIs");
    let roles: std::collections::HashMap<&str, &str> = sp["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["value"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles["ActivityFeed.Read"],
        "594c1fb6-4f81-4475-ae41-0c394909246c"
    );
    assert_eq!(
        roles["ActivityFeed.ReadDlp"],
        "4807a72c-ad38-4250-94c9-4eabfe26cd55"
    );
    assert_eq!(
        roles["ServiceHealth.Read"],
        "e2cea78f-e743-4d8f-a16a-75b629a038ae"
    );
    let (_, v) = e
        .get(&format!(
            "servicePrincipals?$filter=appId eq '{O365}'&$select=id,appRoles"
        ))
        .await;
    assert_eq!(v["value"][0]["id"], sp["id"]);
    let (_, v) = e
        .get(&format!(
            "servicePrincipals?$filter=appId in ('{O365}', '{GRAPH}')&$select=appId"
        ))
        .await;
    let mut ids: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["appId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [GRAPH, O365]);
    e.sb.shutdown().await;
}

#[tokio::test]
async fn app_only_tokens_cannot_use_me_and_need_roles_to_read() {
    let e = start(tenant(13)).await;
    let tid = Uuid::from_u128(13).to_string();
    let app_only = |roles: Vec<String>| {
        e.sb.signer().sign(&Claims {
            aud: "https://graph.microsoft.com".into(),
            tid: tid.clone(),
            oid: Uuid::new_v4().to_string(),
            roles,
            exp: now_unix() + 600,
            ..Claims::default()
        })
    };
    let none = app_only(vec![]);
    let (s, _, v) = e
        .call_full(Method::GET, "applications", None, Some(&none))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&v, "Authorization_RequestDenied");
    let reader = app_only(vec!["Application.Read.All".into()]);
    let (s, _, _) = e
        .call_full(Method::GET, "applications", None, Some(&reader))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = e.call_full(Method::GET, "me", None, Some(&reader)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/me request is only valid with delegated authentication flow")
    );
    let (s, _, _) = e
        .call_full(
            Method::POST,
            "applications",
            Some(json!({"displayName": "x"})),
            Some(&reader),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    e.sb.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_and_every_request_is_logged() {
    let mut t = tenant(14);
    t.latency_ms = 250;
    let e = start(t).await;
    e.sb.clear_requests();
    let started = Instant::now();
    let (s, _) = e.get("organization?$select=id").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let _ = e.call_full(Method::GET, "organization", None, None).await;
    let log = e.sb.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/graph/v1.0/organization?$select=id");
    assert_eq!(log[0].status, 200);
    assert_eq!(log[0].tenant, Some(Uuid::from_u128(14)));
    assert_eq!(log[1].status, 401);
    assert_eq!(log[1].tenant, None);
    assert!(log[0].at <= log[1].at);
    e.sb.clear_requests();
    assert!(e.sb.requests().is_empty());
    e.sb.shutdown().await;
}

#[tokio::test]
async fn delegated_scopes_limit_what_even_a_global_administrator_can_do() {
    let e = start(tenant(15)).await;
    let tid = Uuid::from_u128(15).to_string();
    let user_token = |scp: &str| {
        e.sb.signer().sign(&Claims {
            aud: "https://graph.microsoft.com".into(),
            tid: tid.clone(),
            oid: Uuid::new_v4().to_string(),
            upn: Some("admin@t15.onmicrosoft.com".into()),
            scp: Some(scp.into()),
            wids: vec![GA.into()],
            exp: now_unix() + 600,
            ..Claims::default()
        })
    };
    let user_read = user_token("User.Read");
    let (s, _, _) = e.call_full(Method::GET, "me", None, Some(&user_read)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) = e
        .call_full(Method::GET, "applications", None, Some(&user_read))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_graph_error(&v, "Authorization_RequestDenied");
    let (s, _, _) = e
        .call_full(
            Method::POST,
            "applications",
            Some(json!({"displayName": "x"})),
            Some(&user_read),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Application.ReadWrite.All registers apps but cannot grant app roles without
    // AppRoleAssignment.ReadWrite.All.
    let apps_only = user_token("Application.ReadWrite.All");
    let (s, _, app) = e
        .call_full(
            Method::POST,
            "applications",
            Some(json!({"displayName": "hal-siem-log-collector"})),
            Some(&apps_only),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, sp) = e
        .call_full(
            Method::POST,
            "servicePrincipals",
            Some(json!({"appId": app["appId"]})),
            Some(&apps_only),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let graph_sp =
        e.sb.snapshot(Uuid::from_u128(15))
            .service_principal_for(GRAPH)
            .unwrap()
            .clone();
    let grant = json!({"principalId": sp["id"], "resourceId": graph_sp.id, "appRoleId": "df021288-bdef-4463-88db-98f22de89214"});
    let path = format!("servicePrincipals/{}/appRoleAssignedTo", graph_sp.id);
    let (s, _, _) = e
        .call_full(Method::POST, &path, Some(grant.clone()), Some(&apps_only))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let both = user_token("Application.ReadWrite.All AppRoleAssignment.ReadWrite.All");
    let (s, _, v) = e
        .call_full(Method::POST, &path, Some(grant), Some(&both))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    e.sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_all_answered_and_logged() {
    let e = start(tenant(16)).await;
    e.sb.clear_requests();
    let mut tasks = vec![];
    for i in 0..40 {
        let c = e.c.clone();
        let token = e.token.clone();
        let url = e.sb.graph_url().join("v1.0/applications").unwrap();
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .bearer_auth(token)
                .json(&json!({"displayName": format!("app-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let snap = e.sb.snapshot(Uuid::from_u128(16));
    assert_eq!(snap.applications.len(), 40);
    let mut ids: Vec<Uuid> = snap.applications.iter().map(|a| a.app_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    let log = e.sb.requests();
    assert_eq!(log.len(), 40);
    assert!(log.iter().all(|r| r.method == "POST" && r.status == 201));
    e.sb.shutdown().await;
}

#[tokio::test]
async fn helpers_mint_tokens_list_tenants_and_change_knobs() {
    let e = start(tenant(17)).await;
    let id = Uuid::from_u128(17);
    let names: Vec<String> =
        e.sb.tenants()
            .iter()
            .map(|t| t.default_domain().to_string())
            .collect();
    assert_eq!(names, ["t17.onmicrosoft.com"]);
    let token =
        e.sb.user_access_token(id, "https://graph.microsoft.com/.default")
            .unwrap();
    let (s, _, v) = e.call_full(Method::GET, "me", None, Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["userPrincipalName"], "admin@t17.onmicrosoft.com");
    assert!(
        e.sb.user_access_token(Uuid::from_u128(999), "User.Read")
            .is_none()
    );
    assert!(
        e.sb.user_access_token(id, "https://example.com/.default")
            .is_none()
    );

    e.sb.with_tenant(id, |t| t.scenario.throttle_every = 1);
    let (s, _) = e.get("organization").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    e.sb.with_tenant(id, |t| t.scenario.throttle_every = 0);
    let (s, _) = e.get("organization").await;
    assert_eq!(s, StatusCode::OK);
    e.sb.shutdown().await;
}
