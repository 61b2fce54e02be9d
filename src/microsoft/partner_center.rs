//! Partner Center's application consent API ("Get customer consent as a Control Panel
//! Vendor", learn.microsoft.com/partner-center/developer/control-panel-vendor-apis):
//! `POST {base}/v1/customers/{customer tenant id}/applicationconsents` with
//! `{applicationId, applicationGrants: [{enterpriseApplicationId, scope}], displayName}`
//! puts the partner's multi-tenant app (its service principal and delegated grants) in a
//! customer, without anyone signing in there.
//!
//! The token is the technician's in the MSP's own tenant, audience
//! `https://api.partnercenter.microsoft.com`. Partner Center accepts it only from a member of
//! the MSP's AdminAgents group with Global Administrator, Privileged Role Administrator or
//! Cloud Application Administrator in the customer through GDAP (403 otherwise); a consent
//! that is already there answers 409, which counts as done. 429 and 5xx honour `Retry-After`
//! (Microsoft documents a limit of 50 requests a second per application), bounded.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

/// Partner Center's API root when `HAL_ONBOARD_PARTNER_CENTER_URL` is not set.
pub const DEFAULT_BASE: &str = "https://api.partnercenter.microsoft.com/";
/// The scope a Partner Center token is asked for (delegated, MSP tenant).
pub const SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation";

/// One grant of the consent: a resource (its first-party app id, e.g. Microsoft Graph's
/// `00000003-0000-0000-c000-000000000000`) and the delegated scopes on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub enterprise_application_id: String,
    /// Scope names, e.g. `Application.ReadWrite.All` (sent comma separated, as Microsoft's
    /// samples do).
    pub scopes: Vec<String>,
}

/// How the consent call ended, both successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// 201: the consent was made now.
    Created,
    /// 409 "already exists": an earlier run (or someone else) made it.
    AlreadyPresent,
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerCenterError {
    #[error("cannot get a Partner Center token for the partner sign-in")]
    Token(#[source] azure_core::Error),
    #[error("cannot reach Partner Center at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// 401: the token was not accepted (wrong audience, expired).
    #[error("Partner Center did not accept the partner sign-in (401{})", detail(.description))]
    Unauthorized { description: String },
    /// 403: the technician may not consent in this customer through Partner Center.
    #[error("Partner Center refused the consent in customer {customer} (403{})", detail(.description))]
    Forbidden { customer: Uuid, description: String },
    /// 404: no (active) relationship reaches the customer.
    #[error("Partner Center does not know customer {customer} for this partner (404{})", detail(.description))]
    NoRelationship { customer: Uuid, description: String },
    /// 400: the request or the application was refused.
    #[error("Partner Center refused the consent request (400{})", detail(.description))]
    BadRequest { description: String },
    /// 429 or 5xx for longer than the retry budget.
    #[error("Partner Center stayed busy ({status}) after {attempts} attempts over {}s", .waited.as_secs())]
    Busy {
        status: u16,
        attempts: u32,
        waited: Duration,
    },
    #[error("Partner Center answered {status} unexpectedly{}", detail(.description))]
    Unexpected { status: u16, description: String },
}

fn detail(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

impl PartnerCenterError {
    /// What the technician can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PartnerCenterError::Token(_) | PartnerCenterError::Unauthorized { .. } => {
                "Run `hal-onboard partner login` again (the Partner Center permission, user_impersonation, must be consented in the MSP's tenant: `hal-onboard partner setup` grants it).".into()
            }
            PartnerCenterError::Unreachable { .. } => {
                "Check the network, HTTPS_PROXY, HAL_ONBOARD_CA_CERT and HAL_ONBOARD_PARTNER_CENTER_URL, then run the command again.".into()
            }
            PartnerCenterError::Forbidden { .. } => {
                "Partner Center's consent needs the technician in the MSP's AdminAgents group and Global Administrator, Privileged Role Administrator or Cloud Application Administrator in the customer through GDAP (Application Administrator is not enough); otherwise a customer admin approves the admin consent link.".into()
            }
            PartnerCenterError::NoRelationship { .. } => {
                "Check the customer's GDAP relationship with `hal-onboard partner customers`: it must be active.".into()
            }
            PartnerCenterError::BadRequest { .. } => {
                "Check that the partner app is multi-tenant: run `hal-onboard partner setup` (it repairs the app).".into()
            }
            PartnerCenterError::Busy { .. } => {
                "Partner Center is busy; run the same command again in a few minutes (it resumes where it stopped).".into()
            }
            PartnerCenterError::Unexpected { .. } => return None,
        })
    }
}

/// How long to keep trying while Partner Center throttles or is busy.
#[derive(Debug, Clone)]
pub struct PcRetry {
    pub attempts: u32,
    pub budget: Duration,
    /// First backoff without a `Retry-After`; doubles.
    pub base: Duration,
}

impl Default for PcRetry {
    fn default() -> Self {
        PcRetry {
            attempts: 6,
            budget: Duration::from_secs(120),
            base: Duration::from_secs(2),
        }
    }
}

impl PcRetry {
    /// Every wait multiplied by `f` (`HAL_ONBOARD_RETRY_SCALE`).
    pub fn scaled(mut self, f: f64) -> Self {
        self.budget = self.budget.mul_f64(f);
        self.base = self.base.mul_f64(f);
        self
    }
}

/// Partner Center, as the technician of the MSP. Cheap to clone.
#[derive(Clone)]
pub struct PartnerCenter {
    http: reqwest::Client,
    base: Url,
    credential: Arc<dyn TokenCredential>,
    retry: PcRetry,
    /// Multiplies server-given `Retry-After` waits too (tests).
    scale: f64,
}

impl std::fmt::Debug for PartnerCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerCenter")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl PartnerCenter {
    /// `base`: `HAL_ONBOARD_PARTNER_CENTER_URL` when set, else [`DEFAULT_BASE`];
    /// `credential`: the partner sign-in's Partner Center credential (MSP tenant).
    pub fn new(
        http: reqwest::Client,
        base: Option<Url>,
        credential: Arc<dyn TokenCredential>,
    ) -> PartnerCenter {
        let mut base = base.unwrap_or_else(|| Url::parse(DEFAULT_BASE).expect("constant URL"));
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        PartnerCenter {
            http,
            base,
            credential,
            retry: PcRetry::default(),
            scale: 1.0,
        }
    }

    /// Every wait, `Retry-After` included, multiplied by `f` (`config::retry_scale()`, read by
    /// the caller: a client reads no environment).
    pub fn with_scale(mut self, f: f64) -> Self {
        self.retry = PcRetry::default().scaled(f);
        self.scale = f;
        self
    }

    pub fn with_retry(mut self, retry: PcRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Consents `app_id` in `customer` with `grants`. 409 ("already exists") is
    /// [`ConsentOutcome::AlreadyPresent`], a success: the call is safe to repeat.
    pub async fn consent(
        &self,
        customer: Uuid,
        app_id: &str,
        display_name: &str,
        grants: &[Grant],
    ) -> Result<ConsentOutcome, PartnerCenterError> {
        let url = self
            .base
            .join(&format!("v1/customers/{customer}/applicationconsents"))
            .expect("joins");
        let body = json!({
            "applicationId": app_id,
            "applicationGrants": grants.iter().map(|g| json!({
                "enterpriseApplicationId": g.enterprise_application_id,
                "scope": g.scopes.join(","),
            })).collect::<Vec<_>>(),
            "displayName": display_name,
        });
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let token = self
                .credential
                .get_token(&[SCOPE], None)
                .await
                .map_err(PartnerCenterError::Token)?;
            let rsp = self
                .http
                .post(url.clone())
                .bearer_auth(token.token.secret())
                .header("Accept", "application/json")
                .header("ms-correlationid", Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .map_err(|source| PartnerCenterError::Unreachable {
                    url: url.to_string(),
                    source,
                })?;
            let status = rsp.status().as_u16();
            let retry_after = crate::http::retry_after(
                rsp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            );
            let description = match status {
                200 | 201 => String::new(),
                _ => describe(
                    &crate::http::read_body(rsp, 64 * 1024)
                        .await
                        .unwrap_or_default(),
                ),
            };
            tracing::debug!(%customer, status, attempt, "partner center consent");
            match status {
                429 | 500..=599 => {
                    let d = match retry_after {
                        Some(d) => d.mul_f64(self.scale),
                        None => self.retry.base.saturating_mul(1 << (attempt - 1).min(10)),
                    };
                    if attempt >= self.retry.attempts || waited + d > self.retry.budget {
                        return Err(PartnerCenterError::Busy {
                            status,
                            attempts: attempt,
                            waited,
                        });
                    }
                    tokio::time::sleep(d).await;
                    waited += d;
                }
                _ => return answer(customer, status, description),
            }
        }
    }
}

/// A final answer of Partner Center. "Already exists" is done whatever its status: the
/// reference lists 201, 400, 401, 403 and 404 only, and partner tooling recognises an existing
/// consent by its message ("Permission entry already exists", CIPP's Set-CIPPCPVConsent).
fn answer(
    customer: Uuid,
    status: u16,
    description: String,
) -> Result<ConsentOutcome, PartnerCenterError> {
    if (400..500).contains(&status) && description.to_ascii_lowercase().contains("already exists") {
        return Ok(ConsentOutcome::AlreadyPresent);
    }
    match status {
        200 | 201 => Ok(ConsentOutcome::Created),
        409 => Ok(ConsentOutcome::AlreadyPresent),
        401 => Err(PartnerCenterError::Unauthorized { description }),
        403 => Err(PartnerCenterError::Forbidden {
            customer,
            description,
        }),
        404 => Err(PartnerCenterError::NoRelationship {
            customer,
            description,
        }),
        400 => Err(PartnerCenterError::BadRequest { description }),
        _ => Err(PartnerCenterError::Unexpected {
            status,
            description,
        }),
    }
}

/// Partner Center's error body `{code, description, …}` in one line (bounded; it never holds
/// a token, but a body that is not Partner Center's is not repeated).
fn describe(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let d = v["description"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .unwrap_or("");
    let mut d: String = d.chars().filter(|c| !c.is_control()).take(300).collect();
    if let Some(code) = v["code"]
        .as_u64()
        .or_else(|| v["code"].as_str()?.parse().ok())
        && !d.is_empty()
    {
        d = format!("{d} (code {code})");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn already_exists_is_done_whatever_the_status() {
        let c = Uuid::nil();
        let exists = || "Permission entry already exists. (code 400)".to_string();
        assert_eq!(
            answer(c, 400, exists()).unwrap(),
            ConsentOutcome::AlreadyPresent
        );
        assert_eq!(
            answer(c, 409, String::new()).unwrap(),
            ConsentOutcome::AlreadyPresent
        );
        assert!(matches!(
            answer(c, 400, "bad body".into()),
            Err(PartnerCenterError::BadRequest { .. })
        ));
        assert!(matches!(
            answer(c, 403, String::new()),
            Err(PartnerCenterError::Forbidden { .. })
        ));
    }

    #[test]
    fn describe_reads_partner_centers_error_shape_only() {
        let b = br#"{"code":600012,"description":"Customer was not found.","data":[],"source":"PartnerFD"}"#;
        assert_eq!(describe(b), "Customer was not found. (code 600012)");
        assert_eq!(describe(b"<html>proxy</html>"), "");
    }
}
