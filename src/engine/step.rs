//! One step of a live run: its attempts within its deadline, each an observe, decide, act;
//! and the steps that act on no cloud resource (approval gates, health assertions, waits).

use super::act::execute_decision;
use super::ctx::{Ctx, StepError};
use super::{observe, traffic};
use crate::call::Decision;
use crate::progress::Progress;
use crate::runbook::bind::{BoundAction, BoundStep};
use crate::status::{RunStatus, StepStatus};
use crate::steps;
use std::time::Duration;

pub(crate) async fn run_step(ctx: &Ctx, step: &BoundStep) -> (StepStatus, Option<String>) {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    ctx.reporter.report(Progress::StepStarted {
        step: sid.to_string(),
        action: step.action.name().to_string(),
    });
    let clock = ctx.ports.clock.clone();
    let attempts = step.retries + 1;
    let mut last_err: Option<StepError> = None;
    let deadline = step.timeout;
    let body = async {
        for attempt in 1..=attempts {
            let _ = ctx.journal.step_started(run_id, sid, attempt);
            match attempt_step(ctx, step).await {
                Ok(summary) => return Ok(summary),
                Err(e) => {
                    let retry = attempt < attempts && e.retryable();
                    ctx.reporter.report(Progress::StepError {
                        step: sid.to_string(),
                        attempt,
                        error: e.to_string(),
                        retrying: retry,
                    });
                    let _ = ctx.journal.note(run_id, Some(sid), "attempt_failed", serde_json::json!({"attempt": attempt, "error": e.to_string(), "retrying": retry}));
                    if !retry {
                        return Err(e);
                    }
                    let backoff =
                        Duration::from_millis((500u64 << (attempt - 1).min(6)).min(30_000));
                    clock.sleep(backoff).await;
                    last_err = Some(e);
                }
            }
        }
        Err(last_err
            .take()
            .unwrap_or_else(|| StepError::Precondition("no attempt was made".into())))
    };
    let result = tokio::select! {
        // Deterministic order (no random branch choice) for the simulator's seeded runs.
        biased;
        r = body => r,
        _ = clock.sleep(deadline) => Err(StepError::Timeout(humantime::format_duration(deadline).to_string())),
    };
    let (st, msg) = match result {
        Ok(summary) => (StepStatus::Succeeded, summary),
        Err(e) => {
            let m = match e.hint() {
                Some(h) => format!("{e}\n  hint: {h}"),
                None => e.to_string(),
            };
            (StepStatus::Failed, Some(m))
        }
    };
    let _ = ctx.journal.step_finished(run_id, sid, st, msg.as_deref());
    ctx.reporter.report(Progress::StepFinished {
        step: sid.to_string(),
        status: st,
        message: msg.clone(),
    });
    (st, msg)
}

/// One attempt: observe, decide, act (journaled), wait.
async fn attempt_step(ctx: &Ctx, step: &BoundStep) -> Result<Option<String>, StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    match &step.action {
        BoundAction::Approval { message, approvers } => {
            return wait_for_approval(ctx, step, message, approvers).await
        }
        BoundAction::HealthAssert {
            zones,
            expect,
            rounds,
        } => return health_assert(ctx, step, zones, expect, *rounds).await,
        BoundAction::TrafficShed { ladder, max_tier } => {
            return traffic::shed(ctx, step, ladder, *max_tier).await
        }
        BoundAction::TrafficRestore { ladder } => return traffic::restore(ctx, step, ladder).await,
        BoundAction::TrafficRevert { ladder, tiers } => {
            return traffic::revert(ctx, step, ladder, tiers).await
        }
        BoundAction::Wait { duration } => {
            ctx.reporter.report(Progress::Waiting {
                step: sid.to_string(),
                what: format!("waiting {}", humantime::format_duration(*duration)),
            });
            ctx.ports.clock.sleep(*duration).await;
            return Ok(None);
        }
        _ => {}
    }
    let needs = steps::needs(step, run_id);
    let mut world = observe::observe(&ctx.ports, &needs).await?;
    world.unpromotable = ctx
        .unpromotable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let decision: Decision = steps::decide(step, &world, run_id);
    for s in &decision.skips {
        ctx.reporter.report(Progress::Skip {
            step: sid.to_string(),
            text: s.clone(),
        });
        let _ = ctx
            .journal
            .note(run_id, Some(sid), "skip", serde_json::json!({"text": s}));
    }
    // Problems with one resource do not stop the others: an evacuation moves everything it
    // can, then the step fails and says what is left.
    for p in &decision.problems {
        ctx.reporter.report(Progress::Problem {
            step: sid.to_string(),
            text: p.clone(),
        });
    }
    execute_decision(ctx, step, &decision).await?;
    if !decision.problems.is_empty() {
        return Err(StepError::Precondition(decision.problems.join("\n  ")));
    }
    let summary = if decision.calls.is_empty() {
        "nothing to do: already as wanted".to_string()
    } else {
        format!("{} call(s) made", decision.calls.len())
    };
    Ok(Some(summary))
}

/// Make the decision's calls (intent, call, outcome, each) and wait for its awaits.
async fn health_assert(
    ctx: &Ctx,
    step: &BoundStep,
    zones: &[crate::types::Zone],
    expect: &str,
    rounds: Option<u32>,
) -> Result<Option<String>, StepError> {
    let Some(source) = &ctx.ports.health else {
        return Err(StepError::Precondition("this environment has no [health] probes, so the assertion cannot be checked; add [health] to its file (docs/health.md) or remove the step".into()));
    };
    ctx.reporter.report(Progress::Waiting {
        step: step.id.to_string(),
        what: format!(
            "probing zone health ({} round(s))",
            rounds
                .map(|r| r.to_string())
                .unwrap_or_else(|| "enough".into())
        ),
    });
    let report = source
        .report(rounds)
        .await
        .map_err(StepError::Precondition)?;
    let mut problems = vec![];
    let mut ok = vec![];
    for z in zones {
        let a: crate::health::assert::Assertion = format!("{z} {expect}")
            .parse()
            .map_err(StepError::Precondition)?;
        match crate::health::assert::check(&report, &a) {
            Ok(()) => ok.push(a.to_string()),
            Err(m) => problems.push(m),
        }
    }
    let _ = ctx.journal.note(
        &ctx.spec.run_id,
        Some(step.id.as_str()),
        "health",
        serde_json::to_value(&report).unwrap_or_default(),
    );
    if problems.is_empty() {
        Ok(Some(format!("{} (health report journaled)", ok.join(", "))))
    } else {
        Err(StepError::Precondition(problems.join("\n  ")))
    }
}

async fn wait_for_approval(
    ctx: &Ctx,
    step: &BoundStep,
    message: &str,
    approvers: &[String],
) -> Result<Option<String>, StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    let existing = ctx.journal.approvals(run_id, sid)?;
    if existing.is_empty() {
        ctx.journal.note(
            run_id,
            Some(sid),
            "approval_requested",
            serde_json::json!({"message": message, "approvers": approvers}),
        )?;
        ctx.journal
            .set_step_status(run_id, sid, StepStatus::WaitingApproval, Some(message))?;
        ctx.journal
            .set_run_status(run_id, RunStatus::WaitingApproval, None, false)?;
        ctx.reporter.report(Progress::ApprovalRequested {
            step: sid.to_string(),
            message: message.to_string(),
            run_id: run_id.clone(),
        });
    }
    loop {
        let by = ctx.journal.approvals(run_id, sid)?;
        if let Some(a) = crate::approval::released_by(&ctx.spec.initiator, approvers, &by) {
            ctx.journal
                .set_run_status(run_id, RunStatus::Running, None, false)?;
            return Ok(Some(format!("approved by {a}")));
        }
        ctx.ports.clock.sleep(ctx.spec.approval_poll).await;
    }
}
