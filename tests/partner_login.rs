//! `hal-onboard partner login` and the partner sign-in (`PartnerSignIn`) against the sandbox's
//! partner scenario (docs/scenarios/partner.json): the MSP's tenant, MFA, the keyring, and a
//! customer's token through GDAP with Entra's refusals in plain words.
//!
//! Each test has MSP tenant ids of its own (the keyring account is per MSP tenant, and the
//! tests share one keyring).

use std::process::Output;
use std::sync::Arc;

use hal_onboard::config::EnvOverrides;
use hal_onboard::microsoft::signin::{AuthMethod, SilentObserver, TokenClaims};
use hal_onboard::partner::PartnerConfig;
use hal_onboard::partner::signin::{PartnerError, PartnerSignIn};
use hal_onboard::secrets::{MemoryStore, SecretStore, account};
use hal_onboard::session::Session;
use hal_sandbox::{Sandbox, Scenario};
use serde_json::{Value, json};
use uuid::Uuid;

use super::support::common::{keyring, stderr, stdout};

const DOMAIN: &str = "northwindmsp.onmicrosoft.com";
const TECH: &str = "tech@northwindmsp.onmicrosoft.com";

/// The partner scenario with ids of this test's own (`n`: 1..=255).
fn ids(n: u8) -> impl Fn(u128) -> Uuid {
    move |last| Uuid::parse_str(&format!("0d0a{n:02x}00-0000-4000-8000-{last:012x}")).unwrap()
}

fn scenario(n: u8, edit: impl FnOnce(&mut Value)) -> Scenario {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/scenarios/partner.json"
    ))
    .unwrap()
    .replace("0d0a0000-", &format!("0d0a{n:02x}00-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    for t in v["tenants"].as_array_mut().unwrap() {
        t["deviceCodeInterval"] = json!(0);
        t["deviceCodeApproveAfterPolls"] = json!(0);
    }
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    msp: Uuid,
    id: Box<dyn Fn(u128) -> Uuid + Send + Sync>,
    http: reqwest::Client,
}

impl World {
    async fn start(n: u8, edit: impl FnOnce(&mut Value)) -> World {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::start(scenario(n, edit), &dir.path().join("sandbox"))
            .await
            .unwrap();
        let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
        let id = ids(n);
        World {
            msp: id(0x100),
            id: Box::new(id),
            sb,
            dir,
            http,
        }
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    fn env(&self) -> EnvOverrides {
        let vars: std::collections::HashMap<String, String> = self.sb.env().into_iter().collect();
        EnvOverrides::from_lookup(|k| vars.get(k).cloned()).unwrap()
    }

    /// Registers the partner app in the MSP's tenant through the sandbox's Graph, as `partner
    /// setup` does: a multi-tenant public client.
    async fn register_app(&self, audience: &str) -> String {
        let token = self
            .sb
            .user_access_token(self.msp, "https://graph.microsoft.com/.default")
            .unwrap();
        let r = self
            .http
            .post(self.sb.graph_url().join("v1.0/applications").unwrap())
            .bearer_auth(token)
            .json(&json!({
                "displayName": "hal-onboard partner",
                "signInAudience": audience,
                "isFallbackPublicClient": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["appId"].as_str().unwrap().to_string()
    }

    fn config(&self, client_id: &str) -> PartnerConfig {
        PartnerConfig {
            client_id: client_id.into(),
            tenant_id: self.msp,
            domain: DOMAIN.into(),
            cloud: Default::default(),
        }
    }

    /// config.json's `partner` object, as `partner setup` records it.
    fn write_config(&self, cfg: &PartnerConfig) {
        let c = hal_onboard::config::HomeConfig {
            partner: Some(cfg.clone()),
            ..Default::default()
        };
        c.save(&self.home()).unwrap();
    }

    async fn set_up(&self) -> PartnerConfig {
        let app = self.register_app("AzureADMultipleOrgs").await;
        let cfg = self.config(&app);
        self.write_config(&cfg);
        cfg
    }

    async fn run(&self, keyring: bool, args: &[&str]) -> Output {
        let mut c = super::support::hal_onboard();
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        if !keyring {
            c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        c.env("NO_COLOR", "1")
            .arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null());
        tokio::time::timeout(std::time::Duration::from_secs(120), c.output())
            .await
            .expect("hal-onboard finished within 2 minutes")
            .unwrap()
    }

    /// The refresh token kept in the OS keyring for this MSP (None without a keyring).
    fn kept(&self) -> Option<bool> {
        let k = hal_onboard::secrets::KeyringStore::probe().ok()?;
        Some(
            k.get(&account::partner_refresh_token(self.msp))
                .unwrap()
                .is_some(),
        )
    }

    fn forget(&self) {
        if let Ok(k) = hal_onboard::secrets::KeyringStore::probe() {
            k.delete(&account::partner_refresh_token(self.msp)).unwrap();
        }
    }

    async fn open(&self, cfg: &PartnerConfig) -> Result<Arc<PartnerSignIn>, PartnerError> {
        PartnerSignIn::open(
            &self.env(),
            self.http.clone(),
            cfg,
            Arc::new(MemoryStore::default()),
            Arc::new(SilentObserver),
            AuthMethod::DeviceCode,
            true,
        )
        .await
    }
}

fn tid(token: &str) -> Option<Uuid> {
    TokenClaims::decode(token).unwrap().tenant_id()
}

#[tokio::test]
async fn signs_in_in_the_msp_tenant_and_keeps_the_token() {
    let w = World::start(1, |_| {}).await;
    let cfg = w.set_up().await;
    let with_keyring = keyring();
    let o = w.run(with_keyring, &["partner", "login"]).await;
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("Signed in as {TECH} in the MSP's tenant {DOMAIN}")),
        "{err}"
    );
    assert!(err.contains(&w.msp.to_string()), "{err}");
    if with_keyring {
        assert_eq!(w.kept(), Some(true), "the refresh token is in the keyring");
        assert!(err.contains("kept in the OS keyring"), "{err}");
        // The next process uses it without asking (never prompting).
        let saved = PartnerSignIn::open(
            &w.env(),
            w.http.clone(),
            &cfg,
            Arc::new(hal_onboard::secrets::KeyringStore::probe().unwrap()),
            Arc::new(SilentObserver),
            AuthMethod::DeviceCode,
            false,
        )
        .await
        .unwrap();
        assert_eq!(saved.technician(), Some(TECH));
        assert!(saved.kept());
        w.forget();
    } else {
        assert!(err.contains("not kept"), "{err}");
    }
    // Never in the home.
    for f in std::fs::read_dir(w.home()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        assert!(!text.contains("eyJ"), "no token in the home: {text}");
    }

    // --tenant by domain or GUID, and --json.
    let o = w
        .run(
            with_keyring,
            &["--json", "partner", "login", "--tenant", &w.msp.to_string()],
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["technician"], TECH);
    assert_eq!(v["tenantId"], json!(w.msp));
    assert_eq!(v["kept"], json!(with_keyring));
    w.forget();
}

#[tokio::test]
async fn refused_when_the_token_is_not_the_msps_tenant() {
    // The technician's account lives in another tenant: its tokens carry that tid.
    let other = ids(2)(0x999);
    let w = World::start(2, |v| {
        v["tenants"][0]["signedInUser"]["homeTenant"] = json!(other);
    })
    .await;
    w.set_up().await;
    let o = w.run(keyring(), &["partner", "login"]).await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "signed in to tenant {other}, not to the MSP's tenant {DOMAIN}"
        )),
        "{err}"
    );
    assert!(err.contains("Nothing was kept"), "{err}");
    assert!(err.contains("hal-onboard partner login --tenant"), "{err}");
    assert_ne!(w.kept(), Some(true), "nothing kept");

    // --tenant naming another tenant than the recorded MSP's: bad input, before any sign-in.
    for t in ["contoso.onmicrosoft.com", &ids(2)(0x201).to_string()] {
        let o = w.run(keyring(), &["partner", "login", "--tenant", t]).await;
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "{t} is not the MSP tenant partner mode was set up for"
            )),
            "{err}"
        );
        assert!(!err.contains("devicelogin"), "no sign-in started: {err}");
    }
}

#[tokio::test]
async fn refused_without_mfa_and_nothing_kept() {
    let w = World::start(3, |v| {
        v["tenants"][0]["signedInUser"]["mfa"] = json!(false);
    })
    .await;
    w.set_up().await;
    let o = w.run(keyring(), &["partner", "login"]).await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{TECH} did not use multi-factor authentication (the token's amr is [pwd])"
        )),
        "{err}"
    );
    assert!(err.contains("https://aka.ms/mfasetup"), "{err}");
    assert!(err.contains("Nothing was kept"), "{err}");
    assert_ne!(w.kept(), Some(true), "nothing kept");
}

#[tokio::test]
async fn without_setup_it_says_to_run_partner_setup() {
    let w = World::start(4, |_| {}).await;
    let o = w.run(false, &["partner", "login"]).await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("partner mode is not set up"), "{err}");
    assert!(
        err.contains("hal-onboard partner setup --tenant <your MSP domain>"),
        "{err}"
    );
}

#[tokio::test]
async fn without_a_keyring_it_works_for_the_process_and_says_it_is_not_kept() {
    let w = World::start(5, |_| {}).await;
    w.set_up().await;
    let o = w
        .run(false, &["partner", "login", "--tenant", DOMAIN])
        .await;
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("Signed in as {TECH}")), "{err}");
    assert!(
        err.contains(&format!("Sign in as your own account of the MSP's tenant {DOMAIN}, with multi-factor authentication.")),
        "the code says whom to sign in as: {err}"
    );
    assert!(!err.contains("Global Administrator"), "{err}");
    assert!(
        err.contains("no OS keyring: the sign-in is not kept"),
        "{err}"
    );
    assert_ne!(w.kept(), Some(true));
}

#[tokio::test]
async fn a_customer_credential_gets_the_customers_token_and_refusals_in_plain_words() {
    let w = World::start(6, |_| {}).await;
    let active = (w.id)(0x201);
    let mlt = (w.id)(0x203);
    let app = w.register_app("AzureADMultipleOrgs").await;
    let cfg = w.config(&app);
    let p = w.open(&cfg).await.unwrap();
    assert_eq!(p.technician(), Some(TECH));
    let graph = p.graph_scopes();
    let scopes: Vec<&str> = graph.iter().map(String::as_str).collect();

    // Not consented in the customer yet: AADSTS65001, in plain words with the fix.
    let e = p
        .customer(active)
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap_err();
    let pe = hal_onboard::partner::signin::partner_error(&e).expect("a partner error");
    assert_eq!(
        pe.to_string(),
        format!(
            "{active} refused the partner sign-in: the partner app has no consent there yet, or the consent has not taken effect (AADSTS65001)"
        )
    );
    assert!(
        pe.hint().unwrap().contains("tenant add --partner"),
        "{pe:?}"
    );

    // Consent through Partner Center with the partner sign-in's Partner Center token.
    let pc = p.partner_center().get_token(&[], None).await.unwrap();
    let r = w
        .http
        .post(
            w.sb
                .partner_center_url()
                .join(&format!("v1/customers/{active}/applicationconsents"))
                .unwrap(),
        )
        .bearer_auth(pc.token.secret())
        .json(&json!({
            "applicationId": app,
            "applicationGrants": [{"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
                                   "scope": "Application.ReadWrite.All,Directory.Read.All"}],
            "displayName": "hal-onboard partner"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Now the customer's token: its tid is the customer's; Graph works on it (a Session on the
    // credential made elsewhere).
    let t = p.customer(active).get_token(&scopes, None).await.unwrap();
    assert_eq!(tid(t.token.secret()), Some(active));
    // No scope named: the partner app's Graph scopes.
    let t = p.customer(active).get_token(&[], None).await.unwrap();
    let c = TokenClaims::decode(t.token.secret()).unwrap();
    assert_eq!(c.tenant_id(), Some(active));
    assert!(
        c.scopes().contains(&"DelegatedAdminRelationship.Read.All"),
        "{c:?}"
    );
    let session = Session::with_credential(
        &w.env(),
        w.http.clone(),
        Default::default(),
        p.customer(active),
        graph.clone(),
    );
    let org = session.graph.get("organization").await.unwrap();
    assert_eq!(org.body["value"][0]["id"], json!(active));
    // The refresh token rotated at the customer still signs in at the MSP.
    let msp = p
        .msp_graph()
        .get_token(&["https://graph.microsoft.com/User.Read"], None)
        .await;
    assert_eq!(tid(msp.unwrap().token.secret()), Some(w.msp));

    // Only an MLT_ relationship whose group the technician is not in: AADSTS50020.
    let e = p.customer(mlt).get_token(&scopes, None).await.unwrap_err();
    let pe = hal_onboard::partner::signin::partner_error(&e).unwrap();
    assert!(
        pe.to_string().contains(
            "no active GDAP access assignment reaches your account there (you are not in a security group the relationship maps, the relationship expired or ended, or the assignment is still pending) (AADSTS50020)"
        ),
        "{pe}"
    );
    assert!(pe.hint().unwrap().contains("hal-onboard partner customers"));
    // Through Graph, the command's error says the same.
    let s = Session::with_credential(
        &w.env(),
        w.http.clone(),
        Default::default(),
        p.customer(mlt),
        graph.clone(),
    );
    let ge = s.graph.get("organization").await.unwrap_err();
    let ce: hal_onboard::error::CommandError = ge.into();
    assert!(ce.message.contains("AADSTS50020"), "{}", ce.message);
    assert!(
        ce.hints.iter().any(|h| h.contains("partner customers")),
        "{:?}",
        ce.hints
    );

    // A single-tenant app of the MSP's is unknown in the customer's directory: AADSTS700016.
    let single = w.register_app("AzureADMyOrg").await;
    let p = w.open(&w.config(&single)).await.unwrap();
    let e = p
        .customer(active)
        .get_token(&scopes, None)
        .await
        .unwrap_err();
    let pe = hal_onboard::partner::signin::partner_error(&e).unwrap();
    assert!(
        pe.to_string().contains("the partner app is unknown in that directory (it is not a multi-tenant app, or it was deleted from the MSP's tenant) (AADSTS700016)"),
        "{pe}"
    );
    assert!(
        pe.hint()
            .unwrap()
            .contains(&format!("hal-onboard partner setup --tenant {DOMAIN}"))
    );
}

/// `--sandbox --home DIR`: the partner scenario's kept cloud, the partner app registered in
/// its MSP tenant and recorded in DIR's config.json, then `partner login --sandbox`.
#[tokio::test]
async fn works_with_a_kept_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let sb = Sandbox::start_kept(scenario(7, |_| {}), &home.join("sandbox"))
        .await
        .unwrap();
    let http = hal_onboard::http::build_client(Some(&sb.ca_path())).unwrap();
    let msp = ids(7)(0x100);
    let w = World {
        sb,
        dir,
        msp,
        id: Box::new(ids(7)),
        http,
    };
    let cfg = w.set_up().await;
    let World { sb, dir, .. } = w;
    sb.shutdown().await;

    let mut c = super::support::hal_onboard();
    c.env("NO_COLOR", "1")
        .env_remove("HAL_ONBOARD_HOME")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .args(["--sandbox", "--home"])
        .arg(&home)
        .args(["--no-input", "partner", "login", "--tenant", DOMAIN])
        .stdin(std::process::Stdio::null());
    let o = tokio::time::timeout(std::time::Duration::from_secs(120), c.output())
        .await
        .unwrap()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "Signed in as {TECH} in the MSP's tenant {DOMAIN} ({})",
            cfg.tenant_id
        )),
        "{err}"
    );
    // The sandbox's own keyring file holds it, for the next `--sandbox --home` command.
    let kept = std::fs::read_to_string(home.join("sandbox/keyring.json")).unwrap();
    assert!(
        kept.contains(&account::partner_refresh_token(msp)),
        "{kept}"
    );
    drop(dir);
}

/// A refresh token rotated at a customer's authority replaces the one held and the kept copy;
/// the Partner Center credential asks for Partner Center whatever the caller names.
#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_kept_one() {
    let w = World::start(8, |_| {}).await;
    let app = w.register_app("AzureADMultipleOrgs").await;
    let cfg = w.config(&app);
    let store = Arc::new(MemoryStore::default());
    let p = PartnerSignIn::open(
        &w.env(),
        w.http.clone(),
        &cfg,
        store.clone(),
        Arc::new(SilentObserver),
        AuthMethod::DeviceCode,
        true,
    )
    .await
    .unwrap();
    let acct = account::partner_refresh_token(w.msp);
    let first = store
        .get(&acct)
        .unwrap()
        .expect("kept")
        .expose()
        .to_string();

    let pc = p
        .partner_center()
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap();
    let c = TokenClaims::decode(pc.token.secret()).unwrap();
    assert_eq!(
        c.aud.as_deref(),
        Some("https://api.partnercenter.microsoft.com")
    );
    assert_eq!(c.tenant_id(), Some(w.msp));

    // Later (the sandbox's clock), a customer redemption rotates the refresh token. Consent
    // first (the customer refuses an unconsented app without rotating anything).
    let active = (w.id)(0x201);
    let r = w
        .http
        .post(
            w.sb.partner_center_url()
                .join(&format!("v1/customers/{active}/applicationconsents"))
                .unwrap(),
        )
        .bearer_auth(pc.token.secret())
        .json(&json!({
            "applicationId": app,
            "applicationGrants": [{"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
                                   "scope": "Directory.Read.All"}],
            "displayName": "hal-onboard partner"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    w.sb.advance(std::time::Duration::from_secs(30));
    p.customer(active)
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap();
    let rotated = store
        .get(&acct)
        .unwrap()
        .expect("kept")
        .expose()
        .to_string();
    assert_ne!(rotated, first, "the kept copy follows the rotation");
    // And the kept one still signs in at the MSP (a later process).
    let again = PartnerSignIn::open(
        &w.env(),
        w.http.clone(),
        &cfg,
        store.clone(),
        Arc::new(SilentObserver),
        AuthMethod::DeviceCode,
        false,
    )
    .await
    .unwrap();
    assert_eq!(again.technician(), Some(TECH));

    // No saved sign-in and no prompting allowed: the way on is `partner login`.
    let e = PartnerSignIn::open(
        &w.env(),
        w.http.clone(),
        &cfg,
        Arc::new(MemoryStore::default()),
        Arc::new(SilentObserver),
        AuthMethod::DeviceCode,
        false,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PartnerError::NotSignedIn { .. }), "{e}");
    assert!(
        e.hint()
            .unwrap()
            .contains(&format!("hal-onboard partner login --tenant {DOMAIN}"))
    );
}

/// The two commands one after the other, as a technician runs them: `partner setup` records
/// the partner app, `partner login` signs in with it.
#[tokio::test]
async fn partner_setup_then_partner_login() {
    let w = World::start(9, |_| {}).await;
    let o = w
        .run(false, &["partner", "setup", "--tenant", DOMAIN, "--yes"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = w
        .run(false, &["partner", "login", "--tenant", DOMAIN])
        .await;
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("Signed in as {TECH} in the MSP's tenant {DOMAIN}")),
        "{err}"
    );
}
