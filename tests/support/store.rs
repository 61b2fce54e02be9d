//! Shared by the store and list tests: fixture tenants and a way to run the binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use hal_onboard::cloud::Cloud;
use hal_onboard::store::{
    AppRecord, EntraLicense, PortalState, SecretRecord, StepId, StepStatus, StoreDoc, TenantRecord,
    UalState,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub fn tenant_id(n: u32) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n as u128)
}

/// A tenant with nothing done yet.
pub fn blank(n: u32, domain: &str, name: &str) -> TenantRecord {
    let t = OffsetDateTime::now_utc() - Duration::days(3);
    let mut r = TenantRecord::new(tenant_id(n), domain, name, Cloud::Global);
    r.created_at = t;
    r.updated_at = t;
    r
}

/// A fully onboarded tenant whose secret expires in `days` days (plus an hour, so the count
/// is stable while the test runs).
pub fn complete(n: u32, domain: &str, name: &str, days: i64) -> TenantRecord {
    let now = OffsetDateTime::now_utc();
    let mut r = blank(n, domain, name);
    for id in StepId::ALL {
        let s = r.step_mut(id);
        s.status = StepStatus::Done;
        s.at = Some(now - Duration::days(2));
        s.attempts = 1;
    }
    r.ual.state = UalState::Enabled;
    r.ual.enabled_at = Some(now - Duration::days(2));
    r.ual.attempts = 1;
    r.app = Some(AppRecord {
        object_id: format!("obj-{n}"),
        app_id: format!("app-{n}"),
        display_name: "Hal SIEM".into(),
        service_principal_id: Some(format!("sp-{n}")),
    });
    r.secret = Some(SecretRecord {
        key_id: format!("key-{n}"),
        hint: "Q~a".into(),
        created_at: now - Duration::days(2),
        expires_at: now + Duration::days(days) + Duration::hours(1),
    });
    r.granted_permissions = (0..15).map(|i| format!("graph/Perm{i}")).collect();
    r.license = Some(EntraLicense::P1);
    r.portal.state = PortalState::Submitted;
    r.portal.submitted_at = Some(now - Duration::days(2));
    r.portal.secret_key_id = Some(format!("key-{n}"));
    r
}

pub fn doc(tenants: Vec<TenantRecord>) -> StoreDoc {
    StoreDoc {
        tenants,
        ..StoreDoc::default()
    }
}

pub fn write_doc(home: &Path, d: &StoreDoc) {
    let json = serde_json::to_vec_pretty(d).unwrap();
    std::fs::write(home.join("tenants.json"), json).unwrap();
}

/// Runs `hal-onboard <args> --home <home>` with a clean environment.
pub fn hal(home: &Path, args: &[&str]) -> Output {
    super::hal_onboard_std()
        .args(args)
        .arg("--home")
        .arg(home)
        .env_remove("HAL_ONBOARD_HOME")
        .env_remove("NO_COLOR")
        .env("HOME", home)
        .output()
        .expect("run hal-onboard")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}
