//! `rollback RUN`: restore the DNS records a run changed exactly as they were before it, and
//! revert the traffic tiers it shed that are still shed by it. A rollback is a run of its own
//! (mode `rollback`), through the same lifecycle as every run.

use super::lifecycle::{start_run, RunRequest, RunResult};
use super::load::{load_env, LoadedEnv};
use super::record::RunHeader;
use super::run::MakeReporter;
use super::{App, AppError};
use crate::call::Call;
use crate::cloud::{normalize_dns_name, ChangeAction, ErrorKind, RecordKey, RecordSet};
use crate::engine;
use crate::journal::{self, RunRecord};
use crate::plan::Plan;
use crate::runbook::bind::{BoundAction, BoundStep, RestoreRecord, RunContext};
use crate::runbook::OnFailure;
use crate::status::{RunMode, RunStatus};
use crate::store::Store;
use crate::types::{RunId, StepId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What `failover rollback` is asked to do.
pub struct RollbackOrder {
    /// The run to roll back: its id or a unique prefix of it, as a person typed it
    /// ([`Journal::run`]).
    pub run_id: String,
    pub by: String,
    /// Restore records even if they were changed after the run.
    pub force: bool,
    /// Ask the rollback to stop between calls (a signal, a service shutting down).
    pub stop: crate::engine::Stop,
}

/// A rollback whose steps are built: nothing has been called yet.
pub struct PreparedRollback {
    loaded: LoadedEnv,
    steps: Vec<BoundStep>,
    header: RunHeader,
    stop: crate::engine::Stop,
    /// Said before anything happens (e.g. the run has not finished).
    pub warnings: Vec<String>,
}

impl PreparedRollback {
    pub fn run_id(&self) -> &RunId {
        &self.header.id
    }
}

/// Find what the run changed and build the steps that restore it.
pub async fn prepare_rollback(
    app: &App,
    order: RollbackOrder,
) -> Result<PreparedRollback, AppError> {
    let j = app.open_journal()?;
    let r = j.run(&order.run_id).await?;
    let mut warnings = vec![];
    if r.ended_at.is_none() && r.mode == RunMode::Run && r.status != RunStatus::Failed {
        warnings.push(format!(
            "run {} has not finished (status {}); rolling back what it has done so far",
            r.id, r.status
        ));
    }
    let changes = dns_changes_of(&j, &r.id).await?;
    let shifts = zonal_shifts_of(&j, &r.id).await?;
    // Only tiers this run shed and that are still shed *by this run*: a tier a later run shed
    // again belongs to that run.
    let still_ours: Vec<String> = j
        .shed_tiers(&r.environment)
        .await?
        .into_iter()
        .filter(|(_, _, run)| run == &r.id)
        .map(|(t, _, _)| t)
        .collect();
    let tiers: Vec<String> = tiers_shed_by(&j, &r.id)
        .await?
        .into_iter()
        .filter(|t| still_ours.contains(t))
        .collect();
    let moves = global_moves_of(&j, &r.id).await?;
    if changes.is_empty() && tiers.is_empty() && shifts.is_empty() && moves.is_empty() {
        return Err(AppError::Refused(format!("run {} changed no DNS records, shed no traffic, started no zonal shift and moved no global database: nothing to roll back\n  hint: zonal database failovers are not undone by rollback; fail back with the runbook and the healthy zone as parameter", r.id)));
    }
    let loaded = load_env(&app.config_dir, &r.environment)?;
    let new_id = journal::new_run_id();
    let mut steps = vec![];
    if !tiers.is_empty() {
        steps.push(revert_tiers_step(&r, &loaded, &new_id, &order.by, tiers)?);
    }
    if !shifts.is_empty() {
        steps.push(cancel_shifts_step(&r, shifts));
    }
    steps.extend(restore_dns_steps(&r, changes, order.force));
    steps.extend(switch_back_steps(&r, &loaded.env, moves));
    let header = RunHeader {
        id: new_id,
        runbook: format!("rollback of {}", r.id),
        runbook_path: r.runbook_path.clone(),
        runbook_sha256: r.runbook_sha256.clone(),
        environment: loaded.env.name.clone(),
        mode: RunMode::Rollback,
        initiator: order.by,
        params: serde_json::json!({"of_run": r.id, "force": order.force}),
        of_run: Some(r.id.clone()),
    };
    Ok(PreparedRollback {
        stop: order.stop,
        loaded,
        steps,
        header,
        warnings,
    })
}

/// What the rollback would do, from read-only calls.
pub async fn plan_rollback(p: &PreparedRollback) -> Result<Plan, AppError> {
    let (h, steps) = (&p.header, &p.steps);
    p.loaded
        .with_ports(None, |ports| async move {
            engine::plan_run(&ports, &h.runbook, &h.environment, &h.id, steps).await
        })
        .await?
        .map_err(|e| AppError::cloud("reading the current records failed", e))
}

/// Run the rollback.
pub async fn rollback(
    app: &App,
    p: PreparedRollback,
    reporter: MakeReporter,
) -> Result<RunResult, AppError> {
    let journal = app.open_journal()?;
    let env = &p.loaded.env;
    let req = RunRequest {
        on_crash: Some(app.crash_marker()),
        stop: p.stop.clone(),
        ..RunRequest::new(p.header.clone(), p.steps.clone(), env)
    };
    p.loaded
        .with_ports(None, |ports| async move {
            let reporter = reporter(ports.clock.clone());
            start_run(&ports, &journal, reporter, req).await
        })
        .await?
}

pub(super) fn revert_tiers_step(
    r: &RunRecord,
    loaded: &LoadedEnv,
    new_id: &RunId,
    by: &str,
    tiers: Vec<String>,
) -> Result<BoundStep, AppError> {
    let env = &loaded.env;
    let Some(ladder) = &env.traffic else {
        return Err(AppError::Input(format!(
            "error: run {} shed tiers ({}) but environment `{}` no longer has a [traffic] ladder",
            r.id,
            tiers.join(", "),
            env.name
        )));
    };
    let ctx = RunContext {
        run_id: new_id.clone(),
        initiator: by.to_string(),
        mode: RunMode::Rollback,
    };
    let vars: BTreeMap<String, String> = [
        ("env.name", env.name.clone()),
        ("env.region", env.region.clone()),
        ("run.id", ctx.run_id.to_string()),
        ("run.initiator", by.to_string()),
        ("run.mode", RunMode::Rollback.to_string()),
        ("runbook.name", format!("rollback of {}", r.id)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(BoundStep {
        id: StepId::new("restore-traffic"),
        description: Some(format!("restore the traffic tiers run {} shed", r.id)),
        after: vec![],
        enabled: true,
        when: None,
        timeout: Duration::from_secs(600),
        retries: 1,
        on_failure: OnFailure::Continue,
        action: BoundAction::TrafficRevert {
            ladder: crate::runbook::ladder::bind_ladder(ladder, env, &vars),
            tiers,
        },
    })
}

pub(super) fn restore_dns_steps(
    r: &RunRecord,
    changes: BTreeMap<String, Vec<RestoreRecord>>,
    force: bool,
) -> Vec<BoundStep> {
    changes
        .into_iter()
        .enumerate()
        .map(|(i, (zone, restore))| BoundStep {
            id: StepId::new(format!("restore-dns-{}", i + 1)),
            description: Some(format!(
                "restore the records run {} changed in hosted zone {zone}",
                r.id
            )),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(600),
            retries: 2,
            on_failure: OnFailure::Continue,
            action: BoundAction::RestoreRecords {
                hosted_zone_id: zone,
                restore,
                force,
            },
        })
        .collect()
}

/// Each global cluster whose writer a run moved (a switchover or failover it made, or may have
/// made): switched back to the region it left. A switchover needs both regions: after a
/// failover, the step switches back only once the old region is healthy (until then the
/// switchover does not complete and the step fails saying so).
pub(super) fn switch_back_steps(
    r: &RunRecord,
    env: &crate::env::Environment,
    moves: Vec<(
        crate::types::GlobalClusterId,
        crate::types::Region,
        crate::types::Region,
    )>,
) -> Vec<BoundStep> {
    moves
        .into_iter()
        .enumerate()
        .map(|(i, (g, from, to))| BoundStep {
            id: StepId::new(format!("switch-back-{}", i + 1)),
            description: Some(format!(
                "switch global cluster {g} back to {from}, where run {} moved its writer from",
                r.id
            )),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(30 * 60),
            retries: 1,
            on_failure: OnFailure::Continue,
            action: BoundAction::GlobalMove(crate::runbook::bind::GlobalMove {
                group: format!("rollback of {}", r.id),
                global_clusters: vec![g],
                to_region: Some(from),
                evacuate_region: Some(to),
                regions: env.regions.clone(),
                unplanned: false,
                wait: true,
                escalate: None,
            }),
        })
        .collect()
}

/// The global clusters a run moved: (global cluster, region left, region moved to), from
/// intents whose outcome was OK or unknown; the last move of each wins.
pub(super) async fn global_moves_of(
    j: &Arc<dyn Store>,
    run_id: &RunId,
) -> Result<
    Vec<(
        crate::types::GlobalClusterId,
        crate::types::Region,
        crate::types::Region,
    )>,
    AppError,
> {
    let events = j.events(run_id).await?;
    let failed: Vec<i64> = events
        .iter()
        .filter(|e| {
            e.kind == "outcome"
                && e.data.get("ok").and_then(|v| v.as_bool()) == Some(false)
                && e.data
                    .get("kind")
                    .and_then(|k| serde_json::from_value::<ErrorKind>(k.clone()).ok())
                    .is_some_and(ErrorKind::proves_not_processed)
        })
        .filter_map(|e| e.intent_seq)
        .collect();
    let mut out: Vec<(
        crate::types::GlobalClusterId,
        crate::types::Region,
        crate::types::Region,
    )> = vec![];
    for e in events
        .iter()
        .filter(|e| e.kind == "intent" && !failed.contains(&e.seq))
    {
        let (g, from, to) = match serde_json::from_value::<Call>(e.data.clone()) {
            Ok(Call::SwitchoverGlobalCluster {
                global_cluster,
                region,
                from_region,
                ..
            })
            | Ok(Call::FailoverGlobalCluster {
                global_cluster,
                region,
                from_region,
                ..
            }) => (global_cluster, from_region, region),
            _ => continue,
        };
        match out.iter_mut().find(|(x, _, _)| *x == g) {
            // A later move of the same cluster (the escalation after a switchover) keeps the
            // region the writer first left.
            Some(m) => m.2 = to,
            None => out.push((g, from, to)),
        }
    }
    Ok(out)
}

/// What a run changed in DNS: per hosted zone, each record's state before the run (first
/// `previous` seen) and as the run left it (last change), from intents whose outcome was OK
/// or unknown (a call in doubt may have happened).
pub(super) async fn dns_changes_of(
    j: &Arc<dyn Store>,
    run_id: &RunId,
) -> Result<BTreeMap<String, Vec<RestoreRecord>>, AppError> {
    let events = j.events(run_id).await?;
    // Only a failure that proves the request was not processed rules a change out: a 5xx or a
    // timeout may have been applied (restoring a change that did not happen is a no-op, since
    // `decide_restore` compares with what Route 53 has now).
    let failed = refused_intents(&events);
    let mut by_zone: BTreeMap<String, BTreeMap<RecordKey, RestoreRecord>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == "intent" && !failed.contains(&e.seq))
    {
        let Ok(Call::ChangeResourceRecordSets {
            hosted_zone_id,
            changes,
            previous,
            ..
        }) = serde_json::from_value::<Call>(e.data.clone())
        else {
            continue;
        };
        let zone = by_zone.entry(hosted_zone_id).or_default();
        for (key, before) in previous {
            zone.entry(key.clone()).or_insert(RestoreRecord {
                key,
                before,
                set_by_run: None,
            });
        }
        for c in changes {
            let key = c.record.key();
            let set: Option<RecordSet> = if c.action == ChangeAction::Delete {
                None
            } else {
                Some(RecordSet {
                    name: normalize_dns_name(&c.record.name),
                    ..c.record.clone()
                })
            };
            if let Some(r) = zone.get_mut(&key) {
                r.set_by_run = set;
            }
        }
    }
    Ok(by_zone
        .into_iter()
        .map(|(z, m)| (z, m.into_values().collect()))
        .collect())
}

/// The intents whose outcome proves the request was not processed (throttled, refused as
/// invalid, access denied, not found): those calls certainly did nothing.
fn refused_intents(events: &[journal::Event]) -> Vec<i64> {
    let not_processed = |e: &&journal::Event| {
        e.data
            .get("kind")
            .and_then(|k| serde_json::from_value::<ErrorKind>(k.clone()).ok())
            .is_some_and(ErrorKind::proves_not_processed)
    };
    events
        .iter()
        .filter(|e| {
            e.kind == "outcome" && e.data.get("ok").and_then(|v| v.as_bool()) == Some(false)
        })
        .filter(not_processed)
        .filter_map(|e| e.intent_seq)
        .collect()
}

/// The zonal shifts a run started or may have started: the resources, and the ids its
/// outcomes journaled. A start whose answer was lost has no id; the cancel step finds it by
/// the run id its comment carries.
#[derive(Debug, Default)]
pub(super) struct RunShifts {
    resources: Vec<String>,
    ids: Vec<String>,
}

impl RunShifts {
    pub(super) fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

pub(super) async fn zonal_shifts_of(
    j: &Arc<dyn Store>,
    run_id: &RunId,
) -> Result<RunShifts, AppError> {
    let events = j.events(run_id).await?;
    let failed = refused_intents(&events);
    let mut out = RunShifts::default();
    for e in events
        .iter()
        .filter(|e| e.kind == "intent" && !failed.contains(&e.seq))
    {
        let Ok(Call::StartZonalShift { resource, .. }) =
            serde_json::from_value::<Call>(e.data.clone())
        else {
            continue;
        };
        if !out.resources.contains(&resource) {
            out.resources.push(resource);
        }
        let id = events
            .iter()
            .filter(|o| o.kind == "outcome" && o.intent_seq == Some(e.seq))
            .find_map(|o| {
                o.data
                    .pointer("/result/zonal_shift_id")?
                    .as_str()
                    .map(String::from)
            });
        out.ids.extend(id);
    }
    Ok(out)
}

/// Cancel the zonal shifts a run started that are still active (an expired one is skipped).
pub(super) fn cancel_shifts_step(r: &RunRecord, shifts: RunShifts) -> BoundStep {
    BoundStep {
        id: StepId::new("cancel-zonal-shifts"),
        description: Some(format!("cancel the zonal shifts run {} started", r.id)),
        after: vec![],
        enabled: true,
        when: None,
        timeout: Duration::from_secs(300),
        retries: 2,
        on_failure: OnFailure::Continue,
        action: BoundAction::CancelZonalShift {
            group: String::new(),
            resources: shifts.resources,
            away_from: None,
            zone_ids: BTreeMap::new(),
            shift_ids: shifts.ids,
            started_by: Some(r.id.clone()),
        },
    }
}

/// Tiers a run shed and did not restore itself.
pub(super) async fn tiers_shed_by(
    j: &Arc<dyn Store>,
    run_id: &RunId,
) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = vec![];
    for e in j.events(run_id).await? {
        let Some(t) = e.data.get("tier").and_then(|v| v.as_str()) else {
            continue;
        };
        match e.kind.as_str() {
            "tier_shed" if !out.iter().any(|x| x == t) => out.push(t.to_string()),
            "tier_restored" => out.retain(|x| x != t),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::status::RunStatus;
    use crate::store::Fence;
    use crate::types::Zone;

    const LB1: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/app/a/1";
    const LB2: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/app/b/2";
    const LB3: &str = "arn:aws:elasticloadbalancing:us-west-2:1:loadbalancer/app/c/3";

    fn start(resource: &str) -> Call {
        Call::StartZonalShift {
            resource: resource.into(),
            away_from: Zone::from("us-west-2a"),
            away_from_id: "usw2-az1".into(),
            expires_in: Duration::from_secs(3600),
            comment: "failover run r1 step zonal-shift".into(),
        }
    }

    /// The shifts a run started: by the id its outcome journaled; a start whose answer was
    /// lost (a 5xx) is kept without an id; one refused as throttled certainly did nothing.
    #[tokio::test]
    async fn a_rollback_cancels_the_shifts_a_run_started_or_may_have_started() {
        let j: Arc<dyn Store> = Arc::new(Journal::open(std::path::Path::new(":memory:")).unwrap());
        let run = RunId::new("r1");
        j.create_run(&RunRecord {
            id: run.clone(),
            runbook: "az-evacuation".into(),
            runbook_path: "rb.toml".into(),
            runbook_sha256: "-".into(),
            environment: "prod".into(),
            mode: RunMode::Run,
            initiator: "alice".into(),
            params: serde_json::json!({}),
            status: RunStatus::Running,
            started_at: 0,
            ended_at: None,
            error: None,
            plan: serde_json::json!({}),
            steps: serde_json::json!([]),
            heartbeat_at: None,
            holder: None,
        })
        .await
        .unwrap();
        let fence = Fence {
            tokens: vec![],
            budget_ms: 0,
        };
        let outcomes = [
            (
                LB1,
                serde_json::json!({"ok": true, "result": {"zonal_shift_id": "zs-1"}}),
            ),
            (
                LB2,
                serde_json::json!({"ok": false, "error": "HTTP 503", "kind": "transient"}),
            ),
            (
                LB3,
                serde_json::json!({"ok": false, "error": "Rate exceeded", "kind": "throttled"}),
            ),
        ];
        for (lb, outcome) in outcomes {
            let call = serde_json::to_value(start(lb)).unwrap();
            let seq = j
                .intent(&run, "zonal-shift", "StartZonalShift", lb, call, &fence)
                .await
                .unwrap();
            j.outcome(&run, "zonal-shift", seq, "StartZonalShift", lb, outcome)
                .await
                .unwrap();
        }
        let shifts = zonal_shifts_of(&j, &run).await.unwrap();
        assert_eq!(shifts.resources, vec![LB1.to_string(), LB2.to_string()]);
        assert_eq!(shifts.ids, vec!["zs-1".to_string()]);
        let r = j.run_exact(&run).await.unwrap();
        let step = cancel_shifts_step(&r, shifts);
        let BoundAction::CancelZonalShift {
            started_by,
            shift_ids,
            ..
        } = &step.action
        else {
            panic!("{:?}", step.action)
        };
        assert_eq!((started_by.as_ref(), shift_ids.len()), (Some(&run), 1));
    }
}
