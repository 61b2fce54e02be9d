//! Clients for Microsoft's far ends: sign-in, Microsoft Graph, Exchange Online (through PowerShell).
//!
//! Clients never print and never read flags: they take options, report through small observer
//! traits, and return typed errors.

pub mod exchange;
pub mod graph;
pub mod partner_center;
pub mod signin;
