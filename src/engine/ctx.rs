//! What a live run carries through the engine: its spec, its context (ports, journal,
//! reporter, what it learned), how it ends, and how a step fails.

use crate::call::Call;
use crate::cloud::CloudError;
use crate::lease::LeaseKey;
use crate::ports::Ports;
use crate::progress::Reporter;
use crate::runbook::bind::BoundStep;
use crate::status::StepStatus;
use crate::store::{Fence, Store, StoreError};
use crate::types::{InstanceId, RunId, StepId};
use crate::world::{Needs, World};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::SystemTime;

/// Everything a live run needs besides the ports.
#[derive(Clone)]
pub struct RunSpec {
    pub run_id: RunId,
    pub initiator: String,
    pub steps: Vec<BoundStep>,
    pub poll_interval: Duration,
    pub max_concurrency: usize,
    /// How many calls of one step may be in flight at once (the rate limiter paces them).
    pub max_calls_in_flight: usize,
    /// How often an approval gate re-reads the journal.
    pub approval_poll: Duration,
    /// The leases the run holds; each intent shows the part covering its call.
    pub fence: Fence,
    /// The region the run's lease keys name (`lease::keys_of`).
    pub region: String,
    /// Asked to stop (Ctrl-C, a lost lease): no new step or call starts, calls in flight end.
    pub stop: Stop,
    /// Steps a resumed run finished before it stopped (succeeded or skipped): not run again.
    pub finished: BTreeMap<StepId, (StepStatus, Option<String>)>,
    /// What the plan observed, taken after the run acquired its leases (`None`: the plan could
    /// not read the world). A step's first decision uses it instead of observing again while
    /// it is fresh (see [`Ctx::plan_world`]).
    pub observed: Option<Observed>,
    /// How long after the plan's observation began a step may still decide on it (zero: every
    /// step observes for itself).
    pub plan_fresh_for: Duration,
}

/// An observation made by the plan: the world, what was asked for, and when it began (on the
/// ports' clock).
#[derive(Clone, Debug)]
pub struct Observed {
    pub world: Arc<World>,
    pub needs: Needs,
    pub at: SystemTime,
}

/// A request to stop a run at its next safe point (between calls), and why.
#[derive(Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Default)]
struct StopInner {
    why: Mutex<Option<(StopKind, String)>>,
    notify: tokio::sync::Notify,
}

/// Why a run stops before its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopKind {
    /// A signal (Ctrl-C, SIGTERM) or a shutdown: the run ends `interrupted`, resumable.
    Interrupted,
    /// The run lost its leases (taken over, aborted, expired): another process owns it now,
    /// so this one neither calls nor writes its final status.
    Fenced,
    /// A panic: the run ends `crashed`, resumable.
    Crashed,
}

impl Stop {
    /// Ask the run to stop; the first reason is kept.
    pub fn request(&self, kind: StopKind, why: impl Into<String>) {
        let mut w = self.0.why.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some((kind, why.into()));
        }
        drop(w);
        self.0.notify.notify_waiters();
    }

    /// Why the run was asked to stop, if it was.
    pub fn requested(&self) -> Option<String> {
        self.reason().map(|(_, w)| w)
    }

    /// The kind of stop and why, if one was asked.
    pub fn reason(&self) -> Option<(StopKind, String)> {
        self.0.why.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Wait until a stop is requested.
    pub async fn wait(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.requested().is_some() {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{0}")]
    Http(String),
    #[error("timed out after {0}")]
    Timeout(String),
    #[error("journal: {0}")]
    Journal(StoreError),
    /// The run lost its leases: it makes no further call.
    #[error("{0}")]
    Fenced(String),
    /// The run was asked to stop (Ctrl-C, its lease lost); this step did not finish.
    #[error("stopped: {0}")]
    Stopped(String),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Fenced(m) => StepError::Fenced(m),
            other => StepError::Journal(other),
        }
    }
}

impl StepError {
    /// Worth another attempt of the whole step (observe again, decide again)?
    pub fn retryable(&self) -> bool {
        match self {
            StepError::Cloud(e) => e.kind.retry_step(),
            StepError::Http(_) => true,
            // The step's deadline covers all its attempts: nothing is left to retry with.
            StepError::Timeout(_) => false,
            StepError::Precondition(_)
            | StepError::Journal(_)
            | StepError::Fenced(_)
            | StepError::Stopped(_) => false,
        }
    }

    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StepError::Cloud(e) => Some(e.kind.hint()),
            StepError::Timeout(_) => Some("the world did not reach the goal in time; check the resource, raise the step's `timeout`, or run again: steps observe before acting"),
            StepError::Http(_) => Some("check the endpoint URL and that the service is up; the step can be retried"),
            StepError::Fenced(_) => Some("another process took this run's leases (a resume, an abort, or they expired while this process was paused); this process makes no further call"),
            StepError::Stopped(_) => Some("`failover resume RUN` continues the run: finished steps are not run again"),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub run_id: RunId,
    pub succeeded: bool,
    pub steps: Vec<(StepId, StepStatus, Option<String>)>,
}

/// What the engine's tasks share during one run.
pub(crate) struct Ctx {
    /// Readers whose promotion failed in this run (fed back into decisions).
    pub(crate) unpromotable: Mutex<BTreeSet<InstanceId>>,
    /// Steps of the run that have ended (for `records_after`).
    pub(crate) finished: Mutex<BTreeMap<crate::types::StepId, StepStatus>>,
    /// Resources (as calls name them) this run has made, or is making, a mutating call on:
    /// the plan's observation of them is out of date.
    pub(crate) touched: Mutex<BTreeSet<String>>,
    pub(crate) ports: Ports,
    pub(crate) journal: Arc<dyn Store>,
    pub(crate) spec: RunSpec,
    pub(crate) reporter: Arc<dyn Reporter>,
    /// The fence's tokens by key, to cut the part covering one call.
    pub(crate) tokens: HashMap<LeaseKey, u64>,
    /// What the run's steps last observed of its databases, and a wake-up for the steps that
    /// wait on them (`Ctx::saw`, `Ctx::sleep_or_seen`).
    pub(crate) seen: Mutex<super::observe::Seen>,
    seen_news: tokio::sync::Notify,
    /// What the journal says about calls, kept up to date at each decision.
    pub(crate) ledger: Mutex<super::ledger::Ledger>,
    /// The Route 53 changes this run made, by id, when their answer came (on the ports'
    /// clock, the one waits sleep on: the journal's may be another, see `act::change_ages`).
    pub(crate) changes_made: Mutex<HashMap<String, std::time::SystemTime>>,
}

impl Ctx {
    pub(crate) fn new(
        ports: Ports,
        journal: Arc<dyn Store>,
        spec: RunSpec,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        let tokens = spec.fence.tokens.iter().cloned().collect();
        let mut seen = super::observe::Seen::default();
        if let Some(o) = &spec.observed {
            seen.learn(&o.world);
        }
        let finished = spec
            .finished
            .iter()
            .map(|(id, (st, _))| (id.clone(), *st))
            .collect();
        Self {
            unpromotable: Default::default(),
            finished: Mutex::new(finished),
            touched: Default::default(),
            ports,
            journal,
            spec,
            reporter,
            tokens,
            seen: Mutex::new(seen),
            seen_news: tokio::sync::Notify::new(),
            ledger: Default::default(),
            changes_made: Default::default(),
        }
    }

    /// A step observed `world`: remember its databases and, with `news`, wake the steps
    /// waiting on them. A `dns.update` that waits reads only what no running step watches and
    /// tells no one (two of them would wake each other without end).
    pub(crate) fn saw(&self, world: &World, news: bool) {
        if world.clusters.is_empty() && world.instances.is_empty() {
            return;
        }
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .learn(world);
        if news {
            self.seen_news.notify_waiters();
        }
    }

    /// Sleep like [`Ctx::sleep`], but wake early when a step of the run observes databases.
    pub(crate) async fn sleep_or_seen(&self, d: Duration) -> Result<(), StepError> {
        let news = self.seen_news.notified();
        if let Some(why) = self.spec.stop.requested() {
            return Err(StepError::Stopped(why));
        }
        tokio::select! {
            biased;
            _ = self.spec.stop.wait() => Err(StepError::Stopped(self.spec.stop.requested().unwrap_or_default())),
            _ = news => Ok(()),
            _ = self.ports.clock.sleep(d) => Ok(()),
        }
    }

    /// The part of the run's fence an intent of `call` shows: the leases on the resources the
    /// call changes. The store checks each of them, so a run holding thousands of leases does
    /// not re-check them all for every call (which made a large evacuation quadratic). Any lease
    /// the run lost is also refused at its next renewal, which stops the whole run. A call on
    /// no named resource (HTTP), or on one the fence lacks, shows the whole fence.
    pub(crate) fn fence_for(&self, call: &Call) -> Cow<'_, Fence> {
        let whole = Cow::Borrowed(&self.spec.fence);
        let Some(keys) = crate::lease::keys_of_call(call, &self.spec.region) else {
            return whole;
        };
        let mut tokens = Vec::with_capacity(keys.len());
        for k in keys {
            match self.tokens.get(&k) {
                Some(t) => tokens.push((k, *t)),
                None => return whole,
            }
        }
        Cow::Owned(Fence {
            tokens,
            budget_ms: self.spec.fence.budget_ms,
        })
    }

    /// Sleep on the run's clock, unless the run is asked to stop first (a safe point: no
    /// call is in flight).
    pub(crate) async fn sleep(&self, d: Duration) -> Result<(), StepError> {
        if let Some(why) = self.spec.stop.requested() {
            return Err(StepError::Stopped(why));
        }
        tokio::select! {
            biased;
            _ = self.spec.stop.wait() => Err(StepError::Stopped(self.spec.stop.requested().unwrap_or_default())),
            _ = self.ports.clock.sleep(d) => Ok(()),
        }
    }

    /// `Err(Stopped)` if the run was asked to stop.
    pub(crate) fn check_stop(&self) -> Result<(), StepError> {
        match self.spec.stop.requested() {
            Some(why) => Err(StepError::Stopped(why)),
            None => Ok(()),
        }
    }

    /// A mutating call on `resource` is about to go out: from now on the plan's observation
    /// of it is not used.
    pub(crate) fn touch(&self, resource: String) {
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(resource);
    }

    /// The plan's observation of what a step needs, as far as a decision may use it instead
    /// of observing again, and what the caller must still read (empty: nothing). The plan
    /// observed all of it after this run took its leases (so no other run has changed any of it
    /// since); a part this run has made a mutating call on since is not used. Whatever the
    /// journal knows (calls in doubt or accepted, recent changes) is read afresh by the caller,
    /// which observes again when there is any (the plan's reads may predate their effect).
    ///
    /// - The databases change by themselves (AWS fails a writer over on its own when its zone
    ///   goes): what the plan saw of them is used only while its reads of them began less
    ///   than `plan_fresh_for` ago.
    /// - What only this run changes is used however old (unless `plan_fresh_for` is zero:
    ///   then nothing is): the records of the hosted zones it
    ///   has held the lease of since before the plan listed them (as a step's own polls carry
    ///   them, `Carry`), and the snapshots named after this run (`failover-<run>-...`).
    ///
    /// With `only_records` (a `dns.update`), the calls made on the databases do not count: it
    /// reads them only to know whether its records may move yet, and a read from before a
    /// failover call says "not yet", which its next poll corrects.
    pub(crate) fn plan_world(&self, needs: &Needs, only_records: bool) -> Option<(World, Needs)> {
        let o = self.spec.observed.as_ref()?;
        // `plan_fresh_for = "0s"`: every step reads everything for itself.
        if self.spec.plan_fresh_for.is_zero() || !o.needs.covers(needs) {
            return None;
        }
        let age = self.ports.clock.now().duration_since(o.at).ok()?;
        let touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        let zones_untouched = !needs
            .hosted_zones
            .iter()
            .map(String::as_str)
            .chain(
                needs
                    .hosted_zones
                    .iter()
                    .filter_map(|r| o.world.hosted_zones.get(r))
                    .flat_map(|z| [z.id.as_str(), z.name.as_str()]),
            )
            .any(|n| touched.contains(n));
        let databases_untouched =
            only_records || !needs.database_names().any(|n| touched.contains(n));
        if age < self.spec.plan_fresh_for && zones_untouched && databases_untouched {
            return Some((o.world.subset(needs), Needs::default()));
        }
        let kept = Needs {
            hosted_zones: if zones_untouched {
                needs.hosted_zones.clone()
            } else {
                vec![]
            },
            cluster_snapshots: needs.cluster_snapshots.clone(),
            instance_snapshots: needs.instance_snapshots.clone(),
            ..Needs::default()
        };
        if kept.is_empty() {
            return None;
        }
        let rest = Needs {
            hosted_zones: if zones_untouched {
                vec![]
            } else {
                needs.hosted_zones.clone()
            },
            cluster_snapshots: vec![],
            instance_snapshots: vec![],
            ..needs.clone()
        };
        Some((o.world.subset(&kept), rest))
    }

    /// Remember that promoting `reader` failed: the next decision passes over it.
    pub(crate) fn unpromotable(&self, reader: &InstanceId) {
        self.unpromotable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reader.clone());
    }
}
