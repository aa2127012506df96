//! The one run lifecycle, used by every use case that runs steps (run, rollback, simulate, and
//! the drills to come): plan (the run starts even when the plan cannot read the world), record
//! (redacted), execute, finish with a status derived from the outcome.

use super::record::{run_record, RunHeader};
use super::{App, AppError};
use crate::cloud::ErrorKind;
use crate::engine::{self, RunOutcome, RunSpec, Stop, StopKind};
use crate::lease::{self, LeaseTiming};
use crate::plan::Plan;
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::runbook::bind::BoundStep;
use crate::runbook::OnFailure;
use crate::status::{RunStatus, StepStatus};
use crate::store::{Head, LeaseRequest, Liveness, RunRecord, Store, StoreError};
use crate::types::{RunId, StepId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

/// A run to start (or, with `resume`, to continue).
#[derive(Clone)]
pub struct RunRequest {
    pub header: RunHeader,
    pub steps: Vec<BoundStep>,
    /// The environment's region (lease keys name resources as AWS does).
    pub region: String,
    pub poll_interval: Duration,
    pub max_concurrency: usize,
    /// How many calls of one step may be in flight at once.
    pub max_calls_in_flight: usize,
    /// How often an approval gate re-reads the journal.
    pub approval_poll: Duration,
    /// How long a step may decide on the plan's observation instead of observing again.
    pub plan_fresh_for: Duration,
    pub leases: LeaseTiming,
    /// The caller may ask the run to stop (Ctrl-C): between calls, it ends `interrupted`.
    pub stop: Stop,
    /// Continue this existing run instead of starting a new one.
    pub resume: Option<Resume>,
    /// Marks the run `crashed` if this process panics (a journal of its own, opened afresh).
    pub on_crash: Option<CrashMarker>,
    /// The runbook's text, kept with a new run so a resume can say what changed since.
    pub runbook_text: Option<String>,
    /// Where the journal's head is remembered when the run ends (`[audit]`).
    pub anchor_file: Option<std::path::PathBuf>,
    /// Told the run's final status and the journal's head (`[audit] notify`).
    pub notify: Option<crate::cloud::HttpRequest>,
}

impl RunRequest {
    /// A new run of `steps` with the environment's settings; no stop asked, no crash marker.
    pub fn new(header: RunHeader, steps: Vec<BoundStep>, env: &crate::env::Environment) -> Self {
        Self {
            header,
            steps,
            region: env.region.clone(),
            poll_interval: env.settings.poll_interval,
            max_concurrency: env.settings.max_concurrency,
            max_calls_in_flight: env.settings.max_calls_in_flight,
            approval_poll: Duration::from_millis(500),
            plan_fresh_for: env.settings.plan_fresh_for,
            leases: LeaseTiming::with_ttl(env.settings.lease_ttl),
            stop: Stop::default(),
            resume: None,
            on_crash: None,
            runbook_text: None,
            anchor_file: env.audit.anchor_file.as_ref().map(std::path::PathBuf::from),
            notify: env
                .audit
                .notify
                .as_ref()
                .and_then(|n| env.endpoints.get(n))
                .map(|ep| crate::cloud::HttpRequest {
                    method: ep.method.clone(),
                    url: ep.url.clone(),
                    headers: ep.headers.clone(),
                    body: None,
                    timeout: ep.timeout,
                }),
        }
    }
}

/// What a resumed run carries over.
#[derive(Clone, Debug)]
pub struct Resume {
    /// Who resumes it.
    pub by: String,
    /// Steps it finished before it stopped (not run again).
    pub finished: BTreeMap<StepId, (StepStatus, Option<String>)>,
}

/// Marks a run crashed from a panic hook: `(run, panic message)`.
pub type CrashMarker = Arc<dyn Fn(&RunId, &str) + Send + Sync>;

/// How a run ended.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub run_id: RunId,
    pub plan: Plan,
    pub outcome: RunOutcome,
    pub status: RunStatus,
    pub error: Option<String>,
}

impl RunResult {
    /// Steps that failed, in order.
    pub fn failed_steps(&self) -> Vec<String> {
        failed_steps(&self.outcome)
    }
}

fn failed_steps(outcome: &RunOutcome) -> Vec<String> {
    outcome
        .steps
        .iter()
        .filter(|(_, st, _)| *st == StepStatus::Failed)
        .map(|(id, _, _)| id.to_string())
        .collect()
}

/// The status a run ends with, and why, from its outcome. Pure.
pub fn final_status(outcome: &RunOutcome) -> (RunStatus, Option<String>) {
    let failed = failed_steps(outcome);
    match (outcome.succeeded, failed.is_empty()) {
        (true, true) => (RunStatus::Succeeded, None),
        (true, false) => (
            RunStatus::SucceededWithFailures,
            Some(format!(
                "non-critical step(s) failed (on_failure = continue): {}",
                failed.join(", ")
            )),
        ),
        (false, true) => (RunStatus::Failed, None),
        (false, false) => (
            RunStatus::Failed,
            Some(format!("step(s) failed: {}", failed.join(", "))),
        ),
    }
}

/// `host:pid` of this process, for leases and heartbeats.
pub fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

impl App {
    /// Marks a run of this process `crashed` from a panic hook: the journal opened afresh
    /// (the panic may have struck while the shared connection was in use).
    pub fn crash_marker(&self) -> CrashMarker {
        let app = self.clone();
        Arc::new(move |run, why| app.mark(run, crate::status::RunStatus::Crashed, why))
    }

    /// End a run of this process with `status` right now, on a connection of its own (a panic
    /// hook, a second Ctrl-C). Best effort: the run is also known stale by its heartbeat.
    pub fn mark(&self, run: &crate::types::RunId, status: crate::status::RunStatus, why: &str) {
        if let Ok(j) = crate::journal::Journal::open(&self.journal_path) {
            let _ = j.set_run_status(run, status, Some(why), true);
        }
    }
}

/// A run's heartbeat is considered stopped after this long.
pub const STALE_AFTER_MS: i64 = 2 * 60 * 1000;

/// Whether a run's process is alive: its heartbeat is recent, and, when it ran on this host,
/// its process still exists (a process killed here is known dead at once).
pub fn liveness(r: &RunRecord, now_ms: i64) -> Liveness {
    match r.liveness(now_ms, STALE_AFTER_MS) {
        Liveness::Live if holder_is_gone(r) => Liveness::Stale {
            since: r.heartbeat_at.unwrap_or(r.started_at),
        },
        l => l,
    }
}

/// The run's process ran on this host and is gone.
fn holder_is_gone(r: &RunRecord) -> bool {
    let Some((host, pid)) = r.holder.as_deref().and_then(|h| h.rsplit_once(':')) else {
        return false;
    };
    let here = holder();
    let this_host = here.rsplit_once(':').map(|(h, _)| h) == Some(host);
    let running = |pid: &str| std::path::Path::new(&format!("/proc/{pid}")).exists();
    this_host && std::path::Path::new("/proc/self").exists() && !running(pid)
}

/// Runs of this process, for the panic hook.
static ACTIVE: Mutex<Vec<(RunId, CrashMarker)>> = Mutex::new(Vec::new());

/// Install a panic hook that marks every run of this process `crashed` (after the default
/// hook prints the panic). Call once, from the binary.
pub fn install_crash_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let why = info.to_string();
        let runs: Vec<(RunId, CrashMarker)> =
            ACTIVE.try_lock().map(|a| a.clone()).unwrap_or_default();
        for (run, mark) in runs {
            mark(&run, &why);
        }
    }));
}

/// Plan, record, execute and finish one run (or continue one, with `resume`).
///
/// Before anything else the run takes a lease on every resource its steps may change; a live
/// lease of another run refuses it at once (`AppError::Busy` naming the holder). A heartbeat
/// renews the leases; each intent shows their fencing tokens, so a run that lost them makes no
/// further call. The plan is computed next; if it cannot read the world the run starts
/// anyway and every step observes for itself, unless access is denied.
pub async fn start_run(
    ports: &Ports,
    store: &Arc<dyn Store>,
    reporter: Arc<dyn Reporter>,
    req: RunRequest,
) -> Result<RunResult, AppError> {
    use tracing::Instrument;
    // Every log line of the run carries its id (`--log-format json`: in `spans`). The target
    // is the CLI's switch: the human format leaves the span out, so its lines are unchanged.
    let span = tracing::info_span!(target: "failover_run", "run", run_id = %req.header.id);
    run_in_span(ports, store, reporter, req)
        .instrument(span)
        .await
}

async fn run_in_span(
    ports: &Ports,
    store: &Arc<dyn Store>,
    reporter: Arc<dyn Reporter>,
    req: RunRequest,
) -> Result<RunResult, AppError> {
    use tracing::Instrument;
    let h = &req.header;
    tracing::info!(runbook = %h.runbook, environment = %h.environment, mode = h.mode.as_str(), initiator = %h.initiator, "run started");
    let me = holder();
    let mut fence = take_leases(store, &req, &me).await?;
    fence.budget_ms = req.leases.call_budget.as_millis() as i64;
    // Planned after the leases are taken: what it observes, no other run changes afterwards,
    // so the steps may decide on it while it is fresh.
    let (plan, observed) = match plan_or_fallback(ports, &reporter, &req).await {
        Ok(p) => p,
        Err(e) => {
            let _ = store.release(&h.id).await;
            return Err(e);
        }
    };
    record_start(store, &reporter, &req, &plan, &me, ports).await?;
    if let Some(mark) = &req.on_crash {
        lock_active().push((h.id.clone(), mark.clone()));
    }
    let heartbeat = tokio::spawn(
        heartbeat(
            store.clone(),
            ports.clock.clone(),
            h.id.clone(),
            fence.clone(),
            me.clone(),
            req.leases.heartbeat,
            req.stop.clone(),
        )
        .in_current_span(),
    );
    let spec = RunSpec {
        run_id: h.id.clone(),
        initiator: h.initiator.clone(),
        steps: req.steps.clone(),
        poll_interval: req.poll_interval,
        max_concurrency: req.max_concurrency,
        max_calls_in_flight: req.max_calls_in_flight,
        approval_poll: req.approval_poll,
        fence,
        region: req.region.clone(),
        stop: req.stop.clone(),
        finished: req
            .resume
            .as_ref()
            .map(|r| r.finished.clone())
            .unwrap_or_default(),
        observed,
        plan_fresh_for: req.plan_fresh_for,
    };
    let outcome = engine::execute(ports.clone(), store.clone(), spec, reporter.clone()).await;
    heartbeat.abort();
    lock_active().retain(|(r, _)| r != &h.id);
    let r = finish(store, ports, &reporter, &req, plan, outcome).await;
    if let Ok(r) = &r {
        tracing::info!(status = r.status.as_str(), "run ended");
    }
    r
}

fn lock_active() -> std::sync::MutexGuard<'static, Vec<(RunId, CrashMarker)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every lease the steps need, or a refusal that says who holds one and what to do.
async fn take_leases(
    store: &Arc<dyn Store>,
    req: &RunRequest,
    me: &str,
) -> Result<crate::store::Fence, AppError> {
    let h = &req.header;
    let keys = lease::keys_of(&req.steps, &req.region);
    let ask = LeaseRequest {
        run_id: h.id.clone(),
        initiator: h.initiator.clone(),
        holder: me.to_string(),
        keys: keys.into_iter().collect(),
        ttl_ms: req.leases.ttl.as_millis() as i64,
        takeover: req.resume.is_some(),
    };
    match store.acquire(&ask).await {
        Ok(f) => Ok(f),
        Err(StoreError::Conflict(c)) => Err(AppError::Busy {
            message: format!(
                "run {} was not started: {c}\n  hint: wait for it (`failover show {}`), or end it (`failover abort {} --by <you>`); if its process is gone, its lease expires at {} and `failover resume {}` takes it over",
                h.id,
                c.held_by,
                c.held_by,
                crate::timefmt::format_ts(c.expires_ms),
                c.held_by
            ),
            conflict: c,
        }),
        Err(e) => Err(e.into()),
    }
}

/// The plan and what it observed; when the world cannot be read (but access is not denied),
/// an empty plan and a word to the reporter: the run starts anyway and every step observes
/// for itself.
async fn plan_or_fallback(
    ports: &Ports,
    reporter: &Arc<dyn Reporter>,
    req: &RunRequest,
) -> Result<(Plan, Option<engine::Observed>), AppError> {
    let h = &req.header;
    match engine::plan_observed(ports, &h.runbook, &h.environment, &h.id, &req.steps).await {
        Ok((p, o)) => Ok((p, Some(o))),
        Err(e) if e.kind == ErrorKind::AccessDenied => {
            Err(AppError::cloud("reading the current state failed", e))
        }
        Err(e) => {
            reporter.report(Progress::PlanUnavailable {
                run_id: h.id.clone(),
                error: e.to_string(),
            });
            Ok((
                Plan {
                    runbook: h.runbook.clone(),
                    environment: h.environment.clone(),
                    steps: vec![],
                },
                None,
            ))
        }
    }
}

/// The run record (or, for a resume, its new status and who resumed it), then the events.
async fn record_start(
    store: &Arc<dyn Store>,
    reporter: &Arc<dyn Reporter>,
    req: &RunRequest,
    plan: &Plan,
    me: &str,
    ports: &Ports,
) -> Result<(), AppError> {
    let h = &req.header;
    // The journal's clock, not the ports': in a simulated environment the ports' is virtual,
    // and a run stamped with it would look stale to everyone reading the journal.
    let _ = ports;
    let now = store.now_ms();
    match &req.resume {
        None => {
            let mut r = run_record(h, now, plan, &req.steps);
            r.heartbeat_at = Some(now);
            r.holder = Some(me.to_string());
            store.create_run(&r).await?;
            if let Some(text) = &req.runbook_text {
                store
                    .note(&h.id, None, "runbook", serde_json::json!({"text": text}))
                    .await?;
            }
        }
        Some(res) => {
            store.heartbeat(&h.id, me).await?;
            store
                .note(&h.id, None, "resumed", serde_json::json!({"by": res.by, "holder": me, "finished_steps": res.finished.keys().collect::<Vec<_>>()}))
                .await?;
            store
                .set_run_status(&h.id, RunStatus::Running, None, false)
                .await?;
        }
    }
    reporter.report(Progress::RunStarted {
        run_id: h.id.clone(),
        runbook: h.runbook.clone(),
        environment: h.environment.clone(),
        initiator: h.initiator.clone(),
        mode: h.mode,
        of_run: h.of_run.clone(),
        resumed_by: req.resume.as_ref().map(|r| r.by.clone()),
        journal: store.location(),
    });
    reporter.report(Progress::RunPlanned {
        run_id: h.id.clone(),
        runbook: h.runbook.clone(),
        steps: plan.steps.len(),
        mutating_calls: plan.mutating_calls(),
        problems: plan
            .problems()
            .into_iter()
            .map(|(s, p)| (s.to_string(), p))
            .collect(),
    });
    Ok(())
}

/// Renew the leases (and the run's heartbeat) every `every` until aborted; a lost lease stops
/// the run (fenced). A store error is retried at the next beat.
async fn heartbeat(
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::cloud::Clock>,
    run: RunId,
    fence: crate::store::Fence,
    me: String,
    every: Duration,
    stop: Stop,
) {
    loop {
        clock.sleep(every).await;
        match store.renew(&run, &fence, &me).await {
            Ok(()) => {}
            Err(StoreError::Fenced(why)) => {
                stop.request(StopKind::Fenced, format!("lease lost: {why}"));
                return;
            }
            Err(e) => tracing::warn!(run = %run, "heartbeat: {e}"),
        }
    }
}

/// Write how the run ended (unless it lost its leases: another process owns it now), release
/// its leases, report it.
async fn finish(
    store: &Arc<dyn Store>,
    ports: &Ports,
    reporter: &Arc<dyn Reporter>,
    req: &RunRequest,
    plan: Plan,
    outcome: RunOutcome,
) -> Result<RunResult, AppError> {
    let h = &req.header;
    let (status, error) = match req.stop.reason() {
        Some((StopKind::Fenced, why)) => {
            let _ = store
                .note(&h.id, None, "fenced", serde_json::json!({"why": why}))
                .await;
            let now = store
                .run_exact(&h.id)
                .await
                .map(|r| r.status)
                .unwrap_or(RunStatus::Running);
            return Ok(RunResult {
                run_id: h.id.clone(),
                plan,
                outcome,
                status: now,
                error: Some(why),
            });
        }
        Some((StopKind::Interrupted, why)) => (RunStatus::Interrupted, Some(why)),
        Some((StopKind::Crashed, why)) => (RunStatus::Crashed, Some(why)),
        None => final_status(&outcome),
    };
    store
        .set_run_status(&h.id, status, error.as_deref(), true)
        .await?;
    store.release(&h.id).await?;
    let calls = ports.meter.counts();
    let _ = store
        .note(
            &h.id,
            None,
            "calls",
            serde_json::to_value(&calls).unwrap_or_default(),
        )
        .await;
    let head = store.head().await?;
    anchor(req, status, head.as_ref(), ports).await;
    reporter.report(Progress::RunFinished {
        run_id: h.id.clone(),
        status,
        error: error.clone(),
        head: head.map(|h| h.to_string()),
        calls: Some(calls),
    });
    Ok(RunResult {
        run_id: h.id.clone(),
        plan,
        outcome,
        status,
        error,
    })
}

/// Remember the journal's head outside it (the anchor file, the notify endpoint), so that a
/// deleted tail is caught by `verify`. Best effort: a failure is logged, not fatal.
async fn anchor(req: &RunRequest, status: RunStatus, head: Option<&Head>, ports: &Ports) {
    let Some(head) = head else { return };
    let line = format!(
        "{head} {} run {} {status}",
        crate::timefmt::format_ts(ms(ports.clock.now())),
        req.header.id
    );
    if let Some(path) = &req.anchor_file {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::warn!("cannot append the journal head to {}: {e}", path.display());
        }
    }
    if let Some(req_) = &req.notify {
        let mut r = req_.clone();
        let resolve = crate::runbook::template::resolve_secrets;
        let Ok(url) = resolve(&r.url) else { return };
        r.url = url;
        for (_, v) in &mut r.headers {
            let Ok(x) = resolve(v) else { return };
            *v = x;
        }
        r.body = Some(
            serde_json::json!({"text": format!("failover run {} ended {status}; journal head {head}", req.header.id)})
                .to_string(),
        );
        if let Err(e) = ports.http.send(&r).await {
            tracing::warn!(
                "cannot send the journal head to {}: {e}",
                crate::cloud::redacted_url(&r.url)
            );
        }
    }
}

fn ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Put an approval gate before every first step (`run --require-approval`, and runs a
/// watcher starts under the `approval` policy).
pub fn gate_with_approval(steps: &mut Vec<BoundStep>, message: String, approvers: Vec<String>) {
    use crate::runbook::bind::BoundAction;
    use crate::types::StepId;
    let gate = StepId::new("require-approval");
    for s in steps.iter_mut() {
        if s.after.is_empty() {
            s.after.push(gate.clone());
        }
    }
    steps.insert(
        0,
        BoundStep {
            id: gate,
            description: Some("approval required before the first step".into()),
            after: vec![],
            enabled: true,
            when: None,
            timeout: Duration::from_secs(60 * 60),
            retries: 0,
            on_failure: OnFailure::Abort,
            action: BoundAction::Approval {
                message,
                approvers,
                required: 1,
            },
        },
    );
}
