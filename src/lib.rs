//! hal-onboard: the library behind the `hal-onboard` command.
//!
//! Arrows point one way: `commands` → `wizard` (and `session`, which signs in) → clients
//! (`microsoft`, `portal`, `secrets`, `store`). A client never prints; a step never reads a
//! flag; only `ui` touches the terminal; no command imports another; every error reaches the
//! technician through `error`'s one map. See docs/architecture.md.

pub mod cleanup;
pub mod cli;
pub mod cloud;
pub mod commands;
pub mod config;
pub mod error;
pub mod http;
pub mod microsoft;
pub mod partner;
pub mod portal;
#[cfg(feature = "sandbox")]
pub mod sandbox_keyring;
pub mod secrets;
pub mod session;
pub mod store;
pub mod tenant;
pub mod ui;
pub mod wizard;
