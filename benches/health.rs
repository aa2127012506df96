//! Health detection figures (a benchmark, not a timed test): run by `scripts/bench-health`.
//!
//! 1. Detection latency — from the moment a zone's endpoints go down to the round that declares
//!    the zone unhealthy — with a 1 s interval and a 2-of-3 quorum, measured two ways:
//!    - on tokio's paused (virtual) clock with simulated probes, over many trials at random
//!      phases, for endpoints that refuse connections and endpoints that black-hole them (every
//!      attempt runs into its timeout: the slow case);
//!    - on the wall clock against real HTTP and TCP servers on loopback, a few trials.
//! 2. False triggers under 20% random probe loss (each attempt of each probe independently lost:
//!    it runs into its timeout and fails) over 24 simulated hours of 1 s rounds, counted as
//!    zone-unhealthy events that a trigger would act on.
//!
//! The real `Detector`, `run_round` and `Evaluator` run in every case; only the probes are
//! simulated on the virtual clock. Targets (from issue 4): latency <= 5 s, no false trigger.
//! Exit status 1 when the recommended configuration misses a target.
//!
//! Options (after `--`): `--quick` (fewer trials, 2 simulated hours), `--no-loopback`,
//! `--seed N`.

use failover::clock::TokioClock;
use failover::cloud::Clock;
use failover::diag::SourceFile;
use failover::env::Environment;
use failover::health::config::{Check, HealthConfig, Policy, Probe, Target, TriggerConfig};
use failover::health::eval::Became;
use failover::health::probes::{Observation, Prober};
use failover::health::{self, trigger, Detector, Scope};
use failover::types::Zone;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_millis(400);
const QUORUM: u32 = 2;
const HEALTHY_AFTER: u32 = 5;
const LOSS: f64 = 0.20;
/// The configuration the docs recommend for a 1 s interval.
const RECOMMENDED: (u32, u32) = (2, 4); // (attempts, unhealthy_after)

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Down {
    /// Connections are refused at once.
    Refused,
    /// Nothing answers: every attempt runs into its timeout.
    Blackholed,
}

/// Probes on the virtual clock: a probe of a down zone fails (at once, or after its timeout);
/// any other attempt is lost with probability `loss` (it times out and fails), else passes
/// after a few milliseconds. All probes of an attempt run concurrently.
struct SimProber {
    clock: Arc<dyn Clock>,
    rng: Mutex<fastrand::Rng>,
    loss: f64,
    down: Mutex<Option<(String, SystemTime, Down)>>,
}

#[async_trait::async_trait]
impl Prober for SimProber {
    async fn attempt(&self, probes: &[Probe]) -> Vec<Observation> {
        let now = self.clock.now();
        let down = self.down.lock().unwrap().clone();
        let mut longest = Duration::ZERO;
        let mut out = Vec::with_capacity(probes.len());
        {
            let mut rng = self.rng.lock().unwrap();
            for p in probes {
                let zone_down = down
                    .as_ref()
                    .filter(|(z, since, _)| {
                        p.target.zone().map(|x| x.as_str()) == Some(z.as_str()) && now >= *since
                    })
                    .map(|d| d.2);
                let (took, obs) = match zone_down {
                    Some(Down::Refused) => (
                        Duration::from_millis(1),
                        Observation::fail("connection refused"),
                    ),
                    Some(Down::Blackholed) => (p.timeout, Observation::fail("no answer")),
                    None if rng.f64() < self.loss => (p.timeout, Observation::fail("lost")),
                    None => (
                        Duration::from_millis(rng.u64(2..20)),
                        Observation::pass("ok"),
                    ),
                };
                longest = longest.max(took);
                out.push(obs.with_latency(took));
            }
        }
        self.clock.sleep(longest).await;
        out
    }
}

fn config(attempts: u32, unhealthy_after: u32) -> HealthConfig {
    let mut cfg = HealthConfig {
        interval: INTERVAL,
        timeout: TIMEOUT,
        attempts,
        quorum: QUORUM,
        region_quorum: 1,
        unhealthy_after,
        healthy_after: HEALTHY_AFTER,
        ..HealthConfig::default()
    };
    for z in ZONES {
        for (n, check) in [
            (
                "healthz",
                Check::Tcp {
                    address: "sim:80".into(),
                },
            ),
            (
                "ready",
                Check::Tcp {
                    address: "sim:80".into(),
                },
            ),
            (
                "db",
                Check::Tcp {
                    address: "sim:5432".into(),
                },
            ),
        ] {
            cfg.probes.push(Probe {
                name: format!("{n}-{z}"),
                target: Target::Zone(Zone::from(z)),
                timeout: TIMEOUT,
                check,
            });
        }
    }
    cfg
}

fn scope() -> Scope {
    Scope {
        environment: "bench".into(),
        region: "us-west-2".into(),
        zones: ZONES.map(Zone::from).to_vec(),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime")
}

struct Stats {
    min: f64,
    median: f64,
    p95: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats {
        min: v[0],
        median: at(0.5),
        p95: at(0.95),
        max: v[v.len() - 1],
    }
}

/// Virtual-clock detection latency: `trials` trials, the zone goes down at a random phase
/// after a healthy warm-up.
fn sim_latency(trials: usize, seed: u64, down: Down, attempts: u32, m: u32) -> Vec<f64> {
    let rt = paused_runtime();
    rt.block_on(async {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut out = vec![];
        for t in 0..trials {
            let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
            ));
            let start = clock.now();
            let down_at =
                start + Duration::from_secs(5) + Duration::from_micros(rng.u64(0..1_000_000));
            let prober = Arc::new(SimProber {
                clock: clock.clone(),
                rng: Mutex::new(fastrand::Rng::with_seed(seed ^ t as u64)),
                loss: 0.0,
                down: Mutex::new(Some((ZONES[0].to_string(), down_at, down))),
            });
            let mut det = Detector::new(scope(), config(attempts, m), prober, clock.clone());
            let e = det.next_event().await;
            assert_eq!(
                (e.target.zone().map(|z| z.as_str()), e.became),
                (Some(ZONES[0]), Became::Unhealthy),
                "trial {t}: unexpected event {e:?}"
            );
            assert!(!e.observer_suspect);
            out.push(e.at.duration_since(down_at).unwrap().as_secs_f64());
        }
        out
    })
}

struct FalseTriggers {
    rounds: u64,
    bad_rounds: u64,
    longest_bad_streak: u32,
    unhealthy_events: u64,
    suspect_events: u64,
    started_runs: u64,
    wall: Duration,
}

/// 24 h (or `hours`) of 1 s rounds with every attempt lost with probability LOSS; no zone is
/// really down. Counts what a watcher with policy `auto` and a 30 min cooldown would start.
fn false_triggers(hours: u64, seed: u64, attempts: u32, m: u32) -> FalseTriggers {
    let rt = paused_runtime();
    let wall = Instant::now();
    let mut r = rt.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000),
        ));
        let prober = Arc::new(SimProber {
            clock: clock.clone(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            loss: LOSS,
            down: Mutex::new(None),
        });
        let mut det = Detector::new(scope(), config(attempts, m), prober, clock.clone());
        let tr = TriggerConfig {
            runbook: "runbooks/az-evacuation.toml".into(),
            at: Default::default(),
            zone_param: "failed_az".into(),
            params: Default::default(),
            reason_param: None,
            policy: Policy::Auto,
            cooldown: Duration::from_secs(1800),
            notify: None,
        };
        let mut ts = trigger::TriggerState::default();
        let rounds = hours * 3600 / INTERVAL.as_secs();
        let mut res = FalseTriggers {
            rounds,
            bad_rounds: 0,
            longest_bad_streak: 0,
            unhealthy_events: 0,
            suspect_events: 0,
            started_runs: 0,
            wall: Duration::ZERO,
        };
        for _ in 0..rounds {
            for e in det.next_round().await {
                if e.became == Became::Unhealthy {
                    if e.observer_suspect {
                        res.suspect_events += 1;
                    } else {
                        res.unhealthy_events += 1;
                    }
                }
                if ts.on_event(&tr, &e, e.at).starts_run() {
                    res.started_runs += 1;
                }
            }
            for st in det.evaluator().targets() {
                if st
                    .last
                    .as_ref()
                    .is_some_and(|l| l.verdict == failover::health::eval::Verdict::Bad)
                {
                    res.bad_rounds += 1;
                }
                res.longest_bad_streak = res.longest_bad_streak.max(st.bad_streak);
            }
        }
        res
    });
    r.wall = wall.elapsed();
    r
}

// ---- real loopback servers ------------------------------------------------------------------

/// An HTTP or TCP server on loopback. `hang`: HTTP requests are read but never answered.
struct Server {
    port: u16,
    http: bool,
    hang: Arc<std::sync::atomic::AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(http: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h = hang.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                if !http {
                    continue;
                }
                let h = h.clone();
                conns.spawn(async move {
                    let mut buf = [0u8; 2048];
                    let mut n = 0;
                    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                        match s.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                    }
                    if h.load(std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Server {
            port,
            http,
            hang,
            task: Some(task),
        }
    }

    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn loopback_env(servers: &[(Server, Server)], attempts: u32, m: u32) -> Environment {
    let mut text = format!(
        "name = \"bench\"\nregion = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\", \"us-west-2c\"]\n\n[health]\ninterval = \"1s\"\ntimeout = \"400ms\"\nattempts = {attempts}\nquorum = {QUORUM}\nunhealthy_after = {m}\nhealthy_after = {HEALTHY_AFTER}\n"
    );
    for (z, (h, t)) in ZONES.iter().zip(servers) {
        assert!(h.http && !t.http);
        text.push_str(&format!(
            "\n[[health.probes]]\nname = \"healthz-{z}\"\nzone = \"{z}\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/healthz\"\nlatency_budget = \"300ms\"\n\n[[health.probes]]\nname = \"ready-{z}\"\nzone = \"{z}\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/ready\"\n\n[[health.probes]]\nname = \"db-{z}\"\nzone = \"{z}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n",
            h.port, h.port, t.port
        ));
    }
    Environment::parse(SourceFile::new("bench.toml", text), "bench")
        .unwrap_or_else(|d| panic!("{d}"))
}

/// Wall-clock detection latency against real servers: zone a's servers are stopped (refused)
/// or its HTTP server stops answering (hung) at a random phase of the round grid.
fn loopback_latency(trials: usize, seed: u64, down: Down, attempts: u32, m: u32) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut out = vec![];
        for _ in 0..trials {
            let mut servers = vec![];
            for _ in ZONES {
                servers.push((Server::start(true).await, Server::start(false).await));
            }
            let env = loopback_env(&servers, attempts, m);
            let (ports, _) = failover::app::wiring::health_ports(&env)
                .await
                .expect("probe ports");
            let mut det = health::detector(&env, ports).expect("detector");
            for _ in 0..2 {
                assert!(
                    det.next_round().await.is_empty(),
                    "healthy warm-up\n{}",
                    det.report().render_text()
                );
            }
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let task = tokio::spawn(det.run(tx));
            tokio::time::sleep(Duration::from_micros(rng.u64(0..1_000_000))).await;
            let t0 = Instant::now();
            match down {
                Down::Refused => {
                    servers[0].0.stop();
                    servers[0].1.stop();
                }
                Down::Blackholed => servers[0]
                    .0
                    .hang
                    .store(true, std::sync::atomic::Ordering::SeqCst),
            }
            let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("an event within 20 s")
                .expect("detector running");
            assert_eq!(
                (
                    e.target.zone().map(|z| z.as_str()),
                    e.became,
                    e.observer_suspect
                ),
                (Some(ZONES[0]), Became::Unhealthy, false),
                "{e:?}"
            );
            out.push(t0.elapsed().as_secs_f64());
            drop(rx);
            let _ = task.await;
            for (h, t) in servers.iter_mut() {
                h.stop();
                t.stop();
            }
        }
        out
    })
}

fn line(label: &str, s: &Stats) -> String {
    format!(
        "{label:<24} min {:.2} s   median {:.2} s   p95 {:.2} s   max {:.2} s",
        s.min, s.median, s.p95, s.max
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let loopback = !args.iter().any(|a| a == "--no-loopback");
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261122u64);
    let (trials, hours, loop_trials) = if quick { (100, 2, 1) } else { (500, 24, 3) };
    let (attempts, m) = RECOMMENDED;
    let mut ok = true;

    println!("failover health detection benchmark (seed {seed})");
    println!(
        "parameters: 3 zones x 3 probes (2 http + 1 tcp), interval {}s, probe timeout {}ms, attempts {attempts} (http/tcp), quorum {QUORUM} of 3, unhealthy after M = {m} bad rounds, healthy after R = {HEALTHY_AFTER}",
        INTERVAL.as_secs(),
        TIMEOUT.as_millis()
    );

    println!("\n1. Detection latency: zone us-west-2a's endpoints go down at a random phase -> zone declared unhealthy (target <= 5 s)");
    println!("   a) virtual clock (tokio paused), simulated probes, {trials} trials per case:");
    for down in [Down::Refused, Down::Blackholed] {
        let s = stats(sim_latency(trials, seed, down, attempts, m));
        let label = match down {
            Down::Refused => "refused (fail at once)",
            Down::Blackholed => "blackholed (time out)",
        };
        println!(
            "      {}  {}",
            line(label, &s),
            if s.max <= 5.0 { "ok" } else { "MISSES TARGET" }
        );
        ok &= s.max <= 5.0;
    }
    if loopback {
        println!("   b) wall clock, real HTTP + TCP servers on 127.0.0.1, {loop_trials} trial(s) per case:");
        for down in [Down::Refused, Down::Blackholed] {
            let s = stats(loopback_latency(loop_trials, seed, down, attempts, m));
            let label = match down {
                Down::Refused => "servers stopped",
                Down::Blackholed => "http hangs (tcp up)",
            };
            println!(
                "      {}  {}",
                line(label, &s),
                if s.max <= 5.0 { "ok" } else { "MISSES TARGET" }
            );
            ok &= s.max <= 5.0;
        }
    }

    println!(
        "\n2. False triggers under {:.0}% random probe loss (each attempt lost independently; a lost attempt times out and fails), {hours} simulated hour(s) of 1 s rounds, no zone really down (target: none)",
        LOSS * 100.0
    );
    println!("   attempts  M  rounds   bad zone-rounds  longest bad streak  unhealthy events  observer-suspect  runs started (auto, 30m cooldown)  sim time");
    for (a, mm) in [(1, 3), (1, 4), (2, 3), (2, 4)] {
        let r = false_triggers(hours, seed, a, mm);
        let mark = if (a, mm) == RECOMMENDED {
            "  <- recommended"
        } else {
            ""
        };
        println!(
            "   {a:>8}  {mm}  {:>6}  {:>15}  {:>18}  {:>16}  {:>16}  {:>33}  {:>6.1}s{mark}",
            r.rounds,
            r.bad_rounds,
            r.longest_bad_streak,
            r.unhealthy_events,
            r.suspect_events,
            r.started_runs,
            r.wall.as_secs_f64()
        );
        if (a, mm) == RECOMMENDED {
            ok &= r.unhealthy_events == 0 && r.started_runs == 0;
        }
    }
    println!("\nThe latency is the time from the endpoints going down to the end of the round that declares the zone (when a trigger could act).");
    println!("With one attempt per probe, 20% loss makes ~10% of zone-rounds bad, and M = 3 or 4 such rounds in a row happen many times a day;");
    println!("a second attempt within the round (only for http/tcp) brings that to ~0.5% and M = 4 to about one false run in decades, within the 5 s target.");
    if ok {
        println!("\nresult: recommended configuration meets both targets");
    } else {
        println!("\nresult: recommended configuration MISSES a target");
        std::process::exit(1);
    }
}
