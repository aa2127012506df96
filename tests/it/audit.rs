//! The tamper suite: a real journal (runs of the evacuation with an approval gate and of the
//! load shedding, against the simulated environment, chain keyed with an audit key), then
//! every kind of tampering on a copy of it; `failover verify` must catch each one and name
//! what is wrong. Each case is checked to pass on the untouched copy first.

use crate::common::topo::repo;
use rusqlite::{params, Connection};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

const KEY: &str = "audit-key-for-tests-5b1e";

fn failover(journal: &Path, key: Option<&str>, args: &[&str]) -> (String, String, i32) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_failover"));
    c.current_dir(repo())
        .env_remove("FAILOVER_AUDIT_KEY")
        .env_remove("FAILOVER_AUDIT_ANCHOR")
        .arg("--journal")
        .arg(journal)
        .args(args);
    if let Some(k) = key {
        c.env("FAILOVER_AUDIT_KEY", k);
    }
    let o = c.output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code().unwrap_or(-1),
    )
}

/// A journal with two real runs, its head, and the run ids.
fn make_journal(dir: &Path, key: Option<&str>) -> (PathBuf, String) {
    let j = dir.join("journal.db");
    let run = |args: &[&str]| {
        let (out, err, code) = failover(&j, key, args);
        assert_eq!(code, 0, "{out}\n{err}");
    };
    run(&[
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "simulated",
        "-p",
        "failed_az=us-west-2a",
        "-p",
        "require_approval=true",
        "--by",
        "alice",
    ]);
    run(&[
        "run",
        "runbooks/shed-load.toml",
        "--env",
        "simulated",
        "--by",
        "alice",
    ]);
    let (head, _, code) = failover(&j, key, &["audit", "head"]);
    assert_eq!(code, 0);
    (j, head.trim().to_string())
}

/// A fresh copy of the journal to tamper with.
fn copy(j: &Path, name: &str) -> PathBuf {
    let to = j.with_file_name(format!("{name}.db"));
    std::fs::copy(j, &to).unwrap();
    to
}

fn sql(j: &Path, statements: &str) {
    let c = Connection::open(j).unwrap();
    c.execute_batch(statements).unwrap();
}

fn count(j: &Path, q: &str) -> i64 {
    Connection::open(j)
        .unwrap()
        .query_row(q, [], |r| r.get(0))
        .unwrap()
}

/// `verify` on a tampered copy: exit 1, the report names what `expect` says.
fn caught(j: &Path, key: Option<&str>, head: Option<&str>, expect: &str) {
    let mut args = vec!["verify"];
    if let Some(h) = head {
        args.extend(["--expect-head", h]);
    }
    let (out, err, code) = failover(j, key, &args);
    assert_eq!(code, 1, "tampering not caught ({expect}):\n{out}{err}");
    assert!(out.contains("TAMPERED"), "{out}");
    assert!(out.contains(expect), "expected `{expect}` in:\n{out}");
}

#[test]
fn every_kind_of_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (j, head) = make_journal(dir.path(), Some(KEY));
    let (out, err, code) = failover(&j, Some(KEY), &["verify", "--expect-head", &head]);
    assert_eq!(code, 0, "the untouched journal verifies:\n{out}{err}");
    assert!(out.contains("chain hmac-sha256"), "{out}");
    assert!(out.contains("every table matches its events"), "{out}");
    let last = count(&j, "SELECT MAX(seq) FROM events");
    let mid = last / 2;
    assert!(last > 50, "a realistic journal ({last} events)");
    let k = Some(KEY);
    let h = Some(head.as_str());

    let t = copy(&j, "edit");
    sql(
        &t,
        &format!("UPDATE events SET data = '{{\"by\":\"mallory\"}}' WHERE seq = {mid}"),
    );
    caught(&t, k, h, &format!("event #{mid}"));

    let t = copy(&j, "delete-middle");
    sql(&t, &format!("DELETE FROM events WHERE seq = {mid}"));
    caught(&t, k, h, &format!("events #{mid}..#{mid} are missing"));

    let t = copy(&j, "reorder");
    sql(&t, &format!(
        "UPDATE events SET data = (SELECT data FROM events WHERE seq = {b}), kind = (SELECT kind FROM events WHERE seq = {b}) WHERE seq = {a};",
        a = mid,
        b = mid + 1
    ));
    caught(&t, k, h, &format!("event #{mid}"));

    let t = copy(&j, "delete-tail");
    sql(&t, &format!("DELETE FROM events WHERE seq = {last}"));
    caught(&t, k, h, "the tail was deleted");

    let t = copy(&j, "delete-last-ten");
    sql(&t, &format!("DELETE FROM events WHERE seq > {}", last - 10));
    caught(&t, k, h, "the tail was deleted");

    let t = copy(&j, "delete-every-event");
    sql(&t, "DELETE FROM events");
    caught(&t, k, h, "the tail was deleted");

    let t = copy(&j, "delete-a-run");
    let first_run: String = Connection::open(&t)
        .unwrap()
        .query_row("SELECT id FROM runs ORDER BY started_at LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    sql(&t, &format!(
        "DELETE FROM events WHERE run_id = '{first_run}'; DELETE FROM steps WHERE run_id = '{first_run}'; DELETE FROM approvals WHERE run_id = '{first_run}'; DELETE FROM runs WHERE id = '{first_run}';"
    ));
    caught(&t, k, h, "are missing: they were deleted");

    let t = copy(&j, "insert-approval");
    sql(&t, &format!("INSERT INTO approvals (run_id, step_id, approver, at) VALUES ('{first_run}', 'approve', 'mallory', 0)"));
    caught(&t, k, h, "approvals row");

    let t = copy(&j, "edit-run");
    sql(&t, &format!("UPDATE runs SET status = 'succeeded', error = NULL WHERE id = '{first_run}'; UPDATE runs SET initiator = 'bob'"));
    caught(&t, k, h, "runs row");

    let t = copy(&j, "edit-step");
    sql(
        &t,
        "UPDATE steps SET status = 'blocked', message = 'edited' WHERE rowid = 3",
    );
    caught(&t, k, h, "steps row");

    let t = copy(&j, "edit-shed");
    assert!(
        count(&t, "SELECT COUNT(*) FROM shed_state") > 0,
        "the shed run left tiers shed"
    );
    sql(
        &t,
        "DELETE FROM shed_state WHERE rowid = (SELECT MIN(rowid) FROM shed_state)",
    );
    caught(&t, k, h, "shed_state row");

    let t = copy(&j, "edit-lease");
    assert!(
        count(&t, "SELECT COUNT(*) FROM leases") > 0,
        "the runs took leases"
    );
    sql(
        &t,
        "UPDATE leases SET token = token + 5, run_id = 'someone-else'",
    );
    caught(&t, k, h, "leases row");

    // Recompute the chain after an edit, as someone who can write the file but has no key.
    let t = copy(&j, "recompute");
    sql(
        &t,
        &format!("UPDATE events SET data = '{{\"by\":\"mallory\"}}' WHERE seq = {mid}"),
    );
    recompute_plain(&t);
    // Without the key every recomputed hash is wrong: the chain breaks at its first event.
    caught(&t, k, None, "event #1: event #1");
}

#[test]
fn an_unkeyed_chain_says_what_it_cannot_catch_and_a_head_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let (j, head) = make_journal(dir.path(), None);
    let (out, _, code) = failover(&j, None, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the chain is not keyed"), "{out}");
    assert!(out.contains("no remembered head was checked"), "{out}");
    // Without a key, an edit with the chain recomputed passes the chain itself ...
    let t = copy(&j, "recompute");
    let mid = count(&t, "SELECT MAX(seq) FROM events") / 2;
    sql(
        &t,
        &format!("UPDATE events SET data = '{{\"by\":\"mallory\"}}' WHERE seq = {mid}"),
    );
    recompute_plain(&t);
    let (out, _, code) = failover(&t, None, &["verify"]);
    assert_eq!(
        code, 0,
        "a recomputed plain chain cannot be told from the chain alone:\n{out}"
    );
    // ... but not the head remembered outside the journal.
    caught(&t, None, Some(&head), "the chain was rewritten");
}

#[test]
fn a_keyed_journal_refuses_a_missing_or_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = make_journal(dir.path(), Some(KEY));
    let (_, err, code) = failover(&j, Some("not-the-key"), &["verify"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("is not the key this journal's chain was made with"),
        "{err}"
    );
    let (_, err, code) = failover(&j, None, &["verify"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("its chain is keyed"), "{err}");
    let (out, _, code) = failover(&j, None, &["runs"]);
    assert_eq!(code, 0, "reading needs no key");
    assert!(out.contains("az-evacuation"), "{out}");
}

#[test]
fn the_export_is_every_event_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let (j, head) = make_journal(dir.path(), Some(KEY));
    let (out, _, code) = failover(&j, Some(KEY), &["audit", "export"]);
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (seq, hash) = head.split_once(':').unwrap();
    assert_eq!(lines.len() as i64, seq.parse::<i64>().unwrap());
    assert_eq!(lines.last().unwrap()["hash"], hash);
    assert!(lines
        .windows(2)
        .all(|w| w[0]["seq"].as_i64().unwrap() + 1 == w[1]["seq"].as_i64().unwrap()));
}

/// An events row: seq, run, step, at, kind, operation, resource, data, intent.
type EventRow = (
    i64,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
);

/// Rewrite every hash as plain SHA-256 (what the unkeyed chain computes), from the start.
fn recompute_plain(j: &Path) {
    let c = Connection::open(j).unwrap();
    let rows: Vec<EventRow> = {
        let mut st = c
            .prepare("SELECT seq, run_id, step_id, at, kind, operation, resource, data, intent_seq FROM events ORDER BY seq")
            .unwrap();
        st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let mut prev = String::new();
    for (seq, run, step, at, kind, op, res, data, intent) in rows {
        let data: serde_json::Value = serde_json::from_str(&data).unwrap();
        let body = serde_json::json!([run, step, at, kind, op, res, data, intent]).to_string();
        let hash: String = Sha256::digest(format!("{prev}\n{body}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        c.execute(
            "UPDATE events SET hash = ?1 WHERE seq = ?2",
            params![hash, seq],
        )
        .unwrap();
        prev = hash;
    }
}
