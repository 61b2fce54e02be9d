//! `tenant add --partner`'s terminal: the batch's plan, a live table (one line per running
//! customer with its current step, each finished customer printed above it as one result
//! line), and the summary. Without a terminal on stderr, plain lines instead of the table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use uuid::Uuid;

use super::{Ui, Untrusted, live_spinners, sanitize};
use crate::partner::batch::{
    BatchObserver, CustomerResult, Outcome, PlanLine, Skipped, Summary, Target, step_number,
};
use crate::store::StepId;

/// The live table of a batch.
pub struct BatchTable {
    ui: Ui,
    multi: Option<MultiProgress>,
    rows: Mutex<HashMap<Uuid, Row>>,
}

struct Row {
    label: String,
    bar: Option<ProgressBar>,
}

impl BatchTable {
    pub fn new(ui: &Ui) -> BatchTable {
        BatchTable {
            ui: ui.clone(),
            multi: ui
                .live()
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            rows: Mutex::new(HashMap::new()),
        }
    }

    fn label(&self, tenant: Uuid) -> String {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .map(|r| r.label.clone())
            .unwrap_or_else(|| tenant.to_string())
    }

    /// Stops every line still running (the batch ended, or Ctrl-C).
    pub fn clear(&self) {
        let rows = std::mem::take(&mut *self.rows.lock().unwrap_or_else(|e| e.into_inner()));
        for r in rows.into_values() {
            if let Some(b) = r.bar {
                b.finish_and_clear();
            }
        }
        live_spinners().retain(|s| !s.is_finished());
    }
}

impl Drop for BatchTable {
    fn drop(&mut self) {
        self.clear();
    }
}

impl BatchObserver for BatchTable {
    fn started(&self, target: &Target) {
        let label = sanitize(&target.display_name).into_owned();
        let bar = self.multi.as_ref().map(|m| {
            let pb = m.add(ProgressBar::new_spinner());
            pb.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:30!} {msg} {elapsed:.dim}")
                    .expect("valid template"),
            );
            pb.set_prefix(label.clone());
            pb.set_message("starting");
            pb.enable_steady_tick(Duration::from_millis(100));
            // Ctrl-C stops it before its line is printed; messages are written above it.
            live_spinners().push(pb.clone());
            pb
        });
        if bar.is_none() {
            self.ui.status(format!("{label}: started"));
        }
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.tenant_id, Row { label, bar });
    }

    fn step(&self, tenant: Uuid, what: &str) {
        let what = sanitize::sanitize_line(what).into_owned();
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        match rows.get(&tenant) {
            Some(Row { bar: Some(b), .. }) => b.set_message(what),
            Some(Row { label, .. }) => {
                let line = format!("{label}: {what}");
                drop(rows);
                self.ui.status(line);
            }
            None => {}
        }
    }

    fn note(&self, tenant: Uuid, text: &str, warning: bool) {
        let line = format!("{}: {}", self.label(tenant), Untrusted(text));
        if warning {
            self.ui.warning(line);
        } else {
            self.ui.status(line);
        }
    }

    fn finished(&self, r: &CustomerResult) {
        let row = self
            .rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&r.target.tenant_id);
        if let Some(b) = row.and_then(|r| r.bar) {
            b.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&b);
            }
            live_spinners().retain(|s| !s.is_finished());
        }
        result_line(&self.ui, r);
    }
}

fn who(ui: &Ui, r: &CustomerResult) -> String {
    match &r.domain {
        Some(d) => format!(
            "{} ({})",
            ui.bold(Untrusted(&r.target.display_name)),
            Untrusted(d)
        ),
        None => format!(
            "{} ({})",
            ui.bold(Untrusted(&r.target.display_name)),
            r.target.tenant_id
        ),
    }
}

/// A finished customer's one line (and its hints, when it failed).
fn result_line(ui: &Ui, r: &CustomerResult) {
    let who = who(ui, r);
    match &r.outcome {
        Outcome::Onboarded => ui.success(format!("{who}: onboarded")),
        Outcome::Waiting(why) => ui.status(format!(
            "{} {who}: onboarded; waiting: {}",
            ui.yellow("…"),
            Untrusted(why)
        )),
        Outcome::Failed { message, hints } => {
            ui.status(format!(
                "{} {who}: failed: {}",
                ui.red("✘"),
                Untrusted(message)
            ));
            for h in hints {
                ui.hint(format!("  {}", sanitize(h)));
            }
        }
        Outcome::Busy(why) => ui.status(format!(
            "{} {who}: skipped: {}",
            ui.yellow("-"),
            Untrusted(why)
        )),
        Outcome::Interrupted => {}
    }
}

fn skipped_lines(ui: &Ui, s: &Skipped) {
    ui.status(format!(
        "  {} {} — {}: {}",
        ui.red("✘"),
        ui.bold(Untrusted(&s.name)),
        s.code,
        Untrusted(&s.message)
    ));
    ui.status(format!("      fix: {}", Untrusted(&s.fix)));
}

fn steps_text(to_do: &[StepId]) -> String {
    to_do
        .iter()
        .map(|s| format!("{} {}", step_number(*s), s.title()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The batch's plan, asked once: every customer to onboard, what is still to do in each, and
/// the customers skipped with nothing changed (why, and the fix).
pub fn show_plan(ui: &Ui, lines: &[PlanLine], skipped: &[Skipped], jobs: usize) {
    if !lines.is_empty() {
        ui.status(format!(
            "Plan: onboard {} customer{} through GDAP, {} at once. In each: consent for the partner app (Partner Center), then the steps still to do:",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            jobs.min(lines.len()).max(1)
        ));
        for l in lines {
            let name = match &l.known_domain {
                Some(d) => format!("{} ({})", Untrusted(&l.target.display_name), Untrusted(d)),
                None => format!(
                    "{} ({})",
                    Untrusted(&l.target.display_name),
                    l.target.tenant_id
                ),
            };
            let expiring = l
                .target
                .expiring
                .map(|t| {
                    format!(
                        " {}",
                        ui.yellow(format!("EXPIRING: relationship ends {}", t.date()))
                    )
                })
                .unwrap_or_default();
            let what = if l.to_do.is_empty() {
                ui.green("done (re-checked, nothing to change)")
            } else if l.known_domain.is_none() {
                "new: steps 1–6".to_string()
            } else {
                format!("resumes: {}", steps_text(&l.to_do))
            };
            ui.status(format!("  • {name}{expiring} — {what}"));
        }
    }
    if !skipped.is_empty() {
        ui.status(format!(
            "Skipped, nothing changed in {}:",
            if skipped.len() == 1 { "it" } else { "them" }
        ));
        for s in skipped {
            skipped_lines(ui, s);
        }
    }
}

/// The summary at the end, and with `--json` the same on stdout (docs/user-guide.md).
pub fn show_summary(ui: &Ui, s: &Summary) -> crate::error::CommandResult {
    let blocked = s.skipped.len();
    ui.status("");
    let busy = match s.busy() {
        0 => String::new(),
        n => format!(", {n} skipped (another run is working on it)"),
    };
    ui.status(ui.bold(format!(
        "Summary: {} onboarded, {} waiting, {} blocked, {} failed{busy}",
        s.onboarded(),
        s.waiting(),
        blocked,
        s.failed()
    )));
    for r in &s.results {
        let (what, detail) = describe(&r.outcome);
        if r.outcome == Outcome::Interrupted {
            continue;
        }
        ui.status(format!(
            "  {:<44} {:<11} {}",
            console::truncate_str(&sanitize(&r.target.display_name), 44, "…"),
            what,
            ui.dim(Untrusted(&detail))
        ));
    }
    for k in &s.skipped {
        ui.status(format!(
            "  {:<44} {:<11} {}",
            console::truncate_str(&sanitize(&k.name), 44, "…"),
            "blocked",
            ui.dim(k.code)
        ));
    }
    for r in &s.results {
        if let Some(t) = r.target.expiring {
            ui.warning(format!(
                "{}: the GDAP relationship ends {} (EXPIRING): extend it in Partner Center, or hal-onboard can no longer act there after that date (the app and its secret keep working).",
                Untrusted(&r.target.display_name),
                t.date()
            ));
        }
    }
    if ui.json() {
        let mut out: Vec<serde_json::Value> = s
            .results
            .iter()
            .map(|r| {
                let (what, detail) = describe(&r.outcome);
                serde_json::json!({
                    "tenantId": r.target.tenant_id,
                    "displayName": r.target.display_name,
                    "domain": r.domain,
                    "result": what,
                    "message": detail,
                    "relationshipEndsAt": r.target.expiring.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
                })
            })
            .collect();
        out.extend(s.skipped.iter().map(|k| {
            serde_json::json!({
                "tenantId": k.tenant_id,
                "displayName": k.name,
                "result": "blocked",
                "code": k.code,
                "message": k.message,
                "fix": k.fix,
            })
        }));
        ui.write_json(&serde_json::json!({
            "customers": out,
            "onboarded": s.onboarded(),
            "waiting": s.waiting(),
            "blocked": blocked,
            "failed": s.failed(),
            "busy": s.busy(),
        }))?;
    }
    Ok(())
}

fn describe(o: &Outcome) -> (&'static str, String) {
    match o {
        Outcome::Onboarded => ("onboarded", String::new()),
        Outcome::Waiting(w) => ("waiting", w.clone()),
        Outcome::Failed { message, .. } => ("failed", message.clone()),
        Outcome::Busy(why) => ("busy", why.clone()),
        Outcome::Interrupted => ("interrupted", String::new()),
    }
}
