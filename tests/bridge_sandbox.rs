//! The Exchange simulator mounted in the full sandbox (`/exchange/` beside sign-in and Graph),
//! driven through the stand-in PowerShell with the sandbox's own TLS and signer.

use crate::support::exchange as exchange_support;

use std::sync::Arc;
use std::time::Duration;

use hal_onboard::cloud::Cloud;
use hal_onboard::microsoft::exchange::auth::StaticTokenCredential;
use hal_onboard::microsoft::exchange::{
    ExchangeAuth, ExchangeSignIn, ExchangeTarget, Pwsh, PwshExchange, Quiet,
};
use hal_onboard::store::{TenantRecord, UalState};
use hal_onboard::wizard::steps::exchange::{self as step, NoProgress};
use hal_sandbox::{Sandbox, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_demo_scenario_waits_then_finishes_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::demo();
    let id = scenario.tenants[0].id;
    let sandbox = Sandbox::start(scenario, dir.path()).await.unwrap();
    let pwsh = hal_sandbox::pwsh::install_standin(
        &dir.path().join("bin"),
        std::path::Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &sandbox.exchange_url(),
        &sandbox.ca_path(),
    )
    .unwrap();
    let token = exchange_support::token(sandbox.signer(), id);
    let ops = || {
        PwshExchange::new(
            Pwsh::new(pwsh.clone(), Duration::from_secs(60)),
            ExchangeTarget {
                tenant_id: id,
                organization: "contoso.onmicrosoft.com".into(),
                cloud: Cloud::Global,
            },
            ExchangeAuth::Token(ExchangeSignIn {
                credential: Arc::new(StaticTokenCredential::new(token.clone())),
                upn: Some("admin@contoso.onmicrosoft.com".into()),
                delegated_organization: None,
            }),
            Arc::new(Quiet),
        )
    };
    let mut rec = TenantRecord::new(id, "contoso.onmicrosoft.com", "Contoso", Cloud::Global);
    let first = step::run(&ops(), &mut rec, &NoProgress).await.unwrap();
    assert!(
        !first.is_done(),
        "demo: dehydrated, 2 refusals after hydration"
    );
    assert_eq!(rec.ual.state, UalState::WaitingPropagation);
    assert!(
        !step::retry(&ops(), &mut rec, &NoProgress)
            .await
            .unwrap()
            .is_done()
    );
    assert!(
        step::retry(&ops(), &mut rec, &NoProgress)
            .await
            .unwrap()
            .is_done()
    );
    assert_eq!(rec.ual.state, UalState::Enabled);
    let ex = sandbox.exchange().snapshot(id).unwrap();
    assert!(ex.ual_enabled && !ex.dehydrated);
    assert_eq!(ex.counters.set_ual_refused, 2);
    let log = sandbox.requests();
    assert!(
        log.iter()
            .any(|r| r.path.contains("/exchange/") && r.path.ends_with("/cmdlet")),
        "requests went through the sandbox's one port"
    );
    sandbox.shutdown().await;
}
