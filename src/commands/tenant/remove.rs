//! `hal-onboard tenant remove TENANT [--delete-app]`: stop managing a tenant.
//!
//! Without `--delete-app` only this machine forgets the tenant (its record and keyring
//! entries); nothing in the tenant changes. With it, the app registration is deleted first,
//! and only if it is provably ours: the recorded object ID *and* hal-onboard's tag.

use std::sync::Arc;

use clap::Args;
use serde_json::json;

use crate::cli::SignInArgs;
use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, ExitStatus, user_error};
use crate::microsoft::graph::directory::DirectoryApi;
use crate::partner::reach::Reach;
use crate::secrets::account;
use crate::store::TenantRecord;
use crate::tenant::TenantName;
use crate::ui::{UiProgress, UiSignIn};
use crate::wizard::{APP_TAG, DEFAULT_APP_NAME, Settings, Wizard, WizardError};

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The tenant, by GUID, domain or display name (as `hal-onboard list` shows it).
    pub tenant: String,

    /// Also delete the app registration from the tenant (Hal then stops receiving its logs).
    /// Only an app hal-onboard recorded and tagged is ever deleted.
    #[arg(long)]
    pub delete_app: bool,

    /// Answer yes: remove without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// With --delete-app: sign in as the customer's own administrator even when the tenant was
    /// onboarded through partner mode (`via: partner` in `list --json`).
    #[arg(long, requires = "delete_app")]
    pub direct: bool,

    #[command(flatten)]
    pub sign_in: SignInArgs,
}

pub fn cmd_tenant_remove(ctx: &Ctx, args: &RemoveArgs) -> CommandResult {
    let ui = &ctx.ui;
    let store = ctx.store()?;
    let doc = store.load()?;
    let rec = doc.find(&args.tenant)?.clone();
    let name = rec.primary_domain.clone();
    // One run per tenant: not while another command is changing it.
    let _lock =
        crate::store::lock::acquire(&ctx.home, rec.tenant_id, &rec.display_name, "tenant remove")?;
    let secrets = ctx.secrets();

    let deleted = if args.delete_app {
        ui.answer_needed(
            args.yes,
            &format!("Deleting the app registration of {name}"),
            "--yes",
        )?;
        match delete_app(ctx, args, &rec, secrets.clone())? {
            Some(d) => d,
            None => return Ok(()),
        }
    } else {
        ui.status(format!(
            "Forget {} ({name}) on this machine: its record and its keyring entries (client secret, sign-ins).",
            rec.display_name
        ));
        ui.status(format!(
            "Nothing in the tenant changes{}: Hal keeps receiving its logs.",
            rec.app
                .as_ref()
                .map(|a| format!(
                    " (the app registration {} with appId {} stays)",
                    a.display_name, a.app_id
                ))
                .unwrap_or_default()
        ));
        if !confirm(ctx, args, &format!("Forget {name} on this machine?"))? {
            return Ok(());
        }
        false
    };

    // Forget: the record, then its keyring entries.
    store.update(|d| d.remove(rec.tenant_id))?;
    for acct in [
        account::client_secret(rec.tenant_id),
        account::graph_refresh_token(rec.tenant_id),
        account::exchange_refresh_token(rec.tenant_id),
    ] {
        if let Err(e) = secrets.delete(&acct) {
            ui.warning(format!(
                "cannot delete keyring entry {acct:?} ({e}); remove it by hand."
            ));
        }
    }
    ui.success(format!(
        "{name} is forgotten on this machine{}.",
        if deleted {
            " and its app registration is deleted"
        } else {
            ""
        }
    ));
    ui.hint(format!(
        "Remove {name} from your MSP portal too: hal-onboard cannot do that for you."
    ));
    if ui.json() {
        ui.write_json(&json!({
            "tenant": name,
            "tenantId": rec.tenant_id,
            "appDeleted": deleted,
            "forgotten": true,
        }))?;
    }
    Ok(())
}

/// Asks, unless `--yes`. False when the technician said no (said out loud).
fn confirm(ctx: &Ctx, args: &RemoveArgs, prompt: &str) -> CommandResult<bool> {
    if args.yes {
        return Ok(true);
    }
    let yes = ctx.ui.confirm(prompt, false, "--yes")?;
    if !yes {
        ctx.ui.status("Nothing was changed.");
    }
    Ok(yes)
}

/// Signs in, checks the tenant and the app, asks, deletes. True when an app was deleted, false
/// when it was already gone, `None` when the technician said no.
fn delete_app(
    ctx: &Ctx,
    args: &RemoveArgs,
    rec: &TenantRecord,
    secrets: Arc<dyn crate::secrets::SecretStore>,
) -> CommandResult<Option<bool>> {
    let ui = &ctx.ui;
    let name = rec.primary_domain.clone();
    let Some(recorded) = rec.app.clone() else {
        return Err(
            user_error(format!("no app registration is recorded for {name}")).hint(format!(
                "Run `hal-onboard tenant remove {name}` without --delete-app to forget it here."
            )),
        );
    };
    let tenant = TenantName::from(rec.tenant_id);
    let rt = ctx.runtime()?;
    let cloud = rt.block_on(ctx.tenant_cloud(&tenant))?.cloud;
    // As the customer's admin, or through the partner sign-in for a partner-onboarded tenant.
    let reach = rt.block_on(Reach::open(
        &[rec],
        args.direct,
        ctx.partner_open(args.sign_in.auth)?,
    ));
    let session = reach.graph_session(
        &ctx.env,
        ctx.http()?,
        rec,
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
    settings.app_name = if recorded.display_name.is_empty() {
        DEFAULT_APP_NAME.into()
    } else {
        recorded.display_name.clone()
    };
    let progress = UiProgress::new(ui, args.yes);
    let wizard = Wizard {
        settings,
        dir: &session.graph,
        verifier: &session.verifier,
        secrets,
        store: &ctx.store()?,
        progress: &progress,
        meter: session.meter.clone(),
        exchange: None,
        portal: None,
        saved: Default::default(),
    };
    let id = rt.block_on(wizard.identify());
    progress.clear();
    let not_ours = |what: String| {
        CommandError::new(ExitStatus::Failed, format!("{what}: nothing was deleted"))
            .hint("Delete it in the Entra admin center if it really is to go.")
            .hint(format!(
                "Run `hal-onboard tenant remove {name}` without --delete-app to forget the tenant on this machine only."
            ))
    };
    let id = match id {
        Ok(id) => id,
        Err(WizardError::AppNameTaken { name: n, object_id }) => {
            return Err(not_ours(format!(
                "the app registration named {n:?} in {} (object ID {object_id}) was not made by hal-onboard",
                rec.display_name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    ui.status(format!(
        "Tenant: {} — {} (tenant ID {})",
        ui.bold(&id.display_name),
        id.default_domain,
        id.tenant_id
    ));
    if id.survey.app_by_id.is_none()
        && let Some(f) = id.foreign.first()
    {
        return Err(not_ours(format!(
            "the app registration named {:?} in {} (appId {}) was not made by hal-onboard",
            recorded.display_name, rec.display_name, f.app_id
        )));
    }
    let Some(app) = id.survey.app_by_id.clone() else {
        ui.status(format!(
            "The app registration {} (appId {}) is already gone from the tenant.",
            recorded.display_name, recorded.app_id
        ));
        if !confirm(ctx, args, &format!("Forget {name} on this machine?"))? {
            return Ok(None);
        }
        return Ok(Some(false));
    };
    let tagged = app.tags.iter().any(|t| t == APP_TAG);
    if !app.id.eq_ignore_ascii_case(&recorded.object_id) || !tagged {
        return Err(not_ours(format!(
            "the app registration {} (appId {}) is not the one hal-onboard recorded for {name}{}",
            app.display_name.as_deref().unwrap_or("?"),
            app.app_id,
            if tagged {
                ""
            } else {
                " and lacks hal-onboard's tag"
            }
        )));
    }
    ui.status(format!(
        "Delete the app registration {} (appId {}) from {}: Hal stops receiving this tenant's logs. Then forget the tenant on this machine.",
        ui.bold(app.display_name.as_deref().unwrap_or("?")),
        app.app_id,
        id.display_name
    ));
    if !confirm(
        ctx,
        args,
        &format!("Delete the app registration from {name}?"),
    )? {
        return Ok(None);
    }
    rt.block_on(session.graph.delete_application(&app.id))
        .map_err(|e| {
            CommandError::from(e)
                .context("cannot delete the app registration")
                .hint(format!(
                    "Nothing was forgotten. Run `hal-onboard tenant remove {name} --delete-app` again."
                ))
        })?;
    Ok(Some(true))
}
