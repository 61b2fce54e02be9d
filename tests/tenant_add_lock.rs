//! Issue 10 (4): one run per tenant. A second `tenant add` on a tenant another run is
//! changing says who holds it and exits 1 before its plan: nothing changes in the tenant.

use crate::support::common::{Env, stderr, stdout, tenant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_a_busy_tenant_exits_1_and_changes_nothing() {
    let env = Env::start(tenant(4101)).await;
    let held = hal_onboard::store::lock::acquire(&env.home(), env.id, "Tenant 4101", "tenant add")
        .unwrap();

    let out = env.add().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}\n{}", stdout(&out));
    let said = format!("another hal-onboard (pid {}, since ", std::process::id());
    assert!(err.contains(&said), "{err}");
    // The words: "another hal-onboard (pid N, since HH:MM) is working on Contoso".
    let line = err
        .lines()
        .find(|l| l.contains(&said))
        .expect("the busy line");
    let rest = &line[line.find(&said).unwrap() + said.len()..];
    assert_eq!(
        rest.len(),
        "HH:MM) is working on Tenant 4101".len(),
        "{line}"
    );
    assert!(rest.ends_with(") is working on Tenant 4101"), "{line}");
    assert!(
        err.contains("hint: It runs `hal-onboard tenant add`"),
        "{err}"
    );
    // Stopped before the plan: no app, no record.
    assert!(env.sb.snapshot(env.id).applications.is_empty());
    assert!(env.record().is_null(), "{}", env.state_file());

    // Once the other run is done, the same command goes ahead.
    drop(held);
    let out = env.add().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.sb.snapshot(env.id).applications.len(), 1);
}

/// Two real runs at once on one tenant: one app at the end, and a run that lost the race
/// says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_runs_make_one_app() {
    let env = Env::start(tenant(4201)).await;
    let (a, b) = tokio::join!(env.add(), env.add());
    for o in [&a, &b] {
        let err = stderr(o);
        assert!(
            o.status.success() || (o.status.code() == Some(1) && err.contains("is working on")),
            "exit {:?}: {err}",
            o.status.code()
        );
    }
    assert_eq!(env.sb.snapshot(env.id).applications.len(), 1);
}
