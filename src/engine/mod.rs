//! The engine: runs bound steps as a DAG against the ports.
//!
//! - `observe` reads the world with few calls (filters, pages) and no side effects.
//! - `plan_run` is the dry-run executor: observe once, then `plan::plan` (pure).
//! - `execute` is the live executor: independent steps run concurrently; each step observes
//!   again, calls the same `steps::decide`, journals the intent, makes the call, journals the
//!   outcome, and waits for the world to reach the goal. Timeouts, retries and approvals live
//!   here; error classification lives in `cloud::retry`.

pub mod observe;
pub mod traffic;

use crate::call::{Await, Call, Decision};
use crate::cloud::{CloudError, ErrorKind};
use crate::journal::{Journal, JournalError};
use crate::plan::Plan;
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::runbook::bind::{BoundAction, BoundStep};
use crate::runbook::OnFailure;
use crate::status::{RunStatus, StepStatus};
use crate::steps::{self, wait, wait::AwaitStatus};
use crate::types::{RunId, StepId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
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

/// Dry run: observe once (read-only) and plan.
pub async fn plan_run(
    ports: &Ports,
    runbook: &str,
    environment: &str,
    run_id: &RunId,
    steps: &[BoundStep],
) -> Result<Plan, CloudError> {
    let mut needs = steps::Needs::default();
    for s in steps.iter().filter(|s| s.enabled) {
        needs.merge(steps::needs(s, run_id));
    }
    let world = observe::observe(ports, &needs).await?;
    Ok(crate::plan::plan(
        runbook,
        environment,
        run_id,
        steps,
        &world,
    ))
}

pub(crate) struct Ctx {
    /// Readers whose promotion failed in this run (fed back into decisions).
    unpromotable: std::sync::Mutex<std::collections::BTreeSet<crate::types::InstanceId>>,
    ports: Ports,
    journal: Arc<Journal>,
    spec: RunSpec,
    reporter: Arc<dyn Reporter>,
}

/// Live run of the DAG. The run record must already exist in the journal.
pub async fn execute(
    ports: Ports,
    journal: Arc<Journal>,
    spec: RunSpec,
    reporter: Arc<dyn Reporter>,
) -> RunOutcome {
    let ctx = Arc::new(Ctx {
        unpromotable: Default::default(),
        ports,
        journal,
        spec,
        reporter,
    });
    let steps = ctx.spec.steps.clone();
    let run_id = ctx.spec.run_id.clone();
    for s in &steps {
        if let Err(e) =
            ctx.journal
                .init_step(&run_id, s.id.as_str(), s.action.name(), StepStatus::Pending)
        {
            tracing::error!("journal: {e}");
        }
    }
    let mut status: HashMap<StepId, StepStatus> = HashMap::new();
    let mut messages: HashMap<StepId, Option<String>> = HashMap::new();
    let mut running: tokio::task::JoinSet<(StepId, StepStatus, Option<String>)> =
        tokio::task::JoinSet::new();
    let mut started: Vec<StepId> = vec![];
    let mut aborting = false;
    loop {
        // Start every ready step, within the concurrency limit.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for s in &steps {
                if started.contains(&s.id) {
                    continue;
                }
                if !s.after.iter().all(|a| status.contains_key(a)) {
                    continue;
                }
                let blocked_by = crate::plan::blocked_by(s, &steps, |id| status.get(id).copied());
                let terminal = if let Some(b) = blocked_by {
                    Some((
                        StepStatus::Blocked,
                        format!("not run: step `{b}` did not succeed"),
                    ))
                } else if aborting {
                    Some((
                        StepStatus::Cancelled,
                        "not run: the run was aborted by a failed step".to_string(),
                    ))
                } else if !s.enabled {
                    Some((
                        StepStatus::Skipped,
                        format!(
                            "skipped: `when` is false ({})",
                            s.when.clone().unwrap_or_default()
                        ),
                    ))
                } else {
                    None
                };
                if let Some((st, msg)) = terminal {
                    started.push(s.id.clone());
                    status.insert(s.id.clone(), st);
                    let _ = ctx
                        .journal
                        .step_finished(&run_id, s.id.as_str(), st, Some(&msg));
                    ctx.reporter.report(Progress::StepFinished {
                        step: s.id.to_string(),
                        status: st,
                        message: Some(msg.clone()),
                    });
                    messages.insert(s.id.clone(), Some(msg));
                    progressed = true;
                    continue;
                }
                if running.len() >= ctx.spec.max_concurrency.max(1) {
                    break;
                }
                started.push(s.id.clone());
                let c = ctx.clone();
                let step = s.clone();
                running.spawn(async move {
                    let (st, msg) = run_step(&c, &step).await;
                    (step.id.clone(), st, msg)
                });
                progressed = true;
            }
        }
        match running.join_next().await {
            None => break,
            Some(Ok((id, st, msg))) => {
                if st == StepStatus::Failed
                    && steps.iter().find(|s| s.id == id).map(|s| s.on_failure)
                        == Some(OnFailure::Abort)
                {
                    aborting = true;
                }
                status.insert(id.clone(), st);
                messages.insert(id, msg);
            }
            Some(Err(e)) => {
                tracing::error!("a step task panicked: {e}");
                aborting = true;
            }
        }
    }
    let mut out = vec![];
    let mut ok = true;
    for s in &steps {
        let st = status.get(&s.id).copied().unwrap_or(StepStatus::Cancelled);
        if matches!(
            st,
            StepStatus::Failed | StepStatus::Blocked | StepStatus::Cancelled
        ) && !(st == StepStatus::Failed && s.on_failure == OnFailure::Continue)
        {
            ok = false;
        }
        out.push((s.id.clone(), st, messages.get(&s.id).cloned().flatten()));
    }
    RunOutcome {
        run_id,
        succeeded: ok,
        steps: out,
    }
}

async fn run_step(ctx: &Ctx, step: &BoundStep) -> (StepStatus, Option<String>) {
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
pub(crate) async fn execute_decision(
    ctx: &Ctx,
    step: &BoundStep,
    decision: &Decision,
) -> Result<(), StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    let mut change_ids: HashMap<usize, String> = HashMap::new();
    // One resource's failed call does not stop the calls for the others (an evacuation moves
    // everything it can); the first error is returned once every call has been tried and the
    // successful ones have been waited for.
    let mut first_err: Option<StepError> = None;
    let mut failed: Vec<&Call> = vec![];
    for (i, call) in decision.calls.iter().enumerate() {
        let op = call.operation();
        let res = call.resource();
        ctx.reporter.report(Progress::Call {
            step: sid.to_string(),
            text: call.describe(),
        });
        let seq = ctx.journal.intent(
            run_id,
            sid,
            &op,
            &res,
            serde_json::to_value(redact(call)).unwrap_or_default(),
        )?;
        let started = ctx.ports.clock.now();
        let result = perform(ctx, call).await;
        let ms = ctx
            .ports
            .clock
            .now()
            .duration_since(started)
            .unwrap_or_default()
            .as_millis() as u64;
        match result {
            Ok(out) => {
                ctx.journal.outcome(
                    run_id,
                    sid,
                    seq,
                    &op,
                    &res,
                    serde_json::json!({"ok": true, "result": out, "ms": ms}),
                )?;
                ctx.reporter.report(Progress::CallDone {
                    step: sid.to_string(),
                    operation: op.clone(),
                    resource: res.clone(),
                    ok: true,
                    ms,
                    detail: None,
                });
                if let Some(id) = out.get("change_id").and_then(|v| v.as_str()) {
                    change_ids.insert(i, id.to_string());
                }
            }
            Err(e) => {
                if let (Call::FailoverDbCluster { target, .. }, StepError::Cloud(ce)) = (call, &e) {
                    if matches!(ce.kind, ErrorKind::InvalidState | ErrorKind::InvalidRequest) {
                        ctx.unpromotable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(target.clone());
                    }
                }
                // The kind says whether the call may have been processed (rollback needs it).
                let kind = match &e {
                    StepError::Cloud(ce) => serde_json::to_value(ce.kind).unwrap_or_default(),
                    _ => serde_json::Value::Null,
                };
                ctx.journal.outcome(run_id, sid, seq, &op, &res, serde_json::json!({"ok": false, "error": e.to_string(), "kind": kind, "ms": ms}))?;
                ctx.reporter.report(Progress::CallDone {
                    step: sid.to_string(),
                    operation: op,
                    resource: res,
                    ok: false,
                    ms,
                    detail: Some(e.to_string()),
                });
                failed.push(call);
                first_err.get_or_insert(e);
            }
        }
    }
    let awaits: Vec<(&Await, Option<String>)> = decision
        .awaits
        .iter()
        .filter(|a| !failed.iter().any(|c| await_is_for(a, c)))
        .map(|a| match a {
            Await::ChangeInsync { call_index } => (a, change_ids.get(call_index).cloned()),
            _ => (a, None),
        })
        .collect();
    wait_all(ctx, step, awaits).await?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether an await waits for the effect of this call (so it is skipped when the call failed).
fn await_is_for(a: &Await, c: &Call) -> bool {
    match (a, c) {
        (
            Await::ClusterWriterOutside { cluster, .. },
            Call::FailoverDbCluster { cluster: c2, .. },
        ) => cluster == c2,
        (Await::InstanceOutside { instance, .. }, Call::RebootDbInstance { instance: i2, .. }) => {
            instance == i2
        }
        (
            Await::SnapshotAvailable { id, .. },
            Call::CreateDbClusterSnapshot { snapshot, .. }
            | Call::CreateDbSnapshot { snapshot, .. },
        ) => id == snapshot,
        // A failed change has no change id: its ChangeInsync await returns at once.
        _ => false,
    }
}

/// Headers carrying secrets are not journaled.
pub(crate) fn redact(call: &Call) -> Call {
    let mut c = call.clone();
    if let Call::Http { request, .. } = &mut c {
        for (k, v) in &mut request.headers {
            if crate::cloud::is_sensitive_header(k, v) {
                *v = crate::cloud::REDACTED.into();
            }
        }
    }
    c
}

pub(crate) async fn perform(ctx: &Ctx, call: &Call) -> Result<serde_json::Value, StepError> {
    let p = &ctx.ports;
    match call {
        Call::FailoverDbCluster {
            cluster, target, ..
        } => {
            p.db.failover_cluster(cluster, target).await?;
            Ok(serde_json::json!({}))
        }
        Call::RebootDbInstance { instance, .. } => {
            p.db.reboot_with_failover(instance).await?;
            Ok(serde_json::json!({}))
        }
        Call::CreateDbClusterSnapshot { cluster, snapshot } => {
            p.db.create_cluster_snapshot(cluster, snapshot).await?;
            Ok(serde_json::json!({"snapshot": snapshot}))
        }
        Call::CreateDbSnapshot { instance, snapshot } => {
            p.db.create_instance_snapshot(instance, snapshot).await?;
            Ok(serde_json::json!({"snapshot": snapshot}))
        }
        Call::ChangeResourceRecordSets {
            hosted_zone_id,
            comment,
            changes,
            ..
        } => {
            let info = p
                .dns
                .change_record_sets(hosted_zone_id, comment, changes)
                .await?;
            Ok(serde_json::json!({"change_id": info.id, "status": info.status}))
        }
        Call::Http {
            request,
            expect_status,
        } => {
            let mut req = request.clone();
            let resolve = |s: &str| {
                crate::runbook::template::resolve_secrets(s).map_err(StepError::Precondition)
            };
            req.url = resolve(&req.url)?;
            for (_, v) in &mut req.headers {
                *v = resolve(v)?;
            }
            if let Some(b) = &req.body {
                req.body = Some(resolve(b)?);
            }
            let resp = p.http.send(&req).await?;
            let ok = if expect_status.is_empty() {
                (200..300).contains(&resp.status)
            } else {
                expect_status.contains(&resp.status)
            };
            if !ok {
                let excerpt: String = resp.body.chars().take(200).collect();
                return Err(StepError::Http(format!(
                    "{} {} answered {} (expected {}): {excerpt}",
                    request.method,
                    request.url,
                    resp.status,
                    if expect_status.is_empty() {
                        "2xx".to_string()
                    } else {
                        format!("{expect_status:?}")
                    }
                )));
            }
            Ok(serde_json::json!({"status": resp.status}))
        }
    }
}

/// Wait until every await of a step is done: each poll observes all that is still pending
/// at once (one paged Describe per resource kind, one GetChange per change), then the pure
/// `steps::wait::status` says where each stands.
async fn wait_all(
    ctx: &Ctx,
    step: &BoundStep,
    mut pending: Vec<(&Await, Option<String>)>,
) -> Result<(), StepError> {
    let sid = step.id.to_string();
    let poll = ctx.spec.poll_interval;
    // A failover that ends with the writer still in an evacuated zone (RDS refused or rolled
    // it back) must not be waited on until the step times out: after a grace period (the
    // status can lag the call), fail the attempt so the step decides again.
    let grace = Duration::from_secs(90).max(poll.saturating_mul(6));
    let mut stuck_since: HashMap<usize, std::time::SystemTime> = HashMap::new();
    let mut announced: Vec<usize> = vec![];
    let ids: Vec<usize> = (0..pending.len()).collect();
    let mut pending: Vec<(usize, &Await, Option<String>)> = ids
        .into_iter()
        .zip(pending.drain(..))
        .map(|(i, (a, c))| (i, a, c))
        .collect();
    while !pending.is_empty() {
        let awaits: Vec<&Await> = pending.iter().map(|(_, a, _)| *a).collect();
        let changes: Vec<String> = pending.iter().filter_map(|(_, _, c)| c.clone()).collect();
        let world = observe::observe(&ctx.ports, &wait::needs(&awaits, &changes)).await?;
        let now = ctx.ports.clock.now();
        let mut still = vec![];
        for (i, a, change) in pending {
            match wait::status(a, &world, change.as_deref()) {
                AwaitStatus::Done(what) => ctx.reporter.report(Progress::Converged {
                    step: sid.clone(),
                    what,
                }),
                AwaitStatus::Unverified(text) => {
                    ctx.reporter.report(Progress::Skip {
                        step: sid.clone(),
                        text: text.clone(),
                    });
                    let _ = ctx.journal.note(
                        &ctx.spec.run_id,
                        Some(&sid),
                        "warning",
                        serde_json::json!({"text": text}),
                    );
                }
                AwaitStatus::Failed(why) => return Err(StepError::Precondition(why)),
                AwaitStatus::Stalled { what, why } => {
                    let since = *stuck_since.entry(i).or_insert(now);
                    if now.duration_since(since).unwrap_or_default() >= grace {
                        return Err(stalled(ctx, a, why));
                    }
                    announce(ctx, &sid, &mut announced, i, what);
                    still.push((i, a, change));
                }
                AwaitStatus::Pending(what) => {
                    stuck_since.remove(&i);
                    announce(ctx, &sid, &mut announced, i, what);
                    still.push((i, a, change));
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            ctx.ports.clock.sleep(poll).await;
        }
    }
    Ok(())
}

/// Say once per await what it is waiting for.
fn announce(ctx: &Ctx, sid: &str, announced: &mut Vec<usize>, i: usize, what: String) {
    if !announced.contains(&i) {
        announced.push(i);
        ctx.reporter.report(Progress::Waiting {
            step: sid.to_string(),
            what,
        });
    }
}

/// A failover that did not happen: the reader it promoted is passed over next time.
fn stalled(ctx: &Ctx, a: &Await, why: String) -> StepError {
    let Await::ClusterWriterOutside {
        cluster, target, ..
    } = a
    else {
        return StepError::Precondition(why);
    };
    if let Some(t) = target {
        ctx.unpromotable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(t.clone());
    }
    StepError::Cloud(CloudError::new(
        ErrorKind::InvalidState,
        "FailoverDBCluster",
        cluster.as_str(),
        why,
    ))
}

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
