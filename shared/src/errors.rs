//! Error codes of the public contract (docs/contract.md §3). Clients branch on these strings, so
//! they are enums here and serialised in one place rather than spelled out at call sites.

use serde::{Deserialize, Serialize};

/// Codes of a single field problem, listed in a 400 `VALIDATION_FAILED` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FieldCode {
    Required,
    TooShort,
    TooLong,
    InvalidCharacters,
    InvalidPhone,
    InvalidEmail,
    InvalidJson,
    TooFewPlayers,
    TooManyPlayers,
    DuplicatePlayer,
    InvalidRole,
    UnknownField,
    DuplicateField,
    FileTooLarge,
    InvalidMimeType,
    MalformedBody,
    /// A value outside the ones the field allows (an unknown review decision, say).
    InvalidValue,
}

impl FieldCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "REQUIRED",
            Self::TooShort => "TOO_SHORT",
            Self::TooLong => "TOO_LONG",
            Self::InvalidCharacters => "INVALID_CHARACTERS",
            Self::InvalidPhone => "INVALID_PHONE",
            Self::InvalidEmail => "INVALID_EMAIL",
            Self::InvalidJson => "INVALID_JSON",
            Self::TooFewPlayers => "TOO_FEW_PLAYERS",
            Self::TooManyPlayers => "TOO_MANY_PLAYERS",
            Self::DuplicatePlayer => "DUPLICATE_PLAYER",
            Self::InvalidRole => "INVALID_ROLE",
            Self::UnknownField => "UNKNOWN_FIELD",
            Self::DuplicateField => "DUPLICATE_FIELD",
            Self::FileTooLarge => "FILE_TOO_LARGE",
            Self::InvalidMimeType => "INVALID_MIME_TYPE",
            Self::MalformedBody => "MALFORMED_BODY",
            Self::InvalidValue => "INVALID_VALUE",
        }
    }
}

/// One problem with one field: what the contract calls an entry of `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub code: FieldCode,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: FieldCode, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// A problem found while parsing one value, before it is known which field it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: FieldCode,
    pub message: String,
}

impl Invalid {
    pub fn new(code: FieldCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn on(self, field: impl Into<String>) -> FieldError {
        FieldError::new(field, self.code, self.message)
    }
}

/// Top-level codes of a problem+json answer (docs/contract.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemCode {
    ValidationFailed,
    IdempotencyKeyMissing,
    IdempotencyKeyInvalid,
    NotFound,
    MethodNotAllowed,
    RequestInProgress,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    RateLimited,
    ServiceUnavailable,
    InternalError,
    /// The request line or a header is not valid HTTP (control bytes, a bad method or URI).
    MalformedRequest,
    /// The request's header section is over the server's limit.
    HeadersTooLarge,
    /// The request's URI is over the server's limit.
    UriTooLong,
    /// Admin API: no valid bearer token.
    Unauthorized,
    /// Admin API: an action needs a reason.
    ReasonRequired,
    /// Admin API: the registration is already completed.
    AlreadyCompleted,
    /// Admin API: the registration is not in the state the action needs.
    InvalidState,
    /// Admin API: the staged documents are gone; the registration cannot be re-driven.
    DocumentsExpired,
    /// Admin API: the token is valid but its role does not allow this call.
    Forbidden,
    /// Admin API: the resource changed since the version the caller named.
    Conflict,
    /// The team (folded name and captain's phone) is already registered or in progress.
    DuplicateTeam,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::IdempotencyKeyMissing => "IDEMPOTENCY_KEY_MISSING",
            Self::IdempotencyKeyInvalid => "IDEMPOTENCY_KEY_INVALID",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestInProgress => "REQUEST_IN_PROGRESS",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InternalError => "INTERNAL_ERROR",
            Self::MalformedRequest => "MALFORMED_REQUEST",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::ReasonRequired => "REASON_REQUIRED",
            Self::AlreadyCompleted => "ALREADY_COMPLETED",
            Self::InvalidState => "INVALID_STATE",
            Self::DocumentsExpired => "DOCUMENTS_EXPIRED",
            Self::Forbidden => "FORBIDDEN",
            Self::Conflict => "CONFLICT",
            Self::DuplicateTeam => "DUPLICATE_TEAM",
        }
    }
}

/// Why a registration job failed, as its status record and the support tools show it
/// (docs/contract.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobFailureCode {
    /// The same team (name and captain's phone) is already registered. Permanent.
    DuplicateTeam,
    /// The document store refused a document. Permanent.
    DocumentRejected,
    /// The staged documents are gone (retention expired). Permanent until re-submitted.
    DocumentsExpired,
    /// The document store stayed unreachable through every attempt.
    UploadUnavailable,
    /// Postgres stayed unreachable through every attempt.
    DatabaseUnavailable,
    /// Redis (status records) stayed unreachable through every attempt.
    StatusUnavailable,
    /// A bug or an unexpected answer; the logs say more.
    InternalError,
}

impl JobFailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DuplicateTeam => "DUPLICATE_TEAM",
            Self::DocumentRejected => "DOCUMENT_REJECTED",
            Self::DocumentsExpired => "DOCUMENTS_EXPIRED",
            Self::UploadUnavailable => "UPLOAD_UNAVAILABLE",
            Self::DatabaseUnavailable => "DATABASE_UNAVAILABLE",
            Self::StatusUnavailable => "STATUS_UNAVAILABLE",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }

    /// The one sentence an anonymous client is shown for this code (docs/contract.md §4).
    /// Fixed per code so that no outside service's or I/O error's own text reaches the public
    /// status; the detailed message stays in the attempt history, for support.
    pub fn public_message(self) -> &'static str {
        match self {
            Self::DuplicateTeam => {
                "A team with this name and captain's phone number is already registered."
            }
            Self::DocumentRejected => {
                "A document was refused by the document store. Check the file and register again, or contact the organisers."
            }
            Self::DocumentsExpired => {
                "The uploaded documents are no longer available. Please submit the registration again."
            }
            Self::UploadUnavailable => {
                "The document store could not be reached; the organisers will retry your registration."
            }
            Self::DatabaseUnavailable => {
                "The registration could not be saved because the database was unavailable; the organisers will retry your registration."
            }
            Self::StatusUnavailable => {
                "The registration's progress could not be recorded; the organisers will retry your registration."
            }
            Self::InternalError => {
                "Something went wrong on our side while processing the registration; please contact the organisers."
            }
        }
    }
}

/// An error and its sources as one line (`outer: inner: root`), for the places that must
/// keep a failure's whole story as text (an audit row, a bulk action's per-item result).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
