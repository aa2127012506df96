//! Read-only observation of the resources a plan or a step needs, with few calls: one
//! filtered (and paged) Describe per resource kind, one listing per hosted zone, one GetChange
//! per Route 53 change waited for.

use crate::cloud::{CloudError, SnapshotKind};
use crate::ports::Ports;
use crate::world::Needs;
use crate::world::World;

pub async fn observe(ports: &Ports, needs: &Needs) -> Result<World, CloudError> {
    let mut w = World::default();
    if !needs.clusters.is_empty() {
        for c in ports.db.describe_clusters(&needs.clusters).await? {
            w.clusters.insert(c.id.clone(), c);
        }
        for i in ports.db.describe_cluster_instances(&needs.clusters).await? {
            w.instances.insert(i.id.clone(), i);
        }
    }
    let missing: Vec<_> = needs
        .instances
        .iter()
        .filter(|i| !w.instances.contains_key(*i))
        .cloned()
        .collect();
    if !missing.is_empty() {
        for i in ports.db.describe_instances(&missing).await? {
            w.instances.insert(i.id.clone(), i);
        }
    }
    for (kind, ids) in [
        (SnapshotKind::Cluster, &needs.cluster_snapshots),
        (SnapshotKind::Instance, &needs.instance_snapshots),
    ] {
        if !ids.is_empty() {
            for s in ports.db.describe_snapshots(kind, ids).await? {
                w.snapshots.insert((kind.into(), s.id.clone()), s);
            }
        }
    }
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
    Ok(w)
}
