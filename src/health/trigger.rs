//! What `failover watch` does with a [`ZoneEvent`]: a pure decision, so the policy, the
//! cooldown and the observer rule are unit-tested without starting anything.
//!
//! Order of the checks, first match wins:
//! 1. the event is a recovery (`became = healthy`) → notify only; when `[health.failback]` is
//!    configured and this watcher evacuated the zone, its failback is scheduled for when the
//!    zone has stayed healthy for `after` (a new failure of the zone cancels it), and
//!    [`TriggerState::due`] hands it over then, per the failback's own policy;
//! 2. the event is about the region (every probed zone, or the region-wide probes) → the
//!    `[health.region_trigger]` decides with the same rules 3-6 and a cooldown of its own;
//!    without one, notify only;
//! 3. the observer is suspect (every probed zone looked down at once) → refused, whatever the
//!    policy;
//! 4. policy `notify` → notify only;
//! 5. a run was started less than `cooldown` ago (by this watcher, for any zone) → refused
//!    until the cooldown ends (anti-flapping);
//! 6. policy `auto` → start; policy `approval` → start paused at an approval gate.
//!
//! The caller notifies in every case (a refusal says why), and records the time of each start
//! ([`TriggerState`] does that bookkeeping).

use super::config::{FailbackConfig, HealthConfig, Policy, TriggerConfig};
use super::eval::{fmt_time, Became, ZoneEvent};
use crate::runbook::{ParamKind, Runbook};
use crate::types::Zone;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// What to do about one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum TriggerDecision {
    /// Start `runbook` now with `params`.
    Start {
        runbook: String,
        params: BTreeMap<String, String>,
    },
    /// Start `runbook` with `params`, paused at an approval gate before its first step, and
    /// notify who can approve.
    StartPausedForApproval {
        runbook: String,
        params: BTreeMap<String, String>,
    },
    /// Tell people; start nothing.
    NotifyOnly { reason: String },
    /// A run was started recently; nothing is started before `until`.
    RefusedCooldown {
        #[serde(serialize_with = "super::eval::ser_time")]
        until: SystemTime,
        reason: String,
    },
    /// Every probed zone looked down at once: the observer is suspect.
    RefusedObserverSuspect { reason: String },
}

impl TriggerDecision {
    /// Whether a run is to be started (now or paused).
    pub fn starts_run(&self) -> bool {
        matches!(
            self,
            TriggerDecision::Start { .. } | TriggerDecision::StartPausedForApproval { .. }
        )
    }

    /// One line for the terminal, the chat and the journal.
    pub fn describe(&self, event: &ZoneEvent) -> String {
        let params = |p: &BTreeMap<String, String>| {
            p.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            TriggerDecision::Start { runbook, params: p } => format!(
                "{} is unhealthy: starting {runbook} with {}",
                event.target,
                params(p)
            ),
            TriggerDecision::StartPausedForApproval { runbook, params: p } => {
                format!(
                    "{} is unhealthy: starting {runbook} with {}, paused until approved",
                    event.target,
                    params(p)
                )
            }
            TriggerDecision::NotifyOnly { reason } => reason.clone(),
            TriggerDecision::RefusedCooldown { reason, .. } => reason.clone(),
            TriggerDecision::RefusedObserverSuspect { reason } => reason.clone(),
        }
    }
}

/// Decide what to do about `event`. `last_trigger` is when this watcher last started a run
/// (for any zone); `now` is the current time.
pub fn decide(
    trigger: &TriggerConfig,
    last_trigger: Option<SystemTime>,
    event: &ZoneEvent,
    now: SystemTime,
) -> TriggerDecision {
    if event.became == Became::Healthy {
        return TriggerDecision::NotifyOnly {
            reason: format!("{} is healthy again: {}. Runbooks are not started on recovery; fail back deliberately once it is stable", event.target, event.why.summary),
        };
    }
    let Some(zone) = event.zone() else {
        return TriggerDecision::NotifyOnly {
            reason: format!("{} is unhealthy: {}. The trigger's runbook takes a zone, so nothing is started; decide on a regional failover by hand (or configure [health.region_trigger])", event.target, event.why.summary),
        };
    };
    if event.observer_suspect {
        return TriggerDecision::RefusedObserverSuspect {
            reason: format!(
                "{zone} looks unhealthy, but every probed zone looked down in the same round: the observer's own network is more likely at fault. Nothing is started; check the zones from another vantage point ({})",
                event.why.summary
            ),
        };
    }
    if trigger.policy == Policy::Notify {
        return TriggerDecision::NotifyOnly {
            reason: format!("{zone} is unhealthy: {}. Policy `notify`: start the runbook by hand if needed: failover run {} -p {}={zone}", event.why.summary, trigger.runbook, trigger.zone_param),
        };
    }
    if let Some(last) = last_trigger {
        let until = last + trigger.cooldown;
        if now < until {
            return TriggerDecision::RefusedCooldown {
                until,
                reason: format!(
                    "{zone} is unhealthy, but a run was started at {} and the cooldown of {} lasts until {}: nothing is started automatically (anti-flapping). If this is a second real failure, start the runbook by hand: failover run {} -p {}={zone}",
                    fmt_time(last),
                    humantime::format_duration(trigger.cooldown),
                    fmt_time(until),
                    trigger.runbook,
                    trigger.zone_param
                ),
            };
        }
    }
    start(trigger, &zone.to_string(), event)
}

/// Decide what to do about a region event with `[health.region_trigger]`: the zone rules
/// (observer, policy, cooldown) with the region as the runbook's parameter.
pub fn decide_region(
    trigger: &TriggerConfig,
    last_trigger: Option<SystemTime>,
    event: &ZoneEvent,
    now: SystemTime,
) -> TriggerDecision {
    let region = match &event.target {
        super::config::Target::Region(r) => r.to_string(),
        super::config::Target::Zone(z) => z.to_string(),
    };
    if event.became == Became::Healthy {
        return TriggerDecision::NotifyOnly {
            reason: format!("{} is healthy again: {}. Region runbooks are not started on recovery; fail back deliberately once it is stable", event.target, event.why.summary),
        };
    }
    if event.observer_suspect {
        return TriggerDecision::RefusedObserverSuspect {
            reason: format!(
                "region {region} looks unhealthy, but it may be the observer's own network: nothing is started; check from another vantage point ({})",
                event.why.summary
            ),
        };
    }
    let by_hand = format!(
        "failover run {} -p {}={region}",
        trigger.runbook, trigger.zone_param
    );
    if trigger.policy == Policy::Notify {
        return TriggerDecision::NotifyOnly {
            reason: format!("region {region} is unhealthy: {}. Policy `notify`: start the region runbook by hand if needed: {by_hand}", event.why.summary),
        };
    }
    if let Some(until) = last_trigger
        .map(|l| l + trigger.cooldown)
        .filter(|u| now < *u)
    {
        return TriggerDecision::RefusedCooldown {
            until,
            reason: format!(
                "region {region} is unhealthy, but a region run was started less than {} ago (until {}): nothing is started automatically. Start it by hand if needed: {by_hand}",
                humantime::format_duration(trigger.cooldown),
                fmt_time(until)
            ),
        };
    }
    start(trigger, &region, event)
}

/// The run a trigger starts for `target` (a zone or a region), per its policy.
fn start(trigger: &TriggerConfig, target: &str, event: &ZoneEvent) -> TriggerDecision {
    let mut params = trigger.params.clone();
    params.insert(trigger.zone_param.clone(), target.to_string());
    if let Some(rp) = &trigger.reason_param {
        params.insert(
            rp.clone(),
            format!("{target} detected unhealthy: {}", event.why.summary),
        );
    }
    match trigger.policy {
        Policy::Auto => TriggerDecision::Start {
            runbook: trigger.runbook.clone(),
            params,
        },
        Policy::Approval | Policy::Notify => TriggerDecision::StartPausedForApproval {
            runbook: trigger.runbook.clone(),
            params,
        },
    }
}

/// The triggers of an environment's `[health]` a watcher applies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Triggers<'a> {
    pub zone: Option<&'a TriggerConfig>,
    pub region: Option<&'a TriggerConfig>,
    pub failback: Option<&'a FailbackConfig>,
}

impl<'a> Triggers<'a> {
    pub fn of(cfg: &'a HealthConfig) -> Self {
        Self {
            zone: cfg.trigger.as_ref(),
            region: cfg.region_trigger.as_ref(),
            failback: cfg.failback.as_ref(),
        }
    }
}

impl<'a> From<&'a TriggerConfig> for Triggers<'a> {
    fn from(zone: &'a TriggerConfig) -> Self {
        Self {
            zone: Some(zone),
            ..Self::default()
        }
    }
}

/// A failback [`TriggerState::due`] hands over: the zone and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailbackDue {
    pub zone: Zone,
    pub decision: TriggerDecision,
    /// One line for the terminal, the chat and the journal.
    pub text: String,
}

/// The watcher's memory between events: when it last started a run (zone and region
/// triggers have a cooldown each), which zones it evacuated, and the failbacks it scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerState {
    pub last_trigger: Option<SystemTime>,
    pub last_region_trigger: Option<SystemTime>,
    /// Zones this watcher started an evacuation of and has not failed back yet.
    pub evacuated: BTreeSet<Zone>,
    /// Failbacks scheduled: the zone, and when it will have been healthy for long enough.
    pub failback_at: BTreeMap<Zone, SystemTime>,
}

impl TriggerState {
    /// Decide on `event` ([`decide`] or [`decide_region`]), remembering starts, evacuated zones
    /// and scheduling (or cancelling) their failback.
    pub fn on_event<'a>(
        &mut self,
        triggers: impl Into<Triggers<'a>>,
        event: &ZoneEvent,
        now: SystemTime,
    ) -> TriggerDecision {
        let t: Triggers<'a> = triggers.into();
        let Some(zone) = event.zone().cloned() else {
            let Some(rt) = t.region else {
                return match t.zone {
                    Some(zt) => decide(zt, self.last_trigger, event, now),
                    None => TriggerDecision::NotifyOnly {
                        reason: format!(
                            "{} is {}: {}",
                            event.target,
                            word(event.became),
                            event.why.summary
                        ),
                    },
                };
            };
            let d = decide_region(rt, self.last_region_trigger, event, now);
            if d.starts_run() {
                self.last_region_trigger = Some(now);
            }
            return d;
        };
        if event.became == Became::Healthy {
            if let (Some(fb), true) = (t.failback, self.evacuated.contains(&zone)) {
                let at = event.at + fb.after;
                self.failback_at.insert(zone.clone(), at);
                return TriggerDecision::NotifyOnly {
                    reason: format!(
                        "{zone} is healthy again: {}. Failing back with {} ({}) at {} if it stays healthy for {}",
                        event.why.summary,
                        fb.runbook,
                        policy_word(fb.policy),
                        fmt_time(at),
                        humantime::format_duration(fb.after)
                    ),
                };
            }
        } else {
            // Unhealthy again before its failback: wait for it to be healthy again.
            self.failback_at.remove(&zone);
        }
        let Some(zt) = t.zone else {
            return TriggerDecision::NotifyOnly {
                reason: format!(
                    "{zone} is {}: {}. No [health.trigger]: nothing is started",
                    word(event.became),
                    event.why.summary
                ),
            };
        };
        let d = decide(zt, self.last_trigger, event, now);
        if d.starts_run() {
            self.last_trigger = Some(now);
            self.evacuated.insert(zone);
        }
        d
    }

    /// A zone seen healthy without an event saying it became so (the watcher restarted after
    /// an evacuation: its zones start unknown, and unknown -> healthy is not an event): if this
    /// watcher evacuated it, its failback is scheduled from `since`, as after a recovery.
    pub fn seen_healthy(
        &mut self,
        failback: Option<&FailbackConfig>,
        zone: &Zone,
        since: SystemTime,
    ) {
        if let Some(fb) = failback {
            if self.evacuated.contains(zone) && !self.failback_at.contains_key(zone) {
                self.failback_at.insert(zone.clone(), since + fb.after);
            }
        }
    }

    /// The failbacks whose zone has now been healthy for long enough, each with its decision
    /// (start, start paused for approval, or notify, per the failback's policy). Handed over
    /// once: the zone is no longer counted as evacuated.
    pub fn due(&mut self, failback: Option<&FailbackConfig>, now: SystemTime) -> Vec<FailbackDue> {
        let Some(fb) = failback else {
            return vec![];
        };
        let ready: Vec<Zone> = self
            .failback_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(z, _)| z.clone())
            .collect();
        ready
            .into_iter()
            .map(|zone| {
                self.failback_at.remove(&zone);
                self.evacuated.remove(&zone);
                let mut params = fb.params.clone();
                params.insert(fb.zone_param.clone(), zone.to_string());
                let healthy = humantime::format_duration(fb.after);
                let (decision, text) = match fb.policy {
                    Policy::Auto => (
                        TriggerDecision::Start { runbook: fb.runbook.clone(), params },
                        format!("{zone} has been healthy for {healthy}: failing back with {}", fb.runbook),
                    ),
                    Policy::Approval => (
                        TriggerDecision::StartPausedForApproval { runbook: fb.runbook.clone(), params },
                        format!("{zone} has been healthy for {healthy}: failing back with {}, paused until approved", fb.runbook),
                    ),
                    Policy::Notify => {
                        let reason = format!("{zone} has been healthy for {healthy}. Policy `notify`: fail back by hand: failover run {} -p {}={zone}", fb.runbook, fb.zone_param);
                        (TriggerDecision::NotifyOnly { reason: reason.clone() }, reason)
                    }
                };
                FailbackDue { zone, decision, text }
            })
            .collect()
    }
}

fn word(b: Became) -> &'static str {
    match b {
        Became::Unhealthy => "unhealthy",
        Became::Healthy => "healthy again",
    }
}

fn policy_word(p: Policy) -> String {
    format!("policy {}", p)
}

/// Problems with the trigger's runbook: the parameters it will pass must be declared, and the
/// zone parameter must take a zone. Check when `failover watch` starts, before any event.
pub fn check_runbook(trigger: &TriggerConfig, rb: &Runbook) -> Vec<String> {
    check_runbook_as(
        Passes {
            table: "[health.trigger]",
            target: "zone",
            key: "zone_param",
            param: &trigger.zone_param,
            reason: trigger.reason_param.as_deref(),
            params: &trigger.params,
            runbook: &trigger.runbook,
        },
        rb,
    )
}

/// [`check_runbook`] for `[health.region_trigger]`: its parameter receives a region.
pub fn check_region_runbook(trigger: &TriggerConfig, rb: &Runbook) -> Vec<String> {
    check_runbook_as(
        Passes {
            table: "[health.region_trigger]",
            target: "region",
            key: "region_param",
            param: &trigger.zone_param,
            reason: trigger.reason_param.as_deref(),
            params: &trigger.params,
            runbook: &trigger.runbook,
        },
        rb,
    )
}

/// [`check_runbook`] for `[health.failback]`: its parameter receives the recovered zone.
pub fn check_failback_runbook(fb: &FailbackConfig, rb: &Runbook) -> Vec<String> {
    check_runbook_as(
        Passes {
            table: "[health.failback]",
            target: "zone",
            key: "zone_param",
            param: &fb.zone_param,
            reason: None,
            params: &fb.params,
            runbook: &fb.runbook,
        },
        rb,
    )
}

/// What a trigger table passes to its runbook.
struct Passes<'a> {
    table: &'a str,
    /// `zone` or `region`.
    target: &'a str,
    key: &'a str,
    param: &'a str,
    reason: Option<&'a str>,
    params: &'a BTreeMap<String, String>,
    runbook: &'a str,
}

fn check_runbook_as(t: Passes<'_>, rb: &Runbook) -> Vec<String> {
    let mut problems = vec![];
    let declared: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
    let list = if declared.is_empty() {
        "none".to_string()
    } else {
        declared.join(", ")
    };
    let takes = |k: &ParamKind| match t.target {
        "zone" => matches!(k, ParamKind::Zone | ParamKind::Zones | ParamKind::String),
        _ => matches!(k, ParamKind::String),
    };
    match rb.params.iter().find(|p| p.name == t.param) {
        None => problems.push(format!(
            "runbook `{}` ({}) has no parameter `{}` to receive the unhealthy {}; its parameters: {list}. Fix `{}` in {}",
            rb.name, t.runbook, t.param, t.target, t.key, t.table
        )),
        Some(p) if !takes(&p.kind) => problems.push(format!(
            "parameter `{}` of runbook `{}` is a {:?} parameter and cannot receive a {}; declare it with type = \"{}\"",
            p.name, rb.name, p.kind, t.target, if t.target == "zone" { "zone" } else { "string" }
        )),
        Some(_) => {}
    }
    if let Some(rp) = t.reason {
        if !declared.contains(&rp) {
            problems.push(format!("runbook `{}` has no parameter `{rp}` for the reason; its parameters: {list}. Fix `reason_param` in {}", rb.name, t.table));
        }
    }
    for k in t.params.keys().filter(|k| !declared.contains(&k.as_str())) {
        problems.push(format!("runbook `{}` has no parameter `{k}`, which `params` of {} sets; its parameters: {list}", rb.name, t.table));
    }
    for p in rb
        .params
        .iter()
        .filter(|p| p.required && p.default.is_none())
    {
        if p.name != t.param && Some(p.name.as_str()) != t.reason && !t.params.contains_key(&p.name)
        {
            problems.push(format!("runbook `{}` requires parameter `{}`, which the trigger does not pass; give it a default in the runbook or set it in `params` of {}", rb.name, p.name, t.table));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::Target;
    use crate::health::eval::Why;
    use crate::types::{Region, Zone};
    use std::time::Duration;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn trigger(policy: Policy) -> TriggerConfig {
        TriggerConfig {
            at: Default::default(),
            runbook: "runbooks/az-evacuation.toml".into(),
            zone_param: "failed_az".into(),
            reason_param: None,
            params: BTreeMap::new(),
            policy,
            cooldown: Duration::from_secs(1800),
            notify: None,
        }
    }

    fn event(target: Target, became: Became, suspect: bool) -> ZoneEvent {
        ZoneEvent {
            target,
            became,
            why: Why {
                summary: "2 of 3 probes failing".into(),
                failing: vec![],
                unknown: vec![],
                since: t(0),
                rounds: 3,
            },
            at: t(10),
            observer_suspect: suspect,
        }
    }

    fn a() -> Target {
        Target::Zone(Zone::from("us-west-2a"))
    }

    #[test]
    fn decision_table() {
        use Became::{Healthy, Unhealthy};
        use Policy::{Approval, Auto, Notify};
        let params: BTreeMap<String, String> =
            [("failed_az".to_string(), "us-west-2a".to_string())].into();
        let start = TriggerDecision::Start {
            runbook: "runbooks/az-evacuation.toml".into(),
            params: params.clone(),
        };
        let paused = TriggerDecision::StartPausedForApproval {
            runbook: "runbooks/az-evacuation.toml".into(),
            params,
        };
        let kind = |d: &TriggerDecision| match d {
            TriggerDecision::Start { .. } => "start",
            TriggerDecision::StartPausedForApproval { .. } => "paused",
            TriggerDecision::NotifyOnly { .. } => "notify",
            TriggerDecision::RefusedCooldown { .. } => "cooldown",
            TriggerDecision::RefusedObserverSuspect { .. } => "observer",
        };
        let region = || Target::Region(Region::from("us-west-2"));
        // (policy, target, became, suspect, last trigger, now, expected)
        type Case = (Policy, Target, Became, bool, Option<u64>, u64, &'static str);
        let cases: Vec<Case> = vec![
            (Auto, a(), Unhealthy, false, None, 10, "start"),
            (Approval, a(), Unhealthy, false, None, 10, "paused"),
            (Notify, a(), Unhealthy, false, None, 10, "notify"),
            (Auto, a(), Unhealthy, true, None, 10, "observer"),
            (Approval, a(), Unhealthy, true, None, 10, "observer"),
            (Notify, a(), Unhealthy, true, None, 10, "observer"),
            (Auto, a(), Healthy, false, None, 10, "notify"),
            (Auto, region(), Unhealthy, false, None, 10, "notify"),
            (Auto, a(), Unhealthy, false, Some(0), 1799, "cooldown"),
            (Approval, a(), Unhealthy, false, Some(0), 1000, "cooldown"),
            (Auto, a(), Unhealthy, false, Some(0), 1800, "start"),
            (Notify, a(), Unhealthy, false, Some(0), 10, "notify"),
        ];
        for (i, (policy, target, became, suspect, last, now, want)) in cases.into_iter().enumerate()
        {
            let d = decide(
                &trigger(policy),
                last.map(t),
                &event(target, became, suspect),
                t(now),
            );
            assert_eq!(kind(&d), want, "case {i}: {d:?}");
            if want == "start" {
                assert_eq!(d, start);
            }
            if want == "paused" {
                assert_eq!(d, paused);
            }
        }
    }

    #[test]
    fn refusals_say_why_and_what_to_do() {
        let d = decide(
            &trigger(Policy::Auto),
            Some(t(0)),
            &event(a(), Became::Unhealthy, false),
            t(60),
        );
        assert_eq!(
            d,
            TriggerDecision::RefusedCooldown {
                until: t(1800),
                reason: "us-west-2a is unhealthy, but a run was started at 2027-01-15T08:00:00.000Z and the cooldown of 30m lasts until 2027-01-15T08:30:00.000Z: nothing is started automatically (anti-flapping). If this is a second real failure, start the runbook by hand: failover run runbooks/az-evacuation.toml -p failed_az=us-west-2a".into()
            }
        );
        let d = decide(
            &trigger(Policy::Auto),
            None,
            &event(a(), Became::Unhealthy, true),
            t(60),
        );
        assert!(d
            .describe(&event(a(), Became::Unhealthy, true))
            .starts_with(
                "us-west-2a looks unhealthy, but every probed zone looked down in the same round"
            ));
    }

    #[test]
    fn the_reason_goes_to_its_parameter() {
        let mut tr = trigger(Policy::Auto);
        tr.reason_param = Some("reason".into());
        let TriggerDecision::Start { params, .. } =
            decide(&tr, None, &event(a(), Became::Unhealthy, false), t(10))
        else {
            panic!("expected a start")
        };
        assert_eq!(
            params["reason"],
            "us-west-2a detected unhealthy: 2 of 3 probes failing"
        );
        assert_eq!(params["failed_az"], "us-west-2a");
    }

    #[test]
    fn state_remembers_starts_only() {
        let tr = trigger(Policy::Auto);
        let mut st = TriggerState::default();
        assert!(
            st.on_event(&tr, &event(a(), Became::Unhealthy, true), t(5))
                == decide(&tr, None, &event(a(), Became::Unhealthy, true), t(5))
        );
        assert_eq!(st.last_trigger, None, "a refusal is not a trigger");
        assert!(st
            .on_event(&tr, &event(a(), Became::Unhealthy, false), t(10))
            .starts_run());
        assert_eq!(st.last_trigger, Some(t(10)));
        let b = Target::Zone(Zone::from("us-west-2b"));
        assert!(matches!(
            st.on_event(&tr, &event(b.clone(), Became::Unhealthy, false), t(100)),
            TriggerDecision::RefusedCooldown { .. }
        ));
        assert_eq!(st.last_trigger, Some(t(10)));
        assert!(st
            .on_event(&tr, &event(b, Became::Unhealthy, false), t(1810))
            .starts_run());
    }

    #[test]
    fn the_runbook_must_take_the_zone() {
        let src = crate::diag::SourceFile::new(
            "runbooks/x.toml",
            "name = \"x\"\n[params.failed_az]\ntype = \"zones\"\nrequired = true\n[params.ticket]\nrequired = true\n[[steps]]\nid = \"wait\"\naction = \"wait\"\nduration = \"1s\"\n",
        );
        let rb = Runbook::parse(src).unwrap_or_else(|d| panic!("{d}"));
        let mut tr = trigger(Policy::Auto);
        assert_eq!(check_runbook(&tr, &rb), ["runbook `x` requires parameter `ticket`, which the trigger does not pass; give it a default in the runbook or set it in `params` of [health.trigger]"]);
        tr.zone_param = "zone".into();
        tr.reason_param = Some("why".into());
        let p = check_runbook(&tr, &rb);
        assert_eq!(p[0], "runbook `x` (runbooks/az-evacuation.toml) has no parameter `zone` to receive the unhealthy zone; its parameters: failed_az, ticket. Fix `zone_param` in [health.trigger]");
        assert_eq!(p[1], "runbook `x` has no parameter `why` for the reason; its parameters: failed_az, ticket. Fix `reason_param` in [health.trigger]");
    }

    fn failback(policy: Policy) -> FailbackConfig {
        FailbackConfig {
            at: Default::default(),
            runbook: "runbooks/az-failback.toml".into(),
            zone_param: "zone".into(),
            params: [("restore_traffic".to_string(), "true".to_string())].into(),
            policy,
            after: Duration::from_secs(600),
        }
    }

    fn at(target: Target, became: Became, s: u64) -> ZoneEvent {
        ZoneEvent {
            at: t(s),
            ..event(target, became, false)
        }
    }

    #[test]
    fn a_zone_it_evacuated_is_failed_back_once_healthy_for_long_enough() {
        let mut tr = trigger(Policy::Auto);
        tr.params = [("shed_load".to_string(), "true".to_string())].into();
        let fb = failback(Policy::Auto);
        let cfg = Triggers {
            zone: Some(&tr),
            region: None,
            failback: Some(&fb),
        };
        let mut st = TriggerState::default();
        let TriggerDecision::Start { params, .. } =
            st.on_event(cfg, &at(a(), Became::Unhealthy, 10), t(10))
        else {
            panic!("expected a start")
        };
        assert_eq!(
            params["shed_load"], "true",
            "the trigger's own params go along"
        );
        assert_eq!(params["failed_az"], "us-west-2a");
        // Healthy again at 100: failback scheduled for 100 + 10m, said so.
        let d = st.on_event(cfg, &at(a(), Became::Healthy, 100), t(100));
        assert!(
            d.describe(&at(a(), Became::Healthy, 100)).contains(
                "Failing back with runbooks/az-failback.toml (policy auto) at 2027-01-15T08:11:40.000Z if it stays healthy for 10m"
            ),
            "{d:?}"
        );
        assert!(st.due(Some(&fb), t(699)).is_empty(), "not yet");
        // Down again before then: cancelled, and healthy again restarts the wait.
        st.on_event(cfg, &at(a(), Became::Unhealthy, 650), t(650));
        assert!(st.due(Some(&fb), t(800)).is_empty(), "cancelled");
        st.on_event(cfg, &at(a(), Became::Healthy, 900), t(900));
        assert!(st.due(Some(&fb), t(1499)).is_empty());
        let due = st.due(Some(&fb), t(1500));
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(
            due[0].decision,
            TriggerDecision::Start {
                runbook: "runbooks/az-failback.toml".into(),
                params: [
                    ("restore_traffic".to_string(), "true".to_string()),
                    ("zone".to_string(), "us-west-2a".to_string())
                ]
                .into()
            }
        );
        assert_eq!(
            due[0].text,
            "us-west-2a has been healthy for 10m: failing back with runbooks/az-failback.toml"
        );
        // Handed over once.
        assert!(st.due(Some(&fb), t(5000)).is_empty());
        assert!(!st.evacuated.contains(&Zone::from("us-west-2a")));
        // A zone it did not evacuate is never failed back.
        let b = Target::Zone(Zone::from("us-west-2b"));
        st.on_event(cfg, &at(b, Became::Healthy, 6000), t(6000));
        assert!(st.due(Some(&fb), t(99_999)).is_empty());
    }

    #[test]
    fn failback_policies_and_a_restarted_watcher() {
        for (policy, want) in [(Policy::Approval, "paused"), (Policy::Notify, "notify")] {
            let fb = failback(policy);
            let mut st = TriggerState::default();
            st.evacuated.insert(Zone::from("us-west-2a"));
            // Restarted: the zone is seen healthy since 100 without an event.
            st.seen_healthy(Some(&fb), &Zone::from("us-west-2a"), t(100));
            st.seen_healthy(Some(&fb), &Zone::from("us-west-2b"), t(100));
            let due = st.due(Some(&fb), t(700));
            assert_eq!(due.len(), 1, "{due:?}");
            let got = match &due[0].decision {
                TriggerDecision::StartPausedForApproval { .. } => "paused",
                TriggerDecision::NotifyOnly { reason } => {
                    assert!(reason.contains("fail back by hand: failover run runbooks/az-failback.toml -p zone=us-west-2a"), "{reason}");
                    "notify"
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn region_events_go_to_the_region_trigger_with_its_own_cooldown() {
        let zt = trigger(Policy::Auto);
        let mut rt = trigger(Policy::Approval);
        rt.runbook = "runbooks/region-evacuation.toml".into();
        rt.zone_param = "failed_region".into();
        let region = || Target::Region(Region::from("us-west-2"));
        let both = Triggers {
            zone: Some(&zt),
            region: Some(&rt),
            failback: None,
        };
        let mut st = TriggerState::default();
        // A zone run just started: the region trigger is not in its cooldown.
        assert!(st
            .on_event(both, &at(a(), Became::Unhealthy, 10), t(10))
            .starts_run());
        let d = st.on_event(both, &at(region(), Became::Unhealthy, 20), t(20));
        assert_eq!(
            d,
            TriggerDecision::StartPausedForApproval {
                runbook: "runbooks/region-evacuation.toml".into(),
                params: [("failed_region".to_string(), "us-west-2".to_string())].into()
            }
        );
        assert_eq!(st.last_region_trigger, Some(t(20)));
        assert!(matches!(
            st.on_event(both, &at(region(), Became::Unhealthy, 30), t(30)),
            TriggerDecision::RefusedCooldown { .. }
        ));
        // The observer rule holds for regions too.
        let mut st = TriggerState::default();
        let mut ev = at(region(), Became::Unhealthy, 40);
        ev.observer_suspect = true;
        assert!(matches!(
            st.on_event(both, &ev, t(40)),
            TriggerDecision::RefusedObserverSuspect { .. }
        ));
        // Without a region trigger a region event only notifies, and says what to configure.
        let d = st.on_event(&zt, &at(region(), Became::Unhealthy, 50), t(50));
        assert!(
            d.describe(&at(region(), Became::Unhealthy, 50))
                .contains("configure [health.region_trigger]"),
            "{d:?}"
        );
    }

    #[test]
    fn params_the_runbook_does_not_declare_are_refused() {
        let src = crate::diag::SourceFile::new(
            "runbooks/x.toml",
            "name = \"x\"\n[params.failed_az]\ntype = \"zone\"\n[params.ticket]\nrequired = true\n[[steps]]\nid = \"wait\"\naction = \"wait\"\nduration = \"1s\"\n",
        );
        let rb = Runbook::parse(src).unwrap_or_else(|d| panic!("{d}"));
        let mut tr = trigger(Policy::Auto);
        tr.params = [
            ("ticket".to_string(), "INC-1".to_string()),
            ("shed".to_string(), "true".to_string()),
        ]
        .into();
        assert_eq!(check_runbook(&tr, &rb), ["runbook `x` has no parameter `shed`, which `params` of [health.trigger] sets; its parameters: failed_az, ticket"]);
        let mut rt = trigger(Policy::Auto);
        rt.zone_param = "failed_az".into();
        assert_eq!(check_region_runbook(&rt, &rb)[0], "parameter `failed_az` of runbook `x` is a Zone parameter and cannot receive a region; declare it with type = \"string\"");
        let fb = failback(Policy::Auto);
        let p = check_failback_runbook(&fb, &rb);
        assert!(
            p[0].contains("has no parameter `zone` to receive the unhealthy zone")
                && p[0].contains("Fix `zone_param` in [health.failback]"),
            "{p:?}"
        );
    }
}
