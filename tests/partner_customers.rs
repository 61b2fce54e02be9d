//! `hal-onboard partner customers [--json]` against the sandbox's documented partner
//! (docs/scenarios/partner.json), signed in as its technician: the table, the JSON contract
//! (docs/partner-customers-json.md), `--skip-exchange`, what this home already onboarded, the
//! AdminAgents-empty answer and a home without partner mode.

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
const FABRIKAM: &str = "0d0a0000-0000-4000-8000-000000000201";
const LITWARE: &str = "0d0a0000-0000-4000-8000-000000000203";
const ADATUM: &str = "0d0a0000-0000-4000-8000-000000000204";
const TAILSPIN: &str = "0d0a0000-0000-4000-8000-000000000202";

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    keyring: bool,
}

async fn world(edit: impl FnOnce(&mut Scenario)) -> World {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scenarios/partner.json");
    let mut s = Scenario::from_file(&path).unwrap();
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
    }
}

impl World {
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

fn by_id<'a>(v: &'a Value, id: &str) -> &'a Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenantId"] == id)
        .unwrap_or_else(|| panic!("{id} not in {v}"))
}

#[tokio::test]
async fn the_table_shows_each_customer_its_roles_and_verdict() {
    let w = world(|_| {}).await;
    // Fabrikam was onboarded from this home through the partner sign-in.
    let mut rec = TenantRecord::new(
        Uuid::parse_str(FABRIKAM).unwrap(),
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
        lines[f].contains(FABRIKAM) && lines[f].contains("Onboarding"),
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
    let w = world(|_| {}).await;
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
            .all(|c| c["tenantId"] != TAILSPIN)
    );

    let f = by_id(&v, FABRIKAM);
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

    let l = by_id(&v, LITWARE);
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

    let a = by_id(&v, ADATUM);
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
    let w = world(|s| {
        let p = s.partner.as_mut().unwrap();
        let r = &mut p.relationships[0];
        r.ends_in_days = 365;
        r.access_assignments[0].unified_roles.pop();
    })
    .await;
    let v: Value =
        serde_json::from_str(&stdout(&w.run(&["partner", "customers", "--json"]).await)).unwrap();
    let f = by_id(&v, FABRIKAM);
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
    assert_eq!(by_id(&v, FABRIKAM)["verdict"], "READY");
}

#[tokio::test]
async fn outside_admin_agents_the_answer_is_the_admin_agents_hint() {
    let w = world(|s| {
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
    let w = world(|_| {}).await;
    std::fs::write(w.home().join("config.json"), b"{}").unwrap();
    let out = w.run(&["partner", "customers"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("partner mode is not set up"), "{err}");
    assert!(
        err.contains("`hal-onboard partner setup --tenant`"),
        "{err}"
    );
}
