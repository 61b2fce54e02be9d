//! Step 5: prove the credentials work before anyone relies on them.
//!
//! Client-credentials tokens for Microsoft Graph and Office 365 Management, retried (bounded,
//! with a visible attempt count) through the minutes a new secret or new grants take to
//! replicate; the Graph token's `roles` must hold every granted Graph permission.

use azure_core::credentials::Secret;

use super::{Assessment, Step, StepCx, StepOutcome};
use crate::secrets::account;
use crate::store::StepId;
use crate::wizard::permissions::{Resource, required_for};
use crate::wizard::verify::VerifyError;
use crate::wizard::{Event, WizardError};

pub struct VerifyStep;

fn missing_roles(roles: &[String], r: Resource) -> Vec<&'static str> {
    required_for(r)
        .filter(|v| !roles.iter().any(|x| x == v))
        .collect()
}

#[async_trait::async_trait]
impl Step for VerifyStep {
    fn id(&self) -> StepId {
        StepId::Verify
    }

    fn assess(&self, cx: &StepCx<'_>) -> Assessment {
        if cx.earlier_changed || !cx.record.step(StepId::Verify).is_done() {
            Assessment::ToDo(vec![
                "sign in as the app to prove its credentials work (reads only)".into(),
            ])
        } else {
            Assessment::Done
        }
    }

    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
        let tenant = cx.record.tenant_id;
        let secret = cx
            .secret_op(move |s| s.get(&account::client_secret(tenant)))
            .await?
            .ok_or(WizardError::SecretLost)?;
        let secret = Secret::new(secret);
        let app_id = cx
            .record
            .app
            .as_ref()
            .map(|a| a.app_id.clone())
            .expect("the app step ran before verification");
        let tid = tenant.to_string();
        let graph_scope = format!(
            "{}/.default",
            cx.settings.graph_resource.trim_end_matches('/')
        );
        let manage_scope = format!(
            "{}/.default",
            cx.settings.manage_resource.trim_end_matches('/')
        );
        let of = cx.settings.verify_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (g, m) = futures::join!(
                cx.verifier.app_token(&tid, &app_id, &secret, &graph_scope),
                cx.verifier.app_token(&tid, &app_id, &secret, &manage_scope),
            );
            let outcome = match (g, m) {
                (Ok(g), Ok(m)) => {
                    let mut missing = missing_roles(&g.roles, Resource::Graph);
                    if !m.roles.is_empty() {
                        missing.extend(missing_roles(&m.roles, Resource::O365Management));
                    }
                    if missing.is_empty() {
                        Ok(g.roles.len())
                    } else {
                        Err(VerifyError::NotYet(format!(
                            "the token does not carry {} yet",
                            missing.join(", ")
                        )))
                    }
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match outcome {
                Ok(n) => {
                    return Ok(StepOutcome::Done(format!(
                        "the app signs in to Microsoft Graph and Office 365 Management; the Graph token carries {n} roles{}",
                        if attempt > 1 {
                            format!(" (after {attempt} attempts)")
                        } else {
                            String::new()
                        }
                    )));
                }
                Err(VerifyError::NotYet(why)) if attempt < of => {
                    cx.progress.event(Event::Waiting {
                        what: format!("Microsoft to accept the new credentials ({why})"),
                        attempt,
                        of,
                        next_in: cx.settings.verify_wait,
                    });
                    cx.verifier.retrying();
                    tokio::time::sleep(cx.settings.verify_wait).await;
                }
                Err(e) => {
                    return Err(WizardError::NotVerified {
                        attempts: attempt,
                        source: e,
                    });
                }
            }
        }
    }
}
