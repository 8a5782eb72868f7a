//! The apalis-redis queue every process uses. The api and the support tools push with this
//! configuration and code, the worker consumes with it; a difference would silently strand
//! jobs.

use apalis_core::backend::WireFormatBackend;
use apalis_core::backend::codec::Codec;
use apalis_core::task::builder::TaskBuilder;
use apalis_redis::{RedisStorage, RedisTask};
use redis::aio::ConnectionManager;

use crate::config::Settings;
use crate::job::RegistrationJob;

/// apalis-redis settings for the registrations queue: the queue name from the configured
/// prefix, and the queue's own idempotency entries kept as long as `Idempotency-Key`s.
pub fn config(settings: &Settings) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(settings.keys().queue())
        .idempotency_ttl(Some(settings.idempotency_ttl()))
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Queue(#[from] apalis_redis::Error),
    #[error("job could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Whether a push created the job or found one with the same idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    New,
    AlreadyQueued,
}

/// Pushes a job through apalis-redis' own push script and JSON codec, so the worker reads it
/// like any apalis job. `idempotency_key` is apalis' own: a second push with the same key
/// leaves one job. (Called directly rather than through `TaskSink` because only this call
/// says whether the job was new.)
pub async fn push(
    conn: &ConnectionManager,
    config: &apalis_redis::Config,
    job: &RegistrationJob,
    idempotency_key: &str,
    max_attempts: u32,
) -> Result<Pushed, PushError> {
    let mut storage =
        RedisStorage::<RegistrationJob>::new(conn.clone()).with_config(config.clone());
    let args = storage.codec().encode(job)?;
    let task: RedisTask = TaskBuilder::new(args)
        .idempotency_key(idempotency_key)
        .max_attempts(max_attempts as usize)
        .build();
    let (enqueued, scheduled) =
        apalis_redis::queries::push_tasks(storage.get_connection(), config, &[task]).await?;
    Ok(if enqueued + scheduled > 0 {
        Pushed::New
    } else {
        Pushed::AlreadyQueued
    })
}
