//! Load shedding rehearsed in the simulated cloud: the real runbooks (runbooks/shed-load.toml,
//! runbooks/restore-load.toml, runbooks/az-evacuation.toml), the real closed loops of the
//! engine, against config/sim/storefront-shedding.toml, whose capacity drops with a zone and
//! whose error rate follows the load (src/cloud/sim/traffic.rs). Every assertion reads what
//! the simulated world saw and served — admin calls received, load samples, signal readings —
//! not what the engine says it did.

use failover::app::simulate::{simulate, simulate_runs, SimReport, SimRun, Verdict};
use failover::cloud::sim::{
    environment_for, Event, Fault, InvariantStatus, Topology, TrafficReport,
};
use failover::diag::SourceFile;
use failover::report::sim::render_text;
use failover::runbook::Runbook;
use failover::status::StepStatus;
use std::path::PathBuf;
use std::time::Duration;

const THRESHOLD: f64 = 0.02;
const HOLD: Duration = Duration::from_secs(300);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn topology() -> Topology {
    Topology::load(&root().join("config/sim/storefront-shedding.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn runbook(name: &str) -> Runbook {
    Runbook::load(&root().join(format!("runbooks/{name}.toml"))).unwrap_or_else(|e| panic!("{e}"))
}

fn faults(lines: &[&str]) -> Vec<Fault> {
    lines
        .iter()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn shed_only(fault_lines: &[&str], seed: u64) -> SimReport {
    let t = topology();
    simulate(
        &runbook("shed-load"),
        &environment_for(&t),
        &t,
        &[],
        &faults(fault_lines),
        seed,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn traffic(r: &SimReport) -> &TrafficReport {
    r.traffic.as_ref().expect("the topology has a load model")
}

fn step<'a>(r: &'a SimReport, run: usize, id: &str) -> &'a failover::app::simulate::StepSummary {
    r.runs[run]
        .steps
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no step {id} in run {run}"))
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The last reading of the signal strictly before `t`.
fn reading_before(t: &TrafficReport, before_ms: u64) -> f64 {
    t.readings
        .iter()
        .rev()
        .find(|x| x.at_ms < before_ms)
        .unwrap_or_else(|| panic!("no reading before {before_ms} ms"))
        .value
}

/// The mutating HTTP calls the world received, as `METHOD url`.
fn admin_calls(r: &SimReport) -> Vec<String> {
    r.timeline
        .iter()
        .filter_map(|e| match &e.event {
            Event::Api(c)
                if c.operation.starts_with("HTTP")
                    && c.mutating
                    && !c.resource.contains("chat.example.com") =>
            {
                Some(format!("{} {}", c.operation, c.resource))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn losing_a_zone_sheds_crawlers_then_bots_then_multi_language_and_stops_once_the_error_rate_is_good(
) {
    let r = shed_only(&["az-down us-west-2a at 0s"], 7);
    let text = render_text(&r, false);
    let t = traffic(&r);

    // The world: healthy at first, overloaded once the zone is gone.
    let first = &t.samples[0];
    assert!(
        first.good && first.capacity == 300.0 && first.demand == 225.0,
        "{text}"
    );
    let hit = &t.samples[1];
    assert_eq!(
        hit.zones_down
            .iter()
            .map(|z| z.as_str())
            .collect::<Vec<_>>(),
        ["us-west-2a"],
        "{text}"
    );
    assert!(
        hit.capacity == 200.0 && hit.utilisation > 1.0 && hit.error_rate > 0.15,
        "{text}"
    );

    // Shed lowest priority first, and only while the signal is bad.
    assert_eq!(
        t.shed_calls(),
        ["crawlers", "bots", "multi-language"],
        "{text}"
    );
    assert!(t.restore_calls().is_empty());
    for c in &t.calls {
        assert!(
            reading_before(t, c.at_ms + 1) >= THRESHOLD,
            "{} was shed after a good reading\n{text}",
            c.tier
        );
    }
    // Stopped as soon as it was good: exactly one reading after the last shed, and it is good;
    // the ladder was not exhausted.
    let last_call = t.calls.last().unwrap().at_ms;
    let after: Vec<f64> = t
        .readings
        .iter()
        .filter(|x| x.at_ms > last_call)
        .map(|x| x.value)
        .collect();
    assert_eq!(after.len(), 1, "{text}");
    assert!(after[0] < THRESHOLD, "{text}");
    assert_eq!(t.shed_at_end, ["crawlers", "bots", "multi-language"]);
    for kept in ["recommendations", "search-suggestions", "cart", "checkout"] {
        assert!(
            t.calls.iter().all(|c| c.tier != kept),
            "{kept} was touched\n{text}"
        );
    }

    // Each shed lowered the error rate; the last one brought it under the threshold.
    let after_each: Vec<f64> = t.samples.iter().skip(1).map(|s| s.error_rate).collect();
    assert!(after_each.windows(2).all(|w| w[1] < w[0]), "{after_each:?}");
    let end = t.samples.last().unwrap();
    assert!(
        end.good && end.error_rate < THRESHOLD && end.zones_down.len() == 1,
        "{text}"
    );
    assert_eq!(t.degraded_at(), Some(Duration::ZERO));
    let recovered = t.recovered_at().expect("recovered");
    assert!(
        recovered < Duration::from_secs(120),
        "{recovered:?}\n{text}"
    );

    // The admin APIs saw these calls, in this order (the edge for crawlers and bots, the
    // feature-flag service for multi-language).
    assert_eq!(
        admin_calls(&r),
        [
            "HTTP PUT https://edge-admin.shop.example.com/v1/rules",
            "HTTP PUT https://edge-admin.shop.example.com/v1/rules",
            "HTTP PATCH https://flags.shop.example.com/api/flags/multi-language",
        ]
    );

    assert_eq!(
        step(&r, 0, "shed").status,
        Some(StepStatus::Succeeded),
        "{text}"
    );
    assert!(
        step(&r, 0, "shed")
            .message
            .as_deref()
            .unwrap_or("")
            .contains("shed crawlers, bots, multi-language"),
        "{text}"
    );
    assert_eq!(
        r.invariant("no-protected-traffic-shed").unwrap().status,
        InvariantStatus::Held
    );
    assert_eq!(r.verdict, Verdict::Succeeded, "{text}");
}

#[test]
fn the_timeline_shows_the_readings_and_the_tiers_as_they_are_shed() {
    let r = shed_only(&["az-down us-west-2a at 0s"], 7);
    let text = render_text(&r, false);
    for line in [
        "◆ traffic: us-west-2a is down: capacity 300 → 200, demand 225: utilisation 113%, error rate 20.0%: bad (not below 0.02)",
        "= shed: shedding tier `crawlers`",
        "(sheds tier `crawlers` (−40 of demand) in 10s)",
        "◆ traffic: tier `crawlers` is shed (−40): capacity 200, demand 225 → 185: utilisation 93%, error rate 6.4%: bad (not below 0.02)",
        "◆ traffic: tier `multi-language` is shed (−30): capacity 200, demand 175 → 145: utilisation 73%, error rate 0.3%: good (below 0.02)",
        "… shed: signal 0.",
        "shed at the end: crawlers, bots, multi-language; protected, never shed: cart, checkout",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

#[test]
fn the_same_seed_gives_the_same_readings_another_seed_other_noise_but_the_same_decisions() {
    let a = shed_only(&["az-down us-west-2a at 0s"], 11);
    let b = shed_only(&["az-down us-west-2a at 0s"], 11);
    let c = shed_only(&["az-down us-west-2a at 0s"], 12);
    assert_eq!(a.timeline_json(), b.timeline_json());
    let values = |r: &SimReport| {
        traffic(r)
            .readings
            .iter()
            .map(|x| x.value)
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&a), values(&b));
    assert_ne!(values(&a), values(&c), "the readings carry seeded noise");
    assert_eq!(traffic(&a).shed_calls(), traffic(&c).shed_calls());
}

#[test]
fn with_every_zone_up_the_signal_is_good_and_nothing_is_shed() {
    let r = shed_only(&[], 7);
    let t = traffic(&r);
    assert!(t.calls.is_empty(), "{}", render_text(&r, false));
    assert_eq!(t.readings.len(), 1);
    assert!(t.readings[0].value < THRESHOLD);
    assert!(step(&r, 0, "shed")
        .message
        .as_deref()
        .unwrap_or("")
        .contains("no tier shed by this step"));
    assert_eq!(r.verdict, Verdict::Succeeded);
}

#[test]
fn when_the_zone_is_back_restore_load_brings_the_tiers_back_in_reverse_with_hold_periods() {
    let t = topology();
    let (shed, restore) = (runbook("shed-load"), runbook("restore-load"));
    // The zone is back at 10m; the on-call runs the restore at 12m.
    let r = simulate_runs(
        &[
            SimRun::new(&shed, &[]),
            SimRun::new(&restore, &[]).at(Duration::from_secs(12 * 60)),
        ],
        &environment_for(&t),
        &t,
        &faults(&["az-down us-west-2a at 0s for 10m"]),
        7,
    )
    .unwrap();
    let text = render_text(&r, false);
    let tr = traffic(&r);
    assert_eq!(
        tr.shed_calls(),
        ["crawlers", "bots", "multi-language"],
        "{text}"
    );
    assert_eq!(
        tr.restore_calls(),
        ["multi-language", "bots", "crawlers"],
        "{text}"
    );

    let restore_start = r.runs[1].started_ms.expect("started");
    assert!(at(restore_start) >= Duration::from_secs(12 * 60), "{text}");
    let mut previous = restore_start;
    for c in tr.calls.iter().filter(|c| !c.shed) {
        // Each restore waited a whole hold period after the previous one (or the start)...
        assert!(
            at(c.at_ms - previous) >= HOLD,
            "{} restored {:?} after the previous\n{text}",
            c.tier,
            at(c.at_ms - previous)
        );
        // ...during which every reading was good.
        let window: Vec<f64> = tr
            .readings
            .iter()
            .filter(|x| x.at_ms + HOLD.as_millis() as u64 >= c.at_ms && x.at_ms <= c.at_ms)
            .map(|x| x.value)
            .collect();
        assert!(
            window.len() >= 5 && window.iter().all(|v| *v < THRESHOLD),
            "{}: {window:?}\n{text}",
            c.tier
        );
        previous = c.at_ms;
    }

    let end = tr.samples.last().unwrap();
    assert!(tr.shed_at_end.is_empty(), "{text}");
    assert!(
        end.zones_down.is_empty() && end.capacity == 300.0 && end.demand == 225.0 && end.good,
        "{text}"
    );
    assert!(
        tr.readings
            .iter()
            .filter(|x| x.at_ms >= restore_start)
            .all(|x| x.value < THRESHOLD),
        "nothing restored made the signal bad\n{text}"
    );
    assert_eq!(
        r.runs.iter().map(|x| x.run_id.as_str()).collect::<Vec<_>>(),
        ["sim-7", "sim-7-2"]
    );
    assert!(r.runs.iter().all(|x| x.succeeded), "{text}");
    assert!(
        step(&r, 1, "restore")
            .message
            .as_deref()
            .unwrap_or("")
            .contains("restored multi-language, bots, crawlers"),
        "{text}"
    );
    assert_eq!(
        r.invariant("no-protected-traffic-shed").unwrap().status,
        InvariantStatus::Held
    );
    assert_eq!(r.verdict, Verdict::Succeeded, "{text}");
    assert!(
        text.contains("2. `restore-load` (run sim-7-2), started at +12:00"),
        "{text}"
    );
}

#[test]
fn restoring_while_the_zone_is_still_down_puts_the_tier_back_and_gives_up_the_second_time() {
    let t = topology();
    let (shed, restore) = (runbook("shed-load"), runbook("restore-load"));
    let r = simulate_runs(
        &[SimRun::new(&shed, &[]), SimRun::new(&restore, &[])],
        &environment_for(&t),
        &t,
        &faults(&["az-down us-west-2a at 0s"]),
        7,
    )
    .unwrap();
    let text = render_text(&r, false);
    let tr = traffic(&r);
    // multi-language comes back, the error rate climbs over the threshold, it is shed again;
    // after another hold the same happens, and the step stops trying.
    let names: Vec<(bool, &str)> = tr.calls.iter().map(|c| (c.shed, c.tier.as_str())).collect();
    assert_eq!(
        names,
        [
            (true, "crawlers"),
            (true, "bots"),
            (true, "multi-language"),
            (false, "multi-language"),
            (true, "multi-language"),
            (false, "multi-language"),
            (true, "multi-language"),
        ],
        "{text}"
    );
    let restores: Vec<u64> = tr
        .calls
        .iter()
        .filter(|c| !c.shed)
        .map(|c| c.at_ms)
        .collect();
    for r_at in &restores {
        let next_shed = tr.calls.iter().find(|c| c.shed && c.at_ms > *r_at).unwrap();
        assert!(
            reading_before(tr, next_shed.at_ms + 1) >= THRESHOLD,
            "re-shed only on a bad reading\n{text}"
        );
    }
    assert!(at(restores[1] - restores[0]) >= HOLD, "{text}");
    let s = step(&r, 1, "restore");
    assert_eq!(s.status, Some(StepStatus::Failed), "{text}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("turned bad twice right after restoring `multi-language`"),
        "{text}"
    );
    // The run ends with the last re-shed still propagating to the edge (the lag).
    assert_eq!(tr.shed_at_end, ["crawlers", "bots"], "{text}");
    assert_eq!(
        tr.pending_at_end
            .iter()
            .map(|c| (c.shed, c.tier.as_str()))
            .collect::<Vec<_>>(),
        [(true, "multi-language")],
        "{text}"
    );
    assert!(!tr.samples.last().unwrap().good, "{text}");
    assert!(text.contains("changing: multi-language (shed at"), "{text}");
    assert_eq!(r.verdict, Verdict::Failed);
}

#[test]
fn when_even_every_unprotected_tier_is_not_enough_cart_and_checkout_are_never_shed_and_the_step_says_so(
) {
    let r = shed_only(&["az-down us-west-2a at 0s", "az-down us-west-2b at 0s"], 7);
    let text = render_text(&r, false);
    let t = traffic(&r);
    assert_eq!(
        t.shed_calls(),
        [
            "crawlers",
            "bots",
            "multi-language",
            "recommendations",
            "search-suggestions"
        ],
        "{text}"
    );
    assert!(t
        .calls
        .iter()
        .all(|c| c.tier != "cart" && c.tier != "checkout"));
    let end = t.samples.last().unwrap();
    assert_eq!(end.capacity, 100.0);
    assert_eq!(end.demand, 125.0, "base + cart + checkout are still served");
    assert!(!end.good && end.error_rate >= THRESHOLD, "{text}");
    assert!(t.readings.iter().all(|x| x.value >= THRESHOLD), "{text}");
    let s = step(&r, 0, "shed");
    assert_eq!(s.status, Some(StepStatus::Failed), "{text}");
    let m = s.message.as_deref().unwrap_or("");
    assert!(
        m.contains("every unprotected tier is shed and the signal is still bad"),
        "{m}"
    );
    assert!(
        m.contains("protected tiers are never shed: cart, checkout"),
        "{m}"
    );
    assert_eq!(
        r.invariant("no-protected-traffic-shed").unwrap().status,
        InvariantStatus::Held
    );
    assert_eq!(r.verdict, Verdict::Failed);
    assert!(
        r.reasons.iter().any(|x| x.contains("step `shed` failed")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn evacuating_the_writers_zone_then_shedding_load_recovers_both_data_and_error_rate() {
    let t = topology();
    let (evac, shed) = (runbook("az-evacuation"), runbook("shed-load"));
    let r = simulate_runs(
        &[
            SimRun::new(&evac, &[("failed_az".into(), "us-west-2b".into())]),
            SimRun::new(&shed, &[]),
        ],
        &environment_for(&t),
        &t,
        &faults(&["az-down us-west-2b at 0s"]),
        3,
    )
    .unwrap();
    let text = render_text(&r, false);
    assert_eq!(r.verdict, Verdict::Succeeded, "{text}");
    assert!(
        r.final_state
            .clusters
            .iter()
            .all(|c| c.zone.as_str() != "us-west-2b"),
        "{text}"
    );
    assert!(r.time_to_recover().is_some());
    let tr = traffic(&r);
    assert_eq!(
        tr.shed_calls(),
        ["crawlers", "bots", "multi-language"],
        "{text}"
    );
    // The shedding began after the evacuation ended: one world, one run after the other.
    let evac_end = r.runs[0].ended_ms.unwrap();
    assert!(tr.calls.iter().all(|c| c.at_ms >= evac_end), "{text}");
    assert!(r.runs[1].started_ms.unwrap() >= evac_end);
    assert!(
        r.invariants
            .iter()
            .all(|i| i.status == InvariantStatus::Held),
        "{text}"
    );
    assert!(
        text.contains("Simulation of 2 runbooks in one world"),
        "{text}"
    );
}

#[test]
fn a_tier_shed_by_route53_weights_takes_effect_when_its_group_has_the_apply_weights() {
    let topo = Topology::parse(
        r#"
name = "dns-shed"
region = "us-west-2"
zones = ["us-west-2a", "us-west-2b"]

[[hosted_zones]]
name = "shop.example.com."
group = "search"

[[hosted_zones.records]]
name = "search.shop.example.com."
type = "A"
weighted = true
values = { "us-west-2a" = "10.0.1.20", "us-west-2b" = "10.0.2.20" }
weights = { "us-west-2a" = 100, "us-west-2b" = 100 }

[traffic]
settle = "30s"

[traffic.signal]
url = "https://metrics.example.com/err"
good_below = 0.02

[[traffic.tiers]]
name = "search-weighted"
apply = { dns_group = "search", weights = { "us-west-2a" = 0, "us-west-2b" = 100 } }
revert = { dns_group = "search", weights = { "us-west-2a" = 100, "us-west-2b" = 100 } }

[[traffic.tiers]]
name = "checkout"
protected = true

[load]
capacity = 100
base = 60
tiers = { "search-weighted" = 60, checkout = 20 }
lag = "20s"
noise = 0
"#,
        "dns-shed.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rb = Runbook::parse(SourceFile::new(
        "shed.toml",
        "name = \"shed\"\n[[steps]]\nid = \"shed\"\naction = \"traffic.shed\"\n",
    ))
    .unwrap();
    let r = simulate(
        &rb,
        &environment_for(&topo),
        &topo,
        &[],
        &faults(&["az-down us-west-2a at 0s"]),
        5,
    )
    .unwrap();
    let text = render_text(&r, false);
    let t = traffic(&r);
    // 140 on 100 of capacity once us-west-2a is gone; 80 on 100 with search off the ladder.
    assert_eq!(t.shed_calls(), ["search-weighted"], "{text}");
    assert!(
        admin_calls(&r).is_empty(),
        "no HTTP call: Route 53 did it\n{text}"
    );
    let change = r.timeline.iter().find(|e| matches!(&e.event, Event::Api(c) if c.operation == "ChangeResourceRecordSets" && c.ok)).expect("a Route 53 change").at_ms;
    assert_eq!(
        t.calls[0].at_ms, change,
        "the change of weights is the shed"
    );
    let shed_sample = t
        .samples
        .iter()
        .find(|s| s.shed == ["search-weighted"])
        .expect("shed in the world");
    assert_eq!(shed_sample.at_ms - change, 20_000, "after the lag");
    assert_eq!(shed_sample.demand, 80.0);
    assert!(shed_sample.good);
    assert_eq!(
        r.final_state.records[0]
            .weights
            .values()
            .copied()
            .collect::<Vec<_>>(),
        [0, 100]
    );
    assert_eq!(
        step(&r, 0, "shed").status,
        Some(StepStatus::Succeeded),
        "{text}"
    );
    assert_eq!(r.verdict, Verdict::Succeeded, "{text}");
}

#[test]
fn a_topology_ladder_is_checked_like_an_environment_and_the_load_model_against_it() {
    let text = std::fs::read_to_string(root().join("config/sim/storefront-shedding.toml")).unwrap();
    let env = environment_for(&topology());
    let ladder = env
        .traffic
        .as_ref()
        .expect("the derived environment has the ladder");
    assert_eq!(
        ladder
            .tiers
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        [
            "crawlers",
            "bots",
            "multi-language",
            "recommendations",
            "search-suggestions",
            "cart",
            "checkout"
        ]
    );

    let bad = text
        .replace("\"multi-language\" = 30", "\"multi-langauge\" = 30")
        .replace(
            "endpoint = \"edge_admin\", body = '{\"rule\": \"challenge-bots\", \"enabled\": true}'",
            "endpoint = \"edge\", body = '{\"rule\": \"challenge-bots\", \"enabled\": true}'",
        )
        .replace("good_below = 0.02\n", "good_below = 0.02\nthreshold = 1\n")
        .replace(
            "\"us-west-2c\" = 100 }\nbase",
            "\"us-west-2d\" = 100 }\nbase",
        );
    let e = Topology::parse(&bad, "bad.toml").unwrap_err();
    let all = e.to_string();
    assert!(
        all.contains("`threshold`"),
        "the ladder is read by traffic::config::parse, with its line: {all}"
    );
    assert!(
        all.contains(
            "`multi-langauge` is not a tier of the ladder; did you mean `multi-language`?"
        ),
        "{all}"
    );
    assert!(
        all.contains("tier `bots` uses endpoint `edge`, which is not an endpoint of the topology"),
        "{all}"
    );
    assert!(
        all.contains("`us-west-2d` is not a zone of the topology"),
        "{all}"
    );
    assert!(all.contains("no figure for us-west-2c"), "{all}");

    let no_load = &text[..text.find("\n[load]").unwrap()];
    let e = Topology::parse(no_load, "no-load.toml").unwrap_err();
    assert!(
        e.to_string().contains("[traffic] needs a [load] model"),
        "{e}"
    );
}

#[test]
fn the_cli_prints_the_shedding_timeline() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(root())
        .args([
            "simulate",
            "runbooks/shed-load.toml",
            "--topology",
            "config/sim/storefront-shedding.toml",
            "--fault",
            "az-down us-west-2a at 0s",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "= shed: shedding tier `bots`",
        "is shed (−30)",
        "Verdict: SUCCEEDED",
        "Traffic (simulated load",
    ] {
        assert!(stdout.contains(line), "missing `{line}`:\n{stdout}");
    }
}

#[test]
fn a_signal_served_from_the_lost_zone_goes_dark_with_it_and_nothing_is_shed_blind() {
    let text = std::fs::read_to_string(root().join("config/sim/storefront-shedding.toml")).unwrap();
    let with_metrics = text.replacen(
        "\n[traffic]\n",
        "\n[endpoints.metrics]\nurl = \"https://metrics.shop.example.com/api/checkout/error-rate\"\nmethod = \"GET\"\nzone = \"us-west-2a\"\n\n[traffic]\n",
        1,
    );
    let t = Topology::parse(&with_metrics, "metrics-in-2a.toml").unwrap_or_else(|e| panic!("{e}"));
    let healthy = simulate(&runbook("shed-load"), &environment_for(&t), &t, &[], &[], 7).unwrap();
    assert_eq!(
        traffic(&healthy).readings.len(),
        1,
        "the endpoint serves the signal while its zone is up"
    );
    let r = simulate(
        &runbook("shed-load"),
        &environment_for(&t),
        &t,
        &[],
        &faults(&["az-down us-west-2a at 0s"]),
        7,
    )
    .unwrap();
    let text = render_text(&r, false);
    let tr = traffic(&r);
    assert!(tr.readings.is_empty() && tr.calls.is_empty(), "{text}");
    let s = step(&r, 0, "shed");
    assert_eq!(s.status, Some(StepStatus::Failed), "{text}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("shedding blind is unsafe"),
        "{text}"
    );
    assert!(
        text.contains("metrics is served from us-west-2a, which is down: no answer"),
        "{text}"
    );
}
