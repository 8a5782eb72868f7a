//! Builds the api: the router with its layers, bound to a listener (and a second one for
//! `/metrics` alone when `INTAKE_API_METRICS_ADDR` is set). `Application::build` binds first
//! and reports the real port, so tests start the real app on port 0.

use intake_shared::staging::Durability;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use intake_shared::config::ApiSettings;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::intake::status_events::StatusHub;
use crate::problem::Problem;
use crate::routes;
use crate::state::AppState;
use intake_shared::http::serve::{ServeOptions, serve};
use intake_shared::http::{head_limits, render_problems, request_id, security_headers};
use intake_shared::telemetry::Service;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("staging area not usable: {0}")]
    Staging(#[from] intake_shared::staging::StagingError),
    #[error("INTAKE_REDIS_URL is not a usable Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("INTAKE_CORS_ALLOWED_ORIGINS has an invalid origin: {0}")]
    Cors(String),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    options: ServeOptions,
    /// `/metrics` on an address of its own (`INTAKE_API_METRICS_ADDR`).
    metrics: Option<MetricsListener>,
}

struct MetricsListener {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// Strict durability answers `202` once the staged object is synced and the job is in
/// Redis; the job survives a host crash only if Redis writes it to disk before answering
/// (`appendonly yes` with `appendfsync always`) or a replica has it. Says so at start-up
/// when Redis' own settings do not promise it (docs/operations.md, "Durability").
async fn warn_unless_redis_is_durable(redis: &mut redis::aio::ConnectionManager) {
    let asked: Result<(Vec<String>, Vec<String>), redis::RedisError> = async {
        let appendonly = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(redis)
            .await?;
        let appendfsync = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(redis)
            .await?;
        Ok((appendonly, appendfsync))
    }
    .await;
    match asked {
        Ok((appendonly, appendfsync))
            if appendonly.get(1).map(String::as_str) == Some("yes")
                && appendfsync.get(1).map(String::as_str) == Some("always") => {}
        Ok((appendonly, appendfsync)) => tracing::warn!(
            appendonly = appendonly.get(1).map(String::as_str).unwrap_or("unknown"),
            appendfsync = appendfsync.get(1).map(String::as_str).unwrap_or("unknown"),
            "INTAKE_DURABILITY=strict, but Redis does not write each job to disk before answering (appendonly yes, appendfsync always): unless a replica holds it, a job accepted just before a host crash can be lost"
        ),
        Err(err) => tracing::warn!(
            error = %err,
            "INTAKE_DURABILITY=strict, but Redis' persistence settings could not be read (CONFIG GET): check that it runs with appendonly yes and appendfsync always, or with a replica"
        ),
    }
}

impl Application {
    pub async fn build(settings: ApiSettings) -> Result<Self, StartupError> {
        let redis = intake_shared::redis_conn::connect_lazy(&settings.redis.url)?;
        let staging = intake_shared::staging::from_settings(&settings.staging)?;
        staging.prepare().await?;
        let hub = StatusHub::start(
            &settings.redis.url,
            settings.redis.keys().status_channel_prefix(),
        )?;
        let metrics =
            intake_shared::telemetry::start_metrics(Service::Api, env!("CARGO_PKG_VERSION"));
        crate::middleware::metrics::describe();
        let state = AppState::new(settings, redis, staging, hub, metrics);
        let router = router(state.clone())?;
        let (listener, addr) = bind(state.settings.api.addr).await?;
        let metrics = match state.settings.api.metrics_addr {
            Some(metrics_addr) => {
                let (listener, addr) = bind(metrics_addr).await?;
                Some(MetricsListener {
                    listener,
                    router: metrics_router(state.clone())?,
                    addr,
                })
            }
            None => None,
        };
        tracing::info!(
            %addr,
            metrics_addr = ?metrics.as_ref().map(|m| m.addr),
            redis_prefix = %state.settings.redis.prefix,
            staging = state.staging.store().name(),
            rate_limit_per_minute = state.settings.api.rate_limit_per_minute,
            rate_limit_per_hour = state.settings.api.rate_limit_per_hour,
            "intake-api listening"
        );
        if state.settings.staging.durability == Durability::Strict {
            warn_unless_redis_is_durable(&mut state.redis()).await;
        }
        Ok(Self {
            listener,
            router,
            addr,
            options: state.settings.serve.options(),
            metrics,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Where `/metrics` is served when `INTAKE_API_METRICS_ADDR` moves it off the api's
    /// address; `None` when it is on `local_addr`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight (on both
    /// listeners when `/metrics` has its own).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(metrics) = self.metrics else {
            return serve(self.listener, self.router, self.options, shutdown).await;
        };
        let shutdown = futures::FutureExt::shared(shutdown);
        let (api, metrics) = tokio::join!(
            serve(self.listener, self.router, self.options, shutdown.clone()),
            serve(metrics.listener, metrics.router, self.options, shutdown),
        );
        api.and(metrics)
    }
}

/// The api's routes with every layer applied.
pub fn router(state: AppState) -> Result<Router, StartupError> {
    let body_limit = usize::try_from(state.settings.api.max_body_bytes).unwrap_or(usize::MAX);
    let routes = Router::new()
        .route(
            "/v1/registrations",
            post(routes::submit::submit).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/v1/registrations/{id}", get(routes::status::status))
        .route("/v1/registrations/{id}/events", get(routes::events::events))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/docs", get(routes::page::docs))
        .route("/docs.js", get(routes::page::docs_script))
        .route("/", get(routes::page::index))
        .route("/form.js", get(routes::page::script))
        .route("/form.css", get(routes::page::style))
        .route("/health/live", get(routes::health::live))
        .route("/health/ready", get(routes::health::ready));
    // With an address of its own, `/metrics` is unknown here: 404 like any other path.
    let routes = if state.settings.api.metrics_addr.is_none() {
        routes.route("/metrics", get(routes::metrics::render))
    } else {
        routes
    };
    let routes = routes
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .with_state(state.clone());
    with_layers(routes, &state.settings)
}

/// `/metrics` alone, for `INTAKE_API_METRICS_ADDR`, through the same layers as every answer.
pub fn metrics_router(state: AppState) -> Result<Router, StartupError> {
    let routes = Router::new()
        .route("/metrics", get(routes::metrics::render))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .with_state(state.clone());
    with_layers(routes, &state.settings)
}

/// Wraps routes in the layers every answer goes through, innermost first: the request
/// timeout, panic catching, CORS, security headers, metrics, problem rendering, request id.
pub fn with_layers(routes: Router, settings: &ApiSettings) -> Result<Router, StartupError> {
    let mut router = routes
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.api.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(cors(&settings.api.cors_allowed_origins)?)
        .layer(axum::middleware::from_fn(head_limits::limit_head));
    for (name, value) in security_headers(settings.serve.hsts) {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    Ok(router
        .layer(axum::middleware::from_fn(
            intake_shared::http::metrics::record,
        ))
        .layer(axum::middleware::from_fn(render_problems))
        .layer(axum::middleware::from_fn(request_id::assign)))
}

fn cors(origins: &[String]) -> Result<CorsLayer, StartupError> {
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| StartupError::Cors(o.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            request_id::X_REQUEST_ID.clone(),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            request_id::X_REQUEST_ID.clone(),
            HeaderName::from_static("idempotent-replayed"),
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(600)))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_without_detail() {
        let routes = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("secret internal detail");
                }
                "unreachable"
            }),
        );
        let app = with_layers(routes, &ApiSettings::default()).expect("default layers build");
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(response.headers().contains_key("x-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json body");
        assert_eq!(json["code"], "INTERNAL_ERROR");
        assert_eq!(json["status"], 500);
        assert!(json["request_id"].is_string());
        assert!(!String::from_utf8_lossy(&body).contains("secret internal detail"));
    }
}
