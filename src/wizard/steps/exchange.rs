//! The guide's Step 1: make sure unified audit logging (UAL) is on in Exchange Online.
//!
//! Check hydration, hydrate if needed, enable UAL, verify. One difference from the guide: when
//! `Get-AdminAuditLogConfig` already says True, nothing is changed, so a new tenant that ships
//! with UAL on is never hydrated for nothing (hydration cannot be undone).
//!
//! After hydration Microsoft propagates the customization for minutes to hours, and
//! `Set-AdminAuditLogConfig` keeps failing with the dehydration error meanwhile. That is not a
//! failure: the tenant is recorded as waiting ([`UalState::WaitingPropagation`], step status
//! `Waiting`, `hydrated_at`), the wizard goes on with the Graph steps, and
//! `hal-onboard ual retry` finishes it later with [`retry`].

use serde::Serialize;
use time::OffsetDateTime;

use crate::microsoft::exchange::{
    Customization, ErrorClass, ExchangeError, ExchangeOps, OpsFactory,
};
use crate::store::{StepId, StepStatus, TenantRecord, UalState};

/// Told what the step is doing, for a spinner. Never asked anything.
pub trait ExchangeProgress: Send + Sync {
    fn stage(&self, what: &str);
}

/// Shows nothing.
pub struct NoProgress;

impl ExchangeProgress for NoProgress {
    fn stage(&self, _what: &str) {}
}

impl<F: Fn(&str) + Send + Sync> ExchangeProgress for F {
    fn stage(&self, what: &str) {
        self(what)
    }
}

/// How the step ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum ExchangeOutcome {
    /// `Get-AdminAuditLogConfig` says `UnifiedAuditLogIngestionEnabled: True`.
    #[serde(rename_all = "camelCase")]
    Enabled {
        /// It was on before we changed anything.
        already: bool,
        /// We ran `Enable-OrganizationCustomization` in this run.
        hydrated_now: bool,
    },
    /// Hydrated (or hydrating); Microsoft is still propagating, `Set-AdminAuditLogConfig`
    /// keeps refusing.
    #[serde(rename_all = "camelCase")]
    WaitingPropagation {
        /// When hydration was seen to happen; `None` when it was not seen (someone else's, or
        /// an `Enable-OrganizationCustomization` that errored with the organization still
        /// reading as dehydrated).
        #[serde(with = "time::serde::rfc3339::option")]
        hydrated_at: Option<OffsetDateTime>,
    },
}

/// Microsoft's documented delay once UAL is on (issue 12), said the same way by the step, `ual
/// retry` and the end-of-run delays line, so a technician never reads two different waits.
pub const UAL_EVENTS_DELAY: &str = "audit events appear up to 60 minutes after it is enabled";

impl ExchangeOutcome {
    pub fn is_done(&self) -> bool {
        matches!(self, ExchangeOutcome::Enabled { .. })
    }

    /// One line for the technician.
    pub fn summary(&self) -> String {
        match self {
            ExchangeOutcome::Enabled { already: true, .. } => {
                "Unified audit logging was already on.".into()
            }
            ExchangeOutcome::Enabled { .. } => {
                format!("Unified audit logging is on; {UAL_EVENTS_DELAY}.")
            }
            ExchangeOutcome::WaitingPropagation {
                hydrated_at: Some(_),
            } => {
                "Waiting on Microsoft: the organization is hydrated but its customization is still propagating (minutes to hours), so audit logging cannot be switched on yet.".into()
            }
            // Hydration not seen (someone else's, or an Enable-OrganizationCustomization that
            // errored): say no more than is known.
            ExchangeOutcome::WaitingPropagation { hydrated_at: None } => {
                "Waiting on Microsoft: the organization's customization is not in effect yet (minutes to hours), so audit logging cannot be switched on yet.".into()
            }
        }
    }

    /// What to do next, naming the command; `None` when nothing is left.
    pub fn hint(&self, domain: &str) -> Option<String> {
        match self {
            ExchangeOutcome::Enabled { .. } => None,
            ExchangeOutcome::WaitingPropagation { .. } => Some(format!(
                "The other steps go on. Run `hal-onboard ual retry {domain}` later (or `hal-onboard ual retry --watch` to keep trying) to finish it."
            )),
        }
    }
}

/// The whole Step 1 for one tenant; records the result in `rec` (the caller commits it).
pub async fn run(
    ops: &dyn ExchangeOps,
    rec: &mut TenantRecord,
    progress: &dyn ExchangeProgress,
) -> Result<ExchangeOutcome, ExchangeError> {
    let r = run_inner(ops, rec, progress).await;
    if let Err(e) = &r
        && !matches!(e, ExchangeError::Interrupted)
    {
        rec.ual.state = UalState::Failed;
        rec.step_mut(StepId::Exchange)
            .record(StepStatus::Failed, Some(e.to_string()));
    }
    r
}

async fn run_inner(
    ops: &dyn ExchangeOps,
    rec: &mut TenantRecord,
    progress: &dyn ExchangeProgress,
) -> Result<ExchangeOutcome, ExchangeError> {
    progress.stage("Reading the organization's configuration (Get-OrganizationConfig)");
    let org = ops.org_config().await?;
    progress.stage("Checking unified audit logging (Get-AdminAuditLogConfig)");
    if ops.get_ual().await? {
        return Ok(mark_enabled(rec, true, false));
    }
    let mut hydrated_now = false;
    if org.is_dehydrated {
        progress.stage("Hydrating the organization (Enable-OrganizationCustomization)");
        match ops.enable_customization().await {
            Ok(Customization::Enabled) => {
                hydrated_now = true;
                rec.ual.hydrated_at = Some(OffsetDateTime::now_utc());
            }
            Ok(Customization::AlreadyEnabled) => {
                // Dehydrated a moment ago, customized now: it happened just before us.
                rec.ual
                    .hydrated_at
                    .get_or_insert_with(OffsetDateTime::now_utc);
            }
            // Not allowed, or not signed in: nothing happened.
            Err(e) if matches!(e.class(), ErrorClass::MissingRole | ErrorClass::NotSignedIn) => {
                return Err(e);
            }
            Err(ExchangeError::Interrupted) => return Err(ExchangeError::Interrupted),
            // Microsoft's docs issues report Enable-OrganizationCustomization erroring after
            // it did hydrate (MicrosoftDocs/microsoft-365-docs#7403, #7530): ask again.
            Err(e) => {
                progress.stage(
                    "Checking whether the organization was hydrated anyway (Get-OrganizationConfig)",
                );
                if ops.org_config().await?.is_dehydrated {
                    return Ok(mark_waiting(
                        rec,
                        format!(
                            "Enable-OrganizationCustomization reported an error and the organization still reads as dehydrated; Microsoft may still be hydrating it, and the next retry checks again ({e})"
                        ),
                    ));
                }
                hydrated_now = true;
                rec.ual.hydrated_at = Some(OffsetDateTime::now_utc());
            }
        }
    }
    set_and_verify(ops, rec, progress, hydrated_now).await
}

/// `hal-onboard ual retry`: Set again, then verify. Errors leave the tenant's state as it was
/// (a waiting tenant stays waiting) with the error noted on the step.
pub async fn retry(
    ops: &dyn ExchangeOps,
    rec: &mut TenantRecord,
    progress: &dyn ExchangeProgress,
) -> Result<ExchangeOutcome, ExchangeError> {
    let r = set_and_verify(ops, rec, progress, false).await;
    if let Err(e) = &r
        && !matches!(e, ExchangeError::Interrupted)
    {
        let step = rec.step_mut(StepId::Exchange);
        step.at = Some(OffsetDateTime::now_utc());
        step.last_error = Some(e.to_string());
    }
    r
}

/// What a re-run does: [`retry`] when an earlier run hydrated the tenant and left it waiting
/// on propagation, else the whole step ([`run`]): a tenant whose hydration was never seen
/// (an `Enable-OrganizationCustomization` that errored) is checked and hydrated again.
pub async fn resume(
    ops: &dyn ExchangeOps,
    rec: &mut TenantRecord,
    progress: &dyn ExchangeProgress,
) -> Result<ExchangeOutcome, ExchangeError> {
    if rec.ual.state == UalState::WaitingPropagation && rec.ual.hydrated_at.is_some() {
        retry(ops, rec, progress).await
    } else {
        run(ops, rec, progress).await
    }
}

async fn set_and_verify(
    ops: &dyn ExchangeOps,
    rec: &mut TenantRecord,
    progress: &dyn ExchangeProgress,
    hydrated_now: bool,
) -> Result<ExchangeOutcome, ExchangeError> {
    progress.stage("Turning on unified audit logging (Set-AdminAuditLogConfig)");
    let now = OffsetDateTime::now_utc();
    rec.ual.attempts += 1;
    rec.ual.last_attempt_at = Some(now);
    let why = match ops.set_ual().await {
        Ok(()) => {
            progress.stage("Verifying (Get-AdminAuditLogConfig)");
            if ops.get_ual().await? {
                return Ok(mark_enabled(rec, false, hydrated_now));
            }
            "Set-AdminAuditLogConfig succeeded but Get-AdminAuditLogConfig still says False"
                .to_string()
        }
        Err(e) if e.class() == ErrorClass::Dehydrated => {
            // It may be on already (a tenant that shipped with UAL on): then we are done.
            if ops.get_ual().await.unwrap_or(false) {
                return Ok(mark_enabled(rec, true, hydrated_now));
            }
            e.to_string()
        }
        Err(e) => return Err(e),
    };
    Ok(mark_waiting(rec, why))
}

/// Waiting on Microsoft; `hydrated_at` stays what was seen (never invented).
fn mark_waiting(rec: &mut TenantRecord, why: String) -> ExchangeOutcome {
    rec.ual.state = UalState::WaitingPropagation;
    rec.step_mut(StepId::Exchange)
        .record(StepStatus::Waiting, Some(why));
    ExchangeOutcome::WaitingPropagation {
        hydrated_at: rec.ual.hydrated_at,
    }
}

fn mark_enabled(rec: &mut TenantRecord, already: bool, hydrated_now: bool) -> ExchangeOutcome {
    rec.ual.state = UalState::Enabled;
    rec.ual
        .enabled_at
        .get_or_insert_with(OffsetDateTime::now_utc);
    rec.step_mut(StepId::Exchange)
        .record(StepStatus::Done, None);
    ExchangeOutcome::Enabled {
        already,
        hydrated_now,
    }
}

/// Step 1 in the wizard's engine ([`super::Step`]): makes the tenant's [`ExchangeOps`] from
/// the record when it runs (the tenant is known only then), runs [`run`] (or [`retry`] when an
/// earlier run left the tenant waiting), and leaves the step's status to the engine.
pub struct ExchangeStep {
    ops: std::sync::Arc<dyn OpsFactory>,
}

impl ExchangeStep {
    pub fn new(ops: std::sync::Arc<dyn OpsFactory>) -> ExchangeStep {
        ExchangeStep { ops }
    }
}

#[async_trait::async_trait]
impl super::Step for ExchangeStep {
    fn id(&self) -> StepId {
        StepId::Exchange
    }

    fn assess(&self, cx: &super::StepCx<'_>) -> super::Assessment {
        match cx.record.ual.state {
            UalState::Enabled => super::Assessment::Done,
            UalState::WaitingPropagation => super::Assessment::ToDo(vec![
                "retry Set-AdminAuditLogConfig (Microsoft was still propagating the organization's customization)".into(),
            ]),
            UalState::Unknown | UalState::Failed => super::Assessment::ToDo(vec![
                "hydrate the Exchange organization if it is dehydrated (Enable-OrganizationCustomization)".into(),
                "turn on unified audit logging (Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true) unless already on".into(),
            ]),
        }
    }

    async fn run(
        &self,
        cx: &mut super::StepCx<'_>,
    ) -> Result<super::StepOutcome, crate::wizard::WizardError> {
        let domain = cx.record.primary_domain.clone();
        let kept = cx.record.steps.exchange.clone();
        let ual_before = cx.record.ual.clone();
        let result = async {
            let ops = self.ops.ops_for(cx.record).await?;
            let r = resume(ops.as_ref(), cx.record, &NoProgress).await;
            r.map(|o| (o, ops.signed_in_role()))
        }
        .await;
        // The engine records the step's status; ours would count the attempt twice.
        cx.record.steps.exchange = kept;
        match result {
            Ok((o @ ExchangeOutcome::Enabled { .. }, role)) => {
                Ok(super::StepOutcome::Done(match role {
                    Some(r) => format!(
                        "{} (signed in to Exchange Online as {r}).",
                        o.summary().trim_end_matches('.')
                    ),
                    None => o.summary(),
                }))
            }
            // The run's end names the command that finishes it (once per screen).
            Ok((o, _)) => Ok(super::StepOutcome::Waiting(o.summary())),
            // This machine's PowerShell or module: the tenant is not at fault, the Graph steps
            // go on, and the record says what to run.
            Err(e) if e.is_prerequisite() => {
                cx.record.ual.state = UalState::Failed;
                Err(crate::wizard::WizardError::Step {
                    step: StepId::Exchange,
                    message: match e.fix_command() {
                        Some(c) => format!("{e}: `{c}`"),
                        None => e.to_string(),
                    },
                    hint: Some(e.hint(&domain)),
                    waiting: false,
                    source: Some(Box::new(e)),
                })
            }
            Err(e) => {
                if matches!(e, ExchangeError::Interrupted) {
                    // Stopped by Ctrl-C: the attempt that was under way is not counted.
                    cx.record.ual = ual_before;
                } else if cx.record.ual.state != UalState::WaitingPropagation {
                    cx.record.ual.state = UalState::Failed;
                }
                Err(crate::wizard::WizardError::Step {
                    step: StepId::Exchange,
                    message: "unified audit logging could not be turned on in Exchange Online"
                        .into(),
                    hint: Some(e.hint(&domain)),
                    waiting: false,
                    source: Some(Box::new(e)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cloud::Cloud;
    use crate::microsoft::exchange::OrgConfig;

    /// A tenant as Exchange Online would behave, counting calls.
    #[derive(Default)]
    struct Fake {
        state: Mutex<FakeState>,
    }

    #[derive(Default)]
    struct FakeState {
        dehydrated: bool,
        /// Set calls that fail after hydration.
        propagating: u32,
        ual: bool,
        hydrated_before: bool,
        calls: Vec<&'static str>,
        fail_set_with: Option<fn() -> ExchangeError>,
        /// Enable-OrganizationCustomization answers this error, having hydrated or not.
        enable_error: Option<(fn() -> ExchangeError, bool)>,
    }

    fn dehydration() -> ExchangeError {
        ExchangeError::Dehydrated {
            cmdlet: "Set-AdminAuditLogConfig".into(),
            message: "you first need to run the command: Enable-OrganizationCustomization".into(),
        }
    }

    #[async_trait::async_trait]
    impl ExchangeOps for Fake {
        async fn org_config(&self) -> Result<OrgConfig, ExchangeError> {
            let mut s = self.state.lock().unwrap();
            s.calls.push("org");
            Ok(OrgConfig {
                is_dehydrated: s.dehydrated,
            })
        }
        async fn enable_customization(&self) -> Result<Customization, ExchangeError> {
            let mut s = self.state.lock().unwrap();
            s.calls.push("enable");
            if let Some((e, hydrates)) = s.enable_error {
                if hydrates {
                    s.dehydrated = false;
                }
                return Err(e());
            }
            if s.hydrated_before || !s.dehydrated {
                return Ok(Customization::AlreadyEnabled);
            }
            s.dehydrated = false;
            Ok(Customization::Enabled)
        }
        async fn set_ual(&self) -> Result<(), ExchangeError> {
            let mut s = self.state.lock().unwrap();
            s.calls.push("set");
            if let Some(f) = s.fail_set_with {
                return Err(f());
            }
            if s.dehydrated {
                return Err(dehydration());
            }
            if s.propagating > 0 {
                s.propagating -= 1;
                return Err(dehydration());
            }
            s.ual = true;
            Ok(())
        }
        async fn get_ual(&self) -> Result<bool, ExchangeError> {
            let mut s = self.state.lock().unwrap();
            s.calls.push("get");
            Ok(s.ual)
        }
    }

    fn fake(f: impl FnOnce(&mut FakeState)) -> Fake {
        let fake = Fake::default();
        f(&mut fake.state.lock().unwrap());
        fake
    }

    fn rec() -> TenantRecord {
        TenantRecord::new(
            uuid::Uuid::new_v4(),
            "contoso.onmicrosoft.com",
            "Contoso",
            Cloud::Global,
        )
    }

    fn calls(f: &Fake) -> Vec<&'static str> {
        f.state.lock().unwrap().calls.clone()
    }

    #[tokio::test]
    async fn hydrated_tenant_is_enabled_and_verified() {
        let f = fake(|_| {});
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        assert_eq!(
            out,
            ExchangeOutcome::Enabled {
                already: false,
                hydrated_now: false
            }
        );
        assert_eq!(calls(&f), ["org", "get", "set", "get"]);
        assert_eq!(r.ual.state, UalState::Enabled);
        assert!(r.ual.enabled_at.is_some());
        assert_eq!(r.ual.hydrated_at, None);
        assert_eq!(r.steps.exchange.status, StepStatus::Done);
        assert!(
            out.summary().contains("up to 60 minutes"),
            "{}",
            out.summary()
        );
        assert!(!out.summary().contains("24 hours"));
    }

    #[tokio::test]
    async fn ual_already_on_changes_nothing() {
        let f = fake(|s| {
            s.ual = true;
            s.dehydrated = true;
        });
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        assert_eq!(
            out,
            ExchangeOutcome::Enabled {
                already: true,
                hydrated_now: false
            }
        );
        assert_eq!(calls(&f), ["org", "get"], "never hydrated for nothing");
        assert_eq!(r.ual.state, UalState::Enabled);
    }

    #[tokio::test]
    async fn dehydrated_tenant_waits_then_retry_finishes() {
        let f = fake(|s| {
            s.dehydrated = true;
            s.propagating = 2;
        });
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        assert!(matches!(out, ExchangeOutcome::WaitingPropagation { .. }));
        assert_eq!(calls(&f), ["org", "get", "enable", "set", "get"]);
        assert_eq!(r.ual.state, UalState::WaitingPropagation);
        assert_eq!(r.steps.exchange.status, StepStatus::Waiting);
        let hydrated = r.ual.hydrated_at.expect("hydration recorded");
        assert!(
            out.hint("contoso.onmicrosoft.com")
                .unwrap()
                .contains("hal-onboard ual retry contoso.onmicrosoft.com")
        );

        let again = retry(&f, &mut r, &NoProgress).await.unwrap();
        assert!(!again.is_done());
        assert_eq!(
            r.ual.hydrated_at,
            Some(hydrated),
            "the clock keeps its start"
        );
        let done = retry(&f, &mut r, &NoProgress).await.unwrap();
        assert_eq!(
            done,
            ExchangeOutcome::Enabled {
                already: false,
                hydrated_now: false
            }
        );
        assert_eq!(r.ual.attempts, 3);
        assert_eq!(r.ual.state, UalState::Enabled);
        assert_eq!(r.steps.exchange.status, StepStatus::Done);
    }

    #[tokio::test]
    async fn already_customized_counts_as_hydrated() {
        let f = fake(|s| {
            s.dehydrated = true;
            s.hydrated_before = true;
        });
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        // The fake stays "dehydrated" for Set: Microsoft still propagating someone else's hydration.
        assert!(matches!(out, ExchangeOutcome::WaitingPropagation { .. }));
        assert!(r.ual.hydrated_at.is_some());
    }

    fn server_error() -> ExchangeError {
        ExchangeError::Cmdlet {
            cmdlet: "Enable-OrganizationCustomization".into(),
            message: "Active Directory operation failed".into(),
            category: "NotSpecified".into(),
        }
    }

    #[tokio::test]
    async fn an_enable_error_that_hydrated_is_checked_again_and_waits() {
        let f = fake(|s| {
            s.dehydrated = true;
            s.propagating = 3;
            s.enable_error = Some((server_error, true));
        });
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        assert!(matches!(
            out,
            ExchangeOutcome::WaitingPropagation {
                hydrated_at: Some(_)
            }
        ));
        assert_eq!(calls(&f), ["org", "get", "enable", "org", "set", "get"]);
        assert_eq!(r.ual.state, UalState::WaitingPropagation);
        assert_eq!(r.steps.exchange.status, StepStatus::Waiting);
        assert!(r.ual.hydrated_at.is_some(), "hydration was seen");
    }

    #[tokio::test]
    async fn an_enable_error_with_the_org_still_dehydrated_waits_without_hydrated_at() {
        let f = fake(|s| {
            s.dehydrated = true;
            s.enable_error = Some((server_error, false));
        });
        let mut r = rec();
        let out = run(&f, &mut r, &NoProgress).await.unwrap();
        assert_eq!(
            out,
            ExchangeOutcome::WaitingPropagation { hydrated_at: None }
        );
        assert_eq!(r.ual.state, UalState::WaitingPropagation);
        assert_eq!(r.steps.exchange.status, StepStatus::Waiting);
        assert_eq!(r.ual.hydrated_at, None, "hydration was never seen");
        assert!(
            r.steps
                .exchange
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("still reads as dehydrated"))
        );
        // The next retry runs the whole step again (hydration first), not only Set.
        {
            let mut s = f.state.lock().unwrap();
            s.enable_error = None;
            s.calls.clear();
        }
        let done = resume(&f, &mut r, &NoProgress).await.unwrap();
        assert!(done.is_done());
        assert_eq!(calls(&f), ["org", "get", "enable", "set", "get"]);
        assert!(r.ual.hydrated_at.is_some());
    }

    #[tokio::test]
    async fn an_enable_refused_for_the_role_fails() {
        fn role() -> ExchangeError {
            ExchangeError::MissingRole {
                cmdlet: "Enable-OrganizationCustomization".into(),
                message: "The term 'Enable-OrganizationCustomization' is not recognized".into(),
            }
        }
        let f = fake(|s| {
            s.dehydrated = true;
            s.enable_error = Some((role, false));
        });
        let mut r = rec();
        let e = run(&f, &mut r, &NoProgress).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::MissingRole);
        assert!(
            e.to_string()
                .contains("Exchange Administrator or Global Administrator")
        );
        assert_eq!(r.ual.hydrated_at, None);
        assert_eq!(calls(&f), ["org", "get", "enable"]);
    }

    #[tokio::test]
    async fn other_errors_fail_the_step_in_the_wizard_but_not_a_waiting_retry() {
        fn role() -> ExchangeError {
            ExchangeError::MissingRole {
                cmdlet: "Set-AdminAuditLogConfig".into(),
                message: "not recognized".into(),
            }
        }
        let f = fake(|s| s.fail_set_with = Some(role));
        let mut r = rec();
        let e = run(&f, &mut r, &NoProgress).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::MissingRole);
        assert_eq!(r.ual.state, UalState::Failed);
        assert_eq!(r.steps.exchange.status, StepStatus::Failed);

        let mut waiting = rec();
        waiting.ual.state = UalState::WaitingPropagation;
        waiting.ual.hydrated_at = Some(OffsetDateTime::now_utc());
        waiting.steps.exchange.status = StepStatus::Waiting;
        retry(&f, &mut waiting, &NoProgress).await.unwrap_err();
        assert_eq!(waiting.ual.state, UalState::WaitingPropagation);
        assert_eq!(waiting.steps.exchange.status, StepStatus::Waiting);
        assert!(waiting.steps.exchange.last_error.is_some());
    }
}
