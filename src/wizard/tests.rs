//! The engine against a fake directory: plans, idempotence, resume after a failure at every
//! step, and the safety stops (wrong tenant, not an admin, declined).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::*;
use crate::microsoft::graph::directory::{Grant, NewSecret};
use crate::microsoft::graph::model::*;
use crate::secrets::MemoryStore;
use crate::store::StepStatus;
use crate::wizard::permissions::tests::resource_sps;
use crate::wizard::verify::{AppToken, ReadAnswer, VerifyError};

const TID: &str = "6b1c1f0e-8c1d-4d8e-9a3f-2f2b8e1d0c11";

#[derive(Default)]
struct World {
    apps: Vec<Application>,
    sps: Vec<ServicePrincipal>,
    assignments: Vec<AppRoleAssignment>,
    /// Operation name → failures still to inject.
    fail: HashMap<&'static str, u32>,
    writes: u32,
    surveys: u32,
    max_days: Option<u32>,
    /// The policy cannot be read (no Policy.Read.All): its limit stays unknown.
    policy_hidden: bool,
    o365_missing: bool,
    /// Operation name → times it is carried out and its answer then lost (a 503
    /// `Directory_ConcurrencyViolation` after the create was applied).
    lost: HashMap<&'static str, u32>,
    /// The app management policy forbids client secrets (`passwordAddition`).
    secrets_forbidden: bool,
    n: u32,
    /// Every read verification made, by URL, and every app token's scope.
    reads: Vec<String>,
    scopes: Vec<String>,
}

impl World {
    fn next(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}-{}", self.n)
    }
    fn check(&mut self, op: &'static str) -> Result<(), GraphError> {
        if let Some(n) = self.fail.get_mut(op)
            && *n > 0
        {
            *n -= 1;
            return Err(GraphError::Api {
                method: reqwest::Method::POST,
                path: op.into(),
                status: 400,
                code: "injected".into(),
                message: format!("injected failure in {op}"),
                request_id: Some("rid".into()),
                retried: 0,
            });
        }
        Ok(())
    }
    /// The answer to `op`, carried out, is lost.
    fn lose(&mut self, op: &'static str) -> Result<(), GraphError> {
        if let Some(n) = self.lost.get_mut(op)
            && *n > 0
        {
            *n -= 1;
            return Err(GraphError::Api {
                method: reqwest::Method::POST,
                path: op.into(),
                status: 503,
                code: "Directory_ConcurrencyViolation".into(),
                message: "Error due to concurrent requests being made to the tenant. Please wait briefly and retry.".into(),
                request_id: Some("rid".into()),
                retried: 0,
            });
        }
        Ok(())
    }
    fn our_roles(&self, app_id: &str) -> Vec<String> {
        let (g, o) = resource_sps();
        let Some(sp) = self.sps.iter().find(|s| s.app_id == app_id) else {
            return vec![];
        };
        self.assignments
            .iter()
            .filter(|a| a.principal_id.as_deref() == Some(&sp.id))
            .filter_map(|a| {
                g.app_roles
                    .iter()
                    .chain(o.app_roles.iter())
                    .find(|r| r.id == a.app_role_id)
                    .and_then(|r| r.value.clone())
            })
            .collect()
    }
}

struct FakeDir {
    w: Arc<Mutex<World>>,
    claims: TokenClaims,
}

fn org() -> Organization {
    Organization {
        id: TID.into(),
        display_name: Some("Contoso".into()),
        verified_domains: vec![
            VerifiedDomain {
                name: "contoso.onmicrosoft.com".into(),
                is_default: true,
                is_initial: true,
            },
            VerifiedDomain {
                name: "contoso.com".into(),
                is_default: false,
                is_initial: false,
            },
        ],
    }
}

#[async_trait::async_trait]
impl DirectoryApi for FakeDir {
    async fn signed_in(&self) -> Result<TokenClaims, GraphError> {
        Ok(self.claims.clone())
    }
    async fn survey(&self, q: &SurveyQuery) -> Result<Survey, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.surveys += 1;
        w.check("survey")?;
        let (g, o) = resource_sps();
        let o365_sp = if w.o365_missing {
            w.sps.iter().find(|s| s.app_id == o.app_id).cloned()
        } else {
            Some(o)
        };
        let our_sp = q
            .app_id
            .as_ref()
            .and_then(|a| w.sps.iter().find(|s| &s.app_id == a).cloned());
        let assignments = q.service_principal_id.as_ref().and_then(|sp| {
            w.sps.iter().any(|s| &s.id == sp).then(|| {
                w.assignments
                    .iter()
                    .filter(|a| a.principal_id.as_deref() == Some(sp))
                    .cloned()
                    .collect()
            })
        });
        Ok(Survey {
            organization: org(),
            skus: Some(vec![SubscribedSku {
                sku_part_number: Some("SPE_E3".into()),
                capability_status: Some("Enabled".into()),
                service_plans: vec![ServicePlan {
                    service_plan_name: "AAD_PREMIUM".into(),
                    provisioning_status: Some("Success".into()),
                }],
            }]),
            role_template_ids: None,
            graph_sp: Some(g),
            o365_sp,
            app_by_id: q
                .app_object_id
                .as_ref()
                .and_then(|id| w.apps.iter().find(|a| &a.id == id).cloned()),
            apps_by_name: w
                .apps
                .iter()
                .filter(|a| a.display_name.as_deref() == Some(&q.app_name))
                .cloned()
                .collect(),
            our_sp,
            assignments,
        })
    }
    async fn app_details(
        &self,
        app_id: &str,
    ) -> Result<(Option<ServicePrincipal>, Vec<AppRoleAssignment>), GraphError> {
        let w = self.w.lock().unwrap();
        let sp = w.sps.iter().find(|s| s.app_id == app_id).cloned();
        let a = sp
            .as_ref()
            .map(|sp| {
                w.assignments
                    .iter()
                    .filter(|a| a.principal_id.as_deref() == Some(&sp.id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok((sp, a))
    }
    async fn application(
        &self,
        object_id: &str,
        _attempts: u32,
    ) -> Result<Option<Application>, GraphError> {
        let w = self.w.lock().unwrap();
        Ok(w.apps.iter().find(|a| a.id == object_id).cloned())
    }
    async fn create_application(&self, body: &Value) -> Result<Application, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("create_application")?;
        w.writes += 1;
        let app = Application {
            id: w.next("app"),
            app_id: w.next("appid"),
            display_name: body["displayName"].as_str().map(str::to_string),
            tags: serde_json::from_value(body["tags"].clone()).unwrap(),
            notes: body["notes"].as_str().map(str::to_string),
            sign_in_audience: body["signInAudience"].as_str().map(str::to_string),
            required_resource_access: serde_json::from_value(
                body["requiredResourceAccess"].clone(),
            )
            .unwrap(),
            password_credentials: vec![],
            key_credentials: vec![],
        };
        w.apps.push(app.clone());
        w.lose("create_application")?;
        Ok(app)
    }
    async fn applications_named(&self, name: &str) -> Result<Vec<Application>, GraphError> {
        let w = self.w.lock().unwrap();
        Ok(w.apps
            .iter()
            .filter(|a| a.display_name.as_deref() == Some(name))
            .cloned()
            .collect())
    }
    async fn update_application(&self, object_id: &str, patch: &Value) -> Result<(), GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("update_application")?;
        w.writes += 1;
        let app = w.apps.iter_mut().find(|a| a.id == object_id).unwrap();
        app.required_resource_access =
            serde_json::from_value(patch["requiredResourceAccess"].clone()).unwrap();
        Ok(())
    }
    async fn create_service_principal(&self, app_id: &str) -> Result<ServicePrincipal, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("create_service_principal")?;
        w.writes += 1;
        let (_, o) = resource_sps();
        let sp = if app_id == o.app_id {
            o
        } else {
            ServicePrincipal {
                id: w.next("sp"),
                app_id: app_id.into(),
                display_name: None,
                app_roles: vec![],
            }
        };
        w.sps.push(sp.clone());
        Ok(sp)
    }
    async fn add_password(
        &self,
        object_id: &str,
        description: &str,
        end: OffsetDateTime,
    ) -> Result<NewSecret, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("add_password")?;
        if w.secrets_forbidden {
            return Err(GraphError::Api {
                method: reqwest::Method::POST,
                path: "addPassword".into(),
                status: 400,
                code: "CredentialTypeNotAllowedAsPerAppPolicy".into(),
                message: "Credential type not allowed as per assigned policy 'x'.".into(),
                request_id: None,
                retried: 0,
            });
        }
        if let Some(d) = w.max_days
            && end > OffsetDateTime::now_utc() + time::Duration::days(d as i64)
        {
            return Err(GraphError::Api {
                method: reqwest::Method::POST,
                path: "addPassword".into(),
                status: 400,
                code: "CredentialInvalidLifetimeAsPerAppPolicy".into(),
                message:
                    "Credential lifetime exceeds the max value allowed as per assigned policy 'x'."
                        .into(),
                request_id: None,
                retried: 0,
            });
        }
        w.writes += 1;
        let key = w.next("key");
        let app = w.apps.iter_mut().find(|a| a.id == object_id).unwrap();
        app.password_credentials.push(PasswordCredential {
            key_id: Some(key.clone()),
            display_name: Some(description.into()),
            hint: Some("abc".into()),
            end_date_time: Some(end),
            start_date_time: None,
            secret_text: None,
        });
        w.lose("add_password")?;
        Ok(NewSecret {
            key_id: key.clone(),
            hint: "abc".into(),
            start: OffsetDateTime::now_utc(),
            end,
            text: crate::secrets::SecretText::new(format!("secret-for-{key}")),
        })
    }
    async fn remove_password(&self, object_id: &str, key_id: &str) -> Result<(), GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("remove_password")?;
        w.writes += 1;
        let app = w.apps.iter_mut().find(|a| a.id == object_id).unwrap();
        app.password_credentials
            .retain(|p| p.key_id.as_deref() != Some(key_id));
        Ok(())
    }
    async fn delete_application(&self, object_id: &str) -> Result<(), GraphError> {
        let mut w = self.w.lock().unwrap();
        w.writes += 1;
        w.apps.retain(|a| a.id != object_id);
        Ok(())
    }
    async fn max_secret_lifetime_days(&self) -> Result<Option<u32>, GraphError> {
        let w = self.w.lock().unwrap();
        Ok(if w.policy_hidden { None } else { w.max_days })
    }
    async fn grant_app_roles(
        &self,
        principal_id: &str,
        grants: &[Grant],
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("grant_app_roles")?;
        let mut out = Vec::new();
        for g in grants {
            w.writes += 1;
            let exists = w.assignments.iter().any(|a| {
                a.principal_id.as_deref() == Some(principal_id)
                    && a.app_role_id == g.app_role_id
                    && a.resource_id == g.resource_id
            });
            let a = AppRoleAssignment {
                id: None,
                app_role_id: g.app_role_id.clone(),
                principal_id: Some(principal_id.into()),
                resource_id: g.resource_id.clone(),
            };
            if !exists {
                w.assignments.push(a.clone());
            }
            out.push(a);
        }
        Ok(out)
    }
    async fn app_role_assignments(
        &self,
        principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        let mut w = self.w.lock().unwrap();
        w.check("readback")?;
        Ok(w.assignments
            .iter()
            .filter(|a| a.principal_id.as_deref() == Some(principal_id))
            .cloned()
            .collect())
    }
}

struct FakeVerifier {
    w: Arc<Mutex<World>>,
}

#[async_trait::async_trait]
impl CredentialVerifier for FakeVerifier {
    async fn app_token(
        &self,
        _tenant_id: &str,
        client_id: &str,
        secret: &crate::secrets::SecretText,
        scope: &str,
    ) -> Result<AppToken, VerifyError> {
        let mut w = self.w.lock().unwrap();
        w.scopes.push(scope.to_string());
        if let Some(n) = w.fail.get_mut("verify")
            && *n > 0
        {
            *n -= 1;
            return Err(VerifyError::NotYet(
                "AADSTS7000215: Invalid client secret provided.".into(),
            ));
        }
        let app = w.apps.iter().find(|a| a.app_id == client_id).unwrap();
        let known = app.password_credentials.iter().any(|p| {
            p.key_id
                .as_deref()
                .is_some_and(|k| secret.expose() == format!("secret-for-{k}"))
        });
        if !known {
            return Err(VerifyError::Refused("AADSTS7000215: wrong secret".into()));
        }
        let no_roles = scope.contains("manage")
            && w.fail.get_mut("manage-no-roles").is_some_and(|n| {
                let hit = *n > 0;
                *n = n.saturating_sub(1);
                hit
            });
        Ok(AppToken {
            claims: TokenClaims {
                roles: if no_roles {
                    vec![]
                } else {
                    w.our_roles(client_id)
                },
                ..Default::default()
            },
            bearer: crate::secrets::SecretText::new(format!("token-for-{client_id}")),
        })
    }

    async fn read(
        &self,
        _bearer: &crate::secrets::SecretText,
        url: &url::Url,
    ) -> Result<ReadAnswer, VerifyError> {
        let mut w = self.w.lock().unwrap();
        let key = if url.path().contains("activity/feed") {
            "read-manage"
        } else {
            "read-graph"
        };
        w.reads.push(url.to_string());
        match w.fail.get_mut(key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Ok(ReadAnswer::Denied {
                    status: 403,
                    detail: "Authorization_RequestDenied: Insufficient privileges to complete the operation.".into(),
                })
            }
            _ => Ok(ReadAnswer::Ok),
        }
    }
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<Event>>,
    answer: Mutex<Option<Answer>>,
    asked: Mutex<Vec<Question>>,
}

impl Progress for Recorder {
    fn event(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
    fn ask(&self, q: &Question) -> Answer {
        self.asked.lock().unwrap().push(q.clone());
        self.answer.lock().unwrap().unwrap_or(Answer::Yes)
    }
}

impl Recorder {
    fn plan(&self) -> Plan {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Plan(p) => Some(p.clone()),
                _ => None,
            })
            .unwrap()
    }
}

struct Harness {
    /// The cloud the runs are for (the global one unless a test says otherwise).
    cloud: Mutex<Cloud>,
    w: Arc<Mutex<World>>,
    dir: FakeDir,
    verifier: FakeVerifier,
    secrets: Arc<dyn SecretStore>,
    home: tempfile::TempDir,
    store: TenantStore,
}

fn admin_claims() -> TokenClaims {
    TokenClaims {
        tid: Some(TID.into()),
        upn: Some("admin@contoso.onmicrosoft.com".into()),
        wids: vec![roles::GLOBAL_ADMIN.into()],
        ..Default::default()
    }
}

impl Harness {
    fn new() -> Harness {
        let w = Arc::new(Mutex::new(World::default()));
        let home = tempfile::tempdir().unwrap();
        let store = TenantStore::open(home.path()).unwrap();
        Harness {
            dir: FakeDir {
                w: w.clone(),
                claims: admin_claims(),
            },
            verifier: FakeVerifier { w: w.clone() },
            cloud: Mutex::new(Cloud::Global),
            w,
            secrets: Arc::new(MemoryStore::default()),
            home,
            store,
        }
    }

    async fn run_as(&self, tenant: &str, p: &dyn Progress) -> Result<RunReport, WizardError> {
        self.run_with(tenant, p, None).await
    }

    async fn run_with(
        &self,
        tenant: &str,
        p: &dyn Progress,
        portal: Option<Box<dyn Step>>,
    ) -> Result<RunReport, WizardError> {
        self.run_adopting(tenant, p, portal, None).await
    }

    async fn run_adopting(
        &self,
        tenant: &str,
        p: &dyn Progress,
        portal: Option<Box<dyn Step>>,
        adopt: Option<&str>,
    ) -> Result<RunReport, WizardError> {
        let cloud = *self.cloud.lock().unwrap();
        let mut settings = Settings::new(
            tenant.parse().expect("a tenant name"),
            cloud,
            cloud.graph_host(),
            cloud.manage_resource(),
        );
        settings.skip_exchange = true;
        settings.verify_attempts = 3;
        settings.verify_wait = Duration::from_millis(1);
        settings.adopt = adopt.map(str::to_string);
        let wiz = Wizard {
            settings,
            dir: &self.dir,
            verifier: &self.verifier,
            secrets: self.secrets.clone(),
            store: &self.store,
            progress: p,
            meter: RequestMeter::new(),
            exchange: None,
            portal,
            saved: Default::default(),
        };
        let id = wiz.identify().await?;
        wiz.run(id).await
    }

    async fn run(&self) -> Result<RunReport, WizardError> {
        self.run_as("contoso.onmicrosoft.com", &Recorder::default())
            .await
    }

    fn record(&self) -> TenantRecord {
        self.store.load().unwrap().tenants[0].clone()
    }

    fn assert_onboarded(&self) {
        let w = self.w.lock().unwrap();
        assert_eq!(w.apps.len(), 1, "one app");
        let app = &w.apps[0];
        assert!(app.tags.iter().any(|t| t == APP_TAG));
        assert_eq!(app.password_credentials.len(), 1, "one secret");
        assert_eq!(w.our_roles(&app.app_id).len(), 15);
        let rec = self.record();
        for s in [StepId::App, StepId::Secret, StepId::Consent, StepId::Verify] {
            assert!(rec.step(s).is_done(), "{s:?}: {:?}", rec.step(s));
        }
        assert_eq!(rec.steps.exchange.status, StepStatus::Skipped);
        assert_eq!(rec.granted_permissions.len(), 15);
        let _ = &self.home;
    }
}

#[tokio::test]
async fn fresh_then_rerun_writes_nothing() {
    let h = Harness::new();
    let r = h.run().await.unwrap();
    assert!(r.plan.changes());
    h.assert_onboarded();
    assert_eq!(h.record().license, Some(EntraLicense::P1));
    let writes = h.w.lock().unwrap().writes;
    assert_eq!(writes, 1 + 1 + 1 + 15, "app, sp, secret, 15 grants");
    let p = Recorder::default();
    let r = h.run_as("contoso.com", &p).await.unwrap();
    assert!(!r.plan.changes(), "{:?}", r.plan);
    assert_eq!(h.w.lock().unwrap().writes, writes, "nothing written");
    assert!(p.asked.lock().unwrap().is_empty(), "nothing to confirm");
    h.assert_onboarded();
}

#[tokio::test]
async fn resumes_after_a_failure_at_every_step() {
    for (op, step) in [
        ("create_application", StepId::App),
        ("create_service_principal", StepId::App),
        ("add_password", StepId::Secret),
        ("grant_app_roles", StepId::Consent),
        ("verify", StepId::Verify),
        ("readback", StepId::Verify),
    ] {
        let h = Harness::new();
        h.w.lock()
            .unwrap()
            .fail
            .insert(op, if op == "verify" { 100 } else { 1 });
        let e = h.run().await.unwrap_err();
        h.w.lock().unwrap().fail.clear();
        let rec = h.record();
        assert_eq!(rec.step(step).status, StepStatus::Failed, "{op}");
        let last = rec.step(step).last_error.clone().unwrap();
        assert!(
            !last.contains('\n') && !last.contains("secret-for"),
            "{last}"
        );
        for earlier in StepId::ALL
            .iter()
            .filter(|s| **s > StepId::Exchange && **s < step)
        {
            assert!(rec.step(*earlier).is_done(), "{op}: {earlier:?}");
        }
        let _ = e.hint().expect("a next action");
        h.run()
            .await
            .unwrap_or_else(|e| panic!("{op}: resume failed: {e}"));
        h.assert_onboarded();
    }
}

#[tokio::test]
async fn wrong_tenant_by_guid_stops_before_reading_anything() {
    let h = Harness::new();
    let e = h
        .run_as("11111111-2222-3333-4444-555555555555", &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(e, WizardError::WrongTenant { .. }), "{e}");
    assert_eq!(h.w.lock().unwrap().surveys, 0);
    let e = h
        .run_as("fabrikam.onmicrosoft.com", &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(e, WizardError::WrongTenant { .. }), "{e}");
    assert_eq!(h.w.lock().unwrap().writes, 0);
    assert!(h.store.load().unwrap().tenants.is_empty());
}

#[tokio::test]
async fn not_an_admin_and_declined_change_nothing() {
    let mut h = Harness::new();
    h.dir.claims.wids = vec![roles::APPLICATION_ADMIN.into()];
    let e = h.run().await.unwrap_err();
    assert!(matches!(e, WizardError::NotAdmin { .. }), "{e}");
    h.dir.claims.wids = vec![
        roles::CLOUD_APPLICATION_ADMIN.into(),
        roles::PRIVILEGED_ROLE_ADMIN.into(),
    ];
    let p = Recorder::default();
    *p.answer.lock().unwrap() = Some(Answer::No);
    let e = h.run_as("contoso.onmicrosoft.com", &p).await.unwrap_err();
    assert!(matches!(e, WizardError::Declined), "{e}");
    *p.answer.lock().unwrap() = Some(Answer::CannotAsk);
    let e = h.run_as("contoso.onmicrosoft.com", &p).await.unwrap_err();
    assert!(
        matches!(e, WizardError::NeedsAnswer { flag: "--yes", .. }),
        "{e}"
    );
    assert_eq!(h.w.lock().unwrap().writes, 0);
}

#[tokio::test]
async fn secret_policy_with_an_unreadable_limit_steps_down_when_agreed() {
    let h = Harness::new();
    {
        let mut w = h.w.lock().unwrap();
        w.max_days = Some(200);
        w.policy_hidden = true;
    }
    let p = Recorder::default();
    *p.answer.lock().unwrap() = Some(Answer::Yes);
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert!(p.asked.lock().unwrap().iter().any(|q| matches!(
        q,
        Question::ShorterSecretUnknown { asked_months: 24, steps } if steps == &vec![12, 6, 3, 1]
    )));
    // 12 months is refused too; 6 months is the longest accepted.
    let days = (h.record().secret.unwrap().expires_at - OffsetDateTime::now_utc()).whole_days();
    assert!((180..=184).contains(&days), "{days}");

    // Said no: nothing is made, and the error names --secret-months.
    let h = Harness::new();
    {
        let mut w = h.w.lock().unwrap();
        w.max_days = Some(200);
        w.policy_hidden = true;
    }
    struct NoToShorter;
    impl Progress for NoToShorter {
        fn event(&self, _e: Event) {}
        fn ask(&self, q: &Question) -> Answer {
            match q {
                Question::Proceed { .. } => Answer::Yes,
                _ => Answer::No,
            }
        }
    }
    let e = h
        .run_as("contoso.onmicrosoft.com", &NoToShorter)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WizardError::SecretPolicy { max_days: None, .. }),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("--secret-months"));
}

#[tokio::test]
async fn secret_policy_asks_and_uses_the_longest_allowed() {
    let h = Harness::new();
    h.w.lock().unwrap().max_days = Some(90);
    let p = Recorder::default();
    *p.answer.lock().unwrap() = Some(Answer::Yes);
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert!(p.asked.lock().unwrap().iter().any(|q| matches!(
        q,
        Question::ShorterSecret {
            asked_months: 24,
            max_days: 90
        }
    )));
    let days = (h.record().secret.unwrap().expires_at - OffsetDateTime::now_utc()).whole_days();
    assert!((88..=90).contains(&days), "{days}");

    let h = Harness::new();
    h.w.lock().unwrap().max_days = Some(90);
    let p = Recorder::default();
    // Yes to the plan, then no one to answer the shorter-secret question.
    struct Once(Recorder);
    impl Progress for Once {
        fn event(&self, e: Event) {
            self.0.event(e)
        }
        fn ask(&self, q: &Question) -> Answer {
            match q {
                Question::Proceed { .. } => Answer::Yes,
                _ => Answer::CannotAsk,
            }
        }
    }
    let _ = p;
    let e = h
        .run_as("contoso.onmicrosoft.com", &Once(Recorder::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            WizardError::SecretPolicy {
                max_days: Some(90),
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.hint().unwrap().contains("--secret-months 2"),
        "{:?}",
        e.hint()
    );
}

#[tokio::test]
async fn drift_missing_o365_sp_and_a_foreign_app() {
    let h = Harness::new();
    h.w.lock().unwrap().o365_missing = true;
    h.run().await.unwrap();
    h.assert_onboarded();
    // Drift: a permission removed by hand and its grant revoked.
    {
        let mut w = h.w.lock().unwrap();
        let removed = w.apps[0].required_resource_access[1]
            .resource_access
            .remove(0)
            .id;
        w.assignments.retain(|a| a.app_role_id != removed);
    }
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    let plan = p.plan();
    assert!(matches!(&plan.items[1].state, PlanState::ToDo(c) if c[0].contains("repair")));
    h.assert_onboarded();

    // An app of our name that is not ours: left alone, shown in the plan, ours made beside it.
    let h = Harness::new();
    h.w.lock().unwrap().apps.push(Application {
        id: "foreign".into(),
        app_id: "foreign-app".into(),
        display_name: Some(DEFAULT_APP_NAME.into()),
        ..Default::default()
    });
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert!(
        matches!(&p.plan().items[1].state, PlanState::ToDo(c) if c.iter().any(|l| l.contains("foreign-app") && l.contains("not ours"))),
        "{:?}",
        p.plan()
    );
    let w = h.w.lock().unwrap();
    assert_eq!(w.apps.len(), 2);
    assert!(
        w.our_roles("foreign-app").is_empty(),
        "nothing granted to it"
    );
    assert!(w.apps[0].password_credentials.is_empty());
    assert_ne!(h.record().app.unwrap().app_id, "foreign-app");
}

/// A portal that holds a record for the tenant (what `GET /tenants/{id}` answers).
#[derive(Default)]
struct HoldingPortal {
    held: Mutex<Option<crate::portal::PortalRecord>>,
    got: Mutex<Vec<crate::portal::Submission>>,
}

#[async_trait::async_trait]
impl crate::portal::PortalApi for HoldingPortal {
    async fn check(&self) -> Result<(), crate::portal::PortalError> {
        Ok(())
    }
    async fn submit(
        &self,
        s: &crate::portal::Submission,
    ) -> Result<crate::portal::SubmitOutcome, crate::portal::PortalError> {
        self.got.lock().unwrap().push(s.clone());
        *self.held.lock().unwrap() = Some(crate::portal::PortalRecord {
            client_id: s.client_id.clone(),
            secret_key_id: s.secret_key_id.clone(),
            secret_expires_at: Some(s.secret_expires_at),
            ual_status: Some(s.ual_status.clone()),
            entra_license: Some(s.entra_license.clone()),
            cloud: Some(s.cloud.clone()),
            updated_at: None,
        });
        Ok(crate::portal::SubmitOutcome::Created)
    }
    async fn tenant(
        &self,
        _tenant_id: &str,
    ) -> Result<Option<crate::portal::PortalRecord>, crate::portal::PortalError> {
        Ok(self.held.lock().unwrap().clone())
    }
}

fn portal_step(api: &Arc<HoldingPortal>) -> Option<Box<dyn Step>> {
    Some(Box::new(crate::wizard::steps::portal::PortalStep::new(
        api.clone(),
        &url::Url::parse("https://portal.example.com/").unwrap(),
    )))
}

#[tokio::test]
async fn a_lost_record_adopts_only_the_app_the_portal_holds() {
    // Without a portal, a tagged app of our name that nobody recorded is foreign.
    let h = Harness::new();
    h.run().await.unwrap();
    std::fs::remove_file(h.store.path()).unwrap();
    let first = h.w.lock().unwrap().apps[0].app_id.clone();
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert_eq!(h.w.lock().unwrap().apps.len(), 2, "ours made beside it");
    assert_ne!(h.record().app.unwrap().app_id, first);

    // With the portal holding it, it is adopted, and its secret kept and not replaced.
    let h = Harness::new();
    let portal = Arc::new(HoldingPortal::default());
    let p = Recorder::default();
    h.run_with("contoso.onmicrosoft.com", &p, portal_step(&portal))
        .await
        .unwrap();
    let held = portal.held.lock().unwrap().clone().unwrap();
    std::fs::remove_file(h.store.path()).unwrap();
    h.secrets
        .delete(&crate::secrets::account::client_secret(h.record_id()))
        .ok();
    let p = Recorder::default();
    let r = h
        .run_with("contoso.onmicrosoft.com", &p, portal_step(&portal))
        .await
        .unwrap();
    h.assert_onboarded();
    assert_eq!(r.record.app.unwrap().app_id, held.client_id);
    assert_eq!(r.record.secret.unwrap().key_id, held.secret_key_id);
    assert_eq!(h.keys(), vec![held.secret_key_id.clone()]);
    assert_eq!(portal.got.lock().unwrap().len(), 1, "nothing new sent");
}

#[tokio::test]
async fn a_planted_multi_tenant_app_is_never_adopted() {
    let h = Harness::new();
    h.w.lock().unwrap().apps.push(Application {
        id: "planted".into(),
        app_id: "planted-app".into(),
        display_name: Some(DEFAULT_APP_NAME.into()),
        tags: vec![APP_TAG.into()],
        sign_in_audience: Some("AzureADMultipleOrgs".into()),
        password_credentials: vec![crate::microsoft::graph::model::PasswordCredential {
            key_id: Some("their-key".into()),
            display_name: Some("hal".into()),
            hint: Some("abc".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    // --adopt: refused with the reason, nothing written.
    let e = h
        .run_adopting(
            "contoso.onmicrosoft.com",
            &Recorder::default(),
            None,
            Some("planted-app"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, WizardError::AdoptRefused { .. }), "{e}");
    assert!(e.to_string().contains("multi-tenant"), "{e}");
    assert_eq!(h.w.lock().unwrap().writes, 0);
    // Single tenant but with a credential that is not ours: refused too.
    h.w.lock().unwrap().apps[0].sign_in_audience = Some("AzureADMyOrg".into());
    let e = h
        .run_adopting(
            "contoso.onmicrosoft.com",
            &Recorder::default(),
            None,
            Some("planted-app"),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("credentials that are not ours"),
        "{e}"
    );
    // No secret but a certificate, which hal-onboard never adds: refused too.
    h.w.lock().unwrap().apps[0].password_credentials.clear();
    h.w.lock().unwrap().apps[0].key_credentials =
        vec![crate::microsoft::graph::model::KeyCredential {
            key_id: Some("their-cert".into()),
            display_name: Some("CN=planted".into()),
            ..Default::default()
        }];
    let e = h
        .run_adopting(
            "contoso.onmicrosoft.com",
            &Recorder::default(),
            None,
            Some("planted-app"),
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("credentials that are not ours")
            && e.to_string().contains("certificate their-cert"),
        "{e}"
    );
    assert_eq!(h.w.lock().unwrap().writes, 0);
    // Without its credential, adopting needs a person: --yes (CannotAsk here) never answers.
    h.w.lock().unwrap().apps[0].key_credentials.clear();
    let p = Recorder::default();
    *p.answer.lock().unwrap() = Some(Answer::CannotAsk);
    let e = h
        .run_adopting("contoso.onmicrosoft.com", &p, None, Some("planted-app"))
        .await
        .unwrap_err();
    assert!(matches!(e, WizardError::AdoptNeedsTerminal { .. }), "{e}");
    assert!(
        !Question::Adopt {
            app: ForeignApp::of(&h.w.lock().unwrap().apps[0], vec![])
        }
        .yes_answers()
    );
    // Multi-tenant again, no --adopt: ours is made, the planted one gets nothing.
    h.w.lock().unwrap().apps[0].sign_in_audience = Some("AzureADMultipleOrgs".into());
    h.w.lock().unwrap().apps[0].password_credentials =
        vec![crate::microsoft::graph::model::PasswordCredential {
            key_id: Some("their-key".into()),
            display_name: Some("hal".into()),
            ..Default::default()
        }];
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    let w = h.w.lock().unwrap();
    assert!(w.our_roles("planted-app").is_empty());
    let planted = w.apps.iter().find(|a| a.app_id == "planted-app").unwrap();
    assert_eq!(
        planted.password_credentials.len(),
        1,
        "its secret untouched"
    );
    assert!(planted.required_resource_access.is_empty(), "not patched");
    drop(w);
    assert!(
        matches!(&p.plan().items[1].state, PlanState::ToDo(c) if c.iter().any(|l| l.contains("AzureADMultipleOrgs") && l.contains("their-key")))
    );
}

#[tokio::test]
async fn no_secret_is_removed_before_the_portal_accepted_a_newer_one() {
    // The app is recorded, but not its secret, whose value this machine does not hold
    // (another machine's, which the portal may hold).
    let h2 = Harness::new();
    h2.run().await.unwrap();
    let mut rec = h2.record();
    let other = h2.keys()[0].clone();
    rec.secret = None;
    rec.portal = Default::default();
    h2.store.update(|d| d.upsert(rec.clone())).unwrap();
    h2.secrets
        .delete(&crate::secrets::account::client_secret(rec.tenant_id))
        .ok();
    h2.run().await.unwrap();
    assert!(
        h2.keys().contains(&other),
        "without a portal that accepted a newer one, the old secret stays: {:?}",
        h2.keys()
    );
    assert_eq!(h2.keys().len(), 2);
}
#[test]
fn licence_and_roles() {
    let sku = |plan: &str| SubscribedSku {
        sku_part_number: None,
        capability_status: Some("Enabled".into()),
        service_plans: vec![ServicePlan {
            service_plan_name: plan.into(),
            provisioning_status: None,
        }],
    };
    assert_eq!(licence(&[sku("AAD_PREMIUM_P2")]), EntraLicense::P2);
    assert_eq!(licence(&[sku("AAD_PREMIUM")]), EntraLicense::P1);
    assert_eq!(licence(&[sku("EXCHANGE_S_STANDARD")]), EntraLicense::None);
    assert!(
        licence_note(EntraLicense::None)
            .unwrap()
            .contains("sign-in logs")
    );
    assert!(can_onboard(&[roles::GLOBAL_ADMIN.to_uppercase()]));
    assert!(!can_onboard(&[roles::APPLICATION_ADMIN.into()]));
}

/// A stand-in for the portal engineer's step: "sends" when the portal lacks the current secret.
struct FakePortal(Arc<Mutex<u32>>);

#[async_trait::async_trait]
impl Step for FakePortal {
    fn id(&self) -> StepId {
        StepId::Portal
    }
    fn assess(&self, cx: &StepCx<'_>) -> Assessment {
        let current = cx.record.secret.as_ref().map(|s| s.key_id.clone());
        if current.is_some() && cx.record.portal.secret_key_id == current {
            Assessment::Done
        } else {
            Assessment::ToDo(vec!["send the credentials to the MSP portal".into()])
        }
    }
    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
        *self.0.lock().unwrap() += 1;
        assert!(cx.secret_present, "the secret is there for the portal");
        cx.record.portal.secret_key_id = cx.record.secret.as_ref().map(|s| s.key_id.clone());
        cx.record.portal.state = crate::store::PortalState::Submitted;
        Ok(StepOutcome::Done("sent".into()))
    }
}

#[tokio::test]
async fn the_portal_slot_runs_after_verification_and_only_when_due() {
    let h = Harness::new();
    let sent = Arc::new(Mutex::new(0));
    let p = Recorder::default();
    h.run_with(
        "contoso.onmicrosoft.com",
        &p,
        Some(Box::new(FakePortal(sent.clone()))),
    )
    .await
    .unwrap();
    assert_eq!(*sent.lock().unwrap(), 1);
    assert!(h.record().steps.portal.is_done());
    let p = Recorder::default();
    let r = h
        .run_with(
            "contoso.onmicrosoft.com",
            &p,
            Some(Box::new(FakePortal(sent.clone()))),
        )
        .await
        .unwrap();
    assert!(!r.plan.changes());
    assert_eq!(*sent.lock().unwrap(), 1, "not sent twice");
}

// ---- Secret rotation (wizard::rotate) ----------------------------------------------------

/// A portal that answers from a script and keeps what it was sent.
#[derive(Default)]
struct FakePortalApi {
    down: std::sync::atomic::AtomicBool,
    got: Mutex<Vec<crate::portal::Submission>>,
}

#[async_trait::async_trait]
impl crate::portal::PortalApi for FakePortalApi {
    async fn check(&self) -> Result<(), crate::portal::PortalError> {
        Ok(())
    }
    async fn submit(
        &self,
        s: &crate::portal::Submission,
    ) -> Result<crate::portal::SubmitOutcome, crate::portal::PortalError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::portal::PortalError::Unavailable {
                status: 503,
                attempts: 4,
            });
        }
        self.got.lock().unwrap().push(s.clone());
        Ok(crate::portal::SubmitOutcome::Created)
    }
}

impl Harness {
    async fn rotate(
        &self,
        portal: Option<&dyn crate::portal::PortalApi>,
    ) -> Result<rotate::Rotation, WizardError> {
        let mut settings = Settings::new(
            "contoso.onmicrosoft.com".parse().unwrap(),
            Cloud::Global,
            "https://graph.microsoft.com",
            "https://manage.office.com",
        );
        settings.verify_attempts = 3;
        settings.verify_wait = Duration::from_millis(1);
        let p = Recorder::default();
        let wiz = Wizard {
            settings,
            dir: &self.dir,
            verifier: &self.verifier,
            secrets: self.secrets.clone(),
            store: &self.store,
            progress: &p,
            meter: RequestMeter::new(),
            exchange: None,
            portal: None,
            saved: Default::default(),
        };
        let id = wiz.identify().await?;
        let (record, app) = Wizard::onboarded(&id)?;
        let present = wiz.secret_present(record.tenant_id).await?;
        let plan = rotate::plan(&record, &app, present, 24, portal.is_some());
        wiz.rotate(id, &plan, portal).await
    }

    fn record_id(&self) -> uuid::Uuid {
        TID.parse().unwrap()
    }

    fn keys(&self) -> Vec<String> {
        self.w.lock().unwrap().apps[0]
            .password_credentials
            .iter()
            .filter_map(|p| p.key_id.clone())
            .collect()
    }
}

#[tokio::test]
async fn rotation_sends_then_removes_and_resumes_after_a_portal_failure() {
    let h = Harness::new();
    h.run().await.unwrap();
    let portal = FakePortalApi::default();
    let r = h.rotate(Some(&portal)).await.unwrap();
    assert!(matches!(r.portal, rotate::PortalResult::Accepted(_)));
    assert_eq!(h.keys(), vec![r.new.key_id.clone()]);
    let in_use = r.new.key_id.clone();

    // The portal is down: the old secret stays, the new one is recorded and held.
    portal.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = h.rotate(Some(&portal)).await.unwrap();
    assert!(matches!(r.portal, rotate::PortalResult::Failed(_)));
    let pending = r.new.key_id.clone();
    assert_eq!(h.keys(), vec![in_use.clone(), pending.clone()]);
    assert_eq!(r.kept.len(), 1);
    assert_eq!(
        h.record().portal.secret_key_id.as_deref(),
        Some(in_use.as_str())
    );

    // Back: the same secret is sent (no third), then the old one goes.
    portal
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let writes = h.w.lock().unwrap().writes;
    let r = h.rotate(Some(&portal)).await.unwrap();
    assert!(r.resumed);
    assert_eq!(r.new.key_id, pending);
    assert_eq!(h.keys(), vec![pending.clone()]);
    assert_eq!(h.w.lock().unwrap().writes, writes + 1, "only the removal");
    let got = portal.got.lock().unwrap();
    assert_eq!(got.last().unwrap().secret_key_id, pending);
    assert_eq!(
        got.last().unwrap().client_secret,
        format!("secret-for-{pending}")
    );
}

#[tokio::test]
async fn rotation_without_the_portal_keeps_the_old_secret() {
    let h = Harness::new();
    h.run().await.unwrap();
    let portal = FakePortalApi::default();
    let first = h.rotate(Some(&portal)).await.unwrap().new.key_id;
    let r = h.rotate(None).await.unwrap();
    assert!(matches!(r.portal, rotate::PortalResult::NotSent));
    assert_eq!(h.keys(), vec![first.clone(), r.new.key_id.clone()]);
    assert_eq!(
        h.record().portal.secret_key_id.as_deref(),
        Some(first.as_str())
    );
}

#[tokio::test]
async fn a_failed_removal_after_the_portal_accepted_says_so() {
    let h = Harness::new();
    h.run().await.unwrap();
    let portal = FakePortalApi::default();
    h.rotate(Some(&portal)).await.unwrap();
    h.w.lock().unwrap().fail.insert("remove_password", 1);
    let e = h.rotate(Some(&portal)).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("the portal has the new client secret"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("secret rotate"), "{e:?}");
    let rec = h.record();
    assert_eq!(
        rec.portal.secret_key_id.as_deref(),
        Some(rec.secret.as_ref().unwrap().key_id.as_str()),
        "the record says the portal has the new one"
    );
    assert_eq!(h.keys().len(), 2);
}

/// A 503 concurrency violation after the create was applied, on the app and on the secret:
/// one app and one secret afterwards (the orphan secret, whose value was lost, removed), and
/// the secret kept is the one whose value the store holds.
#[tokio::test]
async fn lost_answers_to_creates_make_one_app_and_one_secret() {
    let h = Harness::new();
    {
        let mut w = h.w.lock().unwrap();
        w.lost.insert("create_application", 1);
        w.lost.insert("add_password", 1);
    }
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    h.assert_onboarded();
    let w = h.w.lock().unwrap();
    let key = w.apps[0].password_credentials[0].key_id.clone().unwrap();
    assert_eq!(h.record().secret.unwrap().key_id, key);
    let stored = h
        .secrets
        .get(&crate::secrets::account::client_secret(
            Uuid::parse_str(TID).unwrap(),
        ))
        .unwrap();
    assert_eq!(
        stored.as_ref().map(|s| s.expose()),
        Some(format!("secret-for-{key}").as_str())
    );
}

/// A policy that forbids client secrets is said once, plainly, with what an admin can change:
/// no shorter lifetimes are offered.
#[tokio::test]
async fn a_tenant_that_forbids_secrets_is_told_so_without_lifetime_questions() {
    let h = Harness::new();
    h.w.lock().unwrap().secrets_forbidden = true;
    let p = Recorder::default();
    let e = h.run_as("contoso.onmicrosoft.com", &p).await.unwrap_err();
    assert!(matches!(e, WizardError::SecretsForbidden { .. }), "{e:?}");
    assert!(
        e.to_string().contains("does not allow client secrets"),
        "{e}"
    );
    let hint = e.hint().unwrap();
    assert!(hint.contains("Application policies"), "{hint}");
    assert!(hint.contains("passwordAddition"), "{hint}");
    let asked = p.asked.lock().unwrap();
    assert!(
        !asked.iter().any(|q| matches!(
            q,
            Question::ShorterSecret { .. } | Question::ShorterSecretUnknown { .. }
        )),
        "{asked:?}"
    );
}

#[tokio::test]
async fn verification_reads_what_hal_reads_with_each_token_in_the_tenants_cloud() {
    let h = Harness::new();
    *h.cloud.lock().unwrap() = Cloud::Gcc;
    h.run().await.unwrap();
    h.assert_onboarded();
    let w = h.w.lock().unwrap();
    assert!(
        w.scopes
            .contains(&"https://manage-gcc.office.com/.default".to_string()),
        "the Management token is for GCC's root: {:?}",
        w.scopes
    );
    assert_eq!(
        w.reads,
        vec![
            "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$top=1".to_string(),
            format!(
                "https://manage-gcc.office.com/api/v1.0/{TID}/activity/feed/subscriptions/list"
            ),
        ]
    );
}

#[tokio::test]
async fn a_refused_read_is_retried_within_the_budget() {
    let h = Harness::new();
    h.w.lock().unwrap().fail.insert("read-manage", 2);
    let p = Recorder::default();
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert!(h.record().step(StepId::Verify).is_done());
    let waits: Vec<String> = p
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Waiting { what, .. } => Some(what.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(waits[0].contains("ActivityFeed.Read"), "{waits:?}");
}

#[tokio::test]
async fn a_read_refused_past_the_budget_names_the_permission_that_did_not_take() {
    let h = Harness::new();
    h.w.lock().unwrap().fail.insert("read-graph", 100);
    let e = h.run().await.unwrap_err();
    assert!(
        matches!(
            e,
            WizardError::NotVerified {
                attempts: 3,
                source: VerifyError::ReadDenied { status: 403, .. }
            }
        ),
        "{e:?}"
    );
    let WizardError::NotVerified { source, .. } = &e else {
        unreachable!()
    };
    assert!(source.to_string().contains("AuditLog.Read.All"), "{source}");
    assert!(
        e.hint().unwrap().contains("AuditLog.Read.All"),
        "{:?}",
        e.hint()
    );
    assert!(!h.record().step(StepId::Verify).is_done());
}

#[tokio::test]
async fn a_management_token_without_roles_is_not_passed() {
    let h = Harness::new();
    h.w.lock().unwrap().fail.insert("manage-no-roles", 100);
    let e = h.run().await.unwrap_err();
    match e {
        WizardError::NotVerified {
            source: VerifyError::NotYet(why),
            ..
        } => assert!(why.contains("ActivityFeed.Read"), "{why}"),
        e => panic!("{e:?}"),
    }
}

/// Another process changes a field of the record that this run does not own while the run is
/// between two of its writes: the run's later writes keep it (they set only the fields the
/// steps changed, on the record as it is in the file then). A whole-record write of the copy
/// read before used to put the old value back.
struct OtherProcessMidRun<'a> {
    inner: Recorder,
    home: &'a std::path::Path,
    done: Mutex<bool>,
}

impl Progress for OtherProcessMidRun<'_> {
    fn event(&self, e: Event) {
        if matches!(e, Event::StepStarted(StepId::Consent)) && !*self.done.lock().unwrap() {
            // A second handle on the same home: to the store, another process.
            let other = TenantStore::open(self.home).unwrap();
            let id: Uuid = TID.parse().unwrap();
            let changed = other
                .change(id, |r| {
                    r.keep_sign_in = true;
                    r.portal.told = Some(crate::store::PortalStatus {
                        ual_status: "enabled".into(),
                        entra_license: "P2".into(),
                    });
                })
                .unwrap();
            assert!(changed.is_some(), "the run saved the record before step 4");
            *self.done.lock().unwrap() = true;
        }
        self.inner.event(e)
    }
    fn ask(&self, q: &Question) -> Answer {
        self.inner.ask(q)
    }
}

#[tokio::test]
async fn a_field_another_process_wrote_mid_run_survives_the_runs_later_writes() {
    let h = Harness::new();
    let p = OtherProcessMidRun {
        inner: Recorder::default(),
        home: h.home.path(),
        done: Mutex::new(false),
    };
    h.run_as("contoso.onmicrosoft.com", &p).await.unwrap();
    assert!(*p.done.lock().unwrap(), "the other process ran mid-run");
    let rec = h.record();
    assert!(rec.keep_sign_in, "the other process's keepSignIn stays");
    assert_eq!(
        rec.portal.told.as_ref().map(|t| t.ual_status.as_str()),
        Some("enabled"),
        "the other process's portal.told stays"
    );
    // And the run's own fields were all saved.
    assert!(rec.step(StepId::Verify).is_done());
    assert!(rec.secret.is_some());
}
