//! Shared by the exchange_* and ual_* tests: the sandbox's Exchange Online on its own HTTPS
//! server, the stand-in PowerShell linked to it, and tokens signed for it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use hal_onboard::microsoft::exchange::ROLE_GLOBAL_ADMIN;
use hal_onboard::store::TenantStore;
use hal_sandbox::exchange::{ExchangeScenario, ExchangeSim, Standalone, router, serve_standalone};
use hal_sandbox::token::{Claims, Signer};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

pub struct World {
    pub sim: Arc<ExchangeSim>,
    pub signer: Signer,
    pub server: Standalone,
    pub pwsh: PathBuf,
    pub dir: tempfile::TempDir,
}

pub async fn world(tenants: Vec<(Uuid, ExchangeScenario)>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let signer = Signer::random();
    let sim = Arc::new(ExchangeSim::new(signer.clone(), tenants));
    let server = serve_standalone(router(sim.clone()), &dir.path().join("tls"))
        .await
        .unwrap();
    let pwsh = hal_sandbox::pwsh::install_standin(
        &dir.path().join("bin"),
        std::path::Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &server.url,
        &server.ca_path,
    )
    .unwrap();
    World {
        sim,
        signer,
        server,
        pwsh,
        dir,
    }
}

/// An Exchange Online token for `tenant`, as Entra ID would issue it to a Global Administrator.
pub fn token(signer: &Signer, tenant: Uuid) -> String {
    token_with_roles(signer, tenant, vec![ROLE_GLOBAL_ADMIN.to_string()])
}

pub fn token_with_roles(signer: &Signer, tenant: Uuid, wids: Vec<String>) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signer.sign(&Claims {
        aud: "https://outlook.office365.com".into(),
        iss: format!("https://sts.windows.net/{tenant}/"),
        tid: tenant.to_string(),
        oid: Uuid::new_v4().to_string(),
        appid: hal_onboard::microsoft::exchange::EXO_CLIENT_ID.into(),
        upn: Some("tech@msp.example".into()),
        scp: Some("Exchange.Manage".into()),
        wids,
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Default::default()
    })
}

/// The full sandbox (sign-in, Graph, Exchange, portal) with the stand-in PowerShell linked to
/// its Exchange: what `tenant add` and `ual retry` meet end to end.
pub struct FullEnv {
    pub sb: Sandbox,
    pub dir: tempfile::TempDir,
    pub pwsh: PathBuf,
    /// Extra variables for every run (e.g. the stand-in's PowerShell version).
    pub extra: Vec<(String, String)>,
}

impl FullEnv {
    pub async fn start(t: TenantScenario) -> FullEnv {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::start(
            Scenario {
                tenants: vec![t],
                ..Scenario::default()
            },
            &dir.path().join("sandbox"),
        )
        .await
        .unwrap();
        let pwsh = hal_sandbox::pwsh::install_standin(
            &dir.path().join("bin"),
            std::path::Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
            &sb.exchange_url(),
            &sb.ca_path(),
        )
        .unwrap();
        FullEnv {
            sb,
            dir,
            pwsh,
            extra: vec![],
        }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = crate::support::hal_onboard();
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("HAL_ONBOARD_PWSH", &self.pwsh)
            .env("HAL_ONBOARD_PWSH_TIMEOUT", "60")
            .env("NO_COLOR", "1")
            .env_remove("HAL_ONBOARD_EXCHANGE_TOKEN")
            .env_remove("HAL_ONBOARD_HOME")
            .arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .expect("hal-onboard finished within 2 minutes")
            .unwrap();
        if std::env::var_os("SHOW_OUTPUT").is_some() {
            eprintln!("--- {args:?}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        out
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn record(&self, id: Uuid) -> hal_onboard::store::TenantRecord {
        TenantStore::open(&self.home())
            .unwrap()
            .load()
            .unwrap()
            .get(id)
            .cloned()
            .expect("the tenant is stored")
    }
}

/// A tenant whose Global Administrator signs in at once, with this Exchange organization.
pub fn exchange_tenant(n: u128, exchange: ExchangeScenario) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Tenant {n}"),
        domains: vec![format!("t{n}.onmicrosoft.com")],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        exchange,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@t{n}.onmicrosoft.com");
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    t
}
