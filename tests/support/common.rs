//! Driving the real binary against the sandbox for `secret rotate` and `tenant remove`.
//!
//! Secrets go where a technician's would: the OS keyring when a Secret Service answers (CI:
//! gnome-keyring, HAL_ONBOARD_TEST_KEYRING=1), else memory for each process only. There is no
//! file store here: a flow that needs a secret in a later process checks the documented
//! no-keyring behaviour instead when `KEYRING` is false.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use serde_json::Value;
use uuid::Uuid;

pub const APP: &str = "hal-siem-log-collector";

pub fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com")],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    t
}

/// Does an OS keyring answer here (and so in the binary this test runs)?
pub fn keyring() -> bool {
    let required = std::env::var("HAL_ONBOARD_TEST_KEYRING").is_ok_and(|v| v == "1");
    let ok = hal_onboard::secrets::KeyringStore::probe().is_ok();
    assert!(
        ok || !required,
        "HAL_ONBOARD_TEST_KEYRING=1 but no keyring answers"
    );
    ok
}

pub struct Env {
    pub sb: Sandbox,
    pub dir: tempfile::TempDir,
    pub id: Uuid,
    pub keyring: bool,
    /// Without the portal's URL and token in the environment.
    pub no_portal_env: bool,
}

impl Env {
    pub async fn start(t: TenantScenario) -> Env {
        Env::start_with(t, vec![]).await
    }

    /// The tenant under test, and others in the same sandbox cloud.
    pub async fn start_with(t: TenantScenario, others: Vec<TenantScenario>) -> Env {
        let id = t.id;
        let dir = tempfile::tempdir().unwrap();
        let mut tenants = vec![t];
        tenants.extend(others);
        let sb = Sandbox::start(
            Scenario {
                tenants,
                ..Scenario::default()
            },
            &dir.path().join("sandbox"),
        )
        .await
        .unwrap();
        Env {
            sb,
            dir,
            id,
            keyring: keyring(),
            no_portal_env: false,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn domain(&self) -> String {
        format!("t{}.onmicrosoft.com", self.id.as_u128())
    }

    /// Runs `hal-onboard` with the environment a technician would set for the sandbox.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(&[], args).await
    }

    /// As [`Env::run`], with variables set (`Some`) or removed (`None`) on top.
    pub async fn run_with(&self, extra_env: &[(&str, Option<&str>)], args: &[&str]) -> Output {
        let mut c = super::hal_onboard();
        for (k, v) in extra_env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env_remove("HAL_PORTAL_URL")
            .env_remove("HAL_PORTAL_TOKEN")
            .env_remove("HAL_ONBOARD_HOME");
        for (k, v) in self.sb.env() {
            if self.no_portal_env && k.starts_with("HAL_PORTAL_") {
                continue;
            }
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("NO_COLOR", "1");
        if !self.keyring {
            // No Secret Service answers: do not make the binary wait on the bus.
            c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        c.arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null());
        tokio::time::timeout(std::time::Duration::from_secs(180), c.output())
            .await
            .expect("hal-onboard finished within 3 minutes")
            .unwrap()
    }

    pub async fn add(&self) -> Output {
        let d = self.domain();
        self.run(&["tenant", "add", &d, "--skip-exchange", "--yes"])
            .await
    }

    pub async fn rotate(&self, extra: &[&str]) -> Output {
        let d = self.domain();
        let mut a = vec!["secret", "rotate", d.as_str(), "--yes", "--json"];
        a.extend_from_slice(extra);
        self.run(&a).await
    }

    /// The tenant's record in tenants.json (Null when forgotten).
    pub fn record(&self) -> Value {
        let doc: Value = match std::fs::read(self.home().join("tenants.json")) {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(_) => return Value::Null,
        };
        doc["tenants"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["tenantId"] == self.id.to_string())
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn state_file(&self) -> String {
        std::fs::read_to_string(self.home().join("tenants.json")).unwrap_or_default()
    }

    /// The key IDs of the secrets on our app in the sandbox.
    pub fn app_keys(&self) -> Vec<String> {
        let snap = self.sb.snapshot(self.id);
        let app = snap
            .applications
            .iter()
            .find(|a| a.display_name == APP)
            .expect("our app");
        app.password_credentials
            .iter()
            .map(|p| p.key_id.to_string().to_lowercase())
            .collect()
    }

    /// Asks the sandbox for an app-only token with the portal's credentials, as Hal would.
    pub async fn portal_credentials_work(&self) -> bool {
        let got = self
            .sb
            .portal()
            .received(&self.id.to_string())
            .expect("the portal received the tenant");
        let http = hal_onboard::http::build_client(Some(&self.sb.ca_path())).unwrap();
        let url = self
            .sb
            .login_url()
            .join(&format!("{}/oauth2/v2.0/token", self.id))
            .unwrap();
        let r = http
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", got.submission.client_id.as_str()),
                ("client_secret", got.submission.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        r.status().is_success()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// No secret value in the state file or the command's output.
pub fn assert_not_leaked(env: &Env, secret: &str, outs: &[&Output]) {
    assert!(secret.len() > 8);
    assert!(!env.state_file().contains(secret), "secret in tenants.json");
    for o in outs {
        assert!(!stdout(o).contains(secret), "secret on stdout");
        assert!(!stderr(o).contains(secret), "secret on stderr");
    }
}
