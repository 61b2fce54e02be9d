//! The sign-in credentials against the sandbox's Entra ID over HTTPS: device code (approved,
//! declined, expired), the kept refresh token, a bad kept token, browser + PKCE on a loopback
//! redirect, and the same credential reused for Exchange Online.

use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use hal_onboard::microsoft::signin::{
    AuthMethod, DeviceCodePrompt, GRAPH_CLI_CLIENT_ID, SignInError, SignInObserver, SignInOptions,
    TokenClaims, UserCredential,
};
use hal_onboard::secrets::{MemoryStore, SecretStore, account};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use url::Url;
use uuid::Uuid;

fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com")],
        device_code_approve_after_polls: 1,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t
}

#[derive(Default)]
struct Seen {
    codes: Mutex<Vec<String>>,
    waits: Mutex<u32>,
    /// Plays the technician's browser for the browser flow.
    browser: Mutex<Option<reqwest::Client>>,
    refused: Mutex<Vec<String>>,
}

impl SignInObserver for Seen {
    fn device_code(&self, p: &DeviceCodePrompt) {
        self.codes.lock().unwrap().push(p.user_code.clone());
    }
    fn browser_url(&self, url: &Url) -> bool {
        let client = self.browser.lock().unwrap().clone().expect("a browser");
        let url = url.clone();
        tokio::spawn(async move {
            // The sandbox approves at once and redirects to our loopback.
            let r = client.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 302);
            let loc = r.headers()["location"].to_str().unwrap().to_string();
            let back = reqwest::Client::new().get(loc).send().await.unwrap();
            assert!(back.status().is_success());
        });
        true
    }
    fn waiting(&self, _polls: u32, _slowed: bool) {
        *self.waits.lock().unwrap() += 1;
    }
    fn saved_sign_in_refused(&self, why: &str) {
        self.refused.lock().unwrap().push(why.to_string());
    }
}

async fn start(t: TenantScenario) -> (Sandbox, tempfile::TempDir, reqwest::Client) {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants: vec![t],
            ..Scenario::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
    (sb, dir, http)
}

fn graph_opts(sb: &Sandbox, tenant: &str) -> SignInOptions {
    SignInOptions::graph(
        sb.login_url(),
        tenant,
        GRAPH_CLI_CLIENT_ID,
        "https://graph.microsoft.com",
    )
}

#[tokio::test]
async fn device_code_then_the_kept_refresh_token_signs_in_silently() {
    let (sb, _d, http) = start(tenant(1)).await;
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let seen = Arc::new(Seen::default());
    let c = UserCredential::new(
        http.clone(),
        graph_opts(&sb, "t1.onmicrosoft.com"),
        store.clone(),
        seen.clone(),
    );
    let t = c.token(&[]).await.unwrap();
    let claims = TokenClaims::decode(t.token.secret()).unwrap();
    assert_eq!(claims.tenant_id(), Some(Uuid::from_u128(1)));
    assert!(claims.scopes().contains(&"Application.ReadWrite.All"));
    assert_eq!(seen.codes.lock().unwrap().len(), 1);
    assert!(
        *seen.waits.lock().unwrap() >= 1,
        "authorization_pending was waited out"
    );
    // Cached in memory: no second sign-in.
    c.token(&[]).await.unwrap();
    assert_eq!(seen.codes.lock().unwrap().len(), 1);
    // Nothing is kept until the tenant is confirmed.
    let acct = account::graph_refresh_token(Uuid::from_u128(1));
    assert!(store.get(&acct).unwrap().is_none());
    c.keep_signed_in(Uuid::from_u128(1)).await.unwrap();
    assert!(store.get(&acct).unwrap().is_some());

    // A re-run: the kept refresh token signs in without a code.
    let seen2 = Arc::new(Seen::default());
    let mut o = graph_opts(&sb, "t1.onmicrosoft.com");
    o.known_tenant = Some(Uuid::from_u128(1));
    let c2 = UserCredential::new(http.clone(), o, store.clone(), seen2.clone());
    let scopes: Vec<&str> = c2.options().scopes.iter().map(String::as_str).collect();
    let t2 = c2.get_token(&scopes, None).await.unwrap();
    assert!(seen2.codes.lock().unwrap().is_empty());
    assert_eq!(
        TokenClaims::decode(t2.token.secret()).unwrap().tenant_id(),
        Some(Uuid::from_u128(1))
    );
}

#[tokio::test]
async fn a_refused_kept_token_is_dropped_and_the_device_code_used() {
    let (sb, _d, http) = start(tenant(2)).await;
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let acct = account::graph_refresh_token(Uuid::from_u128(2));
    store.set(&acct, "garbage").unwrap();
    let seen = Arc::new(Seen::default());
    let mut o = graph_opts(&sb, "t2.onmicrosoft.com");
    o.known_tenant = Some(Uuid::from_u128(2));
    let c = UserCredential::new(http, o, store.clone(), seen.clone());
    c.token(&[]).await.unwrap();
    assert_eq!(seen.codes.lock().unwrap().len(), 1);
    assert!(
        store.get(&acct).unwrap().is_none(),
        "the bad token was removed"
    );
}

#[tokio::test]
async fn declined_and_expired_device_codes_say_so() {
    let mut t = tenant(3);
    t.device_code_decline = true;
    let (sb, _d, http) = start(t).await;
    let c = UserCredential::new(
        http.clone(),
        graph_opts(&sb, "t3.onmicrosoft.com"),
        Arc::new(MemoryStore::default()),
        Arc::new(Seen::default()),
    );
    let e = c.token(&[]).await.unwrap_err();
    assert!(matches!(e, SignInError::Declined), "{e:?}");
    assert!(e.hint().unwrap().contains("approve"));

    let mut t = tenant(4);
    t.device_code_approve_after_polls = u32::MAX;
    t.device_code_expires_in = 1;
    let (sb, _d, http) = start(t).await;
    let c = UserCredential::new(
        http,
        graph_opts(&sb, "t4.onmicrosoft.com"),
        Arc::new(MemoryStore::default()),
        Arc::new(Seen::default()),
    );
    let e = c.token(&[]).await.unwrap_err();
    assert!(matches!(e, SignInError::Expired), "{e:?}");
}

#[tokio::test]
async fn an_unknown_tenant_is_refused_with_its_aadsts_code() {
    let (sb, _d, http) = start(tenant(5)).await;
    let c = UserCredential::new(
        http,
        graph_opts(&sb, "nobody.onmicrosoft.com"),
        Arc::new(MemoryStore::default()),
        Arc::new(Seen::default()),
    );
    let e = c.token(&[]).await.unwrap_err();
    assert!(
        matches!(
            e,
            SignInError::Refused {
                code: Some(90002),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.hint().unwrap().contains("spelling of the tenant"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_with_pkce_on_a_loopback_redirect() {
    let (sb, _d, http) = start(tenant(6)).await;
    let seen = Arc::new(Seen::default());
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(sb.ca_path()).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    *seen.browser.lock().unwrap() = Some(browser);
    let mut o = graph_opts(&sb, "t6.onmicrosoft.com");
    o.method = AuthMethod::Browser;
    let c = UserCredential::new(http, o, Arc::new(MemoryStore::default()), seen.clone());
    let t = c.token(&[]).await.unwrap();
    assert_eq!(
        TokenClaims::decode(t.token.secret()).unwrap().tenant_id(),
        Some(Uuid::from_u128(6))
    );
    assert!(seen.codes.lock().unwrap().is_empty(), "no device code");
}

#[tokio::test]
async fn the_same_credential_serves_exchange_online() {
    let (sb, _d, http) = start(tenant(7)).await;
    let o = SignInOptions::exchange(
        sb.login_url(),
        "t7.onmicrosoft.com",
        "https://outlook.office365.com",
    );
    let c = UserCredential::new(
        http,
        o,
        Arc::new(MemoryStore::default()),
        Arc::new(Seen::default()),
    );
    let t = c.token(&[]).await.unwrap();
    let claims = TokenClaims::decode(t.token.secret()).unwrap();
    assert_eq!(claims.aud.as_deref(), Some("https://outlook.office365.com"));
}

/// Every AADSTS code of the table, answered by the sandbox as Entra does, comes back as that
/// code with the table's plain words and next step; Conditional Access offers the other flow.
#[tokio::test]
async fn every_aadsts_code_in_the_table_is_said_in_plain_words_with_the_next_step() {
    use hal_onboard::microsoft::signin::{AADSTS, aadsts};
    let wanted = [
        53003, 53000, 50076, 50079, 50020, 90072, 90002, 50105, 7000112, 65001, 65002, 500011,
        50011, 700082, 50173,
    ];
    for code in wanted {
        assert!(aadsts(code).is_some(), "AADSTS{code} is in the table");
    }
    assert_eq!(
        AADSTS.iter().map(|a| a.codes.len()).sum::<usize>(),
        wanted.len(),
        "one entry per code"
    );
    for (n, code) in wanted.iter().enumerate() {
        let mut t = tenant(100 + n as u128);
        t.sign_in_error = Some(*code as u32);
        let (sb, _d, http) = start(t).await;
        let c = UserCredential::new(
            http,
            graph_opts(&sb, &format!("t{}.onmicrosoft.com", 100 + n)),
            Arc::new(MemoryStore::default()),
            Arc::new(Seen::default()),
        );
        let e = c.token(&[]).await.unwrap_err();
        let SignInError::Refused { code: got, .. } = &e else {
            panic!("AADSTS{code}: {e:?}");
        };
        assert_eq!(*got, Some(*code), "{e}");
        let entry = aadsts(*code).unwrap();
        assert!(e.to_string().contains(entry.means), "{e}");
        assert!(e.to_string().contains(&format!("(AADSTS{code})")), "{e}");
        assert_eq!(e.hint().as_deref(), Some(entry.next), "AADSTS{code}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_access_in_the_browser_offers_the_device_code_and_the_reverse() {
    let mut t = tenant(120);
    t.sign_in_error = Some(53003);
    let (sb, _d, http) = start(t).await;
    // Device code refused: the browser is the way out.
    let c = UserCredential::new(
        http.clone(),
        graph_opts(&sb, "t120.onmicrosoft.com"),
        Arc::new(MemoryStore::default()),
        Arc::new(Seen::default()),
    );
    let e = c.token(&[]).await.unwrap_err();
    assert!(e.hint().unwrap().contains("`--auth browser`"), "{e:?}");
    // Browser refused: the device code is.
    let seen = Arc::new(Seen::default());
    *seen.browser.lock().unwrap() = Some(browser_client(&sb));
    let mut o = graph_opts(&sb, "t120.onmicrosoft.com");
    o.method = AuthMethod::Browser;
    let c = UserCredential::new(http, o, Arc::new(MemoryStore::default()), seen);
    let e = c.token(&[]).await.unwrap_err();
    assert!(e.hint().unwrap().contains("`--auth device-code`"), "{e:?}");
}

/// A saved sign-in that expired (700082) or was revoked (50173) is said so, and the run signs
/// in again interactively, once, by itself.
#[tokio::test]
async fn an_expired_or_revoked_saved_sign_in_signs_in_again_once() {
    for (n, code) in [(130u128, 700082u32), (131, 50173)] {
        let (sb, _d, http) = start(tenant(n)).await;
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let domain = format!("t{n}.onmicrosoft.com");
        let c = UserCredential::new(
            http.clone(),
            graph_opts(&sb, &domain),
            store.clone(),
            Arc::new(Seen::default()),
        );
        c.token(&[]).await.unwrap();
        c.keep_signed_in(Uuid::from_u128(n)).await.unwrap();
        sb.state()
            .lock()
            .tenant_mut(Uuid::from_u128(n))
            .unwrap()
            .scenario
            .refresh_error = Some(code);

        let seen = Arc::new(Seen::default());
        let mut o = graph_opts(&sb, &domain);
        o.known_tenant = Some(Uuid::from_u128(n));
        let c = UserCredential::new(http, o, store.clone(), seen.clone());
        c.token(&[]).await.unwrap();
        let refused = seen.refused.lock().unwrap().clone();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].contains("expired or was revoked")
                && refused[0].contains(&format!("AADSTS{code}")),
            "{refused:?}"
        );
        assert_eq!(
            seen.codes.lock().unwrap().len(),
            1,
            "one interactive sign-in"
        );
    }
}

fn browser_client(sb: &Sandbox) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(sb.ca_path()).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
}
