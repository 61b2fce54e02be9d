//! How a run reaches a tenant it already recorded: as the customer's own admin (`via: direct`)
//! or through the MSP's partner sign-in (`via: partner`, GDAP). `ual retry`, `secret rotate`
//! and `tenant remove --delete-app` all decide here, so a partner-onboarded customer is never
//! asked for its admin, and the three commands cannot drift apart.
//!
//! The partner sign-in is opened once per run (the saved one, else a new sign-in in the MSP's
//! tenant) and only when a tenant of the run needs it. Its customer credential redeems the
//! partner refresh token at the customer's authority; the tenant checks that follow (the
//! wizard's `identify` for Graph, the token's `tid` and the bridge's organization check for
//! Exchange) are the same as for a direct sign-in, and run before any change.

use std::sync::Arc;

use azure_core::credentials::TokenRequestOptions;

use super::PartnerConfig;
use super::signin::{PartnerError, PartnerSignIn, partner_error};
use crate::config::EnvOverrides;
use crate::microsoft::exchange::auth::{ExchangeSignIn, SignInFactory};
use crate::microsoft::exchange::{
    AuthChoice, ExchangeError, ExchangeOps, OpsFactory, PassthroughFor, Pwsh, PwshOpsFactory,
    exchange_scope,
};
use crate::microsoft::signin::{AuthMethod, SignInError, SignInObserver};
use crate::secrets::SecretStore;
use crate::session::{Session, SignIn};
use crate::store::{TenantRecord, Via};
use crate::tenant::TenantName;

/// Why a partner-onboarded tenant cannot be reached through partner mode in this run.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// config.json has no `partner` object (never set up here, or removed since).
    #[error(
        "{tenant} was onboarded through partner mode (GDAP), but partner mode is not set up in this hal-onboard home"
    )]
    NotSetUp { tenant: String },
    /// The partner sign-in (saved or new) was refused, e.g. another tenant or no MFA.
    #[error("{tenant} was onboarded through partner mode (GDAP), and the partner sign-in failed")]
    SignIn {
        tenant: String,
        msp: String,
        #[source]
        source: Arc<PartnerError>,
    },
}

impl ReachError {
    /// A short machine name for `--json` output.
    pub fn code(&self) -> &'static str {
        match self {
            ReachError::NotSetUp { .. } => "partnerNotSetUp",
            ReachError::SignIn { .. } => "partnerSignIn",
        }
    }

    /// What to do next: set partner mode up or sign in as the partner again, or (`--direct`)
    /// sign in as the customer's own admin.
    pub fn hints(&self) -> Vec<String> {
        let mut hints = match self {
            ReachError::NotSetUp { .. } => vec![
                "Nothing was changed. Set partner mode up in this home: `hal-onboard partner setup --tenant <your MSP domain>` (once per MSP; or copy config.json's `partner` object from the machine that ran it), then `hal-onboard partner login`.".to_string(),
            ],
            ReachError::SignIn { msp, source, .. } => vec![format!(
                "Nothing was changed. {}",
                source.hint().unwrap_or_else(|| format!(
                    "Run `hal-onboard partner login --tenant {msp}`, then this command again."
                ))
            )],
        };
        let tenant = match self {
            ReachError::NotSetUp { tenant } | ReachError::SignIn { tenant, .. } => tenant,
        };
        hints.push(format!(
            "Or pass `--direct` to sign in as {tenant}'s own administrator for this run."
        ));
        hints
    }
}

/// What opening the partner sign-in needs from the run.
pub struct PartnerOpen {
    pub env: EnvOverrides,
    pub http: reqwest::Client,
    /// config.json's `partner` object, when partner mode is set up.
    pub config: Option<PartnerConfig>,
    pub secrets: Arc<dyn SecretStore>,
    pub observer: Arc<dyn SignInObserver>,
    /// How to sign in when no partner sign-in is saved (`--auth`).
    pub method: AuthMethod,
}

/// The run's way into its tenants: the partner sign-in, opened once, when a tenant of the run
/// was onboarded through it (and `--direct` did not ask otherwise).
pub struct Reach {
    force_direct: bool,
    partner: Option<Result<Arc<PartnerSignIn>, Arc<ReachError>>>,
}

impl Reach {
    /// Decides for `tenants` (the records this run works on); signs in as the partner (the saved
    /// sign-in, else a new one) only when one of them is `via: partner`. A failure is kept, and
    /// given back for each partner tenant ([`Reach::partner_for`]): the direct ones go on.
    pub async fn open(tenants: &[&TenantRecord], force_direct: bool, open: PartnerOpen) -> Reach {
        let first = tenants
            .iter()
            .find(|r| r.via == Via::Partner && !force_direct);
        let Some(first) = first else {
            return Reach {
                force_direct,
                partner: None,
            };
        };
        let tenant = first.primary_domain.clone();
        let partner = match &open.config {
            None => Err(Arc::new(ReachError::NotSetUp { tenant })),
            Some(cfg) => PartnerSignIn::open(
                &open.env,
                open.http.clone(),
                cfg,
                open.secrets.clone(),
                open.observer.clone(),
                open.method,
                true,
            )
            .await
            .map_err(|e| {
                Arc::new(ReachError::SignIn {
                    tenant,
                    msp: cfg.domain.clone(),
                    source: Arc::new(e),
                })
            }),
        };
        Reach {
            force_direct,
            partner: Some(partner),
        }
    }

    /// The partner sign-in for `rec`, `None` when it is reached directly (its record says
    /// direct, or `--direct`), or why partner mode cannot reach it.
    pub fn partner_for(
        &self,
        rec: &TenantRecord,
    ) -> Result<Option<Arc<PartnerSignIn>>, ReachError> {
        if rec.via != Via::Partner || self.force_direct {
            return Ok(None);
        }
        match &self.partner {
            Some(Ok(p)) => Ok(Some(p.clone())),
            // A later tenant of the run: the same cause, named for this tenant.
            Some(Err(e)) => Err(match e.as_ref() {
                ReachError::NotSetUp { .. } => ReachError::NotSetUp {
                    tenant: rec.primary_domain.clone(),
                },
                ReachError::SignIn { msp, source, .. } => ReachError::SignIn {
                    tenant: rec.primary_domain.clone(),
                    msp: msp.clone(),
                    source: source.clone(),
                },
            }),
            // Not among the records `open` was given: treated as not set up rather than
            // silently asking the customer's admin.
            None => Err(ReachError::NotSetUp {
                tenant: rec.primary_domain.clone(),
            }),
        }
    }

    /// A Graph session for `rec` (`secret rotate`, `tenant remove --delete-app`): the partner's
    /// customer credential, or the technician's own sign-in as `how` says. The tenant check
    /// (token `tid` = the record's) is the wizard's `identify`, before any change.
    pub fn graph_session(
        &self,
        env: &EnvOverrides,
        http: reqwest::Client,
        rec: &TenantRecord,
        how: &SignIn,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
    ) -> Result<Session, SessionError> {
        let tenant = TenantName::from(rec.tenant_id);
        match self.partner_for(rec)? {
            None => Ok(Session::open(
                env,
                http,
                &tenant,
                Some(rec),
                how,
                secrets,
                observer,
            )?),
            Some(partner) => {
                let cloud = how.cloud.unwrap_or(rec.cloud);
                let scope = format!("{}/.default", env.endpoints(cloud).graph_resource);
                Ok(Session::with_credential(
                    env,
                    http,
                    cloud,
                    partner.customer(rec.tenant_id),
                    vec![scope],
                ))
            }
        }
    }

    /// Exchange sessions (`ual retry`): tenants reached directly get `direct`'s sessions, partner
    /// ones the partner's token with `-DelegatedOrganization` (never `-Device`: the module would
    /// ask for a customer account), each checked to be its tenant before any change.
    pub fn exchange_factory(
        self: &Arc<Self>,
        direct: Arc<dyn OpsFactory>,
        pwsh: Pwsh,
        output: PassthroughFor,
    ) -> Arc<dyn OpsFactory> {
        let partner = match &self.partner {
            Some(Ok(p)) => Some(Arc::new(PwshOpsFactory::new(
                pwsh,
                AuthChoice::Token(Arc::new(PartnerExchange { partner: p.clone() })),
                output,
            )) as Arc<dyn OpsFactory>),
            _ => None,
        };
        Arc::new(ByVia {
            reach: self.clone(),
            direct,
            partner,
        })
    }

    /// The next step for an Exchange error on `rec`, in the words of the way it was reached:
    /// a partner tenant's fix is the partner sign-in or its GDAP roles, not its admin.
    pub fn exchange_hint(&self, rec: &TenantRecord, e: &ExchangeError) -> String {
        let domain = &rec.primary_domain;
        if !matches!(self.partner_for(rec), Ok(Some(_))) {
            return e.hint(domain);
        }
        // The partner sign-in's own refusal at the customer (AADSTS50020, 65001, …) says best.
        if let ExchangeError::Token(t) = e
            && let Some(h) = partner_error(t).and_then(PartnerError::hint)
        {
            return h;
        }
        match e {
            ExchangeError::Token(_) | ExchangeError::NotSignedIn { .. } => format!(
                "Run `hal-onboard partner login` to sign in as the partner again, check that your GDAP relationship with {domain} is active (`hal-onboard partner customers`), then `hal-onboard ual retry {domain}`; or pass `--direct` to sign in as {domain}'s own administrator."
            ),
            ExchangeError::MissingRole { .. } => format!(
                "Your GDAP roles in {domain} lack Exchange Administrator: add it to the relationship's access assignment for your security group (`hal-onboard partner customers` shows what you hold), then run `hal-onboard ual retry {domain}`."
            ),
            e => e.hint(domain),
        }
    }
}

/// Errors opening a tenant's Graph session: partner mode's, or the direct sign-in's.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Reach(#[from] ReachError),
    #[error(transparent)]
    SignIn(#[from] SignInError),
}

/// Sends each tenant to the sessions of the way it is reached.
struct ByVia {
    reach: Arc<Reach>,
    direct: Arc<dyn OpsFactory>,
    partner: Option<Arc<dyn OpsFactory>>,
}

#[async_trait::async_trait]
impl OpsFactory for ByVia {
    async fn ops_for(&self, tenant: &TenantRecord) -> Result<Box<dyn ExchangeOps>, ExchangeError> {
        match (self.reach.partner_for(tenant), &self.partner) {
            (Ok(None), _) => self.direct.ops_for(tenant).await,
            (Ok(Some(_)), Some(f)) => f.ops_for(tenant).await,
            (Err(e), _) => Err(ExchangeError::NotSignedIn {
                message: e.to_string(),
            }),
            // Not made by `Reach::exchange_factory` for this sign-in: never the admin instead.
            (Ok(Some(_)), None) => Err(ExchangeError::NotSignedIn {
                message: format!(
                    "no partner Exchange session was prepared for {}",
                    tenant.primary_domain
                ),
            }),
        }
    }
}

/// Exchange Online tokens for a customer from the partner sign-in, for `Connect-ExchangeOnline
/// -AccessToken … -DelegatedOrganization <customer>`.
struct PartnerExchange {
    partner: Arc<PartnerSignIn>,
}

#[async_trait::async_trait]
impl SignInFactory for PartnerExchange {
    async fn exchange_sign_in(
        &self,
        tenant: &TenantRecord,
    ) -> Result<ExchangeSignIn, ExchangeError> {
        let credential = self.partner.customer(tenant.tenant_id);
        // Redeemed now, before PowerShell starts: a refusal (no GDAP role, no consent) is said
        // in Entra's words, and the credential refuses a token of another tenant.
        let scope = exchange_scope(tenant.cloud);
        credential
            .get_token(&[scope.as_str()], None::<TokenRequestOptions<'_>>)
            .await
            .map_err(ExchangeError::Token)?;
        Ok(ExchangeSignIn {
            credential,
            upn: self.partner.technician().map(str::to_string),
            delegated_organization: Some(crate::microsoft::exchange::ops::organization(tenant)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::microsoft::signin::SilentObserver;
    use crate::secrets::MemoryStore;
    use uuid::Uuid;

    fn rec(n: u128, via: Via) -> TenantRecord {
        let mut r = TenantRecord::new(
            Uuid::from_u128(n),
            &format!("t{n}.onmicrosoft.com"),
            "T",
            Cloud::Global,
        );
        r.via = via;
        r
    }

    fn open_without_partner_mode() -> PartnerOpen {
        PartnerOpen {
            env: EnvOverrides::default(),
            http: reqwest::Client::new(),
            config: None,
            secrets: Arc::new(MemoryStore::default()),
            observer: Arc::new(SilentObserver),
            method: AuthMethod::DeviceCode,
        }
    }

    #[tokio::test]
    async fn direct_records_never_need_partner_mode() {
        let (a, b) = (rec(1, Via::Direct), rec(2, Via::Direct));
        let reach = Reach::open(&[&a, &b], false, open_without_partner_mode()).await;
        assert!(reach.partner.is_none(), "no partner sign-in was tried");
        assert!(matches!(reach.partner_for(&a), Ok(None)));
    }

    #[tokio::test]
    async fn a_partner_record_without_partner_mode_is_refused_by_name_and_direct_ones_go_on() {
        let (p, q, d) = (
            rec(1, Via::Partner),
            rec(2, Via::Partner),
            rec(3, Via::Direct),
        );
        let reach = Reach::open(&[&d, &p, &q], false, open_without_partner_mode()).await;
        assert!(matches!(reach.partner_for(&d), Ok(None)));
        for r in [&p, &q] {
            let e = reach.partner_for(r).unwrap_err();
            assert_eq!(e.code(), "partnerNotSetUp");
            assert!(e.to_string().starts_with(&r.primary_domain), "{e}");
            let hints = e.hints().join("\n");
            assert!(hints.contains("hal-onboard partner login"), "{hints}");
            assert!(hints.contains("--direct"), "{hints}");
        }
        // A record the run was not opened for is refused too, never sent to its admin.
        let other = rec(4, Via::Partner);
        assert!(reach.partner_for(&other).is_err());
    }

    #[tokio::test]
    async fn direct_flag_reaches_a_partner_record_as_its_admin() {
        let p = rec(1, Via::Partner);
        let reach = Reach::open(&[&p], true, open_without_partner_mode()).await;
        assert!(reach.partner.is_none(), "no partner sign-in was tried");
        assert!(matches!(reach.partner_for(&p), Ok(None)));
    }
}
