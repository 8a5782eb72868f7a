//! Publishes a registration's status (docs/contract.md §4) as the job moves: the record in Redis
//! that the api serves, and an event on the registration's channel for live listeners.
//! A status that cannot be written is a transient job failure: a client must never be left
//! watching a registration that silently finished.

use std::time::Duration;

use intake_shared::domain::{RegistrationId, TeamId};
use intake_shared::errors::JobFailureCode;
use intake_shared::job::RegistrationJob;
use intake_shared::keys::RedisKeys;
use intake_shared::status::{EmailStatus, JobError, JobState, StatusRecord, Step};
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

use crate::error::StepError;

/// How many attempt errors are kept per registration.
const MAX_ATTEMPT_ENTRIES: isize = 50;

/// One line of a registration's attempt history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    pub code: JobFailureCode,
    pub message: String,
    pub transient: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

fn attempt_entry(attempt: u32, error: &StepError) -> String {
    serde_json::to_string(&AttemptError {
        attempt,
        code: error.code(),
        message: error.message().to_owned(),
        transient: error.is_transient(),
        at: OffsetDateTime::now_utc(),
    })
    .unwrap_or_default()
}

#[derive(Clone)]
pub struct StatusStore {
    conn: ConnectionManager,
    keys: RedisKeys,
    /// How long a completed registration's status stays readable.
    completed_ttl: Duration,
}

impl StatusStore {
    pub fn new(conn: ConnectionManager, keys: RedisKeys, completed_ttl: Duration) -> Self {
        Self {
            conn,
            keys,
            completed_ttl,
        }
    }

    pub async fn get(&self, id: RegistrationId) -> Result<Option<StatusRecord>, redis::RedisError> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.status(&id))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn update(
        &self,
        id: RegistrationId,
        change: impl FnOnce(&mut StatusRecord),
    ) -> Result<StatusRecord, StepError> {
        self.update_with(id, change, |_| {}).await
    }

    /// Changes the record and, in the same transaction, runs `also`'s commands.
    async fn update_with(
        &self,
        id: RegistrationId,
        change: impl FnOnce(&mut StatusRecord),
        also: impl FnOnce(&mut redis::Pipeline),
    ) -> Result<StatusRecord, StepError> {
        let unavailable = |e: redis::RedisError| {
            StepError::transient(
                JobFailureCode::StatusUnavailable,
                format!("status store unavailable: {e}"),
            )
        };
        let now = OffsetDateTime::now_utc();
        let mut record = self
            .get(id)
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|| StatusRecord::queued(id, now));
        change(&mut record);
        record.updated_at = now;
        let json = serde_json::to_string(&record)
            .map_err(|e| StepError::permanent(JobFailureCode::InternalError, e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        also(&mut pipe);
        if record.status == JobState::Completed {
            pipe.set_ex(
                self.keys.status(&id),
                &json,
                self.completed_ttl.as_secs().max(1),
            );
        } else {
            pipe.set(self.keys.status(&id), &json);
        }
        pipe.publish(self.keys.status_channel(&id), &json);
        if record.status == JobState::Failed {
            // Scored in milliseconds, so failures in the same second keep their order.
            pipe.zadd(self.keys.failed_index(), id.to_string(), unix_millis(now));
        } else {
            pipe.zrem(self.keys.failed_index(), id.to_string());
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(record)
    }

    /// The job is running (attempt `attempt`), at its first `step`.
    pub async fn processing(
        &self,
        id: RegistrationId,
        attempt: u32,
        step: Step,
    ) -> Result<(), StepError> {
        self.update(id, |r| {
            r.status = JobState::Processing;
            r.attempts = attempt;
            r.error = None;
            r.step = Some(step);
        })
        .await
        .map(drop)
    }

    pub async fn step(&self, id: RegistrationId, step: Step) -> Result<(), StepError> {
        self.update(id, |r| r.step = Some(step)).await.map(drop)
    }

    /// The team ID is allocated; the job goes on to `next`.
    pub async fn team_id(
        &self,
        id: RegistrationId,
        team_id: &TeamId,
        next: Step,
    ) -> Result<(), StepError> {
        self.update(id, |r| {
            r.team_id = Some(team_id.to_string());
            r.step = Some(next);
        })
        .await
        .map(drop)
    }

    pub async fn sending_email(&self, id: RegistrationId) -> Result<(), StepError> {
        self.update(id, |r| {
            r.step = Some(Step::SendingEmail);
            r.email_status = Some(EmailStatus::Pending);
        })
        .await
        .map(drop)
    }

    /// The registration is done: its failure record (from an earlier, re-driven run) and the
    /// marks of its staged uploads go with it.
    pub async fn completed(
        &self,
        job: &RegistrationJob,
        uploads: &[String],
        email: EmailStatus,
    ) -> Result<(), StepError> {
        let id = job.registration_id;
        self.update_with(
            id,
            |r| {
                r.status = JobState::Completed;
                r.step = None;
                r.email_status = Some(email);
                r.error = None;
            },
            |pipe| {
                pipe.del(self.keys.failed_job(&id));
                for upload in uploads {
                    pipe.del(self.keys.staged_upload(upload));
                }
            },
        )
        .await
        .map(drop)
    }

    /// The registration failed for good: the record says why, and the payload is kept for a
    /// re-drive.
    pub async fn failed(
        &self,
        job: &RegistrationJob,
        attempt: u32,
        error: &StepError,
    ) -> Result<(), StepError> {
        let id = job.registration_id;
        let payload = serde_json::to_string(job)
            .map_err(|e| StepError::permanent(JobFailureCode::InternalError, e.to_string()))?;
        let entry = attempt_entry(attempt, error);
        self.update_with(
            id,
            |r| {
                r.status = JobState::Failed;
                r.step = None;
                r.attempts = attempt.max(r.attempts);
                r.error = Some(JobError {
                    code: error.code(),
                    message: error.message().to_owned(),
                });
            },
            |pipe| {
                pipe.set(self.keys.failed_job(&id), payload);
                pipe.rpush(self.keys.attempts(&id), entry);
                pipe.ltrim(self.keys.attempts(&id), -MAX_ATTEMPT_ENTRIES, -1);
            },
        )
        .await
        .map(drop)
    }

    /// Remembers why one attempt failed (support staff see every attempt's error).
    pub async fn attempt_failed(
        &self,
        id: RegistrationId,
        attempt: u32,
        error: &StepError,
    ) -> Result<(), redis::RedisError> {
        redis::pipe()
            .rpush(self.keys.attempts(&id), attempt_entry(attempt, error))
            .ltrim(self.keys.attempts(&id), -MAX_ATTEMPT_ENTRIES, -1)
            .query_async::<()>(&mut self.conn.clone())
            .await
    }
}

/// A time as Unix milliseconds, the score of the failed index.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
