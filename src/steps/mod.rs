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

/// The one decision function used by dry runs and live runs alike: what the step's action
/// decides against `world`; a call that may already have been made (the journal says so, see
/// `World::in_doubt`) is held back until its effect shows or its grace passes; a change to
/// the step's hosted zone made earlier and still PENDING is waited for.
pub fn decide(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
    let mut d = decide_action(step, world, run_id);
    d.defer(|c| {
        let (op, res) = (c.operation(), c.resource());
        world
            .in_doubt
            .iter()
            .find(|x| x.operation == op && x.resource == res)
            .map(|x| {
                format!(
                    "{op} on {res} may already have been made (run {}, intent #{}: {}); waiting until {} for its effect to show before deciding again",
                    x.run_id,
                    x.seq,
                    x.why,
                    crate::timefmt::format_ts(x.until_ms)
                )
            })
    });
    await_earlier_changes(step, world, &mut d);
    d
}

/// A DNS step waits for a change to its hosted zone that an earlier run (or this run before
/// it was resumed) made and that is still PENDING, even when it has nothing left to change.
fn await_earlier_changes(step: &BoundStep, world: &World, d: &mut Decision) {
    let zone_ref = match &step.action {
        BoundAction::DnsUpdate {
            hosted_zone,
            wait: true,
            ..
        } => hosted_zone,
        BoundAction::RestoreRecords { hosted_zone_id, .. } => hosted_zone_id,
        _ => return,
    };
    let Some(zone) = world.hosted_zones.get(zone_ref) else {
        return;
    };
    for (zid, change) in &world.recent_changes {
        if zid == &zone.id
            && world.changes.get(change) == Some(&crate::cloud::ChangeStatus::Pending)
        {
            d.skips.push(format!(
                "an earlier change {change} to hosted zone {} is still PENDING: waiting for it to be INSYNC",
                zone.name
            ));
            d.awaits.push(crate::call::Await::ChangeSettled {
                change_id: change.clone(),
            });
        }
    }
}

fn decide_action(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
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
        BoundAction::Approval {
            message,
            approvers,
            required,
        } => local::decide_approval(message, approvers, *required),
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
