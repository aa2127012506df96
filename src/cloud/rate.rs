//! Client-side rate limiting and call counting, so that the tool is never the cause of its own
//! throttling and still uses AWS's burst fully.
//!
//! One token bucket per service, sized from [`Quotas`] less a second of refill kept in hand
//! for the network's jitter (AWS's defaults from [`super::model`],
//! overridable per environment under `[quotas]`), in the injected clock's time: the simulator's
//! virtual time, or the wall clock. A request takes one token; when the bucket is empty the
//! request is *reserved* a slot (the bucket goes into debt) and sleeps until its slot, so
//! concurrent callers are served in the order they asked, without polling. Route 53 changes to
//! one hosted zone are also spaced by the zone's prior-request window, so a batch never meets
//! `PriorRequestNotComplete` because of this tool.
//!
//! Calls have a [`Class`]: reads and the calls that move things (failovers, record changes) are
//! `Urgent`; snapshots are `Background` and only take tokens the urgent calls leave, so taking
//! 500 snapshots never delays the first failover.
//!
//! Other clients of the account share AWS's bucket (in an AZ outage, every team's automation
//! calls the RDS API at once). A `Throttled` answer empties the local bucket and cuts its
//! refill rate by [`RATE_CUT`], down to [`MIN_RATE_SHARE`] of the quota; the requests waiting
//! for a slot ask again at the new rate, and the answers to requests paced before the cut do
//! not cut it again. Answers raise it back to the rate it was cut from in seconds
//! ([`RATE_RECOVERY`]), then probe above it, faster the longer nothing is throttled
//! ([`RATE_PROBE`]), up to the quota. So the tool settles at the share the others leave it
//! instead of spending its calls, and the others' quota, on throttled retries (a cut on
//! throttling and a growth on answers, as the AWS SDKs' adaptive retry mode does).
//!
//! Every request is counted (reads, mutations, throttled answers, other failures, time spent
//! waiting for a token): `run`, `plan` and `simulate` report the figures.

pub use super::model::{Api, ApiCounts, CallCounts, Quotas};
use super::{CallMeter, Clock, CloudError, ErrorKind};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How a request competes for tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A read-only call: urgent, counted as a read.
    Read,
    /// A call that moves something (failover, reboot, record change): urgent.
    Mutate,
    /// A mutating call nothing waits on (snapshots): takes only tokens urgent calls leave.
    Background,
}

impl Class {
    fn mutating(self) -> bool {
        !matches!(self, Class::Read)
    }
}

/// A token bucket whose tokens may go below zero: a negative balance is the queue of requests
/// that reserved a slot and are sleeping until it.
#[derive(Debug)]
struct Bucket {
    burst: f64,
    /// The refill rate now: the quota's (`quota_per_s`), or less after throttled answers.
    per_s: f64,
    quota_per_s: f64,
    tokens: f64,
    at: Option<SystemTime>,
    /// The last cut: when, the rate it cut from, and the rate it cut to.
    cut: Option<(SystemTime, f64, f64)>,
    /// Cuts so far. A request paced before the last cut (an older generation) asks for its
    /// slot again; its answer neither cuts nor raises the rate again.
    generation: u64,
}

/// What a throttled answer leaves of the refill rate (the AWS SDKs' adaptive mode: 0.7).
pub const RATE_CUT: f64 = 0.7;
/// The lowest refill rate throttled answers bring a bucket to, as a share of the quota's.
pub const MIN_RATE_SHARE: f64 = 0.01;
/// After a cut, the rate grows back by this factor a second up to the rate it was cut from
/// (from 70% of it in under 4 s)...
pub const RATE_RECOVERY: f64 = 1.1;
/// ...then probes above it, faster the longer nothing is throttled: x (1 + k t^2) after t
/// seconds (x1.25 after 5 s, x2 after 10 s, x5 after 20 s), up to the quota.
pub const RATE_PROBE: f64 = 0.01;
/// The probe starts from a tenth of the quota at least (from the floor, the quota is back
/// within 30 s of the last throttle).
pub const PROBE_BASE: f64 = 0.1;

impl Bucket {
    /// A bucket a little smaller than the account's: a request is counted by AWS when it
    /// arrives, not when it leaves, and arrivals jitter with the network; keeping a second's
    /// worth of refill (at least one token, at most half the burst) in hand absorbs a second
    /// of jitter, so the service never sees the client above its quota.
    fn new(burst: f64, per_s: f64) -> Self {
        let per_s = per_s.max(f64::MIN_POSITIVE);
        let burst = burst.max(1.0);
        let headroom = if burst <= 1.0 {
            0.0
        } else {
            per_s.max(1.0).min(burst / 2.0)
        };
        Self {
            burst: burst - headroom,
            per_s,
            quota_per_s: per_s,
            tokens: burst - headroom,
            at: None,
            cut: None,
            generation: 0,
        }
    }

    /// AWS answered `Throttled` to a request paced in `generation`: others are using the
    /// account's quota. Empty the bucket and, for a request paced at the rate now, cut the
    /// rate (the slots reserved so far are given up: their requests ask again, at the new
    /// rate). A request paced before the last cut left at the old rate: that cut already
    /// answers it. Whether it cut.
    fn throttled(&mut self, now: SystemTime, generation: u64) -> bool {
        self.advance(now);
        self.tokens = self.tokens.min(0.0);
        if generation != self.generation {
            return false;
        }
        let to = (self.per_s * RATE_CUT).max(self.quota_per_s * MIN_RATE_SHARE);
        self.cut = Some((now, self.per_s, to));
        self.per_s = to;
        self.tokens = 0.0;
        self.generation += 1;
        true
    }

    /// AWS answered (a result, or not found) a request paced in `generation`: the rate grows
    /// back with the time since the last cut ([`RATE_RECOVERY`], [`RATE_PROBE`]). An answer
    /// to a request paced before the last cut says nothing of the rate now.
    fn answered(&mut self, now: SystemTime, generation: u64) {
        let Some((at, from, to)) = self.cut else {
            return;
        };
        if generation != self.generation || self.per_s >= self.quota_per_s {
            return;
        }
        let t = now.duration_since(at).unwrap_or_default().as_secs_f64();
        let back = (from / to).ln() / RATE_RECOVERY.ln();
        let rate = if t < back {
            to * RATE_RECOVERY.powf(t)
        } else {
            from.max(self.quota_per_s * PROBE_BASE) * (1.0 + RATE_PROBE * (t - back).powi(2))
        };
        self.advance(now);
        self.per_s = rate.clamp(self.per_s, self.quota_per_s);
    }

    fn advance(&mut self, now: SystemTime) {
        if let Some(at) = self.at {
            let dt = now.duration_since(at).unwrap_or_default().as_secs_f64();
            self.tokens = (self.tokens + dt * self.per_s).min(self.burst);
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    /// Take a token now or reserve the next free slot; how long to wait for it.
    fn reserve(&mut self, now: SystemTime) -> Duration {
        self.advance(now);
        self.tokens -= 1.0;
        self.until(0.0)
    }

    /// How long until the balance reaches `level`.
    fn until(&self, level: f64) -> Duration {
        if self.tokens >= level {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(((level - self.tokens) / self.per_s).min(3600.0))
        }
    }
}

struct State {
    /// One bucket per service, in [`index`]'s order.
    buckets: [Bucket; 4],
    /// When the next change to each hosted zone may go.
    zones: HashMap<String, SystemTime>,
    /// One change to a hosted zone at a time (`change_zone`).
    turns: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    counts: CallCounts,
}

impl State {
    fn bucket(&mut self, api: Api) -> &mut Bucket {
        &mut self.buckets[index(api)]
    }
}

impl CallMeter for RateLimiter {
    fn counts(&self) -> CallCounts {
        self.lock().counts.clone()
    }
}

/// The calls of a process's limiters summed: its own, and the one per region its global
/// database port makes on first use (each region has its own RDS quota). What `run`, `plan`
/// and `simulate` report.
pub struct MeterSet(Mutex<Vec<Arc<RateLimiter>>>);

impl MeterSet {
    pub fn of(first: Arc<RateLimiter>) -> Arc<MeterSet> {
        Arc::new(MeterSet(Mutex::new(vec![first])))
    }

    /// Count `l`'s calls too.
    pub fn add(&self, l: Arc<RateLimiter>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(l);
    }
}

impl CallMeter for MeterSet {
    fn counts(&self) -> CallCounts {
        let parts = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut sum = CallCounts::default();
        for l in parts {
            sum.absorb(&l.counts());
        }
        sum
    }
}

/// The client-side limiter of one process (or one simulated client), shared by its adapters.
pub struct RateLimiter {
    clock: Arc<dyn Clock>,
    quotas: Quotas,
    state: Mutex<State>,
    /// Background requests wait one at a time, so a queue of them polls once, not each.
    background: tokio::sync::Mutex<()>,
    /// Per service: wakes the requests sleeping until their slot when the rate is cut.
    cuts: [tokio::sync::Notify; 4],
}

/// A service's place in the limiter's arrays (`State::buckets`, `RateLimiter::cuts`).
fn index(api: Api) -> usize {
    match api {
        Api::Rds => 0,
        Api::Route53 => 1,
        Api::Arc => 2,
        Api::CloudWatch => 3,
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quotas", &self.quotas)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(quotas: Quotas, clock: Arc<dyn Clock>) -> Self {
        let state = State {
            buckets: [
                Bucket::new(quotas.rds_burst, quotas.rds_per_s),
                Bucket::new(quotas.route53_burst, quotas.route53_per_s),
                Bucket::new(quotas.arc_burst, quotas.arc_per_s),
                Bucket::new(quotas.cloudwatch_burst, quotas.cloudwatch_per_s),
            ],
            zones: HashMap::new(),
            turns: HashMap::new(),
            counts: CallCounts::default(),
        };
        Self {
            clock,
            quotas,
            state: Mutex::new(state),
            background: tokio::sync::Mutex::new(()),
            cuts: Default::default(),
        }
    }

    /// A limiter on the wall clock.
    pub fn on_wall_clock(quotas: Quotas) -> Arc<Self> {
        Arc::new(Self::new(quotas, Arc::new(crate::clock::SystemClock)))
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a token of `api` as `class` allows; the generation of the rate the request
    /// was paced at (`record` wants it back).
    pub async fn acquire(&self, api: Api, class: Class) -> u64 {
        let started = self.clock.now();
        let mut generation;
        match class {
            Class::Read | Class::Mutate => loop {
                // A cut gives up the slots reserved so far: ask again, at the new rate.
                let cut = self.cuts[index(api)].notified();
                tokio::pin!(cut);
                cut.as_mut().enable();
                let wait = {
                    let mut s = self.lock();
                    let b = s.bucket(api);
                    generation = b.generation;
                    b.reserve(self.clock.now())
                };
                if wait.is_zero() {
                    break;
                }
                tokio::select! {
                    _ = self.clock.sleep(wait) => break,
                    _ = cut => {}
                }
            },
            Class::Background => {
                let _turn = self.background.lock().await;
                loop {
                    let wait = {
                        let now = self.clock.now();
                        let mut s = self.lock();
                        let b = s.bucket(api);
                        b.advance(now);
                        if b.tokens >= 1.0 {
                            b.tokens -= 1.0;
                            generation = b.generation;
                            break;
                        }
                        b.until(1.0)
                    };
                    self.clock.sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
        let waited = self.clock.now().duration_since(started).unwrap_or_default();
        self.lock().counts.of(api).waited_ms += waited.as_millis() as u64;
        generation
    }

    /// Wait until a change to hosted zone `zone` may go (its previous change is at least the
    /// zone interval ago), reserving the slot after it for the next one.
    pub async fn acquire_zone_change(&self, zone: &str) {
        let wait = {
            let now = self.clock.now();
            let mut s = self.lock();
            let next = s.zones.get(zone).copied().unwrap_or(now).max(now);
            s.zones
                .insert(zone.to_string(), next + self.quotas.route53_zone_interval);
            next.duration_since(now).unwrap_or_default()
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
    }

    /// Count a request's outcome; a throttled answer empties the local bucket and lowers its
    /// rate (other clients of the account are using the quota), so the next requests wait
    /// for the refill; answers raise a lowered rate again (the module's doc).
    pub fn record(
        &self,
        api: Api,
        class: Class,
        generation: u64,
        outcome: Result<(), &CloudError>,
    ) {
        let now = self.clock.now();
        let mut cut = false;
        let mut s = self.lock();
        let c = s.counts.of(api);
        if class.mutating() {
            c.mutations += 1;
        } else {
            c.reads += 1;
        }
        match outcome {
            Ok(()) => s.bucket(api).answered(now, generation),
            // A read of something that does not exist answered as asked.
            Err(e) if e.kind == ErrorKind::NotFound && !class.mutating() => {
                s.bucket(api).answered(now, generation)
            }
            Err(e) if e.kind == ErrorKind::Throttled => {
                c.throttled += 1;
                cut = s.bucket(api).throttled(now, generation);
            }
            // A 5xx or a timeout says nothing of the quota.
            Err(_) => c.failed += 1,
        }
        drop(s);
        if cut {
            self.cuts[index(api)].notify_waiters();
        }
    }

    /// One request: wait for its token, make it, count its outcome.
    pub async fn call<T, F, Fut>(&self, api: Api, class: Class, f: F) -> Result<T, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        // The rate the request was paced at: one paced before the last cut left at the old
        // rate, whenever it leaves.
        let generation = self.acquire(api, class).await;
        let r = f().await;
        self.record(api, class, generation, r.as_ref().map(|_| ()));
        r
    }

    /// One change to a Route 53 hosted zone: the zone's spacing, then a token, then the call.
    pub async fn change_zone<T, F, Fut>(&self, zone: &str, f: F) -> Result<T, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        // Changes to one zone go one at a time, and the next waits a full interval from the
        // answer to the previous one: Route 53 counts its prior-request window from when it
        // took the change, which a request sent an interval after the previous one's sending
        // could still fall into (round trips differ), and be refused.
        let turn = self
            .lock()
            .turns
            .entry(zone.to_string())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        self.acquire_zone_change(zone).await;
        let r = self.call(Api::Route53, Class::Mutate, f).await;
        let next = self.clock.now() + self.quotas.route53_zone_interval;
        let mut s = self.lock();
        let slot = s.zones.entry(zone.to_string()).or_insert(next);
        *slot = (*slot).max(next);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    /// A clock that only moves when slept on (a single-threaded virtual clock for tests).
    struct StepClock(Mutex<SystemTime>);

    #[async_trait]
    impl Clock for StepClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
        async fn sleep(&self, d: Duration) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
        }
    }

    fn limiter(q: Quotas) -> (RateLimiter, Arc<StepClock>) {
        let clock = Arc::new(StepClock(Mutex::new(SystemTime::UNIX_EPOCH)));
        (RateLimiter::new(q, clock.clone()), clock)
    }

    fn secs(c: &StepClock) -> f64 {
        c.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    }

    #[tokio::test]
    async fn the_burst_goes_at_once_then_the_refill_rate() {
        let (l, clock) = limiter(Quotas::default());
        // 300 less a second of refill (12) kept in hand for the network's jitter.
        for _ in 0..288 {
            l.acquire(Api::Rds, Class::Mutate).await;
        }
        assert_eq!(secs(&clock), 0.0, "the burst is used without waiting");
        for _ in 0..120 {
            l.acquire(Api::Rds, Class::Mutate).await;
        }
        // 120 more at 12 per second: 10 s.
        assert!((secs(&clock) - 10.0).abs() < 1e-6, "{}", secs(&clock));
    }

    #[tokio::test]
    async fn reservations_queue_callers_in_order() {
        let (l, _clock) = limiter(Quotas {
            rds_burst: 1.0,
            rds_per_s: 2.0,
            ..Quotas::default()
        });
        // A bucket of one keeps nothing in hand.
        let now = SystemTime::UNIX_EPOCH;
        let mut s = l.lock();
        let waits: Vec<f64> = (0..4)
            .map(|_| s.bucket(Api::Rds).reserve(now).as_secs_f64())
            .collect();
        assert_eq!(waits, vec![0.0, 0.5, 1.0, 1.5]);
    }

    #[tokio::test]
    async fn background_calls_take_only_what_urgent_ones_leave() {
        let (l, _clock) = limiter(Quotas {
            rds_burst: 3.0,
            rds_per_s: 1.0,
            ..Quotas::default()
        });
        let now = SystemTime::UNIX_EPOCH;
        // Urgent calls put the bucket in debt; a background call waits until it is positive.
        {
            let mut s = l.lock();
            for _ in 0..4 {
                s.bucket(Api::Rds).reserve(now);
            }
            assert!((s.bucket(Api::Rds).until(1.0).as_secs_f64() - 3.0).abs() < 1e-9);
        }
        l.acquire(Api::Rds, Class::Background).await;
        assert_eq!(l.lock().bucket(Api::Rds).tokens.floor(), 0.0);
    }

    #[tokio::test]
    async fn changes_to_one_zone_are_spaced_and_other_zones_are_not() {
        let (l, clock) = limiter(Quotas::default());
        l.acquire_zone_change("Z1").await;
        l.acquire_zone_change("Z2").await;
        assert_eq!(secs(&clock), 0.0);
        l.acquire_zone_change("Z1").await;
        assert_eq!(secs(&clock), 1.0);
    }

    #[tokio::test]
    async fn a_throttled_answer_empties_the_bucket_and_is_counted() {
        let (l, clock) = limiter(Quotas::default());
        let e = CloudError::new(ErrorKind::Throttled, "FailoverDBCluster", "c", "slow down");
        let r: Result<(), _> = l
            .call(Api::Rds, Class::Mutate, || async { Err(e.clone()) })
            .await;
        assert!(r.is_err());
        l.acquire(Api::Rds, Class::Read).await;
        // The bucket is empty and its rate cut to 70%: the next token in 1/8.4 s, not 1/12.
        assert!((secs(&clock) - 1.0 / 8.4).abs() < 1e-3, "{}", secs(&clock));
        let c = l.counts();
        assert_eq!((c.rds.mutations, c.rds.throttled, c.rds.reads), (1, 1, 0));
    }

    #[tokio::test]
    async fn throttles_cut_the_rate_once_per_rate_and_answers_raise_it_again() {
        let (l, clock) = limiter(Quotas::default());
        let throttled = CloudError::new(ErrorKind::Throttled, "DescribeDBClusters", "c", "slow");
        let rate = |l: &RateLimiter| l.lock().bucket(Api::Rds).per_s;
        let read = |g: u64, r: Result<(), &CloudError>| l.record(Api::Rds, Class::Read, g, r);
        // Ten requests paced together, all throttled: one cut (12 -> 8.4), not ten.
        let g0 = l.acquire(Api::Rds, Class::Read).await;
        clock.sleep(Duration::from_millis(100)).await;
        for _ in 0..10 {
            read(g0, Err(&throttled));
        }
        assert!((rate(&l) - 8.4).abs() < 1e-9, "{}", rate(&l));
        // Requests paced before that cut, answered later: no further cut, and no raise.
        clock.sleep(Duration::from_secs(5)).await;
        read(g0, Err(&throttled));
        read(g0, Ok(()));
        assert!((rate(&l) - 8.4).abs() < 1e-9, "{}", rate(&l));
        // Each request paced after the last cut and throttled cuts again, down to 1% of the
        // quota.
        for _ in 0..30 {
            let g = l.acquire(Api::Rds, Class::Read).await;
            read(g, Err(&throttled));
        }
        assert!((rate(&l) - 0.12).abs() < 1e-9, "{}", rate(&l));
        // Tokens come at the lowered rate: the next read waits its 1/0.12 s.
        let before = secs(&clock);
        let g = l.acquire(Api::Rds, Class::Read).await;
        assert!((secs(&clock) - before - 1.0 / 0.12).abs() < 1e-3);
        // Answers raise it (at the floor, the rate it was last cut from is the floor itself:
        // it probes at once, from a tenth of the quota, faster the longer nothing is
        // throttled)...
        read(g, Ok(()));
        let after = 1.0 / 0.12;
        let want = 1.2 * (1.0 + 0.01 * after * after);
        assert!((rate(&l) - want).abs() < 1e-6, "{}", rate(&l));
        // ...to the quota 40 s later, never above it.
        clock.sleep(Duration::from_secs(40)).await;
        read(g, Ok(()));
        assert_eq!(rate(&l), 12.0);
        // A 5xx or a timeout says nothing of the quota.
        let g = l.acquire(Api::Rds, Class::Read).await;
        read(g, Err(&throttled));
        let e5 = CloudError::new(ErrorKind::Transient, "DescribeDBClusters", "c", "500");
        clock.sleep(Duration::from_secs(3)).await;
        read(g + 1, Err(&e5));
        assert!((rate(&l) - 8.4).abs() < 1e-9, "{}", rate(&l));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_makes_the_requests_waiting_for_a_slot_ask_again_at_the_new_rate() {
        let l = Arc::new(RateLimiter::new(
            Quotas {
                rds_burst: 2.0,
                rds_per_s: 10.0,
                ..Quotas::default()
            },
            Arc::new(crate::clock::TokioClock::new()),
        ));
        // A burst of 1 (2 less a token of headroom), then 10 a second: 20 requests queue.
        let start = tokio::time::Instant::now();
        let mut waiting = vec![];
        for _ in 0..20 {
            let l = l.clone();
            waiting.push(tokio::spawn(async move {
                l.acquire(Api::Rds, Class::Read).await;
                start.elapsed()
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The first request is throttled: the rate is cut to 7 a second, and the 19 requests
        // still waiting take their slots at that rate, the last about 19/7 s from now.
        let throttled = CloudError::new(ErrorKind::Throttled, "DescribeDBClusters", "c", "slow");
        l.record(Api::Rds, Class::Read, 0, Err(&throttled));
        let mut last = Duration::ZERO;
        for w in waiting {
            last = last.max(w.await.unwrap());
        }
        let want = 0.05 + 19.0 / 7.0;
        assert!(
            (last.as_secs_f64() - want).abs() < 0.05,
            "{last:?} vs {want}"
        );
    }
}
