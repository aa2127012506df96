//! Small newtypes for the names the tool moves around, so a zone is never confused with a
//! cluster identifier or a record name.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! name_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`: a width (`{:<22}`) applies as it does to a string.
                f.pad(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

name_type!(
    /// An availability zone, e.g. `us-west-2a`.
    Zone
);
name_type!(
    /// An AWS region, e.g. `us-west-2`.
    Region
);
name_type!(
    /// An RDS DB cluster identifier (Aurora or Multi-AZ DB cluster).
    ClusterId
);
name_type!(
    /// An RDS DB instance identifier.
    InstanceId
);
name_type!(
    /// An Aurora global database identifier (`GlobalClusterIdentifier`).
    GlobalClusterId
);
name_type!(
    /// A run identifier in the journal, e.g. `20261122-010203-abcd` (`journal::new_run_id`),
    /// `sim-7` in the simulator. A prefix typed by a person to find a run is a `&str`, not a
    /// `RunId` (`journal::Journal::run`).
    RunId
);
name_type!(
    /// A step identifier inside a runbook.
    StepId
);

impl Region {
    /// Whether this looks like an AWS region name: `us-west-2`, `eu-central-1`,
    /// `us-gov-west-1` (letters, dashes, a final number).
    pub fn is_well_formed(&self) -> bool {
        let parts: Vec<&str> = self.0.split('-').collect();
        parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
            && !parts[parts.len() - 1].is_empty()
    }
}

impl Zone {
    /// The region a zone belongs to: `us-west-2a` -> `us-west-2`.
    pub fn region(&self) -> Region {
        let s = self.0.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        Region(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_region() {
        assert_eq!(Zone::from("us-west-2a").region(), Region::from("us-west-2"));
        assert_eq!(
            Zone::from("eu-central-1c").region(),
            Region::from("eu-central-1")
        );
    }
}
