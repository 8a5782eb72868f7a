//! `POST /v1/registrations` (docs/contract.md §2): rate limit, read and stage the form, validate
//! it, claim the `Idempotency-Key`, then enqueue and answer `202`. Once the key is claimed
//! the rest runs in its own task, so a client that hangs up (or the request timeout) cannot
//! cut the hand-off in half and leave a claimed key without its job.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{ConnectInfo, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use intake_shared::domain::{IdempotencyKey, Registration, RegistrationId};
use intake_shared::errors::{FieldCode, FieldError};
use intake_shared::job::{Purpose, RegistrationJob};
use intake_shared::validation;
use intake_store::staging_quota::Reservation;
use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::intake::client;
use crate::intake::duplicates::{DuplicateCheck, OwnKey};
use crate::intake::enqueue::Pushed;
use crate::intake::form::{self, FormError};
use crate::intake::idempotency::{Claim, ClaimKind, ClaimOutcome, IdempotencyError};
use crate::intake::staging::Upload;
use crate::middleware::metrics;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use intake_shared::http::request_id::RequestId;

/// Submit a registration.
///
/// Validates the form, stages its documents and queues it; answers `202` with the URL to
/// poll. Send the same `Idempotency-Key` again to retry safely. The whole body may weigh at
/// most `INTAKE_MAX_BODY_BYTES` (12 MiB unless configured otherwise); over that is `413`.
#[utoipa::path(
    post,
    path = "/v1/registrations",
    operation_id = crate::openapi::operation::SUBMIT,
    tag = "registrations",
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$",
            description = "1–255 visible ASCII characters (`!` to `~`, no spaces), one per filled-in form; \
                a repeat with the same content answers as the first time, with other content `422`"),
    ),
    request_body(content = crate::openapi::RegistrationForm, content_type = "multipart/form-data",
        description = "The form; at most `INTAKE_MAX_BODY_BYTES` (12 MiB by default) and 32 parts",
        encoding(
            ("players" = (content_type = "application/json")),
            ("payment_receipt" = (content_type = crate::openapi::DOCUMENT_TYPES)),
            ("pastor_letter" = (content_type = crate::openapi::DOCUMENT_TYPES)),
        )),
    responses(
        (status = 202, description = "Accepted and queued", body = crate::openapi::AcceptedBody,
            headers(
                ("Location" = String, description = "The status URL, as `status_url`"),
                ("Retry-After" = u32, description = "Seconds before the first poll"),
                ("Idempotent-Replayed" = String, description = "`true` when this answers a repeat"),
                ("X-Request-ID" = String),
            ),
            links(
                ("status" = (operation_id = crate::openapi::operation::STATUS,
                    parameters(("id" = "$response.body#/id")),
                    description = "Poll the registration's status")),
                ("events" = (operation_id = crate::openapi::operation::EVENTS,
                    parameters(("id" = "$response.body#/id")),
                    description = "Follow the registration's status as Server-Sent Events")),
            )),
        (status = 400, description = "Invalid fields (all listed in `errors`) or Idempotency-Key missing or malformed",
            body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body took too long to arrive", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this key is still being accepted (`REQUEST_IN_PROGRESS`, with `Retry-After`), \
            or the team is already registered or being registered (`DUPLICATE_TEAM`)",
            body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32))),
        (status = 413, description = "Body over the size cap", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The key was used with different content", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many submissions from this client, or its documents waiting to be processed fill its staging quota",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32), ("X-RateLimit-Limit" = u64), ("X-RateLimit-Remaining" = u64), ("X-RateLimit-Reset" = u64))),
        (status = 500, description = "Internal error", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable; retry later",
            body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32))),
    )
)]
#[tracing::instrument(name = "submit", skip_all)]
pub async fn submit(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    request: Request,
) -> Response {
    let client = client::identity(
        peer,
        request.headers(),
        app.settings.api.trusted_proxy_header.as_deref(),
        app.settings.api.rate_limit_ipv6_prefix,
    );
    let mut conn = app.redis();
    let limit = match app.rate_limiter.check(&mut conn, &client).await {
        Ok(limit) => limit,
        Err(err) => return reject(ApiError::Unavailable(err)),
    };
    if let Some(decision) = &limit
        && !decision.allowed
    {
        return reject(ApiError::RateLimited(decision.clone()));
    }
    let mut response = match accept(app, request_id, client, request).await {
        Ok(accepted) => {
            metrics::submission(
                if accepted.replayed {
                    "replayed"
                } else {
                    "accepted"
                },
                "",
            );
            accepted.into_response()
        }
        Err(err) => reject(err),
    };
    if let Some(decision) = limit {
        response.headers_mut().extend(decision.headers());
    }
    response
}

fn reject(err: ApiError) -> Response {
    let response = err.into_response();
    let code = response
        .extensions()
        .get::<crate::problem::Problem>()
        .map(|p| p.code().as_str())
        .unwrap_or("INTERNAL_ERROR");
    metrics::submission("rejected", code);
    response
}

async fn accept(
    app: AppState,
    request_id: String,
    client: String,
    request: Request,
) -> Result<Accepted, ApiError> {
    if !is_multipart_form(request.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let key = idempotency_key(request.headers())?;
    let declared = content_length(request.headers());
    if declared.is_some_and(|len| len > app.settings.api.max_body_bytes) {
        return Err(ApiError::PayloadTooLarge);
    }
    // A client whose staged documents already fill its quota stages nothing more. If Redis
    // cannot say, the reservation once the form is read decides (and a Redis still down
    // then is a 503 after the body was read, which a client reads as such, rather than an
    // answer to a request it is still sending).
    match app.staging_quota.has_room(&client).await {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::StagingQuotaExceeded),
        Err(err) => tracing::debug!(error = %err, "staging quota unreadable before the body"),
    }
    // The parser buffers a part's header block whole: the guard bounds it (part_headers).
    let (request, part_headers) = crate::intake::part_headers::guard(request);
    let multipart = Multipart::from_request(request, &())
        .await
        .map_err(multipart_rejection)?;
    let mut upload = app.staging.begin();
    // A key bound to a registration already is its retry or replay: that registration's
    // own team is no duplicate.
    let own = OwnKey {
        idempotency: &app.idempotency,
        redis: app.redis(),
        key: &key,
    };
    let mut duplicates = DuplicateCheck::new(&app.team_index, own);
    let read = read_and_validate(multipart, &mut upload, &mut duplicates)
        .await
        .map_err(|err| part_headers.explain(err));
    let (registration, received) = match read {
        Ok(read) => read,
        Err(err) => {
            upload.discard().await;
            return Err(err);
        }
    };
    // A form that sent its documents before its team name is checked now.
    if let Err(duplicate) = duplicates.team(registration.team_key()).await {
        upload.discard().await;
        return Err(duplicate.into());
    }
    let staged_by = match reserve_quota(&app, &client, upload.name(), &received).await {
        Ok(staged_by) => staged_by,
        Err(err) => {
            upload.discard().await;
            return Err(err);
        }
    };
    // The object is complete (and, with strict durability, on stable storage) before the
    // key is claimed and the job that refers to it is pushed.
    if let Err(err) = upload.finish().await {
        give_back_quota(&app, staged_by.as_deref(), upload.name()).await;
        upload.discard().await;
        return Err(ApiError::Staging(err));
    }
    let mut conn = app.redis();
    let claimed = app
        .idempotency
        .claim(&mut conn, &key, &received.fingerprint)
        .await;
    let claim = match claimed {
        Ok(ClaimOutcome::Claimed(claim)) => claim,
        other => {
            // Nothing of this request is needed: answer as the key says, leave nothing.
            give_back_quota(&app, staged_by.as_deref(), upload.name()).await;
            upload.discard().await;
            return match other {
                Ok(ClaimOutcome::Replay(id)) => Ok(Accepted { id, replayed: true }),
                Ok(ClaimOutcome::Mismatch) => Err(ApiError::IdempotencyKeyReused),
                Ok(ClaimOutcome::InProgress { retry_after }) => {
                    Err(ApiError::RequestInProgress { retry_after })
                }
                // `claim` answered with another claim instead of its own outcome: the record
                // changed under it, as a corrupt one would.
                Ok(ClaimOutcome::Claimed(_)) => Err(ApiError::CorruptIdempotencyRecord),
                Err(IdempotencyError::Redis(err)) => Err(ApiError::Unavailable(err)),
                Err(IdempotencyError::Corrupt) => Err(ApiError::CorruptIdempotencyRecord),
            };
        }
    };
    let job = RegistrationJob {
        registration_id: claim.id,
        request_id,
        registration,
        documents: received.documents,
        submitted_at: OffsetDateTime::now_utc(),
        run: 0,
        purpose: Purpose::Register,
        staged_by,
    };
    let span = tracing::info_span!("enqueue", registration_id = %claim.id);
    tokio::spawn(hand_off(app, claim, job, upload).instrument(span))
        .await
        .map_err(ApiError::HandOff)?
}

/// Counts the staged documents against the client's staging quota; the client to name in
/// the job (`None` when nothing was staged or there is no quota).
async fn reserve_quota(
    app: &AppState,
    client: &str,
    upload: &str,
    received: &form::ReceivedForm,
) -> Result<Option<String>, ApiError> {
    let bytes: u64 = received.documents.iter().map(|d| d.bytes).sum();
    if bytes == 0 || app.staging_quota.cap() == 0 {
        return Ok(None);
    }
    match app.staging_quota.reserve(client, upload, bytes).await? {
        Reservation::Reserved => Ok(Some(client.to_owned())),
        Reservation::Refused { held } => {
            tracing::info!(held, bytes, "staging quota full for this client");
            Err(ApiError::StagingQuotaExceeded)
        }
    }
}

/// Gives an upload's quota back when no job will take it.
async fn give_back_quota(app: &AppState, staged_by: Option<&str>, upload: &str) {
    let Some(client) = staged_by else { return };
    if let Err(err) = app.staging_quota.take(client, &[upload.to_owned()]).await {
        tracing::warn!(error = %err, "staging quota not given back; it expires with the retention");
    }
}

/// Reads the form into `upload` and validates it; every problem in one error.
async fn read_and_validate(
    multipart: Multipart,
    upload: &mut Upload,
    duplicates: &mut DuplicateCheck<'_>,
) -> Result<(Registration, form::ReceivedForm), ApiError> {
    let received = form::read_checked(multipart, upload, Some(duplicates))
        .await
        .map_err(|err| match err {
            FormError::TooLarge => ApiError::PayloadTooLarge,
            FormError::Malformed(detail) => ApiError::Validation(vec![FieldError::new(
                "body",
                FieldCode::MalformedBody,
                format!("is not a well-formed multipart body: {detail}"),
            )]),
            FormError::Staging(err) => ApiError::Staging(err),
            FormError::Duplicate(duplicate) => duplicate.into(),
        })?;
    match validation::validate(&received.raw) {
        Ok(registration) if received.errors.is_empty() => Ok((registration, received)),
        Ok(_) => Err(ApiError::Validation(received.errors)),
        Err(field_errors) => Err(ApiError::Validation(merge(field_errors, received.errors))),
    }
}

/// Writes the status record, pushes the job and completes the claim, undoing what it did
/// if the job was certainly not enqueued. A push whose answer was lost is settled by asking
/// the queue; if even that cannot be answered the claim keeps its registration id (its
/// lock released), so the client's retry re-uses the id and cannot make a second job.
async fn hand_off(
    app: AppState,
    claim: Claim,
    job: RegistrationJob,
    upload: Upload,
) -> Result<Accepted, ApiError> {
    let mut conn = app.redis();
    let id = claim.id;
    let upload_name = upload.name().to_owned();
    let created_status = match app.status.create(id, &upload_name).await {
        Ok(created) => created,
        Err(err) => {
            release(&app, &claim, claim.kind).await;
            return Err(err.into());
        }
    };
    match app.enqueuer.push(&conn, &job).await {
        Ok(Pushed::New) => upload.keep(),
        // A request that took over an abandoned claim found the job already queued, with
        // the first request's files; this request's copy is not needed.
        Ok(Pushed::AlreadyQueued) => {
            if let Err(err) = app.enqueuer.forget_upload(&mut conn, &upload_name).await {
                tracing::warn!(error = %err, "mark of an unneeded upload not removed");
            }
            give_back_quota(&app, job.staged_by.as_deref(), &upload_name).await;
            drop(upload);
        }
        Err(push_err) => match app.enqueuer.is_queued(&mut conn, id).await {
            Ok(true) => upload.keep(),
            Ok(false) => {
                if let Err(err) = app.status.withdraw(id, &upload_name, created_status).await {
                    tracing::warn!(error = %err, "status record of a refused job not removed");
                }
                give_back_quota(&app, job.staged_by.as_deref(), &upload_name).await;
                release(&app, &claim, claim.kind).await;
                return Err(push_err.into());
            }
            Err(err) => {
                upload.keep();
                release(&app, &claim, ClaimKind::Takeover).await;
                tracing::warn!(error = %err, "job may or may not be enqueued");
                return Err(push_err.into());
            }
        },
    }
    if let Err(err) = app.idempotency.complete(&mut conn, &claim).await {
        // The job is queued, so the answer is 202. The claim's lock runs out shortly and the
        // client's next retry with this key takes it over and completes it.
        tracing::warn!(error = %err, "idempotency claim not completed");
    }
    tracing::info!(documents = job.documents.len(), "registration enqueued");
    Ok(Accepted {
        id,
        replayed: false,
    })
}

async fn release(app: &AppState, claim: &Claim, kind: ClaimKind) {
    let mut conn = app.redis();
    if let Err(err) = app.idempotency.release(&mut conn, claim, kind).await {
        tracing::warn!(error = %err, "idempotency claim not released; its lock will expire");
    }
}

/// Field problems from validation and from reading, without saying twice what is wrong with
/// one field (a field too long to read is not also "required").
fn merge(validation: Vec<FieldError>, read: Vec<FieldError>) -> Vec<FieldError> {
    let read_fields: HashSet<&str> = read.iter().map(|e| root_field(&e.field)).collect();
    let mut errors: Vec<FieldError> = validation
        .into_iter()
        .filter(|e| !read_fields.contains(root_field(&e.field)))
        .collect();
    errors.extend(read);
    errors
}

fn root_field(field: &str) -> &str {
    field.split(['[', '.']).next().unwrap_or(field)
}

fn is_multipart_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let value = values.next().ok_or(ApiError::IdempotencyKeyMissing)?;
    if values.next().is_some() {
        return Err(ApiError::IdempotencyKeyInvalid);
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::IdempotencyKeyInvalid)?;
    IdempotencyKey::parse(value).map_err(|_| ApiError::IdempotencyKeyInvalid)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn multipart_rejection(rejection: MultipartRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    ApiError::Validation(vec![FieldError::new(
        "body",
        FieldCode::MalformedBody,
        format!(
            "is not a well-formed multipart body: {}",
            rejection.body_text()
        ),
    )])
}

/// The `202` of docs/contract.md §2.
#[derive(Debug)]
struct Accepted {
    id: RegistrationId,
    replayed: bool,
}

#[derive(Serialize)]
struct AcceptedBody {
    id: String,
    status: &'static str,
    status_url: String,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let status_url = format!("/v1/registrations/{}", self.id);
        let mut response = (
            StatusCode::ACCEPTED,
            Json(AcceptedBody {
                id: self.id.to_string(),
                status: "queued",
                status_url: status_url.clone(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&status_url) {
            headers.insert(header::LOCATION, location);
        }
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        if self.replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}
