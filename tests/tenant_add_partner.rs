//! `tenant add --partner TENANT… | --partner --all --jobs N` end to end against the sandbox's
//! partner side (docs/scenarios/partner.json, plus customers built here): one partner sign-in,
//! READY and EXPIRING customers onboarded, BLOCKED ones skipped with nothing changed in them,
//! the exit status per README, `--jobs 1` and `--jobs 4` ending the same, a Retry-After one
//! customer gets holding back the others, a run killed half-way finishing on the next run, and
//! `via: partner` in the record.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use hal_sandbox::{Sandbox, Scenario};
use serde_json::{Value, json};
use uuid::Uuid;

const APP: &str = "hal-siem-log-collector";
const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const O365: &str = "c5393580-f805-4401-95e8-94b7a6ef2fc2";
const MSP_DOMAIN: &str = "northwindmsp.onmicrosoft.com";
/// Role definition ids (Microsoft Entra built-in roles).
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const CLOUD_APP_ADMIN: &str = "158c047a-c907-4556-b7ef-446551a6b5f7";
const PRIV_ROLE_ADMIN: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

/// This test's ids: docs/scenarios/partner.json's, with `n` in them (tests run at once).
fn id(n: u8, last: u128) -> Uuid {
    Uuid::parse_str(&format!("0d0a{n:02x}00-0000-4000-8000-{last:012x}")).unwrap()
}

/// A customer of the MSP reached through a relationship assigning `roles` to the Onboarders
/// group (which the technician is in, through Tier 2).
fn customer(
    v: &mut Value,
    n: u8,
    k: u128,
    name: &str,
    roles: &[&str],
    edit: impl FnOnce(&mut Value),
) {
    let tid = id(n, 0x300 + k);
    let mut t = json!({
        "id": tid,
        "displayName": name,
        "domains": [format!("{}.onmicrosoft.com", name.to_lowercase())],
    });
    edit(&mut t);
    v["tenants"].as_array_mut().unwrap().push(t);
    v["partner"]["relationships"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "displayName": format!("Onboarding {name}"),
            "customer": tid,
            "status": "active",
            "unifiedRoles": roles,
            "accessAssignments": [
                { "group": id(n, 0xa3), "unifiedRoles": roles }
            ]
        }));
}

fn scenario(n: u8, edit: impl FnOnce(&mut Value)) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/scenarios/partner.json"
    ))
    .unwrap()
    .replace("0d0a0000-", &format!("0d0a{n:02x}00-"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    for t in v["tenants"].as_array_mut().unwrap() {
        t["deviceCodeInterval"] = json!(0);
        t["deviceCodeApproveAfterPolls"] = json!(0);
    }
    v
}

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    pwsh: PathBuf,
    n: u8,
}

impl World {
    async fn start(n: u8, edit: impl FnOnce(&mut Value)) -> World {
        let dir = tempfile::tempdir().unwrap();
        let scenario: Scenario = serde_json::from_value(scenario(n, edit)).unwrap();
        let sb = Sandbox::start(scenario, &dir.path().join("sandbox"))
            .await
            .unwrap();
        let pwsh = hal_sandbox::pwsh::install_standin(
            &dir.path().join("bin"),
            std::path::Path::new(env!("CARGO_BIN_EXE_hal-onboard")),
            &sb.exchange_url(),
            &sb.ca_path(),
        )
        .unwrap();
        let w = World { sb, dir, pwsh, n };
        let client_id = w.register_partner_app().await;
        let cfg = hal_onboard::config::HomeConfig {
            partner: Some(hal_onboard::partner::PartnerConfig {
                client_id,
                tenant_id: w.msp(),
                domain: MSP_DOMAIN.into(),
                cloud: Default::default(),
            }),
            ..Default::default()
        };
        std::fs::create_dir_all(w.home()).unwrap();
        cfg.save(&w.home()).unwrap();
        w
    }

    fn msp(&self) -> Uuid {
        id(self.n, 0x100)
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The partner app in the MSP's tenant, as `partner setup` registers it: a multi-tenant
    /// public client.
    async fn register_partner_app(&self) -> String {
        let token = self
            .sb
            .user_access_token(self.msp(), "https://graph.microsoft.com/.default")
            .unwrap();
        let http = hal_onboard::http::build_client(Some(&self.sb.ca_path())).unwrap();
        let r = http
            .post(self.sb.graph_url().join("v1.0/applications").unwrap())
            .bearer_auth(token)
            .json(&json!({
                "displayName": "hal-onboard partner",
                "signInAudience": "AzureADMultipleOrgs",
                "isFallbackPublicClient": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["appId"].as_str().unwrap().to_string()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = crate::support::hal_onboard();
        for (k, v) in self.sb.env() {
            c.env(k, v);
        }
        c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
            .env("HAL_ONBOARD_PWSH", &self.pwsh)
            .env("HAL_ONBOARD_PWSH_TIMEOUT", "60")
            .env("NO_COLOR", "1")
            .arg("--home")
            .arg(self.home())
            .arg("--no-input")
            .args(["tenant", "add", "--partner"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = tokio::time::timeout(Duration::from_secs(180), self.command(args).output())
            .await
            .expect("hal-onboard finished within 3 minutes")
            .unwrap();
        if std::env::var_os("SHOW_OUTPUT").is_some() {
            eprintln!("--- {args:?}\n{}", String::from_utf8_lossy(&out.stderr));
        }
        out
    }

    fn record(&self, tenant: Uuid) -> Option<Value> {
        let text = std::fs::read_to_string(self.home().join("tenants.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["tenants"]
            .as_array()?
            .iter()
            .find(|t| t["tenantId"].as_str() == Some(&tenant.to_string()))
            .cloned()
    }

    /// One app of ours with the 15 permissions granted and one secret, the portal holding it,
    /// and the record finished and marked `via: partner`.
    fn assert_onboarded(&self, tenant: Uuid) {
        let snap = self.sb.snapshot(tenant);
        let apps: Vec<_> = snap
            .applications
            .iter()
            .filter(|a| a.display_name == APP)
            .collect();
        assert_eq!(apps.len(), 1, "{tenant}: exactly one app: {apps:#?}");
        let app = apps[0];
        let sp = snap
            .service_principal_for(&app.app_id.to_string())
            .unwrap_or_else(|| panic!("{tenant}: our service principal"));
        assert_eq!(snap.granted_roles(sp.id, GRAPH).len(), 12, "{tenant}");
        assert_eq!(snap.granted_roles(sp.id, O365).len(), 3, "{tenant}");
        let secrets: Vec<_> = app
            .password_credentials
            .iter()
            .filter(|p| p.display_name.as_deref() == Some("hal"))
            .collect();
        assert_eq!(secrets.len(), 1, "{tenant}: one secret named hal");
        let held = self
            .sb
            .portal()
            .received(&tenant.to_string())
            .unwrap_or_else(|| panic!("{tenant}: the portal has the credentials"));
        let held = serde_json::to_value(&held).unwrap();
        let sent = &held["submission"];
        assert_eq!(
            sent["clientId"].as_str(),
            Some(app.app_id.to_string().as_str()),
            "{tenant}: the portal holds our app"
        );
        assert_eq!(
            sent["secretKeyId"].as_str(),
            Some(secrets[0].key_id.to_string().as_str()),
            "{tenant}: the portal holds the secret on the app"
        );
        let rec = self.record(tenant).expect("a record");
        assert_eq!(rec["via"], "partner", "{rec:#}");
        if rec["steps"]["exchange"]["status"] != "skipped" {
            // UAL on, through a session delegated to this customer (one sign-in for both).
            let ex = self
                .sb
                .exchange()
                .snapshot(tenant)
                .expect("an Exchange organization");
            assert!(ex.ual_enabled, "{tenant}: UAL on");
            assert_eq!(rec["steps"]["exchange"]["status"], "done", "{rec:#}");
        }
        for step in ["app", "secret", "consent", "verify", "portal"] {
            assert_eq!(
                rec["steps"][step]["status"], "done",
                "{tenant} {step}: {rec:#}"
            );
        }
    }

    /// Ends this world's stand-in PowerShells still running (a hung one whose parent was
    /// killed): found by their executable's path in /proc.
    fn kill_standins(&self) {
        for pid in self.standins() {
            // SAFETY: a process this test started (through hal-onboard).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// This world's stand-in PowerShells still running (not zombies).
    fn standins(&self) -> Vec<i32> {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        let mut found = vec![];
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
                continue;
            };
            let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
            if !argv0.is_empty() && argv0 == self.pwsh.as_os_str().as_encoded_bytes() {
                found.push(pid);
            }
        }
        found
    }

    /// Nothing of ours in the customer's tenant, and no record of it.
    fn assert_untouched(&self, tenant: Uuid) {
        let snap = self.sb.snapshot(tenant);
        assert!(
            snap.applications.iter().all(|a| a.display_name != APP),
            "{tenant}: {:#?}",
            snap.applications
        );
        assert!(self.record(tenant).is_none(), "{tenant}: no record");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `--partner --all`: the READY and the EXPIRING customer are onboarded; the Microsoft-led-only
/// and the pending-assignment customers are skipped with their codes and nothing changed in
/// them; the expired relationship's customer is not offered; exit 1 (some were blocked).
#[tokio::test]
async fn all_onboards_ready_and_expiring_and_skips_blocked() {
    let n = 1;
    let w = World::start(n, |v| customer(v, n, 1, "Woodgrove", &[GA], |_| {})).await;
    let fabrikam = id(n, 0x201);
    let (tailspin, litware, adatum) = (id(n, 0x202), id(n, 0x203), id(n, 0x204));
    let woodgrove = id(n, 0x301);
    let t = Instant::now();
    let out = w.run(&["--all", "--yes"]).await;
    let wall = t.elapsed();
    let err = stderr(&out);
    eprintln!("tenant add --partner --all (2 customers onboarded, 2 blocked): {wall:?}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    // No saved sign-in (no keyring here): the run signed the technician in itself, once.
    assert_eq!(err.matches("one-time code").count(), 1, "{err}");
    assert!(
        err.contains("your own account of the MSP's tenant"),
        "{err}"
    );
    w.assert_onboarded(fabrikam);
    w.assert_onboarded(woodgrove);
    for t in [tailspin, litware, adatum] {
        w.assert_untouched(t);
    }
    assert!(err.contains("GDAP_ASSIGNMENT_PENDING"), "{err}");
    assert!(err.contains("EXPIRING"), "{err}");
    assert!(err.contains("Summary: 2 onboarded, 0 waiting, "), "{err}");
    // Blocked, with the fix; the pending one names the role it waits for.
    assert!(err.contains("fix:"), "{err}");
}

/// A customer no relationship reaches: GDAP_NO_RELATIONSHIP, nothing changed, exit 1.
#[tokio::test]
async fn a_named_customer_without_relationship_is_gdap_no_relationship() {
    let n = 2;
    let w = World::start(n, |_| {}).await;
    let out = w.run(&["tailspin.onmicrosoft.com", "--yes"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("GDAP_NO_RELATIONSHIP"), "{err}");
    w.assert_untouched(id(n, 0x202));
}

/// Without Exchange Administrator the customer is GDAP_ROLE_MISSING (named, with why);
/// `--skip-exchange` lifts that requirement and onboards it (exit 0).
#[tokio::test]
async fn skip_exchange_lifts_the_exchange_administrator_requirement() {
    let n = 3;
    let w = World::start(n, |v| {
        customer(
            v,
            n,
            1,
            "Proseware",
            &[CLOUD_APP_ADMIN, PRIV_ROLE_ADMIN],
            |_| {},
        )
    })
    .await;
    let proseware = id(n, 0x301);
    let out = w.run(&["proseware.onmicrosoft.com", "--yes"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("GDAP_ROLE_MISSING"), "{err}");
    // The missing role and why, the roles held there with relationship and group, the fix.
    assert!(
        err.contains("Exchange Administrator (it switches on unified audit logging"),
        "{err}"
    );
    assert!(
        err.contains(
            "Cloud Application Administrator (relationship 'Onboarding Proseware', group 'Onboarders')"
        ),
        "{err}"
    );
    assert!(err.contains("fix:"), "{err}");
    w.assert_untouched(proseware);

    let out = w
        .run(&["proseware.onmicrosoft.com", "--yes", "--skip-exchange"])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    w.assert_onboarded(proseware);
}

/// Six customers with `--jobs 1` and with `--jobs 4` (two sandboxes): the same end state in
/// every customer, each onboarded once; the wall times are printed for the report.
#[tokio::test]
async fn jobs_1_and_4_end_the_same() {
    let mut times = vec![];
    for (n, jobs) in [(4u8, "1"), (5u8, "4")] {
        let w = World::start(n, |v| {
            for k in 1..=6 {
                // Microsoft's answers take time: what running customers at once wins back.
                customer(v, n, k, &format!("Cust{k}"), &[GA], |t| {
                    t["latencyMs"] = json!(50);
                });
            }
        })
        .await;
        let named: Vec<String> = (1..=6)
            .map(|k| format!("cust{k}.onmicrosoft.com"))
            .collect();
        let mut args: Vec<&str> = named.iter().map(String::as_str).collect();
        args.extend(["--yes", "--jobs", jobs]);
        let t = Instant::now();
        let out = w.run(&args).await;
        let wall = t.elapsed();
        // Graph HTTP requests per customer ($batch counted once), the MSP side (the GDAP
        // survey) included.
        let graph =
            w.sb.requests()
                .iter()
                .filter(|r| r.path.starts_with("/graph/"))
                .count();
        times.push((jobs, wall, graph as f64 / 6.0));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for k in 1..=6 {
            w.assert_onboarded(id(n, 0x300 + k));
        }
        let err = stderr(&out);
        assert!(
            err.contains("Summary: 6 onboarded, 0 waiting, 0 blocked, 0 failed"),
            "{err}"
        );
    }
    eprintln!("six customers (jobs, wall time, Graph requests per customer): {times:?}");
}

/// A Retry-After one customer gets holds back the other job's Graph requests too: its line
/// says so, and the sandbox saw none of its Graph requests while the wait ran.
#[tokio::test]
async fn retry_after_is_honoured_across_jobs() {
    let n = 6;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Throttled", &[GA], |t| {
            t["throttleEvery"] = json!(7);
            t["throttleRetryAfter"] = json!(1);
        });
        customer(v, n, 2, "Patient", &[GA], |t| {
            t["latencyMs"] = json!(120);
        });
    })
    .await;
    let (throttled, patient) = (id(n, 0x301), id(n, 0x302));
    let out = w
        .run(&[
            "throttled.onmicrosoft.com",
            "patient.onmicrosoft.com",
            "--yes",
            "--skip-exchange",
            "--jobs",
            "2",
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    w.assert_onboarded(throttled);
    w.assert_onboarded(patient);
    assert!(
        err.contains("Patient: Microsoft Graph asked this run to wait"),
        "the other job waited: {err}"
    );
    let log = w.sb.requests();
    let graph = |r: &&hal_sandbox::RequestLogEntry| r.path.starts_with("/graph/");
    let first_429 = log
        .iter()
        .filter(graph)
        .find(|r| r.status == 429 && r.tenant == Some(throttled))
        .expect("the throttled customer got a 429")
        .at;
    let slack = time::Duration::milliseconds(300);
    let during: Vec<_> = log
        .iter()
        .filter(graph)
        .filter(|r| r.tenant == Some(patient))
        .filter(|r| {
            r.at > first_429 + slack && r.at < first_429 + time::Duration::seconds(1) - slack
        })
        .collect();
    assert!(
        during.is_empty(),
        "the patient customer's requests during the wait: {during:#?}"
    );
}

/// A run killed half-way (one customer's PowerShell hung, the other done) and run again
/// finishes every customer with one app, fifteen grants and one secret.
#[tokio::test]
async fn a_killed_run_is_finished_by_the_next() {
    let n = 7;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Quick", &[GA], |_| {});
        customer(v, n, 2, "Hung", &[GA], |t| {
            t["exchange"] = json!({"hang": true});
        });
        customer(v, n, 3, "Later", &[GA], |_| {});
    })
    .await;
    let (quick, hung, later) = (id(n, 0x301), id(n, 0x302), id(n, 0x303));
    let mut child = w
        .command(&[
            "quick.onmicrosoft.com",
            "hung.onmicrosoft.com",
            "later.onmicrosoft.com",
            "--yes",
            "--jobs",
            "2",
        ])
        .spawn()
        .unwrap();
    // Quick finishes while Hung's PowerShell hangs in step 1; Later runs in Quick's slot.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let done = |t| {
            w.record(t)
                .is_some_and(|r| r["steps"]["portal"]["status"] == "done")
        };
        if done(quick) && w.record(hung).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "Quick was not onboarded in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    // Hung's stand-in PowerShell outlived its killed parent (it never answers): end it.
    w.kill_standins();
    w.sb.exchange().add_tenant(hung, Default::default());
    w.sb.exchange()
        .set_initial_domain(hung, "hung.onmicrosoft.com");

    let out = w
        .run(&[
            "quick.onmicrosoft.com",
            "hung.onmicrosoft.com",
            "later.onmicrosoft.com",
            "--yes",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for t in [quick, hung, later] {
        w.assert_onboarded(t);
    }
}

/// `--no-input` without `--yes`: exit 2 before any sign-in (the sandbox saw no token request).
#[tokio::test]
async fn no_input_without_yes_stops_before_any_sign_in() {
    let n = 8;
    let w = World::start(n, |_| {}).await;
    w.sb.clear_requests();
    let out = w.run(&["--all"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(
        w.sb.requests().iter().all(|r| !r.path.contains("/token")),
        "{:#?}",
        w.sb.requests()
    );
}

/// The command line's shape: several tenants need --partner; --all needs --partner and no
/// tenant; --jobs is 1..=16; --partner with nothing named asks for a customer or --all.
#[tokio::test]
async fn the_command_line_shape() {
    let run = |args: &'static [&'static str]| async move {
        let home = tempfile::tempdir().unwrap();
        let out = crate::support::hal_onboard()
            .arg("--home")
            .arg(home.path())
            .arg("--no-input")
            .args(args)
            .output()
            .await
            .unwrap();
        (out.status.code(), stderr(&out))
    };
    let (code, err) = run(&["tenant", "add", "a.onmicrosoft.com", "b.onmicrosoft.com"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--partner"), "{err}");
    let (code, err) = run(&["tenant", "add", "--all"]).await;
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["tenant", "add", "a.onmicrosoft.com", "--jobs", "2"]).await;
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["tenant", "add", "--partner", "--all", "a.onmicrosoft.com"]).await;
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["tenant", "add", "--partner", "--jobs", "17", "--all"]).await;
    assert_eq!(code, Some(2), "{err}");
    // One sign-in serves Graph and Exchange, with the partner app: neither is chosen here.
    let (code, err) = run(&[
        "tenant",
        "add",
        "--partner",
        "--all",
        "--exchange-auth",
        "device",
    ])
    .await;
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["tenant", "add", "--partner", "--yes"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--all"), "{err}");
    // Both places for --partner parse, and reach partner mode (not set up in this home).
    for args in [
        &[
            "tenant",
            "add",
            "--partner",
            "a.onmicrosoft.com",
            "b.onmicrosoft.com",
            "--yes",
        ][..],
        &["tenant", "add", "a.onmicrosoft.com", "--partner", "--yes"][..],
        &["tenant", "add", "--partner", "--all", "--yes"][..],
    ] {
        let args: &'static [&'static str] = Box::leak(args.to_vec().into_boxed_slice());
        let (code, err) = run(args).await;
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("partner setup"), "{args:?}: {err}");
    }
}

/// Ctrl-C while one customer's PowerShell hangs and another is done: every job stops, exit
/// 130 with the one interrupted line (no summary of failures, no hint), the hung PowerShell
/// ended, and the next run finishes the stopped customer.
#[tokio::test]
async fn ctrl_c_stops_every_job_with_the_one_line() {
    let n = 9;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Quick", &[GA], |_| {});
        customer(v, n, 2, "Hung", &[GA], |t| {
            t["exchange"] = json!({"hang": true});
        });
    })
    .await;
    let (quick, hung) = (id(n, 0x301), id(n, 0x302));
    let args = ["quick.onmicrosoft.com", "hung.onmicrosoft.com", "--yes"];
    let child = w.command(&args).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(w
        .record(quick)
        .is_some_and(|r| r["steps"]["portal"]["status"] == "done")
        && w.sb
            .exchange()
            .snapshot(hung)
            .is_some_and(|s| s.counters.connects > 0))
    {
        assert!(
            Instant::now() < deadline,
            "Quick done and Hung connecting in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signals our own child.
    unsafe {
        libc::kill(child.id().unwrap() as i32, libc::SIGINT);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("hal-onboard ends soon after Ctrl-C")
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    const LINE: &str =
        "interrupted: everything done so far is saved; run the same command to resume";
    assert_eq!(err.matches(LINE).count(), 1, "{err}");
    assert!(!err.contains("hint:") && !err.contains("Summary"), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = w.standins();
    w.kill_standins();
    assert!(
        left.is_empty(),
        "stand-in PowerShells left running: {left:?}"
    );

    w.sb.exchange().add_tenant(hung, Default::default());
    w.sb.exchange()
        .set_initial_domain(hung, "hung.onmicrosoft.com");
    let out = w.run(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    w.assert_onboarded(quick);
    w.assert_onboarded(hung);
}

/// A delegated Exchange session that acts on the MSP's own organization (as reported with
/// `-AccessToken -DelegatedOrganization`): that customer fails naming both organizations, and
/// neither organization's audit logging was changed; the other customer is onboarded.
#[tokio::test]
async fn an_exchange_session_in_the_partners_organization_changes_nothing() {
    let n = 10;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Fine", &[GA], |_| {});
        customer(v, n, 2, "Misrouted", &[GA], |t| {
            t["exchange"] = json!({"delegatedActsOnPartner": true});
        });
    })
    .await;
    let (fine, misrouted) = (id(n, 0x301), id(n, 0x302));
    let msp_before = w.sb.exchange().snapshot(w.msp()).map(|s| s.ual_enabled);
    let out = w
        .run(&["fine.onmicrosoft.com", "misrouted.onmicrosoft.com", "--yes"])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    w.assert_onboarded(fine);
    assert!(
        err.contains("Misrouted (misrouted.onmicrosoft.com): failed"),
        "{err}"
    );
    assert!(
        err.contains("acts on northwindmsp.onmicrosoft.com, not on misrouted.onmicrosoft.com"),
        "{err}"
    );
    assert_eq!(
        w.sb.exchange().snapshot(w.msp()).map(|s| s.ual_enabled),
        msp_before,
        "the MSP's own audit logging untouched"
    );
    assert!(!w.sb.exchange().snapshot(misrouted).unwrap().ual_enabled);
    assert!(
        w.sb.snapshot(misrouted)
            .applications
            .iter()
            .all(|a| a.display_name != APP),
        "the Graph steps did not run after step 1 stopped"
    );
}

/// A customer another hal-onboard is changing (its tenant lock held) is skipped, nothing
/// changed in it, and said so; the others are onboarded; exit 1 (not every customer is done).
/// `--json` carries every customer's result.
#[tokio::test]
async fn a_busy_customer_is_skipped_not_failed() {
    let n = 11;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Free", &[GA], |_| {});
        customer(v, n, 2, "Busy", &[GA], |_| {});
    })
    .await;
    let (free, busy) = (id(n, 0x301), id(n, 0x302));
    let lock = hal_onboard::store::lock::acquire(&w.home(), busy, "Busy", "tenant add").unwrap();
    let out = w
        .run(&[
            "free.onmicrosoft.com",
            "busy.onmicrosoft.com",
            "--yes",
            "--json",
        ])
        .await;
    drop(lock);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    w.assert_onboarded(free);
    w.assert_untouched(busy);
    assert!(err.contains("skipped: another hal-onboard"), "{err}");
    assert!(
        err.contains("0 failed, 1 skipped (another run is working on it)"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let result = |t: Uuid| {
        v["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["tenantId"] == json!(t))
            .map(|c| c["result"].clone())
    };
    assert_eq!(result(free), Some(json!("onboarded")), "{v:#}");
    assert_eq!(result(busy), Some(json!("busy")), "{v:#}");
    assert_eq!(v["onboarded"], 1);
    assert_eq!(v["busy"], 1);
}

/// At a terminal: the plan's one question, then the live table (a row per running customer
/// with its step) and each finished customer's line above it, then the summary.
#[cfg(unix)]
#[test]
fn at_a_terminal_the_batch_asks_once_and_shows_a_live_table() {
    use expectrl::Expect;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n = 12;
    let w = rt.block_on(World::start(n, |v| {
        for (k, name) in [(1, "Slow"), (2, "Slower")] {
            customer(v, n, k, name, &[GA], |t| {
                t["latencyMs"] = json!(60 * k);
            });
        }
    }));
    let mut c = crate::support::hal_onboard_std();
    for (k, v) in w.sb.env() {
        c.env(k, v);
    }
    c.env("HAL_ONBOARD_RETRY_SCALE", "0.01")
        .env("HAL_ONBOARD_PWSH", &w.pwsh)
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .arg("--home")
        .arg(w.home())
        .args([
            "tenant",
            "add",
            "--partner",
            "slow.onmicrosoft.com",
            "slower.onmicrosoft.com",
        ]);
    let mut s = expectrl::Session::spawn(c).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(90)));
    s.expect("Plan: onboard 2 customers").unwrap();
    s.expect("Onboard 2 customers as planned?").unwrap();
    s.send("y").unwrap();
    // A running customer's row: its name and its current step.
    s.expect(expectrl::Regex(
        "Slower +[^\n]*(consent for the partner app|[1-6]/6 )",
    ))
    .unwrap();
    s.expect("Slow (slow.onmicrosoft.com): onboarded").unwrap();
    s.expect("Summary: 2 onboarded, 0 waiting, 0 blocked, 0 failed")
        .unwrap();
    s.expect(expectrl::Eof).unwrap();
    w.assert_onboarded(id(n, 0x301));
    w.assert_onboarded(id(n, 0x302));
}

/// A customer whose audit logging only waits on Microsoft's propagation: onboarded otherwise,
/// "waiting" in the summary, and exit 3 when no customer is blocked or failed.
#[tokio::test]
async fn only_waiting_on_microsoft_exits_3() {
    let n = 13;
    let w = World::start(n, |v| {
        customer(v, n, 1, "Done", &[GA], |_| {});
        customer(v, n, 2, "Dehydrated", &[GA], |t| {
            t["exchange"] = json!({"dehydrated": true, "propagationAttempts": 50});
        });
    })
    .await;
    let out = w
        .run(&[
            "done.onmicrosoft.com",
            "dehydrated.onmicrosoft.com",
            "--yes",
        ])
        .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("Summary: 1 onboarded, 1 waiting, 0 blocked, 0 failed"),
        "{err}"
    );
    w.assert_onboarded(id(n, 0x301));
    let rec = w.record(id(n, 0x302)).unwrap();
    assert_eq!(rec["steps"]["exchange"]["status"], "waiting", "{rec:#}");
    assert_eq!(rec["steps"]["verify"]["status"], "done", "{rec:#}");
    assert_eq!(rec["via"], "partner");
}
