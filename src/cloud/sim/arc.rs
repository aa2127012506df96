//! ARC zonal shift in the simulated world: the managed resources of the topology
//! (`[[zonal_shift_resources]]`), their shifts on virtual time, and the answers ARC gives.
//!
//! - GetManagedResource: a resource marked `unregistered` (or not in the topology) answers
//!   `ResourceNotFoundException`; otherwise its active shifts and, with `autoshift`, the
//!   autoshift away from every zone that is down.
//! - StartZonalShift: `ConflictException` (`ZonalShiftAlreadyExists`) when the resource has an
//!   active shift; `ValidationException` outside 1 minute to 3 days or for an unknown zone id.
//!   The shift is active at once; the load balancer stops sending the zone new traffic a few
//!   seconds later ([`ARC_SHIFT_APPLIED_S`]), which the timeline notes.
//! - A shift expires on virtual time; CancelZonalShift of one that is no longer active answers
//!   `ConflictException` (`ZonalShiftStatusNotActive`), as ARC does.
//!
//! Pure state: the simulator's [`super::world::World`] owns it and calls it with the time.

use super::topology::{sim_zone_id, Topology};
use crate::cloud::model::ARC_SHIFT_APPLIED_S;
use crate::cloud::{CloudError, ErrorKind, ManagedResource, ZonalShift, ZonalShiftStatus};
use crate::types::Zone;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
struct Resource {
    autoshift: bool,
    shifts: Vec<ZonalShift>,
}

/// The ARC zonal shift state of one simulated account and region.
#[derive(Clone, Debug, Default)]
pub struct ArcState {
    resources: BTreeMap<String, Resource>,
    /// Zone id -> zone name.
    zones: BTreeMap<String, Zone>,
    next_id: u64,
}

fn error(op: &str, res: &str, code: &str, reason: &str, text: &str) -> CloudError {
    CloudError {
        kind: ErrorKind::classify(
            Some(code),
            Some(if code == "ThrottlingException" {
                429
            } else {
                400
            }),
        ),
        operation: op.to_string(),
        resource: res.to_string(),
        code: Some(code.to_string()),
        message: format!("{code}: {text} (reason {reason})"),
    }
}

impl ArcState {
    pub fn new(topo: &Topology) -> Self {
        let region = topo.region.to_string();
        ArcState {
            resources: topo
                .zonal_shift_resources
                .iter()
                .filter(|r| !r.unregistered)
                .map(|r| {
                    let res = Resource {
                        autoshift: r.autoshift,
                        shifts: vec![],
                    };
                    (r.arn.clone(), res)
                })
                .collect(),
            zones: topo
                .zones
                .iter()
                .filter_map(|z| Some((sim_zone_id(&region, &topo.zones, z)?, z.clone())))
                .collect(),
            next_id: 0,
        }
    }

    /// Shifts whose expiry has passed at `now_ms` are `EXPIRED`.
    fn expire(&mut self, now_ms: i64) {
        for r in self.resources.values_mut() {
            for s in &mut r.shifts {
                if s.status == ZonalShiftStatus::Active && s.expiry_ms <= now_ms {
                    s.status = ZonalShiftStatus::Expired;
                }
            }
        }
    }

    pub fn get_managed_resource(
        &mut self,
        arn: &str,
        now_ms: i64,
        down: &BTreeSet<Zone>,
    ) -> Result<ManagedResource, CloudError> {
        self.expire(now_ms);
        let zones = self.zones.clone();
        let Some(r) = self.resources.get(arn) else {
            return Err(not_found("GetManagedResource", arn));
        };
        let autoshifts_away_from = if r.autoshift {
            zones
                .iter()
                .filter(|(_, z)| down.contains(*z))
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            vec![]
        };
        Ok(ManagedResource {
            arn: arn.to_string(),
            autoshift_enabled: r.autoshift,
            autoshifts_away_from,
            shifts: r
                .shifts
                .iter()
                .filter(|s| s.status == ZonalShiftStatus::Active)
                .cloned()
                .collect(),
        })
    }

    pub fn list_zonal_shifts(
        &mut self,
        arn: &str,
        now_ms: i64,
    ) -> Result<Vec<ZonalShift>, CloudError> {
        self.expire(now_ms);
        Ok(self
            .resources
            .get(arn)
            .map(|r| r.shifts.clone())
            .unwrap_or_default())
    }

    /// Start a shift; returns it and how long until the load balancer applies it.
    pub fn start(
        &mut self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
        now_ms: i64,
        applied_in: Duration,
    ) -> Result<(ZonalShift, Duration), CloudError> {
        self.expire(now_ms);
        let op = "StartZonalShift";
        if !(60..=3 * 24 * 3600).contains(&expires_in.as_secs()) {
            return Err(error(
                op,
                arn,
                "ValidationException",
                "InvalidExpiresIn",
                "expiresIn must be 1 minute to 3 days",
            ));
        }
        if !self.zones.contains_key(away_from) {
            return Err(error(
                op,
                arn,
                "ValidationException",
                "InvalidAz",
                &format!("{away_from} is not an Availability Zone id of this region"),
            ));
        }
        if comment.chars().count() > 128 {
            return Err(error(
                op,
                arn,
                "ValidationException",
                "InvalidConditionType",
                "comment is longer than 128 characters",
            ));
        }
        self.next_id += 1;
        let id = format!("zs-{:08x}", self.next_id);
        let Some(r) = self.resources.get_mut(arn) else {
            return Err(not_found(op, arn));
        };
        if let Some(s) = r
            .shifts
            .iter()
            .find(|s| s.status == ZonalShiftStatus::Active)
        {
            return Err(error(
                op,
                arn,
                "ConflictException",
                "ZonalShiftAlreadyExists",
                &format!("zonal shift {} is already active on this resource", s.id),
            ));
        }
        let shift = ZonalShift {
            id,
            resource: arn.to_string(),
            away_from: away_from.to_string(),
            status: ZonalShiftStatus::Active,
            start_ms: now_ms,
            expiry_ms: now_ms + expires_in.as_millis() as i64,
            comment: comment.to_string(),
        };
        r.shifts.push(shift.clone());
        Ok((shift, applied_in))
    }

    pub fn cancel(&mut self, id: &str, now_ms: i64) -> Result<ZonalShift, CloudError> {
        self.expire(now_ms);
        let op = "CancelZonalShift";
        let Some(s) = self
            .resources
            .values_mut()
            .flat_map(|r| r.shifts.iter_mut())
            .find(|s| s.id == id)
        else {
            return Err(not_found(op, id));
        };
        if s.status != ZonalShiftStatus::Active {
            return Err(error(
                op,
                id,
                "ConflictException",
                "ZonalShiftStatusNotActive",
                &format!("zonal shift {id} is {}", s.status),
            ));
        }
        s.status = ZonalShiftStatus::Canceled;
        Ok(s.clone())
    }

    /// The zone a zone id names, for the timeline.
    pub fn zone_of(&self, id: &str) -> Option<&Zone> {
        self.zones.get(id)
    }

    /// Active shifts at `now_ms` (for the final state): (resource, zone id, shift id).
    pub fn active(&mut self, now_ms: i64) -> Vec<(String, String, String)> {
        self.expire(now_ms);
        self.resources
            .iter()
            .flat_map(|(arn, r)| {
                r.shifts
                    .iter()
                    .filter(|s| s.status == ZonalShiftStatus::Active)
                    .map(move |s| (arn.clone(), s.away_from.clone(), s.id.clone()))
            })
            .collect()
    }
}

fn not_found(op: &str, res: &str) -> CloudError {
    error(
        op,
        res,
        "ResourceNotFoundException",
        "-",
        &format!("{res} is not a managed resource of ARC zonal shift"),
    )
}

/// How long the simulator takes to apply a shift: drawn from [`ARC_SHIFT_APPLIED_S`].
pub fn applied_span() -> (Duration, Duration) {
    (
        Duration::from_secs(ARC_SHIFT_APPLIED_S.0),
        Duration::from_secs(ARC_SHIFT_APPLIED_S.1),
    )
}
