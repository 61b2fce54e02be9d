//! `hal-onboard partner login`: the technician signs in once, in the MSP's own tenant, with
//! the partner app; the refresh token goes to the OS keyring only. The token must be the
//! MSP's tenant's and show multi-factor authentication, else nothing is kept.

use std::sync::Arc;

use clap::Args;

use super::PartnerAuth;
use crate::commands::Ctx;
use crate::error::CommandResult;
use crate::partner::signin::{PartnerSignIn, config_for};
use crate::ui::{UiSignIn, Untrusted};

/// Sign in to the MSP's own tenant with the partner app (once; `tenant add --partner` and the
/// other partner commands then use this sign-in). The refresh token is kept in the OS keyring
/// only; without a keyring the sign-in lasts for this command.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The MSP's own tenant (domain or GUID), as a check: it must be the tenant `partner
    /// setup` recorded.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,

    /// How to sign in: a device code (default, works over SSH) or a browser on this machine.
    #[arg(long, value_enum, default_value_t = PartnerAuth::DeviceCode, value_name = "METHOD")]
    pub auth: PartnerAuth,
}

pub fn cmd_partner_login(ctx: &Ctx, args: &LoginArgs) -> CommandResult {
    let ui = &ctx.ui;
    let cfg = config_for(ctx.home_config()?.partner.as_ref(), args.tenant.as_deref())?;
    let method = args.auth.method();
    let secrets = ctx.secrets();
    let http = ctx.http()?;
    let rt = ctx.runtime()?;
    let signin = rt.block_on(PartnerSignIn::login(
        &ctx.env,
        http,
        &cfg,
        secrets,
        Arc::new(UiSignIn::new(ui).signing_in_as(format!(
            "your own account of the MSP's tenant {}, with multi-factor authentication",
            Untrusted(&cfg.domain)
        ))),
        method,
    ))?;
    let who = signin.technician().unwrap_or("the technician");
    if ui.json() {
        return ui.write_json(&serde_json::json!({
            "technician": signin.technician(),
            "tenantId": cfg.tenant_id,
            "domain": cfg.domain,
            "clientId": cfg.client_id,
            "kept": signin.kept(),
        }));
    }
    ui.success(format!(
        "Signed in as {} in the MSP's tenant {} ({}), with multi-factor authentication.",
        Untrusted(who),
        Untrusted(&cfg.domain),
        cfg.tenant_id
    ));
    if signin.kept() {
        ui.status("The sign-in is kept in the OS keyring: the partner commands use it without asking again.");
    } else {
        ui.warning("no OS keyring: the sign-in is not kept, it lasted for this command only.");
        ui.hint("Run the partner command you need directly (`hal-onboard tenant add --partner …` signs in itself), or use a machine with an OS keyring (`hal-onboard doctor` checks it).");
    }
    Ok(())
}
