//! `hal-onboard tenant remove` end to end: forgetting locally changes nothing in the tenant;
//! `--delete-app` deletes only an app that is provably ours.

use crate::support::common;

use common::{APP, Env, assert_ok, stderr, tenant};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_locally_changes_nothing_in_the_tenant() {
    let env = Env::start(tenant(0x7171_0001)).await;
    // Kept on purpose: a finished tenant's sign-in is otherwise forgotten at once.
    let d = env.domain();
    assert_ok(
        &env.run(&[
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--keep-sign-in",
        ])
        .await,
    );
    let before = env.sb.snapshot(env.id);
    env.sb.clear_requests();
    let d = env.domain();
    let refresh = hal_onboard::secrets::account::graph_refresh_token(env.id);
    let keyring = || {
        use hal_onboard::secrets::SecretStore;
        hal_onboard::secrets::KeyringStore::probe()
            .unwrap()
            .get(&refresh)
            .unwrap()
    };
    if env.keyring {
        assert!(keyring().is_some(), "tenant add kept the sign-in");
    }

    let refused = env.run(&["tenant", "remove", &d]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    assert!(!env.record().is_null(), "still recorded");

    let out = env.run(&["tenant", "remove", &d, "--yes"]).await;
    assert_ok(&out);
    assert!(env.record().is_null(), "the record is gone");
    if env.keyring {
        assert!(keyring().is_none(), "its keyring entries are gone");
    }
    assert!(!env.state_file().contains(&env.id.to_string()));
    assert_eq!(env.sb.snapshot(env.id).applications, before.applications);
    assert!(
        env.sb
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/graph/")),
        "no Graph request"
    );
    let err = stderr(&out);
    assert!(err.contains("Nothing in the tenant changes"), "{err}");
    assert!(err.contains("MSP portal"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_app_deletes_our_app_and_forgets_the_tenant() {
    let env = Env::start(tenant(0x7171_0002)).await;
    assert_ok(&env.add().await);
    let d = env.domain();
    let out = env
        .run(&["tenant", "remove", &d, "--delete-app", "--yes", "--json"])
        .await;
    assert_ok(&out);
    let snap = env.sb.snapshot(env.id);
    assert!(
        snap.applications.iter().all(|a| a.display_name != APP),
        "the app is gone"
    );
    assert!(env.record().is_null());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["appDeleted"], true);
    assert!(
        stderr(&out).contains("Hal stops receiving"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_app_of_the_same_name_is_not_deleted() {
    let env = Env::start(tenant(0x7171_0003)).await;
    assert_ok(&env.add().await);
    // Ours was deleted by hand and someone made another app of that name.
    env.sb.with_tenant(env.id, |t| {
        t.applications.clear();
        t.applications.push(hal_sandbox::state::Application {
            id: Uuid::from_u128(0x7e_0abc),
            app_id: Uuid::from_u128(0x7e_0def),
            display_name: APP.into(),
            description: None,
            sign_in_audience: "AzureADMyOrg".into(),
            tags: vec![],
            notes: Some("someone else's".into()),
            publisher_domain: "example.com".into(),
            created_date_time: "2024-01-01T00:00:00Z".into(),
            deleted_date_time: None,
            required_resource_access: vec![],
            password_credentials: vec![],
            key_credentials: vec![],
            extra: Default::default(),
        });
    });
    let d = env.domain();
    let out = env
        .run(&["tenant", "remove", &d, "--delete-app", "--yes"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not made by hal-onboard"), "{err}");
    assert!(err.contains("nothing was deleted"), "{err}");
    assert_eq!(env.sb.snapshot(env.id).applications.len(), 1, "still there");
    assert!(!env.record().is_null(), "not forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_app_without_our_tag_is_not_deleted() {
    let env = Env::start(tenant(0x7171_0004)).await;
    assert_ok(&env.add().await);
    env.sb.with_tenant(env.id, |t| {
        for a in &mut t.applications {
            a.tags.clear();
        }
    });
    let d = env.domain();
    let out = env
        .run(&["tenant", "remove", &d, "--delete-app", "--yes"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lacks hal-onboard's tag"),
        "{}",
        stderr(&out)
    );
    assert!(
        env.sb
            .snapshot(env.id)
            .applications
            .iter()
            .any(|a| a.display_name == APP)
    );
    assert!(!env.record().is_null());
}
