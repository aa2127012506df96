//! The traffic the simulated storefront serves, and the load-shedding ladder acting on it.
//!
//! A topology with a `[traffic]` ladder (the very table environment files have, parsed by
//! [`crate::traffic::config::parse`]) and a `[load]` model gets:
//! - the ladder in its derived environment, so `traffic.shed` and `traffic.restore` bind;
//! - simulated admin APIs: an HTTP call that matches a tier's `apply` (or `revert`) action —
//!   same method, same URL, same body, `${...}` variables matching anything — sheds (restores)
//!   that tier `lag` after the call (edge rules propagate, caches drain); a Route 53 change
//!   that gives a tier's `dns_group` its apply weights sheds it the same way;
//! - the signal endpoint (`[traffic.signal] url`, read with GET), which answers the error rate
//!   computed from the load, at the signal's JSON `pointer`.
//!
//! The load model, every figure in one unit (say vCPUs):
//!
//! ```text
//! capacity     C = Σ capacity of the zones that are up
//! demand       D = base + Σ load of every tier not shed (protected tiers always count)
//! utilisation  u = D / C
//! error rate   e = baseline_error                                          if u ≤ knee
//!                  baseline_error + (error_at_capacity − baseline_error)
//!                                   · (u − knee) / (1 − knee)              if knee < u ≤ 1
//!                  1 − (1 − error_at_capacity) / u                         if u > 1
//! ```
//!
//! Below the knee requests are served; between the knee and full capacity queues build and a
//! growing share times out; beyond it the excess is refused outright as well. `e` is
//! continuous and grows with `u`. Each reading of the signal is `e · (1 ± noise)`, the noise
//! drawn from a generator seeded with the simulation's seed: one seed, one series of readings.

use super::endpoint::EndpointSpec;
use super::time::fmt_dur;
use crate::diag::{Diagnostics, SourceFile};
use crate::tomlx::{parse_document, SKind};
use crate::traffic::{Ladder, Signal, TierAction};
use crate::types::Zone;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the signal endpoint reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Share of requests that fail (good when low).
    ErrorRate,
    /// 1 − error rate (good when high).
    SuccessRate,
    /// Demand over capacity (good when low).
    Utilisation,
}

impl SignalKind {
    fn label(self) -> &'static str {
        match self {
            SignalKind::ErrorRate => "error rate",
            SignalKind::SuccessRate => "success rate",
            SignalKind::Utilisation => "utilisation",
        }
    }
}

/// The checked `[load]` model of a topology.
#[derive(Clone, Debug, Serialize)]
pub struct LoadSpec {
    /// What each zone can serve.
    pub capacity: BTreeMap<Zone, f64>,
    /// Load outside the ladder (browsing, the API): never shed.
    pub base: f64,
    /// Load of each tier of the ladder (absent: 0). Protected tiers count, and are never shed.
    pub tiers: BTreeMap<String, f64>,
    /// Utilisation where errors start (0.8: queues build beyond 80%).
    pub knee: f64,
    /// Error rate at 100% utilisation.
    pub error_at_capacity: f64,
    /// Error rate of a healthy system.
    pub baseline_error: f64,
    /// How long after the admin call a tier is actually shed or restored.
    pub lag: Duration,
    /// Relative noise of each reading (0.02: ±2%).
    pub noise: f64,
    pub signal: SignalKind,
}

impl LoadSpec {
    /// The error rate at utilisation `u` (see the module documentation).
    pub fn error_rate(&self, u: f64) -> f64 {
        if !u.is_finite() {
            return 1.0;
        }
        let e = if u <= self.knee {
            self.baseline_error
        } else if u <= 1.0 {
            self.baseline_error
                + (self.error_at_capacity - self.baseline_error) * (u - self.knee)
                    / (1.0 - self.knee)
        } else {
            1.0 - (1.0 - self.error_at_capacity) / u
        };
        e.clamp(0.0, 1.0)
    }

    fn load(&self, tier: &str) -> f64 {
        self.tiers.get(tier).copied().unwrap_or(0.0)
    }
}

// ---- reading a topology's [traffic] and [load] ------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    capacity: Option<RawCapacity>,
    base: Option<f64>,
    #[serde(default)]
    tiers: BTreeMap<String, f64>,
    knee: Option<f64>,
    error_at_capacity: Option<f64>,
    baseline_error: Option<f64>,
    lag: Option<String>,
    noise: Option<f64>,
    signal: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum RawCapacity {
    Each(f64),
    PerZone(BTreeMap<String, f64>),
}

/// `[traffic]` of a topology file, read exactly as in an environment file. Problems are
/// appended with their line; the ladder is returned even then when it could be read, so the
/// load model can be checked against it in the same pass.
pub(super) fn parse_ladder(
    text: &str,
    origin: &str,
    zones: &[Zone],
    problems: &mut Vec<String>,
) -> Option<Ladder> {
    parse_section(text, origin, "traffic", problems, |src, v, d| {
        crate::traffic::config::parse(src, v, zones, d)
    })
}

/// Read table `key` of a topology file again with spans, with the environment file's parser
/// for it (`[traffic]`, `[health]`); its problems are appended with their line.
pub(super) fn parse_section<T>(
    text: &str,
    origin: &str,
    key: &str,
    problems: &mut Vec<String>,
    parse: impl FnOnce(&SourceFile, &crate::tomlx::SVal, &mut Diagnostics) -> Option<T>,
) -> Option<T> {
    let src = SourceFile::new(origin, text);
    let diag_text = |d: &crate::diag::Diagnostic| {
        format!(
            "line {}: {}{}",
            d.line,
            d.message,
            d.hint
                .as_ref()
                .map(|h| format!(" (hint: {h})"))
                .unwrap_or_default()
        )
    };
    let doc = match parse_document(&src) {
        Ok(d) => d,
        Err(ds) => {
            problems.extend(ds.0.iter().map(diag_text));
            return None;
        }
    };
    let SKind::Table(entries) = &doc.kind else {
        return None;
    };
    let (_, _, v) = entries.iter().find(|(k, _, _)| k == key)?;
    let mut d = Diagnostics::default();
    let out = parse(&src, v, &mut d);
    problems.extend(d.sorted().0.iter().map(diag_text));
    out
}

/// Check `[load]` against the ladder, the zones, the endpoints and the record groups.
pub(super) fn check(
    raw: Option<&RawLoad>,
    ladder: Option<&Ladder>,
    traffic_declared: bool,
    zones: &[Zone],
    endpoints: &BTreeMap<String, EndpointSpec>,
    record_groups: &BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<LoadSpec> {
    let (raw, ladder) = match (raw, ladder) {
        (None, None) => return None,
        // The ladder could not be read: its problems are reported already.
        (Some(_), None) if traffic_declared => return None,
        (Some(_), None) => {
            problems.push("[load] without a [traffic] ladder: there is nothing to shed; add [traffic] as in an environment file (docs/traffic.md)".into());
            return None;
        }
        (None, Some(_)) => {
            problems.push("[traffic] needs a [load] model in a topology, or nothing could tell whether shedding helps: add [load] with `capacity` per zone and the load of each tier (docs/traffic.md, Simulation)".into());
            return None;
        }
        (Some(r), Some(l)) => (r, l),
    };
    let mut p = vec![];
    let capacity = check_capacity(raw.capacity.as_ref(), zones, &mut p);
    let base = raw.base.unwrap_or(0.0);
    if !(base.is_finite() && base >= 0.0) {
        p.push(format!("[load] base must be 0 or more, not {base}"));
    }
    check_tier_loads(&raw.tiers, ladder, &mut p);
    let spec = check_model(raw, capacity, base, &mut p);
    check_threshold(spec.signal, &ladder.signal, &mut p);
    check_tier_actions(ladder, endpoints, record_groups, &mut p);
    if p.is_empty() {
        check_distinct_calls(ladder, endpoints, &mut p);
    }
    let ok = p.is_empty();
    problems.extend(p);
    ok.then_some(spec)
}

/// `[load] capacity`: one figure for every zone, or one per zone of the topology; none
/// negative, not all 0.
fn check_capacity(
    raw: Option<&RawCapacity>,
    zones: &[Zone],
    p: &mut Vec<String>,
) -> BTreeMap<Zone, f64> {
    let mut capacity = BTreeMap::new();
    match raw {
        None => p.push("[load] has no `capacity`: give what each zone can serve, e.g. capacity = { \"us-west-2a\" = 100, ... } (or one number for every zone)".to_string()),
        Some(RawCapacity::Each(c)) => {
            for z in zones {
                capacity.insert(z.clone(), *c);
            }
        }
        Some(RawCapacity::PerZone(m)) => {
            for (z, c) in m {
                let zone = Zone::new(z.clone());
                if !zones.contains(&zone) {
                    p.push(match crate::diag::did_you_mean(z, zones.iter().map(|z| z.as_str())) {
                        Some(s) => format!("[load] capacity: `{z}` is not a zone of the topology; did you mean `{s}`?"),
                        None => format!("[load] capacity: `{z}` is not a zone of the topology"),
                    });
                }
                capacity.insert(zone, *c);
            }
            for z in zones.iter().filter(|z| !capacity.contains_key(*z)) {
                p.push(format!("[load] capacity: no figure for {z}; give every zone one (0 for a zone that serves nothing)"));
            }
        }
    }
    for (z, c) in &capacity {
        if !(c.is_finite() && *c >= 0.0) {
            p.push(format!("[load] capacity of {z} must be 0 or more, not {c}"));
        }
    }
    if !capacity.is_empty() && capacity.values().sum::<f64>() <= 0.0 {
        p.push("[load] capacity: every zone has 0; the storefront could serve nothing".into());
    }
    capacity
}

/// `[load] tiers`: tiers of the ladder, each load 0 or more.
fn check_tier_loads(tiers: &BTreeMap<String, f64>, ladder: &Ladder, p: &mut Vec<String>) {
    for (t, l) in tiers {
        if ladder.index(t).is_none() {
            let names = ladder.tiers.iter().map(|t| t.name.as_str());
            p.push(match crate::diag::did_you_mean(t, names) {
                Some(s) => {
                    format!("[load] tiers: `{t}` is not a tier of the ladder; did you mean `{s}`?")
                }
                None => format!(
                    "[load] tiers: `{t}` is not a tier of the ladder ({})",
                    ladder
                        .tiers
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if !(l.is_finite() && *l >= 0.0) {
            p.push(format!(
                "[load] tiers: the load of `{t}` must be 0 or more, not {l}"
            ));
        }
    }
}

/// The rest of `[load]`: the error curve (knee, error at capacity, baseline), the noise,
/// the lag and what the signal reports, each with its default.
fn check_model(
    raw: &RawLoad,
    capacity: BTreeMap<Zone, f64>,
    base: f64,
    p: &mut Vec<String>,
) -> LoadSpec {
    let knee = raw.knee.unwrap_or(0.8);
    if !(knee > 0.0 && knee < 1.0) {
        p.push(format!("[load] knee = {knee}: the utilisation where errors start must be between 0 and 1 (e.g. 0.8)"));
    }
    let error_at_capacity = raw.error_at_capacity.unwrap_or(0.10);
    if !(error_at_capacity > 0.0 && error_at_capacity <= 1.0) {
        p.push(format!(
            "[load] error_at_capacity = {error_at_capacity} must be above 0 and at most 1"
        ));
    }
    let baseline_error = raw.baseline_error.unwrap_or(0.002);
    if !(baseline_error >= 0.0 && baseline_error < error_at_capacity) {
        p.push(format!("[load] baseline_error = {baseline_error} must be 0 or more and below error_at_capacity ({error_at_capacity})"));
    }
    let noise = raw.noise.unwrap_or(0.02);
    if !(0.0..=0.5).contains(&noise) {
        p.push(format!(
            "[load] noise = {noise} must be between 0 and 0.5 (a relative spread: 0.02 is ±2%)"
        ));
    }
    let lag = match raw.lag.as_deref() {
        None => Duration::from_secs(10),
        Some(s) => crate::limits::parse_duration(s).unwrap_or_else(|e| {
            p.push(format!(
                "[load] lag = \"{s}\": {e} (write durations as 500ms, 10s, 1m)"
            ));
            Duration::from_secs(10)
        }),
    };
    let signal = match raw.signal.as_deref().unwrap_or("error_rate") {
        "error_rate" => SignalKind::ErrorRate,
        "success_rate" => SignalKind::SuccessRate,
        "utilisation" | "utilization" => SignalKind::Utilisation,
        other => {
            p.push(format!(
                "[load] signal = \"{other}\": one of error_rate, success_rate, utilisation"
            ));
            SignalKind::ErrorRate
        }
    };
    LoadSpec {
        capacity,
        base,
        tiers: raw.tiers.clone(),
        knee,
        error_at_capacity,
        baseline_error,
        lag,
        noise,
        signal,
    }
}

/// `[traffic.signal]` needs a threshold on the side the simulated signal is good on.
fn check_threshold(signal: SignalKind, s: &Signal, p: &mut Vec<String>) {
    match (signal, s.good_below, s.good_above) {
        (_, None, None) => p.push("[traffic.signal] has no threshold, so the simulated signal would always be good and nothing would ever be shed: add good_below = 0.02".into()),
        (SignalKind::ErrorRate | SignalKind::Utilisation, None, Some(_)) => p.push(format!("[traffic.signal] has only good_above, but the simulated signal is the {} (good when low): use good_below, or set [load] signal = \"success_rate\"", signal.label())),
        (SignalKind::SuccessRate, Some(_), None) => p.push("[traffic.signal] has only good_below, but the simulated signal is the success rate (good when high): use good_above".into()),
        _ => {}
    }
}

/// Every tier's actions name endpoints of the topology and record groups it has.
fn check_tier_actions(
    ladder: &Ladder,
    endpoints: &BTreeMap<String, EndpointSpec>,
    record_groups: &BTreeSet<String>,
    p: &mut Vec<String>,
) {
    for tier in &ladder.tiers {
        for a in [&tier.apply, &tier.revert].into_iter().flatten() {
            match a {
                TierAction::Http { endpoint: Some(e), .. } if !endpoints.contains_key(e) => p.push(format!(
                    "[traffic] tier `{}` uses endpoint `{e}`, which is not an endpoint of the topology ({})",
                    tier.name,
                    endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
                TierAction::DnsWeights { group, .. } if !record_groups.contains(group) => p.push(format!(
                    "[traffic] tier `{}` changes the weights of group `{group}`, which no hosted zone of the topology belongs to",
                    tier.name
                )),
                _ => {}
            }
        }
    }
}

/// No two HTTP actions of the ladder are the same call, or the simulator could not tell
/// which tier a call sheds or restores.
fn check_distinct_calls(
    ladder: &Ladder,
    endpoints: &BTreeMap<String, EndpointSpec>,
    p: &mut Vec<String>,
) {
    let matchers = matchers(ladder, endpoints);
    for (i, a) in matchers.iter().enumerate() {
        if let Some(b) = matchers[..i]
            .iter()
            .find(|b| b.method == a.method && b.url == a.url && b.body == a.body)
        {
            p.push(format!(
                "[traffic] the {} call of tier `{}` is the same as the {} call of tier `{}`: the simulator could not tell them apart; give them different bodies or URLs",
                if a.shed { "apply" } else { "revert" },
                ladder.tiers[a.tier].name,
                if b.shed { "apply" } else { "revert" },
                ladder.tiers[b.tier].name
            ));
        }
    }
}

// ---- matching calls to tiers ------------------------------------------------------------

/// A template as literal segments with a wildcard between each two: `${...}` matches any
/// text, except `${tier}`, which is the tier's name.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern(Vec<String>);

impl Pattern {
    fn new(template: &str, tier: &str) -> Pattern {
        let Ok(parts) = crate::runbook::template::parse(template) else {
            return Pattern(vec![template.to_string()]);
        };
        let mut segs = vec![String::new()];
        for p in parts {
            match p {
                crate::runbook::template::Part::Lit(l) => {
                    segs.last_mut().expect("never empty").push_str(&l)
                }
                crate::runbook::template::Part::Var(v) if v == "tier" => {
                    segs.last_mut().expect("never empty").push_str(tier)
                }
                crate::runbook::template::Part::Var(_) => segs.push(String::new()),
            }
        }
        Pattern(segs)
    }

    fn matches(&self, s: &str) -> bool {
        let segs = &self.0;
        if segs.len() == 1 {
            return s == segs[0];
        }
        let (first, last) = (&segs[0], &segs[segs.len() - 1]);
        if s.len() < first.len() + last.len()
            || !s.starts_with(first.as_str())
            || !s.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &s[first.len()..s.len() - last.len()];
        for seg in &segs[1..segs.len() - 1] {
            match rest.find(seg.as_str()) {
                Some(i) => rest = &rest[i + seg.len()..],
                None => return false,
            }
        }
        true
    }
}

#[derive(Clone, Debug)]
struct Matcher {
    tier: usize,
    shed: bool,
    method: String,
    url: Pattern,
    body: Option<Pattern>,
}

fn trim_url(u: &str) -> &str {
    u.trim_end_matches('/')
}

/// One matcher per HTTP action of the ladder, as `runbook::ladder::bind_ladder` builds the request.
fn matchers(ladder: &Ladder, endpoints: &BTreeMap<String, EndpointSpec>) -> Vec<Matcher> {
    let mut out = vec![];
    for (i, t) in ladder.tiers.iter().enumerate() {
        for (shed, a) in [(true, &t.apply), (false, &t.revert)] {
            let Some(TierAction::Http {
                endpoint,
                url,
                method,
                body,
                ..
            }) = a
            else {
                continue;
            };
            let ep = endpoint.as_ref().and_then(|e| endpoints.get(e));
            let url = url
                .clone()
                .or(ep.map(|e| e.url.clone()))
                .unwrap_or_default();
            out.push(Matcher {
                tier: i,
                shed,
                method: method
                    .clone()
                    .or(ep.map(|e| e.method.clone()))
                    .unwrap_or_else(|| "POST".into())
                    .to_ascii_uppercase(),
                url: Pattern::new(trim_url(&url), &t.name),
                body: body.as_deref().map(|b| Pattern::new(b, &t.name)),
            });
        }
    }
    out
}

/// What an HTTP call to the traffic side of the world is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A read of the signal.
    Signal,
    /// The apply (`shed`) or revert call of a tier.
    Tier { tier: usize, shed: bool },
}

// ---- the state ----------------------------------------------------------------------------

/// The figures at one moment, as the report shows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadSample {
    pub at_ms: u64,
    pub capacity: f64,
    pub demand: f64,
    pub utilisation: f64,
    /// The model's error rate (no noise).
    pub error_rate: f64,
    /// The signal without noise is good by the ladder's threshold.
    pub good: bool,
    /// Tiers shed in the world (in ladder order).
    pub shed: Vec<String>,
    pub zones_down: Vec<Zone>,
}

/// One read of the signal endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct SignalReading {
    pub at_ms: u64,
    /// What the endpoint answered (with noise).
    pub value: f64,
    pub error_rate: f64,
    pub utilisation: f64,
}

/// One apply or revert call the simulated admin API received.
#[derive(Clone, Debug, Serialize)]
pub struct TierCall {
    pub at_ms: u64,
    pub tier: String,
    /// true: apply (shed), false: revert (restore).
    pub shed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TierLoad {
    pub name: String,
    pub protected: bool,
    pub load: f64,
}

/// What the simulated traffic did, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct TrafficReport {
    /// `error rate`, `success rate` or `utilisation`.
    pub signal: String,
    pub signal_url: String,
    pub good_below: Option<f64>,
    pub good_above: Option<f64>,
    pub base: f64,
    pub tiers: Vec<TierLoad>,
    pub lag_ms: u64,
    /// The figures after every change, from the start.
    pub samples: Vec<LoadSample>,
    pub readings: Vec<SignalReading>,
    pub calls: Vec<TierCall>,
    /// Tiers shed in the world at the end.
    pub shed_at_end: Vec<String>,
    /// Calls made but not in effect yet when the simulation ended (within the lag).
    pub pending_at_end: Vec<TierCall>,
}

impl TrafficReport {
    /// The threshold in words: `good below 0.02`.
    pub fn threshold(&self) -> String {
        match (self.good_below, self.good_above) {
            (Some(b), Some(a)) => format!("good between {a} and {b}"),
            (Some(b), None) => format!("good below {b}"),
            (None, Some(a)) => format!("good above {a}"),
            (None, None) => "always good".into(),
        }
    }

    /// When the signal (without noise) became good for the last time, if it is good at the
    /// end and was bad at some point: how long the storefront suffered.
    pub fn recovered_at(&self) -> Option<Duration> {
        let last = self.samples.last()?;
        if !last.good || self.samples.iter().all(|s| s.good) {
            return None;
        }
        let i = self.samples.iter().rposition(|s| !s.good)?;
        self.samples
            .get(i + 1)
            .map(|s| Duration::from_millis(s.at_ms))
    }

    /// When the signal first turned bad.
    pub fn degraded_at(&self) -> Option<Duration> {
        self.samples
            .iter()
            .find(|s| !s.good)
            .map(|s| Duration::from_millis(s.at_ms))
    }

    /// The tiers the admin APIs were told to shed, in order.
    pub fn shed_calls(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter(|c| c.shed)
            .map(|c| c.tier.as_str())
            .collect()
    }

    /// The tiers the admin APIs were told to restore, in order.
    pub fn restore_calls(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter(|c| !c.shed)
            .map(|c| c.tier.as_str())
            .collect()
    }
}

struct DnsTier {
    tier: usize,
    group: String,
    apply: BTreeMap<Zone, i64>,
}

/// The traffic side of the simulated world.
pub struct TrafficSim {
    ladder: Ladder,
    spec: LoadSpec,
    matchers: Vec<Matcher>,
    dns: Vec<DnsTier>,
    rng: fastrand::Rng,
    /// Whether each tier is shed in the world (the edge applies it).
    shed: Vec<bool>,
    /// The latest call per tier, not in effect yet: (id, shed).
    pending: Vec<Option<(u64, bool)>>,
    next_id: u64,
    last: Option<LoadSample>,
    samples: Vec<LoadSample>,
    readings: Vec<SignalReading>,
    calls: Vec<TierCall>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// `225`, `12.5`.
pub fn fmt_load(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `113%`, `∞` when nothing is left to serve.
pub fn fmt_util(u: f64) -> String {
    if u.is_finite() {
        format!("{:.0}%", (u * 100.0).round())
    } else {
        "∞".into()
    }
}

/// `20.0%`, `0.3%`.
pub fn fmt_rate(e: f64) -> String {
    format!("{:.1}%", (e * 1000.0).round() / 10.0)
}

impl TrafficSim {
    /// The traffic of a topology with a ladder and a load model.
    pub fn new(
        ladder: &Ladder,
        spec: &LoadSpec,
        endpoints: &BTreeMap<String, EndpointSpec>,
        seed: u64,
    ) -> TrafficSim {
        let dns = ladder
            .tiers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match &t.apply {
                Some(TierAction::DnsWeights { group, weights }) => Some(DnsTier {
                    tier: i,
                    group: group.clone(),
                    apply: weights.clone(),
                }),
                _ => None,
            })
            .collect();
        TrafficSim {
            ladder: ladder.clone(),
            spec: spec.clone(),
            matchers: matchers(ladder, endpoints),
            dns,
            // Its own generator: the readings' noise does not move any other draw of the world.
            rng: fastrand::Rng::with_seed(seed ^ 0x7AFF_1C5E_ED00_0001),
            shed: vec![false; ladder.tiers.len()],
            pending: vec![None; ladder.tiers.len()],
            next_id: 0,
            last: None,
            samples: vec![],
            readings: vec![],
            calls: vec![],
        }
    }

    pub fn lag(&self) -> Duration {
        self.spec.lag
    }

    /// What a request is to the traffic side, if anything.
    pub fn target(&self, method: &str, url: &str, body: Option<&str>) -> Option<Target> {
        let base = |u: &str| trim_url(u.split(['?', '#']).next().unwrap_or("")).to_string();
        if method.eq_ignore_ascii_case("GET") && base(url) == base(&self.ladder.signal.url) {
            return Some(Target::Signal);
        }
        let url = trim_url(url);
        self.matchers
            .iter()
            .find(|m| {
                m.method.eq_ignore_ascii_case(method)
                    && m.url.matches(url)
                    && m.body
                        .as_ref()
                        .is_none_or(|b| b.matches(body.unwrap_or("")))
            })
            .map(|m| Target::Tier {
                tier: m.tier,
                shed: m.shed,
            })
    }

    /// A name for a call with no endpoint of the topology behind it.
    pub fn target_name(&self, t: &Target) -> String {
        match t {
            Target::Signal => "the traffic signal".into(),
            Target::Tier { tier, shed } => format!(
                "the {} of tier `{}`",
                if *shed { "apply" } else { "revert" },
                self.ladder.tiers[*tier].name
            ),
        }
    }

    fn sample(&self, now: Duration, down: &BTreeSet<Zone>) -> LoadSample {
        let capacity: f64 = self
            .spec
            .capacity
            .iter()
            .filter(|(z, _)| !down.contains(*z))
            .map(|(_, c)| c)
            .sum();
        let demand = self.spec.base
            + self
                .ladder
                .tiers
                .iter()
                .enumerate()
                .filter(|(i, t)| t.protected || !self.shed[*i])
                .map(|(_, t)| self.spec.load(&t.name))
                .sum::<f64>();
        let utilisation = if capacity > 0.0 {
            demand / capacity
        } else if demand > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let error_rate = self.spec.error_rate(utilisation);
        LoadSample {
            at_ms: ms(now),
            capacity,
            demand,
            utilisation,
            error_rate,
            good: self.good(self.value(error_rate, utilisation)),
            shed: self
                .ladder
                .tiers
                .iter()
                .enumerate()
                .filter(|(i, _)| self.shed[*i])
                .map(|(_, t)| t.name.clone())
                .collect(),
            zones_down: self
                .spec
                .capacity
                .keys()
                .filter(|z| down.contains(*z))
                .cloned()
                .collect(),
        }
    }

    fn value(&self, e: f64, u: f64) -> f64 {
        match self.spec.signal {
            SignalKind::ErrorRate => e,
            SignalKind::SuccessRate => 1.0 - e,
            SignalKind::Utilisation => u,
        }
    }

    fn good(&self, v: f64) -> bool {
        let s = &self.ladder.signal;
        s.good_below.is_none_or(|b| v < b) && s.good_above.is_none_or(|a| v > a)
    }

    fn verdict(&self, s: &LoadSample) -> String {
        let v = self.value(s.error_rate, s.utilisation);
        let what = match self.spec.signal {
            SignalKind::ErrorRate => String::new(),
            k => format!(
                ", {} {}",
                k.label(),
                if k == SignalKind::Utilisation {
                    fmt_util(v)
                } else {
                    fmt_rate(v)
                }
            ),
        };
        let not = if s.good { "" } else { "not " };
        let rule = match (self.ladder.signal.good_below, self.ladder.signal.good_above) {
            (Some(b), None) => format!("{not}below {b}"),
            (None, Some(a)) => format!("{not}above {a}"),
            (Some(b), Some(a)) => format!("{not}between {a} and {b}"),
            (None, None) => String::new(),
        };
        format!("{what}: {} ({rule})", if s.good { "good" } else { "bad" })
    }

    /// Take a sample if anything changed since the last one; the note says what and why.
    pub fn observe(&mut self, now: Duration, down: &BTreeSet<Zone>) -> Option<String> {
        let s = self.sample(now, down);
        let figures = |s: &LoadSample| {
            format!(
                "utilisation {}, error rate {}",
                fmt_util(s.utilisation),
                fmt_rate(s.error_rate)
            )
        };
        let note = match &self.last {
            None => format!(
                "traffic: capacity {} in {} zone(s) up, demand {}: {}{}",
                fmt_load(s.capacity),
                self.spec.capacity.len() - s.zones_down.len(),
                fmt_load(s.demand),
                figures(&s),
                self.verdict(&s)
            ),
            Some(p)
                if p.capacity == s.capacity
                    && p.demand == s.demand
                    && p.shed == s.shed
                    && p.zones_down == s.zones_down =>
            {
                return None
            }
            Some(p) => {
                let mut what = vec![];
                for z in s.zones_down.iter().filter(|z| !p.zones_down.contains(z)) {
                    what.push(format!("{z} is down"));
                }
                for z in p.zones_down.iter().filter(|z| !s.zones_down.contains(z)) {
                    what.push(format!("{z} is back"));
                }
                for t in s.shed.iter().filter(|t| !p.shed.contains(t)) {
                    what.push(format!(
                        "tier `{t}` is shed (−{})",
                        fmt_load(self.spec.load(t))
                    ));
                }
                for t in p.shed.iter().filter(|t| !s.shed.contains(t)) {
                    what.push(format!(
                        "tier `{t}` is back (+{})",
                        fmt_load(self.spec.load(t))
                    ));
                }
                let change = |a: f64, b: f64| {
                    if a == b {
                        fmt_load(b)
                    } else {
                        format!("{} → {}", fmt_load(a), fmt_load(b))
                    }
                };
                format!(
                    "traffic: {}: capacity {}, demand {}: {}{}",
                    what.join(", "),
                    change(p.capacity, s.capacity),
                    change(p.demand, s.demand),
                    figures(&s),
                    self.verdict(&s)
                )
            }
        };
        self.last = Some(s.clone());
        self.samples.push(s);
        Some(note)
    }

    /// A read of the signal: the response body and a note for the timeline.
    pub fn read_signal(&mut self, now: Duration, down: &BTreeSet<Zone>) -> (String, String) {
        let s = self.sample(now, down);
        let jitter = 1.0 + self.spec.noise * (2.0 * self.rng.f64() - 1.0);
        let (e, u) = match self.spec.signal {
            SignalKind::Utilisation => (s.error_rate, s.utilisation * jitter),
            _ => ((s.error_rate * jitter).clamp(0.0, 1.0), s.utilisation),
        };
        // Nothing left to serve: utilisation is infinite, which JSON cannot carry.
        let value = match self.value(e, u) {
            v if v.is_finite() => (v * 10_000.0).round() / 10_000.0,
            _ => 1e6,
        };
        self.readings.push(SignalReading {
            at_ms: ms(now),
            value,
            error_rate: s.error_rate,
            utilisation: s.utilisation,
        });
        let body = match &self.ladder.signal.pointer {
            None => format!("{value}"),
            Some(p) => {
                let mut v = serde_json::json!(value);
                for seg in p.split('/').skip(1).collect::<Vec<_>>().into_iter().rev() {
                    let key = seg.replace("~1", "/").replace("~0", "~");
                    v = serde_json::Value::Object([(key, v)].into_iter().collect());
                }
                v.to_string()
            }
        };
        let note = format!(
            "{} {value} (utilisation {}, demand {} on capacity {})",
            self.spec.signal.label(),
            fmt_util(s.utilisation),
            fmt_load(s.demand),
            fmt_load(s.capacity)
        );
        (body, note)
    }

    /// An apply or revert call: takes effect after the lag. Returns the id to play then and
    /// a note for the timeline.
    pub fn request(&mut self, now: Duration, tier: usize, shed: bool) -> (u64, String) {
        self.next_id += 1;
        let id = self.next_id;
        let already = self.pending[tier]
            .map(|(_, s)| s)
            .unwrap_or(self.shed[tier])
            == shed;
        self.pending[tier] = Some((id, shed));
        let name = self.ladder.tiers[tier].name.clone();
        self.calls.push(TierCall {
            at_ms: ms(now),
            tier: name.clone(),
            shed,
        });
        let load = fmt_load(self.spec.load(&name));
        let note = match (already, shed) {
            (true, true) => format!("tier `{name}` is already shed: nothing changes"),
            (true, false) => format!("tier `{name}` is not shed: nothing changes"),
            (false, true) => format!(
                "sheds tier `{name}` (−{load} of demand) in {}",
                fmt_dur(self.spec.lag)
            ),
            (false, false) => format!(
                "restores tier `{name}` (+{load} of demand) in {}",
                fmt_dur(self.spec.lag)
            ),
        };
        (id, note)
    }

    /// The call `id` takes effect, unless a later call on the same tier superseded it.
    pub fn take_effect(&mut self, tier: usize, shed: bool, id: u64) {
        if self.pending.get(tier).copied().flatten() == Some((id, shed)) {
            self.shed[tier] = shed;
            self.pending[tier] = None;
        }
    }

    /// Tiers shed by Route 53 weights: (tier, group, the weights that shed it).
    pub fn dns_tiers(&self) -> impl Iterator<Item = (usize, &str, &BTreeMap<Zone, i64>)> {
        self.dns
            .iter()
            .map(|d| (d.tier, d.group.as_str(), &d.apply))
    }

    /// A Route 53 change left a DNS tier `applied` (its group has the apply weights) or not:
    /// if that differs from what the tier is or is about to be, a change is under way.
    pub fn dns_state(&mut self, now: Duration, tier: usize, applied: bool) -> Option<u64> {
        let heading = self.pending[tier]
            .map(|(_, s)| s)
            .unwrap_or(self.shed[tier]);
        (heading != applied).then(|| self.request(now, tier, applied).0)
    }

    pub fn report(&self) -> TrafficReport {
        TrafficReport {
            signal: self.spec.signal.label().into(),
            signal_url: self.ladder.signal.url.clone(),
            good_below: self.ladder.signal.good_below,
            good_above: self.ladder.signal.good_above,
            base: self.spec.base,
            tiers: self
                .ladder
                .tiers
                .iter()
                .map(|t| TierLoad {
                    name: t.name.clone(),
                    protected: t.protected,
                    load: self.spec.load(&t.name),
                })
                .collect(),
            lag_ms: ms(self.spec.lag),
            samples: self.samples.clone(),
            readings: self.readings.clone(),
            calls: self.calls.clone(),
            shed_at_end: self
                .ladder
                .tiers
                .iter()
                .enumerate()
                .filter(|(i, _)| self.shed[*i])
                .map(|(_, t)| t.name.clone())
                .collect(),
            pending_at_end: self
                .pending
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let (_, shed) = (*p)?;
                    let at_ms = self
                        .calls
                        .iter()
                        .rev()
                        .find(|c| c.tier == self.ladder.tiers[i].name && c.shed == shed)
                        .map(|c| c.at_ms)
                        .unwrap_or_default();
                    Some(TierCall {
                        at_ms,
                        tier: self.ladder.tiers[i].name.clone(),
                        shed,
                    })
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LoadSpec {
        LoadSpec {
            capacity: BTreeMap::new(),
            base: 0.0,
            tiers: BTreeMap::new(),
            knee: 0.8,
            error_at_capacity: 0.10,
            baseline_error: 0.003,
            lag: Duration::from_secs(10),
            noise: 0.0,
            signal: SignalKind::ErrorRate,
        }
    }

    #[test]
    fn the_error_rate_is_flat_to_the_knee_then_grows_and_is_continuous() {
        let s = spec();
        assert_eq!(s.error_rate(0.5), 0.003);
        assert_eq!(s.error_rate(0.8), 0.003);
        assert!((s.error_rate(0.9) - (0.003 + 0.097 * 0.5)).abs() < 1e-12);
        assert!((s.error_rate(1.0) - 0.10).abs() < 1e-12);
        assert!(
            (s.error_rate(1.0 + 1e-9) - 0.10).abs() < 1e-6,
            "continuous at full capacity"
        );
        assert!(
            (s.error_rate(1.125) - 0.2).abs() < 1e-12,
            "beyond capacity the excess is refused: 1 - 0.9/1.125"
        );
        assert_eq!(s.error_rate(f64::INFINITY), 1.0);
        let mut prev = 0.0;
        for i in 0..400 {
            let e = s.error_rate(i as f64 / 100.0);
            assert!(e >= prev, "monotonic at {i}");
            prev = e;
        }
    }

    #[test]
    fn templates_match_with_variables_as_wildcards() {
        let p = Pattern::new(
            r#"{"rule": "block-${tier}", "enabled": true, "run": "${run.id}"}"#,
            "crawlers",
        );
        assert!(p.matches(r#"{"rule": "block-crawlers", "enabled": true, "run": "sim-7"}"#));
        assert!(!p.matches(r#"{"rule": "block-crawlers", "enabled": false, "run": "sim-7"}"#));
        assert!(!p.matches(r#"{"rule": "block-bots", "enabled": true, "run": "sim-7"}"#));
        let plain = Pattern::new("https://flags/x", "t");
        assert!(plain.matches("https://flags/x") && !plain.matches("https://flags/xy"));
        let both_ends = Pattern::new("${a}mid${b}", "t");
        assert!(
            both_ends.matches("xxmidyy") && both_ends.matches("mid") && !both_ends.matches("mi")
        );
        let escaped = Pattern::new("a $${literal} b", "t");
        assert!(escaped.matches("a ${literal} b"));
    }
}
