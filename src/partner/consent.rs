//! The partner app's consent in one customer, and the wait until it takes effect.
//!
//! 1. Partner Center's consent API ([`PartnerCenter::consent`]); "already exists" (409) is
//!    done. It needs the technician in the MSP's AdminAgents group with Global
//!    Administrator, Privileged Role Administrator or Cloud Application Administrator in the
//!    customer ("Get customer consent as a Control Panel Vendor").
//! 2. Where Partner Center answers 403, and the app is not consented there already, the
//!    customer's admin consent URL (`{login}/{customer}/v2.0/adminconsent?client_id=…&scope=…
//!    &redirect_uri=…`, "Admin consent on the Microsoft identity platform"): the observer shows
//!    it, an admin of the customer approves it (one click), and the run waits.
//! 3. A consent takes minutes to take effect: until then the customer's sign-in answers
//!    AADSTS65001 (not consented) or, while the new service principal replicates, AADSTS700016.
//!    A customer token is asked for every [`ConsentPolicy::interval`] until one comes, within
//!    a documented budget (5 minutes after Partner Center, 15 after showing the admin consent
//!    link, both scaled by `HAL_ONBOARD_RETRY_SCALE`), then an error with the next step.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use url::Url;
use uuid::Uuid;

use crate::cloud::Endpoints;
use crate::microsoft::partner_center::{ConsentOutcome, Grant, PartnerCenter, PartnerCenterError};

/// Microsoft Graph's application id (the grants' `enterpriseApplicationId`).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Office 365 Exchange Online's application id.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// The delegated Graph scopes the onboarding uses in a customer.
pub const GRAPH_SCOPES: &[&str] = &[
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
];
/// The delegated Exchange Online scope (`Connect-ExchangeOnline -AccessToken`).
pub const EXCHANGE_SCOPES: &[&str] = &["Exchange.Manage"];
/// Where the admin consent page sends the admin's browser afterwards: the partner app is a
/// public client with `http://localhost` as its redirect URI (nothing needs to listen there;
/// the consent is made before the redirect).
pub const ADMIN_CONSENT_REDIRECT: &str = "http://localhost";

/// The grants the partner app needs in every customer.
pub fn grants() -> Vec<Grant> {
    vec![
        Grant {
            enterprise_application_id: GRAPH_APP_ID.into(),
            scopes: GRAPH_SCOPES.iter().map(|s| s.to_string()).collect(),
        },
        Grant {
            enterprise_application_id: EXCHANGE_APP_ID.into(),
            scopes: EXCHANGE_SCOPES.iter().map(|s| s.to_string()).collect(),
        },
    ]
}

/// The v2.0 admin consent URL for `client_id` in `customer`, asking for [`grants`] as
/// fully qualified scopes of the cloud's Graph and Exchange resources.
pub fn admin_consent_url(endpoints: &Endpoints, customer: Uuid, client_id: &str) -> Url {
    let graph = endpoints.graph_resource.trim_end_matches('/');
    let exo = endpoints.exchange_resource.trim_end_matches('/');
    let scope: Vec<String> = GRAPH_SCOPES
        .iter()
        .map(|s| format!("{graph}/{s}"))
        .chain(EXCHANGE_SCOPES.iter().map(|s| format!("{exo}/{s}")))
        .collect();
    let mut url = endpoints
        .login
        .join(&format!("{customer}/v2.0/adminconsent"))
        .expect("joins");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("scope", &scope.join(" "))
        .append_pair("redirect_uri", ADMIN_CONSENT_REDIRECT)
        .append_pair("state", &customer.simple().to_string());
    url
}

/// How the consent came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRoute {
    PartnerCenter(ConsentOutcome),
    /// Partner Center refused (403) but the app was consented already.
    AlreadyConsented,
    /// A customer admin approved the admin consent link.
    AdminConsent,
}

/// One wait for the consent to take effect.
#[derive(Debug, Clone)]
pub struct ConsentProgress {
    /// This attempt (1-based) of at most `of`.
    pub attempt: u32,
    pub of: u32,
    pub waited: Duration,
    pub budget: Duration,
    /// The AADSTS code of the last refusal (65001 while the consent is not in effect).
    pub last_code: Option<u64>,
}

impl ConsentProgress {
    /// "waiting for the partner app's consent to take effect: 1 min of 5 min (try 7 of 31)".
    pub fn sentence(&self) -> String {
        use crate::microsoft::graph::human;
        format!(
            "waiting for the partner app's consent to take effect: {} of {} (try {} of {})",
            human(self.waited),
            human(self.budget),
            self.attempt,
            self.of
        )
    }
}

/// What to tell the technician when an admin of the customer must approve `url`.
pub fn admin_consent_sentence(customer: &str, url: &Url, budget: Duration) -> String {
    format!(
        "An admin of {customer} (Global Administrator, Privileged Role Administrator or Cloud Application Administrator) must approve the partner app: open {url} and accept. hal-onboard waits up to {} for it.",
        crate::microsoft::graph::human(budget)
    )
}

/// Who shows the consent's progress (the UI; a client never prints).
pub trait ConsentObserver: Send + Sync {
    /// Partner Center answered (created, or already there).
    fn partner_center(&self, _customer: Uuid, _outcome: ConsentOutcome) {}
    /// Partner Center refused: a customer admin must open `url` and approve; the run waits.
    fn admin_consent_needed(&self, customer: Uuid, url: &Url, why: &str);
    /// Still waiting for the consent to take effect.
    fn waiting(&self, _customer: Uuid, _progress: &ConsentProgress) {}
    /// A customer token works.
    fn in_effect(&self, _customer: Uuid, _waited: Duration) {}
}

/// How long to wait for a consent to take effect (Microsoft: minutes).
#[derive(Debug, Clone)]
pub struct ConsentPolicy {
    /// Between two tries of a customer token.
    pub interval: Duration,
    /// After a Partner Center consent.
    pub propagation_budget: Duration,
    /// After the admin consent link was shown (a person has to click).
    pub admin_budget: Duration,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        ConsentPolicy {
            interval: Duration::from_secs(10),
            propagation_budget: Duration::from_secs(5 * 60),
            admin_budget: Duration::from_secs(15 * 60),
        }
    }
}

impl ConsentPolicy {
    /// The default, scaled by `HAL_ONBOARD_RETRY_SCALE` as the Graph retries are.
    pub fn from_env() -> Self {
        Self::default().scaled(crate::config::retry_scale())
    }

    pub fn scaled(mut self, f: f64) -> Self {
        self.interval = self.interval.mul_f64(f);
        self.propagation_budget = self.propagation_budget.mul_f64(f);
        self.admin_budget = self.admin_budget.mul_f64(f);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(transparent)]
    PartnerCenter(PartnerCenterError),
    /// The consent did not take effect within the budget.
    #[error("the partner app's consent in customer {customer} did not take effect within {}s ({attempts} tries; last refusal AADSTS{})", .waited.as_secs(), .last_code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()))]
    NotInEffect {
        customer: Uuid,
        waited: Duration,
        attempts: u32,
        last_code: Option<u64>,
        /// Set when the admin consent link was shown (and perhaps never approved).
        admin_url: Option<Url>,
    },
    /// The customer sign-in failed for a reason a consent does not change.
    #[error("the partner sign-in at customer {customer} failed")]
    SignIn {
        customer: Uuid,
        #[source]
        source: azure_core::Error,
    },
}

impl ConsentError {
    /// The next step, naming the command to run.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConsentError::PartnerCenter(e) => e.hint(),
            ConsentError::NotInEffect {
                customer,
                admin_url: Some(url),
                ..
            } => Some(format!(
                "Have an admin of the customer (Global Administrator, Privileged Role Administrator or Cloud Application Administrator) open {url} and approve, then run `hal-onboard tenant add --partner {customer}` again."
            )),
            ConsentError::NotInEffect { customer, .. } => Some(format!(
                "Microsoft usually applies a consent within minutes, sometimes more: run `hal-onboard tenant add --partner {customer}` again in 10 minutes (it resumes; the consent is not made twice)."
            )),
            ConsentError::SignIn { source, .. } => {
                crate::microsoft::signin::sign_in_error(source).and_then(|e| e.hint())
            }
        }
    }

    /// The consent was made (or asked for) and only Microsoft is slow: worth running again.
    pub fn is_waiting(&self) -> bool {
        matches!(self, ConsentError::NotInEffect { .. })
    }
}

/// The AADSTS code of a credential failure: the typed sign-in error's, else the text's.
pub fn refusal_code(e: &azure_core::Error) -> Option<u64> {
    use crate::microsoft::signin::{SignInError, aadsts_code, sign_in_error};
    if let Some(SignInError::Refused { code: Some(c), .. }) = sign_in_error(e) {
        return Some(*c);
    }
    // The partner sign-in wraps it in its own error (PartnerError::Customer).
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(SignInError::Refused { code: Some(c), .. }) = s.downcast_ref::<SignInError>() {
            return Some(*c);
        }
        text.push(' ');
        text.push_str(&s.to_string());
        src = s.source();
    }
    aadsts_code(&text)
}

/// Refusals that mean "not consented (yet)".
fn not_yet(code: Option<u64>) -> bool {
    matches!(code, Some(65001 | 700016))
}

/// Consent for the partner app (`client_id`, shown as `display_name`) in `customer`.
/// `customer_credential` is the partner sign-in at the customer's authority
/// (`PartnerSignIn::customer`). Ok once a customer token for Microsoft Graph works.
#[allow(clippy::too_many_arguments)]
pub async fn ensure(
    pc: &PartnerCenter,
    customer_credential: Arc<dyn TokenCredential>,
    endpoints: &Endpoints,
    customer: Uuid,
    client_id: &str,
    display_name: &str,
    observer: &dyn ConsentObserver,
    policy: &ConsentPolicy,
) -> Result<ConsentRoute, ConsentError> {
    let scope = format!(
        "{}/.default",
        endpoints.graph_resource.trim_end_matches('/')
    );
    let probe = || async {
        match customer_credential.get_token(&[scope.as_str()], None).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    };
    let (route, budget, admin_url) = match pc
        .consent(customer, client_id, display_name, &grants())
        .await
    {
        Ok(outcome) => {
            observer.partner_center(customer, outcome);
            (
                ConsentRoute::PartnerCenter(outcome),
                policy.propagation_budget,
                None,
            )
        }
        Err(PartnerCenterError::Forbidden { description, .. }) => {
            // Consented before (an earlier run's link, or an admin): nothing to ask for.
            match probe().await {
                Ok(()) => {
                    observer.in_effect(customer, Duration::ZERO);
                    return Ok(ConsentRoute::AlreadyConsented);
                }
                Err(e) if !not_yet(refusal_code(&e)) => {
                    return Err(ConsentError::SignIn {
                        customer,
                        source: e,
                    });
                }
                Err(_) => {}
            }
            let url = admin_consent_url(endpoints, customer, client_id);
            let why = if description.is_empty() {
                "Partner Center refused the consent (403)".to_string()
            } else {
                format!("Partner Center refused the consent (403: {description})")
            };
            observer.admin_consent_needed(customer, &url, &why);
            (ConsentRoute::AdminConsent, policy.admin_budget, Some(url))
        }
        Err(e) => return Err(ConsentError::PartnerCenter(e)),
    };
    let interval = policy.interval.max(Duration::from_millis(1));
    let of = (budget.as_millis() / interval.as_millis()) as u32 + 1;
    let mut waited = Duration::ZERO;
    let mut last_code = None;
    for attempt in 1..=of {
        if attempt > 1 {
            observer.waiting(
                customer,
                &ConsentProgress {
                    attempt,
                    of,
                    waited,
                    budget,
                    last_code,
                },
            );
            tokio::time::sleep(interval).await;
            waited += interval;
        }
        match probe().await {
            Ok(()) => {
                observer.in_effect(customer, waited);
                return Ok(route);
            }
            Err(e) => {
                let code = refusal_code(&e);
                if !not_yet(code) {
                    return Err(ConsentError::SignIn {
                        customer,
                        source: e,
                    });
                }
                tracing::debug!(%customer, attempt, ?code, "consent not in effect yet");
                last_code = code;
            }
        }
    }
    Err(ConsentError::NotInEffect {
        customer,
        waited,
        attempts: of,
        last_code,
        admin_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;

    #[test]
    fn the_admin_consent_url_is_microsofts_v2_endpoint_for_the_customer() {
        let e = Endpoints::new(Cloud::Global, None, None);
        let c = Uuid::from_u128(7);
        let u = admin_consent_url(&e, c, "app-id");
        assert_eq!(
            u.as_str().split('?').next().unwrap(),
            format!("https://login.microsoftonline.com/{c}/v2.0/adminconsent")
        );
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "app-id");
        assert_eq!(q["redirect_uri"], "http://localhost");
        assert_eq!(
            q["scope"],
            "https://graph.microsoft.com/Application.ReadWrite.All https://graph.microsoft.com/AppRoleAssignment.ReadWrite.All https://graph.microsoft.com/Directory.Read.All https://outlook.office365.com/Exchange.Manage"
        );
    }

    #[test]
    fn a_refusal_is_found_inside_a_wrapping_error() {
        use crate::microsoft::signin::SignInError;
        #[derive(Debug, thiserror::Error)]
        #[error("customer refused the partner sign-in")]
        struct Wrapper(#[source] SignInError);
        let refused = SignInError::Refused {
            error: "invalid_grant".into(),
            code: Some(65001),
            description: "not consented".into(),
            flow: None,
        };
        let e = azure_core::Error::with_error(
            azure_core::error::ErrorKind::Credential,
            Wrapper(refused),
            "customer refused the partner sign-in",
        );
        assert_eq!(refusal_code(&e), Some(65001));
        let text = azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "refused: no consent (AADSTS65001)",
        );
        assert_eq!(refusal_code(&text), Some(65001));
    }

    #[test]
    fn progress_and_the_admin_link_read_as_sentences() {
        let p = ConsentProgress {
            attempt: 7,
            of: 31,
            waited: Duration::from_secs(60),
            budget: Duration::from_secs(300),
            last_code: Some(65001),
        };
        assert_eq!(
            p.sentence(),
            "waiting for the partner app's consent to take effect: 1 min of 5 min (try 7 of 31)"
        );
        let u = Url::parse("https://login.microsoftonline.com/x/v2.0/adminconsent?client_id=a")
            .unwrap();
        let s = admin_consent_sentence("fabrikam.onmicrosoft.com", &u, Duration::from_secs(900));
        assert!(s.contains(u.as_str()) && s.contains("15 min"), "{s}");
    }

    #[test]
    fn the_policy_scales_every_wait() {
        let p = ConsentPolicy::default().scaled(0.01);
        assert_eq!(p.propagation_budget, Duration::from_secs(3));
        assert_eq!(p.interval, Duration::from_millis(100));
    }
}
