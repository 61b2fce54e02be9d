//! One sign-in for Graph and Exchange Online outside partner mode: `tenant add --client-id` of
//! the partner app `partner setup` registered (multi-tenant, Graph's delegated permissions and
//! Exchange.Manage) redeems the Graph sign-in's refresh token for Exchange Online, so a
//! customer's own admin enters one device code. The sandbox's MSP tenant runs `partner setup`;
//! the customers are other tenants of the same cloud, their admin consenting through the admin
//! consent URL (or not at all).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::common::{Env, assert_ok, stderr, tenant};

fn domain(n: u128) -> String {
    format!("t{n}.onmicrosoft.com")
}

/// The MSP tenant (the first customer's id + 0x1000) with `partner setup` done, and the
/// customers in the same cloud.
async fn world(customers: &[u128]) -> (Env, String, PathBuf) {
    world_of(customers.iter().map(|n| tenant(*n)).collect()).await
}

async fn world_of(customers: Vec<hal_sandbox::TenantScenario>) -> (Env, String, PathBuf) {
    let env = Env::start_with(tenant(customers[0].id.as_u128() + 0x1000), customers).await;
    let d = env.domain();
    let out = env
        .run(&["partner", "setup", "--tenant", &d, "--yes"])
        .await;
    assert_ok(&out);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("config.json")).unwrap())
            .unwrap();
    let app = cfg["partner"]["clientId"].as_str().unwrap().to_string();
    let pwsh = hal_sandbox::pwsh::install_standin(
        &env.dir.path().join("pwsh-bin"),
        Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &env.sb.exchange_url(),
        &env.sb.ca_path(),
    )
    .unwrap();
    (env, app, pwsh)
}

/// The customer's Global Administrator accepts the admin consent URL (the sandbox's browser is
/// signed in as the tenant's admin).
async fn admin_consent(env: &Env, customer: u128, app: &str) {
    let mut url = env
        .sb
        .login_url()
        .join(&format!(
            "{}/v2.0/adminconsent",
            uuid::Uuid::from_u128(customer)
        ))
        .unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", app)
        .append_pair("scope", "https://graph.microsoft.com/.default")
        .append_pair("redirect_uri", "http://localhost");
    let rsp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(env.sb.ca_path()).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let to = rsp.headers()["location"].to_str().unwrap().to_string();
    assert!(to.contains("admin_consent=True"), "{to}");
}

async fn add(env: &Env, pwsh: &Path, customer: u128, extra: &[&str]) -> Output {
    let d = domain(customer);
    let mut a = vec!["tenant", "add", d.as_str(), "--yes"];
    a.extend_from_slice(extra);
    env.run_with(&[("HAL_ONBOARD_PWSH", Some(pwsh.to_str().unwrap()))], &a)
        .await
}

/// Device codes asked of the sandbox for `customer`, and the codes shown to the technician.
fn codes(env: &Env, customer: u128, out: &Output) -> (usize, usize) {
    let asked = env
        .sb
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains("/oauth2/v2.0/devicecode")
                && r.tenant == Some(uuid::Uuid::from_u128(customer))
        })
        .count();
    (
        asked,
        stderr(out).matches("First copy your one-time code").count(),
    )
}

fn record(env: &Env, customer: u128) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.home().join("tenants.json")).unwrap())
            .unwrap();
    let id = uuid::Uuid::from_u128(customer).to_string();
    v["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenantId"] == id.as_str())
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partner_app_onboards_with_exchange_after_one_device_code() {
    const C: u128 = 0x0151_0011;
    let (env, app, pwsh) = world(&[C]).await;
    admin_consent(&env, C, &app).await;
    env.sb.clear_requests();
    let out = add(&env, &pwsh, C, &["--client-id", &app]).await;
    assert_ok(&out);
    let err = stderr(&out);
    assert_eq!(codes(&env, C, &out), (1, 1), "{err}");
    assert!(err.contains("You will sign in once"), "{err}");
    assert!(!err.contains("sign in twice"), "{err}");
    assert!(!err.contains("Now the sign-in to Exchange Online"), "{err}");
    let rec = record(&env, C);
    assert_eq!(rec["steps"]["exchange"]["status"], "done", "{rec}");
    // The Exchange token came from the partner app's refresh token at the customer.
    let tokens = env
        .sb
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains("/oauth2/v2.0/token") && r.tenant == Some(uuid::Uuid::from_u128(C))
        })
        .count();
    assert!(tokens >= 2, "the Graph sign-in, then Exchange's redemption");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconsented_customer_is_told_the_admin_consent_url() {
    const C: u128 = 0x0151_0021;
    let (env, app, pwsh) = world(&[C]).await;
    let out = add(&env, &pwsh, C, &["--client-id", &app]).await;
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    // The Graph sign-in's consent prompt covered Graph's scopes only; Exchange's redemption
    // is refused, and the error says how to consent, with the URL for that tenant.
    assert!(err.contains("AADSTS65001"), "{err}");
    assert!(err.contains("Exchange.Manage"), "{err}");
    let id = uuid::Uuid::from_u128(C).to_string();
    assert!(
        err.contains(&format!("{id}/v2.0/adminconsent?client_id={app}")),
        "{err}"
    );
    assert!(err.contains("Global Administrator"), "{err}");
    assert_eq!(codes(&env, C, &out), (1, 1), "no second sign-in: {err}");

    // Once consented, the same command finishes without another code (the Graph sign-in is
    // kept in the keyring when one answers).
    admin_consent(&env, C, &app).await;
    env.sb.clear_requests();
    let out = add(&env, &pwsh, C, &["--client-id", &app]).await;
    assert_ok(&out);
    assert_eq!(record(&env, C)["steps"]["exchange"]["status"], "done");
    assert!(codes(&env, C, &out).0 <= 1, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_client_keeps_the_two_sign_ins() {
    const C: u128 = 0x0151_0031;
    let (env, _app, pwsh) = world(&[C]).await;
    env.sb.clear_requests();
    let out = add(&env, &pwsh, C, &[]).await;
    assert_ok(&out);
    let err = stderr(&out);
    assert_eq!(codes(&env, C, &out), (2, 2), "{err}");
    assert!(err.contains("You will sign in twice"), "{err}");
    assert!(err.contains("Now the sign-in to Exchange Online"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_with_the_partner_app_reuses_the_one_sign_in() {
    const C: u128 = 0x0151_0041;
    let mut t = tenant(C);
    t.exchange = hal_sandbox::exchange::ExchangeScenario {
        dehydrated: true,
        propagation_attempts: 1000,
        ..Default::default()
    };
    let (env, app, pwsh) = world_of(vec![t]).await;
    admin_consent(&env, C, &app).await;
    let out = add(&env, &pwsh, C, &["--client-id", &app]).await;
    assert_eq!(out.status.code(), Some(3), "waiting: {}", stderr(&out));
    assert_eq!(codes(&env, C, &out), (1, 1), "{}", stderr(&out));

    let d = domain(C);
    let retry = |extra: Vec<String>| {
        let mut a: Vec<String> = ["ual", "retry", d.as_str()].map(String::from).to_vec();
        a.extend(extra);
        a
    };
    env.sb.clear_requests();
    let a = retry(vec!["--client-id".into(), app.clone()]);
    let out = env
        .run_with(
            &[("HAL_ONBOARD_PWSH", Some(pwsh.to_str().unwrap()))],
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .await;
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "still propagating, not an error: {err}"
    );
    // With a keyring the Graph sign-in `tenant add` kept serves Exchange: no code at all.
    // Without one nothing outlives the process, and one code of the same client signs in.
    let want = if env.keyring { 0 } else { 1 };
    assert_eq!(codes(&env, C, &out).0, want, "{err}");
    assert!(!err.contains("AADSTS"), "{err}");
}
