//! Who may release an approval gate, as pure functions: the `approve` use case asks before
//! recording an approval, and the engine's gate asks again before it continues, so a recorded
//! approval that breaks a rule never releases anything.

use std::fmt;

/// Why a person may not approve a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The person started the run: nobody approves their own run.
    Initiator,
    /// The gate names who may approve, and this person is not among them.
    NotAllowed { allowed: Vec<String> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Initiator => f.write_str("started the run and cannot approve it"),
            Refusal::NotAllowed { allowed } => {
                write!(
                    f,
                    "may not approve it; allowed approvers: {}",
                    allowed.join(", ")
                )
            }
        }
    }
}

/// May `by` approve a gate of a run started by `initiator` that lists `approvers` (empty:
/// anyone but the initiator)?
pub fn may_approve(initiator: &str, approvers: &[String], by: &str) -> Result<(), Refusal> {
    if by == initiator {
        return Err(Refusal::Initiator);
    }
    if !approvers.is_empty() && !approvers.iter().any(|a| a == by) {
        return Err(Refusal::NotAllowed {
            allowed: approvers.to_vec(),
        });
    }
    Ok(())
}

/// The first recorded approval that releases the gate, if any.
pub fn released_by<'a>(
    initiator: &str,
    approvers: &[String],
    approvals: &'a [String],
) -> Option<&'a String> {
    approvals
        .iter()
        .find(|a| may_approve(initiator, approvers, a).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let none: Vec<String> = vec![];
        let listed = vec!["bob".to_string()];
        assert_eq!(
            may_approve("alice", &none, "alice"),
            Err(Refusal::Initiator)
        );
        assert_eq!(may_approve("alice", &none, "carol"), Ok(()));
        assert!(matches!(
            may_approve("alice", &listed, "carol"),
            Err(Refusal::NotAllowed { .. })
        ));
        assert_eq!(may_approve("alice", &listed, "bob"), Ok(()));
        let recorded = vec!["alice".to_string(), "carol".to_string(), "bob".to_string()];
        assert_eq!(
            released_by("alice", &listed, &recorded),
            Some(&"bob".to_string())
        );
        assert_eq!(
            released_by("alice", &none, &recorded),
            Some(&"carol".to_string())
        );
        assert_eq!(released_by("alice", &none, &recorded[..1]), None);
    }
}
