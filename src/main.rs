//! The thin binary: parse, run, map the error to an exit code (the map is `error.rs`).

use hal_onboard::cli::Cli;
use hal_onboard::error::{CommandError, ExitStatus};
use hal_onboard::ui::{Ui, interrupt};

fn main() {
    // The sandbox links this binary as `pwsh`: then it is the stand-in PowerShell.
    #[cfg(feature = "sandbox")]
    let stem = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().to_lowercase()));
    #[cfg(feature = "sandbox")]
    if matches!(stem.as_deref(), Some("pwsh" | "powershell")) {
        std::process::exit(hal_sandbox::pwsh::main());
    }
    hal_onboard::secrets::forbid_core_dumps();
    let cli = match Cli::try_parse_args() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => ExitStatus::Usage.code(),
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let g = &cli.global;
    let ui = Ui::new(g.color, g.json, g.no_input, g.verbose);
    init_tracing(g.verbose);
    interrupt::watch(&ui);
    // A panic is a bug: it ends as an internal error that says how to report it.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hal_onboard::commands::run(cli, ui.clone())
    }))
    .unwrap_or_else(|panic| Err(CommandError::internal(panic_message(panic.as_ref()))));
    // Exactly one of this and the Ctrl-C watcher prints how the run ended, and exits.
    let _exiting = interrupt::exiting();
    let code = match interrupt::attribute(result) {
        Ok(()) => 0,
        Err(e) => {
            ui.error(&e);
            e.status.code()
        }
    };
    hal_onboard::cleanup::run();
    std::process::exit(code);
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic".into(),
    }
}

/// `-v` shows our own progress, `-vv` the HTTP layer too. Tracing never sees a secret:
/// clients log URLs and statuses, not bodies or headers.
fn init_tracing(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let filter = match verbose {
        1 => "hal_onboard=debug",
        _ => "hal_onboard=trace,reqwest=debug,hyper_util=debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(false)
        .try_init();
}

/// `list` parses a document of thousands of small strings; mimalloc makes those allocations
/// markedly cheaper than glibc's malloc (measured by benches/list.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
