//! The engine against faults a local peer cannot produce: a failover that takes time
//! (`failing-over`), throttled mutating calls, a 5xx whose request was in fact processed,
//! a failover that never completes, Route 53 changes that stay PENDING, and the throttle/PENDING
//! sequence through the real Route 53 adapter with `aws-smithy-mocks`. Fakes run on tokio's
//! paused clock, so waits of minutes take microseconds and nothing depends on timing.

use async_trait::async_trait;
use failover::clock::SystemClock;
use failover::cloud::retry::{RetryPolicy, RetryingDatabases, RetryingDns};
use failover::cloud::*;
use failover::engine::{self, RunSpec};
use failover::env::Environment;
use failover::journal::Journal;
use failover::ports::Ports;
use failover::progress::Collect;
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use failover::status::{RunMode, StepStatus};
use failover::types::{ClusterId, InstanceId, RunId, Zone};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ENV: &str = r#"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b", "us-west-2c"]
[groups.aurora]
kind = "db_clusters"
clusters = ["orders-db"]
[groups.storefront]
kind = "records"
hosted_zone = "shop.example.com."
[[groups.storefront.records]]
name = "api.shop.example.com."
type = "CNAME"
values = { "us-west-2a" = "api-a", "us-west-2b" = "api-b", "us-west-2c" = "api-c" }
"#;

const RUNBOOK: &str = r#"
name = "t"
[params.failed_az]
type = "zones"
[[steps]]
id = "failover"
action = "rds.failover_cluster"
group = "aurora"
evacuate = "${failed_az}"
timeout = "5m"
retries = 2
[[steps]]
id = "dns"
action = "dns.update"
group = "storefront"
evacuate = "${failed_az}"
after = ["failover"]
timeout = "5m"
"#;

struct DbState {
    writer: String,
    status: DbStatus,
    /// Describes left before a running failover completes (None: never).
    failing_over_for: Option<u32>,
    pending_target: Option<String>,
    failover_calls: u32,
    /// Errors to return from FailoverDBCluster, in order, before succeeding.
    failover_errors: Vec<ErrorKind>,
    /// The failover is applied even when an error is returned (response lost).
    apply_on_error: bool,
    /// A failover never completes.
    stall: bool,
    /// DescribeDBClusters and DescribeDBClusterInstances calls answered.
    cluster_describes: u32,
    member_describes: u32,
    /// A reader (in us-west-2c) joins the cluster when a failover starts.
    reader_joins: bool,
    members: Vec<String>,
}

impl Default for DbState {
    fn default() -> Self {
        DbState {
            writer: String::new(),
            status: DbStatus::Available,
            failing_over_for: None,
            pending_target: None,
            failover_calls: 0,
            failover_errors: vec![],
            apply_on_error: false,
            stall: false,
            cluster_describes: 0,
            member_describes: 0,
            reader_joins: false,
            members: ["orders-db-a", "orders-db-b", "orders-db-c"]
                .map(String::from)
                .to_vec(),
        }
    }
}

struct FakeDb(Mutex<DbState>);

fn zone_of(instance: &str) -> Zone {
    Zone::new(format!("us-west-2{}", instance.chars().last().unwrap()))
}

#[async_trait]
impl Databases for FakeDb {
    async fn describe_clusters(&self, _ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        let mut s = self.0.lock().unwrap();
        s.cluster_describes += 1;
        if let Some(n) = s.failing_over_for {
            if n == 0 && !s.stall {
                s.writer = s.pending_target.take().unwrap();
                s.status = DbStatus::Available;
                s.failing_over_for = None;
            } else {
                s.failing_over_for = Some(n.saturating_sub(1));
            }
        }
        let members = s
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| ClusterMember {
                instance: InstanceId::from(m.as_str()),
                is_writer: &s.writer == m,
                promotion_tier: i as i32,
            })
            .collect();
        Ok(vec![ClusterState {
            id: "orders-db".into(),
            status: s.status.clone(),
            engine: "aurora-postgresql".into(),
            members,
        }])
    }
    async fn describe_cluster_instances(
        &self,
        _c: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        let mut s = self.0.lock().unwrap();
        s.member_describes += 1;
        Ok(s.members
            .iter()
            .map(|m| InstanceState {
                id: m.as_str().into(),
                cluster: Some("orders-db".into()),
                status: DbStatus::Available,
                engine: "aurora-postgresql".into(),
                zone: Some(zone_of(m)),
                secondary_zone: None,
                multi_az: false,
            })
            .collect())
    }
    async fn describe_instances(
        &self,
        _ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        Ok(vec![])
    }
    async fn failover_cluster(
        &self,
        _c: &ClusterId,
        target: &InstanceId,
    ) -> Result<(), CloudError> {
        let mut s = self.0.lock().unwrap();
        s.failover_calls += 1;
        let err = if s.failover_errors.is_empty() {
            None
        } else {
            Some(s.failover_errors.remove(0))
        };
        if err.is_none() || s.apply_on_error {
            s.status = DbStatus::FailingOver;
            s.pending_target = Some(target.to_string());
            s.failing_over_for = Some(3);
            if s.reader_joins {
                s.members.push("orders-db-new-c".into());
                // The new reader takes the writer role (its zone is not known to the wait).
                s.pending_target = Some("orders-db-new-c".into());
            }
        }
        match err {
            Some(kind) => Err(CloudError::new(
                kind,
                "FailoverDBCluster",
                "orders-db",
                "injected",
            )),
            None => Ok(()),
        }
    }
    async fn reboot_with_failover(&self, _i: &InstanceId) -> Result<(), CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn create_cluster_snapshot(&self, _c: &ClusterId, _s: &str) -> Result<(), CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn create_instance_snapshot(&self, _i: &InstanceId, _s: &str) -> Result<(), CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn describe_snapshots(
        &self,
        _k: SnapshotKind,
        _ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        Ok(vec![])
    }
}

struct FakeDns {
    records: Mutex<BTreeMap<RecordKey, RecordSet>>,
    pending_polls: Mutex<u32>,
    gets: Mutex<u32>,
}

#[async_trait]
impl Dns for FakeDns {
    async fn find_hosted_zone(&self, _n: &str) -> Result<HostedZone, CloudError> {
        Ok(HostedZone {
            id: "Z1".into(),
            name: "shop.example.com.".into(),
        })
    }
    async fn list_record_sets(&self, _z: &str) -> Result<Vec<RecordSet>, CloudError> {
        Ok(self.records.lock().unwrap().values().cloned().collect())
    }
    async fn change_record_sets(
        &self,
        _z: &str,
        _c: &str,
        changes: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError> {
        let mut r = self.records.lock().unwrap();
        for c in changes {
            r.insert(c.record.key(), c.record.clone());
        }
        Ok(ChangeInfo {
            id: "C1".into(),
            status: ChangeStatus::Pending,
        })
    }
    async fn get_change(&self, _id: &str) -> Result<ChangeInfo, CloudError> {
        *self.gets.lock().unwrap() += 1;
        let mut p = self.pending_polls.lock().unwrap();
        if *p > 0 {
            *p -= 1;
            return Ok(ChangeInfo {
                id: "C1".into(),
                status: ChangeStatus::Pending,
            });
        }
        Ok(ChangeInfo {
            id: "C1".into(),
            status: ChangeStatus::Insync,
        })
    }
}

struct NoHttp;
#[async_trait]
impl HttpClient for NoHttp {
    async fn send(&self, _r: &HttpRequest) -> Result<HttpResponse, CloudError> {
        unreachable!("not used by this runbook")
    }
}

fn fake_dns(pending_polls: u32) -> FakeDns {
    let rec = RecordSet {
        name: "api.shop.example.com.".into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        values: vec!["api-a".into()],
        ..Default::default()
    };
    FakeDns {
        records: Mutex::new([(rec.key(), rec)].into_iter().collect()),
        pending_polls: Mutex::new(pending_polls),
        gets: Mutex::new(0),
    }
}

async fn run(
    db: Arc<dyn Databases>,
    dns: Arc<dyn Dns>,
    journal: Arc<Journal>,
) -> (RunId, engine::RunOutcome, Arc<Collect>) {
    let env = Environment::parse(failover::diag::SourceFile::new("env.toml", ENV), "test").unwrap();
    let rb = Runbook::parse(failover::diag::SourceFile::new("rb.toml", RUNBOOK)).unwrap();
    let run_id = RunId::new(format!("r{}", fastrand::u32(..)));
    let ctx = RunContext {
        run_id: run_id.clone(),
        initiator: "alice".into(),
        mode: RunMode::Run,
    };
    let p = bind::bind_params(&rb, &env, &[("failed_az".into(), "us-west-2a".into())]).unwrap();
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
    };
    let ports = Ports {
        global: None,
        metrics: None,
        db: Arc::new(RetryingDatabases::new(
            db,
            policy.clone(),
            clock.clone(),
            Some(1),
        )),
        dns: Arc::new(RetryingDns::new(dns, policy, clock.clone(), Some(1))),
        http: Arc::new(NoHttp),
        arc: Arc::new(crate::common::NoArc),
        meter: failover::cloud::rate::RateLimiter::on_wall_clock(Default::default()),
        clock,
        health: None,
    };
    // The engine alone (no plan): these tests count the calls the engine makes.
    crate::common::run::record_bare_run(&journal, &run_id, "t", &steps);
    let collect = Arc::new(Collect::default());
    let spec = RunSpec {
        run_id: run_id.clone(),
        initiator: "alice".into(),
        steps,
        poll_interval: Duration::from_secs(5),
        max_concurrency: 4,
        max_calls_in_flight: 16,
        approval_poll: Duration::from_secs(1),
        fence: Default::default(),
        region: "us-west-2".into(),
        stop: Default::default(),
        finished: Default::default(),
        observed: None,
        plan_fresh_for: Duration::ZERO,
    };
    let out = engine::execute(ports, journal, spec, collect.clone()).await;
    (run_id, out, collect)
}

fn journal() -> (tempfile::TempDir, Arc<Journal>) {
    let d = tempfile::tempdir().unwrap();
    let j = Arc::new(Journal::open(&d.path().join("j.db")).unwrap());
    (d, j)
}

fn db(state: DbState) -> Arc<FakeDb> {
    Arc::new(FakeDb(Mutex::new(DbState {
        writer: "orders-db-a".into(),
        status: DbStatus::Available,
        ..state
    })))
}

#[tokio::test(start_paused = true)]
async fn waits_through_failing_over_then_moves_dns_after_insync() {
    let (_d, j) = journal();
    let fdb = db(DbState::default());
    let fdns = Arc::new(fake_dns(2));
    let (run_id, out, _) = run(fdb.clone(), fdns.clone(), j.clone()).await;
    assert!(out.succeeded, "{out:#?}");
    let s = fdb.0.lock().unwrap();
    assert_eq!(s.writer, "orders-db-b");
    assert_eq!(s.failover_calls, 1);
    assert_eq!(*fdns.gets.lock().unwrap(), 3, "PENDING twice, then INSYNC");
    assert_eq!(
        fdns.records.lock().unwrap().values().next().unwrap().values,
        vec!["api-b".to_string()]
    );
    assert!(j.open_intents(&run_id).unwrap().is_empty());
}

/// A wait reads the cluster on every poll but its members only once: their zones do not change
/// while the cluster fails over. The step's own observation (no plan here) describes them; a
/// member not seen before (a reader that joined) is described when it shows up.
#[tokio::test(start_paused = true)]
async fn a_wait_describes_the_members_only_when_one_is_new() {
    for joins in [false, true] {
        let (_d, j) = journal();
        let fdb = db(DbState {
            reader_joins: joins,
            ..DbState::default()
        });
        let (_, out, _) = run(fdb.clone(), Arc::new(fake_dns(0)), j).await;
        assert!(out.succeeded, "{out:#?}");
        let s = fdb.0.lock().unwrap();
        let want = if joins {
            "orders-db-new-c"
        } else {
            "orders-db-b"
        };
        assert_eq!(s.writer, want);
        // Observe (1), then polls while failing over (3) and the one that sees it done.
        assert_eq!(s.cluster_describes, 5, "reader joins: {joins}");
        assert_eq!(
            s.member_describes,
            1 + u32::from(joins),
            "the members are described by the step's observation, and again only when a new one shows (reader joins: {joins})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn throttled_failover_is_retried_and_made_once() {
    let (_d, j) = journal();
    let fdb = db(DbState {
        failover_errors: vec![ErrorKind::Throttled, ErrorKind::Throttled],
        ..Default::default()
    });
    let (run_id, out, _) = run(fdb.clone(), Arc::new(fake_dns(0)), j.clone()).await;
    assert!(out.succeeded, "{out:#?}");
    assert_eq!(
        fdb.0.lock().unwrap().failover_calls,
        3,
        "two throttled attempts, one that went through"
    );
    let intents = j
        .events(&run_id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "intent" && e.operation.as_deref() == Some("FailoverDBCluster"))
        .count();
    assert_eq!(
        intents, 1,
        "one intent: the retries are one call from the journal's point of view"
    );
}

/// A 5xx whose request was in fact processed: the call is not blindly repeated. The attempt
/// that got the 5xx follows the failover's effect (a call in doubt is waited for until its
/// grace), sees it complete and settles the doubt: the step succeeds in that attempt (a step
/// with no retries does not fail on an error whose call AWS made).
#[tokio::test(start_paused = true)]
async fn processed_5xx_is_not_done_twice() {
    let (_d, j) = journal();
    let fdb = db(DbState {
        failover_errors: vec![ErrorKind::Transient],
        apply_on_error: true,
        ..Default::default()
    });
    let (run_id, out, collect) = run(fdb.clone(), Arc::new(fake_dns(0)), j.clone()).await;
    assert!(out.succeeded, "{out:#?}");
    assert_eq!(
        fdb.0.lock().unwrap().failover_calls,
        1,
        "FailoverDBCluster must not be sent twice"
    );
    assert_eq!(fdb.0.lock().unwrap().writer, "orders-db-b");
    let evs = j.events(&run_id).unwrap();
    let failed_outcome = evs
        .iter()
        .any(|e| e.kind == "outcome" && e.data["ok"] == false);
    assert!(failed_outcome, "the failed attempt is journaled");
    let settled = evs.iter().any(|e| e.kind == "settled");
    assert!(
        settled,
        "the call in doubt is settled by its observed effect"
    );
    let progress = collect.0.lock().unwrap();
    use failover::progress::Progress;
    let done = progress.iter().position(
        |p| matches!(p, Progress::Converged { what, .. } if what.contains("writer in us-west-2b")),
    );
    let after_all = progress.iter().position(|p| matches!(p, Progress::Skip { text, .. } if text == "FailoverDBCluster on orders-db: its effect was observed although its answer was an error: the step no longer needs the call"));
    assert!(
        matches!((done, after_all), (Some(d), Some(a)) if d < a),
        "the attempt followed the failover it may have made, then said so: {progress:#?}"
    );
    assert!(
        !progress
            .iter()
            .any(|p| matches!(p, Progress::StepError { .. })),
        "no attempt failed: {progress:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn stalled_failover_times_out_and_blocks_dns() {
    let (_d, j) = journal();
    let fdb = db(DbState {
        stall: true,
        ..Default::default()
    });
    let fdns = Arc::new(fake_dns(0));
    let (_, out, _) = run(fdb.clone(), fdns.clone(), j).await;
    assert!(!out.succeeded);
    let (_, st, msg) = &out.steps[0];
    assert_eq!(*st, StepStatus::Failed);
    assert!(
        msg.as_deref().unwrap().starts_with("timed out after 5m"),
        "{msg:?}"
    );
    assert_eq!(out.steps[1].1, StepStatus::Blocked);
    assert_eq!(
        fdns.records.lock().unwrap().values().next().unwrap().values,
        vec!["api-a".to_string()],
        "DNS untouched"
    );
}

#[tokio::test(start_paused = true)]
async fn access_denied_fails_fast_without_retry() {
    let (_d, j) = journal();
    let fdb = db(DbState {
        failover_errors: vec![ErrorKind::AccessDenied],
        ..Default::default()
    });
    let (_, out, _) = run(fdb.clone(), Arc::new(fake_dns(0)), j).await;
    assert!(!out.succeeded);
    assert_eq!(fdb.0.lock().unwrap().failover_calls, 1);
    let msg = out.steps[0].2.clone().unwrap();
    assert!(
        msg.contains("check the credentials and IAM permissions"),
        "{msg}"
    );
}

/// Through the real Route 53 adapter: a throttled ChangeResourceRecordSets is retried by the
/// retry layer, and GetChange PENDING is polled until INSYNC.
#[tokio::test(start_paused = true)]
async fn route53_throttle_then_pending_through_the_sdk() {
    use aws_sdk_route53::operation::change_resource_record_sets::{
        ChangeResourceRecordSetsError, ChangeResourceRecordSetsOutput,
    };
    use aws_sdk_route53::operation::get_change::GetChangeOutput;
    use aws_sdk_route53::types::{ChangeInfo as SdkChange, ChangeStatus as SdkStatus};
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};
    let change = |st: SdkStatus| {
        SdkChange::builder()
            .id("/change/C9")
            .status(st)
            .submitted_at(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    };
    let c1 = change(SdkStatus::Pending);
    let throttled = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .sequence()
        .http_status(400, Some(r#"<?xml version="1.0"?><ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>"#.to_string()))
        .output(move || ChangeResourceRecordSetsOutput::builder().change_info(c1.clone()).build())
        .build();
    let _ = std::marker::PhantomData::<ChangeResourceRecordSetsError>;
    let (p, i) = (change(SdkStatus::Pending), change(SdkStatus::Insync));
    let gets = mock!(aws_sdk_route53::Client::get_change)
        .sequence()
        .output(move || GetChangeOutput::builder().change_info(p.clone()).build())
        .times(2)
        .output(move || GetChangeOutput::builder().change_info(i.clone()).build())
        .build();
    let interceptor = MockResponseInterceptor::new()
        .rule_mode(RuleMode::MatchAny)
        .with_rule(&throttled)
        .with_rule(&gets);
    let conf = aws_sdk_route53::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_route53::config::Credentials::new(
            "t", "t", None, None, "mock",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let adapter: Arc<dyn Dns> = Arc::new(failover::cloud::aws::AwsDns::from_client(
        aws_sdk_route53::Client::from_conf(conf),
    ));
    let dns = RetryingDns::new(
        adapter,
        RetryPolicy::default(),
        Arc::new(SystemClock),
        Some(3),
    );
    let rec = RecordSet {
        name: "api.shop.example.com.".into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        values: vec!["api-b".into()],
        ..Default::default()
    };
    let info = dns
        .change_record_sets(
            "Z1",
            "test",
            &[RecordChange {
                action: ChangeAction::Upsert,
                record: rec,
            }],
        )
        .await
        .unwrap();
    assert_eq!(info.id, "C9");
    assert_eq!(
        throttled.num_calls(),
        2,
        "one throttled attempt, one that went through"
    );
    let mut polls = 0;
    loop {
        polls += 1;
        if dns.get_change(&info.id).await.unwrap().status == ChangeStatus::Insync {
            break;
        }
    }
    assert_eq!(polls, 3);
}

/// A database port that panics right after FailoverDBCluster reached it.
struct PanicsAfterFailover(Arc<FakeDb>);

#[async_trait]
impl Databases for PanicsAfterFailover {
    async fn describe_clusters(&self, ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        self.0.describe_clusters(ids).await
    }
    async fn describe_cluster_instances(
        &self,
        c: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        self.0.describe_cluster_instances(c).await
    }
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        self.0.describe_instances(ids).await
    }
    async fn failover_cluster(&self, c: &ClusterId, t: &InstanceId) -> Result<(), CloudError> {
        self.0.failover_cluster(c, t).await?;
        panic!("a bug right after the call was made");
    }
    async fn reboot_with_failover(&self, i: &InstanceId) -> Result<(), CloudError> {
        self.0.reboot_with_failover(i).await
    }
    async fn create_cluster_snapshot(&self, c: &ClusterId, s: &str) -> Result<(), CloudError> {
        self.0.create_cluster_snapshot(c, s).await
    }
    async fn create_instance_snapshot(&self, i: &InstanceId, s: &str) -> Result<(), CloudError> {
        self.0.create_instance_snapshot(i, s).await
    }
    async fn describe_snapshots(
        &self,
        k: SnapshotKind,
        ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        self.0.describe_snapshots(k, ids).await
    }
}

/// Regression: a panic after a mutating call left the run `running` (or `cancelled`); it
/// ends `crashed`, the call stays in doubt, and nothing after it runs.
#[tokio::test(start_paused = true)]
async fn regression_a_panic_after_a_call_ends_the_run_crashed_with_the_call_in_doubt() {
    use failover::app::lifecycle::{start_run, RunRequest};
    use failover::app::record::RunHeader;
    use failover::status::RunStatus;
    use failover::store::Store;
    let (_d, j) = journal();
    let env = Environment::parse(failover::diag::SourceFile::new("env.toml", ENV), "test").unwrap();
    let rb = Runbook::parse(failover::diag::SourceFile::new("rb.toml", RUNBOOK)).unwrap();
    let run_id = RunId::new("r-panic");
    let ctx = RunContext {
        run_id: run_id.clone(),
        initiator: "alice".into(),
        mode: RunMode::Run,
    };
    let p = bind::bind_params(&rb, &env, &[("failed_az".into(), "us-west-2a".into())]).unwrap();
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap();
    let fdb = db(DbState::default());
    fdb.0.lock().unwrap().writer = "orders-db-a".into();
    let ports = Ports {
        global: None,
        metrics: None,
        db: Arc::new(PanicsAfterFailover(fdb.clone())),
        dns: Arc::new(fake_dns(0)),
        http: Arc::new(NoHttp),
        arc: Arc::new(crate::common::NoArc),
        clock: Arc::new(SystemClock),
        meter: failover::cloud::rate::RateLimiter::on_wall_clock(Default::default()),
        health: None,
    };
    let header = RunHeader {
        id: run_id.clone(),
        runbook: "t".into(),
        runbook_path: "rb.toml".into(),
        runbook_sha256: "-".into(),
        environment: "test".into(),
        mode: RunMode::Run,
        initiator: "alice".into(),
        params: serde_json::json!({}),
        of_run: None,
    };
    let store: Arc<dyn Store> = j.clone();
    let result = start_run(
        &ports,
        &store,
        Arc::new(Collect::default()),
        RunRequest::new(header, steps, &env),
    )
    .await
    .unwrap();
    assert_eq!(result.status, RunStatus::Crashed, "{result:?}");
    assert_eq!(fdb.0.lock().unwrap().failover_calls, 1);
    let r = j.run_exact(&run_id).unwrap();
    assert_eq!(r.status, RunStatus::Crashed);
    assert!(
        r.error.as_deref().unwrap_or("").contains("panicked"),
        "{r:?}"
    );
    let open = j.open_intents(&run_id).unwrap();
    assert_eq!(open.len(), 1, "the FailoverDBCluster is in doubt");
    assert_eq!(open[0].operation.as_deref(), Some("FailoverDBCluster"));
    let steps = j.steps(&run_id).unwrap();
    let dns = steps.iter().find(|s| s.step_id == "dns").unwrap();
    assert_ne!(
        dns.status,
        StepStatus::Succeeded,
        "nothing runs after the crash"
    );
    assert!(
        j.leases().unwrap().iter().all(|l| l.run_id.is_none()),
        "a crashed run's leases are released by the lifecycle"
    );
}
