//! `failover iam-policy`: the least-privilege IAM policy a runbook needs in one environment.
//! Pure.
//!
//! One table ([`OPERATIONS`]) maps every AWS operation the adapters can call to its IAM action
//! and the kind of resource it is authorised on (a test reads the adapters' sources and fails
//! when one calls an operation the table does not know, so a new call cannot be forgotten).
//! [`operations_of`] says which operations a bound step may call: the reads it observes with,
//! the calls it decides, and the calls that undo it (`failover rollback`); [`policy`] turns the
//! enabled steps of a run into statements, one per IAM action, with the resource ARNs of the
//! environment (cluster and instance ids, hosted zone ids, zonal shift resources, alarms).

use crate::env::Environment;
use crate::health::config::Check;
use crate::runbook::bind::{BoundAction, BoundStep, SnapshotTarget};
use crate::traffic::BoundTierAction;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What an IAM action is authorised on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The resources named (clusters, instances, hosted zones, ...).
    Named,
    /// Every resource of its type in the account and region (Describe calls filtered by id
    /// are authorised on the type's wildcard).
    TypeWildcard,
    /// No resource-level permission exists for the action: `*`.
    Any,
}

/// Every AWS operation the adapters call: (operation, IAM action, what it is authorised on).
pub const OPERATIONS: &[(&str, &str, On)] = &[
    (
        "DescribeDBClusters",
        "rds:DescribeDBClusters",
        On::TypeWildcard,
    ),
    (
        "DescribeDBInstances",
        "rds:DescribeDBInstances",
        On::TypeWildcard,
    ),
    ("FailoverDBCluster", "rds:FailoverDBCluster", On::Named),
    ("RebootDBInstance", "rds:RebootDBInstance", On::Named),
    (
        "CreateDBClusterSnapshot",
        "rds:CreateDBClusterSnapshot",
        On::Named,
    ),
    ("CreateDBSnapshot", "rds:CreateDBSnapshot", On::Named),
    (
        "DescribeDBClusterSnapshots",
        "rds:DescribeDBClusterSnapshots",
        On::TypeWildcard,
    ),
    (
        "DescribeDBSnapshots",
        "rds:DescribeDBSnapshots",
        On::TypeWildcard,
    ),
    ("GetHostedZone", "route53:GetHostedZone", On::Named),
    (
        "ListHostedZonesByName",
        "route53:ListHostedZonesByName",
        On::Any,
    ),
    ("ListHostedZones", "route53:ListHostedZones", On::Any),
    (
        "ListResourceRecordSets",
        "route53:ListResourceRecordSets",
        On::Named,
    ),
    (
        "ChangeResourceRecordSets",
        "route53:ChangeResourceRecordSets",
        On::Named,
    ),
    ("GetChange", "route53:GetChange", On::TypeWildcard),
    (
        "GetHealthCheckStatus",
        "route53:GetHealthCheckStatus",
        On::Named,
    ),
    ("DescribeAlarms", "cloudwatch:DescribeAlarms", On::Named),
    (
        "GetManagedResource",
        "arc-zonal-shift:GetManagedResource",
        On::Named,
    ),
    (
        "ListZonalShifts",
        "arc-zonal-shift:ListZonalShifts",
        On::Any,
    ),
    (
        "StartZonalShift",
        "arc-zonal-shift:StartZonalShift",
        On::Named,
    ),
    (
        "CancelZonalShift",
        "arc-zonal-shift:CancelZonalShift",
        On::Named,
    ),
    (
        "DescribeGlobalClusters",
        "rds:DescribeGlobalClusters",
        On::TypeWildcard,
    ),
    (
        "SwitchoverGlobalCluster",
        "rds:SwitchoverGlobalCluster",
        On::Named,
    ),
    (
        "FailoverGlobalCluster",
        "rds:FailoverGlobalCluster",
        On::Named,
    ),
    (
        "GetMetricStatistics",
        "cloudwatch:GetMetricStatistics",
        On::Any,
    ),
];

/// The IAM action of an AWS operation, and what it is authorised on.
pub fn action_of(operation: &str) -> Option<(&'static str, On)> {
    OPERATIONS
        .iter()
        .find(|(op, _, _)| *op == operation)
        .map(|(_, a, on)| (*a, *on))
}

/// One operation a step may call, on one resource (already an ARN, or `*`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub operation: &'static str,
    pub resource: String,
}

/// Where the policy's ARNs point.
pub struct Account<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    /// `*` when not known.
    pub id: &'a str,
}

impl Account<'_> {
    fn rds(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:{}:rds:{}:{}:{kind}:{id}",
            self.partition, self.region, self.id
        )
    }
    fn route53(&self, what: &str) -> String {
        format!("arn:{}:route53:::{what}", self.partition)
    }
}

/// A hosted zone as the environment names it: its ARN when it is an id, else every hosted
/// zone (the id is only known by asking Route 53), with a note.
fn hosted_zone_arn(a: &Account<'_>, zone: &str, notes: &mut BTreeSet<String>) -> String {
    if crate::cloud::looks_like_zone_id(zone) {
        a.route53(&format!("hostedzone/{}", crate::cloud::bare_zone_id(zone)))
    } else {
        notes.insert(format!("hosted zone `{zone}` is named, not given by id: its statements use hostedzone/* (write its id, e.g. `hosted_zone = \"Z0123456789ABC\"`, for a policy on that zone only)"));
        a.route53("hostedzone/*")
    }
}

fn need(operation: &'static str, resource: String) -> Need {
    Need {
        operation,
        resource,
    }
}

/// The DNS operations on one hosted zone: find it, list it, change it, wait for INSYNC.
fn dns_needs(a: &Account<'_>, zone: &str, out: &mut Vec<Need>, notes: &mut BTreeSet<String>) {
    let z = hosted_zone_arn(a, zone, notes);
    if !crate::cloud::looks_like_zone_id(zone) {
        out.push(need("ListHostedZonesByName", "*".into()));
    }
    out.push(need("GetHostedZone", z.clone()));
    out.push(need("ListResourceRecordSets", z.clone()));
    out.push(need("ChangeResourceRecordSets", z));
    out.push(need("GetChange", a.route53("change/*")));
}

/// Everything one bound step may call: its observation, its calls, and its undoing
/// (`failover rollback`: the same DNS changes back, the shifts it started canceled).
pub fn operations_of(
    step: &BoundStep,
    env: &Environment,
    a: &Account<'_>,
    notes: &mut BTreeSet<String>,
) -> Vec<Need> {
    let mut out = vec![];
    let clusters_read = |out: &mut Vec<Need>| {
        out.push(need("DescribeDBClusters", a.rds("cluster", "*")));
        out.push(need("DescribeDBInstances", a.rds("db", "*")));
    };
    match &step.action {
        BoundAction::FailoverCluster { clusters, .. } => {
            clusters_read(&mut out);
            for c in clusters {
                out.push(need("FailoverDBCluster", a.rds("cluster", c.as_str())));
            }
        }
        BoundAction::FailoverInstance { instances, .. } => {
            out.push(need("DescribeDBInstances", a.rds("db", "*")));
            for i in instances {
                out.push(need("RebootDBInstance", a.rds("db", i.as_str())));
            }
        }
        BoundAction::Snapshot { targets, .. } => {
            clusters_read(&mut out);
            snapshot_needs(targets, a, &mut out);
        }
        BoundAction::DnsUpdate {
            hosted_zone,
            dep_clusters,
            dep_instances,
            ..
        } => {
            if !dep_clusters.is_empty() || !dep_instances.is_empty() {
                clusters_read(&mut out);
            }
            dns_needs(a, hosted_zone, &mut out, notes);
        }
        BoundAction::RestoreRecords { hosted_zone_id, .. } => {
            dns_needs(a, hosted_zone_id, &mut out, notes)
        }
        BoundAction::ZonalShift { resources, .. } => {
            for r in resources {
                out.push(need("GetManagedResource", r.clone()));
                out.push(need("StartZonalShift", r.clone()));
                out.push(need("CancelZonalShift", r.clone()));
            }
            out.push(need("ListZonalShifts", "*".into()));
        }
        BoundAction::CancelZonalShift { resources, .. } => {
            for r in resources {
                out.push(need("GetManagedResource", r.clone()));
                out.push(need("CancelZonalShift", r.clone()));
            }
            out.push(need("ListZonalShifts", "*".into()));
        }
        BoundAction::TrafficShed { ladder, .. }
        | BoundAction::TrafficRestore { ladder }
        | BoundAction::TrafficRevert { ladder, .. } => {
            for t in &ladder.tiers {
                for act in [&t.apply, &t.revert].into_iter().flatten() {
                    if let BoundTierAction::DnsWeights { hosted_zone, .. } = act {
                        dns_needs(a, hosted_zone, &mut out, notes);
                    }
                }
            }
        }
        BoundAction::GlobalMove(m) => global_needs(m, a, &mut out),
        BoundAction::HealthAssert { .. } => out.extend(probe_needs(env, a)),
        BoundAction::Http { .. } | BoundAction::Approval { .. } | BoundAction::Wait { .. } => {}
    }
    out
}

/// A global database move: read the global clusters, switch over (and fail over when it may
/// escalate, or is unplanned; a rollback switches back), read the replication lag. The call
/// is authorised on the global cluster and on its member clusters, in every region.
fn global_needs(m: &crate::runbook::bind::GlobalMove, a: &Account<'_>, out: &mut Vec<Need>) {
    let global = |id: &str| format!("arn:{}:rds::{}:global-cluster:{id}", a.partition, a.id);
    let members = format!("arn:{}:rds:*:{}:cluster:*", a.partition, a.id);
    out.push(need("DescribeGlobalClusters", global("*")));
    for g in &m.global_clusters {
        out.push(need("SwitchoverGlobalCluster", global(g.as_str())));
        out.push(need("SwitchoverGlobalCluster", members.clone()));
        if m.unplanned || m.escalate.is_some() {
            out.push(need("FailoverGlobalCluster", global(g.as_str())));
            out.push(need("FailoverGlobalCluster", members.clone()));
            out.push(need("GetMetricStatistics", "*".into()));
        }
    }
}

/// A snapshot of each target: the database and the `failover-*` snapshot it creates, and the
/// read that waits for it.
fn snapshot_needs(targets: &[SnapshotTarget], a: &Account<'_>, out: &mut Vec<Need>) {
    for t in targets {
        let (create, describe, db, snap, id) = match t {
            SnapshotTarget::Cluster { id } => (
                "CreateDBClusterSnapshot",
                "DescribeDBClusterSnapshots",
                "cluster",
                "cluster-snapshot",
                id.as_str(),
            ),
            SnapshotTarget::Instance { id } => (
                "CreateDBSnapshot",
                "DescribeDBSnapshots",
                "db",
                "snapshot",
                id.as_str(),
            ),
        };
        out.push(need(create, a.rds(db, id)));
        out.push(need(create, a.rds(snap, "failover-*")));
        out.push(need(describe, a.rds(snap, "*")));
    }
}

/// What the environment's `[health]` probes read (`health.assert`, `failover watch`).
pub fn probe_needs(env: &Environment, a: &Account<'_>) -> Vec<Need> {
    let mut out = vec![];
    let Some(h) = &env.health else { return out };
    for p in &h.probes {
        match &p.check {
            Check::CloudwatchAlarm { alarm } => out.push(need(
                "DescribeAlarms",
                format!(
                    "arn:{}:cloudwatch:{}:{}:alarm:{alarm}",
                    a.partition, a.region, a.id
                ),
            )),
            Check::Rds { .. } => out.push(need("DescribeDBInstances", a.rds("db", "*"))),
            Check::Route53HealthCheck { health_check_id } => out.push(need(
                "GetHealthCheckStatus",
                a.route53(&format!("healthcheck/{health_check_id}")),
            )),
            Check::Http { .. } | Check::Tcp { .. } => {}
        }
    }
    out
}

/// The policy of the enabled steps (and the probes, with `watch`), as IAM policy JSON:
/// one statement per IAM action, its resources sorted. Notes are said beside it.
pub fn policy(
    env: &Environment,
    steps: &[BoundStep],
    a: &Account<'_>,
    watch: bool,
) -> (Value, Vec<String>) {
    let mut notes = BTreeSet::new();
    let mut needs: Vec<Need> = steps
        .iter()
        .filter(|s| s.enabled)
        .flat_map(|s| operations_of(s, env, a, &mut notes))
        .collect();
    if watch {
        needs.extend(probe_needs(env, a));
    }
    let mut by_action: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for n in needs {
        let Some((action, on)) = action_of(n.operation) else {
            notes.insert(format!("no IAM action known for {}", n.operation));
            continue;
        };
        let resource = if on == On::Any {
            "*".to_string()
        } else {
            n.resource
        };
        by_action.entry(action).or_default().insert(resource);
    }
    let statements: Vec<Value> = by_action
        .into_iter()
        .map(|(action, resources)| {
            let resources: Vec<String> = if resources.contains("*") {
                vec!["*".into()]
            } else {
                resources.into_iter().collect()
            };
            json!({
                "Sid": sid(action),
                "Effect": "Allow",
                "Action": action,
                "Resource": if resources.len() == 1 { json!(resources[0]) } else { json!(resources) },
            })
        })
        .collect();
    (
        json!({"Version": "2012-10-17", "Statement": statements}),
        notes.into_iter().collect(),
    )
}

/// `rds:FailoverDBCluster` -> `RdsFailoverDBCluster` (Sids are alphanumeric).
fn sid(action: &str) -> String {
    action
        .split([':', '-'])
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The account id of the ARNs: the environment's `[aws] account_id`, else the one given,
/// else `*` (with a note).
pub fn account_id<'a>(env: &'a Environment, given: Option<&'a str>) -> (&'a str, Option<String>) {
    match env.aws.account_id.as_deref().or(given) {
        Some(id) => (id, None),
        None => ("*", Some(format!("environment `{}` names no account (`[aws] account_id`) and --account was not given: the ARNs use `*` for the account", env.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_alphanumeric() {
        assert_eq!(sid("rds:FailoverDBCluster"), "RdsFailoverDBCluster");
        assert_eq!(
            sid("arc-zonal-shift:StartZonalShift"),
            "ArcZonalShiftStartZonalShift"
        );
        for (_, a, _) in OPERATIONS {
            assert!(sid(a).chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        }
    }

    #[test]
    fn every_operation_has_one_action() {
        let mut seen = BTreeSet::new();
        for (op, action, _) in OPERATIONS {
            assert!(seen.insert(*op), "{op} twice");
            assert!(action.ends_with(op), "{op} -> {action}");
        }
    }
}
