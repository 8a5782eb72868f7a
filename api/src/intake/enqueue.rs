//! Hands an accepted registration to the queue: the initial `queued` status record, then the
//! job, pushed through apalis-redis' own push script so the worker reads it like any apalis
//! job. The job carries the registration id as apalis' idempotency key, so pushing the same
//! registration twice leaves one job.

use apalis_core::backend::WireFormatBackend;
use apalis_core::backend::codec::Codec;
use apalis_core::task::builder::TaskBuilder;
use apalis_redis::{RedisStorage, RedisTask};
use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_shared::keys::RedisKeys;
use intake_shared::status::StatusRecord;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Queue(#[from] apalis_redis::Error),
    #[error("job could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Whether a push created the job or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    New,
    AlreadyQueued,
}

#[derive(Debug, Clone)]
pub struct Enqueuer {
    keys: RedisKeys,
    queue: apalis_redis::Config,
    max_attempts: usize,
}

impl Enqueuer {
    pub fn new(keys: RedisKeys, queue: apalis_redis::Config, max_attempts: u32) -> Self {
        Self {
            keys,
            queue,
            max_attempts: max_attempts as usize,
        }
    }

    /// Writes the `queued` record unless one exists; `true` if this call wrote it.
    pub async fn write_status(
        &self,
        conn: &mut ConnectionManager,
        id: RegistrationId,
    ) -> Result<bool, EnqueueError> {
        let record = serde_json::to_string(&StatusRecord::queued(id, OffsetDateTime::now_utc()))?;
        let written: bool = redis::cmd("SET")
            .arg(self.keys.status(&id))
            .arg(record)
            .arg("NX")
            .query_async::<Option<String>>(conn)
            .await?
            .is_some();
        Ok(written)
    }

    pub async fn remove_status(
        &self,
        conn: &mut ConnectionManager,
        id: RegistrationId,
    ) -> Result<(), redis::RedisError> {
        conn.del::<_, ()>(self.keys.status(&id)).await
    }

    pub async fn push(
        &self,
        conn: &ConnectionManager,
        job: &RegistrationJob,
    ) -> Result<Pushed, EnqueueError> {
        let mut storage =
            RedisStorage::<RegistrationJob>::new(conn.clone()).with_config(self.queue.clone());
        let args = storage.codec().encode(job)?;
        let task: RedisTask = TaskBuilder::new(args)
            .idempotency_key(job.registration_id.to_string())
            .max_attempts(self.max_attempts)
            .build();
        let config = storage.get_config().clone();
        let (enqueued, scheduled) =
            apalis_redis::queries::push_tasks(storage.get_connection(), &config, &[task]).await?;
        Ok(if enqueued + scheduled > 0 {
            Pushed::New
        } else {
            Pushed::AlreadyQueued
        })
    }

    /// Whether the queue holds a job for this registration, to settle a push whose answer
    /// was lost.
    pub async fn is_queued(
        &self,
        conn: &mut ConnectionManager,
        id: RegistrationId,
    ) -> Result<bool, redis::RedisError> {
        conn.exists(format!("{}:{id}", self.queue.idempotency_key_set()))
            .await
    }

    /// Jobs waiting to be picked up. apalis-redis parks every pushed job in its scheduled
    /// set (due at once) until a worker's fetch moves it to the active list, so both count.
    pub async fn depth(&self, conn: &mut ConnectionManager) -> Result<u64, redis::RedisError> {
        let (active, scheduled): (u64, u64) = redis::pipe()
            .llen(self.queue.active_jobs_list())
            .zcard(self.queue.scheduled_jobs_set())
            .query_async(conn)
            .await?;
        Ok(active + scheduled)
    }
}
