//! The raw serde types of a topology file's resources (clusters, instances, hosted zones and
//! their records, endpoints): what `topology` reads from TOML and checks, and what `generate`
//! produces, so generated entries go through the same checks as written ones.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) id: String,
    pub(super) engine: Option<String>,
    pub(super) group: Option<String>,
    pub(super) writer: String,
    pub(super) instances: Vec<RawMember>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    pub(super) id: String,
    pub(super) zone: String,
    #[serde(default = "default_tier")]
    pub(super) tier: i32,
}

fn default_tier() -> i32 {
    1
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInstance {
    pub(super) id: String,
    pub(super) engine: Option<String>,
    pub(super) group: Option<String>,
    pub(super) zone: String,
    pub(super) standby_zone: Option<String>,
}

/// `[[zonal_shift_resources]]`: a load balancer or Auto Scaling group registered with ARC.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZonalResource {
    pub(super) arn: String,
    /// The environment group it belongs to (default `load_balancers`).
    pub(super) group: Option<String>,
    /// Zonal autoshift enabled (default false).
    #[serde(default)]
    pub(super) autoshift: bool,
    /// Not registered with ARC zonal shift (GetManagedResource does not know it).
    #[serde(default)]
    pub(super) unregistered: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHostedZone {
    pub(super) name: String,
    pub(super) id: Option<String>,
    pub(super) group: Option<String>,
    #[serde(default)]
    pub(super) records: Vec<RawRecord>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecord {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) rtype: Option<String>,
    pub(super) ttl: Option<i64>,
    pub(super) values: Option<BTreeMap<String, OneOrMany>>,
    pub(super) value: Option<OneOrMany>,
    pub(super) live: Option<String>,
    #[serde(default)]
    pub(super) weighted: bool,
    pub(super) weight: Option<i64>,
    pub(super) weights: Option<BTreeMap<String, i64>>,
    /// Databases (cluster or instance ids) the record points at: it moves once they have.
    #[serde(default)]
    pub(super) depends_on: Vec<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    pub(super) url: String,
    pub(super) method: Option<String>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    pub(super) timeout: Option<String>,
    pub(super) zone: Option<String>,
    pub(super) body: Option<String>,
}

/// `[[global_clusters]]`: an Aurora global database, its member clusters in several regions.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobalCluster {
    pub(super) id: String,
    pub(super) engine: Option<String>,
    /// The environment group it belongs to (default `global`).
    pub(super) group: Option<String>,
    /// The region of the primary (writer) cluster at the start.
    pub(super) writer_region: String,
    pub(super) members: Vec<RawGlobalMember>,
}

/// One member cluster of a global cluster: its region, its instances as a regional cluster
/// has them.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobalMember {
    pub(super) cluster: String,
    pub(super) region: String,
    /// The cluster's writer instance (default: its first instance).
    pub(super) writer: Option<String>,
    pub(super) instances: Vec<RawMember>,
}
