//! Aurora Global Database region evacuation, end to end through the engine: the graceful
//! switchover on the recovery region's endpoint, the escalation to a failover with data loss
//! when the primary region cannot cooperate (at once with `auto`, behind an approval gate
//! with `approval`), a switchover whose answer was lost, the data at risk journaled; and the
//! AWS adapter against `aws-smithy-mocks` (moto implements no global cluster operation): every
//! call on the named region's client, its parameters, the error classes.
//! The fakes run on tokio's paused clock, so minutes of waiting take microseconds.

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region as SdkRegion};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
use aws_sdk_rds::types::{FailoverState, FailoverStatus, GlobalCluster, GlobalClusterMember};
use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode};
use failover::clock::SystemClock;
use failover::cloud::aws::AwsGlobalDatabases;
use failover::cloud::*;
use failover::engine::{self, RunSpec};
use failover::env::Environment;
use failover::journal::Journal;
use failover::ports::Ports;
use failover::progress::Collect;
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use failover::status::{RunMode, StepStatus};
use failover::types::{ClusterId, GlobalClusterId, InstanceId, Region, RunId};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:orders-west";
const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:orders-east";

const ENV: &str = r#"
region = "us-west-2"
regions = ["us-west-2", "us-east-1"]
zones = ["us-west-2a", "us-west-2b"]
[groups.orders_global]
kind = "global_clusters"
global_clusters = ["orders-global"]
"#;

fn runbook(escalate: &str) -> String {
    format!(
        r#"
name = "region-evacuation"
[params.failed_region]
[params.recovery_region]
[[steps]]
id = "move-writers"
action = "rds.switchover_global"
group = "orders_global"
evacuate_region = "${{failed_region}}"
to_region = "${{recovery_region}}"
escalate_after = "5m"
escalate = "{escalate}"
"#
    )
}

/// A global cluster whose writer moves as the calls say, after some describes.
#[derive(Default)]
struct GlobalState {
    writer_east: bool,
    /// (operation, region of the endpoint called)
    calls: Vec<(String, String)>,
    /// Describes left before the operation under way completes.
    under_way: Option<(bool, u32)>,
    /// The primary region is down: a switchover is accepted but never completes.
    primary_down: bool,
    /// The switchover is applied but its answer is lost (a 5xx).
    lose_switchover_answer: bool,
    describes_in: Vec<String>,
}

struct FakeGlobal(Mutex<GlobalState>);

#[async_trait]
impl GlobalDatabases for FakeGlobal {
    async fn describe_global_clusters(
        &self,
        region: &Region,
        ids: &[GlobalClusterId],
    ) -> Result<Vec<GlobalClusterState>, CloudError> {
        let mut s = self.0.lock().unwrap();
        s.describes_in.push(region.to_string());
        if let Some((loss, n)) = s.under_way {
            if n == 0 && (loss || !s.primary_down) {
                s.writer_east = true;
                s.under_way = None;
            } else {
                s.under_way = Some((loss, n.saturating_sub(1)));
            }
        }
        let failover = s.under_way.map(|(loss, _)| GlobalFailoverState {
            status: if loss {
                "failing-over"
            } else {
                "switching-over"
            }
            .into(),
            from_region: Some("us-west-2".into()),
            to_region: Some("us-east-1".into()),
            data_loss_allowed: loss,
        });
        Ok(ids
            .iter()
            .map(|id| GlobalClusterState {
                id: id.clone(),
                status: if failover.is_some() {
                    DbStatus::from("switching-over")
                } else {
                    DbStatus::Available
                },
                members: vec![
                    GlobalMember {
                        cluster_arn: WEST.into(),
                        region: "us-west-2".into(),
                        is_writer: !s.writer_east,
                    },
                    GlobalMember {
                        cluster_arn: EAST.into(),
                        region: "us-east-1".into(),
                        is_writer: s.writer_east,
                    },
                ],
                failover: failover.clone(),
            })
            .collect())
    }
    async fn switchover_global_cluster(
        &self,
        region: &Region,
        _id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let mut s = self.0.lock().unwrap();
        assert_eq!(target_arn, EAST);
        s.calls
            .push(("SwitchoverGlobalCluster".into(), region.to_string()));
        s.under_way = Some((false, 6));
        if s.lose_switchover_answer {
            return Err(CloudError::new(
                ErrorKind::Transient,
                "SwitchoverGlobalCluster",
                "orders-global",
                "connection reset",
            ));
        }
        Ok(())
    }
    async fn failover_global_cluster(
        &self,
        region: &Region,
        _id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let mut s = self.0.lock().unwrap();
        assert_eq!(target_arn, EAST);
        s.calls
            .push(("FailoverGlobalCluster".into(), region.to_string()));
        s.under_way = Some((true, 2));
        Ok(())
    }
}

struct FakeLag;

#[async_trait]
impl Metrics for FakeLag {
    async fn latest_rds_metric(
        &self,
        region: &Region,
        metric: &str,
        dimension: (&str, &str),
        _window: Duration,
    ) -> Result<Option<f64>, CloudError> {
        assert_eq!(
            (region.as_str(), metric, dimension),
            (
                "us-east-1",
                "AuroraGlobalDBRPOLag",
                ("DBClusterIdentifier", "orders-east")
            )
        );
        Ok(Some(1200.0))
    }
}

/// The single-region ports this runbook never uses.
struct Unused;

#[async_trait]
impl Databases for Unused {
    async fn describe_clusters(&self, _: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        Ok(vec![])
    }
    async fn describe_cluster_instances(
        &self,
        _: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        Ok(vec![])
    }
    async fn describe_instances(&self, _: &[InstanceId]) -> Result<Vec<InstanceState>, CloudError> {
        Ok(vec![])
    }
    async fn failover_cluster(&self, _: &ClusterId, _: &InstanceId) -> Result<(), CloudError> {
        unreachable!()
    }
    async fn reboot_with_failover(&self, _: &InstanceId) -> Result<(), CloudError> {
        unreachable!()
    }
    async fn create_cluster_snapshot(&self, _: &ClusterId, _: &str) -> Result<(), CloudError> {
        unreachable!()
    }
    async fn create_instance_snapshot(&self, _: &InstanceId, _: &str) -> Result<(), CloudError> {
        unreachable!()
    }
    async fn describe_snapshots(
        &self,
        _: SnapshotKind,
        _: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        Ok(vec![])
    }
}

#[async_trait]
impl Dns for Unused {
    async fn find_hosted_zone(&self, z: &str) -> Result<HostedZone, CloudError> {
        Err(CloudError::new(
            ErrorKind::NotFound,
            "GetHostedZone",
            z,
            "none",
        ))
    }
    async fn list_record_sets(&self, _: &str) -> Result<Vec<RecordSet>, CloudError> {
        Ok(vec![])
    }
    async fn change_record_sets(
        &self,
        _: &str,
        _: &str,
        _: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError> {
        unreachable!()
    }
    async fn get_change(&self, id: &str) -> Result<ChangeInfo, CloudError> {
        Err(CloudError::new(
            ErrorKind::NotFound,
            "GetChange",
            id,
            "none",
        ))
    }
}

#[async_trait]
impl HttpClient for Unused {
    async fn send(&self, _r: &HttpRequest) -> Result<HttpResponse, CloudError> {
        unreachable!()
    }
}

async fn run(
    global: Arc<FakeGlobal>,
    escalate: &str,
) -> (tempfile::TempDir, Arc<Journal>, RunId, engine::RunOutcome) {
    let d = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(&d.path().join("j.db")).unwrap());
    let env = Environment::parse(failover::diag::SourceFile::new("env.toml", ENV), "test").unwrap();
    let rb = Runbook::parse(failover::diag::SourceFile::new(
        "rb.toml",
        runbook(escalate),
    ))
    .unwrap();
    let run_id = RunId::new(format!("r{}", fastrand::u32(..)));
    let ctx = RunContext {
        run_id: run_id.clone(),
        initiator: "alice".into(),
        mode: RunMode::Run,
    };
    let given = [
        ("failed_region".to_string(), "us-west-2".to_string()),
        ("recovery_region".to_string(), "us-east-1".to_string()),
    ];
    let p = bind::bind_params(&rb, &env, &given).unwrap();
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap();
    let ports = Ports {
        global: Some(global),
        metrics: Some(Arc::new(FakeLag)),
        db: Arc::new(Unused),
        dns: Arc::new(Unused),
        arc: Arc::new(crate::common::NoArc),
        http: Arc::new(Unused),
        meter: failover::cloud::rate::RateLimiter::on_wall_clock(Default::default()),
        clock: Arc::new(SystemClock),
        health: None,
    };
    crate::common::run::record_bare_run(&journal, &run_id, "region-evacuation", &steps);
    let spec = RunSpec {
        run_id: run_id.clone(),
        initiator: "alice".into(),
        steps,
        poll_interval: Duration::from_secs(10),
        max_concurrency: 4,
        max_calls_in_flight: 16,
        approval_poll: Duration::from_secs(30),
        fence: Default::default(),
        region: "us-west-2".into(),
        stop: Default::default(),
        finished: Default::default(),
        observed: None,
        plan_fresh_for: Duration::ZERO,
    };
    let out = engine::execute(ports, journal.clone(), spec, Arc::new(Collect::default())).await;
    (d, journal, run_id, out)
}

fn fake(f: impl FnOnce(&mut GlobalState)) -> Arc<FakeGlobal> {
    let mut s = GlobalState::default();
    f(&mut s);
    Arc::new(FakeGlobal(Mutex::new(s)))
}

fn calls(g: &FakeGlobal) -> Vec<(String, String)> {
    g.0.lock().unwrap().calls.clone()
}

fn sw() -> (String, String) {
    ("SwitchoverGlobalCluster".into(), "us-east-1".into())
}

fn fo() -> (String, String) {
    ("FailoverGlobalCluster".into(), "us-east-1".into())
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_lists_the_exact_calls_and_the_escalation_and_calls_nothing() {
    let g = fake(|_| {});
    let env = Environment::parse(failover::diag::SourceFile::new("env.toml", ENV), "test").unwrap();
    let rb = Runbook::parse(failover::diag::SourceFile::new(
        "rb.toml",
        runbook("approval"),
    ))
    .unwrap();
    let ctx = RunContext {
        run_id: "dry".into(),
        initiator: "alice".into(),
        mode: RunMode::Plan,
    };
    let given = [
        ("failed_region".to_string(), "us-west-2".to_string()),
        ("recovery_region".to_string(), "us-east-1".to_string()),
    ];
    let p = bind::bind_params(&rb, &env, &given).unwrap();
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap();
    let ports = Ports {
        global: Some(g.clone()),
        metrics: Some(Arc::new(FakeLag)),
        db: Arc::new(Unused),
        dns: Arc::new(Unused),
        arc: Arc::new(crate::common::NoArc),
        http: Arc::new(Unused),
        meter: failover::cloud::rate::RateLimiter::on_wall_clock(Default::default()),
        clock: Arc::new(SystemClock),
        health: None,
    };
    let plan = engine::plan_run(&ports, "region-evacuation", "test", &"dry".into(), &steps)
        .await
        .unwrap();
    let text = failover::report::render_plan(&plan, &p);
    assert!(
        text.contains("SwitchoverGlobalCluster GlobalClusterIdentifier=orders-global TargetDbClusterIdentifier=arn:aws:rds:us-east-1:123456789012:cluster:orders-east on the us-east-1 endpoint  (writer us-west-2 -> us-east-1, no data loss)"),
        "{text}"
    );
    assert!(
        text.contains("has not completed within 5m (us-west-2 too impaired to cooperate): ask for approval, then fail over")
            && text.contains("FailoverGlobalCluster GlobalClusterIdentifier=orders-global TargetDbClusterIdentifier=arn:aws:rds:us-east-1:123456789012:cluster:orders-east AllowDataLoss=true on the us-east-1 endpoint"),
        "{text}"
    );
    assert!(calls(&g).is_empty(), "a dry run makes no mutating call");
    assert_eq!(
        g.0.lock().unwrap().describes_in,
        vec!["us-east-1".to_string()]
    );
}

#[tokio::test(start_paused = true)]
async fn a_graceful_switchover_completes_on_the_recovery_region_endpoint() {
    let g = fake(|_| {});
    let (_d, j, run_id, out) = run(g.clone(), "auto").await;
    assert!(out.succeeded, "{:?}", out.steps);
    assert_eq!(
        calls(&g),
        vec![sw()],
        "no failover after a switchover that completed"
    );
    let s = g.0.lock().unwrap();
    assert!(s.writer_east);
    assert!(
        s.describes_in.iter().all(|r| r == "us-east-1"),
        "every read on the recovery region's endpoint: {:?}",
        s.describes_in
    );
    let evs = j.events(&run_id).unwrap();
    assert!(!evs.iter().any(|e| e.kind == "escalation"));
}

#[tokio::test(start_paused = true)]
async fn the_primary_region_down_escalates_to_a_failover_after_escalate_after() {
    let g = fake(|s| s.primary_down = true);
    let (_d, j, run_id, out) = run(g.clone(), "auto").await;
    assert!(out.succeeded, "{:?}", out.steps);
    assert_eq!(calls(&g), vec![sw(), fo()]);
    let evs = j.events(&run_id).unwrap();
    let esc = evs
        .iter()
        .find(|e| e.kind == "escalation")
        .expect("the escalation is journaled");
    let why = esc.data["why"].as_str().unwrap();
    assert!(why.contains("has not completed within 5m"), "{why}");
    let risk = evs
        .iter()
        .find(|e| e.kind == "data_at_risk")
        .expect("the lag is journaled with the promotion");
    assert!(
        risk.data["text"]
            .as_str()
            .unwrap()
            .contains("about 1.2 s of writes"),
        "{}",
        risk.data
    );
    // The lag is read before the failover's intent.
    let intent = evs
        .iter()
        .find(|e| e.kind == "intent" && e.operation.as_deref() == Some("FailoverGlobalCluster"))
        .unwrap();
    assert!(risk.seq < intent.seq);
    assert!(intent.data["why"].as_str().unwrap().contains("escalated"));
    // `failover report` shows both promotions and the data at risk of the failover.
    let store: Arc<dyn failover::store::Store> = j.clone();
    let report = failover::app::report::build(&store, run_id.as_str())
        .await
        .unwrap();
    let p: Vec<_> = report
        .promotions
        .iter()
        .map(|p| {
            (
                p.cluster.as_str(),
                p.target.as_str(),
                p.to_zone.as_str(),
                p.replica_lag_ms,
            )
        })
        .collect();
    assert_eq!(
        p,
        vec![
            ("orders-global", "orders-east", "us-east-1", None),
            ("orders-global", "orders-east", "us-east-1", Some(1200)),
        ]
    );
    let md = failover::report::run_report::render_markdown(&report);
    assert!(
        md.contains("no data loss (RPO 0)") && md.contains("(data at risk)"),
        "{md}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_approval_the_failover_waits_at_a_gate_saying_why_and_what_is_at_risk() {
    let g = fake(|s| s.primary_down = true);
    let (_d, j, run_id, out) = run(g.clone(), "approval").await;
    // Nobody approves: the step times out at the gate, and no failover is made.
    assert!(!out.succeeded);
    assert_eq!(out.steps[0].1, StepStatus::Failed);
    assert_eq!(calls(&g), vec![sw()]);
    let evs = j.events(&run_id).unwrap();
    let gate = evs
        .iter()
        .find(|e| e.kind == "approval_requested")
        .expect("an approval gate");
    let msg = gate.data["message"].as_str().unwrap();
    assert!(
        msg.contains("has not completed within 5m")
            && msg.contains("AllowDataLoss=true")
            && msg.contains("about 1.2 s of writes"),
        "{msg}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_switchover_whose_answer_was_lost_is_watched_not_repeated() {
    let g = fake(|s| s.lose_switchover_answer = true);
    let (_d, _j, _run_id, out) = run(g.clone(), "auto").await;
    assert!(out.succeeded, "{:?}", out.steps);
    assert_eq!(
        calls(&g),
        vec![sw()],
        "the switchover went through: no second one, no failover"
    );
}

// ---- the AWS adapter against aws-smithy-mocks ----

macro_rules! rds_client {
    ($region:expr, $rules:expr) => {{
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let conf = aws_sdk_rds::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(SdkRegion::new($region))
            .credentials_provider(Credentials::new("test", "test", None, None, "mock"))
            .http_client(create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_rds::Client::from_conf(conf)
    }};
}

fn rds_error_xml(code: &str, message: &str) -> String {
    format!(
        r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"#
    )
}

fn sdk_global(switching: bool) -> GlobalCluster {
    let mut b = GlobalCluster::builder()
        .global_cluster_identifier("orders-global")
        .status(if switching {
            "switching-over"
        } else {
            "available"
        })
        .global_cluster_members(
            GlobalClusterMember::builder()
                .db_cluster_arn(WEST)
                .is_writer(true)
                .build(),
        )
        .global_cluster_members(
            GlobalClusterMember::builder()
                .db_cluster_arn(EAST)
                .is_writer(false)
                .build(),
        );
    if switching {
        b = b.failover_state(
            FailoverState::builder()
                .status(FailoverStatus::from("switching-over"))
                .from_db_cluster_arn(WEST)
                .to_db_cluster_arn(EAST)
                .is_data_loss_allowed(false)
                .build(),
        );
    }
    b.build()
}

fn adapter(west: &[&Rule], east: &[&Rule]) -> AwsGlobalDatabases {
    AwsGlobalDatabases::from_clients(vec![
        (
            Region::from("us-west-2"),
            rds_client!("us-west-2", west.iter().copied()),
        ),
        (
            Region::from("us-east-1"),
            rds_client!("us-east-1", east.iter().copied()),
        ),
    ])
}

#[tokio::test]
async fn every_global_call_goes_to_the_named_regions_client_with_its_parameters() {
    let describe_east = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .match_requests(|r| r.global_cluster_identifier() == Some("orders-global"))
        .then_output(|| {
            DescribeGlobalClustersOutput::builder()
                .global_clusters(sdk_global(true))
                .build()
        });
    let switchover_east = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .match_requests(|r| {
            r.global_cluster_identifier() == Some("orders-global")
                && r.target_db_cluster_identifier() == Some(EAST)
        })
        .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
    let failover_east = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .match_requests(|r| {
            r.global_cluster_identifier() == Some("orders-global")
                && r.target_db_cluster_identifier() == Some(EAST)
                && r.allow_data_loss() == Some(true)
                && r.switchover().is_none()
        })
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    let west_any = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .then_output(|| DescribeGlobalClustersOutput::builder().build());
    let a = adapter(
        &[&west_any],
        &[&describe_east, &switchover_east, &failover_east],
    );
    let east = Region::from("us-east-1");
    let id = GlobalClusterId::from("orders-global");
    let got = a
        .describe_global_clusters(&east, std::slice::from_ref(&id))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.writer().map(|w| w.region.as_str()), Some("us-west-2"));
    assert_eq!(
        g.member_in(&east).map(|m| m.cluster_arn.as_str()),
        Some(EAST)
    );
    assert_eq!(
        g.failover,
        Some(GlobalFailoverState {
            status: "switching-over".into(),
            from_region: Some("us-west-2".into()),
            to_region: Some(east.clone()),
            data_loss_allowed: false,
        })
    );
    a.switchover_global_cluster(&east, &id, EAST).await.unwrap();
    a.failover_global_cluster(&east, &id, EAST).await.unwrap();
    assert_eq!(
        (
            describe_east.num_calls(),
            switchover_east.num_calls(),
            failover_east.num_calls()
        ),
        (1, 1, 1)
    );
    assert_eq!(
        west_any.num_calls(),
        0,
        "the failed region's endpoint is never called"
    );
    let err = a
        .describe_global_clusters(&Region::from("eu-west-1"), &[id])
        .await
        .unwrap_err();
    assert!(
        err.message.contains("no RDS client for region eu-west-1"),
        "{err}"
    );
}

#[tokio::test]
async fn global_call_errors_are_classified() {
    let throttled = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .sequence()
        .http_status(400, Some(rds_error_xml("Throttling", "Rate exceeded")))
        .http_status(
            400,
            Some(rds_error_xml(
                "InvalidGlobalClusterStateFault",
                "The global cluster is not in a valid state",
            )),
        )
        .http_status(500, Some("<html>Internal Server Error</html>".into()))
        .build();
    let missing = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .sequence()
        .http_status(
            404,
            Some(rds_error_xml("GlobalClusterNotFoundFault", "not found")),
        )
        .build();
    let a = adapter(&[], &[&throttled, &missing]);
    let east = Region::from("us-east-1");
    let id = GlobalClusterId::from("orders-global");
    let mut kinds = vec![];
    for _ in 0..3 {
        let e = a
            .switchover_global_cluster(&east, &id, EAST)
            .await
            .unwrap_err();
        assert_eq!(e.operation, "SwitchoverGlobalCluster");
        kinds.push(e.kind);
    }
    assert_eq!(
        kinds,
        vec![
            ErrorKind::Throttled,
            ErrorKind::InvalidState,
            ErrorKind::Transient
        ]
    );
    // A 5xx may hide an accepted switchover: it is in doubt, never retried blindly.
    assert!(!ErrorKind::Transient.proves_not_processed());
    assert!(a
        .describe_global_clusters(&east, &[id])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        throttled.num_calls(),
        3,
        "the SDK must not retry on its own"
    );
}

// ---- the CloudWatch lag read against moto ----

/// The lag read goes to the named region and returns the latest datapoint's maximum; a
/// metric with no datapoint (or another region's) is `None`, not an error.
#[tokio::test]
async fn the_lag_read_returns_the_latest_datapoint_of_the_named_region() {
    use crate::common::moto::MotoServer;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    use failover::cloud::aws::{AwsMetrics, AwsSettings};
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(SdkRegion::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let now = std::time::SystemTime::now();
    for (ago, value) in [(180u64, 300.0), (60, 850.0)] {
        cw.put_metric_data()
            .namespace("AWS/RDS")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("AuroraGlobalDBRPOLag")
                    .dimensions(
                        Dimension::builder()
                            .name("DBClusterIdentifier")
                            .value("orders-east")
                            .build(),
                    )
                    .timestamp(aws_smithy_types::DateTime::from(
                        now - Duration::from_secs(ago),
                    ))
                    .value(value)
                    .unit(StandardUnit::Milliseconds)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let limiter = failover::cloud::rate::RateLimiter::on_wall_clock(Default::default());
    let metrics = AwsMetrics::new(
        AwsSettings {
            region: "us-west-2".into(),
            profile: None,
            endpoint_url: Some(moto.endpoint()),
            operation_timeout: Duration::from_secs(20),
        },
        Arc::new(SystemClock),
        limiter.clone(),
    );
    let dim = ("DBClusterIdentifier", "orders-east");
    let window = Duration::from_secs(600);
    let east = metrics
        .latest_rds_metric(&"us-east-1".into(), "AuroraGlobalDBRPOLag", dim, window)
        .await
        .unwrap();
    assert_eq!(east, Some(850.0));
    let west = metrics
        .latest_rds_metric(&"us-west-2".into(), "AuroraGlobalDBRPOLag", dim, window)
        .await
        .unwrap();
    assert_eq!(west, None, "metrics are per region");
    let other = metrics
        .latest_rds_metric(
            &"us-east-1".into(),
            "AuroraGlobalDBReplicationLag",
            dim,
            window,
        )
        .await
        .unwrap();
    assert_eq!(other, None);
    // Each read is paced and counted as a CloudWatch call.
    use failover::cloud::CallMeter;
    assert_eq!(limiter.counts().cloudwatch.reads, 3);
}
