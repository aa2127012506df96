//! `[health]` section of an environment file: probes, quorum, hysteresis and the trigger.
//!
//! Parsed once into plain data with [`TableReader`], which collects every problem with its
//! file:line:col and a hint (unknown zone, quorum larger than a zone's probes, a latency budget
//! longer than the timeout, rounds that would overlap, a Route 53 rate limit that would be
//! exceeded...). The reference, with a complete example, is `docs/health.md`.
//!
//! ```toml
//! [health]
//! interval = "10s"        # one round of probes every interval
//! timeout = "2s"          # per probe attempt (a probe may override it)
//! attempts = 2            # http/tcp: a round's probe fails only if every attempt fails
//! quorum = 2              # K: failing probes that make a zone's round bad
//! unhealthy_after = 3     # M: consecutive bad rounds to declare a zone unhealthy
//! healthy_after = 5       # R: consecutive good rounds to declare it healthy again
//!
//! [[health.probes]]
//! name = "api-a"
//! zone = "us-west-2a"
//! kind = "http"
//! url = "https://api-a.internal/healthz"
//!
//! [health.trigger]
//! runbook = "runbooks/az-evacuation.toml"
//! zone_param = "failed_az"
//! policy = "approval"     # auto | approval | notify
//! cooldown = "30m"
//! ```

use crate::diag::{did_you_mean, Diagnostics, SourceFile};
use crate::tomlx::{self, SKind, SVal, Spanned, TableReader};
use crate::types::{InstanceId, Region, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Default time between two rounds of probes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Default time one probe attempt may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default attempts per round for `http` and `tcp` probes.
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// Default M: consecutive bad rounds before a zone is declared unhealthy.
pub const DEFAULT_UNHEALTHY_AFTER: u32 = 3;
/// Default R: consecutive good rounds before an unhealthy zone is declared healthy again.
pub const DEFAULT_HEALTHY_AFTER: u32 = 5;
/// Default time after a triggered run during which no other run is started.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30 * 60);
/// GetHealthCheckStatus sustained rate per account (Route 53 throttling: burst 4, 1 per second).
pub const ROUTE53_STATUS_CALLS_PER_SECOND: f64 = 1.0;

pub const PROBE_KINDS: &[&str] = &[
    "http",
    "tcp",
    "cloudwatch_alarm",
    "rds",
    "route53_health_check",
];
pub const POLICIES: &[&str] = &["auto", "approval", "notify"];
const HEALTH_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "attempts",
    "quorum",
    "region_quorum",
    "unhealthy_after",
    "healthy_after",
    "probes",
    "trigger",
    "region_trigger",
    "failback",
];
/// Default time a zone must have been declared healthy again before `[health.failback]`.
pub const DEFAULT_FAILBACK_AFTER: Duration = Duration::from_secs(30 * 60);
const COMMON_PROBE_KEYS: &[&str] = &["name", "zone", "region", "kind", "timeout"];

/// What a probe speaks for: one availability zone, or the region as a whole.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Zone(Zone),
    Region(Region),
}

impl Target {
    pub fn zone(&self) -> Option<&Zone> {
        match self {
            Target::Zone(z) => Some(z),
            Target::Region(_) => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Zone(z) => write!(f, "{z}"),
            Target::Region(r) => write!(f, "region {r}"),
        }
    }
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// GET (or HEAD) a URL: the status must be expected, the answer within the latency budget,
    /// and the body must contain `body_contains` when given.
    Http {
        url: String,
        method: String,
        /// Accepted statuses; empty means any 2xx.
        expect_status: Vec<u16>,
        latency_budget: Option<Duration>,
        body_contains: Option<String>,
    },
    /// Open a TCP connection to `host:port`.
    Tcp { address: String },
    /// A CloudWatch alarm: `ALARM` fails, `OK` passes, `INSUFFICIENT_DATA` is unknown.
    CloudwatchAlarm { alarm: String },
    /// RDS instances: those of the list that are in the probe's zone now must all have a
    /// healthy status (default: `available`).
    Rds {
        instances: Vec<InstanceId>,
        healthy_statuses: Vec<String>,
    },
    /// A Route 53 health check: healthy when more than 18% of its checkers report success.
    Route53HealthCheck { health_check_id: String },
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http { .. } => "http",
            Check::Tcp { .. } => "tcp",
            Check::CloudwatchAlarm { .. } => "cloudwatch_alarm",
            Check::Rds { .. } => "rds",
            Check::Route53HealthCheck { .. } => "route53_health_check",
        }
    }

    /// Whether a failed attempt is tried again within the round. Only direct network probes
    /// are: a lost packet or a refused connection can be a one-off, whereas an alarm state or an
    /// instance status read from an API would read the same a millisecond later.
    pub fn retries_within_round(&self) -> bool {
        matches!(self, Check::Http { .. } | Check::Tcp { .. })
    }

    /// What is probed, in a few words (`GET https://...`, `tcp db-a:5432`).
    pub fn describe(&self) -> String {
        match self {
            Check::Http { url, method, .. } => {
                format!("{method} {}", crate::cloud::redacted_url(url))
            }
            Check::Tcp { address } => format!("tcp {address}"),
            Check::CloudwatchAlarm { alarm } => format!("alarm {alarm}"),
            Check::Rds { instances, .. } => {
                format!(
                    "rds {}",
                    instances
                        .iter()
                        .map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }
            Check::Route53HealthCheck { health_check_id } => {
                format!("route53 health check {health_check_id}")
            }
        }
    }
}

/// One probe of the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Unique within the environment; used in reasons and reports.
    pub name: String,
    pub target: Target,
    /// Time one attempt may take.
    pub timeout: Duration,
    pub check: Check,
}

/// What `failover watch` does when a zone turns unhealthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Start the runbook at once.
    Auto,
    /// Start the runbook paused at an approval gate, and notify.
    Approval,
    /// Only notify.
    Notify,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Auto => "auto",
            Policy::Approval => "approval",
            Policy::Notify => "notify",
        })
    }
}

/// `[health.trigger]` (a zone is unhealthy) or `[health.region_trigger]` (the region is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TriggerConfig {
    /// Runbook started for the event (a path, as given to `failover run`).
    pub runbook: String,
    /// Where `runbook` is written in the environment file.
    #[serde(skip)]
    pub at: crate::diag::Place,
    /// Runbook parameter that receives the unhealthy zone (`zone_param`), or the unhealthy
    /// region for `[health.region_trigger]` (`region_param`).
    pub zone_param: String,
    /// Further parameters given to the runbook (e.g. `shed_load = "true"`).
    pub params: BTreeMap<String, String>,
    /// Optional runbook parameter that receives the one-line reason.
    pub reason_param: Option<String>,
    pub policy: Policy,
    /// After a run is started, no other run is started for this long.
    pub cooldown: Duration,
    /// Optional endpoint (from `[endpoints]`) to notify.
    pub notify: Option<Spanned<String>>,
}

/// `[health.failback]`: once a zone the watcher evacuated has been declared healthy again and
/// stayed so for `after`, start the failback runbook (per `policy`) with the zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailbackConfig {
    pub runbook: String,
    /// Where `runbook` is written in the environment file.
    #[serde(skip)]
    pub at: crate::diag::Place,
    /// Runbook parameter that receives the recovered zone.
    pub zone_param: String,
    pub params: BTreeMap<String, String>,
    pub policy: Policy,
    pub after: Duration,
}

/// The health configuration of an environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    /// Time between the starts of two rounds.
    pub interval: Duration,
    /// Default time one probe attempt may take.
    pub timeout: Duration,
    /// Attempts per round for probes that retry within a round (`http`, `tcp`).
    pub attempts: u32,
    /// K: failing probes that make a zone's round bad.
    pub quorum: u32,
    /// K for the probes that speak for the region as a whole.
    pub region_quorum: u32,
    /// M: consecutive bad rounds to declare a zone unhealthy.
    pub unhealthy_after: u32,
    /// R: consecutive good rounds to declare an unhealthy zone healthy again.
    pub healthy_after: u32,
    pub probes: Vec<Probe>,
    pub trigger: Option<TriggerConfig>,
    pub region_trigger: Option<TriggerConfig>,
    pub failback: Option<FailbackConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            quorum: 2,
            region_quorum: 2,
            unhealthy_after: DEFAULT_UNHEALTHY_AFTER,
            healthy_after: DEFAULT_HEALTHY_AFTER,
            probes: vec![],
            trigger: None,
            region_trigger: None,
            failback: None,
        }
    }
}

impl HealthConfig {
    /// Number of probes per target (N).
    pub fn probe_counts(&self) -> BTreeMap<Target, u32> {
        let mut n = BTreeMap::new();
        for p in &self.probes {
            *n.entry(p.target.clone()).or_insert(0) += 1;
        }
        n
    }

    /// K for a target.
    pub fn quorum_for(&self, target: &Target) -> u32 {
        match target {
            Target::Zone(_) => self.quorum,
            Target::Region(_) => self.region_quorum,
        }
    }

    /// Longest time one round can take: every probe runs concurrently, and a probe that
    /// retries may take `attempts` timeouts.
    pub fn worst_round(&self) -> Duration {
        self.probes
            .iter()
            .map(|p| {
                if p.check.retries_within_round() {
                    p.timeout * self.attempts
                } else {
                    p.timeout
                }
            })
            .max()
            .unwrap_or_default()
    }

    /// Checks what the `[health]` parser cannot see on its own: the trigger's `notify`
    /// endpoint must be one of the environment's `[endpoints]`. Call after the environment is
    /// parsed; `src` is the environment file.
    pub fn check_endpoints(&self, src: &SourceFile, endpoints: &[&str]) -> Diagnostics {
        let mut d = Diagnostics::default();
        let notifies = [&self.trigger, &self.region_trigger]
            .into_iter()
            .filter_map(|t| t.as_ref().and_then(|t| t.notify.as_ref()));
        for n in notifies {
            if !endpoints.contains(&n.value.as_str()) {
                let hint = match did_you_mean(&n.value, endpoints.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if endpoints.is_empty() => {
                        "define it under [endpoints.NAME] with a url".to_string()
                    }
                    None => format!("endpoints of this environment: {}", endpoints.join(", ")),
                };
                d.push(src.diag(n.span.clone(), format!("[health.trigger] notifies `{}`, which is not an endpoint of this environment", n.value), Some(hint)));
            }
        }
        d
    }
}

/// Parse the `[health]` table of an environment file, reporting every problem into `d`.
/// `zones` are the environment's zones (already checked); the region is theirs.
pub fn parse(
    src: &SourceFile,
    v: &SVal,
    zones: &[Zone],
    d: &mut Diagnostics,
) -> Option<HealthConfig> {
    let before = d.len();
    let mut t = TableReader::new(src, v, "[health]", d)?;
    let mut cfg = HealthConfig::default();
    let given = parse_rules(src, &mut t, &mut cfg, d);
    let probes = t.get("probes");
    parse_probes(src, v, probes, zones, &mut cfg, d);
    if let Some(tv) = t.get("trigger") {
        cfg.trigger = parse_trigger(src, tv, Table::Zone, d).map(|(t, _)| t);
    }
    if let Some(tv) = t.get("region_trigger") {
        cfg.region_trigger = parse_trigger(src, tv, Table::Region, d).map(|(t, _)| t);
    }
    if let Some(tv) = t.get("failback") {
        cfg.failback =
            parse_trigger(src, tv, Table::Failback, d).map(|(t, after)| FailbackConfig {
                runbook: t.runbook,
                at: t.at,
                zone_param: t.zone_param,
                params: t.params,
                policy: t.policy,
                after: after.unwrap_or(DEFAULT_FAILBACK_AFTER),
            });
    }
    t.finish(HEALTH_KEYS, d);

    // Cross-checks, once every probe is known.
    check_quorums(src, v, &cfg, &given, d);
    check_round_length(src, v, &cfg, &given, d);
    check_route53_rate(src, v, &cfg, &given, d);
    check_auto_policy(src, v, &cfg, d);
    if d.len() > before {
        return None;
    }
    Some(cfg)
}

/// The rules as written, for the cross-checks to point at.
struct GivenRules {
    interval: Option<Spanned<Duration>>,
    quorum: Option<Spanned<i64>>,
    region_quorum: Option<Spanned<i64>>,
}

/// Interval, timeout, attempts, quorums and hysteresis of `[health]` into `cfg`.
fn parse_rules(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    cfg: &mut HealthConfig,
    d: &mut Diagnostics,
) -> GivenRules {
    let interval = t.duration("interval", d);
    let timeout = t.duration("timeout", d);
    if let Some(i) = &interval {
        if i.value.is_zero() {
            d.push(src.diag(
                i.span.clone(),
                "`interval` in [health] must be longer than zero",
                Some("e.g. interval = \"10s\"".into()),
            ));
        }
        cfg.interval = i.value;
    }
    if let Some(to) = &timeout {
        if to.value.is_zero() {
            d.push(src.diag(
                to.span.clone(),
                "`timeout` in [health] must be longer than zero",
                Some("e.g. timeout = \"2s\"".into()),
            ));
        }
        cfg.timeout = to.value;
    }
    if let Some(a) = t.int("attempts", 1, 5, d) {
        cfg.attempts = a.value as u32;
    }
    let quorum = if t.has("quorum") {
        t.int("quorum", 1, 1000, d)
    } else {
        d.push(src.diag(
            t.span.clone(),
            "[health] is missing the required key `quorum`",
            Some("add e.g. `quorum = 2`: a round is bad for a zone when at least this many of its probes fail".into()),
        ));
        None
    };
    if let Some(q) = &quorum {
        cfg.quorum = q.value as u32;
    }
    let region_quorum = t.int("region_quorum", 1, 1000, d);
    cfg.region_quorum = region_quorum
        .as_ref()
        .map(|q| q.value as u32)
        .unwrap_or(cfg.quorum);
    if let Some(m) = t.int("unhealthy_after", 1, 1000, d) {
        cfg.unhealthy_after = m.value as u32;
    }
    if let Some(r) = t.int("healthy_after", 1, 1000, d) {
        cfg.healthy_after = r.value as u32;
    }
    GivenRules {
        interval,
        quorum,
        region_quorum,
    }
}

/// `[[health.probes]]` into `cfg.probes`; `v` is the `[health]` table.
fn parse_probes(
    src: &SourceFile,
    v: &SVal,
    probes: Option<&SVal>,
    zones: &[Zone],
    cfg: &mut HealthConfig,
    d: &mut Diagnostics,
) {
    let region = zones.first().map(|z| z.region());
    let mut names: BTreeMap<String, std::ops::Range<usize>> = BTreeMap::new();
    match probes {
        Some(SVal {
            kind: SKind::Array(items),
            ..
        }) => {
            for (i, item) in items.iter().enumerate() {
                // Names first, so a duplicate is reported even when the probe has other problems.
                check_probe_name(src, item, &mut names, d);
                if let Some(p) = parse_probe(src, i, item, zones, region.as_ref(), cfg, d) {
                    cfg.probes.push(p);
                }
            }
            if items.is_empty() {
                d.push(src.diag(
                    v.span.clone(),
                    "[health] defines no probes",
                    Some(
                        "add [[health.probes]] tables, each with a name, a zone and a kind".into(),
                    ),
                ));
            }
        }
        Some(other) => d.push(src.diag(
            other.span.clone(),
            format!(
                "`probes` in [health] must be an array of tables ([[health.probes]]), found {}",
                other.type_name()
            ),
            None,
        )),
        None => d.push(src.diag(
            v.span.clone(),
            "[health] defines no probes",
            Some("add [[health.probes]] tables, each with a name, a zone and a kind".into()),
        )),
    }
}

/// A probe's name must not be one of the `names` seen before it.
fn check_probe_name(
    src: &SourceFile,
    item: &SVal,
    names: &mut BTreeMap<String, std::ops::Range<usize>>,
    d: &mut Diagnostics,
) {
    let SKind::Table(entries) = &item.kind else {
        return;
    };
    if let Some((
        _,
        _,
        SVal {
            kind: SKind::Str(name),
            span,
        },
    )) = entries.iter().find(|(k, _, _)| k == "name")
    {
        if let Some(first) = names.get(name) {
            let (line, _) = src.line_col(first.start);
            d.push(src.diag(span.clone(), format!("probe name `{name}` is used twice (first on line {line})"), Some("give every probe its own name; reasons and reports refer to probes by name".into())));
        } else {
            names.insert(name.clone(), span.clone());
        }
    }
}

/// Every probed target needs at least K probes, or it could never be declared unhealthy.
fn check_quorums(
    src: &SourceFile,
    v: &SVal,
    cfg: &HealthConfig,
    given: &GivenRules,
    d: &mut Diagnostics,
) {
    let (quorum, region_quorum) = (&given.quorum, &given.region_quorum);
    for (target, n) in &cfg.probe_counts() {
        let k = cfg.quorum_for(target);
        if k > *n {
            let (key, span) = match target {
                Target::Zone(_) => ("quorum", quorum.as_ref().map(|q| q.span.clone())),
                Target::Region(_) => (
                    "region_quorum",
                    region_quorum
                        .as_ref()
                        .map(|q| q.span.clone())
                        .or(quorum.as_ref().map(|q| q.span.clone())),
                ),
            };
            let span = span.unwrap_or(v.span.clone());
            let what = match target {
                Target::Zone(z) => format!("zone `{z}`"),
                Target::Region(r) => format!("region `{r}`"),
            };
            d.push(src.diag(
                span,
                format!("`{key}` is {k} but {what} has only {n} probe(s), so it could never be declared unhealthy"),
                Some(format!("add probes for {what}, or lower `{key}` to at most {n}")),
            ));
        }
    }
}

/// A round must fit in the interval, or rounds would overlap.
fn check_round_length(
    src: &SourceFile,
    v: &SVal,
    cfg: &HealthConfig,
    given: &GivenRules,
    d: &mut Diagnostics,
) {
    let worst = cfg.worst_round();
    if !cfg.interval.is_zero() && worst > cfg.interval {
        let slow = cfg
            .probes
            .iter()
            .rev()
            .max_by_key(|p| {
                if p.check.retries_within_round() {
                    p.timeout * cfg.attempts
                } else {
                    p.timeout
                }
            })
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let span = given
            .interval
            .as_ref()
            .map(|i| i.span.clone())
            .unwrap_or(v.span.clone());
        d.push(src.diag(
            span,
            format!(
                "a round can take {} (probe `{slow}`: timeout x attempts) but rounds start every {}, so they would overlap",
                humantime::format_duration(worst),
                humantime::format_duration(cfg.interval)
            ),
            Some("raise `interval`, or lower `timeout` or `attempts`".into()),
        ));
    }
}

/// Route 53 health check probes must stay within GetHealthCheckStatus's rate limit.
fn check_route53_rate(
    src: &SourceFile,
    v: &SVal,
    cfg: &HealthConfig,
    given: &GivenRules,
    d: &mut Diagnostics,
) {
    let r53 = cfg
        .probes
        .iter()
        .filter(|p| matches!(p.check, Check::Route53HealthCheck { .. }))
        .count();
    if r53 > 0 && !cfg.interval.is_zero() {
        let rate = r53 as f64 / cfg.interval.as_secs_f64();
        if rate > ROUTE53_STATUS_CALLS_PER_SECOND {
            let span = given
                .interval
                .as_ref()
                .map(|i| i.span.clone())
                .unwrap_or(v.span.clone());
            let min = Duration::from_secs(r53 as u64);
            d.push(src.diag(
                span,
                format!("{r53} route53_health_check probe(s) every {} would call GetHealthCheckStatus {rate:.1} times a second; Route 53 allows 1 a second per account (burst 4)", humantime::format_duration(cfg.interval)),
                Some(format!("raise `interval` to at least {}, or probe the endpoints directly with http probes", humantime::format_duration(min))),
            ));
        }
    }
}

/// Policy `auto` needs probes in at least two zones, to tell a zone from the observer.
fn check_auto_policy(src: &SourceFile, v: &SVal, cfg: &HealthConfig, d: &mut Diagnostics) {
    for tr in [&cfg.trigger, &cfg.region_trigger].into_iter().flatten() {
        let zones_probed = cfg
            .probe_counts()
            .keys()
            .filter(|t| matches!(t, Target::Zone(_)))
            .count();
        if tr.policy == Policy::Auto && zones_probed < 2 {
            d.push(src.diag(
                v.span.clone(),
                format!("policy `auto` needs probes in at least two zones; {zones_probed} zone(s) have probes"),
                Some("with one probed zone, a failure of the observer's own network looks like a zone failure; probe every zone, or use policy = \"approval\"".into()),
            ));
        }
    }
}

/// The three tables that start a runbook from what the probes say.
#[derive(Clone, Copy)]
enum Table {
    Zone,
    Region,
    Failback,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Zone => "[health.trigger]",
            Table::Region => "[health.region_trigger]",
            Table::Failback => "[health.failback]",
        }
    }

    /// The key naming the runbook parameter that receives the target, and an example.
    fn target_key(self) -> (&'static str, &'static str) {
        match self {
            Table::Zone => ("zone_param", "failed_az"),
            Table::Region => ("region_param", "failed_region"),
            Table::Failback => ("zone_param", "zone"),
        }
    }

    fn keys(self) -> Vec<&'static str> {
        let mut k = vec!["runbook", self.target_key().0, "params", "policy"];
        match self {
            Table::Zone | Table::Region => k.extend(["reason_param", "cooldown", "notify"]),
            Table::Failback => k.push("after"),
        }
        k
    }
}

/// One of the trigger tables; for `[health.failback]`, its `after` too.
fn parse_trigger(
    src: &SourceFile,
    v: &SVal,
    table: Table,
    d: &mut Diagnostics,
) -> Option<(TriggerConfig, Option<Duration>)> {
    let what = table.name();
    let mut t = TableReader::new(src, v, what, d)?;
    let example = match table {
        Table::Zone => "runbooks/az-evacuation.toml",
        Table::Region => "runbooks/region-evacuation.toml",
        Table::Failback => "runbooks/az-failback.toml",
    };
    let runbook = t.req_str(
        "runbook",
        &format!("the runbook to start, e.g. runbook = \"{example}\""),
        d,
    );
    let (key, ex) = table.target_key();
    let zone_param = t.req_str(
        key,
        &format!(
            "the runbook parameter that receives the {}, e.g. {key} = \"{ex}\"",
            if matches!(table, Table::Region) {
                "region"
            } else {
                "zone"
            }
        ),
        d,
    );
    let failback = matches!(table, Table::Failback);
    // Keys another table has are left unread, so `finish` reports them as unknown here.
    let reason_param = (!failback)
        .then(|| t.str("reason_param", d).map(|s| s.value))
        .flatten();
    let params = match t.get("params") {
        Some(pv) => parse_params(src, pv, what, d),
        None => BTreeMap::new(),
    };
    let policy = t.req_str("policy", &format!("one of: {}", POLICIES.join(", ")), d);
    let cooldown = (!failback)
        .then(|| t.duration("cooldown", d).map(|c| c.value))
        .flatten()
        .unwrap_or(DEFAULT_COOLDOWN);
    let after = failback
        .then(|| t.duration("after", d).map(|c| c.value))
        .flatten();
    let notify = (!failback).then(|| t.str("notify", d)).flatten();
    t.finish(&table.keys(), d);
    let policy = match policy {
        Some(p) => match p.value.as_str() {
            "auto" => Some(Policy::Auto),
            "approval" => Some(Policy::Approval),
            "notify" => Some(Policy::Notify),
            other => {
                let hint = match did_you_mean(other, POLICIES.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("one of: {} (auto starts the runbook; approval starts it paused at an approval gate; notify only notifies)", POLICIES.join(", ")),
                };
                d.push(src.diag(
                    p.span,
                    format!("unknown trigger policy `{other}`"),
                    Some(hint),
                ));
                None
            }
        },
        None => None,
    };
    if let Some(s) = &zone_param {
        if s.value.trim().is_empty() {
            d.push(src.diag(
                s.span.clone(),
                format!("`{key}` in {what} is empty"),
                Some(format!("name the runbook parameter, e.g. \"{ex}\"")),
            ));
        }
        if params.contains_key(&s.value) {
            d.push(src.diag(
                s.span.clone(),
                format!(
                    "`params` of {what} sets `{}`, which `{key}` receives",
                    s.value
                ),
                Some(format!(
                    "remove `{}` from `params`: the watcher passes the {}",
                    s.value,
                    if matches!(table, Table::Region) {
                        "region"
                    } else {
                        "zone"
                    }
                )),
            ));
        }
    }
    Some((
        TriggerConfig {
            at: src.place(runbook.as_ref()?.span.clone()),
            runbook: runbook?.value,
            zone_param: zone_param?.value,
            params,
            reason_param,
            policy: policy?,
            cooldown,
            notify,
        },
        after,
    ))
}

/// `params = { shed_load = "true" }`: strings only (booleans and numbers are refused with the
/// quoted form to write, as runbook parameters are strings on the command line too).
fn parse_params(
    src: &SourceFile,
    v: &SVal,
    what: &str,
    d: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let SKind::Table(items) = &v.kind else {
        d.push(src.diag(
            v.span.clone(),
            format!("`params` of {what} must be a table of strings"),
            Some("e.g. params = { shed_load = \"true\" }".into()),
        ));
        return out;
    };
    for (k, _, val) in items {
        if let Some(s) = tomlx::expect_str(src, val, &format!("parameter `{k}` of {what}"), d) {
            out.insert(k.clone(), s.value);
        }
    }
    out
}

/// Parse one `[[health.probes]]` table.
fn parse_probe(
    src: &SourceFile,
    i: usize,
    v: &SVal,
    zones: &[Zone],
    region: Option<&Region>,
    cfg: &HealthConfig,
    d: &mut Diagnostics,
) -> Option<Probe> {
    let before = d.len();
    let mut t = TableReader::new(src, v, format!("probe #{}", i + 1), d)?;
    let name = t.req_str(
        "name",
        "give the probe a name used in reports, e.g. name = \"api-us-west-2a\"",
        d,
    );
    if let Some(n) = &name {
        t.what = format!("probe `{}`", n.value);
    }
    let target = probe_target(src, &mut t, zones, region, d);
    let timeout_v = t.duration("timeout", d);
    if let Some(to) = &timeout_v {
        if to.value.is_zero() {
            d.push(src.diag(
                to.span.clone(),
                format!("`timeout` in {} must be longer than zero", t.what),
                None,
            ));
        }
    }
    let timeout = timeout_v.as_ref().map(|s| s.value).unwrap_or(cfg.timeout);
    let kind = t.req_str("kind", &format!("one of: {}", PROBE_KINDS.join(", ")), d);
    let mut known: Vec<&str> = COMMON_PROBE_KEYS.to_vec();
    let check = match &kind {
        Some(k) => probe_check(src, &mut t, k, timeout, &mut known, d),
        None => None,
    };
    t.finish(&known, d);
    if d.len() > before {
        return None;
    }
    let name = name?;
    Some(Probe {
        name: name.value,
        target: target?,
        timeout,
        check: check?,
    })
}

/// What a probe speaks for: `zone` (one of `zones`) or `region` (the environment's).
fn probe_target(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    zones: &[Zone],
    region: Option<&Region>,
    d: &mut Diagnostics,
) -> Option<Target> {
    let what = t.what.clone();
    let zone = t.str("zone", d);
    let reg = t.str("region", d);
    match (zone, reg) {
        (Some(_), Some(r)) => {
            d.push(src.diag(
                r.span,
                format!("{what} has both `zone` and `region`"),
                Some(
                    "a probe speaks for one zone or for the whole region: keep one of them".into(),
                ),
            ));
            None
        }
        (Some(z), None) => zone_target(src, &what, z, zones, d),
        (None, Some(r)) => match region {
            Some(reg) if reg.as_str() != r.value => {
                d.push(src.diag(
                    r.span,
                    format!(
                        "{what}: region `{}` is not this environment's region",
                        r.value
                    ),
                    Some(format!("this environment is in `{reg}`")),
                ));
                None
            }
            _ => Some(Target::Region(Region::new(r.value))),
        },
        (None, None) => {
            let example = zones.first().map(|z| z.as_str()).unwrap_or("us-west-2a");
            d.push(src.diag(
                t.span.clone(),
                format!("{what} does not say what it speaks for"),
                Some(format!(
                    "add `zone = \"{example}\"` (or `region = \"...\"` for a regional probe)"
                )),
            ));
            None
        }
    }
}

/// The zone a probe speaks for, which must be one of `zones`.
fn zone_target(
    src: &SourceFile,
    what: &str,
    z: Spanned<String>,
    zones: &[Zone],
    d: &mut Diagnostics,
) -> Option<Target> {
    let zone = Zone::new(z.value.clone());
    if zones.contains(&zone) {
        return Some(Target::Zone(zone));
    }
    let list = zones
        .iter()
        .map(|z| z.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match did_you_mean(&z.value, zones.iter().map(|z| z.as_str())) {
        Some(s) => format!("did you mean `{s}`? zones of this environment: {list}"),
        None => format!("zones of this environment: {list}"),
    };
    d.push(src.diag(
        z.span,
        format!("{what}: `{}` is not a zone of this environment", z.value),
        Some(hint),
    ));
    None
}

/// The check of a probe of kind `kind`, adding the kind's keys to `known`.
fn probe_check(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    kind: &Spanned<String>,
    timeout: Duration,
    known: &mut Vec<&str>,
    d: &mut Diagnostics,
) -> Option<Check> {
    match kind.value.as_str() {
        "http" => {
            known.extend([
                "url",
                "method",
                "expect_status",
                "latency_budget",
                "body_contains",
            ]);
            http_check(src, t, timeout, d)
        }
        "tcp" => {
            known.push("address");
            tcp_check(src, t, d)
        }
        "cloudwatch_alarm" => {
            known.push("alarm");
            let alarm = t.req_str(
                "alarm",
                "the alarm's name, e.g. alarm = \"api-5xx-us-west-2a\"",
                d,
            );
            alarm.map(|a| Check::CloudwatchAlarm { alarm: a.value })
        }
        "rds" => {
            known.extend(["instances", "healthy_statuses"]);
            rds_check(src, t, d)
        }
        "route53_health_check" => {
            known.push("health_check_id");
            let id = t.req_str(
                "health_check_id",
                "the health check's id, as in the Route 53 console",
                d,
            );
            id.map(|i| Check::Route53HealthCheck {
                health_check_id: i.value.trim().to_string(),
            })
        }
        other => {
            let hint = match did_you_mean(other, PROBE_KINDS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("one of: {}", PROBE_KINDS.join(", ")),
            };
            d.push(src.diag(
                kind.span.clone(),
                format!("{}: unknown probe kind `{other}`", t.what),
                Some(hint),
            ));
            // Read the remaining keys so that only the kind is reported.
            let _ = t.rest();
            None
        }
    }
}

/// An `http` probe: a read-only request, its accepted statuses, latency budget and body.
fn http_check(
    src: &SourceFile,
    t: &mut TableReader<'_>,
    timeout: Duration,
    d: &mut Diagnostics,
) -> Option<Check> {
    let what = t.what.clone();
    let url = t.req_str(
        "url",
        "the URL to GET, e.g. url = \"https://api-a.internal/healthz\"",
        d,
    );
    if let Some(u) = &url {
        if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
            d.push(src.diag(
                u.span.clone(),
                format!(
                    "{what}: url `{}` must start with http:// or https://",
                    u.value
                ),
                None,
            ));
        }
    }
    let method = t
        .str("method", d)
        .map(|m| (m.value.to_ascii_uppercase(), m.span));
    if let Some((m, span)) = &method {
        if m != "GET" && m != "HEAD" {
            d.push(src.diag(
                span.clone(),
                format!("{what}: method `{m}` is not allowed in a probe"),
                Some("probes only read: use GET or HEAD".into()),
            ));
        }
    }
    let expect_status = match t.get("expect_status") {
        None => vec![],
        Some(sv) => statuses(src, sv, &what, d),
    };
    let latency_budget = t.duration("latency_budget", d);
    if let Some(b) = &latency_budget {
        if b.value > timeout {
            d.push(src.diag(
                b.span.clone(),
                format!("{what}: latency_budget {} is longer than the probe's timeout {}", humantime::format_duration(b.value), humantime::format_duration(timeout)),
                Some("a slower answer times out first; lower latency_budget or raise the probe's `timeout`".into()),
            ));
        }
    }
    let body_contains = t.str("body_contains", d).map(|s| s.value);
    url.map(|u| Check::Http {
        url: u.value,
        method: method.map(|m| m.0).unwrap_or_else(|| "GET".into()),
        expect_status,
        latency_budget: latency_budget.map(|b| b.value),
        body_contains,
    })
}

/// A `tcp` probe: `address` is host:port.
fn tcp_check(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> Option<Check> {
    let address = t.req_str(
        "address",
        "host and port, e.g. address = \"orders-db-a.internal:5432\"",
        d,
    );
    if let Some(a) = &address {
        let ok = a
            .value
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            d.push(src.diag(
                a.span.clone(),
                format!("{}: address `{}` is not host:port", t.what, a.value),
                Some("e.g. \"orders-db-a.internal:5432\" or \"[::1]:5432\"".into()),
            ));
        }
    }
    address.map(|a| Check::Tcp { address: a.value })
}

/// An `rds` probe: the instances to watch and the statuses that count as healthy.
fn rds_check(src: &SourceFile, t: &mut TableReader<'_>, d: &mut Diagnostics) -> Option<Check> {
    let what = t.what.clone();
    let instances = if t.has("instances") {
        t.str_list("instances", d).unwrap_or_default()
    } else {
        d.push(src.diag(t.span.clone(), format!("{what} is missing the required key `instances`"), Some("list the DB instances to watch, e.g. instances = [\"orders-db-1\", \"orders-db-2\"]; those in the probe's zone are checked".into())));
        vec![]
    };
    if instances.is_empty() && t.has("instances") {
        d.push(src.diag(
            t.span.clone(),
            format!("{what} lists no instances"),
            Some("add e.g. instances = [\"orders-db-1\"]".into()),
        ));
    }
    let healthy = t
        .str_list("healthy_statuses", d)
        .map(|l| l.into_iter().map(|s| s.value).collect::<Vec<_>>())
        .unwrap_or_else(|| vec!["available".to_string()]);
    if healthy.is_empty() {
        d.push(src.diag(t.span.clone(), format!("{what}: `healthy_statuses` is empty, so every instance would fail"), Some("leave it out (default [\"available\"]) or list the statuses that count as healthy".into())));
    }
    (!instances.is_empty()).then(|| Check::Rds {
        instances: instances
            .into_iter()
            .map(|s| InstanceId::new(s.value))
            .collect(),
        healthy_statuses: healthy,
    })
}

fn statuses(src: &SourceFile, v: &SVal, what: &str, d: &mut Diagnostics) -> Vec<u16> {
    let label = format!("`expect_status` in {what}");
    let items: Vec<&SVal> = match &v.kind {
        SKind::Array(items) => items.iter().collect(),
        _ => vec![v],
    };
    items
        .into_iter()
        .filter_map(|i| tomlx::expect_int(src, i, &label, 100, 599, d))
        .map(|s| s.value as u16)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tomlx::parse_document;

    const ZONES: &[&str] = &["us-west-2a", "us-west-2b", "us-west-2c"];

    fn parse_text(text: &str) -> Result<HealthConfig, Diagnostics> {
        let src = SourceFile::new("config/test.toml", text);
        let doc = parse_document(&src).expect("valid TOML");
        let SKind::Table(entries) = &doc.kind else {
            panic!("document is a table")
        };
        let health = &entries
            .iter()
            .find(|(k, _, _)| k == "health")
            .expect("[health]")
            .2;
        let zones: Vec<Zone> = ZONES.iter().map(|z| Zone::from(*z)).collect();
        let mut d = Diagnostics::default();
        match parse(&src, health, &zones, &mut d) {
            Some(c) if d.is_empty() => Ok(c),
            _ => Err(d.sorted()),
        }
    }

    fn probes_for_every_zone() -> String {
        let mut s = String::new();
        for z in ZONES {
            for (n, kind) in [("api", "http"), ("db", "tcp")] {
                s.push_str(&format!(
                    "\n[[health.probes]]\nname = \"{n}-{z}\"\nzone = \"{z}\"\nkind = \"{kind}\"\n"
                ));
                if kind == "http" {
                    s.push_str(&format!("url = \"http://{z}.example/healthz\"\n"));
                } else {
                    s.push_str(&format!("address = \"db-{z}.example:5432\"\n"));
                }
            }
        }
        s
    }

    #[test]
    fn a_complete_section_parses_with_defaults_filled_in() {
        let text = format!(
            "[health]\ninterval = \"5s\"\nquorum = 2\nregion_quorum = 1\nunhealthy_after = 4\n{}\n[[health.probes]]\nname = \"alarm-a\"\nzone = \"us-west-2a\"\nkind = \"cloudwatch_alarm\"\nalarm = \"api-5xx-a\"\n\n[[health.probes]]\nname = \"regional\"\nregion = \"us-west-2\"\nkind = \"http\"\nurl = \"https://api.example/healthz\"\nexpect_status = [200, 204]\nlatency_budget = \"1s\"\nbody_contains = \"ok\"\ntimeout = \"1500ms\"\n\n[health.trigger]\nrunbook = \"runbooks/az-evacuation.toml\"\nzone_param = \"failed_az\"\npolicy = \"approval\"\n",
            probes_for_every_zone()
        );
        let cfg = parse_text(&text).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(cfg.interval, Duration::from_secs(5));
        assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
        assert_eq!(cfg.attempts, DEFAULT_ATTEMPTS);
        assert_eq!(
            (
                cfg.quorum,
                cfg.region_quorum,
                cfg.unhealthy_after,
                cfg.healthy_after
            ),
            (2, 1, 4, DEFAULT_HEALTHY_AFTER)
        );
        assert_eq!(cfg.probes.len(), 8);
        let counts = cfg.probe_counts();
        assert_eq!(counts[&Target::Zone(Zone::from("us-west-2a"))], 3);
        assert_eq!(counts[&Target::Region(Region::from("us-west-2"))], 1);
        let regional = cfg.probes.iter().find(|p| p.name == "regional").unwrap();
        assert_eq!(regional.timeout, Duration::from_millis(1500));
        assert_eq!(
            regional.check,
            Check::Http {
                url: "https://api.example/healthz".into(),
                method: "GET".into(),
                expect_status: vec![200, 204],
                latency_budget: Some(Duration::from_secs(1)),
                body_contains: Some("ok".into()),
            }
        );
        let tr = cfg.trigger.unwrap();
        assert_eq!(
            (tr.policy, tr.cooldown, tr.zone_param.as_str()),
            (Policy::Approval, DEFAULT_COOLDOWN, "failed_az")
        );
    }

    #[test]
    fn region_quorum_above_its_probes_is_reported() {
        let text = format!("[health]\nquorum = 2\n{}\n[[health.probes]]\nname = \"regional\"\nregion = \"us-west-2\"\nkind = \"tcp\"\naddress = \"api.example:443\"\n", probes_for_every_zone());
        let d = parse_text(&text).unwrap_err();
        assert_eq!(d.len(), 1, "{d}");
        assert_eq!(d.0[0].message, "`region_quorum` is 2 but region `us-west-2` has only 1 probe(s), so it could never be declared unhealthy");
    }

    #[test]
    fn every_problem_is_reported_with_its_position_and_a_hint() {
        let text = "\
[health]
interval = \"1s\"
timeout = \"800ms\"
quorum = 2
unhealthy_afterr = 3

[[health.probes]]
name = \"api-a\"
zone = \"us-west-2d\"
kind = \"http\"
url = \"ftp://x\"

[[health.probes]]
name = \"api-b\"
zone = \"us-west-2b\"
kind = \"htp\"

[[health.probes]]
name = \"db-b\"
zone = \"us-west-2b\"
kind = \"tcp\"
address = \"db-b\"

[[health.probes]]
name = \"db-b\"
zone = \"us-west-2c\"
kind = \"http\"
url = \"http://c/healthz\"
method = \"POST\"
latency_budget = \"2s\"

[health.trigger]
runbook = \"runbooks/az-evacuation.toml\"
zone_param = \"failed_az\"
policy = \"aproval\"
";
        let d = parse_text(text).unwrap_err();
        let got: Vec<String> =
            d.0.iter()
                .map(|x| {
                    format!(
                        "{}:{}: {} | {}",
                        x.line,
                        x.col,
                        x.message,
                        x.hint.clone().unwrap_or_default()
                    )
                })
                .collect();
        let want = [
            "5:1: unknown key `unhealthy_afterr` in [health] | did you mean `unhealthy_after`?",
            "9:8: probe `api-a`: `us-west-2d` is not a zone of this environment | did you mean `us-west-2a`? zones of this environment: us-west-2a, us-west-2b, us-west-2c",
            "11:7: probe `api-a`: url `ftp://x` must start with http:// or https:// | ",
            "16:8: probe `api-b`: unknown probe kind `htp` | did you mean `http`?",
            "22:11: probe `db-b`: address `db-b` is not host:port | e.g. \"orders-db-a.internal:5432\" or \"[::1]:5432\"",
            "25:8: probe name `db-b` is used twice (first on line 19) | give every probe its own name; reasons and reports refer to probes by name",
            "29:10: probe `db-b`: method `POST` is not allowed in a probe | probes only read: use GET or HEAD",
            "30:18: probe `db-b`: latency_budget 2s is longer than the probe's timeout 800ms | a slower answer times out first; lower latency_budget or raise the probe's `timeout`",
            "35:10: unknown trigger policy `aproval` | did you mean `approval`?",
        ];
        assert_eq!(got, want, "\n{}", got.join("\n"));
    }

    #[test]
    fn region_trigger_failback_and_params() {
        let base = format!("[health]\nquorum = 1\n{}", probes_for_every_zone());
        let ok = format!("{base}\n[health.trigger]\nrunbook = \"runbooks/az-evacuation.toml\"\nzone_param = \"failed_az\"\npolicy = \"auto\"\nparams = {{ shed_load = \"true\" }}\n\n[health.region_trigger]\nrunbook = \"runbooks/region-evacuation.toml\"\nregion_param = \"failed_region\"\npolicy = \"approval\"\ncooldown = \"2h\"\n\n[health.failback]\nrunbook = \"runbooks/az-failback.toml\"\nzone_param = \"zone\"\npolicy = \"approval\"\nafter = \"20m\"\n");
        let cfg = parse_text(&ok).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(cfg.trigger.unwrap().params["shed_load"], "true");
        let rt = cfg.region_trigger.unwrap();
        assert_eq!(
            (rt.zone_param.as_str(), rt.policy, rt.cooldown),
            ("failed_region", Policy::Approval, Duration::from_secs(7200))
        );
        let fb = cfg.failback.unwrap();
        assert_eq!(
            (fb.zone_param.as_str(), fb.after),
            ("zone", Duration::from_secs(1200))
        );
        // Wrong keys for the table, a non-string param, the target param set twice.
        let bad = format!("{base}\n[health.region_trigger]\nrunbook = \"r.toml\"\nzone_param = \"failed_region\"\npolicy = \"auto\"\n\n[health.failback]\nrunbook = \"f.toml\"\nzone_param = \"zone\"\npolicy = \"auto\"\ncooldown = \"1h\"\nparams = {{ zone = \"x\", restore_traffic = true }}\n");
        let d = parse_text(&bad).unwrap_err();
        let got: Vec<String> =
            d.0.iter()
                .map(|x| format!("{} | {}", x.message, x.hint.clone().unwrap_or_default()))
                .collect();
        let text = got.join("\n");
        assert!(
            text.contains("[health.region_trigger] is missing the required key `region_param`"),
            "{text}"
        );
        assert!(
            text.contains("unknown key `zone_param` in [health.region_trigger]"),
            "{text}"
        );
        assert!(
            text.contains("unknown key `cooldown` in [health.failback]"),
            "{text}"
        );
        assert!(text.contains("parameter `restore_traffic` of [health.failback] must be a string, found a boolean"), "{text}");
        assert!(
            text.contains("`params` of [health.failback] sets `zone`, which `zone_param` receives"),
            "{text}"
        );
    }

    #[test]
    fn quorum_larger_than_a_zones_probes_is_reported_at_quorum() {
        let text = "[health]\nquorum = 2\n\n[[health.probes]]\nname = \"a1\"\nzone = \"us-west-2a\"\nkind = \"tcp\"\naddress = \"a:1\"\n\n[[health.probes]]\nname = \"a2\"\nzone = \"us-west-2a\"\nkind = \"tcp\"\naddress = \"a:2\"\n\n[[health.probes]]\nname = \"b1\"\nzone = \"us-west-2b\"\nkind = \"tcp\"\naddress = \"b:1\"\n";
        let d = parse_text(text).unwrap_err();
        assert_eq!(d.len(), 1, "{d}");
        assert_eq!((d.0[0].line, d.0[0].col), (2, 10));
        assert_eq!(d.0[0].message, "`quorum` is 2 but zone `us-west-2b` has only 1 probe(s), so it could never be declared unhealthy");
        assert_eq!(
            d.0[0].hint.as_deref(),
            Some("add probes for zone `us-west-2b`, or lower `quorum` to at most 1")
        );
    }

    #[test]
    fn overlapping_rounds_and_route53_rate_are_refused() {
        let mut text = format!(
            "[health]\ninterval = \"1s\"\ntimeout = \"600ms\"\nquorum = 1\n{}",
            probes_for_every_zone()
        );
        for z in ZONES {
            text.push_str(&format!("\n[[health.probes]]\nname = \"hc-{z}\"\nzone = \"{z}\"\nkind = \"route53_health_check\"\nhealth_check_id = \"hc-{z}\"\n"));
        }
        let d = parse_text(&text).unwrap_err();
        let msgs: Vec<&str> = d.0.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "a round can take 1s 200ms (probe `api-us-west-2a`: timeout x attempts) but rounds start every 1s, so they would overlap",
                "3 route53_health_check probe(s) every 1s would call GetHealthCheckStatus 3.0 times a second; Route 53 allows 1 a second per account (burst 4)",
            ]
        );
        assert_eq!(
            d.0[1].hint.as_deref(),
            Some(
                "raise `interval` to at least 3s, or probe the endpoints directly with http probes"
            )
        );
    }

    #[test]
    fn missing_keys_are_reported() {
        let text = "[health]\n\n[[health.probes]]\nkind = \"rds\"\n\n[health.trigger]\nrunbook = \"r.toml\"\n";
        let d = parse_text(text).unwrap_err();
        let msgs: Vec<&str> = d.0.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "[health] is missing the required key `quorum`",
                "probe #1 is missing the required key `name`",
                "probe #1 does not say what it speaks for",
                "probe #1 is missing the required key `instances`",
                "[health.trigger] is missing the required key `zone_param`",
                "[health.trigger] is missing the required key `policy`",
            ]
        );
    }

    #[test]
    fn auto_policy_needs_two_probed_zones() {
        let text = "[health]\nquorum = 1\n\n[[health.probes]]\nname = \"a1\"\nzone = \"us-west-2a\"\nkind = \"tcp\"\naddress = \"a:1\"\n\n[health.trigger]\nrunbook = \"r.toml\"\nzone_param = \"failed_az\"\npolicy = \"auto\"\n";
        let d = parse_text(text).unwrap_err();
        assert_eq!(
            d.0[0].message,
            "policy `auto` needs probes in at least two zones; 1 zone(s) have probes"
        );
        let ok = text.replace("\"auto\"", "\"approval\"");
        assert!(parse_text(&ok).is_ok());
    }

    #[test]
    fn notify_endpoint_must_exist() {
        let text = format!("[health]\nquorum = 1\n{}\n[health.trigger]\nrunbook = \"r.toml\"\nzone_param = \"failed_az\"\npolicy = \"notify\"\nnotify = \"chatt\"\n", probes_for_every_zone());
        let cfg = parse_text(&text).unwrap();
        let src = SourceFile::new("config/test.toml", text.clone());
        let d = cfg.check_endpoints(&src, &["chat", "status_page"]);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d.0[0].message,
            "[health.trigger] notifies `chatt`, which is not an endpoint of this environment"
        );
        assert_eq!(d.0[0].hint.as_deref(), Some("did you mean `chat`?"));
        assert!(cfg.check_endpoints(&src, &["chatt"]).is_empty());
    }
}
