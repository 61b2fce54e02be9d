//! The command line: global options and the subcommand tree.
//!
//! Each subcommand's arguments live in its own module under `commands`, where the doc comments
//! are its help text; this file only assembles them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cloud::Cloud;
use crate::commands;
use crate::microsoft::signin::AuthMethod;
use crate::session::SignIn;
use crate::ui::ColorChoice;

/// Onboard Microsoft 365 tenants to Hal: unified audit logging, one Entra ID app registration
/// with admin consent, and the credentials sent to your MSP portal.
#[derive(Debug, Parser)]
#[command(
    name = "hal-onboard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, under their own heading in each `--help`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Where hal-onboard keeps its state (tenants.json, config.json).
    /// Default: the OS config directory, e.g. ~/.config/hal-onboard.
    #[arg(long, global = true, env = "HAL_ONBOARD_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Machine output on stdout (JSON), nothing else there.
    #[arg(long, global = true)]
    pub json: bool,

    /// Never prompt; a missing answer is an error naming the flag to pass.
    /// Implied when stdin is not a terminal.
    #[arg(long, global = true)]
    pub no_input: bool,

    /// Show more detail on stderr (-v: causes and progress, -vv: HTTP requests).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to color output (NO_COLOR is honoured with auto).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// The Microsoft cloud the tenant lives in, as a check: the tenant's own OpenID
    /// configuration decides, and a value that disagrees stops the command (docs/clouds.md).
    #[arg(long, global = true, value_enum, value_name = "CLOUD")]
    pub cloud: Option<Cloud>,

    /// Run against the built-in sandbox cloud: nothing real is touched. Throwaway, unless
    /// `--home DIR` is given: then the sandbox's cloud is kept there for the next command.
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// With --sandbox: simulate the tenants of this scenario file (format: docs/sandbox.md)
    /// instead of the demo tenant (Contoso); with --home, only when the home holds no sandbox yet.
    #[arg(long, global = true, value_name = "FILE", requires = "sandbox")]
    pub sandbox_scenario: Option<PathBuf>,
}

impl Cli {
    /// The command tree as parsed, completed and documented: `completions` and `man` print
    /// text and touch no tenant, home or cloud, so the global options are hidden from them
    /// (a hidden argument of the same id there stops clap from propagating the global one).
    pub fn command_tree() -> clap::Command {
        use clap::{Arg, ArgAction};
        let hidden = |id: &'static str, long: &'static str, action: ArgAction| {
            let a = Arg::new(id).long(long).hide(true).action(action);
            if id == "verbose" { a.short('v') } else { a }
        };
        let mut cmd = <Cli as clap::CommandFactory>::command();
        for name in ["completions", "man"] {
            cmd = cmd.mut_subcommand(name, |sc| {
                sc.args([
                    hidden("home", "home", ArgAction::Set),
                    hidden("json", "json", ArgAction::SetTrue),
                    hidden("no_input", "no-input", ArgAction::SetTrue),
                    hidden("verbose", "verbose", ArgAction::Count),
                    hidden("color", "color", ArgAction::Set),
                    hidden("cloud", "cloud", ArgAction::Set),
                    hidden("sandbox", "sandbox", ArgAction::SetTrue),
                    hidden("sandbox_scenario", "sandbox-scenario", ArgAction::Set),
                ])
            });
        }
        cmd
    }

    /// Parses the process's arguments against [`Cli::command_tree`].
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        use clap::FromArgMatches;
        let mut cmd = Cli::command_tree();
        let m = cmd.try_get_matches_from_mut(std::env::args_os())?;
        Cli::from_arg_matches(&m).map_err(|e| e.format(&mut cmd))
    }
}

/// The flags that choose how to sign in, shared by every command that signs in
/// (`tenant add`, `tenant remove --delete-app`, `secret rotate`).
#[derive(Debug, Clone, Args)]
pub struct SignInArgs {
    /// How to sign in: device code (default, works over SSH), a browser on this machine (for
    /// Conditional Access that blocks device codes; a device code instead where no browser can
    /// be opened), or the Azure CLI's `az login`.
    #[arg(long, value_enum, default_value_t = AuthMethod::DeviceCode, value_name = "METHOD")]
    pub auth: AuthMethod,

    /// The public client to sign in with [default: Microsoft Graph Command Line Tools,
    /// or HAL_ONBOARD_CLIENT_ID].
    #[arg(long, value_name = "GUID")]
    pub client_id: Option<String>,

    /// Keep your sign-in (refresh tokens in the OS keyring) for this tenant after its work is
    /// finished; recorded, and shown by `list` as "sign-in kept". Without it the sign-in is
    /// forgotten once nothing is pending for the tenant.
    #[arg(long, overrides_with = "no_keep_sign_in")]
    pub keep_sign_in: bool,

    /// Stop keeping your sign-in for this tenant (undoes an earlier `--keep-sign-in`): it is
    /// forgotten now if nothing is pending, otherwise once the tenant's work is finished.
    #[arg(long, overrides_with = "keep_sign_in")]
    pub no_keep_sign_in: bool,
}

/// What `--keep-sign-in` / `--no-keep-sign-in` ask of the tenant's recorded choice: set it,
/// clear it, or leave it as an earlier run recorded it (neither given). The last one given wins.
pub fn keep_sign_in_choice(keep: bool, no_keep: bool) -> Option<bool> {
    match (keep, no_keep) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl SignInArgs {
    /// The recorded `keepSignIn` this run asks for ([`keep_sign_in_choice`]).
    pub fn keep_sign_in(&self) -> Option<bool> {
        keep_sign_in_choice(self.keep_sign_in, self.no_keep_sign_in)
    }

    /// The sign-in these flags ask for, in `cloud` (`--cloud`) when given.
    pub fn sign_in(&self, cloud: Option<Cloud>) -> SignIn {
        SignIn {
            method: self.auth,
            client_id: self.client_id.clone(),
            cloud,
            extra_scopes: vec![],
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Onboard a tenant (`tenant add`), or stop managing one (`tenant remove`).
    Tenant(commands::tenant::TenantArgs),
    /// A tenant's client secret: rotate it before it expires.
    #[command(subcommand)]
    Secret(commands::secret::SecretCommand),
    /// Every tenant, where it stands, what is still to do, when its secret expires.
    List(commands::list::ListArgs),
    /// Unified audit logging: finish what Microsoft's propagation delayed.
    Ual(commands::ual::UalArgs),
    /// Check this machine: PowerShell, the Exchange module, the keyring, the endpoints.
    Doctor(commands::doctor::DoctorArgs),
    /// Partner mode (GDAP): set up the partner app in your MSP's own tenant, then sign in
    /// there once for every customer.
    #[command(subcommand)]
    Partner(commands::partner::PartnerCommand),
    /// The MSP portal: save its URL and token, check them, resend credentials.
    #[command(subcommand)]
    Portal(commands::portal::PortalCommand),
    /// The simulated Microsoft cloud on its own, for other clients (`sandbox serve`).
    #[command(subcommand)]
    Sandbox(commands::sandbox::SandboxCommand),
    /// Print a shell completion script.
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    #[command(name = "man")]
    Man(commands::completions::ManArgs),
}
