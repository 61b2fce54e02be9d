//! The wizard's step engine.

pub mod steps;
