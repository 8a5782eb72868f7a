//! Step 1: the team ID. One counter row per prefix, incremented in the same transaction that
//! records the ID against the registration id. Why a locked counter row and not a sequence:
//! a sequence hands out numbers outside transactions, so every rolled-back or crashed
//! allocation would leave a gap, and teams expect their numbers to be consecutive. The row
//! lock serialises allocations, which costs one short transaction per registration; that is
//! far below what the rest of the job costs. A registration that already has an ID (a
//! retried or re-driven job) gets the same one back, and an ID is never given out twice.
//! (A duplicate registration racing its original can take an ID before the save refuses
//! it; that ID stays with it, leaving a gap in the sequence.)

use backon::Retryable;
use intake_shared::domain::{RegistrationId, TeamId};
use sqlx::PgPool;

use crate::db;
use crate::error::StepError;

pub async fn run(
    pool: &PgPool,
    registration_id: RegistrationId,
    prefix: &str,
    width: usize,
) -> Result<TeamId, StepError> {
    (|| allocate(pool, registration_id, prefix, width))
        .retry(db::retry_policy())
        .when(db::is_transient)
        .await
        .map_err(|e| db::step_error(&e, "allocating the team ID"))
}

async fn existing(pool: &PgPool, id: RegistrationId) -> Result<Option<TeamId>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT team_id FROM team_ids WHERE registration_id = $1")
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(t,)| TeamId::from_stored(t)))
}

async fn allocate(
    pool: &PgPool,
    id: RegistrationId,
    prefix: &str,
    width: usize,
) -> Result<TeamId, sqlx::Error> {
    if let Some(team_id) = existing(pool, id).await? {
        return Ok(team_id);
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO team_id_counters (prefix, last_value) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(prefix)
    .execute(&mut *tx)
    .await?;
    let (n,): (i64,) = sqlx::query_as(
        "UPDATE team_id_counters SET last_value = last_value + 1 WHERE prefix = $1 RETURNING last_value",
    )
    .bind(prefix)
    .fetch_one(&mut *tx)
    .await?;
    let team_id = TeamId::format(prefix, width, n.unsigned_abs());
    let recorded = sqlx::query(
        "INSERT INTO team_ids (registration_id, team_id) VALUES ($1, $2)
         ON CONFLICT (registration_id) DO NOTHING",
    )
    .bind(id.as_uuid())
    .bind(team_id.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded == 0 {
        // Another run of this same job recorded an ID first; give our number back.
        tx.rollback().await?;
        return existing(pool, id)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound);
    }
    tx.commit().await?;
    Ok(team_id)
}
