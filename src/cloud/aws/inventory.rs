//! The `Inventory` port with the AWS SDK: every DB cluster, DB instance and hosted zone of an
//! account, for `failover discover`. Read-only, paged (markers followed, loops detected) and
//! paced by the process's limiter like every other call.

use super::error::cloud_error;
use super::rds::{follow_markers, instance_state, PAGE_SIZE};
use crate::cloud::rate::{Api, Class, RateLimiter};
use crate::cloud::{CloudError, ClusterListing, ErrorKind, HostedZone, InstanceListing, Inventory};
use crate::types::{ClusterId, InstanceId};
use async_trait::async_trait;
use std::sync::Arc;

/// Hosted zones per ListHostedZones page (the API's maximum).
const ZONE_PAGE: i32 = 100;
/// More pages than this of hosted zones is a peer that does not page.
const MAX_ZONE_PAGES: usize = 1_000;

pub struct AwsInventory {
    rds: aws_sdk_rds::Client,
    r53: aws_sdk_route53::Client,
    limiter: Arc<RateLimiter>,
}

impl AwsInventory {
    pub fn new(
        rds: aws_sdk_rds::Client,
        r53: aws_sdk_route53::Client,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self { rds, r53, limiter }
    }
}

fn tags(list: &[aws_sdk_rds::types::Tag]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

impl AwsInventory {
    /// Every item of a paged RDS listing: `send` makes the request for one marker and returns
    /// the page's items and next marker; each page is paced by the limiter as one read.
    async fn rds_listing<T, F, Fut>(&self, op: &'static str, send: F) -> Result<Vec<T>, CloudError>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), CloudError>>,
    {
        follow_markers(op, "*", |marker| {
            let page = send(marker);
            let limiter = self.limiter.clone();
            async move { limiter.call(Api::Rds, Class::Read, || page).await }
        })
        .await
    }
}

#[async_trait]
impl Inventory for AwsInventory {
    async fn list_clusters(&self) -> Result<Vec<ClusterListing>, CloudError> {
        const OP: &str = "DescribeDBClusters";
        let clusters = self
            .rds_listing(OP, |marker| {
                let req = self.rds.describe_db_clusters().max_records(PAGE_SIZE);
                async move {
                    let o = req
                        .set_marker(marker)
                        .send()
                        .await
                        .map_err(|e| cloud_error(OP, "*", &e))?;
                    Ok((o.db_clusters().to_vec(), o.marker().map(str::to_string)))
                }
            })
            .await?;
        Ok(clusters
            .iter()
            .filter_map(|c| {
                Some(ClusterListing {
                    id: ClusterId::new(c.db_cluster_identifier()?),
                    engine: c.engine().unwrap_or_default().to_string(),
                    members: c
                        .db_cluster_members()
                        .iter()
                        .filter_map(|m| m.db_instance_identifier().map(InstanceId::new))
                        .collect(),
                    tags: tags(c.tag_list()),
                })
            })
            .collect())
    }

    async fn list_instances(&self) -> Result<Vec<InstanceListing>, CloudError> {
        const OP: &str = "DescribeDBInstances";
        let instances = self
            .rds_listing(OP, |marker| {
                let req = self.rds.describe_db_instances().max_records(PAGE_SIZE);
                async move {
                    let o = req
                        .set_marker(marker)
                        .send()
                        .await
                        .map_err(|e| cloud_error(OP, "*", &e))?;
                    Ok((o.db_instances().to_vec(), o.marker().map(str::to_string)))
                }
            })
            .await?;
        Ok(instances
            .iter()
            .filter_map(|i| {
                let id = i.db_instance_identifier()?;
                Some(InstanceListing {
                    state: instance_state(i, id, i.db_cluster_identifier()),
                    tags: tags(i.tag_list()),
                    replica_of: i
                        .read_replica_source_db_instance_identifier()
                        .map(str::to_string),
                })
            })
            .collect())
    }

    async fn list_hosted_zones(&self) -> Result<Vec<HostedZone>, CloudError> {
        const OP: &str = "ListHostedZones";
        let mut out = vec![];
        let mut marker: Option<String> = None;
        for _ in 0..MAX_ZONE_PAGES {
            let req = self
                .r53
                .list_hosted_zones()
                .max_items(ZONE_PAGE)
                .set_marker(marker.clone());
            let page = self
                .limiter
                .call(Api::Route53, Class::Read, || async {
                    req.send().await.map_err(|e| cloud_error(OP, "*", &e))
                })
                .await?;
            out.extend(page.hosted_zones().iter().map(super::route53::hosted_zone));
            match page.next_marker().filter(|_| page.is_truncated()) {
                None => return Ok(out),
                Some(m) if Some(m) == marker.as_deref() => break,
                Some(m) => marker = Some(m.to_string()),
            }
        }
        Err(CloudError::new(
            ErrorKind::Other,
            OP,
            "*",
            "the peer kept returning pages of hosted zones; stopped paging",
        ))
    }
}
