//! Hands an accepted registration to the queue: the initial `queued` status record (written
//! through the store's status repository), then the job, pushed through apalis-redis' own push script so the worker reads it like any apalis
//! job. The job carries the registration id as apalis' idempotency key, so pushing the same
//! registration twice leaves one job.

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_shared::keys::RedisKeys;
use intake_store::status::{StatusError, StatusRepository};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

pub use intake_shared::queue::Pushed;

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Queue(#[from] apalis_redis::Error),
    #[error("job could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("status record")]
    Status(#[from] StatusError),
}

impl From<intake_shared::queue::PushError> for EnqueueError {
    fn from(err: intake_shared::queue::PushError) -> Self {
        match err {
            intake_shared::queue::PushError::Queue(e) => Self::Queue(e),
            intake_shared::queue::PushError::Encode(e) => Self::Encode(e),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Enqueuer {
    keys: RedisKeys,
    status: StatusRepository,
    queue: apalis_redis::Config,
    max_attempts: u32,
}

impl Enqueuer {
    pub fn new(
        keys: RedisKeys,
        status: StatusRepository,
        queue: apalis_redis::Config,
        max_attempts: u32,
    ) -> Self {
        Self {
            keys,
            status,
            queue,
            max_attempts,
        }
    }

    /// Writes the `queued` record unless one exists (`true` if this call wrote it), and
    /// marks the upload directory as this registration's, in one step.
    pub async fn write_status(
        &self,
        id: RegistrationId,
        upload: &str,
    ) -> Result<bool, EnqueueError> {
        Ok(self.status.create(id, upload).await?)
    }

    /// Undoes [`Self::write_status`]: the upload mark always, the status only if this
    /// request wrote it.
    pub async fn remove_status(
        &self,
        id: RegistrationId,
        upload: &str,
        created_status: bool,
    ) -> Result<(), StatusError> {
        self.status.withdraw(id, upload, created_status).await
    }

    /// Forgets an upload directory that no job will use (its files are being removed).
    pub async fn forget_upload(
        &self,
        conn: &mut ConnectionManager,
        upload: &str,
    ) -> Result<(), redis::RedisError> {
        conn.del::<_, ()>(self.keys.staged_upload(upload)).await
    }

    /// Pushes the job with its registration id as apalis' idempotency key, and records
    /// which registration its staged files belong to (the staging janitor reads that).
    pub async fn push(
        &self,
        conn: &ConnectionManager,
        job: &RegistrationJob,
    ) -> Result<Pushed, EnqueueError> {
        let pushed = intake_shared::queue::push(
            conn,
            &self.queue,
            job,
            &job.registration_id.to_string(),
            self.max_attempts,
        )
        .await?;
        Ok(pushed)
    }

    /// The queue's apalis-redis configuration.
    pub fn queue(&self) -> &apalis_redis::Config {
        &self.queue
    }

    /// Whether the queue holds a job for this registration, to settle a push whose answer
    /// was lost.
    pub async fn is_queued(
        &self,
        conn: &mut ConnectionManager,
        id: RegistrationId,
    ) -> Result<bool, redis::RedisError> {
        intake_shared::queue::is_pushed(conn, &self.queue, &id.to_string()).await
    }
}
