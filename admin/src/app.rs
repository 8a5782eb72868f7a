//! Builds the admin service: state from settings, the router, a listener on the private
//! address. `AdminApp::build` binds first and reports the real address, so tests use port 0.
//! `/metrics` (Prometheus) is there too, like the health checks without a token: the address
//! is private.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::routing::{get, post};
use intake_shared::config::AdminSettings;
use intake_shared::http::problem::Problem;
use intake_shared::http::{metrics, render_problems, request_id, security_headers};
use intake_shared::telemetry::Service;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::{BadTokens, Tokens};
use crate::auth_failures::AuthFailures;
use crate::documents::{self, Documents};
use crate::routes::{
    actions, deliveries, export, health, page, queue, registrations, stats, teams, webhooks,
};
use crate::state::{AdminState, Inner};
use crate::tls::TlsError;
use intake_store::status::StatusRepository;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tokens(#[from] BadTokens),
    #[error("INTAKE_REDIS_URL is not a usable Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Database(#[from] intake_store::pg::BadDatabaseUrl),
    #[error("staging area not usable")]
    Staging(#[from] intake_shared::staging::StagingError),
    #[error(transparent)]
    Cloudinary(#[from] intake_shared::cloudinary::BadCloudinaryUrl),
    #[error(transparent)]
    Config(#[from] intake_shared::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The `application_name` of the admin service's Postgres sessions.
pub const ADMIN_APPLICATION_NAME: &str = "intake-admin";

pub struct AdminApp {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    options: intake_shared::http::serve::ServeOptions,
    /// Set when the admin serves HTTPS itself (`INTAKE_ADMIN_TLS_CERT`/`_KEY`).
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl AdminApp {
    pub async fn build(settings: AdminSettings) -> Result<Self, StartupError> {
        let tokens = Tokens::parse(settings.admin.tokens.as_ref())?;
        // Read before anything binds: a certificate that cannot be used stops start-up.
        let tls = settings
            .admin
            .tls()?
            .map(|(cert, key)| crate::tls::server_config(cert, key))
            .transpose()?;
        if tokens.is_empty() {
            tracing::warn!("INTAKE_ADMIN_TOKENS is not set: every admin call will be refused");
        }
        // The admin has no metrics of its own beyond the shared request metrics.
        intake_shared::telemetry::start_metrics(Service::Admin, env!("CARGO_PKG_VERSION"));
        let redis = intake_shared::redis_conn::connect_lazy(&settings.redis.url)?;
        let keys = settings.redis.keys();
        let state = AdminState::new(Inner {
            queue: intake_shared::queue::worker_config(&keys, &settings.queue),
            status: StatusRepository::new(redis.clone(), keys, settings.staging.retention),
            redis,
            pool: intake_store::pg::pool(
                &settings.database,
                ADMIN_APPLICATION_NAME,
                settings.database.pool_size.unwrap_or(5),
            )?,
            staging: intake_shared::staging::from_settings(&settings.staging)?,
            documents: Documents::from_settings(&settings.cloudinary)?,
            tokens,
            auth_failures: AuthFailures::new(
                settings.redis.keys(),
                settings.admin.auth_failures_per_minute,
            ),
            settings,
        });
        let addr = state.settings.admin.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        tracing::info!(%addr, https = tls.is_some(), "intake-admin listening");
        if tls.is_none() && !addr.ip().is_loopback() {
            // It speaks plain HTTP: bearer tokens and personal data would cross the network
            // in clear unless a TLS-terminating proxy on a private network stands in front.
            tracing::warn!(
                %addr,
                "intake-admin listens beyond loopback without TLS; set INTAKE_ADMIN_TLS_CERT and INTAKE_ADMIN_TLS_KEY, or serve it only behind a TLS-terminating proxy on a private network"
            );
        }
        Ok(Self {
            options: state.settings.serve.options(),
            router: router(state),
            listener,
            addr,
            tls,
        })
    }

    /// Whether it serves HTTPS (so its URL is `https://`).
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match self.tls {
            Some(tls) => {
                crate::tls::serve(self.listener, self.router, tls, self.options, shutdown).await
            }
            None => {
                intake_shared::http::serve::serve(
                    self.listener,
                    self.router,
                    self.options,
                    shutdown,
                )
                .await
            }
        }
    }
}

pub fn router(state: AdminState) -> Router {
    let hsts = state.settings.serve.hsts;
    let api = Router::new()
        .route("/registrations", get(registrations::list))
        .route("/registrations/{id}", get(registrations::show))
        .route("/registrations/{id}/redrive", post(actions::redrive_one))
        .route("/registrations/{id}/discard", post(actions::discard))
        .route(
            "/registrations/{id}/resend-email",
            post(actions::resend_email),
        )
        .route("/redrive", post(actions::redrive_many))
        .route("/teams", get(teams::list))
        .route("/teams/export", get(export::export))
        .route("/teams/{team_id}", get(teams::show))
        .route("/teams/{team_id}/review", post(teams::review))
        .route("/teams/{team_id}/documents/{field}", get(documents::serve))
        .route("/stats", get(stats::stats))
        .route("/queue", get(queue::stats))
        .route("/audit", get(actions::audit_log))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/deliveries", get(deliveries::list))
        .route(
            "/webhooks/{id}/deliveries/{delivery_id}/resend",
            post(deliveries::resend),
        );
    let mut router = Router::new()
        .nest("/admin/v1", api)
        .route("/", get(page::index))
        .route("/admin.js", get(page::script))
        .route("/admin.css", get(page::style))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics::render))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("admin handler panicked");
            axum::response::IntoResponse::into_response(Problem::for_status(
                StatusCode::INTERNAL_SERVER_ERROR,
            ))
        }))
        .layer(axum::middleware::from_fn(
            intake_shared::http::head_limits::limit_head,
        ));
    for (name, value) in security_headers(hsts) {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(axum::middleware::from_fn(render_problems))
        .layer(axum::middleware::from_fn(request_id::assign))
}
