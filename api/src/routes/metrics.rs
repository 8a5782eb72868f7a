//! `/metrics` in Prometheus text format: on the api's address, or on
//! `INTAKE_API_METRICS_ADDR` alone when that is set.

use axum::extract::State;
use axum::response::Response;

use crate::state::AppState;

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = crate::openapi::operation::METRICS, tag = "operations",
    responses((status = 200, description = "Metrics in Prometheus text format (on INTAKE_API_METRICS_ADDR instead when that is set)", body = String, content_type = "text/plain")))]
pub async fn render(State(app): State<AppState>) -> Response {
    intake_shared::http::metrics::answer(&app.metrics)
}
