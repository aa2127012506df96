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
//! - Route 53 health checks: "interval 10 s or 30 s, failure threshold 1-10 (default 3)";
//!   an endpoint is unhealthy once more than 82% of the checkers fail it (Route 53 Developer
//!   Guide, `dns-failover-determining-health-of-endpoints`): detection takes about interval x
//!   threshold, 90 s with the defaults.
//! - CloudWatch alarms on standard (1-minute) metrics: the alarm goes to ALARM once
//!   `DatapointsToAlarm` periods of `EvaluationPeriods` breach; with the common 3 of 3 one-minute
//!   periods, 3 minutes after the failure starts (CloudWatch User Guide,
//!   `AlarmThatSendsEmail`, "Evaluating an alarm").
//! - HTTP probes from inside the region: a healthy load balancer answers in milliseconds; the
//!   simulator draws the same round trip as an AWS API call.
//! - ARC zonal shift: a shift takes effect "within seconds" once started, lasts 1 minute to 3
//!   days (`expiresIn`), at most one active customer shift per resource (ARC Developer Guide,
//!   `arc-zonal-shift`, StartZonalShift). ARC publishes no API request rate in the pages this
//!   project found (General Reference, `arc.html` lists resource quotas only): the limiter
//!   assumes a bucket of 10 requests refilled at 5 per second, the rate of other regional
//!   control planes of its size, so a run never bursts into it.
//! - CloudWatch API throttling: DescribeAlarms 9 transactions per second, GetMetricData 50
//!   (CloudWatch User Guide, `cloudwatch_limits`). The limiter paces both by the stricter.
//! - RDS Describe filters: the AWS adapter sends at most 100 values per filter (one
//!   chunk per call), as the simulator answers them.
//!
//! [`floor`] turns these figures into the *quota floor* of an evacuation: the least time and
//! the fewest calls AWS's quotas and timings allow for a given amount of work, whatever the
//! client. `scripts/bench-scale` compares the tool with it.

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
/// CloudWatch: tokens in a full bucket (DescribeAlarms' 9 TPS; GetMetricData allows 50).
pub const CLOUDWATCH_BURST: f64 = 9.0;
/// CloudWatch: tokens added per second.
pub const CLOUDWATCH_REFILL_PER_S: f64 = 9.0;
/// ARC zonal shift: tokens in a full bucket (assumed, see the module's sources).
pub const ARC_BURST: f64 = 10.0;
/// ARC zonal shift: tokens added per second (assumed).
pub const ARC_REFILL_PER_S: f64 = 5.0;
/// ARC zonal shift: from StartZonalShift to the load balancer sending the zone no new traffic
/// ("within seconds"; the simulator draws from this range).
pub const ARC_SHIFT_APPLIED_S: (u64, u64) = (2, 5);
/// Items per ListZonalShifts page (`MaxResults` up to 100).
pub const ARC_PAGE_SIZE: usize = 100;
/// Records per page of DescribeDBClusters / DescribeDBInstances / Describe*Snapshots.
pub const RDS_PAGE_SIZE: usize = 100;
/// Record sets per page of ListResourceRecordSets.
pub const ROUTE53_PAGE_SIZE: usize = 300;

/// Aurora FailoverDBCluster: from the call to the new writer (seconds, min and max).
pub const AURORA_FAILOVER_S: (u64, u64) = (20, 30);
/// Aurora Global Database SwitchoverGlobalCluster: from the call to the new primary taking
/// writes, when both regions cooperate (seconds). AWS: "duration proportional to replication
/// lag", the secondaries synchronised first, then a short unavailability (Aurora User Guide,
/// aurora-global-database-disaster-recovery, *Performing switchovers*); the simulator's
/// range is "a few minutes", its assumption.
pub const GLOBAL_SWITCHOVER_S: (u64, u64) = (90, 240);
/// Aurora Global Database FailoverGlobalCluster with AllowDataLoss: from the call to the
/// promoted secondary taking writes (seconds). AWS: managed failover "within a few minutes",
/// the promotion itself about a minute (same guide, *Recovering from an unplanned outage*);
/// works with the old primary's region down.
pub const GLOBAL_FAILOVER_S: (u64, u64) = (45, 90);
/// Aurora Global Database replication lag in normal operation (ms): "typically under a
/// second" (Aurora User Guide, *Using Amazon Aurora global databases*, overview).
pub const GLOBAL_REPLICATION_LAG_MS: (u64, u64) = (80, 900);
/// How fast the secondaries fall behind while the primary's region is impaired, in seconds
/// of writes per second (a region down: 1, nothing replicates). No AWS figure: the
/// simulator's assumption for a degraded data plane.
pub const GLOBAL_LAG_GROWTH_IMPAIRED: f64 = 0.5;
/// Share of the calls to an impaired region's API endpoints that fail (throttled or 5xx).
/// No AWS figure: the simulator's assumption for a control plane that is failing.
pub const REGION_IMPAIRED_FAILURE_RATE: f64 = 0.8;
/// An Aurora reader's lag behind its writer (ms): "usually much less than 100 ms"
/// (Aurora User Guide, *Replication with Amazon Aurora*).
pub const AURORA_REPLICA_LAG_MS: (u64, u64) = (10, 100);
/// Multi-AZ instance failover (RebootDBInstance with ForceFailover).
pub const MULTI_AZ_FAILOVER_S: (u64, u64) = (60, 120);
/// Manual snapshot, `creating` to `available` (small databases; grows with size).
pub const SNAPSHOT_CREATION_S: (u64, u64) = (120, 300);
/// Route 53 change, PENDING to INSYNC.
pub const ROUTE53_INSYNC_S: (u64, u64) = (10, 60);
/// Round trip of one AWS API call from inside the region (milliseconds).
pub const API_LATENCY_MS: (u64, u64) = (40, 160);
/// Route 53 health checks: default request interval.
pub const ROUTE53_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
/// Route 53 health checks: default failure threshold (consecutive failed checks).
pub const ROUTE53_HEALTH_CHECK_FAILURE_THRESHOLD: u32 = 3;
/// Checkers Route 53 uses for one health check (the status lists one per checker region).
pub const ROUTE53_HEALTH_CHECKERS: u32 = 16;
/// CloudWatch standard metrics: one datapoint per minute.
pub const CLOUDWATCH_PERIOD: Duration = Duration::from_secs(60);
/// CloudWatch alarms: breaching periods before ALARM (3 of 3 is the common setting).
pub const CLOUDWATCH_DATAPOINTS_TO_ALARM: u32 = 3;

/// How long after a zone fails a Route 53 health check on it turns unhealthy: interval x
/// failure threshold.
pub fn route53_health_check_detection() -> Duration {
    ROUTE53_HEALTH_CHECK_INTERVAL * ROUTE53_HEALTH_CHECK_FAILURE_THRESHOLD
}

/// How long after a zone fails a CloudWatch alarm on its metrics goes to ALARM.
pub fn cloudwatch_alarm_detection() -> Duration {
    CLOUDWATCH_PERIOD * CLOUDWATCH_DATAPOINTS_TO_ALARM
}

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
    #[serde(default = "arc_burst")]
    pub arc_burst: f64,
    #[serde(default = "arc_per_s")]
    pub arc_per_s: f64,
    #[serde(default = "cloudwatch_burst")]
    pub cloudwatch_burst: f64,
    #[serde(default = "cloudwatch_per_s")]
    pub cloudwatch_per_s: f64,
}

fn cloudwatch_burst() -> f64 {
    CLOUDWATCH_BURST
}

fn cloudwatch_per_s() -> f64 {
    CLOUDWATCH_REFILL_PER_S
}

fn arc_burst() -> f64 {
    ARC_BURST
}

fn arc_per_s() -> f64 {
    ARC_REFILL_PER_S
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            rds_burst: RDS_BURST,
            rds_per_s: RDS_REFILL_PER_S,
            route53_burst: ROUTE53_BURST,
            route53_per_s: ROUTE53_REFILL_PER_S,
            route53_zone_interval: ROUTE53_PRIOR_REQUEST_WINDOW,
            arc_burst: ARC_BURST,
            arc_per_s: ARC_REFILL_PER_S,
            cloudwatch_burst: CLOUDWATCH_BURST,
            cloudwatch_per_s: CLOUDWATCH_REFILL_PER_S,
        }
    }
}

/// A throttled API: each has one bucket per account (and region, for RDS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Rds,
    Route53,
    /// ARC zonal shift.
    Arc,
    /// CloudWatch: alarm states (health probes) and metrics (replication lag).
    CloudWatch,
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
    /// Add `o`'s counts to these.
    pub fn absorb(&mut self, o: &ApiCounts) {
        self.reads += o.reads;
        self.mutations += o.mutations;
        self.throttled += o.throttled;
        self.failed += o.failed;
        self.waited_ms += o.waited_ms;
    }

    pub fn total(&self) -> u64 {
        self.reads + self.mutations
    }
    pub fn is_zero(&self) -> bool {
        *self == ApiCounts::default()
    }
}

/// Requests per API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub rds: ApiCounts,
    pub route53: ApiCounts,
    /// ARC zonal shift requests (none unless a runbook has `arc.*` steps).
    #[serde(default, skip_serializing_if = "ApiCounts::is_zero")]
    pub arc: ApiCounts,
    /// CloudWatch reads (alarm probes of a health assertion, replication lag at a promotion).
    #[serde(default, skip_serializing_if = "ApiCounts::is_zero")]
    pub cloudwatch: ApiCounts,
}

impl CallCounts {
    fn each(&self) -> [&ApiCounts; 4] {
        [&self.rds, &self.route53, &self.arc, &self.cloudwatch]
    }

    /// Each service's counts with its name as metrics label it (`rds`, `route53`, `arc`,
    /// `cloudwatch`).
    pub fn services(&self) -> [(&'static str, &ApiCounts); 4] {
        [
            ("rds", &self.rds),
            ("route53", &self.route53),
            ("arc", &self.arc),
            ("cloudwatch", &self.cloudwatch),
        ]
    }

    pub fn reads(&self) -> u64 {
        self.each().iter().map(|c| c.reads).sum()
    }

    /// Add `o`'s counts to these, service by service.
    pub fn absorb(&mut self, o: &CallCounts) {
        self.rds.absorb(&o.rds);
        self.route53.absorb(&o.route53);
        self.arc.absorb(&o.arc);
        self.cloudwatch.absorb(&o.cloudwatch);
    }

    pub fn total(&self) -> u64 {
        self.each().iter().map(|c| c.total()).sum()
    }
    pub fn throttled(&self) -> u64 {
        self.each().iter().map(|c| c.throttled).sum()
    }
    /// One line for a report: `412 AWS calls (400 reads, 12 mutating; 0 throttled, 0 failed)`.
    pub fn line(&self) -> String {
        let reads = self.reads();
        let muts: u64 = self.each().iter().map(|c| c.mutations).sum();
        let failed: u64 = self.each().iter().map(|c| c.failed).sum();
        let mut others = String::new();
        for (name, c) in [("ARC", &self.arc), ("CloudWatch", &self.cloudwatch)] {
            if !c.is_zero() {
                others.push_str(&format!(", {name} {}", c.total()));
            }
        }
        format!(
            "{} AWS call(s): {reads} read(s), {muts} mutating; {} throttled, {failed} failed \
             (RDS {}, Route 53 {}{others})",
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
            Api::Arc => &mut self.arc,
            Api::CloudWatch => &mut self.cloudwatch,
        }
    }
}

/// Values per Describe filter the AWS adapter sends in one call (and the simulator accepts).
pub const RDS_FILTER_CHUNK: usize = 100;

/// The work of an AZ evacuation, as the floor counts it (the stock runbook `az-evacuation`:
/// fail over every writer in the failed zone, then repoint every record, then snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Aurora clusters the runbook's groups hold (all observed once).
    pub clusters: usize,
    /// Their instances (writer and readers).
    pub cluster_instances: usize,
    /// Clusters whose writer is in the failed zone: one FailoverDBCluster each.
    pub failovers: usize,
    /// Snapshots the runbook takes: one CreateDB*Snapshot each (background).
    pub snapshots: usize,
    /// Record sets in the hosted zone (listed once).
    pub record_sets: usize,
    /// Records to repoint: one UPSERT each.
    pub upserts: usize,
    /// ResourceRecord elements and characters of values of those UPSERTs, each counted twice
    /// as Route 53 counts an UPSERT.
    pub upsert_elements: usize,
    pub upsert_chars: usize,
}

/// The least an evacuation can cost under AWS's quotas and timings ([`floor`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Floor {
    /// Fewest calls: the observation once (paged), each mutation once, one confirming read of
    /// the failovers, one GetChange per change batch.
    pub calls: CallCounts,
    /// RDS calls before the last FailoverDBCluster (the observation and the failovers), and
    /// the seconds the RDS bucket needs to allow them.
    pub rds_calls_before_last_failover: u64,
    pub rds_quota_time: Duration,
    /// Change batches to the hosted zone, and the seconds they take (the zone's spacing and
    /// the Route 53 bucket).
    pub change_batches: u64,
    pub dns_time: Duration,
    /// Last writer and record out of the failed zone: RDS quota time + the slowest failover
    /// + the DNS batches (the runbook repoints records once the failovers are done).
    pub recover: Duration,
    /// The same, up to every Route 53 change INSYNC (+ the slowest propagation).
    pub insync: Duration,
    /// A stricter bound when each record moves as soon as its own database has
    /// (`records_after`): the other records' batches fit while the failovers run, so the last
    /// record out follows the last failover with no batch spacing: RDS quota time + the
    /// slowest failover.
    pub recover_records_after: Duration,
}

/// Calls of a paged Describe of `items` results asked by `ids` filter values: one call per
/// chunk of [`RDS_FILTER_CHUNK`] ids, each chunk's results in pages of [`RDS_PAGE_SIZE`]
/// (results spread evenly over the ids).
pub fn describe_pages(ids: usize, items: usize) -> u64 {
    if ids == 0 {
        return 0;
    }
    let mut calls = 0u64;
    let mut left_ids = ids;
    let mut left_items = items;
    while left_ids > 0 {
        let chunk = left_ids.min(RDS_FILTER_CHUNK);
        let chunk_items = (left_items * chunk).div_ceil(left_ids);
        calls += chunk_items.div_ceil(RDS_PAGE_SIZE).max(1) as u64;
        left_ids -= chunk;
        left_items -= chunk_items.min(left_items);
    }
    calls
}

/// Seconds a token bucket (`burst`, `per_s`) needs to allow `calls` requests from full.
fn bucket_time(calls: u64, burst: f64, per_s: f64) -> Duration {
    let over = (calls as f64 - burst).max(0.0);
    Duration::from_secs_f64(over / per_s.max(f64::MIN_POSITIVE))
}

/// The quota floor of an evacuation under quotas `q`, with `failover` the slowest
/// FailoverDBCluster and `insync` the slowest Route 53 propagation (AWS's figures:
/// [`AURORA_FAILOVER_S`]`.1`, [`ROUTE53_INSYNC_S`]`.1`).
///
/// - RDS: the observation (DescribeDBClusters and DescribeDBInstances pages) and the
///   failovers share one bucket: `max(0, calls - burst) / refill` seconds until the last
///   FailoverDBCluster is accepted; the slowest failover completes `failover` later. Round
///   trips are not counted (they overlap).
/// - Route 53: the records are repointed once the failovers are done (the runbook's order);
///   batches hold at most [`ROUTE53_MAX_RECORDS_PER_CHANGE`] elements and
///   [`ROUTE53_MAX_VALUE_CHARS_PER_CHANGE`] characters (an UPSERT counting twice); changes
///   to one zone are spaced by the prior-request window, and take tokens from the Route 53
///   bucket (full again by then: the zone was listed at the start).
/// - Snapshots are background calls after the failovers: they add calls, not time.
///
/// The fewest calls: the observation once, each mutation once, one DescribeDBClusters pass
/// confirming the failovers, one Describe*Snapshots pass before snapshotting, one hosted zone
/// lookup and listing, one GetChange per batch.
pub fn floor(w: &Workload, q: &Quotas, failover: Duration, insync: Duration) -> Floor {
    let observe =
        describe_pages(w.clusters, w.clusters) + describe_pages(w.clusters, w.cluster_instances);
    let confirm = describe_pages(w.failovers, w.failovers);
    let snapshot_reads = describe_pages(w.snapshots, w.snapshots);
    let batches = w
        .upsert_elements
        .div_ceil(ROUTE53_MAX_RECORDS_PER_CHANGE)
        .max(w.upsert_chars.div_ceil(ROUTE53_MAX_VALUE_CHARS_PER_CHANGE))
        .max(usize::from(w.upserts > 0)) as u64;
    let listing = 1 + (w.record_sets.div_ceil(ROUTE53_PAGE_SIZE).max(1)) as u64;
    let calls = CallCounts {
        rds: ApiCounts {
            reads: observe + confirm + snapshot_reads,
            mutations: (w.failovers + w.snapshots) as u64,
            ..ApiCounts::default()
        },
        route53: ApiCounts {
            reads: listing + batches,
            mutations: batches,
            ..ApiCounts::default()
        },
        arc: ApiCounts::default(),
        cloudwatch: ApiCounts::default(),
    };
    let before_last = observe + w.failovers as u64;
    let rds_quota_time = if w.failovers == 0 {
        Duration::ZERO
    } else {
        bucket_time(before_last, q.rds_burst, q.rds_per_s)
    };
    let spacing = q.route53_zone_interval * (batches.saturating_sub(1) as u32);
    let dns_time = spacing.max(bucket_time(batches, q.route53_burst, q.route53_per_s));
    let failover = if w.failovers == 0 {
        Duration::ZERO
    } else {
        failover
    };
    let recover = rds_quota_time + failover + dns_time;
    Floor {
        calls,
        rds_calls_before_last_failover: before_last,
        rds_quota_time,
        change_batches: batches,
        dns_time,
        recover,
        insync: recover + if batches == 0 { Duration::ZERO } else { insync },
        recover_records_after: rds_quota_time + failover,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_line_names_arc_and_cloudwatch_only_when_used() {
        let mut c = CallCounts::default();
        c.rds.reads = 3;
        c.rds.mutations = 1;
        c.route53.reads = 2;
        assert_eq!(
            c.line(),
            "6 AWS call(s): 5 read(s), 1 mutating; 0 throttled, 0 failed (RDS 4, Route 53 2)"
        );
        c.cloudwatch.reads = 4;
        c.cloudwatch.throttled = 1;
        assert_eq!(c.line(), "10 AWS call(s): 9 read(s), 1 mutating; 1 throttled, 0 failed (RDS 4, Route 53 2, CloudWatch 4)");
        assert_eq!(c.reads(), 9);
        let back: CallCounts =
            serde_json::from_value(serde_json::json!({"rds": c.rds, "route53": c.route53}))
                .unwrap();
        assert!(
            back.cloudwatch.is_zero(),
            "a note written before CloudWatch was counted still reads"
        );
    }

    #[test]
    fn pages_follow_the_filter_chunks_and_the_page_size() {
        assert_eq!(describe_pages(0, 0), 0);
        assert_eq!(describe_pages(250, 250), 3, "3 chunks of at most 100 ids");
        assert_eq!(
            describe_pages(500, 1500),
            15,
            "5 chunks of 300 instances, 3 pages each"
        );
        assert_eq!(describe_pages(1, 0), 1, "an empty answer is still a call");
    }

    /// The example: 500 clusters (3 instances each) and 5,000 one-value records.
    #[test]
    fn the_floor_of_500_clusters_and_5000_records() {
        let w = Workload {
            clusters: 500,
            cluster_instances: 1500,
            failovers: 500,
            snapshots: 500,
            record_sets: 5000,
            upserts: 5000,
            upsert_elements: 10_000,
            upsert_chars: 10_000 * 30,
        };
        let f = floor(
            &w,
            &Quotas::default(),
            Duration::from_secs(30),
            Duration::from_secs(60),
        );
        // 5 + 15 observation pages + 500 failovers: (520 - 300) / 12 s.
        assert_eq!(f.rds_calls_before_last_failover, 520);
        assert!((f.rds_quota_time.as_secs_f64() - 220.0 / 12.0).abs() < 1e-9);
        // 10,000 elements and 300,000 characters: 10 batches, 9 s of spacing.
        assert_eq!(f.change_batches, 10);
        assert_eq!(f.dns_time, Duration::from_secs(9));
        assert!((f.recover.as_secs_f64() - (220.0 / 12.0 + 30.0 + 9.0)).abs() < 1e-9);
        assert_eq!(f.insync, f.recover + Duration::from_secs(60));
        assert_eq!(f.recover_records_after, f.recover - Duration::from_secs(9));
        // 20 + 5 + 5 RDS reads, 1000 RDS mutations; 1 + 17 + 10 Route 53 reads, 10 changes.
        assert_eq!(f.calls.rds.reads, 30);
        assert_eq!(f.calls.rds.mutations, 1000);
        assert_eq!((f.calls.route53.reads, f.calls.route53.mutations), (28, 10));
    }
}
