//! Prometheus metrics: requests by route and status, latency, submissions by outcome, and
//! the queue depth read from Redis at scrape time. The recorder is process-global (that is
//! how the `metrics` facade works), installed once however many apps a test process builds.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process' Prometheus handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &LATENCY_BUCKETS,
                )
                .map(PrometheusBuilder::build_recorder);
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Fails only if another recorder was installed first; ours still renders.
                    let _ = metrics::set_global_recorder(recorder);
                    handle
                }
                Err(err) => {
                    tracing::error!(error = %err, "prometheus recorder could not be built");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

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
