//! The store under crashes and contention, with real processes: this test binary re-executes
//! itself (`helper_*` tests, inert unless `STORE_TEST_ROLE` is set) as the writers we kill.

use crate::support::store as store_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hal_onboard::store::{StoreDoc, TenantRecord, TenantStore};
use store_support::{blank, doc, tenant_id};

const ROLE: &str = "STORE_TEST_ROLE";
const HOME: &str = "STORE_TEST_HOME";

/// Starts this test binary as a helper process running `helper` with `role` in `home`.
fn spawn_helper(helper: &str, role: &str, home: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("store_atomic::{helper}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(HOME, home)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn helper")
}

/// Kills the helper if the test fails before it does, so no process outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn helper_env() -> Option<(String, PathBuf)> {
    let role = std::env::var(ROLE).ok()?;
    let home = PathBuf::from(std::env::var_os(HOME)?);
    Some((role, home))
}

fn wait_for(path: &Path, what: &str) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The k-th record the appending writer adds: deterministic and bulky (60 domains), so one
/// commit of a few hundred records takes long enough to be killed in the middle of.
fn bulky(k: usize) -> TenantRecord {
    let mut r = blank(
        k as u32,
        &format!("t{k}.onmicrosoft.com"),
        &format!("Tenant {k}"),
    );
    r.domains = (0..60).map(|d| format!("d{d}.t{k}.example.com")).collect();
    let t = time::macros::datetime!(2026-01-01 00:00 UTC);
    r.created_at = t;
    r.updated_at = t;
    r
}

/// The only documents the appending writer ever commits: records 0..n, in order.
fn appended(n: usize) -> StoreDoc {
    doc((0..n).map(bulky).collect())
}

fn temp_files(home: &Path) -> Vec<String> {
    std::fs::read_dir(home)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// Helper: appends `bulky` records forever, one transaction each.
#[test]
fn helper_appender() {
    let Some((role, home)) = helper_env() else {
        return;
    };
    if role != "append" {
        return;
    }
    let store = TenantStore::open(&home).unwrap();
    std::fs::write(home.join("appender.started"), b"").unwrap();
    loop {
        store
            .update(|doc| {
                let k = doc.tenants.len();
                doc.tenants.push(bulky(k));
            })
            .unwrap();
    }
}

#[test]
fn a_writer_killed_mid_commit_leaves_the_old_or_the_new_document() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    TenantStore::open(home).unwrap().update(|_| ()).unwrap();
    let mut seen = Vec::new();
    // Kill at many different moments; the doc grows, so later commits take longer.
    for round in 0..12u64 {
        let _ = std::fs::remove_file(home.join("appender.started"));
        let mut child = KillOnDrop(spawn_helper("helper_appender", "append", home));
        wait_for(&home.join("appender.started"), "appender start");
        std::thread::sleep(Duration::from_millis(15 + round * 7));
        child.0.kill().unwrap();
        child.0.wait().unwrap();

        let bytes = std::fs::read(home.join("tenants.json")).expect("the file is still there");
        let got: StoreDoc = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("round {round}: torn file ({e})"));
        let n = got.tenants.len();
        assert_eq!(got, appended(n), "round {round}: not a committed document");
        // And the store itself reads it.
        assert_eq!(TenantStore::at(home).load().unwrap().tenants.len(), n);
        seen.push((n, temp_files(home).len()));
    }
    eprintln!("records after each kill, and temp files left behind: {seen:?}");
    assert!(
        seen.last().is_some_and(|&(n, _)| n > 0),
        "the writer never committed: {seen:?}"
    );
    // The lock died with the writer, and the next transaction sweeps its temp files.
    let store = TenantStore::open(home).unwrap();
    let before = store.load().unwrap();
    store.update(|_| ()).unwrap();
    assert_eq!(store.load().unwrap(), before);
    assert_eq!(temp_files(home), Vec::<String>::new());
}

/// Helper: takes the lock, changes the document, and hangs before committing.
#[test]
fn helper_hang_in_transaction() {
    let Some((role, home)) = helper_env() else {
        return;
    };
    if role != "hang" {
        return;
    }
    let store = TenantStore::open(&home).unwrap();
    let mut tx = store.transaction().unwrap();
    tx.doc.tenants.clear();
    tx.doc
        .tenants
        .push(blank(99, "intruder.onmicrosoft.com", "Intruder"));
    std::fs::write(home.join("hang.locked"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
    tx.commit().unwrap();
}

#[test]
fn a_writer_killed_while_holding_the_lock_changes_nothing_and_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let store = TenantStore::open(&home).unwrap();
    store
        .save_changes(None, &blank(1, "contoso.onmicrosoft.com", "Contoso"))
        .unwrap();
    let before = std::fs::read(store.path()).unwrap();

    let mut child = KillOnDrop(spawn_helper("helper_hang_in_transaction", "hang", &home));
    wait_for(&home.join("hang.locked"), "helper holds the lock");

    // A second writer waits for the lock rather than racing the first.
    let (tx, rx) = mpsc::channel();
    let h = home.clone();
    let waiter = std::thread::spawn(move || {
        let r = TenantStore::open(&h)
            .unwrap()
            .update(|doc| doc.tenants[0].ual.attempts += 1);
        tx.send(r.is_ok()).unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "a second writer got in while the lock was held"
    );
    assert_eq!(std::fs::read(store.path()).unwrap(), before);
    // Readers never wait for the lock: `list` shows the last committed document.
    let t = Instant::now();
    let out = store_support::hal(&home, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["domain"], "contoso.onmicrosoft.com");
    assert!(t.elapsed() < Duration::from_secs(10));

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(true),
        "the lock was not released when its holder died"
    );
    waiter.join().unwrap();

    let after = store.load().unwrap();
    assert_eq!(after.tenants.len(), 1, "the dead writer's change leaked");
    assert_eq!(after.tenants[0].primary_domain, "contoso.onmicrosoft.com");
    assert_eq!(after.tenants[0].ual.attempts, 1);
}

/// Helper: waits for the start signal, then increments the shared counter M times.
#[test]
fn helper_incrementer() {
    let Some((role, home)) = helper_env() else {
        return;
    };
    let Some(m) = role.strip_prefix("inc:") else {
        return;
    };
    let m: u32 = m.parse().unwrap();
    let store = TenantStore::open(&home).unwrap();
    wait_for(&home.join("go"), "start signal");
    for _ in 0..m {
        store
            .update(|doc| doc.tenants[0].ual.attempts += 1)
            .unwrap();
    }
}

#[test]
fn concurrent_writers_lose_no_update() {
    const N: usize = 4;
    const M: u32 = 25;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let store = TenantStore::open(home).unwrap();
    store
        .save_changes(None, &blank(1, "contoso.onmicrosoft.com", "Contoso"))
        .unwrap();

    let children: Vec<KillOnDrop> = (0..N)
        .map(|_| {
            KillOnDrop(spawn_helper(
                "helper_incrementer",
                &format!("inc:{M}"),
                home,
            ))
        })
        .collect();
    // Increment from this process too, at the same time.
    std::fs::write(home.join("go"), b"").unwrap();
    for _ in 0..M {
        store
            .update(|doc| doc.tenants[0].ual.attempts += 1)
            .unwrap();
    }
    for mut c in children {
        assert!(c.0.wait().unwrap().success(), "a writer failed");
    }
    let doc = store.load().unwrap();
    assert_eq!(doc.tenants.len(), 1);
    assert_eq!(doc.tenants[0].tenant_id, tenant_id(1));
    assert_eq!(doc.tenants[0].ual.attempts, (N as u32 + 1) * M);
    assert_eq!(temp_files(home), Vec::<String>::new());
}

#[test]
fn a_dropped_transaction_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = TenantStore::open(dir.path()).unwrap();
    store
        .save_changes(None, &blank(1, "contoso.onmicrosoft.com", "Contoso"))
        .unwrap();
    let before = std::fs::read(store.path()).unwrap();
    {
        let mut tx = store.transaction().unwrap();
        tx.doc.tenants.clear();
    }
    assert_eq!(std::fs::read(store.path()).unwrap(), before);
    // And the lock is free again.
    store.update(|d| d.tenants.clear()).unwrap();
    assert!(store.load().unwrap().tenants.is_empty());
}

#[test]
fn a_commit_round_trips_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = TenantStore::open(dir.path()).unwrap();
    let mut rec = store_support::complete(7, "fabrikam.onmicrosoft.com", "Fabrikam", 300);
    rec.domains.push("fabrikam.com".into());
    store.update(|d| d.tenants.push(rec.clone())).unwrap();
    let doc = store.load().unwrap();
    assert_eq!(doc.tenants, vec![rec]);
    assert_eq!(doc.schema_version, hal_onboard::store::SCHEMA_VERSION);
}
