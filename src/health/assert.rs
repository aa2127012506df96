//! The pure check behind the `health.assert` step: a runbook can require "zone X unhealthy"
//! (don't evacuate a healthy zone) or "zone Y healthy" (don't fail into a sick zone) before it
//! acts. Given a [`HealthReport`], [`check`] says yes, or explains why not and what to do.
//!
//! The rules are strict on purpose, because a wrong "yes" moves production:
//! - **unhealthy** holds only when the zone's state is `unhealthy` (M bad rounds in a row) and
//!   the observer is not suspect;
//! - **healthy** holds only when the zone's state is `healthy` and its last round was not bad
//!   (a zone on its way down is not a place to fail into).
//!
//! A zone without probes, or whose state is not known yet, satisfies neither.

use super::eval::{fmt_time, State, Verdict};
use super::report::HealthReport;
use crate::types::Zone;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Healthy,
    Unhealthy,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expect::Healthy => "healthy",
            Expect::Unhealthy => "unhealthy",
        })
    }
}

impl FromStr for Expect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "healthy" => Ok(Expect::Healthy),
            "unhealthy" => Ok(Expect::Unhealthy),
            other => Err(format!(
                "`{other}` is not a health expectation; use \"healthy\" or \"unhealthy\""
            )),
        }
    }
}

/// "zone X is unhealthy" / "zone Y is healthy".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assertion {
    pub zone: Zone,
    pub expect: Expect,
}

impl fmt::Display for Assertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone {} {}", self.zone, self.expect)
    }
}

impl FromStr for Assertion {
    type Err = String;
    /// `"us-west-2a unhealthy"`, or with a leading `zone`: `"zone us-west-2b healthy"`.
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let words = match words.first() {
            Some(&"zone") => &words[1..],
            _ => &words[..],
        };
        match words {
            [zone, expect] => Ok(Assertion { zone: Zone::from(*zone), expect: expect.parse()? }),
            _ => Err(format!("`{s}` is not an assertion; write \"<zone> healthy\" or \"<zone> unhealthy\", e.g. \"us-west-2a unhealthy\"")),
        }
    }
}

/// Whether the report satisfies the assertion; if not, a message that says what the zone's
/// health is and what to do.
pub fn check(report: &HealthReport, a: &Assertion) -> Result<(), String> {
    let Some(z) = report.zone(&a.zone) else {
        let probed: Vec<String> = report
            .zones
            .iter()
            .map(|z| z.status.target.to_string())
            .collect();
        return Err(format!(
            "{a}: zone {} has no probes in [health] of environment `{}`, so its health is not known (probed zones: {}). Add probes for it, or remove this assertion",
            a.zone,
            report.environment,
            if probed.is_empty() { "none".to_string() } else { probed.join(", ") }
        ));
    };
    let st = &z.status;
    let since = st
        .since
        .map(|t| format!(" since {}", fmt_time(t)))
        .unwrap_or_default();
    let last = st
        .last
        .as_ref()
        .map(|t| {
            format!(
                "last round: {} of {} probes failing{}",
                t.failing,
                st.probes,
                if t.unknown > 0 {
                    format!(", {} unknown", t.unknown)
                } else {
                    String::new()
                }
            )
        })
        .unwrap_or_else(|| "no round yet".into());
    let why = st
        .why
        .as_ref()
        .map(|w| format!(" ({})", w.summary))
        .unwrap_or_default();
    match (a.expect, st.state) {
        (_, State::Unknown) => Err(format!(
            "{a}: the health of {} is not known yet ({last}; {} inconclusive round(s) in a row). Wait for more rounds, or check why its probes cannot run (`failover health --env {}`)",
            a.zone, st.inconclusive_streak, report.environment
        )),
        (Expect::Unhealthy, State::Unhealthy) if report.observer.suspect => Err(format!(
            "{a}: {} looks unhealthy{since}, but every probed zone looks down at once, so the observer itself is suspect. Refusing to act on it: check the zones from another vantage point",
            a.zone
        )),
        (Expect::Unhealthy, State::Unhealthy) => Ok(()),
        (Expect::Unhealthy, State::Healthy) => Err(format!(
            "{a}: {} is healthy{since} ({last}; {} of {} bad round(s) needed). Refusing to act as if it had failed; if it must be evacuated anyway, run without this assertion",
            a.zone, st.bad_streak, report.rules.unhealthy_after
        )),
        (Expect::Healthy, State::Unhealthy) => Err(format!(
            "{a}: {} is unhealthy{since}{why}. Refusing to move into it; choose another zone",
            a.zone
        )),
        (Expect::Healthy, State::Healthy) if st.last.as_ref().is_some_and(|t| t.verdict == Verdict::Bad) => Err(format!(
            "{a}: {} is still declared healthy but its last round was bad ({last}; {} of {} bad round(s) to be declared unhealthy). Refusing to move into a zone that may be failing; choose another zone or wait",
            a.zone, st.bad_streak, report.rules.unhealthy_after
        )),
        (Expect::Healthy, State::Healthy) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::{Check, HealthConfig, Probe, Target};
    use crate::health::eval::{Evaluator, Outcome, ProbeResult, Round};
    use crate::health::report::Scope;
    use std::time::{Duration, SystemTime};

    /// A report after `rounds`, each a string of P/F/U per zone a, b, c (3 probes each).
    fn report(rounds: &[[&str; 3]]) -> HealthReport {
        let zones = ["us-west-2a", "us-west-2b", "us-west-2c"];
        let mut cfg = HealthConfig {
            quorum: 2,
            unhealthy_after: 2,
            healthy_after: 2,
            ..HealthConfig::default()
        };
        for z in zones {
            for n in 0..3 {
                cfg.probes.push(Probe {
                    name: format!("{z}-{n}"),
                    target: Target::Zone(Zone::from(z)),
                    timeout: Duration::from_secs(1),
                    check: Check::Tcp {
                        address: "h:1".into(),
                    },
                });
            }
        }
        let mut ev = Evaluator::from_config(&cfg);
        let mut last = None;
        for (i, r) in rounds.iter().enumerate() {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i as u64);
            let mut results = vec![];
            for (z, spec) in zones.iter().zip(r) {
                for (n, c) in spec.chars().enumerate() {
                    let outcome = match c {
                        'P' => Outcome::Pass,
                        'F' => Outcome::Fail,
                        _ => Outcome::Unknown,
                    };
                    results.push(ProbeResult {
                        probe: format!("{z}-{n}"),
                        target: Target::Zone(Zone::from(*z)),
                        kind: "tcp".into(),
                        outcome,
                        detail: "x".into(),
                        latency: None,
                        attempts: 1,
                    });
                }
            }
            let round = Round {
                started: t,
                at: t,
                results,
            };
            ev.observe(&round);
            last = Some(round);
        }
        let scope = Scope {
            environment: "prod".into(),
            region: "us-west-2".into(),
            zones: [zones.as_slice(), &["us-west-2d"]]
                .concat()
                .into_iter()
                .map(Zone::from)
                .collect(),
        };
        HealthReport::build(&scope, &cfg, &ev, last.as_ref())
    }

    fn ok(r: &HealthReport, a: &str) -> bool {
        check(r, &a.parse().unwrap()).is_ok()
    }

    #[test]
    fn assertions_hold_only_on_settled_states() {
        let down_a = report(&[["FFF", "PPP", "PPP"], ["FFF", "PPP", "PPP"]]);
        assert!(ok(&down_a, "us-west-2a unhealthy"));
        assert!(ok(&down_a, "zone us-west-2b healthy"));
        assert!(!ok(&down_a, "us-west-2a healthy"));
        assert!(!ok(&down_a, "us-west-2b unhealthy"));

        let going_down = report(&[["PPP", "PPP", "PPP"], ["PPP", "FFP", "PPP"]]);
        let e = check(&going_down, &"us-west-2b healthy".parse().unwrap()).unwrap_err();
        assert_eq!(e, "zone us-west-2b healthy: us-west-2b is still declared healthy but its last round was bad (last round: 2 of 3 probes failing; 1 of 2 bad round(s) to be declared unhealthy). Refusing to move into a zone that may be failing; choose another zone or wait");
        let e = check(&going_down, &"us-west-2b unhealthy".parse().unwrap()).unwrap_err();
        assert_eq!(e, "zone us-west-2b unhealthy: us-west-2b is healthy since 2027-01-15T08:00:00.000Z (last round: 2 of 3 probes failing; 1 of 2 bad round(s) needed). Refusing to act as if it had failed; if it must be evacuated anyway, run without this assertion");

        let unknown = report(&[["UUU", "PPP", "PPP"]]);
        let e = check(&unknown, &"us-west-2a unhealthy".parse().unwrap()).unwrap_err();
        assert_eq!(e, "zone us-west-2a unhealthy: the health of us-west-2a is not known yet (last round: 0 of 3 probes failing, 3 unknown; 1 inconclusive round(s) in a row). Wait for more rounds, or check why its probes cannot run (`failover health --env prod`)");

        let e = check(&unknown, &"us-west-2d healthy".parse().unwrap()).unwrap_err();
        assert_eq!(e, "zone us-west-2d healthy: zone us-west-2d has no probes in [health] of environment `prod`, so its health is not known (probed zones: us-west-2a, us-west-2b, us-west-2c). Add probes for it, or remove this assertion");
    }

    #[test]
    fn an_observer_suspect_report_never_confirms_a_failure() {
        let all_down = report(&[["FFF", "FFF", "FFF"], ["FFF", "FFF", "FFF"]]);
        let e = check(&all_down, &"us-west-2a unhealthy".parse().unwrap()).unwrap_err();
        assert!(e.contains("the observer itself is suspect"), "{e}");
        assert!(!ok(&all_down, "us-west-2b healthy"));
    }

    #[test]
    fn assertions_parse_or_explain() {
        assert_eq!(
            "us-west-2a unhealthy".parse::<Assertion>().unwrap(),
            Assertion {
                zone: Zone::from("us-west-2a"),
                expect: Expect::Unhealthy
            }
        );
        assert_eq!(
            "zone us-west-2b  healthy"
                .parse::<Assertion>()
                .unwrap()
                .to_string(),
            "zone us-west-2b healthy"
        );
        assert_eq!(
            "us-west-2a sick".parse::<Assertion>().unwrap_err(),
            "`sick` is not a health expectation; use \"healthy\" or \"unhealthy\""
        );
        assert!("us-west-2a"
            .parse::<Assertion>()
            .unwrap_err()
            .contains("write \"<zone> healthy\""));
    }
}
