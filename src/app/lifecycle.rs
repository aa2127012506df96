//! The one run lifecycle, used by every use case that runs steps (run, rollback, simulate, and
//! the drills to come): plan (the run starts even when the plan cannot read the world), record
//! (redacted), execute, finish with a status derived from the outcome.

use super::record::{run_record, RunHeader};
use super::AppError;
use crate::cloud::ErrorKind;
use crate::engine::{self, RunOutcome, RunSpec};
use crate::journal::Journal;
use crate::plan::Plan;
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::runbook::bind::BoundStep;
use crate::runbook::OnFailure;
use crate::status::{RunStatus, StepStatus};
use crate::types::RunId;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A run to start.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub header: RunHeader,
    pub steps: Vec<BoundStep>,
    pub poll_interval: Duration,
    pub max_concurrency: usize,
    /// How often an approval gate re-reads the journal.
    pub approval_poll: Duration,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub run_id: RunId,
    pub plan: Plan,
    pub outcome: RunOutcome,
    /// `succeeded`, `succeeded_with_failures` or `failed`.
    pub status: RunStatus,
    pub error: Option<String>,
}

impl RunResult {
    /// Steps that failed, in order.
    pub fn failed_steps(&self) -> Vec<String> {
        failed_steps(&self.outcome)
    }
}

fn failed_steps(outcome: &RunOutcome) -> Vec<String> {
    outcome
        .steps
        .iter()
        .filter(|(_, st, _)| *st == StepStatus::Failed)
        .map(|(id, _, _)| id.to_string())
        .collect()
}

/// The status a run ends with, and why, from its outcome. Pure.
pub fn final_status(outcome: &RunOutcome) -> (RunStatus, Option<String>) {
    let failed = failed_steps(outcome);
    match (outcome.succeeded, failed.is_empty()) {
        (true, true) => (RunStatus::Succeeded, None),
        (true, false) => (
            RunStatus::SucceededWithFailures,
            Some(format!(
                "non-critical step(s) failed (on_failure = continue): {}",
                failed.join(", ")
            )),
        ),
        (false, true) => (RunStatus::Failed, None),
        (false, false) => (
            RunStatus::Failed,
            Some(format!("step(s) failed: {}", failed.join(", "))),
        ),
    }
}

/// Plan, record, execute and finish one run. The plan is computed first and journaled with
/// the run; if it cannot read the world (say Route 53's control plane is down) the run starts
/// anyway and every step observes for itself, except when access is denied: then nothing starts.
pub async fn start_run(
    ports: &Ports,
    journal: &Arc<Journal>,
    reporter: Arc<dyn Reporter>,
    req: RunRequest,
) -> Result<RunResult, AppError> {
    let h = &req.header;
    let plan = match engine::plan_run(ports, &h.runbook, &h.environment, &h.id, &req.steps).await {
        Ok(p) => p,
        Err(e) if e.kind == ErrorKind::AccessDenied => {
            return Err(AppError::cloud("reading the current state failed", e))
        }
        Err(e) => {
            reporter.report(Progress::PlanUnavailable {
                run_id: h.id.clone(),
                error: e.to_string(),
            });
            Plan {
                runbook: h.runbook.clone(),
                environment: h.environment.clone(),
                steps: vec![],
            }
        }
    };
    let started_at = ports
        .clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    journal.create_run(&run_record(h, started_at, &plan, &req.steps))?;
    reporter.report(Progress::RunStarted {
        run_id: h.id.clone(),
        runbook: h.runbook.clone(),
        environment: h.environment.clone(),
        initiator: h.initiator.clone(),
        mode: h.mode,
        of_run: h.of_run.clone(),
        journal: journal.path().display().to_string(),
    });
    reporter.report(Progress::RunPlanned {
        run_id: h.id.clone(),
        runbook: h.runbook.clone(),
        steps: plan.steps.len(),
        mutating_calls: plan.mutating_calls(),
        problems: plan
            .problems()
            .into_iter()
            .map(|(s, p)| (s.to_string(), p))
            .collect(),
    });
    let spec = RunSpec {
        run_id: h.id.clone(),
        initiator: h.initiator.clone(),
        steps: req.steps,
        poll_interval: req.poll_interval,
        max_concurrency: req.max_concurrency,
        approval_poll: req.approval_poll,
    };
    let outcome = engine::execute(ports.clone(), journal.clone(), spec, reporter.clone()).await;
    let (status, error) = final_status(&outcome);
    journal.set_run_status(&h.id, status, error.as_deref(), true)?;
    reporter.report(Progress::RunFinished {
        run_id: h.id.clone(),
        status,
        error: error.clone(),
    });
    Ok(RunResult {
        run_id: h.id.clone(),
        plan,
        outcome,
        status,
        error,
    })
}

/// Put an approval gate before every first step (`run --require-approval`, and runs a
/// watcher starts under the `approval` policy).
pub fn gate_with_approval(steps: &mut Vec<BoundStep>, message: String) {
    use crate::runbook::bind::BoundAction;
    use crate::types::StepId;
    let gate = StepId::new("require-approval");
    for s in steps.iter_mut() {
        if s.after.is_empty() {
            s.after.push(gate.clone());
        }
    }
    steps.insert(
        0,
        BoundStep {
            id: gate,
            description: Some("approval required before the first step".into()),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(60 * 60),
            retries: 0,
            on_failure: OnFailure::Abort,
            action: BoundAction::Approval {
                message,
                approvers: vec![],
            },
        },
    );
}
