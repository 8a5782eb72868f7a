//! Step 1: the claim on the team (`intake_store::pg::team_claims`), before anything is
//! uploaded, so a second registration of the same team uploads nothing. The team ID comes
//! later, with the save (step 3).

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_store::pg::PgPool;
use intake_store::pg::team_claims;

pub use intake_store::pg::team_claims::Claim;

use crate::db;
use crate::error::StepError;

/// Claims the job's team for its registration, or names the holder; `take_over` names a
/// holder the caller found gone (failed for good, never saved) whose claim may be moved.
pub async fn run(
    pool: &PgPool,
    job: &RegistrationJob,
    take_over: Option<RegistrationId>,
) -> Result<Claim, StepError> {
    team_claims::claim(pool, job, take_over)
        .await
        .map_err(|e| db::step_error(&e, "claiming the team"))
}
