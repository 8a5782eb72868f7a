//! Keeps the duplicate index (`intake_store::team_index`) built: every few seconds each
//! worker asks whether it is complete, and when it is not (Redis restarted without
//! persistence, a new deployment) one worker, holding a lock, rebuilds it from the saved
//! teams in Postgres. Until then the api lets every team through to the workers' claim,
//! which Postgres decides.

use std::time::Duration;

use intake_store::pg::{PgPool, team_claims};
use intake_store::team_index::TeamIndex;
use tokio_util::sync::CancellationToken;

/// How often each worker checks that the index is built.
pub const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How long one rebuild may hold the lock.
const REBUILD_LOCK: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Postgres: {0}")]
    Db(#[from] intake_store::pg::DbError),
}

/// Rebuilds the index if it is missing and no other worker is rebuilding it; how many saved
/// teams were written, or `None` if nothing was to be done here.
pub async fn ensure_built(pool: &PgPool, index: &TeamIndex) -> Result<Option<usize>, RebuildError> {
    if index.is_built().await? {
        return Ok(None);
    }
    let lease = index.rebuild_lease();
    if !lease.take(REBUILD_LOCK).await? {
        return Ok(None);
    }
    let rebuilt = async {
        let saved = team_claims::saved(pool).await?;
        Ok::<_, RebuildError>(index.rebuild(saved).await?)
    }
    .await;
    // Freed at once, so a later loss of the index is rebuilt then, not after the lease.
    if let Err(err) = lease.release().await {
        tracing::debug!(error = %err, "rebuild lock left to expire");
    }
    let written = rebuilt?;
    tracing::info!(
        teams = written,
        "duplicate index rebuilt from the saved teams"
    );
    Ok(Some(written))
}

/// Checks every [`CHECK_EVERY`] until shut down.
pub async fn keep(pool: PgPool, index: TeamIndex, token: CancellationToken) {
    crate::periodic::every(CHECK_EVERY, &token, || async {
        if let Err(err) = ensure_built(&pool, &index).await {
            tracing::warn!(error = %err, "duplicate index not rebuilt; trying again");
        }
    })
    .await;
}
