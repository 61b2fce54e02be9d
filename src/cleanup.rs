//! Temporary folders that must go however the process ends: a normal exit, Ctrl-C, SIGTERM,
//! or a lost terminal (SIGHUP). `std::process::exit` runs no destructors, so a `TempDir`
//! alone would be left behind by every ending but the last line of `main`; each ending calls
//! [`run`] instead, just before it exits.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

static FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes `dir` (and everything in it) when the process ends.
pub fn remove_at_exit(dir: PathBuf) {
    FOLDERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(dir);
}

/// Removes every registered folder now (once: later calls find none).
pub fn run() {
    let dirs = std::mem::take(&mut *FOLDERS.lock().unwrap_or_else(PoisonError::into_inner));
    for d in dirs {
        let _ = std::fs::remove_dir_all(&d);
    }
}
