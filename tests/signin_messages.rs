//! What the sign-in tells the technician when something is in the way, driven through the
//! real binary against the sandbox: no browser here (a device code instead, said so), a
//! browser that never comes back (a stated limit and the way out), the Azure CLI missing,
//! signed out or signed in elsewhere (stand-in `az` scripts speaking az's own words), a
//! refusal in plain words, a run that would need an answer stopped before the sign-in, and
//! two sign-ins announced before the first code.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::common::{Env, assert_ok, stderr, tenant};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// `tenant add` with extra environment (`(name, Some(value))` sets, `None` removes).
async fn add_with(
    env: &Env,
    extra_env: &[(&str, Option<&str>)],
    args: &[&str],
) -> std::process::Output {
    let d = env.domain();
    let mut a = vec!["tenant", "add", d.as_str()];
    a.extend_from_slice(args);
    env.run_with(extra_env, &a).await
}

fn device_code_requested(env: &Env) -> bool {
    env.sb
        .requests()
        .iter()
        .any(|r| r.path.contains("/oauth2/v2.0/devicecode"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_without_a_display_signs_in_with_a_device_code_and_says_so() {
    let env = Env::start(tenant(0x5160_0001)).await;
    let out = add_with(
        &env,
        &[],
        &["--skip-exchange", "--yes", "--auth", "browser"],
    )
    .await;
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("no browser can be opened here (no display: DISPLAY and WAYLAND_DISPLAY are unset): signing in with a device code instead"),
        "{err}"
    );
    assert!(err.contains("First copy your one-time code"), "{err}");
    assert!(device_code_requested(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_over_ssh_or_without_an_opener_falls_back_too() {
    let env = Env::start(tenant(0x5160_0002)).await;
    let out = add_with(
        &env,
        &[("SSH_CONNECTION", Some("10.0.0.1 5000 10.0.0.2 22"))],
        &["--skip-exchange", "--yes", "--auth", "browser"],
    )
    .await;
    assert_ok(&out);
    assert!(
        stderr(&out).contains(
            "(this is an SSH session without a display): signing in with a device code instead"
        ),
        "{}",
        stderr(&out)
    );

    // A display, but nothing on PATH that opens a browser.
    let empty = env.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = add_with(
        &env,
        &[
            ("DISPLAY", Some(":0")),
            ("PATH", Some(empty.to_str().unwrap())),
        ],
        &["--skip-exchange", "--yes", "--auth", "browser"],
    )
    .await;
    assert_ok(&out);
    assert!(
        stderr(&out).contains("xdg-open, which opens the desktop's browser, is not installed"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_never_comes_back_ends_after_the_stated_time_with_the_way_out() {
    let env = Env::start(tenant(0x5160_0003)).await;
    let bin = env.dir.path().join("bin");
    let opened = env.dir.path().join("opened");
    let browser = script(
        &bin,
        "browser",
        &format!("echo \"$1\" > '{}'", opened.display()),
    );
    let out = add_with(
        &env,
        &[
            ("BROWSER", Some(browser.to_str().unwrap())),
            ("HAL_ONBOARD_BROWSER_TIMEOUT", Some("2")),
        ],
        &["--skip-exchange", "--yes", "--auth", "browser"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Waiting up to 2 seconds for the browser sign-in"),
        "{err}"
    );
    assert!(
        err.contains("no answer from the browser within 2 seconds"),
        "{err}"
    );
    assert!(err.contains("--auth device-code"), "{err}");
    // The browser was handed the authorize URL the tool printed.
    let url = std::fs::read_to_string(&opened).unwrap();
    assert!(url.contains("/oauth2/v2.0/authorize?"), "{url}");
    assert!(
        err.contains(url.trim()),
        "the URL opened is the one printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_cli_missing_signed_out_or_elsewhere_says_which() {
    let env = Env::start(tenant(0x5160_0004)).await;
    let d = env.domain();
    let run = |path: PathBuf| {
        let env = &env;
        async move {
            add_with(
                env,
                &[("PATH", Some(path.to_str().unwrap()))],
                &["--skip-exchange", "--yes", "--auth", "azure-cli"],
            )
            .await
        }
    };

    // No `az` at all.
    let none = env.dir.path().join("no-az");
    std::fs::create_dir_all(&none).unwrap();
    let out = run(none).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the Azure CLI (`az`) is not installed, or not on PATH"),
        "{err}"
    );
    assert!(
        err.contains("--auth device-code") && err.contains("--auth browser"),
        "{err}"
    );

    // Signed out: az's own words (exit 1).
    let out_dir = env.dir.path().join("az-signed-out");
    script(
        &out_dir,
        "az",
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1",
    );
    let out = run(out_dir).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("the Azure CLI is not signed in"), "{err}");
    assert!(
        err.contains(&format!("`az login --tenant {d} --allow-no-subscriptions`")),
        "{err}"
    );

    // Signed in to another tenant: the account is not in this one.
    let elsewhere = env.dir.path().join("az-elsewhere");
    script(
        &elsewhere,
        "az",
        &format!(
            "/bin/cat >&2 <<'END'\nERROR: AADSTS50020: User account 'tech@msp.example' from identity provider 'https://sts.windows.net/0b0b0b0b-0000-4000-8000-000000000001/' does not exist in tenant 'Tenant' and cannot access the application '04b07795-8ddb-461a-bbee-02f9e1bf7b46'(Microsoft Azure CLI) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.\nTrace ID: 1\nCorrelation ID: 2\nTimestamp: 2026-01-01 00:00:00Z\nInteractive authentication is needed. Please run:\naz login --tenant {d}\nEND\nexit 1"
        ),
    );
    let out = run(elsewhere).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the Azure CLI is signed in, but not to {d}")),
        "{err}"
    );
    assert!(err.contains("AADSTS50020"), "{err}");
    assert!(
        err.contains(&format!("`az login --tenant {d} --allow-no-subscriptions`")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_access_is_said_in_plain_words_with_the_other_flow_offered() {
    let mut t = tenant(0x5160_0005);
    t.sign_in_error = Some(53003);
    let env = Env::start(t).await;
    let out = add_with(&env, &[], &["--skip-exchange", "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the customer's Conditional Access policies block this sign-in (AADSTS53003)"),
        "{err}"
    );
    assert!(
        err.contains("run the same command with `--auth browser`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_needs_an_answer_stops_before_the_sign_in_naming_the_flag() {
    let env = Env::start(tenant(0x5160_0006)).await;
    let out = add_with(&env, &[], &["--skip-exchange"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("needs an answer, and input is off"), "{err}");
    assert!(err.contains("Pass --yes"), "{err}");
    assert!(
        !device_code_requested(&env),
        "no device code before the answer"
    );
    assert!(!err.contains("one-time code"), "{err}");

    // With --yes it goes through; a finished tenant needs no answer at all.
    assert_ok(&add_with(&env, &[], &["--skip-exchange", "--yes"]).await);
    assert_ok(&add_with(&env, &[], &["--skip-exchange"]).await);

    // `secret rotate` always asks.
    env.sb.clear_requests();
    let d = env.domain();
    let out = env.run(&["secret", "rotate", &d]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Pass --yes"), "{}", stderr(&out));
    assert!(!device_code_requested(&env), "no sign-in before the answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sign_ins_are_announced_before_the_first_code() {
    let env = Env::start(tenant(0x5160_0007)).await;
    let pwsh = hal_sandbox::pwsh::install_standin(
        &env.dir.path().join("pwsh-bin"),
        Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &env.sb.exchange_url(),
        &env.sb.ca_path(),
    )
    .unwrap();
    let out = add_with(
        &env,
        &[("HAL_ONBOARD_PWSH", Some(pwsh.to_str().unwrap()))],
        &["--yes"],
    )
    .await;
    let err = stderr(&out);
    let announced = err.find("You will sign in twice").expect(&err);
    let first_code = err.find("First copy your one-time code").expect(&err);
    assert!(announced < first_code, "{err}");
    assert!(
        err[announced..].contains("Microsoft Graph")
            && err[announced..].contains("Exchange Online")
    );
    // The second code comes, as announced, for Exchange Online.
    let second = err[first_code + 1..].find("First copy your one-time code");
    assert!(second.is_some(), "{err}");
    assert!(err.contains("Now the sign-in to Exchange Online"), "{err}");
    // Without Exchange there is one sign-in, and nothing to announce.
    let env = Env::start(tenant(0x5160_0008)).await;
    let out = add_with(&env, &[], &["--yes", "--skip-exchange"]).await;
    assert_ok(&out);
    assert!(!stderr(&out).contains("sign in twice"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_an_administrator_names_the_roles_and_an_eligible_one_to_activate() {
    let mut t = tenant(0x5160_0009);
    t.signed_in_user.roles = vec!["Global Reader".into(), "Exchange Administrator".into()];
    t.signed_in_user.eligible_roles = vec!["Global Administrator".into()];
    let env = Env::start(t).await;
    let out = add_with(&env, &[], &["--skip-exchange", "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is not an administrator who can onboard this tenant: it has Global Reader, Exchange Administrator; onboarding needs Global Administrator, or Application Administrator (or Cloud Application Administrator) together with Privileged Role Administrator"),
        "{err}"
    );
    assert!(
        err.contains("Your Global Administrator role is eligible but not active: activate it in Privileged Identity Management"),
        "{err}"
    );
    assert!(
        env.sb.snapshot(env.id).applications.is_empty(),
        "nothing changed"
    );
    // Eligibility was read with the documented permission, asked for silently.
    assert!(
        env.sb
            .requests()
            .iter()
            .any(|r| r.path.contains("roleEligibilityScheduleInstances") && r.status == 200),
        "the eligibility was read"
    );
    assert_eq!(
        env.sb
            .requests()
            .iter()
            .filter(|r| r.path.contains("/oauth2/v2.0/devicecode"))
            .count(),
        1,
        "no second sign-in for it"
    );

    // No eligible role: the roles it has, and the plain way out.
    let mut t = tenant(0x5160_000a);
    t.signed_in_user.roles = vec!["Global Reader".into()];
    let env = Env::start(t).await;
    let out = add_with(&env, &[], &["--skip-exchange", "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("it has Global Reader;"), "{err}");
    assert!(!err.contains("eligible but not active"), "{err}");
    assert!(
        err.contains("Sign in as a Global Administrator of this tenant"),
        "{err}"
    );
}

/// A re-run whose saved sign-in Microsoft now refuses as expired (AADSTS700082) says so and
/// signs in again by itself, once, in the same run. Needs the OS keyring (CI has one) to keep
/// the sign-in from one run to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_saved_sign_in_is_said_so_and_the_run_signs_in_again_once() {
    let env = Env::start(tenant(0x5160_000b)).await;
    if !env.keyring {
        eprintln!("SKIPPED: no OS keyring here, so no sign-in is saved between runs (CI has one)");
        return;
    }
    assert_ok(&add_with(&env, &[], &["--skip-exchange", "--yes", "--keep-sign-in"]).await);
    env.sb
        .state()
        .lock()
        .tenant_mut(env.id)
        .unwrap()
        .scenario
        .refresh_error = Some(700082);
    env.sb.clear_requests();
    let out = add_with(&env, &[], &["--skip-exchange", "--yes"]).await;
    assert_ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("The saved sign-in was refused: the saved sign-in expired or was revoked (a password change, a sign-out everywhere, 90 days unused) (AADSTS700082). Signing in again."),
        "{err}"
    );
    assert_eq!(
        err.matches("First copy your one-time code").count(),
        1,
        "{err}"
    );
}
