//! `hal-onboard secret rotate` end to end: the real binary against the sandbox over HTTPS.
//! The new secret must reach the portal and work before the old one leaves the app; a portal
//! failure keeps the old one, and running the command again finishes the rotation.

use crate::support::common;

use common::{Env, assert_not_leaked, assert_ok, stderr, stdout, tenant};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

fn recorded_key(env: &Env) -> String {
    env.record()["secret"]["keyId"]
        .as_str()
        .expect("a recorded secret")
        .to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_replaces_the_secret_and_the_portal_gets_a_working_one() {
    let env = Env::start(tenant(0x7070_0001)).await;
    let add = env.add().await;
    assert_ok(&add);
    let old = recorded_key(&env);
    assert_eq!(env.app_keys(), vec![old.clone()]);

    let out = env.rotate(&[]).await;
    assert_ok(&out);
    let new = recorded_key(&env);
    assert_ne!(new, old, "the store records the new secret");
    assert_eq!(env.app_keys(), vec![new.clone()], "exactly the new secret");
    let got = env
        .sb
        .portal()
        .received(&env.id.to_string())
        .expect("the portal has the tenant");
    assert_eq!(got.submission.secret_key_id.to_lowercase(), new);
    assert!(
        env.portal_credentials_work().await,
        "the portal's secret works"
    );
    assert_eq!(
        env.record()["portal"]["secretKeyId"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        new
    );
    let j = json(&out);
    assert_eq!(
        j["newSecret"]["keyId"].as_str().unwrap().to_lowercase(),
        new
    );
    // `tenant add` registered the tenant, so the portal took the new secret as an update.
    assert_eq!(j["portal"], "updated");
    assert!(
        stderr(&out).contains("add a new client secret"),
        "{}",
        stderr(&out)
    );
    assert_not_leaked(&env, &got.submission.client_secret, &[&add, &out]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_down_keeps_the_old_secret_and_a_rerun_finishes() {
    let env = Env::start(tenant(0x7070_0002)).await;
    assert_ok(&env.add().await);
    // A first rotation hands a secret to the portal: that is the one Hal uses.
    assert_ok(&env.rotate(&[]).await);
    let in_use = recorded_key(&env);
    let in_use_value = env
        .sb
        .portal()
        .received(&env.id.to_string())
        .unwrap()
        .submission
        .client_secret;

    env.sb.portal().fail_next(100);
    let failed = env.rotate(&[]).await;
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let err = stderr(&failed);
    assert!(
        err.contains("did not accept the new client secret"),
        "{err}"
    );
    assert!(err.contains("Hal keeps using it"), "{err}");
    assert!(
        err.contains(&format!("hal-onboard secret rotate {}", env.domain())),
        "{err}"
    );
    let pending = recorded_key(&env);
    assert_ne!(pending, in_use);
    let mut keys = env.app_keys();
    keys.sort();
    let mut want = vec![in_use.clone(), pending.clone()];
    want.sort();
    assert_eq!(keys, want, "the old secret stays next to the new one");
    let got = env.sb.portal().received(&env.id.to_string()).unwrap();
    assert_eq!(got.submission.secret_key_id.to_lowercase(), in_use);
    assert!(
        env.portal_credentials_work().await,
        "Hal's secret still works"
    );
    assert_eq!(json(&failed)["portal"], "failed");
    if !env.keyring {
        assert!(err.contains("no OS keyring"), "{err}");
    }

    env.sb.portal().fail_next(0);
    let resumed = env.rotate(&[]).await;
    assert_ok(&resumed);
    let last = recorded_key(&env);
    assert_eq!(
        env.app_keys(),
        vec![last.clone()],
        "only the newest is left"
    );
    let got = env.sb.portal().received(&env.id.to_string()).unwrap();
    assert_eq!(got.submission.secret_key_id.to_lowercase(), last);
    assert!(env.portal_credentials_work().await);
    let j = json(&resumed);
    if env.keyring {
        // The keyring kept the pending secret: it was sent, no third one made.
        assert_eq!(last, pending);
        assert_eq!(j["resumed"], true);
    } else {
        // Without a keyring the pending secret's value died with the failed run: it was
        // replaced, and the old one still only went once the portal had the replacement.
        assert_ne!(last, pending);
        assert_eq!(j["resumed"], false);
    }
    assert_not_leaked(&env, &in_use_value, &[&failed, &resumed]);
    assert_not_leaked(&env, &got.submission.client_secret, &[&failed, &resumed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_portal_it_refuses_unless_no_portal_and_then_keeps_the_old_secret() {
    let mut env = Env::start(tenant(0x7070_0003)).await;
    assert_ok(&env.add().await);
    // The portal holds a secret (Hal uses it), then its settings are gone.
    assert_ok(&env.rotate(&[]).await);
    let old = recorded_key(&env);
    let received = env.sb.portal().received(&env.id.to_string()).unwrap();
    env.no_portal_env = true;

    let refused = env.rotate(&[]).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("hal-onboard portal login"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("--no-portal"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(env.app_keys(), vec![old.clone()], "nothing changed");

    let out = env.rotate(&["--no-portal", "--secret-months", "6"]).await;
    if !env.keyring {
        // Kept nowhere: refused (see the test below).
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        return;
    }
    assert_ok(&out);
    let new = recorded_key(&env);
    assert_ne!(new, old);
    assert_eq!(env.app_keys().len(), 2, "the old secret is kept");
    assert!(
        stderr(&out).contains("stays on the app"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["portal"], "notSent");
    let now = env.sb.portal().received(&env.id.to_string()).unwrap();
    assert_eq!(
        now.submission.secret_key_id,
        received.submission.secret_key_id
    );
    assert!(
        env.portal_credentials_work().await,
        "Hal's secret still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_without_yes_names_the_flag_and_changes_nothing() {
    let env = Env::start(tenant(0x7070_0004)).await;
    assert_ok(&env.add().await);
    let old = recorded_key(&env);
    let d = env.domain();
    let out = env.run(&["secret", "rotate", &d]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(env.app_keys(), vec![old]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_to_another_tenant_rotates_nothing() {
    let other = tenant(0x7070_0099);
    let other_id = other.id;
    let env = Env::start_with(tenant(0x7070_0005), vec![other]).await;
    assert_ok(&env.add().await);
    let old = recorded_key(&env);
    // The technician now signs in as someone whose tokens are for another tenant.
    env.sb.with_tenant(env.id, |t| {
        t.scenario.signed_in_user.home_tenant = Some(other_id);
    });
    if env.keyring {
        // Forget the kept sign-in so this run signs in afresh (as that other person).
        use hal_onboard::secrets::SecretStore;
        hal_onboard::secrets::KeyringStore::probe()
            .unwrap()
            .delete(&hal_onboard::secrets::account::graph_refresh_token(env.id))
            .unwrap();
    }
    env.sb.clear_requests();
    let out = env.rotate(&[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("wrong tenant"), "{}", stderr(&out));
    assert_eq!(env.app_keys(), vec![old.clone()], "nothing changed");
    assert_eq!(recorded_key(&env), old);
    let held = env.sb.portal().received(&env.id.to_string());
    assert_eq!(
        held.map(|r| r.submission.secret_key_id.to_lowercase()),
        Some(old.clone()),
        "the portal still holds the secret from tenant add"
    );
    let writes = env
        .sb
        .requests()
        .into_iter()
        .filter(|r| {
            r.path.starts_with("/graph/") && r.method != "GET" && !r.path.ends_with("$batch")
        })
        .count();
    assert_eq!(writes, 0, "no Graph write");
}

/// Without a keyring, `--no-portal` would make a secret that is kept nowhere (rotation never
/// shows one): refused before anything changes (it used to add it and say its value is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_portal_without_a_keyring_adds_no_secret() {
    let mut env = Env::start(tenant(0x7070_0005)).await;
    env.keyring = false;
    assert_ok(&env.add().await);
    let keys = env.app_keys();
    let out = env.rotate(&["--no-portal"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("would be kept nowhere") && err.contains("Nothing was changed"),
        "{err}"
    );
    assert_eq!(env.app_keys(), keys, "no secret added");
}
