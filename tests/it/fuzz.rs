//! Fuzzing on the stable toolchain: the example runbooks, environments, topologies, fault lines
//! and parameters, mutated by a seeded mutator (absurd numbers and durations, deleted,
//! duplicated and swapped lines, truncation, stray bytes), each driven through parsing,
//! binding, planning and a short simulation in-process. No input may panic or hang; bad
//! input is refused with diagnostics. A sample also runs through the binary, whose exit code
//! must be one the docs list.
//!
//! `FUZZ_CASES=N` sets the number of cases per target (default 60: seconds in the test
//! command); `scripts/fuzz` runs a long campaign. A failing case prints its seed and target.

use crate::common::topo::repo;
use failover::app::simulate::simulate;
use failover::cloud::sim::{environment_for, parse_faults, Topology};
use failover::diag::SourceFile;
use failover::env::Environment;
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use failover::status::RunMode;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn cases() -> u64 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo().join(p)).unwrap()
}

/// Values that have broken parsers and arithmetic before.
const NASTY: &[&str] = &[
    "\"18446744073709551600s\"",
    "\"3074457345618258604s\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1ms\"",
    "\"7d\"",
    "\"8d\"",
    "\"\"",
    "\"${\"",
    "\"$${secret:X}\"",
    "\"${secret:}\"",
    "\"${unknown}\"",
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1e308",
    "nan",
    "true",
    "[]",
    "{}",
    "[[]]",
    "\"us-west-2z\"",
    "\"\\u0000\"",
    "\"ümlaut\"",
];

/// Values for a key whose value is a duration or a number: the extremes.
const NASTY_NUMBERS: &[&str] = &[
    "\"18446744073709551600s\"",
    "\"3074457345618258604s\"",
    "\"8d\"",
    "\"0s\"",
    "\"1ns\"",
    "9223372036854775807",
    "-1",
    "0",
];

/// One seeded mutation of a TOML text.
fn mutate(text: &str, rng: &mut fastrand::Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for _ in 0..rng.usize(1..=3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.usize(..lines.len());
        let valued: Vec<usize> = (0..lines.len())
            .filter(|&j| lines[j].contains('=') && !lines[j].trim_start().starts_with('#'))
            .collect();
        match rng.u8(0..10) {
            // An extreme number or duration where there is one.
            0..=3 if !valued.is_empty() => {
                let numeric: Vec<usize> = valued
                    .iter()
                    .copied()
                    .filter(|&j| {
                        lines[j].split('=').nth(1).is_some_and(|v| {
                            v.trim()
                                .trim_matches('"')
                                .starts_with(|c: char| c.is_ascii_digit())
                        })
                    })
                    .collect();
                let pool = if numeric.is_empty() {
                    &valued
                } else {
                    &numeric
                };
                let j = pool[rng.usize(..pool.len())];
                let eq = lines[j].find('=').unwrap_or(0);
                let v = NASTY_NUMBERS[rng.usize(..NASTY_NUMBERS.len())];
                lines[j] = format!("{} {v}", &lines[j][..=eq]);
            }
            // Replace a value with a nasty one.
            0..=5 => {
                if let Some(eq) = lines[i].find('=') {
                    let v = NASTY[rng.usize(..NASTY.len())];
                    lines[i] = format!("{} {v}", &lines[i][..=eq]);
                }
            }
            6 => {
                lines.remove(i);
            }
            7 => {
                let j = rng.usize(..lines.len());
                lines.swap(i, j);
            }
            8 => {
                let cut = rng.usize(..=lines[i].len());
                let mut cut = cut;
                while !lines[i].is_char_boundary(cut) {
                    cut -= 1;
                }
                lines[i].truncate(cut);
            }
            _ => lines.insert(
                i,
                format!(
                    "unexpected_{} = {}",
                    rng.u16(..),
                    NASTY[rng.usize(..NASTY.len())]
                ),
            ),
        }
    }
    lines.join("\n")
}

/// Run `f` on a thread of its own: a panic or a run longer than `limit` fails the case.
fn guarded(what: &str, seed: u64, limit: Duration, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let what2 = what.to_string();
    std::thread::spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(r.err().map(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
        drop(what2);
    });
    match rx.recv_timeout(limit) {
        Ok(None) => {}
        Ok(Some(panic)) => panic!("{what}: seed {seed} panicked: {panic}\n  replay: FUZZ_SEED={seed} cargo test --test it fuzz::"),
        Err(_) => panic!("{what}: seed {seed} did not finish within {limit:?} (a hang)\n  replay: FUZZ_SEED={seed} cargo test --test it fuzz::"),
    }
}

fn seeds() -> Box<dyn Iterator<Item = u64>> {
    match std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(s) => Box::new(std::iter::once(s)),
        None => Box::new(0..cases()),
    }
}

/// The example topology, for binding and simulating mutated runbooks.
fn storefront() -> (Topology, Environment) {
    let t = Topology::load(&repo().join("config/sim/storefront.toml")).unwrap();
    let env = environment_for(&t);
    (t, env)
}

#[test]
fn mutated_runbooks_never_panic() {
    let books = [
        "runbooks/az-evacuation.toml",
        "runbooks/shed-load.toml",
        "runbooks/restore-load.toml",
    ];
    for seed in seeds() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let name = books[rng.usize(..books.len())];
        let text = mutate(&read(name), &mut rng);
        guarded("runbook", seed, Duration::from_secs(60), move || {
            let (topo, env) = storefront();
            let Ok(rb) = Runbook::parse(SourceFile::new(name, text)) else {
                return;
            };
            let params = [("failed_az".to_string(), "us-west-2a".to_string())];
            let ctx = RunContext {
                run_id: "fuzz".into(),
                initiator: "fuzz".into(),
                mode: RunMode::Run,
            };
            let Ok(p) = bind::bind_params(&rb, &env, &params) else {
                return;
            };
            if bind::bind(&rb, &env, &p, &ctx).is_err() {
                return;
            }
            let faults = parse_faults(&["az-down us-west-2a at 0s"]).unwrap();
            let _ = simulate(&rb, &env, &topo, &params, &faults, seed);
        });
    }
}

#[test]
fn mutated_environments_never_panic() {
    let envs = [
        "config/local.toml",
        "config/staging.toml",
        "config/prod.toml",
        "config/simulated.toml",
    ];
    let rb = Runbook::load(&repo().join("runbooks/az-evacuation.toml")).unwrap();
    for seed in seeds() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let name = envs[rng.usize(..envs.len())];
        let text = mutate(&read(name), &mut rng);
        let rb = rb.clone();
        guarded("environment", seed, Duration::from_secs(20), move || {
            let Ok(env) = Environment::parse(SourceFile::new(name, text), "fuzz") else {
                return;
            };
            let _ = bind::check_against_env(&rb, &env);
            let ctx = RunContext {
                run_id: "fuzz".into(),
                initiator: "fuzz".into(),
                mode: RunMode::Run,
            };
            let params = [(
                "failed_az".to_string(),
                env.zones.first().map(|z| z.to_string()).unwrap_or_default(),
            )];
            if let Ok(p) = bind::bind_params(&rb, &env, &params) {
                let _ = bind::bind(&rb, &env, &p, &ctx);
            }
        });
    }
}

#[test]
fn mutated_topologies_and_faults_never_panic() {
    let topos = [
        "config/sim/storefront.toml",
        "config/sim/oregon-two-az-outage.toml",
        "config/sim/storefront-shedding.toml",
    ];
    let rb = Runbook::load(&repo().join("runbooks/az-evacuation.toml")).unwrap();
    let fault_lines = [
        "az-down us-west-2a at 0s",
        "az-flap us-west-2a period 0s",
        "api-errors FailoverDBCluster rate 1.5",
        "api-load rds rate 1e308",
        "fail-call * times 18446744073709551615",
        "route53-down at 7d for 7d",
        "stall-failover orders-db at -1s",
        "stale-reads rds lag 0s",
        "timeout-call ChangeResourceRecordSets applied times 0",
        "region-down us-west-2 for 1ms",
    ];
    for seed in seeds() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let name = topos[rng.usize(..topos.len())];
        let text = if rng.bool() {
            mutate(&read(name), &mut rng)
        } else {
            read(name)
        };
        let mut faults: Vec<String> = (0..rng.usize(0..3))
            .map(|_| fault_lines[rng.usize(..fault_lines.len())].to_string())
            .collect();
        if rng.bool() {
            faults.push(mutate(
                fault_lines[rng.usize(..fault_lines.len())],
                &mut rng,
            ));
        }
        let rb = rb.clone();
        guarded("topology", seed, Duration::from_secs(60), move || {
            let Ok(t) = Topology::parse(&text, name) else {
                return;
            };
            let env = environment_for(&t);
            let Ok(f) = parse_faults(&faults) else { return };
            let zone = env.zones.first().map(|z| z.to_string()).unwrap_or_default();
            let _ = simulate(&rb, &env, &t, &[("failed_az".into(), zone)], &f, seed);
        });
    }
}

#[test]
fn absurd_parameters_never_panic() {
    let rb = Runbook::load(&repo().join("runbooks/az-evacuation.toml")).unwrap();
    let values = [
        "",
        " ",
        "us-west-2a,us-west-2a",
        "us-west-2a,,",
        ",",
        "us-west-2a,us-west-2b,us-west-2c",
        "${secret:X}",
        "$${x}",
        "\u{0}",
        "true",
        "TRUE",
        "18446744073709551600s",
        "a=b",
        "é",
    ];
    let names = [
        "failed_az",
        "check_health",
        "require_approval",
        "reason",
        "unknown",
    ];
    for seed in seeds() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let params: Vec<(String, String)> = (0..rng.usize(1..4))
            .map(|_| {
                (
                    names[rng.usize(..names.len())].to_string(),
                    values[rng.usize(..values.len())].to_string(),
                )
            })
            .collect();
        let rb = rb.clone();
        guarded("parameters", seed, Duration::from_secs(60), move || {
            let (topo, env) = storefront();
            let ctx = RunContext {
                run_id: "fuzz".into(),
                initiator: "fuzz".into(),
                mode: RunMode::Run,
            };
            let Ok(p) = bind::bind_params(&rb, &env, &params) else {
                return;
            };
            if bind::bind(&rb, &env, &p, &ctx).is_ok() {
                let _ = simulate(&rb, &env, &topo, &params, &[], seed);
            }
        });
    }
}

#[test]
fn the_binary_exits_only_with_documented_codes() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let n = cases().min(20);
    for seed in 0..n {
        let mut rng = fastrand::Rng::with_seed(1000 + seed);
        let rb = dir.path().join(format!("rb{seed}.toml"));
        std::fs::write(&rb, mutate(&read("runbooks/az-evacuation.toml"), &mut rng)).unwrap();
        for args in [
            vec!["validate", rb.to_str().unwrap(), "--env", "simulated"],
            vec![
                "plan",
                rb.to_str().unwrap(),
                "--env",
                "simulated",
                "-p",
                "failed_az=us-west-2a",
            ],
        ] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
                .current_dir(repo())
                .arg("--journal")
                .arg(dir.path().join("j.db"))
                .args(&args)
                .output()
                .unwrap();
            let code = o.status.code().unwrap_or(-1);
            assert!(
                [0, 1, 2, 3, 4, 5].contains(&code),
                "seed {seed}: `failover {}` exited {code}:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    eprintln!(
        "fuzz: {n} mutated runbooks through the binary in {:?}",
        started.elapsed()
    );
}
