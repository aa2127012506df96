//! The AZ evacuation runbook, run for real through the AWS SDK against moto_server, with a
//! counting proxy in front of moto so the test sees every call that reached the peer.
//!
//! Topology (seeded from config/local.toml): three Aurora clusters with one instance per zone,
//! writers in us-west-2a, b and c; a Multi-AZ MySQL instance in us-west-2a; three records.

use crate::common;

use common::rig::{record_sets, writer_zones, MotoRig};
use common::topo;
use failover::engine;
use failover::journal::Journal;
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use failover::status::{RunMode, StepStatus};
use failover::types::RunId;
use std::sync::Arc;

type Rig = MotoRig;

async fn rig() -> Rig {
    MotoRig::start(None).await
}

fn runbook() -> Runbook {
    Runbook::load(&topo::repo().join("runbooks/az-evacuation.toml"))
        .unwrap_or_else(|d| panic!("{d}"))
}

/// Run the runbook live the way `failover run` does; returns the run id and outcome.
async fn run_live(
    r: &Rig,
    journal: &Arc<Journal>,
    params: &[(&str, &str)],
    by: &str,
) -> (RunId, engine::RunOutcome) {
    let (id, out, _) = common::run::run_runbook(
        r.cfg.path(),
        "local",
        &topo::repo().join("runbooks/az-evacuation.toml"),
        journal,
        params,
        by,
    )
    .await;
    (id, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evacuation_moves_writers_and_records_out_of_the_failed_zone() {
    let r = rig().await;
    let before_writers = writer_zones(&r.moto_url()).await;
    assert_eq!(before_writers["orders-db"], "us-west-2a");
    assert_eq!(before_writers["catalog-db"], "us-west-2b");
    assert_eq!(before_writers["sessions-db"], "us-west-2c");
    let before_records = record_sets(&r.moto_url()).await;

    // The steps decide on the plan's read while it is fresh: a generous bound, so a slow
    // machine does not turn the reads counted below into the steps' own.
    let env_file = r.cfg.path().join("local.toml");
    let text = std::fs::read_to_string(&env_file).unwrap();
    let text = text.replace(
        "poll_interval = \"50ms\"",
        "poll_interval = \"50ms\"\nplan_fresh_for = \"60s\"",
    );
    std::fs::write(&env_file, text).unwrap();
    let journal = Arc::new(Journal::open(&r.cfg.journal()).unwrap());
    let (run_id, out) = run_live(&r, &journal, &[("failed_az", "us-west-2a")], "alice").await;
    assert!(out.succeeded, "{:#?}", out);
    // Issue 11: the failover steps make their calls on the plan's read (one DescribeDBClusters,
    // the clusters' members and the Multi-AZ instance: two DescribeDBInstances), without a read
    // of their own; the Aurora wait then reads the clusters only.
    let calls = r.proxy.calls();
    let before = |read: &str, call: &str| {
        let first = calls
            .iter()
            .position(|c| c == call)
            .expect("the call is made");
        calls[..first].iter().filter(|c| *c == read).count()
    };
    // Plus, maybe, the DNS step's: it starts beside the failovers (records_after) and reads
    // the clusters its records depend on, before or after the failover call goes out.
    assert!(
        (1..=2).contains(&before("DescribeDBClusters", "FailoverDBCluster")),
        "{calls:?}"
    );
    assert_eq!(
        before("DescribeDBInstances", "RebootDBInstance"),
        2,
        "{calls:?}"
    );

    // Every writer is out of the failed zone; untouched clusters are untouched.
    let after = writer_zones(&r.moto_url()).await;
    assert_eq!(
        after["orders-db"], "us-west-2b",
        "the tier-1 reader in the first healthy zone"
    );
    assert_eq!(after["catalog-db"], "us-west-2b");
    assert_eq!(after["sessions-db"], "us-west-2c");
    let failovers: Vec<String> = r
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c == "FailoverDBCluster")
        .collect();
    assert_eq!(
        failovers.len(),
        1,
        "only the cluster whose writer was in the failed zone fails over"
    );

    // Records point at healthy zones; records already healthy are untouched.
    let recs = record_sets(&r.moto_url()).await;
    assert_eq!(
        recs["api.shop.example.com. CNAME"].0,
        vec!["api-b.lb.shop.example.com"]
    );
    assert_eq!(
        recs["checkout.shop.example.com. CNAME"].0,
        vec!["checkout-b.lb.shop.example.com"]
    );
    assert_eq!(recs["www.shop.example.com. A [us-west-2a]"].1, Some(0));
    assert_eq!(
        recs["www.shop.example.com. A [us-west-2b]"],
        before_records["www.shop.example.com. A [us-west-2b]"]
    );
    assert_eq!(
        recs["www.shop.example.com. A [us-west-2c]"],
        before_records["www.shop.example.com. A [us-west-2c]"]
    );

    // Multi-AZ instance: the reboot with failover was requested (moto cannot move it).
    assert_eq!(
        r.proxy
            .calls()
            .iter()
            .filter(|c| *c == "RebootDBInstance")
            .count(),
        1
    );

    // Notifications went out with the templated body.
    let got = r.sink.received();
    assert!(
        got.iter().any(|g| g.path == "/status"
            && g.body.contains("us-west-2a")
            && g.body.contains(run_id.as_str())),
        "{got:?}"
    );
    assert!(got.iter().any(|g| g.path == "/chat"));

    // Journal: every intent has an outcome, and every mutating call that reached the peer has
    // an intent written before it.
    assert!(journal.open_intents(&run_id).unwrap().is_empty());
    let events = journal.events(&run_id).unwrap();
    let intents: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "intent" && !e.operation.as_deref().unwrap_or("").starts_with("HTTP"))
        .collect();
    assert_eq!(
        intents.len(),
        r.proxy.mutating().len(),
        "intents {:?} vs calls {:?}",
        intents.iter().map(|e| &e.operation).collect::<Vec<_>>(),
        r.proxy.mutating()
    );
    assert_eq!(journal.verify_chain().unwrap(), None);

    // A second run does nothing to the databases or DNS: everything is already as wanted.
    r.proxy.clear();
    let (_, out2) = run_live(&r, &journal, &[("failed_az", "us-west-2a")], "alice").await;
    assert!(out2.succeeded);
    // Snapshots are per run (their ids carry the run id). RebootDBInstance is excluded because
    // moto never moves a Multi-AZ instance's zone (shared/MOTO.md), so the instance still looks
    // like it is in the failed zone; the "already moved: nothing to do" path of that step is
    // covered by steps::rds unit tests.
    let again: Vec<String> = r
        .proxy
        .mutating()
        .into_iter()
        .filter(|c| !c.starts_with("CreateDB") && c != "RebootDBInstance")
        .collect();
    assert!(
        again.is_empty(),
        "a second run must not fail over or change DNS again: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_makes_zero_mutating_calls() {
    let r = rig().await;
    let env = r.cfg.env();
    let rb = runbook();
    let ctx = RunContext {
        run_id: "plan-test".into(),
        initiator: "alice".into(),
        mode: RunMode::Plan,
    };
    let p = bind::bind_params(&rb, &env, &[("failed_az".into(), "us-west-2a".into())]).unwrap();
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap();
    let ports = failover::app::wiring::aws_ports(&env).await.unwrap();
    let plan = engine::plan_run(&ports, &rb.name, &env.name, &ctx.run_id, &steps)
        .await
        .unwrap();
    let calls = r.proxy.calls();
    assert!(!calls.is_empty(), "the dry run must read the world");
    assert_eq!(r.proxy.mutating(), Vec::<String>::new(), "calls: {calls:?}");
    // Few describe calls: one DescribeDBClusters for all three clusters.
    assert_eq!(
        calls.iter().filter(|c| *c == "DescribeDBClusters").count(),
        1,
        "{calls:?}"
    );
    // The plan has the calls a live run would make.
    let ops: Vec<String> = plan
        .steps
        .iter()
        .flat_map(|s| s.decision.calls.iter().map(|c| c.operation()))
        .collect();
    assert_eq!(ops.iter().filter(|o| *o == "FailoverDBCluster").count(), 1);
    assert_eq!(
        ops.iter()
            .filter(|o| *o == "ChangeResourceRecordSets")
            .count(),
        1
    );
    assert!(
        r.sink.received().is_empty(),
        "a dry run sends no notification"
    );
    // Nothing changed in moto.
    assert_eq!(writer_zones(&r.moto_url()).await["orders-db"], "us-west-2a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_records_exactly() {
    let r = rig().await;
    let before = record_sets(&r.moto_url()).await;
    let journal = Arc::new(Journal::open(&r.cfg.journal()).unwrap());
    let (run_id, out) = run_live(&r, &journal, &[("failed_az", "us-west-2a")], "alice").await;
    assert!(out.succeeded);
    assert_ne!(record_sets(&r.moto_url()).await, before);
    // Run the real binary for the rollback, as an SRE would.
    let bin = env!("CARGO_BIN_EXE_failover");
    let o = tokio::process::Command::new(bin)
        .args([
            "--config-dir",
            r.cfg.path().to_str().unwrap(),
            "--journal",
            r.cfg.journal().to_str().unwrap(),
            "rollback",
            run_id.as_str(),
            "--by",
            "bob",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        record_sets(&r.moto_url()).await,
        before,
        "every record is back exactly as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eligible_reader_is_reported_and_other_clusters_still_move() {
    let r = rig().await;
    // Evacuating a and b leaves only c: orders-db (writer a) and catalog-db (writer b) have a
    // reader in c; delete catalog-db's reader in c so it has none.
    let (rds, _) = topo::clients(&r.moto_url()).await;
    rds.delete_db_instance()
        .db_instance_identifier("catalog-db-c")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    r.proxy.clear();
    let journal = Arc::new(Journal::open(&r.cfg.journal()).unwrap());
    let (_, out) = run_live(
        &r,
        &journal,
        &[("failed_az", "us-west-2a,us-west-2b")],
        "alice",
    )
    .await;
    assert!(!out.succeeded);
    let (_, st, msg) = out
        .steps
        .iter()
        .find(|(id, _, _)| id.as_str() == "failover-aurora")
        .unwrap();
    assert_eq!(*st, StepStatus::Failed);
    let msg = msg.clone().unwrap();
    assert!(
        msg.contains("cluster `catalog-db`: no eligible reader in a healthy zone (us-west-2c)"),
        "{msg}"
    );
    // orders-db still moved to c.
    assert_eq!(writer_zones(&r.moto_url()).await["orders-db"], "us-west-2c");
    // The record that depends on catalog-db did not move because its failover failed; the
    // DNS step says so (records that depend on no failed database move as theirs do).
    let (_, st, msg) = out
        .steps
        .iter()
        .find(|(id, _, _)| id.as_str() == "repoint-dns")
        .unwrap();
    assert_eq!(*st, StepStatus::Failed);
    let msg = msg.clone().unwrap();
    assert!(
        msg.contains("record api.shop.example.com. was not moved: the writer of `catalog-db` is still in us-west-2b")
            && msg.contains("did not succeed (failover-aurora)"),
        "{msg}"
    );
}
