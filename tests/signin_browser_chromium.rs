//! The browser sign-in end to end with a real headless browser: Debian's chromium, started as
//! `$BROWSER` by `tenant add --auth browser`, opens the sign-in URL the tool printed, signs in
//! on the sandbox's sign-in page (a real HTML form, which submits itself as Entra's does for an
//! account already signed in) and lands on the tool's loopback redirect; the run then
//! finishes. Skipped, saying so, where chromium is not installed; CI installs it
//! (`.ci/run`) and sets HAL_ONBOARD_TEST_CHROMIUM=1, which makes a missing chromium a failure.

use std::os::unix::fs::PermissionsExt;

use crate::support::common::{Env, assert_ok, stderr, tenant};

fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_signs_in_on_the_sandbox_page_and_lands_on_the_loopback() {
    let Some(chromium) = chromium() else {
        let required = std::env::var("HAL_ONBOARD_TEST_CHROMIUM").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HAL_ONBOARD_TEST_CHROMIUM=1 but chromium is not installed"
        );
        eprintln!(
            "SKIPPED signin_browser_chromium: chromium is not installed here (`apt-get install chromium`); CI installs it and runs this test"
        );
        return;
    };
    let env = Env::start(tenant(0x5160_00c1)).await;
    let work = env.dir.path().join("chromium");
    std::fs::create_dir_all(&work).unwrap();
    // The stand-in $BROWSER: a headless chromium on the URL, left running (as a browser is)
    // and ended by the test. The sandbox's CA is made for the run, so certificate errors are
    // ignored in this throwaway profile only.
    let script = work.join("browser");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > '{w}/url'\n'{c}' --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --no-default-browser-check --ignore-certificate-errors --user-data-dir='{w}/profile' --enable-logging=stderr --v=0 \"$1\" > '{w}/chromium.log' 2>&1 &\necho $! > '{w}/pid'\n",
            w = work.display(),
            c = chromium.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let d = env.domain();
    let out = env
        .run_with(
            &[
                ("BROWSER", Some(script.to_str().unwrap())),
                ("HAL_ONBOARD_BROWSER_TIMEOUT", Some("90")),
            ],
            &[
                "tenant",
                "add",
                &d,
                "--skip-exchange",
                "--yes",
                "--auth",
                "browser",
            ],
        )
        .await;
    if let Ok(pid) = std::fs::read_to_string(work.join("pid")) {
        // End chromium (the process this test started, by its id).
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    let log = std::fs::read_to_string(work.join("chromium.log")).unwrap_or_default();
    assert_ok(&out);
    let err = stderr(&out);
    // The URL chromium opened is the one the tool printed.
    let url = std::fs::read_to_string(work.join("url")).unwrap();
    assert!(err.contains(url.trim()), "{err}");
    assert!(err.contains("Signed in"), "{err}");
    assert!(err.contains("is onboarded"), "{err}");
    assert!(!err.contains("one-time code"), "no device code: {err}");
    // chromium loaded the sign-in page, submitted its form, and the code was redeemed.
    let reqs = env.sb.requests();
    let authorize_get = reqs
        .iter()
        .any(|r| r.method == "GET" && r.path.contains("/oauth2/v2.0/authorize") && r.status == 200);
    let authorize_post = reqs.iter().any(|r| {
        r.method == "POST" && r.path.contains("/oauth2/v2.0/authorize") && r.status == 302
    });
    assert!(
        authorize_get && authorize_post,
        "the sign-in page was shown and submitted; chromium: {log}"
    );
}
