//! `hal-onboard partner customers [--json]` against the sandbox's documented partner
//! (docs/scenarios/partner.json), signed in as its technician: the table, the JSON contract
//! (docs/partner-customers-json.md), `--skip-exchange`, what this home already onboarded, the
//! AdminAgents-empty answer and a home without partner mode.
//!
//! Every test has tenant ids of its own (`0d0a{n}00-…`, n from 0xC1: `partner_login` uses low
//! numbers): the OS keyring the tests share keeps the partner sign-in per MSP tenant.

use std::process::Output;

use hal_onboard::cloud::Cloud;
use hal_onboard::store::{StoreDoc, TenantRecord, Via};
use hal_sandbox::{Sandbox, Scenario};
use serde_json::Value;
use uuid::Uuid;

use crate::support::common::{keyring, stderr, stdout};

/// Microsoft Graph Command Line Tools: a client the sandbox's MSP tenant knows (the partner
/// app's own id comes from `partner setup`, not tested here).
const CLIENT: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const FABRIKAM: u128 = 0x201;
const TAILSPIN: u128 = 0x202;
const LITWARE: u128 = 0x203;
const ADATUM: u128 = 0x204;

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    keyring: bool,
    n: u8,
}

async fn world(n: u8, edit: impl FnOnce(&mut Scenario)) -> World {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/scenarios/partner.json"
    ))
    .unwrap()
    .replace("0d0a0000-", &format!("0d0a{n:02x}00-"));
    let mut s: Scenario = serde_json::from_str(&text).unwrap();
    s.tenants[0].device_code_approve_after_polls = 0;
    s.tenants[0].device_code_interval = 0;
    edit(&mut s);
    let msp = s.tenants[0].id;
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(s, &dir.path().join("sandbox"))
        .await
        .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(
        home.join("config.json"),
        serde_json::to_vec(&serde_json::json!({"partner": {
            "clientId": CLIENT, "tenantId": msp, "domain": "northwindmsp.onmicrosoft.com"
        }}))
        .unwrap(),
    )
    .unwrap();
    World {
        sb,
        dir,
        keyring: keyring(),
        n,
    }
}

impl World {
    /// This test's id of the documented scenario's `0d0a0000-0000-4000-8000-{last}`.
    fn id(&self, last: u128) -> String {
        format!("0d0a{:02x}00-0000-4000-8000-{last:012x}", self.n)
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut c = crate::support::hal_onboard();
        c.env_remove("HAL_ONBOARD_HOME");
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("NO_COLOR", "1");
        if !self.keyring {
            c.env_remove("DBUS_SESSION_BUS_ADDRESS");
        }
        c.arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(args)
            .stdin(std::process::Stdio::null());
        tokio::time::timeout(std::time::Duration::from_secs(120), c.output())
            .await
            .expect("finished within 2 minutes")
            .unwrap()
    }
}

fn by_id(v: &Value, id: String) -> &Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenantId"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in {v}"))
}

#[tokio::test]
async fn the_table_shows_each_customer_its_roles_and_verdict() {
    let w = world(0xC1, |_| {}).await;
    // Fabrikam was onboarded from this home through the partner sign-in.
    let mut rec = TenantRecord::new(
        Uuid::parse_str(&w.id(FABRIKAM)).unwrap(),
        "fabrikam.onmicrosoft.com",
        "Fabrikam (GDAP active)",
        Cloud::Global,
    );
    rec.via = Via::Partner;
    let doc = StoreDoc {
        tenants: vec![rec],
        ..StoreDoc::default()
    };
    std::fs::write(
        w.home().join("tenants.json"),
        serde_json::to_vec(&doc).unwrap(),
    )
    .unwrap();

    let out = w.run(&["partner", "customers"]).await;
    let (table, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{err}");
    let row = |name: &str| {
        table
            .lines()
            .position(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {table}"))
    };
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CUSTOMER"), "{table}");
    let f = row("Fabrikam");
    assert!(
        lines[f].contains(&w.id(FABRIKAM)) && lines[f].contains("Onboarding"),
        "{table}"
    );
    assert!(lines[f].contains("EXPIRING"), "ends in 20 days: {table}");
    assert!(
        lines[f].contains("incomplete"),
        "onboarded (in part) here: {table}"
    );
    assert!(
        lines[f + 1].contains(
            "roles: Cloud Application Administrator, Privileged Role Administrator, Exchange Administrator"
        ),
        "{table}"
    );
    let l = row("Litware");
    assert!(lines[l].contains("BLOCKED GDAP_NO_RELATIONSHIP"), "{table}");
    assert!(lines[l].contains("  no  "), "not onboarded: {table}");
    assert!(
        lines[l + 2].starts_with("  → Microsoft-led relationships are not used"),
        "{table}"
    );
    let a = row("Adatum");
    assert!(
        lines[a].contains("BLOCKED GDAP_ASSIGNMENT_PENDING"),
        "{table}"
    );
    assert!(lines[a + 1].contains("roles: none"), "{table}");
    assert!(
        lines[a + 2].contains("pending: Global Administrator"),
        "{table}"
    );
    assert!(
        lines[a + 3].starts_with("  → Wait until Microsoft"),
        "{table}"
    );
    assert!(!table.contains("Tailspin"), "expired: not offered: {table}");
    assert!(
        err.contains("3 customers: 0 READY, 1 EXPIRING, 2 BLOCKED; 1 onboarded"),
        "{err}"
    );
}

#[tokio::test]
async fn json_is_the_documented_shape_with_the_issues_codes() {
    let w = world(0xC2, |_| {}).await;
    let out = w.run(&["partner", "customers", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let text = text.trim_end();
    assert!(
        text.starts_with("[\n{") && text.ends_with("}\n]"),
        "one per line: {text}"
    );
    let v: Value = serde_json::from_str(text).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenantId"] != w.id(TAILSPIN).as_str())
    );

    let f = by_id(&v, w.id(FABRIKAM));
    let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "code",
            "displayName",
            "endsAt",
            "fix",
            "missingRoles",
            "onboarded",
            "pendingRoles",
            "reason",
            "relationships",
            "roles",
            "state",
            "tenantId",
            "verdict",
            "via"
        ]
    );
    assert_eq!(f["verdict"], "EXPIRING");
    assert_eq!(f["code"], Value::Null);
    assert_eq!(f["onboarded"], false);
    assert_eq!(f["state"], Value::Null);
    assert!(f["endsAt"].as_str().unwrap().ends_with('Z'), "{f}");
    assert_eq!(f["relationships"][0]["displayName"], "Onboarding");
    assert_eq!(f["relationships"][0]["microsoftLed"], false);
    assert_eq!(f["roles"][1]["role"], "Privileged Role Administrator");
    assert_eq!(
        f["roles"][1]["roleId"],
        "e8611ab8-c189-46e8-94e1-60213ab1f814"
    );
    assert_eq!(f["roles"][1]["relationship"], "Onboarding");
    assert_eq!(f["roles"][1]["group"], "Onboarders");

    let l = by_id(&v, w.id(LITWARE));
    assert_eq!(l["verdict"], "BLOCKED");
    assert_eq!(l["code"], "GDAP_NO_RELATIONSHIP");
    assert_eq!(l["relationships"][0]["microsoftLed"], true);
    assert!(
        l["fix"]
            .as_str()
            .unwrap()
            .contains("Request admin relationship"),
        "{l}"
    );

    let a = by_id(&v, w.id(ADATUM));
    assert_eq!(a["code"], "GDAP_ASSIGNMENT_PENDING");
    assert_eq!(a["pendingRoles"][0]["role"], "Global Administrator");
    assert_eq!(
        a["missingRoles"],
        serde_json::json!([
            "Cloud Application Administrator",
            "Privileged Role Administrator",
            "Exchange Administrator"
        ])
    );
    assert!(
        stderr(&out).lines().all(|l| !l.contains("customers:")),
        "no summary with --json"
    );
}

#[tokio::test]
async fn skip_exchange_judges_without_exchange_administrator() {
    // Fabrikam's assignment lacks Exchange Administrator and its relationship ends in a year.
    let w = world(0xC3, |s| {
        let p = s.partner.as_mut().unwrap();
        let r = &mut p.relationships[0];
        r.ends_in_days = 365;
        r.access_assignments[0].unified_roles.pop();
    })
    .await;
    let v: Value =
        serde_json::from_str(&stdout(&w.run(&["partner", "customers", "--json"]).await)).unwrap();
    let f = by_id(&v, w.id(FABRIKAM));
    assert_eq!(f["code"], "GDAP_ROLE_MISSING");
    assert_eq!(
        f["missingRoles"],
        serde_json::json!(["Exchange Administrator"])
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .starts_with("In relationship 'Onboarding', assign Exchange Administrator"),
        "{f}"
    );
    let out = w
        .run(&["partner", "customers", "--json", "--skip-exchange"])
        .await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(by_id(&v, w.id(FABRIKAM))["verdict"], "READY");
}

#[tokio::test]
async fn outside_admin_agents_the_answer_is_the_admin_agents_hint() {
    let w = world(0xC4, |s| {
        let p = s.partner.as_mut().unwrap();
        p.groups
            .iter_mut()
            .find(|g| g.display_name == "AdminAgents")
            .unwrap()
            .members
            .clear();
    })
    .await;
    let out = w.run(&["partner", "customers"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("your partner tenant shows you no GDAP relationship"),
        "{err}"
    );
    assert!(err.contains("AdminAgents"), "{err}");
    assert!(!err.to_lowercase().contains("no customers"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[tokio::test]
async fn a_home_without_partner_mode_says_how_to_set_it_up() {
    let w = world(0xC5, |_| {}).await;
    std::fs::write(w.home().join("config.json"), b"{}").unwrap();
    let out = w.run(&["partner", "customers"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("partner mode is not set up"), "{err}");
    assert!(
        err.contains("`hal-onboard partner setup --tenant <your MSP domain>`"),
        "{err}"
    );
}

#[tokio::test]
async fn it_uses_the_partner_sign_in_saved_by_partner_login() {
    let w = world(0xC6, |_| {}).await;
    let login = w.run(&["partner", "login"]).await;
    assert_eq!(login.status.code(), Some(0), "{}", stderr(&login));
    let out = w.run(&["partner", "customers", "--json"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    if w.keyring {
        assert!(!err.contains("enter the code"), "no second sign-in: {err}");
    } else {
        // Without a keyring the sign-in lasted for `partner login` only: it signs in itself.
        assert!(err.contains("enter the code"), "{err}");
    }
    let v: Value = serde_json::from_str(stdout(&out).trim_end()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_sign_in_without_mfa_is_refused_before_any_read() {
    let w = world(0xC7, |s| s.tenants[0].signed_in_user.mfa = false).await;
    let out = w.run(&["partner", "customers"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("multi-factor"), "{err}");
    assert!(stdout(&out).is_empty());
    assert!(
        !w.sb
            .requests()
            .iter()
            .any(|r| r.path.contains("tenantRelationships")),
        "nothing read"
    );
}
