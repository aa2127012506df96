//! Region evacuation in the simulator: the stock `runbooks/region-evacuation.toml` on
//! `config/sim/global-storefront.toml` (Aurora global databases, writers in us-west-2). A
//! graceful switchover with both regions healthy; with us-west-2's control plane impaired, the
//! switchover stuck and escalated to a failover with data loss (at once with `auto`, after the
//! simulated second person's approval with `approval`); the dry run listing the exact calls;
//! the failed region's endpoint failing as AWS's would; the replication lag growing with the
//! time the primary region has been impaired; the topology's checks. Fixed seeds; assertions
//! on behaviour (regions, statuses, calls, journal events), not on exact timings.

use failover::app::simulate::{simulate_runs, SimReport, SimRun};
use failover::cloud::sim::topology::Span;
use failover::cloud::sim::{environment_for, ApiCall, Event, Fault, SimCloud, Topology};
use failover::cloud::{Clock, ErrorKind, GlobalDatabases, Metrics};
use failover::env::Group;
use failover::progress::Progress;
use failover::runbook::Runbook;
use failover::status::StepStatus;
use failover::types::{GlobalClusterId, Region};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const GLOBALS: [&str; 3] = ["orders-global", "payments-global", "catalog-global"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn topology() -> Topology {
    Topology::load(&root().join("config/sim/global-storefront.toml")).expect("global topology")
}

fn runbook() -> Runbook {
    Runbook::load(&root().join("runbooks/region-evacuation.toml")).expect("stock runbook")
}

fn faults(lines: &[&str]) -> Vec<Fault> {
    lines.iter().map(|l| l.parse().unwrap()).collect()
}

fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = vec![
        ("failed_region".to_string(), "us-west-2".to_string()),
        ("recovery_region".to_string(), "us-east-1".to_string()),
    ];
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    p
}

fn simulate(t: &Topology, extra: &[(&str, &str)], fault_lines: &[&str], seed: u64) -> SimReport {
    let rb = runbook();
    simulate_runs(
        &[SimRun::new(&rb, &params(extra))],
        &environment_for(t),
        t,
        &faults(fault_lines),
        seed,
    )
    .unwrap_or_else(|e| panic!("simulation did not start: {e}"))
}

/// The mutating global calls the world received: (operation, ok).
fn global_calls(r: &SimReport) -> Vec<(String, bool)> {
    r.timeline
        .iter()
        .filter_map(|e| match &e.event {
            Event::Api(ApiCall {
                operation,
                ok,
                mutating: true,
                ..
            }) if operation.contains("GlobalCluster") => Some((operation.clone(), *ok)),
            _ => None,
        })
        .collect()
}

fn writer_regions(r: &SimReport) -> Vec<(String, Vec<String>)> {
    r.final_state
        .global_clusters
        .iter()
        .map(|g| {
            (
                g.id.to_string(),
                g.writer_regions.iter().map(|r| r.to_string()).collect(),
            )
        })
        .collect()
}

fn all_in(r: &SimReport, region: &str) -> bool {
    let w = writer_regions(r);
    w.len() == 3 && w.iter().all(|(_, rs)| rs == &vec![region.to_string()])
}

fn engine_texts(r: &SimReport) -> Vec<String> {
    r.timeline
        .iter()
        .filter_map(|e| match &e.event {
            Event::Engine {
                progress: Progress::Skip { text, .. },
            } => Some(text.clone()),
            Event::Engine {
                progress: Progress::ApprovalRequested { message, .. },
            } => Some(format!("approval requested: {message}")),
            _ => None,
        })
        .collect()
}

fn step(r: &SimReport, id: &str) -> Option<StepStatus> {
    r.steps.iter().find(|s| s.id == id).and_then(|s| s.status)
}

/// Both regions healthy: the switchover completes in minutes, no failover is made, nothing is
/// lost, and every invariant holds.
#[test]
fn a_healthy_region_switches_over_gracefully_without_data_loss() {
    for seed in [1, 14, 99] {
        let r = simulate(&topology(), &[("escalate", "auto")], &[], seed);
        assert!(r.succeeded(), "seed {seed}: {:?}", r.reasons);
        assert!(all_in(&r, "us-east-1"), "{:?}", writer_regions(&r));
        let calls = global_calls(&r);
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls
            .iter()
            .all(|(op, ok)| op == "SwitchoverGlobalCluster" && *ok));
        assert!(r.final_state.data_lost.is_empty());
        assert!(
            r.simulated_ms < 5 * 60_000,
            "a switchover takes minutes, under escalate_after: {} ms",
            r.simulated_ms
        );
        assert_eq!(step(&r, "move-writers"), Some(StepStatus::Succeeded));
        // The region's zones are the failed ones; recovered when the last writer left.
        assert!(r
            .failed_zones
            .evacuated
            .contains(&failover::types::Zone::from("us-west-2a")));
        let ttr = r.time_to_recover_ms.expect("recovered");
        assert!(ttr > 60_000 && ttr < 5 * 60_000, "seed {seed}: {ttr} ms");
        for name in ["global-one-writer-region", "global-data-loss-reported"] {
            let inv = r.invariant(name).unwrap_or_else(|| panic!("{name}"));
            assert!(inv.details.is_empty(), "{name}: {:?}", inv.details);
        }
    }
}

/// us-west-2 impaired, `escalate = auto`: the switchover is made, stays stuck past
/// `escalate_after`, and the step fails over with data loss at once; the writers end in
/// us-east-1, the data at risk reported before each failover, the loss in the final state.
#[test]
fn an_impaired_primary_region_escalates_to_a_failover_with_data_loss() {
    let r = simulate(
        &topology(),
        &[("escalate", "auto")],
        &["region-impaired us-west-2 at 0s"],
        14,
    );
    assert!(r.succeeded(), "{:?}", r.reasons);
    assert!(all_in(&r, "us-east-1"), "{:?}", writer_regions(&r));
    let calls = global_calls(&r);
    let ops: Vec<&str> = calls.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        ops.iter()
            .filter(|o| **o == "SwitchoverGlobalCluster")
            .count(),
        3,
        "{ops:?}"
    );
    assert_eq!(
        ops.iter()
            .filter(|o| **o == "FailoverGlobalCluster")
            .count(),
        3,
        "{ops:?}"
    );
    let first_failover = ops.iter().position(|o| *o == "FailoverGlobalCluster");
    let last_switchover = ops.iter().rposition(|o| *o == "SwitchoverGlobalCluster");
    assert!(last_switchover < first_failover, "graceful first: {ops:?}");
    let texts = engine_texts(&r);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("escalating") && t.contains("has not completed within 5m")),
        "{texts:#?}"
    );
    for g in GLOBALS {
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("`{g}`")) && t.contains("data at risk: about")),
            "no data at risk for {g}: {texts:#?}"
        );
    }
    assert_eq!(r.final_state.data_lost.len(), 3);
    assert!(r.final_state.data_lost.iter().all(|l| l.lost_ms > 60_000.0));
    // Recovered once the last failover completed: after the 5 minutes of escalate_after.
    let ttr = r.time_to_recover_ms.expect("recovered");
    assert!(ttr > 5 * 60_000 && ttr < 8 * 60_000, "{ttr} ms");
    let inv = r.invariant("global-data-loss-reported").unwrap();
    assert!(inv.details.is_empty(), "{:?}", inv.details);
    // No call went to the impaired region's endpoint.
    assert!(!r.timeline.iter().any(|e| matches!(&e.event,
        Event::Api(ApiCall { resource, .. }) if resource.ends_with("on us-west-2"))));
}

/// `escalate = approval`: the escalation waits for a person, who is told the data at risk;
/// the failover is made only after the approval. With nobody to approve, nothing fails over.
#[test]
fn with_approval_the_failover_waits_for_a_person() {
    let mut t = topology();
    t.approval.after = Some(Duration::from_secs(120));
    let r = simulate(&t, &[], &["region-impaired us-west-2 at 0s"], 14);
    assert!(r.succeeded(), "{:?}", r.reasons);
    assert!(all_in(&r, "us-east-1"));
    let at = |pred: &dyn Fn(&Event) -> bool| {
        r.timeline
            .iter()
            .find(|e| pred(&e.event))
            .map(|e| e.at_ms)
            .unwrap()
    };
    let asked = at(&|e| {
        matches!(e, Event::Engine { progress: Progress::ApprovalRequested { message, .. } }
            if message.contains("data at risk"))
    });
    let approved = at(
        &|e| matches!(e, Event::World { text } if text.contains("approves step `move-writers`")),
    );
    let failover = at(
        &|e| matches!(e, Event::Api(ApiCall { operation, mutating: true, .. }) if operation == "FailoverGlobalCluster"),
    );
    assert!(
        asked >= 5 * 60_000,
        "asked at {asked} ms, after escalate_after"
    );
    assert!(
        asked < approved && approved <= failover,
        "{asked} {approved} {failover}"
    );

    // Nobody approves: the writers stay in us-west-2, no failover is made.
    t.approval.after = None;
    t.timing.max_duration = Duration::from_secs(20 * 60);
    let r = simulate(&t, &[], &["region-impaired us-west-2 at 0s"], 14);
    assert!(!r.succeeded());
    assert!(all_in(&r, "us-west-2"), "{:?}", writer_regions(&r));
    assert!(global_calls(&r)
        .iter()
        .all(|(op, _)| op == "SwitchoverGlobalCluster"));
    assert!(engine_texts(&r)
        .iter()
        .any(|t| t.starts_with("approval requested")
            && t.contains("FailoverGlobalCluster AllowDataLoss=true")));
}

/// The `failover` binary with a config directory whose environment `global` is the
/// global-storefront topology (seed 14), and a journal of its own.
struct GlobalCli(tempfile::TempDir);

impl GlobalCli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let topo = root().join("config/sim/global-storefront.toml");
        std::fs::write(
            dir.path().join("global.toml"),
            format!("simulated = {:?}\nseed = 14\n", topo.to_str().unwrap()),
        )
        .unwrap();
        GlobalCli(dir)
    }

    /// Run it with `args`; its stdout (it must succeed).
    fn run(&self, args: &[&str]) -> String {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
            .current_dir(root())
            .arg("--config-dir")
            .arg(self.0.path())
            .arg("--journal")
            .arg(self.0.path().join("journal.db"))
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{args:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }
}

/// The dry run (`failover plan`) against an environment that names the topology lists the
/// switchovers and the contingent failovers, each on the us-east-1 endpoint; and the stock
/// runbooks' region evacuation validates against it.
#[test]
fn the_dry_run_lists_the_exact_global_calls() {
    let cli = GlobalCli::new();
    let failover = |args: &[&str]| cli.run(args);
    let plan = failover(&[
        "plan",
        "runbooks/region-evacuation.toml",
        "--env",
        "global",
        "-p",
        "failed_region=us-west-2",
        "-p",
        "recovery_region=us-east-1",
    ]);
    for g in GLOBALS {
        let east = g.replace("-global", "-east");
        for want in [
            format!("SwitchoverGlobalCluster GlobalClusterIdentifier={g} TargetDbClusterIdentifier=arn:aws:rds:us-east-1:123456789012:cluster:{east} on the us-east-1 endpoint"),
            format!("FailoverGlobalCluster GlobalClusterIdentifier={g} TargetDbClusterIdentifier=arn:aws:rds:us-east-1:123456789012:cluster:{east} AllowDataLoss=true on the us-east-1 endpoint"),
        ] {
            assert!(plan.contains(&want), "missing `{want}` in:\n{plan}");
        }
    }
    // The records valued per region move to the recovery region's value once the writers
    // have (one ChangeResourceRecordSets for the hosted zone).
    for want in [
        "UPSERT api.global.shop.example.com. CNAME ttl=60 -> storefront.us-east-1.elb.amazonaws.com",
        "UPSERT orders-writer.shop.example.com. CNAME ttl=5 -> orders-east.cluster-sim.us-east-1.rds.amazonaws.com",
    ] {
        assert!(plan.contains(want), "missing `{want}` in:\n{plan}");
    }
    assert!(
        plan.contains("6 mutating call(s) planned, up to 3 more"),
        "{plan}"
    );
    // The reads of the global databases (on the recovery region's endpoint, paced by its own
    // limiter) are counted with the others: one DescribeGlobalClusters per global cluster.
    assert!(
        plan.contains("Observed with 5 AWS call(s): 5 read(s), 0 mutating; 0 throttled, 0 failed (RDS 3, Route 53 2)"),
        "{plan}"
    );
    let ok = failover(&["validate", "runbooks/region-evacuation.toml"]);
    assert!(ok.starts_with("ok: 1 runbook(s)"), "{ok}");
}

/// `failover rollback` of a region evacuation reads from the journal which global clusters
/// the run moved and where from, and plans to switch each back (and to restore the records).
/// Each `failover` process of a simulated environment starts the topology's world afresh, so
/// the rollback's world has the writers at home again: every switch-back is planned and found
/// done (`switching_back_after_the_region_recovers_returns_the_writers` makes the move itself).
#[test]
fn rollback_plans_to_switch_every_moved_global_cluster_back() {
    let cli = GlobalCli::new();
    let failover = |args: &[&str]| cli.run(args);
    failover(&[
        "run",
        "runbooks/region-evacuation.toml",
        "--env",
        "global",
        "-p",
        "failed_region=us-west-2",
        "-p",
        "recovery_region=us-east-1",
    ]);
    let runs: serde_json::Value =
        serde_json::from_str(&failover(&["runs", "--output", "json"])).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let plan = failover(&["rollback", &id, "--dry-run"]);
    for g in GLOBALS {
        for want in [
            format!(
                "switch global cluster {g} back to us-west-2, where run {id} moved its writer from"
            ),
            format!("skip: global cluster `{g}`: writer already in us-west-2: nothing to do"),
        ] {
            assert!(plan.contains(&want), "missing `{want}` in:\n{plan}");
        }
    }
    assert!(
        plan.contains(&format!(
            "restore the records run {id} changed in hosted zone Z0SHOPGLOBAL1"
        )),
        "{plan}"
    );
}

/// Run `f` against the raw (non-retrying) ports of the global world, with no API latency.
fn with_world<T>(fault_lines: &[&str], f: impl AsyncFnOnce(Arc<SimCloud>) -> T) -> T {
    let mut t = topology();
    t.timing.api_latency = Span::fixed(Duration::ZERO);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = SimCloud::new(&t, &faults(fault_lines), 3);
        let driver = tokio::spawn(cloud.driver());
        let out = f(cloud).await;
        driver.abort();
        out
    })
}

/// A call to a region that is down fails as a connection failure (transient, never
/// processed); to an impaired region, most calls are throttled or answer 5xx; the recovery
/// region's endpoint answers.
#[test]
fn the_failed_regions_endpoint_fails_as_aws_would() {
    let (west, east) = (Region::from("us-west-2"), Region::from("us-east-1"));
    let ids = [GlobalClusterId::from("orders-global")];
    with_world(&["region-down us-west-2 at 0s"], async |cloud| {
        let g = cloud.global_databases(None);
        let e = g.describe_global_clusters(&west, &ids).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient, "{e}");
        assert!(
            e.message
                .contains("rds.us-west-2.amazonaws.com is unreachable"),
            "{e}"
        );
        let found = g.describe_global_clusters(&east, &ids).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].writer().unwrap().region, west);
        // A failover on the recovery region's endpoint works with the old primary down.
        let arn = found[0].member_in(&east).unwrap().cluster_arn.clone();
        g.failover_global_cluster(&east, &ids[0], &arn)
            .await
            .unwrap();
        let again = g
            .failover_global_cluster(&east, &ids[0], &arn)
            .await
            .unwrap_err();
        assert_eq!(
            again.code.as_deref(),
            Some("InvalidGlobalClusterStateFault"),
            "{again}"
        );
        cloud.clock().sleep(Duration::from_secs(120)).await;
        let found = g.describe_global_clusters(&east, &ids).await.unwrap();
        assert!(found[0].writable_in(&east), "{:?}", found[0]);
    });
    with_world(&["region-impaired us-west-2 at 0s"], async |cloud| {
        let g = cloud.global_databases(None);
        let (mut failed, mut kinds) = (0, std::collections::BTreeSet::new());
        for _ in 0..40 {
            if let Err(e) = g.describe_global_clusters(&west, &ids).await {
                failed += 1;
                kinds.insert(format!("{:?}", e.kind));
            }
        }
        assert!((20..40).contains(&failed), "{failed} of 40 failed");
        assert_eq!(kinds.len(), 2, "throttled and 5xx: {kinds:?}");
        for _ in 0..10 {
            g.describe_global_clusters(&east, &ids).await.unwrap();
        }
        let e = g
            .describe_global_clusters(&east, &[GlobalClusterId::from("nope")])
            .await
            .unwrap();
        assert!(
            e.is_empty(),
            "an unknown id is absent, as the adapter reads NotFound"
        );
    });
}

/// The replication lag (what a failover would lose) is small while the primary region is
/// healthy and grows with the time it has been impaired; CloudWatch answers it for the
/// secondary cluster, nothing for the primary.
#[test]
fn the_lag_grows_with_the_impairment() {
    let id = GlobalClusterId::from("orders-global");
    let east = Region::from("us-east-1");
    let lags = |fault_lines: &[&str]| {
        with_world(fault_lines, async |cloud| {
            let m = cloud.metrics(None);
            let mut out = vec![];
            for _ in 0..3 {
                cloud.clock().sleep(Duration::from_secs(120)).await;
                let model = cloud.global_lag_ms(&id).unwrap();
                let cw = m
                    .latest_rds_metric(
                        &east,
                        "AuroraGlobalDBRPOLag",
                        ("DBClusterIdentifier", "orders-east"),
                        Duration::from_secs(300),
                    )
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(model, cw);
                out.push(model);
            }
            let primary = m
                .latest_rds_metric(
                    &east,
                    "AuroraGlobalDBRPOLag",
                    ("DBClusterIdentifier", "orders-west"),
                    Duration::from_secs(300),
                )
                .await
                .unwrap();
            assert_eq!(primary, None, "orders-west is not in us-east-1");
            out
        })
    };
    let healthy = lags(&[]);
    assert!(healthy.iter().all(|l| *l < 1000.0), "{healthy:?}");
    let impaired = lags(&["region-impaired us-west-2 at 0s"]);
    assert!(
        impaired[0] > 30_000.0 && impaired[0] < impaired[1] && impaired[1] < impaired[2],
        "{impaired:?}"
    );
    let down = lags(&["region-down us-west-2 at 0s"]);
    assert!(
        down[2] > impaired[2],
        "a region down replicates nothing: {down:?} vs {impaired:?}"
    );
}

/// The topology's regions and global clusters become the environment's `regions` and a
/// `global_clusters` group; every problem is reported at once, an unknown region in a fault
/// names the topology's regions.
#[test]
fn the_topology_checks_regions_and_global_clusters() {
    let t = topology();
    let env = environment_for(&t);
    assert_eq!(
        env.regions,
        vec![Region::from("us-west-2"), Region::from("us-east-1")]
    );
    match env.groups.get("orders_global") {
        Some(Group::GlobalClusters { global_clusters }) => assert_eq!(global_clusters.len(), 3),
        other => panic!("{other:?}"),
    }
    let text = std::fs::read_to_string(root().join("config/sim/global-storefront.toml")).unwrap();
    let bad = text
        .replacen(
            "zone = \"us-east-1a\", tier = 0 }",
            "zone = \"us-west-2a\", tier = 0 }",
            1,
        )
        .replacen(
            "writer_region = \"us-west-2\"",
            "writer_region = \"eu-west-1\"",
            1,
        )
        .replacen(
            "seed = 14",
            "seed = 14\nfaults = [\"region-impaired eu-central-1 at 0s\"]",
            1,
        );
    let e = Topology::parse(&bad, "bad.toml").unwrap_err().to_string();
    for want in [
        "instance `orders-east-1`: `us-west-2a` is not a zone of us-east-1 in the topology",
        "writer_region = \"eu-west-1\" but no member cluster is in it",
        "`eu-central-1` is not a region of topology `global-storefront` (its regions: us-west-2, us-east-1)",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
    // A single-region topology keeps its one region.
    let one = Topology::load(&root().join("config/sim/storefront.toml")).unwrap();
    assert_eq!(
        environment_for(&one).regions,
        vec![Region::from("us-west-2")]
    );
}

/// After a failover with data loss, once us-west-2 is back, switching the writers back (what
/// `failover rollback` plans for a run that moved global clusters: a graceful move to the
/// region each writer left) returns every writer to its starting region, with no further
/// loss. (Each `failover` process of a simulated environment starts a fresh world, so the
/// rollback command itself is exercised against one world here through the same action.)
#[test]
fn switching_back_after_the_region_recovers_returns_the_writers() {
    let t = topology();
    let rb = runbook();
    let back = [
        ("failed_region".to_string(), "us-east-1".to_string()),
        ("recovery_region".to_string(), "us-west-2".to_string()),
    ];
    let r = simulate_runs(
        &[
            SimRun::new(&rb, &params(&[("escalate", "auto")])),
            SimRun::new(&rb, &back).at(Duration::from_secs(30 * 60)),
        ],
        &environment_for(&t),
        &t,
        &faults(&["region-impaired us-west-2 at 0s for 20m"]),
        14,
    )
    .unwrap();
    assert!(r.succeeded(), "{:?}", r.reasons);
    assert!(all_in(&r, "us-west-2"), "{:?}", writer_regions(&r));
    let ops: Vec<String> = global_calls(&r).into_iter().map(|(o, _)| o).collect();
    assert_eq!(
        ops.iter().filter(|o| *o == "FailoverGlobalCluster").count(),
        3
    );
    assert_eq!(
        ops.iter()
            .filter(|o| *o == "SwitchoverGlobalCluster")
            .count(),
        6,
        "3 stuck, 3 back: {ops:?}"
    );
    // Only the escalation lost writes; the switch back lost none.
    assert_eq!(r.final_state.data_lost.len(), 3);
    assert!(r
        .final_state
        .data_lost
        .iter()
        .all(|l| l.to.as_str() == "us-east-1"));
}

/// `AuroraReplicaLag` of a regional Aurora reader: a small figure; none for the writer, none
/// for a reader in a zone that is down.
#[test]
fn a_regional_readers_lag_comes_from_the_model() {
    let t = Topology::load(&root().join("config/sim/storefront.toml")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = SimCloud::new(&t, &faults(&["az-down us-west-2c at 0s"]), 5);
        let driver = tokio::spawn(cloud.driver());
        let m = cloud.metrics(None);
        let west = Region::from("us-west-2");
        let lag = |id: &'static str| {
            let m = m.clone();
            let west = west.clone();
            async move {
                m.latest_rds_metric(
                    &west,
                    "AuroraReplicaLag",
                    ("DBInstanceIdentifier", id),
                    Duration::from_secs(300),
                )
                .await
                .unwrap()
            }
        };
        let reader = lag("orders-db-b").await.expect("a reader has a lag");
        assert!((10.0..=100.0).contains(&reader), "{reader}");
        assert_eq!(lag("orders-db-a").await, None, "the writer emits none");
        assert_eq!(lag("orders-db-c").await, None, "its zone is down");
        driver.abort();
    });
}

/// The writers' move alone, without the status page (so the first mutating call of a run is a
/// switchover).
const MOVE_ONLY: &str = r#"
name = "move-writers"
[params.failed_region]
required = true
[params.recovery_region]
required = true
[[steps]]
id = "move-writers"
action = "rds.switchover_global"
group = "orders_global"
evacuate_region = "${failed_region}"
to_region = "${recovery_region}"
escalate_after = "5m"
escalate = "auto"
"#;

/// The process is killed the moment it sends its first SwitchoverGlobalCluster (the call takes
/// effect, its answer is lost: an intent without an outcome); `failover resume` a minute later
/// finds that global cluster switching over, waits for it instead of calling again, and
/// switches the others. Every writer ends in us-east-1 after exactly one switchover sent
/// each, no failover, and the run succeeds.
#[test]
fn a_run_killed_mid_switchover_is_resumed_without_a_second_switchover() {
    use failover::app::sim_actors::{simulate_actors, Actor};
    let t = topology();
    let env = environment_for(&t);
    let rb = Runbook::parse(failover::diag::SourceFile::new("move-only.toml", MOVE_ONLY)).unwrap();
    for seed in [3, 14, 21] {
        let actors = [
            Actor::Run(SimRun::new(&rb, &params(&[]))),
            Actor::KillMidCall {
                run: 0,
                at: Duration::ZERO,
            },
            Actor::Resume {
                run: 0,
                at: Duration::from_secs(60),
            },
        ];
        let r = simulate_actors(&actors, &env, &t, &[], seed).unwrap_or_else(|e| panic!("{e}"));
        let run = &r.runs[0];
        assert_eq!(
            run.status,
            Some(failover::status::RunStatus::Succeeded),
            "seed {seed}: {:?}",
            run.processes
        );
        assert!(
            run.processes.len() >= 2,
            "seed {seed}: killed, then resumed: {:?}",
            run.processes
        );
        let failover::app::sim_actors::Outcome::Killed { at_ms: killed } = run.processes[0].outcome
        else {
            panic!(
                "seed {seed}: the first process was not killed: {:?}",
                run.processes
            )
        };
        // Every call that reached the world, accepted or refused (a second switchover of a
        // global cluster switching over would be refused: it must not be sent at all).
        let sent = |op: &str| -> Vec<(u64, String)> {
            r.timeline
                .iter()
                .filter_map(|e| match &e.event {
                    Event::Api(ApiCall {
                        operation,
                        resource,
                        mutating: true,
                        ..
                    }) if operation == op => Some((
                        e.at_ms,
                        resource.split(' ').next().unwrap_or("").to_string(),
                    )),
                    _ => None,
                })
                .collect()
        };
        let switchovers = sent("SwitchoverGlobalCluster");
        let clusters: std::collections::BTreeSet<&str> =
            switchovers.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(
            (switchovers.len(), clusters.len()),
            (3, 3),
            "seed {seed}: one switchover sent per global cluster: {switchovers:?}"
        );
        // The call the kill interrupted went out and took effect (it lands after the kill,
        // with the API's latency), before the resume: the resume must not make it again.
        assert!(
            killed < 60_000 && switchovers[0].0 < 60_000,
            "seed {seed}: {switchovers:?} (killed at {killed} ms)"
        );
        assert!(sent("FailoverGlobalCluster").is_empty(), "seed {seed}");
        let writers: Vec<_> = r
            .final_state
            .global_clusters
            .iter()
            .map(|g| (g.id.to_string(), g.writer_regions.clone()))
            .collect();
        assert!(
            writers
                .iter()
                .all(|(_, w)| w.len() == 1 && w[0].as_str() == "us-east-1"),
            "seed {seed}: {writers:?}"
        );
        assert!(r.chain_intact);
    }
}
