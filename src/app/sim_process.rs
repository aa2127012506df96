//! One process of a multi-actor simulation (`sim_actors`): the ports, journal, clock and
//! reporter a run sees, behind a kill switch.
//!
//! Killing a process is `kill -9`: from that instant nothing it does reaches the world, the
//! journal or the timeline (each of its calls, writes and sleeps waits forever), so it writes no
//! status, no outcome and no release, and its leases stay until they expire. A cloud call it had
//! already sent goes on in the simulated service (it runs as a task of its own) and may take
//! effect; only its answer is lost. The journal writes of the simulation's in-memory journal are
//! synchronous, so a write is either done before the kill or never starts.
//!
//! Lease renewals leave no event in the journal; the process logs each one that succeeded, so a
//! history can tell when a lease would have expired.

use crate::cloud::retry::{
    RetryPolicy, RetryingDatabases, RetryingDns, RetryingGlobal, RetryingZonalShifts,
};
use crate::cloud::sim::RawPorts;
use crate::cloud::{
    ChangeInfo, Clock, CloudError, ClusterState, Databases, Dns, GlobalDatabases, HostedZone,
    HttpClient, HttpRequest, HttpResponse, InstanceState, Metrics, RecordChange, RecordSet,
    SnapshotKind, SnapshotState, ZonalShifts,
};
use crate::lease::{Lease, LeaseKey};
use crate::ports::Ports;
use crate::progress::{Progress, Reporter};
use crate::status::{RunStatus, StepStatus};
use crate::store::{
    Approval, Event, Fence, InDoubt, LeaseRequest, MadeChange, Result, RunRecord, StepRecord, Store,
};
use crate::types::{ClusterId, GlobalClusterId, InstanceId, Region, RunId};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A lease renewal that succeeded: the run's leases on `keys` live `ttl` from `at_ms` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Renewal {
    pub run_id: RunId,
    /// Epoch milliseconds on the simulation's clock (as journal events are stamped).
    pub at_ms: i64,
    pub keys: Vec<LeaseKey>,
}

/// The renewals of every process of a simulation, in the order they happened.
pub type RenewalLog = Arc<Mutex<Vec<Renewal>>>;

/// The kill switch of one process.
#[derive(Clone, Default)]
pub struct Switch(Arc<SwitchState>);

#[derive(Default)]
struct SwitchState {
    killed: AtomicBool,
    /// Kill the process the moment it sends its next mutating call.
    armed: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Switch {
    /// Kill the process: nothing it does from now on has any effect.
    pub fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Kill the process as soon as it has sent its next mutating call: the call goes out and
    /// may take effect, its answer is lost.
    pub fn kill_at_next_call(&self) {
        self.0.armed.store(true, Ordering::SeqCst);
    }

    pub fn is_killed(&self) -> bool {
        self.0.killed.load(Ordering::SeqCst)
    }

    /// Wait until the process is killed.
    pub async fn killed(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_killed() {
                return;
            }
            notified.await;
        }
    }

    /// Returns at once while the process lives; never once it is killed.
    async fn alive(&self) {
        if self.is_killed() {
            std::future::pending::<()>().await;
        }
    }
}

/// A process: its kill switch and what it is made of.
pub struct Process {
    pub switch: Switch,
    pub ports: Ports,
    pub store: Arc<dyn Store>,
    pub reporter: Arc<dyn Reporter>,
}

impl Process {
    /// A process over `raw` (the caller's raw ports of the simulated world), the shared
    /// `journal` and `reporter`, with the retry policy applied as for AWS (jitter seeded).
    pub fn new(
        raw: RawPorts,
        clock: Arc<dyn Clock>,
        journal: Arc<dyn Store>,
        reporter: Arc<dyn Reporter>,
        renewals: RenewalLog,
        policy: RetryPolicy,
        seed: u64,
    ) -> Self {
        let switch = Switch::default();
        let clock: Arc<dyn Clock> = Arc::new(KClock {
            s: switch.clone(),
            inner: clock,
        });
        let db = Arc::new(KDb {
            s: switch.clone(),
            inner: raw.db,
        });
        let dns = Arc::new(KDns {
            s: switch.clone(),
            inner: raw.dns,
        });
        let global: Arc<dyn GlobalDatabases> = Arc::new(KGlobal {
            s: switch.clone(),
            inner: raw.global,
        });
        let metrics = raw.metrics.map(|inner| {
            Arc::new(KMetrics {
                s: switch.clone(),
                inner,
            }) as Arc<dyn Metrics>
        });
        let ports = Ports {
            global: Some(Arc::new(RetryingGlobal::new(
                global,
                policy.clone(),
                clock.clone(),
                Some(seed.wrapping_add(0x0061_0BA1)),
            ))),
            metrics,
            db: Arc::new(RetryingDatabases::new(
                db,
                policy.clone(),
                clock.clone(),
                Some(seed),
            )),
            dns: Arc::new(RetryingDns::new(
                dns,
                policy.clone(),
                clock.clone(),
                Some(seed.wrapping_add(0x5DEE_CE66)),
            )),
            arc: Arc::new(RetryingZonalShifts::new(
                Arc::new(KArc {
                    s: switch.clone(),
                    inner: raw.arc,
                }),
                policy,
                clock.clone(),
                Some(seed.wrapping_add(0xA2C)),
            )),
            meter: raw.meter,
            http: Arc::new(KHttp {
                s: switch.clone(),
                inner: raw.http,
            }),
            clock: clock.clone(),
            health: None,
        };
        let store = Arc::new(KStore {
            s: switch.clone(),
            inner: journal,
            clock,
            renewals,
        });
        let reporter = Arc::new(KReporter {
            s: switch.clone(),
            inner: reporter,
        });
        Self {
            switch,
            ports,
            store,
            reporter,
        }
    }
}

/// Send a call as a task of its own, so that it goes on in the simulated service when the
/// process that sent it is killed; then hand its answer back, unless the process is dead.
async fn sent<T: Send + 'static>(
    s: &Switch,
    mutating: bool,
    call: impl Future<Output = std::result::Result<T, CloudError>> + Send + 'static,
) -> std::result::Result<T, CloudError> {
    s.alive().await;
    let answer = tokio::spawn(call);
    if mutating && s.0.armed.load(Ordering::SeqCst) {
        s.kill();
    }
    let answer = answer.await;
    s.alive().await;
    match answer {
        Ok(a) => a,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(CloudError::new(
            crate::cloud::ErrorKind::Transient,
            "call",
            "",
            format!("the call's task ended: {e}"),
        )),
    }
}

struct KClock {
    s: Switch,
    inner: Arc<dyn Clock>,
}

#[async_trait]
impl Clock for KClock {
    fn now(&self) -> std::time::SystemTime {
        self.inner.now()
    }
    async fn sleep(&self, d: Duration) {
        self.s.alive().await;
        self.inner.sleep(d).await;
        self.s.alive().await;
    }
}

struct KReporter {
    s: Switch,
    inner: Arc<dyn Reporter>,
}

impl Reporter for KReporter {
    fn report(&self, p: Progress) {
        if !self.s.is_killed() {
            self.inner.report(p);
        }
    }
}

struct KDb {
    s: Switch,
    inner: Arc<dyn Databases>,
}

#[async_trait]
impl Databases for KDb {
    async fn describe_clusters(
        &self,
        ids: &[ClusterId],
    ) -> std::result::Result<Vec<ClusterState>, CloudError> {
        let (db, ids) = (self.inner.clone(), ids.to_vec());
        sent(
            &self.s,
            false,
            async move { db.describe_clusters(&ids).await },
        )
        .await
    }
    async fn describe_cluster_instances(
        &self,
        clusters: &[ClusterId],
    ) -> std::result::Result<Vec<InstanceState>, CloudError> {
        let (db, ids) = (self.inner.clone(), clusters.to_vec());
        sent(&self.s, false, async move {
            db.describe_cluster_instances(&ids).await
        })
        .await
    }
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> std::result::Result<Vec<InstanceState>, CloudError> {
        let (db, ids) = (self.inner.clone(), ids.to_vec());
        sent(
            &self.s,
            false,
            async move { db.describe_instances(&ids).await },
        )
        .await
    }
    async fn failover_cluster(
        &self,
        cluster: &ClusterId,
        target: &InstanceId,
    ) -> std::result::Result<(), CloudError> {
        let (db, c, t) = (self.inner.clone(), cluster.clone(), target.clone());
        sent(
            &self.s,
            true,
            async move { db.failover_cluster(&c, &t).await },
        )
        .await
    }
    async fn reboot_with_failover(
        &self,
        instance: &InstanceId,
    ) -> std::result::Result<(), CloudError> {
        let (db, i) = (self.inner.clone(), instance.clone());
        sent(
            &self.s,
            true,
            async move { db.reboot_with_failover(&i).await },
        )
        .await
    }
    async fn create_cluster_snapshot(
        &self,
        cluster: &ClusterId,
        snapshot_id: &str,
    ) -> std::result::Result<(), CloudError> {
        let (db, c, s) = (self.inner.clone(), cluster.clone(), snapshot_id.to_string());
        sent(&self.s, true, async move {
            db.create_cluster_snapshot(&c, &s).await
        })
        .await
    }
    async fn create_instance_snapshot(
        &self,
        instance: &InstanceId,
        snapshot_id: &str,
    ) -> std::result::Result<(), CloudError> {
        let (db, i, s) = (
            self.inner.clone(),
            instance.clone(),
            snapshot_id.to_string(),
        );
        sent(&self.s, true, async move {
            db.create_instance_snapshot(&i, &s).await
        })
        .await
    }
    async fn describe_snapshots(
        &self,
        kind: SnapshotKind,
        ids: &[String],
    ) -> std::result::Result<Vec<SnapshotState>, CloudError> {
        let (db, ids) = (self.inner.clone(), ids.to_vec());
        sent(&self.s, false, async move {
            db.describe_snapshots(kind, &ids).await
        })
        .await
    }
}

/// The global database port of a process: no call while it is dead.
struct KGlobal {
    s: Switch,
    inner: Arc<dyn GlobalDatabases>,
}

#[async_trait]
impl GlobalDatabases for KGlobal {
    async fn describe_global_clusters(
        &self,
        region: &Region,
        ids: &[GlobalClusterId],
    ) -> std::result::Result<Vec<crate::cloud::GlobalClusterState>, CloudError> {
        let (g, r, ids) = (self.inner.clone(), region.clone(), ids.to_vec());
        sent(&self.s, false, async move {
            g.describe_global_clusters(&r, &ids).await
        })
        .await
    }
    async fn switchover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> std::result::Result<(), CloudError> {
        let (g, r, id, t) = (
            self.inner.clone(),
            region.clone(),
            id.clone(),
            target_arn.to_string(),
        );
        sent(&self.s, true, async move {
            g.switchover_global_cluster(&r, &id, &t).await
        })
        .await
    }
    async fn failover_global_cluster(
        &self,
        region: &Region,
        id: &GlobalClusterId,
        target_arn: &str,
    ) -> std::result::Result<(), CloudError> {
        let (g, r, id, t) = (
            self.inner.clone(),
            region.clone(),
            id.clone(),
            target_arn.to_string(),
        );
        sent(&self.s, true, async move {
            g.failover_global_cluster(&r, &id, &t).await
        })
        .await
    }
}

/// The CloudWatch port of a process: no read while it is dead.
struct KMetrics {
    s: Switch,
    inner: Arc<dyn Metrics>,
}

#[async_trait]
impl Metrics for KMetrics {
    async fn latest_rds_metric(
        &self,
        region: &Region,
        metric: &str,
        dimension: (&str, &str),
        window: Duration,
    ) -> std::result::Result<Option<f64>, CloudError> {
        let (m, r, metric) = (self.inner.clone(), region.clone(), metric.to_string());
        let (d, v) = (dimension.0.to_string(), dimension.1.to_string());
        sent(&self.s, false, async move {
            m.latest_rds_metric(&r, &metric, (&d, &v), window).await
        })
        .await
    }
}

struct KArc {
    s: Switch,
    inner: Arc<dyn ZonalShifts>,
}

#[async_trait]
impl ZonalShifts for KArc {
    async fn get_managed_resource(
        &self,
        arn: &str,
    ) -> std::result::Result<crate::cloud::ManagedResource, CloudError> {
        let (a, arn) = (self.inner.clone(), arn.to_string());
        sent(
            &self.s,
            false,
            async move { a.get_managed_resource(&arn).await },
        )
        .await
    }
    async fn list_zonal_shifts(
        &self,
        arn: &str,
    ) -> std::result::Result<Vec<crate::cloud::ZonalShift>, CloudError> {
        let (a, arn) = (self.inner.clone(), arn.to_string());
        sent(
            &self.s,
            false,
            async move { a.list_zonal_shifts(&arn).await },
        )
        .await
    }
    async fn start_zonal_shift(
        &self,
        arn: &str,
        away_from: &str,
        expires_in: Duration,
        comment: &str,
    ) -> std::result::Result<crate::cloud::ZonalShift, CloudError> {
        let (a, arn, z, c) = (
            self.inner.clone(),
            arn.to_string(),
            away_from.to_string(),
            comment.to_string(),
        );
        sent(&self.s, true, async move {
            a.start_zonal_shift(&arn, &z, expires_in, &c).await
        })
        .await
    }
    async fn cancel_zonal_shift(
        &self,
        id: &str,
    ) -> std::result::Result<Option<crate::cloud::ZonalShift>, CloudError> {
        let (a, id) = (self.inner.clone(), id.to_string());
        sent(
            &self.s,
            true,
            async move { a.cancel_zonal_shift(&id).await },
        )
        .await
    }
}

struct KDns {
    s: Switch,
    inner: Arc<dyn Dns>,
}

#[async_trait]
impl Dns for KDns {
    async fn find_hosted_zone(
        &self,
        id_or_name: &str,
    ) -> std::result::Result<HostedZone, CloudError> {
        let (dns, z) = (self.inner.clone(), id_or_name.to_string());
        sent(
            &self.s,
            false,
            async move { dns.find_hosted_zone(&z).await },
        )
        .await
    }
    async fn list_record_sets(
        &self,
        zone_id: &str,
    ) -> std::result::Result<Vec<RecordSet>, CloudError> {
        let (dns, z) = (self.inner.clone(), zone_id.to_string());
        sent(
            &self.s,
            false,
            async move { dns.list_record_sets(&z).await },
        )
        .await
    }
    async fn change_record_sets(
        &self,
        zone_id: &str,
        comment: &str,
        changes: &[RecordChange],
    ) -> std::result::Result<ChangeInfo, CloudError> {
        let (dns, z, c, ch) = (
            self.inner.clone(),
            zone_id.to_string(),
            comment.to_string(),
            changes.to_vec(),
        );
        sent(&self.s, true, async move {
            dns.change_record_sets(&z, &c, &ch).await
        })
        .await
    }
    async fn get_change(&self, change_id: &str) -> std::result::Result<ChangeInfo, CloudError> {
        let (dns, c) = (self.inner.clone(), change_id.to_string());
        sent(&self.s, false, async move { dns.get_change(&c).await }).await
    }
}

struct KHttp {
    s: Switch,
    inner: Arc<dyn HttpClient>,
}

#[async_trait]
impl HttpClient for KHttp {
    async fn send(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, CloudError> {
        let (http, r) = (self.inner.clone(), request.clone());
        let mutating = !request.method.eq_ignore_ascii_case("GET");
        sent(&self.s, mutating, async move { http.send(&r).await }).await
    }
}

/// The journal as a process sees it: nothing once it is killed.
struct KStore {
    s: Switch,
    inner: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    renewals: RenewalLog,
}

#[async_trait]
impl Store for KStore {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    async fn create_run(&self, r: &RunRecord) -> Result<()> {
        self.s.alive().await;
        self.inner.create_run(r).await
    }
    async fn set_run_status(
        &self,
        run: &RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        self.s.alive().await;
        self.inner
            .set_run_status(run, status, error, finished)
            .await
    }
    async fn heartbeat(&self, run: &RunId, holder: &str) -> Result<()> {
        self.s.alive().await;
        self.inner.heartbeat(run, holder).await
    }
    async fn run(&self, id_or_prefix: &str) -> Result<RunRecord> {
        self.s.alive().await;
        self.inner.run(id_or_prefix).await
    }
    async fn run_exact(&self, id: &RunId) -> Result<RunRecord> {
        self.s.alive().await;
        self.inner.run_exact(id).await
    }
    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.s.alive().await;
        self.inner.runs(limit).await
    }
    async fn init_step(
        &self,
        run: &RunId,
        step: &str,
        action: &str,
        status: StepStatus,
    ) -> Result<()> {
        self.s.alive().await;
        self.inner.init_step(run, step, action, status).await
    }
    async fn step_started(&self, run: &RunId, step: &str, attempt: u32) -> Result<()> {
        self.s.alive().await;
        self.inner.step_started(run, step, attempt).await
    }
    async fn set_step_status(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        self.s.alive().await;
        self.inner.set_step_status(run, step, status, message).await
    }
    async fn step_finished(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        self.s.alive().await;
        self.inner.step_finished(run, step, status, message).await
    }
    async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>> {
        self.s.alive().await;
        self.inner.steps(run).await
    }
    async fn intent(
        &self,
        run: &RunId,
        step: &str,
        operation: &str,
        resource: &str,
        call: Value,
        fence: &Fence,
    ) -> Result<i64> {
        self.s.alive().await;
        self.inner
            .intent(run, step, operation, resource, call, fence)
            .await
    }
    async fn outcome(
        &self,
        run: &RunId,
        step: &str,
        intent_seq: i64,
        operation: &str,
        resource: &str,
        result: Value,
    ) -> Result<i64> {
        self.s.alive().await;
        self.inner
            .outcome(run, step, intent_seq, operation, resource, result)
            .await
    }
    async fn note(&self, run: &RunId, step: Option<&str>, kind: &str, data: Value) -> Result<i64> {
        self.s.alive().await;
        self.inner.note(run, step, kind, data).await
    }
    async fn events(&self, run: &RunId) -> Result<Vec<Event>> {
        self.s.alive().await;
        self.inner.events(run).await
    }
    async fn open_intents(&self, run: &RunId) -> Result<Vec<Event>> {
        self.s.alive().await;
        self.inner.open_intents(run).await
    }
    async fn in_doubt(&self, since_ms: i64) -> Result<Vec<InDoubt>> {
        self.s.alive().await;
        self.inner.in_doubt(since_ms).await
    }
    async fn settle(&self, run: &RunId, step: &str, intent_seq: i64, how: &str) -> Result<()> {
        self.s.alive().await;
        self.inner.settle(run, step, intent_seq, how).await
    }
    async fn changes_since(&self, since_ms: i64) -> Result<Vec<MadeChange>> {
        self.s.alive().await;
        self.inner.changes_since(since_ms).await
    }
    async fn approve(&self, run: &RunId, step: &str, by: &str) -> Result<Approval> {
        self.s.alive().await;
        self.inner.approve(run, step, by).await
    }
    async fn approvals(&self, run: &RunId, step: &str) -> Result<Vec<String>> {
        self.s.alive().await;
        self.inner.approvals(run, step).await
    }
    async fn shed_tiers(&self, environment: &str) -> Result<Vec<(String, i64, RunId)>> {
        self.s.alive().await;
        self.inner.shed_tiers(environment).await
    }
    async fn set_shed(
        &self,
        environment: &str,
        tier: &str,
        run: &RunId,
        step: &str,
        shed: bool,
    ) -> Result<()> {
        self.s.alive().await;
        self.inner
            .set_shed(environment, tier, run, step, shed)
            .await
    }
    async fn acquire(&self, req: &LeaseRequest) -> Result<Fence> {
        self.s.alive().await;
        self.inner.acquire(req).await
    }
    async fn renew(&self, run: &RunId, fence: &Fence, holder: &str) -> Result<()> {
        self.s.alive().await;
        self.inner.renew(run, fence, holder).await?;
        let at_ms = super::simulate::epoch_ms(self.clock.now());
        self.renewals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Renewal {
                run_id: run.clone(),
                at_ms,
                keys: fence.tokens.iter().map(|(k, _)| k.clone()).collect(),
            });
        Ok(())
    }
    async fn release(&self, run: &RunId) -> Result<()> {
        self.s.alive().await;
        self.inner.release(run).await
    }
    async fn leases(&self) -> Result<Vec<Lease>> {
        self.s.alive().await;
        self.inner.leases().await
    }
    async fn event_count(&self) -> Result<i64> {
        self.s.alive().await;
        self.inner.event_count().await
    }
    async fn verify_chain(&self) -> Result<Option<i64>> {
        self.s.alive().await;
        self.inner.verify_chain().await
    }
    async fn verify(&self, heads: &[crate::store::Head]) -> Result<crate::store::VerifyReport> {
        self.s.alive().await;
        self.inner.verify(heads).await
    }
    async fn head(&self) -> Result<Option<crate::store::Head>> {
        self.s.alive().await;
        self.inner.head().await
    }
    async fn events_since(&self, since: i64, limit: usize) -> Result<Vec<Event>> {
        self.s.alive().await;
        self.inner.events_since(since, limit).await
    }
}
