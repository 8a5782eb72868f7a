//! `/metrics` in Prometheus text format, with the queue depth read just before rendering.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::middleware::metrics as recorder;
use crate::state::AppState;

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let mut conn = app.redis();
    match app.enqueuer.depth(&mut conn).await {
        Ok(depth) => recorder::queue_depth(depth),
        Err(err) => tracing::debug!(error = %err, "queue depth unavailable for this scrape"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
