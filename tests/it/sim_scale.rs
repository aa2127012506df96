//! The simulator at scale: generated topologies (`[generate]`) expand, are refused with
//! file:line:col and a hint when they ask for too much, and are evacuated by the stock runbook
//! with every invariant held; reads are paged as AWS pages them, each page a call; the
//! history keeps one delta per event. Memory and wall time at 2,000 clusters are measured by
//! `scripts/bench-scale`, not asserted here (no timed test).

use crate::common;
use failover::app::simulate::simulate;
use failover::cloud::sim::{environment_for, Event, Fault, SimCloud, Topology};
use failover::cloud::{ChangeAction, Databases, Dns, RecordChange, RecordSet};
use failover::env::Group;
use failover::runbook::Runbook;
use failover::types::ClusterId;
use std::path::PathBuf;
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated(body: &str) -> String {
    format!(
        "name = \"gen\"\nregion = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\", \
         \"us-west-2c\"]\n\n[generate]\n{body}\n"
    )
}

fn parse(body: &str) -> Topology {
    Topology::parse(&generated(body), "gen.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn problems(body: &str) -> Vec<String> {
    match Topology::parse(&generated(body), "gen.toml") {
        Ok(_) => panic!("accepted: {body}"),
        Err(e) => e.problems,
    }
}

#[test]
fn generate_expands_to_clusters_records_and_the_evacuation_groups() {
    let t = parse("clusters = 12\nreaders = 2\nrecords_per_cluster = 3\nmulti_az_share = 0.25");
    assert_eq!(t.clusters.len(), 12);
    assert_eq!(t.instances.len(), 3, "round(12 x 0.25) Multi-AZ instances");
    let c = &t.clusters[4];
    assert_eq!(c.id.as_str(), "db-00005");
    assert_eq!(c.writer.as_str(), "db-00005-w");
    let zones: Vec<&str> = c.members.iter().map(|m| m.zone.as_str()).collect();
    assert_eq!(zones[0], "us-west-2a", "the writer in the first zone");
    assert!(
        zones[1..].iter().all(|z| *z != "us-west-2a"),
        "readers in the other zones: {zones:?}"
    );
    let mut reader_zones: Vec<&str> = t
        .clusters
        .iter()
        .flat_map(|c| c.members.iter().skip(1).map(|m| m.zone.as_str()))
        .collect();
    reader_zones.sort();
    reader_zones.dedup();
    assert_eq!(
        reader_zones,
        ["us-west-2b", "us-west-2c"],
        "spread over both"
    );
    let hz = &t.hosted_zones[0];
    assert_eq!(hz.records.len(), 36);
    let r = &hz.records[0];
    assert_eq!(r.name, "r1.db-00001.generated.example.com.");
    assert_eq!(r.live.as_ref().map(|z| z.as_str()), Some("us-west-2a"));
    assert_eq!(r.values.len(), 3, "one endpoint per zone");
    let env = environment_for(&t);
    assert!(
        matches!(env.groups.get("aurora"), Some(Group::DbClusters { clusters }) if clusters.len() == 12)
    );
    assert!(
        matches!(env.groups.get("multi_az"), Some(Group::DbInstances { instances }) if instances.len() == 3)
    );
    assert!(
        matches!(env.groups.get("storefront"), Some(Group::Records { records, .. }) if records.len() == 36)
    );
    assert!(env.endpoints.contains_key("status_page") && env.endpoints.contains_key("chat"));
}

#[test]
fn generate_without_multi_az_still_has_the_group_the_runbook_names() {
    let env = environment_for(&parse("clusters = 2"));
    assert!(
        matches!(env.groups.get("multi_az"), Some(Group::DbInstances { instances }) if instances.is_empty())
    );
}

#[test]
fn generate_refuses_absurd_counts_with_the_place_and_the_limit() {
    let p = problems("clusters = 50000");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0],
        "gen.toml:6:12: `clusters` in [generate] is 50000, above the limit of 10000 (hint: the \
         simulator takes at most 10000 clusters in one generated topology; split a larger estate \
         into several topologies (one per account or region, as its quotas are))"
    );
    let p = problems("clusters = 5000\nrecords_per_cluster = 100");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("gen.toml:7:23: [generate] asks for 5000 clusters x 100 records = 500000 records, above the limit of 200000"),
        "{p:?}"
    );
    let p = problems("clusters = 3\nreaders = 16");
    assert!(p[0].starts_with("gen.toml:7:11: `readers` in [generate] is 16, above the limit of 15 (hint: an Aurora cluster has at most 15 readers"), "{p:?}");
}

#[test]
fn generate_reports_every_problem_at_once_with_hints() {
    let p = problems(
        "clusters = \"many\"\nwriter_zone = \"us-west-2d\"\nmulti_az_share = 1.5\nprefix = \"9db\"\nrecord_per_cluster = 3",
    );
    assert_eq!(p.len(), 5, "{p:#?}");
    assert!(p[0].starts_with("gen.toml:6:12: `clusters` in [generate] must be an integer, found a string (hint: give a count from 1 to 10000)"), "{p:#?}");
    assert!(p[1].starts_with("gen.toml:7:15: `writer_zone` in [generate]: `us-west-2d` is not a zone of the topology (hint: did you mean `us-west-2a`?)"), "{p:#?}");
    assert!(
        p[2].starts_with(
            "gen.toml:8:18: `multi_az_share` in [generate] must be a number from 0 to 1, found 1.5"
        ),
        "{p:#?}"
    );
    assert!(
        p[3].starts_with(
            "gen.toml:9:10: `prefix` in [generate]: `9db` cannot start an RDS identifier"
        ),
        "{p:#?}"
    );
    assert_eq!(p[4], "gen.toml:10:1: unknown key `record_per_cluster` in [generate] (hint: did you mean `records_per_cluster`?)");
    let p = problems("readers = 1");
    assert_eq!(p, ["gen.toml:5:1: [generate] is missing the required key `clusters` (hint: say how many Aurora clusters to generate: clusters = 500)"]);
}

#[test]
fn generated_names_that_collide_with_the_files_own_are_reported() {
    let text = generated("clusters = 1")
        + "\n[[clusters]]\nid = \"db-00001\"\nwriter = \"x-a\"\ninstances = [{ id = \"x-a\", zone = \"us-west-2a\" }, { id = \"x-b\", zone = \"us-west-2b\" }]\n";
    let e = Topology::parse(&text, "gen.toml").unwrap_err();
    assert!(
        e.problems
            .iter()
            .any(|p| p == "cluster `db-00001` is defined twice"),
        "{e}"
    );
}

#[test]
fn the_shipped_generated_topology_is_valid() {
    let t = Topology::load(&root().join("config/sim/generated-500.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.clusters.len(), 500);
    assert_eq!(t.hosted_zones[0].records.len(), 5000);
}

/// The stock AZ evacuation of `t` with us-west-2a down from the start (seed 5).
fn evacuate(t: &Topology) -> failover::app::simulate::SimReport {
    let rb = Runbook::load(&root().join("runbooks/az-evacuation.toml")).expect("valid");
    let fault: Fault = "az-down us-west-2a at 0s".parse().expect("valid");
    simulate(
        &rb,
        &environment_for(t),
        t,
        &[("failed_az".into(), "us-west-2a".into())],
        &[fault],
        5,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The stock runbook, unchanged, evacuates a generated estate; every invariant holds.
#[test]
fn a_generated_estate_is_evacuated_by_the_stock_runbook() {
    let t = parse("clusters = 120\nrecords_per_cluster = 4\nmulti_az_share = 0.05");
    let r = evacuate(&t);
    assert!(r.succeeded(), "{:?}", r.reasons);
    assert_eq!(r.final_state.clusters.len(), 120);
    assert!(r
        .final_state
        .clusters
        .iter()
        .all(|c| c.zone.as_str() != "us-west-2a"));
    assert!(r
        .final_state
        .instances
        .iter()
        .all(|i| i.zone.as_str() != "us-west-2a"));
    assert!(r
        .final_state
        .records
        .iter()
        .all(|r| !r.zones.iter().any(|z| z.as_str() == "us-west-2a")));
    r.time_to_recover().expect("recovered");
    let insync = r.route53_insync_ms.expect("every change INSYNC");
    // Records move as their clusters do (records_after), not after the last failover: the
    // last change is accepted, then goes INSYNC.
    let last_change = r
        .timeline
        .iter()
        .filter(|e| matches!(&e.event, Event::Api(c) if c.operation == "ChangeResourceRecordSets" && c.error.is_none()))
        .map(|e| e.at_ms)
        .max()
        .expect("records were changed");
    assert!(insync >= last_change, "INSYNC after the last record moved");
    // 480 records of 35-character values: at least 2 batches, whatever the engine does.
    let changes = r
        .api_calls
        .get("ChangeResourceRecordSets")
        .map_or(0, |c| c.calls);
    assert!(changes >= 2, "{changes}");
}

fn on_runtime<T>(t: &Topology, f: impl AsyncFnOnce(Arc<SimCloud>) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cloud = SimCloud::new(t, &[], 1);
        let driver = tokio::spawn(cloud.driver());
        let out = f(cloud).await;
        driver.abort();
        out
    })
}

/// Calls of `operation` on the timeline, with their resources.
fn calls(cloud: &SimCloud, operation: &str) -> Vec<String> {
    cloud
        .timeline()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Api(c) if c.operation == operation => Some(c.resource),
            _ => None,
        })
        .collect()
}

#[test]
fn describes_take_100_ids_per_call_and_pages_of_100_records() {
    let t = parse("clusters = 250\nreaders = 2\nrecords_per_cluster = 1");
    on_runtime(&t, async |cloud| {
        let ids: Vec<ClusterId> = t.clusters.iter().map(|c| c.id.clone()).collect();
        let db = cloud.databases();
        let clusters = db.describe_clusters(&ids).await.expect("described");
        assert_eq!(clusters.len(), 250);
        let pages = calls(&cloud, "DescribeDBClusters");
        assert_eq!(pages.len(), 3, "250 ids: 100 + 100 + 50, {pages:?}");
        assert_eq!(pages[2], "db-00201, db-00202, db-00203 and 47 more");
        // 750 instances: chunks of 100 clusters (300 instances: 3 pages) and 50 (2 pages).
        let instances = db
            .describe_cluster_instances(&ids)
            .await
            .expect("described");
        assert_eq!(instances.len(), 750);
        let mut distinct: Vec<_> = instances.iter().map(|i| i.id.clone()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 750, "no instance twice across pages");
        let pages = calls(&cloud, "DescribeDBInstances");
        assert_eq!(pages.len(), 8, "{pages:#?}");
        assert!(pages[1].ends_with("(page 2)"), "{pages:?}");
        // The same ids twice are one filter value.
        let twice: Vec<ClusterId> = ids.iter().chain(ids.iter()).cloned().collect();
        db.describe_clusters(&twice).await.expect("described");
        assert_eq!(calls(&cloud, "DescribeDBClusters").len(), 6);
        // No ids, no call (as the AWS adapter).
        db.describe_clusters(&[]).await.expect("described");
        assert_eq!(calls(&cloud, "DescribeDBClusters").len(), 6);
    });
}

#[test]
fn record_sets_are_listed_in_pages_of_300() {
    let t = parse("clusters = 61\nrecords_per_cluster = 10");
    let zone = t.hosted_zones[0].id.clone();
    on_runtime(&t, async |cloud| {
        let sets = cloud.dns().list_record_sets(&zone).await.expect("listed");
        assert_eq!(sets.len(), 610);
        let mut keys: Vec<_> = sets.iter().map(|s| s.key()).collect();
        keys.dedup();
        assert_eq!(keys.len(), 610, "in order, none twice");
        let pages = calls(&cloud, "ListResourceRecordSets");
        assert_eq!(pages.len(), 3, "300 + 300 + 10: {pages:?}");
    });
}

#[test]
fn each_page_takes_a_token_of_the_account_bucket() {
    // A bucket of 2: the third page of a listing is throttled (its answer, not the listing,
    // is what AWS refuses), and the raw ports report it.
    let text = generated("clusters = 61\nrecords_per_cluster = 10")
        + "\n[quotas]\nroute53_burst = 2\nroute53_refill_per_s = 0.001\n";
    let t = Topology::parse(&text, "gen.toml").unwrap_or_else(|e| panic!("{e}"));
    let zone = t.hosted_zones[0].id.clone();
    on_runtime(&t, async |cloud| {
        let e = cloud.dns().list_record_sets(&zone).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("Throttling"), "{e}");
        assert_eq!(calls(&cloud, "ListResourceRecordSets").len(), 3);
    });
}

#[test]
fn the_history_keeps_one_delta_per_event() {
    let t = parse("clusters = 40\nrecords_per_cluster = 5");
    let hz = t.hosted_zones[0].clone();
    on_runtime(&t, async |cloud| {
        let db = cloud.databases();
        for c in &t.clusters {
            let target = c.members[1].id.clone();
            db.failover_cluster(&c.id, &target).await.expect("accepted");
        }
        cloud
            .virtual_time()
            .sleep(std::time::Duration::from_secs(40))
            .await;
        let to = failover::types::Zone::new("us-west-2b");
        let changes: Vec<RecordChange> = hz
            .records
            .iter()
            .map(|r| RecordChange {
                action: ChangeAction::Upsert,
                record: RecordSet {
                    name: r.name.clone(),
                    rtype: r.rtype.clone(),
                    ttl: Some(r.ttl),
                    values: r.values[&to].clone(),
                    ..RecordSet::default()
                },
            })
            .collect();
        // Two batches of 100 records, 2 s apart (the zone's prior-request window).
        for half in changes.chunks(100) {
            cloud
                .dns()
                .change_record_sets(&hz.id, "test", half)
                .await
                .expect("accepted");
            cloud
                .virtual_time()
                .sleep(std::time::Duration::from_secs(2))
                .await;
        }
        cloud.settle();
        let h = cloud.history();
        // The start (40 clusters + 200 records), one entry per cluster moved (40 events), one
        // per record moved (2 events): nothing copied per event.
        assert_eq!(h.len(), 1 + 40 + 2);
        assert_eq!(h.stored_entries(), 240 + 40 + 200);
        assert!(h
            .last()
            .values()
            .all(|z| !z.iter().any(|z| z.as_str() == "us-west-2a")));
        let snaps = h.snapshots();
        assert_eq!(snaps.len(), 43);
        assert_eq!(&snaps[42].1, h.last());
    });
}

/// An evacuation of `clusters` generated clusters (10 records each, writers in us-west-2a,
/// AWS's default quotas, poll 5 s), and its quota floor (`model::floor`, as
/// `scripts/bench-scale` computes it).
fn evacuate_generated(
    clusters: usize,
    seed: u64,
) -> (
    failover::app::simulate::SimReport,
    failover::cloud::model::Floor,
) {
    use failover::cloud::model::{self, Quotas};
    use failover::types::Zone;
    let t = parse(&format!(
        "clusters = {clusters}\nrecords_per_cluster = 10\n\n[settings]\npoll_interval = \"5s\""
    ));
    let rb = Runbook::load(&root().join("runbooks/az-evacuation.toml")).expect("valid");
    let fault: Fault = "az-down us-west-2a at 0s".parse().expect("valid");
    let r = simulate(
        &rb,
        &environment_for(&t),
        &t,
        &[("failed_az".into(), "us-west-2a".into())],
        &[fault],
        seed,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.succeeded(), "{:?}", r.reasons);
    let floor = model::floor(
        &t.evacuation_workload(&Zone::new("us-west-2a"), &Zone::new("us-west-2b")),
        &Quotas::default(),
        std::time::Duration::from_secs(model::AURORA_FAILOVER_S.1),
        std::time::Duration::from_secs(model::ROUTE53_INSYNC_S.1),
    );
    (r, floor)
}

/// Calls made by an evacuation of `clusters` generated clusters (see `evacuate_generated`),
/// against the fewest the quota floor counts; and the throttled ones.
fn calls_vs_minimum(clusters: usize, seed: u64) -> (u64, u64, u64) {
    let (r, floor) = evacuate_generated(clusters, seed);
    let aws = r.api_calls.iter().filter(|(op, _)| !op.starts_with("HTTP"));
    let (made, throttled) = aws.fold((0, 0), |(m, t), (_, c)| {
        (m + c.calls as u64, t + c.throttled as u64)
    });
    (made, floor.calls.total(), throttled)
}

/// Issue 11's goal: an evacuation makes at most 5% more calls than the quota floor's minimum,
/// none throttled with AWS's default quotas. Call counts are deterministic in the simulator:
/// no timer here.
fn assert_calls_within_5_percent(clusters: usize, seed: u64) {
    let (made, minimum, throttled) = calls_vs_minimum(clusters, seed);
    assert_eq!(throttled, 0);
    assert!(
        made as f64 <= minimum as f64 * 1.05,
        "{clusters} clusters, seed {seed}: {made} calls, minimum {minimum}: {:.3}x",
        made as f64 / minimum as f64
    );
}

/// 500 clusters and 5,000 records: the plan's observation reused by the steps, one paged
/// Describe per poll, the DNS step taking the failover step's reads, one GetChange per poll.
#[test]
fn an_evacuation_of_500_clusters_makes_at_most_5_percent_more_calls_than_the_minimum() {
    assert_calls_within_5_percent(500, 11);
}

/// 50 clusters, where the looks weigh most against a minimum of 112 calls (it was 1.58x, then
/// 1.08x: 121), over five seeds.
#[test]
fn an_evacuation_of_50_clusters_makes_at_most_5_percent_more_calls_than_the_minimum() {
    for seed in 1..=5 {
        assert_calls_within_5_percent(50, seed);
    }
}

/// Where the calls at 50 clusters were saved (docs/aws-model.md, "How `failover` polls"): no
/// look at the failovers before three poll intervals (15 s: none is done sooner in the model,
/// 20 to 30 s); the Route 53 changes looked at 30 s after the newest only when all are likely
/// INSYNC by then, so one look at most finds one PENDING; the snapshot step takes the clusters
/// as the failover step last saw them, without reading them.
/// And the records did not move later for it: the last is out within a poll interval and a
/// batch of the last failover's end.
#[test]
fn at_50_clusters_no_look_can_only_say_not_yet() {
    let (r, _) = evacuate_generated(50, 11);
    let api = |op: &'static str| {
        r.timeline
            .iter()
            .enumerate()
            .filter_map(move |(i, e)| match &e.event {
                Event::Api(c) if c.operation == op => Some((i, e.at_ms)),
                _ => None,
            })
    };
    let first_failover = api("FailoverDBCluster")
        .map(|(_, t)| t)
        .min()
        .expect("failovers");
    let early: Vec<u64> = api("DescribeDBClusters")
        .map(|(_, t)| t)
        .filter(|t| *t > first_failover && *t < first_failover + 14_900)
        .collect();
    assert!(early.is_empty(), "looks before 15 s: {early:?}");
    let last_change = api("ChangeResourceRecordSets")
        .map(|(_, t)| t)
        .max()
        .expect("changes");
    let first_get = api("GetChange").map(|(_, t)| t).min().expect("GetChange");
    assert!(
        first_get >= last_change + 29_900,
        "GetChange at {first_get} ms, the last change at {last_change} ms"
    );
    let (changes, gets) = (
        api("ChangeResourceRecordSets").count(),
        api("GetChange").count(),
    );
    assert!(
        gets <= changes + 1,
        "{gets} GetChange for {changes} changes: at most one look found one PENDING"
    );
    let snapshot_started = common::step_started(&r, "snapshot");
    let reads_after: Vec<usize> = api("DescribeDBClusters")
        .map(|(i, _)| i)
        .filter(|i| *i > snapshot_started)
        .collect();
    assert!(
        reads_after.is_empty(),
        "the snapshot step read the clusters again: {reads_after:?}"
    );
    assert_eq!(
        api("CreateDBClusterSnapshot").count(),
        50,
        "every cluster snapshotted, once"
    );
    let last_failover_done = r
        .timeline
        .iter()
        .filter(|e| matches!(&e.event, Event::World { text } if text.contains("failover complete")))
        .map(|e| e.at_ms)
        .max()
        .expect("failovers completed");
    let recovered = r.time_to_recover_ms.expect("recovered");
    assert!(
        recovered <= last_failover_done + 6_000,
        "records out at {recovered} ms, the last failover done at {last_failover_done} ms"
    );
}

/// At a scale where reading everything one call after another takes longer than the plan's
/// observation stays fresh (1,000 clusters, 3,000 members, 4,000 records): the plan lists the
/// records first and reads the databases last, by chunks at once, so the failover step decides
/// on the plan's reads; the records are listed once (the run holds their zone's lease), the
/// snapshots read once (they are named after the run); each Route 53 change is looked at every
/// 30 s at most, not every poll.
#[test]
fn at_scale_each_resource_is_read_once_and_changes_are_not_polled_every_interval() {
    use failover::cloud::model::{describe_pages, ROUTE53_PAGE_SIZE};
    let t = parse("clusters = 1000\nrecords_per_cluster = 4\nreaders = 2");
    let r = evacuate(&t);
    assert!(r.succeeded(), "{:?}", r.reasons);
    let n = |op: &str| r.api_calls.get(op).map_or(0, |c| c.calls as u64);
    assert_eq!(
        n("DescribeDBInstances"),
        describe_pages(1000, 3000),
        "the members are described once, by the plan"
    );
    assert_eq!(
        n("ListResourceRecordSets"),
        4000u64.div_ceil(ROUTE53_PAGE_SIZE as u64),
        "the records are listed once"
    );
    assert_eq!(
        n("DescribeDBClusterSnapshots"),
        describe_pages(1000, 1000),
        "the run's snapshots are looked up once"
    );
    // The failover step decided on the plan's reads: its first failover went out before any
    // second read of the clusters.
    let first_failover = r
        .timeline
        .iter()
        .find(|e| matches!(&e.event, Event::Api(c) if c.operation == "FailoverDBCluster"))
        .map(|e| e.at_ms)
        .expect("failovers");
    let cluster_reads_before = r
        .timeline
        .iter()
        .filter(|e| e.at_ms <= first_failover)
        .filter(|e| matches!(&e.event, Event::Api(c) if c.operation == "DescribeDBClusters"))
        .count() as u64;
    assert_eq!(cluster_reads_before, describe_pages(1000, 1000));
    // Every look at one change is at least 30 s after the one before.
    let mut looks: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for e in &r.timeline {
        if let Event::Api(c) = &e.event {
            if c.operation == "GetChange" {
                looks.entry(c.resource.clone()).or_default().push(e.at_ms);
            }
        }
    }
    assert!(!looks.is_empty());
    for (change, at) in &looks {
        for w in at.windows(2) {
            assert!(w[1] - w[0] >= 29_900, "{change} looked at {at:?}");
        }
    }
}

/// A throttling storm: in an AZ outage every team's automation calls the RDS API, and other
/// clients take 11 of the account's 12 requests a second for five minutes. The evacuation of
/// 500 clusters still succeeds within its steps' timeouts, at the share the others leave
/// (the burst, then about one a second), without spending its calls on throttled retries:
/// each throttle cuts the limiter's rate, and the requests waiting for a slot ask again at
/// the new rate. (Before the limiter adapted: 1,951 throttled calls, 2,409
/// FailoverDBCluster for 500 failovers, and the failover step failed on a throttled read.)
#[test]
fn a_throttling_storm_slows_the_evacuation_to_the_share_left_without_failing_it() {
    let t = parse("clusters = 500\nrecords_per_cluster = 2\n\n[settings]\npoll_interval = \"5s\"");
    let rb = Runbook::load(&root().join("runbooks/az-evacuation.toml")).expect("valid");
    let faults: Vec<Fault> = [
        "az-down us-west-2a at 0s",
        "api-load rds rate 11 at 0s for 5m",
    ]
    .iter()
    .map(|f| f.parse().expect("valid"))
    .collect();
    let r = simulate(
        &rb,
        &environment_for(&t),
        &t,
        &[("failed_az".into(), "us-west-2a".into())],
        &faults,
        5,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.succeeded(), "{:?}", r.reasons);
    let aws: Vec<_> = r
        .api_calls
        .iter()
        .filter(|(op, _)| !op.starts_with("HTTP"))
        .collect();
    let made: u64 = aws.iter().map(|(_, c)| c.calls as u64).sum();
    let throttled: u64 = aws.iter().map(|(_, c)| c.throttled as u64).sum();
    assert!(
        throttled * 100 <= made * 15,
        "{throttled} of {made} calls throttled"
    );
    let failovers = r.api_calls.get("FailoverDBCluster").map_or(0, |c| c.calls);
    assert!(
        failovers <= 575,
        "{failovers} FailoverDBCluster for 500 clusters"
    );
    // Slower than without the storm (the share left is a twelfth), but done: the last
    // failover goes out about 200 s after the burst.
    let recover = r.time_to_recover().expect("recovered");
    assert!(recover > std::time::Duration::from_secs(150), "{recover:?}");
}
