//! Finding a tenant the way a technician names it: GUID, any domain, or display name.

use crate::support::store as store_support;

use hal_onboard::store::{LookupError, StoreDoc};
use store_support::{blank, doc, tenant_id};

fn fixture() -> StoreDoc {
    let mut contoso = blank(1, "contoso.onmicrosoft.com", "Contoso Ltd");
    contoso.domains.push("contoso.com".into());
    contoso.domains.push("mail.contoso.com".into());
    let fabrikam = blank(2, "fabrikam.onmicrosoft.com", "Fabrikam");
    // Two tenants, one display name (a customer with two M365 tenants).
    let a = blank(3, "northwind.onmicrosoft.com", "Northwind");
    let b = blank(4, "northwindtraders.onmicrosoft.com", "NORTHWIND");
    doc(vec![contoso, fabrikam, a, b])
}

#[test]
fn by_guid_in_any_case_and_with_spaces() {
    let d = fixture();
    let id = tenant_id(2);
    assert_eq!(d.find(&id.to_string()).unwrap().tenant_id, id);
    let upper = format!("  {}  ", id.to_string().to_uppercase());
    assert_eq!(d.find(&upper).unwrap().tenant_id, id);
    assert_eq!(d.find_index(&id.to_string()).unwrap(), 1);
}

#[test]
fn an_unknown_guid_is_not_found_even_if_a_name_matches() {
    let d = fixture();
    let other = uuid::Uuid::from_u128(7).to_string();
    assert!(matches!(d.find(&other), Err(LookupError::NotFound(k)) if k == other));
}

#[test]
fn by_primary_or_any_recorded_domain_case_insensitive() {
    let d = fixture();
    for key in [
        "contoso.onmicrosoft.com",
        "CONTOSO.onmicrosoft.com",
        "contoso.com",
        "Mail.Contoso.Com",
        "contoso.com.",
    ] {
        assert_eq!(d.find(key).unwrap().tenant_id, tenant_id(1), "{key}");
    }
}

#[test]
fn by_display_name_case_insensitive() {
    let d = fixture();
    assert_eq!(d.find("contoso ltd").unwrap().tenant_id, tenant_id(1));
    assert_eq!(d.find("FABRIKAM").unwrap().tenant_id, tenant_id(2));
}

#[test]
fn an_ambiguous_name_lists_every_candidate() {
    let d = fixture();
    let err = d.find("northwind").unwrap_err();
    match &err {
        LookupError::Ambiguous { key, candidates } => {
            assert_eq!(key, "northwind");
            assert_eq!(
                candidates,
                &vec![
                    format!("northwind.onmicrosoft.com ({})", tenant_id(3)),
                    format!("northwindtraders.onmicrosoft.com ({})", tenant_id(4)),
                ]
            );
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("northwind.onmicrosoft.com"), "{msg}");
    assert!(err.hint().contains("domain or tenant ID"));
    // Either domain still picks exactly one.
    assert_eq!(
        d.find("northwindtraders.onmicrosoft.com")
            .unwrap()
            .tenant_id,
        tenant_id(4)
    );
}

#[test]
fn nothing_matches() {
    let d = fixture();
    let err = d.find("tailspin.com").unwrap_err();
    assert!(matches!(&err, LookupError::NotFound(k) if k == "tailspin.com"));
    assert_eq!(err.to_string(), "no tenant matches \"tailspin.com\"");
    assert!(err.hint().contains("hal-onboard list"));
    assert!(StoreDoc::default().find("contoso").is_err());
    // A partial name is not a match.
    assert!(d.find("contoso").is_err());
}

#[test]
fn get_upsert_and_remove_by_id() {
    let mut d = fixture();
    let mut rec = d.get(tenant_id(2)).unwrap().clone();
    rec.display_name = "Fabrikam Inc".into();
    d.upsert(rec);
    assert_eq!(d.tenants.len(), 4);
    assert_eq!(d.find("fabrikam inc").unwrap().tenant_id, tenant_id(2));
    d.upsert(blank(9, "tailspin.onmicrosoft.com", "Tailspin"));
    assert_eq!(d.tenants.len(), 5);
    assert_eq!(d.remove(tenant_id(9)).unwrap().display_name, "Tailspin");
    assert!(d.remove(tenant_id(9)).is_none());
}
