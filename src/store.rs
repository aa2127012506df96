//! The journal port: the durable record of runs (runs, steps, the hash-chained events with an
//! intent before every mutating call and an outcome after it, approvals, shed state) and the
//! leases with fencing tokens that keep two runs off one resource, behind one trait.
//!
//! `journal::Journal` implements it on one SQLite file (the embedded default; several
//! processes on one host share it). A distributed store (DynamoDB with conditional writes, for
//! several `failover serve` instances in different zones) implements the same contract:
//! - every write is atomic and never fails for contention (it waits its turn, bounded);
//! - an intent is written only if the run still holds every lease of its fence with the same
//!   token and enough time left (`Fence`), in the same atomic write; the engine shows the part
//!   of the run's fence covering the call (the leases of the resources it changes, a Route 53
//!   batch's records), so the check grows with the call, not with the run (DynamoDB: one
//!   condition check per key in the intent's TransactWriteItems; its 100 items are fewer than
//!   a Route 53 batch's 1,000 records, a limit that port will have to design for);
//! - a grant of leases is all or nothing, and a key's token only grows;
//! - the events of all runs form one chain (each names the hash of the one before).

use crate::lease::{Lease, LeaseKey};
use crate::status::{RunMode, RunStatus, StepStatus};
use crate::types::RunId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store itself failed (an SQLite error, a network error for a remote store).
    #[error("journal {location}: {message}")]
    Backend { location: String, message: String },
    #[error("cannot create the journal directory {path}: {message}")]
    Dir { path: String, message: String },
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
    /// Another live run holds a lease on a resource this run needs.
    #[error("{0}")]
    Conflict(Box<LeaseConflict>),
    /// The run no longer holds its leases (expired while it was paused, taken over, aborted):
    /// it must make no further call.
    #[error("fenced: {0}")]
    Fenced(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub runbook: String,
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub environment: String,
    pub mode: RunMode,
    pub initiator: String,
    pub params: Value,
    pub status: RunStatus,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub error: Option<String>,
    /// The plan computed at the start of the run (redacted).
    pub plan: Value,
    /// The bound steps (redacted): for people; a resume re-binds from the runbook file.
    pub steps: Value,
    /// When the process running it last said it was alive (epoch ms).
    #[serde(default)]
    pub heartbeat_at: Option<i64>,
    /// `host:pid` of the process running it.
    #[serde(default)]
    pub holder: Option<String>,
}

/// Whether a run's process is alive, as far as the journal can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "liveness", rename_all = "snake_case")]
pub enum Liveness {
    /// Ended (any final status).
    Ended,
    /// Not ended, and its heartbeat is recent.
    Live,
    /// Not ended, and its heartbeat stopped at `since` (epoch ms): its process is gone or
    /// stuck. Nothing is waiting for its approvals; `failover resume` continues it.
    Stale { since: i64 },
}

impl RunRecord {
    /// Stale when the heartbeat (or, with none, the start) is older than `stale_after_ms`.
    pub fn liveness(&self, now_ms: i64, stale_after_ms: i64) -> Liveness {
        if self.ended_at.is_some() || self.status.is_finished() {
            return Liveness::Ended;
        }
        let last = self.heartbeat_at.unwrap_or(self.started_at);
        if now_ms.saturating_sub(last) > stale_after_ms {
            Liveness::Stale { since: last }
        } else {
            Liveness::Live
        }
    }
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
    /// run_started, step_started, intent, outcome, settled, note, approval_requested,
    /// approved, step_finished, run_finished, leases_acquired, leases_released, ...
    pub kind: String,
    pub operation: Option<String>,
    pub resource: Option<String>,
    pub data: Value,
    /// For an outcome (or a settlement): the intent it answers.
    pub intent_seq: Option<i64>,
    pub hash: String,
}

/// What a run shows to prove it still holds its leases when it writes an intent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// Each leased key with the token of the grant.
    pub tokens: Vec<(LeaseKey, u64)>,
    /// No call starts when a lease has less than this left (epoch-ms arithmetic).
    pub budget_ms: i64,
}

/// A request for the leases of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    pub run_id: RunId,
    pub initiator: String,
    /// `host:pid`.
    pub holder: String,
    pub keys: Vec<LeaseKey>,
    pub ttl_ms: i64,
    /// Take over leases this very run holds already (a resume of it, in a new process): each
    /// gets a new token, so the old process, if it is only paused, is fenced off.
    pub takeover: bool,
}

/// Who holds what a run asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseConflict {
    pub key: LeaseKey,
    pub held_by: RunId,
    pub initiator: String,
    pub holder: String,
    pub since_ms: i64,
    pub expires_ms: i64,
}

impl std::fmt::Display for LeaseConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is leased by run {} (started by {}, on {}, since {}; the lease expires at {} unless renewed)",
            self.key,
            self.held_by,
            self.initiator,
            self.holder,
            crate::timefmt::format_ts(self.since_ms),
            crate::timefmt::format_ts(self.expires_ms)
        )
    }
}

/// What `approve` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    /// Recorded, as the n-th distinct approval of that gate.
    Recorded { count: usize },
    /// This person (after trimming and case folding) had approved already, at `at`.
    Already { by: String, at: i64 },
}

/// A mutating call that may have been made and whose effect has not been confirmed: an intent
/// with no outcome, or with a failure that does not prove the call was not processed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InDoubt {
    pub run_id: RunId,
    pub step_id: Option<String>,
    /// The intent's sequence number.
    pub seq: i64,
    pub at: i64,
    pub operation: String,
    pub resource: String,
    /// The call as journaled (redacted).
    pub call: Value,
    /// Why it is in doubt: `no outcome` or the failure.
    pub why: String,
}

/// A Route 53 change a run made, as its outcome recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeChange {
    pub run_id: RunId,
    pub at: i64,
    pub hosted_zone_id: String,
    pub change_id: String,
}

/// The journal port. Every method is one atomic operation of the store.
#[async_trait]
pub trait Store: Send + Sync {
    /// Where the journal is (a path, a table name), for messages.
    fn location(&self) -> String;
    /// Now on the journal's clock (epoch ms): the times of its events and runs.
    fn now_ms(&self) -> i64;

    async fn create_run(&self, r: &RunRecord) -> Result<()>;
    /// Set a run's status (with an event); `finished`: it ended now.
    async fn set_run_status(
        &self,
        run: &RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()>;
    /// The run's process is alive (`holder`: `host:pid`).
    async fn heartbeat(&self, run: &RunId, holder: &str) -> Result<()>;
    /// A run by id (or unique prefix, for people typing it).
    async fn run(&self, id_or_prefix: &str) -> Result<RunRecord>;
    /// A run by its exact id.
    async fn run_exact(&self, id: &RunId) -> Result<RunRecord>;
    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>>;

    async fn init_step(
        &self,
        run: &RunId,
        step: &str,
        action: &str,
        status: StepStatus,
    ) -> Result<()>;
    async fn step_started(&self, run: &RunId, step: &str, attempt: u32) -> Result<()>;
    async fn set_step_status(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()>;
    async fn step_finished(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()>;
    async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>>;

    /// The intent of a mutating call, written only if `fence` still holds; its sequence number.
    async fn intent(
        &self,
        run: &RunId,
        step: &str,
        operation: &str,
        resource: &str,
        call: Value,
        fence: &Fence,
    ) -> Result<i64>;
    async fn outcome(
        &self,
        run: &RunId,
        step: &str,
        intent_seq: i64,
        operation: &str,
        resource: &str,
        result: Value,
    ) -> Result<i64>;
    /// Any other event of a run.
    async fn note(&self, run: &RunId, step: Option<&str>, kind: &str, data: Value) -> Result<i64>;
    async fn events(&self, run: &RunId) -> Result<Vec<Event>>;
    /// Intents of a run that have no outcome.
    async fn open_intents(&self, run: &RunId) -> Result<Vec<Event>>;
    /// Calls of any run since `since_ms` whose effect is not confirmed.
    async fn in_doubt(&self, since_ms: i64) -> Result<Vec<InDoubt>>;
    /// Record that an in-doubt call is settled (its effect observed, or its grace passed).
    async fn settle(&self, run: &RunId, step: &str, intent_seq: i64, how: &str) -> Result<()>;
    /// Route 53 changes made by any run since `since_ms`.
    async fn changes_since(&self, since_ms: i64) -> Result<Vec<MadeChange>>;

    /// Approve a gate as `by` (already trimmed and case-folded by the caller).
    async fn approve(&self, run: &RunId, step: &str, by: &str) -> Result<Approval>;
    /// Who approved a gate, from the chained approval events only.
    async fn approvals(&self, run: &RunId, step: &str) -> Result<Vec<String>>;

    /// Tiers currently shed on an environment: (tier, since ms, run id).
    async fn shed_tiers(&self, environment: &str) -> Result<Vec<(String, i64, RunId)>>;
    async fn set_shed(
        &self,
        environment: &str,
        tier: &str,
        run: &RunId,
        step: &str,
        shed: bool,
    ) -> Result<()>;

    /// Grant every key of `req`, or none (`StoreError::Conflict` names a live holder).
    async fn acquire(&self, req: &LeaseRequest) -> Result<Fence>;
    /// Renew the run's leases (and its heartbeat); `Fenced` when one was lost.
    async fn renew(&self, run: &RunId, fence: &Fence, holder: &str) -> Result<()>;
    /// Release every lease the run holds.
    async fn release(&self, run: &RunId) -> Result<()>;
    /// Every lease, held or released.
    async fn leases(&self) -> Result<Vec<Lease>>;

    /// How many events the chain holds.
    async fn event_count(&self) -> Result<i64>;
    /// Recompute the chain; the sequence number of the first event that does not fit.
    async fn verify_chain(&self) -> Result<Option<i64>>;
    /// Check the whole journal: the chain, the heads remembered outside it, and every table
    /// against the events that mirror it.
    async fn verify(&self, heads: &[Head]) -> Result<VerifyReport>;
    /// The last event of the chain (what to remember outside the journal).
    async fn head(&self) -> Result<Option<Head>>;
    /// Every event from `since` (sequence number) on, in order.
    async fn events_since(&self, since: i64, limit: usize) -> Result<Vec<Event>>;
}

/// A point of the chain remembered outside the journal: `SEQ:HASH`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (seq, hash) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not SEQ:HASH (what `failover audit head` prints)"))?;
        let seq = seq
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{seq}` is not an event number"))?;
        let hash = hash.split_whitespace().next().unwrap_or("");
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("`{hash}` is not a 64-digit hex hash"));
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub events: i64,
    /// `sha256` or `hmac-sha256`.
    pub chain: String,
    /// The last event.
    pub head: Option<Head>,
    /// Whether the tables were checked against the events (journals made by this version).
    pub tables_checked: bool,
    /// Everything wrong, the first bad event first.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a journal, at an event when one can be named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub seq: Option<i64>,
    pub what: String,
}
