//! Journal group commit (a benchmark, not a timed test): run by `scripts/bench-journal`.
//!
//! K intents are sent at once through the `Store` port, from one task on a multi-thread
//! runtime (as `engine::act` sends a step's calls, `buffered`), to a journal in a file in a
//! temporary directory, with one lease in the fence (checked with every intent), round after
//! round. The same is done with group commit on (the default) and off (each intent its own
//! transaction and fsync, as before group commit).
//!
//! Printed for each K: fsynced (durable) commits per intent and intents per second, grouped
//! and one at a time, and the ratio of the two rates. With K = 1 nothing can be grouped: the
//! ratio is the cost of the group commit's hand-off to a blocking thread.
//!
//! Options (after `--`): `--k 1,16,64` (the concurrencies), `--intents 512` (about how many
//! intents per measurement), `--reps 3` (best of).

use failover::journal::Journal;
use failover::lease::LeaseKey;
use failover::store::{Fence, LeaseRequest, Store};
use failover::types::RunId;
use std::time::{Duration, Instant};

/// One measurement: `rounds` rounds of `k` concurrent intents on a new journal. Returns the
/// wall time and the durable commits they took.
fn measure(
    rt: &tokio::runtime::Runtime,
    grouped: bool,
    k: usize,
    rounds: usize,
) -> (Duration, u64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let j = Journal::open_with(&dir.path().join("journal.db"), None)
        .expect("the journal opens")
        .group_commit(grouped);
    let run = RunId::from("bench");
    let fence = j
        .acquire(&LeaseRequest {
            run_id: run.clone(),
            initiator: "bench".into(),
            holder: "bench:1".into(),
            keys: vec![LeaseKey("k".into())],
            ttl_ms: 3_600_000,
            takeover: false,
        })
        .expect("the lease");
    let fence = Fence {
        budget_ms: 0,
        ..fence
    };
    let before = j.durable_commits();
    let started = Instant::now();
    rt.block_on(async {
        for round in 0..rounds {
            let calls = (0..k).map(|i| {
                let (j, run, fence) = (&j, &run, &fence);
                async move {
                    let res = format!("db-{round}-{i}");
                    let call = serde_json::json!({"cluster": res, "target": "b"});
                    Store::intent(j, run, "s", "FailoverDBCluster", &res, call, fence).await
                }
            });
            for r in futures_util::future::join_all(calls).await {
                r.expect("the intent is written");
            }
        }
    });
    let took = started.elapsed();
    assert_eq!(
        j.event_count().expect("events") as usize,
        k * rounds + 1,
        "every intent written (and the lease event)"
    );
    (took, j.durable_commits() - before)
}

fn main() {
    let mut ks = vec![1usize, 16, 64];
    let mut intents = 512usize;
    let mut reps = 3usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--k" => {
                ks = it
                    .next()
                    .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                    .unwrap_or(ks);
            }
            "--intents" => intents = it.next().and_then(|v| v.parse().ok()).unwrap_or(intents),
            "--reps" => reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(reps),
            // cargo bench passes --bench; ignore what is not ours.
            _ => {}
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!("Journal intents: K at once from one task (multi-thread runtime), journal in a file");
    println!(
        "  {:>4}  {:>22}  {:>22}  {:>8}",
        "K", "grouped", "one at a time", "ratio"
    );
    println!(
        "  {:>4}  {:>9} {:>12}  {:>9} {:>12}  {:>8}",
        "", "fsync/int", "intents/s", "fsync/int", "intents/s", "rate"
    );
    for &k in ks.iter().filter(|&&k| k > 0) {
        let rounds = (intents / k).max(4);
        let n = (k * rounds) as f64;
        // Best of `reps` for each mode, the modes interleaved (the machine's load drifts).
        let mut best = [(Duration::MAX, 0u64); 2];
        for _ in 0..reps.max(1) {
            for (m, grouped) in [true, false].into_iter().enumerate() {
                let (t, c) = measure(&rt, grouped, k, rounds);
                if t < best[m].0 {
                    best[m] = (t, c);
                }
            }
        }
        let rate = |t: Duration| n / t.as_secs_f64();
        let [(tg, cg), (t1, c1)] = best;
        println!(
            "  {k:>4}  {:>9.3} {:>12.0}  {:>9.3} {:>12.0}  {:>7.1}x",
            cg as f64 / n,
            rate(tg),
            c1 as f64 / n,
            rate(t1),
            rate(tg) / rate(t1)
        );
    }
}
