//! Continuous readiness: every `readiness_interval`, for each runbook of the service's
//! directory that takes a zone and binds to an environment, and each zone of it, the dry-run
//! plan for that zone, and the region runbook of an environment's `[health.region_trigger]`
//! for its home region (`app::readiness`), judged by the pure `readiness` verdict: would it
//! succeed today, and why not. The latest verdicts answer `GET /v1/readiness`, feed
//! `failover_readiness{runbook,environment,zone}`, and a check that turns red is notified once
//! to the environment's `readiness_notify` endpoint.

use super::catalog::Catalog;
use super::metrics::Metrics;
use crate::app::{self, readiness::Check, App};
use crate::cloud::{HttpClient, HttpRequest};
use crate::env::Environment;
use crate::readiness::{self, Reason};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The latest verdict of one check.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub runbook: String,
    pub environment: String,
    /// The zone whose failure the check supposes, or for a region runbook the region.
    pub zone: String,
    /// `zone` or `region`.
    pub scope: &'static str,
    pub ready: bool,
    pub reasons: Vec<Reason>,
    /// When it was checked, and since when it has had this verdict (epoch ms).
    pub checked_at_ms: i64,
    pub since_ms: i64,
}

#[derive(Default)]
struct State {
    /// By (environment, runbook, zone).
    entries: BTreeMap<(String, String, String), Entry>,
    rounds: u64,
    last_round_ms: Option<i64>,
}

/// The readiness of every check, as of the last round.
pub struct Readiness {
    /// None: the loop is off.
    pub interval: Option<Duration>,
    /// The endpoint (of each environment) told when a check turns red.
    pub notify: Option<String>,
    state: Mutex<State>,
}

impl Readiness {
    pub fn new(interval: Option<Duration>, notify: Option<String>) -> Self {
        Self {
            interval,
            notify,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdicts (of one environment, or all), as the API answers them.
    pub fn document(&self, env: Option<&str>) -> serde_json::Value {
        let st = self.lock();
        let entries: Vec<&Entry> = st
            .entries
            .values()
            .filter(|e| env.is_none_or(|n| e.environment == n))
            .collect();
        serde_json::json!({
            "enabled": self.interval.is_some(),
            "interval_s": self.interval.map(|d| d.as_secs_f64()),
            "rounds": st.rounds,
            "last_round_ms": st.last_round_ms,
            "ready": entries.iter().all(|e| e.ready),
            "checks": entries,
        })
    }

    /// Record a verdict; whether the check turned red.
    fn record(&self, c: &Check, v: readiness::Verdict, now: i64) -> (bool, Entry) {
        let mut st = self.lock();
        let key = (c.env.clone(), c.runbook.clone(), c.target.clone());
        let before = st.entries.get(&key).map(|e| (e.ready, e.since_ms));
        let red = readiness::turned_red(before.map(|b| b.0), v.ready);
        let since_ms = match before {
            Some((ready, since)) if ready == v.ready => since,
            _ => now,
        };
        let e = Entry {
            runbook: c.runbook.clone(),
            environment: c.env.clone(),
            zone: c.target.clone(),
            scope: c.scope,
            ready: v.ready,
            reasons: v.reasons,
            checked_at_ms: now,
            since_ms,
        };
        st.entries.insert(key, e.clone());
        (red, e)
    }

    fn round_done(&self, now: i64) {
        let mut st = self.lock();
        st.rounds += 1;
        st.last_round_ms = Some(now);
    }
}

/// What the loop works with.
pub struct Loop {
    pub app: App,
    pub catalog: Catalog,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
}

/// Check readiness every interval until `shutdown` (the first round at once).
pub fn start(s: Loop, mut shutdown: watch::Receiver<bool>) {
    let Some(interval) = s.readiness.interval else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = round(&s) => {}
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    });
}

/// One round: every check of every environment, one after the other (read-only calls; the
/// limiter spaces them as for any plan).
async fn round(s: &Loop) {
    let files: Vec<_> = s.catalog.entries().into_iter().map(|e| e.file).collect();
    let http = crate::cloud::http::ReqwestHttp::new().ok();
    for env in Environment::list(&s.app.config_dir) {
        for c in app::readiness::checks(&s.app, &files, &env) {
            let (app, check) = (s.app.clone(), c.clone());
            let h = tokio::runtime::Handle::current();
            let v = tokio::task::spawn_blocking(move || {
                h.block_on(app::readiness::check(&app, &check))
            })
            .await
            .unwrap_or_else(|e| {
                readiness::of_cause(readiness::Cause::Other, &format!("the check failed: {e}"))
            });
            let (red, entry) = s.readiness.record(&c, v, crate::journal::now_ms());
            s.metrics
                .readiness(&entry.runbook, &entry.environment, &entry.zone, entry.ready);
            if red {
                tracing::warn!(runbook = %entry.runbook, env = %entry.environment, zone = %entry.zone, "readiness turned red");
                if let Some(http) = &http {
                    notify(s, http, &entry).await;
                }
            }
        }
    }
    s.readiness.round_done(crate::journal::now_ms());
}

/// Tell the environment's `readiness_notify` endpoint that a check turned red.
async fn notify(s: &Loop, http: &dyn HttpClient, e: &Entry) {
    let Some(name) = &s.readiness.notify else {
        return;
    };
    let Ok(loaded) = app::load::load_env(&s.app.config_dir, &e.environment) else {
        return;
    };
    let Some(ep) = loaded.env.endpoints.get(name) else {
        tracing::warn!(env = %e.environment, "readiness_notify: environment has no endpoint `{name}`; nobody was told");
        return;
    };
    let why: Vec<String> = e.reasons.iter().map(|r| r.text.clone()).collect();
    let text = format!(
        "failover readiness: `{}` on {} would not succeed if {} failed: {}",
        e.runbook,
        e.environment,
        e.zone,
        why.join("; ")
    );
    let req = HttpRequest {
        method: ep.method.clone(),
        url: ep.url.clone(),
        headers: ep.headers.clone(),
        body: Some(serde_json::json!({"text": text}).to_string()),
        timeout: ep.timeout,
    };
    if let Err(err) = http.send(&req).await {
        tracing::warn!(env = %e.environment, "readiness notification failed: {err}");
    }
}
