//! Listing and showing registrations. Failed ones come from the failed index in Redis (a
//! failure may be that Postgres was down, so Postgres cannot be where failures are kept);
//! completed ones from Postgres. Phones and emails are masked unless the caller asks to see
//! them (which needs the support role), and asking is itself written to the audit log.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use intake_shared::domain::{Registration, RegistrationId};
use intake_shared::http::request_id::RequestId;
use intake_shared::mask;
use intake_shared::status::StatusRecord;
use intake_store::pg::audit::{self, Entry, Outcome};
use intake_store::pg::{email_deliveries, registrations};
use intake_store::status::{StatusError, unix_millis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::{Role, Viewer};
use crate::error::AdminError;
use crate::state::AdminState;

pub const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub code: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// A listing's page size: `DEFAULT_PAGE` when not given, 1 to `MAX_PAGE`; otherwise a 400
/// naming `limit`.
pub fn page_limit(limit: Option<usize>) -> Result<usize, AdminError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AdminError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    Ok(limit)
}

/// An optional RFC 3339 time parameter; a malformed one is a 400 naming it.
pub fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, AdminError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| AdminError::BadRequest(format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

pub async fn list(
    State(state): State<AdminState>,
    _actor: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, AdminError> {
    let limit = page_limit(query.limit)?;
    let since = time_param("since", query.since.as_deref())?;
    let until = time_param("until", query.until.as_deref())?;
    match query.status.as_deref().unwrap_or("failed") {
        "failed" => failed_page(
            &state,
            query.code.as_deref(),
            since,
            until,
            limit,
            query.cursor.as_deref(),
        )
        .await
        .map(Json),
        "completed" => completed_page(&state, since, until, limit, query.cursor.as_deref())
            .await
            .map(Json),
        other => Err(AdminError::BadRequest(format!(
            "status must be failed or completed, not {other:?}"
        ))),
    }
}

/// Failed registrations, newest failure first. The cursor is the last item's
/// `{failed at}:{id}`; items with the same second are ordered by id, as Redis orders them.
pub async fn failed_page(
    state: &AdminState,
    code: Option<&str>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, AdminError> {
    let cursor = cursor
        .map(|c| {
            c.split_once(':')
                .and_then(|(score, id)| Some((score.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| AdminError::BadRequest("cursor is not one this service gave".into()))
        })
        .transpose()?;
    let max = match (&cursor, until) {
        (Some((score, _)), _) => score.to_string(),
        (None, Some(until)) => unix_millis(until).to_string(),
        (None, None) => "+inf".to_owned(),
    };
    let min = since
        .map(|s| unix_millis(s).to_string())
        .unwrap_or_else(|| "-inf".to_owned());
    let mut items = Vec::new();
    let mut offset = 0;
    const BATCH: usize = 200;
    loop {
        let batch = state.status.failed_range(&max, &min, offset, BATCH).await?;
        let exhausted = batch.len() < BATCH;
        offset += batch.len();
        let candidates: Vec<(String, i64)> = batch
            .into_iter()
            .filter(|(id, score)| match &cursor {
                Some((cursor_score, cursor_id)) => {
                    score < cursor_score || (score == cursor_score && id < cursor_id)
                }
                None => true,
            })
            .collect();
        let candidates: Vec<(RegistrationId, i64)> = candidates
            .into_iter()
            .filter_map(|(id, score)| Some((RegistrationId::parse(&id)?, score)))
            .collect();
        if !candidates.is_empty() {
            let ids: Vec<RegistrationId> = candidates.iter().map(|(id, _)| *id).collect();
            let records = state.status.get_many(&ids).await?;
            for ((id, score), record) in candidates.iter().zip(records) {
                let Some(record) = record else {
                    continue;
                };
                let error_code = record.error.as_ref().map(|e| e.code.as_str());
                if code.is_some_and(|c| Some(c) != error_code) {
                    continue;
                }
                items.push((format!("{score}:{id}"), failed_item(&record, *score)));
                if items.len() > limit {
                    break;
                }
            }
        }
        if items.len() > limit || exhausted {
            break;
        }
    }
    let next_cursor = (items.len() > limit).then(|| items[limit - 1].0.clone());
    items.truncate(limit);
    Ok(Page {
        items: items.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    })
}

fn failed_item(record: &StatusRecord, failed_at: i64) -> Value {
    json!({
        "id": record.id,
        "status": record.status,
        "team_id": record.team_id,
        "attempts": record.attempts,
        "error": record.error,
        "failed_at": OffsetDateTime::from_unix_timestamp_nanos(i128::from(failed_at) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok()),
        "updated_at": record.updated_at.format(&Rfc3339).ok(),
    })
}

async fn completed_page(
    state: &AdminState,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, AdminError> {
    let cursor = crate::cursor::decode(cursor)?;
    let rows = registrations::completed_page(&state.pool, since, until, cursor, limit + 1).await?;
    let next_cursor = (rows.len() > limit).then(|| {
        let last = &rows[limit - 1];
        crate::cursor::encode(last.created_at, last.id)
    });
    let items = rows
        .into_iter()
        .take(limit)
        .map(|row| {
            json!({
                "id": row.id,
                "status": "completed",
                "team_id": row.team_id,
                "team_name": row.team_name,
                "email_status": row.email,
                "completed_at": row.created_at.format(&Rfc3339).ok(),
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    /// `true` shows phones and emails in full (and is audited).
    #[serde(default)]
    pub reveal: bool,
    pub reason: Option<String>,
}

pub async fn show(
    State(state): State<AdminState>,
    Viewer(actor): Viewer,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<Value>, AdminError> {
    let reveal_reason = if query.reveal {
        // Checked before anything is read, so a refused reveal writes no audit row.
        actor.require(Role::Support)?;
        Some(crate::routes::actions::reason(query.reason.as_deref())?)
    } else {
        None
    };
    let id = RegistrationId::parse(&id).ok_or(AdminError::NotFound)?;
    let record: Option<StatusRecord> = shown(id, state.status.get(id).await)?;
    let saved = registrations::load(&state.pool, id).await?;
    let failed_job = shown(id, state.status.failed_job(id).await)?;
    if record.is_none() && saved.is_none() {
        return Err(AdminError::NotFound);
    }
    if let Some(reason) = &reveal_reason {
        Entry {
            actor: &actor.name,
            action: "reveal_personal_data",
            registrations: &[id],
            reason: Some(reason),
            request_id: Some(&request_id),
        }
        .record(&state.pool, Outcome::Succeeded, json!({}))
        .await?;
    }
    let attempts = state.status.attempts(id).await?;
    let email = email_deliveries::find(&state.pool, id).await?;
    let registration = saved
        .as_ref()
        .map(|s| &s.registration)
        .or(failed_job.as_ref().map(|j| &j.registration));
    let documents = match (&saved, &failed_job) {
        (Some(saved), _) => json!(crate::documents::saved_documents_json(
            &state.documents,
            &actor,
            saved.team_id.as_str(),
            &saved.documents,
        )),
        (None, Some(job)) => json!(job
            .documents
            .iter()
            .map(|d| json!({"kind": d.kind, "content_type": d.content_type, "bytes": d.bytes, "staged": true}))
            .collect::<Vec<_>>()),
        (None, None) => json!([]),
    };
    let audit = audit::for_registration(&state.pool, id).await?;
    Ok(Json(json!({
        "id": id,
        "status": record,
        "team_id": saved.as_ref().map(|s| s.team_id.to_string()).or(record.as_ref().and_then(|r| r.team_id.clone())),
        "registration": registration.map(|r| registration_json(r, query.reveal)),
        "documents": documents,
        "attempt_errors": attempts,
        "email": email.map(|e| json!({
            "status": e.status,
            "attempts": e.attempts,
            "last_error": e.last_error,
            "updated_at": e.updated_at.format(&Rfc3339).ok(),
        })),
        "audit": audit,
        "personal_data": if query.reveal { "revealed" } else { "masked" },
    })))
}

/// A status read for display: what no longer decodes is shown as absent (and logged), so
/// the rest of the registration can still be seen.
fn shown<T>(
    id: RegistrationId,
    read: Result<Option<T>, StatusError>,
) -> Result<Option<T>, AdminError> {
    match read {
        Err(err @ StatusError::Corrupt { .. }) => {
            tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %id, "unreadable in Redis");
            Ok(None)
        }
        other => Ok(other?),
    }
}

fn registration_json(r: &Registration, reveal: bool) -> Value {
    let phone = |p: &str| if reveal { p.to_owned() } else { mask::phone(p) };
    let email = |e: &str| if reveal { e.to_owned() } else { mask::email(e) };
    json!({
        "team_name": r.team_name,
        "captain": {"name": r.captain.name, "phone": phone(r.captain.phone.as_str()), "email": email(r.captain.email.as_str())},
        "vice_captain": {"name": r.vice_captain.name, "phone": phone(r.vice_captain.phone.as_str()), "email": email(r.vice_captain.email.as_str())},
        "players": r.players,
    })
}
