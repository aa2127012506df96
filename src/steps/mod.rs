//! Step kinds. Each has a pure `decide` (observed world -> calls, skips, problems, expected
//! end state) and declares what it must observe (`needs`) and what to wait for (`Await`).
//! Acting and waiting are done by the engine through the ports.

pub mod arc;
pub mod dns;
pub mod dns_region;
pub mod global;
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
            // Whether a source is available is all a snapshot asks of it.
            n.without_members = true;
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
        BoundAction::DnsUpdate {
            hosted_zone,
            dep_clusters,
            dep_instances,
            ..
        } => {
            n.hosted_zones = vec![hosted_zone.clone()];
            n.clusters = dep_clusters.clone();
            n.instances = dep_instances.clone();
        }
        BoundAction::RestoreRecords { hosted_zone_id, .. } => {
            n.hosted_zones = vec![hosted_zone_id.clone()]
        }
        BoundAction::Http { .. } | BoundAction::Approval { .. } | BoundAction::Wait { .. } => {}
        BoundAction::TrafficShed { ladder, .. }
        | BoundAction::TrafficRestore { ladder }
        | BoundAction::TrafficRevert { ladder, .. } => n = traffic::needs(ladder),
        BoundAction::HealthAssert { .. } => {}
        BoundAction::ZonalShift { resources, .. }
        | BoundAction::CancelZonalShift { resources, .. } => n.zonal_resources = resources.clone(),
        BoundAction::GlobalMove(m) => {
            if let Some(r) = m.target_region() {
                n.global_clusters = m
                    .global_clusters
                    .iter()
                    .map(|g| (r.clone(), g.clone()))
                    .collect();
            }
        }
    }
    n
}

/// The one decision function used by dry runs and live runs alike: what the step's action
/// decides against `world`; a call that may already have been made (the journal says so, see
/// `World::in_doubt`) is held back until its effect shows or its grace passes; a change to
/// the step's hosted zone made earlier and still PENDING is waited for.
pub fn decide(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
    let mut d = decide_action(step, world, run_id);
    hold_back_in_doubt(&mut d, world);
    refuse_blind_repeats(&mut d, world, |c| in_doubt(world, c, true).cloned());
    if d.waiting.is_empty() {
        // While records still wait for their databases, changes made are not waited for:
        // the last pass (nothing left waiting) waits for every one still PENDING.
        await_earlier_changes(step, world, &mut d);
    }
    d
}

/// A reboot with failover whose earlier call is in doubt past its grace, on an instance whose
/// standby zone the peer does not report: whether the first one happened cannot be told, and a
/// second one swaps the primary back. It is not made again; the step says what to check.
fn refuse_blind_repeats(
    d: &mut Decision,
    world: &World,
    expired: impl Fn(&crate::call::Call) -> Option<crate::world::InDoubtCall>,
) {
    let mut problems = vec![];
    d.calls.retain(|c| {
        let crate::call::Call::RebootDbInstance { instance, .. } = c else {
            return true;
        };
        let Some(x) = expired(c) else { return true };
        let blind = world
            .instances
            .get(instance)
            .is_none_or(|i| i.secondary_zone.is_none());
        if blind {
            problems.push(format!(
                "instance `{instance}`: a RebootDBInstance with failover may have been made at {} (run {}, intent #{}: {}) and the peer does not report the standby zone, so whether it moved cannot be told; a second one would swap the primary back. Check the instance in the console; this step does not reboot it again",
                crate::timefmt::format_ts(x.at_ms),
                x.run_id,
                x.seq,
                x.why
            ));
        }
        !blind
    });
    d.awaits.retain(|a| match a {
        crate::call::Await::InstanceOutside { instance, .. } => !problems
            .iter()
            .any(|p| p.starts_with(&format!("instance `{instance}`:"))),
        _ => true,
    });
    d.problems.extend(problems);
}

/// A DNS step waits for the changes to its hosted zone that an earlier run, this run before
/// it was resumed, or its own earlier passes made within the journal's horizon, unless they
/// are known INSYNC, even when it has nothing left to change.
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
    // One line per state, however many changes: a step over thousands of records makes
    // dozens of batches.
    let (mut pending, mut unread) = (vec![], vec![]);
    for (zid, change) in &world.recent_changes {
        if zid != &zone.id {
            continue;
        }
        // Its status is usually not read yet: the wait reads it (in order, oldest first).
        match world.changes.get(change) {
            Some(crate::cloud::ChangeStatus::Insync) => continue,
            Some(crate::cloud::ChangeStatus::Pending) => pending.push(change.as_str()),
            None => unread.push(change.as_str()),
        }
        d.awaits.push(crate::call::Await::ChangeSettled {
            change_id: change.clone(),
        });
    }
    let states = [
        (pending, "is still PENDING", "are still PENDING"),
        (unread, "may still be PENDING", "may still be PENDING"),
    ];
    for (changes, one, several) in states {
        let (n, ids) = (changes.len(), crate::cloud::describe_ids(&changes));
        match n {
            0 => {}
            1 => d.skips.push(format!(
                "an earlier change {ids} to hosted zone {} {one}: waiting for it to be INSYNC",
                zone.name
            )),
            _ => d.skips.push(format!(
                "{n} earlier changes to hosted zone {} ({ids}) {several}: waiting for them to be INSYNC",
                zone.name
            )),
        }
    }
}

/// A `dns.update` that evacuates: the records whose databases have moved (`records_after`).
fn decide_dns(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
    let BoundAction::DnsUpdate {
        hosted_zone,
        records,
        evacuate,
        healthy,
        weights,
        wait,
        records_after,
        ..
    } = &step.action
    else {
        return Decision::default();
    };
    let mut skips = Decision::default();
    let records = dns_region::zone_records(records, &mut skips);
    let split = dns::ready_records(&records, records_after, evacuate, world);
    let mut d = dns::decide_dns_update(
        &step.id,
        run_id,
        hosted_zone,
        &split.ready,
        evacuate,
        healthy,
        weights,
        *wait,
        world,
    );
    split.add_to(&mut d);
    d.skips.extend(skips.skips);
    d
}

fn decide_action(step: &BoundStep, world: &World, run_id: &RunId) -> Decision {
    match &step.action {
        BoundAction::FailoverCluster {
            clusters,
            healthy,
            wait,
            return_to: Some(z),
            ..
        } => rds::decide_return_clusters(clusters, z, healthy, *wait, world),
        BoundAction::FailoverInstance {
            instances,
            wait,
            return_to: Some(z),
            zones,
            ..
        } => rds::decide_return_instances(instances, z, zones, *wait, world),
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
            wait,
            region: Some(m),
            ..
        } => dns_region::decide(&step.id, run_id, hosted_zone, records, m, *wait, world),
        BoundAction::DnsUpdate {
            hosted_zone,
            records,
            healthy,
            wait,
            return_to: Some(z),
            ..
        } => {
            let mut skips = Decision::default();
            let records = dns_region::zone_records(records, &mut skips);
            let mut d = dns::decide_dns_return(
                &step.id,
                run_id,
                hosted_zone,
                &records,
                z,
                healthy,
                *wait,
                world,
            );
            d.skips.extend(skips.skips);
            d
        }
        BoundAction::DnsUpdate { .. } => decide_dns(step, world, run_id),
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
        BoundAction::ZonalShift { .. } | BoundAction::CancelZonalShift { .. } => {
            arc::decide(&step.action, world)
        }
        BoundAction::GlobalMove(m) => global::decide(m, world),
    }
}

/// The failover a graceful switchover escalates to (see `global::decide_escalation`), with a
/// failover that may already have been made held back as `decide` holds calls back.
pub fn decide_escalation(step: &BoundStep, world: &World) -> Decision {
    let BoundAction::GlobalMove(m) = &step.action else {
        return Decision::default();
    };
    let mut d = global::decide_escalation(m, world);
    hold_back_in_doubt(&mut d, world);
    d
}

/// The journal's record of a call like `c` that may already have been made: within its grace
/// (`expired = false`) or past it.
fn in_doubt<'w>(
    world: &'w World,
    c: &crate::call::Call,
    expired: bool,
) -> Option<&'w crate::world::InDoubtCall> {
    let (op, res) = (c.operation(), c.resource());
    world.in_doubt.iter().find(move |x| {
        x.operation == op
            && x.resource == res
            && x.expired == expired
            && x.accepted.as_ref().is_none_or(|a| a == c)
    })
}

/// Hold back the calls that may already have been made, until their effect shows or their
/// grace passes.
fn hold_back_in_doubt(d: &mut Decision, world: &World) {
    d.defer(|c| {
        in_doubt(world, c, false).map(|x| {
            format!(
                "{} on {} may already have been made (run {}, intent #{}: {}); waiting until {} for its effect to show before deciding again",
                x.operation,
                x.resource,
                x.run_id,
                x.seq,
                x.why,
                crate::timefmt::format_ts(x.until_ms)
            )
        })
    });
}
