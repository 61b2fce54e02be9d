//! Partner mode's consent in a customer, against the sandbox over HTTPS: Partner Center's
//! consent API as the client sees it (201, 409 = success, 403, 404, 401, 429 with
//! Retry-After), and `consent::ensure` (the wait until a customer token works while the
//! sandbox's consent delay lasts, the bounded failure and its hint, and the 403 → admin
//! consent link path, approved in the sandbox as a customer admin would).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use hal_onboard::cloud::{Cloud, Endpoints};
use hal_onboard::error::{CommandError, ExitStatus};
use hal_onboard::microsoft::partner_center::{
    ConsentOutcome, PartnerCenter, PartnerCenterError, PcRetry,
};
use hal_onboard::partner::consent::{
    self, ConsentError, ConsentObserver, ConsentPolicy, ConsentProgress, ConsentRoute,
};
use hal_sandbox::gdap::{AssignmentScenario, GroupScenario, PartnerScenario, RelationshipScenario};
use hal_sandbox::token::Claims;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

const MSP: u128 = 0x100;
/// Cloud Application Administrator, Privileged Role Administrator, Exchange Administrator.
const READY: u128 = 0x201;
/// Application Administrator only: Partner Center refuses (403).
const APP_ADMIN_ONLY: u128 = 0x202;
/// No relationship at all.
const STRANGER: u128 = 0x203;
const TECH: u128 = 0xAA;
const ADMIN_AGENTS: u128 = 0xA1;
const ONBOARDERS: u128 = 0xA2;

const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn tenant(n: u128) -> TenantScenario {
    TenantScenario {
        id: id(n),
        display_name: format!("Tenant {n:x}"),
        domains: vec![format!("t{n:x}.onmicrosoft.com")],
        ..TenantScenario::default()
    }
}

fn relationship(customer: u128, roles: &[&str]) -> RelationshipScenario {
    RelationshipScenario {
        display_name: format!("Onboarding {customer:x}"),
        customer: id(customer),
        unified_roles: roles.iter().map(|r| r.to_string()).collect(),
        access_assignments: vec![AssignmentScenario {
            group: id(ONBOARDERS),
            unified_roles: roles.iter().map(|r| r.to_string()).collect(),
            ..AssignmentScenario::default()
        }],
        ..RelationshipScenario::default()
    }
}

fn scenario(consent_delay_seconds: u64, partner_center_throttle: u32) -> Scenario {
    let mut msp = tenant(MSP);
    msp.signed_in_user.id = id(TECH);
    Scenario {
        tenants: vec![msp, tenant(READY), tenant(APP_ADMIN_ONLY), tenant(STRANGER)],
        partner: Some(PartnerScenario {
            tenant: id(MSP),
            groups: vec![
                GroupScenario {
                    id: id(ADMIN_AGENTS),
                    display_name: "AdminAgents".into(),
                    members: vec![id(TECH)],
                },
                GroupScenario {
                    id: id(ONBOARDERS),
                    display_name: "Onboarders".into(),
                    members: vec![id(TECH)],
                },
            ],
            relationships: vec![
                relationship(READY, &[CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN]),
                relationship(APP_ADMIN_ONLY, &[APP_ADMIN, EXCHANGE_ADMIN]),
            ],
            consent_delay_seconds,
            partner_center_throttle,
        }),
        ..Scenario::default()
    }
}

/// A bearer token as it stands (the sandbox's own, for the MSP's technician).
#[derive(Debug)]
struct Fixed(String);

#[async_trait::async_trait]
impl TokenCredential for Fixed {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _o: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// The partner refresh token redeemed at a customer's authority, as `PartnerSignIn::customer`
/// does: a refusal carries Entra's `AADSTS…` text.
#[derive(Debug)]
struct AtCustomer {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    refresh: String,
    tries: Mutex<u32>,
}

#[async_trait::async_trait]
impl TokenCredential for AtCustomer {
    async fn get_token(
        &self,
        scopes: &[&str],
        _o: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        *self.tries.lock().unwrap() += 1;
        let r = self
            .http
            .post(self.token_url.clone())
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("refresh_token", self.refresh.as_str()),
                ("scope", &scopes.join(" ")),
            ])
            .send()
            .await
            .unwrap();
        let ok = r.status().is_success();
        let v: Value = r.json().await.unwrap();
        if ok {
            Ok(AccessToken::new(
                v["access_token"].as_str().unwrap().to_string(),
                time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            ))
        } else {
            Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!(
                    "Microsoft refused the sign-in: {}",
                    v["error_description"].as_str().unwrap_or("")
                ),
            ))
        }
    }
}

struct World {
    sb: Sandbox,
    http: reqwest::Client,
    app: String,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start(delay: u64, throttle: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::start(scenario(delay, throttle), dir.path())
            .await
            .unwrap();
        let http = hal_sandbox::contract::client_trusting(&sb.ca_path()).unwrap();
        // The partner app: multi-tenant, in the MSP's tenant (what `partner setup` makes).
        let r = http
            .post(sb.graph_url().join("v1.0/applications").unwrap())
            .bearer_auth(
                sb.user_access_token(id(MSP), "https://graph.microsoft.com/.default")
                    .unwrap(),
            )
            .json(&json!({"displayName": "hal-onboard partner", "signInAudience": "AzureADMultipleOrgs"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        World {
            app: v["appId"].as_str().unwrap().to_string(),
            sb,
            http,
            _dir: dir,
        }
    }

    fn pc_with(&self, token: String) -> PartnerCenter {
        PartnerCenter::new(
            self.http.clone(),
            Some(self.sb.partner_center_url()),
            Arc::new(Fixed(token)),
        )
    }

    fn pc(&self) -> PartnerCenter {
        self.pc_with(
            self.sb
                .user_access_token(
                    id(MSP),
                    "https://api.partnercenter.microsoft.com/user_impersonation",
                )
                .unwrap(),
        )
    }

    fn endpoints(&self) -> Endpoints {
        Endpoints::new(
            Cloud::Global,
            Some(&self.sb.login_url()),
            Some(&self.sb.graph_url()),
        )
    }

    fn customer(&self, customer: u128) -> Arc<AtCustomer> {
        let now = self.sb.signer().clock().now_unix();
        let refresh = self.sb.signer().sign(&Claims {
            aud: "urn:hal-sandbox:refresh-token".into(),
            iss: format!("https://sts.windows.net/{}/", id(MSP)),
            tid: id(MSP).to_string(),
            oid: id(TECH).to_string(),
            appid: self.app.clone(),
            upn: Some(format!("tech@t{MSP:x}.onmicrosoft.com")),
            iat: now,
            nbf: now,
            exp: now + 3600,
            ..Claims::default()
        });
        Arc::new(AtCustomer {
            http: self.http.clone(),
            token_url: self
                .sb
                .login_url()
                .join(&format!("{}/oauth2/v2.0/token", id(customer)))
                .unwrap(),
            client_id: self.app.clone(),
            refresh,
            tries: Mutex::new(0),
        })
    }

    async fn ensure(
        &self,
        customer: u128,
        cred: Arc<AtCustomer>,
        observer: &Seen,
        policy: &ConsentPolicy,
    ) -> Result<ConsentRoute, ConsentError> {
        consent::ensure(
            &self.pc(),
            cred,
            &self.endpoints(),
            id(customer),
            &self.app,
            "hal-onboard partner",
            observer,
            policy,
        )
        .await
    }
}

/// What the observer was told.
#[derive(Default)]
struct Seen {
    pc: Mutex<Vec<ConsentOutcome>>,
    urls: Mutex<Vec<Url>>,
    waits: Mutex<Vec<ConsentProgress>>,
    /// Approves the admin consent link as the customer's admin would (opens it).
    approve: Option<reqwest::Client>,
}

impl ConsentObserver for Seen {
    fn partner_center(&self, _c: Uuid, o: ConsentOutcome) {
        self.pc.lock().unwrap().push(o);
    }
    fn admin_consent_needed(&self, _c: Uuid, url: &Url, _why: &str) {
        self.urls.lock().unwrap().push(url.clone());
        if let Some(c) = self.approve.clone() {
            let url = url.clone();
            tokio::spawn(async move {
                let r = c.get(url).send().await.unwrap();
                assert_eq!(r.status(), 302);
                let to = r.headers()["location"].to_str().unwrap().to_string();
                assert!(to.starts_with("http://localhost"), "{to}");
                assert!(to.contains("admin_consent=True"), "{to}");
            });
        }
    }
    fn waiting(&self, _c: Uuid, p: &ConsentProgress) {
        self.waits.lock().unwrap().push(p.clone());
    }
}

fn fast(budget: Duration) -> ConsentPolicy {
    ConsentPolicy {
        interval: Duration::from_millis(200),
        propagation_budget: budget,
        admin_budget: budget,
    }
}

#[tokio::test]
async fn partner_center_answers_are_told_apart() {
    let w = World::start(0, 0).await;
    let grants = consent::grants();
    let pc = w.pc();
    let c = |n| id(n);
    assert_eq!(
        pc.consent(c(READY), &w.app, "hal-onboard partner", &grants)
            .await
            .unwrap(),
        ConsentOutcome::Created
    );
    // Already there: a success, so a resumed run goes on.
    assert_eq!(
        pc.consent(c(READY), &w.app, "hal-onboard partner", &grants)
            .await
            .unwrap(),
        ConsentOutcome::AlreadyPresent
    );
    let e = pc
        .consent(c(APP_ADMIN_ONLY), &w.app, "hal-onboard partner", &grants)
        .await
        .unwrap_err();
    assert!(matches!(e, PartnerCenterError::Forbidden { .. }), "{e:?}");
    assert!(
        e.hint()
            .unwrap()
            .contains("Application Administrator is not enough"),
        "{:?}",
        e.hint()
    );
    let e = pc
        .consent(c(STRANGER), &w.app, "hal-onboard partner", &grants)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PartnerCenterError::NoRelationship { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("600012"), "{e}");
    // A Graph token is not for Partner Center.
    let graph =
        w.sb.user_access_token(id(MSP), "https://graph.microsoft.com/.default")
            .unwrap();
    let e = w
        .pc_with(graph.clone())
        .consent(c(READY), &w.app, "hal-onboard partner", &grants)
        .await
        .unwrap_err();
    assert!(
        matches!(e, PartnerCenterError::Unauthorized { .. }),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&graph), "no token in the message");
    assert!(e.hint().unwrap().contains("hal-onboard partner login"));
    // An app that is not multi-tenant: 400.
    let e = pc
        .consent(c(READY), &Uuid::new_v4().to_string(), "x", &grants)
        .await
        .unwrap_err();
    assert!(matches!(e, PartnerCenterError::BadRequest { .. }), "{e:?}");
}

#[tokio::test]
async fn partner_center_throttling_is_waited_out_within_a_bound() {
    let w = World::start(0, 2).await;
    let started = std::time::Instant::now();
    let out = w
        .pc()
        .consent(id(READY), &w.app, "hal-onboard partner", &consent::grants())
        .await
        .unwrap();
    assert_eq!(out, ConsentOutcome::Created);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1, twice, honoured"
    );

    // HAL_ONBOARD_RETRY_SCALE, passed in by the caller, scales Retry-After too.
    let w = World::start(0, 2).await;
    let started = std::time::Instant::now();
    w.pc()
        .with_scale(0.1)
        .consent(id(READY), &w.app, "hal-onboard partner", &consent::grants())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500));

    let w = World::start(0, 100).await;
    let e = w
        .pc()
        .with_retry(PcRetry {
            attempts: 3,
            budget: Duration::from_secs(30),
            base: Duration::from_millis(10),
        })
        .consent(id(READY), &w.app, "hal-onboard partner", &consent::grants())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            PartnerCenterError::Busy {
                status: 429,
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn ensure_waits_while_the_consent_takes_effect() {
    let w = World::start(2, 0).await;
    let cred = w.customer(READY);
    let seen = Seen::default();
    let route = w
        .ensure(READY, cred.clone(), &seen, &fast(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(route, ConsentRoute::PartnerCenter(ConsentOutcome::Created));
    let waits = seen.waits.lock().unwrap().clone();
    assert!(!waits.is_empty(), "the consent delay was waited out");
    assert_eq!(waits[0].attempt, 2);
    assert_eq!(waits[0].of, 101);
    assert_eq!(waits[0].last_code, Some(65001));
    assert!(waits.windows(2).all(|p| p[1].waited > p[0].waited));
    assert!(*cred.tries.lock().unwrap() >= 2);
    assert!(seen.urls.lock().unwrap().is_empty(), "no admin link needed");

    // Again (a resumed run): 409 counts as done and the token works at once.
    let seen = Seen::default();
    let route = w
        .ensure(
            READY,
            w.customer(READY),
            &seen,
            &fast(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert_eq!(
        route,
        ConsentRoute::PartnerCenter(ConsentOutcome::AlreadyPresent)
    );
    assert!(seen.waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ensure_gives_up_after_its_budget_with_the_next_step() {
    let w = World::start(3600, 0).await;
    let seen = Seen::default();
    let started = std::time::Instant::now();
    let e = w
        .ensure(
            READY,
            w.customer(READY),
            &seen,
            &fast(Duration::from_millis(800)),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "bounded");
    assert!(
        matches!(
            e,
            ConsentError::NotInEffect {
                attempts: 5,
                last_code: Some(65001),
                admin_url: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(seen.waits.lock().unwrap().len(), 4);
    let c = CommandError::from(e);
    assert_eq!(
        c.status,
        ExitStatus::Waiting,
        "only Microsoft is slow: exit 3"
    );
    assert!(
        c.hints[0].contains(&format!(
            "`hal-onboard tenant add --partner {}` again",
            id(READY)
        )),
        "{:?}",
        c.hints
    );
}

#[tokio::test]
async fn a_refused_partner_center_shows_the_admin_consent_link_and_waits_for_it() {
    let w = World::start(1, 0).await;
    let seen = Seen {
        approve: Some(w.http.clone()),
        ..Seen::default()
    };
    let route = w
        .ensure(
            APP_ADMIN_ONLY,
            w.customer(APP_ADMIN_ONLY),
            &seen,
            &fast(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert_eq!(route, ConsentRoute::AdminConsent);
    let urls = seen.urls.lock().unwrap().clone();
    assert_eq!(urls.len(), 1);
    let u = &urls[0];
    assert_eq!(
        u.path(),
        format!("/{}/v2.0/adminconsent", id(APP_ADMIN_ONLY))
    );
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], w.app);
    assert!(q["scope"].contains("https://graph.microsoft.com/Application.ReadWrite.All"));
    assert!(q["scope"].contains("https://outlook.office365.com/Exchange.Manage"));
    assert!(!seen.waits.lock().unwrap().is_empty(), "the run waited");

    // Run again: consented already, no link.
    let seen = Seen::default();
    let route = w
        .ensure(
            APP_ADMIN_ONLY,
            w.customer(APP_ADMIN_ONLY),
            &seen,
            &fast(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(route, ConsentRoute::AlreadyConsented);
    assert!(seen.urls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unapproved_admin_consent_link_ends_with_the_link_in_the_hint() {
    let w = World::start(0, 0).await;
    let seen = Seen::default();
    let e = w
        .ensure(
            APP_ADMIN_ONLY,
            w.customer(APP_ADMIN_ONLY),
            &seen,
            &fast(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    let url = seen.urls.lock().unwrap()[0].clone();
    let hint = e.hint().unwrap();
    assert!(hint.contains(url.as_str()), "{hint}");
    assert!(hint.contains("Cloud Application Administrator"), "{hint}");
}

#[tokio::test]
async fn a_customer_the_technician_cannot_reach_fails_at_once() {
    // No relationship: Partner Center says 404, nothing is waited for.
    let w = World::start(0, 0).await;
    let seen = Seen::default();
    let started = std::time::Instant::now();
    let e = w
        .ensure(
            STRANGER,
            w.customer(STRANGER),
            &seen,
            &fast(Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ConsentError::PartnerCenter(PartnerCenterError::NoRelationship { .. })
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(CommandError::from(e).status, ExitStatus::Failed);
}

/// With the real partner sign-in (`PartnerSignIn::customer`): its refusal while the consent
/// takes effect (AADSTS65001, inside its own error type) is waited out, then a customer token
/// works and is the customer's.
#[tokio::test]
async fn ensure_waits_with_the_partner_sign_in_itself() {
    use hal_onboard::config::EnvOverrides;
    use hal_onboard::microsoft::signin::{AuthMethod, SilentObserver};
    use hal_onboard::partner::PartnerConfig;
    use hal_onboard::partner::signin::PartnerSignIn;
    use hal_onboard::secrets::MemoryStore;

    let w = World::start(2, 0).await;
    w.sb.with_tenant(id(MSP), |t| {
        t.scenario.device_code_interval = 0;
        t.scenario.device_code_approve_after_polls = 0;
    });
    let vars: std::collections::HashMap<String, String> = w.sb.env().into_iter().collect();
    let env = EnvOverrides::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let cfg = PartnerConfig {
        client_id: w.app.clone(),
        tenant_id: id(MSP),
        domain: format!("t{MSP:x}.onmicrosoft.com"),
        cloud: Cloud::Global,
    };
    let partner = PartnerSignIn::open(
        &env,
        w.http.clone(),
        &cfg,
        Arc::new(MemoryStore::default()),
        Arc::new(SilentObserver),
        AuthMethod::DeviceCode,
        true,
    )
    .await
    .unwrap();
    let pc = PartnerCenter::new(
        w.http.clone(),
        Some(env.partner_center()),
        partner.partner_center(),
    );
    let seen = Seen::default();
    let customer = partner.customer(id(READY));
    let route = consent::ensure(
        &pc,
        customer.clone(),
        &w.endpoints(),
        id(READY),
        &w.app,
        "hal-onboard partner",
        &seen,
        &fast(Duration::from_secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(route, ConsentRoute::PartnerCenter(ConsentOutcome::Created));
    let waits = seen.waits.lock().unwrap().clone();
    assert!(!waits.is_empty(), "the consent delay was waited out");
    assert!(
        waits.iter().all(|p| p.last_code == Some(65001)),
        "{waits:?}"
    );
    let t = customer
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await
        .unwrap();
    let tid = hal_onboard::microsoft::signin::TokenClaims::decode(t.token.secret())
        .unwrap()
        .tenant_id();
    assert_eq!(tid, Some(id(READY)));
}
