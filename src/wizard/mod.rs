//! The wizard: the steps of an onboarding, each knowing nothing of the terminal.
//! (The engine lives on the `graph` branch; this branch only adds `steps::exchange`.)

pub mod steps;
