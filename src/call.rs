//! Calls and decisions as data: what a step decides to do against an observed world.
//!
//! `Call` is one mutating API (or HTTP) call, `Await` a condition to wait for after acting,
//! `Decision` everything one step decides. The pure step functions (`steps`) produce them; the
//! planner (`plan`) lists them for a dry run; the engine journals and performs them. This module
//! sits below all three, so none of them imports another to share these types.

use crate::cloud::{HttpRequest, RecordChange, RecordKey, RecordSet};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region, Zone};
use serde::{Deserialize, Serialize};

/// One mutating call, as data. Read-only calls are not planned: they are observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call")]
pub enum Call {
    FailoverDbCluster {
        cluster: ClusterId,
        target: InstanceId,
        target_zone: Zone,
        from_zone: Zone,
    },
    RebootDbInstance {
        instance: InstanceId,
        force_failover: bool,
        from_zone: Zone,
    },
    CreateDbClusterSnapshot {
        cluster: ClusterId,
        snapshot: String,
    },
    CreateDbSnapshot {
        instance: InstanceId,
        snapshot: String,
    },
    ChangeResourceRecordSets {
        hosted_zone_id: String,
        hosted_zone_name: String,
        comment: String,
        changes: Vec<RecordChange>,
        /// The record sets before the change, for rollback (None: did not exist).
        previous: Vec<(RecordKey, Option<RecordSet>)>,
    },
    Http {
        request: HttpRequest,
        expect_status: Vec<u16>,
    },
    /// SwitchoverGlobalCluster (graceful, no data loss), on `region`'s endpoint: the member
    /// `target_arn` in `region` becomes the primary.
    SwitchoverGlobalCluster {
        global_cluster: GlobalClusterId,
        target_arn: String,
        region: Region,
        from_region: Region,
    },
    /// FailoverGlobalCluster with AllowDataLoss=true (unplanned), on `region`'s endpoint.
    FailoverGlobalCluster {
        global_cluster: GlobalClusterId,
        target_arn: String,
        region: Region,
        from_region: Region,
        /// Why a graceful switchover was escalated to this failover, when it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// ARC StartZonalShift: the resource's traffic leaves `away_from` until the shift expires
    /// or is canceled.
    StartZonalShift {
        /// The managed resource's ARN.
        resource: String,
        away_from: Zone,
        /// `away_from`'s Availability Zone id (`usw2-az1`): ARC speaks zone ids.
        away_from_id: String,
        #[serde(with = "crate::call::secs")]
        expires_in: std::time::Duration,
        /// Carries the run id: a shift whose answer was lost is found again by it.
        comment: String,
    },
    /// ARC CancelZonalShift: the resource's traffic may use `away_from` again.
    CancelZonalShift {
        resource: String,
        zonal_shift_id: String,
        away_from_id: String,
    },
}

/// A duration journaled as whole seconds.
pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// ARC's `expiresIn`: whole minutes (`90m`), or hours (`12h`) or days (`3d`) when exact.
pub fn arc_expires_in(d: std::time::Duration) -> String {
    let m = d.as_secs().div_ceil(60).max(1);
    match m {
        m if m % (24 * 60) == 0 => format!("{}d", m / (24 * 60)),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

impl Call {
    /// The AWS (or HTTP) operation name.
    pub fn operation(&self) -> String {
        match self {
            Call::FailoverDbCluster { .. } => "FailoverDBCluster".into(),
            Call::RebootDbInstance { .. } => "RebootDBInstance".into(),
            Call::CreateDbClusterSnapshot { .. } => "CreateDBClusterSnapshot".into(),
            Call::CreateDbSnapshot { .. } => "CreateDBSnapshot".into(),
            Call::ChangeResourceRecordSets { .. } => "ChangeResourceRecordSets".into(),
            Call::Http { request, .. } => format!("HTTP {}", request.method),
            Call::StartZonalShift { .. } => "StartZonalShift".into(),
            Call::CancelZonalShift { .. } => "CancelZonalShift".into(),
            Call::SwitchoverGlobalCluster { .. } => "SwitchoverGlobalCluster".into(),
            Call::FailoverGlobalCluster { .. } => "FailoverGlobalCluster".into(),
        }
    }

    pub fn resource(&self) -> String {
        match self {
            Call::FailoverDbCluster { cluster, .. } => cluster.to_string(),
            Call::RebootDbInstance { instance, .. } => instance.to_string(),
            Call::CreateDbClusterSnapshot { cluster, .. } => cluster.to_string(),
            Call::CreateDbSnapshot { instance, .. } => instance.to_string(),
            Call::ChangeResourceRecordSets {
                hosted_zone_name, ..
            } => hosted_zone_name.clone(),
            Call::Http { request, .. } => request.url.split('?').next().unwrap_or("").to_string(),
            Call::StartZonalShift { resource, .. } | Call::CancelZonalShift { resource, .. } => {
                resource.clone()
            }
            Call::SwitchoverGlobalCluster { global_cluster, .. }
            | Call::FailoverGlobalCluster { global_cluster, .. } => global_cluster.to_string(),
        }
    }

    /// One line with the parameters that matter, for plans and timelines.
    pub fn describe(&self) -> String {
        match self {
            Call::FailoverDbCluster { cluster, target, target_zone, from_zone } => format!(
                "FailoverDBCluster DBClusterIdentifier={cluster} TargetDBInstanceIdentifier={target}  (writer {from_zone} -> {target_zone})"
            ),
            Call::RebootDbInstance { instance, from_zone, .. } => {
                format!("RebootDBInstance DBInstanceIdentifier={instance} ForceFailover=true  (primary leaves {from_zone})")
            }
            Call::CreateDbClusterSnapshot { cluster, snapshot } => {
                format!("CreateDBClusterSnapshot DBClusterIdentifier={cluster} DBClusterSnapshotIdentifier={snapshot}")
            }
            Call::CreateDbSnapshot { instance, snapshot } => {
                format!("CreateDBSnapshot DBInstanceIdentifier={instance} DBSnapshotIdentifier={snapshot}")
            }
            Call::ChangeResourceRecordSets { hosted_zone_id, hosted_zone_name, changes, .. } => {
                let mut s = format!("ChangeResourceRecordSets HostedZoneId={hosted_zone_id} ({hosted_zone_name}) {} change(s):", changes.len());
                for c in changes {
                    s.push_str(&format!("\n      {} {}", c.action, describe_record(&c.record)));
                }
                s
            }
            Call::Http { request, expect_status } => {
                let exp = if expect_status.is_empty() { "2xx".to_string() } else { expect_status.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("|") };
                format!("HTTP {} {} (expect {exp})", request.method, request.url)
            }
            Call::StartZonalShift { resource, away_from, away_from_id, expires_in, comment } => format!(
                "StartZonalShift ResourceIdentifier={resource} AwayFrom={away_from_id} ExpiresIn={} Comment=\"{comment}\"  (traffic leaves {away_from})",
                arc_expires_in(*expires_in)
            ),
            Call::CancelZonalShift { resource, zonal_shift_id, away_from_id } => format!(
                "CancelZonalShift ZonalShiftId={zonal_shift_id}  ({resource} may use {away_from_id} again)"
            ),
            Call::SwitchoverGlobalCluster { global_cluster, target_arn, region, from_region } => format!(
                "SwitchoverGlobalCluster GlobalClusterIdentifier={global_cluster} TargetDbClusterIdentifier={target_arn} on the {region} endpoint  (writer {from_region} -> {region}, no data loss)"
            ),
            Call::FailoverGlobalCluster { global_cluster, target_arn, region, from_region, why } => {
                let mut s = format!(
                    "FailoverGlobalCluster GlobalClusterIdentifier={global_cluster} TargetDbClusterIdentifier={target_arn} AllowDataLoss=true on the {region} endpoint  (writer {from_region} -> {region}, writes not yet replicated are lost)"
                );
                if let Some(w) = why {
                    s.push_str(&format!("\n      {w}"));
                }
                s
            }
        }
    }
}

pub fn describe_record(r: &RecordSet) -> String {
    let mut s = format!("{} {}", r.name, r.rtype);
    if let Some(id) = &r.set_identifier {
        s.push_str(&format!(" [{id}]"));
    }
    if let Some(w) = r.weight {
        s.push_str(&format!(" weight={w}"));
    }
    if let Some(p) = &r.routing {
        s.push_str(&format!(" {}", p.to_string().replacen(' ', "=", 1)));
    }
    if let Some(h) = &r.health_check_id {
        s.push_str(&format!(" health_check={h}"));
    }
    if let Some(t) = r.ttl {
        s.push_str(&format!(" ttl={t}"));
    }
    if let Some(a) = &r.alias {
        s.push_str(&format!(" alias={}", a.dns_name));
    } else {
        s.push_str(&format!(" -> {}", r.values.join(", ")));
    }
    s
}

/// What one step decides against one `World`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Mutating calls, in order.
    pub calls: Vec<Call>,
    /// Conditions to wait for after the calls (or for work already under way).
    pub awaits: Vec<Await>,
    /// What is already as wanted, and why nothing is done for it.
    pub skips: Vec<String>,
    /// Preconditions that fail: the step cannot run. Each says what to do.
    pub problems: Vec<String>,
    /// The state the step should leave behind.
    pub expected: Vec<String>,
    /// Non-API effects: "pause for approval", "sleep 30s".
    pub effects: Vec<String>,
    /// Calls made only if a condition holds when the step runs (a closed loop's "if the signal
    /// is still bad"), in order. A dry run lists them; they are not counted as planned calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contingent: Vec<Contingent>,
    /// Calls held back because the same call may already have been made (see [`Deferred`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Deferred>,
    /// What the step waits for before it can act on the rest (a record whose database has
    /// not moved yet): the step observes and decides again after a poll interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
}

impl Decision {
    /// Hold back the calls `defer` picks (with why), with the waits for their effect; the
    /// `ChangeInsync` waits of the calls that stay are renumbered.
    pub fn defer(&mut self, mut defer: impl FnMut(&Call) -> Option<String>) {
        let mut kept = vec![];
        let mut new_index: Vec<Option<usize>> = vec![];
        for call in std::mem::take(&mut self.calls) {
            match defer(&call) {
                Some(why) => {
                    new_index.push(None);
                    self.awaits.retain(|a| !a.is_for(&call));
                    self.deferred.push(Deferred { call, why });
                }
                None => {
                    new_index.push(Some(kept.len()));
                    kept.push(call);
                }
            }
        }
        self.calls = kept;
        self.awaits.retain_mut(|a| match a {
            Await::ChangeInsync { call_index } => {
                match new_index.get(*call_index).copied().flatten() {
                    Some(i) => {
                        *call_index = i;
                        true
                    }
                    None => false,
                }
            }
            _ => true,
        });
    }
}

/// Calls a step makes only if a condition holds at the time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contingent {
    /// The condition and what is done, e.g. "if the signal is still bad, shed `crawlers`".
    pub when: String,
    pub calls: Vec<Call>,
}

/// A condition a step waits for after acting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "until", rename_all = "snake_case")]
pub enum Await {
    /// The cluster's writer is outside `evacuate` and the cluster is `available`.
    ClusterWriterOutside {
        cluster: ClusterId,
        evacuate: Vec<Zone>,
        /// The reader being promoted, when this step asked for the failover.
        #[serde(default)]
        target: Option<InstanceId>,
    },
    /// The instance is `available` and its primary is outside `evacuate` (when the peer
    /// reports the standby zone; otherwise only `available` can be checked).
    InstanceOutside {
        instance: InstanceId,
        evacuate: Vec<Zone>,
    },
    SnapshotAvailable {
        kind: crate::cloud::SnapshotKind,
        id: String,
    },
    /// The change made by the call at this index of the step's calls is INSYNC.
    ChangeInsync { call_index: usize },
    /// A change made earlier (by this run before it was resumed, or by another run) that was
    /// still PENDING is INSYNC.
    ChangeSettled { change_id: String },
    /// The global cluster's writer is in `region` and it takes writes (status `available`, no
    /// switchover or failover under way); observed on `region`'s endpoint.
    GlobalWriterIn {
        global_cluster: GlobalClusterId,
        region: Region,
    },
}

impl Await {
    /// Whether this waits for the effect of `c` (so it is dropped when `c` fails or is
    /// deferred). A change's await is tied to its call by index, see `Decision::defer`.
    pub fn is_for(&self, c: &Call) -> bool {
        match (self, c) {
            (
                Await::ClusterWriterOutside { cluster, .. },
                Call::FailoverDbCluster { cluster: c2, .. },
            ) => cluster == c2,
            (
                Await::InstanceOutside { instance, .. },
                Call::RebootDbInstance { instance: i2, .. },
            ) => instance == i2,
            (
                Await::SnapshotAvailable { id, .. },
                Call::CreateDbClusterSnapshot { snapshot, .. }
                | Call::CreateDbSnapshot { snapshot, .. },
            ) => id == snapshot,
            (
                Await::GlobalWriterIn { global_cluster, .. },
                Call::SwitchoverGlobalCluster {
                    global_cluster: g2, ..
                }
                | Call::FailoverGlobalCluster {
                    global_cluster: g2, ..
                },
            ) => global_cluster == g2,
            _ => false,
        }
    }
}

/// A call a step would make but holds back: the same call to the same resource may already
/// have been made (its answer was lost, or its process died), and reads can lag behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    pub call: Call,
    /// Which earlier call, and until when the step waits for its effect to show.
    pub why: String,
}

/// How long a call that may have been made is given to show its effect before the same call
/// is sent again: long enough for eventually consistent reads (a second or two on RDS) and for
/// the operation to become visible (`failing-over`, `rebooting`, a snapshot `creating`, a
/// record set changed). `None`: the call is not held back (HTTP calls).
pub fn in_doubt_grace(operation: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    match operation {
        "FailoverDBCluster" | "RebootDBInstance" => Some(Duration::from_secs(60)),
        "CreateDBClusterSnapshot" | "CreateDBSnapshot" => Some(Duration::from_secs(60)),
        "ChangeResourceRecordSets" => Some(Duration::from_secs(15)),
        // A started shift shows in GetManagedResource at once (found again by the run id in
        // its comment); a cancel shows as the shift no longer active.
        "StartZonalShift" | "CancelZonalShift" => Some(Duration::from_secs(15)),
        // A switchover or failover shows as the global cluster's FailoverState once accepted.
        "SwitchoverGlobalCluster" | "FailoverGlobalCluster" => Some(Duration::from_secs(60)),
        _ => None,
    }
}
