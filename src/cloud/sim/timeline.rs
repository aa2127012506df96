//! What a simulation records: every API call with its outcome, every fault transition, what
//! the world did on its own (a failover completing, a change going INSYNC), and the engine's
//! progress events, each with its virtual time.

use super::faults::Service;
use crate::cloud::{CloudError, SnapshotKind};
use crate::progress::Progress;
use crate::types::{ClusterId, InstanceId, Zone};
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    /// Virtual milliseconds since the start of the simulation.
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

impl TimelineEntry {
    pub fn at(&self) -> Duration {
        Duration::from_millis(self.at_ms)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPhase {
    Begins,
    Ends,
    /// A flapping zone goes down again.
    FlapDown,
    /// A flapping zone comes back for a while.
    FlapUp,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A fault begins, ends or flaps.
    Fault {
        fault: String,
        phase: FaultPhase,
        text: String,
    },
    /// One API call as the simulated service saw it.
    Api(ApiCall),
    /// The world changed on its own (a failover completed, a snapshot became available) or
    /// the simulator notes something (the plan, an approval).
    World { text: String },
    /// A progress event of the engine.
    Engine { progress: Progress },
}

/// One call to a simulated service.
#[derive(Clone, Debug, Serialize)]
pub struct ApiCall {
    pub service: Service,
    pub operation: String,
    /// Named as the AWS adapter names it in errors (`orders-db (target orders-db-c)`).
    pub resource: String,
    pub mutating: bool,
    pub ok: bool,
    /// HTTP calls: the status the endpoint answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CloudError>,
    /// What else happened (`injected by fail-call`, `took effect, answer lost`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the call did to the world, for the invariants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<Effect>,
    /// Who made the call (a run's id), when several actors share the world.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// The effect of an accepted mutating call (or of a refused repeat), as the invariants need
/// it: where things were when the call came in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    FailoverStarted {
        cluster: ClusterId,
        target: InstanceId,
        writer_zone_before: Zone,
        target_zone: Zone,
    },
    RebootStarted {
        instance: InstanceId,
        primary_zone_before: Zone,
    },
    SnapshotStarted {
        kind: SnapshotKind,
        id: String,
        source: String,
    },
    /// A create for a snapshot id that already exists: the same intent done twice.
    SnapshotAlreadyExists {
        kind: SnapshotKind,
        id: String,
        source: String,
    },
    RecordsChanged {
        hosted_zone: String,
        change_id: String,
        /// Record sets the change modified.
        changed: Vec<String>,
        /// Record sets the change left as they were (already had that value).
        unchanged: Vec<String>,
    },
}
