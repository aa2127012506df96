//! Ports: the narrow traits the engine uses to observe and change the world.
//!
//! Everything here is the project's own vocabulary. `cloud::aws` implements the ports with the
//! AWS SDK (it is the only module that imports an `aws-sdk-*` crate); the simulator (a later
//! issue) implements them with a modelled world. No SDK type crosses this boundary.

pub mod aws;
pub mod http;
pub mod retry;
pub mod sim;

use crate::types::{ClusterId, InstanceId, Zone};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

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
    pub status: String,
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
    pub status: String,
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
    pub status: String,
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
    /// A routing policy this tool does not rewrite (failover, geolocation, latency,
    /// multivalue, geoproximity, CIDR), e.g. `failover PRIMARY`. Such records are left alone.
    #[serde(default)]
    pub other_routing: Option<String>,
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
    pub weighted: bool,
    pub weight: i64,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

/// How a failed call should be treated. One place (`cloud::retry`) decides what to do with
/// each kind; adapters only map their errors onto it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The peer refused the request because of a rate limit: it was not processed.
    Throttled,
    /// 5xx, connection reset, timeout: the request may or may not have been processed.
    Transient,
    /// Credentials missing or expired, or not allowed by IAM.
    AccessDenied,
    /// The resource does not exist.
    NotFound,
    /// The resource is not in a state that allows the call (e.g. a failover already running).
    InvalidState,
    /// The request itself is wrong (bad parameter); retrying cannot help.
    InvalidRequest,
    /// Anything else.
    Other,
}

impl ErrorKind {
    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "the API rate limit was hit; the call is retried with backoff, lower concurrency if it persists",
            ErrorKind::Transient => "a transient AWS or network error; retry the step, or `failover run` again: steps observe before acting",
            ErrorKind::AccessDenied => "check the credentials and IAM permissions of the environment's profile (aws sts get-caller-identity)",
            ErrorKind::NotFound => "check the resource name in the environment file under config/",
            ErrorKind::InvalidState => "the resource is busy (another failover or modification?); check its status in the console, then run again",
            ErrorKind::InvalidRequest => "the request was rejected as invalid; check the runbook and environment values",
            ErrorKind::Other => "see the message above; the run can be started again once fixed",
        }
    }
}

/// A classified failure of one call to a peer, naming the call and the resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{operation} on {resource} failed ({kind:?}{code}): {message}", code = self.code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
pub struct CloudError {
    pub kind: ErrorKind,
    pub operation: String,
    pub resource: String,
    pub code: Option<String>,
    pub message: String,
}

impl CloudError {
    pub fn new(
        kind: ErrorKind,
        operation: impl Into<String>,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation: operation.into(),
            resource: resource.into(),
            code: None,
            message: message.into(),
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// RDS: Aurora clusters, Multi-AZ DB clusters and Multi-AZ DB instances.
#[async_trait]
pub trait Databases: Send + Sync {
    /// Describe the given clusters with as few calls as possible (filters, pages).
    /// Clusters that do not exist are absent from the result.
    async fn describe_clusters(&self, ids: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError>;
    /// Describe every instance that belongs to one of the given clusters.
    async fn describe_cluster_instances(
        &self,
        clusters: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError>;
    /// Describe the given instances. Instances that do not exist are absent from the result.
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError>;
    /// FailoverDBCluster to the given target instance.
    async fn failover_cluster(
        &self,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> Result<(), CloudError>;
    /// RebootDBInstance with ForceFailover=true.
    async fn reboot_with_failover(&self, instance: &InstanceId) -> Result<(), CloudError>;
    async fn create_cluster_snapshot(
        &self,
        cluster: &ClusterId,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;
    async fn create_instance_snapshot(
        &self,
        instance: &InstanceId,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;
    /// Describe the given manual snapshots; missing ones are absent from the result.
    async fn describe_snapshots(
        &self,
        kind: SnapshotKind,
        ids: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError>;
}

/// Route 53.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Find a hosted zone by id (`Z...`) or by name (`example.com.`).
    async fn find_hosted_zone(&self, id_or_name: &str) -> Result<HostedZone, CloudError>;
    /// All record sets of a hosted zone (paged).
    async fn list_record_sets(&self, zone_id: &str) -> Result<Vec<RecordSet>, CloudError>;
    /// One ChangeResourceRecordSets request. Callers batch within the service limits.
    async fn change_record_sets(
        &self,
        zone_id: &str,
        comment: &str,
        changes: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError>;
    async fn get_change(&self, change_id: &str) -> Result<ChangeInfo, CloudError>;
}

/// Outgoing HTTP for `http` steps.
#[async_trait]
pub trait HttpClient: Send + Sync {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, CloudError>;
}

/// Time, injected so the simulator can run a virtual clock.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
    async fn sleep(&self, d: Duration);
}

/// The wall clock, backed by tokio.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
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
}
