//! `hal-onboard doctor` with the stand-in PowerShell.

use crate::support::exchange as exchange_support;

use exchange_support::world;
use hal_sandbox::exchange::ExchangeScenario;
use serde_json::Value;
use uuid::Uuid;

async fn doctor(
    pwsh: &std::path::Path,
    home: &std::path::Path,
    extra: &[&str],
) -> (i32, Value, String) {
    let out = crate::support::hal_onboard()
        .arg("--home")
        .arg(home)
        .args(["--json", "doctor"])
        .args(extra)
        .env("HAL_ONBOARD_PWSH", pwsh)
        .env("HAL_ONBOARD_PWSH_TIMEOUT", "30")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap(), v, stderr)
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_doctor_reports_module_and_installs_it() {
    let w = world(vec![(
        Uuid::new_v4(),
        ExchangeScenario {
            module_missing: true,
            ..Default::default()
        },
    )])
    .await;
    let home = w.dir.path().join("home");
    let (code, v, _) = doctor(&w.pwsh, &home, &[]).await;
    assert_eq!(code, 1);
    assert_eq!(v["ok"], false);
    assert_eq!(check(&v, "powershell")["status"], "ok");
    assert_eq!(check(&v, "exchange-module")["status"], "fail");
    assert!(
        check(&v, "exchange-module")["hint"]
            .as_str()
            .unwrap()
            .contains("--install-module")
    );

    let (code, v, err) = doctor(&w.pwsh, &home, &["--install-module"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(check(&v, "exchange-module")["status"], "ok");
    assert!(w.sim.module_installed());
    assert!(["ok", "warn"].contains(&check(&v, "keyring")["status"].as_str().unwrap()));
    assert_eq!(check(&v, "store")["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_doctor_without_powershell_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v, _) = doctor(&dir.path().join("no-pwsh"), dir.path(), &[]).await;
    assert_eq!(code, 1);
    assert_eq!(check(&v, "powershell")["status"], "fail");
    assert!(
        check(&v, "powershell")["hint"]
            .as_str()
            .unwrap()
            .contains("--skip-exchange"),
        "doctor's hints name commands, not variables (issue 11)"
    );
}

/// Runs `hal-onboard doctor` in a pseudo-terminal, answers the install question with `key`,
/// and returns whether the sandbox machine has the module afterwards.
#[cfg(unix)]
async fn doctor_at_a_terminal(key: &'static str, expect_after: &'static str) -> bool {
    use expectrl::Expect;
    let w = world(vec![(
        Uuid::new_v4(),
        ExchangeScenario {
            module_missing: true,
            ..Default::default()
        },
    )])
    .await;
    let home = w.dir.path().join("home");
    let pwsh = w.pwsh.clone();
    tokio::task::spawn_blocking(move || {
        let mut cmd = crate::support::hal_onboard_std();
        cmd.arg("--home")
            .arg(&home)
            .arg("doctor")
            .env("HAL_ONBOARD_PWSH", &pwsh)
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env("NO_COLOR", "1")
            .env("TERM", "xterm");
        let mut p = expectrl::Session::spawn(cmd).unwrap();
        p.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
        p.expect("ExchangeOnlineManagement is not installed")
            .unwrap();
        p.expect("Install it for the current user now").unwrap();
        p.send(key).unwrap();
        p.expect(expect_after).unwrap();
        p.expect(expectrl::Eof).unwrap();
    })
    .await
    .unwrap();
    w.sim.module_installed()
}

/// At a terminal, doctor explains the missing module and installs it only after a yes.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_doctor_asks_before_installing_the_module() {
    assert!(doctor_at_a_terminal("y", "installed just now").await);
    assert!(
        !doctor_at_a_terminal("n", "not ready to onboard").await,
        "a no installs nothing"
    );
}
