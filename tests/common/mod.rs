//! Helpers shared by the integration tests.

pub mod moto;
pub mod proxy;
pub mod sink;
pub mod topo;
