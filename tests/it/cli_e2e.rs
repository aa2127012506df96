//! End-to-end: the built `failover` binary, run as an SRE would, from the repository root.
//! Error messages are checked word for word: they are part of the interface.

use crate::common;

use common::moto::MotoServer;
use common::sink::Sink;
use common::topo::{repo, TestConfig};
use failover::status::{RunStatus, StepStatus};
use std::process::{Command, Output, Stdio};

fn failover(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .env_remove("FAILOVER_JOURNAL")
        .env_remove("FAILOVER_CONFIG_DIR")
        .env("HOME", std::env::temp_dir())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run failover")
}

fn text(o: &Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
        o.status.code().unwrap_or(-1),
    )
}

#[test]
fn validate_accepts_the_shipped_runbooks() {
    let (out, err, code) = text(&failover(&["validate", "runbooks/az-evacuation.toml"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ok: 1 runbook(s), 1 drill schedule(s) and 8 health trigger runbook(s) valid against environment(s) local, prod, simulated, staging\n"
    );
}

#[test]
fn every_shipped_runbook_validates_where_it_applies() {
    let mut args = vec!["validate".to_string()];
    for e in std::fs::read_dir(repo().join("runbooks")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            args.push(format!(
                "runbooks/{}",
                p.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    args[1..].sort();
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (out, err, code) = text(&failover(&args));
    assert_eq!(code, 0, "{err}");
    let n = args.len() - 1;
    assert_eq!(
        out,
        format!("ok: {n} runbook(s), 1 drill schedule(s) and 8 health trigger runbook(s) valid against environment(s) local, prod, simulated, staging\n  runbooks/region-evacuation.toml: not checked against local, simulated (it moves writers between regions; these environments span one)\n")
    );
}

#[test]
fn a_region_runbook_against_a_one_region_environment_says_it_does_not_apply() {
    let (out, err, code) = text(&failover(&[
        "plan",
        "runbooks/region-evacuation.toml",
        "--env",
        "local",
        "-p",
        "failed_region=us-west-2",
        "-p",
        "recovery_region=us-east-1",
    ]));
    assert_eq!((out.as_str(), code), ("", 2), "{err}");
    assert_eq!(
        err,
        "runbooks/region-evacuation.toml:60:6: error: step `move-writers` (rds.switchover_global) moves writers between regions, and environment `local` spans one region (us-west-2): runbook `region-evacuation` does not apply to it
  hint: run it against an environment that lists its regions (regions = [\"us-west-2\", \"us-east-1\"]) and has a `global_clusters` group, e.g. --env prod

1 problem(s) found; nothing was changed.
"
    );
    // Asked for that environment by name, validate says the same, and fails.
    let (_, err, code) = text(&failover(&[
        "validate",
        "runbooks/region-evacuation.toml",
        "--env",
        "local",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("does not apply to it"), "{err}");
    // Staging rehearses it: it spans us-west-2 and us-east-1 like prod.
    let (out, err, code) = text(&failover(&[
        "validate",
        "runbooks/region-evacuation.toml",
        "--env",
        "staging",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 1 runbook(s)"), "{out}");
}

#[test]
fn validate_reports_every_problem_with_position_and_hint() {
    let (out, err, code) = text(&failover(&["validate", "tests/fixtures/bad-runbook.toml"]));
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "tests/fixtures/bad-runbook.toml:8:10: error: unknown action `rds.failover_clustr` in step `a`
  hint: did you mean `rds.failover_cluster`? actions: rds.failover_cluster, rds.failover_instance, rds.snapshot, dns.update, http, approval, wait, traffic.shed, traffic.restore, health.assert, arc.zonal_shift, arc.cancel_zonal_shift, rds.switchover_global, rds.failover_global
tests/fixtures/bad-runbook.toml:15:12: error: unknown variable `${faild_az}` in step `b`
  hint: did you mean `${failed_az}`?
tests/fixtures/bad-runbook.toml:17:1: error: unknown key `timout` in step `b`
  hint: did you mean `timeout`?
tests/fixtures/bad-runbook.toml:24:10: error: the steps form a cycle: b -> after -> c -> after -> b
  hint: a step cannot wait, directly or not, for itself; remove one of these `after` entries

4 problem(s) found in 1 of 1 runbook(s), 0 of 1 drill schedule(s) and 0 of 8 health trigger runbook(s) checked against environment(s) local, prod, simulated, staging.
"
    );
}

#[test]
fn validate_reports_toml_syntax_errors() {
    let (_, err, code) = text(&failover(&["validate", "tests/fixtures/bad-syntax.toml"]));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("tests/fixtures/bad-syntax.toml:2:"),
        "{err}"
    );
    assert!(err.contains("error: invalid TOML: unclosed array table, expected `]`\n  hint: see docs/runbook-format.md for the syntax"), "{err}");
}

#[test]
fn unknown_group_is_caught_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("rb.toml");
    std::fs::write(&rb, "name = \"x\"\n[params.failed_az]\ntype = \"zone\"\n\n[[steps]]\nid = \"move\"\naction = \"rds.failover_cluster\"\ngroup = \"auroar\"\nevacuate = \"${failed_az}\"\n").unwrap();
    let (_, err, code) = text(&failover(&[
        "validate",
        "--env",
        "staging",
        rb.to_str().unwrap(),
    ]));
    assert_eq!(code, 2);
    let f = rb.display();
    assert_eq!(
        err,
        format!("{f}:8:9: error: step `move` uses group `auroar`, which environment `staging` does not define\n  hint: did you mean `aurora`? groups of `staging`: aurora, global_records, load_balancers, multi_az, orders_global, storefront\n\n1 problem(s) found in 1 of 1 runbook(s), 0 of 1 drill schedule(s) and 0 of 3 health trigger runbook(s) checked against environment(s) staging.\n")
    );
}

#[test]
fn missing_parameter_unknown_zone_and_unknown_environment() {
    let (_, err, code) = text(&failover(&[
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
    ]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "runbooks/az-evacuation.toml:13:9: error: missing required parameter `failed_az` (the zone(s) to evacuate, comma separated (e.g. us-west-2a or us-west-2a,us-west-2b))
  hint: pass -p failed_az=us-west-2a

1 problem(s) found; nothing was changed.
"
    );
    let (_, err, code) = text(&failover(&[
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
        "-p",
        "failed_az=us-west-2d",
    ]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "runbooks/az-evacuation.toml:13:9: error: parameter `failed_az`: `us-west-2d` is not a zone of environment `staging`
  hint: did you mean `us-west-2a`? zones of environment `staging`: us-west-2a, us-west-2b, us-west-2c

1 problem(s) found; nothing was changed.
"
    );
    let (_, err, code) = text(&failover(&[
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "prd",
        "-p",
        "failed_az=us-west-2a",
    ]));
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "config/prd.toml: error: environment `prd` does not exist
  hint: did you mean `--env prod`? known environments: local, prod, simulated, staging

1 problem(s) found; nothing was changed.
"
    );
    let (_, err, code) = text(&failover(&[
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
        "-p",
        "failed_az=us-west-2a,us-west-2b,us-west-2c",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("error: step `failover-aurora` would evacuate every zone of environment `staging` (us-west-2a, us-west-2b, us-west-2c)\n  hint: at least one zone must stay to fail over to; if every zone looks down, suspect the observer"), "{err}");
}

#[test]
fn bad_command_line_and_unknown_run() {
    let (_, err, code) = text(&failover(&[
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "staging",
        "-p",
        "failed_az",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.contains("`failed_az` is not name=value (example: -p failed_az=us-west-2a)"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j.db");
    let (_, err, code) = text(&failover(&[
        "--journal",
        j.to_str().unwrap(),
        "show",
        "20990101-000000-zzzz",
    ]));
    assert_eq!(code, 5);
    assert_eq!(err, "error: run `20990101-000000-zzzz` is not in the journal\n  hint: `failover runs` lists the runs; pass --journal if the run was recorded elsewhere\n");
    let (out, _, code) = text(&failover(&["--journal", j.to_str().unwrap(), "runs"]));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "No runs in the journal yet. Start one with `failover run RUNBOOK --env ENV`.\n"
    );
}

#[test]
fn seeding_refuses_anything_but_a_local_peer() {
    let (_, err, code) = text(&failover(&["local-peer", "seed", "--env", "prod"]));
    assert_eq!(code, 5);
    assert_eq!(err, "error: refusing to seed environment `prod`: its endpoint_url is not a loopback address (seeding is for a local peer such as moto, never AWS)\n");
}

/// The whole story against moto: seed, plan, run with an approval gate released by a second
/// person (the initiator is refused), list, show, rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_story_against_moto() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    let cd = cfg.path().to_str().unwrap().to_string();
    let jp = cfg.journal().to_str().unwrap().to_string();
    let base = ["--config-dir", cd.as_str(), "--journal", jp.as_str()];
    let args = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let call = |extra: &[&str]| {
        let a = args(extra);
        let v: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        text(&failover(&v))
    };

    let (out, err, code) = call(&["local-peer", "seed", "--env", "local"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 cluster(s), 10 instance(s), 1 hosted zone(s), 5 record set(s), 6 alarm(s)"),
        "{out}"
    );

    let (out, err, code) = call(&[
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "local",
        "-p",
        "failed_az=us-west-2a",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("call: FailoverDBCluster DBClusterIdentifier=orders-db TargetDBInstanceIdentifier=orders-db-b  (writer us-west-2a -> us-west-2b)"), "{out}");
    assert!(out.contains("skip: cluster `catalog-db`: writer `catalog-db-b` is already in us-west-2b, outside the evacuated zone(s): nothing to do"), "{out}");
    assert!(
        out.contains("10 mutating call(s) planned; no precondition fails."),
        "{out}"
    );

    // Start the run with an approval gate, in the background.
    let a = args(&[
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "local",
        "-p",
        "failed_az=us-west-2a",
        "-p",
        "require_approval=true",
        "--by",
        "alice",
    ]);
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is waiting for approval.
    let mut run_id = String::new();
    for _ in 0..200 {
        let (out, _, _) = call(&["runs", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        if let Some(r) = v.as_array().and_then(|a| a.first()) {
            if r["status"] == "waiting_approval" {
                run_id = r["id"].as_str().unwrap().to_string();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !run_id.is_empty(),
        "the run never reached its approval gate"
    );
    let (_, err, code) = call(&["approve", &run_id, "--by", "alice"]);
    assert_eq!(code, 5);
    assert_eq!(err, format!("error: alice started run {run_id} and cannot approve it\n  hint: another person approves with: failover approve {run_id} --by <their name>\n"));
    let (out, err, code) = call(&["approve", &run_id, "--by", "bob"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Approved step `approve` of run {run_id} as bob. The run continues.\n")
    );
    let done = child.wait_with_output().await.unwrap();
    let (out, err, code) = text(&done);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("Run {run_id} succeeded.")), "{out}");
    assert!(out.contains("approve: WAITING FOR APPROVAL: Fail over every database writer out of us-west-2a on local?"), "{out}");

    let (out, _, code) = call(&["runs"]);
    assert_eq!(code, 0);
    assert!(
        out.lines().nth(1).unwrap().starts_with(&format!(
            "{run_id:<22} az-evacuation        local      run      succeeded "
        )),
        "{out}"
    );

    let (out, _, code) = call(&["show", &run_id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("approve                  approval               succeeded"),
        "{out}"
    );
    assert!(out.contains("approved           by=bob"), "{out}");
    assert!(
        out.contains("Every intent has an outcome: no call is in doubt."),
        "{out}"
    );

    let (out, err, code) = call(&["rollback", &run_id, "--by", "carol"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("UPSERT api.shop.example.com. CNAME ttl=60 -> api-a.lb.shop.example.com"),
        "{out}"
    );
    let (out, _, code) = call(&["rollback", &run_id, "--by", "carol"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "record api.shop.example.com. CNAME is already as before the run: nothing to do"
        ),
        "{out}"
    );
}

/// kill -9 in the middle of a run (at an approval gate): the journal stays readable and
/// consistent, says where the run stopped, and no call is left in doubt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_leaves_a_consistent_journal() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    failover::cloud::aws::seed::seed(&cfg.env()).await.unwrap();
    let cd = cfg.path().to_str().unwrap().to_string();
    let jp = cfg.journal().to_str().unwrap().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .args([
            "--config-dir",
            &cd,
            "--journal",
            &jp,
            "run",
            "runbooks/az-evacuation.toml",
            "--env",
            "local",
            "-p",
            "failed_az=us-west-2a",
            "-p",
            "require_approval=true",
            "--by",
            "alice",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
    let mut id = None;
    // At the gate, and no step beside it running (the announcement): a kill while one of
    // their calls is in flight leaves that call in doubt, which is resume's job, not this test's.
    let beside_done = |id: &failover::types::RunId| {
        let steps = j.steps(id).unwrap();
        steps.iter().all(|x| x.status != StepStatus::Running)
    };
    for _ in 0..200 {
        if let Some(r) = j.runs(1).unwrap().first() {
            if r.status == RunStatus::WaitingApproval && beside_done(&r.id) {
                id = Some(r.id.clone());
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let id = id.unwrap_or_else(|| {
        let runs = j.runs(1).unwrap();
        let steps = runs.first().map(|r| j.steps(&r.id).unwrap());
        panic!(
            "the run did not reach its approval gate with its other steps done: {runs:?} {steps:?}"
        )
    });
    // SIGKILL: no destructor, no flush, nothing.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(j.verify_chain().unwrap(), None, "the event chain is intact");
    assert!(
        j.open_intents(&id).unwrap().is_empty(),
        "every call made before the kill has its outcome"
    );
    let steps = j.steps(&id).unwrap();
    let st = |s: &str| steps.iter().find(|x| x.step_id == s).unwrap().status;
    // Snapshots come after the failovers (they would spend the quota the failovers need).
    assert_eq!(st("snapshot"), StepStatus::Pending);
    assert_eq!(st("approve"), StepStatus::WaitingApproval);
    assert_eq!(st("failover-aurora"), StepStatus::Pending);
    let (out, _, code) = text(&failover(&["--journal", &jp, "show", id.as_str()]));
    assert_eq!(code, 0);
    assert!(out.contains("Status: waiting_approval"), "{out}");
    assert!(
        out.contains("failover-aurora          rds.failover_cluster   pending"),
        "{out}"
    );
}

#[test]
fn demo_needs_nothing_and_tells_the_story() {
    let (out, err, code) = text(&failover(&["demo"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("⚡ az-down us-west-2a at 0s for 20m"), "{out}");
    assert!(out.contains("time to mitigate:"), "{out}");
    assert!(
        out.contains("Verdict: SUCCEEDED: the run finished and every invariant held"),
        "{out}"
    );
    assert!(
        out.contains("✔ no writer left in a failed zone: held"),
        "{out}"
    );
    assert!(
        out.contains("✔ every record points at a healthy zone: held"),
        "{out}"
    );
    assert_eq!(err, "", "the demo writes nothing to stderr");
}

#[test]
fn simulate_is_deterministic_per_seed_and_rejects_bad_faults() {
    let args = [
        "simulate",
        "runbooks/az-evacuation.toml",
        "--topology",
        "config/sim/storefront.toml",
        "-p",
        "failed_az=us-west-2a",
        "--fault",
        "az-down us-west-2a at 0s",
        "--fault",
        "route53-down at 20s for 2m",
        "--seed",
        "7",
    ];
    let (a, _, code) = text(&failover(&args));
    assert_eq!(code, 0, "{a}");
    let (b, _, _) = text(&failover(&args));
    assert_eq!(a, b, "same seed, same timeline");
    let (json, _, _) = text(&failover(&[&args[..], &["--output", "json"]].concat()));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "succeeded");

    let (_, err, code) = text(&failover(&[
        "simulate",
        "runbooks/az-evacuation.toml",
        "--topology",
        "config/sim/storefront.toml",
        "-p",
        "failed_az=us-west-2a",
        "--fault",
        "az-dwn us-west-2a at 0s",
    ]));
    assert_eq!(code, 2);
    assert_eq!(err, "--fault: error: fault `az-dwn us-west-2a at 0s`: unknown fault kind `az-dwn`; did you mean `az-down`?\n\nnothing was simulated.\n");
}

#[test]
fn plan_and_run_against_a_simulated_environment() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j.db");
    let jp = j.to_str().unwrap();
    let (out, err, code) = text(&failover(&[
        "--journal",
        jp,
        "plan",
        "runbooks/az-evacuation.toml",
        "--env",
        "simulated",
        "-p",
        "failed_az=us-west-2a",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("call: FailoverDBCluster DBClusterIdentifier=orders-db TargetDBInstanceIdentifier=orders-db-c  (writer us-west-2a -> us-west-2c)"), "{out}");
    let (out, err, code) = text(&failover(&[
        "--journal",
        jp,
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "simulated",
        "-p",
        "failed_az=us-west-2a",
        "--by",
        "alice",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Environment `simulated` is simulated ("),
        "{out}"
    );
    let id = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Run ")
                .and_then(|r| r.strip_suffix(" succeeded."))
        })
        .expect("run id")
        .to_string();
    let (out, _, code) = text(&failover(&["--journal", jp, "show", &id]));
    assert_eq!(code, 0);
    assert!(
        out.contains("failover-aurora          rds.failover_cluster   succeeded"),
        "{out}"
    );
}

/// Detection to action: zone a's two alarms go off in moto; `failover health` sees it, and
/// `failover watch` (policy = approval in config/local.toml) starts the evacuation runbook for
/// that zone, paused at an approval gate, and notifies the chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_watch_start_the_evacuation_for_the_failed_zone() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    let cd = cfg.path().to_str().unwrap().to_string();
    let jp = cfg.journal().to_str().unwrap().to_string();
    let base = [
        "--config-dir".to_string(),
        cd.clone(),
        "--journal".to_string(),
        jp.clone(),
    ];
    let call = |extra: &[&str]| {
        let a: Vec<String> = base
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
        let v: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        text(&failover(&v))
    };
    let (_, err, code) = call(&["local-peer", "seed", "--env", "local"]);
    assert_eq!(code, 0, "{err}");
    let (out, err, code) = call(&["health", "--env", "local"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("us-west-2a"), "{out}");
    // The alarm probes' DescribeAlarms are counted (one a round at least).
    let made = out
        .lines()
        .find_map(|l| l.strip_prefix("The probes made "))
        .unwrap_or_else(|| panic!("no count of the probes' calls: {out}"));
    assert!(made.contains("CloudWatch "), "{made}");
    // Zone a's alarms go off.
    common::topo::zone_alarms(
        &moto.endpoint(),
        "us-west-2a",
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    )
    .await;
    let (out, err, code) = call(&["watch", "--env", "local", "--max-events", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("us-west-2a"), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("started run "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run started: {out}"))
        .to_string();
    // The run process reaches its approval gate.
    let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = j.run(&id) {
            status = Some(r.status);
            if r.status == RunStatus::WaitingApproval {
                assert_eq!(r.initiator, "watch:local");
                assert_eq!(r.params["failed_az"], "us-west-2a");
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, Some(RunStatus::WaitingApproval));
    assert!(
        sink.received()
            .iter()
            .any(|r| r.path == "/chat" && r.body.contains("us-west-2a")),
        "{:?}",
        sink.received()
    );
    // Release it: the evacuation runs.
    let (_, err, code) = call(&["approve", &id, "--by", "bob"]);
    assert_eq!(code, 0, "{err}");
    for _ in 0..150 {
        if j.run(&id).unwrap().status.is_success() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        j.run(&id).unwrap().status.is_success(),
        "{:?}",
        j.run(&id).unwrap()
    );
    // Its report tells how it was detected, with the probes' evidence, as the incident
    // reports of the seeds do, and measures the time to detect from the first failing round.
    let app = failover::app::App::new(cfg.path(), cfg.journal());
    let store = app.open_journal().unwrap();
    let rep = failover::app::report::build(&store, &id).await.unwrap();
    let det = rep.detection.as_ref().expect("a detection section");
    assert_eq!(det.target, "us-west-2a");
    assert!(
        det.evidence.iter().any(|e| e.starts_with("api-5xx-a: ")),
        "{det:?}"
    );
    assert!(det.summary.contains("consecutive bad round(s)"), "{det:?}");
    let onset = det.onset_at.expect("the first failing round");
    // 4 bad rounds of 1 s (config/local.toml): 3 intervals between the first and the fourth.
    let ttd = rep.measures.time_to_detect.ms.expect("measured");
    assert_eq!(ttd, det.detected_at - onset);
    assert!((2_500..=15_000).contains(&ttd), "{ttd}");
    let md = failover::report::run_report::render_markdown(&rep);
    assert!(md.contains("us-west-2a detected: "), "{md}");
    assert!(md.contains("api-5xx-a"), "{md}");
}

/// `health.assert`: a runbook refuses to evacuate a zone its probes say is healthy, and goes
/// on once the zone is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_assert_refuses_to_evacuate_a_healthy_zone() {
    let moto = MotoServer::start();
    let sink = Sink::start().await;
    let cfg = TestConfig::local(&moto.endpoint(), &sink.url());
    failover::cloud::aws::seed::seed(&cfg.env()).await.unwrap();
    let rb = cfg.path().join("guarded.toml");
    std::fs::write(&rb, "name = \"guarded\"\n[params.failed_az]\ntype = \"zone\"\n\n[[steps]]\nid = \"confirm\"\naction = \"health.assert\"\nzone = \"${failed_az}\"\nexpect = \"unhealthy\"\nrounds = 4\n\n[[steps]]\nid = \"move\"\naction = \"rds.failover_cluster\"\ngroup = \"aurora\"\nevacuate = \"${failed_az}\"\nafter = [\"confirm\"]\n").unwrap();
    let args = |j: &str| -> Vec<String> {
        [
            "--config-dir",
            cfg.path().to_str().unwrap(),
            "--journal",
            j,
            "run",
            rb.to_str().unwrap(),
            "--env",
            "local",
            "-p",
            "failed_az=us-west-2a",
            "--by",
            "alice",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let j = cfg.journal();
    let a = args(j.to_str().unwrap());
    let (out, err, code) = text(&failover(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("confirm FAILED"), "{out}");
    assert!(out.contains("move blocked"), "{out}");
    common::topo::zone_alarms(
        &moto.endpoint(),
        "us-west-2a",
        aws_sdk_cloudwatch::types::StateValue::Alarm,
    )
    .await;
    let (out, err, code) = text(&failover(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("confirm succeeded: zone us-west-2a unhealthy"),
        "{out}"
    );
    assert!(out.contains("move succeeded"), "{out}");
    // The assertion's probes are the run's calls too: at least one DescribeAlarms a round
    // (the alarms fit one call), and their RDS reads with the failover's.
    let made = common::call_count_line(&out);
    let cloudwatch: u64 = made
        .split(", CloudWatch ")
        .nth(1)
        .and_then(|r| r.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no CloudWatch calls counted: {made}"));
    assert!(
        cloudwatch >= 4,
        "4 rounds, {cloudwatch} DescribeAlarms: {made}"
    );
    let journal = failover::journal::Journal::open(&j).unwrap();
    let run = journal.runs(1).unwrap().remove(0);
    let counted = journal
        .events(&run.id)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.kind == "calls")
        .expect("the run's calls are journaled");
    assert_eq!(
        counted.data["cloudwatch"]["reads"].as_u64(),
        Some(cloudwatch),
        "{:?}",
        counted.data
    );
}

#[test]
fn verify_finds_an_edited_event() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j.db");
    let jp = j.to_str().unwrap();
    let (_, err, code) = text(&failover(&[
        "--journal",
        jp,
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "simulated",
        "-p",
        "failed_az=us-west-2a",
        "--by",
        "alice",
    ]));
    assert_eq!(code, 0, "{err}");
    let (out, _, code) = text(&failover(&["--journal", jp, "verify"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("The chain is intact; every table matches its events."),
        "{out}"
    );
    // Someone edits history: the target of a failover.
    let conn = rusqlite::Connection::open(&j).unwrap();
    let seq: i64 = conn.query_row("SELECT seq FROM events WHERE operation = 'FailoverDBCluster' AND kind = 'intent' LIMIT 1", [], |r| r.get(0)).unwrap();
    conn.execute(
        "UPDATE events SET data = replace(data, 'orders-db-c', 'orders-db-b') WHERE seq = ?1",
        [seq],
    )
    .unwrap();
    drop(conn);
    let (out, _, code) = text(&failover(&["--journal", jp, "verify"]));
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "TAMPERED: event #{seq}: event #{seq} (intent of run"
        )),
        "{out}"
    );
}

/// A config directory with one simulated environment over the storefront topology.
fn sim_config(faults: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let topo = repo().join("config/sim/storefront.toml");
    let faults: Vec<String> = faults.iter().map(|f| format!("{f:?}")).collect();
    std::fs::write(
        dir.path().join("sim.toml"),
        format!(
            "simulated = {:?}\nseed = 3\nfaults = [{}]\n",
            topo.display().to_string(),
            faults.join(", ")
        ),
    )
    .unwrap();
    dir
}

/// Regression: one cluster's failover call failing outright does not stop the others'.
#[test]
fn regression_a_failed_call_does_not_stop_the_other_clusters() {
    let dir = sim_config(&[
        "az-down us-west-2a at 0s",
        "fail-call FailoverDBCluster times 1 error InvalidParameterValue",
    ]);
    let cd = dir.path().to_str().unwrap();
    let jp = dir.path().join("j.db");
    let (out, _, code) = text(&failover(&[
        "--config-dir",
        cd,
        "--journal",
        jp.to_str().unwrap(),
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "sim",
        "-p",
        "failed_az=us-west-2a",
        "--by",
        "alice",
    ]));
    assert_eq!(code, 1, "{out}");
    let calls: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("failover-aurora: call FailoverDBCluster"))
        .collect();
    assert_eq!(
        calls.len(),
        2,
        "both clusters in us-west-2a get their call although the first one fails: {out}"
    );
    // The cluster whose call went through moved (which of the two got the injected error
    // depends on the order the calls reach the simulator).
    let done: Vec<&str> = ["orders-db", "sessions-db"]
        .into_iter()
        .filter(|c| {
            // `done` only once the writer is outside the evacuated zone.
            out.contains(&format!(
                "failover-aurora: done: cluster `{c}`: status available"
            ))
        })
        .collect();
    assert_eq!(done.len(), 1, "{out}");
}

/// Regression: a DNS change whose answer was an error but which was applied is rolled back
/// (it is not "nothing to roll back").
#[test]
fn regression_rollback_keeps_changes_that_may_have_happened() {
    let dir = sim_config(&[
        "az-down us-west-2a at 0s",
        "fail-call ChangeResourceRecordSets times 1 applied",
    ]);
    let cd = dir.path().to_str().unwrap();
    let jp = dir.path().join("j.db");
    let jp = jp.to_str().unwrap();
    let (out, _, code) = text(&failover(&[
        "--config-dir",
        cd,
        "--journal",
        jp,
        "run",
        "runbooks/az-evacuation.toml",
        "--env",
        "sim",
        "-p",
        "failed_az=us-west-2a",
        "--by",
        "alice",
    ]));
    assert_eq!(code, 0, "{out}");
    let id = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Run ")
                .and_then(|r| r.strip_suffix(" succeeded."))
        })
        .expect("run id")
        .to_string();
    let (out, err, code) = text(&failover(&[
        "--config-dir",
        cd,
        "--journal",
        jp,
        "rollback",
        &id,
        "--dry-run",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("restore-dns-1 (dns.restore)"), "{out}");
}

/// Regressions: durations that overflowed once (a `wait` that passed `validate` then panicked
/// in `plan`; a `poll_interval` that panicked a live run after its first call; a huge
/// `traffic.restore` timeout that spun the CPU) are refused before anything runs.
#[test]
fn regression_absurd_durations_are_refused_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("huge.toml");
    std::fs::write(
        &rb,
        "name = \"huge\"\n[[steps]]\nid = \"w\"\naction = \"wait\"\nduration = \"18446744073709551600s\"\n[[steps]]\nid = \"r\"\naction = \"traffic.restore\"\ntimeout = \"3074457345618258604s\"\n",
    )
    .unwrap();
    for cmd in ["validate", "plan", "run"] {
        let mut args = vec![cmd, rb.to_str().unwrap(), "--env", "simulated"];
        if cmd == "run" {
            args.extend(["--journal", "/dev/null/never"]);
        }
        let (out, err, code) = text(&failover(&args));
        assert_eq!(code, 2, "`{cmd}`: {out}{err}");
        assert!(
            err.contains("huge.toml:5:12: error: `duration` in step `w`: `18446744073709551600s` is longer than 7d, the longest duration accepted"),
            "`{cmd}`: {err}"
        );
        assert!(
            err.contains("huge.toml:9:11:"),
            "`{cmd}` names the timeout too: {err}"
        );
    }
    let cfg = dir.path().join("config");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(
        cfg.join("poll.toml"),
        "region = \"us-west-2\"\nzones = [\"us-west-2a\", \"us-west-2b\"]\n[settings]\npoll_interval = \"3074457345618258604s\"\n",
    )
    .unwrap();
    let (_, err, code) = text(&failover(&[
        "--config-dir",
        cfg.to_str().unwrap(),
        "validate",
        "runbooks/az-evacuation.toml",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("poll.toml:4:17: error: `poll_interval` in [settings]"),
        "{err}"
    );
}

/// Regression: `approve --by ""` approved as `$USER` (or `unknown`), one more person towards
/// the gate, instead of being refused as an empty name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_approve_by_an_empty_name_is_refused() {
    let sink = Sink::start().await;
    // The runbook makes no AWS call: nothing listens at the AWS endpoint.
    let cfg = TestConfig::local("http://127.0.0.1:9", &sink.url());
    let cd = cfg.path().to_str().unwrap().to_string();
    let jp = cfg.journal().to_str().unwrap().to_string();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(repo())
        .args(["--config-dir", &cd, "--journal", &jp, "run"])
        .args(["tests/fixtures/two-approvals.toml", "--env", "local"])
        .args(["--by", "alice"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut id = None;
    for _ in 0..200 {
        if cfg.journal().exists() {
            let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
            if let Some(r) = j.runs(1).unwrap().first() {
                if r.status == RunStatus::WaitingApproval {
                    id = Some(r.id.clone());
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = id.expect("the run reached its approval gate");
    for by in ["", "  "] {
        let (_, err, code) = text(&failover(&[
            "--journal",
            &jp,
            "approve",
            id.as_str(),
            "--by",
            by,
        ]));
        assert_eq!(code, 2, "--by {by:?}: {err}");
        assert_eq!(
            err,
            "error: an approval needs a name: --by NAME (or $FAILOVER_USER)\n"
        );
    }
    let (out, err, code) = text(&failover(&[
        "--journal",
        &jp,
        "approve",
        id.as_str(),
        "--by",
        "bob",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" as bob (1 of 2 approvals)"), "{out}");
    let j = failover::journal::Journal::open(&cfg.journal()).unwrap();
    assert_eq!(j.approvals(&id, "approve").unwrap(), ["bob"]);
    assert!(run.try_wait().unwrap().is_none(), "the gate still waits");
    run.kill().unwrap();
    run.wait().unwrap();
}

/// Regression (found by tests/it/concurrency.rs: `approve` refused live runs as stale): a run
/// in a simulated environment was stamped (started, last heartbeat) on the simulator's virtual
/// clock, while the journal and whoever reads it use the wall clock, so until its first renewal
/// a live run looked as if its heartbeat had stopped long ago: `approve` refused it, `runs`
/// showed it stale, `resume` would have taken it over. It is stamped on the journal's clock now.
#[test]
fn regression_a_run_in_a_simulated_environment_is_stamped_on_the_journals_clock() {
    let dir = sim_config(&[]);
    let jp = dir.path().join("j.db");
    let (out, err, code) = text(&failover(&[
        "--config-dir",
        dir.path().to_str().unwrap(),
        "--journal",
        jp.to_str().unwrap(),
        "run",
        "tests/fixtures/notify-and-wait.toml",
        "--env",
        "sim",
        "--by",
        "alice",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let c = rusqlite::Connection::open(&jp).unwrap();
    let (started, first_event): (i64, i64) = c
        .query_row(
            "SELECT started_at, (SELECT at FROM events WHERE kind = 'run_started') FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        (started - first_event).abs() < 60_000,
        "the run was stamped {started} and its first event {first_event}: two clocks"
    );
}

/// `failover validate runbooks/az-evacuation.toml` against the environments of `config_dir`.
fn validate_in(config_dir: &std::path::Path) -> (String, String, i32) {
    text(&failover(&[
        "--config-dir",
        config_dir.to_str().unwrap(),
        "validate",
        "runbooks/az-evacuation.toml",
    ]))
}

#[test]
fn validate_binds_every_drill_schedule() {
    // A drill that would only fail at its slot (03:00 next Tuesday) is found by `validate`
    // now, at the entry in the environment file, with the runbook's own message.
    let dir = tempfile::tempdir().unwrap();
    let staging = std::fs::read_to_string(repo().join("config/staging.toml")).unwrap();
    let head = &staging[..staging.find("[[drills]]").unwrap()];
    let drills = r#"[[drills]]
name = "no-zone"
runbook = "runbooks/az-evacuation.toml"
cron = "0 3 * * TUE"

[[drills]]
name = "bad-zone"
runbook = "runbooks/az-evacuation.toml"
params = { failed_az = "us-west-2z" }
cron = "0 3 * * TUE"

[[drills]]
name = "gone"
runbook = "runbooks/az-evacuaton.toml"
cron = "0 3 * * TUE"

[[drills]]
name = "fine"
runbook = "runbooks/az-evacuation.toml"
params = { failed_az = "us-west-2b" }
cron = "0 3 * * TUE"
"#;
    let lines = head.lines().count();
    std::fs::write(dir.path().join("staging.toml"), format!("{head}{drills}")).unwrap();
    let f = dir.path().join("staging.toml");
    let f = f.display();
    let (out, err, code) = validate_in(dir.path());
    assert_eq!(code, 2, "{out}{err}");
    let (l1, l2, l3) = (lines + 3, lines + 8, lines + 14);
    assert!(err.contains(&format!("{f}:{l1}:11: error: drill `no-zone` (runbooks/az-evacuation.toml:13:9): missing required parameter `failed_az`")), "{err}");
    assert!(err.contains("(in this entry's `params`)"), "{err}");
    assert!(
        err.contains(", 3 of 4 drill schedule(s) and 0 of 3 health trigger runbook(s) checked"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{f}:{l2}:11: error: drill `bad-zone` (runbooks/az-evacuation.toml:"
        )),
        "{err}"
    );
    assert!(err.contains("`us-west-2z`"), "{err}");
    assert!(err.contains(&format!("{f}:{l3}:11: error: drill `gone`: runbook `runbooks/az-evacuaton.toml`: cannot read file")), "{err}");
    assert!(!err.contains("drill `fine`"), "{err}");
}

/// The runbooks `watch` and `serve` would start are checked by `validate` too: a misspelt
/// path in `[health.region_trigger]` and a `zone_param` the runbook has no parameter for were
/// "ok" before (only the watcher, at its start, said so), and readiness was the first to show
/// them in a service.
#[test]
fn validate_checks_the_runbooks_of_the_health_triggers() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["staging.toml", "local.toml"] {
        let text = std::fs::read_to_string(repo().join("config").join(f)).unwrap();
        let text = text
            .replacen(
                "runbook = \"runbooks/region-evacuation.toml\"",
                "runbook = \"runbooks/region-evacuaton.toml\"",
                1,
            )
            .replacen(
                "zone_param = \"failed_az\"\nreason_param",
                "zone_param = \"failed_zone\"\nreason_param",
                1,
            );
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    let line_of = |f: &str, needle: &str| {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} in {f}"));
        text[..at].lines().count() + 1
    };
    let (out, err, code) = validate_in(dir.path());
    assert_eq!(code, 2, "{out}{err}");
    let staging = dir.path().join("staging.toml");
    let l = line_of(
        "staging.toml",
        "runbook = \"runbooks/region-evacuaton.toml\"",
    );
    assert!(
        err.contains(&format!(
            "{}:{l}:11: error: [health.region_trigger]: runbook `runbooks/region-evacuaton.toml`: cannot read file",
            staging.display()
        )),
        "{err}"
    );
    let local = dir.path().join("local.toml");
    let l = line_of("local.toml", "[health.trigger]") + 1;
    assert!(
        err.contains(&format!(
            "{}:{l}:11: error: [health.trigger]: runbook `az-evacuation` (runbooks/az-evacuation.toml) has no parameter `failed_zone`",
            local.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "and 2 of 4 health trigger runbook(s) checked against environment(s) local, staging."
        ),
        "{err}"
    );
    // The shipped environments' triggers all bind.
    let (out, err, code) = text(&failover(&["validate", "runbooks/az-evacuation.toml"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("and 8 health trigger runbook(s) valid"),
        "{out}"
    );
}

#[test]
fn lint_names_each_step_that_needs_the_failed_regions_control_plane() {
    let (out, err, code) = text(&failover(&[
        "lint",
        "runbooks/az-evacuation.toml",
        "--env",
        "prod",
        "-p",
        "failed_az=us-west-2a",
    ]));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("runbooks/az-evacuation.toml:"), "{out}");
    assert!(out.contains(": warning: step `failover-aurora` calls FailoverDBCluster on the RDS endpoint of us-west-2, the failed region"), "{out}");
    assert!(
        out.contains("  instead: fail over to another region"),
        "{out}"
    );
    assert!(out.contains("warning(s): runbook `az-evacuation` on `prod` if us-west-2 fails (the environment's own region"), "{out}");
    let (out, _, code) = text(&failover(&[
        "lint",
        "runbooks/az-evacuation.toml",
        "--env",
        "prod",
        "-p",
        "failed_az=us-west-2a",
        "--failed-region",
        "us-east-1",
        "--output",
        "json",
    ]));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failed_region"], "us-east-1");
    let steps: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["repoint-dns"]);
    // Bad input: nothing judged, exit 2 with a hint.
    let (_, err, code) = text(&failover(&[
        "lint",
        "runbooks/az-evacuation.toml",
        "--env",
        "prod",
        "-p",
        "failed_az=us-west-2a",
        "--failed-region",
        "oregon",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("`oregon` is not an AWS region name"), "{err}");
}
