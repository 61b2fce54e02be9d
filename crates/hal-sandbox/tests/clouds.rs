//! Tenants in each Microsoft cloud: the OpenID configuration names the cloud as Microsoft's
//! does, and the Office 365 Management Activity API (`/manage`) answers
//! `subscriptions/list` only to a token for the tenant's own cloud's Management root that
//! carries ActivityFeed.Read; Graph's directoryAudits needs AuditLog.Read.All and
//! Directory.Read.All.

use hal_sandbox::scenario::TenantCloud;
use hal_sandbox::token::Claims;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use uuid::Uuid;

fn tenant(n: u128, cloud: TenantCloud) -> TenantScenario {
    TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        cloud,
        domains: vec![format!("t{n}.onmicrosoft.com")],
        ..TenantScenario::default()
    }
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
    let c = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
    (sb, c, dir)
}

fn app_token(sb: &Sandbox, tid: Uuid, aud: &str, roles: &[&str]) -> String {
    let now = sb.signer().clock().now_unix();
    sb.signer().sign(&Claims {
        aud: aud.into(),
        iss: format!("https://sts.windows.net/{tid}/"),
        tid: tid.to_string(),
        oid: Uuid::new_v4().to_string(),
        appid: Uuid::new_v4().to_string(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Claims::default()
    })
}

#[tokio::test]
async fn each_clouds_openid_configuration_names_it() {
    let clouds = [
        (TenantCloud::Global, "microsoftonline.com", Some("NA"), None),
        (
            TenantCloud::Gcc,
            "microsoftonline.com",
            Some("NA"),
            Some("GCC"),
        ),
        (
            TenantCloud::Usgov,
            "microsoftonline.us",
            Some("USGov"),
            Some("DODCON"),
        ),
        (
            TenantCloud::UsgovDod,
            "microsoftonline.us",
            Some("USGov"),
            Some("DOD"),
        ),
        (
            TenantCloud::China,
            "partner.microsoftonline.cn",
            Some("AS"),
            None,
        ),
    ];
    let tenants = clouds
        .iter()
        .enumerate()
        .map(|(i, c)| tenant(i as u128 + 1, c.0))
        .collect();
    let (sb, c, _dir) = start(tenants).await;
    for (i, (_, instance, region, sub)) in clouds.iter().enumerate() {
        let url = sb
            .login_url()
            .join(&format!(
                "t{}.onmicrosoft.com/v2.0/.well-known/openid-configuration",
                i + 1
            ))
            .unwrap();
        let doc: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["cloud_instance_name"], *instance, "{doc}");
        assert_eq!(doc["tenant_region_scope"].as_str(), *region, "{doc}");
        assert_eq!(doc["tenant_region_sub_scope"].as_str(), *sub, "{doc}");
        assert!(
            doc["issuer"]
                .as_str()
                .unwrap()
                .contains(&Uuid::from_u128(i as u128 + 1).to_string())
        );
    }
    let r = c
        .get(
            sb.login_url()
                .join("nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_tenant");
    assert!(e["error_codes"].as_array().unwrap().contains(&90002.into()));
}

#[tokio::test]
async fn subscriptions_list_wants_the_tenants_own_management_audience_and_activity_feed_read() {
    let gcc = Uuid::from_u128(7);
    let other = Uuid::from_u128(8);
    let (sb, c, _dir) = start(vec![
        tenant(7, TenantCloud::Gcc),
        tenant(8, TenantCloud::Global),
    ])
    .await;
    let list = |tid: Uuid| {
        sb.manage_url()
            .join(&format!("api/v1.0/{tid}/activity/feed/subscriptions/list"))
            .unwrap()
    };
    let get = |tid: Uuid, token: String| {
        let c = c.clone();
        let url = list(tid);
        async move {
            let r = c.get(url).bearer_auth(token).send().await.unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let roles = [
        "ActivityFeed.Read",
        "ActivityFeed.ReadDlp",
        "ServiceHealth.Read",
    ];
    let (s, v) = get(
        gcc,
        app_token(&sb, gcc, "https://manage-gcc.office.com", &roles),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, Value::Array(vec![]), "no subscription started yet");
    // The commercial root's audience is not GCC's.
    let (s, v) = get(
        gcc,
        app_token(&sb, gcc, "https://manage.office.com", &roles),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // No ActivityFeed.Read: AF10001.
    let (s, v) = get(
        gcc,
        app_token(&sb, gcc, "https://manage-gcc.office.com", &[]),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "AF10001", "{v}");
    // Another tenant's path: AF20010.
    let (s, v) = get(
        other,
        app_token(&sb, gcc, "https://manage-gcc.office.com", &roles),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "AF20010", "{v}");
    // A Graph token is not a Management token.
    let (s, _) = get(
        gcc,
        app_token(&sb, gcc, "https://graph.microsoft.com", &roles),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The commercial tenant's root is the commercial one.
    let (s, v) = get(
        other,
        app_token(&sb, other, "https://manage.office.com", &roles),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn directory_audits_need_audit_log_and_directory_read() {
    let tid = Uuid::from_u128(9);
    let (sb, c, _dir) = start(vec![tenant(9, TenantCloud::Global)]).await;
    let url = sb
        .graph_url()
        .join("v1.0/auditLogs/directoryAudits?$top=1")
        .unwrap();
    let get = |roles: &'static [&'static str]| {
        let c = c.clone();
        let url = url.clone();
        let token = app_token(&sb, tid, "https://graph.microsoft.com", roles);
        async move {
            let r = c.get(url).bearer_auth(token).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = get(&["AuditLog.Read.All", "Directory.Read.All"]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["value"].is_array());
    let (s, v) = get(&["AuditLog.Read.All"]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "Authorization_RequestDenied");
    let (s, _) = get(&["Directory.Read.All"]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[test]
fn the_documented_scenario_has_a_tenant_in_every_cloud() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scenarios/clouds.json");
    let s = Scenario::from_file(&path).unwrap();
    let clouds: Vec<TenantCloud> = s.tenants.iter().map(|t| t.cloud).collect();
    for c in [
        TenantCloud::Global,
        TenantCloud::Gcc,
        TenantCloud::Usgov,
        TenantCloud::UsgovDod,
        TenantCloud::China,
    ] {
        assert!(clouds.contains(&c), "{c:?}");
    }
}
