//! The ports a run uses, bundled: the engine, the simulator and the wiring all speak of one
//! `Ports`. Only traits live behind it; which adapters fill it is decided by the application
//! layer (AWS, a local peer, or the simulator).

use crate::cloud::{
    CallMeter, Clock, Databases, Dns, GlobalDatabases, HttpClient, Metrics, ZonalShifts,
};
use crate::health::HealthSource;
use std::sync::Arc;

/// The ports a run uses.
#[derive(Clone)]
pub struct Ports {
    pub db: Arc<dyn Databases>,
    pub dns: Arc<dyn Dns>,
    /// ARC zonal shift (`arc.*` steps).
    pub arc: Arc<dyn ZonalShifts>,
    /// Aurora global databases, each call on a named region's endpoint; `None` where the
    /// environment spans one region only (a step that needs it says so).
    pub global: Option<Arc<dyn GlobalDatabases>>,
    /// CloudWatch metrics read at a promotion (replication lag); `None`: not read (reports
    /// say the data at risk is unknown).
    pub metrics: Option<Arc<dyn Metrics>>,
    pub http: Arc<dyn HttpClient>,
    pub clock: Arc<dyn Clock>,
    /// The AWS requests made through `db` and `dns` so far (the client-side limiter's count).
    pub meter: Arc<dyn CallMeter>,
    /// Zone health for `health.assert` steps; `None` where the environment has no probes.
    pub health: Option<Arc<dyn HealthSource>>,
}
