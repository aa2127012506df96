//! failover: disaster-recovery runbooks as code.

pub mod cloud;
pub mod types;
pub mod diag;
pub mod tomlx;
pub mod env;
pub mod runbook;
pub mod plan;
pub mod steps;
pub mod world;
pub mod journal;
pub mod engine;
pub mod report;
pub mod simulate;
pub mod wiring;
pub mod health;
pub mod traffic;
