//! The ceilings: the least a server could do for the same request, measured on the same
//! machine in the same run, so Intake's figures are read as a fraction of what this
//! hardware allows. `multipart` reads every part of the body to the end and discards it;
//! `status` answers each GET with one Redis GET of the status key.
//!
//! Two more rungs above `multipart` measure the work the contract itself asks of every
//! submission, without anything else of Intake's: `multipart-hash` also computes each
//! part's SHA-256 (stored with each document, and the idempotency fingerprint);
//! `multipart-stage` also writes each document to its own file in a directory per request
//! under `--staging-dir` (what staging did on a local disk before one object per
//! submission), so the gap between Intake and the bare handler can be split into what any
//! implementation must pay and what is ours. `multipart-object` is the design Intake stages
//! with now, without its hashing or anything else: every file part of a request appended to
//! one file of its own, written in place.

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Multipart,
    MultipartHash,
    MultipartStage,
    MultipartObject,
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
    /// Where `multipart-stage` writes its files.
    #[arg(long, default_value = "target/bench/ceiling-staging")]
    pub staging_dir: std::path::PathBuf,
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

/// Reads every part and writes the file parts, one after another, into one new file per
/// request, in one blocking-pool trip (as Intake's local staging writes a submission of this
/// size); no hashing.
async fn one_object(State(work): State<Work>, mut multipart: Multipart) -> impl IntoResponse {
    let Some(root) = work.staging.clone() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no staging").into_response();
    };
    let mut object = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return (StatusCode::BAD_REQUEST, "bad multipart").into_response(),
        };
        let is_file = field.file_name().is_some();
        while let Ok(Some(chunk)) = field.chunk().await {
            if is_file {
                object.extend_from_slice(&chunk);
            }
        }
    }
    let path = root.join(uuid::Uuid::new_v4().simple().to_string());
    let written = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        let mut file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(&object)
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "staging").into_response();
    }
    (StatusCode::ACCEPTED, "{\"id\":\"ceiling\"}").into_response()
}

/// What a rung above the bare handler does with each part.
#[derive(Clone)]
struct Work {
    /// Write each file part to `{dir}/{request}/{part}` (None: only hash).
    staging: Option<std::sync::Arc<std::path::PathBuf>>,
}

/// Reads every part, hashes each, and (for `multipart-stage`) writes each file part in one
/// blocking-pool trip, the way Intake's local staging writes a document of this size.
async fn hash_and_stage(State(work): State<Work>, mut multipart: Multipart) -> impl IntoResponse {
    use sha2::Digest;
    let request = uuid::Uuid::new_v4().simple().to_string();
    let mut part = 0usize;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return (StatusCode::BAD_REQUEST, "bad multipart").into_response(),
        };
        let is_file = field.file_name().is_some();
        let mut hasher = sha2::Sha256::new();
        let mut bytes = Vec::new();
        while let Ok(Some(chunk)) = field.chunk().await {
            hasher.update(&chunk);
            if is_file {
                bytes.extend_from_slice(&chunk);
            }
        }
        std::hint::black_box(hasher.finalize());
        if let (true, Some(root)) = (is_file, &work.staging) {
            let path = root.join(&request).join(part.to_string());
            part += 1;
            let written = tokio::task::spawn_blocking(move || {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, &bytes)
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                return (StatusCode::INTERNAL_SERVER_ERROR, "staging").into_response();
            }
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
        Mode::MultipartHash | Mode::MultipartStage => {
            let staging = (args.mode == Mode::MultipartStage)
                .then(|| std::sync::Arc::new(args.staging_dir.clone()));
            Router::new()
                .route(
                    "/v1/registrations",
                    post(hash_and_stage)
                        .layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024)),
                )
                .with_state(Work { staging })
        }
        Mode::MultipartObject => Router::new()
            .route(
                "/v1/registrations",
                post(one_object).layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024)),
            )
            .with_state(Work {
                staging: Some(std::sync::Arc::new(args.staging_dir.clone())),
            }),
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
