//! `/health/live` (the process answers) and `/health/ready` (its dependency, Redis, does).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::problem::ApiError;
use crate::state::AppState;

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

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
