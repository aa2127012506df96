//! Builds the ports for an environment: the AWS adapters (a real account, or a local peer
//! through `endpoint_url`) wrapped in the retry policy. The one place that decides which
//! adapters a run talks to; the engine never knows.

use crate::cloud::aws::{self, AwsSettings};
use crate::cloud::http::ReqwestHttp;
use crate::cloud::retry::{RetryPolicy, RetryingDatabases, RetryingDns};
use crate::cloud::{Clock, CloudError, SystemClock};
use crate::engine::Ports;
use crate::env::Environment;
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
        health: env.health.as_ref().map(|_| {
            Arc::new(crate::health::LiveHealth { env: env.clone() })
                as Arc<dyn crate::health::HealthSource>
        }),
    })
}
