//! The wizard's progress on the terminal, and PowerShell's output prefixed with its tenant.

use std::sync::{Arc, Mutex};

use super::{Spinner, Ui, Untrusted, sanitize};
use crate::microsoft::exchange::{Passthrough, PassthroughFor};
use crate::store::TenantRecord;
use crate::wizard::{Answer, Event, PlanState, Progress, Question, licence_note};

/// The wizard's progress on the terminal.
pub struct UiProgress {
    ui: Ui,
    yes: bool,
    spinner: Mutex<Option<Spinner>>,
}

impl UiProgress {
    pub fn new(ui: &Ui, yes: bool) -> UiProgress {
        UiProgress {
            ui: ui.clone(),
            yes,
            spinner: Mutex::new(None),
        }
    }

    pub fn clear(&self) {
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish();
        }
    }
}

/// The Graph client's waits: a new object's replication always (it can take minutes), and
/// throttling when it is long or with `-v`.
impl crate::microsoft::graph::WaitObserver for UiProgress {
    fn waiting(&self, note: &crate::microsoft::graph::WaitNote) {
        use crate::microsoft::graph::WaitReason;
        let show = match note.reason {
            WaitReason::Replication(_) => true,
            WaitReason::Throttled | WaitReason::Shared => {
                self.ui.verbose() > 0 || note.next_in >= std::time::Duration::from_secs(5)
            }
        };
        if !show {
            return;
        }
        let line = format!(
            "{}; next try in {}",
            note.sentence(),
            crate::microsoft::graph::human(note.next_in)
        );
        let sp = self.spinner.lock().unwrap();
        match sp.as_ref() {
            Some(s) if self.ui.live() => s.set_message(line),
            _ => self.ui.status(line),
        }
    }
}

impl Progress for UiProgress {
    fn event(&self, e: Event) {
        let ui = &self.ui;
        match e {
            Event::Tenant {
                display_name,
                default_domain,
                tenant_id,
                user,
            } => {
                ui.status(format!(
                    "Tenant: {} — {} (tenant ID {tenant_id}){}",
                    ui.bold(Untrusted(&display_name)),
                    Untrusted(&default_domain),
                    user.map(|u| format!(", signed in as {}", Untrusted(&u)))
                        .unwrap_or_default()
                ));
            }
            Event::Licence { licence } => match licence {
                Some(l) => match licence_note(l) {
                    Some(note) => ui.warning(note),
                    None => ui.status(format!("Licence: Entra ID {}", l.as_str())),
                },
                None => ui.warning(
                    "cannot read the tenant's licences (subscribedSkus); Entra ID P1/P2 unknown.",
                ),
            },
            Event::Plan(plan) => {
                ui.status("Plan:");
                for (n, item) in plan.items.iter().enumerate() {
                    let head = format!("  {}. {}", n + 1, Untrusted(item.title));
                    match &item.state {
                        PlanState::Done => ui.status(format!("{head} — {}", ui.green("done"))),
                        PlanState::Skipped(why) => ui.status(format!(
                            "{head} — {}",
                            ui.dim(format!("skipped ({})", Untrusted(why)))
                        )),
                        PlanState::Later(why) => ui.status(format!(
                            "{head} — {}",
                            ui.dim(format!("later: {}", Untrusted(why)))
                        )),
                        PlanState::ToDo(changes) => {
                            ui.status(format!("{head} — {}", ui.yellow("to do")));
                            for c in changes {
                                ui.status(format!("       • {}", Untrusted(c)));
                            }
                        }
                    }
                }
                if !plan.changes() {
                    ui.status("Nothing to change in this tenant.");
                }
            }
            Event::StepStarted(step) => {
                self.clear();
                *self.spinner.lock().unwrap() = Some(ui.spinner(step.title()));
            }
            Event::StepDone { step, summary } => {
                self.clear();
                ui.success(format!("{}: {}", step.title(), Untrusted(&summary)));
            }
            Event::StepSkipped { step, why } => {
                ui.status(format!("- {}: skipped ({})", step.title(), Untrusted(&why)));
            }
            Event::Warning(w) => {
                let w = sanitize(&w);
                let sp = self.spinner.lock().unwrap();
                match sp.as_ref() {
                    Some(s) => s.suspend(|| ui.warning(&w)),
                    None => ui.warning(&w),
                }
            }
            Event::Info(i) => ui.status(sanitize(&i)),
            Event::Waiting {
                what,
                attempt,
                of,
                next_in,
            } => {
                // Time as well as attempts: the budget is what the technician plans around.
                let line = format!(
                    "Waiting for {}: {} of {} (attempt {attempt}/{of}), next try in {} s",
                    Untrusted(&what),
                    crate::microsoft::graph::human(next_in * attempt),
                    crate::microsoft::graph::human(next_in * of),
                    next_in.as_secs_f64().ceil() as u64
                );
                let sp = self.spinner.lock().unwrap();
                match sp.as_ref() {
                    Some(s) if ui.live() => s.set_message(line),
                    _ => ui.status(line),
                }
            }
        }
    }

    fn ask(&self, q: &Question) -> Answer {
        if self.yes && q.yes_answers() {
            return Answer::Yes;
        }
        if !self.ui.interactive() {
            return Answer::CannotAsk;
        }
        let prompt = match q {
            Question::Proceed {
                display_name,
                default_domain,
            } => format!(
                "Change {} ({}) as planned?",
                Untrusted(display_name),
                Untrusted(default_domain)
            ),
            Question::ShorterSecret {
                asked_months,
                max_days,
            } => format!(
                "This tenant's app management policy refuses a {asked_months}-month secret; create one for {} (the longest it allows) instead?",
                super::lifetime(i64::from(*max_days))
            ),
            Question::Adopt { app } => format!(
                "Adopt app {} (signInAudience {}, owners: {}, {} credential(s)) as hal-onboard's and grant it Hal's 15 application permissions?",
                app.app_id,
                app.sign_in_audience,
                if app.owners.is_empty() {
                    "none listed".to_string()
                } else {
                    app.owners.join(", ")
                },
                app.credentials.len()
            ),
            Question::ShorterSecretUnknown {
                asked_months,
                steps,
            } => format!(
                "This tenant's app management policy refuses a {asked_months}-month secret and its limit cannot be read; try {} months, longest first, until one is accepted?",
                steps
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sp = self.spinner.lock().unwrap();
        let ask = || self.ui.confirm(&prompt, false, "--yes");
        let r = match sp.as_ref() {
            Some(s) => s.suspend(ask),
            None => ask(),
        };
        match r {
            Ok(true) => Answer::Yes,
            Ok(false) => Answer::No,
            Err(_) => Answer::CannotAsk,
        }
    }
}

/// Exchange Online PowerShell's own output, each line prefixed with its tenant's domain, to
/// the technician (stderr).
pub struct TenantOutput {
    ui: Ui,
    domain: String,
}

impl TenantOutput {
    /// One per tenant, as the Exchange sessions ask for them.
    pub fn per_tenant(ui: &Ui) -> PassthroughFor {
        let ui = ui.clone();
        Arc::new(move |t: &TenantRecord| {
            Arc::new(TenantOutput {
                ui: ui.clone(),
                domain: t.primary_domain.clone(),
            }) as Arc<dyn Passthrough>
        })
    }
}

impl Passthrough for TenantOutput {
    fn line(&self, line: &str) {
        if !line.trim().is_empty() {
            self.ui
                .status(format!("[{}] {}", Untrusted(&self.domain), Untrusted(line)));
        }
    }
}
