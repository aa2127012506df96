//! The ports the engine observes and changes the world through. `cloud::aws` implements them
//! with the AWS SDK, `cloud::sim` with the simulated world, `cloud::http` with reqwest; tests
//! with fakes. Every type crossing them is the project's own.

use super::{
    ChangeInfo, CloudError, ClusterState, HostedZone, HttpRequest, HttpResponse, InstanceState,
    ManagedResource, RecordChange, RecordSet, SnapshotKind, SnapshotState, ZonalShift,
};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region};
use async_trait::async_trait;
use std::time::{Duration, SystemTime};

/// RDS: Aurora clusters, Multi-AZ DB clusters and Multi-AZ DB instances.
#[async_trait]
pub trait Databases: Send + Sync {
    /// Describe the given clusters with as few calls as possible (filters, pages).
    /// Clusters that do not exist are absent from the result.
    async fn describe_clusters(&self, ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError>;
    /// Describe every instance that belongs to one of the given clusters.
    async fn describe_cluster_instances(
        &self,
        clusters: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError>;
    /// Describe the given instances. Instances that do not exist are absent from the result.
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError>;
    /// FailoverDBCluster to the given target instance.
    async fn failover_cluster(
        &self,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> Result<(), CloudError>;
    /// RebootDBInstance with ForceFailover=true.
    async fn reboot_with_failover(&self, instance: &InstanceId) -> Result<(), CloudError>;
    async fn create_cluster_snapshot(
        &self,
        cluster: &ClusterId,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;
    async fn create_instance_snapshot(
        &self,
        instance: &InstanceId,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;
    /// Describe the given manual snapshots; missing ones are absent from the result.
    async fn describe_snapshots(
        &self,
        kind: SnapshotKind,
        ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError>;
}

/// Aurora Global Database: every call names the region whose RDS endpoint it goes to, so a
/// region evacuation talks to the recovery region's control plane, never to the failed one's.
#[async_trait]
pub trait GlobalDatabases: Send + Sync {
    /// DescribeGlobalClusters on `region`'s endpoint; missing ones are absent from the result.
    async fn describe_global_clusters(
        &self,
        region: &Region,
        ids: &[GlobalClusterId],
    ) -> Result<Vec<super::GlobalClusterState>, CloudError>;
    /// SwitchoverGlobalCluster (graceful, no data loss) to the member `target_arn`.
    async fn switchover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError>;
    /// FailoverGlobalCluster with AllowDataLoss=true (unplanned) to the member `target_arn`.
    async fn failover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError>;
}

/// CloudWatch metrics read at a promotion (the replication lag: data at risk).
#[async_trait]
pub trait Metrics: Send + Sync {
    /// The latest datapoint (Maximum over 1-minute periods of the last `window`) of an
    /// `AWS/RDS` metric with one dimension, in `region`; `None` when there is none.
    async fn latest_rds_metric(
        &self,
        region: &Region,
        metric: &str,
        dimension: (&str, &str),
        window: Duration,
    ) -> Result<Option<f64>, CloudError>;
}

/// Route 53.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Find a hosted zone by id (`Z...`) or by name (`example.com.`).
    async fn find_hosted_zone(&self, id_or_name: &str) -> Result<HostedZone, CloudError>;
    /// All record sets of a hosted zone (paged).
    async fn list_record_sets(&self, zone_id: &str) -> Result<Vec<RecordSet>, CloudError>;
    /// One ChangeResourceRecordSets request. Callers batch within the service limits.
    async fn change_record_sets(
        &self,
        zone_id: &str,
        comment: &str,
        changes: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError>;
    async fn get_change(&self, change_id: &str) -> Result<ChangeInfo, CloudError>;
}

/// ARC zonal shift: move a load balancer's (or an Auto Scaling group's) traffic out of one
/// Availability Zone for a while, and back.
#[async_trait]
pub trait ZonalShifts: Send + Sync {
    /// GetManagedResource: the resource's active shifts and autoshifts; `NotFound` when the
    /// resource is not registered with ARC zonal shift.
    async fn get_managed_resource(&self, arn: &str) -> Result<ManagedResource, CloudError>;
    /// ListZonalShifts of one resource, every status, all pages.
    async fn list_zonal_shifts(&self, arn: &str) -> Result<Vec<ZonalShift>, CloudError>;
    /// StartZonalShift away from the zone id `away_from` for `expires_in` (1 minute to 3 days).
    async fn start_zonal_shift(
        &self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> Result<ZonalShift, CloudError>;
    /// CancelZonalShift. `None`: the shift is no longer active (it expired or was canceled):
    /// there is nothing to cancel, which is not a failure.
    async fn cancel_zonal_shift(&self, id: &str) -> Result<Option<ZonalShift>, CloudError>;
}

/// Outgoing HTTP for `http` steps.
#[async_trait]
pub trait HttpClient: Send + Sync {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, CloudError>;
}

/// Time, injected so the simulator can run a virtual clock.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    async fn sleep(&self, d: Duration);
}

/// Where the AWS requests a process (or a simulated client) made are counted: reads,
/// mutations, throttled and failed answers, time spent waiting for a token.
pub trait CallMeter: Send + Sync {
    fn counts(&self) -> super::model::CallCounts;
}

/// A DB cluster as listed by `failover discover`: its members and tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterListing {
    pub id: ClusterId,
    pub engine: String,
    pub members: Vec<InstanceId>,
    pub tags: Vec<(String, String)>,
}

/// A DB instance as listed by `failover discover`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceListing {
    pub state: InstanceState,
    pub tags: Vec<(String, String)>,
    /// The source of a read replica.
    pub replica_of: Option<String>,
}

/// Read-only listing of a whole account, for `failover discover`: every call paged and paced
/// by the client-side limiter; nothing is changed.
#[async_trait]
pub trait Inventory: Send + Sync {
    /// Every DB cluster of the region.
    async fn list_clusters(&self) -> Result<Vec<ClusterListing>, CloudError>;
    /// Every DB instance of the region (cluster members and standalone instances).
    async fn list_instances(&self) -> Result<Vec<InstanceListing>, CloudError>;
    /// Every hosted zone of the account.
    async fn list_hosted_zones(&self) -> Result<Vec<HostedZone>, CloudError>;
}
