//! `arc.zonal_shift` and `arc.cancel_zonal_shift`: ARC zonal shifts of load balancers and
//! Auto Scaling groups, decided against the managed resources observed (GetManagedResource,
//! ListZonalShifts). Pure.
//!
//! ARC keeps at most one active customer shift per resource: a resource already shifted away
//! from the zone is skipped (whoever started the shift; a shift whose answer was lost shows
//! here too, with the run id in its comment), one shifted away from another zone is a problem
//! the step names. A cancel only touches active shifts; an expired one is nothing to cancel.

use crate::call::{arc_expires_in, Call, Decision};
use crate::cloud::{ManagedResource, ZonalShift, ZonalShiftStatus};
use crate::runbook::bind::BoundAction;
use crate::types::{RunId, Zone};
use crate::world::World;
use std::collections::BTreeMap;
use std::time::Duration;

/// The decision of an `arc.*` step (another action decides nothing here).
pub fn decide(action: &BoundAction, world: &World) -> Decision {
    match action {
        BoundAction::ZonalShift {
            resources,
            away_from,
            zone_ids,
            expires_in,
            comment,
            ..
        } => decide_zonal_shift(resources, away_from, zone_ids, *expires_in, comment, world),
        BoundAction::CancelZonalShift {
            resources,
            away_from,
            zone_ids,
            shift_ids,
            started_by,
            ..
        } => {
            let scope = CancelScope {
                away_from: away_from.as_ref(),
                shift_ids,
                started_by: started_by.as_ref(),
            };
            decide_cancel(resources, &scope, zone_ids, world)
        }
        _ => Decision::default(),
    }
}

/// How a resource not registered with ARC is reported, with what to do.
fn not_registered(arn: &str) -> String {
    format!(
        "`{arn}` is not registered with ARC zonal shift (GetManagedResource does not know it): turn zonal shift on for it (load balancer attribute `zonal_shift.config.enabled=true`; Auto Scaling groups through `aws autoscaling update-auto-scaling-group --availability-zone-impairment-policy`), or remove it from the group"
    )
}

/// Who started a shift, for messages: this tool's runs name themselves in the comment.
fn by(s: &ZonalShift) -> String {
    if s.comment.is_empty() {
        "no comment".to_string()
    } else {
        format!("\"{}\"", s.comment)
    }
}

fn active(m: &ManagedResource) -> impl Iterator<Item = &ZonalShift> {
    m.shifts
        .iter()
        .filter(|s| s.status == ZonalShiftStatus::Active)
}

/// StartZonalShift away from the one zone in `away_from` for each resource not shifted yet.
pub fn decide_zonal_shift(
    resources: &[String],
    away_from: &[Zone],
    zone_ids: &BTreeMap<Zone, String>,
    expires_in: Duration,
    comment: &str,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    let zone = match away_from {
        [z] => z,
        [] => {
            d.problems
                .push("no zone to shift traffic away from: pass one zone".into());
            return d;
        }
        many => {
            let list: Vec<&str> = many.iter().map(|z| z.as_str()).collect();
            d.problems.push(format!(
                "ARC keeps one active zonal shift per resource, away from one zone; {} were given ({}): run the step for one zone",
                many.len(),
                list.join(", ")
            ));
            return d;
        }
    };
    let Some(zone_id) = zone_ids.get(zone) else {
        d.problems.push(format!(
            "the group gives no Availability Zone id for {zone}: add it to its `zone_ids`"
        ));
        return d;
    };
    for arn in resources {
        let Some(m) = world.managed.get(arn) else {
            d.problems.push(not_registered(arn));
            continue;
        };
        let shifts: Vec<&ZonalShift> = active(m).collect();
        if let Some(s) = shifts.iter().find(|s| &s.away_from == zone_id) {
            d.skips.push(format!(
                "{arn}: already shifted away from {zone} ({zone_id}) by zonal shift {} ({})",
                s.id,
                by(s)
            ));
            continue;
        }
        if let Some(s) = shifts.first() {
            d.problems.push(format!(
                "{arn}: zonal shift {} moves its traffic away from {} ({}); ARC allows one active shift per resource: cancel it (aws arc-zonal-shift cancel-zonal-shift --zonal-shift-id {}) if {zone} is the zone to leave",
                s.id,
                s.away_from,
                by(s),
                s.id
            ));
            continue;
        }
        if m.autoshifts_away_from.contains(zone_id) {
            d.expected.push(format!(
                "{arn}: a zonal autoshift already moves traffic away from {zone}; this shift keeps it away when the autoshift ends"
            ));
        }
        d.calls.push(Call::StartZonalShift {
            resource: arn.clone(),
            away_from: zone.clone(),
            away_from_id: zone_id.clone(),
            expires_in,
            comment: comment.to_string(),
        });
    }
    if !resources.is_empty() && d.problems.is_empty() {
        d.expected.push(format!(
            "{} resource(s) serve no traffic from {zone} ({zone_id}) for {} or until the shift is canceled",
            resources.len(),
            arc_expires_in(expires_in)
        ));
    }
    d
}

/// Which shifts a cancel is about.
pub struct CancelScope<'a> {
    /// Shifts away from this zone (failback).
    pub away_from: Option<&'a Zone>,
    /// Shifts with these ids (rollback: the ids the run's outcomes journaled).
    pub shift_ids: &'a [String],
    /// Shifts whose comment names this run (rollback: a start whose answer was lost).
    pub started_by: Option<&'a RunId>,
}

/// CancelZonalShift of the active shifts in scope; shifts that already ended are skipped.
pub fn decide_cancel(
    resources: &[String],
    scope: &CancelScope<'_>,
    zone_ids: &BTreeMap<Zone, String>,
    world: &World,
) -> Decision {
    let mut d = Decision::default();
    let zone_id = match scope.away_from {
        Some(z) => match zone_ids.get(z) {
            Some(id) => Some(id),
            None => {
                d.problems.push(format!(
                    "the group gives no Availability Zone id for {z}: add it to its `zone_ids`"
                ));
                return d;
            }
        },
        None => None,
    };
    let in_scope = |s: &ZonalShift| {
        scope.shift_ids.contains(&s.id)
            || scope
                .started_by
                .is_some_and(|r| s.comment.contains(r.as_str()))
            || zone_id.is_some_and(|z| &s.away_from == z)
    };
    for arn in resources {
        let Some(m) = world.managed.get(arn) else {
            d.skips.push(format!(
                "{arn}: not registered with ARC zonal shift: no shift to cancel"
            ));
            continue;
        };
        let mut any = false;
        for s in m.shifts.iter().filter(|s| in_scope(s)) {
            any = true;
            if s.status == ZonalShiftStatus::Active {
                d.calls.push(Call::CancelZonalShift {
                    resource: arn.clone(),
                    zonal_shift_id: s.id.clone(),
                    away_from_id: s.away_from.clone(),
                });
            } else {
                d.skips.push(format!(
                    "{arn}: zonal shift {} away from {} is {} already: nothing to cancel",
                    s.id, s.away_from, s.status
                ));
            }
        }
        if !any {
            let what = match (scope.away_from, zone_id) {
                (Some(z), Some(id)) => format!("away from {z} ({id})"),
                _ => "of this run".to_string(),
            };
            d.skips
                .push(format!("{arn}: no zonal shift {what}: nothing to cancel"));
        }
    }
    if !d.calls.is_empty() {
        d.expected.push(format!(
            "{} zonal shift(s) canceled: the resources serve traffic from every zone again",
            d.calls.len()
        ));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const LB: &str = "arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/1";
    const ASG: &str =
        "arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:u:autoScalingGroupName/web";

    fn ids() -> BTreeMap<Zone, String> {
        [("us-west-2a", "usw2-az2"), ("us-west-2b", "usw2-az1")]
            .into_iter()
            .map(|(z, i)| (Zone::from(z), i.to_string()))
            .collect()
    }

    fn shift(id: &str, away: &str, status: ZonalShiftStatus, comment: &str) -> ZonalShift {
        ZonalShift {
            id: id.into(),
            resource: LB.into(),
            away_from: away.into(),
            status,
            start_ms: 0,
            expiry_ms: 3_600_000,
            comment: comment.into(),
        }
    }

    fn world(shifts: Vec<ZonalShift>) -> World {
        let mut w = World::default();
        for arn in [LB, ASG] {
            w.managed.insert(
                arn.into(),
                ManagedResource {
                    arn: arn.into(),
                    ..Default::default()
                },
            );
        }
        if let Some(m) = w.managed.get_mut(LB) {
            m.shifts = shifts;
        }
        w
    }

    fn start(w: &World, zones: &[&str]) -> Decision {
        let zones: Vec<Zone> = zones.iter().map(|z| Zone::from(*z)).collect();
        decide_zonal_shift(
            &[LB.to_string(), ASG.to_string()],
            &zones,
            &ids(),
            Duration::from_secs(7200),
            "failover run r1 step shift",
            w,
        )
    }

    #[test]
    fn every_resource_not_shifted_is_shifted_away_from_the_zone_id() {
        let d = start(&world(vec![]), &["us-west-2a"]);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.calls.len(), 2);
        let Call::StartZonalShift {
            away_from_id,
            expires_in,
            ..
        } = &d.calls[0]
        else {
            panic!("{:?}", d.calls[0])
        };
        assert_eq!(
            (away_from_id.as_str(), *expires_in),
            ("usw2-az2", Duration::from_secs(7200))
        );
        assert!(d.calls[0].describe().contains("ExpiresIn=2h"));
    }

    #[test]
    fn a_resource_already_shifted_away_from_the_zone_is_skipped_whoever_started_it() {
        // A lost answer: the shift exists with this run's comment; or someone else's shift.
        for comment in ["failover run r1 step shift", "manual by oncall"] {
            let w = world(vec![shift(
                "s-1",
                "usw2-az2",
                ZonalShiftStatus::Active,
                comment,
            )]);
            let d = start(&w, &["us-west-2a"]);
            assert_eq!(d.calls.len(), 1, "only the other resource: {:?}", d.calls);
            assert!(d.skips[0]
                .contains("already shifted away from us-west-2a (usw2-az2) by zonal shift s-1"));
        }
        // An expired shift away from the zone does not count.
        let w = world(vec![shift(
            "s-0",
            "usw2-az2",
            ZonalShiftStatus::Expired,
            "",
        )]);
        assert_eq!(start(&w, &["us-west-2a"]).calls.len(), 2);
    }

    #[test]
    fn a_shift_away_from_another_zone_is_a_problem_naming_it() {
        let w = world(vec![shift("s-9", "usw2-az1", ZonalShiftStatus::Active, "")]);
        let d = start(&w, &["us-west-2a"]);
        assert_eq!(d.calls.len(), 1);
        assert!(d.problems[0].contains("zonal shift s-9 moves its traffic away from usw2-az1"));
        assert!(d.problems[0].contains("cancel-zonal-shift --zonal-shift-id s-9"));
    }

    #[test]
    fn unregistered_resources_several_zones_and_unknown_zone_ids_are_problems() {
        let mut w = world(vec![]);
        w.managed.remove(ASG);
        let d = start(&w, &["us-west-2a"]);
        assert_eq!(d.calls.len(), 1);
        assert!(d.problems[0].contains("is not registered with ARC zonal shift"));
        let d = start(&world(vec![]), &["us-west-2a", "us-west-2b"]);
        assert!(
            d.calls.is_empty() && d.problems[0].contains("one active zonal shift per resource")
        );
        let d = start(&world(vec![]), &["us-west-2c"]);
        assert!(
            d.calls.is_empty() && d.problems[0].contains("no Availability Zone id for us-west-2c")
        );
    }

    #[test]
    fn a_cancel_touches_active_shifts_in_scope_only() {
        let w = world(vec![
            shift(
                "ours",
                "usw2-az2",
                ZonalShiftStatus::Active,
                "failover run r1 step x",
            ),
            shift(
                "old",
                "usw2-az2",
                ZonalShiftStatus::Expired,
                "failover run r0",
            ),
            shift("theirs", "usw2-az1", ZonalShiftStatus::Active, "manual"),
        ]);
        let resources = [LB.to_string(), ASG.to_string()];
        // Failback into us-west-2a: every active shift away from it.
        let z = Zone::from("us-west-2a");
        let scope = CancelScope {
            away_from: Some(&z),
            shift_ids: &[],
            started_by: None,
        };
        let d = decide_cancel(&resources, &scope, &ids(), &w);
        let ids_called: Vec<String> = d
            .calls
            .iter()
            .map(|c| match c {
                Call::CancelZonalShift { zonal_shift_id, .. } => zonal_shift_id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids_called, vec!["ours"]);
        assert!(d
            .skips
            .iter()
            .any(|s| s.contains("zonal shift old away from usw2-az2 is EXPIRED already")));
        // Rollback of run r1: by journaled id, or by the run id in the comment (lost answer).
        let run = RunId::from("r1");
        for scope in [
            CancelScope {
                away_from: None,
                shift_ids: &["ours".to_string()],
                started_by: None,
            },
            CancelScope {
                away_from: None,
                shift_ids: &[],
                started_by: Some(&run),
            },
        ] {
            let d = decide_cancel(&resources, &scope, &ids(), &w);
            assert_eq!(d.calls.len(), 1, "{:?}", d.calls);
        }
        // An expired shift of the run is not an error: nothing to cancel.
        let d = decide_cancel(
            &resources,
            &CancelScope {
                away_from: None,
                shift_ids: &["old".to_string()],
                started_by: None,
            },
            &ids(),
            &w,
        );
        assert!(d.calls.is_empty() && d.problems.is_empty());
    }
}
