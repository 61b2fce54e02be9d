//! `hal-onboard partner setup --tenant <MSP>`: the partner app in the MSP's own tenant.
//!
//! The story: ask before any sign-in whether anyone can answer, find the tenant's cloud, sign
//! in as the MSP's administrator, check the token's tenant, read what is there, show the plan,
//! ask, make it, record the app in config.json, name the next step.

use std::sync::Arc;

use clap::Args;

use crate::commands::Ctx;
use crate::error::CommandResult;
use crate::microsoft::signin::AuthMethod;
use crate::partner::PartnerConfig;
use crate::partner::setup::{self, Change};
use crate::session::{Session, SignIn};
use crate::tenant::TenantName;
use crate::ui::{UiSignIn, Untrusted};

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  hal-onboard partner setup --tenant northwindmsp.onmicrosoft.com
  hal-onboard partner setup --tenant 0d0a0000-0000-4000-8000-000000000100 --no-input --yes

Sign in as an administrator of your MSP's own tenant who may register apps and consent to
delegated permissions: Global Administrator, Cloud Application Administrator or Application
Administrator. The sign-in also asks for DelegatedPermissionGrant.ReadWrite.All (the consent).
Safe to run again: it repairs what is missing and changes nothing when all is in place.
Then: hal-onboard partner login --tenant <the same tenant>.")]
pub struct SetupArgs {
    /// Your MSP's own tenant: its domain (northwindmsp.onmicrosoft.com) or tenant ID.
    #[arg(long, value_name = "TENANT")]
    pub tenant: TenantName,

    /// Answer yes: make the planned changes without asking.
    #[arg(short, long)]
    pub yes: bool,

    /// How to sign in: device code (default, works over SSH) or a browser on this machine.
    #[arg(long, value_enum, default_value_t = AuthMethod::DeviceCode, value_name = "METHOD")]
    pub auth: AuthMethod,

    /// The public client to sign in with for setup [default: Microsoft Graph Command Line
    /// Tools, or HAL_ONBOARD_CLIENT_ID].
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,
}

pub fn cmd_partner_setup(ctx: &Ctx, args: &SetupArgs) -> CommandResult {
    let ui = &ctx.ui;
    let tenant = &args.tenant;
    // Before any device code: a run that will ask needs someone to answer, or --yes.
    ui.answer_needed(
        args.yes,
        &format!("Setting up the partner app in {tenant}"),
        "--yes",
    )?;
    let found_cloud = ctx.tenant_cloud_blocking(tenant)?;
    let how = SignIn {
        method: args.auth,
        client_id: args.client_id.clone(),
        cloud: Some(found_cloud.cloud),
        // Admin consent in the MSP's tenant is a delegated permission grant.
        extra_scopes: vec!["DelegatedPermissionGrant.ReadWrite.All"],
    };
    let session = Session::open(
        &ctx.env,
        ctx.http()?,
        tenant,
        None,
        &how,
        ctx.secrets(),
        Arc::new(UiSignIn::new(ui)),
    )?;
    let graph = &session.graph;
    let rt = ctx.runtime()?;
    let found = rt.block_on(setup::survey(graph, tenant.as_str(), found_cloud.tenant_id))?;
    let changes = setup::plan(&found);
    let client_id = if changes.is_empty() {
        ui.success(format!(
            "The partner app in {tenant} is in place: nothing to do."
        ));
        found
            .app
            .as_ref()
            .expect("no plan means an app")
            .app_id
            .clone()
    } else {
        ui.status(format!("Plan for {tenant} (the MSP's own tenant):"));
        for c in &changes {
            ui.status(format!("  • {}", c.describe()));
        }
        if !args.yes && !ui.confirm("Make these changes?", false, "--yes")? {
            // Said no, as `tenant remove` does: nothing made, nothing recorded.
            ui.status("Nothing was changed.");
            return Ok(());
        }
        let say = |c: &Change| ui.status(format!("  … {}", c.describe()));
        let id = rt.block_on(setup::apply(graph, found, &say))?;
        ui.success(format!(
            "The partner app \"{}\" is ready in {tenant}: client ID {id}.",
            crate::partner::PARTNER_APP_NAME
        ));
        id
    };
    let cfg = PartnerConfig {
        client_id,
        tenant_id: found_cloud.tenant_id,
        domain: tenant.as_str().to_string(),
        cloud: found_cloud.cloud,
    };
    let mut home = ctx.home_config()?;
    if home.partner.as_ref() != Some(&cfg) {
        home.partner = Some(cfg.clone());
        home.save(&ctx.home)?;
        ui.status(format!(
            "Recorded in {}: the partner app's client ID and your MSP's tenant.",
            ctx.home.join(crate::config::CONFIG_FILE).display()
        ));
    }
    if ui.json() {
        ui.write_json(&cfg)?;
    }
    ui.hint(format!(
        "Next: `hal-onboard partner login --tenant {}` (each technician, once per machine).",
        Untrusted(tenant.as_str())
    ));
    Ok(())
}
