//! `/metrics` in Prometheus text format, with the queue depth read just before rendering.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::middleware::metrics as recorder;
use crate::state::AppState;

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = crate::openapi::operation::METRICS, tag = "operations",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let mut conn = app.redis();
    let failed_index = app.settings.redis.keys().failed_index();
    match intake_shared::queue::stats(&mut conn, app.enqueuer.queue(), &failed_index).await {
        Ok(stats) => recorder::queue_depth(stats.waiting),
        Err(err) => tracing::debug!(error = %err, "queue depth unavailable for this scrape"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
