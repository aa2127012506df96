//! Health probes in the simulated world: the `[health]` probes of an environment answered by
//! the simulator, so `failover watch`'s detector (`health::Detector`), its evaluator (quorum,
//! hysteresis, the observer rule) and the trigger policy run unchanged on virtual time.
//!
//! What each probe kind sees (timings from `cloud::model`):
//! - `http` / `tcp`: a zone that is down does not answer: the probe fails after its full
//!   timeout ("no answer within 2000ms"), never at once; a zone that is up answers within the
//!   topology's round trip (`timing.api_latency`). `probes-fail ZONE count N` makes the first N
//!   of the zone's http/tcp probes time out while the zone serves (a partial failure).
//! - `cloudwatch_alarm`: ALARM once the probe's zone has been down for the alarm's evaluation
//!   (3 one-minute periods, [`model::cloudwatch_alarm_detection`]), OK otherwise.
//! - `route53_health_check`: unhealthy once the zone has been down for the health check's
//!   interval x failure threshold ([`model::route53_health_check_detection`]: 90 s).
//! - `rds`: the instances' status as RDS reports it: available even in a zone that is down
//!   (RDS does not notice a network partition), `rebooting` during a Multi-AZ failover.
//! - `observer-down`: the prober's own network is down: every http/tcp probe times out, every
//!   API probe gets no answer (unknown), in every zone at once.
//!
//! A zone that flaps (`az-flap`) is down and up by halves of its period; each outage counts
//! from its own start, so an alarm or health check slower than the flap never fires.
//!
//! Probe rounds are not API calls of a run: they do not appear on the timeline, do not take
//! quota tokens, and draw their latencies from a generator of their own, so adding probes to a
//! simulation does not change what its runs see.

use super::world::World;
use super::SimCloud;
use crate::cloud::model;
use crate::health::config::{Check, HealthConfig, Probe, Target};
use crate::health::probes::{judge_http, judge_rds, Observation, Prober};
use crate::health::{Detector, HealthReport, HealthSource, Scope};
use crate::types::Zone;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `Prober` of a simulated world.
pub struct SimProber {
    cloud: Arc<SimCloud>,
    rng: Mutex<fastrand::Rng>,
    /// Every configured probe, in order: `probes-fail` takes the first N of a zone's.
    all: Vec<Probe>,
}

impl SimProber {
    pub fn new(cloud: Arc<SimCloud>, cfg: &HealthConfig, seed: u64) -> Self {
        Self {
            cloud,
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x0B5E_4E40)),
            all: cfg.probes.clone(),
        }
    }

    /// Whether `p` is one of the first `n` http/tcp probes of `zone`.
    fn among_first(&self, p: &Probe, zone: &Zone, n: u32) -> bool {
        self.all
            .iter()
            .filter(|q| q.target.zone() == Some(zone))
            .filter(|q| matches!(q.check, Check::Http { .. } | Check::Tcp { .. }))
            .take(n as usize)
            .any(|q| q.name == p.name)
    }

    /// What `p` sees now, and how long it takes to see it.
    fn judge(&self, w: &World, p: &Probe) -> (Observation, Duration) {
        let latency = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            w.api_latency_with(&mut rng).min(p.timeout)
        };
        let timeout = p.timeout;
        let network = matches!(p.check, Check::Http { .. } | Check::Tcp { .. });
        if w.observer_down() {
            let o = if network {
                no_answer(&p.check, timeout)
            } else {
                Observation::unknown(format!(
                    "the AWS API did not answer within {} (the prober's network is down)",
                    ms(timeout)
                ))
            };
            return (o.with_latency(timeout), timeout);
        }
        let now = w.now();
        let down_for = |z: &Zone| w.zone_down_since(z).map(|s| now.saturating_sub(s));
        let zone_down_for = match &p.target {
            Target::Zone(z) => down_for(z),
            Target::Region(r) => {
                let zones: Vec<&Zone> = w.topo.zones.iter().filter(|z| &z.region() == r).collect();
                zones
                    .iter()
                    .map(|z| down_for(z))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|v| v.into_iter().min())
                    .filter(|_| !zones.is_empty())
            }
        };
        let partial = p
            .target
            .zone()
            .is_some_and(|z| self.among_first(p, z, w.probes_failing(z)));
        match &p.check {
            Check::Http { .. } | Check::Tcp { .. } if zone_down_for.is_some() || partial => {
                (no_answer(&p.check, timeout).with_latency(timeout), timeout)
            }
            Check::Http { url, .. } => {
                let body = w
                    .endpoint_for(url)
                    .map(|(_, _, b)| b)
                    .unwrap_or_else(|| expected_body(&p.check));
                (judge_http(&p.check, 200, &body, latency), latency)
            }
            Check::Tcp { .. } => (
                Observation::pass(format!("connected in {}", ms(latency))).with_latency(latency),
                latency,
            ),
            Check::CloudwatchAlarm { alarm } => {
                let needed = model::cloudwatch_alarm_detection();
                let o = match zone_down_for {
                    Some(d) if d >= needed => Observation::fail(format!(
                        "ALARM: `{alarm}`: Threshold Crossed: {n} out of the last {n} datapoints were breaching",
                        n = model::CLOUDWATCH_DATAPOINTS_TO_ALARM
                    )),
                    _ => Observation::pass("OK"),
                };
                (o.with_latency(latency), latency)
            }
            Check::Route53HealthCheck { health_check_id } => {
                let n = model::ROUTE53_HEALTH_CHECKERS;
                let o = match zone_down_for {
                    Some(d) if d >= model::route53_health_check_detection() => Observation::fail(format!(
                        "health check {health_check_id}: 0 of {n} checkers report success (Failure: Connection timed out)"
                    )),
                    _ => Observation::pass(format!(
                        "health check {health_check_id}: {n} of {n} checkers report success"
                    )),
                };
                (o.with_latency(latency), latency)
            }
            Check::Rds { instances, .. } => {
                let found = w.instances_now(instances);
                (judge_rds(p, &found).with_latency(latency), latency)
            }
        }
    }
}

/// What a probe whose target does not answer reports once its timeout has passed.
fn no_answer(check: &Check, timeout: Duration) -> Observation {
    match check {
        Check::Tcp { .. } => Observation::fail(format!("no connection within {}", ms(timeout))),
        _ => Observation::fail(format!("no answer within {}", ms(timeout))),
    }
}

/// The body a healthy service answers an http probe that names no endpoint of the topology:
/// what the probe looks for.
fn expected_body(check: &Check) -> String {
    match check {
        Check::Http {
            body_contains: Some(b),
            ..
        } => b.clone(),
        _ => "ok".into(),
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[async_trait]
impl Prober for SimProber {
    /// Every probe of the attempt runs at once: the attempt ends when the slowest has its
    /// answer (or its timeout), as concurrent probes would.
    async fn attempt(&self, probes: &[Probe]) -> Vec<Observation> {
        let judged: Vec<(Observation, Duration)> = {
            let w = self.cloud.world();
            probes.iter().map(|p| self.judge(&w, p)).collect()
        };
        let slowest = judged.iter().map(|(_, d)| *d).max().unwrap_or_default();
        self.cloud.time.touch();
        self.cloud.time.sleep(slowest).await;
        judged.into_iter().map(|(o, _)| o).collect()
    }
}

/// `health.assert` steps in a simulation: rounds of the simulated probes, on virtual time.
pub struct SimHealth {
    cloud: Arc<SimCloud>,
    scope: Scope,
    cfg: HealthConfig,
    seed: u64,
}

impl SimHealth {
    pub fn new(cloud: Arc<SimCloud>, scope: Scope, cfg: HealthConfig, seed: u64) -> Self {
        Self {
            cloud,
            scope,
            cfg,
            seed,
        }
    }

    /// A detector of the environment's zones on the simulated probes and the virtual clock.
    pub fn detector(&self) -> Detector {
        Detector::new(
            self.scope.clone(),
            self.cfg.clone(),
            Arc::new(SimProber::new(self.cloud.clone(), &self.cfg, self.seed)),
            self.cloud.clock(),
        )
    }
}

#[async_trait]
impl HealthSource for SimHealth {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String> {
        let mut det = self.detector();
        let n = rounds.unwrap_or(self.cfg.unhealthy_after.max(self.cfg.healthy_after));
        for _ in 0..n.max(1) {
            det.next_round().await;
        }
        Ok(det.report())
    }
}
