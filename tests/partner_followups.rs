//! Issue 13: a customer onboarded through the partner sign-in (`via: partner` in its record)
//! is shown as such by `list`, and `ual retry`, `secret rotate` and `tenant remove` reach it
//! through the partner sign-in, never asking for the customer's admin.

use crate::support::store as store_support;

use hal_onboard::store::{StoreDoc, Via};
use serde_json::Value;
use store_support::{complete, doc, hal, stderr, stdout, write_doc};

fn partner_and_direct() -> StoreDoc {
    let mut p = complete(1, "contoso.onmicrosoft.com", "Contoso Ltd", 700);
    p.via = Via::Partner;
    let d = complete(2, "fabrikam.onmicrosoft.com", "Fabrikam", 700);
    doc(vec![p, d])
}

#[test]
fn list_marks_partner_tenants_and_explains_the_mark() {
    let home = tempfile::tempdir().unwrap();
    write_doc(home.path(), &partner_and_direct());
    let out = hal(home.path(), &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (table, err) = (stdout(&out), stderr(&out));
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {table}"))
            .to_string()
    };
    assert!(
        row("Contoso Ltd").starts_with("Contoso Ltd (P)  contoso.onmicrosoft.com"),
        "{table}"
    );
    assert!(!row("Fabrikam").contains("(P)"), "{table}");
    assert!(
        err.contains("(P) = 1 onboarded via partner (GDAP)")
            && err.contains("hal-onboard partner login"),
        "{err}"
    );

    // A long partner name keeps its mark and the column its width.
    let mut long = complete(
        3,
        "alpine.onmicrosoft.com",
        "Alpine Ski House and Adventure Works",
        700,
    );
    long.via = Via::Partner;
    write_doc(home.path(), &doc(vec![long]));
    let table = stdout(&hal(home.path(), &["list"]));
    assert!(table.contains("Alpine Ski House … (P)  alpine"), "{table}");
}

#[test]
fn list_json_has_via_and_a_record_without_it_is_direct() {
    let home = tempfile::tempdir().unwrap();
    write_doc(home.path(), &partner_and_direct());
    // An older record, written before `via` existed: the key is not there at all.
    let path = home.path().join("tenants.json");
    let mut raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(raw["tenants"][0]["via"], "partner");
    assert!(
        raw["tenants"][1].get("via").is_none(),
        "direct is not written"
    );
    let mut older = raw["tenants"][1].clone();
    older["tenantId"] = "10000000-0000-4000-8000-0000000000aa".into();
    older["primaryDomain"] = "adatum.onmicrosoft.com".into();
    older["domains"] = serde_json::json!(["adatum.onmicrosoft.com"]);
    older["displayName"] = "Adatum".into();
    raw["tenants"].as_array_mut().unwrap().push(older);
    std::fs::write(&path, serde_json::to_vec(&raw).unwrap()).unwrap();

    let out = hal(home.path(), &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let via: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["domain"].as_str().unwrap(), t["via"].as_str().unwrap()))
        .collect();
    assert_eq!(
        via,
        [
            ("adatum.onmicrosoft.com", "direct"),
            ("contoso.onmicrosoft.com", "partner"),
            ("fabrikam.onmicrosoft.com", "direct"),
        ]
    );

    // An unfinished partner tenant resumes through partner mode, never its admin's sign-in.
    let mut unfinished = store_support::blank(4, "northwind.onmicrosoft.com", "Northwind");
    unfinished.via = Via::Partner;
    write_doc(home.path(), &doc(vec![unfinished]));
    let v: Value = serde_json::from_str(&stdout(&hal(home.path(), &["list", "--json"]))).unwrap();
    assert_eq!(
        v[0]["nextAction"]["command"],
        "hal-onboard tenant add --partner northwind.onmicrosoft.com"
    );
    let table = stdout(&hal(home.path(), &["list"]));
    assert!(
        table.contains("  → hal-onboard tenant add --partner northwind.onmicrosoft.com"),
        "{table}"
    );
}

// ---------------------------------------------------------------------------------------------
// A customer onboarded through partner mode, in the sandbox: `ual retry`, `secret rotate` and
// `tenant remove --delete-app` reach it through the partner sign-in, with no device code at
// the customer.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use hal_sandbox::exchange::ExchangeScenario;
use hal_sandbox::gdap::{AssignmentScenario, GroupScenario, PartnerScenario, RelationshipScenario};
use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const EXCHANGE_ADMIN: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
const OUR_APP: &str = "hal-siem-log-collector";

/// An MSP tenant whose technician reaches one customer through an active GDAP relationship
/// (Cloud Application Administrator, Privileged Role Administrator, Exchange Administrator),
/// the partner app registered in the MSP's tenant and consented in the customer, and
/// config.json's `partner` object written as `partner setup` writes it.
struct PartnerWorld {
    sb: Sandbox,
    dir: tempfile::TempDir,
    pwsh: PathBuf,
    msp: Uuid,
    customer: Uuid,
    app_id: String,
}

impl PartnerWorld {
    async fn start(n: u128, exchange: ExchangeScenario) -> PartnerWorld {
        PartnerWorld::start_with(n, exchange, true, vec![]).await
    }

    /// `mfa: false`: the technician signs in to the MSP's tenant with a password only.
    /// `others`: more tenants in the same cloud (customers onboarded directly).
    async fn start_with(
        n: u128,
        exchange: ExchangeScenario,
        mfa: bool,
        others: Vec<TenantScenario>,
    ) -> PartnerWorld {
        let msp = Uuid::from_u128(n << 16 | 0x100);
        let customer = Uuid::from_u128(n << 16 | 0x201);
        let tech = Uuid::from_u128(n << 16 | 0xaa);
        let (agents, onboarders) = (
            Uuid::from_u128(n << 16 | 0xa1),
            Uuid::from_u128(n << 16 | 0xa3),
        );
        let mut m = TenantScenario {
            id: msp,
            display_name: "Northwind MSP".into(),
            domains: vec![format!("msp{n}.onmicrosoft.com")],
            device_code_approve_after_polls: 0,
            device_code_interval: 0,
            ..TenantScenario::default()
        };
        m.signed_in_user.id = tech;
        m.signed_in_user.upn = format!("tech@msp{n}.onmicrosoft.com");
        m.signed_in_user.mfa = mfa;
        // The customer's own admin exists (a direct sign-in would work), so a test that sees
        // no device code at the customer knows none was asked for.
        let mut c = TenantScenario {
            id: customer,
            display_name: format!("Customer {n}"),
            domains: vec![format!("c{n}.onmicrosoft.com")],
            licenses: vec!["SPE_E5".into()],
            device_code_approve_after_polls: 0,
            device_code_interval: 0,
            exchange,
            ..TenantScenario::default()
        };
        c.signed_in_user.upn = format!("admin@c{n}.onmicrosoft.com");
        c.signed_in_user.roles = vec!["Global Administrator".into()];
        let roles: Vec<String> = [CLOUD_APP_ADMIN, PRA, EXCHANGE_ADMIN]
            .iter()
            .map(|r| r.to_string())
            .collect();
        let partner = PartnerScenario {
            tenant: msp,
            groups: vec![
                GroupScenario {
                    id: agents,
                    display_name: "AdminAgents".into(),
                    members: vec![tech],
                },
                GroupScenario {
                    id: onboarders,
                    display_name: "Onboarders".into(),
                    members: vec![tech],
                },
            ],
            relationships: vec![RelationshipScenario {
                display_name: "Onboarding".into(),
                customer,
                status: "active".into(),
                unified_roles: roles.clone(),
                ends_in_days: 300,
                access_assignments: vec![AssignmentScenario {
                    group: onboarders,
                    unified_roles: roles,
                    ..AssignmentScenario::default()
                }],
                ..RelationshipScenario::default()
            }],
            ..PartnerScenario::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::start(
            Scenario {
                tenants: [vec![m, c], others].concat(),
                partner: Some(partner),
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
        let mut w = PartnerWorld {
            sb,
            dir,
            pwsh,
            msp,
            customer,
            app_id: String::new(),
        };
        w.app_id = w.partner_setup().await;
        w.consent_in_customer().await;
        w
    }

    fn msp_domain(&self) -> String {
        self.sb
            .tenants()
            .iter()
            .find(|t| t.id == self.msp)
            .unwrap()
            .domains[0]
            .clone()
    }

    fn domain(&self) -> String {
        self.sb
            .tenants()
            .iter()
            .find(|t| t.id == self.customer)
            .unwrap()
            .domains[0]
            .clone()
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `partner setup` in the MSP's tenant, as its admin runs it once: the partner app, and
    /// config.json's `partner` object. Its appId.
    async fn partner_setup(&self) -> String {
        let msp = self.msp_domain();
        let out = self
            .run(&["partner", "setup", "--tenant", msp.as_str(), "--yes"])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let cfg: Value =
            serde_json::from_slice(&std::fs::read(self.home().join("config.json")).unwrap())
                .unwrap();
        cfg["partner"]["clientId"].as_str().unwrap().to_string()
    }

    /// Partner Center's application consent for the partner app in the customer, as the
    /// partner run's consent step leaves it.
    async fn consent_in_customer(&self) {
        let http = hal_sandbox::contract::client_trusting(&self.sb.ca_path()).unwrap();
        let token = self
            .sb
            .user_access_token(
                self.msp,
                "https://api.partnercenter.microsoft.com/user_impersonation",
            )
            .unwrap();
        let url = self
            .sb
            .partner_center_url()
            .join(&format!(
                "v1/customers/{}/applicationconsents",
                self.customer
            ))
            .unwrap();
        let r = http
            .post(url)
            .bearer_auth(token)
            .header("Accept", "application/json")
            .json(&serde_json::json!({
                "applicationId": self.app_id,
                "applicationGrants": [
                    {"enterpriseApplicationId": "00000003-0000-0000-c000-000000000000",
                     "scope": "Application.ReadWrite.All,AppRoleAssignment.ReadWrite.All,Directory.Read.All"},
                    {"enterpriseApplicationId": "00000002-0000-0ff1-ce00-000000000000",
                     "scope": "Exchange.Manage"}
                ],
                "displayName": "hal-onboard partner"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }

    fn forget_partner_mode(&self) {
        std::fs::write(self.home().join("config.json"), b"{}").unwrap();
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = crate::support::hal_onboard();
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("HAL_ONBOARD_PWSH", &self.pwsh)
            .env("HAL_ONBOARD_PWSH_TIMEOUT", "60")
            .env("NO_COLOR", "1")
            .arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null());
        if !crate::support::common::keyring() {
            c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        let out = tokio::time::timeout(Duration::from_secs(180), c.output())
            .await
            .expect("hal-onboard finished within 3 minutes")
            .unwrap();
        if std::env::var_os("SHOW_OUTPUT").is_some() {
            eprintln!("--- {args:?}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        out
    }

    /// The customer onboarded as a partner run leaves it: our app, its secret and grants made
    /// in the customer's tenant, the record saying `via: partner`. (Made here by a direct run,
    /// then marked: what the later commands read is the record and the tenant.)
    async fn onboard(&self, skip_exchange: bool) {
        let d = self.domain();
        let mut args = vec!["tenant", "add", d.as_str(), "--yes"];
        if skip_exchange {
            args.push("--skip-exchange");
        }
        let out = self.run(&args).await;
        assert!(
            matches!(out.status.code(), Some(0) | Some(3)),
            "{}",
            stderr(&out)
        );
        let store = hal_onboard::store::TenantStore::open(&self.home()).unwrap();
        let id = self.customer;
        store
            .update(|d| {
                let r = d.tenants.iter_mut().find(|r| r.tenant_id == id).unwrap();
                r.via = Via::Partner;
            })
            .unwrap();
        // Nothing of the customer admin's sign-in is left for the commands under test.
        let secrets = hal_onboard::secrets::KeyringStore::probe();
        if let Ok(k) = secrets {
            use hal_onboard::secrets::SecretStore;
            for a in [
                hal_onboard::secrets::account::graph_refresh_token(id),
                hal_onboard::secrets::account::exchange_refresh_token(id),
            ] {
                k.delete(&a).unwrap();
            }
        }
        self.sb.clear_requests();
    }

    fn record(&self) -> Option<hal_onboard::store::TenantRecord> {
        hal_onboard::store::TenantStore::open(&self.home())
            .unwrap()
            .load()
            .unwrap()
            .get(self.customer)
            .cloned()
    }

    /// Device codes asked for since the last `clear_requests`: (at the customer, at the MSP).
    fn device_codes(&self) -> (usize, usize) {
        let reqs = self.sb.requests();
        let at = |t: Uuid| {
            reqs.iter()
                .filter(|r| r.method == "POST" && r.path.ends_with("/oauth2/v2.0/devicecode"))
                .filter(|r| r.tenant == Some(t) || r.path.contains(&t.to_string()))
                .count()
        };
        (at(self.customer), at(self.msp))
    }

    fn our_app_keys(&self) -> Vec<String> {
        let snap = self.sb.snapshot(self.customer);
        snap.applications
            .iter()
            .filter(|a| a.display_name == OUR_APP)
            .flat_map(|a| a.password_credentials.iter().map(|p| p.key_id.to_string()))
            .collect()
    }

    fn our_apps(&self) -> usize {
        self.sb
            .snapshot(self.customer)
            .applications
            .iter()
            .filter(|a| a.display_name == OUR_APP)
            .count()
    }
}

/// The partner's one sign-in in the MSP's tenant (no partner sign-in was saved before), never
/// the customer's.
fn assert_partner_sign_in_only(w: &PartnerWorld, what: &str) {
    let (customer, msp) = w.device_codes();
    assert_eq!(customer, 0, "{what}: a device code at the customer");
    assert_eq!(msp, 1, "{what}: partner device codes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotate_on_a_partner_customer_uses_the_partner_sign_in() {
    let w = PartnerWorld::start(0x6101, ExchangeScenario::default()).await;
    w.onboard(true).await;
    let before = w.our_app_keys();
    assert_eq!(before.len(), 1);
    let d = w.domain();
    let out = w.run(&["secret", "rotate", &d, "--yes", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_partner_sign_in_only(&w, "secret rotate");
    // The one code says why and whom to sign in as: the MSP's technician, not an admin there.
    let err = stderr(&out);
    assert!(
        err.contains("onboarded through partner mode (GDAP)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "your own account of the MSP's tenant {}",
            w.msp_domain()
        )),
        "{err}"
    );
    assert!(!err.contains("Global Administrator"), "{err}");
    let after = w.our_app_keys();
    assert_eq!(after.len(), 1, "one secret, the new one");
    assert_ne!(after, before, "rotated");
    let rec = w.record().unwrap();
    assert_eq!(rec.via, Via::Partner, "still a partner tenant");
    assert_eq!(
        rec.secret.as_ref().unwrap().key_id.to_lowercase(),
        after[0].to_lowercase()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_remove_delete_app_on_a_partner_customer_uses_the_partner_sign_in() {
    let w = PartnerWorld::start(0x6102, ExchangeScenario::default()).await;
    w.onboard(true).await;
    assert_eq!(w.our_apps(), 1);
    let d = w.domain();
    let out = w
        .run(&["tenant", "remove", &d, "--delete-app", "--yes", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_partner_sign_in_only(&w, "tenant remove --delete-app");
    assert_eq!(w.our_apps(), 0, "the app is deleted");
    assert!(w.record().is_none(), "the tenant is forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_on_a_partner_customer_uses_the_partner_sign_in() {
    let w = PartnerWorld::start(
        0x6103,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..ExchangeScenario::default()
        },
    )
    .await;
    w.onboard(false).await;
    let rec = w.record().unwrap();
    assert_eq!(
        rec.ual.state,
        hal_onboard::store::UalState::WaitingPropagation,
        "set up: UAL waits"
    );
    let d = w.domain();
    let out = w.run(&["ual", "retry", &d, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_partner_sign_in_only(&w, "ual retry");
    let rec = w.record().unwrap();
    assert_eq!(rec.ual.state, hal_onboard::store::UalState::Enabled);
    assert!(
        w.sb.exchange()
            .snapshot(w.customer)
            .unwrap()
            .counters
            .set_ual
            >= 2
    );
}

/// Each of the three refuses, changing nothing and asking no one to sign in, when the record
/// says partner and this home has no partner mode; `--direct` is the named way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_partner_mode_each_refuses_and_names_partner_login() {
    let w = PartnerWorld::start(
        0x6104,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..ExchangeScenario::default()
        },
    )
    .await;
    w.onboard(false).await;
    w.forget_partner_mode();
    let d = w.domain();
    let (keys, rec) = (w.our_app_keys(), w.record().unwrap());
    let connects = || {
        w.sb.exchange()
            .snapshot(w.customer)
            .unwrap()
            .counters
            .connects
    };
    let connected = connects();
    for args in [
        vec!["secret", "rotate", d.as_str(), "--yes"],
        vec!["tenant", "remove", d.as_str(), "--delete-app", "--yes"],
    ] {
        let out = w.run(&args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("partner mode is not set up"),
            "{args:?}: {err}"
        );
        assert!(err.contains("hal-onboard partner login"), "{args:?}: {err}");
        assert!(err.contains("--direct"), "{args:?}: {err}");
        assert!(err.contains("Nothing was changed"), "{args:?}: {err}");
    }
    // ual retry reports it per tenant (others in the run would go on) and exits 1.
    let out = w.run(&["ual", "retry", &d, "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["tenants"][0];
    assert_eq!(t["result"], "error", "{v}");
    assert_eq!(t["error"]["code"], "partnerNotSetUp", "{v}");
    assert!(
        t["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("hal-onboard partner login"),
        "{v}"
    );
    assert_eq!(w.device_codes(), (0, 0), "nobody was asked to sign in");
    assert_eq!(w.our_app_keys(), keys, "nothing changed in the tenant");
    assert_eq!(w.record().unwrap(), rec, "nothing changed in the record");
    assert_eq!(connects(), connected, "no Exchange session");
}

/// After `partner login` the saved partner sign-in is used: with an OS keyring no one is asked
/// to sign in at all; without one (the sign-in lived in that process only) the command signs
/// in as the partner once more — never at the customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_partner_sign_in_is_used_without_a_prompt() {
    let w = PartnerWorld::start(0x6105, ExchangeScenario::default()).await;
    w.onboard(true).await;
    let login = w.run(&["partner", "login"]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    w.sb.clear_requests();
    let d = w.domain();
    let out = w.run(&["secret", "rotate", &d, "--yes"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want = if crate::support::common::keyring() {
        0
    } else {
        1
    };
    assert_eq!(w.device_codes(), (0, want), "{}", stderr(&out));
}

/// A partner sign-in that partner mode refuses (no MFA) stops the command before any change,
/// with the reason, `hal-onboard partner login` and `--direct`; `ual retry` says it per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_partner_sign_in_changes_nothing_and_says_why() {
    let w = PartnerWorld::start_with(
        0x6106,
        ExchangeScenario {
            dehydrated: true,
            propagation_attempts: 1,
            ..ExchangeScenario::default()
        },
        false,
        vec![],
    )
    .await;
    w.onboard(false).await;
    let (keys, rec) = (w.our_app_keys(), w.record().unwrap());
    let d = w.domain();
    let out = w.run(&["secret", "rotate", &d, "--yes"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the partner sign-in failed"), "{err}");
    assert!(err.contains("multi-factor authentication"), "{err}");
    assert!(err.contains("hal-onboard partner login"), "{err}");
    assert!(err.contains("--direct"), "{err}");

    let out = w.run(&["ual", "retry", &d, "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tenants"][0]["error"]["code"], "partnerSignIn", "{v}");
    assert_eq!(w.device_codes().0, 0, "never the customer's admin");
    assert_eq!(w.our_app_keys(), keys);
    assert_eq!(w.record().unwrap(), rec);
}

/// `--direct`: the technician chose the customer's own admin for this run (one device code at
/// the customer, none at the MSP); the record stays a partner one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_signs_in_as_the_customer_admin_for_this_run() {
    let w = PartnerWorld::start(0x6107, ExchangeScenario::default()).await;
    w.onboard(true).await;
    w.forget_partner_mode();
    let d = w.domain();
    let out = w.run(&["secret", "rotate", &d, "--yes", "--direct"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(w.device_codes(), (1, 0));
    assert_eq!(w.record().unwrap().via, Via::Partner);
    // Without --delete-app there is nothing to sign in to: --direct is refused as misuse.
    let out = w.run(&["tenant", "remove", &d, "--direct", "--yes"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(w.record().is_some());
}

/// Exchange refusing the partner technician (no Exchange Administrator in the GDAP roles) is
/// explained in partner words: the relationship's roles, not "sign in as an admin of it".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_names_the_gdap_role_when_exchange_refuses_the_partner() {
    let w = PartnerWorld::start(
        0x6108,
        ExchangeScenario {
            missing_role: true,
            ..ExchangeScenario::default()
        },
    )
    .await;
    w.onboard(true).await;
    let d = w.domain();
    let out = w.run(&["ual", "retry", &d, "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_partner_sign_in_only(&w, "ual retry");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["tenants"][0]["error"];
    assert_eq!(e["code"], "missingRole", "{v}");
    let hint = e["hint"].as_str().unwrap();
    assert!(hint.contains("GDAP roles"), "{hint}");
    assert!(hint.contains("hal-onboard partner customers"), "{hint}");
}

/// `ual retry` over every waiting tenant, one onboarded directly and one through partner mode,
/// in a home without partner mode: the direct one is finished with its admin's sign-in, the
/// partner one is reported (nobody asked to sign in for it) and the run exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ual_retry_over_direct_and_partner_tenants_finishes_the_direct_ones() {
    let waiting = ExchangeScenario {
        dehydrated: true,
        propagation_attempts: 1,
        ..ExchangeScenario::default()
    };
    let direct = Uuid::from_u128(0x6109 << 16 | 0x301);
    let mut d = TenantScenario {
        id: direct,
        display_name: "Direct Customer".into(),
        domains: vec!["direct6109.onmicrosoft.com".into()],
        licenses: vec!["SPE_E5".into()],
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        exchange: waiting.clone(),
        ..TenantScenario::default()
    };
    d.signed_in_user.upn = "admin@direct6109.onmicrosoft.com".into();
    let w = PartnerWorld::start_with(0x6109, waiting, true, vec![d]).await;
    let add = w
        .run(&["tenant", "add", "direct6109.onmicrosoft.com", "--yes"])
        .await;
    assert_eq!(add.status.code(), Some(3), "{}", stderr(&add));
    w.onboard(false).await;
    w.forget_partner_mode();

    let out = w.run(&["ual", "retry", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |id: Uuid| {
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenantId"] == id.to_string())
            .unwrap_or_else(|| panic!("{id}: {v}"))
            .clone()
    };
    assert_eq!(by(direct)["result"], "enabled", "{v}");
    assert_eq!(by(w.customer)["error"]["code"], "partnerNotSetUp", "{v}");
    let reqs = w.sb.requests();
    let codes_at = |t: Uuid| {
        reqs.iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/devicecode"))
            .filter(|r| r.tenant == Some(t) || r.path.contains(&t.to_string()))
            .count()
    };
    assert_eq!(codes_at(w.customer), 0, "never the partner tenant's admin");
    assert_eq!(codes_at(w.msp), 0, "no partner mode: no partner sign-in");
    assert!(
        codes_at(direct) <= 1,
        "the direct tenant's admin, at most once"
    );
}
