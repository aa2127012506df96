//! Many writers on one journal: 8 workers each start 10 runs of the real binary, one process
//! after another, all at once, against one journal file and a simulated environment (each
//! process has a simulated world of its own, so the runs share only the journal).
//!
//! - Most runs are of `tests/fixtures/notify-and-wait.toml` (HTTP and wait steps: no lease), so
//!   no lease refuses them.
//! - Some are started with `--require-approval`; the next worker approves them (`failover
//!   approve`, as soon as the run is in the journal; the topology's simulated second person
//!   approves after 50 virtual minutes if nobody did).
//! - A slice overlaps: a worker starts the AZ evacuation paused at its approval gate (it holds
//!   the leases on the clusters and records), then starts the same evacuation again; that one
//!   is refused (exit 5, naming the holder), unless the first one has already ended. Evacuations
//!   of two workers refuse each other the same way.
//! - Every round also reads: `runs`, `show`, `verify`, `locks`.
//!
//! Then: no process printed `database is locked` or a journal error; every run in the journal
//! ended `succeeded`; each run has exactly the events of an uncontended run of the same runbook
//! (counted by kind; for runs behind an approval gate, the events that depend on when the
//! approval came are set apart); `failover verify` finds the chain intact.

use crate::common::topo::repo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WORKERS: usize = 8;
const ROUNDS: usize = 10;
const NOTIFY: &str = "tests/fixtures/notify-and-wait.toml";
const EVACUATION: &str = "runbooks/az-evacuation.toml";

/// Events whose number depends on when an approval came (before the gate was reached or
/// while it waited), not on contention. `skip`: the DNS step starts with the failovers once
/// approved and polls while its records wait for their databases (records_after), so which
/// "nothing to do" notes its polls print depends on where the approval put them.
const APPROVAL_TIMING: &[&str] = &[
    "skip",
    "approval_requested",
    "step_status",
    "run_status",
    "approved",
];

/// A config directory with one simulated environment, `sim`, and a journal path.
struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    journal: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let topology = std::fs::read_to_string(repo().join("config/sim/storefront.toml")).unwrap();
    // Nobody but the workers approves for 50 virtual minutes (a gate waits 60).
    let topology = topology.replace("\nafter = \"90s\"\n", "\nafter = \"50m\"\n");
    assert!(
        topology.contains("after = \"50m\""),
        "the storefront's [approval] moved"
    );
    let topo = dir.path().join("storefront.toml");
    std::fs::write(&topo, topology).unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("sim.toml"),
        format!(
            "simulated = {:?}\nseed = 3\nfaults = [\"az-down us-west-2a at 0s\"]\n",
            topo.display().to_string()
        ),
    )
    .unwrap();
    let journal = dir.path().join("state").join("journal.db");
    Fixture {
        _dir: dir,
        config,
        journal,
    }
}

/// One process that ran: its arguments, exit code and output.
#[derive(Clone, Debug)]
struct Done {
    args: Vec<String>,
    code: i32,
    out: String,
    err: String,
}

impl Done {
    fn from(args: &[&str], o: Output) -> Self {
        Done {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into(),
            err: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    /// The id in `Run ID succeeded.`.
    fn run_id(&self) -> Option<String> {
        self.out.lines().find_map(|l| {
            l.strip_prefix("Run ")
                .and_then(|r| r.strip_suffix(" succeeded."))
                .map(String::from)
        })
    }
}

/// Starts processes of the binary against the fixture and keeps what each one printed.
#[derive(Clone)]
struct Cli {
    config: PathBuf,
    journal: PathBuf,
    log: Arc<Mutex<Vec<Done>>>,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_failover"));
        c.current_dir(repo())
            .env_remove("FAILOVER_JOURNAL")
            .env_remove("FAILOVER_CONFIG_DIR")
            .env_remove("FAILOVER_USER")
            .env("HOME", std::env::temp_dir())
            .arg("--config-dir")
            .arg(&self.config)
            .arg("--journal")
            .arg(&self.journal)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Done {
        let o = self.command(args).output().expect("run failover");
        self.keep(Done::from(args, o))
    }

    fn spawn(&self, args: &[&str]) -> (Vec<String>, Child) {
        let child = self.command(args).spawn().expect("start failover");
        (args.iter().map(|a| a.to_string()).collect(), child)
    }

    fn wait(&self, (args, child): (Vec<String>, Child)) -> Done {
        let o = child.wait_with_output().expect("wait for failover");
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.keep(Done::from(&a, o))
    }

    fn keep(&self, d: Done) -> Done {
        self.log.lock().unwrap().push(d.clone());
        d
    }
}

/// What the workers saw, besides the processes' output.
#[derive(Default)]
struct Seen {
    problems: Vec<String>,
    /// Overlapping starts refused because another run held a lease, and by whom.
    refused: Vec<String>,
    /// Overlapping starts that went through (the other run had ended).
    overlap_ran: usize,
    /// Approvals by a worker that released a gate, and those that came too late.
    approved: usize,
    late: usize,
}

type Shared = Arc<Mutex<Seen>>;

fn problem(seen: &Shared, p: String) {
    seen.lock().unwrap().problems.push(p);
}

/// Approve each run sent to this worker as soon as it is in the journal.
fn approver(cli: Cli, me: String, runs: mpsc::Receiver<String>, seen: Shared) {
    for run in runs {
        let started = Instant::now();
        loop {
            let d = cli.run(&["approve", &run, "--by", &me, "--step", "require-approval"]);
            let late = [
                "has already finished",
                "already approved",
                "nothing is waiting",
            ];
            match d.code {
                0 => seen.lock().unwrap().approved += 1,
                5 if d.err.contains("is not in the journal")
                    && started.elapsed() < Duration::from_secs(60) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                5 if late.iter().any(|l| d.err.contains(l)) => seen.lock().unwrap().late += 1,
                _ => problem(&seen, format!("{me}: approve {run}: {d:?}")),
            }
            break;
        }
    }
}

/// An overlapping start: refused naming a holder (exit 5), or run through (exit 0).
fn overlapping(d: &Done, seen: &Shared) {
    match d.code {
        5 if d.err.contains(" is leased by run ") => {
            let holder = d.err.split(" is leased by run ").nth(1).unwrap_or("");
            let holder = holder.split_whitespace().next().unwrap_or("").to_string();
            seen.lock().unwrap().refused.push(holder);
        }
        0 => seen.lock().unwrap().overlap_ran += 1,
        _ => problem(seen, format!("an overlapping evacuation: {d:?}")),
    }
}

/// The evacuation paused at its gate, then the same evacuation again while it holds the leases.
/// Whether the gated one started (it is refused when another worker's holds the leases).
fn overlap_round(
    cli: &Cli,
    me: &str,
    id: &str,
    approve: &mpsc::Sender<String>,
    seen: &Shared,
) -> bool {
    let evacuate = [
        "run",
        EVACUATION,
        "--env",
        "sim",
        "-p",
        "failed_az=us-west-2a",
        "--by",
        me,
    ];
    let gated: Vec<&str> = evacuate
        .iter()
        .copied()
        .chain(["--require-approval", "--run-id", id])
        .collect();
    let mut first = cli.spawn(&gated);
    // Wait until it is in the journal (it holds its leases from then until it ends), or ended.
    loop {
        if cli.run(&["show", id, "--output", "json"]).code == 0 {
            break;
        }
        if first.1.try_wait().unwrap().is_some() {
            // Refused: another worker's evacuation holds the leases.
            overlapping(&cli.wait(first), seen);
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    overlapping(&cli.run(&evacuate), seen);
    approve.send(id.to_string()).unwrap();
    let d = cli.wait(first);
    if d.code != 0 {
        problem(seen, format!("{me}: the gated evacuation {id}: {d:?}"));
    }
    true
}

/// One worker: ROUNDS runs, one process after another, and a reader after each.
fn worker(cli: Cli, w: usize, approve: mpsc::Sender<String>, seen: Shared) {
    let me = format!("worker-{w}");
    let mut mine: Vec<String> = vec![];
    for i in 0..ROUNDS {
        match i % 5 {
            2 => {
                let id = format!("cc-{w}-{i}-evacuation");
                if overlap_round(&cli, &me, &id, &approve, &seen) {
                    mine.push(id);
                }
            }
            4 => {
                let id = format!("cc-{w}-{i}-gated");
                let run = [
                    "run",
                    NOTIFY,
                    "--env",
                    "sim",
                    "--by",
                    &me,
                    "--require-approval",
                ];
                let args: Vec<&str> = run.iter().copied().chain(["--run-id", &id]).collect();
                let child = cli.spawn(&args);
                approve.send(id.clone()).unwrap();
                let d = cli.wait(child);
                if d.code != 0 {
                    problem(&seen, format!("{me}: gated run {id}: {d:?}"));
                }
                mine.push(id);
            }
            _ => {
                let d = cli.run(&["run", NOTIFY, "--env", "sim", "--by", &me]);
                match (d.code, d.run_id()) {
                    (0, Some(id)) => mine.push(id),
                    _ => problem(&seen, format!("{me}: {d:?}")),
                }
            }
        }
        let last = mine.last().cloned().unwrap_or_default();
        let reader: Vec<&str> = match (w + i) % 4 {
            0 => vec!["runs", "--limit", "500", "--output", "json"],
            1 => vec!["show", &last, "--output", "json"],
            2 => vec!["verify"],
            _ => vec!["locks", "--all"],
        };
        let d = cli.run(&reader);
        if d.code != 0 {
            problem(&seen, format!("{me}: reader: {d:?}"));
        }
    }
}

/// Events of each run by kind, and each run's runbook, status and whether it had a gate.
struct Journaled {
    runs: BTreeMap<String, (String, String, bool)>,
    events: BTreeMap<String, BTreeMap<String, i64>>,
    total: i64,
}

fn read_journal(path: &Path) -> Journaled {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut runs = BTreeMap::new();
    let mut st = c
        .prepare("SELECT id, runbook, status, steps FROM runs")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            let steps: String = r.get(3)?;
            Ok((
                r.get::<_, String>(0)?,
                (
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    steps.contains("\"require-approval\""),
                ),
            ))
        })
        .unwrap();
    for row in rows {
        let (id, v) = row.unwrap();
        runs.insert(id, v);
    }
    let mut events: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut st = c
        .prepare("SELECT run_id, kind, count(*) FROM events GROUP BY run_id, kind")
        .unwrap();
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })
        .unwrap();
    for row in rows {
        let (run, kind, n) = row.unwrap();
        events.entry(run).or_default().insert(kind, n);
    }
    let total = c
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    Journaled {
        runs,
        events,
        total,
    }
}

/// The events of one uncontended run of each kind (runbook, gated), in a journal of its own.
fn baseline() -> BTreeMap<(String, bool), BTreeMap<String, i64>> {
    let fx = fixture();
    let cli = Cli {
        config: fx.config.clone(),
        journal: fx.journal.clone(),
        log: Arc::default(),
    };
    let plain = |rb: &'static str| {
        let mut a = vec!["run", rb, "--env", "sim", "--by", "alice"];
        if rb == EVACUATION {
            a.extend(["-p", "failed_az=us-west-2a"]);
        }
        a
    };
    for rb in [NOTIFY, EVACUATION] {
        let d = cli.run(&plain(rb));
        assert_eq!(d.code, 0, "{d:?}");
        let id = format!("base-{}", rb.len());
        let mut gated = plain(rb);
        gated.extend(["--require-approval", "--run-id", &id]);
        let child = cli.spawn(&gated);
        loop {
            let d = cli.run(&["approve", &id, "--by", "bob", "--step", "require-approval"]);
            if d.code == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let d = cli.wait(child);
        assert_eq!(d.code, 0, "{d:?}");
    }
    let j = read_journal(&fx.journal);
    j.runs
        .iter()
        .map(|(id, (rb, _, gated))| ((rb.clone(), *gated), j.events[id].clone()))
        .collect()
}

/// A run's events as compared: without those that depend on when an approval came, if gated.
fn comparable(events: &BTreeMap<String, i64>, gated: bool) -> BTreeMap<String, i64> {
    events
        .iter()
        .filter(|(k, _)| !(gated && APPROVAL_TIMING.contains(&k.as_str())))
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

fn check_outputs(log: &[Done], problems: &mut Vec<String>) {
    for d in log {
        let text = format!("{}{}", d.out, d.err);
        for bad in [
            "database is locked",
            "database is busy",
            "check that the journal's directory is writable",
            "error: journal",
        ] {
            if text.contains(bad) {
                problems.push(format!(
                    "`{}` printed `{bad}`:\n{}",
                    d.args.join(" "),
                    d.err
                ));
            }
        }
        if d.code == 4 {
            problems.push(format!(
                "`{}` exited 4 (journal): {}",
                d.args.join(" "),
                d.err
            ));
        }
    }
}

fn check_runs(j: &Journaled, problems: &mut Vec<String>) {
    let base = baseline();
    for (id, (rb, status, gated)) in &j.runs {
        if status != "succeeded" {
            problems.push(format!("run {id} ({rb}) ended {status}"));
        }
        let got = j.events.get(id).cloned().unwrap_or_default();
        let Some(want) = base.get(&(rb.clone(), *gated)) else {
            problems.push(format!(
                "run {id}: no uncontended run of `{rb}` to compare with"
            ));
            continue;
        };
        if comparable(&got, *gated) != comparable(want, *gated) {
            problems.push(format!(
                "run {id} ({rb}{}): events {:?}, an uncontended run has {:?}",
                if *gated { ", gated" } else { "" },
                comparable(&got, *gated),
                comparable(want, *gated)
            ));
        }
        if *gated && got.get("approved").copied().unwrap_or(0) < 1 {
            problems.push(format!(
                "run {id}: gated, but no approval in the journal: {got:?}"
            ));
        }
    }
}

#[test]
fn many_processes_share_one_journal_and_lose_nothing() {
    let fx = fixture();
    let cli = Cli {
        config: fx.config.clone(),
        journal: fx.journal.clone(),
        log: Arc::default(),
    };
    let seen: Shared = Arc::default();
    let started = Instant::now();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..WORKERS).map(|_| mpsc::channel()).unzip();
    let approvers: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(w, rx)| {
            let (cli, seen) = (cli.clone(), seen.clone());
            std::thread::spawn(move || approver(cli, format!("worker-{w}"), rx, seen))
        })
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            // The next worker approves this one's gated runs.
            let approve = senders[(w + 1) % WORKERS].clone();
            let (cli, seen) = (cli.clone(), seen.clone());
            std::thread::spawn(move || worker(cli, w, approve, seen))
        })
        .collect();
    drop(senders);
    for t in workers.into_iter().chain(approvers) {
        t.join().expect("a worker panicked");
    }
    let wall = started.elapsed();
    let verify = cli.run(&["verify"]);
    let log = cli.log.lock().unwrap().clone();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let j = read_journal(&fx.journal);
    let mut problems = seen.problems.clone();
    check_outputs(&log, &mut problems);
    check_runs(&j, &mut problems);
    if verify.code != 0 || !verify.out.contains("The chain is intact") {
        problems.push(format!("verify: {verify:?}"));
    }
    eprintln!(
        "{WORKERS} workers x {ROUNDS} rounds: {} processes in {wall:?}; {} runs, {} events written (each write appends one; lease renewals are not events); overlapping evacuations refused {} time(s) (holders {:?}), run through {}; gated runs approved by a worker {}, too late {}",
        log.len(),
        j.runs.len(),
        j.total,
        seen.refused.len(),
        seen.refused,
        seen.overlap_ran,
        seen.approved,
        seen.late
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let refusals_name_runs = seen.refused.iter().all(|h| j.runs.contains_key(h));
    assert!(
        refusals_name_runs,
        "a refusal names an unknown run: {:?}",
        seen.refused
    );
    assert!(!seen.refused.is_empty(), "no overlapping start was refused");
    assert!(seen.approved > 0, "no gate was released by a worker");
    let started_runs = log
        .iter()
        .filter(|d| d.args[0] == "run" && d.code == 0)
        .count();
    assert_eq!(
        j.runs.len(),
        started_runs,
        "every `run` that exited 0 left one run in the journal, every refused one none"
    );
}
