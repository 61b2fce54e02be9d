//! `hal-onboard portal login`: save the portal URL (config.json) and API token (OS keyring).

use std::io::Read;

use clap::Args;
use url::Url;

use crate::commands::Ctx;
use crate::error::{CommandError, CommandResult, failed, user_error};
use crate::portal::{HttpPortal, PortalApi};
use crate::secrets::account;

/// Save the MSP portal's URL and API token, after checking them with one request.
///
/// The URL goes to config.json in the hal-onboard home; the token goes to the OS keyring
/// (service `hal-onboard`, account `portal-token`) and nowhere else. For automation, set
/// HAL_PORTAL_URL and HAL_PORTAL_TOKEN instead.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The portal's base URL, e.g. https://portal.example.com (asked for when not given).
    #[arg(long, value_name = "URL")]
    pub url: Option<Url>,
    /// Read the API token from standard input instead of a prompt (never pass it as an argument).
    #[arg(long)]
    pub token_stdin: bool,
}

pub fn cmd_portal_login(ctx: &Ctx, args: &LoginArgs) -> CommandResult {
    let ui = &ctx.ui;
    let url = match (&args.url, &ctx.env.portal_url) {
        (Some(u), _) => u.clone(),
        (None, Some(u)) => u.clone(),
        (None, None) => {
            let text = ui.input("MSP portal URL (https://…)", "--url URL")?;
            Url::parse(text.trim()).map_err(|e| {
                user_error(format!("{:?} is not a URL", text.trim()))
                    .with_source(e)
                    .hint("Give the portal's address, e.g. https://portal.example.com.")
            })?
        }
    };
    if url.scheme() != "https" {
        return Err(
            user_error(format!("the portal URL must use https: {url}")).hint(
                "The API token and client secrets travel to the portal; use its https:// address.",
            ),
        );
    }
    let from_env = !args.token_stdin && ctx.env.portal_token.is_some();
    let token = if args.token_stdin {
        let mut s = crate::secrets::SecretText::default();
        let read = {
            let mut raw = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut raw).map(|_| {
                s = crate::secrets::SecretText::new(raw.trim());
            })
        };
        read.map_err(|e| failed("cannot read the token from standard input").with_source(e))?;
        s
    } else if let Some(t) = &ctx.env.portal_token {
        t.clone()
    } else {
        crate::secrets::SecretText::new(
            ui.password("Portal API token", "--token-stdin (or HAL_PORTAL_TOKEN)")?,
        )
    };
    if token.is_empty() {
        return Err(user_error("the portal API token is empty")
            .hint("Copy the API token from your MSP portal's settings and try again."));
    }

    let rt = ctx.runtime()?;
    let portal = HttpPortal::new(ctx.http()?, url.clone(), token.clone());
    let spinner = ui.spinner(format!("Checking {url}"));
    let checked = rt.block_on(portal.check());
    spinner.finish();
    checked?;

    let secrets = ctx.secrets();
    if !secrets.is_persistent() && !from_env {
        return Err(failed("there is no OS keyring to keep the portal token in")
            .hint("Set HAL_PORTAL_TOKEN in the environment of the runs that need it (for example from your password manager)."));
    }
    if !from_env {
        secrets
            .set(&account::portal_token(&url), token.expose())
            .map_err(|e| {
                CommandError::from(e)
                    .context("cannot save the portal token in the OS keyring")
                    .hint("Or set HAL_PORTAL_TOKEN instead.")
            })?;
    }
    let mut cfg = ctx.home_config()?;
    cfg.portal_url = Some(url.clone());
    cfg.save(&ctx.home)?;

    if ui.json() {
        ui.write_json(&serde_json::json!({
            "portalUrl": url,
            "token": if from_env { "environment" } else { "keyring" },
            "checked": true,
        }))?;
    } else {
        ui.success(format!("Portal {url} accepted the token."));
        ui.status(format!(
            "  URL saved in {}; token kept in the OS keyring.",
            ctx.home.join(crate::config::CONFIG_FILE).display()
        ));
    }
    Ok(())
}
