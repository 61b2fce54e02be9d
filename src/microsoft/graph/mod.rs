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
//! - GDAP reads in the MSP's own tenant (`gdap`): relationships, access assignments, groups.
//! - Every request is counted ([`meter::RequestMeter`]) so the request budget is measured.
//! - Errors carry Graph's code, message and request-id. Nothing here prints or logs a body.

pub mod directory;
pub mod gate;
pub mod gdap;
pub mod meter;
pub mod model;
pub mod partner_app;

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cloud::Endpoints;
use meter::{Attempt, RequestMeter};

/// How hard to try before giving up: time budgets, not attempt counts, because Microsoft's
/// throttling windows and replication delays are measured in minutes.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First backoff; doubles each time, with jitter.
    pub base: Duration,
    /// Longest single wait of our own (a server's `Retry-After` may ask for longer).
    pub cap: Duration,
    /// Most total waiting per request while Graph throttles or is busy (429, 503, 504,
    /// `Directory_ConcurrencyViolation`), `Retry-After` included.
    pub throttle_budget: Duration,
    /// Most total waiting per request while a new app, principal or grant replicates.
    pub replication_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            throttle_budget: Duration::from_secs(5 * 60),
            replication_budget: Duration::from_secs(10 * 60),
        }
    }
}

impl RetryPolicy {
    /// Every wait and budget multiplied by `f` (tests run the same logic in milliseconds).
    pub fn scaled(mut self, f: f64) -> Self {
        self.base = self.base.mul_f64(f);
        self.cap = self.cap.mul_f64(f);
        self.throttle_budget = self.throttle_budget.mul_f64(f);
        self.replication_budget = self.replication_budget.mul_f64(f);
        self
    }

    /// The wait before retry number `n` (1-based): `Retry-After` when given, else backoff.
    pub fn wait(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d;
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

/// Why the client is waiting, for whoever shows progress (a client never prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Microsoft Graph throttled or was busy.
    Throttled,
    /// A new object is not visible yet: "the new app", "the new service principal", ….
    Replication(&'static str),
    /// Another client sharing this one's [`gate::ThrottleGate`] was told to wait.
    Shared,
}

/// One wait, with how much of its budget is spent.
#[derive(Debug, Clone)]
pub struct WaitNote {
    pub reason: WaitReason,
    pub waited: Duration,
    pub budget: Duration,
    pub next_in: Duration,
}

impl WaitNote {
    /// "Microsoft has not replicated the new app yet: 2 min of 10 min".
    pub fn sentence(&self) -> String {
        match &self.reason {
            WaitReason::Throttled => format!(
                "Microsoft Graph is throttling this tenant: waited {} of {}",
                human(self.waited),
                human(self.budget)
            ),
            WaitReason::Replication(what) => format!(
                "Microsoft has not replicated {what} yet: {} of {}",
                human(self.waited),
                human(self.budget)
            ),
            WaitReason::Shared => {
                "Microsoft Graph asked this run to wait (Retry-After, answered to another customer)"
                    .to_string()
            }
        }
    }
}

/// Whole minutes from a minute on, else seconds (a budget of 10 min reads "10 min").
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{} s", d.as_secs_f64().round() as u64)
    }
}

/// Told about every wait (the wizard's progress display implements it).
pub trait WaitObserver: Send + Sync {
    fn waiting(&self, note: &WaitNote);
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
    /// What replicates, in words ("the new app").
    pub subject: &'static str,
    /// Safe to send again after a 503/504, a concurrency violation or a dropped connection
    /// (reads, PATCH, DELETE, and writes whose repeat is recognised, such as a grant that
    /// answers "already exists"). Creates are not: their callers look before retrying.
    pub repeatable: bool,
}

impl GraphRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        GraphRequest {
            path: path.into().trim_start_matches('/').to_string(),
            repeatable: method != Method::POST,
            method,
            body: None,
            replication: false,
            subject: "the new app",
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
    /// Tolerates replication of `subject` ("the new service principal").
    pub fn replicating(mut self, subject: &'static str) -> Self {
        self.replication = true;
        self.subject = subject;
        self
    }
    /// May be sent again when Graph was busy or the connection dropped (see `repeatable`).
    pub fn repeatable(mut self) -> Self {
        self.repeatable = true;
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
    /// Throttled or busy for the whole budget.
    #[error("Microsoft Graph kept throttling {method} {path}: waited {} of the {} hal-onboard waits per request (last answer HTTP {status} {code})", human(*.waited), human(*.budget))]
    Busy {
        method: Method,
        path: String,
        status: u16,
        code: String,
        waited: Duration,
        budget: Duration,
    },
    /// A new object still not visible when the replication budget was spent.
    #[error("Microsoft has not replicated {subject} after {} ({method} {path} still answers HTTP {status} {code})", human(*.waited))]
    NotReplicated {
        subject: &'static str,
        method: Method,
        path: String,
        status: u16,
        code: String,
        waited: Duration,
    },
}

impl GraphError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. }
            | GraphError::Busy { status, .. }
            | GraphError::NotReplicated { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. }
            | GraphError::Busy { code, .. }
            | GraphError::NotReplicated { code, .. } => Some(code),
            _ => None,
        }
    }
    /// A write that may have been applied although no success came back: the connection
    /// dropped, or Graph answered 5xx or a concurrency violation. A create is looked for
    /// before it is sent again.
    pub fn may_have_landed(&self) -> bool {
        match self {
            GraphError::Transport { .. } => true,
            GraphError::Api { status, code, .. } => {
                matches!(*status, 500 | 502 | 503 | 504) || is_concurrency_violation(code)
            }
            GraphError::Busy { status, code, .. } => {
                *status != 429 || is_concurrency_violation(code)
            }
            _ => false,
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
    /// The partner sign-in's refusal in a customer, when that is why there is no token.
    pub fn partner(&self) -> Option<&crate::partner::signin::PartnerError> {
        match self {
            GraphError::Token(e) => crate::partner::signin::partner_error(e),
            _ => None,
        }
    }
    /// What the technician can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            GraphError::Token(_) => match self.partner() {
                Some(p) => p.hint(),
                None => self.sign_in().and_then(|e| e.hint()),
            },
            GraphError::Api { status: 429 | 503 | 504, .. } | GraphError::Busy { .. } => Some(
                "Microsoft Graph is busy for this tenant; run the same command again in a few minutes (it resumes where it stopped).".into(),
            ),
            GraphError::NotReplicated { .. } => Some(
                "Microsoft usually replicates a new app within minutes, sometimes more. Run the same command again in 10 minutes: it resumes where it stopped and makes nothing twice.".into(),
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

/// `Directory_ConcurrencyViolation`: "Error due to concurrent requests being made to the
/// tenant. Please wait briefly and retry." (409, or 503 on addPassword).
pub fn is_concurrency_violation(code: &str) -> bool {
    code.eq_ignore_ascii_case("Directory_ConcurrencyViolation")
}

/// Busy rather than refused: 429 (always worth waiting out: Graph refused before doing
/// anything), 503, 504, and a concurrency violation (those only for a repeatable request).
fn is_busy(status: u16, body: &Value) -> Option<bool> {
    let code = body["error"]["code"].as_str().unwrap_or_default();
    match status {
        429 => Some(true),
        503 | 504 => Some(false),
        409 if is_concurrency_violation(code) => Some(false),
        _ if is_concurrency_violation(code) => Some(false),
        _ => None,
    }
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
    /// Told about each wait; shared by clones.
    observer: Arc<std::sync::RwLock<Option<Arc<dyn WaitObserver>>>>,
    /// A `Retry-After` shared with other clients (a partner batch's customers).
    gate: Option<Arc<gate::ThrottleGate>>,
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
            observer: Default::default(),
            gate: None,
        }
    }

    /// Shares `Retry-After` with every other client holding `gate`: a 429 answered to one
    /// delays the next request of all of them.
    pub fn with_throttle_gate(mut self, gate: Arc<gate::ThrottleGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Waits while another client's `Retry-After` runs (said to the observer).
    async fn pass_gate(&self) {
        if let Some(g) = &self.gate {
            let left = g.remaining();
            if !left.is_zero() {
                self.note(WaitReason::Shared, Duration::ZERO, left, left);
            }
            g.pass().await;
        }
    }

    /// A throttled answer's `Retry-After`, for every client sharing the gate.
    fn hold_gate(&self, status: u16, retry_after: Option<Duration>) {
        if let (Some(g), 429, Some(d)) = (&self.gate, status, retry_after) {
            g.hold(d);
        }
    }

    /// Who is told about throttling and replication waits (the progress display).
    pub fn set_wait_observer(&self, o: Arc<dyn WaitObserver>) {
        *self.observer.write().unwrap_or_else(|e| e.into_inner()) = Some(o);
    }

    fn note(&self, reason: WaitReason, waited: Duration, budget: Duration, next_in: Duration) {
        let o = self
            .observer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(o) = o {
            o.waiting(&WaitNote {
                reason,
                waited,
                budget,
                next_in,
            });
        }
    }

    /// One more wait for a new object to replicate, within the replication budget: `Ok` after
    /// sleeping, `Err(())` when the budget would be exceeded. `n` counts the waits so far.
    pub async fn replication_wait(
        &self,
        subject: &'static str,
        n: &mut u32,
        waited: &mut Duration,
    ) -> Result<(), ()> {
        *n += 1;
        let d = self.retry.wait(*n, None);
        if *waited + d > self.retry.replication_budget {
            return Err(());
        }
        self.note(
            WaitReason::Replication(subject),
            *waited,
            self.retry.replication_budget,
            d,
        );
        *waited += d;
        tokio::time::sleep(d).await;
        Ok(())
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
    pub async fn token(&self) -> Result<crate::secrets::SecretText, GraphError> {
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        self.credential
            .get_token(&scopes, None)
            .await
            .map(|t| crate::secrets::SecretText::new(t.token.secret()))
            .map_err(GraphError::Token)
    }

    /// Sends one request with the retries described above.
    pub async fn send(&self, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
        self.send_as(req, Attempt::First).await
    }

    /// `send`, its first try counted as `first` (a `$batch` of retried items is a retry).
    async fn send_as(
        &self,
        req: &GraphRequest,
        first: Attempt,
    ) -> Result<GraphResponse, GraphError> {
        let url = self.endpoints.graph_url(&req.wire_path());
        let mut attempt = first;
        let (mut busy_n, mut repl_n, mut net_n) = (0u32, 0u32, 0u32);
        let (mut busy_waited, mut repl_waited) = (Duration::ZERO, Duration::ZERO);
        loop {
            self.pass_gate().await;
            let token = self.token().await?;
            let guard = self.meter.start(attempt);
            tracing::debug!(method = %req.method, path = %req.path, "graph request");
            let mut rb = self
                .http
                .request(req.method.clone(), url.clone())
                .bearer_auth(token.expose());
            if let Some(b) = &req.body {
                rb = rb.json(b);
            }
            let sent = rb.send().await;
            let rsp = match sent {
                Ok(r) => r,
                Err(e) => {
                    drop(guard);
                    // Only what is safe to repeat is sent again after a network error: a
                    // create may have landed, and its caller looks for it first.
                    if req.repeatable && net_n < 3 {
                        net_n += 1;
                        attempt = Attempt::Other;
                        tokio::time::sleep(self.retry.wait(net_n, None)).await;
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
            let code = || {
                body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string()
            };
            self.hold_gate(status, ra);
            if let Some(always) = is_busy(status, &body)
                && (always || req.repeatable)
            {
                busy_n += 1;
                let d = self.retry.wait(busy_n, ra);
                if busy_waited + d > self.retry.throttle_budget {
                    return Err(GraphError::Busy {
                        method: req.method.clone(),
                        path: short_path(&req.path),
                        status,
                        code: code(),
                        waited: busy_waited,
                        budget: self.retry.throttle_budget,
                    });
                }
                self.note(
                    WaitReason::Throttled,
                    busy_waited,
                    self.retry.throttle_budget,
                    d,
                );
                busy_waited += d;
                attempt = Attempt::Throttled;
                tokio::time::sleep(d).await;
                continue;
            }
            if req.replication && is_replication_error(status, &body) {
                if self
                    .replication_wait(req.subject, &mut repl_n, &mut repl_waited)
                    .await
                    .is_err()
                {
                    return Err(GraphError::NotReplicated {
                        subject: req.subject,
                        method: req.method.clone(),
                        path: short_path(&req.path),
                        status,
                        code: code(),
                        waited: repl_waited,
                    });
                }
                attempt = Attempt::Replication;
                continue;
            }
            return Err(api_error(
                &req.method,
                &req.path,
                status,
                &body,
                request_id,
                busy_n + repl_n,
            ));
        }
    }

    pub async fn get(&self, path: &str) -> Result<GraphResponse, GraphError> {
        self.send(&GraphRequest::get(path)).await
    }

    /// Sends `reqs` in `$batch`es of at most 20, and returns each one's outcome, in order.
    /// A throttled item (and a busy one, when repeatable), and an item marked
    /// `tolerate_replication` that hit replication delay, is retried by itself (in a smaller
    /// batch) within the policy's budgets; the envelope itself is waited out like any request.
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
        #[derive(Default)]
        struct Tries {
            busy: u32,
            busy_waited: Duration,
            repl: u32,
            repl_waited: Duration,
        }
        let mut tries: std::collections::HashMap<usize, Tries> = Default::default();
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
            // The envelope may be sent again when every item in it may.
            outer.repeatable = pending.iter().all(|&i| reqs[i].repeatable);
            let rsp = self.send_counted(&outer, attempt).await?;
            let responses = rsp.body["responses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut retry_now: Vec<usize> = Vec::new();
            let mut longest = Duration::ZERO;
            let mut note: Option<(WaitReason, Duration, Duration)> = None;
            let mut any_busy = false;
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
                let code = || {
                    body["error"]["code"]
                        .as_str()
                        .unwrap_or("unknown")
                        .to_string()
                };
                let t = tries.entry(i).or_default();
                if let Some(always) = is_busy(status, &body)
                    && (always || r.repeatable)
                {
                    t.busy += 1;
                    // Each item's own Retry-After (Graph puts one on every throttled item).
                    let ra = retry_after(header("retry-after").as_deref());
                    self.hold_gate(status, ra);
                    let d = self.retry.wait(t.busy, ra);
                    if t.busy_waited + d > self.retry.throttle_budget {
                        out[i] = Some(Err(GraphError::Busy {
                            method: r.method.clone(),
                            path: short_path(&r.path),
                            status,
                            code: code(),
                            waited: t.busy_waited,
                            budget: self.retry.throttle_budget,
                        }));
                        continue;
                    }
                    note = Some((
                        WaitReason::Throttled,
                        t.busy_waited,
                        self.retry.throttle_budget,
                    ));
                    t.busy_waited += d;
                    longest = longest.max(d);
                    any_busy = true;
                    retry_now.push(i);
                    continue;
                }
                if r.replication && is_replication_error(status, &body) {
                    t.repl += 1;
                    let d = self.retry.wait(t.repl, None);
                    if t.repl_waited + d > self.retry.replication_budget {
                        out[i] = Some(Err(GraphError::NotReplicated {
                            subject: r.subject,
                            method: r.method.clone(),
                            path: short_path(&r.path),
                            status,
                            code: code(),
                            waited: t.repl_waited,
                        }));
                        continue;
                    }
                    if note.is_none() {
                        note = Some((
                            WaitReason::Replication(r.subject),
                            t.repl_waited,
                            self.retry.replication_budget,
                        ));
                    }
                    t.repl_waited += d;
                    longest = longest.max(d);
                    retry_now.push(i);
                    continue;
                }
                out[i] = Some(Err(api_error(
                    &r.method,
                    &r.path,
                    status,
                    &body,
                    request_id,
                    t.busy + t.repl,
                )));
            }
            if let Some((reason, waited, budget)) = note {
                self.note(reason, waited, budget, longest);
            }
            if !retry_now.is_empty() {
                tokio::time::sleep(longest).await;
                attempt = if any_busy {
                    Attempt::Throttled
                } else {
                    Attempt::Replication
                };
            }
            pending = retry_now;
        }
        Ok(())
    }

    /// `send` for the batch envelope, counted as `attempt`: a POST that only carries items is
    /// not a write (its items are counted one by one).
    async fn send_counted(
        &self,
        req: &GraphRequest,
        attempt: Attempt,
    ) -> Result<GraphResponse, GraphError> {
        let before = self.meter.stats().writes;
        let r = self.send_as(req, attempt).await;
        if self.meter.stats().writes > before {
            self.meter.unwrite(1);
        }
        r
    }
}

/// A path without its query, for messages.
fn short_path(path: &str) -> String {
    path.split('?').next().unwrap_or(path).to_string()
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
        assert_eq!(p.throttle_budget, Duration::from_secs(300));
        assert_eq!(p.replication_budget, Duration::from_secs(600));
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
    fn busy_and_maybe_landed_are_told_apart() {
        let cv = json!({"error":{"code":"Directory_ConcurrencyViolation","message":"Error due to concurrent requests being made to the tenant. Please wait briefly and retry."}});
        // 429: always waited out; 503/504 and a concurrency violation only when repeatable.
        assert_eq!(is_busy(429, &Value::Null), Some(true));
        assert_eq!(is_busy(503, &Value::Null), Some(false));
        assert_eq!(is_busy(409, &cv), Some(false));
        assert_eq!(
            is_busy(
                409,
                &json!({"error":{"code":"Request_MultipleObjectsWithSameKeyValue"}})
            ),
            None
        );
        assert_eq!(is_busy(400, &Value::Null), None);
        let api =
            |status, body: &Value| api_error(&Method::POST, "applications", status, body, None, 0);
        assert!(api(503, &cv).may_have_landed());
        assert!(api(409, &cv).may_have_landed());
        assert!(api(504, &Value::Null).may_have_landed());
        assert!(!api(400, &Value::Null).may_have_landed());
        let throttled = GraphError::Busy {
            method: Method::POST,
            path: "applications".into(),
            status: 429,
            code: "TooManyRequests".into(),
            waited: Duration::from_secs(300),
            budget: Duration::from_secs(300),
        };
        // Graph refuses a throttled request before doing anything.
        assert!(!throttled.may_have_landed());
        assert!(
            throttled.to_string().contains("waited 5 min of the 5 min"),
            "{throttled}"
        );
        let post = GraphRequest::post("applications", json!({}));
        assert!(!post.repeatable, "a create is never sent twice blindly");
        assert!(GraphRequest::patch("applications/x", json!({})).repeatable);
        assert!(
            GraphRequest::post("x/removePassword", json!({}))
                .repeatable()
                .repeatable
        );
    }

    #[test]
    fn waits_read_in_minutes_or_seconds() {
        let n = WaitNote {
            reason: WaitReason::Replication("the new app"),
            waited: Duration::from_secs(130),
            budget: Duration::from_secs(600),
            next_in: Duration::from_secs(30),
        };
        assert_eq!(
            n.sentence(),
            "Microsoft has not replicated the new app yet: 2 min of 10 min"
        );
        assert_eq!(human(Duration::from_millis(5400)), "5 s");
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
