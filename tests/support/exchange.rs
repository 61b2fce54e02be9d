//! Shared by the exchange_* and ual_* tests: the sandbox's Exchange Online on its own HTTPS
//! server, the stand-in PowerShell linked to it, and tokens signed for it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use hal_onboard::microsoft::exchange::ROLE_GLOBAL_ADMIN;
use hal_sandbox::exchange::{ExchangeScenario, ExchangeSim, Standalone, router, serve_standalone};
use hal_sandbox::token::{Claims, Signer};
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
