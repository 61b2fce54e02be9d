//! `hal-onboard doctor`: is this machine ready to onboard tenants?
//!
//! Checks PowerShell, the ExchangeOnlineManagement module (3.x), the OS keyring, the MSP
//! portal's URL, the endpoints this run would use, and the tenant store. Each check is ok, warn
//! or fail with a hint; a failed required check makes the exit code 1.

use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::commands::Ctx;
use crate::error::{CommandResult, failed};
use crate::microsoft::exchange::{ExchangeError, Pwsh, bridge};
use crate::secrets::KeyringStore;
use crate::store::TenantStore;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// If ExchangeOnlineManagement is missing, install it for the current user without asking
    /// (`Install-Module ExchangeOnlineManagement -Scope CurrentUser`).
    #[arg(long)]
    pub install_module: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// A failed required check fails the command.
    pub required: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn new(name: &'static str, required: bool, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name,
            status,
            required,
            detail: detail.into(),
            hint: None,
        }
    }
    fn hint(mut self, h: impl Into<String>) -> Check {
        self.hint = Some(h.into());
        self
    }
}

#[derive(Debug, Serialize)]
struct DoctorReport<'a> {
    ok: bool,
    checks: &'a [Check],
}

/// Time allowed for PowerShell to start and list its modules.
const MODULE_CHECK_TIMEOUT: Duration = Duration::from_secs(120);

pub fn cmd_doctor(ctx: &Ctx, args: &DoctorArgs) -> CommandResult {
    let ui = &ctx.ui;
    let mut checks = Vec::new();
    let rt = ctx.runtime()?;

    // PowerShell and the module.
    match bridge::locate(ctx.env.pwsh.as_deref()) {
        Err(e) => checks.push(
            Check::new("powershell", true, Status::Fail, e.to_string()).hint(
                "Install PowerShell 7 (https://aka.ms/powershell); until then `hal-onboard tenant add --skip-exchange` onboards without step 1 (turn on audit logging by hand).",
            ),
        ),
        Ok(exe) => {
            checks.push(Check::new(
                "powershell",
                true,
                Status::Ok,
                exe.display().to_string(),
            ));
            let pwsh = Pwsh::new(exe, ctx.env.pwsh_timeout.unwrap_or(MODULE_CHECK_TIMEOUT));
            let spinner = ui.spinner("Asking PowerShell for ExchangeOnlineManagement");
            let status = rt.block_on(pwsh.module_status());
            drop(spinner);
            if let Ok(s) = &status {
                checks.extend(powershell_7_check(s));
            }
            match status {
                Ok(s) if s.module_version.is_some() => checks.push(module_ok(&s)),
                Ok(s) => {
                    let what = match &s.too_old {
                        Some(v) => format!("ExchangeOnlineManagement {v} is too old (3.1 or later is needed: it added Connect-ExchangeOnline -AccessToken)"),
                        None => "ExchangeOnlineManagement is not installed".to_string(),
                    };
                    ui.warning(format!(
                        "{what}. hal-onboard runs its cmdlets (Enable-OrganizationCustomization, Set-AdminAuditLogConfig) to turn on audit logging."
                    ));
                    let install = args.install_module
                        || (ui.interactive()
                            && ui.confirm(
                                "Install it for the current user now (Install-Module ExchangeOnlineManagement -Scope CurrentUser)?",
                                true,
                                "--install-module",
                            )?);
                    if install {
                        let printer = ui.clone();
                        let sink = move |l: &str| printer.status(l);
                        let r = rt.block_on(async {
                            pwsh.install_module(&sink).await?;
                            pwsh.module_status().await
                        });
                        match r {
                            Ok(s) if s.module_version.is_some() => checks.push(Check::new(
                                "exchange-module",
                                true,
                                Status::Ok,
                                format!(
                                    "ExchangeOnlineManagement {} installed just now",
                                    s.module_version.unwrap_or_default()
                                ),
                            )),
                            Ok(_) => checks.push(module_fail(
                                "Install-Module finished but the module is still not found".into(),
                            )),
                            Err(ExchangeError::Interrupted) => return Err(ExchangeError::Interrupted.into()),
                            Err(e) => checks.push(module_fail(e.to_string())),
                        }
                    } else {
                        checks.push(module_fail(what));
                    }
                }
                Err(ExchangeError::Interrupted) => return Err(ExchangeError::Interrupted.into()),
                Err(e) => checks.push(module_fail(e.to_string()).hint(match &e {
                    ExchangeError::Timeout { .. } => "PowerShell took too long to start (a first start can be slow): try once more, or onboard without step 1 with `hal-onboard tenant add --skip-exchange`.".to_string(),
                    _ => "Run `pwsh` by hand to see what it says; `hal-onboard tenant add --skip-exchange` onboards without step 1 meanwhile.".to_string(),
                })),
            }
        }
    }

    // The keyring.
    checks.push(match KeyringStore::probe_within(Duration::from_secs(5)) {
        Ok(_) => Check::new("keyring", false, Status::Ok, "the OS keyring answers"),
        Err(e) => Check::new("keyring", false, Status::Warn, e.to_string()).hint(
            "Secrets will live in memory for one run only, so `hal-onboard ual retry` will ask you to sign in again. On Linux, start a Secret Service (e.g. gnome-keyring).",
        ),
    });

    // The portal (saved by `portal login`, or from the environment).
    checks.push(match ctx.portal_url()?.0 {
        Some(u) => Check::new("portal", false, Status::Ok, u.to_string()),
        None => Check::new("portal", false, Status::Warn, "no MSP portal is configured").hint(
            "Run `hal-onboard portal login` to save your MSP portal's address and token, so credentials are sent there.",
        ),
    });

    // Endpoints and the HTTPS client.
    let ep = ctx.env.endpoints(ctx.cloud());
    checks.push(Check::new(
        "endpoints",
        false,
        Status::Ok,
        format!(
            "cloud {}: sign-in {}, Graph {}, Exchange {} ({})",
            ep.cloud,
            ep.login,
            ep.graph,
            ep.exchange_resource,
            ep.cloud.exchange_environment()
        ),
    ));
    if let Some(ca) = &ctx.env.ca_cert {
        checks.push(match crate::http::build_client(Some(ca)) {
            Ok(_) => Check::new("ca-cert", true, Status::Ok, ca.display().to_string()),
            Err(e) => Check::new("ca-cert", true, Status::Fail, e.to_string())
                .hint("Point HAL_ONBOARD_CA_CERT at a PEM file, or unset it."),
        });
    }

    // The store.
    checks.push(match TenantStore::open(&ctx.home).and_then(|s| s.load()) {
        Ok(doc) => Check::new(
            "store",
            true,
            Status::Ok,
            format!("{} ({} tenants)", ctx.home.display(), doc.tenants.len()),
        ),
        Err(e) => {
            let hint = e
                .hint()
                .unwrap_or_else(|| "Pass --home DIR to use another directory.".into());
            Check::new("store", true, Status::Fail, e.to_string()).hint(hint)
        }
    });

    let ok = !checks
        .iter()
        .any(|c| c.required && c.status == Status::Fail);
    if ui.json() {
        ui.write_json(&DoctorReport {
            ok,
            checks: &checks,
        })?;
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => ui.green("ok  "),
                Status::Warn => ui.yellow("warn"),
                Status::Fail => ui.red("fail"),
            };
            ui.out(format!("{mark} {:<16} {}", c.name, c.detail));
            if let Some(h) = &c.hint {
                ui.out(format!("     {:<16} {}", "", ui.dim(h)));
            }
        }
    }
    if ok {
        Ok(())
    } else {
        Err(failed("this machine is not ready to onboard tenants")
            .hint("Fix the checks marked fail above: each says how."))
    }
}

/// The module found, warned about when its release is publicly reported to break connections
/// ([`crate::microsoft::exchange::KNOWN_BAD_MODULES`] names the reports).
fn module_ok(s: &crate::microsoft::exchange::ModuleStatus) -> Check {
    let version = s.module_version.clone().unwrap_or_default();
    let detail = format!(
        "ExchangeOnlineManagement {version} on PowerShell {}",
        s.ps_version.as_deref().unwrap_or("?")
    );
    match crate::microsoft::exchange::known_bad_module(&version) {
        None => Check::new("exchange-module", true, Status::Ok, detail),
        Some((what, source)) => Check::new(
            "exchange-module",
            true,
            Status::Warn,
            format!("{detail}: {what} ({source})"),
        )
        .hint("Update it in PowerShell: `Update-Module ExchangeOnlineManagement`."),
    }
}

/// `--exchange-auth device` runs `Connect-ExchangeOnline -Device`, which exists only in
/// PowerShell 7 (Connect-ExchangeOnline reference): say so on Windows PowerShell 5.1.
fn powershell_7_check(s: &crate::microsoft::exchange::ModuleStatus) -> Option<Check> {
    (!s.is_powershell_7()).then(|| {
        Check::new(
            "exchange-device",
            false,
            Status::Warn,
            format!(
                "Windows PowerShell {}: `--exchange-auth device` needs PowerShell 7 (Connect-ExchangeOnline -Device exists only there); the default token sign-in works here",
                s.ps_version.as_deref().unwrap_or("5.1")
            ),
        )
        .hint("Install PowerShell 7 (https://aka.ms/powershell) to use `--exchange-auth device`, or leave it out.")
    })
}

fn module_fail(detail: String) -> Check {
    Check::new("exchange-module", true, Status::Fail, detail).hint(
        "Install it with --install-module, or in PowerShell: `Install-Module ExchangeOnlineManagement -Scope CurrentUser`; `hal-onboard tenant add --skip-exchange` onboards without step 1 meanwhile.",
    )
}
