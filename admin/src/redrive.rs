//! Re-driving a failed registration: the same registration id, so the job finds its claim on
//! the team and re-uses its staged files, pushed as the job of the registration's next run. The status
//! record moves from `failed` to `queued` in one compare-and-set (docs/contract.md §10), so two
//! support staff re-driving one registration at once enqueue it once, and a worker still
//! running the old run is refused at its next status write.

use intake_shared::domain::RegistrationId;
use intake_shared::queue::PushError;
use intake_store::pg::registrations;
use intake_store::status::{Requeued, StatusError, TransitionError};
use serde::Serialize;

use crate::error::AdminError;
use crate::state::AdminState;

/// What happened to one registration asked to be re-driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Requeued,
    DocumentsExpired,
    AlreadyCompleted,
    NotFailed,
    NotFound,
}

impl Outcome {
    pub fn into_result(self) -> Result<(), AdminError> {
        match self {
            Self::Requeued => Ok(()),
            Self::DocumentsExpired => Err(AdminError::DocumentsExpired),
            Self::AlreadyCompleted => Err(AdminError::AlreadyCompleted),
            Self::NotFailed => Err(AdminError::InvalidState(
                "only a failed registration can be re-driven; this one is queued or in progress"
                    .into(),
            )),
            Self::NotFound => Err(AdminError::NotFound),
        }
    }

    fn refused(refused: &TransitionError) -> Self {
        match refused {
            TransitionError::NotFound => Self::NotFound,
            TransitionError::AlreadyCompleted => Self::AlreadyCompleted,
            _ => Self::NotFailed,
        }
    }
}

/// Re-drives one registration.
pub async fn one(state: &AdminState, id: RegistrationId) -> Result<Outcome, AdminError> {
    let Some(record) = state.status.get(id).await? else {
        return Ok(Outcome::NotFound);
    };
    if record.status != intake_shared::status::JobState::Failed {
        // Checked again, atomically, by the transition below; this only spares the
        // staging look-ups.
        return Ok(Outcome::refused(&match record.status {
            intake_shared::status::JobState::Completed => TransitionError::AlreadyCompleted,
            other => TransitionError::NotFailed(other),
        }));
    }
    let job = match state.status.failed_job(id).await {
        Ok(Some(job)) => job,
        Ok(None) => return Ok(Outcome::DocumentsExpired),
        // A payload that no longer decodes cannot run again: as good as gone.
        Err(err @ StatusError::Corrupt { .. }) => {
            tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %id, "kept payload unreadable");
            return Ok(Outcome::DocumentsExpired);
        }
        Err(err) => return Err(err.into()),
    };
    // A registration already saved needs no staged documents: its next run skips to email.
    if !registrations::is_saved(&state.pool, id).await? {
        for doc in &job.documents {
            if !state.staging.exists(&doc.staged_path).await? {
                return Ok(Outcome::DocumentsExpired);
            }
        }
    }
    let requeued = match state.status.requeue(id, &job).await {
        Ok(requeued) => requeued,
        Err(StatusError::Refused(refused)) => return Ok(Outcome::refused(&refused)),
        Err(err) => return Err(err.into()),
    };
    // One job per run: a second push for the same run (a retried call) leaves one job.
    let key = format!("{id}:redrive:{}", requeued.job.run);
    let pushed = intake_shared::queue::push(
        &state.redis,
        &state.queue,
        &requeued.job,
        &key,
        state.settings.queue.max_attempts,
    )
    .await;
    if let Err(err) = pushed {
        return settle_failed_push(state, &requeued, &key, err).await;
    }
    tracing::info!(registration_id = %id, run = requeued.job.run, "registration re-driven");
    Ok(Outcome::Requeued)
}

/// A push that failed may still have queued the job (its answer was lost): if the run's
/// key is in the queue, the re-drive happened. Otherwise the registration goes back to
/// `failed` (keeping the new run, so the next re-drive pushes under a new key); if it
/// changed since, its job ran after all.
async fn settle_failed_push(
    state: &AdminState,
    requeued: &Requeued,
    key: &str,
    err: PushError,
) -> Result<Outcome, AdminError> {
    let id = requeued.job.registration_id;
    if let Ok(true) = intake_shared::queue::is_pushed(&mut state.redis(), &state.queue, key).await {
        tracing::info!(registration_id = %id, "re-drive queued although its push reported an error");
        return Ok(Outcome::Requeued);
    }
    match state.status.undo_requeue(requeued).await {
        Ok(true) => Err(err.into()),
        Ok(false) => Ok(Outcome::Requeued),
        Err(undo) => {
            // Left `queued` with no job: support sees it queued; the error says why.
            tracing::error!(
                error = &undo as &dyn std::error::Error,
                push_error = &err as &dyn std::error::Error,
                registration_id = %id,
                "re-drive neither queued nor undone"
            );
            Err(err.into())
        }
    }
}
