//! The sandbox's MSP portal: the receiving end of docs/portal-api.md.
//!
//! It checks what a real portal would (the bearer token, every field's shape, idempotency),
//! keeps what it received so tests can prove the portal got exactly the credentials that work,
//! and can be told to fail for a while (5xx) or to reject the token.

// Handlers return early with a ready `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::PortalScenario;
use crate::contract::{StatusUpdate, Submission};

/// The token the sandbox portal accepts when the scenario names none.
pub const DEFAULT_TOKEN: &str = "sandbox-portal-token";

/// What the portal holds for one tenant.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Received {
    pub submission: Submission,
    pub idempotency_key: String,
    /// How many times it was written (POST or PUT that changed it).
    pub writes: u32,
    /// The last status update (PATCH), if any came after the credentials.
    pub status: Option<StatusUpdate>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
}

#[derive(Debug, Default)]
struct Inner {
    config: PortalScenario,
    failures_left: u32,
    write_failures_left: u32,
    html_writes: bool,
    tenants: HashMap<String, Received>,
    requests: u32,
}

#[derive(Debug, Clone)]
pub struct PortalSim {
    inner: Arc<Mutex<Inner>>,
}

impl PortalSim {
    pub fn new(config: &PortalScenario) -> PortalSim {
        let mut config = config.clone();
        if config.token.is_empty() {
            config.token = DEFAULT_TOKEN.to_string();
        }
        PortalSim {
            inner: Arc::new(Mutex::new(Inner {
                failures_left: config.fail_first,
                config,
                ..Default::default()
            })),
        }
    }

    /// What the portal holds for a tenant (tests compare it with what works).
    pub fn received(&self, tenant_id: &str) -> Option<Received> {
        self.inner.lock().unwrap().tenants.get(tenant_id).cloned()
    }

    /// Everything the portal holds, to keep across runs.
    pub fn saved(&self) -> HashMap<String, Received> {
        self.inner.lock().unwrap().tenants.clone()
    }

    /// Puts back what [`PortalSim::saved`] returned.
    pub fn restore(&self, tenants: HashMap<String, Received>) {
        self.inner.lock().unwrap().tenants = tenants;
    }

    pub fn request_count(&self) -> u32 {
        self.inner.lock().unwrap().requests
    }

    /// Makes the next `n` requests fail with 503.
    pub fn fail_next(&self, n: u32) {
        self.inner.lock().unwrap().failures_left = n;
    }

    /// Makes the next `n` writes (POST, PUT, PATCH) fail with 503 while reads still answer: a
    /// portal in read-only maintenance, or one that goes down between the read and the write.
    pub fn fail_next_writes(&self, n: u32) {
        self.inner.lock().unwrap().write_failures_left = n;
    }

    /// Answers every write with `200 OK` and an HTML page while reads still answer as a
    /// portal (a proxy that sends POST/PUT somewhere else), or not.
    pub fn set_html_writes(&self, on: bool) {
        self.inner.lock().unwrap().html_writes = on;
    }

    pub fn set_token(&self, token: &str) {
        self.inner.lock().unwrap().config.token = token.to_string();
    }

    pub fn token(&self) -> String {
        self.inner.lock().unwrap().config.token.clone()
    }

    /// Answers every request with `200 OK` and an HTML page (a captive portal), or not.
    pub fn set_html_answers(&self, on: bool) {
        self.inner.lock().unwrap().config.html_answers = on;
    }

    /// Seeds what the portal holds for a tenant (another machine onboarded it).
    pub fn hold(&self, submission: Submission) {
        let r = Received {
            idempotency_key: format!(
                "hal-onboard-{}-{}",
                submission.tenant_id, submission.secret_key_id
            ),
            submission: submission.clone(),
            writes: 1,
            status: None,
            updated_at: time::OffsetDateTime::now_utc(),
        };
        self.inner
            .lock()
            .unwrap()
            .tenants
            .insert(submission.tenant_id.clone(), r);
    }
}

pub fn router<S: Clone + Send + Sync + 'static>(sim: PortalSim) -> Router<S> {
    let slow = sim.clone();
    Router::new()
        .route("/api/v1/m365/tenants", get(list).post(create))
        .route(
            "/api/v1/m365/tenants/{tenant_id}",
            get(read).put(replace).patch(update_status),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let latency = slow.inner.lock().unwrap().config.latency_ms;
                async move {
                    if latency > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
                    }
                    next.run(req).await
                }
            },
        ))
        .with_state(sim)
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// A captive portal's answer: 200 with an HTML page.
fn html_page() -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>Welcome to Guest Wi-Fi</title></head><body><p>Please accept the terms to continue.</p></body></html>",
    )
        .into_response()
}

/// Counts the request, applies the outage knob and checks the token.
fn gate(sim: &PortalSim, headers: &HeaderMap) -> Result<(), Response> {
    let mut inner = sim.inner.lock().unwrap();
    inner.requests += 1;
    if inner.config.html_answers {
        return Err(html_page());
    }
    if inner.failures_left > 0 {
        inner.failures_left -= 1;
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The portal is under maintenance. Try again shortly.",
        ));
    }
    let expected = format!("Bearer {}", inner.config.token);
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == expected => Ok(()),
        Some(_) => Err(problem(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The API token is not valid.",
        )),
        None => Err(problem(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "An API token is required.",
        )),
    }
}

/// The write-only outage knob ([`PortalSim::fail_next_writes`]), after [`gate`].
fn write_gate(sim: &PortalSim) -> Result<(), Response> {
    let mut inner = sim.inner.lock().unwrap();
    if inner.html_writes {
        return Err(html_page());
    }
    if inner.write_failures_left > 0 {
        inner.write_failures_left -= 1;
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The portal is in read-only maintenance. Try again shortly.",
        ));
    }
    Ok(())
}

/// The checks a real portal makes before it stores credentials.
fn validate(s: &Submission) -> Result<(), String> {
    let guid = |name: &str, v: &str| {
        uuid::Uuid::parse_str(v)
            .map(|_| ())
            .map_err(|_| format!("{name} must be a GUID"))
    };
    guid("tenantId", &s.tenant_id)?;
    guid("clientId", &s.client_id)?;
    guid("secretKeyId", &s.secret_key_id)?;
    if s.client_secret.len() < 16 {
        return Err("clientSecret is missing or too short".into());
    }
    if !s.tenant_domain.contains('.') {
        return Err("tenantDomain must be a domain name".into());
    }
    if !crate::contract::CLOUDS.contains(&s.cloud.as_str()) {
        return Err(format!("cloud {:?} is not supported", s.cloud));
    }
    if !["enabled", "waiting"].contains(&s.ual_status.as_str()) {
        return Err("ualStatus must be enabled or waiting".into());
    }
    if !["none", "P1", "P2"].contains(&s.entra_license.as_str()) {
        return Err("entraLicense must be none, P1 or P2".into());
    }
    if s.secret_expires_at <= time::OffsetDateTime::now_utc() {
        return Err("secretExpiresAt is in the past".into());
    }
    Ok(())
}

fn parse_body(body: &[u8]) -> Result<Submission, Response> {
    let s: Submission = serde_json::from_slice(body).map_err(|e| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            &format!("The request body is not a tenant registration: {e}"),
        )
    })?;
    validate(&s).map_err(|m| problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", &m))?;
    Ok(s)
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, Response> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            problem(
                StatusCode::BAD_REQUEST,
                "missing_idempotency_key",
                "Idempotency-Key header is required.",
            )
        })
}

fn summary(r: &Received) -> serde_json::Value {
    json!({
        "tenantId": r.submission.tenant_id,
        "tenantDomain": r.submission.tenant_domain,
        "clientId": r.submission.client_id,
        "secretKeyId": r.submission.secret_key_id,
        "status": "active",
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// `GET /api/v1/m365/tenants/{tenantId}`: what the portal holds, never the secret.
fn record(r: &Received) -> serde_json::Value {
    let (ual, licence) = match &r.status {
        Some(u) => (u.ual_status.clone(), u.entra_license.clone()),
        None => (
            r.submission.ual_status.clone(),
            r.submission.entra_license.clone(),
        ),
    };
    let mut v = json!({
        "tenantId": r.submission.tenant_id,
        "clientId": r.submission.client_id,
        "secretKeyId": r.submission.secret_key_id,
        "secretExpiresAt": rfc3339(r.submission.secret_expires_at),
        "ualStatus": ual,
        "entraLicense": licence,
        "cloud": r.submission.cloud,
        "updatedAt": rfc3339(r.updated_at),
    });
    if let Some(t) = r.status.as_ref().and_then(|u| u.ual_verified_at) {
        v["ualVerifiedAt"] = json!(rfc3339(t));
    }
    v
}

async fn read(
    State(sim): State<PortalSim>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r;
    }
    let inner = sim.inner.lock().unwrap();
    match inner.tenants.get(&tenant_id) {
        Some(r) => Json(record(r)).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            "This tenant is not registered.",
        ),
    }
}

async fn update_status(
    State(sim): State<PortalSim>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r;
    }
    if let Err(r) = write_gate(&sim) {
        return r;
    }
    let u: StatusUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                &format!("The request body is not a status update: {e}"),
            );
        }
    };
    if !u.tenant_id.eq_ignore_ascii_case(&tenant_id) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tenant_mismatch",
            "tenantId in the body does not match the URL.",
        );
    }
    if !["enabled", "waiting"].contains(&u.ual_status.as_str()) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "ualStatus must be enabled or waiting",
        );
    }
    if !["none", "P1", "P2"].contains(&u.entra_license.as_str()) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "entraLicense must be none, P1 or P2",
        );
    }
    let mut inner = sim.inner.lock().unwrap();
    let Some(r) = inner.tenants.get_mut(&tenant_id) else {
        return problem(
            StatusCode::NOT_FOUND,
            "tenant_not_found",
            "This tenant is not registered.",
        );
    };
    r.status = Some(u);
    r.updated_at = time::OffsetDateTime::now_utc();
    Json(record(r)).into_response()
}

async fn list(State(sim): State<PortalSim>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r;
    }
    let inner = sim.inner.lock().unwrap();
    let items: Vec<_> = inner.tenants.values().map(summary).collect();
    Json(json!({ "items": items })).into_response()
}

async fn create(
    State(sim): State<PortalSim>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r;
    }
    if let Err(r) = write_gate(&sim) {
        return r;
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let s = match parse_body(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut inner = sim.inner.lock().unwrap();
    if let Some(existing) = inner.tenants.get(&s.tenant_id) {
        // A replay of the same request gets the same answer; anything else is a conflict.
        if existing.idempotency_key == key && existing.submission == s {
            return (StatusCode::CREATED, Json(summary(existing))).into_response();
        }
        return problem(
            StatusCode::CONFLICT,
            "tenant_exists",
            "This tenant is already registered; use PUT to replace its credentials.",
        );
    }
    let r = Received {
        submission: s.clone(),
        idempotency_key: key,
        writes: 1,
        status: None,
        updated_at: time::OffsetDateTime::now_utc(),
    };
    let out = summary(&r);
    inner.tenants.insert(s.tenant_id.clone(), r);
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn replace(
    State(sim): State<PortalSim>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = gate(&sim, &headers) {
        return r;
    }
    if let Err(r) = write_gate(&sim) {
        return r;
    }
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let s = match parse_body(&body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !s.tenant_id.eq_ignore_ascii_case(&tenant_id) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tenant_mismatch",
            "tenantId in the body does not match the URL.",
        );
    }
    let mut inner = sim.inner.lock().unwrap();
    let writes = inner.tenants.get(&tenant_id).map_or(0, |r| r.writes);
    let r = Received {
        submission: s,
        idempotency_key: key,
        writes: writes + 1,
        status: None,
        updated_at: time::OffsetDateTime::now_utc(),
    };
    let out = summary(&r);
    inner.tenants.insert(tenant_id, r);
    (StatusCode::OK, Json(out)).into_response()
}
