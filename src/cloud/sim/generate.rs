//! Generated topologies: a `[generate]` table in a topology file expands to many databases and
//! records, so an evacuation can be rehearsed (and measured) at the scale of a real estate
//! without writing thousands of entries by hand.
//!
//! ```toml
//! [generate]
//! clusters = 500              # Aurora clusters, writer in `writer_zone`, readers in the others
//! readers = 2                 # readers per cluster (default: one per other zone)
//! multi_az_share = 0.1        # plus round(clusters x share) Multi-AZ DB instances
//! records_per_cluster = 10    # CNAMEs per cluster, one value per zone, live in `writer_zone`
//! writer_zone = "us-west-2a"  # default: the first zone
//! hosted_zone = "generated.example.com."
//! prefix = "db"
//! ```
//!
//! The expansion produces the same raw entries a hand-written file would hold (clusters in
//! group `aurora`, instances in group `multi_az`, one hosted zone in group `storefront`, the
//! `status_page` and `chat` endpoints), so they go through every check of the topology parser,
//! and the stock runbook `az-evacuation` binds against the derived environment unchanged.
//! Names are deterministic (`db-00042`, `db-00042-w`, `db-00042-r1`, `r3.db-00042.<zone>`).
//!
//! Problems in the table are reported with file:line:col and a hint; counts above
//! [`MAX_CLUSTERS`], [`MAX_RECORDS`] or Aurora's 15 readers are refused.

use super::raw::{
    OneOrMany, RawCluster, RawEndpoint, RawHostedZone, RawInstance, RawMember, RawRecord,
};
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::tomlx::{parse_document, SKind, SVal, TableReader};
use std::collections::BTreeMap;

/// Most Aurora clusters one generated topology may hold.
pub const MAX_CLUSTERS: i64 = 10_000;
/// Most records (clusters x records_per_cluster) one generated topology may hold.
pub const MAX_RECORDS: i64 = 200_000;
/// Most records per cluster.
pub const MAX_RECORDS_PER_CLUSTER: i64 = 100;
/// Aurora allows at most 15 readers (replicas) per cluster.
pub const MAX_READERS: i64 = 15;

/// The group names the stock runbook `az-evacuation` uses.
pub const CLUSTER_GROUP: &str = "aurora";
pub const INSTANCE_GROUP: &str = "multi_az";
pub const RECORD_GROUP: &str = "storefront";

const KEYS: &[&str] = &[
    "clusters",
    "readers",
    "multi_az_share",
    "records_per_cluster",
    "writer_zone",
    "hosted_zone",
    "prefix",
];

/// What `[generate]` asked for, checked.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GenerateSpec {
    pub clusters: usize,
    pub readers: usize,
    pub multi_az: usize,
    pub records_per_cluster: usize,
    pub writer_zone: String,
    pub hosted_zone: String,
    pub prefix: String,
}

/// The raw entries `[generate]` expands to, appended to the file's own.
pub(super) struct Generated {
    pub(super) spec: GenerateSpec,
    pub(super) clusters: Vec<RawCluster>,
    pub(super) instances: Vec<RawInstance>,
    pub(super) hosted_zone: RawHostedZone,
    pub(super) endpoints: Vec<(String, RawEndpoint)>,
}

/// A diagnostic as one line of a topology's problem list: `file:line:col: message (hint: ...)`.
fn line(d: &Diagnostic) -> String {
    format!(
        "{}:{}:{}: {}{}",
        d.file,
        d.line,
        d.col,
        d.message,
        d.hint
            .as_ref()
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default()
    )
}

/// Read the `[generate]` table of `text` (zones: the topology's, checked elsewhere) and expand
/// it; every problem goes to `problems`, and nothing is generated when there is one.
pub(super) fn expand(
    text: &str,
    origin: &str,
    zones: &[String],
    problems: &mut Vec<String>,
) -> Option<Generated> {
    let src = SourceFile::new(origin, text);
    let mut d = Diagnostics::default();
    let spec = parse_document(&src)
        .ok()
        .and_then(|doc| read_spec(&src, &doc, zones, &mut d));
    problems.extend(d.sorted().0.iter().map(line));
    let spec = spec?;
    Some(build(spec, zones))
}

fn table_of<'a>(doc: &'a SVal, key: &str) -> Option<&'a SVal> {
    match &doc.kind {
        SKind::Table(entries) => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
        _ => None,
    }
}

/// The checked spec, or `None` after reporting why not.
fn read_spec(
    src: &SourceFile,
    doc: &SVal,
    zones: &[String],
    d: &mut Diagnostics,
) -> Option<GenerateSpec> {
    let v = table_of(doc, "generate")?;
    let before = d.len();
    let mut t = TableReader::new(src, v, "[generate]", d)?;
    let limit_hint = |what: &str, max: i64| {
        Some(format!(
            "the simulator takes at most {max} {what} in one generated topology; split a larger \
             estate into several topologies (one per account or region, as its quotas are)"
        ))
    };
    let clusters = match t.get("clusters") {
        None => {
            d.push(src.diag(
                v.span.clone(),
                "[generate] is missing the required key `clusters`",
                Some("say how many Aurora clusters to generate: clusters = 500".into()),
            ));
            None
        }
        Some(c) => count(
            src,
            c,
            "`clusters` in [generate]",
            1,
            MAX_CLUSTERS,
            d,
            || limit_hint("clusters", MAX_CLUSTERS),
        ),
    };
    let others = zones.len().saturating_sub(1).max(1) as i64;
    let readers = match t.get("readers") {
        None => Some(others as usize),
        Some(r) => count(src, r, "`readers` in [generate]", 1, MAX_READERS, d, || {
            Some(format!(
                "an Aurora cluster has at most {MAX_READERS} readers; they are spread over the \
                 zones other than the writer's"
            ))
        }),
    };
    let records_per_cluster = match t.get("records_per_cluster") {
        None => Some(10),
        Some(r) => count(
            src,
            r,
            "`records_per_cluster` in [generate]",
            1,
            MAX_RECORDS_PER_CLUSTER,
            d,
            || limit_hint("records per cluster", MAX_RECORDS_PER_CLUSTER),
        ),
    };
    let share = match t.get("multi_az_share") {
        None => Some(0.0),
        Some(s) => share(src, s, d),
    };
    let writer_zone = writer_zone(src, &mut t, zones, d);
    let hosted_zone = t
        .str("hosted_zone", d)
        .map(|s| crate::cloud::normalize_dns_name(&s.value))
        .unwrap_or_else(|| "generated.example.com.".into());
    let prefix = prefix(src, &mut t, d);
    if let (Some(c), Some(r)) = (clusters, records_per_cluster) {
        let total = c as i64 * r as i64;
        if total > MAX_RECORDS {
            let at = t
                .get("records_per_cluster")
                .map_or(v.span.clone(), |x| x.span.clone());
            d.push(src.diag(
                at,
                format!(
                    "[generate] asks for {c} clusters x {r} records = {total} records, above the \
                     limit of {MAX_RECORDS}"
                ),
                limit_hint("records", MAX_RECORDS),
            ));
        }
    }
    t.finish(KEYS, d);
    if d.len() > before {
        return None;
    }
    let clusters = clusters?;
    Some(GenerateSpec {
        clusters,
        readers: readers?,
        multi_az: (clusters as f64 * share?).round() as usize,
        records_per_cluster: records_per_cluster?,
        writer_zone: writer_zone?,
        hosted_zone,
        prefix: prefix?,
    })
}

/// `writer_zone`: a zone of the topology (default: the first).
fn writer_zone(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    zones: &[String],
    d: &mut Diagnostics,
) -> Option<String> {
    let z = match t.str("writer_zone", d) {
        None => return zones.first().cloned(),
        Some(z) if zones.contains(&z.value) => return Some(z.value),
        Some(z) => z,
    };
    let hint = match crate::diag::did_you_mean(&z.value, zones.iter().map(|s| s.as_str())) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("the topology's zones: {}", zones.join(", ")),
    };
    d.push(src.diag(
        z.span,
        format!(
            "`writer_zone` in [generate]: `{}` is not a zone of the topology",
            z.value
        ),
        Some(hint),
    ));
    None
}

/// `prefix`: the start of every generated identifier (default `db`).
fn prefix(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> Option<String> {
    let p = match t.str("prefix", d) {
        None => return Some("db".to_string()),
        Some(p) if valid_prefix(&p.value) => return Some(p.value),
        Some(p) => p,
    };
    d.push(
        src.diag(
            p.span,
            format!(
                "`prefix` in [generate]: `{}` cannot start an RDS identifier",
                p.value
            ),
            Some(
                "a prefix starts with a letter and holds letters, digits and hyphens (at most 40 \
             characters), e.g. prefix = \"db\""
                    .into(),
            ),
        ),
    );
    None
}

fn valid_prefix(p: &str) -> bool {
    p.len() <= 40
        && p.starts_with(|c: char| c.is_ascii_alphabetic())
        && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !p.ends_with('-')
}

/// An integer within `min..=max`; above `max`, the hint `over` says why there is a limit.
fn count(
    src: &SourceFile,
    v: &SVal,
    what: &str,
    min: i64,
    max: i64,
    d: &mut Diagnostics,
    over: impl Fn() -> Option<String>,
) -> Option<usize> {
    match v.kind {
        SKind::Int(i) if (min..=max).contains(&i) => Some(i as usize),
        SKind::Int(i) if i > max => {
            d.push(src.diag(
                v.span.clone(),
                format!("{what} is {i}, above the limit of {max}"),
                over(),
            ));
            None
        }
        SKind::Int(i) => {
            d.push(src.diag(
                v.span.clone(),
                format!("{what} is {i}, below {min}"),
                Some(format!("give a count from {min} to {max}")),
            ));
            None
        }
        _ => {
            d.push(src.diag(
                v.span.clone(),
                format!("{what} must be an integer, found {}", v.type_name()),
                Some(format!("give a count from {min} to {max}")),
            ));
            None
        }
    }
}

/// `multi_az_share`: a fraction from 0 to 1.
fn share(src: &SourceFile, v: &SVal, d: &mut Diagnostics) -> Option<f64> {
    let x = match v.kind {
        SKind::Float(f) => f,
        SKind::Int(i) => i as f64,
        _ => f64::NAN,
    };
    if (0.0..=1.0).contains(&x) {
        return Some(x);
    }
    d.push(
        src.diag(
            v.span.clone(),
            format!(
                "`multi_az_share` in [generate] must be a number from 0 to 1, found {}",
                match v.kind {
                    SKind::Float(_) | SKind::Int(_) => format!("{x}"),
                    _ => v.type_name().to_string(),
                }
            ),
            Some(
                "the share of Multi-AZ DB instances generated besides the clusters, e.g. 0.1 for \
             one per ten clusters"
                    .into(),
            ),
        ),
    );
    None
}

/// The raw entries of a checked spec.
fn build(spec: GenerateSpec, zones: &[String]) -> Generated {
    let others: Vec<&String> = zones.iter().filter(|z| **z != spec.writer_zone).collect();
    let width = spec.clusters.max(spec.multi_az).to_string().len().max(5);
    let mut clusters = Vec::with_capacity(spec.clusters);
    let mut records = Vec::with_capacity(spec.clusters * spec.records_per_cluster);
    for i in 0..spec.clusters {
        let id = format!("{}-{:0width$}", spec.prefix, i + 1);
        let mut members = vec![RawMember {
            id: format!("{id}-w"),
            zone: spec.writer_zone.clone(),
            tier: 0,
        }];
        for k in 0..spec.readers {
            members.push(RawMember {
                id: format!("{id}-r{}", k + 1),
                zone: others[(i + k) % others.len()].clone(),
                tier: 1,
            });
        }
        for j in 0..spec.records_per_cluster {
            let name = format!("r{}.{id}.{}", j + 1, spec.hosted_zone);
            let values: BTreeMap<String, OneOrMany> = zones
                .iter()
                .map(|z| {
                    let v = format!("r{}.{id}.{z}.lb.internal", j + 1);
                    (z.clone(), OneOrMany::One(v))
                })
                .collect();
            records.push(RawRecord {
                name,
                rtype: Some("CNAME".into()),
                ttl: Some(60),
                values: Some(values),
                value: None,
                live: Some(spec.writer_zone.clone()),
                weighted: false,
                weight: None,
                weights: None,
                depends_on: vec![id.clone()],
            });
        }
        clusters.push(RawCluster {
            writer: format!("{id}-w"),
            id,
            engine: Some("aurora-postgresql".into()),
            group: Some(CLUSTER_GROUP.into()),
            instances: members,
        });
    }
    let instances = (0..spec.multi_az)
        .map(|i| RawInstance {
            id: format!("{}-mysql-{:0width$}", spec.prefix, i + 1),
            engine: Some("mysql".into()),
            group: Some(INSTANCE_GROUP.into()),
            zone: spec.writer_zone.clone(),
            standby_zone: Some(others[i % others.len()].clone()),
        })
        .collect();
    let hosted_zone = RawHostedZone {
        name: spec.hosted_zone.clone(),
        id: None,
        group: Some(RECORD_GROUP.into()),
        records,
    };
    let endpoint = |name: &str, url: &str| {
        (
            name.to_string(),
            RawEndpoint {
                url: url.to_string(),
                method: Some("POST".into()),
                headers: [("Content-Type".to_string(), "application/json".to_string())].into(),
                timeout: Some("5s".into()),
                zone: None,
                body: None,
            },
        )
    };
    let endpoints = vec![
        endpoint(
            "status_page",
            &format!(
                "https://status.{}/api/incidents",
                spec.hosted_zone.trim_end_matches('.')
            ),
        ),
        endpoint(
            "chat",
            &format!(
                "https://chat.{}/hooks/oncall",
                spec.hosted_zone.trim_end_matches('.')
            ),
        ),
    ];
    Generated {
        spec,
        clusters,
        instances,
        hosted_zone,
        endpoints,
    }
}
