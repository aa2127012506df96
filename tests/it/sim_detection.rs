//! Health detection in the simulator: the `[health]` probes of config/sim/storefront.toml
//! answered by the simulated world, the live detector (rounds on the interval grid, quorum,
//! hysteresis, the observer rule) and the live trigger policy on virtual time. A zone that goes
//! down is detected on the grid the configuration implies; a flapping zone, a partial failure
//! under the quorum and an impaired prober start nothing.

use failover::app::sim_watch::{simulate_watch, WatchPlan};
use failover::app::simulate::SimReport;
use failover::cloud::sim::{environment_for, Fault, Topology};
use failover::runbook::Runbook;
use std::path::PathBuf;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn storefront() -> Topology {
    Topology::load(&root().join("config/sim/storefront.toml")).expect("storefront is valid")
}

fn evacuation() -> Runbook {
    Runbook::load(&root().join("runbooks/az-evacuation.toml")).expect("the runbook is valid")
}

/// Watch the storefront for `minutes` of virtual time with `faults`.
fn watch(faults: &[&str], minutes: u64) -> SimReport {
    let t = storefront();
    let env = environment_for(&t);
    let rb = evacuation();
    let faults: Vec<Fault> = faults.iter().map(|f| f.parse().unwrap()).collect();
    let plan = WatchPlan {
        evacuation: &rb,
        params: vec![],
        failback: None,
        watch_for: Duration::from_secs(60 * minutes),
    };
    simulate_watch(&plan, &env, &t, &faults, 7).unwrap().0
}

fn unhealthy(r: &SimReport) -> Vec<&failover::app::sim_watch::Detection> {
    r.detections
        .iter()
        .filter(|d| d.became == "unhealthy")
        .collect()
}

#[test]
fn a_zone_down_is_detected_on_the_grid_of_its_probes_and_the_policy_evacuates_it() {
    // Rounds start every 10 s from 0 s. The zone goes down at 35 s: the rounds of 40, 50 and
    // 60 s are bad (3 of 4 probes time out, quorum 2), each taking 2 attempts of a 2 s timeout.
    let r = watch(&["az-down us-west-2a at 35s"], 10);
    let cfg = environment_for(&storefront()).health.unwrap();
    let d = unhealthy(&r);
    assert_eq!(d.len(), 1, "{:#?}", r.detections);
    let d = d[0];
    assert_eq!(d.target, "us-west-2a");
    let expected = 40_000
        + (cfg.unhealthy_after as u64 - 1) * cfg.interval.as_millis() as u64
        + cfg.worst_round().as_millis() as u64;
    assert_eq!(d.at_ms, expected, "{d:#?}");
    assert_eq!(d.at_ms, 64_000);
    // Never later than the bound the configuration promises from the loss.
    let bound = cfg.interval * cfg.unhealthy_after + cfg.worst_round();
    assert!(Duration::from_millis(d.at_ms - 35_000) <= bound);
    // The reasons are the probes' own: dead endpoints time out, they do not fail at once.
    assert!(
        d.failing
            .iter()
            .any(|f| f == "api-a: no answer within 2000ms (2 attempts)"),
        "{:?}",
        d.failing
    );
    assert!(
        d.failing
            .iter()
            .any(|f| f.starts_with("app-a: no connection within 2000ms")),
        "{:?}",
        d.failing
    );
    assert!(!d.observer_suspect);
    // The policy (auto) started the evacuation at once, and it moved everything out.
    assert_eq!(d.started.as_ref().map(|r| r.as_str()), Some("sim-7"));
    assert_eq!(r.runs.len(), 1);
    assert_eq!(r.runs[0].started_ms, Some(64_000));
    assert!(r.runs[0].succeeded, "{:#?}", r.reasons);
    assert!(r
        .final_state
        .clusters
        .iter()
        .all(|c| c.zone.as_str() != "us-west-2a"));
    assert!(r.succeeded(), "{:#?}", r.reasons);
}

#[test]
fn a_flapping_zone_never_makes_three_bad_rounds_in_a_row_and_nothing_starts() {
    // Down 10 s, up 10 s: rounds alternate bad and good.
    let r = watch(&["az-flap us-west-2a period 20s at 0s"], 15);
    assert!(unhealthy(&r).is_empty(), "{:#?}", r.detections);
    assert!(r.runs.is_empty());
    // Flapping slowly enough (down a minute at a time) is an outage, and is detected, again
    // at every minute down; the cooldown starts one evacuation only.
    let r = watch(&["az-flap us-west-2a period 2m at 0s"], 5);
    let d = unhealthy(&r);
    assert!(d.len() >= 2, "{:#?}", r.detections);
    assert_eq!(r.runs.len(), 1);
    assert!(d[1].decision.contains("cooldown"), "{:?}", d[1].decision);
}

#[test]
fn an_impaired_prober_sees_every_zone_down_and_the_observer_rule_starts_nothing() {
    let r = watch(&["observer-down at 30s for 5m"], 10);
    let d = unhealthy(&r);
    assert_eq!(d.len(), 3, "every zone looks down: {:#?}", r.detections);
    assert!(d.iter().all(|d| d.observer_suspect), "{d:#?}");
    assert!(
        d.iter().all(|d| d
            .decision
            .contains("the observer's own network is more likely at fault")),
        "{d:#?}"
    );
    assert!(r.runs.is_empty(), "no evacuation on an impaired observer");
    // Once the prober's network is back, the zones are healthy again.
    assert_eq!(
        r.detections
            .iter()
            .filter(|d| d.became == "healthy")
            .count(),
        3
    );
}

#[test]
fn a_partial_failure_under_the_quorum_is_not_a_zone_failure_but_at_the_quorum_it_is() {
    let r = watch(&["probes-fail us-west-2b count 1 at 0s"], 5);
    assert!(unhealthy(&r).is_empty(), "{:#?}", r.detections);
    assert!(r.runs.is_empty());

    let r = watch(&["probes-fail us-west-2b count 2 at 0s"], 5);
    let d = unhealthy(&r);
    assert_eq!(d.len(), 1, "{:#?}", r.detections);
    assert_eq!(d[0].target, "us-west-2b");
    assert_eq!(d[0].failing.len(), 2, "{:?}", d[0].failing);
}

#[test]
fn a_cloudwatch_alarm_follows_its_evaluation_periods() {
    // The ALB alarm of a dead zone goes to ALARM after 3 one-minute periods: it is not among
    // the failing probes at detection (24 s), but the zone stays unhealthy with it.
    let r = watch(&["az-down us-west-2a at 0s"], 5);
    let d = unhealthy(&r);
    assert_eq!(d[0].at_ms, 24_000);
    assert!(
        !d[0].failing.iter().any(|f| f.starts_with("alb-5xx-a")),
        "{:?}",
        d[0].failing
    );
}
