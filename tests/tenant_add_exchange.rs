//! `hal-onboard tenant add` with step 1 (Exchange) against the full sandbox: the real binary,
//! the sandbox's sign-in for both Graph and Exchange, the stand-in PowerShell; then
//! `hal-onboard ual retry` finishing it with the kept Exchange sign-in (no new prompt).

use std::process::Output;

use hal_onboard::store::{StepStatus, TenantStore, UalState};
use hal_sandbox::exchange::ExchangeScenario;
use uuid::Uuid;

use crate::support::exchange::{FullEnv as Env, exchange_tenant as tenant};

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_tenant_add_waits_on_propagation_then_ual_retry_finishes_without_a_prompt() {
    let env = Env::start(tenant(
        41,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..Default::default()
        },
    ))
    .await;
    let id = Uuid::from_u128(41);
    let out = env
        .run(&["tenant", "add", "t41.onmicrosoft.com", "--yes"])
        .await;
    let stderr = err(&out);
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("--- tenant add\n{stderr}");
    }
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "tenant add: {stderr}"
    );
    // The run ends with the one waiting status (issue 11), naming what finishes it.
    assert!(
        stderr.contains("waiting: unified audit logging is propagating; `hal-onboard ual retry --watch` finishes it"),
        "{stderr}"
    );
    let doc = TenantStore::open(&env.dir.path().join("home"))
        .unwrap()
        .load()
        .unwrap();
    let rec = doc.get(id).expect("the tenant is stored");
    assert_eq!(rec.ual.state, UalState::WaitingPropagation);
    assert_eq!(rec.steps.exchange.status, StepStatus::Waiting);
    assert!(rec.ual.hydrated_at.is_some());
    assert!(rec.steps.app.is_done(), "the Graph steps went on: {stderr}");
    // With an OS keyring (CI runs one) the Exchange sign-in is kept for `ual retry`; without
    // one it lived in memory and `ual retry` signs in again (the sandbox approves at once).
    let keyring = hal_onboard::secrets::KeyringStore::probe().ok();
    if let Some(k) = &keyring {
        use hal_onboard::secrets::SecretStore;
        assert!(
            k.get(&hal_onboard::secrets::account::exchange_refresh_token(id))
                .unwrap()
                .is_some(),
            "the Exchange sign-in is kept in the keyring"
        );
    }

    env.sb.clear_requests();
    let out = env.run(&["ual", "retry"]).await;
    let stderr = err(&out);
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("--- ual retry\n{stderr}");
    }
    assert_eq!(out.status.code(), Some(0), "ual retry: {stderr}");
    let new_prompt = env
        .sb
        .requests()
        .iter()
        .any(|r| r.path.contains("devicecode"));
    if keyring.is_some() {
        assert!(
            !new_prompt,
            "no new device code: the kept refresh token was used"
        );
    } else {
        assert!(new_prompt, "without a keyring the retry signs in again");
    }
    let doc = TenantStore::open(&env.dir.path().join("home"))
        .unwrap()
        .load()
        .unwrap();
    let rec = doc.get(id).unwrap();
    assert_eq!(rec.ual.state, UalState::Enabled);
    assert_eq!(rec.steps.exchange.status, StepStatus::Done);
}

/// The portal learns when UAL finishes: `ual retry` tells it (PATCH, no secret); when that
/// fails, `list` shows the portal as stale until `portal submit` sends the update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_tells_the_portal_and_list_shows_it_stale_until_sent() {
    let env = Env::start(tenant(
        42,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..Default::default()
        },
    ))
    .await;
    let id = Uuid::from_u128(42);
    let out = env
        .run(&["tenant", "add", "t42.onmicrosoft.com", "--yes"])
        .await;
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{}",
        err(&out)
    );
    let got = env.sb.portal().received(&id.to_string()).expect("sent");
    assert_eq!(got.submission.ual_status, "waiting");

    // The portal is down while UAL finishes: the retry succeeds, the portal is stale.
    env.sb.portal().fail_next(1000);
    let out = env.run(&["ual", "retry"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let list = |o: &Output| -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array().unwrap()[0].clone()
    };
    let l = list(&env.run(&["list", "--json"]).await);
    assert_eq!(l["portal"]["stale"], true, "{l}");
    assert!(
        l["nextAction"]["command"]
            .as_str()
            .is_some_and(|c| c.contains("portal submit")),
        "{l}"
    );

    // Back: `portal submit` sends the status update, without the secret.
    env.sb.portal().fail_next(0);
    let out = env.run(&["portal", "submit", "t42.onmicrosoft.com"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let got = env.sb.portal().received(&id.to_string()).unwrap();
    let status = got.status.expect("a status update arrived");
    assert_eq!(status.ual_status, "enabled");
    assert!(status.ual_verified_at.is_some());
    let l = list(&env.run(&["list", "--json"]).await);
    assert_eq!(l["portal"]["stale"], false, "{l}");

    // And when the portal is up, `ual retry` itself tells it.
    let env2 = Env::start(tenant(
        43,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..Default::default()
        },
    ))
    .await;
    let id2 = Uuid::from_u128(43);
    let out = env2
        .run(&["tenant", "add", "t43.onmicrosoft.com", "--yes"])
        .await;
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{}",
        err(&out)
    );
    let out = env2.run(&["ual", "retry"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let got = env2.sb.portal().received(&id2.to_string()).unwrap();
    assert_eq!(got.status.expect("told").ual_status, "enabled");
    assert_eq!(
        got.submission.ual_status, "waiting",
        "the secret was not resent"
    );
}

/// The step's line is one sentence: the role used goes inside it, not after its full stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_line_names_the_role_inside_its_sentence() {
    let env = Env::start(tenant(
        4401,
        ExchangeScenario {
            dehydrated: false,
            ..Default::default()
        },
    ))
    .await;
    let out = env
        .run(&["tenant", "add", "t4401.onmicrosoft.com", "--yes"])
        .await;
    let e = err(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(
        e.contains("after it is enabled (signed in to Exchange Online as Global Administrator)."),
        "{e}"
    );
    assert!(!e.contains(". (signed in"), "{e}");
}
