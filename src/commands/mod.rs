//! One module per subcommand, each thin: parse → call the wizard or a client → report.

pub mod completions;
pub mod doctor;
pub mod list;
pub mod tenant;
pub mod ual;

use std::path::PathBuf;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::cloud::Cloud;
use crate::config::{EnvOverrides, default_home};
use crate::error::{CommandResult, user_error};
use crate::ui::Ui;

/// What every command gets: the terminal, the resolved home, the environment's overrides.
pub struct Ctx {
    pub ui: Ui,
    pub global: GlobalArgs,
    pub env: EnvOverrides,
    pub home: PathBuf,
}

impl Ctx {
    pub fn new(ui: Ui, global: GlobalArgs) -> CommandResult<Ctx> {
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
        })
    }

    pub fn cloud(&self) -> Cloud {
        self.global.cloud.unwrap_or_default()
    }
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
        Command::Tenant(a) => tenant::cmd_tenant(&ctx, a),
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    }
}
