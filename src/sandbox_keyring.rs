//! The keyring of a lasting sandbox (`--sandbox --home DIR`): a file, `DIR/sandbox/keyring.json`
//! (mode 0600), so that `tenant add`, then `ual retry`, `secret rotate` and `tenant remove` in
//! later runs find the sign-ins and secrets the earlier ones kept, as they would in the OS
//! keyring. Only the sandbox's simulated credentials ever reach it: a `--sandbox` run talks to
//! nothing but the simulated cloud, and never uses the technician's real keyring.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::secrets::{SecretError, SecretStore, SecretText};

pub struct SandboxKeyring {
    path: PathBuf,
    lock: Mutex<()>,
}

impl std::fmt::Debug for SandboxKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SandboxKeyring({})", self.path.display())
    }
}

impl SandboxKeyring {
    pub fn new(path: PathBuf) -> SandboxKeyring {
        SandboxKeyring {
            path,
            lock: Mutex::new(()),
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| SecretError::Failed(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(SecretError::Failed(e.to_string())),
        }
    }

    /// Whole file, replaced in one rename, private to the user.
    fn write(&self, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let fail = |e: std::io::Error| SecretError::Failed(e.to_string());
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(all).map_err(|e| SecretError::Failed(e.to_string()))?;
        {
            use std::io::Write;
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            let mut f = o.open(&tmp).map_err(fail)?;
            f.write_all(&text).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }
}

impl SecretStore for SandboxKeyring {
    fn get(&self, account: &str) -> Result<Option<SecretText>, SecretError> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.remove(account).map(SecretText::new))
    }

    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        all.insert(account.to_string(), value.to_string());
        self.write(&all)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.read()?;
        if all.remove(account).is_some() {
            self.write(&all)?;
        }
        Ok(())
    }

    fn is_persistent(&self) -> bool {
        true
    }
}
