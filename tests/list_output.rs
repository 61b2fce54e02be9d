//! `hal-onboard list` and `list --json`, end to end through the binary.

use crate::support::store as store_support;

use std::path::Path;

use hal_onboard::store::{PortalState, StepStatus, StoreDoc, UalState};
use serde_json::Value;
use store_support::{blank, complete, doc, hal, stderr, stdout, tenant_id, write_doc};
use time::{Duration, OffsetDateTime};

/// One tenant in each state `list` distinguishes, in no particular order.
fn fixture() -> StoreDoc {
    let now = OffsetDateTime::now_utc();

    let contoso = complete(1, "contoso.onmicrosoft.com", "Contoso Ltd", 700);

    let mut fabrikam = complete(2, "fabrikam.onmicrosoft.com", "fabrikam", 300);
    fabrikam.ual.state = UalState::WaitingPropagation;
    fabrikam.ual.enabled_at = None;
    fabrikam.ual.hydrated_at = Some(now - Duration::hours(3) - Duration::minutes(5));
    fabrikam.steps.exchange.status = StepStatus::Waiting;

    let mut adatum = complete(3, "adatum.onmicrosoft.com", "Adatum", 700);
    adatum.steps.consent.status = StepStatus::Failed;
    adatum.steps.consent.last_error = Some("Graph returned 403 Forbidden".into());
    adatum.steps.verify = Default::default();
    adatum.steps.portal = Default::default();
    adatum.portal = Default::default();
    adatum.granted_permissions.truncate(3);

    let northwind = complete(4, "northwind.onmicrosoft.com", "Northwind", 45);

    let mut tailspin = complete(5, "tailspin.onmicrosoft.com", "Tailspin Toys", 0);
    tailspin.secret.as_mut().unwrap().expires_at = now - Duration::days(3) - Duration::hours(1);

    let mut woodgrove = complete(6, "woodgrove.onmicrosoft.com", "Woodgrove Bank", 500);
    woodgrove.steps.portal = Default::default();
    woodgrove.portal.state = PortalState::NotSent;
    woodgrove.portal.submitted_at = None;
    woodgrove.portal.secret_key_id = None;

    let bellows = blank(7, "bellowscollege.onmicrosoft.com", "bellows college");

    doc(vec![
        contoso, fabrikam, adatum, northwind, tailspin, woodgrove, bellows,
    ])
}

fn home_with(d: &StoreDoc) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_doc(dir.path(), d);
    dir
}

fn list(home: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["list"];
    args.extend_from_slice(extra);
    let out = hal(home, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (stdout(&out), stderr(&out))
}

const TABLE: &str = "\
TENANT           DOMAIN                          UAL      APP   CONSENT  SECRET     PORTAL
Adatum           adatum.onmicrosoft.com          on       done  failed   23 months  —
  → hal-onboard tenant add adatum.onmicrosoft.com  admin consent failed: Graph returned 403…
bellows college  bellowscollege.onmicrosoft.com  —        —     —        —          —
  → hal-onboard tenant add bellowscollege.onmicrosoft.com  UAL not done yet
Contoso Ltd      contoso.onmicrosoft.com         on       done  done     23 months  sent
fabrikam         fabrikam.onmicrosoft.com        waiting  done  done     10 months  sent
  → hal-onboard ual retry fabrikam.onmicrosoft.com  UAL: waiting on Microsoft for 3 h
Northwind        northwind.onmicrosoft.com       on       done  done     45 days    sent
  → hal-onboard secret rotate northwind.onmicrosoft.com  the client secret expires in 45 days
Tailspin Toys    tailspin.onmicrosoft.com        on       done  done     expired    sent
  → hal-onboard secret rotate tailspin.onmicrosoft.com  the client secret expired 4 days ago
Woodgrove Bank   woodgrove.onmicrosoft.com       on       done  done     16 months  —
  → hal-onboard portal submit woodgrove.onmicrosoft.com  the credentials are not in the portal yet
";

#[test]
fn the_table_sorted_by_name_with_the_next_command_under_each_row() {
    let home = home_with(&fixture());
    let (out, err) = list(home.path(), &[]);
    assert_eq!(out, TABLE, "got:\n{out}");
    assert_eq!(
        err,
        "7 tenants: 1 done, 1 secret expiring, 1 waiting on Microsoft, 2 unfinished, 1 failed, 1 secret expired\n"
    );
}

#[test]
fn no_color_when_not_a_terminal_and_highlights_when_asked() {
    let home = home_with(&fixture());
    let (plain, _) = list(home.path(), &[]);
    assert!(!plain.contains('\x1b'), "escape codes in piped output");

    let (colored, _) = list(home.path(), &["--color", "always"]);
    assert!(colored.contains("\x1b[33m45 days\x1b[0m"), "{colored:?}");
    assert!(colored.contains("\x1b[31mexpired\x1b[0m"), "{colored:?}");
    assert!(colored.contains("\x1b[33mwaiting\x1b[0m"), "{colored:?}");
    assert!(
        !colored.contains("\x1b[33m10 months"),
        "300 days is not highlighted"
    );
    assert!(!colored.contains("\x1b[33m23 months"));
    // A 12-month secret reads as 12 months, not "364d" (issue 11).
    assert_eq!(hal_onboard::ui::lifetime(364), "12 months");
}

#[test]
fn long_names_are_cut_and_lines_fit_100_columns() {
    let mut long = complete(
        1,
        "averyveryverylongcustomername.onmicrosoft.com",
        "Alpine Ski House and Adventure Works Holdings International",
        300,
    );
    long.portal = Default::default();
    long.steps.portal = Default::default();
    // A name with an escape sequence must not reach the terminal as one.
    let evil = blank(2, "evil.onmicrosoft.com", "Evil\x1b[2J\x1b[31mCorp\r\n");
    let home = home_with(&doc(vec![long, evil]));
    let (out, _) = list(home.path(), &[]);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(!out.contains('\r'), "{out:?}");
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line:?}");
    }
    assert!(out.contains("Alpine Ski House and …"), "{out}");
    assert!(out.contains("averyveryverylongcustomername…"), "{out}");
    // The command under the row always carries the full domain.
    assert!(
        out.contains("  → hal-onboard portal submit averyveryverylongcustomername.onmicrosoft.com")
    );
    assert_eq!(out.lines().count(), 5);
}

#[test]
fn an_empty_store_prints_one_hint_and_exits_0() {
    let home = home_with(&StoreDoc::default());
    let (out, err) = list(home.path(), &[]);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("hint: No tenants in "), "{err}");
    assert!(
        err.contains("Run `hal-onboard tenant add <domain>`"),
        "{err}"
    );

    let (out, err) = list(home.path(), &["--json"]);
    assert_eq!(out, "[]\n");
    assert_eq!(err, "");
}

#[test]
fn json_prints_only_the_array_sorted_like_the_table() {
    let home = home_with(&fixture());
    let (out, err) = list(home.path(), &["--json"]);
    assert_eq!(err, "", "JSON mode prints nothing else");
    let v: Value = serde_json::from_str(&out).expect("stdout is exactly one JSON document");
    // One tenant per line, so `grep` works on it as well as `jq`.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7 + 2);
    assert_eq!((lines[0], lines[8]), ("[", "]"));
    assert!(lines[1].starts_with("{\"tenantId\":") && lines[1].ends_with("},"));
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Adatum",
            "bellows college",
            "Contoso Ltd",
            "fabrikam",
            "Northwind",
            "Tailspin Toys",
            "Woodgrove Bank"
        ]
    );
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
    k.sort();
    k
}

#[test]
fn json_schema_is_the_documented_one() {
    let home = home_with(&fixture());
    let (out, _) = list(home.path(), &["--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let all = v.as_array().unwrap();
    let by = |domain: &str| {
        all.iter()
            .find(|t| t["domain"] == domain)
            .unwrap_or_else(|| panic!("{domain}"))
    };

    // Every field docs/list-json.md promises, and no other.
    let c = by("contoso.onmicrosoft.com");
    assert_eq!(
        keys(c),
        [
            "app",
            "cloud",
            "createdAt",
            "displayName",
            "domain",
            "domains",
            "grantedPermissions",
            "inProgress",
            "license",
            "nextAction",
            "pending",
            "portal",
            "secret",
            "signInKept",
            "state",
            "steps",
            "tenantId",
            "ual",
            "updatedAt",
            "via"
        ]
    );
    assert_eq!(c["tenantId"], tenant_id(1).to_string());
    assert_eq!(c["via"], "direct");
    assert_eq!(c["cloud"], "global");
    assert_eq!(c["state"], "done");
    assert_eq!(c["nextAction"], Value::Null);
    assert_eq!(c["pending"], serde_json::json!([]));
    assert_eq!(c["domains"], serde_json::json!(["contoso.onmicrosoft.com"]));
    assert_eq!(c["license"], "P1");
    assert_eq!(c["inProgress"], Value::Null);
    assert_eq!(c["signInKept"], false);
    assert_eq!(c["grantedPermissions"], 15);
    assert_eq!(
        keys(&c["steps"]),
        ["app", "consent", "exchange", "portal", "secret", "verify"]
    );
    assert_eq!(
        keys(&c["steps"]["app"]),
        ["at", "attempts", "lastError", "status"]
    );
    assert_eq!(c["steps"]["app"]["status"], "done");
    assert_eq!(
        keys(&c["ual"]),
        [
            "attempts",
            "enabledAt",
            "hydratedAt",
            "lastAttemptAt",
            "state"
        ]
    );
    assert_eq!(c["ual"]["state"], "enabled");
    assert_eq!(
        keys(&c["app"]),
        ["appId", "displayName", "objectId", "servicePrincipalId"]
    );
    assert_eq!(
        keys(&c["secret"]),
        ["createdAt", "daysLeft", "expiresAt", "hint", "keyId"]
    );
    assert_eq!(c["secret"]["daysLeft"], 700);
    assert_eq!(keys(&c["portal"]), ["stale", "state", "submittedAt"]);
    assert_eq!(c["portal"]["state"], "submitted");
    // Timestamps are RFC 3339.
    let at = c["secret"]["expiresAt"].as_str().unwrap();
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();

    let f = by("fabrikam.onmicrosoft.com");
    assert_eq!(f["state"], "waiting");
    assert_eq!(f["pending"], serde_json::json!(["exchange"]));
    assert_eq!(f["ual"]["state"], "waitingPropagation");
    assert_eq!(f["steps"]["exchange"]["status"], "waiting");
    assert_eq!(
        f["nextAction"]["command"],
        "hal-onboard ual retry fabrikam.onmicrosoft.com"
    );
    assert_eq!(keys(&f["nextAction"]), ["command", "reason"]);

    let a = by("adatum.onmicrosoft.com");
    assert_eq!(a["state"], "failed");
    assert_eq!(
        a["pending"],
        serde_json::json!(["consent", "verify", "portal"])
    );
    assert_eq!(
        a["steps"]["consent"]["lastError"],
        "Graph returned 403 Forbidden"
    );
    assert_eq!(a["grantedPermissions"], 3);

    let b = by("bellowscollege.onmicrosoft.com");
    assert_eq!(b["state"], "incomplete");
    assert_eq!(b["app"], Value::Null);
    assert_eq!(b["secret"], Value::Null);
    assert_eq!(b["license"], Value::Null);
    assert_eq!(b["steps"]["exchange"]["status"], "notStarted");
    assert_eq!(
        b["nextAction"]["command"],
        "hal-onboard tenant add bellowscollege.onmicrosoft.com"
    );

    assert_eq!(by("northwind.onmicrosoft.com")["state"], "expiring");
    assert_eq!(by("northwind.onmicrosoft.com")["secret"]["daysLeft"], 45);
    let t = by("tailspin.onmicrosoft.com");
    assert_eq!(t["state"], "expired");
    assert_eq!(t["secret"]["daysLeft"], -4);
    assert_eq!(
        by("woodgrove.onmicrosoft.com")["nextAction"]["command"],
        "hal-onboard portal submit woodgrove.onmicrosoft.com"
    );
    assert_eq!(
        by("woodgrove.onmicrosoft.com")["portal"]["state"],
        "notSent"
    );
}

#[test]
fn list_never_writes() {
    let home = home_with(&fixture());
    let before = std::fs::read(home.path().join("tenants.json")).unwrap();
    list(home.path(), &[]);
    list(home.path(), &["--json"]);
    assert_eq!(
        std::fs::read(home.path().join("tenants.json")).unwrap(),
        before
    );
    let names: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tenants.json"], "list created files");
}

/// Issue 10 (4): a tenant another run is changing shows as "in progress", in the table and in
/// `--json`, and only while the lock is held.
#[test]
fn a_locked_tenant_is_in_progress() {
    let home = home_with(&fixture());
    let held =
        hal_onboard::store::lock::acquire(home.path(), tenant_id(2), "fabrikam", "tenant add")
            .unwrap();
    let (out, err) = list(home.path(), &[]);
    let pid = std::process::id();
    let fab = out
        .lines()
        .skip_while(|l| !l.starts_with("fabrikam"))
        .nth(1)
        .unwrap();
    assert!(
        fab.starts_with(&format!("  ⋯ in progress: pid {pid}, since ")),
        "{out}"
    );
    assert!(fab.ends_with("`hal-onboard tenant add`"), "{fab}");
    assert_eq!(out.matches("in progress").count(), 1, "{out}");
    assert!(err.contains("1 in progress"), "{err}");

    let (json, _) = list(home.path(), &["--json"]);
    let v: Value = serde_json::from_str(&json).unwrap();
    let by = |d: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|t| t["domain"] == d)
            .unwrap()
            .clone()
    };
    let f = by("fabrikam.onmicrosoft.com");
    assert_eq!(f["inProgress"]["pid"], pid);
    assert_eq!(f["inProgress"]["command"], "tenant add");
    assert!(f["inProgress"]["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(by("contoso.onmicrosoft.com")["inProgress"], Value::Null);

    drop(held);
    let (out, _) = list(home.path(), &[]);
    assert!(!out.contains("in progress"), "{out}");
}
