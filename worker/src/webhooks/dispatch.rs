//! The dispatcher every worker runs: hands new outbox events on as deliveries and their
//! jobs, gives a new job to any pending delivery whose job was lost (Redis lost its data,
//! a job ran out of its own attempts), and keeps the backlog gauges. Workers share the
//! outbox without a lease: each round locks the events it takes (`FOR UPDATE SKIP
//! LOCKED`), so two workers never hand on the same event.

use std::time::{Duration, Instant};

use intake_shared::config::WebhookSettings;
use intake_shared::webhooks::DeliveryJob;
use intake_store::pg::PgPool;
use intake_store::pg::deliveries;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::deliver::DeliverError;

/// Events taken per statement.
const BATCH: i64 = 100;
/// Batches one sweep takes at most (a backlog after a Redis outage is given its jobs over
/// a few rounds).
const SWEEP_BATCHES: usize = 50;
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
    /// Hands on every event waiting now, a batch at a time: each batch's deliveries are
    /// created, their jobs queued, and only then the batch committed (a batch cut short by
    /// an error or a crash is rolled back and taken again). The deliveries made.
    pub async fn dispatch(&self) -> Result<usize, DeliverError> {
        let mut made = 0;
        loop {
            let batch = deliveries::dispatch(&self.pool, BATCH).await?;
            self.push(batch.deliveries.iter().map(|id| (*id, 0)))
                .await?;
            let (events, deliveries) = (batch.events, batch.deliveries.len());
            batch.commit().await?;
            made += deliveries;
            if events < BATCH as usize {
                return Ok(made);
            }
        }
    }

    /// New jobs for pending deliveries overdue by the sweep grace that nobody holds, a
    /// batch at a time until none is left (at most `SWEEP_BATCHES` batches a round).
    pub async fn sweep(&self) -> Result<usize, DeliverError> {
        let mut swept = 0;
        for _ in 0..SWEEP_BATCHES {
            let lost = deliveries::sweep(&self.pool, self.settings.sweep_grace, BATCH).await?;
            self.push(lost.iter().copied()).await?;
            swept += lost.len();
            if lost.len() < BATCH as usize {
                break;
            }
        }
        Ok(swept)
    }

    /// Queues the job of each delivery and generation, to run now.
    async fn push(
        &self,
        jobs: impl Iterator<Item = (uuid::Uuid, u32)>,
    ) -> Result<(), DeliverError> {
        for (delivery_id, generation) in jobs {
            let job = DeliveryJob {
                delivery_id,
                generation,
            };
            intake_shared::queue::push_delivery(&self.redis, &self.queue, &job, None).await?;
        }
        Ok(())
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
            if last_sweep.elapsed() >= SWEEP_EVERY.min(self.settings.sweep_grace) {
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
