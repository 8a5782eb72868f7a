//! The worker's own small HTTP server on `INTAKE_WORKER_ADDR`: `/health/live`,
//! `/health/ready` (migrations applied, Redis and Postgres reachable) and `/metrics` for Prometheus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use intake_store::pg::PgPool;
use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use serde_json::json;

#[derive(Clone)]
pub struct HealthState {
    /// Set once migrations are applied and the worker takes jobs.
    pub started: Arc<AtomicBool>,
    pub redis: ConnectionManager,
    pub pool: PgPool,
    pub metrics: PrometheusHandle,
    pub queue: apalis_redis::Config,
    pub failed_index: String,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(state)
}

async fn ready(State(state): State<HealthState>) -> impl IntoResponse {
    let started = state.started.load(Ordering::SeqCst);
    let (redis_ok, postgres_ok) = dependencies_reachable(&state.redis, &state.pool).await;
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let status = if redis_ok && postgres_ok && started {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if status == StatusCode::OK { "ready" } else { "not_ready" },
            "checks": {
                "redis": word(redis_ok),
                "postgres": word(postgres_ok),
                "migrations": if started { "applied" } else { "pending" },
            },
        })),
    )
}

/// Whether Redis and Postgres each answer within two seconds.
pub async fn dependencies_reachable(redis: &ConnectionManager, pool: &PgPool) -> (bool, bool) {
    tokio::join!(
        intake_shared::redis_conn::reachable(redis),
        intake_store::pg::reachable(pool)
    )
}

async fn render_metrics(State(state): State<HealthState>) -> impl IntoResponse {
    let mut conn = state.redis.clone();
    match intake_shared::queue::stats(&mut conn, &state.queue, &state.failed_index).await {
        Ok(stats) => {
            metrics::gauge!("intake_queue_depth").set(stats.waiting as f64);
            metrics::gauge!("intake_queue_oldest_waiting_seconds")
                .set(stats.oldest_waiting_secs as f64);
            metrics::gauge!("intake_queue_in_flight").set(stats.in_flight as f64);
            metrics::gauge!("intake_failed_registrations").set(stats.failed as f64);
            metrics::gauge!("intake_workers_alive").set(stats.workers_alive as f64);
        }
        Err(err) => tracing::debug!(error = %err, "queue stats unavailable for this scrape"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
