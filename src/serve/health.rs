//! The service's own probes and watch loops: for every environment with `[health]` (not
//! simulated), the environment's detector runs continuously; its latest report answers
//! `GET /v1/environments/{env}/health` and feeds the zone-health metric. An environment with
//! `[health.trigger]` is watched as `failover watch` watches it (the same [`app::watch::Watcher`]:
//! policy, quorum, hysteresis, cooldown, notification); the run a decision calls for is
//! started in the service's own process ([`InService`]), as `POST /v1/runs` starts one.

use super::metrics::Metrics;
use super::service::Service;
use crate::app::watch::{Launched, Launcher, Triggered, WatchEvent, Watcher};
use crate::app::{self, App, AppError};
use crate::engine::Stop;
use crate::env::Environment;
use crate::health::HealthReport;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

/// How many of an environment's watch decisions the health endpoint shows.
const DECISIONS_KEPT: usize = 20;

/// What the watch loop of an environment did, for the health endpoint.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchState {
    /// The watcher's one line (policy, runbook, cooldown), or why the environment is not
    /// watched (it is then only probed).
    pub summary: String,
    pub watching: bool,
    /// The newest last.
    pub decisions: VecDeque<serde_json::Value>,
}

#[derive(Default)]
struct Latest {
    reports: BTreeMap<String, Option<HealthReport>>,
    watches: BTreeMap<String, WatchState>,
}

/// The latest report of each probed environment, and what its watch loop decided.
#[derive(Default)]
pub struct Health {
    latest: Mutex<Latest>,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the service probes `env`, and its latest report (None before the first round).
    pub fn latest(&self, env: &str) -> Option<Option<HealthReport>> {
        self.lock().reports.get(env).cloned()
    }

    /// The watch loop of `env`, if the environment has `[health.trigger]`.
    pub fn watch_state(&self, env: &str) -> Option<WatchState> {
        self.lock().watches.get(env).cloned()
    }

    fn reported(&self, metrics: &Metrics, r: &HealthReport) {
        metrics.zone_health(r);
        self.lock()
            .reports
            .insert(r.environment.clone(), Some(r.clone()));
    }

    fn watch_event(&self, env: &str, e: &WatchEvent) {
        let v = match e {
            WatchEvent::Started(_) | WatchEvent::NotifyFailed { .. } => None,
            WatchEvent::Decision {
                at_ms,
                text,
                decision,
            } => Some(serde_json::json!({"at_ms": at_ms, "text": text, "decision": decision})),
            WatchEvent::RunStarted { run_id, how, .. } => {
                Some(serde_json::json!({"run_started": run_id, "text": how}))
            }
            WatchEvent::RunNotStarted { error } => {
                Some(serde_json::json!({"run_not_started": error}))
            }
        };
        if let WatchEvent::NotifyFailed { error } = e {
            tracing::warn!(env, "watch notification failed: {error}");
        }
        let Some(v) = v else { return };
        tracing::info!(env, "watch: {v}");
        let mut l = self.lock();
        let w = l.watches.entry(env.to_string()).or_default();
        w.decisions.push_back(v);
        while w.decisions.len() > DECISIONS_KEPT {
            w.decisions.pop_front();
        }
    }

    /// Start probing every environment with `[health]` until `shutdown`, and watching (and
    /// acting on) those with `[health.trigger]`.
    pub fn start(service: &Arc<Service>, shutdown: watch::Receiver<bool>) {
        let app = &service.app;
        for name in Environment::list(&app.config_dir) {
            let Ok(loaded) = app::load::load_env(&app.config_dir, &name) else {
                continue;
            };
            let Some(h) = loaded.env.health.as_ref() else {
                continue;
            };
            if loaded.target.simulated().is_some() {
                continue;
            }
            let trigger = h.trigger.is_some();
            service.health.lock().reports.insert(name.clone(), None);
            let (s, shutdown) = (service.clone(), shutdown.clone());
            tokio::spawn(async move { probe_or_watch(&s, &name, trigger, shutdown).await });
        }
    }
}

/// Watch `name` (when it has a trigger and its watcher starts), else only probe it.
async fn probe_or_watch(
    s: &Arc<Service>,
    name: &str,
    trigger: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    if trigger {
        match Watcher::open(&s.app, name).await {
            Ok(w) => return watch_env(s, name, w, shutdown).await,
            Err(e) => {
                let summary = format!("not watching (probes only): {e}");
                tracing::warn!(env = %name, "{summary}");
                let state = WatchState {
                    summary,
                    ..Default::default()
                };
                s.health.lock().watches.insert(name.to_string(), state);
            }
        }
    }
    let (h, m) = (s.health.clone(), s.metrics.clone());
    let mut on = |_: u32, r: &HealthReport| h.reported(&m, r);
    tokio::select! {
        r = app::inspect::health(&s.app, name, 1, true, &mut on) => {
            if let Err(e) = r {
                tracing::warn!(env = %name, "the service's probes stopped: {e}");
            }
        }
        _ = shutdown.changed() => {}
    }
}

/// The watch loop of one environment, runs started in this process, until `stop`; then its
/// journal session ends `stopped`. A round of probes in flight is dropped; a decision being
/// acted on is finished first.
async fn watch_env(s: &Arc<Service>, name: &str, mut w: Watcher, mut stop: watch::Receiver<bool>) {
    let launcher = InService {
        service: Arc::downgrade(s),
    };
    let state = WatchState {
        summary: w.describe(),
        watching: true,
        decisions: VecDeque::new(),
    };
    tracing::info!(env = %name, "{}", state.summary);
    s.health.lock().watches.insert(name.to_string(), state);
    let h = s.health.clone();
    let mut on = |e: WatchEvent| h.watch_event(name, &e);
    loop {
        let events = tokio::select! {
            ev = w.next_round() => ev,
            _ = stop.changed() => break,
        };
        s.health.reported(&s.metrics, &w.report());
        for ev in events {
            if let Err(e) = w.handle(&s.app, &launcher, &ev, &mut on).await {
                tracing::warn!(env = %name, "the watch loop could not journal a decision: {e}");
            }
        }
    }
    if let Err(e) = w.close().await {
        tracing::warn!(env = %name, "closing the watch session: {e}");
    }
}

/// The service's launcher: a run a watch decision calls for runs in the service's process,
/// as `POST /v1/runs` runs one (the same lifecycle, leases and journal), and stops cleanly
/// with the service.
pub struct InService {
    service: Weak<Service>,
}

#[async_trait::async_trait]
impl Launcher for InService {
    async fn launch(&self, app: &App, run: Triggered) -> Result<Launched, AppError> {
        let Some(s) = self.service.upgrade() else {
            return Err(AppError::Refused("the service is shutting down".into()));
        };
        if s.refuse_if_stopping().is_err() {
            return Err(AppError::Refused(
                "the service is shutting down; no run is started".into(),
            ));
        }
        let stop = Stop::default();
        let order = app::run::RunOrder {
            runbook: run.runbook,
            env: run.env,
            params: run.params,
            by: Some(run.initiator),
            require_approval: run.paused,
            run_id: None,
            stop: stop.clone(),
        };
        let prepared = app::run::prepare_run(app, order)?;
        let id = prepared.run_id().clone();
        let app = app.clone();
        let work =
            move |h: tokio::runtime::Handle, rep| h.block_on(app::run::run(&app, prepared, rep));
        s.runs.launch(id.clone(), stop, Box::new(work)).await?;
        Ok(Launched {
            run_id: id,
            log: None,
        })
    }
}
