//! Issue 10 (8): a Global Administrator's refresh tokens stay in the keyring only while the
//! tenant has work pending, unless `--keep-sign-in` asks to keep them, which is recorded and
//! shown by `list`. The keyring checks run where a Secret Service answers (CI,
//! HAL_ONBOARD_TEST_KEYRING=1); elsewhere the sign-in lived in the process's memory only.

use crate::support::common::{Env, assert_ok, stderr, stdout, tenant};
use hal_onboard::secrets::account;
use serde_json::Value;

fn kept(env: &Env) -> Option<bool> {
    use hal_onboard::secrets::SecretStore;
    if !env.keyring {
        return None;
    }
    let k = hal_onboard::secrets::KeyringStore::probe().unwrap();
    Some(
        k.get(&account::graph_refresh_token(env.id))
            .unwrap()
            .is_some(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_tenant_forgets_the_sign_in() {
    let env = Env::start(tenant(0x5161_0001)).await;
    let out = env.add().await;
    assert_ok(&out);
    assert_eq!(env.record()["keepSignIn"], Value::Null, "not recorded");
    if let Some(k) = kept(&env) {
        assert!(!k, "nothing is pending: the refresh token is gone");
    }
    let out = env.run(&["list"]).await;
    assert!(!stdout(&out).contains("sign-in kept"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_sign_in_is_recorded_kept_and_listed() {
    let env = Env::start(tenant(0x5161_0002)).await;
    let d = env.domain();
    let out = env
        .run(&[
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--keep-sign-in",
        ])
        .await;
    assert_ok(&out);
    assert_eq!(env.record()["keepSignIn"], true, "{}", env.state_file());
    if let Some(k) = kept(&env) {
        assert!(k, "--keep-sign-in keeps the refresh token");
    }

    let out = env.run(&["list"]).await;
    assert_ok(&out);
    assert!(stdout(&out).contains("sign-in kept"), "{}", stdout(&out));
    let out = env.run(&["list", "--json"]).await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["signInKept"], true, "{}", stderr(&out));
}

/// `--keep-sign-in` is not for ever: `--no-keep-sign-in` clears the recorded choice, and a
/// tenant with nothing pending then forgets the sign-in in the same run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_keep_sign_in_undoes_keep_sign_in() {
    let env = Env::start(tenant(0x5161_0003)).await;
    let d = env.domain();
    let add = |flag: &'static str| {
        let d = d.clone();
        let env = &env;
        async move {
            env.run(&["tenant", "add", &d, "--skip-exchange", "--yes", flag])
                .await
        }
    };
    assert_ok(&add("--keep-sign-in").await);
    assert_eq!(env.record()["keepSignIn"], true);

    let out = add("--no-keep-sign-in").await;
    assert_ok(&out);
    assert_eq!(
        env.record()["keepSignIn"],
        Value::Null,
        "cleared: {}",
        env.state_file()
    );
    if let Some(k) = kept(&env) {
        assert!(!k, "nothing is pending: the refresh token is forgotten now");
    }
    let out = env.run(&["list"]).await;
    assert!(!stdout(&out).contains("sign-in kept"), "{}", stdout(&out));

    // The last of the two flags wins, as for every clap on/off pair.
    let out = env
        .run(&[
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--no-keep-sign-in",
            "--keep-sign-in",
        ])
        .await;
    assert_ok(&out);
    assert_eq!(env.record()["keepSignIn"], true);
}
