//! Files the store must never overwrite: unparseable ones and ones from a newer hal-onboard.

use crate::support::store as store_support;

use std::path::Path;

use hal_onboard::store::{StoreError, TenantStore};
use store_support::{blank, hal, stderr, stdout};

/// Every way the store could be asked to write: none may touch `bytes`, and each must fail.
fn assert_refused_and_untouched(home: &Path, bytes: &[u8], check: impl Fn(&StoreError)) {
    let store = TenantStore::open(home).unwrap();
    check(&store.load().unwrap_err());
    check(&store.transaction().err().expect("transaction refused"));
    check(&store.update(|d| d.tenants.clear()).unwrap_err());
    check(
        &store
            .save_changes(None, &blank(1, "contoso.onmicrosoft.com", "Contoso"))
            .unwrap_err(),
    );
    assert_eq!(
        std::fs::read(store.path()).unwrap(),
        bytes,
        "the file changed"
    );
}

fn corrupt_case(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(home.join("tenants.json"), bytes).unwrap();
    let file = home.join("tenants.json");
    assert_refused_and_untouched(home, bytes, |e| match e {
        StoreError::Corrupt { path, .. } => assert_eq!(path, &file),
        other => panic!("expected Corrupt, got {other:?}"),
    });

    // `list` exits 1, names the file, says what to do, and prints nothing on stdout.
    for args in [&["list"][..], &["list", "--json"][..]] {
        let out = hal(home, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(err.contains("is not valid hal-onboard state"), "{err}");
        assert!(err.contains("hint: Nothing was changed."), "{err}");
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "list changed the file"
    );
}

#[test]
fn a_truncated_file_is_refused_and_left_byte_for_byte() {
    corrupt_case(b"{\"schemaVersion\": 1, \"tenants\": [{\"tenantId\": \"0000");
}

#[test]
fn a_file_with_the_wrong_shape_is_refused() {
    corrupt_case(b"{\"schemaVersion\": 1, \"tenants\": [{\"tenantId\": 42}]}\n");
}

#[test]
fn a_file_without_a_schema_version_is_refused() {
    corrupt_case(b"{\"tenants\": []}\n");
}

#[test]
fn a_json_array_is_not_a_store() {
    // serde would happily read a struct from `[1]`; the store must not.
    corrupt_case(b"[1, []]\n");
}

#[test]
fn an_empty_file_is_refused() {
    corrupt_case(b"");
}

#[test]
fn binary_garbage_is_refused() {
    corrupt_case(&[0xff, 0xfe, 0x00, 0x7b, 0x80]);
}

#[test]
fn a_newer_schema_is_refused_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // A future format this version cannot read at all: it must be reported as newer, not
    // corrupt.
    let bytes = b"{\"schemaVersion\": 2, \"tenants\": {\"by-id\": {}}, \"extra\": true}\n";
    std::fs::write(home.join("tenants.json"), bytes).unwrap();
    assert_refused_and_untouched(home, bytes, |e| match e {
        StoreError::NewerSchema {
            found, supported, ..
        } => assert_eq!((*found, *supported), (2, 1)),
        other => panic!("expected NewerSchema, got {other:?}"),
    });

    let out = hal(home, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("was written by a newer hal-onboard (schema 2"),
        "{err}"
    );
    assert!(err.contains(&home.join("tenants.json").display().to_string()));
    assert!(err.contains("hint: Upgrade hal-onboard"), "{err}");
    assert_eq!(stdout(&out), "");
    assert_eq!(std::fs::read(home.join("tenants.json")).unwrap(), bytes);
}

#[test]
fn an_older_store_file_shape_still_reads() {
    // Optional fields may be missing (files from earlier builds of schema 1).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::write(
        home.join("tenants.json"),
        r#"{"schemaVersion": 1, "tenants": [{"tenantId": "6f1e2c55-8a44-4e0e-9a77-2d0f5d9e0b11",
        "primaryDomain": "contoso.onmicrosoft.com", "displayName": "Contoso",
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}]}"#,
    )
    .unwrap();
    let doc = TenantStore::open(home).unwrap().load().unwrap();
    assert_eq!(doc.tenants.len(), 1);
    assert_eq!(doc.tenants[0].display_name, "Contoso");
}
