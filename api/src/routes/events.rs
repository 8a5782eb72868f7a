//! `GET /v1/registrations/{id}/events`: the registration's status as Server-Sent Events, an
//! `event: status` with the status record (docs/contract.md §4) whenever it changes, ending after
//! `completed` or `failed`. Polling the status URL stays the documented contract; this is
//! what the form page uses to show progress as it happens.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use intake_shared::domain::RegistrationId;
use intake_shared::status::StatusRecord;
use tokio::sync::{broadcast, mpsc};

use crate::intake::status_events::StatusEvent;
use crate::problem::ApiError;
use crate::routes::status::{read, registration_id};
use crate::state::AppState;

/// How often a stream re-reads the record even without events: the safety net under pub/sub.
const REREAD: Duration = Duration::from_secs(15);

/// A registration's status as Server-Sent Events.
///
/// One `event: status` with the status record at once and on every change; the stream ends
/// after `completed` or `failed`.
#[utoipa::path(
    get,
    path = "/v1/registrations/{id}/events",
    operation_id = crate::openapi::operation::EVENTS,
    tag = "registrations",
    params(("id" = String, Path, format = Uuid,
        description = "The registration id from the 202 answer; any other value is 404")),
    responses(
        (status = 200, description = "The event stream; each event as `StatusEvent` describes it",
            content_type = "text/event-stream", body = crate::openapi::StatusEvent,
            headers(("Cache-Control" = String))),
        (status = 404, description = "No such registration", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 500, description = "Internal error", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn events(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = registration_id(id)?;
    // Subscribe before the first read, so nothing published in between is missed.
    let events = app.status_hub.subscribe();
    let first = read(&app, id).await?.ok_or(ApiError::NotFound)?;
    let (tx, mut rx) = mpsc::channel::<Event>(16);
    tokio::spawn(follow(app, id, first, events, tx));
    let stream =
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tell reverse proxies (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn event(raw: &str) -> Event {
    Event::default().event("status").data(raw)
}

/// Sends the status whenever it changes until it is final or the client goes away.
async fn follow(
    app: AppState,
    id: RegistrationId,
    (first_raw, first): (String, StatusRecord),
    mut events: broadcast::Receiver<StatusEvent>,
    tx: mpsc::Sender<Event>,
) {
    if tx.send(event(&first_raw)).await.is_err() || first.status.is_final() {
        return;
    }
    let mut last = first_raw;
    let wanted = id.to_string();
    loop {
        let fresh = tokio::select! {
            () = tx.closed() => return,
            received = events.recv() => match received {
                Ok(StatusEvent::Changed { id, record }) if id == wanted => Some(record),
                Ok(StatusEvent::Changed { .. }) => continue,
                Ok(StatusEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    read(&app, id).await.ok().flatten().map(|(raw, _)| raw)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(REREAD) => read(&app, id).await.ok().flatten().map(|(raw, _)| raw),
        };
        let Some(raw) = fresh else { continue };
        if raw == last {
            continue;
        }
        let done = serde_json::from_str::<StatusRecord>(&raw).is_ok_and(|r| r.status.is_final());
        if tx.send(event(&raw)).await.is_err() || done {
            return;
        }
        last = raw;
    }
}
