//! The interactive wizard in a real pseudo-terminal, answered as a person would: the plan and
//! its question, Ctrl-C in the middle of a step, and a re-run that resumes without making
//! anything twice.
#![cfg(unix)]

use std::path::Path;
use std::time::Duration;

use expectrl::{ControlCode, Expect, Session};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const APP: &str = "hal-siem-log-collector";

fn scenario(id: Uuid, latency_ms: u64) -> Scenario {
    let mut t = TenantScenario {
        id,
        display_name: "Pty Tenant".into(),
        domains: vec!["pty.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        latency_ms,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = "admin@pty.onmicrosoft.com".into();
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    Scenario {
        tenants: vec![t],
        ..Scenario::default()
    }
}

fn wizard(sb: &Sandbox, home: &Path, extra: &[&str]) -> expectrl::session::OsSession {
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in sb.env() {
        c.env(k, v);
    }
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("HAL_ONBOARD_HOME")
        .arg("--home")
        .arg(home)
        .args(["tenant", "add", "pty.onmicrosoft.com", "--skip-exchange"])
        .args(extra);
    let mut s = Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    s
}

fn apps_named(sb: &Sandbox, id: Uuid) -> usize {
    sb.snapshot(id)
        .applications
        .iter()
        .filter(|a| a.display_name == APP)
        .count()
}

#[test]
fn wizard_asks_before_changing_and_no_means_nothing_changes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    let sb = rt
        .block_on(Sandbox::start(scenario(id, 0), &dir.path().join("sb")))
        .unwrap();
    let home = dir.path().join("home");

    let mut s = wizard(&sb, &home, &[]);
    s.expect("Plan:").unwrap();
    s.expect("App registration").unwrap();
    s.expect("as planned?").unwrap();
    s.send("n").unwrap();
    s.expect("nothing was changed").unwrap();
    // The guide's "repeat for every tenant": the wizard offers the next one.
    s.expect("Onboard another tenant?").unwrap();
    s.send("n").unwrap();
    s.expect(expectrl::Eof).unwrap();
    assert_eq!(apps_named(&sb, id), 0, "declining changes nothing");
    assert!(
        sb.requests().iter().all(|r| r.method == "GET"
            || !r.path.starts_with("/graph/")
            || r.path.contains("$batch")),
        "no Graph write before the answer"
    );
}

#[test]
fn ctrl_c_mid_step_then_rerun_resumes_without_duplicates() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    // Slow responses, so Ctrl-C lands while a step is under way.
    let sb = rt
        .block_on(Sandbox::start(scenario(id, 400), &dir.path().join("sb")))
        .unwrap();
    let home = dir.path().join("home");

    let mut s = wizard(&sb, &home, &[]);
    s.expect("as planned?").unwrap();
    s.send("y").unwrap();
    s.expect("Client secret").unwrap();
    // Mid-run: the app exists or is being made; interrupt now.
    s.send(ControlCode::EndOfText).unwrap();
    s.expect(expectrl::Eof).unwrap();

    // The store is whole and parses; whatever was recorded is consistent.
    let text = std::fs::read_to_string(home.join("tenants.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).expect("store parses after Ctrl-C");
    assert_eq!(doc["tenants"].as_array().unwrap().len(), 1);

    // A re-run (the same command, answering yes) finishes the job.
    let mut s = wizard(&sb, &home, &[]);
    if s.expect("as planned?").is_ok() {
        s.send("y").unwrap();
    }
    s.expect("is onboarded").unwrap();
    s.expect("Directory (tenant) ID").unwrap();
    s.expect("Onboard another tenant?").unwrap();
    s.send("n").unwrap();
    s.expect(expectrl::Eof).unwrap();

    assert_eq!(apps_named(&sb, id), 1, "never a second app");
    let snap = sb.snapshot(id);
    let app = snap
        .applications
        .iter()
        .find(|a| a.display_name == APP)
        .unwrap();
    let sp = snap
        .service_principals
        .iter()
        .find(|p| p.app_id == app.app_id.to_string())
        .expect("our service principal");
    let grants = snap
        .app_role_assignments
        .iter()
        .filter(|g| g.principal_id == sp.id)
        .count();
    assert_eq!(grants, 15, "all 15 permissions granted exactly once");

    let text = std::fs::read_to_string(home.join("tenants.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = &doc["tenants"][0];
    assert_eq!(t["steps"]["verify"]["status"], "done");
    assert_eq!(t["app"]["appId"], app.app_id.to_string().as_str());
}
