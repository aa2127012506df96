//! The status RDS reports for a DB cluster, a DB instance or a snapshot, as a type.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// What DescribeDBClusters, DescribeDBInstances or Describe*Snapshots say a resource is doing,
/// in AWS's own spelling (`available`, `failing-over`, ...). The values the tool decides on
/// have a variant; anything else AWS may say (`storage-optimization`, `stopped`, ...) is kept
/// as [`DbStatus::Other`] with its text, so it is shown as AWS said it.
///
/// Serialised, displayed and compared as the AWS string: `Other("available")` equals
/// `Available` (build one with `DbStatus::from`, which picks the variant).
#[derive(Clone, Debug)]
pub enum DbStatus {
    /// Ready: RDS accepts a failover, a reboot or a snapshot.
    Available,
    /// A cluster or instance taking a backup.
    BackingUp,
    /// A snapshot being taken (or a resource being created).
    Creating,
    /// A cluster or Multi-AZ instance failing over.
    FailingOver,
    Modifying,
    /// A Multi-AZ instance rebooting (with failover).
    Rebooting,
    /// A snapshot that failed.
    Failed,
    /// What some peers report for a snapshot that failed.
    Error,
    /// Any other status, as AWS spelled it.
    Other(String),
}

impl DbStatus {
    /// The AWS spelling.
    pub fn as_str(&self) -> &str {
        match self {
            DbStatus::Available => "available",
            DbStatus::BackingUp => "backing-up",
            DbStatus::Creating => "creating",
            DbStatus::FailingOver => "failing-over",
            DbStatus::Modifying => "modifying",
            DbStatus::Rebooting => "rebooting",
            DbStatus::Failed => "failed",
            DbStatus::Error => "error",
            DbStatus::Other(s) => s,
        }
    }

    /// `available`: RDS accepts a failover, a reboot or a snapshot.
    pub fn is_available(&self) -> bool {
        *self == DbStatus::Available
    }

    /// A Multi-AZ instance's failover under way: `failing-over`, or `rebooting` (a failover of
    /// an instance is a reboot with failover).
    pub fn is_failing_over(&self) -> bool {
        *self == DbStatus::FailingOver || *self == DbStatus::Rebooting
    }

    /// A snapshot that will never become available: `failed` or `error`.
    pub fn is_failed(&self) -> bool {
        *self == DbStatus::Failed || *self == DbStatus::Error
    }
}

impl From<&str> for DbStatus {
    fn from(s: &str) -> Self {
        match s {
            "available" => DbStatus::Available,
            "backing-up" => DbStatus::BackingUp,
            "creating" => DbStatus::Creating,
            "failing-over" => DbStatus::FailingOver,
            "modifying" => DbStatus::Modifying,
            "rebooting" => DbStatus::Rebooting,
            "failed" => DbStatus::Failed,
            "error" => DbStatus::Error,
            other => DbStatus::Other(other.to_string()),
        }
    }
}

impl From<String> for DbStatus {
    fn from(s: String) -> Self {
        match DbStatus::from(s.as_str()) {
            DbStatus::Other(_) => DbStatus::Other(s),
            known => known,
        }
    }
}

impl FromStr for DbStatus {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DbStatus::from(s))
    }
}

impl PartialEq for DbStatus {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for DbStatus {}

impl Hash for DbStatus {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Display for DbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for DbStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DbStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DbStatus::from(String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_spellings_round_trip() {
        for s in [
            "available",
            "backing-up",
            "creating",
            "failing-over",
            "modifying",
            "rebooting",
            "failed",
            "error",
            "storage-optimization",
            "",
        ] {
            let st = DbStatus::from(s);
            assert_eq!(st.as_str(), s);
            assert_eq!(st.to_string(), s);
            assert_eq!(serde_json::to_value(&st).unwrap(), serde_json::json!(s));
            assert_eq!(
                serde_json::from_value::<DbStatus>(serde_json::json!(s)).unwrap(),
                st
            );
        }
        assert!(matches!(
            DbStatus::from("storage-optimization"),
            DbStatus::Other(_)
        ));
        assert!(matches!(
            DbStatus::from("failing-over".to_string()),
            DbStatus::FailingOver
        ));
    }

    #[test]
    fn compared_as_the_aws_string() {
        assert_eq!(DbStatus::Other("available".into()), DbStatus::Available);
        assert!(DbStatus::Other("available".into()).is_available());
        assert_ne!(DbStatus::from("Available"), DbStatus::Available);
        assert!(DbStatus::Rebooting.is_failing_over());
        assert!(DbStatus::Error.is_failed() && !DbStatus::Creating.is_failed());
        assert_eq!(format!("[{:<10}]", DbStatus::Modifying), "[modifying ]");
    }
}
