//! Step kinds. Each has a pure `decide` (observed world -> calls, skips, problems, expected
//! end state) and declares what it must observe (`needs`) and what to wait for (`Await`).
//! Acting and waiting are done by the engine through the ports.

pub mod dns;
pub mod rds;
pub mod traffic;
pub mod wait;

use crate::call::{Call, Decision};
use crate::runbook::bind::{BoundAction, BoundStep, SnapshotTarget};
use crate::types::{ClusterId, InstanceId, RunId};
use crate::world::World;

/// What a step must observe before deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub clusters: Vec<ClusterId>,
    pub instances: Vec<InstanceId>,
    pub cluster_snapshots: Vec<String>,
    pub instance_snapshots: Vec<String>,
    pub hosted_zones: Vec<String>,
    /// Route 53 changes (by id) whose status to read.
    pub changes: Vec<String>,
}

impl Needs {
    pub fn merge(&mut self, o: Needs) {
        self.clusters.extend(o.clusters);
        self.instances.extend(o.instances);
        self.cluster_snapshots.extend(o.cluster_snapshots);
        self.instance_snapshots.extend(o.instance_snapshots);
        self.hosted_zones.extend(o.hosted_zones);
        self.changes.extend(o.changes);
        self.dedup();
    }
    /// Each resource once, first mention first.
    pub fn dedup(&mut self) {
        fn once<T: PartialEq + Clone>(v: &mut Vec<T>) {
            let mut seen: Vec<T> = Vec::with_capacity(v.len());
            v.retain(|x| {
                let new = !seen.contains(x);
                if new {
                    seen.push(x.clone());
                }
                new
            });
        }
        once(&mut self.clusters);
        once(&mut self.instances);
        once(&mut self.cluster_snapshots);
        once(&mut self.instance_snapshots);
        once(&mut self.hosted_zones);
        once(&mut self.changes);
    }
    pub fn is_empty(&self) -> bool {
        *self == Needs::default()
    }
}

pub fn needs(step: &BoundStep, run_id: &RunId) -> Needs {
    let mut n = Needs::default();
    match &step.action {
        BoundAction::FailoverCluster { clusters, .. } => n.clusters = clusters.clone(),
        BoundAction::FailoverInstance { instances, .. } => n.instances = instances.clone(),
        BoundAction::Snapshot { targets, .. } => {
            for t in targets {
                match t {
                    SnapshotTarget::Cluster { id } => {
                        n.clusters.push(id.clone());
                        n.cluster_snapshots
                            .push(rds::snapshot_id(run_id, id.as_str()));
                    }
                    SnapshotTarget::Instance { id } => {
                        n.instances.push(id.clone());
                        n.instance_snapshots
                            .push(rds::snapshot_id(run_id, id.as_str()));
                    }
                }
            }
        }
        BoundAction::DnsUpdate { hosted_zone, .. } => n.hosted_zones = vec![hosted_zone.clone()],
        BoundAction::RestoreRecords { hosted_zone_id, .. } => {
            n.hosted_zones = vec![hosted_zone_id.clone()]
        }
        BoundAction::Http { .. } | BoundAction::Approval { .. } | BoundAction::Wait { .. } => {}
        BoundAction::TrafficShed { ladder, .. }
        | BoundAction::TrafficRestore { ladder }
        | BoundAction::TrafficRevert { ladder, .. } => n = traffic::needs(ladder),
        BoundAction::HealthAssert { .. } => {}
    }
    n
}

/// The one decision function used by dry runs and live runs alike.
pub fn decide(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
    match &step.action {
        BoundAction::FailoverCluster {
            clusters,
            evacuate,
            healthy,
            wait,
            ..
        } => rds::decide_failover_cluster(clusters, evacuate, healthy, *wait, world),
        BoundAction::FailoverInstance {
            instances,
            evacuate,
            wait,
            ..
        } => rds::decide_failover_instance(instances, evacuate, *wait, world),
        BoundAction::Snapshot { targets, wait } => {
            rds::decide_snapshot(targets, *wait, run_id, world)
        }
        BoundAction::DnsUpdate {
            hosted_zone,
            records,
            evacuate,
            healthy,
            weights,
            wait,
            ..
        } => dns::decide_dns_update(
            &step.id,
            run_id,
            hosted_zone,
            records,
            evacuate,
            healthy,
            weights,
            *wait,
            world,
        ),
        BoundAction::Http {
            request,
            expect_status,
        } => Decision {
            calls: vec![Call::Http {
                request: request.clone(),
                expect_status: expect_status.clone(),
            }],
            expected: vec![format!(
                "{} {} answered with {}",
                request.method,
                request.url,
                if expect_status.is_empty() {
                    "2xx".to_string()
                } else {
                    format!("{expect_status:?}")
                }
            )],
            ..Default::default()
        },
        BoundAction::Approval { message, approvers } => Decision {
            effects: vec![format!(
                "pause until approved ({}): {message}",
                if approvers.is_empty() {
                    "anyone but the initiator".to_string()
                } else {
                    format!("one of {}", approvers.join(", "))
                }
            )],
            ..Default::default()
        },
        BoundAction::RestoreRecords {
            hosted_zone_id,
            restore,
            force,
        } => dns::decide_restore(run_id, hosted_zone_id, restore, *force, world),
        BoundAction::TrafficShed { ladder, max_tier } => {
            traffic::decide_shed(&step.id, run_id, ladder, *max_tier, world)
        }
        BoundAction::HealthAssert {
            zones,
            expect,
            rounds,
        } => Decision {
            effects: vec![format!(
                "probe zone health ({} round(s)) and require {}",
                rounds
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "enough".into()),
                zones
                    .iter()
                    .map(|z| format!("{z} {expect}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            ..Default::default()
        },
        BoundAction::TrafficRestore { ladder } => {
            traffic::decide_restore(&step.id, run_id, ladder, world)
        }
        BoundAction::TrafficRevert { ladder, tiers } => {
            traffic::decide_revert(&step.id, run_id, ladder, tiers, world)
        }
        BoundAction::Wait { duration } => Decision {
            effects: vec![format!("wait {}", humantime::format_duration(*duration))],
            ..Default::default()
        },
    }
}
