//! Leases on the SQLite journal: granted all or nothing in one immediate transaction, a token
//! per key that only grows, renewed by the holder's heartbeat, checked with every intent.

use super::sqlite::{append, Journal, WriteError};
use crate::lease::{Lease, LeaseKey};
use crate::status::RunStatus;
use crate::store::{Fence, LeaseConflict, LeaseRequest, Result, StoreError};
use crate::types::RunId;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::json;

const LEASE_COLS: &str = "key, run_id, initiator, holder, token, acquired, renewed, ttl";

fn lease_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        key: LeaseKey(r.get(0)?),
        run_id: r.get::<_, Option<String>>(1)?,
        initiator: r.get(2)?,
        holder: r.get(3)?,
        token: r.get::<_, i64>(4)? as u64,
        acquired_ms: r.get(5)?,
        renewed_ms: r.get(6)?,
        ttl_ms: r.get(7)?,
    })
}

fn lease_of(tx: &Transaction<'_>, key: &LeaseKey) -> rusqlite::Result<Option<Lease>> {
    tx.prepare_cached(&format!("SELECT {LEASE_COLS} FROM leases WHERE key = ?1"))?
        .query_row(params![key.0], lease_from_row)
        .optional()
}

impl Journal {
    /// Grant every key of `req`, or none: a key held by another run whose lease is live is a
    /// conflict naming that run. Each granted key's token grows by one.
    pub fn acquire(&self, req: &LeaseRequest) -> Result<Fence> {
        self.write_durable(|tx, now, key| {
            for key in &req.keys {
                if let Some(l) = lease_of(tx, key)? {
                    let ours = l.run_id.as_deref() == Some(req.run_id.as_str());
                    if l.live_at(now) && !ours {
                        return Err(WriteError::Store(StoreError::Conflict(Box::new(
                            LeaseConflict {
                                key: key.clone(),
                                held_by: RunId::new(l.run_id.clone().unwrap_or_default()),
                                initiator: l.initiator.clone(),
                                holder: l.holder.clone(),
                                since_ms: l.acquired_ms,
                                expires_ms: l.expires_ms(),
                            },
                        ))));
                    }
                }
            }
            let mut tokens = vec![];
            for key in &req.keys {
                let token = lease_of(tx, key)?.map_or(0, |l| l.token) + 1;
                tx.prepare_cached(
                    "INSERT INTO leases (key, run_id, initiator, holder, token, acquired, renewed, ttl) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
                     ON CONFLICT(key) DO UPDATE SET run_id = ?2, initiator = ?3, holder = ?4, token = ?5, acquired = ?6, renewed = ?6, ttl = ?7",
                )?
                .execute(params![key.0, req.run_id, req.initiator, req.holder, token as i64, now, req.ttl_ms])?;
                tokens.push((key.clone(), token));
            }
            if !req.keys.is_empty() {
                let kind = if req.takeover { "leases_taken_over" } else { "leases_acquired" };
                let data = json!({"holder": req.holder, "initiator": req.initiator, "ttl_ms": req.ttl_ms, "tokens": tokens});
                append(tx, now, key, &req.run_id, None, kind, None, None, &data, None)?;
            }
            Ok(Fence {
                tokens,
                budget_ms: 0,
            })
        })
    }

    /// Renew the run's leases and heartbeat; `Fenced` if any lease is no longer this grant's.
    pub fn renew(&self, run_id: &RunId, fence: &Fence, holder: &str) -> Result<()> {
        self.write(|tx, now, _| {
            // One cached statement for every key (a run of 2,000 clusters and 20,000 records
            // holds 22,000 leases: parsing the update again for each made every heartbeat
            // cost seconds).
            let mut renew = tx.prepare_cached(
                "UPDATE leases SET renewed = ?4 WHERE key = ?1 AND run_id = ?2 AND token = ?3 AND renewed + ttl > ?4",
            )?;
            for (key, token) in &fence.tokens {
                let n = renew.execute(params![key.0, run_id, *token as i64, now])?;
                if n == 0 {
                    drop(renew);
                    return Err(WriteError::Store(StoreError::Fenced(lost(tx, now, key, *token)?)));
                }
            }
            drop(renew);
            tx.execute(
                "UPDATE runs SET heartbeat_at = ?2, holder = ?3 WHERE id = ?1",
                params![run_id, now, holder],
            )?;
            Ok(())
        })
    }

    /// Release every lease the run holds (with an event).
    pub fn release(&self, run_id: &RunId) -> Result<()> {
        self.write(|tx, now, key| {
            let n = tx.execute(
                "UPDATE leases SET run_id = NULL WHERE run_id = ?1",
                params![run_id],
            )?;
            if n > 0 {
                append(
                    tx,
                    now,
                    key,
                    run_id,
                    None,
                    "leases_released",
                    None,
                    None,
                    &json!({"count": n}),
                    None,
                )?;
            }
            Ok(())
        })
    }

    /// Every lease, held or released, by key.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {LEASE_COLS} FROM leases ORDER BY key"))?;
            let rows = st.query_map([], lease_from_row)?;
            rows.collect()
        })
    }
}

/// The fence of an intent: every lease still this run's, with the same token, with at least
/// the call budget left; and the run not ended (an aborted run makes no call).
pub(super) fn check_fence(
    tx: &Transaction<'_>,
    now: i64,
    run_id: &RunId,
    fence: &Fence,
) -> std::result::Result<(), WriteError> {
    let status: Option<String> = tx
        .query_row(
            "SELECT status FROM runs WHERE id = ?1",
            params![run_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(s) = status.and_then(|s| s.parse::<RunStatus>().ok()) {
        if s.is_finished() {
            return Err(WriteError::Store(StoreError::Fenced(format!(
                "run {run_id} is {s}: it makes no further call"
            ))));
        }
    }
    // One cached statement answering yes or no per key, nothing allocated: an intent of a run
    // holding thousands of leases checks each of them (parsing the query again for each key
    // made the check dominate the simulation of a large evacuation).
    let mut held = tx.prepare_cached(
        "SELECT run_id = ?2 AND token = ?3 AND renewed + ttl - ?4 >= ?5 FROM leases WHERE key = ?1",
    )?;
    for (key, token) in &fence.tokens {
        let ok: Option<bool> = held
            .query_row(
                params![key.0, run_id, *token as i64, now, fence.budget_ms],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        if ok != Some(true) {
            drop(held);
            return Err(WriteError::Store(StoreError::Fenced(lost(
                tx, now, key, *token,
            )?)));
        }
    }
    Ok(())
}

/// Why a lease is no longer this grant's.
fn lost(tx: &Transaction<'_>, now: i64, key: &LeaseKey, token: u64) -> rusqlite::Result<String> {
    Ok(match lease_of(tx, key)? {
        None => format!("the lease on {key} is gone"),
        Some(l) if l.token != token => format!(
            "the lease on {key} was taken over (token {} > {token}) by run {} ({})",
            l.token,
            l.run_id.unwrap_or_else(|| "-".into()),
            l.holder
        ),
        Some(l) if l.run_id.is_none() => format!("the lease on {key} was released"),
        Some(l) if l.expires_ms() <= now => format!(
            "the lease on {key} expired at {} (no heartbeat for {} ms)",
            crate::timefmt::format_ts(l.expires_ms()),
            now - l.renewed_ms
        ),
        Some(l) => format!(
            "the lease on {key} has {} ms left, less than a call may take",
            l.expires_ms() - now
        ),
    })
}
