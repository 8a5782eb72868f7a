//! Webhook endpoints for organisers (docs/contract.md §16): create (the signing secret is in
//! that answer and never again), list, read, change, delete. Every change is audited with
//! the endpoint (never its secret); every call needs an organiser's token.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use intake_shared::errors::{FieldCode, FieldError};
use intake_shared::http::request_id::RequestId;
use intake_shared::webhook_targets;
use intake_shared::webhooks::SigningSecret;
use intake_store::pg::outbox::EventType;
use intake_store::pg::webhooks::{self, Actor, Change, Endpoint, NewEndpoint};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::auth::Organiser;
use crate::error::AdminError;
use crate::state::AdminState;

/// The longest URL and description taken.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;

#[derive(Debug, Deserialize)]
pub struct EndpointBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    enabled: Option<bool>,
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    let time = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": time(endpoint.created_at),
        "updated_at": time(endpoint.updated_at),
    })
}

/// An endpoint's URL: `http` or `https`, with a host, no credentials, not too long; unless
/// private targets are allowed, not an address (or `localhost`) deliveries would refuse.
/// (A name is judged by the workers when they resolve it, at every attempt.)
fn check_url(url: &str, allow_private: bool, errors: &mut Vec<FieldError>) {
    let invalid = |message: &str| FieldError::new("url", FieldCode::InvalidValue, message);
    if url.len() > MAX_URL {
        errors.push(FieldError::new(
            "url",
            FieldCode::TooLong,
            format!("must be at most {MAX_URL} characters"),
        ));
        return;
    }
    match url::Url::parse(url) {
        Err(_) => errors.push(invalid("must be an absolute http or https URL")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
            errors.push(invalid("must be an http or https URL"))
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            errors.push(invalid("must name a host"))
        }
        Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            errors.push(invalid("must not carry credentials"))
        }
        Ok(parsed) if !allow_private && names_a_private_target(&parsed) => errors.push(invalid(
            "must not be a loopback, private or link-local address (INTAKE_WEBHOOK_ALLOW_PRIVATE)",
        )),
        Ok(_) => {}
    }
}

fn names_a_private_target(url: &url::Url) -> bool {
    if webhook_targets::private_address_in(url).is_some() {
        return true;
    }
    url.host_str().is_some_and(|host| {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost" || name.ends_with(".localhost")
    })
}

/// The event types: at least one, each known, none twice.
fn check_events(events: &[String], errors: &mut Vec<FieldError>) {
    if events.is_empty() {
        errors.push(FieldError::new(
            "events",
            FieldCode::Required,
            "must name at least one event type",
        ));
    }
    for (i, event) in events.iter().enumerate() {
        if EventType::parse(event).is_none() {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                FieldCode::InvalidValue,
                "must be registration.completed, registration.failed, team.approved or team.rejected",
            ));
        } else if events[..i].contains(event) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                FieldCode::InvalidValue,
                "is given twice",
            ));
        }
    }
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) {
    if description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new(
            "description",
            FieldCode::TooLong,
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
}

/// Who the audit log names for a call: the token's name and the request's id.
pub fn audit_actor<'a>(actor: &'a crate::auth::Actor, request_id: &'a str) -> Actor<'a> {
    Actor {
        name: &actor.name,
        request_id: Some(request_id),
    }
}

/// An endpoint's id from its path; a malformed one is an unknown endpoint.
pub fn endpoint_id(id: &str) -> Result<uuid::Uuid, AdminError> {
    uuid::Uuid::parse_str(id).map_err(|_| AdminError::WebhookNotFound)
}

pub async fn create(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Json(body): Json<EndpointBody>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let mut errors = Vec::new();
    match &body.url {
        Some(url) => check_url(url, state.settings.webhooks.allow_private, &mut errors),
        None => errors.push(FieldError::new("url", FieldCode::Required, "is required")),
    }
    match &body.events {
        Some(events) => check_events(events, &mut errors),
        None => errors.push(FieldError::new(
            "events",
            FieldCode::Required,
            "is required",
        )),
    }
    let description = body.description.as_deref().unwrap_or_default();
    check_description(description, &mut errors);
    if body.enabled == Some(false) {
        errors.push(FieldError::new(
            "enabled",
            FieldCode::InvalidValue,
            "an endpoint starts enabled; disable it with PATCH",
        ));
    }
    let (Some(url), Some(events), true) = (&body.url, &body.events, errors.is_empty()) else {
        return Err(AdminError::Invalid(errors));
    };
    let secret = SigningSecret::generate();
    let endpoint = webhooks::create(
        &state.pool,
        &NewEndpoint {
            url,
            events,
            description,
        },
        &secret,
        &audit_actor(&actor, &request_id),
    )
    .await?;
    let mut answer = endpoint_json(&endpoint);
    answer["secret"] = Value::String(secret.expose());
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn list(
    State(state): State<AdminState>,
    Organiser(_actor): Organiser,
) -> Result<Json<Value>, AdminError> {
    let endpoints = webhooks::list(&state.pool).await?;
    Ok(Json(json!({
        "items": endpoints.iter().map(endpoint_json).collect::<Vec<_>>(),
    })))
}

pub async fn show(
    State(state): State<AdminState>,
    Organiser(_actor): Organiser,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let endpoint = webhooks::get(&state.pool, endpoint_id(&id)?)
        .await?
        .ok_or(AdminError::WebhookNotFound)?;
    Ok(Json(endpoint_json(&endpoint)))
}

pub async fn update(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
    Json(body): Json<EndpointBody>,
) -> Result<Json<Value>, AdminError> {
    let id = endpoint_id(&id)?;
    let mut errors = Vec::new();
    if let Some(url) = &body.url {
        check_url(url, state.settings.webhooks.allow_private, &mut errors);
    }
    if let Some(events) = &body.events {
        check_events(events, &mut errors);
    }
    if let Some(description) = &body.description {
        check_description(description, &mut errors);
    }
    if body.url.is_none()
        && body.events.is_none()
        && body.description.is_none()
        && body.enabled.is_none()
    {
        errors.push(FieldError::new(
            "body",
            FieldCode::Required,
            "must change at least one of url, events, description, enabled",
        ));
    }
    if !errors.is_empty() {
        return Err(AdminError::Invalid(errors));
    }
    let change = Change {
        url: body.url.as_deref(),
        events: body.events.as_deref(),
        description: body.description.as_deref(),
        enabled: body.enabled,
    };
    let endpoint = webhooks::update(&state.pool, id, &change, &audit_actor(&actor, &request_id))
        .await?
        .ok_or(AdminError::WebhookNotFound)?;
    Ok(Json(endpoint_json(&endpoint)))
}

pub async fn delete(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    let deleted = webhooks::delete(
        &state.pool,
        endpoint_id(&id)?,
        &audit_actor(&actor, &request_id),
    )
    .await?;
    if !deleted {
        return Err(AdminError::WebhookNotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
