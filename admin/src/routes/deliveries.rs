//! A webhook endpoint's delivery log for organisers (docs/contract.md §16): every event sent
//! or to be sent there, with its state, attempts, last answer and next try, newest first;
//! and a re-send of a delivered or failed one (the same event, so the same `webhook-id`),
//! audited.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use intake_shared::http::request_id::RequestId;
use intake_shared::webhooks::DeliveryJob;
use intake_store::pg::deliveries::{self, Delivery, Resend, State as DeliveryState};
use intake_store::pg::webhooks;
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::auth::Organiser;
use crate::cursor;
use crate::error::AdminError;
use crate::routes::webhooks::{audit_actor, endpoint_id};
use crate::state::AdminState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub fn delivery_json(delivery: &Delivery) -> Value {
    let time = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    json!({
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "registration_id": delivery.registration_id,
        "state": delivery.state.as_str(),
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at.map(time),
        "created_at": time(delivery.created_at),
        "delivered_at": delivery.delivered_at.map(time),
    })
}

pub async fn list(
    State(state): State<AdminState>,
    Organiser(_actor): Organiser,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<Value>, AdminError> {
    let endpoint_id = endpoint_id(&id)?;
    let filter = query
        .state
        .as_deref()
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                AdminError::BadRequest("state must be pending, delivered or failed".into())
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AdminError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let before = cursor::decode(query.cursor.as_deref())?;
    if webhooks::get(&state.pool, endpoint_id).await?.is_none() {
        return Err(AdminError::WebhookNotFound);
    }
    let page = deliveries::list(&state.pool, endpoint_id, filter, before, limit).await?;
    let next_cursor = (page.len() as i64 == limit)
        .then(|| page.last().map(|d| cursor::encode(d.created_at, d.id)))
        .flatten();
    Ok(Json(json!({
        "items": page.iter().map(delivery_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

pub async fn resend(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let endpoint_id = endpoint_id(&id)?;
    let delivery_id =
        uuid::Uuid::parse_str(&delivery_id).map_err(|_| AdminError::DeliveryNotFound)?;
    if webhooks::get(&state.pool, endpoint_id).await?.is_none() {
        return Err(AdminError::WebhookNotFound);
    }
    let resent = deliveries::resend(
        &state.pool,
        endpoint_id,
        delivery_id,
        &audit_actor(&actor, &request_id),
    )
    .await?;
    let (delivery, generation) = match resent {
        Resend::Queued {
            delivery,
            generation,
        } => (delivery, generation),
        Resend::AlreadyPending => {
            return Err(AdminError::InvalidState(
                "the delivery is pending already: its next attempt is coming".into(),
            ));
        }
        Resend::EndpointDisabled => {
            return Err(AdminError::InvalidState(
                "the endpoint is disabled; enable it before re-sending".into(),
            ));
        }
        Resend::Unknown => return Err(AdminError::DeliveryNotFound),
    };
    let queue = intake_shared::queue::deliveries_config(
        &state.settings.redis.keys(),
        &state.settings.queue,
    );
    let job = DeliveryJob {
        delivery_id: delivery.id,
        generation,
    };
    // Pending and due now in Postgres already, and audited: if this push is lost, the
    // workers' sweep gives the delivery a job, so the re-send stands either way.
    if let Err(err) = intake_shared::queue::push_delivery(&state.redis, &queue, &job, None).await {
        tracing::warn!(
            delivery_id = %delivery.id,
            error = %err,
            "re-send recorded but its job not queued; the workers' sweep will queue it"
        );
    }
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&delivery))))
}
