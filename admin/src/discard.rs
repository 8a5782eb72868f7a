//! Discarding a failed registration for good (docs/contract.md §14): its status record, kept
//! payload (the personal data), attempt history and staged files go, and its claim on the
//! team is freed so the team can register again. What stays is the audit log's account of it
//! (the tombstone): who, why, when, and the failure it had.

use intake_shared::domain::RegistrationId;
use intake_shared::status::JobState;
use intake_store::pg::{registrations, team_claims};
use intake_store::status::{StatusError, TransitionError};
use intake_store::team_index::TeamIndex;
use serde_json::{Value, json};

use crate::error::AdminError;
use crate::state::AdminState;

/// Discards `id`, which must be failed and never saved; what was removed, for the audit log.
pub async fn one(state: &AdminState, id: RegistrationId) -> Result<Value, AdminError> {
    let record = state.status.get(id).await?.ok_or(AdminError::NotFound)?;
    match record.status {
        JobState::Failed => {}
        JobState::Completed => return Err(AdminError::AlreadyCompleted),
        _ => {
            return Err(AdminError::InvalidState(
                "only a failed registration can be discarded; this one is queued or in progress"
                    .into(),
            ));
        }
    }
    if registrations::is_saved(&state.pool, id).await? {
        return Err(AdminError::InvalidState(
            "this registration is saved; a saved team is not discarded".into(),
        ));
    }
    let job = match state.status.failed_job(id).await {
        Ok(job) => job,
        // Unreadable is as good as gone: there is nothing of it to keep.
        Err(StatusError::Corrupt { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    let uploads = job.as_ref().map(|j| j.uploads()).unwrap_or_default();
    match state.status.discard(id, &uploads).await {
        Ok(()) => {}
        Err(StatusError::Refused(TransitionError::NotFound)) => return Err(AdminError::NotFound),
        Err(StatusError::Refused(TransitionError::AlreadyCompleted)) => {
            return Err(AdminError::AlreadyCompleted);
        }
        Err(StatusError::Refused(refused)) => {
            return Err(AdminError::InvalidState(refused.to_string()));
        }
        Err(err) => return Err(err.into()),
    }
    let mut removed = 0;
    for upload in &uploads {
        match state.staging.remove_upload(upload).await {
            Ok(()) => removed += 1,
            // Its mark is gone, so the janitor removes it after the orphan grace period.
            Err(err) => {
                tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %id, "staged upload left for the janitor")
            }
        }
    }
    let claim_freed = team_claims::release(&state.pool, id).await?;
    // Its failure took it out of the duplicate index already; this makes sure (an entry
    // naming another registration stays).
    if let Some(job) = &job {
        let index = TeamIndex::new(state.redis.clone(), state.settings.redis.keys());
        index
            .forget(&job.registration.team_key(), id)
            .await
            .map_err(AdminError::Redis)?;
    }
    Ok(json!({
        "code": record.error.as_ref().map(|e| e.code),
        "failed_at": record.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "staged_uploads_removed": removed,
        "claim_freed": claim_freed,
    }))
}
