//! Runs, steps, events, approvals and shed state on the SQLite journal. Every change is one
//! immediate transaction that updates the table and appends its event to the chain together.

use super::group::{self, PendingIntent};
use super::sqlite::{append, event_hash, parse_col, Journal, WriteError};
use crate::status::{RunStatus, StepStatus};
use crate::store::{
    Approval, Event, Fence, InDoubt, MadeChange, Result, RunRecord, StepRecord, StoreError,
};
use crate::types::RunId;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

pub(super) const RUN_COLS: &str = "id, runbook, runbook_path, runbook_sha256, environment, mode, initiator, params, status, started_at, ended_at, error, plan, steps, heartbeat_at, holder";
pub(super) const EVENT_COLS: &str =
    "seq, run_id, step_id, at, kind, operation, resource, data, intent_seq, hash";

pub(super) fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let js = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
    Ok(RunRecord {
        id: r.get(0)?,
        runbook: r.get(1)?,
        runbook_path: r.get(2)?,
        runbook_sha256: r.get(3)?,
        environment: r.get(4)?,
        mode: parse_col(r, 5, "runs.mode")?,
        initiator: r.get(6)?,
        params: js(r.get(7)?),
        status: parse_col(r, 8, "runs.status")?,
        started_at: r.get(9)?,
        ended_at: r.get(10)?,
        error: r.get(11)?,
        plan: js(r.get(12)?),
        steps: js(r.get(13)?),
        heartbeat_at: r.get(14)?,
        holder: r.get(15)?,
    })
}

pub(super) fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let data: String = r.get(7)?;
    Ok(Event {
        seq: r.get(0)?,
        run_id: r.get(1)?,
        step_id: r.get(2)?,
        at: r.get(3)?,
        kind: r.get(4)?,
        operation: r.get(5)?,
        resource: r.get(6)?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        intent_seq: r.get(8)?,
        hash: r.get(9)?,
    })
}

impl Journal {
    pub fn create_run(&self, r: &RunRecord) -> Result<()> {
        self.write(|tx, now, key| {
            tx.execute(
                &format!("INSERT INTO runs ({RUN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"),
                params![
                    r.id, r.runbook, r.runbook_path, r.runbook_sha256, r.environment, r.mode.as_str(), r.initiator,
                    r.params.to_string(), r.status.as_str(), r.started_at, r.ended_at, r.error, r.plan.to_string(),
                    r.steps.to_string(), r.heartbeat_at, r.holder
                ],
            )?;
            append(tx, now, key, &r.id, None, "run_started", None, None, &run_started_data(r), None)?;
            Ok(())
        })
    }

    /// Set a run's status, with an event; `finished`: the run ended now.
    pub fn set_run_status(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        self.write(|tx, now, key| {
            let ended = finished.then_some(now);
            // A run that ended (interrupted, crashed, failed) and goes on again (a resume) is
            // open again: its end is cleared, and the event says so (`reopened`).
            let was_ended: Option<Option<i64>> = tx
                .query_row("SELECT ended_at FROM runs WHERE id = ?1", params![run_id], |r| r.get(0))
                .optional()?;
            let Some(was_ended) = was_ended else {
                return Err(StoreError::UnknownRun(run_id.to_string()).into());
            };
            let reopened = !finished && !status.is_finished() && was_ended.is_some();
            tx.execute(
                "UPDATE runs SET status = ?2, error = ?3, ended_at = CASE WHEN ?5 THEN NULL ELSE COALESCE(?4, ended_at) END WHERE id = ?1",
                params![run_id, status.as_str(), error, ended, reopened],
            )?;
            let kind = if finished { "run_finished" } else { "run_status" };
            let mut data = json!({"status": status, "error": error});
            if reopened {
                data["reopened"] = json!(true);
            }
            append(tx, now, key, run_id, None, kind, None, None, &data, None)?;
            Ok(())
        })
    }

    /// The run's process is alive.
    pub fn heartbeat(&self, run_id: &RunId, holder: &str) -> Result<()> {
        self.write(|tx, now, _| {
            tx.execute(
                "UPDATE runs SET heartbeat_at = ?2, holder = ?3 WHERE id = ?1",
                params![run_id, now, holder],
            )?;
            Ok(())
        })
    }

    pub fn init_step(
        &self,
        run_id: &RunId,
        step_id: &str,
        action: &str,
        status: StepStatus,
    ) -> Result<()> {
        self.write(|tx, now, key| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO steps (run_id, step_id, action, status) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, step_id, action, status.as_str()],
            )?;
            if n > 0 {
                let data = json!({"action": action, "status": status});
                append(tx, now, key, run_id, Some(step_id), "step_declared", None, None, &data, None)?;
            }
            Ok(())
        })
    }

    pub fn step_started(&self, run_id: &RunId, step_id: &str, attempt: u32) -> Result<()> {
        self.write(|tx, now, key| {
            tx.execute(
                "UPDATE steps SET status = ?5, attempts = ?3, started_at = COALESCE(started_at, ?4) WHERE run_id = ?1 AND step_id = ?2",
                params![run_id, step_id, attempt, now, StepStatus::Running.as_str()],
            )?;
            append(tx, now, key, run_id, Some(step_id), "step_started", None, None, &json!({"attempt": attempt}), None)?;
            Ok(())
        })
    }

    pub fn set_step_status(
        &self,
        run_id: &RunId,
        step_id: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        self.write(|tx, now, key| {
            tx.execute(
                "UPDATE steps SET status = ?3, message = COALESCE(?4, message) WHERE run_id = ?1 AND step_id = ?2",
                params![run_id, step_id, status.as_str(), message],
            )?;
            append(tx, now, key, run_id, Some(step_id), "step_status", None, None, &json!({"status": status, "message": message}), None)?;
            Ok(())
        })
    }

    pub fn step_finished(
        &self,
        run_id: &RunId,
        step_id: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        self.write(|tx, now, key| {
            tx.execute(
                "UPDATE steps SET status = ?3, message = ?4, ended_at = ?5 WHERE run_id = ?1 AND step_id = ?2",
                params![run_id, step_id, status.as_str(), message, now],
            )?;
            append(tx, now, key, run_id, Some(step_id), "step_finished", None, None, &json!({"status": status, "message": message}), None)?;
            Ok(())
        })
    }

    /// Write the intent of a mutating call, only if `fence` holds (checked in the same
    /// transaction); returns its sequence number for the outcome. One intent, one transaction,
    /// one fsync: concurrent intents of a multi-thread runtime go through the `Store` port's
    /// [`Journal::intent_grouped`] instead.
    pub fn intent(
        &self,
        run_id: &RunId,
        step_id: &str,
        operation: &str,
        resource: &str,
        call: Value,
        fence: &Fence,
    ) -> Result<i64> {
        self.write_durable(|tx, now, key| {
            write_intent(
                tx, now, key, run_id, step_id, operation, resource, &call, fence,
            )
        })
    }

    /// Write an intent together with the others that come meanwhile (group commit): the
    /// sequence number is returned only once the group's transaction is committed and synced.
    /// The caller's worker thread is free while it waits (`group::submit`).
    pub(super) async fn intent_grouped(&self, intent: PendingIntent) -> Result<i64> {
        let committer = || {
            let j = self.share();
            move |group: Vec<PendingIntent>| j.commit_intents(&group)
        };
        group::submit(&self.intents, intent, committer)
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Backend {
                    location: self.path.display().to_string(),
                    message: "the intent's group commit stopped before it was written".into(),
                })
            })
    }

    /// Write a group of intents in one durable transaction (one fsync), in arrival order; one
    /// answer per intent. Each intent is checked against its own fence before it is appended:
    /// one whose fence fails gets its own `Fenced` and writes nothing (the check only reads),
    /// the others are written. An SQLite error fails the whole transaction: every intent of
    /// the group gets it and none was written. Busy: retried as every write is.
    fn commit_intents(&self, group: &[PendingIntent]) -> Vec<Result<i64>> {
        let written = self.write_durable(|tx, now, key| {
            let mut answers = Vec::with_capacity(group.len());
            for p in group {
                let (run, call) = (&p.run_id, &p.call);
                match write_intent(
                    tx,
                    now,
                    key,
                    run,
                    &p.step_id,
                    &p.operation,
                    &p.resource,
                    call,
                    &p.fence,
                ) {
                    Ok(seq) => answers.push(Ok(seq)),
                    Err(WriteError::Store(e)) => answers.push(Err(e)),
                    Err(e @ WriteError::Sqlite(_)) => return Err(e),
                }
            }
            Ok(answers)
        });
        match written {
            Ok(answers) => answers,
            Err(e) => group.iter().map(|_| Err(copy_err(&e))).collect(),
        }
    }

    pub fn outcome(
        &self,
        run_id: &RunId,
        step_id: &str,
        intent_seq: i64,
        operation: &str,
        resource: &str,
        result: Value,
    ) -> Result<i64> {
        self.write(|tx, now, key| {
            Ok(append(
                tx,
                now,
                key,
                run_id,
                Some(step_id),
                "outcome",
                Some(operation),
                Some(resource),
                &result,
                Some(intent_seq),
            )?)
        })
    }

    pub fn note(
        &self,
        run_id: &RunId,
        step_id: Option<&str>,
        kind: &str,
        data: Value,
    ) -> Result<i64> {
        self.write(|tx, now, key| {
            Ok(append(
                tx, now, key, run_id, step_id, kind, None, None, &data, None,
            )?)
        })
    }

    /// Settle an in-doubt call: its effect was observed (or its grace passed).
    pub fn settle(&self, run_id: &RunId, step_id: &str, intent_seq: i64, how: &str) -> Result<()> {
        self.write(|tx, now, key| {
            append(
                tx,
                now,
                key,
                run_id,
                Some(step_id),
                "settled",
                None,
                None,
                &json!({"how": how}),
                Some(intent_seq),
            )?;
            Ok(())
        })
    }

    pub fn event_count(&self) -> Result<i64> {
        self.read(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
    }

    /// Recompute the hash chain; returns the sequence number of the first broken link.
    pub fn verify_chain(&self) -> Result<Option<i64>> {
        let key = self.hash_key()?;
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {EVENT_COLS} FROM events ORDER BY seq"))?;
            let mut rows = st.query([])?;
            let mut prev = String::new();
            while let Some(r) = rows.next()? {
                let e = event_from_row(r)?;
                if recomputed(key, &prev, &e) != e.hash {
                    return Ok(Some(e.seq));
                }
                prev = e.hash;
            }
            Ok(None)
        })
    }

    /// Approve a gate as `by`; approving twice is recorded once and says who approved and when.
    pub fn approve(&self, run_id: &RunId, step_id: &str, by: &str) -> Result<Approval> {
        self.write_durable(|tx, now, key| {
            let mut st = tx.prepare("SELECT data, at FROM events WHERE run_id = ?1 AND step_id = ?2 AND kind = 'approved' ORDER BY seq")?;
            let prior: Vec<(String, i64)> = st
                .query_map(params![run_id, step_id], |r| {
                    let d: String = r.get(0)?;
                    let by = serde_json::from_str::<Value>(&d).ok().and_then(|v| v.get("by").and_then(|b| b.as_str()).map(String::from)).unwrap_or_default();
                    Ok((by, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            if let Some((b, at)) = prior.iter().find(|(b, _)| b == by) {
                return Ok(Approval::Already { by: b.clone(), at: *at });
            }
            tx.execute(
                "INSERT OR IGNORE INTO approvals (run_id, step_id, approver, at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, step_id, by, now],
            )?;
            append(tx, now, key, run_id, Some(step_id), "approved", None, None, &json!({"by": by}), None)?;
            Ok(Approval::Recorded { count: prior.len() + 1 })
        })
    }

    /// Who approved a gate: the `approved` events of the chain whose hash is right for the
    /// event before them. A row written into the approvals table, or an event inserted by hand
    /// without the chain, releases nothing.
    pub fn approvals(&self, run_id: &RunId, step_id: &str) -> Result<Vec<String>> {
        let key = self.hash_key()?;
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {EVENT_COLS} FROM events WHERE run_id = ?1 AND step_id = ?2 AND kind = 'approved' ORDER BY seq"))?;
            let evs: Vec<Event> = st.query_map(params![run_id, step_id], event_from_row)?.collect::<rusqlite::Result<_>>()?;
            let mut out = vec![];
            for e in evs {
                let prev: String = c
                    .query_row("SELECT hash FROM events WHERE seq < ?1 ORDER BY seq DESC LIMIT 1", params![e.seq], |r| r.get(0))
                    .optional()?
                    .unwrap_or_default();
                if recomputed(key, &prev, &e) == e.hash {
                    if let Some(by) = e.data.get("by").and_then(|b| b.as_str()) {
                        out.push(by.to_string());
                    }
                }
            }
            Ok(out)
        })
    }

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1"
            ))?;
            let rows = st.query_map(params![limit as i64], run_from_row)?;
            rows.collect()
        })
    }

    /// A run by its exact id.
    pub fn run_exact(&self, id: &RunId) -> Result<RunRecord> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
                params![id],
                run_from_row,
            )
            .optional()
        })?
        .ok_or_else(|| StoreError::UnknownRun(id.to_string()))
    }

    /// A run by id or by a unique prefix of its id. A `&str`, not a [`RunId`]: it is what a
    /// person typed (`failover show 2026112`), which may be only the start of an id.
    pub fn run(&self, id: &str) -> Result<RunRecord> {
        let rows: Vec<RunRecord> = self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 2"))?;
            let rows = st.query_map(params![id], run_from_row)?;
            rows.collect()
        })?;
        if let Some(r) = rows.iter().find(|r| r.id.as_str() == id) {
            return Ok(r.clone());
        }
        match rows.len() {
            0 => Err(StoreError::UnknownRun(id.to_string())),
            1 if !id.is_empty() => Ok(rows.into_iter().next().expect("one row")),
            _ => Err(StoreError::Refused(format!(
                "`{id}` matches several runs; give more of the id"
            ))),
        }
    }

    pub fn steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>> {
        self.read(|c| {
            let mut st = c.prepare("SELECT step_id, action, status, attempts, started_at, ended_at, message FROM steps WHERE run_id = ?1 ORDER BY rowid")?;
            let rows = st.query_map(params![run_id], |r| {
                Ok(StepRecord {
                    step_id: r.get(0)?,
                    action: r.get(1)?,
                    status: parse_col(r, 2, "steps.status")?,
                    attempts: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    message: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn events(&self, run_id: &RunId) -> Result<Vec<Event>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events WHERE run_id = ?1 ORDER BY seq"
            ))?;
            let rows = st.query_map(params![run_id], event_from_row)?;
            rows.collect()
        })
    }

    /// Intents that have no outcome: calls that may or may not have happened.
    pub fn open_intents(&self, run_id: &RunId) -> Result<Vec<Event>> {
        let evs = self.events(run_id)?;
        let answered: Vec<i64> = evs
            .iter()
            .filter(|e| e.kind == "outcome")
            .filter_map(|e| e.intent_seq)
            .collect();
        Ok(evs
            .into_iter()
            .filter(|e| e.kind == "intent" && !answered.contains(&e.seq))
            .collect())
    }

    /// Calls of any run since `since_ms` whose effect is unconfirmed: no outcome, or a failure
    /// that does not prove the call was not processed; and not settled since.
    pub fn in_doubt(&self, since_ms: i64) -> Result<Vec<InDoubt>> {
        self.read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {EVENT_COLS} FROM events i WHERE i.kind = 'intent' AND i.at >= ?1
                 AND NOT EXISTS (SELECT 1 FROM events s WHERE s.intent_seq = i.seq AND s.kind = 'settled')
                 ORDER BY i.seq"
            ))?;
            let intents: Vec<Event> = st.query_map(params![since_ms], event_from_row)?.collect::<rusqlite::Result<_>>()?;
            let mut out = vec![];
            for i in intents {
                let outcome: Option<String> = c
                    .query_row("SELECT data FROM events WHERE intent_seq = ?1 AND kind = 'outcome' ORDER BY seq LIMIT 1", params![i.seq], |r| r.get(0))
                    .optional()?;
                let why = match outcome.map(|d| serde_json::from_str::<Value>(&d).unwrap_or(Value::Null)) {
                    None => "no outcome was recorded".to_string(),
                    Some(o) if o.get("ok").and_then(|v| v.as_bool()) == Some(true) => continue,
                    Some(o) => {
                        let kind = o.get("kind").cloned().and_then(|k| serde_json::from_value::<crate::cloud::ErrorKind>(k).ok());
                        if kind.is_some_and(crate::cloud::ErrorKind::proves_not_processed) {
                            continue;
                        }
                        format!("it failed in a way that may have been processed: {}", o.get("error").and_then(|e| e.as_str()).unwrap_or("?"))
                    }
                };
                out.push(InDoubt {
                    run_id: i.run_id,
                    step_id: i.step_id,
                    seq: i.seq,
                    at: i.at,
                    operation: i.operation.unwrap_or_default(),
                    resource: i.resource.unwrap_or_default(),
                    call: i.data,
                    why,
                });
            }
            Ok(out)
        })
    }

    /// Route 53 changes made by any run since `since_ms` (from their outcomes).
    pub fn changes_since(&self, since_ms: i64) -> Result<Vec<MadeChange>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT o.run_id, o.at, o.data, i.data FROM events o JOIN events i ON i.seq = o.intent_seq
                 WHERE o.kind = 'outcome' AND o.operation = 'ChangeResourceRecordSets' AND o.at >= ?1 ORDER BY o.seq",
            )?;
            let rows = st.query_map(params![since_ms], |r| {
                let out: String = r.get(2)?;
                let intent: String = r.get(3)?;
                Ok((r.get::<_, RunId>(0)?, r.get::<_, i64>(1)?, out, intent))
            })?;
            let mut made = vec![];
            for row in rows {
                let (run_id, at, out, intent) = row?;
                let out: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                let intent: Value = serde_json::from_str(&intent).unwrap_or(Value::Null);
                let change = out.pointer("/result/change_id").and_then(|v| v.as_str());
                let zone = intent.get("hosted_zone_id").and_then(|v| v.as_str());
                if let (Some(change), Some(zone)) = (change, zone) {
                    made.push(MadeChange { run_id, at, hosted_zone_id: zone.into(), change_id: change.into() });
                }
            }
            Ok(made)
        })
    }

    /// Tiers currently shed on an environment: (tier, since ms, run id).
    pub fn shed_tiers(&self, environment: &str) -> Result<Vec<(String, i64, RunId)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT tier, since, run_id FROM shed_state WHERE environment = ?1 ORDER BY since",
            )?;
            let rows = st.query_map(params![environment], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            rows.collect()
        })
    }

    /// Record that a tier is shed (by `run_id`) or restored, with an event in that run.
    pub fn set_shed(
        &self,
        environment: &str,
        tier: &str,
        run_id: &RunId,
        step_id: &str,
        shed: bool,
    ) -> Result<()> {
        self.write(|tx, now, key| {
            if shed {
                tx.execute(
                    "INSERT OR IGNORE INTO shed_state (environment, tier, since, run_id) VALUES (?1, ?2, ?3, ?4)",
                    params![environment, tier, now, run_id],
                )?;
            } else {
                tx.execute("DELETE FROM shed_state WHERE environment = ?1 AND tier = ?2", params![environment, tier])?;
            }
            let kind = if shed { "tier_shed" } else { "tier_restored" };
            append(tx, now, key, run_id, Some(step_id), kind, None, None, &json!({"tier": tier, "environment": environment}), None)?;
            Ok(())
        })
    }
}

/// What a `run_started` event says about the run: every column of its row (the plan and the
/// steps by their SHA-256), so `verify` can rebuild the row from the chain.
pub(super) fn run_started_data(r: &RunRecord) -> Value {
    json!({
        "runbook": r.runbook,
        "runbook_path": r.runbook_path,
        "runbook_sha256": r.runbook_sha256,
        "environment": r.environment,
        "mode": r.mode,
        "initiator": r.initiator,
        "params": r.params,
        "status": r.status,
        "started_at": r.started_at,
        "plan_sha256": super::sqlite::sha256_hex(r.plan.to_string().as_bytes()),
        "steps_sha256": super::sqlite::sha256_hex(r.steps.to_string().as_bytes()),
    })
}

/// The hash an event should have after `prev`.
pub(super) fn recomputed(key: Option<&[u8]>, prev: &str, e: &Event) -> String {
    event_hash(
        key,
        prev,
        &e.run_id,
        e.step_id.as_deref(),
        e.at,
        &e.kind,
        e.operation.as_deref(),
        e.resource.as_deref(),
        &e.data,
        e.intent_seq,
    )
}

/// An intent, if its fence holds: the fence is checked first (it only reads), then the event
/// is appended to the chain.
#[allow(clippy::too_many_arguments)]
fn write_intent(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    key: Option<&[u8]>,
    run_id: &RunId,
    step_id: &str,
    operation: &str,
    resource: &str,
    call: &Value,
    fence: &Fence,
) -> std::result::Result<i64, WriteError> {
    super::leases::check_fence(tx, now, run_id, fence)?;
    Ok(append(
        tx,
        now,
        key,
        run_id,
        Some(step_id),
        "intent",
        Some(operation),
        Some(resource),
        call,
        None,
    )?)
}

/// The error of a group's failed transaction, once for each of its intents.
fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Backend { location, message } => StoreError::Backend {
            location: location.clone(),
            message: message.clone(),
        },
        StoreError::Refused(m) => StoreError::Refused(m.clone()),
        StoreError::Fenced(m) => StoreError::Fenced(m.clone()),
        other => StoreError::Backend {
            location: String::new(),
            message: other.to_string(),
        },
    }
}
