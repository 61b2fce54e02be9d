//! The Graph client against the sandbox's Microsoft Graph over HTTPS: the survey batch (with
//! `/me/transitiveMemberOf`), batches over 20 items, throttled items retried, replication
//! delay, errors with code/message/request-id, and the app management policy read.

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use hal_onboard::cloud::{Cloud, Endpoints};
use hal_onboard::microsoft::graph::directory::{DirectoryApi, SurveyQuery};
use hal_onboard::microsoft::graph::meter::RequestMeter;
use hal_onboard::microsoft::graph::{GraphClient, GraphRequest, RetryPolicy};
use hal_sandbox::token::{Claims, now_unix};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug)]
struct Fixed(String);

#[async_trait::async_trait]
impl TokenCredential for Fixed {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _o: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com")],
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    t
}

async fn client(t: TenantScenario) -> (Sandbox, tempfile::TempDir, GraphClient) {
    let id = t.id;
    let user = t.signed_in_user.id;
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
    let now = now_unix();
    // A delegated Global Administrator's token, as the sandbox's sign-in would make it.
    let token = sb.signer().sign(&Claims {
        aud: "https://graph.microsoft.com".into(),
        iss: "sandbox".into(),
        tid: id.to_string(),
        oid: user.to_string(),
        appid: "14d82eec-204b-4c2f-b7e8-296a70dab67e".into(),
        upn: Some(format!("admin@t{}.onmicrosoft.com", id.as_u128())),
        scp: Some(
            "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All Directory.Read.All".into(),
        ),
        wids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Default::default()
    });
    let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
    let e = Endpoints::new(Cloud::Global, Some(&sb.login_url()), Some(&sb.graph_url()));
    let g = GraphClient::new(
        http,
        e,
        Arc::new(Fixed(token)),
        vec!["https://graph.microsoft.com/.default".into()],
        RetryPolicy::default().scaled(0.01),
        RequestMeter::new(),
    );
    (sb, dir, g)
}

#[tokio::test]
async fn the_survey_reads_everything_in_one_request() {
    let (_sb, _d, g) = client(tenant(1)).await;
    let s = g
        .survey(&SurveyQuery {
            app_name: "hal-siem-log-collector".into(),
            member_of: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.organization.id, Uuid::from_u128(1).to_string());
    assert_eq!(s.organization.default_domain(), Some("t1.onmicrosoft.com"));
    assert!(
        s.role_template_ids
            .unwrap()
            .contains(&"62e90394-69f5-4237-9190-012177145e10".to_string())
    );
    assert!(s.graph_sp.unwrap().app_roles.len() >= 12);
    assert!(s.o365_sp.is_some());
    assert!(s.apps_by_name.is_empty());
    assert_eq!(g.meter().stats().requests, 1);
    assert_eq!(g.meter().stats().round_trips, 1);
}

#[tokio::test]
async fn batches_over_twenty_are_split_and_throttled_items_retried() {
    let mut t = tenant(2);
    t.throttle_every = 3;
    let (sb, _d, g) = client(t).await;
    let reqs: Vec<GraphRequest> = (0..25).map(|_| GraphRequest::get("organization")).collect();
    let res = g.batch(&reqs).await.unwrap();
    assert_eq!(res.len(), 25);
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    let st = g.meter().stats();
    assert_eq!(st.requests, 2, "two batches");
    assert!(st.throttle_retries >= 1, "{st:?}");
    assert!(sb.requests().iter().all(|r| r.status != 400));
}

#[tokio::test]
async fn replication_delay_is_waited_out_and_counted_apart() {
    let mut t = tenant(3);
    t.replication_delay_requests = 2;
    let (_sb, _d, g) = client(t).await;
    let app = g
        .create_application(&json!({"displayName": "x", "signInAudience": "AzureADMyOrg"}))
        .await
        .unwrap();
    let sp = g.create_service_principal(&app.app_id).await.unwrap();
    assert_eq!(sp.app_id, app.app_id);
    let st = g.meter().stats();
    assert_eq!(st.requests, 2);
    assert_eq!(st.replication_retries, 2, "{st:?}");
    assert_eq!(st.writes, 2);
    // Creating it again finds the existing one.
    let again = g.create_service_principal(&app.app_id).await.unwrap();
    assert_eq!(again.id, sp.id);
}

#[tokio::test]
async fn errors_carry_code_message_and_request_id() {
    let (_sb, _d, g) = client(tenant(4)).await;
    let e = g
        .get("applications/00000000-0000-0000-0000-0000000000aa")
        .await
        .unwrap_err();
    let s = e.to_string();
    assert!(s.contains("Request_ResourceNotFound"), "{s}");
    assert!(s.contains("request-id "), "{s}");
    assert!(!s.contains("request-id none"), "{s}");
    assert_eq!(e.status(), Some(404));
}

#[tokio::test]
async fn the_policy_says_the_longest_secret_lifetime() {
    let mut t = tenant(5);
    t.secret_max_lifetime_days = Some(120);
    let (_sb, _d, g) = client(t).await;
    assert_eq!(g.max_secret_lifetime_days().await.unwrap(), Some(120));
    let app = g
        .create_application(&json!({"displayName": "y"}))
        .await
        .unwrap();
    let too_long = time::OffsetDateTime::now_utc() + time::Duration::days(200);
    let e = g.add_password(&app.id, "hal", too_long).await.unwrap_err();
    assert_eq!(e.code(), Some("CredentialInvalidLifetimeAsPerAppPolicy"));
    let ok = time::OffsetDateTime::now_utc() + time::Duration::days(100);
    let s = g.add_password(&app.id, "hal", ok).await.unwrap();
    assert!(
        !format!("{s:?}").contains(s.text.expose()),
        "Debug hides the secret"
    );
}

/// A 429 on one item of a `$batch` resends that item alone (the sandbox counts every item it
/// answers: five, then the throttled one, twice), each time after its own Retry-After.
#[tokio::test]
async fn a_throttled_batch_item_is_resent_alone() {
    let mut t = tenant(6);
    t.throttle_every = 3;
    let id = t.id;
    let (sb, _d, g) = client(t).await;
    let reqs: Vec<GraphRequest> = (0..5).map(|_| GraphRequest::get("organization")).collect();
    let res = g.batch(&reqs).await.unwrap();
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    assert_eq!(
        sb.snapshot(id).graph_requests,
        7,
        "5 items, then item 3 alone twice"
    );
    assert_eq!(g.meter().stats().throttle_retries, 2);
}

/// A 429 is waited out for every method, a POST included, and a whole `$batch` answered 429
/// (twice in a row here) is sent again; throttling that outlasts the budget says so.
#[tokio::test]
async fn throttling_is_waited_out_for_every_method_within_a_budget() {
    let mut t = tenant(7);
    t.throttle_every = 2;
    t.throttle_batch_every = 1;
    let (sb, _d, g) = client(t).await;
    let app = g
        .create_application(&json!({"displayName": "z"}))
        .await
        .unwrap();
    g.update_application(&app.id, &json!({"notes": "n"}))
        .await
        .unwrap();
    assert!(sb.requests().iter().filter(|r| r.status == 429).count() >= 1);
    // Every envelope throttled: the budget (3 s at this scale) runs out, and says so.
    let reqs: Vec<GraphRequest> = (0..3).map(|_| GraphRequest::get("organization")).collect();
    let started = std::time::Instant::now();
    let e = g.batch(&reqs).await.unwrap_err();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "Retry-After obeyed"
    );
    let s = e.to_string();
    assert!(
        s.contains("kept throttling POST $batch: waited 3 s of the 3 s"),
        "{s}"
    );
    assert!(e.hint().unwrap().contains("busy"), "{e:?}");
}

/// A Graph client for tenant `t` of a running sandbox (its Global Administrator's token).
fn client_for(sb: &Sandbox, t: &TenantScenario) -> GraphClient {
    let now = now_unix();
    let token = sb.signer().sign(&Claims {
        aud: "https://graph.microsoft.com".into(),
        iss: "sandbox".into(),
        tid: t.id.to_string(),
        oid: t.signed_in_user.id.to_string(),
        appid: "14d82eec-204b-4c2f-b7e8-296a70dab67e".into(),
        upn: Some(t.signed_in_user.upn.clone()),
        scp: Some("Directory.Read.All".into()),
        wids: vec!["62e90394-69f5-4237-9190-012177145e10".into()],
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Default::default()
    });
    let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
    let e = Endpoints::new(Cloud::Global, Some(&sb.login_url()), Some(&sb.graph_url()));
    GraphClient::new(
        http,
        e,
        Arc::new(Fixed(token)),
        vec!["https://graph.microsoft.com/.default".into()],
        RetryPolicy::default().scaled(0.01),
        RequestMeter::new(),
    )
}

/// `tenant add --partner --jobs N`: a 429's Retry-After answered to one customer holds back
/// the next request of every client sharing the gate, not only the throttled one's.
#[tokio::test]
async fn retry_after_is_shared_through_the_gate() {
    use hal_onboard::microsoft::graph::gate::ThrottleGate;
    let mut a = tenant(11);
    a.throttle_every = 2;
    a.throttle_retry_after = 2;
    let b = tenant(12);
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants: vec![a.clone(), b.clone()],
            ..Scenario::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    for shared in [false, true] {
        sb.with_tenant(a.id, |t| t.graph_requests = 0);
        let gate = Arc::new(ThrottleGate::new());
        let (mut ga, mut gb) = (client_for(&sb, &a), client_for(&sb, &b));
        if shared {
            ga = ga.with_throttle_gate(gate.clone());
            gb = gb.with_throttle_gate(gate.clone());
        }
        ga.get("organization").await.unwrap();
        // A's second request is throttled for 2 s; B asks while that runs.
        let throttled = tokio::spawn(async move { ga.get("organization").await });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !sb
            .requests()
            .iter()
            .any(|r| r.status == 429 && r.tenant == Some(a.id))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "A was never throttled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let t = std::time::Instant::now();
        gb.get("organization").await.unwrap();
        let waited = t.elapsed();
        throttled.await.unwrap().unwrap();
        if shared {
            assert!(
                waited >= std::time::Duration::from_millis(1500),
                "{waited:?}"
            );
            assert_eq!(gate.held_back(), 1);
        } else {
            assert!(
                waited < std::time::Duration::from_millis(1000),
                "{waited:?}"
            );
        }
        sb.clear_requests();
    }
}
