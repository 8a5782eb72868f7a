//! `/health/live` (the process answers) and `/health/ready` (its dependency, Redis, does).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::state::AppState;

/// The process answers.
#[utoipa::path(get, path = "/health/live", operation_id = crate::openapi::operation::LIVE, tag = "operations",
    responses((status = 200, description = "Alive", body = Object)))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Redis answers: the api can take submissions.
#[utoipa::path(get, path = "/health/ready", operation_id = crate::openapi::operation::READY, tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Object),
        (status = 503, description = "Redis unreachable", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut conn = app.redis();
    let ping = redis::cmd("PING");
    match tokio::time::timeout(
        Duration::from_secs(2),
        ping.query_async::<String>(&mut conn),
    )
    .await
    {
        Ok(Ok(_)) => Ok(Json(json!({"status": "ready", "checks": {"redis": "ok"}}))),
        Ok(Err(err)) => Err(ApiError::Unavailable(err)),
        Err(_) => Err(ApiError::Unavailable(redis::RedisError::from(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "redis ping timed out"),
        ))),
    }
}
