//! Hands an accepted registration's job to the queue (its `queued` status record is written
//! first, through the store's status repository), pushed through apalis-redis' own push
//! script so the worker reads it like any apalis job. The job carries the registration id as apalis' idempotency key, so pushing the same
//! registration twice leaves one job.

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_shared::keys::RedisKeys;
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
    queue: apalis_redis::Config,
    max_attempts: u32,
}

impl Enqueuer {
    pub fn new(keys: RedisKeys, queue: apalis_redis::Config, max_attempts: u32) -> Self {
        Self {
            keys,
            queue,
            max_attempts,
        }
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
