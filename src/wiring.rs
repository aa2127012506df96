//! Builds the ports for an environment: the AWS adapters (a real account, or a local peer
//! through `endpoint_url`) wrapped in the retry policy. The one place that decides which
//! adapters a run talks to; the engine never knows.

use crate::clock::SystemClock;
use crate::cloud::aws::{self, AwsSettings};
use crate::cloud::http::ReqwestHttp;
use crate::cloud::retry::{RetryPolicy, RetryingDatabases, RetryingDns};
use crate::cloud::{Clock, CloudError};
use crate::env::Environment;
use crate::health::{config_of, snapshot, HealthError, HealthPorts, HealthReport, HealthSource};
use crate::ports::Ports;
use std::sync::Arc;
use std::time::Duration;

pub async fn aws_ports(env: &Environment) -> Result<Ports, CloudError> {
    let settings = AwsSettings {
        region: env.region.clone(),
        profile: env.aws.profile.clone(),
        endpoint_url: env.aws.endpoint_url.clone(),
        operation_timeout: Duration::from_secs(30),
    };
    let (db, dns) = aws::connect(&settings).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = RetryPolicy {
        max_attempts: env.settings.max_attempts,
        ..RetryPolicy::default()
    };
    let http = ReqwestHttp::new()?;
    Ok(Ports {
        db: Arc::new(RetryingDatabases::new(
            Arc::new(db),
            policy.clone(),
            clock.clone(),
            None,
        )),
        dns: Arc::new(RetryingDns::new(Arc::new(dns), policy, clock.clone(), None)),
        http: Arc::new(http),
        clock,
        health: env
            .health
            .as_ref()
            .map(|_| Arc::new(LiveHealth { env: env.clone() }) as Arc<dyn HealthSource>),
    })
}

/// Builds the probe edges for an environment: an HTTP client without connection reuse, and
/// the AWS clients (CloudWatch, RDS, Route 53) that its probes need, on the wall clock. Nothing
/// is called here; missing credentials show up as `unknown` probes in the first round.
pub async fn health_ports(env: &Environment) -> Result<HealthPorts, HealthError> {
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

/// The live source: the environment's probes, on the wall clock.
pub struct LiveHealth {
    pub env: Environment,
}

#[async_trait::async_trait]
impl HealthSource for LiveHealth {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String> {
        let cfg = config_of(&self.env).map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        let rounds = rounds.unwrap_or(cfg.unhealthy_after.max(cfg.healthy_after));
        let ports = health_ports(&self.env)
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        snapshot(&self.env, ports, rounds)
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))
    }
}
