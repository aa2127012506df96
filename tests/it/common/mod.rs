//! Helpers shared by the integration tests.

pub mod moto;
pub mod proxy;
pub mod rig;
pub mod run;
pub mod sink;
pub mod topo;
