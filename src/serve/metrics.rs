//! `/metrics`: what the journal says happened (every process's runs, read from the event feed),
//! what this service sees (zone health, runs in progress, its journal writes), and what is shed
//! now, in the Prometheus text format (OpenMetrics), encoded by the Prometheus client crate.
//!
//! - `failover_runs_started_total{runbook,environment,mode}` and
//!   `failover_runs_total{runbook,environment,mode,outcome}` (outcome: the final status);
//! - `failover_service_runs_in_progress`: runs this service's process is running;
//! - `failover_step_duration_seconds{runbook,step,status}` (histogram, first start to end);
//! - `failover_aws_calls_total{service,operation,result}`: every mutating call, from its
//!   journaled outcome (result: ok, throttled, failed);
//! - `failover_aws_requests_total{service,result}`: every request (reads included) of every
//!   run that ended, from the counts each run journals;
//! - `failover_zone_health{environment,zone,state}`: 1 for the zone's current state (unknown,
//!   healthy, unhealthy), from the service's probes;
//! - `failover_probe_requests_total{environment,service,result}`: the AWS requests of the
//!   service's probes (CloudWatch, RDS, Route 53), as their limiter counts them;
//! - `failover_shed_tier{environment,tier}`: 1 while a tier is shed;
//! - `failover_readiness{runbook,environment,zone}`: 1 when the runbook's dry-run plan for
//!   that zone has no problem (it would succeed today), 0 when it has one (serve::readiness);
//! - `failover_last_successful_drill_timestamp_seconds{runbook,environment}`: when the last
//!   drill that succeeded ended (drills run by any process, read from the journal);
//! - `failover_journal_write_seconds{durable}` (histogram) and `failover_journal_events_seen`.
//!
//! Counters count from the service's start (the Prometheus way: `increase()` over them).

use crate::health::HealthReport;
use crate::store::{Event, Store};
use crate::types::RunId;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn step_histogram() -> Histogram {
    // 0.1 s .. ~55 min.
    Histogram::new(exponential_buckets(0.1, 2.0, 16))
}

fn write_histogram() -> Histogram {
    // 0.1 ms .. ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What the feed remembers to label later events.
#[derive(Default)]
struct Seen {
    /// run -> (runbook, environment, mode)
    runs: HashMap<RunId, (String, String, String)>,
    /// (run, step) -> when it first started (journal ms)
    steps: HashMap<(RunId, String), i64>,
}

pub struct Metrics {
    registry: Registry,
    runs_started: Family<Labels, Counter>,
    runs: Family<Labels, Counter>,
    in_progress: Gauge,
    steps: Family<Labels, Histogram>,
    calls: Family<Labels, Counter>,
    requests: Family<Labels, Counter>,
    zone_health: Family<Labels, Gauge>,
    probe_requests: Family<Labels, Counter>,
    /// The probes' counts as last reported, by environment (reports carry totals).
    probe_counts: Mutex<HashMap<String, crate::cloud::model::CallCounts>>,
    shed: Family<Labels, Gauge>,
    readiness: Family<Labels, Gauge>,
    last_drill: Family<Labels, Gauge>,
    journal_writes: Family<Labels, Histogram>,
    events_seen: Gauge,
    seen: Mutex<Seen>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            runs_started: Family::default(),
            runs: Family::default(),
            in_progress: Gauge::default(),
            steps: Family::new_with_constructor(step_histogram),
            calls: Family::default(),
            requests: Family::default(),
            zone_health: Family::default(),
            probe_requests: Family::default(),
            probe_counts: Mutex::default(),
            shed: Family::default(),
            readiness: Family::default(),
            last_drill: Family::default(),
            journal_writes: Family::new_with_constructor(write_histogram),
            events_seen: Gauge::default(),
            seen: Mutex::new(Seen::default()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "failover_runs_started",
            "Runs started (or resumed: no), by runbook, environment and mode",
            m.runs_started.clone(),
        );
        r.register(
            "failover_runs",
            "Runs ended, by runbook, environment, mode and outcome (their final status)",
            m.runs.clone(),
        );
        r.register(
            "failover_service_runs_in_progress",
            "Runs this service's process is running now",
            m.in_progress.clone(),
        );
        r.register(
            "failover_step_duration_seconds",
            "Step durations, from the step's first start to its end",
            m.steps.clone(),
        );
        r.register("failover_aws_calls", "Mutating calls by service, operation and result (ok, throttled, failed), from their journaled outcomes", m.calls.clone());
        r.register("failover_aws_requests", "Requests (reads included) by service and result (ok, throttled, failed), counted by each run when it ends", m.requests.clone());
        r.register("failover_zone_health", "1 for each zone's current state (unknown, healthy, unhealthy), from the service's probes", m.zone_health.clone());
        r.register("failover_probe_requests", "AWS requests of the service's probes by environment, service and result (ok, throttled, failed)", m.probe_requests.clone());
        r.register(
            "failover_shed_tier",
            "1 while a traffic tier is shed, 0 otherwise",
            m.shed.clone(),
        );
        r.register("failover_readiness", "1 when the runbook's dry-run plan for the zone's failure has no problem (it would succeed today), 0 otherwise", m.readiness.clone());
        r.register("failover_last_successful_drill_timestamp_seconds", "When the last drill of the runbook on the environment that succeeded ended (Unix time), from the journal", m.last_drill.clone());
        r.register(
            "failover_journal_write_seconds",
            "Journal writes of this process: time to commit, waiting for the lock included",
            m.journal_writes.clone(),
        );
        r.register(
            "failover_journal_events_seen",
            "Sequence number of the last journal event the service has read",
            m.events_seen.clone(),
        );
        Metrics { registry, ..m }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A journal write of this process took `secs`.
    pub fn journal_write(&self, secs: f64, durable: bool) {
        let d = if durable { "true" } else { "false" };
        self.journal_writes
            .get_or_create(&labels(&[("durable", d)]))
            .observe(secs);
    }

    /// (runbook, environment, mode) of a run, from its `run_started` event or the journal.
    async fn run_labels(&self, run: &RunId, store: &dyn Store) -> (String, String, String) {
        if let Some(l) = self.seen().runs.get(run) {
            return l.clone();
        }
        let l = match store.run_exact(run).await {
            Ok(r) => (r.runbook, r.environment, r.mode.to_string()),
            Err(_) => ("?".into(), "?".into(), "?".into()),
        };
        self.seen().runs.insert(run.clone(), l.clone());
        l
    }

    /// Count what one journal event says.
    pub async fn observe_event(&self, e: &Event, store: &dyn Store) {
        self.events_seen.set(e.seq);
        let s = |k: &str| {
            e.data
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("?")
                .to_string()
        };
        match e.kind.as_str() {
            "run_started" => {
                let l = (s("runbook"), s("environment"), s("mode"));
                self.runs_started
                    .get_or_create(&labels(&[
                        ("runbook", &l.0),
                        ("environment", &l.1),
                        ("mode", &l.2),
                    ]))
                    .inc();
                self.seen().runs.insert(e.run_id.clone(), l);
            }
            "run_finished" => {
                let (rb, env, mode) = self.run_labels(&e.run_id, store).await;
                let outcome = s("status");
                self.runs
                    .get_or_create(&labels(&[
                        ("runbook", &rb),
                        ("environment", &env),
                        ("mode", &mode),
                        ("outcome", &outcome),
                    ]))
                    .inc();
                if mode == crate::status::RunMode::Drill.to_string()
                    && outcome == crate::status::RunStatus::Succeeded.to_string()
                {
                    self.last_drill
                        .get_or_create(&labels(&[("runbook", &rb), ("environment", &env)]))
                        .set(e.at / 1000);
                }
                self.seen().steps.retain(|(r, _), _| r != &e.run_id);
            }
            "step_started" => {
                if let Some(step) = &e.step_id {
                    self.seen()
                        .steps
                        .entry((e.run_id.clone(), step.clone()))
                        .or_insert(e.at);
                }
            }
            "step_finished" => self.step_finished(e, store).await,
            "outcome" => self.outcome(e),
            "calls" => self.requests(e),
            _ => {}
        }
    }

    async fn step_finished(&self, e: &Event, store: &dyn Store) {
        let Some(step) = &e.step_id else { return };
        let started = self.seen().steps.remove(&(e.run_id.clone(), step.clone()));
        let Some(started) = started else { return };
        let (rb, _, _) = self.run_labels(&e.run_id, store).await;
        let status = e.data.get("status").and_then(|v| v.as_str()).unwrap_or("?");
        let secs = (e.at - started).max(0) as f64 / 1000.0;
        self.steps
            .get_or_create(&labels(&[
                ("runbook", &rb),
                ("step", step),
                ("status", status),
            ]))
            .observe(secs);
    }

    fn outcome(&self, e: &Event) {
        let op = e.operation.clone().unwrap_or_default();
        let result = if e.data.get("ok").and_then(|v| v.as_bool()) == Some(true) {
            "ok"
        } else if e.data.get("kind").and_then(|v| v.as_str()) == Some("throttled") {
            "throttled"
        } else {
            "failed"
        };
        self.calls
            .get_or_create(&labels(&[
                ("service", service_of(&op)),
                ("operation", &op),
                ("result", result),
            ]))
            .inc();
    }

    /// The probes of `env` have made `now` calls since they started: count what is new. Probes
    /// started again (fewer calls than last reported) count from zero.
    fn probe_calls(&self, env: &str, now: &crate::cloud::model::CallCounts) {
        let last = self
            .probe_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(env.to_string(), now.clone())
            .filter(|l| l.total() <= now.total())
            .unwrap_or_default();
        let ok =
            |a: &crate::cloud::model::ApiCounts| a.total().saturating_sub(a.throttled + a.failed);
        for ((service, a), (_, b)) in now.services().into_iter().zip(last.services()) {
            if a.total() == 0 {
                continue;
            }
            let results = [
                ("ok", ok(a).saturating_sub(ok(b))),
                ("throttled", a.throttled.saturating_sub(b.throttled)),
                ("failed", a.failed.saturating_sub(b.failed)),
            ];
            for (result, n) in results {
                self.probe_requests
                    .get_or_create(&labels(&[
                        ("environment", env),
                        ("service", service),
                        ("result", result),
                    ]))
                    .inc_by(n);
            }
        }
    }

    fn requests(&self, e: &Event) {
        let Ok(c) = serde_json::from_value::<crate::cloud::model::CallCounts>(e.data.clone())
        else {
            return;
        };
        for (service, a) in c.services() {
            let ok = a.total().saturating_sub(a.throttled + a.failed);
            for (result, n) in [("ok", ok), ("throttled", a.throttled), ("failed", a.failed)] {
                self.requests
                    .get_or_create(&labels(&[("service", service), ("result", result)]))
                    .inc_by(n);
            }
        }
    }

    /// The latest health report of an environment.
    pub fn zone_health(&self, r: &HealthReport) {
        if let Some(c) = &r.aws_calls {
            self.probe_calls(&r.environment, c);
        }
        for z in &r.zones {
            let zone = z.status.target.to_string();
            for state in ["unknown", "healthy", "unhealthy"] {
                let now = z.status.state.to_string() == state;
                self.zone_health
                    .get_or_create(&labels(&[
                        ("environment", &r.environment),
                        ("zone", &zone),
                        ("state", state),
                    ]))
                    .set(i64::from(now));
            }
        }
    }

    /// A readiness verdict: 1 ready, 0 not.
    pub fn readiness(&self, runbook: &str, environment: &str, zone: &str, ready: bool) {
        self.readiness
            .get_or_create(&labels(&[
                ("runbook", runbook),
                ("environment", environment),
                ("zone", zone),
            ]))
            .set(i64::from(ready));
    }

    /// The metrics as text: `shed` is every tier of every ladder with whether it is shed now.
    pub fn render(&self, shed: &[(String, String, bool)], in_progress: usize) -> String {
        self.shed.clear();
        for (env, tier, on) in shed {
            self.shed
                .get_or_create(&labels(&[("environment", env), ("tier", tier)]))
                .set(i64::from(*on));
        }
        self.in_progress.set(in_progress as i64);
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!("encoding the metrics: {e}");
        }
        out
    }
}

/// The AWS service (or `http`) an operation belongs to.
fn service_of(operation: &str) -> &'static str {
    if operation == "ChangeResourceRecordSets" {
        "route53"
    } else if operation.ends_with("ZonalShift") {
        "arc"
    } else if operation.starts_with("HTTP") {
        "http"
    } else {
        "rds"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::model::CallCounts;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn the_probes_requests_count_what_each_report_adds() {
        let m = Metrics::new();
        let mut c = CallCounts::default();
        c.cloudwatch.reads = 3;
        m.probe_calls("local", &c);
        c.cloudwatch.reads = 5;
        c.cloudwatch.throttled = 1;
        c.rds.reads = 2;
        m.probe_calls("local", &c);
        let text = m.render(&[], 0);
        let cw = |result: &str| {
            sample(&text, &format!("failover_probe_requests_total{{environment=\"local\",service=\"cloudwatch\",result=\"{result}\"}}"))
        };
        // 6 requests: 5 ok, 1 throttled (a throttled read counts as a read).
        assert_eq!(cw("ok"), Some(5.0 - 1.0), "{text}");
        assert_eq!(cw("throttled"), Some(1.0), "{text}");
        assert_eq!(
            sample(&text, "failover_probe_requests_total{environment=\"local\",service=\"rds\",result=\"ok\"}"),
            Some(2.0),
            "{text}"
        );
        assert!(
            !text.contains("service=\"arc\""),
            "no calls, no series: {text}"
        );
        // The probes started again: their counts start from zero, and are added whole.
        let mut again = CallCounts::default();
        again.cloudwatch.reads = 2;
        m.probe_calls("local", &again);
        let text = m.render(&[], 0);
        let ok = sample(&text, "failover_probe_requests_total{environment=\"local\",service=\"cloudwatch\",result=\"ok\"}");
        assert_eq!(ok, Some(4.0 + 2.0), "{text}");
    }
}
