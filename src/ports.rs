//! The ports a run uses, bundled: the engine, the simulator and the wiring all speak of one
//! `Ports`. Only traits live behind it; which adapters fill it is decided by the application
//! layer (AWS, a local peer, or the simulator).

use crate::cloud::{CallMeter, Clock, Databases, Dns, HttpClient, ZonalShifts};
use crate::health::HealthSource;
use std::sync::Arc;

/// The ports a run uses.
#[derive(Clone)]
pub struct Ports {
    pub db: Arc<dyn Databases>,
    pub dns: Arc<dyn Dns>,
    /// ARC zonal shift (`arc.*` steps).
    pub arc: Arc<dyn ZonalShifts>,
    pub http: Arc<dyn HttpClient>,
    pub clock: Arc<dyn Clock>,
    /// The AWS requests made through `db` and `dns` so far (the client-side limiter's count).
    pub meter: Arc<dyn CallMeter>,
    /// Zone health for `health.assert` steps; `None` where the environment has no probes.
    pub health: Option<Arc<dyn HealthSource>>,
}
