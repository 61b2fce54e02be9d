//! The sandbox's sign-in service over real HTTPS: TLS trust, device code, refresh, client
//! credentials, authorization code + PKCE, unknown tenants, and Entra's error shape.

use std::time::Duration;

use hal_sandbox::token::{Claims, now_unix};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";

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

async fn start(tenants: Vec<TenantScenario>) -> (Sandbox, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants,
            ..Scenario::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let client = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    (sb, client, dir)
}

async fn post_form(c: &Client, url: url::Url, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = c.post(url).form(form).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

fn oauth(sb: &Sandbox, tenant: &str, endpoint: &str) -> url::Url {
    sb.login_url()
        .join(&format!("{tenant}/oauth2/v2.0/{endpoint}"))
        .unwrap()
}

async fn device_code(sb: &Sandbox, c: &Client, tenant: &str, scope: &str) -> Value {
    let (s, v) = post_form(
        c,
        oauth(sb, tenant, "devicecode"),
        &[("client_id", CLIENT_ID), ("scope", scope)],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn poll(sb: &Sandbox, c: &Client, tenant: &str, code: &str) -> (StatusCode, Value) {
    post_form(
        c,
        oauth(sb, tenant, "token"),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", CLIENT_ID),
            ("device_code", code),
        ],
    )
    .await
}

/// Signs in with the device code flow (the tenant approves at once) and returns the tokens.
async fn sign_in(sb: &Sandbox, c: &Client, tenant: &str, scope: &str) -> Value {
    let dc = device_code(sb, c, tenant, scope).await;
    let (s, v) = poll(sb, c, tenant, dc["device_code"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn claims(sb: &Sandbox, token: &str) -> Claims {
    sb.signer()
        .verify(token, now_unix())
        .expect("a valid sandbox token")
}

fn assert_aad_error(v: &Value, error: &str, code: u64) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], json!([code]), "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {v}");
    }
}

#[tokio::test]
async fn tls_is_trusted_only_with_the_sandbox_ca() {
    let (sb, client, dir) = start(vec![tenant(1)]).await;
    assert!(sb.ca_path().starts_with(dir.path()));
    let pem = std::fs::read_to_string(sb.ca_path()).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let page = sb.login_url().join("devicelogin").unwrap();
    let r = client.get(page.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(page.scheme(), "https");
    assert_eq!(page.host_str(), Some("127.0.0.1"));

    let untrusting = {
        hal_sandbox::contract::install_crypto_provider();
        reqwest::Client::builder().use_rustls_tls().build().unwrap()
    };
    let err = untrusting.get(page).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Dropping a sandbox stops it.
    let other = Sandbox::start(Scenario::default(), &dir.path().join("other"))
        .await
        .unwrap();
    let other_url = other.login_url().join("devicelogin").unwrap();
    let other_client = hal_sandbox::contract::client_trusting(&other.ca_path()).unwrap();
    assert!(
        other_client
            .get(other_url.clone())
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    drop(other);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        other_client.get(other_url).send().await.is_err(),
        "a dropped sandbox stops serving"
    );
    let env: std::collections::HashMap<_, _> = sb.env().into_iter().collect();
    assert_eq!(env["HAL_ONBOARD_LOGIN_URL"], sb.login_url().to_string());
    assert_eq!(env["HAL_ONBOARD_GRAPH_URL"], sb.graph_url().to_string());
    assert_eq!(
        env["HAL_ONBOARD_CA_CERT"],
        sb.ca_path().display().to_string()
    );
    assert_eq!(env["HAL_PORTAL_URL"], sb.portal_url().to_string());
    assert_eq!(
        env["HAL_ONBOARD_PARTNER_CENTER_URL"],
        sb.partner_center_url().to_string()
    );
    assert!(sb.graph_url().as_str().ends_with("/graph/"));
    sb.shutdown().await;
}

#[tokio::test]
async fn device_code_is_pending_then_slow_down_then_signed_in() {
    let mut t = tenant(2);
    t.device_code_approve_after_polls = 1;
    t.device_code_interval = 1;
    let tid = t.id.to_string();
    let (sb, c, _d) = start(vec![t]).await;
    let dc = device_code(
        &sb,
        &c,
        &tid,
        "openid https://graph.microsoft.com/.default offline_access",
    )
    .await;
    assert_eq!(dc["interval"], 1);
    assert_eq!(dc["expires_in"], 900);
    let user_code = dc["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(dc["message"].as_str().unwrap().contains(user_code));
    let code = dc["device_code"].as_str().unwrap();

    let (s, v) = poll(&sb, &c, &tid, code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_aad_error(&v, "authorization_pending", 70016);

    let (s, v) = poll(&sb, &c, &tid, code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "slow_down", "{v}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, v) = poll(&sb, &c, &tid, code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    assert!(v["ext_expires_in"].is_number());
    assert!(v["refresh_token"].is_string() && v["id_token"].is_string());
    assert!(
        v["scope"]
            .as_str()
            .unwrap()
            .contains("https://graph.microsoft.com/")
    );
    let at = claims(&sb, v["access_token"].as_str().unwrap());
    assert_eq!(at.aud, "https://graph.microsoft.com");
    assert_eq!(at.tid, tid);
    assert_eq!(at.upn.as_deref(), Some("admin@t2.onmicrosoft.com"));
    assert_eq!(at.appid, CLIENT_ID);
    assert_eq!(at.wids, ["62e90394-69f5-4237-9190-012177145e10"]);
    assert!(at.scp.unwrap().contains("Application.ReadWrite.All"));
    let id = claims(&sb, v["id_token"].as_str().unwrap());
    assert_eq!(id.aud, CLIENT_ID);

    // A device code is good for one sign-in.
    let (s, v) = poll(&sb, &c, &tid, code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_aad_error(&v, "invalid_grant", 70000);
    sb.shutdown().await;
}

#[tokio::test]
async fn device_code_declined_expired_unknown_and_manual_approval() {
    let mut declining = tenant(3);
    declining.device_code_decline = true;
    let mut expiring = tenant(4);
    expiring.device_code_expires_in = 0;
    let mut manual = tenant(5);
    manual.device_code_approve_after_polls = u32::MAX;
    let (sb, c, _d) = start(vec![declining, expiring, manual]).await;

    let dc = device_code(&sb, &c, "t3.onmicrosoft.com", "User.Read").await;
    let (s, v) = poll(
        &sb,
        &c,
        "t3.onmicrosoft.com",
        dc["device_code"].as_str().unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"], "authorization_declined", "{v}");

    let dc = device_code(&sb, &c, "t4.onmicrosoft.com", "User.Read").await;
    let (_, v) = poll(
        &sb,
        &c,
        "t4.onmicrosoft.com",
        dc["device_code"].as_str().unwrap(),
    )
    .await;
    assert_aad_error(&v, "expired_token", 70019);

    let (_, v) = poll(&sb, &c, "t4.onmicrosoft.com", "no-such-code").await;
    assert_aad_error(&v, "bad_verification_code", 70018);

    let dc = device_code(&sb, &c, "t5.onmicrosoft.com", "User.Read").await;
    let code = dc["device_code"].as_str().unwrap();
    let (_, v) = poll(&sb, &c, "t5.onmicrosoft.com", code).await;
    assert_eq!(v["error"], "authorization_pending");
    assert!(sb.approve_device_code(dc["user_code"].as_str().unwrap()));
    assert!(!sb.approve_device_code("NOPE"));
    let (s, _) = poll(&sb, &c, "t5.onmicrosoft.com", code).await;
    assert_eq!(s, StatusCode::OK);
    sb.shutdown().await;
}

#[tokio::test]
async fn refresh_token_works_for_other_resources_in_the_tenant() {
    let t = tenant(6);
    let tid = t.id.to_string();
    let (sb, c, _d) = start(vec![t]).await;
    let v = sign_in(
        &sb,
        &c,
        &tid,
        "https://graph.microsoft.com/.default offline_access",
    )
    .await;
    let rt = v["refresh_token"].as_str().unwrap();
    for (scope, aud) in [
        (
            "https://outlook.office365.com/.default",
            "https://outlook.office365.com",
        ),
        (
            "https://manage.office.com/.default",
            "https://manage.office.com",
        ),
        (
            "https://graph.microsoft.com/Application.ReadWrite.All",
            "https://graph.microsoft.com",
        ),
    ] {
        let (s, v) = post_form(
            &c,
            oauth(&sb, &tid, "token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("refresh_token", rt),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let at = claims(&sb, v["access_token"].as_str().unwrap());
        assert_eq!(at.aud, aud);
        assert_eq!(at.tid, tid);
        assert!(v["refresh_token"].is_string());
    }
    let (s, v) = post_form(
        &c,
        oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", "garbage.not.valid"),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_aad_error(&v, "invalid_grant", 70000);
    let (_, v) = post_form(
        &c,
        oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", "0.AXEA-not-a-jwt"),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_aad_error(&v, "invalid_grant", 9002313);
    let (_, v) = post_form(
        &c,
        oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "refresh_token"),
            // Azure CLI: a real public client, but not the one the token was issued to.
            ("client_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
            ("refresh_token", rt),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_aad_error(&v, "invalid_grant", 70000);
    // An expired refresh token signed by the sandbox is AADSTS700082.
    let expired = sb.signer().sign(&Claims {
        aud: hal_sandbox::login::REFRESH_AUDIENCE.into(),
        tid: tid.clone(),
        appid: CLIENT_ID.into(),
        exp: now_unix() - 10,
        ..Claims::default()
    });
    let (_, v) = post_form(
        &c,
        oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", &expired),
        ],
    )
    .await;
    assert_aad_error(&v, "invalid_grant", 700082);
    sb.shutdown().await;
}

async fn graph(
    c: &Client,
    sb: &Sandbox,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = c
        .request(
            method,
            sb.graph_url().join(&format!("v1.0/{path}")).unwrap(),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status();
    let text = r.text().await.unwrap();
    (
        s,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

#[tokio::test]
async fn client_credentials_checks_the_secret_and_carries_granted_roles() {
    let mut t = tenant(7);
    t.new_credential_delay_requests = 2;
    let tid = t.id.to_string();
    let (sb, c, _d) = start(vec![t]).await;
    let admin = sign_in(&sb, &c, &tid, "https://graph.microsoft.com/.default").await;
    let admin = admin["access_token"].as_str().unwrap();
    use reqwest::Method;
    let (s, app) = graph(
        &c,
        &sb,
        admin,
        Method::POST,
        "applications",
        Some(json!({"displayName": "hal-siem-log-collector"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let app_id = app["appId"].as_str().unwrap().to_string();
    let token_url = oauth(&sb, &tid, "token");
    let cc = |secret: String, scope: &'static str| {
        let c = c.clone();
        let url = token_url.clone();
        let app_id = app_id.clone();
        async move {
            post_form(
                &c,
                url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &app_id),
                    ("client_secret", &secret),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    // No secret yet.
    let (s, v) = cc("whatever".into(), "https://graph.microsoft.com/.default").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_aad_error(&v, "invalid_client", 7000215);

    let (s, pw) = graph(
        &c,
        &sb,
        admin,
        Method::POST,
        &format!("applications/{}/addPassword", app["id"].as_str().unwrap()),
        Some(json!({"passwordCredential": {"displayName": "hal"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{pw}");
    let secret = pw["secretText"].as_str().unwrap().to_string();

    // A new secret is not replicated for the first two requests.
    for _ in 0..2 {
        let (s, v) = cc(secret.clone(), "https://graph.microsoft.com/.default").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_aad_error(&v, "invalid_client", 7000215);
    }
    // No service principal yet.
    let (_, v) = cc(secret.clone(), "https://graph.microsoft.com/.default").await;
    assert_aad_error(&v, "invalid_client", 7000229);
    let (s, sp) = graph(
        &c,
        &sb,
        admin,
        Method::POST,
        "servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = cc(secret.clone(), "https://graph.microsoft.com/.default").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let at = claims(&sb, v["access_token"].as_str().unwrap());
    assert!(at.roles.is_empty(), "no grants yet: {:?}", at.roles);
    assert_eq!(at.oid, sp["id"].as_str().unwrap());
    assert!(at.scp.is_none());

    // Grant two Graph roles and one Management API role.
    let snap = sb.snapshot(Uuid::parse_str(&tid).unwrap());
    let graph_sp = snap.service_principal_for(GRAPH).unwrap().clone();
    let o365_sp = snap.service_principal_for(O365).unwrap().clone();
    for (res, value) in [
        (&graph_sp, "User.Read.All"),
        (&graph_sp, "AuditLog.Read.All"),
        (&o365_sp, "ActivityFeed.Read"),
    ] {
        let role = res.app_roles.iter().find(|r| r.value == value).unwrap();
        let (s, v) = graph(
            &c,
            &sb,
            admin,
            Method::POST,
            &format!("servicePrincipals/{}/appRoleAssignedTo", res.id),
            Some(json!({"principalId": sp["id"], "resourceId": res.id, "appRoleId": role.id})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, v) = cc(secret.clone(), "https://graph.microsoft.com/.default").await;
    let at = claims(&sb, v["access_token"].as_str().unwrap());
    assert_eq!(at.roles, ["AuditLog.Read.All", "User.Read.All"]);
    assert_eq!(at.aud, "https://graph.microsoft.com");
    let (_, v) = cc(secret.clone(), "https://manage.office.com/.default").await;
    let at = claims(&sb, v["access_token"].as_str().unwrap());
    assert_eq!(at.roles, ["ActivityFeed.Read"]);
    assert_eq!(at.aud, "https://manage.office.com");
    // The JSON has no roles claim at all when nothing is granted.
    let (_, v) = cc(secret.clone(), "https://outlook.office365.com/.default").await;
    let payload = v["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    use base64::Engine;
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(payload.get("roles").is_none(), "{payload}");

    // Wrong secret, unknown app, scope without /.default.
    let (s, v) = cc("x".repeat(40), "https://graph.microsoft.com/.default").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_aad_error(&v, "invalid_client", 7000215);
    let (s, v) = post_form(
        &c,
        oauth(&sb, &tid, "token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &Uuid::new_v4().to_string()),
            ("client_secret", &secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_aad_error(&v, "unauthorized_client", 700016);
    let (_, v) = post_form(
        &c,
        oauth(&sb, "organizations", "token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app_id),
            ("client_secret", &secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_aad_error(&v, "invalid_request", 50059);
    let (_, v) = cc(secret.clone(), "https://graph.microsoft.com/User.Read.All").await;
    assert_aad_error(&v, "invalid_scope", 1002012);
    sb.shutdown().await;
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    use base64::Engine;
    use sha2::Digest;
    let t = tenant(8);
    let (sb, _c, _d) = start(vec![t]).await;
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:53682/callback";
    let mut url = oauth(&sb, "t8.example.com", "authorize");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair(
            "scope",
            "https://graph.microsoft.com/.default offline_access",
        )
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let r = c.get(url.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(redirect));
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st4te");
    let code = q["code"].clone();

    let redeem = |v: &'static str| {
        let c = c.clone();
        let url = oauth(&sb, "t8.example.com", "token");
        let code = code.clone();
        async move {
            post_form(
                &c,
                url,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", CLIENT_ID),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", v),
                ],
            )
            .await
        }
    };
    let (s, v) = redeem("the-wrong-verifier-the-wrong-verifier-the-wrong-verifier").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_aad_error(&v, "invalid_grant", 501481);
    let (s, v) = redeem(verifier).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        claims(&sb, v["access_token"].as_str().unwrap()).aud,
        "https://graph.microsoft.com"
    );
    let (_, v) = redeem(verifier).await;
    assert_aad_error(&v, "invalid_grant", 54005);

    // Only loopback redirect URIs.
    let mut bad = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k, "https://evil.example/cb".into())
            } else {
                (k, v)
            }
        })
        .collect();
    bad.query_pairs_mut().clear().extend_pairs(pairs);
    let r = c.get(bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_aad_error(&r.json::<Value>().await.unwrap(), "invalid_request", 50011);
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_tenant_and_tenant_names() {
    let mut t = tenant(9);
    t.signed_in_user.roles = vec!["Application Administrator".into()];
    let (sb, c, _d) = start(vec![t]).await;
    for endpoint in ["token", "devicecode"] {
        let (s, v) = post_form(
            &c,
            oauth(&sb, "nosuchtenant.onmicrosoft.com", endpoint),
            &[
                ("client_id", CLIENT_ID),
                ("scope", "User.Read"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_aad_error(&v, "invalid_request", 90002);
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("nosuchtenant.onmicrosoft.com")
        );
    }
    let (_, v) = post_form(
        &c,
        oauth(&sb, &Uuid::from_u128(77).to_string(), "devicecode"),
        &[("client_id", CLIENT_ID)],
    )
    .await;
    assert_aad_error(&v, "invalid_request", 90002);
    for name in [
        "t9.onmicrosoft.com",
        "T9.EXAMPLE.COM",
        "organizations",
        &Uuid::from_u128(9).to_string(),
    ] {
        let v = sign_in(&sb, &c, name, "https://graph.microsoft.com/.default").await;
        let at = claims(&sb, v["access_token"].as_str().unwrap());
        assert_eq!(at.tid, Uuid::from_u128(9).to_string(), "{name}");
        assert_eq!(at.wids, ["9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"]);
        // No offline_access, no openid: no refresh token, no id token (as documented).
        assert!(
            v.get("refresh_token").is_none() && v.get("id_token").is_none(),
            "{v}"
        );
    }
    let r = c
        .get(oauth(&sb, "t9.onmicrosoft.com", "token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_aad_error(&r.json::<Value>().await.unwrap(), "invalid_request", 900561);
    // A client that exists neither among Microsoft's public clients nor in the tenant.
    let (_, v) = post_form(
        &c,
        oauth(&sb, "t9.onmicrosoft.com", "devicecode"),
        &[
            ("client_id", "00000000-0000-0000-0000-000000000001"),
            ("scope", "User.Read"),
        ],
    )
    .await;
    assert_aad_error(&v, "unauthorized_client", 700016);
    // Unsupported grant and two resources in one request.
    let (_, v) = post_form(
        &c,
        oauth(&sb, "t9.onmicrosoft.com", "token"),
        &[("grant_type", "password")],
    )
    .await;
    assert_aad_error(&v, "unsupported_grant_type", 70003);
    let (_, v) = post_form(
        &c,
        oauth(&sb, "t9.onmicrosoft.com", "devicecode"),
        &[
            ("client_id", CLIENT_ID),
            (
                "scope",
                "https://graph.microsoft.com/.default https://manage.office.com/.default",
            ),
        ],
    )
    .await;
    assert_aad_error(&v, "invalid_scope", 28000);
    sb.shutdown().await;
}

#[tokio::test]
async fn technician_in_the_wrong_tenant_gets_tokens_for_their_home_tenant() {
    let mut t = tenant(10);
    let home = Uuid::from_u128(0xabc);
    t.signed_in_user.home_tenant = Some(home);
    let (sb, c, _d) = start(vec![t]).await;
    let v = sign_in(
        &sb,
        &c,
        "t10.onmicrosoft.com",
        "https://graph.microsoft.com/.default",
    )
    .await;
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(claims(&sb, token).tid, home.to_string());
    let r = c
        .get(sb.graph_url().join("v1.0/organization").unwrap())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let org: Value = r.json().await.unwrap();
    assert_eq!(org["value"][0]["id"], home.to_string());
    assert_ne!(org["value"][0]["displayName"], "Tenant 10");
    sb.shutdown().await;
}

#[tokio::test]
async fn an_msps_multi_tenant_client_app_signs_in_to_customer_tenants() {
    let msp = tenant(11);
    let customer = tenant(12);
    let (sb, c, _d) = start(vec![msp, customer]).await;
    let admin = sb
        .user_access_token(Uuid::from_u128(11), "https://graph.microsoft.com/.default")
        .unwrap();
    let mut ids = vec![];
    for audience in ["AzureADMultipleOrgs", "AzureADMyOrg"] {
        let v: Value = c
            .post(sb.graph_url().join("v1.0/applications").unwrap())
            .bearer_auth(&admin)
            .json(&json!({"displayName": format!("msp-{audience}"), "signInAudience": audience}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(v["appId"].as_str().unwrap().to_string());
    }
    let (multi, single) = (&ids[0], &ids[1]);
    for (client, tenant_name, ok) in [
        (multi, "t12.onmicrosoft.com", true),
        (single, "t11.onmicrosoft.com", true),
        (single, "t12.onmicrosoft.com", false),
    ] {
        let (s, v) = post_form(
            &c,
            oauth(&sb, tenant_name, "devicecode"),
            &[("client_id", client), ("scope", "User.Read")],
        )
        .await;
        if ok {
            assert_eq!(s, StatusCode::OK, "{client} in {tenant_name}: {v}");
        } else {
            assert_aad_error(&v, "unauthorized_client", 700016);
        }
    }
    sb.shutdown().await;
}
