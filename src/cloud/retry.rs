//! The one place that decides what to do with a failed call (kube-rs `error_policy` style).
//!
//! Adapters only classify (`ErrorKind`); this module wraps any port and retries:
//! - read-only calls on `Throttled` and `Transient`;
//! - mutating calls on `Throttled` only: a throttled request was not processed, whereas a 5xx
//!   or a reset connection may have been. Those are left to the step, which observes the world
//!   again before deciding whether to act (so nothing is done twice).
//!
//! Backoff is exponential with full jitter, capped, and driven by the injected `Clock`.

use super::*;
use async_trait::async_trait;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Total attempts per call, including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempt` (1-based count of failures so far), full jitter.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max_delay);
        let millis = cap.as_millis() as u64;
        Duration::from_millis(if millis == 0 { 0 } else { rng.u64(0..=millis) })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Mutate,
}

pub fn should_retry(kind: CallKind, err: &CloudError) -> bool {
    match kind {
        CallKind::Read => err.kind.retry_read(),
        CallKind::Mutate => err.kind.retry_mutation(),
    }
}

/// Runs `f` with the policy. Each retry is logged with the call and the resource.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    clock: &dyn Clock,
    rng: &std::sync::Mutex<fastrand::Rng>,
    kind: CallKind,
    mut f: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < policy.max_attempts && should_retry(kind, &e) => {
                let d = policy.delay(attempt, &mut rng.lock().unwrap_or_else(|e| e.into_inner()));
                tracing::warn!(
                    operation = %e.operation, resource = %e.resource, kind = ?e.kind,
                    attempt, delay_ms = d.as_millis() as u64, "retrying: {}", e.message
                );
                clock.sleep(d).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Any port with the retry policy applied: `Retrying<dyn Databases>`, `Retrying<dyn Dns>`,
/// `Retrying<dyn Inventory>` implement their port by sending each method through
/// [`with_retry`] with the call's kind.
pub struct Retrying<P: ?Sized> {
    inner: Arc<P>,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    rng: std::sync::Mutex<fastrand::Rng>,
}

pub type RetryingDatabases = Retrying<dyn Databases>;
pub type RetryingDns = Retrying<dyn Dns>;
pub type RetryingInventory = Retrying<dyn Inventory>;
pub type RetryingZonalShifts = Retrying<dyn ZonalShifts>;
pub type RetryingGlobal = Retrying<dyn crate::cloud::GlobalDatabases>;

impl<P: ?Sized> Retrying<P> {
    /// `seed` makes the jitter reproducible (the simulator); `None` seeds from entropy.
    pub fn new(
        inner: Arc<P>,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
        seed: Option<u64>,
    ) -> Self {
        let rng = seed.map(fastrand::Rng::with_seed).unwrap_or_default();
        Self {
            inner,
            policy,
            clock,
            rng: std::sync::Mutex::new(rng),
        }
    }

    async fn read<T, Fut>(&self, f: impl FnMut() -> Fut) -> Result<T, CloudError>
    where
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        with_retry(&self.policy, &*self.clock, &self.rng, CallKind::Read, f).await
    }

    async fn mutate<T, Fut>(&self, f: impl FnMut() -> Fut) -> Result<T, CloudError>
    where
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        with_retry(&self.policy, &*self.clock, &self.rng, CallKind::Mutate, f).await
    }
}

#[async_trait]
impl Databases for Retrying<dyn Databases> {
    async fn describe_clusters(&self, ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        self.read(|| self.inner.describe_clusters(ids)).await
    }
    async fn describe_cluster_instances(
        &self,
        c: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        self.read(|| self.inner.describe_cluster_instances(c)).await
    }
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        self.read(|| self.inner.describe_instances(ids)).await
    }
    async fn failover_cluster(&self, c: &ClusterId, t: &InstanceId) -> Result<(), CloudError> {
        self.mutate(|| self.inner.failover_cluster(c, t)).await
    }
    async fn reboot_with_failover(&self, i: &InstanceId) -> Result<(), CloudError> {
        self.mutate(|| self.inner.reboot_with_failover(i)).await
    }
    async fn create_cluster_snapshot(&self, c: &ClusterId, s: &str) -> Result<(), CloudError> {
        self.mutate(|| self.inner.create_cluster_snapshot(c, s))
            .await
    }
    async fn create_instance_snapshot(&self, i: &InstanceId, s: &str) -> Result<(), CloudError> {
        self.mutate(|| self.inner.create_instance_snapshot(i, s))
            .await
    }
    async fn describe_snapshots(
        &self,
        k: SnapshotKind,
        ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        self.read(|| self.inner.describe_snapshots(k, ids)).await
    }
}

/// Global databases: reads retried on throttling and transient errors, the switchover and the
/// failover on throttling only (as every mutating call).
#[async_trait]
impl crate::cloud::GlobalDatabases for Retrying<dyn crate::cloud::GlobalDatabases> {
    async fn describe_global_clusters(
        &self,
        r: &crate::types::Region,
        ids: &[crate::types::GlobalClusterId],
    ) -> Result<Vec<crate::cloud::GlobalClusterState>, CloudError> {
        self.read(|| self.inner.describe_global_clusters(r, ids))
            .await
    }
    async fn switchover_global_cluster(
        &self,
        r: &crate::types::Region,
        id: &crate::types::GlobalClusterId,
        t: &str,
    ) -> Result<(), CloudError> {
        self.mutate(|| self.inner.switchover_global_cluster(r, id, t))
            .await
    }
    async fn failover_global_cluster(
        &self,
        r: &crate::types::Region,
        id: &crate::types::GlobalClusterId,
        t: &str,
    ) -> Result<(), CloudError> {
        self.mutate(|| self.inner.failover_global_cluster(r, id, t))
            .await
    }
}

#[async_trait]
impl Dns for Retrying<dyn Dns> {
    async fn find_hosted_zone(&self, z: &str) -> Result<HostedZone, CloudError> {
        self.read(|| self.inner.find_hosted_zone(z)).await
    }
    async fn list_record_sets(&self, z: &str) -> Result<Vec<RecordSet>, CloudError> {
        self.read(|| self.inner.list_record_sets(z)).await
    }
    async fn change_record_sets(
        &self,
        z: &str,
        c: &str,
        ch: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError> {
        self.mutate(|| self.inner.change_record_sets(z, c, ch))
            .await
    }
    async fn get_change(&self, id: &str) -> Result<ChangeInfo, CloudError> {
        self.read(|| self.inner.get_change(id)).await
    }
}

#[async_trait]
impl ZonalShifts for Retrying<dyn ZonalShifts> {
    async fn get_managed_resource(&self, arn: &str) -> Result<ManagedResource, CloudError> {
        self.read(|| self.inner.get_managed_resource(arn)).await
    }
    async fn list_zonal_shifts(&self, arn: &str) -> Result<Vec<ZonalShift>, CloudError> {
        self.read(|| self.inner.list_zonal_shifts(arn)).await
    }
    async fn start_zonal_shift(
        &self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> Result<ZonalShift, CloudError> {
        self.mutate(|| {
            self.inner
                .start_zonal_shift(arn, away_from, expires_in, comment)
        })
        .await
    }
    async fn cancel_zonal_shift(&self, id: &str) -> Result<Option<ZonalShift>, CloudError> {
        self.mutate(|| self.inner.cancel_zonal_shift(id)).await
    }
}

/// `failover discover`'s listing: read-only, so throttling and transient errors are retried.
#[async_trait]
impl Inventory for Retrying<dyn Inventory> {
    async fn list_clusters(&self) -> Result<Vec<ClusterListing>, CloudError> {
        self.read(|| self.inner.list_clusters()).await
    }
    async fn list_instances(&self) -> Result<Vec<InstanceListing>, CloudError> {
        self.read(|| self.inner.list_instances()).await
    }
    async fn list_hosted_zones(&self) -> Result<Vec<HostedZone>, CloudError> {
        self.read(|| self.inner.list_hosted_zones()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_retries_mutations() {
        let t = CloudError::new(ErrorKind::Throttled, "FailoverDBCluster", "c", "slow down");
        let x = CloudError::new(ErrorKind::Transient, "FailoverDBCluster", "c", "500");
        assert!(should_retry(CallKind::Mutate, &t));
        assert!(!should_retry(CallKind::Mutate, &x));
        assert!(should_retry(CallKind::Read, &x));
        let d = CloudError::new(ErrorKind::AccessDenied, "DescribeDBClusters", "c", "no");
        assert!(!should_retry(CallKind::Read, &d));
    }

    #[test]
    fn delay_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..12 {
            let d = p.delay(attempt, &mut rng);
            assert!(d <= Duration::from_secs(1), "{d:?}");
        }
    }
}
