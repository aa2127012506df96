//! The one place that decides which adapters a use case talks to: the AWS adapters (a real
//! account, or a local peer through `endpoint_url`) wrapped in the retry policy, or the
//! simulated cloud of a topology. The engine never knows which.

use super::load::{LoadedEnv, Target};
use super::AppError;
use crate::clock::SystemClock;
use crate::cloud::aws::{self, AwsSettings};
use crate::cloud::http::ReqwestHttp;
use crate::cloud::rate::{MeterSet, RateLimiter};
use crate::cloud::retry::{
    RetryPolicy, RetryingDatabases, RetryingDns, RetryingGlobal, RetryingInventory,
    RetryingZonalShifts,
};
use crate::cloud::{Clock, CloudError};
use crate::env::Environment;
use crate::health::{config_of, snapshot, HealthError, HealthPorts, HealthReport, HealthSource};
use crate::ports::Ports;
use crate::store::Store;
use crate::types::RunId;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

impl LoadedEnv {
    /// Run `f` with this environment's ports: AWS adapters on the current runtime, or the
    /// simulated cloud on a runtime of its own (virtual time; `approvals` lets the topology's
    /// simulated second person approve gates of that run in that journal).
    pub async fn with_ports<T, F, Fut>(
        &self,
        approvals: Option<(Arc<dyn Store>, RunId)>,
        f: F,
    ) -> Result<T, AppError>
    where
        T: Send,
        F: FnOnce(Ports) -> Fut + Send,
        Fut: Future<Output = T>,
    {
        match &self.target {
            Target::Aws => {
                let ports = aws_ports(&self.env)
                    .await
                    .map_err(|e| AppError::cloud("cannot set up the AWS clients", e))?;
                Ok(f(ports).await)
            }
            Target::Simulated(t) => super::simulate::with_sim_ports(
                &t.topology,
                &t.faults,
                t.seed,
                &self.env,
                approvals,
                f,
            )
            .map_err(AppError::from),
        }
    }

    /// A cloud failure against this environment, with what is wrong with its AWS profile when
    /// the profile is not defined at all (the most common cause of "no credentials" at 3 a.m.).
    pub fn cloud_error(&self, doing: &str, error: CloudError) -> AppError {
        let hint = match (error.kind, &self.env.aws.profile) {
            (crate::cloud::ErrorKind::AccessDenied, Some(profile)) => {
                undefined_profile_hint(&self.env.name, profile)
            }
            _ => None,
        };
        AppError::Cloud {
            doing: doing.to_string(),
            error: Box::new(error),
            hint,
        }
    }
}

/// Names the files that should define `profile` when none of them does.
fn undefined_profile_hint(env: &str, profile: &str) -> Option<String> {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let files = [
        std::env::var_os("AWS_CONFIG_FILE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/config")),
        std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| home.join(".aws/credentials")),
    ];
    let defined = files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|t| {
            t.lines().any(|l| {
                let l = l.trim();
                l == format!("[{profile}]") || l == format!("[profile {profile}]")
            })
        })
    });
    (!defined).then(|| {
        format!(
            "environment `{env}` uses AWS profile `{profile}`, which is not defined in {} or {} (aws configure sso --profile {profile})",
            files[0].display(),
            files[1].display()
        )
    })
}

/// The AWS adapters of an environment, wrapped in the retry policy, on the wall clock.
pub async fn aws_ports(env: &Environment) -> Result<Ports, CloudError> {
    let settings = AwsSettings {
        region: env.region.clone(),
        profile: env.aws.profile.clone(),
        endpoint_url: env.aws.endpoint_url.clone(),
        operation_timeout: Duration::from_secs(30),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let limiter = Arc::new(RateLimiter::new(env.quotas.clone(), clock.clone()));
    let (db, dns) = aws::connect(&settings, limiter.clone()).await;
    let arc = aws::connect_arc(&settings, limiter.clone()).await;
    let policy = RetryPolicy {
        max_attempts: env.settings.max_attempts,
        ..RetryPolicy::default()
    };
    let http = ReqwestHttp::new()?;
    let meter = MeterSet::of(limiter.clone());
    Ok(Ports {
        global: global_port(env, &settings, policy.clone(), clock.clone(), &meter),
        metrics: Some(Arc::new(aws::AwsMetrics::new(
            settings.clone(),
            clock.clone(),
            limiter.clone(),
        ))),
        db: Arc::new(RetryingDatabases::new(
            Arc::new(db),
            policy.clone(),
            clock.clone(),
            None,
        )),
        dns: Arc::new(RetryingDns::new(
            Arc::new(dns),
            policy.clone(),
            clock.clone(),
            None,
        )),
        arc: Arc::new(RetryingZonalShifts::new(
            Arc::new(arc),
            policy,
            clock.clone(),
            None,
        )),
        http: Arc::new(http),
        clock,
        health: env.health.as_ref().map(|_| {
            Arc::new(LiveHealth {
                env: env.clone(),
                meter: Some(meter.clone()),
            }) as Arc<dyn HealthSource>
        }),
        meter,
    })
}

/// The global database port of an environment that spans several regions (each call on the
/// endpoint of the region it names, retried like the RDS calls); `None` for one region.
fn global_port(
    env: &Environment,
    settings: &AwsSettings,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    meter: &Arc<MeterSet>,
) -> Option<Arc<dyn crate::cloud::GlobalDatabases>> {
    if env.regions.len() < 2 {
        return None;
    }
    let aws = aws::AwsGlobalDatabases::new(settings.clone(), env.quotas.clone(), clock.clone())
        .metered(meter.clone());
    Some(Arc::new(RetryingGlobal::new(
        Arc::new(aws),
        policy,
        clock,
        None,
    )))
}

/// Builds the probe edges for an environment: an HTTP client without connection reuse, and
/// the AWS clients (CloudWatch, RDS, Route 53) that its probes need, on the wall clock, with
/// the limiter that paces and counts their AWS calls. Nothing is called here; missing
/// credentials show up as `unknown` probes in the first round.
pub async fn health_ports(
    env: &Environment,
) -> Result<(HealthPorts, Arc<RateLimiter>), HealthError> {
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
    // Probes have their own limiter: a health round must not wait behind a run's calls.
    // (GetHealthCheckStatus's own stricter quota, 4 and 1 a second, is kept by `[health]`
    // itself: it refuses intervals that would exceed it, so a round is never held back.)
    let limiter = RateLimiter::on_wall_clock(env.quotas.clone());
    if needs("cloudwatch_alarm") {
        ports = ports.with_alarms(Arc::new(
            aws::cloudwatch::AwsAlarms::connect(&settings, limiter.clone()).await,
        ));
    }
    if needs("rds") {
        let (db, _) = aws::connect(&settings, limiter.clone()).await;
        ports = ports.with_databases(Arc::new(db));
    }
    if needs("route53_health_check") {
        ports = ports.with_health_checks(Arc::new(
            aws::health_checks::AwsHealthChecks::connect(&settings, limiter.clone()).await,
        ));
    }
    Ok((ports, limiter))
}

/// [`health_ports`] whose AWS calls are also counted in `meter` (a run's health assertion: the
/// run reports them with its own calls).
pub async fn health_ports_counted(
    env: &Environment,
    meter: Option<&MeterSet>,
) -> Result<HealthPorts, HealthError> {
    let (ports, limiter) = health_ports(env).await?;
    if let Some(m) = meter {
        m.add(limiter);
    }
    Ok(ports)
}

/// The live source: the environment's probes, on the wall clock.
pub struct LiveHealth {
    pub env: Environment,
    /// Where the probes' AWS calls are counted too (the run's calls), if anywhere.
    pub meter: Option<Arc<MeterSet>>,
}

#[async_trait::async_trait]
impl HealthSource for LiveHealth {
    async fn report(&self, rounds: Option<u32>) -> Result<HealthReport, String> {
        let cfg = config_of(&self.env).map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        let rounds = rounds.unwrap_or(cfg.unhealthy_after.max(cfg.healthy_after));
        let ports = health_ports_counted(&self.env, self.meter.as_deref())
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))?;
        snapshot(&self.env, ports, rounds)
            .await
            .map_err(|e| format!("{e}\n  hint: {}", e.hint()))
    }
}

/// The read-only ports of `failover discover`: the account's listing and Route 53, both retried
/// on throttling and transient errors as a run's reads are, paced and counted by one limiter of
/// AWS's default quotas.
pub async fn inventory_ports(
    settings: &AwsSettings,
) -> (
    Arc<dyn crate::cloud::Inventory>,
    Arc<dyn crate::cloud::Dns>,
    Arc<dyn crate::cloud::CallMeter>,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let limiter = Arc::new(RateLimiter::new(Default::default(), clock.clone()));
    let (inventory, dns) = aws::connect_inventory(settings, limiter.clone()).await;
    let dns = RetryingDns::new(Arc::new(dns), RetryPolicy::default(), clock.clone(), None);
    let inventory =
        RetryingInventory::new(Arc::new(inventory), RetryPolicy::default(), clock, None);
    (Arc::new(inventory), Arc::new(dns), limiter)
}
