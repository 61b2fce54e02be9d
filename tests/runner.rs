//! The one integration-test binary: one module per command and aspect (`<command>_<aspect>`),
//! one way to start the tool (`support::hal_onboard`), from a cleared environment.

mod support;

mod bridge_sandbox;
mod bridge_scripts_parse;
mod bridge_steps;
mod contract_bridge;
mod contract_portal;
mod doctor_exchange;
mod graph_client;
mod help_and_man;
mod interrupt_every_command;
mod interrupt_pty;
mod keyring_secret_service;
mod list_output;
mod lock_every_command;
mod parsers_hostile_input;
mod portal_commands;
mod sandbox_kept;
mod secret_rotate;
mod signin_browser_chromium;
mod signin_device_code;
mod signin_messages;
mod signin_sandbox;
mod signin_terminal;
mod store_atomic;
mod store_home;
mod store_lookup;
mod store_refuse;
mod tenant_add_adoption;
mod tenant_add_clouds;
mod tenant_add_exchange;
mod tenant_add_faults;
mod tenant_add_lock;
mod tenant_add_portal_e2e;
mod tenant_add_portal_trust;
mod tenant_add_provision;
mod tenant_add_pty;
mod tenant_add_sanitize;
mod tenant_add_secrets_never_leak;
mod tenant_add_signin_kept;
mod tenant_add_waiting;
mod tenant_remove;
mod ual_exchange_edges;
mod ual_retry;
