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
