//! `approve RUN`: record that a person releases an approval gate of a waiting run.

use super::{App, AppError};
use crate::approval::{may_approve, Refusal};
use crate::runbook::bind::{BoundAction, BoundStep};
use crate::status::StepStatus;
use crate::types::RunId;

/// A recorded approval.
pub struct Approved {
    pub run_id: RunId,
    pub step_id: String,
    pub by: String,
}

/// Approve `step` (default: the one the run is waiting on) of `run_id` as `by`. `run_id`: an id
/// or a unique prefix of one, as a person typed it ([`crate::journal::Journal::run`]).
pub fn approve(
    app: &App,
    run_id: &str,
    step: Option<&str>,
    by: String,
) -> Result<Approved, AppError> {
    let j = app.open_journal()?;
    let r = j.run(run_id)?;
    if r.ended_at.is_some() {
        return Err(AppError::Refused(format!(
            "run {} has already finished ({}); there is nothing to approve",
            r.id, r.status
        )));
    }
    let steps: Vec<BoundStep> = serde_json::from_value(r.steps.clone()).unwrap_or_default();
    let records = j.steps(&r.id)?;
    let step_id = match step {
        Some(s) => s.to_string(),
        None => match records
            .iter()
            .find(|s| s.status == StepStatus::WaitingApproval)
        {
            Some(s) => s.step_id.clone(),
            None => {
                return Err(AppError::Refused(format!("run {} is not waiting for an approval right now\n  hint: pass --step to approve a later approval step in advance", r.id)));
            }
        },
    };
    let Some(bs) = steps.iter().find(|s| s.id.as_str() == step_id) else {
        return Err(AppError::Refused(format!(
            "run {} has no step `{step_id}`",
            r.id
        )));
    };
    let BoundAction::Approval { approvers, .. } = &bs.action else {
        return Err(AppError::Refused(format!(
            "step `{step_id}` of run {} is a `{}` step, not an approval",
            r.id,
            bs.action.name()
        )));
    };
    match may_approve(&r.initiator, approvers, &by) {
        Ok(()) => {}
        Err(Refusal::Initiator) => {
            return Err(AppError::Refused(format!("{by} started run {} and cannot approve it\n  hint: another person approves with: failover approve {} --by <their name>", r.id, r.id)));
        }
        Err(Refusal::NotAllowed { allowed }) => {
            return Err(AppError::Refused(format!(
                "{by} may not approve step `{step_id}`; allowed approvers: {}",
                allowed.join(", ")
            )));
        }
    }
    j.approve(&r.id, &step_id, &by)?;
    Ok(Approved {
        run_id: r.id,
        step_id,
        by,
    })
}
