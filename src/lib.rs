//! failover: disaster-recovery runbooks as code.

pub mod app;
pub mod approval;
pub mod call;
pub mod clock;
pub mod cloud;
pub mod diag;
pub mod engine;
pub mod env;
pub mod health;
pub mod journal;
pub mod lease;
pub mod limits;
pub mod plan;
pub mod ports;
pub mod progress;
pub mod report;
pub mod runbook;
pub mod serve;
pub mod status;
pub mod steps;
pub mod store;
pub mod timefmt;
pub mod tomlx;
pub mod traffic;
pub mod types;
pub mod world;
