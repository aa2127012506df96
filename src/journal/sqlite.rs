//! The SQLite file behind the journal: opening it (owner-only, WAL; `synchronous=FULL` for
//! durable writes such as intents, leases and approvals, NORMAL for the others,
//! schema and migrations), the one way to write (an immediate transaction, retried while
//! another process holds the write lock), and appending a chained event inside a transaction.

use super::group::IntentQueue;
use crate::status::UnknownValue;
use crate::store::{Result, StoreError};
use crate::types::RunId;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The journal on one SQLite file. Several processes may share it: every write takes the
/// write lock first (`BEGIN IMMEDIATE`) and waits its turn.
pub struct Journal {
    pub(super) path: PathBuf,
    /// Shared with the handles [`Journal::share`] makes (a group commit's blocking thread).
    pub(super) conn: Arc<Mutex<Connection>>,
    /// Epoch milliseconds for event times and leases: the wall clock, or the simulator's.
    clock: Option<Clock>,
    /// The key of a keyed (HMAC-SHA256) chain; `None`: a plain SHA-256 chain, or a keyed
    /// journal opened without its key (it can be read, not written).
    pub(super) key: Option<AuditKey>,
    /// How this journal's chain is made.
    pub(super) chain: ChainKind,
    /// The connection's sync mode and durable commits, shared like `conn`.
    sync: Arc<SyncState>,
    /// Intents waiting to be written together (group commit, `group.rs`).
    pub(super) intents: Arc<IntentQueue>,
    /// Whether concurrent intents of a multi-thread runtime are grouped (else written one at a
    /// time, each with its own fsync, as the synchronous [`Journal::intent`] always does).
    group_intents: bool,
}

/// The state of the connection that every handle on it shares.
struct SyncState {
    /// Whether the connection is in `synchronous=FULL` now (else NORMAL).
    full: AtomicBool,
    /// Durable (fsynced) commits made through this connection.
    durable_commits: AtomicU64,
}

/// The secret the chain is keyed with (`$FAILOVER_AUDIT_KEY`, or the first line of
/// `$FAILOVER_AUDIT_KEY_FILE`). Never printed.
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl AuditKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key the environment names, if any.
    pub fn from_env() -> std::result::Result<Option<Self>, String> {
        if let Ok(k) = std::env::var("FAILOVER_AUDIT_KEY") {
            return Ok((!k.is_empty()).then(|| Self(k.into_bytes())));
        }
        match std::env::var("FAILOVER_AUDIT_KEY_FILE") {
            Ok(f) => std::fs::read_to_string(&f)
                .map(|t| {
                    Some(Self(
                        t.lines().next().unwrap_or("").trim().as_bytes().to_vec(),
                    ))
                })
                .map_err(|e| {
                    format!("cannot read the audit key file {f} ($FAILOVER_AUDIT_KEY_FILE): {e}")
                }),
            Err(_) => Ok(None),
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

/// How a journal's chain is made, fixed when its first event is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainKind {
    /// SHA-256 over the previous hash and the event: catches an edit or a deletion, but not a
    /// chain recomputed by whoever can write the file.
    Sha256,
    /// HMAC-SHA256 with a secret key: a recomputed chain cannot be made without the key.
    HmacSha256,
}

impl ChainKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::Sha256 => "sha256",
            ChainKind::HmacSha256 => "hmac-sha256",
        }
    }
}

/// The version of the journal's format. 2: every row of every table is mirrored by events
/// (`verify` rebuilds the tables from the chain and compares).
pub const FORMAT: i64 = 2;

/// A clock the journal reads (epoch milliseconds).
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// How long a write waits for the write lock in all (SQLite's busy timeout, then retries).
pub const WRITE_PATIENCE: Duration = Duration::from_secs(60);

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
    run_id TEXT NOT NULL,
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
CREATE INDEX IF NOT EXISTS events_kind_at ON events(kind, at);
CREATE INDEX IF NOT EXISTS events_intent ON events(intent_seq);
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
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    run_id TEXT,
    initiator TEXT NOT NULL DEFAULT '',
    holder TEXT NOT NULL DEFAULT '',
    token INTEGER NOT NULL DEFAULT 0,
    acquired INTEGER NOT NULL DEFAULT 0,
    renewed INTEGER NOT NULL DEFAULT 0,
    ttl INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS leases_run ON leases(run_id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Columns added after the first version: (table, column, definition).
const MIGRATIONS: &[(&str, &str, &str)] = &[
    ("runs", "heartbeat_at", "INTEGER"),
    ("runs", "holder", "TEXT"),
];

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

    /// Open (or create, owner-only) the journal at `path` with the audit key of the
    /// environment (`$FAILOVER_AUDIT_KEY`), if any; `:memory:` for a private one.
    pub fn open(path: &Path) -> Result<Journal> {
        let key = AuditKey::from_env().map_err(StoreError::Refused)?;
        Self::open_with(path, key)
    }

    /// Open (or create) the journal at `path`, its chain keyed with `key` when given. A new
    /// journal's chain is keyed if a key is given when its first event is written; a keyed
    /// journal refuses a wrong key, and without its key can be read but not written.
    pub fn open_with(path: &Path, key: Option<AuditKey>) -> Result<Journal> {
        let in_memory = path.as_os_str() == ":memory:";
        if !in_memory {
            create_private_dir(path)?;
        }
        let p = path.display().to_string();
        let err = |e: rusqlite::Error| StoreError::Backend {
            location: p.clone(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        // WAL is a property of the file: read it first, so that only the journal's first open
        // converts it. SQLite does not run the busy handler for the conversion, and another
        // process's open or last close (a checkpoint) can make any of these pragmas busy.
        patiently(is_busy, || {
            let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                conn.pragma_update(None, "journal_mode", "WAL")?;
            }
            conn.pragma_update(None, "synchronous", "FULL")
        })
        .map_err(err)?;
        let mut j = Journal {
            sync: Arc::new(SyncState {
                full: AtomicBool::new(true),
                durable_commits: AtomicU64::new(0),
            }),
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            clock: None,
            key,
            chain: ChainKind::Sha256,
            intents: Arc::default(),
            group_intents: true,
        };
        j.write(|tx, _, _| {
            tx.execute_batch(SCHEMA)?;
            for (table, column, def) in MIGRATIONS {
                let has: bool = tx
                    .prepare(&format!(
                        "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
                    ))?
                    .exists(params![column])?;
                if !has {
                    tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {def}"))?;
                }
            }
            Ok(())
        })?;
        j.chain = j.settle_chain_kind()?;
        if !in_memory {
            restrict_files(path);
        }
        Ok(j)
    }

    /// The chain kind this journal was made with (recorded at its first open), checking that
    /// a given key is the one it was keyed with.
    fn settle_chain_kind(&self) -> Result<ChainKind> {
        let check = self.key.as_ref().map(key_check);
        self.write(|tx, _, _| {
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                tx.query_row("SELECT value FROM meta WHERE key = ?1", params![k], |r| r.get(0))
                    .optional()
            };
            let chain = match get("chain")? {
                Some(c) => c,
                None => {
                    let events: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
                    let kind = if check.is_some() && events == 0 { "hmac-sha256" } else { "sha256" };
                    tx.execute("INSERT INTO meta (key, value) VALUES ('chain', ?1)", params![kind])?;
                    let format = if events == 0 { FORMAT } else { 1 };
                    tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?1)", params![format.to_string()])?;
                    if let (Some(c), "hmac-sha256") = (&check, kind) {
                        tx.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?1)", params![c])?;
                    }
                    kind.to_string()
                }
            };
            if chain != "hmac-sha256" {
                return Ok(ChainKind::Sha256);
            }
            if let (Some(c), Some(stored)) = (&check, get("key_check")?) {
                if c != &stored {
                    return Err(WriteError::Store(StoreError::Refused(
                        "the audit key ($FAILOVER_AUDIT_KEY) is not the key this journal's chain was made with".into(),
                    )));
                }
            }
            Ok(ChainKind::HmacSha256)
        })
    }

    /// The format version recorded when the journal was created (1: older than mirrored tables).
    pub fn format(&self) -> Result<i64> {
        self.read(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
        })
        .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(1))
    }

    /// How the chain is made.
    pub fn chain_kind(&self) -> ChainKind {
        self.chain
    }

    /// The key to hash with, or why this journal cannot be written.
    pub(super) fn hash_key(&self) -> std::result::Result<Option<&[u8]>, StoreError> {
        match (self.chain, &self.key) {
            (ChainKind::Sha256, _) => Ok(None),
            (ChainKind::HmacSha256, Some(k)) => Ok(Some(k.bytes())),
            (ChainKind::HmacSha256, None) => Err(StoreError::Refused(format!(
                "journal {}: its chain is keyed (HMAC-SHA256); set $FAILOVER_AUDIT_KEY (or $FAILOVER_AUDIT_KEY_FILE) to the key it was created with",
                self.path.display()
            ))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read time from `clock` (the simulator's virtual clock) instead of the wall clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Group concurrent intents (the default) or write each in its own transaction with its
    /// own fsync (`false`: what the journal did before group commit; for comparisons).
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_intents = on;
        self
    }

    /// Whether an intent written now goes through the group commit: when it is enabled and the
    /// caller runs on a multi-thread tokio runtime. On a current-thread runtime (the simulator,
    /// most tests) an intent is written in place, as before: nothing else could run while it
    /// waits for its group, and the simulator's order of events stays deterministic.
    pub(super) fn groups_intents(&self) -> bool {
        use tokio::runtime::{Handle, RuntimeFlavor};
        self.group_intents
            && Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
    }

    /// Another handle on the same connection, queue and counters (for a group commit's
    /// blocking thread, which needs an owned journal).
    pub(super) fn share(&self) -> Journal {
        Journal {
            path: self.path.clone(),
            conn: self.conn.clone(),
            clock: self.clock.clone(),
            key: self.key.clone(),
            chain: self.chain,
            sync: self.sync.clone(),
            intents: self.intents.clone(),
            group_intents: self.group_intents,
        }
    }

    /// How many durable (fsynced, `synchronous=FULL`) commits this process made on this
    /// journal: with group commit, fewer than the intents written when they came together.
    pub fn durable_commits(&self) -> u64 {
        self.sync.durable_commits.load(Ordering::Relaxed)
    }

    /// Now, in epoch milliseconds, on the journal's clock.
    pub fn now(&self) -> i64 {
        match &self.clock {
            Some(c) => c(),
            None => now_ms(),
        }
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::FromSqlConversionFailure(_, _, e) = &source {
            if let Some(b) = e.downcast_ref::<BadColumn>() {
                return StoreError::UnknownValue {
                    path: self.path.display().to_string(),
                    column: b.column,
                    value: b.value.clone(),
                };
            }
        }
        StoreError::Backend {
            location: self.path.display().to_string(),
            message: source.to_string(),
        }
    }

    /// Run `f` in one immediate transaction (the write lock is taken first, so a write never
    /// fails because another process committed after it read). While another process holds the
    /// lock, wait (SQLite's busy timeout) and retry, for up to [`WRITE_PATIENCE`].
    /// A write that must be on disk before the caller goes on: an intent (before its call),
    /// a lease taken (before anything is planned under it), an approval. Its fsync of the WAL
    /// also makes every earlier write durable: unrelated events share this sync.
    pub(super) fn write_durable<T>(
        &self,
        f: impl FnMut(&Transaction<'_>, i64, Option<&[u8]>) -> std::result::Result<T, WriteError>,
    ) -> Result<T> {
        self.write_synced(true, f)
    }

    /// Any other write: committed to the WAL (a killed process loses none of it) and made
    /// durable against a power loss by the next durable write. A lost outcome only makes its
    /// call look in doubt, which the steps handle (they observe before acting).
    pub(super) fn write<T>(
        &self,
        f: impl FnMut(&Transaction<'_>, i64, Option<&[u8]>) -> std::result::Result<T, WriteError>,
    ) -> Result<T> {
        self.write_synced(false, f)
    }

    fn write_synced<T>(
        &self,
        full: bool,
        mut f: impl FnMut(&Transaction<'_>, i64, Option<&[u8]>) -> std::result::Result<T, WriteError>,
    ) -> Result<T> {
        let started = Instant::now();
        let key = self.hash_key()?;
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if self.sync.full.load(Ordering::Relaxed) != full {
            conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })
                .map_err(|e| self.err(e))?;
            self.sync.full.store(full, Ordering::Relaxed);
        }
        let busy = |e: &WriteError| matches!(e, WriteError::Sqlite(e) if is_busy(e));
        let written = patiently(busy, || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx, self.now(), key)?;
            tx.commit()?;
            Ok(out)
        });
        match written {
            Ok(v) => {
                if full {
                    self.sync.durable_commits.fetch_add(1, Ordering::Relaxed);
                }
                observed(started.elapsed(), full);
                Ok(v)
            }
            Err(WriteError::Sqlite(e)) => Err(self.err(e)),
            Err(WriteError::Store(e)) => Err(e),
        }
    }

    /// A read on the shared connection.
    /// Busy (another process's checkpoint, or its open): retried as a write is.
    pub(super) fn read<T>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        patiently(is_busy, || f(&conn)).map_err(|e| self.err(e))
    }
}

/// Told, after each write of this process, how long it took (waiting for the lock included)
/// and whether it was durable (fsynced): the journal write latency `failover serve` exports.
pub type WriteObserver = std::sync::Arc<dyn Fn(Duration, bool) + Send + Sync>;

static WRITE_OBSERVER: std::sync::RwLock<Option<WriteObserver>> = std::sync::RwLock::new(None);

/// Watch every journal write of this process (replaces any earlier observer).
pub fn observe_writes(f: WriteObserver) {
    *WRITE_OBSERVER.write().unwrap_or_else(|e| e.into_inner()) = Some(f);
}

fn observed(took: Duration, durable: bool) {
    let f = WRITE_OBSERVER
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(f) = f {
        f(took, durable);
    }
}

/// What fails a write: SQLite, or a rule of the store (a fence, a lease conflict).
pub(super) enum WriteError {
    Sqlite(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sqlite(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

/// Run `f` again while it fails busy (another process holds a lock SQLite's own busy
/// timeout did not wait out), with a growing, jittered pause, for up to [`WRITE_PATIENCE`].
fn patiently<T, E>(
    busy: impl Fn(&E) -> bool,
    mut f: impl FnMut() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match f() {
            Err(e) if busy(&e) && started.elapsed() < WRITE_PATIENCE => {
                std::thread::sleep(
                    pause + Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64)),
                );
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            done => return done,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The journal's directory, created owner-only (0700) when it does not exist.
fn create_private_dir(path: &Path) -> Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| StoreError::Dir {
        path: dir.display().to_string(),
        message: e.to_string(),
    })
}

/// The journal and its WAL files readable by their owner only (0600).
fn restrict_files(path: &Path) {
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// Append one event to the chain inside `tx`; returns its sequence number.
#[allow(clippy::too_many_arguments)]
pub(super) fn append(
    tx: &Transaction<'_>,
    at: i64,
    key: Option<&[u8]>,
    run_id: &RunId,
    step_id: Option<&str>,
    kind: &str,
    operation: Option<&str>,
    resource: Option<&str>,
    data: &serde_json::Value,
    intent_seq: Option<i64>,
) -> rusqlite::Result<i64> {
    // Cached statements: every event of a run goes through here.
    let prev: String = tx
        .prepare_cached("SELECT hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    let hash = event_hash(
        key, &prev, run_id, step_id, at, kind, operation, resource, data, intent_seq,
    );
    tx.prepare_cached(
        "INSERT INTO events (run_id, step_id, at, kind, operation, resource, data, intent_seq, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![run_id, step_id, at, kind, operation, resource, data.to_string(), intent_seq, hash])?;
    Ok(tx.last_insert_rowid())
}

/// The key-check value a keyed journal keeps to refuse a wrong key.
fn key_check(k: &AuditKey) -> String {
    hmac_hex(k.bytes(), b"failover journal key check")
}

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let Ok(mut m) = hmac::Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    m.update(data);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The chain: the hash of an event covers the hash of the one before it (keyed: an HMAC).
#[allow(clippy::too_many_arguments)]
pub(super) fn event_hash(
    key: Option<&[u8]>,
    prev: &str,
    run_id: &RunId,
    step_id: Option<&str>,
    at: i64,
    kind: &str,
    operation: Option<&str>,
    resource: Option<&str>,
    data: &serde_json::Value,
    intent_seq: Option<i64>,
) -> String {
    let body =
        serde_json::json!([run_id, step_id, at, kind, operation, resource, data, intent_seq])
            .to_string();
    let material = format!("{prev}\n{body}");
    match key {
        Some(k) => hmac_hex(k, material.as_bytes()),
        None => sha256_hex(material.as_bytes()),
    }
}

/// SHA-256 of `data`, lower-case hex (runbook fingerprints in run records, the event chain).
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A text column that holds a value its type does not know (see [`StoreError::UnknownValue`]).
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` holds `{value}`")]
pub(super) struct BadColumn {
    column: &'static str,
    value: String,
}

/// Read a text column as one of the run vocabulary's types (`column`: `table.column`, for the
/// error).
pub(super) fn parse_col<T: FromStr<Err = UnknownValue>>(
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
