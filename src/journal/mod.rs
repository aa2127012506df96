//! The durable run log on an embedded SQLite file: the default implementation of the
//! `store::Store` port (runs, steps, the hash-chained events, approvals, shed state, leases).
//!
//! Every state change is one immediate transaction that updates its table and appends its
//! event to the chain together; an intent is written, in the same transaction, only if the
//! run still holds its leases (the fence). An intent without an outcome marks a call that may
//! or may not have reached AWS. Events carry a SHA-256 chain (`hash` = H(prev_hash, event)) so
//! tampering with the history is detectable.
//!
//! An intent is on disk (WAL fsynced, `synchronous=FULL`) before the call it announces is made;
//! so are leases taken and approvals. Other events (outcomes, notes, step statuses,
//! heartbeats) are committed without their own fsync (`synchronous=NORMAL`): a killed process
//! loses none of them, and the next durable write makes them durable against a power loss too
//! (unrelated events share a sync). Several processes share the file: a write waits for the
//! lock, bounded.
//!
//! Concurrent intents share a sync too (group commit, `group.rs`): through the `Store` port on
//! a multi-thread runtime, the intents that arrive while a group is being committed are written
//! together in the next transaction, in arrival order, with one fsync. Each is checked against
//! its own fence (a fenced one fails alone and writes nothing); each caller gets its sequence
//! number only after its group's commit returned, and awaits it without holding a worker
//! thread (the commit runs on the blocking pool). On a current-thread runtime (the simulator)
//! and through the synchronous [`Journal::intent`], an intent is written in place, alone.

mod audit;
mod group;
mod leases;
mod port;
mod records;
mod sqlite;

pub use crate::store::{Event, RunRecord, StepRecord, StoreError as JournalError};
pub use crate::timefmt::format_ts;
pub use sqlite::{
    now_ms, observe_writes, sha256_hex, AuditKey, ChainKind, Journal, WriteObserver, WRITE_PATIENCE,
};

use crate::types::RunId;
use std::time::{SystemTime, UNIX_EPOCH};

/// Results of journal operations.
pub type Result<T> = std::result::Result<T, JournalError>;

/// A new run id: sortable by time, short enough to type, unique enough for one team.
pub fn new_run_id() -> RunId {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, mo, d, h, mi, s) = crate::timefmt::civil(secs as i64);
    let mut rng = fastrand::Rng::new();
    let suffix: String = (0..6)
        .map(|_| rng.alphanumeric().to_ascii_lowercase())
        .collect();
    RunId::new(format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::LeaseKey;
    use crate::status::{RunMode, RunStatus, StepStatus};
    use crate::store::{Approval, Fence, LeaseRequest, StoreError};
    use rusqlite::params;

    fn run(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            runbook: "rb".into(),
            runbook_path: "runbooks/rb.toml".into(),
            runbook_sha256: "x".into(),
            environment: "local".into(),
            mode: RunMode::Run,
            initiator: "alice".into(),
            params: serde_json::json!({}),
            status: RunStatus::Running,
            started_at: now_ms(),
            ended_at: None,
            error: None,
            plan: serde_json::json!({}),
            steps: serde_json::json!([]),
            heartbeat_at: None,
            holder: None,
        }
    }

    fn open() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
        (dir, j)
    }

    fn poke(j: &Journal, sql: &str) {
        j.conn.lock().unwrap().execute(sql, []).unwrap();
    }

    fn lease_req(run: &str, keys: &[&str], ttl_ms: i64) -> LeaseRequest {
        LeaseRequest {
            run_id: run.into(),
            initiator: "alice".into(),
            holder: "host:1".into(),
            keys: keys.iter().map(|k| LeaseKey(k.to_string())).collect(),
            ttl_ms,
            takeover: false,
        }
    }

    #[test]
    fn intents_without_outcomes_are_found_and_chain_verifies() {
        let (_d, j) = open();
        j.create_run(&run("r1")).unwrap();
        let r1 = RunId::from("r1");
        j.init_step(&r1, "s", "rds.failover_cluster", StepStatus::Pending)
            .unwrap();
        let none = Fence::default();
        let a = j
            .intent(
                &r1,
                "s",
                "FailoverDBCluster",
                "orders",
                serde_json::json!({"target": "orders-2"}),
                &none,
            )
            .unwrap();
        j.outcome(
            &r1,
            "s",
            a,
            "FailoverDBCluster",
            "orders",
            serde_json::json!({"ok": true}),
        )
        .unwrap();
        let b = j
            .intent(
                &r1,
                "s",
                "FailoverDBCluster",
                "catalog",
                serde_json::json!({}),
                &none,
            )
            .unwrap();
        let open = j.open_intents(&r1).unwrap();
        assert_eq!(open.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![b]);
        let doubt = j.in_doubt(0).unwrap();
        assert_eq!(doubt.len(), 1);
        assert_eq!((doubt[0].seq, doubt[0].resource.as_str()), (b, "catalog"));
        j.settle(&r1, "s", b, "its effect was observed").unwrap();
        assert!(
            j.in_doubt(0).unwrap().is_empty(),
            "settled calls are no longer in doubt"
        );
        assert_eq!(j.verify_chain().unwrap(), None);
        // Tamper with one event: the chain breaks there.
        j.conn
            .lock()
            .unwrap()
            .execute(
                "UPDATE events SET data = '{\"target\":\"x\"}' WHERE seq = ?1",
                params![a],
            )
            .unwrap();
        assert_eq!(j.verify_chain().unwrap(), Some(a));
    }

    /// Regression (CI): with many processes on one journal, an open failed "database is locked":
    /// converting a new file to WAL does not wait (SQLite runs no busy handler for it), and
    /// another process's last close checkpoints under a lock. Opens, reads and writes wait.
    #[test]
    fn many_opens_and_closes_at_once_never_fail_busy() {
        let dir = tempfile::tempdir().unwrap();
        // Each file is new: its first opens race to convert it to WAL.
        for file in 0..6 {
            let path = dir.path().join(format!("j{file}.db"));
            let start = std::sync::Arc::new(std::sync::Barrier::new(12));
            let threads: Vec<_> = (0..12)
                .map(|t| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || -> std::result::Result<(), String> {
                        start.wait();
                        for i in 0..10 {
                            let j = Journal::open(&path).map_err(|e| format!("open {i}: {e}"))?;
                            j.create_run(&run(&format!("r{t}-{i}")))
                                .map_err(|e| format!("write {i}: {e}"))?;
                            j.event_count().map_err(|e| format!("read {i}: {e}"))?;
                        }
                        Ok(())
                    })
                })
                .collect();
            let failed: Vec<String> = threads
                .into_iter()
                .filter_map(|t| t.join().unwrap().err())
                .collect();
            assert!(failed.is_empty(), "file {file}: {failed:?}");
            let j = Journal::open(&path).unwrap();
            assert_eq!(j.runs(1000).unwrap().len(), 12 * 10);
            assert_eq!(j.verify_chain().unwrap(), None);
        }
    }

    /// Regression: a run interrupted (ended) then resumed kept its end, so it read as ended:
    /// `approve` refused its gate ("has already finished (waiting_approval)").
    #[test]
    fn regression_a_resumed_run_is_open_again() {
        let (_d, j) = open();
        j.create_run(&run("r1")).unwrap();
        let r1 = RunId::from("r1");
        j.set_run_status(&r1, RunStatus::Interrupted, Some("signal"), true)
            .unwrap();
        assert!(j.run_exact(&r1).unwrap().ended_at.is_some());
        j.set_run_status(&r1, RunStatus::Running, None, false)
            .unwrap();
        j.set_run_status(&r1, RunStatus::WaitingApproval, None, false)
            .unwrap();
        let r = j.run_exact(&r1).unwrap();
        assert_eq!((r.status, r.ended_at), (RunStatus::WaitingApproval, None));
        let v = j.verify(&[]).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        j.set_run_status(&r1, RunStatus::Succeeded, None, true)
            .unwrap();
        assert!(j.run_exact(&r1).unwrap().ended_at.is_some());
    }

    #[test]
    fn a_failure_that_may_have_been_processed_is_in_doubt() {
        let (_d, j) = open();
        j.create_run(&run("r1")).unwrap();
        let r1 = RunId::from("r1");
        let f = Fence::default();
        let a = j
            .intent(
                &r1,
                "s",
                "FailoverDBCluster",
                "orders",
                serde_json::json!({}),
                &f,
            )
            .unwrap();
        j.outcome(
            &r1,
            "s",
            a,
            "FailoverDBCluster",
            "orders",
            serde_json::json!({"ok": false, "kind": "transient", "error": "500"}),
        )
        .unwrap();
        let b = j
            .intent(
                &r1,
                "s",
                "FailoverDBCluster",
                "catalog",
                serde_json::json!({}),
                &f,
            )
            .unwrap();
        j.outcome(
            &r1,
            "s",
            b,
            "FailoverDBCluster",
            "catalog",
            serde_json::json!({"ok": false, "kind": "throttled", "error": "429"}),
        )
        .unwrap();
        let doubt = j.in_doubt(0).unwrap();
        assert_eq!(
            doubt
                .iter()
                .map(|d| d.resource.as_str())
                .collect::<Vec<_>>(),
            ["orders"],
            "a throttled call was not processed"
        );
        assert!(doubt[0].why.contains("500"), "{doubt:?}");
    }

    #[test]
    fn unknown_values_read_back_are_errors_naming_the_column() {
        let (_d, j) = open();
        j.create_run(&run("r1")).unwrap();
        let r1 = RunId::from("r1");
        j.init_step(&r1, "s", "wait", StepStatus::Pending).unwrap();
        j.set_step_status(&r1, "s", StepStatus::WaitingApproval, None)
            .unwrap();
        j.set_run_status(&r1, RunStatus::WaitingApproval, None, false)
            .unwrap();
        // The columns hold the same text as before the statuses were types.
        let col = |sql: &str| -> String {
            j.conn
                .lock()
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(col("SELECT status FROM runs"), "waiting_approval");
        assert_eq!(col("SELECT mode FROM runs"), "run");
        assert_eq!(col("SELECT status FROM steps"), "waiting_approval");
        assert_eq!(j.steps(&r1).unwrap()[0].status, StepStatus::WaitingApproval);
        poke(&j, "UPDATE steps SET status = 'paused'");
        let e = j.steps(&r1).unwrap_err();
        assert!(
            matches!(&e, JournalError::UnknownValue { column: "steps.status", value, .. } if value == "paused"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("column `steps.status` holds `paused`"),
            "{e}"
        );
        poke(&j, "UPDATE runs SET mode = 'chaos'");
        let e = j.run("r1").unwrap_err();
        assert!(
            matches!(&e, JournalError::UnknownValue { column: "runs.mode", value, .. } if value == "chaos"),
            "{e}"
        );
    }

    #[test]
    fn run_lookup_by_prefix_matches_no_pattern() {
        let (_d, j) = open();
        j.create_run(&run("20261122-010203-abcd")).unwrap();
        j.create_run(&run("20261122-010203-abzz")).unwrap();
        assert_eq!(
            j.run("20261122-010203-abc").unwrap().id,
            RunId::from("20261122-010203-abcd")
        );
        assert!(matches!(
            j.run("20261122-010203-ab"),
            Err(JournalError::Refused(_))
        ));
        assert!(matches!(j.run("nope"), Err(JournalError::UnknownRun(_))));
        assert!(
            matches!(j.run("%"), Err(JournalError::UnknownRun(_))),
            "no LIKE patterns"
        );
        assert!(matches!(
            j.run("2026112_-010203-abcd"),
            Err(JournalError::UnknownRun(_))
        ));
        assert!(matches!(
            j.run_exact(&RunId::from("20261122-010203-abc")),
            Err(JournalError::UnknownRun(_))
        ));
    }

    #[test]
    fn leases_are_all_or_nothing_and_name_the_holder() {
        let (_d, j) = open();
        let a = j.acquire(&lease_req("a", &["k1", "k2"], 60_000)).unwrap();
        assert_eq!(a.tokens.iter().map(|(_, t)| *t).collect::<Vec<_>>(), [1, 1]);
        let e = j
            .acquire(&lease_req("b", &["k3", "k2"], 60_000))
            .unwrap_err();
        let StoreError::Conflict(c) = e else {
            panic!("{e}")
        };
        assert_eq!(
            (c.key.0.as_str(), c.held_by.as_str(), c.initiator.as_str()),
            ("k2", "a", "alice")
        );
        assert!(
            j.leases().unwrap().iter().all(|l| l.key.0 != "k3"),
            "nothing of a refused grant is kept"
        );
        j.release(&RunId::from("a")).unwrap();
        let b = j.acquire(&lease_req("b", &["k3", "k2"], 60_000)).unwrap();
        assert_eq!(
            b.tokens,
            vec![(LeaseKey("k3".into()), 1), (LeaseKey("k2".into()), 2)],
            "tokens only grow"
        );
    }

    #[test]
    fn an_expired_or_taken_over_lease_fences_its_old_holder() {
        let (_d, j) = open();
        j.create_run(&run("a")).unwrap();
        let ra = RunId::from("a");
        let mut fence = j.acquire(&lease_req("a", &["k"], 60_000)).unwrap();
        fence.budget_ms = 1_000;
        j.intent(&ra, "s", "Op", "k", serde_json::json!({}), &fence)
            .unwrap();
        // The holder stalls past its lease; another run takes the resource over.
        poke(&j, "UPDATE leases SET renewed = renewed - 120000");
        let b = j.acquire(&lease_req("b", &["k"], 60_000)).unwrap();
        assert_eq!(b.tokens[0].1, 2);
        let e = j
            .intent(&ra, "s", "Op", "k", serde_json::json!({}), &fence)
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Fenced(m) if m.contains("taken over")),
            "{e}"
        );
        let e = j.renew(&ra, &fence, "host:1").unwrap_err();
        assert!(matches!(e, StoreError::Fenced(_)), "{e}");
        assert_eq!(
            j.events(&ra)
                .unwrap()
                .iter()
                .filter(|e| e.kind == "intent")
                .count(),
            1,
            "the fenced intent was not written"
        );
    }

    #[test]
    fn too_little_lease_left_for_a_call_fences_it() {
        let (_d, j) = open();
        j.create_run(&run("a")).unwrap();
        let mut fence = j.acquire(&lease_req("a", &["k"], 10_000)).unwrap();
        fence.budget_ms = 30_000;
        let e = j
            .intent(
                &RunId::from("a"),
                "s",
                "Op",
                "k",
                serde_json::json!({}),
                &fence,
            )
            .unwrap_err();
        assert!(
            matches!(&e, StoreError::Fenced(m) if m.contains("less than a call may take")),
            "{e}"
        );
    }

    #[test]
    fn an_aborted_run_writes_no_intent() {
        let (_d, j) = open();
        j.create_run(&run("a")).unwrap();
        let ra = RunId::from("a");
        j.set_run_status(&ra, RunStatus::Aborted, Some("aborted by bob"), true)
            .unwrap();
        let e = j
            .intent(
                &ra,
                "s",
                "Op",
                "k",
                serde_json::json!({}),
                &Fence::default(),
            )
            .unwrap_err();
        assert!(matches!(e, StoreError::Fenced(_)), "{e}");
    }

    #[test]
    fn approvals_come_from_the_chain_only() {
        let (_d, j) = open();
        j.create_run(&run("a")).unwrap();
        let ra = RunId::from("a");
        assert_eq!(
            j.approve(&ra, "gate", "bob").unwrap(),
            Approval::Recorded { count: 1 }
        );
        assert!(matches!(
            j.approve(&ra, "gate", "bob").unwrap(),
            Approval::Already { .. }
        ));
        assert_eq!(j.approvals(&ra, "gate").unwrap(), ["bob"]);
        // A row written into the approvals table by hand releases nothing.
        poke(&j, "INSERT INTO approvals (run_id, step_id, approver, at) VALUES ('a', 'gate', 'mallory', 0)");
        // Nor does an event inserted without the chain.
        poke(&j, "INSERT INTO events (run_id, step_id, at, kind, data, hash) VALUES ('a', 'gate', 0, 'approved', '{\"by\":\"eve\"}', 'x')");
        assert_eq!(j.approvals(&ra, "gate").unwrap(), ["bob"]);
    }

    #[test]
    fn many_writers_lose_nothing() {
        // Four connections to one file, each appending from its own thread at once.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        Journal::open(&path).unwrap().create_run(&run("r")).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let j = Journal::open(&path).unwrap();
                    for i in 0..50 {
                        j.note(
                            &RunId::from("r"),
                            None,
                            "n",
                            serde_json::json!({"t": t, "i": i}),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let j = Journal::open(&path).unwrap();
        assert_eq!(
            j.events(&RunId::from("r"))
                .unwrap()
                .iter()
                .filter(|e| e.kind == "n")
                .count(),
            200
        );
        assert_eq!(
            j.verify_chain().unwrap(),
            None,
            "one chain across processes"
        );
    }

    #[test]
    fn the_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("j.db");
        Journal::open(&path).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    /// Intents sent at once through the `Store` port (one task, as `engine::act` sends a
    /// step's calls) on a multi-thread runtime, while the test holds the connection: the
    /// committer cannot write until every intent is queued, so they must gather in at most
    /// two groups (the committer may have taken the first few before the others came, then
    /// waits for the connection). Returns each intent's answer, in the order given, and the
    /// durable commits.
    fn gathered(
        j: &std::sync::Arc<Journal>,
        intents: Vec<(String, Fence)>,
    ) -> (Vec<Result<i64>>, u64) {
        use crate::store::Store;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let n = intents.len();
        let (before, queued) = (j.durable_commits(), j.intents.joined());
        let held = j.conn.lock().unwrap();
        let task = rt.spawn({
            let j = j.clone();
            async move {
                let run = RunId::from("a");
                let calls = intents.iter().map(|(res, fence)| {
                    let call = serde_json::json!({"resource": res});
                    <Journal as Store>::intent(&j, &run, "s", "Op", res, call, fence)
                });
                futures_util::future::join_all(calls).await
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while j.intents.joined() - queued < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the intents never queued"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Nothing can have been acknowledged: no commit could be made yet.
        assert!(
            !task.is_finished(),
            "an intent was answered before any commit"
        );
        drop(held);
        let answers = rt.block_on(task).unwrap();
        (answers, j.durable_commits() - before)
    }

    /// A run `a` holding a lease on `k`, its fence, on a journal in a file.
    fn leased() -> (tempfile::TempDir, std::sync::Arc<Journal>, Fence) {
        let (d, j) = open();
        j.create_run(&run("a")).unwrap();
        let fence = j.acquire(&lease_req("a", &["k"], 600_000)).unwrap();
        (d, std::sync::Arc::new(j), fence)
    }

    /// The intent events written, by sequence number: resource.
    fn intents_written(j: &Journal) -> std::collections::BTreeMap<i64, String> {
        j.events(&RunId::from("a"))
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "intent")
            .map(|e| (e.seq, e.resource.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn concurrent_intents_share_a_commit_and_each_gets_its_own_seq() {
        let (_d, j, fence) = leased();
        let n = 24;
        let intents = (0..n).map(|i| (format!("r{i}"), fence.clone())).collect();
        let (answers, commits) = gathered(&j, intents);
        let seqs: Vec<i64> = answers.into_iter().map(|a| a.unwrap()).collect();
        let written = intents_written(&j);
        assert_eq!(written.len(), n, "every intent written once");
        for (i, seq) in seqs.iter().enumerate() {
            assert_eq!(
                written[seq],
                format!("r{i}"),
                "intent {i} got another's seq"
            );
        }
        assert!(commits <= 2, "{commits} durable commits for {n} intents");
        let v = j.verify(&[]).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        assert_eq!(j.verify_chain().unwrap(), None);
    }

    #[test]
    fn a_stale_fence_fails_its_own_intent_only() {
        let (_d, j, fence) = leased();
        let stale = Fence {
            tokens: vec![(LeaseKey("k".into()), fence.tokens[0].1 + 1)],
            budget_ms: 0,
        };
        let n = 16;
        let intents = (0..n)
            .map(|i| {
                (
                    format!("r{i}"),
                    if i == 8 { stale.clone() } else { fence.clone() },
                )
            })
            .collect();
        let (answers, commits) = gathered(&j, intents);
        assert!(commits <= 2, "{commits} durable commits for {n} intents");
        let written = intents_written(&j);
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Err(StoreError::Fenced(m)) if i == 8 => assert!(m.contains("taken over"), "{m}"),
                Ok(seq) if i != 8 => assert_eq!(written[&seq], format!("r{i}")),
                other => panic!("intent {i}: {other:?}"),
            }
        }
        assert_eq!(
            written.len(),
            n - 1,
            "the fenced intent alone is not written"
        );
        let v = j.verify(&[]).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
    }

    #[test]
    fn a_group_whose_commit_fails_acknowledges_none_of_its_intents() {
        let (_d, j, fence) = leased();
        poke(&j, "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.resource = 'boom' BEGIN SELECT RAISE(ABORT, 'disk full'); END");
        let n = 16;
        let intents = (0..n)
            .map(|i| {
                (
                    if i == 8 {
                        "boom".into()
                    } else {
                        format!("r{i}")
                    },
                    fence.clone(),
                )
            })
            .collect();
        let (answers, _) = gathered(&j, intents);
        let written = intents_written(&j);
        let mut failed = 0;
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Ok(seq) => assert_eq!(written[&seq], format!("r{i}")),
                Err(StoreError::Backend { message, .. }) => {
                    assert!(message.contains("disk full"), "{message}");
                    assert!(
                        !written.values().any(|r| *r == format!("r{i}")),
                        "r{i} was written"
                    );
                    failed += 1;
                }
                Err(e) => panic!("intent {i}: {e}"),
            }
        }
        assert!(
            failed >= 2,
            "the failed intent's group had others: {failed} failed"
        );
        assert!(!written.values().any(|r| r == "boom"));
        // The queue goes on: the next intents are written.
        let (answers, _) = gathered(
            &j,
            vec![("after".into(), fence.clone()), ("again".into(), fence)],
        );
        assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
        assert_eq!(j.verify_chain().unwrap(), None);
    }

    /// The simulator's runtime: one thread, intents written in place, one commit each.
    #[tokio::test]
    async fn on_a_current_thread_runtime_intents_are_written_in_place() {
        use crate::store::Store;
        let (_d, j, fence) = leased();
        let run = RunId::from("a");
        let before = j.durable_commits();
        let calls = (0..4).map(|i| {
            let res = format!("r{i}");
            let j = &j;
            let (run, fence) = (&run, &fence);
            async move {
                <Journal as Store>::intent(j, run, "s", "Op", &res, serde_json::json!({}), fence)
                    .await
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
        assert_eq!(j.durable_commits() - before, 4);
        assert_eq!(intents_written(&j).len(), 4);
    }
}
