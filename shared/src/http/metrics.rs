//! Request metrics of Intake's HTTP services (the api and the admin service), and the
//! `/metrics` answer every program gives. The recorder itself is set up by
//! `crate::telemetry::start_metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;

/// Counts every answer as `http_requests_total{route,method,status}` and times it as
/// `http_request_duration_seconds{route,method}`. The route is the matched pattern
/// (`/v1/registrations/{id}`), never the path a client sent, so ids and probes of unknown
/// paths (`unmatched`) cannot multiply the series.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The process' metrics in Prometheus' text format.
pub fn answer(handle: &PrometheusHandle) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// `/metrics` for a router without state of its own: the process' recorder, rendered.
pub async fn render() -> Response {
    answer(&crate::telemetry::prometheus())
}
