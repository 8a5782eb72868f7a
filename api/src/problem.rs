//! RFC 9457 problem+json: the only shape an error leaves the api in. Handlers return
//! [`ApiError`]; it becomes a [`Problem`] carried in the response's extensions, and the
//! `render` middleware writes the body once the request id is known. Errors that never
//! went through a handler (unknown route, wrong method, timeout, panic, body limit) are
//! turned into a problem there too, so no client ever sees a bare status.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake_shared::errors::{FieldError, ProblemCode};
pub use intake_shared::http::problem::{PROBLEM_JSON, Problem};

use intake_shared::staging::StagingError;
use intake_store::status::StatusError;

use crate::intake::duplicates::Duplicate;
use crate::intake::enqueue::EnqueueError;
use crate::intake::rate_limit::RateLimitDecision;

/// How long a client whose staging quota is full is asked to wait: workers take a queued
/// registration's documents within seconds when they keep up.
const STAGING_QUOTA_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Everything that can go wrong in a request, each variant one thing a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} fields are invalid", .0.len())]
    Validation(Vec<FieldError>),
    #[error("Idempotency-Key header is missing")]
    IdempotencyKeyMissing,
    #[error("Idempotency-Key header is malformed")]
    IdempotencyKeyInvalid,
    #[error("the request with this Idempotency-Key is still being accepted")]
    RequestInProgress { retry_after: Duration },
    #[error("the Idempotency-Key was used with different content")]
    IdempotencyKeyReused,
    #[error("the body is larger than the limit")]
    PayloadTooLarge,
    #[error("the body is not multipart/form-data")]
    UnsupportedMediaType,
    #[error("no registration with this id")]
    NotFound,
    #[error("too many submissions from this client")]
    RateLimited(RateLimitDecision),
    /// The client's staged documents that no worker has taken yet fill its quota.
    #[error("this client's staging quota is full")]
    StagingQuotaExceeded,
    /// The team is already registered or in progress (the duplicate index says so).
    #[error(transparent)]
    DuplicateTeam(#[from] Duplicate),
    #[error("Redis is unreachable")]
    Unavailable(#[from] redis::RedisError),
    /// The job could not be handed to the queue (Redis refused or dropped the push).
    #[error("the queue is unreachable")]
    QueueUnavailable(#[source] EnqueueError),
    /// A status record could not be read or written for a reason other than Redis being
    /// down (one that does not decode, say).
    #[error("status record")]
    Status(#[source] StatusError),
    #[error("job not enqueued")]
    Enqueue(#[source] EnqueueError),
    #[error("staging")]
    Staging(#[from] StagingError),
    #[error("the hand-off task ended abnormally")]
    HandOff(#[from] tokio::task::JoinError),
    #[error("the idempotency record of this key is corrupt")]
    CorruptIdempotencyRecord,
    /// A multipart part's header block, or what comes before the first boundary, grew over
    /// `part_headers::MAX_PART_HEADER_BYTES`; the body was not read further.
    #[error("a multipart header block is larger than the limit")]
    PartHeadersTooLarge,
    /// The client already holds as many event streams open as it may.
    #[error("too many open event streams from this client")]
    TooManyStreams { retry_after: Duration },
}

impl From<StatusError> for ApiError {
    fn from(err: StatusError) -> Self {
        match err {
            StatusError::Unavailable(err) => Self::Unavailable(err),
            other => Self::Status(other),
        }
    }
}

impl From<EnqueueError> for ApiError {
    fn from(err: EnqueueError) -> Self {
        match err {
            EnqueueError::Redis(err) => Self::Unavailable(err),
            EnqueueError::Queue(_) => Self::QueueUnavailable(err),
            EnqueueError::Encode(_) => Self::Enqueue(err),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
        let problem = match &self {
            ApiError::Validation(errors) => {
                let fields = {
                    let mut names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    names.len()
                };
                let detail = if fields == 1 {
                    "1 field is invalid".to_owned()
                } else {
                    format!("{fields} fields are invalid")
                };
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    ProblemCode::ValidationFailed,
                    detail,
                )
                .with_errors(errors.clone())
            }
            ApiError::IdempotencyKeyMissing => Problem::new(
                StatusCode::BAD_REQUEST,
                ProblemCode::IdempotencyKeyMissing,
                "the Idempotency-Key header is required",
            ),
            ApiError::IdempotencyKeyInvalid => Problem::new(
                StatusCode::BAD_REQUEST,
                ProblemCode::IdempotencyKeyInvalid,
                "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
            ),
            ApiError::RequestInProgress { retry_after } => {
                headers.push(retry_after_header(*retry_after));
                Problem::new(
                    StatusCode::CONFLICT,
                    ProblemCode::RequestInProgress,
                    "a request with this Idempotency-Key is still being accepted; retry shortly",
                )
            }
            ApiError::IdempotencyKeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ProblemCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used for a different submission",
            ),
            ApiError::PayloadTooLarge => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ProblemCode::PayloadTooLarge,
                "the request body is larger than the limit",
            ),
            ApiError::UnsupportedMediaType => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ProblemCode::UnsupportedMediaType,
                "the body must be multipart/form-data",
            ),
            ApiError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                ProblemCode::NotFound,
                "no registration with this id",
            ),
            ApiError::RateLimited(decision) => {
                headers.extend(decision.headers());
                headers.push(retry_after_header(decision.reset_after));
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ProblemCode::RateLimited,
                    "too many submissions from this client; retry later",
                )
            }
            ApiError::StagingQuotaExceeded => {
                headers.push(retry_after_header(STAGING_QUOTA_RETRY_AFTER));
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ProblemCode::RateLimited,
                    "this client has too many documents waiting to be processed; retry later",
                )
            }
            ApiError::DuplicateTeam(_) => Problem::new(
                StatusCode::CONFLICT,
                ProblemCode::DuplicateTeam,
                "a team with this name and captain phone is already registered or being registered",
            ),
            ApiError::PartHeadersTooLarge => Problem::new(
                StatusCode::BAD_REQUEST,
                ProblemCode::MalformedRequest,
                format!(
                    "a multipart part's headers are larger than {} bytes",
                    crate::intake::part_headers::MAX_PART_HEADER_BYTES
                ),
            ),
            ApiError::TooManyStreams { retry_after } => {
                headers.push(retry_after_header(*retry_after));
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ProblemCode::RateLimited,
                    "too many open event streams from this client; poll the status URL instead",
                )
            }
            ApiError::Unavailable(_) | ApiError::QueueUnavailable(_) => {
                tracing::warn!(error = &self as &dyn std::error::Error, "redis unavailable");
                headers.push(retry_after_header(Duration::from_secs(5)));
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ProblemCode::ServiceUnavailable,
                    "the service is temporarily unavailable; retry later",
                )
            }
            ApiError::Status(_)
            | ApiError::Enqueue(_)
            | ApiError::Staging(_)
            | ApiError::HandOff(_)
            | ApiError::CorruptIdempotencyRecord => {
                // The whole chain, once, here; the client sees no detail.
                tracing::error!(error = &self as &dyn std::error::Error, "internal error");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
        let mut response = problem.into_response();
        response.headers_mut().extend(headers);
        response
    }
}

fn retry_after_header(after: Duration) -> (HeaderName, HeaderValue) {
    let secs = after.as_secs_f64().ceil().max(1.0) as u64;
    (header::RETRY_AFTER, HeaderValue::from(secs))
}
