//! The worker's side of the database: its sessions' name, and how a database failure that
//! survived the store's retries becomes a step failure. Every statement lives in
//! `intake-store`.

use intake_shared::errors::JobFailureCode;
use intake_store::pg::DbError;

use crate::error::StepError;

/// The `application_name` of the worker's sessions.
pub const WORKER_APPLICATION_NAME: &str = "intake-worker";

/// The step error for a database error that survived its retries: transient ones fail the
/// attempt (the queue retries it), anything else fails the registration. The error's chain
/// is logged here, once; the registration's record says what happened in words.
pub fn step_error(err: &DbError, doing: &str) -> StepError {
    if err.is_transient() {
        tracing::warn!(
            error = err as &dyn std::error::Error,
            doing,
            "database unavailable"
        );
        StepError::transient(
            JobFailureCode::DatabaseUnavailable,
            format!("the database was unavailable while {doing}; it will be retried"),
        )
    } else {
        tracing::error!(
            error = err as &dyn std::error::Error,
            doing,
            "unexpected database error"
        );
        StepError::permanent(
            JobFailureCode::InternalError,
            format!("an unexpected database error occurred while {doing}"),
        )
    }
}
