//! What must hold after an evacuation, checked on the simulated world's final state and on
//! the log of calls it received — never on what the engine believes it did.
//!
//! - `no-writer-in-failed-zone`: no Aurora writer and no Multi-AZ primary is in a failed zone
//!   (a zone the run evacuated, or one that is down or flapping at the end).
//! - `records-point-at-healthy-zones`: every zone-bound record points at a healthy zone's
//!   value; weighted records give every failed zone weight 0 and some healthy zone more.
//! - `nothing-done-twice`: no mutating call repeated an intent already carried out: a failover
//!   of a writer (or primary) that was already outside the failed zones, a second snapshot of
//!   the same source (by the same run, when several runs share the world) or a create for an
//!   existing snapshot id, a record UPSERT to the value it already had.
//! - `no-protected-traffic-shed`: no protected tier of the ladder (cart, checkout) is shed at
//!   the end, read from the shed state in the journal; checked by `simulate` when a run has a
//!   traffic step (`simulate::traffic_invariant`), not applicable otherwise. The simulated
//!   admin APIs cannot shed a protected tier either: it has no apply action to match.
//! - `global-one-writer-region` (topologies with global clusters): every global cluster has
//!   exactly one writer region, and no switchover or failover is left under way.
//! - `global-data-loss-reported` (same): every failover with data loss was preceded by the
//!   run reporting the data at risk for that global cluster.

use super::history::{History, Placements};
use super::timeline::{Effect, Event, TimelineEntry};
use super::world::FinalState;
use crate::cloud::DbStatus;
use crate::types::Zone;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvariantStatus {
    Held,
    Violated,
    NotApplicable,
}

#[derive(Clone, Debug, Serialize)]
pub struct InvariantResult {
    /// Stable identifier (`no-writer-in-failed-zone`).
    pub name: String,
    /// One line for people.
    pub title: String,
    pub status: InvariantStatus,
    /// What violates it, or why it does not apply.
    pub details: Vec<String>,
}

impl InvariantResult {
    fn from(name: &str, title: &str, violations: Vec<String>) -> Self {
        Self {
            name: name.into(),
            title: title.into(),
            status: if violations.is_empty() {
                InvariantStatus::Held
            } else {
                InvariantStatus::Violated
            },
            details: violations,
        }
    }
}

/// The zones a run must have left, and why each one failed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FailedZones {
    /// Zones the run was asked to evacuate.
    pub evacuated: BTreeSet<Zone>,
    /// Zones down (or flapping) when the run ended.
    pub down: BTreeSet<Zone>,
    /// Zones evacuated, then failed back into by a later run (`return_to`). With a failback,
    /// moves leave healthy zones on purpose: `nothing-done-twice` then judges repeated
    /// snapshots and record changes only, not whether a move left a failed zone.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub returned: BTreeSet<Zone>,
}

impl FailedZones {
    pub fn all(&self) -> BTreeSet<Zone> {
        self.evacuated.union(&self.down).cloned().collect()
    }

    pub fn contains(&self, z: &Zone) -> bool {
        self.evacuated.contains(z) || self.down.contains(z)
    }

    /// "evacuated", "down" or "evacuated and down".
    pub fn why(&self, z: &Zone) -> &'static str {
        match (self.evacuated.contains(z), self.down.contains(z)) {
            (true, true) => "evacuated and down",
            (true, false) => "evacuated",
            (false, true) => "down",
            (false, false) => "healthy",
        }
    }
}

fn stamp(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("+{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("+{:02}:{:02}", s / 60, s % 60)
    }
}

pub fn check(
    state: &FinalState,
    timeline: &[TimelineEntry],
    failed: &FailedZones,
) -> Vec<InvariantResult> {
    let mut out = vec![writers(state, failed), records(state, failed), nothing_twice(timeline, failed), InvariantResult {
        name: "no-protected-traffic-shed".into(),
        title: "no protected traffic shed".into(),
        status: InvariantStatus::NotApplicable,
        details: vec!["the runbook has no traffic.shed or traffic.restore step: nothing is shed, so there is nothing to check".into()],
    }];
    if !state.global_clusters.is_empty() {
        out.push(one_writer_region(state));
        out.push(data_loss_reported(state, timeline));
    }
    out
}

/// Every global cluster has exactly one writer region, and no switchover or failover is left
/// under way at the end.
fn one_writer_region(state: &FinalState) -> InvariantResult {
    let mut v = vec![];
    for g in &state.global_clusters {
        if g.writer_regions.len() != 1 {
            v.push(format!(
                "global cluster `{}` has {} writer region(s)",
                g.id,
                g.writer_regions.len()
            ));
        }
        if let Some(u) = &g.under_way {
            v.push(format!(
                "global cluster `{}` is not at rest: a {u} is still under way",
                g.id
            ));
        }
    }
    InvariantResult::from(
        "global-one-writer-region",
        "every global cluster has exactly one writer region, at rest",
        v,
    )
}

/// Every failover that lost writes was preceded by the run reporting the data at risk for
/// that global cluster (the replication lag read before the call).
fn data_loss_reported(state: &FinalState, timeline: &[TimelineEntry]) -> InvariantResult {
    let mut v = vec![];
    for l in &state.data_lost {
        let reported = timeline.iter().any(|e| {
            e.at_ms <= l.at_ms
                && matches!(&e.event, Event::Engine { progress: crate::progress::Progress::Skip { text, .. } }
                    if text.contains("data at risk") && text.contains(&format!("`{}`", l.global_cluster)))
        });
        if !reported {
            v.push(format!(
                "global cluster `{}` failed over from {} to {} losing about {:.1} s of writes, but no data at risk was reported before",
                l.global_cluster,
                l.from,
                l.to,
                l.lost_ms / 1000.0
            ));
        }
    }
    InvariantResult::from(
        "global-data-loss-reported",
        "every failover with data loss was reported with its data at risk",
        v,
    )
}

fn writers(state: &FinalState, failed: &FailedZones) -> InvariantResult {
    let mut v = vec![];
    for c in &state.clusters {
        if failed.contains(&c.zone) {
            let busy = if c.status == DbStatus::FailingOver {
                "; a failover is still in progress"
            } else {
                ""
            };
            v.push(format!(
                "cluster `{}`: writer `{}` is in {} ({}){busy}",
                c.id,
                c.writer,
                c.zone,
                failed.why(&c.zone)
            ));
        }
    }
    for i in &state.instances {
        if failed.contains(&i.zone) {
            v.push(format!(
                "instance `{}`: primary is in {} ({}), status {}",
                i.id,
                i.zone,
                failed.why(&i.zone),
                i.status
            ));
        }
    }
    InvariantResult::from(
        "no-writer-in-failed-zone",
        "no writer left in a failed zone",
        v,
    )
}

fn records(state: &FinalState, failed: &FailedZones) -> InvariantResult {
    let mut v = vec![];
    for r in &state.records {
        let what = format!("record {} {}", r.name, r.rtype);
        if r.weighted {
            for (z, w) in &r.weights {
                if *w > 0 && failed.contains(z) {
                    v.push(format!(
                        "{what} [{z}]: weight {w} sends traffic to {z} ({})",
                        failed.why(z)
                    ));
                }
            }
            if !r.zones.iter().any(|z| !failed.contains(z)) {
                v.push(format!("{what}: no healthy zone has a weight above 0, so it sends traffic nowhere healthy"));
            }
        } else if r.zones.is_empty() {
            v.push(format!(
                "{what} points at {}, which is no zone's value",
                if r.values.is_empty() {
                    "nothing (the record is missing)".to_string()
                } else {
                    r.values.join(", ")
                }
            ));
        } else {
            for z in r.zones.iter().filter(|z| failed.contains(z)) {
                v.push(format!(
                    "{what} points at {z} ({}): {}",
                    failed.why(z),
                    r.values.join(", ")
                ));
            }
        }
    }
    InvariantResult::from(
        "records-point-at-healthy-zones",
        "every record points at a healthy zone",
        v,
    )
}

fn nothing_twice(timeline: &[TimelineEntry], failed: &FailedZones) -> InvariantResult {
    let mut v = vec![];
    // (caller, "kind source") -> (when, snapshot id)
    type Source = (Option<String>, String);
    let mut snapshots: BTreeMap<Source, Vec<(Duration, String)>> = BTreeMap::new();
    for e in timeline {
        let Event::Api(call) = &e.event else { continue };
        let Some(effect) = &call.effect else { continue };
        let at = stamp(e.at());
        match effect {
            Effect::FailoverStarted { cluster, writer_zone_before, target, .. } if failed.returned.is_empty() && !failed.contains(writer_zone_before) => v.push(format!(
                "{at} FailoverDBCluster `{cluster}` to `{target}`: its writer was already in {writer_zone_before}, outside the failed zones; one failover was enough"
            )),
            Effect::RebootStarted { instance, primary_zone_before } if failed.returned.is_empty() && !failed.contains(primary_zone_before) => v.push(format!(
                "{at} RebootDBInstance `{instance}` with failover: its primary was already in {primary_zone_before}, outside the failed zones"
            )),
            // One snapshot per source and run: with several runs sharing the world (their
            // calls name their caller), each run's safety net is its own.
            Effect::SnapshotStarted { kind, id, source } => snapshots.entry((call.caller.clone(), format!("{kind:?} {source}"))).or_default().push((e.at(), id.clone())),
            Effect::SnapshotAlreadyExists { id, source, .. } => v.push(format!("{at} a second create of snapshot `{id}` of `{source}` (it already existed)")),
            Effect::RecordsChanged { change_id, unchanged, changed, .. } if !unchanged.is_empty() => v.push(format!(
                "{at} change {change_id} rewrote {} record set(s) with the value they already had: {}{}",
                unchanged.len(),
                unchanged.join(", "),
                if changed.is_empty() { " (the whole change was a repeat)" } else { "" }
            )),
            _ => {}
        }
    }
    for ((caller, source), ids) in snapshots.into_iter().filter(|(_, ids)| ids.len() > 1) {
        v.push(format!(
            "{} snapshots of {}{} ({}) where one was wanted",
            ids.len(),
            source
                .split_once(' ')
                .map(|(_, s)| format!("`{s}`"))
                .unwrap_or_default(),
            caller.map(|c| format!(" by run {c}")).unwrap_or_default(),
            ids.iter()
                .map(|(t, id)| format!("{id} at {}", stamp(*t)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    InvariantResult::from("nothing-done-twice", "nothing done twice", v)
}

/// Time from the start until the last writer, primary or record left the failed zones for
/// good: `Some(0)` if nothing was ever in them, `None` if something still is. One pass over
/// the history's deltas, counting what is in a failed zone.
pub fn time_to_recover(history: &History, failed: &FailedZones) -> Option<Duration> {
    let bad = |zones: &std::collections::BTreeSet<crate::types::Zone>| {
        zones.iter().any(|z| failed.contains(z))
    };
    let mut inside: usize = history.start().values().filter(|z| bad(z)).count();
    let mut cur: Placements = history.start().clone();
    // The first state after the last bad one is when everything was out.
    let mut recovered = Duration::ZERO;
    for (at, delta) in history.deltas() {
        let was_bad = inside > 0;
        for (k, z) in delta {
            let before = cur.insert(k.clone(), z.clone());
            if before.as_ref().is_some_and(&bad) {
                inside -= 1;
            }
            if bad(z) {
                inside += 1;
            }
        }
        if was_bad && inside == 0 {
            recovered = *at;
        }
    }
    (inside == 0).then_some(recovered)
}

/// The first time nothing was placed in `zone` (every writer, primary and record out of it),
/// whatever came back later; `None`: something stayed in it. Zero when nothing ever was.
pub fn first_out(history: &History, zone: &crate::types::Zone) -> Option<Duration> {
    let mut cur: Placements = history.start().clone();
    let inside = |p: &Placements| p.values().filter(|z| z.contains(zone)).count();
    if inside(&cur) == 0 {
        return Some(Duration::ZERO);
    }
    for (at, delta) in history.deltas() {
        for (k, z) in delta {
            cur.insert(k.clone(), z.clone());
        }
        if inside(&cur) == 0 {
            return Some(*at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placements(items: &[(&str, &[&str])]) -> Placements {
        items
            .iter()
            .map(|(k, zs)| (k.to_string(), zs.iter().map(|z| Zone::from(*z)).collect()))
            .collect()
    }

    #[test]
    fn recovery_time_is_when_the_last_item_left() {
        let failed = FailedZones {
            evacuated: [Zone::from("a")].into_iter().collect(),
            down: BTreeSet::new(),
            returned: BTreeSet::new(),
        };
        let h = vec![
            (
                Duration::ZERO,
                placements(&[("cluster x", &["a"]), ("record r", &["a"])]),
            ),
            (
                Duration::from_secs(30),
                placements(&[("cluster x", &["c"]), ("record r", &["a"])]),
            ),
            (
                Duration::from_secs(95),
                placements(&[("cluster x", &["c"]), ("record r", &["b"])]),
            ),
        ];
        assert_eq!(
            time_to_recover(&History::from_snapshots(&h), &failed),
            Some(Duration::from_secs(95))
        );
        assert_eq!(
            time_to_recover(&History::from_snapshots(&h[..2]), &failed),
            None
        );
        let never = FailedZones {
            evacuated: [Zone::from("z")].into_iter().collect(),
            down: BTreeSet::new(),
            returned: BTreeSet::new(),
        };
        assert_eq!(
            time_to_recover(&History::from_snapshots(&h), &never),
            Some(Duration::ZERO)
        );
    }
}
