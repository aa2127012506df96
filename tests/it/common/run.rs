//! Run a runbook through the library exactly as `failover run` does (bind, then the one run
//! lifecycle: plan, record, execute, finish), for tests that need the outcome as data. Polls
//! faster than the defaults so the tests stay quick.

use failover::app::lifecycle::{start_run, RunRequest};
use failover::app::record::RunHeader;
use failover::engine::RunOutcome;
use failover::env::Environment;
use failover::journal::Journal;
use failover::progress::Collect;
use failover::runbook::bind::{self, RunContext};
use failover::runbook::Runbook;
use failover::store::Store;
use failover::types::RunId;
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
) -> (RunId, RunOutcome, Arc<Collect>) {
    let env = Environment::load(config_dir, env_name).unwrap_or_else(|d| panic!("{d}"));
    let rb = Runbook::load(runbook).unwrap_or_else(|d| panic!("{d}"));
    let run_id = failover::journal::new_run_id();
    let ctx = RunContext {
        run_id: run_id.clone(),
        initiator: by.into(),
        mode: failover::status::RunMode::Run,
    };
    let given: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = bind::bind_params(&rb, &env, &given).unwrap_or_else(|d| panic!("{d}"));
    let steps = bind::bind(&rb, &env, &p, &ctx).unwrap_or_else(|d| panic!("{d}"));
    let ports = failover::app::wiring::aws_ports(&env).await.unwrap();
    let collect = Arc::new(Collect::default());
    let header = RunHeader {
        id: run_id.clone(),
        runbook: rb.name.clone(),
        runbook_path: runbook.display().to_string(),
        runbook_sha256: failover::journal::sha256_hex(rb.source.text.as_bytes()),
        environment: env.name.clone(),
        mode: failover::status::RunMode::Run,
        initiator: by.into(),
        params: serde_json::to_value(&p).unwrap(),
        of_run: None,
    };
    let req = RunRequest {
        poll_interval: Duration::from_millis(20),
        max_concurrency: 8,
        approval_poll: Duration::from_millis(20),
        ..RunRequest::new(header, steps, &env)
    };
    let store: Arc<dyn Store> = journal.clone();
    let result = start_run(&ports, &store, collect.clone(), req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (run_id, result.outcome, collect)
}

/// Record run `run_id` of `runbook` (environment `test`, by alice, no plan) with its `steps`,
/// for tests that drive the engine alone (`engine::execute`) and count the calls it makes.
pub fn record_bare_run(
    journal: &Journal,
    run_id: &RunId,
    runbook: &str,
    steps: &[failover::runbook::bind::BoundStep],
) {
    use failover::app::record::run_record;
    let header = RunHeader {
        id: run_id.clone(),
        runbook: runbook.into(),
        runbook_path: "rb.toml".into(),
        runbook_sha256: "-".into(),
        environment: "test".into(),
        mode: failover::status::RunMode::Run,
        initiator: "alice".into(),
        params: serde_json::json!({}),
        of_run: None,
    };
    let no_plan = failover::plan::Plan {
        runbook: runbook.into(),
        environment: "test".into(),
        steps: vec![],
    };
    journal
        .create_run(&run_record(&header, 0, &no_plan, steps))
        .unwrap();
}
