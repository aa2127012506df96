//! Pure decisions for the RDS steps: `rds.failover_cluster`, `rds.failover_instance` and
//! `rds.snapshot`.

use crate::call::Await;
use crate::call::{Call, Decision};
use crate::cloud::{ClusterState, DbStatus, SnapshotKind};
use crate::runbook::bind::SnapshotTarget;
use crate::types::{ClusterId, InstanceId, RunId, Zone};
use crate::world::World;

fn zone_str(z: &Option<Zone>) -> String {
    z.as_ref()
        .map(|z| z.to_string())
        .unwrap_or_else(|| "an unknown zone".into())
}

/// For each cluster whose writer is in an evacuated zone: fail over to the best reader in a
/// healthy zone (lowest promotion tier, then zone preference, then instance id).
pub fn decide_failover_cluster(
    clusters: &[ClusterId],
    evacuate: &[Zone],
    healthy: &[Zone],
    wait: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    for cid in clusters {
        decide_one_cluster(cid, evacuate, healthy, wait, world, &mut d);
    }
    d
}

fn decide_one_cluster(
    cid: &ClusterId,
    evacuate: &[Zone],
    healthy: &[Zone],
    wait: bool,
    world: &World,
    d: &mut Decision,
) {
    let Some(c) = world.clusters.get(cid) else {
        d.problems.push(format!(
            "cluster `{cid}` was not found (DescribeDBClusters returned nothing for it); check the group in the environment file, the region and the account"
        ));
        return;
    };
    let Some(writer) = c.writer() else {
        d.problems.push(format!("cluster `{cid}` has no writer (status `{}`); wait for RDS to elect one, then run again", c.status));
        return;
    };
    let writer_zone = world
        .instances
        .get(&writer.instance)
        .and_then(|i| i.zone.clone());
    if !writer_zone.as_ref().is_some_and(|z| evacuate.contains(z)) {
        if writer_zone.is_none() {
            d.problems.push(format!("cluster `{cid}`: the zone of writer `{}` is unknown; check DescribeDBInstances permissions", writer.instance));
            return;
        }
        d.skips.push(format!("cluster `{cid}`: writer `{}` is already in {}, outside the evacuated zone(s): nothing to do", writer.instance, zone_str(&writer_zone)));
        d.expected.push(format!(
            "cluster `{cid}`: writer `{}` in {}",
            writer.instance,
            zone_str(&writer_zone)
        ));
        return;
    }
    let wait_for = |target: Option<InstanceId>| Await::ClusterWriterOutside {
        cluster: cid.clone(),
        evacuate: evacuate.to_vec(),
        target,
    };
    if c.status == DbStatus::FailingOver {
        d.skips.push(format!("cluster `{cid}`: a failover is already in progress: waiting for it instead of starting another"));
        if wait {
            d.awaits.push(wait_for(None));
        }
        d.expected.push(format!(
            "cluster `{cid}`: writer outside {}",
            join(evacuate)
        ));
        return;
    }
    if !c.status.is_available() {
        d.problems.push(format!("cluster `{cid}` is `{}`, not `available`: RDS will refuse a failover; wait for it to settle or check it in the console", c.status));
        return;
    }
    let (candidates, rejected) = readers(c, healthy, world);
    let Some((tier, _, target, zone)) = candidates.first() else {
        let readers = if rejected.is_empty() {
            "it has no readers".to_string()
        } else {
            format!("readers: {}", rejected.join(", "))
        };
        d.problems.push(format!(
            "cluster `{cid}`: no eligible reader in a healthy zone ({}) to fail over to; {readers}. Add a reader in a healthy zone (aws rds create-db-instance --db-cluster-identifier {cid} --availability-zone {}), then run again",
            join(healthy),
            healthy.first().map(|z| z.as_str()).unwrap_or("<zone>")
        ));
        return;
    };
    d.calls.push(Call::FailoverDbCluster {
        cluster: cid.clone(),
        target: target.clone(),
        target_zone: zone.clone(),
        from_zone: writer_zone.clone().unwrap_or_else(|| Zone::new("?")),
    });
    if wait {
        d.awaits.push(wait_for(Some(target.clone())));
    }
    d.expected.push(format!(
        "cluster `{cid}`: writer `{target}` (tier {tier}) in {zone}, status available"
    ));
}

/// The readers a cluster's writer may move to, best first (promotion tier, then the healthy
/// zones' order), and why the others may not.
type Candidate = (i32, usize, InstanceId, Zone);

fn readers(c: &ClusterState, healthy: &[Zone], world: &World) -> (Vec<Candidate>, Vec<String>) {
    let mut candidates: Vec<Candidate> = vec![];
    let mut rejected: Vec<String> = vec![];
    for m in c.members.iter().filter(|m| !m.is_writer) {
        if world.unpromotable.contains(&m.instance) {
            rejected.push(format!(
                "{} (a failover to it failed earlier in this run)",
                m.instance
            ));
            continue;
        }
        let Some(i) = world.instances.get(&m.instance) else {
            rejected.push(format!("{} (not described)", m.instance));
            continue;
        };
        match &i.zone {
            Some(z) if healthy.contains(z) && i.status.is_available() => {
                let pref = healthy.iter().position(|h| h == z).unwrap_or(usize::MAX);
                candidates.push((m.promotion_tier, pref, m.instance.clone(), z.clone()));
            }
            Some(z) if !healthy.contains(z) => {
                rejected.push(format!("{} in {z} (evacuated)", m.instance))
            }
            _ => rejected.push(format!(
                "{} in {} is `{}`",
                m.instance,
                zone_str(&i.zone),
                i.status
            )),
        }
    }
    candidates.sort();
    (candidates, rejected)
}

/// For each Multi-AZ instance whose primary is in an evacuated zone: reboot with failover.
/// The member a cluster's writer belongs on: the best promotion tier, then the earliest zone
/// in the environment's order (`zones`).
fn preferred_member<'w>(
    c: &'w ClusterState,
    zones: &[Zone],
    world: &World,
) -> Option<(&'w crate::cloud::ClusterMember, Zone)> {
    c.members
        .iter()
        .filter_map(|m| {
            let z = world.instances.get(&m.instance)?.zone.clone()?;
            let rank = zones.iter().position(|x| *x == z).unwrap_or(usize::MAX);
            Some((m.promotion_tier, rank, m, z))
        })
        .min_by_key(|(tier, rank, m, _)| (*tier, *rank, m.instance.clone()))
        .map(|(_, _, m, z)| (m, z))
}

/// Failback (`return_to`): each cluster whose preferred member (see [`preferred_member`]) is
/// in `zone` and is not the writer fails over to it; the others are left alone.
pub fn decide_return_clusters(
    clusters: &[ClusterId],
    zone: &Zone,
    zones: &[Zone],
    wait: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    for cid in clusters {
        let Some(c) = world.clusters.get(cid) else {
            d.problems.push(format!("cluster `{cid}` was not found (DescribeDBClusters returned nothing for it); check the group in the environment file"));
            continue;
        };
        let (Some(writer), Some((home, home_zone))) =
            (c.writer(), preferred_member(c, zones, world))
        else {
            d.problems.push(format!("cluster `{cid}`: its writer or its members' zones are unknown; check it in the console"));
            continue;
        };
        if &home_zone != zone {
            d.skips.push(format!("cluster `{cid}`: its preferred writer `{}` is in {home_zone}, not {zone}: nothing to do", home.instance));
            continue;
        }
        if home.is_writer {
            d.skips.push(format!("cluster `{cid}`: writer `{}` is already its preferred one, in {zone}: nothing to do", writer.instance));
            d.expected.push(format!(
                "cluster `{cid}`: writer `{}` in {zone}",
                writer.instance
            ));
            continue;
        }
        let from = world
            .instances
            .get(&writer.instance)
            .and_then(|i| i.zone.clone())
            .unwrap_or_else(|| Zone::new("?"));
        let wait_for = Await::ClusterWriterOutside {
            cluster: cid.clone(),
            evacuate: vec![from.clone()],
            target: Some(home.instance.clone()),
        };
        if c.status == DbStatus::FailingOver {
            d.skips.push(format!(
                "cluster `{cid}`: a failover is already in progress: waiting for it"
            ));
            if wait {
                d.awaits.push(wait_for);
            }
            continue;
        }
        if !c.status.is_available() {
            d.problems.push(format!("cluster `{cid}` is `{}`, not `available`: RDS will refuse a failover; wait for it to settle, then run again", c.status));
            continue;
        }
        d.calls.push(Call::FailoverDbCluster {
            cluster: cid.clone(),
            target: home.instance.clone(),
            target_zone: zone.clone(),
            from_zone: from,
        });
        if wait {
            d.awaits.push(wait_for);
        }
        d.expected.push(format!(
            "cluster `{cid}`: writer `{}` (its preferred one) in {zone}, status available",
            home.instance
        ));
    }
    d
}

/// Failback (`return_to`): each Multi-AZ instance whose standby is in `zone`, a zone earlier in
/// the environment's order (`zones`) than its primary's, fails over to it.
pub fn decide_return_instances(
    instances: &[InstanceId],
    zone: &Zone,
    zones: &[Zone],
    wait: bool,
    world: &World,
) -> Decision {
    let rank = |z: &Zone| zones.iter().position(|x| x == z).unwrap_or(usize::MAX);
    let mut d = Decision::default();
    for id in instances {
        let Some(i) = world.instances.get(id) else {
            d.problems.push(format!("instance `{id}` was not found (DescribeDBInstances returned nothing for it); check the group in the environment file"));
            continue;
        };
        let (Some(primary), Some(standby)) = (i.zone.clone(), i.secondary_zone.clone()) else {
            d.skips.push(format!(
                "instance `{id}`: primary {} with no standby zone reported: nothing to fail back",
                zone_str(&i.zone)
            ));
            continue;
        };
        if &standby != zone || rank(&primary) <= rank(zone) {
            d.skips.push(format!("instance `{id}`: primary in {primary}, standby in {standby}: nothing to fail back into {zone}"));
            continue;
        }
        if !i.status.is_available() {
            d.problems.push(format!("instance `{id}` is `{}`, not `available`: RDS will refuse a reboot; wait for it to settle, then run again", i.status));
            continue;
        }
        d.calls.push(Call::RebootDbInstance {
            instance: id.clone(),
            force_failover: true,
            from_zone: primary.clone(),
        });
        if wait {
            d.awaits.push(Await::InstanceOutside {
                instance: id.clone(),
                evacuate: vec![primary],
            });
        }
        d.expected.push(format!(
            "instance `{id}`: primary back in {zone}, status available"
        ));
    }
    d
}

pub fn decide_failover_instance(
    instances: &[InstanceId],
    evacuate: &[Zone],
    wait: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    for id in instances {
        let Some(i) = world.instances.get(id) else {
            d.problems.push(format!("instance `{id}` was not found (DescribeDBInstances returned nothing for it); check the group in the environment file"));
            continue;
        };
        if i.zone.is_none() {
            d.problems.push(format!("instance `{id}`: its zone is unknown (DescribeDBInstances reports none), so it cannot be told whether it must move; check it in the console"));
            continue;
        }
        let in_evacuated = i.zone.as_ref().is_some_and(|z| evacuate.contains(z));
        if !in_evacuated {
            d.skips.push(format!("instance `{id}`: primary already in {}, outside the evacuated zone(s): nothing to do", zone_str(&i.zone)));
            d.expected
                .push(format!("instance `{id}`: primary in {}", zone_str(&i.zone)));
            continue;
        }
        if !i.multi_az {
            d.problems.push(format!(
                "instance `{id}` in {} is not Multi-AZ, so it has no standby to fail over to; restore it from a snapshot in a healthy zone or convert it to Multi-AZ when the zone is back",
                zone_str(&i.zone)
            ));
            continue;
        }
        if let Some(sec) = &i.secondary_zone {
            if evacuate.contains(sec) {
                d.problems.push(format!("instance `{id}`: its standby is in {sec}, which is evacuated too; a failover would not leave the evacuated zones"));
                continue;
            }
        }
        if i.status.is_failing_over() {
            d.skips.push(format!(
                "instance `{id}` is already `{}`: waiting for it instead of rebooting again",
                i.status
            ));
            if wait {
                d.awaits.push(Await::InstanceOutside {
                    instance: id.clone(),
                    evacuate: evacuate.to_vec(),
                });
            }
            continue;
        }
        if !i.status.is_available() {
            d.problems.push(format!("instance `{id}` is `{}`, not `available`: RDS will refuse a reboot; wait for it to settle, then run again", i.status));
            continue;
        }
        d.calls.push(Call::RebootDbInstance {
            instance: id.clone(),
            force_failover: true,
            from_zone: i.zone.clone().unwrap_or_else(|| Zone::new("?")),
        });
        if wait {
            d.awaits.push(Await::InstanceOutside {
                instance: id.clone(),
                evacuate: evacuate.to_vec(),
            });
        }
        d.expected.push(format!(
            "instance `{id}`: primary in {}, status available",
            i.secondary_zone
                .as_ref()
                .map(|z| z.to_string())
                .unwrap_or_else(|| "its standby's zone".into())
        ));
    }
    d
}

/// Manual snapshot identifiers are derived from the run, so a retried or resumed run finds
/// the snapshot it already started instead of taking a second one.
pub fn snapshot_id(run_id: &RunId, source: &str) -> String {
    let raw = format!("failover-{run_id}-{source}").to_ascii_lowercase();
    let mut out = String::new();
    for ch in raw.chars() {
        let c = if ch.is_ascii_alphanumeric() { ch } else { '-' };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    out.truncate(255);
    out.trim_end_matches('-').to_string()
}

pub fn decide_snapshot(
    targets: &[SnapshotTarget],
    wait: bool,
    run_id: &RunId,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    for t in targets {
        let (kind, source, exists) = match t {
            SnapshotTarget::Cluster { id } => (
                SnapshotKind::Cluster,
                id.to_string(),
                world.clusters.contains_key(id),
            ),
            SnapshotTarget::Instance { id } => (
                SnapshotKind::Instance,
                id.to_string(),
                world.instances.contains_key(id),
            ),
        };
        let sid = snapshot_id(run_id, &source);
        if !exists {
            d.problems.push(format!("{} `{source}` was not found, so it cannot be snapshotted; check the group in the environment file", if kind == SnapshotKind::Cluster { "cluster" } else { "instance" }));
            continue;
        }
        match world.snapshot(kind, &sid) {
            Some(s) => {
                d.skips.push(format!(
                    "snapshot `{sid}` of `{source}` already exists (`{}`): not taking another",
                    s.status
                ));
                if wait && !s.status.is_available() {
                    d.awaits.push(Await::SnapshotAvailable {
                        kind,
                        id: sid.clone(),
                    });
                }
            }
            None => {
                let call = match t {
                    SnapshotTarget::Cluster { id } => Call::CreateDbClusterSnapshot {
                        cluster: id.clone(),
                        snapshot: sid.clone(),
                    },
                    SnapshotTarget::Instance { id } => Call::CreateDbSnapshot {
                        instance: id.clone(),
                        snapshot: sid.clone(),
                    },
                };
                // RDS refuses a snapshot of a source that is failing over, rebooting or
                // modifying: hold it back until the source is available again.
                if let Some(status) = source_status(t, world).filter(|s| !s.is_available()) {
                    d.deferred.push(crate::call::Deferred {
                        call,
                        why: format!(
                            "`{source}` is {status}: its snapshot waits until it is available"
                        ),
                    });
                    continue;
                }
                d.calls.push(call);
                if wait {
                    d.awaits.push(Await::SnapshotAvailable {
                        kind,
                        id: sid.clone(),
                    });
                }
            }
        }
        d.expected
            .push(format!("snapshot `{sid}` of `{source}` available"));
    }
    d
}

/// The status of a snapshot's source, as observed.
fn source_status(t: &SnapshotTarget, world: &World) -> Option<DbStatus> {
    match t {
        SnapshotTarget::Cluster { id } => world.clusters.get(id).map(|c| c.status.clone()),
        SnapshotTarget::Instance { id } => world.instances.get(id).map(|i| i.status.clone()),
    }
}

pub fn join(zs: &[Zone]) -> String {
    zs.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ClusterMember, ClusterState};

    fn inst(id: &str, cluster: &str, zone: &str) -> crate::cloud::InstanceState {
        crate::cloud::InstanceState {
            id: id.into(),
            cluster: Some(cluster.into()),
            status: DbStatus::Available,
            engine: "aurora-postgresql".into(),
            zone: Some(zone.into()),
            secondary_zone: None,
            multi_az: false,
        }
    }

    fn world() -> World {
        let mut w = World::default();
        let members = vec![
            ClusterMember {
                instance: "orders-1".into(),
                is_writer: true,
                promotion_tier: 0,
            },
            ClusterMember {
                instance: "orders-2".into(),
                is_writer: false,
                promotion_tier: 1,
            },
            ClusterMember {
                instance: "orders-3".into(),
                is_writer: false,
                promotion_tier: 0,
            },
            ClusterMember {
                instance: "orders-4".into(),
                is_writer: false,
                promotion_tier: 0,
            },
        ];
        w.clusters.insert(
            "orders".into(),
            ClusterState {
                id: "orders".into(),
                status: DbStatus::Available,
                engine: "aurora-postgresql".into(),
                members,
            },
        );
        for (i, z) in [
            ("orders-1", "us-west-2a"),
            ("orders-2", "us-west-2b"),
            ("orders-3", "us-west-2c"),
            ("orders-4", "us-west-2a"),
        ] {
            w.instances.insert(i.into(), inst(i, "orders", z));
        }
        w
    }

    fn zones(z: &[&str]) -> Vec<Zone> {
        z.iter().map(|s| Zone::from(*s)).collect()
    }

    #[test]
    fn picks_lowest_tier_reader_in_healthy_zone() {
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            true,
            &world(),
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        // orders-4 has tier 0 but sits in the evacuated zone; orders-3 (tier 0, 2c) beats orders-2 (tier 1, 2b).
        assert_eq!(
            d.calls,
            vec![Call::FailoverDbCluster {
                cluster: "orders".into(),
                target: "orders-3".into(),
                target_zone: "us-west-2c".into(),
                from_zone: "us-west-2a".into()
            }]
        );
    }

    #[test]
    fn tie_break_follows_zone_preference_then_id() {
        let mut w = world();
        w.clusters
            .get_mut(&ClusterId::from("orders"))
            .unwrap()
            .members[1]
            .promotion_tier = 0;
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            true,
            &w,
        );
        assert!(
            matches!(&d.calls[0], Call::FailoverDbCluster { target, .. } if target.as_str() == "orders-2")
        );
    }

    #[test]
    fn nothing_to_do_when_writer_is_elsewhere() {
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2b"]),
            &zones(&["us-west-2a", "us-west-2c"]),
            true,
            &world(),
        );
        assert!(d.calls.is_empty());
        assert!(
            d.skips[0].contains("already in us-west-2a"),
            "{:?}",
            d.skips
        );
    }

    #[test]
    fn no_eligible_reader_is_a_clear_problem() {
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a", "us-west-2b", "us-west-2c"]),
            &[],
            true,
            &world(),
        );
        assert!(d.calls.is_empty());
        assert!(
            d.problems[0].contains("no eligible reader"),
            "{:?}",
            d.problems
        );
        assert_eq!(
            crate::readiness::classify(&d.problems[0]),
            crate::readiness::Cause::NoEligibleReader
        );
    }

    #[test]
    fn a_reader_that_failed_to_be_promoted_is_passed_over() {
        let mut w = world();
        w.unpromotable.insert("orders-3".into());
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            true,
            &w,
        );
        assert!(
            matches!(&d.calls[0], Call::FailoverDbCluster { target, .. } if target.as_str() == "orders-2"),
            "{:?}",
            d.calls
        );
        w.unpromotable.insert("orders-2".into());
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            true,
            &w,
        );
        assert!(
            d.problems[0].contains("orders-3 (a failover to it failed earlier in this run)"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn unknown_cluster_is_a_problem() {
        let d = decide_failover_cluster(
            &["ghost".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b"]),
            true,
            &world(),
        );
        assert!(d.problems[0].contains("`ghost` was not found"));
        assert_eq!(
            crate::readiness::classify(&d.problems[0]),
            crate::readiness::Cause::NotFound
        );
    }

    #[test]
    fn failover_in_progress_is_awaited_not_repeated() {
        let mut w = world();
        w.clusters
            .get_mut(&ClusterId::from("orders"))
            .unwrap()
            .status = DbStatus::FailingOver;
        let d = decide_failover_cluster(
            &["orders".into()],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b"]),
            true,
            &w,
        );
        assert!(d.calls.is_empty());
        assert_eq!(d.awaits.len(), 1);
    }

    #[test]
    fn multi_az_instance_reboots_only_when_in_evacuated_zone() {
        let mut w = World::default();
        let mut i = inst("legacy", "", "us-west-2a");
        i.cluster = None;
        i.multi_az = true;
        i.secondary_zone = Some("us-west-2b".into());
        w.instances.insert("legacy".into(), i.clone());
        let d = decide_failover_instance(&["legacy".into()], &zones(&["us-west-2a"]), true, &w);
        assert_eq!(d.calls.len(), 1);
        let d = decide_failover_instance(&["legacy".into()], &zones(&["us-west-2c"]), true, &w);
        assert!(d.calls.is_empty());
        i.multi_az = false;
        w.instances.insert("legacy".into(), i);
        let d = decide_failover_instance(&["legacy".into()], &zones(&["us-west-2a"]), true, &w);
        assert!(d.problems[0].contains("not Multi-AZ"));
        assert_eq!(
            crate::readiness::classify(&d.problems[0]),
            crate::readiness::Cause::NoStandby
        );
    }

    #[test]
    fn regression_instance_with_unknown_zone_is_a_problem_not_a_skip() {
        let mut w = World::default();
        let mut i = inst("legacy", "", "us-west-2a");
        i.cluster = None;
        i.multi_az = true;
        i.zone = None;
        w.instances.insert("legacy".into(), i);
        let d = decide_failover_instance(&["legacy".into()], &zones(&["us-west-2a"]), true, &w);
        assert!(d.skips.is_empty());
        assert!(
            d.problems[0].contains("its zone is unknown"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn snapshot_ids_are_valid_and_stable() {
        assert_eq!(
            snapshot_id(&"20261122T0435-ab".into(), "orders_db"),
            "failover-20261122t0435-ab-orders-db"
        );
        let w = world();
        let t = vec![SnapshotTarget::Cluster {
            id: "orders".into(),
        }];
        let d1 = decide_snapshot(&t, true, &"r1".into(), &w);
        assert_eq!(d1.calls.len(), 1);
        let mut w2 = w.clone();
        w2.apply(&d1.calls[0]);
        let d2 = decide_snapshot(&t, true, &"r1".into(), &w2);
        assert!(
            d2.calls.is_empty(),
            "a second decision must not take a second snapshot"
        );
    }
}
