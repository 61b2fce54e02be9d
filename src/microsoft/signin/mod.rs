//! Signing the technician in to the customer's tenant.
//!
//! Three sources, one shape: each is an `azure_core::credentials::TokenCredential`, so Graph
//! (and the Exchange bridge) take any `Arc<dyn TokenCredential>`.
//!
//! - [`UserCredential`] with [`AuthMethod::DeviceCode`] (the default; works over SSH) or
//!   [`AuthMethod::Browser`] (authorization code + PKCE on a one-shot loopback redirect, for
//!   tenants whose Conditional Access blocks the device code flow).
//! - [`azure_cli`]: azure_identity's `AzureCliCredential`, for technicians already signed in
//!   with `az login`.
//!
//! A client never prints: the code, the URL and the waiting are reported to a
//! [`SignInObserver`], which the command implements with `Ui`. The refresh token is held in
//! memory and written to the [`SecretStore`] only once the caller has checked the tenant
//! ([`UserCredential::keep_signed_in`]); access tokens never leave memory. See docs/signin.md.

pub mod browser;
pub mod claims;
pub mod device_code;
pub mod discovery;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use url::Url;
use uuid::Uuid;

pub use claims::TokenClaims;

use crate::secrets::{SecretError, SecretStore, SecretText};

/// Microsoft Graph Command Line Tools, a first-party public client present in every tenant.
pub const GRAPH_CLI_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
/// Exchange Online PowerShell's public client (for the Exchange bridge).
pub const EXCHANGE_PS_CLIENT_ID: &str = "fb78d390-0c51-40cd-8e17-fdbfab77341b";

/// The least delegated Graph permissions that onboard a tenant (docs/signin.md says why each).
pub const GRAPH_DELEGATED_SCOPES: &[&str] = &[
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
];

/// The Graph scopes to request, qualified by the cloud's Graph resource
/// (an unqualified scope would mean the global cloud's Graph).
pub fn graph_scopes(graph_resource: &str) -> Vec<String> {
    GRAPH_DELEGATED_SCOPES
        .iter()
        .map(|s| format!("{}/{s}", graph_resource.trim_end_matches('/')))
        .collect()
}

/// How the technician signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AuthMethod {
    /// Device code: a code to enter at microsoft.com/devicelogin on any device.
    #[default]
    DeviceCode,
    /// A browser on this machine (authorization code + PKCE, loopback redirect).
    Browser,
    /// Reuse `az login` (Azure CLI).
    AzureCli,
}

/// What the sign-in shows the technician. Implemented by the command with `Ui`.
pub trait SignInObserver: Send + Sync {
    /// A device code to enter; called once per device code flow.
    fn device_code(&self, prompt: &DeviceCodePrompt);
    /// A URL to open in a browser (the browser flow). Return true if a browser was opened.
    fn browser_url(&self, url: &Url) -> bool;
    /// Still waiting for the technician (a poll said `authorization_pending` or `slow_down`).
    fn waiting(&self, _polls: u32, _slowed_down: bool) {}
    /// Signed in (the interactive part is over).
    fn signed_in(&self, _user: Option<&str>) {}
    /// Why no browser can be opened here, if none can: `--auth browser` then signs in with a
    /// device code instead ([`SignInObserver::browser_fallback`]).
    fn no_browser(&self) -> Option<String> {
        None
    }
    /// `--auth browser` signs in with a device code instead, because of `why`.
    fn browser_fallback(&self, _why: &str) {}
    /// The browser flow waits this long for the browser to come back.
    fn browser_waiting(&self, _limit: Duration) {}
    /// The saved sign-in was refused (`why`, in plain words): an interactive sign-in follows.
    fn saved_sign_in_refused(&self, _why: &str) {}
    /// The interactive sign-in ended, however it ended (stop waiting for a key press).
    fn finished(&self) {}
}

/// An observer that shows nothing (tests, library callers with a token already kept).
pub struct SilentObserver;
impl SignInObserver for SilentObserver {
    fn device_code(&self, _prompt: &DeviceCodePrompt) {}
    fn browser_url(&self, _url: &Url) -> bool {
        false
    }
}

/// What the technician must enter, and where.
#[derive(Debug, Clone)]
pub struct DeviceCodePrompt {
    pub user_code: String,
    pub verification_uri: String,
    pub expires_at: OffsetDateTime,
    /// Microsoft's own sentence, localized.
    pub message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("cannot reach the Microsoft sign-in service at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the sign-in was declined")]
    Declined,
    #[error("the device code expired before the sign-in finished")]
    Expired,
    /// `bad_verification_code`: Microsoft did not recognise the device code hal-onboard sent
    /// while polling (a client fault: the code the technician types never reaches the token
    /// endpoint).
    #[error("Microsoft did not recognise the device code hal-onboard sent (bad_verification_code)")]
    BadVerificationCode,
    #[error("Microsoft refused the sign-in: {}", refusal(*.code, .description))]
    Refused {
        /// The OAuth error (`invalid_grant`, ...).
        error: String,
        /// Microsoft's AADSTS number, when given.
        code: Option<u64>,
        description: String,
        /// The flow that was refused (Conditional Access: the other flow is the way out).
        flow: Option<AuthMethod>,
    },
    #[error("the sign-in service sent something unexpected: {0}")]
    Protocol(String),
    #[error("the browser sign-in failed: {0}")]
    Browser(String),
    #[error("no answer from the browser within {}", minutes(*.0))]
    BrowserTimeout(Duration),
    #[error("the Azure CLI (`az`) is not installed, or not on PATH")]
    AzNotFound,
    #[error("the Azure CLI is not signed in")]
    AzNotSignedIn { tenant: String },
    #[error("the Azure CLI is signed in, but not to {tenant}: {}", first_sentence(.detail))]
    AzOtherTenant { tenant: String, detail: String },
    #[error("cannot keep the sign-in in the keyring")]
    Keyring(#[source] SecretError),
    /// A credential that may not prompt ([`SignInOptions::silent_only`]) has no saved sign-in.
    #[error("there is no saved sign-in")]
    NoSavedSignIn,
    #[error(transparent)]
    AzureCli(azure_core::Error),
}

impl SignInError {
    /// What the technician can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SignInError::Unreachable { .. } => "Check the network, HTTPS_PROXY and HAL_ONBOARD_CA_CERT, then run the command again.".into(),
            SignInError::Declined => "Run the command again and approve the sign-in.".into(),
            SignInError::Expired => "Run the command again and enter the code within its time (about 15 minutes).".into(),
            SignInError::BadVerificationCode => "This is hal-onboard's fault, not something you typed: run the command again (it asks Microsoft for a new code). If it happens again, sign in with `--auth browser` and report it with `-v` output.".into(),
            SignInError::Refused { code: Some(code), flow, .. } if aadsts(*code).is_some() => {
                aadsts(*code).expect("known").next_step(*flow).to_string()
            }
            SignInError::Refused { code: Some(700016 | 900023), .. } => {
                "Check the tenant name (a verified domain or the tenant GUID), and --client-id / HAL_ONBOARD_CLIENT_ID.".into()
            }
            SignInError::Refused { error, .. } if error == "invalid_grant" => {
                "Run the command again to sign in afresh.".into()
            }
            SignInError::Browser(_) | SignInError::BrowserTimeout(_) => "Sign in with a device code instead: run the same command with `--auth device-code` (the code can be entered on any device).".into(),
            SignInError::Keyring(_) => "Unlock the OS keyring, or run on a machine that has one.".into(),
            SignInError::AzNotFound => "Install the Azure CLI (https://aka.ms/installazurecli) and run `az login`, or sign in without it: `--auth device-code` (the default) or `--auth browser`.".into(),
            SignInError::AzNotSignedIn { tenant } | SignInError::AzOtherTenant { tenant, .. } => format!(
                "Run `az login --tenant {tenant} --allow-no-subscriptions`, then the same command again; or sign in without the Azure CLI: `--auth device-code` (the default) or `--auth browser`."
            ),
            SignInError::AzureCli(_) => "Run `az login --tenant <tenant> --allow-no-subscriptions`, or drop --auth azure-cli.".into(),
            _ => return None,
        })
    }

    /// The same error, knowing which flow was refused.
    fn during(self, method: AuthMethod) -> SignInError {
        match self {
            SignInError::Refused {
                error,
                code,
                description,
                flow: None,
            } => SignInError::Refused {
                error,
                code,
                description,
                flow: Some(method),
            },
            e => e,
        }
    }
}

/// "5 minutes", "30 seconds".
pub fn minutes(d: Duration) -> String {
    match d.as_secs() {
        60 => "1 minute".into(),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".into(),
        s => format!("{s} seconds"),
    }
}

/// An AADSTS code in plain words with the next step: the one table (docs/signin.md repeats it).
#[derive(Debug, Clone, Copy)]
pub struct Aadsts {
    pub codes: &'static [u64],
    /// What happened, in the technician's words.
    pub means: &'static str,
    /// What to do next.
    pub next: &'static str,
    /// What to do next when the browser flow was the one refused (else `next` holds).
    pub next_after_browser: Option<&'static str>,
}

impl Aadsts {
    pub fn next_step(&self, flow: Option<AuthMethod>) -> &'static str {
        match (flow, self.next_after_browser) {
            (Some(AuthMethod::Browser), Some(n)) => n,
            _ => self.next,
        }
    }
}

/// Every AADSTS code a technician meets while signing in, in plain words with the next step.
pub const AADSTS: &[Aadsts] = &[
    Aadsts {
        codes: &[53003],
        means: "the customer's Conditional Access policies block this sign-in",
        next: "Sign in with a browser on this machine instead of a device code: run the same command with `--auth browser`; if that is blocked too, ask the customer to exclude your account or this location from the policy.",
        next_after_browser: Some(
            "Sign in with a device code instead: run the same command with `--auth device-code`; if that is blocked too, ask the customer to exclude your account or this location from the policy.",
        ),
    },
    Aadsts {
        codes: &[53000],
        means: "the customer's Conditional Access requires a compliant or managed device, and this one is not",
        next: "Sign in with a browser on a device the customer manages: run the same command there with `--auth browser`; or ask the customer to exclude your account from the device policy.",
        next_after_browser: Some(
            "Sign in with a device code and enter it on a device the customer manages: run the same command with `--auth device-code`; or ask the customer to exclude your account from the device policy.",
        ),
    },
    Aadsts {
        codes: &[50076, 50079],
        means: "the account must use (or first register) multi-factor authentication",
        next: "Complete the multi-factor prompt in the browser when you sign in (register a method at https://aka.ms/mfasetup first if asked), then run the same command again.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[50020, 90072],
        means: "the account you signed in with is not in this tenant: a guest or an MSP (partner) account",
        next: "Sign in with the customer's own administrator account (an account of that tenant, e.g. admin@customer.onmicrosoft.com), in a private browser window if another account is remembered; or, as an MSP with GDAP relationships, use partner mode (`hal-onboard partner login`, docs/partner.md).",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[90002],
        means: "there is no tenant of that name",
        next: "Check the spelling of the tenant (a verified domain such as contoso.onmicrosoft.com, or the tenant GUID) and --cloud, then run the command again.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[50105],
        means: "the customer's tenant allows only assigned users to use this sign-in app, and your account is not assigned",
        next: "Ask the customer to assign your account to \"Microsoft Graph Command Line Tools\" (Enterprise applications → Users and groups), or sign in as their Global Administrator.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[7000112],
        means: "the sign-in app is disabled in the customer's tenant",
        next: "Ask the customer to enable \"Microsoft Graph Command Line Tools\" (Enterprise applications → Properties → Enabled for users to sign in), or pass --client-id with a public client they allow.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[65001, 65002],
        means: "the sign-in app has no consent for the permissions hal-onboard asks for",
        next: "Sign in as a Global Administrator and accept the consent prompt; with --client-id, grant that app the delegated permissions in docs/signin.md first.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[500011],
        means: "a Microsoft service hal-onboard needs (Microsoft Graph or Exchange Online) does not exist in this tenant",
        next: "Check --cloud (a GCC High or 21Vianet tenant signs in elsewhere); a tenant without Exchange Online can still be onboarded with --skip-exchange.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[50011],
        means: "the sign-in app does not accept hal-onboard's loopback redirect (http://localhost)",
        next: "Sign in with a device code instead (`--auth device-code`), or add http://localhost as a \"Mobile and desktop applications\" redirect URI of the app given with --client-id.",
        next_after_browser: None,
    },
    Aadsts {
        codes: &[700082, 50173],
        means: "the saved sign-in expired or was revoked (a password change, a sign-out everywhere, 90 days unused)",
        next: "Sign in again: hal-onboard does so by itself once; if this persists, run the same command again.",
        next_after_browser: None,
    },
];

/// The table's entry for `code`.
pub fn aadsts(code: u64) -> Option<&'static Aadsts> {
    AADSTS.iter().find(|a| a.codes.contains(&code))
}

/// Microsoft's refusal in plain words when the code is in the table, else its first sentence.
fn refusal(code: Option<u64>, description: &str) -> String {
    match code.and_then(aadsts) {
        Some(a) => format!("{} (AADSTS{})", a.means, code.expect("known")),
        None => first_sentence(description),
    }
}

/// Who to sign in, where, for what.
#[derive(Debug, Clone)]
pub struct SignInOptions {
    /// The authority host (`Endpoints::login`), e.g. `https://login.microsoftonline.com/`.
    pub authority: Url,
    /// The tenant as the technician named it: a verified domain or the tenant GUID.
    pub tenant: String,
    /// The public client to sign in with.
    pub client_id: String,
    /// Scopes asked for at sign-in (without `offline_access`, which is always added).
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    /// The keyring account the refresh token is kept under, per tenant GUID
    /// (e.g. `secrets::account::graph_refresh_token`).
    pub refresh_account: fn(Uuid) -> String,
    /// The tenant's GUID when already known (a re-run): the kept refresh token is tried first.
    pub known_tenant: Option<Uuid>,
    /// How long the browser flow waits for the browser to come back.
    pub browser_wait: Duration,
    /// Only the saved sign-in: never a device code or browser (a command that must not
    /// prompt, e.g. one that needs `partner login` first).
    pub silent_only: bool,
}

/// The browser flow's wait unless HAL_ONBOARD_BROWSER_TIMEOUT says otherwise.
pub const BROWSER_WAIT: Duration = Duration::from_secs(300);

impl SignInOptions {
    /// The technician's sign-in for Microsoft Graph in `tenant`.
    pub fn graph(authority: Url, tenant: &str, client_id: &str, graph_resource: &str) -> Self {
        SignInOptions {
            authority,
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            scopes: graph_scopes(graph_resource),
            method: AuthMethod::DeviceCode,
            refresh_account: crate::secrets::account::graph_refresh_token,
            known_tenant: None,
            browser_wait: BROWSER_WAIT,
            silent_only: false,
        }
    }

    /// The technician's sign-in for Exchange Online PowerShell (`{exchange_resource}/.default`
    /// with Exchange Online PowerShell's public client), for the Exchange bridge.
    pub fn exchange(authority: Url, tenant: &str, exchange_resource: &str) -> Self {
        SignInOptions {
            authority,
            tenant: tenant.to_string(),
            client_id: EXCHANGE_PS_CLIENT_ID.to_string(),
            scopes: vec![format!(
                "{}/.default",
                exchange_resource.trim_end_matches('/')
            )],
            method: AuthMethod::DeviceCode,
            refresh_account: crate::secrets::account::exchange_refresh_token,
            known_tenant: None,
            browser_wait: BROWSER_WAIT,
            silent_only: false,
        }
    }

    fn endpoint(&self, name: &str) -> Url {
        self.authority
            .join(&format!("{}/oauth2/v2.0/{name}", self.tenant))
            .expect("oauth path joins")
    }

    fn scope_param(&self, scopes: &[String]) -> String {
        let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
        if !s.contains(&"offline_access") {
            s.push("offline_access");
        }
        s.join(" ")
    }
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: SecretText,
    #[serde(default)]
    pub refresh_token: Option<SecretText>,
    #[serde(default)]
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenResponse(..)")
    }
}

/// An OAuth error answer (`error`, `error_description`, `error_codes`).
#[derive(Debug, Deserialize)]
pub(crate) struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

impl OAuthError {
    pub fn into_error(self) -> SignInError {
        match self.error.as_str() {
            "authorization_declined" | "access_denied" => SignInError::Declined,
            "expired_token" => SignInError::Expired,
            "bad_verification_code" => SignInError::BadVerificationCode,
            _ => {
                SignInError::Refused {
                    code: self.error_codes.first().copied().or_else(|| {
                        aadsts_code(self.error_description.as_deref().unwrap_or_default())
                    }),
                    description: self.error_description.unwrap_or_else(|| self.error.clone()),
                    error: self.error,
                    flow: None,
                }
            }
        }
    }
}

/// The first sentence of an Entra error description, without its trace and correlation IDs:
/// "AADSTS90002: Tenant 'x' not found. Check to make sure…" → "AADSTS90002: Tenant 'x' not found."
pub fn first_sentence(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let line = line.split(" Trace ID:").next().unwrap_or(line).trim();
    match line.find(". ") {
        Some(i) => line[..=i].to_string(),
        None => line.to_string(),
    }
}

/// The number in "AADSTS7000215: ...".
pub fn aadsts_code(text: &str) -> Option<u64> {
    let i = text.find("AADSTS")? + 6;
    let digits: String = text[i..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Posts a form to a token-ish endpoint: `Ok(Ok(token))`, `Ok(Err(oauth error))`, or a transport error.
pub(crate) async fn post_form<T: for<'de> Deserialize<'de>>(
    http: &reqwest::Client,
    url: &Url,
    form: &[(&str, &str)],
) -> Result<Result<T, OAuthError>, SignInError> {
    let unreachable = |source| SignInError::Unreachable {
        url: url.to_string(),
        source,
    };
    tracing::debug!(url = %url, "sign-in request");
    let rsp = http
        .post(url.clone())
        .form(form)
        .send()
        .await
        .map_err(unreachable)?;
    let status = rsp.status();
    let bytes = crate::http::read_body(rsp, crate::http::MAX_BODY)
        .await
        .map_err(|e| match e {
            crate::http::BodyError::Read(source) => unreachable(source),
            e @ crate::http::BodyError::TooLarge => SignInError::Protocol(e.to_string()),
        })?;
    if status.is_success() {
        return serde_json::from_slice::<T>(&bytes)
            .map(Ok)
            .map_err(|e| SignInError::Protocol(format!("unreadable answer ({e})")));
    }
    match serde_json::from_slice::<OAuthError>(&bytes) {
        Ok(e) => Ok(Err(e)),
        Err(_) => Err(SignInError::Protocol(format!(
            "HTTP {status} without an OAuth error"
        ))),
    }
}

#[derive(Default)]
struct State {
    /// Access tokens by the scope string they were asked for.
    tokens: HashMap<String, AccessToken>,
    refresh: Option<SecretText>,
    /// The kept refresh token was looked up already.
    loaded: bool,
    /// Write rotated refresh tokens to the keyring under this tenant.
    keep_under: Option<Uuid>,
}

/// The technician's delegated credential (device code or browser), refreshing silently.
pub struct UserCredential {
    http: reqwest::Client,
    opts: SignInOptions,
    secrets: Arc<dyn SecretStore>,
    observer: Arc<dyn SignInObserver>,
    state: Mutex<State>,
}

impl std::fmt::Debug for UserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredential")
            .field("tenant", &self.opts.tenant)
            .field("client_id", &self.opts.client_id)
            .field("method", &self.opts.method)
            .finish_non_exhaustive()
    }
}

impl UserCredential {
    /// A credential that signs in on first use. `http` is the run's one client
    /// (`http::build_client`).
    pub fn new(
        http: reqwest::Client,
        opts: SignInOptions,
        secrets: Arc<dyn SecretStore>,
        observer: Arc<dyn SignInObserver>,
    ) -> Arc<UserCredential> {
        Arc::new(UserCredential {
            http,
            opts,
            secrets,
            observer,
            state: Mutex::new(State::default()),
        })
    }

    pub fn options(&self) -> &SignInOptions {
        &self.opts
    }

    /// Keeps the refresh token in the keyring under `tenant` (call once the tenant is checked),
    /// so a re-run within its lifetime does not prompt again. Rotated tokens follow.
    pub async fn keep_signed_in(&self, tenant: Uuid) -> Result<(), SignInError> {
        let mut st = self.state.lock().await;
        st.keep_under = Some(tenant);
        if let Some(rt) = st.refresh.clone() {
            self.secret_set((self.opts.refresh_account)(tenant), rt)
                .await?;
        }
        Ok(())
    }

    /// Forgets the kept sign-in for `tenant` (e.g. signed in to the wrong tenant).
    pub async fn forget(&self, tenant: Uuid) -> Result<(), SignInError> {
        let mut st = self.state.lock().await;
        st.refresh = None;
        st.tokens.clear();
        st.keep_under = None;
        self.secret_delete((self.opts.refresh_account)(tenant))
            .await
    }

    fn wanted(&self, scopes: &[&str]) -> Vec<String> {
        if scopes.is_empty() {
            self.opts.scopes.clone()
        } else {
            scopes.iter().map(|s| s.to_string()).collect()
        }
    }

    /// A newly issued token for `scopes`, not the cached one, whenever the refresh token allows
    /// it silently (else as [`UserCredential::token`]). For work that must not meet an expiry
    /// our clock cannot see coming: the far end's clock is the one that counts.
    pub async fn fresh_token(&self, scopes: &[&str]) -> Result<AccessToken, SignInError> {
        let key = self.wanted(scopes).join(" ");
        {
            let mut st = self.state.lock().await;
            if st.refresh.is_some() {
                st.tokens.remove(&key);
            }
        }
        self.token(scopes).await
    }

    /// A token for `scopes` (the sign-in scopes when empty).
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, SignInError> {
        let want = self.wanted(scopes);
        let key = want.join(" ");
        let mut st = self.state.lock().await;
        if let Some(t) = st.tokens.get(&key)
            && t.expires_on > OffsetDateTime::now_utc() + time::Duration::minutes(2)
        {
            return Ok(t.clone());
        }
        if !st.loaded {
            st.loaded = true;
            if let Some(tenant) = self.opts.known_tenant
                && st.refresh.is_none()
            {
                st.refresh = self.secret_get((self.opts.refresh_account)(tenant)).await?;
            }
        }
        if let Some(rt) = st.refresh.clone() {
            let url = self.opts.endpoint("token");
            let scope = self.opts.scope_param(&want);
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", self.opts.client_id.as_str()),
                ("refresh_token", rt.expose()),
                ("scope", scope.as_str()),
            ];
            let extra = want != self.opts.scopes;
            match post_form::<TokenResponse>(&self.http, &url, &form).await? {
                Ok(t) => return self.accept(&mut st, key, t).await,
                // Scopes beyond the sign-in's (e.g. reading PIM eligibility) are asked for
                // silently only: a refusal is the caller's to handle, never a second prompt,
                // and the saved sign-in stays.
                Err(e) if extra => return Err(e.into_error()),
                Err(e) => {
                    // An expired or revoked refresh token: sign in interactively instead, once.
                    tracing::debug!(error = %e.error, "refresh token refused");
                    let why = e.into_error();
                    if let SignInError::Refused { code: Some(c), .. } = &why
                        && let Some(a) = aadsts(*c)
                    {
                        self.observer
                            .saved_sign_in_refused(&format!("{} (AADSTS{c})", a.means));
                    }
                    st.refresh = None;
                    if let Some(tenant) = st.keep_under.or(self.opts.known_tenant) {
                        self.secret_delete((self.opts.refresh_account)(tenant))
                            .await?;
                    }
                    if self.opts.silent_only {
                        return Err(why);
                    }
                }
            }
        }
        if self.opts.silent_only {
            return Err(SignInError::NoSavedSignIn);
        }
        if want != self.opts.scopes {
            return Err(SignInError::Protocol(
                "extra scopes are asked for only with a saved sign-in".into(),
            ));
        }
        let mut method = self.opts.method;
        if method == AuthMethod::Browser
            && let Some(why) = self.observer.no_browser()
        {
            self.observer.browser_fallback(&why);
            method = AuthMethod::DeviceCode;
        }
        let t = match method {
            AuthMethod::Browser => {
                browser::sign_in(&self.http, &self.opts, &want, self.observer.as_ref()).await
            }
            _ => device_code::sign_in(&self.http, &self.opts, &want, self.observer.as_ref()).await,
        };
        self.observer.finished();
        let t = t.map_err(|e| e.during(method))?;
        let user = TokenClaims::decode(t.access_token.expose())
            .ok()
            .and_then(|c| c.user().map(str::to_string));
        self.observer.signed_in(user.as_deref());
        self.accept(&mut st, key, t).await
    }

    /// A token for `scopes` from this sign-in's refresh token redeemed at another tenant's
    /// authority (`{authority}/{tenant}/oauth2/v2.0/token`, the same client): a partner
    /// technician's token in a customer through GDAP. Never prompts; a refusal is the caller's
    /// and leaves the sign-in as it is (it says nothing about the refresh token elsewhere).
    /// A rotated refresh token replaces the one held, and the keyring's once kept.
    pub async fn redeem_at(
        &self,
        tenant: &str,
        scopes: &[&str],
    ) -> Result<AccessToken, SignInError> {
        let rt = self.state.lock().await.refresh.clone();
        let rt = rt.ok_or(SignInError::NoSavedSignIn)?;
        let url = self
            .opts
            .authority
            .join(&format!("{tenant}/oauth2/v2.0/token"))
            .expect("oauth path joins");
        let want: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let scope = self.opts.scope_param(&want);
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", self.opts.client_id.as_str()),
            ("refresh_token", rt.expose()),
            ("scope", scope.as_str()),
        ];
        let t = match post_form::<TokenResponse>(&self.http, &url, &form).await? {
            Ok(t) => t,
            Err(e) => return Err(e.into_error()),
        };
        let expires = OffsetDateTime::now_utc()
            + time::Duration::seconds(t.expires_in.unwrap_or(3600).clamp(60, 86_400));
        let token = AccessToken::new(t.access_token.expose().to_string(), expires);
        if let Some(new) = t.refresh_token {
            let mut st = self.state.lock().await;
            if let Some(tenant) = st.keep_under {
                self.secret_set((self.opts.refresh_account)(tenant), new.clone())
                    .await?;
            }
            st.refresh = Some(new);
        }
        Ok(token)
    }

    async fn accept(
        &self,
        st: &mut State,
        key: String,
        t: TokenResponse,
    ) -> Result<AccessToken, SignInError> {
        let expires = OffsetDateTime::now_utc()
            + time::Duration::seconds(t.expires_in.unwrap_or(3600).clamp(60, 86_400));
        // azure_core's AccessToken (the TokenCredential contract) holds its own, unzeroed copy.
        let token = AccessToken::new(t.access_token.expose().to_string(), expires);
        st.tokens.insert(key, token.clone());
        if let Some(rt) = t.refresh_token {
            if let Some(tenant) = st.keep_under {
                self.secret_set((self.opts.refresh_account)(tenant), rt.clone())
                    .await?;
            }
            st.refresh = Some(rt);
        }
        Ok(token)
    }

    async fn secret_get(&self, account: String) -> Result<Option<SecretText>, SignInError> {
        let s = self.secrets.clone();
        blocking(move || s.get(&account)).await
    }
    async fn secret_set(&self, account: String, value: SecretText) -> Result<(), SignInError> {
        let s = self.secrets.clone();
        blocking(move || s.set(&account, value.expose())).await
    }
    async fn secret_delete(&self, account: String) -> Result<(), SignInError> {
        let s = self.secrets.clone();
        blocking(move || s.delete(&account)).await
    }
}

/// The keyring blocks (D-Bus on Linux): keep it off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SignInError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SignInError::Keyring(SecretError::Failed(e.to_string())))?
        .map_err(SignInError::Keyring)
}

#[async_trait::async_trait]
impl TokenCredential for UserCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await.map_err(|e| {
            let msg = e.to_string();
            azure_core::Error::with_error(azure_core::error::ErrorKind::Credential, e, msg)
        })
    }
}

/// The Azure CLI's sign-in (`az login`), for `--auth azure-cli`.
pub fn azure_cli(tenant: &str) -> Result<Arc<dyn TokenCredential>, SignInError> {
    let opts = azure_identity::AzureCliCredentialOptions {
        tenant_id: Some(tenant.to_string()),
        executor: Some(Arc::new(ChildEnvExecutor)),
        ..Default::default()
    };
    let c = azure_identity::AzureCliCredential::new(Some(opts)).map_err(SignInError::AzureCli)?;
    Ok(Arc::new(AzureCli {
        inner: c,
        tenant: tenant.to_string(),
    }))
}

/// azure_identity's `AzureCliCredential`, its failures said as what is wrong: `az` missing,
/// not signed in, or signed in elsewhere than the tenant asked for.
#[derive(Debug)]
struct AzureCli {
    inner: Arc<azure_identity::AzureCliCredential>,
    tenant: String,
}

#[async_trait::async_trait]
impl TokenCredential for AzureCli {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.inner.get_token(scopes, options).await.map_err(|e| {
            let e = az_error(&self.tenant, e);
            let msg = e.to_string();
            azure_core::Error::with_error(azure_core::error::ErrorKind::Credential, e, msg)
        })
    }
}

/// What `az account get-access-token` said, classified. Its own words: "ERROR: Please run 'az
/// login' to setup account." when signed out; an AADSTS error (50020, 90072, 90002…) followed
/// by "Interactive authentication is needed" when the account is not in the tenant asked for;
/// exit 127 ("not found on PATH") from the shell when there is no `az`.
fn az_error(tenant: &str, e: azure_core::Error) -> SignInError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("not found on path") || lower.contains("wasn't found on path") {
        return SignInError::AzNotFound;
    }
    if lower.contains("az login' to setup account")
        || lower.contains("az login\" to setup account")
        || lower.contains("no subscription found")
        || matches!(aadsts_code(&text), Some(700082 | 50173))
    {
        return SignInError::AzNotSignedIn {
            tenant: tenant.to_string(),
        };
    }
    let code = aadsts_code(&text);
    if matches!(code, Some(50020 | 90072)) || lower.contains("interactive authentication is needed")
    {
        let detail = text[text.find("AADSTS").unwrap_or(0)..]
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        return SignInError::AzOtherTenant {
            tenant: tenant.to_string(),
            detail,
        };
    }
    SignInError::AzureCli(e)
}

/// Runs `az` for [`azure_cli`] with the environment every child gets
/// ([`crate::secrets::child_env`]).
#[derive(Debug)]
struct ChildEnvExecutor;

#[async_trait::async_trait]
impl azure_identity::Executor for ChildEnvExecutor {
    async fn run(
        &self,
        program: &std::ffi::OsStr,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        let mut cmd = tokio::process::Command::new(program);
        crate::secrets::child_env(cmd.as_std_mut());
        cmd.args(args).output().await
    }
}

/// The typed sign-in error inside an azure_core error from a credential, if there is one.
pub fn sign_in_error(e: &azure_core::Error) -> Option<&SignInError> {
    e.downcast_ref::<SignInError>()
}

/// Waits `d`, bounded so a hostile `interval` cannot stall us for hours.
pub(crate) async fn pause(d: Duration) {
    tokio::time::sleep(d.min(Duration::from_secs(60))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/signin.md holds the same table: every code, its words and its next step.
    #[test]
    fn the_aadsts_table_is_the_one_in_docs() {
        let doc = include_str!("../../../docs/signin.md");
        for a in AADSTS {
            let codes: Vec<String> = a.codes.iter().map(|c| format!("AADSTS{c}")).collect();
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {} |", codes.join(", "))))
                .unwrap_or_else(|| panic!("docs/signin.md has a row for {codes:?}"));
            assert!(row.contains(a.means), "{row}");
            assert!(row.contains(a.next), "{row}");
            if let Some(n) = a.next_after_browser {
                assert!(row.contains(n), "{row}");
            }
        }
        let rows = doc.lines().filter(|l| l.starts_with("| AADSTS")).count();
        assert_eq!(rows, AADSTS.len(), "no row the code does not have");
    }

    #[test]
    fn scopes_are_qualified_by_the_clouds_graph() {
        let s = graph_scopes("https://graph.microsoft.us");
        assert_eq!(s[0], "https://graph.microsoft.us/Application.ReadWrite.All");
        let o = SignInOptions::graph(
            Url::parse("https://login.microsoftonline.us/").unwrap(),
            "contoso.onmicrosoft.us",
            GRAPH_CLI_CLIENT_ID,
            "https://graph.microsoft.us",
        );
        assert!(o.scope_param(&o.scopes).ends_with(" offline_access"));
        assert_eq!(
            o.endpoint("devicecode").as_str(),
            "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/devicecode"
        );
    }

    #[test]
    fn oauth_errors_map_to_clear_words() {
        let e = |error: &str, d: &str| OAuthError {
            error: error.into(),
            error_description: Some(d.into()),
            error_codes: vec![],
        };
        assert!(matches!(
            e("authorization_declined", "").into_error(),
            SignInError::Declined
        ));
        assert!(matches!(
            e("expired_token", "").into_error(),
            SignInError::Expired
        ));
        let bad = e("bad_verification_code", "").into_error();
        assert!(matches!(bad, SignInError::BadVerificationCode));
        // The tool's fault, not the technician's typing.
        assert!(bad.to_string().contains("hal-onboard sent"), "{bad}");
        let hint = bad.hint().unwrap();
        assert!(hint.contains("not something you typed"), "{hint}");
        let r = e(
            "invalid_grant",
            "AADSTS53003: Access has been blocked by Conditional Access policies.\r\nTrace ID: x",
        )
        .into_error();
        assert!(matches!(
            r,
            SignInError::Refused {
                code: Some(53003),
                ..
            }
        ));
        assert!(r.hint().unwrap().contains("--auth browser"));
        assert_eq!(
            r.to_string(),
            "Microsoft refused the sign-in: the customer's Conditional Access policies block this sign-in (AADSTS53003)"
        );
        // A code outside the table keeps Microsoft's first sentence.
        let other = e("invalid_grant", "AADSTS70000: The grant is invalid. More.").into_error();
        assert_eq!(
            other.to_string(),
            "Microsoft refused the sign-in: AADSTS70000: The grant is invalid."
        );
        assert_eq!(
            first_sentence("AADSTS90002: Tenant 'x' not found. Check to make sure. Trace ID: 1"),
            "AADSTS90002: Tenant 'x' not found."
        );
    }
}
