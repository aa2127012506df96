//! AWS's documented timings and quotas, in one place, each with its source. The client-side
//! rate limiter ([`super::rate`]) is sized from these quotas by default, the simulator's
//! topologies default to these timings and quotas, and `scripts/bench-scale` computes its
//! quota floor from the same figures. `docs/aws-model.md` lists them for people.
//!
//! Sources (see also `../shared/AWS_FACTS.md` of the project's brief):
//! - RDS API throttling: "burst 300 requests, 12 per second sustained, per account per region,
//!   shared with Aurora" (RDS User Guide, `CHAP_Limits`, "API throttling quotas").
//! - RDS Describe paging: `MaxRecords` 20 to 100, default 100 (RDS API Reference,
//!   DescribeDBClusters / DescribeDBInstances).
//! - Route 53 API throttling: an account-level token bucket, burst 50 and 10 per second
//!   (Route 53 Developer Guide, `DNSLimitations`, "throttling-api-requests").
//! - Route 53 change batches: at most 1,000 ResourceRecord elements and 32,000 characters of
//!   values per ChangeResourceRecordSets, an UPSERT counting twice; a change submitted while
//!   the previous one to the zone is still being processed can be refused with
//!   `PriorRequestNotComplete` (Route 53 API Reference, ChangeResourceRecordSets).
//! - ListResourceRecordSets: up to 300 record sets per page (`MaxItems`, default 300).
//! - Aurora cluster failover: "often under 30 s", "typically under 60 s" (Aurora User Guide,
//!   `Concepts.AuroraHighAvailability`).
//! - RDS Multi-AZ instance failover: "typically 60-120 s" (RDS User Guide,
//!   `Concepts.MultiAZ.Failover`).
//! - Route 53 change propagation: "within 60 seconds" PENDING to INSYNC (Route 53 API
//!   Reference, GetChange).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// RDS: tokens in a full bucket (one per API request, reads and writes alike).
pub const RDS_BURST: f64 = 300.0;
/// RDS: tokens added per second.
pub const RDS_REFILL_PER_S: f64 = 12.0;
/// Route 53: tokens in a full bucket (account level).
pub const ROUTE53_BURST: f64 = 50.0;
/// Route 53: tokens added per second.
pub const ROUTE53_REFILL_PER_S: f64 = 10.0;
/// Route 53: after a change to a hosted zone, how long the next change to the same zone may be
/// refused with `PriorRequestNotComplete`. Not published as a figure: the simulator and the
/// client-side limiter use one second, which the Route 53 API answers reliably within.
pub const ROUTE53_PRIOR_REQUEST_WINDOW: Duration = Duration::from_secs(1);
/// ResourceRecord elements per ChangeResourceRecordSets (an UPSERT counts twice).
pub const ROUTE53_MAX_RECORDS_PER_CHANGE: usize = 1000;
/// Characters of values per ChangeResourceRecordSets (an UPSERT counts twice).
pub const ROUTE53_MAX_VALUE_CHARS_PER_CHANGE: usize = 32_000;
/// Records per page of DescribeDBClusters / DescribeDBInstances / Describe*Snapshots.
pub const RDS_PAGE_SIZE: usize = 100;
/// Record sets per page of ListResourceRecordSets.
pub const ROUTE53_PAGE_SIZE: usize = 300;

/// Aurora FailoverDBCluster: from the call to the new writer (seconds, min and max).
pub const AURORA_FAILOVER_S: (u64, u64) = (20, 30);
/// Multi-AZ instance failover (RebootDBInstance with ForceFailover).
pub const MULTI_AZ_FAILOVER_S: (u64, u64) = (60, 120);
/// Manual snapshot, `creating` to `available` (small databases; grows with size).
pub const SNAPSHOT_CREATION_S: (u64, u64) = (120, 300);
/// Route 53 change, PENDING to INSYNC.
pub const ROUTE53_INSYNC_S: (u64, u64) = (10, 60);
/// Round trip of one AWS API call from inside the region (milliseconds).
pub const API_LATENCY_MS: (u64, u64) = (40, 160);

/// The client-side quotas: AWS's defaults unless an environment's `[quotas]` says otherwise
/// (an account with raised quotas, or a share of the account kept for other tools).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quotas {
    pub rds_burst: f64,
    pub rds_per_s: f64,
    pub route53_burst: f64,
    pub route53_per_s: f64,
    /// The least time between two changes to one hosted zone.
    pub route53_zone_interval: Duration,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            rds_burst: RDS_BURST,
            rds_per_s: RDS_REFILL_PER_S,
            route53_burst: ROUTE53_BURST,
            route53_per_s: ROUTE53_REFILL_PER_S,
            route53_zone_interval: ROUTE53_PRIOR_REQUEST_WINDOW,
        }
    }
}

/// A throttled API: each has one bucket per account (and region, for RDS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Rds,
    Route53,
}

/// Requests made to one API, by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCounts {
    pub reads: u64,
    pub mutations: u64,
    /// Answered `Throttled` (the request was not processed).
    pub throttled: u64,
    /// Failed otherwise (refused, not found, no answer, ...).
    pub failed: u64,
    /// Time requests spent waiting for a token, in milliseconds.
    pub waited_ms: u64,
}

impl ApiCounts {
    pub fn total(&self) -> u64 {
        self.reads + self.mutations
    }
}

/// Requests per API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub rds: ApiCounts,
    pub route53: ApiCounts,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.rds.total() + self.route53.total()
    }
    pub fn throttled(&self) -> u64 {
        self.rds.throttled + self.route53.throttled
    }
    /// One line for a report: `412 AWS calls (400 reads, 12 mutating; 0 throttled, 0 failed)`.
    pub fn line(&self) -> String {
        let reads = self.rds.reads + self.route53.reads;
        let muts = self.rds.mutations + self.route53.mutations;
        let failed = self.rds.failed + self.route53.failed;
        format!(
            "{} AWS call(s): {reads} read(s), {muts} mutating; {} throttled, {failed} failed \
             (RDS {}, Route 53 {})",
            self.total(),
            self.throttled(),
            self.rds.total(),
            self.route53.total()
        )
    }
    pub fn of(&mut self, api: Api) -> &mut ApiCounts {
        match api {
            Api::Rds => &mut self.rds,
            Api::Route53 => &mut self.route53,
        }
    }
}
