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
use std::collections::{BTreeSet, HashMap};

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
    let graph = Graph::new(steps);
    let mut planned: Vec<PlannedStep> = vec![];
    // By step index: where `planned` has it.
    let mut at: Vec<Option<usize>> = vec![None; steps.len()];
    for i in order {
        let s = &steps[i];
        let blocked = blocked_by(s, |id| {
            let j = graph.index_of(id)?;
            let p = &planned[at[j]?];
            let st = match p.status {
                PlannedStatus::Run => StepStatus::Succeeded,
                PlannedStatus::SkippedByCondition => StepStatus::Skipped,
                PlannedStatus::Blocked => StepStatus::Blocked,
                PlannedStatus::Failing => StepStatus::Failed,
            };
            Some((st, steps[j].on_failure))
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
            let st = if d.problems.is_empty() {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            };
            world.finished_steps.insert(s.id.clone(), st);
            let status = if !d.problems.is_empty() {
                PlannedStatus::Failing
            } else if blocked {
                PlannedStatus::Blocked
            } else {
                PlannedStatus::Run
            };
            (status, d)
        };
        at[i] = Some(planned.len());
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
/// `dep` gives, for a finished (or, for a dry run, planned) step, its status and its
/// `on_failure`; `None` for a step not finished (or not a step of the run).
pub fn blocked_by(
    step: &BoundStep,
    dep: impl Fn(&StepId) -> Option<(StepStatus, OnFailure)>,
) -> Option<&StepId> {
    step.after.iter().find(|a| match dep(a) {
        Some((StepStatus::Blocked | StepStatus::Cancelled, _)) => true,
        Some((StepStatus::Failed, on_failure)) => on_failure == OnFailure::Abort,
        _ => false,
    })
}

/// The steps of a run as a graph, by index: for each step, the steps that wait for it, and how
/// many of its own dependencies have not finished. Both executors walk it: finishing a step
/// costs as much as the steps that wait for it, never a rescan of every step.
#[derive(Clone, Debug)]
pub struct Graph {
    index: HashMap<StepId, usize>,
    dependents: Vec<Vec<usize>>,
    unfinished: Vec<usize>,
}

impl Graph {
    pub fn new(steps: &[BoundStep]) -> Self {
        let mut index = HashMap::with_capacity(steps.len());
        for (i, s) in steps.iter().enumerate() {
            index.entry(s.id.clone()).or_insert(i);
        }
        let mut dependents = vec![vec![]; steps.len()];
        // A dependency that is not a step of the run never finishes (validation refuses it).
        let mut unfinished = vec![0; steps.len()];
        for (i, s) in steps.iter().enumerate() {
            for a in &s.after {
                unfinished[i] += 1;
                if let Some(&j) = index.get(a) {
                    dependents[j].push(i);
                }
            }
        }
        Self {
            index,
            dependents,
            unfinished,
        }
    }

    /// The index of the step `id`.
    /// [`Graph::new`], with the `records_after` steps of `dns.update` steps as dependencies
    /// too: the order of a dry run.
    pub fn with_records_after(steps: &[BoundStep]) -> Self {
        let mut g = Self::new(steps);
        for (i, s) in steps.iter().enumerate() {
            if let crate::runbook::bind::BoundAction::DnsUpdate { records_after, .. } = &s.action {
                for a in records_after.iter().filter(|a| !s.after.contains(a)) {
                    g.unfinished[i] += 1;
                    if let Some(&j) = g.index.get(a) {
                        g.dependents[j].push(i);
                    }
                }
            }
        }
        g
    }

    pub fn index_of(&self, id: &StepId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Every dependency of step `i` has finished.
    pub fn is_ready(&self, i: usize) -> bool {
        self.unfinished.get(i) == Some(&0)
    }

    /// Step `i` finished: the steps it made ready (their last dependency), in no set order.
    /// Call once per step.
    pub fn finish(&mut self, i: usize) -> Vec<usize> {
        let mut ready = vec![];
        for &j in self
            .dependents
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            self.unfinished[j] = self.unfinished[j].saturating_sub(1);
            if self.unfinished[j] == 0 {
                ready.push(j);
            }
        }
        ready
    }
}

/// Indices of steps in a stable topological order (file order among ready steps). Steps in a
/// cycle or after an unknown step (both refused by validation) are left out.
pub fn topo(steps: &[BoundStep]) -> Vec<usize> {
    // A dry run plans a `dns.update` with `records_after` after those steps (its records then
    // see the databases moved); a live run starts it without waiting for them.
    let mut g = Graph::with_records_after(steps);
    let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| g.is_ready(i)).collect();
    let mut done = Vec::with_capacity(steps.len());
    // Take the first ready step in file order, one at a time, to keep file order stable.
    while let Some(i) = ready.pop_first() {
        done.push(i);
        ready.extend(g.finish(i));
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
            return_to: None,
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

    #[test]
    fn topo_takes_the_first_ready_step_in_file_order() {
        let wait = || BoundAction::Wait {
            duration: Duration::from_secs(1),
        };
        let s = |id: &str, after: &[&str]| step(id, after, OnFailure::Abort, wait());
        let steps = vec![
            s("c", &["b"]),
            s("a", &[]),
            s("d", &["a", "b"]),
            s("b", &["a"]),
            s("e", &[]),
            s("x", &["missing"]),
        ];
        // a (first ready), then b (made ready by a; e is ready too but comes later in the
        // file), then c, d, e; x waits for a step that does not exist and is left out.
        assert_eq!(topo(&steps), vec![1, 3, 0, 2, 4]);
        let mut g = Graph::new(&steps);
        assert!(g.is_ready(1) && g.is_ready(4) && !g.is_ready(2));
        assert_eq!(g.finish(1), vec![3]);
        let mut after_b = g.finish(3);
        after_b.sort_unstable();
        assert_eq!(after_b, vec![0, 2]);
        assert!(!g.is_ready(5));
    }
}
