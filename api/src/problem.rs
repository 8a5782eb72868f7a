//! RFC 9457 problem+json: the only shape an error leaves the api in. Handlers return
//! [`ApiError`]; it becomes a [`Problem`] carried in the response's extensions, and the
//! `render` middleware writes the body once the request id is known. Errors that never
//! went through a handler (unknown route, wrong method, timeout, panic, body limit) are
//! turned into a problem there too, so no client ever sees a bare status.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake_shared::errors::{FieldError, ProblemCode};
use serde::Serialize;

use crate::intake::rate_limit::RateLimitDecision;

pub const PROBLEM_JSON: &str = "application/problem+json";

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
    #[error("Redis is unreachable")]
    Unavailable(#[from] redis::RedisError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::intake::enqueue::EnqueueError> for ApiError {
    fn from(err: crate::intake::enqueue::EnqueueError) -> Self {
        use crate::intake::enqueue::EnqueueError;
        match err {
            EnqueueError::Redis(err) => Self::Unavailable(err),
            EnqueueError::Queue(err) => Self::Unavailable(redis::RedisError::from(
                std::io::Error::other(err.to_string()),
            )),
            EnqueueError::Encode(err) => Self::Internal(format!("job not encodable: {err}")),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(format!("staging I/O: {err}"))
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
            ApiError::Unavailable(err) => {
                tracing::warn!(error = %err, "redis unavailable");
                headers.push(retry_after_header(Duration::from_secs(5)));
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ProblemCode::ServiceUnavailable,
                    "the service is temporarily unavailable; retry later",
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
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

/// The body of an error answer, without its request id until [`render`] adds it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    detail: String,
    code: ProblemCode,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    pub fn new(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title: title(code),
            status,
            detail: detail.into(),
            code,
            errors: Vec::new(),
            request_id: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// The problem for an error status produced outside our handlers.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => (ProblemCode::NotFound, "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                ProblemCode::MethodNotAllowed,
                "this method is not allowed on this resource",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                ProblemCode::RequestTimeout,
                "the request took too long to arrive",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                ProblemCode::PayloadTooLarge,
                "the request body is larger than the limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                ProblemCode::UnsupportedMediaType,
                "the body has an unsupported media type",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                ProblemCode::ServiceUnavailable,
                "the service is temporarily unavailable; retry later",
            ),
            s if s.is_client_error() => (ProblemCode::ValidationFailed, "the request is malformed"),
            _ => (
                ProblemCode::InternalError,
                "an internal error occurred; it has been logged",
            ),
        };
        Self::new(status, code, detail)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> ProblemCode {
        self.code
    }

    /// The response body with the request id filled in.
    pub fn body(&self, request_id: Option<&str>) -> Vec<u8> {
        let mut with_id = self.clone();
        with_id.request_id = request_id.map(str::to_owned);
        serde_json::to_vec(&with_id).unwrap_or_else(|_| b"{}".to_vec())
    }
}

fn title(code: ProblemCode) -> &'static str {
    match code {
        ProblemCode::ValidationFailed => "Validation failed",
        ProblemCode::IdempotencyKeyMissing => "Idempotency-Key missing",
        ProblemCode::IdempotencyKeyInvalid => "Idempotency-Key invalid",
        ProblemCode::NotFound => "Not found",
        ProblemCode::MethodNotAllowed => "Method not allowed",
        ProblemCode::RequestInProgress => "Request in progress",
        ProblemCode::RequestTimeout => "Request timeout",
        ProblemCode::PayloadTooLarge => "Payload too large",
        ProblemCode::UnsupportedMediaType => "Unsupported media type",
        ProblemCode::IdempotencyKeyReused => "Idempotency-Key reused",
        ProblemCode::RateLimited => "Too many requests",
        ProblemCode::ServiceUnavailable => "Service unavailable",
        ProblemCode::InternalError => "Internal error",
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            self.body(None),
        )
            .into_response();
        response.extensions_mut().insert(self);
        response
    }
}
