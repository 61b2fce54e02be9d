//! What real Microsoft clients (MSAL, azure-identity) need from the sandbox, each checked against
//! Microsoft's documentation: the authority right after the host, the OpenID configuration
//! document (with the tenant's cloud, and AADSTS90002 for an unknown tenant), instance
//! discovery, UserInfo and sign-out, `client_info`, the id token's OpenID claims and `nonce`,
//! `response_mode=form_post`, approving a device code on the sign-in page, tokens for the
//! sandbox's own Graph URL and for Azure Resource Manager, and `@odata.context` with `$select`
//! and the real entity set. tests/conformance/ drives the sandbox with the unmodified Python
//! clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
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

async fn get_json(c: &Client, url: &str) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({"notJson": text})),
    )
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
async fn openid_configuration_is_microsofts_document() {
    let (sb, c, _d) = start(vec![tenant(2)]).await;
    let tid = Uuid::from_u128(2).to_string();
    let h = host(&sb);
    for name in [tid.as_str(), "t2.onmicrosoft.com"] {
        let (s, v) = get_json(
            &c,
            &format!("{h}/{name}/v2.0/.well-known/openid-configuration"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Endpoints name the tenant ID, whichever name was asked for.
        assert_eq!(v["issuer"], format!("{h}/{tid}/v2.0"));
        assert_eq!(
            v["token_endpoint"],
            format!("{h}/{tid}/oauth2/v2.0/token"),
            "{v}"
        );
        assert_eq!(
            v["authorization_endpoint"],
            format!("{h}/{tid}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            v["device_authorization_endpoint"],
            format!("{h}/{tid}/oauth2/v2.0/devicecode")
        );
        assert_eq!(v["jwks_uri"], format!("{h}/{tid}/discovery/v2.0/keys"));
        assert_eq!(v["tenant_region_scope"], "NA");
        assert_eq!(v["cloud_instance_name"], "microsoftonline.com");
        assert_eq!(v["cloud_graph_host_name"], "graph.windows.net");
        assert_eq!(v["msgraph_host"], "graph.microsoft.com");
        assert!(v.get("tenant_region_sub_scope").is_none(), "{v}");
        for k in [
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
            "scopes_supported",
            "claims_supported",
            "token_endpoint_auth_methods_supported",
        ] {
            assert!(v[k].is_array(), "{k} in {v}");
        }
        let (s, keys) = get_json(&c, v["jwks_uri"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{keys}");
        assert!(keys["keys"].is_array(), "{keys}");
    }
    // `common` keeps Microsoft's placeholder issuer.
    let (s, v) = get_json(
        &c,
        &format!("{h}/common/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["issuer"], format!("{h}/{{tenantid}}/v2.0"));
    assert_eq!(v["token_endpoint"], format!("{h}/common/oauth2/v2.0/token"));
    sb.shutdown().await;
}

#[tokio::test]
async fn openid_configuration_follows_the_tenants_cloud() {
    let mut tenants = vec![];
    for (i, cloud) in ["gcc", "usgov", "usgov-dod", "china", "global"]
        .iter()
        .enumerate()
    {
        let mut t = serde_json::to_value(tenant(10 + i as u128)).unwrap();
        t["cloud"] = json!(cloud);
        tenants.push(t);
    }
    let scenario: Scenario = serde_json::from_value(json!({"tenants": tenants}))
        .expect("a scenario tenant may name its cloud");
    let (sb, c, _d) = start_with(scenario).await;
    let h = host(&sb);
    let doc = |n: u128| {
        let c = c.clone();
        let url = format!(
            "{h}/{}/v2.0/.well-known/openid-configuration",
            Uuid::from_u128(n)
        );
        async move { get_json(&c, &url).await.1 }
    };
    let expect = [
        // (region, sub-scope, instance, AAD Graph host, Microsoft Graph host)
        (
            "NA",
            Some("GCC"),
            "microsoftonline.com",
            "graph.windows.net",
            "graph.microsoft.com",
        ),
        (
            "USGov",
            Some("DODCON"),
            "microsoftonline.us",
            "graph.windows.net",
            "graph.microsoft.us",
        ),
        (
            "USGov",
            Some("DOD"),
            "microsoftonline.us",
            "graph.windows.net",
            "dod-graph.microsoft.us",
        ),
        (
            "AS",
            None,
            "partner.microsoftonline.cn",
            "graph.chinacloudapi.cn",
            "microsoftgraph.chinacloudapi.cn",
        ),
        (
            "NA",
            None,
            "microsoftonline.com",
            "graph.windows.net",
            "graph.microsoft.com",
        ),
    ];
    for (i, (region, sub, instance, aad_graph, graph)) in expect.into_iter().enumerate() {
        let v = doc(10 + i as u128).await;
        assert_eq!(v["tenant_region_scope"], region, "{v}");
        assert_eq!(
            v.get("tenant_region_sub_scope").and_then(Value::as_str),
            sub
        );
        assert_eq!(v["cloud_instance_name"], instance);
        assert_eq!(v["cloud_graph_host_name"], aad_graph);
        assert_eq!(v["msgraph_host"], graph);
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn an_unknown_tenant_has_no_configuration_aadsts90002() {
    let (sb, c, _d) = start(vec![tenant(3)]).await;
    let (s, v) = get_json(
        &c,
        &format!(
            "{}/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration",
            host(&sb)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error_codes"], json!([90002]), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002: Tenant 'nosuch.onmicrosoft.com' not found."),
        "{v}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn client_info_is_returned_when_asked_for() {
    let (sb, c, _d) = start(vec![tenant(4)]).await;
    let tid = Uuid::from_u128(4).to_string();
    let scope = "https://graph.microsoft.com/.default openid profile offline_access";
    let v = sign_in(&sb, &c, &tid, scope, &[("client_info", "1")]).await;
    let oid = payload(v["access_token"].as_str().unwrap())["oid"].clone();
    let info: Value = serde_json::from_slice(
        &B64.decode(v["client_info"].as_str().expect("client_info"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info, json!({"uid": oid, "utid": tid}));
    // Also on refresh; never unasked.
    let (s, r) = post_form(
        &c,
        &oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
            ("scope", scope),
            ("client_info", "1"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["client_info"], v["client_info"]);
    let unasked = sign_in(&sb, &c, &tid, scope, &[]).await;
    assert!(unasked.get("client_info").is_none(), "{unasked}");
    sb.shutdown().await;
}

#[tokio::test]
async fn the_id_token_has_openid_claims_and_echoes_the_nonce() {
    let (sb, c, _d) = start(vec![tenant(5)]).await;
    let tid = Uuid::from_u128(5).to_string();
    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "http://localhost:8400/";
    let mut url = url::Url::parse(&oauth(&sb, &tid, "authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile offline_access User.Read")
        .append_pair("state", "s1")
        .append_pair("nonce", "n-0S6_WzA2Mj")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let no_redirects = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(sb.ca_path()).unwrap()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let (s, v) = post_form(
        &c,
        &oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("scope", "openid profile offline_access User.Read"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = payload(v["id_token"].as_str().unwrap());
    let at = payload(v["access_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj", "{id}");
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["aud"], CLIENT_ID);
    assert_eq!(id["iss"], format!("{}/{tid}/v2.0", host(&sb)));
    assert_eq!(id["tid"], tid);
    assert_eq!(id["oid"], at["oid"]);
    assert_eq!(id["preferred_username"], "admin@t5.onmicrosoft.com");
    assert_eq!(id["name"], "Admin 5");
    let sub = id["sub"].as_str().expect("sub");
    assert!(!sub.is_empty() && sub != at["oid"], "pairwise sub: {id}");
    for k in ["iat", "nbf", "exp"] {
        assert!(id[k].is_i64(), "{k} in {id}");
    }
    // The same user and app always get the same `sub`; a device code id_token has no nonce.
    let v = sign_in(&sb, &c, &tid, "openid profile User.Read", &[]).await;
    let id2 = payload(v["id_token"].as_str().unwrap());
    assert_eq!(id2["sub"], id["sub"]);
    assert!(id2.get("nonce").is_none(), "{id2}");
    sb.shutdown().await;
}

#[tokio::test]
async fn authorize_answers_form_post_when_asked() {
    let (sb, c, _d) = start(vec![tenant(6)]).await;
    let tid = Uuid::from_u128(6).to_string();
    let mut url = url::Url::parse(&oauth(&sb, &tid, "authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("response_mode", "form_post")
        .append_pair("redirect_uri", "http://localhost:8401")
        .append_pair("scope", "openid User.Read")
        .append_pair("state", "st&<8>");
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"<form method="POST" name="hiddenform" action="http://localhost:8401">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<input type="hidden" name="code" value=""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<input type="hidden" name="state" value="st&amp;&lt;8&gt;" />"#),
        "{html}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_person_approves_a_device_code_on_the_sign_in_page() {
    let mut t = tenant(7);
    t.device_code_approve_after_polls = u32::MAX;
    let (sb, c, _d) = start(vec![t]).await;
    let tid = Uuid::from_u128(7).to_string();
    let (_, dc) = post_form(
        &c,
        &oauth(&sb, &tid, "devicecode"),
        &[("client_id", CLIENT_ID), ("scope", "User.Read")],
    )
    .await;
    let page = dc["verification_uri"].as_str().unwrap().to_string();
    assert_eq!(page, format!("{}/devicelogin", host(&sb)));
    let html = c.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(r#"<form method="POST""#), "{html}");
    assert!(html.contains(r#"name="otc""#), "{html}");
    let token_url = oauth(&sb, &tid, "token");
    let poll_form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", CLIENT_ID),
        ("device_code", dc["device_code"].as_str().unwrap()),
    ];
    let poll = || post_form(&c, &token_url, &poll_form);
    let (s, v) = poll().await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("authorization_pending"))
    );
    // A wrong code says so and approves nothing.
    let r = c
        .post(&page)
        .form(&[("otc", "WRONGCODE")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .post(&page)
        .form(&[("otc", dc["user_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You have signed in"));
    let (s, v) = poll().await;
    assert_eq!(s, StatusCode::OK, "{v}");
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

#[tokio::test]
async fn instance_discovery_userinfo_and_logout_answer_like_microsofts() {
    let (sb, c, _d) = start(vec![tenant(12)]).await;
    let tid = Uuid::from_u128(12).to_string();
    let h = host(&sb);
    let discover = |authorization_endpoint: String| {
        let mut u = url::Url::parse(&format!("{h}/common/discovery/instance")).unwrap();
        u.query_pairs_mut()
            .append_pair("api-version", "1.1")
            .append_pair("authorization_endpoint", &authorization_endpoint);
        let c = c.clone();
        async move { get_json(&c, u.as_str()).await }
    };
    let (s, v) = discover(oauth(&sb, &tid, "authorize")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["tenant_discovery_endpoint"],
        format!("{h}/{tid}/v2.0/.well-known/openid-configuration")
    );
    // MSAL names the instance without its port.
    let (s, v) = discover(format!("https://127.0.0.1/{tid}/oauth2/v2.0/authorize")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["tenant_discovery_endpoint"],
        format!("{h}/{tid}/v2.0/.well-known/openid-configuration")
    );
    let (s, v) =
        discover("https://login.microsoftonline.com/common/oauth2/v2.0/authorize".into()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_instance"))
    );

    let token = sb
        .user_access_token(Uuid::from_u128(12), "https://graph.microsoft.com/.default")
        .unwrap();
    let r = c
        .get(sb.graph_url().join("oidc/userinfo").unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["email"], "admin@t12.onmicrosoft.com");
    assert_eq!(v["name"], "Admin 12");
    assert!(v["sub"].as_str().is_some_and(|s| s.len() == 43), "{v}");

    let r = c.get(oauth(&sb, &tid, "logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    sb.shutdown().await;
}
