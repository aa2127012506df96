//! `watch`: run detection continuously and act on the environment's `[health.trigger]` policy.
//!
//! One loop for both edges: [`Watcher`] runs the rounds of probes, decides on every zone event
//! with the pure trigger policy (quorum, hysteresis, cooldown, observer rule), journals the
//! decision, notifies, and starts the run a decision calls for through a [`Launcher`]: the CLI's
//! ([`ProcessLauncher`]) as a `failover run` process of its own, so the run goes on if the
//! watcher stops; `failover serve`'s as a task of the service's own process. Either way the run
//! goes through the one lifecycle, with the same leases, journal and cooldowns.

use super::load::{initiator, load_env};
use super::record::{session_record, RunHeader};
use super::watch_lead::Lead;
use super::{App, AppError};
use crate::cloud::{Clock, HttpClient, HttpRequest};
use crate::diag::{Diagnostics, Place};
use crate::env::Environment;
use crate::health::trigger::Triggers;
use crate::health::{
    self, trigger, Detector, HealthConfig, HealthReport, TriggerConfig, TriggerDecision,
    TriggerState, ZoneEvent,
};
use crate::journal;
use crate::runbook::Runbook;
use crate::status::{RunMode, RunStatus};
use crate::store::Store;
use crate::types::RunId;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the watcher reports as it goes.
#[derive(Clone, Debug)]
pub enum WatchEvent {
    /// The watcher started (one line for the terminal).
    Started(String),
    /// A zone event and the decision taken on it.
    Decision {
        at_ms: i64,
        text: String,
        decision: TriggerDecision,
    },
    /// A run was started for the decision (`log`: where a run in a process of its own writes).
    RunStarted {
        run_id: RunId,
        how: String,
        log: Option<PathBuf>,
    },
    RunNotStarted {
        error: String,
    },
    NotifyFailed {
        error: String,
    },
    /// This watcher took the lead among the watchers of its environment (it starts the runs
    /// and notifies), or is a standby (it only decides and journals).
    Role {
        leading: bool,
        text: String,
    },
}

/// A run a trigger decision calls for.
#[derive(Clone, Debug)]
pub struct Triggered {
    pub env: String,
    /// The trigger's runbook, as `[health.trigger] runbook` names it.
    pub runbook: PathBuf,
    pub params: Vec<(String, String)>,
    /// `watch:<env>`: the initiator the journal records (and the cooldown is read from).
    pub initiator: String,
    /// Start it paused at an approval gate (policy `approval`).
    pub paused: bool,
}

/// A run started for a decision.
#[derive(Clone, Debug)]
pub struct Launched {
    pub run_id: RunId,
    /// Where its output goes, when it runs in a process of its own.
    pub log: Option<PathBuf>,
}

/// How a watcher starts a run: the only difference between `failover watch` and the service.
/// Returns once the run is started (for the service: recorded, its leases taken).
#[async_trait::async_trait]
pub trait Launcher: Send + Sync {
    async fn launch(&self, app: &App, run: Triggered) -> Result<Launched, AppError>;
}

/// `failover watch`'s launcher: the run is a `failover run` process of its own.
pub struct ProcessLauncher;

#[async_trait::async_trait]
impl Launcher for ProcessLauncher {
    async fn launch(&self, app: &App, run: Triggered) -> Result<Launched, AppError> {
        let (run_id, log) = start_process(app, &run)?;
        Ok(Launched {
            run_id,
            log: Some(log),
        })
    }
}

pub(super) fn health_error(e: health::HealthError) -> AppError {
    match e {
        health::HealthError::NotConfigured(_) => {
            AppError::Input(format!("error: {e}\n  hint: {}", e.hint()))
        }
        health::HealthError::Cloud(c) => AppError::cloud("cannot set up the health probes", c),
    }
}

/// Watch `env_name` with the CLI's launcher until `max_events` zone events have been handled
/// (forever when `None`).
pub async fn watch(
    app: &App,
    env_name: &str,
    max_events: Option<u32>,
    on: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<(), AppError> {
    let mut w = Watcher::open(app, env_name).await?;
    on(WatchEvent::Started(w.describe()));
    let mut seen = 0u32;
    loop {
        for ev in w.next_round().await {
            w.handle(app, &ProcessLauncher, &ev, on).await?;
            seen += 1;
            if max_events.is_some_and(|m| seen >= m) {
                return w.close().await;
            }
        }
        w.fail_back_due(app, &ProcessLauncher, on).await?;
    }
}

/// The watch loop of one environment: its detector, its trigger policies (zone, region,
/// failback) and its memory (the last runs it started and the zones it evacuated, read back
/// from the journal so a restart keeps the cooldowns and the failbacks).
pub struct Watcher {
    env: Environment,
    cfg: HealthConfig,
    /// The zone trigger, else the region trigger: what `describe` and `notify` speak of.
    tr: TriggerConfig,
    journal: Arc<dyn Store>,
    session: RunId,
    who: String,
    state: TriggerState,
    det: Detector,
    clock: Arc<dyn Clock>,
    http: crate::cloud::http::ReqwestHttp,
    lead: Lead,
    /// Paces and counts the probes' AWS calls.
    meter: Arc<crate::cloud::rate::RateLimiter>,
}

/// Each runbook the watcher may start declares the parameters it passes (and requires no
/// other without a default) and applies to the environment (its groups and endpoints exist; a
/// region runbook needs `regions`): found when the watcher starts, not when it starts the
/// runbook at 03:00.
fn check_runbooks(cfg: &HealthConfig, env: &Environment) -> Result<(), AppError> {
    let mut problems = Diagnostics::default();
    for d in trigger_problems(cfg, env) {
        problems.extend(d);
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(AppError::Input(format!(
        "{problems}\nthe watcher did not start."
    )))
}

/// What is wrong with the runbooks of `[health.trigger]`, `[health.region_trigger]` and
/// `[health.failback]`: one that does not load (at its `runbook` key), a parameter the watcher
/// would not pass (likewise), or a step that does not apply to the environment (in the
/// runbook), one entry per table given. `watch` and `serve` refuse to start on them;
/// `validate` reports them.
pub(super) fn trigger_problems(cfg: &HealthConfig, env: &Environment) -> Vec<Diagnostics> {
    let mut all = vec![];
    let mut check = |what: &str, path: &str, at: &Place, own: &dyn Fn(&Runbook) -> Vec<String>| {
        let rb = match super::load::entry_runbook(path, what, at, "`failover watch` / `serve`") {
            Ok(rb) => rb,
            Err(d) => {
                all.push(d);
                return;
            }
        };
        let mut out = Diagnostics::default();
        for p in own(&rb) {
            out.push(at.diag(format!("{what}: {p}"), None));
        }
        out.extend(crate::runbook::bind::check_against_env(&rb, env));
        all.push(out);
    };
    if let Some(t) = &cfg.trigger {
        check("[health.trigger]", &t.runbook, &t.at, &|rb| {
            trigger::check_runbook(t, rb)
        });
    }
    if let Some(t) = &cfg.region_trigger {
        check("[health.region_trigger]", &t.runbook, &t.at, &|rb| {
            trigger::check_region_runbook(t, rb)
        });
    }
    if let Some(f) = &cfg.failback {
        check("[health.failback]", &f.runbook, &f.at, &|rb| {
            trigger::check_failback_runbook(f, rb)
        });
    }
    all
}

impl Watcher {
    /// Check the environment, its trigger and its runbook, record the watch session, and set
    /// up the probes. Nothing is probed yet.
    pub async fn open(app: &App, env_name: &str) -> Result<Watcher, AppError> {
        let loaded = load_env(&app.config_dir, env_name)?;
        let env = loaded.env;
        if loaded.target.simulated().is_some() {
            return Err(AppError::Input(format!(
                "error: environment `{}` is simulated and has no probes",
                env.name
            )));
        }
        let cfg = health::config_of(&env).map_err(health_error)?.clone();
        let Some(tr) = cfg.trigger.clone().or_else(|| cfg.region_trigger.clone()) else {
            return Err(AppError::Input(format!("error: environment `{}` has no [health.trigger]: nothing to start on a zone failure\n  hint: add [health.trigger] with runbook, zone_param and policy (docs/health.md), or [health.region_trigger] for a region; `failover health --watch` only watches", env.name)));
        };
        check_runbooks(&cfg, &env)?;
        let journal = app.open_journal()?;
        let who = format!("watch:{}", env.name);
        let state = remembered(&journal, &who, &cfg).await?;
        let session = journal::new_run_id();
        let header = RunHeader {
            id: session.clone(),
            runbook: format!("watch {}", env.name),
            runbook_path: tr.runbook.clone(),
            runbook_sha256: "-".into(),
            environment: env.name.clone(),
            mode: RunMode::Watch,
            initiator: initiator(None),
            params: serde_json::json!({"policy": format!("{:?}", tr.policy).to_lowercase(), "cooldown": humantime::format_duration(tr.cooldown).to_string()}),
            of_run: None,
        };
        journal
            .create_run(&session_record(&header, journal::now_ms()))
            .await?;
        let (ports, meter) = super::wiring::health_ports(&env)
            .await
            .map_err(health_error)?;
        let clock = ports.clock.clone();
        let det = health::detector(&env, ports).map_err(health_error)?;
        let http = crate::cloud::http::ReqwestHttp::new()
            .map_err(|e| AppError::cloud("cannot build the HTTP client", e))?;
        let lead = Lead::new(
            journal.clone(),
            session.clone(),
            who.clone(),
            &env.name,
            cfg.interval,
        );
        Ok(Watcher {
            env,
            cfg,
            tr,
            journal,
            session,
            who,
            state,
            det,
            clock,
            http,
            lead,
            meter,
        })
    }

    /// One line: what is watched and what happens on a failure.
    pub fn describe(&self) -> String {
        let on = |what: &str, t: &TriggerConfig| {
            format!(
                " On {what} failure: {:?} `{}` (cooldown {}).",
                t.policy,
                t.runbook,
                humantime::format_duration(t.cooldown)
            )
        };
        let mut text = format!(
            "Watching `{}`: {} probe(s) every {}, a zone is unhealthy after {} bad round(s).",
            self.env.name,
            self.cfg.probes.len(),
            humantime::format_duration(self.cfg.interval),
            self.cfg.unhealthy_after,
        );
        if let Some(t) = &self.cfg.trigger {
            text.push_str(&on("a zone", t));
        }
        if let Some(t) = &self.cfg.region_trigger {
            text.push_str(&on("a region", t));
        }
        if let Some(f) = &self.cfg.failback {
            text.push_str(&format!(
                " Fail back: {:?} `{}` once the zone has been healthy for {}.",
                f.policy,
                f.runbook,
                humantime::format_duration(f.after)
            ));
        }
        format!("{text} Session {}.", self.session)
    }

    /// The trigger policy being applied.
    pub fn trigger(&self) -> &TriggerConfig {
        &self.tr
    }

    /// Run the next round of probes (at the configured interval); the zone events it gave.
    pub async fn next_round(&mut self) -> Vec<ZoneEvent> {
        self.det.next_round().await
    }

    /// Every zone's state after the last round, and the probes' AWS calls so far.
    pub fn report(&self) -> HealthReport {
        let mut r = self.det.report();
        r.aws_calls = Some(crate::cloud::CallMeter::counts(&*self.meter));
        r
    }

    /// Decide on one zone event, journal the decision, start the run it calls for (through
    /// `launcher`) and notify.
    pub async fn handle(
        &mut self,
        app: &App,
        launcher: &dyn Launcher,
        ev: &ZoneEvent,
        on: &mut (dyn FnMut(WatchEvent) + Send),
    ) -> Result<(), AppError> {
        self.take_role(on).await?;
        let decision = self
            .state
            .on_event(Triggers::of(&self.cfg), ev, self.clock.now());
        let text = self.standby_says(decision.describe(ev));
        on(WatchEvent::Decision {
            at_ms: journal::now_ms(),
            text: text.clone(),
            decision: decision.clone(),
        });
        let (j, s) = (&self.journal, &self.session);
        j.note(
            s,
            None,
            "zone_event",
            serde_json::to_value(ev).unwrap_or_default(),
        )
        .await?;
        let d = serde_json::to_value(&decision).unwrap_or_default();
        j.note(s, None, "trigger_decision", d).await?;
        if self.lead.leading() {
            let started = self.act_on(app, launcher, &decision, on).await?;
            self.notify(&text, started, on).await;
        }
        Ok(())
    }

    /// Renew the lead or try to take it (see [`Lead`]); a change of role is journaled and
    /// told. A standby that takes over reads the journal again: the cooldowns and the zones to
    /// fail back are those of the runs the old leader started.
    async fn take_role(&mut self, on: &mut (dyn FnMut(WatchEvent) + Send)) -> Result<(), AppError> {
        let Some(change) = self.lead.refresh().await? else {
            return Ok(());
        };
        let v = serde_json::json!({"leading": change.leading, "text": change.text});
        self.journal
            .note(&self.session, None, "watch_role", v)
            .await?;
        if change.leading {
            self.state = remembered(&self.journal, &self.who, &self.cfg).await?;
        }
        on(WatchEvent::Role {
            leading: change.leading,
            text: change.text,
        });
        Ok(())
    }

    /// A standby's decision says it is not acted on.
    fn standby_says(&self, text: String) -> String {
        if self.lead.leading() {
            text
        } else {
            format!("standby, not acted on: {text}")
        }
    }

    /// Start (or propose, or tell of) the failbacks whose zone has now been healthy for long
    /// enough (`[health.failback]`). Call after every round.
    pub async fn fail_back_due(
        &mut self,
        app: &App,
        launcher: &dyn Launcher,
        on: &mut (dyn FnMut(WatchEvent) + Send),
    ) -> Result<(), AppError> {
        self.take_role(on).await?;
        let fb = self.cfg.failback.as_ref();
        for z in self.det.report().zones {
            let st = &z.status;
            let (crate::health::Target::Zone(zone), Some(since)) = (&st.target, st.streak_since)
            else {
                continue;
            };
            if st.state == health::State::Healthy && st.good_streak >= self.cfg.healthy_after {
                self.state.seen_healthy(fb, zone, since);
            }
        }
        for due in self.state.due(fb, self.clock.now()) {
            on(WatchEvent::Decision {
                at_ms: journal::now_ms(),
                text: self.standby_says(due.text.clone()),
                decision: due.decision.clone(),
            });
            let v = serde_json::to_value(&due).unwrap_or_default();
            self.journal
                .note(&self.session, None, "failback_decision", v)
                .await?;
            if self.lead.leading() {
                let started = self.act_on(app, launcher, &due.decision, on).await?;
                self.notify(&due.text, started, on).await;
            }
        }
        Ok(())
    }

    /// Whether this watcher leads among the watchers of its environment.
    pub fn leading(&self) -> bool {
        self.lead.leading()
    }

    /// End the watch session in the journal, giving up the lead.
    pub async fn close(&mut self) -> Result<(), AppError> {
        self.lead.release().await?;
        self.journal
            .set_run_status(&self.session, RunStatus::Stopped, None, true)
            .await?;
        Ok(())
    }

    async fn notify(
        &self,
        text: &str,
        started: Option<String>,
        on: &mut (dyn FnMut(WatchEvent) + Send),
    ) {
        let Some(ep) = self
            .tr
            .notify
            .as_ref()
            .and_then(|n| self.env.endpoints.get(&n.value))
        else {
            return;
        };
        let tail = started.map(|s| format!(" -> {s}")).unwrap_or_default();
        let body =
            serde_json::json!({"text": format!("failover watch {}: {text}{tail}", self.env.name)});
        let req = HttpRequest {
            method: ep.method.clone(),
            url: ep.url.clone(),
            headers: ep.headers.clone(),
            body: Some(body.to_string()),
            timeout: ep.timeout,
        };
        if let Err(e) = self.http.send(&req).await {
            on(WatchEvent::NotifyFailed {
                error: e.to_string(),
            });
        }
    }

    /// Start the runbook a decision calls for (unless another run holds a lease on what it
    /// would change); what to add to the notification.
    async fn act_on(
        &self,
        app: &App,
        launcher: &dyn Launcher,
        decision: &TriggerDecision,
        on: &mut (dyn FnMut(WatchEvent) + Send),
    ) -> Result<Option<String>, AppError> {
        let (runbook, params, paused) = match decision {
            TriggerDecision::Start { runbook, params } => (runbook, params, false),
            TriggerDecision::StartPausedForApproval { runbook, params } => (runbook, params, true),
            _ => return Ok(None),
        };
        let p: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (j, s) = (&self.journal, &self.session);
        if let Some(busy) = leased(app, j, &self.env, runbook, &p).await? {
            let error = format!("not starting `{runbook}`: {busy}; it is already being handled");
            let v = serde_json::json!({"error": error});
            j.note(s, None, "run_not_started", v).await?;
            on(WatchEvent::RunNotStarted {
                error: error.clone(),
            });
            return Ok(Some(error));
        }
        let order = Triggered {
            env: self.env.name.clone(),
            runbook: PathBuf::from(runbook),
            params: p,
            initiator: self.who.clone(),
            paused,
        };
        match launcher.launch(app, order).await {
            Ok(Launched { run_id: id, log }) => {
                let how = if paused {
                    format!("waiting for approval: failover approve {id} --by <name>")
                } else {
                    "running".to_string()
                };
                let v = serde_json::json!({"run": id, "paused": paused});
                j.note(s, None, "run_started", v).await?;
                on(WatchEvent::RunStarted {
                    run_id: id.clone(),
                    how: how.clone(),
                    log,
                });
                Ok(Some(format!("run {id} {how}")))
            }
            Err(e) => {
                let error = e.to_string();
                let v = serde_json::json!({"error": error});
                j.note(s, None, "run_not_started", v).await?;
                on(WatchEvent::RunNotStarted {
                    error: error.clone(),
                });
                Ok(Some(format!("could not start the runbook: {error}")))
            }
        }
    }
}

/// What the watcher of this environment (`who`), whichever process ran it, remembers from
/// the journal: when it last started a zone run and a region run (the cooldowns survive a
/// restart, and the CLI's watcher and the service's share them), and which zones it
/// evacuated and has not failed back yet (a failback started later, by anyone, counts).
async fn remembered(
    journal: &Arc<dyn Store>,
    who: &str,
    cfg: &HealthConfig,
) -> Result<TriggerState, AppError> {
    let runs = journal.runs(500).await?; // newest first
    let at = |r: &crate::store::RunRecord| {
        std::time::UNIX_EPOCH + Duration::from_millis(r.started_at as u64)
    };
    let by = |t: &Option<TriggerConfig>, r: &crate::store::RunRecord| {
        t.as_ref()
            .is_some_and(|t| Path::new(&t.runbook) == Path::new(&r.runbook_path))
            && r.initiator == who
            && r.mode == RunMode::Run
    };
    let mut state = TriggerState {
        last_trigger: runs.iter().find(|r| by(&cfg.trigger, r)).map(at),
        last_region_trigger: runs.iter().find(|r| by(&cfg.region_trigger, r)).map(at),
        ..TriggerState::default()
    };
    let param = |r: &crate::store::RunRecord, k: &str| {
        r.params.get(k).and_then(|v| v.as_str()).map(str::to_string)
    };
    if let (Some(t), Some(f)) = (&cfg.trigger, &cfg.failback) {
        let mut settled = std::collections::BTreeSet::new();
        for r in &runs {
            if Path::new(&f.runbook) == Path::new(&r.runbook_path) && r.mode == RunMode::Run {
                settled.extend(param(r, &f.zone_param));
            } else if by(&cfg.trigger, r) && r.status != RunStatus::Failed {
                for z in param(r, &t.zone_param).iter().flat_map(|v| v.split(',')) {
                    let z = z.trim().to_string();
                    if !settled.contains(&z) {
                        state.evacuated.insert(crate::types::Zone::from(z.as_str()));
                    }
                }
            }
        }
    }
    Ok(state)
}

/// Whether another live run holds a lease on something `runbook` would change in `env`.
async fn leased(
    app: &App,
    journal: &Arc<dyn Store>,
    env: &Environment,
    runbook: &str,
    params: &[(String, String)],
) -> Result<Option<String>, AppError> {
    let ctx = crate::runbook::bind::RunContext {
        run_id: RunId::new("watch-check"),
        initiator: "watch".into(),
        mode: RunMode::Run,
    };
    let Ok(bound) =
        super::load::load_bound(&app.config_dir, Path::new(runbook), &env.name, params, &ctx)
    else {
        // Binding problems are for the run itself to report.
        return Ok(None);
    };
    let keys = crate::lease::keys_of(&bound.steps, &env.region);
    let now = journal::now_ms();
    Ok(journal
        .leases()
        .await?
        .into_iter()
        .find(|l| l.live_at(now) && keys.contains(&l.key))
        .map(|l| {
            format!(
                "{} is leased by run {} (started by {})",
                l.key,
                l.run_id.unwrap_or_default(),
                l.initiator
            )
        }))
}

/// Start a runbook for a trigger decision as its own `failover run` process, so it goes on
/// if the watcher stops. Its output goes to a log file next to the journal.
fn start_process(app: &App, run: &Triggered) -> Result<(RunId, PathBuf), AppError> {
    let id = journal::new_run_id();
    let jpath = &app.journal_path;
    let log = jpath.with_file_name(format!("run-{id}.log"));
    let io = |what: String| AppError::Journal(journal::JournalError::Refused(what));
    let out = std::fs::File::create(&log)
        .map_err(|e| io(format!("cannot create {}: {e}", log.display())))?;
    let exe =
        std::env::current_exe().map_err(|e| io(format!("cannot find the failover binary: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--journal")
        .arg(jpath)
        .arg("--config-dir")
        .arg(&app.config_dir)
        .arg("run")
        .arg(&run.runbook)
        .args(["--env", &run.env, "--by", &run.initiator, "--run-id"])
        .arg(id.as_str());
    for (k, v) in &run.params {
        cmd.arg("-p").arg(format!("{k}={v}"));
    }
    if run.paused {
        cmd.arg("--require-approval");
    }
    let err_out = out
        .try_clone()
        .map_err(|e| io(format!("cannot create {}: {e}", log.display())))?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err_out);
    cmd.spawn()
        .map_err(|e| io(format!("cannot start `failover run`: {e}")))?;
    Ok((id, log))
}
