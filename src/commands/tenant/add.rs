//! `hal-onboard tenant add <tenant>`: from nothing to a verified, consented app registration.
//!
//! Reads as the story of the command: open the store, sign in, identify the tenant (and stop if
//! it is not the one asked for), show the plan, ask, run the steps, print the record.

use std::sync::{Arc, Mutex};

use clap::Args;
use url::Url;

use super::session::{Session, SignInArgs};
use super::summary::{MANUAL_ENTRY, SecretView, credentials_table, pending_lines};
use crate::commands::Ctx;
use crate::commands::helpers::store_error;
use crate::error::{CommandError, CommandResult, ExitStatus, failed, user_error};
use crate::microsoft::signin::{self, AuthMethod, DeviceCodePrompt, SignInObserver};
use crate::secrets::SecretStore;
use crate::store::{StepId, TenantRecord};
use crate::ui::{Spinner, Ui};
use crate::wizard::steps::portal::PortalStep;
use crate::wizard::{
    Answer, DEFAULT_APP_NAME, Event, PlanState, Progress, Question, Settings, Wizard, WizardError,
    licence_note,
};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  hal-onboard tenant add contoso.onmicrosoft.com
  hal-onboard tenant add 5f1c2d3e-0000-4000-8000-000000000001 --no-input --yes
  hal-onboard tenant add --from tenants.csv     (CSV rows: tenant, display name)
  hal-onboard tenant add --sandbox              (the built-in sandbox: nothing real is touched)

Exit status: 0 onboarded; 1 failed; 2 bad usage; 3 waiting on Microsoft (UAL propagation).")]
pub struct AddArgs {
    /// The customer's tenant: a verified domain (contoso.onmicrosoft.com) or the tenant GUID.
    /// Asked for when not given.
    #[arg(conflicts_with = "from")]
    pub tenant: Option<String>,

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
    #[arg(long, value_enum, default_value_t = crate::commands::ual::ExchangeAuthMode::Token, value_name = "MODE")]
    pub exchange_auth: crate::commands::ual::ExchangeAuthMode,

    /// Answer yes: change the tenant as planned without asking, and accept a shorter secret
    /// lifetime when the tenant's policy requires one.
    #[arg(short, long)]
    pub yes: bool,

    /// How to sign in: device code (default, works over SSH), a browser on this machine (for
    /// Conditional Access that blocks device codes), or the Azure CLI's `az login`.
    #[arg(long, value_enum, default_value_t = AuthMethod::DeviceCode, value_name = "METHOD")]
    pub auth: AuthMethod,

    /// The public client to sign in with [default: Microsoft Graph Command Line Tools,
    /// or HAL_ONBOARD_CLIENT_ID].
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,

    /// The app registration's name.
    #[arg(long, default_value = DEFAULT_APP_NAME, value_name = "NAME", value_parser = app_name)]
    pub app_name: String,

    /// Client secret lifetime in months (the portal's maximum is 24).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(1..=24), value_name = "MONTHS")]
    pub secret_months: u8,
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

pub fn cmd_tenant_add(ctx: &Ctx, args: &AddArgs) -> CommandResult {
    if let Some(file) = &args.from {
        return super::batch::run(ctx, args, file);
    }
    let ui = &ctx.ui;
    let mut asked = args.tenant.is_none();
    let mut tenant = match &args.tenant {
        Some(t) => t.clone(),
        None => ask_tenant(ctx)?,
    };
    let mut name = match (&args.name, asked) {
        (Some(n), _) => Some(n.clone()),
        (None, true) => ask_name(ui)?,
        (None, false) => None,
    };
    let mut worst: Option<CommandError> = None;
    loop {
        match onboard(ctx, args, &tenant, name.as_deref()) {
            Ok(_) => {}
            Err(e) => {
                if !ui.interactive() || ui.json() {
                    return Err(e);
                }
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
        name = ask_name(ui)?;
        asked = true;
    }
    let _ = asked;
    match worst {
        // Errors were shown as they happened; the exit status keeps the worst.
        Some(e) if e.status == ExitStatus::Waiting => Err(CommandError::new(
            e.status,
            "unified audit logging still waits on Microsoft for a tenant",
        )
        .hint("Run `hal-onboard ual retry --watch` to finish it; `hal-onboard list` shows where each tenant stands.")),
        Some(e) => Err(
            CommandError::new(e.status, "not every tenant was onboarded")
                .hint("Run `hal-onboard list` to see where each tenant stands."),
        ),
        None => Ok(()),
    }
}

fn ask_tenant(ctx: &Ctx) -> CommandResult<String> {
    let suggested = ctx.sandbox_tenant();
    if let Some(t) = &suggested
        && !ctx.ui.interactive()
    {
        // A sandbox run with nothing to ask: its first tenant.
        return Ok(t.clone());
    }
    let hint = suggested
        .map(|t| format!(" (sandbox: {t})"))
        .unwrap_or_default();
    loop {
        let t = ctx.ui.input(
            &format!("Customer tenant: a verified domain or the tenant ID{hint}"),
            "the tenant (e.g. `hal-onboard tenant add contoso.onmicrosoft.com`)",
        )?;
        let t = t.trim().to_string();
        if super::batch::is_tenant_name(&t) {
            return Ok(t);
        }
        ctx.ui.warning(format!(
            "{t:?} is neither a domain (contoso.onmicrosoft.com) nor a tenant ID (GUID)."
        ));
    }
}

fn ask_name(ui: &Ui) -> CommandResult<Option<String>> {
    let n = ui.input_optional("Your name for this customer (Enter: the tenant's own name)")?;
    Ok(Some(n.trim().to_string()).filter(|n| !n.is_empty()))
}

/// One tenant, start to finish: the record as it ends, or why it stopped.
pub(crate) fn onboard(
    ctx: &Ctx,
    args: &AddArgs,
    tenant: &str,
    name: Option<&str>,
) -> CommandResult<TenantRecord> {
    let tenant = tenant.trim().to_string();
    if !super::batch::is_tenant_name(&tenant) {
        return Err(user_error(format!("{tenant:?} is not a tenant name"))
            .hint("Pass a verified domain such as contoso.onmicrosoft.com, or the tenant GUID."));
    }
    let store = ctx.store()?;
    let known = store
        .load()
        .ok()
        .and_then(|d| d.find(&tenant).ok().cloned());
    let cloud = ctx
        .global
        .cloud
        .or(known.as_ref().map(|r| r.cloud))
        .unwrap_or_default();
    let secrets: Arc<dyn SecretStore> = ctx.secrets();
    let observer = Arc::new(UiSignIn::new(&ctx.ui));
    let how = SignInArgs {
        auth: args.auth,
        client_id: args.client_id.clone(),
    };
    let Session {
        http,
        endpoints,
        graph,
        verifier,
        meter,
        user_cred,
        scale,
        ..
    } = Session::open(
        ctx,
        &tenant,
        known.as_ref(),
        &how,
        secrets.clone(),
        observer,
    )?;
    let mut settings = Settings::new(
        &tenant,
        cloud,
        &endpoints.graph_resource,
        &endpoints.manage_resource,
    );
    settings.app_name = args.app_name.clone();
    settings.secret_months = args.secret_months;
    settings.skip_exchange = args.skip_exchange;
    settings.verify_wait = settings.verify_wait.mul_f64(scale);
    let progress = UiProgress::new(&ctx.ui, args.yes);

    // Step 1's Exchange sessions (PowerShell is looked for only when the step will run).
    let exchange = if args.skip_exchange {
        None
    } else {
        Some(crate::commands::ual::exchange_factory(
            ctx,
            args.exchange_auth,
            Some(secrets.clone()),
            http.clone(),
            None,
            args.auth,
        )?)
    };
    // Step 6, when a portal is configured (else the plan says how to configure one).
    let portal: Option<Box<dyn crate::wizard::steps::Step>> =
        match (ctx.portal_url()?.0, ctx.portal(secrets.as_ref())) {
            (Some(url), Ok(api)) => Some(Box::new(PortalStep::new(Arc::new(api), &url))),
            _ => None,
        };
    let rt = ctx.runtime()?;
    ctx.exit_on_ctrl_c(&rt);
    let report = rt.block_on(async {
        let wizard = Wizard {
            settings,
            dir: &graph,
            verifier: &verifier,
            secrets: secrets.clone(),
            store: &store,
            progress: &progress,
            meter: meter.clone(),
            exchange: exchange.map(|f| {
                Box::new(crate::wizard::steps::exchange::ExchangeStep::new(f))
                    as Box<dyn crate::wizard::steps::Step>
            }),
            portal,
        };
        let id = wizard.identify().await?;
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
                && let Ok(rec) = doc.find(&tenant)
            {
                show_credentials(ctx, args, rec, secrets.as_ref());
            }
            return Err(wizard_error(e, &tenant));
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
    if let Some(n) = name
        && rec.display_name != n
    {
        rec.display_name = n.to_string();
        store
            .update(|doc| doc.upsert(rec.clone()))
            .map_err(store_error)?;
    }
    if rec.step(StepId::Verify).is_done() {
        ctx.ui.success(format!(
            "{} ({}) is onboarded: app {} (appId {}), credentials verified{}.",
            rec.display_name,
            rec.primary_domain,
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
    if rec.steps.exchange.status == crate::store::StepStatus::Waiting {
        return Err(crate::error::waiting(format!(
            "{} is onboarded except unified audit logging, which waits on Microsoft (the organization's customization is still propagating)",
            rec.primary_domain
        ))
        .hint(format!(
            "Run `hal-onboard ual retry {}` in 15–30 minutes, or `hal-onboard ual retry --watch` to keep trying.",
            rec.primary_domain
        )));
    }
    Ok(rec)
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
    let reveal_once = value.is_some() && !with_portal && !secrets.is_persistent();
    let view = match &value {
        _ if with_portal => SecretView::WithPortal,
        Some(v) if args.show_secret || reveal_once => SecretView::Shown(v),
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
    if reveal_once {
        ui.warning(MANUAL_ENTRY);
    }
    let pending = pending_lines(rec);
    if !pending.is_empty() {
        ui.status("Still to do:");
        for l in pending {
            ui.status(format!("  • {l}"));
        }
    }
}

pub(crate) fn sign_in_failed(e: &signin::SignInError) -> CommandError {
    let mut c = failed(format!("the sign-in failed: {e}"));
    if let Some(h) = e.hint() {
        c = c.hint(h);
    }
    c
}

/// One sentence, its cause, the next action.
pub(crate) fn wizard_error(e: WizardError, tenant: &str) -> CommandError {
    let status = if e.is_waiting() {
        ExitStatus::Waiting
    } else if e.is_usage() {
        ExitStatus::Usage
    } else {
        ExitStatus::Failed
    };
    let hint = e.hint();
    // A sign-in failure reads better as itself.
    let sign_in = match &e {
        WizardError::Graph { source, .. } => source.sign_in().map(|s| s.to_string()),
        _ => None,
    };
    let mut c = CommandError::new(status, sign_in.clone().unwrap_or_else(|| e.to_string()));
    let resumable = !matches!(
        e,
        WizardError::WrongTenant { .. }
            | WizardError::NotAdmin { .. }
            | WizardError::Declined
            | WizardError::NeedsAnswer { .. }
            | WizardError::AppNameTaken { .. }
    );
    if let Some(src) = std::error::Error::source(&e)
        && sign_in.is_none()
    {
        c = c.with_source(src.to_string());
    }
    if let Some(h) = hint {
        c = c.hint(h);
    }
    if resumable
        && !matches!(
            e,
            WizardError::Graph { .. }
                | WizardError::NotVerified { .. }
                | WizardError::SecretLost
                | WizardError::Step { hint: Some(_), .. }
        )
    {
        c = c.hint(format!(
            "Run `hal-onboard tenant add {tenant}` again to resume."
        ));
    }
    c
}

/// Shows the sign-in: the code and URL prominently on stderr, a spinner while waiting.
pub(crate) struct UiSignIn {
    ui: Ui,
    spinner: Mutex<Option<Spinner>>,
}

impl UiSignIn {
    pub(crate) fn new(ui: &Ui) -> UiSignIn {
        UiSignIn {
            ui: ui.clone(),
            spinner: Mutex::new(None),
        }
    }
}

impl SignInObserver for UiSignIn {
    fn device_code(&self, p: &DeviceCodePrompt) {
        let ui = &self.ui;
        ui.status("");
        ui.status(format!(
            "To sign in to the customer's tenant, open {} and enter the code {}",
            ui.bold(&p.verification_uri),
            ui.bold(ui.yellow(&p.user_code))
        ));
        ui.status(ui.dim(format!(
            "Sign in as a Global Administrator of that tenant. The code expires at {} UTC.",
            p.expires_at.time().truncate_to_second()
        )));
        ui.status("");
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for you to sign in"));
    }

    fn browser_url(&self, url: &Url) -> bool {
        let ui = &self.ui;
        ui.status("To sign in, open this address in a browser on this machine:");
        ui.status(format!("  {}", ui.bold(url.as_str())));
        let opened = browser_available() && open_browser(url);
        if opened {
            ui.status(ui.dim("(a browser was opened for you)"));
        }
        *self.spinner.lock().unwrap() = Some(ui.spinner("Waiting for the browser sign-in"));
        opened
    }

    fn signed_in(&self, user: Option<&str>) {
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish();
        }
        self.ui.success(format!(
            "Signed in{}",
            user.map(|u| format!(" as {u}")).unwrap_or_default()
        ));
    }
}

/// A browser is obviously there: a desktop session that is not over SSH.
fn browser_available() -> bool {
    if std::env::var_os("SSH_CONNECTION").is_some() || std::env::var_os("SSH_TTY").is_some() {
        return false;
    }
    if cfg!(target_os = "macos") || cfg!(windows) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

fn open_browser(url: &Url) -> bool {
    let (cmd, pre): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    std::process::Command::new(cmd)
        .args(pre)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The wizard's progress on the terminal.
pub(crate) struct UiProgress {
    ui: Ui,
    yes: bool,
    spinner: Mutex<Option<Spinner>>,
}

impl UiProgress {
    pub(crate) fn new(ui: &Ui, yes: bool) -> UiProgress {
        UiProgress {
            ui: ui.clone(),
            yes,
            spinner: Mutex::new(None),
        }
    }

    pub(crate) fn clear(&self) {
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish();
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
                    ui.bold(&display_name),
                    default_domain,
                    user.map(|u| format!(", signed in as {u}"))
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
                    let head = format!("  {}. {}", n + 1, item.title);
                    match &item.state {
                        PlanState::Done => ui.status(format!("{head} — {}", ui.green("done"))),
                        PlanState::Skipped(why) => {
                            ui.status(format!("{head} — {}", ui.dim(format!("skipped ({why})"))))
                        }
                        PlanState::Later(why) => {
                            ui.status(format!("{head} — {}", ui.dim(format!("later: {why}"))))
                        }
                        PlanState::ToDo(changes) => {
                            ui.status(format!("{head} — {}", ui.yellow("to do")));
                            for c in changes {
                                ui.status(format!("       • {c}"));
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
                ui.success(format!("{}: {summary}", step.title()));
            }
            Event::StepSkipped { step, why } => {
                ui.status(format!("- {}: skipped ({why})", step.title()));
            }
            Event::Warning(w) => {
                let sp = self.spinner.lock().unwrap();
                match sp.as_ref() {
                    Some(s) => s.suspend(|| ui.warning(&w)),
                    None => ui.warning(&w),
                }
            }
            Event::Info(i) => ui.status(i),
            Event::Waiting {
                what,
                attempt,
                of,
                next_in,
            } => {
                let line = format!(
                    "Waiting for {what}: attempt {attempt}/{of}, next try in {} s",
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
        if self.yes {
            return Answer::Yes;
        }
        if !self.ui.interactive() {
            return Answer::CannotAsk;
        }
        let prompt = match q {
            Question::Proceed {
                display_name,
                default_domain,
            } => format!("Change {display_name} ({default_domain}) as planned?"),
            Question::ShorterSecret {
                asked_months,
                max_days,
            } => format!(
                "This tenant's app management policy refuses a {asked_months}-month secret; create one for {max_days} days (the longest it allows) instead?"
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
