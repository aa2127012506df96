//! Run a runbook through the library exactly as `failover run` does (bind, plan, journal,
//! execute), for tests that need the outcome as data.

use failover::engine::{self, progress::Collect, RunOutcome, RunSpec};
use failover::env::Environment;
use failover::journal::{Journal, RunRecord};
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub async fn run_runbook(
    config_dir: &Path,
    env_name: &str,
    runbook: &Path,
    journal: &Arc<Journal>,
    params: &[(&str, &str)],
    by: &str,
) -> (String, RunOutcome, Arc<Collect>) {
    let env = Environment::load(config_dir, env_name).unwrap_or_else(|d| panic!("{d}"));
    let rb = Runbook::load(runbook).unwrap_or_else(|d| panic!("{d}"));
    let run_id = failover::journal::new_run_id();
    let ctx = RunContext {
        run_id: run_id.clone(),
        initiator: by.into(),
        mode: "run".into(),
    };
    let given: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = bind::bind_params(&rb, &env, &given).unwrap_or_else(|d| panic!("{d}"));
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap_or_else(|d| panic!("{d}"));
    let ports = failover::wiring::aws_ports(&env).await.unwrap();
    let plan = engine::plan_run(&ports, &rb.name, &env.name, &run_id, &steps)
        .await
        .unwrap();
    journal
        .create_run(&RunRecord {
            id: run_id.clone(),
            runbook: rb.name.clone(),
            runbook_path: runbook.display().to_string(),
            runbook_sha256: "-".into(),
            environment: env.name.clone(),
            mode: "run".into(),
            initiator: by.into(),
            params: serde_json::to_value(&p).unwrap(),
            status: "running".into(),
            started_at: failover::journal::now_ms(),
            ended_at: None,
            error: None,
            plan: serde_json::to_value(&plan).unwrap(),
            steps: serde_json::to_value(&steps).unwrap(),
        })
        .unwrap();
    let collect = Arc::new(Collect::default());
    let spec = RunSpec {
        run_id: run_id.clone(),
        initiator: by.into(),
        steps,
        poll_interval: Duration::from_millis(20),
        max_concurrency: 8,
        approval_poll: Duration::from_millis(20),
    };
    let out = engine::execute(ports, journal.clone(), spec, collect.clone()).await;
    journal
        .set_run_status(
            &run_id,
            if out.succeeded { "succeeded" } else { "failed" },
            None,
            true,
        )
        .unwrap();
    (run_id, out, collect)
}
