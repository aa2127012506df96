//! Which watcher of an environment acts. Several may watch one environment (`failover watch`
//! by two on-call engineers, `failover serve` beside them, service instances in several zones):
//! each probes and decides, but only the one holding the environment's `watcher:<env>` lease
//! starts runs and notifies; the others are hot standbys that journal what they would have
//! done. The lease is renewed every round and lapses when its holder stops renewing (killed,
//! partitioned, paused), so a standby takes the lead within the lease's TTL; a leader whose
//! lease was taken over learns it at its next renewal (fenced) and steps down.

use crate::lease::LeaseKey;
use crate::store::{Fence, LeaseRequest, Store, StoreError};
use crate::types::RunId;
use std::sync::Arc;
use std::time::Duration;

/// The lease's TTL for a watcher probing every `interval`: five rounds, at least 5 s.
pub fn lead_ttl(interval: Duration) -> Duration {
    (interval * 5).max(Duration::from_secs(5))
}

/// A watcher's part in the election: the lease it holds, if any.
pub(super) struct Lead {
    journal: Arc<dyn Store>,
    session: RunId,
    who: String,
    key: LeaseKey,
    ttl: Duration,
    fence: Option<Fence>,
    /// The role last said (`true`: leading); a change is said once.
    said: Option<bool>,
}

/// A change of role, to journal and tell.
pub(super) struct RoleChange {
    pub leading: bool,
    pub text: String,
}

impl Lead {
    pub(super) fn new(
        journal: Arc<dyn Store>,
        session: RunId,
        who: String,
        environment: &str,
        interval: Duration,
    ) -> Self {
        Lead {
            journal,
            session,
            who,
            key: LeaseKey::watcher(environment),
            ttl: lead_ttl(interval),
            fence: None,
            said: None,
        }
    }

    /// Whether this watcher leads.
    pub(super) fn leading(&self) -> bool {
        self.fence.is_some()
    }

    /// Renew the lead, or try to take it; the change of role, if there was one.
    pub(super) async fn refresh(&mut self) -> Result<Option<RoleChange>, StoreError> {
        let holder = super::lifecycle::holder();
        if let Some(f) = &self.fence {
            match self.journal.renew(&self.session, f, &holder).await {
                Ok(()) => return Ok(None),
                Err(StoreError::Fenced(_)) => self.fence = None,
                Err(e) => return Err(e),
            }
        }
        let req = LeaseRequest {
            run_id: self.session.clone(),
            initiator: self.who.clone(),
            holder,
            keys: vec![self.key.clone()],
            ttl_ms: self.ttl.as_millis() as i64,
            takeover: false,
        };
        let text = match self.journal.acquire(&req).await {
            Ok(f) => {
                self.fence = Some(f);
                format!(
                    "leading: this watcher (session {}) starts the runs and sends the notifications for this environment",
                    self.session
                )
            }
            Err(StoreError::Conflict(c)) => format!(
                "standby: the watcher of session {} on {} leads (lease `{}` until it stops renewing it, {} TTL); this one probes and decides but starts nothing and notifies no one until it takes over",
                c.held_by,
                c.holder,
                self.key.0,
                humantime::format_duration(self.ttl)
            ),
            Err(e) => return Err(e),
        };
        // A standby keeps trying each round; say its role only when it changes.
        if self.said == Some(self.leading()) {
            return Ok(None);
        }
        self.said = Some(self.leading());
        Ok(Some(RoleChange {
            leading: self.leading(),
            text,
        }))
    }

    /// Give the lead up (the watcher stops): a standby takes it at its next round.
    pub(super) async fn release(&mut self) -> Result<(), StoreError> {
        self.fence = None;
        self.journal.release(&self.session).await
    }
}
