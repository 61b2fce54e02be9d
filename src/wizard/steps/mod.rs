//! One module per wizard step.

pub mod exchange;
