//! The apalis-redis queue every process uses. The api and the support tools push with this
//! configuration and code, the worker consumes with it; a difference would silently strand
//! jobs.

use apalis_core::backend::WireFormatBackend;
use apalis_core::backend::codec::Codec;
use apalis_core::task::builder::TaskBuilder;
use apalis_redis::{RedisStorage, RedisTask};
use redis::aio::ConnectionManager;

use crate::config::QueueSettings;
use crate::job::RegistrationJob;
use crate::keys::RedisKeys;

/// apalis-redis settings for the registrations queue: the queue name from the configured
/// prefix, and the queue's own idempotency entries kept as long as `Idempotency-Key`s.
pub fn config(keys: &RedisKeys, settings: &QueueSettings) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(keys.queue())
        .idempotency_ttl(Some(settings.idempotency_ttl))
}

/// Heartbeats a worker may miss before its jobs are handed to others.
pub const MISSED_HEARTBEATS: usize = 3;

/// The configuration workers consume with, and that tells who is alive: the queue plus the
/// heartbeat settings.
pub fn worker_config(keys: &RedisKeys, settings: &QueueSettings) -> apalis_redis::Config {
    config(keys, settings)
        .heartbeat_interval(settings.heartbeat)
        .missed_heartbeats(MISSED_HEARTBEATS)
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
    push_task(conn, config, job, idempotency_key, max_attempts, None).await
}

/// Pushes any job of ours (a registration, a webhook delivery) under its idempotency key,
/// to run at once or at `run_at`.
pub async fn push_task<J>(
    conn: &ConnectionManager,
    config: &apalis_redis::Config,
    job: &J,
    idempotency_key: &str,
    max_attempts: u32,
    run_at: Option<std::time::SystemTime>,
) -> Result<Pushed, PushError>
where
    J: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
{
    let mut storage = RedisStorage::<J>::new(conn.clone()).with_config(config.clone());
    let args = storage.codec().encode(job)?;
    let mut task = TaskBuilder::new(args)
        .idempotency_key(idempotency_key)
        .max_attempts(max_attempts as usize);
    if let Some(at) = run_at {
        task = task.run_at_time(at);
    }
    let task: RedisTask = task.build();
    let (enqueued, scheduled) =
        apalis_redis::queries::push_tasks(storage.get_connection(), config, &[task]).await?;
    Ok(if enqueued + scheduled > 0 {
        Pushed::New
    } else {
        Pushed::AlreadyQueued
    })
}

/// The most attempts a delivery job is given for its own errors (Postgres or Redis
/// unavailable; stored with the job; apalis-redis 1.0 itself stops at 25). An endpoint's
/// failures are not the job's: each HTTP attempt is counted in Postgres and has a job of
/// its own.
pub const DELIVERY_JOB_ATTEMPTS: u32 = 5;

/// Pushes `job` on the deliveries queue, due at `run_at` or now, under its idempotency key.
pub async fn push_delivery(
    conn: &ConnectionManager,
    config: &apalis_redis::Config,
    job: &crate::webhooks::DeliveryJob,
    run_at: Option<std::time::SystemTime>,
) -> Result<Pushed, PushError> {
    push_task(
        conn,
        config,
        job,
        &job.idempotency_key(),
        DELIVERY_JOB_ATTEMPTS,
        run_at,
    )
    .await
}

/// apalis-redis settings for the webhook deliveries queue: the registrations' worker
/// settings on a queue of its own, so deliveries never wait behind registrations or hold
/// their workers (docs/contract.md §16).
pub fn deliveries_config(keys: &RedisKeys, settings: &QueueSettings) -> apalis_redis::Config {
    worker_config(keys, settings).queue(keys.deliveries_queue())
}

/// Whether a job with this idempotency key was pushed (and its key not yet expired), to
/// settle a push whose answer was lost.
pub async fn is_pushed(
    conn: &mut ConnectionManager,
    config: &apalis_redis::Config,
    idempotency_key: &str,
) -> Result<bool, redis::RedisError> {
    redis::cmd("EXISTS")
        .arg(format!(
            "{}:{idempotency_key}",
            config.idempotency_key_set()
        ))
        .query_async(conn)
        .await
}

/// What operators and autoscalers watch: how much waits, how long the oldest has waited, how
/// much is running, and how much failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStats {
    /// Jobs waiting to be taken (due or scheduled for a retry).
    pub waiting: u64,
    /// Seconds the oldest due job has been waiting (0 when none is due).
    pub oldest_waiting_secs: u64,
    /// Jobs taken by a worker and not yet finished.
    pub in_flight: u64,
    /// Registrations whose job failed for good and wait for support.
    pub failed: u64,
    /// Worker processes whose heartbeat is current.
    pub workers_alive: u64,
}

/// Reads [`QueueStats`] from apalis-redis' keys and Intake's failed index.
pub async fn stats(
    conn: &mut ConnectionManager,
    config: &apalis_redis::Config,
    failed_index: &str,
) -> Result<QueueStats, redis::RedisError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let alive_since = now.saturating_sub(config.orphaned_duration().as_secs());
    let (active, scheduled, oldest, failed, workers): (
        u64,
        u64,
        Vec<(String, f64)>,
        u64,
        Vec<String>,
    ) = redis::pipe()
        .llen(config.active_jobs_list())
        .zcard(config.scheduled_jobs_set())
        .cmd("ZRANGE")
        .arg(config.scheduled_jobs_set())
        .arg(0)
        .arg(0)
        .arg("WITHSCORES")
        .zcard(failed_index)
        .cmd("ZRANGEBYSCORE")
        .arg(config.workers_set())
        .arg(alive_since)
        .arg("+inf")
        .query_async(conn)
        .await?;
    let mut in_flight = 0;
    if !workers.is_empty() {
        let mut pipe = redis::pipe();
        for worker in &workers {
            pipe.scard(format!("{}:{worker}", config.inflight_jobs_set()));
        }
        let counts: Vec<u64> = pipe.query_async(conn).await?;
        in_flight = counts.iter().sum();
    }
    let oldest_due = oldest
        .first()
        .map(|(_, score)| *score as u64)
        .filter(|due| *due <= now);
    Ok(QueueStats {
        waiting: active + scheduled,
        oldest_waiting_secs: oldest_due.map(|due| now - due).unwrap_or(0),
        in_flight,
        failed,
        workers_alive: workers.len() as u64,
    })
}
