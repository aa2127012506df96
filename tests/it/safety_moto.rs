//! Running together and after a crash (docs/safety.md), end to end: the real `failover` binary,
//! as SREs would run it, against moto behind the counting proxy, which sees every call that
//! reaches the AWS peer and injects latency, kills, lost answers and stale reads.
//!
//! - `overlapping_runs_are_refused`: leases refuse a second run at once and name the first;
//!   one failover per cluster.
//! - `a_stale_holder_is_fenced`: a paused holder whose lease expired makes no further call.
//! - `kill_at_every_mutating_call_then_resume`: kill -9 before and after each mutating call, in
//!   a DNS wait and at an approval gate; `failover resume` finishes the run making each call
//!   once.
//!   A resume that cannot see the killed call's effect (killed before the call reached moto;
//!   any reboot, whose move moto never shows) holds the call back for its whole grace (60 s,
//!   15 s for DNS): those boundaries run at once, each on a moto of its own.
//! - `lost_answers_and_lagging_reads_make_no_second_failover`: calls in doubt are held back
//!   until their effect shows, not sent again.
//! - `approvals_need_distinct_allowed_people`.
//!
//! Run with `MOTO_SERVER=/path/to/moto_server cargo test --test it safety_moto`.

use crate::common;

use common::proxy::{CountingProxy, KillWhen};
use common::rig::{record_sets, writer_zones, MotoRig};
use common::topo::repo;
use failover::journal::Journal;
use failover::status::RunStatus;
use failover::timefmt::format_ts;
use failover::types::RunId;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};

const EVACUATION: &str = "runbooks/az-evacuation.toml";

/// The environment's `[settings]` for quick tests: waits poll every 50 ms.
const FAST: &str = "poll_interval = \"50ms\"";

/// moto behind the counting proxy, the HTTP sink, a config dir pointing at both.
type Rig = MotoRig;

impl MotoRig {
    /// A fresh journal file in the config dir.
    fn journal(&self, name: &str) -> PathBuf {
        let p = self.cfg.path().join(format!("{name}.db"));
        assert!(!p.exists(), "{} is used twice", p.display());
        p
    }

    fn command(&self, journal: &Path, args: &[&str]) -> Command {
        command(self.cfg.path(), journal, args)
    }

    /// Run a command to its end.
    async fn run(&self, journal: &Path, args: &[&str]) -> Done {
        let o = self.command(journal, args).output().await.unwrap();
        Done::of(o)
    }

    fn spawn(&self, journal: &Path, args: &[&str]) -> Child {
        self.command(journal, args).spawn().unwrap()
    }
}

/// `failover --config-dir DIR --journal JOURNAL ARGS...`, from the repository root, with no
/// identity from the environment (every command says `--by`).
fn command(config_dir: &Path, journal: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_failover"));
    c.current_dir(repo())
        .env_remove("FAILOVER_JOURNAL")
        .env_remove("FAILOVER_CONFIG_DIR")
        .env_remove("FAILOVER_USER")
        .env_remove("USER")
        .env_remove("RUST_LOG")
        .env("HOME", config_dir)
        .arg("--config-dir")
        .arg(config_dir)
        .arg("--journal")
        .arg(journal)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// What a finished command said.
#[derive(Debug)]
struct Done {
    out: String,
    err: String,
    code: Option<i32>,
    status: ExitStatus,
}

impl Done {
    fn of(o: std::process::Output) -> Done {
        Done {
            out: String::from_utf8_lossy(&o.stdout).to_string(),
            err: String::from_utf8_lossy(&o.stderr).to_string(),
            code: o.status.code(),
            status: o.status,
        }
    }
    fn both(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.out, self.err
        )
    }
}

async fn wait_done(child: Child, limit: Duration) -> Done {
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(o) => Done::of(o.unwrap()),
        Err(_) => panic!("the command did not finish within {limit:?}"),
    }
}

/// `failover run runbooks/az-evacuation.toml --env local -p failed_az=ZONES --by BY`.
fn evacuate<'a>(zones: &'a str, by: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "run",
        EVACUATION,
        "--env",
        "local",
        "-p",
        &format!("failed_az={zones}"),
        "--by",
        by,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

/// Mutating calls that reached moto, per operation.
fn per_op(calls: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(c.clone()).or_insert(0) += 1;
    }
    m
}

fn count(calls: &[String], op: &str) -> usize {
    calls.iter().filter(|c| *c == op).count()
}

/// Poll `f` every 20 ms until it gives something, for at most `limit`.
async fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "waited {limit:?} for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The journal, once the binary created it.
async fn open_journal(path: &Path) -> Journal {
    until("the journal file", Duration::from_secs(20), || {
        path.exists().then_some(())
    })
    .await;
    Journal::open(path).unwrap()
}

/// The only run of a journal, once it is recorded.
async fn the_run(j: &Journal) -> RunId {
    until("the run to be recorded", Duration::from_secs(20), || {
        j.runs(5).ok().and_then(|r| r.first().map(|r| r.id.clone()))
    })
    .await
}

/// The events of a journal's only run, and its intents of FailoverDBCluster among them.
async fn failover_intents(
    path: &Path,
) -> (Vec<failover::journal::Event>, Vec<failover::journal::Event>) {
    let journal = Journal::open(path).unwrap();
    let id = the_run(&journal).await;
    let events = journal.events(&id).unwrap();
    let intents = events
        .iter()
        .filter(|e| e.kind == "intent" && e.operation.as_deref() == Some("FailoverDBCluster"))
        .cloned()
        .collect();
    (events, intents)
}

fn host() -> String {
    let me = failover::app::lifecycle::holder();
    me.rsplit_once(':').unwrap().0.to_string()
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a positive pid touches no memory of this process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Whether every thread of `pid` is stopped.
fn stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
            st.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

/// SIGSTOP `pid` at a moment it holds no write transaction on the journal; else SIGCONT and try
/// again. A process paused inside one would hold SQLite's write lock, and every other writer
/// of the journal (a run taking leases, `approve`, ...) would wait for it, leases or not.
async fn pause_outside_transaction(pid: u32, journal: &Path) {
    let conn = rusqlite::Connection::open(journal).unwrap();
    conn.busy_timeout(Duration::ZERO).unwrap();
    for _ in 0..50 {
        signal(pid, libc::SIGSTOP);
        until("the process to stop", Duration::from_secs(5), || {
            stopped(pid).then_some(())
        })
        .await;
        if conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            return;
        }
        signal(pid, libc::SIGCONT);
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    panic!("process {pid} was always inside a journal transaction");
}

/// "name type [set]" -> "value,... weight=W", read straight from moto.
async fn records(moto: &str) -> BTreeMap<String, String> {
    record_sets(moto)
        .await
        .into_iter()
        .map(|(key, (values, weight))| {
            let weight = weight.map(|w| format!(" weight={w}")).unwrap_or_default();
            (key, format!("{}{weight}", values.join(",")))
        })
        .collect()
}

/// The records (as [`records`] shows them) that still send traffic to us-west-2a.
fn records_in_zone_a(recs: &BTreeMap<String, String>) -> Vec<String> {
    recs.iter()
        .filter(|(k, v)| {
            let zone_a = v.contains("-a.lb.") || v.starts_with("10.0.1.") || k.contains("2a]");
            zone_a && !v.ends_with(" weight=0")
        })
        .map(|(k, v)| format!("{k} -> {v}"))
        .collect()
}

/// The first run's lease on its resources refuses a second run of the same runbook at once
/// (exit 5), naming the first, its initiator and how to wait, end or take it over; the first
/// run makes every call once. Then two people evacuating two zones 2.5 s apart: the second run
/// would move writers and records into the zone the first one evacuates; it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_are_refused() {
    let t0 = Instant::now();
    let r = MotoRig::start(Some(FAST)).await;
    let before = writer_zones(&r.moto_url()).await;
    let writers_in_a = before.values().filter(|z| *z == "us-west-2a").count();
    assert_eq!(writers_in_a, 1, "{before:?}");

    r.proxy
        .set_latency(Some("FailoverDBCluster"), Duration::from_millis(400));
    let j = r.journal("overlap");
    let a = r.spawn(&j, &strs(&evacuate("us-west-2a", "alice", &[])));
    let spawned = Instant::now();
    let a_pid = a.id().unwrap();
    let journal = open_journal(&j).await;
    // A run is recorded once it holds its leases.
    let a_id = the_run(&journal).await;
    tokio::time::sleep(Duration::from_millis(300).saturating_sub(spawned.elapsed())).await;
    let b = r.run(&j, &strs(&evacuate("us-west-2a", "bob", &[]))).await;
    let a = wait_done(a, Duration::from_secs(60)).await;
    assert_eq!(a.code, Some(0), "{}", a.both());
    assert!(
        a.out.contains(&format!("Run {a_id} succeeded.")),
        "{}",
        a.out
    );

    assert_eq!(b.code, Some(5), "{}", b.both());
    assert_eq!(b.out, "");
    let b_id = b
        .err
        .strip_prefix("error: run ")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}", b.err));
    assert_ne!(b_id, a_id.as_str());
    let key = "rds-cluster:us-west-2:catalog-db";
    let lease = journal
        .leases()
        .unwrap()
        .into_iter()
        .find(|l| l.key.0 == key)
        .unwrap();
    assert_eq!(
        lease.renewed_ms, lease.acquired_ms,
        "no heartbeat renewed it"
    );
    let since = format_ts(lease.acquired_ms);
    let expires = format_ts(lease.acquired_ms + 90_000);
    let host = host();
    assert_eq!(
        b.err,
        format!(
            "error: run {b_id} was not started: {key} is leased by run {a_id} (started by alice, on {host}:{a_pid}, since {since}; the lease expires at {expires} unless renewed)\n  hint: wait for it (`failover show {a_id}`), or end it (`failover abort {a_id} --by <you>`); if its process is gone, its lease expires at {expires} and `failover resume {a_id}` takes it over\n"
        )
    );
    // B left no trace: it was refused before it recorded or read anything.
    let runs = journal.runs(10).unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [a_id.as_str()]
    );
    let calls = r.proxy.mutating();
    assert_eq!(
        count(&calls, "FailoverDBCluster"),
        writers_in_a,
        "{calls:?}"
    );
    assert_eq!(count(&calls, "RebootDBInstance"), 1, "{calls:?}");
    // Two DNS changes: www (which depends on no database) at once, api and checkout once
    // their cluster has failed over (records_after).
    assert_eq!(
        per_op(&calls),
        BTreeMap::from([
            ("ChangeResourceRecordSets".to_string(), 2),
            ("CreateDBClusterSnapshot".to_string(), 3),
            ("CreateDBSnapshot".to_string(), 1),
            ("FailoverDBCluster".to_string(), 1),
            ("RebootDBInstance".to_string(), 1),
        ]),
        "only A's calls: {calls:?}"
    );
    let first = t0.elapsed();

    // Alice evacuates us-west-2a; 2.5 s later Bob evacuates us-west-2b, which would fail
    // catalog-db over into us-west-2a and point records at it. His run is refused.
    r.reseed().await;
    r.proxy
        .set_latency(Some("FailoverDBCluster"), Duration::from_secs(4));
    let j = r.journal("alice-and-bob");
    let alice = r.spawn(&j, &strs(&evacuate("us-west-2a", "alice", &[])));
    let spawned = Instant::now();
    let journal = open_journal(&j).await;
    let alice_id = the_run(&journal).await;
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(spawned.elapsed())).await;
    let bob = r.run(&j, &strs(&evacuate("us-west-2b", "bob", &[]))).await;
    let bob_answered = epoch_ms();
    let alice = wait_done(alice, Duration::from_secs(60)).await;
    assert_eq!(alice.code, Some(0), "{}", alice.both());
    assert_eq!(bob.code, Some(5), "{}", bob.both());
    assert!(
        bob.err.contains(&format!(
            " was not started: {key} is leased by run {alice_id} (started by alice, on "
        )),
        "{}",
        bob.err
    );
    // Refused while her run was going on (whatever the machine's load made of the 2.5 s).
    let alice_ended = journal.run(alice_id.as_str()).unwrap().ended_at;
    assert!(
        alice_ended.is_some_and(|end| bob_answered < end),
        "Bob was answered at {bob_answered}, Alice's run ended at {alice_ended:?}"
    );
    let writers = writer_zones(&r.moto_url()).await;
    assert!(
        writers.values().all(|z| z != "us-west-2a"),
        "a writer is in us-west-2a: {writers:?}"
    );
    assert_eq!(
        writers,
        BTreeMap::from([
            ("catalog-db".to_string(), "us-west-2b".to_string()),
            ("orders-db".to_string(), "us-west-2b".to_string()),
            ("sessions-db".to_string(), "us-west-2c".to_string()),
        ])
    );
    let recs = records(&r.moto_url()).await;
    assert_eq!(records_in_zone_a(&recs), Vec::<String>::new(), "{recs:#?}");
    assert_eq!(
        recs["api.shop.example.com. CNAME"],
        "api-b.lb.shop.example.com"
    );
    assert_eq!(count(&r.proxy.mutating(), "FailoverDBCluster"), 1);
    eprintln!(
        "overlapping_runs_are_refused: {first:?} + {:?}",
        t0.elapsed() - first
    );
}

/// The lease keys of the evacuation on `local`, in order.
const KEYS: [&str; 7] = [
    "rds-cluster:us-west-2:catalog-db",
    "rds-cluster:us-west-2:orders-db",
    "rds-cluster:us-west-2:sessions-db",
    "rds-instance:us-west-2:legacy-mysql",
    "route53-record:api.shop.example.com.:CNAME",
    "route53-record:checkout.shop.example.com.:CNAME",
    "route53-record:www.shop.example.com.:A",
];

/// `failover locks` rows up to the token: resource, state, run, initiator, holder, token.
fn lock_rows(state: &str, run: &str, by: &str, holder: &str, token: u64) -> Vec<String> {
    KEYS.iter()
        .map(|k| format!("{k:<44} {state:<9} {run:<24} {by:<10} {holder:<20} {token:>5}  "))
        .collect()
}

fn assert_locks(out: &str, rows: &[String]) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), rows.len() + 1, "{out}");
    assert!(lines[0].starts_with("RESOURCE "), "{out}");
    for (line, row) in lines[1..].iter().zip(rows) {
        assert!(
            line.starts_with(row.as_str()),
            "{line:?} should start with {row:?}\n{out}"
        );
    }
}

/// A run paused (SIGSTOP) past its lease's expiry is fenced off: another run is granted the
/// leases and finishes; when the paused process goes on, its next intent (or heartbeat) finds
/// the lease taken over, so it makes no further call, leaves the other run's outcome alone and
/// exits 1, and its journal says `fenced`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_holder_is_fenced() {
    let t0 = Instant::now();
    let r = MotoRig::start(Some("poll_interval = \"50ms\"\nlease_ttl = \"3s\"")).await;
    r.proxy
        .set_latency(Some("FailoverDBCluster"), Duration::from_millis(2500));
    let j = r.journal("fenced");
    let a = r.spawn(&j, &strs(&evacuate("us-west-2a", "alice", &[])));
    let a_pid = a.id().unwrap();
    let host = host();
    let journal = open_journal(&j).await;
    let a_id = the_run(&journal).await;
    // Paused while its FailoverDBCluster is held by the proxy on its way to moto, once its
    // other steps are done: it waits for the answer, and no call of it can be between its
    // intent and the wire.
    let fdc = "FailoverDBCluster".to_string();
    until(
        "A's FailoverDBCluster at the proxy, its Multi-AZ step done",
        Duration::from_secs(30),
        || {
            let steps = journal.steps(&a_id).ok()?;
            let multi_az = steps.iter().find(|s| s.step_id == "failover-multi-az")?;
            let arrived = r.proxy.arrived().contains(&fdc);
            (arrived && multi_az.status.as_str() == "succeeded").then_some(())
        },
    )
    .await;
    assert!(
        !r.proxy.mutating().contains(&fdc),
        "the failover reached moto before A could be paused (latency too short for this machine?)"
    );
    pause_outside_transaction(a_pid, &j).await;
    let paused_at = Instant::now();
    until(
        "A's FailoverDBCluster to reach moto",
        Duration::from_secs(5),
        || r.proxy.mutating().contains(&fdc).then_some(()),
    )
    .await;
    let a_calls = r.proxy.mutating();
    let mut a_ops = per_op(&a_calls);
    // The www record depends on no database: it may have moved already (one batch at most).
    let early_dns = a_ops.remove("ChangeResourceRecordSets").unwrap_or(0);
    assert!(early_dns <= 1, "{a_calls:?}");
    assert_eq!(
        a_ops,
        BTreeMap::from([
            ("FailoverDBCluster".to_string(), 1),
            ("RebootDBInstance".to_string(), 1),
        ]),
        "{a_calls:?}"
    );

    // Its leases expire 3 s after the last heartbeat (at most 1 s before the pause).
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(paused_at.elapsed())).await;
    let locks = r.run(&j, &["locks"]).await;
    assert_eq!(
        locks.out,
        "No run holds a lease right now (`--all` lists released and expired ones).\n"
    );
    let locks = r.run(&j, &["locks", "--all"]).await;
    assert_locks(
        &locks.out,
        &lock_rows(
            "expired",
            a_id.as_str(),
            "alice",
            &format!("{host}:{a_pid}"),
            1,
        ),
    );

    // B is granted the leases; its DNS change is slow, so its leases can be seen held.
    r.proxy.set_latency(
        Some("ChangeResourceRecordSets"),
        Duration::from_millis(1500),
    );
    let b = r.spawn(&j, &strs(&evacuate("us-west-2a", "bob", &[])));
    let b_pid = b.id().unwrap();
    let b_id = until("B to be recorded", Duration::from_secs(20), || {
        let runs = journal.runs(5).unwrap();
        runs.iter()
            .find(|x| x.initiator == "bob")
            .map(|x| x.id.clone())
    })
    .await;
    let locks = r.run(&j, &["locks"]).await;
    assert_locks(
        &locks.out,
        &lock_rows("held", b_id.as_str(), "bob", &format!("{host}:{b_pid}"), 2),
    );
    let b = wait_done(b, Duration::from_secs(60)).await;
    assert_eq!(b.code, Some(0), "{}", b.both());
    assert!(
        b.out.contains(&format!("Run {b_id} succeeded.")),
        "{}",
        b.out
    );
    let b_calls = r.proxy.mutating()[a_calls.len()..].to_vec();
    // B's own snapshots; orders-db already moved (A's failover reached moto), so no second
    // failover; moto never moves a Multi-AZ instance, so B reboots it again; B repoints DNS.
    assert_eq!(
        per_op(&b_calls),
        BTreeMap::from([
            ("ChangeResourceRecordSets".to_string(), 1),
            ("CreateDBClusterSnapshot".to_string(), 3),
            ("CreateDBSnapshot".to_string(), 1),
            ("RebootDBInstance".to_string(), 1),
        ]),
        "{b_calls:?}"
    );
    let calls_before = r.proxy.mutating().len();
    let sink_before = r.sink.received().len();
    let records_after_b = records(&r.moto_url()).await;

    // A goes on: it gets its answer, then finds its leases taken over.
    signal(a_pid, libc::SIGCONT);
    let a = wait_done(a, Duration::from_secs(60)).await;
    assert_eq!(a.code, Some(1), "{}", a.both());
    assert!(
        a.out.contains("This process lost the run's leases (")
            && a.out.contains(
                "the lease on rds-cluster:us-west-2:catalog-db was taken over (token 2 > 1)"
            ),
        "{}",
        a.out
    );
    assert_eq!(
        r.proxy.mutating()[calls_before..].to_vec(),
        Vec::<String>::new(),
        "A made a call after it lost its leases"
    );
    assert_eq!(
        r.sink.received()[sink_before..]
            .iter()
            .map(|x| x.path.clone())
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "A notified after it lost its leases"
    );
    // B's outcome and leases are untouched; A's run is left as it was (its process is gone).
    assert_eq!(
        journal.run(b_id.as_str()).unwrap().status,
        RunStatus::Succeeded
    );
    assert_eq!(
        journal.run(a_id.as_str()).unwrap().status,
        RunStatus::Running
    );
    assert_eq!(records(&r.moto_url()).await, records_after_b);
    let locks = r.run(&j, &["locks", "--all"]).await;
    assert_locks(
        &locks.out,
        &lock_rows("released", "-", "bob", &format!("{host}:{b_pid}"), 2),
    );
    let show = r.run(&j, &["show", a_id.as_str()]).await;
    assert_eq!(show.code, Some(0), "{}", show.both());
    let fenced: Vec<&str> = show
        .out
        .lines()
        .filter(|l| l.contains(" fenced "))
        .collect();
    assert_eq!(fenced.len(), 1, "{}", show.out);
    assert!(
        fenced[0].contains("why=") && fenced[0].contains("was taken over (token 2 > 1)"),
        "{}",
        fenced[0]
    );
    assert!(
        show.out
            .contains("Status: running (STALE: no heartbeat since "),
        "{}",
        show.out
    );
    eprintln!("a_stale_holder_is_fenced: {:?}", t0.elapsed());
}

impl Rig {
    /// Another environment in the config dir: `local` under another name, with `settings`.
    fn add_env(&self, name: &str, settings: &str) {
        let text = std::fs::read_to_string(self.cfg.path().join("local.toml")).unwrap();
        assert!(text.contains("\nname = \"local\"\n"));
        let text = text
            .replace("\nname = \"local\"\n", &format!("\nname = \"{name}\"\n"))
            .replace(FAST, settings);
        std::fs::write(self.cfg.path().join(format!("{name}.toml")), text).unwrap();
    }
}

/// Wait until the run is at an approval gate (its process waiting for it).
async fn at_gate(j: &Journal, id: &RunId) {
    until(
        "the run to wait for approval",
        Duration::from_secs(30),
        || (j.run_exact(id).ok()?.status == RunStatus::WaitingApproval).then_some(()),
    )
    .await;
}

/// `approvals = 2`: two distinct people, neither the initiator, each once; names compared
/// trimmed and case folded; an empty name is bad input; a part of a run id approves nothing;
/// the environment's `approvers` limit who may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_need_distinct_allowed_people() {
    let t0 = Instant::now();
    let r = MotoRig::start(Some(FAST)).await;
    let j = r.journal("approvals");
    let run = r.spawn(
        &j,
        &[
            "run",
            "tests/fixtures/two-approvals.toml",
            "--env",
            "local",
            "--by",
            "alice",
        ],
    );
    let journal = open_journal(&j).await;
    let id = the_run(&journal).await;
    at_gate(&journal, &id).await;
    let approve = |by: &str| {
        let args = ["approve", id.as_str(), "--by", by].map(String::from);
        let j = j.clone();
        let r = &r;
        async move { r.run(&j, &strs(&args)).await }
    };

    let d = approve("alice").await;
    assert_eq!(d.code, Some(5), "{}", d.both());
    assert_eq!(d.err, format!("error: alice started run {id} and cannot approve it\n  hint: another person approves with: failover approve {id} --by <their name>\n"));

    let d = approve(" Bob ").await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    assert_eq!(d.out, format!("Approved step `approve` of run {id} as bob (1 of 2 approvals): the gate waits for 1 more person(s).\n"));
    let bob_at = journal
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "approved")
        .unwrap()
        .at;

    let d = approve("BOB").await;
    assert_eq!(d.code, Some(5), "{}", d.both());
    assert_eq!(d.err, format!("error: bob already approved step `approve` of run {id} at {}; an approval counts once per person\n", format_ts(bob_at)));

    let d = approve("").await;
    assert_eq!(d.code, Some(2), "{}", d.both());
    assert_eq!(
        d.err,
        "error: an approval needs a name: --by NAME (or $FAILOVER_USER)\n"
    );

    let prefix = &id.as_str()[..id.as_str().len() - 2];
    let d = r.run(&j, &["approve", prefix, "--by", "carol"]).await;
    assert_eq!(d.code, Some(5), "{}", d.both());
    assert_eq!(d.err, format!("error: run `{prefix}` is not in the journal\n  hint: approve with the run's whole id (`failover runs` lists them); approvals never match a part of an id\n"));

    // One approval of two: the gate still holds (it reads the journal every 0.5 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        journal.run_exact(&id).unwrap().status,
        RunStatus::WaitingApproval
    );
    assert!(r.sink.received().is_empty(), "{:?}", r.sink.received());

    let d = approve("carol").await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    assert_eq!(
        d.out,
        format!("Approved step `approve` of run {id} as carol. The run continues.\n")
    );
    let done = wait_done(run, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert!(
        done.out.contains(&format!("Run {id} succeeded.")),
        "{}",
        done.out
    );
    let got = r.sink.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body, format!("{{\"text\": \"released: {id}\"}}"));
    let approved: Vec<String> = journal
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "approved")
        .map(|e| e.data["by"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(approved, ["bob", "carol"]);
    let steps = journal.steps(&id).unwrap();
    assert_eq!(steps[0].message.as_deref(), Some("approved by bob, carol"));
    assert_eq!(r.proxy.mutating(), Vec::<String>::new());

    // An environment whose gates only dave may release.
    r.add_env(
        "guarded",
        "poll_interval = \"50ms\"\napprovers = [\"dave\"]",
    );
    let j = r.journal("guarded");
    let d = r
        .run(
            &j,
            &[
                "run",
                "tests/fixtures/two-approvals.toml",
                "--env",
                "guarded",
                "--by",
                "alice",
            ],
        )
        .await;
    assert_eq!(d.code, Some(2), "{}", d.both());
    assert_eq!(d.err, "tests/fixtures/two-approvals.toml:8:6: error: step `approve` needs 2 approval(s) from distinct people, but only 1 may give them besides the initiator (alice): dave\n  hint: lower `approvals`, or name more `approvers` (the step's, else the environment's [settings] approvers); the initiator's own approval never counts\n\n1 problem(s) found; nothing was changed.\n");
    assert!(!j.exists(), "refused before the journal was opened");

    let run = r.spawn(
        &j,
        &[
            "run",
            EVACUATION,
            "--env",
            "guarded",
            "-p",
            "failed_az=us-west-2a",
            "-p",
            "require_approval=true",
            "--by",
            "alice",
        ],
    );
    let journal = open_journal(&j).await;
    let id = the_run(&journal).await;
    at_gate(&journal, &id).await;
    let d = r.run(&j, &["approve", id.as_str(), "--by", "carol"]).await;
    assert_eq!(d.code, Some(5), "{}", d.both());
    assert_eq!(
        d.err,
        "error: carol may not approve step `approve`; allowed approvers: dave\n"
    );
    let d = r.run(&j, &["approve", id.as_str(), "--by", "Dave"]).await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    assert_eq!(
        d.out,
        format!("Approved step `approve` of run {id} as dave. The run continues.\n")
    );
    let done = wait_done(run, Duration::from_secs(30)).await;
    assert_eq!(done.code, Some(0), "{}", done.both());
    eprintln!("approvals_need_distinct_allowed_people: {:?}", t0.elapsed());
}

/// The answers of both failovers are lost (moto made them; the caller gets a 500), and for 2 s
/// after each RDS reads still show the old writers: the attempt that made the calls follows
/// their effect through the stale reads (a call in doubt is waited for until its grace)
/// instead of sending them again, settles each once its effect shows, and the run succeeds
/// with one FailoverDBCluster per cluster, without waiting for the 60 s grace.
/// Throttled answers through the real SDK over HTTP: AWS refuses the first three
/// DescribeDBClusters and the first two FailoverDBCluster with `Throttling` (not processed).
/// The run retries them through its limiter (which cuts its rate at each: the module doc of
/// `cloud::rate`), makes one failover per cluster, succeeds, and counts the throttled answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_answers_are_retried_through_the_limiter_and_counted() {
    let r = MotoRig::start(Some(FAST)).await;
    r.proxy.throttle("DescribeDBClusters", 3);
    r.proxy.throttle("FailoverDBCluster", 2);
    let j = r.journal("throttled");
    let d = r
        .run(&j, &strs(&evacuate("us-west-2a,us-west-2b", "alice", &[])))
        .await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    assert_eq!(r.proxy.throttled(), 5);
    assert_eq!(count(&r.proxy.arrived(), "FailoverDBCluster"), 4);
    assert_eq!(
        count(&r.proxy.mutating(), "FailoverDBCluster"),
        2,
        "one failover per cluster reached AWS"
    );
    assert_eq!(
        writer_zones(&r.moto_url()).await,
        all_writers_in("us-west-2c")
    );
    // The run counts them all (the plan's reads and the steps' calls).
    let out = d.both();
    let line = common::call_count_line(&out);
    let throttled: u64 = line
        .split(';')
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(throttled, 5, "{line}");
    // Each throttled failover was retried within its one intent: two intents, both ok.
    let (events, intents) = failover_intents(&j).await;
    assert_eq!(intents.len(), 2, "{events:#?}");
    for i in intents {
        let outcome = events
            .iter()
            .find(|e| e.kind == "outcome" && e.intent_seq == Some(i.seq))
            .unwrap();
        assert_eq!(outcome.data["ok"], true, "{outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_lagging_reads_make_no_second_failover() {
    let t0 = Instant::now();
    let r = MotoRig::start(Some(FAST)).await;
    let before = writer_zones(&r.moto_url()).await;
    let moving: Vec<&String> = before
        .iter()
        .filter(|(_, z)| *z == "us-west-2a" || *z == "us-west-2b")
        .map(|(c, _)| c)
        .collect();
    assert_eq!(moving, ["catalog-db", "orders-db"], "{before:?}");
    r.proxy.lose_response("FailoverDBCluster", 2);
    let lag = Duration::from_secs(2);
    r.proxy.stale_reads_after("FailoverDBCluster", lag);
    let j = r.journal("lost");
    let started = Instant::now();
    let d = r
        .run(&j, &strs(&evacuate("us-west-2a,us-west-2b", "alice", &[])))
        .await;
    let took = started.elapsed();
    assert_eq!(d.code, Some(0), "{}", d.both());
    let calls = r.proxy.mutating();
    assert_eq!(
        count(&calls, "FailoverDBCluster"),
        moving.len(),
        "one failover per cluster: {calls:?}"
    );
    assert_eq!(r.proxy.lost_responses(), 2);
    assert!(r.proxy.stale_served() > 0, "no read was stale");
    assert_eq!(
        writer_zones(&r.moto_url()).await,
        all_writers_in("us-west-2c")
    );

    // The journal: both calls failed in a way that may have been processed, were followed
    // while the reads were stale, and were settled once their effect showed, in the attempt
    // that made them (no second attempt held them back).
    let (events, intents) = failover_intents(&j).await;
    assert_eq!(intents.len(), 2);
    for i in &intents {
        let cluster = i.resource.clone().unwrap();
        let outcome = events
            .iter()
            .find(|e| e.kind == "outcome" && e.intent_seq == Some(i.seq))
            .unwrap();
        assert_eq!(outcome.data["ok"], false, "{outcome:?}");
        assert!(
            !events.iter().any(|e| e.kind == "deferred"),
            "{cluster}: {events:#?}"
        );
        let settled: Vec<_> = events
            .iter()
            .filter(|e| e.kind == "settled" && e.intent_seq == Some(i.seq))
            .collect();
        assert_eq!(settled.len(), 1, "{cluster}");
        assert_eq!(
            settled[0].data["how"],
            "its effect was observed although its answer was an error: the step no longer needs the call"
        );
        // Well within the grace. (How soon depends on whether the proxy answers the wait's
        // read stale: it replays an earlier answer to the same request only.)
        let after = Duration::from_millis((settled[0].at - i.at) as u64);
        assert!(
            after < Duration::from_secs(15),
            "{cluster} settled {after:?} after its call (reads lag {lag:?}; grace 60 s)"
        );
    }
    let id = the_run(&Journal::open(&j).unwrap()).await;
    let show = r.run(&j, &["show", id.as_str()]).await;
    assert!(
        show.out
            .contains("\nEvery intent has an outcome: no call is in doubt.\n"),
        "{}",
        show.out
    );
    eprintln!(
        "lost_answers_and_lagging_reads_make_no_second_failover: run {took:?}, test {:?}",
        t0.elapsed()
    );
}

/// The sweep's environment: one step at a time, so the nth mutating call is always the same.
const SWEEP: &str = "poll_interval = \"50ms\"\nmax_concurrency = 1\nmax_calls_in_flight = 1";

/// The same for the boundaries whose resume waits a call's whole grace (60 s): each on its own
/// moto, all at once, polling less often so that eight of them waiting do not load the machine.
const SWEEP_SLOW: &str = "poll_interval = \"250ms\"\nmax_concurrency = 1\nmax_calls_in_flight = 1";

/// How long a call whose intent has no outcome is held back (docs/safety.md).
fn grace(op: &str) -> Duration {
    failover::call::in_doubt_grace(op).unwrap()
}

/// Whether a resume after a kill at this boundary must wait for the call's grace: a call killed
/// before it reached moto never shows its effect, and moto never shows a reboot's.
fn waits_for_grace(op: &str, when: KillWhen) -> bool {
    when == KillWhen::Before || op == "RebootDBInstance"
}

/// A run killed (the proxy, or the test) and what it left in the journal.
struct Killed {
    journal: Journal,
    path: PathBuf,
    id: RunId,
    sink_before: usize,
}

/// Start the evacuation with `arm` armed on the proxy (the run's process as victim), wait for it
/// to die by SIGKILL; the run is left as its process left it.
async fn run_and_kill(r: &Rig, label: &str, arm: impl FnOnce(&CountingProxy)) -> Killed {
    r.reseed().await;
    let path = r.journal(&label.replace([' ', '#', '(', ')'], "-"));
    let sink_before = r.sink.received().len();
    arm(&r.proxy);
    let child = r.spawn(&path, &strs(&evacuate("us-west-2a", "alice", &[])));
    r.proxy.set_victim(child.id().unwrap());
    let killed = wait_done(child, Duration::from_secs(60)).await;
    assert_eq!(
        killed.status.signal(),
        Some(libc::SIGKILL),
        "{label}: {}",
        killed.both()
    );
    // The proxy notes that it fired just after its SIGKILL.
    until(label, Duration::from_secs(5), || {
        r.proxy.fired().then_some(())
    })
    .await;
    let journal = Journal::open(&path).unwrap();
    let id = the_run(&journal).await;
    Killed {
        journal,
        path,
        id,
        sink_before,
    }
}

/// `failover resume RUN --by bob`, to its end; and how long it took.
async fn resume(r: &Rig, k: &Killed) -> (Done, Duration) {
    let started = Instant::now();
    let child = r.spawn(&k.path, &["resume", k.id.as_str(), "--by", "bob"]);
    let d = wait_done(child, Duration::from_secs(180)).await;
    (d, started.elapsed())
}

/// Kill -9 the run at its `n`th mutating call (before it reaches moto, or after moto answered),
/// resume it, and check what reached moto in all: every call once, as in the reference run; a
/// reboot in doubt is not repeated (moto cannot show whether it moved the instance).
async fn boundary(r: &Rig, reference: &[String], n: usize, when: KillWhen) -> String {
    let op = reference[n - 1].as_str();
    let label = format!("{when:?} #{n} {op}");
    let k = run_and_kill(r, &label, |p| p.kill_at(n, when, 0)).await;
    assert_eq!(r.proxy.fired_on().as_deref(), Some(op), "{label}");
    let reached = if when == KillWhen::Before { n - 1 } else { n };
    assert_eq!(r.proxy.mutating(), reference[..reached], "{label}");
    // The killed call is the one call in doubt, and `show` says so.
    let open = k.journal.open_intents(&k.id).unwrap();
    assert_eq!(open.len(), 1, "{label}: {open:#?}");
    let intent = open[0].clone();
    assert_eq!(intent.operation.as_deref(), Some(op), "{label}");
    let show = r.run(&k.path, &["show", k.id.as_str()]).await;
    let in_doubt = format!(
        "\n  #{} {} {op} {}\n",
        intent.seq,
        intent.step_id.clone().unwrap(),
        intent.resource.clone().unwrap()
    );
    assert!(show.out.contains(&in_doubt), "{label}: {}", show.out);
    assert!(
        show.out
            .contains("Status: running (STALE: no heartbeat since "),
        "{label}: {}",
        show.out
    );

    let (resumed, took) = resume(r, &k).await;
    let id = &k.id;
    let events = k.journal.events(id).unwrap();
    let waited = |e: &failover::journal::Event| Duration::from_millis((e.at - intent.at) as u64);
    let mut want = per_op(reference);
    let outcome = if op == "RebootDBInstance" {
        assert_eq!(resumed.code, Some(1), "{label}: {}", resumed.both());
        assert!(
            resumed.out.contains(&format!("\nRun {id} failed.\n")),
            "{label}: {}",
            resumed.out
        );
        let problem = format!(
            "instance `legacy-mysql`: a RebootDBInstance with failover may have been made at {} (run {id}, intent #{}: no outcome was recorded) and the peer does not report the standby zone, so whether it moved cannot be told; a second one would swap the primary back. Check the instance in the console; this step does not reboot it again",
            format_ts(intent.at),
            intent.seq
        );
        assert!(resumed.out.contains(&problem), "{label}: {}", resumed.out);
        let steps = k.journal.steps(id).unwrap();
        let step = |s: &str| steps.iter().find(|x| x.step_id == s).unwrap();
        assert_eq!(
            step("failover-multi-az").status.as_str(),
            "failed",
            "{label}"
        );
        assert!(
            step("failover-multi-az")
                .message
                .as_deref()
                .unwrap()
                .contains(&problem),
            "{label}"
        );
        // The DNS step no longer waits for failover-multi-az as a whole (records_after): the
        // failed step aborts the run before the resumed DNS step starts.
        assert_eq!(step("repoint-dns").status.as_str(), "cancelled", "{label}");
        assert_eq!(
            step("repoint-dns").message.as_deref(),
            Some("not run: the run was aborted by a failed step"),
            "{label}"
        );
        // Not settled: the reboot stays in doubt; the step gave up once its grace had passed.
        assert!(
            !events
                .iter()
                .any(|e| e.kind == "settled" && e.intent_seq == Some(intent.seq)),
            "{label}"
        );
        let gave_up = events
            .iter()
            .rfind(|e| {
                e.kind == "step_finished" && e.step_id.as_deref() == Some("failover-multi-az")
            })
            .unwrap();
        assert!(
            waited(gave_up) >= grace(op),
            "{label}: gave up after {:?}",
            waited(gave_up)
        );
        let show = r.run(&k.path, &["show", id.as_str()]).await;
        assert!(
            show.out.ends_with(&format!(
                "A resume waits for their effect to show before making them again:{in_doubt}"
            )),
            "{label}: {}",
            show.out
        );
        // The reboot reached moto once (after) or never (before); neither the snapshots nor
        // DNS were done, the failover step before them having failed (on_failure = abort).
        if when == KillWhen::Before {
            want.remove(op);
        }
        want.remove("ChangeResourceRecordSets");
        want.remove("CreateDBClusterSnapshot");
        want.remove("CreateDBSnapshot");
        "failed as it must (reboot in doubt not repeated)".to_string()
    } else {
        assert_eq!(resumed.code, Some(0), "{label}: {}", resumed.both());
        assert!(
            resumed.out.contains(&format!("\nRun {id} succeeded.\n")),
            "{label}: {}",
            resumed.out
        );
        let settled: Vec<_> = events
            .iter()
            .filter(|e| e.kind == "settled" && e.intent_seq == Some(intent.seq))
            .collect();
        assert_eq!(settled.len(), 1, "{label}: {events:#?}");
        let how = settled[0].data["how"].as_str().unwrap();
        let after = waited(settled[0]);
        if when == KillWhen::Before {
            assert_eq!(
                how, "its effect did not show within its grace: the call is made again",
                "{label}"
            );
            assert!(after >= grace(op), "{label}: made again after {after:?}");
        } else {
            assert_eq!(
                how, "its effect was observed: the step no longer needs the call",
                "{label}"
            );
            assert!(
                after < grace(op) / 2,
                "{label}: settled after {after:?}, as if the effect had not shown"
            );
        }
        // `show` no longer calls it in doubt, and says how it was settled.
        let show = r.run(&k.path, &["show", id.as_str()]).await;
        assert!(
            !show.out.contains("\nCalls in doubt:"),
            "{label}: {}",
            show.out
        );
        let settled_line = format!(
            "\nNo call is in doubt. Calls whose outcome was never written, settled since:{}: {how}\n",
            in_doubt.trim_end()
        );
        assert!(show.out.ends_with(&settled_line), "{label}: {}", show.out);
        format!("succeeded, doubt settled after {after:.1?}")
    };
    let calls = r.proxy.mutating();
    assert_eq!(per_op(&calls), want, "{label}: {calls:?}");
    let notified = r.sink.received().len() - k.sink_before;
    let want_notified = if op == "RebootDBInstance" { 1 } else { 3 };
    assert_eq!(
        notified, want_notified,
        "{label}: announce once, then chat and status"
    );
    assert_eq!(k.journal.verify_chain().unwrap(), None, "{label}");
    format!("{label:<36} resume took {took:>6.1?}: {outcome}")
}

/// Killed while waiting for its DNS change to be INSYNC (before a GetChange reached moto):
/// every call was made and answered; the resume only checks the change.
async fn kill_in_dns_wait(r: &Rig, reference: &[String]) -> String {
    let label = "during the DNS wait";
    let k = run_and_kill(r, label, |p| p.kill_on("GetChange", 1, KillWhen::Before, 0)).await;
    assert_eq!(r.proxy.fired_on().as_deref(), Some("GetChange"));
    assert_eq!(r.proxy.mutating(), reference);
    assert_eq!(count(&r.proxy.calls(), "GetChange"), 0);
    assert_eq!(k.journal.open_intents(&k.id).unwrap(), vec![]);
    let steps = k.journal.steps(&k.id).unwrap();
    let dns = steps.iter().find(|s| s.step_id == "repoint-dns").unwrap();
    assert_eq!(dns.status.as_str(), "running");
    let (resumed, took) = resume(r, &k).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.both());
    assert_eq!(per_op(&r.proxy.mutating()), per_op(reference));
    assert_eq!(
        count(&r.proxy.calls(), "GetChange"),
        1,
        "the resume checks the change"
    );
    assert_eq!(r.sink.received().len() - k.sink_before, 3);
    format!("{label:<36} resume took {took:>6.1?}: succeeded")
}

/// Killed at an approval gate: nothing is waiting for an approval, so `approve` is refused;
/// the resume waits at the gate again, an approval releases it, and the run does everything.
async fn kill_at_gate(r: &Rig, reference: &[String]) -> String {
    r.reseed().await;
    let j = r.journal("at-the-gate");
    let sink_before = r.sink.received().len();
    let run = r.spawn(
        &j,
        &strs(&evacuate("us-west-2a", "alice", &["--require-approval"])),
    );
    let pid = run.id().unwrap();
    let journal = open_journal(&j).await;
    let id = the_run(&journal).await;
    at_gate(&journal, &id).await;
    assert_eq!(r.proxy.mutating(), Vec::<String>::new());
    signal(pid, libc::SIGKILL);
    let killed = wait_done(run, Duration::from_secs(10)).await;
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));

    let rec = journal.run_exact(&id).unwrap();
    assert_eq!(rec.status, RunStatus::WaitingApproval);
    let since = format_ts(rec.heartbeat_at.unwrap());
    let d = r.run(&j, &["approve", id.as_str(), "--by", "bob"]).await;
    assert_eq!(d.code, Some(5), "{}", d.both());
    assert_eq!(d.err, format!("error: run {id} is stale: its process ({}:{pid}) stopped sending heartbeats at {since}: nothing is waiting for this approval; `failover resume {id}` continues the run, and its gate then waits for approvals again\n", host()));
    assert_eq!(
        journal.approvals(&id, "require-approval").unwrap(),
        Vec::<String>::new()
    );

    let started = Instant::now();
    let resumed = r.spawn(&j, &["resume", id.as_str(), "--by", "alice"]);
    until(
        "the resumed run at its gate",
        Duration::from_secs(30),
        || {
            let asked = journal
                .events(&id)
                .ok()?
                .iter()
                .filter(|e| e.kind == "approval_requested")
                .count();
            (asked == 2).then_some(())
        },
    )
    .await;
    at_gate(&journal, &id).await;
    assert_eq!(r.proxy.mutating(), Vec::<String>::new());
    let d = r.run(&j, &["approve", id.as_str(), "--by", "bob"]).await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    assert_eq!(
        d.out,
        format!("Approved step `require-approval` of run {id} as bob. The run continues.\n")
    );
    let resumed = wait_done(resumed, Duration::from_secs(60)).await;
    let took = started.elapsed();
    assert_eq!(resumed.code, Some(0), "{}", resumed.both());
    assert!(
        resumed.out.contains(&format!("\nRun {id} succeeded.\n")),
        "{}",
        resumed.out
    );
    assert_eq!(r.proxy.mutating(), reference);
    assert_eq!(r.sink.received().len() - sink_before, 3);
    format!(
        "{:<36} resume took {took:>6.1?}: succeeded",
        "at the approval gate"
    )
}

/// kill -9 at every mutating-call boundary of the evacuation (before the call reaches moto,
/// and after moto answered), in its DNS wait and at an approval gate; `failover resume` then
/// finishes the run, and in all every mutating call reached moto as often as in an
/// uninterrupted run. Resumes that must wait for a call's grace run at once, on moto servers
/// of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_mutating_call_then_resume() {
    let t0 = Instant::now();
    let r = MotoRig::start(Some(SWEEP)).await;
    let j = r.journal("reference");
    let d = r
        .run(&j, &strs(&evacuate("us-west-2a", "alice", &[])))
        .await;
    assert_eq!(d.code, Some(0), "{}", d.both());
    let reference = r.proxy.mutating();
    assert_eq!(
        reference,
        [
            "FailoverDBCluster",
            "RebootDBInstance",
            "CreateDBClusterSnapshot",
            "CreateDBClusterSnapshot",
            "CreateDBClusterSnapshot",
            "CreateDBSnapshot",
            "ChangeResourceRecordSets"
        ]
    );
    assert_eq!(count(&r.proxy.calls(), "GetChange"), 1);
    assert_eq!(r.sink.received().len(), 3);

    let mut slow = tokio::task::JoinSet::new();
    let mut fast = vec![];
    for n in 1..=reference.len() {
        for when in [KillWhen::Before, KillWhen::After] {
            if waits_for_grace(&reference[n - 1], when) {
                let reference = reference.clone();
                slow.spawn(async move {
                    let r = MotoRig::start(Some(SWEEP_SLOW)).await;
                    boundary(&r, &reference, n, when).await
                });
            } else {
                fast.push((n, when));
            }
        }
    }
    let mut lines = vec![];
    for (n, when) in fast {
        lines.push(boundary(&r, &reference, n, when).await);
    }
    lines.push(kill_in_dns_wait(&r, &reference).await);
    lines.push(kill_at_gate(&r, &reference).await);
    let fast_done = t0.elapsed();
    while let Some(line) = slow.join_next().await {
        match line {
            Ok(l) => lines.push(l),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    eprintln!(
        "kill_at_every_mutating_call_then_resume: {:?} (cases that need not wait done at {fast_done:?})\n  {}",
        t0.elapsed(),
        lines.join("\n  ")
    );
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every cluster of the local topology with its writer in `zone` (after an evacuation of
/// us-west-2a and us-west-2b, us-west-2c).
fn all_writers_in(zone: &str) -> BTreeMap<String, String> {
    ["catalog-db", "orders-db", "sessions-db"]
        .into_iter()
        .map(|c| (c.to_string(), zone.to_string()))
        .collect()
}
