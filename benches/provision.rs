//! Provisioning cost against the sandbox with 50 ms injected latency: HTTP requests and
//! sequential round trips after sign-in (replication and throttling retries reported apart),
//! and wall time, for a fresh tenant and for a re-run on a finished one.
//!
//! `cargo bench --bench provision` (spawns the real binary, like a technician would).

use std::process::Output;
use std::time::{Duration, Instant};

use hal_sandbox::{Sandbox, Scenario, TenantScenario};
use uuid::Uuid;

const RUNS: u128 = 5;
const LATENCY_MS: u64 = 50;

fn tenant(n: u128) -> TenantScenario {
    let mut t = TenantScenario {
        id: Uuid::from_u128(n),
        display_name: format!("Bench {n}"),
        domains: vec![format!("b{n}.onmicrosoft.com")],
        licenses: vec!["SPE_E5".into()],
        latency_ms: LATENCY_MS,
        device_code_approve_after_polls: 0,
        device_code_interval: 0,
        ..TenantScenario::default()
    };
    t.signed_in_user.upn = format!("admin@b{n}.onmicrosoft.com");
    t.signed_in_user.roles = vec!["Global Administrator".into()];
    t
}

/// (requests, round trips, writes, replication retries, throttle retries, other retries)
fn stats(o: &Output) -> [u32; 6] {
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("requests after sign-in:"))
        .unwrap_or_else(|| panic!("run failed:\n{err}"));
    let n: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    [n[0], n[1], n[2], n[3], n[4], n[5]]
}

async fn run(sb: &Sandbox, dir: &std::path::Path, n: u128) -> (Output, Duration) {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_hal-onboard"));
    for (k, v) in sb.env() {
        c.env(k, v);
    }
    let started = Instant::now();
    let out = c
        .env("NO_COLOR", "1")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .arg("--home")
        .arg(dir.join("home"))
        .args(["--no-input", "-v", "tenant", "add"])
        .arg(format!("b{n}.onmicrosoft.com"))
        .args(["--skip-exchange", "--yes"])
        .output()
        .await
        .unwrap();
    (out, started.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(
        Scenario {
            tenants: (1..=RUNS).map(tenant).collect(),
            ..Scenario::default()
        },
        &dir.path().join("sandbox"),
    )
    .await
    .unwrap();
    println!("provision benchmark: sandbox latency {LATENCY_MS} ms per response, {RUNS} tenants\n");
    println!(
        "{:<8} {:>8} {:>11} {:>7} {:>12} {:>9} {:>10}",
        "run", "requests", "round trips", "writes", "replication", "throttle", "wall (ms)"
    );
    let mut fresh_wall = Vec::new();
    let mut rerun_wall = Vec::new();
    for n in 1..=RUNS {
        for (label, walls) in [("fresh", &mut fresh_wall), ("re-run", &mut rerun_wall)] {
            let (out, wall) = run(&sb, dir.path(), n).await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let s = stats(&out);
            println!(
                "{:<8} {:>8} {:>11} {:>7} {:>12} {:>9} {:>10}",
                label,
                s[0],
                s[1],
                s[2],
                s[3],
                s[4],
                wall.as_millis()
            );
            walls.push(wall.as_millis());
        }
    }
    let med = |v: &mut Vec<u128>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "\nmedian wall time (sign-in included): fresh {} ms, re-run {} ms",
        med(&mut fresh_wall),
        med(&mut rerun_wall)
    );
    sb.shutdown().await;
}
