//! The registration job, top to bottom: **allocate team ID → upload documents → save
//! registration → send email → completed**, publishing the status before each step. Every
//! step is safe to run again, which is what makes at-least-once delivery (a crashed worker,
//! a re-drive) produce its effects exactly once.

use std::path::{Component, Path};
use std::sync::Arc;

use intake_shared::staging::StagingStore;
use std::time::Instant;

use intake_shared::job::RegistrationJob;
use intake_shared::status::Step;
use sqlx::PgPool;

use crate::error::StepError;
use crate::status::StatusStore;
use crate::steps::allocate_id::{self, Allocation};
use crate::steps::notify::Notifier;
use crate::steps::save;
use crate::steps::upload::Uploader;
use intake_shared::domain::{RegistrationId, TeamId};

pub struct Pipeline {
    pub pool: PgPool,
    pub status: StatusStore,
    pub uploader: Uploader,
    pub notifier: Notifier,
    pub staging: Arc<dyn StagingStore>,
    pub team_id_prefix: String,
    pub team_id_width: usize,
}

impl Pipeline {
    #[tracing::instrument(
        name = "job",
        skip_all,
        fields(registration_id = %job.registration_id, request_id = %job.request_id, attempt)
    )]
    pub async fn run(&self, job: &RegistrationJob, attempt: u32) -> Result<(), StepError> {
        tracing::Span::current().record("attempt", attempt);
        let id = job.registration_id;
        // 1. Team ID: the same one on every run of this registration. (Each status change
        // says where the job is now: `processing` comes with its first step, the team ID
        // with the next one.)
        self.status
            .processing(id, attempt, Step::AllocatingId)
            .await?;
        let team_id = timed("allocating_id", self.allocate(job)).await?;
        tracing::info!(%team_id, "team ID allocated");

        // 2 and 3. Documents, then the registration in one statement. A run after the
        // registration was saved (its staged files may be gone by then) skips both.
        self.status
            .team_id(id, &team_id, Step::UploadingFiles)
            .await?;
        if save::is_saved(&self.pool, id).await? {
            tracing::info!("registration already saved by an earlier run");
        } else {
            let documents = timed(
                "uploading_files",
                self.uploader.run(self.staging.as_ref(), job),
            )
            .await?;
            self.status.step(id, Step::Saving).await?;
            let saved = timed("saving", save::run(&self.pool, job, &team_id, &documents)).await?;
            tracing::info!(?saved, documents = documents.len(), "registration saved");
        }

        // The documents are stored and saved: the staged copies are not needed by any later
        // run (it finds the registration saved), so they go before anyone sees "completed".
        let uploads = upload_dirs(job);
        self.remove_staged(&uploads).await;

        // 4. Confirmation email: never fatal.
        self.status.sending_email(id).await?;
        let email = timed(
            "sending_email",
            self.notifier.run(&self.pool, job, &team_id),
        )
        .await?;

        self.status.completed(job, &uploads, email).await?;
        tracing::info!(?email, "registration completed");
        Ok(())
    }

    /// The team ID, with the claim on the team. A team claimed by a registration that
    /// failed for good and was never saved is taken over; one claimed by a registration
    /// still in progress or saved makes this one a duplicate.
    async fn allocate(&self, job: &RegistrationJob) -> Result<TeamId, StepError> {
        let (prefix, width) = (&self.team_id_prefix, self.team_id_width);
        let mut take_over = None;
        loop {
            match allocate_id::run(&self.pool, job, prefix, width, take_over).await? {
                Allocation::Allocated(team_id) => return Ok(team_id),
                Allocation::Claimed { holder } => {
                    if take_over.is_none() && self.gave_up(holder).await? {
                        tracing::info!(%holder, "taking over the team's claim from a failed registration");
                        take_over = Some(holder);
                        continue;
                    }
                    return Err(save::duplicate());
                }
            }
        }
    }

    /// Whether `holder` failed for good (or is unknown) and was never saved.
    async fn gave_up(&self, holder: RegistrationId) -> Result<bool, StepError> {
        if save::is_saved(&self.pool, holder).await? {
            return Ok(false);
        }
        let status = self.status.get(holder).await.map_err(|e| {
            StepError::transient(
                intake_shared::errors::JobFailureCode::StatusUnavailable,
                format!("reading the status of the team's holder: {e}"),
            )
        })?;
        Ok(status.is_none_or(|s| s.status == intake_shared::status::JobState::Failed))
    }

    /// Marks the registration failed for good; its staged files stay for a re-drive.
    pub async fn fail(
        &self,
        job: &RegistrationJob,
        attempt: u32,
        error: &StepError,
    ) -> Result<(), StepError> {
        tracing::warn!(
            registration_id = %job.registration_id,
            request_id = %job.request_id,
            code = error.code().as_str(),
            error = error.message(),
            "registration failed"
        );
        self.status.failed(job, attempt, error).await
    }

    /// Records a failed attempt that will be retried (best effort: history, not state).
    pub async fn attempt_failed(&self, job: &RegistrationJob, attempt: u32, error: &StepError) {
        if let Err(err) = self
            .status
            .attempt_failed(job.registration_id, attempt, error)
            .await
        {
            tracing::debug!(error = %err, "attempt history not recorded");
        }
    }

    /// Removes the upload's staging directory. A failure here only leaves files for the
    /// staging janitor; the registration is complete either way.
    async fn remove_staged(&self, uploads: &[String]) {
        for upload in uploads {
            if let Err(err) = self.staging.remove_upload(upload).await {
                tracing::warn!(error = %err, %upload, "staged files not removed");
            }
        }
    }
}

/// The upload directories a job's documents live in: the first component of each staged
/// path, and only when it is a plain name (a payload can never point outside staging).
pub fn upload_dirs(job: &RegistrationJob) -> Vec<String> {
    let mut dirs: Vec<String> = job
        .documents
        .iter()
        .filter_map(|d| match Path::new(&d.staged_path).components().next() {
            Some(Component::Normal(name)) => name.to_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

async fn timed<T>(
    step: &'static str,
    work: impl Future<Output = Result<T, StepError>>,
) -> Result<T, StepError> {
    let started = Instant::now();
    let result = work.await;
    metrics::histogram!("intake_worker_step_duration_seconds", "step" => step)
        .record(started.elapsed().as_secs_f64());
    result
}
