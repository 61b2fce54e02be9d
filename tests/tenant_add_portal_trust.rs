//! The portal is the source of truth and must prove it took the secret (issue 10, item 3):
//! a URL that answers 2xx with an HTML page (a captive portal, a wrong address) takes nothing,
//! so nothing is forgotten on this machine and no secret is removed in the tenant.

use crate::support::common;

use common::{Env, assert_ok, stderr, stdout, tenant};

const NOT_A_PORTAL: &str = "this URL does not answer as a Hal portal";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_answering_html_takes_nothing_and_nothing_is_forgotten() {
    let env = Env::start(tenant(0x7a17_0001)).await;
    // The read answers as a portal (else nothing is changed at all: see below); the POST is
    // answered by a captive page.
    env.sb.portal().set_html_writes(true);
    let out = env.add().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(NOT_A_PORTAL), "{err}");
    let rec = env.record();
    assert_ne!(rec["portal"]["state"], "submitted", "{rec:#}");
    if !env.keyring {
        // No keyring, stdout not a terminal: the secret could be kept nowhere but the portal,
        // which did not take it, so it went again and no credential nobody holds is left.
        assert!(
            stderr(&out).contains("removed from the app again"),
            "{}",
            stderr(&out)
        );
        assert!(env.app_keys().is_empty());
        return;
    }
    assert_eq!(rec["steps"]["verify"]["status"], "done");
    assert!(env.sb.portal().received(&env.id.to_string()).is_none());
    // The one secret is still on the app, and its value is still held here.
    let secrets: Vec<String> = env.sb.with_tenant(env.id, |t| {
        t.secrets.values().map(|s| s.text.clone()).collect()
    });
    assert_eq!(secrets.len(), 1);
    assert_eq!(env.app_keys().len(), 1);
    use hal_onboard::secrets::SecretStore;
    let k = hal_onboard::secrets::KeyringStore::probe().unwrap();
    assert_eq!(
        k.get(&hal_onboard::secrets::account::client_secret(env.id))
            .unwrap()
            .as_ref()
            .map(|s| s.expose()),
        Some(secrets[0].as_str()),
        "the secret is kept in the keyring for `portal submit`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_against_an_html_portal_removes_no_secret() {
    let env = Env::start(tenant(0x7a17_0002)).await;
    assert_ok(&env.add().await);
    let held = env
        .sb
        .portal()
        .received(&env.id.to_string())
        .unwrap()
        .submission
        .secret_key_id
        .to_lowercase();
    env.sb.portal().set_html_answers(true);
    let out = env.rotate(&[]).await;
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains(NOT_A_PORTAL), "{all}");
    let keys = env.app_keys();
    assert!(
        keys.contains(&held),
        "the portal's secret is kept: {keys:?}"
    );
    assert_eq!(keys.len(), 2, "the new one is kept too: {keys:?}");
    env.sb.portal().set_html_answers(false);
    assert!(env.portal_credentials_work().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_login_refuses_a_url_that_does_not_answer_as_a_hal_portal() {
    let env = Env::start(tenant(0x7a17_0003)).await;
    env.sb.portal().set_html_answers(true);
    let url = env.sb.portal_url().to_string();
    let out = env.run(&["portal", "login", "--url", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(NOT_A_PORTAL), "{}", stderr(&out));
    assert!(!env.home().join("config.json").exists());
}

/// Reading what the portal holds costs one portal request per `tenant add`: a fresh tenant
/// is GET (404) + POST; a re-run is GET only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_read_costs_one_request_per_run() {
    let env = Env::start(tenant(0x7a17_0004)).await;
    assert_ok(&env.add().await);
    assert_eq!(env.sb.portal().request_count(), 2, "GET + POST");
    assert_ok(&env.add().await);
    assert_eq!(env.sb.portal().request_count(), 3, "GET only");
}

/// Issue 10: a configured portal that cannot be read stops `tenant add` before any change.
/// Unread, an app the portal holds would look foreign and a second one would be made beside it
/// (the run used to warn and go on). `--no-portal` is the technician's explicit way on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_that_cannot_be_read_stops_before_any_change() {
    for (n, html) in [(0x7a17_0005u128, false), (0x7a17_0006, true)] {
        let env = Env::start(tenant(n)).await;
        if html {
            env.sb.portal().set_html_answers(true);
        } else {
            env.sb.portal().fail_next(1000);
        }
        let out = env.add().await;
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("cannot read what the MSP portal holds"),
            "{err}"
        );
        assert!(
            err.contains(if html { NOT_A_PORTAL } else { "unavailable" }),
            "the cause: {err}"
        );
        assert!(
            err.contains("hal-onboard portal status") && err.contains("--no-portal"),
            "the next action: {err}"
        );
        let snap = env.sb.snapshot(env.id);
        assert!(
            snap.applications.is_empty(),
            "nothing is made in the tenant: {:?}",
            snap.applications
        );
        assert!(env.sb.portal().received(&env.id.to_string()).is_none());

        // --no-portal: onboarded, the portal neither read nor sent to.
        let before = env.sb.portal().request_count();
        let d = env.domain();
        let mut args = vec![
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
            "--no-portal",
        ];
        if !env.keyring {
            // Else the new secret would be kept nowhere, and is never made.
            args.push("--show-secret");
        }
        let out = env.run(&args).await;
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{}",
            stderr(&out)
        );
        assert_eq!(env.record()["steps"]["verify"]["status"], "done");
        assert_eq!(env.sb.portal().request_count(), before, "not contacted");
        assert_eq!(env.sb.snapshot(env.id).applications.len(), 1);
    }
}

/// A portal URL without a token is configured but unusable: stopped before any change too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_without_a_token_stops_before_any_change() {
    let env = Env::start(tenant(0x7a17_0007)).await;
    let url = env.sb.portal_url().to_string();
    let d = env.domain();
    let out = {
        let mut c = crate::support::hal_onboard();
        for (k, v) in env.sb.env() {
            if k != "HAL_PORTAL_TOKEN" {
                c.env(k, v);
            }
        }
        c.env("HAL_PORTAL_URL", &url)
            .env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .arg("--home")
            .arg(env.home())
            .args([
                "--no-input",
                "tenant",
                "add",
                &d,
                "--skip-exchange",
                "--yes",
            ])
            .output()
            .await
            .unwrap()
    };
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-portal"), "{}", stderr(&out));
    assert!(env.sb.snapshot(env.id).applications.is_empty());
}
