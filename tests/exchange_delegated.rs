//! Partner mode's Exchange session: `Connect-ExchangeOnline -AccessToken …
//! -DelegatedOrganization <customer>` with a partner technician's token issued at the
//! customer's authority, and the check that the session acts on the customer's organization
//! before any change (the stand-in PowerShell against the full sandbox).

use std::sync::Arc;
use std::time::Duration;

use hal_onboard::cloud::Cloud;
use hal_onboard::microsoft::exchange::auth::StaticTokenCredential;
use hal_onboard::microsoft::exchange::{
    ExchangeAuth, ExchangeError, ExchangeSignIn, ExchangeTarget, Pwsh, PwshExchange, Quiet,
};
use hal_onboard::store::{TenantRecord, UalState};
use hal_onboard::wizard::steps::exchange::{self as step, NoProgress};
use hal_sandbox::exchange::ExchangeScenario;
use hal_sandbox::token::Claims;
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const MSP: u128 = 0x100;
const CUSTOMER: u128 = 0x201;
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

fn tenant(n: u128, domain: &str, exchange: ExchangeScenario) -> TenantScenario {
    TenantScenario {
        id: Uuid::from_u128(n),
        display_name: domain.into(),
        domains: vec![domain.into()],
        exchange,
        ..TenantScenario::default()
    }
}

struct Env {
    sb: Sandbox,
    pwsh: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start(wrong_organization: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario {
        tenants: vec![
            tenant(
                MSP,
                "northwindmsp.onmicrosoft.com",
                ExchangeScenario::default(),
            ),
            tenant(
                CUSTOMER,
                "fabrikam.onmicrosoft.com",
                ExchangeScenario {
                    dehydrated: true,
                    delegated_acts_on_partner: wrong_organization,
                    ..ExchangeScenario::default()
                },
            ),
        ],
        ..Scenario::default()
    };
    let sb = Sandbox::start(scenario, dir.path()).await.unwrap();
    let pwsh = hal_sandbox::pwsh::install_standin(
        &dir.path().join("bin"),
        std::path::Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
        &sb.exchange_url(),
        &sb.ca_path(),
    )
    .unwrap();
    Env {
        sb,
        pwsh,
        _dir: dir,
    }
}

/// A partner technician's Exchange token at the customer: the customer's `tid`, the partner
/// as identity provider, GDAP roles in `wids`, no account of the customer's.
fn gdap_token(sb: &Sandbox) -> String {
    let now = sb.signer().clock().now_unix();
    let msp = Uuid::from_u128(MSP);
    let customer = Uuid::from_u128(CUSTOMER);
    sb.signer().sign(&Claims {
        aud: "https://outlook.office365.com".into(),
        iss: format!("https://sts.windows.net/{customer}/"),
        tid: customer.to_string(),
        appid: Uuid::from_u128(0xA99).to_string(),
        idp: Some(format!("https://sts.windows.net/{msp}/")),
        scp: Some("Exchange.Manage".into()),
        wids: vec![EXCHANGE_ADMIN.into()],
        iat: now,
        nbf: now,
        exp: now + 3600,
        ..Claims::default()
    })
}

fn ops(env: &Env) -> PwshExchange {
    PwshExchange::new(
        Pwsh::new(env.pwsh.clone(), Duration::from_secs(60)),
        ExchangeTarget {
            tenant_id: Uuid::from_u128(CUSTOMER),
            organization: "fabrikam.onmicrosoft.com".into(),
            cloud: Cloud::Global,
        },
        ExchangeAuth::Token(ExchangeSignIn {
            credential: Arc::new(StaticTokenCredential::new(gdap_token(&env.sb))),
            upn: None,
            delegated_organization: Some("fabrikam.onmicrosoft.com".into()),
        }),
        Arc::new(Quiet),
    )
}

fn record() -> TenantRecord {
    TenantRecord::new(
        Uuid::from_u128(CUSTOMER),
        "fabrikam.onmicrosoft.com",
        "Fabrikam",
        Cloud::Global,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_connection_onboards_the_customers_organization() {
    let env = start(false).await;
    let mut rec = record();
    let out = step::run(&ops(&env), &mut rec, &NoProgress).await.unwrap();
    assert!(out.is_done(), "{out:?}");
    assert_eq!(rec.ual.state, UalState::Enabled);
    let customer = env
        .sb
        .exchange()
        .snapshot(Uuid::from_u128(CUSTOMER))
        .unwrap();
    assert!(customer.ual_enabled && !customer.dehydrated);
    assert_eq!(
        customer.organizations_connected,
        vec!["fabrikam.onmicrosoft.com".to_string()],
        "connected with -DelegatedOrganization"
    );
    let msp = env.sb.exchange().snapshot(Uuid::from_u128(MSP)).unwrap();
    assert!(!msp.ual_enabled);
    assert_eq!(msp.counters.set_ual + msp.counters.org_config, 0);
    env.sb.shutdown().await;
}

/// The reported failure: with `-DelegatedOrganization` the session silently acts on the
/// partner's own organization. Refused before any change, naming both organizations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_the_partners_own_organization_is_refused_before_any_change() {
    let env = start(true).await;
    let before_customer = env
        .sb
        .exchange()
        .snapshot(Uuid::from_u128(CUSTOMER))
        .unwrap();
    let before_msp = env.sb.exchange().snapshot(Uuid::from_u128(MSP)).unwrap();
    let mut rec = record();
    let e = step::run(&ops(&env), &mut rec, &NoProgress)
        .await
        .unwrap_err();
    match &e {
        ExchangeError::WrongOrganization { found, expected } => {
            assert_eq!(found, "northwindmsp.onmicrosoft.com");
            assert_eq!(expected, "fabrikam.onmicrosoft.com");
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("northwindmsp.onmicrosoft.com")
            && msg.contains("fabrikam.onmicrosoft.com")
            && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert!(
        e.hint("fabrikam.onmicrosoft.com")
            .contains("Nothing was changed")
    );
    let after_customer = env
        .sb
        .exchange()
        .snapshot(Uuid::from_u128(CUSTOMER))
        .unwrap();
    let mut after_msp = env.sb.exchange().snapshot(Uuid::from_u128(MSP)).unwrap();
    assert_eq!(after_customer.dehydrated, before_customer.dehydrated);
    assert_eq!(after_customer.ual_enabled, before_customer.ual_enabled);
    assert_eq!(after_customer.counters.set_ual, 0);
    assert_eq!(after_customer.counters.enable_customization, 0);
    // Only the check's read reached the partner's organization.
    assert_eq!(after_msp.counters.org_config, 1);
    after_msp.counters.org_config = 0;
    assert_eq!(
        after_msp, before_msp,
        "the partner's organization unchanged"
    );
    assert_ne!(rec.ual.state, UalState::Enabled);
    env.sb.shutdown().await;
}
