//! Step 6: send the recorded credentials to the MSP portal.
//!
//! The secret is read from memory (this run made it) or the keyring (an earlier run did), sent
//! once, and deleted from the keyring only after the portal accepted it. Any failure leaves it
//! where it was, so `hal-onboard portal submit` can resend.

use time::OffsetDateTime;

use crate::portal::{PortalApi, PortalError, StatusUpdate, Submission, SubmitOutcome};
use crate::secrets::{SecretError, SecretStore, account};
use crate::store::{PortalState, PortalStatus, StepId, StepStatus, TenantRecord, UalState};

#[derive(Debug, thiserror::Error)]
pub enum PortalStepError {
    #[error("the tenant is not ready for the portal: {0}")]
    NotReady(&'static str),
    #[error("the client secret for this tenant is no longer held on this machine")]
    SecretGone,
    #[error("cannot read the client secret from the keyring")]
    Keyring(#[source] SecretError),
    #[error(transparent)]
    Portal(#[from] PortalError),
}

/// What happened, for the command to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalOutcome {
    pub outcome: SubmitOutcome,
    /// False when the keyring could not forget the secret (it is then still there).
    pub secret_forgotten: bool,
}

/// Deletes the client secret from the secret store. Call it after the record that says the
/// portal has it was saved. False when the store could not delete it.
pub fn forget_secret(secrets: &dyn SecretStore, tenant: uuid::Uuid) -> bool {
    secrets.delete(&account::client_secret(tenant)).is_ok()
}

/// The status fields the portal should hold for this record (`ualStatus`, `entraLicense`).
pub fn status_of(rec: &TenantRecord) -> PortalStatus {
    PortalStatus {
        ual_status: match rec.ual.state {
            UalState::Enabled => "enabled",
            _ => "waiting",
        }
        .to_string(),
        entra_license: rec
            .license
            .map(|l| l.as_str())
            .unwrap_or("none")
            .to_string(),
    }
}

/// The status update the portal needs: it holds this tenant's credentials but was last told
/// another status (`None`: nothing to send, or nothing known of what it was told).
pub fn status_update(rec: &TenantRecord) -> Option<StatusUpdate> {
    if rec.portal.state != PortalState::Submitted {
        return None;
    }
    let now = status_of(rec);
    if rec.portal.told.as_ref() == Some(&now) || rec.portal.told.is_none() {
        return None;
    }
    Some(StatusUpdate {
        tenant_id: rec.tenant_id.to_string(),
        ual_verified_at: (now.ual_status == "enabled")
            .then_some(rec.ual.enabled_at)
            .flatten(),
        ual_status: now.ual_status,
        entra_license: now.entra_license,
    })
}

/// Sends the status update the portal needs, if any (no secret), and records it on `rec`
/// (the caller persists it). `Ok(false)`: nothing to send.
pub async fn send_status(
    rec: &mut TenantRecord,
    portal: &dyn PortalApi,
) -> Result<bool, PortalError> {
    let Some(u) = status_update(rec) else {
        return Ok(false);
    };
    portal.update_status(&u).await?;
    rec.portal.told = Some(PortalStatus {
        ual_status: u.ual_status,
        entra_license: u.entra_license,
    });
    Ok(true)
}

/// Builds the submission from the record and the secret value.
pub fn submission(
    rec: &TenantRecord,
    secret: &crate::secrets::SecretText,
) -> Result<Submission, PortalStepError> {
    let app = rec
        .app
        .as_ref()
        .ok_or(PortalStepError::NotReady("no app registration recorded"))?;
    let meta = rec
        .secret
        .as_ref()
        .ok_or(PortalStepError::NotReady("no client secret recorded"))?;
    if !rec.step(StepId::Verify).is_done() {
        return Err(PortalStepError::NotReady(
            "the credentials have not been verified",
        ));
    }
    Ok(Submission {
        tenant_id: rec.tenant_id.to_string(),
        tenant_domain: rec.primary_domain.clone(),
        tenant_name: rec.display_name.clone(),
        cloud: rec.cloud.as_str().to_string(),
        client_id: app.app_id.clone(),
        client_secret: secret.clone(),
        secret_key_id: meta.key_id.clone(),
        secret_expires_at: meta.expires_at,
        ual_status: match rec.ual.state {
            UalState::Enabled => "enabled",
            _ => "waiting",
        }
        .to_string(),
        entra_license: rec
            .license
            .map(|l| l.as_str())
            .unwrap_or("none")
            .to_string(),
    })
}

/// Sends the tenant to the portal and records the result on `rec` (the caller persists it).
///
/// `in_memory` is the secret when this run created it and there is no keyring.
pub async fn run(
    rec: &mut TenantRecord,
    secrets: &dyn SecretStore,
    portal: &dyn PortalApi,
    in_memory: Option<&str>,
) -> Result<PortalOutcome, PortalStepError> {
    let acct = account::client_secret(rec.tenant_id);
    let secret = match in_memory {
        Some(s) => crate::secrets::SecretText::new(s),
        None => secrets
            .get(&acct)
            .map_err(PortalStepError::Keyring)?
            .ok_or(PortalStepError::SecretGone)?,
    };
    let sub = submission(rec, &secret)?;
    match portal.submit(&sub).await {
        Ok(outcome) => {
            rec.portal.state = PortalState::Submitted;
            rec.portal.submitted_at = Some(OffsetDateTime::now_utc());
            rec.portal.secret_key_id = Some(sub.secret_key_id.clone());
            rec.portal.told = Some(PortalStatus {
                ual_status: sub.ual_status.clone(),
                entra_license: sub.entra_license.clone(),
            });
            rec.step_mut(StepId::Portal).record(StepStatus::Done, None);
            // The secret is forgotten only once this record is saved (`forget_secret`): a crash
            // in between must not leave a "not sent" record and no secret.
            Ok(PortalOutcome {
                outcome,
                secret_forgotten: false,
            })
        }
        Err(e) => {
            rec.portal.state = PortalState::Failed;
            rec.step_mut(StepId::Portal)
                .record(StepStatus::Failed, Some(e.to_string()));
            Err(e.into())
        }
    }
}

/// Step 6 as the engine runs it.
pub struct PortalStep {
    api: std::sync::Arc<dyn PortalApi>,
    /// Where the credentials go, for the plan.
    url: String,
}

impl PortalStep {
    pub fn new(api: std::sync::Arc<dyn PortalApi>, url: &url::Url) -> PortalStep {
        PortalStep {
            api,
            url: url.to_string(),
        }
    }
}

/// The portal holds this tenant's current secret.
pub fn is_current(rec: &TenantRecord) -> bool {
    rec.portal.state == PortalState::Submitted
        && rec.secret.as_ref().map(|s| &s.key_id) == rec.portal.secret_key_id.as_ref()
}

#[async_trait::async_trait]
impl super::Step for PortalStep {
    fn id(&self) -> StepId {
        StepId::Portal
    }

    fn portal_api(&self) -> Option<std::sync::Arc<dyn PortalApi>> {
        Some(self.api.clone())
    }

    fn assess(&self, cx: &super::StepCx<'_>) -> super::Assessment {
        if is_current(cx.record) {
            super::Assessment::Done
        } else {
            super::Assessment::ToDo(vec![format!(
                "send the tenant ID, client ID, secret and its expiry to the MSP portal at {} (nothing changes in the tenant)",
                self.url
            )])
        }
    }

    async fn run(
        &self,
        cx: &mut super::StepCx<'_>,
    ) -> Result<super::StepOutcome, crate::wizard::WizardError> {
        let tenant = cx.record.primary_domain.clone();
        let secrets = cx.secrets.clone();
        match run(cx.record, secrets.as_ref(), self.api.as_ref(), None).await {
            Ok(out) => {
                let mut summary = match out.outcome {
                    SubmitOutcome::Created => "the portal registered the tenant".to_string(),
                    SubmitOutcome::Updated => {
                        "the portal already knew the tenant and took the new credentials"
                            .to_string()
                    }
                };
                let _ = out;
                summary.push_str("; this machine forgets the secret once this is recorded");
                Ok(super::StepOutcome::Done(summary))
            }
            Err(e) => Err(step_error(e, &tenant)),
        }
    }
}

/// A portal failure as the engine reports it: the message, and the command that resends.
pub fn step_error(e: PortalStepError, tenant: &str) -> crate::wizard::WizardError {
    let hint = match &e {
        PortalStepError::Portal(PortalError::Unauthorized { .. }) => format!(
            "Run `hal-onboard portal login` with a valid API token, then `hal-onboard portal submit {tenant}`."
        ),
        PortalStepError::Portal(PortalError::NotAPortal { .. }) => format!(
            "Nothing was forgotten or removed: the secret is kept on this machine. Check the portal URL (`hal-onboard portal status`), then run `hal-onboard portal submit {tenant}`."
        ),
        PortalStepError::Portal(p) if p.is_transient() => format!(
            "The secret is kept on this machine. Run `hal-onboard portal submit {tenant}` once the portal is back."
        ),
        PortalStepError::Portal(_) => {
            format!("Fix what the portal says, then run `hal-onboard portal submit {tenant}`.")
        }
        PortalStepError::SecretGone => format!(
            "Run `hal-onboard tenant add {tenant}` again: it makes a new secret and sends it."
        ),
        PortalStepError::NotReady(_) => format!("Run `hal-onboard tenant add {tenant}` again."),
        PortalStepError::Keyring(_) => "Unlock the OS keyring, then run the command again.".into(),
    };
    crate::wizard::WizardError::Step {
        step: StepId::Portal,
        message: format!("sending {tenant} to the MSP portal failed: {e}"),
        hint: Some(hint),
        waiting: false,
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::secrets::MemoryStore;
    use crate::store::{AppRecord, SecretRecord};
    use std::sync::Mutex;

    struct FakePortal {
        answers: Mutex<Vec<Result<SubmitOutcome, PortalError>>>,
        got: Mutex<Vec<Submission>>,
    }

    #[async_trait::async_trait]
    impl PortalApi for FakePortal {
        async fn check(&self) -> Result<(), PortalError> {
            Ok(())
        }
        async fn submit(&self, s: &Submission) -> Result<SubmitOutcome, PortalError> {
            self.got.lock().unwrap().push(s.clone());
            self.answers.lock().unwrap().remove(0)
        }
    }

    fn ready_record() -> TenantRecord {
        let mut r = TenantRecord::new(
            uuid::Uuid::new_v4(),
            "contoso.onmicrosoft.com",
            "Contoso",
            Cloud::Global,
        );
        r.app = Some(AppRecord {
            object_id: "obj".into(),
            app_id: uuid::Uuid::new_v4().to_string(),
            display_name: "hal-siem-log-collector".into(),
            service_principal_id: Some("sp".into()),
        });
        let now = OffsetDateTime::now_utc();
        r.secret = Some(SecretRecord {
            key_id: uuid::Uuid::new_v4().to_string(),
            hint: "abc".into(),
            created_at: now,
            expires_at: now + time::Duration::days(730),
        });
        r.step_mut(StepId::Verify).record(StepStatus::Done, None);
        r
    }

    #[tokio::test]
    async fn accepted_submission_forgets_the_secret() {
        let mut rec = ready_record();
        let secrets = MemoryStore::default();
        let acct = account::client_secret(rec.tenant_id);
        secrets.set(&acct, "the-secret-value-123").unwrap();
        let portal = FakePortal {
            answers: Mutex::new(vec![Ok(SubmitOutcome::Created)]),
            got: Mutex::new(vec![]),
        };
        let out = run(&mut rec, &secrets, &portal, None).await.unwrap();
        assert_eq!(out.outcome, SubmitOutcome::Created);
        assert!(!out.secret_forgotten, "kept until the record is saved");
        assert!(secrets.get(&acct).unwrap().is_some());
        assert!(forget_secret(&secrets, rec.tenant_id));
        assert_eq!(secrets.get(&acct).unwrap(), None);
        assert_eq!(rec.portal.state, PortalState::Submitted);
        assert!(rec.step(StepId::Portal).is_done());
        let got = portal.got.lock().unwrap();
        assert_eq!(got[0].client_secret, "the-secret-value-123");
        assert_eq!(got[0].ual_status, "waiting");
        assert_eq!(got[0].entra_license, "none");
    }

    #[tokio::test]
    async fn failed_submission_keeps_the_secret() {
        let mut rec = ready_record();
        let secrets = MemoryStore::default();
        let acct = account::client_secret(rec.tenant_id);
        secrets.set(&acct, "the-secret-value-123").unwrap();
        let portal = FakePortal {
            answers: Mutex::new(vec![Err(PortalError::Unavailable {
                status: 503,
                attempts: 4,
            })]),
            got: Mutex::new(vec![]),
        };
        let err = run(&mut rec, &secrets, &portal, None).await.unwrap_err();
        assert!(matches!(err, PortalStepError::Portal(ref e) if e.is_transient()));
        assert_eq!(
            secrets.get(&acct).unwrap().as_ref().map(|s| s.expose()),
            Some("the-secret-value-123")
        );
        assert_eq!(rec.step(StepId::Portal).status, StepStatus::Failed);
        assert!(
            !rec.step(StepId::Portal)
                .last_error
                .as_ref()
                .unwrap()
                .contains("the-secret")
        );
    }

    #[tokio::test]
    async fn unverified_tenant_is_not_sent() {
        let mut rec = ready_record();
        rec.step_mut(StepId::Verify).status = StepStatus::Failed;
        let secrets = MemoryStore::default();
        let portal = FakePortal {
            answers: Mutex::new(vec![]),
            got: Mutex::new(vec![]),
        };
        let err = run(&mut rec, &secrets, &portal, Some("x-secret-value-123"))
            .await
            .unwrap_err();
        assert!(matches!(err, PortalStepError::NotReady(_)));
        assert!(portal.got.lock().unwrap().is_empty());
    }
}
