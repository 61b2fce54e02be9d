//! The wizard's steps.

pub mod portal;
