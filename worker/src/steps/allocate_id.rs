//! Step 1: the team ID, with the claim on the team (`intake_store::pg::team_ids` says how
//! both are kept gapless and unique under any number of workers). A registration that
//! already has an ID (a retried or re-driven job) gets the same one back.

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_store::pg::PgPool;
use intake_store::pg::team_ids::{self, TeamIdFormat};

pub use intake_store::pg::team_ids::Allocation;

use crate::db;
use crate::error::StepError;

/// Gives the registration its team ID and the claim on its team; `take_over` names a
/// holder the caller found gone (failed for good, never saved) whose claim may be moved.
pub async fn run(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    take_over: Option<RegistrationId>,
) -> Result<Allocation, StepError> {
    team_ids::allocate(pool, job, format, take_over)
        .await
        .map_err(|e| db::step_error(&e, "allocating the team ID"))
}
