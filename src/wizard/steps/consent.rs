//! Step 4: admin consent, as one app role assignment per permission on our service principal.
//!
//! Only missing ones are granted (one `$batch`), "already exists" counts as granted, and the
//! step is done when Graph has confirmed all 15. The independent read-back of the principal's
//! assignments (the guide's green checkmarks) runs in the verify step, in the same round trip
//! as its token requests.

use super::{Assessment, Step, StepCx, StepOutcome};
use crate::store::StepId;
use crate::wizard::WizardError;
use crate::wizard::permissions::{self, grant, missing_grants};

pub struct ConsentStep;

#[async_trait::async_trait]
impl Step for ConsentStep {
    fn id(&self) -> StepId {
        StepId::Consent
    }

    fn assess(&self, cx: &StepCx<'_>) -> Assessment {
        let all = || {
            Assessment::ToDo(vec![
                "grant admin consent for the 15 application permissions (3 Office 365 Management APIs, 12 Microsoft Graph)".into(),
            ])
        };
        let Ok(perms) =
            permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())
        else {
            return all();
        };
        let (Some(_), Some(have)) = (&cx.survey.our_sp, &cx.survey.assignments) else {
            return all();
        };
        let missing = missing_grants(&perms, have);
        if missing.is_empty() {
            Assessment::Done
        } else {
            Assessment::ToDo(vec![format!(
                "grant admin consent for {} permission(s): {}",
                missing.len(),
                missing
                    .iter()
                    .map(|p| p.value)
                    .collect::<Vec<_>>()
                    .join(", ")
            )])
        }
    }

    fn record_found(&self, cx: &mut StepCx<'_>) {
        if let Ok(perms) =
            permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())
        {
            cx.record.granted_permissions = perms.iter().map(|p| p.key()).collect();
        }
    }

    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
        let perms = permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())?;
        let sp = cx
            .survey
            .our_sp
            .clone()
            .expect("the app step made the service principal");
        let have = cx.survey.assignments.clone().unwrap_or_default();
        let missing: Vec<_> = missing_grants(&perms, &have)
            .into_iter()
            .map(grant)
            .collect();
        let granted_now = missing.len();
        let mut all = have;
        if !missing.is_empty() {
            all.extend(
                cx.dir
                    .grant_app_roles(&sp.id, &missing)
                    .await
                    .map_err(WizardError::graph(StepId::Consent))?,
            );
        }
        let still: Vec<String> = missing_grants(&perms, &all)
            .into_iter()
            .map(|p| p.key())
            .collect();
        cx.survey.assignments = Some(all);
        if !still.is_empty() {
            return Err(WizardError::ConsentIncomplete { missing: still });
        }
        cx.record.granted_permissions = perms.iter().map(|p| p.key()).collect();
        Ok(StepOutcome::Done(format!(
            "admin consent confirmed for all {} application permissions ({granted_now} granted now)",
            perms.len()
        )))
    }
}
