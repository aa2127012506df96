//! The plan: what a run will do, as data. Pure: bound steps + an observed `World` -> `Plan`.
//!
//! A dry run prints the plan. A live run computes the same plan first (and journals it), then
//! executes each step by observing again and calling the very same `steps::decide`, so a dry
//! run cannot drift from a live run: there is one decision function and two executors.

use crate::call::Decision;
use crate::runbook::bind::BoundStep;
use crate::runbook::OnFailure;
use crate::status::StepStatus;
use crate::steps;
use crate::types::{RunId, StepId};
use crate::world::World;
use serde::{Deserialize, Serialize};

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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub runbook: String,
    pub environment: String,
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    pub fn mutating_calls(&self) -> usize {
        self.steps.iter().map(|s| s.decision.calls.len()).sum()
    }
    /// Calls steps make only if a condition holds when they run (closed loops).
    pub fn contingent_calls(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.decision.contingent)
            .map(|c| c.calls.len())
            .sum()
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
    run_id: &RunId,
    steps: &[BoundStep],
    observed: &World,
) -> Plan {
    let mut world = observed.clone();
    let order = topo(steps);
    let mut planned: Vec<PlannedStep> = vec![];
    for i in order {
        let s = &steps[i];
        let blocked = blocked_by(s, steps, |id| {
            planned
                .iter()
                .find(|p| &p.id == id)
                .map(|p| match p.status {
                    PlannedStatus::Run => StepStatus::Succeeded,
                    PlannedStatus::SkippedByCondition => StepStatus::Skipped,
                    PlannedStatus::Blocked => StepStatus::Blocked,
                    PlannedStatus::Failing => StepStatus::Failed,
                })
        })
        .is_some();
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

/// The one rule both executors follow: a step does not run when a step it depends on was
/// blocked or cancelled, or failed with `on_failure = abort`. Returns that dependency.
/// `status_of` gives the status of a finished (or, for a dry run, planned) step.
pub fn blocked_by<'a>(
    step: &'a BoundStep,
    steps: &[BoundStep],
    status_of: impl Fn(&StepId) -> Option<StepStatus>,
) -> Option<&'a StepId> {
    step.after.iter().find(|a| {
        let aborts = steps
            .iter()
            .find(|x| &x.id == *a)
            .is_some_and(|x| x.on_failure == OnFailure::Abort);
        match status_of(a) {
            Some(StepStatus::Blocked | StepStatus::Cancelled) => true,
            Some(StepStatus::Failed) => aborts,
            _ => false,
        }
    })
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
        let p = plan("rb", "env", &"r".into(), &steps, &World::default());
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
