//! Checking a journal: the chain (each event's hash follows from the one before; keyed with
//! HMAC when the journal was made with a key), the heads remembered outside the file (so a
//! deleted tail is caught), and every table (runs, steps, approvals, shed state, leases)
//! rebuilt from the events that mirror it and compared row by row. The first problem names
//! its event and what is wrong with it.

use super::records::{event_from_row, recomputed, run_from_row, EVENT_COLS, RUN_COLS};
use super::sqlite::{sha256_hex, Journal};
use crate::store::{Event, Head, Problem, Result, RunRecord, VerifyReport};
use rusqlite::params;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A step row as its events say it should be.
#[derive(Clone, Debug, Default, PartialEq)]
struct StepRow {
    action: String,
    status: String,
    attempts: i64,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    message: Option<String>,
}

/// A lease row as its events say it should be (renewals are not events; they are not checked).
#[derive(Clone, Debug, Default, PartialEq)]
struct LeaseRow {
    run_id: Option<String>,
    token: i64,
    holder: String,
}

/// The tables as the events say they should be, and the event that last set each row.
#[derive(Default)]
struct Replay {
    runs: BTreeMap<String, (Value, i64)>,
    steps: BTreeMap<(String, String), (StepRow, i64)>,
    approvals: BTreeMap<(String, String, String), i64>,
    shed: BTreeMap<(String, String), (String, i64, i64)>,
    leases: BTreeMap<String, (LeaseRow, i64)>,
}

impl Journal {
    /// The last event of the chain.
    pub fn head(&self) -> Result<Option<Head>> {
        self.read(|c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(Head {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Events from sequence number `since` on, at most `limit`.
    pub fn events_since(&self, since: i64, limit: usize) -> Result<Vec<Event>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let rows = st.query_map(params![since, limit as i64], event_from_row)?;
            rows.collect()
        })
    }

    /// The whole check (see the module's documentation). Every table and the events are read
    /// in one read transaction: one consistent snapshot, whatever other processes write
    /// meanwhile.
    pub fn verify(&self, heads: &[Head]) -> Result<VerifyReport> {
        let key = self.hash_key()?;
        let tables_checked = self.format()? >= super::sqlite::FORMAT;
        let snap = self.read(|c| {
            c.execute_batch("BEGIN DEFERRED")?;
            let snap = read_snapshot(c);
            let end = c.execute_batch("COMMIT");
            let snap = snap?;
            end?;
            Ok(snap)
        })?;
        let events = &snap.events;
        let mut problems = chain_problems(key, events);
        problems.extend(head_problems(events, heads));
        if tables_checked {
            let mut replay = Replay::default();
            for e in events {
                replay.apply(e);
            }
            problems.extend(run_problems(&snap.runs, &replay));
            problems.extend(step_problems(&snap.steps, &replay));
            problems.extend(approval_problems(&snap.approvals, &replay));
            problems.extend(shed_problems(&snap.shed, &replay));
            problems.extend(lease_problems(&snap.leases, &replay));
        }
        Ok(VerifyReport {
            events: events.len() as i64,
            chain: self.chain_kind().as_str().into(),
            head: events.last().map(|e| Head {
                seq: e.seq,
                hash: e.hash.clone(),
            }),
            tables_checked,
            problems,
        })
    }
}

/// A shed_state row: (environment, tier) -> (run, since).
type ShedRow = ((String, String), (String, i64));

/// Everything `verify` compares, read at one point in time.
struct Snapshot {
    events: Vec<Event>,
    runs: Vec<RunRecord>,
    steps: Vec<((String, String), StepRow)>,
    approvals: Vec<(String, String, String)>,
    shed: Vec<ShedRow>,
    leases: Vec<(String, LeaseRow)>,
}

fn read_snapshot(c: &rusqlite::Connection) -> rusqlite::Result<Snapshot> {
    let events = {
        let mut st = c.prepare(&format!("SELECT {EVENT_COLS} FROM events ORDER BY seq"))?;
        let rows = st.query_map([], event_from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let runs = {
        let mut st = c.prepare(&format!("SELECT {RUN_COLS} FROM runs ORDER BY id"))?;
        let rows = st.query_map([], run_from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let steps = {
        let mut st = c.prepare("SELECT run_id, step_id, action, status, attempts, started_at, ended_at, message FROM steps ORDER BY run_id, step_id")?;
        let rows = st.query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                StepRow {
                    action: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    started_at: r.get(5)?,
                    ended_at: r.get(6)?,
                    message: r.get(7)?,
                },
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let approvals = {
        let mut st = c.prepare("SELECT run_id, step_id, approver FROM approvals")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let shed = {
        let mut st = c.prepare("SELECT environment, tier, run_id, since FROM shed_state")?;
        let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let leases = {
        let mut st = c.prepare("SELECT key, run_id, token, holder FROM leases")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get(0)?,
                LeaseRow {
                    run_id: r.get(1)?,
                    token: r.get(2)?,
                    holder: r.get(3)?,
                },
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(Snapshot {
        events,
        runs,
        steps,
        approvals,
        shed,
        leases,
    })
}

fn run_problems(rows: &[RunRecord], replay: &Replay) -> Vec<Problem> {
    let mut out = vec![];
    let mut seen = BTreeSet::new();
    for r in rows {
        seen.insert(r.id.to_string());
        let Some((want, seq)) = replay.runs.get(r.id.as_str()) else {
            out.push(problem(
                None,
                format!(
                    "runs row `{}` has no run_started event: it was written into the table by hand",
                    r.id
                ),
            ));
            continue;
        };
        let have = run_view(r);
        for (field, w) in want.as_object().into_iter().flatten() {
            let h = have.get(field).unwrap_or(&Value::Null);
            if h != w {
                out.push(problem(
                    Some(*seq),
                    format!(
                        "runs row `{}`: `{field}` is {h} but its events say {w}",
                        r.id
                    ),
                ));
            }
        }
    }
    for (id, (_, seq)) in &replay.runs {
        if !seen.contains(id) {
            out.push(problem(
                Some(*seq),
                format!("run `{id}` is in the events but its runs row is gone"),
            ));
        }
    }
    out
}

fn step_problems(rows: &[((String, String), StepRow)], replay: &Replay) -> Vec<Problem> {
    compare_rows("steps", rows, &replay.steps, |(r, s)| format!("{r}/{s}"))
}

fn approval_problems(rows: &[(String, String, String)], replay: &Replay) -> Vec<Problem> {
    let have: BTreeMap<_, ()> = rows.iter().cloned().map(|k| (k, ())).collect();
    let want: BTreeMap<_, ((), i64)> = replay
        .approvals
        .iter()
        .map(|(k, s)| (k.clone(), ((), *s)))
        .collect();
    compare_rows(
        "approvals",
        &have.into_iter().collect::<Vec<_>>(),
        &want,
        |(r, s, a)| format!("{r}/{s} by {a}"),
    )
}

fn shed_problems(rows: &[ShedRow], replay: &Replay) -> Vec<Problem> {
    let want: BTreeMap<_, _> = replay
        .shed
        .iter()
        .map(|(k, (run, since, seq))| (k.clone(), ((run.clone(), *since), *seq)))
        .collect();
    compare_rows("shed_state", rows, &want, |(e, t)| format!("{e}/{t}"))
}

fn lease_problems(rows: &[(String, LeaseRow)], replay: &Replay) -> Vec<Problem> {
    compare_rows("leases", rows, &replay.leases, |k| k.clone())
}

/// Rows of `table` compared with what the events say: a row that differs, a row no event
/// made, a row the events made that is gone.
fn compare_rows<K: Ord + Clone, V: PartialEq + std::fmt::Debug>(
    table: &str,
    have: &[(K, V)],
    want: &BTreeMap<K, (V, i64)>,
    name: impl Fn(&K) -> String,
) -> Vec<Problem> {
    let mut out = vec![];
    let have_map: BTreeMap<&K, &V> = have.iter().map(|(k, v)| (k, v)).collect();
    for (k, v) in have {
        match want.get(k) {
            None => out.push(problem(
                None,
                format!(
                    "{table} row `{}` was made by no event: it was written into the table by hand",
                    name(k)
                ),
            )),
            Some((w, seq)) if w != v => out.push(problem(
                Some(*seq),
                format!(
                    "{table} row `{}` is {v:?} but its events say {w:?}",
                    name(k)
                ),
            )),
            Some(_) => {}
        }
    }
    for (k, (_, seq)) in want {
        if !have_map.contains_key(k) {
            out.push(problem(
                Some(*seq),
                format!(
                    "{table} row `{}` made by the events is gone from the table",
                    name(k)
                ),
            ));
        }
    }
    out
}

fn problem(seq: Option<i64>, what: String) -> Problem {
    Problem { seq, what }
}

/// Every event's hash must follow from the one before it, and the numbers must not jump.
fn chain_problems(key: Option<&[u8]>, events: &[Event]) -> Vec<Problem> {
    let mut prev = String::new();
    let mut last_seq = 0;
    for e in events {
        if e.seq != last_seq + 1 {
            return vec![problem(
                Some(e.seq),
                format!(
                    "events #{}..#{} are missing: they were deleted",
                    last_seq + 1,
                    e.seq - 1
                ),
            )];
        }
        if recomputed(key, &prev, e) != e.hash {
            return vec![problem(Some(e.seq), format!("event #{} ({} of run {}) does not follow from the event before it: it, or the one before it, was changed after it was written", e.seq, e.kind, e.run_id))];
        }
        prev = e.hash.clone();
        last_seq = e.seq;
    }
    vec![]
}

/// A head remembered outside the journal must still be in it, with the same hash.
fn head_problems(events: &[Event], heads: &[Head]) -> Vec<Problem> {
    let last = events.last().map_or(0, |e| e.seq);
    heads
        .iter()
        .filter_map(|h| match events.iter().find(|e| e.seq == h.seq) {
            None if h.seq > last => Some(problem(Some(h.seq), format!("the journal ends at event #{last}, but event #{} was remembered (head {h}): the tail was deleted", h.seq))),
            None => Some(problem(Some(h.seq), format!("event #{} of the remembered head {h} is gone", h.seq))),
            Some(e) if e.hash != h.hash => Some(problem(Some(h.seq), format!("event #{} has hash {}, the remembered head says {}: the chain was rewritten", h.seq, e.hash, h.hash))),
            Some(_) => None,
        })
        .collect()
}

/// The columns of a runs row that its events determine.
fn run_view(r: &RunRecord) -> Value {
    serde_json::json!({
        "runbook": r.runbook,
        "runbook_path": r.runbook_path,
        "runbook_sha256": r.runbook_sha256,
        "environment": r.environment,
        "mode": r.mode,
        "initiator": r.initiator,
        "params": r.params,
        "status": r.status,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "error": r.error,
        "plan_sha256": sha256_hex(r.plan.to_string().as_bytes()),
        "steps_sha256": sha256_hex(r.steps.to_string().as_bytes()),
    })
}

impl Replay {
    /// Apply one event the way the write that appended it changed the tables.
    fn apply(&mut self, e: &Event) {
        let run = e.run_id.to_string();
        let step = e.step_id.clone().unwrap_or_default();
        let d = &e.data;
        let s = |k: &str| d.get(k).and_then(|v| v.as_str()).map(String::from);
        match e.kind.as_str() {
            "run_started" => {
                let mut v = d.clone();
                v["ended_at"] = Value::Null;
                v["error"] = Value::Null;
                self.runs.insert(run, (v, e.seq));
            }
            "run_status" | "run_finished" => {
                if let Some((v, seq)) = self.runs.get_mut(&run) {
                    v["status"] = d.get("status").cloned().unwrap_or(Value::Null);
                    v["error"] = d.get("error").cloned().unwrap_or(Value::Null);
                    if e.kind == "run_finished" {
                        v["ended_at"] = Value::from(e.at);
                    } else if d.get("reopened").and_then(|r| r.as_bool()) == Some(true) {
                        v["ended_at"] = Value::Null;
                    }
                    *seq = e.seq;
                }
            }
            "step_declared" => {
                let row = StepRow {
                    action: s("action").unwrap_or_default(),
                    status: s("status").unwrap_or_default(),
                    ..Default::default()
                };
                self.steps.entry((run, step)).or_insert((row, e.seq));
            }
            "step_started" | "step_status" | "step_finished" => self.apply_step(e, run, step),
            "approved" => {
                self.approvals
                    .entry((run, step, s("by").unwrap_or_default()))
                    .or_insert(e.seq);
            }
            "tier_shed" | "tier_restored" => {
                let k = (
                    s("environment").unwrap_or_default(),
                    s("tier").unwrap_or_default(),
                );
                if e.kind == "tier_restored" {
                    self.shed.remove(&k);
                } else {
                    self.shed.entry(k).or_insert((run, e.at, e.seq));
                }
            }
            "leases_acquired" | "leases_taken_over" => {
                let holder = s("holder").unwrap_or_default();
                for t in d
                    .get("tokens")
                    .and_then(|t| t.as_array())
                    .into_iter()
                    .flatten()
                {
                    let (Some(key), Some(token)) = (
                        t.get(0).and_then(|k| k.as_str()),
                        t.get(1).and_then(|k| k.as_i64()),
                    ) else {
                        continue;
                    };
                    let row = LeaseRow {
                        run_id: Some(run.clone()),
                        token,
                        holder: holder.clone(),
                    };
                    self.leases.insert(key.to_string(), (row, e.seq));
                }
            }
            "leases_released" => {
                for (row, seq) in self.leases.values_mut() {
                    if row.run_id.as_deref() == Some(run.as_str()) {
                        row.run_id = None;
                        *seq = e.seq;
                    }
                }
            }
            _ => {}
        }
    }

    fn apply_step(&mut self, e: &Event, run: String, step: String) {
        let Some((row, seq)) = self.steps.get_mut(&(run, step)) else {
            return;
        };
        let d = &e.data;
        let msg = d.get("message").and_then(|m| m.as_str()).map(String::from);
        match e.kind.as_str() {
            "step_started" => {
                row.status = "running".into();
                row.attempts = d
                    .get("attempt")
                    .and_then(|a| a.as_i64())
                    .unwrap_or(row.attempts);
                row.started_at = row.started_at.or(Some(e.at));
            }
            "step_status" => {
                row.status = d
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .into();
                row.message = msg.or(row.message.take());
            }
            _ => {
                row.status = d
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .into();
                row.message = msg;
                row.ended_at = Some(e.at);
            }
        }
        *seq = e.seq;
    }
}
