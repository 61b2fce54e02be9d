//! Temporary folders that must go however the process ends: a normal exit, Ctrl-C, SIGTERM,
//! or a lost terminal (SIGHUP). `std::process::exit` runs no destructors, so a `TempDir`
//! alone would be left behind by every ending but the last line of `main`; each ending calls
//! [`run`] instead, just before it exits.
//!
//! The same holds for child process groups (the PowerShell bridge's): `kill_on_drop` needs a
//! drop, and an exit while a job still waits on its child would leave the child running in the
//! customer's tenant. [`end_at_exit`] registers a group; [`run`] ends every one still running.

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

static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A child process group ended at exit unless it ended first (the guard's drop).
#[must_use = "the group is forgotten when the guard drops"]
pub struct ChildGroup(u32);

/// Ends the process group led by `pid` (a child spawned with `process_group(0)`) when the
/// process ends, if it is still registered then.
pub fn end_at_exit(pid: u32) -> ChildGroup {
    GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pid);
    ChildGroup(pid)
}

impl Drop for ChildGroup {
    fn drop(&mut self) {
        GROUPS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| *p != self.0);
    }
}

/// Child process groups still registered (tests).
pub fn child_groups() -> Vec<u32> {
    GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Ends every registered child group and removes every registered folder now (once: later
/// calls find none).
pub fn run() {
    let groups = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(PoisonError::into_inner));
    #[cfg(unix)]
    for pid in groups {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    drop(groups);
    let dirs = std::mem::take(&mut *FOLDERS.lock().unwrap_or_else(PoisonError::into_inner));
    for d in dirs {
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_registered_child_group_is_ended_by_run_and_a_finished_one_is_forgotten() {
        let mut cmd = std::process::Command::new("sleep");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.arg("30").spawn().unwrap();
        let pid = child.id();
        let guard = end_at_exit(pid);
        assert!(child_groups().contains(&pid));
        let forgotten = end_at_exit(u32::MAX - 7);
        drop(forgotten);
        assert!(!child_groups().contains(&(u32::MAX - 7)));
        run();
        let status = child.wait().unwrap();
        assert!(!status.success(), "sleep 30 was ended: {status:?}");
        drop(guard);
    }
}
