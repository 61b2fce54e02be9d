//! `hal-onboard sandbox serve`: the simulated cloud alone, for any client to be pointed at.

use clap::{Args, Subcommand};

use super::Ctx;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the simulated Microsoft cloud and MSP portal on 127.0.0.1 until Ctrl-C.
    ///
    /// Prints one JSON line: the sign-in authority host, the Microsoft Graph root, the portal
    /// URL and token, the Exchange simulator, and the path of the CA certificate to trust. Files
    /// (the CA) go under --home when given, else a folder removed on exit.
    Serve(ServeArgs),
    /// Start a kept sandbox over: remove its cloud (DIR/sandbox) and the home's tenants,
    /// settings and locks, so the next `--sandbox --home DIR` begins with the scenario fresh.
    ///
    /// Refuses a folder that is not a sandbox home (one without DIR/sandbox/cloud.json).
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
#[command(after_long_help = "Example:\n  hal-onboard sandbox reset --home ./sandbox-home")]
pub struct ResetArgs {}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The scenario file to simulate (docs/sandbox.md) instead of the demo tenant.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<std::path::PathBuf>,
}

pub fn cmd_sandbox(ctx: &Ctx, cmd: &SandboxCommand) -> CommandResult {
    match cmd {
        SandboxCommand::Serve(a) => serve(ctx, a),
        // Runs before a Ctx is made (`commands::run`): it must not start a sandbox.
        SandboxCommand::Reset(_) => {
            Err(crate::error::internal("sandbox reset reached cmd_sandbox"))
        }
    }
}

/// `hal-onboard sandbox reset --home DIR`.
pub fn cmd_sandbox_reset(
    ui: &crate::ui::Ui,
    global: &crate::cli::GlobalArgs,
    _args: &ResetArgs,
) -> CommandResult {
    use crate::error::{failed, user_error};
    let Some(home) = &global.home else {
        return Err(user_error("sandbox reset needs the sandbox's home")
            .hint("Run `hal-onboard sandbox reset --home DIR` with the DIR given to `--sandbox --home DIR`."));
    };
    let cloud = home.join("sandbox");
    if !cloud.join("cloud.json").exists() {
        return Err(user_error(format!(
            "{} is not a sandbox home (it has no sandbox/cloud.json): nothing was removed",
            home.display()
        ))
        .hint("Give the DIR that `hal-onboard tenant add --sandbox --home DIR` used."));
    }
    let remove = |p: &std::path::Path| -> CommandResult {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(failed(format!("cannot remove {}", p.display())).with_source(e)),
        }
    };
    // Only what hal-onboard and its sandbox put there: never the folder itself.
    for name in [
        crate::store::STATE_FILE,
        "tenants.lock",
        crate::config::CONFIG_FILE,
        crate::store::lock::LOCK_DIR,
    ] {
        remove(&home.join(name))?;
    }
    remove(&cloud)?;
    ui.success(format!(
        "the sandbox in {} starts over: the next `--sandbox --home {}` begins with the scenario fresh.",
        home.display(),
        home.display()
    ));
    Ok(())
}

#[cfg(not(feature = "sandbox"))]
fn serve(_ctx: &Ctx, _args: &ServeArgs) -> CommandResult {
    Err(
        crate::error::user_error("this hal-onboard was built without the sandbox")
            .hint("Build it with the default features (`cargo build`) to use `sandbox serve`."),
    )
}

#[cfg(feature = "sandbox")]
fn serve(ctx: &Ctx, args: &ServeArgs) -> CommandResult {
    use crate::error::failed;
    use hal_sandbox::Sandbox;

    let scenario = super::sandbox_scenario(args.scenario.as_deref())?;
    // Without --home the files live as long as the server.
    let temp;
    let dir = match &ctx.global.home {
        Some(h) => h.join("sandbox"),
        None => {
            temp = tempfile::Builder::new()
                .prefix("hal-onboard-sandbox-")
                .tempdir()
                .map_err(|e| failed("cannot make a directory for the sandbox").with_source(e))?;
            temp.path().to_path_buf()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| failed("cannot start the sandbox runtime").with_source(e))?;
    rt.block_on(async {
        let sb = Sandbox::start(scenario, &dir)
            .await
            .map_err(|e| failed("cannot start the sandbox cloud").with_source(e))?;
        let tenants: Vec<_> = sb
            .tenants()
            .iter()
            .map(|t| serde_json::json!({"id": t.id, "domain": t.default_domain()}))
            .collect();
        let line = serde_json::json!({
            "authority": sb.login_url(),
            "graph": sb.graph_url(),
            "manage": sb.manage_url(),
            "exchange": sb.exchange_url(),
            "portal": sb.portal_url(),
            "portalToken": sb.portal().token(),
            "caCert": sb.ca_path(),
            "tenants": tenants,
            "env": sb.env().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        });
        ctx.ui.out(line.to_string());
        ctx.ui
            .status("sandbox: serving on 127.0.0.1 until Ctrl-C; nothing real is touched.");
        stopped().await;
        // Ctrl-C waits for the shutdown, so the temporary folder is removed.
        let _cleanup = crate::ui::interrupt::Reporting::start();
        sb.shutdown().await;
        Ok(())
    })
}

/// Ctrl-C or SIGTERM: either way the server stops and its temporary folder is removed.
#[cfg(feature = "sandbox")]
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
