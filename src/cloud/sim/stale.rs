//! Eventually consistent reads (the `stale-reads` fault): copies of resources as they were
//! just before a mutation, served to reads of that resource until the mutation's lag has
//! passed.
//!
//! Only the one resource a mutation touches is copied (a cluster's or an instance's Describe
//! answer, a snapshot that did not exist yet, a hosted zone's record sets, a Route 53 change
//! that did not exist yet), in the form a read answers it, and each copy is dropped once its
//! lag has passed. Several mutations of one resource within the lag queue their copies: a read
//! answers the state before the oldest mutation it cannot see yet, so what reads show only
//! moves forward.

use crate::cloud::{ChangeStatus, ClusterState, InstanceState, RecordSet, SnapshotState};
use crate::types::{ClusterId, InstanceId};
use crate::world::SnapshotKindKey;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::time::Duration;

/// A resource as reads still see it after a mutation.
#[derive(Clone, Debug)]
pub struct StaleCopy<V> {
    /// When the mutation was applied (the copy is the state just before it).
    pub taken: Duration,
    /// Reads see the mutation from then on.
    pub until: Duration,
    pub state: V,
}

/// The copies of one kind of resource, by resource.
#[derive(Clone, Debug)]
pub struct Copies<K, V> {
    by_key: BTreeMap<K, Vec<StaleCopy<V>>>,
}

impl<K, V> Default for Copies<K, V> {
    fn default() -> Self {
        Self {
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord, V> Copies<K, V> {
    /// Keep `state` (the resource before a mutation applied at `now`) until `now + lag`; never
    /// earlier than a copy of the same resource already kept, so reads only move forward.
    pub fn keep(&mut self, key: K, state: V, now: Duration, lag: Duration) {
        let queue = self.by_key.entry(key).or_default();
        let until = queue
            .last()
            .map_or(now + lag, |last| last.until.max(now + lag));
        queue.push(StaleCopy {
            taken: now,
            until,
            state,
        });
    }

    /// What a read of `key` at `now` answers, if it is not the true state.
    pub fn get<Q>(&self, key: &Q, now: Duration) -> Option<&StaleCopy<V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.by_key
            .get(key)
            .and_then(|q| q.iter().find(|c| c.until > now))
    }

    /// Drop every copy whose lag has passed by `now`.
    fn expire(&mut self, now: Duration) {
        self.by_key.retain(|_, q| {
            q.retain(|c| c.until > now);
            !q.is_empty()
        });
    }

    fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }
}

/// Every resource whose reads lag behind a mutation right now.
#[derive(Clone, Debug, Default)]
pub struct StaleReads {
    pub clusters: Copies<ClusterId, ClusterState>,
    pub instances: Copies<InstanceId, InstanceState>,
    /// `None`: the snapshot did not exist before its create.
    pub snapshots: Copies<(SnapshotKindKey, String), Option<SnapshotState>>,
    /// A hosted zone's record sets, by hosted zone id.
    pub records: Copies<String, Vec<RecordSet>>,
    /// `None`: the change did not exist before the ChangeResourceRecordSets that made it.
    pub changes: Copies<String, Option<ChangeStatus>>,
}

impl StaleReads {
    /// Drop every copy whose lag has passed by `now`.
    pub fn expire(&mut self, now: Duration) {
        self.clusters.expire(now);
        self.instances.expire(now);
        self.snapshots.expire(now);
        self.records.expire(now);
        self.changes.expire(now);
    }

    /// How many copies are kept (for tests: they must not pile up).
    pub fn len(&self) -> usize {
        self.clusters.len()
            + self.instances.len()
            + self.snapshots.len()
            + self.records.len()
            + self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The timeline note of a stale answer: `DescribeDBClusters orders-db answered as of 1s 200ms
/// ago (stale-reads)`.
pub fn note(operation: &str, resource: &str, age: Duration) -> String {
    format!(
        "{operation} {resource} answered as of {} ago (stale-reads)",
        super::time::fmt_dur(age)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_copy_is_served_until_its_lag_has_passed_then_dropped() {
        let mut c: Copies<&str, u32> = Copies::default();
        c.keep("a", 1, s(10), s(2));
        assert_eq!(c.get(&"a", s(10)).map(|x| x.state), Some(1));
        assert_eq!(c.get(&"a", s(11)).map(|x| x.taken), Some(s(10)));
        assert!(c.get(&"a", s(12)).is_none(), "the lag has passed");
        assert!(
            c.get(&"b", s(10)).is_none(),
            "other resources are unaffected"
        );
        c.expire(s(12));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn reads_only_move_forward_through_queued_copies() {
        let mut c: Copies<&str, u32> = Copies::default();
        c.keep("a", 1, s(0), s(5));
        // A second mutation with a shorter lag: not seen before the first one is.
        c.keep("a", 2, s(1), s(1));
        assert_eq!(c.get(&"a", s(3)).map(|x| x.state), Some(1));
        assert!(c.get(&"a", s(5)).is_none());
        c.keep("a", 3, s(6), s(2));
        c.keep("a", 4, s(7), s(2));
        assert_eq!(c.get(&"a", s(7)).map(|x| x.state), Some(3));
        assert_eq!(c.get(&"a", s(8)).map(|x| x.state), Some(4));
        c.expire(s(8));
        assert_eq!(c.len(), 1);
    }
}
