//! The wizard's steps. Each one:
//! - `assess`: from the record and the survey alone (no requests), is it done and does what
//!   it made still exist? If not, what will it change in the tenant (shown in the plan)?
//! - `run`: make it so, idempotently: anything already there is found and kept, never made twice.
//!
//! Step 1 (Exchange audit logging) is written by the Exchange bridge as `exchange.rs` here and
//! handed to the engine as `Wizard::exchange`; it implements the same trait.

pub mod app;
pub mod consent;
pub mod exchange;
pub mod portal;
pub mod secret;
pub mod verify;

use std::sync::Arc;

use crate::microsoft::graph::directory::{DirectoryApi, Survey};
use crate::secrets::SecretStore;
use crate::store::{StepId, TenantRecord};

use super::verify::CredentialVerifier;
use super::{Progress, Settings, WizardError};

/// Everything a step may use. Steps change `record` (the engine persists it after each step)
/// and keep `survey` current with what they create, for the steps after them.
pub struct StepCx<'a> {
    pub record: &'a mut TenantRecord,
    pub survey: &'a mut Survey,
    pub dir: &'a dyn DirectoryApi,
    pub verifier: &'a dyn CredentialVerifier,
    pub secrets: &'a Arc<dyn SecretStore>,
    pub progress: &'a dyn Progress,
    pub settings: &'a Settings,
    /// The client secret's value is in the secret store.
    pub secret_present: bool,
    /// An earlier step of this run changes (or changed) the tenant.
    pub earlier_changed: bool,
    /// Counts requests; steps that send several at once say so (`meter.concurrently()`).
    pub meter: Arc<crate::microsoft::graph::meter::RequestMeter>,
}

impl StepCx<'_> {
    /// The secret store call, off the async workers (the keyring blocks).
    pub async fn secret_op<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, crate::secrets::SecretError> + Send + 'static,
    ) -> Result<T, WizardError> {
        let s = self.secrets.clone();
        tokio::task::spawn_blocking(move || f(s.as_ref()))
            .await
            .map_err(|e| {
                WizardError::SecretStore(crate::secrets::SecretError::Failed(e.to_string()))
            })?
            .map_err(WizardError::SecretStore)
    }
}

/// What a step would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Done, and what it made is still there.
    Done,
    /// The changes it will make in the tenant, in words.
    ToDo(Vec<String>),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done; a one-line summary.
    Done(String),
    /// Waiting on Microsoft (not a failure): why, and when to try again.
    Waiting(String),
}

/// A wizard step.
#[async_trait::async_trait]
pub trait Step: Send + Sync {
    fn id(&self) -> StepId;
    fn assess(&self, cx: &StepCx<'_>) -> Assessment;
    /// Called instead of `run` when `assess` found the step done: bring the record in line
    /// with what exists (e.g. after the store was lost and our app was found again). No requests.
    fn record_found(&self, _cx: &mut StepCx<'_>) {}
    /// The MSP portal this step sends to, if it is the portal step: the engine reads what the
    /// portal holds before planning.
    fn portal_api(&self) -> Option<Arc<dyn crate::portal::PortalApi>> {
        None
    }
    async fn run(&self, cx: &mut StepCx<'_>) -> Result<StepOutcome, WizardError>;
}
