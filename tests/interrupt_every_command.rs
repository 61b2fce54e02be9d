//! Ctrl-C ends every command the same way: exit 130 (README "Exit codes"), with a line that
//! says it was interrupted. Each test starts the real binary, waits until it is busy (a hung
//! PowerShell, a portal that never answers, a state file nobody writes, a prompt), sends
//! Ctrl-C (SIGINT, or the key at a terminal), and checks the exit status.
#![cfg(unix)]

use crate::support::exchange as exchange_support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use exchange_support::{token, world};
use hal_onboard::cloud::Cloud;
use hal_onboard::store::{StepStatus, TenantRecord, TenantStore, UalState};
use hal_sandbox::exchange::ExchangeScenario;
use uuid::Uuid;

/// The binary with nothing of the developer's machine: no portal, no keyring bus, no color.
fn hal(home: &Path) -> Command {
    let mut c = crate::support::hal_onboard_std();
    c.env_remove("HAL_PORTAL_URL")
        .env_remove("HAL_PORTAL_TOKEN")
        .env_remove("HAL_ONBOARD_HOME")
        .env_remove("HAL_ONBOARD_PWSH")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("NO_COLOR", "1")
        .arg("--home")
        .arg(home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Sends SIGINT (what the terminal sends on Ctrl-C) and waits for the end, at most 20 s.
fn interrupt(child: Child) -> Output {
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("hal-onboard ends soon after Ctrl-C")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    out
}

fn assert_interrupted(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit status {:?}; stderr: {stderr}",
        out.status
    );
    // Issue 11: every command ends the same way, one line and no further advice.
    const LINE: &str =
        "interrupted: everything done so far is saved; run the same command to resume";
    assert_eq!(stderr.matches(LINE).count(), 1, "{stderr}");
    assert!(!stderr.contains("hint:"), "{stderr}");
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ual retry` while PowerShell hangs: the child is ended, the store is untouched, the --json
/// report says so, and the exit status is 130 (it was 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_exits_130() {
    let id = Uuid::new_v4();
    let w = world(vec![(
        id,
        ExchangeScenario {
            hang: true,
            ..Default::default()
        },
    )])
    .await;
    let home = w.dir.path().join("home");
    let store = TenantStore::open(&home).unwrap();
    let mut rec = TenantRecord::new(id, "hotel.onmicrosoft.com", "hotel", Cloud::Global);
    rec.ual.state = UalState::WaitingPropagation;
    rec.ual.attempts = 1;
    rec.steps.exchange.status = StepStatus::Waiting;
    store.save_changes(None, &rec).unwrap();
    let before = std::fs::read(store.path()).unwrap();

    let child = hal(&home)
        .args(["--json", "ual", "retry"])
        .env("HAL_ONBOARD_PWSH", &w.pwsh)
        .env("HAL_ONBOARD_EXCHANGE_TOKEN", token(&w.signer, id))
        .env("HAL_ONBOARD_PWSH_TIMEOUT", "120")
        .spawn()
        .unwrap();
    let sim = w.sim.clone();
    let out = tokio::task::spawn_blocking(move || {
        wait_for("the stand-in PowerShell to connect", || {
            sim.snapshot(id).unwrap().counters.connects > 0
        });
        interrupt(child)
    })
    .await
    .unwrap();
    assert_interrupted(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["tenants"][0]["result"], "interrupted");
    assert_eq!(std::fs::read(store.path()).unwrap(), before);
}

/// `doctor` while PowerShell does not answer: 130 (it was 1, "not ready").
#[test]
fn doctor_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("pwsh-started");
    let pwsh = dir.path().join("pwsh");
    std::fs::write(
        &pwsh,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 60\n", started.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pwsh, std::fs::Permissions::from_mode(0o755)).unwrap();

    let child = hal(&dir.path().join("home"))
        .arg("doctor")
        .env("HAL_ONBOARD_PWSH", &pwsh)
        .spawn()
        .unwrap();
    wait_for("PowerShell to start", || started.exists());
    assert_interrupted(&interrupt(child));
}

/// `portal status` while the portal accepts the connection and never answers: 130 (the
/// process used to die of the signal, with no exit status and no message).
#[test]
fn portal_status_exits_130() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let child = hal(&dir.path().join("home"))
        .args(["portal", "status"])
        .env("HAL_PORTAL_URL", format!("https://127.0.0.1:{port}"))
        .env("HAL_PORTAL_TOKEN", "not-a-real-token")
        .spawn()
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30))
        .expect("hal-onboard connects to the portal");
    assert_interrupted(&interrupt(child));
}

/// `list` while reading a state file that is a pipe nobody writes: 130 (it used to die of the
/// signal).
#[test]
fn list_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let fifo = home.join("tenants.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    let child = hal(&home).arg("list").spawn().unwrap();
    // Opening the pipe blocks until a writer comes; give the process time to get there.
    std::thread::sleep(Duration::from_millis(1500));
    assert_interrupted(&interrupt(child));
}

/// Ctrl-C at a prompt (`portal login` asking for the URL) arrives as a key: it ends the
/// command with 130 as anywhere else (the process used to die of the signal).
#[test]
fn ctrl_c_at_a_prompt_exits_130() {
    use expectrl::process::unix::WaitStatus;
    use expectrl::{ControlCode, Expect};
    let dir = tempfile::tempdir().unwrap();
    let mut c = crate::support::hal_onboard_std();
    c.env_remove("HAL_PORTAL_URL")
        .env_remove("HAL_PORTAL_TOKEN")
        .env_remove("HAL_ONBOARD_HOME")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .arg("--home")
        .arg(dir.path().join("home"))
        .args(["portal", "login"]);
    let mut s = expectrl::Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s.expect("MSP portal URL").unwrap();
    s.send(ControlCode::EndOfText).unwrap();
    s.expect("interrupted").unwrap();
    s.expect(expectrl::Eof).unwrap();
    match s.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 130),
        other => panic!("ended by {other:?}, not exit 130"),
    }
}
