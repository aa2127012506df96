//! Read-only observation of the resources a plan or a step needs, with few calls: one
//! filtered (and paged) Describe per resource kind, one listing per hosted zone; a wait reads
//! the Route 53 changes it waits for in order, up to the first still PENDING. A wait re-reads
//! only the clusters (`observe_waiting`): the zones of their members are known from its first
//! observation. What the run's steps observed of its databases is shared (`Seen`), so a step
//! that waits for another's databases takes its reads instead of making its own.

use crate::cloud::model::RDS_FILTER_CHUNK;
use crate::cloud::{CloudError, InstanceState, SnapshotKind};
use crate::ports::Ports;
use crate::types::{ClusterId, InstanceId};
use crate::world::Needs;
use crate::world::World;
use std::collections::{BTreeMap, HashMap};

pub async fn observe(ports: &Ports, needs: &Needs) -> Result<World, CloudError> {
    Ok(observe_timed(ports, needs).await?.0)
}

/// [`observe`], and when its reads of the databases began (the age of the world for a
/// decision about them). The Route 53 listings are read first and the databases last, each
/// kind's filter chunks concurrently ([`by_chunks`]): a plan of 2,000 clusters and 20,000
/// records lists the records (about 70 pages, one after the other by nature) and then reads
/// every database in about a second, so what it saw of them is still fresh when its steps
/// start (`Ctx::plan_world`); the records are the run's under its lease whatever their age.
pub async fn observe_timed(
    ports: &Ports,
    needs: &Needs,
) -> Result<(World, std::time::SystemTime), CloudError> {
    let mut w = World::default();
    observe_dns(ports, needs, &mut w).await?;
    let at = ports.clock.now();
    if !needs.clusters.is_empty() {
        let clusters = by_chunks(&needs.clusters, |c| ports.db.describe_clusters(c));
        let members = async {
            if needs.without_members {
                return Ok(vec![]);
            }
            by_chunks(&needs.clusters, |c| ports.db.describe_cluster_instances(c)).await
        };
        let (clusters, members) = tokio::try_join!(clusters, members)?;
        for c in clusters {
            w.clusters.insert(c.id.clone(), c);
        }
        for i in members {
            w.instances.insert(i.id.clone(), i);
        }
    }
    observe_rest(ports, needs, w).await.map(|w| (w, at))
}

/// Filter chunks of one Describe in flight at once. Each chunk is one filtered (and paged)
/// call; the limiter paces them all, so this only bounds how many wait on a round trip.
const CHUNKS_IN_FLIGHT: usize = 8;

/// `describe` of `ids` in chunks of at most `RDS_FILTER_CHUNK` ids (the adapters' own filter
/// size: each chunk is one call and its pages), [`CHUNKS_IN_FLIGHT`] at a time.
async fn by_chunks<'a, I, T, F, Fut>(ids: &'a [I], describe: F) -> Result<Vec<T>, CloudError>
where
    F: Fn(&'a [I]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, CloudError>>,
{
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    // The calls are made (not yet polled) here, so the stream holds futures, not the closure.
    let calls: Vec<Fut> = ids.chunks(RDS_FILTER_CHUNK).map(describe).collect();
    let parts: Vec<Vec<T>> = stream::iter(calls)
        .buffered(CHUNKS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(parts.into_iter().flatten().collect())
}

/// What a wait knows of the members of the clusters it watches. An instance of a cluster stays
/// in its zone while the cluster fails over (the writer role moves between instances; the
/// instances do not move), and a wait reads of a member only its zone (is the writer outside
/// the evacuated zones?). So after the first observation a poll describes only the clusters
/// (which member is the writer, the cluster's status), and describes the members of a cluster
/// again only when it lists one not known yet (a reader added meanwhile), or one whose zone was
/// not reported. Multi-AZ instances are not cluster members: their primary does move, so they
/// are described on every poll (DescribeDBInstances is the one call there).
#[derive(Clone, Debug, Default)]
pub struct Members {
    known: BTreeMap<InstanceId, InstanceState>,
}

impl Members {
    /// The cluster members (with a zone) observed in `world`: the world a step decided on.
    pub fn seen_in(world: &World) -> Self {
        let mut m = Members::default();
        for i in world.instances.values() {
            m.learn(i);
        }
        m
    }

    fn learn(&mut self, i: &InstanceState) {
        if i.cluster.is_some() && i.zone.is_some() {
            self.known.insert(i.id.clone(), i.clone());
        }
    }

    fn get(&self, id: &InstanceId) -> Option<&InstanceState> {
        self.known.get(id)
    }
}

/// Observe for a wait: like [`observe`], but the members of the clusters come from `members`
/// when all are known (one DescribeDBClusters per poll for every cluster of the step), and are
/// described (one DescribeDBClusterInstances for the clusters that list an unknown one) only
/// otherwise. The status of a member taken from `members` is as it was first observed: a
/// wait reads only its zone.
pub async fn observe_waiting(
    ports: &Ports,
    needs: &Needs,
    members: &mut Members,
) -> Result<World, CloudError> {
    let mut w = World::default();
    observe_dns(ports, needs, &mut w).await?;
    if !needs.clusters.is_empty() {
        let clusters = by_chunks(&needs.clusters, |c| ports.db.describe_clusters(c)).await?;
        let unknown: Vec<ClusterId> = clusters
            .iter()
            .filter(|c| c.members.iter().any(|m| members.get(&m.instance).is_none()))
            .map(|c| c.id.clone())
            .collect();
        if !unknown.is_empty() {
            for i in by_chunks(&unknown, |c| ports.db.describe_cluster_instances(c)).await? {
                members.learn(&i);
                w.instances.insert(i.id.clone(), i);
            }
        }
        for c in clusters {
            for m in &c.members {
                // An instance the wait asks for by name is described afresh (observe_rest).
                if w.instances.contains_key(&m.instance) || needs.instances.contains(&m.instance) {
                    continue;
                }
                if let Some(i) = members.get(&m.instance) {
                    w.instances.insert(m.instance.clone(), i.clone());
                }
            }
            w.clusters.insert(c.id.clone(), c);
        }
    }
    observe_rest(ports, needs, w).await
}

/// The global clusters asked for: one DescribeGlobalClusters per region named, on that
/// region's endpoint.
async fn observe_global(ports: &Ports, needs: &Needs, w: &mut World) -> Result<(), CloudError> {
    if needs.global_clusters.is_empty() {
        return Ok(());
    }
    let mut by_region: BTreeMap<&crate::types::Region, Vec<crate::types::GlobalClusterId>> =
        BTreeMap::new();
    for (r, id) in &needs.global_clusters {
        by_region.entry(r).or_default().push(id.clone());
    }
    let Some(global) = &ports.global else {
        let ids: Vec<String> = needs
            .global_clusters
            .iter()
            .map(|(_, g)| g.to_string())
            .collect();
        return Err(CloudError::new(
            crate::cloud::ErrorKind::InvalidRequest,
            "DescribeGlobalClusters",
            crate::cloud::describe_ids(&ids),
            "these ports have no global database client; list the environment's regions (regions = [...])",
        ));
    };
    for (region, ids) in by_region {
        for g in global.describe_global_clusters(region, &ids).await? {
            w.global_clusters.insert(g.id.clone(), g);
        }
    }
    Ok(())
}

/// The hosted zones with their records, and the Route 53 changes asked for.
async fn observe_dns(ports: &Ports, needs: &Needs, w: &mut World) -> Result<(), CloudError> {
    for hz_ref in &needs.hosted_zones {
        match ports.dns.find_hosted_zone(hz_ref).await {
            Ok(hz) => {
                let recs = ports.dns.list_record_sets(&hz.id).await?;
                w.records.insert(
                    hz.id.clone(),
                    recs.into_iter().map(|r| (r.key(), r)).collect(),
                );
                w.hosted_zones.insert(hz_ref.clone(), hz);
            }
            // A missing hosted zone is a precondition the planner reports, not a crash.
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    for id in &needs.changes {
        match ports.dns.get_change(id).await {
            Ok(c) => {
                w.changes.insert(id.clone(), c.status);
            }
            // A change the reads do not show yet (they lag behind the write): not visible yet.
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Everything but the clusters, their members and Route 53: the instances asked for (unless
/// already observed as members) and the snapshots (concurrently, by chunks), global clusters,
/// ARC managed resources.
async fn observe_rest(ports: &Ports, needs: &Needs, mut w: World) -> Result<World, CloudError> {
    let missing: Vec<_> = needs
        .instances
        .iter()
        .filter(|i| !w.instances.contains_key(*i))
        .cloned()
        .collect();
    let instances = by_chunks(&missing, |c| ports.db.describe_instances(c));
    let cluster_snapshots = by_chunks(&needs.cluster_snapshots, |c| {
        ports.db.describe_snapshots(SnapshotKind::Cluster, c)
    });
    let instance_snapshots = by_chunks(&needs.instance_snapshots, |c| {
        ports.db.describe_snapshots(SnapshotKind::Instance, c)
    });
    let (instances, cluster_snapshots, instance_snapshots) =
        tokio::try_join!(instances, cluster_snapshots, instance_snapshots)?;
    for i in instances {
        w.instances.insert(i.id.clone(), i);
    }
    for (kind, found) in [
        (SnapshotKind::Cluster, cluster_snapshots),
        (SnapshotKind::Instance, instance_snapshots),
    ] {
        for s in found {
            w.snapshots.insert((kind.into(), s.id.clone()), s);
        }
    }
    observe_global(ports, needs, &mut w).await?;
    for arn in &needs.zonal_resources {
        if let Some(m) = observe_managed(ports, arn).await? {
            w.managed.insert(arn.clone(), m);
        }
    }
    Ok(w)
}

/// One ARC managed resource: GetManagedResource (registered? its active shifts and
/// autoshifts), then ListZonalShifts of it (the shifts that ended, a started shift whose answer
/// was lost), each shift once. `None`: not registered with ARC (the step says what to do).
async fn observe_managed(
    ports: &Ports,
    arn: &str,
) -> Result<Option<crate::cloud::ManagedResource>, CloudError> {
    let mut m = match ports.arc.get_managed_resource(arn).await {
        Ok(m) => m,
        Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for s in ports.arc.list_zonal_shifts(arn).await? {
        match m.shifts.iter_mut().find(|x| x.id == s.id) {
            Some(x) => *x = s,
            None => m.shifts.push(s),
        }
    }
    Ok(Some(m))
}
/// The status of the Route 53 changes a wait waits for, read in the order given (oldest
/// first) up to the first still PENDING: the ones after it are not read on this poll (a wait
/// takes a change it has no status for as pending, and reads it once the one before is
/// INSYNC), so a wait for many batches makes about one GetChange per poll, not one per batch.
pub async fn changes_in_order(
    ports: &Ports,
    ids: &[String],
    earlier: &std::collections::HashSet<&str>,
    w: &mut World,
) -> Result<(), CloudError> {
    for id in ids {
        match ports.dns.get_change(id).await {
            Ok(c) => {
                let pending = c.status == crate::cloud::ChangeStatus::Pending;
                w.changes.insert(id.clone(), c.status);
                if pending {
                    break;
                }
            }
            // An earlier change Route 53 does not know (any more): nothing to wait for.
            Err(e)
                if e.kind == crate::cloud::ErrorKind::NotFound && earlier.contains(id.as_str()) =>
            {
                w.changes_unknown.insert(id.clone());
            }
            // Not visible yet (reads lag behind the write): read again next poll.
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the run's steps last observed of its databases: the clusters (with their members) and
/// the instances, each as its newest read showed it. A `dns.update` whose records wait for
/// databases that a running failover step watches takes that step's reads (it polls them
/// anyway) instead of describing them again, and is woken when they change.
#[derive(Debug, Default)]
pub struct Seen {
    clusters: HashMap<ClusterId, crate::cloud::ClusterState>,
    instances: HashMap<InstanceId, InstanceState>,
}

impl Seen {
    /// Remember what `world` shows of clusters and instances (newer than what was known).
    pub fn learn(&mut self, world: &World) {
        for (id, c) in &world.clusters {
            self.clusters.insert(id.clone(), c.clone());
        }
        for (id, i) in &world.instances {
            self.instances.insert(id.clone(), i.clone());
        }
    }

    /// Put what is known of `clusters` (with their members) and `instances` into `w`.
    pub fn fill(&self, clusters: &[ClusterId], instances: &[InstanceId], w: &mut World) {
        for id in clusters {
            let Some(c) = self.clusters.get(id) else {
                continue;
            };
            for m in &c.members {
                if let Some(i) = self.instances.get(&m.instance) {
                    w.instances.insert(m.instance.clone(), i.clone());
                }
            }
            w.clusters.insert(id.clone(), c.clone());
        }
        for id in instances {
            if let Some(i) = self.instances.get(id) {
                w.instances.insert(id.clone(), i.clone());
            }
        }
    }
}
