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
pub use detector::{Detector, TokioClock};
pub use eval::{Became, Evaluator, Outcome, State, ZoneEvent};
pub use ports::{Alarms, HealthChecks};
pub use probes::{HealthPorts, LiveProber, Prober};
pub use report::{HealthReport, Scope};
pub use trigger::{decide, TriggerDecision, TriggerState};

use crate::cloud::aws::{self, AwsSettings};
use crate::cloud::{CloudError, SystemClock};
use crate::env::Environment;
use std::sync::Arc;
use std::time::Duration;

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

/// Builds the probe edges for an environment: an HTTP client without connection reuse, and
/// the AWS clients (CloudWatch, RDS, Route 53) that its probes need, on the wall clock. Nothing
/// is called here; missing credentials show up as `unknown` probes in the first round.
pub async fn connect(env: &Environment) -> Result<HealthPorts, HealthError> {
    let cfg = config_of(env)?;
    let longest = cfg
        .probes
        .iter()
        .map(|p| p.timeout)
        .max()
        .unwrap_or(cfg.timeout);
    let settings = AwsSettings {
        region: env.region.clone(),
        profile: env.aws.profile.clone(),
        endpoint_url: env.aws.endpoint_url.clone(),
        operation_timeout: longest.max(Duration::from_millis(100)),
    };
    let needs = |kind: &str| cfg.probes.iter().any(|p| p.check.kind() == kind);
    let mut ports = HealthPorts::new(Arc::new(SystemClock), longest)?;
    if needs("cloudwatch_alarm") {
        ports = ports.with_alarms(Arc::new(
            aws::cloudwatch::AwsAlarms::connect(&settings).await,
        ));
    }
    if needs("rds") {
        let (db, _) = aws::connect(&settings).await;
        ports = ports.with_databases(Arc::new(db));
    }
    if needs("route53_health_check") {
        ports = ports.with_health_checks(Arc::new(
            aws::health_checks::AwsHealthChecks::connect(&settings).await,
        ));
    }
    Ok(ports)
}

/// A detector for `env` over `ports` (live probes, on the ports' clock).
pub fn detector(env: &Environment, ports: HealthPorts) -> Result<Detector, HealthError> {
    let cfg = config_of(env)?.clone();
    let clock = ports.clock.clone();
    Ok(Detector::new(
        Scope::of(env),
        cfg,
        Arc::new(LiveProber::new(ports)),
        clock,
    ))
}

/// `rounds` rounds of probes at the configured interval (at least one; the first at once),
/// then the report. One round shows what every probe sees now; `unhealthy_after` rounds let a
/// failing zone be declared unhealthy.
pub async fn snapshot(
    env: &Environment,
    ports: HealthPorts,
    rounds: u32,
) -> Result<HealthReport, HealthError> {
    let mut det = detector(env, ports)?;
    for _ in 0..rounds.max(1) {
        det.next_round().await;
    }
    Ok(det.report())
}

/// What `health.assert` steps read: a health report of the environment, after enough probe
/// rounds to confirm a state. A port, so the engine stays free of probes and clocks.
#[async_trait::async_trait]
pub trait HealthSource: Send + Sync {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String>;
}

/// The live source: the environment's probes, on the wall clock.
pub struct LiveHealth {
    pub env: Environment,
}

#[async_trait::async_trait]
impl HealthSource for LiveHealth {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String> {
        let cfg = config_of(&self.env).map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        let rounds = rounds.unwrap_or(cfg.unhealthy_after.max(cfg.healthy_after));
        let ports = connect(&self.env)
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        snapshot(&self.env, ports, rounds)
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))
    }
}
