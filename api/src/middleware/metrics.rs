//! Prometheus metrics: requests by route and status, latency, submissions by outcome, and
//! the queue depth read from Redis at scrape time. The recorder itself is set up by
//! `intake_shared::telemetry::prometheus`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

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

/// Counts one submission's outcome (`accepted`, `replayed`, `rejected`) and, for a
/// rejection, the problem code it got.
pub fn submission(outcome: &'static str, code: &'static str) {
    metrics::counter!("intake_submissions_total", "outcome" => outcome, "code" => code)
        .increment(1);
}

/// Sets the queue depth gauge, read from Redis just before a scrape.
pub fn queue_depth(depth: u64) {
    metrics::gauge!("intake_queue_depth").set(depth as f64);
}
