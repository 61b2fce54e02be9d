//! Ctrl-C in a real terminal, at each prompt of `tenant add` and inside each of its steps:
//! one line on a fresh line ("interrupted: everything done so far is saved; run the same
//! command to resume"), exit 130, no further question, and nothing recorded as a failure in
//! tenants.json (no step failed, no UAL attempt counted).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{ControlCode, Expect, Regex, Session};
use hal_sandbox::exchange::ExchangeScenario;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const LINE: &str = "interrupted: everything done so far is saved; run the same command to resume";

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    pwsh: PathBuf,
    _rt: tokio::runtime::Runtime,
}

fn world(tweak: impl FnOnce(&mut TenantScenario, &mut Scenario)) -> World {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut t = TenantScenario {
        id: Uuid::new_v4(),
        display_name: "Pty Tenant".into(),
        domains: vec!["pty.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = "admin@pty.onmicrosoft.com".into();
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    let mut sc = Scenario::default();
    tweak(&mut t, &mut sc);
    sc.tenants = vec![t];
    let sb = rt
        .block_on(Sandbox::start(sc, &dir.path().join("sb")))
        .unwrap();
    let pwsh = hal_sandbox::pwsh::install_standin(
        &dir.path().join("bin"),
        Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &sb.exchange_url(),
        &sb.ca_path(),
    )
    .unwrap();
    World {
        sb,
        dir,
        pwsh,
        _rt: rt,
    }
}

impl World {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn spawn(&self, args: &[&str]) -> expectrl::session::OsSession {
        let mut c = crate::support::hal_onboard_std();
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("HAL_ONBOARD_PWSH", &self.pwsh)
            .env("HAL_ONBOARD_PWSH_TIMEOUT", "120")
            .env("TERM", "xterm")
            .env("NO_COLOR", "1")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env_remove("HAL_ONBOARD_HOME")
            .arg("--home")
            .arg(self.home())
            .args(args);
        let mut s = Session::spawn(c).expect("spawn in a pty");
        s.set_expect_timeout(Some(Duration::from_secs(60)));
        s
    }

    /// What tenants.json says, if it exists.
    fn store(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.home().join("tenants.json")).ok()?;
        Some(serde_json::from_str(&text).expect("the store parses after Ctrl-C"))
    }
}

/// Presses Ctrl-C and checks what the terminal shows afterwards, the exit status, and that
/// no step is recorded as failed (and no UAL attempt counted).
fn press_ctrl_c_and_check(w: &World, mut s: expectrl::session::OsSession) -> String {
    // (After a first Ctrl-C the process may be gone already.)
    let _ = s.send(ControlCode::EndOfText);
    // The line first, then the end: waiting for the end alone can miss the last output.
    let said = s.expect(LINE).unwrap();
    let mut bytes = said.before().to_vec();
    bytes.extend(said.matches().flatten());
    let after = s.expect(expectrl::Eof).unwrap();
    bytes.extend(after.before());
    bytes.extend(after.matches().flatten());
    let screen = String::from_utf8_lossy(&bytes).to_string();
    // The last line is the message, alone on its line (after a possible "^C" echo and the
    // terminal controls that clear a spinner).
    let last = screen
        .rsplit(['\n'])
        .map(|l| strip_controls(l.trim_end_matches('\r')))
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert_eq!(last.trim_end(), LINE, "screen after Ctrl-C: {screen:?}");
    assert_eq!(
        screen.matches("interrupted").count(),
        1,
        "one line: {screen:?}"
    );
    for bad in ["error:", "Onboard another tenant", "IO error", "hint:"] {
        assert!(!screen.contains(bad), "{bad:?} after Ctrl-C: {screen:?}");
    }
    match s.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => assert_eq!(code, 130, "{screen:?}"),
        other => panic!("ended by {other:?}, not exit 130"),
    }
    if let Some(doc) = w.store() {
        for t in doc["tenants"].as_array().unwrap() {
            for (step, v) in t["steps"].as_object().unwrap() {
                assert_ne!(v["status"], "failed", "step {step} recorded as failed: {t}");
            }
            assert_ne!(t["ual"]["state"], "failed", "UAL recorded as failed: {t}");
            assert_eq!(
                t["ual"]["attempts"].as_u64().unwrap_or(0),
                0,
                "an interrupted attempt is not counted: {t}"
            );
        }
    }
    screen
}

/// The visible text of one screen line: what follows the last carriage return or
/// erase-line, with the escape sequences removed.
fn strip_controls(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    let mut code = String::new();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            code.push(c);
                            break;
                        }
                        code.push(c);
                    }
                    if code.ends_with('K') {
                        out.clear();
                    }
                }
            }
            '\r' => out.clear(),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn at_the_tenant_prompt() {
    let w = world(|_, _| {});
    let mut s = w.spawn(&["tenant", "add"]);
    s.expect("Customer tenant").unwrap();
    press_ctrl_c_and_check(&w, s);
}

#[test]
fn at_the_name_prompt() {
    let w = world(|_, _| {});
    let mut s = w.spawn(&["tenant", "add"]);
    s.expect("Customer tenant").unwrap();
    s.send_line("pty.onmicrosoft.com").unwrap();
    s.expect("Your name").unwrap();
    press_ctrl_c_and_check(&w, s);
}

#[test]
fn at_the_plan_question() {
    let w = world(|_, _| {});
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com"]);
    s.expect("as planned?").unwrap();
    press_ctrl_c_and_check(&w, s);
}

#[test]
fn at_onboard_another_tenant() {
    let w = world(|_, _| {});
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com", "--skip-exchange"]);
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    s.expect("Onboard another tenant?").unwrap();
    press_ctrl_c_and_check(&w, s);
}

#[test]
fn while_waiting_for_the_sign_in() {
    let w = world(|t, _| t.device_code_approve_after_polls = 1000);
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com"]);
    s.expect("Waiting for you to sign in").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    press_ctrl_c_and_check(&w, s);
}

/// PowerShell hangs after connecting: Ctrl-C ends it, and the step is not "failed".
#[test]
fn inside_the_exchange_step() {
    let w = world(|t, _| {
        t.exchange = ExchangeScenario {
            hang: true,
            dehydrated: true,
            ..Default::default()
        }
    });
    let id = w.sb.tenants()[0].id;
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com"]);
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    s.expect("Exchange audit logging").unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while w
        .sb
        .exchange()
        .snapshot(id)
        .is_none_or(|x| x.counters.connects == 0)
    {
        assert!(
            std::time::Instant::now() < until,
            "PowerShell never connected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    press_ctrl_c_and_check(&w, s);
}

/// Each Graph step, interrupted while its spinner runs: the sandbox answers every request
/// slowly (from the plan's answer on), so the step is still under way when Ctrl-C comes.
fn inside_graph_step(title: &str) {
    let w = world(|_, _| {});
    let id = w.sb.tenants()[0].id;
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com", "--skip-exchange"]);
    s.expect("as planned?").unwrap();
    w.sb.with_tenant(id, |t| t.scenario.latency_ms = 2000);
    s.send("y").unwrap();
    s.expect(Regex(&format!("[⠁-⣿] {}", regex_escape(title))))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let screen = press_ctrl_c_and_check(&w, s);
    assert!(
        !screen.contains(&format!("✔ {title}")),
        "Ctrl-C came after the step: {screen:?}"
    );
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if "()[]{}.*+?^$|\\".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn inside_the_app_step() {
    inside_graph_step("App registration");
}

#[test]
fn inside_the_secret_step() {
    inside_graph_step("Client secret");
}

#[test]
fn inside_the_consent_step() {
    inside_graph_step("Permissions and admin consent");
}

#[test]
fn inside_the_verify_step() {
    inside_graph_step("Verify the credentials");
}

/// The portal, slowed down by its own knob.
#[test]
fn inside_the_portal_step() {
    let w = world(|_, sc| sc.portal.latency_ms = 1500);
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com", "--skip-exchange"]);
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    s.expect(Regex("[⠁-⣿] Send to the MSP portal")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    press_ctrl_c_and_check(&w, s);
}

/// A second Ctrl-C (impatience) says the same, once, and not "IO error".
#[test]
fn twice_at_the_plan_question() {
    let w = world(|_, _| {});
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com"]);
    s.expect("as planned?").unwrap();
    s.send(ControlCode::EndOfText).unwrap();
    press_ctrl_c_and_check(&w, s);
}

/// A line printed while a spinner runs (the Exchange sign-in's code) goes above the spinner,
/// not onto its line: there it would stay on the screen beside a stale spinner frame.
#[test]
fn lines_printed_during_a_spinner_do_not_land_on_its_line() {
    let w = world(|t, _| {
        t.exchange = ExchangeScenario {
            hang: true,
            ..Default::default()
        }
    });
    let mut s = w.spawn(&["tenant", "add", "pty.onmicrosoft.com"]);
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    let seen = s.expect("Signed in to Exchange Online").unwrap();
    let screen = String::from_utf8_lossy(seen.before()).to_string();
    for line in screen.split("\r\n") {
        let visible = strip_controls(line);
        assert!(
            !(visible.contains("To sign in to Exchange Online")
                && visible.contains("Exchange audit logging (hydrate")),
            "printed onto the spinner's line: {line:?}"
        );
    }
    press_ctrl_c_and_check(&w, s);
}
