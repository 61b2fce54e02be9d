//! Rotating the client secret of an onboarded tenant, without a moment where Hal has no
//! working secret.
//!
//! Order: add a new secret (the secret step: same lifetime policy handling, value straight to
//! the secret store), prove it obtains tokens (the verify step, with its retries through
//! replication), hand it to the MSP portal, and only once the portal has accepted it remove
//! the old one. If the portal fails, the old secret stays on the app and Hal keeps working
//! with it.
//!
//! No extra state is recorded for a rotation in progress. The record already says it: the
//! recorded secret (`record.secret`) is newer than the one the portal holds
//! (`record.portal.secret_key_id`), and an older secret of ours is still on the app. When this
//! machine still holds the newer secret's value, a re-run *resumes* (verify if needed, send,
//! remove the old one) instead of adding a third secret. When the value is gone (no OS keyring,
//! so it lived in memory for the failed run only), the newer secret is unusable: the secret
//! step removes it and adds a fresh one, while the portal's secret is never touched until the
//! portal has a replacement.

use time::OffsetDateTime;

use super::steps::portal::{self as portal_step, PortalOutcome, PortalStepError};
use super::steps::{secret::SecretStep, verify::VerifyStep};
use super::{Identified, SECRET_DESCRIPTION, Wizard, WizardError};
use crate::microsoft::graph::model::{Application, PasswordCredential};
use crate::portal::PortalApi;
use crate::store::{StepId, TenantRecord};

/// One secret on the app, as the plan shows it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub key_id: String,
    pub hint: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl SecretRef {
    fn of(p: &PasswordCredential) -> Option<SecretRef> {
        Some(SecretRef {
            key_id: p.key_id.clone()?,
            hint: p.hint.clone().unwrap_or_default(),
            expires_at: p.end_date_time,
        })
    }
}

/// What a rotation will do, worked out before anything changes.
#[derive(Debug, Clone)]
pub struct RotationPlan {
    /// A newer secret an earlier, interrupted rotation added and this machine still holds:
    /// it is sent instead of adding another.
    pub resume: Option<SecretRef>,
    /// Older secrets of ours that the portal holds (Hal uses them): removed only after the
    /// portal has accepted the new one.
    pub old: Vec<SecretRef>,
    /// Secrets of ours that neither the portal nor this machine holds: removed with the old
    /// ones once the portal has accepted the new one (never before, never with `--no-portal`).
    pub unusable: Vec<SecretRef>,
    pub months: u8,
    /// The new secret goes to the portal (false with `--no-portal`).
    pub send: bool,
}

impl RotationPlan {
    /// The changes, in words, for the technician to approve.
    pub fn changes(&self) -> Vec<String> {
        let mut v = Vec::new();
        let olds = hints(&self.old);
        match &self.resume {
            Some(n) => v.push(format!(
                "use the new client secret (hint {}…) that an earlier `secret rotate` added and this machine still holds",
                n.hint
            )),
            None => v.push(format!(
                "add a new client secret {SECRET_DESCRIPTION:?} valid {} months (its value goes to this machine's keyring, never the screen)",
                self.months
            )),
        }
        if !self.unusable.is_empty() {
            if self.send {
                v.push(format!(
                    "remove {} once the portal has the new one: the portal does not hold it",
                    describe(&self.unusable)
                ));
            } else {
                v.push(format!(
                    "keep {}: nothing is removed until the portal has accepted a newer secret (--no-portal)",
                    describe(&self.unusable)
                ));
            }
        }
        if self.send {
            v.push("send the new secret to the MSP portal".into());
            if !self.old.is_empty() {
                v.push(format!(
                    "remove the old secret {olds} after the portal has the new one"
                ));
            }
        } else if !self.old.is_empty() {
            v.push(format!(
                "keep the old secret {olds}: Hal keeps using it until the portal has the new one (--no-portal)"
            ));
        }
        v
    }
}

fn hints(v: &[SecretRef]) -> String {
    v.iter()
        .map(|s| format!("(hint {}…)", s.hint))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(v: &[SecretRef]) -> String {
    if v.len() == 1 {
        format!("the secret {}", hints(v))
    } else {
        format!("{} secrets {}", v.len(), hints(v))
    }
}

/// Is `p` one of ours: named like ours, or the recorded or portal's secret?
fn ours(p: &PasswordCredential, record: &TenantRecord) -> bool {
    let Some(k) = p.key_id.as_deref() else {
        return false;
    };
    p.display_name.as_deref() == Some(SECRET_DESCRIPTION)
        || record
            .secret
            .as_ref()
            .is_some_and(|s| s.key_id.eq_ignore_ascii_case(k))
        || record
            .portal
            .secret_key_id
            .as_deref()
            .is_some_and(|pk| pk.eq_ignore_ascii_case(k))
}

/// Works out the rotation from the record, the app as it is now, and whether this machine
/// holds the recorded secret's value.
pub fn plan(
    record: &TenantRecord,
    app: &Application,
    secret_present: bool,
    months: u8,
    send: bool,
) -> RotationPlan {
    let portal_key = record.portal.secret_key_id.as_deref();
    let mine: Vec<&PasswordCredential> = app
        .password_credentials
        .iter()
        .filter(|p| ours(p, record))
        .collect();
    let is = |p: &PasswordCredential, k: &str| {
        p.key_id
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(k))
    };
    // Resume: the recorded secret is newer than the portal's, still on the app, its value
    // here, and an older one of ours is still there.
    let resume = record.secret.as_ref().and_then(|s| {
        let on_app = mine.iter().find(|p| is(p, &s.key_id))?;
        let newer = portal_key.is_none_or(|pk| !pk.eq_ignore_ascii_case(&s.key_id));
        let others = mine.iter().any(|p| !is(p, &s.key_id));
        (newer && others && secret_present && send)
            .then(|| SecretRef::of(on_app))
            .flatten()
    });
    let mut old = Vec::new();
    let mut unusable = Vec::new();
    for p in mine {
        let Some(r) = SecretRef::of(p) else { continue };
        if resume.as_ref().is_some_and(|n| n.key_id == r.key_id) {
            continue;
        }
        if portal_key.is_some_and(|pk| pk.eq_ignore_ascii_case(&r.key_id)) {
            old.push(r);
        } else if resume.is_some() {
            // Resuming adds nothing, so nothing else is removed early either: these go with
            // the old one once the portal has the new secret.
            old.push(r);
        } else {
            unusable.push(r);
        }
    }
    RotationPlan {
        resume,
        old,
        unusable,
        months,
        send,
    }
}

/// How the portal part ended.
#[derive(Debug)]
pub enum PortalResult {
    /// Accepted: the old secret was then removed.
    Accepted(PortalOutcome),
    /// `--no-portal`: not sent; the old secret was kept.
    NotSent,
    /// The portal failed: the new secret was kept on this machine, the old one on the app.
    Failed(PortalStepError),
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub record: TenantRecord,
    /// The new secret (now `record.secret`).
    pub new: SecretRef,
    pub resumed: bool,
    pub portal: PortalResult,
    /// Secrets removed from the app after the portal accepted the new one.
    pub removed: Vec<SecretRef>,
    /// Secrets left on the app besides the new one.
    pub kept: Vec<SecretRef>,
}

impl<'a> Wizard<'a> {
    /// The tenant's record and our app, for a command that changes an onboarded tenant.
    pub fn onboarded(id: &Identified) -> Result<(TenantRecord, Application), WizardError> {
        let not_onboarded = |what: &str| WizardError::Step {
            step: StepId::App,
            message: format!("{} {what}", id.default_domain),
            hint: Some(format!(
                "Run `hal-onboard tenant add {}` first.",
                id.default_domain
            )),
            waiting: false,
            source: None,
        };
        let record = id
            .record
            .clone()
            .ok_or_else(|| not_onboarded("has not been onboarded from this machine"))?;
        if record.app.is_none() || record.secret.is_none() {
            return Err(not_onboarded("has no app registration and secret recorded"));
        }
        let app = id
            .survey
            .app_by_id
            .clone()
            .ok_or_else(|| not_onboarded("no longer has hal-onboard's app registration"))?;
        Ok((record, app))
    }

    /// Whether this machine holds the recorded secret's value.
    /// Runs an approved plan. Every change is recorded as it happens; a portal failure is
    /// not an error here (it is in the result), so the caller can say what was kept.
    pub async fn rotate(
        &self,
        id: Identified,
        plan: &RotationPlan,
        portal: Option<&dyn PortalApi>,
    ) -> Result<Rotation, WizardError> {
        let (mut record, _) = Self::onboarded(&id)?;
        let mut survey = id.survey.clone();
        let mut secret_present = self.secret_present(record.tenant_id).await?;
        let previous_portal_key = record.portal.secret_key_id.clone();
        record.updated_at = OffsetDateTime::now_utc();

        // The new secret: made now, or the one an interrupted rotation made.
        let mut verify_done = false;
        if plan.resume.is_none() {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, true);
            let r = self.run_one(&SecretStep, &mut cx).await;
            secret_present = cx.secret_present;
            self.persist(&record)?;
            r?;
        } else {
            verify_done = record.step(StepId::Verify).is_done();
        }

        if !verify_done {
            let mut cx = self.cx(&mut record, &mut survey, secret_present, true);
            let r = self.run_one(&VerifyStep, &mut cx).await;
            self.persist(&record)?;
            r?;
        }
        let new_rec = record.secret.clone().expect("the secret step recorded it");
        let new = SecretRef {
            key_id: new_rec.key_id.clone(),
            hint: new_rec.hint.clone(),
            expires_at: Some(new_rec.expires_at),
        };
        let app = survey.app_by_id.clone().expect("onboarded");
        let others: Vec<SecretRef> = app
            .password_credentials
            .iter()
            .filter(|p| {
                ours(p, &record)
                    || previous_portal_key
                        .as_deref()
                        .is_some_and(|k| p.key_id.as_deref() == Some(k))
            })
            .filter_map(SecretRef::of)
            .filter(|s| !s.key_id.eq_ignore_ascii_case(&new.key_id))
            .collect();

        let Some(portal) = portal else {
            return Ok(Rotation {
                record,
                new,
                resumed: plan.resume.is_some(),
                portal: PortalResult::NotSent,
                removed: Vec::new(),
                kept: others,
            });
        };
        let sent = portal_step::run(&mut record, self.secrets.as_ref(), portal, None).await;
        self.persist(&record)?;
        let outcome = match sent {
            Ok(mut o) => {
                o.secret_forgotten =
                    portal_step::forget_secret(self.secrets.as_ref(), record.tenant_id);
                o
            }
            Err(e) => {
                return Ok(Rotation {
                    record,
                    new,
                    resumed: plan.resume.is_some(),
                    portal: PortalResult::Failed(e),
                    removed: Vec::new(),
                    kept: others,
                });
            }
        };

        // The portal has the new secret: the old ones can go.
        let mut removed = Vec::new();
        for s in others {
            if let Err(e) = self.dir.remove_password(&app.id, &s.key_id).await {
                // Hal works with the new secret; the old one just lingers until removed.
                return Err(WizardError::Step {
                    step: StepId::Secret,
                    message: format!(
                        "the portal has the new client secret (hint {}…), but the old one (hint {}…) could not be removed from the app",
                        new.hint, s.hint
                    ),
                    hint: Some(format!(
                        "Remove the old secret in the Entra admin center (App registrations → {} → Certificates & secrets), or run `hal-onboard secret rotate {}` again later (a full rotation, which removes it too).",
                        app.display_name.as_deref().unwrap_or("the app"),
                        record.primary_domain
                    )),
                    waiting: false,
                    source: Some(Box::new(e)),
                });
            }
            if let Some(a) = survey.app_by_id.as_mut() {
                a.password_credentials
                    .retain(|p| p.key_id.as_deref() != Some(s.key_id.as_str()));
            }
            removed.push(s);
        }
        record.updated_at = OffsetDateTime::now_utc();
        self.persist(&record)?;
        Ok(Rotation {
            record,
            new,
            resumed: plan.resume.is_some(),
            portal: PortalResult::Accepted(outcome),
            removed,
            kept: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::store::{AppRecord, SecretRecord};

    fn cred(k: &str, name: &str) -> PasswordCredential {
        PasswordCredential {
            key_id: Some(k.into()),
            display_name: Some(name.into()),
            hint: Some(format!("{k}~")),
            end_date_time: None,
            start_date_time: None,
            secret_text: None,
        }
    }

    fn setup(
        app_keys: &[&str],
        recorded: &str,
        portal: Option<&str>,
    ) -> (TenantRecord, Application) {
        let mut r = TenantRecord::new(uuid::Uuid::from_u128(1), "t.example", "T", Cloud::Global);
        r.app = Some(AppRecord {
            object_id: "obj".into(),
            app_id: "app".into(),
            display_name: "hal-siem-log-collector".into(),
            service_principal_id: Some("sp".into()),
        });
        let now = OffsetDateTime::now_utc();
        r.secret = Some(SecretRecord {
            key_id: recorded.into(),
            hint: "h".into(),
            created_at: now,
            expires_at: now,
        });
        r.portal.secret_key_id = portal.map(str::to_string);
        let app = Application {
            id: "obj".into(),
            app_id: "app".into(),
            display_name: None,
            tags: vec![],
            notes: None,
            sign_in_audience: None,
            required_resource_access: vec![],
            password_credentials: app_keys.iter().map(|k| cred(k, "hal")).collect(),
            key_credentials: vec![],
        };
        (r, app)
    }

    #[test]
    fn a_fresh_rotation_removes_the_portals_secret_only_after() {
        let (r, app) = setup(&["a"], "a", Some("a"));
        let p = plan(&r, &app, false, 24, true);
        assert!(p.resume.is_none());
        assert_eq!(p.old.len(), 1);
        assert!(p.unusable.is_empty());
        assert!(p.changes().iter().any(|c| c.contains("after the portal")));
    }

    #[test]
    fn a_pending_secret_held_here_is_resumed() {
        let (r, app) = setup(&["a", "b"], "b", Some("a"));
        let p = plan(&r, &app, true, 24, true);
        assert_eq!(p.resume.as_ref().unwrap().key_id, "b");
        assert_eq!(p.old.len(), 1);
        assert_eq!(p.old[0].key_id, "a");
    }

    #[test]
    fn a_pending_secret_whose_value_is_gone_is_replaced_and_the_portals_kept() {
        let (r, app) = setup(&["a", "b"], "b", Some("a"));
        let p = plan(&r, &app, false, 24, true);
        assert!(p.resume.is_none());
        assert_eq!(p.old[0].key_id, "a");
        assert_eq!(p.unusable[0].key_id, "b");
    }

    #[test]
    fn without_the_portal_the_old_secret_is_kept() {
        let (r, app) = setup(&["a"], "a", Some("a"));
        let p = plan(&r, &app, false, 12, false);
        assert!(
            p.changes()
                .iter()
                .any(|c| c.contains("keep the old secret"))
        );
    }
}
