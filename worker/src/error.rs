//! How a step fails. Every outside failure is classified once, where it happens, as
//! transient (worth another attempt) or permanent (fail the registration with a code); the
//! pipeline and the job handler only act on that classification.

use intake_shared::errors::JobFailureCode;

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

    pub fn code(&self) -> JobFailureCode {
        match self {
            Self::Transient { code, .. } | Self::Permanent { code, .. } => *code,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Transient { message, .. } | Self::Permanent { message, .. } => message,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}
