//! No secret — client secret, access or refresh token, portal token — in the state files,
//! the output (also at -vv, also with --json), or a child's command line.

use std::path::{Path, PathBuf};

use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

fn scenario(id: Uuid) -> Scenario {
    let mut t = TenantScenario {
        id,
        display_name: "Leak Check".into(),
        domains: vec!["leak.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        // A new secret fails its first token requests: the retries are logged at -vv.
        new_credential_delay_requests: 2,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = "admin@leak.onmicrosoft.com".into();
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    Scenario {
        tenants: vec![t],
        ..Scenario::default()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Where a secret was found, if anywhere.
fn find_leak(haystacks: &[(String, String)], secrets: &[String]) -> Option<String> {
    for (name, text) in haystacks {
        for s in secrets {
            if !s.is_empty() && text.contains(s.as_str()) {
                return Some(format!("{name} holds a secret ({}…)", &s[..4.min(s.len())]));
            }
        }
        // Any JWT (access, refresh or id token) starts with a base64url JSON header.
        if text.contains("eyJhbGciOi") {
            return Some(format!("{name} holds a token"));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_in_files_output_or_verbose_logs() {
    let dir = tempfile::tempdir().unwrap();
    let id = Uuid::new_v4();
    let sb = Sandbox::start(scenario(id), &dir.path().join("sb"))
        .await
        .unwrap();
    let home = dir.path().join("home");

    let run = |args: Vec<&'static str>| {
        let mut c = crate::support::hal_onboard();
        for (k, v) in sb.env() {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("NO_COLOR", "1")
            .env_remove("HAL_ONBOARD_HOME")
            .arg("--home")
            .arg(&home)
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null());
        c
    };
    let mut outputs = Vec::new();
    for args in [
        vec![
            "-vv",
            "tenant",
            "add",
            "leak.onmicrosoft.com",
            "--skip-exchange",
            "--yes",
        ],
        vec![
            "-vv",
            "--json",
            "tenant",
            "add",
            "leak.onmicrosoft.com",
            "--skip-exchange",
            "--yes",
        ],
        vec!["-vv", "--json", "list"],
        vec!["-vv", "list"],
    ] {
        let label = args.join(" ");
        let out = run(args).output().await.unwrap();
        assert!(
            out.status.code() == Some(0),
            "{label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((
            format!("stdout of {label}"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
        outputs.push((
            format!("stderr of {label}"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    // -vv really logged the HTTP layer, so the check below means something.
    assert!(
        outputs
            .iter()
            .any(|(n, t)| n.starts_with("stderr") && t.contains("oauth2/v2.0/token")),
        "verbose output shows the requests"
    );

    let mut secrets: Vec<String> =
        sb.with_tenant(id, |t| t.secrets.values().map(|s| s.text.clone()).collect());
    assert!(!secrets.is_empty(), "a client secret was made");
    secrets.push(sb.portal().token());

    for f in files(&home) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        outputs.push((f.display().to_string(), text));
    }
    assert!(
        outputs.iter().any(|(n, _)| n.ends_with("tenants.json")),
        "the store was written"
    );
    if let Some(leak) = find_leak(&outputs, &secrets) {
        panic!("{leak}");
    }
}
