//! Environments (`config/<name>.toml`): where a runbook runs and what its groups name.
//!
//! The same runbook runs against `local`, `staging` and `prod`; only the environment changes.
//! An environment gives the region and zones, how to reach AWS (profile or a local
//! `endpoint_url`), the resource groups that runbooks refer to, and HTTP endpoints.

use crate::diag::{Diagnostics, SourceFile};
use crate::tomlx::{self, parse_document, SKind, SVal, Spanned, TableReader};
use crate::traffic::{Ladder, TierAction};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region, Zone};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct Environment {
    pub name: String,
    pub description: Option<String>,
    pub region: String,
    /// The regions runs may talk to, the primary `region` first, then the others in order of
    /// preference (`regions = ["us-west-2", "us-east-1"]`): global clusters span them.
    pub regions: Vec<Region>,
    /// Zones in order of preference: when a record must move, it goes to the first healthy one.
    pub zones: Vec<Zone>,
    pub aws: AwsAccess,
    pub settings: Settings,
    pub groups: BTreeMap<String, Group>,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Probes, quorum and triggers (`[health]`); see `health::config`.
    pub health: Option<crate::health::config::HealthConfig>,
    /// Set when the environment is a simulated world (`simulated = "sim/storefront.toml"`):
    /// `plan` and `run` then talk to the simulator instead of AWS.
    pub simulated: Option<SimulatedSpec>,
    /// The load-shedding ladder (`[traffic]`); see `traffic::config`.
    pub traffic: Option<Ladder>,
    /// Where each run's final journal head goes (`[audit]`).
    pub audit: Audit,
    /// `[[drills]]`: the drill schedule (docs/drills.md).
    pub drills: Vec<crate::schedule::DrillSchedule>,
    /// The account's API quotas the client-side limiter paces calls by (`[quotas]`; AWS's
    /// defaults unless the account's were raised or a share is kept for other tools).
    pub quotas: crate::cloud::model::Quotas,
    #[serde(skip)]
    pub source: Option<SourceFile>,
}

/// `[audit]`: where the journal's head (`SEQ:HASH`) is remembered outside the journal when a
/// run ends, so that deleting the journal's tail is caught by `failover verify`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Audit {
    /// A file the head is appended to (a line `SEQ:HASH when run status`).
    pub anchor_file: Option<String>,
    /// An endpoint (of `[endpoints]`) told the head with each run's final status.
    pub notify: Option<String>,
}

/// A simulated environment: a topology file (relative to the config directory), a seed and
/// faults in the `--fault` syntax.
#[derive(Clone, Debug, Serialize)]
pub struct SimulatedSpec {
    pub topology: PathBuf,
    pub seed: Option<u64>,
    pub faults: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AwsAccess {
    pub profile: Option<String>,
    /// A local AWS peer (moto) instead of AWS itself.
    pub endpoint_url: Option<String>,
    /// The 12-digit account id, for the ARNs of `failover iam-policy`.
    pub account_id: Option<String>,
}

/// Engine knobs an environment may tune.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// How often waits poll the world (cluster status, GetChange).
    pub poll_interval: Duration,
    /// How many steps may run at once.
    pub max_concurrency: usize,
    /// Attempts per AWS call on throttling (and per read on transient errors).
    pub max_attempts: u32,
    /// How long a run's leases live without a heartbeat (renewed every third of it).
    pub lease_ttl: Duration,
    /// Who may approve the gates of runs on this environment (empty: anyone but the
    /// initiator). Names as given, compared after trimming and case folding.
    pub approvers: Vec<String>,
    /// How many calls of one step may be in flight at once (the quotas pace them).
    pub max_calls_in_flight: usize,
    /// How long after the plan observed the world a step may decide on that observation
    /// instead of observing again (zero: every step observes for itself).
    pub plan_fresh_for: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            max_concurrency: 8,
            max_attempts: 6,
            lease_ttl: Duration::from_secs(90),
            approvers: vec![],
            max_calls_in_flight: 64,
            plan_fresh_for: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Group {
    /// Aurora clusters or Multi-AZ DB clusters.
    DbClusters { clusters: Vec<ClusterId> },
    /// Multi-AZ DB instances (not cluster members).
    DbInstances { instances: Vec<InstanceId> },
    /// Route 53 records with one value per zone.
    Records {
        hosted_zone: String,
        records: Vec<RecordSpec>,
    },
    /// Resources registered with ARC zonal shift (load balancer or Auto Scaling group ARNs),
    /// and the account's Availability Zone id of each zone (ARC speaks zone ids).
    ZonalShiftResources {
        resources: Vec<String>,
        zone_ids: BTreeMap<Zone, String>,
    },
    /// Aurora global databases, spanning the environment's `regions`.
    GlobalClusters {
        global_clusters: Vec<GlobalClusterId>,
    },
}

impl Group {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Group::DbClusters { .. } => "db_clusters",
            Group::DbInstances { .. } => "db_instances",
            Group::Records { .. } => "records",
            Group::ZonalShiftResources { .. } => "zonal_shift_resources",
            Group::GlobalClusters { .. } => "global_clusters",
        }
    }
}

pub const GROUP_KINDS: &[&str] = &[
    "db_clusters",
    "db_instances",
    "records",
    "zonal_shift_resources",
    "global_clusters",
];

/// One logical record: a plain record pointed at one zone's value, or a weighted record with
/// one record set per zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordSpec {
    pub name: String,
    pub rtype: String,
    pub ttl: i64,
    /// zone -> value(s) for that zone.
    pub values: BTreeMap<Zone, Vec<String>>,
    /// region -> value(s), for a record that moves between the environment's `regions`
    /// (`values` keyed by region; `values` above is then empty).
    pub region_values: BTreeMap<Region, Vec<String>>,
    /// Weighted routing: one record set per zone, set identifier = zone name.
    pub weighted: bool,
    /// Weight given to a healthy zone's record set when it has to be brought back from 0.
    pub weight: i64,
    /// Databases (cluster or instance ids) the record points at: a `dns.update` step with
    /// `records_after` moves it as soon as they are out of the evacuated zone.
    pub depends_on: Vec<String>,
}

impl From<&RecordSpec> for crate::cloud::RecordSpecOut {
    fn from(r: &RecordSpec) -> Self {
        Self {
            name: r.name.clone(),
            rtype: r.rtype.clone(),
            ttl: r.ttl,
            values: r.values.clone(),
            region_values: r.region_values.clone(),
            weighted: r.weighted,
            weight: r.weight,
            depends_on: r.depends_on.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub url: String,
    pub method: String,
    /// Header values may contain `${secret:NAME}`, read from the process environment at run
    /// time and never written to the journal.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Environment {
    pub fn path_for(config_dir: &Path, name: &str) -> PathBuf {
        config_dir.join(format!("{name}.toml"))
    }

    /// Names of the environments in a config directory.
    pub fn list(config_dir: &Path) -> Vec<String> {
        let mut out = vec![];
        if let Ok(rd) = std::fs::read_dir(config_dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    if let Some(s) = p.file_stem().and_then(|s| s.to_str()) {
                        out.push(s.to_string());
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Load `config_dir/<name>.toml`, or explain which environments exist.
    pub fn load(config_dir: &Path, name: &str) -> Result<Environment, Diagnostics> {
        let path = Self::path_for(config_dir, name);
        if !path.exists() {
            let known = Self::list(config_dir);
            let hint = if known.is_empty() {
                format!(
                    "no environments found in {}; pass --config-dir or create {}",
                    config_dir.display(),
                    path.display()
                )
            } else {
                match crate::diag::did_you_mean(name, known.iter().map(|s| s.as_str())) {
                    Some(s) => format!(
                        "did you mean `--env {s}`? known environments: {}",
                        known.join(", ")
                    ),
                    None => format!("known environments: {}", known.join(", ")),
                }
            };
            return Err(crate::diag::Diagnostic {
                file: path.display().to_string(),
                line: 0,
                col: 0,
                message: format!("environment `{name}` does not exist"),
                hint: Some(hint),
            }
            .into());
        }
        let src = SourceFile::read(&path)?;
        Self::parse(src, name)
    }

    pub fn parse(src: SourceFile, default_name: &str) -> Result<Environment, Diagnostics> {
        let doc = parse_document(&src)?;
        let mut d = Diagnostics::default();
        let is_sim =
            matches!(&doc.kind, SKind::Table(e) if e.iter().any(|(k, _, _)| k == "simulated"));
        let env = if is_sim {
            parse_simulated(&src, &doc, default_name, &mut d)
        } else {
            parse_env(&src, &doc, default_name, &mut d)
        };
        match env {
            Some(mut e) if d.is_empty() => {
                e.source = Some(src);
                Ok(e)
            }
            _ => Err(d.sorted()),
        }
    }

    pub fn healthy_zones(&self, avoid: &[Zone]) -> Vec<Zone> {
        self.zones
            .iter()
            .filter(|z| !avoid.contains(z))
            .cloned()
            .collect()
    }
}

/// An environment that is a simulated world. Its groups and endpoints come from the topology
/// (the caller loads it: `cloud::sim::environment_for`).
fn parse_simulated(
    src: &SourceFile,
    doc: &SVal,
    default_name: &str,
    d: &mut Diagnostics,
) -> Option<Environment> {
    let mut t = TableReader::new(src, doc, "the simulated environment", d)?;
    let name = t
        .str("name", d)
        .map(|s| s.value)
        .unwrap_or_else(|| default_name.to_string());
    let description = t.str("description", d).map(|s| s.value);
    let topology = t.str("simulated", d)?;
    let base = src.path.parent().unwrap_or(Path::new("."));
    let path = base.join(&topology.value);
    if !path.exists() {
        d.push(src.diag(topology.span.clone(), format!("topology `{}` not found (looked for {})", topology.value, path.display()), Some("the path is relative to the config directory, e.g. simulated = \"sim/storefront.toml\"".into())));
    }
    let seed = t.int("seed", 0, i64::MAX, d).map(|s| s.value as u64);
    let faults = if t.has("faults") {
        t.str_list("faults", d)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.value)
            .collect()
    } else {
        vec![]
    };
    let drills = t
        .get("drills")
        .map(|v| parse_drills(src, v, &BTreeMap::new(), &[], d))
        .unwrap_or_default();
    t.finish(
        &[
            "name",
            "description",
            "simulated",
            "seed",
            "faults",
            "drills",
        ],
        d,
    );
    Some(Environment {
        name,
        description,
        region: String::new(),
        regions: vec![],
        zones: vec![],
        aws: AwsAccess::default(),
        settings: Settings::default(),
        groups: BTreeMap::new(),
        endpoints: BTreeMap::new(),
        health: None,
        simulated: Some(SimulatedSpec {
            topology: path,
            seed,
            faults,
        }),
        traffic: None,
        audit: Audit::default(),
        drills,
        quotas: Default::default(),
        source: None,
    })
}

const ENV_KEYS: &[&str] = &[
    "name",
    "description",
    "region",
    "regions",
    "zones",
    "aws",
    "settings",
    "groups",
    "endpoints",
    "health",
    "traffic",
    "audit",
    "quotas",
    "drills",
];

fn parse_env(
    src: &SourceFile,
    doc: &SVal,
    default_name: &str,
    d: &mut Diagnostics,
) -> Option<Environment> {
    let mut t = TableReader::new(src, doc, "the environment", d)?;
    let name = parse_name(src, &mut t, default_name, d);
    let description = t.str("description", d).map(|s| s.value);
    let region = t.req_str("region", "add `region = \"us-west-2\"`", d);
    let zones = parse_zones(src, &mut t, region.as_ref(), d);
    let regions = parse_regions(src, &mut t, region.as_ref(), d);
    let aws = t
        .get("aws")
        .map(|v| parse_aws(src, v, d))
        .unwrap_or_default();
    let settings = t
        .get("settings")
        .map(|v| parse_settings(src, v, d))
        .unwrap_or_default();
    let groups = t
        .get("groups")
        .map(|v| parse_groups(src, v, &zones, &regions, d))
        .unwrap_or_default();
    let endpoints = t
        .get("endpoints")
        .map(|v| parse_endpoints(src, v, d))
        .unwrap_or_default();
    let health = t
        .get("health")
        .and_then(|v| crate::health::config::parse(src, v, &zones, d));
    if let Some(h) = &health {
        let names: Vec<&str> = endpoints.keys().map(|s| s.as_str()).collect();
        d.extend(h.check_endpoints(src, &names));
    }
    let traffic = t
        .get("traffic")
        .and_then(|v| crate::traffic::config::parse(src, v, &zones, d));
    if let (Some(l), Some(tv)) = (&traffic, t.get("traffic")) {
        check_tier_actions(src, l, tv, &endpoints, &groups, d);
    }
    let audit = t
        .get("audit")
        .map(|v| parse_audit(src, v, &endpoints, d))
        .unwrap_or_default();
    let quotas = t
        .get("quotas")
        .map(|v| parse_quotas(src, v, d))
        .unwrap_or_default();
    let drills = t
        .get("drills")
        .map(|v| {
            let probes: Vec<String> = health
                .as_ref()
                .map(|h| h.probes.iter().map(|p| p.name.clone()).collect())
                .unwrap_or_default();
            parse_drills(src, v, &endpoints, &probes, d)
        })
        .unwrap_or_default();
    check_global_groups(src, &mut t, &groups, &regions, d);
    t.finish(ENV_KEYS, d);
    Some(Environment {
        name,
        description,
        region: region.map(|r| r.value).unwrap_or_default(),
        regions,
        zones,
        aws,
        settings,
        groups,
        endpoints,
        health,
        simulated: None,
        traffic,
        audit,
        drills,
        quotas,
        source: None,
    })
}

/// `[quotas]`: the account's API quotas (docs/environments.md). Each figure replaces AWS's
/// default; a bucket must allow at least one call.
fn parse_quotas(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> crate::cloud::model::Quotas {
    let mut q = crate::cloud::model::Quotas::default();
    if let Some(mut t) = TableReader::new(src, v, "[quotas]", d) {
        for (key, field) in [
            ("rds_burst", &mut q.rds_burst),
            ("rds_per_s", &mut q.rds_per_s),
            ("route53_burst", &mut q.route53_burst),
            ("route53_per_s", &mut q.route53_per_s),
            ("cloudwatch_burst", &mut q.cloudwatch_burst),
            ("cloudwatch_per_s", &mut q.cloudwatch_per_s),
        ] {
            if let Some(n) = t.int(key, 1, 100_000, d) {
                *field = n.value as f64;
            }
        }
        if let Some(w) = t.duration("route53_zone_interval", d) {
            q.route53_zone_interval = w.value;
        }
        t.finish(
            &[
                "rds_burst",
                "rds_per_s",
                "route53_burst",
                "route53_per_s",
                "route53_zone_interval",
                "cloudwatch_burst",
                "cloudwatch_per_s",
            ],
            d,
        );
    }
    q
}

/// `name`, which must be the file's name when given; the file's name otherwise.
fn parse_name(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    default_name: &str,
    d: &mut Diagnostics,
) -> String {
    match t.str("name", d) {
        Some(n) if n.value != default_name => {
            d.push(src.diag(n.span.clone(), format!("the environment is named `{}` but its file is `{default_name}.toml`", n.value), Some(format!("runs record the environment by name and `--env` finds it by file name: rename the file or set name = \"{default_name}\""))));
            n.value
        }
        Some(n) => n.value,
        None => default_name.to_string(),
    }
}

/// `zones` (required): each in the region, none listed twice.
fn parse_zones(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    region: Option<&Spanned<String>>,
    d: &mut Diagnostics,
) -> Vec<Zone> {
    let zones_raw = if t.has("zones") {
        t.str_list("zones", d).unwrap_or_default()
    } else {
        d.push(src.diag(t.span.clone(), "the environment is missing the required key `zones`", Some("list the availability zones in order of preference: zones = [\"us-west-2a\", \"us-west-2b\", \"us-west-2c\"]".into())));
        vec![]
    };
    let mut zones = vec![];
    for z in &zones_raw {
        let zone = Zone::new(z.value.clone());
        if let Some(r) = region {
            if zone.region().as_str() != r.value {
                d.push(src.diag(
                    z.span.clone(),
                    format!("zone `{}` is not in region `{}`", z.value, r.value),
                    Some("zones are named after their region, e.g. us-west-2a in us-west-2".into()),
                ));
            }
        }
        if zones.contains(&zone) {
            d.push(src.diag(
                z.span.clone(),
                format!("zone `{}` is listed twice", z.value),
                None,
            ));
        }
        zones.push(zone);
    }
    zones
}

/// `regions` (optional): the regions runs may talk to, each a well-formed region name, listed
/// once, the primary `region` among them; it comes first in the result whatever its place.
fn parse_regions(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    region: Option<&Spanned<String>>,
    d: &mut Diagnostics,
) -> Vec<Region> {
    let primary = region.map(|r| Region::new(r.value.clone()));
    let mut out: Vec<Region> = primary.iter().cloned().collect();
    if !t.has("regions") {
        return out;
    }
    let listed = t.str_list("regions", d).unwrap_or_default();
    let mut seen: Vec<&str> = vec![];
    for r in &listed {
        let reg = Region::new(r.value.clone());
        if !reg.is_well_formed() {
            d.push(src.diag(
                r.span.clone(),
                format!("`{}` is not a region name", r.value),
                Some("regions are named like us-west-2, eu-central-1".into()),
            ));
        } else if seen.contains(&r.value.as_str()) {
            d.push(src.diag(
                r.span.clone(),
                format!("region `{}` is listed twice", r.value),
                None,
            ));
        } else if !out.contains(&reg) {
            out.push(reg);
        }
        seen.push(&r.value);
    }
    if let Some(p) = primary.filter(|p| !listed.iter().any(|r| r.value == p.as_str())) {
        let span = listed
            .first()
            .map(|r| r.span.clone())
            .unwrap_or(t.span.clone());
        d.push(src.diag(
            span,
            format!("`regions` does not list the primary region `{p}`"),
            Some(format!(
                "add it: regions = [\"{p}\", ...]; `region` is where single-region groups live"
            )),
        ));
    }
    out
}

/// A `global_clusters` group spans regions: the environment must name at least two.
fn check_global_groups(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    groups: &BTreeMap<String, Group>,
    regions: &[Region],
    d: &mut Diagnostics,
) {
    if regions.len() >= 2 {
        return;
    }
    for (name, g) in groups {
        if matches!(g, Group::GlobalClusters { .. }) {
            let span = t
                .get("groups")
                .map(|v| v.span.clone())
                .unwrap_or(t.span.clone());
            let example = regions.first().map(|r| r.as_str()).unwrap_or("us-west-2");
            d.push(src.diag(
                span,
                format!("group `{name}` holds global clusters, but the environment names one region only"),
                Some(format!("list the regions the global clusters span: regions = [\"{example}\", \"us-east-1\"]")),
            ));
        }
    }
}

/// `[aws]`: profile and endpoint_url.
fn parse_aws(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> AwsAccess {
    let mut aws = AwsAccess::default();
    if let Some(mut a) = TableReader::new(src, v, "[aws]", d) {
        aws.profile = a.str("profile", d).map(|s| s.value);
        aws.endpoint_url = a.str("endpoint_url", d).map(|s| s.value);
        if let Some(u) = &aws.endpoint_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                d.push(src.diag(
                    v.span.clone(),
                    format!("endpoint_url `{u}` must start with http:// or https://"),
                    None,
                ));
            }
        }
        if let Some(id) = a.str("account_id", d) {
            if id.value.len() != 12 || !id.value.chars().all(|c| c.is_ascii_digit()) {
                d.push(src.diag(
                    id.span.clone(),
                    format!("account_id `{}` is not a 12-digit AWS account id", id.value),
                    Some("aws sts get-caller-identity --query Account".into()),
                ));
            }
            aws.account_id = Some(id.value);
        }
        a.finish(&["profile", "endpoint_url", "account_id"], d);
    }
    aws
}

/// `[audit]`: an anchor file and an endpoint to tell the journal's head.
fn parse_audit(
    src: &SourceFile,
    v: &SVal,
    endpoints: &BTreeMap<String, Endpoint>,
    d: &mut Diagnostics,
) -> Audit {
    let mut audit = Audit::default();
    if let Some(mut a) = TableReader::new(src, v, "[audit]", d) {
        audit.anchor_file = a.str("anchor_file", d).map(|s| s.value);
        if let Some(n) = a.str("notify", d) {
            if !endpoints.contains_key(&n.value) {
                let hint =
                    crate::diag::did_you_mean(&n.value, endpoints.keys().map(|k| k.as_str()))
                        .map(|m| format!("did you mean `{m}`?"))
                        .or_else(|| Some("add it under [endpoints]".into()));
                d.push(src.diag(
                    n.span.clone(),
                    format!(
                        "[audit] notify names endpoint `{}`, which is not defined",
                        n.value
                    ),
                    hint,
                ));
            }
            audit.notify = Some(n.value);
        }
        a.finish(&["anchor_file", "notify"], d);
    }
    audit
}

/// `[[drills]]`: the drill schedule, every problem at file:line:col.
fn parse_drills(
    src: &SourceFile,
    v: &SVal,
    endpoints: &BTreeMap<String, Endpoint>,
    probes: &[String],
    d: &mut Diagnostics,
) -> Vec<crate::schedule::DrillSchedule> {
    let SKind::Array(items) = &v.kind else {
        d.push(src.diag(
            v.span.clone(),
            "`drills` must be an array of tables: [[drills]]",
            Some("write each drill as a [[drills]] table with name, runbook and cron".into()),
        ));
        return vec![];
    };
    let mut out: Vec<crate::schedule::DrillSchedule> = vec![];
    for (i, item) in items.iter().enumerate() {
        if let Some(s) = parse_drill(src, i, item, (endpoints, probes), d) {
            if out.iter().any(|x| x.name == s.name) {
                d.push(src.diag(
                    item.span.clone(),
                    format!("drill `{}` is listed twice", s.name),
                    Some("give each [[drills]] a name of its own".into()),
                ));
            }
            out.push(s);
        }
    }
    out
}

/// One `[[drills]]` table.
fn parse_drill(
    src: &SourceFile,
    i: usize,
    v: &SVal,
    (endpoints, probes): (&BTreeMap<String, Endpoint>, &[String]),
    d: &mut Diagnostics,
) -> Option<crate::schedule::DrillSchedule> {
    use crate::schedule::{parse_cron, parse_zone, DateRange, WeeklyWindow};
    let mut t = TableReader::new(src, v, format!("[[drills]] #{}", i + 1), d)?;
    let name = t.req_str(
        "name",
        "add `name = \"weekly-az\"` (unique in this file)",
        d,
    );
    let runbook = t.req_str(
        "runbook",
        "add `runbook = \"runbooks/az-evacuation.toml\"`",
        d,
    );
    let cron = t.req_str(
        "cron",
        "add e.g. `cron = \"0 3 * * TUE\"` (03:00 every Tuesday)",
        d,
    );
    let check = |sp: &Option<tomlx::Spanned<String>>,
                 f: &dyn Fn(&str) -> Result<(), String>,
                 d: &mut Diagnostics| {
        if let Some(x) = sp {
            if let Err(e) = f(&x.value) {
                d.push(src.diag(x.span.clone(), e, None));
            }
        }
    };
    check(&cron, &|c| parse_cron(c).map(|_| ()), d);
    let timezone = t.str("timezone", d);
    check(&timezone, &|z| parse_zone(z).map(|_| ()), d);
    let list = |t: &mut TableReader<'_>, key: &str, d: &mut Diagnostics| {
        if t.has(key) {
            t.str_list(key, d).unwrap_or_default()
        } else {
            vec![]
        }
    };
    let mut windows = vec![];
    for w in list(&mut t, "blackout_windows", d) {
        match WeeklyWindow::parse(&w.value) {
            Ok(x) => windows.push(x),
            Err(e) => d.push(src.diag(w.span.clone(), e, None)),
        }
    }
    let mut dates = vec![];
    for w in list(&mut t, "blackout_dates", d) {
        match DateRange::parse(&w.value) {
            Ok(x) => dates.push(x),
            Err(e) => d.push(src.diag(w.span.clone(), e, None)),
        }
    }
    let params = t
        .get("params")
        .map(|pv| parse_headers_as(src, pv, "params", d))
        .unwrap_or_default();
    let notify = t.str("notify", d);
    if let Some(n) = notify
        .as_ref()
        .filter(|n| !endpoints.contains_key(&n.value))
    {
        let hint = crate::diag::did_you_mean(&n.value, endpoints.keys().map(|k| k.as_str()))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| Some("add it under [endpoints]".into()));
        d.push(src.diag(
            n.span.clone(),
            format!(
                "drill notify names endpoint `{}`, which is not defined",
                n.value
            ),
            hint,
        ));
    }
    let no_failback = t.bool("no_failback", d).map(|b| b.value).unwrap_or(false);
    let max_duration = t.duration("max_duration", d).map(|x| x.value);
    let stop_on: Vec<String> = list(&mut t, "stop_on", d)
        .into_iter()
        .filter_map(|p| {
            if probes.contains(&p.value) {
                return Some(p.value);
            }
            let hint = crate::diag::did_you_mean(&p.value, probes.iter().map(|k| k.as_str()))
                .map(|m| format!("did you mean `{m}`?"))
                .unwrap_or_else(|| {
                    "stop conditions are the [health] probes of this environment (docs/health.md)"
                        .into()
                });
            d.push(src.diag(
                p.span.clone(),
                format!("stop_on names probe `{}`, which is not defined", p.value),
                Some(hint),
            ));
            None
        })
        .collect();
    let start_within = t
        .duration("start_within", d)
        .map(|x| x.value)
        .unwrap_or(Duration::from_secs(3600));
    t.finish(
        &[
            "name",
            "runbook",
            "params",
            "cron",
            "timezone",
            "blackout_windows",
            "blackout_dates",
            "no_failback",
            "max_duration",
            "stop_on",
            "start_within",
            "notify",
        ],
        d,
    );
    let runbook = runbook?;
    Some(crate::schedule::DrillSchedule {
        name: name?.value,
        at: src.place(runbook.span.clone()),
        runbook: runbook.value,
        params: params.into_iter().collect(),
        cron: cron?.value,
        timezone: timezone.map(|z| z.value).unwrap_or_else(|| "UTC".into()),
        blackout_windows: windows,
        blackout_dates: dates,
        no_failback,
        max_duration,
        stop_on,
        start_within,
        notify: notify.map(|n| n.value),
    })
}

/// A table of strings (`params`, `headers`).
fn parse_headers_as(
    src: &SourceFile,
    hv: &SVal,
    what: &str,
    d: &mut Diagnostics,
) -> Vec<(String, String)> {
    let mut out = vec![];
    if let SKind::Table(hs) = &hv.kind {
        for (hk, _, hval) in hs {
            if let Some(s) = tomlx::expect_str(src, hval, &format!("{what} `{hk}`"), d) {
                out.push((hk.clone(), s.value));
            }
        }
    } else {
        d.push(src.diag(
            hv.span.clone(),
            format!("`{what}` must be a table of strings"),
            Some(format!("e.g. {what} = {{ failed_az = \"us-west-2a\" }}")),
        ));
    }
    out
}

/// `[settings]`: the engine knobs, defaults for those not given.
fn parse_settings(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> Settings {
    let mut settings = Settings::default();
    if let Some(mut s) = TableReader::new(src, v, "[settings]", d) {
        if let Some(p) = s.duration("poll_interval", d) {
            if p.value < Duration::from_millis(10) {
                d.push(src.diag(
                    p.span.clone(),
                    "poll_interval must be at least 10ms",
                    Some("5s is a good value against AWS; 50ms-200ms against a local peer".into()),
                ));
            }
            settings.poll_interval = p.value;
        }
        if let Some(c) = s.int("max_concurrency", 1, 256, d) {
            settings.max_concurrency = c.value as usize;
        }
        if let Some(c) = s.int("max_attempts", 1, 20, d) {
            settings.max_attempts = c.value as u32;
        }
        if let Some(t) = s.duration("lease_ttl", d) {
            if t.value < Duration::from_secs(3) || t.value > Duration::from_secs(3600) {
                d.push(src.diag(
                    t.span.clone(),
                    "lease_ttl must be between 3s and 1h",
                    Some("90s is the default: a dead run's resources are free again 90s after its last heartbeat".into()),
                ));
            }
            settings.lease_ttl = t.value;
        }
        if let Some(a) = s.str_list("approvers", d) {
            settings.approvers = a.into_iter().map(|n| n.value).collect();
        }
        if let Some(c) = s.int("max_calls_in_flight", 1, 1000, d) {
            settings.max_calls_in_flight = c.value as usize;
        }
        if let Some(t) = s.duration("plan_fresh_for", d) {
            if t.value > Duration::from_secs(60) {
                d.push(src.diag(
                    t.span.clone(),
                    "plan_fresh_for must be at most 60s",
                    Some("5s is the default; \"0s\" makes every step observe for itself".into()),
                ));
            }
            settings.plan_fresh_for = t.value;
        }
        s.finish(
            &[
                "poll_interval",
                "max_concurrency",
                "max_attempts",
                "lease_ttl",
                "approvers",
                "max_calls_in_flight",
                "plan_fresh_for",
            ],
            d,
        );
    }
    settings
}

/// `[groups]`: a table of groups.
fn parse_groups(
    src: &SourceFile,
    v: &SVal,
    zones: &[Zone],
    regions: &[Region],
    d: &mut Diagnostics,
) -> BTreeMap<String, Group> {
    let mut groups = BTreeMap::new();
    if let SKind::Table(entries) = &v.kind {
        for (gname, _, gv) in entries {
            if let Some(g) = parse_group(src, gname, gv, zones, regions, d) {
                groups.insert(gname.clone(), g);
            }
        }
    } else {
        d.push(src.diag(v.span.clone(), "`groups` must be a table of groups", None));
    }
    groups
}

/// `[endpoints]`: a table of endpoints.
fn parse_endpoints(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> BTreeMap<String, Endpoint> {
    let mut endpoints = BTreeMap::new();
    if let SKind::Table(entries) = &v.kind {
        for (ename, _, ev) in entries {
            if let Some(e) = parse_endpoint(src, ename, ev, d) {
                endpoints.insert(ename.clone(), e);
            }
        }
    } else {
        d.push(src.diag(
            v.span.clone(),
            "`endpoints` must be a table of endpoints",
            None,
        ));
    }
    endpoints
}

/// One endpoint; `None` when it is not a table or has no `url`.
fn parse_endpoint(
    src: &SourceFile,
    ename: &str,
    ev: &SVal,
    d: &mut Diagnostics,
) -> Option<Endpoint> {
    let what = format!("endpoint `{ename}`");
    let mut e = TableReader::new(src, ev, what, d)?;
    let url = e.req_str("url", "add `url = \"https://...\"`", d);
    let method = e
        .str("method", d)
        .map(|s| s.value.to_ascii_uppercase())
        .unwrap_or_else(|| "POST".into());
    if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&method.as_str()) {
        d.push(src.diag(
            ev.span.clone(),
            format!("endpoint `{ename}`: unsupported method `{method}`"),
            Some("one of GET, POST, PUT, PATCH, DELETE, HEAD".into()),
        ));
    }
    let timeout = e
        .duration("timeout", d)
        .map(|s| s.value)
        .unwrap_or(Duration::from_secs(10));
    let headers = e
        .get("headers")
        .map(|hv| parse_headers(src, hv, d))
        .unwrap_or_default();
    e.finish(&["url", "method", "headers", "timeout"], d);
    Some(Endpoint {
        url: url?.value,
        method,
        headers,
        timeout,
    })
}

/// An endpoint's `headers`: a table of strings.
fn parse_headers(src: &SourceFile, hv: &SVal, d: &mut Diagnostics) -> Vec<(String, String)> {
    let mut headers = vec![];
    if let SKind::Table(hs) = &hv.kind {
        for (hk, _, hval) in hs {
            if let Some(s) = tomlx::expect_str(src, hval, &format!("header `{hk}`"), d) {
                headers.push((hk.clone(), s.value));
            }
        }
    } else {
        d.push(src.diag(
            hv.span.clone(),
            "`headers` must be a table of strings",
            None,
        ));
    }
    headers
}

/// The ladder's actions must name endpoints and `records` groups of this environment.
fn check_tier_actions(
    src: &SourceFile,
    l: &Ladder,
    tv: &SVal,
    endpoints: &BTreeMap<String, Endpoint>,
    groups: &BTreeMap<String, Group>,
    d: &mut Diagnostics,
) {
    for tier in &l.tiers {
        for a in [&tier.apply, &tier.revert].into_iter().flatten() {
            match a {
                TierAction::Http { endpoint: Some(e), .. } if !endpoints.contains_key(e) => d.push(src.diag(
                    tv.span.clone(),
                    format!("tier `{}` uses endpoint `{e}`, which is not defined under [endpoints]", tier.name),
                    Some(format!("endpoints: {}", endpoints.keys().cloned().collect::<Vec<_>>().join(", "))),
                )),
                TierAction::DnsWeights { group, .. } if !matches!(groups.get(group), Some(Group::Records { .. })) => d.push(src.diag(
                    tv.span.clone(),
                    format!("tier `{}` changes the weights of group `{group}`, which is not a `records` group of this environment", tier.name),
                    None,
                )),
                _ => {}
            }
        }
    }
}

fn parse_group(
    src: &SourceFile,
    name: &str,
    v: &SVal,
    zones: &[Zone],
    regions: &[Region],
    d: &mut Diagnostics,
) -> Option<Group> {
    let what = format!("group `{name}`");
    let mut t = TableReader::new(src, v, what.clone(), d)?;
    let kind = t.req_str("kind", &format!("one of: {}", GROUP_KINDS.join(", ")), d)?;
    let g = match kind.value.as_str() {
        "db_clusters" => {
            let ids = t.str_list("clusters", d).unwrap_or_default();
            if ids.is_empty() {
                d.push(src.diag(
                    v.span.clone(),
                    format!("{what} lists no clusters"),
                    Some("add `clusters = [\"orders-db\"]`".into()),
                ));
            }
            t.finish(&["kind", "clusters"], d);
            Group::DbClusters {
                clusters: ids.into_iter().map(|s| ClusterId(s.value)).collect(),
            }
        }
        "db_instances" => {
            let ids = t.str_list("instances", d).unwrap_or_default();
            if ids.is_empty() {
                d.push(src.diag(
                    v.span.clone(),
                    format!("{what} lists no instances"),
                    Some("add `instances = [\"legacy-mysql\"]`".into()),
                ));
            }
            t.finish(&["kind", "instances"], d);
            Group::DbInstances {
                instances: ids.into_iter().map(|s| InstanceId(s.value)).collect(),
            }
        }
        "records" => {
            let hz = t.req_str(
                "hosted_zone",
                "the hosted zone's name (\"shop.example.com.\") or id (\"Z0123...\")",
                d,
            );
            let mut records = vec![];
            match t.get("records") {
                Some(SVal { kind: SKind::Array(items), .. }) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Some(r) = parse_record(src, &format!("record #{} of {what}", i + 1), item, zones, regions, d) {
                            records.push(r);
                        }
                    }
                }
                Some(other) => d.push(src.diag(other.span.clone(), format!("`records` in {what} must be an array of tables ([[groups.{name}.records]])"), None)),
                None => d.push(src.diag(v.span.clone(), format!("{what} lists no records"), Some(format!("add [[groups.{name}.records]] tables")))),
            }
            t.finish(&["kind", "hosted_zone", "records"], d);
            Group::Records {
                hosted_zone: hz.map(|h| h.value).unwrap_or_default(),
                records,
            }
        }
        "zonal_shift_resources" => parse_zonal_group(src, t, name, v, zones, d),
        "global_clusters" => {
            let ids = t.str_list("global_clusters", d).unwrap_or_default();
            if ids.is_empty() {
                d.push(src.diag(
                    v.span.clone(),
                    format!("{what} lists no global clusters"),
                    Some("add `global_clusters = [\"orders-global\"]`".into()),
                ));
            }
            t.finish(&["kind", "global_clusters"], d);
            Group::GlobalClusters {
                global_clusters: ids.into_iter().map(|s| GlobalClusterId(s.value)).collect(),
            }
        }
        other => {
            let hint = match crate::diag::did_you_mean(other, GROUP_KINDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("one of: {}", GROUP_KINDS.join(", ")),
            };
            d.push(src.diag(
                kind.span.clone(),
                format!("unknown group kind `{other}` in {what}"),
                Some(hint),
            ));
            return None;
        }
    };
    Some(g)
}

/// `kind = "zonal_shift_resources"`: `resources` (ARNs) and `zone_ids` (every zone's id).
fn parse_zonal_group(
    src: &SourceFile,
    mut t: TableReader<'_>,
    name: &str,
    v: &SVal,
    zones: &[Zone],
    d: &mut Diagnostics,
) -> Group {
    let what = format!("group `{name}`");
    let ids = t.str_list("resources", d).unwrap_or_default();
    if ids.is_empty() {
        d.push(src.diag(
            v.span.clone(),
            format!("{what} lists no resources"),
            Some("add `resources = [\"arn:aws:elasticloadbalancing:us-west-2:123456789012:loadbalancer/app/web/1234567890abcdef\"]`".into()),
        ));
    }
    for r in &ids {
        if !is_zonal_shift_arn(&r.value) {
            d.push(src.diag(
                r.span.clone(),
                format!("{what}: `{}` is not the ARN of a load balancer or an Auto Scaling group", r.value),
                Some("ARC zonal shift takes `arn:aws:elasticloadbalancing:...:loadbalancer/...` or `arn:aws:autoscaling:...:autoScalingGroup:...` ARNs".into()),
            ));
        }
    }
    let mut zone_ids = BTreeMap::new();
    match t.get("zone_ids") {
        Some(SVal {
            kind: SKind::Table(entries),
            ..
        }) => {
            for (k, kspan, zv) in entries {
                let zone = Zone::from(k.as_str());
                if !zones.contains(&zone) {
                    d.push(src.diag(
                        kspan.clone(),
                        format!("{what}: `{k}` in `zone_ids` is not a zone of this environment"),
                        Some(format!(
                                "zones: {}",
                                zones
                                    .iter()
                                    .map(|z| z.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                    ));
                }
                if let Some(id) = tomlx::expect_str(src, zv, "zone id", d) {
                    zone_ids.insert(zone, id.value);
                }
            }
        }
        Some(other) => d.push(src.diag(
            other.span.clone(),
            format!("`zone_ids` in {what} must be a table: zone name = zone id"),
            None,
        )),
        None => {}
    }
    let missing: Vec<&str> = zones
        .iter()
        .filter(|z| !zone_ids.contains_key(*z))
        .map(|z| z.as_str())
        .collect();
    if !missing.is_empty() {
        d.push(src.diag(
            v.span.clone(),
            format!("{what} gives no Availability Zone id for {}", missing.join(", ")),
            Some("ARC moves traffic away from a zone *id*, which differs per account: add `zone_ids = { \"us-west-2a\" = \"usw2-az2\", ... }` (aws ec2 describe-availability-zones --query 'AvailabilityZones[].[ZoneName,ZoneId]')".into()),
        ));
    }
    t.finish(&["kind", "resources", "zone_ids"], d);
    Group::ZonalShiftResources {
        resources: ids.into_iter().map(|s| s.value).collect(),
        zone_ids,
    }
}

/// The ARN of a resource ARC zonal shift can manage: a load balancer or an Auto Scaling group.
pub fn is_zonal_shift_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[3].is_empty()
        && match parts[2] {
            "elasticloadbalancing" => parts[5].starts_with("loadbalancer/"),
            "autoscaling" => parts[5].starts_with("autoScalingGroup:"),
            _ => false,
        }
}

/// A record's `depends_on`: a cluster or instance id, or a list of them.
fn parse_depends_on(
    src: &SourceFile,
    what: &str,
    v: Option<&SVal>,
    d: &mut Diagnostics,
) -> Vec<String> {
    match v {
        None => vec![],
        Some(SVal {
            kind: SKind::Str(s),
            ..
        }) => vec![s.clone()],
        Some(SVal {
            kind: SKind::Array(items),
            ..
        }) => items
            .iter()
            .filter_map(|i| tomlx::expect_str(src, i, "depends_on", d))
            .map(|s| s.value)
            .collect(),
        Some(other) => {
            d.push(src.diag(
                other.span.clone(),
                format!("{what}: `depends_on` must be a cluster or instance id, or a list of them"),
                None,
            ));
            vec![]
        }
    }
}

fn parse_record(
    src: &SourceFile,
    what: &str,
    v: &SVal,
    zones: &[Zone],
    regions: &[Region],
    d: &mut Diagnostics,
) -> Option<RecordSpec> {
    let mut t = TableReader::new(src, v, what, d)?;
    let name = t.req_str(
        "name",
        "the record's fully qualified name, e.g. \"api.shop.example.com.\"",
        d,
    );
    let rtype = t
        .str("type", d)
        .map(|s| s.value.to_ascii_uppercase())
        .unwrap_or_else(|| "CNAME".into());
    if !["A", "AAAA", "CNAME", "TXT"].contains(&rtype.as_str()) {
        d.push(src.diag(
            v.span.clone(),
            format!("{what}: record type `{rtype}` is not supported"),
            Some("use A, AAAA, CNAME or TXT".into()),
        ));
    }
    let ttl = t
        .int("ttl", 0, 2_147_483_647, d)
        .map(|s| s.value)
        .unwrap_or(60);
    let weighted = t.bool("weighted", d).map(|s| s.value).unwrap_or(false);
    let weight = t.int("weight", 0, 255, d).map(|s| s.value).unwrap_or(100);
    let (values, region_values, bad_keys) = match t.get("values") {
        Some(
            tv @ SVal {
                kind: SKind::Table(_),
                ..
            },
        ) => parse_record_values(src, what, tv, zones, regions, d),
        Some(other) => {
            d.push(src.diag(
                other.span.clone(),
                format!("{what}: `values` must be a table of zone = value (or region = value)"),
                None,
            ));
            Default::default()
        }
        None => {
            d.push(src.diag(v.span.clone(), format!("{what} has no `values`"), Some("give one value per zone: values = { \"us-west-2a\" = \"...\", \"us-west-2b\" = \"...\" }".into())));
            Default::default()
        }
    };
    if values.len().max(region_values.len()) < 2 && t.has("values") && !bad_keys {
        let (kind, hint) = if region_values.is_empty() {
            ("zones", "give one value per zone")
        } else {
            ("regions", "give one value per region of `regions`")
        };
        d.push(src.diag(
            v.span.clone(),
            format!("{what} has a value for fewer than two {kind}, so it cannot be moved"),
            Some(hint.into()),
        ));
    }
    let depends_on = parse_depends_on(src, what, t.get("depends_on"), d);
    t.finish(
        &[
            "name",
            "type",
            "ttl",
            "values",
            "weighted",
            "weight",
            "depends_on",
        ],
        d,
    );
    let name = name?;
    Some(RecordSpec {
        name: crate::cloud::normalize_dns_name(&name.value),
        rtype,
        ttl,
        values,
        region_values,
        weighted,
        weight,
        depends_on,
    })
}

/// A record's values by zone, by region, and whether a key was bad (see
/// [`parse_record_values`]).
type RecordValues = (
    BTreeMap<Zone, Vec<String>>,
    BTreeMap<Region, Vec<String>>,
    bool,
);

/// The kind of key a record's `values` uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueKey {
    Zone,
    Region,
}

/// A record's `values`: keyed by the environment's zones (the record moves between zones), or
/// by its `regions` (it moves between regions), never a mix. Each problem at its key; the
/// third value says a key was a region not listed or of the other kind (then "fewer than two"
/// is not reported on top of it).
fn parse_record_values(
    src: &SourceFile,
    what: &str,
    tv: &SVal,
    zones: &[Zone],
    regions: &[Region],
    d: &mut Diagnostics,
) -> RecordValues {
    let (mut by_zone, mut by_region) = (BTreeMap::new(), BTreeMap::new());
    let mut bad_keys = false;
    let SKind::Table(entries) = &tv.kind else {
        return (by_zone, by_region, bad_keys);
    };
    let mut first: Option<(ValueKey, &str)> = None;
    for (k, kspan, kv) in entries {
        let kind = if zones.contains(&Zone::new(k.clone())) {
            ValueKey::Zone
        } else if regions.contains(&Region::new(k.clone())) {
            ValueKey::Region
        } else {
            d.push(unknown_value_key(src, what, k, kspan, zones, regions));
            bad_keys |= Region::new(k.clone()).is_well_formed();
            continue;
        };
        match first {
            Some((f, fk)) if f != kind => {
                let (this, that) = if kind == ValueKey::Region {
                    ("a region", "a zone")
                } else {
                    ("a zone", "a region")
                };
                d.push(src.diag(kspan.clone(), format!("{what}: `{k}` is {this} but `{fk}` is {that}: a record's values are keyed by zones or by regions, not both"), Some("key every value by zone (the record moves between the zones of the region) or every value by region (it moves between the environment's `regions`)".into())));
                bad_keys = true;
                continue;
            }
            None => first = Some((kind, k.as_str())),
            _ => {}
        }
        let vals = match &kv.kind {
            SKind::Str(s) => vec![s.clone()],
            SKind::Array(items) => items
                .iter()
                .filter_map(|i| tomlx::expect_str(src, i, &format!("value for {k}"), d))
                .map(|s| s.value)
                .collect(),
            _ => {
                d.push(src.diag(
                    kv.span.clone(),
                    format!("{what}: the value for `{k}` must be a string or an array of strings"),
                    None,
                ));
                continue;
            }
        };
        match kind {
            ValueKey::Zone => by_zone.insert(Zone::new(k.clone()), vals),
            ValueKey::Region => by_region.insert(Region::new(k.clone()), vals),
        };
    }
    (by_zone, by_region, bad_keys)
}

/// A `values` key that is neither a zone nor a region of the environment.
fn unknown_value_key(
    src: &SourceFile,
    what: &str,
    k: &str,
    span: &std::ops::Range<usize>,
    zones: &[Zone],
    regions: &[Region],
) -> crate::diag::Diagnostic {
    let list = |v: Vec<&str>| v.join(", ");
    if Region::new(k).is_well_formed() {
        let known = list(regions.iter().map(|r| r.as_str()).collect());
        return src.diag(
            span.clone(),
            format!("{what}: `{k}` is not a region of this environment"),
            Some(format!("regions of this environment: {known}; add it to `regions = [...]` to key values by it")),
        );
    }
    let hint = format!(
        "zones of this environment: {}",
        list(zones.iter().map(|z| z.as_str()).collect())
    );
    src.diag(
        span.clone(),
        format!("{what}: `{k}` is not a zone of this environment"),
        Some(hint),
    )
}
