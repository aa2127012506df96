//! Zone and region health: probes, the pure quorum/hysteresis evaluator, and triggers.
//!
//! The parts, edges outermost:
//! - [`config`]: the `[health]` section of an environment (probes, quorum, hysteresis, trigger),
//!   parsed once with every problem reported at file:line:col;
//! - [`ports`]: the read-only `Alarms` (CloudWatch) and `HealthChecks` (Route 53) ports, beside
//!   the existing `Databases` and `HttpClient`; `cloud::aws` implements them;
//! - [`probes`]: one round of probes, concurrent, each with its timeout, on the injected clock;
//! - [`eval`]: the pure evaluator (no IO, no clock): rounds in, states and [`ZoneEvent`]s out,
//!   each with the reason; also the observer-suspect rule;
//! - [`detector`]: the loop that runs rounds on an interval and yields events;
//! - [`report`]: the snapshot `failover health` prints (text tables or JSON);
//! - [`trigger`]: the pure decision of `failover watch` (policy, cooldown, observer rule);
//! - [`assert`]: the pure check behind the `health.assert` step.
//!
//! The reference for users is `docs/health.md`.

pub mod assert;
pub mod config;
pub mod detector;
pub mod eval;
pub mod ports;
pub mod probes;
pub mod report;
pub mod trigger;

pub use config::{HealthConfig, Policy, Target, TriggerConfig};
pub use detector::{detector, snapshot, Detector};
pub use eval::{Became, Evaluator, Outcome, State, ZoneEvent};
pub use ports::{Alarms, HealthChecks};
pub use probes::{HealthPorts, LiveProber, Prober};
pub use report::{HealthReport, Scope};
pub use trigger::{decide, TriggerDecision, TriggerState};

use crate::cloud::CloudError;
use crate::env::Environment;

/// Why health detection cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("environment `{0}` has no [health] section, so there is nothing to probe")]
    NotConfigured(String),
    #[error("cannot set up the health probes: {0}")]
    Cloud(#[from] CloudError),
}

impl HealthError {
    /// What to do next.
    pub fn hint(&self) -> String {
        match self {
            HealthError::NotConfigured(env) => format!("add a [health] section with probes to config/{env}.toml; docs/health.md has a complete example"),
            HealthError::Cloud(e) => e.kind.hint().to_string(),
        }
    }
}

/// The environment's `[health]` section, or [`HealthError::NotConfigured`].
pub fn config_of(env: &Environment) -> Result<&HealthConfig, HealthError> {
    env.health
        .as_ref()
        .ok_or_else(|| HealthError::NotConfigured(env.name.clone()))
}

/// What `health.assert` steps read: a health report of the environment, after enough probe
/// rounds to confirm a state. A port, so the engine stays free of probes and clocks.
#[async_trait::async_trait]
pub trait HealthSource: Send + Sync {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String>;
}
