//! Engine overhead per step (a benchmark, not a timed test): run by `scripts/bench-engine`.
//!
//! A runbook of N `wait` steps of zero duration, in chains and fan-outs (groups of ten: a head
//! after the previous group's join, eight steps after the head, a join after the eight), runs
//! through the one lifecycle in the simulator (`app::simulate`: plan, journal in memory, the
//! engine's scheduler, the timeline) with the built-in storefront topology. Zero-length waits
//! take no virtual time, so the wall time is the engine's own work plus the simulator's
//! bookkeeping.
//!
//! Printed for each N: the wall time (best of a few repetitions, the machines are noisy), the
//! time per step above a 1-step run (the fixed cost of a simulation), and the ratio of the
//! per-step figure at the largest N to the one at the smallest: about 1 when the cost of a step
//! does not grow with the number of steps (no quadratic term), N_max/N_min if it grows
//! linearly. Target (issue 11): under 1 ms per step at 1,000 steps.
//!
//! Options (after `--`): `--steps 100,1000` (the sizes), `--reps 3`. Exit status 1 when the
//! per-step overhead at 1,000 steps (or the largest size) is 1 ms or more.

use failover::app::simulate::simulate;
use failover::cloud::sim::{environment_for, Topology};
use failover::diag::SourceFile;
use failover::runbook::Runbook;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const TOPOLOGY: &str = include_str!("../config/sim/storefront.toml");
const TARGET: Duration = Duration::from_millis(1);

/// A runbook of `n` zero-length waits: groups of ten (head, eight in parallel, join), each
/// group after the previous one's join.
fn runbook(n: usize) -> String {
    let mut s = String::from("name = \"engine-bench\"\n");
    let step = |s: &mut String, id: &str, after: &[String]| {
        let after: Vec<String> = after.iter().map(|a| format!("\"{a}\"")).collect();
        let _ = write!(
            s,
            "\n[[steps]]\nid = \"{id}\"\naction = \"wait\"\nduration = \"0s\"\nafter = [{}]\n",
            after.join(", ")
        );
    };
    let mut prev: Option<String> = None;
    let mut made = 0;
    let mut g = 0;
    while made < n {
        let head = format!("g{g}-head");
        step(&mut s, &head, prev.as_slice());
        made += 1;
        let mut fan = vec![];
        for k in 0..8 {
            if made + 1 >= n {
                break;
            }
            let id = format!("g{g}-fan{k}");
            step(&mut s, &id, std::slice::from_ref(&head));
            fan.push(id);
            made += 1;
        }
        if made < n {
            let join = format!("g{g}-join");
            let after = if fan.is_empty() { vec![head] } else { fan };
            step(&mut s, &join, &after);
            made += 1;
            prev = Some(join);
        } else {
            prev = Some(head);
        }
        g += 1;
    }
    s
}

/// Wall time of one simulation of an `n`-step runbook.
fn once(n: usize, topology: &Topology) -> Duration {
    let text = runbook(n);
    let rb = match Runbook::parse(SourceFile::new("<engine-bench>", &text)) {
        Ok(rb) => rb,
        Err(d) => panic!("the generated runbook does not parse:\n{d}"),
    };
    assert_eq!(
        rb.steps.len(),
        n,
        "the generator made the wrong number of steps"
    );
    let env = environment_for(topology);
    let started = Instant::now();
    let report = simulate(&rb, &env, topology, &[], &[], 1).expect("the simulation runs");
    let took = started.elapsed();
    assert!(report.run_succeeded, "the {n}-step run did not succeed");
    assert_eq!(report.steps.len(), n);
    took
}

fn best_of(reps: usize, n: usize, topology: &Topology) -> Duration {
    (0..reps.max(1))
        .map(|_| once(n, topology))
        .min()
        .unwrap_or_default()
}

fn main() {
    let mut sizes = vec![100usize, 1000];
    let mut reps = 3;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--steps" => {
                sizes = it
                    .next()
                    .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                    .unwrap_or(sizes);
            }
            "--reps" => reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(reps),
            // cargo bench passes --bench; ignore what is not ours.
            _ => {}
        }
    }
    sizes.retain(|&n| n > 1);
    sizes.sort_unstable();
    let topology = Topology::parse(TOPOLOGY, "config/sim/storefront.toml").expect("topology");
    let base = best_of(reps, 1, &topology);
    println!("Engine overhead per step (simulator, zero-length `wait` steps in chains and fan-outs of 10)");
    println!(
        "  1-step run (the fixed cost): {:.1} ms (best of {reps})",
        ms(base)
    );
    println!("  {:>6}  {:>10}  {:>14}", "steps", "wall", "per step");
    let mut per: Vec<(usize, Duration)> = vec![];
    for &n in &sizes {
        let t = best_of(reps, n, &topology);
        let p = t.saturating_sub(base) / (n as u32 - 1);
        println!("  {n:>6}  {:>7.1} ms  {:>11.3} ms", ms(t), ms(p));
        per.push((n, p));
    }
    let (Some(&(n0, p0)), Some(&(n1, p1))) = (per.first(), per.last()) else {
        return;
    };
    if n1 > n0 && !p0.is_zero() {
        println!(
            "  per step at {n1} / per step at {n0}: {:.2} (1: no growth with the number of steps; {:.0}: linear growth, a full rescan per step)",
            p1.as_secs_f64() / p0.as_secs_f64(),
            n1 as f64 / n0 as f64
        );
    }
    let ok = p1 < TARGET;
    println!(
        "  target: under {} ms per step at {n1} steps: {}",
        ms(TARGET),
        if ok { "met" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
