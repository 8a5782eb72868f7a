//! Team IDs and team claims. One counter row per prefix, incremented in the same
//! transaction that records the ID against the registration id. Why a locked counter row and
//! not a sequence: a sequence hands out numbers outside transactions, so every rolled-back
//! or crashed allocation would leave a gap, and teams expect their numbers to be
//! consecutive. The row lock serialises allocations, which costs one short transaction per
//! registration; that is far below what the rest of the job costs. A registration that
//! already has an ID (a retried or re-driven job) gets the same one back, and an ID is never
//! given out twice.
//!
//! The same transaction claims the team (its folded name and the captain's phone) for the
//! registration. A second registration of a team already claimed is refused here, before
//! it takes an ID or uploads anything, so duplicates leave neither gaps in the IDs nor
//! orphaned files at the document store. A claim whose holder failed for good and was never
//! saved can be taken over ([`allocate`]'s `take_over`).

use intake_shared::domain::{RegistrationId, TeamId};
use intake_shared::job::RegistrationJob;
use sqlx::PgPool;

use super::{DbError, retrying};

/// The claim key of a team, folded as the unique index on `teams` folds it.
const TEAM_KEY: &str = "lower(regexp_replace($1, '\\s+', ' ', 'g')) || E'\\n' || $2";

/// One increment of the counter at a time in this process. Allocations serialise on the
/// counter row in any case; queued here, a process has at most one transaction waiting on
/// that row's lock instead of one per job, and every commit wakes one waiter instead of
/// dozens that then queue again (measured: 64 concurrent jobs allocated slower than 32
/// without this). Taken after the claim, so only the increment and the commit are serial.
static ALLOCATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What allocation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// The registration holds the team and this ID (new, or found again on a re-run).
    Allocated(TeamId),
    /// Another registration holds the team.
    Claimed { holder: RegistrationId },
}

/// The format of team IDs, `{prefix}-{n}` with `n` padded to `width` digits, is a settings
/// section (`INTAKE_TEAM_ID_PREFIX`, `INTAKE_TEAM_ID_WIDTH`).
pub use intake_shared::config::TeamIdFormat;

/// Gives the registration its team ID and the claim on its team; `take_over` names a
/// holder the caller found gone (failed for good, never saved) whose claim may be moved.
/// Transient failures are retried inside the call.
pub async fn allocate(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    take_over: Option<RegistrationId>,
) -> Result<Allocation, DbError> {
    retrying(|| async { Ok(allocate_once(pool, job, format, take_over).await?) }).await
}

/// Takes the team's claim for the job's registration inside `tx`, or names its holder.
async fn claim(
    tx: &mut sqlx::PgConnection,
    job: &RegistrationJob,
    take_over: Option<RegistrationId>,
) -> Result<Claim, sqlx::Error> {
    let (name, phone) = (
        job.registration.team_name.as_str(),
        job.registration.captain.phone.as_str(),
    );
    let id = job.registration_id.as_uuid();
    // `xmax = 0` tells a row this statement inserted from one it found (and locked).
    let (holder, inserted): (uuid::Uuid, bool) = sqlx::query_as(&format!(
        "INSERT INTO team_claims (team_key, registration_id) VALUES ({TEAM_KEY}, $3)
         ON CONFLICT (team_key) DO UPDATE SET team_key = EXCLUDED.team_key
         RETURNING registration_id, (xmax = 0)"
    ))
    .bind(name)
    .bind(phone)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if holder == id {
        return Ok(Claim::Held { new: inserted });
    }
    if take_over.is_some_and(|gone| gone.as_uuid() == holder) {
        let moved = sqlx::query(&format!(
            "UPDATE team_claims SET registration_id = $3, claimed_at = now()
             WHERE team_key = {TEAM_KEY} AND registration_id = $4"
        ))
        .bind(name)
        .bind(phone)
        .bind(id)
        .bind(holder)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 1 {
            // The taker may hold an ID from an earlier claim of its own: look it up.
            return Ok(Claim::Held { new: false });
        }
    }
    Ok(Claim::Other(RegistrationId::from_uuid(holder)))
}

/// Who holds a team's claim after [`claim`].
enum Claim {
    /// This registration; `new` when it took the claim just now (and so has no ID yet).
    Held {
        new: bool,
    },
    Other(RegistrationId),
}

async fn existing(
    db: impl sqlx::PgExecutor<'_>,
    id: RegistrationId,
) -> Result<Option<TeamId>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT team_id FROM team_ids WHERE registration_id = $1")
            .bind(id.as_uuid())
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(t,)| TeamId::from_stored(t)))
}

async fn allocate_once(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    take_over: Option<RegistrationId>,
) -> Result<Allocation, sqlx::Error> {
    let id = job.registration_id;
    let mut tx = pool.begin().await?;
    // The claim first, even for a registration that has its ID already: one re-driven
    // after another registration took its team over must not upload again.
    match claim(&mut tx, job, take_over).await? {
        Claim::Other(holder) => {
            tx.rollback().await?;
            return Ok(Allocation::Claimed { holder });
        }
        // A claim taken just now has no ID yet (they are recorded together).
        Claim::Held { new: true } => {}
        Claim::Held { new: false } => {
            if let Some(team_id) = existing(&mut *tx, id).await? {
                tx.commit().await?;
                return Ok(Allocation::Allocated(team_id));
            }
        }
    }
    let _turn = ALLOCATING.lock().await;
    // The counter row stays locked until commit, so the increment and the record are one
    // statement: the lock is held for it and the commit, no round trip in between. The ID
    // is formatted here as `TeamId::format` does (padded to `width`, never cut).
    let recorded: Option<(String,)> = sqlx::query_as(
        "WITH n AS (
             INSERT INTO team_id_counters AS c (prefix, last_value) VALUES ($2, 1)
             ON CONFLICT (prefix) DO UPDATE SET last_value = c.last_value + 1
             RETURNING last_value)
         INSERT INTO team_ids (registration_id, team_id)
         SELECT $1, $2 || '-' || lpad(last_value::text, greatest($3, length(last_value::text)), '0')
         FROM n
         ON CONFLICT (registration_id) DO NOTHING
         RETURNING team_id",
    )
    .bind(id.as_uuid())
    .bind(&format.prefix)
    .bind(i32::try_from(format.width).unwrap_or(i32::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((team_id,)) = recorded else {
        // Another run of this same job recorded an ID first; give our number back.
        tx.rollback().await?;
        return existing(pool, id)
            .await?
            .map(Allocation::Allocated)
            .ok_or(sqlx::Error::RowNotFound);
    };
    tx.commit().await?;
    Ok(Allocation::Allocated(TeamId::from_stored(team_id)))
}
