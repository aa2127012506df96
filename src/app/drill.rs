//! `failover drill RUNBOOK --env ENV`: a rehearsal of a runbook against a live (or simulated)
//! environment, in timed and journaled phases:
//!
//! 1. `pre-check`: observe the starting state and plan against it; any problem stops the drill
//!    before a call is made;
//! 2. `run`: the runbook, through the one run lifecycle, in mode `drill`, under the stop
//!    conditions (a `[health]` probe that fails, the maximum duration) that stop it between
//!    calls, as AWS FIS's stop conditions do;
//! 3. `verify`: observe again and plan the runbook against what is there: every step must be at
//!    its expected end state (no mutating call left to make);
//! 4. `failback` (unless `--no-failback`): a run of mode `rollback` of the drill run: writers
//!    back to the instances that were writers at the start, records restored as they were
//!    (`rollback`'s own steps), tiers the drill shed restored;
//! 5. `verify-failback`: observe again and compare with the starting state, resource by
//!    resource (clusters' writers and members, instances' zones and statuses, record sets).
//!
//! Each phase is journaled on the drill run as a `drill_phase` event; the drill run's final
//! status is the drill's verdict (`succeeded`, `failed`, or `aborted` when a stop condition
//! fired). In a simulated environment everything happens in one simulated world on its
//! virtual clock, and the journal is stamped on that clock (from the drill's wall-clock start),
//! so phase durations are the simulated ones.

use super::lifecycle::{start_run, RunRequest, RunResult};
use super::load::{initiator, load_bound, Bound};
use super::record::{session_record, RunHeader};
use super::report::{DrillPhase, DRILL_PHASE};
use super::rollback::{
    cancel_shifts_step, dns_changes_of, restore_dns_steps, revert_tiers_step, tiers_shed_by,
    zonal_shifts_of,
};
use super::run::MakeReporter;
use super::{App, AppError};
use crate::engine::{self, Stop, StopKind};
use crate::journal::{self, Journal};
use crate::ports::Ports;
use crate::progress::Reporter;
use crate::runbook::bind::{BoundAction, BoundStep, RunContext};
use crate::runbook::OnFailure;
use crate::status::{RunMode, RunStatus};
use crate::store::Store;
use crate::types::{RunId, StepId, Zone};
use crate::world::{Needs, World};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `failover drill` is asked to do.
pub struct DrillOrder {
    pub runbook: PathBuf,
    pub env: String,
    pub params: Vec<(String, String)>,
    pub by: Option<String>,
    /// Leave the environment as the runbook left it.
    pub no_failback: bool,
    /// Stop the run (and fail back) when it has taken this long.
    pub max_duration: Option<Duration>,
    /// `[health]` probes of the environment: the run stops (and fails back) when one fails.
    pub stop_on: Vec<String>,
    /// Ask the drill to stop between calls (a signal): no failback then.
    pub stop: Stop,
    /// Use this id for the drill run (`drills run-due` names it after the slot).
    pub run_id: Option<RunId>,
    /// Told each phase as it ends (the terminal).
    pub on_phase: Option<OnPhase>,
}

/// How long a failback waits for changes under way to settle before it decides.
pub const SETTLE_FOR: Duration = Duration::from_secs(20 * 60);

/// A callback told each phase of a drill as it ends.
pub type OnPhase = Arc<dyn Fn(&DrillPhase) + Send + Sync>;

/// A drill whose input is loaded and checked: nothing has been called yet.
pub struct PreparedDrill {
    bound: Bound,
    run: RunContext,
    order: DrillOrder,
}

impl PreparedDrill {
    pub fn run_id(&self) -> &RunId {
        &self.run.run_id
    }
    pub fn simulated(&self) -> bool {
        self.bound.loaded.target.simulated().is_some()
    }
}

/// How a drill ended.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DrillResult {
    pub run_id: RunId,
    /// The drill's verdict (the drill run's final status).
    pub status: RunStatus,
    pub phases: Vec<DrillPhase>,
    pub stopped_by: Option<String>,
    pub failback_run: Option<RunId>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl DrillResult {
    pub fn succeeded(&self) -> bool {
        self.status == RunStatus::Succeeded
    }
}

/// Load and check everything a drill needs, every problem at once.
pub fn prepare_drill(app: &App, order: DrillOrder) -> Result<PreparedDrill, AppError> {
    let run = RunContext {
        run_id: order.run_id.clone().unwrap_or_else(journal::new_run_id),
        initiator: initiator(order.by.clone()),
        mode: RunMode::Drill,
    };
    let bound = load_bound(
        &app.config_dir,
        &order.runbook,
        &order.env,
        &order.params,
        &run,
    )?;
    check_stop_conditions(&bound, &order)?;
    Ok(PreparedDrill { bound, run, order })
}

fn check_stop_conditions(bound: &Bound, order: &DrillOrder) -> Result<(), AppError> {
    if order.max_duration.is_some_and(|d| d.is_zero()) {
        return Err(AppError::Input(
            "error: --max-duration must be longer than 0s\n  hint: e.g. --max-duration 30m".into(),
        ));
    }
    if order.stop_on.is_empty() {
        return Ok(());
    }
    let env = &bound.loaded.env;
    let known: Vec<String> = env
        .health
        .as_ref()
        .map(|h| h.probes.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    if known.is_empty() {
        let file = match bound.loaded.target.simulated() {
            Some(_) => "its simulated topology (config/sim/)".to_string(),
            None => format!("config/{}.toml", env.name),
        };
        return Err(AppError::Input(format!("error: --stop-on needs the probes of a [health] section, and environment `{}` has none\n  hint: add [health] probes to {file} (docs/health.md), or drop --stop-on and use --max-duration", env.name)));
    }
    let unknown: Vec<&String> = order
        .stop_on
        .iter()
        .filter(|s| !known.contains(s))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::Input(format!(
            "error: --stop-on names no probe of environment `{}`: {}\n  hint: its probes are {}",
            env.name,
            unknown
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )));
    }
    Ok(())
}

/// Run the drill: every phase, in one world (the simulated one, or AWS).
pub async fn drill(
    app: &App,
    p: PreparedDrill,
    reporter: MakeReporter,
) -> Result<DrillResult, AppError> {
    let simulated = p.simulated();
    let path = app.journal_path.clone();
    let wall = app.open_journal()?;
    let started_wall = wall.now_ms();
    let approvals = Some((wall.clone(), p.run.run_id.clone()));
    let pr = &p;
    p.bound
        .loaded
        .with_ports(approvals, |ports| async move {
            let journal: Arc<dyn Store> = if simulated {
                // The simulated world's virtual time, from the drill's wall-clock start.
                let clock = ports.clock.clone();
                let t0 = clock.now();
                Arc::new(Journal::open(&path)?.with_clock(Arc::new(move || {
                    let d = clock.now().duration_since(t0).unwrap_or_default();
                    started_wall + d.as_millis() as i64
                })))
            } else {
                wall
            };
            let reporter = reporter(ports.clock.clone());
            Phases::new(&ports, &journal, reporter, pr).go().await
        })
        .await?
}

/// The state of one drill as its phases go.
struct Phases<'a> {
    ports: &'a Ports,
    journal: &'a Arc<dyn Store>,
    reporter: Arc<dyn Reporter>,
    p: &'a PreparedDrill,
    done: Vec<DrillPhase>,
    /// Whether the drill run is in the journal yet (phases before it are written with it).
    recorded: bool,
    fired: Arc<Mutex<Option<String>>>,
}

impl<'a> Phases<'a> {
    fn new(
        ports: &'a Ports,
        journal: &'a Arc<dyn Store>,
        reporter: Arc<dyn Reporter>,
        p: &'a PreparedDrill,
    ) -> Self {
        Self {
            ports,
            journal,
            reporter,
            p,
            done: vec![],
            recorded: false,
            fired: Arc::new(Mutex::new(None)),
        }
    }

    fn id(&self) -> &RunId {
        &self.p.run.run_id
    }

    async fn phase(&mut self, name: &str, from: i64, ok: Option<bool>, detail: String) {
        let outcome = match ok {
            Some(true) => "ok",
            Some(false) => "failed",
            None => "skipped",
        };
        let ph = DrillPhase {
            phase: name.into(),
            started_at: from,
            ended_at: self.journal.now_ms(),
            outcome: outcome.into(),
            detail,
        };
        if let Some(f) = &self.p.order.on_phase {
            f(&ph);
        }
        if self.recorded {
            self.journal_phase(&ph).await;
        }
        self.done.push(ph);
    }

    /// A phase as a note of the drill run (best effort: the verdict is written at the end).
    async fn journal_phase(&self, ph: &DrillPhase) {
        let data = serde_json::to_value(ph).unwrap_or_default();
        let _ = self.journal.note(self.id(), None, DRILL_PHASE, data).await;
    }

    /// The drill run is now in the journal: the phases that ended before it go in with it.
    async fn recorded(&mut self) {
        self.recorded = true;
        for ph in &self.done {
            self.journal_phase(ph).await;
        }
    }

    fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        for s in self.p.bound.steps.iter().filter(|s| s.enabled) {
            needs.merge(crate::steps::needs(s, self.id()));
        }
        needs
    }

    async fn observe(&self) -> Result<World, AppError> {
        engine::observe::observe(self.ports, &self.needs())
            .await
            .map_err(|e| {
                self.p
                    .bound
                    .loaded
                    .cloud_error("observing the environment failed", e)
            })
    }

    async fn go(mut self) -> Result<DrillResult, AppError> {
        let t = self.journal.now_ms();
        let before = self.observe().await?;
        let b = &self.p.bound;
        let plan = crate::plan::plan(
            &b.runbook.name,
            &b.loaded.env.name,
            self.id(),
            &b.steps,
            &before,
        );
        let problems: Vec<String> = plan
            .problems()
            .into_iter()
            .map(|(s, p)| format!("{s}: {p}"))
            .collect();
        if !problems.is_empty() {
            self.phase("pre-check", t, Some(false), problems.join("; "))
                .await;
            return self.not_started(problems.join("; ")).await;
        }
        let detail = format!(
            "{} step(s), {} mutating call(s) planned; no problem",
            plan.steps.len(),
            plan.mutating_calls()
        );
        self.phase("pre-check", t, Some(true), detail).await;
        let t = self.journal.now_ms();
        let res = self.run().await?;
        self.recorded().await;
        let fired = self.fired.lock().map(|f| f.clone()).unwrap_or_default();
        let run_ok = res.status.is_success();
        let detail = match &fired {
            Some(c) => format!("stopped by a stop condition: {c}"),
            None => format!(
                "run ended {}{}",
                res.status,
                res.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        };
        self.phase("run", t, Some(run_ok), detail).await;
        if let Some(c) = &fired {
            let _ = self
                .journal
                .note(
                    self.id(),
                    None,
                    "drill_stopped",
                    serde_json::json!({"condition": c}),
                )
                .await;
        }
        if res.status == RunStatus::Interrupted && fired.is_none() {
            // A signal: the person wants it to stop; no failback behind their back.
            let why = format!(
                "interrupted: fail back with `failover rollback {}`, and writers with the runbook",
                self.id()
            );
            return self.finish(None, Some(why)).await;
        }
        let t = self.journal.now_ms();
        if fired.is_none() {
            let after = self.observe().await?;
            let left = unconverged(&crate::plan::plan(
                &b.runbook.name,
                &b.loaded.env.name,
                self.id(),
                &b.steps,
                &after,
            ));
            let ok = left.is_empty() && run_ok;
            let detail = if left.is_empty() {
                "every step at its expected end state".into()
            } else {
                left.join("; ")
            };
            self.phase("verify", t, Some(ok), detail).await;
        } else {
            self.phase("verify", t, None, "skipped: the run was stopped".into())
                .await;
        }
        let failback = self.failback(&before).await?;
        self.finish(failback, None).await
    }
}

impl Phases<'_> {
    /// The runbook run, under the stop conditions.
    async fn run(&self) -> Result<RunResult, AppError> {
        let p = self.p;
        let b = &p.bound;
        let header = RunHeader {
            id: self.id().clone(),
            runbook: b.runbook.name.clone(),
            runbook_path: p.order.runbook.display().to_string(),
            runbook_sha256: journal::sha256_hex(b.runbook.source.text.as_bytes()),
            environment: b.loaded.env.name.clone(),
            mode: RunMode::Drill,
            initiator: p.run.initiator.clone(),
            params: serde_json::to_value(&b.params).unwrap_or_default(),
            of_run: None,
        };
        let stop = p.order.stop.clone();
        let req = RunRequest {
            stop: stop.clone(),
            runbook_text: Some(b.runbook.source.text.clone()),
            ..RunRequest::new(header, b.steps.clone(), &b.loaded.env)
        };
        let watchers = self.stop_conditions(&stop);
        let res = start_run(self.ports, self.journal, self.reporter.clone(), req).await;
        for w in watchers {
            w.abort();
        }
        res
    }

    /// The tasks that watch the stop conditions; each asks the run to stop when it fires.
    fn stop_conditions(&self, stop: &Stop) -> Vec<tokio::task::JoinHandle<()>> {
        let mut out = vec![];
        let o = &self.p.order;
        if let Some(max) = o.max_duration {
            let (clock, stop, fired) = (self.ports.clock.clone(), stop.clone(), self.fired.clone());
            out.push(tokio::spawn(async move {
                clock.sleep(max).await;
                fire(
                    &stop,
                    &fired,
                    format!(
                        "maximum duration {} reached",
                        humantime::format_duration(max)
                    ),
                );
            }));
        }
        if let (false, Some(src)) = (o.stop_on.is_empty(), self.ports.health.clone()) {
            let every = self
                .p
                .bound
                .loaded
                .env
                .health
                .as_ref()
                .map(|h| h.interval)
                .unwrap_or(Duration::from_secs(10));
            let (clock, stop, fired, names) = (
                self.ports.clock.clone(),
                stop.clone(),
                self.fired.clone(),
                o.stop_on.clone(),
            );
            out.push(tokio::spawn(async move {
                loop {
                    if let Ok(r) = src.report(Some(1)).await {
                        let failing: Vec<String> = r
                            .zones
                            .iter()
                            .chain(r.regional.iter())
                            .flat_map(|t| t.probes.iter())
                            .filter(|p| {
                                names.contains(&p.probe)
                                    && p.outcome == crate::health::Outcome::Fail
                            })
                            .map(|p| format!("probe `{}` failed: {}", p.probe, p.detail))
                            .collect();
                        if !failing.is_empty() {
                            fire(&stop, &fired, failing.join("; "));
                            return;
                        }
                    }
                    clock.sleep(every).await;
                }
            }));
        }
        out
    }

    /// Fail back (unless told not to), then compare with the starting state.
    async fn failback(&mut self, before: &World) -> Result<Option<RunId>, AppError> {
        let t = self.journal.now_ms();
        if self.p.order.no_failback {
            self.phase("failback", t, None, "skipped: --no-failback".into())
                .await;
            return Ok(None);
        }
        let now = self.settle().await?;
        let (steps, header) = self.failback_steps(before, &now).await?;
        let mut id = None;
        if steps.is_empty() {
            self.phase(
                "failback",
                t,
                None,
                "skipped: the drill changed nothing".into(),
            )
            .await;
        } else {
            let req = RunRequest::new(header, steps, &self.p.bound.loaded.env);
            let res = start_run(self.ports, self.journal, self.reporter.clone(), req).await?;
            let _ = self
                .journal
                .note(
                    self.id(),
                    None,
                    "drill_failback",
                    serde_json::json!({"run": res.run_id}),
                )
                .await;
            let detail = format!("failback run {} ended {}", res.run_id, res.status);
            self.phase(
                "failback",
                t,
                Some(res.status == RunStatus::Succeeded),
                detail,
            )
            .await;
            id = Some(res.run_id);
        }
        let t = self.journal.now_ms();
        let end = self.observe().await?;
        let diff = differences(before, &end);
        let detail = if diff.is_empty() {
            "the observed state is the starting state".into()
        } else {
            diff.join("; ")
        };
        self.phase("verify-failback", t, Some(diff.is_empty()), detail)
            .await;
        Ok(id)
    }

    /// Observe until no cluster or instance is in the middle of a change (a failover the
    /// stopped run started), at most [`SETTLE_FOR`]: the failback decides on settled writers.
    async fn settle(&self) -> Result<World, AppError> {
        let clock = &self.ports.clock;
        let started = clock.now();
        let every = self.p.bound.loaded.env.settings.poll_interval;
        loop {
            let w = self.observe().await?;
            let busy = w.clusters.values().any(|c| !c.status.is_available())
                || w.instances.values().any(|i| !i.status.is_available());
            let waited = clock.now().duration_since(started).unwrap_or_default();
            if !busy || waited >= SETTLE_FOR {
                return Ok(w);
            }
            clock.sleep(every).await;
        }
    }

    async fn failback_steps(
        &self,
        before: &World,
        now: &World,
    ) -> Result<(Vec<BoundStep>, RunHeader), AppError> {
        let j = self.journal;
        let r = j.run_exact(self.id()).await?;
        let loaded = &self.p.bound.loaded;
        let new_id = journal::new_run_id();
        let by = self.p.run.initiator.clone();
        let mut steps = writer_steps(before, now);
        let db: Vec<StepId> = steps.iter().map(|s| s.id.clone()).collect();
        let mut dns = restore_dns_steps(&r, dns_changes_of(j, &r.id).await?, false);
        for s in &mut dns {
            s.after = db.clone();
        }
        let still_ours: Vec<String> = j
            .shed_tiers(&r.environment)
            .await?
            .into_iter()
            .filter(|(_, _, run)| run == &r.id)
            .map(|(t, _, _)| t)
            .collect();
        let tiers: Vec<String> = tiers_shed_by(j, &r.id)
            .await?
            .into_iter()
            .filter(|t| still_ours.contains(t))
            .collect();
        let after_dns: Vec<StepId> = db
            .iter()
            .chain(dns.iter().map(|s| &s.id))
            .cloned()
            .collect();
        steps.extend(dns);
        // The drill's zonal shifts end once the writers are back (traffic returns with them).
        let shifts = zonal_shifts_of(j, &r.id).await?;
        if !shifts.is_empty() {
            let mut s = cancel_shifts_step(&r, shifts);
            s.after = db.clone();
            steps.push(s);
        }
        if !tiers.is_empty() {
            let mut s = revert_tiers_step(&r, loaded, &new_id, &by, tiers)?;
            s.after = after_dns;
            steps.push(s);
        }
        let header = RunHeader {
            id: new_id,
            runbook: format!("failback of drill {}", r.id),
            runbook_path: r.runbook_path.clone(),
            runbook_sha256: r.runbook_sha256.clone(),
            environment: r.environment.clone(),
            mode: RunMode::Rollback,
            initiator: by,
            params: serde_json::json!({"of_run": r.id, "failback": true}),
            of_run: Some(r.id.clone()),
        };
        Ok((steps, header))
    }

    /// A drill that did not start (its pre-check failed): a drill run of its own, failed.
    async fn not_started(mut self, why: String) -> Result<DrillResult, AppError> {
        let b = &self.p.bound;
        let h = RunHeader {
            id: self.id().clone(),
            runbook: b.runbook.name.clone(),
            runbook_path: self.p.order.runbook.display().to_string(),
            runbook_sha256: journal::sha256_hex(b.runbook.source.text.as_bytes()),
            environment: b.loaded.env.name.clone(),
            mode: RunMode::Drill,
            initiator: self.p.run.initiator.clone(),
            params: serde_json::to_value(&b.params).unwrap_or_default(),
            of_run: None,
        };
        let first = self
            .done
            .first()
            .map(|p| p.started_at)
            .unwrap_or_else(|| self.journal.now_ms());
        let mut rec = session_record(&h, first);
        rec.status = RunStatus::Running;
        self.journal.create_run(&rec).await?;
        self.recorded().await;
        self.finish(None, Some(format!("pre-check failed: {why}")))
            .await
    }

    /// The drill's verdict, written as the drill run's final status.
    async fn finish(
        self,
        failback: Option<RunId>,
        why: Option<String>,
    ) -> Result<DrillResult, AppError> {
        let fired = self.fired.lock().map(|f| f.clone()).unwrap_or_default();
        let failed: Vec<String> = self
            .done
            .iter()
            .filter(|p| p.outcome == "failed")
            .map(|p| format!("{}: {}", p.phase, p.detail))
            .collect();
        let (status, error) = match (&fired, &why) {
            (Some(c), _) => (
                RunStatus::Aborted,
                Some(format!("stopped by a stop condition ({c}); failed back")),
            ),
            (None, Some(w)) if w.starts_with("interrupted") => {
                (RunStatus::Interrupted, Some(w.clone()))
            }
            (None, Some(w)) => (RunStatus::Failed, Some(w.clone())),
            (None, None) if failed.is_empty() => (RunStatus::Succeeded, None),
            (None, None) => (RunStatus::Failed, Some(failed.join("\n"))),
        };
        self.journal
            .set_run_status(self.id(), status, error.as_deref(), true)
            .await?;
        Ok(DrillResult {
            run_id: self.id().clone(),
            status,
            phases: self.done,
            stopped_by: fired,
            failback_run: failback,
            error,
        })
    }
}

fn fire(stop: &Stop, fired: &Mutex<Option<String>>, why: String) {
    if let Ok(mut f) = fired.lock() {
        if f.is_none() {
            *f = Some(why.clone());
        }
    }
    stop.request(
        StopKind::Interrupted,
        format!("drill stop condition: {why}"),
    );
}

/// Mutating AWS calls the plan would still make: each a step not at its expected end state.
/// HTTP calls, waits and approvals are not states and are not compared.
pub fn unconverged(plan: &crate::plan::Plan) -> Vec<String> {
    use crate::call::Call;
    let mut out = vec![];
    for s in &plan.steps {
        for p in &s.decision.problems {
            out.push(format!("{}: {p}", s.id));
        }
        for c in s
            .decision
            .calls
            .iter()
            .filter(|c| !matches!(c, Call::Http { .. }))
        {
            let expected = s.decision.expected.join(", ");
            out.push(format!(
                "{}: not at its end state ({expected}): would still {}",
                s.id,
                c.describe()
            ));
        }
    }
    out
}

/// Steps that put each cluster's writer back on the instance that was the writer in `before`,
/// and each Multi-AZ instance back in its zone.
pub fn writer_steps(before: &World, now: &World) -> Vec<BoundStep> {
    let mut out = vec![];
    let zone_of =
        |w: &World, i: &crate::types::InstanceId| w.instances.get(i).and_then(|x| x.zone.clone());
    for (cid, c) in &before.clusters {
        let (Some(was), Some(is)) = (c.writer(), now.clusters.get(cid).and_then(|n| n.writer()))
        else {
            continue;
        };
        if was.instance == is.instance {
            continue;
        }
        let (Some(home), Some(here)) = (zone_of(before, &was.instance), zone_of(now, &is.instance))
        else {
            continue;
        };
        let evacuate: Vec<Zone> = if home == here { vec![] } else { vec![here] };
        out.push(step(
            format!("failback-writer-{cid}"),
            format!("writer of `{cid}` back to `{}` in {home}", was.instance),
            BoundAction::FailoverCluster {
                group: "failback".into(),
                clusters: vec![cid.clone()],
                evacuate,
                healthy: vec![home],
                wait: true,
                return_to: None,
            },
        ));
    }
    for (iid, i) in before
        .instances
        .iter()
        .filter(|(_, i)| i.multi_az && i.cluster.is_none())
    {
        let (Some(home), Some(here)) = (i.zone.clone(), zone_of(now, iid)) else {
            continue;
        };
        if home != here {
            out.push(step(
                format!("failback-instance-{iid}"),
                format!("primary of `{iid}` back to {home}"),
                BoundAction::FailoverInstance {
                    group: "failback".into(),
                    instances: vec![iid.clone()],
                    evacuate: vec![here],
                    wait: true,
                    return_to: None,
                    zones: vec![],
                },
            ));
        }
    }
    out
}

fn step(id: String, description: String, action: BoundAction) -> BoundStep {
    BoundStep {
        id: StepId::new(id),
        description: Some(description),
        after: vec![],
        enabled: true,
        when: None,
        timeout: Duration::from_secs(20 * 60),
        retries: 2,
        // A writer that cannot go back (its zone still impaired, no reader there) stops the
        // failback: the records it would restore point into that zone, and the tiers it would
        // restore would load zones that still carry the evacuated traffic.
        on_failure: OnFailure::Abort,
        action,
    }
}

/// How `now` differs from `before`: clusters (status, writer, members), instances (zone,
/// status, standby zone) and record sets. Snapshots a drill took are not differences. Pure.
pub fn differences(before: &World, now: &World) -> Vec<String> {
    let mut out = vec![];
    for (id, c) in &before.clusters {
        match now.clusters.get(id) {
            None => out.push(format!("cluster `{id}` is gone")),
            Some(n) => {
                let w = |c: &crate::cloud::ClusterState| {
                    c.writer()
                        .map(|m| m.instance.to_string())
                        .unwrap_or_else(|| "none".into())
                };
                if w(c) != w(n) {
                    out.push(format!(
                        "cluster `{id}`: writer `{}` at the start, `{}` now",
                        w(c),
                        w(n)
                    ));
                }
                if c.status != n.status {
                    out.push(format!(
                        "cluster `{id}`: `{}` at the start, `{}` now",
                        c.status, n.status
                    ));
                }
                let m = |c: &crate::cloud::ClusterState| {
                    let mut v: Vec<String> =
                        c.members.iter().map(|m| m.instance.to_string()).collect();
                    v.sort();
                    v
                };
                if m(c) != m(n) {
                    out.push(format!(
                        "cluster `{id}`: members {:?} at the start, {:?} now",
                        m(c),
                        m(n)
                    ));
                }
            }
        }
    }
    for (id, i) in &before.instances {
        match now.instances.get(id) {
            None => out.push(format!("instance `{id}` is gone")),
            Some(n)
                if (&i.zone, &i.secondary_zone, &i.status)
                    != (&n.zone, &n.secondary_zone, &n.status) =>
            {
                out.push(format!(
                    "instance `{id}`: {} {} at the start, {} {} now",
                    i.status,
                    i.zone.as_ref().map(|z| z.as_str()).unwrap_or("?"),
                    n.status,
                    n.zone.as_ref().map(|z| z.as_str()).unwrap_or("?")
                ))
            }
            Some(_) => {}
        }
    }
    for (zone, recs) in &before.records {
        let now_recs = now.records.get(zone);
        for (k, r) in recs {
            match now_recs.and_then(|m| m.get(k)) {
                Some(n) if n == r => {}
                Some(n) => out.push(format!(
                    "record {} {}{}: {:?} weight {:?} at the start, {:?} weight {:?} now",
                    r.name,
                    r.rtype,
                    r.set_identifier
                        .as_ref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    r.values,
                    r.weight,
                    n.values,
                    n.weight
                )),
                None => out.push(format!("record {} {} is gone", r.name, r.rtype)),
            }
        }
        for k in now_recs
            .map(|m| m.keys().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !recs.contains_key(k) {
                out.push(format!("record {k:?} was created by the drill"));
            }
        }
    }
    out
}
