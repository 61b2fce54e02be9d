//! Hostile input to the parsers of what comes from outside: the store file (hand-edited,
//! truncated, written by something else) and PowerShell's output lines. Arbitrary bytes give a
//! clear error or a value, never a panic; a store that does not parse is never rewritten.

use hal_onboard::microsoft::exchange::protocol::{Line, MARKER, parse_line};
use hal_onboard::store::{StoreError, TenantStore};
use proptest::prelude::*;

/// Bytes that look like the store often enough to reach deep into the parser.
fn store_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\{\"schema\":[0-9]{1,3},\"tenants\":\\[[ -~]{0,200}\\]\\}".prop_map(String::into_bytes),
        (0u32..3, "[ -~]{0,120}").prop_map(|(schema, rest)| format!(
            "{{\"schema\":{schema},\"tenants\":[{{\"tenantId\":\"{rest}\"}}]}}"
        )
        .into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_store_loader_never_panics_and_never_rewrites_what_it_cannot_read(bytes in store_bytes()) {
        let home = tempfile::tempdir().unwrap();
        let store = TenantStore::open(home.path()).unwrap();
        std::fs::write(store.path(), &bytes).unwrap();
        match store.load() {
            Ok(_) => {}
            Err(StoreError::Corrupt { .. } | StoreError::NewerSchema { .. }) => {
                // A transaction on it must refuse too, and leave the bytes as they were.
                prop_assert!(store.update(|_| ()).is_err());
                prop_assert_eq!(std::fs::read(store.path()).unwrap(), bytes);
            }
            Err(e) => prop_assert!(false, "unexpected error kind: {e}"),
        }
    }

    #[test]
    fn a_result_line_parses_or_is_reported_never_panics(rest in any::<Vec<u8>>()) {
        let line = format!("{MARKER}{}", String::from_utf8_lossy(&rest));
        match parse_line(&line) {
            // What was read is what the line said: written back, it reads the same.
            Line::Report(r) => prop_assert_eq!(parse_line(&r.to_line()), Line::Report(r.clone())),
            Line::Malformed(why) => prop_assert!(!why.is_empty()),
            Line::Text(_) => prop_assert!(false, "a line with the marker is not plain text"),
        }
    }

    #[test]
    fn json_shaped_result_lines_never_panic(op in "[a-zA-Z]{0,12}", ok in any::<bool>(), junk in "[ -~]{0,80}") {
        let line = format!("{MARKER}{{\"op\":\"{op}\",\"ok\":{ok},\"data\":{junk}}}");
        let _ = parse_line(&line);
        let line = format!("{MARKER}{{\"op\":\"{op}\",\"ok\":{ok},\"error\":{{\"kind\":\"{junk}\"}}}}");
        let _ = parse_line(&line);
    }

    #[test]
    fn any_other_line_is_text(s in "[^#]{0,200}") {
        prop_assert!(matches!(parse_line(&s), Line::Text(_)));
    }
}

/// Bytes shaped like the portal's answers often enough to reach past the JSON parser.
fn portal_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "<[ -~]{0,200}".prop_map(String::into_bytes),
        ("[ -~]{0,40}", "[ -~]{0,40}", "[ -~]{0,40}").prop_map(|(t, c, k)| format!(
            "{{\"tenantId\":\"{t}\",\"clientId\":\"{c}\",\"secretKeyId\":\"{k}\",\"secretExpiresAt\":\"{t}\",\"items\":[{c}]}}"
        )
        .into_bytes()),
        "\\{\"items\":[ -~]{0,100}\\}".prop_map(String::into_bytes),
    ]
}

fn sent() -> hal_onboard::portal::Submission {
    hal_onboard::portal::Submission {
        tenant_id: "5f1c2d3e-0000-4000-8000-000000000001".into(),
        tenant_domain: "contoso.onmicrosoft.com".into(),
        tenant_name: "Contoso".into(),
        cloud: "global".into(),
        client_id: "9a8b7c6d-0000-4000-8000-000000000002".into(),
        client_secret: "the-secret-value".into(),
        secret_key_id: "1b2c3d4e-0000-4000-8000-000000000003".into(),
        secret_expires_at: time::OffsetDateTime::UNIX_EPOCH,
        ual_status: "enabled".into(),
        entra_license: "P1".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever a portal (or a captive portal) answers: accepted only when it echoes what was
    /// sent; otherwise the one clear error, never a panic.
    #[test]
    fn the_portal_answer_parsers_give_a_value_or_a_clear_error(bytes in portal_bytes()) {
        use hal_onboard::portal::{PortalError, parse_acknowledgement, parse_listing, parse_record};
        let s = sent();
        let clear = |e: &PortalError| matches!(e, PortalError::NotAPortal { .. })
            && e.to_string().starts_with("this URL does not answer as a Hal portal");
        match parse_acknowledgement(&bytes, &s) {
            Ok(()) => {
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(v["secretKeyId"].as_str().map(str::to_lowercase), Some(s.secret_key_id.clone()));
            }
            Err(e) => prop_assert!(clear(&e), "{e}"),
        }
        if let Err(e) = parse_listing(&bytes) {
            prop_assert!(clear(&e), "{e}");
        }
        match parse_record(&bytes) {
            Ok(_) => {}
            Err(e) => prop_assert!(clear(&e), "{e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// `tenant add --from FILE`: any text gives rows and bad rows, never a panic, and every
    /// non-blank, non-comment line is accounted for once (a row, a bad row, the header or a
    /// repeat).
    #[test]
    fn the_csv_reader_never_panics_and_accounts_for_every_line(
        text in prop_oneof![
            "[ -~\\n\\t\"]{0,400}",
            proptest::collection::vec("[a-z0-9.\\-]{0,20}(,[ -~]{0,20})?", 0..20).prop_map(|v| v.join("\n")),
        ]
    ) {
        let (rows, bad) = hal_onboard::tenant::batch::parse(&text);
        let lines = text.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).count();
        prop_assert!(rows.len() + bad.len() <= lines, "{} + {} > {lines}", rows.len(), bad.len());
        for r in &rows {
            prop_assert!(r.line >= 1 && r.line <= text.lines().count());
        }
        for b in &bad {
            prop_assert!(!b.why.is_empty());
        }
    }
}
