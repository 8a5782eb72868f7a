//! Listing and showing registrations. Failed ones come from the failed index in Redis (a
//! failure may be that Postgres was down, so Postgres cannot be where failures are kept);
//! completed ones from Postgres. Phones and emails are masked unless the caller asks to see
//! them, and asking is itself written to the audit log.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use intake_shared::domain::{Registration, RegistrationId};
use intake_shared::http::request_id::RequestId;
use intake_shared::job::RegistrationJob;
use intake_shared::mask;
use intake_shared::status::StatusRecord;
use intake_worker::steps::save;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::{self, Entry, Outcome};
use crate::auth::Actor;
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
    _actor: Actor,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, AdminError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(AdminError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
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
        (None, Some(until)) => intake_worker::status::unix_millis(until).to_string(),
        (None, None) => "+inf".to_owned(),
    };
    let min = since
        .map(|s| intake_worker::status::unix_millis(s).to_string())
        .unwrap_or_else(|| "-inf".to_owned());
    let mut items = Vec::new();
    let mut offset = 0;
    const BATCH: usize = 200;
    loop {
        let batch: Vec<(String, i64)> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(state.keys.failed_index())
            .arg(&max)
            .arg(&min)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(offset)
            .arg(BATCH)
            .query_async(&mut state.redis())
            .await?;
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
        if !candidates.is_empty() {
            let keys: Vec<String> = candidates
                .iter()
                .filter_map(|(id, _)| RegistrationId::parse(id).map(|id| state.keys.status(&id)))
                .collect();
            let records: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut state.redis())
                .await?;
            for ((id, score), raw) in candidates.iter().zip(records) {
                let Some(record) = raw.and_then(|r| serde_json::from_str::<StatusRecord>(&r).ok())
                else {
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

type CompletedRow = (uuid::Uuid, String, String, OffsetDateTime, Option<String>);

async fn completed_page(
    state: &AdminState,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, AdminError> {
    let cursor = cursor
        .map(|c| {
            c.split_once('|')
                .and_then(|(at, id)| {
                    Some((
                        OffsetDateTime::parse(at, &Rfc3339).ok()?,
                        uuid::Uuid::parse_str(id).ok()?,
                    ))
                })
                .ok_or_else(|| AdminError::BadRequest("cursor is not one this service gave".into()))
        })
        .transpose()?;
    let rows: Vec<CompletedRow> = sqlx::query_as(
        "SELECT t.registration_id, t.team_id, t.team_name, t.created_at, e.status
         FROM teams t LEFT JOIN email_deliveries e USING (registration_id)
         WHERE ($1::timestamptz IS NULL OR t.created_at >= $1)
           AND ($2::timestamptz IS NULL OR t.created_at <= $2)
           AND ($3::timestamptz IS NULL OR (t.created_at, t.registration_id) < ($3, $4))
         ORDER BY t.created_at DESC, t.registration_id DESC
         LIMIT $5",
    )
    .bind(since)
    .bind(until)
    .bind(cursor.as_ref().map(|c| c.0))
    .bind(cursor.as_ref().map(|c| c.1))
    .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = (rows.len() > limit).then(|| {
        let (id, _, _, at, _) = &rows[limit - 1];
        format!("{}|{id}", at.format(&Rfc3339).unwrap_or_default())
    });
    let items = rows
        .into_iter()
        .take(limit)
        .map(|(id, team_id, team_name, created_at, email)| {
            json!({
                "id": id,
                "status": "completed",
                "team_id": team_id,
                "team_name": team_name,
                "email_status": email,
                "completed_at": created_at.format(&Rfc3339).ok(),
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
    Actor(actor): Actor,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<Value>, AdminError> {
    let id = RegistrationId::parse(&id).ok_or(AdminError::NotFound)?;
    let raw: Option<String> = redis::cmd("GET")
        .arg(state.keys.status(&id))
        .query_async(&mut state.redis())
        .await?;
    let record: Option<StatusRecord> = raw.and_then(|r| serde_json::from_str(&r).ok());
    let saved = save::load(&state.pool, id).await?;
    let failed_job: Option<RegistrationJob> = redis::cmd("GET")
        .arg(state.keys.failed_job(&id))
        .query_async::<Option<String>>(&mut state.redis())
        .await?
        .and_then(|p| serde_json::from_str(&p).ok());
    if record.is_none() && saved.is_none() {
        return Err(AdminError::NotFound);
    }
    if query.reveal {
        Entry {
            actor: &actor,
            action: "reveal_personal_data",
            registrations: &[id],
            reason: query.reason.as_deref(),
            request_id: Some(&request_id),
        }
        .record(&state.pool, Outcome::Succeeded, json!({}))
        .await?;
    }
    let attempts: Vec<String> = redis::cmd("LRANGE")
        .arg(state.keys.attempts(&id))
        .arg(0)
        .arg(-1)
        .query_async(&mut state.redis())
        .await?;
    let attempts: Vec<Value> = attempts
        .iter()
        .filter_map(|a| serde_json::from_str(a).ok())
        .collect();
    let email: Option<(String, i32, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "SELECT status, attempts, last_error, updated_at FROM email_deliveries WHERE registration_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(&state.pool)
    .await?;
    let registration = saved
        .as_ref()
        .map(|s| &s.registration)
        .or(failed_job.as_ref().map(|j| &j.registration));
    let documents = match (&saved, &failed_job) {
        (Some(saved), _) => json!(saved.documents),
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
        "email": email.map(|(status, attempts, last_error, updated_at)| json!({
            "status": status,
            "attempts": attempts,
            "last_error": last_error,
            "updated_at": updated_at.format(&Rfc3339).ok(),
        })),
        "audit": audit,
        "personal_data": if query.reveal { "revealed" } else { "masked" },
    })))
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
