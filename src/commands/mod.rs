//! One module per subcommand, each thin: parse → call the wizard or a client → report.

pub mod completions;
pub mod doctor;
pub mod helpers;
pub mod list;
pub mod portal;
pub mod sandbox;
pub mod secret;
pub mod tenant;
pub mod ual;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::cloud::Cloud;
use crate::config::{EnvOverrides, default_home};
use crate::error::{CommandResult, user_error};
use crate::secrets::SecretStore;
use crate::ui::Ui;

/// What every command gets: the terminal, the resolved home, the environment's overrides.
pub struct Ctx {
    pub ui: Ui,
    pub global: GlobalArgs,
    pub env: EnvOverrides,
    pub home: PathBuf,
    secrets: OnceLock<Arc<dyn SecretStore>>,
    /// Kept alive for the whole command when `--sandbox` runs one.
    #[cfg(feature = "sandbox")]
    sandbox: Option<SandboxRun>,
}

/// A sandbox cloud serving on its own runtime, with its throwaway directory.
#[cfg(feature = "sandbox")]
pub struct SandboxRun {
    pub sandbox: hal_sandbox::Sandbox,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Ctx {
    pub fn new(ui: Ui, global: GlobalArgs) -> CommandResult<Ctx> {
        if global.sandbox {
            return Self::new_sandbox(ui, global);
        }
        let env = EnvOverrides::from_env()?;
        let home = match &global.home {
            Some(h) => h.clone(),
            None => default_home().ok_or_else(|| {
                user_error("cannot find a config directory for this user")
                    .hint("Pass --home DIR or set HAL_ONBOARD_HOME.")
            })?,
        };
        Ok(Ctx {
            ui,
            global,
            env,
            home,
            secrets: OnceLock::new(),
            #[cfg(feature = "sandbox")]
            sandbox: None,
        })
    }

    /// A binary built without the simulated cloud says so instead of pretending.
    #[cfg(not(feature = "sandbox"))]
    fn new_sandbox(_ui: Ui, _global: GlobalArgs) -> CommandResult<Ctx> {
        Err(user_error("this hal-onboard was built without the sandbox")
            .hint("Build it with the default features (`cargo build`) to use --sandbox."))
    }

    /// Starts the sandbox cloud and points this run at it through the same overrides a user
    /// would export, with a throwaway home (never the technician's real one, even if
    /// HAL_ONBOARD_HOME is set) and secrets in memory (never the real keyring).
    #[cfg(feature = "sandbox")]
    fn new_sandbox(ui: Ui, global: GlobalArgs) -> CommandResult<Ctx> {
        use crate::error::failed;
        use hal_sandbox::{Sandbox, Scenario};
        let scenario = match &global.sandbox_scenario {
            Some(p) => Scenario::from_file(p).map_err(|e| {
                user_error(format!("cannot use the sandbox scenario {}", p.display()))
                    .with_source(e)
                    .hint("See docs/sandbox.md for the scenario format.")
            })?,
            None => Scenario::demo(),
        };
        let dir = tempfile::Builder::new()
            .prefix("hal-onboard-sandbox-")
            .tempdir()
            .map_err(|e| failed("cannot make a directory for the sandbox").with_source(e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(|e| failed("cannot start the sandbox runtime").with_source(e))?;
        let sandbox = runtime
            .block_on(Sandbox::start(scenario, &dir.path().join("cloud")))
            .map_err(|e| failed("cannot start the sandbox cloud").with_source(e))?;
        let mut vars: std::collections::HashMap<String, String> =
            sandbox.env().into_iter().collect();
        if let Some(pwsh) = sandbox_pwsh(&sandbox, dir.path())? {
            vars.insert(crate::config::ENV_PWSH.into(), pwsh.display().to_string());
        }
        let env = EnvOverrides::from_lookup(|k| vars.get(k).cloned())?;
        let home = dir.path().join("home");
        ui.warning(format!(
            "sandbox: a simulated Microsoft cloud and MSP portal at {} — nothing real is touched, and everything is thrown away when this command ends.",
            sandbox.login_url().origin().ascii_serialization()
        ));
        Ok(Ctx {
            ui,
            global,
            env,
            home,
            secrets: OnceLock::from(
                Arc::new(crate::secrets::MemoryStore::default()) as Arc<dyn SecretStore>
            ),
            sandbox: Some(SandboxRun {
                sandbox,
                _runtime: runtime,
                _dir: dir,
            }),
        })
    }

    pub(crate) fn secrets_cell(&self) -> &OnceLock<Arc<dyn SecretStore>> {
        &self.secrets
    }

    /// The running sandbox, when this is a `--sandbox` run.
    #[cfg(feature = "sandbox")]
    pub fn sandbox(&self) -> Option<&hal_sandbox::Sandbox> {
        self.sandbox.as_ref().map(|s| &s.sandbox)
    }

    /// The tenant a `--sandbox` run suggests (its first), whether or not the sandbox is built in.
    pub fn sandbox_tenant(&self) -> Option<String> {
        #[cfg(feature = "sandbox")]
        if let Some(sb) = self.sandbox() {
            return sb.tenants().first().map(|t| t.default_domain().to_string());
        }
        None
    }

    pub fn cloud(&self) -> Cloud {
        self.global.cloud.unwrap_or_default()
    }
}

/// The stand-in PowerShell for a sandbox run (the Exchange simulator lands with the bridge).
#[cfg(feature = "sandbox")]
fn sandbox_pwsh(
    sandbox: &hal_sandbox::Sandbox,
    dir: &std::path::Path,
) -> CommandResult<Option<PathBuf>> {
    let exe = std::env::current_exe().map_err(|e| {
        crate::error::failed("cannot find the hal-onboard binary for the sandbox's PowerShell")
            .with_source(e)
    })?;
    hal_sandbox::pwsh::install_standin(
        &dir.join("pwsh"),
        &exe,
        &sandbox.exchange_url(),
        &sandbox.ca_path(),
    )
    .map(Some)
    .map_err(|e| {
        crate::error::failed("cannot set up the sandbox's stand-in PowerShell").with_source(e)
    })
}

pub fn run(cli: Cli, ui: Ui) -> CommandResult {
    match &cli.command {
        Command::Completions(a) => return completions::cmd_completions(a),
        Command::Man(a) => return completions::cmd_man(a),
        _ => {}
    }
    let ctx = Ctx::new(ui, cli.global.clone())?;
    match &cli.command {
        Command::List(a) => list::cmd_list(&ctx, a),
        Command::Ual(a) => ual::cmd_ual(&ctx, a),
        Command::Doctor(a) => doctor::cmd_doctor(&ctx, a),
        Command::Portal(c) => portal::cmd_portal(&ctx, c),
        Command::Tenant(a) => tenant::cmd_tenant(&ctx, a),
        Command::Secret(c) => secret::cmd_secret(&ctx, c),
        Command::Sandbox(c) => sandbox::cmd_sandbox(&ctx, c),
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    }
}
