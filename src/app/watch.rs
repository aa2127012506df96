//! `watch`: run detection continuously and act on the environment's `[health.trigger]` policy.
//! A run it starts is a `failover run` process of its own, so it goes on if the watcher stops.

use super::load::{initiator, load_env};
use super::record::{session_record, RunHeader};
use super::{App, AppError};
use crate::cloud::{HttpClient, HttpRequest};
use crate::env::Environment;
use crate::health::{self, trigger, TriggerDecision, TriggerState};
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
    },
    /// A run was started for the decision.
    RunStarted {
        run_id: RunId,
        how: String,
        log: PathBuf,
    },
    RunNotStarted {
        error: String,
    },
    NotifyFailed {
        error: String,
    },
}

pub(super) fn health_error(e: health::HealthError) -> AppError {
    match e {
        health::HealthError::NotConfigured(_) => {
            AppError::Input(format!("error: {e}\n  hint: {}", e.hint()))
        }
        health::HealthError::Cloud(c) => AppError::cloud("cannot set up the health probes", c),
    }
}

/// Watch `env_name` until `max_events` zone events have been handled (forever when `None`).
pub async fn watch(
    app: &App,
    env_name: &str,
    max_events: Option<u32>,
    on: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<(), AppError> {
    let loaded = load_env(&app.config_dir, env_name)?;
    let env = loaded.env;
    if loaded.target.simulated().is_some() {
        return Err(AppError::Input(format!(
            "error: environment `{}` is simulated and has no probes",
            env.name
        )));
    }
    let cfg = health::config_of(&env).map_err(health_error)?.clone();
    let Some(tr) = cfg.trigger.clone() else {
        return Err(AppError::Input(format!("error: environment `{}` has no [health.trigger]: nothing to start on a zone failure\n  hint: add [health.trigger] with runbook, zone_param and policy (docs/health.md); `failover health --watch` only watches", env.name)));
    };
    let rb = Runbook::load(Path::new(&tr.runbook))?;
    let problems = trigger::check_runbook(&tr, &rb);
    if !problems.is_empty() {
        return Err(AppError::Input(format!(
            "error: {}\nthe watcher did not start.",
            problems.join("\nerror: ")
        )));
    }
    let journal = app.open_journal()?;
    let who = format!("watch:{}", env.name);
    // The cooldown survives a restart of the watcher: the last run it started is in the journal.
    let mut state = TriggerState {
        last_trigger: journal
            .runs(500)
            .await?
            .into_iter()
            .find(|r| r.initiator == who && r.mode == RunMode::Run)
            .map(|r| std::time::UNIX_EPOCH + Duration::from_millis(r.started_at as u64)),
    };
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
    on(WatchEvent::Started(format!(
        "Watching `{}`: {} probe(s) every {}, a zone is unhealthy after {} bad round(s). On failure: {:?} `{}` (cooldown {}). Session {session}.",
        env.name,
        cfg.probes.len(),
        humantime::format_duration(cfg.interval),
        cfg.unhealthy_after,
        tr.policy,
        tr.runbook,
        humantime::format_duration(tr.cooldown)
    )));
    let ports = super::wiring::health_ports(&env)
        .await
        .map_err(health_error)?;
    let clock = ports.clock.clone();
    let mut det = health::detector(&env, ports).map_err(health_error)?;
    let http = crate::cloud::http::ReqwestHttp::new()
        .map_err(|e| AppError::cloud("cannot build the HTTP client", e))?;
    let mut seen = 0u32;
    loop {
        let ev = det.next_event().await;
        seen += 1;
        let decision = state.on_event(&tr, &ev, clock.now());
        let text = decision.describe(&ev);
        on(WatchEvent::Decision {
            at_ms: journal::now_ms(),
            text: text.clone(),
        });
        journal
            .note(
                &session,
                None,
                "zone_event",
                serde_json::to_value(&ev).unwrap_or_default(),
            )
            .await?;
        journal
            .note(
                &session,
                None,
                "trigger_decision",
                serde_json::to_value(&decision).unwrap_or_default(),
            )
            .await?;
        let started = act_on(app, &journal, &session, &env, &who, &decision, on).await?;
        if let Some(ep) = tr.notify.as_ref().and_then(|n| env.endpoints.get(&n.value)) {
            let body = serde_json::json!({"text": format!("failover watch {}: {text}{}", env.name, started.map(|s| format!(" -> {s}")).unwrap_or_default())}).to_string();
            let req = HttpRequest {
                method: ep.method.clone(),
                url: ep.url.clone(),
                headers: ep.headers.clone(),
                body: Some(body),
                timeout: ep.timeout,
            };
            if let Err(e) = http.send(&req).await {
                on(WatchEvent::NotifyFailed {
                    error: e.to_string(),
                });
            }
        }
        if max_events.is_some_and(|m| seen >= m) {
            journal
                .set_run_status(&session, RunStatus::Stopped, None, true)
                .await?;
            return Ok(());
        }
    }
}

/// Start the runbook a decision calls for (unless another run holds a lease on what it would
/// change); what to add to the notification.
async fn act_on(
    app: &App,
    journal: &Arc<dyn Store>,
    session: &RunId,
    env: &Environment,
    who: &str,
    decision: &TriggerDecision,
    on: &mut (dyn FnMut(WatchEvent) + Send),
) -> Result<Option<String>, AppError> {
    let (runbook, params, paused) = match decision {
        TriggerDecision::Start { runbook, params } => (runbook, params, false),
        TriggerDecision::StartPausedForApproval { runbook, params } => (runbook, params, true),
        _ => return Ok(None),
    };
    let p: Vec<(String, String)> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(busy) = leased(app, journal, env, runbook, &p).await? {
        let error = format!("not starting `{runbook}`: {busy}; it is already being handled");
        journal
            .note(
                session,
                None,
                "run_not_started",
                serde_json::json!({"error": error}),
            )
            .await?;
        on(WatchEvent::RunNotStarted {
            error: error.clone(),
        });
        return Ok(Some(error));
    }
    match start_triggered(app, &env.name, runbook, &p, who, paused) {
        Ok((id, log)) => {
            let how = if paused {
                format!("waiting for approval: failover approve {id} --by <name>")
            } else {
                "running".to_string()
            };
            journal
                .note(
                    session,
                    None,
                    "run_started",
                    serde_json::json!({"run": id, "paused": paused}),
                )
                .await?;
            on(WatchEvent::RunStarted {
                run_id: id.clone(),
                how: how.clone(),
                log,
            });
            Ok(Some(format!("run {id} {how}")))
        }
        Err(e) => {
            let error = e.to_string();
            journal
                .note(
                    session,
                    None,
                    "run_not_started",
                    serde_json::json!({"error": error}),
                )
                .await?;
            on(WatchEvent::RunNotStarted {
                error: error.clone(),
            });
            Ok(Some(format!("could not start the runbook: {error}")))
        }
    }
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
fn start_triggered(
    app: &App,
    env_name: &str,
    runbook: &str,
    params: &[(String, String)],
    initiator: &str,
    paused: bool,
) -> Result<(RunId, PathBuf), AppError> {
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
        .args([
            "run",
            runbook,
            "--env",
            env_name,
            "--by",
            initiator,
            "--run-id",
            id.as_str(),
        ]);
    for (k, v) in params {
        cmd.arg("-p").arg(format!("{k}={v}"));
    }
    if paused {
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
