//! The simulated cloud: a deterministic, seeded model of RDS, Route 53, ARC, CloudWatch and
//! HTTP endpoints behind the very ports the AWS adapters implement (`Databases`, `Dns`,
//! `ZonalShifts`, `GlobalDatabases`, `Metrics`, `HttpClient`, `Clock`), so the same planner
//! and executor run against it.
//!
//! - [`topology`]: the world as a TOML file (zones, clusters, instances, records, endpoints,
//!   timings, quotas, faults) and the environment runbooks bind against ([`environment_for`]).
//! - [`generate`]: `[generate]`, many clusters and records from a few lines.
//! - [`faults`]: faults on the timeline and their one-line syntax (`az-down us-west-2a at 0s`).
//! - [`world`]: the state and its rules: what each call does and answers, what happens as
//!   time passes, quotas as token buckets, the fault layer.
//! - [`time`]: virtual time; a 30-minute scenario runs in milliseconds.
//! - [`stale`]: the pre-mutation copies behind eventually consistent reads.
//! - [`timeline`]: what a simulation records; [`invariants`]: what must hold at the end.
//! - [`regions`] and [`global`]: several regions, Aurora global databases (switchover,
//!   failover with data loss, replication lag), the health of each region, behind
//!   `SimGlobalDatabases` (`GlobalDatabases`) and `SimMetrics` (`Metrics`).
//!
//! Architecture invariants: no wall clock and no entropy (every draw comes from
//! `fastrand::Rng::with_seed`, every map is a `BTreeMap`), so one seed gives one timeline;
//! errors are `CloudError`s with the kind and AWS code the AWS adapter would report, so the
//! engine's retry path (`cloud::retry`) is exercised exactly as against AWS.
//!
//! How the simulated services answer:
//! - Reads are paged as AWS pages them, each page one call (counted, paced, throttled and
//!   timed like any other): Describe* take at most 100 ids per filter and answer at most 100
//!   records per page (DescribeDBInstances by cluster follows pages of 100 instances);
//!   ListResourceRecordSets answers at most 300 record sets per page.
//! - RDS: Describe* list what exists (missing ids are absent); FailoverDBCluster sets the
//!   cluster `failing-over` and flips the writer when the failover time has passed, unless the
//!   target's zone went down meanwhile (then the failover fails and the writer stays);
//!   RebootDBInstance with ForceFailover sets the instance `rebooting`, then swaps primary and
//!   standby zones; snapshots are `creating`, then `available`. In a zone that is down, RDS
//!   keeps reporting instances `available` (the control plane does not notice a network
//!   partition, as in the seed incident), but a failover to an instance there is refused with
//!   `InvalidDBClusterStateFault`.
//! - Route 53: a change applies to the zone at once (reads see it), is PENDING, then INSYNC;
//!   limits and CREATE/DELETE mismatches answer `InvalidChangeBatch`; a change to a zone within
//!   the prior-request window of the previous one answers `PriorRequestNotComplete`.
//! - Eventually consistent reads ([`stale`], the `stale-reads` fault): after a mutation, reads
//!   of the resource it touched answer it as it was just before, until the lag has passed
//!   (a failed-over cluster `available` with its old writer, a new snapshot or Route 53 change
//!   not found, a zone's records as they were); each stale answer is noted on the timeline.
//!   Mutating calls always see the true state.
//! - Quotas: one RDS bucket (burst 300, 12/s) shared by every RDS call, one Route 53 bucket
//!   (burst 50, 10/s); an empty bucket answers `Throttling`.
//! - HTTP endpoints answer 200 unless a fault says otherwise; an endpoint in a zone that is
//!   down gets no answer until the request's timeout.
//! - Traffic ([`traffic`]): with a `[traffic]` ladder and a `[load]` model, the signal URL
//!   answers the error rate computed from demand and the capacity of the zones that are up,
//!   and a call matching a tier's apply (revert) action sheds (restores) it after a lag. These
//!   URLs answer even when no endpoint of the topology has them (an external SaaS); declare
//!   one as an endpoint with a `zone` to make it go dark with that zone.

pub mod arc;
pub mod endpoint;
pub mod faults;
pub mod generate;
pub mod global;
pub mod history;
pub mod invariants;
pub mod probes;
pub(crate) mod raw;
pub mod regions;
pub mod stale;
pub mod time;
pub mod timeline;
pub mod topology;
pub mod traffic;
pub mod world;

pub use faults::{parse_faults, Fault, FaultError, FaultKind, Service};
pub use history::{History, Placements};
pub use invariants::{FailedZones, InvariantResult, InvariantStatus};
pub use time::VirtualTime;
pub use timeline::{ApiCall, Effect, Event, FaultPhase, TimelineEntry};
pub use topology::{environment_for, Topology, TopologyError};
pub use traffic::{LoadSample, LoadSpec, SignalReading, TierCall, TrafficReport};
pub use world::FinalState;

use crate::cloud::model::{RDS_PAGE_SIZE, ROUTE53_PAGE_SIZE};
use crate::cloud::rate::{Api, Class, MeterSet, RateLimiter};
use crate::cloud::retry::{
    RetryPolicy, RetryingDatabases, RetryingDns, RetryingGlobal, RetryingZonalShifts,
};
use crate::cloud::{
    ChangeInfo, Clock, CloudError, ClusterState, Databases, Dns, ErrorKind, GlobalClusterState,
    GlobalDatabases, HostedZone, HttpClient, HttpRequest, HttpResponse, InstanceState,
    ManagedResource, Metrics, RecordChange, RecordKey, RecordSet, SnapshotKind, SnapshotState,
    ZonalShift, ZonalShifts,
};
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use world::{CallCtx, Gate, World};

/// The simulated cloud: the world, its virtual clock, and the ports onto it.
pub struct SimCloud {
    world: Mutex<World>,
    time: Arc<VirtualTime>,
    start: SystemTime,
}

/// The raw ports of one caller of the simulated world (see [`SimCloud::raw_ports_as`]).
pub struct RawPorts {
    pub db: Arc<SimDatabases>,
    pub dns: Arc<SimDns>,
    pub arc: Arc<SimZonalShifts>,
    pub http: Arc<SimHttp>,
    /// Aurora global databases: one limiter per region, as the AWS adapter.
    pub global: Arc<SimGlobalDatabases>,
    /// CloudWatch, where the topology has global clusters (as [`SimCloud::ports`]).
    pub metrics: Option<Arc<dyn Metrics>>,
    /// The process's own limiter (each process paces itself; they share the account's quota).
    pub meter: Arc<RateLimiter>,
}

/// `Clock` on virtual time: `now()` is the topology's start plus the virtual time elapsed.
pub struct SimClock {
    time: Arc<VirtualTime>,
    start: SystemTime,
}

#[async_trait]
impl Clock for SimClock {
    fn now(&self) -> SystemTime {
        self.start + self.time.now()
    }
    async fn sleep(&self, d: Duration) {
        self.time.sleep(d).await
    }
}

impl SimCloud {
    /// A world built from the topology with the given faults (the topology's own `faults`
    /// are not added: pass them in `faults` if they should apply). Virtual time only moves
    /// while [`time::drive`] runs on the same runtime (see [`SimCloud::driver`]).
    pub fn new(topology: &Topology, faults: &[Fault], seed: u64) -> Arc<SimCloud> {
        Arc::new(SimCloud {
            world: Mutex::new(World::new(topology, faults, seed)),
            time: VirtualTime::new(),
            start: topology.start,
        })
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The world, brought up to the current virtual time.
    fn world(&self) -> MutexGuard<'_, World> {
        let mut w = self.lock();
        w.advance_to(self.time.now());
        w
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.time.now()
    }

    pub fn virtual_time(&self) -> Arc<VirtualTime> {
        self.time.clone()
    }

    /// The future that moves virtual time; spawn it on the runtime the simulation runs on.
    /// It returns when every task waits and no timer is left (the simulation stalled).
    pub fn driver(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        time::drive(self.time.clone())
    }

    pub fn clock(&self) -> Arc<SimClock> {
        Arc::new(SimClock {
            time: self.time.clone(),
            start: self.start,
        })
    }

    /// The global database port of one caller: a limiter per region, made on first use.
    pub fn global_databases(self: &Arc<Self>, caller: Caller) -> Arc<SimGlobalDatabases> {
        self.global_databases_metered(caller, None)
    }

    /// [`Self::global_databases`], each region's limiter also counted in `meter`.
    fn global_databases_metered(
        self: &Arc<Self>,
        caller: Caller,
        meter: Option<Arc<MeterSet>>,
    ) -> Arc<SimGlobalDatabases> {
        Arc::new(SimGlobalDatabases {
            cloud: self.clone(),
            limiters: Mutex::new(BTreeMap::new()),
            caller,
            meter,
        })
    }

    /// The CloudWatch port (the replication lag at a promotion).
    pub fn metrics(self: &Arc<Self>, caller: Caller) -> Arc<SimMetrics> {
        Arc::new(SimMetrics {
            cloud: self.clone(),
            caller,
        })
    }

    /// The topology has Aurora global databases.
    pub fn has_global(&self) -> bool {
        !self.lock().topo.multi_region.global_clusters.is_empty()
    }

    /// The replication lag of a global cluster now (ms), from the model.
    pub fn global_lag_ms(&self, id: &GlobalClusterId) -> Option<f64> {
        self.world().global_lag_ms(id)
    }

    /// The raw ports (no retries, no client-side pacing).
    pub fn databases(self: &Arc<Self>) -> Arc<SimDatabases> {
        Arc::new(SimDatabases {
            cloud: self.clone(),
            limiter: None,
            caller: None,
        })
    }
    pub fn dns(self: &Arc<Self>) -> Arc<SimDns> {
        Arc::new(SimDns {
            cloud: self.clone(),
            limiter: None,
            caller: None,
        })
    }
    pub fn http(self: &Arc<Self>) -> Arc<SimHttp> {
        Arc::new(SimHttp {
            cloud: self.clone(),
            caller: None,
        })
    }

    /// The ports (no retries; paced by a limiter of their own) of one caller among several
    /// sharing this world (a process of a multi-actor simulation): each call it makes is
    /// recorded on the timeline with its name ([`ApiCall::caller`]).
    pub fn raw_ports_as(self: &Arc<Self>, caller: &str) -> RawPorts {
        let caller: Caller = Some(Arc::from(caller));
        let limiter = self.limiter();
        RawPorts {
            db: Arc::new(SimDatabases {
                cloud: self.clone(),
                limiter: Some(limiter.clone()),
                caller: caller.clone(),
            }),
            dns: Arc::new(SimDns {
                cloud: self.clone(),
                limiter: Some(limiter.clone()),
                caller: caller.clone(),
            }),
            arc: Arc::new(SimZonalShifts {
                cloud: self.clone(),
                limiter: Some(limiter.clone()),
                caller: caller.clone(),
            }),
            meter: limiter,
            global: self.global_databases(caller.clone()),
            metrics: self
                .has_global()
                .then(|| self.metrics(caller.clone()) as Arc<dyn Metrics>),
            http: Arc::new(SimHttp {
                cloud: self.clone(),
                caller,
            }),
        }
    }

    /// The ports a run uses, with the retry policy applied exactly as for AWS (seeded jitter).
    /// Each call `ports` returns is one client (one process): its own limiter, paced by the
    /// account's quotas as the topology models them.
    pub fn ports(self: &Arc<Self>, policy: RetryPolicy, seed: u64) -> Ports {
        let clock: Arc<dyn Clock> = self.clock();
        let limiter = self.limiter();
        let meter = MeterSet::of(limiter.clone());
        Ports {
            global: Some(Arc::new(RetryingGlobal::new(
                self.global_databases_metered(None, Some(meter.clone())),
                policy.clone(),
                clock.clone(),
                Some(seed),
            ))),
            // CloudWatch (the data at risk read before a failover) only where the topology
            // has global clusters: a regional world keeps the calls and figures it had.
            metrics: self
                .has_global()
                .then(|| self.metrics(None) as Arc<dyn Metrics>),
            db: Arc::new(RetryingDatabases::new(
                Arc::new(SimDatabases {
                    cloud: self.clone(),
                    limiter: Some(limiter.clone()),
                    caller: None,
                }),
                policy.clone(),
                clock.clone(),
                Some(seed),
            )),
            dns: Arc::new(RetryingDns::new(
                Arc::new(SimDns {
                    cloud: self.clone(),
                    limiter: Some(limiter.clone()),
                    caller: None,
                }),
                policy.clone(),
                clock.clone(),
                Some(seed.wrapping_add(0x5DEE_CE66)),
            )),
            arc: Arc::new(RetryingZonalShifts::new(
                Arc::new(SimZonalShifts {
                    cloud: self.clone(),
                    limiter: Some(limiter.clone()),
                    caller: None,
                }),
                policy,
                clock.clone(),
                Some(seed.wrapping_add(0xA2C)),
            )),
            http: self.http(),
            clock,
            meter,
            health: None,
        }
    }

    /// A client-side limiter on virtual time, sized by the account's quotas as the topology
    /// models them.
    fn limiter(&self) -> Arc<RateLimiter> {
        let quotas = self.lock().topo.quotas.client();
        Arc::new(RateLimiter::new(quotas, self.clock()))
    }

    /// A reporter that appends the engine's progress events to the timeline, then passes
    /// them on to `forward` (e.g. a terminal), if any.
    pub fn reporter(self: &Arc<Self>, forward: Option<Arc<dyn Reporter>>) -> Arc<SimReporter> {
        Arc::new(SimReporter {
            cloud: self.clone(),
            forward,
        })
    }

    /// Add a note of the simulator to the timeline.
    pub fn note(&self, text: impl Into<String>) {
        self.time.touch();
        self.world().note(text);
    }

    /// Play everything due by now (call before reading the final state).
    pub fn settle(&self) {
        drop(self.world());
    }

    pub fn timeline(&self) -> Vec<TimelineEntry> {
        self.world().timeline.clone()
    }

    pub fn history(&self) -> History {
        self.world().history.clone()
    }

    pub fn final_state(&self) -> FinalState {
        self.world().final_state()
    }

    /// When the last Route 53 change went INSYNC (`Some(None)`: no change was made; `None`:
    /// one is still PENDING).
    pub fn changes_insync_at(&self) -> Option<Option<Duration>> {
        self.world().changes_insync_at()
    }

    /// What the simulated traffic did (load samples, signal readings, tier calls), when the
    /// topology has a ladder and a load model.
    pub fn traffic_report(&self) -> Option<TrafficReport> {
        self.world().traffic_report()
    }

    /// How many pre-mutation copies the stale-reads faults keep now (each is dropped once its
    /// lag has passed).
    pub fn stale_copies(&self) -> usize {
        self.world().stale_copies()
    }

    /// Zones down or flapping now.
    pub fn failed_zones_now(&self) -> std::collections::BTreeSet<crate::types::Zone> {
        self.world().failed_zones_now()
    }

    /// One API call: latency, then the fault layer, then the service's rules; recorded.
    /// One call of a client: paced by its limiter (if it has one: the raw ports have none),
    /// then answered by the world.
    async fn paced<T>(
        &self,
        limiter: Option<&RateLimiter>,
        ctx: CallCtx,
        op: impl FnOnce(&mut World) -> (Result<T, CloudError>, Option<Effect>) + Send,
    ) -> Result<T, CloudError>
    where
        T: Send,
    {
        let Some(l) = limiter else {
            return self.api(ctx, op).await;
        };
        let api = match ctx.service {
            Service::Rds => Api::Rds,
            Service::Route53 => Api::Route53,
            Service::Arc => Api::Arc,
            // As the AWS adapter: CloudWatch reads are not paced by the limiter.
            Service::Http | Service::CloudWatch => return self.api(ctx, op).await,
        };
        let class = match (ctx.mutating, ctx.operation.contains("Snapshot")) {
            (false, _) => Class::Read,
            (true, true) => Class::Background,
            (true, false) => Class::Mutate,
        };
        if ctx.operation == "ChangeResourceRecordSets" {
            let zone = ctx.resource.clone();
            l.change_zone(&zone, || self.api(ctx, op)).await
        } else {
            l.call(api, class, || self.api(ctx, op)).await
        }
    }

    async fn api<T>(
        &self,
        ctx: CallCtx,
        op: impl FnOnce(&mut World) -> (Result<T, CloudError>, Option<Effect>) + Send,
    ) -> Result<T, CloudError>
    where
        T: Send,
    {
        self.time.touch();
        let latency = self.lock().api_latency(ctx.service, &ctx.operation);
        self.time.sleep(latency).await;
        let (applied, effect) = {
            let mut w = self.world();
            match w.gate(&ctx) {
                Gate::Go => {
                    let (r, effect) = op(&mut w);
                    w.record_call(&ctx, r.as_ref().map(|_| None), None, effect);
                    return r;
                }
                Gate::Refuse {
                    err,
                    applied: false,
                    note,
                    ..
                } => {
                    w.record_call(&ctx, Err(&err), Some(note), None);
                    return Err(err);
                }
                Gate::Refuse {
                    err,
                    applied: true,
                    note,
                    ..
                } => {
                    let (r, effect) = op(&mut w);
                    return match r {
                        Ok(_) => {
                            w.record_call(
                                &ctx,
                                Err(&err),
                                Some(format!(
                                    "{note}: the call took effect, only its answer was an error"
                                )),
                                effect,
                            );
                            Err(err)
                        }
                        Err(e) => {
                            w.record_call(&ctx, Err(&e), None, effect);
                            Err(e)
                        }
                    };
                }
                Gate::Hang { applied: false } => (false, None),
                Gate::Hang { applied: true } => {
                    let (r, effect) = op(&mut w);
                    if let Err(e) = r {
                        w.record_call(&ctx, Err(&e), None, effect);
                        return Err(e);
                    }
                    (true, effect)
                }
            }
        };
        let applied_at = self.elapsed();
        let timeout = self.lock().topo.timing.operation_timeout;
        match timeout {
            Some(d) => self.time.sleep(d).await,
            None => std::future::pending::<()>().await,
        }
        let waited = timeout.unwrap_or_default();
        let err = CloudError::new(
            ErrorKind::Transient,
            &ctx.operation,
            &ctx.resource,
            format!(
                "no answer within the operation timeout ({})",
                world::fmt_dur(waited)
            ),
        );
        let note = if applied {
            format!(
                "injected by timeout-call: the call took effect at {}, but no answer came back",
                world::fmt_dur(applied_at)
            )
        } else {
            "injected by timeout-call: no answer".to_string()
        };
        self.world()
            .record_call(&ctx, Err(&err), Some(note), effect);
        Err(err)
    }

    fn progress(&self, p: Progress) {
        self.time.touch();
        self.world().push_event(Event::Engine { progress: p });
    }
}

fn ctx(
    caller: &Caller,
    service: Service,
    operation: &str,
    resource: impl Into<String>,
    targets: Vec<String>,
    mutating: bool,
) -> CallCtx {
    CallCtx {
        service,
        operation: operation.to_string(),
        resource: resource.into(),
        targets,
        mutating,
        caller: caller.as_deref().map(String::from),
        region: None,
    }
}

/// Who makes the calls of a port: `None` in a simulation of runs one after the other; the run's
/// id when several actors share one world ([`SimCloud::raw_ports_as`]), recorded with each call.
pub type Caller = Option<Arc<str>>;

fn ids<S: std::fmt::Display>(v: &[S]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Appends the engine's progress events to the timeline.
pub struct SimReporter {
    cloud: Arc<SimCloud>,
    forward: Option<Arc<dyn Reporter>>,
}

impl Reporter for SimReporter {
    fn report(&self, p: Progress) {
        if let Some(f) = &self.forward {
            f.report(p.clone());
        }
        self.cloud.progress(p);
    }
}

/// `Databases` on the simulated world.
pub struct SimDatabases {
    cloud: Arc<SimCloud>,
    limiter: Option<Arc<RateLimiter>>,
    caller: Caller,
}

/// Distinct ids in the caller's order, as the AWS adapter sends them.
fn distinct<S: Clone + Ord>(ids: &[S]) -> Vec<S> {
    let mut seen = std::collections::BTreeSet::new();
    ids.iter().filter(|i| seen.insert(*i)).cloned().collect()
}

/// The resource a page of a Describe names on the timeline: the chunk's ids, and the page
/// number after the first.
fn page_resource<S: std::fmt::Display>(chunk: &[S], page: usize) -> String {
    let ids = crate::cloud::describe_ids(&ids(chunk));
    if page > 1 {
        format!("{ids} (page {page})")
    } else {
        ids
    }
}

impl SimDatabases {
    /// One Describe call per chunk of at most [`RDS_PAGE_SIZE`] ids, as the AWS adapter
    /// filters them; with at most that many ids a chunk's answer fits one page.
    async fn describe_by_id<S, T>(
        &self,
        operation: &str,
        ids_: &[S],
        answer: impl Fn(&mut World, &[S]) -> Vec<T> + Send + Sync,
    ) -> Result<Vec<T>, CloudError>
    where
        S: Clone + Ord + std::fmt::Display + Send + Sync,
        T: Send,
    {
        let mut out = vec![];
        for chunk in distinct(ids_).chunks(RDS_PAGE_SIZE) {
            let c = ctx(
                &self.caller,
                Service::Rds,
                operation,
                page_resource(chunk, 1),
                ids(chunk),
                false,
            );
            let page = self
                .cloud
                .paced(self.limiter.as_deref(), c, |w| (Ok(answer(w, chunk)), None))
                .await?;
            out.extend(page);
        }
        Ok(out)
    }
}

#[async_trait]
impl Databases for SimDatabases {
    async fn describe_clusters(&self, ids_: &[ClusterId]) -> Result<Vec<ClusterState>, CloudError> {
        self.describe_by_id("DescribeDBClusters", ids_, |w, chunk| {
            w.describe_clusters(chunk)
        })
        .await
    }
    /// DescribeDBInstances filtered by `db-cluster-id`: per chunk of at most 100 clusters,
    /// pages of at most 100 instances, each page a call.
    async fn describe_cluster_instances(
        &self,
        clusters: &[ClusterId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        let mut out = vec![];
        for chunk in distinct(clusters).chunks(RDS_PAGE_SIZE) {
            let (mut from, mut page) = (Some(0), 1);
            while let Some(at) = from {
                let c = ctx(
                    &self.caller,
                    Service::Rds,
                    "DescribeDBInstances",
                    page_resource(chunk, page),
                    ids(chunk),
                    false,
                );
                let (items, next) = self
                    .cloud
                    .paced(self.limiter.as_deref(), c, |w| {
                        (
                            Ok(w.describe_cluster_instances_page(chunk, at, RDS_PAGE_SIZE)),
                            None,
                        )
                    })
                    .await?;
                out.extend(items);
                (from, page) = (next, page + 1);
            }
        }
        Ok(out)
    }
    async fn describe_instances(
        &self,
        ids_: &[InstanceId],
    ) -> Result<Vec<InstanceState>, CloudError> {
        self.describe_by_id("DescribeDBInstances", ids_, |w, chunk| {
            w.describe_instances(chunk)
        })
        .await
    }
    async fn failover_cluster(
        &self,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> Result<(), CloudError> {
        let c = ctx(
            &self.caller,
            Service::Rds,
            "FailoverDBCluster",
            format!("{cluster} (target {target})"),
            vec![cluster.to_string(), target.to_string()],
            true,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                w.failover_cluster(&cc, cluster, target)
            })
            .await
    }
    async fn reboot_with_failover(&self, instance: &InstanceId) -> Result<(), CloudError> {
        let c = ctx(
            &self.caller,
            Service::Rds,
            "RebootDBInstance",
            instance.as_str(),
            vec![instance.to_string()],
            true,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                w.reboot_with_failover(&cc, instance)
            })
            .await
    }
    async fn create_cluster_snapshot(
        &self,
        cluster: &ClusterId,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let c = ctx(
            &self.caller,
            Service::Rds,
            "CreateDBClusterSnapshot",
            format!("{cluster} (snapshot {snapshot_id})"),
            vec![cluster.to_string(), snapshot_id.to_string()],
            true,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                w.create_snapshot(&cc, SnapshotKind::Cluster, cluster.as_str(), snapshot_id)
            })
            .await
    }
    async fn create_instance_snapshot(
        &self,
        instance: &InstanceId,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let c = ctx(
            &self.caller,
            Service::Rds,
            "CreateDBSnapshot",
            format!("{instance} (snapshot {snapshot_id})"),
            vec![instance.to_string(), snapshot_id.to_string()],
            true,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                w.create_snapshot(&cc, SnapshotKind::Instance, instance.as_str(), snapshot_id)
            })
            .await
    }
    async fn describe_snapshots(
        &self,
        kind: SnapshotKind,
        ids_: &[String],
    ) -> Result<Vec<SnapshotState>, CloudError> {
        let op = match kind {
            SnapshotKind::Cluster => "DescribeDBClusterSnapshots",
            SnapshotKind::Instance => "DescribeDBSnapshots",
        };
        self.describe_by_id(op, ids_, move |w, chunk| w.describe_snapshots(kind, chunk))
            .await
    }
}

/// `Dns` on the simulated world.
pub struct SimDns {
    cloud: Arc<SimCloud>,
    limiter: Option<Arc<RateLimiter>>,
    caller: Caller,
}

/// ARC zonal shift on the simulated world (see [`arc`]).
pub struct SimZonalShifts {
    cloud: Arc<SimCloud>,
    limiter: Option<Arc<RateLimiter>>,
    caller: Caller,
}

impl SimZonalShifts {
    async fn call<T: Send>(
        &self,
        operation: &str,
        resource: &str,
        mutating: bool,
        op: impl FnOnce(&mut World) -> Result<T, CloudError> + Send,
    ) -> Result<T, CloudError> {
        let c = ctx(
            &self.caller,
            Service::Arc,
            operation,
            resource,
            vec![resource.to_string()],
            mutating,
        );
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| (op(w), None))
            .await
    }
}

#[async_trait]
impl ZonalShifts for SimZonalShifts {
    async fn get_managed_resource(&self, arn: &str) -> Result<ManagedResource, CloudError> {
        self.call("GetManagedResource", arn, false, |w| {
            w.arc_get_managed_resource(arn)
        })
        .await
    }
    async fn list_zonal_shifts(&self, arn: &str) -> Result<Vec<ZonalShift>, CloudError> {
        self.call("ListZonalShifts", arn, false, |w| {
            w.arc_list_zonal_shifts(arn)
        })
        .await
    }
    async fn start_zonal_shift(
        &self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> Result<ZonalShift, CloudError> {
        self.call("StartZonalShift", arn, true, |w| {
            w.arc_start(arn, away_from, expires_in, comment)
        })
        .await
    }
    async fn cancel_zonal_shift(&self, id: &str) -> Result<Option<ZonalShift>, CloudError> {
        match self
            .call("CancelZonalShift", id, true, |w| w.arc_cancel(id))
            .await
        {
            Ok(s) => Ok(Some(s)),
            // As the AWS adapter: a shift no longer active is nothing to cancel.
            Err(e) if e.message.contains("ZonalShiftStatusNotActive") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn bare(s: &str, prefix: &str) -> String {
    s.trim()
        .trim_start_matches('/')
        .trim_start_matches(prefix)
        .trim_start_matches('/')
        .to_string()
}

#[async_trait]
impl Dns for SimDns {
    async fn find_hosted_zone(&self, id_or_name: &str) -> Result<HostedZone, CloudError> {
        let id = bare(id_or_name, "hostedzone");
        if self.cloud.lock().is_hosted_zone_id(&id) {
            let c = ctx(
                &self.caller,
                Service::Route53,
                "GetHostedZone",
                id.clone(),
                vec![id.clone()],
                false,
            );
            let cc = c.clone();
            self.cloud
                .paced(self.limiter.as_deref(), c, move |w| {
                    (w.hosted_zone_by_id(&cc, &id), None)
                })
                .await
        } else {
            let name = crate::cloud::normalize_dns_name(id_or_name);
            let c = ctx(
                &self.caller,
                Service::Route53,
                "ListHostedZonesByName",
                name.clone(),
                vec![name.clone()],
                false,
            );
            let cc = c.clone();
            self.cloud
                .paced(self.limiter.as_deref(), c, move |w| {
                    (w.hosted_zone_by_name(&cc, &name), None)
                })
                .await
        }
    }
    /// Pages of at most [`ROUTE53_PAGE_SIZE`] record sets, each page a call.
    async fn list_record_sets(&self, zone_id: &str) -> Result<Vec<RecordSet>, CloudError> {
        let zone = bare(zone_id, "hostedzone");
        let mut out = vec![];
        let (mut start, mut page): (Option<RecordKey>, usize) = (None, 1);
        loop {
            let resource = match &start {
                None => zone.clone(),
                Some(k) => format!("{zone} (page {page}, from {k})"),
            };
            let c = ctx(
                &self.caller,
                Service::Route53,
                "ListResourceRecordSets",
                resource,
                vec![zone.clone()],
                false,
            );
            let cc = c.clone();
            let (items, next) = self
                .cloud
                .paced(self.limiter.as_deref(), c, |w| {
                    let r = w.list_record_sets_page(&cc, &zone, start.as_ref(), ROUTE53_PAGE_SIZE);
                    (r, None)
                })
                .await?;
            out.extend(items);
            match next {
                None => return Ok(out),
                Some(k) => (start, page) = (Some(k), page + 1),
            }
        }
    }
    async fn change_record_sets(
        &self,
        zone_id: &str,
        _comment: &str,
        changes: &[RecordChange],
    ) -> Result<ChangeInfo, CloudError> {
        let zone = bare(zone_id, "hostedzone");
        let c = ctx(
            &self.caller,
            Service::Route53,
            "ChangeResourceRecordSets",
            zone.clone(),
            vec![zone.clone()],
            true,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                w.change_record_sets(&cc, &zone, changes)
            })
            .await
    }
    async fn get_change(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        let id = bare(change_id, "change");
        let c = ctx(
            &self.caller,
            Service::Route53,
            "GetChange",
            id.clone(),
            vec![id.clone()],
            false,
        );
        let cc = c.clone();
        self.cloud
            .paced(self.limiter.as_deref(), c, move |w| {
                (w.get_change(&cc, &id), None)
            })
            .await
    }
}

/// `HttpClient` on the simulated endpoints.
pub struct SimHttp {
    cloud: Arc<SimCloud>,
    caller: Caller,
}

#[async_trait]
impl HttpClient for SimHttp {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, CloudError> {
        let url = crate::cloud::redacted_url(&request.url);
        let operation = format!("HTTP {}", request.method.to_ascii_uppercase());
        let timeout = if request.timeout.is_zero() {
            crate::cloud::DEFAULT_HTTP_TIMEOUT
        } else {
            request.timeout
        };
        let (endpoint, traffic) = {
            let w = self.cloud.lock();
            (
                w.endpoint_for(&url),
                w.traffic_target(&request.method, &request.url, request.body.as_deref()),
            )
        };
        // The ladder's signal and admin URLs answer even without an endpoint of their own.
        let endpoint = endpoint.or_else(|| {
            traffic
                .as_ref()
                .map(|(_, name)| (name.clone(), None, String::new()))
        });
        let mut targets = vec![url.clone()];
        if let Some((name, _, _)) = &endpoint {
            targets.push(name.clone());
        }
        let c = ctx(
            &self.caller,
            Service::Http,
            &operation,
            url.clone(),
            targets,
            !request.method.eq_ignore_ascii_case("GET"),
        );
        self.cloud.time.touch();
        let latency = self
            .cloud
            .lock()
            .api_latency(Service::Http, &operation)
            .min(timeout);
        self.cloud.time.sleep(latency).await;
        let hang_note = {
            let mut w = self.cloud.world();
            let Some((name, zone, body)) = endpoint else {
                let err = CloudError::new(ErrorKind::Transient, &operation, &url, format!("connection failed: nothing answers at {url} (no endpoint of the topology has this URL)"));
                w.record_call(&c, Err(&err), None, None);
                return Err(err);
            };
            match w.gate(&c) {
                Gate::Refuse {
                    http_status, note, ..
                } => {
                    w.record_call(&c, Ok(Some(http_status)), Some(note), None);
                    return Ok(HttpResponse {
                        status: http_status,
                        body: format!("{{\"error\": \"simulated failure of {name}\"}}"),
                    });
                }
                Gate::Hang { .. } => "injected by timeout-call: no answer".to_string(),
                Gate::Go => match zone.filter(|z| w.zone_down(z)) {
                    Some(z) => format!("{name} is served from {z}, which is down: no answer"),
                    None if traffic.is_some() => {
                        let (target, _) = traffic.expect("checked");
                        let (status, body, note) = w.traffic_call(&target);
                        w.record_call(&c, Ok(Some(status)), Some(note), None);
                        return Ok(HttpResponse { status, body });
                    }
                    None => {
                        w.record_call(&c, Ok(Some(200)), None, None);
                        return Ok(HttpResponse { status: 200, body });
                    }
                },
            }
        };
        self.cloud.time.sleep(timeout.saturating_sub(latency)).await;
        let err = CloudError::new(
            ErrorKind::Transient,
            &operation,
            &url,
            format!("timed out after {}: no answer", world::fmt_dur(timeout)),
        );
        self.cloud
            .world()
            .record_call(&c, Err(&err), Some(hang_note), None);
        Err(err)
    }
}

/// `GlobalDatabases` on the simulated world (see [`global`]): every call goes to the endpoint
/// of the region it names (down or impaired there, it fails as AWS's would) and is paced by
/// that region's limiter, as the AWS adapter paces it. DescribeGlobalClusters takes one id per
/// call, as the AWS adapter sends it.
pub struct SimGlobalDatabases {
    cloud: Arc<SimCloud>,
    limiters: Mutex<BTreeMap<Region, Arc<RateLimiter>>>,
    caller: Caller,
    /// Where each region's limiter is counted with the process's own (`ports`).
    meter: Option<Arc<MeterSet>>,
}

impl SimGlobalDatabases {
    fn limiter(&self, region: &Region) -> Arc<RateLimiter> {
        let mut m = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(region.clone())
            .or_insert_with(|| {
                let l = self.cloud.limiter();
                if let Some(meter) = &self.meter {
                    meter.add(l.clone());
                }
                l
            })
            .clone()
    }

    async fn call<T: Send>(
        &self,
        region: &Region,
        operation: &str,
        resource: String,
        targets: Vec<String>,
        mutating: bool,
        op: impl FnOnce(&mut World) -> Result<T, CloudError> + Send,
    ) -> Result<T, CloudError> {
        let mut c = ctx(
            &self.caller,
            Service::Rds,
            operation,
            format!("{resource} on {region}"),
            targets,
            mutating,
        );
        c.region = Some(region.clone());
        let limiter = self.limiter(region);
        self.cloud
            .paced(Some(&limiter), c, move |w| (op(w), None))
            .await
    }
}

#[async_trait]
impl GlobalDatabases for SimGlobalDatabases {
    async fn describe_global_clusters(
        &self,
        region: &Region,
        ids_: &[GlobalClusterId],
    ) -> Result<Vec<GlobalClusterState>, CloudError> {
        let mut out = vec![];
        for id in distinct(ids_) {
            let one = [id.clone()];
            let found = self
                .call(
                    region,
                    "DescribeGlobalClusters",
                    id.to_string(),
                    ids(&one),
                    false,
                    move |w| Ok(w.global_describe(&one)),
                )
                .await?;
            out.extend(found);
        }
        Ok(out)
    }
    async fn switchover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let targets = vec![id.to_string(), target_arn.to_string()];
        self.call(
            region,
            "SwitchoverGlobalCluster",
            format!("{id} (target {target_arn})"),
            targets,
            true,
            |w| w.global_switchover(id, target_arn),
        )
        .await
    }
    async fn failover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        let targets = vec![id.to_string(), target_arn.to_string()];
        self.call(
            region,
            "FailoverGlobalCluster",
            format!("{id} (target {target_arn}, AllowDataLoss)"),
            targets,
            true,
            |w| w.global_failover(id, target_arn),
        )
        .await
    }
}

/// `Metrics` on the simulated world: GetMetricStatistics on the named region's CloudWatch
/// endpoint, answered from the model (the global replication lag of a secondary cluster, an
/// Aurora reader's lag); journaled on the timeline like every call.
pub struct SimMetrics {
    cloud: Arc<SimCloud>,
    caller: Caller,
}

#[async_trait]
impl Metrics for SimMetrics {
    async fn latest_rds_metric(
        &self,
        region: &Region,
        metric: &str,
        dimension: (&str, &str),
        _window: Duration,
    ) -> Result<Option<f64>, CloudError> {
        let (dim, value) = (dimension.0.to_string(), dimension.1.to_string());
        let mut c = ctx(
            &self.caller,
            Service::CloudWatch,
            "GetMetricStatistics",
            format!("{metric} {dim}={value} on {region}"),
            vec![value.clone()],
            false,
        );
        c.region = Some(region.clone());
        let (region, metric) = (region.clone(), metric.to_string());
        self.cloud
            .paced(None, c, move |w| {
                (Ok(w.rds_metric(&region, &metric, (&dim, &value))), None)
            })
            .await
    }
}
