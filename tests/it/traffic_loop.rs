//! The load-shedding ladder against real HTTP servers on loopback: an edge admin API and a
//! feature-flag API that record every call, and a signal whose error rate depends on which
//! tiers are currently shed (or flaps, or stays bad), so nothing depends on timing.

use crate::common;

use axum::extract::{Path as AxPath, State};
use axum::routing::{get, patch, put};
use common::run::run_runbook;
use failover::journal::Journal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Good once at least N tiers are shed.
    GoodAfter(usize),
    AlwaysBad,
    AlwaysGood,
    /// Alternates on every read.
    Flapping,
    /// Bad whenever fewer than N tiers are shed.
    BadBelow(usize),
}

#[derive(Default)]
struct Edge {
    calls: Vec<(String, Instant)>,
    shed: Vec<String>,
    reads: u64,
    mode: Option<Mode>,
}

type Shared = Arc<Mutex<Edge>>;

fn tier_of_rule(rule: &str) -> &str {
    match rule {
        "block-crawlers" => "crawlers",
        "challenge-bots" => "bots",
        other => other,
    }
}

async fn rules(State(s): State<Shared>, body: String) -> &'static str {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tier = tier_of_rule(v["rule"].as_str().unwrap()).to_string();
    let enabled = v["enabled"].as_bool().unwrap();
    let mut e = s.lock().unwrap();
    e.calls.push((
        format!("{} {tier}", if enabled { "shed" } else { "restore" }),
        Instant::now(),
    ));
    if enabled {
        e.shed.push(tier);
    } else {
        e.shed.retain(|t| *t != tier);
    }
    "{}"
}

async fn flags(
    State(s): State<Shared>,
    AxPath(flag): AxPath<String>,
    body: String,
) -> &'static str {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let disabled = !v["enabled"].as_bool().unwrap();
    let mut e = s.lock().unwrap();
    e.calls.push((
        format!("{} {flag}", if disabled { "shed" } else { "restore" }),
        Instant::now(),
    ));
    if disabled {
        e.shed.push(flag);
    } else {
        e.shed.retain(|t| *t != flag);
    }
    "{}"
}

async fn signal(State(s): State<Shared>) -> String {
    let mut e = s.lock().unwrap();
    e.reads += 1;
    let n = e.shed.len();
    let good = match e.mode.unwrap() {
        Mode::GoodAfter(k) => n >= k,
        Mode::AlwaysBad => false,
        Mode::AlwaysGood => true,
        Mode::Flapping => e.reads % 2 == 0,
        Mode::BadBelow(k) => n >= k,
    };
    format!("{{\"error_rate\": {}}}", if good { 0.005 } else { 0.25 })
}

struct Rig {
    edge: Shared,
    dir: tempfile::TempDir,
    journal: Arc<Journal>,
}

async fn rig(mode: Mode, hold: &str) -> Rig {
    let edge: Shared = Arc::new(Mutex::new(Edge {
        mode: Some(mode),
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/edge/rules", put(rules))
        .route("/flags/{flag}", patch(flags))
        .route("/metrics/checkout", get(signal))
        .fallback(|| async { "{}" })
        .with_state(edge.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::topo::repo().join("config/local.toml")).unwrap();
    let text = text
        .replace("http://127.0.0.1:5056", &format!("http://127.0.0.1:{port}"))
        .replace("settle = \"1s\"", "settle = \"20ms\"")
        .replace("hold = \"5s\"", &format!("hold = \"{hold}\""))
        .replace(
            "state_file = \".failover/local-shed-state.json\"",
            &format!(
                "state_file = \"{}\"",
                dir.path().join("shed.json").display()
            ),
        );
    std::fs::write(dir.path().join("local.toml"), text).unwrap();
    let journal = Arc::new(Journal::open(&dir.path().join("j.db")).unwrap());
    Rig { edge, dir, journal }
}

fn runbook(name: &str) -> std::path::PathBuf {
    common::topo::repo().join("runbooks").join(name)
}

fn calls(r: &Rig) -> Vec<String> {
    r.edge
        .lock()
        .unwrap()
        .calls
        .iter()
        .map(|(c, _)| c.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheds_in_order_and_stops_when_the_signal_recovers() {
    let r = rig(Mode::GoodAfter(2), "100ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded, "{out:#?}");
    assert_eq!(
        calls(&r),
        vec!["shed crawlers", "shed bots"],
        "crawlers first, then bots, then stop"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.dir.path().join("shed.json")).unwrap()).unwrap();
    let shed: Vec<&str> = state["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["shed"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        shed,
        vec!["crawlers", "bots"],
        "the published state says what is shed"
    );
    // A second run does not shed the same tiers again: the signal is good now.
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    assert_eq!(calls(&r).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_tiers_are_never_touched_even_when_the_signal_stays_bad() {
    let r = rig(Mode::AlwaysBad, "100ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(
        !out.succeeded,
        "the signal never recovered: the step says so"
    );
    let msg = out.steps[0].2.clone().unwrap();
    assert!(
        msg.contains("every unprotected tier is shed and the signal is still bad"),
        "{msg}"
    );
    assert!(
        msg.contains("protected tiers are never shed: cart, checkout"),
        "{msg}"
    );
    assert_eq!(
        calls(&r),
        vec![
            "shed crawlers",
            "shed bots",
            "shed multi-language",
            "shed recommendations",
            "shed search-suggestions"
        ]
    );
    let shed: Vec<String> = r
        .journal
        .shed_tiers("local")
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert!(!shed.iter().any(|t| t == "cart" || t == "checkout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tier_caps_the_ladder() {
    let r = rig(Mode::AlwaysBad, "100ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[("max_tier", "bots")],
        "alice",
    )
    .await;
    assert!(!out.succeeded);
    assert_eq!(calls(&r), vec!["shed crawlers", "shed bots"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_in_reverse_each_after_the_hold_period() {
    let r = rig(Mode::GoodAfter(3), "150ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    r.edge.lock().unwrap().mode = Some(Mode::AlwaysGood);
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("restore-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded, "{out:#?}");
    let e = r.edge.lock().unwrap();
    let restores: Vec<&(String, Instant)> = e
        .calls
        .iter()
        .filter(|(c, _)| c.starts_with("restore"))
        .collect();
    assert_eq!(
        restores.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        vec!["restore multi-language", "restore bots", "restore crawlers"]
    );
    for w in restores.windows(2) {
        assert!(
            w[1].1 - w[0].1 >= Duration::from_millis(150),
            "each tier waits a full hold period of good signal"
        );
    }
    assert!(r.journal.shed_tiers("local").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_signal_does_not_make_the_ladder_oscillate() {
    let r = rig(Mode::GoodAfter(2), "300ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    r.edge.lock().unwrap().mode = Some(Mode::Flapping);
    let dir = r.dir.path().to_path_buf();
    let rb = dir.join("restore-quick.toml");
    std::fs::write(
        &rb,
        std::fs::read_to_string(runbook("restore-load.toml"))
            .unwrap()
            .replace("timeout = \"4h\"", "timeout = \"1500ms\""),
    )
    .unwrap();
    let (_, out, _) = run_runbook(&dir, "local", &rb, &r.journal, &[], "alice").await;
    assert!(!out.succeeded);
    assert!(
        out.steps[0]
            .2
            .clone()
            .unwrap()
            .starts_with("timed out after 1s 500ms"),
        "{:?}",
        out.steps[0]
    );
    assert_eq!(
        calls(&r),
        vec!["shed crawlers", "shed bots"],
        "no restore while the signal flaps"
    );
    assert!(
        r.edge.lock().unwrap().reads > 10,
        "the signal was read throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_that_breaks_the_signal_again_is_shed_again() {
    // Good only while at least 2 tiers are shed: restoring `bots` makes it bad again.
    let r = rig(Mode::GoodAfter(2), "100ms").await;
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    r.edge.lock().unwrap().mode = Some(Mode::BadBelow(2));
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("restore-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(!out.succeeded);
    let msg = out.steps[0].2.clone().unwrap();
    assert!(
        msg.contains("the signal turned bad twice right after restoring `bots`"),
        "{msg}"
    );
    assert_eq!(
        calls(&r),
        vec![
            "shed crawlers",
            "shed bots",
            "restore bots",
            "shed bots",
            "restore bots",
            "shed bots"
        ]
    );
    let shed: Vec<String> = r
        .journal
        .shed_tiers("local")
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(
        shed.len(),
        2,
        "the ladder is left where the signal is good: {shed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_tiers_a_run_shed() {
    let r = rig(Mode::GoodAfter(3), "100ms").await;
    let (run_id, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(common::topo::repo())
        .args([
            "--config-dir",
            r.dir.path().to_str().unwrap(),
            "--journal",
            r.dir.path().join("j.db").to_str().unwrap(),
            "rollback",
            run_id.as_str(),
            "--by",
            "bob",
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let restores: Vec<String> = calls(&r)
        .into_iter()
        .filter(|c| c.starts_with("restore"))
        .collect();
    assert_eq!(
        restores,
        vec!["restore multi-language", "restore bots", "restore crawlers"]
    );
    assert!(r.journal.shed_tiers("local").unwrap().is_empty());
}

/// Regression: rolling back an old run does not restore a tier that a later run shed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_rollback_leaves_tiers_a_later_run_shed() {
    let r = rig(Mode::GoodAfter(2), "50ms").await;
    let (first, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    r.edge.lock().unwrap().mode = Some(Mode::AlwaysGood);
    let (_, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("restore-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    r.edge.lock().unwrap().mode = Some(Mode::GoodAfter(1));
    let (later, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "bob",
    )
    .await;
    assert!(out.succeeded);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(common::topo::repo())
        .args([
            "--config-dir",
            r.dir.path().to_str().unwrap(),
            "--journal",
            r.dir.path().join("j.db").to_str().unwrap(),
            "rollback",
            first.as_str(),
            "--by",
            "carol",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(5),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let shed = r.journal.shed_tiers("local").unwrap();
    assert_eq!(shed.len(), 1);
    assert_eq!(
        (shed[0].0.as_str(), shed[0].2.as_str()),
        ("crawlers", later.as_str()),
        "the later run's shed stays"
    );
}

/// Regression: a rollback stored its plan and steps unredacted, so a literal Authorization
/// header of a traffic endpoint reached the journal through it (a run redacted its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_rollback_stores_no_literal_credential() {
    let r = rig(Mode::GoodAfter(2), "50ms").await;
    let env = r.dir.path().join("local.toml");
    let text = std::fs::read_to_string(&env).unwrap();
    let secret = "literal-edge-token-7f3a";
    let plain = "method = \"PUT\"\nheaders = { \"Content-Type\" = \"application/json\" }";
    assert_eq!(text.matches(plain).count(), 1, "the edge admin endpoint");
    let with_auth = text.replace(
        plain,
        &format!("method = \"PUT\"\nheaders = {{ \"Content-Type\" = \"application/json\", Authorization = \"Bearer {secret}\" }}"),
    );
    std::fs::write(&env, with_auth).unwrap();
    let (run_id, out, _) = run_runbook(
        r.dir.path(),
        "local",
        &runbook("shed-load.toml"),
        &r.journal,
        &[],
        "alice",
    )
    .await;
    assert!(out.succeeded);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_failover"))
        .current_dir(common::topo::repo())
        .args([
            "--config-dir",
            r.dir.path().to_str().unwrap(),
            "--journal",
            r.dir.path().join("j.db").to_str().unwrap(),
            "rollback",
            run_id.as_str(),
            "--by",
            "bob",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs = r.journal.runs(10).unwrap();
    assert_eq!(runs.len(), 2, "the run and its rollback");
    for run in &runs {
        let stored = format!("{}{}", run.plan, run.steps);
        assert!(
            stored.contains("<redacted>"),
            "{} stores its steps: {stored}",
            run.mode
        );
        assert!(
            !stored.contains(secret),
            "{} stored the credential",
            run.mode
        );
        for e in r.journal.events(&run.id).unwrap() {
            assert!(!e.data.to_string().contains(secret), "event {e:?}");
        }
    }
}
