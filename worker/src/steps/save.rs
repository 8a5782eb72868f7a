//! Step 3: the registration in one statement: its team ID (the next number, taken only by a
//! registration that saves), the team, its players and its documents
//! (`intake_store::pg::registrations`). The unique key on (team name, captain's phone) is
//! what stops one team registering twice whatever the timing; a second run of the *same*
//! registration finds its own row instead.

use intake_shared::config::TeamIdFormat;
use intake_shared::domain::{RegistrationId, TeamId};
use intake_shared::errors::JobFailureCode;
use intake_shared::job::RegistrationJob;
use intake_store::pg::PgPool;
use intake_store::pg::registrations::{self, SaveError, StoredDocument};

pub use intake_store::pg::registrations::Saved;

use crate::db;
use crate::error::StepError;

/// The failure of a registration whose team another registration holds.
pub fn duplicate() -> StepError {
    StepError::permanent(
        JobFailureCode::DuplicateTeam,
        "a team with this name and captain's phone number is already registered",
    )
}

pub async fn run(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    documents: &[StoredDocument],
) -> Result<Saved, StepError> {
    registrations::save(pool, job, format, documents)
        .await
        .map_err(|e| match e {
            SaveError::Duplicate => duplicate(),
            SaveError::Db(err) => db::step_error(&err, "saving the registration"),
        })
}

/// The team ID of this registration if it is saved already.
pub async fn saved_team_id(pool: &PgPool, id: RegistrationId) -> Result<Option<TeamId>, StepError> {
    registrations::team_id_of(pool, id)
        .await
        .map_err(|e| db::step_error(&e, "looking up the registration"))
}

/// Whether this registration's rows are already in Postgres.
pub async fn is_saved(pool: &PgPool, id: RegistrationId) -> Result<bool, StepError> {
    registrations::is_saved(pool, id)
        .await
        .map_err(|e| db::step_error(&e, "looking up the registration"))
}
