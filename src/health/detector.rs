//! The detector loop: a round of probes every `interval`, fed to the evaluator, yielding
//! [`ZoneEvent`]s as zones change state.
//!
//! Rounds start on a fixed grid (`start + k * interval`) measured on the injected [`Clock`]; a
//! round that overruns skips the grid points it missed rather than bunching rounds together.
//! The first round runs at once. On tokio's paused clock (with [`crate::clock::TokioClock`]) a day of rounds
//! takes seconds, which is how the benchmark measures false triggers.

use super::config::HealthConfig;
use super::eval::{Evaluator, Round, ZoneEvent};
use super::probes::{run_round, HealthPorts, LiveProber, Prober};
use super::report::{HealthReport, Scope};
use super::HealthError;
use crate::cloud::Clock;
use crate::env::Environment;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Runs rounds on an interval and evaluates them.
pub struct Detector {
    scope: Scope,
    cfg: HealthConfig,
    evaluator: Evaluator,
    prober: Arc<dyn Prober>,
    clock: Arc<dyn Clock>,
    next_at: Option<SystemTime>,
    last: Option<Round>,
    pending: VecDeque<ZoneEvent>,
}

impl Detector {
    pub fn new(
        scope: Scope,
        cfg: HealthConfig,
        prober: Arc<dyn Prober>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let evaluator = Evaluator::from_config(&cfg);
        Self {
            scope,
            cfg,
            evaluator,
            prober,
            clock,
            next_at: None,
            last: None,
            pending: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &HealthConfig {
        &self.cfg
    }

    pub fn evaluator(&self) -> &Evaluator {
        &self.evaluator
    }

    /// The last round's raw results.
    pub fn last_round(&self) -> Option<&Round> {
        self.last.as_ref()
    }

    /// Waits for the next grid point (not for the first round), runs one round and evaluates
    /// it. Returns the events of that round; they are not queued for [`Detector::next_event`].
    pub async fn next_round(&mut self) -> Vec<ZoneEvent> {
        self.wait_for_tick().await;
        let round = run_round(
            &*self.prober,
            &self.cfg.probes,
            self.cfg.attempts,
            &*self.clock,
        )
        .await;
        let events = self.evaluator.observe(&round);
        for e in &events {
            tracing::info!(target = %e.target, became = ?e.became, observer_suspect = e.observer_suspect, "{}", e.why.summary);
        }
        self.last = Some(round);
        events
    }

    /// Runs rounds until a zone changes state, and returns that event. Several events of one
    /// round are returned one per call, in order.
    pub async fn next_event(&mut self) -> ZoneEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            let events = self.next_round().await;
            self.pending.extend(events);
        }
    }

    /// Runs forever, sending every event to `tx`; returns when the receiver is dropped.
    pub async fn run(mut self, tx: tokio::sync::mpsc::Sender<ZoneEvent>) {
        loop {
            let e = tokio::select! {
                e = self.next_event() => e,
                _ = tx.closed() => return,
            };
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }

    /// The current state of every zone, with the last round's probe results.
    pub fn report(&self) -> HealthReport {
        HealthReport::build(&self.scope, &self.cfg, &self.evaluator, self.last.as_ref())
    }

    async fn wait_for_tick(&mut self) {
        let interval = self.cfg.interval.max(Duration::from_millis(1));
        let now = self.clock.now();
        let Some(due) = self.next_at else {
            self.next_at = Some(now + interval);
            return;
        };
        if let Ok(wait) = due.duration_since(now) {
            if !wait.is_zero() {
                self.clock.sleep(wait).await;
            }
        }
        let now = self.clock.now();
        let mut next = due + interval;
        while next <= now {
            next += interval;
        }
        self.next_at = Some(next);
    }
}

/// A detector for `env` over `ports` (live probes, on the ports' clock).
pub fn detector(env: &Environment, ports: HealthPorts) -> Result<Detector, HealthError> {
    let cfg = super::config_of(env)?.clone();
    let clock = ports.clock.clone();
    Ok(Detector::new(
        Scope::of(env),
        cfg,
        Arc::new(LiveProber::new(ports)),
        clock,
    ))
}

/// `rounds` rounds of probes at the configured interval (at least one; the first at once),
/// then the report. One round shows what every probe sees now; `unhealthy_after` rounds let a
/// failing zone be declared unhealthy.
pub async fn snapshot(
    env: &Environment,
    ports: HealthPorts,
    rounds: u32,
) -> Result<HealthReport, HealthError> {
    let mut det = detector(env, ports)?;
    for _ in 0..rounds.max(1) {
        det.next_round().await;
    }
    Ok(det.report())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::{Check, Probe, Target};
    use crate::health::eval::{Became, Outcome};
    use crate::health::probes::Observation;
    use crate::types::Zone;
    use std::sync::Mutex;

    /// Probes whose outcome is scripted per zone and switched by the test at virtual times.
    struct Scripted {
        down: Mutex<Vec<String>>,
        clock: Arc<dyn Clock>,
        calls: Mutex<Vec<SystemTime>>,
    }

    #[async_trait::async_trait]
    impl Prober for Scripted {
        async fn attempt(&self, probes: &[Probe]) -> Vec<Observation> {
            self.calls.lock().unwrap().push(self.clock.now());
            // Every probe takes 100 ms; a down zone's probes time out after their timeout.
            let down = self.down.lock().unwrap().clone();
            let any_down = probes.iter().any(|p| down.contains(&p.target.to_string()));
            let t = if any_down {
                probes[0].timeout
            } else {
                Duration::from_millis(100)
            };
            self.clock.sleep(t).await;
            probes
                .iter()
                .map(|p| {
                    if down.contains(&p.target.to_string()) {
                        Observation::fail("no answer")
                    } else {
                        Observation::pass("HTTP 200")
                    }
                })
                .collect()
        }
    }

    fn cfg() -> HealthConfig {
        let mut c = HealthConfig {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(400),
            attempts: 2,
            quorum: 2,
            region_quorum: 1,
            unhealthy_after: 3,
            healthy_after: 2,
            ..HealthConfig::default()
        };
        for z in ["us-west-2a", "us-west-2b", "us-west-2c"] {
            for n in 0..3 {
                c.probes.push(Probe {
                    name: format!("{z}-{n}"),
                    target: Target::Zone(Zone::from(z)),
                    timeout: c.timeout,
                    check: Check::Tcp {
                        address: "x:1".into(),
                    },
                });
            }
        }
        c
    }

    fn scope() -> Scope {
        Scope {
            environment: "test".into(),
            region: "us-west-2".into(),
            zones: ["us-west-2a", "us-west-2b", "us-west-2c"]
                .map(Zone::from)
                .to_vec(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rounds_run_on_the_interval_grid_of_the_injected_clock() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::starting_at(t0));
        let prober = Arc::new(Scripted {
            down: Mutex::new(vec![]),
            clock: clock.clone(),
            calls: Mutex::new(vec![]),
        });
        let mut det = Detector::new(scope(), cfg(), prober.clone(), clock.clone());
        for _ in 0..3 {
            assert!(det.next_round().await.is_empty());
        }
        // Zone a goes down 0.5 s after the third round started.
        clock.sleep(Duration::from_millis(400)).await;
        let down_at = clock.now();
        prober.down.lock().unwrap().push("us-west-2a".into());
        let e = det.next_event().await;
        assert_eq!(
            (e.target.to_string().as_str(), e.became, e.observer_suspect),
            ("us-west-2a", Became::Unhealthy, false)
        );
        // Rounds at 3 s, 4 s, 5 s after t0 are bad; each takes 2 attempts of 400 ms.
        assert_eq!(e.at, t0 + Duration::from_millis(5_800));
        assert_eq!(
            e.at.duration_since(down_at).unwrap(),
            Duration::from_millis(3_300)
        );
        // Attempts started on the 1 s grid, plus the retries of the down zone's probes.
        let calls: Vec<u128> = prober
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.duration_since(t0).unwrap().as_millis())
            .collect();
        assert_eq!(calls, [0, 1000, 2000, 3000, 3400, 4000, 4400, 5000, 5400]);
        let report = det.report();
        assert_eq!(
            report.zones[0].status.state,
            crate::health::eval::State::Unhealthy
        );
        assert_eq!(
            report.zones[0]
                .probes
                .iter()
                .filter(|p| p.outcome == Outcome::Fail)
                .count(),
            3
        );

        // Recovery after two good rounds.
        prober.down.lock().unwrap().clear();
        let e = det.next_event().await;
        assert_eq!(e.became, Became::Healthy);
        assert_eq!(e.at, t0 + Duration::from_millis(7_100));
    }

    #[tokio::test(start_paused = true)]
    async fn run_streams_events_until_the_receiver_is_dropped() {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock::new());
        let prober = Arc::new(Scripted {
            down: Mutex::new(vec!["us-west-2b".into()]),
            clock: clock.clone(),
            calls: Mutex::new(vec![]),
        });
        let det = Detector::new(scope(), cfg(), prober, clock);
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let task = tokio::spawn(det.run(tx));
        let e = rx.recv().await.expect("an event");
        assert_eq!(
            (e.target.to_string().as_str(), e.became),
            ("us-west-2b", Became::Unhealthy)
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the detector stops once nobody listens")
            .unwrap();
    }
}
