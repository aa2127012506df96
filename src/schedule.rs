//! Drill schedules (`[[drills]]` of an environment file) and the pure decision of which drill
//! slots are due: a function of (schedule, slots already handled, now) and nothing else, so the
//! scheduler is tested on a virtual clock (docs/drills.md).
//!
//! A slot is an occurrence of the cron expression in the schedule's time zone that does not
//! fall in a blackout window (weekly time ranges) or on a blackout date; a slot in a blackout
//! is skipped, not missed. A slot is *due* from its time until `start_within` later; after
//! that, if no drill was run for it, it is *missed*. A slot is handled once (the journal
//! records it), so it never fires twice.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One `[[drills]]` entry.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DrillSchedule {
    /// Unique within the environment: names the slots in the journal.
    pub name: String,
    /// The runbook file, as written (relative to the working directory).
    pub runbook: String,
    pub params: BTreeMap<String, String>,
    /// The cron expression (5 fields, or 6 with seconds first), checked when parsed.
    pub cron: String,
    /// An IANA time zone name (`Europe/Paris`), checked when parsed; default `UTC`.
    pub timezone: String,
    pub blackout_windows: Vec<WeeklyWindow>,
    pub blackout_dates: Vec<DateRange>,
    pub no_failback: bool,
    pub max_duration: Option<Duration>,
    pub stop_on: Vec<String>,
    /// How late after its slot a drill may still start; later, the slot is missed.
    pub start_within: Duration,
    /// The endpoint told of a missed or failed drill (else the environment's `[audit] notify`).
    pub notify: Option<String>,
    /// Where the entry is (its `runbook` key), for problems found when the runbook is bound.
    #[serde(skip)]
    pub at: crate::diag::Place,
}

/// A weekly time range in the schedule's zone, `Sat 00:00-Mon 06:00` (may wrap the week's
/// end) or `Fri 12:00-14:00`; the end is excluded.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WeeklyWindow {
    pub text: String,
    /// Minutes since Monday 00:00.
    pub from: u32,
    pub to: u32,
}

/// A blackout date (`2026-12-25`) or an inclusive range of dates (`2026-12-20..2027-01-03`),
/// in the schedule's zone.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DateRange {
    pub text: String,
    #[serde(serialize_with = "iso_date")]
    pub from: NaiveDate,
    #[serde(serialize_with = "iso_date")]
    pub to: NaiveDate,
}

fn iso_date<S: serde::Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.format("%Y-%m-%d").to_string())
}

const WEEK: u32 = 7 * 24 * 60;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeeklyWindow {
    /// Parse `DAY HH:MM-DAY HH:MM` or `DAY HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not a weekly window; write e.g. \"Sat 00:00-Mon 06:00\" or \"Fri 12:00-14:00\" (days Mon..Sun, 24-hour times)")
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let point = |p: &str, day: Option<u32>| -> Option<u32> {
            let mut parts = p.split_whitespace();
            let first = parts.next()?;
            let (d, hm) = match (day, parts.next()) {
                (_, Some(hm)) => (
                    DAYS.iter()
                        .position(|x| first.to_ascii_lowercase().starts_with(x))?
                        as u32,
                    hm,
                ),
                (Some(d), None) => (d, first),
                (None, None) => return None,
            };
            let (h, m) = hm.split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(d * 1440 + h * 60 + m)
        };
        let from = point(a.trim(), None).ok_or_else(bad)?;
        let to = point(b.trim(), Some(from / 1440)).ok_or_else(bad)?;
        if from == to {
            return Err(format!("`{s}` is an empty window: its start is its end"));
        }
        Ok(Self {
            text: s.to_string(),
            from,
            to: to % WEEK,
        })
    }

    /// Whether the minute of the week `m` is inside.
    pub fn contains(&self, m: u32) -> bool {
        if self.from < self.to {
            (self.from..self.to).contains(&m)
        } else {
            m >= self.from || m < self.to
        }
    }
}

impl DateRange {
    pub fn parse(s: &str) -> Result<Self, String> {
        let date = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                format!("`{s}` is not a date or a range of dates; write e.g. \"2026-12-25\" or \"2026-12-20..2027-01-03\"")
            })
        };
        let (from, to) = match s.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => (date(s)?, date(s)?),
        };
        if to < from {
            return Err(format!("`{s}` ends before it starts"));
        }
        Ok(Self {
            text: s.to_string(),
            from,
            to,
        })
    }
}

/// Parse a cron expression as schedules read it (5 fields, or 6 with seconds first).
pub fn parse_cron(s: &str) -> Result<croner::Cron, String> {
    croner::Cron::new(s)
        .with_seconds_optional()
        .parse()
        .map_err(|e| {
            format!(
                "`{s}` is not a cron expression ({e}); e.g. \"0 3 * * TUE\" (03:00 every Tuesday)"
            )
        })
}

/// Parse an IANA time zone name.
pub fn parse_zone(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>().map_err(|_| format!("`{s}` is not an IANA time zone; e.g. \"UTC\", \"Europe/Paris\", \"America/Los_Angeles\""))
}

/// What to do about one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "due", rename_all = "snake_case")]
pub enum Due {
    /// Start the drill of this slot now (epoch ms of the slot).
    Run { slot: i64 },
    /// This slot passed with no drill run: record and notify it.
    Missed { slot: i64, why: String },
}

/// How far back a schedule with history looks for missed slots.
pub const LOOKBACK: Duration = Duration::from_secs(8 * 24 * 3600);
/// At most this many missed slots are reported at once (the most recent).
pub const MAX_MISSED: usize = 10;

impl DrillSchedule {
    fn tz(&self) -> Tz {
        parse_zone(&self.timezone).unwrap_or(chrono_tz::UTC)
    }

    /// The blackout window or date a moment falls in, if any.
    pub fn blackout_at(&self, ms: i64) -> Option<String> {
        let t = self.tz().timestamp_millis_opt(ms).single()?;
        let m = t.weekday().num_days_from_monday() * 1440 + t.hour() * 60 + t.minute();
        if let Some(w) = self.blackout_windows.iter().find(|w| w.contains(m)) {
            return Some(format!("blackout window {}", w.text));
        }
        let day = t.date_naive();
        self.blackout_dates
            .iter()
            .find(|d| d.from <= day && day <= d.to)
            .map(|d| format!("blackout date {}", d.text))
    }

    /// Slots (epoch ms) in `[from, to]`, blackouts excluded, at most `limit` (the last ones).
    pub fn slots(&self, from: i64, to: i64, limit: usize) -> Vec<i64> {
        let Ok(cron) = parse_cron(&self.cron) else {
            return vec![];
        };
        let tz = self.tz();
        let Some(start) = tz.timestamp_millis_opt(from).single() else {
            return vec![];
        };
        let mut out = vec![];
        // Bounded: a `* * * * * *` cron over the lookback is 700k seconds.
        for t in cron.iter_from(start).take(100_000) {
            let ms = t.timestamp_millis();
            if ms > to {
                break;
            }
            if ms >= from && self.blackout_at(ms).is_none() {
                out.push(ms);
            }
        }
        let n = out.len();
        out.split_off(n.saturating_sub(limit))
    }

    /// The next slot after `now` (blackouts excluded), if any within a year.
    pub fn next_after(&self, now: i64) -> Option<i64> {
        let cron = parse_cron(&self.cron).ok()?;
        let tz = self.tz();
        let start = tz.timestamp_millis_opt(now).single()?;
        let year = now + 366 * 24 * 3600 * 1000;
        cron.iter_after(start)
            .take(100_000)
            .map(|t| t.timestamp_millis())
            .filter(|ms| *ms > now)
            .take_while(|ms| *ms <= year)
            .find(|ms| self.blackout_at(*ms).is_none())
    }
}

/// Which slots are due or missed at `now`, given the slots already handled (run, or recorded
/// as missed). Pure.
///
/// With no handled slot (a new schedule), only its latest slot within `start_within` is looked
/// at: a schedule never reports as missed a slot from before it was first checked. Otherwise
/// every slot after the last handled one (at most [`LOOKBACK`] back) is due or missed.
pub fn decide(s: &DrillSchedule, handled: &[i64], now: i64) -> Vec<Due> {
    let within = s.start_within.as_millis() as i64;
    let from = match handled.iter().max() {
        Some(last) => (last + 1).max(now - LOOKBACK.as_millis() as i64),
        None => now - within,
    };
    // A schedule with no slot handled yet is new (or its journal is): only its latest slot
    // is due; the earlier ones were not missed, nothing was supposed to run them.
    let limit = if handled.is_empty() {
        1
    } else {
        MAX_MISSED + 1
    };
    let slots: Vec<i64> = s
        .slots(from, now, limit)
        .into_iter()
        .filter(|t| !handled.contains(t))
        .collect();
    let blackout_now = s.blackout_at(now);
    slots
        .iter()
        .map(|&slot| {
            let late = now - slot > within;
            let last = Some(&slot) == slots.last();
            match (last && !late, &blackout_now) {
                (true, None) => Due::Run { slot },
                (true, Some(b)) => Due::Missed { slot, why: format!("not started: now is in a {b}") },
                (false, _) if last => Due::Missed { slot, why: format!("no drill started within {} of its time (was failover serve or `failover drills run-due` running?)", humantime::format_duration(s.start_within)) },
                (false, _) => Due::Missed { slot, why: "a later slot came before any drill ran for it (was failover serve or `failover drills run-due` running?)".into() },
            }
        })
        .collect()
}

/// `2026-12-01 03:00 Europe/Paris` for people.
pub fn local(s: &DrillSchedule, ms: i64) -> String {
    let tz = s.tz();
    match tz.timestamp_millis_opt(ms).single() {
        Some(t) => format!("{} {}", t.format("%Y-%m-%d %H:%M %a"), s.timezone),
        None => DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_wrap() {
        let w = WeeklyWindow::parse("Sat 00:00-Mon 06:00").unwrap();
        assert!(w.contains(5 * 1440 + 1));
        assert!(w.contains(6));
        assert!(!w.contains(6 * 60));
        let lunch = WeeklyWindow::parse("fri 12:00-14:00").unwrap();
        assert!(lunch.contains(4 * 1440 + 13 * 60));
        assert!(!lunch.contains(4 * 1440 + 14 * 60));
        assert!(WeeklyWindow::parse("Sat 25:00-Sun 01:00").is_err());
        assert!(WeeklyWindow::parse("someday").is_err());
        assert!(DateRange::parse("2026-12-20..2026-12-01").is_err());
        assert!(parse_cron("0 3 * * TUE").is_ok());
        assert!(parse_cron("61 3 * * *").is_err());
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
