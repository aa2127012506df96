//! Several actors in one simulated world at once: runs of runbooks started at virtual times
//! (possibly on the same resources: the same evacuation twice, evacuations of two zones), kills
//! of runs (`kill -9`, see [`super::sim_process`]) and resumes of killed runs, all against one
//! `SimCloud`, one in-memory journal and one virtual clock. Every run goes through the one run
//! lifecycle (`lifecycle::start_run`; a resume with `resume: Some(..)`, the steps it finished
//! read from the journal, its leases taken over), each process with ports of its own whose calls
//! the timeline records under the run's id.
//!
//! The result is the whole history ([`ActorsReport`]): what became of each process of each run,
//! the timeline, every journal event, the lease renewals, the final state and the simulator's
//! invariants. Same inputs, same seed: same history.

use super::lifecycle::{start_run, Resume, RunRequest};
use super::sim_process::{Process, Renewal, RenewalLog, Switch};
use super::simulate::{self, SimError, SimRun};
use super::AppError;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::sim::invariants::{self, FailedZones, InvariantResult};
use crate::cloud::sim::world::FinalState;
use crate::cloud::sim::{Fault, SimCloud, TimelineEntry, Topology};
use crate::env::Environment;
use crate::journal::Journal;
use crate::progress::Reporter;
use crate::runbook::bind::BoundAction;
use crate::status::{RunStatus, StepStatus};
use crate::store::{Event, Store, StoreError};
use crate::types::{RunId, StepId, Zone};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::task::{AbortHandle, JoinHandle};

/// Something that happens in the simulated world.
#[derive(Clone, Debug)]
pub enum Actor<'a> {
    /// Start a run of a runbook at its `not_before` (`None`: at once). Runs are numbered in the
    /// order they are listed, from 0; their ids are `sim-SEED`, `sim-SEED-2`, ...
    Run(SimRun<'a>),
    /// At `at`, kill the process running run number `run` (`kill -9`); nothing happens if none
    /// runs then.
    Kill { run: usize, at: Duration },
    /// From `at` on, kill the process running run number `run` the moment it sends its next
    /// mutating call: the call goes out and may take effect, its answer is lost (an intent
    /// without an outcome). Nothing happens if none runs then, or it ends first.
    KillMidCall { run: usize, at: Duration },
    /// At `at`, resume run number `run` as `failover resume` would once its process is gone:
    /// unless it has ended or never reached the journal, it continues with the steps it did not
    /// finish, taking its leases over. While its process still runs, or another run holds a
    /// lease it needs, the resume is tried again every [`RESUME_RETRY`].
    Resume { run: usize, at: Duration },
}

/// How often a refused resume is tried again (an operator waiting for the run's process to be
/// gone, or for the other run).
pub const RESUME_RETRY: Duration = Duration::from_secs(10);

/// What became of one process of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// It went through the lifecycle to the end: the run's status then.
    Ended {
        status: RunStatus,
        error: Option<String>,
    },
    /// Refused at the start: another live run holds a lease (the message names it).
    Refused { why: String },
    /// Nothing was started: its plan was refused access, or there was nothing to resume.
    NotStarted { why: String },
    /// Killed at `at_ms` (virtual) before it ended.
    Killed { at_ms: u64 },
    /// Still going when the simulation stopped at its limit.
    Unfinished,
}

/// One process of a run: the start, or a resume.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incarnation {
    /// `start` or `resume`.
    pub kind: &'static str,
    /// Virtual milliseconds since the start of the simulation.
    pub at_ms: u64,
    pub outcome: Outcome,
}

/// One run and its processes.
#[derive(Clone, Debug, Serialize)]
pub struct ActorRun {
    pub run_id: RunId,
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    /// Zones its steps evacuate.
    pub evacuates: BTreeSet<Zone>,
    /// Zones its failover steps move the databases out of, and its DNS steps the records.
    pub evacuates_databases: BTreeSet<Zone>,
    pub evacuates_records: BTreeSet<Zone>,
    pub processes: Vec<Incarnation>,
    /// Its status in the journal once every actor is done; `None`: it never reached it.
    pub status: Option<RunStatus>,
}

/// The history of a simulation with several actors.
#[derive(Clone, Debug, Serialize)]
pub struct ActorsReport {
    pub seed: u64,
    /// Every fault applied, in the one-line syntax.
    pub faults: Vec<String>,
    pub region: String,
    pub lease_ttl_ms: i64,
    /// Epoch milliseconds of virtual time 0 (journal events are stamped in epoch ms).
    pub start_epoch_ms: i64,
    pub runs: Vec<ActorRun>,
    /// Every actor was done before the simulation's limit.
    pub finished: bool,
    pub simulated_ms: u64,
    /// Every API call names the run that made it (`ApiCall::caller`).
    pub timeline: Vec<TimelineEntry>,
    /// The journal events of every run, in the order of the chain.
    pub events: Vec<Event>,
    /// Every lease renewal that succeeded, in order (the journal keeps no event for them).
    pub renewals: Vec<Renewal>,
    /// The zones the end state is checked against: those the runs that succeeded evacuated
    /// (databases and records apart: a run may move only one of them).
    pub failed_zones_databases: FailedZones,
    pub failed_zones_records: FailedZones,
    /// The simulator's invariants on the end state: `no-writer-in-failed-zone` against
    /// `failed_zones_databases`, `records-point-at-healthy-zones` against
    /// `failed_zones_records`, `nothing-done-twice` against the zones of every run that started.
    pub invariants: Vec<InvariantResult>,
    pub final_state: FinalState,
    /// `failover verify` on the journal: every event's hash links it to the one before.
    pub chain_intact: bool,
}

impl ActorsReport {
    /// The run with this index among the `Run` actors.
    pub fn run(&self, i: usize) -> Option<&ActorRun> {
        self.runs.get(i)
    }

    /// Virtual milliseconds of a journal event's time.
    pub fn virtual_ms(&self, epoch_ms: i64) -> i64 {
        epoch_ms - self.start_epoch_ms
    }

    /// Everything that happened, as JSON, for comparing two simulations.
    pub fn history_json(&self) -> String {
        serde_json::to_string(&(&self.runs, &self.timeline, &self.events, &self.renewals))
            .unwrap_or_default()
    }
}

/// Play `actors` in the simulated world of `topology` (runbooks bound to `env`), with the
/// topology's faults plus `faults`, seeded with `seed`. Synchronous: it runs on its own
/// single-threaded runtime (on a thread of its own when called from async code).
pub fn simulate_actors(
    actors: &[Actor<'_>],
    env: &Environment,
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
) -> Result<ActorsReport, SimError> {
    let all_faults = simulate::all_faults(topology, faults)?;
    let runs: Vec<SimRun<'_>> = actors
        .iter()
        .filter_map(|a| match a {
            Actor::Run(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let bound = simulate::bind_runs(&runs, env, seed)?;
    let slots: Vec<Arc<Slot>> = bound
        .iter()
        .enumerate()
        .map(|(index, b)| {
            Arc::new(Slot {
                index,
                req: simulate::request(env, b),
                runbook: b.runbook.name.clone(),
                params: b.params.clone(),
                evacuates: simulate::evacuated_zones(&b.steps),
                evacuates_databases: zones_of(&b.steps, true),
                evacuates_records: zones_of(&b.steps, false),
                wants_approval: b
                    .steps
                    .iter()
                    .any(|s| s.enabled && matches!(s.action, BoundAction::Approval { .. })),
                state: Mutex::default(),
            })
        })
        .collect();
    let script = script(actors, &slots)?;
    let go = move || -> Result<ActorsReport, SimError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(SimError::Runtime)?;
        rt.block_on(play(env, topology, &all_faults, seed, slots, script))
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(go).join()).unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        go()
    }
}

/// One run of the simulation: its request, its process now, what became of each process.
struct Slot {
    index: usize,
    req: RunRequest,
    runbook: String,
    params: BTreeMap<String, String>,
    evacuates: BTreeSet<Zone>,
    evacuates_databases: BTreeSet<Zone>,
    evacuates_records: BTreeSet<Zone>,
    wants_approval: bool,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The process running the run now: its kill switch, its task, its index in `processes`.
    current: Option<(Switch, AbortHandle, usize)>,
    processes: Vec<Incarnation>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn id(&self) -> &RunId {
        &self.req.header.id
    }
}

/// An actor as a task will play it.
enum Act {
    Run(Arc<Slot>, Duration),
    Kill(Arc<Slot>, Duration),
    KillMidCall(Arc<Slot>, Duration),
    Resume(Arc<Slot>, Duration),
}

fn script(actors: &[Actor<'_>], slots: &[Arc<Slot>]) -> Result<Vec<Act>, SimError> {
    let slot = |i: usize| {
        slots.get(i).cloned().ok_or_else(|| {
            SimError::Run(format!(
                "an actor names run {i}, but there are {} run(s)",
                slots.len()
            ))
        })
    };
    let mut runs = 0;
    let mut out = vec![];
    for a in actors {
        out.push(match a {
            Actor::Run(r) => {
                runs += 1;
                Act::Run(slot(runs - 1)?, r.not_before.unwrap_or_default())
            }
            Actor::Kill { run, at } => Act::Kill(slot(*run)?, *at),
            Actor::KillMidCall { run, at } => Act::KillMidCall(slot(*run)?, *at),
            Actor::Resume { run, at } => Act::Resume(slot(*run)?, *at),
        });
    }
    Ok(out)
}

/// What every actor of one simulation shares.
struct Shared {
    cloud: Arc<SimCloud>,
    journal: Arc<dyn Store>,
    reporter: Arc<dyn Reporter>,
    renewals: RenewalLog,
    policy: RetryPolicy,
    seed: u64,
    /// Who approves approval gates, and after how long (the topology's second person).
    approval: (String, Option<Duration>),
}

impl Shared {
    fn ms(&self) -> u64 {
        self.cloud.elapsed().as_millis() as u64
    }

    async fn sleep_until(&self, at: Duration) {
        let now = self.cloud.elapsed();
        if at > now {
            self.cloud.virtual_time().sleep(at - now).await;
        }
    }
}

async fn play(
    env: &Environment,
    topology: &Topology,
    faults: &[Fault],
    seed: u64,
    slots: Vec<Arc<Slot>>,
    script: Vec<Act>,
) -> Result<ActorsReport, SimError> {
    let cloud = SimCloud::new(topology, faults, seed);
    let mut driver = tokio::spawn(cloud.driver());
    let clock = cloud.clock();
    let journal: Arc<dyn Store> = Arc::new(Journal::open(Path::new(":memory:"))?.with_clock(
        Arc::new(move || simulate::epoch_ms(crate::cloud::Clock::now(clock.as_ref()))),
    ));
    let sh = Arc::new(Shared {
        reporter: cloud.reporter(None),
        cloud: cloud.clone(),
        journal,
        renewals: RenewalLog::default(),
        policy: RetryPolicy {
            max_attempts: env.settings.max_attempts,
            ..RetryPolicy::default()
        },
        seed,
        approval: (topology.approval.by.clone(), topology.approval.after),
    });
    let tasks: Vec<JoinHandle<()>> = script
        .into_iter()
        .map(|a| match a {
            Act::Run(slot, at) => tokio::spawn(run_actor(sh.clone(), slot, at)),
            Act::Kill(slot, at) => tokio::spawn(kill_actor(sh.clone(), slot, at)),
            Act::KillMidCall(slot, at) => tokio::spawn(kill_mid_call_actor(sh.clone(), slot, at)),
            Act::Resume(slot, at) => tokio::spawn(resume_actor(sh.clone(), slot, at)),
        })
        .collect();
    let aborts: Vec<AbortHandle> = tasks.iter().map(JoinHandle::abort_handle).collect();
    let all = async {
        for t in tasks {
            if let Err(e) = t.await {
                if e.is_panic() {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    };
    let limit = cloud.virtual_time().sleep(topology.timing.max_duration);
    let finished = tokio::select! {
        biased;
        _ = all => true,
        _ = limit => false,
        _ = &mut driver => false,
    };
    driver.abort();
    for a in aborts {
        a.abort();
    }
    for s in &slots {
        if let Some((_, abort, _)) = s.lock().current.take() {
            abort.abort();
        }
    }
    cloud.settle();
    Ok(report(&sh, env, faults, &slots, finished).await)
}

/// Start a process of the run (a resume with `resume`), as a task of its own.
fn launch(sh: &Arc<Shared>, slot: &Arc<Slot>, resume: Option<Resume>) -> (usize, JoinHandle<()>) {
    let mut st = slot.lock();
    let k = st.processes.len();
    let p = Process::new(
        sh.cloud.raw_ports_as(slot.id().as_str()),
        sh.cloud.clock(),
        sh.journal.clone(),
        sh.reporter.clone(),
        sh.renewals.clone(),
        sh.policy.clone(),
        sh.seed
            .wrapping_add(7919 * slot.index as u64)
            .wrapping_add(k as u64),
    );
    st.processes.push(Incarnation {
        kind: if resume.is_some() { "resume" } else { "start" },
        at_ms: sh.ms(),
        outcome: Outcome::Unfinished,
    });
    let req = RunRequest {
        resume,
        ..slot.req.clone()
    };
    let switch = p.switch.clone();
    let task_slot = slot.clone();
    let task = tokio::spawn(async move {
        let r = start_run(&p.ports, &p.store, p.reporter.clone(), req).await;
        let outcome = match r {
            Ok(res) => Outcome::Ended {
                status: res.status,
                error: res.error,
            },
            Err(AppError::Refused(why) | AppError::Busy { message: why, .. }) => {
                Outcome::Refused { why }
            }
            Err(e) => Outcome::NotStarted { why: e.to_string() },
        };
        let mut st = task_slot.lock();
        st.current = None;
        st.processes[k].outcome = outcome;
    });
    st.current = Some((switch, task.abort_handle(), k));
    (k, task)
}

/// The outcome of process `k` once its task is over (killed or not).
async fn outcome_of(slot: &Slot, (k, task): (usize, JoinHandle<()>)) -> Outcome {
    if let Err(e) = task.await {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    slot.lock().processes[k].outcome.clone()
}

async fn run_actor(sh: Arc<Shared>, slot: Arc<Slot>, at: Duration) {
    sh.sleep_until(at).await;
    let approver = match (slot.wants_approval, sh.approval.1) {
        (true, Some(after)) => Some(tokio::spawn(simulate::approve_after(
            sh.cloud.clone(),
            sh.journal.clone(),
            slot.id().clone(),
            sh.approval.0.clone(),
            after,
        ))),
        _ => None,
    };
    let p = launch(&sh, &slot, None);
    outcome_of(&slot, p).await;
    if let Some(a) = approver {
        a.abort();
    }
}

async fn kill_actor(sh: Arc<Shared>, slot: Arc<Slot>, at: Duration) {
    sh.sleep_until(at).await;
    let current = slot
        .lock()
        .current
        .as_ref()
        .map(|(s, _, k)| (s.clone(), *k));
    match current {
        Some((switch, k)) => {
            switch.kill();
            killed(&sh, &slot, k, "its process stops at once");
        }
        None => sh.cloud.note(format!(
            "kill of run {}: no process of it is running",
            slot.id()
        )),
    }
}

async fn kill_mid_call_actor(sh: Arc<Shared>, slot: Arc<Slot>, at: Duration) {
    sh.sleep_until(at).await;
    let Some((switch, k)) = slot
        .lock()
        .current
        .as_ref()
        .map(|(s, _, k)| (s.clone(), *k))
    else {
        sh.cloud.note(format!(
            "kill of run {}: no process of it is running",
            slot.id()
        ));
        return;
    };
    switch.kill_at_next_call();
    loop {
        tokio::select! {
            biased;
            _ = switch.killed() => break,
            _ = sh.cloud.virtual_time().sleep(Duration::from_secs(1)) => {
                if !matches!(slot.lock().current, Some((_, _, c)) if c == k) {
                    sh.cloud.note(format!("kill of run {}: its process ended before its next mutating call", slot.id()));
                    return;
                }
            }
        }
    }
    killed(
        &sh,
        &slot,
        k,
        "the moment it sent a mutating call, which goes on",
    );
}

/// Process `k` of the run was killed (its switch is off): its task ends, the journal and the
/// timeline say nothing of it, the simulator's note says when.
fn killed(sh: &Shared, slot: &Slot, k: usize, how: &str) {
    {
        let mut st = slot.lock();
        if let Some((_, abort, _)) = st.current.take() {
            abort.abort();
        }
        st.processes[k].outcome = Outcome::Killed { at_ms: sh.ms() };
    }
    sh.cloud.note(format!(
        "run {} is killed (kill -9) {how}: its leases stay until they expire",
        slot.id()
    ));
}

async fn resume_actor(sh: Arc<Shared>, slot: Arc<Slot>, at: Duration) {
    sh.sleep_until(at).await;
    loop {
        if slot.lock().current.is_some() {
            // Its process still runs: `failover resume` refuses; try again later.
            sh.cloud.virtual_time().sleep(RESUME_RETRY).await;
            continue;
        }
        let finished = match resumable(&sh, &slot).await {
            Ok(f) => f,
            Err(why) => {
                sh.cloud.note(format!("resume of run {}: {why}", slot.id()));
                slot.lock().processes.push(Incarnation {
                    kind: "resume",
                    at_ms: sh.ms(),
                    outcome: Outcome::NotStarted { why },
                });
                return;
            }
        };
        sh.cloud
            .note(format!("run {} is resumed (failover resume)", slot.id()));
        let resume = Resume {
            by: "sim-resumer".into(),
            finished,
        };
        let p = launch(&sh, &slot, Some(resume));
        match outcome_of(&slot, p).await {
            Outcome::Refused { .. } => sh.cloud.virtual_time().sleep(RESUME_RETRY).await,
            _ => return,
        }
    }
}

/// The steps a resume skips (succeeded or skipped, as `failover resume` reads them), or why
/// there is nothing to resume.
async fn resumable(
    sh: &Shared,
    slot: &Slot,
) -> Result<BTreeMap<StepId, (StepStatus, Option<String>)>, String> {
    let r = match sh.journal.run_exact(slot.id()).await {
        Ok(r) => r,
        Err(StoreError::UnknownRun(_)) => {
            return Err("it never reached the journal: there is nothing to resume".into())
        }
        Err(e) => return Err(format!("the journal failed: {e}")),
    };
    if r.status.is_finished() && !r.status.is_resumable() {
        return Err(format!(
            "it has ended ({}): there is nothing to resume",
            r.status
        ));
    }
    let steps = sh
        .journal
        .steps(slot.id())
        .await
        .map_err(|e| format!("the journal failed: {e}"))?;
    Ok(steps
        .into_iter()
        .filter(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
        .map(|s| (StepId::new(s.step_id), (s.status, s.message)))
        .collect())
}

/// Zones the enabled failover steps (`databases`) or DNS steps evacuate.
fn zones_of(steps: &[crate::runbook::bind::BoundStep], databases: bool) -> BTreeSet<Zone> {
    let mut out = BTreeSet::new();
    for s in steps.iter().filter(|s| s.enabled) {
        match (&s.action, databases) {
            (BoundAction::FailoverCluster { evacuate, .. }, true)
            | (BoundAction::FailoverInstance { evacuate, .. }, true)
            | (BoundAction::DnsUpdate { evacuate, .. }, false) => {
                out.extend(evacuate.iter().cloned())
            }
            _ => {}
        }
    }
    out
}

/// The history, once every actor is done (or the limit reached).
async fn report(
    sh: &Shared,
    env: &Environment,
    faults: &[Fault],
    slots: &[Arc<Slot>],
    finished: bool,
) -> ActorsReport {
    let mut runs = vec![];
    let mut events = vec![];
    for s in slots {
        events.extend(sh.journal.events(s.id()).await.unwrap_or_default());
        let processes = s.lock().processes.clone();
        runs.push(ActorRun {
            run_id: s.id().clone(),
            runbook: s.runbook.clone(),
            params: s.params.clone(),
            evacuates: s.evacuates.clone(),
            evacuates_databases: s.evacuates_databases.clone(),
            evacuates_records: s.evacuates_records.clone(),
            processes,
            status: sh.journal.run_exact(s.id()).await.ok().map(|r| r.status),
        });
    }
    events.sort_by_key(|e| e.seq);
    let cloud = &sh.cloud;
    let down = cloud.failed_zones_now();
    let failed = |pick: &dyn Fn(RunStatus) -> bool, of: &dyn Fn(&ActorRun) -> &BTreeSet<Zone>| {
        let evacuated: BTreeSet<Zone> = runs
            .iter()
            .filter(|r| r.status.is_some_and(pick))
            .flat_map(|r| of(r).iter().cloned())
            .collect();
        FailedZones {
            down: down.intersection(&evacuated).cloned().collect(),
            returned: BTreeSet::new(),
            evacuated,
        }
    };
    let databases = failed(&RunStatus::is_success, &|r| &r.evacuates_databases);
    let records = failed(&RunStatus::is_success, &|r| &r.evacuates_records);
    let started = failed(&|_| true, &|r| &r.evacuates);
    let final_state = cloud.final_state();
    let timeline = cloud.timeline();
    let mut invs = invariants::check(&final_state, &timeline, &databases);
    for (against, name) in [
        (&records, "records-point-at-healthy-zones"),
        (&started, "nothing-done-twice"),
    ] {
        let checked = invariants::check(&final_state, &timeline, against);
        for (slot, i) in invs.iter_mut().zip(checked) {
            if i.name == name {
                *slot = i;
            }
        }
    }
    let chain_intact = matches!(sh.journal.verify_chain().await, Ok(None));
    let renewals = sh
        .renewals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    ActorsReport {
        seed: sh.seed,
        faults: faults.iter().map(|f| f.to_string()).collect(),
        region: env.region.clone(),
        lease_ttl_ms: env.settings.lease_ttl.as_millis() as i64,
        start_epoch_ms: simulate::epoch_ms(
            crate::cloud::Clock::now(cloud.clock().as_ref()) - cloud.elapsed(),
        ),
        runs,
        finished,
        simulated_ms: cloud.elapsed().as_millis() as u64,
        timeline,
        events,
        renewals,
        failed_zones_databases: databases,
        failed_zones_records: records,
        invariants: invs,
        final_state,
        chain_intact,
    }
}
