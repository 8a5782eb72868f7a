//! Postgres: the pool, the embedded migrations, and the one place database errors are
//! classified as transient or not.

use std::time::Duration;

use backon::ExponentialBuilder;
use intake_shared::errors::JobFailureCode;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::StepError;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The `application_name` the worker's Postgres sessions carry (unless the URL names one),
/// so `pg_stat_activity` tells an operator whose connections they are.
pub const APPLICATION_NAME: &str = "intake-worker";

/// A pool that connects on first use, so the worker starts (and reports not ready) while
/// Postgres is down, and gives up on a connection after a few seconds instead of hanging.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let mut options: PgConnectOptions = url.parse()?;
    if options.get_application_name().is_none() {
        options = options.application_name(APPLICATION_NAME);
    }
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// Applies pending migrations. sqlx holds a Postgres advisory lock while it migrates, so
/// many workers starting at once apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// Errors another attempt can fix: the connection, the pool, a deadlock, a serialization
/// failure, or the server shutting down.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // serialization_failure, deadlock_detected, admin/crash shutdown, cannot_connect_now,
            // too_many_connections
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300")
        ),
        _ => false,
    }
}

/// The step error for a database error that survived its retries.
pub fn step_error(err: &sqlx::Error, doing: &str) -> StepError {
    if is_transient(err) {
        StepError::transient(
            JobFailureCode::DatabaseUnavailable,
            format!("the database was unavailable while {doing}; it will be retried"),
        )
    } else {
        tracing::error!(error = %err, doing, "unexpected database error");
        StepError::permanent(
            JobFailureCode::InternalError,
            format!("an unexpected database error occurred while {doing}"),
        )
    }
}

/// Backoff for database calls inside one attempt: quick at first, capped, with jitter so
/// that many workers recovering together do not retry in step.
pub fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(3))
        .with_max_times(5)
        .with_jitter()
}

/// Whether a database error is a unique violation of the named constraint or index.
pub fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}
