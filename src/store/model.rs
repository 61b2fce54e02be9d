//! The tenant store's document: what `tenants.json` holds.
//!
//! This is the durable memory of every onboarding: which steps finished, what was created in
//! the customer's tenant (so a re-run finds it instead of making a second one), and when the
//! secret expires. It never holds a secret: the client secret, refresh tokens and the portal
//! token live only in memory and the OS keyring.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cloud::Cloud;

/// Bumped when a change would make an older hal-onboard misread the file.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreDoc {
    pub schema_version: u32,
    #[serde(default)]
    pub tenants: Vec<TenantRecord>,
}

impl Default for StoreDoc {
    fn default() -> Self {
        StoreDoc {
            schema_version: SCHEMA_VERSION,
            tenants: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRecord {
    /// Directory (tenant) ID.
    pub tenant_id: Uuid,
    /// The tenant's default domain, e.g. `contoso.onmicrosoft.com`.
    pub primary_domain: String,
    /// Every verified domain seen, so a technician can name the tenant by any of them.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The initial `*.onmicrosoft.com` domain (Graph `verifiedDomains` `isInitial`): what
    /// `Connect-ExchangeOnline -Organization` is given, since Microsoft documents only it and
    /// the tenant ID there, never a vanity default domain. `None` in records from before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_domain: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub cloud: Cloud,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(default)]
    pub steps: Steps,
    /// Our app registration in the customer's tenant, once created or found.
    #[serde(default)]
    pub app: Option<AppRecord>,
    /// The current client secret's metadata (never its value).
    #[serde(default)]
    pub secret: Option<SecretRecord>,
    /// Application permissions confirmed granted (admin consent), as `resource/value`.
    #[serde(default)]
    pub granted_permissions: Vec<String>,
    #[serde(default)]
    pub license: Option<EntraLicense>,
    #[serde(default)]
    pub ual: UalRecord,
    #[serde(default)]
    pub portal: PortalRecord,
    /// The technician asked to keep their sign-in (refresh tokens) for this tenant after its
    /// work is finished (`--keep-sign-in`); otherwise it is forgotten then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_sign_in: bool,
    /// How the technician signs in to this tenant: as the customer's own admin, or through the
    /// MSP's partner sign-in (GDAP). Written only for partner records, so a file that older
    /// versions wrote, or that only direct onboardings touched, is unchanged.
    #[serde(default, skip_serializing_if = "Via::is_direct")]
    pub via: Via,
}

/// Which sign-in onboarded (and so maintains) a tenant: `ual retry`, `secret rotate` and
/// `tenant remove` take the same way in, so a partner-onboarded customer never needs its admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    /// The customer's own admin signed in (`tenant add`).
    #[default]
    Direct,
    /// The MSP's technician through GDAP (`tenant add --partner`).
    Partner,
}

impl Via {
    pub fn is_direct(&self) -> bool {
        *self == Via::Direct
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::Partner => "partner",
        }
    }
}

impl TenantRecord {
    pub fn new(tenant_id: Uuid, primary_domain: &str, display_name: &str, cloud: Cloud) -> Self {
        let now = OffsetDateTime::now_utc();
        TenantRecord {
            tenant_id,
            primary_domain: primary_domain.to_string(),
            domains: vec![primary_domain.to_string()],
            initial_domain: None,
            display_name: display_name.to_string(),
            cloud,
            created_at: now,
            updated_at: now,
            steps: Steps::default(),
            app: None,
            secret: None,
            granted_permissions: Vec::new(),
            license: None,
            ual: UalRecord::default(),
            portal: PortalRecord::default(),
            keep_sign_in: false,
            via: Via::Direct,
        }
    }

    pub fn step(&self, id: StepId) -> &StepState {
        match id {
            StepId::Exchange => &self.steps.exchange,
            StepId::App => &self.steps.app,
            StepId::Secret => &self.steps.secret,
            StepId::Consent => &self.steps.consent,
            StepId::Verify => &self.steps.verify,
            StepId::Portal => &self.steps.portal,
        }
    }

    pub fn step_mut(&mut self, id: StepId) -> &mut StepState {
        match id {
            StepId::Exchange => &mut self.steps.exchange,
            StepId::App => &mut self.steps.app,
            StepId::Secret => &mut self.steps.secret,
            StepId::Consent => &mut self.steps.consent,
            StepId::Verify => &mut self.steps.verify,
            StepId::Portal => &mut self.steps.portal,
        }
    }
}

/// The wizard's steps, in the order they run (the guide's steps 1–4, then verify and portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepId {
    Exchange,
    App,
    Secret,
    Consent,
    Verify,
    Portal,
}

impl StepId {
    pub const ALL: [StepId; 6] = [
        StepId::Exchange,
        StepId::App,
        StepId::Secret,
        StepId::Consent,
        StepId::Verify,
        StepId::Portal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepId::Exchange => "exchange",
            StepId::App => "app",
            StepId::Secret => "secret",
            StepId::Consent => "consent",
            StepId::Verify => "verify",
            StepId::Portal => "portal",
        }
    }

    /// What the step does, as the wizard's plan shows it.
    pub fn title(self) -> &'static str {
        match self {
            StepId::Exchange => "Exchange audit logging (hydrate, enable UAL)",
            StepId::App => "App registration",
            StepId::Secret => "Client secret",
            StepId::Consent => "Permissions and admin consent",
            StepId::Verify => "Verify the credentials",
            StepId::Portal => "Send to the MSP portal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Steps {
    #[serde(default)]
    pub exchange: StepState,
    #[serde(default)]
    pub app: StepState,
    #[serde(default)]
    pub secret: StepState,
    #[serde(default)]
    pub consent: StepState,
    #[serde(default)]
    pub verify: StepState,
    #[serde(default)]
    pub portal: StepState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    #[default]
    NotStarted,
    Done,
    /// Waiting on Microsoft (UAL propagation); not a failure.
    Waiting,
    Failed,
    /// Left out on purpose (`--skip-exchange`).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepState {
    #[serde(default)]
    pub status: StepStatus,
    /// When the status last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    #[serde(default)]
    pub attempts: u32,
    /// The last error's one-line text (never a secret or token).
    #[serde(default)]
    pub last_error: Option<String>,
}

impl StepState {
    pub fn is_done(&self) -> bool {
        self.status == StepStatus::Done
    }

    pub fn record(&mut self, status: StepStatus, error: Option<String>) {
        self.status = status;
        self.at = Some(OffsetDateTime::now_utc());
        self.attempts += 1;
        self.last_error = error;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    /// The application object's ID (Graph `/applications/{id}`).
    pub object_id: String,
    /// Application (client) ID.
    pub app_id: String,
    pub display_name: String,
    /// Our service principal's object ID, once it exists.
    #[serde(default)]
    pub service_principal_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub key_id: String,
    /// The first characters Microsoft shows (`hint`), to tell secrets apart.
    pub hint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntraLicense {
    #[serde(rename = "none")]
    None,
    P1,
    P2,
}

impl EntraLicense {
    pub fn as_str(self) -> &'static str {
        match self {
            EntraLicense::None => "none",
            EntraLicense::P1 => "P1",
            EntraLicense::P2 => "P2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UalState {
    #[default]
    Unknown,
    Enabled,
    /// Hydration done, Set-AdminAuditLogConfig still refused: Microsoft is propagating.
    WaitingPropagation,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UalRecord {
    #[serde(default)]
    pub state: UalState,
    /// When Enable-OrganizationCustomization was run by us (the propagation clock starts here).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub hydrated_at: Option<OffsetDateTime>,
    /// When Get-AdminAuditLogConfig first said True.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub enabled_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PortalState {
    #[default]
    NotSent,
    Submitted,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalRecord {
    #[serde(default)]
    pub state: PortalState,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub submitted_at: Option<OffsetDateTime>,
    /// Which secret the portal holds, to tell a stale submission after rotation.
    #[serde(default)]
    pub secret_key_id: Option<String>,
    /// The status the portal was last told (by the submission or a status update), to tell
    /// when it needs a `PATCH` (e.g. UAL verified by `ual retry` after the submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told: Option<PortalStatus>,
}

/// Status fields as the portal received them (`ualStatus`, `entraLicense`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalStatus {
    pub ual_status: String,
    pub entra_license: String,
}

#[cfg(test)]
mod keep_sign_in_tests {
    use super::*;

    #[test]
    fn a_record_written_before_keep_sign_in_still_loads_and_is_written_the_same() {
        let rec = TenantRecord::new(
            Uuid::from_u128(7),
            "contoso.onmicrosoft.com",
            "Contoso",
            Cloud::Global,
        );
        let json = serde_json::to_value(&rec).unwrap();
        assert!(json.get("keepSignIn").is_none(), "{json}");
        let back: TenantRecord = serde_json::from_value(json).unwrap();
        assert!(!back.keep_sign_in);

        let mut kept = rec.clone();
        kept.keep_sign_in = true;
        let json = serde_json::to_value(&kept).unwrap();
        assert_eq!(json["keepSignIn"], true);
        assert!(
            serde_json::from_value::<TenantRecord>(json)
                .unwrap()
                .keep_sign_in
        );
    }
}

#[cfg(test)]
mod via_tests {
    use super::*;

    fn rec() -> TenantRecord {
        TenantRecord::new(
            Uuid::from_u128(9),
            "fabrikam.onmicrosoft.com",
            "Fabrikam",
            Cloud::Global,
        )
    }

    #[test]
    fn a_record_without_via_reads_as_direct_and_direct_is_not_written() {
        let json = serde_json::to_value(rec()).unwrap();
        assert!(json.get("via").is_none(), "{json}");
        let back: TenantRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.via, Via::Direct);
    }

    #[test]
    fn a_partner_record_says_so_and_reads_back() {
        let mut r = rec();
        r.via = Via::Partner;
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["via"], "partner");
        let back: TenantRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.via, Via::Partner);
        // Written as "direct" by hand (or a later version) still reads.
        let mut json = serde_json::to_value(&r).unwrap();
        json["via"] = "direct".into();
        assert_eq!(
            serde_json::from_value::<TenantRecord>(json).unwrap().via,
            Via::Direct
        );
    }
}
