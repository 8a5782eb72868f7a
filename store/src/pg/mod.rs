//! Postgres: the pool, the embedded migrations, and the one place database errors are
//! classified as transient or not. Each submodule owns the statements of one table group.

pub mod audit;
pub mod deliveries;
pub mod email_deliveries;
pub mod export;
pub mod outbox;
pub mod registrations;
pub mod team_claims;
pub mod teams;
pub mod webhooks;

use std::time::Duration;

use backon::ExponentialBuilder;
use intake_shared::config::DatabaseSettings;
use secrecy::ExposeSecret;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use sqlx::PgPool;

/// The migrations in `migrations/`, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A database failure, classified once, here: `Unavailable` is worth another attempt (the
/// connection, the pool, a deadlock, a lock wait that timed out), `Unexpected` is not.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("unexpected database error")]
    Unexpected(#[source] sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        if is_transient(&err) {
            Self::Unavailable(err)
        } else {
            Self::Unexpected(err)
        }
    }
}

/// `INTAKE_DATABASE_URL` does not parse as a Postgres URL.
#[derive(Debug, thiserror::Error)]
#[error("INTAKE_DATABASE_URL is not a usable Postgres URL")]
pub struct BadDatabaseUrl(#[source] sqlx::Error);

impl DbError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A pool that connects on first use, so a service starts (and reports not ready) while
/// Postgres is down, and gives up on a connection after a few seconds instead of hanging.
///
/// Its sessions carry `application_name` (unless the URL names one), so `pg_stat_activity`
/// tells an operator whose connections they are, and two limits so no lock is held or
/// waited for without end: a statement waits at most `INTAKE_DATABASE_LOCK_TIMEOUT_MS` for
/// a lock (the attempt then fails as transient and is retried), and Postgres ends a session
/// left inside a transaction for `INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS` (a
/// worker whose host vanished mid-transaction sends no FIN; without this its session kept
/// the team ID counter locked, and every allocation waited behind it).
pub fn pool(
    settings: &DatabaseSettings,
    application_name: &str,
    max_connections: u32,
) -> Result<PgPool, BadDatabaseUrl> {
    let mut options: PgConnectOptions = settings
        .url
        .expose_secret()
        .parse()
        .map_err(BadDatabaseUrl)?;
    if options.get_application_name().is_none() {
        options = options.application_name(application_name);
    }
    let options = options.options([
        (
            "lock_timeout",
            format!("{}ms", settings.lock_timeout.as_millis()),
        ),
        (
            "idle_in_transaction_session_timeout",
            format!("{}ms", settings.idle_in_transaction_timeout.as_millis()),
        ),
    ]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// Applies pending migrations. sqlx holds a Postgres advisory lock while it migrates, so
/// many processes starting at once apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether Postgres answers a trivial query within two seconds.
pub async fn reachable(pool: &PgPool) -> bool {
    matches!(
        tokio_timeout(sqlx::query("SELECT 1").execute(pool)).await,
        Some(Ok(_))
    )
}

async fn tokio_timeout<T>(work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .ok()
}

/// Errors another attempt can fix: the connection, the pool, a deadlock, a serialization
/// failure, or the server shutting down.
fn is_transient(err: &sqlx::Error) -> bool {
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
            // too_many_connections, lock_not_available (our lock_timeout), and our session
            // ended for idling in a transaction
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300" | "55P03" | "25P03")
        ),
        _ => false,
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

/// Runs `work` again while it fails with a transient error, with [`retry_policy`].
async fn retrying<T, F, Fut>(work: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    use backon::Retryable;
    work.retry(retry_policy()).when(DbError::is_transient).await
}

/// Whether a database error is a unique violation of the named constraint or index.
fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    matches!(err, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint))
}
