//! AWS adapters: the `Databases` and `Dns` ports implemented with the AWS SDK for Rust.
//!
//! This module is the only place that imports an `aws-sdk-*` crate. It builds the SDK clients
//! ([`connect`]), implements the ports in [`rds`] and [`route53`], and maps every SDK failure
//! onto the project's [`CloudError`] with one [`ErrorKind`] ([`cloud_error`]).
//!
//! The SDK's own retries are disabled: `cloud::retry` is the one place that decides whether a
//! failed call is tried again, because only it knows whether the call mutates the world. The SDK
//! keeps an operation timeout so that a hung connection surfaces as a `Transient` error.
//!
//! Pointing `endpoint_url` at a local peer (moto) with no profile and no `AWS_ACCESS_KEY_ID` in
//! the environment uses static `test`/`test` credentials, so rehearsals and tests need no AWS
//! account.

pub mod arc;
pub mod cloudwatch;
pub mod config;
pub mod error;
pub mod global;
pub mod health_checks;
pub mod inventory;
pub mod rds;
pub mod route53;
pub mod seed;

pub use arc::AwsZonalShifts;
pub use config::{route53_region, AwsSettings, DEFAULT_OPERATION_TIMEOUT, ROUTE53_REGION};
pub use error::cloud_error;
pub use global::{AwsGlobalDatabases, AwsMetrics};
pub use inventory::AwsInventory;
pub use rds::AwsDatabases;
pub use route53::AwsDns;

use crate::cloud::rate::RateLimiter;
use aws_config::Region;
use std::sync::Arc;

/// Builds the RDS and Route 53 adapters for `settings`, both paced (and counted) by `limiter`.
///
/// Nothing is called here: missing credentials or an unreachable endpoint show up on the first
/// call, classified (`AccessDenied`, `Transient`).
pub async fn connect(settings: &AwsSettings, limiter: Arc<RateLimiter>) -> (AwsDatabases, AwsDns) {
    let (rds, r53) = clients(settings).await;
    (
        AwsDatabases::with_limiter(rds, limiter.clone()),
        AwsDns::with_limiter(r53, limiter),
    )
}

/// The ARC zonal shift adapter of the settings' region, paced by `limiter` (its ARC bucket).
pub async fn connect_arc(settings: &AwsSettings, limiter: Arc<RateLimiter>) -> AwsZonalShifts {
    let sdk = config::sdk_config(settings).await;
    AwsZonalShifts::with_limiter(aws_sdk_arczonalshift::Client::new(&sdk), limiter)
}

/// The read-only listing of the account (`failover discover`), with the Route 53 adapter for
/// hosted zones and records; both paced by `limiter`.
pub async fn connect_inventory(
    settings: &AwsSettings,
    limiter: Arc<RateLimiter>,
) -> (AwsInventory, AwsDns) {
    let (rds, r53) = clients(settings).await;
    (
        AwsInventory::new(rds, r53.clone(), limiter.clone()),
        AwsDns::with_limiter(r53, limiter),
    )
}

/// The RDS client (the settings' region) and the Route 53 client (its control plane's region).
async fn clients(settings: &AwsSettings) -> (aws_sdk_rds::Client, aws_sdk_route53::Client) {
    let sdk = config::sdk_config(settings).await;
    let rds = aws_sdk_rds::Client::new(&sdk);
    let mut r53 = aws_sdk_route53::config::Builder::from(&sdk);
    r53.set_region(Some(Region::new(route53_region(
        &settings.region,
        settings.endpoint_url.is_some(),
    ))));
    (rds, aws_sdk_route53::Client::from_conf(r53.build()))
}
