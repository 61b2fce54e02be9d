//! A sandbox cloud that lasts: its tenants' directories, Exchange organizations, the portal's
//! records and the signing key (so tokens issued by one run verify in the next) kept in one
//! file, `cloud.json`, written after every request that may change something.
//!
//! Each write goes to a temporary file that then replaces `cloud.json` (a rename), so a run
//! killed at any moment leaves the last whole state, never half of one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::exchange::ExchangeSnapshot;
use crate::portal::Received;
use crate::scenario::{Scenario, TenantScenario};
use crate::state::{
    AppRoleAssignment, Application, OAuth2Grant, Owner, SecretState, ServicePrincipal, TenantState,
};

/// The file's name in the sandbox's directory.
pub const FILE: &str = "cloud.json";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Saved {
    pub version: u32,
    pub scenario: Scenario,
    /// The token signing key (base64): the sandbox's own, simulated credentials only.
    pub key: String,
    pub tenants: Vec<SavedTenant>,
    pub exchange: HashMap<Uuid, ExchangeSnapshot>,
    pub module_installed: bool,
    pub portal: HashMap<String, Received>,
    /// Consents made in customers (Partner Center's or an admin's) and when they take effect.
    #[serde(default)]
    pub partner_consents: Vec<crate::gdap::KeptConsent>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedTenant {
    pub scenario: TenantScenario,
    pub applications: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    pub assignments: Vec<AppRoleAssignment>,
    pub secrets: HashMap<Uuid, SecretState>,
    pub replicating: HashMap<Uuid, u32>,
    pub graph_requests: u64,
    pub created: String,
    pub app_owners: HashMap<Uuid, Vec<Owner>>,
    #[serde(default)]
    pub oauth2_grants: Vec<OAuth2Grant>,
}

impl SavedTenant {
    pub fn of(t: &TenantState) -> SavedTenant {
        SavedTenant {
            scenario: t.scenario.clone(),
            applications: t.applications.clone(),
            service_principals: t.service_principals.clone(),
            assignments: t.assignments.clone(),
            secrets: t.secrets.clone(),
            replicating: t.replicating.clone(),
            graph_requests: t.graph_requests,
            created: t.created.clone(),
            app_owners: t.app_owners.clone(),
            oauth2_grants: t.oauth2_grants.clone(),
        }
    }

    pub fn restore(self, t: &mut TenantState) {
        t.scenario = self.scenario;
        t.applications = self.applications;
        t.service_principals = self.service_principals;
        t.assignments = self.assignments;
        t.secrets = self.secrets;
        t.replicating = self.replicating;
        t.graph_requests = self.graph_requests;
        t.created = self.created;
        t.app_owners = self.app_owners;
        t.oauth2_grants = self.oauth2_grants;
    }
}

pub(crate) fn encode_key(key: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

pub(crate) fn decode_key(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// What an earlier run kept in `dir`, if anything. A file that does not parse is an error:
/// throwing it away silently would lose the technician's sandbox tenants.
pub(crate) fn load(dir: &Path) -> Result<Option<Saved>, std::io::Error> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `saved` whole, replacing the earlier file in one rename.
pub(crate) fn store(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    let text = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
    let tmp: PathBuf = dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(FILE))
}
