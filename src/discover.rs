//! `failover discover`, the pure part: what an account's listing means as an environment.
//!
//! [`classify`] turns the listing (clusters, instances, hosted zones with their records) into
//! groups an environment file can hold, and lists everything it could not classify with the
//! reason. [`render`] writes a new environment file; [`merge`] adds what was discovered to an
//! existing one with `toml_edit`, keeping every comment, setting and hand-written group, and
//! never adding a resource the file already lists in any group. No IO here: `app::discover`
//! reads the account and writes the file.
//!
//! The default group names are the ones the stock runbooks use (`aurora`, `multi_az`,
//! `storefront`), so `failover plan runbooks/az-evacuation.toml` works on the result at once.

use crate::cloud::{ClusterListing, HostedZone, InstanceListing, RecordSet};
use crate::env::{Group, RecordSpec};
use crate::types::Zone;
use std::collections::{BTreeMap, BTreeSet};

/// The groups the stock runbooks (runbooks/az-evacuation.toml) name.
pub const STOCK_GROUPS: &[&str] = &["aurora", "multi_az", "storefront"];

/// Where discover writes the block of what it could not classify; `merge` replaces it.
pub const BLOCK_START: &str =
    "# --- failover discover: not classified (replaced by each `failover discover --merge`) ---";
pub const BLOCK_END: &str = "# --- end of failover discover's list ---";

/// How clusters and instances are grouped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// One group per kind, named as the stock runbooks expect: `aurora`, `multi_az`.
    Kind,
    /// By engine: `clusters_aurora_postgresql`, `instances_mysql`, ...
    Engine,
    /// By the value of a tag: `clusters_<value>`, `instances_<value>` (`untagged` without it).
    Tag(String),
}

/// What discover was asked.
#[derive(Clone, Debug)]
pub struct Options {
    pub env_name: String,
    pub region: String,
    /// The zones, in order of preference; `None`: the zones the instances are in, sorted.
    pub zones: Option<Vec<Zone>>,
    /// Only resources with every one of these tags.
    pub tags: Vec<(String, String)>,
    pub group_by: GroupBy,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
}

/// What the account holds, as listed.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub clusters: Vec<ClusterListing>,
    pub instances: Vec<InstanceListing>,
    pub hosted_zones: Vec<(HostedZone, Vec<RecordSet>)>,
}

/// A resource left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unclassified {
    pub what: String,
    pub reason: String,
}

/// What the listing means as an environment.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Discovered {
    pub zones: Vec<Zone>,
    pub groups: BTreeMap<String, Group>,
    /// Records whose values for the other zones were derived from a zone named in the current
    /// value (name -> the token), to be checked by a person.
    pub derived: BTreeMap<String, String>,
    pub unclassified: Vec<Unclassified>,
    /// Clusters and instances without the `--tag`s asked for (left out, not listed).
    pub filtered_out: usize,
    /// NS and SOA records of zone apexes (never per zone; not listed).
    pub apex_skipped: usize,
}

impl Discovered {
    /// The stock runbooks' groups this environment lacks.
    pub fn missing_stock_groups(&self) -> Vec<&'static str> {
        STOCK_GROUPS
            .iter()
            .copied()
            .filter(|g| !self.groups.contains_key(*g))
            .collect()
    }

    pub fn count(&self) -> (usize, usize, usize) {
        let (mut c, mut i, mut r) = (0, 0, 0);
        for g in self.groups.values() {
            match g {
                Group::DbClusters { clusters } => c += clusters.len(),
                Group::DbInstances { instances } => i += instances.len(),
                Group::Records { records, .. } => r += records.len(),
                // Discover lists RDS and Route 53 only; these groups are written by hand.
                Group::ZonalShiftResources { .. } => {}
                Group::GlobalClusters { global_clusters } => c += global_clusters.len(),
            }
        }
        (c, i, r)
    }
}

/// Why the listing cannot make an environment at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    #[error("found DB instances in {found} zone(s) of {region} ({list}); an evacuation needs at least two")]
    TooFewZones {
        region: String,
        found: usize,
        list: String,
    },
}

fn has_tags(tags: &[(String, String)], wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|w| tags.contains(w))
}

/// A group-name part from free text: lower case, `[a-z0-9_]`.
fn label(s: &str) -> String {
    let l: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let l = l.trim_matches('_').to_string();
    if l.is_empty() {
        "unnamed".into()
    } else {
        l
    }
}

fn group_name(
    by: &GroupBy,
    default: &str,
    base: &str,
    engine: &str,
    tags: &[(String, String)],
) -> String {
    match by {
        GroupBy::Kind => default.to_string(),
        GroupBy::Engine => format!("{base}_{}", label(engine)),
        GroupBy::Tag(k) => match tags.iter().find(|(tk, _)| tk == k) {
            Some((_, v)) => format!("{base}_{}", label(v)),
            None => format!("{base}_untagged"),
        },
    }
}

/// Classify the listing (pure). Zones are the options', or those the instances are in.
pub fn classify(listing: &Listing, opts: &Options) -> Result<Discovered, DiscoverError> {
    let mut out = Discovered {
        zones: zones_of(listing, opts)?,
        ..Discovered::default()
    };
    classify_clusters(listing, opts, &mut out);
    classify_instances(listing, opts, &mut out);
    let several = listing.hosted_zones.len() > 1;
    for (hz, records) in &listing.hosted_zones {
        let name = if several {
            format!("records_{}", label(&hz.name))
        } else {
            "storefront".to_string()
        };
        classify_records(&name, hz, records, &mut out);
    }
    for g in out.groups.values_mut() {
        match g {
            Group::DbClusters { clusters } => clusters.sort(),
            Group::DbInstances { instances } => instances.sort(),
            Group::Records { .. }
            | Group::ZonalShiftResources { .. }
            | Group::GlobalClusters { .. } => {}
        }
    }
    Ok(out)
}

fn zones_of(listing: &Listing, opts: &Options) -> Result<Vec<Zone>, DiscoverError> {
    if let Some(z) = &opts.zones {
        return Ok(z.clone());
    }
    let found: BTreeSet<Zone> = listing
        .instances
        .iter()
        .filter_map(|i| i.state.zone.clone())
        .filter(|z| z.region().as_str() == opts.region)
        .collect();
    if found.len() < 2 {
        return Err(DiscoverError::TooFewZones {
            region: opts.region.clone(),
            found: found.len(),
            list: found
                .iter()
                .map(|z| z.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(found.into_iter().collect())
}

fn push_cluster(out: &mut Discovered, name: String, id: crate::types::ClusterId) {
    if let Group::DbClusters { clusters } = out
        .groups
        .entry(name)
        .or_insert_with(|| Group::DbClusters { clusters: vec![] })
    {
        clusters.push(id);
    }
}

fn classify_clusters(listing: &Listing, opts: &Options, out: &mut Discovered) {
    let zone_of: BTreeMap<&str, Option<&Zone>> = listing
        .instances
        .iter()
        .map(|i| (i.state.id.as_str(), i.state.zone.as_ref()))
        .collect();
    for c in &listing.clusters {
        if !has_tags(&c.tags, &opts.tags) {
            out.filtered_out += 1;
            continue;
        }
        let zones: BTreeSet<&Zone> = c
            .members
            .iter()
            .filter_map(|m| zone_of.get(m.as_str()).copied().flatten())
            .filter(|z| out.zones.contains(z))
            .collect();
        if zones.len() < 2 {
            let where_ = match zones.iter().next() {
                Some(z) => format!("all its instances are in {z}"),
                None => "it has no instance in the environment's zones".to_string(),
            };
            out.unclassified.push(Unclassified {
                what: format!("cluster {}", c.id),
                reason: format!(
                    "{where_}: a failover has nowhere to go (add a reader in another zone, then discover again)"
                ),
            });
            continue;
        }
        let name = group_name(&opts.group_by, "aurora", "clusters", &c.engine, &c.tags);
        push_cluster(out, name, c.id.clone());
    }
}

fn classify_instances(listing: &Listing, opts: &Options, out: &mut Discovered) {
    for i in listing
        .instances
        .iter()
        .filter(|i| i.state.cluster.is_none())
    {
        if !has_tags(&i.tags, &opts.tags) {
            out.filtered_out += 1;
            continue;
        }
        let what = format!("instance {}", i.state.id);
        let reason = if let Some(src) = &i.replica_of {
            Some(format!("a read replica of {src}: promoting it is not a Multi-AZ failover; list it by hand if a runbook should"))
        } else if !i.state.multi_az {
            Some("single-AZ: there is no standby to fail over to".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            out.unclassified.push(Unclassified { what, reason });
            continue;
        }
        let name = group_name(
            &opts.group_by,
            "multi_az",
            "instances",
            &i.state.engine,
            &i.tags,
        );
        if let Group::DbInstances { instances } = out
            .groups
            .entry(name)
            .or_insert_with(|| Group::DbInstances { instances: vec![] })
        {
            instances.push(i.state.id.clone());
        }
    }
}

/// How a value names its zone.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// The zone's name (`us-west-2a`) appears in the value.
    Name,
    /// One DNS label ends in `-<letter>` or `_<letter>` (`api-a.lb.example.com`).
    Suffix { label: usize },
}

/// The zone a value names, and how; `None` when it names none or several.
fn zone_token(value: &str, zones: &[Zone]) -> Option<(Zone, Token)> {
    let v = value.to_ascii_lowercase();
    let named: Vec<&Zone> = zones.iter().filter(|z| v.contains(z.as_str())).collect();
    match named.as_slice() {
        [z] => return Some(((*z).clone(), Token::Name)),
        [] => {}
        _ => return None,
    }
    let mut hits = vec![];
    for (i, l) in v.split('.').enumerate() {
        for z in zones {
            let letter = z.as_str().chars().last()?;
            if l.len() > 2
                && (l.ends_with(&format!("-{letter}")) || l.ends_with(&format!("_{letter}")))
            {
                hits.push((z.clone(), Token::Suffix { label: i }));
            }
        }
    }
    match hits.len() {
        1 => hits.pop(),
        _ => None,
    }
}

/// The value for zone `to`, from a value naming zone `from` by `token`.
fn for_zone(value: &str, token: &Token, from: &Zone, to: &Zone) -> String {
    let v = value.to_ascii_lowercase();
    match token {
        Token::Name => v.replace(from.as_str(), to.as_str()),
        Token::Suffix { label } => v
            .split('.')
            .enumerate()
            .map(|(i, l)| {
                if i == *label {
                    let letter = to.as_str().chars().last().unwrap_or('a');
                    format!("{}{letter}", &l[..l.len() - 1])
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("."),
    }
}

/// An availability-zone id (`use1-az1`) in a value: they differ per account, so they cannot be
/// mapped to zone names without EC2.
fn az_id(value: &str) -> Option<&str> {
    let v = value.as_bytes();
    for (i, _) in value.match_indices("-az") {
        let digits = v[i + 3..].iter().take_while(|c| c.is_ascii_digit()).count();
        let start = v[..i]
            .iter()
            .rposition(|c| !c.is_ascii_alphanumeric())
            .map_or(0, |p| p + 1);
        let prefix = &value[start..i];
        let ok = digits > 0
            && prefix.len() >= 3
            && prefix.ends_with(|c: char| c.is_ascii_digit())
            && prefix.starts_with(|c: char| c.is_ascii_alphabetic());
        if ok {
            return Some(&value[start..i + 3 + digits]);
        }
    }
    None
}

const TYPES: &[&str] = &["A", "AAAA", "CNAME", "TXT"];

fn classify_records(group: &str, hz: &HostedZone, records: &[RecordSet], out: &mut Discovered) {
    let mut by_key: BTreeMap<(String, String), Vec<&RecordSet>> = BTreeMap::new();
    for r in records {
        by_key
            .entry((r.name.clone(), r.rtype.clone()))
            .or_default()
            .push(r);
    }
    let mut specs = vec![];
    for ((name, rtype), sets) in by_key {
        if name == hz.name && (rtype == "NS" || rtype == "SOA") {
            out.apex_skipped += 1;
            continue;
        }
        let what = format!("record {name} {rtype}");
        match record_spec(&name, &rtype, &sets, &out.zones) {
            Ok((spec, derived)) => {
                if let Some(t) = derived {
                    out.derived.insert(name.clone(), t);
                }
                specs.push(spec);
            }
            Err(reason) => out.unclassified.push(Unclassified { what, reason }),
        }
    }
    if !specs.is_empty() {
        out.groups.insert(
            group.to_string(),
            Group::Records {
                hosted_zone: hz.name.clone(),
                records: specs,
            },
        );
    }
}

/// One logical record (all its sets) as a per-zone record, or why not. The second value names
/// the zone token values were derived from, when they were.
fn record_spec(
    name: &str,
    rtype: &str,
    sets: &[&RecordSet],
    zones: &[Zone],
) -> Result<(RecordSpec, Option<String>), String> {
    if !TYPES.contains(&rtype) {
        return Err(format!(
            "type {rtype}: records groups hold A, AAAA, CNAME and TXT records"
        ));
    }
    if let Some(a) = sets.iter().find_map(|s| s.alias.as_ref()) {
        return Err(format!(
            "an alias to {}: records groups hold plain values (list one value per zone by hand)",
            a.dns_name
        ));
    }
    if let Some(o) = sets.iter().find_map(|s| s.routing.as_ref()) {
        return Err(format!(
            "{o} routing: discover groups simple and weighted records by zone (list records valued per region by hand)"
        ));
    }
    let ttl = sets.iter().find_map(|s| s.ttl).unwrap_or(60);
    if sets.iter().any(|s| s.set_identifier.is_some()) {
        return weighted(name, rtype, ttl, sets, zones).map(|s| (s, None));
    }
    let Some(set) = sets.first() else {
        return Err("no record set".into());
    };
    simple(name, rtype, ttl, set, zones)
}

fn weighted(
    name: &str,
    rtype: &str,
    ttl: i64,
    sets: &[&RecordSet],
    zones: &[Zone],
) -> Result<RecordSpec, String> {
    let mut values = BTreeMap::new();
    let mut strangers = vec![];
    for s in sets {
        let id = s.set_identifier.clone().unwrap_or_default();
        match zones.iter().find(|z| z.as_str().eq_ignore_ascii_case(&id)) {
            Some(z) if !values.contains_key(z) => {
                values.insert(z.clone(), s.values.clone());
            }
            _ => strangers.push(id),
        }
    }
    if !strangers.is_empty() {
        return Err(format!(
            "weighted sets {} are not named after a zone: the evacuation finds each zone's set by its set identifier = zone name (rename the sets, or list the record by hand)",
            strangers.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    if values.len() < 2 {
        return Err("a weighted set for one zone only: nothing to move to".into());
    }
    let weight = sets
        .iter()
        .filter_map(|s| s.weight)
        .max()
        .filter(|w| *w > 0)
        .unwrap_or(100);
    Ok(RecordSpec {
        name: name.to_string(),
        rtype: rtype.to_string(),
        ttl,
        values,
        region_values: Default::default(),
        weighted: true,
        weight,
        depends_on: vec![],
    })
}

fn simple(
    name: &str,
    rtype: &str,
    ttl: i64,
    set: &RecordSet,
    zones: &[Zone],
) -> Result<(RecordSpec, Option<String>), String> {
    let tokens: Vec<Option<(Zone, Token)>> =
        set.values.iter().map(|v| zone_token(v, zones)).collect();
    let first = tokens.first().cloned().flatten();
    let Some((from, token)) = first.filter(|(z, _)| {
        tokens
            .iter()
            .all(|t| t.as_ref().is_some_and(|(tz, _)| tz == z))
    }) else {
        if let Some(id) = set.values.iter().find_map(|v| az_id(v)) {
            return Err(format!("its value names the zone id `{id}`; zone ids differ per account, so the values for the other zones cannot be derived: list them by hand"));
        }
        return Err("its value names no zone (not a per-zone record)".into());
    };
    let mut values = BTreeMap::new();
    for z in zones {
        let vs = set
            .values
            .iter()
            .map(|v| {
                if *z == from {
                    v.clone()
                } else {
                    for_zone(v, &token, &from, z)
                }
            })
            .collect();
        values.insert(z.clone(), vs);
    }
    let shown = match token {
        Token::Name => from.to_string(),
        Token::Suffix { .. } => format!("-{}", from.as_str().chars().last().unwrap_or('?')),
    };
    Ok((
        RecordSpec {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl,
            values,
            region_values: Default::default(),
            weighted: false,
            weight: 100,
            depends_on: vec![],
        },
        Some(format!("`{shown}` in the current value ({from})")),
    ))
}

/// A TOML string (basic, escaped).
fn q(s: &str) -> String {
    toml_edit::Value::from(s).to_string().trim().to_string()
}

fn str_array(items: &[&str]) -> String {
    if items.len() <= 3 {
        return format!(
            "[{}]",
            items.iter().map(|i| q(i)).collect::<Vec<_>>().join(", ")
        );
    }
    let mut s = "[\n".to_string();
    for i in items {
        s.push_str(&format!("    {},\n", q(i)));
    }
    s.push(']');
    s
}

/// One record as a `[[groups.NAME.records]]` table (with a comment when values were derived).
fn render_record(group: &str, r: &RecordSpec, derived: Option<&String>) -> String {
    let mut s = String::new();
    if let Some(t) = derived {
        s.push_str(&format!(
            "# The values for the other zones were derived from {t}: check them.\n"
        ));
    }
    s.push_str(&format!("[[groups.{group}.records]]\n"));
    s.push_str(&format!(
        "name = {}\ntype = {}\nttl = {}\n",
        q(&r.name),
        q(&r.rtype),
        r.ttl
    ));
    if r.weighted {
        s.push_str(&format!("weighted = true\nweight = {}\n", r.weight));
    }
    let vals: Vec<String> = r
        .values
        .iter()
        .map(|(z, v)| match v.as_slice() {
            [one] => format!("{} = {}", q(z.as_str()), q(one)),
            many => format!(
                "{} = [{}]",
                q(z.as_str()),
                many.iter().map(|m| q(m)).collect::<Vec<_>>().join(", ")
            ),
        })
        .collect();
    s.push_str(&format!("values = {{ {} }}\n", vals.join(", ")));
    s
}

/// One group as TOML (its table and, for records, its records).
pub fn render_group(name: &str, g: &Group, derived: &BTreeMap<String, String>) -> String {
    match g {
        Group::DbClusters { clusters } => {
            let ids: Vec<&str> = clusters.iter().map(|c| c.as_str()).collect();
            format!(
                "[groups.{name}]\nkind = \"db_clusters\"\nclusters = {}\n",
                str_array(&ids)
            )
        }
        Group::DbInstances { instances } => {
            let ids: Vec<&str> = instances.iter().map(|c| c.as_str()).collect();
            format!(
                "[groups.{name}]\nkind = \"db_instances\"\ninstances = {}\n",
                str_array(&ids)
            )
        }
        Group::GlobalClusters { global_clusters } => {
            let ids: Vec<&str> = global_clusters.iter().map(|c| c.as_str()).collect();
            format!(
                "[groups.{name}]\nkind = \"global_clusters\"\nglobal_clusters = {}\n",
                str_array(&ids)
            )
        }
        Group::Records {
            hosted_zone,
            records,
        } => {
            let mut s = format!(
                "[groups.{name}]\nkind = \"records\"\nhosted_zone = {}\n",
                q(hosted_zone)
            );
            for r in records {
                s.push('\n');
                s.push_str(&render_record(name, r, derived.get(&r.name)));
            }
            s
        }
        Group::ZonalShiftResources {
            resources,
            zone_ids,
        } => {
            let ids: Vec<&str> = resources.iter().map(|r| r.as_str()).collect();
            let zones: Vec<String> = zone_ids
                .iter()
                .map(|(z, id)| format!("{} = {}", q(z.as_str()), q(id)))
                .collect();
            format!(
                "[groups.{name}]\nkind = \"zonal_shift_resources\"\nresources = {}\nzone_ids = {{ {} }}\n",
                str_array(&ids),
                zones.join(", ")
            )
        }
    }
}

/// The block of what was not classified (TOML comments).
pub fn render_unclassified(d: &Discovered) -> String {
    let mut s = format!("{BLOCK_START}\n");
    if d.unclassified.is_empty() {
        s.push_str("# (nothing: every resource found is in a group above)\n");
    }
    for u in &d.unclassified {
        s.push_str(&format!("# {}: {}\n", u.what, u.reason));
    }
    if d.filtered_out > 0 {
        s.push_str(&format!(
            "# ({} cluster(s) and instance(s) without the --tag filter's tags were left out)\n",
            d.filtered_out
        ));
    }
    s.push_str(BLOCK_END);
    s.push('\n');
    s
}

/// The endpoints the stock runbooks call, which no AWS listing can find.
const ENDPOINTS: &str =
    "# The stock runbooks tell a status page and a chat (runbooks/az-evacuation.toml); discover
# cannot find them. Point these at yours before a live run (a dry run calls nothing).
[endpoints.status_page]
url = \"https://status.example.invalid/api/incidents\"
method = \"POST\"
headers = { \"Content-Type\" = \"application/json\" }
timeout = \"10s\"

[endpoints.chat]
url = \"https://chat.example.invalid/hooks/sre\"
method = \"POST\"
headers = { \"Content-Type\" = \"application/json\" }
timeout = \"10s\"
";

/// A new environment file for what was discovered.
pub fn render(d: &Discovered, opts: &Options) -> String {
    let (c, i, r) = d.count();
    let mut s = format!(
        "# Environment `{}`, written by `failover discover` from {} ({c} cluster(s), {i} instance(s), {r} record(s)).\n",
        opts.env_name, opts.region
    );
    if !opts.tags.is_empty() {
        let t: Vec<String> = opts.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!("# Only resources tagged {}.\n", t.join(", ")));
    }
    s.push_str("# Check it (docs/environments.md), then rehearse:\n");
    s.push_str(&format!(
        "#   failover plan runbooks/az-evacuation.toml --env {} -p failed_az={}\n\n",
        opts.env_name,
        d.zones.first().map(|z| z.as_str()).unwrap_or("ZONE")
    ));
    s.push_str(&format!("name = {}\n", q(&opts.env_name)));
    s.push_str(&format!(
        "description = {}\n",
        q(&format!("discovered in {}", opts.region))
    ));
    s.push_str(&format!("region = {}\n", q(&opts.region)));
    let zones: Vec<&str> = d.zones.iter().map(|z| z.as_str()).collect();
    s.push_str(&format!(
        "zones = [{}]\n",
        zones.iter().map(|z| q(z)).collect::<Vec<_>>().join(", ")
    ));
    if opts.profile.is_some() || opts.endpoint_url.is_some() {
        s.push_str("\n[aws]\n");
        if let Some(p) = &opts.profile {
            s.push_str(&format!("profile = {}\n", q(p)));
        }
        if let Some(u) = &opts.endpoint_url {
            s.push_str(&format!("endpoint_url = {}\n", q(u)));
        }
    }
    for (name, g) in &d.groups {
        s.push('\n');
        s.push_str(&render_group(name, g, &d.derived));
    }
    s.push('\n');
    s.push_str(ENDPOINTS);
    s.push('\n');
    s.push_str(&render_unclassified(d));
    s
}

/// What `merge` did to an existing file.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Merged {
    pub text: String,
    /// `group: resource` added.
    pub added: Vec<String>,
    /// Resources the file lists that this discovery did not find (kept).
    pub not_found: Vec<String>,
    /// Discovered groups whose name the file uses for another kind (added as `<name>_discovered`).
    pub renamed: Vec<String>,
}

/// The file with discover's previous block of unclassified resources reduced to its first
/// line, which marks where the new block goes.
fn without_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == BLOCK_START {
            inside = true;
            out.push_str(BLOCK_START);
            out.push('\n');
            continue;
        }
        if inside {
            if line.trim() == BLOCK_END {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Tables copied from another document lose their place in it: they go after their neighbours.
fn unposition(item: &mut toml_edit::Item) {
    match item {
        toml_edit::Item::Table(t) => {
            t.set_position(None);
            for (_, v) in t.iter_mut() {
                unposition(v);
            }
        }
        toml_edit::Item::ArrayOfTables(a) => {
            for t in a.iter_mut() {
                t.set_position(None);
            }
        }
        _ => {}
    }
}

/// Which resource names a group lists (`kind:name`), from the file.
fn listed(g: &toml_edit::Item) -> Vec<String> {
    let kind = g.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let names = |key: &str| -> Vec<String> {
        g.get(key)
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        "db_clusters" => names("clusters")
            .into_iter()
            .map(|n| format!("cluster {n}"))
            .collect(),
        "db_instances" => names("instances")
            .into_iter()
            .map(|n| format!("instance {n}"))
            .collect(),
        "records" => g
            .get("records")
            .and_then(|r| r.as_array_of_tables())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("name").and_then(|n| n.as_str()))
                    .map(|n| format!("record {}", crate::cloud::normalize_dns_name(n)))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    }
}

fn resources_of(g: &Group) -> Vec<String> {
    match g {
        Group::DbClusters { clusters } => clusters.iter().map(|c| format!("cluster {c}")).collect(),
        Group::DbInstances { instances } => {
            instances.iter().map(|c| format!("instance {c}")).collect()
        }
        Group::Records { records, .. } => records
            .iter()
            .map(|r| format!("record {}", r.name))
            .collect(),
        Group::ZonalShiftResources { resources, .. } => resources
            .iter()
            .map(|r| format!("zonal shift resource {r}"))
            .collect(),
        Group::GlobalClusters { global_clusters } => global_clusters
            .iter()
            .map(|g| format!("global cluster {g}"))
            .collect(),
    }
}

/// `g` without the resources in `known`; `None` when nothing is left.
fn only_new(g: &Group, known: &BTreeSet<String>) -> Option<Group> {
    let g = match g {
        Group::DbClusters { clusters } => Group::DbClusters {
            clusters: clusters
                .iter()
                .filter(|c| !known.contains(&format!("cluster {c}")))
                .cloned()
                .collect(),
        },
        Group::DbInstances { instances } => Group::DbInstances {
            instances: instances
                .iter()
                .filter(|c| !known.contains(&format!("instance {c}")))
                .cloned()
                .collect(),
        },
        Group::Records {
            hosted_zone,
            records,
        } => Group::Records {
            hosted_zone: hosted_zone.clone(),
            records: records
                .iter()
                .filter(|r| !known.contains(&format!("record {}", r.name)))
                .cloned()
                .collect(),
        },
        Group::ZonalShiftResources {
            resources,
            zone_ids,
        } => Group::ZonalShiftResources {
            resources: resources
                .iter()
                .filter(|r| !known.contains(&format!("zonal shift resource {r}")))
                .cloned()
                .collect(),
            zone_ids: zone_ids.clone(),
        },
        Group::GlobalClusters { global_clusters } => Group::GlobalClusters {
            global_clusters: global_clusters
                .iter()
                .filter(|g| !known.contains(&format!("global cluster {g}")))
                .cloned()
                .collect(),
        },
    };
    (!resources_of(&g).is_empty()).then_some(g)
}

/// Add what was discovered to an existing environment file. Everything the file holds stays
/// as it is (comments, settings, endpoints, groups written by hand); a resource the file lists
/// in any group is not added again; new resources go into the group of their name (created if
/// missing). Only discover's own block of unclassified resources is replaced.
pub fn merge(existing: &str, d: &Discovered) -> Result<Merged, String> {
    let mut doc: toml_edit::DocumentMut = without_block(existing)
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    let mut out = Merged::default();
    let mut known: BTreeSet<String> = BTreeSet::new();
    if let Some(groups) = doc.get("groups").and_then(|g| g.as_table_like()) {
        for (_, g) in groups.iter() {
            known.extend(listed(g));
        }
    }
    let found: BTreeSet<String> = d.groups.values().flat_map(resources_of).collect();
    out.not_found = known
        .iter()
        .filter(|k| !found.contains(*k))
        .cloned()
        .collect();
    for (name, g) in &d.groups {
        let Some(new) = only_new(g, &known) else {
            continue;
        };
        let groups = doc.entry("groups").or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        });
        let existing_kind = groups
            .get(name)
            .and_then(|e| e.get("kind"))
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let target = match existing_kind.as_deref() {
            Some(k) if k == g.kind_name() => name.clone(),
            Some(_) => {
                out.renamed.push(name.clone());
                format!("{name}_discovered")
            }
            None => name.clone(),
        };
        for r in resources_of(&new) {
            out.added.push(format!("{target}: {r}"));
        }
        add_group(groups, &target, &new, &d.derived)?;
    }
    let mut text = doc.to_string();
    let block = render_unclassified(d);
    match text.find(&format!("{BLOCK_START}\n")) {
        Some(at) => text.replace_range(at..at + BLOCK_START.len() + 1, &block),
        None => {
            if !text.ends_with("\n\n") {
                text.push('\n');
            }
            text.push_str(&block);
        }
    }
    out.text = text;
    Ok(out)
}

/// Put `g`'s resources into group `name` of `groups` (extending it, or creating it).
fn add_group(
    groups: &mut toml_edit::Item,
    name: &str,
    g: &Group,
    derived: &BTreeMap<String, String>,
) -> Result<(), String> {
    let snippet: toml_edit::DocumentMut = render_group(name, g, derived)
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    let mut item = snippet["groups"][name].clone();
    unposition(&mut item);
    let Some(present) = groups.get_mut(name) else {
        if let Some(t) = groups.as_table_like_mut() {
            t.insert(name, item);
        }
        return Ok(());
    };
    for key in ["clusters", "instances"] {
        if let (Some(a), Some(new)) = (
            present.get_mut(key).and_then(|a| a.as_array_mut()),
            item.get(key).and_then(|a| a.as_array()),
        ) {
            // New entries look like the last one (one a line in a long list).
            let decor = a.iter().last().map(|v| v.decor().clone());
            for v in new.iter() {
                let mut v = v.clone();
                if let Some(d) = &decor {
                    *v.decor_mut() = d.clone();
                }
                a.push_formatted(v);
            }
        }
    }
    if let Some(new) = item.get("records").and_then(|r| r.as_array_of_tables()) {
        match present
            .get_mut("records")
            .and_then(|r| r.as_array_of_tables_mut())
        {
            Some(a) => {
                for t in new.iter() {
                    a.push(t.clone());
                }
            }
            None => {
                if let Some(t) = present.as_table_like_mut() {
                    t.insert("records", toml_edit::Item::ArrayOfTables(new.clone()));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{DbStatus, InstanceState};
    use crate::types::{ClusterId, InstanceId};

    fn zones() -> Vec<Zone> {
        ["us-east-1a", "us-east-1b", "us-east-1c"]
            .map(Zone::new)
            .to_vec()
    }

    fn opts() -> Options {
        Options {
            env_name: "prod".into(),
            region: "us-east-1".into(),
            zones: None,
            tags: vec![],
            group_by: GroupBy::Kind,
            profile: None,
            endpoint_url: None,
        }
    }

    fn instance(id: &str, zone: &str, cluster: Option<&str>, multi_az: bool) -> InstanceListing {
        InstanceListing {
            state: InstanceState {
                id: InstanceId::new(id),
                cluster: cluster.map(ClusterId::new),
                status: DbStatus::from("available"),
                engine: "mysql".into(),
                zone: Some(Zone::new(zone)),
                secondary_zone: None,
                multi_az,
            },
            tags: vec![("team".into(), "shop".into())],
            replica_of: None,
        }
    }

    fn cluster(id: &str, members: &[&str], team: &str) -> ClusterListing {
        ClusterListing {
            id: ClusterId::new(id),
            engine: "aurora-postgresql".into(),
            members: members.iter().map(|m| InstanceId::new(*m)).collect(),
            tags: vec![("team".into(), team.into())],
        }
    }

    fn rs(name: &str, rtype: &str, id: Option<&str>, values: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            rtype: rtype.into(),
            ttl: Some(60),
            set_identifier: id.map(str::to_string),
            weight: id.map(|_| 100),
            values: values.iter().map(|v| v.to_string()).collect(),
            ..RecordSet::default()
        }
    }

    #[test]
    fn zone_tokens_in_values() {
        let z = zones();
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            (
                "api-a.lb.example.com",
                Some(("us-east-1a", "api-c.lb.example.com")),
            ),
            ("db_b.internal", Some(("us-east-1b", "db_c.internal"))),
            (
                "lb-us-east-1b.elb.amazonaws.com",
                Some(("us-east-1b", "lb-us-east-1c.elb.amazonaws.com")),
            ),
            ("www.example.com", None),
            ("10.0.1.10", None),
            // Two zones named: ambiguous.
            ("us-east-1a-us-east-1b.example.com", None),
            // Two labels with a zone suffix: ambiguous.
            ("api-a.pool-b.example.com", None),
        ];
        for (value, want) in cases {
            let got = zone_token(value, &z);
            match (want, got) {
                (None, None) => {}
                (Some((zone, other)), Some((gz, t))) => {
                    assert_eq!(gz.as_str(), *zone, "{value}");
                    assert_eq!(for_zone(value, &t, &gz, &z[2]), *other, "{value}");
                }
                (w, g) => panic!("{value}: wanted {w:?}, got {g:?}"),
            }
        }
        assert_eq!(az_id("db.use1-az1.example.com"), Some("use1-az1"));
        assert_eq!(az_id("api-a.example.com"), None);
    }

    fn listing() -> Listing {
        let mut instances = vec![];
        for c in ["orders", "catalog"] {
            for (k, z) in ["a", "b", "c"].iter().enumerate() {
                let _ = k;
                instances.push(instance(
                    &format!("{c}-{z}"),
                    &format!("us-east-1{z}"),
                    Some(c),
                    false,
                ));
            }
        }
        instances.push(instance("lonely-1", "us-east-1a", Some("lonely"), false));
        instances.push(instance("legacy", "us-east-1a", None, true));
        instances.push(instance("single", "us-east-1b", None, false));
        let mut other = instance("other-team", "us-east-1a", None, true);
        other.tags = vec![("team".into(), "search".into())];
        instances.push(other);
        let hz = HostedZone {
            id: "Z1".into(),
            name: "shop.example.com.".into(),
        };
        let records = vec![
            rs("shop.example.com.", "NS", None, &["ns-1.example.net."]),
            rs(
                "shop.example.com.",
                "SOA",
                None,
                &["ns-1.example.net. x 1 2 3 4 5"],
            ),
            rs(
                "api.shop.example.com.",
                "CNAME",
                None,
                &["api-a.lb.shop.example.com"],
            ),
            rs(
                "www.shop.example.com.",
                "A",
                Some("us-east-1a"),
                &["10.0.1.10"],
            ),
            rs(
                "www.shop.example.com.",
                "A",
                Some("us-east-1b"),
                &["10.0.2.10"],
            ),
            rs("img.shop.example.com.", "A", Some("blue"), &["10.0.9.1"]),
            rs("img.shop.example.com.", "A", Some("green"), &["10.0.9.2"]),
            rs(
                "mail.shop.example.com.",
                "MX",
                None,
                &["10 mx.example.net."],
            ),
            rs(
                "blog.shop.example.com.",
                "CNAME",
                None,
                &["blog.example.net"],
            ),
            rs(
                "db.shop.example.com.",
                "CNAME",
                None,
                &["db.use1-az4.example.net"],
            ),
        ];
        Listing {
            clusters: vec![
                cluster("orders", &["orders-a", "orders-b", "orders-c"], "shop"),
                cluster(
                    "catalog",
                    &["catalog-a", "catalog-b", "catalog-c"],
                    "search",
                ),
                cluster("lonely", &["lonely-1"], "shop"),
            ],
            instances,
            hosted_zones: vec![(hz, records)],
        }
    }

    #[test]
    fn classification_groups_and_explains() {
        let d = classify(&listing(), &opts()).unwrap();
        assert_eq!(d.zones, zones());
        let names: Vec<&str> = d.groups.keys().map(|s| s.as_str()).collect();
        assert_eq!(names, ["aurora", "multi_az", "storefront"]);
        assert_eq!(d.count(), (2, 2, 2));
        let why: Vec<(String, String)> = d
            .unclassified
            .iter()
            .map(|u| {
                (
                    u.what.clone(),
                    u.reason.split(':').next().unwrap_or("").to_string(),
                )
            })
            .collect();
        let expect = [
            ("cluster lonely", "all its instances are in us-east-1a"),
            ("instance single", "single-AZ"),
            ("record blog.shop.example.com. CNAME", "its value names no zone (not a per-zone record)"),
            ("record db.shop.example.com. CNAME", "its value names the zone id `use1-az4`; zone ids differ per account, so the values for the other zones cannot be derived"),
            ("record img.shop.example.com. A", "weighted sets `blue`, `green` are not named after a zone"),
            ("record mail.shop.example.com. MX", "type MX"),
        ];
        for (w, r) in expect {
            assert!(
                why.iter().any(|(a, b)| a == w && b == r),
                "{w}: {r} not in {why:#?}"
            );
        }
        assert_eq!(d.unclassified.len(), expect.len(), "{why:#?}");
        assert_eq!(d.apex_skipped, 2);
        let Some(Group::Records { records, .. }) = d.groups.get("storefront") else {
            panic!()
        };
        let api = records
            .iter()
            .find(|r| r.name == "api.shop.example.com.")
            .unwrap();
        assert_eq!(
            api.values[&Zone::new("us-east-1b")],
            ["api-b.lb.shop.example.com"]
        );
        assert!(!api.weighted);
        let www = records
            .iter()
            .find(|r| r.name == "www.shop.example.com.")
            .unwrap();
        assert!(www.weighted && www.values.len() == 2);
    }

    #[test]
    fn tags_filter_and_group() {
        let mut o = opts();
        o.tags = vec![("team".into(), "shop".into())];
        let d = classify(&listing(), &o).unwrap();
        let Some(Group::DbClusters { clusters }) = d.groups.get("aurora") else {
            panic!()
        };
        assert_eq!(clusters, &[ClusterId::new("orders")]);
        // catalog (search), other-team (search).
        assert_eq!(d.filtered_out, 2);
        o.tags = vec![];
        o.group_by = GroupBy::Tag("team".into());
        let d = classify(&listing(), &o).unwrap();
        let names: Vec<&str> = d.groups.keys().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "clusters_search",
                "clusters_shop",
                "instances_search",
                "instances_shop",
                "storefront"
            ]
        );
        assert_eq!(d.missing_stock_groups(), ["aurora", "multi_az"]);
    }

    #[test]
    fn the_rendered_file_is_a_valid_environment() {
        let d = classify(&listing(), &opts()).unwrap();
        let text = render(&d, &opts());
        let env = crate::env::Environment::parse(
            crate::diag::SourceFile::new("prod.toml", text.clone()),
            "prod",
        )
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(env.groups.len(), 3);
        assert!(
            text.contains("# cluster lonely: all its instances are in us-east-1a"),
            "{text}"
        );
        assert!(
            text.contains("# The values for the other zones were derived from `-a` in the current value (us-east-1a): check them.\n[[groups.storefront.records]]\nname = \"api.shop.example.com.\""),
            "{text}"
        );
    }

    #[test]
    fn merging_keeps_what_a_person_wrote() {
        let d = classify(&listing(), &opts()).unwrap();
        let first = render(&d, &opts());
        // A person edits: a comment, a setting, and moves `orders` into a group of their own.
        let edited = first
            .replace("[groups.aurora]", "# Orders is ours.\n[groups.mine]\nkind = \"db_clusters\"\nclusters = [\"orders\"]\n\n[groups.aurora]")
            .replace("clusters = [\"catalog\", \"orders\"]", "clusters = [\"catalog\"]")
            + "\n[settings]\npoll_interval = \"2s\" # tuned by hand\n";
        let mut more = listing();
        more.clusters
            .push(cluster("payments", &["orders-a", "catalog-b"], "shop"));
        let d2 = classify(&more, &opts()).unwrap();
        let m = merge(&edited, &d2).unwrap();
        assert!(
            m.text.contains("# Orders is ours.\n[groups.mine]"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("poll_interval = \"2s\" # tuned by hand"),
            "{}",
            m.text
        );
        assert_eq!(m.added, ["aurora: cluster payments"]);
        assert_eq!(m.text.matches("\"orders\"").count(), 1, "{}", m.text);
        assert_eq!(m.text.matches(BLOCK_START).count(), 1);
        let env = crate::env::Environment::parse(
            crate::diag::SourceFile::new("prod.toml", m.text.clone()),
            "prod",
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", m.text));
        let Some(Group::DbClusters { clusters }) = env.groups.get("aurora") else {
            panic!()
        };
        assert_eq!(
            clusters,
            &[ClusterId::new("catalog"), ClusterId::new("payments")]
        );
        // Merging again adds nothing and changes nothing.
        let again = merge(&m.text, &d2).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.text, m.text);
    }
}
