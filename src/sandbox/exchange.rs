//! The sandbox's Exchange Online: per-tenant organization state, reached through the stand-in
//! PowerShell. (Being built; the types below are the contract the rest of the sandbox uses.)

use serde::{Deserialize, Serialize};

/// Per-tenant Exchange knobs in a scenario file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExchangeScenario {
    /// The organization starts dehydrated (Get-OrganizationConfig IsDehydrated = True).
    pub dehydrated: bool,
    /// After hydration, how many Set-AdminAuditLogConfig calls fail with the dehydration error
    /// before one succeeds (Microsoft's propagation delay).
    pub propagation_attempts: u32,
    /// Unified audit log ingestion is already on.
    pub ual_enabled: bool,
}
