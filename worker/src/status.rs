//! Publishes a registration's status (design.md §4) as the job moves: the record in Redis
//! that the api serves, and an event on the registration's channel for live listeners.
//! A status that cannot be written is a transient job failure: a client must never be left
//! watching a registration that silently finished.

use std::time::Duration;

use intake_shared::domain::{RegistrationId, TeamId};
use intake_shared::errors::JobFailureCode;
use intake_shared::keys::RedisKeys;
use intake_shared::status::{EmailStatus, JobError, JobState, StatusRecord, Step};
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

use crate::error::StepError;

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
            pipe.zadd(
                self.keys.failed_index(),
                id.to_string(),
                now.unix_timestamp(),
            );
        } else {
            pipe.zrem(self.keys.failed_index(), id.to_string());
        }
        pipe.query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(record)
    }

    pub async fn processing(&self, id: RegistrationId, attempt: u32) -> Result<(), StepError> {
        self.update(id, |r| {
            r.status = JobState::Processing;
            r.attempts = attempt;
            r.error = None;
        })
        .await
        .map(drop)
    }

    pub async fn step(&self, id: RegistrationId, step: Step) -> Result<(), StepError> {
        self.update(id, |r| r.step = Some(step)).await.map(drop)
    }

    pub async fn team_id(&self, id: RegistrationId, team_id: &TeamId) -> Result<(), StepError> {
        self.update(id, |r| r.team_id = Some(team_id.to_string()))
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

    pub async fn completed(&self, id: RegistrationId, email: EmailStatus) -> Result<(), StepError> {
        self.update(id, |r| {
            r.status = JobState::Completed;
            r.step = None;
            r.email_status = Some(email);
            r.error = None;
        })
        .await
        .map(drop)
    }

    pub async fn failed(
        &self,
        id: RegistrationId,
        attempt: u32,
        error: &StepError,
    ) -> Result<(), StepError> {
        self.update(id, |r| {
            r.status = JobState::Failed;
            r.attempts = attempt.max(r.attempts);
            r.error = Some(JobError {
                code: error.code(),
                message: error.message().to_owned(),
            });
        })
        .await
        .map(drop)
    }
}
