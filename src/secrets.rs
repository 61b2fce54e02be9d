//! Where secrets live between steps: the OS keyring, or memory when there is none.
//!
//! Client secrets, refresh tokens and the portal token are never written to the state file, a
//! log, a process argument or an error message. The keyring (service `hal-onboard`) is the only
//! place they persist; on a headless box without a Secret Service they live in memory for the
//! run only.

use std::collections::HashMap;
use std::sync::Mutex;

/// The keyring service name every entry is filed under.
pub const SERVICE: &str = "hal-onboard";

/// Keyring account names (a public contract: a technician may look them up or delete them).
pub mod account {
    use uuid::Uuid;

    /// The client secret, kept until the portal has accepted it.
    pub fn client_secret(tenant: Uuid) -> String {
        format!("tenant:{tenant}:client-secret")
    }
    /// The technician's refresh token for Microsoft Graph in that tenant.
    pub fn graph_refresh_token(tenant: Uuid) -> String {
        format!("tenant:{tenant}:graph-refresh-token")
    }
    /// The technician's refresh token for Exchange Online in that tenant.
    pub fn exchange_refresh_token(tenant: Uuid) -> String {
        format!("tenant:{tenant}:exchange-refresh-token")
    }
    /// The partner technician's refresh token in the MSP's own tenant (`partner login`),
    /// redeemed at each customer's authority in partner mode.
    pub fn partner_refresh_token(msp_tenant: Uuid) -> String {
        format!("partner:{msp_tenant}:refresh-token")
    }
    /// The MSP portal's API token, filed under the portal's origin
    /// (`portal-token:https://portal.example`), so a token is only ever sent to the portal it
    /// was saved for.
    pub fn portal_token(portal: &url::Url) -> String {
        format!("portal-token:{}", portal.origin().ascii_serialization())
    }
    /// Where hal-onboard kept the portal token before it was filed by origin; read once to
    /// migrate it ([`super::portal_token_for`]).
    pub const PORTAL_TOKEN: &str = "portal-token";
}

/// The portal token kept for the portal at `url`. A token kept under the old account name
/// (`portal-token`, by an older hal-onboard) is taken over only when `saved_for` — the portal
/// URL in this home's config.json, saved by the same `portal login` — has the same origin as
/// `url`; it then moves to the new account. Otherwise it is left alone and never sent: when
/// unsure, the technician runs `portal login` again.
pub fn portal_token_for(
    secrets: &dyn SecretStore,
    url: &url::Url,
    saved_for: Option<&url::Url>,
) -> Result<Option<SecretText>, SecretError> {
    let account = account::portal_token(url);
    if let Some(t) = secrets.get(&account)? {
        return Ok(Some(t));
    }
    let same_origin = saved_for.is_some_and(|s| s.origin() == url.origin());
    if !same_origin {
        return Ok(None);
    }
    let Some(old) = secrets.get(account::PORTAL_TOKEN)? else {
        return Ok(None);
    };
    secrets.set(&account, old.expose())?;
    secrets.delete(account::PORTAL_TOKEN)?;
    Ok(Some(old))
}

/// Whether an environment variable holds a secret a child process must not inherit: our own
/// (`HAL_PORTAL_TOKEN`, `HAL_ONBOARD_EXCHANGE_TOKEN`), and any whose name says it holds one
/// (contains `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `API_KEY`, `APIKEY` or `CREDENTIAL`, in any
/// case), such as `AZURE_CLIENT_SECRET` or `GITHUB_TOKEN` in a CI job.
pub fn is_secret_env(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    upper == crate::config::ENV_PORTAL_TOKEN
        || upper == crate::config::ENV_EXCHANGE_TOKEN
        || [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "API_KEY",
            "APIKEY",
            "CREDENTIAL",
        ]
        .iter()
        .any(|w| upper.contains(w))
}

/// The one way a child process (PowerShell, the Azure CLI, the browser opener) is given its
/// environment: hal-onboard's own, less every secret-bearing variable ([`is_secret_env`]).
/// What the child needs of its own is added after this call. A tokio command passes
/// `cmd.as_std_mut()`.
pub fn child_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env_remove(crate::config::ENV_PORTAL_TOKEN)
        .env_remove(crate::config::ENV_EXCHANGE_TOKEN);
    let set_so_far: Vec<std::ffi::OsString> =
        cmd.get_envs().map(|(k, _)| k.to_os_string()).collect();
    for name in std::env::vars_os().map(|(k, _)| k).chain(set_so_far) {
        if is_secret_env(&name) {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A secret value we hold — a client secret, a refresh or access token, the portal token —
/// from where it enters (an HTTP answer, the keyring, an environment variable) to where it
/// leaves (the keyring, a request body, a child's environment). Its memory is zeroed when it is
/// dropped (`zeroize`), and Debug and Display never show it: reading it takes an explicit
/// [`SecretText::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(zeroize::Zeroizing<String>);

impl SecretText {
    pub fn new(value: impl Into<String>) -> SecretText {
        SecretText(zeroize::Zeroizing::new(value.into()))
    }

    /// The value, for the one place it must go (a request, the keyring, a child's env).
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Compares without exposing (tests, and `assert_eq!` on a record that holds one).
impl PartialEq<str> for SecretText {
    fn eq(&self, other: &str) -> bool {
        self.expose() == other
    }
}

impl PartialEq<&str> for SecretText {
    fn eq(&self, other: &&str) -> bool {
        self.expose() == *other
    }
}

impl PartialEq<String> for SecretText {
    fn eq(&self, other: &String) -> bool {
        self.expose() == other
    }
}

/// Zeroed on drop: its only field is `Zeroizing`.
impl zeroize::ZeroizeOnDrop for SecretText {}

impl From<String> for SecretText {
    fn from(s: String) -> SecretText {
        SecretText::new(s)
    }
}

impl From<&str> for SecretText {
    fn from(s: &str) -> SecretText {
        SecretText::new(s)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

impl std::fmt::Display for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> serde::Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretText, D::Error> {
        String::deserialize(d).map(SecretText::new)
    }
}

/// For the one body that must carry a secret (the portal submission): `serialize_with`.
pub fn serialize_exposed<S: serde::Serializer>(v: &SecretText, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.expose())
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the OS keyring is not available ({0})")]
    Unavailable(String),
    #[error("the OS keyring refused the operation ({0})")]
    Failed(String),
    #[error("the OS keyring is locked ({0})")]
    Locked(String),
}

/// A place to keep secrets. Implementations must never log the values.
pub trait SecretStore: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<SecretText>, SecretError>;
    fn set(&self, account: &str, value: &str) -> Result<(), SecretError>;
    /// Deleting what is not there is not an error.
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// True when values outlive the process.
    fn is_persistent(&self) -> bool;
}

/// The OS keyring: Secret Service on Linux, Keychain on macOS, Credential Manager on Windows.
///
/// The Linux backend talks D-Bus through zbus, which starts its own runtime and so panics when
/// called on a thread that drives async tasks; every call therefore runs on a short-lived
/// thread of its own, which makes the store safe to use from any context.
#[derive(Debug, Default)]
pub struct KeyringStore;

/// How long one keyring call may take: long enough to answer an unlock prompt, short enough
/// that a Secret Service that never answers does not hang the command.
pub const KEYRING_CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `f` on a thread of its own (off any async runtime's thread, which zbus needs) and waits
/// at most `limit` for it. A call that does not answer in time is left to finish on its own.
fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> Result<T, SecretError> + Send + 'static,
) -> Result<T, SecretError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("keyring".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| SecretError::Failed(e.to_string()))?;
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(SecretError::Unavailable(format!(
            "it did not answer within {} s",
            limit.as_secs()
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(SecretError::Failed("the keyring call panicked".into()))
        }
    }
}

impl KeyringStore {
    /// Returns the keyring only if it answers: a quick round trip on a probe entry.
    pub fn probe() -> Result<Self, SecretError> {
        let s = KeyringStore;
        s.get("probe").map(|_| s)
    }

    /// The keyring, if it answers within `wait`: a Secret Service that never answers would
    /// otherwise hang the command.
    pub fn probe_within(wait: std::time::Duration) -> Result<Self, SecretError> {
        let probe = std::thread::spawn(Self::probe);
        let started = std::time::Instant::now();
        while !probe.is_finished() && started.elapsed() < wait {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !probe.is_finished() {
            return Err(SecretError::Unavailable(format!(
                "it did not answer within {} s",
                wait.as_secs()
            )));
        }
        probe
            .join()
            .unwrap_or_else(|_| Err(SecretError::Failed("the keyring probe panicked".into())))
    }

    fn entry(account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, account).map_err(map_err)
    }
}

fn map_err(e: keyring::Error) -> SecretError {
    // A locked collection (the desktop session not unlocked, an unlock prompt dismissed) is
    // not an absent secret: say so, so nobody concludes the secret is gone.
    if e.to_string().to_ascii_lowercase().contains("locked") {
        return SecretError::Locked(e.to_string());
    }
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretError::Unavailable(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable(inner.to_string()),
        other => SecretError::Failed(other.to_string()),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str) -> Result<Option<SecretText>, SecretError> {
        let account = account.to_string();
        within(KEYRING_CALL_LIMIT, move || {
            match Self::entry(&account)?.get_password() {
                Ok(v) => Ok(Some(SecretText::new(v))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_err(e)),
            }
        })
    }

    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        let (account, value) = (account.to_string(), SecretText::new(value));
        within(KEYRING_CALL_LIMIT, move || {
            Self::entry(&account)?
                .set_password(value.expose())
                .map_err(map_err)
        })
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let account = account.to_string();
        within(KEYRING_CALL_LIMIT, move || {
            match Self::entry(&account)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_err(e)),
            }
        })
    }

    fn is_persistent(&self) -> bool {
        true
    }
}

/// Secrets held for this process only: the fallback without a keyring, and the tests' store.
#[derive(Default)]
pub struct MemoryStore {
    values: Mutex<HashMap<String, SecretText>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.values.lock().map(|v| v.len()).unwrap_or(0);
        write!(f, "MemoryStore({n} entries)")
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<SecretText>, SecretError> {
        Ok(self.values.lock().unwrap().get(account).cloned())
    }

    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        self.values
            .lock()
            .unwrap()
            .insert(account.to_string(), SecretText::new(value));
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.values.lock().unwrap().remove(account);
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::default();
        assert_eq!(s.get("a").unwrap(), None);
        s.set("a", "v").unwrap();
        assert_eq!(s.get("a").unwrap().as_ref().map(|s| s.expose()), Some("v"));
        s.delete("a").unwrap();
        s.delete("a").unwrap();
        assert_eq!(s.get("a").unwrap(), None);
        assert!(!s.is_persistent());
    }
}

/// No core dump of this process: it holds client secrets, refresh tokens and the portal token
/// in memory, and a crash must not write them to disk. On Linux the process also becomes
/// non-dumpable, so other processes of the same user cannot read its memory through ptrace.
pub fn forbid_core_dumps() {
    #[cfg(unix)]
    {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit with a valid, initialised struct; failure only leaves dumps on.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &none);
        }
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod dump_tests {
    #[test]
    fn core_dumps_are_off_after_the_call() {
        super::forbid_core_dumps();
        let mut r = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into our struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut r) }, 0);
        assert_eq!((r.rlim_cur, r.rlim_max), (0, 0));
        // SAFETY: no pointers.
        assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    }
}

#[cfg(all(test, unix))]
mod child_env_tests {
    use super::*;

    #[test]
    fn secret_bearing_names_are_recognized() {
        for n in [
            "HAL_PORTAL_TOKEN",
            "HAL_ONBOARD_EXCHANGE_TOKEN",
            "AZURE_CLIENT_SECRET",
            "GITHUB_TOKEN",
            "my_api_key",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(is_secret_env(n.as_ref()), "{n}");
        }
        for n in [
            "PATH",
            "HOME",
            "GNOME_KEYRING_CONTROL",
            "HAL_PORTAL_URL",
            "LANG",
        ] {
            assert!(!is_secret_env(n.as_ref()), "{n}");
        }
    }

    #[test]
    fn a_child_started_through_the_helper_gets_no_secret() {
        let mut cmd = std::process::Command::new("env");
        cmd.env("HAL_PORTAL_TOKEN", "x1")
            .env("GITHUB_TOKEN", "x2")
            .env("KEEP_ME", "kept");
        child_env(&mut cmd);
        let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
        assert!(out.contains("KEEP_ME=kept"), "{out}");
        assert!(!out.contains("x1") && !out.contains("x2"), "{out}");
    }
}

#[cfg(test)]
mod portal_token_tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        s.parse().unwrap()
    }

    #[test]
    fn the_token_is_filed_by_origin() {
        assert_eq!(
            account::portal_token(&url("https://portal.example/api/v1/")),
            "portal-token:https://portal.example"
        );
        let m = MemoryStore::default();
        m.set(&account::portal_token(&url("https://a.example")), "ta")
            .unwrap();
        let got = |u| portal_token_for(&m, &url(u), None).unwrap();
        assert_eq!(
            got("https://a.example/x").as_ref().map(|s| s.expose()),
            Some("ta")
        );
        assert_eq!(
            got("https://b.example"),
            None,
            "never sent to another portal"
        );
    }

    #[test]
    fn an_old_token_moves_only_for_the_portal_it_was_saved_for() {
        let a = url("https://a.example/");
        let b = url("https://b.example/");
        let m = MemoryStore::default();
        m.set(account::PORTAL_TOKEN, "old").unwrap();
        // Another portal, or no saved URL: unknown, so not sent and left alone.
        assert_eq!(portal_token_for(&m, &b, Some(&a)).unwrap(), None);
        assert_eq!(portal_token_for(&m, &a, None).unwrap(), None);
        assert_eq!(
            m.get(account::PORTAL_TOKEN)
                .unwrap()
                .as_ref()
                .map(|s| s.expose()),
            Some("old")
        );
        // The portal config.json names: migrated once.
        assert_eq!(
            portal_token_for(&m, &a, Some(&a))
                .unwrap()
                .as_ref()
                .map(|s| s.expose()),
            Some("old")
        );
        assert_eq!(m.get(account::PORTAL_TOKEN).unwrap(), None);
        assert_eq!(
            m.get(&account::portal_token(&a))
                .unwrap()
                .as_ref()
                .map(|s| s.expose()),
            Some("old")
        );
        assert_eq!(portal_token_for(&m, &b, Some(&a)).unwrap(), None);
    }
}

#[cfg(test)]
mod keyring_limit_tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_keyring_call_that_never_answers_ends_at_the_limit() {
        let started = Instant::now();
        let r: Result<(), _> = within(Duration::from_millis(200), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(matches!(r, Err(SecretError::Unavailable(ref m)) if m.contains("did not answer")));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(within(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn a_locked_keyring_is_reported_as_locked_not_as_missing() {
        let e = map_err(keyring::Error::NoStorageAccess(
            "Cannot unlock: the collection is locked".into(),
        ));
        assert!(matches!(e, SecretError::Locked(_)), "{e:?}");
        assert!(e.to_string().contains("locked"));
        assert!(matches!(
            map_err(keyring::Error::NoStorageAccess("no D-Bus".into())),
            SecretError::Unavailable(_)
        ));
    }
}

/// Every secret on its way through hal-onboard is a [`SecretText`]: zeroed on drop (checked
/// here at compile time, through `ZeroizeOnDrop`), and never shown by Debug or Display of it
/// or of any record or error that holds one.
#[cfg(test)]
mod zeroizing_tests {
    use super::*;
    use zeroize::ZeroizeOnDrop;

    const VALUE: &str = "Zx8Q~very.secret-value_123";

    /// Compiles only for a type whose memory is zeroed when dropped.
    fn zeroed_on_drop<T: ZeroizeOnDrop>(_: &T) {}

    fn assert_hidden(what: &str, text: String) {
        assert!(!text.contains(VALUE), "{what} shows the secret: {text}");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretText::new(VALUE);
        assert_hidden("Debug", format!("{s:?}"));
        assert_hidden("Display", format!("{s}"));
        assert_hidden("alternate Debug", format!("{s:#?}"));
        assert_eq!(s.expose(), VALUE, "only expose() gives it");
        zeroed_on_drop(&s);
    }

    #[test]
    fn every_path_holds_the_zeroizing_type_and_hides_it() {
        // Where it enters: addPassword's answer, parsed.
        let p: crate::microsoft::graph::model::PasswordCredential = serde_json::from_value(
            serde_json::json!({"keyId": "k", "secretText": VALUE, "hint": "Zx8"}),
        )
        .unwrap();
        let text = p.secret_text.clone().unwrap();
        zeroed_on_drop(&text);
        assert_hidden("PasswordCredential", format!("{p:?}"));
        let n = crate::microsoft::graph::directory::NewSecret {
            key_id: "k".into(),
            hint: "Zx8".into(),
            start: time::OffsetDateTime::now_utc(),
            end: time::OffsetDateTime::now_utc(),
            text,
        };
        zeroed_on_drop(&n.text);
        assert_hidden("NewSecret", format!("{n:?}"));

        // A token endpoint's answer: the access and refresh tokens.
        let t: crate::microsoft::signin::TokenResponse = serde_json::from_value(
            serde_json::json!({"access_token": VALUE, "refresh_token": VALUE, "expires_in": 60}),
        )
        .unwrap();
        zeroed_on_drop(&t.access_token);
        zeroed_on_drop(t.refresh_token.as_ref().unwrap());
        assert_hidden("TokenResponse", format!("{t:?}"));

        // The keyring (here its in-memory stand-in): what comes back is zeroizing too.
        let m = MemoryStore::default();
        m.set("a", VALUE).unwrap();
        let got = m.get("a").unwrap().unwrap();
        zeroed_on_drop(&got);
        assert_hidden("MemoryStore", format!("{m:?}"));

        // The portal: the submission's secret and the token from the environment.
        let sub = crate::portal::Submission {
            tenant_id: "t".into(),
            tenant_domain: "contoso.onmicrosoft.com".into(),
            tenant_name: "Contoso".into(),
            cloud: "global".into(),
            client_id: "c".into(),
            client_secret: got.clone(),
            secret_key_id: "k".into(),
            secret_expires_at: time::OffsetDateTime::now_utc(),
            ual_status: "waiting".into(),
            entra_license: "none".into(),
        };
        zeroed_on_drop(&sub.client_secret);
        assert_hidden("Submission", format!("{sub:?}"));
        // ... which the body to the portal does carry, on purpose.
        assert!(serde_json::to_string(&sub).unwrap().contains(VALUE));
        let env = crate::config::EnvOverrides::from_lookup(|k| {
            (k == crate::config::ENV_PORTAL_TOKEN || k == crate::config::ENV_EXCHANGE_TOKEN)
                .then(|| VALUE.to_string())
        })
        .unwrap();
        zeroed_on_drop(env.portal_token.as_ref().unwrap());
        zeroed_on_drop(env.exchange_token.as_ref().unwrap());
        assert_hidden("EnvOverrides", format!("{env:?}"));
    }
}
