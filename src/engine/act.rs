//! Acting on a decision: for each call, the intent in the journal, the call through the
//! ports, the outcome in the journal; then waiting until the world shows the effect.

use super::ctx::{Ctx, StepError};
use super::observe;
use crate::call::{in_doubt_grace, Await, Call, Decision};
use crate::cloud::{CloudError, ErrorKind};
use crate::progress::Progress;
use crate::runbook::bind::BoundStep;
use crate::steps::{wait, wait::AwaitStatus};
use crate::world::World;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::time::Duration;

/// Make a decision's calls and wait for their effect. `decided_on`: the world the decision was
/// made against; its cluster members seed what the wait knows of them (`observe::Members`).
pub(crate) async fn execute_decision(
    ctx: &Ctx,
    step: &BoundStep,
    decision: &Decision,
    decided_on: &World,
) -> Result<(), StepError> {
    let mut change_ids: HashMap<usize, String> = HashMap::new();
    // One resource's failed call does not stop the calls for the others (an evacuation moves
    // everything it can); the first error is returned once every call has been tried and the
    // others (and the effect of those in doubt) have been waited for.
    let mut failed: Vec<Failed<'_>> = vec![];
    // The calls go out concurrently, at most `max_calls_in_flight` at once, each after its
    // intent is on disk; the rate limiter under the ports paces them to the account's quotas.
    // Results come back in the decision's order.
    let calls: Vec<_> = decision
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| indexed_call(ctx, step, i, call))
        .collect();
    let started = ctx.ports.clock.now();
    let results: Vec<CallResult<'_>> = stream::iter(calls)
        .buffered(ctx.spec.max_calls_in_flight.max(1))
        .collect()
        .await;
    for (i, call, seq, result) in results {
        match result {
            Ok(Some(change_id)) => {
                ctx.changes_made
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(change_id.clone(), ctx.ports.clock.now());
                change_ids.insert(i, change_id);
            }
            Ok(None) => {}
            Err(e @ (StepError::Journal(_) | StepError::Fenced(_) | StepError::Stopped(_))) => {
                return Err(e)
            }
            Err(e) => {
                let in_doubt =
                    matches!(&e, StepError::Cloud(ce) if !ce.kind.proves_not_processed());
                failed.push(Failed {
                    call,
                    intent: seq,
                    in_doubt,
                    error: e,
                });
            }
        }
    }
    let now = ctx.ports.clock.now();
    let awaits: Vec<Waited<'_>> = decision
        .awaits
        .iter()
        .filter_map(|a| {
            // A call in doubt: its effect is polled with the others (a failover AWS did make
            // moves its records as soon as it completes), and given up on at its grace, when
            // the step's next attempt makes it again. A call refused outright: nothing to wait.
            let until = match failed.iter().find(|f| a.is_for(f.call)) {
                None => None,
                Some(f) if f.in_doubt => Some(now + in_doubt_grace(&f.call.operation())?),
                Some(_) => return None,
            };
            let change = match a {
                Await::ChangeInsync { call_index } => change_ids.get(call_index).cloned(),
                _ => None,
            };
            Some((a, change, until))
        })
        .collect();
    // A call just made has not taken effect within its round trip (a failover, a snapshot, a
    // change's propagation take seconds at least): the first look is later (`Looks`), counted
    // from when the first of them went out (hundreds of calls paced to the quota take minutes).
    let made = (decision.calls.len() > failed.iter().filter(|f| !f.in_doubt).count())
        .then(|| now.duration_since(started).unwrap_or_default());
    let members = observe::Members::seen_in(decided_on);
    let all_done = wait_all(ctx, step, awaits, members, made).await?;
    let mut first_err = None;
    for f in failed {
        // Followed by the wait (in doubt, with a grace and an await) and every await done:
        // its effect showed, and the doubt is settled here.
        let followed = f.in_doubt
            && in_doubt_grace(&f.call.operation()).is_some()
            && decision.awaits.iter().any(|a| a.is_for(f.call));
        match f.intent {
            Some(seq) if followed && all_done => made_after_all(ctx, step, f.call, seq).await,
            _ => {
                first_err.get_or_insert(f.error);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A call of a decision that failed.
struct Failed<'a> {
    call: &'a Call,
    /// Its intent's sequence number (none when it failed before its intent was written).
    intent: Option<i64>,
    /// AWS may have processed it anyway (a 5xx, a lost answer): its effect is still waited
    /// for, until its in-doubt grace.
    in_doubt: bool,
    error: StepError,
}

/// A call answered with an error whose effect the wait then saw (AWS made it, or the world got
/// there anyway): told, and its doubt settled.
async fn made_after_all(ctx: &Ctx, step: &BoundStep, call: &Call, seq: i64) {
    let sid = step.id.as_str();
    let how = "its effect was observed although its answer was an error: the step no longer needs the call";
    ctx.reporter.report(Progress::Skip {
        step: sid.to_string(),
        text: format!("{} on {}: {how}", call.operation(), call.resource()),
    });
    let _ = ctx.journal.settle(&ctx.spec.run_id, sid, seq, how).await;
}

/// An await of a wait: what it waits for, the Route 53 change it reads (if any), and when it
/// is given up on (the in-doubt grace of a failed call whose effect may still show).
pub(crate) type Waited<'a> = (&'a Await, Option<String>, Option<std::time::SystemTime>);

/// A call of a decision, by its index, its intent's sequence number (once written), and what
/// came of it (the change id it started, if any).
type CallResult<'a> = (
    usize,
    &'a Call,
    Option<i64>,
    Result<Option<String>, StepError>,
);

async fn indexed_call<'a>(
    ctx: &'a Ctx,
    step: &'a BoundStep,
    i: usize,
    call: &'a Call,
) -> CallResult<'a> {
    let mut seq = None;
    let r = make_call(ctx, step, call, &mut seq).await;
    (i, call, seq, r)
}

/// One mutating call: intent, call, outcome. Returns the Route 53 change id it started, if any;
/// `seq` is set to its intent's sequence number once the intent is written.
async fn make_call(
    ctx: &Ctx,
    step: &BoundStep,
    call: &Call,
    seq_out: &mut Option<i64>,
) -> Result<Option<String>, StepError> {
    let run_id = &ctx.spec.run_id;
    let sid = step.id.as_str();
    let (op, res) = (call.operation(), call.resource());
    ctx.reporter.report(Progress::Call {
        step: sid.to_string(),
        text: call.describe(),
    });
    // A safe point: no call of this step is in flight. After it, the call goes out whatever
    // happens, and its outcome is journaled.
    ctx.check_stop()?;
    // Before the intent: a step that decides from now on does not take the plan's word for
    // this resource.
    ctx.touch(res.clone());
    journal_data_at_risk(ctx, sid, call).await?;
    let intent = serde_json::to_value(redact(call)).unwrap_or_default();
    let seq = match ctx
        .journal
        .intent(run_id, sid, &op, &res, intent, &ctx.fence_for(call))
        .await
    {
        Ok(seq) => seq,
        Err(crate::store::StoreError::Fenced(why)) => {
            // The run no longer holds its leases: nothing more is called, and the rest of the
            // run stops too.
            ctx.spec
                .stop
                .request(super::ctx::StopKind::Fenced, format!("fenced: {why}"));
            return Err(StepError::Fenced(why));
        }
        Err(e) => return Err(e.into()),
    };
    *seq_out = Some(seq);
    let started = ctx.ports.clock.now();
    let result = perform(ctx, call).await;
    let ms = ctx
        .ports
        .clock
        .now()
        .duration_since(started)
        .unwrap_or_default()
        .as_millis() as u64;
    let (ok, detail, change_id) = match &result {
        Ok(out) => {
            let data = serde_json::json!({"ok": true, "result": out, "ms": ms});
            ctx.journal
                .outcome(run_id, sid, seq, &op, &res, data)
                .await?;
            let id = out
                .get("change_id")
                .and_then(|v| v.as_str())
                .map(String::from);
            (true, None, id)
        }
        Err(e) => {
            if let (Call::FailoverDbCluster { target, .. }, StepError::Cloud(ce)) = (call, e) {
                if matches!(ce.kind, ErrorKind::InvalidState | ErrorKind::InvalidRequest) {
                    ctx.unpromotable(target);
                }
            }
            // The kind says whether the call may have been processed (rollback needs it).
            let kind = match e {
                StepError::Cloud(ce) => serde_json::to_value(ce.kind).unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
            let data =
                serde_json::json!({"ok": false, "error": e.to_string(), "kind": kind, "ms": ms});
            ctx.journal
                .outcome(run_id, sid, seq, &op, &res, data)
                .await?;
            (false, Some(e.to_string()), None)
        }
    };
    ctx.reporter.report(Progress::CallDone {
        step: sid.to_string(),
        operation: op,
        resource: res,
        ok,
        ms,
        detail,
    });
    result.map(|_| change_id)
}

/// The replication lag metric read right before a global failover (ms, emitted by the
/// secondary cluster being promoted).
pub const GLOBAL_LAG_METRIC: &str = "AuroraGlobalDBRPOLag";
/// An Aurora reader's lag behind its writer (ms), per instance.
pub const REPLICA_LAG_METRIC: &str = "AuroraReplicaLag";
/// How far back the latest lag datapoint is looked for.
const LAG_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Before a failover: the data at risk ([`data_at_risk`]), told and journaled with it.
async fn journal_data_at_risk(
    ctx: &Ctx,
    sid: &str,
    call: &Call,
) -> Result<(), crate::store::StoreError> {
    let (key, what) = match call {
        Call::FailoverDbCluster { .. } => ("cluster", "cluster"),
        Call::FailoverGlobalCluster { .. } => ("global_cluster", "global cluster"),
        _ => return Ok(()),
    };
    let res = call.resource();
    let lag = data_at_risk(ctx, call).await;
    ctx.reporter.report(Progress::Skip {
        step: sid.to_string(),
        text: format!("{what} `{res}`: {}", lag.describe()),
    });
    ctx.journal
        .note(
            &ctx.spec.run_id,
            Some(sid),
            "data_at_risk",
            serde_json::json!({key: res, "lag": lag, "text": lag.describe()}),
        )
        .await
        .map(|_| ())
}

/// The replication lag of what a failover promotes, read right before it: the writes that
/// may be lost. A global failover: the secondary cluster's `AuroraGlobalDBRPOLag` in the
/// recovery region; a regional Aurora failover: the promoted reader's `AuroraReplicaLag`.
/// Never blocks the failover: a failed read says why.
pub(crate) async fn data_at_risk(ctx: &Ctx, call: &Call) -> crate::cloud::Lag {
    use crate::cloud::Lag;
    let home = crate::types::Region::from(ctx.spec.region.as_str());
    let (metric, dimension, id, region) = match call {
        Call::FailoverGlobalCluster {
            target_arn, region, ..
        } => (
            GLOBAL_LAG_METRIC,
            "DBClusterIdentifier",
            target_arn
                .rsplit(':')
                .next()
                .unwrap_or(target_arn)
                .to_string(),
            region.clone(),
        ),
        Call::FailoverDbCluster { target, .. } => (
            REPLICA_LAG_METRIC,
            "DBInstanceIdentifier",
            target.to_string(),
            home,
        ),
        _ => {
            return Lag {
                metric: GLOBAL_LAG_METRIC.into(),
                ms: None,
                why: Some("not a failover".into()),
            }
        }
    };
    let Some(metrics) = &ctx.ports.metrics else {
        return Lag {
            metric: metric.into(),
            ms: None,
            why: Some("no CloudWatch client for this run".into()),
        };
    };
    match metrics
        .latest_rds_metric(&region, metric, (dimension, &id), LAG_WINDOW)
        .await
    {
        Ok(ms) => Lag {
            metric: metric.into(),
            ms,
            why: None,
        },
        Err(e) => Lag {
            metric: metric.into(),
            ms: None,
            why: Some(format!("the read failed: {e}")),
        },
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
        Call::StartZonalShift { .. } | Call::CancelZonalShift { .. } => {
            perform_arc(ctx, call).await
        }
        Call::Http {
            request,
            expect_status,
        } => {
            let mut req = request.clone();
            use crate::runbook::template::{resolve_secrets, scrub, secret_values};
            // What this call resolves, to scrub from anything it answers or fails with: a
            // resolved secret never reaches the journal, the terminal or a log.
            let mut secrets = secret_values(&req.url);
            for (_, v) in &req.headers {
                secrets.extend(secret_values(v));
            }
            if let Some(b) = &req.body {
                secrets.extend(secret_values(b));
            }
            let resolve = |s: &str| resolve_secrets(s).map_err(StepError::Precondition);
            req.url = resolve(&req.url)?;
            for (_, v) in &mut req.headers {
                *v = resolve(v)?;
            }
            if let Some(b) = &req.body {
                req.body = Some(resolve(b)?);
            }
            let resp = p.http.send(&req).await.map_err(|mut e| {
                e.message = scrub(&e.message, &secrets);
                e.resource = scrub(&e.resource, &secrets);
                StepError::Cloud(e)
            })?;
            let ok = if expect_status.is_empty() {
                (200..300).contains(&resp.status)
            } else {
                expect_status.contains(&resp.status)
            };
            if !ok {
                let excerpt: String = scrub(&resp.body, &secrets).chars().take(200).collect();
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
        Call::SwitchoverGlobalCluster { .. } | Call::FailoverGlobalCluster { .. } => {
            perform_global(p, call).await
        }
    }
}

/// An ARC zonal shift call; the outcome journals the shift's id (rollback cancels by it).
async fn perform_arc(ctx: &Ctx, call: &Call) -> Result<serde_json::Value, StepError> {
    let arc = &ctx.ports.arc;
    match call {
        Call::StartZonalShift {
            resource,
            away_from_id,
            expires_in,
            comment,
            ..
        } => {
            let s = arc
                .start_zonal_shift(resource, away_from_id, *expires_in, comment)
                .await?;
            Ok(serde_json::json!({"zonal_shift_id": s.id, "expiry_ms": s.expiry_ms}))
        }
        Call::CancelZonalShift { zonal_shift_id, .. } => {
            // A shift that expired (or was canceled) meanwhile is nothing to cancel.
            let s = arc.cancel_zonal_shift(zonal_shift_id).await?;
            Ok(serde_json::json!({"zonal_shift_id": zonal_shift_id, "already_ended": s.is_none()}))
        }
        _ => Ok(serde_json::json!({})),
    }
}
/// A switchover or failover of a global cluster, on the endpoint of the region it names.
async fn perform_global(
    p: &crate::ports::Ports,
    call: &Call,
) -> Result<serde_json::Value, StepError> {
    match call {
        Call::SwitchoverGlobalCluster {
            global_cluster,
            target_arn,
            region,
            ..
        } => {
            global_port(p, call)?
                .switchover_global_cluster(region, global_cluster, target_arn)
                .await?;
            Ok(serde_json::json!({"region": region}))
        }
        Call::FailoverGlobalCluster {
            global_cluster,
            target_arn,
            region,
            ..
        } => {
            global_port(p, call)?
                .failover_global_cluster(region, global_cluster, target_arn)
                .await?;
            Ok(serde_json::json!({"region": region, "allow_data_loss": true}))
        }
        _ => Ok(serde_json::json!({})),
    }
}

/// The global database port, or why a global call cannot be made here.
fn global_port<'p>(
    p: &'p crate::ports::Ports,
    call: &Call,
) -> Result<&'p std::sync::Arc<dyn crate::cloud::GlobalDatabases>, StepError> {
    p.global.as_ref().ok_or_else(|| {
        StepError::Precondition(format!(
            "{} on {}: these ports have no global database client; list the environment's regions (regions = [...])",
            call.operation(),
            call.resource()
        ))
    })
}

/// Wait until every await of a step is done (`true`), or one is given up on (`false`: a
/// failed call's effect did not show within its grace; the caller has its error). Each poll
/// observes all that is still pending at once (one paged Describe per resource kind; the
/// Route 53 changes oldest first up to the first still PENDING, see
/// `observe::changes_in_order`; the clusters' members only when one is new, see
/// `observe::Members`), and publishes what it read of the databases (`Ctx::saw`: a DNS step
/// waiting on them wakes), then the pure `steps::wait::status` says where each stands.
pub(crate) async fn wait_all(
    ctx: &Ctx,
    step: &BoundStep,
    mut pending: Vec<Waited<'_>>,
    mut members: observe::Members,
    just_made: Option<Duration>,
) -> Result<bool, StepError> {
    let sid = step.id.to_string();
    let poll = ctx.spec.poll_interval;
    let ages = change_ages(ctx, &pending, just_made);
    let mut looks = Looks::new(poll, just_made, &ages);
    // A failover that ends with the writer still in an evacuated zone (RDS refused or rolled
    // it back) must not be waited on until the step times out: after a grace period (the
    // status can lag the call), fail the attempt so the step decides again.
    let grace = Duration::from_secs(90).max(poll.saturating_mul(6));
    let mut stuck_since: HashMap<usize, std::time::SystemTime> = HashMap::new();
    let mut announced: std::collections::HashSet<usize> = Default::default();
    let mut give_up: HashMap<usize, std::time::SystemTime> = HashMap::new();
    let ids: Vec<usize> = (0..pending.len()).collect();
    let mut pending: Vec<(usize, &Await, Option<String>)> = ids
        .into_iter()
        .zip(pending.drain(..))
        .map(|(i, (a, c, until))| {
            if let Some(t) = until {
                give_up.insert(i, t);
            }
            (i, a, c)
        })
        .collect();
    while !pending.is_empty() {
        let kinds = Kinds::of(pending.iter().map(|(_, a, _)| *a));
        let wait = looks.next(kinds);
        if !wait.is_zero() {
            ctx.sleep(wait).await?;
        }
        let looked = looks.pass(wait, kinds);
        let world = look_at(ctx, &pending, looked, &mut members).await?;
        looks.looked(looked);
        let now = ctx.ports.clock.now();
        let mut still = vec![];
        for (i, a, change) in pending {
            if !looked.covers(a) {
                still.push((i, a, change));
                continue;
            }
            // A failed call's effect did not show within its grace: the wait ends here, so
            // that the attempt fails with the call's error and the next one (observing all
            // again, the calls still running included) makes it again now, not once the
            // others are done.
            let status = wait::status(a, &world, change.as_deref());
            if give_up.get(&i).is_some_and(|t| now >= *t) && !matches!(status, AwaitStatus::Done(_))
            {
                return Ok(false);
            }
            match status {
                AwaitStatus::Done(what) => ctx.reporter.report(Progress::Converged {
                    step: sid.clone(),
                    what,
                }),
                AwaitStatus::Unverified(text) => {
                    ctx.reporter.report(Progress::Skip {
                        step: sid.clone(),
                        text: text.clone(),
                    });
                    let _ = ctx
                        .journal
                        .note(
                            &ctx.spec.run_id,
                            Some(&sid),
                            "warning",
                            serde_json::json!({"text": text}),
                        )
                        .await;
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
    }
    Ok(true)
}

/// One look of a wait: what `looked` covers of the pending awaits, observed at once, and
/// published (`Ctx::saw`).
async fn look_at(
    ctx: &Ctx,
    pending: &[(usize, &Await, Option<String>)],
    looked: Kinds,
    members: &mut observe::Members,
) -> Result<World, StepError> {
    let awaits: Vec<&Await> = pending
        .iter()
        .map(|(_, a, _)| *a)
        .filter(|a| looked.covers(a))
        .collect();
    let changes: Vec<String> = pending
        .iter()
        .filter(|(_, a, _)| looked.covers(a))
        .filter_map(|(_, _, c)| c.clone())
        .collect();
    let mut needs = wait::needs(&awaits, &changes);
    let change_ids = std::mem::take(&mut needs.changes);
    let mut world = observe::observe_waiting(&ctx.ports, &needs, members).await?;
    let earlier: std::collections::HashSet<&str> = awaits
        .iter()
        .filter_map(|a| match a {
            Await::ChangeSettled { change_id } => Some(change_id.as_str()),
            _ => None,
        })
        .collect();
    observe::changes_in_order(&ctx.ports, &change_ids, &earlier, &mut world).await?;
    ctx.saw(&world, true);
    Ok(world)
}

/// Which kinds of awaits a set holds, or a poll looks at: the databases' (clusters,
/// instances, snapshots, global clusters) and the Route 53 changes'.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Kinds {
    databases: bool,
    changes: bool,
}

impl Kinds {
    fn of<'a>(awaits: impl Iterator<Item = &'a Await>) -> Kinds {
        let mut k = Kinds::default();
        for a in awaits {
            if is_change(a) {
                k.changes = true;
            } else {
                k.databases = true;
            }
        }
        k
    }

    fn covers(&self, a: &Await) -> bool {
        if is_change(a) {
            self.changes
        } else {
            self.databases
        }
    }
}

fn is_change(a: &Await) -> bool {
    matches!(a, Await::ChangeInsync { .. } | Await::ChangeSettled { .. })
}

/// When a wait looks next, per kind, as the time left until then (counted down by the
/// wait's own sleeps, so it holds on any clock). The databases are read every poll interval.
/// The Route 53 changes are read every [`change_poll`]: a change is INSYNC 10 to 60 s after it
/// is made (docs/aws-model.md), its records already answer on the servers it has reached,
/// nothing but the step's end waits for it, and every look is a call from Route 53's
/// account-wide bucket. After calls just made (a failover, a snapshot, a change take seconds
/// at least, and a step that just made a change waits for it whatever the earlier ones say)
/// the first look is later ([`first_database_look`], [`first_change_look`], counted from the
/// first of the calls, and at least an interval after the last); otherwise (a call
/// in doubt, earlier changes not read yet, a switchover watched from its call on) at once.
struct Looks {
    poll: Duration,
    databases: Duration,
    changes: Duration,
}

impl Looks {
    /// `just_made`: calls were just made, the first of them that long ago; `changes`: the
    /// ages of the Route 53 changes the wait waits for.
    fn new(poll: Duration, just_made: Option<Duration>, changes: &[Duration]) -> Looks {
        let after = |first: Duration| match just_made {
            Some(ago) => first.saturating_sub(ago).max(poll),
            None => Duration::ZERO,
        };
        Looks {
            poll,
            databases: after(first_database_look(poll)),
            changes: after(first_change_look(poll, changes)),
        }
    }

    /// How long until the next look at any of `kinds`.
    fn next(&self, kinds: Kinds) -> Duration {
        match (kinds.databases, kinds.changes) {
            (true, true) => self.databases.min(self.changes),
            (false, true) => self.changes,
            _ => self.databases,
        }
    }

    /// `waited` has passed: the kinds of `kinds` due now.
    fn pass(&mut self, waited: Duration, kinds: Kinds) -> Kinds {
        self.databases = self.databases.saturating_sub(waited);
        self.changes = self.changes.saturating_sub(waited);
        Kinds {
            databases: kinds.databases && self.databases.is_zero(),
            changes: kinds.changes && self.changes.is_zero(),
        }
    }

    /// `looked` was just read: its next look is an interval later.
    fn looked(&mut self, looked: Kinds) {
        if looked.databases {
            self.databases = self.poll;
        }
        if looked.changes {
            self.changes = change_poll(self.poll);
        }
    }
}

/// The first look at databases after calls just made on them: three poll intervals (15 s at
/// the default 5 s), then every interval. AWS publishes no lower bound ("often under 30 s" for
/// an Aurora failover, 60 to 120 s for a Multi-AZ reboot, minutes for a snapshot; the fastest
/// Aurora failovers measured from a client take 10 to 16 s), and the looks before 15 s are
/// calls that can only say "not yet" but for the fastest failovers. The price: a failover done
/// at 10 s is noticed at 15 s, 5 s later than with a look every interval (its records move
/// that much later); one done in the model's 20 to 30 s is noticed as soon.
pub(crate) fn first_database_look(poll: Duration) -> Duration {
    poll.saturating_mul(3)
}

/// The first look at the Route 53 changes a step just made, `changes` their ages. Early, at
/// [`change_poll`] (30 s) as AWS's waiter does, when that is expected to end the wait at least
/// a poll interval sooner than the late look: when every change is INSYNC by then one time in
/// six or more ([`insync_by`]: a single change just made, 4 times in 10; two made 5 s apart, 1
/// in 5). Else late, at twelve poll intervals, at most 60 s, when AWS says a change has reached
/// every authoritative server under normal conditions (Route 53 Developer Guide): an early
/// look that finds one still PENDING is a GetChange for nothing, and three batches made over
/// 10 s (50 clusters) are all INSYNC 30 s after the last only about 1 time in 8.
pub(crate) fn first_change_look(poll: Duration, changes: &[Duration]) -> Duration {
    let early = change_poll(poll);
    let late = poll
        .saturating_mul(12)
        .min(Duration::from_secs(60))
        .max(poll);
    let all: f64 = changes.iter().map(|age| insync_by(*age + early)).product();
    if late.saturating_sub(early).as_secs_f64() * all >= poll.as_secs_f64() {
        early
    } else {
        late
    }
}

/// The chance that a Route 53 change `age` old is INSYNC, in the model: evenly between
/// [`ROUTE53_INSYNC_S`]'s bounds (10 to 60 s after it is made).
fn insync_by(age: Duration) -> f64 {
    let (lo, hi) = crate::cloud::model::ROUTE53_INSYNC_S;
    ((age.as_secs_f64() - lo as f64) / (hi - lo) as f64).clamp(0.0, 1.0)
}

/// The ages of the Route 53 changes among a wait's awaits, on the clock the wait sleeps on:
/// those the step just made, as old as its calls (`just_made`); the earlier ones this run made
/// from when their answer came (`Ctx::changes_made`); another run's as the journal dates them,
/// on the journal's clock. A change the journal does not date, or dates after now (a drill's
/// earlier simulation, on a clock of its own), is left out.
fn change_ages(ctx: &Ctx, pending: &[Waited<'_>], just_made: Option<Duration>) -> Vec<Duration> {
    let now = ctx.ports.clock.now();
    let journal_now = ctx.journal.now_ms();
    let made = ctx.changes_made.lock().unwrap_or_else(|e| e.into_inner());
    let ledger = ctx.ledger.lock().unwrap_or_else(|e| e.into_inner());
    let age = |id: &String| {
        if let Some(t) = made.get(id) {
            return Some(now.duration_since(*t).unwrap_or_default());
        }
        let at = ledger
            .changes_since(i64::MIN)
            .find(|c| &c.change_id == id)?
            .at;
        (at <= journal_now).then(|| Duration::from_millis((journal_now - at) as u64))
    };
    // A change just made is waited for as such, and not again as an earlier one (a simulation
    // replayed on the same journal makes changes of the same ids).
    let just: std::collections::HashSet<&String> = pending
        .iter()
        .filter(|(a, _, _)| matches!(a, Await::ChangeInsync { .. }))
        .filter_map(|(_, id, _)| id.as_ref())
        .collect();
    pending
        .iter()
        .filter_map(|(a, _, _)| match a {
            Await::ChangeInsync { .. } => Some(just_made.unwrap_or_default()),
            Await::ChangeSettled { change_id } if !just.contains(change_id) => age(change_id),
            _ => None,
        })
        .collect()
}

/// How often a wait reads the Route 53 changes it waits for after the first look: six poll
/// intervals (30 s at the default 5 s), at most 30 s, as AWS's own
/// `resource-record-sets-changed` waiter does.
pub(crate) fn change_poll(poll: Duration) -> Duration {
    poll.saturating_mul(6)
        .min(Duration::from_secs(30))
        .max(poll)
}

/// Say once per await what it is waiting for.
fn announce(
    ctx: &Ctx,
    sid: &str,
    announced: &mut std::collections::HashSet<usize>,
    i: usize,
    what: String,
) {
    if announced.insert(i) {
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
        ctx.unpromotable(t);
    }
    StepError::Cloud(CloudError::new(
        ErrorKind::InvalidState,
        "FailoverDBCluster",
        cluster.as_str(),
        why,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(5);
    const DB: Kinds = Kinds {
        databases: true,
        changes: false,
    };
    const BOTH: Kinds = Kinds {
        databases: true,
        changes: true,
    };

    #[test]
    fn changes_are_looked_at_every_six_intervals_at_most_30_s() {
        assert_eq!(change_poll(POLL), Duration::from_secs(30));
        assert_eq!(
            change_poll(Duration::from_secs(10)),
            Duration::from_secs(30)
        );
        assert_eq!(
            change_poll(Duration::from_millis(200)),
            Duration::from_millis(1200)
        );
        assert_eq!(
            change_poll(Duration::from_secs(60)),
            Duration::from_secs(60),
            "never more often than the poll interval"
        );
    }

    /// The looks of a wait on both kinds over two minutes after calls were made: the
    /// databases from 15 s on, every 5 s; the changes at 60 s, then every 30 s.
    #[test]
    fn a_wait_reads_databases_every_interval_from_15_s_and_changes_from_60_s_every_30_s() {
        let mut looks = Looks::new(POLL, Some(Duration::ZERO), &[Duration::ZERO; 2]);
        let (mut t, mut databases, mut changes) = (Duration::ZERO, vec![], vec![]);
        while t < Duration::from_secs(120) {
            let wait = looks.next(BOTH);
            t += wait;
            let due = looks.pass(wait, BOTH);
            if due.databases {
                databases.push(t.as_secs());
            }
            if due.changes {
                changes.push(t.as_secs());
            }
            looks.looked(due);
        }
        assert_eq!(databases, (3..=24).map(|i| i * 5).collect::<Vec<_>>());
        assert_eq!(changes, [60, 90, 120]);
    }

    /// Hundreds of failovers paced to the RDS quota take minutes to send: the first ones are
    /// done by the time the last goes out, and the wait looks an interval after it.
    #[test]
    fn the_first_look_counts_from_the_first_call_made() {
        let looks = Looks::new(POLL, Some(Duration::from_secs(4)), &[Duration::ZERO; 2]);
        assert_eq!(looks.next(DB), Duration::from_secs(11));
        assert_eq!(looks.next(BOTH), Duration::from_secs(11));
        let looks = Looks::new(POLL, Some(Duration::from_secs(148)), &[Duration::ZERO; 2]);
        assert_eq!(looks.next(DB), POLL);
        assert_eq!(
            looks.next(Kinds {
                databases: false,
                changes: true
            }),
            POLL
        );
    }

    #[test]
    fn the_first_looks_scale_with_the_poll_interval_up_to_aws_figures() {
        assert_eq!(first_database_look(POLL), Duration::from_secs(15));
        assert_eq!(
            first_database_look(Duration::from_millis(200)),
            Duration::from_millis(600)
        );
        let secs = Duration::from_secs;
        assert_eq!(
            first_change_look(POLL, &[secs(0)]),
            secs(30),
            "one change: as AWS's waiter"
        );
        assert_eq!(
            first_change_look(POLL, &[secs(0), secs(80)]),
            secs(30),
            "one just made, one long INSYNC"
        );
        assert_eq!(
            first_change_look(POLL, &[secs(0), secs(5), secs(10)]),
            secs(60),
            "three made over 10 s: all INSYNC at 30 s about 1 time in 8"
        );
        assert_eq!(
            first_change_look(POLL, &[secs(0), secs(5)]),
            secs(30),
            "two made 5 s apart: both INSYNC at 30 s 1 time in 5"
        );
        assert_eq!(
            first_change_look(POLL, &[secs(0), secs(0)]),
            secs(60),
            "two just made: both INSYNC at 30 s 4 times in 25"
        );
        assert_eq!(
            first_change_look(Duration::from_millis(200), &[secs(0), secs(0)]),
            Duration::from_millis(2400),
            "a local peer's fast poll waits seconds, not a minute"
        );
        assert_eq!(
            first_change_look(secs(10), &[secs(0), secs(0)]),
            secs(60),
            "at most AWS's 60 s"
        );
        assert_eq!(
            first_change_look(secs(90), &[secs(0), secs(0)]),
            secs(90),
            "never before the poll interval"
        );
    }

    #[test]
    fn without_a_call_just_made_the_databases_are_looked_at_at_once() {
        let mut looks = Looks::new(POLL, None, &[Duration::ZERO; 2]);
        assert_eq!(looks.next(DB), Duration::ZERO);
        assert_eq!(looks.pass(Duration::ZERO, DB), DB);
        let changes = Kinds {
            databases: false,
            changes: true,
        };
        assert_eq!(
            looks.next(changes),
            Duration::ZERO,
            "earlier changes: read at once"
        );
    }

    #[test]
    fn a_kind_not_awaited_is_never_due() {
        let mut looks = Looks::new(POLL, Some(Duration::ZERO), &[Duration::ZERO; 2]);
        let wait = looks.next(DB);
        assert_eq!(wait, first_database_look(POLL));
        let due = looks.pass(Duration::from_secs(40), DB);
        assert_eq!(due, DB, "changes are not awaited: not looked at");
    }
}
