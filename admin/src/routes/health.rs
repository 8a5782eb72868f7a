//! `/health/live` and `/health/ready` (Redis and Postgres reachable).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AdminState;

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let (redis_ok, postgres_ok) = tokio::join!(
        intake_shared::redis_conn::reachable(&state.redis),
        intake_store::pg::reachable(&state.pool)
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
