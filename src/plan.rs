//! The plan: what a run will do, as data. Pure: bound steps + an observed `World` -> `Plan`.
//!
//! A dry run prints the plan. A live run computes the same plan first (and journals it), then
//! executes each step by observing again and calling the very same `steps::decide`, so a dry
//! run cannot drift from a live run: there is one decision function and two executors.

use crate::cloud::{HttpRequest, RecordChange, RecordKey, RecordSet};
use crate::runbook::bind::BoundStep;
use crate::steps::{self, Await};
use crate::types::{ClusterId, InstanceId, StepId, Zone};
use crate::world::World;
use serde::{Deserialize, Serialize};

/// One mutating call, as data. Read-only calls are not planned: they are observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call")]
pub enum Call {
    FailoverDbCluster {
        cluster: ClusterId,
        target: InstanceId,
        target_zone: Zone,
        from_zone: Zone,
    },
    RebootDbInstance {
        instance: InstanceId,
        force_failover: bool,
        from_zone: Zone,
    },
    CreateDbClusterSnapshot {
        cluster: ClusterId,
        snapshot: String,
    },
    CreateDbSnapshot {
        instance: InstanceId,
        snapshot: String,
    },
    ChangeResourceRecordSets {
        hosted_zone_id: String,
        hosted_zone_name: String,
        comment: String,
        changes: Vec<RecordChange>,
        /// The record sets before the change, for rollback (None: did not exist).
        previous: Vec<(RecordKey, Option<RecordSet>)>,
    },
    Http {
        request: HttpRequest,
        expect_status: Vec<u16>,
    },
}

impl Call {
    /// The AWS (or HTTP) operation name.
    pub fn operation(&self) -> String {
        match self {
            Call::FailoverDbCluster { .. } => "FailoverDBCluster".into(),
            Call::RebootDbInstance { .. } => "RebootDBInstance".into(),
            Call::CreateDbClusterSnapshot { .. } => "CreateDBClusterSnapshot".into(),
            Call::CreateDbSnapshot { .. } => "CreateDBSnapshot".into(),
            Call::ChangeResourceRecordSets { .. } => "ChangeResourceRecordSets".into(),
            Call::Http { request, .. } => format!("HTTP {}", request.method),
        }
    }

    pub fn resource(&self) -> String {
        match self {
            Call::FailoverDbCluster { cluster, .. } => cluster.to_string(),
            Call::RebootDbInstance { instance, .. } => instance.to_string(),
            Call::CreateDbClusterSnapshot { cluster, .. } => cluster.to_string(),
            Call::CreateDbSnapshot { instance, .. } => instance.to_string(),
            Call::ChangeResourceRecordSets {
                hosted_zone_name, ..
            } => hosted_zone_name.clone(),
            Call::Http { request, .. } => request.url.split('?').next().unwrap_or("").to_string(),
        }
    }

    /// One line with the parameters that matter, for plans and timelines.
    pub fn describe(&self) -> String {
        match self {
            Call::FailoverDbCluster { cluster, target, target_zone, from_zone } => format!(
                "FailoverDBCluster DBClusterIdentifier={cluster} TargetDBInstanceIdentifier={target}  (writer {from_zone} -> {target_zone})"
            ),
            Call::RebootDbInstance { instance, from_zone, .. } => {
                format!("RebootDBInstance DBInstanceIdentifier={instance} ForceFailover=true  (primary leaves {from_zone})")
            }
            Call::CreateDbClusterSnapshot { cluster, snapshot } => {
                format!("CreateDBClusterSnapshot DBClusterIdentifier={cluster} DBClusterSnapshotIdentifier={snapshot}")
            }
            Call::CreateDbSnapshot { instance, snapshot } => {
                format!("CreateDBSnapshot DBInstanceIdentifier={instance} DBSnapshotIdentifier={snapshot}")
            }
            Call::ChangeResourceRecordSets { hosted_zone_id, hosted_zone_name, changes, .. } => {
                let mut s = format!("ChangeResourceRecordSets HostedZoneId={hosted_zone_id} ({hosted_zone_name}) {} change(s):", changes.len());
                for c in changes {
                    s.push_str(&format!("\n      {} {}", c.action, describe_record(&c.record)));
                }
                s
            }
            Call::Http { request, expect_status } => {
                let exp = if expect_status.is_empty() { "2xx".to_string() } else { expect_status.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("|") };
                format!("HTTP {} {} (expect {exp})", request.method, request.url)
            }
        }
    }
}

pub fn describe_record(r: &RecordSet) -> String {
    let mut s = format!("{} {}", r.name, r.rtype);
    if let Some(id) = &r.set_identifier {
        s.push_str(&format!(" [{id}]"));
    }
    if let Some(w) = r.weight {
        s.push_str(&format!(" weight={w}"));
    }
    if let Some(t) = r.ttl {
        s.push_str(&format!(" ttl={t}"));
    }
    if let Some(a) = &r.alias {
        s.push_str(&format!(" alias={}", a.dns_name));
    } else {
        s.push_str(&format!(" -> {}", r.values.join(", ")));
    }
    s
}

/// What one step decides against one `World`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Mutating calls, in order.
    pub calls: Vec<Call>,
    /// Conditions to wait for after the calls (or for work already under way).
    pub awaits: Vec<Await>,
    /// What is already as wanted, and why nothing is done for it.
    pub skips: Vec<String>,
    /// Preconditions that fail: the step cannot run. Each says what to do.
    pub problems: Vec<String>,
    /// The state the step should leave behind.
    pub expected: Vec<String>,
    /// Non-API effects: "pause for approval", "sleep 30s".
    pub effects: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedStatus {
    /// Will run.
    Run,
    /// `when` is false.
    SkippedByCondition,
    /// A step it depends on cannot run.
    Blocked,
    /// A precondition fails.
    Failing,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: StepId,
    pub action: String,
    pub description: Option<String>,
    pub after: Vec<StepId>,
    pub status: PlannedStatus,
    pub decision: Decision,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub runbook: String,
    pub environment: String,
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    pub fn mutating_calls(&self) -> usize {
        self.steps.iter().map(|s| s.decision.calls.len()).sum()
    }
    pub fn problems(&self) -> Vec<(StepId, String)> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.decision
                    .problems
                    .iter()
                    .map(move |p| (s.id.clone(), p.clone()))
            })
            .collect()
    }
}

/// Plan every step in dependency order against the observed world, predicting the effect
/// of each step's calls so later steps see the state earlier ones leave.
pub fn plan(
    runbook: &str,
    environment: &str,
    run_id: &str,
    steps: &[BoundStep],
    observed: &World,
) -> Plan {
    let mut world = observed.clone();
    let order = topo(steps);
    let mut planned: Vec<PlannedStep> = vec![];
    for i in order {
        let s = &steps[i];
        // Same rule as the live executor: a step is blocked by a dependency that is blocked, or
        // that fails and has on_failure = abort.
        let blocked = s.after.iter().any(|a| {
            planned.iter().any(|p| {
                &p.id == a
                    && (p.status == PlannedStatus::Blocked
                        || (p.status == PlannedStatus::Failing
                            && steps
                                .iter()
                                .find(|x| &x.id == a)
                                .is_some_and(|x| x.on_failure == crate::runbook::OnFailure::Abort)))
            })
        });
        let (status, decision) = if !s.enabled {
            (
                PlannedStatus::SkippedByCondition,
                Decision {
                    skips: vec![format!(
                        "`when` is false: {}",
                        s.when.clone().unwrap_or_default()
                    )],
                    ..Default::default()
                },
            )
        } else {
            let d = steps::decide(s, &world, run_id);
            for c in &d.calls {
                world.apply(c);
            }
            let status = if !d.problems.is_empty() {
                PlannedStatus::Failing
            } else if blocked {
                PlannedStatus::Blocked
            } else {
                PlannedStatus::Run
            };
            (status, d)
        };
        planned.push(PlannedStep {
            id: s.id.clone(),
            action: s.action.name().to_string(),
            description: s.description.clone(),
            after: s.after.clone(),
            status,
            decision,
        });
    }
    Plan {
        runbook: runbook.to_string(),
        environment: environment.to_string(),
        steps: planned,
    }
}

/// Indices of steps in a stable topological order (file order among ready steps).
pub fn topo(steps: &[BoundStep]) -> Vec<usize> {
    let mut done: Vec<usize> = vec![];
    let mut remaining: Vec<usize> = (0..steps.len()).collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut next = vec![];
        for &i in &remaining {
            if steps[i]
                .after
                .iter()
                .all(|a| done.iter().any(|&j| &steps[j].id == a))
            {
                next.push(i);
            }
        }
        // Take one at a time to keep file order stable.
        if let Some(&i) = next.first() {
            done.push(i);
            remaining.retain(|&x| x != i);
        }
        if remaining.len() == before {
            break;
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::bind::BoundAction;
    use crate::runbook::OnFailure;
    use std::time::Duration;

    fn step(id: &str, after: &[&str], on_failure: OnFailure, action: BoundAction) -> BoundStep {
        BoundStep {
            id: id.into(),
            description: None,
            after: after.iter().map(|a| StepId::from(*a)).collect(),
            enabled: true,
            when: None,
            timeout: Duration::from_secs(60),
            retries: 0,
            on_failure,
            action,
        }
    }

    #[test]
    fn regression_blocked_propagates_like_the_live_executor() {
        let failing = BoundAction::FailoverCluster {
            group: "g".into(),
            clusters: vec!["ghost".into()],
            evacuate: vec!["us-west-2a".into()],
            healthy: vec!["us-west-2b".into()],
            wait: true,
        };
        let wait = || BoundAction::Wait {
            duration: Duration::from_secs(1),
        };
        // a fails (abort) -> b blocked -> c blocked even though b has on_failure = continue.
        let steps = vec![
            step("a", &[], OnFailure::Abort, failing),
            step("b", &["a"], OnFailure::Continue, wait()),
            step("c", &["b"], OnFailure::Abort, wait()),
        ];
        let p = plan("rb", "env", "r", &steps, &World::default());
        let st: Vec<_> = p.steps.iter().map(|s| s.status.clone()).collect();
        assert_eq!(
            st,
            vec![
                PlannedStatus::Failing,
                PlannedStatus::Blocked,
                PlannedStatus::Blocked
            ]
        );
    }
}
