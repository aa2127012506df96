//! The two read-only ports health probes need besides `Databases`: CloudWatch alarm states and
//! Route 53 health-check status.
//!
//! They live here rather than in `cloud` because only health detection reads them. Both return
//! the project's own types; `cloud::aws::cloudwatch` and `cloud::aws::health_checks` implement
//! them with the AWS SDK, and tests implement them with scripted values. Nothing here mutates
//! anything.

use crate::cloud::CloudError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::SystemTime;

/// Fraction of Route 53 checkers that must report success for a health check to be healthy:
/// Route 53 considers an endpoint healthy only if *more than* 18% of its checkers do.
pub const ROUTE53_HEALTHY_PERCENT: u32 = 18;

/// The state value of a CloudWatch alarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmValue {
    Ok,
    Alarm,
    InsufficientData,
    /// A value this tool does not know (a future state); treated as unknown.
    Other(String),
}

impl AlarmValue {
    /// From the wire spelling (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn from_wire(s: &str) -> Self {
        match s {
            "OK" => AlarmValue::Ok,
            "ALARM" => AlarmValue::Alarm,
            "INSUFFICIENT_DATA" => AlarmValue::InsufficientData,
            other => AlarmValue::Other(other.to_string()),
        }
    }
}

impl fmt::Display for AlarmValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlarmValue::Ok => f.write_str("OK"),
            AlarmValue::Alarm => f.write_str("ALARM"),
            AlarmValue::InsufficientData => f.write_str("INSUFFICIENT_DATA"),
            AlarmValue::Other(s) => f.write_str(s),
        }
    }
}

/// One CloudWatch alarm (metric or composite) as DescribeAlarms reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmState {
    pub name: String,
    pub value: AlarmValue,
    /// CloudWatch's own explanation of the state (`StateReason`).
    pub reason: String,
    /// When the alarm last changed state, if reported.
    pub updated: Option<SystemTime>,
}

/// CloudWatch alarms, read-only.
#[async_trait]
pub trait Alarms: Send + Sync {
    /// The state of each named alarm, metric or composite, with as few calls as possible
    /// (DescribeAlarms takes up to 100 names per call). Alarms that do not exist are absent from
    /// the result, never an error.
    async fn alarm_states(&self, names: &[String]) -> Result<Vec<AlarmState>, CloudError>;
}

/// What the Route 53 checkers currently say about one health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckStatus {
    pub id: String,
    /// Checkers that reported an observation.
    pub checkers: u32,
    /// Of those, how many report success.
    pub reporting_success: u32,
    /// One failing checker's report (e.g. `Failure: Connection timed out`), for the reason.
    pub sample_failure: Option<String>,
}

impl HealthCheckStatus {
    /// Route 53's own rule: healthy when more than 18% of the checkers report success.
    /// `None` when no checker has reported yet.
    pub fn is_healthy(&self) -> Option<bool> {
        if self.checkers == 0 {
            return None;
        }
        Some(self.reporting_success * 100 > ROUTE53_HEALTHY_PERCENT * self.checkers)
    }
}

/// Route 53 health checks, read-only.
#[async_trait]
pub trait HealthChecks: Send + Sync {
    /// GetHealthCheckStatus for one health check (bare id, as in the console).
    async fn health_check_status(&self, id: &str) -> Result<HealthCheckStatus, CloudError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(checkers: u32, ok: u32) -> HealthCheckStatus {
        HealthCheckStatus {
            id: "hc".into(),
            checkers,
            reporting_success: ok,
            sample_failure: None,
        }
    }

    #[test]
    fn route53_healthy_only_above_eighteen_percent() {
        // (checkers, reporting success, healthy?)
        let table = [
            (0, 0, None),
            (16, 0, Some(false)),
            (16, 2, Some(false)), // 12.5 %
            (16, 3, Some(true)),  // 18.75 %
            (50, 9, Some(false)), // exactly 18 %: not more than 18 %
            (50, 10, Some(true)), // 20 %
            (8, 8, Some(true)),
        ];
        for (checkers, ok, want) in table {
            assert_eq!(
                status(checkers, ok).is_healthy(),
                want,
                "{ok} of {checkers}"
            );
        }
    }

    #[test]
    fn alarm_values_from_the_wire() {
        assert_eq!(AlarmValue::from_wire("ALARM"), AlarmValue::Alarm);
        assert_eq!(AlarmValue::from_wire("OK"), AlarmValue::Ok);
        assert_eq!(
            AlarmValue::from_wire("INSUFFICIENT_DATA"),
            AlarmValue::InsufficientData
        );
        assert_eq!(
            AlarmValue::from_wire("MUTED"),
            AlarmValue::Other("MUTED".into())
        );
        assert_eq!(AlarmValue::from_wire("MUTED").to_string(), "MUTED");
    }
}
