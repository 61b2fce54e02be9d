//! Ctrl-C, the same for every command: exit 130 (README "Exit codes") and a line saying that
//! everything done so far is saved.
//!
//! `main` starts [`watch`] before the command runs. On Ctrl-C the watcher notes it
//! ([`requested`]) and gives the command a moment to end by itself — the PowerShell bridge ends
//! its child, `ual retry` reports what each tenant did — then prints the interruption and ends
//! the process with exit 130. A command that reports by itself after Ctrl-C holds a
//! [`Reporting`] guard, which makes that moment longer. A command that returns an error after
//! Ctrl-C ends with 130 as well ([`attribute`]): whatever failed, failed because of it.
//!
//! Stopping at any point is safe: every result is saved as it happens (atomic store writes).
//! The watcher is needed because once anything in the process has listened for Ctrl-C (the
//! bridge does), the default action, ending the process, no longer applies to the rest of the
//! run.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Ui;
use crate::error::{CommandError, CommandResult, ExitStatus};

/// How long a command has after Ctrl-C to end by itself.
const GRACE: Duration = Duration::from_millis(300);
/// How long a command holding [`Reporting`] has.
const REPORT_GRACE: Duration = Duration::from_secs(5);

static REQUESTED: AtomicBool = AtomicBool::new(false);
static REPORTING: AtomicUsize = AtomicUsize::new(0);
static EXITING: Mutex<()> = Mutex::new(());

/// Watches for Ctrl-C for the rest of the process, on a thread of its own (so a command that
/// needs no async runtime, such as `list`, still does not start one).
pub fn watch(ui: &Ui) {
    let ui = ui.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let watcher = move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return; // Ctrl-C keeps its default action.
        };
        let interrupted = rt.block_on(async {
            // The handler is installed here, before `watch` returns: a Ctrl-C a moment after
            // start must not find the default action (death, without a word) still in place.
            let Ok(mut presses) = Presses::install() else {
                let _ = ready_tx.send(());
                return false;
            };
            let _ = ready_tx.send(());
            presses.next().await;
            note();
            let started = Instant::now();
            loop {
                let waited = started.elapsed();
                let reporting = REPORTING.load(Ordering::SeqCst) > 0;
                if waited >= REPORT_GRACE || (waited >= GRACE && !reporting) {
                    return true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    // A second Ctrl-C does not wait.
                    _ = presses.next() => return true,
                }
            }
        });
        if interrupted {
            let _exiting = exiting();
            ui.error(&CommandError::interrupted());
            crate::cleanup::run();
            std::process::exit(ExitStatus::Interrupted.code());
        }
    };
    #[cfg(unix)]
    watch_endings();
    // Without the thread, Ctrl-C keeps its default action (the process ends).
    if std::thread::Builder::new()
        .name("ctrl-c".into())
        .spawn(watcher)
        .is_ok()
    {
        let _ = ready_rx.recv_timeout(Duration::from_secs(2));
    }
}

/// SIGTERM and SIGHUP (the terminal was closed): the process ends as it would by default
/// (128 + the signal), but only after the temporary folders are removed.
#[cfg(unix)]
fn watch_endings() {
    use tokio::signal::unix::{SignalKind, signal};
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let watcher = move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let code = rt.block_on(async {
            let (Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                let _ = ready_tx.send(());
                return None;
            };
            let _ = ready_tx.send(());
            tokio::select! {
                _ = term.recv() => Some(128 + libc::SIGTERM),
                _ = hup.recv() => Some(128 + libc::SIGHUP),
            }
        });
        if let Some(code) = code {
            let _exiting = exiting();
            crate::cleanup::run();
            std::process::exit(code);
        }
    };
    if std::thread::Builder::new()
        .name("endings".into())
        .spawn(watcher)
        .is_ok()
    {
        let _ = ready_rx.recv_timeout(Duration::from_secs(2));
    }
}

/// Ctrl-C presses, listened for from the moment of [`Presses::install`].
struct Presses {
    #[cfg(unix)]
    sig: tokio::signal::unix::Signal,
    #[cfg(not(unix))]
    sig: tokio::signal::windows::CtrlC,
}

impl Presses {
    fn install() -> std::io::Result<Presses> {
        #[cfg(unix)]
        let sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        #[cfg(not(unix))]
        let sig = tokio::signal::windows::ctrl_c()?;
        Ok(Presses { sig })
    }

    async fn next(&mut self) {
        self.sig.recv().await;
    }
}

/// Ctrl-C was pressed during this run.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Notes a Ctrl-C seen elsewhere (a prompt reads it as a key).
pub fn note() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The command's result as the run ends: after Ctrl-C, an error is the interruption.
pub fn attribute(result: CommandResult) -> CommandResult {
    match result {
        Err(e) if requested() && e.status != ExitStatus::Interrupted => {
            tracing::debug!("after Ctrl-C: {}", e.message);
            Err(CommandError::interrupted())
        }
        r => r,
    }
}

/// Held while the run prints its end and exits, so that `main` and the watcher never both do.
pub fn exiting() -> MutexGuard<'static, ()> {
    EXITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// While alive, Ctrl-C waits (a few seconds at most) for the command to report what it
/// stopped, and then to end by itself.
pub struct Reporting(());

impl Reporting {
    pub fn start() -> Reporting {
        REPORTING.fetch_add(1, Ordering::SeqCst);
        Reporting(())
    }
}

impl Drop for Reporting {
    fn drop(&mut self) {
        REPORTING.fetch_sub(1, Ordering::SeqCst);
    }
}
