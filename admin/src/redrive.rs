//! Re-driving a failed registration: the same registration id, so the job finds its team ID
//! and re-uses its staged files, pushed as the job of the registration's next run. The status
//! record moves from `failed` to `queued` in one compare-and-set (docs/contract.md §10), so two
//! support staff re-driving one registration at once enqueue it once, and a worker still
//! running the old run is refused at its next status write.

use intake_shared::domain::RegistrationId;
use intake_store::status::{StatusError, TransitionError};
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
    let Some(job) = state.status.failed_job(id).await? else {
        return Ok(Outcome::DocumentsExpired);
    };
    for doc in &job.documents {
        let present = state.staging.exists(&doc.staged_path).await?;
        if !present {
            return Ok(Outcome::DocumentsExpired);
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
        state.settings.job_max_attempts,
    )
    .await;
    if let Err(err) = pushed {
        // Put the registration back as it was, so it can be re-driven again.
        if let Err(undo) = state.status.undo_requeue(&requeued).await {
            tracing::error!(error = &undo as &dyn std::error::Error, registration_id = %id, "re-drive not undone");
        }
        return Err(err.into());
    }
    tracing::info!(registration_id = %id, run = requeued.job.run, "registration re-driven");
    Ok(Outcome::Requeued)
}
