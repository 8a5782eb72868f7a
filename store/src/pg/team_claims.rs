//! Team claims: one per team (its name folded as the unique index on `teams` folds it, and
//! the captain's phone), taken by a registration before it uploads anything. A second
//! registration of a team already claimed is refused here, so a duplicate uploads nothing
//! and takes no team ID (IDs are taken when a registration is saved, see
//! [`super::registrations::save`]). A claim whose holder failed for good and was never saved
//! can be taken over ([`claim`]'s `take_over`), so a team whose first attempt was refused can
//! register again.
//!
//! The key is [`intake_shared::domain::TeamKey`]'s, folded in Rust (as the unique index on `teams` folds the name),
//! so the Redis duplicate index ([`crate::team_index`]) can be rebuilt from these rows.

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use sqlx::PgPool;

use super::{DbError, retrying};

/// Who holds a team's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This registration (claimed just now, or on an earlier run).
    Held,
    /// Another registration.
    Other(RegistrationId),
}

/// Claims the job's team for its registration, or names the holder; `take_over` names a
/// holder the caller found gone (failed for good, never saved) whose claim may be moved.
/// Transient failures are retried inside the call.
pub async fn claim(
    pool: &PgPool,
    job: &RegistrationJob,
    take_over: Option<RegistrationId>,
) -> Result<Claim, DbError> {
    retrying(|| async {
        let mut tx = pool.begin().await?;
        let claim = claim_in(&mut tx, job, take_over).await?;
        tx.commit().await?;
        Ok(claim)
    })
    .await
}

async fn claim_in(
    tx: &mut sqlx::PgConnection,
    job: &RegistrationJob,
    take_over: Option<RegistrationId>,
) -> Result<Claim, sqlx::Error> {
    let key = job.registration.team_key();
    let id = job.registration_id.as_uuid();
    // The no-op update locks a claim found, so a take-over below sees it as it is.
    let (holder,): (uuid::Uuid,) = sqlx::query_as(
        "INSERT INTO team_claims (team_key, registration_id) VALUES ($1, $2)
         ON CONFLICT (team_key) DO UPDATE SET team_key = EXCLUDED.team_key
         RETURNING registration_id",
    )
    .bind(key.as_str())
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if holder == id {
        return Ok(Claim::Held);
    }
    if take_over.is_some_and(|gone| gone.as_uuid() == holder) {
        let moved = sqlx::query(
            "UPDATE team_claims SET registration_id = $2, claimed_at = now()
             WHERE team_key = $1 AND registration_id = $3",
        )
        .bind(key.as_str())
        .bind(id)
        .bind(holder)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 1 {
            return Ok(Claim::Held);
        }
    }
    Ok(Claim::Other(RegistrationId::from_uuid(holder)))
}

/// Frees the team's claim held by registration `id`, unless the registration is saved (a
/// saved team keeps its claim). Whether a claim was freed.
pub async fn release(pool: &PgPool, id: RegistrationId) -> Result<bool, DbError> {
    retrying(|| async {
        let freed = sqlx::query(
            "DELETE FROM team_claims c WHERE c.registration_id = $1
             AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.registration_id = $1)",
        )
        .bind(id.as_uuid())
        .execute(pool)
        .await?
        .rows_affected();
        Ok(freed == 1)
    })
    .await
}

/// The claims of every saved team: what the Redis duplicate index must hold at least. (A
/// claim of a registration still in progress is not here; the worker adds it when it
/// claims, and Postgres refuses a duplicate that got past the door either way.)
pub async fn saved(pool: &PgPool) -> Result<Vec<(String, RegistrationId)>, DbError> {
    retrying(|| async {
        let rows: Vec<(String, uuid::Uuid)> = sqlx::query_as(
            "SELECT c.team_key, c.registration_id FROM team_claims c
             JOIN teams t ON t.registration_id = c.registration_id",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, id)| (key, RegistrationId::from_uuid(id)))
            .collect())
    })
    .await
}
