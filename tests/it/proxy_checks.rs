//! The counting proxy's fault injection, checked against moto: latency, a kill before or after
//! a mutating call (or at a read), lost responses and stale reads. The tests that use these
//! faults rely on exactly what is proved here.
//!
//! Run with `MOTO_SERVER=/path/to/moto_server cargo test --test it proxy_checks`.

use crate::common;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::error::ProvideErrorMetadata;
use common::moto::MotoServer;
use common::proxy::{CountingProxy, KillWhen};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const REGION: &str = "us-west-2";

/// moto, the proxy in front of it, an RDS client through the proxy (no retries) and one
/// straight to moto (to see what AWS holds whatever the proxy answered).
struct Rig {
    _moto: MotoServer,
    proxy: CountingProxy,
    rds: aws_sdk_rds::Client,
    direct: aws_sdk_rds::Client,
}

async fn sdk(endpoint: &str, retries: bool) -> aws_config::SdkConfig {
    let retry = if retries {
        RetryConfig::standard()
    } else {
        RetryConfig::disabled()
    };
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(retry)
        .load()
        .await
}

/// Cluster `orders`: writer `orders-1` (tier 0), reader `orders-2` (tier 1). The log is empty.
async fn rig() -> Rig {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let proxy = CountingProxy::start(moto.endpoint()).await;
    let rds = aws_sdk_rds::Client::new(&sdk(&proxy.endpoint(), false).await);
    let direct = aws_sdk_rds::Client::new(&sdk(&moto.endpoint(), false).await);
    create_cluster(&direct, "orders").await.unwrap();
    for (id, tier) in [("orders-1", 0), ("orders-2", 1)] {
        direct
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier("orders")
            .engine("aurora-postgresql")
            .db_instance_class("db.r6g.large")
            .promotion_tier(tier)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateDBInstance {id}: {e:?}"));
    }
    assert_eq!(writer(&direct).await, "orders-1");
    assert!(proxy.calls().is_empty());
    Rig {
        _moto: moto,
        proxy,
        rds,
        direct,
    }
}

async fn create_cluster(rds: &aws_sdk_rds::Client, id: &str) -> Result<(), String> {
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

async fn cluster_exists(rds: &aws_sdk_rds::Client, id: &str) -> bool {
    let out = rds.describe_db_clusters().send().await.unwrap();
    out.db_clusters()
        .iter()
        .any(|c| c.db_cluster_identifier() == Some(id))
}

/// The writer of `orders`, by `DescribeDBClusters` for that cluster.
async fn writer(rds: &aws_sdk_rds::Client) -> String {
    let out = rds
        .describe_db_clusters()
        .db_cluster_identifier("orders")
        .send()
        .await
        .expect("DescribeDBClusters orders");
    out.db_clusters()[0]
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .expect("a writer")
        .to_string()
}

async fn failover(rds: &aws_sdk_rds::Client, target: &str) -> Result<(), String> {
    rds.failover_db_cluster()
        .db_cluster_identifier("orders")
        .target_db_instance_identifier(target)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed())
}

/// A `sleep 30` to be killed; killed anyway when dropped.
fn victim() -> (Child, u32) {
    let child = Command::new("sleep")
        .arg("30")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn sleep");
    let pid = child.id().unwrap();
    (child, pid)
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

async fn exit_of(child: &mut Child) -> ExitStatus {
    tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the victim is still running")
        .unwrap()
}

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| *c == op).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_latency_delays_the_named_operation_then_every_operation() {
    let r = rig().await;
    let slow = Duration::from_millis(500);
    r.proxy.set_latency(Some("DescribeDBClusters"), slow);

    let (w, took) = timed(writer(&r.rds)).await;
    assert_eq!(w, "orders-1");
    assert!(took >= slow, "DescribeDBClusters took {took:?}");
    let (_, took) = timed(r.rds.describe_db_instances().send()).await;
    assert!(
        took < slow,
        "DescribeDBInstances has no delay, took {took:?}"
    );

    // For all: every operation without its own delay; DescribeDBClusters keeps its own.
    let all = Duration::from_millis(300);
    r.proxy.set_latency(None, all);
    let (out, took) = timed(r.rds.describe_db_instances().send()).await;
    out.unwrap();
    assert!(took >= all, "DescribeDBInstances took {took:?}");
    let (_, took) = timed(writer(&r.rds)).await;
    assert!(took >= slow, "DescribeDBClusters took {took:?}");

    // Duration::ZERO removes them.
    r.proxy.set_latency(None, Duration::ZERO);
    r.proxy
        .set_latency(Some("DescribeDBClusters"), Duration::ZERO);
    let (_, took) = timed(writer(&r.rds)).await;
    assert!(took < all, "no delay left, took {took:?}");
    assert_eq!(
        r.proxy.calls(),
        [
            "DescribeDBClusters",
            "DescribeDBInstances",
            "DescribeDBInstances",
            "DescribeDBClusters",
            "DescribeDBClusters"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_lost_response_fails_the_call_while_moto_failed_over() {
    let r = rig().await;
    r.proxy.lose_response("FailoverDBCluster", 1);
    let err = r
        .rds
        .failover_db_cluster()
        .db_cluster_identifier("orders")
        .target_db_instance_identifier("orders-2")
        .send()
        .await
        .expect_err("the answer was lost");
    assert_eq!(err.code(), Some("InternalFailure"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(writer(&r.direct).await, "orders-2", "AWS did fail over");
    assert_eq!(r.proxy.calls(), ["FailoverDBCluster"], "it reached moto");
    assert_eq!(r.proxy.lost_responses(), 1);

    // Only `times` answers are lost; then the proxy answers normally again.
    failover(&r.rds, "orders-1").await.unwrap();
    assert_eq!(writer(&r.direct).await, "orders-1");
    assert_eq!(r.proxy.lost_responses(), 1);

    // A retrying SDK re-sends the mutation: it reaches AWS twice and the caller sees success.
    let retrying = aws_sdk_rds::Client::new(&sdk(&r.proxy.endpoint(), true).await);
    r.proxy.clear();
    r.proxy.lose_response("FailoverDBCluster", 1);
    failover(&retrying, "orders-2").await.unwrap();
    assert_eq!(r.proxy.calls(), ["FailoverDBCluster", "FailoverDBCluster"]);
    assert_eq!(r.proxy.lost_responses(), 2);
    assert_eq!(writer(&r.direct).await, "orders-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_stale_reads_return_the_old_writer_for_the_lag_then_the_new_one() {
    let r = rig().await;
    let lag = Duration::from_millis(1500);
    assert_eq!(writer(&r.rds).await, "orders-1", "seen before the failover");
    r.proxy.stale_reads_after("FailoverDBCluster", lag);

    let t0 = Instant::now();
    failover(&r.rds, "orders-2").await.unwrap();
    assert_eq!(writer(&r.direct).await, "orders-2", "moto flipped at once");
    assert_eq!(writer(&r.rds).await, "orders-1", "stale through the proxy");
    // A read request not seen before the failover gets moto's current answer.
    let all = r.rds.describe_db_clusters().send().await.unwrap();
    let fresh = all.db_clusters()[0]
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer() == Some(true))
        .and_then(|m| m.db_instance_identifier())
        .unwrap()
        .to_string();
    assert_eq!(fresh, "orders-2");

    let mut stale_reads = 1;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let w = writer(&r.rds).await;
        if w == "orders-2" {
            break;
        }
        assert_eq!(w, "orders-1");
        stale_reads += 1;
        assert!(t0.elapsed() < lag + Duration::from_secs(5), "still stale");
    }
    let flipped = t0.elapsed();
    assert!(flipped >= lag, "fresh after {flipped:?}, before the lag");
    assert_eq!(r.proxy.stale_served(), stale_reads);
    // Stale reads still reached moto: every read is counted.
    let calls = r.proxy.calls();
    assert_eq!(count(&calls, "DescribeDBClusters"), 1 + 1 + stale_reads + 1);
    assert_eq!(count(&calls, "FailoverDBCluster"), 1);

    // The next failover freezes the answer seen last (orders-2), not the first one.
    failover(&r.rds, "orders-1").await.unwrap();
    assert_eq!(writer(&r.direct).await, "orders-1");
    assert_eq!(
        writer(&r.rds).await,
        "orders-2",
        "stale again, at the newer answer"
    );

    // Other mutations do not freeze anything.
    r.proxy.reset_faults();
    assert_eq!(writer(&r.rds).await, "orders-1");
    r.proxy.stale_reads_after("FailoverDBCluster", lag);
    create_cluster(&r.rds, "other").await.unwrap();
    assert_eq!(writer(&r.rds).await, "orders-1");
    failover(&r.direct, "orders-2").await.unwrap();
    assert_eq!(
        writer(&r.rds).await,
        "orders-2",
        "a failover not seen by the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_before_the_nth_mutating_call_keeps_it_from_moto() {
    let r = rig().await;
    let (mut child, pid) = victim();
    r.proxy.kill_at(2, KillWhen::Before, 0);
    r.proxy.set_victim(pid);

    create_cluster(&r.rds, "first").await.unwrap();
    writer(&r.rds).await; // reads do not count
    assert!(alive(&mut child), "killed at the first mutating call");
    assert!(!r.proxy.fired());

    let err = create_cluster(&r.rds, "second").await.unwrap_err();
    assert!(err.contains("502") || err.contains("killed"), "{err}");
    assert_eq!(exit_of(&mut child).await.signal(), Some(libc::SIGKILL));
    assert!(r.proxy.fired());
    assert_eq!(r.proxy.fired_on().as_deref(), Some("CreateDBCluster"));
    assert_eq!(
        r.proxy.calls(),
        ["CreateDBCluster", "DescribeDBClusters"],
        "the second CreateDBCluster never reached moto"
    );
    assert!(cluster_exists(&r.direct, "first").await);
    assert!(!cluster_exists(&r.direct, "second").await);

    // Fired once; then the proxy is back to normal.
    let (mut other, pid) = victim();
    r.proxy.set_victim(pid);
    create_cluster(&r.rds, "third").await.unwrap();
    failover(&r.rds, "orders-2").await.unwrap();
    assert!(alive(&mut other));
    assert_eq!(
        r.proxy.mutating(),
        ["CreateDBCluster", "CreateDBCluster", "FailoverDBCluster"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_after_the_mutating_call_lets_moto_process_it() {
    let r = rig().await;
    let (mut child, pid) = victim();
    r.proxy.kill_at(1, KillWhen::After, pid);

    // The caller here is not the victim, so it still gets moto's answer.
    failover(&r.rds, "orders-2").await.unwrap();
    assert_eq!(exit_of(&mut child).await.signal(), Some(libc::SIGKILL));
    assert_eq!(r.proxy.fired_on().as_deref(), Some("FailoverDBCluster"));
    assert_eq!(r.proxy.calls(), ["FailoverDBCluster"]);
    assert_eq!(writer(&r.direct).await, "orders-2");
}

/// A real client as the victim: `curl` sends CreateDBCluster through the proxy. Killed after,
/// moto created the cluster and curl printed nothing; killed before, there is no cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_of_the_caller_itself_loses_the_answer_or_the_call() {
    let r = rig().await;
    for (when, id) in [
        (KillWhen::After, "by-curl-after"),
        (KillWhen::Before, "by-curl-before"),
    ] {
        r.proxy.clear();
        r.proxy.kill_on("CreateDBCluster", 1, when, 0);
        let body = format!(
            "Action=CreateDBCluster&Version=2014-10-31&DBClusterIdentifier={id}\
             &Engine=aurora-postgresql&MasterUsername=admin\
             &MasterUserPassword=correct-horse-battery"
        );
        let auth = format!(
            "Authorization: AWS4-HMAC-SHA256 Credential=test/20240101/{REGION}/rds/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let mut curl = Command::new("curl")
            // A generous budget: under a loaded machine moto may take seconds to answer, and curl
            // giving up on its own would not be the kill this test checks.
            .args(["-s", "-m", "90", "-H", &auth, "--data", &body])
            .arg(format!("{}/", r.proxy.endpoint()))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn curl");
        // The pid is known only now: the trigger waits for it.
        r.proxy.set_victim(curl.id().unwrap());
        let status = exit_of(&mut curl).await;
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(curl.stdout.as_mut().unwrap(), &mut out)
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{when:?}");
        assert_eq!(out, "", "{when:?}: curl got no answer");
        assert!(r.proxy.fired(), "{when:?}");
        let reached = when == KillWhen::After;
        assert_eq!(r.proxy.calls().len(), usize::from(reached), "{when:?}");
        assert_eq!(cluster_exists(&r.direct, id).await, reached, "{when:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_kill_on_a_read_during_a_wait() {
    let r = rig().await;
    let r53 = aws_sdk_route53::Client::new(&sdk(&r.proxy.endpoint(), false).await);
    let zone = r53
        .create_hosted_zone()
        .name("example.com.")
        .caller_reference("proxy-checks")
        .send()
        .await
        .expect("CreateHostedZone");
    let change = zone.change_info().unwrap().id().to_string();
    r.proxy.clear();

    let (mut child, pid) = victim();
    r.proxy.kill_on("GetChange", 2, KillWhen::Before, pid);
    r53.get_change().id(&change).send().await.unwrap();
    assert!(alive(&mut child));
    assert!(r53.get_change().id(&change).send().await.is_err());
    assert_eq!(exit_of(&mut child).await.signal(), Some(libc::SIGKILL));
    assert_eq!(r.proxy.fired_on().as_deref(), Some("GetChange"));
    assert_eq!(r.proxy.calls(), ["GetChange"]);
}
