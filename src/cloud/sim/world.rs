//! The state of the simulated world and its rules: what each API call does and answers, what
//! happens on its own as time passes (failovers complete, snapshots become available, changes
//! go INSYNC, faults begin and end), quotas as token buckets in virtual time.
//!
//! The world is advanced lazily: before anything reads or changes it, `advance_to(now)` plays
//! every scheduled event due by then, in time order (ties in scheduling order). It holds no
//! clock and no lock of its own; `SimCloud` owns it behind a mutex that is never held across
//! an await.

use super::faults::{Fault, FaultKind, OpMatch, Service};
use super::stale::StaleReads;
use super::timeline::{ApiCall, Effect, Event, FaultPhase, TimelineEntry};
use super::topology::{MemberSpec, Quotas, RecordSpecSim, Span, Topology};
use crate::cloud::{
    ChangeAction, ChangeInfo, ChangeStatus, CloudError, ClusterMember, ClusterState, DbStatus,
    ErrorKind, HostedZone, InstanceState, RecordChange, RecordKey, RecordSet, SnapshotKind,
    SnapshotState,
};
use crate::types::{ClusterId, InstanceId, Region, Zone};
use crate::world::SnapshotKindKey;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

// Re-exported: the report and the ports format virtual durations as `world::fmt_dur`.
pub use super::time::fmt_dur;

pub use super::history::Placements;
use super::history::{Delta, History};

/// One call as the port describes it before the world sees it.
#[derive(Clone, Debug)]
pub struct CallCtx {
    pub service: Service,
    pub operation: String,
    pub resource: String,
    /// Identifiers a `resource` option of a fault can match.
    pub targets: Vec<String>,
    pub mutating: bool,
    /// Who made the call, when several actors share the world.
    pub caller: Option<String>,
    /// The region whose endpoint the call goes to; `None`: the topology's home region.
    pub region: Option<Region>,
}

/// What the fault layer decides for a call before the service handles it.
pub enum Gate {
    Go,
    /// Refuse with this error (for HTTP calls: answer `http_status`). With `applied`, the
    /// call takes effect first and only the answer is the error.
    Refuse {
        err: CloudError,
        http_status: u16,
        applied: bool,
        note: String,
    },
    /// No answer; with `applied` the call takes effect first.
    Hang {
        applied: bool,
    },
}

#[derive(Clone, Debug)]
struct Bucket {
    burst: f64,
    refill: f64,
    tokens: f64,
    at: Duration,
    /// Requests per second other clients use (api-load faults).
    load: f64,
}

impl Bucket {
    fn new(burst: f64, refill: f64) -> Self {
        Self {
            burst,
            refill,
            tokens: burst,
            at: Duration::ZERO,
            load: 0.0,
        }
    }
    fn advance(&mut self, t: Duration) {
        if t > self.at {
            let dt = (t - self.at).as_secs_f64();
            self.tokens = (self.tokens + (self.refill - self.load) * dt).clamp(0.0, self.burst);
            self.at = t;
        }
    }
    fn take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    target: InstanceId,
    epoch: u64,
}

#[derive(Clone, Debug)]
pub struct SimCluster {
    pub id: ClusterId,
    pub engine: String,
    pub status: DbStatus,
    pub members: Vec<MemberSpec>,
    pub writer: InstanceId,
    failover: Option<InFlight>,
}

#[derive(Clone, Debug)]
pub struct SimInstance {
    pub id: InstanceId,
    pub cluster: Option<ClusterId>,
    pub engine: String,
    pub zone: Zone,
    pub standby: Option<Zone>,
    pub status: DbStatus,
    reboot: Option<u64>,
}

#[derive(Clone, Debug)]
struct SimHostedZone {
    id: String,
    name: String,
    records: BTreeMap<RecordKey, RecordSet>,
    specs: Vec<RecordSpecSim>,
    /// Which spec a record set belongs to: (normalized name, type) -> index in `specs`.
    spec_index: BTreeMap<(String, String), usize>,
    last_change: Option<Duration>,
}

#[derive(Clone, Debug)]
enum Agenda {
    FaultBegins(usize),
    FaultEnds(usize),
    FlapDown(usize),
    FlapUp(usize),
    FailoverDone {
        cluster: ClusterId,
        epoch: u64,
    },
    RebootDone {
        instance: InstanceId,
        epoch: u64,
    },
    SnapshotReady {
        key: (SnapshotKindKey, String),
    },
    ChangeInsync {
        id: String,
    },
    /// An apply or revert of a traffic tier takes effect (after the load model's lag).
    TrafficEffect {
        tier: usize,
        shed: bool,
        id: u64,
    },
    /// A global switchover or failover is due (see [`super::global`]).
    GlobalDue(super::global::Due),
    /// A zonal shift reaches the load balancer: the zone gets no new traffic.
    ZonalShiftApplied {
        resource: String,
        shift: String,
        zone: String,
    },
}

struct FaultState {
    fault: Fault,
    active: bool,
    remaining: u32,
}

impl FaultState {
    /// Not active yet; a fail-call or timeout-call has all its calls left.
    fn new(f: &Fault) -> FaultState {
        FaultState {
            remaining: match f.kind {
                FaultKind::FailCall { times, .. } | FaultKind::TimeoutCall { times, .. } => times,
                _ => 0,
            },
            fault: f.clone(),
            active: false,
        }
    }
}

/// The final state of a resource, for the report and the invariants.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterFinal {
    pub id: ClusterId,
    pub writer: InstanceId,
    pub zone: Zone,
    pub status: DbStatus,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceFinal {
    pub id: InstanceId,
    pub zone: Zone,
    pub standby_zone: Option<Zone>,
    pub status: DbStatus,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordFinal {
    pub hosted_zone: String,
    pub name: String,
    pub rtype: String,
    pub weighted: bool,
    /// Zones receiving traffic through it.
    pub zones: BTreeSet<Zone>,
    /// Weighted records: the weight of each zone's set (absent set: not listed).
    pub weights: BTreeMap<Zone, i64>,
    /// Plain records: the values it holds.
    pub values: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FinalState {
    pub clusters: Vec<ClusterFinal>,
    pub instances: Vec<InstanceFinal>,
    pub records: Vec<RecordFinal>,
    /// Aurora global databases: where each one's writer is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub global_clusters: Vec<super::global::GlobalFinal>,
    /// Global failovers that lost the writes not yet replicated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_lost: Vec<super::global::DataLoss>,
}

/// The simulator's random streams: one per purpose and key (a cluster's failovers, an
/// instance's reboots, a source's snapshots, a hosted zone's propagations, an operation's
/// round trips), each seeded from the run's seed and its name. A draw depends only on the seed, the stream and how many draws that stream made
/// before, so a change in the number of calls to one resource (an engine that reads less)
/// does not shift every later timing of the others: figures of two engines on one seed compare.
struct Streams {
    seed: u64,
    by_name: HashMap<String, fastrand::Rng>,
}

impl Streams {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            by_name: HashMap::new(),
        }
    }

    /// The stream of `purpose` for `key`, created on its first draw.
    fn of(&mut self, purpose: &str, key: &str) -> &mut fastrand::Rng {
        let seed = self.seed;
        self.by_name
            .entry(format!("{purpose}\0{key}"))
            .or_insert_with(|| fastrand::Rng::with_seed(stream_seed(seed, purpose, key)))
    }
}

/// A stream's seed: FNV-1a over the purpose and the key, mixed with the run's seed
/// (SplitMix64's finaliser), stable across builds and platforms.
fn stream_seed(seed: u64, purpose: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h.rotate_left(17);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct World {
    pub(crate) topo: Topology,
    /// One random stream per resource and purpose, derived from the seed (`Streams`): a call
    /// more or less for one resource does not shift the timings drawn for the others.
    streams: Streams,
    now: Duration,
    agenda: BTreeMap<(Duration, u64), Agenda>,
    seq: u64,
    faults: Vec<FaultState>,
    down: BTreeMap<Zone, BTreeSet<usize>>,
    /// When each zone that is down now went down (its current outage, for the health probes).
    down_since: BTreeMap<Zone, Duration>,
    api_down: BTreeMap<Region, BTreeSet<usize>>,
    route53_down: BTreeSet<usize>,
    clusters: BTreeMap<ClusterId, SimCluster>,
    instances: BTreeMap<InstanceId, SimInstance>,
    snapshots: BTreeMap<(SnapshotKindKey, String), SnapshotState>,
    hosted: BTreeMap<String, SimHostedZone>,
    changes: BTreeMap<String, ChangeStatus>,
    /// Changes still PENDING, and when the last one went INSYNC.
    pending_changes: usize,
    last_insync: Option<Duration>,
    next_change: u64,
    epoch: u64,
    rds_bucket: Bucket,
    r53_bucket: Bucket,
    pub(crate) timeline: Vec<TimelineEntry>,
    /// Placements at the start and after every change (as deltas: linear in the events).
    pub(crate) history: History,
    /// The load and the shedding ladder, when the topology has them.
    traffic: Option<super::traffic::TrafficSim>,
    /// Resources whose reads lag behind a mutation (stale-reads faults).
    stale: StaleReads,
    /// ARC zonal shift: managed resources and their shifts.
    arc: super::arc::ArcState,
    /// Aurora global databases and the health of each region.
    global: super::global::GlobalSim,
    /// RDS buckets of the regions other than the home region (one per account and region).
    region_buckets: BTreeMap<Region, Bucket>,
}

fn same_values(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v
            .iter()
            .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// An id in the style of Route 53's (`C` + 13 base-36 digits), from a counter.
fn change_id(n: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h = h.wrapping_mul(0x0000_0100_0000_01b3);
    let digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut s = String::from("C");
    for _ in 0..13 {
        s.push(digits[(h % 36) as usize] as char);
        h /= 36;
    }
    s
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// An AWS error as the adapter reports it: classified from the code and HTTP status.
pub fn aws_error(ctx: &CallCtx, code: &str, status: u16, text: impl AsRef<str>) -> CloudError {
    CloudError {
        kind: crate::cloud::ErrorKind::classify(Some(code), Some(status)),
        operation: ctx.operation.clone(),
        resource: ctx.resource.clone(),
        code: Some(code.to_string()),
        message: format!("{code}: {} (HTTP {status})", text.as_ref()),
    }
}

/// The error a fail-call answers with, and its HTTP status: for an HTTP call the status it
/// names (503 by default); for an AWS call the code it names, classified as the AWS adapter
/// would (InternalFailure by default).
fn injected_error(ctx: &CallCtx, error: Option<String>) -> (CloudError, u16) {
    match (ctx.service, error) {
        (Service::Http, e) => {
            let status = e.and_then(|s| s.parse::<u16>().ok()).unwrap_or(503);
            (
                CloudError::new(
                    ErrorKind::Transient,
                    &ctx.operation,
                    &ctx.resource,
                    format!("answered {status}"),
                ),
                status,
            )
        }
        (_, None) => (
            aws_error(
                ctx,
                "InternalFailure",
                500,
                "The request processing has failed because of an unknown error",
            ),
            500,
        ),
        (_, Some(code)) => {
            let status =
                if crate::cloud::ErrorKind::classify(Some(&code), None) == ErrorKind::Transient {
                    500
                } else {
                    400
                };
            (
                aws_error(ctx, &code, status, "injected by fail-call"),
                status,
            )
        }
    }
}

/// Route 53's limits on one batch: records and characters of values, an UPSERT counting twice.
fn check_batch_limits(
    ctx: &CallCtx,
    changes: &[RecordChange],
    q: &Quotas,
) -> Result<(), CloudError> {
    let invalid = |m: String| aws_error(ctx, "InvalidChangeBatch", 400, m);
    let (mut n_records, mut n_chars) = (0usize, 0usize);
    for c in changes {
        let weight = if c.action == ChangeAction::Upsert {
            2
        } else {
            1
        };
        n_records += c.record.values.len().max(1) * weight;
        n_chars += c.record.values.iter().map(|v| v.len()).sum::<usize>() * weight;
    }
    if n_records > q.route53_max_records_per_change {
        return Err(invalid(format!("Number of records limit of {} exceeded: the batch has {n_records} (an UPSERT counts twice)", q.route53_max_records_per_change)));
    }
    if n_chars > q.route53_max_value_chars_per_change {
        return Err(invalid(format!("Number of characters limit of {} exceeded: the batch has {n_chars} (an UPSERT counts twice)", q.route53_max_value_chars_per_change)));
    }
    Ok(())
}

impl SimHostedZone {
    /// Why Route 53 refuses one change of a batch, if it does: a CREATE of a record set that
    /// exists, a DELETE of one that does not or that does not match, a record set with no
    /// value.
    fn check_change(&self, ctx: &CallCtx, c: &RecordChange) -> Result<(), CloudError> {
        let invalid = |m: String| aws_error(ctx, "InvalidChangeBatch", 400, m);
        let key = c.record.key();
        let cur = self.records.get(&key);
        let described = format!(
            "[name='{}', type='{}'{}]",
            key.name,
            key.rtype,
            key.set_identifier
                .as_ref()
                .map(|s| format!(", set-identifier='{s}'"))
                .unwrap_or_default()
        );
        match c.action {
            ChangeAction::Create if cur.is_some() => return Err(invalid(format!("Tried to create resource record set {described} but it already exists"))),
            ChangeAction::Delete if cur.is_none() => return Err(invalid(format!("Tried to delete resource record set {described} but it was not found"))),
            ChangeAction::Delete if cur.is_some_and(|r| r.values != c.record.values || r.ttl != c.record.ttl || r.weight != c.record.weight || r.routing != c.record.routing || r.health_check_id != c.record.health_check_id) => {
                return Err(invalid(format!("Tried to delete resource record set {described} but the values provided do not match the current values")))
            }
            _ => {}
        }
        if c.action != ChangeAction::Delete
            && c.record.values.is_empty()
            && c.record.alias.is_none()
        {
            return Err(invalid(format!(
                "{described}: a record set needs at least one value"
            )));
        }
        routing_fields(&c.record).map_err(|m| {
            aws_error(
                ctx,
                "InvalidInput",
                400,
                format!(
                    "Invalid request: {m} in Change with [Action={}, {described}]",
                    c.action
                ),
            )
        })
    }

    /// Apply a checked batch: the keys of the record sets it changed, and of those it left
    /// as they were.
    fn apply(&mut self, changes: &[RecordChange]) -> (Vec<String>, Vec<String>) {
        let (mut changed, mut unchanged) = (vec![], vec![]);
        for c in changes {
            let key = c.record.key();
            let mut rec = c.record.clone();
            rec.name = crate::cloud::normalize_dns_name(&rec.name);
            match c.action {
                ChangeAction::Delete => {
                    self.records.remove(&key);
                    changed.push(key.to_string());
                }
                _ => {
                    if self.records.get(&key) == Some(&rec) {
                        unchanged.push(key.to_string());
                    } else {
                        changed.push(key.to_string());
                    }
                    self.records.insert(key, rec);
                }
            }
        }
        (changed, unchanged)
    }
}

/// Route 53's rule on routing fields: a record set with a set identifier has exactly one
/// routing policy (a weight, or failover, latency, geolocation, multivalue), and one without
/// has none. The policy fields themselves are stored as given and listed back.
fn routing_fields(r: &RecordSet) -> Result<(), String> {
    match (&r.set_identifier, r.weight.is_some(), &r.routing) {
        (Some(_), true, Some(p)) => Err(format!(
            "Expected exactly one of [Weight, Region, Failover, GeoLocation, MultiValueAnswer], but found Weight and {p}"
        )),
        (Some(_), false, None) => Err(
            "Expected exactly one of [Weight, Region, Failover, GeoLocation, MultiValueAnswer], but found none".into(),
        ),
        (None, true, _) | (None, _, Some(_)) => Err("Missing field 'SetIdentifier'".into()),
        _ => Ok(()),
    }
}

/// What a logical record of hosted zone `h` looks like now: the zones it sends traffic to, its
/// weights or values.
fn record_final(h: &SimHostedZone, spec: &RecordSpecSim) -> RecordFinal {
    let mut f = RecordFinal {
        hosted_zone: h.name.clone(),
        name: spec.name.clone(),
        rtype: spec.rtype.clone(),
        weighted: spec.weighted,
        zones: BTreeSet::new(),
        weights: BTreeMap::new(),
        values: vec![],
    };
    if spec.weighted {
        for (z, values) in &spec.values {
            let key = RecordKey {
                name: spec.name.clone(),
                rtype: spec.rtype.clone(),
                set_identifier: Some(z.to_string()),
            };
            if let Some(rs) = h.records.get(&key) {
                let w = rs.weight.unwrap_or(0);
                f.weights.insert(z.clone(), w);
                if w > 0 && same_values(&rs.values, values) {
                    f.zones.insert(z.clone());
                }
            }
        }
    } else {
        let key = RecordKey {
            name: spec.name.clone(),
            rtype: spec.rtype.clone(),
            set_identifier: None,
        };
        if let Some(rs) = h.records.get(&key) {
            f.values = rs.values.clone();
            for (z, values) in &spec.values {
                if same_values(&rs.values, values) {
                    f.zones.insert(z.clone());
                }
            }
        }
    }
    f
}

/// The clusters and DB instances of the topology as the world starts: all available.
fn initial_databases(
    topo: &Topology,
) -> (
    BTreeMap<ClusterId, SimCluster>,
    BTreeMap<InstanceId, SimInstance>,
) {
    let mut clusters = BTreeMap::new();
    let mut instances = BTreeMap::new();
    for c in &topo.clusters {
        for m in &c.members {
            instances.insert(
                m.id.clone(),
                SimInstance {
                    id: m.id.clone(),
                    cluster: Some(c.id.clone()),
                    engine: c.engine.clone(),
                    zone: m.zone.clone(),
                    standby: None,
                    status: DbStatus::Available,
                    reboot: None,
                },
            );
        }
        clusters.insert(
            c.id.clone(),
            SimCluster {
                id: c.id.clone(),
                engine: c.engine.clone(),
                status: DbStatus::Available,
                members: c.members.clone(),
                writer: c.writer.clone(),
                failover: None,
            },
        );
    }
    for i in &topo.instances {
        instances.insert(
            i.id.clone(),
            SimInstance {
                id: i.id.clone(),
                cluster: None,
                engine: i.engine.clone(),
                zone: i.zone.clone(),
                standby: i.standby_zone.clone(),
                status: DbStatus::Available,
                reboot: None,
            },
        );
    }
    (clusters, instances)
}

/// The hosted zones of the topology as the world starts, with their record sets.
fn initial_hosted_zones(topo: &Topology) -> BTreeMap<String, SimHostedZone> {
    let mut hosted = BTreeMap::new();
    for h in &topo.hosted_zones {
        let mut records = BTreeMap::new();
        for r in &h.records {
            for rs in initial_record_sets(r) {
                records.insert(rs.key(), rs);
            }
        }
        hosted.insert(
            h.id.clone(),
            SimHostedZone {
                id: h.id.clone(),
                name: h.name.clone(),
                records,
                specs: h.records.clone(),
                spec_index: h
                    .records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.zone_bound())
                    .map(|(i, r)| {
                        let name = crate::cloud::normalize_dns_name(&r.name);
                        ((name, r.rtype.to_ascii_uppercase()), i)
                    })
                    .collect(),
                last_change: None,
            },
        );
    }
    hosted
}

/// The record sets of a logical record at the start: its value when not tied to zones, one
/// set per zone when weighted, else the `live` zone's value.
fn initial_record_sets(r: &RecordSpecSim) -> Vec<RecordSet> {
    let base = RecordSet {
        name: r.name.clone(),
        rtype: r.rtype.clone(),
        ttl: Some(r.ttl),
        set_identifier: None,
        weight: None,
        values: vec![],
        alias: None,
        ..Default::default()
    };
    if let Some(v) = &r.fixed {
        vec![RecordSet {
            values: v.clone(),
            ..base
        }]
    } else if r.weighted {
        r.values
            .iter()
            .map(|(z, v)| RecordSet {
                set_identifier: Some(z.to_string()),
                weight: Some(r.weights.get(z).copied().unwrap_or(r.weight)),
                values: v.clone(),
                ..base.clone()
            })
            .collect()
    } else if let Some(v) = r.live.as_ref().and_then(|z| r.values.get(z)) {
        vec![RecordSet {
            values: v.clone(),
            ..base
        }]
    } else {
        vec![]
    }
}

impl World {
    pub fn new(topo: &Topology, faults: &[Fault], seed: u64) -> World {
        let (clusters, instances) = initial_databases(topo);
        let q = &topo.quotas;
        let mut w = World {
            topo: topo.clone(),
            streams: Streams::new(seed),
            now: Duration::ZERO,
            agenda: BTreeMap::new(),
            seq: 0,
            faults: faults.iter().map(FaultState::new).collect(),
            down: BTreeMap::new(),
            down_since: BTreeMap::new(),
            api_down: BTreeMap::new(),
            route53_down: BTreeSet::new(),
            clusters,
            instances,
            snapshots: BTreeMap::new(),
            hosted: initial_hosted_zones(topo),
            changes: BTreeMap::new(),
            pending_changes: 0,
            last_insync: None,
            next_change: 0,
            epoch: 0,
            rds_bucket: Bucket::new(q.rds_burst, q.rds_refill_per_s),
            r53_bucket: Bucket::new(q.route53_burst, q.route53_refill_per_s),
            timeline: vec![],
            history: History::default(),
            traffic: match (&topo.traffic, &topo.load) {
                (Some(l), Some(spec)) => Some(super::traffic::TrafficSim::new(
                    l,
                    spec,
                    &topo.endpoints,
                    seed,
                )),
                _ => None,
            },
            stale: StaleReads::default(),
            arc: super::arc::ArcState::new(topo),
            global: super::global::GlobalSim::default(),
            region_buckets: topo
                .multi_region
                .regions
                .iter()
                .filter(|r| **r != topo.region)
                .map(|r| (r.clone(), Bucket::new(q.rds_burst, q.rds_refill_per_s)))
                .collect(),
        };
        w.global = super::global::GlobalSim::new(topo, |id| {
            let (lo, hi) = crate::cloud::model::GLOBAL_REPLICATION_LAG_MS;
            let span = Span::new(Duration::from_millis(lo), Duration::from_millis(hi));
            span.draw(w.streams.of("global-lag", id.as_str()))
                .as_millis() as f64
        });
        for (i, f) in faults.iter().enumerate() {
            w.schedule(f.at, Agenda::FaultBegins(i));
            if let Some(end) = f.end() {
                w.schedule(end, Agenda::FaultEnds(i));
            }
        }
        w.history = History::new(w.placements());
        w.traffic_observe();
        w
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    fn schedule(&mut self, at: Duration, item: Agenda) {
        self.seq += 1;
        self.agenda.insert((at, self.seq), item);
    }

    fn push(&mut self, event: Event) {
        self.timeline.push(TimelineEntry {
            at_ms: ms(self.now),
            event,
        });
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(Event::World { text: text.into() });
    }

    pub fn push_event(&mut self, event: Event) {
        self.push(event);
    }

    fn set_now(&mut self, t: Duration) {
        if t > self.now {
            self.rds_bucket.advance(t);
            self.r53_bucket.advance(t);
            for b in self.region_buckets.values_mut() {
                b.advance(t);
            }
            self.now = t;
            self.stale.expire(t);
        }
    }

    /// Play every scheduled event due by `t`, then move the world's time to `t`.
    pub fn advance_to(&mut self, t: Duration) {
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let ((at, _), item) = entry.remove_entry();
            self.set_now(at);
            self.play(item);
            self.traffic_observe();
        }
        self.set_now(t);
    }

    /// A duration in `span`, from the stream of `purpose` for `key` (a resource).
    pub fn draw(&mut self, span: Span, purpose: &str, key: &str) -> Duration {
        span.draw(self.streams.of(purpose, key))
    }

    /// The world's time as epoch milliseconds (the topology's start plus the time elapsed).
    pub fn epoch_ms(&self) -> i64 {
        let start = self
            .topo
            .start
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (start + self.now).as_millis() as i64
    }

    // ---- ARC zonal shift -----------------------------------------------------------------

    pub fn arc_get_managed_resource(
        &mut self,
        arn: &str,
    ) -> Result<crate::cloud::ManagedResource, CloudError> {
        let (now, down) = (self.epoch_ms(), self.failed_zones_now());
        self.arc.get_managed_resource(arn, now, &down)
    }

    pub fn arc_list_zonal_shifts(
        &mut self,
        arn: &str,
    ) -> Result<Vec<crate::cloud::ZonalShift>, CloudError> {
        let now = self.epoch_ms();
        self.arc.list_zonal_shifts(arn, now)
    }

    /// StartZonalShift; the load balancer applies it a few seconds later.
    pub fn arc_start(
        &mut self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> Result<crate::cloud::ZonalShift, CloudError> {
        let (min, max) = super::arc::applied_span();
        let lag = self.draw(Span { min, max }, "arc-applied", arn);
        let now = self.epoch_ms();
        let (shift, lag) = self
            .arc
            .start(arn, away_from, expires_in, comment, now, lag)?;
        let zone = self
            .arc
            .zone_of(away_from)
            .map(|z| format!("{z} ({away_from})"))
            .unwrap_or_else(|| away_from.to_string());
        self.schedule(
            self.now + lag,
            Agenda::ZonalShiftApplied {
                resource: arn.to_string(),
                shift: shift.id.clone(),
                zone,
            },
        );
        Ok(shift)
    }

    pub fn arc_cancel(&mut self, id: &str) -> Result<crate::cloud::ZonalShift, CloudError> {
        let now = self.epoch_ms();
        self.arc.cancel(id, now)
    }

    /// Zonal shifts active now: (resource, zone id, shift id).
    pub fn arc_active(&mut self) -> Vec<(String, String, String)> {
        let now = self.epoch_ms();
        self.arc.active(now)
    }

    // ---- Aurora global databases and CloudWatch (see `super::global`) --------------------

    /// A call to an impaired region's endpoint: most fail, throttled or with a 5xx (seeded,
    /// one stream per region).
    fn impaired_refusal(&mut self, ctx: &CallCtx, region: &Region) -> Option<CloudError> {
        if self.global.health(region).0 != super::global::RegionHealth::Impaired {
            return None;
        }
        let rng = self.streams.of("region-impaired", region.as_str());
        if rng.f64() >= crate::cloud::model::REGION_IMPAIRED_FAILURE_RATE {
            return None;
        }
        Some(if rng.bool() {
            aws_error(
                ctx,
                "ThrottlingException",
                400,
                format!("Rate exceeded ({region}'s control plane is impaired)"),
            )
        } else {
            aws_error(
                ctx,
                "ServiceUnavailable",
                503,
                format!("The service is unavailable in {region}; try again later"),
            )
        })
    }

    /// DescribeGlobalClusters of the given ids; unknown ones are absent.
    pub fn global_describe(
        &self,
        ids: &[crate::types::GlobalClusterId],
    ) -> Vec<crate::cloud::GlobalClusterState> {
        ids.iter()
            .filter_map(|id| self.global.describe(id))
            .collect()
    }

    /// SwitchoverGlobalCluster: under way for the switchover time, if accepted.
    pub fn global_switchover(
        &mut self,
        id: &crate::types::GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let due = self.global.switchover(id, target_arn)?;
        let took = self.draw(
            Span::new(
                secs(crate::cloud::model::GLOBAL_SWITCHOVER_S.0),
                secs(crate::cloud::model::GLOBAL_SWITCHOVER_S.1),
            ),
            "global-switchover",
            id.as_str(),
        );
        self.note(format!("global cluster `{id}`: switching over to {target_arn} (about {} if both regions cooperate)", fmt_dur(took)));
        self.schedule(self.now + took, Agenda::GlobalDue(due));
        Ok(())
    }

    /// FailoverGlobalCluster with AllowDataLoss: under way for the failover time, if accepted.
    pub fn global_failover(
        &mut self,
        id: &crate::types::GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let (due, superseded) = self.global.failover(id, target_arn, self.now)?;
        let took = self.draw(
            Span::new(
                secs(crate::cloud::model::GLOBAL_FAILOVER_S.0),
                secs(crate::cloud::model::GLOBAL_FAILOVER_S.1),
            ),
            "global-failover",
            id.as_str(),
        );
        if let Some(s) = superseded {
            self.note(s);
        }
        let lag = self.global.lag_ms(id, self.now).unwrap_or(0.0);
        self.note(format!("global cluster `{id}`: failing over to {target_arn} with data loss allowed (about {}); replication lag now {:.1} s", fmt_dur(took), lag / 1000.0));
        self.schedule(self.now + took, Agenda::GlobalDue(due));
        Ok(())
    }

    fn global_due(&mut self, due: super::global::Due) {
        match self.global.due(&due, self.now) {
            None => {}
            Some(Ok(note)) => self.note(note),
            Some(Err(note)) => {
                if let Some(n) = note {
                    self.note(n);
                }
                let at = self.now + super::global::STUCK_RECHECK;
                self.schedule(at, Agenda::GlobalDue(due));
            }
        }
    }

    /// The replication lag of a global cluster now (ms), from the model (tests, reports).
    pub fn global_lag_ms(&self, id: &crate::types::GlobalClusterId) -> Option<f64> {
        self.global.lag_ms(id, self.now)
    }

    /// The latest datapoint of an `AWS/RDS` metric in `region`: the global replication lag of
    /// a secondary cluster, or an Aurora reader's `AuroraReplicaLag` (none for a writer or a
    /// reader in a zone that is down).
    pub fn rds_metric(
        &mut self,
        region: &Region,
        metric: &str,
        (dim, value): (&str, &str),
    ) -> Option<f64> {
        match (metric, dim) {
            ("AuroraGlobalDBReplicationLag" | "AuroraGlobalDBRPOLag", "DBClusterIdentifier") => {
                self.global.metric(metric, region, value, self.now)
            }
            ("AuroraReplicaLag", "DBInstanceIdentifier") if region == &self.topo.region => {
                let i = self.instances.get(&InstanceId::new(value))?;
                let c = self.clusters.get(i.cluster.as_ref()?)?;
                if c.writer == i.id || self.zone_down(&i.zone) {
                    return None;
                }
                let (lo, hi) = crate::cloud::model::AURORA_REPLICA_LAG_MS;
                let span = Span::new(Duration::from_millis(lo), Duration::from_millis(hi));
                Some(self.draw(span, "replica-lag", value).as_millis() as f64)
            }
            _ => None,
        }
    }

    // ---- health --------------------------------------------------------------------------

    pub fn zone_down(&self, z: &Zone) -> bool {
        self.down.get(z).is_some_and(|s| !s.is_empty())
    }

    /// Zones that are down now, or flapping (unhealthy even while briefly up).
    pub fn failed_zones_now(&self) -> BTreeSet<Zone> {
        let mut out: BTreeSet<Zone> = self
            .down
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(z, _)| z.clone())
            .collect();
        for f in self.faults.iter().filter(|f| f.active) {
            if let FaultKind::AzFlap { zone, .. } = &f.fault.kind {
                out.insert(zone.clone());
            }
        }
        out
    }

    /// When zone `z` went down, if it is down now (the start of its current outage).
    pub fn zone_down_since(&self, z: &Zone) -> Option<Duration> {
        self.down_since.get(z).copied()
    }

    /// An `observer-down` fault is in force: the health prober's own network is down.
    pub fn observer_down(&self) -> bool {
        self.faults
            .iter()
            .any(|f| f.active && matches!(f.fault.kind, FaultKind::ObserverDown))
    }

    /// How many of zone `z`'s HTTP/TCP probes fail now by `probes-fail` faults (a partial
    /// failure: the zone itself serves).
    pub fn probes_failing(&self, z: &Zone) -> u32 {
        self.faults
            .iter()
            .filter(|f| f.active)
            .map(|f| match &f.fault.kind {
                FaultKind::ProbesFail { zone, count } if zone == z => *count,
                _ => 0,
            })
            .sum()
    }

    /// The instances as they are (no stale copy, no call): what a health probe of the database
    /// status reads. RDS keeps reporting an instance in a zone that is down as available.
    pub fn instances_now(&self, ids: &[InstanceId]) -> Vec<InstanceState> {
        ids.iter()
            .filter_map(|id| self.instances.get(id))
            .map(|i| self.instance_state(i))
            .collect()
    }

    /// A latency in the topology's API round-trip range, drawn from `rng`.
    pub fn api_latency_with(&self, rng: &mut fastrand::Rng) -> Duration {
        self.topo.timing.api_latency.draw(rng)
    }

    fn cause(&mut self, zone: &Zone, i: usize, add: bool) {
        let set = self.down.entry(zone.clone()).or_default();
        if add {
            set.insert(i);
        } else {
            set.remove(&i);
        }
        if set.is_empty() {
            self.down_since.remove(zone);
        } else {
            self.down_since.entry(zone.clone()).or_insert(self.now);
        }
    }

    fn play(&mut self, item: Agenda) {
        match item {
            Agenda::FaultBegins(i) => self.fault_begins(i),
            Agenda::FaultEnds(i) => self.fault_ends(i),
            Agenda::FlapUp(i) => {
                let FaultKind::AzFlap { zone, period } = self.faults[i].fault.kind.clone() else {
                    return;
                };
                if !self.faults[i].active {
                    return;
                }
                self.cause(&zone, i, false);
                let text = format!("zone {zone} is reachable again, for now (flapping)");
                self.fault_event(i, FaultPhase::FlapUp, text);
                self.schedule(self.now + (period - period / 2), Agenda::FlapDown(i));
            }
            Agenda::FlapDown(i) => {
                let FaultKind::AzFlap { zone, period } = self.faults[i].fault.kind.clone() else {
                    return;
                };
                if !self.faults[i].active {
                    return;
                }
                self.cause(&zone, i, true);
                let text = format!("zone {zone} drops off the network again (flapping)");
                self.fault_event(i, FaultPhase::FlapDown, text);
                self.schedule(self.now + period / 2, Agenda::FlapUp(i));
            }
            Agenda::FailoverDone { cluster, epoch } => self.failover_done(&cluster, epoch),
            Agenda::GlobalDue(due) => self.global_due(due),
            Agenda::RebootDone { instance, epoch } => self.reboot_done(&instance, epoch),
            Agenda::SnapshotReady { key } => {
                if let Some(s) = self.snapshots.get_mut(&key) {
                    s.status = DbStatus::Available;
                    let text = format!("snapshot `{}` of `{}` is available", s.id, s.source);
                    self.note(text);
                }
            }
            Agenda::TrafficEffect { tier, shed, id } => {
                if let Some(t) = self.traffic.as_mut() {
                    t.take_effect(tier, shed, id);
                }
            }
            Agenda::ZonalShiftApplied {
                resource,
                shift,
                zone,
            } => {
                let now = self.epoch_ms();
                if self.arc.active(now).iter().any(|(_, _, id)| id == &shift) {
                    self.note(format!(
                        "zonal shift {shift} applied: {resource} sends no new traffic to {zone}"
                    ));
                }
            }
            Agenda::ChangeInsync { id } => {
                self.changes.insert(id.clone(), ChangeStatus::Insync);
                self.pending_changes = self.pending_changes.saturating_sub(1);
                self.last_insync = Some(self.now);
                self.note(format!(
                    "Route 53 change {id} is INSYNC: every authoritative server answers with it"
                ));
            }
        }
    }

    fn fault_event(&mut self, i: usize, phase: FaultPhase, text: String) {
        let fault = self.faults[i].fault.to_string();
        self.push(Event::Fault { fault, phase, text });
    }

    fn fault_begins(&mut self, i: usize) {
        self.faults[i].active = true;
        let kind = self.faults[i].fault.kind.clone();
        let text = match kind {
            FaultKind::AzDown { zone } => {
                self.cause(&zone, i, true);
                format!("zone {zone} loses its network: its instances are unreachable (RDS still reports them available), failovers to it fail, its endpoints time out")
            }
            FaultKind::AzFlap { zone, period } => {
                self.cause(&zone, i, true);
                self.schedule(self.now + period / 2, Agenda::FlapUp(i));
                format!(
                    "zone {zone} starts flapping: down {}, up {}, again and again",
                    fmt_dur(period / 2),
                    fmt_dur(period - period / 2)
                )
            }
            FaultKind::RegionDown { region } => self.region_goes_down(i, region),
            FaultKind::RegionImpaired { region } => {
                let now = self.now;
                let how = super::global::RegionHealth::Impaired;
                self.global.region_fault(i, &region, how, now, true);
                format!("region {region}'s control plane is impaired: calls to its API endpoints are throttled or fail with 5xx, a global switchover involving it does not complete; its zones serve, degraded, and global replication out of it falls behind")
            }
            FaultKind::Route53Down => {
                self.route53_down.insert(i);
                "Route 53's control plane is unavailable: every Route 53 API call fails (DNS answers keep being served)".to_string()
            }
            FaultKind::ApiErrors { operation, rate } => format!(
                "{:.0}% of {} calls fail with HTTP 500",
                rate * 100.0,
                op_text(&operation)
            ),
            FaultKind::ApiLoad { service, rate } => {
                let b = self.bucket(service);
                b.load += rate;
                let (refill, burst) = (b.refill, b.burst);
                format!("other clients use {rate} requests/s of the {service} quota (burst {burst}, refill {refill}/s)")
            }
            FaultKind::FailCall {
                operation,
                resource,
                times,
                error,
                applied,
            } => format!(
                "the next {times} {} call(s){} fail with {}{}",
                op_text(&operation),
                resource.map(|r| format!(" on {r}")).unwrap_or_default(),
                error.unwrap_or_else(|| "an HTTP 500 (InternalFailure)".into()),
                if applied { ", after taking effect" } else { "" }
            ),
            FaultKind::TimeoutCall {
                operation,
                resource,
                times,
                applied,
            } => format!(
                "the next {times} {} call(s){} get no answer{}",
                op_text(&operation),
                resource.map(|r| format!(" on {r}")).unwrap_or_default(),
                if applied { " (they take effect)" } else { "" }
            ),
            FaultKind::StallFailover { cluster } => {
                format!("a failover of `{cluster}` started from now on never completes")
            }
            FaultKind::StaleReads { service, lag } => format!(
                "{} reads lag {} behind mutations: a resource just changed is described as it was before the change",
                stale_services(&service),
                fmt_dur(lag)
            ),
            FaultKind::ProbesFail { zone, count } => format!(
                "{count} health probe(s) of {zone} stop answering, while the zone itself serves (a partial failure)"
            ),
            FaultKind::ObserverDown => "the health prober's own network goes down: none of its probes gets an answer, whatever the zones do".to_string(),
        };
        self.fault_event(i, FaultPhase::Begins, text);
    }

    /// Region-down fault `i` begins: the region's zones and API endpoints go down.
    fn region_goes_down(&mut self, i: usize, region: Region) -> String {
        let zones: Vec<Zone> = self.topo.zones_of(&region);
        let now = self.now;
        let how = super::global::RegionHealth::Down;
        self.global.region_fault(i, &region, how, now, true);
        for z in &zones {
            self.cause(z, i, true);
        }
        self.api_down.entry(region.clone()).or_default().insert(i);
        let r53 = if region == self.topo.route53_region {
            ", Route 53's control plane with it"
        } else {
            ""
        };
        format!(
            "region {region} goes down: {} unreachable, its API endpoints too{r53}",
            if zones.is_empty() {
                "no zone of the topology is in it".to_string()
            } else {
                zones
                    .iter()
                    .map(|z| z.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    }

    fn fault_ends(&mut self, i: usize) {
        self.faults[i].active = false;
        let kind = self.faults[i].fault.kind.clone();
        let text = match kind {
            FaultKind::AzDown { zone } | FaultKind::AzFlap { zone, .. } => {
                self.cause(&zone, i, false);
                if self.zone_down(&zone) {
                    format!("this fault on {zone} ends (the zone is still down for another reason)")
                } else {
                    format!("zone {zone} is back")
                }
            }
            FaultKind::RegionImpaired { region } => {
                let (now, how) = (self.now, super::global::RegionHealth::Impaired);
                self.global.region_fault(i, &region, how, now, false);
                format!("region {region}'s control plane works again")
            }
            FaultKind::RegionDown { region } => {
                let zones: Vec<Zone> = self.topo.zones_of(&region);
                let (now, how) = (self.now, super::global::RegionHealth::Down);
                self.global.region_fault(i, &region, how, now, false);
                for z in &zones {
                    self.cause(z, i, false);
                }
                if let Some(s) = self.api_down.get_mut(&region) {
                    s.remove(&i);
                }
                format!("region {region} is back")
            }
            FaultKind::Route53Down => {
                self.route53_down.remove(&i);
                "Route 53's control plane is available again".to_string()
            }
            FaultKind::ApiLoad { service, rate } => {
                self.bucket(service).load -= rate;
                format!("the other clients' load on the {service} quota stops")
            }
            FaultKind::StaleReads { service, .. } => format!(
                "{} reads no longer lag behind new mutations",
                stale_services(&service)
            ),
            _ => format!("`{}` ends", self.faults[i].fault),
        };
        self.fault_event(i, FaultPhase::Ends, text);
    }

    fn bucket(&mut self, s: Service) -> &mut Bucket {
        match s {
            Service::Route53 => &mut self.r53_bucket,
            _ => &mut self.rds_bucket,
        }
    }

    fn stalled(&self, cluster: &ClusterId) -> bool {
        self.faults.iter().any(|f| {
            f.active
                && matches!(&f.fault.kind, FaultKind::StallFailover { cluster: c } if c == cluster)
        })
    }

    fn failover_done(&mut self, cluster: &ClusterId, epoch: u64) {
        let Some(c) = self.clusters.get(cluster) else {
            return;
        };
        let Some(inflight) = c.failover.clone().filter(|f| f.epoch == epoch) else {
            return;
        };
        let old = c.writer.clone();
        let old_zone = self.instances.get(&old).map(|i| i.zone.clone());
        let tz = self.instances.get(&inflight.target).map(|i| i.zone.clone());
        let reachable = tz.as_ref().is_some_and(|z| !self.zone_down(z));
        let c = self.clusters.get_mut(cluster).expect("checked above");
        c.failover = None;
        c.status = DbStatus::Available;
        if reachable {
            c.writer = inflight.target.clone();
            let tz = tz.map(|z| z.to_string()).unwrap_or_default();
            self.note(format!(
                "cluster `{cluster}`: failover complete, writer `{}` in {tz}",
                inflight.target
            ));
            let delta = vec![self.cluster_placement(cluster)];
            self.record_placements(delta);
        } else {
            self.note(format!(
                "cluster `{cluster}`: failover to `{}` FAILED: {} lost its network during the failover; the writer stays `{old}` in {}",
                inflight.target,
                tz.map(|z| z.to_string()).unwrap_or_else(|| "its zone".into()),
                old_zone.map(|z| z.to_string()).unwrap_or_default()
            ));
        }
    }

    fn reboot_done(&mut self, instance: &InstanceId, epoch: u64) {
        let Some(i) = self.instances.get(instance) else {
            return;
        };
        if i.reboot != Some(epoch) {
            return;
        }
        let standby = i.standby.clone();
        let primary = i.zone.clone();
        let reachable = standby.as_ref().is_some_and(|z| !self.zone_down(z));
        let i = self.instances.get_mut(instance).expect("checked above");
        i.reboot = None;
        i.status = DbStatus::Available;
        match standby {
            Some(sz) if reachable => {
                i.standby = Some(primary.clone());
                i.zone = sz.clone();
                self.note(format!("instance `{instance}`: failover complete, primary now in {sz} (standby in {primary})"));
                let delta = vec![(format!("instance {instance}"), [sz].into_iter().collect())];
                self.record_placements(delta);
            }
            _ => self.note(format!("instance `{instance}`: failover FAILED: its standby lost its network during the failover; the primary stays in {primary}")),
        }
    }

    // ---- placements ----------------------------------------------------------------------

    pub fn placements(&self) -> Placements {
        let mut p = Placements::new();
        for c in self.clusters.keys() {
            let (k, z) = self.cluster_placement(c);
            p.insert(k, z);
        }
        for i in self.instances.values().filter(|i| i.cluster.is_none()) {
            p.insert(
                format!("instance {}", i.id),
                [i.zone.clone()].into_iter().collect(),
            );
        }
        for r in self.final_records() {
            p.insert(format!("record {} {}", r.name, r.rtype), r.zones);
        }
        p
    }

    /// A cluster's placement: its writer's zone.
    fn cluster_placement(&self, id: &ClusterId) -> (String, BTreeSet<Zone>) {
        let z = self
            .clusters
            .get(id)
            .and_then(|c| self.instances.get(&c.writer))
            .map(|i| i.zone.clone());
        (format!("cluster {id}"), z.into_iter().collect())
    }

    /// The placements of the records a batch to hosted zone `zone` touched (only records of
    /// the topology, tied to zones, are tracked).
    fn record_placements_of(&self, zone: &str, changes: &[RecordChange]) -> Delta {
        let Some(h) = self.hosted.get(zone) else {
            return vec![];
        };
        let mut seen = BTreeSet::new();
        let mut out = vec![];
        for c in changes {
            let key = (
                crate::cloud::normalize_dns_name(&c.record.name),
                c.record.rtype.to_ascii_uppercase(),
            );
            let Some(&i) = h.spec_index.get(&key) else {
                continue;
            };
            if seen.insert(i) {
                let f = record_final(h, &h.specs[i]);
                out.push((format!("record {} {}", f.name, f.rtype), f.zones));
            }
        }
        out
    }

    /// Note an event's changes of placements (nothing when none changed).
    fn record_placements(&mut self, delta: Delta) {
        let now = self.now;
        self.history.record(now, delta);
    }

    fn final_records(&self) -> Vec<RecordFinal> {
        let mut out = vec![];
        for h in self.hosted.values() {
            for spec in h.specs.iter().filter(|s| s.zone_bound()) {
                out.push(record_final(h, spec));
            }
        }
        out
    }

    /// When the last Route 53 change went INSYNC: `Some(None)` when no change was made,
    /// `None` while one is still PENDING.
    pub fn changes_insync_at(&self) -> Option<Option<Duration>> {
        (self.pending_changes == 0).then_some(self.last_insync)
    }

    pub fn final_state(&self) -> FinalState {
        FinalState {
            clusters: self
                .clusters
                .values()
                .map(|c| ClusterFinal {
                    id: c.id.clone(),
                    writer: c.writer.clone(),
                    zone: self
                        .instances
                        .get(&c.writer)
                        .map(|i| i.zone.clone())
                        .unwrap_or_else(|| Zone::new("?")),
                    status: c.status.clone(),
                })
                .collect(),
            instances: self
                .instances
                .values()
                .filter(|i| i.cluster.is_none())
                .map(|i| InstanceFinal {
                    id: i.id.clone(),
                    zone: i.zone.clone(),
                    standby_zone: i.standby.clone(),
                    status: i.status.clone(),
                })
                .collect(),
            records: self.final_records(),
            global_clusters: self.global.final_state(),
            data_lost: self.global.losses.clone(),
        }
    }

    // ---- the fault layer -----------------------------------------------------------------

    /// The round trip of a call of `operation`, from that operation's own stream (not keyed by
    /// resource: names such as snapshot ids carry the run's id, which differs from run to run).
    pub fn api_latency(&mut self, s: Service, operation: &str) -> Duration {
        let span = if s == Service::Http {
            self.topo.timing.http_latency
        } else {
            self.topo.timing.api_latency
        };
        self.draw(span, "latency", operation)
    }

    /// Reachability, quota and injected faults, in that order, for a call arriving now.
    pub fn gate(&mut self, ctx: &CallCtx) -> Gate {
        if let Some(refused) = self.gate_service(ctx) {
            return refused;
        }
        for i in self.faults_hitting(ctx) {
            if let Some(gate) = self.inject(ctx, i) {
                return gate;
            }
        }
        Gate::Go
    }

    /// The service's own refusals: its region down, Route 53's control plane down, its
    /// quota exhausted (a call that gets through takes a token).
    fn gate_service(&mut self, ctx: &CallCtx) -> Option<Gate> {
        let refuse = |err: CloudError, note: &str| {
            Some(Gate::Refuse {
                err,
                http_status: 0,
                applied: false,
                note: note.to_string(),
            })
        };
        match ctx.service {
            Service::Rds | Service::CloudWatch => {
                let region = ctx
                    .region
                    .clone()
                    .unwrap_or_else(|| self.topo.region.clone());
                let host = format!(
                    "{}.{region}.amazonaws.com",
                    ctx.service.as_str().replace("cloudwatch", "monitoring")
                );
                if self.api_down.get(&region).is_some_and(|s| !s.is_empty()) {
                    let err = CloudError::new(ErrorKind::Transient, &ctx.operation, &ctx.resource, format!("connection to the endpoint failed: {host} is unreachable (region down)"));
                    return refuse(err, "region down");
                }
                if let Some(err) = self.impaired_refusal(ctx, &region) {
                    return refuse(err, "region impaired");
                }
                if ctx.service == Service::CloudWatch {
                    return None;
                }
                if region != self.topo.region {
                    let b = self
                        .region_buckets
                        .entry(region.clone())
                        .or_insert_with(|| {
                            Bucket::new(
                                self.topo.quotas.rds_burst,
                                self.topo.quotas.rds_refill_per_s,
                            )
                        });
                    b.advance(self.now);
                    if !b.take() {
                        return refuse(
                            aws_error(ctx, "Throttling", 400, "Rate exceeded"),
                            "RDS quota exhausted",
                        );
                    }
                } else if !self.rds_bucket.take() {
                    return refuse(
                        aws_error(ctx, "Throttling", 400, "Rate exceeded"),
                        "RDS quota exhausted",
                    );
                }
            }
            Service::Route53 => {
                let region = self.topo.route53_region.clone();
                if self.api_down.get(&region).is_some_and(|s| !s.is_empty()) {
                    let err = CloudError::new(ErrorKind::Transient, &ctx.operation, &ctx.resource, format!("connection to the endpoint failed: route53.amazonaws.com ({region}) is unreachable (region down)"));
                    return refuse(err, "region down");
                }
                if !self.route53_down.is_empty() {
                    return refuse(
                        aws_error(
                            ctx,
                            "ServiceUnavailable",
                            503,
                            "Route 53 is unable to process the request; try again later",
                        ),
                        "Route 53 control plane down",
                    );
                }
                if !self.r53_bucket.take() {
                    return refuse(
                        aws_error(ctx, "Throttling", 400, "Rate exceeded"),
                        "Route 53 quota exhausted",
                    );
                }
            }
            Service::Arc => {
                // ARC's zonal shift API is regional: down with its region. Its server-side
                // quota is not modelled (AWS publishes no rate); the client paces itself.
                let region = self.topo.region.clone();
                if self.api_down.get(&region).is_some_and(|s| !s.is_empty()) {
                    let err = CloudError::new(ErrorKind::Transient, &ctx.operation, &ctx.resource, format!("connection to the endpoint failed: arc-zonal-shift.{region}.amazonaws.com is unreachable (region down)"));
                    return refuse(err, "region down");
                }
                if let Some(err) = self.impaired_refusal(ctx, &region) {
                    return refuse(err, "region impaired");
                }
            }
            Service::Http => {}
        }
        None
    }

    /// The call faults active now match (a fail-call or timeout-call with calls left), in
    /// the order the faults were given.
    fn faults_hitting(&self, ctx: &CallCtx) -> Vec<usize> {
        let now = self.now;
        let mut candidates: Vec<usize> = vec![];
        for (i, f) in self.faults.iter().enumerate() {
            if !f.active || !f.fault.covers(now) {
                continue;
            }
            let hit = |op: &OpMatch, res: &Option<String>| {
                op.matches(ctx.service, &ctx.operation)
                    && res
                        .as_ref()
                        .is_none_or(|r| ctx.targets.iter().any(|t| t.eq_ignore_ascii_case(r)))
            };
            let m = match &f.fault.kind {
                FaultKind::FailCall {
                    operation,
                    resource,
                    ..
                }
                | FaultKind::TimeoutCall {
                    operation,
                    resource,
                    ..
                } => f.remaining > 0 && hit(operation, resource),
                FaultKind::ApiErrors { operation, .. } => hit(operation, &None),
                _ => false,
            };
            if m {
                candidates.push(i);
            }
        }
        candidates
    }

    /// What call fault `i` does to the call: no answer, or an error; `None` when it spares
    /// the call (an api-errors draw above its rate).
    fn inject(&mut self, ctx: &CallCtx, i: usize) -> Option<Gate> {
        match self.faults[i].fault.kind.clone() {
            FaultKind::TimeoutCall { applied, .. } => {
                self.faults[i].remaining -= 1;
                Some(Gate::Hang { applied })
            }
            FaultKind::FailCall { error, applied, .. } => {
                self.faults[i].remaining -= 1;
                let (err, http_status) = injected_error(ctx, error);
                Some(Gate::Refuse {
                    err,
                    http_status,
                    applied,
                    note: "injected by fail-call".into(),
                })
            }
            FaultKind::ApiErrors { rate, .. }
                if self.streams.of("api-errors", &ctx.operation).f64() < rate =>
            {
                let err = aws_error(
                    ctx,
                    "InternalFailure",
                    500,
                    "The request processing has failed because of an unknown error",
                );
                Some(Gate::Refuse {
                    err,
                    http_status: 500,
                    applied: false,
                    note: "injected by api-errors".into(),
                })
            }
            _ => None,
        }
    }

    pub fn record_call(
        &mut self,
        ctx: &CallCtx,
        result: Result<Option<u16>, &CloudError>,
        note: Option<String>,
        effect: Option<Effect>,
    ) {
        let (ok, http_status, error) = match result {
            Ok(status) => (true, status, None),
            Err(e) => (false, None, Some(e.clone())),
        };
        self.push(Event::Api(ApiCall {
            service: ctx.service,
            operation: ctx.operation.clone(),
            resource: ctx.resource.clone(),
            mutating: ctx.mutating,
            ok,
            http_status,
            error,
            note,
            effect,
            caller: ctx.caller.clone(),
        }));
    }

    // ---- stale reads ---------------------------------------------------------------------

    /// How long reads of `service` lag behind a mutation applied now: the longest lag of the
    /// stale-reads faults in force, if any.
    fn stale_lag(&self, service: Service) -> Option<Duration> {
        self.faults
            .iter()
            .filter(|f| f.active && f.fault.covers(self.now))
            .filter_map(|f| match &f.fault.kind {
                FaultKind::StaleReads { service: s, lag } if s.matches(service, "") => Some(*lag),
                _ => None,
            })
            .max()
    }

    /// Before a mutation of the cluster: reads keep answering it as it is now, for the lag.
    fn lag_cluster(&mut self, id: &ClusterId) {
        let (Some(lag), Some(c)) = (self.stale_lag(Service::Rds), self.clusters.get(id)) else {
            return;
        };
        let state = self.cluster_state(c);
        self.stale.clusters.keep(id.clone(), state, self.now, lag);
    }

    /// Before a mutation of the instance: reads keep answering it as it is now, for the lag.
    fn lag_instance(&mut self, id: &InstanceId) {
        let (Some(lag), Some(i)) = (self.stale_lag(Service::Rds), self.instances.get(id)) else {
            return;
        };
        let state = self.instance_state(i);
        self.stale.instances.keep(id.clone(), state, self.now, lag);
    }

    /// Before a snapshot is created: reads keep not finding it, for the lag.
    fn lag_snapshot(&mut self, key: &(SnapshotKindKey, String)) {
        if let Some(lag) = self.stale_lag(Service::Rds) {
            let state = self.snapshots.get(key).cloned();
            self.stale.snapshots.keep(key.clone(), state, self.now, lag);
        }
    }

    /// Before a change of the hosted zone's records: reads keep listing them as they are now
    /// and keep not finding the change `change_id`, for the lag.
    fn lag_records(&mut self, zone: &str, change_id: &str) {
        let (Some(lag), Some(h)) = (self.stale_lag(Service::Route53), self.hosted.get(zone)) else {
            return;
        };
        let records = h.records.values().cloned().collect();
        let change = self.changes.get(change_id).copied();
        let now = self.now;
        self.stale.records.keep(zone.to_string(), records, now, lag);
        self.stale
            .changes
            .keep(change_id.to_string(), change, now, lag);
    }

    /// Note on the timeline that a read answered a resource as it was at `taken`.
    fn stale_answer(&mut self, operation: &str, resource: &str, taken: Duration) {
        let age = self.now.saturating_sub(taken);
        self.note(super::stale::note(operation, resource, age));
    }

    /// How many stale copies are kept now (tests: they are dropped once their lag passed).
    pub fn stale_copies(&self) -> usize {
        self.stale.len()
    }

    // ---- RDS -----------------------------------------------------------------------------

    fn cluster_state(&self, c: &SimCluster) -> ClusterState {
        ClusterState {
            id: c.id.clone(),
            status: c.status.clone(),
            engine: c.engine.clone(),
            members: c
                .members
                .iter()
                .map(|m| ClusterMember {
                    instance: m.id.clone(),
                    is_writer: m.id == c.writer,
                    promotion_tier: m.tier,
                })
                .collect(),
        }
    }

    fn instance_state(&self, i: &SimInstance) -> InstanceState {
        InstanceState {
            id: i.id.clone(),
            cluster: i.cluster.clone(),
            status: i.status.clone(),
            engine: i.engine.clone(),
            zone: Some(i.zone.clone()),
            secondary_zone: i.standby.clone(),
            multi_az: i.standby.is_some(),
        }
    }

    /// The clusters asked for; one changed within a stale-reads lag as it was before.
    pub fn describe_clusters(&mut self, ids: &[ClusterId]) -> Vec<ClusterState> {
        let mut seen = BTreeSet::new();
        let mut out = vec![];
        for id in ids.iter().filter(|id| seen.insert(*id)) {
            if let Some(c) = self.stale.clusters.get(id, self.now) {
                let (state, taken) = (c.state.clone(), c.taken);
                self.stale_answer("DescribeDBClusters", id.as_str(), taken);
                out.push(state);
            } else if let Some(c) = self.clusters.get(id) {
                out.push(self.cluster_state(c));
            }
        }
        out
    }

    /// The instances of the clusters, as [`World::describe_instances`] answers them.
    pub fn describe_cluster_instances(&mut self, clusters: &[ClusterId]) -> Vec<InstanceState> {
        let ids = self.cluster_instance_ids(clusters);
        self.describe_instances(&ids)
    }

    /// The ids of the instances of the clusters, in id order (the order pages follow).
    pub fn cluster_instance_ids(&self, clusters: &[ClusterId]) -> Vec<InstanceId> {
        let ids: BTreeSet<&InstanceId> = clusters
            .iter()
            .filter_map(|c| self.clusters.get(c))
            .flat_map(|c| c.members.iter().map(|m| &m.id))
            .filter(|id| self.instances.contains_key(*id))
            .collect();
        ids.into_iter().cloned().collect()
    }

    /// One page of DescribeDBInstances filtered by `db-cluster-id`: the instances of the
    /// clusters from position `from` in id order, at most `max`; the next page's position.
    pub fn describe_cluster_instances_page(
        &mut self,
        clusters: &[ClusterId],
        from: usize,
        max: usize,
    ) -> (Vec<InstanceState>, Option<usize>) {
        let ids = self.cluster_instance_ids(clusters);
        let end = from.saturating_add(max).min(ids.len());
        let page = self.describe_instances(ids.get(from..end).unwrap_or_default());
        (page, (end < ids.len()).then_some(end))
    }

    /// The instances asked for; one changed within a stale-reads lag as it was before.
    pub fn describe_instances(&mut self, ids: &[InstanceId]) -> Vec<InstanceState> {
        let mut seen = BTreeSet::new();
        let mut out = vec![];
        for id in ids.iter().filter(|id| seen.insert(*id)) {
            if let Some(c) = self.stale.instances.get(id, self.now) {
                let (state, taken) = (c.state.clone(), c.taken);
                self.stale_answer("DescribeDBInstances", id.as_str(), taken);
                out.push(state);
            } else if let Some(i) = self.instances.get(id) {
                out.push(self.instance_state(i));
            }
        }
        out
    }

    pub fn failover_cluster(
        &mut self,
        ctx: &CallCtx,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> (Result<(), CloudError>, Option<Effect>) {
        let (writer_zone, target_zone) = match self.check_failover(ctx, cluster, target) {
            Ok(zones) => zones,
            Err(e) => return (Err(e), None),
        };
        self.lag_cluster(cluster);
        self.epoch += 1;
        let epoch = self.epoch;
        let stalled = self.stalled(cluster);
        let c = self.clusters.get_mut(cluster).expect("checked above");
        c.status = DbStatus::FailingOver;
        c.failover = Some(InFlight {
            target: target.clone(),
            epoch,
        });
        if stalled {
            self.note(format!("cluster `{cluster}`: failing over to `{target}` in {target_zone}... and stuck there (stall-failover)"));
        } else {
            let d = self.draw(
                self.topo.timing.aurora_failover,
                "failover",
                cluster.as_str(),
            );
            self.schedule(
                self.now + d,
                Agenda::FailoverDone {
                    cluster: cluster.clone(),
                    epoch,
                },
            );
            self.note(format!(
                "cluster `{cluster}`: failing over to `{target}` in {target_zone} (takes {})",
                fmt_dur(d)
            ));
        }
        (
            Ok(()),
            Some(Effect::FailoverStarted {
                cluster: cluster.clone(),
                target: target.clone(),
                writer_zone_before: writer_zone,
                target_zone,
            }),
        )
    }

    /// Why FailoverDBCluster is refused, if it is; else the writer's zone and the target's.
    fn check_failover(
        &self,
        ctx: &CallCtx,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> Result<(Zone, Zone), CloudError> {
        let Some(c) = self.clusters.get(cluster) else {
            return Err(aws_error(
                ctx,
                "DBClusterNotFoundFault",
                404,
                format!("DBCluster {cluster} not found."),
            ));
        };
        if !c.status.is_available() {
            return Err(aws_error(
                ctx,
                "InvalidDBClusterStateFault",
                400,
                format!(
                    "DB cluster {cluster} is {}; a failover needs it available.",
                    c.status
                ),
            ));
        }
        if !c.members.iter().any(|m| &m.id == target) {
            return Err(aws_error(
                ctx,
                "InvalidParameterValue",
                400,
                format!("{target} is not a member of DB cluster {cluster}."),
            ));
        }
        if &c.writer == target {
            return Err(aws_error(
                ctx,
                "InvalidParameterValue",
                400,
                format!("{target} is already the writer of DB cluster {cluster}."),
            ));
        }
        let writer_zone = self
            .instances
            .get(&c.writer)
            .map(|i| i.zone.clone())
            .unwrap_or_else(|| Zone::new("?"));
        let Some(t) = self.instances.get(target) else {
            return Err(aws_error(
                ctx,
                "DBInstanceNotFound",
                404,
                format!("DBInstance {target} not found."),
            ));
        };
        if self.zone_down(&t.zone) {
            return Err(aws_error(ctx, "InvalidDBClusterStateFault", 400, format!("cannot promote {target}: it does not respond ({} has lost its network); choose a replica in a healthy zone", t.zone)));
        }
        if !t.status.is_available() {
            return Err(aws_error(
                ctx,
                "InvalidDBInstanceState",
                400,
                format!("DB instance {target} is {}, not available.", t.status),
            ));
        }
        Ok((writer_zone, t.zone.clone()))
    }

    pub fn reboot_with_failover(
        &mut self,
        ctx: &CallCtx,
        instance: &InstanceId,
    ) -> (Result<(), CloudError>, Option<Effect>) {
        let (primary, standby) = match self.check_reboot(ctx, instance) {
            Ok(zones) => zones,
            Err(e) => return (Err(e), None),
        };
        self.lag_instance(instance);
        self.epoch += 1;
        let epoch = self.epoch;
        let d = self.draw(
            self.topo.timing.multi_az_failover,
            "reboot",
            instance.as_str(),
        );
        let i = self.instances.get_mut(instance).expect("checked above");
        i.status = DbStatus::Rebooting;
        i.reboot = Some(epoch);
        self.schedule(
            self.now + d,
            Agenda::RebootDone {
                instance: instance.clone(),
                epoch,
            },
        );
        self.note(format!(
            "instance `{instance}`: rebooting with failover to its standby in {standby} (takes {})",
            fmt_dur(d)
        ));
        (
            Ok(()),
            Some(Effect::RebootStarted {
                instance: instance.clone(),
                primary_zone_before: primary,
            }),
        )
    }

    /// Why RebootDBInstance with ForceFailover is refused, if it is; else the primary's
    /// zone and the standby's.
    fn check_reboot(
        &self,
        ctx: &CallCtx,
        instance: &InstanceId,
    ) -> Result<(Zone, Zone), CloudError> {
        let Some(i) = self.instances.get(instance) else {
            return Err(aws_error(
                ctx,
                "DBInstanceNotFound",
                404,
                format!("DBInstance {instance} not found."),
            ));
        };
        if i.cluster.is_some() {
            return Err(aws_error(ctx, "InvalidParameterCombination", 400, "ForceFailover cannot be used with an Aurora DB instance; fail over its cluster instead"));
        }
        let Some(standby) = i.standby.clone() else {
            return Err(aws_error(
                ctx,
                "InvalidParameterCombination",
                400,
                format!("cannot force a failover: DB instance {instance} is not Multi-AZ"),
            ));
        };
        if !i.status.is_available() {
            return Err(aws_error(
                ctx,
                "InvalidDBInstanceState",
                400,
                format!("DB instance {instance} is {}, not available.", i.status),
            ));
        }
        if self.zone_down(&standby) {
            return Err(aws_error(
                ctx,
                "InvalidDBInstanceState",
                400,
                format!("cannot fail over {instance}: its standby in {standby} does not respond"),
            ));
        }
        Ok((i.zone.clone(), standby))
    }

    pub fn create_snapshot(
        &mut self,
        ctx: &CallCtx,
        kind: SnapshotKind,
        source: &str,
        id: &str,
    ) -> (Result<(), CloudError>, Option<Effect>) {
        let status = match self.snapshot_source_status(ctx, kind, source) {
            Ok(status) => status,
            Err(e) => return (Err(e), None),
        };
        let key = (SnapshotKindKey::from(kind), id.to_string());
        if self.snapshots.contains_key(&key) {
            let code = if kind == SnapshotKind::Cluster {
                "DBClusterSnapshotAlreadyExistsFault"
            } else {
                "DBSnapshotAlreadyExists"
            };
            return (
                Err(aws_error(ctx, code, 400, format!("Cannot create the snapshot because a snapshot with the identifier {id} already exists."))),
                Some(Effect::SnapshotAlreadyExists { kind, id: id.to_string(), source: source.to_string() }),
            );
        }
        if !status.is_available() {
            let code = if kind == SnapshotKind::Cluster {
                "InvalidDBClusterStateFault"
            } else {
                "InvalidDBInstanceState"
            };
            return (
                Err(aws_error(
                    ctx,
                    code,
                    400,
                    format!("{source} is {status}; a snapshot needs it available."),
                )),
                None,
            );
        }
        self.lag_snapshot(&key);
        self.snapshots.insert(
            key.clone(),
            SnapshotState {
                id: id.to_string(),
                kind,
                source: source.to_string(),
                status: DbStatus::Creating,
            },
        );
        let d = self.draw(self.topo.timing.snapshot_creation, "snapshot", source);
        self.schedule(self.now + d, Agenda::SnapshotReady { key });
        (
            Ok(()),
            Some(Effect::SnapshotStarted {
                kind,
                id: id.to_string(),
                source: source.to_string(),
            }),
        )
    }

    /// The status of a snapshot's source cluster or instance; not found when it is absent.
    fn snapshot_source_status(
        &self,
        ctx: &CallCtx,
        kind: SnapshotKind,
        source: &str,
    ) -> Result<DbStatus, CloudError> {
        match kind {
            SnapshotKind::Cluster => match self.clusters.get(&ClusterId::new(source)) {
                Some(c) => Ok(c.status.clone()),
                None => Err(aws_error(
                    ctx,
                    "DBClusterNotFoundFault",
                    404,
                    format!("DBCluster {source} not found."),
                )),
            },
            SnapshotKind::Instance => match self.instances.get(&InstanceId::new(source)) {
                Some(i) => Ok(i.status.clone()),
                None => Err(aws_error(
                    ctx,
                    "DBInstanceNotFound",
                    404,
                    format!("DBInstance {source} not found."),
                )),
            },
        }
    }

    /// The snapshots asked for that exist; one created within a stale-reads lag is absent.
    pub fn describe_snapshots(&mut self, kind: SnapshotKind, ids: &[String]) -> Vec<SnapshotState> {
        let op = match kind {
            SnapshotKind::Cluster => "DescribeDBClusterSnapshots",
            SnapshotKind::Instance => "DescribeDBSnapshots",
        };
        let mut seen = BTreeSet::new();
        let mut out = vec![];
        for id in ids.iter().filter(|id| seen.insert(*id)) {
            let key = (SnapshotKindKey::from(kind), id.clone());
            if let Some(c) = self.stale.snapshots.get(&key, self.now) {
                let (state, taken) = (c.state.clone(), c.taken);
                self.stale_answer(op, id, taken);
                out.extend(state);
            } else if let Some(s) = self.snapshots.get(&key) {
                out.push(s.clone());
            }
        }
        out
    }

    // ---- Route 53 ------------------------------------------------------------------------

    pub fn hosted_zone_by_id(&self, ctx: &CallCtx, id: &str) -> Result<HostedZone, CloudError> {
        self.hosted
            .get(id)
            .map(|h| HostedZone {
                id: h.id.clone(),
                name: h.name.clone(),
            })
            .ok_or_else(|| {
                let mut e = aws_error(
                    ctx,
                    "NoSuchHostedZone",
                    404,
                    format!("No hosted zone found with ID: {id}"),
                );
                e.message = format!("no hosted zone has the id {id} ({})", e.message);
                e
            })
    }

    pub fn hosted_zone_by_name(&self, ctx: &CallCtx, name: &str) -> Result<HostedZone, CloudError> {
        let name = crate::cloud::normalize_dns_name(name);
        self.hosted
            .values()
            .find(|h| h.name == name)
            .map(|h| HostedZone {
                id: h.id.clone(),
                name: h.name.clone(),
            })
            .ok_or_else(|| {
                CloudError::new(
                    ErrorKind::NotFound,
                    &ctx.operation,
                    &ctx.resource,
                    format!("no hosted zone is named {name}"),
                )
            })
    }

    pub fn is_hosted_zone_id(&self, s: &str) -> bool {
        self.hosted.contains_key(s) || (!s.contains('.') && s.starts_with('Z'))
    }

    /// The zone's record sets; changed within a stale-reads lag, as they were before.
    pub fn list_record_sets(
        &mut self,
        ctx: &CallCtx,
        zone: &str,
    ) -> Result<Vec<RecordSet>, CloudError> {
        self.list_record_sets_page(ctx, zone, None, usize::MAX)
            .map(|(page, _)| page)
    }

    /// One page of ListResourceRecordSets: at most `max` record sets from `start` on (in key
    /// order), and where the next page starts; changed within a stale-reads lag, as they were.
    pub fn list_record_sets_page(
        &mut self,
        ctx: &CallCtx,
        zone: &str,
        start: Option<&RecordKey>,
        max: usize,
    ) -> Result<(Vec<RecordSet>, Option<RecordKey>), CloudError> {
        let h = self.hosted.get(zone).ok_or_else(|| {
            aws_error(
                ctx,
                "NoSuchHostedZone",
                404,
                format!("No hosted zone found with ID: {zone}"),
            )
        })?;
        let page = |sets: &mut dyn Iterator<Item = &RecordSet>| {
            let mut out: Vec<RecordSet> = sets.take(max.saturating_add(1)).cloned().collect();
            let next = (out.len() > max)
                .then(|| out.pop().map(|r| r.key()))
                .flatten();
            (out, next)
        };
        let Some(c) = self.stale.records.get(zone, self.now) else {
            return Ok(match start {
                None => page(&mut h.records.values()),
                Some(k) => page(&mut h.records.range(k.clone()..).map(|(_, r)| r)),
            });
        };
        let taken = c.taken;
        let answer = page(
            &mut c
                .state
                .iter()
                .filter(|r| start.is_none_or(|k| &r.key() >= k)),
        );
        self.stale_answer(&ctx.operation, zone, taken);
        Ok(answer)
    }

    pub fn change_record_sets(
        &mut self,
        ctx: &CallCtx,
        zone: &str,
        changes: &[RecordChange],
    ) -> (Result<ChangeInfo, CloudError>, Option<Effect>) {
        if let Err(e) = self.check_change_batch(ctx, zone, changes) {
            return (Err(e), None);
        }
        let now = self.now;
        self.next_change += 1;
        let id = change_id(self.next_change);
        self.lag_records(zone, &id);
        let h = self.hosted.get_mut(zone).expect("checked above");
        let (changed, unchanged) = h.apply(changes);
        h.last_change = Some(now);
        let zone_name = h.name.clone();
        self.changes.insert(id.clone(), ChangeStatus::Pending);
        self.pending_changes += 1;
        let d = self.draw(self.topo.timing.route53_insync, "insync", zone);
        self.schedule(now + d, Agenda::ChangeInsync { id: id.clone() });
        let delta = self.record_placements_of(zone, changes);
        self.record_placements(delta);
        self.traffic_dns_changed();
        let info = ChangeInfo {
            id: id.clone(),
            status: ChangeStatus::Pending,
        };
        (
            Ok(info),
            Some(Effect::RecordsChanged {
                hosted_zone: zone_name,
                change_id: id,
                changed,
                unchanged,
            }),
        )
    }

    /// Why Route 53 refuses a ChangeResourceRecordSets batch, if it does: no such zone, no
    /// change, a prior request on the zone still in its window, the batch's limits, a change
    /// that does not fit the zone's records.
    fn check_change_batch(
        &self,
        ctx: &CallCtx,
        zone: &str,
        changes: &[RecordChange],
    ) -> Result<(), CloudError> {
        let q = &self.topo.quotas;
        let Some(h) = self.hosted.get(zone) else {
            return Err(aws_error(
                ctx,
                "NoSuchHostedZone",
                404,
                format!("No hosted zone found with ID: {zone}"),
            ));
        };
        if changes.is_empty() {
            return Err(CloudError::new(
                ErrorKind::InvalidRequest,
                &ctx.operation,
                &ctx.resource,
                "no changes to send",
            ));
        }
        if let Some(last) = h.last_change {
            if self.now < last + q.route53_prior_request_window {
                return Err(aws_error(ctx, "PriorRequestNotComplete", 400, "The request was rejected because Route 53 was still processing a prior request."));
            }
        }
        check_batch_limits(ctx, changes, q)?;
        for c in changes {
            h.check_change(ctx, c)?;
        }
        Ok(())
    }

    /// The change's status; a change made within a stale-reads lag is not found yet.
    pub fn get_change(&mut self, ctx: &CallCtx, id: &str) -> Result<ChangeInfo, CloudError> {
        let status = match self.stale.changes.get(id, self.now) {
            Some(c) => {
                let (state, taken) = (c.state, c.taken);
                self.stale_answer(&ctx.operation, id, taken);
                state
            }
            None => self.changes.get(id).copied(),
        };
        status
            .map(|s| ChangeInfo {
                id: id.to_string(),
                status: s,
            })
            .ok_or_else(|| {
                aws_error(
                    ctx,
                    "NoSuchChange",
                    404,
                    format!("A change with the specified change ID does not exist: {id}"),
                )
            })
    }

    // ---- traffic -------------------------------------------------------------------------

    fn zones_down(&self) -> BTreeSet<Zone> {
        self.topo
            .zones
            .iter()
            .filter(|z| self.zone_down(z))
            .cloned()
            .collect()
    }

    /// What an HTTP request is to the traffic side of the world (the signal, a tier's apply
    /// or revert), with a name for it when no endpoint of the topology has its URL.
    pub fn traffic_target(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Option<(super::traffic::Target, String)> {
        let t = self.traffic.as_ref()?;
        let target = t.target(method, url, body)?;
        let name = t.target_name(&target);
        Some((target, name))
    }

    /// Serve a request to the traffic side: (status, body, note for the timeline).
    pub fn traffic_call(&mut self, target: &super::traffic::Target) -> (u16, String, String) {
        let (now, down) = (self.now, self.zones_down());
        let Some(t) = self.traffic.as_mut() else {
            return (404, String::new(), "no traffic model".into());
        };
        match *target {
            super::traffic::Target::Signal => {
                let (body, note) = t.read_signal(now, &down);
                (200, body, note)
            }
            super::traffic::Target::Tier { tier, shed } => {
                let (id, note) = t.request(now, tier, shed);
                let at = now + t.lag();
                self.schedule(at, Agenda::TrafficEffect { tier, shed, id });
                (200, "{\"ok\": true}".into(), note)
            }
        }
    }

    /// Note the load figures when they changed (a zone failed or came back, a tier was shed
    /// or restored).
    fn traffic_observe(&mut self) {
        let (now, down) = (self.now, self.zones_down());
        if let Some(note) = self.traffic.as_mut().and_then(|t| t.observe(now, &down)) {
            self.note(note);
        }
    }

    /// After a Route 53 change: a tier shed by weights is shed when its group's weighted
    /// records have its apply weights, and restored when they no longer do.
    fn traffic_dns_changed(&mut self) {
        let Some(t) = &self.traffic else { return };
        let mut states = vec![];
        for (tier, group, apply) in t.dns_tiers() {
            let sets: Vec<&RecordSet> = self
                .topo
                .hosted_zones
                .iter()
                .filter(|h| h.group.as_deref() == Some(group))
                .filter_map(|h| self.hosted.get(&h.id))
                .flat_map(|h| h.records.values())
                .filter(|r| r.weight.is_some() && r.set_identifier.is_some())
                .collect();
            let applied = !sets.is_empty()
                && apply.iter().all(|(z, w)| {
                    sets.iter()
                        .filter(|r| r.set_identifier.as_deref() == Some(z.as_str()))
                        .all(|r| r.weight == Some(*w))
                });
            states.push((tier, applied));
        }
        let now = self.now;
        for (tier, applied) in states {
            let Some(t) = self.traffic.as_mut() else {
                return;
            };
            if let Some(id) = t.dns_state(now, tier, applied) {
                let at = now + t.lag();
                self.schedule(
                    at,
                    Agenda::TrafficEffect {
                        tier,
                        shed: applied,
                        id,
                    },
                );
            }
        }
    }

    /// What the traffic did, for the report.
    pub fn traffic_report(&self) -> Option<super::traffic::TrafficReport> {
        self.traffic.as_ref().map(|t| t.report())
    }

    // ---- HTTP ----------------------------------------------------------------------------

    /// The endpoint serving a URL (query and fragment ignored): its name and zone.
    pub fn endpoint_for(&self, url: &str) -> Option<(String, Option<Zone>, String)> {
        let base = |u: &str| {
            u.split(['?', '#'])
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string()
        };
        let want = base(url);
        self.topo
            .endpoints
            .iter()
            .find(|(_, e)| base(&e.url) == want)
            .map(|(n, e)| (n.clone(), e.zone.clone(), e.body.clone()))
    }
}

/// The services a stale-reads fault lags, for people.
fn stale_services(service: &OpMatch) -> &'static str {
    match service {
        OpMatch::Service(Service::Rds) => "RDS",
        OpMatch::Service(Service::Route53) => "Route 53",
        _ => "RDS and Route 53",
    }
}

fn op_text(op: &OpMatch) -> String {
    match op {
        OpMatch::All => "API".into(),
        OpMatch::Service(s) => format!("{s}"),
        OpMatch::Operation(o) => o.clone(),
    }
}
