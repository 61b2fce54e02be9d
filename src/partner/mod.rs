//! Partner mode (GDAP): one sign-in in the MSP's own tenant onboards every customer reachable
//! through an approved granular delegated admin relationship. See docs/partner.md.
//!
//! The pieces, each owned by one module:
//! - [`PartnerConfig`]: the partner app and the MSP's tenant, recorded by `partner setup` in
//!   `config.json` (no secret: the app is a public client).
//! - `signin`: the partner sign-in (`partner login`), its refresh token in the keyring only,
//!   redeemed at a customer's authority for that customer's tokens.
//! - `customers`: the customers GDAP reaches and the verdict for each (READY, BLOCKED, EXPIRING).
//! - `consent`: the partner app's consent in a customer (Partner Center, or the admin consent
//!   URL).
//! - `batch`: `tenant add --partner`, `--jobs N` customers at once.
//! - [`reach`]: how `ual retry`, `secret rotate` and `tenant remove` reach a recorded tenant
//!   (`via: partner` → the partner sign-in, never the customer's admin).

pub mod batch;
pub mod consent;
pub mod customers;
pub mod reach;
pub mod setup;
pub mod signin;

use uuid::Uuid;

use crate::cloud::Cloud;

/// The partner app's display name in the MSP's tenant (what `partner setup` looks for).
pub const PARTNER_APP_NAME: &str = "hal-onboard partner";

/// What `partner setup` recorded: `config.json`'s `partner` object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerConfig {
    /// The partner app's application (client) ID: a multi-tenant public client.
    pub client_id: String,
    /// The MSP's own tenant (the only tenant `partner login` accepts).
    pub tenant_id: Uuid,
    /// The MSP tenant's domain as given to `partner setup --tenant`.
    pub domain: String,
    #[serde(default)]
    pub cloud: Cloud,
}
