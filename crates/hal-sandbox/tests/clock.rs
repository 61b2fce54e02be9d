//! The sandbox's clock: a test advances it instead of waiting an hour for a token to expire.

use std::time::Duration;

use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

#[tokio::test]
async fn advancing_the_clock_expires_tokens_and_device_codes_without_waiting() {
    let id = Uuid::from_u128(77);
    let mut t = TenantScenario {
        id,
        display_name: "Clockwork".into(),
        domains: vec!["clockwork.onmicrosoft.com".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = "admin@clockwork.onmicrosoft.com".into();
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
    let token = sb
        .user_access_token(id, "https://graph.microsoft.com/.default")
        .unwrap();
    let org = sb.graph_url().join("v1.0/organization").unwrap();
    let get = |tok: String| c.get(org.clone()).bearer_auth(tok).send();
    assert_eq!(get(token.clone()).await.unwrap().status(), StatusCode::OK);

    // A device code asked for now.
    let dc: Value = c
        .post(
            sb.login_url()
                .join(&format!("{id}/oauth2/v2.0/devicecode"))
                .unwrap(),
        )
        .form(&[
            ("client_id", "14d82eec-204b-4c2f-b7e8-296a70dab67e"),
            (
                "scope",
                "https://graph.microsoft.com/.default offline_access",
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    sb.advance(Duration::from_secs(2 * 3600));

    // The hour-long access token has run out: Graph says so as Microsoft does.
    let r = get(token).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "InvalidAuthenticationToken",
        "{body}"
    );
    // The device code (15 minutes) has expired too.
    let r = c
        .post(
            sb.login_url()
                .join(&format!("{id}/oauth2/v2.0/token"))
                .unwrap(),
        )
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "14d82eec-204b-4c2f-b7e8-296a70dab67e"),
            ("device_code", dc["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "expired_token", "{body}");
    // A token issued now is issued by the advanced clock, and works.
    let fresh = sb
        .user_access_token(id, "https://graph.microsoft.com/.default")
        .unwrap();
    assert_eq!(get(fresh).await.unwrap().status(), StatusCode::OK);
}
