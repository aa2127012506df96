//! The regions of a topology besides its home region, and its Aurora global databases:
//! `regions = ["us-west-2", "us-east-1"]` (the home `region` first; default: it alone),
//! `[region_zones]` (the zones of each other region), and `[[global_clusters]]` (member
//! clusters, each in a region with its instances in that region's zones, and the region of
//! the writer). Checked with every other problem of the file (`topology::Topology::parse`).
//!
//! ```toml
//! regions = ["us-west-2", "us-east-1"]
//! [region_zones]
//! "us-east-1" = ["us-east-1a", "us-east-1b"]
//!
//! [[global_clusters]]
//! id = "orders-global"
//! group = "orders_global"
//! writer_region = "us-west-2"
//! members = [
//!   { cluster = "orders-west", region = "us-west-2", instances = [{ id = "orders-w1", zone = "us-west-2a", tier = 0 }] },
//!   { cluster = "orders-east", region = "us-east-1", instances = [{ id = "orders-e1", zone = "us-east-1a", tier = 0 }] },
//! ]
//! ```

use super::raw::RawGlobalCluster;
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region, Zone};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The account the simulated ARNs name.
pub const SIM_ACCOUNT: &str = "123456789012";

/// An instance of an Aurora cluster: its zone and promotion tier (regional clusters and the
/// member clusters of global ones alike).
#[derive(Clone, Debug, Serialize)]
pub struct MemberSpec {
    pub id: InstanceId,
    pub zone: Zone,
    pub tier: i32,
}

/// An Aurora global database of the topology.
#[derive(Clone, Debug, Serialize)]
pub struct GlobalClusterSpec {
    pub id: GlobalClusterId,
    pub engine: String,
    pub group: String,
    /// The region of the primary cluster at the start.
    pub writer_region: Region,
    pub members: Vec<GlobalMemberSpec>,
}

/// One member cluster of a global database.
#[derive(Clone, Debug, Serialize)]
pub struct GlobalMemberSpec {
    pub cluster: ClusterId,
    pub region: Region,
    /// Its writer instance (of the primary; a secondary's is a reader until promoted).
    pub writer: InstanceId,
    pub instances: Vec<MemberSpec>,
}

impl GlobalMemberSpec {
    /// `arn:aws:rds:REGION:ACCOUNT:cluster:ID`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:rds:{}:{SIM_ACCOUNT}:cluster:{}",
            self.region, self.cluster
        )
    }
}

/// What `regions`, `[region_zones]` and `[[global_clusters]]` read to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Regions {
    /// Every region of the world, the home region first.
    pub regions: Vec<Region>,
    /// The zones of each region other than the home region.
    pub zones: BTreeMap<Region, Vec<Zone>>,
    pub global_clusters: Vec<GlobalClusterSpec>,
}

/// Read and check the regions and global clusters. `home`/`home_zones`: the topology's
/// `region` and `zones`; `instance_ids`: the instance ids read so far (one namespace);
/// `group_kinds`: the group kinds used so far.
pub(super) fn parse(
    raw_regions: Option<&[String]>,
    raw_zones: &BTreeMap<String, Vec<String>>,
    raw_globals: &[RawGlobalCluster],
    (home, home_zones): (&Region, &[Zone]),
    instance_ids: &mut BTreeSet<String>,
    group_kinds: &mut BTreeMap<String, &'static str>,
    problems: &mut Vec<String>,
) -> Regions {
    let regions = parse_regions(raw_regions, home, problems);
    let zones = parse_region_zones(raw_zones, home, &regions, problems);
    let mut all_zones: BTreeMap<Region, Vec<Zone>> = zones.clone();
    all_zones.insert(home.clone(), home_zones.to_vec());
    let mut out = Regions {
        regions,
        zones,
        global_clusters: vec![],
    };
    let mut ids = BTreeSet::new();
    for g in raw_globals {
        let what = format!("global cluster `{}`", g.id);
        if !ids.insert(g.id.clone()) {
            problems.push(format!("{what} is defined twice"));
        }
        let group = g.group.clone().unwrap_or_else(|| "global".into());
        match group_kinds.get(&group) {
            Some(k) if *k != "global_clusters" => problems.push(format!(
                "{what}: group `{group}` already holds {k}, not global_clusters; give it another group"
            )),
            _ => {
                group_kinds.insert(group.clone(), "global_clusters");
            }
        }
        let spec = parse_global(
            g,
            &what,
            group,
            &out.regions,
            &all_zones,
            instance_ids,
            problems,
        );
        out.global_clusters.push(spec);
    }
    out
}

fn parse_regions(raw: Option<&[String]>, home: &Region, problems: &mut Vec<String>) -> Vec<Region> {
    let Some(raw) = raw else {
        return vec![home.clone()];
    };
    let mut out: Vec<Region> = vec![];
    for r in raw {
        let region = Region::new(r.clone());
        if out.contains(&region) {
            problems.push(format!("regions: `{r}` is listed twice"));
        } else {
            out.push(region);
        }
    }
    if out.first() != Some(home) {
        problems.push(format!(
            "regions = {raw:?} must start with the home region `{home}` (regions = [\"{home}\", ...])"
        ));
        out.retain(|r| r != home);
        out.insert(0, home.clone());
    }
    out
}

fn parse_region_zones(
    raw: &BTreeMap<String, Vec<String>>,
    home: &Region,
    regions: &[Region],
    problems: &mut Vec<String>,
) -> BTreeMap<Region, Vec<Zone>> {
    let mut out = BTreeMap::new();
    for (r, zs) in raw {
        let region = Region::new(r.clone());
        if &region == home {
            problems.push(format!(
                "region_zones: `{r}` is the home region; its zones are `zones`"
            ));
            continue;
        }
        if !regions.contains(&region) {
            problems.push(format!(
                "region_zones: `{r}` is not one of `regions` ({})",
                names(regions)
            ));
        }
        let mut zones: Vec<Zone> = vec![];
        for z in zs {
            let zone = Zone::new(z.clone());
            if zone.region() != region {
                problems.push(format!("region_zones: zone `{z}` is not in region `{r}`"));
            } else if zones.contains(&zone) {
                problems.push(format!("region_zones: zone `{z}` is listed twice"));
            } else {
                zones.push(zone);
            }
        }
        out.insert(region, zones);
    }
    out
}

fn parse_global(
    g: &RawGlobalCluster,
    what: &str,
    group: String,
    regions: &[Region],
    zones: &BTreeMap<Region, Vec<Zone>>,
    instance_ids: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> GlobalClusterSpec {
    let writer_region = Region::new(g.writer_region.clone());
    let mut members = vec![];
    for m in &g.members {
        let region = Region::new(m.region.clone());
        let mwhat = format!("{what}, member `{}`", m.cluster);
        if !regions.contains(&region) {
            problems.push(format!(
                "{mwhat}: `{region}` is not one of the topology's regions ({}); add it to `regions`",
                names(regions)
            ));
        }
        if members
            .iter()
            .any(|x: &GlobalMemberSpec| x.region == region)
        {
            problems.push(format!(
                "{mwhat}: a global cluster has one member cluster per region, and {region} has one already"
            ));
        }
        if m.instances.is_empty() {
            problems.push(format!("{mwhat} has no instances"));
        }
        let known = zones.get(&region).cloned().unwrap_or_default();
        let mut instances = vec![];
        for i in &m.instances {
            if !instance_ids.insert(i.id.clone()) {
                problems.push(format!("instance `{}` is defined twice", i.id));
            }
            let zone = Zone::new(i.zone.clone());
            if !known.contains(&zone) {
                problems.push(format!(
                    "{mwhat}, instance `{}`: `{}` is not a zone of {region} in the topology ({}); list it in `zones` or `[region_zones]`",
                    i.id,
                    i.zone,
                    known.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if !(0..=15).contains(&i.tier) {
                problems.push(format!(
                    "{mwhat}: instance `{}` has tier {}; Aurora promotion tiers are 0 to 15",
                    i.id, i.tier
                ));
            }
            instances.push(MemberSpec {
                id: InstanceId::new(i.id.clone()),
                zone,
                tier: i.tier,
            });
        }
        let writer = match &m.writer {
            Some(w) if !m.instances.iter().any(|i| &i.id == w) => {
                problems.push(format!(
                    "{mwhat}: the writer `{w}` is not one of its instances"
                ));
                InstanceId::new(w.clone())
            }
            Some(w) => InstanceId::new(w.clone()),
            None => instances
                .first()
                .map(|i: &MemberSpec| i.id.clone())
                .unwrap_or_else(|| InstanceId::new("?")),
        };
        members.push(GlobalMemberSpec {
            cluster: ClusterId::new(m.cluster.clone()),
            region,
            writer,
            instances,
        });
    }
    if members.len() < 2 {
        problems.push(format!(
            "{what} needs member clusters in at least two regions, so there is somewhere to move the writer to"
        ));
    }
    if !members.iter().any(|m| m.region == writer_region) {
        problems.push(format!(
            "{what}: writer_region = \"{writer_region}\" but no member cluster is in it (members in: {})",
            members.iter().map(|m| m.region.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    GlobalClusterSpec {
        id: GlobalClusterId::new(g.id.clone()),
        engine: g
            .engine
            .clone()
            .unwrap_or_else(|| "aurora-postgresql".into()),
        group,
        writer_region,
        members,
    }
}

fn names(regions: &[Region]) -> String {
    regions
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
