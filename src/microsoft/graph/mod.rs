//! A small Microsoft Graph client: the calls onboarding needs, done the way Graph asks.
//!
//! - 429, 503 and 504 honour `Retry-After`, else back off exponentially with jitter, bounded
//!   in count and in total wait ("Microsoft Graph throttling guidance").
//! - Objects we have just created can be invisible for a few seconds on other replicas
//!   (`Request_ResourceNotFound`, or "does not reference a valid application object" when
//!   creating a service principal); requests marked [`GraphRequest::tolerate_replication`] get
//!   their own bounded retry, counted separately.
//! - `$batch` (up to 20 requests) removes round trips; throttled or not-yet-replicated items of
//!   a batch are retried by themselves.
//! - Every request is counted ([`meter::RequestMeter`]) so the request budget is measured.
//! - Errors carry Graph's code, message and request-id. Nothing here prints or logs a body.

pub mod directory;
pub mod meter;
pub mod model;

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cloud::Endpoints;
use meter::{Attempt, RequestMeter};

/// How hard to try before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request when throttled (429/503/504), the first included.
    pub throttle_attempts: u32,
    /// Attempts per request while a new object replicates, the first included.
    pub replication_attempts: u32,
    /// First backoff; doubles each time, with jitter.
    pub base: Duration,
    /// Longest single wait.
    pub cap: Duration,
    /// Most total waiting per request.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            throttle_attempts: 7,
            replication_attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            budget: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// Every wait multiplied by `f` (tests run the same logic in milliseconds).
    pub fn scaled(mut self, f: f64) -> Self {
        self.base = self.base.mul_f64(f);
        self.cap = self.cap.mul_f64(f);
        self.budget = self.budget.mul_f64(f);
        self
    }

    /// The wait before retry number `n` (1-based): `Retry-After` when given, else backoff.
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.cap.max(Duration::from_secs(1)) * 4);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        let d = exp.min(self.cap);
        // Full jitter in [d/2, d].
        let j: f64 = rand::random::<f64>() * 0.5 + 0.5;
        d.mul_f64(j)
    }
}

/// One Graph request, relative to `{graph}/v1.0/`.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub method: Method,
    /// Path and query, e.g. `servicePrincipals?$filter=appId eq '...'`.
    pub path: String,
    pub body: Option<Value>,
    /// Retry 404s (and the service principal's "not a valid application" 400) as replication delay.
    pub replication: bool,
}

impl GraphRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        GraphRequest {
            method,
            path: path.into().trim_start_matches('/').to_string(),
            body: None,
            replication: false,
        }
    }
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).body(body)
    }
    pub fn patch(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PATCH, path).body(body)
    }
    pub fn body(mut self, b: Value) -> Self {
        self.body = Some(b);
        self
    }
    pub fn tolerate_replication(mut self) -> Self {
        self.replication = true;
        self
    }

    /// The path as it goes on the wire (spaces in `$filter` encoded).
    fn wire_path(&self) -> String {
        self.path.replace(' ', "%20")
    }
}

/// A successful answer. Its Debug leaves out the body (addPassword's holds a secret).
#[derive(Clone)]
pub struct GraphResponse {
    pub status: u16,
    pub body: Value,
    pub request_id: Option<String>,
}

impl std::fmt::Debug for GraphResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphResponse")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl GraphResponse {
    pub fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, GraphError> {
        serde_json::from_value(self.body.clone()).map_err(|e| GraphError::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("cannot reach Microsoft Graph for {method} {path}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("could not get a token for Microsoft Graph")]
    Token(#[source] azure_core::Error),
    #[error("Microsoft Graph refused {method} {path}: {code}: {message} (HTTP {status}, request-id {})", .request_id.as_deref().unwrap_or("none"))]
    Api {
        method: Method,
        path: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        /// Gave up after this many throttled or replication attempts (0: not retried).
        retried: u32,
    },
    #[error("Microsoft Graph's answer to {what} could not be read: {detail}")]
    Decode { what: String, detail: String },
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
    pub fn message(&self) -> Option<&str> {
        match self {
            GraphError::Api { message, .. } => Some(message),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    /// The typed sign-in error behind a token failure.
    pub fn sign_in(&self) -> Option<&crate::microsoft::signin::SignInError> {
        match self {
            GraphError::Token(e) => crate::microsoft::signin::sign_in_error(e),
            _ => None,
        }
    }
    /// What the technician can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            GraphError::Token(_) => self.sign_in().and_then(|e| e.hint()),
            GraphError::Api { status: 429 | 503 | 504, .. } => Some(
                "Microsoft Graph is busy for this tenant; run the same command again in a few minutes (it resumes where it stopped).".into(),
            ),
            GraphError::Api { status: 401 | 403, .. } => Some(
                "Sign in as a Global Administrator of this tenant, and accept the permissions hal-onboard asks for.".into(),
            ),
            GraphError::Transport { .. } => Some(
                "Check the network, HTTPS_PROXY and HAL_ONBOARD_CA_CERT, then run the command again.".into(),
            ),
            _ => None,
        }
    }
}

/// Microsoft's error body: `{"error":{"code","message","innerError":{"request-id"}}}`.
fn api_error(
    method: &Method,
    path: &str,
    status: u16,
    body: &Value,
    request_id: Option<String>,
    retried: u32,
) -> GraphError {
    let e = &body["error"];
    let request_id = request_id.or_else(|| {
        e["innerError"]["request-id"]
            .as_str()
            .or(e["innererror"]["request-id"].as_str())
            .map(str::to_string)
    });
    GraphError::Api {
        method: method.clone(),
        path: path.split('?').next().unwrap_or(path).to_string(),
        status,
        code: e["code"].as_str().unwrap_or("unknown").to_string(),
        message: e["message"]
            .as_str()
            .unwrap_or("(no message)")
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        request_id,
        retried,
    }
}

fn is_throttled(status: u16) -> bool {
    matches!(status, 429 | 503 | 504)
}

/// A just-created object not visible yet on the replica that answered.
pub fn is_replication_error(status: u16, body: &Value) -> bool {
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    status == 404
        || (status == 400
            && (code == "Request_ResourceNotFound"
                || msg.contains("does not reference a valid application object")
                || msg.contains("Not a valid reference update")
                || msg.contains("does not exist or one of its queried reference-property")))
}

use crate::http::retry_after;

/// A Graph answer's body, refused past [`crate::http::MAX_BODY`].
async fn read_body(
    rsp: reqwest::Response,
    method: &Method,
    path: &str,
) -> Result<Vec<u8>, GraphError> {
    crate::http::read_body(rsp, crate::http::MAX_BODY)
        .await
        .map_err(|e| match e {
            crate::http::BodyError::Read(source) => GraphError::Transport {
                method: method.clone(),
                path: path.to_string(),
                source,
            },
            e @ crate::http::BodyError::TooLarge => GraphError::Decode {
                what: format!("{method} {path}"),
                detail: e.to_string(),
            },
        })
}

/// The Graph client. Cheap to clone.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    credential: Arc<dyn TokenCredential>,
    scopes: Vec<String>,
    retry: RetryPolicy,
    meter: Arc<RequestMeter>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph", &self.endpoints.graph.as_str())
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// `scopes`: what to ask `credential` for (the delegated sign-in scopes, or
    /// `{graph}/.default` for the Azure CLI).
    pub fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        credential: Arc<dyn TokenCredential>,
        scopes: Vec<String>,
        retry: RetryPolicy,
        meter: Arc<RequestMeter>,
    ) -> Self {
        GraphClient {
            http,
            endpoints,
            credential,
            scopes,
            retry,
            meter,
        }
    }

    pub fn meter(&self) -> &Arc<RequestMeter> {
        &self.meter
    }
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The same client asking its credential for other scopes (the same sign-in, silently).
    pub fn with_scopes(&self, scopes: Vec<String>) -> GraphClient {
        GraphClient {
            scopes,
            ..self.clone()
        }
    }

    /// A token for Graph (signing in on first use).
    pub async fn token(&self) -> Result<String, GraphError> {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        self.credential
            .get_token(&scopes, None)
            .await
            .map(|t| t.token.secret().to_string())
            .map_err(GraphError::Token)
    }

    /// Sends one request with the retries described above.
    pub async fn send(&self, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
        let url = self.endpoints.graph_url(&req.wire_path());
        let mut attempt = Attempt::First;
        let (mut throttled, mut replicated, mut others) = (0u32, 0u32, 0u32);
        let mut waited = Duration::ZERO;
        loop {
            let token = self.token().await?;
            let guard = self.meter.start(attempt);
            tracing::debug!(method = %req.method, path = %req.path, "graph request");
            let mut rb = self
                .http
                .request(req.method.clone(), url.clone())
                .bearer_auth(&token);
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            let sent = rb.send().await;
            let rsp = match sent {
                Ok(r) => r,
                Err(e) => {
                    drop(guard);
                    // Only reads are repeated after a network error: a POST may have landed.
                    if req.method == Method::GET && others < 2 {
                        others += 1;
                        attempt = Attempt::Other;
                        tokio::time::sleep(self.retry.wait(others, None)).await;
                        continue;
                    }
                    return Err(GraphError::Transport {
                        method: req.method.clone(),
                        path: req.path.clone(),
                        source: e,
                    });
                }
            };
            let status = rsp.status().as_u16();
            let request_id = rsp
                .headers()
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let ra = retry_after(
                rsp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
            );
            let bytes = read_body(rsp, &req.method, &req.path).await?;
            drop(guard);
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            tracing::debug!(status, request_id = ?request_id, "graph response");
            if (200..300).contains(&status) {
                if req.method != Method::GET {
                    self.meter.wrote(1);
                }
                return Ok(GraphResponse {
                    status,
                    body,
                    request_id,
                });
            }
            // A 503/504 on a POST may have been applied: only 429 (refused before any work) is
            // retried blindly for a POST; the caller's idempotent re-check handles the rest.
            let may_retry = status == 429 || req.method != Method::POST;
            if may_retry && is_throttled(status) && throttled + 1 < self.retry.throttle_attempts {
                throttled += 1;
                let d = self.retry.wait(throttled, ra);
                // Microsoft's Retry-After is obeyed (bounded by the attempt count); only our
                // own backoff draws on the budget.
                let own = if ra.is_some() { Duration::ZERO } else { d };
                if waited + own <= self.retry.budget {
                    waited += own;
                    attempt = Attempt::Throttled;
                    tokio::time::sleep(d).await;
                    continue;
                }
            }
            if req.replication
                && is_replication_error(status, &body)
                && replicated + 1 < self.retry.replication_attempts
            {
                replicated += 1;
                let d = self.retry.wait(replicated, None);
                if waited + d <= self.retry.budget {
                    waited += d;
                    attempt = Attempt::Replication;
                    tokio::time::sleep(d).await;
                    continue;
                }
            }
            return Err(api_error(
                &req.method,
                &req.path,
                status,
                &body,
                request_id,
                throttled + replicated,
            ));
        }
    }

    pub async fn get(&self, path: &str) -> Result<GraphResponse, GraphError> {
        self.send(&GraphRequest::get(path)).await
    }

    /// Sends `reqs` in `$batch`es of at most 20, and returns each one's outcome, in order.
    /// Throttled items, and items marked `tolerate_replication` that hit replication delay,
    /// are retried (in a smaller batch) within the policy's bounds.
    pub async fn batch(
        &self,
        reqs: &[GraphRequest],
    ) -> Result<Vec<Result<GraphResponse, GraphError>>, GraphError> {
        let mut out: Vec<Option<Result<GraphResponse, GraphError>>> =
            (0..reqs.len()).map(|_| None).collect();
        for chunk_start in (0..reqs.len()).step_by(20) {
            let idx: Vec<usize> = (chunk_start..(chunk_start + 20).min(reqs.len())).collect();
            self.batch_chunk(reqs, idx, &mut out).await?;
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every batch item answered"))
            .collect())
    }

    async fn batch_chunk(
        &self,
        reqs: &[GraphRequest],
        mut pending: Vec<usize>,
        out: &mut [Option<Result<GraphResponse, GraphError>>],
    ) -> Result<(), GraphError> {
        let mut tries: std::collections::HashMap<usize, (u32, u32)> = Default::default();
        let mut waited = Duration::ZERO;
        let mut attempt = Attempt::First;
        while !pending.is_empty() {
            if pending.len() == 1 && attempt == Attempt::First {
                // A batch of one is just a request.
                let i = pending[0];
                out[i] = Some(self.send(&reqs[i]).await);
                return Ok(());
            }
            let items: Vec<Value> = pending
                .iter()
                .map(|&i| {
                    let r = &reqs[i];
                    let mut v = json!({
                        "id": (i + 1).to_string(),
                        "method": r.method.as_str(),
                        "url": format!("/{}", r.wire_path()),
                    });
                    if let Some(b) = &r.body {
                        v["body"] = b.clone();
                        v["headers"] = json!({"Content-Type": "application/json"});
                    }
                    v
                })
                .collect();
            let mut outer = GraphRequest::post("$batch", json!({ "requests": items }));
            outer.method = Method::POST;
            let rsp = self.send_batch_envelope(&outer, attempt).await?;
            let responses = rsp.body["responses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut retry_now: Vec<usize> = Vec::new();
            let mut longest = Duration::ZERO;
            // The part of the wait that is our own backoff (Retry-After does not count).
            let mut own = Duration::ZERO;
            for &i in &pending {
                let r = &reqs[i];
                let id = (i + 1).to_string();
                let Some(item) = responses.iter().find(|x| x["id"].as_str() == Some(&id)) else {
                    out[i] = Some(Err(GraphError::Decode {
                        what: format!("$batch item {} ({} {})", id, r.method, r.path),
                        detail: "no answer for it".into(),
                    }));
                    continue;
                };
                let status = item["status"].as_u64().unwrap_or(0) as u16;
                let body = item.get("body").cloned().unwrap_or(Value::Null);
                let header = |k: &str| {
                    item["headers"].as_object().and_then(|h| {
                        h.iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(k))
                            .and_then(|(_, v)| v.as_str().map(str::to_string))
                    })
                };
                let request_id = header("request-id").or_else(|| rsp.request_id.clone());
                if (200..300).contains(&status) {
                    if r.method != Method::GET {
                        self.meter.wrote(1);
                    }
                    out[i] = Some(Ok(GraphResponse {
                        status,
                        body,
                        request_id,
                    }));
                    continue;
                }
                let t = tries.entry(i).or_default();
                if is_throttled(status) && t.0 + 1 < self.retry.throttle_attempts {
                    t.0 += 1;
                    let ra = retry_after(header("retry-after").as_deref());
                    let d = self.retry.wait(t.0, ra);
                    longest = longest.max(d);
                    if ra.is_none() {
                        own = own.max(d);
                    }
                    retry_now.push(i);
                    continue;
                }
                if r.replication
                    && is_replication_error(status, &body)
                    && t.1 + 1 < self.retry.replication_attempts
                {
                    t.1 += 1;
                    let d = self.retry.wait(t.1, None);
                    longest = longest.max(d);
                    own = own.max(d);
                    retry_now.push(i);
                    continue;
                }
                out[i] = Some(Err(api_error(
                    &r.method,
                    &r.path,
                    status,
                    &body,
                    request_id,
                    t.0 + t.1,
                )));
            }
            if !retry_now.is_empty() && waited + own > self.retry.budget {
                for &i in &retry_now {
                    out[i] = Some(Err(GraphError::Api {
                        method: reqs[i].method.clone(),
                        path: reqs[i].path.clone(),
                        status: 503,
                        code: "retriesExhausted".into(),
                        message: "still throttled or not yet replicated after the retry budget"
                            .into(),
                        request_id: rsp.request_id.clone(),
                        retried: tries.get(&i).map(|t| t.0 + t.1).unwrap_or(0),
                    }));
                }
                retry_now.clear();
            }
            if !retry_now.is_empty() {
                waited += own;
                tokio::time::sleep(longest).await;
                let any_throttled = retry_now.iter().any(|i| tries[i].0 > 0);
                attempt = if any_throttled {
                    Attempt::Throttled
                } else {
                    Attempt::Replication
                };
            }
            pending = retry_now;
        }
        Ok(())
    }

    /// The `$batch` POST itself, counted as `attempt` (a retry of items is not a new request).
    async fn send_batch_envelope(
        &self,
        req: &GraphRequest,
        attempt: Attempt,
    ) -> Result<GraphResponse, GraphError> {
        if attempt == Attempt::First {
            return self.send_counted(req).await;
        }
        // Count the first try of this envelope as the retry it is.
        let token = self.token().await?;
        let _g = self.meter.start(attempt);
        let url = self.endpoints.graph_url("$batch");
        let rsp = self
            .http
            .post(url)
            .bearer_auth(&token)
            .json(req.body.as_ref().unwrap_or(&Value::Null))
            .send()
            .await
            .map_err(|e| GraphError::Transport {
                method: Method::POST,
                path: "$batch".into(),
                source: e,
            })?;
        let status = rsp.status().as_u16();
        let request_id = rsp
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_body(rsp, &Method::POST, "$batch").await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(GraphResponse {
                status,
                body,
                request_id,
            })
        } else {
            Err(api_error(
                &Method::POST,
                "$batch",
                status,
                &body,
                request_id,
                0,
            ))
        }
    }

    /// `send` for the batch envelope: a POST that only reads does not count as a write.
    async fn send_counted(&self, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
        let before = self.meter.stats().writes;
        let r = self.send(req).await;
        // The envelope is not a write; its items are counted one by one.
        if self.meter.stats().writes > before {
            self.meter.unwrite(1);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        assert!(p.wait(1, None) <= Duration::from_secs(1));
        assert!(p.wait(1, None) >= Duration::from_millis(500));
        assert!(p.wait(10, None) <= Duration::from_secs(30));
        assert_eq!(
            p.wait(3, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("soon")), None);
        let fast = RetryPolicy::default().scaled(0.001);
        assert!(fast.wait(5, None) <= Duration::from_millis(30));
    }

    #[test]
    fn graph_errors_keep_code_message_and_request_id() {
        let body = json!({"error":{"code":"Request_BadRequest","message":"Another object with the same value for property identifierUris already exists.\nmore","innerError":{"request-id":"abc-123"}}});
        let e = api_error(&Method::POST, "applications?x=1", 400, &body, None, 0);
        let s = e.to_string();
        assert!(s.contains("Request_BadRequest"), "{s}");
        assert!(s.contains("already exists."), "{s}");
        assert!(s.contains("request-id abc-123"), "{s}");
        assert!(!s.contains("more"), "{s}");
        assert!(!s.contains("x=1"), "{s}");
    }

    #[test]
    fn replication_errors_are_recognised() {
        assert!(is_replication_error(404, &Value::Null));
        let sp = json!({"error":{"code":"Request_BadRequest","message":"The appId 'x' of the service principal does not reference a valid application object."}});
        assert!(is_replication_error(400, &sp));
        let other = json!({"error":{"code":"Request_BadRequest","message":"Invalid value"}});
        assert!(!is_replication_error(400, &other));
    }
}
