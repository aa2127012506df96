//! What the service's probes and watch loops (`serve::watch`) last saw: for every environment
//! with `[health]` (not simulated), its latest report, which answers
//! `GET /v1/environments/{env}/health` and feeds the zone-health metric, and, for an
//! environment with `[health.trigger]`, the watch loop's latest decisions.

use super::metrics::Metrics;
use crate::app::watch::WatchEvent;
use crate::health::HealthReport;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

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

    /// A new report of an environment (before the first: `probing`).
    pub(super) fn probing(&self, env: &str) {
        self.lock().reports.insert(env.to_string(), None);
    }

    /// What the watch loop of `env` is (or why there is none).
    pub(super) fn set_watch(&self, env: &str, state: WatchState) {
        self.lock().watches.insert(env.to_string(), state);
    }

    pub(super) fn reported(&self, metrics: &Metrics, r: &HealthReport) {
        metrics.zone_health(r);
        self.lock()
            .reports
            .insert(r.environment.clone(), Some(r.clone()));
    }

    pub(super) fn watch_event(&self, env: &str, e: &WatchEvent) {
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
            WatchEvent::Role { leading, text } => {
                Some(serde_json::json!({"leading": leading, "text": text}))
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
}
