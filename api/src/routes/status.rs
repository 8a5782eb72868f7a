//! `GET /v1/registrations/{id}`: the status record as the workers keep it (design.md §4).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use intake_shared::domain::RegistrationId;
use intake_shared::status::StatusRecord;
use redis::AsyncCommands;

use crate::problem::ApiError;
use crate::state::AppState;

/// A registration's status.
///
/// Poll until `status` is `completed` or `failed`, honouring `Retry-After`. Any id that is
/// not a registration's, including one that does not even decode, is 404.
#[utoipa::path(
    get,
    path = "/v1/registrations/{id}",
    tag = "registrations",
    params(("id" = String, Path, description = "The registration id from the 202 answer")),
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
    let id = id
        .ok()
        .and_then(|Path(id)| RegistrationId::parse(&id))
        .ok_or(ApiError::NotFound)?;
    let mut conn = app.redis();
    let raw: Option<String> = conn.get(app.settings.keys().status(&id)).await?;
    let record: StatusRecord = serde_json::from_str(&raw.ok_or(ApiError::NotFound)?)
        .map_err(|e| ApiError::Internal(format!("status record of {id} unreadable: {e}")))?;
    let mut response = axum::Json(&record).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if !record.status.is_final() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}
