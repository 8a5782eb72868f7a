//! A registration's failure for good, told to other systems: its Postgres record and its
//! `registration.failed` event are written in one transaction (`pg::outbox`) once the
//! status record says the run failed. A failure is often Postgres being down, so when the
//! write cannot be made it is kept in a Redis set and written later by whichever worker finds
//! Postgres answering: the event is late then, never lost.

use intake_shared::keys::RedisKeys;
use intake_store::pg::PgPool;
use intake_store::pg::outbox::{self, Failure};
use redis::aio::ConnectionManager;

/// At most this many deferred failures are written per pass.
const PASS: usize = 100;

#[derive(Clone)]
pub struct FailureEvents {
    pool: PgPool,
    redis: ConnectionManager,
    deferred: String,
}

impl FailureEvents {
    pub fn new(pool: PgPool, redis: ConnectionManager, keys: &RedisKeys) -> Self {
        Self {
            pool,
            redis,
            deferred: keys.deferred_failures(),
        }
    }

    /// Writes the failure and its event now, or defers it.
    pub async fn record(&self, failure: &Failure) {
        let Err(err) = outbox::record_failure(&self.pool, failure).await else {
            return;
        };
        tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %failure.registration_id, "failure record deferred until Postgres answers");
        let deferred = match serde_json::to_string(failure) {
            Ok(json) => {
                redis::cmd("SADD")
                    .arg(&self.deferred)
                    .arg(json)
                    .query_async::<()>(&mut self.redis.clone())
                    .await
            }
            Err(err) => {
                tracing::error!(error = %err, "failure record could not be encoded");
                return;
            }
        };
        if let Err(err) = deferred {
            tracing::error!(error = %err, registration_id = %failure.registration_id, "failure record lost: neither Postgres nor Redis answered");
        }
    }

    /// Writes deferred failures; how many were written (or found written already).
    pub async fn record_deferred(&self) -> Result<usize, redis::RedisError> {
        let mut conn = self.redis.clone();
        let pending: Vec<String> = redis::cmd("SRANDMEMBER")
            .arg(&self.deferred)
            .arg(PASS)
            .query_async(&mut conn)
            .await?;
        let mut done = 0;
        for json in pending {
            match serde_json::from_str::<Failure>(&json) {
                Ok(failure) => {
                    if let Err(err) = outbox::record_failure(&self.pool, &failure).await {
                        tracing::debug!(
                            error = &err as &dyn std::error::Error,
                            "deferred failures wait for Postgres"
                        );
                        break;
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "a deferred failure does not decode; dropped")
                }
            }
            redis::cmd("SREM")
                .arg(&self.deferred)
                .arg(&json)
                .query_async::<()>(&mut conn)
                .await?;
            done += 1;
        }
        Ok(done)
    }
}

/// How often each worker looks for deferred failures.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Writes deferred failures every [`CHECK_EVERY`] until shut down.
pub async fn keep(events: FailureEvents, token: tokio_util::sync::CancellationToken) {
    crate::periodic::every(CHECK_EVERY, &token, || async {
        match events.record_deferred().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(failures = n, "deferred failure records written"),
            Err(err) => tracing::debug!(error = %err, "deferred failures not read"),
        }
    })
    .await;
}
