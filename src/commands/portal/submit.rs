//! `hal-onboard portal submit TENANT…`: (re)send verified credentials to the portal.

use clap::Args;

use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, failed, portal_error, user_error};
use crate::store::{PortalState, StepId, TenantRecord};
use crate::wizard::steps::portal::{self, PortalStepError};

/// Send a tenant's verified credentials to the MSP portal, for example after the portal was
/// down during `tenant add`. The secret is read from the OS keyring and deleted from it once
/// the portal has accepted it. A tenant whose secret the portal already holds but whose status
/// changed since (UAL verified by `ual retry`) gets a status update, without the secret.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Tenants by GUID, domain or display name.
    #[arg(value_name = "TENANT")]
    pub tenants: Vec<String>,
    /// Every verified tenant the portal has not received yet.
    #[arg(long, conflicts_with = "tenants")]
    pub all: bool,
}

pub fn cmd_portal_submit(ctx: &Ctx, args: &SubmitArgs) -> CommandResult {
    let ui = &ctx.ui;
    let store = ctx.store()?;
    let doc = store.load()?;
    let targets: Vec<TenantRecord> = if args.all {
        doc.tenants
            .iter()
            .filter(|t| {
                (t.step(StepId::Verify).is_done() && t.portal.state != PortalState::Submitted)
                    || portal::status_update(t).is_some()
            })
            .cloned()
            .collect()
    } else if args.tenants.is_empty() {
        return Err(user_error("name the tenants to send, or pass --all")
            .hint("Run `hal-onboard list` to see which tenants wait for the portal."));
    } else {
        args.tenants
            .iter()
            .map(|k| doc.find(k).cloned().map_err(CommandError::from))
            .collect::<Result<_, _>>()?
    };
    if targets.is_empty() {
        ui.status("Nothing to send: every verified tenant is already with the portal.");
        if ui.json() {
            ui.write_json(&serde_json::json!([]))?;
        }
        return Ok(());
    }
    let secrets = ctx.secrets();
    let api = ctx.portal(secrets.as_ref())?;
    let rt = ctx.runtime()?;
    let mut results = Vec::new();
    let mut first_error: Option<CommandError> = None;
    for mut rec in targets {
        let name = rec.primary_domain.clone();
        // One run per tenant: a busy tenant is reported and skipped, the others go on.
        let _lock = match crate::store::lock::acquire(
            &ctx.home,
            rec.tenant_id,
            &rec.display_name,
            "portal submit",
        ) {
            Ok(l) => l,
            Err(e) => {
                let err = CommandError::from(e);
                results.push(serde_json::json!({"tenant": name, "tenantId": rec.tenant_id, "result": "busy", "error": err.message}));
                if first_error.is_none() {
                    first_error = Some(err);
                } else {
                    ui.error(&err);
                }
                continue;
            }
        };
        // Under the lock, the record as it is now: a run that held the lock meanwhile (a
        // `ual retry`) may have changed it since the list above was read.
        match store.load()?.get(rec.tenant_id) {
            Some(now) => rec = now.clone(),
            None => continue,
        }
        let before = rec.clone();
        // The portal holds this secret and only its status is stale: a status update, no secret.
        if portal::is_current(&rec) && portal::status_update(&rec).is_some() {
            let spinner = ui.spinner(format!("Telling the portal {name}'s status"));
            let res = rt.block_on(portal::send_status(&mut rec, &api));
            spinner.finish();
            match res {
                Ok(_) => {
                    store.save_changes(Some(&before), &rec)?;
                    ui.success(format!(
                        "{name}: the portal has the tenant's current status."
                    ));
                    results.push(serde_json::json!({"tenant": name, "tenantId": rec.tenant_id, "result": "status-updated"}));
                }
                Err(e) => {
                    let err = portal_error(e, Some(&name));
                    results.push(serde_json::json!({"tenant": name, "tenantId": rec.tenant_id, "result": "failed", "error": err.message}));
                    if first_error.is_none() {
                        first_error = Some(err);
                    } else {
                        ui.error(&err);
                    }
                }
            }
            continue;
        }
        let spinner = ui.spinner(format!("Sending {name} to the portal"));
        let mut res = rt.block_on(portal::run(&mut rec, secrets.as_ref(), &api, None));
        spinner.finish();
        // The record changed either way (submitted, or the failure noted): persist it, and
        // only then forget a secret the portal has.
        let rec = store.save_changes(Some(&before), &rec)?;
        if let Ok(out) = &mut res {
            out.secret_forgotten = portal::forget_secret(secrets.as_ref(), rec.tenant_id);
            // Nothing pending any more: the sign-in goes too (unless --keep-sign-in kept it).
            let _ = crate::session::forget_sign_in_if_done(secrets.as_ref(), &rec);
        }
        match res {
            Ok(out) => {
                ui.success(format!(
                    "{name}: the portal {} the credentials.",
                    match out.outcome {
                        crate::portal::SubmitOutcome::Created => "registered",
                        crate::portal::SubmitOutcome::Updated => "updated",
                    }
                ));
                if !out.secret_forgotten {
                    ui.warning(format!(
                        "{name}: the keyring could not delete the secret; remove entry {:?} by hand.",
                        crate::secrets::account::client_secret(rec.tenant_id)
                    ));
                }
                results.push(serde_json::json!({"tenant": name, "tenantId": rec.tenant_id, "result": "submitted"}));
            }
            Err(e) => {
                let err = step_error(e, &name);
                results.push(serde_json::json!({"tenant": name, "tenantId": rec.tenant_id, "result": "failed", "error": err.message}));
                if first_error.is_none() {
                    first_error = Some(err);
                } else {
                    ui.error(&err);
                }
            }
        }
    }
    if ui.json() {
        ui.write_json(&results)?;
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Why one tenant was not sent, with what to run next for it.
fn step_error(e: PortalStepError, tenant: &str) -> CommandError {
    match e {
        PortalStepError::Portal(p) => portal_error(p, Some(tenant)),
        PortalStepError::SecretGone => failed(format!(
            "the client secret for {tenant} is no longer on this machine, so it cannot be sent"
        ))
        .hint(format!(
            "Run `hal-onboard secret rotate {tenant}` to make a new secret and send it."
        )),
        PortalStepError::NotReady(_) => {
            failed(format!("{tenant} is not ready for the portal: {e}")).hint(format!(
                "Run `hal-onboard tenant add {tenant}` to finish it first."
            ))
        }
        PortalStepError::Keyring(k) => {
            CommandError::from(k).context(format!("cannot read the secret for {tenant}"))
        }
    }
}
