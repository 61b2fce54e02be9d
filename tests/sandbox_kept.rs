//! `--sandbox --home DIR` keeps its cloud and its home: `tenant add`, then `list`,
//! `ual retry`, `secret rotate` and `tenant remove` in later runs see the same tenants;
//! `sandbox reset` starts over. Without `--home` the sandbox is throwaway, says so at the end,
//! and leaves no temporary folder, however the run ends (exit, SIGTERM, SIGHUP).
#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn hal(tmp: &Path) -> Command {
    let mut c = crate::support::hal_onboard_std();
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .env_remove("HAL_ONBOARD_HOME")
        .arg("--no-input")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(tmp: &Path, args: &[&str]) -> Output {
    let out = hal(tmp).args(args).output().unwrap();
    eprintln!(
        "$ hal-onboard {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listed(tmp: &Path, home: &str) -> serde_json::Value {
    let out = run(tmp, &["--json", "list", "--sandbox", "--home", home]);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn tenants(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["tenants"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_session_of_several_commands_sees_the_same_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let home = dir.path().join("d");
    let home = home.to_str().unwrap();

    let add = run(
        &tmp,
        &["tenant", "add", "--sandbox", "--home", home, "--yes"],
    );
    // The demo tenant's Exchange needs more attempts: waiting (3), or done.
    assert!(matches!(add.status.code(), Some(0 | 3)));
    let l = listed(&tmp, home);
    let ts = tenants(&l);
    assert_eq!(ts.len(), 1, "list sees the tenant tenant add made: {l}");
    let domain = ts[0]["primaryDomain"]
        .as_str()
        .or(ts[0]["domain"].as_str())
        .unwrap()
        .to_string();

    // UAL: the Exchange organization's propagation carried over between runs.
    let mut finished = false;
    for _ in 0..5 {
        let r = run(&tmp, &["ual", "retry", "--sandbox", "--home", home]);
        if r.status.code() == Some(0) {
            finished = true;
            break;
        }
        assert_eq!(r.status.code(), Some(3), "ual retry waits or finishes");
    }
    assert!(finished, "ual retry finishes the kept tenant");

    let rot = run(
        &tmp,
        &[
            "secret",
            "rotate",
            &domain,
            "--sandbox",
            "--home",
            home,
            "--yes",
        ],
    );
    assert_eq!(
        rot.status.code(),
        Some(0),
        "secret rotate on the kept tenant"
    );

    let rm = run(
        &tmp,
        &[
            "tenant",
            "remove",
            &domain,
            "--sandbox",
            "--home",
            home,
            "--yes",
        ],
    );
    assert_eq!(rm.status.code(), Some(0));
    assert!(tenants(&listed(&tmp, home)).is_empty());

    // Starting over: the cloud is the scenario's again, the home empty.
    let reset = run(&tmp, &["sandbox", "reset", "--home", home]);
    assert_eq!(reset.status.code(), Some(0));
    assert!(!Path::new(home).join("sandbox").exists());
    assert!(!Path::new(home).join("tenants.json").exists());
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a kept sandbox leaves nothing in TMPDIR"
    );
}

#[test]
fn reset_and_sandbox_refuse_a_real_home() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("tenants.json"), r#"{"version":1,"tenants":[]}"#).unwrap();
    let real_s = real.to_str().unwrap();
    let r = run(&tmp, &["sandbox", "reset", "--home", real_s]);
    assert_eq!(r.status.code(), Some(2));
    assert!(real.join("tenants.json").exists(), "nothing removed");
    let r = run(&tmp, &["list", "--sandbox", "--home", real_s]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "a real home never gets sandbox tenants"
    );
}

#[test]
fn throwaway_sandbox_says_so_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = run(&tmp, &["tenant", "add", "--sandbox", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("thrown away"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("--sandbox --home DIR"),
        "the end says how to keep one: {stderr}"
    );
    assert!(
        !stderr.contains("ual retry contoso"),
        "no hint points at the deleted tenant: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "TMPDIR is clean"
    );
}

fn ended_by(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Real retry waits: the run is still going when the signal comes.
    let child = hal(&tmp)
        .env("HAL_ONBOARD_RETRY_SCALE", "1")
        .args(["tenant", "add", "--sandbox", "--yes"])
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&tmp).unwrap().count() == 0 {
        assert!(Instant::now() < until, "the sandbox folder never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + signal));
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the temporary sandbox folder is removed on signal {signal}"
    );
}

#[test]
fn sigterm_removes_the_temporary_sandbox() {
    ended_by(libc::SIGTERM);
}

#[test]
fn sighup_removes_the_temporary_sandbox() {
    ended_by(libc::SIGHUP);
}

/// A throwaway sandbox drops only the hints that name one of our commands (they would run
/// against state that is gone); the way on that still holds, such as which `--cloud` to pass,
/// stays, before the note that the sandbox was thrown away.
#[test]
fn throwaway_sandbox_keeps_a_hint_that_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scenarios/clouds.json");
    let out = run(
        &tmp,
        &[
            "tenant",
            "add",
            "--sandbox",
            "--sandbox-scenario",
            scenario,
            "--cloud",
            "global",
            "countyagency.onmicrosoft.com",
            "--yes",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass --cloud gcc"), "{stderr}");
    assert!(stderr.contains("thrown away"), "{stderr}");
}
