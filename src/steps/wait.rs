//! Whether what a step waits for has happened, as a pure function of an observed `World`: the
//! engine observes every pending wait of a step at once (one paged Describe per resource kind
//! per poll), then asks [`status`] about each.

use crate::call::Await;
use crate::cloud::ChangeStatus;
use crate::steps::rds::join;
use crate::world::Needs;
use crate::world::World;

/// Where a wait stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwaitStatus {
    /// The goal is reached.
    Done(String),
    /// Not yet (a failover under way, a change still PENDING).
    Pending(String),
    /// The resource is settled (`available`) but the goal is not reached: a failover that did
    /// not happen or was undone. The engine gives it a grace period (the status can lag the
    /// call), then fails the attempt so the step decides again. `why` says what is wrong.
    Stalled { what: String, why: String },
    /// Settled, but the peer cannot show whether the goal is reached (moto reports no standby
    /// zone): treated as done, with a warning.
    Unverified(String),
    /// It cannot happen any more (the resource disappeared, the snapshot failed).
    Failed(String),
}

/// What to observe to evaluate `awaits` (`change_ids`: the Route 53 changes to look up).
pub fn needs(awaits: &[&Await], change_ids: &[String]) -> Needs {
    let mut n = Needs::default();
    for a in awaits {
        match a {
            Await::ClusterWriterOutside { cluster, .. } => n.clusters.push(cluster.clone()),
            Await::InstanceOutside { instance, .. } => n.instances.push(instance.clone()),
            Await::SnapshotAvailable { kind, id } => match kind {
                crate::cloud::SnapshotKind::Cluster => n.cluster_snapshots.push(id.clone()),
                crate::cloud::SnapshotKind::Instance => n.instance_snapshots.push(id.clone()),
            },
            Await::ChangeInsync { .. } => {}
            Await::ChangeSettled { change_id } => n.changes.push(change_id.clone()),
            Await::GlobalWriterIn {
                global_cluster,
                region,
            } => n
                .global_clusters
                .push((region.clone(), global_cluster.clone())),
        }
    }
    n.changes.extend(change_ids.iter().cloned());
    n.dedup();
    n
}

/// Where `a` stands in `world`. `change_id`: the id of the Route 53 change a `ChangeInsync`
/// waits for (`None`: the change failed or was not made; nothing to wait for).
pub fn status(a: &Await, world: &World, change_id: Option<&str>) -> AwaitStatus {
    match a {
        Await::ClusterWriterOutside {
            cluster, evacuate, ..
        } => {
            let Some(c) = world.clusters.get(cluster) else {
                return AwaitStatus::Failed(format!(
                    "cluster `{cluster}` disappeared while failing over"
                ));
            };
            let wz = c
                .writer()
                .and_then(|w| world.instances.get(&w.instance))
                .and_then(|i| i.zone.clone());
            let where_ = wz
                .as_ref()
                .map(|z| z.to_string())
                .unwrap_or_else(|| "?".into());
            let what = format!(
                "cluster `{cluster}`: status {}, writer in {where_}",
                c.status
            );
            let available = c.status.is_available();
            match (available, wz.as_ref().is_some_and(|z| !evacuate.contains(z))) {
                (true, true) => AwaitStatus::Done(what),
                (true, false) => AwaitStatus::Stalled {
                    what,
                    why: format!("cluster is available but its writer is still in {where_}: the failover did not happen or was undone"),
                },
                (false, _) => AwaitStatus::Pending(what),
            }
        }
        Await::InstanceOutside { instance, evacuate } => {
            let Some(i) = world.instances.get(instance) else {
                return AwaitStatus::Failed(format!(
                    "instance `{instance}` disappeared while failing over"
                ));
            };
            let outside = i.zone.as_ref().is_some_and(|z| !evacuate.contains(z));
            let primary = i
                .zone
                .as_ref()
                .map(|z| z.to_string())
                .unwrap_or_else(|| "?".into());
            let what = format!(
                "instance `{instance}`: status {}, primary in {primary}",
                i.status
            );
            match (i.status.is_available(), outside, i.secondary_zone.is_none()) {
                (true, true, _) => AwaitStatus::Done(what),
                (true, false, true) => AwaitStatus::Unverified(format!(
                    "instance `{instance}` is available but the peer still reports its primary in {primary} and reports no standby zone, so the move cannot be verified; check it in the console"
                )),
                _ => AwaitStatus::Pending(what),
            }
        }
        Await::SnapshotAvailable { kind, id } => match world.snapshot(*kind, id) {
            Some(s) if s.status.is_available() => {
                AwaitStatus::Done(format!("snapshot `{id}` available"))
            }
            Some(s) if s.status.is_failed() => AwaitStatus::Failed(format!(
                "snapshot `{id}` failed (status {}); take one by hand or remove the step",
                s.status
            )),
            Some(s) => AwaitStatus::Pending(format!("snapshot `{id}`: {}", s.status)),
            None => AwaitStatus::Pending(format!("snapshot `{id}`: not visible yet")),
        },
        Await::ChangeSettled { change_id } => settled(world, change_id),
        Await::ChangeInsync { call_index } => {
            let Some(id) = change_id else {
                return AwaitStatus::Done(format!(
                    "Route 53 change #{}: not made, nothing to wait for",
                    call_index + 1
                ));
            };
            match world.changes.get(id) {
                Some(ChangeStatus::Insync) => {
                    AwaitStatus::Done(format!("Route 53 change {id}: Insync"))
                }
                Some(ChangeStatus::Pending) => {
                    AwaitStatus::Pending(format!("Route 53 change {id}: Pending"))
                }
                None => AwaitStatus::Pending(format!("Route 53 change {id}: not visible yet")),
            }
        }
        Await::GlobalWriterIn {
            global_cluster,
            region,
        } => global_status(global_cluster, region, world),
    }
}

/// Where an earlier Route 53 change (one a step waits for but did not make) stands.
fn settled(world: &World, change_id: &str) -> AwaitStatus {
    if world.changes_unknown.contains(change_id) {
        return AwaitStatus::Done(format!(
            "an earlier Route 53 change {change_id}: not known to Route 53 (it keeps a change's status for a limited time): nothing to wait for"
        ));
    }
    match world.changes.get(change_id) {
        Some(ChangeStatus::Pending) | None => {
            AwaitStatus::Pending(format!("an earlier Route 53 change {change_id}: Pending"))
        }
        Some(ChangeStatus::Insync) => {
            AwaitStatus::Done(format!("an earlier Route 53 change {change_id}: Insync"))
        }
    }
}

/// A global cluster's writer moving to `region`: done when it takes writes there.
fn global_status(
    id: &crate::types::GlobalClusterId,
    region: &crate::types::Region,
    world: &World,
) -> AwaitStatus {
    let Some(g) = world.global_clusters.get(id) else {
        return AwaitStatus::Failed(format!(
            "global cluster `{id}` disappeared while its writer moved"
        ));
    };
    let writer = g
        .writer()
        .map(|w| w.region.to_string())
        .unwrap_or_else(|| "no region".into());
    let under_way = g
        .failover
        .as_ref()
        .map(|f| {
            format!(
                ", {} {}",
                if f.data_loss_allowed {
                    "failover"
                } else {
                    "switchover"
                },
                f.status
            )
        })
        .unwrap_or_default();
    let what = format!(
        "global cluster `{id}`: status {}, writer in {writer}{under_way}",
        g.status
    );
    if g.writable_in(region) {
        AwaitStatus::Done(what)
    } else if g.failover.is_none() && g.status.is_available() {
        AwaitStatus::Stalled {
            what,
            why: format!("global cluster is available with its writer in {writer}, not {region}: the switchover or failover did not happen or was cancelled"),
        }
    } else {
        AwaitStatus::Pending(what)
    }
}

/// One line for a plan: what the step waits for.
pub fn describe(a: &Await) -> String {
    match a {
        Await::ClusterWriterOutside {
            cluster, evacuate, ..
        } => format!(
            "cluster `{cluster}` is available with its writer outside {}",
            join(evacuate)
        ),
        Await::InstanceOutside { instance, evacuate } => format!(
            "instance `{instance}` is available with its primary outside {}",
            join(evacuate)
        ),
        Await::SnapshotAvailable { id, .. } => format!("snapshot `{id}` is available"),
        Await::ChangeInsync { call_index } => {
            format!("Route 53 change #{} is INSYNC", call_index + 1)
        }
        Await::ChangeSettled { change_id } => {
            format!("the earlier Route 53 change {change_id} is INSYNC")
        }
        Await::GlobalWriterIn {
            global_cluster,
            region,
        } => format!(
            "global cluster `{global_cluster}` takes writes in {region} (available, writer in {region}, no switchover or failover under way)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ClusterMember, ClusterState, DbStatus, InstanceState};
    use crate::types::Zone;

    /// An earlier change is waited for until INSYNC, or until Route 53 says it does not know
    /// it (an old change, one from another account or simulated world): never forever.
    #[test]
    fn an_earlier_change_is_settled_when_insync_or_unknown_to_route53() {
        let a = Await::ChangeSettled {
            change_id: "C1".into(),
        };
        let mut w = World::default();
        assert!(matches!(status(&a, &w, None), AwaitStatus::Pending(_)));
        w.changes.insert("C1".into(), ChangeStatus::Pending);
        assert!(matches!(status(&a, &w, None), AwaitStatus::Pending(_)));
        w.changes.insert("C1".into(), ChangeStatus::Insync);
        assert!(matches!(status(&a, &w, None), AwaitStatus::Done(_)));
        let mut w = World::default();
        w.changes_unknown.insert("C1".into());
        match status(&a, &w, None) {
            AwaitStatus::Done(why) => assert!(why.contains("not known to Route 53"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    fn world(status: DbStatus, writer_zone: &str) -> World {
        let mut w = World::default();
        w.clusters.insert(
            "orders".into(),
            ClusterState {
                id: "orders".into(),
                status,
                engine: "aurora-mysql".into(),
                members: vec![ClusterMember {
                    instance: "orders-1".into(),
                    is_writer: true,
                    promotion_tier: 1,
                }],
            },
        );
        w.instances.insert(
            "orders-1".into(),
            InstanceState {
                id: "orders-1".into(),
                cluster: Some("orders".into()),
                status: DbStatus::Available,
                engine: "aurora-mysql".into(),
                zone: Some(Zone::from(writer_zone)),
                secondary_zone: None,
                multi_az: false,
            },
        );
        w
    }

    #[test]
    fn cluster_waits() {
        let a = Await::ClusterWriterOutside {
            cluster: "orders".into(),
            evacuate: vec!["us-west-2a".into()],
            target: None,
        };
        let s = |st: DbStatus, z: &str| status(&a, &world(st, z), None);
        assert!(matches!(
            s(DbStatus::FailingOver, "us-west-2a"),
            AwaitStatus::Pending(_)
        ));
        assert!(matches!(
            s(DbStatus::Available, "us-west-2a"),
            AwaitStatus::Stalled { .. }
        ));
        assert!(matches!(
            s(DbStatus::Available, "us-west-2b"),
            AwaitStatus::Done(_)
        ));
        assert!(matches!(
            status(&a, &World::default(), None),
            AwaitStatus::Failed(_)
        ));
    }

    #[test]
    fn change_waits() {
        let a = Await::ChangeInsync { call_index: 0 };
        let mut w = World::default();
        assert!(matches!(status(&a, &w, None), AwaitStatus::Done(_)));
        assert!(matches!(
            status(&a, &w, Some("C1")),
            AwaitStatus::Pending(_)
        ));
        w.changes.insert("C1".into(), ChangeStatus::Pending);
        assert!(matches!(
            status(&a, &w, Some("C1")),
            AwaitStatus::Pending(_)
        ));
        w.changes.insert("C1".into(), ChangeStatus::Insync);
        assert!(matches!(status(&a, &w, Some("C1")), AwaitStatus::Done(_)));
    }
}
