//! The MSP portal client: hands a tenant's recorded credentials to Hal.
//!
//! Protocol: docs/portal-api.md (OpenAPI: docs/portal-api.yaml). The client secret travels only
//! in the request body over HTTPS; it is never logged, and error text from the portal is
//! scrubbed of it before it is shown.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

/// What the portal receives for one tenant.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    pub tenant_id: String,
    pub tenant_domain: String,
    pub tenant_name: String,
    pub cloud: String,
    pub client_id: String,
    #[serde(serialize_with = "crate::secrets::serialize_exposed")]
    pub client_secret: crate::secrets::SecretText,
    pub secret_key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub secret_expires_at: OffsetDateTime,
    /// `enabled` or `waiting`.
    pub ual_status: String,
    /// `none`, `P1` or `P2`.
    pub entra_license: String,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("tenant_id", &self.tenant_id)
            .field("tenant_domain", &self.tenant_domain)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("secret_key_id", &self.secret_key_id)
            .finish_non_exhaustive()
    }
}

impl Submission {
    /// Stable for one tenant and one secret, so a resend after a lost answer is not a second
    /// registration, and a rotated secret is a new request.
    pub fn idempotency_key(&self) -> String {
        format!("hal-onboard-{}-{}", self.tenant_id, self.secret_key_id)
    }

    /// The PUT after a 409 is another request than the POST, so it carries its own key
    /// (a portal that remembers keys must not answer the PUT with the POST's 409).
    pub fn put_idempotency_key(&self) -> String {
        format!("{}-put", self.idempotency_key())
    }
}

/// What the portal holds for one tenant (`GET /api/v1/m365/tenants/{tenantId}`): never the
/// secret, only which one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalRecord {
    pub client_id: String,
    pub secret_key_id: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub secret_expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub ual_status: Option<String>,
    #[serde(default)]
    pub entra_license: Option<String>,
    #[serde(default)]
    pub cloud: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// The status fields `PATCH /api/v1/m365/tenants/{tenantId}` carries (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdate {
    pub tenant_id: String,
    /// `enabled` or `waiting`.
    pub ual_status: String,
    /// `none`, `P1` or `P2`.
    pub entra_license: String,
    /// When unified audit logging was verified (only with `ualStatus: enabled`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub ual_verified_at: Option<OffsetDateTime>,
}

/// What every answer of a Hal portal that took credentials echoes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    pub tenant_id: String,
    pub client_id: String,
    pub secret_key_id: String,
}

/// How the parsers below say an answer is not a Hal portal's.
fn not_a_portal(what: impl Into<String>) -> PortalError {
    PortalError::NotAPortal {
        detail: what.into(),
    }
}

fn json_object(
    body: &[u8],
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, PortalError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err(not_a_portal(format!("{what} is JSON but not an object"))),
        Err(_) => {
            let looks_html = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim_start()
                .to_ascii_lowercase()
                .starts_with('<');
            Err(not_a_portal(if body.is_empty() {
                format!("{what} is empty")
            } else if looks_html {
                format!("{what} is an HTML page")
            } else {
                format!("{what} is not JSON")
            }))
        }
    }
}

/// The answer to a POST or PUT: accepted only if it echoes the tenant, client and secret sent.
pub fn parse_acknowledgement(body: &[u8], sent: &Submission) -> Result<(), PortalError> {
    let m = json_object(body, "the answer")?;
    let ack: Acknowledgement = serde_json::from_value(serde_json::Value::Object(m))
        .map_err(|_| not_a_portal("the answer does not echo tenantId, clientId and secretKeyId"))?;
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if !(same(&ack.tenant_id, &sent.tenant_id)
        && same(&ack.client_id, &sent.client_id)
        && same(&ack.secret_key_id, &sent.secret_key_id))
    {
        return Err(not_a_portal(
            "the answer echoes another tenant, client or secret than the one sent",
        ));
    }
    Ok(())
}

/// The answer to `GET /api/v1/m365/tenants`: `{"items": [...]}`.
pub fn parse_listing(body: &[u8]) -> Result<usize, PortalError> {
    let m = json_object(body, "the tenant list")?;
    match m.get("items") {
        Some(serde_json::Value::Array(a)) => Ok(a.len()),
        _ => Err(not_a_portal("the tenant list has no \"items\" array")),
    }
}

/// The answer to `GET /api/v1/m365/tenants/{tenantId}`.
pub fn parse_record(body: &[u8]) -> Result<PortalRecord, PortalError> {
    let m = json_object(body, "the tenant's record")?;
    if m.contains_key("clientSecret") {
        return Err(not_a_portal(
            "the tenant's record carries a clientSecret, which a Hal portal never returns",
        ));
    }
    serde_json::from_value(serde_json::Value::Object(m))
        .map_err(|_| not_a_portal("the tenant's record lacks clientId or secretKeyId"))
}

/// How a submission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// POST accepted.
    Created,
    /// The portal already had the tenant; PUT replaced its credentials.
    Updated,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the portal rejected the API token (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("the portal refused the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("the portal is unavailable (HTTP {status}) after {attempts} attempts")]
    Unavailable { status: u16, attempts: u32 },
    #[error("cannot reach the portal at {url} after {attempts} attempts")]
    Unreachable {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("the portal's answer was not understood: {0}")]
    Protocol(String),
    /// A 2xx that is not the documented JSON (a captive portal, a wrong URL): nothing counts
    /// as accepted.
    #[error("this URL does not answer as a Hal portal: {detail}")]
    NotAPortal { detail: String },
}

impl PortalError {
    /// Worth trying again later with `portal submit` (the portal may come back).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PortalError::Unavailable { .. } | PortalError::Unreachable { .. }
        )
    }
}

/// The far end, behind a trait so the wizard can be tested without HTTP.
#[async_trait::async_trait]
pub trait PortalApi: Send + Sync {
    /// One cheap authenticated request, to check the URL and token.
    async fn check(&self) -> Result<(), PortalError>;
    async fn submit(&self, s: &Submission) -> Result<SubmitOutcome, PortalError>;
    /// What the portal holds for a tenant (`None`: nothing). The default knows nothing.
    async fn tenant(&self, _tenant_id: &str) -> Result<Option<PortalRecord>, PortalError> {
        Ok(None)
    }
    /// Tells the portal a tenant's status changed (no secret).
    async fn update_status(&self, _u: &StatusUpdate) -> Result<(), PortalError> {
        Ok(())
    }
}

/// Retries: how many tries in all and the first back-off (doubled each time, with jitter),
/// each try's time limit, and the time every try and wait together may take: a portal that
/// hangs costs about a minute, not the HTTPS client's 90 s four times over.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub per_try: Duration,
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            per_try: Duration::from_secs(20),
            budget: Duration::from_secs(60),
        }
    }
}

pub struct HttpPortal {
    http: reqwest::Client,
    base: Url,
    token: crate::secrets::SecretText,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HttpPortal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPortal")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl HttpPortal {
    pub fn new(http: reqwest::Client, base: Url, token: crate::secrets::SecretText) -> Self {
        let mut base = base;
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        HttpPortal {
            http,
            base,
            token,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("portal path joins")
    }

    /// Sends with bounded retries on 429, 5xx and connection errors; other answers return as is.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<(u16, String), PortalError> {
        let mut delay = self.retry.first_delay;
        let mut attempt = 0;
        let deadline = tokio::time::Instant::now() + self.retry.budget;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let res = build()
                .timeout(self.retry.per_try.min(left).max(Duration::from_millis(1)))
                .bearer_auth(self.token.expose())
                .header("Accept", "application/json")
                .send()
                .await;
            // The next wait must fit in what is left of the budget, or this try is the last.
            let last = attempt >= self.retry.attempts
                || deadline.saturating_duration_since(tokio::time::Instant::now()) <= delay;
            match res {
                Ok(rsp) => {
                    let status = rsp.status().as_u16();
                    let retry_after = crate::http::retry_after(
                        rsp.headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()),
                    );
                    let body = match crate::http::read_body(rsp, crate::http::MAX_BODY).await {
                        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                        Err(e @ crate::http::BodyError::TooLarge) => {
                            return Err(PortalError::Protocol(e.to_string()));
                        }
                        Err(crate::http::BodyError::Read(_)) => String::new(),
                    };
                    tracing::debug!(%status, url = %url, attempt, "portal answered");
                    if status == 429 || status >= 500 {
                        if last {
                            return Err(PortalError::Unavailable {
                                status,
                                attempts: attempt,
                            });
                        }
                        let wait = retry_after.unwrap_or(delay).min(self.retry.max_delay * 4);
                        tokio::time::sleep(jitter(wait)).await;
                    } else {
                        return Ok((status, body));
                    }
                }
                Err(e) => {
                    tracing::debug!(url = %url, attempt, error = %e, "portal unreachable");
                    if last {
                        return Err(PortalError::Unreachable {
                            url: url.to_string(),
                            attempts: attempt,
                            source: e.without_url(),
                        });
                    }
                    tokio::time::sleep(jitter(delay)).await;
                }
            }
            delay = (delay * 2).min(self.retry.max_delay);
        }
    }
}

fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + rand::random_range(0..=ms / 2 + 1))
}

/// The portal's own words from an error body, without anything that looks like our secret.
fn portal_message(body: &str, secret: Option<&str>) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = v
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .or_else(|| v.get("detail"))
                .or_else(|| v.get("title"))
                .or_else(|| v.get("error"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    let text = if text.is_empty() {
        "no message".to_string()
    } else {
        text
    };
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "<redacted>"),
        _ => text,
    }
}

#[async_trait::async_trait]
impl PortalApi for HttpPortal {
    async fn check(&self) -> Result<(), PortalError> {
        let url = self.url("api/v1/m365/tenants");
        let (status, body) = self.send(|| self.http.get(url.clone()), &url).await?;
        match status {
            200..=299 => parse_listing(body.as_bytes()).map(|_| ()),
            401 | 403 => Err(PortalError::Unauthorized { status }),
            // Only the documented listing proves the URL is a Hal portal.
            _ => Err(not_a_portal(format!(
                "GET /api/v1/m365/tenants answered HTTP {status}"
            ))),
        }
    }

    async fn tenant(&self, tenant_id: &str) -> Result<Option<PortalRecord>, PortalError> {
        let url = self.url(&format!("api/v1/m365/tenants/{tenant_id}"));
        let (status, body) = self.send(|| self.http.get(url.clone()), &url).await?;
        match status {
            200..=299 => parse_record(body.as_bytes()).map(Some),
            404 => Ok(None),
            401 | 403 => Err(PortalError::Unauthorized { status }),
            _ => Err(PortalError::Rejected {
                status,
                message: portal_message(&body, None),
            }),
        }
    }

    async fn update_status(&self, u: &StatusUpdate) -> Result<(), PortalError> {
        let url = self.url(&format!("api/v1/m365/tenants/{}", u.tenant_id));
        let (status, body) = self
            .send(|| self.http.patch(url.clone()).json(u), &url)
            .await?;
        match status {
            200..=299 => {
                let m = json_object(body.as_bytes(), "the answer")?;
                if m.get("tenantId")
                    .and_then(|v| v.as_str())
                    .is_some_and(|t| t.eq_ignore_ascii_case(&u.tenant_id))
                {
                    Ok(())
                } else {
                    Err(not_a_portal("the answer does not echo tenantId"))
                }
            }
            401 | 403 => Err(PortalError::Unauthorized { status }),
            _ => Err(PortalError::Rejected {
                status,
                message: portal_message(&body, None),
            }),
        }
    }

    async fn submit(&self, s: &Submission) -> Result<SubmitOutcome, PortalError> {
        let key = s.idempotency_key();
        let url = self.url("api/v1/m365/tenants");
        let (status, body) = self
            .send(
                || {
                    self.http
                        .post(url.clone())
                        .header("Idempotency-Key", &key)
                        .json(s)
                },
                &url,
            )
            .await?;
        let secret = Some(s.client_secret.expose());
        match status {
            200..=299 => parse_acknowledgement(body.as_bytes(), s).map(|_| SubmitOutcome::Created),
            409 => {
                let put_url = self.url(&format!("api/v1/m365/tenants/{}", s.tenant_id));
                let put_key = s.put_idempotency_key();
                let (status, body) = self
                    .send(
                        || {
                            self.http
                                .put(put_url.clone())
                                .header("Idempotency-Key", &put_key)
                                .json(s)
                        },
                        &put_url,
                    )
                    .await?;
                match status {
                    200..=299 => {
                        parse_acknowledgement(body.as_bytes(), s).map(|_| SubmitOutcome::Updated)
                    }
                    401 | 403 => Err(PortalError::Unauthorized { status }),
                    _ => Err(PortalError::Rejected {
                        status,
                        message: portal_message(&body, secret),
                    }),
                }
            }
            401 | 403 => Err(PortalError::Unauthorized { status }),
            _ => Err(PortalError::Rejected {
                status,
                message: portal_message(&body, secret),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Submission {
            tenant_id: "t".into(),
            tenant_domain: "d".into(),
            tenant_name: "n".into(),
            cloud: "global".into(),
            client_id: "c".into(),
            client_secret: "SUPERSECRET~value".into(),
            secret_key_id: "k".into(),
            secret_expires_at: OffsetDateTime::UNIX_EPOCH,
            ual_status: "enabled".into(),
            entra_license: "P1".into(),
        };
        assert!(!format!("{s:?}").contains("SUPERSECRET"));
        assert_eq!(s.idempotency_key(), "hal-onboard-t-k");
    }

    #[test]
    fn portal_message_scrubs_secret_and_reads_shapes() {
        assert_eq!(
            portal_message(
                r#"{"error":{"message":"bad clientSecret abc123"}}"#,
                Some("abc123")
            ),
            "bad clientSecret <redacted>"
        );
        assert_eq!(portal_message(r#"{"message":"nope"}"#, None), "nope");
        assert_eq!(portal_message("", None), "no message");
    }
}

#[cfg(test)]
mod hang_tests {
    use super::*;

    /// Once four tries of the HTTPS client's 90 s each: six minutes on a portal that accepts
    /// the connection and never answers.
    #[tokio::test]
    async fn a_hung_portal_costs_the_budget_not_every_try_in_full() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let portal = HttpPortal::new(
            reqwest::Client::new(),
            Url::parse(&format!("http://{addr}/")).unwrap(),
            "t".into(),
        )
        .with_retry(RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            per_try: Duration::from_millis(400),
            budget: Duration::from_millis(1000),
        });
        let url = portal.url("api/v1/m365/tenants");
        let started = std::time::Instant::now();
        let e = portal
            .send(|| portal.http.get(url.clone()), &url)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(matches!(e, PortalError::Unreachable { .. }), "{e}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert!(took >= Duration::from_millis(400), "{took:?}");
    }
}
