//! The service's own probes: for every environment with `[health]` (not simulated), the
//! environment's detector runs continuously, as `failover health --watch` does; its latest
//! report answers `GET /v1/environments/{env}/health` and feeds the zone-health metric.

use super::metrics::Metrics;
use crate::app::{self, App};
use crate::env::Environment;
use crate::health::HealthReport;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The latest report of each probed environment.
#[derive(Default)]
pub struct Health {
    latest: Mutex<BTreeMap<String, Option<HealthReport>>>,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<HealthReport>>> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the service probes `env`, and its latest report (None before the first round).
    pub fn latest(&self, env: &str) -> Option<Option<HealthReport>> {
        self.lock().get(env).cloned()
    }

    /// Start probing every environment with `[health]` until `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        app: &App,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) {
        for name in Environment::list(&app.config_dir) {
            let Ok(loaded) = app::load::load_env(&app.config_dir, &name) else {
                continue;
            };
            if loaded.env.health.is_none() || loaded.target.simulated().is_some() {
                continue;
            }
            self.lock().insert(name.clone(), None);
            let (me, app, metrics, mut shutdown) =
                (self.clone(), app.clone(), metrics.clone(), shutdown.clone());
            tokio::spawn(async move {
                let mut on = |_: u32, r: &HealthReport| {
                    metrics.zone_health(r);
                    me.lock().insert(r.environment.clone(), Some(r.clone()));
                };
                tokio::select! {
                    r = app::inspect::health(&app, &name, 1, true, &mut on) => {
                        if let Err(e) = r {
                            tracing::warn!(env = %name, "the service's probes stopped: {e}");
                        }
                    }
                    _ = shutdown.changed() => {}
                }
            });
        }
    }
}
