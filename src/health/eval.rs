//! The pure evaluator: rounds of probe results in, zone states and events out.
//!
//! No IO and no clock: a [`Round`] carries the time it was taken, given by the caller, so the
//! same rounds always give the same decisions (and the tests are tables).
//!
//! # Rules
//!
//! For every target (a zone, or the region for region-wide probes) with N configured probes
//! and quorum K, each round has a **verdict**. With `f` failing, `u` unknown probes (a probe
//! missing from the round counts as unknown):
//!
//! - **bad** when `f >= K`;
//! - **good** when `f + u < K`: even if every unknown probe were failing, the quorum would not
//!   be reached;
//! - **inconclusive** otherwise (`f < K <= f + u`): the unknowns could decide it either way.
//!
//! So an unknown probe (one that could not run: its own error, credentials, an API that did not
//! answer) never counts as failing, and never as passing either. An inconclusive round is as if
//! it had not happened: it neither extends nor breaks a streak. A zone whose probes are all
//! unknown keeps its state, and the report says how many rounds were inconclusive.
//!
//! **States** (hysteresis): a zone starts `Unknown`; it becomes `Healthy` at its first good
//! round (no event: nothing changed for anyone), `Unhealthy` after M consecutive bad rounds
//! (`unhealthy_after`), and `Healthy` again after R consecutive good rounds (`healthy_after`).
//! Events are emitted for `-> Unhealthy` and `Unhealthy -> Healthy` only.
//!
//! **Observer suspect**: when at least two zones have probes and, in one round, none of them
//! looks up — every verdict is bad or inconclusive, and at least one is bad — the failure is
//! more likely on the observer's side (its network, its DNS, its credentials) than in every
//! zone at once. An inconclusive zone counts as "not seen up" here on purpose: when the
//! observer's network fails, its direct probes fail while its AWS API probes turn unknown, and
//! a zone probed only through APIs must not make the others look like a real failure. The round is marked suspect, the region is reported as
//! `ObserverSuspect`, and any `-> Unhealthy` event of that round carries
//! `observer_suspect = true`, which no trigger acts on. This also means a zone can never be
//! evacuated when every other zone already looks down: there would be nowhere to go.
//!
//! **Region** health derives from the zones: `Healthy` when no zone is unhealthy, `Degraded`
//! when some are, `Unhealthy` when all are or when the region-wide probes are, and
//! `ObserverSuspect` as above.
//!
//! Every decision records why: the probes that failed (or were unknown) in the deciding round,
//! with their detail, since when the streak ran, and how many rounds it took.

use super::config::{HealthConfig, Target};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// What one probe said in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The probe could not run (its own error, credentials, the API did not answer): it says
    /// nothing about the zone.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Unknown => "unknown",
        })
    }
}

/// One probe's result in a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    pub probe: String,
    pub target: Target,
    /// `http`, `tcp`, `cloudwatch_alarm`, `rds`, `route53_health_check`.
    pub kind: String,
    pub outcome: Outcome,
    /// What was seen (`HTTP 200 in 12ms`, `connection refused`, `ALARM: threshold crossed`).
    pub detail: String,
    #[serde(serialize_with = "ser_opt_ms")]
    pub latency: Option<Duration>,
    /// Attempts made this round (more than one when a failed attempt was retried).
    pub attempts: u32,
}

/// Every probe's result for one round, and when the round was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Round {
    #[serde(serialize_with = "ser_time")]
    pub started: SystemTime,
    /// When the last result came in: the earliest a decision could be acted upon.
    #[serde(serialize_with = "ser_time")]
    pub at: SystemTime,
    pub results: Vec<ProbeResult>,
}

/// Quorum and hysteresis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rules {
    /// K for zones.
    pub quorum: u32,
    /// K for region-wide probes.
    pub region_quorum: u32,
    /// M.
    pub unhealthy_after: u32,
    /// R.
    pub healthy_after: u32,
}

impl Rules {
    pub fn from_config(cfg: &HealthConfig) -> Self {
        Self {
            quorum: cfg.quorum,
            region_quorum: cfg.region_quorum,
            unhealthy_after: cfg.unhealthy_after,
            healthy_after: cfg.healthy_after,
        }
    }
}

/// A round's verdict for one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Good,
    Bad,
    Inconclusive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No conclusive round yet.
    Unknown,
    Healthy,
    Unhealthy,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Unknown => "unknown",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
        })
    }
}

/// The direction of a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Became {
    Unhealthy,
    Healthy,
}

/// A probe named in a reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub probe: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// Why a target is in its state: the probes of the deciding round, and the streak.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Why {
    /// One line for people, the timeline and the audit log.
    pub summary: String,
    pub failing: Vec<Finding>,
    pub unknown: Vec<Finding>,
    /// First round of the streak that led to the decision.
    #[serde(serialize_with = "ser_time")]
    pub since: SystemTime,
    /// Length of that streak, in rounds.
    pub rounds: u32,
}

/// A zone (or the region) changed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ZoneEvent {
    pub target: Target,
    pub became: Became,
    pub why: Why,
    /// Time of the round that decided it.
    #[serde(serialize_with = "ser_time")]
    pub at: SystemTime,
    /// Every probed zone looked down in the deciding round: the observer itself is suspect,
    /// and nothing may be triggered from this event.
    pub observer_suspect: bool,
}

impl ZoneEvent {
    /// The zone, for zone events (`None` for region-wide probes).
    pub fn zone(&self) -> Option<&crate::types::Zone> {
        self.target.zone()
    }
}

/// The tally of one round for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub verdict: Verdict,
    pub failing: u32,
    pub passing: u32,
    pub unknown: u32,
    #[serde(serialize_with = "ser_time")]
    pub at: SystemTime,
}

/// Everything known about one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    pub target: Target,
    /// N: configured probes.
    pub probes: u32,
    /// K.
    pub quorum: u32,
    pub state: State,
    /// When the current state was entered.
    #[serde(serialize_with = "ser_opt_time")]
    pub since: Option<SystemTime>,
    pub bad_streak: u32,
    pub good_streak: u32,
    /// Inconclusive rounds in a row (reset by any conclusive round).
    pub inconclusive_streak: u32,
    #[serde(serialize_with = "ser_opt_time")]
    pub streak_since: Option<SystemTime>,
    pub last: Option<Tally>,
    /// Why the target is in its state (the last transition), if it ever changed.
    pub why: Option<Why>,
}

/// Whether the observer itself is suspect.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ObserverStatus {
    pub suspect: bool,
    #[serde(serialize_with = "ser_opt_time")]
    pub since: Option<SystemTime>,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionState {
    Unknown,
    Healthy,
    /// Some zones are unhealthy, at least one is not.
    Degraded,
    /// Every probed zone is unhealthy, or the region-wide probes are.
    Unhealthy,
    /// Every probed zone looked down in the last round: suspect the observer.
    ObserverSuspect,
}

impl fmt::Display for RegionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionState::Unknown => "unknown",
            RegionState::Healthy => "healthy",
            RegionState::Degraded => "degraded",
            RegionState::Unhealthy => "unhealthy",
            RegionState::ObserverSuspect => "observer suspect",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionHealth {
    pub state: RegionState,
    pub unhealthy_zones: Vec<crate::types::Zone>,
    pub reason: String,
}

/// Quorum + hysteresis state machines for every target, and the observer check.
#[derive(Clone, Debug)]
pub struct Evaluator {
    rules: Rules,
    targets: BTreeMap<Target, TargetStatus>,
    observer: ObserverStatus,
    rounds: u64,
}

impl Evaluator {
    /// `probes`: N for every target that has probes.
    pub fn new(rules: Rules, probes: BTreeMap<Target, u32>) -> Self {
        let targets = probes
            .into_iter()
            .map(|(t, n)| {
                let k = match t {
                    Target::Zone(_) => rules.quorum,
                    Target::Region(_) => rules.region_quorum,
                };
                let status = TargetStatus {
                    target: t.clone(),
                    probes: n,
                    quorum: k,
                    state: State::Unknown,
                    since: None,
                    bad_streak: 0,
                    good_streak: 0,
                    inconclusive_streak: 0,
                    streak_since: None,
                    last: None,
                    why: None,
                };
                (t, status)
            })
            .collect();
        Self {
            rules,
            targets,
            observer: ObserverStatus::default(),
            rounds: 0,
        }
    }

    pub fn from_config(cfg: &HealthConfig) -> Self {
        Self::new(Rules::from_config(cfg), cfg.probe_counts())
    }

    pub fn rules(&self) -> Rules {
        self.rules
    }

    /// Rounds observed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    pub fn targets(&self) -> impl Iterator<Item = &TargetStatus> {
        self.targets.values()
    }

    pub fn status(&self, target: &Target) -> Option<&TargetStatus> {
        self.targets.get(target)
    }

    pub fn observer(&self) -> &ObserverStatus {
        &self.observer
    }

    /// Feed one round; returns the transitions it caused.
    pub fn observe(&mut self, round: &Round) -> Vec<ZoneEvent> {
        self.rounds += 1;
        // 1. Tally every target.
        let mut tallies: BTreeMap<Target, RoundTally> = self
            .targets
            .iter()
            .map(|(target, st)| (target.clone(), tally(st, round)))
            .collect();

        // 2. Observer check, on this round's verdicts.
        let suspect = self.check_observer(&tallies, round.at);

        // 3. Hysteresis per target.
        let mut events = vec![];
        let rules = self.rules;
        for (target, st) in self.targets.iter_mut() {
            let t = tallies.remove(target).expect("tallied above");
            events.extend(advance(st, t, rules, round.at, suspect));
        }
        events
    }

    /// Whether the observer is suspect after this round: two or more probed zones, none of
    /// them good and one at least bad. Updates the observer status.
    fn check_observer(&mut self, tallies: &BTreeMap<Target, RoundTally>, at: SystemTime) -> bool {
        let zones: Vec<&TargetStatus> = self
            .targets
            .values()
            .filter(|s| matches!(s.target, Target::Zone(_)))
            .collect();
        let verdict = |s: &TargetStatus| tallies[&s.target].tally.verdict;
        let suspect = zones.len() >= 2
            && zones.iter().all(|s| verdict(s) != Verdict::Good)
            && zones.iter().any(|s| verdict(s) == Verdict::Bad);
        if suspect {
            if !self.observer.suspect {
                self.observer.since = Some(at);
            }
            self.observer.suspect = true;
            self.observer.reason = Some(format!(
                "none of the {} probed zones looks up in the same round (each is failing or cannot be seen): the observer's own network, DNS or credentials are more likely at fault than every zone at once; nothing is triggered (check from another vantage point)",
                zones.len()
            ));
        } else {
            self.observer = ObserverStatus::default();
        }
        suspect
    }

    /// Region health, derived from the zones (and the region-wide probes).
    pub fn region(&self) -> RegionHealth {
        let zones: Vec<&TargetStatus> = self
            .targets
            .values()
            .filter(|s| matches!(s.target, Target::Zone(_)))
            .collect();
        let unhealthy: Vec<crate::types::Zone> = zones
            .iter()
            .filter(|s| s.state == State::Unhealthy)
            .filter_map(|s| s.target.zone().cloned())
            .collect();
        let regional = self
            .targets
            .values()
            .find(|s| matches!(s.target, Target::Region(_)));
        let names =
            |z: &[crate::types::Zone]| z.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ");
        let (state, reason) = if self.observer.suspect {
            (
                RegionState::ObserverSuspect,
                self.observer.reason.clone().unwrap_or_default(),
            )
        } else if let Some(r) = regional.filter(|r| r.state == State::Unhealthy) {
            (
                RegionState::Unhealthy,
                format!(
                    "region-wide probes are unhealthy: {}",
                    r.why.as_ref().map(|w| w.summary.as_str()).unwrap_or("")
                ),
            )
        } else if !zones.is_empty() && unhealthy.len() == zones.len() {
            (
                RegionState::Unhealthy,
                format!("every probed zone is unhealthy: {}", names(&unhealthy)),
            )
        } else if !unhealthy.is_empty() {
            (
                RegionState::Degraded,
                format!("unhealthy: {}", names(&unhealthy)),
            )
        } else if zones.iter().all(|s| s.state == State::Unknown) {
            (RegionState::Unknown, "no conclusive round yet".to_string())
        } else {
            (RegionState::Healthy, "no zone is unhealthy".to_string())
        };
        RegionHealth {
            state,
            unhealthy_zones: unhealthy,
            reason,
        }
    }
}

/// One target's tally of a round, with the probes that failed and those that could not tell.
struct RoundTally {
    tally: Tally,
    failing: Vec<Finding>,
    unknown: Vec<Finding>,
}

/// Count a round's results for one target and give the round's verdict (quorum K of N).
fn tally(st: &TargetStatus, round: &Round) -> RoundTally {
    let mine: Vec<&ProbeResult> = round
        .results
        .iter()
        .filter(|r| r.target == st.target)
        .collect();
    let failing: Vec<Finding> = mine
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .map(|r| finding(r))
        .collect();
    let mut unknown: Vec<Finding> = mine
        .iter()
        .filter(|r| r.outcome == Outcome::Unknown)
        .map(|r| finding(r))
        .collect();
    let passing = mine.iter().filter(|r| r.outcome == Outcome::Pass).count() as u32;
    let seen = mine.len() as u32;
    let missing = st.probes.saturating_sub(seen);
    if missing > 0 {
        unknown.push(Finding {
            probe: format!("{missing} probe(s)"),
            outcome: Outcome::Unknown,
            detail: "no result this round".into(),
        });
    }
    let f = failing.len() as u32;
    let u = (unknown.len() as u32 - u32::from(missing > 0)) + missing;
    let verdict = if f >= st.quorum {
        Verdict::Bad
    } else if f + u < st.quorum {
        Verdict::Good
    } else {
        Verdict::Inconclusive
    };
    RoundTally {
        tally: Tally {
            verdict,
            failing: f,
            passing,
            unknown: u,
            at: round.at,
        },
        failing,
        unknown,
    }
}

/// Hysteresis: move one target's streaks on by a round's tally; the transition, if any.
fn advance(
    st: &mut TargetStatus,
    t: RoundTally,
    rules: Rules,
    at: SystemTime,
    suspect: bool,
) -> Option<ZoneEvent> {
    let RoundTally {
        tally,
        failing,
        unknown,
    } = t;
    let verdict = tally.verdict;
    st.last = Some(tally);
    match verdict {
        Verdict::Inconclusive => {
            st.inconclusive_streak += 1;
            None
        }
        Verdict::Bad => {
            st.inconclusive_streak = 0;
            if st.bad_streak == 0 {
                st.streak_since = Some(at);
            }
            st.bad_streak += 1;
            st.good_streak = 0;
            (st.state != State::Unhealthy && st.bad_streak >= rules.unhealthy_after)
                .then(|| transition(st, &failing, &unknown, Became::Unhealthy, at, suspect))
        }
        Verdict::Good => {
            st.inconclusive_streak = 0;
            if st.good_streak == 0 {
                st.streak_since = Some(at);
            }
            st.good_streak += 1;
            st.bad_streak = 0;
            match st.state {
                State::Unknown => {
                    st.state = State::Healthy;
                    st.since = Some(at);
                    None
                }
                State::Unhealthy if st.good_streak >= rules.healthy_after => Some(transition(
                    st,
                    &failing,
                    &unknown,
                    Became::Healthy,
                    at,
                    false,
                )),
                _ => None,
            }
        }
    }
}

/// Put a target in the state it `became` now, with the reason; the event that says so.
fn transition(
    st: &mut TargetStatus,
    failing: &[Finding],
    unknown: &[Finding],
    became: Became,
    at: SystemTime,
    observer_suspect: bool,
) -> ZoneEvent {
    let why = why(st, failing, unknown, became, at);
    st.state = match became {
        Became::Unhealthy => State::Unhealthy,
        Became::Healthy => State::Healthy,
    };
    st.since = Some(at);
    st.why = Some(why.clone());
    ZoneEvent {
        target: st.target.clone(),
        became,
        why,
        at,
        observer_suspect,
    }
}

fn finding(r: &ProbeResult) -> Finding {
    Finding {
        probe: r.probe.clone(),
        outcome: r.outcome,
        detail: r.detail.clone(),
    }
}

fn why(
    st: &TargetStatus,
    failing: &[Finding],
    unknown: &[Finding],
    became: Became,
    at: SystemTime,
) -> Why {
    let since = st.streak_since.unwrap_or(at);
    let (rounds, adjective) = match became {
        Became::Unhealthy => (st.bad_streak, "bad"),
        Became::Healthy => (st.good_streak, "good"),
    };
    let mut summary = format!(
        "{} of {} probes failing (quorum {}) for {rounds} consecutive {adjective} round(s) since {}",
        failing.len(),
        st.probes,
        st.quorum,
        fmt_time(since)
    );
    if !failing.is_empty() {
        let list: Vec<String> = failing
            .iter()
            .map(|f| format!("{} ({})", f.probe, f.detail))
            .collect();
        summary.push_str(&format!(": {}", list.join("; ")));
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .map(|f| format!("{} ({})", f.probe, f.detail))
            .collect();
        summary.push_str(&format!("; unknown: {}", list.join("; ")));
    }
    Why {
        summary,
        failing: failing.to_vec(),
        unknown: unknown.to_vec(),
        since,
        rounds,
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn fmt_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_time(*t))
}

pub(crate) fn ser_opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&fmt_time(*t)),
        None => s.serialize_none(),
    }
}

pub(crate) fn ser_opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Region, Zone};

    const T0: u64 = 1_800_000_000;

    fn at(i: usize) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + i as u64)
    }

    fn zone(z: char) -> Target {
        Target::Zone(Zone::new(format!("us-west-2{z}")))
    }

    /// A round from a compact spelling: `"a:FFP b:PPP c:PPP"`, one letter per probe of the zone
    /// (P pass, F fail, U unknown, - missing from the round); `r:` is the region.
    fn round(i: usize, spec: &str) -> Round {
        let mut results = vec![];
        for part in spec.split_whitespace() {
            let (t, probes) = part.split_once(':').unwrap();
            let target = if t == "r" {
                Target::Region(Region::from("us-west-2"))
            } else {
                zone(t.chars().next().unwrap())
            };
            for (n, c) in probes.chars().enumerate() {
                let outcome = match c {
                    'P' => Outcome::Pass,
                    'F' => Outcome::Fail,
                    'U' => Outcome::Unknown,
                    '-' => continue,
                    other => panic!("bad probe letter {other}"),
                };
                results.push(ProbeResult {
                    probe: format!("{t}{}", n + 1),
                    target: target.clone(),
                    kind: "http".into(),
                    outcome,
                    detail: match outcome {
                        Outcome::Pass => "HTTP 200".into(),
                        Outcome::Fail => "connection refused".into(),
                        Outcome::Unknown => "AccessDenied".into(),
                    },
                    latency: None,
                    attempts: 1,
                });
            }
        }
        Round {
            started: at(i),
            at: at(i),
            results,
        }
    }

    fn evaluator(k: u32, m: u32, r: u32, zones: &str, region_probes: u32) -> Evaluator {
        let mut n = BTreeMap::new();
        for z in zones.chars() {
            n.insert(zone(z), 3);
        }
        if region_probes > 0 {
            n.insert(Target::Region(Region::from("us-west-2")), region_probes);
        }
        Evaluator::new(
            Rules {
                quorum: k,
                region_quorum: 1,
                unhealthy_after: m,
                healthy_after: r,
            },
            n,
        )
    }

    /// (round index, target letter, became, observer suspect)
    type Expected = (usize, char, Became, bool);

    fn run(ev: &mut Evaluator, rounds: &[&str]) -> Vec<Expected> {
        let mut got = vec![];
        for (i, spec) in rounds.iter().enumerate() {
            for e in ev.observe(&round(i, spec)) {
                let letter = match &e.target {
                    Target::Zone(z) => z.as_str().chars().last().unwrap(),
                    Target::Region(_) => 'r',
                };
                got.push((i, letter, e.became, e.observer_suspect));
            }
        }
        got
    }

    fn repeat(spec: &'static str, n: usize) -> Vec<&'static str> {
        vec![spec; n]
    }

    #[test]
    fn quorum_and_hysteresis_table() {
        // A table of cases: longer than a screen because it is data.
        use Became::*;
        let ok = "a:PPP b:PPP c:PPP";
        let a2 = "a:FFP b:PPP c:PPP";
        let a1 = "a:FPP b:PPP c:PPP";
        // (name, K, M, R, rounds, expected events)
        type Case = (
            &'static str,
            u32,
            u32,
            u32,
            Vec<&'static str>,
            Vec<Expected>,
        );
        let cases: Vec<Case> = vec![
            (
                "one failing probe of three never reaches quorum 2",
                2,
                3,
                2,
                repeat(a1, 20),
                vec![],
            ),
            (
                "two of three for three rounds: unhealthy at the third",
                2,
                3,
                2,
                vec![ok, a2, a2, a2, a2],
                vec![(3, 'a', Unhealthy, false)],
            ),
            (
                "quorum 1 with one failing probe",
                1,
                2,
                2,
                vec![a1, a1],
                vec![(1, 'a', Unhealthy, false)],
            ),
            (
                "a good round breaks the bad streak",
                2,
                3,
                2,
                vec![a2, a2, ok, a2, a2, ok],
                vec![],
            ),
            (
                "flapping bad/good never declares",
                2,
                2,
                2,
                [a2, ok].repeat(20),
                vec![],
            ),
            (
                "recovery after R good rounds",
                2,
                2,
                3,
                vec![a2, a2, ok, ok, ok, ok],
                vec![(1, 'a', Unhealthy, false), (4, 'a', Healthy, false)],
            ),
            (
                "a bad round resets the recovery",
                2,
                2,
                3,
                vec![a2, a2, ok, ok, a2, ok, ok, ok],
                vec![(1, 'a', Unhealthy, false), (7, 'a', Healthy, false)],
            ),
            (
                "flapping while unhealthy stays unhealthy",
                2,
                1,
                2,
                [vec![a2], [ok, a2].repeat(15)].concat(),
                vec![(0, 'a', Unhealthy, false)],
            ),
            (
                "M = 1 declares on the first bad round",
                2,
                1,
                1,
                vec![ok, a2, ok],
                vec![(1, 'a', Unhealthy, false), (2, 'a', Healthy, false)],
            ),
        ];
        for (name, k, m, r, rounds, want) in cases {
            let mut ev = evaluator(k, m, r, "abc", 0);
            assert_eq!(run(&mut ev, &rounds), want, "case: {name}");
        }
    }

    #[test]
    fn unknown_probes_neither_fail_nor_pass_a_zone() {
        use Became::*;
        let cases: Vec<(&str, Vec<&str>, Vec<Expected>, State)> = vec![
            (
                "all unknown forever: no decision",
                repeat("a:UUU b:PPP c:PPP", 10),
                vec![],
                State::Unknown,
            ),
            (
                "an inconclusive round holds the bad streak",
                vec![
                    "a:FFP b:PPP c:PPP",
                    "a:FFP b:PPP c:PPP",
                    "a:FUP b:PPP c:PPP",
                    "a:FFP b:PPP c:PPP",
                ],
                vec![(3, 'a', Unhealthy, false)],
                State::Unhealthy,
            ),
            (
                "a missing result counts as unknown",
                repeat("a:F-P b:PPP c:PPP", 5),
                vec![],
                State::Unknown,
            ),
            (
                "two unknowns and a failure: inconclusive (could be 3 of 3)",
                repeat("a:FUU b:PPP c:PPP", 5),
                vec![],
                State::Unknown,
            ),
            (
                "unknown with quorum 2 and no failure is still good",
                vec![
                    "a:FFF b:PPP c:PPP",
                    "a:FFF b:PPP c:PPP",
                    "a:FFF b:PPP c:PPP",
                    "a:PUP b:PPP c:PPP",
                    "a:PUP b:PPP c:PPP",
                ],
                vec![(2, 'a', Unhealthy, false), (4, 'a', Healthy, false)],
                State::Healthy,
            ),
            (
                "an unhealthy zone with a failure and an unknown does not recover",
                [
                    repeat("a:FFF b:PPP c:PPP", 3),
                    repeat("a:FUP b:PPP c:PPP", 10),
                ]
                .concat(),
                vec![(2, 'a', Unhealthy, false)],
                State::Unhealthy,
            ),
        ];
        for (name, rounds, want, state) in cases {
            let mut ev = evaluator(2, 3, 2, "abc", 0);
            assert_eq!(run(&mut ev, &rounds), want, "case: {name}");
            assert_eq!(ev.status(&zone('a')).unwrap().state, state, "case: {name}");
        }
    }

    #[test]
    fn every_zone_down_at_once_suspects_the_observer() {
        use Became::*;
        let mut ev = evaluator(2, 3, 2, "abc", 0);
        let got = run(
            &mut ev,
            &[&["a:PPP b:PPP c:PPP"][..], &repeat("a:FFF b:FFP c:FFF", 4)].concat(),
        );
        assert_eq!(
            got,
            vec![
                (3, 'a', Unhealthy, true),
                (3, 'b', Unhealthy, true),
                (3, 'c', Unhealthy, true)
            ]
        );
        assert_eq!(ev.region().state, RegionState::ObserverSuspect);
        assert!(ev.observer().suspect);
        assert_eq!(ev.observer().since, Some(at(1)));
        // The observer recovers: the suspicion clears at the first round where a zone is good.
        ev.observe(&round(5, "a:PPP b:PPP c:PPP"));
        assert!(!ev.observer().suspect);
        assert_eq!(ev.region().state, RegionState::Unhealthy);
    }

    #[test]
    fn the_last_healthy_zone_is_never_evacuated() {
        use Became::*;
        // a fails first (a real zone failure), then b and c follow a few rounds later.
        let mut rounds = repeat("a:FFF b:PPP c:PPP", 5);
        rounds.extend(repeat("a:FFF b:FFF c:PPP", 4));
        rounds.extend(repeat("a:FFF b:FFF c:FFF", 4));
        let mut ev = evaluator(2, 3, 2, "abc", 0);
        let got = run(&mut ev, &rounds);
        assert_eq!(
            got,
            vec![
                (2, 'a', Unhealthy, false),
                (7, 'b', Unhealthy, false),
                (11, 'c', Unhealthy, true)
            ]
        );
    }

    #[test]
    fn near_simultaneous_failures_within_m_rounds_are_all_suspect() {
        use Became::*;
        // a goes down one round before b and c: with M = 3, a's third bad round is already a
        // round where every zone looks down.
        let mut rounds = repeat("a:FFF b:PPP c:PPP", 1);
        rounds.extend(repeat("a:FFF b:FFF c:FFF", 4));
        let mut ev = evaluator(2, 3, 2, "abc", 0);
        assert_eq!(
            run(&mut ev, &rounds),
            vec![
                (2, 'a', Unhealthy, true),
                (3, 'b', Unhealthy, true),
                (3, 'c', Unhealthy, true)
            ]
        );
    }

    #[test]
    fn a_zone_that_cannot_be_seen_does_not_clear_the_observer() {
        use Became::*;
        // The observer's network fails: zones a and b (direct probes) fail, zone c is probed
        // only through AWS APIs, which now cannot be reached: unknown, inconclusive.
        let mut ev = evaluator(2, 2, 2, "abc", 0);
        let got = run(
            &mut ev,
            &[&["a:PPP b:PPP c:PPP"][..], &repeat("a:FFF b:FFU c:UUU", 2)].concat(),
        );
        assert_eq!(
            got,
            vec![(2, 'a', Unhealthy, true), (2, 'b', Unhealthy, true)]
        );
        // All inconclusive is not a suspicion (nothing is failing): it says nothing.
        let mut ev = evaluator(2, 2, 2, "abc", 0);
        run(&mut ev, &repeat("a:UUU b:UUU c:UUU", 3));
        assert!(!ev.observer().suspect);
        // One zone really down while another cannot be seen and a third is fine: acted upon.
        let mut ev = evaluator(2, 2, 2, "abc", 0);
        assert_eq!(
            run(&mut ev, &repeat("a:FFF b:PPP c:UUU", 2)),
            vec![(1, 'a', Unhealthy, false)]
        );
    }

    #[test]
    fn one_probed_zone_has_no_observer_rule() {
        let mut ev = evaluator(2, 2, 2, "a", 0);
        assert_eq!(
            run(&mut ev, &repeat("a:FFF", 2)),
            vec![(1, 'a', Became::Unhealthy, false)]
        );
    }

    #[test]
    fn region_health_derives_from_zones_and_regional_probes() {
        let mut ev = evaluator(2, 1, 1, "abc", 1);
        assert_eq!(ev.region().state, RegionState::Unknown);
        ev.observe(&round(0, "a:PPP b:PPP c:PPP r:P"));
        assert_eq!(ev.region().state, RegionState::Healthy);
        ev.observe(&round(1, "a:FFP b:PPP c:PPP r:P"));
        let r = ev.region();
        assert_eq!(
            (r.state, r.unhealthy_zones.clone()),
            (RegionState::Degraded, vec![Zone::from("us-west-2a")])
        );
        assert_eq!(r.reason, "unhealthy: us-west-2a");
        let events = ev.observe(&round(2, "a:PPP b:PPP c:PPP r:F"));
        assert_eq!(
            events
                .iter()
                .map(|e| (e.target.clone(), e.became))
                .collect::<Vec<_>>(),
            vec![
                (zone('a'), Became::Healthy),
                (Target::Region(Region::from("us-west-2")), Became::Unhealthy)
            ]
        );
        assert_eq!(ev.region().state, RegionState::Unhealthy);
    }

    #[test]
    fn a_decision_records_which_probes_and_since_when() {
        let mut ev = evaluator(2, 3, 2, "abc", 0);
        ev.observe(&round(0, "a:PPP b:PPP c:PPP"));
        ev.observe(&round(1, "a:FFP b:PPP c:PPP"));
        ev.observe(&round(2, "a:FFU b:PPP c:PPP"));
        let events = ev.observe(&round(3, "a:FFF b:PPP c:PPP"));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!((e.at, e.why.since, e.why.rounds), (at(3), at(1), 3));
        assert_eq!(
            e.why
                .failing
                .iter()
                .map(|f| f.probe.as_str())
                .collect::<Vec<_>>(),
            ["a1", "a2", "a3"]
        );
        assert_eq!(
            e.why.summary,
            "3 of 3 probes failing (quorum 2) for 3 consecutive bad round(s) since 2027-01-15T08:00:01.000Z: a1 (connection refused); a2 (connection refused); a3 (connection refused)"
        );
        let st = ev.status(&zone('a')).unwrap();
        assert_eq!(
            (st.state, st.since, st.why.as_ref()),
            (State::Unhealthy, Some(at(3)), Some(&e.why))
        );
    }

    #[test]
    fn same_rounds_same_decisions() {
        let mut rng = fastrand::Rng::with_seed(7);
        let letters = ['P', 'F', 'U'];
        let rounds: Vec<String> = (0..500)
            .map(|_| {
                "abc"
                    .chars()
                    .map(|z| {
                        format!(
                            "{z}:{}",
                            (0..3).map(|_| letters[rng.usize(0..3)]).collect::<String>()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let refs: Vec<&str> = rounds.iter().map(String::as_str).collect();
        let a = run(&mut evaluator(2, 2, 2, "abc", 0), &refs);
        let b = run(&mut evaluator(2, 2, 2, "abc", 0), &refs);
        assert_eq!(a, b);
        assert!(
            !a.is_empty(),
            "random rounds with a third failing should cause some transitions"
        );
    }
}
