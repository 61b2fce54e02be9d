//! `hal-onboard partner customers [--json]`: every customer GDAP reaches, the technician's
//! roles in it, and whether `tenant add --partner` can onboard it.
//!
//! The story: read the partner config, open the partner sign-in, survey the MSP tenant once
//! (`partner::customers::survey`: relationships, access assignments, groups), read this home's
//! tenants.json for what is already onboarded, print the table (or the JSON array of
//! docs/partner-customers-json.md). Nothing is changed anywhere.

use std::fmt::Write as _;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::PartnerAuth;
use crate::commands::Ctx;
use crate::error::{CommandResult, failed};
use crate::microsoft::graph::meter::RequestMeter;
use crate::microsoft::graph::{GraphClient, RetryPolicy};
use crate::partner::PartnerConfig;
use crate::partner::customers::{self, Customer, HeldRole, Verdict};
use crate::partner::signin::{PartnerSignIn, config_for};
use crate::store::status::TenantStatus;
use crate::store::{StoreDoc, TenantRecord, TenantStore, Via};
use crate::ui::{Ui, UiSignIn, Untrusted, sanitize};

#[derive(Debug, Args)]
#[command(after_long_help = "\
READY and EXPIRING customers are what `hal-onboard tenant add --partner --all` onboards;
each BLOCKED one is shown with its code and the one thing that fixes it.
With --json, prints an array, one customer per line, and nothing else on stdout;
its fields are a stable contract (docs/partner-customers-json.md).

Examples:
  hal-onboard partner customers
  hal-onboard partner customers --skip-exchange
  hal-onboard partner customers --json | jq -r '.[] | select(.verdict == \"BLOCKED\") | .code'")]
pub struct CustomersArgs {
    /// Judge as `tenant add --partner --skip-exchange` would: Exchange Administrator is not
    /// needed.
    #[arg(long)]
    pub skip_exchange: bool,

    /// How to sign in when there is no saved partner sign-in (`hal-onboard partner login`).
    #[arg(long, value_enum, default_value_t = PartnerAuth::DeviceCode, value_name = "METHOD")]
    pub auth: PartnerAuth,
}

pub fn cmd_partner_customers(ctx: &Ctx, args: &CustomersArgs) -> CommandResult {
    let cfg = config_for(ctx.home_config()?.partner.as_ref(), None)?;
    let rt = ctx.runtime()?;
    let graph = msp_graph(ctx, &cfg, args.auth)?;
    let found = rt.block_on(customers::survey(&graph, args.skip_exchange))?;
    let doc = match TenantStore::for_reading(&ctx.home) {
        Ok(store) => store.load()?,
        Err(_) => StoreDoc::default(),
    };
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Row<'_>> = found
        .iter()
        .map(|c| Row {
            c,
            rec: doc.get(c.tenant_id),
        })
        .collect();
    if ctx.ui.json() {
        ctx.ui.out(to_json_lines(&rows, now)?);
    } else if rows.is_empty() {
        ctx.ui.hint(
            "No customer has an active GDAP relationship with your partner tenant (expired and ended ones are not listed). Request one in Partner Center (Customers, Request admin relationship).",
        );
    } else {
        ctx.ui.out(render(&ctx.ui, &rows, now));
        ctx.ui.status(ctx.ui.dim(summary(&rows)));
    }
    tracing::debug!(requests = graph.meter().stats().requests, "partner survey");
    Ok(())
}

/// The Graph client in the MSP's own tenant, on the partner sign-in: the saved one (`partner
/// login`), else a new sign-in here (as `tenant add --partner` does; without a keyring the
/// sign-in lasts for this command).
fn msp_graph(ctx: &Ctx, cfg: &PartnerConfig, auth: PartnerAuth) -> CommandResult<GraphClient> {
    let http = ctx.http()?;
    let observer = UiSignIn::new(&ctx.ui).signing_in_as(format!(
        "your own account of the MSP's tenant {}, with multi-factor authentication",
        Untrusted(&cfg.domain)
    ));
    let signin = ctx.runtime()?.block_on(PartnerSignIn::open(
        &ctx.env,
        http.clone(),
        cfg,
        ctx.secrets(),
        Arc::new(observer),
        auth.method(),
        true,
    ))?;
    Ok(GraphClient::new(
        http,
        signin.endpoints().clone(),
        signin.msp_graph(),
        signin.graph_scopes(),
        RetryPolicy::default().scaled(crate::config::retry_scale()),
        RequestMeter::new(),
    ))
}

struct Row<'a> {
    c: &'a Customer,
    /// This home's record of it, when hal-onboard onboarded it (or began to).
    rec: Option<&'a TenantRecord>,
}

fn date(t: Option<OffsetDateTime>) -> String {
    t.map(|t| t.date().to_string())
        .unwrap_or_else(|| "—".into())
}

fn onboarded(rec: Option<&TenantRecord>, now: OffsetDateTime) -> String {
    match rec {
        None => "no".into(),
        Some(r) => TenantStatus::of(r, now).overall.as_str().to_string(),
    }
}

fn verdict_cell(v: &Verdict) -> String {
    match v.code() {
        Some(code) => format!("{} {code}", v.as_str()),
        None => v.as_str().to_string(),
    }
}

/// Relationship names, the ones hal-onboard uses first.
fn relationship_names(c: &Customer) -> String {
    let names: Vec<&str> = c
        .relationships
        .iter()
        .chain(&c.microsoft_led)
        .map(|r| r.display_name.as_str())
        .collect();
    names.join(", ")
}

const HEADERS: [&str; 6] = [
    "CUSTOMER",
    "TENANT ID",
    "RELATIONSHIP",
    "ENDS",
    "ONBOARDED",
    "VERDICT",
];
const NAME_MAX: usize = 24;
const GAP: &str = "  ";

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// The table: one row per customer, then its roles and, when blocked, the fix.
fn render(ui: &Ui, rows: &[Row<'_>], now: OffsetDateTime) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                clip(&sanitize(&r.c.display_name), NAME_MAX),
                r.c.tenant_id.to_string(),
                clip(&sanitize(&relationship_names(r.c)), NAME_MAX),
                date(r.c.ends_at),
                onboarded(r.rec, now),
                verdict_cell(&r.c.verdict),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(console::measure_text_width);
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(console::measure_text_width(c));
        }
    }
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                l.push_str(GAP);
            }
            l.push_str(c);
            let pad = widths[i].saturating_sub(console::measure_text_width(c));
            l.extend(std::iter::repeat_n(' ', pad));
        }
        l.trim_end().to_string()
    };
    let mut out = String::new();
    let head: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(out, "{}", ui.bold(line(&head)));
    for (r, c) in rows.iter().zip(&cells) {
        let l = line(c);
        let _ = writeln!(
            out,
            "{}",
            match &r.c.verdict {
                Verdict::Ready => l,
                Verdict::Expiring { .. } => ui.yellow(l),
                Verdict::Blocked(_) => ui.red(l),
            }
        );
        let roles = r.c.role_names();
        let _ = writeln!(
            out,
            "  roles: {}",
            if roles.is_empty() {
                "none".to_string()
            } else {
                sanitize(&roles.join(", ")).into_owned()
            }
        );
        if !r.c.pending.is_empty() {
            let mut p: Vec<String> = vec![];
            for h in &r.c.pending {
                let n = h.role_name();
                if !p.contains(&n) {
                    p.push(n);
                }
            }
            let _ = writeln!(out, "  pending: {}", sanitize(&p.join(", ")));
        }
        if let Verdict::Blocked(b) = &r.c.verdict {
            let _ = writeln!(out, "  → {}", sanitize(&b.fix()));
        }
    }
    out
}

/// "3 customers: 1 READY, 1 EXPIRING, 1 BLOCKED; 1 onboarded by hal-onboard".
fn summary(rows: &[Row<'_>]) -> String {
    let count = |s: &str| rows.iter().filter(|r| r.c.verdict.as_str() == s).count();
    let onboarded = rows.iter().filter(|r| r.rec.is_some()).count();
    format!(
        "{} customer{}: {} READY, {} EXPIRING, {} BLOCKED; {onboarded} onboarded by hal-onboard in this home",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        count("READY"),
        count("EXPIRING"),
        count("BLOCKED"),
    )
}

// ---------------------------------------------------------------------------------------------
// The JSON array: a public, stable contract (docs/partner-customers-json.md), its own types.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    tenant_id: Uuid,
    display_name: &'a str,
    /// `READY`, `EXPIRING`, `BLOCKED`.
    verdict: &'static str,
    /// `GDAP_NO_RELATIONSHIP`, `GDAP_NOT_IN_GROUP`, `GDAP_ROLE_MISSING`,
    /// `GDAP_ASSIGNMENT_PENDING`; null unless blocked.
    code: Option<&'static str>,
    reason: Option<String>,
    fix: Option<String>,
    missing_roles: Vec<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    ends_at: Option<OffsetDateTime>,
    relationships: Vec<RelationshipEntry<'a>>,
    roles: Vec<RoleEntry<'a>>,
    pending_roles: Vec<RoleEntry<'a>>,
    onboarded: bool,
    state: Option<&'static str>,
    via: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RelationshipEntry<'a> {
    id: &'a str,
    display_name: &'a str,
    #[serde(with = "time::serde::rfc3339::option")]
    end_date_time: Option<OffsetDateTime>,
    auto_extend: bool,
    microsoft_led: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleEntry<'a> {
    role_id: &'a str,
    role: String,
    relationship: &'a str,
    group: &'a str,
}

fn role_entries(held: &[HeldRole]) -> Vec<RoleEntry<'_>> {
    held.iter()
        .map(|h| RoleEntry {
            role_id: &h.role,
            role: h.role_name(),
            relationship: &h.relationship,
            group: &h.group,
        })
        .collect()
}

impl<'a> Entry<'a> {
    fn new(row: &'a Row<'a>, now: OffsetDateTime) -> Entry<'a> {
        let c = row.c;
        let blocked = match &c.verdict {
            Verdict::Blocked(b) => Some(b),
            _ => None,
        };
        let rel = |r: &'a customers::RelationshipView, mlt: bool| RelationshipEntry {
            id: &r.id,
            display_name: &r.display_name,
            end_date_time: r.ends_at,
            auto_extend: r.auto_extends,
            microsoft_led: mlt,
        };
        Entry {
            tenant_id: c.tenant_id,
            display_name: &c.display_name,
            verdict: c.verdict.as_str(),
            code: c.verdict.code(),
            reason: blocked.map(|b| b.reason()),
            fix: blocked.map(|b| b.fix()),
            missing_roles: blocked.map(|b| b.missing().to_vec()).unwrap_or_default(),
            ends_at: c.ends_at,
            relationships: c
                .relationships
                .iter()
                .map(|r| rel(r, false))
                .chain(c.microsoft_led.iter().map(|r| rel(r, true)))
                .collect(),
            roles: role_entries(&c.roles),
            pending_roles: role_entries(&c.pending),
            onboarded: row.rec.is_some(),
            state: row.rec.map(|r| TenantStatus::of(r, now).overall.as_str()),
            via: row.rec.map(|r| match r.via {
                Via::Partner => "partner",
                _ => "direct",
            }),
        }
    }
}

/// One customer per line, like `list --json`: valid JSON, and `grep`-able.
fn to_json_lines(rows: &[Row<'_>], now: OffsetDateTime) -> CommandResult<String> {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let line = serde_json::to_string(&Entry::new(row, now))
            .map_err(|e| failed("cannot write JSON to stdout").with_source(e))?;
        out.push_str(&line);
    }
    out.push_str(if rows.is_empty() { "]" } else { "\n]" });
    Ok(out)
}
