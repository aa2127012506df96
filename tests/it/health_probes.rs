//! Health detection against real peers: HTTP and TCP servers on loopback stand in for three
//! zones (stopped, slow, flapping, all down at once), and moto stands in for CloudWatch, RDS and
//! Route 53. The detector runs on the wall clock with short intervals; each test drives rounds
//! itself, so the number of rounds before a decision is exact.

use crate::common;

use common::moto::MotoServer;
use common::proxy::CountingProxy;
use failover::diag::SourceFile;
use failover::env::Environment;
use failover::health::eval::{Became, Outcome, RegionState, State, Verdict, ZoneEvent};
use failover::health::{self, assert as health_assert, trigger, Detector, Target, TriggerDecision};
use failover::types::Zone;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

const ZONES: [&str; 3] = ["us-west-2a", "us-west-2b", "us-west-2c"];

/// How an HTTP endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Up,
    /// Answers 200, but only after this long.
    Slow(Duration),
    /// Answers with this status.
    Status(u16),
}

/// A loopback server for one zone: HTTP (`/healthz`, `/ready`) or bare TCP. Stopping it closes
/// the listener and every open connection, so new connections are refused.
struct Server {
    port: u16,
    http: bool,
    mode: Arc<Mutex<Mode>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    async fn http() -> Self {
        let mut s = Server {
            port: 0,
            http: true,
            mode: Arc::new(Mutex::new(Mode::Up)),
            task: None,
        };
        s.start().await;
        s
    }

    async fn tcp() -> Self {
        let mut s = Server {
            port: 0,
            http: false,
            mode: Arc::new(Mutex::new(Mode::Up)),
            task: None,
        };
        s.start().await;
        s
    }

    async fn start(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(format!("127.0.0.1:{}", self.port).parse().unwrap())
            .unwrap();
        let listener: TcpListener = socket.listen(64).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let (mode, http) = (self.mode.clone(), self.http);
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                if !http {
                    continue; // accepted, then dropped: a TCP probe only connects
                }
                let mode = mode.clone();
                conns.spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut n = 0;
                    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                        match stream.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                    }
                    let path = String::from_utf8_lossy(&buf[..n]).split_whitespace().nth(1).unwrap_or("/").to_string();
                    let current = *mode.lock().unwrap();
                    let status = match current {
                        Mode::Up => 200,
                        Mode::Slow(d) => {
                            tokio::time::sleep(d).await;
                            200
                        }
                        Mode::Status(s) => s,
                    };
                    let body = if path == "/ready" { "ready" } else { "ok" };
                    let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = stream.write_all(resp.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }));
    }

    /// Closes the listener and every connection: new connections are refused.
    async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }
}

/// Per zone: one HTTP server (two probes: `/healthz` with a latency budget, `/ready` with a body
/// match) and one TCP server (one probe). N = 3 per zone.
struct Zones {
    http: Vec<Server>,
    tcp: Vec<Server>,
}

impl Zones {
    async fn start() -> Self {
        let mut http = vec![];
        let mut tcp = vec![];
        for _ in ZONES {
            http.push(Server::http().await);
            tcp.push(Server::tcp().await);
        }
        Zones { http, tcp }
    }

    fn probes(&self) -> String {
        let mut s = String::new();
        for (i, z) in ZONES.iter().enumerate() {
            let (h, t) = (self.http[i].port, self.tcp[i].port);
            s.push_str(&format!(
                "
[[health.probes]]
name = \"healthz-{z}\"
zone = \"{z}\"
kind = \"http\"
url = \"http://127.0.0.1:{h}/healthz\"
latency_budget = \"100ms\"

[[health.probes]]
name = \"ready-{z}\"
zone = \"{z}\"
kind = \"http\"
url = \"http://127.0.0.1:{h}/ready\"
body_contains = \"ready\"

[[health.probes]]
name = \"db-{z}\"
zone = \"{z}\"
kind = \"tcp\"
address = \"127.0.0.1:{t}\"
"
            ));
        }
        s
    }
}

fn environment(aws_endpoint: Option<&str>, health: &str) -> Environment {
    let aws = aws_endpoint
        .map(|e| format!("[aws]\nendpoint_url = \"{e}\"\n"))
        .unwrap_or_default();
    let text = format!("name = \"test\"\nregion = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\", \"us-west-2c\"]\n\n{aws}\n{health}");
    Environment::parse(SourceFile::new("config/test.toml", text), "test")
        .unwrap_or_else(|d| panic!("{d}"))
}

/// Quorum 2 of 3, unhealthy after 2 bad rounds, healthy after 2 good ones, a round every
/// 250 ms, probes time out after 200 ms.
const RULES: &str = "[health]\ninterval = \"250ms\"\ntimeout = \"200ms\"\nattempts = 1\nquorum = 2\nunhealthy_after = 2\nhealthy_after = 2\n";

async fn detector(env: &Environment) -> Detector {
    let (ports, _) = failover::app::wiring::health_ports(env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    health::detector(env, ports).unwrap()
}

fn zone(z: &str) -> Target {
    Target::Zone(Zone::from(z))
}

fn state(det: &Detector, z: &str) -> State {
    det.evaluator().status(&zone(z)).unwrap().state
}

fn zone_events(events: &[ZoneEvent]) -> Vec<(String, Became, bool)> {
    events
        .iter()
        .map(|e| (e.target.to_string(), e.became, e.observer_suspect))
        .collect()
}

#[tokio::test]
async fn a_stopped_zone_is_declared_after_m_bad_rounds_and_recovers_after_r_good_ones() {
    let mut zones = Zones::start().await;
    let env = environment(None, &format!("{RULES}{}", zones.probes()));
    let mut det = detector(&env).await;
    assert!(det.next_round().await.is_empty());
    for z in ZONES {
        assert_eq!(
            state(&det, z),
            State::Healthy,
            "{}",
            det.report().render_text()
        );
    }

    zones.http[0].stop().await;
    let stopped = Instant::now();
    assert!(
        det.next_round().await.is_empty(),
        "one bad round is not enough (M = 2)"
    );
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        [("us-west-2a".to_string(), Became::Unhealthy, false)]
    );
    assert!(
        // Generous for a loaded machine: the point is two short rounds, not a long wait.
        stopped.elapsed() < Duration::from_secs(5),
        "two rounds of 250 ms took {:?}",
        stopped.elapsed()
    );
    let why = &events[0].why;
    assert_eq!(why.rounds, 2);
    assert_eq!(
        why.failing
            .iter()
            .map(|f| f.probe.as_str())
            .collect::<Vec<_>>(),
        ["healthz-us-west-2a", "ready-us-west-2a"]
    );
    assert!(
        why.failing.iter().all(|f| f.detail.contains("connect")),
        "{:?}",
        why.failing
    );
    assert_eq!(det.report().region_health.state, RegionState::Degraded);

    // The health.assert step's view: a is unhealthy, b is a safe place to go.
    let report = det.report();
    assert!(health_assert::check(&report, &"us-west-2a unhealthy".parse().unwrap()).is_ok());
    assert!(health_assert::check(&report, &"us-west-2b healthy".parse().unwrap()).is_ok());
    assert!(health_assert::check(&report, &"us-west-2a healthy".parse().unwrap()).is_err());

    zones.http[0].start().await;
    assert!(
        det.next_round().await.is_empty(),
        "one good round is not enough (R = 2)"
    );
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        [("us-west-2a".to_string(), Became::Healthy, false)]
    );
    assert_eq!(events[0].why.rounds, 2);
}

#[tokio::test]
async fn a_slow_zone_fails_its_latency_budget_and_the_detector_streams_the_event() {
    let zones = Zones::start().await;
    let env = environment(None, &format!("{RULES}{}", zones.probes()));
    let det = detector(&env).await;
    // 150 ms: within the 200 ms timeout, beyond the 100 ms budget of `healthz` only. With the
    // body check of `ready` failing too (a 503 page), two of three probes fail.
    zones.http[1].set(Mode::Slow(Duration::from_millis(150)));
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let started = SystemTime::now();
    let task = tokio::spawn(det.run(tx));
    let quiet = tokio::time::timeout(Duration::from_millis(900), rx.recv()).await;
    assert!(
        quiet.is_err(),
        "one slow probe of three must not make the zone unhealthy: {quiet:?}"
    );
    zones.http[1].set(Mode::Status(503));
    // The status check fails both http probes now; wait for the event.
    let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("the detector runs");
    assert_eq!(
        (e.target.to_string().as_str(), e.became, e.observer_suspect),
        ("us-west-2b", Became::Unhealthy, false)
    );
    assert!(e.at > started);
    assert!(
        e.why
            .failing
            .iter()
            .any(|f| f.detail == "HTTP 503, expected 2xx"),
        "{:?}",
        e.why.failing
    );
    drop(rx);
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the detector stops when nobody listens")
        .unwrap();

    // And the slow answer is reported as such.
    let mut det = detector(&env).await;
    zones.http[1].set(Mode::Slow(Duration::from_millis(150)));
    det.next_round().await;
    let report = det.report();
    let healthz = report
        .zone(&Zone::from("us-west-2b"))
        .unwrap()
        .probes
        .iter()
        .find(|p| p.probe == "healthz-us-west-2b")
        .unwrap()
        .clone();
    assert_eq!(healthz.outcome, Outcome::Fail);
    assert!(
        healthz.detail.starts_with("HTTP 200 in ")
            && healthz.detail.ends_with("over the 100ms latency budget"),
        "{}",
        healthz.detail
    );
}

#[tokio::test]
async fn a_flapping_zone_and_a_single_failing_probe_are_never_declared() {
    let mut zones = Zones::start().await;
    let env = environment(None, &format!("{RULES}{}", zones.probes()));
    let mut det = detector(&env).await;
    // One probe of three down for good in zone a (its TCP endpoint): below the quorum.
    zones.tcp[0].stop().await;
    let mut verdicts = vec![];
    for i in 0..8 {
        // Zone c flaps: every other round both of its HTTP probes fail.
        zones.http[2].set(if i % 2 == 0 {
            Mode::Status(500)
        } else {
            Mode::Up
        });
        let events = det.next_round().await;
        assert!(
            events.is_empty(),
            "round {i}: {events:?}\n{}",
            det.report().render_text()
        );
        verdicts.push(
            det.evaluator()
                .status(&zone("us-west-2c"))
                .unwrap()
                .last
                .as_ref()
                .unwrap()
                .verdict,
        );
    }
    assert_eq!(verdicts, [Verdict::Bad, Verdict::Good].repeat(4));
    let a = det.evaluator().status(&zone("us-west-2a")).unwrap();
    assert_eq!(
        (a.state, a.last.as_ref().unwrap().failing),
        (State::Healthy, 1)
    );
    assert_eq!(
        state(&det, "us-west-2c"),
        State::Healthy,
        "c's good rounds keep it healthy; its bad streaks never reach M"
    );
}

#[tokio::test]
async fn an_observer_wide_failure_is_reported_and_never_triggers() {
    let mut zones = Zones::start().await;
    let trigger_toml = "\n[health.trigger]\nrunbook = \"runbooks/az-evacuation.toml\"\nzone_param = \"failed_az\"\npolicy = \"auto\"\ncooldown = \"10m\"\n";
    let env = environment(None, &format!("{RULES}{}{trigger_toml}", zones.probes()));
    let tr = env.health.as_ref().unwrap().trigger.clone().unwrap();
    let mut det = detector(&env).await;
    det.next_round().await;
    // The observer loses its network: every endpoint of every zone is unreachable at once.
    for s in zones.http.iter_mut().chain(zones.tcp.iter_mut()) {
        s.stop().await;
    }
    assert!(det.next_round().await.is_empty());
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        ZONES
            .iter()
            .map(|z| (z.to_string(), Became::Unhealthy, true))
            .collect::<Vec<_>>(),
        "every zone is reported, flagged observer-suspect"
    );
    let mut ts = trigger::TriggerState::default();
    for e in &events {
        let d = ts.on_event(&tr, e, e.at);
        assert!(
            matches!(d, TriggerDecision::RefusedObserverSuspect { .. }),
            "{d:?}"
        );
    }
    assert_eq!(ts.last_trigger, None, "nothing was started");
    let report = det.report();
    assert_eq!(report.region_health.state, RegionState::ObserverSuspect);
    assert!(
        report.render_text().contains("OBSERVER SUSPECT since "),
        "{}",
        report.render_text()
    );
    let refused =
        health_assert::check(&report, &"us-west-2a unhealthy".parse().unwrap()).unwrap_err();
    assert!(
        refused.contains("the observer itself is suspect"),
        "{refused}"
    );

    // A real failure of one zone, by contrast, is acted upon.
    for s in zones.http.iter_mut().chain(zones.tcp.iter_mut()) {
        s.start().await;
    }
    for _ in 0..2 {
        det.next_round().await;
    }
    zones.http[2].stop().await;
    det.next_round().await;
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        [("us-west-2c".to_string(), Became::Unhealthy, false)]
    );
    let d = ts.on_event(&tr, &events[0], events[0].at);
    assert_eq!(
        d,
        TriggerDecision::Start {
            runbook: "runbooks/az-evacuation.toml".into(),
            params: [("failed_az".to_string(), "us-west-2c".to_string())].into()
        }
    );
}

// ---- CloudWatch, RDS and Route 53 through moto --------------------------------------------

use common::topo::cloudwatch;

async fn put_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(10.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
}

async fn set_alarm(
    cw: &aws_sdk_cloudwatch::Client,
    name: &str,
    state: aws_sdk_cloudwatch::types::StateValue,
) {
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("set by the test")
        .send()
        .await
        .expect("SetAlarmState");
}

#[tokio::test]
async fn cloudwatch_alarms_drive_quorum_hysteresis_and_the_observer_rule_through_moto() {
    use aws_sdk_cloudwatch::types::StateValue;
    let moto = MotoServer::start();
    let proxy = CountingProxy::start(moto.endpoint()).await;
    let cw = cloudwatch(&moto.endpoint()).await;
    let mut probes = String::new();
    for z in ZONES {
        for n in 1..=3 {
            let name = format!("5xx-{z}-{n}");
            put_alarm(&cw, &name).await;
            probes.push_str(&format!("\n[[health.probes]]\nname = \"alarm-{z}-{n}\"\nzone = \"{z}\"\nkind = \"cloudwatch_alarm\"\nalarm = \"{name}\"\n"));
        }
    }
    let trigger_toml = "\n[health.trigger]\nrunbook = \"runbooks/az-evacuation.toml\"\nzone_param = \"failed_az\"\npolicy = \"approval\"\n";
    let rules = "[health]\ninterval = \"300ms\"\ntimeout = \"250ms\"\nquorum = 2\nunhealthy_after = 2\nhealthy_after = 2\n";
    let env = environment(
        Some(&proxy.endpoint()),
        &format!("{rules}{probes}{trigger_toml}"),
    );
    let tr = env.health.as_ref().unwrap().trigger.clone().unwrap();
    let mut det = detector(&env).await;

    assert!(det.next_round().await.is_empty());
    for z in ZONES {
        assert_eq!(
            state(&det, z),
            State::Healthy,
            "{}",
            det.report().render_text()
        );
    }
    assert_eq!(
        proxy.calls(),
        ["DescribeAlarms"],
        "the nine alarms are read in one call per round"
    );

    // K-of-N: one alarm of three in ALARM is not enough.
    set_alarm(&cw, "5xx-us-west-2a-1", StateValue::Alarm).await;
    for _ in 0..3 {
        assert!(det.next_round().await.is_empty());
    }
    let a = det.evaluator().status(&zone("us-west-2a")).unwrap();
    assert_eq!(
        (a.state, a.last.as_ref().unwrap().failing),
        (State::Healthy, 1)
    );

    // Two of three: unhealthy after M = 2 rounds.
    set_alarm(&cw, "5xx-us-west-2a-2", StateValue::Alarm).await;
    assert!(det.next_round().await.is_empty());
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        [("us-west-2a".to_string(), Became::Unhealthy, false)]
    );
    assert_eq!(
        events[0]
            .why
            .failing
            .iter()
            .map(|f| f.probe.as_str())
            .collect::<Vec<_>>(),
        ["alarm-us-west-2a-1", "alarm-us-west-2a-2"]
    );
    assert!(
        events[0].why.failing[0].detail.starts_with("ALARM since "),
        "{}",
        events[0].why.failing[0].detail
    );
    assert!(events[0].why.failing[0]
        .detail
        .ends_with(": set by the test"));
    let d = trigger::decide(&tr, None, &events[0], events[0].at);
    assert!(
        matches!(d, TriggerDecision::StartPausedForApproval { .. }),
        "{d:?}"
    );

    // Healthy again after R = 2 good rounds.
    set_alarm(&cw, "5xx-us-west-2a-1", StateValue::Ok).await;
    set_alarm(&cw, "5xx-us-west-2a-2", StateValue::Ok).await;
    assert!(det.next_round().await.is_empty());
    assert_eq!(
        zone_events(&det.next_round().await),
        [("us-west-2a".to_string(), Became::Healthy, false)]
    );

    // INSUFFICIENT_DATA is unknown, not failing: one ALARM + one unknown is inconclusive.
    set_alarm(&cw, "5xx-us-west-2b-1", StateValue::InsufficientData).await;
    set_alarm(&cw, "5xx-us-west-2b-2", StateValue::Alarm).await;
    for _ in 0..3 {
        assert!(det.next_round().await.is_empty());
    }
    let b = det.evaluator().status(&zone("us-west-2b")).unwrap();
    assert_eq!((b.state, b.inconclusive_streak), (State::Healthy, 3));
    let report = det.report();
    let b1 = report
        .zone(&Zone::from("us-west-2b"))
        .unwrap()
        .probes
        .iter()
        .find(|p| p.probe == "alarm-us-west-2b-1")
        .unwrap()
        .clone();
    assert_eq!(b1.outcome, Outcome::Unknown);
    assert!(b1.detail.starts_with("INSUFFICIENT_DATA"), "{}", b1.detail);

    // Every alarm of every zone at once: reported, flagged, never triggered.
    for z in ZONES {
        for n in 1..=3 {
            set_alarm(&cw, &format!("5xx-{z}-{n}"), StateValue::Alarm).await;
        }
    }
    assert!(det.next_round().await.is_empty());
    let events = det.next_round().await;
    assert_eq!(
        zone_events(&events),
        ZONES
            .iter()
            .map(|z| (z.to_string(), Became::Unhealthy, true))
            .collect::<Vec<_>>()
    );
    for e in &events {
        assert!(matches!(
            trigger::decide(&tr, None, e, e.at),
            TriggerDecision::RefusedObserverSuspect { .. }
        ));
    }
    assert_eq!(
        det.report().region_health.state,
        RegionState::ObserverSuspect
    );
    assert!(
        proxy.calls().iter().all(|c| c == "DescribeAlarms"),
        "probes only read: {:?}",
        proxy.calls()
    );
}

#[tokio::test]
async fn rds_route53_and_missing_alarm_probes_through_moto() {
    let moto = MotoServer::start();
    let (rds, r53) = common::topo::clients(&moto.endpoint()).await;
    rds.create_db_instance()
        .db_instance_identifier("orders-db-a")
        .db_instance_class("db.r6g.large")
        .engine("postgres")
        .master_username("admin")
        .master_user_password("password123")
        .allocated_storage(20)
        .availability_zone("us-west-2a")
        .send()
        .await
        .expect("CreateDBInstance");
    let hc = r53
        .create_health_check()
        .caller_reference("health-test")
        .health_check_config(
            aws_sdk_route53::types::HealthCheckConfig::builder()
                .r#type(aws_sdk_route53::types::HealthCheckType::Http)
                .fully_qualified_domain_name("api-a.example.com")
                .port(80)
                .resource_path("/healthz")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateHealthCheck");
    let hc_id = hc.health_check().unwrap().id().to_string();
    let health = format!(
        "[health]\ninterval = \"2s\"\ntimeout = \"1500ms\"\nquorum = 1\n
[[health.probes]]
name = \"db-a\"
zone = \"us-west-2a\"
kind = \"rds\"
instances = [\"orders-db-a\", \"orders-db-gone\"]

[[health.probes]]
name = \"r53-a\"
zone = \"us-west-2a\"
kind = \"route53_health_check\"
health_check_id = \"{hc_id}\"

[[health.probes]]
name = \"r53-b\"
zone = \"us-west-2b\"
kind = \"route53_health_check\"
health_check_id = \"no-such-check\"

[[health.probes]]
name = \"alarm-b\"
zone = \"us-west-2b\"
kind = \"cloudwatch_alarm\"
alarm = \"no-such-alarm\"
"
    );
    // Warm moto's CloudWatch backend (its first call loads it), so the probe's 1.5 s is ample.
    cloudwatch(&moto.endpoint())
        .await
        .describe_alarms()
        .send()
        .await
        .expect("DescribeAlarms");
    let env = environment(Some(&moto.endpoint()), &health);
    let (ports, meter) = failover::app::wiring::health_ports(&env).await.unwrap();
    let report = health::snapshot(&env, ports, 1).await.unwrap();
    // One round: each AWS probe's call went through the probes' limiter, and is counted
    // (one DescribeDBInstances, a GetHealthCheckStatus per check, one DescribeAlarms).
    let counted = failover::cloud::CallMeter::counts(&*meter);
    assert!(counted.rds.reads >= 1, "{counted:?}");
    assert!(counted.route53.reads >= 2, "{counted:?}");
    assert!(counted.cloudwatch.reads >= 1, "{counted:?}");
    let result = |z: &str, p: &str| {
        report
            .zone(&Zone::from(z))
            .unwrap()
            .probes
            .iter()
            .find(|x| x.probe == p)
            .unwrap()
            .clone()
    };
    let db = result("us-west-2a", "db-a");
    assert_eq!(
        (db.outcome, db.detail.as_str()),
        (
            Outcome::Pass,
            "1 instance(s) available (not found: orders-db-gone; check the names in [health])"
        )
    );
    let r53a = result("us-west-2a", "r53-a");
    assert_eq!(
        (r53a.outcome, r53a.detail.as_str()),
        (Outcome::Pass, "1 of 1 checkers report success")
    );
    let r53b = result("us-west-2b", "r53-b");
    assert_eq!(
        (r53b.outcome, r53b.detail.as_str()),
        (
            Outcome::Unknown,
            "health check `no-such-check` does not exist; check the id in [health]"
        )
    );
    let alarm = result("us-west-2b", "alarm-b");
    assert_eq!((alarm.outcome, alarm.detail.as_str()), (Outcome::Unknown, "alarm `no-such-alarm` does not exist in this account and region; check the name in [health]"));
    assert_eq!(
        report.zone(&Zone::from("us-west-2a")).unwrap().status.state,
        State::Healthy
    );
    assert_eq!(
        report.zone(&Zone::from("us-west-2b")).unwrap().status.state,
        State::Unknown,
        "two unknown probes say nothing"
    );
    assert_eq!(report.unprobed_zones, [Zone::from("us-west-2c")]);
}

use failover::app::watch::{Launched, Launcher, Triggered, WatchEvent, Watcher};
use failover::app::{App, AppError};

/// A launcher that records the runs a watcher starts, instead of starting them.
struct Recorder(Mutex<Vec<Triggered>>);

#[async_trait::async_trait]
impl Launcher for Recorder {
    async fn launch(&self, _: &App, run: Triggered) -> Result<Launched, AppError> {
        self.0.lock().unwrap().push(run);
        Ok(Launched {
            run_id: failover::journal::new_run_id(),
            log: None,
        })
    }
}

/// What a watcher says (its decisions and changes of role), and the callback that hears it.
fn listener() -> (Arc<Mutex<Vec<String>>>, impl FnMut(WatchEvent) + Send) {
    let said = Arc::new(Mutex::new(vec![]));
    let heard = said.clone();
    let on = move |e: WatchEvent| match e {
        WatchEvent::Decision { text, .. } | WatchEvent::Role { text, .. } => {
            heard.lock().unwrap().push(text)
        }
        _ => {}
    };
    (said, on)
}

/// Rounds until the launcher has seen `until` runs (at most 40).
async fn rounds(
    w: &mut Watcher,
    app: &App,
    rec: &Recorder,
    on: &mut (dyn FnMut(WatchEvent) + Send),
    until: usize,
) {
    for _ in 0..40 {
        for ev in w.next_round().await {
            w.handle(app, rec, &ev, on).await.unwrap();
        }
        w.fail_back_due(app, rec, on).await.unwrap();
        if rec.0.lock().unwrap().len() >= until {
            return;
        }
    }
    panic!("no run after 40 rounds");
}

/// local.toml with `[health.failback]` (after 3s) and the trigger's `params`.
fn failback_config(moto: &MotoServer, sink: &common::sink::Sink) -> common::topo::TestConfig {
    let cfg = common::topo::TestConfig::local(&moto.endpoint(), &sink.url());
    let file = cfg.path().join("local.toml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "zone_param = \"failed_az\"\n",
        "zone_param = \"failed_az\"\nparams = { shed_load = \"true\" }\n",
    );
    std::fs::write(&file, format!("{text}\n[health.failback]\nrunbook = \"runbooks/az-failback.toml\"\nzone_param = \"zone\"\npolicy = \"auto\"\nafter = \"3s\"\n")).unwrap();
    cfg
}

/// The live watcher, end to end against moto: zone a's alarms go off, the watcher evacuates
/// it (with the trigger's own `params`); the alarms clear, the zone is declared healthy again
/// and, once it has stayed healthy for `[health.failback] after`, the watcher starts the
/// failback runbook with the zone — once. A recording launcher stands in for the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_fails_back_a_zone_it_evacuated_once_healthy_for_long_enough() {
    let moto = MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = failback_config(&moto, &sink);
    common::topo::seed(&cfg.env()).await;
    let app = App::new(cfg.path(), cfg.journal());
    let mut w = Watcher::open(&app, "local")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        w.describe().contains(
            "Fail back: Auto `runbooks/az-failback.toml` once the zone has been healthy for 3s."
        ),
        "{}",
        w.describe()
    );
    let rec = Recorder(Mutex::new(vec![]));
    let (said, mut on) = listener();
    let alarm = aws_sdk_cloudwatch::types::StateValue::Alarm;
    common::topo::zone_alarms(&moto.endpoint(), "us-west-2a", alarm).await;
    rounds(&mut w, &app, &rec, &mut on, 1).await;
    let ok = aws_sdk_cloudwatch::types::StateValue::Ok;
    common::topo::zone_alarms(&moto.endpoint(), "us-west-2a", ok).await;
    let t = Instant::now();
    rounds(&mut w, &app, &rec, &mut on, 2).await;
    let runs = rec.0.lock().unwrap().clone();
    assert!(runs[0].runbook.ends_with("az-evacuation.toml"), "{runs:?}");
    assert!(
        runs[0]
            .params
            .contains(&("shed_load".into(), "true".into())),
        "{runs:?}"
    );
    assert!(runs[0]
        .params
        .contains(&("failed_az".into(), "us-west-2a".into())));
    assert!(runs[1].runbook.ends_with("az-failback.toml"), "{runs:?}");
    assert_eq!(
        runs[1].params,
        [("zone".to_string(), "us-west-2a".to_string())]
    );
    assert!(!runs[1].paused, "policy auto");
    // Healthy again takes 5 good rounds of 1 s, then 3 s more: not before.
    assert!(t.elapsed() >= Duration::from_secs(7), "{:?}", t.elapsed());
    let said = said.lock().unwrap().clone();
    assert!(
        said.iter()
            .any(|s| s.contains("us-west-2a is healthy again")
                && s.contains("Failing back with runbooks/az-failback.toml (policy auto)")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s
            == "us-west-2a has been healthy for 3s: failing back with runbooks/az-failback.toml"),
        "{said:?}"
    );
    // Once: more healthy rounds start nothing more.
    for _ in 0..3 {
        for ev in w.next_round().await {
            w.handle(&app, &rec, &ev, &mut on).await.unwrap();
        }
        w.fail_back_due(&app, &rec, &mut on).await.unwrap();
    }
    assert_eq!(rec.0.lock().unwrap().len(), 2);
    // The failback decision is in the watch session's journal.
    let j = app.open_journal().unwrap();
    let session = j
        .runs(10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.mode == failover::status::RunMode::Watch)
        .unwrap();
    let events = j.events(&session.id).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "failback_decision")
            .count(),
        1
    );
    w.close().await.unwrap();
}

/// A restarted watcher remembers from the journal the zone its evacuation left (zones start
/// unknown after a restart, and unknown -> healthy is no event): once that zone has been seen
/// healthy for `after`, it fails back. A zone failed back since (by anyone) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_watcher_still_fails_back_the_zone_it_evacuated() {
    use failover::app::record::{session_record, RunHeader};
    use failover::status::{RunMode, RunStatus};
    let moto = MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = failback_config(&moto, &sink);
    common::topo::seed(&cfg.env()).await;
    let ok = aws_sdk_cloudwatch::types::StateValue::Ok;
    for z in ["us-west-2a", "us-west-2b", "us-west-2c"] {
        common::topo::zone_alarms(&moto.endpoint(), z, ok.clone()).await;
    }
    let app = App::new(cfg.path(), cfg.journal());
    let j = app.open_journal().unwrap();
    let record = |runbook: &str, params: serde_json::Value, at: i64| {
        let h = RunHeader {
            id: failover::journal::new_run_id(),
            runbook: runbook.into(),
            runbook_path: format!("runbooks/{runbook}.toml"),
            runbook_sha256: "-".into(),
            environment: "local".into(),
            mode: RunMode::Run,
            initiator: "watch:local".into(),
            params,
            of_run: None,
        };
        let mut r = session_record(&h, at);
        r.status = RunStatus::Succeeded;
        r
    };
    let now = failover::journal::now_ms();
    // us-west-2a evacuated an hour ago; us-west-2b evacuated, then failed back.
    for r in [
        record(
            "az-evacuation",
            serde_json::json!({"failed_az": "us-west-2a"}),
            now - 3_600_000,
        ),
        record(
            "az-evacuation",
            serde_json::json!({"failed_az": "us-west-2b"}),
            now - 3_500_000,
        ),
        record(
            "az-failback",
            serde_json::json!({"zone": "us-west-2b"}),
            now - 3_400_000,
        ),
    ] {
        j.create_run(&r).await.unwrap();
    }
    let mut w = Watcher::open(&app, "local")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rec = Recorder(Mutex::new(vec![]));
    let mut on = |_: WatchEvent| {};
    rounds(&mut w, &app, &rec, &mut on, 1).await;
    let runs = rec.0.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].runbook.ends_with("az-failback.toml"));
    assert_eq!(
        runs[0].params,
        [("zone".to_string(), "us-west-2a".to_string())]
    );
    w.close().await.unwrap();
}

/// local.toml spanning us-west-2 and us-east-1 (with a global group), two region-wide alarms
/// and `[health.region_trigger]` with policy `approval`.
fn region_config(moto: &MotoServer, sink: &common::sink::Sink) -> common::topo::TestConfig {
    let cfg = common::topo::TestConfig::local(&moto.endpoint(), &sink.url());
    let file = cfg.path().join("local.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text
        .replacen(
            "region = \"us-west-2\"\n",
            "region = \"us-west-2\"\nregions = [\"us-west-2\", \"us-east-1\"]\n",
            1,
        )
        .replacen(
            "[groups.aurora]",
            "[groups.orders_global]\nkind = \"global_clusters\"\nglobal_clusters = [\"orders-global\"]\n\n\
             [groups.global_records]\nkind = \"records\"\nhosted_zone = \"shop.example.com.\"\n\n\
             [[groups.global_records.records]]\nname = \"api.global.shop.example.com.\"\ntype = \"CNAME\"\n\
             values = { \"us-west-2\" = \"api.usw2.example.com\", \"us-east-1\" = \"api.use1.example.com\" }\n\n[groups.aurora]",
            1,
        )
        .replacen(
            "[health.trigger]",
            "[[health.probes]]\nname = \"region-5xx\"\nregion = \"us-west-2\"\nkind = \"cloudwatch_alarm\"\nalarm = \"local-region-5xx\"\n\n\
             [[health.probes]]\nname = \"region-latency\"\nregion = \"us-west-2\"\nkind = \"cloudwatch_alarm\"\nalarm = \"local-region-latency\"\n\n\
             [health.region_trigger]\nrunbook = \"runbooks/region-evacuation.toml\"\nregion_param = \"failed_region\"\nparams = { recovery_region = \"us-east-1\" }\npolicy = \"approval\"\ncooldown = \"2h\"\n\n[health.trigger]",
            1,
        );
    std::fs::write(&file, text).unwrap();
    cfg
}

/// The live watcher and a region: the two region-wide alarms go off (the zones stay healthy,
/// so the observer is not suspect) → the region runbook is started once, paused at its
/// approval gate (policy `approval`), with the failed region and the trigger's `params`; the
/// zone trigger starts nothing. The cooldown (2h) holds back a second start when the region
/// is declared unhealthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_starts_the_region_runbook_when_the_region_is_unhealthy() {
    use aws_sdk_cloudwatch::types::StateValue;
    let moto = MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = region_config(&moto, &sink);
    common::topo::seed(&cfg.env()).await;
    let cw = cloudwatch(&moto.endpoint()).await;
    for a in ["local-region-5xx", "local-region-latency"] {
        put_alarm(&cw, a).await;
        set_alarm(&cw, a, StateValue::Ok).await;
    }
    let app = App::new(cfg.path(), cfg.journal());
    let mut w = Watcher::open(&app, "local")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rec = Recorder(Mutex::new(vec![]));
    let (said, mut on) = listener();
    for a in ["local-region-5xx", "local-region-latency"] {
        set_alarm(&cw, a, StateValue::Alarm).await;
    }
    rounds(&mut w, &app, &rec, &mut on, 1).await;
    let runs = rec.0.lock().unwrap().clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0].runbook.ends_with("region-evacuation.toml"),
        "{runs:?}"
    );
    let params: std::collections::BTreeMap<_, _> = runs[0].params.iter().cloned().collect();
    assert_eq!(
        params.get("failed_region").map(String::as_str),
        Some("us-west-2")
    );
    assert_eq!(
        params.get("recovery_region").map(String::as_str),
        Some("us-east-1")
    );
    assert!(runs[0].paused, "policy approval: paused at its gate");
    // The region clears, then fails again: the cooldown holds the second start back.
    for a in ["local-region-5xx", "local-region-latency"] {
        set_alarm(&cw, a, StateValue::Ok).await;
    }
    for _ in 0..7 {
        for ev in w.next_round().await {
            w.handle(&app, &rec, &ev, &mut on).await.unwrap();
        }
    }
    for a in ["local-region-5xx", "local-region-latency"] {
        set_alarm(&cw, a, StateValue::Alarm).await;
    }
    for _ in 0..7 {
        for ev in w.next_round().await {
            w.handle(&app, &rec, &ev, &mut on).await.unwrap();
        }
    }
    assert_eq!(rec.0.lock().unwrap().len(), 1, "the cooldown held it back");
    let said = said.lock().unwrap().clone();
    assert!(
        said.iter().any(|s| s.contains(
            "region us-west-2 is unhealthy, but a region run was started less than 2h ago"
        )),
        "{said:?}"
    );
    w.close().await.unwrap();
}

/// A watcher whose region runbook does not apply to its environment (one region) refuses to
/// start, saying so at the runbook's step, instead of failing when it starts the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_refuses_a_region_runbook_its_environment_cannot_run() {
    let moto = MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = region_config(&moto, &sink);
    let file = cfg.path().join("local.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("regions = [\"us-west-2\", \"us-east-1\"]\n", "", 1)
        .replacen(
            "[groups.orders_global]\nkind = \"global_clusters\"\nglobal_clusters = [\"orders-global\"]\n",
            "",
            1,
        )
;
    // ... and the records valued per region (us-east-1 is no region of it any more).
    let (head, tail) = text.split_once("[groups.global_records]").unwrap();
    let text = format!("{head}{}", &tail[tail.find("[groups.aurora]").unwrap()..]);
    std::fs::write(&file, text).unwrap();
    let app = App::new(cfg.path(), cfg.journal());
    let err = match Watcher::open(&app, "local").await {
        Ok(_) => panic!("the watcher started"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("runbooks/region-evacuation.toml:60:6: error: step `move-writers` (rds.switchover_global) moves writers between regions, and environment `local` spans one region (us-west-2)"),
        "{err}"
    );
    assert!(err.ends_with("the watcher did not start."), "{err}");
}

/// Two watchers on one environment (two on-call engineers, or `watch` beside `serve`): one
/// leads and starts the run, the other decides the same but starts nothing and notifies no
/// one. When the leader stops renewing its lease (killed: dropped without closing), the
/// standby takes the lead within the lease's TTL and acts on the next failure; a leader that
/// closes gives the lead up at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_watchers_one_leads_and_the_standby_takes_over_when_it_dies() {
    use aws_sdk_cloudwatch::types::StateValue;
    let moto = MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = common::topo::TestConfig::local(&moto.endpoint(), &sink.url());
    common::topo::seed(&cfg.env()).await;
    let app = App::new(cfg.path(), cfg.journal());
    let mut a = Watcher::open(&app, "local").await.unwrap();
    let mut b = Watcher::open(&app, "local").await.unwrap();
    let (rec_a, rec_b) = (Recorder(Mutex::new(vec![])), Recorder(Mutex::new(vec![])));
    let (said, mut on) = listener();
    a.fail_back_due(&app, &rec_a, &mut on).await.unwrap();
    b.fail_back_due(&app, &rec_b, &mut on).await.unwrap();
    assert!(a.leading() && !b.leading());
    common::topo::zone_alarms(&moto.endpoint(), "us-west-2a", StateValue::Alarm).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rec_a.0.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the leader started nothing");
        let (ea, eb) = tokio::join!(a.next_round(), b.next_round());
        for ev in ea {
            a.handle(&app, &rec_a, &ev, &mut on).await.unwrap();
        }
        for ev in eb {
            b.handle(&app, &rec_b, &ev, &mut on).await.unwrap();
        }
    }
    assert_eq!(rec_a.0.lock().unwrap().len(), 1);
    assert!(
        rec_b.0.lock().unwrap().is_empty(),
        "the standby started a run"
    );
    // The sink got exactly one notification: the leader's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let notes = sink.received();
    assert_eq!(notes.len(), 1, "{notes:?}");
    // The leader dies without a word; the standby takes over once the lease lapses (5 s: five
    // rounds of 1 s), and acts on zone b's failure.
    drop(a);
    let t = Instant::now();
    while !b.leading() {
        assert!(t.elapsed() < Duration::from_secs(20), "no takeover");
        for ev in b.next_round().await {
            b.handle(&app, &rec_b, &ev, &mut on).await.unwrap();
        }
        b.fail_back_due(&app, &rec_b, &mut on).await.unwrap();
    }
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    common::topo::zone_alarms(&moto.endpoint(), "us-west-2a", StateValue::Ok).await;
    common::topo::zone_alarms(&moto.endpoint(), "us-west-2b", StateValue::Alarm).await;
    rounds(&mut b, &app, &rec_b, &mut on, 1).await;
    let runs = rec_b.0.lock().unwrap().clone();
    assert!(
        runs[0]
            .params
            .contains(&("failed_az".into(), "us-west-2b".into())),
        "{runs:?}"
    );
    let said = said.lock().unwrap().clone();
    assert!(
        said.iter()
            .any(|s| s.starts_with("standby: the watcher of session")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|s| s.starts_with("standby, not acted on: us-west-2a is unhealthy")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s.starts_with("leading: this watcher")),
        "{said:?}"
    );
    // A third watcher waits while b leads; b closes and it leads at its next round.
    let mut c = Watcher::open(&app, "local").await.unwrap();
    c.fail_back_due(&app, &rec_a, &mut on).await.unwrap();
    assert!(!c.leading());
    b.close().await.unwrap();
    c.fail_back_due(&app, &rec_a, &mut on).await.unwrap();
    assert!(c.leading());
    c.close().await.unwrap();
}
