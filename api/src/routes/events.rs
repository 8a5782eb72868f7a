//! `GET /v1/registrations/{id}/events`: the registration's status as Server-Sent Events, an
//! `event: status` with the status record (docs/contract.md §4) whenever it changes, ending after
//! `completed` or `failed`. Polling the status URL stays the documented contract; this is
//! what the form page uses to show progress as it happens. Streams are bounded: a client
//! holds at most `INTAKE_EVENT_STREAMS_PER_CLIENT` of them on one process (the next is `429`),
//! and each ends after `INTAKE_EVENT_STREAM_MAX_AGE_SECS` with an `event: timeout`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use intake_shared::domain::RegistrationId;
use intake_shared::status::StatusRecord;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::intake::client;
use crate::intake::status_events::StatusEvent;
use crate::problem::ApiError;
use crate::routes::status::{read, registration_id};
use crate::state::AppState;

/// How often a stream re-reads the record even without events: the safety net under pub/sub.
const REREAD: Duration = Duration::from_secs(15);

/// The `Retry-After` of a refused stream. No slot frees at a known time; meanwhile the
/// client polls the status URL, which answers at once.
const STREAM_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A registration's status as Server-Sent Events.
///
/// One `event: status` with the status record at once and on every change; the stream ends
/// after `completed` or `failed`. A stream open for `INTAKE_EVENT_STREAM_MAX_AGE_SECS` (10
/// minutes by default) ends with one `event: timeout` carrying the last record sent; poll the
/// status URL (or open a new stream) then. A client may hold `INTAKE_EVENT_STREAMS_PER_CLIENT`
/// (4 by default) streams open at once; one more is `429`.
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
        (status = 429, description = "This client already has as many event streams open as it may; poll the status URL",
            body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32))),
        (status = 500, description = "Internal error", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis unreachable", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn events(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = registration_id(id)?;
    let client = client::identity(
        peer,
        &headers,
        app.settings.api.trusted_proxy_header.as_deref(),
        app.settings.api.rate_limit_ipv6_prefix,
    );
    // Taken before any Redis read, so a client at its cap costs nothing more; held by the
    // response body, so it is given back when the stream ends or its client goes away.
    let permit = app
        .event_streams
        .acquire(client)
        .ok_or(ApiError::TooManyStreams {
            retry_after: STREAM_RETRY_AFTER,
        })?;
    // Subscribe before the first read, so nothing published in between is missed.
    let events = app.status_hub.subscribe();
    let first = read(&app, id).await?.ok_or(ApiError::NotFound)?;
    let (tx, mut rx) = mpsc::channel::<Event>(16);
    // A maximum age too large to add to the clock (a misconfiguration) means a year.
    let now = Instant::now();
    let deadline = now
        .checked_add(app.settings.api.event_stream_max_age)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
    tokio::spawn(follow(app, id, first, events, tx, deadline));
    let stream = futures::stream::poll_fn(move |cx| {
        let _held = &permit;
        rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>))
    });
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

/// The last event of a stream that reached its maximum age: the last record sent again,
/// under a name of its own, so a client knows the server ended the stream on purpose.
fn timeout(raw: &str) -> Event {
    Event::default().event("timeout").data(raw)
}

/// Sends the status whenever it changes until it is final, the client goes away or the
/// stream reaches `deadline`, which bounds everything, a send to a client that stopped
/// reading included.
async fn follow(
    app: AppState,
    id: RegistrationId,
    (first_raw, first): (String, StatusRecord),
    events: broadcast::Receiver<StatusEvent>,
    tx: mpsc::Sender<Event>,
    deadline: Instant,
) {
    let mut last = first_raw;
    let watched = tokio::time::timeout_at(deadline, watch(&app, id, first, events, &tx, &mut last));
    if watched.await.is_err() {
        // A client that stopped reading has a full channel: it gets no farewell, the
        // stream just ends.
        let _ = tx.try_send(timeout(&last));
    }
}

/// The stream proper; `last` is the record last sent (the first is sent here too).
async fn watch(
    app: &AppState,
    id: RegistrationId,
    first: StatusRecord,
    mut events: broadcast::Receiver<StatusEvent>,
    tx: &mpsc::Sender<Event>,
    last: &mut String,
) {
    if tx.send(event(last)).await.is_err() || first.status.is_final() {
        return;
    }
    let wanted = id.to_string();
    loop {
        let fresh = tokio::select! {
            () = tx.closed() => return,
            received = events.recv() => match received {
                Ok(StatusEvent::Changed { id, record }) if id == wanted => Some(record),
                Ok(StatusEvent::Changed { .. }) => continue,
                Ok(StatusEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    read(app, id).await.ok().flatten().map(|(raw, _)| raw)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(REREAD) => read(app, id).await.ok().flatten().map(|(raw, _)| raw),
        };
        let Some(raw) = fresh else { continue };
        if raw == *last {
            continue;
        }
        let done = serde_json::from_str::<StatusRecord>(&raw).is_ok_and(|r| r.status.is_final());
        if tx.send(event(&raw)).await.is_err() || done {
            return;
        }
        *last = raw;
    }
}
