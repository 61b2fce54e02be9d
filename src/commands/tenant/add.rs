//! `hal-onboard tenant add <tenant>`: from nothing to a verified, consented app registration.
//!
//! Reads as the story of the command: open the store, sign in, identify the tenant (and stop if
//! it is not the one asked for), show the plan, ask, run the steps, print the record.

use std::path::Path;
use std::sync::Arc;

use clap::Args;

use crate::cli::SignInArgs;
use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, ExitStatus, failed, user_error};
use crate::secrets::SecretStore;
use crate::session::{ExchangeAuthMode, ExchangeDisplay, ExchangeSignIn, Session};
use crate::store::{StepId, TenantRecord};
use crate::tenant::{TenantName, TenantNameError, batch};
use crate::ui::credentials::{MANUAL_ENTRY, SecretView, credentials_table, pending_lines};
use crate::ui::{TenantOutput, Ui, UiExchangeSignIn, UiProgress, UiSignIn, Untrusted, interrupt};
use crate::wizard::steps::portal::PortalStep;
use crate::wizard::{DEFAULT_APP_NAME, Event, Progress, Settings, Wizard, WizardError};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  hal-onboard tenant add contoso.onmicrosoft.com
  hal-onboard tenant add 5f1c2d3e-0000-4000-8000-000000000001 --no-input --yes
  hal-onboard tenant add --from tenants.csv     (CSV rows: tenant, display name)
  hal-onboard tenant add --sandbox              (the built-in sandbox: nothing real is touched)
  hal-onboard tenant add --partner fabrikam.onmicrosoft.com adatum.onmicrosoft.com
  hal-onboard tenant add --partner --all --jobs 8 --yes   (every customer GDAP reaches)

Exit status: 0 onboarded; 1 failed; 2 bad usage; 3 waiting on Microsoft (UAL propagation).
With --partner or --from: 0 every tenant done; 3 the rest only wait on Microsoft; 1 any blocked
or failed.")]
pub struct AddArgs {
    /// The customer's tenant: a verified domain (contoso.onmicrosoft.com) or the tenant GUID.
    /// Asked for when not given. With --partner, any number of customers.
    #[arg(conflicts_with = "from", value_name = "TENANT")]
    pub tenants: Vec<TenantName>,

    /// Partner mode (GDAP): onboard customers through your MSP's own sign-in (`hal-onboard
    /// partner login`, signed in here when none is kept) instead of each customer's Global
    /// Administrator. Name the customers, or pass --all (docs/partner.md).
    #[arg(long, conflicts_with_all = ["from", "name", "adopt", "show_secret", "exchange_auth", "client_id"])]
    pub partner: bool,

    /// With --partner: every customer your GDAP relationships reach; BLOCKED ones are skipped
    /// with the reason (`hal-onboard partner customers` lists them).
    #[arg(long, requires = "partner", conflicts_with = "tenants")]
    pub all: bool,

    /// With --partner: how many customers are onboarded at once (1–16). A `Retry-After` one of
    /// them gets holds back all of them.
    #[arg(long, default_value_t = 4, requires = "partner", value_parser = clap::value_parser!(u8).range(1..=16), value_name = "N")]
    pub jobs: u8,

    /// Your name for this customer, shown by `list` [default: the tenant's own display name].
    #[arg(long, value_name = "NAME", conflicts_with = "from")]
    pub name: Option<String>,

    /// Onboard every tenant in a CSV file (rows: tenant, display name), one after the other,
    /// with a summary at the end. A bad row is reported and skipped.
    #[arg(long, value_name = "FILE")]
    pub from: Option<std::path::PathBuf>,

    /// Print the client secret's value in the final table (it is otherwise masked; it is kept
    /// in the OS keyring until the portal has it).
    #[arg(long)]
    pub show_secret: bool,

    /// Leave out step 1 (Exchange unified audit logging), e.g. when done by hand.
    #[arg(long)]
    pub skip_exchange: bool,

    /// How Exchange Online PowerShell signs in for step 1: `token` (hal-onboard signs in and
    /// hands PowerShell the token) or `device` (`Connect-ExchangeOnline -Device`).
    #[arg(long, value_enum, default_value_t = ExchangeAuthMode::Token, value_name = "MODE")]
    pub exchange_auth: ExchangeAuthMode,

    /// Answer yes: change the tenant as planned without asking, and accept a shorter secret
    /// lifetime when the tenant's policy requires one.
    #[arg(short, long)]
    pub yes: bool,

    /// Onboard without the MSP portal (it is down, or not yours to use): it is neither read
    /// nor sent to, and `hal-onboard portal submit` sends the credentials later. What the portal
    /// may hold is then not known: an app it holds looks foreign, and one of our own is made.
    #[arg(long)]
    pub no_portal: bool,

    #[command(flatten)]
    pub sign_in: SignInArgs,

    /// The app registration's name.
    #[arg(long, default_value = DEFAULT_APP_NAME, value_name = "NAME", value_parser = app_name)]
    pub app_name: String,

    /// Client secret lifetime in months (the portal's maximum is 24).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(1..=24), value_name = "MONTHS")]
    pub secret_months: u8,

    /// Adopt this existing app registration (its appId) although neither this machine nor the
    /// MSP portal holds it. Asks for confirmation at a terminal (--yes never answers it), and
    /// refuses a multi-tenant app or one holding credentials that are not ours.
    #[arg(long, value_name = "APPID", conflicts_with = "from")]
    pub adopt: Option<String>,
}

/// App names travel inside OData `$filter` strings: letters, digits, spaces and `-_.()` only.
fn app_name(s: &str) -> Result<String, String> {
    let ok = !s.trim().is_empty()
        && s.len() <= 120
        && s.chars()
            .all(|c| c.is_alphanumeric() || " -_.()".contains(c));
    if ok {
        Ok(s.trim().to_string())
    } else {
        Err("use 1–120 letters, digits, spaces and - _ . ( )".into())
    }
}

impl AddArgs {
    /// The one tenant named (without --partner, at most one may be).
    pub fn tenant(&self) -> Option<&TenantName> {
        self.tenants.first()
    }
}

pub fn cmd_tenant_add(ctx: &Ctx, args: &AddArgs) -> CommandResult {
    if let Some(file) = &args.from {
        return add_from_file(ctx, args, file);
    }
    if args.tenants.len() > 1 {
        return Err(user_error("`tenant add` onboards one tenant at a time")
            .hint("Name several customers with --partner (GDAP, docs/partner.md), or list them in a CSV file for --from FILE."));
    }
    let ui = &ctx.ui;
    let mut tenant = match args.tenant() {
        Some(t) => t.clone(),
        None => ask_tenant(ctx)?,
    };
    // A typo is caught before the name question and before any device code.
    ctx.tenant_cloud_blocking(&tenant)?;
    let mut name = match (&args.name, args.tenant().is_none()) {
        (Some(n), _) => Some(n.clone()),
        (None, true) => ask_name(ui)?,
        (None, false) => None,
    };
    let mut worst: Option<CommandError> = None;
    let mut onboarded = 0;
    loop {
        match onboard(ctx, args, &tenant, name.as_deref()) {
            Ok(_) => onboarded += 1,
            Err(e) => {
                // Waiting only on UAL's propagation: the app side is done, and Hal's delays apply.
                let waiting = e.status == ExitStatus::Waiting;
                if !ui.interactive() || ui.json() || interrupt::requested() {
                    if waiting && !ui.json() {
                        delays_ahead(ui);
                    }
                    return Err(e);
                }
                if waiting {
                    onboarded += 1;
                }
                // Shown once, here, under the tenant it is about.
                ui.error(&e);
                worst = Some(match worst.take() {
                    Some(w) if w.status == ExitStatus::Failed => w,
                    _ => e,
                });
            }
        }
        // The guide's last line: "Then move to the next tenant and repeat from Step 1."
        if !ui.interactive() || ui.json() {
            break;
        }
        ui.status("");
        if !ui.confirm("Onboard another tenant?", false, "--from FILE")? {
            break;
        }
        tenant = ask_tenant(ctx)?;
        ctx.tenant_cloud_blocking(&tenant)?;
        name = ask_name(ui)?;
    }
    if onboarded > 0 {
        delays_ahead(ui);
    }
    match worst {
        // Errors were shown as they happened; the exit status keeps the worst.
        // Each waiting tenant said so as it ended: the exit status only.
        Some(e) if e.status == ExitStatus::Waiting => Err(CommandError::shown(e.status)),
        Some(e) => Err(
            CommandError::new(e.status, "not every tenant was onboarded")
                .hint("Run `hal-onboard list` to see where each tenant stands."),
        ),
        None => Ok(()),
    }
}

fn ask_tenant(ctx: &Ctx) -> CommandResult<TenantName> {
    let suggested = ctx.sandbox_tenant();
    if let Some(t) = &suggested
        && !ctx.ui.interactive()
    {
        // A sandbox run with nothing to ask: its first tenant.
        return t.parse().map_err(|e: TenantNameError| {
            user_error(e.to_string()).hint(
                "Give the sandbox scenario's first tenant a verified domain (docs/sandbox.md).",
            )
        });
    }
    let hint = suggested
        .map(|t| format!(" (sandbox: {t})"))
        .unwrap_or_default();
    loop {
        let t = ctx.ui.input(
            &format!("Customer tenant: a verified domain or the tenant ID{hint}"),
            "the tenant (e.g. `hal-onboard tenant add contoso.onmicrosoft.com`)",
        )?;
        let t: TenantName = match t.parse() {
            Ok(t) => t,
            Err(e) => {
                ctx.ui.warning(e.to_string());
                continue;
            }
        };
        // A tenant Microsoft does not know is asked for again, not the end of the run.
        match ctx.tenant_cloud_blocking(&t) {
            Ok(_) => return Ok(t),
            Err(e) if e.status == ExitStatus::Usage && !interrupt::requested() => ctx.ui.error(&e),
            Err(e) => return Err(e),
        }
    }
}

fn ask_name(ui: &Ui) -> CommandResult<Option<String>> {
    let n = ui.input_optional("Your name for this customer (Enter: the tenant's own name)")?;
    Ok(Some(n.trim().to_string()).filter(|n| !n.is_empty()))
}

/// One tenant, start to finish: the record as it ends, or why it stopped.
fn onboard(
    ctx: &Ctx,
    args: &AddArgs,
    tenant: &TenantName,
    name: Option<&str>,
) -> CommandResult<TenantRecord> {
    let store = ctx.store()?;
    let known = store
        .load()
        .ok()
        .and_then(|d| d.find(tenant.as_str()).ok().cloned());
    // The cloud Microsoft says the tenant is in (asked once per run; `--cloud` must agree).
    let cloud = ctx.tenant_cloud_blocking(tenant)?.cloud;
    // Only a tenant already finished goes through without the plan's question.
    let finished = known.as_ref().is_some_and(|r| {
        crate::store::status::TenantStatus::of(r, time::OffsetDateTime::now_utc())
            .pending
            .is_empty()
    });
    ctx.ui.answer_needed(
        args.yes || finished,
        &format!("Changing {tenant} as planned"),
        "--yes",
    )?;
    let secrets: Arc<dyn SecretStore> = ctx.secrets();
    // The partner app signs in once for Graph and Exchange (docs/signin.md, "One sign-in").
    let same_client = crate::session::one_sign_in_client(
        &ctx.env,
        args.sign_in.client_id.as_deref(),
        ctx.home_config()?.partner.as_ref(),
    );
    let Session {
        http,
        endpoints,
        graph,
        verifier,
        meter,
        user_cred,
        scale,
    } = Session::open(
        &ctx.env,
        ctx.http()?,
        tenant,
        known.as_ref(),
        &args.sign_in.sign_in(Some(cloud)),
        secrets.clone(),
        Arc::new(
            match two_sign_ins(ctx, args, known.as_ref(), same_client.is_some()) {
                Some(text) => UiSignIn::announcing(&ctx.ui, text),
                None => UiSignIn::new(&ctx.ui),
            },
        ),
    )?;
    let mut settings = Settings::new(
        tenant.clone(),
        endpoints.cloud,
        &endpoints.graph_resource,
        &endpoints.manage_resource,
    );
    settings.endpoints = endpoints.clone();
    settings.app_name = args.app_name.clone();
    settings.secret_months = args.secret_months;
    settings.adopt = args.adopt.clone();
    settings.skip_exchange = args.skip_exchange;
    settings.secret_shown = args.show_secret || table_to_terminal(&ctx.ui);
    settings.verify_wait = settings.verify_wait.mul_f64(scale);
    let progress = Arc::new(UiProgress::new(&ctx.ui, args.yes));
    graph.set_wait_observer(progress.clone());

    // Step 1's Exchange sessions (PowerShell is looked for only when the step will run).
    // Without PowerShell, step 1 reports that for the tenant and the Graph steps still run.
    let mut no_powershell: Option<Arc<dyn crate::microsoft::exchange::OpsFactory>> = None;
    let exchange = if args.skip_exchange {
        None
    } else {
        let how = ExchangeSignIn {
            mode: args.exchange_auth,
            method: args.sign_in.auth,
            cloud: Some(cloud),
            pwsh_timeout: None,
            same_client: same_client.map(|client_id| crate::session::SameClient {
                client_id,
                graph: user_cred.clone(),
            }),
        };
        let display = ExchangeDisplay {
            sign_in: Arc::new(UiExchangeSignIn::new(&ctx.ui)),
            output: TenantOutput::per_tenant(&ctx.ui),
        };
        match crate::session::exchange_factory(
            &ctx.env,
            &how,
            http.clone(),
            || secrets.clone(),
            display,
        ) {
            Ok(f) => Some(f),
            Err(crate::microsoft::exchange::ExchangeError::PwshNotFound { tried }) => {
                ctx.ui.warning(format!(
                    "PowerShell was not found (looked for {}): step 1 (unified audit logging) will not run; the other steps will",
                    tried.join(", ")
                ));
                no_powershell = Some(Arc::new(crate::microsoft::exchange::ops::NoPowerShell {
                    tried,
                }));
                None
            }
            Err(e) => {
                return Err(CommandError::from(e).hint(
                    "Or leave out step 1 with --skip-exchange and turn on audit logging by hand.",
                ));
            }
        }
    };
    // Step 6, when a portal is configured (else the plan says how to configure one).
    // A portal that is configured but unusable (no token, not https) stops here, before any
    // change, like one that cannot be read: --no-portal goes on without it.
    let portal: Option<Box<dyn crate::wizard::steps::Step>> = match ctx.portal_url()?.0 {
        Some(_) if args.no_portal => None,
        Some(url) => {
            let api = ctx.portal(secrets.as_ref()).map_err(|e| {
                e.hint(format!(
                    "Or pass --no-portal to onboard without it now: `hal-onboard tenant add {tenant} --no-portal`, then `hal-onboard portal submit {tenant}`."
                ))
            })?;
            Some(Box::new(PortalStep::new(Arc::new(api), &url)))
        }
        None => None,
    };
    let rt = ctx.runtime()?;
    // `--exchange-auth device` on Windows PowerShell 5.1: said before anyone signs in (the
    // check is the one step 1 makes, asked once per run).
    if let (Some(f), ExchangeAuthMode::Device) = (&exchange, args.exchange_auth)
        && let Err(e @ crate::microsoft::exchange::ExchangeError::NeedsPowerShell7 { .. }) =
            rt.block_on(f.preflight())
    {
        ctx.ui.warning(format!(
            "{e}: step 1 (unified audit logging) will not run; the other steps will"
        ));
    }
    let wizard = Wizard {
        settings,
        dir: &graph,
        verifier: &verifier,
        secrets: secrets.clone(),
        store: &store,
        progress: &*progress,
        meter: meter.clone(),
        exchange: exchange
            .map(|f| f as Arc<dyn crate::microsoft::exchange::OpsFactory>)
            .or(no_powershell)
            .map(|f| {
                Box::new(crate::wizard::steps::exchange::ExchangeStep::new(f))
                    as Box<dyn crate::wizard::steps::Step>
            }),
        portal,
        saved: Default::default(),
    };
    let identify = || {
        rt.block_on(wizard.identify()).map_err(|e| {
            progress.clear();
            wizard_error(e, tenant.as_str())
        })
    };
    let mut id = identify()?;
    // One run per tenant, from before the plan to the end of this tenant's work.
    let label = id
        .record
        .as_ref()
        .map_or(id.display_name.as_str(), |r| r.display_name.as_str());
    let _lock =
        crate::store::lock::acquire(&ctx.home, id.tenant_id, label, "tenant add").map_err(|e| {
            progress.clear();
            CommandError::from(e)
        })?;
    // A run that held the lock meanwhile changed the tenant: look at it again.
    let now_known = store.load()?.get(id.tenant_id).cloned();
    if now_known != id.record {
        id = identify()?;
    }
    let report = rt.block_on(async {
        if let Some(c) = &user_cred {
            // The tenant is the one asked for: keep the sign-in for re-runs.
            if let Err(e) = c.keep_signed_in(id.tenant_id).await {
                progress.event(Event::Warning(format!(
                    "the sign-in is not kept for next time: {e}"
                )));
            }
        }
        wizard.run(id).await
    });
    progress.clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // The portal refused or was down: the credentials are verified and must not be
            // lost, so show where they stand before the error.
            if matches!(
                e,
                WizardError::Step {
                    step: StepId::Portal,
                    ..
                }
            ) && let Ok(doc) = store.load()
                && let Ok(rec) = doc.find(tenant.as_str())
            {
                show_credentials(ctx, args, rec, secrets.as_ref());
            }
            return Err(wizard_error(e, tenant.as_str()));
        }
    };
    // The engine saved the record that says the portal has the secret: now it can go.
    if crate::wizard::steps::portal::is_current(&report.record) {
        let _ =
            crate::wizard::steps::portal::forget_secret(secrets.as_ref(), report.record.tenant_id);
    }
    let stats = report.stats;
    if ctx.ui.verbose() > 0 {
        ctx.ui.status(ctx.ui.dim(format!(
            "Graph and sign-in requests after sign-in: {} in {} round trips ({} writes; retries: {} replication, {} throttling, {} other)",
            stats.requests,
            stats.round_trips,
            stats.writes,
            stats.replication_retries,
            stats.throttle_retries,
            stats.other_retries
        )));
    }
    let mut rec = report.record;
    // The command's own fields (`--name`, `--keep-sign-in`), set on the record as it is now.
    let keep = args.sign_in.keep_sign_in();
    if name.is_some_and(|n| rec.display_name != n) || keep.is_some_and(|k| k != rec.keep_sign_in) {
        let set = |r: &mut TenantRecord| {
            if let Some(n) = name {
                r.display_name = n.to_string();
            }
            if let Some(k) = keep {
                r.keep_sign_in = k;
            }
        };
        set(&mut rec);
        if let Some(now) = store.change(rec.tenant_id, |r| {
            set(r);
            r.clone()
        })? {
            rec = now;
        }
    }
    // The Global Administrator's sign-in is kept only while this tenant has work pending.
    if let Err(e) = crate::session::forget_sign_in_if_done(secrets.as_ref(), &rec) {
        ctx.ui.warning(format!(
            "the sign-in could not be forgotten in the keyring: {e}"
        ));
    }
    if rec.step(StepId::Verify).is_done() {
        ctx.ui.success(format!(
            "{} ({}) is onboarded: app {} (appId {}), credentials verified{}.",
            Untrusted(&rec.display_name),
            Untrusted(&rec.primary_domain),
            rec.app
                .as_ref()
                .map(|a| a.display_name.as_str())
                .unwrap_or("?"),
            rec.app.as_ref().map(|a| a.app_id.as_str()).unwrap_or("?"),
            rec.secret
                .as_ref()
                .map(|s| format!(", secret expires {}", s.expires_at.date()))
                .unwrap_or_default()
        ));
        show_credentials(ctx, args, &rec, secrets.as_ref());
    }
    if ctx.ui.json() {
        ctx.ui.write_json(&rec)?;
    }
    // Step 1 could not start on this machine (PowerShell, its module): everything else is
    // done, and the reason names the fix.
    if rec.steps.exchange.status == crate::store::StepStatus::Failed {
        return Err(failed(format!(
            "{} is onboarded except unified audit logging: {}",
            rec.primary_domain,
            rec.steps
                .exchange
                .last_error
                .as_deref()
                .unwrap_or("step 1 could not run")
        ))
        .hint(format!(
            "Once that is fixed, run `hal-onboard ual retry {}` to turn it on.",
            rec.primary_domain
        )));
    }
    if rec.steps.exchange.status == crate::store::StepStatus::Waiting {
        return Err(CommandError::ual_waiting());
    }
    Ok(rec)
}

/// Microsoft Graph and Exchange Online PowerShell are different Microsoft clients, so a run
/// that will turn on audit logging signs the technician in twice: said before the first code,
/// not discovered at the second.
fn two_sign_ins(
    ctx: &Ctx,
    args: &AddArgs,
    known: Option<&TenantRecord>,
    one_client: bool,
) -> Option<String> {
    let exchange_done = known.is_some_and(|r| r.step(StepId::Exchange).is_done());
    let exchange_signs_in = match args.exchange_auth {
        ExchangeAuthMode::Token => ctx.env.exchange_token.is_none(),
        ExchangeAuthMode::Device => true,
    };
    let graph_signs_in = args.sign_in.auth != crate::microsoft::signin::AuthMethod::AzureCli;
    let wanted = !args.skip_exchange && !exchange_done && exchange_signs_in && graph_signs_in;
    if wanted && one_client && args.exchange_auth == ExchangeAuthMode::Token {
        return Some("You will sign in once: the partner app's sign-in serves both Microsoft Graph (the app registration and its consent) and Exchange Online (unified audit logging).".to_string());
    }
    wanted.then(|| {
        "You will sign in twice: first to Microsoft Graph (the app registration and its consent), then to Exchange Online (unified audit logging), because they are different Microsoft clients. Use the same administrator both times.".to_string()
    })
}

/// Whether the credentials table goes to a terminal (stdout, or stderr with --json).
fn table_to_terminal(ui: &Ui) -> bool {
    use std::io::IsTerminal;
    if ui.json() {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    }
}

/// The guide's "Record these credentials" table and what is still to do. Without a keyring
/// and without the portal having it, the secret is shown once here: it exists nowhere else.
fn show_credentials(ctx: &Ctx, args: &AddArgs, rec: &TenantRecord, secrets: &dyn SecretStore) {
    let ui = &ctx.ui;
    let value = secrets
        .get(&crate::secrets::account::client_secret(rec.tenant_id))
        .ok()
        .flatten();
    let with_portal = crate::wizard::steps::portal::is_current(rec);
    // Unasked, a secret is only ever shown to a person: never into a redirected stdout (or,
    // with --json, stderr), where it would land in a file or a log.
    let to_terminal = table_to_terminal(ui);
    let only_here = value.is_some() && !with_portal && !secrets.is_persistent();
    let reveal_once = only_here && to_terminal;
    let view = match &value {
        _ if with_portal => SecretView::WithPortal,
        Some(v) if args.show_secret || reveal_once => SecretView::Shown(v.expose()),
        Some(_) if only_here => SecretView::Masked {
            kept: "(not shown: the output is not a terminal; --show-secret prints it)",
        },
        Some(_) => SecretView::Masked {
            kept: "(in the OS keyring until the portal has it; --show-secret shows it)",
        },
        None => SecretView::NotHere,
    };
    let table = credentials_table(ui, rec, view);
    // With --json, stdout is the record; the table (and a secret shown once) goes to stderr.
    if ui.json() {
        if reveal_once || args.show_secret {
            ui.status(table);
        }
    } else {
        ui.out(table);
    }
    if reveal_once || (only_here && args.show_secret) {
        ui.warning(MANUAL_ENTRY);
    } else if only_here {
        ui.warning(
            "the client secret was not printed, because the output is not a terminal, and it is kept nowhere else (no OS keyring, and the portal does not have it).",
        );
        ui.hint(format!(
            "Run `hal-onboard secret rotate {}` to make a new one, with --show-secret on `tenant add` next time to print a secret into a pipe or file.",
            Untrusted(&rec.primary_domain)
        ));
    }
    let pending = pending_lines(rec);
    if !pending.is_empty() {
        ui.status("Still to do:");
        for l in pending {
            ui.status(format!("  • {l}"));
        }
    }
}

/// A path as one shell word in a hint the technician copies.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The two delays Hal will see after a run, said once (Microsoft's own figures): so that an
/// empty first poll is not taken for a fault.
fn delays_ahead(ui: &Ui) {
    ui.status("");
    ui.status(DELAYS_AHEAD);
}

pub const DELAYS_AHEAD: &str = "What Hal will see next: audit events appear up to 60 minutes after unified audit logging is enabled, and the Office 365 Management Activity API has content up to 12 hours after Hal's subscription starts. An empty first poll is expected, not a fault.";

/// The wizard's error (mapped in `error`), and how to resume this tenant when running the
/// same command again is the way on.
fn wizard_error(e: WizardError, tenant: &str) -> CommandError {
    let resume = !matches!(
        e,
        WizardError::WrongTenant { .. }
            | WizardError::NotAdmin { .. }
            | WizardError::Declined
            | WizardError::NeedsAnswer { .. }
            | WizardError::AppNameTaken { .. }
            | WizardError::AdoptNotFound { .. }
            | WizardError::AdoptRefused { .. }
            | WizardError::AdoptNeedsTerminal { .. }
            | WizardError::Graph { .. }
            | WizardError::NotVerified { .. }
            | WizardError::SecretLost
            | WizardError::PortalUnreadable { .. }
            | WizardError::Step { hint: Some(_), .. }
    );
    let c = CommandError::from(e);
    if resume {
        c.hint(format!(
            "Run `hal-onboard tenant add {tenant}` again to resume."
        ))
    } else {
        c
    }
}

/// `tenant add --from FILE`: each tenant in turn, each sign-in prompted as it comes, a
/// summary at the end. Exit status: 1 if any row failed or was unusable, else 3 if any tenant
/// waits on Microsoft, else 0.
fn add_from_file(ctx: &Ctx, args: &AddArgs, file: &Path) -> CommandResult {
    let ui = &ctx.ui;
    let (rows, bad) = batch::read(file).map_err(|e| {
        user_error(format!("cannot read {}", file.display()))
            .with_source(e)
            .hint("Give a CSV file with one tenant per row: tenant, display name.")
    })?;
    for b in &bad {
        ui.warning(format!("{}:{}: skipped: {}", file.display(), b.line, b.why));
    }
    if rows.is_empty() {
        return Err(
            user_error(format!("{} lists no tenant to onboard", file.display()))
                .hint("Each row: a verified domain or tenant ID, then optionally a display name."),
        );
    }
    let mut results: Vec<(String, CommandResult<TenantRecord>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        ui.status("");
        ui.status(ui.bold(format!(
            "── Tenant {} of {}: {}",
            i + 1,
            rows.len(),
            row.tenant
        )));
        let r = onboard(ctx, args, &row.tenant, row.display_name.as_deref());
        // A waiting tenant is in the summary, and the run ends saying what finishes them.
        if let Err(e) = &r
            && e.status != ExitStatus::Waiting
        {
            ui.error(e);
        }
        results.push((row.tenant.to_string(), r));
    }

    let mut failures = bad.len();
    let mut waits = 0;
    let mut out = Vec::new();
    ui.status("");
    ui.status(ui.bold("Summary"));
    for (tenant, r) in &results {
        let (result, detail) = match r {
            Ok(_) => ("onboarded", String::new()),
            Err(e) if e.status == ExitStatus::Waiting => {
                waits += 1;
                (
                    "waiting",
                    "unified audit logging is propagating".to_string(),
                )
            }
            Err(e) => {
                failures += 1;
                ("failed", e.message.clone())
            }
        };
        ui.status(format!("  {tenant:<40} {result:<10} {}", ui.dim(&detail)));
        out.push(serde_json::json!({"tenant": tenant, "result": result, "message": detail}));
    }
    for b in &bad {
        ui.status(format!(
            "  {:<40} {:<10} {}",
            format!("line {}", b.line),
            "skipped",
            ui.dim(&b.why)
        ));
        out.push(serde_json::json!({"line": b.line, "result": "skipped", "message": b.why}));
    }
    if results.iter().any(|(_, r)| r.is_ok()) {
        delays_ahead(ui);
    }
    if ui.json() {
        ui.write_json(&out)?;
    }
    if failures > 0 {
        Err(failed(format!(
            "{failures} of {} rows did not finish",
            results.len() + bad.len()
        ))
        .hint(format!(
            "Fix what each error says, then run `hal-onboard tenant add --from {}` again (with the same options): finished tenants are skipped quickly.",
            shell_word(&file.display().to_string())
        )))
    } else if waits > 0 {
        Err(CommandError::ual_waiting())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn a_path_in_a_hint_is_one_shell_word() {
        assert_eq!(shell_word("/tmp/tenants.csv"), "/tmp/tenants.csv");
        assert_eq!(shell_word("my tenants.csv"), "'my tenants.csv'");
        assert_eq!(shell_word("it's.csv"), "'it'\\''s.csv'");
    }
}
