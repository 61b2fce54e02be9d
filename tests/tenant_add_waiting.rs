//! A run that ends waiting on Microsoft (exit 3) says so as a status, once, not as `error:`,
//! and the UAL advice appears once on the screen: piped (`--no-input --yes`) and at a
//! terminal, where the wizard then offers the next tenant.
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{Expect, Session};
use hal_sandbox::exchange::ExchangeScenario;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const WAITING: &str =
    "waiting: unified audit logging is propagating; `hal-onboard ual retry --watch` finishes it";

fn scenario() -> Scenario {
    let mut t = TenantScenario {
        id: Uuid::new_v4(),
        display_name: "Wait Tenant".into(),
        domains: vec!["wait.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        exchange: ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 50,
            ..Default::default()
        },
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = "admin@wait.onmicrosoft.com".into();
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    Scenario {
        tenants: vec![t],
        ..Scenario::default()
    }
}

fn command(sb: &Sandbox, dir: &Path) -> std::process::Command {
    let pwsh = hal_sandbox::pwsh::install_standin(
        &dir.join("bin"),
        Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &sb.exchange_url(),
        &sb.ca_path(),
    )
    .unwrap();
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in sb.env() {
        c.env(k, v);
    }
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("HAL_ONBOARD_PWSH", pwsh)
        .env("HAL_ONBOARD_PWSH_TIMEOUT", "60")
        .env("NO_COLOR", "1")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env_remove("HAL_ONBOARD_HOME")
        .arg("--home")
        .arg(dir.join("home"))
        .args(["tenant", "add", "wait.onmicrosoft.com"]);
    c
}

fn check_once(screen: &str) {
    assert_eq!(screen.matches(WAITING).count(), 1, "{screen}");
    // The app side is done: Hal's own delays are said once, waiting or not.
    assert_eq!(
        screen.matches("What Hal will see next").count(),
        1,
        "{screen}"
    );
    assert!(
        !screen.contains("error:"),
        "waiting is not an error: {screen}"
    );
    assert_eq!(
        screen.matches("ual retry").count(),
        1,
        "the UAL advice once: {screen}"
    );
}

#[test]
fn piped_run_ends_with_one_waiting_status() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = rt
        .block_on(Sandbox::start(scenario(), &dir.path().join("sb")))
        .unwrap();
    let out = command(&sb, dir.path())
        .args(["--no-input", "--yes"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    check_once(&stderr);
    // No keyring here: said once in the run, when the first secret is kept.
    assert_eq!(
        stderr.matches("OS keyring is not available").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with(WAITING),
        "the status is the last line: {stderr}"
    );
}

#[test]
fn terminal_run_says_waiting_once_then_offers_the_next_tenant() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = rt
        .block_on(Sandbox::start(scenario(), &dir.path().join("sb")))
        .unwrap();
    let mut c = command(&sb, dir.path());
    c.env("TERM", "xterm");
    let mut s = Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(90)));
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    let before = s.expect("Onboard another tenant?").unwrap();
    let mut screen = String::from_utf8_lossy(before.before()).to_string();
    s.send("n").unwrap();
    let rest = s.expect(expectrl::Eof).unwrap();
    screen.push_str(&String::from_utf8_lossy(rest.before()));
    for m in rest.matches() {
        screen.push_str(&String::from_utf8_lossy(m));
    }
    check_once(&screen);
    match s.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 3, "{screen}"),
        other => panic!("ended by {other:?}"),
    }
}
