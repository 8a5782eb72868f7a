//! The one place tracing and metrics are set up for every Intake binary: JSON lines when the
//! output is not a terminal (what log collectors read), readable text when a person is
//! watching; one Prometheus recorder per process, with the HELP text of the metrics every
//! program shares and `intake_build_info` (each program describes its own metrics beside
//! them, at start-up).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. The level comes from `RUST_LOG`, `info` by default.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: a second call (tests building several apps) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The process' Prometheus handle, installing the global recorder on first use. The
/// `metrics` facade has one recorder per process, however many apps a test process builds.
pub fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
    use std::sync::OnceLock;

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    const SECONDS_BUCKETS: [f64; 14] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
    ];
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .map(PrometheusBuilder::build_recorder);
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Fails only if another recorder came first; ours still renders.
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

/// Which Intake program a process is, as `intake_build_info{service}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Api,
    Worker,
    Admin,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Worker => "worker",
            Self::Admin => "admin",
        }
    }
}

/// Start-up of a program's metrics: installs the recorder (once per process), describes the
/// metrics the programs share and sets `intake_build_info{service,version}` to 1. The
/// program then describes its own. Returns the handle `/metrics` renders from.
pub fn start_metrics(
    service: Service,
    version: &'static str,
) -> metrics_exporter_prometheus::PrometheusHandle {
    // The recorder first: a description given before it is installed would be lost.
    let handle = prometheus();
    describe();
    metrics::gauge!("intake_build_info", "service" => service.as_str(), "version" => version)
        .set(1.0);
    handle
}

/// HELP text of the metrics more than one program exports.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "intake_build_info",
        "Always 1: the labels say which program this is (service: api, worker or admin) and its version."
    );
    describe_counter!(
        "http_requests_total",
        Unit::Count,
        "HTTP requests answered, by matched route (unmatched for an unknown path), method and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time from receiving an HTTP request to sending its response head, by matched route and method."
    );
}
