//! Faults on the simulated timeline, and their one-line syntax.
//!
//! The same syntax is used by `--fault` on the command line and by the `faults` list of a
//! topology file (which also accepts tables with the same fields):
//!
//! ```text
//! az-down ZONE [at T] [for D]              the zone loses its network
//! az-flap ZONE period P [at T] [for D]     down for the first half of every period, then up
//! region-down REGION [at T] [for D]        every zone of the region down, its API unreachable
//! region-impaired REGION [at T] [for D]    the region's control plane fails (its API endpoints
//!                                          throttle or answer 5xx, a switchover involving it
//!                                          never completes), its data plane degraded
//! route53-down [at T] [for D]              Route 53's control plane (API) unavailable
//! api-errors OP rate R [at T] [for D]      a share R (0.2 or 20%) of matching calls answer 500
//! api-load SERVICE rate R [at T] [for D]   other clients of the account use R requests/s of a quota
//! fail-call OP [resource X] [at T] [times N] [error CODE] [applied]
//! timeout-call OP [resource X] [at T] [times N] [applied]
//! stall-failover CLUSTER [at T] [for D]    a failover of the cluster started then never ends
//! stale-reads SERVICE lag L [at T] [for D] reads of a resource just changed answer it as it
//!                                          was before the change, for L (at most 5m)
//! probes-fail ZONE count N [at T] [for D]  N of the zone's health probes fail (time out) while
//!                                          the zone itself is fine: a partial failure
//! observer-down [at T] [for D]             the health prober's own network is down: every
//!                                          probe times out, whatever the zones do
//! ```
//!
//! `OP` is an operation name (`FailoverDBCluster`, `ChangeResourceRecordSets`, ...), a whole
//! service (`rds`, `route53`, `arc`, `http`) or `*` (`StartZonalShift`, ... for ARC). `applied` means the call takes effect but its
//! answer is lost, as when a connection drops after the request was processed. `SERVICE` of
//! `stale-reads` is `rds`, `route53` or `*`. Durations use humantime (`0s`, `90s`, `5m`,
//! `1h 30m`).

use crate::diag::did_you_mean;
use crate::types::{ClusterId, Region, Zone};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The three services the simulator answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Rds,
    Route53,
    Http,
    /// ARC zonal shift (regional).
    Arc,
    /// CloudWatch metrics (regional).
    CloudWatch,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Rds => "rds",
            Service::Route53 => "route53",
            Service::Http => "http",
            Service::Arc => "arc",
            Service::CloudWatch => "cloudwatch",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Operations of the RDS API the ports use.
pub const RDS_OPERATIONS: &[&str] = &[
    "DescribeDBClusters",
    "DescribeDBInstances",
    "FailoverDBCluster",
    "RebootDBInstance",
    "CreateDBClusterSnapshot",
    "CreateDBSnapshot",
    "DescribeDBClusterSnapshots",
    "DescribeDBSnapshots",
    "DescribeGlobalClusters",
    "SwitchoverGlobalCluster",
    "FailoverGlobalCluster",
];

/// Operations of the CloudWatch API the ports use (the replication lag at a promotion).
pub const CLOUDWATCH_OPERATIONS: &[&str] = &["GetMetricStatistics"];

/// Operations of the Route 53 API the ports use.
pub const ROUTE53_OPERATIONS: &[&str] = &[
    "GetHostedZone",
    "ListHostedZonesByName",
    "ListResourceRecordSets",
    "ChangeResourceRecordSets",
    "GetChange",
];

/// Operations of the ARC zonal shift API the ports use.
pub const ARC_OPERATIONS: &[&str] = &[
    "GetManagedResource",
    "ListZonalShifts",
    "StartZonalShift",
    "CancelZonalShift",
];

/// Which calls a fault applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "match", content = "value", rename_all = "snake_case")]
pub enum OpMatch {
    /// Every call of every service.
    All,
    /// Every call of one service.
    Service(Service),
    /// One operation, spelled as AWS spells it.
    Operation(String),
}

impl OpMatch {
    pub fn matches(&self, service: Service, operation: &str) -> bool {
        match self {
            OpMatch::All => true,
            OpMatch::Service(s) => *s == service,
            OpMatch::Operation(op) => op.eq_ignore_ascii_case(operation),
        }
    }

    /// The service of the calls it matches, when there is exactly one.
    pub fn service(&self) -> Option<Service> {
        match self {
            OpMatch::All => None,
            OpMatch::Service(s) => Some(*s),
            OpMatch::Operation(op) => service_of(op),
        }
    }
}

impl fmt::Display for OpMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpMatch::All => f.write_str("*"),
            OpMatch::Service(s) => f.write_str(s.as_str()),
            OpMatch::Operation(op) => f.write_str(op),
        }
    }
}

fn service_of(op: &str) -> Option<Service> {
    if RDS_OPERATIONS.iter().any(|o| o.eq_ignore_ascii_case(op)) {
        Some(Service::Rds)
    } else if ROUTE53_OPERATIONS
        .iter()
        .any(|o| o.eq_ignore_ascii_case(op))
    {
        Some(Service::Route53)
    } else if ARC_OPERATIONS.iter().any(|o| o.eq_ignore_ascii_case(op)) {
        Some(Service::Arc)
    } else if CLOUDWATCH_OPERATIONS
        .iter()
        .any(|o| o.eq_ignore_ascii_case(op))
    {
        Some(Service::CloudWatch)
    } else {
        None
    }
}

fn parse_op(s: &str) -> Result<OpMatch, String> {
    match s.to_ascii_lowercase().as_str() {
        "*" | "all" => return Ok(OpMatch::All),
        "rds" => return Ok(OpMatch::Service(Service::Rds)),
        "route53" => return Ok(OpMatch::Service(Service::Route53)),
        "http" => return Ok(OpMatch::Service(Service::Http)),
        "arc" => return Ok(OpMatch::Service(Service::Arc)),
        "cloudwatch" => return Ok(OpMatch::Service(Service::CloudWatch)),
        _ => {}
    }
    if let Some(op) = RDS_OPERATIONS
        .iter()
        .chain(ROUTE53_OPERATIONS)
        .chain(ARC_OPERATIONS)
        .chain(CLOUDWATCH_OPERATIONS)
        .find(|o| o.eq_ignore_ascii_case(s))
    {
        return Ok(OpMatch::Operation(op.to_string()));
    }
    let all: Vec<&str> = RDS_OPERATIONS
        .iter()
        .chain(ROUTE53_OPERATIONS)
        .chain(ARC_OPERATIONS)
        .chain(CLOUDWATCH_OPERATIONS)
        .copied()
        .collect();
    Err(match did_you_mean(s, all.iter().copied()) {
        Some(m) => format!("unknown operation `{s}`; did you mean `{m}`?"),
        None => format!("unknown operation `{s}`; use an AWS operation name ({}), a service (rds, route53, arc, http) or `*`", all.join(", ")),
    })
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FaultKind {
    /// The zone loses its network: its instances are unreachable (the RDS control plane keeps
    /// reporting them `available`, as in the seed incident), a failover to one of them fails,
    /// its HTTP endpoints time out.
    AzDown { zone: Zone },
    /// The zone is down for the first half of every `period`, up for the second half.
    AzFlap { zone: Zone, period: Duration },
    /// Every zone of the region is down and the region's API endpoints are unreachable
    /// (for us-east-1 that includes Route 53's control plane).
    RegionDown { region: Region },
    /// The region's control plane fails: calls to its API endpoints are throttled or answer
    /// 5xx (most of them, seeded), a global switchover involving it never completes; its data
    /// plane is degraded (zones serve, global replication out of it falls behind).
    RegionImpaired { region: Region },
    /// Route 53's control plane is unavailable: every Route 53 API call fails (503).
    Route53Down,
    /// A share of matching calls fail with HTTP 500 (`InternalFailure`), seeded.
    ApiErrors { operation: OpMatch, rate: f64 },
    /// Other clients of the account use `rate` requests per second of the service's quota.
    ApiLoad { service: Service, rate: f64 },
    /// The next `times` matching calls fail with `error` (default `InternalFailure`, HTTP
    /// 500; for HTTP calls a status code, default 503). With `applied` the call takes effect
    /// and only its answer is an error.
    FailCall {
        operation: OpMatch,
        resource: Option<String>,
        times: u32,
        error: Option<String>,
        applied: bool,
    },
    /// The next `times` matching calls get no answer: the client gives up after its
    /// operation timeout (or never, then the engine's step timeout ends the wait).
    TimeoutCall {
        operation: OpMatch,
        resource: Option<String>,
        times: u32,
        applied: bool,
    },
    /// A failover of the cluster started while the fault is active never completes.
    StallFailover { cluster: ClusterId },
    /// Eventually consistent reads: after a mutation accepted while the fault is active
    /// (FailoverDBCluster, RebootDBInstance, CreateDBClusterSnapshot, CreateDBSnapshot,
    /// ChangeResourceRecordSets), reads of the resource it touched (DescribeDBClusters,
    /// DescribeDBInstances, Describe*Snapshots, ListResourceRecordSets, GetChange) answer it
    /// as it was just before the mutation until `lag` has passed, even if the fault ends
    /// meanwhile. Mutating calls still see the true state. `service` is `rds`, `route53` or
    /// `*` (every service).
    StaleReads { service: OpMatch, lag: Duration },
    /// The first `count` health probes of the zone (in `[health]` order) get no answer until
    /// their timeout, while the zone itself serves: a partial failure (a rack, one load
    /// balancer node), or probes misconfigured for it.
    ProbesFail { zone: Zone, count: u32 },
    /// The prober's own network is impaired: every HTTP/TCP probe times out and every API
    /// probe gets no answer, whatever the zones do. Only health probes are affected.
    ObserverDown,
}

/// The longest `lag` a `stale-reads` fault may have: Describe calls catch up within seconds;
/// minutes are already a severe outage of the control plane.
pub const MAX_STALE_LAG: Duration = Duration::from_secs(5 * 60);

/// A fault and when it applies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// When the fault begins, from the start of the simulation.
    #[serde(rename = "at_ms", serialize_with = "ser_ms")]
    pub at: Duration,
    /// How long it lasts; `None`: until the end of the simulation.
    #[serde(rename = "for_ms", serialize_with = "ser_opt_ms")]
    pub duration: Option<Duration>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

impl Fault {
    /// Is the fault in force at `t`?
    pub fn covers(&self, t: Duration) -> bool {
        t >= self.at && self.duration.is_none_or(|d| t < self.at + d)
    }

    /// The end of the fault, if it has one.
    pub fn end(&self) -> Option<Duration> {
        self.duration.map(|d| self.at + d)
    }

    /// The kind's name as written in the syntax (`az-down`, ...).
    pub fn name(&self) -> &'static str {
        match self.kind {
            FaultKind::AzDown { .. } => "az-down",
            FaultKind::AzFlap { .. } => "az-flap",
            FaultKind::RegionDown { .. } => "region-down",
            FaultKind::RegionImpaired { .. } => "region-impaired",
            FaultKind::Route53Down => "route53-down",
            FaultKind::ApiErrors { .. } => "api-errors",
            FaultKind::ApiLoad { .. } => "api-load",
            FaultKind::FailCall { .. } => "fail-call",
            FaultKind::TimeoutCall { .. } => "timeout-call",
            FaultKind::StallFailover { .. } => "stall-failover",
            FaultKind::StaleReads { .. } => "stale-reads",
            FaultKind::ProbesFail { .. } => "probes-fail",
            FaultKind::ObserverDown => "observer-down",
        }
    }
}

/// A fault that cannot be read, with what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fault `{text}`: {message}")]
pub struct FaultError {
    pub text: String,
    pub message: String,
}

pub const FAULT_KINDS: &[&str] = &[
    "az-down",
    "az-flap",
    "region-down",
    "region-impaired",
    "route53-down",
    "api-errors",
    "api-load",
    "fail-call",
    "timeout-call",
    "stall-failover",
    "stale-reads",
    "probes-fail",
    "observer-down",
];

const USAGE: &str = "az-down ZONE [at T] [for D] | az-flap ZONE period P [at T] [for D] | region-down REGION [at T] [for D] | region-impaired REGION [at T] [for D] | route53-down [at T] [for D] | api-errors OP rate R [at T] [for D] | api-load SERVICE rate R [at T] [for D] | fail-call OP [resource X] [at T] [times N] [error CODE] [applied] | timeout-call OP [resource X] [at T] [times N] [applied] | stall-failover CLUSTER [at T] [for D] | stale-reads SERVICE lag L [at T] [for D] | probes-fail ZONE count N [at T] [for D] | observer-down [at T] [for D]";

/// A fault before its fields are checked: the kind, its subject and `key value` options.
/// Both the one-line syntax and TOML tables are read into this, then checked by one function.
#[derive(Clone, Debug, Default)]
pub struct FaultSpec {
    pub kind: String,
    pub subject: Option<String>,
    pub options: BTreeMap<String, String>,
    /// Flags without a value (`applied`).
    pub flags: Vec<String>,
    /// How the fault was written, for messages.
    pub text: String,
}

fn subject_name(kind: &str) -> Option<&'static str> {
    match kind {
        "az-down" | "az-flap" | "probes-fail" => Some("zone"),
        "region-down" | "region-impaired" => Some("region"),
        "api-errors" | "fail-call" | "timeout-call" => Some("operation"),
        "api-load" | "stale-reads" => Some("service"),
        "stall-failover" => Some("cluster"),
        _ => None,
    }
}

const OPTION_KEYS: &[&str] = &[
    "at", "for", "period", "rate", "times", "resource", "error", "lag", "count",
];
const FLAG_KEYS: &[&str] = &["applied"];

impl FaultSpec {
    /// Split the one-line syntax.
    pub fn from_line(line: &str) -> Result<FaultSpec, FaultError> {
        let text = line.trim().to_string();
        let err = |m: String| FaultError {
            text: text.clone(),
            message: m,
        };
        let mut tokens = text.split_whitespace().peekable();
        let kind = tokens
            .next()
            .ok_or_else(|| err(format!("empty fault; write one of: {USAGE}")))?
            .to_ascii_lowercase();
        let mut spec = FaultSpec {
            kind: kind.clone(),
            text: text.clone(),
            ..Default::default()
        };
        if !FAULT_KINDS.contains(&kind.as_str()) {
            // Let `build` explain, before the arguments of an unknown kind confuse the parser.
            return Ok(spec);
        }
        if subject_name(&kind).is_some() {
            match tokens.peek() {
                Some(t)
                    if !OPTION_KEYS.contains(&t.to_ascii_lowercase().as_str())
                        && !FLAG_KEYS.contains(&t.to_ascii_lowercase().as_str()) =>
                {
                    spec.subject = tokens.next().map(|s| s.to_string());
                }
                _ => {}
            }
        }
        spec.read_options(tokens.collect())?;
        Ok(spec)
    }

    /// The `key value` options and the flags after the subject of the one-line syntax.
    fn read_options(&mut self, mut rest: Vec<&str>) -> Result<(), FaultError> {
        rest.reverse();
        while let Some(key) = rest.pop() {
            let k = key.to_ascii_lowercase();
            if FLAG_KEYS.contains(&k.as_str()) {
                self.flags.push(k);
                continue;
            }
            if !OPTION_KEYS.contains(&k.as_str()) {
                let hint = match did_you_mean(&k, OPTION_KEYS.iter().chain(FLAG_KEYS).copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "options: {}",
                        OPTION_KEYS
                            .iter()
                            .chain(FLAG_KEYS)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(self.error(format!("unexpected `{key}`; {hint}")));
            }
            // Durations may have spaces ("1h 30m"): take tokens while they read as a duration.
            let mut value = rest
                .pop()
                .ok_or_else(|| self.error(format!("`{key}` needs a value")))?
                .to_string();
            if ["at", "for", "period", "lag"].contains(&k.as_str()) {
                while let Some(next) = rest.last() {
                    let joined = format!("{value} {next}");
                    if !OPTION_KEYS.contains(&next.to_ascii_lowercase().as_str())
                        && crate::limits::parse_duration(&joined).is_ok()
                    {
                        value = joined;
                        rest.pop();
                    } else {
                        break;
                    }
                }
            }
            if self.options.insert(k.clone(), value).is_some() {
                return Err(self.error(format!("`{k}` is given twice")));
            }
        }
        Ok(())
    }

    /// Check the fields and build the fault.
    pub fn build(self) -> Result<Fault, FaultError> {
        self.check_kind()?;
        let subject = self.checked_subject()?;
        self.check_options()?;
        let at = self.duration("at")?.unwrap_or_default();
        let duration = self.duration("for")?;
        if duration == Some(Duration::ZERO) {
            return Err(self.error(
                "`for 0s` would end the fault as it begins; drop `for` to keep it until the end"
                    .into(),
            ));
        }
        let times = self.times()?;
        let kind = self.fault_kind(subject, times)?;
        Ok(Fault { kind, at, duration })
    }

    fn error(&self, message: String) -> FaultError {
        FaultError {
            text: self.text.clone(),
            message,
        }
    }

    /// The kind is one of [`FAULT_KINDS`].
    fn check_kind(&self) -> Result<(), FaultError> {
        let kind_name = self.kind.as_str();
        if !FAULT_KINDS.contains(&kind_name) {
            let hint = match did_you_mean(kind_name, FAULT_KINDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("one of: {}", FAULT_KINDS.join(", ")),
            };
            return Err(self.error(format!("unknown fault kind `{kind_name}`; {hint}")));
        }
        Ok(())
    }

    /// The subject, when the kind takes one (`""` when it takes none).
    fn checked_subject(&self) -> Result<String, FaultError> {
        let kind_name = self.kind.as_str();
        match (subject_name(kind_name), &self.subject) {
            (Some(what), None) => Err(self.error(format!(
                "`{kind_name}` needs a {what}: {}",
                usage_of(kind_name)
            ))),
            (None, Some(s)) => Err(self.error(format!(
                "`{kind_name}` takes no {s}: {}",
                usage_of(kind_name)
            ))),
            (_, s) => Ok(s.clone().unwrap_or_default()),
        }
    }

    /// Only the options and flags the kind takes.
    fn check_options(&self) -> Result<(), FaultError> {
        let kind_name = self.kind.as_str();
        let allowed: &[&str] = match kind_name {
            "az-down" | "region-down" | "region-impaired" | "route53-down" | "stall-failover"
            | "observer-down" => &["at", "for"],
            "probes-fail" => &["at", "for", "count"],
            "az-flap" => &["at", "for", "period"],
            "api-errors" | "api-load" => &["at", "for", "rate"],
            "fail-call" => &["at", "for", "times", "resource", "error", "applied"],
            "timeout-call" => &["at", "for", "times", "resource", "applied"],
            "stale-reads" => &["at", "for", "lag"],
            _ => &[],
        };
        for k in self.options.keys().chain(self.flags.iter()) {
            if !allowed.contains(&k.as_str()) {
                return Err(self.error(format!(
                    "`{k}` does not apply to `{kind_name}`: {}",
                    usage_of(kind_name)
                )));
            }
        }
        Ok(())
    }

    /// The duration option `k` (`at`, `for`, `period`, `lag`), if given.
    fn duration(&self, k: &str) -> Result<Option<Duration>, FaultError> {
        match self.options.get(k) {
            None => Ok(None),
            Some(v) => crate::limits::parse_duration(v).map(Some).map_err(|e| {
                self.error(format!(
                    "`{k} {v}`: {e} (write durations as 0s, 90s, 5m, 1h 30m)"
                ))
            }),
        }
    }

    /// The `rate` option: a share up to `max` (`0.3`, `30%`), or without `max` requests per
    /// second (`12`, `12/s`).
    fn rate(&self, max: Option<f64>) -> Result<f64, FaultError> {
        let kind_name = self.kind.as_str();
        let v = self.options.get("rate").ok_or_else(|| {
            self.error(format!(
                "`{kind_name}` needs a rate: {}",
                usage_of(kind_name)
            ))
        })?;
        let r = if let Some(p) = v.strip_suffix('%') {
            p.trim().parse::<f64>().map(|x| x / 100.0)
        } else {
            v.trim_end_matches("/s").parse::<f64>()
        }
        .map_err(|_| self.error(format!("`rate {v}` is not a number")))?;
        if !r.is_finite() || r < 0.0 || max.is_some_and(|m| r > m) {
            return Err(self.error(match max {
                Some(_) => format!("`rate {v}` must be between 0 and 1 (or 0% and 100%)"),
                None => {
                    format!("`rate {v}` must be a number of requests per second, 0 or more")
                }
            }));
        }
        Ok(r)
    }

    /// The `times` option: a whole number above 0 (default 1).
    fn times(&self) -> Result<u32, FaultError> {
        match self.options.get("times") {
            None => Ok(1),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.error(format!("`times {v}` must be a whole number above 0"))),
            },
        }
    }

    /// The `count` option of `probes-fail`: a whole number above 0 (required).
    fn count(&self) -> Result<u32, FaultError> {
        match self.options.get("count") {
            None => Err(self.error(format!(
                "`{}` needs a count: {}",
                self.kind,
                usage_of(&self.kind)
            ))),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.error(format!("`count {v}` must be a whole number above 0"))),
            },
        }
    }

    fn operation(&self, subject: &str) -> Result<OpMatch, FaultError> {
        parse_op(subject).map_err(|m| self.error(m))
    }

    /// The fault itself, once its kind, subject and options are known to fit.
    fn fault_kind(&self, subject: String, times: u32) -> Result<FaultKind, FaultError> {
        let applied = self.flags.iter().any(|f| f == "applied");
        let resource = self.options.get("resource").cloned();
        Ok(match self.kind.as_str() {
            "az-down" => FaultKind::AzDown {
                zone: Zone::new(subject),
            },
            "az-flap" => self.az_flap(subject)?,
            "region-down" => FaultKind::RegionDown {
                region: Region::new(subject),
            },
            "region-impaired" => FaultKind::RegionImpaired {
                region: Region::new(subject),
            },
            "route53-down" => FaultKind::Route53Down,
            "api-errors" => FaultKind::ApiErrors {
                operation: self.operation(&subject)?,
                rate: self.rate(Some(1.0))?,
            },
            "api-load" => self.api_load(&subject)?,
            "fail-call" => {
                let operation = self.operation(&subject)?;
                let error = self.fail_call_error(&operation)?;
                FaultKind::FailCall {
                    operation,
                    resource,
                    times,
                    error,
                    applied,
                }
            }
            "timeout-call" => FaultKind::TimeoutCall {
                operation: self.operation(&subject)?,
                resource,
                times,
                applied,
            },
            "stall-failover" => FaultKind::StallFailover {
                cluster: ClusterId::new(subject),
            },
            "stale-reads" => self.stale_reads(&subject)?,
            "probes-fail" => FaultKind::ProbesFail {
                zone: Zone::new(subject),
                count: self.count()?,
            },
            "observer-down" => FaultKind::ObserverDown,
            _ => unreachable!("checked against FAULT_KINDS above"),
        })
    }

    /// `az-flap`: a period of 2 s or more.
    fn az_flap(&self, subject: String) -> Result<FaultKind, FaultError> {
        let period = self.duration("period")?.ok_or_else(|| {
            self.error(format!(
                "`az-flap` needs a period: {}",
                usage_of(&self.kind)
            ))
        })?;
        if period < Duration::from_secs(2) {
            return Err(self.error(format!(
                "`period {}` is too short; use 2s or more",
                humantime::format_duration(period)
            )));
        }
        Ok(FaultKind::AzFlap {
            zone: Zone::new(subject),
            period,
        })
    }

    /// `api-load`: a service with a quota, and requests per second.
    fn api_load(&self, subject: &str) -> Result<FaultKind, FaultError> {
        let service = match self.operation(subject)? {
            OpMatch::Service(s @ (Service::Rds | Service::Route53)) => s,
            _ => {
                return Err(self.error(format!(
                    "`api-load` takes a service with a quota: rds or route53, not `{subject}`"
                )))
            }
        };
        Ok(FaultKind::ApiLoad {
            service,
            rate: self.rate(None)?,
        })
    }

    /// `stale-reads`: rds, route53 or `*`, and a lag above 0s, at most [`MAX_STALE_LAG`].
    fn stale_reads(&self, subject: &str) -> Result<FaultKind, FaultError> {
        let service = match subject.to_ascii_lowercase().as_str() {
            "*" | "all" => OpMatch::All,
            "rds" => OpMatch::Service(Service::Rds),
            "route53" => OpMatch::Service(Service::Route53),
            _ => {
                return Err(self.error(match did_you_mean(subject, ["rds", "route53"]) {
                    Some(s) => format!("unknown service `{subject}`; did you mean `{s}`?"),
                    None => format!(
                        "unknown service `{subject}`; `stale-reads` takes rds, route53 or `*`"
                    ),
                }))
            }
        };
        let lag = self.duration("lag")?.ok_or_else(|| {
            self.error(format!(
                "`stale-reads` needs a lag: {}",
                usage_of(&self.kind)
            ))
        })?;
        let max = fmt_dur(MAX_STALE_LAG);
        if lag.is_zero() {
            return Err(self.error(format!(
                "`lag {}` would make no read stale; use a lag above 0s, at most {max}",
                fmt_dur(lag)
            )));
        }
        if lag > MAX_STALE_LAG {
            return Err(self.error(format!(
                "`lag {}` is too long; use {max} or less",
                fmt_dur(lag)
            )));
        }
        Ok(FaultKind::StaleReads { service, lag })
    }

    /// `fail-call`'s `error`: an AWS error code, or a status code for HTTP calls.
    fn fail_call_error(&self, operation: &OpMatch) -> Result<Option<String>, FaultError> {
        let error = self.options.get("error").cloned();
        if let (Some(e), Some(Service::Http)) = (&error, operation.service()) {
            if !e.parse::<u16>().is_ok_and(|s| (100..=599).contains(&s)) {
                return Err(self.error(format!(
                    "`error {e}`: an HTTP call fails with a status code, e.g. `error 503`"
                )));
            }
        }
        Ok(error)
    }
}

fn usage_of(kind: &str) -> &'static str {
    USAGE
        .split(" | ")
        .find(|u| u.split_whitespace().next() == Some(kind))
        .unwrap_or(USAGE)
}

impl FromStr for Fault {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultSpec::from_line(s)?.build()
    }
}

/// Parse several `--fault` values, reporting every bad one.
pub fn parse_faults<S: AsRef<str>>(lines: &[S]) -> Result<Vec<Fault>, Vec<FaultError>> {
    let mut out = vec![];
    let mut errs = vec![];
    for l in lines {
        match l.as_ref().parse::<Fault>() {
            Ok(f) => out.push(f),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn fmt_dur(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn fmt_rate(r: f64) -> String {
    // `{}` of an f64 is the shortest form that parses back: 0.2, 12.
    format!("{r}")
}

/// The canonical one-line syntax (parses back to the same fault).
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        match &self.kind {
            FaultKind::AzDown { zone } => write!(f, " {zone}")?,
            FaultKind::AzFlap { zone, period } => write!(f, " {zone} period {}", fmt_dur(*period))?,
            FaultKind::RegionDown { region } | FaultKind::RegionImpaired { region } => {
                write!(f, " {region}")?
            }
            FaultKind::Route53Down => {}
            FaultKind::ApiErrors { operation, rate } => {
                write!(f, " {operation} rate {}", fmt_rate(*rate))?
            }
            FaultKind::ApiLoad { service, rate } => {
                write!(f, " {service} rate {}", fmt_rate(*rate))?
            }
            FaultKind::FailCall {
                operation,
                resource,
                ..
            }
            | FaultKind::TimeoutCall {
                operation,
                resource,
                ..
            } => {
                write!(f, " {operation}")?;
                if let Some(r) = resource {
                    write!(f, " resource {r}")?;
                }
            }
            FaultKind::StallFailover { cluster } => write!(f, " {cluster}")?,
            FaultKind::StaleReads { service, lag } => {
                write!(f, " {service} lag {}", fmt_dur(*lag))?
            }
            FaultKind::ProbesFail { zone, count } => write!(f, " {zone} count {count}")?,
            FaultKind::ObserverDown => {}
        }
        write!(f, " at {}", fmt_dur(self.at))?;
        if let Some(d) = self.duration {
            write!(f, " for {}", fmt_dur(d))?;
        }
        match &self.kind {
            FaultKind::FailCall {
                times,
                error,
                applied,
                ..
            } => {
                if *times != 1 {
                    write!(f, " times {times}")?;
                }
                if let Some(e) = error {
                    write!(f, " error {e}")?;
                }
                if *applied {
                    write!(f, " applied")?;
                }
            }
            FaultKind::TimeoutCall { times, applied, .. } => {
                if *times != 1 {
                    write!(f, " times {times}")?;
                }
                if *applied {
                    write!(f, " applied")?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_round_trips() {
        let lines = [
            "az-down us-west-2a at 0s",
            "az-down us-west-2b at 2m for 10m",
            "az-flap us-west-2a period 1m at 30s for 10m",
            "region-down us-east-1 at 0s",
            "route53-down at 1m for 5m",
            "api-errors DescribeDBClusters rate 0.2 at 0s",
            "probes-fail us-west-2a count 2 at 1m for 10m",
            "observer-down at 30s for 5m",
            "api-load route53 rate 12 at 0s for 1m",
            "fail-call FailoverDBCluster resource orders-db at 0s times 2 error InvalidDBClusterStateFault",
            "fail-call ChangeResourceRecordSets at 0s applied",
            "timeout-call RebootDBInstance at 0s times 3 applied",
            "stall-failover orders-db at 0s",
            "stale-reads rds lag 2s at 0s",
            "stale-reads * lag 1s 500ms at 1m for 10m",
            "stale-reads route53 lag 5m at 0s",
        ];
        for l in lines {
            let f: Fault = l.parse().unwrap_or_else(|e| panic!("{l}: {e}"));
            assert_eq!(f.to_string(), l, "canonical form");
            let again: Fault = f.to_string().parse().unwrap();
            assert_eq!(again, f);
        }
    }

    #[test]
    fn defaults_and_loose_spellings() {
        let f: Fault = "az-down us-west-2a".parse().unwrap();
        assert_eq!(f.at, Duration::ZERO);
        assert_eq!(f.duration, None);
        let f: Fault = "api-errors failoverdbcluster rate 25% at 1h 30m"
            .parse()
            .unwrap();
        assert_eq!(
            f.kind,
            FaultKind::ApiErrors {
                operation: OpMatch::Operation("FailoverDBCluster".into()),
                rate: 0.25
            }
        );
        assert_eq!(f.at, Duration::from_secs(5400));
        let f: Fault = "api-load rds rate 20/s".parse().unwrap();
        assert_eq!(
            f.kind,
            FaultKind::ApiLoad {
                service: Service::Rds,
                rate: 20.0
            }
        );
    }

    #[test]
    fn errors_say_what_to_write() {
        let e = "az-dwn us-west-2a".parse::<Fault>().unwrap_err();
        assert_eq!(
            e.message,
            "unknown fault kind `az-dwn`; did you mean `az-down`?"
        );
        let e = "az-down at 0s".parse::<Fault>().unwrap_err();
        assert_eq!(
            e.message,
            "`az-down` needs a zone: az-down ZONE [at T] [for D]"
        );
        let e = "api-errors FailoverDBClustr rate 0.1"
            .parse::<Fault>()
            .unwrap_err();
        assert_eq!(
            e.message,
            "unknown operation `FailoverDBClustr`; did you mean `FailoverDBCluster`?"
        );
        let e = "api-errors rds rate 2".parse::<Fault>().unwrap_err();
        assert_eq!(
            e.message,
            "`rate 2` must be between 0 and 1 (or 0% and 100%)"
        );
        let e = "az-down us-west-2a at soon".parse::<Fault>().unwrap_err();
        assert!(e.message.starts_with("`at soon`:"), "{}", e.message);
        let e = "az-down us-west-2a times 3".parse::<Fault>().unwrap_err();
        assert_eq!(
            e.message,
            "`times` does not apply to `az-down`: az-down ZONE [at T] [for D]"
        );
        let e = "az-flap us-west-2a at 0s".parse::<Fault>().unwrap_err();
        assert!(
            e.message.starts_with("`az-flap` needs a period"),
            "{}",
            e.message
        );
        let e = "fail-call http error Throttling"
            .parse::<Fault>()
            .unwrap_err();
        assert!(e.message.contains("status code"), "{}", e.message);
        let e = "az-down us-west-2a att 0s".parse::<Fault>().unwrap_err();
        assert_eq!(e.message, "unexpected `att`; did you mean `at`?");
    }

    #[test]
    fn stale_reads_takes_a_service_and_a_lag_up_to_five_minutes() {
        let f: Fault = "stale-reads ALL lag 2s".parse().unwrap();
        assert_eq!(
            f.kind,
            FaultKind::StaleReads {
                service: OpMatch::All,
                lag: Duration::from_secs(2)
            }
        );
        assert_eq!(f.to_string(), "stale-reads * lag 2s at 0s");
        let msg = |l: &str| l.parse::<Fault>().unwrap_err().message;
        assert_eq!(
            msg("stale-reads rdss lag 2s"),
            "unknown service `rdss`; did you mean `rds`?"
        );
        assert_eq!(
            msg("stale-reads http lag 2s"),
            "unknown service `http`; `stale-reads` takes rds, route53 or `*`"
        );
        assert_eq!(
            msg("stale-reads DescribeDBClusters lag 2s"),
            "unknown service `DescribeDBClusters`; `stale-reads` takes rds, route53 or `*`"
        );
        assert_eq!(
            msg("stale-reads rds"),
            "`stale-reads` needs a lag: stale-reads SERVICE lag L [at T] [for D]"
        );
        assert_eq!(
            msg("stale-reads lag 2s"),
            "`stale-reads` needs a service: stale-reads SERVICE lag L [at T] [for D]"
        );
        assert_eq!(
            msg("stale-reads rds lag 0s"),
            "`lag 0s` would make no read stale; use a lag above 0s, at most 5m"
        );
        assert_eq!(
            msg("stale-reads rds lag 5m 1s"),
            "`lag 5m 1s` is too long; use 5m or less"
        );
        assert!(msg("stale-reads rds lag soon").starts_with("`lag soon`:"));
        assert_eq!(
            msg("stale-reads rds lag 2s times 2"),
            "`times` does not apply to `stale-reads`: stale-reads SERVICE lag L [at T] [for D]"
        );
        assert_eq!(
            msg("az-down us-west-2a lag 2s"),
            "`lag` does not apply to `az-down`: az-down ZONE [at T] [for D]"
        );
    }

    #[test]
    fn coverage_window() {
        let f: Fault = "az-down us-west-2a at 1m for 2m".parse().unwrap();
        assert!(!f.covers(Duration::from_secs(59)));
        assert!(f.covers(Duration::from_secs(60)));
        assert!(f.covers(Duration::from_secs(179)));
        assert!(!f.covers(Duration::from_secs(180)));
    }
}
