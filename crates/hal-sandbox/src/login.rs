//! Microsoft Entra ID sign-in (`{authority host}/{tenant}/oauth2/v2.0/...`, the host being the
//! sandbox's root as `login.microsoftonline.com` is Microsoft's): device code, refresh token,
//! client credentials and authorization code + PKCE, with Entra's error shape
//! `{error, error_description: "AADSTSnnnn: ...", error_codes, timestamp, trace_id, correlation_id}`.

// Errors here *are* HTTP responses, built once and returned as-is; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Ax};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use super::catalog;
use super::scenario::SignInFlow;
use super::state::{AuthCode, DeviceCode, DeviceOutcome, Inner, State, TenantState};
use super::tagged;
use super::token::{Claims, pairwise_sub};

pub const REFRESH_AUDIENCE: &str = "urn:hal-sandbox:refresh-token";
const TOKEN_LIFETIME: i64 = 3600;

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/devicelogin",
            get(device_login_page).post(device_login_submit),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(device_code).get(only_post),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token).get(only_post))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize).post(authorize_submit),
        )
        .route("/{tenant}/oauth2/v2.0/logout", get(logout))
        .route("/{tenant}/v2.0/adminconsent", get(admin_consent))
}

/// Entra's error response.
pub fn aad_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let trace = Uuid::new_v4();
    let corr = Uuid::new_v4();
    let now = OffsetDateTime::now_utc();
    let ts = super::state::iso(now).replace('T', " ");
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (status, Json(body)).into_response()
}

fn bad(error: &str, code: u32, message: &str) -> Response {
    aad_error(StatusCode::BAD_REQUEST, error, code, message)
}

fn tenant_not_found(name: &str) -> Response {
    bad(
        "invalid_request",
        90002,
        &format!(
            "Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are \
             signing into the correct cloud. Check with your subscription administrator, this may \
             happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn random_code(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill(&mut bytes[..]);
    B64.encode(bytes)
}

fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..9)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn required<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Response> {
    match f.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )),
    }
}

async fn only_post() -> Response {
    bad(
        "invalid_request",
        900561,
        "The endpoint only accepts POST requests. Received a GET request.",
    )
}

/// `GET /devicelogin`: the page a person opens to enter the code a device shows.
async fn device_login_page() -> Response {
    html(StatusCode::OK, device_login_form(""))
}

fn device_login_form(problem: &str) -> String {
    let problem = if problem.is_empty() {
        String::new()
    } else {
        format!(r#"<p role="alert">{}</p>"#, html_escape(problem))
    };
    format!(
        r#"<!doctype html><html><head><title>Enter code</title></head><body><h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{problem}<form method="POST" action="devicelogin"><input type="text" name="otc" autocomplete="off" placeholder="Code" /><input type="submit" value="Next" /></form><p>This is the hal-onboard sandbox: the code signs in the scenario's simulated technician; there is no password to enter.</p></body></html>"#
    )
}

/// `POST /devicelogin` (`otc`, and `decline` to refuse): a person approves — or declines — the
/// device code sign-in whose user code they typed, as on Microsoft's page.
async fn device_login_submit(Ax(state): Ax<Arc<State>>, body: Bytes) -> Response {
    let f = form(&body);
    let code = f.get("otc").map(|c| c.trim()).unwrap_or("");
    let decline = f.contains_key("decline");
    let mut inner = state.lock();
    let found = inner
        .device_codes
        .values()
        .find(|dc| !code.is_empty() && dc.user_code.eq_ignore_ascii_case(code))
        .map(|dc| (dc.tenant, dc.client_id.clone(), dc.issued, dc.expires_in));
    let Some((tid, client_id, issued, expires_in)) = found else {
        return html(
            StatusCode::BAD_REQUEST,
            device_login_form("That code didn't work. Check the code and try again."),
        );
    };
    if state.signer.clock().now_unix() - issued >= expires_in as i64 {
        return tagged(
            html(
                StatusCode::BAD_REQUEST,
                device_login_form(
                    "The code you entered has expired. Get a new code from the device you're                      trying to sign in to and try again.",
                ),
            ),
            tid,
        );
    }
    settle_device_code(&mut inner, code, !decline);
    let app = client_name(&inner, &client_id);
    let page = if decline {
        format!(
            "<!doctype html><title>Sign in declined</title><p>You declined to sign in to {} on              your device. You may now close this window.</p>",
            html_escape(&app)
        )
    } else {
        format!(
            "<!doctype html><title>Signed in</title><p>You have signed in to the {} application              on your device. You may now close this window.</p>",
            html_escape(&app)
        )
    };
    tagged(html(StatusCode::OK, page), tid)
}

/// A client's display name, as the sign-in pages show it.
fn client_name(inner: &Inner, client_id: &str) -> String {
    let known = [
        (
            catalog::GRAPH_CLI_CLIENT_ID,
            "Microsoft Graph Command Line Tools",
        ),
        (
            "fb78d390-0c51-40cd-8e17-fdbfab77341b",
            "Microsoft Exchange REST API Based Powershell",
        ),
        (
            "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
            "Microsoft Azure CLI",
        ),
        (
            "1950a258-227b-4e31-a9cf-717495945fc2",
            "Microsoft Azure PowerShell",
        ),
        ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
    ];
    if let Some((_, name)) = known
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(client_id))
    {
        return name.to_string();
    }
    inner
        .tenants
        .iter()
        .flat_map(|t| &t.applications)
        .find(|a| a.app_id.to_string().eq_ignore_ascii_case(client_id))
        .map(|a| a.display_name.clone())
        .unwrap_or_else(|| client_id.to_string())
}

async fn device_code(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    if tenant.eq_ignore_ascii_case("consumers") {
        return bad(
            "invalid_request",
            90133,
            "Device Code flow is not supported under /common or /consumers endpoint.",
        );
    }
    let mut inner = state.lock();
    let Some(tid) = inner.resolve_tenant(&tenant) else {
        return tenant_not_found(&tenant);
    };
    let client_id = match required(&f, "client_id") {
        Ok(c) => c.to_string(),
        Err(r) => return tagged(r, tid),
    };
    if let Err(r) = check_public_client(&inner, tid, &client_id) {
        return tagged(r, tid);
    }
    let scope = f.get("scope").cloned().unwrap_or_default();
    if let Err(r) = resource_of(&scope) {
        return tagged(r, tid);
    }
    let t = inner.tenant(tid).expect("resolved");
    let sc = &t.scenario;
    let dc = DeviceCode {
        tenant: tid,
        client_id,
        scope,
        user_code: user_code(),
        issued: state.signer.clock().now_unix(),
        expires_in: sc.device_code_expires_in,
        interval: sc.device_code_interval,
        last_poll: None,
        polls: 0,
        approve_after: sc.device_code_approve_after_polls,
        outcome: DeviceOutcome::Pending,
        redeemed: false,
    };
    let device_code = random_code(96);
    let verification_uri = state.base.join("devicelogin").expect("joins");
    let body = json!({
        "user_code": dc.user_code,
        "device_code": device_code,
        "verification_uri": verification_uri.as_str(),
        "expires_in": dc.expires_in,
        "interval": dc.interval,
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {} to authenticate.",
            dc.user_code
        ),
    });
    inner.device_codes.insert(device_code, dc);
    tagged(Json(body).into_response(), tid)
}

async fn token(Ax(state): Ax<Arc<State>>, Path(tenant): Path<String>, body: Bytes) -> Response {
    let f = form(&body);
    let mut inner = state.lock();
    let Some(tid) = inner.resolve_tenant(&tenant) else {
        return tenant_not_found(&tenant);
    };
    let grant = f.get("grant_type").map(String::as_str).unwrap_or("");
    // A technician's sign-in must come from a public client the tenant knows.
    if matches!(
        grant,
        "urn:ietf:params:oauth:grant-type:device_code"
            | "device_code"
            | "refresh_token"
            | "authorization_code"
    ) && let Some(c) = f.get("client_id")
        && let Err(r) = check_public_client(&inner, tid, c)
    {
        return tagged(r, tid);
    }
    let r = match grant {
        "urn:ietf:params:oauth:grant-type:device_code" | "device_code" => {
            device_code_grant(&state, &mut inner, &f)
        }
        "refresh_token" => refresh_grant(&state, &mut inner, tid, &f),
        "client_credentials"
            if tenant.eq_ignore_ascii_case("common")
                || tenant.eq_ignore_ascii_case("organizations") =>
        {
            Err(bad(
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            ))
        }
        "client_credentials" => client_credentials(&state, &mut inner, tid, &f),
        "authorization_code" => authorization_code(&state, &mut inner, tid, &f),
        "" => Err(bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )),
        other => Err(bad(
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        )),
    };
    tagged(r.unwrap_or_else(|e| e), tid)
}

/// The resource a scope string asks for, and the delegated scopes named (empty for `.default`).
pub fn resource_of(scope: &str) -> Result<(String, Vec<String>), Response> {
    let mut resource: Option<String> = None;
    let mut names = vec![];
    for s in scope.split_whitespace() {
        if matches!(s, "openid" | "profile" | "offline_access" | "email") {
            continue;
        }
        let (r, name) = match s.rfind('/') {
            Some(i) if s.contains("://") || Uuid::parse_str(&s[..i]).is_ok() => {
                (s[..i].to_string(), s[i + 1..].to_string())
            }
            _ => ("https://graph.microsoft.com".to_string(), s.to_string()),
        };
        match &resource {
            Some(prev) if !prev.eq_ignore_ascii_case(&r) => {
                return Err(bad(
                    "invalid_scope",
                    28000,
                    "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope "
                        .to_string()
                        .as_str(),
                ));
            }
            _ => resource = Some(r),
        }
        if name != ".default" {
            names.push(name);
        }
    }
    Ok((
        resource.unwrap_or_else(|| "https://graph.microsoft.com".into()),
        names,
    ))
}

fn app_not_found(client_id: &str, t: &TenantState) -> Response {
    bad(
        "unauthorized_client",
        700016,
        &format!(
            "Application with identifier '{client_id}' was not found in the directory '{}'. This can \
             happen if the application has not been installed by the administrator of the tenant or \
             consented to by any user in the tenant. You may have sent your authentication request \
             to the wrong tenant.",
            t.scenario.display_name
        ),
    )
}

/// Public clients a technician signs in with: Microsoft's first-party ones (present in every
/// tenant), an application registered in the tenant, or a multi-tenant application registered
/// in any sandbox tenant (an MSP's own client app).
fn check_public_client(inner: &Inner, tid: Uuid, client_id: &str) -> Result<(), Response> {
    let t = inner.tenant(tid).expect("resolved tenant");
    let known = catalog::FIRST_PARTY_PUBLIC_CLIENTS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(client_id))
        || inner.tenants.iter().any(|other| {
            other.applications.iter().any(|a| {
                a.app_id.to_string().eq_ignore_ascii_case(client_id)
                    && (other.scenario.id == tid || a.sign_in_audience != "AzureADMyOrg")
            })
        });
    if known {
        Ok(())
    } else {
        Err(app_not_found(client_id, t))
    }
}

fn invalid_resource(resource: &str, t: &TenantState) -> Response {
    bad(
        "invalid_resource",
        500011,
        &format!(
            "The resource principal named {resource} was not found in the tenant named {}. This can \
             happen if the application has not been installed by the administrator of the tenant or \
             consented to by any user in the tenant. You might have sent your authentication request \
             to the wrong tenant.",
            t.scenario.display_name
        ),
    )
}

/// The resource's service principal in the tenant, if it exists.
fn resource_sp(state: &State, t: &TenantState, resource: &str) -> Option<Uuid> {
    let app_id = state.resource_app_id(resource)?;
    t.service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(app_id))
        .map(|s| s.id)
}

fn default_scopes(state: &State, resource: &str) -> &'static str {
    scopes_of_app(state.resource_app_id(resource))
}

/// The delegated scopes a token for the resource app carries.
fn scopes_of_app(app_id: Option<&str>) -> &'static str {
    match app_id {
        Some(catalog::GRAPH_APP_ID) => {
            "Application.ReadWrite.All AppRoleAssignment.ReadWrite.All DelegatedPermissionGrant.ReadWrite.All Directory.Read.All Organization.Read.All User.Read"
        }
        Some(catalog::EXCHANGE_APP_ID) => "Exchange.Manage",
        Some(catalog::O365_MANAGEMENT_APP_ID) => "ActivityFeed.Read ServiceHealth.Read",
        _ => "user_impersonation",
    }
}

/// What a token request adds to a user sign-in's answer besides the tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct SignInExtras {
    /// The authorization request's `nonce`, echoed in the id token.
    pub nonce: Option<String>,
    /// The request asked for `client_info=1` (MSAL does): answer `client_info`, the base64url
    /// JSON `{"uid": oid, "utid": tid}` that names the account in a token cache.
    pub client_info: bool,
}

impl SignInExtras {
    fn from_form(f: &HashMap<String, String>) -> SignInExtras {
        SignInExtras {
            nonce: None,
            client_info: f.get("client_info").is_some_and(|v| v == "1"),
        }
    }
}

/// Access, refresh and id tokens for the signed-in technician of tenant `tid`.
pub(crate) fn user_tokens(
    state: &State,
    inner: &Inner,
    tid: Uuid,
    client_id: &str,
    scope: &str,
    extras: &SignInExtras,
) -> Result<Value, Response> {
    let t = inner.tenant(tid).expect("resolved tenant");
    let user = &t.scenario.signed_in_user;
    let token_tid = user.home_tenant.unwrap_or(tid);
    let base = Claims {
        tid: token_tid.to_string(),
        oid: user.id.to_string(),
        appid: client_id.to_string(),
        upn: Some(t.upn()),
        name: Some(user.display_name.clone()),
        wids: t.user_role_ids(),
        amr: if user.mfa {
            vec!["pwd".into(), "mfa".into()]
        } else {
            vec!["pwd".into()]
        },
        iss: format!("https://sts.windows.net/{token_tid}/"),
        ..Claims::default()
    };
    mint_user(state, inner, base, scope, false, extras)
}

fn mint_user(
    state: &State,
    inner: &Inner,
    base: Claims,
    scope: &str,
    always_refresh: bool,
    extras: &SignInExtras,
) -> Result<Value, Response> {
    let (resource, names) = resource_of(scope)?;
    let token_tenant = Uuid::parse_str(&base.tid).ok();
    if let Some(t) = token_tenant.and_then(|id| inner.tenant(id))
        && resource_sp(state, t, &resource).is_none()
    {
        return Err(invalid_resource(&resource, t));
    }
    let now = state.signer.clock().now_unix();
    let scp = if names.is_empty() {
        default_scopes(state, &resource).to_string()
    } else {
        names.join(" ")
    };
    // The audience is the resource as asked for (`https://management.core.windows.net/` keeps
    // its slash, as in Microsoft's tokens).
    let access = Claims {
        aud: resource.clone(),
        scp: Some(scp.clone()),
        roles: vec![],
        ver: Some("1.0".into()),
        iat: now,
        nbf: now,
        exp: now + TOKEN_LIFETIME,
        ..base.clone()
    };
    let refresh = Claims {
        aud: REFRESH_AUDIENCE.into(),
        scp: None,
        iat: now,
        nbf: now,
        exp: now + 90 * 86400,
        ..base.clone()
    };
    // The id token as the v2.0 endpoint issues it: for the client, from the authority the
    // client signed in at (clients take `iss`'s host for the account's environment).
    let id = Claims {
        aud: base.appid.clone(),
        iss: super::discovery::issuer(state, &base.tid),
        sub: Some(pairwise_sub(&base.oid, &base.appid)),
        preferred_username: base.upn.clone(),
        ver: Some("2.0".into()),
        nonce: extras.nonce.clone(),
        scp: None,
        wids: vec![],
        iat: now,
        nbf: now,
        exp: now + TOKEN_LIFETIME,
        ..base.clone()
    };
    let scope_out: Vec<String> = scp
        .split_whitespace()
        .map(|s| format!("{}/{s}", access.aud))
        .collect();
    let mut v = json!({
        "token_type": "Bearer",
        "scope": scope_out.join(" "),
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": state.signer.sign(&access),
    });
    // As documented: a refresh token only for `offline_access`, an id token only for `openid`.
    let asked = |x: &str| scope.split_whitespace().any(|s| s == x);
    if asked("offline_access") || always_refresh {
        v["refresh_token"] = json!(state.signer.sign(&refresh));
    }
    if asked("openid") {
        v["id_token"] = json!(state.signer.sign(&id));
    }
    if extras.client_info {
        let info = json!({"uid": base.oid, "utid": base.tid});
        v["client_info"] = json!(B64.encode(info.to_string()));
    }
    Ok(v)
}

fn device_code_grant(
    state: &State,
    inner: &mut Inner,
    f: &HashMap<String, String>,
) -> Result<Response, Response> {
    let code = required(f, "device_code")?.to_string();
    let client_id = required(f, "client_id")?.to_string();
    let declines = inner
        .device_codes
        .get(&code)
        .and_then(|dc| inner.tenant(dc.tenant))
        .is_some_and(|t| t.scenario.device_code_decline);
    let Some(dc) = inner.device_codes.get_mut(&code) else {
        return Err(bad(
            "bad_verification_code",
            70018,
            "Invalid verification code due to User typing in wrong user code for device code flow. Authorization is not approved.",
        ));
    };
    if dc.client_id != client_id {
        return Err(bad(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'device_code' is not valid for this client.",
        ));
    }
    if dc.redeemed {
        return Err(bad(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'device_code' has already been used.",
        ));
    }
    let now = Instant::now();
    if state.signer.clock().now_unix() - dc.issued >= dc.expires_in as i64 {
        return Err(bad("expired_token", 70019, "Verification code expired."));
    }
    if let Some(last) = dc.last_poll
        && now.duration_since(last).as_secs_f64() + 0.05 < dc.interval as f64
    {
        dc.last_poll = Some(now);
        return Err(bad(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Polling too frequently: wait for the interval before polling again.",
        ));
    }
    dc.last_poll = Some(now);
    dc.polls += 1;
    if dc.outcome == DeviceOutcome::Pending && dc.polls > dc.approve_after {
        dc.outcome = if declines {
            DeviceOutcome::Declined
        } else {
            DeviceOutcome::Approved
        };
    }
    match dc.outcome {
        DeviceOutcome::Pending => Err(bad(
            "authorization_pending",
            70016,
            "The provided request has not yet been authorized by the user. The user must input their code.",
        )),
        DeviceOutcome::Declined => Err(bad(
            "authorization_declined",
            70000,
            "The user declined the sign-in request.",
        )),
        DeviceOutcome::Approved => {
            dc.redeemed = true;
            let (tid, scope) = (dc.tenant, dc.scope.clone());
            refused(inner, tid, &client_id, SignInFlow::DeviceCode)?;
            third_party_consent(state, inner, tid, &client_id, &scope, true)?;
            let v = user_tokens(
                state,
                inner,
                tid,
                &client_id,
                &scope,
                &SignInExtras::from_form(f),
            )?;
            Ok(Json(v).into_response())
        }
    }
}

fn refresh_grant(
    state: &State,
    inner: &mut Inner,
    tid: Uuid,
    f: &HashMap<String, String>,
) -> Result<Response, Response> {
    let rt = required(f, "refresh_token")?;
    let client_id = required(f, "client_id")?;
    if rt.split('.').count() != 3 {
        return Err(bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ));
    }
    let Some(claims) = state.signer.verify_signature(rt) else {
        return Err(bad(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
        ));
    };
    if claims.aud != REFRESH_AUDIENCE {
        return Err(bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        ));
    }
    if claims.exp <= state.signer.clock().now_unix() {
        return Err(bad(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued and was inactive for 90.00:00:00.",
        ));
    }
    if claims.appid != client_id {
        return Err(bad(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid. The refresh token was issued to a different client.",
        ));
    }
    if let Some(code) = Uuid::parse_str(&claims.tid)
        .ok()
        .and_then(|t| inner.tenant(t))
        .and_then(|t| t.scenario.refresh_error)
    {
        let tid = Uuid::parse_str(&claims.tid).expect("parsed");
        return Err(refusal(inner, tid, client_id, code));
    }
    let scope = f.get("scope").cloned().unwrap_or_default();
    let original = claims.clone();
    let claims = gdap_claims(state, inner, tid, client_id, claims)?;
    let gdap = claims.tid != original.tid;
    if !gdap {
        third_party_consent(state, inner, tid, client_id, &scope, false)?;
    }
    let mut v = mint_user(
        state,
        inner,
        claims,
        &scope,
        true,
        &SignInExtras::from_form(f),
    )?;
    // A refresh token names the user, not the tenant it was last redeemed at: the one a
    // customer's authority rotates stays the partner technician's (home tenant, oid), so it
    // still signs in at the MSP's authority and at every other customer, as Entra's does.
    if gdap {
        let now = state.signer.clock().now_unix();
        v["refresh_token"] = json!(state.signer.sign(&Claims {
            iat: now,
            nbf: now,
            exp: now + 90 * 86400,
            ..original
        }));
    }
    Ok(Json(v).into_response())
}

/// A partner technician's refresh token redeemed at a customer's authority (GDAP): the token
/// is the customer's (`tid`), carries the roles of the technician's active access assignments
/// there (`wids`) and the partner as identity provider (`idp`), and no `oid`/`upn` of the
/// customer's. Other refresh tokens pass unchanged.
fn gdap_claims(
    state: &State,
    inner: &Inner,
    tid: Uuid,
    client_id: &str,
    claims: Claims,
) -> Result<Claims, Response> {
    let Some(p) = inner.partner.as_ref() else {
        return Ok(claims);
    };
    let msp = p.scenario.tenant;
    if claims.tid != msp.to_string() || tid == msp {
        return Ok(claims);
    }
    let user = Uuid::parse_str(&claims.oid).unwrap_or_default();
    let now = state.signer.clock().now_unix();
    match super::gdap::customer_sign_in(inner, p, user, tid, client_id, now) {
        Ok(roles) => Ok(Claims {
            tid: tid.to_string(),
            oid: String::new(),
            upn: None,
            idp: Some(format!("https://sts.windows.net/{msp}/")),
            wids: roles,
            iss: format!("https://sts.windows.net/{tid}/"),
            ..claims
        }),
        Err(50020) => {
            let t = inner.tenant(tid).expect("resolved tenant");
            Err(bad(
                "invalid_request",
                50020,
                &format!(
                    "User account '{}' from identity provider 'https://sts.windows.net/{msp}/' does not exist in tenant '{}' and cannot access the application '{client_id}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
                    claims.upn.as_deref().unwrap_or(""),
                    t.scenario.display_name,
                    client_name(inner, client_id)
                ),
            ))
        }
        Err(code) => Err(refusal(inner, tid, client_id, code)),
    }
}

fn client_credentials(
    state: &State,
    inner: &mut Inner,
    tid: Uuid,
    f: &HashMap<String, String>,
) -> Result<Response, Response> {
    let client_id = required(f, "client_id")?.to_string();
    let scope = required(f, "scope")?.to_string();
    let Some(secret) = f.get("client_secret").filter(|s| !s.is_empty()) else {
        return Err(bad(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if !scope.trim().ends_with("/.default") || scope.split_whitespace().count() != 1 {
        return Err(bad(
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    let (resource, _) = resource_of(&scope)?;
    let t = inner.tenant_mut(tid).expect("resolved");
    let not_found = || app_not_found(&client_id, t);
    let Some(app) = t
        .applications
        .iter()
        .find(|a| a.app_id.to_string().eq_ignore_ascii_case(&client_id))
    else {
        return Err(not_found());
    };
    let invalid_secret = || {
        aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the \
                 client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    };
    let now = OffsetDateTime::now_utc();
    let mut matched = None;
    for pc in &app.password_credentials {
        if t.secrets.get(&pc.key_id).is_some_and(|s| &s.text == secret) {
            matched = Some(pc.clone());
        }
    }
    let Some(pc) = matched else {
        return Err(invalid_secret());
    };
    let expired = time::OffsetDateTime::parse(
        &pc.end_date_time,
        &time::format_description::well_known::Rfc3339,
    )
    .is_ok_and(|end| end <= now);
    if expired {
        return Err(bad(
            "invalid_client",
            7000222,
            &format!("The provided client secret keys for app '{client_id}' are expired."),
        ));
    }
    let app_id = app.app_id;
    let s = t.secrets.get_mut(&pc.key_id).expect("matched");
    if s.failures_left > 0 {
        s.failures_left -= 1;
        return Err(invalid_secret());
    }
    let Some(sp) = t
        .service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(&app_id.to_string()))
    else {
        return Err(bad(
            "invalid_client",
            7000229,
            &format!(
                "The client application {client_id} is missing service principal in the tenant {tid}."
            ),
        ));
    };
    let Some(resource_id) = resource_sp(state, t, &resource) else {
        return Err(invalid_resource(&resource, t));
    };
    // A resource principal created moments ago is not seen by token issuance yet.
    if let Some(app) = state.resource_app_id(&resource)
        && let Some(left) = t.resource_delay.get_mut(app)
        && *left > 0
    {
        *left -= 1;
        return Err(invalid_resource(&resource, t));
    }
    let resource_sp = t
        .service_principals
        .iter()
        .find(|s| s.id == resource_id)
        .expect("found");
    let mut roles: Vec<String> = t
        .assignments
        .iter()
        .filter(|a| a.principal_id == sp.id && a.resource_id == resource_id)
        .filter_map(|a| {
            resource_sp
                .app_roles
                .iter()
                .find(|r| r.id == a.app_role_id.to_string())
                .map(|r| r.value.clone())
        })
        .collect();
    roles.sort();
    roles.dedup();
    let now = state.signer.clock().now_unix();
    let claims = Claims {
        aud: resource.clone(),
        iss: format!("https://sts.windows.net/{tid}/"),
        tid: tid.to_string(),
        oid: sp.id.to_string(),
        appid: client_id.clone(),
        roles,
        iat: now,
        nbf: now,
        exp: now + TOKEN_LIFETIME,
        ..Claims::default()
    };
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": state.signer.sign(&claims),
    }))
    .into_response())
}

fn is_loopback(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    })
}

/// `GET {tenant}/oauth2/v2.0/authorize`. A web browser (one that accepts `text/html`) gets the
/// sign-in page, as Entra shows one: a form that signs the scenario's technician in and that
/// submits itself, as Entra's pages do for an account already signed in. Anything else is
/// signed in at once and redirected back, as with a single sign-on session.
async fn authorize(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    headers: axum::http::HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    authorize_request(&state, &tenant, q.unwrap_or_default(), browser)
}

/// `POST {tenant}/oauth2/v2.0/authorize`: the sign-in page's form (`request`: the original
/// authorization request's query), submitted.
async fn authorize_submit(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let f = form(&body);
    let q = f.get("request").cloned().unwrap_or_default();
    authorize_request(&state, &tenant, q, false)
}

/// `GET {tenant}/v2.0/adminconsent?client_id=…&scope=…&redirect_uri=…[&state=…]` ("Admin
/// consent on the Microsoft identity platform"): the tenant's signed-in user, when an admin
/// who may consent for the organization (Global Administrator, Privileged Role Administrator,
/// Cloud Application Administrator), approves at once (the "one click"): a multi-tenant
/// app's service principal appears in the tenant (in effect after the partner scenario's
/// `consentDelaySeconds`) and the browser goes to `redirect_uri?admin_consent=True&tenant=…
/// &scope=…&state=…`. A user who may not consent gets `error=access_denied`; an app that is
/// not multi-tenant AADSTS700016.
async fn admin_consent(
    Ax(state): Ax<Arc<State>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let f = form(q.unwrap_or_default().as_bytes());
    let now = state.signer.clock().now_unix();
    let mut inner = state.lock();
    let Some(tid) = inner.resolve_tenant(&tenant) else {
        return tenant_not_found(&tenant);
    };
    let r = (|| {
        let client_id = required(&f, "client_id")?.to_string();
        let scope = required(&f, "scope")?.to_string();
        let redirect_uri = required(&f, "redirect_uri")?.to_string();
        if url::Url::parse(&redirect_uri).is_err() {
            return Err(bad(
                "invalid_request",
                50011,
                &format!("The redirect URI '{redirect_uri}' is not valid."),
            ));
        }
        let Some((name, owner)) = super::partner_center::multi_tenant_app(&inner, &client_id)
        else {
            return Err(bad(
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{tid}'."
                ),
            ));
        };
        let state_param = f.get("state").cloned().unwrap_or_default();
        let roles = inner.tenant(tid).expect("resolved").user_role_ids();
        let may = [
            catalog::GLOBAL_ADMINISTRATOR,
            catalog::PRIVILEGED_ROLE_ADMINISTRATOR,
            catalog::CLOUD_APPLICATION_ADMINISTRATOR,
        ];
        if !roles.iter().any(|r| may.contains(&r.as_str())) {
            return Ok(respond(
                &redirect_uri,
                "query",
                &[
                    ("error", "access_denied".to_string()),
                    (
                        "error_description",
                        "AADSTS90094: An administrator of the organization must consent for this application.".to_string(),
                    ),
                    ("state", state_param),
                ],
            ));
        }
        super::partner_center::consent_app(&mut inner, tid, &client_id, &name, owner, now);
        Ok(respond(
            &redirect_uri,
            "query",
            &[
                ("admin_consent", "True".to_string()),
                ("tenant", tid.to_string()),
                ("scope", scope),
                ("state", state_param),
            ],
        ))
    })();
    match r {
        Ok(resp) | Err(resp) => tagged(resp, tid),
    }
}

fn sign_in_page(inner: &Inner, tid: Uuid, client_id: &str, query: &str) -> Response {
    let t = inner.tenant(tid).expect("resolved tenant");
    let page = format!(
        r#"<!doctype html><html><head><title>Sign in to your account</title></head><body><h1>Sign in</h1><p>{app} wants to sign you in to {tenant}.</p><form method="POST" name="signin" action="authorize"><input type="hidden" name="request" value="{query}" /><p>Account: <strong>{upn}</strong></p><input type="submit" id="idSIButton9" value="Sign in" /></form><p>This is the hal-onboard sandbox: there is no password; the page signs the scenario's technician in by itself.</p><script>document.forms[0].submit();</script></body></html>"#,
        app = html_escape(&client_name(inner, client_id)),
        tenant = html_escape(&t.scenario.display_name),
        upn = html_escape(&t.upn()),
        query = html_escape(query),
    );
    html(StatusCode::OK, page)
}

fn authorize_request(state: &State, tenant: &str, q: String, page: bool) -> Response {
    let f = form(q.as_bytes());
    let mut inner = state.lock();
    let Some(tid) = inner.resolve_tenant(tenant) else {
        return tenant_not_found(tenant);
    };
    let r = (|| {
        let client_id = required(&f, "client_id")?.to_string();
        check_public_client(&inner, tid, &client_id)?;
        let redirect_uri = required(&f, "redirect_uri")?.to_string();
        if !is_loopback(&redirect_uri) {
            return Err(bad(
                "invalid_request",
                50011,
                &format!(
                    "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
                ),
            ));
        }
        let response_type = f.get("response_type").map(String::as_str).unwrap_or("");
        let mode = f
            .get("response_mode")
            .map(String::as_str)
            .unwrap_or("query");
        if response_type != "code" {
            return Ok(respond(
                &redirect_uri,
                mode,
                &[
                    ("error", "unsupported_response_type".to_string()),
                    (
                        "error_description",
                        "AADSTS70005: response_type must be 'code'.".to_string(),
                    ),
                ],
            ));
        }
        let scope = f.get("scope").cloned().unwrap_or_default();
        resource_of(&scope)?;
        let challenge = f.get("code_challenge").cloned();
        if challenge.is_some() && f.get("code_challenge_method").map(String::as_str) != Some("S256")
        {
            return Err(bad(
                "invalid_request",
                50147,
                "The code_challenge_method must be 'S256'.",
            ));
        }
        if page {
            return Ok(sign_in_page(&inner, tid, &client_id, &q));
        }
        let code = random_code(64);
        inner.auth_codes.insert(
            code.clone(),
            AuthCode {
                tenant: tid,
                client_id,
                redirect_uri: redirect_uri.clone(),
                scope,
                challenge,
                nonce: f.get("nonce").cloned(),
                issued: state.signer.clock().now_unix(),
            },
        );
        let mut params = vec![("code", code)];
        if let Some(s) = f.get("state") {
            params.push(("state", s.clone()));
        }
        params.push(("session_state", Uuid::new_v4().to_string()));
        Ok(respond(&redirect_uri, mode, &params))
    })();
    tagged(r.unwrap_or_else(|e| e), tid)
}

/// Sends the authorization response back by `response_mode`: `query` (the default) and
/// `fragment` redirect, `form_post` answers Entra's self-submitting form, which the browser
/// posts to the redirect URI.
fn respond(redirect_uri: &str, mode: &str, params: &[(&str, String)]) -> Response {
    let mut back = url::Url::parse(redirect_uri).expect("checked");
    match mode {
        "form_post" => {
            let inputs: String = params
                .iter()
                .map(|(k, v)| {
                    format!(
                        r#"<input type="hidden" name="{}" value="{}" />"#,
                        html_escape(k),
                        html_escape(v)
                    )
                })
                .collect();
            let page = format!(
                r#"<html><head><title>Working...</title></head><body><form method="POST" name="hiddenform" action="{}">{inputs}<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit" /></noscript></form><script language="javascript">document.forms[0].submit();</script></body></html>"#,
                html_escape(redirect_uri)
            );
            html(StatusCode::OK, page)
        }
        "fragment" => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            back.set_fragment(Some(&fragment));
            redirect(&back)
        }
        _ => {
            back.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            redirect(&back)
        }
    }
}

fn redirect(to: &url::Url) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, to.as_str().to_string())],
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET {tenant}/oauth2/v2.0/logout`: there is no session to end; back to a loopback
/// `post_logout_redirect_uri`, else a page saying so.
async fn logout(RawQuery(q): RawQuery) -> Response {
    let f = form(q.unwrap_or_default().as_bytes());
    match f.get("post_logout_redirect_uri") {
        Some(uri) if is_loopback(uri) => redirect(&url::Url::parse(uri).expect("checked")),
        _ => html(
            StatusCode::OK,
            "<!doctype html><title>Sandbox sign-out</title><p>You signed out of your account.              It's a good idea to close all browser windows.</p>"
                .into(),
        ),
    }
}

fn authorization_code(
    state: &State,
    inner: &mut Inner,
    _tid: Uuid,
    f: &HashMap<String, String>,
) -> Result<Response, Response> {
    let code = required(f, "code")?.to_string();
    let client_id = required(f, "client_id")?.to_string();
    let Some(ac) = inner.auth_codes.get(&code).cloned() else {
        return Err(bad(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    };
    if state.signer.clock().now_unix() - ac.issued > 600 {
        return Err(bad(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    if ac.client_id != client_id
        || f.get("redirect_uri").map(String::as_str) != Some(ac.redirect_uri.as_str())
    {
        return Err(bad(
            "invalid_grant",
            50011,
            "The redirect URI or client ID of the token request does not match the authorization request.",
        ));
    }
    if let Some(challenge) = &ac.challenge {
        let verifier = f.get("code_verifier").map(String::as_str).unwrap_or("");
        let computed = B64.encode(Sha256::digest(verifier.as_bytes()));
        if verifier.is_empty() || &computed != challenge {
            return Err(bad(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    inner.auth_codes.remove(&code);
    refused(inner, ac.tenant, &client_id, SignInFlow::Browser)?;
    third_party_consent(state, inner, ac.tenant, &client_id, &ac.scope, true)?;
    let extras = SignInExtras {
        nonce: ac.nonce.clone(),
        ..SignInExtras::from_form(f)
    };
    let v = user_tokens(state, inner, ac.tenant, &client_id, &ac.scope, &extras)?;
    Ok(Json(v).into_response())
}

/// The scenario's `signInError` for this flow, if it has one.
fn refused(inner: &Inner, tid: Uuid, client_id: &str, flow: SignInFlow) -> Result<(), Response> {
    let t = inner.tenant(tid).expect("resolved tenant");
    match t.scenario.sign_in_error {
        Some(code) if t.scenario.sign_in_error_flow.is_none_or(|f| f == flow) => {
            Err(refusal(inner, tid, client_id, code))
        }
        _ => Ok(()),
    }
}

/// Entra's answer to a refused sign-in, by AADSTS code, in Entra's words (Microsoft Entra
/// authentication and authorization error codes).
pub fn refusal(inner: &Inner, tid: Uuid, client_id: &str, code: u32) -> Response {
    let t = inner.tenant(tid).expect("resolved tenant");
    let upn = t.upn();
    let name = t.scenario.display_name.clone();
    let app = client_name(inner, client_id);
    let graph = catalog::GRAPH_APP_ID;
    let now = super::state::iso(OffsetDateTime::now_utc());
    let (error, message) = match code {
        53003 => (
            "invalid_grant",
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.".to_string(),
        ),
        53000 => (
            "invalid_grant",
            "Device is not in required device state: compliant. Conditional Access policy requires a compliant device, and the device is not compliant. The user must enroll their device with an approved MDM provider like Intune.".to_string(),
        ),
        50076 => (
            "invalid_grant",
            format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{graph}'."),
        ),
        50079 => (
            "invalid_grant",
            format!("Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{graph}'."),
        ),
        50020 => (
            "invalid_request",
            format!("User account '{upn}' from identity provider 'live.com' does not exist in tenant '{name}' and cannot access the application '{client_id}'({app}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account."),
        ),
        90072 => (
            "invalid_request",
            format!("User account '{upn}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{name}' and cannot access the application '{client_id}'({app}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.", Uuid::new_v4()),
        ),
        90002 => return tenant_not_found(t.scenario.default_domain()),
        50105 => (
            "invalid_grant",
            format!("Your administrator has configured the application {app} ('{client_id}') to block users unless they are specifically granted ('assigned') access to the application. The signed in user '{upn}' is blocked because they are not a direct member of a group with access, nor had access directly assigned by an administrator. Please contact your administrator to assign access to this application."),
        ),
        7000112 => (
            "unauthorized_client",
            format!("Application '{client_id}'({app}) is disabled."),
        ),
        65001 => (
            "invalid_grant",
            format!("The user or administrator has not consented to use the application with ID '{client_id}' named '{app}'. Send an interactive authorization request for this user and resource."),
        ),
        65002 => (
            "invalid_grant",
            format!("Consent between first party application '{client_id}' and first party resource '{graph}' must be configured via preauthorization - applications owned and operated by Microsoft must get approval from the API owner before requesting tokens for that API."),
        ),
        500011 => return invalid_resource("https://graph.microsoft.com", t),
        50011 => (
            "invalid_request",
            format!("The redirect URI 'http://localhost' specified in the request does not match the redirect URIs configured for the application '{client_id}'."),
        ),
        700082 => (
            "invalid_grant",
            "The refresh token has expired due to inactivity. The token was issued and was inactive for 90.00:00:00.".to_string(),
        ),
        50173 => (
            "invalid_grant",
            format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{now}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{now}'."),
        ),
        other => ("invalid_grant", format!("Sign-in refused (scenario signInError {other}).")),
    };
    bad(error, code, &message)
}

/// Marks a device code (by user code) approved or declined; false if unknown.
pub fn settle_device_code(inner: &mut Inner, user_code: &str, approve: bool) -> bool {
    let mut found = false;
    for dc in inner.device_codes.values_mut() {
        if dc.user_code.eq_ignore_ascii_case(user_code) {
            dc.outcome = if approve {
                DeviceOutcome::Approved
            } else {
                DeviceOutcome::Declined
            };
            found = true;
        }
    }
    found
}

/// Whether `client_id` is a third party's app in tenant `tid`: a multi-tenant app registered
/// in another tenant (an MSP's partner app), not Microsoft's and not the tenant's own.
fn third_party_client(inner: &Inner, tid: Uuid, client_id: &str) -> bool {
    !catalog::FIRST_PARTY_PUBLIC_CLIENTS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(client_id))
        && !inner
            .tenant(tid)
            .is_some_and(|t| t.applications.iter().any(|a| same_app(a, client_id)))
        && inner.tenants.iter().any(|t| {
            t.scenario.id != tid
                && t.applications
                    .iter()
                    .any(|a| same_app(a, client_id) && a.sign_in_audience != "AzureADMyOrg")
        })
}

fn same_app(a: &super::state::Application, client_id: &str) -> bool {
    a.app_id.to_string().eq_ignore_ascii_case(client_id)
}

/// Delegated consent for a third party's app in a direct sign-in ("Permissions and consent",
/// "Refresh tokens in the Microsoft identity platform"): a token for resource R needs a
/// delegated grant of the app to R in the tenant. An interactive sign-in without one shows the
/// consent prompt for the scopes asked for, and only those: the signed-in user accepts when an
/// administrator who may consent for the organization (the grant is then the tenant's), else
/// AADSTS65001. A refresh token redeemed for a resource without a grant is AADSTS65001 ("Send
/// an interactive authorization request for this user and resource"). GDAP sign-ins are
/// checked in `gdap::customer_sign_in`; first-party and the tenant's own apps are not here.
fn third_party_consent(
    state: &State,
    inner: &mut Inner,
    tid: Uuid,
    client_id: &str,
    scope: &str,
    interactive: bool,
) -> Result<(), Response> {
    if !third_party_client(inner, tid, client_id) {
        return Ok(());
    }
    let (resource, names) = resource_of(scope)?;
    let t = inner.tenant(tid).expect("resolved tenant");
    let Some(resource_id) = resource_sp(state, t, &resource) else {
        return Ok(()); // mint_user answers 500011
    };
    let client_sp = t
        .service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(client_id))
        .map(|s| s.id);
    let user = t.scenario.signed_in_user.id;
    let granted = client_sp.is_some_and(|c| {
        t.oauth2_grants.iter().any(|g| {
            g.client_id == c
                && g.resource_id == resource_id
                && (g.consent_type == "AllPrincipals" || g.principal_id == Some(user))
        })
    });
    if granted {
        return Ok(());
    }
    let may = [
        catalog::GLOBAL_ADMINISTRATOR,
        catalog::PRIVILEGED_ROLE_ADMINISTRATOR,
        catalog::CLOUD_APPLICATION_ADMINISTRATOR,
    ];
    if !interactive || !t.user_role_ids().iter().any(|r| may.contains(&r.as_str())) {
        return Err(refusal(inner, tid, client_id, 65001));
    }
    let Some((name, owner)) = super::partner_center::multi_tenant_app(inner, client_id) else {
        return Err(refusal(inner, tid, client_id, 65001));
    };
    let now = state.signer.clock().now_unix();
    super::partner_center::add_service_principal(inner, tid, client_id, &name, owner, now);
    let scope = if names.is_empty() {
        default_scopes(state, &resource).to_string()
    } else {
        names.join(" ")
    };
    grant_delegated(inner, tid, client_id, resource_id, &scope);
    Ok(())
}

/// An `AllPrincipals` delegated grant of `client_id` (its service principal) to `resource_id`.
pub(crate) fn grant_delegated(
    inner: &mut Inner,
    tid: Uuid,
    client_id: &str,
    resource_id: Uuid,
    scope: &str,
) {
    let Some(t) = inner.tenant_mut(tid) else {
        return;
    };
    let Some(client) = t
        .service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(client_id))
        .map(|s| s.id)
    else {
        return;
    };
    if t.oauth2_grants.iter().any(|g| {
        g.client_id == client && g.resource_id == resource_id && g.consent_type == "AllPrincipals"
    }) {
        return;
    }
    t.oauth2_grants.push(super::state::OAuth2Grant {
        id: B64.encode(Uuid::new_v4().as_bytes()),
        client_id: client,
        consent_type: "AllPrincipals".into(),
        principal_id: None,
        resource_id,
        scope: scope.to_string(),
    });
}

/// Admin consent to an app's static permissions (`/.default`, Partner Center's consent): an
/// `AllPrincipals` grant to every resource the app's registration lists that the tenant has.
pub(crate) fn grant_static(inner: &mut Inner, tid: Uuid, client_id: &str) {
    let resources: Vec<String> = inner
        .tenants
        .iter()
        .flat_map(|t| t.applications.iter())
        .filter(|a| same_app(a, client_id))
        .flat_map(|a| a.required_resource_access.iter())
        .map(|r| r.resource_app_id.clone())
        .collect();
    for app in resources {
        let Some((sp, scope)) = inner.tenant(tid).and_then(|t| {
            t.service_principals
                .iter()
                .find(|s| s.app_id.eq_ignore_ascii_case(&app))
                .map(|s| (s.id, scopes_of_app(catalog::resource_app_id(&app))))
        }) else {
            continue;
        };
        grant_delegated(inner, tid, client_id, sp, scope);
    }
}
