//! Pure decision for `dns.update`: point each record of a group at a healthy zone's value,
//! or set the weights of weighted record sets, in batches within Route 53's limits.

use crate::call::{describe_record, Await, Call, Decision};
use crate::cloud::{ChangeAction, RecordChange, RecordKey, RecordSet, RecordSpecOut};
use crate::status::StepStatus;
use crate::types::{RunId, StepId, Zone};
use crate::world::World;
use std::collections::BTreeMap;

/// Route 53: at most 1,000 ResourceRecord elements per request (UPSERT counts twice) and
/// 32,000 characters of values.
pub const MAX_RECORDS_PER_REQUEST: usize = 1000;
pub const MAX_VALUE_CHARS_PER_REQUEST: usize = 32_000;

pub(super) fn same_values(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<String> = a
        .iter()
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    let mut b: Vec<String> = b
        .iter()
        .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    a.sort();
    b.sort();
    a == b
}

/// The records of a `dns.update` step split by their dependencies (`depends_on`, with
/// `records_after`): those whose databases are out of the evacuated zone (or that depend on
/// none) are ready; the others wait while a `records_after` step that could move them is still
/// running, and are a problem once every one has ended.
#[derive(Debug, Default)]
pub struct RecordSplit {
    pub ready: Vec<RecordSpecOut>,
    pub waiting: Vec<String>,
    pub stuck: Vec<String>,
}

impl RecordSplit {
    /// Add what waits and what is stuck to the step's decision. While something waits, the
    /// calls made are not waited for (INSYNC is awaited on the last pass).
    pub fn add_to(self, d: &mut Decision) {
        if !self.waiting.is_empty() {
            d.awaits
                .retain(|a| !matches!(a, Await::ChangeInsync { .. }));
        }
        d.waiting.extend(self.waiting);
        d.problems.extend(self.stuck);
    }
}

/// Where database `dep` stands: `Ok(())` out of the evacuated zones and available, `Err(why)`
/// otherwise.
pub fn dep_moved(dep: &str, evacuate: &[Zone], world: &World) -> Result<(), String> {
    let zone_of =
        |i: &crate::types::InstanceId| world.instances.get(i).and_then(|x| x.zone.clone());
    let (status, zone, what) = if let Some(c) =
        world.clusters.get(&crate::types::ClusterId::from(dep))
    {
        let w = c.writer().map(|m| m.instance.clone());
        (c.status.clone(), w.as_ref().and_then(zone_of), "writer")
    } else if let Some(i) = world.instances.get(&crate::types::InstanceId::from(dep)) {
        (i.status.clone(), i.zone.clone(), "primary")
    } else {
        return Err(format!("`{dep}` was not found (DescribeDBClusters and DescribeDBInstances returned nothing for it)"));
    };
    match zone {
        Some(z) if evacuate.contains(&z) => Err(format!("the {what} of `{dep}` is still in {z}")),
        Some(_) if status != crate::cloud::DbStatus::Available => {
            Err(format!("`{dep}` is {status}"))
        }
        Some(_) => Ok(()),
        None => Err(format!("the zone of the {what} of `{dep}` is unknown")),
    }
}

/// Split `records` by whether the databases they depend on have moved (see [`RecordSplit`]).
/// Without `records_after`, every record is ready (the step ran after its `after` steps).
pub fn ready_records(
    records: &[RecordSpecOut],
    records_after: &[StepId],
    evacuate: &[Zone],
    world: &World,
) -> RecordSplit {
    let mut split = RecordSplit::default();
    if records_after.is_empty() {
        split.ready = records.to_vec();
        return split;
    }
    let all_ended = records_after
        .iter()
        .all(|s| world.finished_steps.contains_key(s));
    let failed: Vec<&str> = records_after
        .iter()
        .filter(|s| {
            world
                .finished_steps
                .get(*s)
                .is_some_and(|st| !matches!(st, StepStatus::Succeeded | StepStatus::Skipped))
        })
        .map(|s| s.as_str())
        .collect();
    for r in records {
        let blocking: Vec<String> = r
            .depends_on
            .iter()
            .filter_map(|dep| dep_moved(dep, evacuate, world).err())
            .collect();
        if blocking.is_empty() {
            split.ready.push(r.clone());
        } else if all_ended && !failed.is_empty() {
            split.stuck.push(format!(
                "record {} was not moved: {}, and the failover step(s) it waits for did not succeed ({}); fail the database over, then run again",
                r.name,
                blocking.join("; "),
                failed.join(", ")
            ));
        } else if all_ended {
            // The failover steps did what they do; a database they do not cover is not this
            // step's to wait for (as a plain `after` would not).
            split.ready.push(r.clone());
        } else {
            split.waiting.push(format!(
                "record {} waits for its database(s): {}",
                r.name,
                blocking.join("; ")
            ));
        }
    }
    split
}

#[allow(clippy::too_many_arguments)]
pub fn decide_dns_update(
    step: &StepId,
    run_id: &RunId,
    hosted_zone: &str,
    records: &[RecordSpecOut],
    evacuate: &[Zone],
    healthy: &[Zone],
    weights: &BTreeMap<Zone, i64>,
    wait: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    let Some(hz) = world.hosted_zones.get(hosted_zone) else {
        d.problems.push(format!("hosted zone `{hosted_zone}` was not found in Route 53; check `hosted_zone` of the group in the environment file"));
        return d;
    };
    let empty = BTreeMap::new();
    let existing = world.records.get(&hz.id).unwrap_or(&empty);
    let mut changes: Vec<(RecordChange, Option<RecordSet>)> = vec![];
    for spec in records {
        if spec.weighted {
            decide_weighted(spec, evacuate, weights, existing, &mut changes, &mut d);
        } else {
            decide_simple(spec, evacuate, healthy, existing, &mut changes, &mut d);
        }
    }
    batch(
        &mut d,
        hz,
        &format!("failover run {run_id} step {step}"),
        changes,
        wait,
    );
    d
}

/// Failback (`return_to`): a simple record whose preferred zone (the first in the
/// environment's order, `zones`, with a value for it) is `zone` points back at it; a weighted
/// record gets `zone`'s weight back (the record's `weight`). Other records are left alone.
#[allow(clippy::too_many_arguments)]
pub fn decide_dns_return(
    step: &StepId,
    run_id: &RunId,
    hosted_zone: &str,
    records: &[RecordSpecOut],
    zone: &Zone,
    zones: &[Zone],
    wait: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    let Some(hz) = world.hosted_zones.get(hosted_zone) else {
        d.problems.push(format!("hosted zone `{hosted_zone}` was not found in Route 53; check `hosted_zone` of the group in the environment file"));
        return d;
    };
    let empty = BTreeMap::new();
    let existing = world.records.get(&hz.id).unwrap_or(&empty);
    let others: Vec<Zone> = zones.iter().filter(|z| *z != zone).cloned().collect();
    let mut changes: Vec<(RecordChange, Option<RecordSet>)> = vec![];
    for spec in records {
        if spec.weighted {
            let w = BTreeMap::from([(zone.clone(), spec.weight)]);
            decide_weighted(spec, &[], &w, existing, &mut changes, &mut d);
            continue;
        }
        let preferred = zones.iter().find(|z| spec.values.contains_key(*z));
        if preferred != Some(zone) {
            d.skips.push(format!(
                "record {}: its preferred zone is {}, not {zone}: nothing to do",
                spec.name,
                preferred.map(|z| z.as_str()).unwrap_or("none")
            ));
            continue;
        }
        decide_simple(
            spec,
            &others,
            std::slice::from_ref(zone),
            existing,
            &mut changes,
            &mut d,
        );
    }
    batch(
        &mut d,
        hz,
        &format!("failover run {run_id} step {step} (failback)"),
        changes,
        wait,
    );
    d
}

/// Put the changes into ChangeResourceRecordSets calls within Route 53's per-request limits
/// (ResourceRecord elements, UPSERT counting twice; characters of values), each with the
/// previous record sets of its changes, and an INSYNC await per call when `wait`.
pub(super) fn batch(
    d: &mut Decision,
    hz: &crate::cloud::HostedZone,
    comment: &str,
    changes: Vec<(RecordChange, Option<RecordSet>)>,
    wait: bool,
) {
    let mut current: Vec<(RecordChange, Option<RecordSet>)> = vec![];
    let (mut n_records, mut n_chars) = (0usize, 0usize);
    let flush = |current: &mut Vec<(RecordChange, Option<RecordSet>)>, d: &mut Decision| {
        if current.is_empty() {
            return;
        }
        let index = d.calls.len();
        d.calls.push(Call::ChangeResourceRecordSets {
            hosted_zone_id: hz.id.clone(),
            hosted_zone_name: hz.name.clone(),
            comment: comment.to_string(),
            changes: current.iter().map(|(c, _)| c.clone()).collect(),
            previous: current
                .iter()
                .map(|(c, p)| (c.record.key(), p.clone()))
                .collect(),
        });
        if wait {
            d.awaits.push(Await::ChangeInsync { call_index: index });
        }
        current.clear();
    };
    for (c, prev) in changes {
        let weight = if c.action == ChangeAction::Upsert {
            2
        } else {
            1
        };
        let recs = c.record.values.len().max(1) * weight;
        let chars: usize = c.record.values.iter().map(|v| v.len()).sum::<usize>() * weight;
        if !current.is_empty()
            && (n_records + recs > MAX_RECORDS_PER_REQUEST
                || n_chars + chars > MAX_VALUE_CHARS_PER_REQUEST)
        {
            flush(&mut current, d);
            n_records = 0;
            n_chars = 0;
        }
        n_records += recs;
        n_chars += chars;
        current.push((c, prev));
    }
    flush(&mut current, d);
}

fn decide_simple(
    spec: &RecordSpecOut,
    evacuate: &[Zone],
    healthy: &[Zone],
    existing: &BTreeMap<RecordKey, RecordSet>,
    changes: &mut Vec<(RecordChange, Option<RecordSet>)>,
    d: &mut Decision,
) {
    let key = RecordKey {
        name: spec.name.clone(),
        rtype: spec.rtype.clone(),
        set_identifier: None,
    };
    let current = existing.get(&key);
    if current.is_none() {
        // Record sets with a set identifier (weighted, failover, latency, geo...) under the same
        // name and type: a plain record cannot be created next to them.
        let ids: Vec<String> = existing
            .values()
            .filter(|r| {
                r.key().name == key.name && r.rtype == key.rtype && r.set_identifier.is_some()
            })
            .map(|r| {
                format!(
                    "{} ({})",
                    r.set_identifier.clone().unwrap_or_default(),
                    r.routing
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "weighted".into())
                )
            })
            .collect();
        if !ids.is_empty() {
            d.problems.push(format!(
                "record {key} is not a simple record: Route 53 has record sets with set identifiers for it ({}); set `weighted = true` on it in the environment file if they are weighted, or leave it out of the group",
                ids.join(", ")
            ));
            return;
        }
    }
    let target = healthy.iter().find(|z| spec.values.contains_key(*z));
    let Some(target) = target else {
        d.problems.push(format!("record {key}: no healthy zone has a value for it (values for: {}); add values for the other zones in the environment file", spec.values.keys().map(|z| z.as_str()).collect::<Vec<_>>().join(", ")));
        return;
    };
    let desired = RecordSet {
        name: spec.name.clone(),
        rtype: spec.rtype.clone(),
        ttl: Some(spec.ttl),
        set_identifier: None,
        weight: None,
        values: spec.values[target].clone(),
        alias: None,
        health_check_id: None,
        routing: None,
    };
    if let Some(policy) = current.and_then(|c| c.routing.as_ref()) {
        d.problems.push(format!("record {key} uses {policy} routing, which this step does not rewrite (it would lose the policy); point the group at weighted or simple records"));
        return;
    }
    match current {
        None => {
            d.expected
                .push(format!("{} (created)", describe_record(&desired)));
            changes.push((
                RecordChange {
                    action: ChangeAction::Upsert,
                    record: desired,
                },
                None,
            ));
        }
        Some(cur) => {
            let zone = spec
                .values
                .iter()
                .find(|(_, v)| same_values(v, &cur.values))
                .map(|(z, _)| z.clone());
            match zone {
                Some(z) if !evacuate.contains(&z) => {
                    d.skips.push(format!("record {key} already points at {z} ({}): nothing to do", cur.values.join(", ")));
                    d.expected.push(describe_record(cur));
                }
                Some(z) => {
                    let mut next = desired;
                    next.ttl = cur.ttl.or(next.ttl);
                    next.health_check_id = cur.health_check_id.clone();
                    d.expected.push(format!("{}  (was {z})", describe_record(&next)));
                    changes.push((RecordChange { action: ChangeAction::Upsert, record: next }, Some(cur.clone())));
                }
                None => d.problems.push(format!(
                    "record {key} points at {}, which is not the value of any zone in the environment file; it was changed by hand? Add the value to the group's `values`, or fix the record, then run again",
                    if cur.values.is_empty() { "an alias".to_string() } else { cur.values.join(", ") }
                )),
            }
        }
    }
}

pub(super) fn decide_weighted(
    spec: &RecordSpecOut,
    evacuate: &[Zone],
    weights: &BTreeMap<Zone, i64>,
    existing: &BTreeMap<RecordKey, RecordSet>,
    changes: &mut Vec<(RecordChange, Option<RecordSet>)>,
    d: &mut Decision,
) {
    let mut planned: Vec<(RecordSet, Option<RecordSet>)> = vec![];
    for (zone, values) in &spec.values {
        let key = RecordKey {
            name: spec.name.clone(),
            rtype: spec.rtype.clone(),
            set_identifier: Some(zone.to_string()),
        };
        let current = existing.get(&key);
        if let Some(policy) = current.and_then(|c| c.routing.as_ref()) {
            d.problems.push(format!("record {key} uses {policy} routing, which this step does not rewrite (it would lose the policy)"));
            return;
        }
        if let Some(alias) = current.and_then(|c| c.alias.as_ref()) {
            d.problems.push(format!("record {key} is an alias to {}; this step writes plain values and would lose the alias: leave it out of the group", alias.dns_name));
            return;
        }
        let desired_weight = if let Some(w) = weights.get(zone) {
            *w
        } else if evacuate.contains(zone) {
            0
        } else {
            // A zone already at 0 stays at 0: it may have been evacuated by an earlier run and
            // still be down. Bringing a zone back is a failback, done with explicit `weights`.
            current.and_then(|c| c.weight).unwrap_or(spec.weight)
        };
        let desired = RecordSet {
            name: spec.name.clone(),
            rtype: spec.rtype.clone(),
            ttl: current.and_then(|c| c.ttl).or(Some(spec.ttl)),
            set_identifier: Some(zone.to_string()),
            weight: Some(desired_weight),
            values: values.clone(),
            alias: None,
            health_check_id: current.and_then(|c| c.health_check_id.clone()),
            routing: None,
        };
        planned.push((desired, current.cloned()));
    }
    if planned.iter().all(|(r, _)| r.weight == Some(0)) {
        d.problems.push(format!(
            "record {} {}: every weight would be 0, which sends traffic nowhere; keep at least one zone above 0 (bring a recovered zone back with `weights = {{ \"<zone>\" = {} }}`)",
            spec.name, spec.rtype, spec.weight
        ));
        return;
    }
    for (desired, current) in planned {
        let key = desired.key();
        match &current {
            Some(cur)
                if cur.weight == desired.weight && same_values(&cur.values, &desired.values) =>
            {
                d.skips.push(format!(
                    "record {key} already has weight {}: nothing to do",
                    desired.weight.unwrap_or(0)
                ));
                d.expected.push(describe_record(cur));
            }
            _ => {
                d.expected.push(format!(
                    "{}{}",
                    describe_record(&desired),
                    current
                        .as_ref()
                        .map(|c| format!("  (was weight {})", c.weight.unwrap_or(0)))
                        .unwrap_or_else(|| "  (created)".into())
                ));
                changes.push((
                    RecordChange {
                        action: ChangeAction::Upsert,
                        record: desired,
                    },
                    current,
                ));
            }
        }
    }
}

/// Rollback: put each record set back as it was before the run, unless someone changed it
/// since the run (then refuse for that record, unless forced).
pub fn decide_restore(
    run_id: &RunId,
    hosted_zone_id: &str,
    restore: &[crate::runbook::bind::RestoreRecord],
    force: bool,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    let Some(hz) = world.hosted_zones.get(hosted_zone_id) else {
        d.problems.push(format!(
            "hosted zone `{hosted_zone_id}` was not found in Route 53; it may have been deleted"
        ));
        return d;
    };
    let empty = BTreeMap::new();
    let existing = world.records.get(&hz.id).unwrap_or(&empty);
    let mut changes: Vec<(RecordChange, Option<RecordSet>)> = vec![];
    for r in restore {
        let current = existing.get(&r.key);
        if current == r.before.as_ref() {
            d.skips.push(format!(
                "record {} is already as before the run: nothing to do",
                r.key
            ));
            continue;
        }
        if !force && current != r.set_by_run.as_ref() {
            d.problems.push(format!(
                "record {} was changed after the run (now {}); not restoring it. Check it, then use `failover rollback --force` to restore it anyway",
                r.key,
                current.map(describe_record).unwrap_or_else(|| "absent".into())
            ));
            continue;
        }
        match (&r.before, current) {
            (Some(before), _) => {
                changes.push((
                    RecordChange {
                        action: ChangeAction::Upsert,
                        record: before.clone(),
                    },
                    current.cloned(),
                ));
                d.expected
                    .push(format!("{}  (restored)", describe_record(before)));
            }
            (None, Some(cur)) => {
                changes.push((
                    RecordChange {
                        action: ChangeAction::Delete,
                        record: cur.clone(),
                    },
                    Some(cur.clone()),
                ));
                d.expected.push(format!(
                    "{} {} absent (it did not exist before the run)",
                    r.key.name, r.key.rtype
                ));
            }
            (None, None) => {}
        }
    }
    let hz = hz.clone();
    batch(
        &mut d,
        &hz,
        &format!("failover rollback {run_id}"),
        changes,
        true,
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::HostedZone;

    /// A world with cluster `db` whose writer `db-w` is in `zone`, in `status`.
    fn db_world(zone: &str, status: crate::cloud::DbStatus) -> World {
        use crate::cloud::{ClusterMember, ClusterState, InstanceState};
        let mut w = World::default();
        w.clusters.insert(
            "db".into(),
            ClusterState {
                id: "db".into(),
                status,
                engine: "aurora-postgresql".into(),
                members: vec![ClusterMember {
                    instance: "db-w".into(),
                    is_writer: true,
                    promotion_tier: 0,
                }],
            },
        );
        w.instances.insert(
            "db-w".into(),
            InstanceState {
                id: "db-w".into(),
                cluster: Some("db".into()),
                status: crate::cloud::DbStatus::Available,
                engine: "aurora-postgresql".into(),
                zone: Some(Zone::from(zone)),
                secondary_zone: None,
                multi_az: false,
            },
        );
        w
    }

    #[test]
    fn a_record_waits_for_its_database_only_while_its_failover_step_runs() {
        use crate::cloud::DbStatus;
        let mut on_db = spec("api.example.com.", false);
        on_db.depends_on = vec!["db".into()];
        let free = spec("www.example.com.", false);
        let records = [on_db, free];
        let after = [StepId::from("failover")];
        let evac = [Zone::from("us-west-2a")];
        let names = |v: &[RecordSpecOut]| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        // (writer zone, status, failover step ended as) -> (ready, waiting, stuck)
        let table = [
            (
                "us-west-2a",
                DbStatus::FailingOver,
                None,
                (vec!["www.example.com."], 1, 0),
            ),
            (
                "us-west-2b",
                DbStatus::FailingOver,
                None,
                (vec!["www.example.com."], 1, 0),
            ),
            (
                "us-west-2b",
                DbStatus::Available,
                None,
                (vec!["api.example.com.", "www.example.com."], 0, 0),
            ),
            (
                "us-west-2a",
                DbStatus::Available,
                Some(StepStatus::Failed),
                (vec!["www.example.com."], 0, 1),
            ),
            (
                "us-west-2a",
                DbStatus::Available,
                Some(StepStatus::Succeeded),
                (vec!["api.example.com.", "www.example.com."], 0, 0),
            ),
        ];
        for (zone, status, ended, (ready, waiting, stuck)) in table {
            let mut w = db_world(zone, status.clone());
            if let Some(st) = ended {
                w.finished_steps.insert("failover".into(), st);
            }
            let split = ready_records(&records, &after, &evac, &w);
            assert_eq!(names(&split.ready), ready, "{zone} {status:?} {ended:?}");
            assert_eq!(
                (split.waiting.len(), split.stuck.len()),
                (waiting, stuck),
                "{zone} {status:?} {ended:?}: {split:?}"
            );
        }
        // Without records_after every record is ready: the step ran after its `after` steps.
        let split = ready_records(
            &records,
            &[],
            &evac,
            &db_world("us-west-2a", DbStatus::Available),
        );
        assert_eq!(split.ready.len(), 2);
    }

    fn spec(name: &str, weighted: bool) -> RecordSpecOut {
        RecordSpecOut {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: 60,
            values: [
                ("us-west-2a", "a.example.com"),
                ("us-west-2b", "b.example.com"),
                ("us-west-2c", "c.example.com"),
            ]
            .into_iter()
            .map(|(z, v)| (Zone::from(z), vec![v.to_string()]))
            .collect(),
            region_values: BTreeMap::new(),
            weighted,
            depends_on: vec![],
            weight: 100,
        }
    }

    fn world_with(records: Vec<RecordSet>) -> World {
        let mut w = World::default();
        w.hosted_zones.insert(
            "shop.example.com.".into(),
            HostedZone {
                id: "Z1".into(),
                name: "shop.example.com.".into(),
            },
        );
        w.records.insert(
            "Z1".into(),
            records.into_iter().map(|r| (r.key(), r)).collect(),
        );
        w
    }

    fn rec(name: &str, value: &str, set: Option<&str>, weight: Option<i64>) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: Some(60),
            set_identifier: set.map(|s| s.into()),
            weight,
            values: vec![value.into()],
            alias: None,
            health_check_id: None,
            routing: None,
        }
    }

    fn zones(z: &[&str]) -> Vec<Zone> {
        z.iter().map(|s| Zone::from(*s)).collect()
    }

    /// The common case of these tests: evacuate us-west-2a, move to us-west-2b.
    fn evacuate_a(specs: &[RecordSpecOut], w: &World) -> Decision {
        decide_dns_update(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            specs,
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b"]),
            &BTreeMap::new(),
            true,
            w,
        )
    }

    #[test]
    fn a_record_with_no_value_for_a_healthy_zone_is_a_readiness_reason() {
        let w = world_with(vec![rec(
            "api.shop.example.com.",
            "a.example.com",
            None,
            None,
        )]);
        let mut only_a = spec("api.shop.example.com.", false);
        only_a.values.retain(|z, _| z.as_str() == "us-west-2a");
        let d = evacuate_a(&[only_a], &w);
        assert!(d.calls.is_empty());
        assert!(
            d.problems[0].contains("no healthy zone has a value"),
            "{:?}",
            d.problems
        );
        assert_eq!(
            crate::readiness::classify(&d.problems[0]),
            crate::readiness::Cause::NoRecordValue
        );
    }

    #[test]
    fn repoints_records_in_evacuated_zone_only() {
        let w = world_with(vec![
            rec("api.shop.example.com.", "a.example.com", None, None),
            rec("www.shop.example.com.", "b.example.com", None, None),
        ]);
        let d = decide_dns_update(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            &[
                spec("api.shop.example.com.", false),
                spec("www.shop.example.com.", false),
            ],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            &BTreeMap::new(),
            true,
            &w,
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.calls.len(), 1);
        let Call::ChangeResourceRecordSets {
            changes, previous, ..
        } = &d.calls[0]
        else {
            panic!()
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].record.values, vec!["b.example.com".to_string()]);
        assert_eq!(
            previous[0].1.as_ref().unwrap().values,
            vec!["a.example.com".to_string()]
        );
        assert!(d
            .skips
            .iter()
            .any(|s| s.contains("www.shop.example.com.") && s.contains("nothing to do")));
    }

    #[test]
    fn weighted_sets_zero_the_evacuated_zone() {
        let w = world_with(vec![
            rec(
                "www.shop.example.com.",
                "a.example.com",
                Some("us-west-2a"),
                Some(100),
            ),
            rec(
                "www.shop.example.com.",
                "b.example.com",
                Some("us-west-2b"),
                Some(100),
            ),
            rec(
                "www.shop.example.com.",
                "c.example.com",
                Some("us-west-2c"),
                Some(0),
            ),
        ]);
        let d = decide_dns_update(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            &[spec("www.shop.example.com.", true)],
            &zones(&["us-west-2a"]),
            &zones(&["us-west-2b", "us-west-2c"]),
            &BTreeMap::new(),
            true,
            &w,
        );
        let Call::ChangeResourceRecordSets { changes, .. } = &d.calls[0] else {
            panic!()
        };
        let by: BTreeMap<_, _> = changes
            .iter()
            .map(|c| {
                (
                    c.record.set_identifier.clone().unwrap(),
                    c.record.weight.unwrap(),
                )
            })
            .collect();
        assert_eq!(by.get("us-west-2a"), Some(&0));
        assert_eq!(
            by.get("us-west-2c"),
            None,
            "a zone at 0 (evacuated earlier?) is not brought back implicitly"
        );
        assert_eq!(
            by.get("us-west-2b"),
            None,
            "unchanged sets are not rewritten"
        );
        // Failback is explicit.
        let back: BTreeMap<Zone, i64> = [(Zone::from("us-west-2c"), 100)].into_iter().collect();
        let d = decide_dns_update(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            &[spec("www.shop.example.com.", true)],
            &[],
            &zones(&["us-west-2a", "us-west-2b", "us-west-2c"]),
            &back,
            true,
            &w,
        );
        let Call::ChangeResourceRecordSets { changes, .. } = &d.calls[0] else {
            panic!()
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].record.weight, Some(100));
    }

    #[test]
    fn refuses_all_zero_weights_and_unknown_values() {
        let w = world_with(vec![rec(
            "api.shop.example.com.",
            "elsewhere.example.com",
            None,
            None,
        )]);
        let all0: BTreeMap<Zone, i64> = zones(&["us-west-2a", "us-west-2b", "us-west-2c"])
            .into_iter()
            .map(|z| (z, 0))
            .collect();
        let d = decide_dns_update(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            &[spec("www.shop.example.com.", true)],
            &[],
            &[],
            &all0,
            true,
            &w,
        );
        assert!(d.problems[0].contains("every weight would be 0"));
        let d = evacuate_a(&[spec("api.shop.example.com.", false)], &w);
        assert!(d.problems[0].contains("not the value of any zone"));
    }

    #[test]
    fn regression_simple_record_hidden_behind_set_identifiers_is_refused() {
        let mut latency = rec("api.shop.example.com.", "a.example.com", Some("west"), None);
        latency.routing = Some(crate::cloud::Routing::Latency {
            region: "us-west-2".into(),
        });
        let w = world_with(vec![latency]);
        let d = evacuate_a(&[spec("api.shop.example.com.", false)], &w);
        assert!(d.calls.is_empty());
        assert!(
            d.problems[0].contains("is not a simple record")
                && d.problems[0].contains("west (latency us-west-2)"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn regression_health_check_is_kept_on_rewrite() {
        let mut r = rec("api.shop.example.com.", "a.example.com", None, None);
        r.health_check_id = Some("hc-1".into());
        let w = world_with(vec![r]);
        let d = evacuate_a(&[spec("api.shop.example.com.", false)], &w);
        let Call::ChangeResourceRecordSets { changes, .. } = &d.calls[0] else {
            panic!()
        };
        assert_eq!(changes[0].record.health_check_id.as_deref(), Some("hc-1"));
    }

    #[test]
    fn regression_weighted_alias_sets_are_refused() {
        let mut r = rec("www.shop.example.com.", "x", Some("us-west-2a"), Some(100));
        r.values = vec![];
        r.alias = Some(crate::cloud::AliasTarget {
            hosted_zone_id: "Z2".into(),
            dns_name: "lb.example.com".into(),
            evaluate_target_health: true,
        });
        let w = world_with(vec![r]);
        let d = evacuate_a(&[spec("www.shop.example.com.", true)], &w);
        assert!(d.calls.is_empty());
        assert!(
            d.problems[0].contains("is an alias to lb.example.com"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn regression_rollback_batches_within_route53_limits() {
        let mut recs = vec![];
        let mut restore = vec![];
        for i in 0..600 {
            let mut now = rec(
                &format!("r{i}.shop.example.com."),
                "b1.example.com",
                None,
                None,
            );
            now.values.push("b2.example.com".into());
            let mut before = now.clone();
            before.values = vec!["a1.example.com".into(), "a2.example.com".into()];
            restore.push(crate::runbook::bind::RestoreRecord {
                key: now.key(),
                before: Some(before),
                set_by_run: Some(now.clone()),
            });
            recs.push(now);
        }
        let w = world_with(recs);
        let d = decide_restore(&"r1".into(), "shop.example.com.", &restore, false, &w);
        let mut total = 0;
        for c in &d.calls {
            let Call::ChangeResourceRecordSets {
                changes, previous, ..
            } = c
            else {
                panic!()
            };
            let elements: usize = changes.iter().map(|c| c.record.values.len() * 2).sum();
            assert!(
                elements <= MAX_RECORDS_PER_REQUEST,
                "{elements} elements in one request"
            );
            assert_eq!(changes.len(), previous.len());
            total += changes.len();
        }
        assert_eq!(total, 600);
        assert!(d.calls.len() >= 3);
    }

    #[test]
    fn batches_respect_the_thousand_record_limit() {
        let mut recs = vec![];
        let mut specs = vec![];
        for i in 0..1200 {
            let n = format!("r{i}.shop.example.com.");
            recs.push(rec(&n, "a.example.com", None, None));
            specs.push(spec(&n, false));
        }
        let w = world_with(recs);
        let d = evacuate_a(&specs, &w);
        // UPSERT counts twice: 500 records per request.
        assert_eq!(d.calls.len(), 3);
        for c in &d.calls {
            let Call::ChangeResourceRecordSets { changes, .. } = c else {
                panic!()
            };
            assert!(changes.len() * 2 <= MAX_RECORDS_PER_REQUEST);
        }
        assert_eq!(d.awaits.len(), 3);
    }
}
