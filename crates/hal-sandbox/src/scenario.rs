//! What a sandbox cloud starts with: tenants, their signed-in technician, licences and the
//! knobs that make Microsoft's awkward behaviours (replication delay, throttling, slow secrets)
//! happen on purpose. Read from JSON (camelCase, every field optional).

use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::exchange::ExchangeScenario;

/// The whole sandbox: one or more tenants and the MSP portal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Scenario {
    pub tenants: Vec<TenantScenario>,
    pub portal: PortalScenario,
    /// An MSP (partner) tenant and its GDAP relationships to the other tenants (gdap.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<super::gdap::PartnerScenario>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            tenants: vec![TenantScenario::default()],
            portal: PortalScenario::default(),
            partner: None,
        }
    }
}

/// The MSP portal simulator (crates/hal-sandbox/src/portal.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PortalScenario {
    /// The API token the portal accepts.
    pub token: String,
    /// The first N credential submissions fail with a 5xx.
    pub fail_first: u32,
    /// Every request is answered `200 OK` with an HTML page, as a captive portal or a wrong URL
    /// does: nothing it answers may count as accepted.
    pub html_answers: bool,
    /// Milliseconds added to every portal answer (to interrupt a run while it sends).
    pub latency_ms: u64,
}

/// The Microsoft cloud a tenant lives in. The sandbox serves every tenant on 127.0.0.1 alike;
/// the cloud shows where Microsoft shows it, in the tenant's OpenID configuration document
/// (`tenant_region_scope`, `tenant_region_sub_scope`, `cloud_instance_name`, `msgraph_host`, …).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TenantCloud {
    /// Microsoft's global service (commercial).
    #[default]
    Global,
    /// Government Community Cloud: the global service, marked `tenant_region_sub_scope: GCC`.
    Gcc,
    /// Microsoft Cloud for US Government, GCC High.
    Usgov,
    /// Microsoft Cloud for US Government, DoD.
    UsgovDod,
    /// Microsoft 365 operated by 21Vianet in China.
    China,
}

/// One Microsoft 365 tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TenantScenario {
    pub id: Uuid,
    pub display_name: String,
    /// The cloud the tenant lives in (`global`, `gcc`, `usgov`, `usgov-dod`, `china`).
    pub cloud: TenantCloud,
    /// Verified domains; the first is the default (and initial `*.onmicrosoft.com`) domain.
    pub domains: Vec<String>,
    pub signed_in_user: UserScenario,
    /// SKU part numbers, e.g. `AAD_PREMIUM` (Entra ID P1), `AAD_PREMIUM_P2`, `ENTERPRISEPREMIUM`.
    pub licenses: Vec<String>,
    /// The Office 365 Management APIs service principal does not exist yet.
    pub o365_management_sp_missing: bool,
    /// Tenant app management policy: the longest password credential lifetime, in days.
    pub secret_max_lifetime_days: Option<u32>,
    /// After an application or service principal is created, this many requests referencing it
    /// by id/appId answer as if it did not exist (directory replication).
    pub replication_delay_requests: u32,
    /// Every Nth Graph request answers 429 (0 = never).
    pub throttle_every: u32,
    /// Every Nth `$batch` request is throttled whole: the envelope answers 429 (0 = never).
    pub throttle_batch_every: u32,
    /// The `Retry-After` of a throttled answer, in seconds; 0 sends none (the client then
    /// backs off on its own). (1)
    pub throttle_retry_after: u64,
    /// Scripted Graph faults, each answered `times` times to the requests it matches.
    pub faults: Vec<FaultScenario>,
    /// The tenant's default app management policy forbids client secrets (the
    /// `passwordAddition` restriction): addPassword answers
    /// `400 CredentialTypeNotAllowedAsPerAppPolicy`.
    pub secrets_forbidden: bool,
    /// After a resource's service principal is created (Office 365 Management APIs, when
    /// missing), this many client-credentials token requests for that resource answer
    /// AADSTS500011 (the resource principal not found yet).
    pub resource_principal_delay_requests: u32,
    /// Added to every HTTP response for this tenant, in milliseconds.
    pub latency_ms: u64,
    /// The first N client_credentials requests with a new secret fail like an unreplicated secret.
    pub new_credential_delay_requests: u32,
    /// The user approves the device code after this many token polls (0 = at once).
    pub device_code_approve_after_polls: u32,
    /// The user declines the device code sign-in instead of approving it.
    pub device_code_decline: bool,
    /// Device code lifetime in seconds (Microsoft: 900).
    pub device_code_expires_in: u64,
    /// Device code polling interval in seconds (Microsoft: 5); polling faster answers `slow_down`.
    pub device_code_interval: u64,
    /// An interactive sign-in (a device code once approved, a browser's authorization code) is
    /// refused with this AADSTS code, as Entra answers it (login.rs `refusal`): 53003, 53000,
    /// 50076, 50079, 50020, 90072, 50105, 7000112, 65001, 65002, 500011, 50011, 700082, 50173.
    pub sign_in_error: Option<u32>,
    /// Only this flow is refused with `sign_in_error` (Conditional Access that blocks the
    /// device code flow but not a browser): `device-code` or `browser`; both when unset.
    pub sign_in_error_flow: Option<SignInFlow>,
    /// Refresh token grants are refused with this AADSTS code (700082 expired, 50173 revoked).
    pub refresh_error: Option<u32>,
    pub exchange: ExchangeScenario,
}

/// A technician's sign-in flow, for [`TenantScenario::sign_in_error_flow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignInFlow {
    DeviceCode,
    Browser,
}

impl Default for TenantScenario {
    fn default() -> Self {
        TenantScenario {
            id: Uuid::new_v4(),
            display_name: "Contoso (sandbox)".into(),
            cloud: TenantCloud::Global,
            domains: vec!["contoso.onmicrosoft.com".into()],
            signed_in_user: UserScenario::default(),
            licenses: vec!["AAD_PREMIUM".into()],
            o365_management_sp_missing: false,
            secret_max_lifetime_days: None,
            replication_delay_requests: 0,
            throttle_every: 0,
            throttle_batch_every: 0,
            throttle_retry_after: 1,
            faults: Vec::new(),
            secrets_forbidden: false,
            resource_principal_delay_requests: 0,
            latency_ms: 0,
            new_credential_delay_requests: 0,
            device_code_approve_after_polls: 1,
            device_code_decline: false,
            device_code_expires_in: 900,
            device_code_interval: 5,
            sign_in_error: None,
            sign_in_error_flow: None,
            refresh_error: None,
            exchange: ExchangeScenario::default(),
        }
    }
}

impl TenantScenario {
    /// The default domain (first listed), e.g. `contoso.onmicrosoft.com`.
    pub fn default_domain(&self) -> &str {
        self.domains
            .first()
            .map(String::as_str)
            .unwrap_or("sandbox.onmicrosoft.com")
    }
}

/// One scripted Graph fault: the requests whose method is `method` and whose path (below
/// `/v1.0`, without the query) ends with `path` are answered `status` with Graph's error body
/// for `code`, the first `times` times. With `applied`, the request is carried out first and
/// its answer lost (a create that landed before the 5xx or the dropped connection); without,
/// nothing happens. Also inside `$batch`. `status: 0` drops the connection instead of
/// answering (after the status line, before the body; inside a `$batch`, the whole batch's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultScenario {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Graph's error code, e.g. `Directory_ConcurrencyViolation`, `serviceNotAvailable`.
    pub code: String,
    pub applied: bool,
    pub times: u32,
}

impl Default for FaultScenario {
    fn default() -> Self {
        FaultScenario {
            method: "POST".into(),
            path: String::new(),
            status: 503,
            code: "Directory_ConcurrencyViolation".into(),
            applied: false,
            times: 1,
        }
    }
}

/// The technician who signs in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct UserScenario {
    /// User principal name; empty means `admin@{default domain}`.
    pub upn: String,
    pub display_name: String,
    pub id: Uuid,
    /// Directory role names, e.g. "Global Administrator", "Application Administrator".
    pub roles: Vec<String>,
    /// Some(other tenant): the technician is signed into the wrong tenant; tokens carry that tid.
    pub home_tenant: Option<Uuid>,
    /// Directory role names the technician is only eligible for (Privileged Identity
    /// Management): listed by `roleEligibilityScheduleInstances`, absent from `wids`.
    pub eligible_roles: Vec<String>,
    /// The technician signs in with multi-factor authentication (tokens' `amr` is `["pwd",
    /// "mfa"]`); false: password only (`["pwd"]`), which partner mode refuses.
    pub mfa: bool,
}

impl Default for UserScenario {
    fn default() -> Self {
        UserScenario {
            upn: String::new(),
            display_name: "Sandbox Admin".into(),
            id: Uuid::new_v4(),
            roles: vec!["Global Administrator".into()],
            home_tenant: None,
            eligible_roles: vec![],
            mfa: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the scenario file {path} is not valid scenario JSON")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the scenario is invalid: {0}")]
    Invalid(String),
}

impl Scenario {
    /// One friendly tenant: "Contoso (sandbox)", contoso.onmicrosoft.com, Entra ID P1, a
    /// Global Administrator signed in, Exchange dehydrated with a 2-attempt propagation delay.
    pub fn demo() -> Scenario {
        let mut t = TenantScenario {
            display_name: "Contoso (sandbox)".into(),
            domains: vec!["contoso.onmicrosoft.com".into(), "contoso.com".into()],
            licenses: vec!["SPE_E3".into()],
            device_code_interval: 1,
            ..TenantScenario::default()
        };
        t.signed_in_user.upn = "admin@contoso.onmicrosoft.com".into();
        t.signed_in_user.display_name = "Contoso Admin".into();
        t.exchange = ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 2,
            ual_enabled: false,
            ..ExchangeScenario::default()
        };
        Scenario {
            tenants: vec![t],
            portal: PortalScenario::default(),
            partner: None,
        }
    }

    /// Reads a scenario JSON file.
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let s: Scenario = serde_json::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: shown,
            source,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Tenant ids unique, every tenant has a domain, domains not shared.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut ids = std::collections::HashSet::new();
        let mut domains = std::collections::HashSet::new();
        for t in &self.tenants {
            if !ids.insert(t.id) {
                return Err(ScenarioError::Invalid(format!(
                    "tenant id {} appears twice",
                    t.id
                )));
            }
            if t.domains.is_empty() {
                return Err(ScenarioError::Invalid(format!(
                    "tenant {} has no domain",
                    t.id
                )));
            }
            for d in &t.domains {
                if !domains.insert(d.to_ascii_lowercase()) {
                    return Err(ScenarioError::Invalid(format!("domain {d} appears twice")));
                }
            }
        }
        if let Some(p) = &self.partner
            && !ids.contains(&p.tenant)
        {
            return Err(ScenarioError::Invalid(format!(
                "the partner tenant {} is not one of the tenants",
                p.tenant
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_is_one_default_tenant() {
        let s: Scenario = serde_json::from_str("{}").unwrap();
        assert_eq!(s.tenants.len(), 1);
        assert_eq!(s.tenants[0].device_code_approve_after_polls, 1);
        assert_eq!(s.tenants[0].signed_in_user.roles, ["Global Administrator"]);
    }

    #[test]
    fn camel_case_fields_parse() {
        let s: Scenario = serde_json::from_str(
            r#"{"tenants":[{"id":"11111111-1111-1111-1111-111111111111","displayName":"Fabrikam",
            "domains":["fabrikam.onmicrosoft.com"],"throttleEvery":3,"secretMaxLifetimeDays":180,
            "cloud":"usgov-dod",
            "signedInUser":{"upn":"tech@fabrikam.onmicrosoft.com","roles":["Application Administrator"]},
            "exchange":{"dehydrated":true}}],"portal":{"token":"t","failFirst":1}}"#,
        )
        .unwrap();
        let t = &s.tenants[0];
        assert_eq!(t.display_name, "Fabrikam");
        assert_eq!(t.cloud, TenantCloud::UsgovDod);
        assert_eq!(t.throttle_every, 3);
        assert_eq!(t.secret_max_lifetime_days, Some(180));
        assert_eq!(t.signed_in_user.roles, ["Application Administrator"]);
        assert!(t.exchange.dehydrated);
        assert_eq!(s.portal.fail_first, 1);
        s.validate().unwrap();
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../docs/sandbox.md");
        let start = doc
            .find("```json\n{\n  \"tenants\"")
            .expect("example in docs");
        let body = &doc[start + "```json\n".len()..];
        let body = &body[..body.find("```").unwrap()];
        let s: Scenario = serde_json::from_str(body).unwrap();
        s.validate().unwrap();
        let t = &s.tenants[0];
        assert_eq!(t.secret_max_lifetime_days, Some(365));
        assert_eq!(t.replication_delay_requests, 2);
        assert_eq!(t.exchange.propagation_attempts, 2);
        assert_eq!(s.portal.token, "sandbox-portal-token");
    }

    #[test]
    fn misspelt_fields_are_errors() {
        let e =
            serde_json::from_str::<Scenario>(r#"{"tenants":[{"throttleEvry":3}]}"#).unwrap_err();
        assert!(e.to_string().contains("throttleEvry"), "{e}");
    }

    #[test]
    fn demo_is_valid() {
        let d = Scenario::demo();
        d.validate().unwrap();
        assert!(d.tenants[0].exchange.dehydrated);
        assert_eq!(d.tenants[0].exchange.propagation_attempts, 2);
    }
}
