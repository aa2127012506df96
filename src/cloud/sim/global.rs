//! Aurora Global Database in the simulated world: the global clusters of the topology
//! (`[[global_clusters]]`), the health of each region, the switchovers and failovers on
//! virtual time, the replication lag, and the answers RDS and CloudWatch give.
//!
//! - SwitchoverGlobalCluster: the global cluster is `switching-over` (FailoverState `pending`,
//!   no data loss) for [`model::GLOBAL_SWITCHOVER_S`]; it completes only while both regions'
//!   control planes work: with the primary (or target) region impaired or down it stays under
//!   way, re-checked every [`STUCK_RECHECK`], and completes once both are healthy again.
//! - FailoverGlobalCluster (AllowDataLoss): `failing-over` for [`model::GLOBAL_FAILOVER_S`],
//!   whatever the old primary's region does (it may be down); it supersedes a switchover
//!   stuck under way. The writes not yet replicated at the call (the lag then) are lost, and
//!   recorded. A second failover while one is under way is refused.
//! - Errors as RDS answers them: `GlobalClusterNotFoundFault` (404) for an unknown id,
//!   `InvalidGlobalClusterStateFault` for an operation under way, `InvalidParameterValue`
//!   for a target that is no member or already the primary.
//! - Replication lag (`AuroraGlobalDBReplicationLag` / `AuroraGlobalDBRPOLag`, emitted by the
//!   secondary clusters): a small figure drawn per global cluster
//!   ([`model::GLOBAL_REPLICATION_LAG_MS`]), plus the time the primary's region has been
//!   impaired (times [`model::GLOBAL_LAG_GROWTH_IMPAIRED`]) or down (all of it: nothing
//!   replicates). The primary has no datapoint.
//!
//! Pure state: the simulator's [`super::world::World`] owns it, draws its durations and
//! calls it with the time.

use super::topology::Topology;
use crate::cloud::model;
use crate::cloud::{
    CloudError, DbStatus, ErrorKind, GlobalClusterState, GlobalFailoverState, GlobalMember,
};
use crate::types::{GlobalClusterId, Region};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub use super::regions::{GlobalClusterSpec, GlobalMemberSpec};

/// How often a switchover that cannot complete (a region impaired) is looked at again.
pub const STUCK_RECHECK: Duration = Duration::from_secs(30);

/// How a region fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionHealth {
    Healthy,
    /// Control plane failing, data plane degraded (`region-impaired`).
    Impaired,
    /// Unreachable (`region-down`).
    Down,
}

/// A switchover or failover under way.
#[derive(Clone, Debug)]
struct Op {
    data_loss: bool,
    from: Region,
    to: Region,
    epoch: u64,
    /// The lag at the call: what a failover loses.
    lost_ms: f64,
    /// The switchover was noted as unable to complete.
    stuck_noted: bool,
}

#[derive(Clone, Debug)]
struct GState {
    spec: GlobalClusterSpec,
    writer: Region,
    base_lag_ms: f64,
    op: Option<Op>,
}

/// A failover that lost the writes not yet replicated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataLoss {
    pub global_cluster: GlobalClusterId,
    pub from: Region,
    pub to: Region,
    /// Virtual time of the FailoverGlobalCluster call (ms).
    pub at_ms: u64,
    /// Writes lost: the replication lag at the call (ms).
    pub lost_ms: f64,
}

/// A global cluster at the end of a simulation.
#[derive(Clone, Debug, Serialize)]
pub struct GlobalFinal {
    pub id: GlobalClusterId,
    /// The regions whose member is the writer (exactly one at rest).
    pub writer_regions: Vec<Region>,
    pub status: DbStatus,
    /// A switchover or failover still under way.
    pub under_way: Option<String>,
}

/// What to schedule after a call or a check: `Done { id, epoch }` at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub id: GlobalClusterId,
    pub epoch: u64,
}

/// The global databases of one simulated account.
#[derive(Clone, Debug, Default)]
pub struct GlobalSim {
    clusters: BTreeMap<GlobalClusterId, GState>,
    /// Region faults in force: region -> fault index -> (how, since).
    faults: BTreeMap<Region, BTreeMap<usize, (RegionHealth, Duration)>>,
    epoch: u64,
    pub losses: Vec<DataLoss>,
}

fn error(op: &str, res: &str, code: &str, status: u16, text: &str) -> CloudError {
    CloudError {
        kind: ErrorKind::classify(Some(code), Some(status)),
        operation: op.to_string(),
        resource: res.to_string(),
        code: Some(code.to_string()),
        message: format!("{code}: {text} (HTTP {status})"),
    }
}

impl GlobalSim {
    /// The topology's global clusters, each with its base lag (`lag(id)` draws it).
    pub fn new(topo: &Topology, mut lag: impl FnMut(&GlobalClusterId) -> f64) -> Self {
        GlobalSim {
            clusters: topo
                .multi_region
                .global_clusters
                .iter()
                .map(|g| {
                    let s = GState {
                        spec: g.clone(),
                        writer: g.writer_region.clone(),
                        base_lag_ms: lag(&g.id),
                        op: None,
                    };
                    (g.id.clone(), s)
                })
                .collect(),
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    // ---- region health -------------------------------------------------------------------

    /// Region fault `i` begins (`on`) or ends.
    pub fn region_fault(
        &mut self,
        i: usize,
        region: &Region,
        how: RegionHealth,
        now: Duration,
        on: bool,
    ) {
        let f = self.faults.entry(region.clone()).or_default();
        if on {
            f.insert(i, (how, now));
        } else {
            f.remove(&i);
        }
    }

    /// How `region` is now, and since when (the earliest fault in force).
    pub fn health(&self, region: &Region) -> (RegionHealth, Option<Duration>) {
        let Some(f) = self.faults.get(region).filter(|f| !f.is_empty()) else {
            return (RegionHealth::Healthy, None);
        };
        let worst = f
            .values()
            .map(|(h, _)| *h)
            .max()
            .unwrap_or(RegionHealth::Healthy);
        (worst, f.values().map(|(_, t)| *t).min())
    }

    // ---- replication lag -----------------------------------------------------------------

    /// The replication lag of the global cluster now (ms): its base figure plus how far
    /// the secondaries fell behind while the primary's region was impaired or down.
    pub fn lag_ms(&self, id: &GlobalClusterId, now: Duration) -> Option<f64> {
        let g = self.clusters.get(id)?;
        Some(g.base_lag_ms + self.behind_ms(&g.writer, now))
    }

    fn behind_ms(&self, writer: &Region, now: Duration) -> f64 {
        let Some(f) = self.faults.get(writer) else {
            return 0.0;
        };
        f.values()
            .map(|(how, since)| {
                let rate = match how {
                    RegionHealth::Down => 1.0,
                    RegionHealth::Impaired => model::GLOBAL_LAG_GROWTH_IMPAIRED,
                    RegionHealth::Healthy => 0.0,
                };
                now.saturating_sub(*since).as_secs_f64() * 1000.0 * rate
            })
            .fold(0.0, f64::max)
    }

    /// A CloudWatch datapoint of `metric` for the member cluster `cluster` in `region`:
    /// the lag for a secondary, `None` for the primary (it emits none) or an unknown cluster.
    pub fn metric(
        &self,
        metric: &str,
        region: &Region,
        cluster: &str,
        now: Duration,
    ) -> Option<f64> {
        if !matches!(
            metric,
            "AuroraGlobalDBReplicationLag" | "AuroraGlobalDBRPOLag"
        ) {
            return None;
        }
        let (id, g) = self.clusters.iter().find(|(_, g)| {
            g.spec
                .members
                .iter()
                .any(|m| m.cluster.as_str() == cluster && &m.region == region)
        })?;
        if &g.writer == region {
            return None;
        }
        self.lag_ms(id, now)
    }

    // ---- the API -------------------------------------------------------------------------

    /// DescribeGlobalClusters of one id: `None` when there is no such global cluster.
    pub fn describe(&self, id: &GlobalClusterId) -> Option<GlobalClusterState> {
        let g = self.clusters.get(id)?;
        Some(GlobalClusterState {
            id: id.clone(),
            status: status_of(g),
            members: g
                .spec
                .members
                .iter()
                .map(|m| GlobalMember {
                    cluster_arn: m.arn(),
                    region: m.region.clone(),
                    is_writer: m.region == g.writer,
                })
                .collect(),
            failover: g.op.as_ref().map(|o| GlobalFailoverState {
                status: if o.data_loss {
                    "failing-over"
                } else {
                    "pending"
                }
                .into(),
                from_region: Some(o.from.clone()),
                to_region: Some(o.to.clone()),
                data_loss_allowed: o.data_loss,
            }),
        })
    }

    /// The member `target_arn` of global cluster `id`, checked for a move: its region.
    fn target(
        &self,
        op: &str,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<Region, CloudError> {
        let res = format!("{id} (target {target_arn})");
        let Some(g) = self.clusters.get(id) else {
            return Err(error(
                op,
                &res,
                "GlobalClusterNotFoundFault",
                404,
                &format!("Global cluster {id} not found"),
            ));
        };
        let Some(m) = g
            .spec
            .members
            .iter()
            .find(|m| m.arn() == target_arn || m.cluster.as_str() == target_arn)
        else {
            return Err(error(
                op,
                &res,
                "InvalidParameterValue",
                400,
                &format!("The cluster {target_arn} is not a member of global cluster {id}"),
            ));
        };
        if m.region == g.writer {
            return Err(error(op, &res, "InvalidParameterValue", 400, &format!("The cluster {target_arn} is already the primary cluster of global cluster {id}")));
        }
        Ok(m.region.clone())
    }

    /// SwitchoverGlobalCluster, accepted: it completes at `now + took` if both regions can.
    pub fn switchover(
        &mut self,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<Due, CloudError> {
        const OP: &str = "SwitchoverGlobalCluster";
        let to = self.target(OP, id, target_arn)?;
        self.epoch += 1;
        let epoch = self.epoch;
        let g = self.clusters.get_mut(id).expect("checked by target");
        if g.op.is_some() {
            return Err(error(OP, &format!("{id} (target {target_arn})"), "InvalidGlobalClusterStateFault", 400, &format!("Global cluster {id} is not in the available state: a switchover or failover is in progress")));
        }
        g.op = Some(Op {
            data_loss: false,
            from: g.writer.clone(),
            to,
            epoch,
            lost_ms: 0.0,
            stuck_noted: false,
        });
        Ok(Due {
            id: id.clone(),
            epoch,
        })
    }

    /// FailoverGlobalCluster with AllowDataLoss, accepted: it supersedes a switchover under
    /// way and completes after its time whatever the old primary's region does.
    pub fn failover(
        &mut self,
        id: &GlobalClusterId,
        target_arn: &str,
        now: Duration,
    ) -> Result<(Due, Option<String>), CloudError> {
        const OP: &str = "FailoverGlobalCluster";
        let to = self.target(OP, id, target_arn)?;
        let lost_ms = self.lag_ms(id, now).unwrap_or(0.0);
        self.epoch += 1;
        let epoch = self.epoch;
        let g = self.clusters.get_mut(id).expect("checked by target");
        let superseded = match &g.op {
            Some(o) if o.data_loss => {
                return Err(error(
                    OP,
                    &format!("{id} (target {target_arn})"),
                    "InvalidGlobalClusterStateFault",
                    400,
                    &format!("Global cluster {id} is already failing over"),
                ));
            }
            Some(o) => Some(format!(
                "the switchover of `{id}` from {} to {} under way is abandoned",
                o.from, o.to
            )),
            None => None,
        };
        g.op = Some(Op {
            data_loss: true,
            from: g.writer.clone(),
            to,
            epoch,
            lost_ms,
            stuck_noted: false,
        });
        Ok((
            Due {
                id: id.clone(),
                epoch,
            },
            superseded,
        ))
    }

    /// The operation `due` was scheduled for is due: complete it (`Ok(note)`) or, a
    /// switchover whose regions cannot cooperate, keep it under way (`Err(note)`: look again
    /// after [`STUCK_RECHECK`]; the note only the first time). `None`: nothing to do (it was
    /// superseded).
    pub fn due(&mut self, due: &Due, now: Duration) -> Option<Result<String, Option<String>>> {
        let (from_h, to_h) = {
            let o = self.clusters.get(&due.id)?.op.as_ref()?;
            (self.health(&o.from).0, self.health(&o.to).0)
        };
        let g = self.clusters.get_mut(&due.id)?;
        let o = g.op.as_mut().filter(|o| o.epoch == due.epoch)?;
        let id = &due.id;
        if !o.data_loss && (from_h != RegionHealth::Healthy || to_h != RegionHealth::Healthy) {
            let bad = if from_h != RegionHealth::Healthy {
                &o.from
            } else {
                &o.to
            };
            let note = (!o.stuck_noted).then(|| format!(
                "global cluster `{id}`: the switchover from {} to {} cannot complete: {bad}'s control plane does not cooperate; it stays under way",
                o.from, o.to
            ));
            o.stuck_noted = true;
            return Some(Err(note));
        }
        if o.data_loss && to_h == RegionHealth::Down {
            let note = format!("global cluster `{id}`: the failover to {} FAILED: the region is down; the writer stays in {}", o.to, o.from);
            g.op = None;
            return Some(Ok(note));
        }
        let o = g.op.take()?;
        g.writer = o.to.clone();
        if o.data_loss {
            self.losses.push(DataLoss {
                global_cluster: id.clone(),
                from: o.from.clone(),
                to: o.to.clone(),
                at_ms: now.as_millis() as u64,
                lost_ms: o.lost_ms,
            });
            Some(Ok(format!(
                "global cluster `{id}`: failover complete, writer in {}; the writes not replicated from {} are lost (about {:.1} s)",
                o.to, o.from, o.lost_ms / 1000.0
            )))
        } else {
            Some(Ok(format!(
                "global cluster `{id}`: switchover complete, writer in {} (no data lost)",
                o.to
            )))
        }
    }

    /// Writer regions per global cluster, for the history of placements.
    pub fn writers(&self) -> Vec<(GlobalClusterId, Region)> {
        self.clusters
            .iter()
            .map(|(id, g)| (id.clone(), g.writer.clone()))
            .collect()
    }

    pub fn final_state(&self) -> Vec<GlobalFinal> {
        self.clusters
            .iter()
            .map(|(id, g)| GlobalFinal {
                id: id.clone(),
                writer_regions: g
                    .spec
                    .members
                    .iter()
                    .filter(|m| m.region == g.writer)
                    .map(|m| m.region.clone())
                    .collect(),
                status: status_of(g),
                under_way: g.op.as_ref().map(|o| {
                    format!(
                        "{} from {} to {}",
                        if o.data_loss {
                            "failover"
                        } else {
                            "switchover"
                        },
                        o.from,
                        o.to
                    )
                }),
            })
            .collect()
    }
}

fn status_of(g: &GState) -> DbStatus {
    match &g.op {
        None => DbStatus::Available,
        Some(o) if o.data_loss => DbStatus::from("failing-over"),
        Some(_) => DbStatus::from("switching-over"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPO: &str = r#"
name = "two"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b"]
regions = ["us-west-2", "us-east-1"]
[region_zones]
"us-east-1" = ["us-east-1a"]
[[global_clusters]]
id = "g"
writer_region = "us-west-2"
members = [
  { cluster = "g-west", region = "us-west-2", instances = [{ id = "w1", zone = "us-west-2a" }] },
  { cluster = "g-east", region = "us-east-1", instances = [{ id = "e1", zone = "us-east-1a" }] },
]
"#;
    const EAST: &str = "arn:aws:rds:us-east-1:123456789012:cluster:g-east";
    const WEST: &str = "arn:aws:rds:us-west-2:123456789012:cluster:g-west";

    fn sim() -> GlobalSim {
        let t = Topology::parse(TOPO, "two.toml").unwrap();
        GlobalSim::new(&t, |_| 500.0)
    }

    fn code(e: CloudError) -> String {
        e.code.unwrap_or_default()
    }

    #[test]
    fn rds_refuses_what_it_refuses() {
        let mut g = sim();
        let id = GlobalClusterId::from("g");
        let e = g.switchover(&"nope".into(), EAST).unwrap_err();
        assert_eq!(
            (code(e.clone()), e.kind),
            ("GlobalClusterNotFoundFault".into(), ErrorKind::NotFound)
        );
        assert_eq!(
            code(
                g.switchover(&id, "arn:aws:rds:eu-west-1:1:cluster:x")
                    .unwrap_err()
            ),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(g.switchover(&id, WEST).unwrap_err()),
            "InvalidParameterValue"
        );
        g.switchover(&id, EAST).unwrap();
        let e = g.switchover(&id, EAST).unwrap_err();
        assert_eq!(code(e.clone()), "InvalidGlobalClusterStateFault");
        assert_eq!(e.kind, ErrorKind::InvalidState);
        let s = g.describe(&id).unwrap();
        assert_eq!(s.status.as_str(), "switching-over");
        assert!(!s.failover.as_ref().unwrap().data_loss_allowed);
    }

    #[test]
    fn a_failover_supersedes_a_stuck_switchover_and_is_not_made_twice() {
        let mut g = sim();
        let id = GlobalClusterId::from("g");
        let west = Region::from("us-west-2");
        g.region_fault(0, &west, RegionHealth::Impaired, Duration::ZERO, true);
        let due = g.switchover(&id, EAST).unwrap();
        let at = Duration::from_secs(200);
        assert!(
            matches!(g.due(&due, at), Some(Err(Some(_)))),
            "stuck, noted"
        );
        assert!(matches!(g.due(&due, at), Some(Err(None))), "noted once");
        let (due2, superseded) = g.failover(&id, EAST, at).unwrap();
        assert!(superseded.is_some());
        assert_eq!(
            code(g.failover(&id, EAST, at).unwrap_err()),
            "InvalidGlobalClusterStateFault"
        );
        assert_eq!(g.due(&due, at), None, "the switchover is gone");
        assert!(matches!(
            g.due(&due2, at + Duration::from_secs(60)),
            Some(Ok(_))
        ));
        assert!(g
            .describe(&id)
            .unwrap()
            .writable_in(&Region::from("us-east-1")));
        assert_eq!(g.losses.len(), 1);
        // 500 ms base + 200 s impaired at half speed.
        assert!(
            (g.losses[0].lost_ms - 100_500.0).abs() < 1.0,
            "{:?}",
            g.losses
        );
    }

    #[test]
    fn a_switchover_completes_once_the_region_is_back() {
        let mut g = sim();
        let id = GlobalClusterId::from("g");
        let west = Region::from("us-west-2");
        g.region_fault(3, &west, RegionHealth::Down, Duration::ZERO, true);
        let due = g.switchover(&id, EAST).unwrap();
        assert!(matches!(
            g.due(&due, Duration::from_secs(120)),
            Some(Err(_))
        ));
        g.region_fault(
            3,
            &west,
            RegionHealth::Down,
            Duration::from_secs(150),
            false,
        );
        assert!(matches!(g.due(&due, Duration::from_secs(150)), Some(Ok(_))));
        assert!(g.losses.is_empty());
        assert_eq!(
            g.final_state()[0].writer_regions,
            vec![Region::from("us-east-1")]
        );
    }
}
