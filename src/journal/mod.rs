//! The durable run log: an embedded SQLite file.
//!
//! Every run, step transition, intent (written *before* each mutating call) and outcome
//! (after it) is appended. An intent without an outcome marks a call that may or may not have
//! reached AWS: a resumed run observes the world again before deciding, so it is not repeated
//! blindly. Events carry a SHA-256 chain (`hash` = H(prev_hash, event)) so tampering with the
//! history is detectable.
//!
//! Writes are small and synchronous (WAL, `synchronous=FULL`): an event is on disk before the
//! call it announces is made.

use crate::status::{RunMode, RunStatus, StepStatus, UnknownValue};
use crate::types::RunId;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create the journal directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    /// A column holds a value this version does not know (a newer version wrote it, or the
    /// file was edited).
    #[error("journal {path}: column `{column}` holds `{value}`, which is not a known value")]
    UnknownValue {
        path: String,
        column: &'static str,
        value: String,
    },
    #[error("run `{0}` is not in the journal")]
    UnknownRun(String),
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, JournalError>;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub runbook: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub environment: String,
    pub mode: RunMode,
    pub initiator: String,
    pub params: serde_json::Value,
    pub status: RunStatus,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub error: Option<String>,
    /// The plan computed at the start of the run.
    pub plan: serde_json::Value,
    /// The bound steps, so a later `resume` can continue without re-reading the runbook.
    pub steps: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step_id: String,
    pub action: String,
    pub status: StepStatus,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub run_id: RunId,
    pub step_id: Option<String>,
    pub at: i64,
    /// run_started, step_started, intent, outcome, note, approval_requested, approved,
    /// step_finished, run_finished.
    pub kind: String,
    pub operation: Option<String>,
    pub resource: Option<String>,
    pub data: serde_json::Value,
    /// For an outcome: the intent it answers.
    pub intent_seq: Option<i64>,
    pub hash: String,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    runbook_path TEXT NOT NULL,
    runbook_sha256 TEXT NOT NULL,
    environment TEXT NOT NULL,
    mode TEXT NOT NULL,
    initiator TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    error TEXT,
    plan TEXT NOT NULL,
    steps TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    ended_at INTEGER,
    message TEXT,
    PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    operation TEXT,
    resource TEXT,
    data TEXT NOT NULL,
    intent_seq INTEGER,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, seq);
CREATE TABLE IF NOT EXISTS shed_state (
    environment TEXT NOT NULL,
    tier TEXT NOT NULL,
    since INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (environment, tier)
);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL REFERENCES runs(id),
    step_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step_id, approver)
);
"#;

impl Journal {
    /// The default location: `$FAILOVER_JOURNAL`, else `$XDG_STATE_HOME/failover/journal.db`,
    /// else `~/.local/state/failover/journal.db`.
    pub fn default_path() -> PathBuf {
        if let Ok(p) = std::env::var("FAILOVER_JOURNAL") {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from(".failover"));
        base.join("failover").join("journal.db")
    }

    pub fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|source| JournalError::Dir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let p = path.display().to_string();
        let err = |source| JournalError::Sqlite {
            path: p.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Journal {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> JournalError {
        if let rusqlite::Error::FromSqlConversionFailure(_, _, e) = &source {
            if let Some(b) = e.downcast_ref::<BadColumn>() {
                return JournalError::UnknownValue {
                    path: self.path.display().to_string(),
                    column: b.column,
                    value: b.value.clone(),
                };
            }
        }
        JournalError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub fn create_run(&self, r: &RunRecord) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "INSERT INTO runs (id, runbook, runbook_path, runbook_sha256, environment, mode, initiator, params, status, started_at, ended_at, error, plan, steps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                r.id, r.runbook, r.runbook_path, r.runbook_sha256, r.environment, r.mode.as_str(), r.initiator,
                r.params.to_string(), r.status.as_str(), r.started_at, r.ended_at, r.error, r.plan.to_string(), r.steps.to_string()
            ],
        )
        .map_err(|e| self.err(e))?;
        drop(conn);
        self.append(
            &r.id,
            None,
            "run_started",
            None,
            None,
            serde_json::json!({"mode": r.mode, "initiator": r.initiator, "params": r.params}),
            None,
        )?;
        Ok(())
    }

    pub fn set_run_status(
        &self,
        run_id: &RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let ended = if finished { Some(now_ms()) } else { None };
        conn.execute(
            "UPDATE runs SET status = ?2, error = ?3, ended_at = COALESCE(?4, ended_at) WHERE id = ?1",
            params![run_id, status.as_str(), error, ended],
        )
        .map_err(|e| self.err(e))?;
        drop(conn);
        if finished {
            self.append(
                run_id,
                None,
                "run_finished",
                None,
                None,
                serde_json::json!({"status": status, "error": error}),
                None,
            )?;
        }
        Ok(())
    }

    pub fn init_step(
        &self,
        run_id: &RunId,
        step_id: &str,
        action: &str,
        status: StepStatus,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "INSERT OR IGNORE INTO steps (run_id, step_id, action, status) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, step_id, action, status.as_str()],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn step_started(&self, run_id: &RunId, step_id: &str, attempt: u32) -> Result<()> {
        {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            conn.execute(
                "UPDATE steps SET status = ?5, attempts = ?3, started_at = COALESCE(started_at, ?4) WHERE run_id = ?1 AND step_id = ?2",
                params![run_id, step_id, attempt, now_ms(), StepStatus::Running.as_str()],
            )
            .map_err(|e| self.err(e))?;
        }
        self.append(
            run_id,
            Some(step_id),
            "step_started",
            None,
            None,
            serde_json::json!({"attempt": attempt}),
            None,
        )?;
        Ok(())
    }

    pub fn set_step_status(
        &self,
        run_id: &RunId,
        step_id: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute(
            "UPDATE steps SET status = ?3, message = COALESCE(?4, message) WHERE run_id = ?1 AND step_id = ?2",
            params![run_id, step_id, status.as_str(), message],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn step_finished(
        &self,
        run_id: &RunId,
        step_id: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            conn.execute(
                "UPDATE steps SET status = ?3, message = ?4, ended_at = ?5 WHERE run_id = ?1 AND step_id = ?2",
                params![run_id, step_id, status.as_str(), message, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        }
        self.append(
            run_id,
            Some(step_id),
            "step_finished",
            None,
            None,
            serde_json::json!({"status": status, "message": message}),
            None,
        )?;
        Ok(())
    }

    /// Write the intent of a mutating call; returns its sequence number for the outcome.
    pub fn intent(
        &self,
        run_id: &RunId,
        step_id: &str,
        operation: &str,
        resource: &str,
        call: serde_json::Value,
    ) -> Result<i64> {
        self.append(
            run_id,
            Some(step_id),
            "intent",
            Some(operation),
            Some(resource),
            call,
            None,
        )
    }

    pub fn outcome(
        &self,
        run_id: &RunId,
        step_id: &str,
        intent_seq: i64,
        operation: &str,
        resource: &str,
        result: serde_json::Value,
    ) -> Result<i64> {
        self.append(
            run_id,
            Some(step_id),
            "outcome",
            Some(operation),
            Some(resource),
            result,
            Some(intent_seq),
        )
    }

    pub fn note(
        &self,
        run_id: &RunId,
        step_id: Option<&str>,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<i64> {
        self.append(run_id, step_id, kind, None, None, data, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        run_id: &RunId,
        step_id: Option<&str>,
        kind: &str,
        operation: Option<&str>,
        resource: Option<&str>,
        data: serde_json::Value,
        intent_seq: Option<i64>,
    ) -> Result<i64> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let prev: String = tx
            .query_row(
                "SELECT hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .unwrap_or_default();
        let at = now_ms();
        let body =
            serde_json::json!([run_id, step_id, at, kind, operation, resource, data, intent_seq])
                .to_string();
        let hash = hex(&Sha256::digest(format!("{prev}\n{body}").as_bytes()));
        tx.execute(
            "INSERT INTO events (run_id, step_id, at, kind, operation, resource, data, intent_seq, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![run_id, step_id, at, kind, operation, resource, data.to_string(), intent_seq, hash],
        )
        .map_err(|e| self.err(e))?;
        let seq = tx.last_insert_rowid();
        tx.commit().map_err(|e| self.err(e))?;
        Ok(seq)
    }

    pub fn event_count(&self) -> Result<i64> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Recompute the hash chain; returns the sequence number of the first broken link.
    pub fn verify_chain(&self) -> Result<Option<i64>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare("SELECT seq, run_id, step_id, at, kind, operation, resource, data, intent_seq, hash FROM events ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut prev = String::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let seq: i64 = r.get(0).map_err(|e| self.err(e))?;
            let data: String = r.get(7).map_err(|e| self.err(e))?;
            let data: serde_json::Value =
                serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
            let body = serde_json::json!([
                r.get::<_, String>(1).map_err(|e| self.err(e))?,
                r.get::<_, Option<String>>(2).map_err(|e| self.err(e))?,
                r.get::<_, i64>(3).map_err(|e| self.err(e))?,
                r.get::<_, String>(4).map_err(|e| self.err(e))?,
                r.get::<_, Option<String>>(5).map_err(|e| self.err(e))?,
                r.get::<_, Option<String>>(6).map_err(|e| self.err(e))?,
                data,
                r.get::<_, Option<i64>>(8).map_err(|e| self.err(e))?
            ])
            .to_string();
            let hash: String = r.get(9).map_err(|e| self.err(e))?;
            let expect = hex(&Sha256::digest(format!("{prev}\n{body}").as_bytes()));
            if expect != hash {
                return Ok(Some(seq));
            }
            prev = hash;
        }
        Ok(None)
    }

    /// Record an approval; approving twice is recorded once.
    pub fn approve(&self, run_id: &RunId, step_id: &str, approver: &str) -> Result<()> {
        let inserted = {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            conn.execute(
                "INSERT OR IGNORE INTO approvals (run_id, step_id, approver, at) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, step_id, approver, now_ms()],
            )
            .map_err(|e| self.err(e))?
        };
        if inserted == 0 {
            return Ok(());
        }
        self.append(
            run_id,
            Some(step_id),
            "approved",
            None,
            None,
            serde_json::json!({"by": approver}),
            None,
        )?;
        Ok(())
    }

    pub fn approvals(&self, run_id: &RunId, step_id: &str) -> Result<Vec<String>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare(
                "SELECT approver FROM approvals WHERE run_id = ?1 AND step_id = ?2 ORDER BY at",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run_id, step_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<String>, _>>()
            .map_err(|e| self.err(e))
    }

    fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
        let js = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
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
        })
    }

    const RUN_COLS: &'static str = "id, runbook, runbook_path, runbook_sha256, environment, mode, initiator, params, status, started_at, ended_at, error, plan, steps";

    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare(&format!(
                "SELECT {} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1",
                Self::RUN_COLS
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![limit as i64], Self::run_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// A run by id or by a unique prefix of its id. A `&str`, not a [`RunId`]: it is what a
    /// person typed (`failover show 2026112`), which may be only the start of an id.
    pub fn run(&self, id: &str) -> Result<RunRecord> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare(&format!(
                "SELECT {} FROM runs WHERE id = ?1 OR id LIKE ?2 ORDER BY id LIMIT 2",
                Self::RUN_COLS
            ))
            .map_err(|e| self.err(e))?;
        let rows: Vec<RunRecord> = st
            .query_map(
                params![id, format!("{}%", id.replace(['%', '_'], ""))],
                Self::run_from_row,
            )
            .map_err(|e| self.err(e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))?;
        match rows.len() {
            0 => Err(JournalError::UnknownRun(id.to_string())),
            1 => Ok(rows.into_iter().next().expect("one row")),
            _ => match rows.iter().find(|r| r.id.as_str() == id) {
                Some(r) => Ok(r.clone()),
                None => Err(JournalError::Refused(format!(
                    "`{id}` matches several runs; give more of the id"
                ))),
            },
        }
    }

    pub fn steps(&self, run_id: &RunId) -> Result<Vec<StepRecord>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare("SELECT step_id, action, status, attempts, started_at, ended_at, message FROM steps WHERE run_id = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run_id], |r| {
                Ok(StepRecord {
                    step_id: r.get(0)?,
                    action: r.get(1)?,
                    status: parse_col(r, 2, "steps.status")?,
                    attempts: r.get(3)?,
                    started_at: r.get(4)?,
                    ended_at: r.get(5)?,
                    message: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    pub fn events(&self, run_id: &RunId) -> Result<Vec<Event>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare("SELECT seq, run_id, step_id, at, kind, operation, resource, data, intent_seq, hash FROM events WHERE run_id = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run_id], |r| {
                let data: String = r.get(7)?;
                Ok(Event {
                    seq: r.get(0)?,
                    run_id: r.get(1)?,
                    step_id: r.get(2)?,
                    at: r.get(3)?,
                    kind: r.get(4)?,
                    operation: r.get(5)?,
                    resource: r.get(6)?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                    intent_seq: r.get(8)?,
                    hash: r.get(9)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Tiers currently shed on an environment: (tier, since ms, run id).
    pub fn shed_tiers(&self, environment: &str) -> Result<Vec<(String, i64, RunId)>> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare(
                "SELECT tier, since, run_id FROM shed_state WHERE environment = ?1 ORDER BY since",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![environment], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
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
        {
            let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            if shed {
                conn.execute(
                    "INSERT OR IGNORE INTO shed_state (environment, tier, since, run_id) VALUES (?1, ?2, ?3, ?4)",
                    params![environment, tier, now_ms(), run_id],
                )
                .map_err(|e| self.err(e))?;
            } else {
                conn.execute(
                    "DELETE FROM shed_state WHERE environment = ?1 AND tier = ?2",
                    params![environment, tier],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        self.append(
            run_id,
            Some(step_id),
            if shed { "tier_shed" } else { "tier_restored" },
            None,
            None,
            serde_json::json!({"tier": tier, "environment": environment}),
            None,
        )?;
        Ok(())
    }

    /// Intents that have no outcome: calls that may or may not have happened.
    pub fn open_intents(&self, run_id: &RunId) -> Result<Vec<Event>> {
        let evs = self.events(run_id)?;
        let answered: Vec<i64> = evs.iter().filter_map(|e| e.intent_seq).collect();
        Ok(evs
            .into_iter()
            .filter(|e| e.kind == "intent" && !answered.contains(&e.seq))
            .collect())
    }
}

/// A text column that holds a value its type does not know (see [`JournalError::UnknownValue`]).
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` holds `{value}`")]
struct BadColumn {
    column: &'static str,
    value: String,
}

/// Read a text column as one of the run vocabulary's types (`column`: `table.column`, for the
/// error).
fn parse_col<T: FromStr<Err = UnknownValue>>(
    r: &rusqlite::Row<'_>,
    idx: usize,
    column: &'static str,
) -> rusqlite::Result<T> {
    let value: String = r.get(idx)?;
    value.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(BadColumn { column, value }),
        )
    })
}

/// Run ids are stored as their text.
impl rusqlite::types::ToSql for RunId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for RunId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(v).map(RunId)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 of `data`, lower-case hex (runbook fingerprints in run records, the event chain).
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// A new run id: sortable by time, short enough to type, unique enough for one team.
pub fn new_run_id() -> RunId {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, mo, d, h, mi, s) = crate::timefmt::civil(secs as i64);
    let mut rng = fastrand::Rng::new();
    let suffix: String = (0..4)
        .map(|_| rng.alphanumeric().to_ascii_lowercase())
        .collect();
    RunId::new(format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{suffix}"))
}

pub use crate::timefmt::format_ts;

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn intents_without_outcomes_are_found_and_chain_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
        j.create_run(&run("r1")).unwrap();
        let r1 = RunId::from("r1");
        j.init_step(&r1, "s", "rds.failover_cluster", StepStatus::Pending)
            .unwrap();
        let a = j
            .intent(
                &r1,
                "s",
                "FailoverDBCluster",
                "orders",
                serde_json::json!({"target": "orders-2"}),
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
            )
            .unwrap();
        let open = j.open_intents(&r1).unwrap();
        assert_eq!(open.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![b]);
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

    #[test]
    fn unknown_values_read_back_are_errors_naming_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
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
        let poke = |sql: &str| j.conn.lock().unwrap().execute(sql, []).unwrap();
        poke("UPDATE steps SET status = 'paused'");
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
        poke("UPDATE runs SET mode = 'drill'");
        let e = j.run("r1").unwrap_err();
        assert!(
            matches!(&e, JournalError::UnknownValue { column: "runs.mode", value, .. } if value == "drill"),
            "{e}"
        );
    }

    #[test]
    fn run_lookup_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db")).unwrap();
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
    }
}
