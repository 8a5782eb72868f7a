//! How a step fails. Every outside failure is classified once, where it happens, as
//! transient (worth another attempt) or permanent (fail the registration with a code); the
//! pipeline and the job handler only act on that classification.

use intake_shared::errors::JobFailureCode;
use intake_store::status::{AttemptError, StatusError, TransitionError};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("{message} (transient, {})", code.as_str())]
    Transient {
        code: JobFailureCode,
        message: String,
    },
    #[error("{message} ({})", code.as_str())]
    Permanent {
        code: JobFailureCode,
        message: String,
    },
    /// The run has nothing more to do: the status record refused its change because a
    /// re-drive superseded it or the registration is already final. Not a failure: the
    /// job ends quietly and nothing is recorded.
    #[error("the run stops: {0}")]
    Settled(TransitionError),
}

impl From<StatusError> for StepError {
    fn from(err: StatusError) -> Self {
        match err {
            StatusError::Refused(
                refused @ (TransitionError::Superseded { .. }
                | TransitionError::AlreadyCompleted
                | TransitionError::AlreadyFailed),
            ) => Self::Settled(refused),
            StatusError::Refused(_) => {
                // Any other refusal means the pipeline asked for a change it must not: a bug.
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "status change refused"
                );
                Self::permanent(JobFailureCode::InternalError, err.to_string())
            }
            StatusError::Unavailable(_) | StatusError::Contended(_) => {
                tracing::warn!(error = &err as &dyn std::error::Error, "status not written");
                Self::transient(JobFailureCode::StatusUnavailable, err.to_string())
            }
            StatusError::Corrupt { .. } => {
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "status record unreadable"
                );
                Self::permanent(JobFailureCode::InternalError, err.to_string())
            }
        }
    }
}

impl StepError {
    pub fn transient(code: JobFailureCode, message: impl Into<String>) -> Self {
        Self::Transient {
            code,
            message: message.into(),
        }
    }

    pub fn permanent(code: JobFailureCode, message: impl Into<String>) -> Self {
        Self::Permanent {
            code,
            message: message.into(),
        }
    }

    /// The code a failure is recorded with. A settled run records nothing; it counts as
    /// internal only in metrics, where it never appears (the handler acknowledges it first).
    pub fn code(&self) -> JobFailureCode {
        match self {
            Self::Transient { code, .. } | Self::Permanent { code, .. } => *code,
            Self::Settled(_) => JobFailureCode::InternalError,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Transient { message, .. } | Self::Permanent { message, .. } => message.clone(),
            Self::Settled(reason) => reason.to_string(),
        }
    }

    /// This failure as one line of the registration's attempt history.
    pub fn attempt(&self, attempt: u32) -> AttemptError {
        AttemptError {
            attempt,
            code: self.code(),
            message: self.message(),
            transient: self.is_transient(),
            at: OffsetDateTime::now_utc(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}
