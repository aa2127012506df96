//! Topology files (`config/sim/*.toml`): the simulated world a runbook is rehearsed in.
//!
//! A topology names the region and its zones, the Aurora clusters (members per zone with
//! promotion tiers, the current writer), the Multi-AZ DB instances (primary and standby zone),
//! the Route 53 hosted zones with their records, the HTTP endpoints, every timing and quota
//! figure (defaults from AWS_FACTS.md), and faults. Read in two stages: TOML -> raw serde types
//! (unknown keys rejected), then every problem checked at once into a [`Topology`].
//!
//! The environment a runbook binds against is *derived* from the topology
//! ([`environment_for`]): each cluster, instance and hosted zone says which group it belongs
//! to, and records give one value per zone exactly as environment files do. One file thus
//! describes both the world and how runbooks name it, and the two cannot drift apart.
//! Any other environment (e.g. `config/local.toml`) can be used instead as long as its group
//! and resource names match the topology.
//!
//! A topology may also carry a load-shedding ladder (`[traffic]`, read by the same code as in
//! environment files) and a `[load]` model: what each zone can serve and what each tier costs.
//! The derived environment then has the ladder, and the world answers its signal and admin
//! calls (see [`super::traffic`]).

// The type of `Topology::endpoints`; its own module so traffic can name it without the
// topology. Re-exported so `topology::EndpointSpec` keeps working.
pub use super::endpoint::EndpointSpec;
use super::faults::{Fault, FaultSpec};
use super::raw::{
    RawCluster, RawEndpoint, RawHostedZone, RawInstance, RawRecord, RawZonalResource,
};
// `MemberSpec` lives with the global clusters' types, which the topology names.
pub use super::regions::{GlobalClusterSpec, GlobalMemberSpec, MemberSpec};
use crate::cloud::model;
use crate::env::{AwsAccess, Endpoint, Environment, Group, RecordSpec, Settings};
use crate::types::{ClusterId, InstanceId, Region, Zone};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A checked topology.
#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    pub name: String,
    pub description: Option<String>,
    /// Where the file came from (a path, or `<embedded>`), for messages.
    pub origin: String,
    /// The home region: RDS calls go to it.
    pub region: Region,
    /// Its zones, in order of preference (the derived environment keeps this order).
    pub zones: Vec<Zone>,
    /// Where Route 53's control plane lives (us-east-1 in the `aws` partition).
    pub route53_region: Region,
    /// Seed used when the caller gives none.
    pub seed: Option<u64>,
    /// The wall-clock time the simulation starts at.
    #[serde(skip)]
    pub start: SystemTime,
    pub settings: SimSettings,
    pub timing: Timing,
    pub quotas: Quotas,
    pub approval: ApprovalSim,
    pub clusters: Vec<ClusterSpec>,
    pub instances: Vec<InstanceSpec>,
    pub hosted_zones: Vec<HostedZoneSpec>,
    pub endpoints: BTreeMap<String, EndpointSpec>,
    /// Load balancers and Auto Scaling groups known to ARC zonal shift.
    pub zonal_shift_resources: Vec<ZonalResourceSpec>,
    /// Every region (`regions`, the home region first), the zones of the others
    /// (`[region_zones]`), the Aurora global databases (`[[global_clusters]]`).
    pub multi_region: super::regions::Regions,
    pub faults: Vec<Fault>,
    /// The load-shedding ladder (`[traffic]`, as in environment files); the derived
    /// environment carries it.
    pub traffic: Option<crate::traffic::Ladder>,
    /// The load the storefront serves and what each zone can take (`[load]`); see
    /// [`super::traffic`].
    pub load: Option<super::traffic::LoadSpec>,
    /// Health probes (`[health]`, as in environment files): the simulator answers them
    /// ([`super::probes`]); the derived environment carries them.
    #[serde(skip)]
    pub health: Option<crate::health::HealthConfig>,
    /// What `[generate]` expanded to (its entries are in the lists above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<super::generate::GenerateSpec>,
}

/// Engine settings of the derived environment.
#[derive(Clone, Debug, Serialize)]
pub struct SimSettings {
    pub poll_interval: Duration,
    pub max_concurrency: usize,
    pub max_attempts: u32,
}

/// A range `[min, max]` a figure is drawn from (seeded); `min == max` for a fixed figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
}

impl Span {
    pub const fn fixed(d: Duration) -> Self {
        Self { min: d, max: d }
    }
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self { min, max }
    }
    /// A value in the range, drawn from `rng` (millisecond resolution).
    pub fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        let (lo, hi) = (self.min.as_millis() as u64, self.max.as_millis() as u64);
        if hi <= lo {
            self.min
        } else {
            Duration::from_millis(rng.u64(lo..=hi))
        }
    }
}

/// How long things take. Defaults from AWS_FACTS.md.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// FailoverDBCluster: status `failing-over`, then the writer flips ("often under 30 s").
    pub aurora_failover: Span,
    /// RebootDBInstance with ForceFailover: "typically 60-120 s".
    pub multi_az_failover: Span,
    /// Manual snapshot: `creating` -> `available`.
    pub snapshot_creation: Span,
    /// Route 53 change PENDING -> INSYNC ("within 60 s").
    pub route53_insync: Span,
    /// Round trip of one AWS API call.
    pub api_latency: Span,
    /// Round trip of one HTTP request to a reachable endpoint.
    pub http_latency: Span,
    /// When a client gives up on an AWS call that gets no answer (the AWS adapter's operation
    /// timeout, 30 s). `None`: never, the engine's step timeout ends the wait.
    pub operation_timeout: Option<Duration>,
    /// The simulation stops after this much virtual time, whatever the run is doing.
    pub max_duration: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        let s = |(lo, hi): (u64, u64)| Span::new(Duration::from_secs(lo), Duration::from_secs(hi));
        let ms = Duration::from_millis;
        Self {
            aurora_failover: s(model::AURORA_FAILOVER_S),
            multi_az_failover: s(model::MULTI_AZ_FAILOVER_S),
            snapshot_creation: s(model::SNAPSHOT_CREATION_S),
            route53_insync: s(model::ROUTE53_INSYNC_S),
            api_latency: Span::new(ms(model::API_LATENCY_MS.0), ms(model::API_LATENCY_MS.1)),
            http_latency: Span::new(ms(80), ms(300)),
            operation_timeout: Some(Duration::from_secs(30)),
            max_duration: Duration::from_secs(6 * 3600),
        }
    }
}

/// API quotas, as token buckets in virtual time. Defaults from AWS_FACTS.md.
#[derive(Clone, Debug, Serialize)]
pub struct Quotas {
    /// RDS: one bucket per account and region, shared by every RDS call (Aurora included).
    pub rds_burst: f64,
    pub rds_refill_per_s: f64,
    /// Route 53: one bucket per account.
    pub route53_burst: f64,
    pub route53_refill_per_s: f64,
    /// ResourceRecord elements per ChangeResourceRecordSets (an UPSERT counts twice).
    pub route53_max_records_per_change: usize,
    /// Characters of values per ChangeResourceRecordSets (an UPSERT counts twice).
    pub route53_max_value_chars_per_change: usize,
    /// A change to a hosted zone within this long after the previous one is refused with
    /// `PriorRequestNotComplete`.
    pub route53_prior_request_window: Duration,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            rds_burst: model::RDS_BURST,
            rds_refill_per_s: model::RDS_REFILL_PER_S,
            route53_burst: model::ROUTE53_BURST,
            route53_refill_per_s: model::ROUTE53_REFILL_PER_S,
            route53_max_records_per_change: model::ROUTE53_MAX_RECORDS_PER_CHANGE,
            route53_max_value_chars_per_change: model::ROUTE53_MAX_VALUE_CHARS_PER_CHANGE,
            route53_prior_request_window: model::ROUTE53_PRIOR_REQUEST_WINDOW,
        }
    }
}

impl Quotas {
    /// The quotas a client of this account paces itself by: the account's own.
    pub fn client(&self) -> model::Quotas {
        model::Quotas {
            rds_burst: self.rds_burst,
            rds_per_s: self.rds_refill_per_s,
            route53_burst: self.route53_burst,
            route53_per_s: self.route53_refill_per_s,
            route53_zone_interval: self.route53_prior_request_window,
            ..model::Quotas::default()
        }
    }
}

/// A simulated second person for `approval` steps.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalSim {
    pub by: String,
    /// How long after the request they approve; `None`: nobody approves.
    pub after: Option<Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterSpec {
    pub id: ClusterId,
    pub engine: String,
    pub group: String,
    pub writer: InstanceId,
    pub members: Vec<MemberSpec>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceSpec {
    pub id: InstanceId,
    pub engine: String,
    pub group: String,
    pub zone: Zone,
    /// `None`: a Single-AZ instance.
    pub standby_zone: Option<Zone>,
}

/// A resource registered with ARC zonal shift (or, with `unregistered`, one that is not).
#[derive(Clone, Debug, Serialize)]
pub struct ZonalResourceSpec {
    pub arn: String,
    pub group: String,
    pub autoshift: bool,
    pub unregistered: bool,
}

/// The Availability Zone id the simulator gives a zone: `us-west-2a` -> `usw2-az1`, by its
/// place in the topology's zones (real accounts map names to ids each their own way).
pub fn sim_zone_id(region: &str, zones: &[Zone], zone: &Zone) -> Option<String> {
    let i = zones.iter().position(|z| z == zone)?;
    // The country part whole, the first letter of the others, the number: us-west-2 -> usw2.
    let short: String = region
        .split('-')
        .enumerate()
        .map(|(i, p)| match (i, p.parse::<u32>()) {
            (0, _) | (_, Ok(_)) => p.to_string(),
            _ => p.chars().next().map(String::from).unwrap_or_default(),
        })
        .collect();
    Some(format!("{short}-az{}", i + 1))
}

#[derive(Clone, Debug, Serialize)]
pub struct HostedZoneSpec {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    pub records: Vec<RecordSpecSim>,
}

/// A logical record: plain (one record set pointing at the `live` zone's value), weighted
/// (one record set per zone, set identifier = zone), or not tied to zones (`values` has a
/// single `"*"` entry).
#[derive(Clone, Debug, Serialize)]
pub struct RecordSpecSim {
    pub name: String,
    pub rtype: String,
    pub ttl: i64,
    pub values: BTreeMap<Zone, Vec<String>>,
    /// Plain records: the zone whose value the record holds at the start.
    pub live: Option<Zone>,
    pub weighted: bool,
    /// Weighted records: the weight of each zone's set at the start.
    pub weights: BTreeMap<Zone, i64>,
    /// Weight a healthy zone gets back when it was 0 (environment `weight`).
    pub weight: i64,
    /// A record not tied to zones (e.g. TXT): its values.
    pub fixed: Option<Vec<String>>,
    /// Databases the record points at (`depends_on`).
    pub depends_on: Vec<String>,
    /// `values` (and `live`, `weights`) are keyed by region, not zone: a record that moves
    /// between the topology's regions (the keys are region names held as `Zone`s, so the
    /// world's record sets and set identifiers are built the same way).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_region: bool,
}

impl RecordSpecSim {
    pub fn zone_bound(&self) -> bool {
        self.fixed.is_none()
    }
}

/// Every problem found in a topology file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {n} problem(s):\n{list}", n = problems.len(), list = problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct TopologyError {
    pub origin: String,
    pub problems: Vec<String>,
}

// ---- raw serde types --------------------------------------------------------------------

/// The JSON Schema of a topology file (`failover schema topology`), derived from the raw types
/// the parser reads it into, so the two cannot differ; `[traffic]` is the environment's.
pub fn json_schema() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft07();
    let mut schema = settings.into_generator().into_root_schema_for::<Raw>();
    schema.insert(
        "$id".into(),
        "https://failover.dev/schema/topology.json".into(),
    );
    schema.insert("title".into(), "failover simulator topology".into());
    schema.to_value()
}

/// `[generate]`, read with spans by `generate::expand`: its keys and their limits.
fn generate_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use super::generate as g;
    let int = |description: &str, max: i64| serde_json::json!({"type": "integer", "minimum": 1, "maximum": max, "description": description});
    let text =
        |description: &str| serde_json::json!({"type": "string", "description": description});
    let v = serde_json::json!({
        "type": "object",
        "description": "Generate a topology: N Aurora clusters, their readers and records",
        "additionalProperties": false,
        "required": ["clusters"],
        "properties": {
            "clusters": int("Aurora clusters", g::MAX_CLUSTERS),
            "readers": int("Readers per cluster, spread over the zones other than the writer's", g::MAX_READERS),
            "multi_az_share": {"type": "number", "minimum": 0, "maximum": 1, "description": "Share of Multi-AZ DB instances besides the clusters"},
            "records_per_cluster": int("Records per cluster", g::MAX_RECORDS_PER_CLUSTER),
            "writer_zone": text("The zone every writer starts in"),
            "hosted_zone": text("The hosted zone of the records"),
            "prefix": text("Identifier prefix of the generated resources"),
        }
    });
    schemars::Schema::try_from(v).unwrap_or_default()
}

fn health_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(crate::schema::health()).unwrap_or_default()
}

fn traffic_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::Schema::try_from(crate::schema::traffic()).unwrap_or_default()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    description: Option<String>,
    region: String,
    zones: Vec<String>,
    route53_region: Option<String>,
    seed: Option<u64>,
    start: Option<String>,
    #[serde(default)]
    settings: RawSettings,
    #[serde(default)]
    timing: RawTiming,
    #[serde(default)]
    quotas: RawQuotas,
    #[serde(default)]
    approval: RawApproval,
    #[serde(default)]
    clusters: Vec<RawCluster>,
    #[serde(default)]
    instances: Vec<RawInstance>,
    #[serde(default)]
    hosted_zones: Vec<RawHostedZone>,
    #[serde(default)]
    endpoints: BTreeMap<String, RawEndpoint>,
    #[serde(default)]
    zonal_shift_resources: Vec<RawZonalResource>,
    /// Every region of the world, the home region first (default: the home region alone).
    regions: Option<Vec<String>>,
    /// The zones of each region other than the home region.
    #[serde(default)]
    region_zones: BTreeMap<String, Vec<String>>,
    /// Aurora global databases spanning the regions.
    #[serde(default)]
    global_clusters: Vec<super::raw::RawGlobalCluster>,
    #[serde(default)]
    faults: Vec<RawFault>,
    /// Read again with spans by `traffic::config::parse`, as in environment files.
    #[serde(default)]
    #[schemars(schema_with = "traffic_schema")]
    traffic: Option<toml::Value>,
    /// Read again with spans by `health::config::parse`, as in environment files.
    #[serde(default)]
    #[schemars(schema_with = "health_schema")]
    health: Option<toml::Value>,
    load: Option<super::traffic::RawLoad>,
    /// Read again with spans by `generate::expand`.
    #[serde(default)]
    #[schemars(schema_with = "generate_schema")]
    generate: Option<toml::Value>,
}

#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    poll_interval: Option<String>,
    max_concurrency: Option<usize>,
    max_attempts: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum RawSpan {
    One(String),
    Two(Vec<String>),
}

#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    aurora_failover: Option<RawSpan>,
    multi_az_failover: Option<RawSpan>,
    snapshot_creation: Option<RawSpan>,
    route53_insync: Option<RawSpan>,
    api_latency: Option<RawSpan>,
    http_latency: Option<RawSpan>,
    operation_timeout: Option<String>,
    max_duration: Option<String>,
}

#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawQuotas {
    rds_burst: Option<f64>,
    rds_refill_per_s: Option<f64>,
    route53_burst: Option<f64>,
    route53_refill_per_s: Option<f64>,
    route53_max_records_per_change: Option<usize>,
    route53_max_value_chars_per_change: Option<usize>,
    route53_prior_request_window: Option<String>,
}

#[derive(Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawApproval {
    by: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum RawFault {
    Line(String),
    Table(#[schemars(with = "BTreeMap<String, serde_json::Value>")] BTreeMap<String, toml::Value>),
}

// ---- checking ---------------------------------------------------------------------------

#[derive(Default)]
struct Checker {
    problems: Vec<String>,
    /// Instance ids read so far: cluster members and DB instances share one namespace.
    instance_ids: BTreeSet<String>,
    /// What each group holds (`db_clusters`, `db_instances`, `records`), from its first use.
    group_kinds: BTreeMap<String, &'static str>,
}

impl Checker {
    fn dur(&mut self, what: &str, v: &Option<String>, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match crate::limits::parse_duration(s) {
                Ok(d) => d,
                Err(e) => {
                    self.problems.push(format!(
                        "{what} = \"{s}\": {e} (write durations as 500ms, 30s, 5m)"
                    ));
                    default
                }
            },
        }
    }

    fn span(&mut self, what: &str, v: &Option<RawSpan>, default: Span) -> Span {
        match v {
            None => default,
            Some(RawSpan::One(s)) => Span::fixed(self.dur(what, &Some(s.clone()), default.min)),
            Some(RawSpan::Two(v)) if v.len() == 2 => {
                let min = self.dur(what, &Some(v[0].clone()), default.min);
                let max = self.dur(what, &Some(v[1].clone()), default.max);
                if min > max {
                    self.problems.push(format!(
                        "{what}: the minimum ({}) is above the maximum ({})",
                        v[0], v[1]
                    ));
                }
                Span::new(min, max)
            }
            Some(RawSpan::Two(v)) => {
                self.problems.push(format!("{what} must be one duration (\"30s\") or a range of two ([\"60s\", \"120s\"]), not {} values", v.len()));
                default
            }
        }
    }

    fn zone(&mut self, what: &str, z: &str, zones: &[Zone]) -> Zone {
        let zone = Zone::new(z);
        if !zones.contains(&zone) {
            let known = zones
                .iter()
                .map(|z| z.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.problems.push(
                match crate::diag::did_you_mean(z, zones.iter().map(|z| z.as_str())) {
                    Some(s) => {
                        format!("{what}: `{z}` is not a zone of the topology; did you mean `{s}`?")
                    }
                    None => format!("{what}: `{z}` is not a zone of the topology ({known})"),
                },
            );
        }
        zone
    }

    /// A group holds one kind of resource: the first resource naming it sets the kind.
    fn group_use(&mut self, g: &str, kind: &'static str, what: &str) {
        match self.group_kinds.get(g) {
            Some(k) if *k != kind => self.problems.push(format!(
                "{what}: group `{g}` already holds {k}, not {kind}; give it another group"
            )),
            _ => {
                self.group_kinds.insert(g.to_string(), kind);
            }
        }
    }

    // ---- the parts of a topology, in the order `Topology::parse` checks them ------------

    /// `region` and `zones`: every zone in the region, none twice, at least two.
    fn parse_zones(&mut self, region: &str, raw: &[String]) -> (Region, Vec<Zone>) {
        let region = Region::new(region.to_string());
        let mut zones: Vec<Zone> = vec![];
        for z in raw {
            let zone = Zone::new(z.clone());
            if zone.region() != region {
                self.problems.push(format!("zone `{z}` is not in region `{region}` (zones are named after their region, e.g. us-west-2a)"));
            }
            if zones.contains(&zone) {
                self.problems.push(format!("zone `{z}` is listed twice"));
            }
            zones.push(zone);
        }
        if zones.len() < 2 {
            self.problems.push(
                "a topology needs at least two zones, so there is somewhere to evacuate to".into(),
            );
        }
        (region, zones)
    }

    /// `start`: an RFC 3339 time (default 2025-01-01T00:00:00Z).
    fn parse_start(&mut self, raw: Option<&str>) -> SystemTime {
        match raw {
            None => {
                humantime::parse_rfc3339("2025-01-01T00:00:00Z").unwrap_or(SystemTime::UNIX_EPOCH)
            }
            Some(s) => humantime::parse_rfc3339_weak(s).unwrap_or_else(|e| {
                self.problems.push(format!(
                    "start = \"{s}\": {e} (write an RFC 3339 time such as 2023-09-19T09:00:00Z)"
                ));
                SystemTime::UNIX_EPOCH
            }),
        }
    }

    /// `[settings]`: the engine settings of the derived environment.
    fn parse_settings(&mut self, raw: &RawSettings) -> SimSettings {
        let defaults = Settings::default();
        let settings = SimSettings {
            poll_interval: self.dur(
                "settings.poll_interval",
                &raw.poll_interval,
                defaults.poll_interval,
            ),
            max_concurrency: raw
                .max_concurrency
                .unwrap_or(defaults.max_concurrency)
                .max(1),
            max_attempts: raw.max_attempts.unwrap_or(defaults.max_attempts).max(1),
        };
        if settings.poll_interval.is_zero() {
            self.problems
                .push("settings.poll_interval must be above 0".into());
        }
        settings
    }

    /// `[timing]`: each figure a duration or a range, defaults from AWS_FACTS.md.
    fn parse_timing(&mut self, rt: &RawTiming) -> Timing {
        let td = Timing::default();
        Timing {
            aurora_failover: self.span(
                "timing.aurora_failover",
                &rt.aurora_failover,
                td.aurora_failover,
            ),
            multi_az_failover: self.span(
                "timing.multi_az_failover",
                &rt.multi_az_failover,
                td.multi_az_failover,
            ),
            snapshot_creation: self.span(
                "timing.snapshot_creation",
                &rt.snapshot_creation,
                td.snapshot_creation,
            ),
            route53_insync: self.span(
                "timing.route53_insync",
                &rt.route53_insync,
                td.route53_insync,
            ),
            api_latency: self.span("timing.api_latency", &rt.api_latency, td.api_latency),
            http_latency: self.span("timing.http_latency", &rt.http_latency, td.http_latency),
            operation_timeout: match rt.operation_timeout.as_deref() {
                Some("none") | Some("never") => None,
                other => Some(self.dur(
                    "timing.operation_timeout",
                    &other.map(str::to_string),
                    td.operation_timeout.unwrap_or_default(),
                )),
            },
            max_duration: self.dur("timing.max_duration", &rt.max_duration, td.max_duration),
        }
    }

    /// `[quotas]`: the token buckets and Route 53's batch limits; a bucket must allow a call.
    fn parse_quotas(&mut self, rq: &RawQuotas) -> Quotas {
        let qd = Quotas::default();
        let quotas = Quotas {
            rds_burst: rq.rds_burst.unwrap_or(qd.rds_burst),
            rds_refill_per_s: rq.rds_refill_per_s.unwrap_or(qd.rds_refill_per_s),
            route53_burst: rq.route53_burst.unwrap_or(qd.route53_burst),
            route53_refill_per_s: rq.route53_refill_per_s.unwrap_or(qd.route53_refill_per_s),
            route53_max_records_per_change: rq
                .route53_max_records_per_change
                .unwrap_or(qd.route53_max_records_per_change),
            route53_max_value_chars_per_change: rq
                .route53_max_value_chars_per_change
                .unwrap_or(qd.route53_max_value_chars_per_change),
            route53_prior_request_window: self.dur(
                "quotas.route53_prior_request_window",
                &rq.route53_prior_request_window,
                qd.route53_prior_request_window,
            ),
        };
        for (what, v) in [
            ("rds_burst", quotas.rds_burst),
            ("route53_burst", quotas.route53_burst),
        ] {
            if !(v >= 1.0 && v.is_finite()) {
                self.problems.push(format!(
                    "quotas.{what} must be 1 or more, or no call could ever be made"
                ));
            }
        }
        for (what, v) in [
            ("rds_refill_per_s", quotas.rds_refill_per_s),
            ("route53_refill_per_s", quotas.route53_refill_per_s),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                self.problems.push(format!("quotas.{what} must be above 0"));
            }
        }
        quotas
    }

    /// `[approval]`: who approves and how long after the request (`never`: nobody).
    fn parse_approval(&mut self, raw: &RawApproval) -> ApprovalSim {
        ApprovalSim {
            by: raw.by.clone().unwrap_or_else(|| "sim-approver".into()),
            after: match raw.after.as_deref() {
                Some("never") | Some("none") => None,
                other => Some(self.dur(
                    "approval.after",
                    &other.map(str::to_string),
                    Duration::from_secs(60),
                )),
            },
        }
    }

    /// `[[clusters]]`: members in zones of the topology with Aurora promotion tiers, the
    /// writer one of them.
    fn parse_clusters(&mut self, raw: &[RawCluster], zones: &[Zone]) -> Vec<ClusterSpec> {
        let mut clusters = vec![];
        let mut cluster_ids = BTreeSet::new();
        for rc in raw {
            let what = format!("cluster `{}`", rc.id);
            if !cluster_ids.insert(rc.id.clone()) {
                self.problems.push(format!("{what} is defined twice"));
            }
            if rc.instances.is_empty() {
                self.problems.push(format!("{what} has no instances"));
            }
            let mut members = vec![];
            for m in &rc.instances {
                if !self.instance_ids.insert(m.id.clone()) {
                    self.problems
                        .push(format!("instance `{}` is defined twice", m.id));
                }
                if !(0..=15).contains(&m.tier) {
                    self.problems.push(format!(
                        "{what}: instance `{}` has tier {}; Aurora promotion tiers are 0 to 15",
                        m.id, m.tier
                    ));
                }
                let zone = self.zone(&format!("{what}, instance `{}`", m.id), &m.zone, zones);
                members.push(MemberSpec {
                    id: InstanceId::new(m.id.clone()),
                    zone,
                    tier: m.tier,
                });
            }
            if !rc.instances.iter().any(|m| m.id == rc.writer) {
                self.problems.push(format!(
                    "{what}: the writer `{}` is not one of its instances",
                    rc.writer
                ));
            }
            let group = rc.group.clone().unwrap_or_else(|| "aurora".into());
            self.group_use(&group, "db_clusters", &what);
            clusters.push(ClusterSpec {
                id: ClusterId::new(rc.id.clone()),
                engine: rc
                    .engine
                    .clone()
                    .unwrap_or_else(|| "aurora-postgresql".into()),
                group,
                writer: InstanceId::new(rc.writer.clone()),
                members,
            });
        }
        clusters
    }

    /// `[[instances]]`: DB instances, Multi-AZ when they have a standby in another zone.
    fn parse_instances(&mut self, raw: &[RawInstance], zones: &[Zone]) -> Vec<InstanceSpec> {
        let mut instances = vec![];
        for ri in raw {
            let what = format!("instance `{}`", ri.id);
            if !self.instance_ids.insert(ri.id.clone()) {
                self.problems.push(format!("{what} is defined twice"));
            }
            let zone = self.zone(&what, &ri.zone, zones);
            let standby_zone = ri
                .standby_zone
                .as_ref()
                .map(|s| self.zone(&format!("{what} standby"), s, zones));
            if standby_zone.as_ref() == Some(&zone) {
                self.problems.push(format!("{what}: the standby is in the primary's zone; a Multi-AZ standby lives in another zone"));
            }
            let group = ri.group.clone().unwrap_or_else(|| "multi_az".into());
            self.group_use(&group, "db_instances", &what);
            instances.push(InstanceSpec {
                id: InstanceId::new(ri.id.clone()),
                engine: ri.engine.clone().unwrap_or_else(|| "mysql".into()),
                group,
                zone,
                standby_zone,
            });
        }
        instances
    }

    /// `[[zonal_shift_resources]]`: ARNs of load balancers or Auto Scaling groups, once each.
    fn parse_zonal_resources(&mut self, raw: &[RawZonalResource]) -> Vec<ZonalResourceSpec> {
        let mut out: Vec<ZonalResourceSpec> = vec![];
        for r in raw {
            if !crate::env::is_zonal_shift_arn(&r.arn) {
                self.problems.push(format!("zonal_shift_resources: `{}` is not the ARN of a load balancer or an Auto Scaling group", r.arn));
            } else if out.iter().any(|o| o.arn == r.arn) {
                self.problems.push(format!(
                    "zonal_shift_resources: `{}` is listed twice",
                    r.arn
                ));
            } else {
                out.push(ZonalResourceSpec {
                    arn: r.arn.clone(),
                    group: r.group.clone().unwrap_or_else(|| "load_balancers".into()),
                    autoshift: r.autoshift,
                    unregistered: r.unregistered,
                });
            }
        }
        out
    }

    /// `[[hosted_zones]]` and their records; a zone in a group needs a record tied to zones.
    fn parse_hosted_zones(&mut self, raw: &[RawHostedZone], zones: &[Zone]) -> Vec<HostedZoneSpec> {
        let mut hosted_zones = vec![];
        let mut hz_names = BTreeSet::new();
        for rh in raw {
            let name = crate::cloud::normalize_dns_name(&rh.name);
            let what = format!("hosted zone `{name}`");
            if !hz_names.insert(name.clone()) {
                self.problems.push(format!("{what} is defined twice"));
            }
            if let Some(g) = &rh.group {
                self.group_use(g, "records", &what);
            }
            let mut records = vec![];
            let mut keys = BTreeSet::new();
            for rr in &rh.records {
                records.push(self.parse_record(rr, &name, &what, &mut keys, zones));
            }
            if rh.group.is_some() && records.iter().all(|r| !r.zone_bound()) {
                self.problems.push(format!(
                    "{what} names group `{}` but has no record with values per zone",
                    rh.group.as_deref().unwrap_or("")
                ));
            }
            hosted_zones.push(HostedZoneSpec {
                id: rh.id.clone().unwrap_or_else(|| derived_zone_id(&name)),
                name,
                group: rh.group.clone(),
                records,
            });
        }
        hosted_zones
    }

    /// One record of hosted zone `hz` (`hz_what` in messages): plain (`live`), weighted
    /// (`weights`), or not tied to zones (`value`). `keys`: the zone's records read so far.
    fn parse_record(
        &mut self,
        rr: &RawRecord,
        hz: &str,
        hz_what: &str,
        keys: &mut BTreeSet<(String, String)>,
        zones: &[Zone],
    ) -> RecordSpecSim {
        let rname = crate::cloud::normalize_dns_name(&rr.name);
        let rtype = rr
            .rtype
            .clone()
            .unwrap_or_else(|| "CNAME".into())
            .to_ascii_uppercase();
        let rwhat = format!("record `{rname} {rtype}`");
        if !keys.insert((rname.clone(), rtype.clone())) {
            self.problems
                .push(format!("{rwhat} is defined twice in {hz_what}"));
        }
        if !rname.ends_with(hz) {
            self.problems
                .push(format!("{rwhat} is not inside {hz_what}"));
        }
        // Keyed by region: every key a well-formed region name and none a zone; the keys are
        // checked against the topology's regions once it is built.
        let by_region = rr.values.as_ref().is_some_and(|vs| {
            !vs.is_empty()
                && vs.keys().all(|k| {
                    !zones.contains(&Zone::new(k.as_str()))
                        && Region::new(k.as_str()).is_well_formed()
                })
        });
        let region_keys: Vec<Zone>;
        let zones = if by_region {
            region_keys = rr
                .values
                .iter()
                .flatten()
                .map(|(k, _)| Zone::new(k.as_str()))
                .collect();
            &region_keys[..]
        } else {
            zones
        };
        let (values, fixed) = self.record_values(rr, &rwhat, zones);
        let live = rr
            .live
            .as_ref()
            .map(|z| self.zone(&format!("{rwhat} live"), z, zones));
        let mut weights = self.record_weights(rr, &rwhat, zones);
        let weight = rr.weight.unwrap_or(100);
        if fixed.is_none() {
            if rr.weighted {
                self.check_weighted(&rwhat, live.is_some(), &values, &mut weights, weight);
            } else {
                self.check_plain(&rwhat, live.as_ref(), &values, rr.weights.is_some(), zones);
            }
        }
        RecordSpecSim {
            name: rname,
            rtype,
            ttl: rr.ttl.unwrap_or(60),
            values,
            live,
            weighted: rr.weighted,
            weights,
            weight,
            fixed,
            depends_on: rr.depends_on.clone(),
            by_region,
        }
    }

    /// A record's `values` (one per zone, at least two zones) or its `value` (not tied to
    /// zones: returned as the second item).
    fn record_values(
        &mut self,
        rr: &RawRecord,
        rwhat: &str,
        zones: &[Zone],
    ) -> (BTreeMap<Zone, Vec<String>>, Option<Vec<String>>) {
        let mut values = BTreeMap::new();
        let mut fixed = None;
        match (&rr.values, &rr.value) {
            (Some(_), Some(_)) => self.problems.push(format!("{rwhat}: give `values` (one per zone) or `value` (not tied to a zone), not both")),
            (None, None) => self.problems.push(format!("{rwhat} has no `values`; give one value per zone: values = {{ \"us-west-2a\" = \"...\" }}")),
            (None, Some(v)) => {
                fixed = Some(v.to_vec());
            }
            (Some(vs), None) => {
                for (z, v) in vs {
                    let zone = self.zone(rwhat, z, zones);
                    values.insert(zone, v.to_vec());
                }
                if values.len() < 2 {
                    self.problems.push(format!("{rwhat} has a value for fewer than two zones, so it cannot be moved"));
                }
            }
        }
        (values, fixed)
    }

    /// A record's `weights`: zones of the topology, each weight within Route 53's 0..=255.
    fn record_weights(
        &mut self,
        rr: &RawRecord,
        rwhat: &str,
        zones: &[Zone],
    ) -> BTreeMap<Zone, i64> {
        let mut weights = BTreeMap::new();
        if let Some(ws) = &rr.weights {
            for (z, w) in ws {
                let zone = self.zone(&format!("{rwhat} weights"), z, zones);
                if !(0..=255).contains(w) {
                    self.problems
                        .push(format!("{rwhat}: weight {w} for {z} is outside 0..=255"));
                }
                weights.insert(zone, *w);
            }
        }
        weights
    }

    /// A weighted record: no `live`, a weight only for a zone with a value; a zone with a
    /// value and no weight gets `weight`.
    fn check_weighted(
        &mut self,
        rwhat: &str,
        has_live: bool,
        values: &BTreeMap<Zone, Vec<String>>,
        weights: &mut BTreeMap<Zone, i64>,
        weight: i64,
    ) {
        if has_live {
            self.problems.push(format!(
                "{rwhat} is weighted: give `weights` per zone instead of `live`"
            ));
        }
        for z in weights.keys() {
            if !values.contains_key(z) {
                self.problems
                    .push(format!("{rwhat}: weight for {z}, which has no value"));
            }
        }
        for z in values.keys() {
            weights.entry(z.clone()).or_insert(weight);
        }
    }

    /// A plain record: `live` names a zone with a value; no `weights`.
    fn check_plain(
        &mut self,
        rwhat: &str,
        live: Option<&Zone>,
        values: &BTreeMap<Zone, Vec<String>>,
        has_weights: bool,
        zones: &[Zone],
    ) {
        match live {
            None => self.problems.push(format!(
                "{rwhat}: say which zone's value the record holds now: live = \"{}\"",
                values
                    .keys()
                    .next()
                    .map(|z| z.as_str())
                    .unwrap_or("us-west-2a")
            )),
            Some(z) if zones.contains(z) && !values.contains_key(z) => self.problems.push(format!(
                "{rwhat}: live = \"{z}\" but there is no value for {z}"
            )),
            _ => {}
        }
        if has_weights {
            self.problems
                .push(format!("{rwhat}: `weights` needs weighted = true"));
        }
    }

    /// `[endpoints.NAME]`: HTTP(S) URLs, optionally served from a zone of the topology.
    fn parse_endpoints(
        &mut self,
        raw: &BTreeMap<String, RawEndpoint>,
        zones: &[Zone],
    ) -> BTreeMap<String, EndpointSpec> {
        let mut endpoints = BTreeMap::new();
        for (name, re) in raw {
            let what = format!("endpoint `{name}`");
            if !(re.url.starts_with("http://") || re.url.starts_with("https://")) {
                self.problems.push(format!(
                    "{what}: url `{}` must start with http:// or https://",
                    re.url
                ));
            }
            let zone = re.zone.as_ref().map(|z| self.zone(&what, z, zones));
            endpoints.insert(
                name.clone(),
                EndpointSpec {
                    url: re.url.clone(),
                    method: re
                        .method
                        .clone()
                        .unwrap_or_else(|| "POST".into())
                        .to_ascii_uppercase(),
                    headers: re
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    timeout: self.dur(
                        &format!("{what} timeout"),
                        &re.timeout,
                        Duration::from_secs(10),
                    ),
                    zone,
                    body: re.body.clone().unwrap_or_else(|| "{\"ok\": true}".into()),
                },
            );
        }
        endpoints
    }

    /// `[traffic]` (the ladder, read as in environment files) and `[load]`, checked against
    /// each other and the rest of the topology. The ladder is kept only with a load model.
    fn parse_traffic(
        &mut self,
        text: &str,
        origin: &str,
        raw: &Raw,
        zones: &[Zone],
        endpoints: &BTreeMap<String, EndpointSpec>,
        hosted_zones: &[HostedZoneSpec],
    ) -> (
        Option<crate::traffic::Ladder>,
        Option<super::traffic::LoadSpec>,
    ) {
        let ladder = match raw.traffic {
            Some(_) => super::traffic::parse_ladder(text, origin, zones, &mut self.problems),
            None => None,
        };
        let record_groups: BTreeSet<String> = hosted_zones
            .iter()
            .filter_map(|h| h.group.clone())
            .collect();
        let load = super::traffic::check(
            raw.load.as_ref(),
            ladder.as_ref(),
            raw.traffic.is_some(),
            zones,
            endpoints,
            &record_groups,
            &mut self.problems,
        );
        (ladder.filter(|_| load.is_some()), load)
    }

    /// `regions`, `[region_zones]` and `[[global_clusters]]` (see [`super::regions`]).
    fn parse_multi_region(
        &mut self,
        raw: &Raw,
        region: &Region,
        zones: &[Zone],
    ) -> super::regions::Regions {
        super::regions::parse(
            raw.regions.as_deref(),
            &raw.region_zones,
            &raw.global_clusters,
            (region, zones),
            &mut self.instance_ids,
            &mut self.group_kinds,
            &mut self.problems,
        )
    }

    /// `faults`: one-line faults or tables. Whether they name things the topology has is
    /// checked once the topology is built (`Topology::check_fault`).
    fn parse_faults(&mut self, raw: &[RawFault]) -> Vec<Fault> {
        let mut faults = vec![];
        for (i, rf) in raw.iter().enumerate() {
            let spec = match rf {
                RawFault::Line(l) => FaultSpec::from_line(l),
                RawFault::Table(t) => spec_from_table(t, i),
            };
            match spec.and_then(FaultSpec::build) {
                Ok(f) => faults.push(f),
                Err(e) => self.problems.push(format!("faults: {e}")),
            }
        }
        faults
    }
}

/// Add what `[generate]` expanded to after the file's own entries (an endpoint the file
/// defines is kept); the checks then treat them as if they were written out.
fn append_generated(raw: &mut Raw, g: super::generate::Generated) -> super::generate::GenerateSpec {
    raw.clusters.extend(g.clusters);
    raw.instances.extend(g.instances);
    raw.hosted_zones.push(g.hosted_zone);
    for (name, e) in g.endpoints {
        raw.endpoints.entry(name).or_insert(e);
    }
    g.spec
}

/// A hosted zone id derived from its name, stable across runs: `Z` + 13 base-36 digits.
fn derived_zone_id(name: &str) -> String {
    // FNV-1a, 64 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut s = String::new();
    for _ in 0..13 {
        s.push(digits[(h % 36) as usize] as char);
        h /= 36;
    }
    format!("Z{s}")
}

impl Topology {
    /// The work of evacuating zone `failed` to zone `to` (the writers and records in `failed`
    /// move, every database is snapshotted), for the quota floor (`model::floor`):
    /// `scripts/bench-scale` and the tests that hold the engine to it count the same way.
    pub fn evacuation_workload(&self, failed: &Zone, to: &Zone) -> model::Workload {
        let writer_zone = |c: &ClusterSpec| {
            c.members
                .iter()
                .find(|m| m.id == c.writer)
                .map(|m| m.zone.clone())
        };
        let records: Vec<&RecordSpecSim> = self
            .hosted_zones
            .iter()
            .flat_map(|h| h.records.iter())
            .filter(|r| r.zone_bound() && r.live.as_ref() == Some(failed))
            .collect();
        let new_values = |r: &RecordSpecSim| r.values.get(to).cloned().unwrap_or_default();
        model::Workload {
            clusters: self.clusters.len(),
            cluster_instances: self.clusters.iter().map(|c| c.members.len()).sum(),
            failovers: self
                .clusters
                .iter()
                .filter(|c| writer_zone(c).as_ref() == Some(failed))
                .count(),
            snapshots: self.clusters.len() + self.instances.len(),
            record_sets: self.hosted_zones.iter().map(|h| h.records.len()).sum(),
            upserts: records.len(),
            upsert_elements: records.iter().map(|r| new_values(r).len().max(1) * 2).sum(),
            upsert_chars: records
                .iter()
                .map(|r| new_values(r).iter().map(|v| v.len()).sum::<usize>() * 2)
                .sum(),
        }
    }
}

impl Topology {
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
            origin: path.display().to_string(),
            problems: vec![format!(
                "cannot read the topology file: {e} (examples live in config/sim/)"
            )],
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check a topology; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Topology, TopologyError> {
        let fail = |problems: Vec<String>| TopologyError {
            origin: origin.to_string(),
            problems,
        };
        let mut raw: Raw = toml::from_str(text)
            .map_err(|e| fail(vec![e.to_string().trim_end().replace('\n', "\n    ")]))?;
        let mut c = Checker::default();
        // Every part is checked, in this order, so the problems come in the file's order.
        let (region, zones) = c.parse_zones(&raw.region, &raw.zones);
        let generated = match raw.generate {
            Some(_) if zones.len() >= 2 => {
                super::generate::expand(text, origin, &raw.zones, &mut c.problems)
                    .map(|g| append_generated(&mut raw, g))
            }
            _ => None,
        };
        let start = c.parse_start(raw.start.as_deref());
        let settings = c.parse_settings(&raw.settings);
        let timing = c.parse_timing(&raw.timing);
        let quotas = c.parse_quotas(&raw.quotas);
        let approval = c.parse_approval(&raw.approval);
        let clusters = c.parse_clusters(&raw.clusters, &zones);
        let instances = c.parse_instances(&raw.instances, &zones);
        let hosted_zones = c.parse_hosted_zones(&raw.hosted_zones, &zones);
        let endpoints = c.parse_endpoints(&raw.endpoints, &zones);
        let zonal_shift_resources = c.parse_zonal_resources(&raw.zonal_shift_resources);
        let multi_region = c.parse_multi_region(&raw, &region, &zones);
        let (traffic, load) =
            c.parse_traffic(text, origin, &raw, &zones, &endpoints, &hosted_zones);
        let faults = c.parse_faults(&raw.faults);
        let health = match raw.health {
            Some(_) => super::traffic::parse_section(
                text,
                origin,
                "health",
                &mut c.problems,
                |src, v, d| crate::health::config::parse(src, v, &zones, d),
            ),
            None => None,
        };

        let mut t = Topology {
            name: raw.name.clone(),
            description: raw.description.clone(),
            origin: origin.to_string(),
            region,
            zones,
            route53_region: Region::new(
                raw.route53_region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".into()),
            ),
            seed: raw.seed,
            start,
            settings,
            timing,
            quotas,
            approval,
            clusters,
            instances,
            hosted_zones,
            endpoints,
            zonal_shift_resources,
            multi_region,
            faults: vec![],
            traffic,
            load,
            health,
            generated,
        };
        let dbs: BTreeSet<String> = t
            .clusters
            .iter()
            .map(|c| c.id.to_string())
            .chain(t.instances.iter().map(|i| i.id.to_string()))
            .collect();
        for r in t.hosted_zones.iter().flat_map(|h| &h.records) {
            for dep in r.depends_on.iter().filter(|d| !dbs.contains(*d)) {
                c.problems.push(format!(
                    "record `{}`: `depends_on` names `{dep}`, which is no cluster or instance of the topology",
                    r.name
                ));
            }
        }
        c.problems.extend(t.record_region_problems());
        for f in &faults {
            if let Err(e) = t.check_fault(f) {
                c.problems.push(format!("faults: {e}"));
            }
        }
        t.faults = faults;
        if c.problems.is_empty() {
            Ok(t)
        } else {
            Err(fail(c.problems))
        }
    }

    /// Regions a fault may name: the topology's regions (the home region first) and Route 53's.
    pub fn regions(&self) -> Vec<Region> {
        let mut r = self.multi_region.regions.clone();
        if r.is_empty() {
            r.push(self.region.clone());
        }
        if !r.contains(&self.route53_region) {
            r.push(self.route53_region.clone());
        }
        r
    }

    /// Records keyed by region must name regions of the topology.
    fn record_region_problems(&self) -> Vec<String> {
        let regions = self.regions();
        let mut out = vec![];
        for r in self.hosted_zones.iter().flat_map(|h| &h.records) {
            for k in r.values.keys().filter(|_| r.by_region) {
                if !regions.contains(&Region::new(k.as_str())) {
                    out.push(format!(
                        "record `{} {}`: `{k}` is not a region of the topology ({})",
                        r.name,
                        r.rtype,
                        regions
                            .iter()
                            .map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        out
    }

    /// The zones of `region`: the home region's `zones`, another's from `[region_zones]`.
    pub fn zones_of(&self, region: &Region) -> Vec<Zone> {
        if region == &self.region {
            self.zones.clone()
        } else {
            self.multi_region
                .zones
                .get(region)
                .cloned()
                .unwrap_or_default()
        }
    }

    /// Check that a fault names things this topology has.
    pub fn check_fault(&self, f: &Fault) -> Result<(), super::faults::FaultError> {
        use super::faults::FaultKind;
        let err = |m: String| super::faults::FaultError {
            text: f.to_string(),
            message: m,
        };
        let zone_ok = |z: &Zone| -> Result<(), super::faults::FaultError> {
            if self.zones.contains(z) {
                Ok(())
            } else {
                let known = self
                    .zones
                    .iter()
                    .map(|z| z.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(err(
                    match crate::diag::did_you_mean(
                        z.as_str(),
                        self.zones.iter().map(|z| z.as_str()),
                    ) {
                        Some(s) => format!(
                            "`{z}` is not a zone of topology `{}`; did you mean `{s}`?",
                            self.name
                        ),
                        None => {
                            format!("`{z}` is not a zone of topology `{}` ({known})", self.name)
                        }
                    },
                ))
            }
        };
        match &f.kind {
            FaultKind::AzDown { zone }
            | FaultKind::AzFlap { zone, .. }
            | FaultKind::ProbesFail { zone, .. } => zone_ok(zone),
            FaultKind::RegionDown { region } | FaultKind::RegionImpaired { region } => {
                if self.regions().contains(region) {
                    Ok(())
                } else {
                    Err(err(format!(
                        "`{region}` is not a region of topology `{}` (its regions: {})",
                        self.name,
                        self.regions()
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
            FaultKind::StallFailover { cluster } => {
                if self.clusters.iter().any(|c| &c.id == cluster) {
                    Ok(())
                } else {
                    let ids: Vec<&str> = self.clusters.iter().map(|c| c.id.as_str()).collect();
                    Err(err(match crate::diag::did_you_mean(cluster.as_str(), ids.iter().copied()) {
                        Some(s) => format!("`{cluster}` is not a cluster of topology `{}`; did you mean `{s}`?", self.name),
                        None => format!("`{cluster}` is not a cluster of topology `{}` ({})", self.name, ids.join(", ")),
                    }))
                }
            }
            _ => Ok(()),
        }
    }
}

fn spec_from_table(
    t: &BTreeMap<String, toml::Value>,
    index: usize,
) -> Result<FaultSpec, super::faults::FaultError> {
    let text = format!("faults[{index}]");
    let err = |m: String| super::faults::FaultError {
        text: text.clone(),
        message: m,
    };
    let mut spec = FaultSpec {
        text: text.clone(),
        ..Default::default()
    };
    for (k, v) in t {
        let s = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(err(format!(
                    "`{k}` must be a string or a number, not {}",
                    other.type_str()
                )))
            }
        };
        match k.as_str() {
            "kind" => spec.kind = s.to_ascii_lowercase(),
            "zone" | "region" | "operation" | "service" | "cluster" => {
                if spec.subject.replace(s).is_some() {
                    return Err(err(
                        "give one of zone, region, operation, service or cluster".into(),
                    ));
                }
            }
            "applied" => {
                if v.as_bool() == Some(true) {
                    spec.flags.push("applied".into());
                }
            }
            _ => {
                spec.options.insert(k.clone(), s);
            }
        }
    }
    if spec.kind.is_empty() {
        return Err(err(
            "a fault table needs a `kind` (az-down, az-flap, ...)".into()
        ));
    }
    spec.text = format!("{text} ({})", spec.kind);
    Ok(spec)
}

/// The environment runbooks bind against in this topology: groups from each resource's
/// `group`, records with one value per zone, the endpoints, the engine settings, and the
/// zones in the topology's order of preference.
pub fn environment_for(t: &Topology) -> Environment {
    Environment {
        name: t.name.clone(),
        description: Some(
            t.description
                .clone()
                .unwrap_or_else(|| format!("simulated topology {}", t.origin)),
        ),
        region: t.region.to_string(),
        regions: if t.multi_region.regions.is_empty() {
            vec![t.region.clone()]
        } else {
            t.multi_region.regions.clone()
        },
        zones: t.zones.clone(),
        aws: AwsAccess::default(),
        simulated: None,
        // The client paces itself by the account's quotas, which the topology models.
        quotas: t.quotas.client(),
        settings: Settings {
            poll_interval: t.settings.poll_interval,
            max_concurrency: t.settings.max_concurrency,
            max_attempts: t.settings.max_attempts,
            ..Settings::default()
        },
        groups: groups_for(t),
        endpoints: t
            .endpoints
            .iter()
            .map(|(n, e)| {
                (
                    n.clone(),
                    Endpoint {
                        url: e.url.clone(),
                        method: e.method.clone(),
                        headers: e.headers.clone(),
                        timeout: e.timeout,
                    },
                )
            })
            .collect(),
        health: t.health.clone(),
        traffic: t.traffic.clone(),
        audit: Default::default(),
        drills: vec![],
        source: None,
    }
}

/// The groups of the derived environment: clusters, instances and hosted zones by their
/// `group`, a hosted zone's records tied to zones (not the others).
fn groups_for(t: &Topology) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for c in &t.clusters {
        if let Group::DbClusters { clusters } = groups
            .entry(c.group.clone())
            .or_insert_with(|| Group::DbClusters { clusters: vec![] })
        {
            clusters.push(c.id.clone());
        }
    }
    for i in &t.instances {
        if let Group::DbInstances { instances } = groups
            .entry(i.group.clone())
            .or_insert_with(|| Group::DbInstances { instances: vec![] })
        {
            instances.push(i.id.clone());
        }
    }
    // A generated topology always has the groups the stock evacuation runbook names, even
    // when it generated no Multi-AZ instance (the step then has nothing to do).
    if t.generated.is_some() {
        groups
            .entry(super::generate::INSTANCE_GROUP.to_string())
            .or_insert_with(|| Group::DbInstances { instances: vec![] });
    }
    for h in &t.hosted_zones {
        let Some(g) = &h.group else { continue };
        let records: Vec<RecordSpec> = h
            .records
            .iter()
            .filter(|r| r.zone_bound())
            .map(|r| RecordSpec {
                name: r.name.clone(),
                rtype: r.rtype.clone(),
                ttl: r.ttl,
                values: if r.by_region {
                    BTreeMap::new()
                } else {
                    r.values.clone()
                },
                region_values: if r.by_region {
                    r.values
                        .iter()
                        .map(|(k, v)| (Region::new(k.as_str()), v.clone()))
                        .collect()
                } else {
                    BTreeMap::new()
                },
                weighted: r.weighted,
                weight: r.weight,
                depends_on: r.depends_on.clone(),
            })
            .collect();
        if let Group::Records { records: rs, .. } =
            groups.entry(g.clone()).or_insert_with(|| Group::Records {
                hosted_zone: h.name.clone(),
                records: vec![],
            })
        {
            rs.extend(records);
        }
    }
    for g in &t.multi_region.global_clusters {
        if let Group::GlobalClusters { global_clusters } = groups
            .entry(g.group.clone())
            .or_insert_with(|| Group::GlobalClusters {
                global_clusters: vec![],
            })
        {
            global_clusters.push(g.id.clone());
        }
    }
    let region = t.region.to_string();
    for r in &t.zonal_shift_resources {
        if let Group::ZonalShiftResources { resources, .. } = groups
            .entry(r.group.clone())
            .or_insert_with(|| Group::ZonalShiftResources {
                resources: vec![],
                zone_ids: t
                    .zones
                    .iter()
                    .filter_map(|z| Some((z.clone(), sim_zone_id(&region, &t.zones, z)?)))
                    .collect(),
            })
        {
            resources.push(r.arn.clone());
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
name = "mini"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b"]
faults = ["az-down us-west-2a at 0s", { kind = "route53-down", at = "1m", for = "30s" }]

[[clusters]]
id = "db"
writer = "db-a"
instances = [{ id = "db-a", zone = "us-west-2a", tier = 0 }, { id = "db-b", zone = "us-west-2b" }]

[[hosted_zones]]
name = "example.com"
group = "web"

[[hosted_zones.records]]
name = "api.example.com."
values = { "us-west-2a" = "a.lb", "us-west-2b" = "b.lb" }
live = "us-west-2a"

[[hosted_zones.records]]
name = "example.com."
type = "TXT"
value = "v=spf1 -all"

"#;

    #[test]
    fn parses_with_defaults_and_derives_an_environment() {
        let t = Topology::parse(MINI, "mini.toml").unwrap();
        assert_eq!(
            t.timing.aurora_failover,
            Span::new(Duration::from_secs(20), Duration::from_secs(30))
        );
        assert_eq!(t.quotas.rds_burst, 300.0);
        assert_eq!(t.hosted_zones[0].name, "example.com.");
        assert!(t.hosted_zones[0].id.starts_with('Z') && t.hosted_zones[0].id.len() == 14);
        assert_eq!(t.faults.len(), 2);
        assert_eq!(t.faults[1].to_string(), "route53-down at 1m for 30s");
        let env = environment_for(&t);
        assert!(
            matches!(env.groups.get("aurora"), Some(Group::DbClusters { clusters }) if clusters.len() == 1)
        );
        match env.groups.get("web") {
            Some(Group::Records {
                hosted_zone,
                records,
            }) => {
                assert_eq!(hosted_zone, "example.com.");
                assert_eq!(records.len(), 1, "the TXT record is not tied to zones");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let bad = MINI
            .replace("writer = \"db-a\"", "writer = \"db-x\"")
            .replace("live = \"us-west-2a\"", "live = \"us-west-2q\"")
            .replace("az-down us-west-2a", "az-down us-west-2z");
        let e = Topology::parse(&bad, "bad.toml").unwrap_err();
        assert_eq!(e.problems.len(), 3, "{e}");
        assert!(
            e.problems[0].contains("writer `db-x` is not one of its instances"),
            "{e}"
        );
        assert!(e.problems[1].contains("`us-west-2q` is not a zone"), "{e}");
        assert!(
            e.problems[2].contains("`us-west-2z` is not a zone of topology `mini`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_place() {
        let e = Topology::parse(
            &MINI.replace("[[clusters]]", "[[clusters]]\nwriterr = 1"),
            "x.toml",
        )
        .unwrap_err();
        assert!(e.problems[0].contains("writerr"), "{e}");
    }
}
