//! The admin service's errors, each one problem+json answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use intake_shared::errors::ProblemCode;
use intake_shared::http::problem::Problem;
use intake_shared::queue::PushError;
use intake_store::pg::DbError;
use intake_store::pg::registrations::LoadError;
use intake_store::status::{StatusError, TransitionError};

use crate::auth::Role;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Too many calls with a missing or wrong token came from this client: every call of it
    /// is refused until the window ends, whatever its token.
    #[error(
        "too many calls with a missing or wrong token from this address; retry in {} s",
        crate::auth_failures::retry_after_secs(*retry_after)
    )]
    TooManyFailedTokens { retry_after: std::time::Duration },
    /// The token is valid but its role is below the one the call needs.
    #[error("this call needs a token with the {0} role or above")]
    Forbidden(Role),
    #[error("{0}")]
    BadRequest(String),
    #[error("a reason is required for this action")]
    ReasonRequired,
    #[error("no registration with this id")]
    NotFound,
    #[error("no team with this ID")]
    TeamNotFound,
    #[error("no webhook endpoint with this id")]
    WebhookNotFound,
    #[error("no delivery with this id at this endpoint")]
    DeliveryNotFound,
    /// Field problems in a request body, every one of them.
    #[error("the request has invalid fields")]
    Invalid(Vec<intake_shared::errors::FieldError>),
    /// A review decision made on a version that is no longer the team's.
    #[error("the team's review changed since; it is now at version {current}")]
    StaleReview { current: i32 },
    #[error("the registration is already completed")]
    AlreadyCompleted,
    #[error("{0}")]
    InvalidState(String),
    #[error("the staged documents of this registration are gone")]
    DocumentsExpired,
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    #[error("status")]
    Status(#[from] StatusError),
    #[error("database")]
    Database(#[from] DbError),
    #[error("stored registration")]
    Load(#[from] LoadError),
    #[error("staging")]
    Staging(#[from] intake_shared::staging::StagingError),
    /// The job could not be pushed to the queue.
    #[error("the queue is unreachable")]
    Queue(#[from] PushError),
}

/// A status transition the record refused, as the answer support staff see.
fn refused_problem(refused: &TransitionError) -> (StatusCode, ProblemCode, String) {
    match refused {
        TransitionError::NotFound => (
            StatusCode::NOT_FOUND,
            ProblemCode::NotFound,
            "no registration with this id".to_owned(),
        ),
        TransitionError::AlreadyCompleted => (
            StatusCode::CONFLICT,
            ProblemCode::AlreadyCompleted,
            refused.to_string(),
        ),
        _ => (
            StatusCode::CONFLICT,
            ProblemCode::InvalidState,
            refused.to_string(),
        ),
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code, detail) = match &self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                ProblemCode::Unauthorized,
                self.to_string(),
            ),
            Self::TooManyFailedTokens { retry_after } => {
                let mut response = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ProblemCode::RateLimited,
                    self.to_string(),
                )
                .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(crate::auth_failures::retry_after_secs(
                        *retry_after,
                    )),
                );
                return response;
            }
            Self::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                ProblemCode::Forbidden,
                self.to_string(),
            ),
            Self::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                ProblemCode::ValidationFailed,
                self.to_string(),
            ),
            Self::ReasonRequired => (
                StatusCode::BAD_REQUEST,
                ProblemCode::ReasonRequired,
                self.to_string(),
            ),
            Self::NotFound
            | Self::TeamNotFound
            | Self::WebhookNotFound
            | Self::DeliveryNotFound => (
                StatusCode::NOT_FOUND,
                ProblemCode::NotFound,
                self.to_string(),
            ),
            Self::Invalid(errors) => {
                return Problem::new(
                    StatusCode::BAD_REQUEST,
                    ProblemCode::ValidationFailed,
                    self.to_string(),
                )
                .with_errors(errors.clone())
                .into_response();
            }
            Self::StaleReview { .. } => (
                StatusCode::CONFLICT,
                ProblemCode::Conflict,
                self.to_string(),
            ),
            Self::AlreadyCompleted => (
                StatusCode::CONFLICT,
                ProblemCode::AlreadyCompleted,
                self.to_string(),
            ),
            Self::InvalidState(_) => (
                StatusCode::CONFLICT,
                ProblemCode::InvalidState,
                self.to_string(),
            ),
            Self::DocumentsExpired => (
                StatusCode::CONFLICT,
                ProblemCode::DocumentsExpired,
                "the staged documents are gone; the team must submit the registration again"
                    .to_owned(),
            ),
            Self::Redis(_)
            | Self::Status(StatusError::Unavailable(_))
            | Self::Queue(PushError::Queue(_)) => {
                tracing::warn!(error = &self as &dyn std::error::Error, "redis unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ProblemCode::ServiceUnavailable,
                    "Redis is unavailable; retry later".to_owned(),
                )
            }
            Self::Database(DbError::Unavailable(_))
            | Self::Load(LoadError::Db(DbError::Unavailable(_))) => {
                tracing::warn!(
                    error = &self as &dyn std::error::Error,
                    "database unavailable"
                );
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    ProblemCode::ServiceUnavailable,
                    "Postgres is unavailable; retry later".to_owned(),
                )
            }
            Self::Status(StatusError::Refused(refused)) => refused_problem(refused),
            Self::Status(_)
            | Self::Database(_)
            | Self::Load(_)
            | Self::Staging(_)
            | Self::Queue(PushError::Encode(_)) => {
                // The whole chain, once, here; the caller sees no detail.
                tracing::error!(error = &self as &dyn std::error::Error, "internal error");
                return Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response();
            }
        };
        let mut response = Problem::new(status, code, detail).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"intake-admin\""),
            );
        }
        response
    }
}
