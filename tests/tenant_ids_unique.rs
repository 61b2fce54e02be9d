//! Every module that runs the binary shares one OS keyring (CI runs gnome-keyring), whose
//! entries are keyed by tenant ID alone (`tenant:{id}:client-secret`). Two such modules with
//! the same literal tenant number overwrite each other's client secret when they run at once:
//! `tenant_add_lock::two_concurrent_runs_make_one_app` then failed at verification with
//! "invalid client secret" (tenant 42 was also `tenant_add_exchange`'s). So each literal
//! tenant number belongs to one module.

use std::collections::BTreeMap;

/// The numbers in `tenant(N` and `Uuid::from_u128(N)` (decimal or 0x hex, `_` allowed).
fn literal_ids(src: &str) -> Vec<u128> {
    let mut out = Vec::new();
    for pat in ["tenant(", "from_u128("] {
        for (i, _) in src.match_indices(pat) {
            // `fn tenant(` and the like are definitions, not uses.
            let before = &src[..i];
            if before.ends_with("fn ") || before.ends_with('_') {
                continue;
            }
            let rest: String = src[i + pat.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .filter(|c| *c != '_')
                .collect();
            let n = match rest.strip_prefix("0x") {
                Some(h) => u128::from_str_radix(h, 16).ok(),
                None => rest.parse().ok(),
            };
            out.extend(n);
        }
    }
    out
}

#[test]
fn modules_that_run_the_binary_use_tenant_numbers_of_their_own() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut owner: BTreeMap<u128, String> = BTreeMap::new();
    let mut clashes = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(files.len() > 10, "the test modules are read: {files:?}");
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        // Only what starts the binary touches the OS keyring.
        if !(src.contains("Env::start") || src.contains("hal_onboard()")) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut ids = literal_ids(&src);
        ids.sort();
        ids.dedup();
        for id in ids {
            match owner.get(&id) {
                Some(o) if *o != name => clashes.push(format!("{id}: {o} and {name}")),
                Some(_) => {}
                None => {
                    owner.insert(id, name.clone());
                }
            }
        }
    }
    assert!(!owner.is_empty(), "literal tenant numbers are found at all");
    assert!(
        clashes.is_empty(),
        "tenant numbers used by two modules: {clashes:?}"
    );
}
