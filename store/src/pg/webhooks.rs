//! Webhook endpoints (docs/contract.md §16): where outbound events go. Every change is
//! written in one transaction with its audit row. The signing secret is written once and
//! never read back here: [`Endpoint`] has no secret.

use intake_shared::webhooks::SigningSecret;
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::DbError;
use super::audit::{Entry, Outcome};

/// Audit actions.
pub const CREATE: &str = "webhook_create";
pub const UPDATE: &str = "webhook_update";
pub const DELETE: &str = "webhook_delete";

/// An endpoint as organisers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: uuid::Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Why it was disabled, when it was by delivery (`410 Gone`) rather than by a person.
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

type EndpointRow = (
    uuid::Uuid,
    String,
    Vec<String>,
    String,
    bool,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
);

const COLUMNS: &str =
    "id, url, events, description, enabled, disabled_reason, created_at, updated_at";

fn endpoint_of(row: EndpointRow) -> Endpoint {
    let (id, url, events, description, enabled, disabled_reason, created_at, updated_at) = row;
    Endpoint {
        id,
        url,
        events,
        description,
        enabled,
        disabled_reason,
        created_at,
        updated_at,
    }
}

/// A new endpoint, checked by the caller.
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
}

/// Who asks for a change, for its audit row.
pub struct Actor<'a> {
    pub name: &'a str,
    pub request_id: Option<&'a str>,
}

impl Actor<'_> {
    fn entry<'e>(&'e self, action: &'e str) -> Entry<'e> {
        Entry {
            actor: self.name,
            action,
            registrations: &[],
            reason: None,
            request_id: self.request_id,
        }
    }
}

/// Creates an endpoint with `secret`, audited.
pub async fn create(
    pool: &PgPool,
    new: &NewEndpoint<'_>,
    secret: &SigningSecret,
    actor: &Actor<'_>,
) -> Result<Endpoint, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let row: EndpointRow = sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (url, events, description, secret)
         VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    ))
    .bind(new.url)
    .bind(new.events)
    .bind(new.description)
    .bind(secret.expose())
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let endpoint = endpoint_of(row);
    actor
        .entry(CREATE)
        .record(&mut *tx, Outcome::Succeeded, detail(&endpoint))
        .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(endpoint)
}

/// Every endpoint not deleted, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<Endpoint>, DbError> {
    super::retrying(|| async {
        let rows: Vec<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL
             ORDER BY created_at, id"
        ))
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(endpoint_of).collect())
    })
    .await
}

/// One endpoint, unless it is unknown or deleted.
pub async fn get(pool: &PgPool, id: uuid::Uuid) -> Result<Option<Endpoint>, DbError> {
    super::retrying(|| async {
        let row: Option<EndpointRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(endpoint_of))
    })
    .await
}

/// What a change sets; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Change<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub enabled: Option<bool>,
}

/// Changes an endpoint, audited; `None` if it is unknown or deleted. Enabling it again
/// clears why it was disabled.
pub async fn update(
    pool: &PgPool,
    id: uuid::Uuid,
    change: &Change<'_>,
    actor: &Actor<'_>,
) -> Result<Option<Endpoint>, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let row: Option<EndpointRow> = sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET
             url = coalesce($2, url),
             events = coalesce($3, events),
             description = coalesce($4, description),
             enabled = coalesce($5, enabled),
             disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
             updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(change.url)
    .bind(change.events)
    .bind(change.description)
    .bind(change.enabled)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(DbError::from)?;
        return Ok(None);
    };
    let endpoint = endpoint_of(row);
    actor
        .entry(UPDATE)
        .record(&mut *tx, Outcome::Succeeded, detail(&endpoint))
        .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Some(endpoint))
}

/// Deletes an endpoint (its row stays, marked), audited; whether there was one.
pub async fn delete(pool: &PgPool, id: uuid::Uuid, actor: &Actor<'_>) -> Result<bool, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let row: Option<EndpointRow> = sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET deleted_at = now(), enabled = false, updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some(row) = row else {
        tx.rollback().await.map_err(DbError::from)?;
        return Ok(false);
    };
    actor
        .entry(DELETE)
        .record(&mut *tx, Outcome::Succeeded, detail(&endpoint_of(row)))
        .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(true)
}

/// What the audit row says of an endpoint (never its secret).
fn detail(endpoint: &Endpoint) -> serde_json::Value {
    json!({
        "webhook_id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
    })
}
