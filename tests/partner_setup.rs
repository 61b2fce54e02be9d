//! `hal-onboard partner setup` against the sandbox's MSP tenant: what a fresh tenant gets, a
//! second run that changes nothing, a half-made app repaired, an app of that name that is not
//! ours left alone, `--no-input` without `--yes` stopping before a sign-in, and the plan shown
//! before any change, a "no" changing nothing.

use crate::support::common;

use common::{Env, assert_ok, stderr, tenant};
use hal_sandbox::catalog;
use hal_sandbox::state::TenantState;
use serde_json::Value;

const NAME: &str = hal_onboard::partner::PARTNER_APP_NAME;

fn setup_args(env: &Env) -> Vec<String> {
    ["partner", "setup", "--tenant", &env.domain(), "--yes"]
        .map(String::from)
        .to_vec()
}

async fn setup(env: &Env) -> std::process::Output {
    let a = setup_args(env);
    env.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .await
}

fn graph_writes(env: &Env) -> usize {
    env.sb
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/graph/") && r.method != "GET")
        .count()
}

fn config(env: &Env) -> Value {
    let text = std::fs::read_to_string(env.home().join("config.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Every grant of the partner app's principal: resource app id → scopes.
fn grants(env: &Env) -> Vec<(String, Vec<String>)> {
    let snap = env.sb.snapshot(env.id);
    let app = snap.application_named(NAME).expect("the partner app");
    let sp = snap
        .service_principal_for(&app.app_id.to_string())
        .expect("its principal");
    let mut out: Vec<(String, Vec<String>)> = snap
        .oauth2_grants
        .iter()
        .filter(|g| g.client_id == sp.id)
        .map(|g| {
            assert_eq!(g.consent_type, "AllPrincipals");
            assert!(g.principal_id.is_none());
            let res = snap
                .service_principals
                .iter()
                .find(|s| s.id == g.resource_id)
                .unwrap()
                .app_id
                .clone();
            let mut s: Vec<String> = g.scope.split_whitespace().map(String::from).collect();
            s.sort();
            (res, s)
        })
        .collect();
    out.sort();
    out
}

fn expected_grants() -> Vec<(String, Vec<String>)> {
    let mut v = vec![
        (
            catalog::GRAPH_APP_ID.to_string(),
            vec![
                "AppRoleAssignment.ReadWrite.All",
                "Application.ReadWrite.All",
                "DelegatedAdminRelationship.Read.All",
                "Directory.Read.All",
                "GroupMember.Read.All",
            ],
        ),
        (
            catalog::EXCHANGE_APP_ID.to_string(),
            vec!["Exchange.Manage"],
        ),
        (
            catalog::PARTNER_CENTER_APP_ID.to_string(),
            vec!["user_impersonation"],
        ),
    ]
    .into_iter()
    .map(|(r, s)| (r, s.into_iter().map(String::from).collect::<Vec<_>>()))
    .collect::<Vec<_>>();
    for (_, s) in &mut v {
        s.sort();
    }
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_msp_tenant_gets_the_app_its_principal_and_consent_and_a_rerun_changes_nothing() {
    let env = Env::start(tenant(0x5e70_0001)).await;
    let out = setup(&env).await;
    assert_ok(&out);

    let snap = env.sb.snapshot(env.id);
    let apps: Vec<_> = snap
        .applications
        .iter()
        .filter(|a| a.display_name == NAME)
        .collect();
    assert_eq!(apps.len(), 1, "one partner app");
    let app = apps[0];
    assert_eq!(app.sign_in_audience, "AzureADMultipleOrgs");
    assert_eq!(app.extra["isFallbackPublicClient"], true);
    assert!(
        app.extra["publicClient"]["redirectUris"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "http://localhost")
    );
    assert!(app.tags.iter().any(|t| t == "HalSiem"));
    // Every delegated permission by its published id, as a Scope.
    let ids = |res: &str| -> Vec<String> {
        app.required_resource_access
            .iter()
            .find(|r| r.resource_app_id == res)
            .map(|r| {
                r.resource_access
                    .iter()
                    .inspect(|a| assert_eq!(a.kind, "Scope"))
                    .map(|a| a.id.to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (value, id) in catalog::GRAPH_DELEGATED_SCOPES {
        let wanted = [
            "DelegatedAdminRelationship.Read.All",
            "Application.ReadWrite.All",
            "AppRoleAssignment.ReadWrite.All",
            "Directory.Read.All",
            "GroupMember.Read.All",
        ]
        .contains(value);
        assert_eq!(
            ids(catalog::GRAPH_APP_ID).contains(&id.to_string()),
            wanted,
            "{value}"
        );
    }
    assert_eq!(
        ids(catalog::EXCHANGE_APP_ID),
        vec!["ab4f2b77-0b06-4fc1-a9de-02113fc2ab7c"]
    );
    assert_eq!(
        ids(catalog::PARTNER_CENTER_APP_ID),
        vec!["1cebfa2a-fb4d-419e-b5f9-839b4383e05a"]
    );
    assert_eq!(grants(&env), expected_grants());
    let cfg = config(&env);
    assert_eq!(cfg["partner"]["clientId"], app.app_id.to_string());
    assert_eq!(cfg["partner"]["tenantId"], env.id.to_string());
    assert_eq!(cfg["partner"]["domain"], env.domain());
    assert_eq!(cfg["partner"]["cloud"], "global");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "hal-onboard partner login --tenant {}",
            env.domain()
        )),
        "{err}"
    );

    // Again: everything is found, nothing is written.
    env.sb.clear_requests();
    let again = setup(&env).await;
    assert_ok(&again);
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
    assert_eq!(graph_writes(&env), 0, "{:?}", env.sb.requests());
    assert_eq!(config(&env), cfg);
    assert_eq!(
        env.sb.snapshot(env.id).applications.len(),
        snap.applications.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_made_app_is_repaired_not_duplicated() {
    let env = Env::start(tenant(0x5e70_0002)).await;
    assert_ok(&setup(&env).await);
    let app_id = env
        .sb
        .snapshot(env.id)
        .application_named(NAME)
        .unwrap()
        .app_id;
    // Break it: no public client flows, Exchange's permission gone, Graph's consent short of
    // one scope, Partner Center's consent deleted.
    env.sb.with_tenant(env.id, |t: &mut TenantState| {
        let app = t
            .applications
            .iter_mut()
            .find(|a| a.display_name == NAME)
            .unwrap();
        app.extra
            .insert("isFallbackPublicClient".into(), Value::Bool(false));
        app.required_resource_access
            .retain(|r| r.resource_app_id != catalog::EXCHANGE_APP_ID);
        let sp_of = |t: &TenantState, a: &str| {
            t.service_principals
                .iter()
                .find(|s| s.app_id == a)
                .unwrap()
                .id
        };
        let graph = sp_of(t, catalog::GRAPH_APP_ID);
        let pc = sp_of(t, catalog::PARTNER_CENTER_APP_ID);
        for g in &mut t.oauth2_grants {
            if g.resource_id == graph {
                g.scope = g.scope.replace("GroupMember.Read.All", "");
            }
        }
        t.oauth2_grants.retain(|g| g.resource_id != pc);
    });
    let out = setup(&env).await;
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("repair the app"), "{err}");
    assert!(err.contains("GroupMember.Read.All"), "{err}");
    let snap = env.sb.snapshot(env.id);
    let apps: Vec<_> = snap
        .applications
        .iter()
        .filter(|a| a.display_name == NAME)
        .collect();
    assert_eq!(apps.len(), 1, "repaired, not made again");
    assert_eq!(apps[0].app_id, app_id);
    assert_eq!(apps[0].extra["isFallbackPublicClient"], true);
    assert!(
        apps[0]
            .required_resource_access
            .iter()
            .any(|r| r.resource_app_id == catalog::EXCHANGE_APP_ID)
    );
    assert_eq!(grants(&env), expected_grants());
    assert_eq!(config(&env)["partner"]["clientId"], app_id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_of_that_name_that_is_not_ours_is_left_alone_and_the_run_stops() {
    let env = Env::start(tenant(0x5e70_0003)).await;
    // Someone else's single-tenant app with the same name (made as an admin would, untagged).
    let token = env
        .sb
        .user_access_token(env.id, "https://graph.microsoft.com/.default")
        .unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(env.sb.ca_path()).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let r = http
        .post(env.sb.graph_url().join("v1.0/applications").unwrap())
        .bearer_auth(&token)
        .json(&serde_json::json!({"displayName": NAME}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let before = env.sb.snapshot(env.id);
    env.sb.clear_requests();

    let out = setup(&env).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not hal-onboard's"), "{err}");
    assert!(err.contains("AzureADMyOrg"), "{err}");
    assert!(err.contains("left alone"), "{err}");
    assert_eq!(graph_writes(&env), 0);
    let after = env.sb.snapshot(env.id);
    assert_eq!(after.applications, before.applications);
    assert_eq!(after.oauth2_grants, before.oauth2_grants);
    assert!(config(&env).get("partner").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_without_yes_exits_2_naming_yes_before_any_sign_in() {
    let env = Env::start(tenant(0x5e70_0004)).await;
    let d = env.domain();
    let out = env.run(&["partner", "setup", "--tenant", &d]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(
        env.sb
            .requests()
            .iter()
            .all(|r| !r.path.contains("/oauth2/") && !r.path.starts_with("/graph/")),
        "no sign-in, no Graph: {:?}",
        env.sb.requests()
    );
    assert!(env.sb.snapshot(env.id).application_named(NAME).is_none());
}

/// The plan is on the screen before the question, and "no" changes nothing in the tenant.
#[cfg(unix)]
#[test]
fn the_plan_comes_first_and_declining_changes_nothing() {
    use expectrl::Expect;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::start(tenant(0x5e70_0005)));
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in env.sb.env() {
        c.env(k, v);
    }
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env_remove("HAL_ONBOARD_HOME");
    if !env.keyring {
        c.env_remove("DBUS_SESSION_BUS_ADDRESS");
    }
    c.arg("--home")
        .arg(env.home())
        .args(["partner", "setup", "--tenant", &env.domain()]);
    let mut s = expectrl::Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(std::time::Duration::from_secs(60)));
    s.expect("Plan for").unwrap();
    s.expect("register the app").unwrap();
    s.expect("Make these changes?").unwrap();
    assert_eq!(graph_writes(&env), 0, "nothing written before the answer");
    s.send("n").unwrap();
    s.expect("Nothing was changed").unwrap();
    s.expect(expectrl::Eof).unwrap();
    let snap = env.sb.snapshot(env.id);
    assert!(snap.application_named(NAME).is_none());
    assert!(snap.oauth2_grants.is_empty());
    assert_eq!(graph_writes(&env), 0);
    assert!(config(&env).get("partner").is_none());
}

/// A sign-in whose token is for another tenant (a guest account, a remembered browser account)
/// stops before anything is read or written in the tenant asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_for_another_tenant_changes_nothing() {
    let mut msp = tenant(0x5e70_0006);
    let home = tenant(0x5e70_0007);
    msp.signed_in_user.home_tenant = Some(home.id);
    let env = Env::start_with(msp, vec![home]).await;
    let out = setup(&env).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("not t"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(graph_writes(&env), 0);
    assert!(env.sb.snapshot(env.id).application_named(NAME).is_none());
    assert!(config(&env).get("partner").is_none());
}
