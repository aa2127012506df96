//! An HTTP endpoint of the simulated world (`[endpoints.NAME]` of a topology): what it
//! answers and which zone serves it. The topology reads them; the traffic side resolves the
//! ladder's `endpoint = "..."` actions against them.

use crate::types::Zone;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct EndpointSpec {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// The zone serving it (an external SaaS has none: only explicit faults reach it).
    pub zone: Option<Zone>,
    /// What it answers with a 200 (e.g. a metrics signal: `{"error_rate": 0.01}`).
    pub body: String,
}
