//! Scale figures (a benchmark, not a timed test): run by `scripts/bench-scale`.
//!
//! For each size (default 50, 500 and 2,000 Aurora clusters, 10 records each) a generated
//! topology (`[generate]`, writers in us-west-2a) loses us-west-2a at 0 s, with AWS's default
//! timings and quotas, and is evacuated twice, each time in a child process of its own (so the
//! peak memory is that size's):
//!
//! - **ours**: `runbooks/az-evacuation.toml` through `failover`'s simulator (the same planner,
//!   engine, limiter and retry policy as a live run);
//! - **script**: the way a script would do it against the same simulated world and ports: one
//!   cluster at a time (describe it, FailoverDBCluster, poll DescribeDBClusters until the new
//!   writer is in place), then one record at a time (UPSERT, poll GetChange until INSYNC),
//!   polling at the topology's poll interval (5 s).
//!
//! Printed per size: time to recover (last writer or record out of the failed zone) and up to
//! every Route 53 change INSYNC, the quota floor of the same work from `cloud::model::floor`
//! (the one place the formula lives; docs/aws-model.md), their ratio, calls made vs the
//! minimum, throttled calls, the verdict, wall time and peak RSS, and "ours vs script".
//! Goals (issue 11): time <= 1.1x floor, calls <= 1.05x minimum, 0 throttled, memory linear.
//! The exit status is 0 whatever the figures: they are reported, not asserted.
//!
//! Options (after `--`): `--sizes 50,500,2000`, `--records-per-cluster N`, `--seed N`,
//! `--no-script`, `--json` (one JSON line per size). Internal: `--child ours|script N`.

use failover::app::simulate::{simulate, SimReport};
use failover::cloud::model::{self, Floor, Quotas, Workload};
use failover::cloud::retry::RetryPolicy;
use failover::cloud::sim::invariants::{self, FailedZones};
use failover::cloud::sim::{environment_for, parse_faults, Event, SimCloud, Topology};
use failover::cloud::{ChangeAction, ChangeStatus, RecordChange, RecordSet};
use failover::diag::SourceFile;
use failover::runbook::Runbook;
use failover::types::{InstanceId, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const FAILED: &str = "us-west-2a";
const FAULT: &str = "az-down us-west-2a at 0s";
const RUNBOOK: &str = include_str!("../runbooks/az-evacuation.toml");

struct Opts {
    sizes: Vec<usize>,
    records: usize,
    seed: u64,
    script: bool,
    json: bool,
    child: Option<(String, usize)>,
}

fn opts() -> Opts {
    let mut o = Opts {
        sizes: vec![50, 500, 2000],
        records: 10,
        seed: 11,
        script: true,
        json: false,
        child: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let num = |s: Option<&String>| s.and_then(|s| s.parse::<u64>().ok());
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" => {
                o.sizes = args
                    .get(i + 1)
                    .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                    .unwrap_or_default();
                i += 1;
            }
            "--records-per-cluster" => {
                o.records = num(args.get(i + 1)).unwrap_or(10) as usize;
                i += 1;
            }
            "--seed" => {
                o.seed = num(args.get(i + 1)).unwrap_or(11);
                i += 1;
            }
            "--no-script" => o.script = false,
            "--json" => o.json = true,
            "--child" => {
                let mode = args.get(i + 1).cloned().unwrap_or_default();
                let n = num(args.get(i + 2)).unwrap_or(0) as usize;
                o.child = Some((mode, n));
                i += 2;
            }
            // cargo bench passes --bench to every bench target.
            _ => {}
        }
        i += 1;
    }
    o
}

/// The generated topology of one size.
fn topology(clusters: usize, records: usize) -> Topology {
    let text = format!(
        r#"name = "scale-{clusters}"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b", "us-west-2c"]

[generate]
clusters = {clusters}
records_per_cluster = {records}
writer_zone = "{FAILED}"

[settings]
poll_interval = "5s"
"#
    );
    match Topology::parse(&text, &format!("<bench-scale {clusters}>")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2)
        }
    }
}

/// What one child measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Measured {
    mode: String,
    clusters: usize,
    records: usize,
    /// Virtual seconds to the last writer or record out of the failed zone; to every change
    /// INSYNC.
    recover_s: Option<f64>,
    insync_s: Option<f64>,
    rds_calls: u64,
    route53_calls: u64,
    throttled: u64,
    succeeded: bool,
    wall_s: f64,
    peak_rss_mib: Option<f64>,
    history_entries: usize,
    timeline_entries: usize,
    note: String,
}

/// Peak resident memory of this process (Linux: VmHWM), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn is_route53(op: &str) -> bool {
    matches!(
        op,
        "GetHostedZone"
            | "ListHostedZonesByName"
            | "ListResourceRecordSets"
            | "ChangeResourceRecordSets"
            | "GetChange"
    )
}

/// Calls by service and throttled answers, from the timeline of the world.
fn count_calls<'a>(calls: impl Iterator<Item = (&'a str, bool)>) -> (u64, u64, u64) {
    let (mut rds, mut r53, mut throttled) = (0, 0, 0);
    for (op, was_throttled) in calls {
        if op.starts_with("HTTP ") {
            continue;
        }
        if is_route53(op) {
            r53 += 1;
        } else {
            rds += 1;
        }
        throttled += u64::from(was_throttled);
    }
    (rds, r53, throttled)
}

fn ours(clusters: usize, records: usize, seed: u64) -> Measured {
    let topo = topology(clusters, records);
    let env = environment_for(&topo);
    let rb = Runbook::parse(SourceFile::new("runbooks/az-evacuation.toml", RUNBOOK))
        .unwrap_or_else(|d| panic!("the stock runbook does not parse: {d}"));
    let faults = parse_faults(&[FAULT]).unwrap_or_else(|e| panic!("{e:?}"));
    let started = Instant::now();
    let r: SimReport = simulate(
        &rb,
        &env,
        &topo,
        &[("failed_az".into(), FAILED.into())],
        &faults,
        seed,
    )
    .unwrap_or_else(|e| panic!("the simulation did not run: {e}"));
    let wall_s = started.elapsed().as_secs_f64();
    let (rds, r53, throttled) = count_calls(r.timeline.iter().filter_map(|e| match &e.event {
        Event::Api(c) => Some((
            c.operation.as_str(),
            c.error.as_ref().and_then(|e| e.code.as_deref()) == Some("Throttling"),
        )),
        _ => None,
    }));
    Measured {
        mode: "ours".into(),
        clusters,
        records: clusters * records,
        recover_s: r.time_to_recover_ms.map(|ms| ms as f64 / 1000.0),
        insync_s: r.route53_insync_ms.map(|ms| ms as f64 / 1000.0),
        rds_calls: rds,
        route53_calls: r53,
        throttled,
        succeeded: r.succeeded(),
        wall_s,
        peak_rss_mib: peak_rss_mib(),
        history_entries: 0,
        timeline_entries: r.timeline.len(),
        note: r.reasons.first().cloned().unwrap_or_default(),
    }
}

/// The evacuation as a script does it: one thing at a time, waiting for each.
async fn script_run(cloud: &std::sync::Arc<SimCloud>, topo: &Topology, seed: u64) -> String {
    let ports = cloud.ports(RetryPolicy::default(), seed);
    let poll = topo.settings.poll_interval;
    let failed = Zone::new(FAILED);
    for c in &topo.clusters {
        let one = [c.id.clone()];
        let (Ok(state), Ok(members)) = (
            ports.db.describe_clusters(&one).await,
            ports.db.describe_cluster_instances(&one).await,
        ) else {
            return format!("cannot describe {}", c.id);
        };
        let zone_of = |id: &InstanceId| members.iter().find(|i| &i.id == id)?.zone.clone();
        let Some(writer) = state
            .first()
            .and_then(|s| s.members.iter().find(|m| m.is_writer))
        else {
            continue;
        };
        if zone_of(&writer.instance) != Some(failed.clone()) {
            continue;
        }
        let Some(target) = state.first().and_then(|s| {
            s.members
                .iter()
                .filter(|m| !m.is_writer && zone_of(&m.instance).is_some_and(|z| z != failed))
                .min_by_key(|m| m.promotion_tier)
        }) else {
            return format!("{}: no reader outside {FAILED}", c.id);
        };
        if let Err(e) = ports.db.failover_cluster(&c.id, &target.instance).await {
            return format!("FailoverDBCluster {}: {e}", c.id);
        }
        loop {
            ports.clock.sleep(poll).await;
            match ports.db.describe_clusters(&one).await {
                Ok(s)
                    if s.first().is_some_and(|s| {
                        s.status.is_available()
                            && s.members
                                .iter()
                                .any(|m| m.is_writer && m.instance == target.instance)
                    }) =>
                {
                    break
                }
                Ok(_) => {}
                Err(e) => return format!("DescribeDBClusters {}: {e}", c.id),
            }
        }
    }
    let Some(hz) = topo.hosted_zones.first() else {
        return String::new();
    };
    let to = Zone::new("us-west-2b");
    for r in hz.records.iter().filter(|r| r.zone_bound()) {
        let change = RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: r.name.clone(),
                rtype: r.rtype.clone(),
                ttl: Some(r.ttl),
                values: r.values.get(&to).cloned().unwrap_or_default(),
                ..RecordSet::default()
            },
        };
        let info = match ports
            .dns
            .change_record_sets(&hz.id, "script", &[change])
            .await
        {
            Ok(i) => i,
            Err(e) => return format!("ChangeResourceRecordSets {}: {e}", r.name),
        };
        loop {
            ports.clock.sleep(poll).await;
            match ports.dns.get_change(&info.id).await {
                Ok(c) if c.status == ChangeStatus::Insync => break,
                Ok(_) => {}
                Err(e) => return format!("GetChange {}: {e}", info.id),
            }
        }
    }
    String::new()
}

fn script(clusters: usize, records: usize, seed: u64) -> Measured {
    let topo = topology(clusters, records);
    let faults = parse_faults(&[FAULT]).unwrap_or_else(|e| panic!("{e:?}"));
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"));
    let cloud = SimCloud::new(&topo, &faults, seed);
    let note = rt.block_on(async {
        let driver = tokio::spawn(cloud.driver());
        let note = script_run(&cloud, &topo, seed).await;
        driver.abort();
        note
    });
    cloud.settle();
    let wall_s = started.elapsed().as_secs_f64();
    let failed = FailedZones {
        evacuated: [Zone::new(FAILED)].into_iter().collect(),
        down: BTreeSet::new(),
        returned: BTreeSet::new(),
    };
    let history = cloud.history();
    let timeline = cloud.timeline();
    let (rds, r53, throttled) = count_calls(timeline.iter().filter_map(|e| match &e.event {
        Event::Api(c) => Some((
            c.operation.as_str(),
            c.error.as_ref().and_then(|e| e.code.as_deref()) == Some("Throttling"),
        )),
        _ => None,
    }));
    let recover = invariants::time_to_recover(&history, &failed);
    Measured {
        mode: "script".into(),
        clusters,
        records: clusters * records,
        recover_s: recover.map(|d| d.as_secs_f64()),
        insync_s: cloud.changes_insync_at().flatten().map(|d| d.as_secs_f64()),
        rds_calls: rds,
        route53_calls: r53,
        throttled,
        succeeded: note.is_empty() && recover.is_some(),
        wall_s,
        peak_rss_mib: peak_rss_mib(),
        history_entries: history.stored_entries(),
        timeline_entries: timeline.len(),
        note,
    }
}

/// The work of the evacuation of a generated topology, for the floor.
fn workload(topo: &Topology) -> Workload {
    topo.evacuation_workload(&Zone::new(FAILED), &Zone::new("us-west-2b"))
}

fn child(mode: &str, n: usize, o: &Opts) {
    let m = match mode {
        "script" => script(n, o.records, o.seed),
        _ => ours(n, o.records, o.seed),
    };
    println!("{}", serde_json::to_string(&m).unwrap_or_default());
}

/// Run one measurement in a child process (its own peak RSS).
fn spawn(mode: &str, n: usize, o: &Opts) -> Option<Measured> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .args([
            "--child",
            mode,
            &n.to_string(),
            "--records-per-cluster",
            &o.records.to_string(),
            "--seed",
            &o.seed.to_string(),
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "{mode} {n}: the child failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("")).ok()
}

fn ratio(a: Option<f64>, b: f64) -> String {
    match a {
        Some(a) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn secs(s: Option<f64>) -> String {
    s.map_or("not reached".into(), |s| format!("{s:.1} s"))
}

fn report(n: usize, o: &Opts, ours: &Measured, script: Option<&Measured>, f: &Floor) {
    let min_calls = f.calls.total() as f64;
    let made = (ours.rds_calls + ours.route53_calls) as f64;
    println!(
        "\n== {n} clusters, {} records (writers in {FAILED}; AWS default quotas) ==",
        ours.records
    );
    println!(
        "  quota floor        recover {:.1} s (RDS quota {:.1} s for {} calls + slowest failover {} s + {} DNS batches {:.1} s); INSYNC {:.1} s",
        f.recover.as_secs_f64(),
        f.rds_quota_time.as_secs_f64(),
        f.rds_calls_before_last_failover,
        model::AURORA_FAILOVER_S.1,
        f.change_batches,
        f.dns_time.as_secs_f64(),
        f.insync.as_secs_f64()
    );
    println!(
        "  ours               recover {} ({} floor, {} the per-record bound {:.1} s); INSYNC {} ({} floor); verdict {}",
        secs(ours.recover_s),
        ratio(ours.recover_s, f.recover.as_secs_f64()),
        ratio(ours.recover_s, f.recover_records_after.as_secs_f64()),
        f.recover_records_after.as_secs_f64(),
        secs(ours.insync_s),
        ratio(ours.insync_s, f.insync.as_secs_f64()),
        if ours.succeeded {
            "succeeded"
        } else {
            "FAILED"
        },
    );
    println!(
        "  calls              {} made (RDS {}, Route 53 {}) vs {} minimum (RDS {}, Route 53 {}): {}; throttled {}",
        made,
        ours.rds_calls,
        ours.route53_calls,
        min_calls,
        f.calls.rds.total(),
        f.calls.route53.total(),
        ratio(Some(made), min_calls),
        ours.throttled
    );
    println!(
        "  simulator          wall {:.2} s, peak RSS {}, {} timeline entries",
        ours.wall_s,
        ours.peak_rss_mib
            .map_or("n/a".into(), |m| format!("{m:.0} MiB")),
        ours.timeline_entries
    );
    if let Some(s) = script {
        println!(
            "  script             recover {} ; INSYNC {} ; {} calls, {} throttled; wall {:.2} s, peak RSS {}{}",
            secs(s.recover_s),
            secs(s.insync_s),
            s.rds_calls + s.route53_calls,
            s.throttled,
            s.wall_s,
            s.peak_rss_mib.map_or("n/a".into(), |m| format!("{m:.0} MiB")),
            if s.note.is_empty() { String::new() } else { format!(" ({})", s.note) }
        );
        println!(
            "  ours vs script     recover {}, INSYNC {}",
            match (ours.recover_s, s.recover_s) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x faster", b / a),
                _ => "-".into(),
            },
            match (ours.insync_s, s.insync_s) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}x faster", b / a),
                _ => "-".into(),
            }
        );
    }
    if !ours.note.is_empty() && !ours.succeeded {
        println!("  why                {}", ours.note);
    }
    let _ = o;
}

fn main() {
    let o = opts();
    if let Some((mode, n)) = &o.child {
        child(mode, *n, &o);
        return;
    }
    println!(
        "bench-scale: az-evacuation of generated topologies ({} records per cluster, seed {}); figures in virtual time unless said",
        o.records, o.seed
    );
    let mut rows = vec![];
    for &n in &o.sizes {
        let topo = topology(n, o.records);
        let f = model::floor(
            &workload(&topo),
            &Quotas::default(),
            Duration::from_secs(model::AURORA_FAILOVER_S.1),
            Duration::from_secs(model::ROUTE53_INSYNC_S.1),
        );
        drop(topo);
        let Some(ours) = spawn("ours", n, &o) else {
            continue;
        };
        let script = if o.script {
            spawn("script", n, &o)
        } else {
            None
        };
        if o.json {
            println!(
                "{}",
                serde_json::json!({"clusters": n, "floor": f, "ours": ours, "script": script})
            );
        } else {
            report(n, &o, &ours, script.as_ref(), &f);
        }
        rows.push((n, ours.peak_rss_mib, ours.wall_s));
    }
    if rows.len() >= 2 && !o.json {
        println!("\nmemory and wall time per cluster (linear if flat):");
        for (n, rss, wall) in &rows {
            println!(
                "  {n:>6} clusters: {} per cluster, {:.2} ms wall per cluster",
                rss.map_or("n/a".into(), |m| format!(
                    "{:.1} KiB",
                    m * 1024.0 / *n as f64
                )),
                wall * 1000.0 / *n as f64
            );
        }
    }
}
