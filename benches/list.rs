//! Times the whole `hal-onboard list` process (and `list --json`) on a 1,000-tenant store.
//!
//! `cargo bench --bench list` builds the binary with the bench (release) profile, writes a
//! store of 1,000 tenants in every state to a temp home, runs each command `HAL_BENCH_RUNS`
//! times (default 50) after a warm-up, and prints min / median / p95 wall time and the peak RSS
//! of the child (from `wait4`; an upper bound, as it includes the bench process's own RSS at
//! spawn time, which the bench keeps small). It fails if a median is above 20 ms: a technician with a
//! large MSP runs `list` all day, and it must feel instant.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hal_onboard::cloud::Cloud;
use hal_onboard::store::{
    AppRecord, EntraLicense, PortalState, SecretRecord, StepId, StepStatus, TenantRecord,
    TenantStore, UalState,
};
use time::OffsetDateTime;
use uuid::Uuid;

const TENANTS: usize = 1_000;
const BUDGET_MS: f64 = 20.0;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let runs: usize = std::env::var("HAL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bin = env!("CARGO_BIN_EXE_hal-onboard");
    let home = tempfile::tempdir().expect("temp home");
    let store = TenantStore::open(home.path()).expect("open store");
    store
        .update(|doc| doc.tenants = (0..TENANTS).map(tenant).collect())
        .expect("write store");
    let size = std::fs::metadata(store.path()).unwrap().len();
    println!(
        "store: {TENANTS} tenants, {:.1} MiB ({}); {runs} runs each",
        size as f64 / (1024.0 * 1024.0),
        store.path().display()
    );

    // Check once that the output is what it should be, so we time real work.
    {
        let (out, _) = run(bin, home.path(), &["list", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("list --json is JSON");
        assert_eq!(v.as_array().map(Vec::len), Some(TENANTS));
        let (out, _) = run(bin, home.path(), &["list"]);
        assert!(String::from_utf8_lossy(&out).lines().count() > TENANTS);
    }
    release_memory();

    let mut over = false;
    for args in [&["list"][..], &["list", "--json"][..]] {
        for _ in 0..3 {
            run(bin, home.path(), args);
        }
        let mut times = Vec::with_capacity(runs);
        let mut peak_kib = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let (_, rss) = run(bin, home.path(), args);
            times.push(t.elapsed());
            peak_kib = peak_kib.max(rss);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let median = ms(times[times.len() / 2]);
        let p95 = ms(times[(times.len() * 95 / 100).min(times.len() - 1)]);
        println!(
            "hal-onboard {:<12} min {:6.2} ms   median {:6.2} ms   p95 {:6.2} ms   peak RSS {:.1} MiB",
            args.join(" "),
            ms(times[0]),
            median,
            p95,
            peak_kib as f64 / 1024.0
        );
        if median > BUDGET_MS {
            eprintln!(
                "FAIL: median of `hal-onboard {}` is {median:.2} ms, over the {BUDGET_MS} ms budget",
                args.join(" ")
            );
            over = true;
        }
    }
    if over {
        std::process::exit(1);
    }
}

/// Runs the binary to completion, reading its stdout like a pipe to `less` or `jq` would.
/// Returns the output and the child's peak RSS in KiB (0 where `wait4` is unavailable).
fn run(bin: &str, home: &Path, args: &[&str]) -> (Vec<u8>, i64) {
    let mut child = Command::new(bin)
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("HAL_ONBOARD_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hal-onboard");
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let (ok, rss) = reap(child);
    assert!(ok, "hal-onboard {} failed", args.join(" "));
    (out, rss)
}

/// Gives freed heap back to the OS. The child starts as a `vfork`-style clone of this
/// process, and Linux counts that shared start in the child's peak RSS: a small bench process
/// keeps the number about `hal-onboard` itself.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(unix)]
fn reap(child: std::process::Child) -> (bool, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and wait4 only writes into the two
    // out-parameters we own; `child` is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // ru_maxrss is in KiB on Linux (bytes on macOS).
    let kib = if cfg!(target_os = "macos") {
        usage.ru_maxrss / 1024
    } else {
        usage.ru_maxrss
    };
    (ok, kib)
}

#[cfg(not(unix))]
fn reap(mut child: std::process::Child) -> (bool, i64) {
    (child.wait().unwrap().success(), 0)
}

/// The i-th tenant: a realistic spread of states, domains and permissions.
fn tenant(i: usize) -> TenantRecord {
    let now = OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let name = format!("Customer {i:04} Holdings");
    let domain = format!("customer{i:04}.onmicrosoft.com");
    let mut r = TenantRecord::new(
        Uuid::from_u128(0x4000_0000_0000_4000_8000_0000_0000_0000 + i as u128),
        &domain,
        &name,
        Cloud::Global,
    );
    r.domains.push(format!("customer{i:04}.com"));
    r.domains.push(format!("mail.customer{i:04}.com"));
    let kind = i % 10;
    if kind == 9 {
        return r; // just added, nothing done
    }
    for id in StepId::ALL {
        let s = r.step_mut(id);
        s.status = StepStatus::Done;
        s.at = Some(now - day * 30);
        s.attempts = 1;
    }
    r.ual.state = UalState::Enabled;
    r.ual.hydrated_at = Some(now - day * 31);
    r.ual.enabled_at = Some(now - day * 30);
    r.ual.attempts = 2;
    r.app = Some(AppRecord {
        object_id: Uuid::from_u128(i as u128 * 7).to_string(),
        app_id: Uuid::from_u128(i as u128 * 11).to_string(),
        display_name: "Hal SIEM".into(),
        service_principal_id: Some(Uuid::from_u128(i as u128 * 13).to_string()),
    });
    r.secret = Some(SecretRecord {
        key_id: format!("key-{i}"),
        hint: "Q~a".into(),
        created_at: now - day * 30,
        expires_at: now + day * (i as i32 % 730 - 20),
    });
    r.granted_permissions = (0..15)
        .map(|p| format!("https://graph.microsoft.com/Permission{p}.Read.All"))
        .collect();
    r.license = Some(EntraLicense::P2);
    r.portal.state = PortalState::Submitted;
    r.portal.submitted_at = Some(now - day * 29);
    r.portal.secret_key_id = Some(format!("key-{i}"));
    match kind {
        6 => {
            r.ual.state = UalState::WaitingPropagation;
            r.steps.exchange.status = StepStatus::Waiting;
        }
        7 => {
            r.steps.consent.status = StepStatus::Failed;
            r.steps.consent.last_error =
                Some("Graph returned 403 Forbidden: Authorization_RequestDenied".into());
        }
        8 => {
            r.portal = Default::default();
            r.steps.portal = Default::default();
        }
        _ => {}
    }
    r
}
