//! `hal-onboard completions SHELL` and `hal-onboard man`.

use clap::Args;
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
pub struct ManArgs {
    /// Write one page per command and subcommand into DIR (hal-onboard.1,
    /// hal-onboard-tenant-add.1, …), so every page a SEE ALSO names is there; without it the
    /// main page goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

pub fn cmd_completions(args: &CompletionsArgs) -> CommandResult {
    let mut cmd = Cli::command_tree();
    clap_complete::generate(args.shell, &mut cmd, "hal-onboard", &mut std::io::stdout());
    Ok(())
}

pub fn cmd_man(args: &ManArgs) -> CommandResult {
    let mut cmd = Cli::command_tree().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = &args.out_dir else {
        return main_page(&cmd, &mut std::io::stdout().lock())
            .map_err(|e| failed("cannot write the man page").with_source(e));
    };
    let written = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        clap_mangen::generate_to(cmd.clone(), dir)?;
        // The main page again, with its own sections.
        let mut f = std::fs::File::create(dir.join("hal-onboard.1"))?;
        main_page(&cmd, &mut f)
    };
    written().map_err(|e| {
        failed(format!("cannot write the man pages to {}", dir.display())).with_source(e)
    })
}

/// Every page `generate_to` writes, as SEE ALSO names them (`hal-onboard-tenant-add(1)`).
fn pages(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sc in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix}-{}", sc.get_name());
        out.push(format!("{name}(1)"));
        pages(sc, &name, out);
    }
}

/// hal-onboard(1): clap's sections, then EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE
/// ALSO (from README.md's tables, which are the contract).
fn main_page(cmd: &clap::Command, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;
    let esc = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let section = |w: &mut dyn std::io::Write, title: &str, items: &[(&str, &str)]| {
        writeln!(w, ".SH \"{title}\"")?;
        for (k, v) in items {
            writeln!(w, ".TP\n\\fB{}\\fR\n{}", esc(k), esc(v))?;
        }
        Ok::<(), std::io::Error>(())
    };
    section(
        w,
        "EXIT STATUS",
        &[
            ("0", "Done."),
            (
                "1",
                "Failed: the message says what happened and what to do next.",
            ),
            ("2", "Bad usage or bad input."),
            (
                "3",
                "Waiting on Microsoft (unified audit logging propagation): hal-onboard ual retry --watch finishes it.",
            ),
            (
                "130",
                "Interrupted with Ctrl-C: everything done so far is saved; the same command resumes.",
            ),
        ],
    )?;
    section(
        w,
        "ENVIRONMENT",
        &[
            ("HAL_ONBOARD_HOME", "The state directory (as --home)."),
            (
                "HAL_PORTAL_URL, HAL_PORTAL_TOKEN",
                "The MSP portal's base URL and API token (override portal login).",
            ),
            (
                "HAL_ONBOARD_PWSH",
                "The PowerShell executable (default pwsh on PATH).",
            ),
            (
                "HAL_ONBOARD_PWSH_TIMEOUT",
                "Seconds one PowerShell session may take (default 600).",
            ),
            (
                "HAL_ONBOARD_EXCHANGE_TOKEN",
                "Exchange Online access tokens minted elsewhere, one per tenant.",
            ),
            (
                "HAL_ONBOARD_CA_CERT",
                "A PEM file of extra trusted root certificates.",
            ),
            (
                "HAL_ONBOARD_CLIENT_ID",
                "The public client used to sign in (as --client-id).",
            ),
            (
                "HAL_ONBOARD_LOGIN_URL, HAL_ONBOARD_GRAPH_URL",
                "Sign-in authority host and Microsoft Graph root instead of the cloud's.",
            ),
            ("HTTPS_PROXY, NO_PROXY", "Honoured."),
            ("NO_COLOR", "No color with --color auto."),
        ],
    )?;
    section(
        w,
        "FILES",
        &[
            (
                "~/.config/hal-onboard/tenants.json",
                "Every tenant's progress and what was created (never a secret); under --home DIR, DIR/tenants.json.",
            ),
            (
                "~/.config/hal-onboard/config.json",
                "The MSP portal's URL (portal login).",
            ),
            (
                "~/.config/hal-onboard/locks/",
                "One lock per tenant while a command changes it.",
            ),
            (
                "DIR/sandbox/",
                "With --sandbox --home DIR: the kept sandbox cloud and its keyring (sandbox reset removes them).",
            ),
        ],
    )?;
    section(
        w,
        "EXAMPLES",
        &[
            (
                "hal-onboard tenant add contoso.onmicrosoft.com",
                "Onboard one tenant, asking before it changes anything.",
            ),
            (
                "hal-onboard tenant add --from tenants.csv",
                "Onboard every tenant of a CSV file (tenant, display name).",
            ),
            (
                "hal-onboard list",
                "Where every tenant stands and what is left to do.",
            ),
            (
                "hal-onboard ual retry --watch",
                "Finish unified audit logging once Microsoft has propagated.",
            ),
            (
                "hal-onboard secret rotate contoso.onmicrosoft.com",
                "A new client secret, sent to the portal, the old one removed.",
            ),
            (
                "hal-onboard tenant add --sandbox --home ./sb",
                "Try everything against the built-in sandbox, kept in ./sb.",
            ),
        ],
    )?;
    let mut see = Vec::new();
    pages(cmd, "hal-onboard", &mut see);
    writeln!(w, ".SH \"SEE ALSO\"\n{}", esc(&see.join(", ")))?;
    man.render_version_section(w)
}
