//! Clients for Microsoft's far ends: sign-in, Microsoft Graph, Exchange Online (through PowerShell).
pub mod exchange;
