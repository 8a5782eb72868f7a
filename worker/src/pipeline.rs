//! The registration job, top to bottom: **claim the team → upload documents → save the
//! registration with its team ID → send email → completed**, publishing the status before each step. Every
//! step is safe to run again, which is what makes at-least-once delivery (a crashed worker,
//! a re-drive) produce its effects exactly once.

use std::sync::Arc;

use intake_shared::staging::StagingStore;
use std::time::Instant;

use intake_shared::errors::JobFailureCode;
use intake_shared::job::{Purpose, RegistrationJob};
use intake_shared::status::{EmailStatus, Step};
use intake_store::pg::outbox::Failure;
use intake_store::pg::registrations::{self, LoadError};
use intake_store::pg::{PgPool, audit, teams};
use intake_store::staging_quota::StagingQuota;
use intake_store::status::{StatusError, StatusRepository};
use intake_store::team_index::TeamIndex;

use crate::error::StepError;
use crate::failure_events::FailureEvents;
use crate::steps::claim_team::{self, Claim};
use crate::steps::notify::Notifier;
use crate::steps::save;
use crate::steps::upload::Uploader;
use intake_shared::config::TeamIdFormat;
use intake_shared::domain::RegistrationId;

pub struct Pipeline {
    pub pool: PgPool,
    pub status: StatusRepository,
    pub uploader: Uploader,
    pub notifier: Notifier,
    pub staging: Arc<dyn StagingStore>,
    pub team_ids: TeamIdFormat,
    /// The duplicate index the api reads at the door; kept here as claims come and go.
    pub team_index: TeamIndex,
    /// The api's per-client staging quota, given back as jobs are taken.
    pub staging_quota: StagingQuota,
    /// Failures for good, recorded in Postgres with their `registration.failed` event.
    pub failure_events: FailureEvents,
}

impl Pipeline {
    #[tracing::instrument(
        name = "job",
        skip_all,
        fields(registration_id = %job.registration_id, request_id = %job.request_id, attempt)
    )]
    pub async fn run(&self, job: &RegistrationJob, attempt: u32) -> Result<(), StepError> {
        tracing::Span::current().record("attempt", attempt);
        match &job.purpose {
            Purpose::Register => self.register(job, attempt).await,
            Purpose::ResendEmail {
                actor,
                reason,
                audit_id,
            } => self.resend_email(job, actor, reason, *audit_id).await,
            Purpose::ReviewDecision { version } => self.decision_email(job, *version).await,
        }
    }

    async fn register(&self, job: &RegistrationJob, attempt: u32) -> Result<(), StepError> {
        let id = job.registration_id;
        // The job is taken: its staged documents no longer count against the client's
        // quota at the api (best effort: the count expires with the retention anyway).
        if let Some(client) = &job.staged_by
            && let Err(err) = self.staging_quota.take(client, &job.uploads()).await
        {
            tracing::warn!(error = %err, "staging quota not given back");
        }
        // 1. The claim on the team, before anything is uploaded. (Each status change says
        // where the job is now: `processing` comes with its first step.)
        self.status.start(job, attempt, Step::ClaimingTeam).await?;
        timed("claiming_team", self.claim_team(job)).await?;

        // 2 and 3. Documents, then the registration with its team ID in one statement. A
        // run after the registration was saved (its staged files may be gone by then) skips
        // both and finds the ID it was saved with.
        let team_id = match save::saved_team_id(&self.pool, id).await? {
            Some(team_id) => {
                tracing::info!(%team_id, "registration already saved by an earlier run");
                team_id
            }
            None => {
                self.status.step(job, Step::UploadingFiles).await?;
                let documents = timed(
                    "uploading_files",
                    self.uploader.run(self.staging.as_ref(), job),
                )
                .await?;
                self.status.step(job, Step::Saving).await?;
                let saved = timed(
                    "saving",
                    save::run(&self.pool, job, &self.team_ids, &documents),
                )
                .await?;
                tracing::info!(?saved, documents = documents.len(), "registration saved");
                saved.team_id().clone()
            }
        };
        self.status.saved(job, &team_id).await?;

        // The documents are stored and saved: the staged copies are not needed by any later
        // run (it finds the registration saved), so they go before anyone sees "completed".
        let uploads = job.uploads();
        self.remove_staged(&uploads).await;

        // 4. Confirmation email: never fatal.
        let email = timed(
            "sending_email",
            self.notifier.run(&self.pool, job, &team_id),
        )
        .await?;

        self.status.complete(job, &uploads, email).await?;
        tracing::info!(?email, "registration completed");
        Ok(())
    }

    /// Support's resend: the confirmation again, whatever was sent before; the status
    /// record's `email_status` and the audit log say how it ended.
    async fn resend_email(
        &self,
        job: &RegistrationJob,
        actor: &str,
        reason: &str,
        audit_id: i64,
    ) -> Result<(), StepError> {
        let id = job.registration_id;
        let saved = registrations::load(&self.pool, id)
            .await
            .map_err(|e| match e {
                LoadError::Db(err) => crate::db::step_error(&err, "loading the registration"),
                LoadError::Invalid { .. } => StepError::permanent(
                    JobFailureCode::InternalError,
                    "the saved registration could not be read back",
                ),
            })?;
        let Some(saved) = saved else {
            return Err(StepError::permanent(
                JobFailureCode::InternalError,
                "only a saved registration's confirmation can be resent",
            ));
        };
        let email = timed(
            "sending_email",
            self.notifier.resend(
                &self.pool,
                id,
                &saved.registration,
                &saved.team_id,
                audit_id,
            ),
        )
        .await?;
        self.resend_ended(job, actor, reason, email, None).await;
        tracing::info!(?email, "confirmation resent");
        Ok(())
    }

    /// Records how a resend ended: `email_status` on the status record and the outcome row
    /// of the audit entry support staff opened (both best effort: the delivery row in
    /// Postgres is the truth, and the job must not be retried into a second email).
    async fn resend_ended(
        &self,
        job: &RegistrationJob,
        actor: &str,
        reason: &str,
        email: EmailStatus,
        error: Option<&StepError>,
    ) {
        let id = job.registration_id;
        if let Err(err) = self.status.email_resent(id, email).await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "email status not updated"
            );
        }
        let entry = audit::Entry {
            actor,
            action: audit::RESEND_EMAIL,
            registrations: &[id],
            reason: Some(reason),
            request_id: Some(&job.request_id),
        };
        let detail = serde_json::json!({
            "email_status": email,
            "error": error.map(StepError::message),
        });
        self.audit_email_outcome(entry, email, detail).await;
    }

    /// Writes an email job's outcome row: `succeeded` when the message was sent, `failed`
    /// otherwise. Best effort: the delivery row is the truth, and the job must not be
    /// retried into a second email because a log row could not be written.
    async fn audit_email_outcome(
        &self,
        entry: audit::Entry<'_>,
        email: EmailStatus,
        detail: serde_json::Value,
    ) {
        let outcome = if email == EmailStatus::Sent {
            audit::Outcome::Succeeded
        } else {
            audit::Outcome::Failed
        };
        if let Err(err) = entry.record(&self.pool, outcome, detail).await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                action = entry.action,
                "email outcome not audited"
            );
        }
    }

    /// An organiser's decision, emailed to the captains once per decision. The status
    /// record is not touched (the email has no public status; the admin service shows the
    /// review state); the audit log gets the outcome under the decision's actor.
    async fn decision_email(&self, job: &RegistrationJob, version: i32) -> Result<(), StepError> {
        let id = job.registration_id;
        let team_id = registrations::team_id_of(&self.pool, id)
            .await
            .map_err(|e| crate::db::step_error(&e, "loading the team ID"))?
            .ok_or_else(|| {
                StepError::permanent(
                    JobFailureCode::InternalError,
                    "a decision email is only for a saved registration, and this one is not saved",
                )
            })?;
        let decision = teams::decision(&self.pool, id, version)
            .await
            .map_err(|e| crate::db::step_error(&e, "loading the review decision"))?
            .ok_or_else(|| {
                StepError::permanent(
                    JobFailureCode::InternalError,
                    format!("the registration has no review decision {version}"),
                )
            })?;
        let email = timed(
            "sending_email",
            self.notifier
                .decision(&self.pool, id, &job.registration, &team_id, &decision),
        )
        .await?;
        self.decision_email_ended(job, version, Some(&decision), email, None)
            .await;
        tracing::info!(?email, version, "decision email dealt with");
        Ok(())
    }

    /// Records how a decision email ended: an outcome row of the `review` action, under
    /// the decision's actor (the worker's name when the decision cannot be found).
    async fn decision_email_ended(
        &self,
        job: &RegistrationJob,
        version: i32,
        decision: Option<&teams::Decision>,
        email: EmailStatus,
        error: Option<&StepError>,
    ) {
        let id = job.registration_id;
        let entry = audit::Entry {
            actor: decision.map_or(crate::db::WORKER_APPLICATION_NAME, |d| d.actor.as_str()),
            action: teams::REVIEW,
            registrations: &[id],
            reason: decision.map(|d| d.reason.as_str()),
            request_id: Some(&job.request_id),
        };
        let detail = serde_json::json!({
            "email": "decision",
            "version": version,
            "email_status": email,
            "error": error.map(StepError::message),
        });
        self.audit_email_outcome(entry, email, detail).await;
    }

    /// The claim on the team. A team claimed by a registration that failed for good and
    /// was never saved is taken over; one claimed by a registration still in progress or
    /// saved makes this one a duplicate.
    async fn claim_team(&self, job: &RegistrationJob) -> Result<(), StepError> {
        let mut take_over = None;
        loop {
            match claim_team::run(&self.pool, job, take_over).await? {
                Claim::Held => {
                    // Best effort: without the entry the api lets a duplicate through to
                    // the claim above, which refuses it.
                    let team = job.registration.team_key();
                    if let Err(err) = self.team_index.hold(&team, job.registration_id).await {
                        tracing::warn!(error = %err, "duplicate index entry not written");
                    }
                    return Ok(());
                }
                Claim::Other(holder) => {
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
        let status = match self.status.get(holder).await {
            Ok(status) => status,
            // A record that does not decode says nothing about the holder: as unknown.
            Err(err @ StatusError::Corrupt { .. }) => {
                tracing::warn!(error = &err as &dyn std::error::Error, %holder, "holder's status unreadable");
                None
            }
            Err(err) => return Err(err.into()),
        };
        Ok(status.is_none_or(|s| s.status == intake_shared::status::JobState::Failed))
    }

    /// Marks the registration failed for good; its staged files stay for a re-drive, unless
    /// it failed as a duplicate.
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
            error = %error.message(),
            "registration failed"
        );
        match &job.purpose {
            Purpose::Register => {}
            Purpose::ResendEmail { actor, reason, .. } => {
                // A resend that failed leaves the registration completed.
                self.resend_ended(job, actor, reason, EmailStatus::Failed, Some(error))
                    .await;
                return Ok(());
            }
            Purpose::ReviewDecision { version } => {
                // Nor is a decision email's failure the registration's. The decision, if it
                // can be read, names the actor of the outcome row.
                let decision = teams::decision(&self.pool, job.registration_id, *version)
                    .await
                    .ok()
                    .flatten();
                self.decision_email_ended(
                    job,
                    *version,
                    decision.as_ref(),
                    EmailStatus::Failed,
                    Some(error),
                )
                .await;
                return Ok(());
            }
        }
        // A twin run of this job (a delivery apalis made twice) may have saved the
        // registration while this one failed (its staged files went with the save): then
        // this run does not fail it; its next attempt finds it saved and completes it.
        if save::is_saved(&self.pool, job.registration_id).await? {
            return Err(StepError::transient(
                JobFailureCode::InternalError,
                "the registration was saved by another run of this job; finishing it",
            ));
        }
        self.status
            .fail(job, attempt, &error.attempt(attempt))
            .await?;
        // The run failed for good: other systems hear of it (docs/contract.md §16).
        self.failure_events
            .record(&Failure {
                registration_id: job.registration_id,
                run: job.run,
                code: error.code().as_str().to_owned(),
                team_name: job.registration.team_name.as_str().to_owned(),
                failed_at: time::OffsetDateTime::now_utc(),
            })
            .await;
        // The team may register again: its entry in the duplicate index goes (only if it
        // is this registration's; a duplicate's team stays held by the first).
        let team = job.registration.team_key();
        if let Err(err) = self.team_index.forget(&team, job.registration_id).await {
            tracing::warn!(error = %err, "duplicate index entry not removed");
        }
        // A duplicate can never be re-driven into anything but a duplicate: its staged
        // files go now rather than after the retention.
        if error.code() == JobFailureCode::DuplicateTeam {
            self.remove_staged(&job.uploads()).await;
        }
        Ok(())
    }

    /// Records a failed attempt that will be retried (best effort: history, not state).
    pub async fn attempt_failed(&self, job: &RegistrationJob, attempt: u32, error: &StepError) {
        if job.purpose != Purpose::Register {
            // A resend's or a decision email's retries are not the registration's attempts.
            return;
        }
        let entry = error.attempt(attempt);
        if let Err(err) = self
            .status
            .attempt_failed(job.registration_id, &entry)
            .await
        {
            tracing::debug!(
                error = &err as &dyn std::error::Error,
                "attempt history not recorded"
            );
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
