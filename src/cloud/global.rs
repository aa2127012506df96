//! Aurora Global Database vocabulary: a global cluster as DescribeGlobalClusters reports it
//! (its member clusters, which region each is in, which one is the writer, a switchover or
//! failover under way), and the replication lag read at a promotion (the data at risk).

use crate::types::{GlobalClusterId, Region};
use serde::{Deserialize, Serialize};

/// One member cluster of a global cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMember {
    /// The member cluster's ARN (`arn:aws:rds:us-east-1:123456789012:cluster:orders-east`).
    pub cluster_arn: String,
    /// Its region, read from the ARN.
    pub region: Region,
    /// The primary cluster (the one that takes writes).
    pub is_writer: bool,
}

/// A switchover or failover under way (`FailoverState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalFailoverState {
    /// `pending`, `failing-over` or `cancelling`.
    pub status: String,
    pub from_region: Option<Region>,
    pub to_region: Option<Region>,
    /// True for a failover (FailoverGlobalCluster with AllowDataLoss), false for a switchover.
    pub data_loss_allowed: bool,
}

/// Observed state of a global cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalClusterState {
    pub id: GlobalClusterId,
    /// `available`, `switching-over`, `failing-over`, `modifying`, ...
    pub status: super::DbStatus,
    pub members: Vec<GlobalMember>,
    /// Set while a switchover or failover is under way.
    pub failover: Option<GlobalFailoverState>,
}

impl GlobalClusterState {
    pub fn writer(&self) -> Option<&GlobalMember> {
        self.members.iter().find(|m| m.is_writer)
    }

    pub fn member_in(&self, region: &Region) -> Option<&GlobalMember> {
        self.members.iter().find(|m| &m.region == region)
    }

    /// The writer is in `region`, the global cluster is `available` and nothing is under way:
    /// the new primary takes writes.
    pub fn writable_in(&self, region: &Region) -> bool {
        self.writer().is_some_and(|w| &w.region == region)
            && self.status.is_available()
            && self.failover.is_none()
    }
}

/// The region of an RDS ARN (`arn:PARTITION:rds:REGION:ACCOUNT:cluster:NAME`).
pub fn region_of_arn(arn: &str) -> Option<Region> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "rds", region, ..] if !region.is_empty() => Some(Region::new(*region)),
        _ => None,
    }
}

/// The replication lag read right before a promotion: how much of the old primary's writes
/// may be lost (global: `AuroraGlobalDBRPOLag` / `AuroraGlobalDBReplicationLag`; regional:
/// the promoted reader's `AuroraReplicaLag`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    /// The CloudWatch metric read.
    pub metric: String,
    /// Milliseconds, the latest datapoint; `None`: no datapoint (see `why`).
    pub ms: Option<f64>,
    /// Why no figure: the metric had no datapoint, the read failed, ...
    pub why: Option<String>,
}

impl Lag {
    /// "data at risk: about 1.2 s of writes (AuroraGlobalDBRPOLag)" or why it is not known.
    pub fn describe(&self) -> String {
        match (self.ms, &self.why) {
            (Some(ms), _) => format!(
                "data at risk: about {} of writes ({})",
                human_ms(ms),
                self.metric
            ),
            (None, Some(why)) => format!("data at risk unknown: {} ({why})", self.metric),
            (None, None) => format!("data at risk unknown: {} has no datapoint", self.metric),
        }
    }
}

/// `850 ms`, `1.2 s`, `95 s`.
fn human_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_the_arn() {
        assert_eq!(
            region_of_arn("arn:aws:rds:us-east-1:123456789012:cluster:orders-east"),
            Some(Region::from("us-east-1"))
        );
        assert_eq!(
            region_of_arn("arn:aws-us-gov:rds:us-gov-west-1:1:cluster:x"),
            Some(Region::from("us-gov-west-1"))
        );
        assert_eq!(region_of_arn("orders-east"), None);
        assert_eq!(region_of_arn("arn:aws:ec2:us-east-1:1:instance/i"), None);
    }
}
