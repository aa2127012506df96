//! Leases, as pure data and rules: which resources a run may change (the keys of its bound
//! steps), what a lease record holds, and when one is live. The store (`journal`) grants, renews,
//! takes over and releases them atomically and checks the fencing token with every intent.
//!
//! A key names a resource the way AWS does, whatever environment names it: two environments
//! that point at one cluster contend for one lease.

use crate::call::Call;
use crate::runbook::bind::{BoundAction, BoundStep, SnapshotTarget};
use crate::traffic::{BoundLadder, BoundTierAction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// A resource a run may change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseKey(pub String);

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl LeaseKey {
    pub fn cluster(region: &str, id: &str) -> Self {
        Self(format!("rds-cluster:{region}:{id}"))
    }
    pub fn instance(region: &str, id: &str) -> Self {
        Self(format!("rds-instance:{region}:{id}"))
    }
    /// An ARC managed resource (its ARN names its region).
    pub fn zonal_resource(arn: &str) -> Self {
        Self(format!("arc-resource:{arn}"))
    }
    /// A global cluster is one resource across its regions: one key, named by no region.
    pub fn global_cluster(id: &str) -> Self {
        Self(format!("rds-global-cluster:{id}"))
    }
    /// Every record set of a name and type (all its set identifiers).
    pub fn record(name: &str, rtype: &str) -> Self {
        Self(format!(
            "route53-record:{}:{}",
            crate::cloud::normalize_dns_name(name),
            rtype.to_ascii_uppercase()
        ))
    }
    pub fn ladder(environment: &str) -> Self {
        Self(format!("traffic-ladder:{environment}"))
    }
    /// The lead among the watchers of an environment (only its holder starts runs).
    pub fn watcher(environment: &str) -> Self {
        Self(format!("watcher:{environment}"))
    }
}

/// Every resource the steps of a run may change: the clusters and instances of its failover
/// and snapshot steps, the records of its DNS steps, its traffic ladder and the records of the
/// ladder's weight tiers. Derived from the bound steps, not from an observation, so a run that
/// cannot read the world still knows what it must lease.
pub fn keys_of(steps: &[BoundStep], region: &str) -> BTreeSet<LeaseKey> {
    let mut out = BTreeSet::new();
    for s in steps.iter().filter(|s| s.enabled) {
        match &s.action {
            BoundAction::FailoverCluster { clusters, .. } => out.extend(
                clusters
                    .iter()
                    .map(|c| LeaseKey::cluster(region, c.as_str())),
            ),
            BoundAction::FailoverInstance { instances, .. } => out.extend(
                instances
                    .iter()
                    .map(|i| LeaseKey::instance(region, i.as_str())),
            ),
            BoundAction::Snapshot { targets, .. } => out.extend(targets.iter().map(|t| match t {
                SnapshotTarget::Cluster { id } => LeaseKey::cluster(region, id.as_str()),
                SnapshotTarget::Instance { id } => LeaseKey::instance(region, id.as_str()),
            })),
            BoundAction::DnsUpdate { records, .. } => {
                out.extend(records.iter().map(|r| LeaseKey::record(&r.name, &r.rtype)))
            }
            BoundAction::RestoreRecords { restore, .. } => out.extend(
                restore
                    .iter()
                    .map(|r| LeaseKey::record(&r.key.name, &r.key.rtype)),
            ),
            BoundAction::TrafficShed { ladder, .. }
            | BoundAction::TrafficRestore { ladder }
            | BoundAction::TrafficRevert { ladder, .. } => out.extend(ladder_keys(ladder)),
            BoundAction::ZonalShift { resources, .. }
            | BoundAction::CancelZonalShift { resources, .. } => {
                out.extend(resources.iter().map(|r| LeaseKey::zonal_resource(r)))
            }
            BoundAction::Http { .. }
            | BoundAction::Approval { .. }
            | BoundAction::Wait { .. }
            | BoundAction::HealthAssert { .. } => {}
            BoundAction::GlobalMove(m) => out.extend(
                m.global_clusters
                    .iter()
                    .map(|g| LeaseKey::global_cluster(g.as_str())),
            ),
        }
    }
    out
}

/// The keys of the resources one call changes, named as [`keys_of`] names them (so they are
/// among the run's keys when the call comes from its steps). `None` for a call that changes no
/// leased resource by name (an HTTP call, whose lease is the ladder or nothing).
pub fn keys_of_call(call: &Call, region: &str) -> Option<Vec<LeaseKey>> {
    match call {
        Call::FailoverDbCluster { cluster, .. } | Call::CreateDbClusterSnapshot { cluster, .. } => {
            Some(vec![LeaseKey::cluster(region, cluster.as_str())])
        }
        Call::RebootDbInstance { instance, .. } | Call::CreateDbSnapshot { instance, .. } => {
            Some(vec![LeaseKey::instance(region, instance.as_str())])
        }
        Call::ChangeResourceRecordSets { changes, .. } => {
            let keys: BTreeSet<LeaseKey> = changes
                .iter()
                .map(|c| LeaseKey::record(&c.record.name, &c.record.rtype))
                .collect();
            Some(keys.into_iter().collect())
        }
        Call::StartZonalShift { resource, .. } | Call::CancelZonalShift { resource, .. } => {
            Some(vec![LeaseKey::zonal_resource(resource)])
        }
        Call::Http { .. } => None,
        Call::SwitchoverGlobalCluster { global_cluster, .. }
        | Call::FailoverGlobalCluster { global_cluster, .. } => {
            Some(vec![LeaseKey::global_cluster(global_cluster.as_str())])
        }
    }
}

fn ladder_keys(ladder: &BoundLadder) -> Vec<LeaseKey> {
    let mut out = vec![LeaseKey::ladder(&ladder.environment)];
    for t in &ladder.tiers {
        for a in [&t.apply, &t.revert].into_iter().flatten() {
            if let BoundTierAction::DnsWeights { records, .. } = a {
                out.extend(records.iter().map(|r| LeaseKey::record(&r.name, &r.rtype)));
            }
        }
    }
    out
}

/// Who holds a lease and since when, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub key: LeaseKey,
    /// The run holding it (`None`: released).
    pub run_id: Option<String>,
    pub initiator: String,
    /// `host:pid` of the process that holds it.
    pub holder: String,
    /// Fencing token: grows by one at every grant and takeover of this key, never reused.
    pub token: u64,
    pub acquired_ms: i64,
    pub renewed_ms: i64,
    pub ttl_ms: i64,
}

impl Lease {
    /// Held, and renewed within its time to live.
    pub fn live_at(&self, now_ms: i64) -> bool {
        self.run_id.is_some() && self.renewed_ms.saturating_add(self.ttl_ms) > now_ms
    }
    /// When it expires (or expired) unless renewed.
    pub fn expires_ms(&self) -> i64 {
        self.renewed_ms.saturating_add(self.ttl_ms)
    }
}

/// How long a lease lives without a heartbeat, and how often the holder renews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    pub ttl: Duration,
    /// Renew every `ttl / 3`.
    pub heartbeat: Duration,
    /// No mutating call starts when the lease has less than this left (the longest a call may
    /// take): a holder paused past its expiry cannot act.
    pub call_budget: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        Self::with_ttl(Duration::from_secs(90))
    }
}

impl LeaseTiming {
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            heartbeat: ttl / 3,
            call_budget: (ttl / 3).min(Duration::from_secs(30)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ChangeAction, HttpRequest, RecordChange, RecordSet};

    fn upsert(name: &str, rtype: &str, set: &str) -> RecordChange {
        RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.into(),
                rtype: rtype.into(),
                set_identifier: Some(set.into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn a_call_names_the_keys_of_the_resources_it_changes() {
        let failover = Call::FailoverDbCluster {
            cluster: "orders".into(),
            target: "orders-b".into(),
            target_zone: "us-west-2b".into(),
            from_zone: "us-west-2a".into(),
        };
        assert_eq!(
            keys_of_call(&failover, "us-west-2"),
            Some(vec![LeaseKey::cluster("us-west-2", "orders")])
        );
        let reboot = Call::RebootDbInstance {
            instance: "legacy".into(),
            force_failover: true,
            from_zone: "us-west-2a".into(),
        };
        assert_eq!(
            keys_of_call(&reboot, "us-west-2"),
            Some(vec![LeaseKey::instance("us-west-2", "legacy")])
        );
        // Two weighted sets of one name are one key, named as `keys_of` names it (case and
        // trailing dot normalized).
        let batch = Call::ChangeResourceRecordSets {
            hosted_zone_id: "Z1".into(),
            hosted_zone_name: "example.com.".into(),
            comment: String::new(),
            changes: vec![
                upsert("API.example.com.", "cname", "a"),
                upsert("api.example.com", "CNAME", "b"),
                upsert("www.example.com.", "A", "a"),
            ],
            previous: vec![],
        };
        assert_eq!(
            keys_of_call(&batch, "us-west-2"),
            Some(vec![
                LeaseKey::record("api.example.com.", "CNAME"),
                LeaseKey::record("www.example.com.", "A"),
            ])
        );
        let http = Call::Http {
            request: HttpRequest {
                method: "POST".into(),
                url: "http://127.0.0.1:1/shed".into(),
                headers: vec![],
                body: None,
                timeout: Duration::from_secs(1),
            },
            expect_status: vec![200],
        };
        assert_eq!(keys_of_call(&http, "us-west-2"), None);
    }
}
