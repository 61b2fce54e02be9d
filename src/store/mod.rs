//! The tenant store: `tenants.json` in the home directory.

pub mod model;

pub use model::*;
