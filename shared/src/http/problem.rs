//! RFC 9457 problem+json, the one shape an error leaves any Intake HTTP service in. A
//! handler's error becomes a [`Problem`] carried in the response's extensions; the
//! [`super::render_problems`] middleware writes the body once the request id is known, and
//! turns any bare error status (unknown route, wrong method, timeout, panic) into one too.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::errors::{FieldError, ProblemCode};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of an error answer, without its request id until [`super::render_problems`] adds it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: &'static str,
    #[schema(value_type = String)]
    title: &'static str,
    #[serde(serialize_with = "serialize_status")]
    #[schema(value_type = u16)]
    status: StatusCode,
    detail: String,
    code: ProblemCode,
    /// Every field problem, for `VALIDATION_FAILED`.
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
            StatusCode::UNAUTHORIZED => (
                ProblemCode::Unauthorized,
                "a valid bearer token is required",
            ),
            StatusCode::FORBIDDEN => (
                ProblemCode::Forbidden,
                "this token's role does not allow this call",
            ),
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
        ProblemCode::MalformedRequest => "Malformed request",
        ProblemCode::HeadersTooLarge => "Request header fields too large",
        ProblemCode::UriTooLong => "URI too long",
        ProblemCode::Unauthorized => "Unauthorized",
        ProblemCode::ReasonRequired => "Reason required",
        ProblemCode::AlreadyCompleted => "Already completed",
        ProblemCode::InvalidState => "Invalid state",
        ProblemCode::DocumentsExpired => "Documents expired",
        ProblemCode::Forbidden => "Forbidden",
        ProblemCode::Conflict => "Conflict",
        ProblemCode::DuplicateTeam => "Team already registered",
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
