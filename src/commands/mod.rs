//! One module per subcommand, each thin: parse → call the wizard or a client → report.
//!
//! No command module imports another: what two commands share lives in the library
//! (`session`, `wizard`, `ui`, `error`), and what every command gets from its run is [`Ctx`].

pub mod completions;
pub mod doctor;
pub mod list;
pub mod partner;
pub mod portal;
pub mod sandbox;
pub mod secret;
pub mod tenant;
pub mod ual;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::cloud::Cloud;
use crate::config::{EnvOverrides, HomeConfig, Source, default_home};
use crate::error::{CommandResult, failed, user_error};
use crate::microsoft::signin::discovery::TenantCloud;
use crate::portal::HttpPortal;
use crate::secrets::{KeyringStore, MemoryStore, SecretStore};
use crate::store::TenantStore;
use crate::tenant::TenantName;
use crate::ui::Ui;

/// What every command gets: the terminal, the resolved home, the environment's overrides.
pub struct Ctx {
    pub ui: Ui,
    pub global: GlobalArgs,
    pub env: EnvOverrides,
    pub home: PathBuf,
    secrets: OnceLock<Arc<dyn SecretStore>>,
    /// Each tenant's cloud as its OpenID configuration said, by name: asked once per run.
    clouds: std::sync::Mutex<std::collections::HashMap<String, TenantCloud>>,
    /// Kept alive for the whole command when `--sandbox` runs one.
    #[cfg(feature = "sandbox")]
    sandbox: Option<SandboxRun>,
}

/// A sandbox cloud serving on its own runtime (its folder is kept, or removed at exit by
/// [`crate::cleanup`]).
#[cfg(feature = "sandbox")]
pub struct SandboxRun {
    pub sandbox: hal_sandbox::Sandbox,
    kept: bool,
    _runtime: tokio::runtime::Runtime,
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
            clouds: Default::default(),
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
    /// would export; never the technician's real keyring. With `--home DIR` the cloud lasts
    /// (`DIR/sandbox/`: its state, and its keyring file) and `DIR` is the home, so the next
    /// `--sandbox --home DIR` command sees the same tenants; without it, cloud and home are a
    /// temporary folder removed however the run ends (and HAL_ONBOARD_HOME is not used).
    #[cfg(feature = "sandbox")]
    fn new_sandbox(ui: Ui, global: GlobalArgs) -> CommandResult<Ctx> {
        use crate::error::failed;
        use hal_sandbox::Sandbox;
        let scenario = sandbox_scenario(global.sandbox_scenario.as_deref())?;
        // HAL_ONBOARD_HOME names the technician's real home: only an explicit --home keeps a
        // sandbox.
        let from_env = std::env::var_os(crate::config::ENV_HOME).map(PathBuf::from);
        let kept_home = global.home.clone().filter(|h| Some(h) != from_env.as_ref());
        let (dir, home) = match &kept_home {
            Some(h) => {
                let dir = h.join("sandbox");
                // A real home (tenants, no sandbox cloud) must never get sandbox tenants.
                if h.join("tenants.json").exists() && !Sandbox::is_kept(&dir) {
                    return Err(user_error(format!(
                        "{} is a hal-onboard home with real tenants, not a sandbox home",
                        h.display()
                    ))
                    .hint("Give --sandbox a folder of its own, e.g. `--sandbox --home ./sandbox-home`."));
                }
                std::fs::create_dir_all(&dir)
                    .map_err(|e| failed(format!("cannot make {}", dir.display())).with_source(e))?;
                (dir, h.clone())
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("hal-onboard-sandbox-")
                    .tempdir()
                    .map_err(|e| failed("cannot make a directory for the sandbox").with_source(e))?
                    .keep();
                crate::cleanup::remove_at_exit(tmp.clone());
                (tmp.join("cloud"), tmp.join("home"))
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(|e| failed("cannot start the sandbox runtime").with_source(e))?;
        let sandbox = runtime
            .block_on(async {
                if kept_home.is_some() {
                    Sandbox::start_kept(scenario, &dir).await
                } else {
                    Sandbox::start(scenario, &dir).await
                }
            })
            .map_err(|e| {
                failed("cannot start the sandbox cloud")
                    .with_source(e)
                    .hint("`hal-onboard sandbox reset --home DIR` starts a kept sandbox over.")
            })?;
        let mut vars: std::collections::HashMap<String, String> =
            sandbox.env().into_iter().collect();
        if let Some(pwsh) = sandbox_pwsh(&sandbox, &dir)? {
            vars.insert(crate::config::ENV_PWSH.into(), pwsh.display().to_string());
        }
        let env = EnvOverrides::from_lookup(|k| vars.get(k).cloned())?;
        let origin = sandbox.login_url().origin().ascii_serialization();
        let secrets: Arc<dyn SecretStore> = match &kept_home {
            Some(h) => {
                ui.warning(format!(
                    "sandbox: a simulated Microsoft cloud and MSP portal at {origin}, kept in {} — nothing real is touched.",
                    h.display()
                ));
                Arc::new(crate::sandbox_keyring::SandboxKeyring::new(
                    dir.join("keyring.json"),
                ))
            }
            None => {
                ui.warning(format!(
                    "sandbox: a simulated Microsoft cloud and MSP portal at {origin} — nothing real is touched, and everything is thrown away when this command ends (`--sandbox --home DIR` keeps it)."
                ));
                Arc::new(crate::secrets::MemoryStore::default())
            }
        };
        Ok(Ctx {
            ui,
            global,
            env,
            home,
            secrets: OnceLock::from(secrets),
            clouds: Default::default(),
            sandbox: Some(SandboxRun {
                sandbox,
                kept: kept_home.is_some(),
                _runtime: runtime,
            }),
        })
    }

    /// A throwaway sandbox run (`--sandbox` without `--home`): what it made is gone when the
    /// command ends.
    pub fn sandbox_throwaway(&self) -> bool {
        #[cfg(feature = "sandbox")]
        if let Some(s) = &self.sandbox {
            return !s.kept;
        }
        false
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

    /// The tenant's cloud from its OpenID configuration (`session::find_cloud`): asked once
    /// per tenant per run, before any sign-in, and said to the technician (the commercial
    /// cloud only with -v). A tenant Microsoft does not know, or a `--cloud` it contradicts,
    /// stops here (exit 2).
    pub async fn tenant_cloud(&self, tenant: &TenantName) -> CommandResult<TenantCloud> {
        let key = tenant.as_str().to_ascii_lowercase();
        if let Some(c) = self.clouds.lock().expect("not poisoned").get(&key) {
            return Ok(c.clone());
        }
        let found =
            crate::session::find_cloud(&self.env, &self.http()?, tenant, self.global.cloud).await?;
        let line = format!(
            "{} is in {}.",
            crate::ui::Untrusted(tenant.as_str()),
            found.describe()
        );
        if found.cloud != Cloud::Global {
            self.ui.status(line);
        } else if self.ui.verbose() > 0 {
            self.ui.status(self.ui.dim(line));
        }
        self.clouds
            .lock()
            .expect("not poisoned")
            .insert(key, found.clone());
        Ok(found)
    }

    /// [`Ctx::tenant_cloud`] for a command that is not async.
    pub fn tenant_cloud_blocking(&self, tenant: &TenantName) -> CommandResult<TenantCloud> {
        self.runtime()?.block_on(self.tenant_cloud(tenant))
    }
}

/// Memory in place of a keyring that is not there. It warns once, when the first secret is
/// kept (only then is something lost when the run ends), not on every command that merely
/// looks for one.
struct MemoryFallback {
    inner: MemoryStore,
    why: String,
    ui: Ui,
    warned: std::sync::atomic::AtomicBool,
}

impl SecretStore for MemoryFallback {
    fn get(
        &self,
        account: &str,
    ) -> Result<Option<crate::secrets::SecretText>, crate::secrets::SecretError> {
        self.inner.get(account)
    }

    fn set(&self, account: &str, value: &str) -> Result<(), crate::secrets::SecretError> {
        if !self.warned.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.ui.warning(format!(
                "{}: secrets and the sign-in are kept in memory for this run only, never written to disk.",
                self.why
            ));
        }
        self.inner.set(account, value)
    }

    fn delete(&self, account: &str) -> Result<(), crate::secrets::SecretError> {
        self.inner.delete(account)
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

/// What several commands need from the run: the HTTPS client, the secret store, the tenant
/// store, the portal. Each is made on first use so `list` stays instant.
impl Ctx {
    pub fn http(&self) -> CommandResult<reqwest::Client> {
        Ok(crate::http::build_client(self.env.ca_cert.as_deref())?)
    }

    /// The OS keyring, or memory for this run only (warned once, when a secret is kept).
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        self.secrets
            .get_or_init(
                || match KeyringStore::probe_within(std::time::Duration::from_secs(5)) {
                    Ok(k) => Arc::new(k),
                    Err(e) => Arc::new(MemoryFallback {
                        inner: MemoryStore::default(),
                        why: e.to_string(),
                        ui: self.ui.clone(),
                        warned: std::sync::atomic::AtomicBool::new(false),
                    }),
                },
            )
            .clone()
    }

    pub fn store(&self) -> CommandResult<TenantStore> {
        Ok(TenantStore::open(&self.home)?)
    }

    pub fn home_config(&self) -> CommandResult<HomeConfig> {
        Ok(HomeConfig::load(&self.home)?)
    }

    /// What opening the partner sign-in needs, for a command that may reach a tenant onboarded
    /// through partner mode (`crate::partner::reach`). Its prompt, shown only when no partner
    /// sign-in is saved, says why and whom to sign in as: the MSP's technician, not the admin.
    pub fn partner_open(
        &self,
        method: crate::microsoft::signin::AuthMethod,
    ) -> CommandResult<crate::partner::reach::PartnerOpen> {
        let config = self.home_config()?.partner;
        let msp = config
            .as_ref()
            .map(|c| crate::ui::Untrusted(&c.domain).to_string())
            .unwrap_or_default();
        let observer = crate::ui::UiSignIn::announcing(
            &self.ui,
            format!(
                "A tenant of this command was onboarded through partner mode (GDAP): sign in once in the MSP's tenant {msp}; its own admin is not needed."
            ),
        )
        .signing_in_as(format!(
            "your own account of the MSP's tenant {msp}, with multi-factor authentication"
        ));
        Ok(crate::partner::reach::PartnerOpen {
            env: self.env.clone(),
            http: self.http()?,
            config,
            secrets: self.secrets(),
            observer: Arc::new(observer),
            method,
        })
    }

    /// The portal URL and where it came from.
    pub fn portal_url(&self) -> CommandResult<(Option<url::Url>, Source)> {
        if let Some(u) = &self.env.portal_url {
            return Ok((Some(u.clone()), Source::Environment));
        }
        match self.home_config()?.portal_url {
            Some(u) => Ok((Some(u), Source::Config)),
            None => Ok((None, Source::Missing)),
        }
    }

    /// The portal token and where it came from (never printed). A kept token is the one kept
    /// for the portal in use (by its origin): one home's token never goes to another portal.
    pub fn portal_token(
        &self,
        secrets: &dyn SecretStore,
    ) -> (Option<crate::secrets::SecretText>, Source) {
        if let Some(t) = &self.env.portal_token {
            return (Some(t.clone()), Source::Environment);
        }
        let Ok((Some(url), _)) = self.portal_url() else {
            return (None, Source::Missing);
        };
        let saved_for = self.home_config().ok().and_then(|c| c.portal_url);
        match crate::secrets::portal_token_for(secrets, &url, saved_for.as_ref()) {
            Ok(Some(t)) => (
                Some(t),
                if secrets.is_persistent() {
                    Source::Keyring
                } else {
                    Source::Memory
                },
            ),
            _ => (None, Source::Missing),
        }
    }

    /// A ready portal client, or an error that says how to configure one.
    pub fn portal(&self, secrets: &dyn SecretStore) -> CommandResult<HttpPortal> {
        let (url, _) = self.portal_url()?;
        let url = url.ok_or_else(|| {
            user_error("no MSP portal is configured")
                .hint("Run `hal-onboard portal login`, or set HAL_PORTAL_URL and HAL_PORTAL_TOKEN.")
        })?;
        if url.scheme() != "https" {
            return Err(user_error(format!("the portal URL must use https: {url}")).hint(
                "The API token and client secrets travel to the portal: fix HAL_PORTAL_URL or run `hal-onboard portal login` with its https:// address.",
            ));
        }
        let (token, _) = self.portal_token(secrets);
        let token = token.ok_or_else(|| {
            user_error("no portal API token is available")
                .hint("Run `hal-onboard portal login`, or set HAL_PORTAL_TOKEN.")
        })?;
        Ok(HttpPortal::new(self.http()?, url, token))
    }

    /// A runtime for the async clients; commands that need none never pay for one.
    pub fn runtime(&self) -> CommandResult<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| failed("cannot start the async runtime").with_source(e))
    }
}

/// The scenario a sandbox run simulates: the file given, else the demo tenant.
#[cfg(feature = "sandbox")]
pub(crate) fn sandbox_scenario(
    file: Option<&std::path::Path>,
) -> CommandResult<hal_sandbox::Scenario> {
    match file {
        Some(p) => hal_sandbox::Scenario::from_file(p).map_err(|e| {
            user_error(format!("cannot use the sandbox scenario {}", p.display()))
                .with_source(e)
                .hint("See docs/sandbox.md for the scenario format.")
        }),
        None => Ok(hal_sandbox::Scenario::demo()),
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
    if let Command::Sandbox(sandbox::SandboxCommand::Reset(a)) = &cli.command {
        return sandbox::cmd_sandbox_reset(&ui, &cli.global, a);
    }
    let ctx = Ctx::new(ui, cli.global.clone())?;
    let result = match &cli.command {
        Command::List(a) => list::cmd_list(&ctx, a),
        Command::Ual(a) => ual::cmd_ual(&ctx, a),
        Command::Doctor(a) => doctor::cmd_doctor(&ctx, a),
        Command::Portal(c) => portal::cmd_portal(&ctx, c),
        Command::Partner(c) => partner::cmd_partner(&ctx, c),
        Command::Tenant(a) => tenant::cmd_tenant(&ctx, a),
        Command::Secret(c) => secret::cmd_secret(&ctx, c),
        Command::Sandbox(c) => sandbox::cmd_sandbox(&ctx, c),
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    };
    if ctx.sandbox_throwaway() {
        // Hints would point at state that is gone the moment this run ends.
        const GONE: &str = "This sandbox was thrown away as the command ended: its tenants are gone. Run `hal-onboard tenant add --sandbox --home DIR` to keep one, then `list`, `ual retry`, `secret rotate` and `tenant remove` with the same `--sandbox --home DIR`.";
        return match result {
            Ok(()) => {
                ctx.ui.status(format!("sandbox: {GONE}"));
                Ok(())
            }
            Err(mut e) => {
                // A hint naming one of our commands would run it against state that is gone;
                // any other (a flag to change, an admin to ask) still holds.
                e.hints.retain(|h| !h.contains("`hal-onboard "));
                e.hints.push(GONE.to_string());
                Err(e)
            }
        };
    }
    result
}
