//! `portal login`, `portal status` and `portal submit` against the sandbox portal over HTTPS,
//! configured exactly as a technician would (environment variables).

use std::path::Path;
use std::process::Output;

use hal_sandbox::{Sandbox, Scenario};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn hal(sb: &Sandbox, home: &Path, env: &[(&str, &str)], stdin: &str, args: &[&str]) -> Run {
    let mut cmd = crate::support::hal_onboard();
    cmd.arg("--home").arg(home).arg("--no-input").args(args);
    for (k, v) in sb.env() {
        cmd.env(k, v);
    }
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd.env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn hal-onboard");
    {
        use tokio::io::AsyncWriteExt;
        let mut i = child.stdin.take().unwrap();
        i.write_all(stdin.as_bytes()).await.unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().await.unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

async fn sandbox(dir: &Path) -> Sandbox {
    Sandbox::start(Scenario::demo(), &dir.join("sandbox"))
        .await
        .expect("sandbox starts")
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_status_accepts_the_sandbox_token_and_rejects_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let home = dir.path().join("home");

    let ok = hal(&sb, &home, &[], "", &["--json", "portal", "status"]).await;
    assert_eq!(ok.code, 0, "stderr: {}", ok.stderr);
    let v: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(v["accepted"], true);
    assert_eq!(v["urlSource"], "environment");
    assert_eq!(v["tokenSource"], "environment");
    assert!(
        !ok.stdout.contains(&sb.portal().token()),
        "the token is never printed"
    );
    assert_eq!(
        sb.portal().request_count(),
        1,
        "one request checks the portal"
    );

    let bad = hal(
        &sb,
        &home,
        &[("HAL_PORTAL_TOKEN", "wrong-token-value")],
        "",
        &["portal", "status"],
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("rejected the API token"),
        "{}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("hal-onboard portal login"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("wrong-token-value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_status_retries_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    sb.portal().fail_next(2);
    let r = hal(&sb, dir.path(), &[], "", &["portal", "status"]).await;
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(sb.portal().request_count(), 3, "two 503s, then success");

    sb.portal().fail_next(10);
    let r = hal(&sb, dir.path(), &[], "", &["portal", "status"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("unavailable (HTTP 503) after 4 attempts"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_without_configuration_says_how_to_configure_it() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let r = hal(
        &sb,
        dir.path(),
        &[("HAL_PORTAL_URL", ""), ("HAL_PORTAL_TOKEN", "")],
        "",
        &["portal", "status"],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("not set"), "{}", r.stdout);
    assert!(
        r.stderr.contains("hal-onboard portal login"),
        "{}",
        r.stderr
    );

    let r = hal(&sb, dir.path(), &[], "", &["portal", "submit"]).await;
    assert_eq!(r.code, 2, "naming nothing is bad usage");
    assert!(r.stderr.contains("--all"));
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_login_checks_then_saves_the_url_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let sb = sandbox(dir.path()).await;
    let home = dir.path().join("home");
    let url = sb.portal_url().to_string();
    let token = sb.portal().token();

    // A wrong token is refused before anything is saved.
    let r = hal(
        &sb,
        &home,
        &[("HAL_PORTAL_URL", ""), ("HAL_PORTAL_TOKEN", "")],
        "not-the-token\n",
        &["portal", "login", "--url", &url, "--token-stdin"],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!home.join("config.json").exists());

    // http:// is refused: the token and secrets travel to the portal.
    let r = hal(
        &sb,
        &home,
        &[("HAL_PORTAL_URL", ""), ("HAL_PORTAL_TOKEN", "")],
        "x\n",
        &[
            "portal",
            "login",
            "--url",
            "http://127.0.0.1:1/",
            "--token-stdin",
        ],
    )
    .await;
    assert_eq!(r.code, 2);

    let r = hal(
        &sb,
        &home,
        &[("HAL_PORTAL_URL", ""), ("HAL_PORTAL_TOKEN", "")],
        &format!("{token}\n"),
        &["portal", "login", "--url", &url, "--token-stdin"],
    )
    .await;
    let keyring = hal_onboard::secrets::KeyringStore::probe().is_ok();
    if keyring {
        assert_eq!(r.code, 0, "{}", r.stderr);
        let cfg = std::fs::read_to_string(home.join("config.json")).unwrap();
        assert!(cfg.contains(&url));
        assert!(!cfg.contains(&token), "the token is never written to disk");
        // Status now works from config.json + keyring alone.
        let s = hal(
            &sb,
            &home,
            &[("HAL_PORTAL_URL", ""), ("HAL_PORTAL_TOKEN", "")],
            "",
            &["--json", "portal", "status"],
        )
        .await;
        assert_eq!(s.code, 0, "{}", s.stderr);
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        assert_eq!(v["urlSource"], "config");
        assert_eq!(v["tokenSource"], "keyring");
        let _ = hal_onboard::secrets::SecretStore::delete(
            &hal_onboard::secrets::KeyringStore,
            &hal_onboard::secrets::account::portal_token(&sb.portal_url()),
        );
    } else {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("no OS keyring"), "{}", r.stderr);
        assert!(r.stderr.contains("HAL_PORTAL_TOKEN"), "{}", r.stderr);
        assert!(!home.join("config.json").exists());
    }
    for dirent in walk(&home) {
        let text = std::fs::read(&dirent).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&text).contains(&token),
            "token found in {}",
            dirent.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
