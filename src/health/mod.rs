//! Zone and region health: probes, the pure quorum/hysteresis evaluator, and triggers.
//! (Being built: see issue 4.)

pub mod config;
