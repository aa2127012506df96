//! Step kinds. Each has a pure `decide` (observed world -> calls, skips, problems, expected
//! end state) and declares what it must observe (`needs`) and what to wait for (`Await`).
//! Acting and waiting are done by the engine through the ports.

pub mod dns;
pub mod local;
pub mod rds;
pub mod traffic;
pub mod wait;

use crate::call::Decision;
use crate::runbook::bind::{BoundAction, BoundStep, SnapshotTarget};
use crate::types::RunId;

use crate::world::{Needs, World};

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
        } => local::decide_http(request, expect_status),
        BoundAction::Approval { message, approvers } => local::decide_approval(message, approvers),
        BoundAction::HealthAssert {
            zones,
            expect,
            rounds,
        } => local::decide_health_assert(zones, expect, *rounds),
        BoundAction::Wait { duration } => local::decide_wait(*duration),
        BoundAction::RestoreRecords {
            hosted_zone_id,
            restore,
            force,
        } => dns::decide_restore(run_id, hosted_zone_id, restore, *force, world),
        BoundAction::TrafficShed { ladder, max_tier } => {
            traffic::decide_shed(&step.id, run_id, ladder, *max_tier, world)
        }
        BoundAction::TrafficRestore { ladder } => {
            traffic::decide_restore(&step.id, run_id, ladder, world)
        }
        BoundAction::TrafficRevert { ladder, tiers } => {
            traffic::decide_revert(&step.id, run_id, ladder, tiers, world)
        }
    }
}
