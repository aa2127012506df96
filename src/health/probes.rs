//! Probes: one round runs every probe concurrently, each bounded by its timeout, and turns what
//! it saw into [`ProbeResult`]s for the evaluator.
//!
//! - `http`: through the `HttpClient` port (reqwest, no connection reuse, so every probe opens
//!   a fresh connection as a new client would). Fails on an unexpected status, a body without
//!   the expected text, an answer slower than the latency budget, or no answer at all.
//! - `tcp`: a tokio `TcpStream::connect` to `host:port`.
//! - `cloudwatch_alarm`: one DescribeAlarms for all alarm probes of the round ([`Alarms`]).
//!   `ALARM` fails, `OK` passes, `INSUFFICIENT_DATA` is unknown.
//! - `rds`: one DescribeDBInstances for all RDS probes of the round (`Databases` port). The
//!   instances of the list that are in the probe's zone *now* are judged (a failover moves them);
//!   any status outside `healthy_statuses` fails.
//! - `route53_health_check`: GetHealthCheckStatus ([`HealthChecks`]); healthy when more than
//!   18% of the checkers report success.
//!
//! A probe that cannot run — its own error, missing credentials, an AWS API that fails or does
//! not answer in time, a misconfigured name — is `Unknown`, never `Fail`: only the target's
//! own behaviour can fail a probe. Timeouts are measured on the injected [`Clock`], so the
//! same code runs on tokio's paused clock.
//!
//! `http` and `tcp` probes that fail are attempted again within the round, up to `attempts`
//! times in all (a lost packet is not a failed zone); API probes are not (the API would say the
//! same a millisecond later).

use super::config::{Check, Probe, Target};
use super::eval::{Outcome, ProbeResult, Round};
use super::ports::{AlarmValue, Alarms, HealthChecks};
use crate::cloud::{
    Clock, CloudError, Databases, ErrorKind, HttpClient, HttpRequest, InstanceState,
};
use crate::types::InstanceId;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What one attempt at one probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub outcome: Outcome,
    pub detail: String,
    pub latency: Option<Duration>,
}

impl Observation {
    pub fn pass(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Pass,
            detail: detail.into(),
            latency: None,
        }
    }
    pub fn fail(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Fail,
            detail: detail.into(),
            latency: None,
        }
    }
    pub fn unknown(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Unknown,
            detail: detail.into(),
            latency: None,
        }
    }
    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = Some(d);
        self
    }
}

/// Runs probes. The live implementation is [`LiveProber`]; simulations and tests substitute
/// their own.
#[async_trait]
pub trait Prober: Send + Sync {
    /// One attempt at each probe, all concurrently, each bounded by its own timeout. Returns
    /// one observation per probe, in order.
    async fn attempt(&self, probes: &[Probe]) -> Vec<Observation>;
}

/// The edges health probes talk to. Only the ports the configured probes need must be set;
/// a probe whose port is missing is `Unknown`.
#[derive(Clone)]
pub struct HealthPorts {
    pub http: Arc<dyn HttpClient>,
    pub alarms: Option<Arc<dyn Alarms>>,
    pub db: Option<Arc<dyn Databases>>,
    pub checks: Option<Arc<dyn HealthChecks>>,
    pub clock: Arc<dyn Clock>,
}

impl HealthPorts {
    /// HTTP and TCP only (a probe client without connection reuse), on the given clock.
    pub fn new(clock: Arc<dyn Clock>, connect_timeout: Duration) -> Result<Self, CloudError> {
        Ok(Self {
            http: Arc::new(probe_http_client(connect_timeout)?),
            alarms: None,
            db: None,
            checks: None,
            clock,
        })
    }
    pub fn with_alarms(mut self, a: Arc<dyn Alarms>) -> Self {
        self.alarms = Some(a);
        self
    }
    pub fn with_databases(mut self, d: Arc<dyn Databases>) -> Self {
        self.db = Some(d);
        self
    }
    pub fn with_health_checks(mut self, c: Arc<dyn HealthChecks>) -> Self {
        self.checks = Some(c);
        self
    }
}

/// A reqwest client for probes: no idle connections kept, so each probe connects afresh.
pub fn probe_http_client(
    connect_timeout: Duration,
) -> Result<crate::cloud::http::ReqwestHttp, CloudError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("failover-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            CloudError::new(
                ErrorKind::Other,
                "HTTP client",
                "-",
                format!("cannot build the probe HTTP client: {e}"),
            )
        })?;
    Ok(crate::cloud::http::ReqwestHttp::from_client(client))
}

/// Probes the real world through [`HealthPorts`].
#[derive(Clone)]
pub struct LiveProber {
    ports: HealthPorts,
}

impl LiveProber {
    pub fn new(ports: HealthPorts) -> Self {
        Self { ports }
    }
}

/// `f`, unless `d` passes first on `clock`.
pub async fn within<T>(clock: &dyn Clock, d: Duration, f: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        v = f => Some(v),
        _ = clock.sleep(d) => None,
    }
}

fn elapsed(clock: &dyn Clock, since: SystemTime) -> Duration {
    clock.now().duration_since(since).unwrap_or_default()
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{}us", d.as_micros())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn unreadable(what: &str, e: &CloudError) -> Observation {
    Observation::unknown(format!("{what}: {e}; {}", e.kind.hint()))
}

#[async_trait]
impl Prober for LiveProber {
    async fn attempt(&self, probes: &[Probe]) -> Vec<Observation> {
        let mut set: tokio::task::JoinSet<Vec<(usize, Observation)>> = tokio::task::JoinSet::new();
        let mut alarms = vec![];
        let mut rds = vec![];
        for (i, p) in probes.iter().enumerate() {
            match &p.check {
                Check::Http { .. } => {
                    let (ports, p) = (self.ports.clone(), p.clone());
                    set.spawn(async move { vec![(i, http_probe(&ports, &p).await)] });
                }
                Check::Tcp { address } => {
                    let (clock, address, timeout) =
                        (self.ports.clock.clone(), address.clone(), p.timeout);
                    set.spawn(
                        async move { vec![(i, tcp_probe(&*clock, &address, timeout).await)] },
                    );
                }
                Check::CloudwatchAlarm { alarm } => alarms.push((i, alarm.clone(), p.timeout)),
                Check::Rds { .. } => rds.push((i, p.clone())),
                Check::Route53HealthCheck { health_check_id } => {
                    let (ports, id, timeout) =
                        (self.ports.clone(), health_check_id.clone(), p.timeout);
                    set.spawn(async move { vec![(i, route53_probe(&ports, &id, timeout).await)] });
                }
            }
        }
        if !alarms.is_empty() {
            let ports = self.ports.clone();
            set.spawn(async move { alarm_probes(&ports, alarms).await });
        }
        if !rds.is_empty() {
            let ports = self.ports.clone();
            set.spawn(async move { rds_probes(&ports, rds).await });
        }
        let mut out: Vec<Option<Observation>> = vec![None; probes.len()];
        while let Some(done) = set.join_next().await {
            match done {
                Ok(obs) => {
                    for (i, o) in obs {
                        out[i] = Some(o);
                    }
                }
                Err(e) => tracing::error!("a health probe task ended abnormally: {e}"),
            }
        }
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Observation::unknown(
                        "the probe ended abnormally (see the log); this is a bug in failover",
                    )
                })
            })
            .collect()
    }
}

async fn http_probe(ports: &HealthPorts, p: &Probe) -> Observation {
    let Check::Http { url, method, .. } = &p.check else {
        return Observation::unknown("not an http probe");
    };
    let req = HttpRequest {
        method: method.clone(),
        url: url.clone(),
        headers: vec![],
        body: None,
        timeout: p.timeout,
    };
    let clock = &*ports.clock;
    let start = clock.now();
    match within(clock, p.timeout, ports.http.send(&req)).await {
        None => {
            Observation::fail(format!("no answer within {}", ms(p.timeout))).with_latency(p.timeout)
        }
        Some(Err(e)) if e.kind == ErrorKind::InvalidRequest => Observation::unknown(format!(
            "the probe's request is invalid: {}; fix the probe in [health]",
            e.message
        )),
        Some(Err(e)) => Observation::fail(e.message).with_latency(elapsed(clock, start)),
        Some(Ok(resp)) => judge_http(&p.check, resp.status, &resp.body, elapsed(clock, start)),
    }
}

/// Judges an HTTP answer against an `http` check: status, body, then latency.
pub fn judge_http(check: &Check, status: u16, body: &str, latency: Duration) -> Observation {
    let Check::Http {
        expect_status,
        latency_budget,
        body_contains,
        ..
    } = check
    else {
        return Observation::unknown("not an http probe");
    };
    let status_ok = if expect_status.is_empty() {
        (200..300).contains(&status)
    } else {
        expect_status.contains(&status)
    };
    let obs = if !status_ok {
        let want = if expect_status.is_empty() {
            "2xx".to_string()
        } else {
            expect_status
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        };
        Observation::fail(format!("HTTP {status}, expected {want}"))
    } else if let Some(needle) = body_contains.as_deref().filter(|n| !body.contains(n)) {
        Observation::fail(format!(
            "HTTP {status} but the body does not contain {needle:?}"
        ))
    } else if let Some(budget) = latency_budget.filter(|b| latency > *b) {
        Observation::fail(format!(
            "HTTP {status} in {}, over the {} latency budget",
            ms(latency),
            ms(budget)
        ))
    } else {
        Observation::pass(format!("HTTP {status} in {}", ms(latency)))
    };
    obs.with_latency(latency)
}

async fn tcp_probe(clock: &dyn Clock, address: &str, timeout: Duration) -> Observation {
    let start = clock.now();
    match within(clock, timeout, tokio::net::TcpStream::connect(address)).await {
        None => {
            Observation::fail(format!("no connection within {}", ms(timeout))).with_latency(timeout)
        }
        Some(Ok(_stream)) => {
            let t = elapsed(clock, start);
            Observation::pass(format!("connected in {}", ms(t))).with_latency(t)
        }
        Some(Err(e)) => {
            let what = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                _ => format!("cannot connect: {e}"),
            };
            Observation::fail(what).with_latency(elapsed(clock, start))
        }
    }
}

async fn alarm_probes(
    ports: &HealthPorts,
    probes: Vec<(usize, String, Duration)>,
) -> Vec<(usize, Observation)> {
    let all = |o: Observation| {
        probes
            .iter()
            .map(|(i, _, _)| (*i, o.clone()))
            .collect::<Vec<_>>()
    };
    let Some(alarms) = &ports.alarms else {
        return all(Observation::unknown("no CloudWatch client is configured for health probes; this is a wiring bug in failover"));
    };
    let names: Vec<String> = probes
        .iter()
        .map(|(_, n, _)| n.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let timeout = probes.iter().map(|(_, _, t)| *t).max().unwrap_or_default();
    let start = ports.clock.now();
    let states = match within(&*ports.clock, timeout, alarms.alarm_states(&names)).await {
        None => {
            return all(Observation::unknown(format!(
                "CloudWatch DescribeAlarms did not answer within {}",
                ms(timeout)
            )))
        }
        Some(Err(e)) => return all(unreadable("cannot read the alarm", &e)),
        Some(Ok(s)) => s,
    };
    probes
        .iter()
        .map(|(i, name, _)| {
            let obs = match states.iter().find(|s| &s.name == name) {
                None => Observation::unknown(format!("alarm `{name}` does not exist in this account and region; check the name in [health]")),
                Some(s) => {
                    let since = s.updated.map(|t| format!(" since {}", super::eval::fmt_time(t))).unwrap_or_default();
                    match &s.value {
                        AlarmValue::Alarm => Observation::fail(format!("ALARM{since}: {}", s.reason)),
                        AlarmValue::Ok => Observation::pass(format!("OK{since}")),
                        AlarmValue::InsufficientData => Observation::unknown(format!("INSUFFICIENT_DATA{since}: the alarm has no data to judge")),
                        AlarmValue::Other(v) => Observation::unknown(format!("alarm state {v} is not one this tool knows")),
                    }
                }
            };
            (*i, obs.with_latency(elapsed(&*ports.clock, start)))
        })
        .collect()
}

async fn rds_probes(ports: &HealthPorts, probes: Vec<(usize, Probe)>) -> Vec<(usize, Observation)> {
    let all = |o: Observation| {
        probes
            .iter()
            .map(|(i, _)| (*i, o.clone()))
            .collect::<Vec<_>>()
    };
    let Some(db) = &ports.db else {
        return all(Observation::unknown(
            "no RDS client is configured for health probes; this is a wiring bug in failover",
        ));
    };
    let mut ids: Vec<InstanceId> = vec![];
    for (_, p) in &probes {
        if let Check::Rds { instances, .. } = &p.check {
            for id in instances {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
    }
    let timeout = probes
        .iter()
        .map(|(_, p)| p.timeout)
        .max()
        .unwrap_or_default();
    let start = ports.clock.now();
    let found = match within(&*ports.clock, timeout, db.describe_instances(&ids)).await {
        None => {
            return all(Observation::unknown(format!(
                "RDS DescribeDBInstances did not answer within {}",
                ms(timeout)
            )))
        }
        Some(Err(e)) => return all(unreadable("cannot read the DB instances", &e)),
        Some(Ok(f)) => f,
    };
    probes
        .iter()
        .map(|(i, p)| {
            (
                *i,
                judge_rds(p, &found).with_latency(elapsed(&*ports.clock, start)),
            )
        })
        .collect()
}

/// Judges the RDS instances of a probe: those of its list that are in its zone now must all
/// have a healthy status.
pub fn judge_rds(p: &Probe, found: &[InstanceState]) -> Observation {
    let Check::Rds {
        instances,
        healthy_statuses,
    } = &p.check
    else {
        return Observation::unknown("not an rds probe");
    };
    let by_id: HashMap<String, &InstanceState> = found
        .iter()
        .map(|s| (s.id.as_str().to_ascii_lowercase(), s))
        .collect();
    let missing: Vec<&str> = instances
        .iter()
        .filter(|i| !by_id.contains_key(&i.as_str().to_ascii_lowercase()))
        .map(|i| i.as_str())
        .collect();
    let here: Vec<&InstanceState> = instances
        .iter()
        .filter_map(|i| by_id.get(&i.as_str().to_ascii_lowercase()).copied())
        .filter(|s| match &p.target {
            Target::Zone(z) => s.zone.as_ref() == Some(z),
            Target::Region(_) => true,
        })
        .collect();
    let missing_note = if missing.is_empty() {
        String::new()
    } else {
        format!(
            " (not found: {}; check the names in [health])",
            missing.join(", ")
        )
    };
    if here.is_empty() {
        return Observation::unknown(format!(
            "none of the listed instances is in {} now{missing_note}",
            p.target
        ));
    }
    let bad: Vec<String> = here
        .iter()
        .filter(|s| {
            !healthy_statuses
                .iter()
                .any(|h| h.eq_ignore_ascii_case(s.status.as_str()))
        })
        .map(|s| format!("{} is {}", s.id, s.status))
        .collect();
    if bad.is_empty() {
        Observation::pass(format!(
            "{} instance(s) {}{missing_note}",
            here.len(),
            healthy_statuses.join("/")
        ))
    } else {
        Observation::fail(format!("{}{missing_note}", bad.join(", ")))
    }
}

async fn route53_probe(ports: &HealthPorts, id: &str, timeout: Duration) -> Observation {
    let Some(checks) = &ports.checks else {
        return Observation::unknown(
            "no Route 53 client is configured for health probes; this is a wiring bug in failover",
        );
    };
    let start = ports.clock.now();
    let result = within(&*ports.clock, timeout, checks.health_check_status(id)).await;
    let took = elapsed(&*ports.clock, start);
    let obs = match result {
        None => Observation::unknown(format!(
            "Route 53 GetHealthCheckStatus did not answer within {}",
            ms(timeout)
        )),
        Some(Err(e)) if e.kind == ErrorKind::NotFound => Observation::unknown(format!(
            "health check `{id}` does not exist; check the id in [health]"
        )),
        Some(Err(e)) => unreadable("cannot read the health check", &e),
        Some(Ok(s)) => {
            let tally = format!(
                "{} of {} checkers report success",
                s.reporting_success, s.checkers
            );
            match s.is_healthy() {
                None => Observation::unknown("no Route 53 checker has reported yet"),
                Some(true) => Observation::pass(tally),
                Some(false) => Observation::fail(match &s.sample_failure {
                    Some(f) => format!("{tally} (18% needed): {f}"),
                    None => format!("{tally} (18% needed)"),
                }),
            }
        }
    };
    obs.with_latency(took)
}

/// One round: every probe once, then the failed `http`/`tcp` probes again, up to `attempts`
/// attempts in all. The round's time is taken from `clock` when it starts and ends.
pub async fn run_round(
    prober: &dyn Prober,
    probes: &[Probe],
    attempts: u32,
    clock: &dyn Clock,
) -> Round {
    let started = clock.now();
    let mut obs = prober.attempt(probes).await;
    let mut tries = vec![1u32; probes.len()];
    for _ in 1..attempts.max(1) {
        let again: Vec<usize> = (0..probes.len())
            .filter(|&i| obs[i].outcome == Outcome::Fail && probes[i].check.retries_within_round())
            .collect();
        if again.is_empty() {
            break;
        }
        let subset: Vec<Probe> = again.iter().map(|&i| probes[i].clone()).collect();
        let second = prober.attempt(&subset).await;
        for (j, &i) in again.iter().enumerate() {
            tries[i] += 1;
            if let Some(o) = second.get(j) {
                obs[i] = o.clone();
            }
        }
    }
    let results = probes
        .iter()
        .zip(obs)
        .zip(tries)
        .map(|((p, o), attempts)| ProbeResult {
            probe: p.name.clone(),
            target: p.target.clone(),
            kind: p.check.kind().to_string(),
            outcome: o.outcome,
            detail: if attempts > 1 && o.outcome == Outcome::Fail {
                format!("{} ({attempts} attempts)", o.detail)
            } else {
                o.detail
            },
            latency: o.latency,
            attempts,
        })
        .collect();
    Round {
        started,
        at: clock.now(),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::DbStatus;
    use crate::types::Zone;

    fn http(expect: Vec<u16>, budget: Option<u64>, body: Option<&str>) -> Check {
        Check::Http {
            url: "http://x/healthz".into(),
            method: "GET".into(),
            expect_status: expect,
            latency_budget: budget.map(Duration::from_millis),
            body_contains: body.map(str::to_string),
        }
    }

    #[test]
    fn http_answers_are_judged_by_status_body_and_latency() {
        // A table of cases: longer than a screen because it is data.
        let l = Duration::from_millis(30);
        let cases = [
            (
                http(vec![], None, None),
                200,
                "",
                l,
                Outcome::Pass,
                "HTTP 200 in 30ms",
            ),
            (
                http(vec![], None, None),
                204,
                "",
                l,
                Outcome::Pass,
                "HTTP 204 in 30ms",
            ),
            (
                http(vec![], None, None),
                503,
                "",
                l,
                Outcome::Fail,
                "HTTP 503, expected 2xx",
            ),
            (
                http(vec![200, 301], None, None),
                204,
                "",
                l,
                Outcome::Fail,
                "HTTP 204, expected 200 or 301",
            ),
            (
                http(vec![503], None, None),
                503,
                "",
                l,
                Outcome::Pass,
                "HTTP 503 in 30ms",
            ),
            (
                http(vec![], None, Some("ok")),
                200,
                "status: degraded",
                l,
                Outcome::Fail,
                "HTTP 200 but the body does not contain \"ok\"",
            ),
            (
                http(vec![], None, Some("ok")),
                200,
                "{\"status\":\"ok\"}",
                l,
                Outcome::Pass,
                "HTTP 200 in 30ms",
            ),
            (
                http(vec![], Some(20), None),
                200,
                "",
                l,
                Outcome::Fail,
                "HTTP 200 in 30ms, over the 20ms latency budget",
            ),
            (
                http(vec![], Some(30), None),
                200,
                "",
                l,
                Outcome::Pass,
                "HTTP 200 in 30ms",
            ),
        ];
        for (check, status, body, latency, outcome, detail) in cases {
            let o = judge_http(&check, status, body, latency);
            assert_eq!((o.outcome, o.detail.as_str()), (outcome, detail));
            assert_eq!(o.latency, Some(latency));
        }
    }

    /// An instance as the RDS adapter reports it (`status`: AWS's spelling).
    fn inst(id: &str, zone: &str, status: &str) -> InstanceState {
        InstanceState {
            id: InstanceId::from(id),
            cluster: None,
            status: DbStatus::from(status),
            engine: "aurora-postgresql".into(),
            zone: Some(Zone::from(zone)),
            secondary_zone: None,
            multi_az: false,
        }
    }

    #[test]
    fn rds_probes_judge_the_instances_in_their_zone_now() {
        let probe = Probe {
            name: "db-a".into(),
            target: Target::Zone(Zone::from("us-west-2a")),
            timeout: Duration::from_secs(2),
            check: Check::Rds {
                instances: vec!["db-1".into(), "db-2".into(), "db-3".into()],
                healthy_statuses: vec!["available".into()],
            },
        };
        let cases: Vec<(Vec<InstanceState>, Outcome, &str)> = vec![
            (
                vec![
                    inst("db-1", "us-west-2a", "available"),
                    inst("db-2", "us-west-2b", "rebooting"),
                    inst("db-3", "us-west-2a", "available"),
                ],
                Outcome::Pass,
                "2 instance(s) available",
            ),
            (
                vec![
                    inst("db-1", "us-west-2a", "available"),
                    inst("db-2", "us-west-2b", "available"),
                    inst("db-3", "us-west-2a", "failing-over"),
                ],
                Outcome::Fail,
                "db-3 is failing-over",
            ),
            (
                vec![
                    inst("DB-1", "us-west-2b", "available"),
                    inst("db-2", "us-west-2c", "available"),
                    inst("db-3", "us-west-2b", "available"),
                ],
                Outcome::Unknown,
                "none of the listed instances is in us-west-2a now",
            ),
            (
                vec![inst("db-1", "us-west-2a", "available")],
                Outcome::Pass,
                "1 instance(s) available (not found: db-2, db-3; check the names in [health])",
            ),
        ];
        for (found, outcome, detail) in cases {
            let o = judge_rds(&probe, &found);
            assert_eq!((o.outcome, o.detail.as_str()), (outcome, detail));
        }
    }
}
