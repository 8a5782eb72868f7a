//! The worker's own small HTTP server on `INTAKE_WORKER_ADDR`: `/health/live`,
//! `/health/ready` (migrations applied, Redis and Postgres reachable) and `/metrics` for
//! Prometheus (the queue-wide gauges in it are kept by `queue_gauges`, not read here).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
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
    intake_shared::http::metrics::answer(&state.metrics)
}
