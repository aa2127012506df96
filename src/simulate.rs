//! `simulate`: rehearse a runbook in the simulated cloud, with faults on the timeline.
//!
//! The runbook is bound exactly as for a live run, the very same `engine::plan_run` and
//! `engine::execute` run against the simulated ports (wrapped in the same retry policy), on a
//! single-threaded runtime whose clock is virtual. The result is a [`SimReport`]: the
//! timeline (every step, API call and fault, with its virtual time), the verdict, the time to
//! recover, and the invariants checked on the simulated world itself. Same inputs, same seed:
//! same report, byte for byte.

use crate::cloud::retry::RetryPolicy;
use crate::cloud::sim::invariants::{self, FailedZones, InvariantResult, InvariantStatus};
use crate::cloud::sim::world::FinalState;
use crate::cloud::sim::{
    Event, Fault, FaultError, FaultPhase, SimCloud, TimelineEntry, Topology, TopologyError,
    TrafficReport,
};
use crate::diag::{Diagnostics, SourceFile};
use crate::engine::{self, RunSpec};
use crate::env::Environment;
use crate::journal::{Journal, JournalError, RunRecord};
use crate::progress::Progress;
use crate::runbook::bind::{self, BoundAction, BoundStep, RunContext};
use crate::runbook::Runbook;
use crate::types::StepStatus;
use crate::types::Zone;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The storefront topology of `failover demo` (config/sim/storefront.toml), built in.
pub const DEMO_TOPOLOGY: &str = include_str!("../config/sim/storefront.toml");
/// The runbook of `failover demo` (runbooks/az-evacuation.toml), built in.
pub const DEMO_RUNBOOK: &str = include_str!("../runbooks/az-evacuation.toml");
/// What goes wrong in `failover demo`.
pub const DEMO_FAULT: &str = "az-down us-west-2a at 0s";
/// The zone `failover demo` evacuates.
pub const DEMO_ZONE: &str = "us-west-2a";
/// The seed of `failover demo` when none is given.
pub const DEMO_SEED: u64 = 20230919;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The runbook does not bind against the environment with these parameters.
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error("{}", .0.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n"))]
    Faults(Vec<FaultError>),
    #[error("cannot start the simulation runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the simulation's in-memory journal failed: {0}")]
    Journal(#[from] JournalError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The run succeeded and every invariant held.
    Succeeded,
    /// The run failed, or an invariant was violated, or both.
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct StepSummary {
    pub id: String,
    pub action: String,
    pub description: Option<String>,
    pub status: String,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OperationCount {
    pub calls: usize,
    pub ok: usize,
    pub throttled: usize,
    pub failed: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// The runbook's name (several runs: `a, then b`).
    pub runbook: String,
    pub environment: String,
    pub topology: String,
    pub topology_origin: String,
    pub seed: u64,
    /// The (first) run's id and parameters; `runs` has each run's.
    pub run_id: String,
    pub params: BTreeMap<String, String>,
    /// Every fault applied (the topology's, then the given ones), in the one-line syntax.
    pub faults: Vec<String>,
    pub verdict: Verdict,
    /// Why the verdict is what it is, one line each.
    pub reasons: Vec<String>,
    /// Whether the engine ran at all (it does not when the plan cannot read the world).
    pub run_started: bool,
    /// Every run finished and succeeded.
    pub run_succeeded: bool,
    pub plan_problems: Vec<String>,
    /// The steps of every run, in order.
    pub steps: Vec<StepSummary>,
    /// Each run (one unless [`simulate_runs`] was given several).
    pub runs: Vec<RunSummary>,
    /// The zones the run had to leave: evacuated by the runbook, or down at the end.
    pub failed_zones: FailedZones,
    /// Virtual time from the start until the last writer, primary or record left the failed
    /// zones; `None`: something is still in one.
    pub time_to_recover_ms: Option<u64>,
    /// Virtual time the run took.
    pub simulated_ms: u64,
    pub invariants: Vec<InvariantResult>,
    pub api_calls: BTreeMap<String, OperationCount>,
    pub final_state: FinalState,
    /// The simulated load and the ladder's effect on it, when the topology has `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficReport>,
    pub timeline: Vec<TimelineEntry>,
}

impl SimReport {
    pub fn succeeded(&self) -> bool {
        self.verdict == Verdict::Succeeded
    }

    pub fn invariant(&self, name: &str) -> Option<&InvariantResult> {
        self.invariants.iter().find(|i| i.name == name)
    }

    pub fn time_to_recover(&self) -> Option<Duration> {
        self.time_to_recover_ms.map(Duration::from_millis)
    }

    /// The timeline as JSON, for comparing two runs.
    pub fn timeline_json(&self) -> String {
        serde_json::to_string(&self.timeline).unwrap_or_default()
    }
}

/// Zones the run's steps evacuate (enabled failover and DNS steps).
fn evacuated_zones(steps: &[BoundStep]) -> BTreeSet<Zone> {
    let mut out = BTreeSet::new();
    for s in steps.iter().filter(|s| s.enabled) {
        match &s.action {
            BoundAction::FailoverCluster { evacuate, .. }
            | BoundAction::FailoverInstance { evacuate, .. }
            | BoundAction::DnsUpdate { evacuate, .. } => out.extend(evacuate.iter().cloned()),
            _ => {}
        }
    }
    out
}

/// One runbook run in a simulated world (see [`simulate_runs`]).
#[derive(Clone, Debug)]
pub struct SimRun<'a> {
    pub runbook: &'a Runbook,
    pub params: Vec<(String, String)>,
    /// Start no earlier than this virtual time since the start of the simulation (an operator
    /// who runs the restore once the zone is back); `None`: as soon as the previous run ends.
    pub not_before: Option<Duration>,
}

impl<'a> SimRun<'a> {
    pub fn new(runbook: &'a Runbook, params: &[(String, String)]) -> Self {
        Self {
            runbook,
            params: params.to_vec(),
            not_before: None,
        }
    }

    /// Start no earlier than `at` of virtual time.
    pub fn at(mut self, at: Duration) -> Self {
        self.not_before = Some(at);
        self
    }
}

/// One run as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub runbook: String,
    pub run_id: String,
    pub params: BTreeMap<String, String>,
    /// Virtual time the run started and ended at; `None`: it did not start (or end) before
    /// the simulation's limit.
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub succeeded: bool,
    pub steps: Vec<StepSummary>,
}

/// Run `runbook` against the simulated world of `topology`, bound to `env` with `params`,
/// with the topology's faults plus `faults`, seeded with `seed`. Synchronous: it runs on its
/// own single-threaded runtime (on a thread of its own when called from async code).
pub fn simulate(
    runbook: &Runbook,
    env: &Environment,
    topology: &Topology,
    params: &[(String, String)],
    faults: &[Fault],
    seed: u64,
) -> Result<SimReport, SimError> {
    simulate_runs(&[SimRun::new(runbook, params)], env, topology, faults, seed)
}

/// Run several runbooks one after the other in one simulated world: the same cloud, the same
/// virtual clock and the same journal, so what one run leaves (a writer moved, tiers shed)
/// is what the next one finds. Each run starts when the previous one has ended, and not
/// before its `not_before`. Run ids are `sim-SEED`, `sim-SEED-2`, ... The verdict holds for
/// the whole sequence: every run succeeded and every invariant held at the end.
pub fn simulate_runs(
    runs: &[SimRun<'_>],
    env: &Environment,
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
) -> Result<SimReport, SimError> {
    let all_faults = all_faults(topology, faults)?;
    if runs.is_empty() {
        return Err(SimError::Invalid(Diagnostics::from(
            SourceFile::new("<simulate>", "").diag_file("no runbook to simulate", None),
        )));
    }
    let mut bound = vec![];
    let mut diags = Diagnostics::default();
    for (i, r) in runs.iter().enumerate() {
        let run = RunContext {
            run_id: if i == 0 {
                format!("sim-{seed}")
            } else {
                format!("sim-{seed}-{}", i + 1)
            },
            initiator: "simulator".into(),
            mode: "simulate".into(),
        };
        let params = match bind::bind_params(r.runbook, env, &r.params) {
            Ok(p) => p,
            Err(d) => {
                diags.extend(d);
                continue;
            }
        };
        match bind::bind(r.runbook, env, &params, &run) {
            Ok(steps) => bound.push(BoundRun {
                runbook: r.runbook,
                run,
                params,
                steps,
                not_before: r.not_before,
            }),
            Err(d) => diags.extend(d),
        }
    }
    if !diags.is_empty() {
        return Err(SimError::Invalid(diags));
    }
    let go = move || -> Result<SimReport, SimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(SimError::Runtime)?;
        rt.block_on(run_simulation(env, topology, &all_faults, seed, &bound))
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        // Called from async code (the CLI): a runtime cannot be started inside another, and
        // the simulation needs its own single thread to stay deterministic.
        std::thread::scope(|s| s.spawn(go).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        go()
    }
}

/// `failover demo`: the built-in storefront, zone us-west-2a loses its network, the built-in
/// AZ evacuation runbook moves everything out.
pub fn demo(seed: u64) -> Result<SimReport, SimError> {
    let topology = Topology::parse(DEMO_TOPOLOGY, "config/sim/storefront.toml (built in)")?;
    let runbook = Runbook::parse(SourceFile::new(
        "runbooks/az-evacuation.toml (built in)",
        DEMO_RUNBOOK,
    ))
    .map_err(SimError::Invalid)?;
    let env = crate::cloud::sim::environment_for(&topology);
    let fault: Fault = DEMO_FAULT.parse().map_err(|e| SimError::Faults(vec![e]))?;
    simulate(
        &runbook,
        &env,
        &topology,
        &[("failed_az".into(), DEMO_ZONE.into())],
        &[fault],
        seed,
    )
}

struct BoundRun<'a> {
    runbook: &'a Runbook,
    run: RunContext,
    params: bind::Params,
    steps: Vec<BoundStep>,
    not_before: Option<Duration>,
}

/// What became of one run.
struct RunDone {
    outcome: engine::RunOutcome,
    ended: Duration,
}

async fn run_simulation(
    env: &Environment,
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
    runs: &[BoundRun<'_>],
) -> Result<SimReport, SimError> {
    let cloud = SimCloud::new(topology, faults, seed);
    let mut driver = tokio::spawn(cloud.driver());
    let policy = RetryPolicy {
        max_attempts: env.settings.max_attempts,
        ..RetryPolicy::default()
    };
    let ports = cloud.ports(policy, seed);
    let journal = Arc::new(Journal::open(Path::new(":memory:"))?);
    let reporter = cloud.reporter(None);
    let start_ms = topology
        .start
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let several = runs.len() > 1;
    let mut plan_problems = vec![];
    let mut approvers: Vec<tokio::task::JoinHandle<()>> = vec![];
    let mut started: Vec<Duration> = vec![];
    let mut done: Vec<RunDone> = vec![];

    let body = async {
        for (i, r) in runs.iter().enumerate() {
            if let Some(at) = r.not_before {
                let now = cloud.elapsed();
                if at > now {
                    cloud.virtual_time().sleep(at - now).await;
                }
            }
            if several {
                cloud.note(format!(
                    "run {} of {}: runbook `{}` (run {}) starts",
                    i + 1,
                    runs.len(),
                    r.runbook.name,
                    r.run.run_id
                ));
            }
            started.push(cloud.elapsed());
            let steps = &r.steps;
            let run = &r.run;
            let runbook = r.runbook;
            let plan = match engine::plan_run(&ports, &runbook.name, &env.name, &run.run_id, steps)
                .await
            {
                Ok(p) => p,
                // Static stability: a plan that cannot read part of the world (Route 53's
                // control plane down) does not stop the run; every step observes for itself.
                Err(e) => {
                    cloud.note(format!("the plan could not read the world ({e}); running anyway: every step observes before acting"));
                    crate::plan::Plan {
                        runbook: runbook.name.clone(),
                        environment: env.name.clone(),
                        steps: vec![],
                    }
                }
            };
            let problems: Vec<String> = plan
                .problems()
                .into_iter()
                .map(|(s, p)| {
                    if several {
                        format!("{}: {s}: {p}", runbook.name)
                    } else {
                        format!("{s}: {p}")
                    }
                })
                .collect();
            cloud.note(format!(
                "plan: {} step(s), {} mutating call(s){}",
                plan.steps.len(),
                plan.mutating_calls(),
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(", {} precondition(s) failing", problems.len())
                }
            ));
            for p in &problems {
                cloud.note(format!("plan problem in {p}"));
            }
            plan_problems.extend(problems);
            journal.create_run(&RunRecord {
                id: run.run_id.clone(),
                runbook: runbook.name.clone(),
                runbook_path: runbook.source.path.display().to_string(),
                runbook_sha256: crate::journal::sha256_hex(runbook.source.text.as_bytes()),
                environment: env.name.clone(),
                mode: run.mode.clone(),
                initiator: run.initiator.clone(),
                params: serde_json::to_value(&r.params).unwrap_or_default(),
                status: "running".into(),
                started_at: start_ms + cloud.elapsed().as_millis() as i64,
                ended_at: None,
                error: None,
                plan: serde_json::to_value(&plan).unwrap_or_default(),
                steps: serde_json::to_value(steps).unwrap_or_default(),
            })?;
            let wants_approval = steps
                .iter()
                .any(|s| s.enabled && matches!(s.action, BoundAction::Approval { .. }));
            if let (true, Some(after)) = (wants_approval, topology.approval.after) {
                approvers.push(tokio::spawn(approve_after(
                    cloud.clone(),
                    journal.clone(),
                    run.run_id.clone(),
                    topology.approval.by.clone(),
                    after,
                )));
            }
            let spec = RunSpec {
                run_id: run.run_id.clone(),
                initiator: run.initiator.clone(),
                steps: steps.clone(),
                poll_interval: env.settings.poll_interval,
                max_concurrency: env.settings.max_concurrency,
                approval_poll: Duration::from_secs(1),
            };
            let outcome =
                engine::execute(ports.clone(), journal.clone(), spec, reporter.clone()).await;
            done.push(RunDone {
                outcome,
                ended: cloud.elapsed(),
            });
        }
        Ok::<(), SimError>(())
    };
    let limit = cloud.virtual_time().sleep(topology.timing.max_duration);
    let finished = tokio::select! {
        biased;
        r = body => { r?; true }
        _ = limit => false,
        _ = &mut driver => false,
    };
    driver.abort();
    for a in approvers {
        a.abort();
    }
    cloud.settle();

    let all_steps: Vec<BoundStep> = runs.iter().flat_map(|r| r.steps.clone()).collect();
    let end = cloud.elapsed();
    let failed = FailedZones {
        evacuated: evacuated_zones(&all_steps),
        down: cloud.failed_zones_now(),
    };
    let final_state = cloud.final_state();
    let timeline = cloud.timeline();
    let traffic = cloud.traffic_report();
    let mut invs = invariants::check(&final_state, &timeline, &failed);
    if let Some(t) = traffic_invariant(&all_steps, env, &journal) {
        if let Some(slot) = invs.iter_mut().find(|i| i.name == t.name) {
            *slot = t;
        }
    }
    let ttr = invariants::time_to_recover(&cloud.history(), &failed);

    let mut reasons = vec![];
    if !finished {
        reasons.push(format!("the simulation stopped at its limit of {} of virtual time (timing.max_duration) before the run finished", crate::cloud::sim::world::fmt_dur(topology.timing.max_duration)));
    }
    for (r, d) in runs.iter().zip(&done) {
        let prefix = if several {
            format!("{}: ", r.runbook.name)
        } else {
            String::new()
        };
        for (id, st, msg) in &d.outcome.steps {
            let first = msg.as_deref().and_then(|m| m.lines().next()).unwrap_or("");
            match st {
                StepStatus::Failed => reasons.push(format!("{prefix}step `{id}` failed: {first}")),
                StepStatus::Blocked | StepStatus::Cancelled => {
                    reasons.push(format!("{prefix}step `{id}` {}: {first}", st.as_str()))
                }
                _ => {}
            }
        }
    }
    let run_started = !started.is_empty() || !finished;
    let run_succeeded = finished && done.iter().all(|d| d.outcome.succeeded);
    for i in invs
        .iter()
        .filter(|i| i.status == InvariantStatus::Violated)
    {
        reasons.push(format!(
            "invariant violated: {} ({})",
            i.title,
            i.details.first().cloned().unwrap_or_default()
        ));
    }
    let verdict = if run_succeeded && invs.iter().all(|i| i.status != InvariantStatus::Violated) {
        Verdict::Succeeded
    } else {
        Verdict::Failed
    };

    let run_summaries: Vec<RunSummary> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let d = done.get(i);
            let step_list = d.map(|d| d.outcome.steps.as_slice()).unwrap_or(&[]);
            let steps = r
                .steps
                .iter()
                .map(|s| {
                    let (status, message) = step_list
                        .iter()
                        .find(|(id, _, _)| id == &s.id)
                        .map(|(_, st, m)| (st.as_str().to_string(), m.clone()))
                        .unwrap_or_else(|| ("not run".to_string(), None));
                    StepSummary {
                        id: s.id.to_string(),
                        action: s.action.name().to_string(),
                        description: s.description.clone(),
                        status,
                        message,
                    }
                })
                .collect();
            RunSummary {
                runbook: r.runbook.name.clone(),
                run_id: r.run.run_id.clone(),
                params: r.params.clone(),
                started_ms: started.get(i).map(|t| t.as_millis() as u64),
                ended_ms: d.map(|d| d.ended.as_millis() as u64),
                succeeded: d.is_some_and(|d| d.outcome.succeeded),
                steps,
            }
        })
        .collect();
    let steps_out = run_summaries.iter().flat_map(|r| r.steps.clone()).collect();

    let mut api_calls: BTreeMap<String, OperationCount> = BTreeMap::new();
    for e in &timeline {
        if let Event::Api(c) = &e.event {
            let n = api_calls.entry(c.operation.clone()).or_default();
            n.calls += 1;
            match &c.error {
                None => n.ok += 1,
                Some(err) if err.kind == crate::cloud::ErrorKind::Throttled => n.throttled += 1,
                Some(_) => n.failed += 1,
            }
        }
    }

    let first = &runs[0];
    Ok(SimReport {
        runbook: runs
            .iter()
            .map(|r| r.runbook.name.clone())
            .collect::<Vec<_>>()
            .join(", then "),
        environment: env.name.clone(),
        topology: topology.name.clone(),
        topology_origin: topology.origin.clone(),
        seed,
        run_id: first.run.run_id.clone(),
        params: first.params.clone(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
        verdict,
        reasons,
        run_started,
        run_succeeded,
        plan_problems,
        steps: steps_out,
        runs: run_summaries,
        failed_zones: failed,
        time_to_recover_ms: ttr.map(|d| d.as_millis() as u64),
        simulated_ms: end.as_millis() as u64,
        invariants: invs,
        api_calls,
        final_state,
        traffic,
        timeline,
    })
}

/// The simulated second person: approves a waiting approval step `after` it was requested.
async fn approve_after(
    cloud: Arc<SimCloud>,
    journal: Arc<Journal>,
    run_id: String,
    by: String,
    after: Duration,
) {
    let mut seen: BTreeMap<String, Duration> = BTreeMap::new();
    let mut approved: BTreeSet<String> = BTreeSet::new();
    let time = cloud.virtual_time();
    loop {
        time.sleep(Duration::from_secs(1)).await;
        let Ok(steps) = journal.steps(&run_id) else {
            continue;
        };
        for s in &steps {
            if s.status != "waiting_approval" || approved.contains(&s.step_id) {
                continue;
            }
            let since = *seen
                .entry(s.step_id.clone())
                .or_insert_with(|| cloud.elapsed());
            if cloud.elapsed() >= since + after && journal.approve(&run_id, &s.step_id, &by).is_ok()
            {
                approved.insert(s.step_id.clone());
                cloud.note(format!(
                    "{by} approves step `{}` (simulated second person, after {})",
                    s.step_id,
                    crate::cloud::sim::world::fmt_dur(after)
                ));
            }
        }
    }
}

/// `no-protected-traffic-shed` for runbooks that shed: no protected tier of the ladder may be
/// shed at the end (read from the shed state the traffic loop keeps in the journal).
fn traffic_invariant(
    steps: &[BoundStep],
    env: &Environment,
    journal: &Journal,
) -> Option<InvariantResult> {
    let sheds = steps.iter().any(|s| {
        s.enabled
            && matches!(
                s.action,
                BoundAction::TrafficShed { .. }
                    | BoundAction::TrafficRestore { .. }
                    | BoundAction::TrafficRevert { .. }
            )
    });
    if !sheds {
        return None;
    }
    let mut details = vec![];
    let protected: Vec<String> = env
        .traffic
        .as_ref()
        .map(|l| {
            l.tiers
                .iter()
                .filter(|t| t.protected)
                .map(|t| t.name.clone())
                .collect()
        })
        .unwrap_or_default();
    match journal.shed_tiers(&env.name) {
        Ok(shed) => {
            for (tier, _, run) in shed.iter().filter(|(t, _, _)| protected.contains(t)) {
                details.push(format!("protected tier `{tier}` is shed (by run {run})"));
            }
        }
        Err(e) => details.push(format!("the shed state could not be read: {e}")),
    }
    Some(InvariantResult {
        name: "no-protected-traffic-shed".into(),
        title: "no protected traffic shed".into(),
        status: if details.is_empty() {
            InvariantStatus::Held
        } else {
            InvariantStatus::Violated
        },
        details,
    })
}

// ---- text report --------------------------------------------------------------------------

/// The simulated load over time: one line per change, then how long the signal was bad.
fn render_traffic(o: &mut String, t: &TrafficReport) {
    use crate::cloud::sim::traffic::{fmt_load, fmt_rate, fmt_util};
    let _ = writeln!(
        o,
        "\nTraffic (simulated load; the signal is the {}, {}; an admin call takes effect after {})",
        t.signal,
        t.threshold(),
        dur(t.lag_ms)
    );
    let _ = writeln!(
        o,
        "  {:<8} {:>8} {:>6} {:>6} {:>7}    {:<22} shed",
        "time", "capacity", "demand", "util.", "errors", "zones down"
    );
    for s in &t.samples {
        let down: Vec<&str> = s.zones_down.iter().map(|z| z.as_str()).collect();
        let _ = writeln!(
            o,
            "  {:<8} {:>8} {:>6} {:>6} {:>7} {}  {:<22} {}",
            stamp(Duration::from_millis(s.at_ms)),
            fmt_load(s.capacity),
            fmt_load(s.demand),
            fmt_util(s.utilisation),
            fmt_rate(s.error_rate),
            if s.good { "✔" } else { "✘" },
            if down.is_empty() {
                "-".to_string()
            } else {
                down.join(", ")
            },
            if s.shed.is_empty() {
                "-".to_string()
            } else {
                s.shed.join(", ")
            }
        );
    }
    let readings = t.readings.len();
    let bad = match (t.degraded_at(), t.recovered_at(), t.samples.last()) {
        (None, _, _) => "the signal was good throughout".to_string(),
        (Some(b), Some(g), _) => format!(
            "the signal was bad from {} and good again from {} ({} later)",
            stamp(b),
            stamp(g),
            dur(g.saturating_sub(b).as_millis() as u64)
        ),
        (Some(b), None, _) => format!(
            "the signal went bad at {} and is still bad at the end",
            stamp(b)
        ),
    };
    let _ = writeln!(o, "  {bad}; {readings} reading(s) of the signal");
    let protected: Vec<&str> = t
        .tiers
        .iter()
        .filter(|x| x.protected)
        .map(|x| x.name.as_str())
        .collect();
    let pending: Vec<String> = t
        .pending_at_end
        .iter()
        .map(|c| {
            format!(
                "{} ({} at {}, not in effect yet)",
                c.tier,
                if c.shed { "shed" } else { "restored" },
                stamp(Duration::from_millis(c.at_ms))
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "  shed at the end: {}{}{}",
        if t.shed_at_end.is_empty() {
            "nothing".to_string()
        } else {
            t.shed_at_end.join(", ")
        },
        if pending.is_empty() {
            String::new()
        } else {
            format!("; changing: {}", pending.join(", "))
        },
        if protected.is_empty() {
            String::new()
        } else {
            format!("; protected, never shed: {}", protected.join(", "))
        }
    );
}

/// `+MM:SS` (or `+H:MM:SS`) of a virtual time.
pub fn stamp(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("+{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("+{:02}:{:02}", s / 60, s % 60)
    }
}

fn dur(ms: u64) -> String {
    crate::cloud::sim::world::fmt_dur(Duration::from_millis(ms))
}

fn indent_rest(text: &str, pad: &str) -> String {
    let mut lines = text.lines();
    let mut out = lines.next().unwrap_or("").to_string();
    for l in lines {
        out.push('\n');
        out.push_str(pad);
        out.push_str(l.trim_start());
    }
    out
}

struct Reads {
    first: u64,
    last: u64,
    ops: BTreeMap<String, usize>,
}

/// The report for a person: what happened when, then the verdict. Successful read-only calls
/// are summarised per stretch; `verbose` lists each one.
pub fn render_text(r: &SimReport, verbose: bool) -> String {
    let mut o = String::new();
    let list = |params: &BTreeMap<String, String>| -> String {
        let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if p.is_empty() {
            "none".into()
        } else {
            p.join(", ")
        }
    };
    if r.runs.len() > 1 {
        let _ = writeln!(
            o,
            "Simulation of {} runbooks in one world on topology `{}` ({}), seed {}",
            r.runs.len(),
            r.topology,
            r.topology_origin,
            r.seed
        );
        let _ = writeln!(o, "Environment `{}`", r.environment);
        let _ = writeln!(o, "Runs:");
        for (i, run) in r.runs.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {}. `{}` (run {}), {}; parameters: {}",
                i + 1,
                run.runbook,
                run.run_id,
                match run.started_ms {
                    Some(ms) => format!("started at {}", stamp(Duration::from_millis(ms))),
                    None => "never started".into(),
                },
                list(&run.params)
            );
        }
    } else {
        let _ = writeln!(
            o,
            "Simulation of runbook `{}` on topology `{}` ({}), seed {}",
            r.runbook, r.topology, r.topology_origin, r.seed
        );
        let _ = writeln!(
            o,
            "Environment `{}`; parameters: {}",
            r.environment,
            list(&r.params)
        );
    }
    if r.faults.is_empty() {
        let _ = writeln!(o, "Faults: none");
    } else {
        let _ = writeln!(o, "Faults:");
        for f in &r.faults {
            let _ = writeln!(o, "  ⚡ {f}");
        }
    }
    let _ = writeln!(o, "\nTimeline (virtual time since the start)");
    let mut reads: Option<Reads> = None;
    let flush = |o: &mut String, reads: &mut Option<Reads>| {
        if let Some(rd) = reads.take() {
            let n: usize = rd.ops.values().sum();
            let ops: Vec<String> = rd
                .ops
                .iter()
                .map(|(op, c)| {
                    if *c > 1 {
                        format!("{op} ×{c}")
                    } else {
                        op.clone()
                    }
                })
                .collect();
            let (a, b) = (
                stamp(Duration::from_millis(rd.first)),
                stamp(Duration::from_millis(rd.last)),
            );
            let span = if a != b {
                format!(" until {b}")
            } else {
                String::new()
            };
            let _ = writeln!(o, "{a}      · {n} read call(s){span}: {}", ops.join(", "));
        }
    };
    for e in &r.timeline {
        let t = stamp(e.at());
        if let Event::Api(c) = &e.event {
            if c.ok && !c.mutating && !verbose {
                let rd = reads.get_or_insert(Reads {
                    first: e.at_ms,
                    last: e.at_ms,
                    ops: BTreeMap::new(),
                });
                rd.last = e.at_ms;
                *rd.ops.entry(c.operation.clone()).or_default() += 1;
                continue;
            }
        }
        if let Event::Engine {
            progress: Progress::CallDone { .. },
        } = &e.event
        {
            continue; // the simulated service's own record of the call says the same, and more
        }
        flush(&mut o, &mut reads);
        let line = match &e.event {
            Event::Fault { fault, phase, text } => match phase {
                FaultPhase::Begins => format!("⚡ {text}  [{fault}]"),
                _ => format!("⚡ {text}"),
            },
            Event::World { text } => format!("  ◆ {text}"),
            Event::Api(c) => {
                let what = format!("{} {}", c.operation, c.resource);
                let mut s = match (&c.error, c.http_status) {
                    (None, Some(st)) => format!("    ⇢ {what}: answered {st}"),
                    (None, None) => format!("    ⇢ {what}: ok"),
                    (Some(err), _) => format!(
                        "    ✗ {what}: {:?}{}: {}",
                        err.kind,
                        err.code
                            .as_deref()
                            .map(|c| format!(" {c}"))
                            .unwrap_or_default(),
                        err.message
                    ),
                };
                if let Some(n) = &c.note {
                    let _ = write!(s, "  ({n})");
                }
                s
            }
            Event::Engine { progress } => match progress {
                Progress::StepStarted { step, action } => {
                    let desc = r
                        .steps
                        .iter()
                        .find(|s| &s.id == step)
                        .and_then(|s| s.description.clone())
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    format!("▶ {step} ({action}){desc}")
                }
                Progress::StepFinished {
                    step,
                    status,
                    message,
                } => {
                    let m = message
                        .as_deref()
                        .map(|m| indent_rest(m, "            "))
                        .unwrap_or_default();
                    match status {
                        StepStatus::Succeeded => format!(
                            "✔ {step} succeeded{}",
                            if m.is_empty() {
                                String::new()
                            } else {
                                format!(": {m}")
                            }
                        ),
                        StepStatus::Failed => format!("✘ {step} FAILED: {m}"),
                        StepStatus::Skipped => format!("○ {step} {m}"),
                        other => format!("✘ {step} {}: {m}", other.as_str()),
                    }
                }
                Progress::Call { step, text } => {
                    format!("  → {step}: {}", indent_rest(text, "              "))
                }
                Progress::Skip { step, text } => format!("  = {step}: {text}"),
                Progress::Problem { step, text } => format!("  ! {step}: {text}"),
                Progress::Waiting { step, what } => format!("  … {step}: {what}"),
                Progress::Converged { step, what } => format!("  ✓ {step}: {what}"),
                Progress::StepError {
                    step,
                    attempt,
                    error,
                    retrying,
                } => {
                    format!(
                        "  ✗ {step}: attempt {attempt} failed: {}{}",
                        indent_rest(error, "              "),
                        if *retrying { " (retrying)" } else { "" }
                    )
                }
                Progress::ApprovalRequested { step, message, .. } => {
                    format!("  ? {step}: waiting for approval: {message}")
                }
                other => format!("  · {}", serde_json::to_string(other).unwrap_or_default()),
            },
        };
        let _ = writeln!(o, "{t}  {line}");
    }
    flush(&mut o, &mut reads);

    let _ = writeln!(o, "\n{}", "─".repeat(72));
    let _ = writeln!(
        o,
        "Verdict: {}",
        match r.verdict {
            Verdict::Succeeded => "SUCCEEDED: the run finished and every invariant held",
            Verdict::Failed => "FAILED",
        }
    );
    for reason in &r.reasons {
        let _ = writeln!(o, "  - {reason}");
    }
    let counts = |st: &str| r.steps.iter().filter(|s| s.status == st).count();
    let run = if !r.run_started {
        "not started".to_string()
    } else {
        let parts: Vec<String> = [
            "succeeded",
            "failed",
            "skipped",
            "blocked",
            "cancelled",
            "not run",
        ]
        .iter()
        .filter(|s| counts(s) > 0)
        .map(|s| format!("{} {s}", counts(s)))
        .collect();
        format!(
            "{} ({} steps: {})",
            if r.run_succeeded {
                "succeeded"
            } else {
                "failed"
            },
            r.steps.len(),
            parts.join(", ")
        )
    };
    let _ = writeln!(o, "  run:             {run}");
    let failed: Vec<String> = r
        .failed_zones
        .all()
        .iter()
        .map(|z| format!("{z} ({})", r.failed_zones.why(z)))
        .collect();
    let _ = writeln!(
        o,
        "  failed zones:    {}",
        if failed.is_empty() {
            "none".into()
        } else {
            failed.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "  time to recover: {}",
        match r.time_to_recover_ms {
            Some(0) => "0s (nothing was in a failed zone)".to_string(),
            Some(ms) => format!(
                "{} (at {} the last writer or record left the failed zones)",
                dur(ms),
                stamp(Duration::from_millis(ms))
            ),
            None => "not recovered: something is still in a failed zone".to_string(),
        }
    );
    let _ = writeln!(o, "  simulated time:  {}", dur(r.simulated_ms));
    let total: usize = r.api_calls.values().map(|c| c.calls).sum();
    let throttled: usize = r.api_calls.values().map(|c| c.throttled).sum();
    let errors: usize = r.api_calls.values().map(|c| c.failed).sum();
    let _ = writeln!(
        o,
        "  API calls:       {total} ({throttled} throttled, {errors} failed otherwise)"
    );
    let _ = writeln!(o, "\nInvariants");
    for i in &r.invariants {
        let mark = match i.status {
            InvariantStatus::Held => "✔",
            InvariantStatus::Violated => "✘",
            InvariantStatus::NotApplicable => "–",
        };
        let status = match i.status {
            InvariantStatus::Held => "held",
            InvariantStatus::Violated => "VIOLATED",
            InvariantStatus::NotApplicable => "not applicable",
        };
        let _ = writeln!(o, "  {mark} {}: {status}", i.title);
        for d in &i.details {
            let _ = writeln!(o, "      {d}");
        }
    }
    if let Some(t) = &r.traffic {
        render_traffic(&mut o, t);
    }
    let _ = writeln!(o, "\nFinal state");
    for c in &r.final_state.clusters {
        let _ = writeln!(
            o,
            "  cluster  {:<16} writer {:<20} {:<12} {}",
            c.id.as_str(),
            c.writer.as_str(),
            c.zone.as_str(),
            c.status
        );
    }
    for i in &r.final_state.instances {
        let _ = writeln!(
            o,
            "  instance {:<16} primary in {:<16} {:<12} {}",
            i.id.as_str(),
            i.zone.as_str(),
            i.standby_zone
                .as_ref()
                .map(|z| format!("standby {z}"))
                .unwrap_or_default(),
            i.status
        );
    }
    for rec in &r.final_state.records {
        let to = if rec.weighted {
            rec.weights
                .iter()
                .map(|(z, w)| format!("{z}={w}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            format!(
                "{} ({})",
                rec.values.join(", "),
                rec.zones
                    .iter()
                    .map(|z| z.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let _ = writeln!(o, "  record   {} {} -> {to}", rec.name, rec.rtype);
    }
    o
}

/// The topology's faults plus `faults`, each checked against the topology.
fn all_faults(topology: &Topology, faults: &[Fault]) -> Result<Vec<Fault>, SimError> {
    let mut all = topology.faults.clone();
    all.extend_from_slice(faults);
    let errs: Vec<FaultError> = all
        .iter()
        .filter_map(|f| topology.check_fault(f).err())
        .collect();
    if errs.is_empty() {
        Ok(all)
    } else {
        Err(SimError::Faults(errs))
    }
}

/// Run `f` against the ports of a simulated world, on a single-threaded runtime of its own
/// with the virtual clock driven: `failover plan` and `failover run` against an environment
/// that names a topology (`simulated = "sim/storefront.toml"`). When `approvals` names a run,
/// the topology's simulated second person releases its approval gates.
pub fn with_sim_ports<T, F, Fut>(
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
    max_attempts: u32,
    approvals: Option<(Arc<Journal>, String)>,
    f: F,
) -> Result<T, SimError>
where
    T: Send,
    F: FnOnce(crate::ports::Ports) -> Fut + Send,
    Fut: std::future::Future<Output = T>,
{
    let all_faults = all_faults(topology, faults)?;
    let go = move || -> Result<T, SimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(SimError::Runtime)?;
        Ok(rt.block_on(async move {
            let cloud = SimCloud::new(topology, &all_faults, seed);
            let driver = tokio::spawn(cloud.driver());
            let ports = cloud.ports(
                RetryPolicy {
                    max_attempts,
                    ..RetryPolicy::default()
                },
                seed,
            );
            let approver = match (approvals, topology.approval.after) {
                (Some((journal, run_id)), Some(after)) => Some(tokio::spawn(approve_after(
                    cloud.clone(),
                    journal,
                    run_id,
                    topology.approval.by.clone(),
                    after,
                ))),
                _ => None,
            };
            let out = f(ports).await;
            if let Some(a) = approver {
                a.abort();
            }
            driver.abort();
            out
        }))
    };
    std::thread::scope(|s| s.spawn(go).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_minutes_and_seconds() {
        assert_eq!(stamp(Duration::from_millis(31_400)), "+00:31");
        assert_eq!(stamp(Duration::from_secs(754)), "+12:34");
        assert_eq!(stamp(Duration::from_secs(3600 + 62)), "+1:01:02");
    }

    #[test]
    fn the_demo_evacuates_the_zone_and_holds_every_invariant() {
        let r = demo(DEMO_SEED).unwrap();
        assert!(r.succeeded(), "{}", render_text(&r, false));
        assert!(r
            .final_state
            .clusters
            .iter()
            .all(|c| c.zone.as_str() != DEMO_ZONE));
        let text = render_text(&r, false);
        assert!(text.contains("Verdict: SUCCEEDED"), "{text}");
        assert!(
            text.contains("⚡ zone us-west-2a loses its network"),
            "{text}"
        );
    }
}
