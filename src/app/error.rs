//! What a use case can fail with. Each variant names a class of failure the CLI maps to an exit
//! code (and the HTTP API to a status); its `Display` is the whole message for a person: what
//! happened, and a hint of what to do next.

use crate::cloud::{CloudError, ErrorKind};
use crate::diag::Diagnostics;
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input (runbook, environment, parameters), every problem at once. Nothing was called.
    #[error("{0}\n\n{n} problem(s) found; nothing was changed.", n = .0.len())]
    Invalid(Diagnostics),
    /// Bad input described in a sentence (already `error: ...` with its hint). Nothing was called.
    #[error("{0}")]
    Input(String),
    /// AWS (or the local peer) could not be read or changed.
    #[error("error: {doing}: {error}\n  hint: {hint}\nNothing was changed.", hint = self.cloud_hint())]
    Cloud {
        doing: String,
        error: Box<CloudError>,
        /// A more precise hint than the kind's own (e.g. an undefined AWS profile).
        hint: Option<String>,
    },
    /// AWS (or the local peer) failed in a way described in a sentence (with its hint).
    #[error("{0}")]
    Peer(String),
    /// The journal could not be opened, read or written.
    #[error("error: {0}\n  hint: check that the journal's directory is writable, or pass --journal PATH")]
    Journal(JournalError),
    /// The tool itself could not go on (an async runtime, an in-memory journal).
    #[error("error: {0}")]
    Runtime(String),
    /// The request was understood and refused (approving one's own run, a run that ended, ...).
    #[error("error: {0}")]
    Refused(String),
    /// The run named is not in the journal (a refusal: the CLI's exit code is the same).
    #[error("error: {0}")]
    NotFound(String),
    /// Another live run holds a lease on a resource this run needs: who, and what to do.
    #[error("error: {message}")]
    Busy {
        conflict: Box<crate::store::LeaseConflict>,
        message: String,
    },
}

/// The class of a failure: what the CLI turns into an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    Invalid,
    Cloud,
    Journal,
    Refused,
}

impl AppError {
    pub fn class(&self) -> FailureClass {
        match self {
            AppError::Invalid(_) | AppError::Input(_) => FailureClass::Invalid,
            AppError::Cloud { .. } | AppError::Peer(_) => FailureClass::Cloud,
            AppError::Journal(_) | AppError::Runtime(_) => FailureClass::Journal,
            AppError::Refused(_) | AppError::NotFound(_) | AppError::Busy { .. } => {
                FailureClass::Refused
            }
        }
    }

    /// A cloud failure while `doing` something.
    pub fn cloud(doing: impl Into<String>, error: CloudError) -> Self {
        AppError::Cloud {
            doing: doing.into(),
            error: Box::new(error),
            hint: None,
        }
    }

    fn cloud_hint(&self) -> String {
        match self {
            AppError::Cloud {
                hint: Some(h),
                error,
                ..
            } => format!("{}\n  hint: {h}", error.kind.hint()),
            AppError::Cloud { error, .. } => error.kind.hint().to_string(),
            _ => String::new(),
        }
    }

    /// Whether the failure was a refusal of access (credentials, IAM).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, AppError::Cloud { error, .. } if error.kind == ErrorKind::AccessDenied)
    }
}

impl From<Diagnostics> for AppError {
    fn from(d: Diagnostics) -> Self {
        AppError::Invalid(d)
    }
}

impl From<JournalError> for AppError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::UnknownRun(id) => AppError::NotFound(format!("run `{id}` is not in the journal\n  hint: `failover runs` lists the runs; pass --journal if the run was recorded elsewhere")),
            JournalError::Refused(m) => AppError::Refused(m),
            JournalError::Conflict(c) => AppError::Busy {
                message: c.to_string(),
                conflict: c,
            },
            JournalError::Fenced(m) => AppError::Refused(format!("this process no longer holds the run's leases: {m}")),
            other => AppError::Journal(other),
        }
    }
}
