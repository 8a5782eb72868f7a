//! The dispatcher every worker runs: hands new outbox events on as deliveries and their
//! jobs, gives a new job to any pending delivery whose job was lost, and keeps the backlog
//! gauges. Workers share the outbox without a lease: each round locks the events it takes
//! (`FOR UPDATE SKIP LOCKED`), so two workers never hand on the same event.

use std::time::{Duration, Instant};

use intake_shared::config::WebhookSettings;
use intake_store::pg::PgPool;
use intake_store::pg::deliveries;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::deliver::DeliverError;

/// Events taken per statement.
const BATCH: i64 = 100;
/// How often the sweep and the gauges run, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
const GAUGES_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Dispatcher {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    /// The deliveries queue.
    pub queue: apalis_redis::Config,
    pub settings: WebhookSettings,
}

impl Dispatcher {
    /// Hands on every event waiting now; the deliveries made.
    pub async fn dispatch(&self) -> Result<usize, DeliverError> {
        let mut made = 0;
        loop {
            let ids = deliveries::dispatch(&self.pool, BATCH).await?;
            for id in &ids {
                // A push lost here leaves a pending delivery without a job: the sweep
                // gives it one once it is overdue.
                intake_shared::queue::push_delivery(&self.redis, &self.queue, *id, Some(0), None)
                    .await?;
            }
            made += ids.len();
            if ids.len() < BATCH as usize {
                return Ok(made);
            }
        }
    }

    /// New jobs for pending deliveries overdue by the sweep grace that nobody holds.
    pub async fn sweep(&self) -> Result<usize, DeliverError> {
        let lost = deliveries::sweep(&self.pool, self.settings.sweep_grace, BATCH).await?;
        for (id, _) in &lost {
            intake_shared::queue::push_delivery(&self.redis, &self.queue, *id, None, None).await?;
        }
        Ok(lost.len())
    }

    /// Runs until shut down: a dispatch every interval, the sweep and the gauges less often.
    pub async fn keep(self, token: CancellationToken) {
        let mut last_sweep = Instant::now();
        let mut last_gauges: Option<Instant> = None;
        loop {
            match self.dispatch().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deliveries = n, "events handed on"),
                Err(err) => tracing::warn!(error = %err, "events not handed on yet"),
            }
            if last_sweep.elapsed() >= SWEEP_EVERY {
                last_sweep = Instant::now();
                match self.sweep().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(deliveries = n, "deliveries without a job queued again")
                    }
                    Err(err) => tracing::warn!(error = %err, "delivery sweep skipped"),
                }
            }
            if last_gauges.is_none_or(|at| at.elapsed() >= GAUGES_EVERY) {
                last_gauges = Some(Instant::now());
                match deliveries::backlog(&self.pool).await {
                    Ok(backlog) => super::metrics::backlog(&backlog),
                    Err(err) => tracing::debug!(error = %err, "webhook gauges not refreshed"),
                }
            }
            if !crate::periodic::pause(&token, self.settings.dispatch_interval).await {
                return;
            }
        }
    }
}
