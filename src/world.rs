//! `World`: a snapshot of the resources a run cares about, as observed through the ports, and
//! `Needs`: what to observe.
//!
//! The planner decides against a `World`; a dry run applies the predicted effect of each call
//! to its copy (`apply`) so later steps are planned against the state earlier steps leave.

use crate::call::Call;
use crate::cloud::{
    ChangeAction, ChangeStatus, ClusterState, DbStatus, HostedZone, InstanceState, ManagedResource,
    RecordKey, RecordSet, SnapshotKind, SnapshotState, ZonalShift, ZonalShiftStatus,
};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct World {
    pub clusters: BTreeMap<ClusterId, ClusterState>,
    pub instances: BTreeMap<InstanceId, InstanceState>,
    /// Keyed by (kind, id).
    pub snapshots: BTreeMap<(SnapshotKindKey, String), SnapshotState>,
    /// Keyed by the reference used in the environment (name or id).
    pub hosted_zones: BTreeMap<String, HostedZone>,
    /// Keyed by hosted zone id.
    pub records: BTreeMap<String, BTreeMap<RecordKey, RecordSet>>,
    /// Route 53 changes by id, as GetChange reports them.
    #[serde(default)]
    pub changes: BTreeMap<String, ChangeStatus>,
    /// Earlier Route 53 changes (from the journal) that GetChange does not know: Route 53
    /// keeps a change's status for a limited time, and a change made by another simulated
    /// world or account is not there. Nothing to wait for.
    pub changes_unknown: BTreeSet<String>,
    /// Resources registered with ARC zonal shift, by ARN (a resource asked for and absent is
    /// not registered).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub managed: BTreeMap<String, ManagedResource>,
    /// Aurora global databases, as DescribeGlobalClusters reports them.
    #[serde(default)]
    pub global_clusters: BTreeMap<GlobalClusterId, crate::cloud::GlobalClusterState>,
    /// Calls (of any run) that may have been made and whose effect is not confirmed yet,
    /// within their grace period: the same call to the same resource is held back.
    /// Learned from the journal, not observed.
    #[serde(default)]
    pub in_doubt: Vec<InDoubtCall>,
    /// Route 53 changes made recently (by any run): (hosted zone id, change id). With
    /// `changes`, a step waits for one still PENDING. Learned from the journal.
    #[serde(default)]
    pub recent_changes: Vec<(String, String)>,
    /// Instances a failover to which failed earlier in this run (refused, or the writer never
    /// moved): the next decision picks another reader. Learned by the engine, not observed.
    #[serde(default)]
    pub unpromotable: std::collections::BTreeSet<InstanceId>,
    /// Steps of this run that have ended (the records of a `dns.update` with `records_after`
    /// stop waiting for a database once its failover step has ended). Learned by the engine.
    #[serde(default)]
    pub finished_steps: BTreeMap<crate::types::StepId, crate::status::StepStatus>,
}

/// A call that may have been made, as the journal tells it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InDoubtCall {
    pub operation: String,
    pub resource: String,
    pub run_id: String,
    /// The intent's sequence number in the journal.
    pub seq: i64,
    /// When the intent was written and until when it is given to show its effect (epoch ms).
    pub at_ms: i64,
    pub until_ms: i64,
    /// Why it is in doubt.
    pub why: String,
    /// Its grace has passed without the effect showing: the call may be made again, where the
    /// effect can be seen at all.
    #[serde(default)]
    pub expired: bool,
    /// Not in doubt but accepted: this run made this very call and AWS answered it, and reads
    /// may not show its effect yet (they lag behind writes). Only the same call is held back,
    /// and there is nothing to settle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Call>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SnapshotKindKey {
    Cluster,
    Instance,
}

impl From<SnapshotKind> for SnapshotKindKey {
    fn from(k: SnapshotKind) -> Self {
        match k {
            SnapshotKind::Cluster => SnapshotKindKey::Cluster,
            SnapshotKind::Instance => SnapshotKindKey::Instance,
        }
    }
}

impl World {
    pub fn merge(&mut self, other: World) {
        self.clusters.extend(other.clusters);
        self.instances.extend(other.instances);
        self.snapshots.extend(other.snapshots);
        self.hosted_zones.extend(other.hosted_zones);
        self.records.extend(other.records);
        self.changes.extend(other.changes);
        self.changes_unknown.extend(other.changes_unknown);
        self.managed.extend(other.managed);
        self.global_clusters.extend(other.global_clusters);
    }

    /// What an observation of `needs` alone would have returned, taken from this wider one:
    /// the clusters asked for and their members, the instances asked for, the snapshots asked
    /// for, the hosted zones asked for and their records, the changes asked for. What the
    /// journal adds (calls in doubt, recent changes, readers passed over) is left out.
    pub fn subset(&self, needs: &Needs) -> World {
        let mut w = World::default();
        for id in &needs.clusters {
            if let Some(c) = self.clusters.get(id) {
                w.clusters.insert(id.clone(), c.clone());
            }
        }
        for (id, i) in &self.instances {
            let member = i
                .cluster
                .as_ref()
                .is_some_and(|c| w.clusters.contains_key(c));
            if member || needs.instances.contains(id) {
                w.instances.insert(id.clone(), i.clone());
            }
        }
        for (kind, ids) in [
            (SnapshotKindKey::Cluster, &needs.cluster_snapshots),
            (SnapshotKindKey::Instance, &needs.instance_snapshots),
        ] {
            for id in ids {
                if let Some(s) = self.snapshots.get(&(kind, id.clone())) {
                    w.snapshots.insert((kind, id.clone()), s.clone());
                }
            }
        }
        for r in &needs.hosted_zones {
            if let Some(z) = self.hosted_zones.get(r) {
                if let Some(recs) = self.records.get(&z.id) {
                    w.records.insert(z.id.clone(), recs.clone());
                }
                w.hosted_zones.insert(r.clone(), z.clone());
            }
        }
        for id in &needs.changes {
            if let Some(c) = self.changes.get(id) {
                w.changes.insert(id.clone(), *c);
            }
        }
        for arn in &needs.zonal_resources {
            if let Some(m) = self.managed.get(arn) {
                w.managed.insert(arn.clone(), m.clone());
            }
        }
        for (_, id) in &needs.global_clusters {
            if let Some(g) = self.global_clusters.get(id) {
                w.global_clusters.insert(id.clone(), g.clone());
            }
        }
        w
    }

    pub fn snapshot(&self, kind: SnapshotKind, id: &str) -> Option<&SnapshotState> {
        self.snapshots.get(&(kind.into(), id.to_string()))
    }

    /// A snapshot requested: predicted available at once (dry runs).
    fn add_snapshot(&mut self, kind: SnapshotKind, snapshot: &str, source: &str) {
        self.snapshots.insert(
            (kind.into(), snapshot.to_string()),
            SnapshotState {
                id: snapshot.to_string(),
                kind,
                source: source.to_string(),
                status: DbStatus::Available,
            },
        );
    }

    /// The predicted effect of an ARC call: a shift started (its id unknown yet) or canceled.
    fn apply_arc(&mut self, call: &Call) {
        match call {
            Call::StartZonalShift {
                resource,
                away_from_id,
                comment,
                ..
            } => {
                if let Some(m) = self.managed.get_mut(resource) {
                    m.shifts.push(ZonalShift {
                        id: "(new)".into(),
                        resource: resource.clone(),
                        away_from: away_from_id.clone(),
                        status: ZonalShiftStatus::Active,
                        start_ms: 0,
                        expiry_ms: i64::MAX,
                        comment: comment.clone(),
                    });
                }
            }
            Call::CancelZonalShift {
                resource,
                zonal_shift_id,
                ..
            } => {
                if let Some(m) = self.managed.get_mut(resource) {
                    for s in m.shifts.iter_mut().filter(|s| &s.id == zonal_shift_id) {
                        s.status = ZonalShiftStatus::Canceled;
                    }
                }
            }
            _ => {}
        }
    }

    /// Predict the effect of a call (used by dry runs; the live run observes instead).
    pub fn apply(&mut self, call: &Call) {
        match call {
            Call::FailoverDbCluster {
                cluster, target, ..
            } => {
                if let Some(c) = self.clusters.get_mut(cluster) {
                    for m in &mut c.members {
                        m.is_writer = &m.instance == target;
                    }
                    c.status = DbStatus::Available;
                }
            }
            Call::RebootDbInstance { instance, .. } => {
                if let Some(i) = self.instances.get_mut(instance) {
                    if let Some(sec) = i.secondary_zone.take() {
                        i.secondary_zone = i.zone.take();
                        i.zone = Some(sec);
                    }
                    i.status = DbStatus::Available;
                }
            }
            Call::CreateDbClusterSnapshot { cluster, snapshot } => {
                self.add_snapshot(SnapshotKind::Cluster, snapshot, cluster.as_str())
            }
            Call::CreateDbSnapshot { instance, snapshot } => {
                self.add_snapshot(SnapshotKind::Instance, snapshot, instance.as_str())
            }
            Call::ChangeResourceRecordSets {
                hosted_zone_id,
                changes,
                ..
            } => {
                let zone = self.records.entry(hosted_zone_id.clone()).or_default();
                for ch in changes {
                    match ch.action {
                        ChangeAction::Create | ChangeAction::Upsert => {
                            zone.insert(ch.record.key(), ch.record.clone());
                        }
                        ChangeAction::Delete => {
                            zone.remove(&ch.record.key());
                        }
                    }
                }
            }
            Call::Http { .. } => {}
            Call::StartZonalShift { .. } | Call::CancelZonalShift { .. } => self.apply_arc(call),
            Call::SwitchoverGlobalCluster {
                global_cluster,
                region,
                ..
            }
            | Call::FailoverGlobalCluster {
                global_cluster,
                region,
                ..
            } => {
                if let Some(g) = self.global_clusters.get_mut(global_cluster) {
                    for m in &mut g.members {
                        m.is_writer = &m.region == region;
                    }
                    g.status = DbStatus::Available;
                    g.failover = None;
                }
            }
        }
    }
}

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
    /// ARC managed resources (ARNs): GetManagedResource and ListZonalShifts.
    pub zonal_resources: Vec<String>,
    /// Global clusters, each with the region whose endpoint to read it from.
    pub global_clusters: Vec<(Region, GlobalClusterId)>,
    /// The clusters' own state is enough: their members are not described (a snapshot needs
    /// only whether its cluster is available).
    pub without_members: bool,
}

impl Needs {
    pub fn merge(&mut self, o: Needs) {
        self.without_members &= o.without_members;
        self.clusters.extend(o.clusters);
        self.instances.extend(o.instances);
        self.cluster_snapshots.extend(o.cluster_snapshots);
        self.instance_snapshots.extend(o.instance_snapshots);
        self.hosted_zones.extend(o.hosted_zones);
        self.changes.extend(o.changes);
        self.zonal_resources.extend(o.zonal_resources);
        self.global_clusters.extend(o.global_clusters);
        self.dedup();
    }
    /// Each resource once, first mention first.
    pub fn dedup(&mut self) {
        fn once<T: Eq + std::hash::Hash + Clone>(v: &mut Vec<T>) {
            let mut seen = std::collections::HashSet::with_capacity(v.len());
            v.retain(|x| seen.insert(x.clone()));
        }
        once(&mut self.clusters);
        once(&mut self.instances);
        once(&mut self.cluster_snapshots);
        once(&mut self.instance_snapshots);
        once(&mut self.hosted_zones);
        once(&mut self.changes);
        once(&mut self.zonal_resources);
        once(&mut self.global_clusters);
    }
    /// Everything `other` asks to observe, this asks too.
    pub fn covers(&self, other: &Needs) -> bool {
        fn within<T: Eq + std::hash::Hash>(mine: &[T], theirs: &[T]) -> bool {
            let mine: std::collections::HashSet<&T> = mine.iter().collect();
            theirs.iter().all(|x| mine.contains(x))
        }
        (other.without_members || !self.without_members)
            && within(&self.clusters, &other.clusters)
            && within(&self.instances, &other.instances)
            && within(&self.cluster_snapshots, &other.cluster_snapshots)
            && within(&self.instance_snapshots, &other.instance_snapshots)
            && within(&self.hosted_zones, &other.hosted_zones)
            && within(&self.changes, &other.changes)
            && within(&self.zonal_resources, &other.zonal_resources)
            && within(&self.global_clusters, &other.global_clusters)
    }
    pub fn is_empty(&self) -> bool {
        *self == Needs::default()
    }

    /// The databases asked for, by name: clusters, instances, global clusters.
    pub fn database_names(&self) -> impl Iterator<Item = &str> {
        self.clusters
            .iter()
            .map(|c| c.as_str())
            .chain(self.instances.iter().map(|i| i.as_str()))
            .chain(self.global_clusters.iter().map(|(_, g)| g.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ClusterMember, DbStatus};
    use crate::types::Zone;

    fn instance(id: &str, cluster: Option<&str>, zone: &str) -> InstanceState {
        InstanceState {
            id: id.into(),
            cluster: cluster.map(ClusterId::from),
            status: DbStatus::Available,
            engine: "aurora-mysql".into(),
            zone: Some(Zone::from(zone)),
            secondary_zone: None,
            multi_az: cluster.is_none(),
        }
    }

    fn wide() -> World {
        let mut w = World::default();
        for c in ["orders", "catalog"] {
            w.clusters.insert(
                c.into(),
                ClusterState {
                    id: c.into(),
                    status: DbStatus::Available,
                    engine: "aurora-mysql".into(),
                    members: vec![ClusterMember {
                        instance: format!("{c}-1").as_str().into(),
                        is_writer: true,
                        promotion_tier: 1,
                    }],
                },
            );
            let i = instance(&format!("{c}-1"), Some(c), "us-west-2a");
            w.instances.insert(i.id.clone(), i);
        }
        let legacy = instance("legacy", None, "us-west-2b");
        w.instances.insert(legacy.id.clone(), legacy);
        w.hosted_zones.insert(
            "shop.example.com.".into(),
            HostedZone {
                id: "Z1".into(),
                name: "shop.example.com.".into(),
            },
        );
        w.records.insert("Z1".into(), BTreeMap::new());
        w
    }

    #[test]
    fn a_subset_is_what_observing_those_needs_alone_returns() {
        let w = wide();
        let needs = Needs {
            clusters: vec!["orders".into(), "ghost".into()],
            ..Default::default()
        };
        let s = w.subset(&needs);
        fn ids(w: &World) -> (Vec<&str>, Vec<&str>) {
            let c = w.clusters.keys().map(|c| c.as_str()).collect();
            let i = w.instances.keys().map(|i| i.as_str()).collect();
            (c, i)
        }
        assert_eq!(ids(&s), (vec!["orders"], vec!["orders-1"]));
        assert!(s.hosted_zones.is_empty() && s.records.is_empty());
        let needs = Needs {
            instances: vec!["legacy".into()],
            hosted_zones: vec!["shop.example.com.".into()],
            ..Default::default()
        };
        let s = w.subset(&needs);
        assert_eq!(ids(&s), (vec![], vec!["legacy"]));
        assert_eq!(s.records.keys().collect::<Vec<_>>(), vec!["Z1"]);
        assert_eq!(w.subset(&Needs::default()), World::default());
    }

    #[test]
    fn needs_cover_what_they_ask_for() {
        let mut all = Needs {
            clusters: vec!["orders".into(), "catalog".into()],
            hosted_zones: vec!["shop.example.com.".into()],
            ..Default::default()
        };
        all.merge(Needs {
            clusters: vec!["orders".into()],
            ..Default::default()
        });
        assert_eq!(
            all.clusters.len(),
            2,
            "merged needs name each resource once"
        );
        let one = Needs {
            clusters: vec!["catalog".into()],
            ..Default::default()
        };
        assert!(all.covers(&one) && all.covers(&Needs::default()));
        let other = Needs {
            instances: vec!["legacy".into()],
            ..Default::default()
        };
        assert!(!all.covers(&other) && !one.covers(&all));
    }
}
