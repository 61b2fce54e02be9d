//! Step 5: prove the credentials work before anyone relies on them.
//!
//! Client-credentials tokens for Microsoft Graph and Office 365 Management, retried (bounded,
//! with a visible attempt count) through the minutes a new secret or new grants take to
//! replicate; each token's `roles` must hold every permission granted on its API (a Management
//! token without roles fails). In the same round trip, our service principal's app role
//! assignments are read back: all 15 must be listed (the portal's green checkmarks). Then, in
//! one more round trip, one read-only request per API with its token, the calls Hal's
//! collector depends on ([`GRAPH_READ`], [`MANAGE_READ`]; docs/clouds.md says why these).

use super::{Assessment, Step, StepCx, StepOutcome};
use crate::secrets::account;
use crate::store::StepId;
use crate::wizard::permissions::{self, Resource, missing_grants, required_for};
use crate::wizard::verify::{ReadAnswer, VerifyError};
use crate::wizard::{Event, WizardError};

pub struct VerifyStep;

/// The Graph read: directory audits, which every Microsoft Entra ID edition has (sign-in logs
/// need P1 and answer 403 without it), allowed by AuditLog.Read.All with Directory.Read.All.
pub const GRAPH_READ: &str = "auditLogs/directoryAudits?$top=1";
/// The Office 365 Management Activity API read: the tenant's subscriptions.
pub const MANAGE_READ: &str = "subscriptions/list";

/// What each read proves, for the message when it is refused.
struct Probe {
    api: &'static str,
    read: &'static str,
    permission: &'static str,
}

const GRAPH_PROBE: Probe = Probe {
    api: "Microsoft Graph",
    read: "GET /auditLogs/directoryAudits",
    permission: "AuditLog.Read.All (with Directory.Read.All)",
};
const MANAGE_PROBE: Probe = Probe {
    api: "the Office 365 Management Activity API",
    read: "GET /activity/feed/subscriptions/list",
    permission: "ActivityFeed.Read",
};

/// A refused read is "not yet" while the budget lasts (grants take minutes to apply), and says
/// which permission did not take once it is spent.
fn read_outcome(r: Result<ReadAnswer, VerifyError>, p: Probe) -> Result<(), VerifyError> {
    match r? {
        ReadAnswer::Ok => Ok(()),
        ReadAnswer::Denied { status, detail } => Err(VerifyError::ReadDenied {
            api: p.api,
            read: p.read,
            permission: p.permission,
            status,
            detail,
        }),
    }
}

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
            .await?;
        let secret = match secret {
            Some(s) => s,
            // The portal holds this very secret (it was verified before it was sent, and this
            // machine rightly forgot it): after a repair, confirm the grants alone.
            None if crate::wizard::steps::portal::is_current(cx.record) => {
                return grants_only(cx).await;
            }
            None => return Err(WizardError::SecretLost),
        };
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
        let sp_id = cx
            .record
            .app
            .as_ref()
            .and_then(|a| a.service_principal_id.clone())
            .expect("the app step made the service principal");
        let perms = permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())?;
        let graph_read = cx.settings.endpoints.graph_url(GRAPH_READ);
        let manage_read = cx.settings.endpoints.manage_url(&tid, MANAGE_READ);
        let of = cx.settings.verify_attempts.max(1);
        let mut attempt = 0;
        let mut listed = false;
        loop {
            attempt += 1;
            let dir = cx.dir;
            let readback = async {
                if listed {
                    Ok(None)
                } else {
                    dir.app_role_assignments(&sp_id).await.map(Some)
                }
            };
            let together = (attempt == 1).then(|| cx.meter.concurrently());
            let (g, m, rb) = futures::join!(
                cx.verifier.app_token(&tid, &app_id, &secret, &graph_scope),
                cx.verifier.app_token(&tid, &app_id, &secret, &manage_scope),
                readback,
            );
            drop(together);
            let not_listed: Vec<&str> = match rb.map_err(WizardError::graph(StepId::Verify))? {
                Some(list) => {
                    let missing: Vec<&str> = missing_grants(&perms, &list)
                        .into_iter()
                        .map(|p| p.value)
                        .collect();
                    listed = missing.is_empty();
                    if listed {
                        cx.survey.assignments = Some(list);
                    }
                    missing
                }
                None => Vec::new(),
            };
            let tokens = match (g, m) {
                _ if !not_listed.is_empty() => Err(VerifyError::NotYet(format!(
                    "Graph does not list the grant of {} yet",
                    not_listed.join(", ")
                ))),
                (Ok(g), Ok(m)) => {
                    // A Management token must carry its roles too: without them Hal's
                    // collector would be refused, so none is a failure, not a skipped check.
                    let mut missing = missing_roles(&g.claims.roles, Resource::Graph);
                    missing.extend(missing_roles(&m.claims.roles, Resource::O365Management));
                    if missing.is_empty() {
                        Ok((g, m))
                    } else {
                        Err(VerifyError::NotYet(format!(
                            "the token does not carry {} yet",
                            missing.join(", ")
                        )))
                    }
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            // The reads Hal itself depends on, with the new credentials (one round trip).
            let outcome = match tokens {
                Ok((g, m)) => {
                    let together = (attempt == 1).then(|| cx.meter.concurrently());
                    let (gr, mr) = futures::join!(
                        cx.verifier.read(&g.bearer, &graph_read),
                        cx.verifier.read(&m.bearer, &manage_read),
                    );
                    drop(together);
                    read_outcome(gr, GRAPH_PROBE)
                        .and_then(|()| read_outcome(mr, MANAGE_PROBE))
                        .map(|()| g.claims.roles.len())
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(n) => {
                    return Ok(StepOutcome::Done(format!(
                        "the app signs in to Microsoft Graph and Office 365 Management and reads both (GET /auditLogs/directoryAudits, GET activity/feed/subscriptions/list); the Graph token carries {n} roles{}",
                        if attempt > 1 {
                            format!(" (after {attempt} attempts)")
                        } else {
                            String::new()
                        }
                    )));
                }
                Err(e @ (VerifyError::NotYet(_) | VerifyError::ReadDenied { .. }))
                    if attempt < of =>
                {
                    let why = match e {
                        VerifyError::NotYet(why) => why,
                        e => e.to_string(),
                    };
                    cx.progress.event(Event::Waiting {
                        what: format!("Microsoft to accept the new credentials ({why})"),
                        attempt,
                        of,
                        next_in: cx.settings.verify_wait,
                    });
                    cx.verifier.retrying();
                    tokio::time::sleep(cx.settings.verify_wait).await;
                }
                Err(VerifyError::NotYet(why))
                    if !listed && why.starts_with("Graph does not list") =>
                {
                    return Err(WizardError::ConsentIncomplete {
                        missing: not_listed.iter().map(|s| s.to_string()).collect(),
                    });
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

/// Verification without the secret: every grant read back from Graph, retried through
/// replication like the full check.
async fn grants_only(cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError> {
    let sp_id = cx
        .record
        .app
        .as_ref()
        .and_then(|a| a.service_principal_id.clone())
        .expect("the app step made the service principal");
    let perms = permissions::resolve(cx.survey.graph_sp.as_ref(), cx.survey.o365_sp.as_ref())?;
    let of = cx.settings.verify_attempts.max(1);
    for attempt in 1..=of {
        let list = cx
            .dir
            .app_role_assignments(&sp_id)
            .await
            .map_err(WizardError::graph(StepId::Verify))?;
        let missing: Vec<String> = missing_grants(&perms, &list)
            .into_iter()
            .map(|p| p.value.to_string())
            .collect();
        if missing.is_empty() {
            cx.survey.assignments = Some(list);
            return Ok(StepOutcome::Done(
                "all 15 grants confirmed; the client secret is with the MSP portal (it was verified before it was sent)".into(),
            ));
        }
        if attempt == of {
            return Err(WizardError::ConsentIncomplete { missing });
        }
        cx.progress.event(Event::Waiting {
            what: format!("Graph to list the grant of {}", missing.join(", ")),
            attempt,
            of,
            next_in: cx.settings.verify_wait,
        });
        tokio::time::sleep(cx.settings.verify_wait).await;
    }
    unreachable!("the loop returns on its last attempt")
}
