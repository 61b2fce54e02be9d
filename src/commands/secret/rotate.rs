//! `hal-onboard secret rotate TENANT`: a new client secret without a moment where Hal has none.
//!
//! Reads as the story of the command: find the tenant, make sure the portal can take the new
//! secret, sign in, check it is the recorded tenant, show what will change, ask, rotate
//! (`wizard::rotate`), report. A portal failure keeps the old secret on the app; running the
//! command again resumes (docs/user-guide.md, "Rotating a client secret").

use std::sync::Arc;

use clap::Args;
use serde_json::json;

use crate::cli::SignInArgs;
use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, failed, user_error};
use crate::partner::reach::Reach;
use crate::portal::{PortalApi, PortalError, SubmitOutcome};
use crate::store::TenantRecord;
use crate::tenant::TenantName;
use crate::ui::{UiProgress, UiSignIn};
use crate::wizard::rotate::{self, PortalResult, Rotation, SecretRef};
use crate::wizard::steps::portal::PortalStepError;
use crate::wizard::{Answer, Event, Progress, Question, Settings, Wizard, WizardError};

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The tenant, by GUID, domain or display name (as `hal-onboard list` shows it).
    pub tenant: String,

    /// Answer yes: change the tenant as shown without asking, and accept a shorter secret
    /// lifetime when the tenant's policy requires one.
    #[arg(short, long)]
    pub yes: bool,

    /// The new secret's lifetime in months (the portal's maximum is 24).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u8).range(1..=24), value_name = "MONTHS")]
    pub secret_months: u8,

    /// Add and verify the new secret without sending it to the MSP portal. The old secret is
    /// then kept (Hal keeps using it); run `secret rotate` again with a portal to finish.
    #[arg(long)]
    pub no_portal: bool,

    /// Sign in as the customer's own administrator even when the tenant was onboarded through
    /// partner mode (`via: partner` in `list --json`), e.g. once its GDAP relationship ended.
    #[arg(long)]
    pub direct: bool,

    #[command(flatten)]
    pub sign_in: SignInArgs,
}

pub fn cmd_secret_rotate(ctx: &Ctx, args: &RotateArgs) -> CommandResult {
    let ui = &ctx.ui;
    let store = ctx.store()?;
    let doc = store.load()?;
    let known = doc.find(&args.tenant)?.clone();
    let name = known.primary_domain.clone();
    // One run per tenant, for the whole rotation.
    let _lock = crate::store::lock::acquire(
        &ctx.home,
        known.tenant_id,
        &known.display_name,
        "secret rotate",
    )?;
    let secrets = ctx.secrets();
    // Rotation never shows a secret: with --no-portal and no keyring the new one would be kept
    // nowhere, a credential on the app that nobody holds. Refused before anything changes.
    if args.no_portal && !secrets.is_persistent() {
        return Err(user_error(
            "secret rotate --no-portal needs an OS keyring: the new client secret would be kept nowhere (it is never shown, and the portal does not get it)",
        )
        .hint(format!(
            "Nothing was changed. Run it on a machine with an OS keyring (`hal-onboard doctor` checks it), or without --no-portal once the portal is configured: `hal-onboard secret rotate {name}`."
        )));
    }
    let portal = if args.no_portal {
        None
    } else {
        Some(ctx.portal(secrets.as_ref()).map_err(|e| {
            e.hint(format!(
                "Or pass --no-portal to add and verify the new secret now while Hal keeps the old one: `hal-onboard secret rotate {name} --no-portal`."
            ))
        })?)
    };

    ui.answer_needed(
        args.yes,
        &format!("Rotating the client secret of {name}"),
        "--yes",
    )?;
    // Sign in to the recorded tenant by its GUID: a sign-in anywhere else stops the command.
    let tenant = TenantName::from(known.tenant_id);
    let rt = ctx.runtime()?;
    let cloud = rt.block_on(ctx.tenant_cloud(&tenant))?.cloud;
    // A record from before its cloud was known (GCC recorded as global) is corrected first:
    // the portal is told the record's cloud.
    let known = if known.cloud != cloud {
        let id = known.tenant_id;
        store.update(|d| {
            if let Some(r) = d.tenants.iter_mut().find(|r| r.tenant_id == id) {
                r.cloud = cloud;
            }
        })?;
        TenantRecord { cloud, ..known }
    } else {
        known
    };
    // As the customer's admin, or through the partner sign-in for a partner-onboarded tenant.
    let reach = rt.block_on(Reach::open(
        &[&known],
        args.direct,
        ctx.partner_open(args.sign_in.auth)?,
    ));
    let session = reach.graph_session(
        &ctx.env,
        ctx.http()?,
        &known,
        &args.sign_in.sign_in(Some(cloud)),
        secrets.clone(),
        Arc::new(UiSignIn::new(ui)),
    )?;
    let endpoints = &session.endpoints;
    let mut settings = Settings::new(
        tenant.clone(),
        endpoints.cloud,
        &endpoints.graph_resource,
        &endpoints.manage_resource,
    );
    settings.endpoints = endpoints.clone();
    if let Some(a) = &known.app {
        settings.app_name = a.display_name.clone();
    }
    settings.secret_months = args.secret_months;
    settings.verify_wait = settings.verify_wait.mul_f64(session.scale);
    let progress = std::sync::Arc::new(UiProgress::new(ui, args.yes));
    session.graph.set_wait_observer(progress.clone());

    let result = rt.block_on(async {
        let wizard = Wizard {
            settings,
            dir: &session.graph,
            verifier: &session.verifier,
            secrets: secrets.clone(),
            store: &store,
            progress: &*progress,
            meter: session.meter.clone(),
            exchange: None,
            portal: None,
            saved: Default::default(),
        };
        let id = wizard.identify().await?;
        if let Some(c) = &session.user_cred
            && let Err(e) = c.keep_signed_in(id.tenant_id).await
        {
            progress.event(Event::Warning(format!(
                "the sign-in is not kept for next time: {e}"
            )));
        }
        let (record, app) = Wizard::onboarded(&id)?;
        let present = wizard.secret_present(record.tenant_id).await?;
        let plan = rotate::plan(&record, &app, present, args.secret_months, portal.is_some());
        progress.event(Event::Tenant {
            display_name: id.display_name.clone(),
            default_domain: id.default_domain.clone(),
            tenant_id: id.tenant_id,
            user: id.claims.user().map(str::to_string),
        });
        progress.event(Event::Info(format!(
            "Rotate the client secret of {} (appId {}):",
            app.display_name.as_deref().unwrap_or("the app"),
            app.app_id
        )));
        for c in plan.changes() {
            progress.event(Event::Info(format!("  • {c}")));
        }
        match progress.ask(&Question::Proceed {
            display_name: id.display_name.clone(),
            default_domain: id.default_domain.clone(),
        }) {
            Answer::Yes => {}
            Answer::No => return Err(WizardError::Declined),
            Answer::CannotAsk => {
                return Err(WizardError::NeedsAnswer {
                    question: format!(
                        "Rotate the client secret of {} ({})?",
                        id.display_name, id.default_domain
                    ),
                    flag: "--yes",
                });
            }
        }
        let portal_api = portal.as_ref().map(|p| p as &dyn PortalApi);
        wizard.rotate(id, &plan, portal_api).await
    });
    progress.clear();
    let rotation = result.map_err(|e| rotate_error(e, &name))?;
    // The sign-in is kept only while the tenant has work pending, or when asked to.
    let id = rotation.record.tenant_id;
    let rec = store.change(id, |rec| {
        if let Some(k) = args.sign_in.keep_sign_in() {
            rec.keep_sign_in = k;
        }
        rec.clone()
    })?;
    if let Some(rec) = rec
        && let Err(e) = crate::session::forget_sign_in_if_done(secrets.as_ref(), &rec)
    {
        ui.warning(format!(
            "the sign-in could not be forgotten in the keyring: {e}"
        ));
    }
    report(ctx, &rotation, secrets.is_persistent())
}

fn report(ctx: &Ctx, r: &Rotation, persistent: bool) -> CommandResult {
    let ui = &ctx.ui;
    let name = &r.record.primary_domain;
    let hints = |v: &[SecretRef]| {
        v.iter()
            .map(|s| format!("hint {}…", s.hint))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let expires = r
        .new
        .expires_at
        .map(|t| format!(", expires {}", t.date()))
        .unwrap_or_default();
    let (portal, err) = match &r.portal {
        PortalResult::Accepted(o) => {
            ui.success(format!(
                "{name}: the portal has the new client secret (hint {}…{expires}){}.",
                r.new.hint,
                if r.removed.is_empty() {
                    String::new()
                } else {
                    format!("; removed the old one ({})", hints(&r.removed))
                }
            ));
            if !o.secret_forgotten {
                ui.warning(format!(
                    "{name}: the keyring could not delete the secret; remove entry {:?} by hand.",
                    crate::secrets::account::client_secret(r.record.tenant_id)
                ));
            }
            (
                match o.outcome {
                    SubmitOutcome::Created => "created",
                    SubmitOutcome::Updated => "updated",
                },
                None,
            )
        }
        PortalResult::NotSent => {
            ui.success(format!(
                "{name}: added and verified a new client secret (hint {}…{expires}).",
                r.new.hint
            ));
            ui.warning(format!(
                "it was not sent to the MSP portal (--no-portal), so the old secret{} stays on the app and Hal keeps using it.",
                if r.kept.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", hints(&r.kept))
                }
            ));
            if !persistent {
                ui.warning("there is no OS keyring here: the new secret's value is gone when this command ends; the next rotation replaces it.");
            }
            ui.hint(format!(
                "Run `hal-onboard secret rotate {name}` once the portal is configured (`hal-onboard portal login`): it sends the new secret, then removes the old one."
            ));
            ("notSent", None)
        }
        PortalResult::Failed(e) => ("failed", Some(portal_failed(e, r, persistent))),
    };
    if ui.json() {
        ui.write_json(&json!({
            "tenant": name,
            "tenantId": r.record.tenant_id,
            "newSecret": r.new,
            "resumed": r.resumed,
            "portal": portal,
            "removed": r.removed,
            "kept": r.kept,
        }))?;
    }
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The portal did not take the new secret: nothing is lost, and a re-run resumes.
fn portal_failed(e: &PortalStepError, r: &Rotation, persistent: bool) -> CommandError {
    let name = &r.record.primary_domain;
    let mut c = failed(format!(
        "the MSP portal did not accept the new client secret for {name}: {e}"
    ));
    if let Some(src) = std::error::Error::source(e) {
        c = c.with_source(src.to_string());
    }
    let kept = if r.kept.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            r.kept
                .iter()
                .map(|s| format!("hint {}…", s.hint))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    c = c.hint(format!(
        "Nothing is lost: the old secret{kept} stays on the app and Hal keeps using it."
    ));
    if let PortalStepError::Portal(PortalError::Unauthorized { .. }) = e {
        c = c.hint(
            "Run `hal-onboard portal login` with a valid API token (or fix HAL_PORTAL_TOKEN).",
        );
    }
    if persistent {
        c.hint(format!(
            "The new secret (hint {}…) is kept in this machine's keyring. Run `hal-onboard secret rotate {name}` again once the portal is back: it sends that secret, then removes the old one (no third secret is made).",
            r.new.hint
        ))
    } else {
        c.hint(format!(
            "There is no OS keyring here, so the new secret's value is gone when this command ends. Run `hal-onboard secret rotate {name}` again once the portal is back: it replaces that secret, sends the replacement, then removes the old one."
        ))
    }
}

/// The wizard's error (mapped in `error`), in a rotation's words.
fn rotate_error(e: WizardError, tenant: &str) -> CommandError {
    match e {
        WizardError::Declined => failed("nothing was changed: the secret was not rotated"),
        // The recorded app is gone; the name now belongs to someone else's app (or several).
        WizardError::AppNameTaken { .. } | WizardError::AmbiguousApps { .. } => {
            let mut c = CommandError::from(e);
            c.hints = vec![format!(
                "Nothing was changed: hal-onboard's recorded app registration is no longer in the tenant. Run `hal-onboard tenant add {tenant}` to onboard it again (with --app-name if the name is taken)."
            )];
            c
        }
        WizardError::NotVerified { .. } | WizardError::ConsentIncomplete { .. } => {
            CommandError::from(e).hint(format!(
                "`hal-onboard secret rotate {tenant}` picks up the new secret where it stopped; the old one is still on the app."
            ))
        }
        WizardError::SecretsForbidden { .. } => CommandError::from(e).hint(format!(
            "Then run `hal-onboard secret rotate {tenant}` again."
        )),
        e => CommandError::from(e),
    }
}
