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

fn decide_one(
    m: &GlobalMove,
    id: &GlobalClusterId,
    target: &Region,
    world: &World,
    d: &mut Decision,
) {
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
            let what = if f.data_loss_allowed {
                "failover"
            } else {
                "switchover"
            };
            d.skips.push(format!("global cluster `{id}`: a {what} to {target} is already under way ({}): waiting for it instead of starting another", f.status));
            if m.wait {
                d.awaits.push(wait_for);
            }
            d.expected
                .push(format!("global cluster `{id}`: writer in {target}"));
            return;
        }
        d.problems.push(format!("global cluster `{id}`: a switchover or failover to {} is under way ({}); wait for it to end, then run again", f.to_region.as_ref().map(|r| r.as_str()).unwrap_or("another region"), f.status));
        return;
    }
    if &writer.region == target {
        d.skips.push(format!(
            "global cluster `{id}`: writer already in {target}: nothing to do"
        ));
        d.expected
            .push(format!("global cluster `{id}`: writer in {target}"));
        return;
    }
    if m.to_region.is_none() && m.evacuate_region.as_ref() != Some(&writer.region) {
        d.skips.push(format!(
            "global cluster `{id}`: writer in {}, outside the evacuated region: nothing to do",
            writer.region
        ));
        d.expected.push(format!(
            "global cluster `{id}`: writer in {}",
            writer.region
        ));
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
    push_move(m, id, &secondary.cluster_arn, target, &from, d);
    if m.wait {
        d.awaits.push(wait_for);
    }
    d.expected.push(format!(
        "global cluster `{id}`: writer in {target}, status available"
    ));
}

/// The switchover (with the failover it may escalate to, as contingent) or the failover.
fn push_move(
    m: &GlobalMove,
    id: &GlobalClusterId,
    arn: &str,
    target: &Region,
    from: &Region,
    d: &mut Decision,
) {
    if m.unplanned {
        d.calls.push(Call::FailoverGlobalCluster {
            global_cluster: id.clone(),
            target_arn: arn.to_string(),
            region: target.clone(),
            from_region: from.clone(),
            why: None,
        });
        return;
    }
    d.calls.push(Call::SwitchoverGlobalCluster {
        global_cluster: id.clone(),
        target_arn: arn.to_string(),
        region: target.clone(),
        from_region: from.clone(),
    });
    if let Some(e) = &m.escalate {
        let after = humantime::format_duration(e.after);
        let how = match e.mode {
            EscalateMode::Auto => "fail over at once",
            EscalateMode::Approval => "ask for approval, then fail over",
        };
        d.contingent.push(Contingent {
            when: format!("if the switchover of `{id}` has not completed within {after} ({from} too impaired to cooperate): {how}, losing the writes not yet replicated"),
            calls: vec![escalation_call(id, arn, target, from, e.after)],
        });
    }
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
        let writer_region = g.writer().map(|w| w.region.clone());
        if m.to_region.is_none() && writer_region.is_some() && writer_region != m.evacuate_region {
            d.skips.push(format!(
                "global cluster `{id}`: writer outside the evacuated region: no failover"
            ));
            continue;
        }
        if g.failover.as_ref().is_some_and(|f| f.data_loss_allowed) {
            d.skips.push(format!(
                "global cluster `{id}`: a failover is already under way: waiting for it"
            ));
            d.awaits.push(wait_for);
            continue;
        }
        if g.writer().is_some_and(|w| w.region == target) {
            // The writer moved; the switchover is finishing: wait for it to settle.
            d.skips.push(format!(
                "global cluster `{id}`: writer already in {target}, settling: waiting for it"
            ));
            d.awaits.push(wait_for);
            continue;
        }
        let Some(secondary) = g.member_in(&target) else {
            d.problems.push(format!(
                "global cluster `{id}` has no member cluster in {target} to fail over to"
            ));
            continue;
        };
        let from = g
            .writer()
            .map(|w| w.region.clone())
            .or_else(|| m.evacuate_region.clone())
            .unwrap_or_else(|| Region::new("?"));
        d.calls.push(escalation_call(
            id,
            &secondary.cluster_arn,
            &target,
            &from,
            e.after,
        ));
        d.awaits.push(wait_for);
        d.expected.push(format!("global cluster `{id}`: writer in {target} (writes not yet replicated from {from} are lost)"));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{DbStatus, GlobalFailoverState, GlobalMember};
    use crate::runbook::bind::Escalation;
    use std::time::Duration;

    const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:orders-west";
    const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:orders-east";

    fn world(writer_east: bool) -> World {
        let mut w = World::default();
        w.global_clusters.insert(
            "orders-global".into(),
            GlobalClusterState {
                id: "orders-global".into(),
                status: DbStatus::Available,
                members: vec![
                    GlobalMember {
                        cluster_arn: WEST.into(),
                        region: "us-west-2".into(),
                        is_writer: !writer_east,
                    },
                    GlobalMember {
                        cluster_arn: EAST.into(),
                        region: "us-east-1".into(),
                        is_writer: writer_east,
                    },
                ],
                failover: None,
            },
        );
        w
    }

    fn step(unplanned: bool, escalate: Option<EscalateMode>) -> GlobalMove {
        GlobalMove {
            group: "orders_global".into(),
            global_clusters: vec!["orders-global".into()],
            to_region: Some("us-east-1".into()),
            evacuate_region: Some("us-west-2".into()),
            regions: vec!["us-west-2".into(), "us-east-1".into()],
            unplanned,
            wait: true,
            escalate: escalate.map(|mode| Escalation {
                after: Duration::from_secs(300),
                mode,
                approvers: vec![],
            }),
        }
    }

    fn switchover() -> Call {
        Call::SwitchoverGlobalCluster {
            global_cluster: "orders-global".into(),
            target_arn: EAST.into(),
            region: "us-east-1".into(),
            from_region: "us-west-2".into(),
        }
    }

    #[test]
    fn a_switchover_goes_to_the_recovery_region_with_the_secondary_as_target() {
        let d = decide(&step(false, None), &world(false));
        assert_eq!(d.calls, vec![switchover()]);
        assert_eq!(
            d.awaits,
            vec![Await::GlobalWriterIn {
                global_cluster: "orders-global".into(),
                region: "us-east-1".into()
            }]
        );
        assert!(d.contingent.is_empty() && d.problems.is_empty());
    }

    #[test]
    fn an_unplanned_move_is_a_failover_allowing_data_loss() {
        let d = decide(&step(true, None), &world(false));
        assert!(
            matches!(&d.calls[..], [Call::FailoverGlobalCluster { region, target_arn, why: None, .. }] if region.as_str() == "us-east-1" && target_arn == EAST),
            "{:?}",
            d.calls
        );
        assert!(d.calls[0]
            .describe()
            .contains("AllowDataLoss=true on the us-east-1 endpoint"));
    }

    #[test]
    fn an_escalating_switchover_lists_the_failover_as_contingent() {
        let d = decide(&step(false, Some(EscalateMode::Approval)), &world(false));
        assert_eq!(d.calls, vec![switchover()]);
        assert_eq!(d.contingent.len(), 1);
        assert!(
            d.contingent[0].when.contains("within 5m"),
            "{}",
            d.contingent[0].when
        );
        assert!(matches!(
            &d.contingent[0].calls[..],
            [Call::FailoverGlobalCluster { why: Some(_), .. }]
        ));
    }

    #[test]
    fn nothing_to_do_when_the_writer_is_already_in_the_recovery_region() {
        let d = decide(&step(false, Some(EscalateMode::Auto)), &world(true));
        assert!(d.calls.is_empty() && d.contingent.is_empty());
        assert!(
            d.skips[0].contains("writer already in us-east-1"),
            "{:?}",
            d.skips
        );
        // Only `evacuate_region`, writer elsewhere: nothing to do either.
        let mut m = step(false, None);
        m.to_region = None;
        m.evacuate_region = Some("us-east-1".into());
        let d = decide(&m, &world(false));
        assert!(d.calls.is_empty() && d.problems.is_empty(), "{d:?}");
    }

    #[test]
    fn an_operation_under_way_is_waited_for_not_repeated() {
        let mut w = world(false);
        let g = w.global_clusters.get_mut(&"orders-global".into()).unwrap();
        g.status = DbStatus::from("switching-over");
        g.failover = Some(GlobalFailoverState {
            status: "switching-over".into(),
            from_region: Some("us-west-2".into()),
            to_region: Some("us-east-1".into()),
            data_loss_allowed: false,
        });
        let d = decide(&step(false, None), &w);
        assert!(d.calls.is_empty());
        assert_eq!(d.awaits.len(), 1);
        // The escalation fails over all the same (the switchover is stuck)...
        let d = decide_escalation(&step(false, Some(EscalateMode::Auto)), &w);
        assert!(
            matches!(&d.calls[..], [Call::FailoverGlobalCluster { .. }]),
            "{d:?}"
        );
        // ...but never a second failover.
        let g = w.global_clusters.get_mut(&"orders-global".into()).unwrap();
        g.failover.as_mut().unwrap().data_loss_allowed = true;
        let d = decide_escalation(&step(false, Some(EscalateMode::Auto)), &w);
        assert!(d.calls.is_empty() && d.awaits.len() == 1, "{d:?}");
    }

    #[test]
    fn no_escalation_for_a_writer_outside_the_evacuated_region() {
        let mut m = step(false, Some(EscalateMode::Auto));
        m.to_region = None;
        m.evacuate_region = Some("us-east-1".into());
        m.regions = vec!["us-east-1".into(), "eu-west-1".into(), "us-west-2".into()];
        // The target is eu-west-1; the writer is in us-west-2, which is not evacuated:
        // nothing moves, nothing escalates.
        let d = decide_escalation(&m, &world(false));
        assert!(d.calls.is_empty(), "{d:?}");
        assert!(
            d.skips[0].contains("outside the evacuated region"),
            "{:?}",
            d.skips
        );
    }

    #[test]
    fn no_escalation_once_the_switchover_completed() {
        let d = decide_escalation(&step(false, Some(EscalateMode::Auto)), &world(true));
        assert!(d.calls.is_empty());
        assert!(
            d.skips[0].contains("the switchover completed"),
            "{:?}",
            d.skips
        );
    }

    #[test]
    fn problems_say_what_to_do() {
        let d = decide(&step(false, None), &World::default());
        assert!(d.problems[0].contains("`orders-global` was not found"));
        let mut w = world(false);
        w.global_clusters
            .get_mut(&"orders-global".into())
            .unwrap()
            .members
            .retain(|m| m.region.as_str() == "us-west-2");
        let d = decide(&step(false, None), &w);
        assert!(
            d.problems[0].contains("no member cluster in us-east-1")
                && d.problems[0].contains("create-db-cluster"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn a_dry_run_predicts_the_writer_in_the_recovery_region() {
        let mut w = world(false);
        let d = decide(&step(false, None), &w);
        w.apply(&d.calls[0]);
        assert!(w.global_clusters[&"orders-global".into()].writable_in(&"us-east-1".into()));
        assert!(decide(&step(false, None), &w).calls.is_empty());
    }
}
