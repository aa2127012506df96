//! RDS adapter: [`AwsDatabases`] implements the `Databases` port with `aws-sdk-rds`.
//!
//! Describe calls observe many resources per request: the ids go into a `Filter`
//! (`db-cluster-id`, `db-instance-id`, `db-cluster-snapshot-id`, `db-snapshot-id`) in chunks of
//! at most [`FILTER_CHUNK`] values, and every `Marker` page is followed. Results are filtered
//! again on this side, so only requested resources come back even from a peer that ignores a
//! filter, and identifiers are matched case-insensitively (RDS stores them in lower case) and
//! reported with the spelling the caller used. A resource that does not exist is absent from
//! the result, never an error.

use super::error::cloud_error;
use crate::cloud::describe_ids;
use crate::cloud::rate::{Api, Class, Quotas, RateLimiter};
use crate::cloud::{
    CloudError, ClusterMember, ClusterState, Databases, DbStatus, ErrorKind, InstanceState,
    SnapshotKind, SnapshotState,
};
use crate::types::{ClusterId, InstanceId, Zone};
use async_trait::async_trait;
use aws_sdk_rds::types::{DbCluster, DbInstance, Filter};
use aws_sdk_rds::Client;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

/// Most filter values sent in one describe call.
pub const FILTER_CHUNK: usize = 100;
/// Page size asked for (the RDS maximum).
pub const PAGE_SIZE: i32 = 100;
/// Pages followed for one chunk before giving up on a peer that never stops paging.
pub const MAX_PAGES: usize = 10_000;
/// Promotion tier RDS uses when none is reported.
pub const DEFAULT_PROMOTION_TIER: i32 = 1;

/// The `Databases` port backed by an RDS client.
#[derive(Clone, Debug)]
pub struct AwsDatabases {
    client: Client,
    /// Every request waits for its token here and is counted.
    limiter: Arc<RateLimiter>,
}

/// A snapshot as DescribeDB(Cluster)Snapshots lists it: id, ARN, source, status.
type SnapshotRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl AwsDatabases {
    /// (id, arn, source, status) of the cluster snapshots among `chunk`, every page.
    async fn cluster_snapshots(
        &self,
        resource: &str,
        chunk: &[&str],
    ) -> Result<Vec<SnapshotRow>, CloudError> {
        let resource = resource.to_string();
        const OP: &str = "DescribeDBClusterSnapshots";
        let f = filter("db-cluster-snapshot-id", chunk);
        let snaps = follow_markers(OP, &resource, |marker| {
            let req = self
                .client
                .describe_db_cluster_snapshots()
                .filters(f.clone())
                .max_records(PAGE_SIZE)
                .set_marker(marker);
            let resource = resource.clone();
            let limiter = self.limiter.clone();
            async move {
                let r = limiter
                    .call(Api::Rds, Class::Read, || async {
                        req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
                    })
                    .await;
                Ok(match absent_if_not_found(r)? {
                    Some(o) => (
                        o.db_cluster_snapshots().to_vec(),
                        o.marker().map(str::to_string),
                    ),
                    None => (Vec::new(), None),
                })
            }
        })
        .await?;
        Ok(snaps
            .into_iter()
            .map(|s| {
                (
                    s.db_cluster_snapshot_identifier,
                    s.db_cluster_snapshot_arn,
                    s.db_cluster_identifier,
                    s.status,
                )
            })
            .collect::<Vec<_>>())
    }

    /// (id, arn, source, status) of the instance snapshots among `chunk`, every page.
    async fn instance_snapshots(
        &self,
        resource: &str,
        chunk: &[&str],
    ) -> Result<Vec<SnapshotRow>, CloudError> {
        let resource = resource.to_string();
        const OP: &str = "DescribeDBSnapshots";
        let f = filter("db-snapshot-id", chunk);
        let snaps = follow_markers(OP, &resource, |marker| {
            let req = self
                .client
                .describe_db_snapshots()
                .filters(f.clone())
                .max_records(PAGE_SIZE)
                .set_marker(marker);
            let resource = resource.clone();
            let limiter = self.limiter.clone();
            async move {
                let r = limiter
                    .call(Api::Rds, Class::Read, || async {
                        req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
                    })
                    .await;
                Ok(match absent_if_not_found(r)? {
                    Some(o) => (o.db_snapshots().to_vec(), o.marker().map(str::to_string)),
                    None => (Vec::new(), None),
                })
            }
        })
        .await?;
        Ok(snaps
            .into_iter()
            .map(|s| {
                (
                    s.db_snapshot_identifier,
                    s.db_snapshot_arn,
                    s.db_instance_identifier,
                    s.status,
                )
            })
            .collect::<Vec<_>>())
    }

    /// Wraps an existing client (e.g. one built by `aws-smithy-mocks` in tests).
    /// Its requests are paced by a limiter of AWS's default quotas on the wall clock.
    pub fn from_client(client: Client) -> Self {
        let limiter = RateLimiter::new(Quotas::default(), Arc::new(crate::clock::SystemClock));
        Self::with_limiter(client, Arc::new(limiter))
    }

    /// Wraps a client whose requests go through `limiter` (shared with the other adapters of
    /// the process, so the counts and the buckets are the account's).
    pub fn with_limiter(client: Client, limiter: Arc<RateLimiter>) -> Self {
        Self { client, limiter }
    }
}

/// The identifiers asked for, keyed in lower case, remembering the caller's spelling.
struct Wanted<'a> {
    by_lower: HashMap<String, &'a str>,
}

impl<'a> Wanted<'a> {
    fn new<S: AsRef<str>>(ids: &'a [S]) -> Self {
        let mut by_lower = HashMap::new();
        for id in ids {
            let id = id.as_ref();
            by_lower.entry(id.to_ascii_lowercase()).or_insert(id);
        }
        Self { by_lower }
    }

    /// The requested spelling of the first candidate (identifier or ARN) that was asked for.
    fn find(&self, candidates: &[Option<&str>]) -> Option<&'a str> {
        candidates
            .iter()
            .flatten()
            .find_map(|c| self.by_lower.get(&c.to_ascii_lowercase()).copied())
    }

    /// Distinct requested ids, in the caller's order.
    fn distinct<S: AsRef<str>>(ids: &'a [S]) -> Vec<&'a str> {
        let mut seen = HashSet::new();
        ids.iter()
            .map(AsRef::as_ref)
            .filter(|id| seen.insert(id.to_ascii_lowercase()))
            .collect()
    }
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

/// Runs `page` with `None`, then with each returned marker, until no marker comes back.
/// A marker returned twice in a row, or more than [`MAX_PAGES`] pages, is an error: the peer
/// would otherwise be paged forever.
pub(super) async fn follow_markers<T, F, Fut>(
    operation: &str,
    resource: &str,
    mut page: F,
) -> Result<Vec<T>, CloudError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), CloudError>>,
{
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = page(marker.clone()).await?;
        out.extend(items);
        match next.filter(|m| !m.is_empty()) {
            None => return Ok(out),
            Some(next) if Some(&next) == marker.as_ref() => {
                return Err(CloudError::new(
                    ErrorKind::Other,
                    operation,
                    resource,
                    format!(
                        "the peer returned the same page marker twice ({next}); stopped paging"
                    ),
                ))
            }
            Some(next) => marker = Some(next),
        }
    }
    Err(CloudError::new(
        ErrorKind::Other,
        operation,
        resource,
        format!("more than {MAX_PAGES} pages; stopped paging"),
    ))
}

/// `Ok(None)` for a NotFound: with identifiers in a filter RDS answers with an empty list, but
/// a peer may report the absence as an error; either way the resource is absent.
fn absent_if_not_found<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn cluster_state(c: &DbCluster, id: &str) -> ClusterState {
    ClusterState {
        id: ClusterId::new(id),
        status: DbStatus::from(c.status().unwrap_or_default()),
        engine: c.engine().unwrap_or_default().to_string(),
        members: c
            .db_cluster_members()
            .iter()
            .filter_map(|m| {
                Some(ClusterMember {
                    instance: InstanceId::new(m.db_instance_identifier()?),
                    is_writer: m.is_cluster_writer().unwrap_or(false),
                    promotion_tier: m.promotion_tier().unwrap_or(DEFAULT_PROMOTION_TIER),
                })
            })
            .collect(),
    }
}

pub(super) fn instance_state(i: &DbInstance, id: &str, cluster: Option<&str>) -> InstanceState {
    InstanceState {
        id: InstanceId::new(id),
        cluster: cluster.map(ClusterId::new),
        status: DbStatus::from(i.db_instance_status().unwrap_or_default()),
        engine: i.engine().unwrap_or_default().to_string(),
        zone: i.availability_zone().map(Zone::new),
        secondary_zone: i.secondary_availability_zone().map(Zone::new),
        multi_az: i.multi_az().unwrap_or(false),
    }
}

impl AwsDatabases {
    /// One DescribeDBInstances per chunk of `values` for `filter_name`, all pages.
    async fn describe_db_instances(
        &self,
        filter_name: &str,
        values: &[&str],
    ) -> Result<Vec<DbInstance>, CloudError> {
        const OP: &str = "DescribeDBInstances";
        let mut out = Vec::new();
        for chunk in values.chunks(FILTER_CHUNK) {
            let resource = describe_ids(chunk);
            let f = filter(filter_name, chunk);
            let pages = follow_markers(OP, &resource, |marker| {
                let req = self
                    .client
                    .describe_db_instances()
                    .filters(f.clone())
                    .max_records(PAGE_SIZE)
                    .set_marker(marker);
                let resource = resource.clone();
                let limiter = self.limiter.clone();
                async move {
                    let r = limiter
                        .call(Api::Rds, Class::Read, || async {
                            req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
                        })
                        .await;
                    Ok(match absent_if_not_found(r)? {
                        Some(o) => (o.db_instances().to_vec(), o.marker().map(str::to_string)),
                        None => (Vec::new(), None),
                    })
                }
            })
            .await?;
            out.extend(pages);
        }
        Ok(out)
    }
}

#[async_trait]
impl Databases for AwsDatabases {
    async fn describe_clusters(&self, ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        const OP: &str = "DescribeDBClusters";
        let ids: Vec<&str> = ids.iter().map(ClusterId::as_str).collect();
        let distinct = Wanted::distinct(&ids);
        let wanted = Wanted::new(&distinct);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for chunk in distinct.chunks(FILTER_CHUNK) {
            let resource = describe_ids(chunk);
            let f = filter("db-cluster-id", chunk);
            let clusters = follow_markers(OP, &resource, |marker| {
                let req = self
                    .client
                    .describe_db_clusters()
                    .filters(f.clone())
                    .max_records(PAGE_SIZE)
                    .set_marker(marker);
                let resource = resource.clone();
                let limiter = self.limiter.clone();
                async move {
                    let r = limiter
                        .call(Api::Rds, Class::Read, || async {
                            req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
                        })
                        .await;
                    Ok(match absent_if_not_found(r)? {
                        Some(o) => (o.db_clusters().to_vec(), o.marker().map(str::to_string)),
                        None => (Vec::new(), None),
                    })
                }
            })
            .await?;
            for c in &clusters {
                if let Some(id) = wanted.find(&[c.db_cluster_identifier(), c.db_cluster_arn()]) {
                    if seen.insert(id) {
                        out.push(cluster_state(c, id));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn describe_cluster_instances(
        &self,
        clusters: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        let clusters: Vec<&str> = clusters.iter().map(ClusterId::as_str).collect();
        let distinct = Wanted::distinct(&clusters);
        let wanted = Wanted::new(&distinct);
        let instances = self
            .describe_db_instances("db-cluster-id", &distinct)
            .await?;
        let mut seen = HashSet::new();
        Ok(instances
            .iter()
            .filter_map(|i| {
                let cluster = wanted.find(&[i.db_cluster_identifier()])?;
                let id = i.db_instance_identifier()?;
                seen.insert(id.to_string())
                    .then(|| instance_state(i, id, Some(cluster)))
            })
            .collect())
    }

    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        let ids: Vec<&str> = ids.iter().map(InstanceId::as_str).collect();
        let distinct = Wanted::distinct(&ids);
        let wanted = Wanted::new(&distinct);
        let instances = self
            .describe_db_instances("db-instance-id", &distinct)
            .await?;
        let mut seen = HashSet::new();
        Ok(instances
            .iter()
            .filter_map(|i| {
                let id = wanted.find(&[i.db_instance_identifier(), i.db_instance_arn()])?;
                seen.insert(id)
                    .then(|| instance_state(i, id, i.db_cluster_identifier()))
            })
            .collect())
    }

    async fn failover_cluster(
        &self,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> Result<(), CloudError> {
        let req = self
            .client
            .failover_db_cluster()
            .db_cluster_identifier(cluster.as_str())
            .target_db_instance_identifier(target.as_str());
        let resource = format!("{cluster} (target {target})");
        self.limiter
            .call(Api::Rds, Class::Mutate, || async {
                req.send()
                    .await
                    .map_err(|e| cloud_error("FailoverDBCluster", &resource, &e))
            })
            .await?;
        Ok(())
    }

    async fn reboot_with_failover(&self, instance: &InstanceId) -> Result<(), CloudError> {
        let req = self
            .client
            .reboot_db_instance()
            .db_instance_identifier(instance.as_str())
            .force_failover(true);
        self.limiter
            .call(Api::Rds, Class::Mutate, || async {
                req.send()
                    .await
                    .map_err(|e| cloud_error("RebootDBInstance", instance.as_str(), &e))
            })
            .await?;
        Ok(())
    }

    async fn create_cluster_snapshot(
        &self,
        cluster: &ClusterId,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let req = self
            .client
            .create_db_cluster_snapshot()
            .db_cluster_identifier(cluster.as_str())
            .db_cluster_snapshot_identifier(snapshot_id);
        let resource = format!("{cluster} (snapshot {snapshot_id})");
        // A snapshot is a safety net nothing waits on: it takes only the tokens the calls that
        // move things leave.
        self.limiter
            .call(Api::Rds, Class::Background, || async {
                req.send()
                    .await
                    .map_err(|e| cloud_error("CreateDBClusterSnapshot", &resource, &e))
            })
            .await?;
        Ok(())
    }

    async fn create_instance_snapshot(
        &self,
        instance: &InstanceId,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let req = self
            .client
            .create_db_snapshot()
            .db_instance_identifier(instance.as_str())
            .db_snapshot_identifier(snapshot_id);
        let resource = format!("{instance} (snapshot {snapshot_id})");
        self.limiter
            .call(Api::Rds, Class::Background, || async {
                req.send()
                    .await
                    .map_err(|e| cloud_error("CreateDBSnapshot", &resource, &e))
            })
            .await?;
        Ok(())
    }

    async fn describe_snapshots(
        &self,
        kind: SnapshotKind,
        ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        let distinct = Wanted::distinct(ids);
        let wanted = Wanted::new(&distinct);
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for chunk in distinct.chunks(FILTER_CHUNK) {
            let resource = describe_ids(chunk);
            let found = match kind {
                SnapshotKind::Cluster => self.cluster_snapshots(&resource, chunk).await?,
                SnapshotKind::Instance => self.instance_snapshots(&resource, chunk).await?,
            };
            for (id, arn, source, status) in found {
                if let Some(id) = wanted.find(&[id.as_deref(), arn.as_deref()]) {
                    if seen.insert(id) {
                        out.push(SnapshotState {
                            id: id.to_string(),
                            kind,
                            source: source.unwrap_or_default(),
                            status: DbStatus::from(status.unwrap_or_default()),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_matches_case_insensitively_and_keeps_spelling() {
        let ids = ["Orders", "payments"];
        let w = Wanted::new(&ids);
        assert_eq!(w.find(&[Some("orders")]), Some("Orders"));
        assert_eq!(w.find(&[Some("other"), Some("PAYMENTS")]), Some("payments"));
        assert_eq!(w.find(&[None, Some("other")]), None);
        assert_eq!(Wanted::distinct(&["a", "A", "b", "a"]), vec!["a", "b"]);
    }

    #[tokio::test]
    async fn markers_are_followed_and_loops_detected() {
        let pages = follow_markers("Op", "r", |m: Option<String>| async move {
            Ok(match m.as_deref() {
                None => (vec![1, 2], Some("m1".to_string())),
                Some("m1") => (vec![3], Some(String::new())),
                Some(other) => panic!("unexpected marker {other}"),
            })
        })
        .await
        .unwrap();
        assert_eq!(pages, vec![1, 2, 3]);

        let err = follow_markers("Op", "r", |_m: Option<String>| async move {
            Ok((vec![0], Some("same".to_string())))
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Other);
        assert!(
            err.message.contains("same page marker twice"),
            "{}",
            err.message
        );
    }
}
