//! The queue-wide gauges: `intake_queue_depth`, `intake_queue_oldest_waiting_seconds`,
//! `intake_queue_in_flight`, `intake_workers_alive` and `intake_failed_registrations` count the
//! whole queue, not one process, so exactly one worker process at a time reports them and
//! every other reports 0; `sum()` and `max()` over the workers are then both the queue's.
//! The one that reports holds a lease in Redis (`{prefix}:metrics-leader`, holding its random
//! owner id), taken with SET NX PX and renewed by its holder at every refresh (one each
//! heartbeat); it lasts three refreshes, so when its holder dies another worker takes over
//! within about three heartbeats, and at once after a graceful shutdown, which frees it.
//! While the holder changes, two processes may report for at most one refresh.

use std::time::Duration;

use intake_shared::keys::RedisKeys;
use intake_shared::lease::Lease;
use intake_shared::queue::QueueStats;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

/// How many refreshes one taking or renewal of the lease lasts.
pub const LEASE_REFRESHES: u32 = 3;

/// One worker process' part in the queue-wide gauges.
pub struct QueueGauges {
    redis: ConnectionManager,
    /// apalis-redis' keys, read for the numbers.
    queue: apalis_redis::Config,
    failed_index: String,
    /// Held by the one process that reports the queue's numbers.
    lease: Lease,
    interval: Duration,
    /// Whether this process reported the queue's numbers at its last refresh (`None`
    /// before the first).
    reporting: Option<bool>,
}

impl QueueGauges {
    /// Refreshes every `interval` (the heartbeat); the lease lasts `LEASE_REFRESHES` of them.
    pub fn new(
        redis: ConnectionManager,
        keys: &RedisKeys,
        queue: apalis_redis::Config,
        interval: Duration,
    ) -> Self {
        Self {
            lease: Lease::new(redis.clone(), keys.metrics_leader()),
            redis,
            queue,
            failed_index: keys.failed_index(),
            interval,
            reporting: None,
        }
    }

    /// Renews the lease if this process holds it, else takes it if it is free; whether this
    /// process holds it now.
    pub async fn hold(&self) -> Result<bool, redis::RedisError> {
        self.lease
            .hold(self.interval.saturating_mul(LEASE_REFRESHES))
            .await
    }

    /// Frees the lease if this process holds it, so another worker reports at its next
    /// refresh instead of after the lease runs out.
    pub async fn release(&self) -> Result<(), redis::RedisError> {
        self.lease.release().await
    }

    /// One refresh: the queue's numbers if this process holds (or takes) the lease, 0
    /// otherwise. Whether it reports the queue's numbers now.
    pub async fn refresh(&mut self) -> bool {
        let holds = match self.hold().await {
            Ok(holds) => holds,
            // Unconfirmed is not held: another worker may have the lease by now.
            Err(err) => {
                tracing::debug!(error = %err, "metrics lease not renewed: Redis unavailable");
                false
            }
        };
        if holds {
            let mut conn = self.redis.clone();
            match intake_shared::queue::stats(&mut conn, &self.queue, &self.failed_index).await {
                Ok(stats) => report(&stats),
                // The last numbers stay: this process still holds the lease.
                Err(err) => tracing::debug!(error = %err, "queue stats unavailable"),
            }
        }
        if self.reporting != Some(holds) {
            if holds {
                tracing::info!("this worker now reports the queue-wide gauges");
            } else {
                // Set once, not at every refresh: nothing else changes them in this process.
                report(&QueueStats::default());
                if self.reporting.is_some() {
                    tracing::info!("another worker reports the queue-wide gauges now");
                }
            }
            self.reporting = Some(holds);
        }
        holds
    }

    /// Refreshes at once and then every interval until shut down; then reports 0 and frees
    /// the lease.
    pub async fn run(mut self, token: CancellationToken) {
        loop {
            self.refresh().await;
            if !crate::periodic::pause(&token, self.interval).await {
                break;
            }
        }
        if self.reporting == Some(true) {
            report(&QueueStats::default());
        }
        if let Err(err) = self.release().await {
            tracing::debug!(error = %err, "metrics lease not freed; it runs out by itself");
        }
    }
}

fn report(stats: &QueueStats) {
    metrics::gauge!("intake_queue_depth").set(stats.waiting as f64);
    metrics::gauge!("intake_queue_oldest_waiting_seconds").set(stats.oldest_waiting_secs as f64);
    metrics::gauge!("intake_queue_in_flight").set(stats.in_flight as f64);
    metrics::gauge!("intake_failed_registrations").set(stats.failed as f64);
    metrics::gauge!("intake_workers_alive").set(stats.workers_alive as f64);
}
