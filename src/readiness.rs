//! Readiness: would a runbook succeed today if a zone failed, and why not. Pure: the dry-run
//! plan of the runbook for that zone (the real planner, over the observed world), or the error
//! that kept it from reading the world, in; a verdict with every reason, each of a known
//! cause, out. The loop that plans every runbook for every zone on an interval is at the edge
//! (`serve::readiness`); the plan is `app::readiness`'s.

use crate::cloud::ErrorKind;
use crate::plan::Plan;
use serde::Serialize;

/// Why a runbook would not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A cluster whose writer is in the zone has no available reader outside it.
    NoEligibleReader,
    /// A Multi-AZ instance in the zone has no standby outside it (or is not Multi-AZ).
    NoStandby,
    /// A DNS record has no value for any zone left healthy.
    NoRecordValue,
    /// A resource the runbook names does not exist (anymore).
    NotFound,
    /// The cloud (or its endpoint) could not be reached or read: the plan could not be made.
    Unreachable,
    /// A read was refused (AccessDenied): the service's credentials lack a permission.
    MissingPermission,
    /// The runbook does not bind to the environment (its parameters, groups or endpoints).
    Invalid,
    /// Any other precondition the planner reports.
    Other,
}

/// One reason, with the step it is about (none when the plan could not be made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub cause: Cause,
    pub step: Option<String>,
    /// The planner's words: what is wrong and what to do.
    pub text: String,
}

/// Whether the runbook would succeed for that zone today, and every reason why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub ready: bool,
    pub reasons: Vec<Reason>,
}

/// The cause of one of the planner's problems (the words `steps::*::decide` uses; the step
/// modules' tests hold their messages to these causes).
pub fn classify(problem: &str) -> Cause {
    let has = |s: &str| problem.contains(s);
    if has("no eligible reader") {
        Cause::NoEligibleReader
    } else if has("has no standby") || has("its standby is in") {
        Cause::NoStandby
    } else if has("no healthy zone has a value") || has("no healthy region has a value") {
        Cause::NoRecordValue
    } else if has("was not found") {
        Cause::NotFound
    } else if has("permissions") || has("AccessDenied") {
        Cause::MissingPermission
    } else {
        Cause::Other
    }
}

/// The verdict of a dry-run plan: ready when no step has a problem.
pub fn of_plan(plan: &Plan) -> Verdict {
    let reasons: Vec<Reason> = plan
        .problems()
        .into_iter()
        .map(|(step, text)| Reason {
            cause: classify(&text),
            step: Some(step.to_string()),
            text,
        })
        .collect();
    Verdict {
        ready: reasons.is_empty(),
        reasons,
    }
}

/// The verdict when the world could not be read: never ready.
pub fn of_read_error(kind: ErrorKind, text: &str) -> Verdict {
    let cause = match kind {
        ErrorKind::AccessDenied => Cause::MissingPermission,
        ErrorKind::NotFound => Cause::NotFound,
        ErrorKind::Throttled | ErrorKind::Transient | ErrorKind::Other => Cause::Unreachable,
        ErrorKind::InvalidState | ErrorKind::InvalidRequest => Cause::Other,
    };
    of_cause(cause, text)
}

/// A verdict of one reason that is about no step (bad input, a failure of the tool).
pub fn of_cause(cause: Cause, text: &str) -> Verdict {
    Verdict {
        ready: false,
        reasons: vec![Reason {
            cause,
            step: None,
            text: text.to_string(),
        }],
    }
}

/// Whether to tell people: a runbook turned red (from green, or red at the first check).
/// Staying red, or turning green, is not notified again.
pub fn turned_red(before: Option<bool>, ready_now: bool) -> bool {
    !ready_now && before != Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Decision;
    use crate::plan::{PlannedStatus, PlannedStep};

    fn plan_with(problems: &[&str]) -> Plan {
        Plan {
            runbook: "rb".into(),
            environment: "env".into(),
            steps: vec![PlannedStep {
                id: "move".into(),
                action: "rds.failover_cluster".into(),
                description: None,
                after: vec![],
                status: PlannedStatus::Run,
                decision: Decision {
                    problems: problems.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                },
            }],
        }
    }

    #[test]
    fn a_plan_without_problems_is_ready_and_every_problem_is_a_reason() {
        assert_eq!(
            of_plan(&plan_with(&[])),
            Verdict {
                ready: true,
                reasons: vec![]
            }
        );
        let v = of_plan(&plan_with(&["a", "cluster `x` was not found"]));
        assert!(!v.ready);
        let causes: Vec<Cause> = v.reasons.iter().map(|r| r.cause).collect();
        assert_eq!(causes, vec![Cause::Other, Cause::NotFound]);
        assert_eq!(v.reasons[0].step.as_deref(), Some("move"));
    }

    #[test]
    fn read_errors_say_unreachable_or_missing_permission() {
        let v = of_read_error(ErrorKind::AccessDenied, "DescribeDBClusters: AccessDenied");
        assert_eq!(v.reasons[0].cause, Cause::MissingPermission);
        assert!(!v.ready);
        let v = of_read_error(ErrorKind::Transient, "connection refused");
        assert_eq!(v.reasons[0].cause, Cause::Unreachable);
    }

    #[test]
    fn only_a_turn_to_red_is_notified() {
        assert!(turned_red(Some(true), false));
        assert!(turned_red(None, false));
        assert!(!turned_red(Some(false), false));
        assert!(!turned_red(Some(false), true));
        assert!(!turned_red(None, true));
    }
}
