//! Which app registration `tenant add` adopts, and which secrets it may remove (issue 10,
//! items 1 and 2), against the sandbox cloud and portal.

use crate::support::common;

use common::{APP, Env, assert_ok, stderr, stdout, tenant};
use uuid::Uuid;

/// A member user's app of our name, with hal-onboard's tag, multi-tenant, and a secret of
/// their own (made from `template`, an app of another tenant). Returns its appId and the
/// secret's keyId and text.
fn plant(env: &Env, template: hal_sandbox::state::Application) -> (String, String, String) {
    let app_id = Uuid::new_v4();
    let key = Uuid::new_v4();
    let object_id = Uuid::new_v4();
    let text = "planted~secret-value-0123456789".to_string();
    env.sb.with_tenant(env.id, |t| {
        let mut app = template;
        app.id = object_id;
        app.app_id = app_id;
        app.display_name = APP.into();
        app.sign_in_audience = "AzureADMultipleOrgs".into();
        app.tags = vec!["HalSiem".into(), "hal-onboard".into()];
        app.required_resource_access.clear();
        app.password_credentials.truncate(1);
        app.password_credentials[0].key_id = key;
        app.password_credentials[0].display_name = Some("hal".into());
        t.applications.push(app);
        t.app_owners.insert(
            object_id,
            vec![hal_sandbox::state::Owner {
                id: Uuid::new_v4(),
                user_principal_name: format!("mallory@{}", t.scenario.default_domain()),
                display_name: "Mallory Member".into(),
            }],
        );
        t.secrets.insert(
            key,
            hal_sandbox::state::SecretState {
                text: text.clone(),
                failures_left: 0,
            },
        );
    });
    (app_id.to_string(), key.to_string(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_app_gets_nothing_and_adopt_refuses_it_with_the_reason() {
    // A template app to copy from: onboard a scratch tenant first.
    let env = Env::start(tenant(0xad07_0001)).await;
    let scratch = Env::start(tenant(0xad07_0002)).await;
    assert_ok(&scratch.add().await);
    let template = scratch
        .sb
        .with_tenant(scratch.id, |t| t.applications[0].clone());
    let (planted, key, text) = plant(&env, template);

    let out = env.add().await;
    assert_ok(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains(&planted) && all.contains("not ours"), "{all}");
    assert!(all.contains("mallory@"), "its owners are shown: {all}");
    assert!(all.contains("AzureADMultipleOrgs"), "{all}");
    assert!(all.contains(&key), "its credentials are shown: {all}");

    let snap = env.sb.snapshot(env.id);
    let p = snap
        .applications
        .iter()
        .find(|a| a.app_id.to_string() == planted)
        .unwrap();
    assert!(p.required_resource_access.is_empty(), "not patched");
    assert_eq!(p.password_credentials.len(), 1, "no secret added to it");
    assert_eq!(p.password_credentials[0].key_id.to_string(), key);
    let planted_sp: Vec<_> = snap
        .service_principals
        .iter()
        .filter(|s| s.app_id.to_string().eq(&planted))
        .map(|s| s.id)
        .collect();
    assert!(
        snap.app_role_assignments
            .iter()
            .all(|a| !planted_sp.contains(&a.principal_id)),
        "nothing granted to it"
    );
    // The planted secret gets a Graph token without a single role.
    let http = hal_onboard::http::build_client(Some(&env.sb.ca_path())).unwrap();
    let url = env
        .sb
        .login_url()
        .join(&format!("{}/oauth2/v2.0/token", env.id))
        .unwrap();
    let r: serde_json::Value = http
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", planted.as_str()),
            ("client_secret", text.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if let Some(tok) = r["access_token"].as_str() {
        let claims = hal_sandbox::contract::jwt_claims(tok).unwrap();
        assert!(
            claims
                .get("roles")
                .and_then(|v| v.as_array())
                .is_none_or(|a| a.is_empty()),
            "{claims:?}"
        );
    }
    let ours = env.record()["app"]["appId"].as_str().unwrap().to_string();
    assert_ne!(ours, planted, "our own app was made");
    assert!(env.portal_credentials_work().await);

    // --adopt: refused with the reason, whatever --yes says.
    let d = env.domain();
    let out = env
        .run(&[
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--adopt",
            &planted,
        ])
        .await;
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("multi-tenant"), "{}", stderr(&out));
    // From a fresh home too (nothing recorded, the portal holds our app, not that one).
    std::fs::remove_dir_all(env.home()).unwrap();
    let out = env
        .run(&[
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--adopt",
            &planted,
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("multi-tenant"), "{}", stderr(&out));
    let after = env.sb.snapshot(env.id);
    let p2 = after
        .applications
        .iter()
        .find(|a| a.app_id.to_string() == planted)
        .unwrap();
    assert!(p2.required_resource_access.is_empty());
    assert_eq!(p2.password_credentials.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_home_never_removes_the_secret_the_portal_holds() {
    let env = Env::start(tenant(0xad07_0003)).await;
    assert_ok(&env.add().await);
    let held = env.sb.portal().received(&env.id.to_string()).unwrap();
    let key = held.submission.secret_key_id.to_lowercase();

    // Home B: a second technician, same tenant, same portal, nothing recorded.
    std::fs::remove_dir_all(env.home()).unwrap();
    let out = env.add().await;
    assert_ok(&out);
    assert!(
        env.app_keys().contains(&key),
        "the portal's secret is still on the app: {:?}",
        env.app_keys()
    );
    assert!(
        env.portal_credentials_work().await,
        "and still gets a token"
    );
    let now = env.sb.portal().received(&env.id.to_string()).unwrap();
    assert_eq!(now.submission.secret_key_id.to_lowercase(), key);
    assert_eq!(
        env.record()["app"]["appId"],
        held.submission.client_id.as_str(),
        "the portal's app is adopted"
    );
}
