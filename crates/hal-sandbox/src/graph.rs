//! Microsoft Graph v1.0 (`{graph}/v1.0/...`): the directory objects an onboarding wizard reads
//! and writes, JSON batching, throttling and replication delay, with Graph's error shape
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
//!
//! Every request goes through [`dispatch`], so a `$batch` sub-request behaves exactly like the
//! same request sent alone (and counts the same towards throttling).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Ax;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::Rng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::catalog;
use super::odata::{Clause, FilterError, parse_filter};
use super::state::{
    AppRoleAssignment, Application, PasswordCredential, RequiredResourceAccess, SecretState,
    ServicePrincipal, State, TenantState, TokenProblem, iso, o365_management_sp,
};
use super::tagged;
use super::token::Claims;

mod grants;

const CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#";
/// The tenant default app management policy's id in Graph.
const DEFAULT_APP_POLICY_ID: &str = "00000000-0000-0000-0000-000000000000";

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/v1.0/{*rest}", any(handle))
        .route("/oidc/userinfo", get(userinfo).post(userinfo))
        .fallback(wrong_version)
}

/// `{graph}/oidc/userinfo`, the OpenID Connect UserInfo endpoint Microsoft serves from Graph
/// (the configuration document's `userinfo_endpoint`): the signed-in user's OpenID claims.
async fn userinfo(Ax(state): Ax<Arc<State>>, headers: HeaderMap) -> Response {
    let caller = match authenticate(&state, &headers) {
        Ok(c) if c.delegated() => c,
        Ok(_) => {
            return finish(
                gerr(
                    401,
                    "InvalidAuthenticationToken",
                    "The UserInfo endpoint needs a token for a signed-in user.",
                ),
                None,
            )
            .into_http();
        }
        Err(e) => return finish(e, None).into_http(),
    };
    let inner = state.lock();
    let Some(t) = inner.tenant(caller.tenant) else {
        return finish(unauthorized("Access token validation failure."), None).into_http();
    };
    let user = &t.scenario.signed_in_user;
    let mut names = user.display_name.splitn(2, ' ');
    let (given, family) = (names.next().unwrap_or(""), names.next().unwrap_or(""));
    let body = json!({
        "sub": super::token::pairwise_sub(&caller.claims.oid, &caller.claims.appid),
        "name": user.display_name,
        "family_name": family,
        "given_name": given,
        "picture": state.url("graph").join("v1.0/me/photo/$value").expect("joins").as_str(),
        "email": caller.claims.upn.clone().unwrap_or_else(|| t.upn()),
    });
    tagged(axum::Json(body).into_response(), caller.tenant)
}

/// `/graph/beta/...` and anything else outside `v1.0`: the sandbox only speaks v1.0.
async fn wrong_version(uri: Uri) -> Response {
    let version = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    finish(
        gerr(
            400,
            "BadRequest",
            &format!("Invalid version: {version}. The sandbox serves Microsoft Graph v1.0 only."),
        ),
        None,
    )
    .into_http()
}

/// One Graph answer, before it becomes HTTP (or a `$batch` sub-response).
#[derive(Debug, Clone)]
pub struct GResp {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl GResp {
    fn ok(body: Value) -> GResp {
        GResp::with(200, body)
    }
    fn with(status: u16, body: Value) -> GResp {
        GResp {
            status,
            body: Some(body),
            headers: vec![],
        }
    }
    fn no_content() -> GResp {
        GResp {
            status: 204,
            body: None,
            headers: vec![],
        }
    }
}

/// Graph's error body; `innerError` ids are filled in when the answer is sent.
pub fn gerr(status: u16, code: &str, message: &str) -> GResp {
    GResp::with(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {}}}),
    )
}

fn not_found(id: &str) -> GResp {
    gerr(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn denied() -> GResp {
    gerr(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn unauthorized(message: &str) -> GResp {
    let mut r = gerr(401, "InvalidAuthenticationToken", message);
    r.headers.push((
        "WWW-Authenticate".into(),
        format!(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"{}\"",
            catalog::GRAPH_APP_ID
        ),
    ));
    r
}

/// Who is calling, from the bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Uuid,
    pub claims: Claims,
}

impl Caller {
    fn delegated(&self) -> bool {
        self.claims.scp.is_some()
    }
    fn has_role(&self, ids: &[&str]) -> bool {
        self.claims.wids.iter().any(|w| ids.contains(&w.as_str()))
    }
    /// Whether a delegated token's `scp` names one of `scopes`.
    fn has_scope(&self, scopes: &[&str]) -> bool {
        self.claims
            .scp
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .any(|s| scopes.iter().any(|x| x.eq_ignore_ascii_case(s)))
    }
    fn has_app_role(&self, values: &[&str]) -> bool {
        self.claims
            .roles
            .iter()
            .any(|r| values.contains(&r.as_str()))
    }
}

pub fn authenticate(state: &State, headers: &HeaderMap) -> Result<Caller, GResp> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.check_bearer(auth, catalog::GRAPH_APP_ID) {
        Ok((tenant, claims)) => Ok(Caller { tenant, claims }),
        Err(p) => Err(unauthorized(match p {
            TokenProblem::Missing => "Access token is empty.",
            TokenProblem::Malformed => "IDX14100: JWT is not well formed, there are no dots (.).",
            TokenProblem::BadSignature => "Access token validation failure.",
            TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
            TokenProblem::WrongAudience => "Access token validation failure. Invalid audience.",
            TokenProblem::UnknownTenant => "Access token validation failure. Invalid tenant.",
        })),
    }
}

/// `%27` → `'`, etc. (paths such as `applications(appId='...')` arrive encoded).
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    Ax(state): Ax<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = pct_decode(uri.path().strip_prefix("/v1.0").unwrap_or(uri.path()));
    let query = uri.query().unwrap_or("").to_string();
    let (resp, tenant) = match authenticate(&state, &headers) {
        Err(e) => (e, None),
        Ok(caller) => {
            let tenant = caller.tenant;
            let r = if path == "/$batch" && method == Method::POST {
                batch(&state, &caller, &body)
            } else {
                match parse_body(&method, &headers, &body) {
                    Ok(b) => dispatch(&state, &caller, &method, &path, &query, b),
                    Err(e) => e,
                }
            };
            (r, Some(tenant))
        }
    };
    let r = finish(resp, client_request_id.as_deref()).into_http();
    match tenant {
        Some(t) => tagged(r, t),
        None => r,
    }
}

fn parse_body(method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, GResp> {
    if body.is_empty() || *method == Method::GET || *method == Method::DELETE {
        return Ok(None);
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().contains("json") {
        return Err(gerr(
            415,
            "BadRequest",
            "A supported MIME type could not be found that matches the content type of the response. Send Content-Type: application/json.",
        ));
    }
    serde_json::from_slice(body).map(Some).map_err(|_| {
        gerr(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

/// Fills in `innerError` and the `request-id` header.
fn finish(mut r: GResp, client_request_id: Option<&str>) -> GResp {
    let request_id = Uuid::new_v4().to_string();
    let crid = client_request_id
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    if let Some(inner) = r
        .body
        .as_mut()
        .and_then(|b| b.get_mut("error"))
        .and_then(|e| e.get_mut("innerError"))
    {
        if !inner.is_object() {
            *inner = json!({});
        }
        inner["date"] = json!(iso(OffsetDateTime::now_utc()));
        inner["request-id"] = json!(request_id);
        inner["client-request-id"] = json!(crid);
    }
    r.headers.push(("request-id".into(), request_id));
    r.headers.push(("client-request-id".into(), crid));
    r
}

/// A body that fails before its first byte: the connection drops after the status line.
struct Dropped;

impl http_body::Body for Dropped {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other(
            "the sandbox dropped the connection (scripted fault)",
        ))))
    }
}

impl GResp {
    fn into_http(self) -> Response {
        if self.status == 0 {
            // A scripted dropped connection: headers go out, the body never comes.
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, "1024")
                .body(axum::body::Body::new(Dropped))
                .expect("a response");
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            Some(b) => (
                status,
                [(
                    header::CONTENT_TYPE,
                    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
                )],
                serde_json::to_vec(&b).expect("json"),
            )
                .into_response(),
            None => status.into_response(),
        };
        for (k, v) in self.headers {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

/// Graph's documented throttling answer, with `Retry-After` (seconds; 0: none).
fn throttled(retry_after: u64) -> GResp {
    let mut r = gerr(429, "TooManyRequests", "Please retry again later.");
    if let Some(b) = r.body.as_mut() {
        b["error"]["innerError"] =
            json!({"code": "429", "status": "429", "message": "Please retry after"});
    }
    if retry_after > 0 {
        r.headers
            .push(("Retry-After".into(), retry_after.to_string()));
    }
    r
}

fn batch(state: &State, caller: &Caller, body: &[u8]) -> GResp {
    {
        let mut inner = state.lock();
        if let Some(t) = inner.tenant_mut(caller.tenant) {
            t.batch_requests += 1;
            let every = t.scenario.throttle_batch_every as u64;
            if every > 0 && t.batch_requests % every == 0 {
                return throttled(t.scenario.throttle_retry_after);
            }
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return gerr(400, "BadRequest", "Invalid batch payload format.");
    };
    let Some(reqs) = v.get("requests").and_then(Value::as_array) else {
        return gerr(400, "BadRequest", "Invalid batch payload format.");
    };
    if reqs.len() > 20 {
        return gerr(
            400,
            "BadRequest",
            "Invalid batch payload. The maximum number of requests in a batch is 20.",
        );
    }
    let mut seen = std::collections::HashSet::new();
    for r in reqs {
        let id = r.get("id").and_then(Value::as_str).unwrap_or("");
        if id.is_empty()
            || r.get("method").and_then(Value::as_str).is_none()
            || r.get("url").and_then(Value::as_str).is_none()
        {
            return gerr(
                400,
                "BadRequest",
                "Invalid batch payload format. Every request needs 'id', 'method' and 'url'.",
            );
        }
        // Ids are case-insensitive and must be unique in the batch.
        if !seen.insert(id.to_lowercase()) {
            return gerr(
                400,
                "BadRequest",
                &format!("Batch request id '{id}' is used more than once."),
            );
        }
        if r.get("body").is_some() {
            let has_ct = r
                .get("headers")
                .and_then(Value::as_object)
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
            if !has_ct {
                return gerr(
                    400,
                    "BadRequest",
                    &format!(
                        "Write request id : {id} does not contain Content-Type header or body."
                    ),
                );
            }
        }
    }
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut out = vec![];
    for r in reqs {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        let method = r["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = r["url"].as_str().unwrap_or_default();
        let deps: Vec<String> = match r.get("dependsOn") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![],
        };
        let failed_dep = deps
            .iter()
            .any(|d| statuses.get(&d.to_lowercase()).is_none_or(|s| *s >= 400));
        let resp = if failed_dep {
            gerr(424, "BadRequest", "Failed dependency.")
        } else {
            let rel = url.trim_start_matches("/v1.0");
            let rel = if rel.starts_with('/') {
                rel.to_string()
            } else {
                format!("/{rel}")
            };
            let (p, q) = rel.split_once('?').unwrap_or((&rel, ""));
            let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            dispatch(state, caller, &m, &pct_decode(p), q, r.get("body").cloned())
        };
        let client_request_id = r
            .get("headers")
            .and_then(|h| h.get("client-request-id"))
            .and_then(Value::as_str);
        if resp.status == 0 {
            // The connection drops: nothing of the batch's answer arrives.
            return resp;
        }
        let resp = finish(resp, client_request_id);
        statuses.insert(id.to_lowercase(), resp.status);
        let mut headers = Map::new();
        for (k, v) in &resp.headers {
            headers.insert(k.clone(), Value::String(v.clone()));
        }
        if resp.body.is_some() {
            headers.insert(
                "Content-Type".into(),
                "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8".into(),
            );
        }
        let mut item = json!({"id": id, "status": resp.status, "headers": headers});
        if let Some(b) = resp.body {
            item["body"] = b;
        }
        out.push(item);
    }
    GResp::ok(json!({"responses": out}))
}

/// Where an object is addressed: by object id, or by the `appId` alternate key.
enum Key {
    Id(String),
    AppId(String),
}

fn parse_key(collection: &str, segment: &str) -> Option<Result<Key, GResp>> {
    if let Some(rest) = segment.strip_prefix(&format!("{collection}(")) {
        let inner = rest.strip_suffix(')')?;
        let Some(v) = inner.strip_prefix("appId=") else {
            return Some(Err(gerr(
                400,
                "Request_BadRequest",
                &format!("Unsupported alternate key in '{segment}'. Use appId='{{appId}}'."),
            )));
        };
        let v = v.trim_matches('\'').to_string();
        return Some(Ok(Key::AppId(v)));
    }
    None
}

fn dispatch(
    state: &State,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> GResp {
    let mut inner = state.lock();
    let Some(t) = inner.tenant_mut(caller.tenant) else {
        return unauthorized("Access token validation failure.");
    };
    t.graph_requests += 1;
    let every = t.scenario.throttle_every as u64;
    if every > 0 && t.graph_requests % every == 0 {
        return throttled(t.scenario.throttle_retry_after);
    }
    // A scripted fault: refused before anything happens, or carried out and its answer lost.
    let fault = t.scenario.faults.iter_mut().find(|f| {
        f.times > 0
            && f.method.eq_ignore_ascii_case(method.as_str())
            && path
                .trim_end_matches('/')
                .ends_with(f.path.trim_end_matches('/'))
    });
    if let Some(f) = fault {
        f.times -= 1;
        let (status, code, applied) = (f.status, f.code.clone(), f.applied);
        let lost = fault_answer(status, &code);
        if !applied {
            return lost;
        }
        drop(inner);
        let done = dispatch_inner(state, caller, method, path, query, body);
        if done.status >= 300 {
            return done;
        }
        return lost;
    }
    drop(inner);
    dispatch_inner(state, caller, method, path, query, body)
}

/// Graph's error body for a scripted fault's code (Microsoft's wording where it has one).
fn fault_answer(status: u16, code: &str) -> GResp {
    if status == 0 {
        return GResp {
            status: 0,
            body: None,
            headers: vec![],
        };
    }
    let message = match code {
        "Directory_ConcurrencyViolation" => {
            "Error due to concurrent requests being made to the tenant. Please wait briefly and retry."
        }
        "serviceNotAvailable" => "The service is temporarily unavailable. Please retry later.",
        "UnknownError" => "",
        _ => "The request failed.",
    };
    gerr(status, code, message)
}

fn dispatch_inner(
    state: &State,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: &str,
    body: Option<Value>,
) -> GResp {
    let mut inner = state.lock();
    if let Some(r) = super::gdap::graph(
        &inner,
        caller,
        method.as_str(),
        path,
        query,
        body.as_ref(),
        &state.url("graph"),
        state.signer.clock().now_unix(),
    ) {
        return r;
    }
    let Some(t) = inner.tenant_mut(caller.tenant) else {
        return unauthorized("Access token validation failure.");
    };
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let ctx = Ctx {
        caller,
        q: &q,
        query,
        path,
        graph_base: state.url("graph"),
    };
    let get = *method == Method::GET;
    let first = segs.first().copied().unwrap_or("");
    // Reads with an app-only token need some directory read permission.
    if get
        && !caller.delegated()
        && !caller.has_app_role(&[
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Organization.Read.All",
            "Policy.Read.All",
            "User.Read.All",
            "AuditLog.Read.All",
        ])
        && first != "me"
    {
        return denied();
    }
    // Delegated reads of applications and service principals need a directory read scope.
    if get
        && caller.delegated()
        && (first.starts_with("applications") || first.starts_with("servicePrincipals"))
        && !caller.has_scope(&[
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ])
    {
        return denied();
    }
    match (segs.as_slice(), method.clone()) {
        (["organization"], Method::GET) => ctx.list("organization", vec![organization(t)]),
        (["organization", id], Method::GET) => {
            if id.eq_ignore_ascii_case(&t.scenario.id.to_string()) {
                ctx.one_selected("organization/$entity", organization(t))
            } else {
                not_found(id)
            }
        }
        (["policies", "defaultAppManagementPolicy"], Method::GET) => {
            if !caller.delegated() && !caller.has_app_role(&["Policy.Read.All"]) {
                denied()
            } else {
                ctx.one_selected("policies/defaultAppManagementPolicy/$entity", app_policy(t))
            }
        }
        (["me"], Method::GET) => {
            me_guard(caller).unwrap_or_else(|| ctx.one("users/$entity", me(t, caller)))
        }
        (["me", "memberOf" | "transitiveMemberOf"], Method::GET)
        | (
            [
                "me",
                "memberOf" | "transitiveMemberOf",
                "microsoft.graph.directoryRole",
            ],
            Method::GET,
        ) => me_guard(caller).unwrap_or_else(|| ctx.list("directoryObjects", member_of(t, caller))),
        (
            [
                "roleManagement",
                "directory",
                "roleEligibilityScheduleInstances",
            ],
            Method::GET,
        ) => role_eligibility(&ctx, t, caller),
        (["subscribedSkus"], Method::GET) => ctx.list("subscribedSkus", subscribed_skus(t)),
        (["domains"], Method::GET) => ctx.list("domains", domains(t)),
        (["applications"], Method::GET) => list_applications(&ctx, t),
        (["applications"], Method::POST) => create_application(caller, t, body),
        (["oauth2PermissionGrants", rest @ ..], m) => grants::route(&ctx, t, rest, m, body),
        (["servicePrincipals"], Method::GET) => list_service_principals(&ctx, t),
        (["servicePrincipals"], Method::POST) => create_service_principal(caller, t, body),
        (["auditLogs", _], Method::GET)
            if !caller.delegated() && !caller.has_app_role(&["AuditLog.Read.All"]) =>
        {
            denied()
        }
        (["auditLogs", "signIns"], Method::GET) => {
            if !t.has_plan("AAD_PREMIUM") {
                gerr(
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license",
                )
            } else {
                ctx.list("auditLogs/signIns", vec![])
            }
        }
        // "List directoryAudits": AuditLog.Read.All and Directory.Read.All, every edition.
        (["auditLogs", "directoryAudits"], Method::GET)
            if !caller.delegated() && !caller.has_app_role(&["Directory.Read.All"]) =>
        {
            denied()
        }
        (["auditLogs", "directoryAudits"], Method::GET) => {
            ctx.list("auditLogs/directoryAudits", vec![])
        }
        (segs, m) if first.starts_with("applications") && !segs.is_empty() => {
            let key = match parse_key("applications", segs[0]) {
                Some(Ok(k)) => k,
                Some(Err(e)) => return e,
                None if segs[0] == "applications" && segs.len() >= 2 => {
                    Key::Id(segs[1].to_string())
                }
                None => return segment_not_found(segs[0]),
            };
            let rest: &[&str] = if matches!(key, Key::AppId(_)) {
                &segs[1..]
            } else {
                &segs[2..]
            };
            let idx = match find_app(t, &key) {
                Ok(i) => i,
                Err(e) => return e,
            };
            match (rest, m) {
                ([], Method::GET) => {
                    ctx.one_selected("applications/$entity", app_json(&t.applications[idx]))
                }
                ([], Method::PATCH) => update_application(caller, t, idx, body),
                ([], Method::DELETE) => delete_application(caller, t, idx),
                (["addPassword"], Method::POST) => add_password(caller, t, idx, body),
                (["owners"], Method::GET) => {
                    let owners = t
                        .app_owners
                        .get(&t.applications[idx].id)
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|o| {
                            json!({
                                "@odata.type": "#microsoft.graph.user",
                                "id": o.id.to_string(),
                                "userPrincipalName": o.user_principal_name,
                                "displayName": o.display_name,
                            })
                        })
                        .collect();
                    ctx.list("directoryObjects", owners)
                }
                (["removePassword"], Method::POST) => remove_password(caller, t, idx, body),
                ([seg, ..], _) => segment_not_found(seg),
                _ => method_not_allowed(),
            }
        }
        (segs, m) if first.starts_with("servicePrincipals") && !segs.is_empty() => {
            let key = match parse_key("servicePrincipals", segs[0]) {
                Some(Ok(k)) => k,
                Some(Err(e)) => return e,
                None if segs[0] == "servicePrincipals" && segs.len() >= 2 => {
                    Key::Id(segs[1].to_string())
                }
                None => return segment_not_found(segs[0]),
            };
            let rest: &[&str] = if matches!(key, Key::AppId(_)) {
                &segs[1..]
            } else {
                &segs[2..]
            };
            let idx = match find_sp(t, &key) {
                Ok(i) => i,
                Err(e) => return e,
            };
            let sp_id = t.service_principals[idx].id;
            match (rest, m) {
                ([], Method::GET) => ctx.one_selected(
                    "servicePrincipals/$entity",
                    sp_json(&t.service_principals[idx]),
                ),
                ([], Method::DELETE) => delete_service_principal(caller, t, idx),
                (["appRoleAssignedTo"], Method::GET) => {
                    let v = t
                        .assignments
                        .iter()
                        .filter(|a| a.resource_id == sp_id)
                        .map(to_json)
                        .collect();
                    let context = format!("servicePrincipals('{sp_id}')/appRoleAssignedTo");
                    list_assignments(&ctx, &context, v)
                }
                (["appRoleAssignedTo"], Method::POST) => assign(caller, t, idx, body),
                (["appRoleAssignedTo", aid], Method::DELETE) => unassign(caller, t, idx, aid),
                (["appRoleAssignments"], Method::GET) => {
                    let v = t
                        .assignments
                        .iter()
                        .filter(|a| a.principal_id == sp_id)
                        .map(to_json)
                        .collect();
                    let context = format!("servicePrincipals('{sp_id}')/appRoleAssignments");
                    list_assignments(&ctx, &context, v)
                }
                (["appRoleAssignments"], Method::POST) => {
                    // Granting from the principal's side: the body names the resource.
                    let principal_ok = body
                        .as_ref()
                        .and_then(|b| b.get("principalId"))
                        .and_then(Value::as_str)
                        .is_some_and(|p| p.eq_ignore_ascii_case(&sp_id.to_string()));
                    if !principal_ok {
                        return gerr(
                            400,
                            "Request_BadRequest",
                            "The principalId in the request body must match the service principal in the request URL.",
                        );
                    }
                    let resource = body
                        .as_ref()
                        .and_then(|b| b.get("resourceId"))
                        .and_then(Value::as_str)
                        .map(|r| Key::Id(r.to_string()));
                    let Some(resource) = resource else {
                        return bad_prop("resourceId", "AppRoleAssignment");
                    };
                    match find_sp(t, &resource) {
                        Ok(ri) => assign(caller, t, ri, body),
                        Err(e) => e,
                    }
                }
                (["appRoleAssignments", aid], Method::DELETE) => {
                    match t
                        .assignments
                        .iter()
                        .find(|a| a.id == *aid && a.principal_id == sp_id)
                        .map(|a| a.resource_id)
                        .and_then(|r| t.service_principals.iter().position(|s| s.id == r))
                    {
                        Some(ri) => unassign(caller, t, ri, aid),
                        None => not_found(aid),
                    }
                }
                ([seg, ..], _) => segment_not_found(seg),
                _ => method_not_allowed(),
            }
        }
        ([], _) => segment_not_found(""),
        ([seg, ..], _) => {
            let known = [
                "policies",
                "organization",
                "me",
                "subscribedSkus",
                "domains",
                "auditLogs",
            ];
            if known.contains(seg) {
                method_not_allowed()
            } else {
                segment_not_found(seg)
            }
        }
    }
}

fn segment_not_found(seg: &str) -> GResp {
    gerr(
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{seg}'."),
    )
}

fn method_not_allowed() -> GResp {
    gerr(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

/// The entity type behind an `@odata.context` path, for error messages.
fn entity_type(context: &str) -> &'static str {
    let head = context.split(['/', '(']).next().unwrap_or("");
    match head {
        "applications" if context.ends_with("addPassword") => "passwordCredential",
        "applications" => "application",
        "servicePrincipals" if context.contains("appRole") => "appRoleAssignment",
        "servicePrincipals" => "servicePrincipal",
        "organization" => "organization",
        "subscribedSkus" => "subscribedSku",
        "domains" => "domain",
        "users" => "user",
        _ => "directoryObject",
    }
}

/// Adds Graph's defaults for properties the sandbox keeps no state for.
fn with_defaults(mut v: Value, defaults: Value) -> Value {
    if let (Value::Object(m), Value::Object(d)) = (&mut v, defaults) {
        for (k, dv) in d {
            m.entry(k).or_insert(dv);
        }
    }
    v
}

fn app_json(a: &Application) -> Value {
    with_defaults(
        to_json(a),
        json!({
            "applicationTemplateId": null, "disabledByMicrosoftStatus": null,
            "groupMembershipClaims": null, "identifierUris": [], "isDeviceOnlyAuthSupported": null,
            "isFallbackPublicClient": null, "optionalClaims": null, "serviceManagementReference": null,
            "tokenEncryptionKeyId": null, "defaultRedirectUri": null, "samlMetadataUrl": null,
            "certification": null, "appRoles": [], "addIns": [],
            "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null,
                     "supportUrl": null, "termsOfServiceUrl": null},
            "api": {"acceptMappedClaims": null, "knownClientApplications": [],
                    "requestedAccessTokenVersion": null, "oauth2PermissionScopes": [],
                    "preAuthorizedApplications": []},
            "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
            "publicClient": {"redirectUris": []},
            "spa": {"redirectUris": []},
            "web": {"homePageUrl": null, "logoutUrl": null, "redirectUris": [],
                    "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
        }),
    )
}

fn sp_json(sp: &ServicePrincipal) -> Value {
    let mut v = sp_json_defaults(sp);
    let scopes = catalog::delegated_scopes(&sp.app_id);
    if !scopes.is_empty() {
        v["oauth2PermissionScopes"] = grants::scopes_json(scopes);
    }
    v
}

fn sp_json_defaults(sp: &ServicePrincipal) -> Value {
    with_defaults(
        to_json(sp),
        json!({
            "deletedDateTime": null, "alternativeNames": [], "appDescription": null,
            "applicationTemplateId": null, "appRoleAssignmentRequired": false,
            "description": null, "disabledByMicrosoftStatus": null, "homepage": null,
            "loginUrl": null, "logoutUrl": null, "notes": null, "notificationEmailAddresses": [],
            "preferredSingleSignOnMode": null, "preferredTokenSigningKeyThumbprint": null,
            "replyUrls": [], "signInAudience": "AzureADMyOrg", "tokenEncryptionKeyId": null,
            "addIns": [], "keyCredentials": [], "passwordCredentials": [],
            "oauth2PermissionScopes": [], "resourceSpecificApplicationPermissions": [],
            "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null,
                     "supportUrl": null, "termsOfServiceUrl": null},
        }),
    )
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serializes")
}

/// `/me` only makes sense for a signed-in user.
fn me_guard(caller: &Caller) -> Option<GResp> {
    (!caller.delegated()).then(|| {
        gerr(
            400,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )
    })
}

struct Ctx<'a> {
    caller: &'a Caller,
    q: &'a HashMap<String, String>,
    query: &'a str,
    path: &'a str,
    graph_base: url::Url,
}

impl Ctx<'_> {
    fn one(&self, context: &str, mut v: Value) -> GResp {
        if let Value::Object(m) = &mut v {
            m.insert(
                "@odata.context".into(),
                json!(format!("{CONTEXT}{context}")),
            );
        }
        GResp::ok(v)
    }

    fn one_selected(&self, context: &str, v: Value) -> GResp {
        match self.select(v, context) {
            Ok(v) => {
                let context = self.selected_context(context, Some(&v));
                self.one(&context, v)
            }
            Err(e) => e,
        }
    }

    /// The `@odata.context` path with the `$select`ed properties, as Graph writes it:
    /// `applications(id,appId)`, `applications(id)/$entity`. Names take the property's own
    /// spelling when `sample` has it.
    fn selected_context(&self, context: &str, sample: Option<&Value>) -> String {
        let Some(sel) = self.q.get("$select").filter(|s| !s.trim().is_empty()) else {
            return context.to_string();
        };
        let names: Vec<String> = sel
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                sample
                    .and_then(Value::as_object)
                    .and_then(|m| m.keys().find(|k| k.eq_ignore_ascii_case(p)))
                    .cloned()
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        let names = names.join(",");
        match context.strip_suffix("/$entity") {
            Some(base) => format!("{base}({names})/$entity"),
            None => format!("{context}({names})"),
        }
    }

    /// Applies `$select` to one object.
    fn select(&self, v: Value, context: &str) -> Result<Value, GResp> {
        let Some(sel) = self.q.get("$select").filter(|s| !s.is_empty()) else {
            return Ok(v);
        };
        let Value::Object(m) = v else { return Ok(v) };
        // Annotations such as `@odata.type` survive `$select`, as in Graph.
        let mut out: Map<String, Value> = m
            .iter()
            .filter(|(k, _)| k.starts_with("@odata"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for p in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match m.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)) {
                Some((k, val)) => {
                    out.insert(k.clone(), val.clone());
                }
                None => {
                    return Err(gerr(
                        400,
                        "BadRequest",
                        &format!(
                            "Could not find a property named '{p}' on type 'microsoft.graph.{}'.",
                            entity_type(context)
                        ),
                    ));
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// A collection with `$select`, `$top` and `$skiptoken` paging applied.
    fn list(&self, context: &str, items: Vec<Value>) -> GResp {
        let top = match self.q.get("$top") {
            None => 100,
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=999).contains(&n) => n,
                _ => {
                    return gerr(
                        400,
                        "Request_BadRequest",
                        &format!(
                            "Invalid page size specified: '{t}'. Must be between 1 and 999 inclusive."
                        ),
                    );
                }
            },
        };
        let skip = self
            .q
            .get("$skiptoken")
            .and_then(|s| B64.decode(s).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap_or(0);
        // An empty collection still rejects properties its type does not have.
        if items.is_empty() {
            let schema = match entity_type(context) {
                "application" => Some(app_json(&blank_application("", String::new()))),
                "servicePrincipal" => Some(sp_json(&o365_management_sp(""))),
                _ => None,
            };
            if let Some(Err(e)) = schema.map(|v| self.select(v, context)) {
                return e;
            }
        }
        let total = items.len();
        let mut page = vec![];
        for v in items.into_iter().skip(skip).take(top) {
            match self.select(v, context) {
                Ok(v) => page.push(v),
                Err(e) => return e,
            }
        }
        let context = self.selected_context(context, page.first());
        let mut body = json!({
            "@odata.context": format!("{CONTEXT}{context}"),
            "value": page,
        });
        if skip + top < total {
            let mut next = self
                .graph_base
                .join(&format!("v1.0{}", self.path))
                .expect("joins");
            {
                let mut qp = next.query_pairs_mut();
                for (k, v) in url::form_urlencoded::parse(self.query.as_bytes()) {
                    if k != "$skiptoken" {
                        qp.append_pair(&k, &v);
                    }
                }
                qp.append_pair("$skiptoken", &B64.encode(format!("offset:{}", skip + top)));
            }
            body["@odata.nextLink"] = json!(next.as_str());
        }
        if self.q.get("$count").is_some_and(|c| c == "true") {
            body["@odata.count"] = json!(total);
        }
        let _ = self.caller;
        GResp::ok(body)
    }
}

fn stable_id(parts: &[&str]) -> Uuid {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

fn organization(t: &TenantState) -> Value {
    let sc = &t.scenario;
    let initial = sc
        .domains
        .iter()
        .find(|d| d.to_ascii_lowercase().ends_with(".onmicrosoft.com"))
        .cloned()
        .unwrap_or_else(|| sc.default_domain().to_string());
    let verified: Vec<Value> = sc
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": i == 0,
                "isInitial": *d == initial,
                "name": d,
                "type": "Managed",
            })
        })
        .collect();
    json!({
        "id": sc.id,
        "displayName": sc.display_name,
        "tenantType": "AAD",
        "countryLetterCode": "US",
        "createdDateTime": t.created,
        "verifiedDomains": verified,
        "assignedPlans": [],
    })
}

fn me(t: &TenantState, caller: &Caller) -> Value {
    let u = &t.scenario.signed_in_user;
    json!({
        "id": caller.claims.oid,
        "userPrincipalName": caller.claims.upn.clone().unwrap_or_else(|| t.upn()),
        "displayName": u.display_name,
        "mail": caller.claims.upn.clone().unwrap_or_else(|| t.upn()),
        "businessPhones": [],
        "givenName": null,
        "surname": null,
        "jobTitle": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "mobilePhone": null,
    })
}

fn member_of(t: &TenantState, caller: &Caller) -> Vec<Value> {
    caller
        .claims
        .wids
        .iter()
        .filter_map(|w| catalog::DIRECTORY_ROLES.iter().find(|(_, id)| id == w))
        .map(|(name, template)| {
            json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": stable_id(&[&t.scenario.id.to_string(), template]),
                "deletedDateTime": null,
                "description": format!("{name} built-in role."),
                "displayName": name,
                "roleTemplateId": template,
            })
        })
        .collect()
}

fn plan_id(plan: &str) -> String {
    match plan {
        "AAD_PREMIUM" => "41781fb2-bc02-4b7c-bd55-b576c07bb09d".into(),
        "AAD_PREMIUM_P2" => "eec0eb4f-6444-4f95-aba0-50c24d67f998".into(),
        "MFA_PREMIUM" => "8a256a2b-b617-496d-b51b-e76466e88db0".into(),
        "EXCHANGE_S_ENTERPRISE" => "efb87545-963c-4e0d-99df-69c6916d9eb0".into(),
        "EXCHANGE_S_STANDARD" => "9aaf7827-d63c-4b61-89c3-182f06f82e5c".into(),
        other => stable_id(&["plan", other]).to_string(),
    }
}

fn subscribed_skus(t: &TenantState) -> Vec<Value> {
    t.scenario
        .licenses
        .iter()
        .map(|part| {
            let known = catalog::SKUS
                .iter()
                .find(|(p, _, _)| p.eq_ignore_ascii_case(part));
            let sku_id = known
                .map(|(_, id, _)| id.to_string())
                .unwrap_or_else(|| stable_id(&["sku", part]).to_string());
            let plans: Vec<Value> = known
                .map(|(_, _, plans)| *plans)
                .unwrap_or(&[])
                .iter()
                .map(|p| {
                    json!({
                        "servicePlanId": plan_id(p),
                        "servicePlanName": p,
                        "provisioningStatus": "Success",
                        "appliesTo": "User",
                    })
                })
                .collect();
            json!({
                "id": format!("{}_{sku_id}", t.scenario.id),
                "accountId": t.scenario.id,
                "accountName": t.scenario.display_name,
                "appliesTo": "User",
                "capabilityStatus": "Enabled",
                "consumedUnits": 1,
                "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0, "lockedOut": 0},
                "skuId": sku_id,
                "skuPartNumber": known.map(|k| k.0).unwrap_or(part.as_str()),
                "subscriptionIds": [stable_id(&["sub", part, &t.scenario.id.to_string()])],
                "servicePlans": plans,
            })
        })
        .collect()
}

fn domains(t: &TenantState) -> Vec<Value> {
    t.scenario
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "id": d,
                "authenticationType": "Managed",
                "isAdminManaged": true,
                "isDefault": i == 0,
                "isInitial": d.to_ascii_lowercase().ends_with(".onmicrosoft.com") && i == t.scenario.domains.iter().position(|x| x.to_ascii_lowercase().ends_with(".onmicrosoft.com")).unwrap_or(0),
                "isRoot": true,
                "isVerified": true,
                "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            })
        })
        .collect()
}

fn invalid_id(id: &str) -> GResp {
    gerr(
        400,
        "Request_BadRequest",
        &format!("Invalid object identifier '{id}'."),
    )
}

fn find_app(t: &mut TenantState, key: &Key) -> Result<usize, GResp> {
    let (shown, pos) = match key {
        Key::Id(id) => {
            let Ok(u) = Uuid::parse_str(id) else {
                return Err(invalid_id(id));
            };
            (id, t.applications.iter().position(|a| a.id == u))
        }
        Key::AppId(app_id) => {
            let Ok(u) = Uuid::parse_str(app_id) else {
                return Err(invalid_id(app_id));
            };
            (app_id, t.applications.iter().position(|a| a.app_id == u))
        }
    };
    match pos {
        Some(i) if !t.still_replicating(t.applications[i].id) => Ok(i),
        _ => Err(not_found(shown)),
    }
}

fn find_sp(t: &mut TenantState, key: &Key) -> Result<usize, GResp> {
    let (shown, pos) = match key {
        Key::Id(id) => {
            let Ok(u) = Uuid::parse_str(id) else {
                return Err(invalid_id(id));
            };
            (id, t.service_principals.iter().position(|s| s.id == u))
        }
        Key::AppId(app_id) => (
            app_id,
            t.service_principals
                .iter()
                .position(|s| s.app_id.eq_ignore_ascii_case(app_id)),
        ),
    };
    match pos {
        Some(i) if !t.still_replicating(t.service_principals[i].id) => Ok(i),
        _ => Err(not_found(shown)),
    }
}

fn filter_error(e: FilterError, resource: &str) -> GResp {
    match e {
        FilterError::Syntax(detail) => gerr(
            400,
            "BadRequest",
            &format!("Invalid filter clause: {detail}"),
        ),
        FilterError::Unsupported(prop) => gerr(
            400,
            "Request_UnsupportedQuery",
            &format!(
                "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'."
            ),
        ),
    }
}

/// Evaluates clauses against an object's JSON; `Err` for a property Graph does not filter on.
fn matches(
    v: &Value,
    clauses: &[Clause],
    eq_props: &[&str],
    any_props: &[&str],
) -> Result<bool, FilterError> {
    let get = |p: &str| -> Option<&Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(p))
            .map(|(_, v)| v)
    };
    let mut ok = true;
    for c in clauses {
        let hit = match c {
            Clause::Eq(p, val) => {
                if !eq_props.iter().any(|e| e.eq_ignore_ascii_case(p)) {
                    return Err(FilterError::Unsupported(p.clone()));
                }
                get(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(val))
            }
            Clause::In(p, vals) => {
                if !eq_props.iter().any(|e| e.eq_ignore_ascii_case(p)) {
                    return Err(FilterError::Unsupported(p.clone()));
                }
                get(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| vals.iter().any(|v| s.eq_ignore_ascii_case(v)))
            }
            Clause::StartsWith(p, val) => {
                if !p.eq_ignore_ascii_case("displayName") {
                    return Err(FilterError::Unsupported(p.clone()));
                }
                get(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.to_lowercase().starts_with(&val.to_lowercase()))
            }
            Clause::AnyEq(coll, val) => {
                if !any_props.iter().any(|e| e.eq_ignore_ascii_case(coll)) {
                    return Err(FilterError::Unsupported(coll.clone()));
                }
                get(coll).and_then(Value::as_array).is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case(val)))
                })
            }
        };
        ok &= hit;
    }
    Ok(ok)
}

/// Ids named by `id eq` / `appId eq` clauses (these count as references for replication).
fn referenced_by_key(clauses: &[Clause]) -> bool {
    clauses.iter().any(|c| match c {
        Clause::Eq(p, _) | Clause::In(p, _) => {
            p.eq_ignore_ascii_case("appId") || p.eq_ignore_ascii_case("id")
        }
        _ => false,
    })
}

fn list_applications(ctx: &Ctx, t: &mut TenantState) -> GResp {
    let clauses = match ctx.q.get("$filter").map(|f| parse_filter(f)) {
        None => vec![],
        Some(Ok(c)) => c,
        Some(Err(e)) => return filter_error(e, "Application"),
    };
    let mut out = vec![];
    let by_key = referenced_by_key(&clauses);
    let objs: Vec<(Uuid, Value)> = t.applications.iter().map(|a| (a.id, app_json(a))).collect();
    for (id, v) in objs {
        match matches(
            &v,
            &clauses,
            &[
                "displayName",
                "appId",
                "id",
                "publisherDomain",
                "signInAudience",
            ],
            &["tags", "identifierUris"],
        ) {
            Err(e) => return filter_error(e, "Application"),
            Ok(true) => {
                if by_key && t.still_replicating(id) {
                    continue;
                }
                out.push(v);
            }
            Ok(false) => {}
        }
    }
    ctx.list("applications", out)
}

fn list_service_principals(ctx: &Ctx, t: &mut TenantState) -> GResp {
    let clauses = match ctx.q.get("$filter").map(|f| parse_filter(f)) {
        None => vec![],
        Some(Ok(c)) => c,
        Some(Err(e)) => return filter_error(e, "ServicePrincipal"),
    };
    let by_key = referenced_by_key(&clauses);
    let mut out = vec![];
    let objs: Vec<(Uuid, Value)> = t
        .service_principals
        .iter()
        .map(|s| (s.id, sp_json(s)))
        .collect();
    for (id, v) in objs {
        match matches(
            &v,
            &clauses,
            &["displayName", "appId", "id", "servicePrincipalType"],
            &["tags", "servicePrincipalNames"],
        ) {
            Err(e) => return filter_error(e, "ServicePrincipal"),
            Ok(true) => {
                if by_key && t.still_replicating(id) {
                    continue;
                }
                out.push(v);
            }
            Ok(false) => {}
        }
    }
    ctx.list("servicePrincipals", out)
}

/// Who may create and change applications and service principals.
fn can_manage_apps(caller: &Caller) -> bool {
    if caller.delegated() {
        caller.has_scope(&[
            "Application.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ]) && caller.has_role(&[
            catalog::GLOBAL_ADMINISTRATOR,
            catalog::APPLICATION_ADMINISTRATOR,
            catalog::CLOUD_APPLICATION_ADMINISTRATOR,
        ])
    } else {
        caller.has_app_role(&[
            "Application.ReadWrite.All",
            "Application.ReadWrite.OwnedBy",
            "Directory.ReadWrite.All",
        ])
    }
}

/// Who may grant app roles: Microsoft Graph's need Privileged Role Administrator (or Global
/// Administrator); other resources' also allow the application administrator roles.
fn can_grant(caller: &Caller, resource_is_graph: bool) -> bool {
    if caller.delegated() {
        let mut ok = vec![
            catalog::GLOBAL_ADMINISTRATOR,
            catalog::PRIVILEGED_ROLE_ADMINISTRATOR,
        ];
        if !resource_is_graph {
            ok.push(catalog::APPLICATION_ADMINISTRATOR);
            ok.push(catalog::CLOUD_APPLICATION_ADMINISTRATOR);
        }
        caller.has_scope(&[
            "AppRoleAssignment.ReadWrite.All",
            "Directory.ReadWrite.All",
            "Directory.AccessAsUser.All",
        ]) && caller.has_role(&ok)
    } else {
        caller.has_app_role(&["AppRoleAssignment.ReadWrite.All"])
    }
}

const APP_PROPS: &[&str] = &[
    "displayName",
    "description",
    "signInAudience",
    "tags",
    "notes",
    "requiredResourceAccess",
    "web",
    "spa",
    "publicClient",
    "api",
    "info",
    "identifierUris",
    "optionalClaims",
    "isFallbackPublicClient",
    "serviceManagementReference",
    "appRoles",
    "groupMembershipClaims",
    "keyCredentials",
    "passwordCredentials",
    "parentalControlSettings",
    "tokenEncryptionKeyId",
    "isDeviceOnlyAuthSupported",
    "defaultRedirectUri",
    "certification",
    "samlMetadataUrl",
];

fn bad_prop(prop: &str, resource: &str) -> GResp {
    gerr(
        400,
        "Request_BadRequest",
        &format!("Invalid value specified for property '{prop}' of resource '{resource}'."),
    )
}

/// Applies writable properties from a POST/PATCH body to an application.
fn apply_app_props(app: &mut Application, body: &Map<String, Value>) -> Result<(), GResp> {
    for (k, v) in body {
        if k.starts_with("@odata") {
            continue;
        }
        let Some(prop) = APP_PROPS.iter().find(|p| p.eq_ignore_ascii_case(k)) else {
            return Err(gerr(
                400,
                "Request_BadRequest",
                &format!(
                    "Property '{k}' does not exist as a declared property or extension property."
                ),
            ));
        };
        match *prop {
            "displayName" => match v.as_str() {
                Some(s) if !s.trim().is_empty() && s.len() <= 256 => {
                    app.display_name = s.to_string()
                }
                _ => return Err(bad_prop(prop, "Application")),
            },
            "description" => app.description = v.as_str().map(str::to_string),
            "notes" => app.notes = v.as_str().map(str::to_string),
            "signInAudience" => match v.as_str() {
                Some(
                    s @ ("AzureADMyOrg"
                    | "AzureADMultipleOrgs"
                    | "AzureADandPersonalMicrosoftAccount"
                    | "PersonalMicrosoftAccount"),
                ) => app.sign_in_audience = s.to_string(),
                _ => return Err(bad_prop(prop, "Application")),
            },
            "tags" => match serde_json::from_value::<Vec<String>>(v.clone()) {
                Ok(tags) if tags.iter().all(|t| t.len() <= 256) => app.tags = tags,
                _ => return Err(bad_prop(prop, "Application")),
            },
            "requiredResourceAccess" => {
                match serde_json::from_value::<Vec<RequiredResourceAccess>>(v.clone()) {
                    Ok(rra)
                        if rra.iter().all(|r| {
                            r.resource_access
                                .iter()
                                .all(|a| a.kind == "Role" || a.kind == "Scope")
                        }) =>
                    {
                        app.required_resource_access = rra
                    }
                    _ => return Err(bad_prop(prop, "Application")),
                }
            }
            "passwordCredentials" | "keyCredentials" => {
                // Graph ignores secrets here; addPassword is the way in.
            }
            other => {
                app.extra.insert(other.to_string(), v.clone());
            }
        }
    }
    Ok(())
}

fn blank_application(publisher_domain: &str, created: String) -> Application {
    Application {
        id: Uuid::new_v4(),
        app_id: Uuid::new_v4(),
        display_name: String::new(),
        description: None,
        sign_in_audience: "AzureADMyOrg".into(),
        tags: vec![],
        notes: None,
        publisher_domain: publisher_domain.to_string(),
        created_date_time: created,
        deleted_date_time: None,
        required_resource_access: vec![],
        password_credentials: vec![],
        key_credentials: vec![],
        extra: Map::new(),
    }
}

fn create_application(caller: &Caller, t: &mut TenantState, body: Option<Value>) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let Some(Value::Object(body)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let now = iso(OffsetDateTime::now_utc());
    let mut app = blank_application(t.scenario.default_domain(), now);
    if let Err(e) = apply_app_props(&mut app, &body) {
        return e;
    }
    if app.display_name.is_empty() {
        return gerr(
            400,
            "Request_BadRequest",
            "A value is required for property 'displayName' of resource 'Application'.",
        );
    }
    let delay = t.scenario.replication_delay_requests;
    if delay > 0 {
        t.replicating.insert(app.id, delay);
    }
    let mut v = app_json(&app);
    v["@odata.context"] = json!(format!("{CONTEXT}applications/$entity"));
    // As Entra does: the user who creates an app with a delegated token owns it.
    if caller.delegated()
        && let Ok(oid) = Uuid::parse_str(&caller.claims.oid)
    {
        let user = &t.scenario.signed_in_user;
        t.app_owners
            .entry(app.id)
            .or_default()
            .push(crate::state::Owner {
                id: oid,
                user_principal_name: caller.claims.upn.clone().unwrap_or_default(),
                display_name: if user.id == oid {
                    user.display_name.clone()
                } else {
                    String::new()
                },
            });
    }
    t.applications.push(app);
    GResp::with(201, v)
}

fn update_application(
    caller: &Caller,
    t: &mut TenantState,
    idx: usize,
    body: Option<Value>,
) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let Some(Value::Object(body)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let mut app = t.applications[idx].clone();
    if let Err(e) = apply_app_props(&mut app, &body) {
        return e;
    }
    t.applications[idx] = app;
    GResp::no_content()
}

fn delete_application(caller: &Caller, t: &mut TenantState, idx: usize) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let app = t.applications.remove(idx);
    for pc in &app.password_credentials {
        t.secrets.remove(&pc.key_id);
    }
    let app_id = app.app_id.to_string();
    if let Some(sp) = t.service_principals.iter().position(|s| s.app_id == app_id) {
        remove_sp(t, sp);
    }
    GResp::no_content()
}

fn remove_sp(t: &mut TenantState, idx: usize) {
    let sp = t.service_principals.remove(idx);
    t.assignments
        .retain(|a| a.principal_id != sp.id && a.resource_id != sp.id);
    // Its delegated permission grants go with it, as the directory deletes them.
    t.oauth2_grants
        .retain(|g| g.client_id != sp.id && g.resource_id != sp.id);
}

fn delete_service_principal(caller: &Caller, t: &mut TenantState, idx: usize) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    if t.service_principals[idx]
        .app_owner_organization_id
        .as_deref()
        == Some("f8cdef31-a31e-4b4a-93e4-5f571e91255a")
    {
        return denied();
    }
    remove_sp(t, idx);
    GResp::no_content()
}

fn parse_time(v: Option<&Value>, prop: &str) -> Result<Option<OffsetDateTime>, GResp> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(Some)
                .map_err(|_| bad_prop(prop, "PasswordCredential"))
        }
        Some(_) => Err(bad_prop(prop, "PasswordCredential")),
    }
}

/// A secret shaped like Entra's: 40 characters, 3 hint characters then `8Q~`.
fn secret_text() -> String {
    const HEAD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const TAIL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~-";
    let mut rng = rand::rng();
    let mut s: String = (0..3)
        .map(|_| HEAD[rng.random_range(0..HEAD.len())] as char)
        .collect();
    s.push_str("8Q~");
    s.extend((0..34).map(|_| TAIL[rng.random_range(0..TAIL.len())] as char));
    s
}

fn add_password(caller: &Caller, t: &mut TenantState, idx: usize, body: Option<Value>) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let pc = body
        .as_ref()
        .and_then(|b| b.get("passwordCredential"))
        .cloned()
        .unwrap_or(json!({}));
    let now = OffsetDateTime::now_utc();
    let start = match parse_time(pc.get("startDateTime"), "startDateTime") {
        Ok(s) => s.unwrap_or(now),
        Err(e) => return e,
    };
    let end = match parse_time(pc.get("endDateTime"), "endDateTime") {
        Ok(e) => e.unwrap_or(start + time::Duration::days(730)),
        Err(e) => return e,
    };
    if end <= start {
        return bad_prop("endDateTime", "PasswordCredential");
    }
    if t.scenario.secrets_forbidden {
        return gerr(
            400,
            "CredentialTypeNotAllowedAsPerAppPolicy",
            &format!(
                "Credential type not allowed as per assigned policy '{DEFAULT_APP_POLICY_ID}'."
            ),
        );
    }
    if let Some(days) = t.scenario.secret_max_lifetime_days
        && end - start > time::Duration::days(days as i64)
    {
        return gerr(
            400,
            "CredentialInvalidLifetimeAsPerAppPolicy",
            &format!(
                "Credential lifetime exceeds the max value allowed as per assigned policy '{DEFAULT_APP_POLICY_ID}'."
            ),
        );
    }
    let text = secret_text();
    let cred = PasswordCredential {
        custom_key_identifier: None,
        display_name: pc
            .get("displayName")
            .and_then(Value::as_str)
            .map(str::to_string),
        end_date_time: iso(end),
        hint: text[..3].to_string(),
        key_id: Uuid::new_v4(),
        secret_text: None,
        start_date_time: iso(start),
    };
    t.secrets.insert(
        cred.key_id,
        SecretState {
            text: text.clone(),
            failures_left: t.scenario.new_credential_delay_requests,
        },
    );
    t.applications[idx].password_credentials.push(cred.clone());
    let mut v = to_json(&cred);
    v["secretText"] = json!(text);
    v["@odata.context"] = json!(format!("{CONTEXT}microsoft.graph.passwordCredential"));
    GResp::ok(v)
}

fn remove_password(caller: &Caller, t: &mut TenantState, idx: usize, body: Option<Value>) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let key = body
        .as_ref()
        .and_then(|b| b.get("keyId"))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let Some(key) = key else {
        return bad_prop("keyId", "PasswordCredential");
    };
    let app = &mut t.applications[idx];
    let before = app.password_credentials.len();
    app.password_credentials.retain(|p| p.key_id != key);
    if app.password_credentials.len() == before {
        return gerr(
            404,
            "Request_ResourceNotFound",
            &format!("No password credential found with keyId '{key}'."),
        );
    }
    t.secrets.remove(&key);
    GResp::no_content()
}

fn create_service_principal(caller: &Caller, t: &mut TenantState, body: Option<Value>) -> GResp {
    if !can_manage_apps(caller) {
        return denied();
    }
    let Some(Value::Object(body)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let Some(app_id) = body
        .get("appId")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return gerr(
            400,
            "Request_BadRequest",
            "A value is required for property 'appId' of resource 'ServicePrincipal'.",
        );
    };
    if t.service_principals
        .iter()
        .any(|s| s.app_id.eq_ignore_ascii_case(&app_id))
    {
        return gerr(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            &format!(
                "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
            ),
        );
    }
    let no_app = || {
        gerr(
            400,
            "Request_BadRequest",
            &format!(
                "The appId '{app_id}' of the service principal does not reference a valid application object."
            ),
        )
    };
    let now = iso(OffsetDateTime::now_utc());
    let sp = if app_id.eq_ignore_ascii_case(catalog::O365_MANAGEMENT_APP_ID) {
        let delay = t.scenario.resource_principal_delay_requests;
        if delay > 0 {
            t.resource_delay
                .insert(catalog::O365_MANAGEMENT_APP_ID.to_string(), delay);
        }
        o365_management_sp(&now)
    } else if app_id.eq_ignore_ascii_case(catalog::PARTNER_CENTER_APP_ID) {
        // A Microsoft multi-tenant app: its principal can be made in any tenant.
        super::state::partner_center_sp(&now)
    } else {
        let Ok(u) = Uuid::parse_str(&app_id) else {
            return no_app();
        };
        let Some(i) = t.applications.iter().position(|a| a.app_id == u) else {
            return no_app();
        };
        if t.still_replicating(t.applications[i].id) {
            return no_app();
        }
        let app = &t.applications[i];
        let tags = body
            .get("tags")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_default();
        ServicePrincipal {
            id: Uuid::new_v4(),
            app_id: app.app_id.to_string(),
            display_name: app.display_name.clone(),
            app_display_name: app.display_name.clone(),
            service_principal_type: "Application".into(),
            account_enabled: true,
            app_owner_organization_id: Some(t.scenario.id.to_string()),
            app_roles: vec![],
            service_principal_names: vec![app.app_id.to_string()],
            tags,
            created_date_time: now,
        }
    };
    let delay = t.scenario.replication_delay_requests;
    if delay > 0 {
        t.replicating.insert(sp.id, delay);
    }
    let mut v = sp_json(&sp);
    v["@odata.context"] = json!(format!("{CONTEXT}servicePrincipals/$entity"));
    t.service_principals.push(sp);
    GResp::with(201, v)
}

fn assignment_id() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill(&mut b);
    B64.encode(b)
}

fn assign(caller: &Caller, t: &mut TenantState, idx: usize, body: Option<Value>) -> GResp {
    let resource = t.service_principals[idx].clone();
    if !can_grant(caller, resource.app_id == catalog::GRAPH_APP_ID) {
        return denied();
    }
    let Some(Value::Object(body)) = body else {
        return gerr(400, "BadRequest", "Empty Payload. JSON content expected.");
    };
    let guid = |p: &str| {
        body.get(p)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    let (Some(principal_id), Some(resource_id), Some(app_role_id)) =
        (guid("principalId"), guid("resourceId"), guid("appRoleId"))
    else {
        return gerr(
            400,
            "Request_BadRequest",
            "Invalid value specified for property 'principalId', 'resourceId' or 'appRoleId' of resource 'AppRoleAssignment'.",
        );
    };
    if resource_id != resource.id {
        return gerr(
            400,
            "Request_BadRequest",
            "Not a valid reference update. The resourceId does not match the service principal in the request URL.",
        );
    }
    let Some(pi) = t
        .service_principals
        .iter()
        .position(|s| s.id == principal_id)
    else {
        return gerr(400, "Request_BadRequest", "Not a valid reference update.");
    };
    if t.still_replicating(principal_id) {
        return gerr(400, "Request_BadRequest", "Not a valid reference update.");
    }
    if !resource
        .app_roles
        .iter()
        .any(|r| r.id.eq_ignore_ascii_case(&app_role_id.to_string()))
    {
        return gerr(
            400,
            "Request_BadRequest",
            "Permission being assigned was not found on application",
        );
    }
    if t.assignments.iter().any(|a| {
        a.principal_id == principal_id
            && a.resource_id == resource.id
            && a.app_role_id == app_role_id
    }) {
        return gerr(
            400,
            "Request_BadRequest",
            "Permission being assigned already exists on the object",
        );
    }
    let a = AppRoleAssignment {
        id: assignment_id(),
        app_role_id,
        created_date_time: iso(OffsetDateTime::now_utc()),
        deleted_date_time: None,
        principal_display_name: t.service_principals[pi].display_name.clone(),
        principal_id,
        principal_type: "ServicePrincipal".into(),
        resource_display_name: resource.display_name.clone(),
        resource_id: resource.id,
    };
    let mut v = to_json(&a);
    v["@odata.context"] = json!(format!(
        "{CONTEXT}servicePrincipals('{}')/appRoleAssignedTo/$entity",
        resource.id
    ));
    t.assignments.push(a);
    GResp::with(201, v)
}

fn unassign(caller: &Caller, t: &mut TenantState, idx: usize, aid: &str) -> GResp {
    let resource = &t.service_principals[idx];
    if !can_grant(caller, resource.app_id == catalog::GRAPH_APP_ID) {
        return denied();
    }
    let rid = resource.id;
    let before = t.assignments.len();
    t.assignments
        .retain(|a| !(a.id == aid && a.resource_id == rid));
    if t.assignments.len() == before {
        return not_found(aid);
    }
    GResp::no_content()
}

/// Assignments support `$filter` with `eq` on their id properties.
fn list_assignments(ctx: &Ctx, context: &str, items: Vec<Value>) -> GResp {
    let clauses = match ctx.q.get("$filter").map(|f| parse_filter(f)) {
        None => vec![],
        Some(Ok(c)) => c,
        Some(Err(e)) => return filter_error(e, "AppRoleAssignment"),
    };
    let mut out = vec![];
    for v in items {
        match matches(
            &v,
            &clauses,
            &[
                "principalId",
                "resourceId",
                "appRoleId",
                "principalDisplayName",
                "id",
            ],
            &[],
        ) {
            Err(e) => return filter_error(e, "AppRoleAssignment"),
            Ok(true) => out.push(v),
            Ok(false) => {}
        }
    }
    ctx.list(context, out)
}

/// `GET /policies/defaultAppManagementPolicy`, showing `secretMaxLifetimeDays` when set.
fn app_policy(t: &TenantState) -> Value {
    let mut passwords: Vec<Value> = t
        .scenario
        .secret_max_lifetime_days
        .map(|d| {
            json!({
                "restrictionType": "passwordLifetime",
                "state": "enabled",
                "maxLifetime": format!("P{d}D"),
                "restrictForAppsCreatedAfterDateTime": "2019-01-01T00:00:00Z",
            })
        })
        .into_iter()
        .collect();
    if t.scenario.secrets_forbidden {
        passwords.push(json!({
            "restrictionType": "passwordAddition",
            "state": "enabled",
            "maxLifetime": null,
            "restrictForAppsCreatedAfterDateTime": "2019-01-01T00:00:00Z",
        }));
    }
    json!({
        "id": DEFAULT_APP_POLICY_ID,
        "displayName": "Default app management tenant policy",
        "description": "Default tenant policy that enforces app management restrictions on applications and service principals.",
        "isEnabled": !passwords.is_empty(),
        "applicationRestrictions": {"passwordCredentials": passwords, "keyCredentials": []},
        "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
    })
}

/// `GET /roleManagement/directory/roleEligibilityScheduleInstances?$filter=principalId eq '…'`:
/// the roles a principal may activate (Privileged Identity Management). Delegated, it needs
/// RoleEligibilitySchedule.Read.Directory or a higher RoleManagement scope, as documented.
fn role_eligibility(ctx: &Ctx, t: &TenantState, caller: &Caller) -> GResp {
    const SCOPES: &[&str] = &[
        "RoleEligibilitySchedule.Read.Directory",
        "RoleEligibilitySchedule.ReadWrite.Directory",
        "RoleManagement.Read.All",
        "RoleManagement.Read.Directory",
        "RoleManagement.ReadWrite.Directory",
    ];
    let allowed = if caller.delegated() {
        caller.has_scope(SCOPES)
    } else {
        caller.has_app_role(SCOPES)
    };
    if !allowed {
        return denied();
    }
    let user = &t.scenario.signed_in_user;
    let principal = user.id.to_string();
    let wanted = ctx.q.get("$filter").map(|f| {
        f.trim()
            .strip_prefix("principalId eq '")
            .and_then(|r| r.strip_suffix('\''))
            .map(str::to_ascii_lowercase)
    });
    let all = match wanted {
        Some(Some(p)) => p == principal,
        Some(None) => {
            return gerr(
                400,
                "BadRequest",
                "The $filter this sandbox understands is principalId eq '<id>'.",
            );
        }
        None => true,
    };
    let items = if all {
        user.eligible_roles
            .iter()
            .filter_map(|name| catalog::role_template_id(name))
            .map(|role| {
                json!({
                    "id": Uuid::new_v4().to_string(),
                    "principalId": principal,
                    "roleDefinitionId": role,
                    "directoryScopeId": "/",
                    "appScopeId": null,
                    "startDateTime": "2026-01-01T00:00:00Z",
                    "endDateTime": null,
                    "memberType": "Direct",
                    "roleEligibilityScheduleId": Uuid::new_v4().to_string(),
                })
            })
            .collect()
    } else {
        vec![]
    };
    ctx.list(
        "roleManagement/directory/roleEligibilityScheduleInstances",
        items,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(
            pct_decode("applications(appId=%27x%27)"),
            "applications(appId='x')"
        );
        assert_eq!(pct_decode("a%2"), "a%2");
        assert_eq!(pct_decode("%é%zz%41"), "%é%zzA");
    }

    #[test]
    fn entity_types_for_messages() {
        assert_eq!(entity_type("applications"), "application");
        assert_eq!(
            entity_type("servicePrincipals('id')/appRoleAssignedTo"),
            "appRoleAssignment"
        );
        assert_eq!(entity_type("directoryObjects"), "directoryObject");
    }
}
