//! What `failover watch` does with a [`ZoneEvent`]: a pure decision, so the policy, the
//! cooldown and the observer rule are unit-tested without starting anything.
//!
//! Order of the checks, first match wins:
//! 1. the event is a recovery (`became = healthy`) → notify only: runbooks are not started on
//!    recovery (fail back deliberately, with the runbook and the healthy zone as parameter);
//! 2. the event is about the region-wide probes → notify only: the configured runbook takes a
//!    zone;
//! 3. the observer is suspect (every probed zone looked down at once) → refused, whatever the
//!    policy;
//! 4. policy `notify` → notify only;
//! 5. a run was started less than `cooldown` ago (by this watcher, for any zone) → refused
//!    until the cooldown ends (anti-flapping);
//! 6. policy `auto` → start; policy `approval` → start paused at an approval gate.
//!
//! The caller notifies in every case (a refusal says why), and records the time of each start
//! ([`TriggerState`] does that bookkeeping).

use super::config::{Policy, TriggerConfig};
use super::eval::{fmt_time, Became, ZoneEvent};
use crate::runbook::{ParamKind, Runbook};
use serde::Serialize;
use std::collections::BTreeMap;
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
            reason: format!("{} is unhealthy: {}. The trigger's runbook takes a zone, so nothing is started; decide on a regional failover by hand", event.target, event.why.summary),
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
    let mut params = BTreeMap::new();
    params.insert(trigger.zone_param.clone(), zone.to_string());
    if let Some(rp) = &trigger.reason_param {
        params.insert(
            rp.clone(),
            format!("{zone} detected unhealthy: {}", event.why.summary),
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

/// The watcher's memory between events: when it last started a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerState {
    pub last_trigger: Option<SystemTime>,
}

impl TriggerState {
    /// [`decide`], remembering `now` as the last trigger when the decision starts a run.
    pub fn on_event(
        &mut self,
        trigger: &TriggerConfig,
        event: &ZoneEvent,
        now: SystemTime,
    ) -> TriggerDecision {
        let d = decide(trigger, self.last_trigger, event, now);
        if d.starts_run() {
            self.last_trigger = Some(now);
        }
        d
    }
}

/// Problems with the trigger's runbook: the parameters it will pass must be declared, and the
/// zone parameter must take a zone. Check when `failover watch` starts, before any event.
pub fn check_runbook(trigger: &TriggerConfig, rb: &Runbook) -> Vec<String> {
    let mut problems = vec![];
    let declared: Vec<&str> = rb.params.iter().map(|p| p.name.as_str()).collect();
    let list = if declared.is_empty() {
        "none".to_string()
    } else {
        declared.join(", ")
    };
    match rb.params.iter().find(|p| p.name == trigger.zone_param) {
        None => problems.push(format!(
            "runbook `{}` ({}) has no parameter `{}` to receive the unhealthy zone; its parameters: {list}. Fix `zone_param` in [health.trigger]",
            rb.name, trigger.runbook, trigger.zone_param
        )),
        Some(p) if !matches!(p.kind, ParamKind::Zone | ParamKind::Zones | ParamKind::String) => problems.push(format!(
            "parameter `{}` of runbook `{}` is a {:?} parameter and cannot receive a zone; declare it with type = \"zone\"",
            p.name, rb.name, p.kind
        )),
        Some(_) => {}
    }
    if let Some(rp) = &trigger.reason_param {
        if !declared.contains(&rp.as_str()) {
            problems.push(format!("runbook `{}` has no parameter `{rp}` for the reason; its parameters: {list}. Fix `reason_param` in [health.trigger]", rb.name));
        }
    }
    for p in rb
        .params
        .iter()
        .filter(|p| p.required && p.default.is_none())
    {
        if p.name != trigger.zone_param && Some(&p.name) != trigger.reason_param.as_ref() {
            problems.push(format!("runbook `{}` requires parameter `{}`, which the trigger does not pass; give it a default in the runbook", rb.name, p.name));
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
            runbook: "runbooks/az-evacuation.toml".into(),
            zone_param: "failed_az".into(),
            reason_param: None,
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
        assert_eq!(check_runbook(&tr, &rb), ["runbook `x` requires parameter `ticket`, which the trigger does not pass; give it a default in the runbook"]);
        tr.zone_param = "zone".into();
        tr.reason_param = Some("why".into());
        let p = check_runbook(&tr, &rb);
        assert_eq!(p[0], "runbook `x` (runbooks/az-evacuation.toml) has no parameter `zone` to receive the unhealthy zone; its parameters: failed_az, ticket. Fix `zone_param` in [health.trigger]");
        assert_eq!(p[1], "runbook `x` has no parameter `why` for the reason; its parameters: failed_az, ticket. Fix `reason_param` in [health.trigger]");
    }
}
