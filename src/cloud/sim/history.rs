//! Where things served from over a simulation: the placements at the start, then one delta per
//! event that moved something (a failover completed, a DNS change), so memory and time grow
//! with the number of events, not with events x resources.
//!
//! Readers replay it: [`History::replay`] visits the placements after each event in order,
//! [`History::snapshots`] materialises them all (small worlds and tests only: that copy is
//! events x resources).

use crate::types::Zone;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Where each tracked thing serves from: `cluster X` -> writer zone, `instance X` -> primary
/// zone, `record NAME TYPE` -> zones receiving traffic.
pub type Placements = BTreeMap<String, BTreeSet<Zone>>;

/// One event's changes: each key's new zones.
pub type Delta = Vec<(String, BTreeSet<Zone>)>;

/// The placements at the start and each event's changes, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    start: Placements,
    /// The current placements (the start with every delta applied), kept to tell a change
    /// from a no-op and to answer [`History::last`] without a replay.
    current: Placements,
    deltas: Vec<(Duration, Delta)>,
}

impl History {
    pub fn new(start: Placements) -> Self {
        Self {
            current: start.clone(),
            start,
            deltas: vec![],
        }
    }

    /// A history from full snapshots (tests, and readers that have them): the first is the
    /// start, each later one is stored as its difference from the one before.
    pub fn from_snapshots(snapshots: &[(Duration, Placements)]) -> Self {
        let mut h = Self::new(snapshots.first().map(|s| s.1.clone()).unwrap_or_default());
        for (at, p) in snapshots.iter().skip(1) {
            let mut changes: Delta = p
                .iter()
                .filter(|(k, z)| h.current.get(*k) != Some(*z))
                .map(|(k, z)| (k.clone(), z.clone()))
                .collect();
            // A key that disappeared serves from nowhere.
            changes.extend(
                h.current
                    .keys()
                    .filter(|k| !p.contains_key(*k))
                    .map(|k| (k.clone(), BTreeSet::new())),
            );
            h.record(*at, changes);
        }
        h
    }

    /// Record that at `at` these keys serve from these zones; entries that change nothing are
    /// dropped, and an event that changes nothing is not recorded. Whether anything changed.
    pub fn record(&mut self, at: Duration, changes: Delta) -> bool {
        let changed: Delta = changes
            .into_iter()
            .filter(|(k, z)| self.current.get(k) != Some(z))
            .collect();
        if changed.is_empty() {
            return false;
        }
        for (k, z) in &changed {
            self.current.insert(k.clone(), z.clone());
        }
        self.deltas.push((at, changed));
        true
    }

    pub fn start(&self) -> &Placements {
        &self.start
    }

    /// The placements now (after the last event).
    pub fn last(&self) -> &Placements {
        &self.current
    }

    /// Each event's time and changes, in order.
    pub fn deltas(&self) -> &[(Duration, Delta)] {
        &self.deltas
    }

    /// How many states it holds: the start and one per event.
    pub fn len(&self) -> usize {
        1 + self.deltas.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Visit the placements at the start (time 0) and after each event, in order, each with
    /// the keys that event changed (all keys for the start). One copy of the placements is
    /// kept and updated in place.
    pub fn replay(
        &self,
        mut visit: impl FnMut(Duration, &Placements, &[(String, BTreeSet<Zone>)]),
    ) {
        let mut cur = self.start.clone();
        let all: Delta = self
            .start
            .iter()
            .map(|(k, z)| (k.clone(), z.clone()))
            .collect();
        visit(Duration::ZERO, &cur, &all);
        for (at, delta) in &self.deltas {
            for (k, z) in delta {
                cur.insert(k.clone(), z.clone());
            }
            visit(*at, &cur, delta);
        }
    }

    /// Every state in full (events x resources in memory: for small worlds and tests).
    pub fn snapshots(&self) -> Vec<(Duration, Placements)> {
        let mut out = vec![];
        self.replay(|at, p, _| out.push((at, p.clone())));
        out
    }

    /// Roughly how many (key, zone set) entries it stores: linear in resources + events.
    pub fn stored_entries(&self) -> usize {
        self.start.len() + self.deltas.iter().map(|(_, d)| d.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &[&str])]) -> Placements {
        items
            .iter()
            .map(|(k, zs)| (k.to_string(), zs.iter().map(|z| Zone::from(*z)).collect()))
            .collect()
    }

    #[test]
    fn deltas_replay_to_the_same_snapshots() {
        let snaps = vec![
            (
                Duration::ZERO,
                p(&[("cluster x", &["a"]), ("record r", &["a"])]),
            ),
            (
                Duration::from_secs(30),
                p(&[("cluster x", &["c"]), ("record r", &["a"])]),
            ),
            (
                Duration::from_secs(95),
                p(&[("cluster x", &["c"]), ("record r", &["b", "c"])]),
            ),
        ];
        let h = History::from_snapshots(&snaps);
        assert_eq!(h.snapshots(), snaps);
        assert_eq!(h.len(), 3);
        assert_eq!(h.stored_entries(), 4, "the start, then one key per event");
        assert_eq!(h.last(), &snaps[2].1);
    }

    #[test]
    fn an_event_that_changes_nothing_is_not_recorded() {
        let mut h = History::new(p(&[("cluster x", &["a"])]));
        assert!(!h.record(
            Duration::from_secs(1),
            vec![("cluster x".into(), p(&[("k", &["a"])])["k"].clone())]
        ));
        assert_eq!(h.len(), 1);
        assert!(h.record(
            Duration::from_secs(2),
            vec![("cluster x".into(), BTreeSet::new())]
        ));
        assert_eq!(h.len(), 2);
    }
}
