//! Ports: the narrow traits the engine uses to observe and change the world.
//!
//! Everything here is the project's own vocabulary. `cloud::aws` implements the ports with the
//! AWS SDK (it is the only module that imports an `aws-sdk-*` crate); the simulator (a later
//! issue) implements them with a modelled world. No SDK type crosses this boundary.

pub mod aws;
pub mod error;
pub mod global;
pub mod http;
pub mod model;
pub mod ports;
pub mod rate;
pub mod retry;
pub mod sim;
pub mod status;

pub use error::{CloudError, ErrorKind};
pub use global::{GlobalClusterState, GlobalFailoverState, GlobalMember, Lag};
pub use ports::{
    CallMeter, Clock, ClusterListing, Databases, Dns, GlobalDatabases, HttpClient, InstanceListing,
    Inventory, Metrics, ZonalShifts,
};
pub use status::DbStatus;

use crate::types::{ClusterId, InstanceId, Region, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One member of a DB cluster as DescribeDBClusters reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMember {
    pub instance: InstanceId,
    pub is_writer: bool,
    /// Aurora promotion tier, 0 (highest priority) to 15.
    pub promotion_tier: i32,
}

/// Observed state of a DB cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub id: ClusterId,
    /// e.g. `available`, `failing-over`, `modifying`.
    pub status: DbStatus,
    pub engine: String,
    pub members: Vec<ClusterMember>,
}

impl ClusterState {
    pub fn writer(&self) -> Option<&ClusterMember> {
        self.members.iter().find(|m| m.is_writer)
    }
}

/// Observed state of a DB instance (a cluster member or a standalone Multi-AZ instance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    pub id: InstanceId,
    pub cluster: Option<ClusterId>,
    /// e.g. `available`, `rebooting`, `failing-over`.
    pub status: DbStatus,
    pub engine: String,
    /// Zone of the instance (the primary's zone for a Multi-AZ instance).
    pub zone: Option<Zone>,
    /// Standby zone of a Multi-AZ instance, when the peer reports it.
    pub secondary_zone: Option<Zone>,
    pub multi_az: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    Cluster,
    Instance,
}

/// Observed state of a manual snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotState {
    pub id: String,
    pub kind: SnapshotKind,
    /// The cluster or instance the snapshot is of.
    pub source: String,
    /// e.g. `creating`, `available`.
    pub status: DbStatus,
}

/// A Route 53 hosted zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedZone {
    /// Bare id, without the `/hostedzone/` prefix.
    pub id: String,
    /// Fully qualified, with the trailing dot.
    pub name: String,
}

/// An alias target (e.g. a load balancer) instead of plain values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AliasTarget {
    pub hosted_zone_id: String,
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

/// A Route 53 resource record set.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordSet {
    /// Fully qualified, with the trailing dot.
    pub name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    pub rtype: String,
    pub ttl: Option<i64>,
    pub set_identifier: Option<String>,
    pub weight: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<AliasTarget>,
    /// Route 53 health check attached to the record set; kept on every rewrite.
    #[serde(default)]
    pub health_check_id: Option<String>,
    /// The routing policy besides simple and weighted (`weight`): failover, latency,
    /// geolocation, multivalue, or one this tool only names (geoproximity, CIDR). Kept on
    /// every rewrite; the journal's previous record sets carry it for an exact rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

/// `Failover` of a failover record set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    Primary,
    Secondary,
}

impl fmt::Display for FailoverRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        })
    }
}

/// A record set's routing policy other than simple and weighted (those are the absence of a
/// set identifier, and `weight`), as Route 53 stores it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Routing {
    /// `Failover = PRIMARY | SECONDARY`.
    Failover { role: FailoverRole },
    /// Latency-based: `Region = us-west-2`.
    Latency { region: String },
    /// `GeoLocation`: a continent code, or a country code with an optional subdivision
    /// (`*` for the default location).
    Geolocation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        continent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        country: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subdivision: Option<String>,
    },
    /// `MultiValueAnswer = true`.
    Multivalue,
    /// A policy this tool reads but does not write (geoproximity, CIDR): named only, so a
    /// record set that has it is never rewritten.
    Unsupported { name: String },
}

impl Routing {
    /// Whether a rewrite can carry the policy over exactly.
    pub fn writable(&self) -> bool {
        !matches!(self, Routing::Unsupported { .. })
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Routing::Failover { role } => write!(f, "failover {role}"),
            Routing::Latency { region } => write!(f, "latency {region}"),
            Routing::Geolocation {
                continent,
                country,
                subdivision,
            } => {
                let parts: Vec<&str> = [continent, country, subdivision]
                    .iter()
                    .filter_map(|p| p.as_deref())
                    .collect();
                write!(f, "geolocation {}", parts.join("/"))
            }
            Routing::Multivalue => f.write_str("multivalue"),
            Routing::Unsupported { name } => f.write_str(name),
        }
    }
}

impl RecordSet {
    pub fn key(&self) -> RecordKey {
        RecordKey {
            name: normalize_dns_name(&self.name),
            rtype: self.rtype.clone(),
            set_identifier: self.set_identifier.clone(),
        }
    }
}

/// What identifies a record set inside a hosted zone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    pub name: String,
    pub rtype: String,
    pub set_identifier: Option<String>,
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.rtype)?;
        if let Some(id) = &self.set_identifier {
            write!(f, " [{id}]")?;
        }
        Ok(())
    }
}

/// Lower-case, with exactly one trailing dot. Route 53 escapes `*` as `\052`.
pub fn normalize_dns_name(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase().replace("\\052", "*");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// A record spec as carried by a bound step (serialisable for the journal): one logical record
/// with its value(s) per zone, as an environment's `records` group describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSpecOut {
    pub name: String,
    pub rtype: String,
    pub ttl: i64,
    pub values: BTreeMap<Zone, Vec<String>>,
    /// Values keyed by region instead of zone (a record that moves between regions;
    /// `values` is then empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub region_values: BTreeMap<Region, Vec<String>>,
    pub weighted: bool,
    pub weight: i64,
    /// Databases (cluster or instance ids) the record points at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeAction {
    Create,
    Upsert,
    Delete,
}

impl fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeAction::Create => "CREATE",
            ChangeAction::Upsert => "UPSERT",
            ChangeAction::Delete => "DELETE",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChange {
    pub action: ChangeAction,
    pub record: RecordSet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    Pending,
    Insync,
}

/// What ChangeResourceRecordSets / GetChange return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// Bare id, without the `/change/` prefix.
    pub id: String,
    pub status: ChangeStatus,
}

/// An outgoing HTTP request of an `http` step (status page, chat, edge admin API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// Whether a header's value must not be written to the journal: a credential-looking name
/// (authorization, token, secret, key, cookie, password) or a `${secret:NAME}` reference.
/// The one redaction rule, for intents and for the plans and steps a run stores.
pub fn is_sensitive_header(name: &str, value: &str) -> bool {
    let n = name.to_ascii_lowercase();
    value.contains("${secret:")
        || [
            "authorization",
            "token",
            "secret",
            "key",
            "cookie",
            "password",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// What the journal shows instead of a sensitive header value.
pub const REDACTED: &str = "<redacted>";

/// A URL without its query, fragment and credentials, for messages and the journal: a token
/// in `?token=...` or `user:pass@` never reaches either. Pure string work (no URL library), so
/// the core and the simulator share it with the HTTP adapter.
pub fn redacted_url(url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme || rest.contains(' ') {
        return base.to_string();
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!(
        "{}://{}{path}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    )
}

/// The timeout of an HTTP call when its endpoint names none.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Short description of a list of resources for error messages: `a, b, c and 7 more`.
pub fn describe_ids<S: AsRef<str>>(ids: &[S]) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<&str> = ids.iter().take(SHOWN).map(AsRef::as_ref).collect();
    let mut s = shown.join(", ");
    if ids.len() > SHOWN {
        s.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    s
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        crate::limits::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_redaction_rule_for_intents_and_stored_runs() {
        assert!(is_sensitive_header("Authorization", "Bearer abc"));
        assert!(
            is_sensitive_header("X-Api-Key", "literal-key"),
            "a literal key under a key-named header"
        );
        assert!(
            is_sensitive_header("X-Trace", "${secret:TOKEN}"),
            "a secret reference"
        );
        assert!(!is_sensitive_header("Content-Type", "application/json"));
    }

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        assert_eq!(
            redacted_url("https://u:p@hooks.example.com/a/b?token=x#f"),
            "https://hooks.example.com/a/b"
        );
        assert_eq!(redacted_url("not a url?token=x"), "not a url");
        assert_eq!(
            redacted_url("http://127.0.0.1:5056"),
            "http://127.0.0.1:5056/"
        );
        assert_eq!(
            redacted_url("HTTP://Example.COM/Path"),
            "http://example.com/Path"
        );
    }

    #[test]
    fn id_lists_are_cut_after_three() {
        assert_eq!(describe_ids(&["a"]), "a");
        assert_eq!(
            describe_ids(&["a", "b", "c", "d", "e"]),
            "a, b, c and 2 more"
        );
        assert_eq!(describe_ids::<&str>(&[]), "");
    }
}

/// The state of an ARC zonal shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ZonalShiftStatus {
    Active,
    Expired,
    Canceled,
}

impl fmt::Display for ZonalShiftStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ZonalShiftStatus::Active => "ACTIVE",
            ZonalShiftStatus::Expired => "EXPIRED",
            ZonalShiftStatus::Canceled => "CANCELED",
        })
    }
}

/// One ARC zonal shift of one managed resource (a load balancer or an Auto Scaling group).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonalShift {
    pub id: String,
    /// The resource's ARN.
    pub resource: String,
    /// The Availability Zone *ID* traffic moves away from (`usw2-az1`): ARC speaks zone ids,
    /// whose names differ per account.
    pub away_from: String,
    pub status: ZonalShiftStatus,
    /// Epoch milliseconds.
    pub start_ms: i64,
    pub expiry_ms: i64,
    pub comment: String,
}

impl ZonalShift {
    /// Active and not past its expiry at `now_ms` (a shift's status can lag its expiry).
    pub fn active_at(&self, now_ms: i64) -> bool {
        self.status == ZonalShiftStatus::Active && self.expiry_ms > now_ms
    }
}

/// A resource registered with ARC zonal shift, as GetManagedResource and ListZonalShifts
/// report it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedResource {
    pub arn: String,
    /// Zonal autoshift is enabled on the resource.
    pub autoshift_enabled: bool,
    /// Zone ids an autoshift currently moves traffic away from.
    pub autoshifts_away_from: Vec<String>,
    /// Its zonal shifts (active ones from GetManagedResource, earlier ones from
    /// ListZonalShifts), each once.
    pub shifts: Vec<ZonalShift>,
}

/// `Z123` from `Z123`, `/hostedzone/Z123` or `hostedzone/Z123`.
pub fn bare_zone_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix("/hostedzone/")
        .or_else(|| id.strip_prefix("hostedzone/"))
        .unwrap_or(id)
}

/// Whether `s` is a hosted zone id rather than a zone name. Route 53 ids are upper-case
/// letters and digits (`Z1D633PJN98FT9`; moto's do not always start with `Z`); names have a
/// dot or lower-case letters.
pub fn looks_like_zone_id(s: &str) -> bool {
    let s = bare_zone_id(s);
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}
