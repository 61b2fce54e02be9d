//! `tenant add --partner`: the per-customer pipeline and the job runner that runs `--jobs N`
//! customers at once, after one partner sign-in. Nothing here prints: what a person sees comes
//! from a [`BatchObserver`] (`ui::multi` implements it).
//!
//! Per customer, in order (PARTNER.md, issue 13 "Per customer"):
//! 1. the tenant lock (a customer another run is changing is skipped, not failed);
//! 2. consent for the partner app in the customer ([`CustomerAccess::consent`]);
//! 3. a Graph session on the partner sign-in's customer credential (its `tid` is checked to be
//!    the customer's by the wizard's `identify`, before any write), every customer's Graph
//!    client sharing one [`ThrottleGate`] so a `Retry-After` holds back every job;
//! 4. the wizard as for a directly signed-in tenant, its plan approved for the whole batch, its
//!    Exchange step on the same customer credential (one sign-in for Graph and Exchange);
//! 5. the record marked `via: partner`.
//!
//! Resumable as `tenant add` is: every step records its result in the store as it ends, and
//! each step first looks for what it would create, so a run stopped anywhere and started again
//! finishes every customer with one app, fifteen grants and one secret.

use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use futures::StreamExt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cloud::Cloud;
use crate::config::EnvOverrides;
use crate::error::{CommandError, ExitStatus};
use crate::microsoft::exchange::OpsFactory;
use crate::microsoft::graph::gate::ThrottleGate;
use crate::microsoft::graph::{WaitNote, WaitObserver};
use crate::portal::PortalApi;
use crate::secrets::SecretStore;
use crate::store::{StepId, StepStatus, TenantRecord, TenantStore};
use crate::tenant::TenantName;
use crate::wizard::steps::Step;
use crate::wizard::{Answer, Event, Progress, Question, Settings, Wizard, WizardError};

/// One customer to onboard, as the survey found it.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant_id: Uuid,
    pub display_name: String,
    /// The relationship's end date when it ends within 30 days (EXPIRING): onboarded, and the
    /// date is in the summary.
    pub expiring: Option<OffsetDateTime>,
}

/// A customer named (or surveyed) that is not onboarded, nothing changed in it.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The customer's name, or the tenant as given.
    pub name: String,
    pub tenant_id: Option<Uuid>,
    /// `GDAP_NO_RELATIONSHIP`, `GDAP_NOT_IN_GROUP`, `GDAP_ROLE_MISSING`, `GDAP_ASSIGNMENT_PENDING`.
    pub code: &'static str,
    /// The missing role and why it is needed, and the roles held there (relationship and
    /// group names).
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// One customer in the batch's plan: what this machine knows of it already.
#[derive(Debug, Clone)]
pub struct PlanLine {
    pub target: Target,
    /// The recorded domain, when this machine onboarded (part of) it before.
    pub known_domain: Option<String>,
    /// Steps still to do by the record (all six for a customer never seen); empty: done,
    /// only re-checked.
    pub to_do: Vec<StepId>,
}

/// The batch's plan, from the tenant store alone (nothing is read in a customer, and nothing
/// is written anywhere, before the technician approves it).
pub fn plan(store: &TenantStore, targets: &[Target], skip_exchange: bool) -> Vec<PlanLine> {
    let doc = store.load().ok();
    let now = OffsetDateTime::now_utc();
    targets
        .iter()
        .map(|t| {
            let rec = doc.as_ref().and_then(|d| d.get(t.tenant_id));
            let to_do = match rec {
                Some(r) => crate::store::status::TenantStatus::of(r, now).pending,
                None => StepId::ALL.to_vec(),
            }
            .into_iter()
            .filter(|s| !(skip_exchange && *s == StepId::Exchange))
            .collect();
            PlanLine {
                target: t.clone(),
                known_domain: rec.map(|r| r.primary_domain.clone()),
                to_do,
            }
        })
        .collect()
}

/// How one customer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step done (verified, and sent to the portal when one is configured).
    Onboarded,
    /// Done except what waits on Microsoft (UAL propagation): `ual retry` finishes it.
    Waiting(String),
    /// Stopped with an error; a re-run resumes it.
    Failed { message: String, hints: Vec<String> },
    /// Another hal-onboard is changing it: skipped, nothing changed here.
    Busy(String),
    /// Ctrl-C came before it started, or while it ran.
    Interrupted,
}

/// A customer's result for the summary.
#[derive(Debug, Clone)]
pub struct CustomerResult {
    pub target: Target,
    /// The customer's default domain, once the wizard read it.
    pub domain: Option<String>,
    pub outcome: Outcome,
}

/// The batch's result: every customer's, in the order they were given, and the exit status.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub results: Vec<CustomerResult>,
    pub skipped: Vec<Skipped>,
}

impl Summary {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }
    pub fn onboarded(&self) -> usize {
        self.count(|o| *o == Outcome::Onboarded)
    }
    pub fn waiting(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Waiting(_)))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }
    /// Skipped because another run is changing it (not done, not failed).
    pub fn busy(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Busy(_)))
    }
    pub fn interrupted(&self) -> bool {
        self.results
            .iter()
            .any(|r| r.outcome == Outcome::Interrupted)
    }

    /// README "Exit codes": 0 every customer done; 3 some only wait on Microsoft; 1 any
    /// blocked or failed (130 after Ctrl-C).
    pub fn exit(&self) -> ExitStatus {
        if self.interrupted() {
            ExitStatus::Interrupted
        } else if !self.skipped.is_empty() || self.failed() + self.busy() > 0 {
            ExitStatus::Failed
        } else if self.waiting() > 0 {
            ExitStatus::Waiting
        } else {
            ExitStatus::Ok
        }
    }
}

/// What the batch tells whoever shows it (the live table). Called from several jobs at once.
pub trait BatchObserver: Send + Sync {
    /// A customer's job started.
    fn started(&self, target: &Target);
    /// Its current step ("3/6 Client secret", "consent for the partner app", a wait).
    fn step(&self, tenant: Uuid, what: &str);
    /// Something worth saying about it, above the table.
    fn note(&self, tenant: Uuid, text: &str, warning: bool);
    /// It ended.
    fn finished(&self, result: &CustomerResult);
}

/// The partner side of one customer: consent for the partner app, and the customer's tokens
/// from the partner sign-in (`partner::signin::PartnerSignIn::customer`).
#[async_trait::async_trait]
pub trait CustomerAccess: Send + Sync {
    /// The partner app is consented in the customer (already present counts), proven by
    /// `credential` (the customer's, from [`CustomerAccess::credential`]) getting a token; its
    /// progress, and an admin consent URL to open, go to `observer`.
    async fn consent(
        &self,
        customer: &Target,
        credential: Arc<dyn TokenCredential>,
        observer: &dyn BatchObserver,
    ) -> Result<(), CommandError>;
    /// The customer's tokens for any scope (Graph `{graph}/.default`, Exchange `{exo}/.default`).
    fn credential(&self, customer: Uuid) -> Arc<dyn TokenCredential>;
}

/// [`CustomerAccess`] through the partner sign-in: Partner Center's consent API (or the
/// customer's admin consent link), and the partner refresh token redeemed at the customer.
pub struct PartnerAccess {
    pub center: crate::microsoft::partner_center::PartnerCenter,
    pub endpoints: crate::cloud::Endpoints,
    /// The partner app (`partner setup`), and its name as Partner Center records the consent.
    pub client_id: String,
    pub display_name: String,
    pub policy: super::consent::ConsentPolicy,
    /// `PartnerSignIn::customer`.
    pub customer: CustomerCredential,
}

/// A customer's credential from the partner sign-in (`PartnerSignIn::customer`).
pub type CustomerCredential = Arc<dyn Fn(Uuid) -> Arc<dyn TokenCredential> + Send + Sync>;

/// Exchange Online PowerShell on the same customer credential as Graph (one sign-in for
/// both), connected with `-DelegatedOrganization` the customer.
pub struct PartnerExchange {
    pub customer: CustomerCredential,
}

#[async_trait::async_trait]
impl crate::microsoft::exchange::SignInFactory for PartnerExchange {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<
        crate::microsoft::exchange::auth::ExchangeSignIn,
        crate::microsoft::exchange::ExchangeError,
    > {
        Ok(crate::microsoft::exchange::auth::ExchangeSignIn {
            credential: (self.customer)(tenant.tenant_id),
            upn: None,
            // The session then checks it acts on this organization before any change.
            delegated_organization: Some(crate::microsoft::exchange::ops::organization(tenant)),
        })
    }
}

/// The consent's progress as the customer's line in the table; the admin consent link (when
/// Partner Center may not be used) above it, for a customer's admin to open.
struct ConsentLine<'a> {
    observer: &'a dyn BatchObserver,
    name: &'a str,
    admin_budget: std::time::Duration,
}

impl super::consent::ConsentObserver for ConsentLine<'_> {
    fn admin_consent_needed(&self, customer: Uuid, url: &url::Url, why: &str) {
        self.observer.note(customer, why, true);
        self.observer.note(
            customer,
            &super::consent::admin_consent_sentence(self.name, url, self.admin_budget),
            false,
        );
        self.observer
            .step(customer, "waiting for the customer's admin consent");
    }

    fn waiting(&self, customer: Uuid, p: &super::consent::ConsentProgress) {
        self.observer.step(customer, &p.sentence());
    }
}

#[async_trait::async_trait]
impl CustomerAccess for PartnerAccess {
    async fn consent(
        &self,
        customer: &Target,
        credential: Arc<dyn TokenCredential>,
        observer: &dyn BatchObserver,
    ) -> Result<(), CommandError> {
        super::consent::ensure(
            &self.center,
            credential,
            &self.endpoints,
            customer.tenant_id,
            &self.client_id,
            &self.display_name,
            &ConsentLine {
                observer,
                name: &customer.display_name,
                admin_budget: self.policy.admin_budget,
            },
            &self.policy,
        )
        .await
        .map(|_| ())
        .map_err(CommandError::from)
    }

    fn credential(&self, customer: Uuid) -> Arc<dyn TokenCredential> {
        (self.customer)(customer)
    }
}

/// What the command decided from its flags for every customer of the batch.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    pub cloud: Cloud,
    pub app_name: String,
    pub secret_months: u8,
    pub skip_exchange: bool,
    /// `--yes`: also answers "a shorter secret lifetime than asked" (the plan is approved once
    /// for the batch either way).
    pub yes: bool,
    pub jobs: usize,
}

/// Everything a customer's job needs, shared by all jobs.
pub struct Deps {
    pub env: EnvOverrides,
    pub http: reqwest::Client,
    pub home: PathBuf,
    pub store: TenantStore,
    pub secrets: Arc<dyn SecretStore>,
    pub access: Arc<dyn CustomerAccess>,
    /// Step 1's sessions (their sign-in is the customer credential, `-DelegatedOrganization`
    /// the customer); `None` with --skip-exchange.
    pub exchange: Option<Arc<dyn OpsFactory>>,
    /// The MSP portal and its URL, when configured and not `--no-portal`.
    pub portal: Option<(Arc<dyn PortalApi>, url::Url)>,
    pub gate: Arc<ThrottleGate>,
    pub observer: Arc<dyn BatchObserver>,
    pub settings: BatchSettings,
}

/// The wizard's progress for one customer, as lines of the batch's table. The plan was
/// approved for the whole batch, so "change it as planned?" is answered yes; what needs a
/// person for this customer alone is refused (`CannotAsk`), never asked in the middle of
/// several jobs.
struct CustomerProgress {
    tenant: Uuid,
    observer: Arc<dyn BatchObserver>,
    yes: bool,
}

impl Progress for CustomerProgress {
    fn event(&self, e: Event) {
        let o = &self.observer;
        match e {
            Event::StepStarted(step) => o.step(
                self.tenant,
                &format!("{}/6 {}", step_number(step), step.title()),
            ),
            Event::Waiting {
                what, attempt, of, ..
            } => o.step(
                self.tenant,
                &format!("waiting for {what} (attempt {attempt}/{of})"),
            ),
            Event::Warning(w) => o.note(self.tenant, &w, true),
            // The batch's plan was shown; the per-customer detail is in `list`.
            Event::Tenant { .. }
            | Event::Licence { .. }
            | Event::Plan(_)
            | Event::StepDone { .. }
            | Event::StepSkipped { .. }
            | Event::Info(_) => {}
        }
    }

    fn ask(&self, q: &Question) -> Answer {
        match q {
            Question::Proceed { .. } => Answer::Yes,
            Question::ShorterSecret { .. } | Question::ShorterSecretUnknown { .. } if self.yes => {
                Answer::Yes
            }
            _ => Answer::CannotAsk,
        }
    }
}

impl WaitObserver for CustomerProgress {
    fn waiting(&self, note: &WaitNote) {
        self.observer.step(
            self.tenant,
            &format!(
                "{}; next try in {}",
                note.sentence(),
                crate::microsoft::graph::human(note.next_in)
            ),
        );
    }
}

pub fn step_number(s: StepId) -> usize {
    match s {
        StepId::Exchange => 1,
        StepId::App => 2,
        StepId::Secret => 3,
        StepId::Consent => 4,
        StepId::Verify => 5,
        StepId::Portal => 6,
    }
}

/// Runs every target, `settings.jobs` at once, and returns their results in the order given.
/// Once `stop()` says so (Ctrl-C) no further customer starts; the running ones end as their
/// steps let them (each result is saved as it happens).
pub async fn run(
    deps: &Deps,
    targets: Vec<Target>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<CustomerResult> {
    let order: Vec<Uuid> = targets.iter().map(|t| t.tenant_id).collect();
    let mut results: Vec<CustomerResult> = futures::stream::iter(targets)
        .map(|t| async move {
            if stop() {
                return CustomerResult {
                    target: t,
                    domain: None,
                    outcome: Outcome::Interrupted,
                };
            }
            deps.observer.started(&t);
            let r = onboard(deps, t).await;
            deps.observer.finished(&r);
            r
        })
        .buffer_unordered(deps.settings.jobs.max(1))
        .collect()
        .await;
    results.sort_by_key(|r| order.iter().position(|id| *id == r.target.tenant_id));
    results
}

/// One customer, start to finish.
async fn onboard(deps: &Deps, target: Target) -> CustomerResult {
    let mut domain = None;
    let outcome = match onboard_inner(deps, &target, &mut domain).await {
        Ok(o) | Err(o) => o,
    };
    tracing::debug!(tenant = %target.tenant_id, ?outcome, "customer done");
    CustomerResult {
        target,
        domain,
        outcome,
    }
}

fn failed(e: CommandError) -> Outcome {
    if e.status == ExitStatus::Interrupted {
        return Outcome::Interrupted;
    }
    if e.status == ExitStatus::Waiting {
        return Outcome::Waiting(e.message);
    }
    let mut message = e.message.clone();
    if let Some(c) = e.causes().first() {
        message = format!("{message}: {c}");
    }
    Outcome::Failed {
        message,
        hints: e.hints,
    }
}

async fn onboard_inner(
    deps: &Deps,
    target: &Target,
    domain: &mut Option<String>,
) -> Result<Outcome, Outcome> {
    let tid = target.tenant_id;
    let obs = &deps.observer;
    // One run per customer, from before its first write to the end of its work.
    let _lock = match crate::store::lock::acquire(
        &deps.home,
        tid,
        &target.display_name,
        "tenant add --partner",
    ) {
        Ok(l) => l,
        Err(e @ crate::store::lock::LockError::Busy { .. }) => {
            return Err(Outcome::Busy(e.to_string()));
        }
        Err(e) => return Err(failed(CommandError::from(e))),
    };
    obs.step(tid, "consent for the partner app");
    // One customer credential for the consent's proof and the Graph session: the token that
    // proved the consent is the session's first.
    let credential = deps.access.credential(tid);
    deps.access
        .consent(target, credential.clone(), obs.as_ref())
        .await
        .map_err(failed)?;

    obs.step(tid, "signing in to the customer");
    let progress = Arc::new(CustomerProgress {
        tenant: tid,
        observer: obs.clone(),
        yes: deps.settings.yes,
    });
    let cloud = deps.settings.cloud;
    let graph_resource = deps.env.endpoints(cloud).graph_resource;
    let crate::session::Session {
        endpoints,
        graph,
        verifier,
        meter,
        scale,
        ..
    } = crate::session::Session::with_credential(
        &deps.env,
        deps.http.clone(),
        cloud,
        credential,
        vec![format!("{graph_resource}/.default")],
    );
    let graph = graph.with_throttle_gate(deps.gate.clone());
    graph.set_wait_observer(progress.clone());

    let mut settings = Settings::new(
        TenantName::from(tid),
        cloud,
        &endpoints.graph_resource,
        &endpoints.manage_resource,
    );
    settings.endpoints = endpoints.clone();
    settings.app_name = deps.settings.app_name.clone();
    settings.secret_months = deps.settings.secret_months;
    settings.skip_exchange = deps.settings.skip_exchange;
    // No credentials table per customer: the secret is for the portal (or the keyring).
    settings.secret_shown = false;
    settings.verify_wait = settings.verify_wait.mul_f64(scale);
    let wizard = Wizard {
        settings,
        dir: &graph,
        verifier: &verifier,
        secrets: deps.secrets.clone(),
        store: &deps.store,
        progress: &*progress,
        meter: meter.clone(),
        exchange: if deps.settings.skip_exchange {
            None
        } else {
            deps.exchange.clone().map(|f| {
                Box::new(crate::wizard::steps::exchange::ExchangeStep::new(f)) as Box<dyn Step>
            })
        },
        portal: deps.portal.as_ref().map(|(api, url)| {
            Box::new(crate::wizard::steps::portal::PortalStep::new(
                api.clone(),
                url,
            )) as Box<dyn Step>
        }),
        saved: Default::default(),
    };
    obs.step(tid, "reading the customer's tenant");
    let id = wizard.identify().await.map_err(wizard_failed)?;
    *domain = Some(id.default_domain.clone());
    let report = wizard.run(id).await;
    // A customer stopped half-way is still one this machine reaches through the partner
    // sign-in (`ual retry`, `secret rotate` and `tenant remove` read it).
    let via = mark_via_partner(&deps.store, tid);
    let rec = report.map_err(wizard_failed)?.record;
    via.map_err(|e| failed(CommandError::from(e)))?;
    // The engine saved the record that says the portal has the secret: now it can go.
    if crate::wizard::steps::portal::is_current(&rec) {
        let _ = crate::wizard::steps::portal::forget_secret(deps.secrets.as_ref(), tid);
    }
    Ok(outcome_of(&rec))
}

/// `via: partner` in the tenant record (store/model.rs's `Via`, `list` shows it).
fn mark_via_partner(store: &TenantStore, tenant: Uuid) -> Result<(), crate::store::StoreError> {
    let partner = crate::store::Via::Partner;
    if store.load()?.get(tenant).is_some_and(|r| r.via != partner) {
        store.change(tenant, |r| r.via = partner)?;
    }
    Ok(())
}

fn wizard_failed(e: WizardError) -> Outcome {
    if e.is_interrupted() {
        return Outcome::Interrupted;
    }
    failed(CommandError::from(e))
}

/// A finished run's record: onboarded, waiting on UAL's propagation, or step 1 unable to run
/// on this machine (everything else done).
fn outcome_of(rec: &TenantRecord) -> Outcome {
    match rec.steps.exchange.status {
        StepStatus::Waiting => Outcome::Waiting("unified audit logging is propagating".into()),
        StepStatus::Failed => Outcome::Failed {
            message: format!(
                "onboarded except unified audit logging: {}",
                rec.steps
                    .exchange
                    .last_error
                    .as_deref()
                    .unwrap_or("step 1 could not run")
            ),
            hints: vec![format!(
                "Once that is fixed, run `hal-onboard ual retry {}` to turn it on.",
                rec.primary_domain
            )],
        },
        _ if !rec.step(StepId::Verify).is_done() => Outcome::Failed {
            message: "the credentials are not verified yet".into(),
            hints: vec![],
        },
        _ => Outcome::Onboarded,
    }
}

/// Which customers the batch onboards and which it skips, nothing changed in them: every
/// customer the survey found (`--all`), or the ones named (`(as given, tenant ID)`; one GDAP
/// does not reach is GDAP_NO_RELATIONSHIP). BLOCKED ones are skipped with the missing role,
/// why it is needed, the roles held there (relationship and group names) and the fix;
/// EXPIRING ones are onboarded, their end date kept for the summary.
pub fn select(
    customers: &[super::customers::Customer],
    named: Option<&[(String, Uuid)]>,
    skip_exchange: bool,
    now: OffsetDateTime,
) -> (Vec<Target>, Vec<Skipped>) {
    use super::customers::{self, Blocked, Verdict};
    let skip = |name: &str, id: Option<Uuid>, b: &Blocked, held: &[customers::HeldRole]| Skipped {
        name: name.to_string(),
        tenant_id: id,
        code: b.code(),
        message: match b {
            Blocked::NoRelationship { .. } => b.reason(),
            _ => format!(
                "{}; the roles you hold there: {}",
                b.reason(),
                customers::describe_held(held)
            ),
        },
        fix: b.fix(),
    };
    // Each customer asked for: as the survey found it, or why GDAP does not reach it.
    let asked: Vec<(String, Uuid, Result<&customers::Customer, Blocked>)> = match named {
        None => customers
            .iter()
            .map(|c| (c.display_name.clone(), c.tenant_id, Ok(c)))
            .collect(),
        Some(named) => named
            .iter()
            .map(|(given, id)| (given.clone(), *id, customers::find_id(customers, *id)))
            .collect(),
    };
    let mut targets: Vec<Target> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for (given, id, found) in asked {
        if targets.iter().any(|t| t.tenant_id == id)
            || skipped.iter().any(|s| s.tenant_id == Some(id))
        {
            continue;
        }
        let c = match found {
            Ok(c) => c,
            Err(b) => {
                skipped.push(skip(&given, Some(id), &b, &[]));
                continue;
            }
        };
        match customers::verdict(c, skip_exchange, now) {
            Verdict::Blocked(b) => skipped.push(skip(&c.display_name, Some(id), &b, &c.roles)),
            v => targets.push(Target {
                tenant_id: id,
                display_name: c.display_name.clone(),
                expiring: match v {
                    Verdict::Expiring { ends_at } => Some(ends_at),
                    _ => None,
                },
            }),
        }
    }
    (targets, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome) -> CustomerResult {
        CustomerResult {
            target: Target {
                tenant_id: Uuid::new_v4(),
                display_name: "x".into(),
                expiring: None,
            },
            domain: None,
            outcome,
        }
    }

    fn skipped() -> Skipped {
        Skipped {
            name: "Litware".into(),
            tenant_id: None,
            code: "GDAP_ROLE_MISSING",
            message: "m".into(),
            fix: "f".into(),
        }
    }

    #[test]
    fn exit_is_0_all_done_3_only_waiting_1_any_blocked_or_failed() {
        let s = |results, skipped| Summary { results, skipped };
        let done = || result(Outcome::Onboarded);
        let wait = || result(Outcome::Waiting("ual".into()));
        let fail = || {
            result(Outcome::Failed {
                message: "x".into(),
                hints: vec![],
            })
        };
        assert_eq!(s(vec![done(), done()], vec![]).exit(), ExitStatus::Ok);
        assert_eq!(s(vec![done(), wait()], vec![]).exit(), ExitStatus::Waiting);
        assert_eq!(
            s(vec![done(), wait()], vec![skipped()]).exit(),
            ExitStatus::Failed
        );
        assert_eq!(s(vec![wait(), fail()], vec![]).exit(), ExitStatus::Failed);
        assert_eq!(
            s(vec![done(), result(Outcome::Busy("b".into()))], vec![]).exit(),
            ExitStatus::Failed
        );
        assert_eq!(s(vec![], vec![skipped()]).exit(), ExitStatus::Failed);
        assert_eq!(
            s(vec![done(), result(Outcome::Interrupted)], vec![]).exit(),
            ExitStatus::Interrupted
        );
    }

    #[test]
    fn the_batch_answers_its_plan_and_refuses_what_needs_a_person() {
        struct Quiet;
        impl BatchObserver for Quiet {
            fn started(&self, _: &Target) {}
            fn step(&self, _: Uuid, _: &str) {}
            fn note(&self, _: Uuid, _: &str, _: bool) {}
            fn finished(&self, _: &CustomerResult) {}
        }
        let p = |yes| CustomerProgress {
            tenant: Uuid::nil(),
            observer: Arc::new(Quiet),
            yes,
        };
        let proceed = Question::Proceed {
            display_name: "F".into(),
            default_domain: "f".into(),
        };
        let shorter = Question::ShorterSecret {
            asked_months: 24,
            max_days: 90,
        };
        assert_eq!(p(false).ask(&proceed), Answer::Yes);
        assert_eq!(p(false).ask(&shorter), Answer::CannotAsk);
        assert_eq!(p(true).ask(&shorter), Answer::Yes);
    }
}
