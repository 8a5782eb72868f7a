//! Support actions: re-drive one registration or many, resend a confirmation email, discard
//! a failed registration. Each
//! needs a reason, and each is written to the audit log before it takes effect and again with
//! its outcome.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use intake_shared::domain::RegistrationId;
use intake_shared::http::request_id::RequestId;
use intake_shared::job::{Purpose, RegistrationJob};
use intake_store::pg::audit::{self, Entry, Outcome};
use intake_store::pg::registrations;
use intake_store::status::{StatusError, TransitionError};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::auth::{Support, Viewer};
use crate::error::AdminError;
use crate::redrive;
use crate::routes::registrations::{MAX_PAGE, failed_page, time_param};
use crate::state::AdminState;

const MAX_REASON: usize = 1000;
/// The most registrations one bulk re-drive touches.
const MAX_BULK: usize = 1000;

#[derive(Debug, Deserialize)]
pub struct ActionBody {
    pub reason: Option<String>,
}

pub(crate) fn reason(given: Option<&str>) -> Result<String, AdminError> {
    let reason = given.map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        return Err(AdminError::ReasonRequired);
    }
    if reason.chars().count() > MAX_REASON {
        return Err(AdminError::BadRequest(format!(
            "reason must be at most {MAX_REASON} characters"
        )));
    }
    Ok(reason.to_owned())
}

fn parse_id(id: &str) -> Result<RegistrationId, AdminError> {
    RegistrationId::parse(id).ok_or(AdminError::NotFound)
}

/// Drops a failed registration for good (`crate::discard`), audited as `discard`.
pub async fn discard(
    State(state): State<AdminState>,
    Support(actor): Support,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<ActionBody>,
) -> Result<Json<Value>, AdminError> {
    let id = parse_id(&id)?;
    let reason = reason(body.reason.as_deref())?;
    let ids = [id];
    let entry = Entry {
        actor: &actor.name,
        action: "discard",
        registrations: &ids,
        reason: Some(&reason),
        request_id: Some(&request_id),
    };
    entry
        .record(&state.pool, Outcome::Requested, json!({}))
        .await?;
    match crate::discard::one(&state, id).await {
        Ok(detail) => {
            entry
                .record(&state.pool, Outcome::Succeeded, detail)
                .await?;
            Ok(Json(json!({"id": id, "status": "discarded"})))
        }
        Err(
            err @ (AdminError::NotFound
            | AdminError::AlreadyCompleted
            | AdminError::InvalidState(_)),
        ) => {
            entry
                .record(
                    &state.pool,
                    Outcome::Refused,
                    json!({"error": err.to_string()}),
                )
                .await?;
            Err(err)
        }
        Err(err) => {
            entry.record_failure(&state.pool, &err).await;
            Err(err)
        }
    }
}

pub async fn redrive_one(
    State(state): State<AdminState>,
    Support(actor): Support,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<ActionBody>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let id = parse_id(&id)?;
    let reason = reason(body.reason.as_deref())?;
    let ids = [id];
    let entry = Entry {
        actor: &actor.name,
        action: "redrive",
        registrations: &ids,
        reason: Some(&reason),
        request_id: Some(&request_id),
    };
    entry
        .record(&state.pool, Outcome::Requested, json!({}))
        .await?;
    let outcome = match redrive::one(&state, id).await {
        Ok(outcome) => outcome,
        Err(err) => {
            entry.record_failure(&state.pool, &err).await;
            return Err(err);
        }
    };
    let logged = if outcome == redrive::Outcome::Requeued {
        Outcome::Succeeded
    } else {
        Outcome::Refused
    };
    entry
        .record(&state.pool, logged, json!({"outcome": outcome}))
        .await?;
    outcome.into_result()?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "status": "queued"})),
    ))
}

#[derive(Debug, Deserialize)]
pub struct BulkBody {
    pub reason: Option<String>,
    /// Re-drive exactly these registrations…
    pub ids: Option<Vec<String>>,
    /// …or every failed one matching these filters.
    pub code: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

pub async fn redrive_many(
    State(state): State<AdminState>,
    Support(actor): Support,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Json(body): Json<BulkBody>,
) -> Result<Json<Value>, AdminError> {
    let reason = reason(body.reason.as_deref())?;
    let ids: Vec<RegistrationId> = match &body.ids {
        Some(ids) => ids
            .iter()
            .map(|id| {
                RegistrationId::parse(id).ok_or_else(|| {
                    AdminError::BadRequest(format!("{id:?} is not a registration id"))
                })
            })
            .collect::<Result<_, _>>()?,
        None => {
            let since = time_param("since", body.since.as_deref())?;
            let until = time_param("until", body.until.as_deref())?;
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let page = failed_page(
                    &state,
                    body.code.as_deref(),
                    since,
                    until,
                    MAX_PAGE,
                    cursor.as_deref(),
                )
                .await?;
                ids.extend(
                    page.items
                        .iter()
                        .filter_map(|i| i["id"].as_str().and_then(RegistrationId::parse)),
                );
                match page.next_cursor {
                    Some(next) if ids.len() < MAX_BULK => cursor = Some(next),
                    _ => break,
                }
            }
            ids
        }
    };
    if ids.len() > MAX_BULK {
        return Err(AdminError::BadRequest(format!(
            "at most {MAX_BULK} registrations per call"
        )));
    }
    let entry = Entry {
        actor: &actor.name,
        action: "redrive_bulk",
        registrations: &ids,
        reason: Some(&reason),
        request_id: Some(&request_id),
    };
    entry
        .record(
            &state.pool,
            Outcome::Requested,
            json!({"filter": {"code": body.code, "since": body.since, "until": body.until}}),
        )
        .await?;
    let mut results = Vec::with_capacity(ids.len());
    let mut requeued = 0;
    for id in &ids {
        let outcome = match redrive::one(&state, *id).await {
            Ok(outcome) => json!(outcome),
            Err(err) => {
                tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %id, "re-drive failed");
                json!({"error": intake_shared::errors::chain(&err)})
            }
        };
        if outcome == json!(redrive::Outcome::Requeued) {
            requeued += 1;
        }
        results.push(json!({"id": id, "outcome": outcome}));
    }
    let logged = if requeued == ids.len() {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    entry
        .record(
            &state.pool,
            logged,
            json!({"requeued": requeued, "results": results}),
        )
        .await?;
    Ok(Json(
        json!({"requested": ids.len(), "requeued": requeued, "results": results}),
    ))
}

/// Queues the confirmation of a completed registration again. The worker sends it and
/// writes the outcome to the audit log; `email_status` on the status record is `pending`
/// until then.
pub async fn resend_email(
    State(state): State<AdminState>,
    Support(actor): Support,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<ActionBody>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let id = parse_id(&id)?;
    let reason = reason(body.reason.as_deref())?;
    let ids = [id];
    let entry = Entry {
        actor: &actor.name,
        action: audit::RESEND_EMAIL,
        registrations: &ids,
        reason: Some(&reason),
        request_id: Some(&request_id),
    };
    let audit_id = entry
        .record(&state.pool, Outcome::Requested, json!({}))
        .await?;
    match queue_resend(&state, &entry, audit_id).await {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "email_status": "pending"})),
        )),
        Err(err) => {
            if !matches!(err, AdminError::InvalidState(_)) {
                entry.record_failure(&state.pool, &err).await;
            }
            Err(err)
        }
    }
}

/// Pushes the resend job of `entry`'s registration, refusing (and auditing the refusal)
/// unless it is completed. Whether it is completed is the saved row's to say: the status
/// record of a completed registration expires after the retention period.
async fn queue_resend(
    state: &AdminState,
    entry: &Entry<'_>,
    audit_id: i64,
) -> Result<(), AdminError> {
    let id = entry.registrations[0];
    let refuse = || async {
        entry
            .record(
                &state.pool,
                Outcome::Refused,
                json!({"why": "not completed"}),
            )
            .await?;
        Err(AdminError::InvalidState(
            "only a completed registration's confirmation can be resent".into(),
        ))
    };
    let Some(saved) = registrations::load(&state.pool, id).await? else {
        return refuse().await;
    };
    let previous = state.status.get(id).await?.and_then(|r| r.email_status);
    match state.status.email_resend_queued(id).await {
        // No record any more (it expired): the saved row says it is completed.
        Ok(()) | Err(StatusError::Refused(TransitionError::NotFound)) => {}
        // Saved, but its own run has not finished yet.
        Err(StatusError::Refused(TransitionError::NotCompleted(_))) => return refuse().await,
        Err(err) => return Err(err.into()),
    }
    let job = RegistrationJob {
        registration_id: id,
        request_id: entry.request_id.unwrap_or_default().to_owned(),
        registration: saved.registration,
        documents: Vec::new(),
        submitted_at: OffsetDateTime::now_utc(),
        run: 0,
        purpose: Purpose::ResendEmail {
            actor: entry.actor.to_owned(),
            reason: entry.reason.unwrap_or_default().to_owned(),
            audit_id,
        },
        staged_by: None,
    };
    // One job per request: the audit entry's id keys it.
    let pushed = intake_shared::queue::push(
        &state.redis,
        &state.queue,
        &job,
        &format!("{id}:resend:{audit_id}"),
        state.settings.queue.max_attempts,
    )
    .await;
    if let Err(err) = pushed {
        // Not queued: `pending` would never end, so the status says what it said before.
        if let Some(previous) = previous
            && let Err(restore) = state.status.email_resent(id, previous).await
        {
            tracing::warn!(error = &restore as &dyn std::error::Error, registration_id = %id, "email status not restored");
        }
        return Err(err.into());
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub registration_id: Option<String>,
    pub limit: Option<i64>,
}

pub async fn audit_log(
    State(state): State<AdminState>,
    _actor: Viewer,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, AdminError> {
    let entries = match query.registration_id.as_deref() {
        Some(id) => audit::for_registration(&state.pool, parse_id(id)?).await?,
        None => audit::recent(&state.pool, query.limit.unwrap_or(100).clamp(1, 1000)).await?,
    };
    Ok(Json(json!({"entries": entries})))
}
