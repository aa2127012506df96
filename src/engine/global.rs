//! A graceful switchover of Aurora global databases that escalates: the switchover is made
//! (journaled like every call) and watched for at most `escalate_after`; if the writer has not
//! moved by then (the primary region too impaired to cooperate), the ungraceful failover
//! (`steps::decide_escalation`) is made at once (`auto`) or after an approval gate that says
//! why and what is at risk (`approval`), the reason journaled either way.
//!
//! Correct under a lost answer: a switchover whose answer was lost may have been accepted, so
//! the step watches the global cluster rather than calling again (the call is in doubt, see
//! `World::in_doubt`), and escalates only if the writer still has not moved. On resume the
//! step observes first: a switchover or failover under way is waited for, a failover that may
//! already have been made is held back until its effect shows, an approval given before is
//! not asked again.

use super::act::{execute_decision, wait_all};
use super::ctx::{Ctx, StepError};
use super::step::{observe_with_journal, report_decision, settle_observed, wait_for_approval};
use crate::call::{Await, Call, Decision};
use crate::cloud::Lag;
use crate::progress::Progress;
use crate::runbook::bind::{BoundStep, EscalateMode, GlobalMove};
use crate::steps;
use std::time::Duration;

/// The replication lag metric read right before a global failover (ms, emitted by the
/// secondary cluster being promoted).
pub const GLOBAL_LAG_METRIC: &str = "AuroraGlobalDBRPOLag";
/// How far back the latest lag datapoint is looked for.
const LAG_WINDOW: Duration = Duration::from_secs(5 * 60);

pub(crate) async fn switchover_escalating(
    ctx: &Ctx,
    step: &BoundStep,
    m: &GlobalMove,
    first_attempt: bool,
) -> Result<Option<String>, StepError> {
    let sid = step.id.as_str();
    let Some(e) = &m.escalate else {
        return Err(StepError::Precondition("no escalation declared".into()));
    };
    let Some(target) = steps::global::target_region(m) else {
        return Err(StepError::Precondition(
            "no region to move the writer to; add it to the environment's `regions`".into(),
        ));
    };
    // 1. The graceful switchover: observe, decide, make the calls (not their waits).
    let world = observe_with_journal(ctx, step, first_attempt, None).await?;
    let decision = steps::decide(step, &world, &ctx.spec.run_id);
    report_decision(ctx, sid, &decision, &mut vec![]).await;
    settle_observed(ctx, sid, &world, &decision).await;
    if !decision.problems.is_empty() {
        return Err(StepError::Precondition(decision.problems.join("\n  ")));
    }
    let calls_only = Decision {
        awaits: vec![],
        ..decision.clone()
    };
    let mut why_not = String::new();
    match execute_decision(ctx, step, &calls_only, &world).await {
        Err(e @ (StepError::Journal(_) | StepError::Fenced(_) | StepError::Stopped(_))) => {
            return Err(e)
        }
        // Refused, or its answer lost (it may have been accepted): the global cluster is
        // watched all the same, and the failover follows if the writer does not move.
        Err(err) => why_not = format!(" (the switchover call failed: {err})"),
        Ok(()) => {}
    }
    // 2. Watch every global cluster of the step for at most `escalate_after`.
    let waits: Vec<Await> = m
        .global_clusters
        .iter()
        .map(|g| Await::GlobalWriterIn {
            global_cluster: g.clone(),
            region: target.clone(),
        })
        .collect();
    let pending: Vec<(&Await, Option<String>)> = waits.iter().map(|a| (a, None)).collect();
    let watched = tokio::select! {
        biased;
        r = wait_all(ctx, step, pending, super::observe::Members::default()) => Some(r),
        _ = ctx.ports.clock.sleep(e.after) => None,
    };
    let reason = match watched {
        Some(Ok(())) => {
            return Ok(Some(format!(
                "switchover to {target} completed within {}",
                humantime::format_duration(e.after)
            )))
        }
        Some(Err(e @ (StepError::Journal(_) | StepError::Fenced(_) | StepError::Stopped(_)))) => {
            return Err(e)
        }
        Some(Err(err)) => format!("the switchover to {target} did not happen: {err}{why_not}"),
        None => format!(
            "the switchover to {target} has not completed within {}{why_not}",
            humantime::format_duration(e.after)
        ),
    };
    escalate(ctx, step, m, &reason).await
}

/// The ungraceful failover, decided again on a fresh observation (the switchover may have
/// completed at the last moment), gated by a person with `approval`.
async fn escalate(
    ctx: &Ctx,
    step: &BoundStep,
    m: &GlobalMove,
    reason: &str,
) -> Result<Option<String>, StepError> {
    let sid = step.id.as_str();
    let Some(e) = &m.escalate else {
        return Ok(None);
    };
    let world = observe_with_journal(ctx, step, false, None).await?;
    let d = steps::decide_escalation(step, &world);
    let mut lags = vec![];
    for c in &d.calls {
        lags.push((c.resource(), data_at_risk(ctx, c).await));
    }
    let at_risk: Vec<String> = lags
        .iter()
        .map(|(g, l)| format!("{g}: {}", l.describe()))
        .collect();
    ctx.journal
        .note(
            &ctx.spec.run_id,
            Some(sid),
            "escalation",
            serde_json::json!({
                "why": reason,
                "mode": e.mode,
                "failovers": d.calls.iter().map(Call::describe).collect::<Vec<_>>(),
                "data_at_risk": lags.iter().map(|(g, l)| serde_json::json!({"global_cluster": g, "lag": l})).collect::<Vec<_>>(),
            }),
        )
        .await?;
    ctx.reporter.report(Progress::Skip {
        step: sid.to_string(),
        text: format!("escalating: {reason}"),
    });
    if !d.calls.is_empty() && e.mode == EscalateMode::Approval {
        let message = format!(
            "{reason}. Fail over with data loss (FailoverGlobalCluster AllowDataLoss=true) to {}? {}",
            steps::global::target_region(m)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            at_risk.join("; ")
        );
        wait_for_approval(ctx, step, &message, &e.approvers, 1).await?;
    }
    // Decide again after the gate (a person may have taken long; the world moves on), holding
    // back a failover that may already have been made, until nothing is held back.
    let mut calls = 0;
    let mut announced = vec![];
    loop {
        let world = observe_with_journal(ctx, step, false, None).await?;
        let d = steps::decide_escalation(step, &world);
        report_decision(ctx, sid, &d, &mut announced).await;
        if !d.problems.is_empty() {
            return Err(StepError::Precondition(d.problems.join("\n  ")));
        }
        execute_decision(ctx, step, &d, &world).await?;
        calls += d.calls.len();
        if d.deferred.is_empty() {
            break;
        }
        ctx.sleep(ctx.spec.poll_interval).await?;
    }
    Ok(Some(format!(
        "escalated to failover ({calls} call(s)): {reason}"
    )))
}

/// The replication lag of the secondary a global failover promotes, read right before it:
/// the writes that may be lost. Never blocks the failover: a failed read says why.
pub(crate) async fn data_at_risk(ctx: &Ctx, call: &Call) -> Lag {
    let Call::FailoverGlobalCluster {
        target_arn, region, ..
    } = call
    else {
        return Lag {
            metric: GLOBAL_LAG_METRIC.into(),
            ms: None,
            why: Some("not a global failover".into()),
        };
    };
    let cluster = target_arn.rsplit(':').next().unwrap_or(target_arn);
    let Some(metrics) = &ctx.ports.metrics else {
        return Lag {
            metric: GLOBAL_LAG_METRIC.into(),
            ms: None,
            why: Some("no CloudWatch client for this run".into()),
        };
    };
    match metrics
        .latest_rds_metric(
            region,
            GLOBAL_LAG_METRIC,
            ("DBClusterIdentifier", cluster),
            LAG_WINDOW,
        )
        .await
    {
        Ok(ms) => Lag {
            metric: GLOBAL_LAG_METRIC.into(),
            ms,
            why: None,
        },
        Err(e) => Lag {
            metric: GLOBAL_LAG_METRIC.into(),
            ms: None,
            why: Some(format!("the read failed: {e}")),
        },
    }
}
