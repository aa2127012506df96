//! What `failover health` shows: a snapshot of every zone's state, its last round and why,
//! and each probe's last result. One data structure ([`HealthReport`]), serialised as JSON for
//! `--output json` and rendered as tables for people by [`HealthReport::render_text`].

use super::config::{HealthConfig, Target};
use super::eval::{
    fmt_time, ser_opt_time, Evaluator, ObserverStatus, ProbeResult, RegionHealth, Round, State,
    TargetStatus, Verdict,
};
use crate::env::Environment;
use crate::types::Zone;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// Where the detector runs: names for the report.
#[derive(Clone, Debug)]
pub struct Scope {
    pub environment: String,
    pub region: String,
    pub zones: Vec<Zone>,
}

impl Scope {
    pub fn of(env: &Environment) -> Self {
        Self {
            environment: env.name.clone(),
            region: env.region.clone(),
            zones: env.zones.clone(),
        }
    }
}

/// The rules the report was evaluated with, for the reader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportRules {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub attempts: u32,
    pub quorum: u32,
    pub region_quorum: u32,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

/// One zone (or the region-wide probes): its state and its probes' last results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetReport {
    #[serde(flatten)]
    pub status: TargetStatus,
    pub probes: Vec<ProbeResult>,
}

/// A snapshot of an environment's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    pub environment: String,
    pub region: String,
    /// Time of the last round.
    #[serde(serialize_with = "ser_opt_time")]
    pub at: Option<SystemTime>,
    pub rounds: u64,
    pub rules: ReportRules,
    pub region_health: RegionHealth,
    pub observer: ObserverStatus,
    /// Probed zones, in the environment's order.
    pub zones: Vec<TargetReport>,
    /// The region-wide probes, if any.
    pub regional: Option<TargetReport>,
    /// Zones of the environment without any probe: their health is not known.
    pub unprobed_zones: Vec<Zone>,
    /// The AWS calls the probes have made since they started (CloudWatch, RDS, Route 53:
    /// paced by the probes' own limiter, from the account's quotas), when the caller counts
    /// them (`failover health`, `watch`, `serve`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_calls: Option<crate::cloud::model::CallCounts>,
}

impl HealthReport {
    pub fn build(scope: &Scope, cfg: &HealthConfig, ev: &Evaluator, last: Option<&Round>) -> Self {
        let probes_of = |t: &Target| -> Vec<ProbeResult> {
            last.map(|r| {
                r.results
                    .iter()
                    .filter(|p| &p.target == t)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut zones = vec![];
        let mut unprobed = vec![];
        for z in &scope.zones {
            let t = Target::Zone(z.clone());
            match ev.status(&t) {
                Some(st) => zones.push(TargetReport {
                    status: st.clone(),
                    probes: probes_of(&t),
                }),
                None => unprobed.push(z.clone()),
            }
        }
        let regional = ev
            .targets()
            .find(|s| matches!(s.target, Target::Region(_)))
            .map(|st| TargetReport {
                status: st.clone(),
                probes: probes_of(&st.target),
            });
        Self {
            environment: scope.environment.clone(),
            region: scope.region.clone(),
            at: last.map(|r| r.at),
            rounds: ev.rounds(),
            rules: ReportRules {
                interval_ms: cfg.interval.as_millis() as u64,
                timeout_ms: cfg.timeout.as_millis() as u64,
                attempts: cfg.attempts,
                quorum: cfg.quorum,
                region_quorum: cfg.region_quorum,
                unhealthy_after: cfg.unhealthy_after,
                healthy_after: cfg.healthy_after,
            },
            region_health: ev.region(),
            observer: ev.observer().clone(),
            zones,
            regional,
            unprobed_zones: unprobed,
            aws_calls: None,
        }
    }

    /// The report of one zone, if it has probes.
    pub fn zone(&self, zone: &Zone) -> Option<&TargetReport> {
        self.zones
            .iter()
            .find(|z| z.status.target.zone() == Some(zone))
    }

    /// Tables for a terminal.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        s.push_str(&table(&self.zone_rows()));
        self.write_whys(&mut s);
        let rows = self.probe_rows();
        if rows.len() > 1 {
            s.push('\n');
            s.push_str(&table(&rows));
        }
        if let Some(c) = self.aws_calls.as_ref().filter(|c| c.total() > 0) {
            let _ = writeln!(s, "\nThe probes made {} so far.", c.line());
        }
        s
    }

    /// The title, the rules, the observer and the region.
    fn write_header(&self, s: &mut String) {
        let at = self.at.map(fmt_time).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "Health of `{}` ({}) at {at}, after {} round(s)",
            self.environment, self.region, self.rounds
        );
        let r = &self.rules;
        let _ = writeln!(
            s,
            "Rules: a round is bad when at least {} of a zone's probes fail; unhealthy after {} bad round(s) in a row, healthy again after {} good round(s); a round every {}, timeout {}, {} attempt(s) for http/tcp",
            r.quorum,
            r.unhealthy_after,
            r.healthy_after,
            humantime::format_duration(Duration::from_millis(r.interval_ms)),
            humantime::format_duration(Duration::from_millis(r.timeout_ms)),
            r.attempts
        );
        if self.observer.suspect {
            let since = self.observer.since.map(fmt_time).unwrap_or_default();
            let _ = writeln!(
                s,
                "\nOBSERVER SUSPECT since {since}: {}",
                self.observer.reason.as_deref().unwrap_or("")
            );
        }
        let region_reason = if self.observer.suspect {
            "see above"
        } else {
            self.region_health.reason.as_str()
        };
        let _ = writeln!(
            s,
            "\nRegion {}: {} ({region_reason})\n",
            self.region,
            self.region_health.state.to_string().to_uppercase(),
        );
    }

    /// One row per zone (probed or not) and for the region-wide probes.
    fn zone_rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            "ZONE".to_string(),
            "STATE".into(),
            "SINCE".into(),
            "LAST ROUND".into(),
            "STREAK".into(),
        ]];
        for t in self.zones.iter().chain(self.regional.iter()) {
            rows.push(zone_row(&t.status));
        }
        for z in &self.unprobed_zones {
            rows.push(vec![
                z.to_string(),
                "-".into(),
                "-".into(),
                "no probes".into(),
                "-".into(),
            ]);
        }
        rows
    }

    /// Why each target that changed state is in its state.
    fn write_whys(&self, s: &mut String) {
        let whys: Vec<&TargetReport> = self
            .zones
            .iter()
            .chain(self.regional.iter())
            .filter(|t| t.status.why.is_some() && t.status.state != State::Unknown)
            .collect();
        if !whys.is_empty() {
            s.push_str("\nWhy:\n");
            for t in whys {
                let w = t.status.why.as_ref().expect("filtered on why");
                let _ = writeln!(
                    s,
                    "  {} is {}: {}",
                    t.status.target, t.status.state, w.summary
                );
            }
        }
    }

    /// One row per probe result of the last round (just the header when there is none).
    fn probe_rows(&self) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            "ZONE".to_string(),
            "PROBE".into(),
            "KIND".into(),
            "RESULT".into(),
            "LATENCY".into(),
            "DETAIL".into(),
        ]];
        for t in self.zones.iter().chain(self.regional.iter()) {
            for p in &t.probes {
                rows.push(vec![
                    p.target.to_string(),
                    p.probe.clone(),
                    p.kind.clone(),
                    p.outcome.to_string(),
                    p.latency
                        .map(|l| format!("{}ms", l.as_millis()))
                        .unwrap_or_else(|| "-".into()),
                    p.detail.clone(),
                ]);
            }
        }
        rows
    }
}

fn zone_row(st: &TargetStatus) -> Vec<String> {
    let state = match st.state {
        State::Unhealthy => "UNHEALTHY".to_string(),
        other => other.to_string(),
    };
    let since = st.since.map(fmt_time).unwrap_or_else(|| "-".into());
    let last = match &st.last {
        None => "-".to_string(),
        Some(t) => {
            let verdict = match t.verdict {
                Verdict::Good => "good",
                Verdict::Bad => "BAD",
                Verdict::Inconclusive => "inconclusive",
            };
            let mut x = format!("{verdict}: {} of {} failing", t.failing, st.probes);
            if t.unknown > 0 {
                x.push_str(&format!(", {} unknown", t.unknown));
            }
            x
        }
    };
    let streak = if st.inconclusive_streak > 0 {
        format!("{} inconclusive", st.inconclusive_streak)
    } else if st.bad_streak > 0 {
        format!("{} bad", st.bad_streak)
    } else if st.good_streak > 0 {
        format!("{} good", st.good_streak)
    } else {
        "-".into()
    };
    vec![st.target.to_string(), state, since, last, streak]
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|x| x.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::config::{Check, Probe};
    use crate::health::eval::{Outcome, ProbeResult, Round};

    fn probe(name: &str, zone: &str) -> Probe {
        Probe {
            name: name.into(),
            target: Target::Zone(Zone::from(zone)),
            timeout: Duration::from_secs(1),
            check: Check::Tcp {
                address: "h:1".into(),
            },
        }
    }

    fn result(p: &Probe, outcome: Outcome, detail: &str) -> ProbeResult {
        ProbeResult {
            probe: p.name.clone(),
            target: p.target.clone(),
            kind: "tcp".into(),
            outcome,
            detail: detail.into(),
            latency: Some(Duration::from_millis(3)),
            attempts: 1,
        }
    }

    #[test]
    fn text_report_shows_zones_reasons_and_probes() {
        let probes = vec![
            probe("db-a1", "us-west-2a"),
            probe("db-a2", "us-west-2a"),
            probe("db-b1", "us-west-2b"),
            probe("db-b2", "us-west-2b"),
            probe("db-c1", "us-west-2c"),
        ];
        let cfg = HealthConfig {
            quorum: 1,
            unhealthy_after: 1,
            healthy_after: 2,
            probes: probes.clone(),
            ..HealthConfig::default()
        };
        let mut ev = Evaluator::from_config(&cfg);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let round = Round {
            started: t,
            at: t,
            results: vec![
                result(&probes[0], Outcome::Fail, "connection refused"),
                result(&probes[1], Outcome::Pass, "connected in 3ms"),
                result(&probes[2], Outcome::Pass, "connected in 3ms"),
                result(&probes[3], Outcome::Unknown, "cannot resolve"),
                result(&probes[4], Outcome::Pass, "connected in 3ms"),
            ],
        };
        ev.observe(&round);
        let scope = Scope {
            environment: "local".into(),
            region: "us-west-2".into(),
            zones: ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
                .map(Zone::from)
                .to_vec(),
        };
        let report = HealthReport::build(&scope, &cfg, &ev, Some(&round));
        let text = report.render_text();
        let want = "\
Health of `local` (us-west-2) at 2027-01-15T08:00:00.000Z, after 1 round(s)
Rules: a round is bad when at least 1 of a zone's probes fail; unhealthy after 1 bad round(s) in a row, healthy again after 2 good round(s); a round every 10s, timeout 2s, 2 attempt(s) for http/tcp

Region us-west-2: DEGRADED (unhealthy: us-west-2a)

ZONE        STATE      SINCE                     LAST ROUND                               STREAK
us-west-2a  UNHEALTHY  2027-01-15T08:00:00.000Z  BAD: 1 of 2 failing                      1 bad
us-west-2b  unknown    -                         inconclusive: 0 of 2 failing, 1 unknown  1 inconclusive
us-west-2c  healthy    2027-01-15T08:00:00.000Z  good: 0 of 1 failing                     1 good
us-west-2d  -          -                         no probes                                -

Why:
  us-west-2a is unhealthy: 1 of 2 probes failing (quorum 1) for 1 consecutive bad round(s) since 2027-01-15T08:00:00.000Z: db-a1 (connection refused)

ZONE        PROBE  KIND  RESULT   LATENCY  DETAIL
us-west-2a  db-a1  tcp   FAIL     3ms      connection refused
us-west-2a  db-a2  tcp   pass     3ms      connected in 3ms
us-west-2b  db-b1  tcp   pass     3ms      connected in 3ms
us-west-2b  db-b2  tcp   unknown  3ms      cannot resolve
us-west-2c  db-c1  tcp   pass     3ms      connected in 3ms
";
        assert_eq!(text, want, "\n{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["zones"][0]["state"], "unhealthy");
        assert_eq!(json["zones"][0]["target"]["zone"], "us-west-2a");
        assert_eq!(json["zones"][0]["probes"][0]["latency"], 3);
        assert_eq!(json["region_health"]["state"], "degraded");
        assert_eq!(json["unprobed_zones"][0], "us-west-2d");
        assert!(json.get("aws_calls").is_none(), "not counted: not said");
        // Counted by the caller: the probes' AWS calls so far, under the tables.
        let mut counted = report.clone();
        let mut calls = crate::cloud::model::CallCounts::default();
        calls.cloudwatch.reads = 6;
        counted.aws_calls = Some(calls);
        let text = counted.render_text();
        assert!(
            text.ends_with("\nThe probes made 6 AWS call(s): 6 read(s), 0 mutating; 0 throttled, 0 failed (RDS 0, Route 53 0, CloudWatch 6) so far.\n"),
            "{text}"
        );
        assert_eq!(
            serde_json::to_value(&counted).unwrap()["aws_calls"]["cloudwatch"]["reads"],
            6
        );
        counted.aws_calls = Some(Default::default());
        assert_eq!(counted.render_text(), want, "no AWS probe, no line");
    }
}
