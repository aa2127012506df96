//! One step of a live run: its attempts within its deadline, each an observe, decide, act;
//! and the steps that act on no cloud resource (approval gates, health assertions, waits).

use super::act::execute_decision;
use super::ctx::{Ctx, StepError};
use super::{observe, traffic};
use crate::call::{Await, Call, Decision};
use crate::progress::Progress;
use crate::runbook::bind::{BoundAction, BoundStep, EscalateMode, GlobalMove};
use crate::status::{RunStatus, StepStatus};
use crate::steps;
use crate::types::{ClusterId, InstanceId, RunId};
use crate::world::{InDoubtCall, World};
use std::collections::HashSet;
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
            ctx.check_stop()?;
            let _ = ctx.journal.step_started(run_id, sid, attempt).await;
            match attempt_step(ctx, step, attempt == 1).await {
                Ok(summary) => return Ok(summary),
                Err(e) => {
                    let retry = attempt < attempts && e.retryable();
                    ctx.reporter.report(Progress::StepError {
                        step: sid.to_string(),
                        attempt,
                        error: e.to_string(),
                        retrying: retry,
                    });
                    let _ = ctx.journal.note(run_id, Some(sid), "attempt_failed", serde_json::json!({"attempt": attempt, "error": e.to_string(), "retrying": retry})).await;
                    if !retry {
                        return Err(e);
                    }
                    let backoff =
                        Duration::from_millis((500u64 << (attempt - 1).min(6)).min(30_000));
                    ctx.sleep(backoff).await?;
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
    let _ = ctx
        .journal
        .step_finished(run_id, sid, st, msg.as_deref())
        .await;
    ctx.reporter.report(Progress::StepFinished {
        step: sid.to_string(),
        status: st,
        message: msg.clone(),
    });
    (st, msg)
}

/// One attempt: observe, decide, act (journaled), wait. The first decision of a step's first
/// attempt may use the plan's observation while it is fresh (`Ctx::plan_world`); every other
/// decision observes again.
async fn attempt_step(
    ctx: &Ctx,
    step: &BoundStep,
    first_attempt: bool,
) -> Result<Option<String>, StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    match &step.action {
        BoundAction::Approval {
            message,
            approvers,
            required,
        } => return wait_for_approval(ctx, step, message, approvers, *required).await,
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
        BoundAction::GlobalMove(m) if m.escalate.is_some() && !m.unplanned => {
            return switchover_escalating(ctx, step, m, first_attempt).await
        }
        BoundAction::Wait { duration } => {
            ctx.reporter.report(Progress::Waiting {
                step: sid.to_string(),
                what: format!("waiting {}", humantime::format_duration(*duration)),
            });
            ctx.sleep(*duration).await?;
            return Ok(None);
        }
        _ => {}
    }
    // Observe, decide, act; again while calls are held back because the same call may
    // already have been made (its effect not visible yet), until it shows or its grace passes.
    let mut calls = 0;
    let mut problems = vec![];
    let mut announced = HashSet::new();
    let mut may_reuse = first_attempt;
    // While records wait for their databases: what the polls carry over (see `Carry`).
    let mut carry = Carry::default();
    loop {
        let world =
            observe_with_journal(ctx, step, std::mem::take(&mut may_reuse), &mut carry).await?;
        // The last pass (nothing left waiting) waits for the earlier changes to the zone
        // without reading them first: the wait reads them in order (`Looks`).
        let decision: Decision = steps::decide(step, &world, run_id);
        report_decision(ctx, sid, &decision, &mut announced).await;
        settle_observed(ctx, sid, &world, &decision).await;
        // Problems with one resource do not stop the others: an evacuation moves everything
        // it can, then the step fails and says what is left.
        problems = decision.problems.clone();
        execute_decision(ctx, step, &decision, &world).await?;
        calls += decision.calls.len();
        if decision.deferred.is_empty() && decision.waiting.is_empty() {
            break;
        }
        carry.keep(&world, &decision);
        if decision.deferred.is_empty() {
            // Records wait for databases other steps fail over: wake when those steps read
            // them, or after a poll interval.
            ctx.sleep_or_seen(ctx.spec.poll_interval).await?;
        } else {
            ctx.sleep(ctx.spec.poll_interval).await?;
        }
    }
    if !problems.is_empty() {
        return Err(StepError::Precondition(problems.join("\n  ")));
    }
    Ok(Some(if calls == 0 {
        "nothing to do: already as wanted".to_string()
    } else {
        format!("{calls} call(s) made")
    }))
}

/// What a step's decision loop carries from one poll to the next while records wait for their
/// databases (`decision.waiting`): the clusters' members (`observe::Members`), and the hosted
/// zones and record sets as the step last read them with its own changes applied (`World::apply`:
/// the run holds the zone's lease, so no other run changes them, and reads that lag behind
/// the step's own changes are not taken for the truth). Nothing is carried past a decision
/// that holds a call back (in doubt): that one observes afresh.
#[derive(Default)]
struct Carry {
    members: Option<observe::Members>,
    records: Option<World>,
}

impl Carry {
    fn keep(&mut self, world: &World, d: &Decision) {
        if d.waiting.is_empty() {
            return;
        }
        if self.members.is_none() {
            self.members = Some(observe::Members::seen_in(world));
        }
        self.records = d.deferred.is_empty().then(|| {
            let mut kept = World {
                hosted_zones: world.hosted_zones.clone(),
                records: world.records.clone(),
                ..World::default()
            };
            for c in &d.calls {
                kept.apply(c);
            }
            kept
        });
    }
}

/// The world a step decides against: observed through the ports (or, with `may_reuse`, the
/// plan's observation while it is fresh; or, while records wait, see [`dns_poll`]), plus what
/// the journal knows (calls that may have been made and are within their grace, recent Route
/// 53 changes, readers this run failed to promote). Calls past their grace are settled here.
/// The status of recent changes is not read here: the decision loop reads it for the last pass.
async fn observe_with_journal(
    ctx: &Ctx,
    step: &BoundStep,
    may_reuse: bool,
    carry: &mut Carry,
) -> Result<World, StepError> {
    let needs = steps::needs(step, &ctx.spec.run_id);
    // Which steps have ended, read before the world is: a step seen ended has its effects in
    // the observation that follows (read after, a failover that ended between the two reads
    // would look ended but not done, and its records be given up on).
    let finished = ctx
        .finished
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // Times in the journal are on the journal's clock (the wall clock, or the simulator's
    // when the journal is the simulator's own): compare them with that clock, not the ports'.
    let now = ctx.journal.now_ms();
    let news = !matches!(step.action, BoundAction::DnsUpdate { .. });
    let planned = may_reuse
        .then(|| ctx.plan_world(&needs, !news))
        .flatten()
        .map(|planned| seen_for_snapshot(ctx, step, planned));
    // With the plan's observation used: the databases read now rather than taken from it
    // (none when all of it was). `None`: the plan's observation is not used.
    let read_now: Option<HashSet<String>> = planned
        .as_ref()
        .map(|(_, rest)| rest.database_names().map(str::to_string).collect());
    let mut world = match (planned, carry.records.as_ref(), carry.members.as_mut()) {
        (Some((mut w, rest)), _, _) => {
            // What the plan saw that is still good, and the rest read now.
            if !rest.is_empty() {
                let fresh = observe::observe(&ctx.ports, &rest).await?;
                ctx.saw(&fresh, news);
                w.merge(fresh);
            }
            w
        }
        (None, Some(records), Some(m)) => dns_poll(ctx, step, &finished, records, m).await?,
        (None, _, Some(m)) => {
            let w = observe::observe_waiting(&ctx.ports, &needs, m).await?;
            ctx.saw(&w, news);
            w
        }
        (None, _, None) => {
            let w = observe::observe(&ctx.ports, &needs).await?;
            ctx.saw(&w, news);
            w
        }
    };
    let (recent, in_doubt) = from_journal(ctx, step, &world, now).await?;
    let predates = |fresh: &HashSet<String>| {
        !recent.is_empty() || in_doubt.iter().any(|x| !fresh.contains(&x.resource))
    };
    if read_now.as_ref().is_some_and(predates) {
        // The journal knows calls whose effect the plan's reads may predate: observe now, as
        // every decision about a call in doubt does.
        world = observe::observe(&ctx.ports, &needs).await?;
        ctx.saw(&world, news);
    }
    world.recent_changes = recent;
    world.in_doubt = in_doubt;
    world.unpromotable = ctx
        .unpromotable
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    world.finished_steps = finished;
    Ok(world)
}

/// An `rds.snapshot` takes the databases the plan's observation no longer covers as the run
/// last saw them (`Ctx::seen`), however long ago: the failover steps it follows watched them
/// until their failovers were done, and all it asks of a database is whether it is available
/// (a sighting out of date costs one call RDS refuses, InvalidDBClusterStateFault, and the
/// next attempt reads afresh). Only the databases the run has never seen are read. A call in
/// doubt on one of them still makes the step observe afresh (`observe_with_journal`).
fn seen_for_snapshot(
    ctx: &Ctx,
    step: &BoundStep,
    (mut w, rest): (World, crate::world::Needs),
) -> (World, crate::world::Needs) {
    if !matches!(step.action, BoundAction::Snapshot { .. }) {
        return (w, rest);
    }
    ctx.seen.lock().unwrap_or_else(|e| e.into_inner()).fill(
        &rest.clusters,
        &rest.instances,
        &mut w,
    );
    let rest = crate::world::Needs {
        clusters: rest
            .clusters
            .iter()
            .filter(|c| !w.clusters.contains_key(*c))
            .cloned()
            .collect(),
        instances: rest
            .instances
            .iter()
            .filter(|i| !w.instances.contains_key(*i))
            .cloned()
            .collect(),
        ..rest
    };
    (w, rest)
}

/// A `dns.update`'s poll while its records wait for their databases: the record sets carried
/// (`Carry`), the databases as the run last saw them (`Ctx::seen`); described afresh only
/// those not seen out of the evacuated zone that no running `records_after` step watches (a
/// running failover step polls its own databases, and wakes this step when it has).
async fn dns_poll(
    ctx: &Ctx,
    step: &BoundStep,
    finished: &std::collections::BTreeMap<crate::types::StepId, crate::status::StepStatus>,
    records: &World,
    members: &mut observe::Members,
) -> Result<World, StepError> {
    let BoundAction::DnsUpdate {
        records_after,
        evacuate,
        dep_clusters,
        dep_instances,
        ..
    } = &step.action
    else {
        return Ok(records.clone());
    };
    let mut watched = crate::world::Needs::default();
    for s in ctx
        .spec
        .steps
        .iter()
        .filter(|s| records_after.contains(&s.id) && !finished.contains_key(&s.id))
    {
        watched.merge(steps::needs(s, &ctx.spec.run_id));
    }
    let mut world = records.clone();
    ctx.seen.lock().unwrap_or_else(|e| e.into_inner()).fill(
        dep_clusters,
        dep_instances,
        &mut world,
    );
    let moved = |dep: &str, w: &World| steps::dns::dep_moved(dep, evacuate, w).is_ok();
    let watched_clusters: HashSet<&ClusterId> = watched.clusters.iter().collect();
    let watched_instances: HashSet<&InstanceId> = watched.instances.iter().collect();
    let read = crate::world::Needs {
        clusters: dep_clusters
            .iter()
            .filter(|c| !watched_clusters.contains(c) && !moved(c.as_str(), &world))
            .cloned()
            .collect(),
        instances: dep_instances
            .iter()
            .filter(|i| !watched_instances.contains(i) && !moved(i.as_str(), &world))
            .cloned()
            .collect(),
        ..Default::default()
    };
    if !read.is_empty() {
        let fresh = observe::observe_waiting(&ctx.ports, &read, members).await?;
        ctx.saw(&fresh, false);
        world.merge(fresh);
    }
    Ok(world)
}

/// What the journal says about the step's resources: Route 53 changes made recently to its
/// hosted zones (zone id, change id), and calls that may have been made (in doubt) or that AWS
/// accepted, within their grace. The journal is read from where the last decision left it
/// (`Ledger`), not whole.
async fn from_journal(
    ctx: &Ctx,
    step: &BoundStep,
    world: &World,
    now: i64,
) -> Result<(Vec<(String, String)>, Vec<InDoubtCall>), StepError> {
    let horizon = now - RECENT.as_millis() as i64;
    let run = &ctx.spec.run_id;
    super::ledger::Ledger::refresh(&ctx.ledger, ctx.journal.as_ref(), run, horizon).await?;
    let mut ledger = ctx.ledger.lock().unwrap_or_else(|e| e.into_inner());
    ledger.prune(horizon, now);
    let zone_ids: HashSet<&str> = world.hosted_zones.values().map(|z| z.id.as_str()).collect();
    let recent: Vec<(String, String)> = ledger
        .changes_since(horizon)
        .filter(|c| zone_ids.contains(c.hosted_zone_id.as_str()))
        .map(|c| (c.hosted_zone_id.clone(), c.change_id.clone()))
        .collect();
    // Calls made by this run that AWS accepted, whose grace has not passed: reads may not show
    // their effect yet (they lag behind writes), so a step's next attempt, or the run resumed,
    // would make them again. Each is held back like a call in doubt until its effect shows.
    let ours = resources_of(world, step);
    let mut in_doubt = ledger.in_doubt(horizon, now, &ours);
    in_doubt.extend(ledger.accepted(run, now, &ours));
    // A snapshot step makes snapshots only: the other calls in doubt on its databases (their
    // failovers) are their own step's to settle, as a DNS step's are. Its decision neither
    // repeats nor settles them, and a failover under way shows as the database not available.
    if let BoundAction::Snapshot { .. } = step.action {
        in_doubt.retain(|x| SNAPSHOT_CALLS.contains(&x.operation.as_str()));
    }
    Ok((recent, in_doubt))
}

/// The calls an `rds.snapshot` makes.
const SNAPSHOT_CALLS: [&str; 2] = ["CreateDBClusterSnapshot", "CreateDBSnapshot"];

/// How far back the journal is read for calls in doubt and recent changes.
const RECENT: Duration = Duration::from_secs(600);

/// The resources (as calls name them) this step acts on: its clusters, instances and hosted
/// zones. Built once per decision; a lookup per journal event. A DNS step reads the databases
/// its records depend on, but acts on records only: calls in doubt on those databases are
/// their failover step's to settle.
fn resources_of(world: &World, step: &BoundStep) -> std::collections::HashSet<String> {
    let zones = world.hosted_zones.values().map(|z| z.name.clone());
    if let BoundAction::DnsUpdate { .. } = step.action {
        return zones.collect();
    }
    let n = steps::needs(step, &RunId::new(""));
    n.clusters
        .iter()
        .map(|c| c.as_str().to_string())
        .chain(n.instances.iter().map(|i| i.as_str().to_string()))
        .chain(zones)
        .collect()
}

/// Settle the calls in doubt this decision resolves: one whose grace passed and that the
/// decision makes again ("its effect did not show"), or one whose call the decision no longer
/// makes or holds back (its effect is visible).
pub(crate) async fn settle_observed(ctx: &Ctx, sid: &str, world: &World, d: &Decision) {
    // Every call in `world.in_doubt` is on a resource this step acts on.
    let same = |c: &crate::call::Call, x: &InDoubtCall| {
        c.operation() == x.operation && c.resource() == x.resource
    };
    for x in world.in_doubt.iter().filter(|x| x.accepted.is_none()) {
        let made = d.calls.iter().any(|c| same(c, x));
        let held = d.deferred.iter().any(|y| same(&y.call, x));
        let blind = d
            .problems
            .iter()
            .any(|p| p.contains(&format!("intent #{}", x.seq)));
        let how = match (made, held || blind) {
            (true, _) => "its effect did not show within its grace: the call is made again",
            (false, false) => "its effect was observed: the step no longer needs the call",
            (false, true) => continue,
        };
        let _ = ctx
            .journal
            .settle(&RunId::new(x.run_id.clone()), sid, x.seq, how)
            .await;
    }
}

/// Tell what a decision holds back and skips, and its problems (each line once per step).
/// `announced` is a set: a `dns.update` over thousands of records waits for each of them, and
/// a list searched per line made every decision quadratic in the records.
pub(crate) async fn report_decision(
    ctx: &Ctx,
    sid: &str,
    d: &Decision,
    announced: &mut HashSet<String>,
) {
    let run_id = &ctx.spec.run_id;
    for w in &d.waiting {
        if !announced.contains(w) {
            announced.insert(w.clone());
            ctx.reporter.report(Progress::Waiting {
                step: sid.to_string(),
                what: w.clone(),
            });
        }
    }
    for x in &d.deferred {
        if announced.insert(x.why.clone()) {
            ctx.reporter.report(Progress::Waiting {
                step: sid.to_string(),
                what: x.why.clone(),
            });
            let _ = ctx
                .journal
                .note(
                    run_id,
                    Some(sid),
                    "deferred",
                    serde_json::json!({"call": x.call.describe(), "why": x.why}),
                )
                .await;
        }
    }
    for s in &d.skips {
        if !announced.insert(s.clone()) {
            continue;
        }
        ctx.reporter.report(Progress::Skip {
            step: sid.to_string(),
            text: s.clone(),
        });
        let _ = ctx
            .journal
            .note(run_id, Some(sid), "skip", serde_json::json!({"text": s}))
            .await;
    }
    for p in &d.problems {
        if !announced.insert(p.clone()) {
            continue;
        }
        ctx.reporter.report(Progress::Problem {
            step: sid.to_string(),
            text: p.clone(),
        });
    }
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
    let _ = ctx
        .journal
        .note(
            &ctx.spec.run_id,
            Some(step.id.as_str()),
            "health",
            serde_json::to_value(&report).unwrap_or_default(),
        )
        .await;
    if problems.is_empty() {
        Ok(Some(format!("{} (health report journaled)", ok.join(", "))))
    } else {
        Err(StepError::Precondition(problems.join("\n  ")))
    }
}

pub(crate) async fn wait_for_approval(
    ctx: &Ctx,
    step: &BoundStep,
    message: &str,
    approvers: &[String],
    required: u32,
) -> Result<Option<String>, StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    let j = &ctx.journal;
    let released = |by: &[String]| {
        crate::approval::released_by(&ctx.spec.initiator, approvers, required, by)
            .map(|who| who.join(", "))
    };
    if let Some(a) = released(&j.approvals(run_id, sid).await?) {
        return Ok(Some(format!("approved by {a}")));
    }
    j.note(
        run_id,
        Some(sid),
        "approval_requested",
        serde_json::json!({"message": message, "approvers": approvers}),
    )
    .await?;
    j.set_step_status(run_id, sid, StepStatus::WaitingApproval, Some(message))
        .await?;
    j.set_run_status(run_id, RunStatus::WaitingApproval, None, false)
        .await?;
    ctx.reporter.report(Progress::ApprovalRequested {
        step: sid.to_string(),
        message: message.to_string(),
        run_id: run_id.clone(),
    });
    loop {
        ctx.sleep(ctx.spec.approval_poll).await?;
        if let Some(a) = released(&j.approvals(run_id, sid).await?) {
            j.set_run_status(run_id, RunStatus::Running, None, false)
                .await?;
            return Ok(Some(format!("approved by {a}")));
        }
    }
}

/// A graceful switchover of Aurora global databases that escalates: the switchover is made
/// (journaled like every call) and watched for at most `escalate_after`; if the writer has not
/// moved by then (the primary region too impaired to cooperate), the ungraceful failover
/// (`steps::decide_escalation`) is made at once (`auto`) or after an approval gate that says
/// why and what is at risk (`approval`), the reason journaled either way.
///
/// Correct under a lost answer: a switchover whose answer was lost may have been accepted, so
/// the step watches the global cluster rather than calling again (the call is in doubt, see
/// `World::in_doubt`), and escalates only if the writer still has not moved. On resume the
/// step observes first: a switchover or failover under way is waited for, a failover that may
/// already have been made is held back until its effect shows, an approval given before is
/// not asked again.
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
    let world = observe_with_journal(ctx, step, first_attempt, &mut Carry::default()).await?;
    let decision = steps::decide(step, &world, &ctx.spec.run_id);
    report_decision(ctx, sid, &decision, &mut HashSet::new()).await;
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
    // 2. Watch the global clusters being moved (by this call, one under way, or one whose
    // earlier call is in doubt) for at most `escalate_after`.
    let mut waits: Vec<Await> = decision.awaits.clone();
    for x in &decision.deferred {
        if let Call::SwitchoverGlobalCluster { global_cluster, .. } = &x.call {
            waits.push(Await::GlobalWriterIn {
                global_cluster: global_cluster.clone(),
                region: target.clone(),
            });
        }
    }
    if waits.is_empty() {
        return Ok(Some("nothing to do: already as wanted".into()));
    }
    let pending: Vec<super::act::Waited<'_>> = waits.iter().map(|a| (a, None, None)).collect();
    let watched = tokio::select! {
        biased;
        r = super::act::wait_all(ctx, step, pending, observe::Members::default(), None) => Some(r),
        _ = ctx.ports.clock.sleep(e.after) => None,
    };
    let reason = match watched {
        Some(Ok(_)) => {
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
    let world = observe_with_journal(ctx, step, false, &mut Carry::default()).await?;
    let d = steps::decide_escalation(step, &world);
    let mut lags = vec![];
    for c in &d.calls {
        lags.push((c.resource(), super::act::data_at_risk(ctx, c).await));
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
    let mut announced = HashSet::new();
    loop {
        let world = observe_with_journal(ctx, step, false, &mut Carry::default()).await?;
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
