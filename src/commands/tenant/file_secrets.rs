//! A secret store in a file, for the sandbox only.
//!
//! Tests and the benchmark run on machines without an OS keyring, yet a re-run must find the
//! secret and the refresh token the previous run kept. `HAL_ONBOARD_SECRET_FILE` is honoured
//! only when the sign-in authority is on this machine (127.0.0.1 / localhost: the sandbox), so
//! it can never hold a real tenant's secret. The file is created mode 0600.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use url::Url;

use crate::secrets::{SecretError, SecretStore};

pub const ENV_SECRET_FILE: &str = "HAL_ONBOARD_SECRET_FILE";

#[derive(Debug)]
pub struct FileSecretStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSecretStore {
    /// The file store, if asked for and the authority is local.
    pub fn for_sandbox(login: &Url) -> Option<FileSecretStore> {
        let path = std::env::var_os(ENV_SECRET_FILE)?;
        let local = matches!(
            login.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        );
        local.then(|| FileSecretStore {
            path: PathBuf::from(path),
            lock: Mutex::new(()),
        })
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| SecretError::Failed(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(SecretError::Unavailable(e.to_string())),
        }
    }

    fn write(&self, m: &BTreeMap<String, String>) -> Result<(), SecretError> {
        use std::io::Write;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o
            .open(&self.path)
            .map_err(|e| SecretError::Unavailable(e.to_string()))?;
        f.write_all(&serde_json::to_vec(m).expect("a map serializes"))
            .map_err(|e| SecretError::Failed(e.to_string()))
    }
}

impl SecretStore for FileSecretStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        let _g = self.lock.lock().unwrap();
        Ok(self.read()?.get(account).cloned())
    }
    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap();
        let mut m = self.read()?;
        m.insert(account.into(), value.into());
        self.write(&m)
    }
    fn delete(&self, account: &str) -> Result<(), SecretError> {
        let _g = self.lock.lock().unwrap();
        let mut m = self.read()?;
        if m.remove(account).is_some() {
            self.write(&m)?;
        }
        Ok(())
    }
    fn is_persistent(&self) -> bool {
        true
    }
}
