//! One run per tenant: a lock file per tenant ID under the home, held for the whole of a
//! command that changes that tenant.
//!
//! The lock is an OS advisory lock (`flock`/`LockFileEx` through `std::fs::File::try_lock`), so
//! a process that dies releases it with no clean-up; the file's content (pid, start time,
//! command) only says who holds it. Two technicians on one home, or two terminals, can then
//! never make two apps for one tenant, and `list` can show a tenant as "in progress".

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Under the home: `locks/<tenant-id>.lock`.
pub const LOCK_DIR: &str = "locks";

/// How long a busy lock is retried before it counts as held: `list` takes a shared lock for a
/// moment to look, and must not make a starting run give up.
const PATIENCE: Duration = Duration::from_millis(600);

/// Who holds a tenant's lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    pub pid: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// e.g. `tenant add`.
    pub command: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process works on this tenant.
    #[error("another hal-onboard ({}) is working on {tenant}", holder_text(.holder))]
    Busy {
        tenant: String,
        holder: Option<Holder>,
    },
    #[error("cannot use the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The words exactly (a public contract): "pid N, since HH:MM" (UTC).
fn holder_text(h: &Option<Holder>) -> String {
    match h {
        Some(h) => format!(
            "pid {}, since {:02}:{:02}",
            h.pid,
            h.since.hour(),
            h.since.minute(),
        ),
        None => "another process".into(),
    }
}

impl LockError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Busy { holder, .. } => Some(format!(
                "{}Wait for it to finish (`hal-onboard list` shows the tenant as in progress), then run this command again.",
                holder
                    .as_ref()
                    .filter(|h| !h.command.is_empty())
                    .map(|h| format!(
                        "It runs `hal-onboard {}` (since {:02}:{:02} UTC). ",
                        h.command,
                        h.since.hour(),
                        h.since.minute()
                    ))
                    .unwrap_or_default()
            )),
            LockError::Io { .. } => None,
        }
    }
}

/// A held tenant lock: released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct TenantLock {
    _file: File,
    path: PathBuf,
}

impl TenantLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn lock_path(home: &Path, tenant: Uuid) -> PathBuf {
    home.join(LOCK_DIR).join(format!("{tenant}.lock"))
}

/// Opens a lock file without following a symlink planted in its place.
fn open(path: &Path, create: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(create);
    if create {
        o.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path)
}

/// Takes the lock on `tenant` for `command`, or says who holds it. `label` names the tenant
/// in the message (its display name or domain).
pub fn acquire(
    home: &Path,
    tenant: Uuid,
    label: &str,
    command: &str,
) -> Result<TenantLock, LockError> {
    let path = lock_path(home, tenant);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(home.join(LOCK_DIR)).map_err(io)?;
    let mut file = open(&path, true).map_err(io)?;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    tenant: label.to_string(),
                    holder: read_holder(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let holder = Holder {
        pid: std::process::id(),
        since: OffsetDateTime::now_utc(),
        command: command.to_string(),
    };
    let body = serde_json::to_vec(&holder).expect("a holder serializes");
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(&body))
        .and_then(|_| file.flush())
        .map_err(io)?;
    Ok(TenantLock { _file: file, path })
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// Who is working on `tenant` right now, if anyone: for `list`. Never creates a file, and
/// holds a shared lock only for the moment it looks.
pub fn holder(home: &Path, tenant: Uuid) -> Option<Holder> {
    let mut file = open(&lock_path(home, tenant), false).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(read_holder(&mut file).unwrap_or(Holder {
            pid: 0,
            since: OffsetDateTime::UNIX_EPOCH,
            command: String::new(),
        })),
        Err(TryLockError::Error(_)) => None,
    }
}

/// Every tenant someone is working on now, for `list` over many tenants: one directory read.
pub fn busy(home: &Path) -> std::collections::HashMap<Uuid, Holder> {
    let mut out = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(home.join(LOCK_DIR)) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|n| Uuid::parse_str(n).ok())
        else {
            continue;
        };
        if let Some(h) = holder(home, id) {
            out.insert(id, h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_tenant_is_refused_with_the_holder() {
        let home = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let held = acquire(home.path(), id, "Contoso", "tenant add").unwrap();
        let err = acquire(home.path(), id, "Contoso", "secret rotate").unwrap_err();
        let LockError::Busy { holder: who, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(who.as_ref().unwrap().pid, std::process::id());
        assert_eq!(who.as_ref().unwrap().command, "tenant add");
        let text = err.to_string();
        let since = who.as_ref().unwrap().since;
        assert_eq!(
            text,
            format!(
                "another hal-onboard (pid {}, since {:02}:{:02}) is working on Contoso",
                std::process::id(),
                since.hour(),
                since.minute()
            )
        );
        assert!(err.hint().unwrap().contains("`hal-onboard tenant add`"));
        assert_eq!(holder(home.path(), id).unwrap().command, "tenant add");
        assert_eq!(busy(home.path()).len(), 1);
        drop(held);
        assert!(holder(home.path(), id).is_none());
        assert!(busy(home.path()).is_empty());
        acquire(home.path(), id, "Contoso", "secret rotate").unwrap();
    }

    #[test]
    fn other_tenants_are_not_blocked() {
        let home = tempfile::tempdir().unwrap();
        let _a = acquire(home.path(), Uuid::new_v4(), "A", "tenant add").unwrap();
        acquire(home.path(), Uuid::new_v4(), "B", "tenant add").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_is_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        let victim = home.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        std::fs::create_dir_all(home.path().join(LOCK_DIR)).unwrap();
        std::os::unix::fs::symlink(&victim, lock_path(home.path(), id)).unwrap();
        assert!(matches!(
            acquire(home.path(), id, "A", "tenant add"),
            Err(LockError::Io { .. })
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    }
}
