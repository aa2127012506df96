//! Many actors in one simulated world (`app::sim_actors`), property-tested over seeds: each seed
//! draws a schedule of runs of evacuation runbooks (the same evacuation twice, evacuations of
//! two zones, runbooks on disjoint resources run side by side, a runbook that leases nothing),
//! kills of runs (`kill -9`, at a virtual time or the moment the process sends its next
//! mutating call: the call goes out and may take effect, its answer is lost) and resumes of the
//! killed runs, and faults (`api-errors`, lost responses with `fail-call ... applied`,
//! `stale-reads rds`), plays it, and checks the history:
//!
//! - leases: every mutating call that reached the simulated cloud was made by a run that held
//!   the lease of every key of the resource at that moment (grants, takeovers and releases from
//!   the journal's events, renewals from the processes, expiry by the TTL on the virtual clock);
//! - nothing twice: no two accepted failovers of one cluster out of one zone, no failover or
//!   reboot out of a zone its run did not evacuate, at most one accepted reboot per instance,
//!   one snapshot per source and run, no record change that rewrote what was already there;
//! - the end: every actor done, no run left running, the simulator's invariants held, and a
//!   killed run that was resumed ended `succeeded` (every run did, when the faults are benign);
//! - the journal: one outcome per intent at most, the chain intact.
//!
//! `SIM_ACTOR_SEEDS=N` plays N seeds (default 1000); `SIM_ACTOR_SEED=S` plays seed S alone and
//! prints its history. A failing seed prints the command that replays it.

use failover::app::sim_actors::{simulate_actors, Actor, ActorsReport, Outcome};
use failover::app::simulate::SimRun;
use failover::cloud::sim::{environment_for, Effect, Event, Fault, InvariantStatus, Topology};
use failover::diag::SourceFile;
use failover::lease::LeaseKey;
use failover::runbook::Runbook;
use failover::status::RunStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn storefront() -> Topology {
    Topology::load(&root().join("config/sim/storefront.toml")).expect("storefront topology")
}

/// The databases half of the evacuation: it leases the clusters and the Multi-AZ instance.
const DB_EVACUATION: &str = r#"
name = "db-evacuation"
[params.failed_az]
type = "zones"
required = true
[[steps]]
id = "failover-aurora"
action = "rds.failover_cluster"
group = "aurora"
evacuate = "${failed_az}"
timeout = "10m"
retries = 2
[[steps]]
id = "failover-multi-az"
action = "rds.failover_instance"
group = "multi_az"
evacuate = "${failed_az}"
timeout = "15m"
retries = 2
"#;

/// The DNS half: it leases the records only.
const DNS_EVACUATION: &str = r#"
name = "dns-evacuation"
[params.failed_az]
type = "zones"
required = true
[[steps]]
id = "repoint-dns"
action = "dns.update"
group = "storefront"
evacuate = "${failed_az}"
timeout = "10m"
retries = 10
"#;

/// Leases nothing: a status page update, a pause, a chat message.
const NOTIFY: &str = r#"
name = "notify"
[[steps]]
id = "announce"
action = "http"
endpoint = "status_page"
body = '{"status": "investigating"}'
[[steps]]
id = "pause"
action = "wait"
duration = "45s"
after = ["announce"]
[[steps]]
id = "chat"
action = "http"
endpoint = "chat"
body = '{"text": "still on it"}'
after = ["pause"]
"#;

/// The runbooks a schedule picks from.
struct Books {
    full: Runbook,
    db: Runbook,
    dns: Runbook,
    notify: Runbook,
}

fn books() -> Books {
    let parse = |name: &str, text: &str| {
        Runbook::parse(SourceFile::new(name, text)).unwrap_or_else(|d| panic!("{name}: {d}"))
    };
    Books {
        full: Runbook::load(&root().join("runbooks/az-evacuation.toml")).expect("az-evacuation"),
        db: parse("db-evacuation.toml", DB_EVACUATION),
        dns: parse("dns-evacuation.toml", DNS_EVACUATION),
        notify: parse("notify.toml", NOTIFY),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Book {
    Full,
    Db,
    Dns,
    Notify,
}

/// One seed's schedule, as data (the actors borrow the runbooks).
#[derive(Debug)]
struct Schedule {
    /// (runbook, zones to evacuate, start time)
    runs: Vec<(Book, String, Duration)>,
    /// (run, kill time, resume time, killed the moment it sends its next mutating call)
    kills: Vec<(usize, Duration, Duration, bool)>,
    faults: Vec<String>,
    /// Only faults every run is expected to ride out: every run that starts ends `succeeded`.
    benign: bool,
}

fn ms(rng: &mut fastrand::Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(rng.u64(lo..hi))
}

/// The runs of a schedule, by shape.
fn runs(rng: &mut fastrand::Rng, faults: &mut Vec<String>) -> Vec<(Book, String, Duration)> {
    let zones = ["us-west-2a", "us-west-2b", "us-west-2c"];
    let z1 = zones[rng.usize(..3)];
    faults.push(format!("az-down {z1} at 0s"));
    let t0 = ms(rng, 0, 5_000);
    let mut runs = vec![];
    match rng.u8(..4) {
        // The same evacuation twice.
        0 => {
            runs.push((Book::Full, z1.to_string(), t0));
            runs.push((Book::Full, z1.to_string(), ms(rng, 0, 240_000)));
        }
        // The databases and the records at once (disjoint leases), then the whole runbook.
        1 => {
            runs.push((Book::Db, z1.to_string(), t0));
            runs.push((Book::Dns, z1.to_string(), t0 + ms(rng, 0, 30_000)));
            if rng.bool() {
                runs.push((Book::Full, z1.to_string(), ms(rng, 0, 300_000)));
            }
        }
        // A second zone goes down later; the second run evacuates both. (Not us-west-2a and
        // us-west-2b together: legacy-mysql has its primary in one and its standby in the other.)
        2 => {
            let z2 = match z1 {
                "us-west-2c" => zones[rng.usize(..2)],
                _ => "us-west-2c",
            };
            let t2 = ms(rng, 0, 120_000);
            faults.push(format!("az-down {z2} at {}ms", t2.as_millis()));
            runs.push((Book::Full, z1.to_string(), t0));
            runs.push((Book::Full, format!("{z1},{z2}"), t2 + ms(rng, 0, 60_000)));
        }
        _ => runs.push((Book::Full, z1.to_string(), t0)),
    }
    if rng.bool() {
        runs.push((Book::Notify, String::new(), ms(rng, 0, 120_000)));
    }
    runs
}

fn schedule(seed: u64) -> Schedule {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut faults = vec![];
    let runs = runs(&mut rng, &mut faults);
    let mut kills = vec![];
    // Kill a run that changes resources, while it is likely still going (an evacuation takes
    // one to three minutes), and resume it later; sometimes kill the resumed process too.
    let killable: Vec<usize> = (0..runs.len())
        .filter(|i| runs[*i].0 != Book::Notify)
        .collect();
    if rng.u8(..10) < 8 {
        let r = killable[rng.usize(..killable.len())];
        let kill = runs[r].2 + ms(&mut rng, 0, 90_000);
        let resume = kill + ms(&mut rng, 0, 200_000);
        kills.push((r, kill, resume, rng.bool()));
        if rng.u8(..10) < 3 {
            let again = resume + ms(&mut rng, 0, 60_000);
            kills.push((r, again, again + ms(&mut rng, 0, 120_000), rng.bool()));
        }
    }
    let mut benign = true;
    let reads = [
        "DescribeDBClusters",
        "DescribeDBInstances",
        "ListResourceRecordSets",
        "GetChange",
    ];
    let writes = [
        "FailoverDBCluster",
        "RebootDBInstance",
        "ChangeResourceRecordSets",
    ];
    for _ in 0..rng.usize(0..=3) {
        let at = rng.u64(0..150);
        match rng.u8(..5) {
            0 => faults.push(format!(
                "api-errors {} rate 0.{} at {at}s for {}s",
                reads[rng.usize(..reads.len())],
                rng.u8(1..3),
                rng.u64(10..120)
            )),
            1 => {
                faults.push(format!(
                    "api-errors {} rate 0.{} at {at}s for {}s",
                    writes[rng.usize(..writes.len())],
                    rng.u8(1..4),
                    rng.u64(10..120)
                ));
                benign = false;
            }
            2 => faults.push(format!(
                "fail-call {} at {at}s applied",
                writes[rng.usize(..writes.len())]
            )),
            3 => {
                faults.push(format!(
                    "fail-call CreateDBClusterSnapshot at {at}s applied"
                ));
                benign = false;
            }
            _ => faults.push(format!("stale-reads rds lag {}s at 0s", rng.u64(1..=20))),
        }
    }
    Schedule {
        runs,
        kills,
        faults,
        benign,
    }
}

fn actors<'a>(s: &Schedule, b: &'a Books) -> Vec<Actor<'a>> {
    let mut out = vec![];
    for (book, zones, at) in &s.runs {
        let (rb, params) = match book {
            Book::Full => (&b.full, vec![("failed_az".to_string(), zones.clone())]),
            Book::Db => (&b.db, vec![("failed_az".to_string(), zones.clone())]),
            Book::Dns => (&b.dns, vec![("failed_az".to_string(), zones.clone())]),
            Book::Notify => (&b.notify, vec![]),
        };
        out.push(Actor::Run(SimRun::new(rb, &params).at(*at)));
    }
    for &(run, at, resume, mid_call) in &s.kills {
        out.push(if mid_call {
            Actor::KillMidCall { run, at }
        } else {
            Actor::Kill { run, at }
        });
        out.push(Actor::Resume { run, at: resume });
    }
    out
}

fn play(seed: u64, b: &Books, topology: &Topology) -> (Schedule, ActorsReport) {
    let s = schedule(seed);
    let faults: Vec<Fault> = s
        .faults
        .iter()
        .map(|f| {
            f.parse()
                .unwrap_or_else(|e| panic!("seed {seed}: {f}: {e}"))
        })
        .collect();
    let env = environment_for(topology);
    let r = simulate_actors(&actors(&s, b), &env, topology, &faults, seed)
        .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{s:?}"));
    (s, r)
}

fn replay(seed: u64) -> String {
    format!(
        "replay: SIM_ACTOR_SEED={seed} cargo test --test it sim_actors::property -- --nocapture"
    )
}

// ---- the checks ---------------------------------------------------------------------------

/// The lease keys of the resource a call changes, as `lease::keys_of` names them.
fn keys_of_call(r: &ActorsReport, c: &failover::cloud::sim::ApiCall) -> Vec<LeaseKey> {
    let id = c.resource.split(" (").next().unwrap_or("").to_string();
    match (c.operation.as_str(), &c.effect) {
        ("FailoverDBCluster" | "CreateDBClusterSnapshot", _) => {
            vec![LeaseKey::cluster(&r.region, &id)]
        }
        ("RebootDBInstance" | "CreateDBSnapshot", _) => vec![LeaseKey::instance(&r.region, &id)],
        (
            "ChangeResourceRecordSets",
            Some(Effect::RecordsChanged {
                changed, unchanged, ..
            }),
        ) => changed
            .iter()
            .chain(unchanged)
            .filter_map(|k| {
                let mut w = k.split_whitespace();
                Some(LeaseKey::record(w.next()?, w.next()?))
            })
            .collect(),
        _ => vec![],
    }
}

/// Who holds `key` at virtual time `t_ms` (epoch ms), and until when, from the journal's
/// grants, takeovers and releases before `t_ms` (the run's own grants up to `t_ms`) and the
/// processes' renewals up to `t_ms`: `(run, expires_ms)`.
fn holder_at(r: &ActorsReport, key: &LeaseKey, run: &str, t: i64) -> Option<(String, i64)> {
    let mut holder: Option<(String, i64, i64)> = None; // run, renewed, ttl
    for e in &r.events {
        let grant = matches!(e.kind.as_str(), "leases_acquired" | "leases_taken_over");
        let before = e.at < t || (e.at == t && grant && e.run_id.as_str() == run);
        if !before {
            continue;
        }
        match e.kind.as_str() {
            "leases_acquired" | "leases_taken_over" => {
                let tokens = e.data["tokens"].as_array().cloned().unwrap_or_default();
                if tokens
                    .iter()
                    .any(|kt| kt[0].as_str() == Some(key.0.as_str()))
                {
                    let ttl = e.data["ttl_ms"].as_i64().unwrap_or(0);
                    holder = Some((e.run_id.to_string(), e.at, ttl));
                }
            }
            "leases_released" if holder.as_ref().is_some_and(|h| h.0 == e.run_id.as_str()) => {
                holder = None;
            }
            _ => {}
        }
    }
    let (h, granted, ttl) = holder?;
    let renewed = r
        .renewals
        .iter()
        .filter(|n| n.run_id.as_str() == h && n.at_ms >= granted && n.at_ms <= t)
        .filter(|n| n.keys.contains(key))
        .map(|n| n.at_ms)
        .fold(granted, i64::max);
    Some((h, renewed + ttl))
}

fn check_leases(r: &ActorsReport, problems: &mut Vec<String>) {
    for e in &r.timeline {
        let Event::Api(c) = &e.event else { continue };
        let Some(run) = &c.caller else { continue };
        if !c.mutating {
            continue;
        }
        let t = r.start_epoch_ms + e.at_ms as i64;
        for key in keys_of_call(r, c) {
            match holder_at(r, &key, run, t) {
                Some((h, until)) if &h == run && until > t => {}
                Some((h, until)) if &h == run => problems.push(format!(
                    "+{}ms {} {} by run {run}: its lease on {key} expired {} ms before",
                    e.at_ms,
                    c.operation,
                    c.resource,
                    t - until
                )),
                other => problems.push(format!(
                    "+{}ms {} {} by run {run}: {key} was held by {:?}",
                    e.at_ms, c.operation, c.resource, other
                )),
            }
        }
    }
}

/// The cluster of a world note `cluster `X`: failover to `Y` FAILED: ...`.
fn failed_failover(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("cluster `")?;
    let (cluster, rest) = rest.split_once('`')?;
    (rest.starts_with(": failover to ") && rest.contains(" FAILED")).then_some(cluster)
}

fn check_nothing_twice(r: &ActorsReport, problems: &mut Vec<String>) {
    let evacuates = |run: &str| {
        r.runs
            .iter()
            .find(|x| x.run_id.as_str() == run)
            .map(|x| x.evacuates.clone())
            .unwrap_or_default()
    };
    let mut failovers: BTreeSet<(String, String)> = BTreeSet::new();
    let mut reboots: BTreeMap<String, u32> = BTreeMap::new();
    let mut snapshots: BTreeSet<(String, String)> = BTreeSet::new();
    for e in &r.timeline {
        // A failover the world reports FAILED (its target's zone went down meanwhile) left the
        // writer where it was: another one out of that zone is no repeat.
        if let Event::World { text } = &e.event {
            if let Some(cluster) = failed_failover(text) {
                failovers.retain(|(c, _)| c != cluster);
            }
        }
        let Event::Api(c) = &e.event else { continue };
        let (Some(effect), Some(run)) = (&c.effect, &c.caller) else {
            continue;
        };
        let at = e.at_ms;
        match effect {
            Effect::FailoverStarted {
                cluster,
                writer_zone_before: z,
                ..
            } => {
                if !failovers.insert((cluster.to_string(), z.to_string())) {
                    problems.push(format!("+{at}ms run {run}: a second accepted FailoverDBCluster of `{cluster}` out of {z}"));
                }
                if !evacuates(run).contains(z) {
                    problems.push(format!("+{at}ms run {run}: FailoverDBCluster of `{cluster}` whose writer was in {z}, a zone it does not evacuate"));
                }
            }
            Effect::RebootStarted {
                instance,
                primary_zone_before: z,
            } => {
                *reboots.entry(instance.to_string()).or_default() += 1;
                if reboots[instance.as_str()] > 1 {
                    problems.push(format!(
                        "+{at}ms run {run}: a second accepted RebootDBInstance of `{instance}`"
                    ));
                }
                if !evacuates(run).contains(z) {
                    problems.push(format!("+{at}ms run {run}: RebootDBInstance of `{instance}` whose primary was in {z}, a zone it does not evacuate"));
                }
            }
            Effect::SnapshotStarted { source, .. } => {
                if !snapshots.insert((run.clone(), source.clone())) {
                    problems.push(format!(
                        "+{at}ms run {run}: a second snapshot of `{source}`"
                    ));
                }
            }
            Effect::SnapshotAlreadyExists { id, .. } => {
                problems.push(format!("+{at}ms run {run}: snapshot `{id}` created twice"))
            }
            Effect::RecordsChanged { unchanged, .. } if !unchanged.is_empty() => problems.push(
                format!("+{at}ms run {run}: a record change repeated what was done: {unchanged:?}"),
            ),
            Effect::RecordsChanged { .. } => {}
        }
    }
}

fn check_end(s: &Schedule, r: &ActorsReport, problems: &mut Vec<String>) {
    if !r.finished {
        problems.push(format!(
            "the actors were not done at the simulation's limit ({} ms)",
            r.simulated_ms
        ));
    }
    for i in r
        .invariants
        .iter()
        .filter(|i| i.status == InvariantStatus::Violated)
    {
        problems.push(format!("invariant `{}` violated: {:?}", i.name, i.details));
    }
    let resumed: BTreeSet<usize> = s.kills.iter().map(|k| k.0).collect();
    for (i, run) in r.runs.iter().enumerate() {
        let id = &run.run_id;
        if run
            .processes
            .iter()
            .any(|p| p.outcome == Outcome::Unfinished)
        {
            problems.push(format!(
                "run {id}: a process never ended: {:?}",
                run.processes
            ));
        }
        match run.status {
            Some(RunStatus::Running | RunStatus::WaitingApproval) => problems.push(format!(
                "run {id} is left {:?}: {:?}",
                run.status, run.processes
            )),
            Some(st) if s.benign && !st.is_success() => problems.push(format!(
                "run {id} ended {st} although every fault is benign: {:?}",
                run.processes
            )),
            _ => {}
        }
        let was_resumed = run
            .processes
            .iter()
            .any(|p| p.kind == "resume" && matches!(p.outcome, Outcome::Ended { .. }));
        if resumed.contains(&i)
            && was_resumed
            && s.benign
            && run.status != Some(RunStatus::Succeeded)
        {
            problems.push(format!(
                "run {id} was killed and resumed but ended {:?}: {:?}",
                run.status, run.processes
            ));
        }
        for p in &run.processes {
            if let Outcome::Refused { why } = &p.outcome {
                if !why.contains("is leased by run ") {
                    problems.push(format!(
                        "run {id}: refused without naming the holder: {why}"
                    ));
                }
            }
        }
    }
}

fn check_journal(r: &ActorsReport, problems: &mut Vec<String>) {
    let mut outcomes: BTreeMap<i64, u32> = BTreeMap::new();
    let intents: BTreeSet<i64> = r
        .events
        .iter()
        .filter(|e| e.kind == "intent")
        .map(|e| e.seq)
        .collect();
    for e in r.events.iter().filter(|e| e.kind == "outcome") {
        let Some(i) = e.intent_seq else { continue };
        *outcomes.entry(i).or_default() += 1;
        if !intents.contains(&i) {
            problems.push(format!(
                "outcome #{} answers #{i}, which is no intent",
                e.seq
            ));
        }
    }
    for (i, n) in outcomes.into_iter().filter(|(_, n)| *n > 1) {
        problems.push(format!("intent #{i} has {n} outcomes"));
    }
    if !r.chain_intact {
        problems.push("the journal's chain is broken".into());
    }
}

fn check(s: &Schedule, r: &ActorsReport) -> Vec<String> {
    let mut problems = vec![];
    check_leases(r, &mut problems);
    check_nothing_twice(r, &mut problems);
    check_end(s, r, &mut problems);
    check_journal(r, &mut problems);
    problems
}

// ---- the tests -----------------------------------------------------------------------------

/// What became of a process, in a few words, for the tally.
fn kind(p: &failover::app::sim_actors::Incarnation) -> String {
    let what = match &p.outcome {
        Outcome::Ended { status, .. } if status.is_success() => "ended ok",
        Outcome::Ended { .. } => "ended not ok",
        Outcome::Refused { .. } => "refused",
        Outcome::NotStarted { why } if why.contains("never reached the journal") => {
            "nothing to resume (never reached the journal)"
        }
        Outcome::NotStarted { why } if why.contains("has ended") => "nothing to resume (ended)",
        Outcome::NotStarted { .. } => "not started",
        Outcome::Killed { .. } => "killed",
        Outcome::Unfinished => "unfinished",
    };
    format!("{} {what}", p.kind)
}

/// The history of a replayed seed, one line per mutating call (with the run that made it),
/// world note, and lease or run event of the journal, in time order.
fn print_history(r: &ActorsReport) {
    let mut lines: Vec<(i64, String)> = vec![];
    for e in &r.timeline {
        let line = match &e.event {
            Event::Api(c) if c.mutating => format!(
                "{} {} {} by {}: {}{}",
                c.operation,
                c.resource,
                if c.effect.is_some() {
                    "(took effect)"
                } else {
                    ""
                },
                c.caller.as_deref().unwrap_or("?"),
                if c.ok { "ok" } else { "error" },
                c.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            Event::World { text } => format!("world: {text}"),
            Event::Fault { text, .. } => format!("fault: {text}"),
            _ => continue,
        };
        lines.push((e.at_ms as i64, line));
    }
    for e in &r.events {
        if e.kind.starts_with("leases") || e.kind.starts_with("run_") || e.kind == "resumed" {
            let at = r.virtual_ms(e.at);
            lines.push((
                at,
                format!("journal #{} {} {}: {}", e.seq, e.run_id, e.kind, e.data),
            ));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    for (at, line) in lines {
        eprintln!("+{:>7.3}s  {line}", at as f64 / 1000.0);
    }
}

/// Mutating calls that took effect after the process that sent them was killed (sent before
/// the kill, answered after it), before the run was resumed.
fn in_flight_at_kill(r: &ActorsReport) -> usize {
    let mut n = 0;
    for run in &r.runs {
        for (i, p) in run.processes.iter().enumerate() {
            let Outcome::Killed { at_ms } = p.outcome else {
                continue;
            };
            let next = run.processes.get(i + 1).map_or(u64::MAX, |q| q.at_ms);
            n += r
                .timeline
                .iter()
                .filter(|e| e.at_ms > at_ms && e.at_ms < next)
                .filter(|e| matches!(&e.event, Event::Api(c) if c.effect.is_some() && c.caller.as_deref() == Some(run.run_id.as_str())))
                .count();
        }
    }
    n
}

/// Play and check one seed: the processes' outcomes, and what is wrong with its history.
fn play_and_check(
    seed: u64,
    b: &Books,
    topology: &Topology,
    verbose: bool,
) -> (Vec<String>, Option<String>) {
    let (s, r) = play(seed, b, topology);
    if verbose {
        eprintln!("{s:#?}\n{}", serde_json::to_string_pretty(&r.runs).unwrap());
        print_history(&r);
    }
    let mut kinds: Vec<String> = r
        .runs
        .iter()
        .flat_map(|run| run.processes.iter().map(kind))
        .collect();
    kinds.extend(
        (0..in_flight_at_kill(&r))
            .map(|_| "call took effect after its process was killed".to_string()),
    );
    let problems = check(&s, &r);
    let failure = (!problems.is_empty()).then(|| {
        format!(
            "seed {seed}: {}\n  schedule: {s:?}\n  {}",
            problems.join("\n  "),
            replay(seed)
        )
    });
    (kinds, failure)
}

#[test]
fn property_many_actors_hold_their_leases_do_nothing_twice_and_end_right() {
    let topology = storefront();
    let b = books();
    let seeds: Vec<u64> = match std::env::var("SIM_ACTOR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(one) => vec![one],
        None => (0..std::env::var("SIM_ACTOR_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000u64))
            .collect(),
    };
    let started = Instant::now();
    // Each seed is a simulation of its own (its own runtime and journal): the seeds are shared
    // out among the cores, and each one's history does not depend on which thread plays it.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    let verbose = seeds.len() == 1;
    let results: Vec<(u64, Vec<String>, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (seeds, b, topology) = (&seeds, &b, &topology);
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|&seed| {
                            let (kinds, failure) = play_and_check(seed, b, topology, verbose);
                            (seed, kinds, failure)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: Vec<(u64, String)> = vec![];
    for (seed, kinds, failure) in results {
        for k in kinds {
            *tally.entry(k).or_default() += 1;
        }
        failures.extend(failure.map(|f| (seed, f)));
    }
    failures.sort();
    eprintln!(
        "{} seed(s) of several actors in {:?} on {workers} thread(s): processes {tally:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} seed(s) failed:\n{}",
        failures.len(),
        failures
            .into_iter()
            .map(|(_, f)| f)
            .collect::<Vec<_>>()
            .join("\n")
    );
    if seeds.len() >= 100 {
        for want in [
            "start refused",
            "start killed",
            "start ended ok",
            "resume ended ok",
            "resume refused",
        ] {
            assert!(
                tally.get(want).is_some_and(|n| *n > 0),
                "no process {want}: {tally:?}"
            );
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_history() {
    let topology = storefront();
    let b = books();
    for seed in [1, 2, 3, 17] {
        let (_, a) = play(seed, &b, &topology);
        let (_, again) = play(seed, &b, &topology);
        assert_eq!(
            a.history_json(),
            again.history_json(),
            "seed {seed}: {}",
            replay(seed)
        );
        assert!(!a.timeline.is_empty());
    }
}
