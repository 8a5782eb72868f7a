//! `/health/live` and `/health/ready` (Redis and Postgres reachable).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AdminState;

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let ping = redis::cmd("PING");
    let mut conn = state.redis();
    let redis_ok = matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            ping.query_async::<String>(&mut conn)
        )
        .await,
        Ok(Ok(_))
    );
    let postgres_ok = matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&state.pool)
        )
        .await,
        Ok(Ok(_))
    );
    let word = |ok: bool| if ok { "ok" } else { "unreachable" };
    let ready = redis_ok && postgres_ok;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "checks": {"redis": word(redis_ok), "postgres": word(postgres_ok)},
        })),
    )
}
