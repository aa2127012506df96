//! The service's probes and watch loops: for every environment with `[health]` (not
//! simulated), the environment's detector runs continuously and reports to
//! [`super::health::Health`]. An
//! environment with `[health.trigger]` is watched as `failover watch` watches it (the same
//! [`Watcher`]: policy, quorum, hysteresis, cooldown, journal, notification); the run a
//! decision calls for is started in the service's own process ([`InService`]), as
//! `POST /v1/runs` starts one: the same lifecycle, leases and journal, stopped cleanly with
//! the service.

use super::health::WatchState;
use super::service::Service;
use crate::app::watch::{Launched, Launcher, Triggered, WatchEvent, Watcher};
use crate::app::{self, App, AppError};
use crate::engine::Stop;
use crate::env::Environment;
use crate::health::HealthReport;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use tokio::sync::watch;

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
        service.health.probing(&name);
        let (s, shutdown) = (service.clone(), shutdown.clone());
        tokio::spawn(async move { probe_or_watch(&s, &name, trigger, shutdown).await });
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
                s.health.set_watch(name, state);
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
    s.health.set_watch(name, state);
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
        if let Err(e) = w.fail_back_due(&s.app, &launcher, &mut on).await {
            tracing::warn!(env = %name, "the watch loop could not journal a failback: {e}");
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
