//! The sandbox: a simulated Microsoft cloud and MSP portal on 127.0.0.1, over real HTTPS.

pub mod exchange;
pub mod portal;
pub mod token;
