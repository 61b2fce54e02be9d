//! A home that cannot be one: clear error naming it, exit 2, nothing created.

use crate::support::store as store_support;

use std::path::Path;

use hal_onboard::store::{StoreError, TenantStore};
use store_support::{hal, stderr, stdout};

fn assert_bad_home_exit_2(home: &Path, why: &str) {
    for args in [&["list"][..], &["list", "--json"][..]] {
        let out = hal(home, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "error: cannot use {} as the hal-onboard home",
                home.display()
            )),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
        assert!(err.contains("hint: Pass --home DIR"), "{err}");
        assert_eq!(stdout(&out), "", "stdout must stay clean");
    }
}

#[test]
fn a_file_as_home_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    assert!(matches!(
        TenantStore::open(&file),
        Err(StoreError::Home { .. })
    ));
    assert!(matches!(
        TenantStore::for_reading(&file),
        Err(StoreError::Home { .. })
    ));
    assert_bad_home_exit_2(&file, "it is a file, not a directory");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello");
}

#[test]
fn a_home_below_a_file_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let home = file.join("hal");
    assert!(matches!(
        TenantStore::open(&home),
        Err(StoreError::Home { .. })
    ));
    assert_bad_home_exit_2(&home, "cause:");
}

#[cfg(target_os = "linux")]
#[test]
fn a_home_that_cannot_be_created_is_refused() {
    // Nobody, not even root, can make a directory in /proc.
    let home = Path::new("/proc/hal-onboard-test-home");
    let err = TenantStore::open(home).unwrap_err();
    assert!(matches!(err, StoreError::Home { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("--home"));
    let e: hal_onboard::error::CommandError = err.into();
    assert_eq!(e.status, hal_onboard::error::ExitStatus::Usage);
}

#[cfg(unix)]
#[test]
fn a_read_only_home_is_refused_before_any_step_runs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ro");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(home.join("probe"), b"").is_ok() {
        // Running as root (or with CAP_DAC_OVERRIDE): permissions do not bind us.
        eprintln!("skipped: this user can write to a read-only directory");
        return;
    }
    let err = TenantStore::open(&home).unwrap_err();
    assert!(matches!(err, StoreError::Home { .. }), "{err:?}");
    // Reading it is still fine: `list` of an empty home.
    assert!(
        TenantStore::for_reading(&home)
            .unwrap()
            .load()
            .unwrap()
            .tenants
            .is_empty()
    );
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_home_lists_nothing_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("not-yet");
    let out = hal(&home, &["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("hal-onboard tenant add"));
    assert!(!home.exists(), "list must not create the home");

    let out = hal(&home, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "[]\n");
    assert!(!home.exists());
}

#[test]
fn open_creates_the_home_and_it_is_writable() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("a/b/c");
    let store = TenantStore::open(&home).unwrap();
    assert!(home.is_dir());
    assert_eq!(store.dir(), home);
    store.update(|_| ()).unwrap();
    assert!(store.path().is_file());
}
