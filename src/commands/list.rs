//! `hal-onboard list`: every tenant, where it stands, what is still to do.
//!
//! It reads `tenants.json` once, without the lock (commits are atomic renames), derives each
//! tenant's status with [`crate::store::status`], and prints a table — or, with `--json`, the
//! array documented in docs/list-json.md. It never signs in, never touches the network, the
//! keyring or an async runtime: it must stay instant for an MSP with a thousand tenants.

use std::fmt::Write as _;

use clap::Args;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cloud::Cloud;
use crate::commands::Ctx;
use crate::error::{CommandResult, failed};
use crate::store::lock::Holder;
use crate::store::status::{Overall, ROTATE_WITHIN_DAYS, TenantStatus};
use crate::store::{
    EntraLicense, PortalState, StepId, StepState, StepStatus, TenantRecord, TenantStore, UalState,
    Via,
};
use crate::ui::{ColorChoice, Ui, sanitize};

/// Every onboarded tenant, sorted by display name: UAL, app, consent, days until the client
/// secret expires, portal, and under each tenant that needs something the exact command to run
/// next.
#[derive(Debug, Args)]
#[command(after_help = "\
Secrets expiring within 60 days are shown in yellow, expired ones in red.
With --json, prints an array, one tenant per line, and nothing else on stdout;
its fields are a stable contract (docs/list-json.md).

Examples:
  hal-onboard list
  hal-onboard list --json | jq -r '.[].nextAction.command // empty'")]
pub struct ListArgs {}

pub fn cmd_list(ctx: &Ctx, _args: &ListArgs) -> CommandResult {
    let store = TenantStore::for_reading(&ctx.home)?;
    let doc = store.load()?;
    let now = OffsetDateTime::now_utc();
    // Tenants another run is changing right now: one read of the locks directory.
    let busy = crate::store::lock::busy(&ctx.home);

    let mut rows: Vec<Row<'_>> = doc
        .tenants
        .iter()
        .map(|rec| Row {
            key: (
                rec.display_name.to_lowercase(),
                rec.primary_domain.to_lowercase(),
            ),
            status: TenantStatus::of(rec, now),
            in_progress: busy.get(&rec.tenant_id),
            rec,
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));

    if ctx.ui.json() {
        ctx.ui.out(to_json_lines(&rows)?);
    } else if rows.is_empty() {
        ctx.ui.hint(format!(
            "No tenants in {} yet. Run `hal-onboard tenant add <domain>` to onboard one.",
            store.path().display()
        ));
    } else {
        ctx.ui.out(render_table(&ctx.ui, table_color(ctx), &rows));
        ctx.ui.status(ctx.ui.dim(summary(&rows)));
    }
    drop(rows);
    // The process ends right after this: freeing a thousand records one allocation at a time
    // would only make `list` slower.
    std::mem::forget(doc);
    Ok(())
}

/// Whether to color the table. `Ui` decides color by stderr, where its messages go; the table
/// goes to stdout, so with `auto` it also needs stdout to be a terminal (`list | grep` must
/// not get escape codes).
fn table_color(ctx: &Ctx) -> bool {
    use std::io::IsTerminal;
    match ctx.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => ctx.ui.color() && std::io::stdout().is_terminal(),
    }
}

/// The JSON array with one tenant per line: valid JSON for `jq`, and `grep`-able as it is.
/// Built in memory and written once (stdout is line-buffered).
fn to_json_lines(rows: &[Row<'_>]) -> CommandResult<String> {
    let mut out = String::with_capacity(rows.len() * 1600 + 4);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let line = serde_json::to_string(&Entry::new(row))
            .map_err(|e| failed("cannot write JSON to stdout").with_source(e))?;
        out.push_str(&line);
    }
    out.push_str(if rows.is_empty() { "]" } else { "\n]" });
    Ok(out)
}

struct Row<'a> {
    key: (String, String),
    rec: &'a TenantRecord,
    status: TenantStatus,
    /// Another hal-onboard holds this tenant's lock now.
    in_progress: Option<&'a Holder>,
}

// ---------------------------------------------------------------------------------------------
// The table

/// The widest a name or a domain gets before it is cut with "…" (the next-action line under
/// the row always shows the full domain). Together the columns fit a 100-column terminal.
const NAME_MAX: usize = 22;
const DOMAIN_MAX: usize = 30;
const TABLE_WIDTH: usize = 100;
const GAP: &str = "  ";
/// Marks a partner-onboarded tenant's name: a column of its own would not fit 100 columns, and
/// a store without partner tenants reads exactly as before. The summary line explains it.
const PARTNER_MARK: &str = " (P)";

#[derive(Clone, Copy)]
enum Tone {
    Plain,
    Warn,
    Bad,
}

struct Cell {
    text: String,
    tone: Tone,
}

fn cell(text: impl Into<String>, tone: Tone) -> Cell {
    Cell {
        text: text.into(),
        tone,
    }
}

const HEADERS: [&str; 7] = [
    "TENANT", "DOMAIN", "UAL", "APP", "CONSENT", "SECRET", "PORTAL",
];

fn render_table(ui: &Ui, color: bool, rows: &[Row<'_>]) -> String {
    let cells: Vec<[Cell; 7]> = rows.iter().map(row_cells).collect();
    let mut widths = HEADERS.map(console::measure_text_width);
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(console::measure_text_width(&c.text));
        }
    }

    let mut out = String::with_capacity(rows.len() * 160 + 128);
    push_line(
        &mut out,
        ui,
        color,
        &widths,
        HEADERS.iter().map(|h| (*h, Tone::Plain)),
        true,
    );
    for (row, r) in rows.iter().zip(&cells) {
        push_line(
            &mut out,
            ui,
            color,
            &widths,
            r.iter().map(|c| (c.text.as_str(), c.tone)),
            false,
        );
        if let Some(h) = row.in_progress {
            let line = format!(
                "  ⋯ in progress: pid {}, since {:02}:{:02} UTC, `hal-onboard {}`",
                h.pid,
                h.since.hour(),
                h.since.minute(),
                clip(&h.command, 40)
            );
            if color {
                let _ = writeln!(out, "{}", ui.yellow(line));
            } else {
                let _ = writeln!(out, "{line}");
            }
        } else if let Some(next) = &row.status.next {
            let lead = "  → ";
            // Both name the tenant's domain, and the reason may quote a server's error.
            let command = sanitize(&next.command);
            let _ = write!(out, "{lead}{command}");
            let used = console::measure_text_width(lead) + command.len() + 2;
            if used + 10 < TABLE_WIDTH {
                let reason = sanitize(&next.reason);
                let reason = crate::ui::cut_words(&reason, TABLE_WIDTH - used);
                if color {
                    let _ = write!(out, "  {}", ui.dim(reason));
                } else {
                    let _ = write!(out, "  {reason}");
                }
            }
            out.push('\n');
        }
        if row.rec.keep_sign_in {
            out.push_str(
                "  · sign-in kept (--keep-sign-in): `hal-onboard tenant remove` forgets it\n",
            );
        }
    }
    out
}

fn push_line<'s>(
    out: &mut String,
    ui: &Ui,
    color: bool,
    widths: &[usize; 7],
    cells: impl Iterator<Item = (&'s str, Tone)>,
    header: bool,
) {
    let mut line = String::new();
    for (i, (text, tone)) in cells.enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        let styled = match tone {
            _ if !color => text.to_string(),
            _ if header => ui.bold(text),
            Tone::Plain => text.to_string(),
            Tone::Warn => ui.yellow(text),
            Tone::Bad => ui.red(text),
        };
        line.push_str(&styled);
        if i + 1 < widths.len() {
            let pad = widths[i].saturating_sub(console::measure_text_width(text));
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn row_cells(row: &Row<'_>) -> [Cell; 7] {
    let (rec, st) = (row.rec, &row.status);
    let ual = match st.step(StepId::Exchange) {
        StepStatus::Done => cell("on", Tone::Plain),
        StepStatus::Waiting => cell("waiting", Tone::Warn),
        StepStatus::Failed => cell("failed", Tone::Bad),
        StepStatus::Skipped => cell("skipped", Tone::Plain),
        StepStatus::NotStarted => cell("—", Tone::Plain),
    };
    let step = |id: StepId| match st.step(id) {
        StepStatus::Done => cell("done", Tone::Plain),
        StepStatus::Failed => cell("failed", Tone::Bad),
        StepStatus::Waiting => cell("waiting", Tone::Warn),
        StepStatus::Skipped => cell("skipped", Tone::Plain),
        StepStatus::NotStarted => cell("—", Tone::Plain),
    };
    let secret = match st.days_left {
        None => cell("—", Tone::Plain),
        Some(d) if d < 0 => cell("expired", Tone::Bad),
        Some(d) if d < ROTATE_WITHIN_DAYS => cell(crate::ui::lifetime(d), Tone::Warn),
        Some(d) => cell(crate::ui::lifetime(d), Tone::Plain),
    };
    let portal = if st.portal_stale {
        cell("stale", Tone::Warn)
    } else {
        match st.step(StepId::Portal) {
            StepStatus::Done => cell("sent", Tone::Plain),
            StepStatus::Failed => cell("failed", Tone::Bad),
            _ => cell("—", Tone::Plain),
        }
    };
    let name = match rec.via {
        Via::Direct => clip(&rec.display_name, NAME_MAX),
        Via::Partner => {
            clip(&rec.display_name, NAME_MAX - PARTNER_MARK.chars().count()) + PARTNER_MARK
        }
    };
    [
        cell(name, Tone::Plain),
        cell(clip(&rec.primary_domain, DOMAIN_MAX), Tone::Plain),
        ual,
        step(StepId::App),
        step(StepId::Consent),
        secret,
        portal,
    ]
}

/// Makes a value safe and short for one table cell: names came from the customer's tenant
/// through Graph, so they pass the UI's one sanitizer (an escape sequence could rewrite the
/// terminal, a bidirectional override could disguise the name).
fn clip(s: &str, max: usize) -> String {
    let cleaned = sanitize(s);
    let clean = cleaned.trim();
    if clean.is_empty() {
        return "—".into();
    }
    console::truncate_str(clean, max, "…").into_owned()
}

fn summary(rows: &[Row<'_>]) -> String {
    let n = rows.len();
    let mut parts = Vec::new();
    let busy = rows.iter().filter(|r| r.in_progress.is_some()).count();
    if busy > 0 {
        parts.push(format!("{busy} in progress"));
    }
    for (o, label) in [
        (Overall::Done, "done"),
        (Overall::Expiring, "secret expiring"),
        (Overall::Waiting, "waiting on Microsoft"),
        (Overall::Incomplete, "unfinished"),
        (Overall::Failed, "failed"),
        (Overall::Expired, "secret expired"),
    ] {
        let c = rows.iter().filter(|r| r.status.overall == o).count();
        if c > 0 {
            parts.push(format!("{c} {label}"));
        }
    }
    let mut line = format!(
        "{n} tenant{}: {}",
        if n == 1 { "" } else { "s" },
        parts.join(", ")
    );
    let partner = rows.iter().filter(|r| r.rec.via == Via::Partner).count();
    if partner > 0 {
        let _ = write!(
            line,
            "\n(P) = {partner} onboarded via partner (GDAP): `ual retry`, `secret rotate` and \
             `tenant remove` use the partner sign-in (`hal-onboard partner login`)"
        );
    }
    line
}

// ---------------------------------------------------------------------------------------------
// The JSON array: a public, stable contract documented in docs/list-json.md. Its own types, so
// a change to the store's file format cannot silently change it. Never a secret value.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    tenant_id: Uuid,
    display_name: &'a str,
    domain: &'a str,
    domains: &'a [String],
    cloud: Cloud,
    /// `direct` (the customer's admin signed in) or `partner` (through GDAP).
    via: &'static str,
    state: &'static str,
    next_action: Option<NextActionView<'a>>,
    pending: Vec<&'static str>,
    steps: StepsView<'a>,
    ual: UalView,
    app: Option<AppView<'a>>,
    secret: Option<SecretView<'a>>,
    license: Option<&'static str>,
    granted_permissions: usize,
    portal: PortalView,
    /// Another hal-onboard is changing this tenant now (it holds the tenant's lock).
    in_progress: Option<InProgressView<'a>>,
    /// The technician's sign-in is kept after the tenant's work is finished (`--keep-sign-in`).
    sign_in_kept: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NextActionView<'a> {
    command: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepsView<'a> {
    exchange: StepView<'a>,
    app: StepView<'a>,
    secret: StepView<'a>,
    consent: StepView<'a>,
    verify: StepView<'a>,
    portal: StepView<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepView<'a> {
    status: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    at: Option<OffsetDateTime>,
    attempts: u32,
    last_error: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UalView {
    state: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    hydrated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    enabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_attempt_at: Option<OffsetDateTime>,
    attempts: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppView<'a> {
    app_id: &'a str,
    object_id: &'a str,
    display_name: &'a str,
    service_principal_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretView<'a> {
    key_id: &'a str,
    hint: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    days_left: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InProgressView<'a> {
    pid: u32,
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
    command: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortalView {
    state: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    submitted_at: Option<OffsetDateTime>,
    stale: bool,
}

impl<'a> Entry<'a> {
    fn new(row: &'a Row<'a>) -> Entry<'a> {
        let (rec, st) = (row.rec, &row.status);
        let step = |id: StepId| {
            let s: &StepState = rec.step(id);
            StepView {
                status: step_status_str(st.step(id)),
                at: s.at,
                attempts: s.attempts,
                last_error: s.last_error.as_deref(),
            }
        };
        Entry {
            tenant_id: rec.tenant_id,
            display_name: &rec.display_name,
            domain: &rec.primary_domain,
            domains: &rec.domains,
            cloud: rec.cloud,
            via: rec.via.as_str(),
            state: st.overall.as_str(),
            next_action: st.next.as_ref().map(|n| NextActionView {
                command: &n.command,
                reason: &n.reason,
            }),
            pending: st.pending.iter().map(|id| id.as_str()).collect(),
            steps: StepsView {
                exchange: step(StepId::Exchange),
                app: step(StepId::App),
                secret: step(StepId::Secret),
                consent: step(StepId::Consent),
                verify: step(StepId::Verify),
                portal: step(StepId::Portal),
            },
            ual: UalView {
                state: match rec.ual.state {
                    UalState::Unknown => "unknown",
                    UalState::Enabled => "enabled",
                    UalState::WaitingPropagation => "waitingPropagation",
                    UalState::Failed => "failed",
                },
                hydrated_at: rec.ual.hydrated_at,
                enabled_at: rec.ual.enabled_at,
                last_attempt_at: rec.ual.last_attempt_at,
                attempts: rec.ual.attempts,
            },
            app: rec.app.as_ref().map(|a| AppView {
                app_id: &a.app_id,
                object_id: &a.object_id,
                display_name: &a.display_name,
                service_principal_id: a.service_principal_id.as_deref(),
            }),
            secret: rec.secret.as_ref().map(|s| SecretView {
                key_id: &s.key_id,
                hint: &s.hint,
                created_at: s.created_at,
                expires_at: s.expires_at,
                days_left: st.days_left.unwrap_or_default(),
            }),
            license: rec.license.map(EntraLicense::as_str),
            granted_permissions: rec.granted_permissions.len(),
            portal: PortalView {
                state: match rec.portal.state {
                    PortalState::NotSent => "notSent",
                    PortalState::Submitted => "submitted",
                    PortalState::Failed => "failed",
                },
                submitted_at: rec.portal.submitted_at,
                stale: st.portal_stale,
            },
            sign_in_kept: rec.keep_sign_in,
            in_progress: row.in_progress.map(|h| InProgressView {
                pid: h.pid,
                since: h.since,
                command: &h.command,
            }),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        }
    }
}

fn step_status_str(s: StepStatus) -> &'static str {
    match s {
        StepStatus::NotStarted => "notStarted",
        StepStatus::Done => "done",
        StepStatus::Waiting => "waiting",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}
