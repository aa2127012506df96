//! `approve RUN`: record that a person releases an approval gate of a waiting run.

use super::{App, AppError};
use crate::approval::{may_approve, normalize, valid_approvals, Refusal};
use crate::runbook::bind::{BoundAction, BoundStep};
use crate::status::{RunStatus, StepStatus};
use crate::store::{Approval, Liveness, RunRecord, Store};
use crate::timefmt::format_ts;
use crate::types::RunId;
use std::sync::Arc;

/// A recorded approval.
pub struct Approved {
    pub run_id: RunId,
    pub step_id: String,
    /// The approver's name as compared (trimmed, case folded).
    pub by: String,
    /// Distinct approvals that count, this one included, and how many the gate needs.
    pub count: usize,
    pub required: u32,
}

impl Approved {
    /// The gate is released (enough people approved).
    pub fn released(&self) -> bool {
        self.count >= self.required as usize
    }
}

/// Approve `step` (default: the one the run is waiting on) of run `run_id` (its exact id) as
/// `by`.
pub async fn approve(
    app: &App,
    run_id: &str,
    step: Option<&str>,
    by: String,
) -> Result<Approved, AppError> {
    let j = app.open_journal()?;
    let r = j.run_exact(&RunId::new(run_id)).await.map_err(|e| match e {
        crate::store::StoreError::UnknownRun(_) => AppError::NotFound(format!("run `{run_id}` is not in the journal\n  hint: approve with the run's whole id (`failover runs` lists them); approvals never match a part of an id")),
        other => other.into(),
    })?;
    refuse_if_not_waiting(&r)?;
    let steps: Vec<BoundStep> = serde_json::from_value(r.steps.clone()).unwrap_or_default();
    let step_id = gate_step(&j, &r, step).await?;
    let Some(bs) = steps.iter().find(|s| s.id.as_str() == step_id) else {
        return Err(AppError::Refused(format!(
            "run {} has no step `{step_id}`",
            r.id
        )));
    };
    let BoundAction::Approval {
        approvers,
        required,
        ..
    } = &bs.action
    else {
        return Err(AppError::Refused(format!(
            "step `{step_id}` of run {} is a `{}` step, not an approval",
            r.id,
            bs.action.name()
        )));
    };
    refuse(&r, &step_id, approvers, &by)?;
    let who = normalize(&by);
    match j.approve(&r.id, &step_id, &who).await? {
        Approval::Already { by, at } => Err(AppError::Refused(format!(
            "{by} already approved step `{step_id}` of run {} at {}; an approval counts once per person",
            r.id,
            format_ts(at)
        ))),
        Approval::Recorded { .. } => {
            let all = j.approvals(&r.id, &step_id).await?;
            Ok(Approved {
                count: valid_approvals(&r.initiator, approvers, &all).len(),
                required: *required,
                run_id: r.id,
                step_id,
                by: who,
            })
        }
    }
}

/// Record a comment on a gate (said with an approval or a rejection), chained with the rest.
pub async fn comment(
    app: &App,
    run_id: &RunId,
    step_id: &str,
    by: &str,
    verdict: &str,
    text: &str,
) -> Result<(), AppError> {
    let data = serde_json::json!({"by": normalize(by), "verdict": verdict, "text": text});
    app.open_journal()?
        .note(run_id, Some(step_id), "comment", data)
        .await?;
    Ok(())
}

/// A rejected gate: the run was ended (`aborted`) by a person allowed to approve it.
pub struct Rejected {
    pub run_id: RunId,
    pub step_id: String,
    pub by: String,
    pub aborted: super::resume::Aborted,
}

/// Reject `step` (default: the one the run is waiting on) of run `run_id` as `by`, with why:
/// the rejection is journaled on the gate, then the run is aborted (its leases released; its
/// process, if alive, makes no further call). Only a person who could approve it may reject it.
pub async fn reject(
    app: &App,
    run_id: &str,
    step: Option<&str>,
    by: String,
    comment: String,
) -> Result<Rejected, AppError> {
    if comment.trim().is_empty() {
        return Err(AppError::Input(
            "error: a rejection needs a comment: say why, for the journal and the initiator".into(),
        ));
    }
    let j = app.open_journal()?;
    let r = j.run_exact(&RunId::new(run_id)).await.map_err(|e| match e {
        crate::store::StoreError::UnknownRun(_) => AppError::NotFound(format!("run `{run_id}` is not in the journal\n  hint: reject with the run's whole id (`failover runs` lists them)")),
        other => other.into(),
    })?;
    refuse_if_not_waiting(&r)?;
    let steps: Vec<BoundStep> = serde_json::from_value(r.steps.clone()).unwrap_or_default();
    let step_id = gate_step(&j, &r, step).await?;
    let approvers = match steps
        .iter()
        .find(|s| s.id.as_str() == step_id)
        .map(|s| &s.action)
    {
        Some(BoundAction::Approval { approvers, .. }) => approvers.clone(),
        _ => {
            return Err(AppError::Refused(format!(
                "run {} has no approval step `{step_id}`",
                r.id
            )))
        }
    };
    refuse(&r, &step_id, &approvers, &by)?;
    let who = normalize(&by);
    let data = serde_json::json!({"by": who, "comment": comment});
    j.note(&r.id, Some(&step_id), "rejected", data).await?;
    let why = format!("rejected at step `{step_id}`: {comment}");
    let aborted = super::resume::abort(app, r.id.as_str(), who.clone(), Some(why)).await?;
    Ok(Rejected {
        run_id: r.id,
        step_id,
        by: who,
        aborted,
    })
}

/// An approval is for a run whose process waits for it.
fn refuse_if_not_waiting(r: &RunRecord) -> Result<(), AppError> {
    let resume = format!(
        "nothing is waiting for this approval; `failover resume {}` continues the run, and its gate then waits for approvals again",
        r.id
    );
    if r.ended_at.is_some() || r.status.is_finished() {
        return Err(AppError::Refused(match r.status {
            RunStatus::Crashed | RunStatus::Interrupted => format!(
                "run {} is {} (it stopped at {}): {resume}",
                r.id,
                r.status,
                r.ended_at.map(format_ts).unwrap_or_else(|| "?".into())
            ),
            _ => format!(
                "run {} has already finished ({}); there is nothing to approve",
                r.id, r.status
            ),
        }));
    }
    if let Liveness::Stale { since } = super::lifecycle::liveness(r, crate::journal::now_ms()) {
        return Err(AppError::Refused(format!(
            "run {} is stale: its process ({}) stopped sending heartbeats at {}: {resume}",
            r.id,
            r.holder.as_deref().unwrap_or("?"),
            format_ts(since)
        )));
    }
    Ok(())
}

/// The gate to approve: the one named, else the one the run waits on.
async fn gate_step(
    j: &Arc<dyn Store>,
    r: &RunRecord,
    step: Option<&str>,
) -> Result<String, AppError> {
    if let Some(s) = step {
        return Ok(s.to_string());
    }
    match j
        .steps(&r.id)
        .await?
        .into_iter()
        .find(|s| s.status == StepStatus::WaitingApproval)
    {
        Some(s) => Ok(s.step_id),
        None => Err(AppError::Refused(format!("run {} is not waiting for an approval right now\n  hint: pass --step to approve a later approval step in advance", r.id))),
    }
}

fn refuse(r: &RunRecord, step_id: &str, approvers: &[String], by: &str) -> Result<(), AppError> {
    match may_approve(&r.initiator, approvers, by) {
        Ok(()) => Ok(()),
        Err(Refusal::Empty) => Err(AppError::Input(
            "error: an approval needs a name: --by NAME (or $FAILOVER_USER)".into(),
        )),
        Err(Refusal::Initiator) => Err(AppError::Refused(format!("{by} started run {} and cannot approve it\n  hint: another person approves with: failover approve {} --by <their name>", r.id, r.id))),
        Err(Refusal::NotAllowed { allowed }) => Err(AppError::Refused(format!(
            "{by} may not approve step `{step_id}`; allowed approvers: {}",
            allowed.join(", ")
        ))),
    }
}
