//! Pure decision for `dns.update` on records valued per region (`evacuate_region`,
//! `return_to_region`): the record sets of each record keep their routing policy, set
//! identifier, TTL and health check; only what they answer changes.
//!
//! - simple record: points at the first healthy region's value (the zone rules, by region);
//! - weighted sets (set identifier = region): the failed region's set goes to weight 0, and
//!   gets the record's `weight` back on failback (the weighted zone rules, by region);
//! - latency, failover, geolocation and multivalue sets: a set that answers the failed
//!   region's value is UPSERTed with the first healthy region's value, keeping `Region`,
//!   `Failover`, `GeoLocation` or `MultiValueAnswer`. Failback points a set back at its home
//!   region: a latency set's `Region`, PRIMARY the first region of the environment's order
//!   with a value, SECONDARY the second; geolocation and multivalue sets have no home and are
//!   restored exactly by `failover rollback` only.

use super::dns::{batch, decide_weighted, same_values};
use crate::call::{describe_record, Decision};
use crate::cloud::{
    ChangeAction, FailoverRole, RecordChange, RecordKey, RecordSet, RecordSpecOut, Routing,
};
use crate::runbook::bind::DnsRegionMove;
use crate::types::{Region, RunId, StepId, Zone};
use crate::world::World;
use std::collections::BTreeMap;

type Changes = Vec<(RecordChange, Option<RecordSet>)>;

/// What a step with `evacuate_region` or `return_to_region` decides for the records of its
/// group valued per region (records valued per zone are left to zone steps).
pub fn decide(
    step: &StepId,
    run_id: &RunId,
    hosted_zone: &str,
    records: &[RecordSpecOut],
    m: &DnsRegionMove,
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
    let mut changes: Changes = vec![];
    for spec in records {
        if spec.region_values.is_empty() {
            d.skips.push(format!(
                "record {} {} is valued per zone: a region step leaves it to the zone steps",
                spec.name, spec.rtype
            ));
            continue;
        }
        if spec.weighted {
            weighted(spec, m, existing, &mut changes, &mut d);
            continue;
        }
        let sets: Vec<&RecordSet> = existing
            .values()
            .filter(|r| r.key().name == spec.name && r.rtype == spec.rtype)
            .collect();
        if let Err(why) = check_sets(spec, &sets) {
            d.problems.push(why);
            continue;
        }
        match (&m.evacuate, &m.return_to) {
            (Some(failed), _) => evacuate(spec, failed, &m.healthy(), &sets, &mut changes, &mut d),
            (None, Some(back)) => return_to(spec, back, &m.regions, &sets, &mut changes, &mut d),
            (None, None) => {}
        }
    }
    let comment = match &m.evacuate {
        Some(_) => format!("failover run {run_id} step {step}"),
        None => format!("failover run {run_id} step {step} (failback)"),
    };
    batch(&mut d, hz, &comment, changes, wait);
    d
}

/// The records valued per zone of `records`, and a skip for each one valued per region (a zone
/// step leaves those to region steps). Borrowed as is when there is none.
pub fn zone_records<'a>(
    records: &'a [RecordSpecOut],
    d: &mut Decision,
) -> std::borrow::Cow<'a, [RecordSpecOut]> {
    if records.iter().all(|r| r.region_values.is_empty()) {
        return std::borrow::Cow::Borrowed(records);
    }
    let mut out = vec![];
    for r in records {
        if r.region_values.is_empty() {
            out.push(r.clone());
        } else {
            d.skips.push(format!(
                "record {} {} is valued per region: a zone step leaves it to `evacuate_region` / `return_to_region`",
                r.name, r.rtype
            ));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The record sets of a record this step can rewrite keeping their policy: no alias, no
/// policy it only names, no weighted sets on a record not declared weighted.
fn check_sets(spec: &RecordSpecOut, sets: &[&RecordSet]) -> Result<(), String> {
    for s in sets {
        let key = s.key();
        if let Some(a) = &s.alias {
            return Err(format!("record {key} is an alias to {}; this step writes plain values and would lose the alias: leave it out of the group", a.dns_name));
        }
        match &s.routing {
            Some(p) if !p.writable() => {
                return Err(format!("record {key} uses {p} routing, which this step does not rewrite (it would lose the policy)"))
            }
            None if s.set_identifier.is_some() => {
                return Err(format!("record {} {} has weighted record sets in Route 53 ({key}); set `weighted = true` on it in the environment file (set identifier = region), or leave it out of the group", spec.name, spec.rtype))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The region whose value `values` are, if any.
fn region_of<'a>(spec: &'a RecordSpecOut, values: &[String]) -> Option<&'a Region> {
    spec.region_values
        .iter()
        .find(|(_, v)| same_values(v, values))
        .map(|(r, _)| r)
}

fn list_regions(spec: &RecordSpecOut) -> String {
    spec.region_values
        .keys()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Evacuation: each set answering `failed`'s value answers the first healthy region's value
/// instead, everything else kept; an absent record is created as a simple one.
fn evacuate(
    spec: &RecordSpecOut,
    failed: &Region,
    healthy: &[Region],
    sets: &[&RecordSet],
    changes: &mut Changes,
    d: &mut Decision,
) {
    let Some(target) = healthy.iter().find(|r| spec.region_values.contains_key(*r)) else {
        d.problems.push(format!(
            "record {} {}: no healthy region has a value for it (values for: {}); add a value for another of the environment's `regions`",
            spec.name,
            spec.rtype,
            list_regions(spec)
        ));
        return;
    };
    let values = &spec.region_values[target];
    if sets.is_empty() {
        create(spec, values, changes, d);
        return;
    }
    for set in sets {
        let key = set.key();
        match region_of(spec, &set.values) {
            Some(r) if r == failed => {
                let next = RecordSet {
                    values: values.clone(),
                    ..(*set).clone()
                };
                d.expected
                    .push(format!("{}  (was {failed})", describe_record(&next)));
                changes.push((
                    RecordChange {
                        action: ChangeAction::Upsert,
                        record: next,
                    },
                    Some((*set).clone()),
                ));
            }
            Some(r) => {
                d.skips.push(format!(
                    "record {key} already points at {r} ({}): nothing to do",
                    set.values.join(", ")
                ));
                d.expected.push(describe_record(set));
            }
            None => d.problems.push(unknown_value(&key, set)),
        }
    }
}

/// Failback into `back`: each set whose home region is `back` answers its value again.
fn return_to(
    spec: &RecordSpecOut,
    back: &Region,
    regions: &[Region],
    sets: &[&RecordSet],
    changes: &mut Changes,
    d: &mut Decision,
) {
    let Some(values) = spec.region_values.get(back) else {
        d.skips.push(format!(
            "record {} {} has no value for {back}: nothing to do",
            spec.name, spec.rtype
        ));
        return;
    };
    if sets.is_empty() {
        if home_region(spec, regions, None) == Some(back) {
            create(spec, values, changes, d);
        }
        return;
    }
    for set in sets {
        let key = set.key();
        match home_region(spec, regions, set.routing.as_ref()) {
            None => d.skips.push(format!(
                "record {key} ({}) has no home region to return to: `failover rollback RUN` puts it back as the run found it",
                set.routing.as_ref().map(|p| p.to_string()).unwrap_or_default()
            )),
            Some(h) if h != back => d.skips.push(format!(
                "record {key}: its home region is {h}, not {back}: nothing to do"
            )),
            Some(_) if same_values(&set.values, values) => {
                d.skips.push(format!(
                    "record {key} already points at {back} ({}): nothing to do",
                    set.values.join(", ")
                ));
                d.expected.push(describe_record(set));
            }
            Some(_) => match region_of(spec, &set.values) {
                None => d.problems.push(unknown_value(&key, set)),
                Some(was) => {
                    let next = RecordSet {
                        values: values.clone(),
                        ..(*set).clone()
                    };
                    d.expected
                        .push(format!("{}  (was {was})", describe_record(&next)));
                    changes.push((
                        RecordChange {
                            action: ChangeAction::Upsert,
                            record: next,
                        },
                        Some((*set).clone()),
                    ));
                }
            },
        }
    }
}

/// The region a record set belongs to when nothing is evacuated: a simple record's preferred
/// region (the first of the environment's order with a value), a latency set's `Region`,
/// PRIMARY the preferred region and SECONDARY the next; none for geolocation and multivalue.
fn home_region<'a>(
    spec: &'a RecordSpecOut,
    regions: &[Region],
    routing: Option<&Routing>,
) -> Option<&'a Region> {
    let mut ordered = regions
        .iter()
        .filter_map(|r| spec.region_values.get_key_value(r).map(|(k, _)| k));
    match routing {
        None
        | Some(Routing::Failover {
            role: FailoverRole::Primary,
        }) => ordered.next(),
        Some(Routing::Failover {
            role: FailoverRole::Secondary,
        }) => ordered.nth(1),
        Some(Routing::Latency { region }) => spec
            .region_values
            .get_key_value(&Region::new(region.clone()))
            .map(|(k, _)| k),
        Some(_) => None,
    }
}

/// A simple record created pointing at `values`, with the environment's TTL.
fn create(spec: &RecordSpecOut, values: &[String], changes: &mut Changes, d: &mut Decision) {
    let rec = RecordSet {
        name: spec.name.clone(),
        rtype: spec.rtype.clone(),
        ttl: Some(spec.ttl),
        values: values.to_vec(),
        ..Default::default()
    };
    d.expected
        .push(format!("{} (created)", describe_record(&rec)));
    changes.push((
        RecordChange {
            action: ChangeAction::Upsert,
            record: rec,
        },
        None,
    ));
}

fn unknown_value(key: &RecordKey, set: &RecordSet) -> String {
    format!(
        "record {key} points at {}, which is not the value of any region in the environment file; it was changed by hand? Add the value to the group's `values`, or fix the record, then run again",
        set.values.join(", ")
    )
}

/// Weighted sets, one per region (set identifier = region): the weighted zone rules applied to
/// regions. The failed region's set goes to 0; failback gives `back` the record's weight.
fn weighted(
    spec: &RecordSpecOut,
    m: &DnsRegionMove,
    existing: &BTreeMap<RecordKey, RecordSet>,
    changes: &mut Changes,
    d: &mut Decision,
) {
    // A set identifier is a name either way: the zone rules read it as one.
    let by_name = RecordSpecOut {
        values: spec
            .region_values
            .iter()
            .map(|(r, v)| (Zone::new(r.as_str()), v.clone()))
            .collect(),
        region_values: BTreeMap::new(),
        ..spec.clone()
    };
    let evacuate: Vec<Zone> = m.evacuate.iter().map(|r| Zone::new(r.as_str())).collect();
    let weights: BTreeMap<Zone, i64> = m
        .return_to
        .iter()
        .map(|r| (Zone::new(r.as_str()), spec.weight))
        .collect();
    decide_weighted(&by_name, &evacuate, &weights, existing, changes, d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use crate::cloud::HostedZone;

    const W: &str = "us-west-2";
    const E: &str = "us-east-1";

    fn spec(name: &str, weighted: bool) -> RecordSpecOut {
        RecordSpecOut {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: 60,
            values: BTreeMap::new(),
            region_values: [(W, "api.usw2.example.com"), (E, "api.use1.example.com")]
                .into_iter()
                .map(|(r, v)| (Region::from(r), vec![v.to_string()]))
                .collect(),
            weighted,
            weight: 100,
            depends_on: vec![],
        }
    }

    fn set(value: &str, id: Option<&str>, routing: Option<Routing>) -> RecordSet {
        RecordSet {
            name: "api.shop.example.com.".into(),
            rtype: "CNAME".into(),
            ttl: Some(30),
            set_identifier: id.map(str::to_string),
            values: vec![value.into()],
            health_check_id: id.map(|i| format!("hc-{i}")),
            routing,
            ..Default::default()
        }
    }

    fn world(sets: Vec<RecordSet>) -> World {
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
            sets.into_iter().map(|r| (r.key(), r)).collect(),
        );
        w
    }

    fn mv(evacuate: Option<&str>, back: Option<&str>) -> DnsRegionMove {
        DnsRegionMove {
            evacuate: evacuate.map(Region::from),
            to: None,
            return_to: back.map(Region::from),
            regions: vec![Region::from(W), Region::from(E)],
        }
    }

    fn run(specs: &[RecordSpecOut], m: &DnsRegionMove, w: &World) -> Decision {
        decide(
            &"dns".into(),
            &"r1".into(),
            "shop.example.com.",
            specs,
            m,
            true,
            w,
        )
    }

    /// The changes of the decision's one call, with the previous sets it journals.
    fn changes(d: &Decision) -> Vec<(RecordSet, Option<RecordSet>)> {
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let mut out = vec![];
        for c in &d.calls {
            let Call::ChangeResourceRecordSets {
                changes, previous, ..
            } = c
            else {
                panic!("{c:?}")
            };
            for (c, (k, p)) in changes.iter().zip(previous) {
                assert_eq!(c.action, ChangeAction::Upsert);
                assert_eq!(&c.record.key(), k);
                out.push((c.record.clone(), p.clone()));
            }
        }
        out
    }

    fn latency(region: &str) -> Option<Routing> {
        Some(Routing::Latency {
            region: region.into(),
        })
    }

    fn failover(role: FailoverRole) -> Option<Routing> {
        Some(Routing::Failover { role })
    }

    #[test]
    fn a_simple_record_points_at_the_first_healthy_region_and_back() {
        let w = world(vec![set("api.usw2.example.com", None, None)]);
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(W), None),
            &w,
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.values, vec!["api.use1.example.com".to_string()]);
        assert_eq!(c[0].0.ttl, Some(30), "the record's TTL is kept");
        assert_eq!(c[0].1.as_ref().unwrap().values[0], "api.usw2.example.com");
        // Evacuating the region it does not point at: nothing to do.
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(E), None),
            &w,
        );
        assert!(d.calls.is_empty() && d.skips[0].contains("already points at us-west-2"));
        // Failback to its preferred region (the environment's first).
        let w = world(vec![set("api.use1.example.com", None, None)]);
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(None, Some(W)),
            &w,
        );
        assert_eq!(changes(&d)[0].0.values[0], "api.usw2.example.com");
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(None, Some(E)),
            &w,
        );
        assert!(d.calls.is_empty(), "{d:?}");
        assert!(
            d.skips[0].contains("home region is us-west-2"),
            "{:?}",
            d.skips
        );
    }

    #[test]
    fn latency_sets_answer_the_recovery_region_keeping_region_id_and_health_check() {
        let sets = vec![
            set("api.usw2.example.com", Some("usw2"), latency(W)),
            set("api.use1.example.com", Some("use1"), latency(E)),
        ];
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(W), None),
            &world(sets),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1, "the healthy region's set is left alone");
        let (next, prev) = (&c[0].0, c[0].1.as_ref().unwrap());
        assert_eq!(next.values, vec!["api.use1.example.com".to_string()]);
        assert_eq!(next.routing, latency(W), "Region = us-west-2 is kept");
        assert_eq!(next.set_identifier.as_deref(), Some("usw2"));
        assert_eq!(next.health_check_id.as_deref(), Some("hc-usw2"));
        assert_eq!(prev.values, vec!["api.usw2.example.com".to_string()]);
        // Failback: the set whose Region is us-west-2 answers us-west-2 again.
        let after = RecordSet { ..next.clone() };
        let sets = vec![after, set("api.use1.example.com", Some("use1"), latency(E))];
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(None, Some(W)),
            &world(sets),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.values, vec!["api.usw2.example.com".to_string()]);
        assert_eq!(c[0].0.routing, latency(W));
    }

    #[test]
    fn failover_primary_in_the_failed_region_is_rewritten_keeping_its_role_and_check() {
        let sets = vec![
            set(
                "api.usw2.example.com",
                Some("primary"),
                failover(FailoverRole::Primary),
            ),
            set(
                "api.use1.example.com",
                Some("secondary"),
                failover(FailoverRole::Secondary),
            ),
        ];
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(W), None),
            &world(sets.clone()),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.routing, failover(FailoverRole::Primary));
        assert_eq!(c[0].0.health_check_id.as_deref(), Some("hc-primary"));
        assert_eq!(c[0].0.values, vec!["api.use1.example.com".to_string()]);
        assert!(d
            .skips
            .iter()
            .any(|s| s.contains("[secondary] already points at us-east-1")));
        // Evacuating the SECONDARY's region: it answers the other region's value instead.
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(E), None),
            &world(sets),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.set_identifier.as_deref(), Some("secondary"));
        assert_eq!(c[0].0.values, vec!["api.usw2.example.com".to_string()]);
        // Failback to us-west-2: PRIMARY's home is the environment's first region.
        let moved = vec![
            set(
                "api.use1.example.com",
                Some("primary"),
                failover(FailoverRole::Primary),
            ),
            set(
                "api.use1.example.com",
                Some("secondary"),
                failover(FailoverRole::Secondary),
            ),
        ];
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(None, Some(W)),
            &world(moved),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.set_identifier.as_deref(), Some("primary"));
        assert_eq!(c[0].0.values, vec!["api.usw2.example.com".to_string()]);
    }

    #[test]
    fn weighted_sets_per_region_zero_the_failed_region_and_come_back() {
        let mut a = set("api.usw2.example.com", Some(W), None);
        a.weight = Some(100);
        let mut b = set("api.use1.example.com", Some(E), None);
        b.weight = Some(100);
        let d = run(
            &[spec("api.shop.example.com.", true)],
            &mv(Some(W), None),
            &world(vec![a.clone(), b.clone()]),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.set_identifier.as_deref(), Some(W));
        assert_eq!(c[0].0.weight, Some(0));
        assert_eq!(c[0].0.health_check_id.as_deref(), Some("hc-us-west-2"));
        a.weight = Some(0);
        let d = run(
            &[spec("api.shop.example.com.", true)],
            &mv(None, Some(W)),
            &world(vec![a, b]),
        );
        let c = changes(&d);
        assert_eq!((c.len(), c[0].0.weight), (1, Some(100)));
    }

    #[test]
    fn geolocation_and_multivalue_sets_are_repointed_and_have_no_home() {
        let geo = Some(Routing::Geolocation {
            continent: None,
            country: Some("US".into()),
            subdivision: None,
        });
        let sets = vec![
            set("api.usw2.example.com", Some("us"), geo.clone()),
            set(
                "api.use1.example.com",
                Some("mv"),
                Some(Routing::Multivalue),
            ),
        ];
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(Some(W), None),
            &world(sets),
        );
        let c = changes(&d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0.routing, geo);
        let d = run(
            &[spec("api.shop.example.com.", false)],
            &mv(None, Some(W)),
            &world(vec![c[0].0.clone()]),
        );
        assert!(d.calls.is_empty());
        assert!(d.skips[0].contains("has no home region"), "{:?}", d.skips);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let geoprox = set(
            "api.usw2.example.com",
            Some("x"),
            Some(Routing::Unsupported {
                name: "geoproximity".into(),
            }),
        );
        let mut w8 = set("api.usw2.example.com", Some(W), None);
        w8.weight = Some(1);
        let unknown = set("elsewhere.example.com", None, None);
        let table = [
            (geoprox, "uses geoproximity routing"),
            (w8, "set `weighted = true`"),
            (unknown, "not the value of any region"),
        ];
        for (s, want) in table {
            let d = run(
                &[spec("api.shop.example.com.", false)],
                &mv(Some(W), None),
                &world(vec![s]),
            );
            assert!(d.calls.is_empty());
            assert!(d.problems[0].contains(want), "{want}: {:?}", d.problems);
        }
        let mut only_w = spec("api.shop.example.com.", false);
        only_w.region_values.retain(|r, _| r.as_str() == W);
        let d = run(&[only_w], &mv(Some(W), None), &world(vec![]));
        assert_eq!(
            crate::readiness::classify(&d.problems[0]),
            crate::readiness::Cause::NoRecordValue
        );
    }

    #[test]
    fn zone_records_are_left_to_zone_steps_and_the_other_way_round() {
        let mut zonal = spec("www.shop.example.com.", false);
        zonal.values = std::mem::take(&mut zonal.region_values)
            .into_iter()
            .map(|(r, v)| (Zone::new(format!("{r}a")), v))
            .collect();
        let regional = spec("api.shop.example.com.", false);
        let d = run(
            &[zonal.clone(), regional.clone()],
            &mv(Some(W), None),
            &world(vec![]),
        );
        assert!(d.skips[0].contains("is valued per zone"), "{:?}", d.skips);
        assert_eq!(changes(&d).len(), 1, "the regional record is created");
        let mut d = Decision::default();
        let both = [zonal, regional];
        let kept = zone_records(&both, &mut d);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "www.shop.example.com.");
        assert!(d.skips[0].contains("is valued per region"));
    }
}
