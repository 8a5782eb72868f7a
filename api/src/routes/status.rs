//! `GET /v1/registrations/{id}`: the status record as the workers keep it (docs/contract.md §4).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use intake_shared::domain::RegistrationId;
use intake_shared::status::StatusRecord;

use intake_store::status::StatusError;

use crate::problem::ApiError;
use crate::state::AppState;

/// A registration's status.
///
/// Poll until `status` is `completed` or `failed`, honouring `Retry-After`. Any id that is
/// not a registration's, including one that does not even decode, is 404.
#[utoipa::path(
    get,
    path = "/v1/registrations/{id}",
    operation_id = crate::openapi::operation::STATUS,
    tag = "registrations",
    params(("id" = String, Path, format = Uuid,
        description = "The registration id from the 202 answer; any other value is 404")),
    responses(
        (status = 200, description = "The status", body = StatusRecord,
            headers(("Cache-Control" = String), ("Retry-After" = u32, description = "While not finished"))),
        (status = 404, description = "No such registration", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn status(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = registration_id(id)?;
    let (_, record) = read(&app, id).await?.ok_or(ApiError::NotFound)?;
    let mut response = axum::Json(&record).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !record.status.is_final() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}

/// The registration id of a path; anything else (malformed, undecodable) is 404.
pub fn registration_id(
    id: Result<Path<String>, PathRejection>,
) -> Result<RegistrationId, ApiError> {
    id.ok()
        .and_then(|Path(id)| RegistrationId::parse(&id))
        .ok_or(ApiError::NotFound)
}

/// The status record as clients see it, as JSON and parsed; `None` if there is none.
pub async fn read(
    app: &AppState,
    id: RegistrationId,
) -> Result<Option<(String, StatusRecord)>, ApiError> {
    let Some(record) = app.status.get(id).await? else {
        return Ok(None);
    };
    let json = serde_json::to_string(&record)
        .map_err(|source| ApiError::Status(StatusError::Corrupt { id, source }))?;
    Ok(Some((json, record)))
}
