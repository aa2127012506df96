//! What a live run carries through the engine: its spec, its context (ports, journal,
//! reporter, what it learned), how it ends, and how a step fails.

use crate::cloud::CloudError;
use crate::journal::{Journal, JournalError};
use crate::ports::Ports;
use crate::progress::Reporter;
use crate::runbook::bind::BoundStep;
use crate::status::StepStatus;
use crate::types::{InstanceId, RunId, StepId};
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything a live run needs besides the ports.
#[derive(Clone)]
pub struct RunSpec {
    pub run_id: RunId,
    pub initiator: String,
    pub steps: Vec<BoundStep>,
    pub poll_interval: Duration,
    pub max_concurrency: usize,
    /// How often an approval gate re-reads the journal.
    pub approval_poll: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{0}")]
    Http(String),
    #[error("timed out after {0}")]
    Timeout(String),
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
}

impl StepError {
    /// Worth another attempt of the whole step (observe again, decide again)?
    pub fn retryable(&self) -> bool {
        match self {
            StepError::Cloud(e) => e.kind.retry_step(),
            StepError::Http(_) => true,
            // The step's deadline covers all its attempts: nothing is left to retry with.
            StepError::Timeout(_) => false,
            StepError::Precondition(_) | StepError::Journal(_) => false,
        }
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StepError::Cloud(e) => Some(e.kind.hint()),
            StepError::Timeout(_) => Some("the world did not reach the goal in time; check the resource, raise the step's `timeout`, or run again: steps observe before acting"),
            StepError::Http(_) => Some("check the endpoint URL and that the service is up; the step can be retried"),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub run_id: RunId,
    pub succeeded: bool,
    pub steps: Vec<(StepId, StepStatus, Option<String>)>,
}

/// What the engine's tasks share during one run.
pub(crate) struct Ctx {
    /// Readers whose promotion failed in this run (fed back into decisions).
    pub(crate) unpromotable: Mutex<BTreeSet<InstanceId>>,
    pub(crate) ports: Ports,
    pub(crate) journal: Arc<Journal>,
    pub(crate) spec: RunSpec,
    pub(crate) reporter: Arc<dyn Reporter>,
}

impl Ctx {
    /// Remember that promoting `reader` failed: the next decision passes over it.
    pub(crate) fn unpromotable(&self, reader: &InstanceId) {
        self.unpromotable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reader.clone());
    }
}
