//! The bridge, the step and the sandbox's Exchange Online, end to end through the stand-in
//! PowerShell (a real child process speaking docs/powershell-bridge.md).

use crate::support::exchange as exchange_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exchange_support::{token, token_with_roles, world};
use hal_onboard::cloud::Cloud;
use hal_onboard::microsoft::exchange::ExchangeError;
use hal_onboard::microsoft::exchange::auth::StaticTokenCredential;
use hal_onboard::microsoft::exchange::{
    ErrorClass, ExchangeAuth, ExchangeSignIn, ExchangeTarget, Pwsh, PwshExchange, Quiet,
};
use hal_onboard::store::{StepStatus, TenantRecord, UalState};
use hal_onboard::wizard::steps::exchange::{self as step, ExchangeOutcome, NoProgress};
use hal_sandbox::exchange::ExchangeScenario;
use uuid::Uuid;

fn record(id: Uuid) -> TenantRecord {
    TenantRecord::new(id, "contoso.onmicrosoft.com", "Contoso", Cloud::Global)
}

fn ops(w: &exchange_support::World, id: Uuid, tok: String, timeout: Duration) -> PwshExchange {
    PwshExchange::new(
        Pwsh::new(w.pwsh.clone(), timeout),
        ExchangeTarget {
            tenant_id: id,
            organization: "contoso.onmicrosoft.com".into(),
            cloud: Cloud::Global,
        },
        ExchangeAuth::Token(ExchangeSignIn {
            credential: Arc::new(StaticTokenCredential::new(tok)),
            upn: Some("tech@msp.example".into()),
            delegated_organization: None,
        }),
        Arc::new(Quiet),
    )
}

const T: Duration = Duration::from_secs(60);

#[tokio::test]
async fn exchange_hydrated_tenant_enables_in_one_session() {
    let id = Uuid::new_v4();
    let w = world(vec![(id, ExchangeScenario::default())]).await;
    let mut rec = record(id);
    let out = step::run(&ops(&w, id, token(&w.signer, id), T), &mut rec, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        out,
        ExchangeOutcome::Enabled {
            already: false,
            hydrated_now: false
        }
    );
    let s = w.sim.snapshot(id).unwrap();
    assert!(s.ual_enabled);
    assert_eq!(
        s.counters.connects, 1,
        "one PowerShell session for the whole step"
    );
    assert_eq!(s.counters.enable_customization, 0);
    assert_eq!(rec.ual.state, UalState::Enabled);
    assert_eq!(rec.steps.exchange.status, StepStatus::Done);
}

#[tokio::test]
async fn exchange_dehydrated_tenant_waits_then_retries_until_propagated() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 2,
            ..Default::default()
        },
    )])
    .await;
    let mut rec = record(id);
    let tok = token(&w.signer, id);
    let out = step::run(&ops(&w, id, tok.clone(), T), &mut rec, &NoProgress)
        .await
        .unwrap();
    assert!(
        matches!(out, ExchangeOutcome::WaitingPropagation { .. }),
        "{out:?}"
    );
    assert_eq!(rec.ual.state, UalState::WaitingPropagation);
    assert_eq!(rec.steps.exchange.status, StepStatus::Waiting);
    assert!(rec.ual.hydrated_at.is_some());
    let s = w.sim.snapshot(id).unwrap();
    assert!(!s.dehydrated && s.hydrated_at.is_some());
    assert_eq!(s.counters.connects, 1);

    let again = step::retry(&ops(&w, id, tok.clone(), T), &mut rec, &NoProgress)
        .await
        .unwrap();
    assert!(!again.is_done());
    let done = step::retry(&ops(&w, id, tok, T), &mut rec, &NoProgress)
        .await
        .unwrap();
    assert!(done.is_done(), "{done:?}");
    assert_eq!(rec.ual.attempts, 3);
    assert_eq!(rec.ual.state, UalState::Enabled);
    let s = w.sim.snapshot(id).unwrap();
    assert_eq!(s.counters.set_ual_refused, 2);
    assert!(s.ual_enabled);
}

#[tokio::test]
async fn exchange_ual_already_on_does_not_hydrate() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            dehydrated: true,
            ual_enabled: true,
            ..Default::default()
        },
    )])
    .await;
    let mut rec = record(id);
    let out = step::run(&ops(&w, id, token(&w.signer, id), T), &mut rec, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        out,
        ExchangeOutcome::Enabled {
            already: true,
            hydrated_now: false
        }
    );
    let s = w.sim.snapshot(id).unwrap();
    assert!(s.dehydrated, "left dehydrated: nothing needed changing");
    assert_eq!(s.counters.enable_customization + s.counters.set_ual, 0);
}

#[tokio::test]
async fn exchange_module_missing_then_installed() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            module_missing: true,
            ..Default::default()
        },
    )])
    .await;
    let pwsh = Pwsh::new(w.pwsh.clone(), T);
    let status = pwsh.module_status().await.unwrap();
    assert_eq!(status.module_version, None);
    assert_eq!(status.ps_version.as_deref(), Some("7.4.6"));
    let mut rec = record(id);
    let e = step::run(&ops(&w, id, token(&w.signer, id), T), &mut rec, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::ModuleMissing, "{e}");
    assert!(
        e.hint("contoso.onmicrosoft.com")
            .contains("Install-Module ExchangeOnlineManagement -Scope CurrentUser")
    );
    assert_eq!(rec.ual.state, UalState::Failed);

    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    pwsh.install_module(&move |l: &str| sink.lock().unwrap().push(l.to_string()))
        .await
        .unwrap();
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Installing")),
        "install output passes through"
    );
    assert!(pwsh.module_status().await.unwrap().module_version.is_some());
    assert!(
        step::run(&ops(&w, id, token(&w.signer, id), T), &mut rec, &NoProgress)
            .await
            .unwrap()
            .is_done()
    );
}

#[tokio::test]
async fn exchange_token_rejected_is_not_signed_in() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            token_rejected: true,
            ..Default::default()
        },
    )])
    .await;
    let mut rec = record(id);
    let tok = token(&w.signer, id);
    let e = step::run(&ops(&w, id, tok.clone(), T), &mut rec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::NotSignedIn { .. }), "{e:?}");
    assert!(
        !format!("{e:?}").contains(&tok),
        "the token never shows in an error"
    );
    assert_eq!(w.sim.snapshot(id).unwrap().counters.rejected, 1);
}

#[tokio::test]
async fn exchange_token_for_another_tenant_is_rejected() {
    let id = Uuid::new_v4();
    let w = world(vec![(id, ExchangeScenario::default())]).await;
    let mut rec = record(id);
    // A valid token, but issued in another tenant: Exchange Online says no.
    let other = token(&w.signer, Uuid::new_v4());
    let e = step::run(&ops(&w, id, other, T), &mut rec, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::NotSignedIn, "{e:?}");
}

#[tokio::test]
async fn exchange_missing_role_is_reported_as_such() {
    let id = Uuid::new_v4();
    let w = world(vec![(id, ExchangeScenario::default())]).await;
    let mut rec = record(id);
    let e = step::run(
        &ops(&w, id, token_with_roles(&w.signer, id, vec![]), T),
        &mut rec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ExchangeError::MissingRole { .. }), "{e:?}");
    assert!(e.to_string().contains("Set-AdminAuditLogConfig"));
    assert!(
        e.hint("contoso.onmicrosoft.com")
            .contains("Global Administrator")
    );
    assert_eq!(rec.steps.exchange.status, StepStatus::Failed);
}

#[tokio::test]
async fn exchange_hung_powershell_times_out_and_is_ended() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            hang: true,
            ..Default::default()
        },
    )])
    .await;
    let mut rec = record(id);
    let started = Instant::now();
    let e = step::run(
        &ops(&w, id, token(&w.signer, id), Duration::from_secs(3)),
        &mut rec,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ExchangeError::Timeout { secs: 3, .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(rec.ual.state, UalState::Failed);
}

#[tokio::test]
async fn exchange_garbage_on_stdout_is_a_protocol_error() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            garbage_stdout: true,
            ..Default::default()
        },
    )])
    .await;
    let mut rec = record(id);
    let e = step::run(&ops(&w, id, token(&w.signer, id), T), &mut rec, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::Protocol { .. }), "{e:?}");
}

#[tokio::test]
async fn exchange_device_sign_in_passes_the_prompt_through() {
    let id = Uuid::new_v4();
    let w = world(vec![(id, ExchangeScenario::default())]).await;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let ops = PwshExchange::new(
        Pwsh::new(w.pwsh.clone(), T),
        ExchangeTarget {
            tenant_id: id,
            organization: "contoso.onmicrosoft.com".into(),
            cloud: Cloud::Global,
        },
        ExchangeAuth::Device,
        Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string())),
    );
    let mut rec = record(id);
    assert!(
        step::run(&ops, &mut rec, &NoProgress)
            .await
            .unwrap()
            .is_done()
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("devicelogin")),
        "{seen:?}"
    );
}

/// What the bridge hands PowerShell, seen by a fake `pwsh` (a shell script): the fixed
/// arguments only, the script on stdin, the token in the environment; and a line that is not
/// UTF-8 neither stops the reading nor reaches the person unscrubbed.
#[cfg(unix)]
#[tokio::test]
async fn exchange_bridge_passes_the_script_on_stdin_and_the_token_in_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let fake = dir.path().join("pwsh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/args\ncat > {d}/stdin\nprintf '%s' \"$HAL_EXO_ACCESS_TOKEN\" > {d}/token\nprintf 'caf\\351 token=%s\\n' \"$HAL_EXO_ACCESS_TOKEN\"\necho '##hal-result {{\"op\":\"done\",\"ok\":true}}'\necho 'oops' >&2\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA";
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let out = Pwsh::new(fake, T)
        .run(
            "& {\n'hello'\n}\n\n",
            &[],
            &[("HAL_EXO_ACCESS_TOKEN", token.into())],
            &move |l: &str| sink.lock().unwrap().push(l.to_string()),
        )
        .await
        .unwrap();
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stdin")).unwrap(),
        "& {\n'hello'\n}\n\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token")).unwrap(),
        token
    );
    assert_eq!(
        out.reports.len(),
        1,
        "the report after a non-UTF-8 line is read"
    );
    let seen = seen.lock().unwrap().join("\n");
    assert!(
        seen.contains("caf") && seen.contains("token=[redacted]"),
        "{seen}"
    );
    assert!(!seen.contains(token));
    assert_eq!(out.stderr, "oops");
}
