//! Drills, their schedules and run reports: the pure slot decision on a virtual clock, drills
//! against the simulator and moto that fail over, verify and fail back to the starting state,
//! stop conditions that abort and fail back, `run-due` claiming each slot once, and the report
//! in Markdown, JSON and HTML (expected files in tests/it/snapshots/, refreshed with
//! `UPDATE_SNAPSHOTS=1`).

use crate::common;

use common::snapshot;
use common::topo::{self, repo, TestConfig};
use failover::app::drill::{self, DrillOrder, DrillResult};
use failover::app::run::MakeReporter;
use failover::app::App;
use failover::engine::Stop;
use failover::progress::{Reporter, Silent};
use failover::schedule::{decide, DateRange, DrillSchedule, Due, WeeklyWindow};
use failover::status::{RunMode, RunStatus};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
/// 2026-12-01 00:00:00Z, a Tuesday.
const TUE: i64 = 1_796_083_200_000;

fn schedule(cron: &str, tz: &str) -> DrillSchedule {
    DrillSchedule {
        name: "weekly".into(),
        runbook: "runbooks/az-evacuation.toml".into(),
        params: Default::default(),
        cron: cron.into(),
        timezone: tz.into(),
        blackout_windows: vec![],
        blackout_dates: vec![],
        no_failback: false,
        max_duration: None,
        stop_on: vec![],
        start_within: Duration::from_secs(3600),
        notify: None,
        at: Default::default(),
    }
}

#[test]
fn a_slot_fires_on_time_and_once() {
    let s = schedule("0 3 * * TUE", "UTC");
    let slot = TUE + 3 * HOUR;
    assert_eq!(decide(&s, &[], slot - 1), vec![], "not before its time");
    assert_eq!(decide(&s, &[], slot), vec![Due::Run { slot }]);
    assert_eq!(decide(&s, &[], slot + 59 * MIN), vec![Due::Run { slot }]);
    // Handled: never again, however often it is asked.
    assert_eq!(decide(&s, &[slot], slot + 1), vec![]);
    assert_eq!(decide(&s, &[slot], slot + 6 * 24 * HOUR), vec![]);
    // A new schedule whose slot is long past says nothing (it was not running then).
    assert_eq!(decide(&s, &[], slot + 2 * HOUR), vec![]);
    assert_eq!(s.next_after(slot), Some(slot + 7 * 24 * HOUR));
}

#[test]
fn a_new_frequent_schedule_runs_its_latest_slot_and_reports_nothing_missed() {
    // Every 5 minutes, new (nothing handled), asked 22 minutes into the hour: the slot at :20
    // runs; :00 to :15 were never due to anyone, so they are not "missed".
    let s = schedule("*/5 * * * *", "UTC");
    let now = TUE + 22 * MIN;
    assert_eq!(
        decide(&s, &[], now),
        vec![Due::Run {
            slot: TUE + 20 * MIN
        }]
    );
    // Once it has a history, a gap is missed slots.
    let due = decide(&s, &[TUE + 20 * MIN], TUE + 37 * MIN);
    assert_eq!(due.len(), 3, "{due:?}");
    assert!(matches!(due[0], Due::Missed { slot, .. } if slot == TUE + 25 * MIN));
    assert_eq!(
        due[2],
        Due::Run {
            slot: TUE + 35 * MIN
        }
    );
}

#[test]
fn time_zones_place_the_slot() {
    // 03:00 in Paris is 02:00Z in December (CET, UTC+1).
    let s = schedule("0 3 * * TUE", "Europe/Paris");
    assert_eq!(s.next_after(TUE), Some(TUE + 2 * HOUR));
    // In July (CEST, UTC+2) it is 01:00Z: 2026-07-07 is a Tuesday.
    let july = 1_783_382_400_000; // 2026-07-07 00:00Z
    assert_eq!(s.next_after(july - 1), Some(july + HOUR));
}

#[test]
fn a_missed_slot_is_reported_and_the_next_one_runs() {
    let s = schedule("0 3 * * *", "UTC");
    let d1 = TUE + 3 * HOUR;
    // Ran on day 1; the machine was off on day 2; day 3 at 03:10.
    let now = d1 + 2 * 24 * HOUR + 10 * MIN;
    let due = decide(&s, &[d1], now);
    assert_eq!(due.len(), 2, "{due:?}");
    assert!(
        matches!(&due[0], Due::Missed { slot, .. } if *slot == d1 + 24 * HOUR),
        "{due:?}"
    );
    assert_eq!(
        due[1],
        Due::Run {
            slot: d1 + 48 * HOUR
        }
    );
    // Later than its start window, the latest slot is missed too.
    let late = decide(&s, &[d1], d1 + 24 * HOUR + 2 * HOUR);
    assert!(
        matches!(&late[..], [Due::Missed { why, .. }] if why.contains("within 1h")),
        "{late:?}"
    );
}

#[test]
fn blackouts_skip_slots_and_hold_starts() {
    let mut s = schedule("0 3 * * *", "UTC");
    // Weekends, from Saturday 00:00 to Monday 00:00; and Christmas.
    s.blackout_windows = vec![WeeklyWindow::parse("Sat 00:00-Mon 00:00").unwrap()];
    s.blackout_dates = vec![DateRange::parse("2026-12-24..2026-12-26").unwrap()];
    let sat = TUE + 4 * 24 * HOUR + 3 * HOUR; // Saturday 03:00
    assert_eq!(decide(&s, &[], sat), vec![], "a weekend slot does not fire");
    // ... and is not missed on Monday either.
    let mon = sat + 2 * 24 * HOUR;
    assert_eq!(
        decide(&s, &[sat - 24 * HOUR], mon),
        vec![Due::Run { slot: mon }]
    );
    let xmas = TUE + 24 * 24 * HOUR + 3 * HOUR; // 2026-12-25 03:00
    assert_eq!(decide(&s, &[], xmas), vec![]);
    // The 26th is a blackout date and a Saturday, the 27th a Sunday: Monday the 28th.
    assert_eq!(s.next_after(xmas), Some(xmas + 3 * 24 * HOUR));
}

#[test]
fn the_next_slot_skips_blackouts() {
    let mut s = schedule("0 3 * * *", "UTC");
    s.blackout_windows = vec![WeeklyWindow::parse("Sat 00:00-Mon 00:00").unwrap()];
    let fri = TUE + 3 * 24 * HOUR + 3 * HOUR;
    assert_eq!(s.next_after(fri), Some(fri + 3 * 24 * HOUR), "Monday");
}

/// A config directory with a simulated environment that has nothing wrong in it.
fn sim_config(extra: &str) -> tempfile::TempDir {
    sim_config_with(extra, |t| t)
}

fn sim_config_with(extra: &str, topology: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    std::fs::create_dir(&sim).unwrap();
    let text = std::fs::read_to_string(repo().join("config/sim/storefront.toml")).unwrap();
    std::fs::write(sim.join("storefront.toml"), topology(text)).unwrap();
    let text = format!(
        "description = \"the simulated storefront, nothing wrong\"\nsimulated = \"sim/storefront.toml\"\nseed = 7\n{extra}"
    );
    std::fs::write(dir.path().join("drillsim.toml"), text).unwrap();
    dir
}

fn silent() -> MakeReporter {
    Box::new(|_| Arc::new(Silent) as Arc<dyn Reporter>)
}

fn order(env: &str, failed_az: &str) -> DrillOrder {
    DrillOrder {
        runbook: repo().join("runbooks/az-evacuation.toml"),
        env: env.into(),
        params: vec![("failed_az".into(), failed_az.into())],
        by: Some("alice".into()),
        no_failback: false,
        max_duration: None,
        stop_on: vec![],
        stop: Stop::default(),
        run_id: None,
        on_phase: None,
    }
}

async fn run_drill(app: &App, o: DrillOrder) -> DrillResult {
    let p = drill::prepare_drill(app, o).unwrap_or_else(|e| panic!("{e}"));
    drill::drill(app, p, silent())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn phases(r: &DrillResult) -> Vec<(String, String)> {
    r.phases
        .iter()
        .map(|p| (p.phase.clone(), p.outcome.clone()))
        .collect()
}

fn all_ok() -> Vec<(String, String)> {
    ["pre-check", "run", "verify", "failback", "verify-failback"]
        .iter()
        .map(|p| (p.to_string(), "ok".to_string()))
        .collect()
}

#[tokio::test]
async fn a_simulated_drill_fails_over_verifies_and_fails_back_to_the_starting_state() {
    let dir = sim_config("");
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let r = run_drill(&app, order("drillsim", "us-west-2a")).await;
    assert_eq!(phases(&r), all_ok(), "{r:#?}");
    assert_eq!(r.status, RunStatus::Succeeded);
    let back = &r.phases[4];
    assert_eq!(back.detail, "the observed state is the starting state");
    // The failover and the failback both really happened.
    let j = app.open_journal().unwrap();
    let run = failover::app::report::build(&j, r.run_id.as_str())
        .await
        .unwrap();
    assert_eq!(run.run.mode, RunMode::Drill);
    let moved: Vec<String> = run
        .promotions
        .iter()
        .map(|p| format!("{} {}->{}", p.cluster, p.from_zone, p.to_zone))
        .collect();
    assert_eq!(
        moved,
        [
            "orders-db us-west-2a->us-west-2c",
            "sessions-db us-west-2a->us-west-2b"
        ],
        "{moved:?}"
    );
    let fb = r.failback_run.clone().expect("a failback run");
    let fb = failover::app::report::build(&j, fb.as_str()).await.unwrap();
    assert_eq!(fb.run.mode, RunMode::Rollback);
    let back: Vec<String> = fb
        .promotions
        .iter()
        .map(|p| format!("{} {}->{}", p.cluster, p.from_zone, p.to_zone))
        .collect();
    assert_eq!(
        back,
        [
            "orders-db us-west-2c->us-west-2a",
            "sessions-db us-west-2b->us-west-2a"
        ]
    );
    assert!(
        fb.steps
            .iter()
            .any(|s| s.action == "dns.restore" && s.calls.ok == 1),
        "{:?}",
        fb.steps
    );
    // Listed by `runs` with its mode.
    let runs = failover::app::inspect::runs(&app, 10).await.unwrap();
    assert!(runs
        .iter()
        .any(|(r2, _)| r2.id == r.run_id && r2.mode == RunMode::Drill));
}

#[test]
fn the_starting_state_comparison_sees_a_writer_that_did_not_come_back() {
    use failover::cloud::{ClusterMember, ClusterState, DbStatus};
    let cluster = |writer: &str| ClusterState {
        id: "orders-db".into(),
        status: DbStatus::from("available"),
        engine: "aurora-mysql".into(),
        members: ["orders-db-a", "orders-db-c"]
            .iter()
            .map(|i| ClusterMember {
                instance: (*i).into(),
                is_writer: *i == writer,
                promotion_tier: 1,
            })
            .collect(),
    };
    let mut before = failover::world::World::default();
    before
        .clusters
        .insert("orders-db".into(), cluster("orders-db-a"));
    let mut after = before.clone();
    assert!(drill::differences(&before, &after).is_empty());
    after
        .clusters
        .insert("orders-db".into(), cluster("orders-db-c"));
    assert_eq!(
        drill::differences(&before, &after),
        ["cluster `orders-db`: writer `orders-db-a` at the start, `orders-db-c` now"]
    );
}

#[tokio::test]
async fn a_stop_condition_aborts_the_run_and_fails_back() {
    let dir = sim_config("");
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let mut o = order("drillsim", "us-west-2a");
    // The evacuation takes about 2 minutes of simulated time: stopped after 45 s, when the
    // writers have moved and DNS has not yet.
    o.max_duration = Some(Duration::from_secs(45));
    let r = run_drill(&app, o).await;
    assert_eq!(r.status, RunStatus::Aborted, "{r:#?}");
    assert_eq!(
        r.stopped_by.as_deref(),
        Some("maximum duration 45s reached")
    );
    let got = phases(&r);
    assert_eq!(got[1], ("run".into(), "failed".into()));
    assert_eq!(got[2], ("verify".into(), "skipped".into()));
    assert_eq!(got[3], ("failback".into(), "ok".into()), "{r:#?}");
    assert_eq!(got[4], ("verify-failback".into(), "ok".into()), "{r:#?}");
    let j = app.open_journal().unwrap();
    let rep = failover::app::report::build(&j, r.run_id.as_str())
        .await
        .unwrap();
    let md = failover::report::run_report::render_markdown(&rep);
    assert!(
        md.contains("Stopped by a stop condition:** maximum duration 45s reached"),
        "{md}"
    );
    assert!(
        !rep.promotions.is_empty(),
        "the writers had moved before the stop"
    );
}

#[tokio::test]
async fn a_drill_with_a_problem_in_its_pre_check_makes_no_call() {
    // orders-db has no reader: nowhere to fail its writer over to.
    let dir = sim_config_with("", |t| {
        t.lines()
            .filter(|l| !l.contains("orders-db-b\"") && !l.contains("orders-db-c\""))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let r = run_drill(&app, order("drillsim", "us-west-2a")).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        phases(&r),
        [("pre-check".to_string(), "failed".to_string())]
    );
    let j = app.open_journal().unwrap();
    let events = j.events(&r.run_id).await.unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "intent"),
        "no call was made"
    );
    assert!(events.iter().any(|e| e.kind == "drill_phase"));
}

#[test]
fn stop_conditions_must_name_probes() {
    // A simulated world without [health]: nothing to watch.
    let dir = sim_config_with("", |t| t[..t.find("[health]").unwrap()].to_string());
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let mut o = order("drillsim", "us-west-2a");
    o.stop_on = vec!["api-b".into()];
    let e = drill::prepare_drill(&app, o)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("--stop-on needs the probes of a [health] section")
            && e.contains("hint: add [health] probes to its simulated topology"),
        "{e}"
    );
}

#[tokio::test]
async fn a_simulated_probe_stop_condition_aborts_and_fails_back() {
    // The zone the writers move to starts failing its API probe 30 s into the drill: the
    // drill must stop there and put everything back, as FIS stops an experiment on an alarm.
    let dir = sim_config("faults = [\"probes-fail us-west-2b count 1 at 30s\"]\n");
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let mut o = order("drillsim", "us-west-2a");
    o.stop_on = vec!["api-b".into()];
    let r = run_drill(&app, o).await;
    assert_eq!(r.status, RunStatus::Aborted, "{r:#?}");
    let why = r.stopped_by.clone().unwrap_or_default();
    assert!(
        why.starts_with("probe `api-b` failed: no answer within"),
        "{why}"
    );
    let got = phases(&r);
    assert_eq!(got[1], ("run".into(), "failed".into()), "{r:#?}");
    assert_eq!(got[3], ("failback".into(), "ok".into()), "{r:#?}");
    assert_eq!(got[4], ("verify-failback".into(), "ok".into()), "{r:#?}");
    // Stopped when the probe failed, not at the end of the evacuation: the first round
    // after 30 s (rounds every 10 s), before the records moved at about +1m30.
    let run = &r.phases[1];
    let took = run.ended_at - run.started_at;
    assert!(
        (30_000..=45_000).contains(&took),
        "run phase took {took} ms"
    );
    // A probe that keeps passing never stops a drill.
    let mut o = order("drillsim", "us-west-2a");
    o.stop_on = vec!["api-c".into()];
    let r = run_drill(&app, o).await;
    assert_eq!(phases(&r), all_ok(), "{r:#?}");
}

/// The drill report of a deterministic simulated drill, with the run ids and wall-clock
/// times (the journal's origin) taken out.
fn normalize(text: &str, ids: &[&str]) -> String {
    let mut t = text.to_string();
    for (i, id) in ids.iter().enumerate() {
        t = t.replace(id, &format!("RUN{i}"));
    }
    let mut out = String::new();
    let mut chars = t.as_str();
    // hh:mm:ssZ and yyyy-mm-dd hh:mm:ssZ (wall clock) -> placeholders.
    while let Some(pos) = chars.find('Z') {
        let (head, tail) = chars.split_at(pos);
        let is_clock = head.len() >= 8
            && head[head.len() - 8..].chars().enumerate().all(|(i, c)| {
                if i == 2 || i == 5 {
                    c == ':'
                } else {
                    c.is_ascii_digit()
                }
            });
        if is_clock {
            let head = &head[..head.len() - 8];
            let dated = head.len() >= 11
                && head[head.len() - 11..head.len() - 1]
                    .chars()
                    .enumerate()
                    .all(|(i, c)| {
                        if i == 4 || i == 7 {
                            c == '-'
                        } else {
                            c.is_ascii_digit()
                        }
                    });
            out.push_str(if dated {
                &head[..head.len() - 11]
            } else {
                head
            });
            out.push_str(if dated { "DATE TIME" } else { "TIME" });
        } else {
            out.push_str(head);
            out.push('Z');
        }
        chars = &tail[1..];
    }
    out.push_str(chars);
    out
}

#[tokio::test]
async fn the_report_of_a_drill_in_markdown_json_and_html() {
    let dir = sim_config("");
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let first = run_drill(&app, order("drillsim", "us-west-2a")).await;
    let r = run_drill(&app, order("drillsim", "us-west-2a")).await;
    let j = app.open_journal().unwrap();
    let rep = failover::app::report::build(&j, r.run_id.as_str())
        .await
        .unwrap();
    let ids = [
        r.run_id.as_str(),
        r.failback_run.as_ref().unwrap().as_str(),
        first.run_id.as_str(),
    ];
    use failover::report::run_report::{render_html, render_json, render_markdown};
    let md = render_markdown(&rep);
    snapshot("drill-report.md", &normalize(&md, &ids));
    // The second drill is compared with the first: same simulated durations, ratio 1.00.
    let cmp = &rep.drill.as_ref().unwrap().comparison;
    assert!(
        cmp.iter()
            .all(|t| t.previous_ms.len() == 1 && !t.regression),
        "{cmp:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&render_json(&rep)).unwrap();
    for key in [
        "format",
        "run",
        "trigger",
        "detection",
        "approvals",
        "steps",
        "calls",
        "traffic",
        "promotions",
        "measures",
        "timeline",
        "drill",
    ] {
        assert!(json.get(key).is_some(), "JSON report has `{key}`");
    }
    assert_eq!(
        json["measures"]["time_to_detect"]["ms"],
        serde_json::Value::Null
    );
    assert!(json["promotions"][0]["replica_lag_note"]
        .as_str()
        .unwrap()
        .contains("AuroraReplicaLag no CloudWatch client for this run"));
    let html = render_html(&rep);
    assert!(
        html.starts_with("<!doctype html>")
            && html.contains("<svg")
            && html.contains("verify-failback")
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script"),
        "self-contained"
    );
    snapshot("drill-report.html", &normalize(&html, &ids));
}

#[tokio::test]
async fn the_cli_writes_a_report_file() {
    let dir = sim_config("");
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let r = run_drill(&app, order("drillsim", "us-west-2a")).await;
    let out = dir.path().join("r.html");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .args([
            "--config-dir",
            dir.path().to_str().unwrap(),
            "--journal",
            dir.path().join("j.db").to_str().unwrap(),
        ])
        .args([
            "report",
            r.run_id.as_str(),
            "--format",
            "html",
            "-o",
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read_to_string(&out).unwrap().contains("<svg"));
}

fn slot_env(cron: &str) -> String {
    let rb = repo().join("runbooks/az-evacuation.toml");
    format!("\n[[drills]]\nname = \"nightly\"\nrunbook = \"{}\"\nparams = {{ failed_az = \"us-west-2a\" }}\ncron = \"{cron}\"\n", rb.display())
}

fn run_due_at(dir: &Path, now: i64) -> Vec<failover::app::drills::DueOutcome> {
    let app = App::new(dir, dir.join("j.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(failover::app::drills::run_due(
        &app,
        None,
        now,
        &Stop::default(),
        &mut |_| {},
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn run_due_starts_each_slot_once_even_twice_at_once() {
    let dir = sim_config(&slot_env("0 3 * * *"));
    let slot = TUE + 3 * HOUR;
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run_due_at(dir.path(), slot + MIN));
        let b = s.spawn(|| run_due_at(dir.path(), slot + MIN));
        (a.join().unwrap(), b.join().unwrap())
    });
    let all: Vec<_> = a.iter().chain(b.iter()).collect();
    let ran: Vec<_> = all.iter().filter(|o| o.what == "ran").collect();
    assert_eq!(ran.len(), 1, "{all:#?}");
    assert_eq!(ran[0].status, Some(RunStatus::Succeeded), "{all:#?}");
    // Asked again later: handled.
    assert!(run_due_at(dir.path(), slot + 30 * MIN).is_empty());
    let app = App::new(dir.path(), dir.path().join("j.db"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runs = rt.block_on(failover::app::inspect::runs(&app, 50)).unwrap();
    assert_eq!(
        runs.iter()
            .filter(|(r, _)| r.mode == RunMode::Drill)
            .count(),
        1
    );
    // The next day, the machine was off at 03:00: at 05:00 the slot is missed, and listed so.
    let missed = run_due_at(dir.path(), slot + 26 * HOUR);
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].what, "missed");
    let list = rt
        .block_on(failover::app::drills::list(&app, None, slot + 26 * HOUR))
        .unwrap();
    let outcomes: Vec<&str> = list[0].last.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["missed", "succeeded"]);
    assert_eq!(list[0].next, Some(slot + 48 * HOUR));
}

#[test]
fn a_bad_schedule_is_refused_with_its_place() {
    let dir = sim_config("\n[[drills]]\nname = \"x\"\nrunbook = \"r.toml\"\ncron = \"0 25 * * *\"\ntimezone = \"Mars/Base\"\nblackout_windows = [\"Caturday 10:00-11:00\"]\n");
    let e = failover::env::Environment::load(dir.path(), "drillsim")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("drillsim.toml:8:8") && e.contains("is not a cron expression"),
        "{e}"
    );
    assert!(e.contains("`Mars/Base` is not an IANA time zone"), "{e}");
    assert!(e.contains("is not a weekly window"), "{e}");
}

#[tokio::test]
async fn a_drill_against_moto_fails_over_verifies_and_fails_back() {
    let moto = common::moto::MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    topo::seed(&cfg.env()).await;
    // Each reader's AuroraReplicaLag, as CloudWatch would have it: the report shows the one
    // of the reader promoted (the data at risk), read right before the failover.
    let cw = topo::cloudwatch(&moto.endpoint()).await;
    for (i, db) in ["orders-db", "catalog-db", "sessions-db"]
        .iter()
        .enumerate()
    {
        for (j, z) in ["a", "b", "c"].iter().enumerate() {
            let lag = (10 * (i + 1) + j) as f64;
            cw.put_metric_data()
                .namespace("AWS/RDS")
                .metric_data(
                    aws_sdk_cloudwatch::types::MetricDatum::builder()
                        .metric_name("AuroraReplicaLag")
                        .dimensions(
                            aws_sdk_cloudwatch::types::Dimension::builder()
                                .name("DBInstanceIdentifier")
                                .value(format!("{db}-{z}"))
                                .build(),
                        )
                        .timestamp(aws_smithy_types::DateTime::from(
                            std::time::SystemTime::now() - Duration::from_secs(30),
                        ))
                        .unit(aws_sdk_cloudwatch::types::StandardUnit::Milliseconds)
                        .value(lag)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
    }
    let app = App::new(cfg.path(), cfg.journal());
    // us-west-2c: sessions-db's writer and the records move. (In us-west-2a, legacy-mysql's
    // reboot with failover does not move its primary in moto, and the drill's verify phase
    // says so: the Multi-AZ instance is not at its end state.)
    let r = run_drill(&app, order("local", "us-west-2c")).await;
    assert_eq!(phases(&r), all_ok(), "{r:#?}");
    let j = app.open_journal().unwrap();
    let rep = failover::app::report::build(&j, r.run_id.as_str())
        .await
        .unwrap();
    assert!(
        rep.promotions
            .iter()
            .all(|p| p.ok && p.from_zone == "us-west-2c"),
        "{:?}",
        rep.promotions
    );
    for p in &rep.promotions {
        let i = ["orders-db", "catalog-db", "sessions-db"]
            .iter()
            .position(|c| *c == p.cluster)
            .unwrap();
        let j = ["a", "b", "c"]
            .iter()
            .position(|z| p.target.ends_with(&format!("-{z}")))
            .unwrap();
        assert_eq!(p.replica_lag_ms, Some((10 * (i + 1) + j) as u64), "{p:?}");
        assert_eq!(
            p.replica_lag_note.as_deref(),
            Some("AuroraReplicaLag at promotion")
        );
    }
    assert!(!rep.promotions.is_empty());
    let fb = failover::app::report::build(&j, r.failback_run.as_ref().unwrap().as_str())
        .await
        .unwrap();
    assert!(
        fb.promotions
            .iter()
            .any(|p| p.ok && p.to_zone == "us-west-2c"),
        "{:?}",
        fb.promotions
    );
    assert!(
        fb.steps
            .iter()
            .any(|s| s.action == "dns.restore" && s.calls.ok > 0),
        "{:?}",
        fb.steps
    );
    assert!(!rep.promotions.is_empty());
    assert!(rep.calls.reads.unwrap_or(0) > 0);
}

#[tokio::test]
async fn a_probe_stop_condition_against_moto_aborts_and_fails_back() {
    let moto = common::moto::MotoServer::start();
    let sink = common::sink::Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    topo::seed(&cfg.env()).await;
    // The other zones' API is failing: the drill must not go on.
    let alarm = aws_sdk_cloudwatch::types::StateValue::Alarm;
    topo::zone_alarms(&moto.endpoint(), "us-west-2b", alarm).await;
    let app = App::new(cfg.path(), cfg.journal());
    let mut o = order("local", "us-west-2c");
    o.stop_on = vec!["api-5xx-b".into()];
    let r = run_drill(&app, o).await;
    assert_eq!(r.status, RunStatus::Aborted, "{r:#?}");
    let why = r.stopped_by.clone().unwrap_or_default();
    assert!(why.starts_with("probe `api-5xx-b` failed"), "{why}");
    let got = phases(&r);
    assert_eq!(
        got.last(),
        Some(&("verify-failback".to_string(), "ok".to_string())),
        "{r:#?}"
    );
    let j = app.open_journal().unwrap();
    let rep = failover::app::report::build(&j, r.run_id.as_str())
        .await
        .unwrap();
    assert_eq!(
        rep.drill.as_ref().unwrap().stopped_by.as_deref(),
        Some(why.as_str())
    );
    // Unknown probes are refused before anything is called.
    let mut o = order("local", "us-west-2c");
    o.stop_on = vec!["api-5xx-z".into()];
    let e = drill::prepare_drill(&app, o)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("`api-5xx-z`") && e.contains("its probes are api-5xx-a"),
        "{e}"
    );
}
