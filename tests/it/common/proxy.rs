//! A counting reverse proxy in front of moto: every request that reaches the AWS peer is
//! recorded with its operation name, so a test can prove what a command did (or did not) call.
//!
//! RDS speaks the Query protocol (`Action=...` in the form body); Route 53 is REST-XML, so its
//! operations are named from the method and path.
//!
//! It also injects the faults moto cannot show, each switched at runtime through `&self` (so a
//! test can change them between two commands) and all off by default:
//!
//! - latency before forwarding, per operation or for all ([`CountingProxy::set_latency`]);
//! - SIGKILL to a process at the nth mutating call, or at the nth call of one operation, before
//!   the call reaches moto or after moto answered but before the answer is sent
//!   ([`CountingProxy::kill_at`], [`CountingProxy::kill_on`], [`CountingProxy::set_victim`],
//!   [`CountingProxy::fired`]);
//! - lost responses: moto processes the call, the caller gets an `InternalFailure` 500
//!   ([`CountingProxy::lose_response`]);
//! - stale (eventually consistent) reads for a while after a mutation
//!   ([`CountingProxy::stale_reads_after`]).
//!
//! [`CountingProxy::calls`] lists every request that reached moto: a request killed before
//! forwarding is not there; a lost response or a stale read is (the call did reach AWS).
//!
//! Each request is handled in its own task, so a client that disconnects (or is killed) does
//! not cancel what the proxy does with its request.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The reads [`CountingProxy::stale_reads_after`] serves stale (RDS reads are eventually
/// consistent).
pub const STALE_READS: [&str; 2] = ["DescribeDBClusters", "DescribeDBInstances"];

/// How long a kill waits for [`CountingProxy::set_victim`] when the trigger is reached before
/// the pid is known, and then for the victim to be gone.
const VICTIM_WAIT: Duration = Duration::from_secs(5);

/// When a kill trigger sends SIGKILL, relative to the triggering request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillWhen {
    /// Before forwarding: the call never reaches moto (not in `calls()`).
    Before,
    /// After moto answered, before the answer is sent: AWS processed it, the answer is lost.
    After,
}

/// An armed kill: the `nth` request matching `op` (any mutating request when `None`), counted
/// from the moment it was armed.
struct KillRule {
    op: Option<String>,
    nth: usize,
    seen: usize,
    when: KillWhen,
}

/// A read request: operation, path and query, body. Identical keys get identical answers.
type ReadKey = (String, String, Bytes);

#[derive(Clone)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

struct StaleRule {
    trigger: String,
    reads: Vec<String>,
    lag: Duration,
}

#[derive(Default)]
struct Faults {
    latency_all: Duration,
    latency: HashMap<String, Duration>,
    kill: Option<KillRule>,
    victim: Option<u32>,
    fired_on: Option<String>,
    lose: HashMap<String, usize>,
    lost: usize,
    /// Requests of an operation refused with `Throttling` (not forwarded), and how many were.
    throttle: HashMap<String, usize>,
    throttled: usize,
    stale: Vec<StaleRule>,
    /// Last successful answer of every read, as moto gave it.
    cache: HashMap<ReadKey, Answer>,
    /// The answers frozen at a trigger, served until `frozen_until`.
    frozen: HashMap<ReadKey, Answer>,
    frozen_until: Option<Instant>,
    stale_served: usize,
}

impl Faults {
    /// Counts `op` against the armed kill; returns when to kill if this request triggers it.
    fn kill_trigger(&mut self, op: &str) -> Option<KillWhen> {
        let rule = self.kill.as_mut()?;
        let matches = match &rule.op {
            Some(o) => o == op,
            None => is_mutating(op),
        };
        if !matches {
            return None;
        }
        rule.seen += 1;
        if rule.seen < rule.nth {
            return None;
        }
        self.kill.take().map(|r| r.when)
    }

    /// At a stale trigger `op`: freeze the cached answers of its reads; returns its lag.
    fn freeze(&mut self, op: &str, now: Instant) -> Option<Duration> {
        let rules: Vec<(Vec<String>, Duration)> = self
            .stale
            .iter()
            .filter(|r| r.trigger == op)
            .map(|r| (r.reads.clone(), r.lag))
            .collect();
        let lag = rules.iter().map(|r| r.1).max()?;
        if !self.is_frozen(now) {
            self.frozen.clear();
        }
        for (reads, _) in &rules {
            for (k, v) in &self.cache {
                if reads.contains(&k.0) && !self.frozen.contains_key(k) {
                    self.frozen.insert(k.clone(), v.clone());
                }
            }
        }
        self.extend_freeze(now + lag);
        Some(lag)
    }

    fn is_frozen(&self, now: Instant) -> bool {
        self.frozen_until.is_some_and(|t| t > now)
    }

    fn extend_freeze(&mut self, until: Instant) {
        if self.frozen_until.is_none_or(|t| t < until) {
            self.frozen_until = Some(until);
        }
    }

    /// Records moto's answer to a read and returns the frozen one if there is one to serve.
    fn read_answer(&mut self, key: ReadKey, fresh: &Answer) -> Option<Answer> {
        if (200..300).contains(&fresh.status) {
            self.cache.insert(key.clone(), fresh.clone());
        }
        if !self.is_frozen(Instant::now()) {
            return None;
        }
        let old = self.frozen.get(&key).cloned()?;
        self.stale_served += 1;
        Some(old)
    }
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
    arrived: Arc<Mutex<Vec<String>>>,
    faults: Arc<Mutex<Faults>>,
}

pub struct CountingProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    arrived: Arc<Mutex<Vec<String>>>,
    faults: Arc<Mutex<Faults>>,
    _task: tokio::task::JoinHandle<()>,
}

/// Operation name of a request: the Query `Action`, or a Route 53 REST operation.
pub fn operation(method: &str, path: &str, body: &str) -> String {
    if let Some(a) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return a.to_string();
    }
    let p = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    // /2013-04-01/hostedzone/ID/rrset, /2013-04-01/change/ID, /2013-04-01/hostedzonesbyname ...
    match (method, parts.get(1).copied(), parts.get(3).copied()) {
        ("POST", Some("hostedzone"), Some("rrset")) => "ChangeResourceRecordSets".into(),
        ("GET", Some("hostedzone"), Some("rrset")) => "ListResourceRecordSets".into(),
        ("GET", Some("hostedzone"), None) if parts.len() >= 3 => "GetHostedZone".into(),
        ("GET", Some("hostedzone"), None) => "ListHostedZones".into(),
        ("POST", Some("hostedzone"), None) => "CreateHostedZone".into(),
        ("GET", Some("hostedzonesbyname"), _) => "ListHostedZonesByName".into(),
        ("GET", Some("change"), _) => "GetChange".into(),
        _ => format!("{method} {p}"),
    }
}

/// Mutating operations among those the tool may call.
pub fn is_mutating(op: &str) -> bool {
    [
        "Failover",
        "Reboot",
        "Create",
        "Change",
        "Delete",
        "Modify",
        "Promote",
        "Switchover",
        "Restore",
    ]
    .iter()
    .any(|p| op.starts_with(p))
}

fn respond(a: Answer) -> Response {
    let mut out = Response::builder().status(a.status);
    for (k, v) in a.headers.iter() {
        if k != "transfer-encoding" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    out.body(Body::from(a.body)).unwrap()
}

fn plain(status: u16, text: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Body::from(text))
        .unwrap()
}

/// The answer a lost response is replaced with: a 500 the SDKs (Query and REST-XML) read as
/// `InternalFailure`, which is retryable.
fn internal_failure(op: &str, n: usize) -> Response {
    let body = format!(
        "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
         <Message>{op}: the response was lost (CountingProxy)</Message></Error>\
         <RequestId>counting-proxy-lost-{n}</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(500)
        .header("content-type", "text/xml")
        .header("x-amzn-requestid", format!("counting-proxy-lost-{n}"))
        .body(Body::from(body))
        .unwrap()
}

/// One of the requests of `op` still to fault (`left`): counts it in `done` and returns its
/// number, or `None` when none is left.
fn take_one(left: &mut HashMap<String, usize>, done: &mut usize, op: &str) -> Option<usize> {
    let n = left.get_mut(op).filter(|n| **n > 0)?;
    *n -= 1;
    *done += 1;
    Some(*done)
}

/// AWS's answer to a request over its rate: a 400 `Throttling` (Query protocol, as RDS answers
/// it); the request was not processed.
fn throttling(op: &str, n: usize) -> Response {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
         <Message>Rate exceeded ({op}, CountingProxy)</Message></Error>\
         <RequestId>counting-proxy-throttled-{n}</RequestId></ErrorResponse>"
    );
    Response::builder()
        .status(400)
        .header("content-type", "text/xml")
        .header("x-amzn-requestid", format!("counting-proxy-throttled-{n}"))
        .body(Body::from(body))
        .unwrap()
}

/// Whether `pid` has exited (gone, or a zombie waiting for its parent).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X' | 'x') | None
        ),
    }
}

#[allow(unsafe_code)]
fn sigkill(pid: u32) -> std::io::Result<()> {
    // SAFETY: kill(2) with a positive pid touches no memory of this process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// SIGKILLs the victim (waiting for `set_victim` if the pid is not known yet) and waits until
/// it is gone, so that nothing it does after this point can reach the proxy.
async fn kill_victim(faults: &Mutex<Faults>, op: &str) {
    let started = Instant::now();
    let pid = loop {
        if let Some(pid) = faults.lock().unwrap().victim {
            break pid;
        }
        if started.elapsed() > VICTIM_WAIT {
            eprintln!("CountingProxy: kill trigger reached at {op} but no victim was set");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    if pid == 0 || pid > i32::MAX as u32 || pid == std::process::id() {
        eprintln!("CountingProxy: refusing to kill pid {pid} (at {op})");
        return;
    }
    if let Err(e) = sigkill(pid) {
        eprintln!("CountingProxy: kill -9 {pid} at {op}: {e}");
        return;
    }
    faults.lock().unwrap().fired_on = Some(op.to_string());
    let started = Instant::now();
    while !is_dead(pid) && started.elapsed() < VICTIM_WAIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn upstream(
    s: &Shared,
    parts: &axum::http::request::Parts,
    path: &str,
    body: Bytes,
) -> Result<Answer, String> {
    let mut rb = s
        .client
        .request(parts.method.clone(), format!("{}{}", s.upstream, path));
    for (k, v) in parts.headers.iter() {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let resp = rb.body(body).send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    // Its own task: a client that goes away must not cancel the rest (the call reaching moto,
    // a kill after the answer).
    match tokio::spawn(handle(s, req)).await {
        Ok(r) => r,
        Err(e) => plain(502, format!("CountingProxy: handler failed: {e}")),
    }
}

async fn handle(s: Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let op = operation(
        parts.method.as_str(),
        &path,
        &String::from_utf8_lossy(&bytes),
    );
    s.arrived.lock().unwrap().push(op.clone());

    let delay = {
        let f = s.faults.lock().unwrap();
        f.latency.get(&op).copied().unwrap_or(f.latency_all)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let throttled = {
        let f = &mut *s.faults.lock().unwrap();
        take_one(&mut f.throttle, &mut f.throttled, &op)
    };
    if let Some(n) = throttled {
        return throttling(&op, n);
    }

    let kill = s.faults.lock().unwrap().kill_trigger(&op);
    if kill == Some(KillWhen::Before) {
        kill_victim(&s.faults, &op).await;
        return plain(502, format!("CountingProxy: killed before {op}"));
    }

    let lag = s.faults.lock().unwrap().freeze(&op, Instant::now());
    s.log.lock().unwrap().push(op.clone());
    let fresh = upstream(&s, &parts, &path, bytes.clone()).await;
    if let Some(lag) = lag {
        s.faults.lock().unwrap().extend_freeze(Instant::now() + lag);
    }
    let mut answer = match fresh {
        Ok(a) => a,
        Err(e) => return plain(502, format!("CountingProxy: forward {op} to moto: {e}")),
    };
    if !is_mutating(&op) {
        let key = (op.clone(), path.clone(), bytes);
        if let Some(old) = s.faults.lock().unwrap().read_answer(key, &answer) {
            answer = old;
        }
    }

    if kill == Some(KillWhen::After) {
        kill_victim(&s.faults, &op).await;
    }

    let lost = {
        let f = &mut *s.faults.lock().unwrap();
        take_one(&mut f.lose, &mut f.lost, &op)
    };
    match lost {
        Some(n) => internal_failure(&op, n),
        None => respond(answer),
    }
}

impl CountingProxy {
    pub async fn start(upstream: String) -> Self {
        let log = Arc::new(Mutex::new(vec![]));
        let arrived = Arc::new(Mutex::new(vec![]));
        let faults = Arc::new(Mutex::new(Faults::default()));
        let shared = Shared {
            upstream,
            client: reqwest::Client::new(),
            log: log.clone(),
            arrived: arrived.clone(),
            faults: faults.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        CountingProxy {
            port,
            log,
            arrived,
            faults,
            _task: task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request that reached moto, in order (a request killed before forwarding is not
    /// here; a lost response and a stale read are).
    pub fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Every request the proxy received, in order, as soon as it arrived (before any latency
    /// or kill): a request held by latency is here and not yet in [`CountingProxy::calls`].
    pub fn arrived(&self) -> Vec<String> {
        self.arrived.lock().unwrap().clone()
    }

    pub fn mutating(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| is_mutating(c))
            .collect()
    }

    /// Clears the call logs (not the faults: see [`CountingProxy::reset_faults`]).
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
        self.arrived.lock().unwrap().clear();
    }

    /// Delay before forwarding: `Some(op)` for that operation, `None` for every operation
    /// without its own. `Duration::ZERO` removes it.
    pub fn set_latency(&self, op: Option<&str>, delay: Duration) {
        let mut f = self.faults.lock().unwrap();
        match op {
            None => f.latency_all = delay,
            Some(op) if delay.is_zero() => {
                f.latency.remove(op);
            }
            Some(op) => {
                f.latency.insert(op.to_string(), delay);
            }
        }
    }

    /// Arms a SIGKILL to `pid` at the `nth` mutating request ([`is_mutating`], counted from 1
    /// from now). `pid` 0: not known yet, give it with [`CountingProxy::set_victim`]. Replaces
    /// any armed kill; fires once, then the proxy is back to normal.
    pub fn kill_at(&self, nth: usize, when: KillWhen, pid: u32) {
        self.arm(None, nth, when, pid);
    }

    /// As [`CountingProxy::kill_at`], at the `nth` request of operation `op` (e.g. `GetChange`
    /// during a wait), mutating or not.
    pub fn kill_on(&self, op: &str, nth: usize, when: KillWhen, pid: u32) {
        self.arm(Some(op.to_string()), nth, when, pid);
    }

    fn arm(&self, op: Option<String>, nth: usize, when: KillWhen, pid: u32) {
        assert!(nth >= 1, "kill triggers count from 1");
        let mut f = self.faults.lock().unwrap();
        f.kill = Some(KillRule {
            op,
            nth,
            seen: 0,
            when,
        });
        f.victim = (pid != 0).then_some(pid);
        f.fired_on = None;
    }

    /// The process the armed kill sends SIGKILL to (once spawned). A trigger reached before
    /// this waits up to 5 s for it.
    pub fn set_victim(&self, pid: u32) {
        self.faults.lock().unwrap().victim = Some(pid);
    }

    /// Whether the armed kill has sent its SIGKILL.
    pub fn fired(&self) -> bool {
        self.fired_on().is_some()
    }

    /// The operation of the request at which the kill was sent.
    pub fn fired_on(&self) -> Option<String> {
        self.faults.lock().unwrap().fired_on.clone()
    }

    /// The next `times` requests of `op` reach moto, but their caller gets an `InternalFailure`
    /// 500 instead of moto's answer. Replaces the count left for `op`.
    pub fn lose_response(&self, op: &str, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .lose
            .insert(op.to_string(), times);
    }

    /// How many responses were lost so far.
    pub fn lost_responses(&self) -> usize {
        self.faults.lock().unwrap().lost
    }

    /// The next `times` requests of `op` are refused with `Throttling` and do not reach moto.
    /// Replaces the count left for `op`.
    pub fn throttle(&self, op: &str, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .throttle
            .insert(op.to_string(), times);
    }

    /// How many requests were refused with `Throttling` so far.
    pub fn throttled(&self) -> usize {
        self.faults.lock().unwrap().throttled
    }

    /// Whenever a request of `op` is forwarded, the last answers to [`STALE_READS`] the proxy
    /// saw before it are frozen: for `lag` after moto answered `op`, an identical read request
    /// (same operation, path and body) still reaches moto but gets the old answer. A read
    /// never seen before the trigger gets moto's current answer.
    pub fn stale_reads_after(&self, op: &str, lag: Duration) {
        self.stale_reads_after_for(op, &STALE_READS, lag);
    }

    /// As [`CountingProxy::stale_reads_after`], for the given read operations (e.g.
    /// `ListResourceRecordSets`).
    pub fn stale_reads_after_for(&self, op: &str, reads: &[&str], lag: Duration) {
        self.faults.lock().unwrap().stale.push(StaleRule {
            trigger: op.to_string(),
            reads: reads.iter().map(|r| r.to_string()).collect(),
            lag,
        });
    }

    /// How many reads were answered from a frozen (stale) answer so far.
    pub fn stale_served(&self) -> usize {
        self.faults.lock().unwrap().stale_served
    }

    /// Turns every fault off (latency, armed kill, lost responses, throttling, stale reads);
    /// keeps the log.
    pub fn reset_faults(&self) {
        *self.faults.lock().unwrap() = Faults::default();
    }
}
