//! `simulate`: rehearse a runbook in the simulated cloud, with faults on the timeline.
//!
//! The runbook is bound exactly as for a live run, the very same `engine::plan_run` and
//! `engine::execute` run against the simulated ports (wrapped in the same retry policy), on a
//! single-threaded runtime whose clock is virtual. The result is a [`SimReport`]: the
//! timeline (every step, API call and fault, with its virtual time), the verdict, the time to
//! recover, and the invariants checked on the simulated world itself. Same inputs, same seed:
//! same report, byte for byte.

use super::lifecycle::{start_run, RunRequest};
use super::record::RunHeader;
use super::AppError;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::sim::invariants::{self, FailedZones, InvariantResult, InvariantStatus};
use crate::cloud::sim::world::FinalState;
use crate::cloud::sim::{
    Event, Fault, FaultError, SimCloud, TimelineEntry, Topology, TopologyError, TrafficReport,
};
use crate::diag::{Diagnostics, SourceFile};
use crate::engine;
use crate::env::Environment;
use crate::journal::{Journal, JournalError};
use crate::ports::Ports;
use crate::progress::Reporter;
use crate::runbook::bind::{self, BoundAction, BoundStep, RunContext};
use crate::runbook::Runbook;
use crate::status::{RunMode, StepStatus};
use crate::store::Store;
use crate::types::{Region, RunId, Zone};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The storefront topology of `failover demo` (config/sim/storefront.toml), built in.
pub const DEMO_TOPOLOGY: &str = include_str!("../../config/sim/storefront.toml");
/// The runbook of `failover demo` (runbooks/az-evacuation.toml), built in.
pub const DEMO_RUNBOOK: &str = include_str!("../../runbooks/az-evacuation.toml");
/// The failback runbook of `failover demo` (runbooks/az-failback.toml), built in.
pub const DEMO_FAILBACK: &str = include_str!("../../runbooks/az-failback.toml");
/// What goes wrong in `failover demo`: the zone is lost for 20 minutes.
pub const DEMO_FAULT: &str = "az-down us-west-2a at 0s for 20m";
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
    #[error("the simulated run failed to start: {0}")]
    Run(String),
}

impl From<SimError> for AppError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::Invalid(d) => AppError::Invalid(d),
            SimError::Topology(t) => AppError::Input(format!("{t}\n\nnothing was simulated.")),
            e @ SimError::Faults(_) => AppError::Input(format!("{e}\n\nnothing was simulated.")),
            other => AppError::Runtime(other.to_string()),
        }
    }
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
    /// How the step ended; `None`: it was not run (its run did not start or did not reach
    /// it), shown as `not run`.
    #[serde(serialize_with = "status_or_not_run")]
    pub status: Option<StepStatus>,
    pub message: Option<String>,
}

/// What a step summary shows for a step that was not run.
pub const NOT_RUN: &str = "not run";

fn status_or_not_run<S: serde::Serializer>(
    st: &Option<StepStatus>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(st.map_or(NOT_RUN, StepStatus::as_str))
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
    pub run_id: RunId,
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
    /// Virtual time when the last Route 53 change of the simulation went INSYNC; `None`: no
    /// change was made, or one is still PENDING (then `dns_pending` says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route53_insync_ms: Option<u64>,
    /// A Route 53 change was still PENDING at the end.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dns_pending: bool,
    /// Virtual time the run took.
    pub simulated_ms: u64,
    pub invariants: Vec<InvariantResult>,
    pub api_calls: BTreeMap<String, OperationCount>,
    pub final_state: FinalState,
    /// The simulated load and the ladder's effect on it, when the topology has `[traffic]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficReport>,
    pub timeline: Vec<TimelineEntry>,
    /// What the watcher's detection said, when the simulation ran it (`simulate_watch`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<sim_watch::Detection>,
    /// Time to detect, mitigate and recover, against the AWS critical path (`failover demo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story: Option<sim_watch::Story>,
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

/// Zones the run's steps evacuate (enabled failover and DNS steps), less those a later step
/// fails back into (`return_to`).
pub(super) fn evacuated_zones(steps: &[BoundStep]) -> BTreeSet<Zone> {
    let mut out = BTreeSet::new();
    for s in steps.iter().filter(|s| s.enabled) {
        match &s.action {
            BoundAction::FailoverCluster {
                return_to: Some(z), ..
            }
            | BoundAction::FailoverInstance {
                return_to: Some(z), ..
            }
            | BoundAction::DnsUpdate {
                return_to: Some(z), ..
            } => {
                out.remove(z);
            }
            BoundAction::FailoverCluster { evacuate, .. }
            | BoundAction::FailoverInstance { evacuate, .. }
            | BoundAction::DnsUpdate { evacuate, .. } => out.extend(evacuate.iter().cloned()),
            _ => {}
        }
    }
    out
}

/// Regions the enabled steps evacuate (`evacuate_region` of a global move or a `dns.update`
/// of records valued per region), less those a later step returns to.
fn evacuated_regions(steps: &[BoundStep]) -> BTreeSet<Region> {
    let mut out = BTreeSet::new();
    for s in steps.iter().filter(|s| s.enabled) {
        match &s.action {
            BoundAction::GlobalMove(m) => out.extend(m.evacuate_region.iter().cloned()),
            BoundAction::DnsUpdate {
                region: Some(r), ..
            } => {
                if let Some(back) = &r.return_to {
                    out.remove(back);
                }
                out.extend(r.evacuate.iter().cloned());
            }
            _ => {}
        }
    }
    out
}

/// Zones a step fails back into (`return_to`).
fn returned_zones(steps: &[BoundStep]) -> BTreeSet<Zone> {
    steps
        .iter()
        .filter(|s| s.enabled)
        .filter_map(|s| match &s.action {
            BoundAction::FailoverCluster { return_to, .. }
            | BoundAction::FailoverInstance { return_to, .. }
            | BoundAction::DnsUpdate { return_to, .. } => return_to.clone(),
            _ => None,
        })
        .collect()
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
    pub run_id: RunId,
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
    let bound = bind_runs(runs, env, seed)?;
    let go = move || -> Result<SimReport, SimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(SimError::Runtime)?;
        rt.block_on(run_simulation(
            env,
            topology,
            &all_faults,
            seed,
            Script::Runs(&bound),
        ))
        .map(|(r, _)| r)
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        // Called from async code (the CLI): a runtime cannot be started inside another, and
        // the simulation needs its own single thread to stay deterministic.
        std::thread::scope(|s| s.spawn(go).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        go()
    }
}

/// Bind each run against `env` (every problem of every run at once). Run ids are `sim-SEED`,
/// `sim-SEED-2`, ...
pub(super) fn bind_runs<'a>(
    runs: &[SimRun<'a>],
    env: &Environment,
    seed: u64,
) -> Result<Vec<BoundRun<'a>>, SimError> {
    let mut bound = vec![];
    let mut diags = Diagnostics::default();
    for (i, r) in runs.iter().enumerate() {
        let run = RunContext {
            run_id: RunId::new(if i == 0 {
                format!("sim-{seed}")
            } else {
                format!("sim-{seed}-{}", i + 1)
            }),
            initiator: "simulator".into(),
            mode: RunMode::Simulate,
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
    Ok(bound)
}

/// `failover simulate`: load the runbook, the topology and the faults (every problem at once),
/// bind against `env` (default: the environment the topology describes) and simulate.
pub fn simulate_files(
    app: &super::App,
    runbook: &Path,
    topology: &Path,
    env: Option<&str>,
    params: &[(String, String)],
    faults: &[String],
    seed: Option<u64>,
) -> Result<SimReport, AppError> {
    let rb = Runbook::load(runbook);
    let topo = Topology::load(topology);
    let faults = crate::cloud::sim::parse_faults(faults);
    let (rb, topo, faults) = match (rb, topo, faults) {
        (Ok(r), Ok(t), Ok(f)) => (r, t, f),
        (r, t, f) => {
            let mut diags = Diagnostics::default();
            let mut msgs = vec![];
            if let Err(d) = r {
                diags.extend(d);
            }
            if let Err(e) = t {
                msgs.push(e.to_string());
            }
            if let Err(es) = f {
                msgs.extend(es.iter().map(|e| format!("--fault: error: {e}")));
            }
            let mut m = if diags.is_empty() {
                String::new()
            } else {
                format!("{diags}\n")
            };
            m.push_str(&msgs.join("\n"));
            return Err(AppError::Input(format!(
                "{}\n\nnothing was simulated.",
                m.trim_end()
            )));
        }
    };
    let env = match env {
        Some(n) => Environment::load(&app.config_dir, n)?,
        None => crate::cloud::sim::environment_for(&topo),
    };
    let seed = seed.or(topo.seed).unwrap_or(1);
    Ok(simulate(&rb, &env, &topo, params, &faults, seed)?)
}

/// `failover demo`: the built-in storefront loses zone us-west-2a for 20 minutes. The
/// watcher's probes detect it, its trigger policy starts the built-in AZ evacuation (which
/// sheds load while the databases fail over and moves each record as its databases move);
/// once the zone has been healthy for 5 minutes, the watcher's failback policy runs the built-in
/// failback. The
/// report's story has the times to detect, mitigate and recover, and the AWS critical path.
pub fn demo(seed: u64) -> Result<SimReport, SimError> {
    let topology = Topology::parse(DEMO_TOPOLOGY, "config/sim/storefront.toml (built in)")?;
    let runbook = Runbook::parse(SourceFile::new(
        "runbooks/az-evacuation.toml (built in)",
        DEMO_RUNBOOK,
    ))
    .map_err(SimError::Invalid)?;
    let failback = Runbook::parse(SourceFile::new(
        "runbooks/az-failback.toml (built in)",
        DEMO_FAILBACK,
    ))
    .map_err(SimError::Invalid)?;
    let env = crate::cloud::sim::environment_for(&topology);
    let fault: Fault = DEMO_FAULT.parse().map_err(|e| SimError::Faults(vec![e]))?;
    // The trigger's parameters (shed_load) and the failback's delay are the topology's
    // `[health.trigger]` and `[health.failback]`, as `failover watch` reads them live.
    let plan = sim_watch::WatchPlan {
        evacuation: &runbook,
        params: vec![],
        failback: env
            .health
            .as_ref()
            .and_then(|h| h.failback.as_ref())
            .map(|f| sim_watch::Failback {
                runbook: &failback,
                zone_param: f.zone_param.clone(),
                after: f.after,
            }),
        watch_for: Duration::from_secs(3 * 3600),
    };
    let faults = [fault];
    let (mut r, history) = sim_watch::simulate_watch(&plan, &env, &topology, &faults, seed)?;
    let zone = Zone::new(DEMO_ZONE);
    let recovered = history.and_then(|h| crate::cloud::sim::invariants::first_out(&h, &zone));
    let multi_az = topology.instances.iter().any(|i| i.zone == zone);
    if let Some(cfg) = &env.health {
        r.story = Some(sim_watch::story(
            &r, &zone, &faults, cfg, recovered, multi_az,
        ));
    }
    Ok(r)
}

/// A run bound against its environment.
pub(super) struct BoundRun<'a> {
    pub(super) runbook: &'a Runbook,
    pub(super) run: RunContext,
    pub(super) params: bind::Params,
    pub(super) steps: Vec<BoundStep>,
    pub(super) not_before: Option<Duration>,
}

/// What became of one run.
pub(super) struct RunDone {
    outcome: engine::RunOutcome,
    ended: Duration,
}

/// What happened to the runs of a simulation, as they went.
#[derive(Default)]
pub(super) struct Played {
    started: Vec<Duration>,
    done: Vec<RunDone>,
    plan_problems: Vec<String>,
    /// Why a run did not start (its plan was refused access).
    not_started: Vec<String>,
    approvers: Vec<tokio::task::JoinHandle<()>>,
}

/// Everything the runs of one simulation share.
pub(super) struct Stage<'a> {
    pub(super) cloud: &'a Arc<SimCloud>,
    pub(super) ports: &'a Ports,
    pub(super) journal: &'a Arc<dyn Store>,
    pub(super) reporter: Arc<dyn Reporter>,
    pub(super) env: &'a Environment,
    pub(super) topology: &'a Topology,
}

/// What a simulation plays: runs given in advance, or the watcher's detection and the runs
/// its trigger and failback policies start.
pub(super) enum Script<'s, 'a> {
    Runs(&'s [BoundRun<'a>]),
    Watch(&'s sim_watch::WatchPlan<'a>),
}

pub(super) async fn run_simulation(
    env: &Environment,
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
    script: Script<'_, '_>,
) -> Result<(SimReport, Option<crate::cloud::sim::History>), SimError> {
    let cloud = SimCloud::new(topology, faults, seed);
    let mut driver = tokio::spawn(cloud.driver());
    let policy = RetryPolicy {
        max_attempts: env.settings.max_attempts,
        ..RetryPolicy::default()
    };
    let mut ports = cloud.ports(policy, seed);
    sim_health(&mut ports, &cloud, env, seed);
    let clock = ports.clock.clone();
    let journal: Arc<dyn Store> = Arc::new(
        Journal::open(Path::new(":memory:"))?.with_clock(Arc::new(move || epoch_ms(clock.now()))),
    );
    let stage = Stage {
        cloud: &cloud,
        ports: &ports,
        journal: &journal,
        reporter: cloud.reporter(None),
        env,
        topology,
    };
    let mut played = Played::default();
    let mut watched = sim_watch::Watched::default();
    let body = async {
        match &script {
            Script::Runs(runs) => play(&stage, runs, &mut played).await,
            Script::Watch(plan) => {
                sim_watch::watch(&stage, plan, seed, &mut played, &mut watched).await
            }
        }
    };
    let limit = cloud.virtual_time().sleep(topology.timing.max_duration);
    let finished = tokio::select! {
        biased;
        r = body => { r?; true }
        _ = limit => false,
        _ = &mut driver => false,
    };
    driver.abort();
    for a in played.approvers.drain(..) {
        a.abort();
    }
    cloud.settle();
    let history = matches!(script, Script::Watch(_)).then(|| cloud.history());
    let runs = match script {
        Script::Runs(runs) => runs,
        Script::Watch(_) => &watched.runs[..],
    };
    let mut r = report(&stage, faults, seed, runs, played, finished).await;
    r.detections = watched.detections;
    Ok((r, history))
}

/// Play the runs one after the other, each through the one run lifecycle.
async fn play(
    stage: &Stage<'_>,
    runs: &[BoundRun<'_>],
    played: &mut Played,
) -> Result<(), SimError> {
    let cloud = stage.cloud;
    for (i, r) in runs.iter().enumerate() {
        if let Some(at) = r.not_before {
            let now = cloud.elapsed();
            if at > now {
                cloud.virtual_time().sleep(at - now).await;
            }
        }
        let n = (runs.len() > 1).then_some((i + 1, runs.len()));
        if !play_run(stage, r, n, played).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Play one run through the one run lifecycle; `n`: its number and how many there are, when
/// there are several. `false`: it did not start (the simulation stops there).
pub(super) async fn play_run(
    stage: &Stage<'_>,
    r: &BoundRun<'_>,
    n: Option<(usize, usize)>,
    played: &mut Played,
) -> Result<bool, SimError> {
    let cloud = stage.cloud;
    let several = n.is_some();
    if let Some((i, total)) = n {
        let of = if total > 0 {
            format!(" of {total}")
        } else {
            String::new()
        };
        cloud.note(format!(
            "run {i}{of}: runbook `{}` (run {}) starts",
            r.runbook.name, r.run.run_id
        ));
    }
    played.started.push(cloud.elapsed());
    // Approval steps, and global switchovers that escalate through an approval gate.
    let wants_approval = r.steps.iter().any(|s| {
        s.enabled
            && match &s.action {
                BoundAction::Approval { .. } => true,
                BoundAction::GlobalMove(m) => m
                    .escalate
                    .as_ref()
                    .is_some_and(|e| e.mode == bind::EscalateMode::Approval),
                _ => false,
            }
    });
    if let (true, Some(after)) = (wants_approval, stage.topology.approval.after) {
        played.approvers.push(tokio::spawn(approve_after(
            cloud.clone(),
            stage.journal.clone(),
            r.run.run_id.clone(),
            stage.topology.approval.by.clone(),
            after,
        )));
    }
    match start_run(
        stage.ports,
        stage.journal,
        stage.reporter.clone(),
        request(stage.env, r),
    )
    .await
    {
        Ok(res) => {
            played
                .plan_problems
                .extend(res.plan.problems().into_iter().map(|(s, p)| {
                    if several {
                        format!("{}: {s}: {p}", r.runbook.name)
                    } else {
                        format!("{s}: {p}")
                    }
                }));
            played.done.push(RunDone {
                outcome: res.outcome,
                ended: cloud.elapsed(),
            });
            Ok(true)
        }
        Err(AppError::Cloud { error, .. }) => {
            let why = format!(
                "run {} did not start: its plan was refused: {error}",
                r.run.run_id
            );
            cloud.note(why.clone());
            played.not_started.push(why);
            Ok(false)
        }
        Err(e) => Err(SimError::Run(e.to_string())),
    }
}

/// The lifecycle's request for one simulated run.
pub(super) fn request(env: &Environment, r: &BoundRun<'_>) -> RunRequest {
    RunRequest {
        approval_poll: Duration::from_secs(1),
        ..RunRequest::new(header(env, r), r.steps.clone(), env)
    }
}

fn header(env: &Environment, r: &BoundRun<'_>) -> RunHeader {
    RunHeader {
        id: r.run.run_id.clone(),
        runbook: r.runbook.name.clone(),
        runbook_path: r.runbook.source.path.display().to_string(),
        runbook_sha256: crate::journal::sha256_hex(r.runbook.source.text.as_bytes()),
        environment: env.name.clone(),
        mode: r.run.mode,
        initiator: r.run.initiator.clone(),
        params: serde_json::to_value(&r.params).unwrap_or_default(),
        of_run: None,
    }
}

/// The report of a simulation that has ended (or reached its limit).
async fn report(
    stage: &Stage<'_>,
    faults: &[Fault],
    seed: u64,
    runs: &[BoundRun<'_>],
    played: Played,
    finished: bool,
) -> SimReport {
    let (cloud, env, topology) = (stage.cloud, stage.env, stage.topology);
    let all_steps: Vec<BoundStep> = runs.iter().flat_map(|r| r.steps.clone()).collect();
    // A region evacuated is each of its zones evacuated: every writer (global ones included)
    // and record must be out of them.
    let mut evacuated = evacuated_zones(&all_steps);
    for r in evacuated_regions(&all_steps) {
        evacuated.extend(topology.zones_of(&r));
    }
    let failed = FailedZones {
        returned: returned_zones(&all_steps),
        evacuated,
        down: cloud.failed_zones_now(),
    };
    let final_state = cloud.final_state();
    let timeline = cloud.timeline();
    let mut invs = invariants::check(&final_state, &timeline, &failed);
    if let Some(t) = traffic_invariant(&all_steps, env, stage.journal).await {
        if let Some(slot) = invs.iter_mut().find(|i| i.name == t.name) {
            *slot = t;
        }
    }
    let ttr = invariants::time_to_recover(&cloud.history(), &failed);
    let insync = cloud.changes_insync_at();
    let reasons = reasons(runs, &played, &invs, finished, topology);
    let run_started = !played.started.is_empty() || !finished;
    let run_succeeded = finished
        && played.not_started.is_empty()
        && played.done.iter().all(|d| d.outcome.succeeded);
    let verdict = if run_succeeded && invs.iter().all(|i| i.status != InvariantStatus::Violated) {
        Verdict::Succeeded
    } else {
        Verdict::Failed
    };
    let run_summaries = summaries(runs, &played);
    // A watch may start no run at all.
    let first = runs.first();
    SimReport {
        runbook: runs
            .iter()
            .map(|r| r.runbook.name.clone())
            .collect::<Vec<_>>()
            .join(", then "),
        environment: env.name.clone(),
        topology: topology.name.clone(),
        topology_origin: topology.origin.clone(),
        seed,
        run_id: first.map_or_else(|| RunId::new("-"), |r| r.run.run_id.clone()),
        params: first.map(|r| r.params.clone()).unwrap_or_default(),
        faults: faults.iter().map(|f| f.to_string()).collect(),
        verdict,
        reasons,
        run_started,
        run_succeeded,
        plan_problems: played.plan_problems,
        steps: run_summaries.iter().flat_map(|r| r.steps.clone()).collect(),
        runs: run_summaries,
        failed_zones: failed,
        time_to_recover_ms: ttr.map(|d| d.as_millis() as u64),
        route53_insync_ms: insync.flatten().map(|d| d.as_millis() as u64),
        dns_pending: insync.is_none(),
        simulated_ms: cloud.elapsed().as_millis() as u64,
        invariants: invs,
        api_calls: api_calls(&timeline),
        final_state,
        traffic: cloud.traffic_report(),
        timeline,
        detections: vec![],
        story: None,
    }
}

/// Why the verdict is what it is, one line each.
fn reasons(
    runs: &[BoundRun<'_>],
    played: &Played,
    invs: &[InvariantResult],
    finished: bool,
    topology: &Topology,
) -> Vec<String> {
    let mut reasons = vec![];
    if !finished {
        reasons.push(format!("the simulation stopped at its limit of {} of virtual time (timing.max_duration) before the run finished", crate::cloud::sim::world::fmt_dur(topology.timing.max_duration)));
    }
    reasons.extend(played.not_started.iter().cloned());
    let several = runs.len() > 1;
    for (r, d) in runs.iter().zip(&played.done) {
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
    reasons
}

/// Each run as the report shows it.
fn summaries(runs: &[BoundRun<'_>], played: &Played) -> Vec<RunSummary> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            let d = played.done.get(i);
            let step_list = d.map(|d| d.outcome.steps.as_slice()).unwrap_or(&[]);
            let steps = r
                .steps
                .iter()
                .map(|s| {
                    let (status, message) = step_list
                        .iter()
                        .find(|(id, _, _)| id == &s.id)
                        .map(|(_, st, m)| (Some(*st), m.clone()))
                        .unwrap_or((None, None));
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
                started_ms: played.started.get(i).map(|t| t.as_millis() as u64),
                ended_ms: d.map(|d| d.ended.as_millis() as u64),
                succeeded: d.is_some_and(|d| d.outcome.succeeded),
                steps,
            }
        })
        .collect()
}

/// API calls by operation: made, ok, throttled, failed.
fn api_calls(timeline: &[TimelineEntry]) -> BTreeMap<String, OperationCount> {
    let mut api_calls: BTreeMap<String, OperationCount> = BTreeMap::new();
    for e in timeline {
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
    api_calls
}

/// The simulated second person: approves a waiting approval step `after` it was requested.
pub(super) async fn approve_after(
    cloud: Arc<SimCloud>,
    journal: Arc<dyn Store>,
    run_id: RunId,
    by: String,
    after: Duration,
) {
    let mut seen: BTreeMap<String, Duration> = BTreeMap::new();
    let mut approved: BTreeSet<String> = BTreeSet::new();
    let time = cloud.virtual_time();
    loop {
        time.sleep(Duration::from_secs(1)).await;
        let Ok(steps) = journal.steps(&run_id).await else {
            continue;
        };
        for s in &steps {
            if s.status != StepStatus::WaitingApproval || approved.contains(&s.step_id) {
                continue;
            }
            let since = *seen
                .entry(s.step_id.clone())
                .or_insert_with(|| cloud.elapsed());
            if cloud.elapsed() >= since + after
                && journal.approve(&run_id, &s.step_id, &by).await.is_ok()
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
async fn traffic_invariant(
    steps: &[BoundStep],
    env: &Environment,
    journal: &Arc<dyn Store>,
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
    match journal.shed_tiers(&env.name).await {
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

pub(super) fn epoch_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The topology's faults plus `faults`, each checked against the topology.
pub(super) fn all_faults(topology: &Topology, faults: &[Fault]) -> Result<Vec<Fault>, SimError> {
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
/// `health.assert` steps and a drill's stop conditions read the simulated probes of the
/// environment's `[health]`, answered by the world as the live detector's probes are.
fn sim_health(
    ports: &mut crate::ports::Ports,
    cloud: &Arc<SimCloud>,
    env: &Environment,
    seed: u64,
) {
    if let Some(cfg) = &env.health {
        ports.health = Some(Arc::new(crate::cloud::sim::probes::SimHealth::new(
            cloud.clone(),
            crate::health::Scope::of(env),
            cfg.clone(),
            seed,
        )));
    }
}

pub fn with_sim_ports<T, F, Fut>(
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
    env: &Environment,
    approvals: Option<(Arc<dyn Store>, RunId)>,
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
            let mut ports = cloud.ports(
                RetryPolicy {
                    max_attempts: env.settings.max_attempts,
                    ..RetryPolicy::default()
                },
                seed,
            );
            sim_health(&mut ports, &cloud, env, seed);
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

/// `failover watch` in a simulated world: the environment's `[health]` probes answered by the
/// simulator (`cloud::sim::probes`), the very detector (`health::Detector`: rounds on the
/// interval grid, quorum, hysteresis, the observer rule) and trigger policy
/// (`health::TriggerState`) of the live watcher, on virtual time. A run the policy starts goes
/// through the one run lifecycle, in the same world; once the evacuated zone has been healthy
/// for long enough, the failback starts by the same `[health.failback]` policy (its scheduling,
/// cancellation and hand-over are `TriggerState`'s, as live).
///
/// [`story`] turns the report into the figures of `failover demo`: time to detect, to mitigate
/// (the traffic signal good again) and to recover (nothing left in the failed zone), with the
/// AWS critical path they compare with, computed from `cloud::model`.
pub mod sim_watch {
    use super::{play_run, BoundRun, Played, SimError, SimReport, Stage};
    use crate::cloud::model;
    use crate::cloud::sim::probes::SimHealth;
    use crate::cloud::sim::FaultKind;
    use crate::health::trigger::Triggers;
    use crate::health::{
        Became, HealthConfig, Policy, Scope, TriggerDecision, TriggerState, ZoneEvent,
    };
    use crate::runbook::bind::{self, RunContext};
    use crate::runbook::Runbook;
    use crate::status::RunMode;
    use crate::types::{RunId, Zone};
    use serde::Serialize;
    use std::time::{Duration, SystemTime};

    /// What the simulated watcher does.
    pub struct WatchPlan<'a> {
        /// The runbook `[health.trigger]` starts (its `runbook` names this file).
        pub evacuation: &'a Runbook,
        /// Parameters given to it besides those of the trigger (the zone, the reason).
        pub params: Vec<(String, String)>,
        /// The failback started once the evacuated zone has been healthy again for long enough.
        pub failback: Option<Failback<'a>>,
        /// How long to watch, from the start (the watch ends earlier once a failback has run).
        pub watch_for: Duration,
    }

    /// The failback: its runbook, the parameter that takes the zone, and how long the zone must
    /// have been declared healthy before it starts.
    pub struct Failback<'a> {
        pub runbook: &'a Runbook,
        pub zone_param: String,
        pub after: Duration,
    }

    /// What a simulated watch produced besides the report's usual parts.
    #[derive(Default)]
    pub(super) struct Watched<'a> {
        pub(super) runs: Vec<BoundRun<'a>>,
        pub(super) detections: Vec<Detection>,
    }

    /// A zone event of the watcher, and what was decided on it.
    #[derive(Clone, Debug, Serialize)]
    pub struct Detection {
        pub at_ms: u64,
        pub target: String,
        /// `unhealthy` or `healthy`.
        pub became: String,
        pub summary: String,
        /// The failing probes of the deciding round: `name: detail`.
        pub failing: Vec<String>,
        pub observer_suspect: bool,
        /// The trigger policy's decision (`describe`).
        pub decision: String,
        /// The run started for it, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub started: Option<RunId>,
    }

    fn since_start(stage: &Stage<'_>, t: SystemTime) -> Duration {
        t.duration_since(stage.topology.start).unwrap_or_default()
    }

    fn ms(d: Duration) -> u64 {
        d.as_millis() as u64
    }

    /// Bind `rb` with `params` as the next run of the simulation.
    fn bind_next<'a>(
        stage: &Stage<'_>,
        rb: &'a Runbook,
        params: &[(String, String)],
        seed: u64,
        n: usize,
    ) -> Result<BoundRun<'a>, SimError> {
        let run = RunContext {
            run_id: RunId::new(if n == 1 {
                format!("sim-{seed}")
            } else {
                format!("sim-{seed}-{n}")
            }),
            initiator: format!("watch:{}", stage.env.name),
            mode: RunMode::Simulate,
        };
        let p = bind::bind_params(rb, stage.env, params).map_err(SimError::Invalid)?;
        let steps = bind::bind(rb, stage.env, &p, &run).map_err(SimError::Invalid)?;
        Ok(BoundRun {
            runbook: rb,
            run,
            params: p,
            steps,
            not_before: None,
        })
    }

    fn record(ev: &ZoneEvent, at: Duration, decision: String) -> Detection {
        Detection {
            at_ms: ms(at),
            target: ev.target.to_string(),
            became: match ev.became {
                Became::Unhealthy => "unhealthy".into(),
                Became::Healthy => "healthy".into(),
            },
            summary: ev.why.summary.clone(),
            failing: ev
                .why
                .failing
                .iter()
                .map(|f| format!("{}: {}", f.probe, f.detail))
                .collect(),
            observer_suspect: ev.observer_suspect,
            decision,
            started: None,
        }
    }

    /// Watch the zones of the stage's environment and act as `[health.trigger]` says, until
    /// `plan.watch_for` (or the failback has run).
    pub(super) async fn watch<'a>(
        stage: &Stage<'_>,
        plan: &WatchPlan<'a>,
        seed: u64,
        played: &mut Played,
        watched: &mut Watched<'a>,
    ) -> Result<(), SimError> {
        let env = stage.env;
        let no = |what: &str| {
            SimError::Run(format!("environment `{}` has no {what}: there is nothing to watch with (add it to the topology, as in an environment file; docs/health.md)", env.name))
        };
        let cfg = env.health.clone().ok_or_else(|| no("[health]"))?;
        let tr = cfg.trigger.clone().ok_or_else(|| no("[health.trigger]"))?;
        let cloud = stage.cloud;
        let det = SimHealth::new(cloud.clone(), Scope::of(env), cfg.clone(), seed).detector();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let task = tokio::spawn(det.run(tx));
        let time = cloud.virtual_time();
        let mut state = TriggerState::default();
        // The failback is the watcher's own `[health.failback]` policy, as live: the same
        // scheduling, cancellation and hand-over (`TriggerState::due`).
        let fb_cfg = plan.failback.as_ref().map(|fb| {
            let live = cfg.failback.as_ref();
            crate::health::config::FailbackConfig {
                at: Default::default(),
                runbook: live
                    .map(|f| f.runbook.clone())
                    .unwrap_or_else(|| fb.runbook.name.clone()),
                zone_param: fb.zone_param.clone(),
                params: live.map(|f| f.params.clone()).unwrap_or_default(),
                policy: live.map(|f| f.policy).unwrap_or(Policy::Auto),
                after: fb.after,
            }
        });
        let triggers = Triggers {
            zone: Some(&tr),
            region: None,
            failback: fb_cfg.as_ref(),
        };
        loop {
            let now = cloud.elapsed();
            if now >= plan.watch_for {
                break;
            }
            let next_failback = state
                .failback_at
                .values()
                .min()
                .map(|t| since_start(stage, *t));
            let wake = next_failback.unwrap_or(plan.watch_for).min(plan.watch_for);
            let ev = tokio::select! {
                biased;
                e = rx.recv() => e,
                _ = time.sleep(wake.saturating_sub(now)) => None,
            };
            let Some(ev) = ev else {
                let now = stage.topology.start + cloud.elapsed();
                let (Some(due), Some(fb)) = (
                    state.due(fb_cfg.as_ref(), now).into_iter().next(),
                    &plan.failback,
                ) else {
                    continue;
                };
                let policy = fb_cfg.as_ref().map(|f| f.policy).unwrap_or(Policy::Auto);
                cloud.note(format!("watch (policy {policy}): {}", due.text));
                let params = match &due.decision {
                    TriggerDecision::Start { params, .. }
                    | TriggerDecision::StartPausedForApproval { params, .. } => params.clone(),
                    _ => continue,
                };
                let p: Vec<(String, String)> = params.into_iter().collect();
                let r = bind_next(stage, fb.runbook, &p, seed, watched.runs.len() + 1)?;
                watched.runs.push(r);
                let n = watched.runs.len();
                play_run(stage, &watched.runs[n - 1], Some((n, 0)), played).await?;
                break;
            };
            let at = since_start(stage, ev.at);
            let mut text = format!(
                "health: {} is {} ({}){}",
                ev.target,
                match ev.became {
                    Became::Unhealthy => "UNHEALTHY",
                    Became::Healthy => "healthy again",
                },
                ev.why.summary,
                if ev.observer_suspect {
                    " [observer suspect]"
                } else {
                    ""
                }
            );
            for f in ev.why.failing.iter().take(4) {
                text.push_str(&format!("\n    ✗ {}: {}", f.probe, f.detail));
            }
            cloud.note(text);
            let decision = state.on_event(triggers, &ev, ev.at);
            if ev.became == Became::Healthy {
                let said = format!("watch: {}", decision.describe(&ev));
                cloud.note(said.clone());
                watched.detections.push(record(&ev, at, said));
                continue;
            }
            let said = format!("watch (policy {:?}): {}", tr.policy, decision.describe(&ev))
                .replace("policy Auto", "policy auto")
                .replace("policy Approval", "policy approval")
                .replace("policy Notify", "policy notify");
            cloud.note(said.clone());
            let mut d = record(&ev, at, said);
            let (params, paused) = match &decision {
                TriggerDecision::Start { params, .. } => (params.clone(), false),
                TriggerDecision::StartPausedForApproval { params, .. } => (params.clone(), true),
                _ => {
                    watched.detections.push(d);
                    continue;
                }
            };
            let mut p: Vec<(String, String)> = params.into_iter().collect();
            p.extend(plan.params.iter().cloned());
            if paused
                && plan
                    .evacuation
                    .params
                    .iter()
                    .any(|p| p.name == "require_approval")
            {
                p.push(("require_approval".into(), "true".into()));
            }
            let r = bind_next(stage, plan.evacuation, &p, seed, watched.runs.len() + 1)?;
            d.started = Some(r.run.run_id.clone());
            watched.detections.push(d);
            watched.runs.push(r);
            let n = watched.runs.len();
            if !play_run(stage, &watched.runs[n - 1], Some((n, 0)), played).await? {
                break;
            }
        }
        task.abort();
        Ok(())
    }

    /// Watch the simulated world of `topology` (its `[health]`, bound as `env`) with the topology's
    /// faults plus `faults`: detection, the trigger's runs and the failback, in one world.
    pub fn simulate_watch(
        plan: &WatchPlan<'_>,
        env: &crate::env::Environment,
        topology: &crate::cloud::sim::Topology,
        faults: &[crate::cloud::sim::Fault],
        seed: u64,
    ) -> Result<(SimReport, Option<crate::cloud::sim::History>), SimError> {
        let all = super::all_faults(topology, faults)?;
        let go = move || -> Result<(SimReport, Option<crate::cloud::sim::History>), SimError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(SimError::Runtime)?;
            rt.block_on(super::run_simulation(
                env,
                topology,
                &all,
                seed,
                super::Script::Watch(plan),
            ))
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(go).join())
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        } else {
            go()
        }
    }

    /// The figures of the story: when the zone was lost, detected, the traffic signal good again,
    /// everything out of the zone; the zone back and failed back; and the AWS critical path.
    #[derive(Clone, Debug, Serialize)]
    pub struct Story {
        pub zone: Zone,
        pub lost_ms: u64,
        pub detected_ms: Option<u64>,
        pub evacuation_started_ms: Option<u64>,
        /// The traffic signal good again (the model's error rate under the threshold) after the
        /// loss; `None`: it never turned bad, or never good again.
        pub mitigated_ms: Option<u64>,
        /// Every writer, primary and record out of the zone.
        pub recovered_ms: Option<u64>,
        pub zone_back_ms: Option<u64>,
        pub failback_started_ms: Option<u64>,
        pub failback_ended_ms: Option<u64>,
        pub critical_path: CriticalPath,
    }

    impl Story {
        pub fn time_to_detect(&self) -> Option<Duration> {
            self.detected_ms
                .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
        }
        pub fn time_to_mitigate(&self) -> Option<Duration> {
            self.mitigated_ms
                .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
        }
        pub fn time_to_recover(&self) -> Option<Duration> {
            self.recovered_ms
                .map(|d| Duration::from_millis(d.saturating_sub(self.lost_ms)))
        }
    }

    /// The least time AWS and the configured detection allow, each part from `cloud::model`
    /// (failover and propagation) or the environment's `[health]` (detection).
    #[derive(Clone, Debug, Serialize)]
    pub struct CriticalPath {
        /// The slowest detection the probes allow: `unhealthy_after` rounds, the last one taking
        /// its full timeouts (a dead zone's probes time out).
        pub detect_ms: u64,
        /// Detect, then the slowest Aurora failover, then Route 53's slowest propagation: the
        /// writers and the records of the healthy zones serving everywhere.
        pub mitigate_ms: u64,
        /// Detect, then the slowest failover of what the zone holds (a Multi-AZ instance's reboot
        /// when it holds one).
        pub recover_ms: u64,
        /// How each figure is made, one line each.
        pub parts: Vec<String>,
    }

    /// The AWS critical path for losing a zone holding `multi_az` Multi-AZ primaries, with the
    /// detection of `cfg`.
    pub fn critical_path(cfg: &HealthConfig, multi_az: bool) -> CriticalPath {
        let detect = cfg.interval * cfg.unhealthy_after.saturating_sub(1) + cfg.worst_round();
        let aurora = Duration::from_secs(model::AURORA_FAILOVER_S.1);
        let insync = Duration::from_secs(model::ROUTE53_INSYNC_S.1);
        let slowest = if multi_az {
            Duration::from_secs(model::MULTI_AZ_FAILOVER_S.1)
        } else {
            aurora
        };
        let f = |d: Duration| crate::cloud::sim::world::fmt_dur(d);
        CriticalPath {
            detect_ms: ms(detect),
            mitigate_ms: ms(detect + aurora + insync),
            recover_ms: ms(detect + slowest),
            parts: vec![
                format!(
                    "detect {}: {} rounds every {}, the last taking its timeouts ({})",
                    f(detect),
                    cfg.unhealthy_after,
                    f(cfg.interval),
                    f(cfg.worst_round())
                ),
                format!(
                    "mitigate {}: detect + Aurora failover {} + Route 53 INSYNC {}",
                    f(detect + aurora + insync),
                    f(aurora),
                    f(insync)
                ),
                format!(
                    "recover {}: detect + the slowest failover out of the zone {}{}",
                    f(detect + slowest),
                    f(slowest),
                    if multi_az {
                        " (Multi-AZ instance reboot)"
                    } else {
                        " (Aurora)"
                    }
                ),
            ],
        }
    }

    /// The story of `report` for the loss of `zone`: the fault that took it down, the watcher's
    /// detection, the traffic samples, the placements (`recovered`: when nothing was left in it).
    pub fn story(
        report: &SimReport,
        zone: &Zone,
        faults: &[crate::cloud::sim::Fault],
        cfg: &HealthConfig,
        recovered: Option<Duration>,
        multi_az: bool,
    ) -> Story {
        let down = faults
            .iter()
            .find(|f| matches!(&f.kind, FaultKind::AzDown { zone: z } if z == zone));
        let lost = down.map(|f| f.at).unwrap_or_default();
        let back = down.and_then(|f| f.end());
        let detected = report
            .detections
            .iter()
            .find(|d| d.became == "unhealthy" && d.target == zone.as_str());
        let mut mitigated = None;
        if let Some(t) = &report.traffic {
            let mut bad = false;
            for s in &t.samples {
                if s.at_ms < ms(lost) || back.is_some_and(|b| s.at_ms >= ms(b)) {
                    continue;
                }
                if !s.good {
                    bad = true;
                    mitigated = None;
                } else if bad && mitigated.is_none() {
                    mitigated = Some(s.at_ms);
                }
            }
        }
        let failback = report.runs.get(1);
        Story {
            zone: zone.clone(),
            lost_ms: ms(lost),
            detected_ms: detected.map(|d| d.at_ms),
            evacuation_started_ms: report.runs.first().and_then(|r| r.started_ms),
            mitigated_ms: mitigated,
            recovered_ms: recovered.map(ms),
            zone_back_ms: back.map(ms),
            failback_started_ms: failback.and_then(|r| r.started_ms),
            failback_ended_ms: failback.and_then(|r| r.ended_ms),
            critical_path: critical_path(cfg, multi_az),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_evacuates_the_zone_and_holds_every_invariant() {
        let r = demo(DEMO_SEED).unwrap();
        assert!(
            r.succeeded(),
            "{}",
            crate::report::sim::render_text(&r, false)
        );
        // Evacuated, then failed back: the writers whose home is the zone are back in it.
        assert!(r
            .final_state
            .clusters
            .iter()
            .any(|c| c.zone.as_str() == DEMO_ZONE));
        assert!(r.story.as_ref().is_some_and(|s| s.recovered_ms.is_some()));
        let text = crate::report::sim::render_text(&r, false);
        assert!(text.contains("Verdict: SUCCEEDED"), "{text}");
        assert!(
            text.contains("⚡ zone us-west-2a loses its network"),
            "{text}"
        );
    }
}
