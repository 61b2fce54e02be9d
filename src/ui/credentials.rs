//! The end of a `tenant add`: the guide's "Record these credentials" table, and what is left.

use time::OffsetDateTime;

use super::{Ui, Untrusted};
use crate::store::status::TenantStatus;
use crate::store::{StepId, StepStatus, TenantRecord};

/// How the secret is shown in the table.
pub enum SecretView<'a> {
    /// Masked: the hint Microsoft gives and where the value is.
    Masked { kept: &'static str },
    /// The value itself (`--show-secret`, or no keyring and the portal did not take it).
    Shown(&'a str),
    /// The portal has it, and this machine rightly forgot it.
    WithPortal,
    /// This run does not have it.
    NotHere,
}

/// The table, for stdout.
pub fn credentials_table(ui: &Ui, rec: &TenantRecord, secret: SecretView<'_>) -> String {
    let app_id = rec.app.as_ref().map_or("—", |a| a.app_id.as_str());
    let (hint, expires) = rec.secret.as_ref().map_or(("", "—".to_string()), |s| {
        (s.hint.as_str(), s.expires_at.date().to_string())
    });
    let hint = Untrusted(hint);
    let secret_cell = match secret {
        SecretView::Shown(v) => ui.bold(Untrusted(v)),
        SecretView::Masked { kept } => format!("{hint}{}  {}", "•".repeat(12), ui.dim(kept)),
        SecretView::WithPortal => format!(
            "{hint}{}  {}",
            "•".repeat(12),
            ui.dim("(sent to the MSP portal; not kept on this machine)")
        ),
        SecretView::NotHere => format!(
            "{hint}{}  {}",
            "•".repeat(12),
            ui.dim("(not on this machine)")
        ),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "\n{}\n",
        ui.bold(format!(
            "Credentials for {} ({})",
            Untrusted(&rec.display_name),
            Untrusted(&rec.primary_domain)
        ))
    ));
    let rows = [
        ("Directory (tenant) ID", rec.tenant_id.to_string()),
        ("Application (client) ID", Untrusted(app_id).to_string()),
        ("Client Secret Value", secret_cell),
        ("Secret Expiration Date", expires),
    ];
    for (k, v) in rows {
        out.push_str(&format!("  {k:<24} {v}\n"));
    }
    out
}

/// What is still to do, each with the exact command that finishes it.
pub fn pending_lines(rec: &TenantRecord) -> Vec<String> {
    let st = TenantStatus::of(rec, OffsetDateTime::now_utc());
    let domain = Untrusted(&rec.primary_domain);
    let mut lines = Vec::new();
    for id in &st.pending {
        let line = match (id, st.step(*id)) {
            // The run ends with the waiting status, which names the command.
            (StepId::Exchange, StepStatus::Waiting) => {
                "Unified audit logging waits on Microsoft's propagation (minutes to hours).".into()
            }
            (StepId::Exchange, _) => format!(
                "Unified audit logging is not enabled yet: run `hal-onboard ual retry {domain}` (or `hal-onboard tenant add {domain}`)."
            ),
            (StepId::Portal, _) => format!(
                "The MSP portal does not have these credentials yet: run `hal-onboard portal submit {domain}`."
            ),
            (other, _) => format!(
                "{} is not finished: run `hal-onboard tenant add {domain}` again.",
                other.title()
            ),
        };
        lines.push(line);
    }
    if rec.step(StepId::Exchange).status == StepStatus::Skipped {
        lines.push(format!(
            "Unified audit logging was skipped (--skip-exchange): run `hal-onboard ual retry {domain}` when PowerShell is at hand, or enable it by hand (guide step 1)."
        ));
    }
    lines
}

/// The guide's manual entry, for when no keyring holds the secret and the portal did not take it.
pub const MANUAL_ENTRY: &str = "This secret is shown once and is not kept anywhere: enter these four values in your MSP portal's tenant onboarding form now (Directory ID, Application ID, Client Secret Value, Secret Expiration Date).";
