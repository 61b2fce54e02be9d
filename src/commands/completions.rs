//! `hal-onboard completions SHELL` and `hal-onboard man`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{CommandResult, failed};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {}

pub fn cmd_completions(args: &CompletionsArgs) -> CommandResult {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "hal-onboard", &mut std::io::stdout());
    Ok(())
}

pub fn cmd_man(_args: &ManArgs) -> CommandResult {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout())
        .map_err(|e| failed("cannot write the man page").with_source(e))
}
