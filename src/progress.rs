//! Progress events of a live run, as data: the engine emits them, the terminal, the
//! simulator's timeline (and later the HTTP API and metrics) consume them.

use crate::status::{RunMode, RunStatus, StepStatus};
use crate::types::RunId;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// The run is recorded in the journal and starts.
    RunStarted {
        run_id: RunId,
        runbook: String,
        environment: String,
        initiator: String,
        mode: RunMode,
        /// For a rollback: the run it rolls back.
        of_run: Option<RunId>,
        /// For a resumed run: who resumed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed_by: Option<String>,
        /// Where the run is recorded.
        journal: String,
    },
    /// The plan the run starts from.
    RunPlanned {
        run_id: RunId,
        runbook: String,
        steps: usize,
        mutating_calls: usize,
        /// Failing preconditions: (step, problem).
        problems: Vec<(String, String)>,
    },
    /// The plan could not read the world; the run starts anyway (static stability): every step
    /// observes before acting.
    PlanUnavailable {
        run_id: RunId,
        error: String,
    },
    /// The run ended (its status as the journal records it).
    RunFinished {
        run_id: RunId,
        status: RunStatus,
        error: Option<String>,
        /// The journal's head (`SEQ:HASH`) after the run ended: remember it to catch a
        /// deleted tail (`failover verify --expect-head`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        head: Option<String>,
        /// The AWS requests this process made for the run (reads, mutating, throttled, failed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        calls: Option<crate::cloud::model::CallCounts>,
    },
    StepStarted {
        step: String,
        action: String,
    },
    Skip {
        step: String,
        text: String,
    },
    Problem {
        step: String,
        text: String,
    },
    Call {
        step: String,
        text: String,
    },
    CallDone {
        step: String,
        operation: String,
        resource: String,
        ok: bool,
        ms: u64,
        detail: Option<String>,
    },
    Waiting {
        step: String,
        what: String,
    },
    Converged {
        step: String,
        what: String,
    },
    ApprovalRequested {
        step: String,
        message: String,
        run_id: RunId,
    },
    StepError {
        step: String,
        attempt: u32,
        error: String,
        retrying: bool,
    },
    StepFinished {
        step: String,
        status: StepStatus,
        message: Option<String>,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, p: Progress);
}

/// Drops everything (tests, JSON output).
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _p: Progress) {}
}

/// Collects events (tests).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Progress>>);

impl Reporter for Collect {
    fn report(&self, p: Progress) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }
}
