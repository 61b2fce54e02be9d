//! Exchange edge cases against the full sandbox (issue 12, "Exchange edge cases"; issue 11,
//! the module checked before any Exchange sign-in): a vanity default domain, an Exchange token
//! that expires between `ual retry --watch` rounds, an `Enable-OrganizationCustomization` that
//! errors but hydrates, the Audit Logs role through Compliance Administrator, PowerShell 5.1
//! with `--exchange-auth device`, and a too-old ExchangeOnlineManagement.

use std::process::Output;
use std::time::Duration;

use hal_onboard::store::{StepStatus, UalState};
use hal_sandbox::exchange::ExchangeScenario;
use uuid::Uuid;

use crate::support::exchange::{FullEnv as Env, exchange_tenant as tenant};

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into()
}

fn dehydrated(propagation_attempts: u32) -> ExchangeScenario {
    ExchangeScenario {
        dehydrated: true,
        propagation_attempts,
        ..Default::default()
    }
}

/// A tenant whose default domain is a vanity domain: `-Organization` gets the initial
/// `*.onmicrosoft.com` domain (the stand-in refuses any other, as the module does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_vanity_default_domain_connects_with_the_initial_domain() {
    let mut t = tenant(61, ExchangeScenario::default());
    t.domains = vec![
        "contoso-vanity.example".into(),
        "t61.onmicrosoft.com".into(),
    ];
    let env = Env::start(t).await;
    let out = env
        .run(&["tenant", "add", "contoso-vanity.example", "--yes"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let rec = env.record(Uuid::from_u128(61));
    assert_eq!(rec.primary_domain, "contoso-vanity.example");
    assert_eq!(rec.ual.state, UalState::Enabled, "{}", err(&out));
    let seen = env.sb.exchange().snapshot(Uuid::from_u128(61)).unwrap();
    assert_eq!(
        seen.organizations_connected,
        vec!["t61.onmicrosoft.com".to_string()],
        "PowerShell was given the initial domain"
    );
}

/// The Exchange token expires between two `ual retry --watch` rounds (the sandbox's clock
/// jumps two hours): the second round gets a fresh token and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_watch_gets_a_fresh_token_after_the_old_one_expired() {
    let env = Env::start(tenant(62, dehydrated(2))).await;
    let id = Uuid::from_u128(62);
    let out = env
        .run(&["tenant", "add", "t62.onmicrosoft.com", "--yes"])
        .await;
    assert!(matches!(out.status.code(), Some(3)), "{}", err(&out));
    assert_eq!(env.record(id).ual.state, UalState::WaitingPropagation);

    let child = env
        .command(&["ual", "retry", "--watch", "--interval", "3s", "--json"])
        .spawn()
        .unwrap();
    // Round 1 is refused (still propagating); then the clock jumps past every token issued.
    // Round 1's session ends with Get-AdminAuditLogConfig after the refused Set.
    let before = env.sb.exchange().snapshot(id).unwrap().counters;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = env.sb.exchange().snapshot(id).unwrap().counters;
        if now.set_ual_refused > before.set_ual_refused && now.get_ual > before.get_ual {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "round 1 never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.sb.advance(Duration::from_secs(2 * 3600));
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the watch ended")
        .unwrap();
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("{}", err(&out));
    }
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let rec = env.record(id);
    assert_eq!(rec.ual.state, UalState::Enabled);
    assert_eq!(rec.steps.exchange.status, StepStatus::Done);
    let counters = env.sb.exchange().snapshot(id).unwrap().counters;
    assert_eq!(counters.rejected, 0, "no session met an expired token");
}

/// One Exchange credential for several sessions: the second session, started after the
/// sandbox's clock passed the first token's expiry, gets a newly issued token (a long
/// `Enable-OrganizationCustomization` followed by a re-check, or a late round).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_every_session_gets_a_token_that_has_not_expired() {
    use hal_onboard::microsoft::exchange::auth::UserSignIn;
    use hal_onboard::microsoft::exchange::{AuthChoice, OpsFactory, Pwsh, PwshOpsFactory, Quiet};
    use hal_onboard::microsoft::signin::{AuthMethod, SilentObserver};
    use std::sync::Arc;

    let env = Env::start(tenant(63, ExchangeScenario::default())).await;
    let id = Uuid::from_u128(63);
    let http = hal_onboard::http::build_client(Some(&env.sb.ca_path())).unwrap();
    let sign_in = UserSignIn::new(
        http,
        Some(env.sb.login_url()),
        Arc::new(hal_onboard::secrets::MemoryStore::default()),
        Arc::new(SilentObserver),
        AuthMethod::DeviceCode,
    );
    let factory = PwshOpsFactory::new(
        Pwsh::new(env.pwsh.clone(), Duration::from_secs(60)),
        AuthChoice::Token(Arc::new(sign_in)),
        Arc::new(|_: &hal_onboard::store::TenantRecord| {
            Arc::new(Quiet) as Arc<dyn hal_onboard::microsoft::exchange::Passthrough>
        }),
    );
    let mut rec = hal_onboard::store::TenantRecord::new(
        id,
        "t63.onmicrosoft.com",
        "Tenant 63",
        hal_onboard::cloud::Cloud::Global,
    );
    rec.initial_domain = Some("t63.onmicrosoft.com".into());
    let ops = factory.ops_for(&rec).await.unwrap();
    ops.org_config().await.expect("the first session");
    // Every token issued so far is now expired by Exchange Online's clock.
    env.sb.advance(Duration::from_secs(2 * 3600));
    ops.org_config()
        .await
        .expect("the second session started with a fresh token");
    let counters = env.sb.exchange().snapshot(id).unwrap().counters;
    assert_eq!(counters.connects, 2);
    assert_eq!(counters.rejected, 0, "no session met an expired token");
}

/// `Enable-OrganizationCustomization` errors but did hydrate: checked again with
/// Get-OrganizationConfig and recorded as waiting (with `hydratedAt`), not failed; `ual retry`
/// then finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_enable_customization_error_that_hydrated_waits_instead_of_failing() {
    let env = Env::start(tenant(
        64,
        ExchangeScenario {
            enable_customization_fails_but_hydrates: true,
            ..dehydrated(2)
        },
    ))
    .await;
    let id = Uuid::from_u128(64);
    let out = env
        .run(&["tenant", "add", "t64.onmicrosoft.com", "--yes"])
        .await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "waiting, not failed: {}",
        err(&out)
    );
    let rec = env.record(id);
    assert_eq!(rec.ual.state, UalState::WaitingPropagation);
    assert_eq!(rec.steps.exchange.status, StepStatus::Waiting);
    assert!(rec.ual.hydrated_at.is_some(), "hydration was seen");
    assert!(rec.steps.verify.is_done(), "the Graph steps went on");
    let seen = env.sb.exchange().snapshot(id).unwrap();
    assert_eq!(seen.counters.enable_customization, 1, "hydrated once");
    assert!(seen.counters.org_config >= 2, "IsDehydrated was read again");

    let out = env.run(&["ual", "retry"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert_eq!(env.record(id).ual.state, UalState::Enabled);
}

/// Issue 11: a too-old ExchangeOnlineManagement is found before any Exchange sign-in (one
/// device code only: Graph's), the Graph steps go on, and the record, `list` and the summary
/// say why, naming the command that fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_too_old_module_costs_no_exchange_sign_in_and_graph_goes_on() {
    let env = Env::start(tenant(
        65,
        ExchangeScenario {
            module_version: Some("3.0.0".into()),
            ..dehydrated(0)
        },
    ))
    .await;
    let id = Uuid::from_u128(65);
    let out = env
        .run(&["tenant", "add", "t65.onmicrosoft.com", "--yes"])
        .await;
    let stderr = err(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let why =
        "ExchangeOnlineManagement 3.0.0 is older than 3.1.0: `hal-onboard doctor --install-module`";
    assert!(stderr.contains(why), "{stderr}");
    assert!(
        !stderr.contains("could not be turned on"),
        "not the generic words: {stderr}"
    );
    let device_codes = env
        .sb
        .requests()
        .iter()
        .filter(|r| r.path.contains("devicecode"))
        .count();
    assert_eq!(device_codes, 1, "only the Graph sign-in: {stderr}");
    let seen = env.sb.exchange().snapshot(id).unwrap();
    assert_eq!(seen.counters.connects, 0);
    let rec = env.record(id);
    assert!(
        rec.steps.verify.is_done(),
        "the Graph steps went on: {stderr}"
    );
    assert_eq!(rec.steps.exchange.status, StepStatus::Failed);
    assert_eq!(rec.steps.exchange.last_error.as_deref(), Some(why));
    let list = env.run(&["list", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let reason = v[0]["nextAction"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "{v}");
}

/// `--exchange-auth device` on Windows PowerShell 5.1 is refused before anyone signs in to
/// Exchange, the Graph steps go on, and `doctor` says so too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_device_sign_in_on_windows_powershell_5_is_refused_before_it_starts() {
    let mut env = Env::start(tenant(66, dehydrated(0))).await;
    env.extra
        .push(("HAL_SANDBOX_PWSH_VERSION".into(), "5.1.22621.4391".into()));
    let id = Uuid::from_u128(66);
    let out = env
        .run(&[
            "tenant",
            "add",
            "t66.onmicrosoft.com",
            "--yes",
            "--exchange-auth",
            "device",
        ])
        .await;
    let stderr = err(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`--exchange-auth device` needs PowerShell 7"),
        "{stderr}"
    );
    assert!(stderr.contains("5.1.22621.4391"), "{stderr}");
    let said = stderr.find("needs PowerShell 7").unwrap();
    let graph_code = stderr
        .find("First copy your one-time code")
        .expect("the Graph sign-in");
    assert!(said < graph_code, "said before the first sign-in: {stderr}");
    assert!(
        !stderr.contains("SANDBOX42"),
        "no module device code: {stderr}"
    );
    assert_eq!(env.sb.exchange().snapshot(id).unwrap().counters.connects, 0);
    assert!(env.record(id).steps.verify.is_done(), "{stderr}");

    let out = env.run(&["--json", "doctor"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "exchange-device")
        .unwrap_or_else(|| panic!("exchange-device in {v}"))
        .clone();
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("needs PowerShell 7"),
        "{c}"
    );
}

/// `doctor` warns about a module release reported to break connections, naming the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_doctor_warns_about_a_module_release_known_to_break_connections() {
    let env = Env::start(tenant(
        67,
        ExchangeScenario {
            module_version: Some("3.9.2".into()),
            ..Default::default()
        },
    ))
    .await;
    let out = env.run(&["--json", "doctor"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "exchange-module")
        .unwrap()
        .clone();
    assert_eq!(c["status"], "warn", "{c}");
    let detail = c["detail"].as_str().unwrap();
    assert!(detail.contains("3.9.2"), "{c}");
    assert!(
        detail.contains("https://github.com/maester365/maester/issues/1400"),
        "{c}"
    );
    assert!(c["hint"].as_str().unwrap().contains("Update-Module"), "{c}");
    assert!(
        env.sb.exchange().snapshot(Uuid::from_u128(67)).is_some(),
        "the sandbox tenant exists"
    );
}

/// No PowerShell at all: said before anyone signs in, the Graph steps go on, and the record
/// says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_without_powershell_the_graph_steps_still_run() {
    let mut env = Env::start(tenant(68, dehydrated(0))).await;
    env.pwsh = env.dir.path().join("no-such-dir").join("pwsh");
    let id = Uuid::from_u128(68);
    let out = env
        .run(&["tenant", "add", "t68.onmicrosoft.com", "--yes"])
        .await;
    let stderr = err(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let said = stderr.find("PowerShell was not found").expect("said");
    let graph_code = stderr
        .find("First copy your one-time code")
        .expect("the Graph sign-in");
    assert!(said < graph_code, "said before the first sign-in: {stderr}");
    let rec = env.record(id);
    assert!(
        rec.steps.verify.is_done(),
        "the Graph steps went on: {stderr}"
    );
    assert_eq!(rec.steps.exchange.status, StepStatus::Failed);
    let why = rec.steps.exchange.last_error.unwrap_or_default();
    assert!(why.contains("PowerShell was not found"), "{why}");
    assert!(why.contains("`hal-onboard doctor`"), "{why}");
}

/// The stand-in PowerShells of this env still running (a zombie has no command line).
fn standins(pwsh: &std::path::Path) -> Vec<i32> {
    let mut found = vec![];
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
        if !argv0.is_empty() && argv0 == pwsh.as_os_str().as_encoded_bytes() {
            found.push(pid);
        }
    }
    found
}

/// SIGTERM (or a lost terminal) while PowerShell works for a customer ends the PowerShell too:
/// `std::process::exit` runs no destructors, so the bridge's kill-on-drop never ran and the
/// child went on in the customer's tenant after hal-onboard had gone.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_powershell_works_ends_powershell_too() {
    let env = Env::start(tenant(
        0x7E,
        ExchangeScenario {
            hang: true,
            ..Default::default()
        },
    ))
    .await;
    let id = Uuid::from_u128(0x7E);
    let child = env
        .command(&["tenant", "add", "t126.onmicrosoft.com", "--yes"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while env
        .sb
        .exchange()
        .snapshot(id)
        .is_none_or(|s| s.counters.connects == 0)
    {
        assert!(std::time::Instant::now() < deadline, "PowerShell connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!standins(&env.pwsh).is_empty(), "the stand-in is running");
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id().unwrap() as i32, libc::SIGTERM);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("hal-onboard ends on SIGTERM")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "{}",
        err(&out)
    );
    let mut left = standins(&env.pwsh);
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = standins(&env.pwsh);
    }
    for pid in &left {
        // SAFETY: ends what the test started.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    assert!(left.is_empty(), "PowerShell left running: {left:?}");
}
