//! ARC zonal shift in the simulator: the stock AZ evacuation with `-p zonal_shift=true` shifts
//! the storefront's load balancers away from the failed zone, the failback cancels the shifts,
//! a start whose answer was lost is found again instead of being sent twice, an expired shift
//! is nothing to cancel, and the dry run lists the exact calls.

use failover::app::simulate::{simulate_runs, SimReport, SimRun};
use failover::cloud::sim::{environment_for, ApiCall, Event, Fault, Topology};
use failover::diag::SourceFile;
use failover::runbook::Runbook;
use failover::status::StepStatus;
use std::path::PathBuf;
use std::time::Duration;

const STOREFRONT_LB: &str =
    "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/storefront/50dc6c495c0c9188";
const CHECKOUT_LB: &str =
    "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/net/checkout/73e2d6bc24d8a067";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn storefront() -> Topology {
    Topology::load(&root().join("config/sim/storefront.toml")).expect("storefront topology")
}

fn runbook(name: &str) -> Runbook {
    Runbook::load(&root().join("runbooks").join(name)).expect("stock runbook")
}

fn faults(lines: &[&str]) -> Vec<Fault> {
    lines.iter().map(|l| l.parse().unwrap()).collect()
}

fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn simulate(runs: &[SimRun<'_>], fault_lines: &[&str]) -> SimReport {
    let t = storefront();
    simulate_runs(runs, &environment_for(&t), &t, &faults(fault_lines), 7)
        .unwrap_or_else(|e| panic!("simulation did not start: {e}"))
}

/// The ARC calls of the timeline: (operation, resource, ok).
fn arc_calls(r: &SimReport) -> Vec<(String, String, bool)> {
    r.timeline
        .iter()
        .filter_map(|e| match &e.event {
            Event::Api(ApiCall {
                operation,
                resource,
                ok,
                ..
            }) if operation.contains("ZonalShift") && !operation.starts_with("List") => {
                Some((operation.clone(), resource.clone(), *ok))
            }
            _ => None,
        })
        .collect()
}

fn notes(r: &SimReport, needle: &str) -> usize {
    r.timeline
        .iter()
        .filter(|e| matches!(&e.event, Event::World { text } if text.contains(needle)))
        .count()
}

fn step(r: &SimReport, id: &str) -> Option<StepStatus> {
    r.steps.iter().find(|s| s.id == id).and_then(|s| s.status)
}

#[test]
fn an_evacuation_shifts_the_load_balancers_and_the_failback_cancels_the_shifts() {
    let (evac, back) = (runbook("az-evacuation.toml"), runbook("az-failback.toml"));
    let runs = [
        SimRun::new(
            &evac,
            &[p("failed_az", "us-west-2a"), p("zonal_shift", "true")],
        ),
        SimRun::new(&back, &[p("zone", "us-west-2a"), p("zonal_shift", "true")])
            .at(Duration::from_secs(3600)),
    ];
    let r = simulate(&runs, &["az-down us-west-2a at 0s for 30m"]);
    assert!(r.succeeded(), "{:?}", r.reasons);
    let calls = arc_calls(&r);
    let mut starts: Vec<&str> = calls
        .iter()
        .filter(|c| c.0 == "StartZonalShift" && c.2)
        .map(|c| c.1.as_str())
        .collect();
    starts.sort();
    assert_eq!(starts, vec![STOREFRONT_LB, CHECKOUT_LB]);
    let cancels = calls
        .iter()
        .filter(|c| c.0 == "CancelZonalShift" && c.2)
        .count();
    assert_eq!(cancels, 2, "{calls:?}");
    assert_eq!(
        notes(&r, "sends no new traffic to us-west-2a (usw2-az1)"),
        2
    );
    assert_eq!(step(&r, "zonal-shift"), Some(StepStatus::Succeeded));
    assert_eq!(step(&r, "cancel-zonal-shift"), Some(StepStatus::Succeeded));
}

#[test]
fn the_zonal_shift_step_is_off_by_default() {
    let evac = runbook("az-evacuation.toml");
    let r = simulate(
        &[SimRun::new(&evac, &[p("failed_az", "us-west-2a")])],
        &["az-down us-west-2a at 0s"],
    );
    assert!(r.succeeded(), "{:?}", r.reasons);
    assert!(arc_calls(&r).is_empty());
    assert!(!r
        .api_calls
        .keys()
        .any(|k| k.contains("ZonalShift") || k.contains("Managed")));
}

/// The answer to StartZonalShift is lost after ARC started the shift: the step's next
/// attempt observes the shift (its comment names the run) and does not start another.
#[test]
fn a_start_whose_answer_was_lost_is_found_again_not_sent_twice() {
    let evac = runbook("az-evacuation.toml");
    let r = simulate(
        &[SimRun::new(
            &evac,
            &[p("failed_az", "us-west-2a"), p("zonal_shift", "true")],
        )],
        &[
            "az-down us-west-2a at 0s",
            &format!("fail-call StartZonalShift resource {STOREFRONT_LB} times 1 applied"),
        ],
    );
    assert!(r.succeeded(), "{:?}", r.reasons);
    let mut starts: Vec<(String, bool)> = arc_calls(&r)
        .into_iter()
        .filter(|c| c.0 == "StartZonalShift")
        .map(|c| (c.1, c.2))
        .collect();
    starts.sort();
    assert_eq!(
        starts,
        vec![
            (STOREFRONT_LB.to_string(), false),
            (CHECKOUT_LB.to_string(), true)
        ],
        "one start per load balancer, the lost one not repeated"
    );
    assert_eq!(notes(&r, "sends no new traffic"), 2);
    assert_eq!(step(&r, "zonal-shift"), Some(StepStatus::Succeeded));
}

/// A shift that expired before the cancel is nothing to cancel, not a failure.
#[test]
fn an_expired_shift_is_not_canceled_and_the_cancel_succeeds() {
    let short = Runbook::parse(SourceFile::new(
        "short-shift.toml",
        r#"
name = "short-shift"
[params.zone]
type = "zone"
required = true
[[steps]]
id = "shift"
action = "arc.zonal_shift"
group = "load_balancers"
away_from = "${zone}"
expires_in = "5m"
"#,
    ))
    .unwrap();
    let cancel = Runbook::parse(SourceFile::new(
        "cancel.toml",
        r#"
name = "cancel"
[params.zone]
type = "zone"
required = true
[[steps]]
id = "cancel"
action = "arc.cancel_zonal_shift"
group = "load_balancers"
away_from = "${zone}"
"#,
    ))
    .unwrap();
    let r = simulate(
        &[
            SimRun::new(&short, &[p("zone", "us-west-2b")]),
            SimRun::new(&cancel, &[p("zone", "us-west-2b")]).at(Duration::from_secs(600)),
        ],
        &[],
    );
    assert_eq!(
        step(&r, "cancel"),
        Some(StepStatus::Succeeded),
        "{:?}",
        r.reasons
    );
    let calls = arc_calls(&r);
    assert_eq!(calls.iter().filter(|c| c.0 == "StartZonalShift").count(), 2);
    assert!(
        !calls.iter().any(|c| c.0 == "CancelZonalShift"),
        "an expired shift is not canceled: {calls:?}"
    );
}

/// The plan (a dry run) lists the exact calls, with the zone's id and the expiry.
#[test]
fn the_dry_run_lists_the_exact_zonal_shift_calls() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(root())
        .args([
            "plan",
            "runbooks/az-evacuation.toml",
            "--env",
            "simulated",
            "-p",
            "failed_az=us-west-2a",
            "-p",
            "zonal_shift=true",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for lb in [STOREFRONT_LB, CHECKOUT_LB] {
        let want = format!(
            "StartZonalShift ResourceIdentifier={lb} AwayFrom=usw2-az1 ExpiresIn=1d Comment=\"failover run "
        );
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
}

/// ARC's bounds are checked at validation, with the place and a hint: `expires_in` 1 minute
/// to 3 days, a comment of at most 128 characters.
#[test]
fn an_expiry_or_comment_arc_refuses_fails_validation_with_its_place() {
    let text = format!(
        r#"name = "bad"
[[steps]]
id = "shift"
action = "arc.zonal_shift"
group = "load_balancers"
away_from = "us-west-2a"
expires_in = "4d"
comment = "{}"
"#,
        "x".repeat(129)
    );
    let err = Runbook::parse(SourceFile::new("bad.toml", &text))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.toml:7:14: error: `expires_in` in step `shift` is 4days: ARC allows 1 minute to 3 days"),
        "{err}"
    );
    assert!(err.contains("hint: e.g. `expires_in = \"2h\"`"), "{err}");
    assert!(
        err.contains("bad.toml:8:11: error: `comment` in step `shift` is 129 characters long: ARC takes at most 128"),
        "{err}"
    );
    let text = "name = \"bad\"\n[[steps]]\nid = \"shift\"\naction = \"arc.zonal_shift\"\ngroup = \"load_balancers\"\nexpires_in = \"30s\"\n";
    let err = Runbook::parse(SourceFile::new("bad.toml", text))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not say which zone traffic moves away from"),
        "{err}"
    );
    assert!(
        err.contains("is 30s: ARC allows 1 minute to 3 days"),
        "{err}"
    );
}

/// `failover rollback` of a run that started zonal shifts plans a `cancel-zonal-shifts` step
/// for its resources. (Each process of the `simulated` environment starts a fresh world, so
/// the rollback finds the shifts gone, as it finds the records as they were: the cancel itself
/// is tested on one world by `app::rollback`'s unit test and the failback above.)
#[test]
fn a_rollback_plans_the_cancel_of_the_shifts_a_run_started() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.db");
    let failover = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
            .current_dir(root())
            .arg("--journal")
            .arg(&journal)
            .args(args)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{args:?}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    failover(&[
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "simulated",
        "-p",
        "failed_az=us-west-2a",
        "-p",
        "zonal_shift=true",
        "--by",
        "alice",
    ]);
    let runs: serde_json::Value =
        serde_json::from_str(&failover(&["runs", "--output", "json"])).unwrap();
    let list = runs.as_array().or_else(|| runs["runs"].as_array()).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    let plan = failover(&["rollback", &id, "--dry-run", "--by", "bob"]);
    assert!(
        plan.contains("cancel-zonal-shifts (arc.cancel_zonal_shift)"),
        "{plan}"
    );
    for lb in [STOREFRONT_LB, CHECKOUT_LB] {
        assert!(plan.contains(lb), "{plan}");
    }
}

/// A `zonal_shift_resources` group: every zone needs its zone id (ARC speaks ids), every
/// resource is a load balancer or Auto Scaling group ARN; problems name their place.
#[test]
fn a_zonal_shift_group_needs_arns_and_every_zone_id() {
    let text = r#"region = "us-west-2"
zones = ["us-west-2a", "us-west-2b"]
[groups.load_balancers]
kind = "zonal_shift_resources"
resources = ["arn:aws:s3:::bucket", "arn:aws:autoscaling:us-west-2:1:autoScalingGroup:u:autoScalingGroupName/web"]
zone_ids = { "us-west-2a" = "usw2-az2", "us-west-2z" = "usw2-az9" }
[aws]
account_id = "12345"
"#;
    let err = failover::env::Environment::parse(SourceFile::new("e.toml", text), "e")
        .unwrap_err()
        .to_string();
    for want in [
        "e.toml:5:14: error: group `load_balancers`: `arn:aws:s3:::bucket` is not the ARN of a load balancer or an Auto Scaling group",
        "group `load_balancers` gives no Availability Zone id for us-west-2b",
        "aws ec2 describe-availability-zones",
        "`us-west-2z` in `zone_ids` is not a zone of this environment",
        "e.toml:8:14: error: account_id `12345` is not a 12-digit AWS account id",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    // The simulator's zone ids are spelled as AWS spells them.
    let zones: Vec<failover::types::Zone> = ["eu-west-1a", "eu-west-1b"].map(Into::into).to_vec();
    assert_eq!(
        failover::cloud::sim::topology::sim_zone_id("eu-west-1", &zones, &zones[1]).as_deref(),
        Some("euw1-az2")
    );
}
