//! What every handler can reach: settings and the pieces built from them once at start-up.

use std::sync::Arc;

use intake_shared::config::ApiSettings;
use intake_store::staging_quota::StagingQuota;
use intake_store::status::StatusRepository;
use intake_store::team_index::TeamIndex;
use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;

use crate::intake::enqueue::Enqueuer;
use crate::intake::idempotency::Idempotency;
use crate::intake::rate_limit::RateLimiter;
use crate::intake::staging::Staging;
use crate::intake::status_events::StatusHub;
use crate::intake::stream_limit::StreamLimit;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: ApiSettings,
    pub redis: ConnectionManager,
    pub staging: Staging,
    pub idempotency: Idempotency,
    pub rate_limiter: RateLimiter,
    pub enqueuer: Enqueuer,
    pub metrics: PrometheusHandle,
    pub status_hub: StatusHub,
    /// Event streams open per client on this process.
    pub event_streams: StreamLimit,
    /// Status records, read and created only through the store's repository.
    pub status: StatusRepository,
    /// The duplicate index the workers keep, read at the door.
    pub team_index: TeamIndex,
    /// Each client's staged bytes that no worker has taken yet.
    pub staging_quota: StagingQuota,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        settings: ApiSettings,
        redis: ConnectionManager,
        staging: std::sync::Arc<dyn intake_shared::staging::StagingStore>,
        status_hub: StatusHub,
        metrics: PrometheusHandle,
    ) -> Self {
        let keys = settings.redis.keys();
        Self(Arc::new(Inner {
            staging: Staging::new(staging, settings.staging.durability),
            idempotency: Idempotency::new(keys.clone(), settings.queue.idempotency_ttl),
            rate_limiter: RateLimiter::new(
                keys.clone(),
                settings.api.rate_limit_per_minute,
                settings.api.rate_limit_per_hour,
            ),
            enqueuer: Enqueuer::new(
                keys.clone(),
                intake_shared::queue::config(&keys, &settings.queue),
                settings.queue.max_attempts,
            ),
            team_index: TeamIndex::new(redis.clone(), keys.clone()),
            staging_quota: StagingQuota::new(
                redis.clone(),
                keys.clone(),
                settings.api.staging_quota_bytes,
                settings.staging.retention,
            ),
            status: StatusRepository::new(redis.clone(), keys, settings.staging.retention),
            event_streams: StreamLimit::new(settings.api.event_streams_per_client),
            redis,
            metrics,
            status_hub,
            settings,
        }))
    }

    /// A clone of the shared, self-reconnecting Redis connection.
    pub fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }
}
