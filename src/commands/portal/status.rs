//! `hal-onboard portal status`: what is configured, and whether the portal accepts it.

use clap::Args;

use crate::commands::Ctx;
use crate::config::Source;
use crate::error::{CommandResult, failed};
use crate::portal::PortalApi;

/// Show the portal URL and token in use (the token itself is never shown) and check them with
/// one request. Exits 0 when the portal accepts them, 1 otherwise.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only say what is configured; send no request.
    #[arg(long)]
    pub offline: bool,
}

pub fn cmd_portal_status(ctx: &Ctx, args: &StatusArgs) -> CommandResult {
    let ui = &ctx.ui;
    let secrets = ctx.secrets();
    let (url, url_src) = ctx.portal_url()?;
    let (token, token_src) = ctx.portal_token(secrets.as_ref());
    let check = if args.offline || url.is_none() || token.is_none() {
        None
    } else {
        let rt = ctx.runtime()?;
        let portal = ctx.portal(secrets.as_ref())?;
        Some(rt.block_on(portal.check()))
    };
    let reachable = check.as_ref().map(|r| r.is_ok());
    if ui.json() {
        ui.write_json(&serde_json::json!({
            "portalUrl": url,
            "urlSource": url_src,
            "tokenSource": token_src,
            "checked": check.is_some(),
            "accepted": reachable,
        }))?;
    } else {
        let src = |s: Source| match s {
            Source::Environment => "from the environment",
            Source::Config => "from config.json",
            Source::Keyring => "in the OS keyring",
            Source::Memory => "in memory",
            Source::Missing => "not set",
        };
        ui.out(format!(
            "Portal URL:  {} ({})\nAPI token:   {}\n",
            url.as_ref().map_or("—".to_string(), |u| u.to_string()),
            src(url_src),
            src(token_src),
        ));
        if let Some(Ok(())) = &check {
            ui.success("The portal accepts the token.");
        }
    }
    match check {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e.into()),
        None if args.offline => Ok(()),
        None => Err(failed("the portal is not fully configured")
            .hint("Run `hal-onboard portal login`, or set HAL_PORTAL_URL and HAL_PORTAL_TOKEN.")),
    }
}
