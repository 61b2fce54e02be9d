//! What every integration test shares: starting `hal-onboard` from a cleared environment, and
//! the harnesses of each area.
//!
//! Nothing of the developer's machine leaks into the tool under test: no HAL_* variable, no
//! proxy, no home, no D-Bus session unless the keyring is meant to answer (CI's real Secret
//! Service, `HAL_ONBOARD_TEST_KEYRING=1`). Each test adds exactly the variables it means.

#![allow(dead_code)]

pub mod common;
pub mod contract;
pub mod exchange;
pub mod store;

use std::sync::OnceLock;

/// A home directory that holds nothing of the developer's, shared by the whole run.
fn empty_home() -> &'static std::path::Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("a temporary HOME"))
        .path()
}

/// The variables passed through: what finds programs, and the session bus the keyring needs.
const PASSED: &[&str] = &[
    "PATH",
    "TMPDIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
    "GNOME_KEYRING_CONTROL",
    "LLVM_PROFILE_FILE",
];

fn cleared_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    env.push(("HOME".into(), empty_home().display().to_string()));
    env.push(("LANG".into(), "C.UTF-8".into()));
    env
}

/// `hal-onboard`, to run with tokio, from a cleared environment.
pub fn hal_onboard() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_hal-onboard"));
    c.env_clear().envs(cleared_env());
    c
}

/// `hal-onboard`, as a std command (pseudo-terminal tests), from a cleared environment.
pub fn hal_onboard_std() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hal-onboard"));
    c.env_clear().envs(cleared_env());
    c
}
