//! `hal-onboard ual retry [TENANT...]`: run Set-AdminAuditLogConfig again, then verify, for
//! tenants waiting on Microsoft's propagation of their customization. A tenant named here that
//! is not waiting (never done, or failed) gets the whole step: check, hydrate, enable, verify.
//!
//! Each tenant's result is committed to the store on its own as soon as it is known, so
//! Ctrl-C (which ends every PowerShell child) leaves each tenant either updated or untouched.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, failed, waiting};
use crate::microsoft::exchange::{ExchangeError, OpsFactory};
use crate::microsoft::signin::AuthMethod;
use crate::partner::reach::Reach;
use crate::session::{ExchangeAuthMode, ExchangeDisplay, ExchangeSignIn, exchange_factory};
use crate::store::{TenantRecord, TenantStore, UalState};
use crate::ui::{TenantOutput, Ui, UiExchangeSignIn, interrupt};
use crate::wizard::steps::exchange::{self as step, ExchangeOutcome, NoProgress, UAL_EVENTS_DELAY};

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Tenants to retry, by domain, name or tenant ID. Default: every tenant waiting on UAL.
    #[arg(value_name = "TENANT")]
    pub tenants: Vec<String>,

    /// Keep retrying every --interval until all are done or --max-wait has passed.
    #[arg(long)]
    pub watch: bool,

    /// Time between rounds with --watch (e.g. 30s, 15m, 2h).
    #[arg(long, default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Duration,

    /// Give up watching after this long (e.g. 8h).
    #[arg(long, default_value = "8h", value_parser = parse_duration, value_name = "DURATION")]
    pub max_wait: Duration,

    /// How many tenants to work on at once (always 1 with `--exchange-auth device`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub jobs: u16,

    /// How Exchange Online PowerShell signs in.
    #[arg(long, value_enum, default_value_t = ExchangeAuthMode::Token, value_name = "MODE")]
    pub exchange_auth: ExchangeAuthMode,

    /// Seconds one PowerShell session may take (default: HAL_ONBOARD_PWSH_TIMEOUT, else 600).
    #[arg(long, value_name = "SECONDS")]
    pub pwsh_timeout: Option<u64>,

    /// The client `tenant add --client-id` signed in with [default: HAL_ONBOARD_CLIENT_ID]:
    /// when it is the partner app (`partner setup`), Exchange Online uses that sign-in (the
    /// kept Graph refresh token) instead of a sign-in of its own. Other clients change nothing.
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,

    /// Keep your Exchange sign-in (refresh token in the OS keyring) for these tenants after
    /// their work is finished; recorded, and shown by `list` as "sign-in kept".
    #[arg(long, overrides_with = "no_keep_sign_in")]
    pub keep_sign_in: bool,

    /// Stop keeping your sign-in for these tenants (undoes an earlier `--keep-sign-in`).
    #[arg(long, overrides_with = "keep_sign_in")]
    pub no_keep_sign_in: bool,

    /// Sign in as each customer's own administrator even for tenants onboarded through partner
    /// mode (`via: partner` in `list --json`), e.g. once a GDAP relationship ended.
    #[arg(long)]
    pub direct: bool,
}

/// Parses humane durations: `90s`, `15m`, `2h`, `1h30m`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0u64;
    let mut num = String::new();
    let mut saw_unit = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?}: expected a number before {c:?}"))?;
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("{s:?}: unknown unit {c:?} (use s, m, h or d)")),
        };
        total = total.saturating_add(n.saturating_mul(mult));
        num.clear();
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit {
        return Err(format!("{s:?}: add a unit, e.g. 30s, 15m or 2h"));
    }
    if total == 0 {
        return Err(format!("{s:?}: must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// `2h 05m`, `45m`, `30s`.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// One tenant's result, as `--json` prints it (docs/powershell-bridge.md, "ual retry --json").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantOutcome {
    pub tenant_id: Uuid,
    pub domain: String,
    pub display_name: String,
    /// `enabled`, `waiting`, `error` or `interrupted`.
    pub result: &'static str,
    pub ual_state: UalState,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub hydrated_at: Option<OffsetDateTime>,
    pub since_hydration_seconds: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub enabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// The role the Exchange sign-in carried (`Global Administrator`, `Exchange Administrator`
    /// or `Compliance Administrator`), when the token said.
    pub signed_in_as: Option<&'static str>,
    pub error: Option<OutcomeError>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeError {
    pub code: &'static str,
    pub message: String,
    pub hint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    tenants: Vec<TenantOutcome>,
    enabled: usize,
    waiting: usize,
    errors: usize,
    rounds: u32,
    interrupted: bool,
}

struct Deps {
    store: TenantStore,
    ops: Arc<dyn OpsFactory>,
    /// Which tenants go through the partner sign-in (`via: partner`), and its failure if any.
    reach: Arc<Reach>,
    secrets: Arc<dyn crate::secrets::SecretStore>,
    keep_sign_in: Option<bool>,
    /// The MSP portal, when configured: told (without the secret) when UAL is verified.
    portal: Option<Arc<dyn crate::portal::PortalApi>>,
}

pub fn cmd_ual_retry(ctx: &Ctx, args: &RetryArgs) -> CommandResult {
    ctx.runtime()?.block_on(retry(ctx, args))
}

async fn retry(ctx: &Ctx, args: &RetryArgs) -> CommandResult {
    let ui = &ctx.ui;
    // Ctrl-C: every PowerShell child is ended, and the report says what each tenant did.
    let _reporting = interrupt::Reporting::start();
    let store = TenantStore::open(&ctx.home)?;
    let doc = store.load()?;
    let mut ids: Vec<Uuid> = Vec::new();
    if args.tenants.is_empty() {
        ids.extend(
            doc.tenants
                .iter()
                .filter(|t| t.ual.state == UalState::WaitingPropagation)
                .map(|t| t.tenant_id),
        );
    } else {
        for key in &args.tenants {
            let t = doc.find(key)?;
            if !ids.contains(&t.tenant_id) {
                ids.push(t.tenant_id);
            }
        }
    }
    if ids.is_empty() {
        if ui.json() {
            ui.write_json(&Report {
                tenants: vec![],
                enabled: 0,
                waiting: 0,
                errors: 0,
                rounds: 0,
                interrupted: false,
            })?;
        }
        ui.status("No tenant is waiting on unified audit logging.");
        return Ok(());
    }

    // Each tenant's cloud, as Microsoft says it now (one look-up per tenant for the whole run,
    // every round included): a record from before GCC was known is corrected here. Not when
    // the Exchange tokens come from HAL_ONBOARD_EXCHANGE_TOKEN: nothing signs in then, and
    // whoever minted them chose the cloud.
    let signs_in =
        !(args.exchange_auth == ExchangeAuthMode::Token && ctx.env.exchange_token.is_some());
    for id in ids.iter().filter(|_| signs_in) {
        let found = ctx
            .tenant_cloud(&crate::tenant::TenantName::from(*id))
            .await?;
        if doc.get(*id).is_some_and(|r| r.cloud != found.cloud) {
            store.update(|d| {
                if let Some(r) = d.tenants.iter_mut().find(|r| r.tenant_id == *id) {
                    r.cloud = found.cloud;
                }
            })?;
        }
    }
    let http = ctx.http()?;
    let how = ExchangeSignIn {
        mode: args.exchange_auth,
        method: AuthMethod::DeviceCode,
        cloud: ctx.global.cloud,
        pwsh_timeout: args.pwsh_timeout.map(Duration::from_secs),
        same_client: crate::session::one_sign_in_client(
            &ctx.env,
            args.client_id.as_deref(),
            ctx.home_config()?.partner.as_ref(),
        )
        .map(|client_id| crate::session::SameClient {
            client_id,
            graph: None,
        }),
    };
    let output = TenantOutput::per_tenant(ui);
    let display = ExchangeDisplay {
        sign_in: Arc::new(UiExchangeSignIn::new(ui)),
        output: output.clone(),
    };
    let direct = exchange_factory(&ctx.env, &how, http, || ctx.secrets(), display)?;
    // Partner-onboarded tenants: one partner sign-in for the run, never their admin.
    let recs: Vec<&TenantRecord> = ids.iter().filter_map(|id| doc.get(*id)).collect();
    let reach = Arc::new(
        Reach::open(
            &recs,
            args.direct,
            ctx.partner_open(AuthMethod::DeviceCode)?,
        )
        .await,
    );
    let factory = reach.exchange_factory(direct, &ctx.env, how.pwsh_timeout, output)?;
    let portal = ctx
        .portal(ctx.secrets().as_ref())
        .ok()
        .map(|p| Arc::new(p) as Arc<dyn crate::portal::PortalApi>);
    let deps = Arc::new(Deps {
        store,
        ops: factory,
        reach,
        secrets: ctx.secrets(),
        keep_sign_in: crate::cli::keep_sign_in_choice(args.keep_sign_in, args.no_keep_sign_in),
        portal,
    });

    // With -Device each session prompts on its own: one at a time, or the codes interleave.
    let jobs = match args.exchange_auth {
        ExchangeAuthMode::Device => 1,
        ExchangeAuthMode::Token => args.jobs as usize,
    };
    let started = Instant::now();
    let mut latest: BTreeMap<Uuid, TenantOutcome> = BTreeMap::new();
    let mut pending = ids.clone();
    let mut rounds = 0u32;
    let mut interrupted = false;
    loop {
        rounds += 1;
        if rounds > 1 && !ui.json() {
            ui.status(ui.dim(format!(
                "Round {rounds}, {} after the first:",
                humanize(started.elapsed())
            )));
        }
        let spinner = ui.spinner(format!(
            "Retrying unified audit logging for {} tenant{}",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" }
        ));
        let outcomes: Vec<TenantOutcome> = futures::stream::iter(pending.clone())
            .map(|id| {
                let deps = deps.clone();
                async move { retry_one(&deps, id).await }
            })
            .buffer_unordered(jobs)
            .collect()
            .await;
        drop(spinner);
        for o in &outcomes {
            if !ui.json() {
                show(ui, o);
            }
            interrupted |= o.result == "interrupted";
            latest.insert(o.tenant_id, o.clone());
        }
        interrupted |= interrupt::requested();
        pending = outcomes
            .iter()
            .filter(|o| o.result == "waiting")
            .map(|o| o.tenant_id)
            .collect();
        if interrupted || !args.watch || pending.is_empty() {
            break;
        }
        if started.elapsed() + args.interval > args.max_wait {
            ui.warning(format!(
                "Stopped watching: the next round would pass --max-wait {}.",
                humanize(args.max_wait)
            ));
            break;
        }
        if !wait_round(ui, args.interval, pending.len()).await {
            interrupted = true;
            break;
        }
    }

    let tenants: Vec<TenantOutcome> = ids.iter().filter_map(|id| latest.remove(id)).collect();
    let count = |r: &str| tenants.iter().filter(|o| o.result == r).count();
    let report = Report {
        enabled: count("enabled"),
        waiting: count("waiting"),
        errors: count("error"),
        rounds,
        interrupted,
        tenants,
    };
    if ui.json() {
        ui.write_json(&report)?;
    }
    if interrupted {
        // The one line every command ends with on Ctrl-C (each tenant is updated or untouched).
        return Err(CommandError::interrupted());
    }
    // Microsoft's delay, once per run rather than once per tenant.
    let all_on = report.enabled == report.tenants.len();
    if !ui.json() && report.enabled > 0 && !all_on {
        ui.status(format!(
            "Unified audit logging is now on for {} tenant{}; {UAL_EVENTS_DELAY}.",
            report.enabled,
            if report.enabled == 1 { "" } else { "s" }
        ));
    }
    if report.errors > 0 {
        return Err(failed(format!(
            "{} of {} tenant{} could not be retried",
            report.errors,
            report.tenants.len(),
            if report.tenants.len() == 1 { "" } else { "s" }
        ))
        .hint("Fix the errors above, then run `hal-onboard ual retry` again."));
    }
    if report.waiting > 0 {
        let names: Vec<&str> = report
            .tenants
            .iter()
            .filter(|o| o.result == "waiting")
            .map(|o| o.domain.as_str())
            .collect();
        return Err(waiting(format!(
            "{} tenant{} still waiting on Microsoft to propagate the organization's customization",
            names.len(),
            if names.len() == 1 { " is" } else { "s are" }
        ))
        .hint(format!(
            "Run `hal-onboard ual retry --watch {}` to keep trying (propagation can take hours).",
            names.join(" ")
        )));
    }
    if !ui.json() && all_on {
        ui.success(format!(
            "Unified audit logging is on for every tenant; {UAL_EVENTS_DELAY}."
        ));
    }
    Ok(())
}

/// Sleeps until the next round with a countdown; false on Ctrl-C.
async fn wait_round(ui: &Ui, interval: Duration, waiting: usize) -> bool {
    let spinner = ui.spinner(format!(
        "{waiting} waiting; next check in {}",
        humanize(interval)
    ));
    let until = tokio::time::Instant::now() + interval;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if interrupt::requested() {
            return false;
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        spinner.set_message(format!(
            "{waiting} waiting; next check in {} (Ctrl-C stops; nothing is left half-done)",
            humanize(left)
        ));
        tokio::select! {
            _ = tokio::time::sleep(left.min(Duration::from_secs(1))) => {}
            Ok(()) = &mut ctrl_c => return false,
        }
    }
}

fn show(ui: &Ui, o: &TenantOutcome) {
    let since = o
        .since_hydration_seconds
        .map(|s| {
            format!(
                ", hydrated {} ago",
                humanize(Duration::from_secs(s.max(0) as u64))
            )
        })
        .unwrap_or_default();
    let attempts = format!(
        "{} attempt{}",
        o.attempts,
        if o.attempts == 1 { "" } else { "s" }
    );
    let role = o
        .signed_in_as
        .map(|r| format!(", signed in as {r}"))
        .unwrap_or_default();
    match (o.result, &o.error) {
        ("enabled", _) => ui.success(format!(
            "{}: unified audit logging is on ({attempts}{since}{role}).",
            o.domain
        )),
        ("waiting", _) => ui.status(format!(
            "{} {}: still propagating ({attempts}{since}).",
            ui.yellow("…"),
            o.domain
        )),
        (_, Some(e)) => {
            ui.status(format!("{} {}: {}", ui.red("✘"), o.domain, e.message));
            ui.hint(&e.hint);
        }
        _ => ui.status(format!("{}: interrupted.", o.domain)),
    }
}

async fn retry_one(deps: &Deps, id: Uuid) -> TenantOutcome {
    let store = deps.store.clone();
    let loaded = tokio::task::spawn_blocking(move || store.load())
        .await
        .expect("the store read does not panic");
    let rec = match loaded.map(|d| d.get(id).cloned()) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_outcome_for_id(id, "the tenant was removed from the store meanwhile");
        }
        Err(e) => return error_outcome_for_id(id, &e.to_string()),
    };
    // One run per tenant: a busy tenant is reported and skipped, the others go on.
    let (home, label) = (deps.store.dir().to_path_buf(), rec.display_name.clone());
    let locked = tokio::task::spawn_blocking(move || {
        crate::store::lock::acquire(&home, id, &label, "ual retry")
    })
    .await
    .expect("taking a lock does not panic");
    let _lock = match locked {
        Ok(l) => l,
        Err(e) => {
            let hint = e.hint().unwrap_or_default();
            return outcome(&rec, "error", Some(("busy", e.to_string(), hint)));
        }
    };
    // What another run may have changed before the lock was ours.
    let store = deps.store.clone();
    let rec = match tokio::task::spawn_blocking(move || store.load())
        .await
        .expect("the store read does not panic")
        .map(|d| d.get(id).cloned())
    {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_outcome_for_id(id, "the tenant was removed from the store meanwhile");
        }
        Err(e) => return error_outcome_for_id(id, &e.to_string()),
    };
    // A partner tenant that partner mode cannot reach now: said, and nothing is tried.
    if let Err(e) = deps.reach.partner_for(&rec) {
        return outcome(
            &rec,
            "error",
            Some((e.code(), e.to_string(), e.hints().join(" "))),
        );
    }
    let mut work = rec.clone();
    let mut role = None;
    let result = match deps.ops.ops_for(&rec).await {
        Ok(ops) => {
            let r = step::resume(ops.as_ref(), &mut work, &NoProgress).await;
            role = ops.signed_in_role();
            r
        }
        Err(e) => Err(e),
    };
    if !matches!(result, Err(ExchangeError::Interrupted)) {
        let store = deps.store.clone();
        let (ual, exchange_step) = (work.ual.clone(), work.steps.exchange.clone());
        let keep = deps.keep_sign_in;
        let committed = tokio::task::spawn_blocking(move || {
            store.change(id, |t| {
                t.ual = ual;
                t.steps.exchange = exchange_step;
                if let Some(k) = keep {
                    t.keep_sign_in = k;
                }
                t.clone()
            })
        })
        .await
        .expect("the store write does not panic");
        match committed {
            Err(e) => {
                return outcome(&work, "error", Some(("store", e.to_string(), "Check that the hal-onboard home is writable, then run `hal-onboard ual retry` again.".into())));
            }
            // Nothing pending any more: the sign-in goes (unless --keep-sign-in kept it).
            Ok(Some(now)) => {
                let _ = crate::session::forget_sign_in_if_done(deps.secrets.as_ref(), &now);
            }
            Ok(None) => {}
        }
        // The portal holds the tenant with an older UAL status: tell it (no secret). A failure
        // leaves the record saying so; `list` shows it and `portal submit` resends.
        if let Some(portal) = &deps.portal
            && let Ok(Some(mut now)) = deps.store.load().map(|d| d.get(id).cloned())
            && matches!(
                crate::wizard::steps::portal::send_status(&mut now, portal.as_ref()).await,
                Ok(true)
            )
        {
            let told = now.portal.told.clone();
            let store = deps.store.clone();
            let _ = tokio::task::spawn_blocking(move || store.change(id, |t| t.portal.told = told))
                .await;
        }
    }
    let mut o = match result {
        Ok(ExchangeOutcome::Enabled { .. }) => outcome(&work, "enabled", None),
        Ok(ExchangeOutcome::WaitingPropagation { .. }) => outcome(&work, "waiting", None),
        Err(ExchangeError::Interrupted) => outcome(&rec, "interrupted", None),
        Err(e) => {
            let hint = deps.reach.exchange_hint(&rec, &e);
            outcome(&work, "error", Some((e.code(), e.to_string(), hint)))
        }
    };
    o.signed_in_as = role;
    o
}

fn outcome(
    rec: &TenantRecord,
    result: &'static str,
    error: Option<(&'static str, String, String)>,
) -> TenantOutcome {
    let now = OffsetDateTime::now_utc();
    TenantOutcome {
        tenant_id: rec.tenant_id,
        domain: rec.primary_domain.clone(),
        display_name: rec.display_name.clone(),
        result,
        ual_state: rec.ual.state,
        attempts: rec.ual.attempts,
        hydrated_at: rec.ual.hydrated_at,
        since_hydration_seconds: rec.ual.hydrated_at.map(|h| (now - h).whole_seconds()),
        enabled_at: rec.ual.enabled_at,
        last_attempt_at: rec.ual.last_attempt_at,
        signed_in_as: None,
        error: error.map(|(code, message, hint)| OutcomeError {
            code,
            message,
            hint,
        }),
    }
}

fn error_outcome_for_id(id: Uuid, message: &str) -> TenantOutcome {
    let mut rec = TenantRecord::new(id, &id.to_string(), "", Default::default());
    rec.ual = Default::default();
    outcome(
        &rec,
        "error",
        Some((
            "store",
            message.to_string(),
            "Run `hal-onboard list` to see the tenants.".into(),
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_humane() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("15").unwrap_err().contains("add a unit"));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(humanize(Duration::from_secs(7500)), "2h 05m");
        assert_eq!(humanize(Duration::from_secs(45)), "45s");
    }
}
