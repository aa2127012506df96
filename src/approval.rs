//! Who may release an approval gate, as pure functions: the `approve` use case asks before
//! recording an approval, and the engine's gate asks again before it continues, so a recorded
//! approval that breaks a rule never releases anything.
//!
//! Names are compared after trimming and case folding (`Bob`, ` bob ` and `BOB` are one
//! person); an empty name approves nothing; the run's initiator never counts; a gate that
//! requires N approvals needs N distinct people.

use std::fmt;

/// Why a person may not approve a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No name was given.
    Empty,
    /// The person started the run: nobody approves their own run.
    Initiator,
    /// The gate names who may approve, and this person is not among them.
    NotAllowed { allowed: Vec<String> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty => f.write_str("an approval needs a name"),
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

/// A person's name as approvals compare it: trimmed, case folded.
pub fn normalize(name: &str) -> String {
    name.trim().to_lowercase()
}

/// May `by` approve a gate of a run started by `initiator` that lists `approvers` (empty:
/// anyone but the initiator)?
pub fn may_approve(initiator: &str, approvers: &[String], by: &str) -> Result<(), Refusal> {
    let who = normalize(by);
    if who.is_empty() {
        return Err(Refusal::Empty);
    }
    if who == normalize(initiator) {
        return Err(Refusal::Initiator);
    }
    if !approvers.is_empty() && !approvers.iter().any(|a| normalize(a) == who) {
        return Err(Refusal::NotAllowed {
            allowed: approvers.to_vec(),
        });
    }
    Ok(())
}

/// The distinct people whose recorded approvals count for the gate, in order.
pub fn valid_approvals(initiator: &str, approvers: &[String], approvals: &[String]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for a in approvals {
        let who = normalize(a);
        if may_approve(initiator, approvers, a).is_ok() && !out.contains(&who) {
            out.push(who);
        }
    }
    out
}

/// The people who released the gate, once `required` distinct valid approvals are recorded.
pub fn released_by(
    initiator: &str,
    approvers: &[String],
    required: u32,
    approvals: &[String],
) -> Option<Vec<String>> {
    let valid = valid_approvals(initiator, approvers, approvals);
    (valid.len() >= required.max(1) as usize).then_some(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rules() {
        let none: Vec<String> = vec![];
        let listed = names(&["Bob"]);
        assert_eq!(
            may_approve("alice", &none, "alice"),
            Err(Refusal::Initiator)
        );
        assert_eq!(
            may_approve("alice", &none, " Alice "),
            Err(Refusal::Initiator)
        );
        assert_eq!(may_approve("alice", &none, "  "), Err(Refusal::Empty));
        assert_eq!(may_approve("alice", &none, "carol"), Ok(()));
        assert!(matches!(
            may_approve("alice", &listed, "carol"),
            Err(Refusal::NotAllowed { .. })
        ));
        assert_eq!(may_approve("alice", &listed, "bob "), Ok(()));
    }

    #[test]
    fn gates_need_distinct_people_and_never_the_initiator() {
        let none: Vec<String> = vec![];
        let recorded = names(&["alice", "Carol", "carol ", "BOB"]);
        assert_eq!(
            released_by("alice", &none, 1, &recorded),
            Some(names(&["carol", "bob"]))
        );
        assert_eq!(
            released_by("alice", &none, 2, &recorded),
            Some(names(&["carol", "bob"])),
            "carol twice counts once; the initiator never"
        );
        assert_eq!(released_by("alice", &none, 3, &recorded), None);
        assert_eq!(
            released_by("alice", &names(&["bob"]), 1, &recorded),
            Some(names(&["bob"]))
        );
    }
}
