//! The tenant's cloud, found not guessed: `tenant add` reads the tenant's OpenID configuration
//! once before any sign-in, takes the cloud from it (GCC, GCC High, DoD, 21Vianet without
//! `--cloud`), refuses a `--cloud` that disagrees and a tenant that does not exist before any
//! device code, and proves the credentials with the reads Hal makes, at the cloud's hosts.

use hal_sandbox::{RequestLogEntry, Sandbox, Scenario, TenantCloud, TenantScenario};

use crate::tenant_add_provision::{Env, assert_ok, record, stderr, tenant};

async fn start(tenants: Vec<TenantScenario>) -> Env {
    let id = tenants[0].id;
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants,
            ..Scenario::default()
        },
        &dir.path().join("sandbox"),
    )
    .await
    .unwrap();
    Env { sb, dir, id }
}

fn in_cloud(n: u128, cloud: TenantCloud) -> TenantScenario {
    TenantScenario { cloud, ..tenant(n) }
}

fn discoveries(env: &Env) -> Vec<RequestLogEntry> {
    env.sb
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/v2.0/.well-known/openid-configuration"))
        .collect()
}

/// Every request but the OpenID configuration look-ups.
fn others(env: &Env) -> Vec<RequestLogEntry> {
    env.sb
        .requests()
        .into_iter()
        .filter(|r| !r.path.ends_with("/v2.0/.well-known/openid-configuration"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcc_tenant_is_found_without_cloud_and_proven_at_the_gcc_management_root() {
    let env = start(vec![in_cloud(41, TenantCloud::Gcc)]).await;
    let out = env.add(&[]).await;
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("is in GCC"), "the technician is told:\n{err}");
    let rec = record(&out);
    assert_eq!(rec["cloud"], "gcc");
    let sent = env
        .sb
        .portal()
        .received(&env.id.to_string())
        .expect("the portal has the tenant");
    assert_eq!(sent.submission.cloud, "gcc", "the portal is told gcc");
    // One look-up for the run, before the sign-in.
    let found = discoveries(&env);
    assert_eq!(found.len(), 1, "{found:#?}");
    let all = env.sb.requests();
    let first_sign_in = all
        .iter()
        .position(|r| r.path.contains("/oauth2/v2.0/"))
        .unwrap();
    let discovery = all
        .iter()
        .position(|r| r.path.ends_with("/.well-known/openid-configuration"))
        .unwrap();
    assert!(discovery < first_sign_in, "{all:#?}");
    // The Management read went to the Management root, and the sandbox only answers it (200)
    // to a token whose audience is GCC's root, https://manage-gcc.office.com.
    let manage: Vec<_> = all
        .iter()
        .filter(|r| r.path.starts_with("/manage/"))
        .collect();
    assert_eq!(manage.len(), 1, "{manage:#?}");
    assert_eq!(
        manage[0].path,
        format!(
            "/manage/api/v1.0/{}/activity/feed/subscriptions/list",
            env.id
        )
    );
    assert_eq!((manage[0].method.as_str(), manage[0].status), ("GET", 200));
    let audits: Vec<_> = all
        .iter()
        .filter(|r| r.path.starts_with("/graph/v1.0/auditLogs/directoryAudits"))
        .collect();
    assert_eq!(audits.len(), 1, "{audits:#?}");
    assert_eq!(audits[0].status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_national_cloud_is_recognised_with_one_look_up_per_tenant() {
    let env = start(vec![
        in_cloud(42, TenantCloud::Usgov),
        in_cloud(43, TenantCloud::UsgovDod),
        in_cloud(44, TenantCloud::China),
        in_cloud(45, TenantCloud::Global),
    ])
    .await;
    let csv = env.dir.path().join("tenants.csv");
    std::fs::write(
        &csv,
        "t42.onmicrosoft.com\nt43.onmicrosoft.com\nt44.onmicrosoft.com\nt45.onmicrosoft.com\n",
    )
    .unwrap();
    let out = env
        .run(&[
            "tenant",
            "add",
            "--from",
            csv.to_str().unwrap(),
            "--skip-exchange",
            "--yes",
        ])
        .await;
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("is in GCC High"), "{err}");
    assert!(err.contains("is in DoD"), "{err}");
    assert!(
        err.contains("is in Microsoft 365 operated by 21Vianet"),
        "{err}"
    );
    let list = env.run(&["list", "--json"]).await;
    assert_ok(&list);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let clouds: Vec<(String, String)> = v
        .as_array()
        .or_else(|| v["tenants"].as_array())
        .expect("list --json is the tenants")
        .iter()
        .map(|t| {
            (
                t["domain"].as_str().unwrap_or_default().to_string(),
                t["cloud"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (d, c) in [
        ("t42.onmicrosoft.com", "usgov"),
        ("t43.onmicrosoft.com", "usgov-dod"),
        ("t44.onmicrosoft.com", "china"),
        ("t45.onmicrosoft.com", "global"),
    ] {
        assert!(
            clouds.contains(&(d.to_string(), c.to_string())),
            "{d} in {c}: {clouds:?}"
        );
    }
    let per_tenant = discoveries(&env);
    assert_eq!(
        per_tenant.len(),
        4,
        "one look-up per tenant: {per_tenant:#?}"
    );
    // Each tenant's Management read was answered, so its token had its own cloud's audience.
    let manage: Vec<_> = env
        .sb
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/manage/"))
        .collect();
    assert_eq!(manage.len(), 4, "{manage:#?}");
    assert!(manage.iter().all(|r| r.status == 200), "{manage:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_flag_microsoft_contradicts_stops_before_any_sign_in() {
    let env = start(vec![in_cloud(46, TenantCloud::Gcc)]).await;
    let d = env.domain();
    let out = env
        .run(&[
            "--cloud",
            "global",
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("GCC") && err.contains("commercial") && err.contains("--cloud gcc"),
        "names both clouds and the way out:\n{err}"
    );
    assert!(others(&env).is_empty(), "{:#?}", others(&env));
    // The flag that agrees is accepted.
    let out = env
        .run(&[
            "--cloud",
            "gcc",
            "tenant",
            "add",
            &d,
            "--skip-exchange",
            "--yes",
        ])
        .await;
    assert_ok(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_does_not_exist_is_caught_before_any_device_code() {
    let env = start(vec![tenant(47)]).await;
    let out = env
        .run(&[
            "tenant",
            "add",
            "t47x.example.com",
            "--skip-exchange",
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no tenant named t47x.example.com"), "{err}");
    assert!(err.contains("did you mean t47x.onmicrosoft.com?"), "{err}");
    assert!(!err.contains("enter the code"), "{err}");
    assert_eq!(discoveries(&env).len(), 1);
    assert!(others(&env).is_empty(), "{:#?}", others(&env));
    // An email address for the tenant names its domain.
    let out = env
        .run(&[
            "tenant",
            "add",
            "admin@t47.onmicrosoft.com",
            "--skip-exchange",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean t47.onmicrosoft.com?"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manage_override_must_be_https() {
    let env = start(vec![tenant(48)]).await;
    let mut c = crate::support::hal_onboard();
    for (k, v) in env.sb.env() {
        c.env(k, v);
    }
    let out = c
        .env("HAL_ONBOARD_MANAGE_URL", "http://127.0.0.1:9/manage")
        .arg("--home")
        .arg(env.home())
        .args(["--no-input", "tenant", "add", &env.domain(), "--yes"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("HAL_ONBOARD_MANAGE_URL must be an https:// URL"),
        "{}",
        stderr(&out)
    );
    assert!(env.sb.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_that_signs_in_looks_the_cloud_up_first() {
    let env = start(vec![in_cloud(49, TenantCloud::Gcc)]).await;
    assert_ok(&env.add(&[]).await);
    let d = env.domain();
    for cmd in [
        vec!["secret", "rotate", d.as_str(), "--yes"],
        vec!["ual", "retry", d.as_str()],
        vec!["tenant", "remove", d.as_str(), "--delete-app", "--yes"],
    ] {
        env.sb.clear_requests();
        let mut args = vec!["--cloud", "usgov"];
        args.extend(cmd.iter().copied());
        let out = env.run(&args).await;
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("is in GCC (US Government Community Cloud; cloud_instance_name")
                && err.contains("GCC High"),
            "{cmd:?}: {err}"
        );
        assert_eq!(discoveries(&env).len(), 1, "{cmd:?}");
        assert!(others(&env).is_empty(), "{cmd:?}: {:#?}", others(&env));
    }
    // Without the flag the same rotation finds GCC and verifies at its Management root; a
    // record from before GCC was known (GCC recorded as global) is corrected, and the portal
    // is told gcc.
    let state = env.home().join("tenants.json");
    let doc = std::fs::read_to_string(&state).unwrap();
    assert!(doc.contains("\"cloud\":\"gcc\""), "{doc}");
    std::fs::write(
        &state,
        doc.replace("\"cloud\":\"gcc\"", "\"cloud\":\"global\""),
    )
    .unwrap();
    env.sb.clear_requests();
    let out = env.run(&["secret", "rotate", &d, "--yes"]).await;
    assert_ok(&out);
    assert!(stderr(&out).contains("is in GCC"), "{}", stderr(&out));
    assert_eq!(discoveries(&env).len(), 1);
    assert!(
        env.sb
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/manage/") && r.status == 200)
    );
    let doc = std::fs::read_to_string(&state).unwrap();
    assert!(doc.contains("\"cloud\":\"gcc\""), "corrected: {doc}");
    let sent = env.sb.portal().received(&env.id.to_string()).unwrap();
    assert_eq!(sent.submission.cloud, "gcc");
    // ual retry corrects it as well, before anything else.
    std::fs::write(
        &state,
        doc.replace("\"cloud\":\"gcc\"", "\"cloud\":\"global\""),
    )
    .unwrap();
    let _ = env.run(&["ual", "retry", &d]).await;
    let doc = std::fs::read_to_string(&state).unwrap();
    assert!(
        doc.contains("\"cloud\":\"gcc\""),
        "ual retry corrected: {doc}"
    );
}

/// At a terminal, the tenant typed at the prompt is looked up before the name question.
#[cfg(unix)]
#[test]
fn a_typed_tenant_that_does_not_exist_is_refused_before_the_name_question() {
    use expectrl::Expect;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(start(vec![tenant(50)]));
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in env.sb.env() {
        c.env(k, v);
    }
    c.env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .arg("--home")
        .arg(env.home())
        .args(["tenant", "add", "--skip-exchange"]);
    let mut s = expectrl::Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
    s.expect("Customer tenant").unwrap();
    s.send_line("t50x.example.com").unwrap();
    let said = s
        .expect("Microsoft knows no tenant named t50x.example.com")
        .unwrap();
    let before = String::from_utf8_lossy(said.before()).into_owned();
    s.expect("did you mean t50x.onmicrosoft.com?").unwrap();
    // Asked again, not the end of the run: a hurried technician retypes it.
    let again = s.expect("Customer tenant").unwrap();
    let rest = String::from_utf8_lossy(again.before()).into_owned();
    for text in [&before, &rest] {
        assert!(!text.contains("Your name for this customer"), "{text}");
        assert!(!text.contains("enter the code"), "{text}");
    }
    assert!(others(&env).is_empty(), "{:#?}", others(&env));
    s.send_line("t50.onmicrosoft.com").unwrap();
    s.expect("Your name for this customer").unwrap();
    s.send("\x03").unwrap();
    s.expect(expectrl::Eof).unwrap();
}
