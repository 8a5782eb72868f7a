//! `GET /admin/v1/queue`: depth, oldest wait, in flight, failed, workers alive.

use axum::Json;
use axum::extract::State;
use intake_shared::queue::QueueStats;

use crate::auth::Viewer;
use crate::error::AdminError;
use crate::state::AdminState;

pub async fn stats(
    State(state): State<AdminState>,
    _actor: Viewer,
) -> Result<Json<QueueStats>, AdminError> {
    let stats = intake_shared::queue::stats(
        &mut state.redis(),
        &state.queue,
        &state.settings.redis.keys().failed_index(),
    )
    .await?;
    Ok(Json(stats))
}
