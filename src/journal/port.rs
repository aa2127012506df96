//! The SQLite journal behind the `Store` port. SQLite calls are short and local, so each async
//! method runs its synchronous counterpart in place; a write that waits for another process's
//! lock waits at most `WRITE_PATIENCE`. Intents are the exception on a multi-thread runtime:
//! concurrent ones are written together, one fsync for the group, while their callers await
//! (group commit, `group.rs`); on a current-thread runtime they are written in place too.

use super::group::PendingIntent;
use super::sqlite::Journal;
use crate::lease::Lease;
use crate::status::{RunStatus, StepStatus};
use crate::store::{
    Approval, Event, Fence, Head, InDoubt, LeaseRequest, MadeChange, Result, RunRecord, StepRecord,
    Store, VerifyReport,
};
use crate::types::RunId;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
impl Store for Journal {
    fn location(&self) -> String {
        self.path().display().to_string()
    }
    fn now_ms(&self) -> i64 {
        self.now()
    }
    async fn create_run(&self, r: &RunRecord) -> Result<()> {
        Journal::create_run(self, r)
    }
    async fn set_run_status(
        &self,
        run: &RunId,
        status: RunStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        Journal::set_run_status(self, run, status, error, finished)
    }
    async fn heartbeat(&self, run: &RunId, holder: &str) -> Result<()> {
        Journal::heartbeat(self, run, holder)
    }
    async fn run(&self, id_or_prefix: &str) -> Result<RunRecord> {
        Journal::run(self, id_or_prefix)
    }
    async fn run_exact(&self, id: &RunId) -> Result<RunRecord> {
        Journal::run_exact(self, id)
    }
    async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        Journal::runs(self, limit)
    }
    async fn init_step(
        &self,
        run: &RunId,
        step: &str,
        action: &str,
        status: StepStatus,
    ) -> Result<()> {
        Journal::init_step(self, run, step, action, status)
    }
    async fn step_started(&self, run: &RunId, step: &str, attempt: u32) -> Result<()> {
        Journal::step_started(self, run, step, attempt)
    }
    async fn set_step_status(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        Journal::set_step_status(self, run, step, status, message)
    }
    async fn step_finished(
        &self,
        run: &RunId,
        step: &str,
        status: StepStatus,
        message: Option<&str>,
    ) -> Result<()> {
        Journal::step_finished(self, run, step, status, message)
    }
    async fn steps(&self, run: &RunId) -> Result<Vec<StepRecord>> {
        Journal::steps(self, run)
    }
    async fn intent(
        &self,
        run: &RunId,
        step: &str,
        operation: &str,
        resource: &str,
        call: Value,
        fence: &Fence,
    ) -> Result<i64> {
        if !self.groups_intents() {
            return Journal::intent(self, run, step, operation, resource, call, fence);
        }
        let intent = PendingIntent {
            run_id: run.clone(),
            step_id: step.to_string(),
            operation: operation.to_string(),
            resource: resource.to_string(),
            call,
            // Usually the call's own keys (`fence_for`); the run's whole fence otherwise.
            fence: fence.clone(),
        };
        self.intent_grouped(intent).await
    }
    async fn outcome(
        &self,
        run: &RunId,
        step: &str,
        intent_seq: i64,
        operation: &str,
        resource: &str,
        result: Value,
    ) -> Result<i64> {
        Journal::outcome(self, run, step, intent_seq, operation, resource, result)
    }
    async fn note(&self, run: &RunId, step: Option<&str>, kind: &str, data: Value) -> Result<i64> {
        Journal::note(self, run, step, kind, data)
    }
    async fn events(&self, run: &RunId) -> Result<Vec<Event>> {
        Journal::events(self, run)
    }
    async fn open_intents(&self, run: &RunId) -> Result<Vec<Event>> {
        Journal::open_intents(self, run)
    }
    async fn in_doubt(&self, since_ms: i64) -> Result<Vec<InDoubt>> {
        Journal::in_doubt(self, since_ms)
    }
    async fn settle(&self, run: &RunId, step: &str, intent_seq: i64, how: &str) -> Result<()> {
        Journal::settle(self, run, step, intent_seq, how)
    }
    async fn changes_since(&self, since_ms: i64) -> Result<Vec<MadeChange>> {
        Journal::changes_since(self, since_ms)
    }
    async fn approve(&self, run: &RunId, step: &str, by: &str) -> Result<Approval> {
        Journal::approve(self, run, step, by)
    }
    async fn approvals(&self, run: &RunId, step: &str) -> Result<Vec<String>> {
        Journal::approvals(self, run, step)
    }
    async fn shed_tiers(&self, environment: &str) -> Result<Vec<(String, i64, RunId)>> {
        Journal::shed_tiers(self, environment)
    }
    async fn set_shed(
        &self,
        environment: &str,
        tier: &str,
        run: &RunId,
        step: &str,
        shed: bool,
    ) -> Result<()> {
        Journal::set_shed(self, environment, tier, run, step, shed)
    }
    async fn acquire(&self, req: &LeaseRequest) -> Result<Fence> {
        Journal::acquire(self, req)
    }
    async fn renew(&self, run: &RunId, fence: &Fence, holder: &str) -> Result<()> {
        Journal::renew(self, run, fence, holder)
    }
    async fn release(&self, run: &RunId) -> Result<()> {
        Journal::release(self, run)
    }
    async fn leases(&self) -> Result<Vec<Lease>> {
        Journal::leases(self)
    }
    async fn event_count(&self) -> Result<i64> {
        Journal::event_count(self)
    }
    async fn verify_chain(&self) -> Result<Option<i64>> {
        Journal::verify_chain(self)
    }
    async fn verify(&self, heads: &[Head]) -> Result<VerifyReport> {
        Journal::verify(self, heads)
    }
    async fn head(&self) -> Result<Option<Head>> {
        Journal::head(self)
    }
    async fn events_since(&self, since: i64, limit: usize) -> Result<Vec<Event>> {
        Journal::events_since(self, since, limit)
    }
}
