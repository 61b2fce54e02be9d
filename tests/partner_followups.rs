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
}
