//! The tenant store: `tenants.json` in the home directory.
//!
//! Every change is a short transaction: take an exclusive advisory lock on `tenants.lock`,
//! read the document, change it, write a temp file in the same directory, fsync, rename over
//! the old file, fsync the directory, release. A crash at any point leaves either the old or
//! the new document, and two processes never lose each other's updates (a killed writer's temp
//! file is swept by the next transaction). Readers (`list`) need no lock: a rename is atomic.
//! A file that cannot be parsed, or that a newer hal-onboard wrote, is never overwritten.
//! A command changes a record only through [`TenantStore::change`] (a closure on the record as
//! it is in the file) or [`TenantStore::save_changes`] (the fields it changed since it read the
//! record, [`RecordPatch`]): never by writing back a whole record read earlier.
//!
//! The file is compact JSON with one tenant per line: small enough that `list` reads a
//! thousand tenants in a few milliseconds, and still editable by hand in an emergency.

pub mod lock;
pub mod model;
pub mod patch;
pub mod status;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use uuid::Uuid;

pub use model::*;
pub use patch::RecordPatch;

pub const STATE_FILE: &str = "tenants.json";
const LOCK_FILE: &str = "tenants.lock";
const TEMP_PREFIX: &str = ".tenants.";
const TEMP_SUFFIX: &str = ".tmp";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use {path} as the hal-onboard home")]
    Home {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid hal-onboard state: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{path} was written by a newer hal-onboard (schema {found}; this version reads up to {supported})"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} can be written by other users (mode {mode:o}): anyone who can write there can plant tenant records or lock files"
    )]
    HomeNotPrivate { path: PathBuf, mode: u32 },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// What the technician should do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Corrupt { path, .. } => Some(format!(
                "Nothing was changed. Restore {} from a backup or fix it by hand; move it aside to start over (hal-onboard will then forget every tenant).",
                path.display()
            )),
            StoreError::NewerSchema { .. } => {
                Some("Upgrade hal-onboard, or use the version that wrote the file.".into())
            }
            StoreError::Home { .. } => Some(
                "Pass --home DIR (or set HAL_ONBOARD_HOME) to a directory you can write.".into(),
            ),
            StoreError::HomeNotPrivate { path, .. } => Some(format!(
                "Run `chmod 700 {}` (after checking nothing in it was changed by someone else), then run the command again.",
                path.display()
            )),
            _ => None,
        }
    }
}

/// The tenant store in one home directory.
#[derive(Debug, Clone)]
pub struct TenantStore {
    dir: PathBuf,
}

/// A read-modify-write under the store's lock. Dropping it without `commit` changes nothing.
pub struct Transaction<'a> {
    store: &'a TenantStore,
    _lock: File,
    pub doc: StoreDoc,
}

impl TenantStore {
    /// Opens (creating if needed) the store in `home`.
    pub fn open(home: &Path) -> Result<TenantStore, StoreError> {
        let err = |source| StoreError::Home {
            path: home.to_path_buf(),
            source,
        };
        if home.exists() && !home.is_dir() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "it is a file, not a directory",
            )));
        }
        create_private_dir(home).map_err(err)?;
        check_private(home)?;
        let store = TenantStore {
            dir: home.to_path_buf(),
        };
        // Fail now, naming the home, rather than halfway through a step: we must be able to
        // create files here (the lock, and the temp file each commit renames into place).
        store.open_lock_file().map_err(err)?;
        Ok(store)
    }

    /// A store that is only read: does not create the home.
    pub fn at(home: &Path) -> TenantStore {
        TenantStore {
            dir: home.to_path_buf(),
        }
    }

    /// A store for reading only (`list`): creates nothing, but refuses a home that can never
    /// be one (a file, or a path below a file). A home that does not exist yet is an empty
    /// store.
    pub fn for_reading(home: &Path) -> Result<TenantStore, StoreError> {
        let err = |source| StoreError::Home {
            path: home.to_path_buf(),
            source,
        };
        match fs::metadata(home) {
            Ok(m) if m.is_dir() => check_private(home)?,
            Ok(_) => {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    "it is a file, not a directory",
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        Ok(TenantStore::at(home))
    }

    /// The home directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The current document, without taking the lock. A missing file is an empty store.
    pub fn load(&self) -> Result<StoreDoc, StoreError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StoreDoc::default()),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        parse(&path, &bytes)
    }

    fn open_lock_file(&self) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
    }

    /// Starts a transaction: waits for the lock, then reads the document.
    pub fn transaction(&self) -> Result<Transaction<'_>, StoreError> {
        let lock_path = self.dir.join(LOCK_FILE);
        let lock = self
            .open_lock_file()
            .map_err(|source| match source.kind() {
                // The home itself is unusable (vanished, read-only): that is the home's fault.
                std::io::ErrorKind::NotFound
                | std::io::ErrorKind::NotADirectory
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::ReadOnlyFilesystem => StoreError::Home {
                    path: self.dir.clone(),
                    source,
                },
                _ => StoreError::Lock {
                    path: lock_path.clone(),
                    source,
                },
            })?;
        lock.lock().map_err(|source| StoreError::Lock {
            path: lock_path,
            source,
        })?;
        // Under the lock no other writer is running, so any temp file is a dead writer's.
        self.remove_stale_temp_files();
        let doc = self.load()?;
        Ok(Transaction {
            store: self,
            _lock: lock,
            doc,
        })
    }

    /// Runs `f` on the document in a transaction and commits what it left.
    pub fn update<R>(&self, f: impl FnOnce(&mut StoreDoc) -> R) -> Result<R, StoreError> {
        let mut tx = self.transaction()?;
        let r = f(&mut tx.doc);
        tx.commit()?;
        Ok(r)
    }

    /// Changes the record of tenant `id` as it is in the file now, under the store's lock
    /// (stamping `updated_at`): `f` sets only the fields its caller owns. `None` when there is
    /// no such record (nothing is written).
    pub fn change<R>(
        &self,
        id: Uuid,
        f: impl FnOnce(&mut TenantRecord) -> R,
    ) -> Result<Option<R>, StoreError> {
        let mut tx = self.transaction()?;
        let Some(rec) = tx.doc.tenants.iter_mut().find(|t| t.tenant_id == id) else {
            return Ok(None);
        };
        let r = f(rec);
        rec.updated_at = OffsetDateTime::now_utc();
        tx.commit()?;
        Ok(Some(r))
    }

    /// Saves what a step changed in its copy of a record: the fields that differ from
    /// `before` (the record as the step last read or wrote it) are set on the record as it is
    /// in the file now, under the lock; every other field keeps what the file has, whoever
    /// wrote it. With no `before`, or no record in the file, `after` is the record. Returns
    /// the record as saved.
    pub fn save_changes(
        &self,
        before: Option<&TenantRecord>,
        after: &TenantRecord,
    ) -> Result<TenantRecord, StoreError> {
        let mut tx = self.transaction()?;
        let now = OffsetDateTime::now_utc();
        let saved = match (
            before,
            tx.doc
                .tenants
                .iter_mut()
                .find(|t| t.tenant_id == after.tenant_id),
        ) {
            (Some(before), Some(fresh)) => {
                let patch = RecordPatch::between(before, after);
                if patch.is_empty() {
                    return Ok(fresh.clone());
                }
                patch.apply(fresh).map_err(|e| StoreError::Corrupt {
                    path: self.path(),
                    detail: format!("a change to {} could not be applied: {e}", after.tenant_id),
                })?;
                fresh.updated_at = now;
                fresh.clone()
            }
            _ => {
                tx.doc.upsert(after.clone());
                tx.doc.get(after.tenant_id).cloned().expect("just written")
            }
        };
        tx.commit()?;
        Ok(saved)
    }

    fn write_atomic(&self, doc: &StoreDoc) -> Result<(), StoreError> {
        let path = self.path();
        let werr = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)
            .map_err(werr)?;
        let json = to_json(doc);
        tmp.write_all(&json).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&path).map_err(|e| werr(e.error))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Removes temp files a writer left when it was killed mid-commit. Only call under the lock.
    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

impl Transaction<'_> {
    /// Writes the document atomically and releases the lock.
    pub fn commit(self) -> Result<(), StoreError> {
        self.store.write_atomic(&self.doc)
    }
}

/// Creates the home (and any missing parent) readable by its owner only.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Refuses a home that other users can write: they could plant records, or lock files that
/// point elsewhere.
fn check_private(home: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = fs::metadata(home) {
            let mode = m.mode() & 0o7777;
            // Sticky, world-writable folders like /tmp itself are still no home.
            if mode & 0o022 != 0 {
                return Err(StoreError::HomeNotPrivate {
                    path: home.to_path_buf(),
                    mode,
                });
            }
        }
    }
    let _ = home;
    Ok(())
}

/// The document as written: compact JSON with one tenant per line. Half the bytes of
/// pretty-printed JSON (so `list` reads a thousand tenants fast), yet still diff-able and
/// editable by hand, one tenant at a time.
fn to_json(doc: &StoreDoc) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + doc.tenants.len() * 2048);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, RecordPerLine::default());
    serde::Serialize::serialize(doc, &mut ser).expect("the store document serializes");
    out.push(b'\n');
    out
}

/// A compact JSON formatter that starts a new line for each element of an array that is a
/// field of the top-level object (`tenants`), and nowhere else.
#[derive(Default)]
struct RecordPerLine {
    depth: usize,
    broke_line: bool,
}

impl serde_json::ser::Formatter for RecordPerLine {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        if self.depth == 2 {
            self.broke_line = false;
        }
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.depth == 2 && self.broke_line {
            w.write_all(b"\n")?;
        }
        self.depth -= 1;
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.depth == 2 {
            self.broke_line = true;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        w.write_all(b"}")
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

fn parse(path: &Path, bytes: &[u8]) -> Result<StoreDoc, StoreError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        schema_version: Option<u32>,
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    // serde would also read a struct from a JSON array; only an object is a store document.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: if bytes.iter().all(u8::is_ascii_whitespace) {
                "the file is empty".into()
            } else {
                "not a JSON object".into()
            },
        });
    }
    // Validating UTF-8 once up front is cheaper than serde_json doing it string by string.
    let text = std::str::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("not UTF-8 text ({e})"),
    })?;
    // One parse in the common case (`list` reads a thousand tenants on every run); only a
    // file that does not fit our shape is read again, to tell a newer one from a broken one.
    match serde_json::from_str::<StoreDoc>(text) {
        Ok(doc) if doc.schema_version > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: doc.schema_version,
            supported: SCHEMA_VERSION,
        }),
        Ok(doc) => Ok(doc),
        Err(e) => match serde_json::from_str::<Version>(text) {
            Ok(Version {
                schema_version: Some(found),
            }) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            }),
            Ok(Version {
                schema_version: None,
            }) => Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: "no schemaVersion field".into(),
            }),
            _ => Err(corrupt(e)),
        },
    }
}

/// Why a name did not pick exactly one tenant.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no tenant matches {0:?}")]
    NotFound(String),
    #[error("{key:?} matches more than one tenant: {}", candidates.join(", "))]
    Ambiguous {
        key: String,
        candidates: Vec<String>,
    },
}

impl LookupError {
    /// What the technician should do about it.
    pub fn hint(&self) -> String {
        match self {
            LookupError::NotFound(_) => "Run `hal-onboard list` to see every tenant, or `hal-onboard tenant add <domain>` to onboard a new one.".into(),
            LookupError::Ambiguous { .. } => {
                "Name the tenant by its domain or tenant ID instead (shown above).".into()
            }
        }
    }
}

impl StoreDoc {
    /// Finds a tenant by GUID, by any recorded domain, or by display name (case-insensitive).
    pub fn find_index(&self, key: &str) -> Result<usize, LookupError> {
        let key_t = key.trim();
        if let Ok(id) = Uuid::parse_str(key_t) {
            return self
                .tenants
                .iter()
                .position(|t| t.tenant_id == id)
                .ok_or_else(|| LookupError::NotFound(key_t.to_string()));
        }
        let lower = key_t.to_lowercase();
        // A fully qualified name (`contoso.com.`) is the same domain.
        let domain = lower.strip_suffix('.').unwrap_or(&lower);
        if let Some(i) = self.tenants.iter().position(|t| {
            t.primary_domain.eq_ignore_ascii_case(domain)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
        }) {
            return Ok(i);
        }
        let by_name: Vec<usize> = self
            .tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| t.display_name.to_lowercase() == lower)
            .map(|(i, _)| i)
            .collect();
        match by_name.as_slice() {
            [i] => Ok(*i),
            [] => Err(LookupError::NotFound(key_t.to_string())),
            many => Err(LookupError::Ambiguous {
                key: key_t.to_string(),
                candidates: many
                    .iter()
                    .map(|&i| {
                        format!(
                            "{} ({})",
                            self.tenants[i].primary_domain, self.tenants[i].tenant_id
                        )
                    })
                    .collect(),
            }),
        }
    }

    pub fn find(&self, key: &str) -> Result<&TenantRecord, LookupError> {
        self.find_index(key).map(|i| &self.tenants[i])
    }

    pub fn get(&self, id: Uuid) -> Option<&TenantRecord> {
        self.tenants.iter().find(|t| t.tenant_id == id)
    }

    pub fn upsert(&mut self, mut rec: TenantRecord) {
        rec.updated_at = OffsetDateTime::now_utc();
        match self
            .tenants
            .iter_mut()
            .find(|t| t.tenant_id == rec.tenant_id)
        {
            Some(t) => *t = rec,
            None => self.tenants.push(rec),
        }
    }

    pub fn remove(&mut self, id: Uuid) -> Option<TenantRecord> {
        let i = self.tenants.iter().position(|t| t.tenant_id == id)?;
        Some(self.tenants.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;

    #[test]
    fn the_file_has_one_tenant_per_line_and_reads_back() {
        let mut a = TenantRecord::new(Uuid::from_u128(1), "a.onmicrosoft.com", "A", Cloud::Global);
        a.domains.push("a.com".into());
        a.granted_permissions = vec!["graph/AuditLog.Read.All".into()];
        let b = TenantRecord::new(
            Uuid::from_u128(2),
            "b.onmicrosoft.com",
            "B\n\"x\"",
            Cloud::China,
        );
        let doc = StoreDoc {
            schema_version: SCHEMA_VERSION,
            tenants: vec![a, b],
        };
        let text = String::from_utf8(to_json(&doc)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], r#"{"schemaVersion":1,"tenants":["#);
        assert!(lines[1].starts_with(r#"{"tenantId":"#) && lines[1].ends_with("},"));
        assert!(lines[2].ends_with('}'));
        assert_eq!(lines[3], "]}");
        assert!(text.ends_with("]}\n"));
        assert_eq!(parse(Path::new("t"), text.as_bytes()).unwrap(), doc);

        let empty = String::from_utf8(to_json(&StoreDoc::default())).unwrap();
        assert_eq!(empty, "{\"schemaVersion\":1,\"tenants\":[]}\n");
    }
}

#[cfg(all(test, unix))]
mod home_tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_home_is_private_and_a_shared_one_is_refused() {
        let base = tempfile::tempdir().unwrap();
        let home = base.path().join("a/b/home");
        TenantStore::open(&home).unwrap();
        let mode = fs::metadata(&home).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&home, fs::Permissions::from_mode(0o777)).unwrap();
        let e = TenantStore::open(&home).unwrap_err();
        assert!(
            matches!(e, StoreError::HomeNotPrivate { mode: 0o777, .. }),
            "{e}"
        );
        assert!(e.hint().unwrap().contains("chmod 700"));
        assert!(TenantStore::for_reading(&home).is_err());
        fs::set_permissions(&home, fs::Permissions::from_mode(0o770)).unwrap();
        assert!(TenantStore::open(&home).is_err());
        fs::set_permissions(&home, fs::Permissions::from_mode(0o750)).unwrap();
        TenantStore::open(&home).unwrap();
    }
}
