//! The run vocabulary: how a run or a step stands ([`RunStatus`], [`StepStatus`]) and what a
//! run is ([`RunMode`]).
//!
//! Each value has exactly one spelling, used everywhere it leaves the program: the journal's
//! columns and events, JSON output and the text shown to people (`as_str`, `Display`, serde and
//! `FromStr` all agree). A spelling this version does not know is an error, never a panic.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A spelling that is not one of a type's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    /// What was parsed, e.g. `run status`.
    pub what: &'static str,
    pub value: String,
}

/// A closed set of values, each with one spelling.
macro_rules! spelled_enum {
    (
        $(#[$m:meta])*
        $name:ident, $what:literal {
            $( $(#[$vm:meta])* $var:ident = $s:literal, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vm])* #[serde(rename = $s)] $var, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),*];

            /// The one spelling (journal column, JSON, text).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$var => $s, )*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so column widths (`{:<17}`) apply as they did to the strings.
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $( $s => Ok($name::$var), )*
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_string(),
                    }),
                }
            }
        }
    };
}

spelled_enum!(
    /// Where a run stands, as the journal's `runs.status` records it.
    RunStatus, "run status" {
        /// Steps are running.
        Running = "running",
        /// An approval gate waits for a second person.
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        /// Every critical step succeeded; a step with `on_failure = continue` failed.
        SucceededWithFailures = "succeeded_with_failures",
        Failed = "failed",
        /// A `watch` session that is watching.
        Watching = "watching",
        /// A `watch` session that ended.
        Stopped = "stopped",
        /// The process panicked; calls may be in doubt. `failover resume` continues it.
        Crashed = "crashed",
        /// Stopped by a signal (Ctrl-C, SIGTERM) between calls. `failover resume` continues it.
        Interrupted = "interrupted",
        /// Ended by `failover abort`; its leases were released. Not resumable.
        Aborted = "aborted",
    }
);

impl RunStatus {
    /// The run has ended: nothing will change its status again.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::SucceededWithFailures
                | RunStatus::Failed
                | RunStatus::Stopped
                | RunStatus::Crashed
                | RunStatus::Interrupted
                | RunStatus::Aborted
        )
    }

    /// `failover resume` may continue a run that ended this way (or that is stale).
    pub fn is_resumable(self) -> bool {
        matches!(
            self,
            RunStatus::Failed | RunStatus::Crashed | RunStatus::Interrupted
        )
    }

    /// `succeeded` or `succeeded_with_failures`.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::SucceededWithFailures
        )
    }
}

spelled_enum!(
    /// Where a step stands, as the journal's `steps.status` records it.
    StepStatus, "step status" {
        /// Not started yet.
        Pending = "pending",
        Running = "running",
        /// An approval step waits for a second person.
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        /// `when` was false.
        Skipped = "skipped",
        Failed = "failed",
        /// A step it depends on failed (with on_failure = abort).
        Blocked = "blocked",
        /// Not started because the run was aborted.
        Cancelled = "cancelled",
    }
);

impl StepStatus {
    /// How a step ended (succeeded, skipped, failed, blocked, cancelled): nothing will change
    /// it again in this run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Skipped
                | StepStatus::Failed
                | StepStatus::Blocked
                | StepStatus::Cancelled
        )
    }
}

spelled_enum!(
    /// What a run is, as the journal's `runs.mode` and the `run.mode` template variable say.
    RunMode, "run mode" {
        /// A dry run (`failover plan`): never journaled as a run.
        Plan = "plan",
        Run = "run",
        Rollback = "rollback",
        /// A `failover watch` session.
        Watch = "watch",
        /// A run in the simulator.
        Simulate = "simulate",
        /// The runbook run of a `failover drill` (its failback is a `rollback` of it).
        Drill = "drill",
        /// A slot of a drill schedule (`[[drills]]`), claimed by `drills run-due` or
        /// `failover serve`: which drill ran for it and how it ended, or that it was missed.
        DrillSlot = "drill_slot",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    /// as_str, Display, serde and FromStr spell every value the same way.
    fn one_spelling<T>(all: &[T])
    where
        T: Copy + fmt::Display + fmt::Debug + PartialEq + Serialize + FromStr<Err = UnknownValue>,
        T: for<'de> Deserialize<'de>,
    {
        for v in all {
            let s = v.to_string();
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(s));
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(s)).unwrap(),
                *v
            );
            assert_eq!(s.parse::<T>().unwrap(), *v);
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{s} is snake_case"
            );
        }
    }

    #[test]
    fn every_value_has_one_spelling() {
        one_spelling(RunStatus::ALL);
        one_spelling(StepStatus::ALL);
        one_spelling(RunMode::ALL);
    }

    #[test]
    fn spellings_are_the_journals() {
        let spelled = |all: Vec<&str>| all.join(" ");
        assert_eq!(
            spelled(RunStatus::ALL.iter().map(|s| s.as_str()).collect()),
            "running waiting_approval succeeded succeeded_with_failures failed watching stopped crashed interrupted aborted"
        );
        assert_eq!(
            spelled(StepStatus::ALL.iter().map(|s| s.as_str()).collect()),
            "pending running waiting_approval succeeded skipped failed blocked cancelled"
        );
        assert_eq!(
            spelled(RunMode::ALL.iter().map(|s| s.as_str()).collect()),
            "plan run rollback watch simulate drill drill_slot"
        );
    }

    #[test]
    fn unknown_spellings_are_errors() {
        let e = "done".parse::<RunStatus>().unwrap_err();
        assert_eq!(e.to_string(), "unknown run status `done`");
        assert!("Succeeded".parse::<StepStatus>().is_err());
        assert!(serde_json::from_value::<RunMode>(serde_json::json!("dry")).is_err());
    }

    #[test]
    fn widths_apply_as_to_strings() {
        assert_eq!(format!("[{:<10}]", RunMode::Run), "[run       ]");
        assert_eq!(format!("[{:>9}]", StepStatus::Failed), "[   failed]");
    }

    #[test]
    fn terminal_and_finished() {
        let terminal: Vec<_> = StepStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            ["succeeded", "skipped", "failed", "blocked", "cancelled"]
        );
        assert!(!RunStatus::WaitingApproval.is_finished());
        assert!(RunStatus::Stopped.is_finished());
        assert!(RunStatus::SucceededWithFailures.is_success());
    }
}
