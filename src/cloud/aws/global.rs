//! Aurora Global Database adapter: [`AwsGlobalDatabases`] implements the `GlobalDatabases`
//! port with one `aws-sdk-rds` client per region, so each call goes to the endpoint of the
//! region it names (the recovery region in an evacuation: the failed region's control plane
//! may be down). Each region's calls are paced by that region's limiter (RDS quotas are per
//! account and region). [`AwsMetrics`] reads the replication lag from CloudWatch, per region.
//!
//! DescribeGlobalClusters takes one identifier per call (no filter by id): one call per global
//! cluster, `GlobalClusterNotFoundFault` read as absent.

use super::config::{sdk_config, AwsSettings};
use super::error::cloud_error;
use crate::cloud::global::region_of_arn;
use crate::cloud::rate::{Api, Class, MeterSet, Quotas, RateLimiter};
use crate::cloud::{
    Clock, CloudError, DbStatus, ErrorKind, GlobalClusterState, GlobalDatabases,
    GlobalFailoverState, GlobalMember, Metrics,
};
use crate::types::{GlobalClusterId, Region};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds a region's clients on first use.
#[derive(Clone, Debug)]
enum Source {
    /// Clients made from these settings (the region replaced), limiters on this clock.
    Settings {
        settings: AwsSettings,
        quotas: crate::cloud::model::Quotas,
    },
    /// Only the given clients (tests): a region without one is an error.
    Fixed,
}

/// The `GlobalDatabases` port: one RDS client and one limiter per region.
pub struct AwsGlobalDatabases {
    source: Source,
    clock: Arc<dyn Clock>,
    clients: Mutex<BTreeMap<Region, (aws_sdk_rds::Client, Arc<RateLimiter>)>>,
    /// Where the per-region limiters' calls are summed with the process's own.
    meter: Option<Arc<MeterSet>>,
}

impl AwsGlobalDatabases {
    /// Clients for any region, built from `settings` (profile, endpoint, timeouts) on first use.
    pub fn new(
        settings: AwsSettings,
        quotas: crate::cloud::model::Quotas,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            source: Source::Settings { settings, quotas },
            clock,
            clients: Mutex::new(BTreeMap::new()),
            meter: None,
        }
    }

    /// Count the calls of each region's limiter in `meter` too.
    pub fn metered(mut self, meter: Arc<MeterSet>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Exactly these clients, one per region (e.g. built by `aws-smithy-mocks` in tests).
    pub fn from_clients(clients: Vec<(Region, aws_sdk_rds::Client)>) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let map = clients
            .into_iter()
            .map(|(r, c)| {
                let l = Arc::new(RateLimiter::new(Default::default(), clock.clone()));
                (r, (c, l))
            })
            .collect();
        Self {
            source: Source::Fixed,
            clock,
            clients: Mutex::new(map),
            meter: None,
        }
    }

    async fn client(
        &self,
        region: &Region,
        op: &str,
        resource: &str,
    ) -> Result<(aws_sdk_rds::Client, Arc<RateLimiter>), CloudError> {
        if let Some(c) = self.lock().get(region).cloned() {
            return Ok(c);
        }
        let Source::Settings { settings, quotas } = &self.source else {
            return Err(CloudError::new(
                ErrorKind::InvalidRequest,
                op,
                resource,
                format!("no RDS client for region {region}"),
            ));
        };
        let mut s = settings.clone();
        s.region = region.to_string();
        let client = aws_sdk_rds::Client::new(&sdk_config(&s).await);
        let limiter = Arc::new(RateLimiter::new(quotas.clone(), self.clock.clone()));
        if let Some(m) = &self.meter {
            m.add(limiter.clone());
        }
        let mut map = self.lock();
        Ok(map
            .entry(region.clone())
            .or_insert((client, limiter))
            .clone())
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<Region, (aws_sdk_rds::Client, Arc<RateLimiter>)>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn global_state(g: &aws_sdk_rds::types::GlobalCluster, id: &GlobalClusterId) -> GlobalClusterState {
    let members = g
        .global_cluster_members()
        .iter()
        .filter_map(|m| {
            let arn = m.db_cluster_arn()?.to_string();
            Some(GlobalMember {
                region: region_of_arn(&arn)?,
                cluster_arn: arn,
                is_writer: m.is_writer().unwrap_or(false),
            })
        })
        .collect();
    let failover = g.failover_state().and_then(|f| {
        let status = f.status()?.as_str().to_string();
        Some(GlobalFailoverState {
            status,
            from_region: f.from_db_cluster_arn().and_then(region_of_arn),
            to_region: f.to_db_cluster_arn().and_then(region_of_arn),
            data_loss_allowed: f.is_data_loss_allowed().unwrap_or(false),
        })
    });
    GlobalClusterState {
        id: id.clone(),
        status: DbStatus::from(g.status().unwrap_or_default()),
        members,
        failover,
    }
}

#[async_trait]
impl GlobalDatabases for AwsGlobalDatabases {
    async fn describe_global_clusters(
        &self,
        region: &Region,
        ids: &[GlobalClusterId],
    ) -> Result<Vec<GlobalClusterState>, CloudError> {
        const OP: &str = "DescribeGlobalClusters";
        let mut out = vec![];
        for id in ids {
            let (client, limiter) = self.client(region, OP, id.as_str()).await?;
            let req = client
                .describe_global_clusters()
                .global_cluster_identifier(id.as_str());
            let r = limiter
                .call(Api::Rds, Class::Read, || async {
                    req.send()
                        .await
                        .map_err(|e| cloud_error(OP, id.as_str(), &e))
                })
                .await;
            match r {
                Ok(o) => out.extend(
                    o.global_clusters()
                        .iter()
                        .filter(|g| {
                            g.global_cluster_identifier()
                                .is_some_and(|x| x.eq_ignore_ascii_case(id.as_str()))
                        })
                        .map(|g| global_state(g, id)),
                ),
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn switchover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "SwitchoverGlobalCluster";
        let resource = format!("{id} (target {target_arn})");
        let (client, limiter) = self.client(region, OP, &resource).await?;
        let req = client
            .switchover_global_cluster()
            .global_cluster_identifier(id.as_str())
            .target_db_cluster_identifier(target_arn);
        limiter
            .call(Api::Rds, Class::Mutate, || async {
                req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
            })
            .await?;
        Ok(())
    }

    async fn failover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "FailoverGlobalCluster";
        let resource = format!("{id} (target {target_arn})");
        let (client, limiter) = self.client(region, OP, &resource).await?;
        let req = client
            .failover_global_cluster()
            .global_cluster_identifier(id.as_str())
            .target_db_cluster_identifier(target_arn)
            .allow_data_loss(true);
        limiter
            .call(Api::Rds, Class::Mutate, || async {
                req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
            })
            .await?;
        Ok(())
    }
}

/// The `Metrics` port: GetMetricStatistics on one CloudWatch client per region.
pub struct AwsMetrics {
    settings: Option<AwsSettings>,
    clients: Mutex<BTreeMap<Region, aws_sdk_cloudwatch::Client>>,
    clock: Arc<dyn Clock>,
    /// Paces and counts the reads (CloudWatch's bucket; quotas are per region, and these
    /// reads are a handful per promotion).
    limiter: Arc<RateLimiter>,
}

impl AwsMetrics {
    pub fn new(settings: AwsSettings, clock: Arc<dyn Clock>, limiter: Arc<RateLimiter>) -> Self {
        Self {
            settings: Some(settings),
            clients: Mutex::new(BTreeMap::new()),
            clock,
            limiter,
        }
    }

    /// Exactly these clients (tests).
    pub fn from_clients(clients: Vec<(Region, aws_sdk_cloudwatch::Client)>) -> Self {
        Self {
            settings: None,
            clients: Mutex::new(clients.into_iter().collect()),
            clock: Arc::new(crate::clock::SystemClock),
            limiter: RateLimiter::on_wall_clock(Quotas::default()),
        }
    }

    async fn client(&self, region: &Region) -> Result<aws_sdk_cloudwatch::Client, CloudError> {
        if let Some(c) = self.lock().get(region).cloned() {
            return Ok(c);
        }
        let Some(settings) = &self.settings else {
            return Err(CloudError::new(
                ErrorKind::InvalidRequest,
                "GetMetricStatistics",
                region.as_str(),
                format!("no CloudWatch client for region {region}"),
            ));
        };
        let mut s = settings.clone();
        s.region = region.to_string();
        let c = aws_sdk_cloudwatch::Client::new(&sdk_config(&s).await);
        Ok(self.lock().entry(region.clone()).or_insert(c).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Region, aws_sdk_cloudwatch::Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Metrics for AwsMetrics {
    async fn latest_rds_metric(
        &self,
        region: &Region,
        metric: &str,
        dimension: (&str, &str),
        window: Duration,
    ) -> Result<Option<f64>, CloudError> {
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        const OP: &str = "GetMetricStatistics";
        let client = self.client(region).await?;
        let now = self.clock.now();
        let start = now.checked_sub(window).unwrap_or(now);
        let resource = format!("{metric} {}={}", dimension.0, dimension.1);
        let req = client
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name(dimension.0)
                    .value(dimension.1)
                    .build(),
            )
            .start_time(aws_smithy_types::DateTime::from(start))
            .end_time(aws_smithy_types::DateTime::from(now))
            .period(60)
            .statistics(Statistic::Maximum);
        let out = self
            .limiter
            .call(Api::CloudWatch, Class::Read, || async {
                req.send().await.map_err(|e| cloud_error(OP, &resource, &e))
            })
            .await?;
        let latest = out
            .datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.as_secs_f64(), d.maximum()?)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, v)| v);
        Ok(latest)
    }
}
