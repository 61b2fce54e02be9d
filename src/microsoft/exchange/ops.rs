//! The four Exchange operations the UAL step needs, and their PowerShell implementation.
//!
//! [`PwshExchange`] pays for PowerShell's start and `Connect-ExchangeOnline` once per session,
//! not once per cmdlet: the first call runs a whole [`Plan`] (the guide's sequence, with its
//! decisions made in the script), and later calls are answered from that session's reports
//! in order. A call the session did not answer starts a new session beginning with it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Mutex;
use uuid::Uuid;

use super::auth::ExchangeAuth;
use super::bridge::{Passthrough, Pwsh, RunOutput};
use super::protocol::{ErrorClass, Report, classify, op};
use super::scripts::{self, Connect, Plan};
use super::{ExchangeError, cmdlet_of};
use crate::cloud::Cloud;

/// What `Get-OrganizationConfig` told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgConfig {
    pub is_dehydrated: bool,
}

/// What `Enable-OrganizationCustomization` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Customization {
    /// We hydrated the organization just now.
    Enabled,
    /// It was already customized: nothing to do.
    AlreadyEnabled,
}

/// The operations of the guide's Step 1. Implemented over PowerShell by [`PwshExchange`], and
/// by fakes in tests.
#[async_trait::async_trait]
pub trait ExchangeOps: Send + Sync {
    /// `Get-OrganizationConfig | Select-Object IsDehydrated`.
    async fn org_config(&self) -> Result<OrgConfig, ExchangeError>;
    /// `Enable-OrganizationCustomization`; "already enabled" is success.
    async fn enable_customization(&self) -> Result<Customization, ExchangeError>;
    /// `Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true`.
    async fn set_ual(&self) -> Result<(), ExchangeError>;
    /// `Get-AdminAuditLogConfig | Select-Object UnifiedAuditLogIngestionEnabled`.
    async fn get_ual(&self) -> Result<bool, ExchangeError>;
    /// The role the sessions signed in with (of [`super::UAL_ROLES`]), when the token says.
    fn signed_in_role(&self) -> Option<&'static str> {
        None
    }
}

/// The organization a session connects to.
#[derive(Debug, Clone)]
pub struct ExchangeTarget {
    pub tenant_id: Uuid,
    /// `-Organization`: the tenant's initial `*.onmicrosoft.com` domain or its tenant ID, the
    /// two values Microsoft documents (never a vanity default domain).
    pub organization: String,
    pub cloud: Cloud,
}

/// PowerShell and its module, as `hal-onboard doctor` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStatus {
    pub ps_version: Option<String>,
    pub ps_edition: Option<String>,
    /// The newest ExchangeOnlineManagement 3.x installed; `None` when missing.
    pub module_version: Option<String>,
    /// An older (2.x) version found, when that is all there is.
    pub too_old: Option<String>,
}

impl Pwsh {
    /// Asks PowerShell for its version and the ExchangeOnlineManagement module.
    pub async fn module_status(&self) -> Result<ModuleStatus, ExchangeError> {
        let out = self
            .run(&scripts::module_check(), &[], &[], &super::bridge::Quiet)
            .await?;
        check_protocol(&out)?;
        let host = out.reports.iter().find(|r| r.op == op::HOST);
        let module = out
            .reports
            .iter()
            .find(|r| r.op == op::MODULE)
            .ok_or_else(|| no_result(op::MODULE, &out))?;
        Ok(ModuleStatus {
            ps_version: host
                .and_then(|h| h.data_str("psVersion"))
                .map(str::to_string),
            ps_edition: host.and_then(|h| h.data_str("edition")).map(str::to_string),
            module_version: module
                .ok
                .then(|| module.data_str("version").unwrap_or("3").to_string()),
            too_old: module.error.as_ref().and_then(|e| e.found.clone()),
        })
    }

    /// `Install-Module ExchangeOnlineManagement -Scope CurrentUser`; its output passes through.
    pub async fn install_module(&self, out: &dyn Passthrough) -> Result<(), ExchangeError> {
        let run = self.run(&scripts::install_module(), &[], &[], out).await?;
        check_protocol(&run)?;
        match run.reports.iter().find(|r| r.op == op::INSTALL) {
            Some(r) if r.ok => Ok(()),
            Some(r) => Err(ExchangeError::InstallFailed {
                message: r
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
            }),
            None => Err(no_result(op::INSTALL, &run)),
        }
    }
}

fn check_protocol(out: &RunOutput) -> Result<(), ExchangeError> {
    match out.malformed.first() {
        Some(e) => Err(ExchangeError::Protocol {
            detail: format!("a result line is not valid JSON ({e})"),
        }),
        None => Ok(()),
    }
}

fn no_result(op: &str, out: &RunOutput) -> ExchangeError {
    ExchangeError::NoResult {
        op: cmdlet_of(op).to_string(),
        exit_code: out.exit_code,
        stderr: out.stderr.clone(),
    }
}

/// [`ExchangeOps`] over PowerShell sessions.
pub struct PwshExchange {
    pwsh: Pwsh,
    target: ExchangeTarget,
    auth: ExchangeAuth,
    out: Arc<dyn Passthrough>,
    pending: Mutex<VecDeque<Report>>,
    /// Sessions started so far: a later `Get-OrganizationConfig` re-check runs alone.
    sessions: std::sync::atomic::AtomicU32,
    /// The role the last token carried (`wids`).
    role: std::sync::Mutex<Option<&'static str>>,
}

impl PwshExchange {
    pub fn new(
        pwsh: Pwsh,
        target: ExchangeTarget,
        auth: ExchangeAuth,
        out: Arc<dyn Passthrough>,
    ) -> PwshExchange {
        PwshExchange {
            pwsh,
            target,
            auth,
            out,
            pending: Mutex::new(VecDeque::new()),
            sessions: std::sync::atomic::AtomicU32::new(0),
            role: std::sync::Mutex::new(None),
        }
    }

    /// Runs one session with `plan` and returns its reports after the connect.
    async fn session(&self, plan: Plan) -> Result<VecDeque<Report>, ExchangeError> {
        let mut env: Vec<(&str, String)> = vec![
            (scripts::env::ORGANIZATION, self.target.organization.clone()),
            (scripts::env::TENANT_ID, self.target.tenant_id.to_string()),
            (
                scripts::env::ENVIRONMENT,
                self.target.cloud.exchange_environment().to_string(),
            ),
        ];
        let mut secrets = Vec::new();
        let connect = match &self.auth {
            ExchangeAuth::Token(sign_in) => {
                // Asked for before every session (the credential refreshes it), so a late
                // session never starts with a token that expired meanwhile.
                let token = sign_in.token(self.target.cloud).await?;
                let wids: Vec<String> = super::auth::jwt_claims(token.expose())
                    .and_then(|c| c.get("wids").cloned())
                    .and_then(|w| serde_json::from_value(w).ok())
                    .unwrap_or_default();
                *self.role.lock().expect("not poisoned") = super::ual_role(&wids);
                secrets.push((scripts::env::ACCESS_TOKEN, token));
                if let Some(org) = &sign_in.delegated_organization {
                    // A GDAP token has no account of the customer's: no -UserPrincipalName.
                    env.push((scripts::env::DELEGATED_ORGANIZATION, org.clone()));
                    Connect::Delegated
                } else {
                    if let Some(upn) = &sign_in.upn {
                        env.push((scripts::env::UPN, upn.clone()));
                    }
                    Connect::AccessToken {
                        with_upn: sign_in.upn.is_some(),
                    }
                }
            }
            ExchangeAuth::Device => Connect::Device,
        };
        let script = scripts::session(connect, plan);
        self.sessions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let out = self
            .pwsh
            .run(&script, &env, &secrets, self.out.as_ref())
            .await?;
        check_protocol(&out)?;
        let mut reports: VecDeque<Report> = out.reports.iter().cloned().collect();
        // The prelude: host, module, connect. A failure there fails every operation.
        for step in [op::MODULE, op::CONNECT] {
            match reports.iter().position(|r| r.op == step) {
                Some(i) => {
                    let r = reports.remove(i).expect("position is in range");
                    if !r.ok {
                        let e = r.error.unwrap_or_default();
                        return Err(ExchangeError::from_report(step, &e));
                    }
                }
                None => return Err(no_result(step, &out)),
            }
        }
        reports.retain(|r| r.op != op::HOST && r.op != op::DONE);
        if reports.is_empty() {
            return Err(no_result(first_op(plan), &out));
        }
        Ok(reports)
    }

    /// The report for `want`: from the current session if it has one, else from a new
    /// session running `plan`.
    async fn report(&self, want: &str, plan: Plan) -> Result<Report, ExchangeError> {
        let mut pending = self.pending.lock().await;
        if let Some(i) = pending.iter().position(|r| r.op == want) {
            pending.drain(..i);
            return Ok(pending.pop_front().expect("found above"));
        }
        pending.clear();
        let mut fresh = self.session(plan).await?;
        match fresh.iter().position(|r| r.op == want) {
            Some(i) => {
                fresh.drain(..i);
                let r = fresh.pop_front().expect("found above");
                *pending = fresh;
                Ok(r)
            }
            None => Err(ExchangeError::NoResult {
                op: cmdlet_of(want).to_string(),
                exit_code: None,
                stderr: String::new(),
            }),
        }
    }
}

fn first_op(plan: Plan) -> &'static str {
    match plan {
        Plan::Onboard | Plan::OrgConfig => op::ORG_CONFIG,
        Plan::Retry => op::SET_UAL,
        Plan::EnableCustomization => op::ENABLE_CUSTOMIZATION,
        Plan::Verify => op::GET_UAL,
    }
}

fn failure(r: &Report) -> ExchangeError {
    ExchangeError::from_report(&r.op, &r.error.clone().unwrap_or_default())
}

fn missing_field(r: &Report, field: &str) -> ExchangeError {
    ExchangeError::Protocol {
        detail: format!("the {} result has no boolean {field}", r.op),
    }
}

#[async_trait::async_trait]
impl ExchangeOps for PwshExchange {
    async fn org_config(&self) -> Result<OrgConfig, ExchangeError> {
        // The first call runs the whole step; a re-check later (after a failed hydration)
        // asks only this.
        let plan = if self.sessions.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            Plan::Onboard
        } else {
            Plan::OrgConfig
        };
        let r = self.report(op::ORG_CONFIG, plan).await?;
        if !r.ok {
            return Err(failure(&r));
        }
        let is_dehydrated = r
            .data_bool("isDehydrated")
            .ok_or_else(|| missing_field(&r, "isDehydrated"))?;
        Ok(OrgConfig { is_dehydrated })
    }

    async fn enable_customization(&self) -> Result<Customization, ExchangeError> {
        let r = self
            .report(op::ENABLE_CUSTOMIZATION, Plan::EnableCustomization)
            .await?;
        if r.ok {
            return Ok(Customization::Enabled);
        }
        let e = r.error.clone().unwrap_or_default();
        if classify(&e) == ErrorClass::AlreadyCustomized {
            return Ok(Customization::AlreadyEnabled);
        }
        Err(failure(&r))
    }

    async fn set_ual(&self) -> Result<(), ExchangeError> {
        let r = self.report(op::SET_UAL, Plan::Retry).await?;
        if r.ok { Ok(()) } else { Err(failure(&r)) }
    }

    async fn get_ual(&self) -> Result<bool, ExchangeError> {
        let r = self.report(op::GET_UAL, Plan::Verify).await?;
        if !r.ok {
            return Err(failure(&r));
        }
        r.data_bool("unifiedAuditLogIngestionEnabled")
            .ok_or_else(|| missing_field(&r, "unifiedAuditLogIngestionEnabled"))
    }

    fn signed_in_role(&self) -> Option<&'static str> {
        *self.role.lock().expect("not poisoned")
    }
}

/// Makes the [`ExchangeOps`] for a tenant: the wizard's step and `ual retry` get one of these,
/// so tests can hand them fakes.
#[async_trait::async_trait]
pub trait OpsFactory: Send + Sync {
    async fn ops_for(
        &self,
        tenant: &crate::store::TenantRecord,
    ) -> Result<Box<dyn ExchangeOps>, ExchangeError>;
}

/// How sessions made by [`PwshOpsFactory`] sign in.
#[derive(Clone)]
pub enum AuthChoice {
    /// A token from our own sign-in, per tenant.
    Token(Arc<dyn super::SignInFactory>),
    /// `Connect-ExchangeOnline -Device`.
    Device,
}

/// Where a tenant's module output goes (e.g. prefixed with its domain).
pub type PassthroughFor =
    Arc<dyn Fn(&crate::store::TenantRecord) -> Arc<dyn Passthrough> + Send + Sync>;

/// [`PwshExchange`] sessions for any tenant.
pub struct PwshOpsFactory {
    pub pwsh: Pwsh,
    pub auth: AuthChoice,
    pub out: PassthroughFor,
    /// PowerShell and its module, asked once per run.
    checked: Mutex<Option<ModuleStatus>>,
}

impl PwshOpsFactory {
    pub fn new(pwsh: Pwsh, auth: AuthChoice, out: PassthroughFor) -> PwshOpsFactory {
        PwshOpsFactory {
            pwsh,
            auth,
            out,
            checked: Mutex::new(None),
        }
    }

    /// PowerShell and its module are fit for this run's sign-in, checked before anyone is
    /// asked to sign in (a missing module must not cost the technician a device code first).
    pub async fn preflight(&self) -> Result<ModuleStatus, ExchangeError> {
        let mut checked = self.checked.lock().await;
        let status = match checked.as_ref() {
            Some(s) => s.clone(),
            None => {
                let s = self.pwsh.module_status().await?;
                *checked = Some(s.clone());
                s
            }
        };
        if status.module_version.is_none() {
            return Err(ExchangeError::ModuleMissing {
                found: status.too_old.clone(),
            });
        }
        if matches!(self.auth, AuthChoice::Device) && !status.is_powershell_7() {
            return Err(ExchangeError::NeedsPowerShell7 {
                found: status.ps_version.clone().unwrap_or_else(|| "5.1".into()),
            });
        }
        Ok(status)
    }
}

impl ModuleStatus {
    /// PowerShell 7 or later (`-Device` needs it); an unknown version is given the benefit.
    pub fn is_powershell_7(&self) -> bool {
        let major = self
            .ps_version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        major.is_none_or(|m| m >= 7)
    }
}

#[async_trait::async_trait]
impl OpsFactory for PwshOpsFactory {
    async fn ops_for(
        &self,
        tenant: &crate::store::TenantRecord,
    ) -> Result<Box<dyn ExchangeOps>, ExchangeError> {
        self.preflight().await?;
        let auth = match &self.auth {
            AuthChoice::Device => ExchangeAuth::Device,
            AuthChoice::Token(f) => ExchangeAuth::Token(f.exchange_sign_in(tenant).await?),
        };
        Ok(Box::new(PwshExchange::new(
            self.pwsh.clone(),
            ExchangeTarget {
                tenant_id: tenant.tenant_id,
                organization: organization(tenant),
                cloud: tenant.cloud,
            },
            auth,
            (self.out)(tenant),
        )))
    }
}

/// `-Organization` for a tenant: its initial `*.onmicrosoft.com` domain, else its tenant ID.
/// Microsoft documents only these two ("the primary .onmicrosoft.com domain or tenant ID of
/// the organization", Connect-ExchangeOnline); a vanity default domain fails to connect.
pub fn organization(tenant: &crate::store::TenantRecord) -> String {
    tenant
        .initial_domain
        .clone()
        .unwrap_or_else(|| tenant.tenant_id.to_string())
}

/// Step 1 on a machine without PowerShell: every tenant's step reports it before any sign-in,
/// and (a prerequisite, [`ExchangeError::is_prerequisite`]) the Graph steps still run.
pub struct NoPowerShell {
    pub tried: Vec<String>,
}

#[async_trait::async_trait]
impl OpsFactory for NoPowerShell {
    async fn ops_for(
        &self,
        _tenant: &crate::store::TenantRecord,
    ) -> Result<Box<dyn ExchangeOps>, ExchangeError> {
        Err(ExchangeError::PwshNotFound {
            tried: self.tried.clone(),
        })
    }
}
