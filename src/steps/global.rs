//! Pure decisions for `rds.switchover_global` and `rds.failover_global`: move the writer of
//! Aurora global databases to the recovery region, and, when a graceful switchover has not
//! completed in time, the ungraceful failover it escalates to.

use crate::call::{Await, Call, Contingent, Decision};
use crate::cloud::GlobalClusterState;
use crate::runbook::bind::{EscalateMode, GlobalMove};
use crate::types::{GlobalClusterId, Region};
use crate::world::World;

/// The region a global cluster's writer moves to (see `GlobalMove::target_region`).
pub fn target_region(m: &GlobalMove) -> Option<Region> {
    m.target_region()
}

/// For each global cluster whose writer is not in the target region: a switchover (graceful)
/// or a failover with data loss allowed (`unplanned`), called on the target region's endpoint,
/// then a wait until the new primary takes writes. With `escalate`, the failover a switchover
/// escalates to is listed as contingent.
pub fn decide(m: &GlobalMove, world: &World) -> Decision {
    let mut d = Decision::default();
    let Some(target) = target_region(m) else {
        d.problems.push("no region to move the writer to: the environment lists no region besides the evacuated one; add it to `regions`".into());
        return d;
    };
    for id in &m.global_clusters {
        decide_one(m, id, &target, world, &mut d);
    }
    d
}

fn decide_one(m: &GlobalMove, id: &GlobalClusterId, target: &Region, world: &World, d: &mut Decision) {
    let Some(g) = world.global_clusters.get(id) else {
        d.problems.push(format!(
            "global cluster `{id}` was not found (DescribeGlobalClusters in {target} returned nothing for it); check the group in the environment file and the account"
        ));
        return;
    };
    let Some(writer) = g.writer() else {
        d.problems.push(format!("global cluster `{id}` has no writer (status `{}`); check it in the console, then run again", g.status));
        return;
    };
    let wait_for = Await::GlobalWriterIn {
        global_cluster: id.clone(),
        region: target.clone(),
    };
    if let Some(f) = &g.failover {
        if f.to_region.as_ref() == Some(target) {
            let what = if f.data_loss_allowed { "failover" } else { "switchover" };
            d.skips.push(format!("global cluster `{id}`: a {what} to {target} is already under way ({}): waiting for it instead of starting another", f.status));
            if m.wait {
                d.awaits.push(wait_for);
            }
            d.expected.push(format!("global cluster `{id}`: writer in {target}"));
            return;
        }
        d.problems.push(format!("global cluster `{id}`: a switchover or failover to {} is under way ({}); wait for it to end, then run again", f.to_region.as_ref().map(|r| r.as_str()).unwrap_or("another region"), f.status));
        return;
    }
    if &writer.region == target {
        d.skips.push(format!("global cluster `{id}`: writer already in {target}: nothing to do"));
        d.expected.push(format!("global cluster `{id}`: writer in {target}"));
        return;
    }
    if m.to_region.is_none() && m.evacuate_region.as_ref() != Some(&writer.region) {
        d.skips.push(format!("global cluster `{id}`: writer in {}, outside the evacuated region: nothing to do", writer.region));
        d.expected.push(format!("global cluster `{id}`: writer in {}", writer.region));
        return;
    }
    let Some(secondary) = g.member_in(target) else {
        d.problems.push(format!(
            "global cluster `{id}` has no member cluster in {target} to promote (members in: {}); add a secondary cluster there (aws rds create-db-cluster --global-cluster-identifier {id} --region {target}), then run again",
            members_regions(g)
        ));
        return;
    };
    if !g.status.is_available() {
        d.problems.push(format!("global cluster `{id}` is `{}`, not `available`: RDS will refuse a switchover; wait for it to settle or check it in the console", g.status));
        return;
    }
    let from = writer.region.clone();
    if m.unplanned {
        d.calls.push(Call::FailoverGlobalCluster {
            global_cluster: id.clone(),
            target_arn: secondary.cluster_arn.clone(),
            region: target.clone(),
            from_region: from,
            why: None,
        });
    } else {
        d.calls.push(Call::SwitchoverGlobalCluster {
            global_cluster: id.clone(),
            target_arn: secondary.cluster_arn.clone(),
            region: target.clone(),
            from_region: from.clone(),
        });
        if let Some(e) = &m.escalate {
            let after = humantime::format_duration(e.after);
            let how = match e.mode {
                EscalateMode::Auto => "fail over at once".to_string(),
                EscalateMode::Approval => "ask for approval, then fail over".to_string(),
            };
            d.contingent.push(Contingent {
                when: format!("if the switchover of `{id}` has not completed within {after} ({from} too impaired to cooperate): {how}, losing the writes not yet replicated"),
                calls: vec![escalation_call(id, &secondary.cluster_arn, target, &from, e.after)],
            });
        }
    }
    if m.wait {
        d.awaits.push(wait_for);
    }
    d.expected.push(format!("global cluster `{id}`: writer in {target}, status available"));
}

fn members_regions(g: &GlobalClusterState) -> String {
    let v: Vec<&str> = g.members.iter().map(|m| m.region.as_str()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn escalation_call(
    id: &GlobalClusterId,
    arn: &str,
    target: &Region,
    from: &Region,
    after: std::time::Duration,
) -> Call {
    Call::FailoverGlobalCluster {
        global_cluster: id.clone(),
        target_arn: arn.to_string(),
        region: target.clone(),
        from_region: from.clone(),
        why: Some(format!(
            "escalated: the switchover from {from} to {target} did not complete within {}",
            humantime::format_duration(after)
        )),
    }
}

/// After a switchover has not completed within `escalate_after`: for each global cluster whose
/// writer is still not in the target region, the ungraceful failover (AllowDataLoss=true);
/// one whose writer got there meanwhile is skipped, one already failing over is waited for.
pub fn decide_escalation(m: &GlobalMove, world: &World) -> Decision {
    let mut d = Decision::default();
    let (Some(target), Some(e)) = (target_region(m), &m.escalate) else {
        return d;
    };
    for id in &m.global_clusters {
        let Some(g) = world.global_clusters.get(id) else {
            d.problems.push(format!("global cluster `{id}` was not found (DescribeGlobalClusters in {target} returned nothing for it)"));
            continue;
        };
        let wait_for = Await::GlobalWriterIn {
            global_cluster: id.clone(),
            region: target.clone(),
        };
        if g.writable_in(&target) {
            d.skips.push(format!("global cluster `{id}`: the switchover completed, writer in {target}: no failover needed"));
            continue;
        }
        if g.failover.as_ref().is_some_and(|f| f.data_loss_allowed) {
            d.skips.push(format!("global cluster `{id}`: a failover is already under way: waiting for it"));
            d.awaits.push(wait_for);
            continue;
        }
        if g.writer().is_some_and(|w| w.region == target) {
            // The writer moved; the switchover is finishing: wait for it to settle.
            d.skips.push(format!("global cluster `{id}`: writer already in {target}, settling: waiting for it"));
            d.awaits.push(wait_for);
            continue;
        }
        let Some(secondary) = g.member_in(&target) else {
            d.problems.push(format!("global cluster `{id}` has no member cluster in {target} to fail over to"));
            continue;
        };
        let from = g
            .writer()
            .map(|w| w.region.clone())
            .or_else(|| m.evacuate_region.clone())
            .unwrap_or_else(|| Region::new("?"));
        d.calls.push(escalation_call(id, &secondary.cluster_arn, &target, &from, e.after));
        d.awaits.push(wait_for);
        d.expected.push(format!("global cluster `{id}`: writer in {target} (writes not yet replicated from {from} are lost)"));
    }
    d
}
