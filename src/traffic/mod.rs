//! Load shedding: a ladder of traffic tiers, lowest priority first, shed in order while a
//! signal is bad and restored in reverse once it has been good for a hold period.
//!
//! This module is pure: the ladder model (parsed from `[traffic]` in an environment), the
//! bound ladder a step carries, and the decisions of the closed loops (`next_to_shed`,
//! `next_to_restore`). It knows nothing of environments or runbooks: binding a ladder for a run
//! is `runbook::ladder`. Acting, reading the signal and waiting are done by `engine::traffic`
//! through the ports; the shed state lives in the journal so it survives crashes and is shared
//! by every run on an environment.

pub mod config;

use crate::types::RunId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What an apply or revert of a tier does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TierAction {
    /// An HTTP call to an edge or feature-flag admin API. `${tier}` and the run variables are
    /// substituted in url and body when the step is bound.
    Http {
        endpoint: Option<String>,
        url: Option<String>,
        method: Option<String>,
        body: Option<String>,
        expect_status: Vec<u16>,
    },
    /// Route 53 weights of a `records` group (weighted records), zone -> weight.
    DnsWeights {
        group: String,
        weights: std::collections::BTreeMap<crate::types::Zone, i64>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub description: Option<String>,
    /// Never shed, whatever a runbook says (checkout, cart).
    pub protected: bool,
    pub apply: Option<TierAction>,
    pub revert: Option<TierAction>,
}

/// Where the loop reads whether things are good.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub url: String,
    /// JSON pointer to a number in the response (`/error_rate`); absent: the body is a number;
    /// absent with no threshold: good means a 2xx answer.
    pub pointer: Option<String>,
    pub good_below: Option<f64>,
    pub good_above: Option<f64>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    /// Lowest priority first.
    pub tiers: Vec<Tier>,
    pub signal: Signal,
    /// Wait after shedding a tier before reading the signal again.
    pub settle: Duration,
    /// How long the signal must stay good before a tier is restored.
    pub hold: Duration,
    /// Where the current shed state is published (JSON) for edges to poll.
    pub state_file: Option<String>,
}

impl Ladder {
    pub fn index(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == tier)
    }
}

/// A tier action with templates rendered and resources resolved, ready to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BoundTierAction {
    Http {
        request: crate::cloud::HttpRequest,
        expect_status: Vec<u16>,
    },
    DnsWeights {
        group: String,
        hosted_zone: String,
        records: Vec<crate::cloud::RecordSpecOut>,
        weights: std::collections::BTreeMap<crate::types::Zone, i64>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundTier {
    pub name: String,
    pub protected: bool,
    pub apply: Option<BoundTierAction>,
    pub revert: Option<BoundTierAction>,
}

/// The ladder of one environment, bound for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundLadder {
    pub environment: String,
    pub tiers: Vec<BoundTier>,
    pub signal: Signal,
    pub settle: Duration,
    pub hold: Duration,
    pub state_file: Option<String>,
}

impl BoundLadder {
    pub fn index(&self, tier: &str) -> Option<usize> {
        self.tiers.iter().position(|t| t.name == tier)
    }
    /// The pure view used by the decisions.
    pub fn ladder(&self) -> Ladder {
        Ladder {
            tiers: self
                .tiers
                .iter()
                .map(|t| Tier {
                    name: t.name.clone(),
                    description: None,
                    protected: t.protected,
                    apply: None,
                    revert: None,
                })
                .collect(),
            signal: self.signal.clone(),
            settle: self.settle,
            hold: self.hold,
            state_file: self.state_file.clone(),
        }
    }
}

/// One reading of the signal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub good: bool,
    /// The value read, when the signal is a number.
    pub value: Option<f64>,
    pub detail: String,
}

/// Judge a signal response (pure).
pub fn judge(signal: &Signal, status: u16, body: &str) -> Result<Reading, String> {
    if !(200..300).contains(&status) {
        return Ok(Reading {
            good: false,
            value: None,
            detail: format!("signal answered HTTP {status}"),
        });
    }
    if signal.good_below.is_none() && signal.good_above.is_none() {
        return Ok(Reading {
            good: true,
            value: None,
            detail: format!("signal answered HTTP {status}"),
        });
    }
    let value = match &signal.pointer {
        Some(p) => {
            let v: serde_json::Value = serde_json::from_str(body)
                .map_err(|e| format!("the signal's body is not JSON ({e}); check `pointer`"))?;
            v.pointer(p)
                .and_then(|x| x.as_f64())
                .ok_or_else(|| format!("the signal's JSON has no number at `{p}`"))?
        }
        None => body.trim().parse::<f64>().map_err(|_| {
            format!(
                "the signal's body `{}` is not a number; set `pointer` for JSON",
                body.trim().chars().take(40).collect::<String>()
            )
        })?,
    };
    let good =
        signal.good_below.is_none_or(|t| value < t) && signal.good_above.is_none_or(|t| value > t);
    let rule = match (signal.good_below, signal.good_above) {
        (Some(b), Some(a)) => format!("good between {a} and {b}"),
        (Some(b), None) => format!("good below {b}"),
        (None, Some(a)) => format!("good above {a}"),
        (None, None) => String::new(),
    };
    Ok(Reading {
        good,
        value: Some(value),
        detail: format!("signal {value} ({rule})"),
    })
}

/// The next move of `traffic.shed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShedNext {
    Shed(usize),
    Stop(String),
}

/// Shed the lowest-priority unprotected tier not yet shed, up to `max_tier`, while the signal
/// is bad. `shed[i]` says whether tier i is shed.
pub fn next_to_shed(
    ladder: &Ladder,
    shed: &[bool],
    signal_good: bool,
    max_tier: Option<usize>,
) -> ShedNext {
    if signal_good {
        return ShedNext::Stop("the signal is good".into());
    }
    let limit = max_tier.unwrap_or(ladder.tiers.len().saturating_sub(1));
    for (i, t) in ladder.tiers.iter().enumerate() {
        if i > limit {
            break;
        }
        if t.protected || shed.get(i).copied().unwrap_or(false) {
            continue;
        }
        return ShedNext::Shed(i);
    }
    let protected: Vec<&str> = ladder
        .tiers
        .iter()
        .filter(|t| t.protected)
        .map(|t| t.name.as_str())
        .collect();
    let all_unprotected_shed = ladder
        .tiers
        .iter()
        .enumerate()
        .all(|(i, t)| t.protected || shed.get(i).copied().unwrap_or(false));
    let why = match max_tier {
        Some(m) if !all_unprotected_shed => format!(
            "every tier up to `{}` (max_tier) is shed",
            ladder.tiers[m].name
        ),
        _ => "every unprotected tier is shed".into(),
    };
    ShedNext::Stop(format!(
        "{why} and the signal is still bad{}",
        if protected.is_empty() {
            String::new()
        } else {
            format!("; protected tiers are never shed: {}", protected.join(", "))
        }
    ))
}

/// The next move of `traffic.restore`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreNext {
    /// Restore this tier (the highest-priority tier still shed).
    Revert(usize),
    /// Keep waiting: the signal has not been good for the hold period yet.
    Wait(String),
    /// Nothing is shed any more.
    Done,
}

pub fn next_to_restore(shed: &[bool], good_for: Option<Duration>, hold: Duration) -> RestoreNext {
    let Some(last) = shed.iter().rposition(|s| *s) else {
        return RestoreNext::Done;
    };
    match good_for {
        None => RestoreNext::Wait("the signal is bad".into()),
        Some(g) if g >= hold => RestoreNext::Revert(last),
        Some(g) => RestoreNext::Wait(format!(
            "the signal has been good for {}, restoring after {}",
            humantime::format_duration(round(g)),
            humantime::format_duration(hold)
        )),
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// The published shed state: every tier, whether it is shed, since when and by which run.
pub fn state_document(
    now_ms: i64,
    environment: &str,
    tiers: &[(String, bool)],
    shed: &[(String, i64, RunId)],
) -> serde_json::Value {
    serde_json::json!({
        "environment": environment,
        "updated_at": crate::timefmt::format_ts(now_ms),
        "tiers": tiers.iter().map(|(name, protected)| {
            let s = shed.iter().find(|(n, _, _)| n == name);
            serde_json::json!({
                "name": name,
                "protected": protected,
                "shed": s.is_some(),
                "since": s.map(|(_, t, _)| crate::timefmt::format_ts(*t)),
                "run_id": s.map(|(_, _, r)| r.clone()),
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder() -> Ladder {
        let t = |n: &str, p: bool| Tier {
            name: n.into(),
            description: None,
            protected: p,
            apply: None,
            revert: None,
        };
        Ladder {
            tiers: vec![
                t("crawlers", false),
                t("bots", false),
                t("multi-language", false),
                t("checkout", true),
                t("recommendations", false),
            ],
            signal: Signal {
                url: "http://x".into(),
                pointer: Some("/error_rate".into()),
                good_below: Some(0.02),
                good_above: None,
                timeout: Duration::from_secs(5),
            },
            settle: Duration::from_secs(30),
            hold: Duration::from_secs(300),
            state_file: None,
        }
    }

    #[test]
    fn sheds_in_order_skipping_protected_and_shed_tiers() {
        let l = ladder();
        assert_eq!(
            next_to_shed(&l, &[false; 5], false, None),
            ShedNext::Shed(0)
        );
        assert_eq!(
            next_to_shed(&l, &[true, false, false, false, false], false, None),
            ShedNext::Shed(1)
        );
        assert_eq!(
            next_to_shed(&l, &[true, true, true, false, false], false, None),
            ShedNext::Shed(4),
            "checkout is protected"
        );
        match next_to_shed(&l, &[true, true, true, false, true], false, None) {
            ShedNext::Stop(why) => assert!(
                why.contains("protected tiers are never shed: checkout"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            next_to_shed(&l, &[false; 5], true, None),
            ShedNext::Stop(_)
        ));
        assert!(
            matches!(next_to_shed(&l, &[true, true, false, false, false], false, Some(1)), ShedNext::Stop(w) if w.contains("`bots` (max_tier)"))
        );
    }

    #[test]
    fn restores_in_reverse_after_hold() {
        let shed = [true, true, false, false, false];
        assert_eq!(
            next_to_restore(&shed, None, Duration::from_secs(300)),
            RestoreNext::Wait("the signal is bad".into())
        );
        assert!(matches!(
            next_to_restore(
                &shed,
                Some(Duration::from_secs(10)),
                Duration::from_secs(300)
            ),
            RestoreNext::Wait(_)
        ));
        assert_eq!(
            next_to_restore(
                &shed,
                Some(Duration::from_secs(300)),
                Duration::from_secs(300)
            ),
            RestoreNext::Revert(1)
        );
        assert_eq!(
            next_to_restore(
                &[false; 5],
                Some(Duration::from_secs(1)),
                Duration::from_secs(300)
            ),
            RestoreNext::Done
        );
    }

    #[test]
    fn judges_signals() {
        let l = ladder();
        assert!(
            judge(&l.signal, 200, r#"{"error_rate": 0.01}"#)
                .unwrap()
                .good
        );
        assert!(
            !judge(&l.signal, 200, r#"{"error_rate": 0.2}"#)
                .unwrap()
                .good
        );
        assert!(!judge(&l.signal, 503, "").unwrap().good);
        assert!(judge(&l.signal, 200, r#"{"other": 1}"#)
            .unwrap_err()
            .contains("no number at `/error_rate`"));
        let plain = Signal {
            pointer: None,
            ..l.signal.clone()
        };
        assert!(judge(&plain, 200, "0.001\n").unwrap().good);
    }
}
