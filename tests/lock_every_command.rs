//! Issue 10 (4): every command that changes a tenant holds its lock. While another process
//! holds it, `secret rotate`, `tenant remove` and `portal submit` say "another hal-onboard
//! (pid N, since HH:MM) is working on <name>", exit 1 and change nothing; `tenant add --from`
//! reports the busy tenant, skips it and onboards the others.

use std::process::Output;

use crate::support::common::{Env, assert_ok, stderr, stdout, tenant};
use hal_onboard::store::lock;

/// The busy line, in the words, for the tenant `name` held by this test process.
fn assert_busy(out: &Output, name: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{}", stdout(out));
    let said = format!("another hal-onboard (pid {}, since ", std::process::id());
    let line = err
        .lines()
        .find(|l| l.contains(&said))
        .unwrap_or_else(|| panic!("no busy line: {err}"));
    let rest = &line[line.find(&said).unwrap() + said.len()..];
    assert_eq!(
        rest,
        format!("{}) is working on {name}", &rest[..5]),
        "{line}"
    );
    assert!(rest.as_bytes()[2] == b':', "HH:MM: {line}");
}

/// Another process (this test) working on the tenant.
fn hold(env: &Env, name: &str) -> lock::TenantLock {
    lock::acquire(&env.home(), env.id, name, "tenant add").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotate_on_a_busy_tenant_exits_1_and_adds_no_secret() {
    let env = Env::start(tenant(0x10c4_0001)).await;
    assert_ok(&env.add().await);
    let keys = env.app_keys();
    let before = env.state_file();
    let held = hold(&env, "Tenant X");
    let out = env.rotate(&[]).await;
    assert_busy(&out, &format!("Tenant {}", 0x10c4_0001));
    assert_eq!(env.app_keys(), keys, "no secret added or removed");
    assert_eq!(env.state_file(), before, "nothing recorded");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_remove_on_a_busy_tenant_exits_1_and_forgets_nothing() {
    let env = Env::start(tenant(0x10c4_0002)).await;
    assert_ok(&env.add().await);
    let held = hold(&env, "whatever");
    let d = env.domain();
    for args in [
        vec!["tenant", "remove", d.as_str(), "--yes"],
        vec!["tenant", "remove", d.as_str(), "--yes", "--delete-app"],
    ] {
        let out = env.run(&args).await;
        assert_busy(&out, &format!("Tenant {}", 0x10c4_0002));
        assert!(!env.record().is_null(), "the record stays");
        assert_eq!(
            env.sb.snapshot(env.id).applications.len(),
            1,
            "the app stays"
        );
    }
    drop(held);
    assert_ok(&env.run(&["tenant", "remove", &d, "--yes"]).await);
    assert!(env.record().is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_submit_on_a_busy_tenant_exits_1_and_sends_nothing() {
    let env = Env::start(tenant(0x10c4_0003)).await;
    assert_ok(&env.add().await);
    let sent = env.sb.portal().request_count();
    let before = env.state_file();
    let held = hold(&env, "whatever");
    let out = env.run(&["portal", "submit", &env.domain()]).await;
    assert_busy(&out, &format!("Tenant {}", 0x10c4_0003));
    assert_eq!(env.sb.portal().request_count(), sent, "nothing sent");
    assert_eq!(env.state_file(), before);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_add_from_skips_a_busy_tenant_and_onboards_the_others() {
    let a = tenant(0x10c4_0004);
    let b = tenant(0x10c4_0005);
    let b_id = b.id;
    let b_domain = b.domains[0].clone();
    let env = Env::start_with(a, vec![b]).await;
    let file = env.dir.path().join("tenants.csv");
    std::fs::write(
        &file,
        format!(
            "tenant,display name\n{},Alpha Ltd\n{b_domain},Beta Inc\n",
            env.domain()
        ),
    )
    .unwrap();
    // Alpha is new to this home: its lock is taken by ID, as a first `tenant add` would.
    let held = hold(&env, "Alpha");
    let out = env
        .run(&[
            "tenant",
            "add",
            "--from",
            file.to_str().unwrap(),
            "--skip-exchange",
            "--yes",
        ])
        .await;
    assert_busy(&out, &format!("Tenant {}", 0x10c4_0004));
    let err = stderr(&out);
    assert!(err.contains("Summary"), "{err}");
    assert!(
        env.sb.snapshot(env.id).applications.is_empty(),
        "the busy tenant is not changed"
    );
    assert!(env.record().is_null(), "{}", env.state_file());
    assert!(
        env.sb.portal().received(&b_id.to_string()).is_some(),
        "the other tenant is onboarded: {err}"
    );
    assert_eq!(env.sb.snapshot(b_id).applications.len(), 1);
    drop(held);
}

/// Issue 10 (4): a store write changes only the fields its command owns. `portal submit`
/// reads its tenants, then waits for a tenant's lock while a `ual retry --keep-sign-in` holds
/// it and records `keepSignIn`; the submit's write afterwards keeps that (it used to write back
/// the whole record it had read before the lock, undoing the other run's change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_submit_keeps_what_the_run_it_waited_for_wrote() {
    let env = std::sync::Arc::new(Env::start(tenant(0x10c4_0006)).await);
    assert_ok(&env.add().await);
    assert_eq!(env.record()["keepSignIn"], serde_json::Value::Null);
    let held = lock::acquire(&env.home(), env.id, "Tenant", "ual retry").unwrap();
    let submit = {
        let env = env.clone();
        tokio::spawn(async move { env.run(&["portal", "submit", &env.domain()]).await })
    };
    // The submit has read the store and waits for the lock (it waits up to 600 ms).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let store = hal_onboard::store::TenantStore::open(&env.home()).unwrap();
    store.change(env.id, |r| r.keep_sign_in = true).unwrap();
    drop(held);
    let out = submit.await.unwrap();
    assert!(
        !stderr(&out).contains("is working on"),
        "the submit got the lock: {}",
        stderr(&out)
    );
    assert_eq!(
        env.record()["keepSignIn"],
        true,
        "the other run's field stays: {}",
        env.state_file()
    );
}
