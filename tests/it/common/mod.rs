//! Helpers shared by the integration tests.

pub mod moto;
pub mod proxy;
pub mod rig;
pub mod run;
pub mod sink;
pub mod topo;

/// Compare `got` with `tests/it/snapshots/NAME`; `UPDATE_SNAPSHOTS=1` writes it instead.
pub fn snapshot(name: &str, got: &str) {
    let path = topo::repo().join("tests/it/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    if want != got {
        let diff = similar::TextDiff::from_lines(&want, got)
            .unified_diff()
            .to_string();
        panic!(
            "{} differs (UPDATE_SNAPSHOTS=1 rewrites it):\n{diff}",
            path.display()
        );
    }
}

/// A zonal shift port for runbooks with no ARC step: any call is a bug of the test.
pub struct NoArc;

#[async_trait::async_trait]
impl failover::cloud::ZonalShifts for NoArc {
    async fn get_managed_resource(
        &self,
        _: &str,
    ) -> Result<failover::cloud::ManagedResource, failover::cloud::CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn list_zonal_shifts(
        &self,
        _: &str,
    ) -> Result<Vec<failover::cloud::ZonalShift>, failover::cloud::CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn start_zonal_shift(
        &self,
        _: &str,
        _: &str,
        _: std::time::Duration,
        _: &str,
    ) -> Result<failover::cloud::ZonalShift, failover::cloud::CloudError> {
        unreachable!("not used by this runbook")
    }
    async fn cancel_zonal_shift(
        &self,
        _: &str,
    ) -> Result<Option<failover::cloud::ZonalShift>, failover::cloud::CloudError> {
        unreachable!("not used by this runbook")
    }
}

/// The line a `failover run` prints with its AWS call counts (`Made N AWS call(s): ...`).
pub fn call_count_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("Made ") && l.contains("AWS call(s):"))
        .unwrap_or_else(|| panic!("no call count: {out}"))
}

/// Where in a simulation's timeline step `step` started.
pub fn step_started(r: &failover::app::simulate::SimReport, step: &str) -> usize {
    use failover::cloud::sim::Event;
    use failover::progress::Progress;
    r.timeline
        .iter()
        .position(|e| matches!(&e.event, Event::Engine { progress: Progress::StepStarted { step: s, .. } } if s == step))
        .unwrap_or_else(|| panic!("step `{step}` did not start"))
}
