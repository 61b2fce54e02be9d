//! The device code at a real terminal (a pseudo-terminal), read off the screen as a
//! technician sees it: the code alone on its line, "Press Enter to open <the URL the server
//! returned> in your browser" where a browser can be opened, Enter opening it while polling
//! goes on, no Enter needed at all, and the expiry in local time to the minute.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use expectrl::{Expect, Regex, Session};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

fn scenario(id: Uuid) -> Scenario {
    let mut t = TenantScenario {
        id,
        display_name: "Pty Sign-in".into(),
        domains: vec!["ptysignin.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        // A few polls a second apart: time to press Enter while the flow polls.
        device_code_approve_after_polls: 3,
        device_code_interval: 1,
        ..TenantScenario::default()
    };
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    Scenario {
        tenants: vec![t],
        ..Scenario::default()
    }
}

/// A stand-in browser that writes down the URL it was asked to open.
fn browser(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("browser");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\n",
            dir.join("opened").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn spawn(sb: &Sandbox, home: &Path, extra_env: &[(&str, &str)]) -> expectrl::session::OsSession {
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in sb.env() {
        c.env(k, v);
    }
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .arg("--home")
        .arg(home)
        .args([
            "tenant",
            "add",
            "ptysignin.onmicrosoft.com",
            "--skip-exchange",
            "--yes",
        ]);
    let mut s = Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    s
}

/// Says no to the next tenant and waits for the end.
fn finish(s: &mut expectrl::session::OsSession) {
    s.expect("Onboard another tenant?").unwrap();
    s.send("n").unwrap();
    s.expect(expectrl::Eof).unwrap();
}

/// HH:MM at UTC+05:30 (the POSIX TZ "HAL-05:30"), `secs` from now.
fn at_plus_0530(secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc()
        + time::Duration::seconds(secs)
        + time::Duration::minutes(330);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[test]
fn the_code_alone_then_press_enter_opens_the_servers_url_while_polling_goes_on() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = rt
        .block_on(Sandbox::start(
            scenario(Uuid::new_v4()),
            &dir.path().join("sb"),
        ))
        .unwrap();
    let b = browser(dir.path());
    let before = at_plus_0530(900);
    let mut s = spawn(
        &sb,
        &dir.path().join("home"),
        &[("BROWSER", b.to_str().unwrap()), ("TZ", "HAL-05:30")],
    );
    // The code alone on its line, as gh shows it.
    let code = s
        .expect(Regex(r"! First copy your one-time code: ([A-Z0-9-]+)\r?\n"))
        .unwrap();
    let code = String::from_utf8_lossy(code.get(1).unwrap()).to_string();
    assert!(code.len() >= 8, "{code}");
    // The verification URI the server returned, not one made up here.
    let verification = sb.login_url().join("devicelogin").unwrap();
    s.expect(format!(
        "Press Enter to open {verification} in your browser"
    ))
    .unwrap();
    let expiry = s
        .expect(Regex(r"The code expires at ([0-9:.]+( UTC)?)\."))
        .unwrap();
    let expiry = String::from_utf8_lossy(expiry.get(1).unwrap()).to_string();
    let after = at_plus_0530(901);
    assert!(
        expiry == before || expiry == after,
        "local time (UTC+05:30) to the minute: {expiry}, expected {before}"
    );
    s.send("\r").unwrap();
    s.expect(format!("Opened {verification} in your browser"))
        .unwrap();
    s.expect("Signed in").unwrap();
    s.expect("is onboarded").unwrap();
    finish(&mut s);
    let opened = std::fs::read_to_string(dir.path().join("opened")).unwrap();
    assert_eq!(opened.trim(), verification.as_str());
}

#[test]
fn without_enter_the_flow_polls_on_and_without_a_browser_there_is_no_such_line() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = rt
        .block_on(Sandbox::start(
            scenario(Uuid::new_v4()),
            &dir.path().join("sb"),
        ))
        .unwrap();
    let b = browser(dir.path());
    // A browser could be opened, but nobody presses Enter: the sign-in still finishes.
    let mut s = spawn(
        &sb,
        &dir.path().join("home1"),
        &[("BROWSER", b.to_str().unwrap())],
    );
    s.expect("Press Enter to open").unwrap();
    s.expect("Signed in").unwrap();
    finish(&mut s);
    assert!(
        !dir.path().join("opened").exists(),
        "nothing opened unasked"
    );

    // No display and no $BROWSER: no Enter line, the URL to open on any device instead.
    let mut s = spawn(&sb, &dir.path().join("home2"), &[]);
    s.expect("First copy your one-time code").unwrap();
    let screen = s.expect("Signed in").unwrap();
    let screen = String::from_utf8_lossy(screen.before()).to_string();
    assert!(!screen.contains("Press Enter"), "{screen}");
    assert!(screen.contains("in a browser on any device"), "{screen}");
    finish(&mut s);
}
