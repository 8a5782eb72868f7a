//! The organisers' view of saved teams (docs/contract.md §15): find and list them, open one,
//! decide on it. Contacts are masked unless revealed (support role and a reason, audited); a
//! decision needs the organiser role, a reason and the review version the organiser saw, and
//! queues the email that tells the captain.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use intake_shared::errors::{FieldCode, FieldError};
use intake_shared::http::request_id::RequestId;
use intake_shared::job::{Purpose, RegistrationJob};
use intake_shared::mask;
use intake_shared::status::ReviewState;
use intake_store::pg::audit::{self, Entry, Outcome};
use intake_store::pg::registrations;
use intake_store::pg::teams::{
    self, NewDecision, Review, ReviewError, TeamDetail, TeamFilter, TeamItem,
};
use intake_store::status::{StatusError, TransitionError};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::{Organiser, Role, Viewer};
use crate::error::AdminError;
use crate::routes::actions::reason;
use crate::routes::registrations::{Page, ShowQuery, page_limit, time_param};
use crate::state::AdminState;

#[derive(Debug, Deserialize)]
pub struct TeamsQuery {
    pub q: Option<String>,
    pub state: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The listing's filters, checked: a bad one is a 400 naming it.
pub fn filter(query: &TeamsQuery) -> Result<TeamFilter, AdminError> {
    let state = query
        .state
        .as_deref()
        .map(|s| {
            ReviewState::parse(s).ok_or_else(|| {
                AdminError::BadRequest(format!(
                    "state must be pending, approved or rejected, not {s:?}"
                ))
            })
        })
        .transpose()?;
    Ok(TeamFilter {
        q: query.q.clone(),
        state,
        since: time_param("since", query.since.as_deref())?,
        until: time_param("until", query.until.as_deref())?,
    })
}

pub async fn list(
    State(state): State<AdminState>,
    _actor: Viewer,
    Query(query): Query<TeamsQuery>,
) -> Result<Json<Page>, AdminError> {
    let limit = page_limit(query.limit)?;
    let filter = filter(&query)?;
    let after = crate::cursor::decode(query.cursor.as_deref())?;
    let rows = teams::list(&state.pool, &filter, after, limit + 1).await?;
    let next_cursor = (rows.len() > limit).then(|| {
        let (at, id) = rows[limit - 1].cursor();
        crate::cursor::encode(at, id)
    });
    let items = rows.iter().take(limit).map(item_json).collect();
    Ok(Json(Page { items, next_cursor }))
}

fn time(at: OffsetDateTime) -> Option<String> {
    at.format(&Rfc3339).ok()
}

fn item_json(item: &TeamItem) -> Value {
    json!({
        "team_id": item.team_id,
        "team_name": item.team_name,
        "registration_id": item.registration_id,
        "review_state": item.review_state,
        "payment_verified": item.payment_verified,
        "players": item.players,
        "created_at": time(item.created_at),
    })
}

fn review_json(review: &Review) -> Value {
    json!({
        "state": review.state,
        "payment_verified": review.payment_verified,
        "version": review.version,
        "history": review.history.iter().map(|d| json!({
            "version": d.version,
            "decision": d.decision,
            "payment_verified": d.payment_verified,
            "reason": d.reason,
            "actor": d.actor,
            "at": time(d.at),
        })).collect::<Vec<_>>(),
    })
}

pub async fn show(
    State(state): State<AdminState>,
    Viewer(actor): Viewer,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(team_id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<Value>, AdminError> {
    // Checked before anything is read, so a refused reveal writes no audit row.
    let reveal_reason = if query.reveal {
        actor.require(Role::Support)?;
        Some(reason(query.reason.as_deref())?)
    } else {
        None
    };
    let team = teams::find(&state.pool, &team_id)
        .await?
        .ok_or(AdminError::TeamNotFound)?;
    let id = team.item.registration_id;
    if let Some(reason) = &reveal_reason {
        Entry {
            actor: &actor.name,
            action: "reveal_personal_data",
            registrations: &[id],
            reason: Some(reason),
            request_id: Some(&request_id),
        }
        .record(
            &state.pool,
            Outcome::Succeeded,
            json!({"team_id": team.item.team_id}),
        )
        .await?;
    }
    let audit = audit::for_registration(&state.pool, id).await?;
    let documents = crate::documents::team_documents_json(
        &state.documents,
        &actor,
        &team.item.team_id,
        &team.documents,
    );
    Ok(Json(detail_json(&team, query.reveal, audit, documents)))
}

/// `documents` as [`crate::documents::team_documents_json`] shows them to the caller.
fn detail_json(
    team: &TeamDetail,
    reveal: bool,
    audit: Vec<audit::AuditRecord>,
    documents: Vec<Value>,
) -> Value {
    let contact = |c: &teams::StoredContact| {
        if reveal {
            json!({"name": c.name, "phone": c.phone, "email": c.email})
        } else {
            json!({"name": c.name, "phone": mask::phone(&c.phone), "email": mask::email(&c.email)})
        }
    };
    let mut detail = item_json(&team.item);
    let extra = json!({
        "captain": contact(&team.captain),
        "vice_captain": contact(&team.vice_captain),
        "players": team.players.iter().map(|p| json!({"name": p.name, "role": p.role})).collect::<Vec<_>>(),
        "documents": documents,
        "email_status": team.email_status,
        "review": review_json(&team.review),
        "audit": audit,
        "personal_data": if reveal { "revealed" } else { "masked" },
    });
    if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
        detail.extend(extra);
    }
    detail
}

/// A decision as sent: every field optional here so that every missing one is named.
#[derive(Debug, Deserialize)]
pub struct ReviewBody {
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub payment_verified: Option<bool>,
    pub version: Option<i32>,
}

struct CheckedDecision {
    decision: ReviewState,
    reason: String,
    payment_verified: bool,
    version: i32,
}

/// Every problem with the body at once, as `VALIDATION_FAILED`'s `errors`.
fn check(body: ReviewBody) -> Result<CheckedDecision, AdminError> {
    let mut errors = Vec::new();
    let missing =
        |field: &str| FieldError::new(field, FieldCode::Required, format!("{field} is required"));
    let decision = match body.decision.as_deref() {
        None => {
            errors.push(missing("decision"));
            None
        }
        Some("approved") => Some(ReviewState::Approved),
        Some("rejected") => Some(ReviewState::Rejected),
        Some(_) => {
            errors.push(FieldError::new(
                "decision",
                FieldCode::InvalidValue,
                "decision must be approved or rejected",
            ));
            None
        }
    };
    let reason = match reason(body.reason.as_deref()) {
        Ok(reason) => Some(reason),
        Err(AdminError::ReasonRequired) => {
            errors.push(missing("reason"));
            None
        }
        Err(_) => {
            errors.push(FieldError::new(
                "reason",
                FieldCode::TooLong,
                "reason must be at most 1000 characters",
            ));
            None
        }
    };
    if body.payment_verified.is_none() {
        errors.push(missing("payment_verified"));
    }
    match body.version {
        None => errors.push(missing("version")),
        Some(v) if v < 0 => errors.push(FieldError::new(
            "version",
            FieldCode::InvalidValue,
            "version is the review version the decision was made on (0 or more)",
        )),
        Some(_) => {}
    }
    match (decision, reason, body.payment_verified, body.version) {
        (Some(decision), Some(reason), Some(payment_verified), Some(version))
            if errors.is_empty() =>
        {
            Ok(CheckedDecision {
                decision,
                reason,
                payment_verified,
                version,
            })
        }
        _ => Err(AdminError::Invalid(errors)),
    }
}

pub async fn review(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(team_id): Path<String>,
    Json(body): Json<ReviewBody>,
) -> Result<Json<Value>, AdminError> {
    let checked = check(body)?;
    let decision = NewDecision {
        decision: checked.decision,
        reason: &checked.reason,
        payment_verified: checked.payment_verified,
        version: checked.version,
        actor: &actor.name,
        request_id: Some(&request_id),
    };
    let reviewed = teams::review(&state.pool, &team_id, &decision)
        .await
        .map_err(|err| match err {
            ReviewError::NotFound => AdminError::TeamNotFound,
            ReviewError::Stale { current, .. } => AdminError::StaleReview { current },
            ReviewError::NotADecision => AdminError::BadRequest(err.to_string()),
            ReviewError::Db(err) => AdminError::Database(err),
        })?;
    let id = reviewed.registration_id;
    match state.status.reviewed(id, checked.decision).await {
        // The record expired (or the run has not saved yet in Redis' view): Postgres holds
        // the decision either way.
        Ok(()) | Err(StatusError::Refused(TransitionError::NotFound)) => {}
        Err(err) => {
            tracing::warn!(error = &err as &dyn std::error::Error, registration_id = %id, "review state not shown on the status record")
        }
    }
    let email = queue_decision_email(
        &state,
        &reviewed.team_id,
        id,
        reviewed.review.version,
        &request_id,
    )
    .await;
    Ok(Json(json!({
        "team_id": reviewed.team_id,
        "registration_id": id,
        "review": review_json(&reviewed.review),
        "decision_email": email,
    })))
}

/// Queues the email that tells the captain, one job per decision (its version keys it).
/// The decision stands whatever happens here: a push that fails is logged and audited, and
/// the answer says the email is `not_queued`.
async fn queue_decision_email(
    state: &AdminState,
    team_id: &str,
    id: intake_shared::domain::RegistrationId,
    version: i32,
    request_id: &str,
) -> &'static str {
    let job = match registrations::load(&state.pool, id).await {
        Ok(Some(saved)) => RegistrationJob {
            registration_id: id,
            request_id: request_id.to_owned(),
            registration: saved.registration,
            documents: Vec::new(),
            submitted_at: OffsetDateTime::now_utc(),
            run: 0,
            purpose: Purpose::ReviewDecision { version },
            staged_by: None,
        },
        Ok(None) => return "not_queued",
        Err(err) => {
            tracing::warn!(error = &err as &dyn std::error::Error, %team_id, "decision email not queued");
            return "not_queued";
        }
    };
    let pushed = intake_shared::queue::push(
        &state.redis,
        &state.queue,
        &job,
        &format!("{id}:review:{version}"),
        state.settings.queue.max_attempts,
    )
    .await;
    match pushed {
        Ok(_) => "queued",
        Err(err) => {
            tracing::warn!(error = &err as &dyn std::error::Error, %team_id, "decision email not queued");
            Entry {
                actor: "intake-admin",
                action: teams::REVIEW,
                registrations: &[id],
                reason: None,
                request_id: Some(request_id),
            }
            .record_failure(&state.pool, &err)
            .await;
            "not_queued"
        }
    }
}
