//! The ceilings: the least a server could do for the same request, measured on the same
//! machine in the same run, so Intake's figures are read as a fraction of what this
//! hardware allows. `multipart` reads every part of the body to the end and discards it;
//! `status` answers each GET with one Redis GET of the status key.

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Multipart,
    Status,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CeilingArgs {
    #[arg(long, value_enum)]
    pub mode: Mode,
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// The Redis key prefix whose status keys `status` reads.
    #[arg(long, default_value = "intake")]
    pub redis_prefix: String,
}

async fn discard(mut multipart: Multipart) -> impl IntoResponse {
    loop {
        match multipart.next_field().await {
            Ok(Some(mut field)) => while let Ok(Some(_chunk)) = field.chunk().await {},
            Ok(None) => break,
            Err(_) => return (StatusCode::BAD_REQUEST, "bad multipart").into_response(),
        }
    }
    (StatusCode::ACCEPTED, "{\"id\":\"ceiling\"}").into_response()
}

#[derive(Clone)]
struct StatusState {
    redis: redis::aio::ConnectionManager,
    prefix: String,
}

async fn status(State(state): State<StatusState>, Path(id): Path<String>) -> impl IntoResponse {
    let key = format!("{}:status:{id}", state.prefix);
    let value: Result<Option<String>, _> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut state.redis.clone())
        .await;
    match value {
        Ok(Some(body)) => (StatusCode::OK, body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

pub async fn serve(args: CeilingArgs) -> anyhow::Result<()> {
    let app = match args.mode {
        Mode::Multipart => Router::new().route(
            "/v1/registrations",
            post(discard).layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024)),
        ),
        Mode::Status => {
            let client = redis::Client::open(args.redis_url.as_str())?;
            let redis = redis::aio::ConnectionManager::new(client).await?;
            Router::new()
                .route("/v1/registrations/{id}", get(status))
                .with_state(StatusState {
                    redis,
                    prefix: args.redis_prefix.clone(),
                })
        }
    };
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
